package web

import (
	"context"
	"net/http"
	"net/http/httptest"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"paygate"
	"paygate/payment"
)

type oneOrder struct{}

func (oneOrder) CheckoutView(ctx context.Context, id string) (payment.CheckoutOrder, error) {
	if id != "ord_a" && id != "ord_b" {
		return payment.CheckoutOrder{}, paygate.E(paygate.CodeNotFound, "order not found")
	}
	return payment.CheckoutOrder{ID: id, MerchantName: "M", Description: "D", Total: 1, Currency: "CNY",
		Status: payment.StatusNotPay, TimeExpire: time.Now().Add(time.Hour), MerchantCanTransact: true}, nil
}

var tokenRE = regexp.MustCompile(`"X-CSRF-Token": "([A-Za-z0-9_-]+)"`)

// TestCSRF: a POST passes only with the order's token and the cookie it
// was made for, and never from another origin.
func TestCSRF(t *testing.T) {
	t.Parallel()
	for _, secure := range []bool{false, true} {
		h, err := New(Config{Orders: oneOrder{}, SecureCookies: secure})
		require.NoError(t, err)
		mux := http.NewServeMux()
		h.Register(mux)
		mux.Handle("POST /checkout/{id}/test", h.protect(func(w http.ResponseWriter, r *http.Request) {
			w.WriteHeader(http.StatusNoContent)
		}))

		// The page sets the cookie and renders the token.
		rec := httptest.NewRecorder()
		mux.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/checkout/ord_a", nil))
		cookies := rec.Result().Cookies()
		require.Len(t, cookies, 1)
		c := cookies[0]
		require.True(t, c.HttpOnly)
		require.Equal(t, http.SameSiteLaxMode, c.SameSite)
		require.Equal(t, "/", c.Path)
		require.Equal(t, secure, c.Secure)
		if secure {
			require.Equal(t, "__Host-pg_csrf", c.Name)
		} else {
			require.Equal(t, "pg_csrf", c.Name)
		}
		m := tokenRE.FindStringSubmatch(rec.Body.String())
		require.Len(t, m, 2)
		token := m[1]

		// A second visit with the cookie keeps it and renders the same token.
		rec = httptest.NewRecorder()
		req := httptest.NewRequest(http.MethodGet, "/checkout/ord_a", nil)
		req.AddCookie(c)
		mux.ServeHTTP(rec, req)
		require.Empty(t, rec.Result().Cookies())
		require.Equal(t, token, tokenRE.FindStringSubmatch(rec.Body.String())[1])

		post := func(order, tok string, cookie *http.Cookie, hdr map[string]string, asHeader bool) int {
			form := url.Values{}
			if tok != "" && !asHeader {
				form.Set(csrfField, tok)
			}
			req := httptest.NewRequest(http.MethodPost, "/checkout/"+order+"/test", strings.NewReader(form.Encode()))
			req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
			if asHeader {
				req.Header.Set(csrfHeader, tok)
			}
			if cookie != nil {
				req.AddCookie(cookie)
			}
			for k, v := range hdr {
				req.Header.Set(k, v)
			}
			rec := httptest.NewRecorder()
			mux.ServeHTTP(rec, req)
			return rec.Code
		}
		forged := token[:len(token)-1] + "A"
		if strings.HasSuffix(token, "A") {
			forged = token[:len(token)-1] + "B"
		}
		other := &http.Cookie{Name: c.Name, Value: strings.Repeat("A", 43)}
		tests := []struct {
			name     string
			order    string
			token    string
			cookie   *http.Cookie
			hdr      map[string]string
			asHeader bool
			want     int
		}{
			{"form token", "ord_a", token, c, nil, false, http.StatusNoContent},
			{"header token (htmx)", "ord_a", token, c, map[string]string{"Sec-Fetch-Site": "same-origin"}, true, http.StatusNoContent},
			{"no token", "ord_a", "", c, nil, false, http.StatusForbidden},
			{"no cookie", "ord_a", token, nil, nil, false, http.StatusForbidden},
			{"another browser's cookie", "ord_a", token, other, nil, false, http.StatusForbidden},
			{"malformed cookie", "ord_a", token, &http.Cookie{Name: c.Name, Value: "x"}, nil, false, http.StatusForbidden},
			{"another order's token", "ord_b", token, c, nil, false, http.StatusForbidden},
			{"forged token", "ord_a", forged, c, nil, false, http.StatusForbidden},
			{"cross-site", "ord_a", token, c, map[string]string{"Sec-Fetch-Site": "cross-site"}, false, http.StatusForbidden},
			{"foreign origin", "ord_a", token, c, map[string]string{"Origin": "https://evil.example"}, false, http.StatusForbidden},
		}
		for _, tt := range tests {
			require.Equal(t, tt.want, post(tt.order, tt.token, tt.cookie, tt.hdr, tt.asHeader), "secure=%v %s", secure, tt.name)
		}
	}
}
