package netbank_test

import (
	"bytes"
	"context"
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

	"github.com/stretchr/testify/require"

	"paygate"
	"paygate/channel"
	"paygate/channel/netbank"
	"paygate/channel/sim"
	"paygate/customer"
	"paygate/ledger"
	"paygate/payment"
	"paygate/sealing"
	"paygate/store"
)

// t0 is 2026-11-22 10:00 in Shanghai; day0 its business day.
var t0 = time.Date(2026, 11, 22, 2, 0, 0, 0, time.UTC)

const day0 = paygate.Date("2026-11-22")

var secret = []byte("netbank-callback-secret-32-bytes")

// The sandbox customers (customer.SandboxCustomers) the tests log in as.
const (
	wangLogin = "13800000001"
	wangPIN   = "135790"
	lisiLogin = "lisi_sandbox"
	lisiPIN   = "246801"
	password  = "Sandbox2026!"
	returnURL = "https://shop.example.com/return?o=1"
)

// Wang's cards, by their place in customer.SandboxCustomers.
const (
	cardPays    = 0 // 6288880000000013, 50,000.00
	cardPoor    = 1 // 6288880000000021, 0.01
	cardFrozen  = 2 // 6288880000000039
	cardCorp    = 3 // 6288880000000047
	cardOtherBk = 4 // 6299990000000066, another bank's
)

// logBuffer collects log output safely from many goroutines.
type logBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *logBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *logBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// fakeOrders serves checkout views the tests change at will.
type fakeOrders struct {
	mu sync.Mutex
	m  map[string]payment.CheckoutOrder
}

func (f *fakeOrders) CheckoutView(ctx context.Context, id string) (payment.CheckoutOrder, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	o, ok := f.m[id]
	if !ok {
		return payment.CheckoutOrder{}, paygate.E(paygate.CodeNotFound, "order not found")
	}
	return o, nil
}

func (f *fakeOrders) set(o payment.CheckoutOrder) {
	f.mu.Lock()
	f.m[o.ID] = o
	f.mu.Unlock()
}

func (f *fakeOrders) update(id string, fn func(*payment.CheckoutOrder)) {
	f.mu.Lock()
	o := f.m[id]
	fn(&o)
	f.m[id] = o
	f.mu.Unlock()
}

type callback struct {
	h    http.Header
	body []byte
}

// rig is a bank over one database with the sandbox customers seeded, its
// pages served by an httptest server.
type rig struct {
	db     *store.DB
	clock  *paygate.ManualClock
	disp   *sim.ManualDispatcher
	led    *ledger.Ledger
	cus    *customer.Service
	orders *fakeOrders
	bank   *netbank.Bank
	srv    *httptest.Server
	logs   *logBuffer
	seed   []customer.SeedResult
	ctx    context.Context

	mu  sync.Mutex
	got []callback
}

func inTx(db *store.DB) netbank.InTx {
	return func(ctx context.Context, fn func(netbank.Tx) error) error {
		return db.InTx(ctx, func(tx *store.Tx) error { return fn(tx) })
	}
}

func newCustomers(t testing.TB, db *store.DB, led *ledger.Ledger, clock paygate.Clock, logs io.Writer) *customer.Service {
	t.Helper()
	kr, err := sealing.ParseKeyring("AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=")
	require.NoError(t, err)
	idx, err := sealing.NewBlindIndex([]byte("a separate 32-byte blind index key!"))
	require.NoError(t, err)
	svc, err := customer.New(customer.Config{Store: db.Customers(), Books: led, Clock: clock, Keyring: kr, Index: idx,
		Verifier: customer.SimVerifier{}, Logger: slog.New(slog.NewJSONHandler(logs, nil)),
		Hash: customer.HashParams{Time: 1, Memory: 64, Threads: 1}})
	require.NoError(t, err)
	return svc
}

func newRig(t *testing.T, db *store.DB, opts ...func(*netbank.Config)) *rig {
	t.Helper()
	r := &rig{db: db, clock: paygate.NewManualClock(t0), logs: &logBuffer{}, ctx: context.Background(),
		orders: &fakeOrders{m: map[string]payment.CheckoutOrder{}}}
	r.disp = sim.NewManualDispatcher(r.clock)
	r.led = ledger.New(db.Ledger(), r.clock, paygate.DefaultCalendar())
	r.cus = newCustomers(t, db, r.led, r.clock, r.logs)
	var err error
	r.seed, err = r.cus.Seed(r.ctx)
	require.NoError(t, err)
	mux := http.NewServeMux()
	r.srv = httptest.NewServer(mux)
	t.Cleanup(r.srv.Close)
	cfg := netbank.Config{BaseURL: r.srv.URL, Secret: secret, Clock: r.clock, Dispatcher: r.disp,
		Deliver: func(ctx context.Context, h http.Header, body []byte) error {
			r.mu.Lock()
			defer r.mu.Unlock()
			r.got = append(r.got, callback{h, body})
			return nil
		},
		Customers: r.cus, Ledger: r.led, InTx: inTx(db), Orders: r.orders,
		Logger: slog.New(slog.NewJSONHandler(r.logs, nil))}
	for _, o := range opts {
		o(&cfg)
	}
	r.bank, err = netbank.New(cfg)
	require.NoError(t, err)
	r.bank.Register(mux)
	return r
}

func (r *rig) callbacks() []callback {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]callback(nil), r.got...)
}

// results runs the due callbacks and returns every result delivered so far,
// verified.
func (r *rig) results(t *testing.T) []channel.Result {
	t.Helper()
	r.disp.RunDue()
	var out []channel.Result
	for _, cb := range r.callbacks() {
		res, err := r.bank.VerifyCallback(cb.h, cb.body)
		require.NoError(t, err)
		out = append(out, res)
	}
	return out
}

// wang is the first sandbox customer; card returns one of his cards.
func (r *rig) wang() customer.Customer { return r.seed[0].Customer }

func (r *rig) card(i int) customer.Card { return r.seed[0].Cards[i] }

// session is one payment session opened at the bank.
type session struct {
	attempt, order string
	acc            channel.Accepted
	req            channel.PayRequest
}

// open creates an order (in the fake) and opens a payment session for it.
func (r *rig) open(t *testing.T, amount int64, mod ...func(*channel.PayRequest)) session {
	t.Helper()
	req := channel.PayRequest{AttemptID: paygate.NewID(payment.PrefixAttempt), OrderID: paygate.NewID(paygate.PrefixOrder),
		MerchantID: "1900000001", Amount: amount, Currency: "CNY", Description: "Green tea 250 g",
		ExpiresAt: t0.Add(2 * time.Hour), ReturnURL: returnURL}
	for _, m := range mod {
		m(&req)
	}
	r.orders.set(payment.CheckoutOrder{ID: req.OrderID, MerchantName: "Tea House", Description: req.Description, Total: amount,
		Currency: "CNY", Status: payment.StatusNotPay, TimeExpire: req.ExpiresAt, ReturnURL: req.ReturnURL,
		Methods: payment.CheckoutMethods, Sandbox: true, MerchantCanTransact: true})
	acc, err := r.bank.Pay(r.ctx, req)
	require.NoError(t, err)
	require.Equal(t, r.srv.URL+"/sandbox/bank/pay/"+req.AttemptID, acc.RedirectURL)
	return session{attempt: req.AttemptID, order: req.OrderID, acc: acc, req: req}
}

// available returns an account's available balance.
func (r *rig) available(t *testing.T, id string) int64 {
	t.Helper()
	as, err := r.led.LookupAccounts(r.ctx, []string{id})
	require.NoError(t, err)
	require.Len(t, as, 1)
	return as[0].Available(as[0].Normal)
}

// clearing returns the netbank clearing account's credits (0 before it exists).
func (r *rig) clearing(t *testing.T) int64 {
	t.Helper()
	as, err := r.led.LookupAccounts(r.ctx, []string{ledger.ChannelClearing(netbank.Name, "CNY").ID})
	require.NoError(t, err)
	if len(as) == 0 {
		return 0
	}
	return as[0].CreditsPosted
}

// usage returns wang's online-banking usage on day0 with the card.
func (r *rig) usage(t *testing.T, cardID string) customer.Usage {
	t.Helper()
	u, err := r.cus.UsageOn(r.ctx, r.wang().ID, cardID, customer.MethodOnlineBanking, day0)
	require.NoError(t, err)
	return u
}

// browser is a payer's browser: a cookie jar, redirects not followed.
type browser struct {
	t    *testing.T
	base string
	c    *http.Client
}

func (r *rig) browser(t *testing.T) *browser {
	t.Helper()
	jar, err := cookiejar.New(nil)
	require.NoError(t, err)
	return &browser{t: t, base: r.srv.URL, c: &http.Client{Jar: jar,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}}
}

// page is one response.
type page struct {
	status int
	header http.Header
	body   string
}

func (p page) location() string { return p.header.Get("Location") }

func (b *browser) do(req *http.Request) page {
	b.t.Helper()
	res, err := b.c.Do(req)
	require.NoError(b.t, err)
	defer res.Body.Close()
	body, err := io.ReadAll(res.Body)
	require.NoError(b.t, err)
	return page{status: res.StatusCode, header: res.Header, body: string(body)}
}

func (b *browser) get(u string) page {
	b.t.Helper()
	if strings.HasPrefix(u, "/") {
		u = b.base + u
	}
	req, err := http.NewRequest(http.MethodGet, u, nil)
	require.NoError(b.t, err)
	return b.do(req)
}

// post submits a form; hdr adds headers (pairs).
func (b *browser) post(path string, form url.Values, hdr ...string) page {
	b.t.Helper()
	req, err := http.NewRequest(http.MethodPost, b.base+path, strings.NewReader(form.Encode()))
	require.NoError(b.t, err)
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	return b.do(req)
}

var fieldRE = regexp.MustCompile(`name="([a-z_]+)" value="([^"]*)"`)

// field returns a hidden field's value on the page ("" if none).
func (p page) field(name string) string {
	for _, m := range fieldRE.FindAllStringSubmatch(p.body, -1) {
		if m[1] == name {
			return m[2]
		}
	}
	return ""
}

func path(s session, step string) string {
	p := "/sandbox/bank/pay/" + s.attempt
	if step != "" {
		p += "/" + step
	}
	return p
}

// loginPage opens the session's login page and returns it.
func (b *browser) loginPage(s session) page {
	b.t.Helper()
	p := b.get(s.acc.RedirectURL)
	require.Equal(b.t, http.StatusOK, p.status, p.body)
	require.NotEmpty(b.t, p.field("csrf_token"))
	return p
}

// login opens the login page and logs in; it returns the confirmation page.
func (b *browser) login(s session, login, pw string) page {
	b.t.Helper()
	lp := b.loginPage(s)
	return b.post(path(s, "login"), url.Values{"csrf_token": {lp.field("csrf_token")}, "login": {login}, "password": {pw}})
}

// confirm submits the confirmation page's form with the card and PIN.
func (b *browser) confirm(s session, cp page, cardID, pin string) page {
	b.t.Helper()
	return b.post(path(s, "confirm"), url.Values{"csrf_token": {cp.field("csrf_token")}, "token": {cp.field("token")},
		"card_id": {cardID}, "pay_password": {pin}})
}

// pay logs in as wang and confirms with the card: the whole happy path.
func (b *browser) pay(s session, cardID string) (confirmPage, result page) {
	b.t.Helper()
	cp := b.login(s, wangLogin, password)
	require.Equal(b.t, http.StatusOK, cp.status, cp.body)
	return cp, b.confirm(s, cp, cardID, wangPIN)
}

// wantReturn is the return URL a payer comes back to with result.
func wantReturn(s session, result string) string {
	return returnURL + "&paygate_order_id=" + s.order + "&result=" + result
}
