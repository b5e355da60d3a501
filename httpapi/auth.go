package httpapi

import (
	"bytes"
	"context"
	"crypto/rsa"
	"fmt"
	"io"
	"net/http"
	"net/netip"
	"strings"

	"paygate"
	"paygate/merchant"
	"paygate/signing"
)

// Verifier looks up merchants' request credentials; *merchant.Service
// implements it. Both methods read the database, so a revoked key, a
// suspended merchant or a used nonce counts in every process at once.
type Verifier interface {
	// MerchantKey returns the merchant and its active public key with the
	// serial. Errors: CodeUnauthenticated for an unknown merchant or
	// serial or a revoked key.
	MerchantKey(ctx context.Context, mchid, serialNo string) (paygate.Merchant, *rsa.PublicKey, error)
	// UseNonce records the nonce of a verified request signed at timestamp
	// (Unix seconds). Errors: CodeUnauthenticated for a replayed nonce.
	UseNonce(ctx context.Context, mchid, nonce string, timestamp int64) error
}

// KnownKeyVerifier is a Verifier that can also authenticate in one round
// trip a request signed with a key it has seen before; *merchant.Service
// implements it. Authentication uses it when the Verifier has it: a request
// whose signature verifies with the known key is admitted when
// UseNonceForKnownKey reports true; in every other case (no known key, the
// signature does not verify with it, false) the request is authenticated
// the full way, as if there were no KnownKeyVerifier, and gets the same
// answer.
type KnownKeyVerifier interface {
	Verifier
	// KnownKey returns the merchant's public key with the serial if the
	// verifier has returned it from MerchantKey before, without a round
	// trip; the key may have been revoked since.
	KnownKey(mchid, serialNo string) (*rsa.PublicKey, bool)
	// UseNonceForKnownKey records the nonce of a request signed at
	// timestamp with that key, and returns the merchant and true, only if
	// the key is still active, the merchant's status allows transacting
	// and it has no IP allow-list; otherwise it records nothing and
	// returns false.
	UseNonceForKnownKey(ctx context.Context, mchid, serialNo, nonce string, timestamp int64) (paygate.Merchant, bool, error)
}

// AuthConfig configures request authentication. Verifier and Clock are
// required.
type AuthConfig struct {
	Verifier Verifier
	// Clock is the server's clock the request timestamp must be within
	// ±signing.Window of.
	Clock paygate.Clock
	// TrustedProxies lists the reverse proxies whose X-Forwarded-For
	// header is believed. When the peer address (RemoteAddr) is inside one
	// of them, the client address checked against a merchant's IP
	// allow-list is the rightmost X-Forwarded-For entry that is not itself
	// a trusted proxy. Empty (the default): X-Forwarded-For is ignored and
	// the peer address is the client, which is right when nothing proxies,
	// and safe (never spoofable by a client) otherwise.
	TrustedProxies []netip.Prefix
}

// Authenticate returns next behind request authentication with the
// default settings (no trusted proxies); see AuthConfig.Wrap.
func Authenticate(v Verifier, clock paygate.Clock, next http.Handler) http.Handler {
	return AuthConfig{Verifier: v, Clock: clock}.Wrap(next)
}

// Wrap returns next behind authentication compatible with the WeChat Pay
// APIv3 scheme. In order, a request must:
//
//  1. have a body of at most MaxBody bytes (else 413 TOO_LARGE);
//  2. carry one well-formed Authorization header `WECHATPAY2-SHA256-RSA2048
//     mchid="..",nonce_str="..",timestamp="..",serial_no="..",signature=".."`
//     (probe signatures "WECHATPAY/SIGNTEST/..." are refused);
//  3. have a timestamp within ±300 s of the server clock;
//  4. name a merchant and one of its active (unrevoked) keys;
//  5. carry an RSA-SHA256 signature by that key over
//     "METHOD\nREQUEST_URI\nTIMESTAMP\nNONCE\nBODY\n", REQUEST_URI being
//     r.URL.RequestURI() (the path and query as sent);
//  6. come from a merchant whose status allows transacting (SANDBOX or
//     LIVE), else 403 FORBIDDEN;
//  7. come from an address in the merchant's IP allow-list, if it has one,
//     else 403 FORBIDDEN;
//  8. use a nonce not used within the window; it is consumed only now,
//     after the signature verified, so nobody can burn another's nonces.
//
// Failures 2-5 and 8 answer 401 UNAUTHENTICATED, with a message that helps
// an honest client (which header part is malformed, "timestamp ...",
// "signature does not verify") and one answer for unknown merchant,
// unknown serial and revoked key. Verifier faults answer their own code
// (503, 500). Then next runs with the merchant in the context
// (MerchantFrom, and merchant.WithAuthenticated so that the merchant
// service does not read it again) and the body readable again.
//
// With a KnownKeyVerifier, steps 4 to 8 take one database round trip for a
// request signed with a key the process has seen: the signature is
// verified with that key first, then the key's status, the merchant's
// status, the absence of an IP allow-list and the nonce are checked, and
// the nonce consumed, in one statement; anything else takes the steps
// above, one by one.
func (c AuthConfig) Wrap(next http.Handler) http.Handler {
	if c.Verifier == nil || c.Clock == nil {
		panic("httpapi: AuthConfig needs a Verifier and a Clock")
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		m, body, err := c.authenticate(w, r)
		if err != nil {
			WriteError(w, err)
			return
		}
		r = r.WithContext(merchant.WithAuthenticated(WithMerchant(r.Context(), m), m))
		r.Body, r.ContentLength = io.NopCloser(bytes.NewReader(body)), int64(len(body))
		next.ServeHTTP(w, r)
	})
}

func unauthenticated(msg string, cause error) error {
	return &paygate.Error{Code: paygate.CodeUnauthenticated, Message: msg, Err: cause}
}

func (c AuthConfig) authenticate(w http.ResponseWriter, r *http.Request) (paygate.Merchant, []byte, error) {
	ctx := r.Context()
	body, err := readBody(w, r)
	if err != nil {
		return paygate.Merchant{}, nil, err
	}
	hs := r.Header.Values("Authorization")
	switch {
	case len(hs) == 0 || hs[0] == "":
		return paygate.Merchant{}, nil, unauthenticated("the Authorization header is missing; sign the request ("+signing.Scheme+")", nil)
	case len(hs) > 1:
		return paygate.Merchant{}, nil, unauthenticated("send exactly one Authorization header", nil)
	}
	a, err := signing.ParseAuthorization(hs[0])
	if err != nil {
		return paygate.Merchant{}, nil, err
	}
	if err := signing.CheckTimestamp(a.Timestamp, c.Clock.Now()); err != nil {
		return paygate.Merchant{}, nil, err
	}
	msg := signing.RequestMessage(r.Method, r.URL.RequestURI(), a.Timestamp, a.Nonce, body)
	if kv, ok := c.Verifier.(KnownKeyVerifier); ok {
		if pub, ok := kv.KnownKey(a.MchID, a.SerialNo); ok && signing.Verify(pub, msg, a.Signature) == nil {
			m, used, err := kv.UseNonceForKnownKey(ctx, a.MchID, a.SerialNo, a.Nonce, a.Timestamp)
			if err != nil {
				return paygate.Merchant{}, nil, err
			}
			if used {
				return m, body, nil
			}
		}
	}
	m, pub, err := c.Verifier.MerchantKey(ctx, a.MchID, a.SerialNo)
	if err != nil {
		return paygate.Merchant{}, nil, err
	}
	if err := signing.Verify(pub, msg, a.Signature); err != nil {
		return paygate.Merchant{}, nil, unauthenticated("signature does not verify (signed: METHOD\\nPATH?QUERY\\nTIMESTAMP\\nNONCE\\nBODY\\n)",
			fmt.Errorf("merchant %s key %s: %w", a.MchID, a.SerialNo, err))
	}
	if !m.Status.CanTransact() {
		return paygate.Merchant{}, nil, paygate.E(paygate.CodeForbidden, "the merchant may not call the API in status %s", m.Status)
	}
	if len(m.IPAllowList) > 0 {
		ip, ok := c.clientIP(r)
		if !ok || !merchant.IPAllowed(m, ip) {
			return paygate.Merchant{}, nil, &paygate.Error{Code: paygate.CodeForbidden,
				Message: "requests from this address are not in the merchant's IP allow-list", Err: fmt.Errorf("client address %v", ip)}
		}
	}
	if err := c.Verifier.UseNonce(ctx, a.MchID, a.Nonce, a.Timestamp); err != nil {
		return paygate.Merchant{}, nil, err
	}
	return m, body, nil
}

// clientIP returns the address the request came from: the peer, or behind
// trusted proxies the rightmost X-Forwarded-For address they did not add.
func (c AuthConfig) clientIP(r *http.Request) (netip.Addr, bool) {
	peer, ok := parseAddr(r.RemoteAddr)
	if !ok || !c.trusted(peer) {
		return peer, ok
	}
	var hops []string
	for _, v := range r.Header.Values("X-Forwarded-For") {
		for _, h := range strings.Split(v, ",") {
			hops = append(hops, strings.TrimSpace(h))
		}
	}
	client := peer
	for i := len(hops) - 1; i >= 0; i-- {
		a, ok := parseAddr(hops[i])
		if !ok {
			return netip.Addr{}, false // a malformed hop: trust nothing further
		}
		client = a
		if !c.trusted(a) {
			break
		}
	}
	return client, true
}

func (c AuthConfig) trusted(a netip.Addr) bool {
	for _, p := range c.TrustedProxies {
		if p.Contains(a) {
			return true
		}
	}
	return false
}

// parseAddr parses "host:port", "[v6]:port" or a bare address.
func parseAddr(s string) (netip.Addr, bool) {
	if ap, err := netip.ParseAddrPort(s); err == nil {
		return ap.Addr().Unmap(), true
	}
	if a, err := netip.ParseAddr(strings.Trim(s, "[]")); err == nil && a.Zone() == "" {
		return a.Unmap(), true
	}
	return netip.Addr{}, false
}
