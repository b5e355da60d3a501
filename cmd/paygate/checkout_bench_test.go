package main

import (
	"context"
	"crypto/rand"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"regexp"
	"slices"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/stretchr/testify/require"

	"paygate"
	"paygate/customer"
	"paygate/ledger"
	"paygate/merchant"
	"paygate/otp"
	"paygate/payment"
	"paygate/store"
	"paygate/store/storetest"
)

// benchClients is how many payers pay at once in the checkout benchmarks:
// each is its own customer with its own card, browser (cookie jar) and
// session, like real payers.
const benchClients = 16

// checkoutBench is the assembled platform under a checkout benchmark.
type checkoutBench struct {
	p       *platform
	srv     *httptest.Server
	mch     string
	payers  []*benchPayer
	ctx     context.Context
	counter atomic.Int64
}

// benchPayer is one payer: a verified customer with a bound own-bank card,
// a balance, a payment password, and a browser.
type benchPayer struct {
	customer customer.Customer
	card     customer.Card
	phone    string
	http     *http.Client
}

// prepared is one payment ready to submit: the order, the page's CSRF
// token and the form fields.
type prepared struct {
	payer  *benchPayer
	path   string
	fields url.Values
}

var csrfField = regexp.MustCompile(`name="csrf_token" value="([^"]+)"`)

func newCheckoutBench(b *testing.B, db *store.DB) *checkoutBench {
	b.Helper()
	ctx := context.Background()
	log := slog.New(slog.DiscardHandler)
	mk := make([]byte, 32)
	rand.Read(mk)
	kr, err := merchant.NewKeyring(mk)
	require.NoError(b, err)
	ms, err := merchant.New(merchant.Config{Store: db.Merchants(), Clock: paygate.SystemClock{}, Keyring: kr, Logger: log})
	require.NoError(b, err)
	_, err = ms.EnsurePlatformKey(ctx)
	require.NoError(b, err)
	srv := httptest.NewUnstartedServer(nil)
	base := "http://" + srv.Listener.Addr().String()
	p, err := buildPlatform(Config{Calendar: paygate.DefaultCalendar()}, db, ms, prometheus.NewRegistry(), log,
		wiring{CheckoutBaseURL: base + "/checkout/", OTP: func(c *otp.Config) { c.DailyCap, c.ResendInterval = -1, -1 }})
	require.NoError(b, err)
	srv.Config.Handler = p.handler
	srv.Start()
	b.Cleanup(srv.Close)
	created, err := ms.Create(ctx, merchant.CreateRequest{Name: "Bench Shop", Sandbox: true})
	require.NoError(b, err)
	cb := &checkoutBench{p: p, srv: srv, mch: created.Merchant.ID, ctx: ctx}

	_, err = p.ledger.CreateAccounts(ctx, []ledger.Account{ledger.SandboxFunding("CNY")})
	require.NoError(b, err)
	for i := range benchClients {
		phone := fmt.Sprintf("1370001%04d", i+1)
		c, err := p.customers.Register(ctx, customer.RegisterRequest{Phone: phone, Password: "Bench-pass-2026"})
		require.NoError(b, err)
		id := benchIDNumber(i)
		c, err = p.customers.VerifyRealName(ctx, c.ID, "测试", id, phone)
		require.NoError(b, err)
		_, err = p.customers.SetPayPassword(ctx, c.ID, "Bench-pass-2026", "135790")
		require.NoError(b, err)
		card, err := p.customers.AddCard(ctx, customer.AddCardRequest{CustomerID: c.ID,
			Holder: customer.Holder{Name: "测试", IDNumber: id, Phone: phone}})
		require.NoError(b, err)
		_, err = p.customers.Bind(ctx, c.ID, card.ID)
		require.NoError(b, err)
		for _, acct := range []string{card.AccountID, p.customers.BalanceAccount(c.ID)} {
			_, err = p.ledger.CreateTransfers(ctx, []ledger.Transfer{{ID: "benchfund_" + acct, DebitAccountID: ledger.SandboxFunding("CNY").ID,
				CreditAccountID: acct, Amount: 100_000_000, Currency: "CNY"}})
			require.NoError(b, err)
		}
		jar, _ := cookiejar.New(nil)
		hc := &http.Client{Jar: jar, Transport: &http.Transport{MaxIdleConnsPerHost: 4},
			CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
		cb.payers = append(cb.payers, &benchPayer{customer: c, card: card, phone: phone, http: hc})
	}
	return cb
}

// benchIDNumber returns a valid mainland ID number, different per i.
func benchIDNumber(i int) string {
	first := fmt.Sprintf("1101011990%02d%02d%03d", 1+i/28, 1+i%28, 100+i)
	d, ok := customer.IDCheckDigit(first)
	if !ok {
		panic("check digit")
	}
	return first + string(d)
}

// page opens an order's checkout page in the payer's browser and returns
// the CSRF token of its forms.
func (cb *checkoutBench) page(b *testing.B, py *benchPayer, orderID string) string {
	res, err := py.http.Get(cb.srv.URL + "/checkout/" + orderID)
	require.NoError(b, err)
	body, err := io.ReadAll(res.Body)
	res.Body.Close()
	require.NoError(b, err)
	m := csrfField.FindSubmatch(body)
	require.NotNil(b, m, "no CSRF token on the page")
	return string(m[1])
}

// order creates a one-fen order of the bench merchant.
func (cb *checkoutBench) order(b *testing.B) payment.Order {
	n := cb.counter.Add(1)
	o, _, err := cb.p.payments.Create(cb.ctx, cb.mch, payment.CreateRequest{OutTradeNo: fmt.Sprintf("BENCH%010d", n),
		Description: "Bench", Amount: payment.AmountRequest{Total: 1, Currency: "CNY"}, NotifyURL: "https://shop.example/notify"})
	require.NoError(b, err)
	return o
}

// run submits the prepared payments from benchClients goroutines and
// reports payments/s and the latency percentiles of the payment step.
func (cb *checkoutBench) run(b *testing.B, ready []prepared) {
	lat := make([]time.Duration, len(ready))
	var next atomic.Int64
	b.SetParallelism((benchClients + 1) / 2) // × GOMAXPROCS(2) goroutines
	b.ResetTimer()
	start := time.Now()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			i := next.Add(1) - 1
			r := ready[i]
			t0 := time.Now()
			res, err := r.payer.http.PostForm(cb.srv.URL+r.path, r.fields)
			if err != nil {
				b.Error(err)
				return
			}
			io.Copy(io.Discard, res.Body)
			res.Body.Close()
			lat[i] = time.Since(t0)
			if res.StatusCode != http.StatusSeeOther {
				b.Errorf("%s answered %d, want 303", r.path, res.StatusCode)
			}
		}
	})
	elapsed := time.Since(start)
	b.StopTimer()
	slices.Sort(lat)
	q := func(p float64) float64 { return float64(lat[int(p*float64(len(lat)-1))]) / float64(time.Millisecond) }
	b.ReportMetric(float64(len(ready))/elapsed.Seconds(), "payments/s")
	b.ReportMetric(q(0.50), "p50-ms")
	b.ReportMetric(q(0.99), "p99-ms")
	bad, err := cb.p.db.LedgerCheck(cb.ctx)
	require.NoError(b, err)
	require.Empty(b, bad)
}

// BenchmarkCheckoutPay measures the checkout's payment step over HTTP, as
// payers' browsers submit it, with benchClients payers at once, on both
// stores:
//
//   - quick_pay_confirm: POST the SMS code of a bound card (code check,
//     code consumed, limits reserved, card debited, order paid, merchant
//     notification queued: one transaction);
//   - balance_pay: POST the payment password of a logged-in customer
//     (argon2id check of the password, then the same booking from the
//     balance).
//
// Orders, pages and codes are prepared before the timer starts; only the
// payment step is timed. Run:
//
//	go test -run '^$' -bench BenchmarkCheckoutPay -benchtime 400x ./cmd/paygate/
func BenchmarkCheckoutPay(b *testing.B) {
	for _, d := range []store.Dialect{store.SQLite, store.Postgres} {
		b.Run(string(d), func(b *testing.B) {
			cb := newCheckoutBench(b, storetest.Open(b, d))
			b.Run("quick_pay_confirm", func(b *testing.B) {
				b.StopTimer()
				ready := make([]prepared, b.N)
				for i := range ready {
					py := cb.payers[i%len(cb.payers)]
					o := cb.order(b)
					tok := cb.page(b, py, o.ID)
					ch, err := cb.p.checkout.StartBoundQuickPay(cb.ctx, o.ID, py.phone, py.card.Number.Last4())
					require.NoError(b, err)
					_, err = cb.p.smsWorker.RunOnce(cb.ctx)
					require.NoError(b, err)
					m, ok, err := cb.p.db.SMSInbox().Latest(cb.ctx, py.phone)
					require.NoError(b, err)
					require.True(b, ok)
					ready[i] = prepared{payer: py, path: "/checkout/" + o.ID + "/quick-pay/confirm",
						fields: url.Values{"csrf_token": {tok}, "card_id": {ch.CardID}, "code": {m.Code()}}}
				}
				cb.run(b, ready)
			})
			b.Run("balance_pay", func(b *testing.B) {
				b.StopTimer()
				for _, py := range cb.payers { // log in once: the session cookie stays in the jar
					o := cb.order(b)
					tok := cb.page(b, py, o.ID)
					res, err := py.http.PostForm(cb.srv.URL+"/checkout/"+o.ID+"/login",
						url.Values{"csrf_token": {tok}, "login": {py.phone}, "password": {"Bench-pass-2026"}})
					require.NoError(b, err)
					res.Body.Close()
					require.Equal(b, http.StatusSeeOther, res.StatusCode)
				}
				ready := make([]prepared, b.N)
				for i := range ready {
					py := cb.payers[i%len(cb.payers)]
					o := cb.order(b)
					tok := cb.page(b, py, o.ID)
					ready[i] = prepared{payer: py, path: "/checkout/" + o.ID + "/balance",
						fields: url.Values{"csrf_token": {tok}, "pay_password": {"135790"}}}
				}
				cb.run(b, ready)
			})
		})
	}
}
