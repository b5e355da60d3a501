package notify_test

import (
	"net/netip"
	"net/url"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"paygate"
	"paygate/notify"
)

func TestValidateURL(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		url           string
		live, sandbox bool // accepted in each mode
	}{
		{"https://merchant.example/notify", true, true},
		{"http://merchant.example:8080/pay/notify?a=1&b=%20", true, true},
		{"HTTPS://Merchant.Example/notify", true, true},
		{"https://merchant.example./notify", true, true},
		{"https://xn--fiqs8s.example/notify", true, true},
		{"https://my_host.example/notify", true, true},
		{"https://8.8.8.8/notify", true, true},
		{"https://[2001:4860:4860::8888]/notify", true, true},
		{"https://a", true, true},

		{"http://127.0.0.1:8080/notify", false, true},
		{"http://10.1.2.3/notify", false, true},
		{"http://172.16.0.1/notify", false, true},
		{"http://192.168.1.1/notify", false, true},
		{"http://169.254.169.254/latest/meta-data", false, true},
		{"http://100.64.0.1/notify", false, true},
		{"http://0.0.0.0/notify", false, true},
		{"http://224.0.0.1/notify", false, true},
		{"http://255.255.255.255/notify", false, true},
		{"http://[::1]/notify", false, true},
		{"http://[fe80::1]/notify", false, true},
		{"http://[fd00::1]/notify", false, true},
		{"http://[::ffff:127.0.0.1]/notify", false, true},
		{"http://[::ffff:8.8.8.8]/notify", true, true}, // mapped public address
		{"http://[64:ff9b::a00:1]/notify", false, true},
		{"http://localhost:8080/notify", false, true},
		{"http://LOCALHOST./notify", false, true},
		{"http://api.localhost/notify", false, true},

		{"", false, false},
		{"merchant.example/notify", false, false},
		{"/notify", false, false},
		{"ftp://merchant.example/notify", false, false},
		{"javascript:alert(1)", false, false},
		{"file:///etc/passwd", false, false},
		{"https:merchant.example", false, false},
		{"https://", false, false},
		{"https:///notify", false, false},
		{"https://user:pw@merchant.example/notify", false, false},
		{"https://user@merchant.example/notify", false, false},
		{"https://merchant.example/notify#frag", false, false},
		{"https://merchant.example:/notify", false, false},
		{"https://merchant.example:0/notify", false, false},
		{"https://merchant.example:65536/notify", false, false},
		{"https://merchant.example:080/notify", false, false},
		{"https://merchant.example:http/notify", false, false},
		{"https://merchant example/notify", false, false},
		{"https://merchant.example/no tify", false, false},
		{"https://merchant.example/\x00", false, false},
		{"https://商户.example/notify", false, false},
		{"https://-merchant.example/", false, false},
		{"https://merchant..example/", false, false},
		{"https://127.1/notify", false, false},
		{"https://2130706433/notify", false, false},
		{"https://0x7f.0x0.0x0.0x1/notify", false, false},
		{"https://0x7f000001/notify", false, false},
		{"https://[127.0.0.1]/notify", false, false},
		{"https://[fe80::1%25eth0]/notify", false, false},
		{"https://[::1/notify", false, false},
		{"https://" + strings.Repeat("a", 64) + ".example/", false, false},
		{"https://merchant.example/" + strings.Repeat("p", notify.MaxURLLen), false, false},
	} {
		for _, mode := range []struct {
			sandbox bool
			want    bool
		}{{false, tc.live}, {true, tc.sandbox}} {
			err := notify.ValidateURL(tc.url, mode.sandbox)
			if mode.want {
				require.NoError(t, err, "%q sandbox=%v", tc.url, mode.sandbox)
				continue
			}
			require.Error(t, err, "%q sandbox=%v", tc.url, mode.sandbox)
			require.Equal(t, paygate.CodeInvalidArgument, paygate.CodeOf(err))
			require.Equal(t, "notify_url", err.(*paygate.Error).Field)
		}
	}
}

func TestPublicAddr(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		addr   string
		public bool
	}{
		{"8.8.8.8", true},
		{"1.1.1.1", true},
		{"203.0.114.1", true},
		{"2001:4860:4860::8888", true},
		{"::ffff:8.8.8.8", true},
		{"127.0.0.1", false},
		{"127.255.255.254", false},
		{"10.0.0.1", false},
		{"172.31.255.255", false},
		{"192.168.0.1", false},
		{"169.254.169.254", false},
		{"0.0.0.0", false},
		{"0.1.2.3", false},
		{"100.64.0.1", false},
		{"192.0.0.8", false},
		{"192.0.2.1", false},
		{"198.18.0.1", false},
		{"198.51.100.1", false},
		{"203.0.113.1", false},
		{"224.0.0.251", false},
		{"239.255.255.250", false},
		{"240.0.0.1", false},
		{"255.255.255.255", false},
		{"::", false},
		{"::1", false},
		{"::127.0.0.1", false},
		{"::ffff:127.0.0.1", false},
		{"::ffff:10.0.0.1", false},
		{"fe80::1", false},
		{"fc00::1", false},
		{"fd12:3456::1", false},
		{"fec0::1", false},
		{"ff02::1", false},
		{"64:ff9b::7f00:1", false},
		{"2001:db8::1", false},
		{"2002:7f00:1::1", false},
		{"2001:0:4136:e378::1", false},
		{"100::1", false},
	} {
		require.Equal(t, tc.public, notify.PublicAddr(netip.MustParseAddr(tc.addr)), tc.addr)
	}
	require.False(t, notify.PublicAddr(netip.Addr{}))
	require.False(t, notify.PublicAddr(netip.MustParseAddr("2001:4860::1%eth0")), "zoned addresses")
}

// FuzzValidateURL checks that ValidateURL never panics, that live mode
// accepts nothing sandbox mode refuses, and that whatever it accepts is an
// http(s) URL with a host that net/http can request, whose IP literal (if
// any) is public in live mode.
func FuzzValidateURL(f *testing.F) {
	for _, s := range []string{
		"https://merchant.example/notify", "http://127.0.0.1:8080/", "http://[::1]/", "http://[::ffff:10.0.0.1]/",
		"http://localhost/", "https://user@host/", "http://0x7f.1/", "http://a/#x", "http://[fe80::1%25en0]/",
		"https://%31%32%37.0.0.1/", "http://8.8.8.8:65535/x?y", "http://h:0/", "HTTP://H.EXAMPLE/",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, raw string) {
		liveErr := notify.ValidateURL(raw, false)
		sandboxErr := notify.ValidateURL(raw, true)
		for _, err := range []error{liveErr, sandboxErr} {
			if err != nil {
				require.Equal(t, paygate.CodeInvalidArgument, paygate.CodeOf(err))
			}
		}
		if liveErr == nil {
			require.NoError(t, sandboxErr, "live accepts only what sandbox accepts")
		}
		if sandboxErr != nil {
			return
		}
		u, err := url.Parse(raw)
		require.NoError(t, err)
		require.Contains(t, []string{"http", "https"}, u.Scheme)
		require.NotEmpty(t, u.Hostname())
		require.Nil(t, u.User)
		require.LessOrEqual(t, len(raw), notify.MaxURLLen)
		if liveErr == nil {
			if a, err := netip.ParseAddr(u.Hostname()); err == nil {
				require.True(t, notify.PublicAddr(a), "live mode accepted %s", a)
			}
			require.NotEqual(t, "localhost", strings.ToLower(strings.TrimSuffix(u.Hostname(), ".")))
		}
	})
}
