package web

// CSRF protection of the checkout's POST forms: two layers.
//
//  1. net/http's CrossOriginProtection refuses a cross-origin unsafe
//     request by its Sec-Fetch-Site or Origin header (every current
//     browser sends one).
//  2. A signed double-submit token, for browsers that send neither: the
//     checkout page sets a random cookie (csrfCookieName; HttpOnly,
//     SameSite=Lax, Secure with the __Host- prefix when SecureCookies) and
//     renders the token HMAC-SHA256(CSRFKey, "checkout\x00" + order id +
//     "\x00" + cookie) in a hidden field csrf_token of each form (and in
//     the X-CSRF-Token header of htmx requests, from hx-headers). A POST
//     passes when the token matches its cookie and its order. Another site
//     can neither read the cookie nor compute the token, and a token is
//     good for one order only.
//
// A POST handler is wrapped with Handler.protect.

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"net/http"

	"paygate"
)

const (
	csrfField  = "csrf_token"   // the form field carrying the token
	csrfHeader = "X-CSRF-Token" // or this header (htmx requests)
)

// csrfCookieName is the name of the CSRF cookie: "__Host-pg_csrf" when
// cookies are Secure, "pg_csrf" over plain HTTP (development, tests).
func (h *Handler) csrfCookieName() string {
	if h.cfg.SecureCookies {
		return "__Host-pg_csrf"
	}
	return "pg_csrf"
}

// csrfToken returns the order's CSRF token for the request's browser,
// setting the CSRF cookie first when the browser has none (or a malformed
// one).
func (h *Handler) csrfToken(w http.ResponseWriter, r *http.Request, orderID string) string {
	secret := ""
	if c, err := r.Cookie(h.csrfCookieName()); err == nil && validCookieValue(c.Value) {
		secret = c.Value
	} else {
		b := make([]byte, 32)
		rand.Read(b)
		secret = base64.RawURLEncoding.EncodeToString(b)
		http.SetCookie(w, &http.Cookie{Name: h.csrfCookieName(), Value: secret, Path: "/", HttpOnly: true,
			Secure: h.cfg.SecureCookies, SameSite: http.SameSiteLaxMode})
	}
	return h.csrfMAC(orderID, secret)
}

// validCookieValue accepts the cookie values csrfToken sets: 43 characters
// of unpadded base64url.
func validCookieValue(v string) bool {
	b, err := base64.RawURLEncoding.DecodeString(v)
	return err == nil && len(b) == 32
}

func (h *Handler) csrfMAC(orderID, secret string) string {
	m := hmac.New(sha256.New, h.cfg.CSRFKey)
	m.Write([]byte("checkout\x00" + orderID + "\x00" + secret))
	return base64.RawURLEncoding.EncodeToString(m.Sum(nil))
}

// checkCSRF verifies a POST's token for the order. Errors: CodeForbidden,
// the same for every failure (no cookie, no token, wrong token).
func (h *Handler) checkCSRF(r *http.Request, orderID string) error {
	bad := paygate.E(paygate.CodeForbidden, "the form has expired; reload the page and try again")
	c, err := r.Cookie(h.csrfCookieName())
	if err != nil || !validCookieValue(c.Value) {
		return bad
	}
	tok := r.Header.Get(csrfHeader)
	if tok == "" {
		tok = r.PostFormValue(csrfField)
	}
	if tok == "" || !hmac.Equal([]byte(tok), []byte(h.csrfMAC(orderID, c.Value))) {
		return bad
	}
	return nil
}

// protect wraps a POST handler of /checkout/{id}/...: cross-origin
// requests and requests without the order's CSRF token are answered 403
// with the error page and never reach next.
func (h *Handler) protect(next http.HandlerFunc) http.Handler {
	cop := http.NewCrossOriginProtection()
	cop.SetDenyHandler(http.HandlerFunc(h.forbidden))
	return cop.Handler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		r.Body = http.MaxBytesReader(w, r.Body, 64<<10)
		if err := h.checkCSRF(r, r.PathValue("id")); err != nil {
			h.forbidden(w, r)
			return
		}
		next(w, r)
	}))
}

// forbidden answers a refused form with the error page.
func (h *Handler) forbidden(w http.ResponseWriter, r *http.Request) {
	h.render(w, http.StatusForbidden, "error", errorPage{Title: "This form has expired. Please reload the page and try again."})
}
