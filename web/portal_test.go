package web_test

import (
	"bytes"
	"context"
	"encoding/csv"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"regexp"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"paygate"
	"paygate/customer"
	"paygate/ledger"
	"paygate/sealing"
	"paygate/store"
	"paygate/store/storetest"
	"paygate/web"
)

// The sandbox customers (docs/CUSTOMERS.md).
const (
	wangLogin  = "13800000001"
	lisiLogin  = "lisi_sandbox"
	plainLogin = "13800000003" // not verified, no payment password
	sandboxPW  = "Sandbox2026!"
	wangCard   = "6288880000000013"
)

// syncBuffer collects logs from many goroutines.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// portalEnv is the portal over a real customer service and database, with
// the sandbox customers seeded, served over HTTP.
type portalEnv struct {
	db     *store.DB
	clock  *paygate.ManualClock
	led    *ledger.Ledger
	svc    *customer.Service
	srv    *httptest.Server
	logs   *syncBuffer
	seeded map[string]customer.SeedResult // by login
}

func newPortalEnv(t *testing.T, db *store.DB, wrap ...func(web.SessionStore) web.SessionStore) *portalEnv {
	t.Helper()
	ctx := context.Background()
	e := &portalEnv{db: db, clock: paygate.NewManualClock(t0), logs: &syncBuffer{}, seeded: map[string]customer.SeedResult{}}
	log := slog.New(slog.NewJSONHandler(e.logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	e.led = ledger.New(db.Ledger(), e.clock, paygate.DefaultCalendar())
	kr, err := sealing.ParseKeyring("AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=")
	require.NoError(t, err)
	idx, err := sealing.NewBlindIndex([]byte("a separate 32-byte blind index key!"))
	require.NoError(t, err)
	e.svc, err = customer.New(customer.Config{Store: db.Customers(), Books: e.led, Clock: e.clock, Keyring: kr, Index: idx,
		Verifier: customer.SimVerifier{}, Logger: log, Hash: customer.HashParams{Time: 1, Memory: 64, Threads: 1}})
	require.NoError(t, err)
	res, err := e.svc.Seed(ctx)
	require.NoError(t, err)
	for _, r := range res {
		e.seeded[r.Customer.Phone+r.Customer.Username] = r
	}
	var ss web.SessionStore = db.Sessions()
	for _, w := range wrap {
		ss = w(ss)
	}
	sessions, err := web.NewSessions(web.SessionConfig{Store: ss, Clock: e.clock})
	require.NoError(t, err)
	portal, err := web.NewPortal(web.PortalConfig{Customers: e.svc, Sessions: sessions, Clock: e.clock, Logger: log,
		CSRFKey: bytes.Repeat([]byte("k"), 32)})
	require.NoError(t, err)
	checkout, err := web.New(web.Config{Orders: fakeOrders{}, Clock: e.clock, Logger: log})
	require.NoError(t, err)
	mux := http.NewServeMux()
	web.Routes{checkout, portal}.Register(mux)
	e.srv = httptest.NewServer(mux)
	t.Cleanup(e.srv.Close)
	return e
}

// customer returns a seeded customer as stored now.
func (e *portalEnv) customer(t *testing.T, login string) customer.Customer {
	t.Helper()
	c, err := e.svc.Customer(context.Background(), e.seeded[login].Customer.ID)
	require.NoError(t, err)
	return c
}

// browser is one browser: a cookie jar, redirects not followed.
type browser struct {
	t    *testing.T
	e    *portalEnv
	c    *http.Client
	jar  *cookiejar.Jar
	last string // the last page's HTML
}

func (e *portalEnv) browser(t *testing.T) *browser {
	jar, err := cookiejar.New(nil)
	require.NoError(t, err)
	return &browser{t: t, e: e, jar: jar, c: &http.Client{Jar: jar, CheckRedirect: func(*http.Request, []*http.Request) error {
		return http.ErrUseLastResponse
	}}}
}

func (b *browser) do(req *http.Request) (*http.Response, string) {
	b.t.Helper()
	resp, err := b.c.Do(req)
	require.NoError(b.t, err)
	body, err := io.ReadAll(resp.Body)
	require.NoError(b.t, err)
	resp.Body.Close()
	b.last = string(body)
	return resp, string(body)
}

func (b *browser) get(path string) (*http.Response, string) {
	b.t.Helper()
	req, err := http.NewRequest(http.MethodGet, b.e.srv.URL+path, nil)
	require.NoError(b.t, err)
	return b.do(req)
}

// post submits a form as is (add csrf_token yourself, or use submit).
func (b *browser) post(path string, form url.Values, hdr ...string) (*http.Response, string) {
	b.t.Helper()
	req, err := http.NewRequest(http.MethodPost, b.e.srv.URL+path, strings.NewReader(form.Encode()))
	require.NoError(b.t, err)
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	return b.do(req)
}

var csrfRE = regexp.MustCompile(`name="csrf_token" value="([^"]+)"`)

// token loads page and returns its CSRF token.
func (b *browser) token(page string) string {
	b.t.Helper()
	resp, body := b.get(page)
	require.Equal(b.t, http.StatusOK, resp.StatusCode, body)
	m := csrfRE.FindStringSubmatch(body)
	require.NotNil(b.t, m, "no CSRF token on %s", page)
	return m[1]
}

// submit posts a form from page with page's CSRF token.
func (b *browser) submit(page, action string, form url.Values) (*http.Response, string) {
	b.t.Helper()
	if form == nil {
		form = url.Values{}
	}
	form.Set("csrf_token", b.token(page))
	return b.post(action, form)
}

func (b *browser) login(login, password string) {
	b.t.Helper()
	resp, body := b.submit("/portal/login", "/portal/login", url.Values{"login": {login}, "password": {password}})
	require.Equal(b.t, http.StatusSeeOther, resp.StatusCode, body)
	require.Equal(b.t, "/portal/", resp.Header.Get("Location"))
}

func (b *browser) sessionCookie() *http.Cookie {
	u, _ := url.Parse(b.e.srv.URL)
	for _, c := range b.jar.Cookies(u) {
		if c.Name == "pg_session" {
			return c
		}
	}
	return nil
}

func requireRedirect(t *testing.T, resp *http.Response, prefix string) {
	t.Helper()
	require.Equal(t, http.StatusSeeOther, resp.StatusCode)
	require.True(t, strings.HasPrefix(resp.Header.Get("Location"), prefix), "redirected to %q, want %q...", resp.Header.Get("Location"), prefix)
}

func TestPortalNeedsLogin(t *testing.T) {
	t.Parallel()
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		e := newPortalEnv(t, db)
		wang := e.seeded[wangLogin]
		b := e.browser(t)
		for _, path := range []string{"/portal/", "/portal/history", "/portal/history.csv?direction=out", "/portal/cards",
			"/portal/settings", "/portal/verify", "/portal/cards/" + wang.Cards[0].ID + "/history"} {
			resp, _ := b.get(path)
			requireRedirect(t, resp, "/portal/login?next="+url.QueryEscape(path))
			require.Equal(t, "no-store", resp.Header.Get("Cache-Control"))
		}
		resp, _ := b.get("/portal")
		requireRedirect(t, resp, "/portal/")

		// POSTs without a session change nothing, with or without a token.
		tok := b.token("/portal/login")
		for _, path := range []string{"/portal/settings/online-payment", "/portal/agreements/x/revoke", "/portal/settings/password",
			"/portal/settings/pay-password", "/portal/logout", "/portal/verify"} {
			resp, _ := b.post(path, url.Values{"csrf_token": {tok}, "online_payment": {"off"}})
			requireRedirect(t, resp, "/portal/login")
		}
		require.True(t, e.customer(t, wangLogin).OnlinePayment)

		// A forged session cookie is no session: redirected, told it ended,
		// and the cookie is cleared.
		u, _ := url.Parse(e.srv.URL)
		b.jar.SetCookies(u, []*http.Cookie{{Name: "pg_session", Value: strings.Repeat("A", 43), Path: "/"}})
		resp, _ = b.get("/portal/")
		requireRedirect(t, resp, "/portal/login?expired=1")
		require.Nil(t, b.sessionCookie())

		// The login page renders, with its own CSP.
		resp, body := b.get("/portal/login")
		require.Equal(t, http.StatusOK, resp.StatusCode)
		require.Contains(t, resp.Header.Get("Content-Security-Policy"), "default-src 'self'")
		require.Contains(t, resp.Header.Get("Content-Security-Policy"), "form-action 'self'")
		require.Equal(t, "DENY", resp.Header.Get("X-Frame-Options"))
		require.Contains(t, body, `action="/portal/login"`)
		require.NotContains(t, body, "<script", "no script at all")
		require.NotContains(t, body, "style=")

		resp, body = b.get("/portal/nowhere")
		require.Equal(t, http.StatusNotFound, resp.StatusCode)
		require.Contains(t, body, "Page not found")
	})
}

func TestPortalLogin(t *testing.T) {
	t.Parallel()
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		e := newPortalEnv(t, db)
		b := e.browser(t)
		for _, tc := range []struct {
			name, login, password string
			status                int
			msg                   string
		}{
			{"empty login", "", "x", http.StatusBadRequest, "Phone or username is required."},
			{"empty password", wangLogin, "", http.StatusBadRequest, "Password is required."},
			{"over-long login", strings.Repeat("a", 65), "x", http.StatusBadRequest, "Phone or username is too long: at most 64 characters."},
			{"over-long password", wangLogin, strings.Repeat("p", 129), http.StatusBadRequest, "Password is too long: at most 128 characters."},
			{"bad UTF-8", "\xff\xfe", "x", http.StatusBadRequest, "contains characters that are not allowed"},
			{"unknown login", "13899999999", "Wrong-pass-1", http.StatusUnauthorized, "Wrong login or password."},
			{"wrong password", wangLogin, "Wrong-pass-1", http.StatusUnauthorized, "Wrong login or password, 4 tries left."},
		} {
			resp, body := b.submit("/portal/login", "/portal/login", url.Values{"login": {tc.login}, "password": {tc.password}})
			require.Equal(t, tc.status, resp.StatusCode, tc.name)
			require.Contains(t, body, tc.msg, tc.name)
			if tc.password != "" && len(tc.password) > 2 {
				require.NotContains(t, body, tc.password, "%s: a password is never echoed", tc.name)
			}
			require.Nil(t, b.sessionCookie(), tc.name)
		}

		// Four more wrong passwords lock the login for 30 minutes; the
		// message says until when, in Beijing time (t0 is 10:00 there).
		for i := 3; i >= 0; i-- {
			resp, body := b.submit("/portal/login", "/portal/login", url.Values{"login": {wangLogin}, "password": {"Wrong-pass-1"}})
			if i > 0 {
				require.Equal(t, http.StatusUnauthorized, resp.StatusCode)
				require.Contains(t, body, fmt.Sprintf("%d %s left", i, map[bool]string{true: "try", false: "tries"}[i == 1]))
				continue
			}
			require.Equal(t, http.StatusForbidden, resp.StatusCode)
			require.Contains(t, body, "Too many wrong passwords: your login is locked until 2026-11-22 10:30 (Beijing time), 30 minutes from now.")
		}
		e.clock.Advance(10 * time.Minute)
		resp, body := b.submit("/portal/login", "/portal/login", url.Values{"login": {wangLogin}, "password": {sandboxPW}})
		require.Equal(t, http.StatusForbidden, resp.StatusCode, "locked even for the right password")
		require.Contains(t, body, "until 2026-11-22 10:30 (Beijing time), 20 minutes from now")
		require.NotContains(t, body, sandboxPW)
		require.Contains(t, body, `value="13800000001"`, "the login is kept in the form")

		e.clock.Advance(20 * time.Minute)
		anon := b.token("/portal/login")
		b.login(wangLogin, sandboxPW)
		first := b.sessionCookie()
		require.NotNil(t, first)

		// Logging in again (a stale login form) rotates the session: the
		// old token is dead.
		resp, _ = b.post("/portal/login", url.Values{"csrf_token": {anon}, "login": {wangLogin}, "password": {sandboxPW}})
		requireRedirect(t, resp, "/portal/")
		second := b.sessionCookie()
		require.NotEqual(t, first.Value, second.Value)
		old := e.browser(t)
		u, _ := url.Parse(e.srv.URL)
		old.jar.SetCookies(u, []*http.Cookie{first})
		resp, _ = old.get("/portal/")
		requireRedirect(t, resp, "/portal/login?expired=1")

		// A logged-in customer skips the login page.
		resp, _ = b.get("/portal/login")
		requireRedirect(t, resp, "/portal/")

		// next: back to a page of this site only.
		for _, tc := range []struct{ next, want string }{
			{"/portal/cards", "/portal/cards"},
			{"/checkout/ord_1", "/checkout/ord_1"},
			{"https://evil.example/", "/portal/"},
			{"//evil.example/portal/", "/portal/"},
			{"/portal/\\evil", "/portal/"},
			{"/elsewhere", "/portal/"},
		} {
			nb := e.browser(t)
			resp, body := nb.submit("/portal/login?next="+url.QueryEscape(tc.next), "/portal/login",
				url.Values{"login": {lisiLogin}, "password": {sandboxPW}, "next": {tc.next}})
			require.Equal(t, http.StatusSeeOther, resp.StatusCode, body)
			require.Equal(t, tc.want, resp.Header.Get("Location"), tc.next)
		}

		// Logout ends the session for good.
		cookie := b.sessionCookie()
		resp, _ = b.submit("/portal/", "/portal/logout", nil)
		requireRedirect(t, resp, "/portal/login?ok=logged_out")
		require.Nil(t, b.sessionCookie())
		_, body = b.get("/portal/login?ok=logged_out")
		require.Contains(t, body, "You have logged out.")
		replay := e.browser(t)
		replay.jar.SetCookies(u, []*http.Cookie{cookie})
		resp, _ = replay.get("/portal/")
		requireRedirect(t, resp, "/portal/login")
	})
}

func TestPortalPages(t *testing.T) {
	t.Parallel()
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		e := newPortalEnv(t, db)
		b := e.browser(t)
		b.login(wangLogin, sandboxPW)
		wang := e.seeded[wangLogin]
		var corporate, interbank customer.Card
		for _, c := range wang.Cards {
			switch c.Kind {
			case customer.KindCorporate:
				corporate = c
			case customer.KindOtherBank:
				interbank = c
			}
		}
		for _, tc := range []struct {
			path string
			want []string
		}{
			{"/portal/", []string{"My accounts", `id="balance">¥10,000.00<`, "628888******0013", "¥50,000.00", "¥0.01",
				"¥100,000.00", "Corporate card", "629999******0066", "SANDBOX INTERBANK", "Paid through its bank", "frozen", "*明 · 138****0001"}},
			{"/portal/history", []string{"Account balance", "&#43;¥10,000.00", "Top-up", "2026-11-22 10:00:00", "Download CSV"}},
			{"/portal/cards/" + corporate.ID + "/history", []string{"Corporate card 628888******0047", "&#43;¥100,000.00"}},
			{"/portal/cards", []string{"Quick-pay agreements", "bound for quick pay", "Unbind", "628888******0013", "629999******0066"}},
			{"/portal/settings", []string{"Online payment is <strong>on</strong>", "Verified: *明", "110***********1233",
				"Change the payment password", "PASSWORD, REAL_NAME, PHONE, CARD"}},
			{"/portal/verify", []string{"You are verified as"}},
		} {
			resp, body := b.get(tc.path)
			require.Equal(t, http.StatusOK, resp.StatusCode, "%s: %s", tc.path, body)
			require.Equal(t, "no-store", resp.Header.Get("Cache-Control"), tc.path)
			require.Contains(t, resp.Header.Get("Content-Security-Policy"), "script-src 'self'", tc.path)
			for _, w := range tc.want {
				require.Contains(t, body, w, tc.path)
			}
			for _, n := range customer.SandboxCustomers[0].Cards {
				require.NotContains(t, body, n.Number, "%s shows a full card number", tc.path)
			}
			require.NotContains(t, body, "110101199003071233", tc.path)
			require.NotContains(t, body, "<script", tc.path)
		}
		// Another bank's card has no history here.
		resp, _ := b.get("/portal/cards/" + interbank.ID + "/history")
		require.Equal(t, http.StatusNotFound, resp.StatusCode)

		// The unverified customer is told to verify and may.
		u := e.browser(t)
		u.login(plainLogin, sandboxPW)
		_, body := u.get("/portal/")
		require.Contains(t, body, "not verified your real name")
		require.Contains(t, body, "¥500.00")
		require.Contains(t, body, "You have no cards here yet.")
	})
}

func TestPortalOtherCustomersObjects(t *testing.T) {
	t.Parallel()
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		e := newPortalEnv(t, db)
		wang := e.seeded[wangLogin]
		ags, err := e.svc.Agreements(context.Background(), wang.Customer.ID)
		require.NoError(t, err)
		require.Len(t, ags, 2)

		lisi := e.browser(t)
		lisi.login(lisiLogin, sandboxPW)
		for _, c := range wang.Cards {
			for _, path := range []string{"/portal/cards/" + c.ID + "/history", "/portal/cards/" + c.ID + "/history.csv"} {
				resp, body := lisi.get(path)
				require.Equal(t, http.StatusNotFound, resp.StatusCode, path)
				require.NotContains(t, body, c.Number.Last4())
			}
		}
		for _, path := range []string{"/portal/cards/card_nonexistent/history", "/portal/cards/" + strings.Repeat("x", 300) + "/history"} {
			resp, _ := lisi.get(path)
			require.Equal(t, http.StatusNotFound, resp.StatusCode)
		}
		for _, a := range ags {
			resp, body := lisi.submit("/portal/cards", "/portal/agreements/"+a.ID+"/revoke", nil)
			require.Equal(t, http.StatusNotFound, resp.StatusCode, body)
			require.Contains(t, body, "Agreement not found")
		}
		after, err := e.svc.Agreements(context.Background(), wang.Customer.ID)
		require.NoError(t, err)
		require.Equal(t, ags, after, "nothing changed")
		require.True(t, e.customer(t, wangLogin).Factors.Has(customer.FactorCard))

		// Wang unbinds his own: revoked, and the page says so.
		w := e.browser(t)
		w.login(wangLogin, sandboxPW)
		resp, _ := w.submit("/portal/cards", "/portal/agreements/"+ags[0].ID+"/revoke", nil)
		requireRedirect(t, resp, "/portal/cards?ok=unbound")
		_, body := w.get("/portal/cards?ok=unbound")
		require.Contains(t, body, "The card is unbound")
		require.Regexp(t, `id="agreement-`+ags[0].ID+`" data-status="revoked"`, body)
		after, err = e.svc.Agreements(context.Background(), wang.Customer.ID)
		require.NoError(t, err)
		require.Equal(t, customer.AgreementRevoked, after[0].Status)
		require.Equal(t, customer.AgreementActive, after[1].Status)
	})
}

func TestPortalCSRF(t *testing.T) {
	t.Parallel()
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		e := newPortalEnv(t, db)
		wang := e.seeded[wangLogin]
		ags, err := e.svc.Agreements(context.Background(), wang.Customer.ID)
		require.NoError(t, err)
		b := e.browser(t)
		b.login(wangLogin, sandboxPW)
		lisi := e.browser(t)
		lisi.login(lisiLogin, sandboxPW)
		lisiToken := lisi.token("/portal/settings")
		anon := e.browser(t).token("/portal/login")
		ownToken := b.token("/portal/settings")

		forms := []struct {
			path string
			form url.Values
		}{
			{"/portal/settings/online-payment", url.Values{"online_payment": {"off"}}},
			{"/portal/agreements/" + ags[0].ID + "/revoke", url.Values{}},
			{"/portal/settings/password", url.Values{"old_password": {sandboxPW}, "new_password": {"Brand-new-9"}, "new_password2": {"Brand-new-9"}}},
			{"/portal/settings/pay-password", url.Values{"login_password": {sandboxPW}, "pay_password": {"480213"}, "pay_password2": {"480213"}}},
			{"/portal/logout", url.Values{}},
		}
		for _, f := range forms {
			for _, tc := range []struct {
				name  string
				token string
				hdr   []string
			}{
				{"no token", "", nil},
				{"garbage token", "x", nil},
				{"another customer's token", lisiToken, nil},
				{"the anonymous token", anon, nil},
				{"cross-site, right token", ownToken, []string{"Sec-Fetch-Site", "cross-site"}},
				{"cross-origin, right token", ownToken, []string{"Origin", "https://evil.example"}},
			} {
				form := url.Values{}
				for k, v := range f.form {
					form[k] = v
				}
				if tc.token != "" {
					form.Set("csrf_token", tc.token)
				}
				resp, body := b.post(f.path, form, tc.hdr...)
				require.Equal(t, http.StatusForbidden, resp.StatusCode, "%s %s", f.path, tc.name)
				require.Contains(t, body, "This form has expired")
			}
		}
		// Nothing changed: online payment on, the agreement active, the
		// passwords as they were, the session alive.
		c := e.customer(t, wangLogin)
		require.True(t, c.OnlinePayment)
		after, err := e.svc.Agreements(context.Background(), wang.Customer.ID)
		require.NoError(t, err)
		require.Equal(t, ags, after)
		require.NoError(t, e.svc.VerifyPayPassword(context.Background(), c.ID, "135790"))
		resp, _ := b.get("/portal/")
		require.Equal(t, http.StatusOK, resp.StatusCode)
		e.browser(t).login(wangLogin, sandboxPW)

		// Login and register need the anonymous token too.
		nb := e.browser(t)
		for _, path := range []string{"/portal/login", "/portal/register"} {
			resp, _ := nb.post(path, url.Values{"login": {"13700000009"}, "password": {"Good-pass-1"}, "password2": {"Good-pass-1"}})
			require.Equal(t, http.StatusForbidden, resp.StatusCode, path)
		}
		_, err = e.svc.Login(context.Background(), "13700000009", "Good-pass-1")
		require.Equal(t, paygate.CodeUnauthenticated, paygate.CodeOf(err), "not registered")

		// An over-long body is refused before anything runs.
		resp, body := b.post("/portal/settings/online-payment", url.Values{"csrf_token": {ownToken}, "online_payment": {"off"},
			"pad": {strings.Repeat("x", 70<<10)}})
		require.Equal(t, http.StatusRequestEntityTooLarge, resp.StatusCode)
		require.Contains(t, body, "The form is too large")
		require.True(t, e.customer(t, wangLogin).OnlinePayment)
	})
}

// csvRows downloads a CSV and parses it.
func csvRows(t *testing.T, b *browser, path string) [][]string {
	t.Helper()
	resp, body := b.get(path)
	require.Equal(t, http.StatusOK, resp.StatusCode, body)
	require.Equal(t, "text/csv; charset=utf-8", resp.Header.Get("Content-Type"))
	require.Contains(t, resp.Header.Get("Content-Disposition"), `attachment; filename="paygate-history-`)
	require.Equal(t, "no-store", resp.Header.Get("Cache-Control"))
	rows, err := csv.NewReader(strings.NewReader(body)).ReadAll()
	require.NoError(t, err)
	require.Equal(t, []string{"time", "accounting_date", "account", "type", "direction", "amount", "currency", "status", "reference", "transfer_id"}, rows[0])
	return rows[1:]
}

var entryRE = regexp.MustCompile(`<tr class="entry `)

func TestPortalHistory(t *testing.T) {
	t.Parallel()
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		e := newPortalEnv(t, db)
		ctx := context.Background()
		wang := e.seeded[wangLogin]
		bal := e.svc.BalanceAccount(wang.Customer.ID)
		shop := ledger.MerchantPending("mch_1", "CNY")
		_, err := e.led.CreateAccounts(ctx, []ledger.Account{shop})
		require.NoError(t, err)
		// Seeded at t0 (10:00 Beijing, 2026-11-22); then a payment a day
		// for 24 days at 09:00 Beijing, the first on 2026-11-23.
		for i := range 24 {
			e.clock.Set(t0.Add(time.Duration(i)*24*time.Hour + 23*time.Hour))
			_, err := e.led.CreateTransfers(ctx, []ledger.Transfer{{ID: fmt.Sprintf("pay_ord_%02d", i), DebitAccountID: bal,
				CreditAccountID: shop.ID, Amount: int64(12345 + i), Ref: fmt.Sprintf("att_%02d", i)}})
			require.NoError(t, err)
		}
		b := e.browser(t)
		b.login(wangLogin, sandboxPW)

		// 25 entries: 20 on the first page, 5 on the next.
		_, body := b.get("/portal/history")
		require.Len(t, entryRE.FindAllString(body, -1), 20)
		require.Contains(t, body, "-¥123.68", "the newest payment, 12345+23 fen")
		require.Contains(t, body, "2026-12-16 09:00:00")
		require.NotContains(t, body, `id="newest"`)
		next := regexp.MustCompile(`href="([^"]+)" id="older"`).FindStringSubmatch(body)
		require.NotNil(t, next)
		_, body = b.get(strings.ReplaceAll(next[1], "&amp;", "&"))
		require.Len(t, entryRE.FindAllString(body, -1), 5)
		require.Contains(t, body, "&#43;¥10,000.00")
		require.Contains(t, body, "-¥123.45")
		require.Contains(t, body, `id="newest"`)
		require.NotContains(t, body, `id="older"`)

		for _, tc := range []struct {
			name, query string
			entries     int
			want        string
		}{
			{"money in", "direction=in", 1, "&#43;¥10,000.00"},
			{"money out", "direction=out", 20, "-¥123.68"},
			{"one day", "from=2026-11-25&to=2026-11-25", 1, "-¥123.47"},
			{"a range", "from=2026-11-22&to=2026-11-24", 3, "&#43;¥10,000.00"},
			{"from only", "from=2026-12-14", 3, "-¥123.68"},
			{"nothing", "from=2025-01-01&to=2025-01-31", 0, "No transactions match these filters."},
		} {
			resp, body := b.get("/portal/history?" + tc.query)
			require.Equal(t, http.StatusOK, resp.StatusCode, tc.name)
			require.Len(t, entryRE.FindAllString(body, -1), tc.entries, tc.name)
			require.Contains(t, body, tc.want, tc.name)
		}

		// Bad input gets a clear message.
		for _, tc := range []struct{ query, msg string }{
			{"from=yesterday", "The start date must be a date like 2026-11-22."},
			{"to=2026-13-01", "The end date must be a date like 2026-11-22."},
			{"from=2026-11-30&to=2026-11-01", "The start date must not be after the end date."},
			{"direction=sideways", "Direction must be money in or money out."},
			{"cursor=" + strings.Repeat("A", 300), "This page link is broken."},
			{"cursor=bogus", "Invalid cursor; start again from the newest page."},
			{"from=" + strings.Repeat("2", 5000), "The start date must be a date like 2026-11-22."},
		} {
			resp, body := b.get("/portal/history?" + tc.query)
			require.Equal(t, http.StatusBadRequest, resp.StatusCode, tc.query)
			require.Contains(t, body, tc.msg, tc.query)
			require.NotContains(t, body, "sideways")
		}

		// The CSV has every row with the same filters, amounts in decimal
		// yuan, Beijing times, no card number.
		rows := csvRows(t, b, "/portal/history.csv")
		require.Len(t, rows, 25)
		require.Equal(t, []string{"2026-12-16 09:00:00", "2026-12-16", "Account balance", "Payment", "out", "-123.68", "CNY", "posted", "att_23", "pay_ord_23"}, rows[0])
		require.Equal(t, []string{"2026-11-22 10:00:00", "2026-11-22", "Account balance", "Top-up", "in", "10000.00", "CNY", "posted", "sandbox seed"}, rows[24][:9])
		rows = csvRows(t, b, "/portal/history.csv?direction=out&from=2026-11-23&to=2026-11-24")
		require.Len(t, rows, 2)
		require.Equal(t, "-123.46", rows[0][5])
		require.Equal(t, "-123.45", rows[1][5])
		resp, body := b.get("/portal/history.csv?direction=up")
		require.Equal(t, http.StatusBadRequest, resp.StatusCode)
		require.Contains(t, body, "Direction must be money in or money out.")

		var debit customer.Card
		for _, c := range wang.Cards {
			if c.Number.Last4() == "0013" {
				debit = c
			}
		}
		resp, body = b.get("/portal/cards/" + debit.ID + "/history.csv")
		require.Equal(t, http.StatusOK, resp.StatusCode)
		require.NotContains(t, body, wangCard)
		rows = csvRows(t, b, "/portal/cards/"+debit.ID+"/history.csv")
		require.Len(t, rows, 1)
		require.Equal(t, []string{"Debit card 628888******0013", "Top-up", "in", "50000.00"}, rows[0][2:6])
	})
}

func TestPortalSettings(t *testing.T) {
	t.Parallel()
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		e := newPortalEnv(t, db)
		ctx := context.Background()
		b := e.browser(t)
		b.login(plainLogin, sandboxPW)
		other := e.browser(t) // the same customer on another device
		other.login(plainLogin, sandboxPW)

		// Online payment off and on again.
		resp, _ := b.submit("/portal/settings", "/portal/settings/online-payment", url.Values{"online_payment": {"off"}})
		requireRedirect(t, resp, "/portal/settings?ok=online_off")
		require.False(t, e.customer(t, plainLogin).OnlinePayment)
		_, body := b.get("/portal/settings?ok=online_off")
		require.Contains(t, body, "Online payment is off: every online payment is refused")
		require.Contains(t, body, "Turn online payment on")
		_, body = b.get("/portal/")
		require.Contains(t, body, `id="online-off"`)
		resp, _ = b.submit("/portal/settings", "/portal/settings/online-payment", url.Values{"online_payment": {"on"}})
		requireRedirect(t, resp, "/portal/settings?ok=online_on")
		require.True(t, e.customer(t, plainLogin).OnlinePayment)

		for _, tc := range []struct {
			name, action string
			form         url.Values
			status       int
			msg          string
			secrets      []string // never echoed
		}{
			{"online payment maybe", "/portal/settings/online-payment", url.Values{"online_payment": {"maybe"}}, 400,
				"Choose whether online payment is on or off.", nil},
			{"wrong old password", "/portal/settings/password", url.Values{"old_password": {"Not-it-123"}, "new_password": {"Brand-new-9"}, "new_password2": {"Brand-new-9"}},
				401, "Wrong login or password, 4 tries left.", []string{"Not-it-123", "Brand-new-9"}},
			{"new passwords differ", "/portal/settings/password", url.Values{"old_password": {sandboxPW}, "new_password": {"Brand-new-9"}, "new_password2": {"Brand-new-8"}},
				400, "The two new passwords differ.", []string{sandboxPW, "Brand-new-9", "Brand-new-8"}},
			{"weak new password", "/portal/settings/password", url.Values{"old_password": {sandboxPW}, "new_password": {"abcdefgh"}, "new_password2": {"abcdefgh"}},
				400, "A password mixes at least two of letters, digits and symbols.", []string{sandboxPW, "abcdefgh"}},
			{"over-long new password", "/portal/settings/password", url.Values{"old_password": {sandboxPW}, "new_password": {strings.Repeat("a1", 65)}, "new_password2": {"x"}},
				400, "The new password is too long: at most 128 characters.", []string{sandboxPW}},
			{"missing old password", "/portal/settings/password", url.Values{"new_password": {"Brand-new-9"}, "new_password2": {"Brand-new-9"}},
				400, "The current password is required.", []string{"Brand-new-9"}},
			{"PIN not digits", "/portal/settings/pay-password", url.Values{"login_password": {sandboxPW}, "pay_password": {"abcdef"}, "pay_password2": {"abcdef"}},
				400, "A payment password is 6 digits.", []string{sandboxPW}},
			{"PIN a run", "/portal/settings/pay-password", url.Values{"login_password": {sandboxPW}, "pay_password": {"987654"}, "pay_password2": {"987654"}},
				400, "A payment password must not be one digit repeated or a run of digits.", []string{sandboxPW, "987654"}},
			{"PINs differ", "/portal/settings/pay-password", url.Values{"login_password": {sandboxPW}, "pay_password": {"480213"}, "pay_password2": {"480214"}},
				400, "The two payment passwords differ.", []string{sandboxPW, "480213", "480214"}},
			{"PIN too long", "/portal/settings/pay-password", url.Values{"login_password": {sandboxPW}, "pay_password": {strings.Repeat("1", 17)}, "pay_password2": {"1"}},
				400, "The payment password is too long: at most 16 characters.", []string{sandboxPW}},
			{"PIN with a wrong login password", "/portal/settings/pay-password", url.Values{"login_password": {"Not-it-123"}, "pay_password": {"480213"}, "pay_password2": {"480213"}},
				401, "Wrong login or password, 3 tries left.", []string{"Not-it-123", "480213"}},
		} {
			resp, body := b.submit("/portal/settings", tc.action, tc.form)
			require.Equal(t, tc.status, resp.StatusCode, tc.name)
			require.Contains(t, body, tc.msg, tc.name)
			for _, s := range tc.secrets {
				require.NotContains(t, body, s, "%s: echoed a secret", tc.name)
			}
		}
		c := e.customer(t, plainLogin)
		require.False(t, c.PayPasswordSet)
		_, err := e.svc.Login(ctx, plainLogin, sandboxPW) // clears the failures
		require.NoError(t, err)

		// Set the payment password.
		resp, _ = b.submit("/portal/settings", "/portal/settings/pay-password",
			url.Values{"login_password": {sandboxPW}, "pay_password": {"480213"}, "pay_password2": {"480213"}})
		requireRedirect(t, resp, "/portal/settings?ok=pay_password")
		require.NoError(t, e.svc.VerifyPayPassword(ctx, c.ID, "480213"))
		_, body = b.get("/portal/settings?ok=pay_password")
		require.Contains(t, body, "Your payment password is set.")
		require.Contains(t, body, "Change the payment password")

		// Change the login password: the other device is logged out, this
		// one stays (with a new session), and only the new password works.
		before := b.sessionCookie()
		resp, _ = b.submit("/portal/settings", "/portal/settings/password",
			url.Values{"old_password": {sandboxPW}, "new_password": {"Brand-new-9"}, "new_password2": {"Brand-new-9"}})
		requireRedirect(t, resp, "/portal/settings?ok=password")
		require.NotEqual(t, before.Value, b.sessionCookie().Value)
		resp, body = b.get("/portal/settings?ok=password")
		require.Equal(t, http.StatusOK, resp.StatusCode)
		require.Contains(t, body, "Your login password is changed.")
		resp, _ = other.get("/portal/")
		requireRedirect(t, resp, "/portal/login?expired=1")
		_, err = e.svc.Login(ctx, plainLogin, sandboxPW)
		require.Error(t, err)
		_, err = e.svc.Login(ctx, plainLogin, "Brand-new-9")
		require.NoError(t, err)

		// The log never has a password.
		for _, s := range []string{sandboxPW, "Brand-new-9", "480213", "Not-it-123"} {
			require.NotContains(t, e.logs.String(), s)
		}
	})
}

func TestPortalRegisterAndVerify(t *testing.T) {
	t.Parallel()
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		e := newPortalEnv(t, db)
		ctx := context.Background()
		b := e.browser(t)
		for _, tc := range []struct {
			name                 string
			login, pw, pw2       string
			status               int
			msg, field           string
			keepsLogin, echoesPW bool
		}{
			{"taken phone", wangLogin, "Good-pass-1", "Good-pass-1", 409, "This phone is already registered.", "login", true, false},
			{"taken username", "LiSi_Sandbox", "Good-pass-1", "Good-pass-1", 409, "This username is taken.", "login", true, false},
			{"bad phone", "1380000", "Good-pass-1", "Good-pass-1", 400, "Phone must be a mainland mobile number (11 digits).", "login", true, false},
			{"bad username", "x!", "Good-pass-1", "Good-pass-1", 400, "A username has 4 to 32 letters", "login", true, false},
			{"passwords differ", "13700000001", "Good-pass-1", "Good-pass-2", 400, "The two passwords differ.", "password2", true, false},
			{"short password", "13700000001", "Sh0rt!", "Sh0rt!", 400, "A password has 8 to 128 characters.", "password", true, false},
			{"over-long login", strings.Repeat("a", 100), "Good-pass-1", "Good-pass-1", 400, "Phone or username is too long", "login", false, false},
		} {
			resp, body := b.submit("/portal/register", "/portal/register", url.Values{"login": {tc.login}, "password": {tc.pw}, "password2": {tc.pw2}})
			require.Equal(t, tc.status, resp.StatusCode, tc.name)
			require.Contains(t, body, tc.msg, tc.name)
			require.Contains(t, body, `data-field="`+tc.field+`"`, tc.name)
			require.NotContains(t, body, tc.pw, tc.name)
			if tc.keepsLogin {
				require.Contains(t, body, `value="`+tc.login+`"`, tc.name)
			}
			require.Nil(t, b.sessionCookie(), tc.name)
		}

		// A newcomer registers, lands on the verification form, logged in.
		resp, body := b.submit("/portal/register", "/portal/register",
			url.Values{"login": {"137 0000 0001"}, "password": {"Good-pass-1"}, "password2": {"Good-pass-1"}})
		requireRedirect(t, resp, "/portal/verify?ok=registered")
		require.NotNil(t, b.sessionCookie(), body)
		_, body = b.get("/portal/verify?ok=registered")
		require.Contains(t, body, "Welcome! Your account is ready.")
		require.Contains(t, body, `action="/portal/verify"`)
		_, body = b.get("/portal/")
		require.Contains(t, body, "¥0.00")
		require.Contains(t, body, "137****0001")

		for _, tc := range []struct {
			name, nm, idn, phone string
			status               int
			msg                  string
		}{
			{"wrong check digit", "张三", "110101199003071234", "13700000001", 400, "The ID number"},
			{"no match", "张三", "110101199003079999", "13700000001", 400, "The name, ID number and phone could not be verified together."},
			{"service down", "张三", "11010519491231002X", "13700000000", 503, "The verification service"},
			{"not a name", "R2-D2", "11010519491231002X", "13700000001", 400, "Name must be 1 to 64 letters."},
			{"over-long ID", "张三", strings.Repeat("1", 40), "13700000001", 400, "ID number is too long: at most 32 characters."},
			{"missing phone", "张三", "11010519491231002X", "", 400, "Phone is required."},
		} {
			resp, body := b.submit("/portal/verify", "/portal/verify", url.Values{"name": {tc.nm}, "id_number": {tc.idn}, "phone": {tc.phone}})
			require.Equal(t, tc.status, resp.StatusCode, tc.name)
			require.Contains(t, body, tc.msg, tc.name)
			if len(tc.idn) == 18 {
				require.NotContains(t, body, tc.idn, "%s: the ID number is not echoed", tc.name)
			}
		}
		resp, _ = b.submit("/portal/verify", "/portal/verify", url.Values{"name": {"张三"}, "id_number": {"11010519491231002X"}, "phone": {"13700000001"}})
		requireRedirect(t, resp, "/portal/?ok=verified")
		_, body = b.get("/portal/?ok=verified")
		require.Contains(t, body, "Your real name is verified.")
		require.Contains(t, body, "*三")
		require.NotContains(t, body, "not verified your real name")
		c, err := e.svc.Login(ctx, "13700000001", "Good-pass-1")
		require.NoError(t, err)
		require.True(t, c.Verified())

		// A username works too.
		u := e.browser(t)
		resp, _ = u.submit("/portal/register", "/portal/register", url.Values{"login": {"New_Comer"}, "password": {"Good-pass-1"}, "password2": {"Good-pass-1"}})
		requireRedirect(t, resp, "/portal/verify")
		_, body = u.get("/portal/")
		require.Contains(t, body, "new_comer")
	})
}

// TestPortalIdleSession: a session unused for 15 minutes sends the
// customer back to the login page, which says why and returns afterwards.
func TestPortalIdleSession(t *testing.T) {
	t.Parallel()
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		e := newPortalEnv(t, db)
		b := e.browser(t)
		b.login(lisiLogin, sandboxPW)
		e.clock.Advance(14 * time.Minute)
		resp, _ := b.get("/portal/cards")
		require.Equal(t, http.StatusOK, resp.StatusCode)
		e.clock.Advance(15 * time.Minute)
		resp, _ = b.get("/portal/cards")
		requireRedirect(t, resp, "/portal/login?expired=1&next=%2Fportal%2Fcards")
		_, body := b.get(resp.Header.Get("Location"))
		require.Contains(t, body, "Your session has ended. Please log in again.")
		require.Contains(t, body, `name="next" value="/portal/cards"`)
		resp, _ = b.submit(resp.Header.Get("Location"), "/portal/login", url.Values{"login": {lisiLogin}, "password": {sandboxPW}, "next": {"/portal/cards"}})
		requireRedirect(t, resp, "/portal/cards")

		// A frozen customer's session ends at the next page.
		_, err := e.svc.SetStatus(context.Background(), e.seeded[lisiLogin].Customer.ID, customer.StatusFrozen)
		require.NoError(t, err)
		resp, body = b.get("/portal/")
		require.Equal(t, http.StatusForbidden, resp.StatusCode)
		require.Contains(t, body, "This customer account is frozen.")
		require.Nil(t, b.sessionCookie())
	})
}

// flakySessions fails every look-up while down is set.
type flakySessions struct {
	web.SessionStore
	down *atomic.Bool
}

func (f flakySessions) TouchSession(ctx context.Context, h string, now, idle time.Time) (string, error) {
	if f.down.Load() {
		return "", paygate.E(paygate.CodeUnavailable, "database does not answer")
	}
	return f.SessionStore.TouchSession(ctx, h, now, idle)
}

// TestPortalSessionStoreDown: a session store that cannot answer is a 503,
// not a logout; the session works again once the store is back.
func TestPortalSessionStoreDown(t *testing.T) {
	t.Parallel()
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		down := &atomic.Bool{}
		e := newPortalEnv(t, db, func(s web.SessionStore) web.SessionStore { return flakySessions{s, down} })
		b := e.browser(t)
		b.login(lisiLogin, sandboxPW)
		down.Store(true)
		resp, body := b.get("/portal/")
		require.Equal(t, http.StatusServiceUnavailable, resp.StatusCode)
		require.Contains(t, body, "Temporarily unavailable")
		require.NotNil(t, b.sessionCookie(), "the cookie is kept")
		down.Store(false)
		resp, _ = b.get("/portal/")
		require.Equal(t, http.StatusOK, resp.StatusCode)
	})
}

func TestFormatYuan(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		m    paygate.Money
		want string
	}{
		{paygate.Money{Amount: 0, Currency: "CNY"}, "¥0.00"},
		{paygate.Money{Amount: 1, Currency: "CNY"}, "¥0.01"},
		{paygate.Money{Amount: 123456, Currency: "CNY"}, "¥1,234.56"},
		{paygate.Money{Amount: -5000, Currency: "CNY"}, "-¥50.00"},
		{paygate.Money{Amount: 100_000_000_00, Currency: "CNY"}, "¥100,000,000.00"},
		{paygate.Money{Amount: 1234, Currency: "JPY"}, "JPY 1,234"},
	} {
		require.Equal(t, tc.want, web.FormatYuan(tc.m))
	}
}

func TestNewPortalValidates(t *testing.T) {
	t.Parallel()
	db := storetest.Open(t, store.SQLite)
	s, err := web.NewSessions(web.SessionConfig{Store: db.Sessions()})
	require.NoError(t, err)
	for _, cfg := range []web.PortalConfig{
		{}, {Sessions: s}, {Customers: (*customer.Service)(nil), Sessions: s, CSRFKey: []byte("short")},
	} {
		_, err := web.NewPortal(cfg)
		require.Equal(t, paygate.CodeInvalidArgument, paygate.CodeOf(err))
	}
}
