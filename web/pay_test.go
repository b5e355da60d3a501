package web_test

// Handler tests of the checkout's payment forms (pay.go) with a fake
// checkout and fake customers, and real Sessions over an in-memory store:
// CSRF and cross-origin refusals, unreadable and oversized forms, the
// message and status of every refusal, post/redirect/get on success, and
// that no page echoes what the payer typed.

import (
	"bytes"
	"context"
	"errors"
	"html"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"paygate"
	"paygate/checkout"
	"paygate/customer"
	"paygate/web"
)

// What the payer types in these tests; no page may echo any of it.
var (
	payPAN     = luhnPAN("622848073914625") // a card number with distinctive middle digits
	payIDNo    = "11010519491231002X"
	payPIN     = "480213"
	payCode    = "739146"
	payLoginPW = "Secret-login-77"
)

const payLogin = "13800000001"

// payCustomer is the customer the fake logs in.
var payCustomer = customer.Customer{ID: "cus_pay", Phone: payLogin, Status: customer.StatusActive,
	NameMasked: "*明", PhoneMasked: "138****0001", PayPasswordSet: true}

func luhnPAN(body string) string {
	d, ok := customer.LuhnDigit(body)
	if !ok {
		panic("luhn")
	}
	return body + string(d)
}

// payCall is one call the fake checkout received.
type payCall struct {
	Method string
	Args   []string
}

// fakeCheckout records its calls and answers err, or ch / res.
type fakeCheckout struct {
	mu    sync.Mutex
	calls []payCall
	err   error
	ch    checkout.Challenge
	res   checkout.Result
}

func (f *fakeCheckout) record(m string, args ...string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls = append(f.calls, payCall{m, args})
}

func (f *fakeCheckout) Calls() []payCall {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]payCall(nil), f.calls...)
}

func (f *fakeCheckout) StartQuickPay(ctx context.Context, orderID string, c checkout.QuickPayCard) (checkout.Challenge, error) {
	f.record("StartQuickPay", orderID, c.Number, c.Name, c.IDNumber, c.Phone)
	return f.ch, f.err
}

func (f *fakeCheckout) StartBoundQuickPay(ctx context.Context, orderID, phone, last4 string) (checkout.Challenge, error) {
	f.record("StartBoundQuickPay", orderID, phone, last4)
	return f.ch, f.err
}

func (f *fakeCheckout) ConfirmQuickPay(ctx context.Context, orderID, cardID, code string, bind bool) (checkout.Result, error) {
	b := "false"
	if bind {
		b = "true"
	}
	f.record("ConfirmQuickPay", orderID, cardID, code, b)
	return f.res, f.err
}

func (f *fakeCheckout) CardPay(ctx context.Context, orderID, number, payPassword string) (checkout.Result, error) {
	f.record("CardPay", orderID, number, payPassword)
	return f.res, f.err
}

func (f *fakeCheckout) BalancePay(ctx context.Context, orderID, customerID, payPassword string) (checkout.Result, error) {
	f.record("BalancePay", orderID, customerID, payPassword)
	return f.res, f.err
}

func (f *fakeCheckout) OnlineBanking(ctx context.Context, orderID string) (checkout.Result, error) {
	f.record("OnlineBanking", orderID)
	return f.res, f.err
}

// fakeCustomers logs payCustomer in with payLoginPW, or fails with err.
type fakeCustomers struct {
	mu     sync.Mutex
	logins int
	err    error
}

func (f *fakeCustomers) Login(ctx context.Context, login, password string) (customer.Customer, error) {
	f.mu.Lock()
	f.logins++
	f.mu.Unlock()
	switch {
	case f.err != nil:
		return customer.Customer{}, f.err
	case login == payLogin && password == payLoginPW:
		return payCustomer, nil
	}
	return customer.Customer{}, paygate.EField(paygate.CodeUnauthenticated, "password", "wrong login or password")
}

func (f *fakeCustomers) Logins() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.logins
}

func (f *fakeCustomers) Customer(ctx context.Context, id string) (customer.Customer, error) {
	if id != payCustomer.ID {
		return customer.Customer{}, paygate.E(paygate.CodeNotFound, "customer not found")
	}
	return payCustomer, nil
}

func (f *fakeCustomers) Balance(ctx context.Context, id string) (paygate.Money, error) {
	return paygate.Money{Amount: 1_000_000, Currency: "CNY"}, nil
}

// memSessions is an in-memory web.SessionStore.
type memSessions struct {
	mu   sync.Mutex
	rows map[string]memSession
}

type memSession struct {
	customer      string
	idle, expires time.Time
}

func (m *memSessions) CreateSession(ctx context.Context, h, customerID string, created, idle, expires time.Time) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if _, ok := m.rows[h]; ok {
		return paygate.E(paygate.CodeConflict, "session exists")
	}
	if expires.Before(idle) {
		idle = expires
	}
	m.rows[h] = memSession{customerID, idle, expires}
	return nil
}

func (m *memSessions) TouchSession(ctx context.Context, h string, now, idle time.Time) (string, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	s, ok := m.rows[h]
	if !ok || !now.Before(s.idle) {
		return "", paygate.E(paygate.CodeNotFound, "no session")
	}
	s.idle = idle
	if s.expires.Before(idle) {
		s.idle = s.expires
	}
	m.rows[h] = s
	return s.customer, nil
}

func (m *memSessions) DeleteSession(ctx context.Context, h string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	delete(m.rows, h)
	return nil
}

func (m *memSessions) DeleteCustomerSessions(ctx context.Context, customerID string) (int64, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	var n int64
	for h, s := range m.rows {
		if s.customer == customerID {
			delete(m.rows, h)
			n++
		}
	}
	return n, nil
}

func (m *memSessions) DeleteExpiredSessions(ctx context.Context, now time.Time, limit int) (int64, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	var n int64
	for h, s := range m.rows {
		if int(n) < limit && !now.Before(s.idle) {
			delete(m.rows, h)
			n++
		}
	}
	return n, nil
}

func (m *memSessions) Len() int {
	m.mu.Lock()
	defer m.mu.Unlock()
	return len(m.rows)
}

// lockedBuffer collects logs from many goroutines.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// payEnv is a checkout handler with fakes behind its forms. Orders ord_a
// and ord_b are open.
type payEnv struct {
	t        *testing.T
	h        *web.Handler
	co       *fakeCheckout
	cus      *fakeCustomers
	store    *memSessions
	sessions *web.Sessions
	logs     *lockedBuffer
}

func newPayEnv(t *testing.T) *payEnv {
	t.Helper()
	e := &payEnv{t: t, co: &fakeCheckout{}, cus: &fakeCustomers{}, store: &memSessions{rows: map[string]memSession{}}, logs: &lockedBuffer{}}
	clock := paygate.NewManualClock(t0)
	var err error
	e.sessions, err = web.NewSessions(web.SessionConfig{Store: e.store, Clock: clock})
	require.NoError(t, err)
	e.h, err = web.New(web.Config{Orders: fakeOrders{"ord_a": order("ord_a"), "ord_b": order("ord_b")}, Clock: clock,
		Logger:   slog.New(slog.NewJSONHandler(e.logs, &slog.HandlerOptions{Level: slog.LevelDebug})),
		Checkout: e.co, Sessions: e.sessions, Customers: e.cus})
	require.NoError(t, err)
	return e
}

// payBrowser is one browser: its cookies, requests served by the handler.
type payBrowser struct {
	e       *payEnv
	cookies map[string]*http.Cookie
	pages   []string // every response body it received
}

func (e *payEnv) browser() *payBrowser { return &payBrowser{e: e, cookies: map[string]*http.Cookie{}} }

func (b *payBrowser) do(req *http.Request) (*http.Response, string) {
	b.e.t.Helper()
	for _, c := range b.cookies {
		req.AddCookie(c)
	}
	rec := httptest.NewRecorder()
	b.e.h.ServeHTTP(rec, req)
	res := rec.Result()
	for _, c := range res.Cookies() {
		if c.MaxAge < 0 {
			delete(b.cookies, c.Name)
		} else {
			b.cookies[c.Name] = c
		}
	}
	body, err := io.ReadAll(res.Body)
	require.NoError(b.e.t, err)
	b.pages = append(b.pages, string(body))
	return res, string(body)
}

var payTokenRE = regexp.MustCompile(`name="csrf_token" value="([^"]+)"`)

// token opens the order's page and returns its forms' CSRF token.
func (b *payBrowser) token(orderID string) string {
	b.e.t.Helper()
	res, body := b.do(httptest.NewRequest(http.MethodGet, "/checkout/"+orderID, nil))
	require.Equal(b.e.t, http.StatusOK, res.StatusCode)
	m := payTokenRE.FindStringSubmatch(body)
	require.NotNil(b.e.t, m, "no CSRF token on the page")
	return m[1]
}

// postRaw posts body as contentType to /checkout/{orderID}/{route}, with
// header pairs hdr.
func (b *payBrowser) postRaw(orderID, route, contentType, body string, hdr ...string) (*http.Response, string) {
	b.e.t.Helper()
	req := httptest.NewRequest(http.MethodPost, "/checkout/"+orderID+"/"+route, strings.NewReader(body))
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	return b.do(req)
}

// post posts a form as is (csrf_token included by the caller).
func (b *payBrowser) post(orderID, route string, form url.Values, hdr ...string) (*http.Response, string) {
	b.e.t.Helper()
	return b.postRaw(orderID, route, "application/x-www-form-urlencoded", form.Encode(), hdr...)
}

// submit posts the form with the order page's token, as a browser does.
func (b *payBrowser) submit(orderID, route string, form url.Values, hdr ...string) (*http.Response, string) {
	b.e.t.Helper()
	f := url.Values{}
	for k, v := range form {
		f[k] = v
	}
	f.Set("csrf_token", b.token(orderID))
	return b.post(orderID, route, f, hdr...)
}

// login logs the browser in for balance pay.
func (b *payBrowser) login() {
	b.e.t.Helper()
	res, _ := b.submit("ord_a", "login", url.Values{"login": {payLogin}, "password": {payLoginPW}})
	require.Equal(b.e.t, http.StatusSeeOther, res.StatusCode)
	require.NotNil(b.e.t, b.cookies["pg_session"])
}

// whoIs is the customer of the browser's session, "" for none.
func (b *payBrowser) whoIs() string {
	r := httptest.NewRequest(http.MethodGet, "/checkout/ord_a", nil)
	if c := b.cookies["pg_session"]; c != nil {
		r.AddCookie(c)
	}
	id, _ := b.e.sessions.Customer(r)
	return id
}

// payRoutes are the checkout's POST forms, each with a well-formed form
// and the method whose section it re-renders.
var payRoutes = []struct {
	route, method string
	form          url.Values
}{
	{"quick-pay", "quick_pay", url.Values{"card_number": {payPAN}, "name": {"王小明"}, "id_number": {payIDNo}, "phone": {"13800000001"}}},
	{"quick-pay/bound", "quick_pay", url.Values{"phone": {"13800000001"}, "last4": {payPAN[len(payPAN)-4:]}}},
	{"quick-pay/confirm", "quick_pay", url.Values{"card_id": {"crd_1"}, "code": {payCode}, "bind": {"1"}}},
	{"card-pay", "card_pay", url.Values{"card_number": {payPAN}, "pay_password": {payPIN}}},
	{"online-banking", "online_banking", url.Values{}},
	{"login", "balance", url.Values{"login": {payLogin}, "password": {payLoginPW}}},
	{"logout", "balance", url.Values{}},
	{"balance", "balance", url.Values{"pay_password": {payPIN}}},
}

// requireUnchanged asserts a refused form changed nothing: the checkout
// and the login were never called, and the browser's session (logged in
// before) is alive and the only one.
func (e *payEnv) requireUnchanged(t *testing.T, b *payBrowser, logins int) {
	t.Helper()
	require.Empty(t, e.co.Calls(), "the checkout was called")
	require.Equal(t, logins, e.cus.Logins(), "a login was tried")
	require.Equal(t, payCustomer.ID, b.whoIs(), "the session was ended or replaced")
	require.Equal(t, 1, e.store.Len(), "sessions were started or ended")
}

// TestPayCSRF: every form refuses a missing, wrong or foreign CSRF token
// and a cross-origin request with 403, and never calls the checkout, logs
// in or out.
func TestPayCSRF(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name  string
		token func(e *payEnv, b *payBrowser) string // "" sends none
		hdr   []string
		drop  bool // the CSRF cookie is not sent
	}{
		{name: "no token", token: func(*payEnv, *payBrowser) string { return "" }},
		{name: "garbage token", token: func(*payEnv, *payBrowser) string { return "x" }},
		{name: "another order's token", token: func(_ *payEnv, b *payBrowser) string { return b.token("ord_b") }},
		{name: "another browser's token", token: func(e *payEnv, _ *payBrowser) string { return e.browser().token("ord_a") }},
		{name: "token without its cookie", token: func(_ *payEnv, b *payBrowser) string { return b.token("ord_a") }, drop: true},
		{name: "cross-site, right token", token: func(_ *payEnv, b *payBrowser) string { return b.token("ord_a") },
			hdr: []string{"Sec-Fetch-Site", "cross-site"}},
		{name: "cross-origin, right token", token: func(_ *payEnv, b *payBrowser) string { return b.token("ord_a") },
			hdr: []string{"Origin", "https://evil.example"}},
		{name: "cross-origin, right token in the header", token: func(_ *payEnv, b *payBrowser) string { return "" },
			hdr: []string{"Origin", "https://evil.example", "Sec-Fetch-Site", "cross-site"}},
	}
	for _, r := range payRoutes {
		for _, tc := range cases {
			t.Run(r.route+"/"+tc.name, func(t *testing.T) {
				t.Parallel()
				e := newPayEnv(t)
				b := e.browser()
				b.login()
				logins := e.cus.Logins()
				form := url.Values{}
				for k, v := range r.form {
					form[k] = v
				}
				if tok := tc.token(e, b); tok != "" {
					form.Set("csrf_token", tok)
				}
				hdr := slices.Clone(tc.hdr)
				if tc.name == "cross-origin, right token in the header" {
					hdr = append(hdr, "X-CSRF-Token", b.token("ord_a"))
				}
				if tc.drop {
					delete(b.cookies, "pg_csrf")
				}
				res, body := b.post("ord_a", r.route, form, hdr...)
				require.Equal(t, http.StatusForbidden, res.StatusCode)
				require.Contains(t, body, "This form has expired")
				require.Equal(t, "DENY", res.Header.Get("X-Frame-Options"))
				require.Empty(t, res.Header.Values("Set-Cookie"), "no session cookie set or cleared")
				e.requireUnchanged(t, b, logins)
			})
		}
	}
}

// TestPayBadForms: an oversized body (over 64 KiB), a body that is not a
// form, an unreadable form, an over-long field and a field that is not
// UTF-8 each get a clear message and change nothing.
func TestPayBadForms(t *testing.T) {
	t.Parallel()
	firstField := map[string]string{"quick-pay": "name", "quick-pay/bound": "phone", "quick-pay/confirm": "code",
		"card-pay": "card_number", "login": "password", "balance": "pay_password"}
	type request struct {
		contentType, body string
		hdr               []string
	}
	cases := []struct {
		name    string
		fields  bool // only for routes with fields
		req     func(b *payBrowser, route string, form url.Values) request
		status  int
		message string
	}{
		{name: "body over 64 KiB", status: http.StatusRequestEntityTooLarge, message: "The form is too large",
			req: func(b *payBrowser, route string, form url.Values) request {
				form.Set("csrf_token", b.token("ord_a"))
				form.Set("padding", strings.Repeat("x", 65<<10))
				return request{"application/x-www-form-urlencoded", form.Encode(), nil}
			}},
		{name: "JSON body, token in the header", status: http.StatusUnsupportedMediaType, message: "The form could not be read",
			req: func(b *payBrowser, route string, form url.Values) request {
				return request{"application/json", `{"card_number":"` + payPAN + `","pay_password":"` + payPIN + `"}`,
					[]string{"X-CSRF-Token", b.token("ord_a")}}
			}},
		{name: "no content type, token in the header", status: http.StatusUnsupportedMediaType, message: "The form could not be read",
			req: func(b *payBrowser, route string, form url.Values) request {
				return request{"", form.Encode(), []string{"X-CSRF-Token", b.token("ord_a")}}
			}},
		{name: "malformed form encoding", status: http.StatusBadRequest, message: "The form could not be read",
			req: func(b *payBrowser, route string, form url.Values) request {
				return request{"application/x-www-form-urlencoded", form.Encode() + "&%zz=1&csrf_token=" + b.token("ord_a"), nil}
			}},
		{name: "field over 128 bytes", fields: true, status: http.StatusUnprocessableEntity, message: "is too long",
			req: func(b *payBrowser, route string, form url.Values) request {
				form.Set(firstField[route], strings.Repeat("9", 129))
				form.Set("csrf_token", b.token("ord_a"))
				return request{"application/x-www-form-urlencoded", form.Encode(), nil}
			}},
		{name: "field not UTF-8", fields: true, status: http.StatusUnprocessableEntity, message: "characters that are not allowed",
			req: func(b *payBrowser, route string, form url.Values) request {
				form.Set(firstField[route], "王\xff\xfe")
				form.Set("csrf_token", b.token("ord_a"))
				return request{"application/x-www-form-urlencoded", form.Encode(), nil}
			}},
	}
	for _, r := range payRoutes {
		for _, tc := range cases {
			if tc.fields && firstField[r.route] == "" {
				continue
			}
			t.Run(r.route+"/"+tc.name, func(t *testing.T) {
				t.Parallel()
				e := newPayEnv(t)
				b := e.browser()
				b.login()
				logins := e.cus.Logins()
				form := url.Values{}
				for k, v := range r.form {
					form[k] = v
				}
				rq := tc.req(b, r.route, form)
				res, body := b.postRaw("ord_a", r.route, rq.contentType, rq.body, rq.hdr...)
				require.Equal(t, tc.status, res.StatusCode, body)
				text := html.UnescapeString(body)
				require.Contains(t, text, tc.message)
				require.Contains(t, body, `id="error-`+r.method+`"`, "the message is in the method's section")
				for _, s := range []string{payPAN, payPIN, payCode, payIDNo, payLoginPW} {
					require.NotContains(t, body, s)
				}
				e.requireUnchanged(t, b, logins)
			})
		}
	}
}

// locked is a lock-out error as customer returns it.
func locked(until time.Time) error {
	return &paygate.Error{Code: paygate.CodeForbidden, Field: "pay_password", Message: "too many wrong payment passwords; try again later",
		Err: &customer.LockedError{Until: until}}
}

// limit is a limit error as customer.Reserve returns it.
func limit(which customer.Limit, max int64) error {
	return &paygate.Error{Code: paygate.CodeLimitExceeded, Field: "amount", Message: "the amount exceeds a limit (internal text)",
		Err: &customer.LimitError{Limit: which, Max: max}}
}

// TestPayMessages: every refusal a paying form can get renders the page
// again, the method open, with the right status and a sentence the payer
// can read; internal errors show "Something went wrong" and are logged,
// their text never on the page.
func TestPayMessages(t *testing.T) {
	t.Parallel()
	secretText := "pq: connection to db-internal-7:5432 refused (user paygate)"
	cases := []struct {
		name    string
		err     error
		status  int
		message string
		hidden  string // must not be on the page
		logged  bool
	}{
		{"method limit per payment", limit(customer.LimitMethodSingle, 50_000), 422,
			"This payment is over this payment method's limit per payment of ¥500.00.", "internal text", false},
		{"method daily limit", limit(customer.LimitMethodDaily, 100_000), 422,
			"This payment is over this payment method's daily limit of ¥1,000.00.", "", false},
		{"customer daily limit", limit(customer.LimitCustomerDaily, 500_000), 422,
			"This payment is over your daily payment limit of ¥5,000.00.", "", false},
		{"card limit per payment", limit(customer.LimitCardSingle, 5_000_000), 422,
			"This payment is over this card's limit per payment of ¥50,000.00.", "", false},
		{"card daily limit", limit(customer.LimitCardDaily, 5_000_000), 422,
			"This payment is over this card's daily limit of ¥50,000.00.", "", false},
		{"insufficient funds", paygate.E(paygate.CodeInsufficientFunds, "ledger: account crd_secret_acct would go below zero"), 422,
			"Insufficient funds. Please choose another card or payment method.", "crd_secret_acct", false},
		{"locked until a Beijing time", locked(time.Date(2026, 11, 22, 5, 7, 0, 0, time.UTC)), 403,
			"Too many wrong passwords: this is locked until 13:07 on 22 Nov (Beijing time).", "try again later", false},
		{"locked past midnight", locked(time.Date(2026, 11, 22, 16, 30, 0, 0, time.UTC)), 403,
			"Too many wrong passwords: this is locked until 00:30 on 23 Nov (Beijing time).", "", false},
		{"internal error", errors.New(secretText), 500, "Something went wrong. Please try again.", "db-internal", true},
		{"internal paygate error", paygate.E(paygate.CodeInternal, "ledger: journal of acct_x does not balance"), 500,
			"Something went wrong. Please try again.", "does not balance", true},
		{"wrapped internal error", errors.Join(errors.New("checkout: pay"), errors.New(secretText)), 500,
			"Something went wrong. Please try again.", "db-internal", true},
		{"ledger id conflict", paygate.EField(paygate.CodeIDConflict, "id", "transfer id already used with a different amount"), 500,
			"Something went wrong. Please try again.", "transfer id", true},
		{"ledger hold already resolved", paygate.EField(paygate.CodeAlreadyResolved, "pending_id", `pending transfer "txn_1" is already posted`), 500,
			"Something went wrong. Please try again.", "txn_1", true},
		{"wrong code", paygate.EField(paygate.CodeUnauthenticated, "code", "the code is wrong; 4 tries left"), 422,
			"The code is wrong; 4 tries left.", "", false},
		{"code expired", paygate.EField(paygate.CodeUnauthenticated, "code", "the code has expired; ask for a new one"), 422,
			"The code has expired; ask for a new one.", "", false},
		{"too many tries", paygate.EField(paygate.CodeLimitExceeded, "code", "too many wrong codes; ask for a new one"), 422,
			"Too many wrong codes; ask for a new one.", "", false},
		{"code used", paygate.EField(paygate.CodeConflict, "code", "this code has already been used; ask for a new one"), 409,
			"This code has already been used; ask for a new one.", "", false},
		{"wrong payment password", paygate.EField(paygate.CodeUnauthenticated, "pay_password", "the payment password is wrong; 2 tries left"), 422,
			"The payment password is wrong; 2 tries left.", "", false},
		{"already paid", paygate.E(paygate.CodeConflict, "this order is already paid"), 409, "This order is already paid.", "", false},
		{"closed", paygate.E(paygate.CodeConflict, "this order is closed"), 409, "This order is closed.", "", false},
		{"expired", paygate.E(paygate.CodeConflict, "this order has expired"), 409, "This order has expired.", "", false},
		{"in progress", paygate.E(paygate.CodeConflict, "a payment of this order is already in progress"), 409,
			"A payment of this order is already in progress.", "", false},
		{"frozen card", paygate.EField(paygate.CodeForbidden, "card_number", "this card cannot pay: it is frozen or closed"), 403,
			"This card cannot pay: it is frozen or closed.", "", false},
		{"not a card number", paygate.EField(paygate.CodeInvalidArgument, "card_number", "this is not a valid card number"), 422,
			"This is not a valid card number.", "", false},
		{"card not recognised", paygate.EField(paygate.CodeNotFound, "card_number", "this card is not recognised"), 422,
			"This card is not recognised.", "", false},
		{"holder mismatch", paygate.EField(paygate.CodeInvalidArgument, "holder", "the name, ID number or phone do not match the card's records"), 422,
			"The name, ID number or phone do not match the card's records.", "", false},
		{"card account closed", paygate.E(paygate.CodeAccountClosed, "ledger: account card:crd_9 is closed"), 422,
			"This card or account cannot pay. Please choose another one.", "crd_9", false},
		{"channel down", paygate.E(paygate.CodeUnavailable, `payment: channel "netbank" is not configured`), 503,
			"This payment method is not available right now. Please try another one.", "netbank", false},
	}
	paying := []string{"quick-pay", "quick-pay/bound", "quick-pay/confirm", "card-pay", "online-banking", "balance"}
	for _, tc := range cases {
		for _, route := range paying {
			t.Run(tc.name+"/"+route, func(t *testing.T) {
				t.Parallel()
				e := newPayEnv(t)
				e.co.err = tc.err
				b := e.browser()
				b.login()
				var r = payRoutes[0]
				for _, pr := range payRoutes {
					if pr.route == route {
						r = pr
					}
				}
				res, body := b.submit("ord_a", route, r.form)
				require.Equal(t, tc.status, res.StatusCode)
				require.Len(t, e.co.Calls(), 1)
				text := html.UnescapeString(body)
				require.Contains(t, text, `<p class="error" id="error-`+r.method+`" role="alert">`+tc.message+`</p>`)
				require.Contains(t, body, `id="method-`+r.method+`" data-method="`+r.method+`" open>`, "the method's section is open")
				require.Contains(t, body, `name="csrf_token" value="`, "the forms can be submitted again")
				if tc.hidden != "" {
					require.NotContains(t, text, tc.hidden)
				}
				require.NotContains(t, text, "(internal text)")
				require.Equal(t, tc.logged, strings.Contains(e.logs.String(), `"checkout: payment failed"`), "logged")
				if tc.logged {
					require.Contains(t, e.logs.String(), tc.hidden, "the cause is logged, for operators")
				}
				if route == "quick-pay/confirm" {
					// A wrong or expired code keeps the code form up for
					// another try; other refusals go back to the card form.
					retry := paygate.HasCode(tc.err, paygate.CodeUnauthenticated)
					require.Equal(t, retry, strings.Contains(body, `id="quick-pay-confirm"`), "code form")
					require.Equal(t, !retry, strings.Contains(body, `id="quick-pay-start"`), "card form")
					if retry {
						require.Contains(t, body, `name="card_id" value="crd_1"`)
					}
				}
			})
		}
	}

	// The login form's refusals.
	for _, tc := range []struct {
		name    string
		err     error
		status  int
		message string
	}{
		{"wrong password", nil, 422, "Wrong login or password."},
		{"locked", locked(time.Date(2026, 11, 22, 2, 30, 0, 0, time.UTC)), 403,
			"Too many wrong passwords: this is locked until 10:30 on 22 Nov (Beijing time)."},
		{"frozen customer", paygate.E(paygate.CodeForbidden, "this account is frozen"), 403, "This account is frozen."},
		{"internal", errors.New(secretText), 500, "Something went wrong. Please try again."},
	} {
		t.Run("login/"+tc.name, func(t *testing.T) {
			t.Parallel()
			e := newPayEnv(t)
			e.cus.err = tc.err
			b := e.browser()
			res, body := b.submit("ord_a", "login", url.Values{"login": {payLogin}, "password": {"Wrong-pass-1"}})
			require.Equal(t, tc.status, res.StatusCode)
			require.Contains(t, html.UnescapeString(body), `id="error-balance" role="alert">`+tc.message+`</p>`)
			require.Nil(t, b.cookies["pg_session"], "no session")
			require.Zero(t, e.store.Len())
			require.NotContains(t, body, "db-internal")
			require.NotContains(t, body, "Wrong-pass-1")
		})
	}

	// Balance pay without a live session asks to log in again; the
	// checkout is not called.
	t.Run("balance without a session", func(t *testing.T) {
		t.Parallel()
		e := newPayEnv(t)
		b := e.browser()
		res, body := b.submit("ord_a", "balance", url.Values{"pay_password": {payPIN}})
		require.Equal(t, http.StatusUnprocessableEntity, res.StatusCode)
		require.Contains(t, body, "Your session has ended; please log in again.")
		require.Contains(t, body, `id="balance-login"`)
		require.Empty(t, e.co.Calls())
	})
}

// TestPaySuccess: a payment answers 303 to the checkout page
// (post/redirect/get), a declined card adds ?declined=1, online banking
// goes to the bank, a started quick pay shows the code form with masked
// details only, login and logout start and end the session; the checkout
// gets the fields as typed, trimmed, card numbers without separators.
func TestPaySuccess(t *testing.T) {
	t.Parallel()
	challenge := checkout.Challenge{OrderID: "ord_a", CardID: "crd_1", Card: customer.NewMasked(payPAN[:6], payPAN[12:], 16),
		Bank: "SANDBOX BANK", OwnBank: true, PhoneMasked: "138****0001", ExpiresAt: t0.Add(5 * time.Minute)}
	grouped := payPAN[:4] + " " + payPAN[4:8] + "-" + payPAN[8:12] + " " + payPAN[12:]
	cases := []struct {
		name     string
		route    string
		form     url.Values
		res      checkout.Result
		ch       checkout.Challenge
		status   int
		location string
		call     payCall
		page     []string // on the page answered
	}{
		{name: "quick pay start", route: "quick-pay", ch: challenge, status: http.StatusOK,
			form: url.Values{"card_number": {" " + grouped + " "}, "name": {" 王小明 "}, "id_number": {payIDNo}, "phone": {"13800000001"}},
			call: payCall{"StartQuickPay", []string{"ord_a", payPAN, "王小明", payIDNo, "13800000001"}},
			page: []string{`id="quick-pay-confirm"`, `name="card_id" value="crd_1"`, "138****0001", "622848******" + payPAN[12:],
				"valid until 10:05 Beijing time", `id="bind"`}},
		{name: "bound quick pay start", route: "quick-pay/bound", status: http.StatusOK,
			ch:   func() checkout.Challenge { c := challenge; c.Bound = true; return c }(),
			form: url.Values{"phone": {"13800000001"}, "last4": {payPAN[12:]}},
			call: payCall{"StartBoundQuickPay", []string{"ord_a", "13800000001", payPAN[12:]}},
			page: []string{`id="quick-pay-confirm"`, "138****0001"}},
		{name: "quick pay confirm", route: "quick-pay/confirm", res: checkout.Result{Outcome: checkout.Paid, OrderID: "ord_a"},
			form:   url.Values{"card_id": {"crd_1"}, "code": {" " + payCode + " "}, "bind": {"1"}},
			status: http.StatusSeeOther, location: "/checkout/ord_a",
			call: payCall{"ConfirmQuickPay", []string{"ord_a", "crd_1", payCode, "true"}}},
		{name: "quick pay confirm, other bank processing", route: "quick-pay/confirm", res: checkout.Result{Outcome: checkout.Processing},
			form:   url.Values{"card_id": {"crd_2"}, "code": {payCode}},
			status: http.StatusSeeOther, location: "/checkout/ord_a",
			call: payCall{"ConfirmQuickPay", []string{"ord_a", "crd_2", payCode, "false"}}},
		{name: "quick pay confirm, other bank declined", route: "quick-pay/confirm", res: checkout.Result{Outcome: checkout.Declined},
			form:   url.Values{"card_id": {"crd_2"}, "code": {payCode}},
			status: http.StatusSeeOther, location: "/checkout/ord_a?declined=1",
			call: payCall{"ConfirmQuickPay", []string{"ord_a", "crd_2", payCode, "false"}}},
		{name: "card pay", route: "card-pay", res: checkout.Result{Outcome: checkout.Paid},
			form:   url.Values{"card_number": {grouped}, "pay_password": {payPIN}},
			status: http.StatusSeeOther, location: "/checkout/ord_a",
			call: payCall{"CardPay", []string{"ord_a", payPAN, payPIN}}},
		{name: "online banking", route: "online-banking", res: checkout.Result{Outcome: checkout.Redirect, RedirectURL: "/netbank/login?s=sess_1"},
			status: http.StatusSeeOther, location: "/netbank/login?s=sess_1",
			call: payCall{"OnlineBanking", []string{"ord_a"}}},
		{name: "balance", route: "balance", res: checkout.Result{Outcome: checkout.Paid},
			form:   url.Values{"pay_password": {payPIN}},
			status: http.StatusSeeOther, location: "/checkout/ord_a",
			call: payCall{"BalancePay", []string{"ord_a", payCustomer.ID, payPIN}}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			e := newPayEnv(t)
			e.co.res, e.co.ch = tc.res, tc.ch
			b := e.browser()
			b.login()
			// A same-origin browser request passes the cross-origin check.
			res, body := b.submit("ord_a", tc.route, tc.form, "Sec-Fetch-Site", "same-origin", "Origin", "http://example.com")
			require.Equal(t, tc.status, res.StatusCode, body)
			require.Equal(t, tc.location, res.Header.Get("Location"))
			require.Equal(t, []payCall{tc.call}, e.co.Calls())
			for _, s := range tc.page {
				require.Contains(t, html.UnescapeString(body), s)
			}
			for _, s := range []string{payPAN, payPAN[6:12], payIDNo, payPIN, payCode, payLoginPW} {
				require.NotContains(t, body, s)
			}
			require.Equal(t, payCustomer.ID, b.whoIs(), "the session lives on")
		})
	}

	t.Run("login and logout", func(t *testing.T) {
		t.Parallel()
		e := newPayEnv(t)
		b := e.browser()
		_, page := b.do(httptest.NewRequest(http.MethodGet, "/checkout/ord_a", nil))
		require.Contains(t, page, `id="balance-login"`)
		res, _ := b.submit("ord_a", "login", url.Values{"login": {" " + payLogin + " "}, "password": {payLoginPW}})
		require.Equal(t, http.StatusSeeOther, res.StatusCode)
		require.Equal(t, "/checkout/ord_a?method=balance#method-balance", res.Header.Get("Location"))
		require.Equal(t, payCustomer.ID, b.whoIs())
		first := b.cookies["pg_session"].Value
		_, page = b.do(httptest.NewRequest(http.MethodGet, "/checkout/ord_a?method=balance", nil))
		require.Contains(t, page, `id="balance-pay"`)
		require.Contains(t, page, "138****0001")
		require.Contains(t, page, `id="balance-available">¥10,000.00<`)

		// Logging in again replaces the session: the old token is dead.
		res, _ = b.submit("ord_a", "login", url.Values{"login": {payLogin}, "password": {payLoginPW}})
		require.Equal(t, http.StatusSeeOther, res.StatusCode)
		require.NotEqual(t, first, b.cookies["pg_session"].Value)
		require.Equal(t, 1, e.store.Len())

		res, _ = b.submit("ord_a", "logout", nil)
		require.Equal(t, http.StatusSeeOther, res.StatusCode)
		require.Equal(t, "/checkout/ord_a", res.Header.Get("Location"))
		require.Nil(t, b.cookies["pg_session"], "the cookie is cleared")
		require.Zero(t, e.store.Len(), "the session is deleted")
		require.Empty(t, e.co.Calls())
		for _, p := range b.pages {
			require.NotContains(t, p, payLoginPW)
		}
	})
}

// TestPayNeverEchoes: whatever a form is answered — the code form, a
// refusal, a form error — the page never contains the card number (nor
// its middle digits), the ID number, a password or a code the payer typed.
func TestPayNeverEchoes(t *testing.T) {
	t.Parallel()
	errs := []error{
		nil,
		paygate.EField(paygate.CodeInvalidArgument, "card_number", "this is not a valid card number"),
		paygate.EField(paygate.CodeInvalidArgument, "holder", "the name, ID number or phone do not match the card's records"),
		paygate.EField(paygate.CodeUnauthenticated, "code", "the code is wrong; 4 tries left"),
		paygate.EField(paygate.CodeUnauthenticated, "pay_password", "the payment password is wrong; 4 tries left"),
		limit(customer.LimitCardSingle, 100),
		errors.New("internal"),
	}
	for i, err := range errs {
		t.Run(string(paygate.CodeOf(err))+"/"+string(rune('a'+i)), func(t *testing.T) {
			t.Parallel()
			e := newPayEnv(t)
			e.co.err = err
			e.co.res = checkout.Result{Outcome: checkout.Paid}
			e.co.ch = checkout.Challenge{CardID: "crd_1", Card: customer.NewMasked(payPAN[:6], payPAN[12:], 16), PhoneMasked: "138****0001",
				ExpiresAt: t0.Add(5 * time.Minute)}
			b := e.browser()
			b.login()
			for _, r := range payRoutes {
				form := url.Values{}
				for k, v := range r.form {
					form[k] = v
				}
				if r.route == "login" {
					form.Set("password", payLoginPW+"x") // a wrong password is a secret too
				}
				b.submit("ord_a", r.route, form)
				if r.route == "logout" {
					b.login()
				}
				// The same forms with an over-long and a non-UTF-8 field.
				for k := range r.form {
					bad := url.Values{}
					for k2, v := range form {
						bad[k2] = v
					}
					bad.Set(k, bad.Get(k)+strings.Repeat("7", maxFieldForTest))
					b.submit("ord_a", r.route, bad)
					bad.Set(k, form.Get(k)+"\xff")
					b.submit("ord_a", r.route, bad)
				}
			}
			require.NotEmpty(t, e.co.Calls())
			grouped := payPAN[:4] + " " + payPAN[4:8] + " " + payPAN[8:12] + " " + payPAN[12:]
			for _, p := range b.pages {
				for _, s := range []string{payPAN, grouped, payPAN[6:12], payIDNo, payPIN, payCode, payLoginPW} {
					require.NotContains(t, p, s)
				}
			}
			logs := e.logs.String()
			for _, s := range []string{payPAN, payPAN[6:12], payIDNo, payPIN, payCode, payLoginPW} {
				require.NotContains(t, logs, s)
			}
		})
	}
}

// maxFieldForTest pushes a field over the forms' 128-byte limit.
const maxFieldForTest = 128
