package httpapi_test

import (
	"context"
	"crypto/rsa"
	"encoding/base64"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"github.com/wechatpay-apiv3/wechatpay-go/core"
	"github.com/wechatpay-apiv3/wechatpay-go/core/option"

	"paygate"
	"paygate/httpapi"
	"paygate/merchant"
	"paygate/signing"
	"paygate/store"
	"paygate/store/storetest"
)

// Merchant keys are shared by the tests (RSA generation is slow); a key
// may belong to several merchants.
var authKey, otherKey = mustRSA(), mustRSA()

func mustRSA() *rsa.PrivateKey {
	k, err := signing.GenerateKey()
	if err != nil {
		panic(err)
	}
	return k
}

var authT0 = time.Date(2030, 6, 1, 12, 0, 0, 0, time.UTC)

func testKeyring(t testing.TB) *merchant.Keyring {
	kr, err := merchant.ParseKeyring(merchant.NewMasterKey())
	require.NoError(t, err)
	return kr
}

func merchantService(t testing.TB, db *store.DB, kr *merchant.Keyring, clock paygate.Clock) *merchant.Service {
	t.Helper()
	svc, err := merchant.New(merchant.Config{Store: db.Merchants(), Clock: clock, Keyring: kr, Logger: slog.New(slog.DiscardHandler)})
	require.NoError(t, err)
	return svc
}

// echo answers 200 with what the authenticated handler saw.
type echoed struct {
	MchID string `json:"mchid"`
	Body  string `json:"body"`
	URI   string `json:"uri"`
}

var echo = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
	m, ok := httpapi.MerchantFrom(r.Context())
	if !ok {
		http.Error(w, "no merchant", http.StatusInternalServerError)
		return
	}
	b, err := io.ReadAll(r.Body)
	if err != nil {
		http.Error(w, "body", http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	json.NewEncoder(w).Encode(echoed{MchID: m.ID, Body: string(b), URI: r.URL.RequestURI()})
})

// authFixture is a merchant service over a database, a handful of
// merchants in every state, and the signed, authenticated echo handler.
type authFixture struct {
	svc       *merchant.Service
	clock     *paygate.ManualClock
	handler   http.Handler
	platform  *rsa.PublicKey
	pserial   string
	serial    string // authKey's serial
	active    string // mchids
	limited   string // IP allow-list 203.0.113.0/24
	suspended string
	pending   string
	closed    string
	revoked   string // authKey revoked, otherKey active
}

func newAuthFixture(t *testing.T, db *store.DB, kr *merchant.Keyring, clock *paygate.ManualClock) *authFixture {
	t.Helper()
	ctx := context.Background()
	svc := merchantService(t, db, kr, clock)
	f := &authFixture{svc: svc, clock: clock, serial: signing.SerialNo(&authKey.PublicKey)}
	pk, err := svc.EnsurePlatformKey(ctx)
	require.NoError(t, err)
	f.pserial = pk.SerialNo
	f.platform, err = signing.ParsePublicKeyPEM([]byte(pk.PublicKeyPEM))
	require.NoError(t, err)
	mk := func(sandbox bool, ips ...string) string {
		c, err := svc.Create(ctx, merchant.CreateRequest{Name: "Shop", Sandbox: sandbox, IPAllowList: ips, PublicKeyPEM: signing.PublicKeyPEM(&authKey.PublicKey)})
		require.NoError(t, err)
		return c.Merchant.ID
	}
	f.active = mk(true)
	f.limited = mk(true, "203.0.113.0/24")
	f.suspended = mk(true)
	_, err = svc.SetStatus(ctx, f.suspended, paygate.MerchantSuspended)
	require.NoError(t, err)
	f.pending = mk(false)
	f.closed = mk(true)
	_, err = svc.SetStatus(ctx, f.closed, paygate.MerchantClosed)
	require.NoError(t, err)
	f.revoked = mk(true)
	_, err = svc.AddPublicKey(ctx, f.revoked, signing.PublicKeyPEM(&otherKey.PublicKey))
	require.NoError(t, err)
	require.NoError(t, svc.RevokeKey(ctx, f.revoked, f.serial))
	f.handler = httpapi.SignResponses(svc, httpapi.Authenticate(svc, clock, echo))
	return f
}

// authorization signs a request as the APIv3 SDKs do.
func authorization(t testing.TB, key *rsa.PrivateKey, mchid, serial, method, uri, body string, ts int64, nonce string) string {
	t.Helper()
	sig, err := signing.Sign(key, signing.RequestMessage(method, uri, ts, nonce, []byte(body)))
	require.NoError(t, err)
	return signing.Authorization{MchID: mchid, Nonce: nonce, Timestamp: ts, SerialNo: serial, Signature: sig}.String()
}

// checkSigned verifies a response's Wechatpay-* headers with the platform key.
func (f *authFixture) checkSigned(t *testing.T, rec *httptest.ResponseRecorder) {
	t.Helper()
	h := rec.Header()
	require.Equal(t, f.pserial, h.Get(signing.HeaderSerial))
	ts, err := strconv.ParseInt(h.Get(signing.HeaderTimestamp), 10, 64)
	require.NoError(t, err)
	require.Equal(t, f.clock.Now().Unix(), ts)
	require.NotEmpty(t, h.Get(signing.HeaderNonce))
	require.NoError(t, signing.Verify(f.platform, signing.ResponseMessage(ts, h.Get(signing.HeaderNonce), rec.Body.Bytes()),
		h.Get(signing.HeaderSignature)), "every response is signed, errors included")
	require.Equal(t, strconv.Itoa(rec.Body.Len()), h.Get("Content-Length"))
}

func flip(s string, i int) string {
	b := []byte(s)
	b[i] ^= 1
	return string(b)
}

func flipSignature(header string) string {
	a, err := signing.ParseAuthorization(header)
	if err != nil {
		panic(err)
	}
	raw, _ := base64.StdEncoding.DecodeString(a.Signature)
	raw[100] ^= 1
	a.Signature = base64.StdEncoding.EncodeToString(raw)
	return a.String()
}

func TestAuthenticate(t *testing.T) {
	t.Parallel()
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		f := newAuthFixture(t, db, testKeyring(t), paygate.NewManualClock(authT0))
		now := authT0.Unix()
		const method, uri, body = "POST", "/v1/orders/ord_1/close?x=1&y=%E4%B8%AD", `{"out_trade_no":"A-1"}`

		type request struct {
			method, uri, body string
			header            []string // Authorization values; nil: none
			remote            string
		}
		// good returns a request signed for mchid with a fresh nonce at
		// now+offset; change edits it after signing (a tampering).
		good := func(name, mchid string, offset int64, change func(*request)) request {
			r := request{method: method, uri: uri, body: body, remote: "198.51.100.1:4321",
				header: []string{authorization(t, authKey, mchid, f.serial, method, uri, body, now+offset, "N-"+name)}}
			if change != nil {
				change(&r)
			}
			return r
		}
		tests := []struct {
			name   string
			req    request
			status int
			code   paygate.Code
			msg    string // substring of the message
		}{
			{"valid", good("valid", f.active, 0, nil), 200, "", ""},
			{"299 s old", good("old299", f.active, -299, nil), 200, "", ""},
			{"299 s ahead", good("new299", f.active, 299, nil), 200, "", ""},
			{"300 s old", good("old300", f.active, -300, nil), 200, "", ""},
			{"301 s old", good("old301", f.active, -301, nil), 401, paygate.CodeUnauthenticated, "timestamp"},
			{"301 s ahead", good("new301", f.active, 301, nil), 401, paygate.CodeUnauthenticated, "timestamp"},
			{"no Authorization", good("none", f.active, 0, func(r *request) { r.header = nil }), 401, paygate.CodeUnauthenticated, "missing"},
			{"empty Authorization", good("empty", f.active, 0, func(r *request) { r.header = []string{""} }), 401, paygate.CodeUnauthenticated, "missing"},
			{"two Authorization headers", good("two", f.active, 0, func(r *request) { r.header = append(r.header, r.header[0]) }), 401, paygate.CodeUnauthenticated, "exactly one"},
			{"other scheme", good("bearer", f.active, 0, func(r *request) { r.header = []string{"Bearer abc"} }), 401, paygate.CodeUnauthenticated, "scheme"},
			{"malformed parameters", good("malformed", f.active, 0, func(r *request) {
				r.header = []string{signing.Scheme + ` mchid=` + f.active + `,nonce_str="x"`}
			}), 401, paygate.CodeUnauthenticated, "key=\"value\""},
			{"probe signature", good("probe", f.active, 0, func(r *request) {
				a, _ := signing.ParseAuthorization(r.header[0])
				a.Signature = "WECHATPAY/SIGNTEST/" + a.Signature
				r.header = []string{a.String()}
			}), 401, paygate.CodeUnauthenticated, "probe"},
			{"tampered method", good("t-method", f.active, 0, func(r *request) { r.method = flip(r.method, 1) }), 401, paygate.CodeUnauthenticated, "signature does not verify"},
			{"tampered path", good("t-path", f.active, 0, func(r *request) { r.uri = flip(r.uri, 14) }), 401, paygate.CodeUnauthenticated, "signature does not verify"},
			{"tampered query", good("t-query", f.active, 0, func(r *request) { r.uri = flip(r.uri, strings.Index(r.uri, "x=1")+2) }), 401, paygate.CodeUnauthenticated, "signature does not verify"},
			{"query dropped", good("t-noquery", f.active, 0, func(r *request) { r.uri = r.uri[:strings.IndexByte(r.uri, '?')] }), 401, paygate.CodeUnauthenticated, "signature does not verify"},
			{"tampered body", good("t-body", f.active, 0, func(r *request) { r.body = flip(r.body, 5) }), 401, paygate.CodeUnauthenticated, "signature does not verify"},
			{"tampered signature", good("t-sig", f.active, 0, func(r *request) { r.header = []string{flipSignature(r.header[0])} }), 401, paygate.CodeUnauthenticated, "signature does not verify"},
			{"signature not base64", good("t-b64", f.active, 0, func(r *request) {
				a, _ := signing.ParseAuthorization(r.header[0])
				a.Signature = "%%%"
				r.header = []string{a.String()}
			}), 401, paygate.CodeUnauthenticated, "signature does not verify"},
			{"tampered timestamp", good("t-ts", f.active, 0, func(r *request) {
				a, _ := signing.ParseAuthorization(r.header[0])
				a.Timestamp++
				r.header = []string{a.String()}
			}), 401, paygate.CodeUnauthenticated, "signature does not verify"},
			{"tampered nonce", good("t-nonce", f.active, 0, func(r *request) {
				a, _ := signing.ParseAuthorization(r.header[0])
				a.Nonce = flip(a.Nonce, 0)
				r.header = []string{a.String()}
			}), 401, paygate.CodeUnauthenticated, "signature does not verify"},
			{"mchid swapped to another merchant holding the same key", good("t-mchid", f.active, 0, func(r *request) {
				a, _ := signing.ParseAuthorization(r.header[0])
				a.MchID = f.limited // the signature does not cover mchid; the key does: that merchant's rules apply
				r.header = []string{a.String()}
			}), 403, paygate.CodeForbidden, "allow-list"},
			{"signed by another key", good("otherkey", f.active, 0, func(r *request) {
				r.header = []string{authorization(t, otherKey, f.active, f.serial, method, uri, body, now, "N-otherkey")}
			}), 401, paygate.CodeUnauthenticated, "signature does not verify"},
			{"unknown serial", good("serial", f.active, 0, func(r *request) {
				r.header = []string{authorization(t, authKey, f.active, "0123456789ABCDEF", method, uri, body, now, "N-serial")}
			}), 401, paygate.CodeUnauthenticated, "unknown mchid or serial_no, or the key was revoked"},
			{"unknown mchid", good("mchid", "1000000001", 0, nil), 401, paygate.CodeUnauthenticated, "unknown mchid or serial_no, or the key was revoked"},
			{"malformed mchid", good("badmchid", "shop", 0, nil), 401, paygate.CodeUnauthenticated, "unknown mchid or serial_no, or the key was revoked"},
			{"revoked serial", good("revoked", f.revoked, 0, nil), 401, paygate.CodeUnauthenticated, "unknown mchid or serial_no, or the key was revoked"},
			{"the other key of that merchant", good("revoked-other", f.revoked, 0, func(r *request) {
				r.header = []string{authorization(t, otherKey, f.revoked, signing.SerialNo(&otherKey.PublicKey), method, uri, body, now, "N-ro")}
			}), 200, "", ""},
			{"IP allowed", good("ip-ok", f.limited, 0, func(r *request) { r.remote = "203.0.113.77:5555" }), 200, "", ""},
			{"IPv4-mapped IP allowed", good("ip-mapped", f.limited, 0, func(r *request) { r.remote = "[::ffff:203.0.113.77]:5555" }), 200, "", ""},
			// Every request carries X-Forwarded-For: 203.0.113.1, inside the
			// allow-list; without trusted proxies it is not believed.
			{"IP not allowed", good("ip-no", f.limited, 0, nil), 403, paygate.CodeForbidden, "allow-list"},
			{"suspended merchant", good("suspended", f.suspended, 0, nil), 403, paygate.CodeForbidden, "SUSPENDED"},
			{"merchant pending review", good("pending", f.pending, 0, nil), 403, paygate.CodeForbidden, "PENDING_REVIEW"},
			{"closed merchant", good("closed", f.closed, 0, nil), 403, paygate.CodeForbidden, "CLOSED"},
			{"body over the limit", good("big", f.active, 0, func(r *request) { r.body = strings.Repeat("x", httpapi.MaxBody+1) }), 413, paygate.CodeTooLarge, "exceeds"},
		}
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				t.Parallel()
				r := tt.req
				req := httptest.NewRequest(r.method, r.uri, strings.NewReader(r.body))
				req.RemoteAddr = r.remote
				for _, h := range r.header {
					req.Header.Add("Authorization", h)
				}
				req.Header.Set("X-Forwarded-For", "203.0.113.1")
				rec := httptest.NewRecorder()
				f.handler.ServeHTTP(rec, req)
				require.Equal(t, tt.status, rec.Code, rec.Body.String())
				f.checkSigned(t, rec)
				if tt.status == 200 {
					var e echoed
					require.NoError(t, json.Unmarshal(rec.Body.Bytes(), &e))
					require.Equal(t, r.body, e.Body, "the handler reads the body again")
					require.Equal(t, r.uri, e.URI)
					a, _ := signing.ParseAuthorization(r.header[0])
					require.Equal(t, a.MchID, e.MchID)
					return
				}
				var body httpapi.ErrorBody
				require.NoError(t, json.Unmarshal(rec.Body.Bytes(), &body))
				require.Equal(t, tt.code, body.Code)
				require.Contains(t, body.Message, tt.msg)
				require.NotContains(t, rec.Body.String(), f.serial, "no key detail in errors")
			})
		}
	})
}

// TestNonceReplay: a nonce is used once, across processes; a request whose
// signature fails does not consume it.
func TestNonceReplay(t *testing.T) {
	t.Parallel()
	for _, d := range []store.Dialect{store.SQLite, store.Postgres} {
		t.Run(string(d), func(t *testing.T) {
			t.Parallel()
			u := storetest.URL(t, d)
			open := func() *store.DB {
				db, err := store.Open(context.Background(), u, store.Options{MaxOpenConns: 4})
				require.NoError(t, err)
				t.Cleanup(func() { db.Close() })
				return db
			}
			dbA := open()
			_, err := dbA.Migrate(context.Background())
			require.NoError(t, err)
			kr, clock := testKeyring(t), paygate.NewManualClock(authT0)
			f := newAuthFixture(t, dbA, kr, clock)
			svcB := merchantService(t, open(), kr, clock) // a second server process
			handlerB := httpapi.SignResponses(svcB, httpapi.Authenticate(svcB, clock, echo))

			send := func(h http.Handler, auth string) int {
				req := httptest.NewRequest("GET", "/v1/orders", nil)
				req.Header.Set("Authorization", auth)
				rec := httptest.NewRecorder()
				h.ServeHTTP(rec, req)
				f.checkSigned(t, rec)
				return rec.Code
			}
			ts := authT0.Unix()
			auth := authorization(t, authKey, f.active, f.serial, "GET", "/v1/orders", "", ts, "ONCE")
			// A forged request with the nonce does not burn it.
			require.Equal(t, 401, send(f.handler, flipSignature(auth)))
			require.Equal(t, 401, send(handlerB, flipSignature(auth)))
			require.Equal(t, 200, send(f.handler, auth))
			require.Equal(t, 401, send(f.handler, auth), "replay to the same process")
			require.Equal(t, 401, send(handlerB, auth), "replay to another process")
			// The same nonce under another merchant is its own.
			other := authorization(t, authKey, f.limited, f.serial, "GET", "/v1/orders", "", ts, "ONCE")
			req := httptest.NewRequest("GET", "/v1/orders", nil)
			req.RemoteAddr = "203.0.113.5:1"
			req.Header.Set("Authorization", other)
			rec := httptest.NewRecorder()
			handlerB.ServeHTTP(rec, req)
			require.Equal(t, 200, rec.Code, rec.Body.String())

			// Once the window has passed, the replay fails on its timestamp.
			clock.Set(authT0.Add(301 * time.Second))
			require.Equal(t, 401, send(handlerB, auth))
		})
	}
}

func TestTrustedProxies(t *testing.T) {
	t.Parallel()
	db := storetest.Open(t, store.SQLite)
	clock := paygate.NewManualClock(authT0)
	f := newAuthFixture(t, db, testKeyring(t), clock)
	h := httpapi.SignResponses(f.svc, httpapi.AuthConfig{Verifier: f.svc, Clock: clock,
		TrustedProxies: []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8")}}.Wrap(echo))
	tests := []struct {
		remote string
		xff    []string
		status int
	}{
		{"10.1.1.1:80", []string{"203.0.113.5"}, 200},
		{"10.1.1.1:80", []string{"198.51.100.9, 203.0.113.5, 10.2.2.2"}, 200}, // the rightmost hop not a proxy
		{"10.1.1.1:80", []string{"203.0.113.5", "10.2.2.2"}, 200},             // several header lines
		{"10.1.1.1:80", []string{"203.0.113.5, 198.51.100.9"}, 403},           // a client-supplied left entry is not believed
		{"10.1.1.1:80", nil, 403},                                             // the proxy itself
		{"10.1.1.1:80", []string{"garbage, 203.0.113.5"}, 200},                // left of the client: never read
		{"10.1.1.1:80", []string{"203.0.113.5, garbage"}, 403},                // a malformed hop stops the walk
		{"198.51.100.1:80", []string{"203.0.113.5"}, 403},                     // not from a trusted proxy
		{"203.0.113.8:80", []string{"198.51.100.1"}, 200},                     // direct client inside the list
		{"not an address", nil, 403},
	}
	for i, tt := range tests {
		t.Run(strconv.Itoa(i), func(t *testing.T) {
			t.Parallel()
			req := httptest.NewRequest("GET", "/v1/orders", nil)
			req.RemoteAddr = tt.remote
			for _, v := range tt.xff {
				req.Header.Add("X-Forwarded-For", v)
			}
			req.Header.Set("Authorization", authorization(t, authKey, f.limited, f.serial, "GET", "/v1/orders", "", authT0.Unix(), "P"+strconv.Itoa(i)))
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, req)
			require.Equal(t, tt.status, rec.Code, rec.Body.String())
		})
	}
}

// TestOfficialSDK drives the middleware with WeChat Pay's official Go SDK:
// its signer builds the Authorization header, its validator checks the
// response signatures with the platform public key.
func TestOfficialSDK(t *testing.T) {
	t.Parallel()
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		svc := merchantService(t, db, testKeyring(t), paygate.SystemClock{})
		pk, err := svc.EnsurePlatformKey(ctx)
		require.NoError(t, err)
		platformPub, err := signing.ParsePublicKeyPEM([]byte(pk.PublicKeyPEM))
		require.NoError(t, err)
		c, err := svc.Create(ctx, merchant.CreateRequest{Name: "SDK Shop", Sandbox: true})
		require.NoError(t, err)

		mux := http.NewServeMux()
		mux.Handle("GET /v1/certificates", httpapi.CertificatesHandler(svc))
		mux.Handle("POST /v1/echo", echo)
		srv := httptest.NewServer(httpapi.SignResponses(svc, httpapi.Authenticate(svc, paygate.SystemClock{}, mux)))
		defer srv.Close()

		client, err := core.NewClient(ctx, option.WithWechatPayPublicKeyAuthCipher(c.Merchant.ID, c.Key.SerialNo, c.PrivateKey, pk.SerialNo, platformPub))
		require.NoError(t, err)
		res, err := client.Get(ctx, srv.URL+"/v1/certificates?limit=10")
		require.NoError(t, err)
		require.Equal(t, 200, res.Response.StatusCode)
		var list httpapi.CertificateList
		require.NoError(t, json.NewDecoder(res.Response.Body).Decode(&list))
		require.Len(t, list.Data, 1)
		require.Equal(t, pk.SerialNo, list.Data[0].SerialNo)
		require.Equal(t, pk.PublicKeyPEM, list.Data[0].PublicKey)
		require.Equal(t, pk.ValidUntil, list.Data[0].ExpireTime)

		res, err = client.Post(ctx, srv.URL+"/v1/echo", map[string]any{"amount": map[string]any{"total": 100, "currency": "CNY"}})
		require.NoError(t, err)
		var e echoed
		require.NoError(t, json.NewDecoder(res.Response.Body).Decode(&e))
		require.Equal(t, c.Merchant.ID, e.MchID)
		require.JSONEq(t, `{"amount":{"total":100,"currency":"CNY"}}`, e.Body)

		// The SDK refuses responses signed by a key it does not trust.
		wrong, err := core.NewClient(ctx, option.WithWechatPayPublicKeyAuthCipher(c.Merchant.ID, c.Key.SerialNo, c.PrivateKey, pk.SerialNo, &otherKey.PublicKey))
		require.NoError(t, err)
		_, err = wrong.Get(ctx, srv.URL+"/v1/certificates")
		require.Error(t, err)
		require.Contains(t, err.Error(), "verify")

		// Once the merchant's key is revoked, the SDK gets a (signed) 401.
		require.NoError(t, svc.RevokeKey(ctx, c.Merchant.ID, c.Key.SerialNo))
		_, err = client.Get(ctx, srv.URL+"/v1/certificates")
		var apiErr *core.APIError
		require.True(t, errors.As(err, &apiErr), "%v", err)
		require.Equal(t, 401, apiErr.StatusCode)
		require.Equal(t, string(paygate.CodeUnauthenticated), apiErr.Code)
	})
}

// fakeSigner signs with a fixed key, or fails.
type fakeSigner struct {
	key *rsa.PrivateKey
	err error
	now time.Time
}

func (s fakeSigner) SigningKey(context.Context) (string, *rsa.PrivateKey, error) {
	return "FAKE", s.key, s.err
}
func (s fakeSigner) Now() time.Time { return s.now }

func TestSignResponses(t *testing.T) {
	t.Parallel()
	signer := fakeSigner{key: authKey, now: authT0}
	verify := func(t *testing.T, rec *httptest.ResponseRecorder) {
		t.Helper()
		h := rec.Header()
		require.Equal(t, "FAKE", h.Get(signing.HeaderSerial))
		require.Equal(t, strconv.FormatInt(authT0.Unix(), 10), h.Get(signing.HeaderTimestamp))
		require.NoError(t, signing.Verify(&authKey.PublicKey, signing.ResponseMessage(authT0.Unix(), h.Get(signing.HeaderNonce), rec.Body.Bytes()),
			h.Get(signing.HeaderSignature)))
	}
	tests := []struct {
		name    string
		handler http.HandlerFunc
		status  int
		body    string
	}{
		{"status, headers and body kept", func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Location", "/v1/orders/1")
			w.WriteHeader(201)
			w.WriteHeader(500) // ignored, as net/http would
			io.WriteString(w, `{"id":`)
			io.WriteString(w, `"1"}`)
		}, 201, `{"id":"1"}`},
		{"implicit 200", func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "ok") }, 200, "ok"},
		{"empty body", func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(204) }, 204, ""},
		{"nothing written", func(w http.ResponseWriter, r *http.Request) {}, 200, ""},
		{"error", func(w http.ResponseWriter, r *http.Request) {
			httpapi.WriteError(w, paygate.E(paygate.CodeNotFound, "no such order"))
		}, 404, `{"code":"NOT_FOUND","message":"no such order"}` + "\n"},
		{"panic after writing", func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Location", "/secret")
			io.WriteString(w, "partial")
			panic("boom")
		}, 500, `{"code":"INTERNAL","message":"internal error"}` + "\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			rec := httptest.NewRecorder()
			httpapi.SignResponses(signer, tt.handler).ServeHTTP(rec, httptest.NewRequest("GET", "/v1/x", nil))
			require.Equal(t, tt.status, rec.Code)
			require.Equal(t, tt.body, rec.Body.String())
			verify(t, rec)
			if tt.status == 500 {
				require.Empty(t, rec.Header().Get("Location"), "the panicking handler's headers are dropped")
				require.NotContains(t, rec.Body.String(), "boom")
			}
		})
	}

	t.Run("abort handler still aborts", func(t *testing.T) {
		t.Parallel()
		h := httpapi.SignResponses(signer, http.HandlerFunc(func(http.ResponseWriter, *http.Request) { panic(http.ErrAbortHandler) }))
		require.PanicsWithValue(t, http.ErrAbortHandler, func() {
			h.ServeHTTP(httptest.NewRecorder(), httptest.NewRequest("GET", "/v1/x", nil))
		})
	})
	t.Run("no signing key", func(t *testing.T) {
		t.Parallel()
		rec := httptest.NewRecorder()
		httpapi.SignResponses(fakeSigner{err: errors.New("database down")}, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Location", "/v1/orders/1")
			w.WriteHeader(201)
		})).ServeHTTP(rec, httptest.NewRequest("GET", "/v1/x", nil))
		require.Equal(t, 503, rec.Code)
		require.Empty(t, rec.Header().Get(signing.HeaderSignature))
		require.Empty(t, rec.Header().Get("Location"))
		require.NotContains(t, rec.Body.String(), "database down")
	})
}

// BenchmarkAuthenticate measures one authenticated, signed request through
// the middleware on each store: parse, key look-up (one round trip),
// RSA verify, nonce insert (one round trip), response signing (RSA sign).
// The sub-benchmark "verify-only" leaves out response signing.
func BenchmarkAuthenticate(b *testing.B) {
	for _, d := range []store.Dialect{store.SQLite, store.Postgres} {
		b.Run(string(d), func(b *testing.B) {
			db := storetest.Open(b, d)
			clock := paygate.NewManualClock(authT0)
			svc := merchantService(b, db, testKeyring(b), clock)
			_, err := svc.EnsurePlatformKey(context.Background())
			require.NoError(b, err)
			c, err := svc.Create(context.Background(), merchant.CreateRequest{Name: "Bench", Sandbox: true, PublicKeyPEM: signing.PublicKeyPEM(&authKey.PublicKey)})
			require.NoError(b, err)
			ok := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, `{"ok":true}`) })
			for _, v := range []struct {
				name string
				h    http.Handler
			}{
				{"verify-only", httpapi.Authenticate(svc, clock, ok)},
				{"verify+sign", httpapi.SignResponses(svc, httpapi.Authenticate(svc, clock, ok))},
			} {
				run := 0
				b.Run(v.name, func(b *testing.B) {
					run++
					// Authorization headers are prepared outside the timer:
					// the client's signing is not the server's cost.
					auths := make([]string, b.N)
					b.StopTimer()
					for i := range auths {
						auths[i] = authorization(b, authKey, c.Merchant.ID, c.Key.SerialNo, "GET", "/v1/orders", "", authT0.Unix(),
							v.name+strconv.Itoa(run)+"-"+strconv.Itoa(i))
					}
					b.StartTimer()
					for i := 0; i < b.N; i++ {
						req := httptest.NewRequest("GET", "/v1/orders", nil)
						req.Header.Set("Authorization", auths[i])
						rec := httptest.NewRecorder()
						v.h.ServeHTTP(rec, req)
						if rec.Code != 200 {
							b.Fatalf("%d %s", rec.Code, rec.Body)
						}
					}
				})
			}
		})
	}
}
