package web_test

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"paygate"
	"paygate/customer"
	"paygate/store"
	"paygate/store/storetest"
	"paygate/web"
)

var _ web.SessionStore = store.Sessions{}

// sessionCustomers inserts bare customer rows (sessions reference them).
func sessionCustomers(t *testing.T, db *store.DB, ids ...string) {
	t.Helper()
	ctx := context.Background()
	require.NoError(t, db.Customers().InTx(ctx, func(tx customer.Tx) error {
		for i, id := range ids {
			r := customer.Record{PasswordHash: "$argon2id$x"}
			r.ID, r.Phone, r.Status, r.Factors, r.OnlinePayment = id, "1390000000"+string(rune('0'+i)), customer.StatusActive, customer.FactorPassword, true
			r.CreatedAt, r.UpdatedAt = t0, t0
			ok, err := tx.InsertCustomer(ctx, r)
			require.NoError(t, err)
			require.True(t, ok)
		}
		return nil
	}))
}

func newSessions(t *testing.T, db *store.DB, secure bool) (*web.Sessions, *paygate.ManualClock) {
	t.Helper()
	clock := paygate.NewManualClock(t0)
	s, err := web.NewSessions(web.SessionConfig{Store: db.Sessions(), Clock: clock, Secure: secure})
	require.NoError(t, err)
	return s, clock
}

// start starts a session and returns its cookie.
func start(t *testing.T, s *web.Sessions, customerID string) *http.Cookie {
	t.Helper()
	rec := httptest.NewRecorder()
	require.NoError(t, s.Start(context.Background(), rec, customerID))
	cs := rec.Result().Cookies()
	require.Len(t, cs, 1)
	return cs[0]
}

// whoIs asks the session of a request carrying the cookie.
func whoIs(s *web.Sessions, c *http.Cookie) (string, bool) {
	r := httptest.NewRequest(http.MethodGet, "/portal/", nil)
	if c != nil {
		r.AddCookie(c)
	}
	return s.Customer(r)
}

func TestSessionCookie(t *testing.T) {
	t.Parallel()
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		sessionCustomers(t, db, "cus_a")
		for _, tc := range []struct {
			secure bool
			name   string
		}{{false, "pg_session"}, {true, "__Host-pg_session"}} {
			s, _ := newSessions(t, db, tc.secure)
			c := start(t, s, "cus_a")
			require.Equal(t, tc.name, c.Name)
			require.Equal(t, tc.secure, c.Secure)
			require.True(t, c.HttpOnly)
			require.Equal(t, http.SameSiteLaxMode, c.SameSite)
			require.Equal(t, "/", c.Path)
			require.Empty(t, c.Domain)
			require.Zero(t, c.MaxAge, "a browser-session cookie")
			require.Len(t, c.Value, 43, "256 random bits, base64url")
			id, ok := whoIs(s, c)
			require.True(t, ok)
			require.Equal(t, "cus_a", id)
		}

		// Only the token's SHA-256 is stored.
		s, _ := newSessions(t, db, false)
		c := start(t, s, "cus_a")
		sum := sha256.Sum256([]byte(c.Value))
		var n int
		require.NoError(t, db.SQL.QueryRow(`SELECT COUNT(*) FROM customer_sessions WHERE token_hash = $1`, hex.EncodeToString(sum[:])).Scan(&n))
		require.Equal(t, 1, n)
		require.NoError(t, db.SQL.QueryRow(`SELECT COUNT(*) FROM customer_sessions WHERE token_hash = $1 OR customer_id = $1`, c.Value).Scan(&n))
		require.Zero(t, n)

		require.Equal(t, paygate.CodeInvalidArgument, paygate.CodeOf(s.Start(context.Background(), httptest.NewRecorder(), "")))
	})
}

func TestSessionExpiry(t *testing.T) {
	t.Parallel()
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		sessionCustomers(t, db, "cus_a")
		for _, tc := range []struct {
			name  string
			steps []time.Duration // advance, then use the session
			alive []bool
		}{
			{"idle slides", []time.Duration{14 * time.Minute, 14 * time.Minute, 14 * time.Minute}, []bool{true, true, true}},
			{"idle 15 min ends it", []time.Duration{10 * time.Minute, 15 * time.Minute}, []bool{true, false}},
			{"just before idle", []time.Duration{15*time.Minute - time.Microsecond}, []bool{true}},
			{"dead stays dead", []time.Duration{16 * time.Minute, time.Second}, []bool{false, false}},
		} {
			s, clock := newSessions(t, db, false)
			c := start(t, s, "cus_a")
			for i, d := range tc.steps {
				clock.Advance(d)
				_, ok := whoIs(s, c)
				require.Equal(t, tc.alive[i], ok, "%s: step %d", tc.name, i)
			}
		}

		// The absolute lifetime ends a session however busy it is.
		s, clock := newSessions(t, db, false)
		c := start(t, s, "cus_a")
		for elapsed := time.Duration(0); elapsed < 12*time.Hour-10*time.Minute; elapsed += 10 * time.Minute {
			clock.Advance(10 * time.Minute)
			_, ok := whoIs(s, c)
			require.True(t, ok, "at %s", elapsed+10*time.Minute)
		}
		clock.Set(t0.Add(12*time.Hour - time.Microsecond))
		_, ok := whoIs(s, c)
		require.True(t, ok)
		clock.Set(t0.Add(12 * time.Hour))
		_, ok = whoIs(s, c)
		require.False(t, ok, "12 h after login")

		// Custom durations, and their validation.
		short, err := web.NewSessions(web.SessionConfig{Store: db.Sessions(), Clock: clock, Idle: time.Minute, Max: 2 * time.Minute})
		require.NoError(t, err)
		c = start(t, short, "cus_a")
		clock.Advance(61 * time.Second)
		_, ok = whoIs(short, c)
		require.False(t, ok)
		for _, cfg := range []web.SessionConfig{
			{}, {Store: db.Sessions(), Idle: time.Hour, Max: time.Minute}, {Store: db.Sessions(), Idle: -time.Second},
		} {
			_, err := web.NewSessions(cfg)
			require.Equal(t, paygate.CodeInvalidArgument, paygate.CodeOf(err))
		}
	})
}

func TestSessionRotationAndEnd(t *testing.T) {
	t.Parallel()
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		sessionCustomers(t, db, "cus_a", "cus_b")
		s, clock := newSessions(t, db, false)

		// Start issues a new token every time: a token already in the
		// browser (a fixated one) is never reused.
		c1 := start(t, s, "cus_a")
		c2 := start(t, s, "cus_a")
		require.NotEqual(t, c1.Value, c2.Value)

		// End deletes the row and clears the cookie; a saved copy is dead.
		r := httptest.NewRequest(http.MethodPost, "/portal/logout", nil)
		r.AddCookie(c2)
		rec := httptest.NewRecorder()
		s.End(rec, r)
		cleared := rec.Result().Cookies()
		require.Len(t, cleared, 1)
		require.Equal(t, "pg_session", cleared[0].Name)
		require.Negative(t, cleared[0].MaxAge)
		_, ok := whoIs(s, c2)
		require.False(t, ok)
		_, ok = whoIs(s, c1)
		require.True(t, ok, "ending one session leaves the others")

		// End without a session only clears the cookie.
		rec = httptest.NewRecorder()
		s.End(rec, httptest.NewRequest(http.MethodPost, "/", nil))
		require.Len(t, rec.Result().Cookies(), 1)

		// EndAll ends every session of one customer only.
		b := start(t, s, "cus_b")
		c3 := start(t, s, "cus_a")
		require.NoError(t, s.EndAll(context.Background(), "cus_a"))
		for _, c := range []*http.Cookie{c1, c3} {
			_, ok := whoIs(s, c)
			require.False(t, ok)
		}
		id, ok := whoIs(s, b)
		require.True(t, ok)
		require.Equal(t, "cus_b", id)

		// Expired rows are swept by later logins.
		clock.Advance(13 * time.Hour)
		start(t, s, "cus_a")
		var n int
		require.NoError(t, db.SQL.QueryRow(`SELECT COUNT(*) FROM customer_sessions`).Scan(&n))
		require.Equal(t, 1, n)
	})
}

func TestSessionForgedCookies(t *testing.T) {
	t.Parallel()
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		sessionCustomers(t, db, "cus_a")
		s, _ := newSessions(t, db, false)
		real := start(t, s, "cus_a")
		sum := sha256.Sum256([]byte(real.Value))
		flipped := []byte(real.Value)
		flipped[10] ^= 1
		for _, tc := range []struct {
			name   string
			cookie *http.Cookie
		}{
			{"none", nil},
			{"empty", &http.Cookie{Name: "pg_session", Value: ""}},
			{"short", &http.Cookie{Name: "pg_session", Value: "abc"}},
			{"not base64", &http.Cookie{Name: "pg_session", Value: strings.Repeat("!", 43)}},
			{"random, well-formed", &http.Cookie{Name: "pg_session", Value: strings.Repeat("A", 43)}},
			{"one bit off", &http.Cookie{Name: "pg_session", Value: string(flipped)}},
			{"the stored hash", &http.Cookie{Name: "pg_session", Value: hex.EncodeToString(sum[:])}},
			{"huge", &http.Cookie{Name: "pg_session", Value: strings.Repeat("A", 4000)}},
			{"right token, wrong name", &http.Cookie{Name: "__Host-pg_session", Value: real.Value}},
		} {
			_, ok := whoIs(s, tc.cookie)
			require.False(t, ok, tc.name)
		}
	})
}
