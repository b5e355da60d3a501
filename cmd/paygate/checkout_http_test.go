package main

// The checkout's payment forms over real HTTP against the assembled
// platform, on both stores: a payer's browser (net/http with a cookie jar)
// opens the order's page for its CSRF cookie and token, then posts the
// forms. Time is a manual clock; SMS are delivered with the SMS worker's
// RunOnce and read from the sandbox inbox.

import (
	"context"
	"crypto/rand"
	"fmt"
	"html"
	"io"
	"log/slog"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/stretchr/testify/require"

	"paygate"
	"paygate/channel/sim"
	"paygate/customer"
	"paygate/merchant"
	"paygate/payment"
	"paygate/signing"
	"paygate/store"
	"paygate/store/storetest"
)

// coT0 is the checkout tests' start: 2026-11-22 10:00 Beijing time.
var coT0 = time.Date(2026, 11, 22, 2, 0, 0, 0, time.UTC)

// The sandbox customers and cards (docs/CUSTOMERS.md) the tests use.
const (
	coWangPhone = "13800000001"
	coWangName  = "王小明"
	coWangID    = "110101199003071233"
	coWangPIN   = "135790"
	coLisiLogin = "lisi_sandbox"
	coLisiPhone = "13800000002"
	coLisiName  = "李四"
	coLisiID    = "310104198511204567"
	coLisiPIN   = "246801"
	coPassword  = "Sandbox2026!"
	coCardPays  = "6288880000000013" // 王小明, own debit, bound, 50,000.00
	coCardPoor  = "6288880000000021" // 王小明, 0.01
	coCardCorp  = "6288880000000047" // 王小明, corporate
	coCardLisi  = "6288880000000054" // 李四, own debit, 2,000.00
	coBadLuhn   = "6288880000000014" // coCardPays with its check digit wrong
)

// coMerchantKey is the public key of every test merchant: generating an
// RSA key per merchant is slow, and these tests never sign API calls.
var coMerchantKey = sync.OnceValues(func() ([]byte, error) {
	k, err := signing.GenerateKey()
	if err != nil {
		return nil, err
	}
	return signing.PublicKeyPEM(&k.PublicKey), nil
})

// coLog collects the platform's logs from every goroutine.
type coLog struct {
	mu sync.Mutex
	b  strings.Builder
}

func (l *coLog) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *coLog) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// coEnv is the assembled platform on a manual clock, served over HTTP,
// with a sandbox merchant and the sandbox customers seeded.
type coEnv struct {
	p     *platform
	srv   *httptest.Server
	clock *paygate.ManualClock
	disp  *sim.ManualDispatcher // the simulated channels' callbacks: RunDue delivers them
	ctx   context.Context
	mch   string
	logs  *coLog
	custs map[string]customer.Customer // by login
	cards map[string]customer.Card     // by number

	mu    sync.Mutex
	pages []string // every response body a browser received
	codes []string // every code read from the sandbox inbox
	n     int
}

func startCoEnv(t *testing.T, db *store.DB) *coEnv {
	t.Helper()
	ctx := context.Background()
	e := &coEnv{clock: paygate.NewManualClock(coT0), ctx: ctx, logs: &coLog{},
		custs: map[string]customer.Customer{}, cards: map[string]customer.Card{}}
	log := slog.New(slog.NewJSONHandler(e.logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	mk := make([]byte, 32)
	rand.Read(mk)
	kr, err := merchant.NewKeyring(mk)
	require.NoError(t, err)
	ms, err := merchant.New(merchant.Config{Store: db.Merchants(), Clock: e.clock, Keyring: kr, Logger: log})
	require.NoError(t, err)
	e.disp = sim.NewManualDispatcher(e.clock)
	e.p, err = buildPlatform(Config{Calendar: paygate.DefaultCalendar()}, db, ms, prometheus.NewRegistry(), log,
		wiring{Clock: e.clock, Dispatcher: e.disp, CheckoutBaseURL: "http://checkout.test/checkout/"})
	require.NoError(t, err)
	e.srv = httptest.NewServer(e.p.handler)
	t.Cleanup(e.srv.Close)
	pem, err := coMerchantKey()
	require.NoError(t, err)
	created, err := ms.Create(ctx, merchant.CreateRequest{Name: "Tea House", Sandbox: true, PublicKeyPEM: pem})
	require.NoError(t, err)
	e.mch = created.Merchant.ID
	res, err := e.p.customers.Seed(ctx)
	require.NoError(t, err)
	for i, r := range res {
		sc := customer.SandboxCustomers[i]
		e.custs[sc.Phone+sc.Username] = r.Customer
		for j, c := range r.Cards {
			e.cards[sc.Cards[j].Number] = c
		}
	}
	return e
}

// order creates an order of amount fen, payable by every method.
func (e *coEnv) order(t *testing.T, amount int64, mod ...func(*payment.CreateRequest)) payment.Order {
	t.Helper()
	e.mu.Lock()
	e.n++
	no := fmt.Sprintf("CO-%04d", e.n)
	e.mu.Unlock()
	req := payment.CreateRequest{OutTradeNo: no, Description: "Oolong tea", NotifyURL: "https://tea.example.com/notify",
		Amount: payment.AmountRequest{Total: amount, Currency: "CNY"}}
	for _, m := range mod {
		m(&req)
	}
	o, _, err := e.p.payments.Create(e.ctx, e.mch, req)
	require.NoError(t, err)
	return o
}

// code delivers the waiting SMS and returns the latest code sent to phone.
func (e *coEnv) code(t *testing.T, phone string) string {
	t.Helper()
	_, err := e.p.smsWorker.RunOnce(e.ctx)
	require.NoError(t, err)
	m, ok, err := e.p.db.SMSInbox().Latest(e.ctx, phone)
	require.NoError(t, err)
	require.True(t, ok, "no SMS for %s", phone)
	c := m.Code()
	require.Len(t, c, 6)
	e.mu.Lock()
	e.codes = append(e.codes, c)
	e.mu.Unlock()
	return c
}

// inbox is how many messages the sandbox phones received.
func (e *coEnv) inbox(t *testing.T) int {
	t.Helper()
	_, err := e.p.smsWorker.RunOnce(e.ctx)
	require.NoError(t, err)
	return e.count(t, `SELECT count(*) FROM sms_sandbox_inbox`)
}

func (e *coEnv) count(t *testing.T, q string, args ...any) int {
	t.Helper()
	var n int
	require.NoError(t, e.p.db.SQL.QueryRowContext(e.ctx, q, args...).Scan(&n))
	return n
}

// status is the order's status.
func (e *coEnv) status(t *testing.T, id string) payment.Status {
	t.Helper()
	o, err := e.p.payments.Get(e.ctx, e.mch, id)
	require.NoError(t, err)
	return o.Status
}

// available is an account's available balance.
func (e *coEnv) available(t *testing.T, account string) int64 {
	t.Helper()
	as, err := e.p.ledger.LookupAccounts(e.ctx, []string{account})
	require.NoError(t, err)
	require.Len(t, as, 1)
	return as[0].Available(as[0].Normal)
}

// requirePaidOnce asserts the order is paid exactly once: SUCCESS, one
// successful attempt, one payment transfer from the account, one
// TRANSACTION.SUCCESS in the outbox, the account debited once, and the
// ledger balanced.
func (e *coEnv) requirePaidOnce(t *testing.T, o payment.Order, account string, before int64) {
	t.Helper()
	require.Equal(t, payment.StatusSuccess, e.status(t, o.ID))
	ats, err := e.p.payments.Attempts(e.ctx, e.mch, o.ID)
	require.NoError(t, err)
	n := 0
	for _, a := range ats {
		if a.Status == "SUCCESS" {
			n++
		}
	}
	require.Equal(t, 1, n, "successful attempts")
	require.Equal(t, 1, e.count(t, `SELECT count(*) FROM ledger_transfers WHERE debit_account_id = $1 AND ref IN
		(SELECT id FROM payment_attempts WHERE order_id = $2)`, account, o.ID), "payment transfers")
	require.Equal(t, 1, e.count(t, `SELECT count(*) FROM notify_events WHERE event_type = 'TRANSACTION.SUCCESS'
		AND payload LIKE '%' || $1 || '%'`, o.ID), "TRANSACTION.SUCCESS notifications")
	require.Equal(t, before-o.Amount.Total, e.available(t, account), "debited once")
	e.balanced(t)
}

// requireUnpaid asserts the order is still unpaid and nothing moved.
func (e *coEnv) requireUnpaid(t *testing.T, o payment.Order, account string, before int64) {
	t.Helper()
	require.NotEqual(t, payment.StatusSuccess, e.status(t, o.ID))
	require.Equal(t, before, e.available(t, account))
	require.Zero(t, e.count(t, `SELECT count(*) FROM notify_events WHERE event_type = 'TRANSACTION.SUCCESS'
		AND payload LIKE '%' || $1 || '%'`, o.ID))
}

func (e *coEnv) balanced(t *testing.T) {
	t.Helper()
	bad, err := e.p.db.LedgerCheck(e.ctx)
	require.NoError(t, err)
	require.Empty(t, bad)
}

// coBrowser is one payer's browser: a cookie jar, redirects not followed.
type coBrowser struct {
	t *testing.T
	e *coEnv
	c *http.Client
}

func (e *coEnv) browser(t *testing.T) *coBrowser {
	jar, err := cookiejar.New(nil)
	require.NoError(t, err)
	return &coBrowser{t: t, e: e, c: &http.Client{Jar: jar, CheckRedirect: func(*http.Request, []*http.Request) error {
		return http.ErrUseLastResponse
	}}}
}

// do sends req; it returns the response and its body with HTML entities
// decoded (the raw body is kept for the secrets scan).
func (b *coBrowser) do(req *http.Request) (*http.Response, string) {
	b.t.Helper()
	res, err := b.c.Do(req)
	require.NoError(b.t, err)
	body, err := io.ReadAll(res.Body)
	res.Body.Close()
	require.NoError(b.t, err)
	b.e.mu.Lock()
	b.e.pages = append(b.e.pages, string(body))
	b.e.mu.Unlock()
	return res, html.UnescapeString(string(body))
}

func (b *coBrowser) get(path string) (*http.Response, string) {
	b.t.Helper()
	req, err := http.NewRequest(http.MethodGet, b.e.srv.URL+path, nil)
	require.NoError(b.t, err)
	return b.do(req)
}

// coTokenRE finds the CSRF token of the page's forms, or of its htmx
// requests (a page without forms, as a paid order's, still has that one).
var coTokenRE = regexp.MustCompile(`name="csrf_token" value="([^"]+)"|"X-CSRF-Token": "([^"]+)"`)

// token opens the order's checkout page and returns its CSRF token.
func (b *coBrowser) token(orderID string) string {
	b.t.Helper()
	res, body := b.get("/checkout/" + orderID)
	require.Equal(b.t, http.StatusOK, res.StatusCode)
	m := coTokenRE.FindStringSubmatch(body)
	require.NotNil(b.t, m, "no CSRF token on the page of %s", orderID)
	return m[1] + m[2]
}

// post posts form (with tok as its CSRF token) to /checkout/{id}/{route}.
func (b *coBrowser) post(orderID, route, tok string, form url.Values) (*http.Response, string) {
	b.t.Helper()
	f := url.Values{"csrf_token": {tok}}
	for k, v := range form {
		f[k] = v
	}
	req, err := http.NewRequest(http.MethodPost, b.e.srv.URL+"/checkout/"+orderID+"/"+route, strings.NewReader(f.Encode()))
	require.NoError(b.t, err)
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	return b.do(req)
}

// submit opens the order's page and posts the form, as a payer does.
func (b *coBrowser) submit(orderID, route string, form url.Values) (*http.Response, string) {
	b.t.Helper()
	return b.post(orderID, route, b.token(orderID), form)
}

// requirePaid asserts a payment answered 303 to the checkout page, which
// then shows the order paid.
func (b *coBrowser) requirePaid(res *http.Response, body, orderID string) {
	b.t.Helper()
	require.Equal(b.t, http.StatusSeeOther, res.StatusCode, coMessage(body))
	require.Equal(b.t, "/checkout/"+orderID, res.Header.Get("Location"))
	_, page := b.get("/checkout/" + orderID)
	require.Contains(b.t, page, `data-state="paid"`)
}

// coRequireRefused asserts the page came back with status and message.
func coRequireRefused(t *testing.T, res *http.Response, body string, status int, message string) {
	t.Helper()
	require.Equal(t, status, res.StatusCode, coMessage(body))
	require.Contains(t, coMessage(body), message)
}

// coRequireNotPayable asserts a form posted to an order that can no longer
// be paid came back 409 with the page in state (its status section says
// why, e.g. "Paid" or "Expired") and no forms.
func coRequireNotPayable(t *testing.T, res *http.Response, body, state, title string) {
	t.Helper()
	require.Equal(t, http.StatusConflict, res.StatusCode, coMessage(body))
	require.Contains(t, body, `data-state="`+state+`"`)
	require.Contains(t, body, `id="status-title">`+title+`<`)
	require.NotContains(t, body, "<form")
}

var coMessageRE = regexp.MustCompile(`<p class="error" id="error-[a-z_]+" role="alert">([^<]*)</p>`)

// coMessage is the refusal message on a page, or the page when it has none.
func coMessage(body string) string {
	if m := coMessageRE.FindStringSubmatch(body); m != nil {
		return m[1]
	}
	return body
}

// startQuickPay posts the quick-pay card form for card with the holder's
// details and returns the card id the code form carries.
func (b *coBrowser) startQuickPay(orderID, card, name, id, phone string) string {
	b.t.Helper()
	res, body := b.submit(orderID, "quick-pay", url.Values{"card_number": {card}, "name": {name}, "id_number": {id}, "phone": {phone}})
	require.Equal(b.t, http.StatusOK, res.StatusCode, coMessage(body))
	require.Contains(b.t, body, `id="quick-pay-confirm"`)
	return coCardID(b.t, body)
}

var coCardIDRE = regexp.MustCompile(`name="card_id" value="([^"]+)"`)

func coCardID(t *testing.T, body string) string {
	t.Helper()
	m := coCardIDRE.FindStringSubmatch(body)
	require.NotNil(t, m, "no code form")
	return m[1]
}

// confirm posts the code form.
func (b *coBrowser) confirm(orderID, cardID, code string) (*http.Response, string) {
	b.t.Helper()
	return b.submit(orderID, "quick-pay/confirm", url.Values{"card_id": {cardID}, "code": {code}})
}

// coWrongCode is a code that is not c.
func coWrongCode(c string) string {
	return fmt.Sprintf("%06d", (coAtoi(c)+1)%1_000_000)
}

func coAtoi(s string) int {
	n := 0
	for _, r := range s {
		n = n*10 + int(r-'0')
	}
	return n
}

// TestCheckoutHTTPCodes: quick pay's one-time codes over HTTP — expiry,
// retries, reuse — on both stores. The subtests share one platform (each
// pays its own orders).
func TestCheckoutHTTPCodes(t *testing.T) {
	t.Parallel()
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		e := startCoEnv(t, db)
		t.Run("expiry", func(t *testing.T) { coCodeExpiry(t, e) })
		t.Run("retries", func(t *testing.T) { coCodeRetries(t, e) })
		t.Run("reuse", func(t *testing.T) { coCodeReuse(t, e) })
	})
}

// TestCheckoutHTTPRefusals: another customer's card, a card number failing
// the Luhn check, closed and expired orders, over HTTP on both stores. The
// subtests share one platform (each pays its own orders).
func TestCheckoutHTTPRefusals(t *testing.T) {
	t.Parallel()
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		e := startCoEnv(t, db)
		t.Run("another customer's card", func(t *testing.T) { coAnotherCustomersCard(t, e) })
		t.Run("luhn", func(t *testing.T) { coLuhn(t, e) })
		t.Run("closed and expired", func(t *testing.T) { coClosedAndExpired(t, e) })
	})
}

// coCodeExpiry: a quick-pay code is refused at exactly 5
// minutes, and accepted just before; a new code can be asked for.
func coCodeExpiry(t *testing.T, e *coEnv) {
	b := e.browser(t)
	acct := e.cards[coCardPays].AccountID
	before := e.available(t, acct)
	o := e.order(t, 1_000)

	cardID := b.startQuickPay(o.ID, coCardPays, coWangName, coWangID, coWangPhone)
	require.Equal(t, e.cards[coCardPays].ID, cardID)
	code := e.code(t, coWangPhone)
	e.clock.Advance(5 * time.Minute)
	res, body := b.confirm(o.ID, cardID, code)
	coRequireRefused(t, res, body, http.StatusUnprocessableEntity, "The code has expired; ask for a new one.")
	require.Contains(t, body, `id="quick-pay-confirm"`, "the code form stays for another try")
	e.requireUnpaid(t, o, acct, before)

	// A new code (the resend interval is long over), typed at 4:59.
	b.startQuickPay(o.ID, coCardPays, coWangName, coWangID, coWangPhone)
	fresh := e.code(t, coWangPhone)
	e.clock.Advance(5*time.Minute - time.Second)
	res, body = b.confirm(o.ID, cardID, fresh)
	b.requirePaid(res, body, o.ID)
	e.requirePaidOnce(t, o, acct, before)
}

// coCodeRetries: five tries per code, each wrong one
// counted and said; after five even the right code is refused; a new code
// pays. A code sent for one order is wrong for another, and an earlier
// SMS's code is refused once a newer one was sent.
func coCodeRetries(t *testing.T, e *coEnv) {
	b := e.browser(t)
	acct := e.cards[coCardPays].AccountID
	before := e.available(t, acct)
	o := e.order(t, 2_000)
	cardID := b.startQuickPay(o.ID, coCardPays, coWangName, coWangID, coWangPhone)
	code := e.code(t, coWangPhone)
	for i, left := range []string{"4 tries", "3 tries", "2 tries", "1 try"} {
		res, body := b.confirm(o.ID, cardID, coWrongCode(code))
		coRequireRefused(t, res, body, http.StatusUnprocessableEntity, "The code is wrong; "+left+" left.")
		require.Contains(t, body, `id="quick-pay-confirm"`, "try %d", i+1)
	}
	res, body := b.confirm(o.ID, cardID, coWrongCode(code))
	coRequireRefused(t, res, body, http.StatusUnprocessableEntity, "Too many wrong codes; ask for a new one.")
	res, body = b.confirm(o.ID, cardID, code)
	coRequireRefused(t, res, body, http.StatusUnprocessableEntity, "Too many wrong codes; ask for a new one.")
	e.requireUnpaid(t, o, acct, before)

	// A malformed code costs no try and says what a code is.
	e.clock.Advance(61 * time.Second)
	b.startQuickPay(o.ID, coCardPays, coWangName, coWangID, coWangPhone)
	second := e.code(t, coWangPhone)
	res, body = b.confirm(o.ID, cardID, "12a4")
	require.Equal(t, http.StatusUnprocessableEntity, res.StatusCode, coMessage(body))

	// A newer code supersedes it: the earlier SMS's code is refused.
	e.clock.Advance(61 * time.Second)
	b.startQuickPay(o.ID, coCardPays, coWangName, coWangID, coWangPhone)
	third := e.code(t, coWangPhone)
	res, body = b.confirm(o.ID, cardID, second)
	coRequireRefused(t, res, body, http.StatusUnprocessableEntity, "A newer code was sent; enter the code of the latest SMS (4 tries left).")

	// A code of another order is just wrong here.
	other := e.order(t, 2_000)
	b.startQuickPay(other.ID, coCardPays, coWangName, coWangID, coWangPhone)
	otherCode := e.code(t, coWangPhone)
	if otherCode != third && otherCode != second {
		res, body = b.confirm(o.ID, cardID, otherCode)
		coRequireRefused(t, res, body, http.StatusUnprocessableEntity, "The code is wrong; 3 tries left.")
	}
	res, body = b.confirm(o.ID, cardID, third)
	b.requirePaid(res, body, o.ID)
	e.requirePaidOnce(t, o, acct, before)
	require.Equal(t, payment.StatusNotPay, e.status(t, other.ID))
}

// coCodeReuse: a code pays once; posted again it finds the
// order paid; it never pays another order, nor with another card.
func coCodeReuse(t *testing.T, e *coEnv) {
	b := e.browser(t)
	acct := e.cards[coCardPays].AccountID
	before := e.available(t, acct)
	o := e.order(t, 3_000)
	cardID := b.startQuickPay(o.ID, coCardPays, coWangName, coWangID, coWangPhone)
	code := e.code(t, coWangPhone)

	// The code with another card's id: no code was sent for that card.
	res, body := b.confirm(o.ID, e.cards[coCardLisi].ID, code)
	coRequireRefused(t, res, body, http.StatusUnprocessableEntity, "No code was sent for this")
	res, body = b.confirm(o.ID, cardID, code)
	b.requirePaid(res, body, o.ID)

	// Posted again (a reload, the back button): already paid.
	res, body = b.confirm(o.ID, cardID, code)
	coRequireNotPayable(t, res, body, "paid", "Paid")
	// On another order of the same card, with no code of its own.
	other := e.order(t, 3_000)
	res, body = b.confirm(other.ID, cardID, code)
	coRequireRefused(t, res, body, http.StatusUnprocessableEntity, "No code was sent for this")
	require.Equal(t, payment.StatusNotPay, e.status(t, other.ID))
	e.requirePaidOnce(t, o, acct, before)
}

// TestCheckoutHTTPPayPasswordLockout: wrong payment passwords are counted
// and said; the fifth locks payments for 3 hours — the right password,
// the customer's other cards and balance pay are refused, the page says
// until when in Beijing time — and then it pays again.
func TestCheckoutHTTPPayPasswordLockout(t *testing.T) {
	t.Parallel()
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		e := startCoEnv(t, db)
		b := e.browser(t)
		acct := e.cards[coCardPays].AccountID
		before := e.available(t, acct)
		o := e.order(t, 4_000)
		for _, left := range []int{4, 3, 2, 1} {
			res, body := b.submit(o.ID, "card-pay", url.Values{"card_number": {coCardPays}, "pay_password": {"975310"}})
			tries := map[bool]string{true: "try", false: "tries"}[left == 1]
			coRequireRefused(t, res, body, http.StatusUnprocessableEntity, fmt.Sprintf("Wrong payment password, %d %s left.", left, tries))
		}
		locked := "Too many wrong passwords: this is locked until 13:00 on 22 Nov (Beijing time)."
		res, body := b.submit(o.ID, "card-pay", url.Values{"card_number": {coCardPays}, "pay_password": {"975310"}})
		coRequireRefused(t, res, body, http.StatusForbidden, locked)
		res, body = b.submit(o.ID, "card-pay", url.Values{"card_number": {coCardPays}, "pay_password": {coWangPIN}})
		coRequireRefused(t, res, body, http.StatusForbidden, locked)
		res, body = b.submit(o.ID, "card-pay", url.Values{"card_number": {coCardCorp}, "pay_password": {coWangPIN}})
		coRequireRefused(t, res, body, http.StatusForbidden, locked)
		res, body = b.submit(o.ID, "login", url.Values{"login": {coWangPhone}, "password": {coPassword}})
		require.Equal(t, http.StatusSeeOther, res.StatusCode, coMessage(body), "the login password is not locked")
		res, body = b.submit(o.ID, "balance", url.Values{"pay_password": {coWangPIN}})
		coRequireRefused(t, res, body, http.StatusForbidden, locked)
		e.requireUnpaid(t, o, acct, before)
		// Another customer is not affected.
		lisi := e.browser(t)
		res, body = lisi.submit(o.ID, "card-pay", url.Values{"card_number": {coCardLisi}, "pay_password": {coLisiPIN}})
		lisi.requirePaid(res, body, o.ID)

		e.clock.Advance(3*time.Hour - time.Second)
		o2 := e.order(t, 4_000)
		res, body = b.submit(o2.ID, "card-pay", url.Values{"card_number": {coCardPays}, "pay_password": {coWangPIN}})
		coRequireRefused(t, res, body, http.StatusForbidden, locked)
		e.clock.Advance(time.Second)
		res, body = b.submit(o2.ID, "card-pay", url.Values{"card_number": {coCardPays}, "pay_password": {coWangPIN}})
		b.requirePaid(res, body, o2.ID)
		e.requirePaidOnce(t, o2, acct, before)
	})
}

// TestCheckoutHTTPDoubleSubmit: the same form posted at once from two
// tabs (or a double click) pays once — one journal, one TRANSACTION.SUCCESS
// — for quick pay's code, card-number pay and balance pay.
func TestCheckoutHTTPDoubleSubmit(t *testing.T) {
	t.Parallel()
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		e := startCoEnv(t, db)
		b := e.browser(t)
		concurrently := func(n int, post func() (*http.Response, string)) (paid int) {
			type answer struct {
				status int
				msg    string
			}
			answers := make(chan answer, n)
			var wg sync.WaitGroup
			for range n {
				wg.Go(func() {
					res, body := post()
					answers <- answer{res.StatusCode, coMessage(body)}
				})
			}
			wg.Wait()
			close(answers)
			for a := range answers {
				switch a.status {
				case http.StatusSeeOther:
					paid++
				case http.StatusConflict: // already paid, or the code already used
				case http.StatusUnprocessableEntity: // the code's five tries were taken by the others
					require.Equal(t, "Too many wrong codes; ask for a new one.", a.msg)
				default:
					t.Fatalf("answered %d: %s", a.status, a.msg)
				}
			}
			return paid
		}

		// Quick pay: one code confirmed six times at once.
		acct := e.cards[coCardPays].AccountID
		before := e.available(t, acct)
		o := e.order(t, 5_000)
		cardID := b.startQuickPay(o.ID, coCardPays, coWangName, coWangID, coWangPhone)
		code := e.code(t, coWangPhone)
		tok := b.token(o.ID)
		form := url.Values{"card_id": {cardID}, "code": {code}}
		require.Equal(t, 1, concurrently(6, func() (*http.Response, string) { return b.post(o.ID, "quick-pay/confirm", tok, form) }))
		e.requirePaidOnce(t, o, acct, before)

		// Card-number pay from two tabs (two browsers).
		before = e.available(t, acct)
		o = e.order(t, 5_000)
		tabs := []*coBrowser{b, e.browser(t)}
		toks := []string{tabs[0].token(o.ID), tabs[1].token(o.ID)}
		var i sync.Mutex
		next := 0
		require.Equal(t, 1, concurrently(4, func() (*http.Response, string) {
			i.Lock()
			k := next % 2
			next++
			i.Unlock()
			return tabs[k].post(o.ID, "card-pay", toks[k], url.Values{"card_number": {coCardPays}, "pay_password": {coWangPIN}})
		}))
		e.requirePaidOnce(t, o, acct, before)

		// Balance pay, logged in, double-clicked.
		res, body := b.submit(o.ID, "login", url.Values{"login": {coWangPhone}, "password": {coPassword}})
		require.Equal(t, http.StatusSeeOther, res.StatusCode, coMessage(body))
		bal := e.p.customers.BalanceAccount(e.custs[coWangPhone].ID)
		before = e.available(t, bal)
		o = e.order(t, 5_000)
		tok = b.token(o.ID)
		require.Equal(t, 1, concurrently(3, func() (*http.Response, string) {
			return b.post(o.ID, "balance", tok, url.Values{"pay_password": {coWangPIN}})
		}))
		e.requirePaidOnce(t, o, bal, before)
	})
}

// coAnotherCustomersCard: a card is paid only with its own
// holder's details and password: 李四's card with 王小明's details sends
// no code; a bound card is found only by its own customer's phone; 王小明's
// payment password does not pay 李四's card.
func coAnotherCustomersCard(t *testing.T, e *coEnv) {
	b := e.browser(t)
	sent := e.inbox(t)
	lisiAcct := e.cards[coCardLisi].AccountID
	before := e.available(t, lisiAcct)
	o := e.order(t, 6_000)
	holderMismatch := "The name, ID number or phone do not match the card's records."
	for _, h := range [][3]string{
		{coWangName, coWangID, coWangPhone},   // all 王小明's
		{coLisiName, coWangID, coLisiPhone},   // his ID number
		{coLisiName, coLisiID, coWangPhone},   // his phone
		{coWangName, coLisiID, coLisiPhone},   // his name
		{coLisiName, coLisiID, "13800000003"}, // a third phone
	} {
		res, body := b.submit(o.ID, "quick-pay", url.Values{"card_number": {coCardLisi}, "name": {h[0]}, "id_number": {h[1]}, "phone": {h[2]}})
		coRequireRefused(t, res, body, http.StatusUnprocessableEntity, holderMismatch)
		require.NotContains(t, body, `id="quick-pay-confirm"`)
	}
	require.Equal(t, sent, e.inbox(t), "no code was sent")

	// Bound quick pay: 王小明's bound card ends in 0013; 李四 has no
	// bound card; the unverified customer neither.
	noCard := "No bound card ending in these digits for this phone number."
	for _, c := range [][2]string{{coLisiPhone, "0013"}, {"13800000003", "0013"}, {coWangPhone, "0054"}, {"13900000000", "0013"}} {
		res, body := b.submit(o.ID, "quick-pay/bound", url.Values{"phone": {c[0]}, "last4": {c[1]}})
		coRequireRefused(t, res, body, http.StatusUnprocessableEntity, noCard)
	}
	require.Equal(t, sent, e.inbox(t), "no code was sent")

	// Card-number pay: 王小明's password on 李四's card is just wrong
	// (and counts against 李四's card holder, not 王小明).
	res, body := b.submit(o.ID, "card-pay", url.Values{"card_number": {coCardLisi}, "pay_password": {coWangPIN}})
	coRequireRefused(t, res, body, http.StatusUnprocessableEntity, "Wrong payment password, 4 tries left.")
	e.requireUnpaid(t, o, lisiAcct, before)

	// 王小明's own bound card pays with his phone.
	res, body = b.submit(o.ID, "quick-pay/bound", url.Values{"phone": {coWangPhone}, "last4": {"0013"}})
	require.Equal(t, http.StatusOK, res.StatusCode, coMessage(body))
	require.NotContains(t, body, `id="bind"`, "bound already")
	acct := e.cards[coCardPays].AccountID
	wangBefore := e.available(t, acct)
	res, body = b.confirm(o.ID, coCardID(t, body), e.code(t, coWangPhone))
	b.requirePaid(res, body, o.ID)
	e.requirePaidOnce(t, o, acct, wangBefore)
	require.Equal(t, before, e.available(t, lisiAcct))
}

// coLuhn: a card number failing the Luhn check is refused by
// quick pay and card-number pay alike; nothing is sent or paid.
func coLuhn(t *testing.T, e *coEnv) {
	b := e.browser(t)
	sent := e.inbox(t)
	o := e.order(t, 700)
	for _, n := range []string{coBadLuhn, "6288 8800 0000 0014", "6288880000000012", "6288880000001", "62888800000000001"} {
		res, body := b.submit(o.ID, "quick-pay", url.Values{"card_number": {n}, "name": {coWangName}, "id_number": {coWangID}, "phone": {coWangPhone}})
		coRequireRefused(t, res, body, http.StatusUnprocessableEntity, "This is not a valid card number.")
		res, body = b.submit(o.ID, "card-pay", url.Values{"card_number": {n}, "pay_password": {coWangPIN}})
		coRequireRefused(t, res, body, http.StatusUnprocessableEntity, "This is not a valid card number.")
	}
	require.Equal(t, sent, e.inbox(t), "no code was sent")
	require.Equal(t, payment.StatusNotPay, e.status(t, o.ID))
	// The same number with its right check digit pays.
	acct := e.cards[coCardPays].AccountID
	before := e.available(t, acct)
	res, body := b.submit(o.ID, "card-pay", url.Values{"card_number": {"6288 8800 0000 0013"}, "pay_password": {coWangPIN}})
	b.requirePaid(res, body, o.ID)
	e.requirePaidOnce(t, o, acct, before)
}

// coClosedAndExpired: an order the merchant closed, or whose
// time ran out (before and after the expiry job closed it), is refused by
// every method — even with a code sent while it was open — and its page
// says so without the forms.
func coClosedAndExpired(t *testing.T, e *coEnv) {
	b := e.browser(t)
	acct := e.cards[coCardPays].AccountID
	before := e.available(t, acct)
	b.submit(e.order(t, 1).ID, "login", url.Values{"login": {coWangPhone}, "password": {coPassword}})

	try := func(o payment.Order, cardID, code, state, title string) {
		t.Helper()
		tok := b.token(o.ID)
		for _, f := range []struct {
			route string
			form  url.Values
		}{
			{"quick-pay", url.Values{"card_number": {coCardPays}, "name": {coWangName}, "id_number": {coWangID}, "phone": {coWangPhone}}},
			{"quick-pay/bound", url.Values{"phone": {coWangPhone}, "last4": {"0013"}}},
			{"quick-pay/confirm", url.Values{"card_id": {cardID}, "code": {code}}},
			{"card-pay", url.Values{"card_number": {coCardPays}, "pay_password": {coWangPIN}}},
			{"balance", url.Values{"pay_password": {coWangPIN}}},
			{"online-banking", nil},
		} {
			res, body := b.post(o.ID, f.route, tok, f.form)
			coRequireNotPayable(t, res, body, state, title)
		}
		_, page := b.get("/checkout/" + o.ID)
		require.NotContains(t, page, `id="method-quick_pay"`)
		require.NotContains(t, page, `id="card-pay"`)
		e.requireUnpaid(t, o, acct, before)
	}

	closed := e.order(t, 800)
	cardID := b.startQuickPay(closed.ID, coCardPays, coWangName, coWangID, coWangPhone)
	code := e.code(t, coWangPhone)
	_, err := e.p.payments.Close(e.ctx, e.mch, closed.ID)
	require.NoError(t, err)
	try(closed, cardID, code, "closed", "Closed")
	_, page := b.get("/checkout/" + closed.ID)
	require.Contains(t, page, `data-state="closed"`)

	expiring := e.order(t, 900, func(r *payment.CreateRequest) { r.TimeExpire = coT0.Add(10 * time.Minute) })
	cardID = b.startQuickPay(expiring.ID, coCardPays, coWangName, coWangID, coWangPhone)
	code = e.code(t, coWangPhone)
	e.clock.Advance(10 * time.Minute)
	try(expiring, cardID, code, "expired", "Expired")
	_, page = b.get("/checkout/" + expiring.ID)
	require.Contains(t, page, `data-state="expired"`)
	n, err := e.p.payments.CloseExpired(e.ctx, 100)
	require.NoError(t, err)
	require.Equal(t, 1, n)
	require.Equal(t, payment.StatusClosed, e.status(t, expiring.ID))
	try(expiring, cardID, code, "expired", "Expired")
}

// TestCheckoutHTTPCardPayLimits: card-number pay's limits at their
// boundary — 500.00 a payment, 1,000.00 a business day: exactly at the
// limit passes, one fen over is refused with the limit and its amount
// named; the day's usage starts again the next business day.
func TestCheckoutHTTPCardPayLimits(t *testing.T) {
	t.Parallel()
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		e := startCoEnv(t, db)
		b := e.browser(t)
		acct := e.cards[coCardPays].AccountID
		pay := func(amount int64) (payment.Order, *http.Response, string) {
			o := e.order(t, amount)
			res, body := b.submit(o.ID, "card-pay", url.Values{"card_number": {coCardPays}, "pay_password": {coWangPIN}})
			return o, res, body
		}
		before := e.available(t, acct)
		o, res, body := pay(50_001)
		coRequireRefused(t, res, body, http.StatusUnprocessableEntity, "This payment is over this payment method's limit per payment of ¥500.00.")
		e.requireUnpaid(t, o, acct, before)

		o, res, body = pay(50_000)
		b.requirePaid(res, body, o.ID)
		e.requirePaidOnce(t, o, acct, before)

		before = e.available(t, acct)
		o, res, body = pay(50_000)
		b.requirePaid(res, body, o.ID)
		e.requirePaidOnce(t, o, acct, before)

		before = e.available(t, acct)
		o, res, body = pay(1)
		coRequireRefused(t, res, body, http.StatusUnprocessableEntity, "This payment is over this payment method's daily limit of ¥1,000.00.")
		e.requireUnpaid(t, o, acct, before)

		// Other methods have their own limits: quick pay still pays today.
		o = e.order(t, 1)
		cardID := b.startQuickPay(o.ID, coCardPays, coWangName, coWangID, coWangPhone)
		res, body = b.confirm(o.ID, cardID, e.code(t, coWangPhone))
		b.requirePaid(res, body, o.ID)

		// 00:00 Beijing time starts a new business day.
		e.clock.Set(time.Date(2026, 11, 22, 16, 0, 0, 0, time.UTC))
		before = e.available(t, acct)
		o, res, body = pay(50_000)
		b.requirePaid(res, body, o.ID)
		e.requirePaidOnce(t, o, acct, before)
	})
}
