package netbank

// The pages' defences.
//
//   - CSRF, two layers as on the checkout (web/csrf.go): net/http's
//     CrossOriginProtection refuses cross-origin POSTs by Sec-Fetch-Site or
//     Origin, and a signed double-submit token: a random cookie
//     (pg_bank_csrf, or __Host-pg_bank_csrf + Secure over https; HttpOnly,
//     SameSite=Lax) and, in each form's hidden csrf_token field,
//     HMAC-SHA256(key, "csrf\x00" + attempt id + "\x00" + cookie). A token
//     is good for one payment session and one browser only.
//   - The login between the two steps is a hidden field too: a token
//     "customer id.expiry.MAC" with the MAC over the attempt id, the
//     customer id and the expiry (TokenTTL after the login). It cannot be
//     forged, moved to another payment or extended.
//   - Every page: a strict Content-Security-Policy (no script at all,
//     styles from the bank's own stylesheet only; forms may post to the
//     bank and be redirected to the merchant's return URL only), no
//     framing, no referrer, no caching.

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"paygate"
)

const csrfField = "csrf_token"

func (b *Bank) csrfCookieName() string {
	if b.secure {
		return "__Host-pg_bank_csrf"
	}
	return "pg_bank_csrf"
}

// csrfToken returns the session's CSRF token for the browser, setting the
// cookie first when it has none (or a malformed one).
func (b *Bank) csrfToken(w http.ResponseWriter, r *http.Request, attemptID string) string {
	secret := ""
	if c, err := r.Cookie(b.csrfCookieName()); err == nil && validCookie(c.Value) {
		secret = c.Value
	} else {
		buf := make([]byte, 32)
		rand.Read(buf)
		secret = base64.RawURLEncoding.EncodeToString(buf)
		http.SetCookie(w, &http.Cookie{Name: b.csrfCookieName(), Value: secret, Path: "/", HttpOnly: true,
			Secure: b.secure, SameSite: http.SameSiteLaxMode})
	}
	return b.mac("csrf", attemptID, secret)
}

func validCookie(v string) bool {
	raw, err := base64.RawURLEncoding.DecodeString(v)
	return err == nil && len(raw) == 32
}

// mac is the pages' HMAC of its parts under the page key.
func (b *Bank) mac(parts ...string) string {
	m := hmac.New(sha256.New, b.csrfKey)
	m.Write([]byte(strings.Join(parts, "\x00")))
	return base64.RawURLEncoding.EncodeToString(m.Sum(nil))
}

// checkCSRF verifies a POST's token for the attempt.
func (b *Bank) checkCSRF(r *http.Request, attemptID string) bool {
	c, err := r.Cookie(b.csrfCookieName())
	if err != nil || !validCookie(c.Value) {
		return false
	}
	tok := r.PostFormValue(csrfField)
	return tok != "" && hmac.Equal([]byte(tok), []byte(b.mac("csrf", attemptID, c.Value)))
}

// protect wraps the POST handlers: cross-origin requests and requests
// without the session's CSRF token get 403 and never reach next.
func (b *Bank) protect(next http.HandlerFunc) http.Handler {
	cop := http.NewCrossOriginProtection()
	cop.SetDenyHandler(http.HandlerFunc(b.forbidden))
	return cop.Handler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		r.Body = http.MaxBytesReader(w, r.Body, 64<<10)
		if !b.checkCSRF(r, r.PathValue("attempt")) {
			b.forbidden(w, r)
			return
		}
		next(w, r)
	}))
}

func (b *Bank) forbidden(w http.ResponseWriter, r *http.Request) {
	b.render(w, http.StatusForbidden, "message", &view{Title: "This form has expired",
		Detail: "Nothing has been charged. Go back to the merchant's checkout and choose online banking again."}, nil)
}

// loginToken returns the token carrying the customer's login to the
// confirmation step of the attempt, good for TokenTTL.
func (b *Bank) loginToken(attemptID, customerID string, now time.Time) string {
	exp := strconv.FormatInt(now.Add(TokenTTL).Unix(), 10)
	return customerID + "." + exp + "." + b.mac("login", attemptID, customerID, exp)
}

// checkLogin returns the customer whose unexpired token for the attempt
// tok is. Errors: CodeUnauthenticated, the same for every failure.
func (b *Bank) checkLogin(tok, attemptID string, now time.Time) (string, error) {
	bad := paygate.E(paygate.CodeUnauthenticated, "your online-banking login has timed out; please log in again")
	i := strings.LastIndexByte(tok, '.')
	if i < 0 || len(tok) > 256 {
		return "", bad
	}
	j := strings.LastIndexByte(tok[:i], '.')
	if j <= 0 {
		return "", bad
	}
	cus, exp, sig := tok[:j], tok[j+1:i], tok[i+1:]
	if !hmac.Equal([]byte(sig), []byte(b.mac("login", attemptID, cus, exp))) {
		return "", bad
	}
	sec, err := strconv.ParseInt(exp, 10, 64)
	if err != nil || !now.Before(time.Unix(sec, 0)) {
		return "", bad
	}
	return cus, nil
}

// secure sets the security headers of a page. formTargets are the origins
// besides the bank's own that its forms may end up at (a POST answered
// with a redirect to the merchant: CSP's form-action covers redirects).
func secure(w http.ResponseWriter, formTargets []string) {
	fa := "'self'"
	for _, o := range formTargets {
		fa += " " + o
	}
	hd := w.Header()
	hd.Set("Content-Security-Policy", "default-src 'none'; style-src 'self'; img-src 'self'; form-action "+fa+
		"; frame-ancestors 'none'; base-uri 'none'")
	hd.Set("X-Frame-Options", "DENY")
	hd.Set("X-Content-Type-Options", "nosniff")
	hd.Set("Referrer-Policy", "no-referrer")
	hd.Set("Cross-Origin-Opener-Policy", "same-origin")
	hd.Set("Permissions-Policy", "camera=(), microphone=(), geolocation=(), payment=()")
	hd.Set("Cache-Control", "no-store")
}

// origin returns the CSP source of an absolute http(s) URL's origin, or
// "" when it has none fit for a header.
func origin(raw string) string {
	u, err := url.Parse(raw)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return ""
	}
	for _, c := range u.Host {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '.' || c == '-' || c == ':' || c == '[' || c == ']') {
			return ""
		}
	}
	return u.Scheme + "://" + u.Host
}
