package web

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"log/slog"
	"net/http"
	"time"

	"paygate"
)

// Session defaults.
const (
	DefaultSessionIdle = 15 * time.Minute // a session unused this long ends
	DefaultSessionMax  = 12 * time.Hour   // a session ends this long after login, used or not
)

// SessionStore keeps the server side of customers' sessions;
// store.DB.Sessions() implements it. tokenHash is the hex SHA-256 of a
// session's token: the token itself is only ever in the customer's cookie.
type SessionStore interface {
	// CreateSession stores a new session of the customer, live until
	// idleUntil (capped at expiresAt). Errors: CodeConflict (the hash
	// exists), CodeInvalidArgument, CodeUnavailable, CodeInternal.
	CreateSession(ctx context.Context, tokenHash, customerID string, createdAt, idleUntil, expiresAt time.Time) error
	// TouchSession returns the customer of the session live at now and
	// slides its idle expiry to idleUntil (never past its absolute expiry).
	// Errors: CodeNotFound (unknown or expired), CodeUnavailable,
	// CodeInternal.
	TouchSession(ctx context.Context, tokenHash string, now, idleUntil time.Time) (customerID string, err error)
	// DeleteSession deletes the session, if it exists.
	DeleteSession(ctx context.Context, tokenHash string) error
	// DeleteCustomerSessions deletes every session of the customer.
	DeleteCustomerSessions(ctx context.Context, customerID string) (int64, error)
	// DeleteExpiredSessions deletes up to limit sessions expired at now.
	DeleteExpiredSessions(ctx context.Context, now time.Time, limit int) (int64, error)
}

// SessionConfig configures Sessions. Store is required; zero durations
// take the defaults (Idle DefaultSessionIdle, Max DefaultSessionMax); a nil
// Clock is the system clock.
type SessionConfig struct {
	Store SessionStore
	Clock paygate.Clock
	// Secure marks the cookie Secure and names it "__Host-pg_session"
	// (set it when the public URL is https); otherwise it is "pg_session".
	Secure bool
	// Idle is how long an unused session lives (each use slides it);
	// Max is how long a session lives after it starts, however used.
	Idle, Max time.Duration
}

// Sessions keeps customers' login sessions, for the customer portal and
// the checkout. A session is a server-side row keyed by the SHA-256 of a
// random 256-bit token; the token travels only in a cookie ("pg_session",
// or "__Host-pg_session" + Secure when SessionConfig.Secure) that is
// HttpOnly, SameSite=Lax, Path=/ and lasts as long as the browser session.
// A session ends after Idle without use (each use slides it), Max after it
// started, or at logout (End), which deletes its row. A forged, expired or
// ended token identifies nobody. Sessions is safe for concurrent use.
type Sessions struct {
	store     SessionStore
	clock     paygate.Clock
	secure    bool
	idle, max time.Duration
	log       *slog.Logger
}

// NewSessions returns Sessions. Errors: CodeInvalidArgument when Store is
// missing, a duration is negative, or Idle exceeds Max.
func NewSessions(cfg SessionConfig) (*Sessions, error) {
	if cfg.Store == nil {
		return nil, paygate.E(paygate.CodeInvalidArgument, "web: SessionConfig.Store is required")
	}
	if cfg.Clock == nil {
		cfg.Clock = paygate.SystemClock{}
	}
	if cfg.Idle == 0 {
		cfg.Idle = DefaultSessionIdle
	}
	if cfg.Max == 0 {
		cfg.Max = DefaultSessionMax
	}
	if cfg.Idle < 0 || cfg.Max < 0 || cfg.Idle > cfg.Max {
		return nil, paygate.E(paygate.CodeInvalidArgument, "web: session durations must be positive, with Idle at most Max")
	}
	return &Sessions{store: cfg.Store, clock: cfg.Clock, secure: cfg.Secure, idle: cfg.Idle, max: cfg.Max, log: slog.Default()}, nil
}

// CookieName is the session cookie's name: "__Host-pg_session" when
// cookies are Secure, "pg_session" otherwise.
func (s *Sessions) CookieName() string {
	if s.secure {
		return "__Host-pg_session"
	}
	return "pg_session"
}

// sessionTokenBytes is the entropy of a session token.
const sessionTokenBytes = 32

// hashToken returns the hex SHA-256 of a well-formed token, or "" for a
// value Start cannot have issued (the store is then not asked at all).
func hashToken(tok string) string {
	b, err := base64.RawURLEncoding.DecodeString(tok)
	if err != nil || len(b) != sessionTokenBytes {
		return ""
	}
	sum := sha256.Sum256([]byte(tok))
	return hex.EncodeToString(sum[:])
}

// token returns the hash of the request's session token, "" when it has
// none or a malformed one.
func (s *Sessions) token(r *http.Request) string {
	c, err := r.Cookie(s.CookieName())
	if err != nil {
		return ""
	}
	return hashToken(c.Value)
}

// HasCookie reports whether the request carries a session cookie at all,
// live or not (to tell "your session ended" from "please log in").
func (s *Sessions) HasCookie(r *http.Request) bool {
	_, err := r.Cookie(s.CookieName())
	return err == nil
}

// Start begins a session for the customer and sets its cookie on w. It
// always issues a new random token, so a token the request carried (a
// fixated one, say) is never reused; callers that have the request should
// also end its old session (End) first. Start also deletes a batch of
// expired sessions, keeping the table small. Errors: CodeInvalidArgument
// (empty customer id) and the store's (CodeUnavailable, CodeInternal);
// no cookie is set then.
func (s *Sessions) Start(ctx context.Context, w http.ResponseWriter, customerID string) error {
	if customerID == "" {
		return paygate.E(paygate.CodeInvalidArgument, "web: a session needs a customer")
	}
	b := make([]byte, sessionTokenBytes)
	rand.Read(b)
	tok := base64.RawURLEncoding.EncodeToString(b)
	now := s.clock.Now().UTC()
	if err := s.store.CreateSession(ctx, hashToken(tok), customerID, now, now.Add(s.idle), now.Add(s.max)); err != nil {
		return err
	}
	if _, err := s.store.DeleteExpiredSessions(ctx, now, 100); err != nil {
		s.log.WarnContext(ctx, "web: deleting expired sessions", "error", err)
	}
	http.SetCookie(w, s.cookie(tok, 0))
	return nil
}

func (s *Sessions) cookie(value string, maxAge int) *http.Cookie {
	return &http.Cookie{Name: s.CookieName(), Value: value, Path: "/", MaxAge: maxAge, HttpOnly: true,
		Secure: s.secure, SameSite: http.SameSiteLaxMode}
}

// Customer returns the customer of the request's session when it is live
// (not idle for Idle, not older than Max, not ended), and slides its idle
// expiry. A missing, malformed, forged, expired or ended cookie, and a
// store that fails (logged), give ok false.
func (s *Sessions) Customer(r *http.Request) (customerID string, ok bool) {
	id, err := s.lookup(r)
	if err != nil && !paygate.HasCode(err, paygate.CodeNotFound) {
		s.log.ErrorContext(r.Context(), "web: reading a session", "error", err)
	}
	return id, err == nil && id != ""
}

// lookup is Customer with the reason kept: "" and nil without a
// well-formed token, CodeNotFound when its session is not live, the
// store's error (CodeUnavailable, CodeInternal) when it cannot tell.
func (s *Sessions) lookup(r *http.Request) (string, error) {
	h := s.token(r)
	if h == "" {
		return "", nil
	}
	now := s.clock.Now().UTC()
	return s.store.TouchSession(r.Context(), h, now, now.Add(s.idle))
}

// End ends the request's session: its row is deleted (the token is dead
// even if a copy of the cookie survives) and the cookie is cleared. A
// request without a session only has its cookie cleared. A store failure
// is logged.
func (s *Sessions) End(w http.ResponseWriter, r *http.Request) {
	s.forget(r)
	http.SetCookie(w, s.cookie("", -1))
}

// forget deletes the request's session row, if any, without touching the
// cookie (a login that Starts a new session right after).
func (s *Sessions) forget(r *http.Request) {
	if h := s.token(r); h != "" {
		if err := s.store.DeleteSession(r.Context(), h); err != nil {
			s.log.ErrorContext(r.Context(), "web: ending a session", "error", err)
		}
	}
}

// EndAll ends every session of the customer, on every device (after a
// password change; an operator's freeze). Errors: the store's
// (CodeUnavailable, CodeInternal).
func (s *Sessions) EndAll(ctx context.Context, customerID string) error {
	_, err := s.store.DeleteCustomerSessions(ctx, customerID)
	return err
}
