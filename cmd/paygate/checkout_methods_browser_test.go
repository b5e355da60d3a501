package main

// Browser tests of every checkout payment method (issue 4): chromium
// pays real orders on the hosted checkout page, on a desktop and a phone
// viewport, through quick pay (a new card, a bound card, another bank's
// card), card-number pay, balance pay, online banking at the sandbox bank
// and a phone opening the order from the QR code; and the page's messages
// for the ways a payment fails. Each payment ends with the merchant's
// notification decrypted with the SDK, exactly one payment journal, and
// the ledger balanced.
//
// UPDATE_SCREENSHOTS=1 rewrites the method-*.png screenshots in
// docs/screenshots (shown in docs/CHECKOUT.md).

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/rsa"
	"io"
	"log/slog"
	"maps"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/cdproto/cdp"
	"github.com/chromedp/cdproto/emulation"
	"github.com/chromedp/cdproto/input"
	"github.com/chromedp/cdproto/page"
	"github.com/chromedp/chromedp"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/stretchr/testify/require"

	"paygate"
	"paygate/client"
	"paygate/merchant"
	"paygate/payment"
	"paygate/signing"
	"paygate/sms"
	"paygate/store"
	"paygate/store/storetest"
	"paygate/web/browsertest"
)

// The sandbox payer of these tests (docs/CUSTOMERS.md): 王小明, whose
// cards all have this phone on record.
const (
	sandboxPhone    = "13800000001"
	sandboxName     = "王小明"
	sandboxID       = "110101199003071233"
	sandboxPassword = "Sandbox2026!"
	sandboxPIN      = "135790"
	ownCard         = "6288880000000013" // pays, bound for quick pay
	poorCard        = "6288880000000021" // 0.01 CNY
	otherBankCard   = "6299990000000066" // another bank's, bound
	declinedCard    = "6299990000000074" // another bank's, its bank declines
)

// methodViewport is a browser window size the methods are paid at.
type methodViewport struct {
	name          string
	width, height int64
	opts          []chromedp.EmulateViewportOption
}

var (
	desktopViewport = methodViewport{"desktop", 1280, 800, nil}
	phoneViewport   = methodViewport{"phone", 375, 667, []chromedp.EmulateViewportOption{chromedp.EmulateScale(2), chromedp.EmulateMobile}}
)

// methodsE2E is the platform of these tests: startCheckoutE2E's, with the
// sandbox customers seeded, the channels' callbacks (the interbank switch's,
// the sandbox bank's) held until a test releases them, the POSTs the server
// received counted, a merchant's site and a browser.
type methodsE2E struct {
	*e2e
	held    *heldCallbacks
	browser context.Context
	// shop is the merchant's site: orders' return_url, where online
	// banking sends the payer back.
	shop *httptest.Server
	// cards are the sandbox payer's card ids by their last four digits.
	cards map[string]string
	// serial makes a flow that reads the sandbox phone's latest SMS, or
	// that releases held callbacks, the only one doing so: the desktop and
	// phone flows run at once, every card of the sandbox payer has the
	// same phone, and a release runs every callback held.
	serial sync.Mutex

	postsMu sync.Mutex
	posts   map[string]int         // path → POSTs received
	holds   map[string]*heldAnswer // path → its first POST's answer, held
}

// heldAnswer holds the answer to the first POST to a path until a second
// POST arrives there: handled is closed once paygate has handled the first
// (its answer kept), second when the second arrives.
type heldAnswer struct {
	handled, second chan struct{}
}

// heldCallbacks is the channels' Dispatcher here (wiring.Dispatcher: the
// simulated channels' and the sandbox bank's): their callbacks wait until
// release, so a test sees the page while another bank's payment is in
// progress, for sure and without sleeping.
type heldCallbacks struct {
	mu   sync.Mutex
	held []func()
}

func (h *heldCallbacks) After(_ time.Duration, fn func()) {
	h.mu.Lock()
	h.held = append(h.held, fn)
	h.mu.Unlock()
}

// release runs the callbacks held so far and returns how many.
func (h *heldCallbacks) release() int {
	h.mu.Lock()
	fns := h.held
	h.held = nil
	h.mu.Unlock()
	for _, fn := range fns {
		go fn()
	}
	return len(fns)
}

// startMethodsE2E builds the platform over a fresh SQLite database as
// startCheckoutE2E does, seeds the sandbox customers and starts a browser.
func startMethodsE2E(t *testing.T) *methodsE2E {
	t.Helper()
	ctx := context.Background()
	db := storetest.Open(t, store.SQLite)
	var logs bytes.Buffer
	logsMu := &sync.Mutex{}
	log := slog.New(slog.NewTextHandler(&syncWriter{mu: logsMu, w: &logs}, &slog.HandlerOptions{Level: slog.LevelWarn}))
	t.Cleanup(func() {
		if t.Failed() {
			logsMu.Lock()
			defer logsMu.Unlock()
			t.Logf("paygate's warnings and errors:\n%s", logs.String())
		}
	})
	mk := make([]byte, 32)
	rand.Read(mk)
	kr, err := merchant.NewKeyring(mk)
	require.NoError(t, err)
	ms, err := merchant.New(merchant.Config{Store: db.Merchants(), Clock: paygate.SystemClock{}, Keyring: kr, Logger: log})
	require.NoError(t, err)
	pk, err := ms.EnsurePlatformKey(ctx)
	require.NoError(t, err)

	m := &methodsE2E{held: &heldCallbacks{}, posts: map[string]int{}, holds: map[string]*heldAnswer{}}
	srv := httptest.NewUnstartedServer(nil)
	base := "http://" + srv.Listener.Addr().String()
	p, err := buildPlatform(Config{Calendar: paygate.DefaultCalendar()}, db, ms, prometheus.NewRegistry(), log,
		wiring{Dispatcher: m.held, SimDelay: 20 * time.Millisecond, CheckoutBaseURL: base + "/checkout/"})
	require.NoError(t, err)
	srv.Config.Handler = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodPost {
			m.postsMu.Lock()
			m.posts[r.URL.Path]++
			n, hold := m.posts[r.URL.Path], m.holds[r.URL.Path]
			m.postsMu.Unlock()
			switch {
			case hold != nil && n == 1:
				rec := httptest.NewRecorder()
				p.handler.ServeHTTP(rec, r)
				close(hold.handled)
				select { // a bound, not a pause: the second POST ends it
				case <-hold.second:
				case <-time.After(10 * time.Second):
				}
				maps.Copy(w.Header(), rec.Header())
				w.WriteHeader(rec.Code)
				w.Write(rec.Body.Bytes())
				return
			case hold != nil && n == 2:
				close(hold.second)
			}
		}
		p.handler.ServeHTTP(w, r)
	})
	srv.Start()
	t.Cleanup(srv.Close)
	e := &e2e{p: p, srv: srv, platform: pk}
	m.e2e = e
	e.hook = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		e.mu.Lock()
		e.received = append(e.received, r.Clone(context.Background()))
		e.bodies = append(e.bodies, b)
		e.mu.Unlock()
		w.WriteHeader(http.StatusNoContent)
	}))
	t.Cleanup(e.hook.Close)

	jctx, cancel := context.WithCancel(context.Background())
	var jobs sync.WaitGroup
	p.runJobs(jctx, &jobs, jobIntervals{Expire: time.Second, Notify: 20 * time.Millisecond, CloseOrders: time.Second, Reconcile: time.Second, Nonces: time.Minute})
	t.Cleanup(func() { cancel(); jobs.Wait() })

	e.created, err = ms.Create(ctx, merchant.CreateRequest{Name: "Tea House", Sandbox: true})
	require.NoError(t, err)
	e.pub, err = signing.ParsePublicKeyPEM([]byte(pk.PublicKeyPEM))
	require.NoError(t, err)
	e.client, err = client.New(client.Config{BaseURL: srv.URL, MchID: e.created.Merchant.ID, SerialNo: e.created.Key.SerialNo,
		PrivateKey: e.created.PrivateKey, PlatformKeys: map[string]*rsa.PublicKey{pk.SerialNo: e.pub}, APIv3Key: e.created.APIv3Key})
	require.NoError(t, err)
	m.shop = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		io.WriteString(w, `<!doctype html><title>Tea House</title><h1 id="merchant-return">Tea House: your order</h1>`)
	}))
	t.Cleanup(m.shop.Close)
	seeded, err := p.customers.Seed(ctx)
	require.NoError(t, err)
	m.cards = map[string]string{}
	for _, c := range seeded[0].Cards {
		m.cards[c.Number.Last4()] = c.ID
	}
	m.browser = browsertest.New(t)
	return m
}

// order creates an order of amount fen whose notifications go to its own
// path of the merchant's endpoint, /notify/{tag}, and whose return_url is
// returnURL(tag).
func (m *methodsE2E) order(t *testing.T, tag string, amount int64) client.Order {
	t.Helper()
	o, err := m.client.CreateOrder(context.Background(), client.CreateOrderRequest{OutTradeNo: "M-" + tag,
		Description: "Jasmine tea, 100 g", Amount: client.Amount{Total: amount, Currency: "CNY"},
		NotifyURL: m.hook.URL + "/notify/" + tag, ReturnURL: m.returnURL(tag)})
	require.NoError(t, err)
	return o
}

// returnURL is the return_url of the order tagged tag.
func (m *methodsE2E) returnURL(tag string) string { return m.shop.URL + "/orders/" + tag }

// paidOnce waits for the merchant's notification of o, decrypts it with
// the SDK (TRANSACTION.SUCCESS for o), and checks in the database that o
// was paid exactly once: one SUCCESS attempt, one payment journal, nothing
// held for review, one TRANSACTION.SUCCESS queued.
func (m *methodsE2E) paidOnce(t *testing.T, o client.Order, tag string) {
	t.Helper()
	var r *http.Request
	require.Eventually(t, func() bool {
		m.mu.Lock()
		defer m.mu.Unlock()
		for i, rq := range m.received {
			if rq.URL.Path == "/notify/"+tag {
				r = rq.Clone(context.Background())
				r.Body = io.NopCloser(bytes.NewReader(m.bodies[i]))
				return true
			}
		}
		return false
	}, 15*time.Second, 10*time.Millisecond, "the notification of %s never arrived", tag)
	var paid client.Order
	n, err := m.client.ParseNotification(r, &paid)
	require.NoError(t, err)
	require.Equal(t, "TRANSACTION.SUCCESS", n.EventType)
	require.Equal(t, o.ID, paid.ID)
	require.Equal(t, "SUCCESS", paid.Status)

	count := func(q string, args ...any) int {
		var c int
		require.NoError(t, m.p.db.SQL.QueryRowContext(context.Background(), q, args...).Scan(&c))
		return c
	}
	require.Equal(t, 1, count(`SELECT COUNT(*) FROM payment_attempts WHERE order_id = $1 AND status = 'SUCCESS'`, o.ID))
	journals := `SELECT COUNT(*) FROM ledger_transfers WHERE code = $1 AND (ref = $2 OR ref IN (SELECT id FROM payment_attempts WHERE order_id = $2))`
	require.Equal(t, 1, count(journals, payment.TransferPayment, o.ID), "one payment journal")
	require.Zero(t, count(journals, payment.TransferSuspense, o.ID), "no second payment held for review")
	require.Equal(t, 1, count(`SELECT COUNT(*) FROM notify_events WHERE url = $1`, m.hook.URL+"/notify/"+tag), "one notification")
}

// ledgerBalanced checks the ledger's invariants; call it while no payment
// is in flight.
func (m *methodsE2E) ledgerBalanced(t *testing.T) {
	t.Helper()
	bad, err := m.p.db.LedgerCheck(context.Background())
	require.NoError(t, err)
	require.Empty(t, bad)
}

// code runs send (which makes the page send a quick-pay code) and returns
// the code the sandbox phone then received, polling its inbox (the SMS
// worker delivers it) for at most 15 s. The caller holds m.serial.
func (m *methodsE2E) code(t *testing.T, send func()) string {
	t.Helper()
	ctx := context.Background()
	inbox := sms.NewSandbox(m.p.db.SMSInbox(), paygate.SystemClock{})
	before, err := inbox.Latest(ctx, sandboxPhone)
	if !paygate.HasCode(err, paygate.CodeNotFound) {
		require.NoError(t, err)
	}
	send()
	var code string
	require.Eventually(t, func() bool {
		msg, err := inbox.Latest(ctx, sandboxPhone)
		if err != nil || msg.MessageID == before.MessageID {
			return false
		}
		code = msg.Code()
		return true
	}, 15*time.Second, 20*time.Millisecond, "no SMS code arrived")
	require.Len(t, code, 6)
	return code
}

// holdFirstAnswer makes paygate handle the first POST to path at once but
// answer it only once a second POST arrives there (at most 10 s later), as
// on a slow connection; the returned channel is closed once the first is
// handled.
func (m *methodsE2E) holdFirstAnswer(path string) <-chan struct{} {
	m.postsMu.Lock()
	defer m.postsMu.Unlock()
	h := &heldAnswer{handled: make(chan struct{}), second: make(chan struct{})}
	m.holds[path] = h
	return h.handled
}

// posted returns how many POSTs the server received at path.
func (m *methodsE2E) posted(path string) int {
	m.postsMu.Lock()
	defer m.postsMu.Unlock()
	return m.posts[path]
}

// payer is one browser tab at a viewport.
type payer struct {
	m   *methodsE2E
	ctx context.Context
	vp  methodViewport
}

// tab opens a tab at vp in a browser context of its own (its own cookies:
// another device, or another person).
func (m *methodsE2E) tab(t *testing.T, vp methodViewport) *payer {
	t.Helper()
	return m.newTab(t, m.browser, vp, chromedp.WithNewBrowserContext())
}

// secondTab opens another tab of the same browser context (the same
// person's cookies) at the same viewport.
func (pr *payer) secondTab(t *testing.T) *payer {
	t.Helper()
	return pr.m.newTab(t, pr.ctx, pr.vp)
}

// newTab opens a tab from parent that records CSP violations (cspWatch).
func (m *methodsE2E) newTab(t *testing.T, parent context.Context, vp methodViewport, opts ...chromedp.ContextOption) *payer {
	t.Helper()
	ctx, cancel := chromedp.NewContext(parent, opts...)
	t.Cleanup(cancel)
	require.NoError(t, chromedp.Do(ctx,
		chromedp.Func(func(ctx context.Context, tg *chromedp.Target) error {
			_, err := cdp.Call(ctx, tg, page.AddScriptToEvaluateOnNewDocument, page.AddScriptToEvaluateOnNewDocumentParams{Source: cspWatch})
			return err
		}),
		chromedp.EmulateViewport(vp.width, vp.height, vp.opts...),
	))
	return &payer{m: m, ctx: ctx, vp: vp}
}

// do runs the actions with a 30 s bound: a page that never shows what a
// wait expects fails the test.
func (pr *payer) do(t *testing.T, actions ...chromedp.Action[chromedp.Void]) {
	t.Helper()
	ctx, cancel := context.WithTimeout(pr.ctx, 30*time.Second)
	defer cancel()
	require.NoError(t, chromedp.Do(ctx, actions...))
}

// run runs one action on the tab, bounded like do, and returns its
// result.
func run[T any](t *testing.T, pr *payer, a chromedp.Action[T]) T {
	t.Helper()
	ctx, cancel := context.WithTimeout(pr.ctx, 30*time.Second)
	defer cancel()
	v, err := chromedp.Run(ctx, a)
	require.NoError(t, err)
	return v
}

func (pr *payer) text(t *testing.T, id string) string {
	t.Helper()
	s := run(t, pr, chromedp.Text(chromedp.ID(id)))
	return strings.TrimSpace(s)
}

// open loads the order's checkout page.
func (pr *payer) open(t *testing.T, o client.Order) {
	t.Helper()
	pr.do(t, chromedp.Navigate(o.CheckoutURL), chromedp.WaitVisible(chromedp.ID("amount-value")))
	pr.check(t)
}

// method opens a method's section and waits for its form (id).
func (pr *payer) method(t *testing.T, name, form string) {
	t.Helper()
	pr.do(t, chromedp.Click(chromedp.CSS("#method-"+name+" > summary")), chromedp.WaitVisible(chromedp.ID(form)))
}

// fill types into the inputs, id → value, as a person would.
func (pr *payer) fill(t *testing.T, fields ...[2]string) {
	t.Helper()
	var steps []chromedp.Action[chromedp.Void]
	for _, f := range fields {
		steps = append(steps, chromedp.SendKeys(chromedp.ID(f[0]), f[1]))
	}
	pr.do(t, steps...)
	for _, f := range fields {
		v := run(t, pr, chromedp.Value(chromedp.ID(f[0])))
		require.Equal(t, f[1], v, "typed into #%s", f[0])
	}
}

// state waits until the order's status section shows state
// (open, processing, paid...).
func (pr *payer) state(t *testing.T, state string) {
	t.Helper()
	pr.do(t, chromedp.WaitVisible(chromedp.CSS(`#order-status[data-state="`+state+`"]`)))
}

// paid waits for the page to show the order paid, with the way back to
// the merchant and no payment form left.
func (pr *payer) paid(t *testing.T, tag string) {
	t.Helper()
	pr.state(t, "paid")
	require.Equal(t, "Paid", pr.text(t, "status-title"))
	href := run(t, pr, chromedp.AttributeValue(chromedp.ID("return-to-merchant"), "href"))
	require.Equal(t, pr.m.returnURL(tag), href.Value)
	n := run(t, pr, chromedp.Evaluate[int](`document.querySelectorAll("form").length`))
	require.Zero(t, n, "no form is left on a paid order's page")
	pr.check(t)
}

// check asserts that the page broke no Content-Security-Policy rule and,
// on the phone, needs no horizontal scrolling.
func (pr *payer) check(t *testing.T) {
	t.Helper()
	violations := run(t, pr, chromedp.Evaluate[[]string](`window.__csp`))
	require.Empty(t, violations, "Content-Security-Policy violations")
	if pr.vp.name == phoneViewport.name {
		fits := run(t, pr, chromedp.Evaluate[bool](`document.documentElement.scrollWidth <= window.innerWidth`))
		require.True(t, fits, "no horizontal scrolling at %d px", pr.vp.width)
	}
}

// shot saves a screenshot of the viewport, scrolled to show the element
// id, when UPDATE_SCREENSHOTS=1. The methods' pages are pictured on the
// desktop, and once on a phone (method-phone.png).
func (pr *payer) shot(t *testing.T, name, id string) {
	t.Helper()
	if os.Getenv("UPDATE_SCREENSHOTS") != "1" || (pr.vp.name != desktopViewport.name) != (name == "method-phone.png") {
		return
	}
	run(t, pr, chromedp.Evaluate[bool](`(() => {
		const r = document.getElementById("`+id+`").getBoundingClientRect();
		if (r.bottom > window.innerHeight) window.scrollBy(0, Math.min(r.top - 12, r.bottom - window.innerHeight + 12));
		return true })()`))
	png := run(t, pr, chromedp.CaptureScreenshot())
	require.NoError(t, os.WriteFile(filepath.Join(screenshotDir, name), png, 0o644))
}

// quickPayCard fills quick pay's card form with the sandbox payer's card
// number and holder details.
func (pr *payer) quickPayCard(t *testing.T, number string) {
	t.Helper()
	pr.method(t, payment.MethodQuickPay, "quick-pay-start")
	pr.fill(t, [2]string{"qp-card", number}, [2]string{"qp-name", sandboxName}, [2]string{"qp-id", sandboxID}, [2]string{"qp-phone", sandboxPhone})
	pr.check(t)
}

// sendCode clicks a quick-pay "Send SMS code" button and returns the code
// the phone received once the page shows the code step. The caller holds
// m.serial.
func (pr *payer) sendCode(t *testing.T, button string) string {
	t.Helper()
	code := pr.m.code(t, func() { pr.do(t, chromedp.Click(chromedp.ID(button))) })
	pr.do(t, chromedp.WaitVisible(chromedp.ID("code")))
	pr.check(t)
	return code
}

// sendCodeAlone is sendCode holding m.serial.
func (pr *payer) sendCodeAlone(t *testing.T, button string) string {
	t.Helper()
	pr.m.serial.Lock()
	defer pr.m.serial.Unlock()
	return pr.sendCode(t, button)
}

// markPage marks the document, so that unreloaded can tell later that the
// page updated itself rather than being loaded again.
func (pr *payer) markPage(t *testing.T) {
	t.Helper()
	run(t, pr, chromedp.Evaluate[bool](`window.__sameDocument = true`))
}

func (pr *payer) unreloaded(t *testing.T) {
	t.Helper()
	same := run(t, pr, chromedp.Evaluate[bool](`window.__sameDocument === true`))
	require.True(t, same, "the page updated itself, without a reload")
}

var balanceText = regexp.MustCompile(`^¥\d{1,3}(,\d{3})*\.\d{2}$`)

// TestCheckoutMethodsInBrowser pays an order with each checkout method on
// a desktop and a phone viewport (at once, each in its own browser
// context): quick pay with a new card (holder details, SMS code, remember
// the card), quick pay with a bound card (phone + last four digits),
// card-number pay, balance pay after logging in on the page, another
// bank's card, whose page shows the payment in progress and updates by
// itself when the interbank switch's callback arrives, and online banking
// (the sandbox bank's login and confirmation, back to the merchant's
// return_url, the bank's callback). Across devices, an order open on the
// desktop is paid on the phone at the URL its QR code encodes, and the
// desktop page updates by itself. Every payment ends with the page showing
// Paid, the merchant's notification and one journal; the ledger balances.
func TestCheckoutMethodsInBrowser(t *testing.T) {
	t.Parallel()
	m := startMethodsE2E(t)
	flows := []struct {
		name   string
		amount int64
		pay    func(t *testing.T, pr *payer, o client.Order, tag string)
	}{
		{"quick_pay", 2_680, func(t *testing.T, pr *payer, o client.Order, tag string) {
			pr.quickPayCard(t, ownCard)
			pr.shot(t, "method-quick-pay.png", "method-quick_pay")
			code := pr.sendCodeAlone(t, "quick-pay-send")
			sent := pr.text(t, "code-sent")
			require.Contains(t, sent, "628888******0013")
			require.Contains(t, sent, "138****0001")
			require.NotContains(t, sent, ownCard)
			pr.shot(t, "method-quick-pay-code.png", "method-quick_pay")
			pr.fill(t, [2]string{"code", code})
			pr.do(t, chromedp.Click(chromedp.ID("bind")), chromedp.Click(chromedp.ID("quick-pay-submit")))
		}},
		{"quick_pay_bound", 1_850, func(t *testing.T, pr *payer, o client.Order, tag string) {
			pr.method(t, payment.MethodQuickPay, "quick-pay-bound")
			pr.fill(t, [2]string{"qpb-phone", sandboxPhone}, [2]string{"qpb-last4", "0013"})
			code := pr.sendCodeAlone(t, "quick-pay-bound-send")
			require.Contains(t, pr.text(t, "code-sent"), "628888******0013")
			n := run(t, pr, chromedp.Evaluate[int](`document.querySelectorAll("#bind").length`))
			require.Zero(t, n, "a bound card is not offered to be remembered again")
			pr.fill(t, [2]string{"code", code})
			pr.do(t, chromedp.Click(chromedp.ID("quick-pay-submit")))
		}},
		{"card_pay", 4_500, func(t *testing.T, pr *payer, o client.Order, tag string) {
			pr.method(t, payment.MethodCardPay, "card-pay")
			pr.fill(t, [2]string{"cp-card", ownCard}, [2]string{"cp-pin", sandboxPIN})
			pr.check(t)
			pr.shot(t, "method-card-pay.png", "method-card_pay")
			pr.do(t, chromedp.Click(chromedp.ID("card-pay-submit")))
		}},
		{"balance", 3_200, func(t *testing.T, pr *payer, o client.Order, tag string) {
			pr.method(t, payment.MethodBalance, "balance-login")
			pr.fill(t, [2]string{"bl-login", sandboxPhone}, [2]string{"bl-password", sandboxPassword})
			pr.do(t, chromedp.Click(chromedp.ID("balance-login-submit")), chromedp.WaitVisible(chromedp.ID("balance-pay")))
			pr.check(t)
			require.Regexp(t, balanceText, pr.text(t, "balance-available"))
			require.Contains(t, pr.text(t, "balance-customer"), "138****0001")
			pr.fill(t, [2]string{"bp-pin", sandboxPIN})
			pr.shot(t, "method-balance.png", "method-balance")
			pr.do(t, chromedp.Click(chromedp.ID("balance-pay-submit")))
		}},
		{"other_bank", 5_600, func(t *testing.T, pr *payer, o client.Order, tag string) {
			pr.quickPayCard(t, otherBankCard)
			// One flow at a time holds the switch's callbacks.
			m.serial.Lock()
			defer m.serial.Unlock()
			code := pr.sendCode(t, "quick-pay-send")
			require.Contains(t, pr.text(t, "code-sent"), "SANDBOX INTERBANK")
			pr.fill(t, [2]string{"code", code})
			pr.do(t, chromedp.Click(chromedp.ID("quick-pay-submit")))
			pr.state(t, "processing")
			require.Equal(t, "Payment in progress", pr.text(t, "status-title"))
			n := run(t, pr, chromedp.Evaluate[int](`document.querySelectorAll("form").length`))
			require.Zero(t, n, "no method is offered while the payment is in progress")
			pr.check(t)
			pr.shot(t, "method-other-bank-processing.png", "order-status")
			pr.markPage(t)
			require.Positive(t, m.held.release(), "the switch's callback")
			pr.state(t, "paid")
			pr.unreloaded(t)
		}},
		{"online_banking", 7_700, func(t *testing.T, pr *payer, o client.Order, tag string) {
			pr.method(t, payment.MethodOnlineBanking, "online-banking")
			pr.check(t)
			pr.shot(t, "method-online-banking.png", "method-online_banking")
			// To the sandbox bank's pages: log in, pick the card, confirm
			// with the payment password.
			pr.do(t, chromedp.Click(chromedp.ID("online-banking-submit")), chromedp.WaitVisible(chromedp.ID("login-name")))
			loc := run(t, pr, chromedp.Location())
			require.True(t, strings.HasPrefix(loc, m.srv.URL+"/sandbox/bank/"), loc)
			pr.check(t)
			pr.fill(t, [2]string{"login-name", sandboxPhone}, [2]string{"login-password", sandboxPassword})
			pr.do(t, chromedp.Click(chromedp.CSS("#login button[type=submit]")), chromedp.WaitVisible(chromedp.ID("pay-password")))
			pr.check(t)
			pr.do(t, chromedp.Click(chromedp.CSS(`input[name="card_id"][value="`+m.cards["0013"]+`"]`)))
			pr.fill(t, [2]string{"pay-password", sandboxPIN})
			// One flow at a time holds the bank's callback.
			m.serial.Lock()
			defer m.serial.Unlock()
			pr.do(t, chromedp.Click(chromedp.CSS("#confirm button[type=submit]")), chromedp.WaitVisible(chromedp.ID("merchant-return")))
			loc = run(t, pr, chromedp.Location())
			back, err := url.Parse(loc)
			require.NoError(t, err)
			require.Equal(t, m.returnURL(tag), back.Scheme+"://"+back.Host+back.Path)
			require.Equal(t, o.ID, back.Query().Get("paygate_order_id"))
			require.Equal(t, "SUCCESS", back.Query().Get("result"))
			// The order's truth arrives by the bank's callback; the
			// checkout page then shows it paid.
			require.Positive(t, m.held.release(), "the bank's callback")
			pr.do(t, chromedp.Navigate(o.CheckoutURL))
		}},
	}
	// The viewports (and the devices test) run at once, each in its own
	// goroutine rather than with t.Parallel: parallel subtests would wait
	// for a free slot among the package's parallel tests while the shared
	// browser's lifetime (browsertest.Timeout) runs.
	var group sync.WaitGroup
	for _, vp := range []methodViewport{desktopViewport, phoneViewport} {
		group.Go(func() {
			t.Run(vp.name, func(t *testing.T) {
				pr := m.tab(t, vp)
				for _, f := range flows {
					t.Run(f.name, func(t *testing.T) {
						tag := vp.name + "-" + f.name
						o := m.order(t, tag, f.amount)
						pr.open(t, o)
						f.pay(t, pr, o, tag)
						pr.paid(t, tag)
						m.paidOnce(t, o, tag)
					})
				}
			})
		})
	}
	// Mobile and QR: the order open on a desktop is paid on a phone
	// (another device: another browser context) at the URL its QR code
	// encodes, the order's checkout_url; the desktop page updates by
	// itself.
	group.Go(func() {
		t.Run("across_devices", func(t *testing.T) {
			tag := "across-devices"
			o := m.order(t, tag, 6_600)
			desk := m.tab(t, desktopViewport)
			desk.open(t, o)
			src := run(t, desk, chromedp.AttributeValue(chromedp.ID("qr"), "src"))
			require.Equal(t, "/checkout/"+o.ID+"/qr.svg", src.Value)
			loaded := run(t, desk, chromedp.Poll[bool](`document.getElementById("qr").complete && document.getElementById("qr").naturalWidth > 0`))
			require.True(t, loaded)
			desk.markPage(t)

			phone := m.tab(t, phoneViewport)
			phone.open(t, o)
			require.Equal(t, "Awaiting payment", phone.text(t, "status-title"))
			phone.method(t, payment.MethodCardPay, "card-pay")
			phone.fill(t, [2]string{"cp-card", ownCard}, [2]string{"cp-pin", sandboxPIN})
			phone.check(t)
			phone.shot(t, "method-phone.png", "method-card_pay")
			phone.do(t, chromedp.Click(chromedp.ID("card-pay-submit")))
			phone.paid(t, tag)

			desk.paid(t, tag)
			desk.unreloaded(t)
			m.paidOnce(t, o, tag)
		})
	})
	group.Wait()
	m.ledgerBalanced(t)
}

// TestCheckoutMethodsFailures checks, on the desktop, what the page tells
// the payer when a payment fails, and that it never pays twice: a wrong
// SMS code (tries left; the right code then pays), a card without enough
// money, card-number pay over its limit per payment, another bank's card
// its bank declines (the order ends PAYERROR, the page says by itself that
// the payer may try again, and after a reload pays), a second tab submitting after the first paid (the
// form answers that the order is already paid) and a double click on the
// pay button (both clicks reach paygate, the order is paid once).
func TestCheckoutMethodsFailures(t *testing.T) {
	t.Parallel()
	m := startMethodsE2E(t)
	pr := m.tab(t, desktopViewport)
	ctx := context.Background()
	status := func(t *testing.T, o client.Order) string {
		t.Helper()
		got, err := m.client.GetOrder(ctx, o.ID)
		require.NoError(t, err)
		return got.Status
	}
	refused := func(t *testing.T, method string) string {
		t.Helper()
		pr.do(t, chromedp.WaitVisible(chromedp.ID("error-"+method)))
		pr.check(t)
		return pr.text(t, "error-"+method)
	}
	cardPay := func(t *testing.T, number string) {
		t.Helper()
		pr.method(t, payment.MethodCardPay, "card-pay")
		pr.fill(t, [2]string{"cp-card", number}, [2]string{"cp-pin", sandboxPIN})
		pr.do(t, chromedp.Click(chromedp.ID("card-pay-submit")))
	}

	t.Run("wrong_code", func(t *testing.T) {
		tag := "wrong-code"
		o := m.order(t, tag, 1_200)
		pr.open(t, o)
		pr.quickPayCard(t, ownCard)
		code := pr.sendCodeAlone(t, "quick-pay-send")
		wrong := []byte(code)
		wrong[5] = '0' + (wrong[5]-'0'+1)%10
		pr.fill(t, [2]string{"code", string(wrong)})
		pr.do(t, chromedp.Click(chromedp.ID("quick-pay-submit")))
		msg := refused(t, payment.MethodQuickPay)
		require.Contains(t, msg, "wrong")
		require.Contains(t, msg, "4 tries left")
		require.NotContains(t, msg, code)
		require.Equal(t, "NOTPAY", status(t, o))
		// The code form stays up; the right code pays.
		pr.fill(t, [2]string{"code", code})
		pr.do(t, chromedp.Click(chromedp.ID("quick-pay-submit")))
		pr.paid(t, tag)
		m.paidOnce(t, o, tag)
	})

	t.Run("insufficient_funds", func(t *testing.T) {
		o := m.order(t, "insufficient", 5_000)
		pr.open(t, o)
		cardPay(t, poorCard)
		require.Contains(t, refused(t, payment.MethodCardPay), "Insufficient funds")
		require.Equal(t, "NOTPAY", status(t, o))
	})

	t.Run("limit_exceeded", func(t *testing.T) {
		o := m.order(t, "over-limit", 50_001)
		pr.open(t, o)
		cardPay(t, ownCard)
		require.Equal(t, "This payment is over this payment method's limit per payment of ¥500.00.", refused(t, payment.MethodCardPay))
		require.Equal(t, "NOTPAY", status(t, o))
	})

	t.Run("declined_other_bank", func(t *testing.T) {
		tag := "declined"
		o := m.order(t, tag, 8_800)
		pr.open(t, o)
		pr.quickPayCard(t, declinedCard)
		m.serial.Lock()
		defer m.serial.Unlock()
		code := pr.sendCode(t, "quick-pay-send")
		pr.fill(t, [2]string{"code", code})
		pr.do(t, chromedp.Click(chromedp.ID("quick-pay-submit")))
		pr.state(t, "processing")
		require.Positive(t, m.held.release(), "the switch's callback")
		// The bank's refusal arrives: the page brings the methods back by
		// itself, saying why, without the payer reloading.
		pr.do(t, chromedp.WaitVisible(chromedp.ID("method-card_pay")))
		pr.state(t, "open")
		require.Contains(t, pr.text(t, "order-status"), "The last payment attempt failed. You may try again.")
		require.Contains(t, pr.text(t, "pay-message"), "declined")
		pr.check(t)
		require.Equal(t, "PAYERROR", status(t, o))
		cardPay(t, ownCard)
		pr.paid(t, tag)
		m.paidOnce(t, o, tag)
	})

	t.Run("already_paid_second_tab", func(t *testing.T) {
		tag := "second-tab"
		o := m.order(t, tag, 990)
		pr.open(t, o)
		// The payer's second tab, left open with the form filled in. Its
		// scripts are off, so that it cannot update itself before the
		// submit, as a tab may not have polled yet.
		second := pr.secondTab(t)
		second.do(t, chromedp.Func(func(ctx context.Context, tg *chromedp.Target) error {
			_, err := cdp.Call(ctx, tg, emulation.SetScriptExecutionDisabled, emulation.SetScriptExecutionDisabledParams{Value: true})
			return err
		}), chromedp.Navigate(o.CheckoutURL), chromedp.WaitVisible(chromedp.ID("amount-value")))
		second.method(t, payment.MethodCardPay, "card-pay")
		second.fill(t, [2]string{"cp-card", ownCard}, [2]string{"cp-pin", sandboxPIN})

		cardPay(t, ownCard)
		pr.paid(t, tag)
		m.paidOnce(t, o, tag)

		second.do(t, chromedp.Click(chromedp.ID("card-pay-submit")), chromedp.WaitVisible(chromedp.ID("pay-message")))
		require.Equal(t, "This order is already paid.", second.text(t, "pay-message"))
		require.Equal(t, "Paid", second.text(t, "status-title"))
		m.paidOnce(t, o, tag)
	})

	t.Run("double_click", func(t *testing.T) {
		tag := "double-click"
		o := m.order(t, tag, 1_500)
		pr.open(t, o)
		pr.method(t, payment.MethodCardPay, "card-pay")
		pr.fill(t, [2]string{"cp-card", ownCard}, [2]string{"cp-pin", sandboxPIN})
		pr.do(t, chromedp.ScrollIntoView(chromedp.ID("card-pay-submit")))
		xy := run(t, pr, chromedp.Evaluate[[]float64](`(() => {
			const r = document.getElementById("card-pay-submit").getBoundingClientRect();
			return [r.x + r.width / 2, r.y + r.height / 2] })()`))
		x, y := xy[0], xy[1]
		click := func(n int) {
			pr.do(t,
				chromedp.MouseEvent(input.DispatchMouseEventTypeMousePressed, x, y, chromedp.ButtonLeft, chromedp.ClickCount(n)),
				chromedp.MouseEvent(input.DispatchMouseEventTypeMouseReleased, x, y, chromedp.ButtonLeft, chromedp.ClickCount(n)))
		}
		// The first click pays, and the second comes before its answer
		// (held until the second POST arrives) reached the browser.
		path := "/checkout/" + o.ID + "/card-pay"
		handled := m.holdFirstAnswer(path)
		click(1)
		select {
		case <-handled:
		case <-time.After(30 * time.Second):
			t.Fatal("the first click's POST never reached paygate")
		}
		click(2)
		pr.paid(t, tag)
		m.paidOnce(t, o, tag)
		require.Equal(t, 2, m.posted(path), "both clicks submitted the form")
		// The browser shows the second click's answer.
		require.Equal(t, "This order is already paid.", pr.text(t, "pay-message"))
	})
	m.ledgerBalanced(t)
}
