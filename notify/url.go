package notify

import (
	"errors"
	"net/netip"
	"net/url"
	"strconv"
	"strings"
	"syscall"

	"paygate"
)

// ValidateURL checks a notify_url when a merchant supplies it: an absolute
// http or https URL of printable ASCII, at most MaxURLLen bytes, with a host
// (a DNS name or an IP literal), no user information and no fragment. In
// live mode (sandbox false) the host may not be "localhost" (or a name under
// it) nor an IP literal that PublicAddr refuses. Names are not resolved
// here: the worker checks the addresses it actually dials. Errors:
// CodeInvalidArgument with field "notify_url".
func ValidateURL(raw string, sandbox bool) error {
	_, err := parseURL(raw, sandbox)
	return err
}

func badURL(format string, args ...any) error {
	return paygate.EField(paygate.CodeInvalidArgument, "notify_url", format, args...)
}

// parseURL is ValidateURL returning the parsed URL.
func parseURL(raw string, sandbox bool) (*url.URL, error) {
	if raw == "" {
		return nil, badURL("notify_url is required")
	}
	if len(raw) > MaxURLLen {
		return nil, badURL("notify_url must be at most %d bytes", MaxURLLen)
	}
	if !printableASCII(raw) {
		return nil, badURL("notify_url must be printable ASCII without spaces (percent-encode the rest, punycode the host)")
	}
	if strings.Contains(raw, "#") {
		return nil, badURL("notify_url must not have a fragment")
	}
	u, err := url.Parse(raw)
	if err != nil {
		return nil, badURL("notify_url is not a valid URL")
	}
	if u.Scheme != "http" && u.Scheme != "https" {
		return nil, badURL("notify_url must be an http or https URL")
	}
	if u.Opaque != "" || u.Host == "" {
		return nil, badURL("notify_url must have a host")
	}
	if u.User != nil || strings.Contains(u.Host, "@") {
		return nil, badURL("notify_url must not contain user information")
	}
	if strings.HasSuffix(u.Host, ":") {
		return nil, badURL("notify_url has an empty port")
	}
	if p := u.Port(); p != "" {
		n, err := strconv.Atoi(p)
		if err != nil || n < 1 || n > 65535 || p[0] == '0' {
			return nil, badURL("notify_url has an invalid port")
		}
	}
	host := u.Hostname()
	if strings.HasPrefix(u.Host, "[") {
		a, err := netip.ParseAddr(host)
		if err != nil || !a.Is6() || a.Zone() != "" {
			return nil, badURL("notify_url has an invalid IPv6 address")
		}
		if !sandbox && !PublicAddr(a) {
			return nil, badURL("notify_url must not point to a private, loopback, link-local or reserved address in live mode")
		}
		return u, nil
	}
	if a, err := netip.ParseAddr(host); err == nil {
		if !a.Is4() {
			return nil, badURL("notify_url has an invalid host")
		}
		if !sandbox && !PublicAddr(a) {
			return nil, badURL("notify_url must not point to a private, loopback, link-local or reserved address in live mode")
		}
		return u, nil
	}
	if !validHostname(host) {
		return nil, badURL("notify_url host must be a DNS name or an IP address")
	}
	if lh := strings.ToLower(strings.TrimSuffix(host, ".")); !sandbox && (lh == "localhost" || strings.HasSuffix(lh, ".localhost")) {
		return nil, badURL("notify_url must not point to localhost in live mode")
	}
	return u, nil
}

// validHostname accepts DNS names of letters, digits, hyphens and
// underscores in labels of 1 to 63 characters (253 in all, one trailing dot
// allowed) whose last label starts with a letter, so that numeric forms
// some resolvers read as IPv4 addresses ("127.1", "0x7f.1", "2130706433")
// are refused.
func validHostname(h string) bool {
	h = strings.TrimSuffix(h, ".")
	if h == "" || len(h) > 253 {
		return false
	}
	labels := strings.Split(h, ".")
	for _, l := range labels {
		if l == "" || len(l) > 63 || l[0] == '-' || l[len(l)-1] == '-' {
			return false
		}
		for i := 0; i < len(l); i++ {
			c := l[i]
			if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_') {
				return false
			}
		}
	}
	last := labels[len(labels)-1]
	c := last[0] | 0x20
	return c >= 'a' && c <= 'z' && !strings.HasPrefix(strings.ToLower(last), "0x")
}

// Reserved ranges PublicAddr refuses beyond those netip classifies
// (loopback, private, link-local, multicast, unspecified).
var reserved = []netip.Prefix{
	netip.MustParsePrefix("0.0.0.0/8"),       // "this network"
	netip.MustParsePrefix("100.64.0.0/10"),   // carrier-grade NAT
	netip.MustParsePrefix("192.0.0.0/24"),    // IETF protocol assignments
	netip.MustParsePrefix("192.0.2.0/24"),    // documentation
	netip.MustParsePrefix("198.18.0.0/15"),   // benchmarking
	netip.MustParsePrefix("198.51.100.0/24"), // documentation
	netip.MustParsePrefix("203.0.113.0/24"),  // documentation
	netip.MustParsePrefix("240.0.0.0/4"),     // reserved, and broadcast
	netip.MustParsePrefix("64:ff9b::/96"),    // NAT64: may embed a private IPv4 address
	netip.MustParsePrefix("64:ff9b:1::/48"),  // local NAT64
	netip.MustParsePrefix("2001::/32"),       // Teredo: embeds IPv4 addresses
	netip.MustParsePrefix("2001:db8::/32"),   // documentation
	netip.MustParsePrefix("2002::/16"),       // 6to4: embeds IPv4 addresses
}

var globalUnicast6 = netip.MustParsePrefix("2000::/3")

// PublicAddr reports whether a live merchant's notify_url may reach a: a
// public unicast address. It refuses loopback, private (RFC 1918, fc00::/7),
// link-local, unspecified, multicast and broadcast addresses, carrier-grade
// NAT, documentation and benchmarking ranges, IPv6 outside 2000::/3, and
// IPv6 forms that embed IPv4 addresses (mapped, NAT64, 6to4, Teredo), so
// that no spelling of an internal address gets through.
func PublicAddr(a netip.Addr) bool {
	a = a.Unmap()
	if !a.IsValid() || a.Zone() != "" || a.IsUnspecified() || a.IsLoopback() || a.IsPrivate() ||
		a.IsLinkLocalUnicast() || a.IsLinkLocalMulticast() || a.IsInterfaceLocalMulticast() || a.IsMulticast() {
		return false
	}
	if a.Is6() && !globalUnicast6.Contains(a) {
		return false
	}
	for _, p := range reserved {
		if p.Contains(a) {
			return false
		}
	}
	return true
}

// errAddressRefused is returned by the live dialer for a non-public address.
var errAddressRefused = errors.New("notify: address refused in live mode")

// liveControl is the live dialer's Control: it runs after name resolution,
// on each address about to be connected, so that neither a name resolving
// to an internal address nor DNS rebinding gets past it.
func liveControl(network, address string, _ syscall.RawConn) error {
	ap, err := netip.ParseAddrPort(address)
	if err != nil || !PublicAddr(ap.Addr()) {
		return errAddressRefused
	}
	return nil
}
