package main

import (
	"context"
	"crypto/rand"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"paygate"
	"paygate/agreement"
	"paygate/channel"
	"paygate/channel/netbank"
	"paygate/channel/sim"
	"paygate/checkout"
	"paygate/customer"
	"paygate/httpapi"
	"paygate/ledger"
	"paygate/merchant"
	"paygate/metrics"
	"paygate/notify"
	"paygate/otp"
	"paygate/payment"
	"paygate/payout"
	"paygate/sealing"
	"paygate/sms"
	"paygate/store"
	"paygate/transfer"
	"paygate/web"
)

// platform is paygate assembled: the use cases over one database, the HTTP
// handler in front of them, and the background jobs behind them. serve and
// the end-to-end tests build it the same way.
type platform struct {
	db            *store.DB
	ledger        *ledger.Ledger
	ledgerSvc     ledger.Service // ledger behind the metrics wrapper
	merchants     *merchant.Service
	payments      *payment.Service
	refundBatches *payment.BatchRefunds // batch refunds, each line through payments' Refund
	notifications *notify.Service
	worker        *notify.Worker
	customers     *customer.Service
	otp           *otp.Service
	smsWorker     *sms.Worker
	sim           *sim.Sim
	interbank     *sim.Sim // the sandbox's interbank switch: other banks' cards
	netbank       *netbank.Bank
	checkout      *checkout.Service
	transfers     *transfer.Service // customers' transfers; other banks' cards through the interbank switch
	payouts       *payout.Service   // merchants' batch payments; other banks' cards through the interbank switch
	payoutKick    chan time.Time    // wakes the payout worker when a batch is accepted
	sessions      *web.Sessions
	handler       http.Handler
	log           *slog.Logger
	clock         paygate.Clock
	agreements    *agreement.Service // merchants' agreements (mandates): sign pages, charges without the customer
}

// wiring holds what differs between serve and tests.
type wiring struct {
	Clock           paygate.Clock
	Dispatcher      sim.Dispatcher // when the simulated channel calls back; default real timers
	SimDelay        time.Duration  // accept → callback; 0 means the simulator's default
	CheckoutBaseURL string
	NotifyTimeout   time.Duration // 0: 5 s
	// Keys are the master keys; the customer, OTP, SMS and CSRF secrets
	// are derived from them (sealing.Keyring.DeriveKeys).
	Keys *sealing.Keyring
	// OTP adjusts the one-time codes' settings (benchmarks lift the
	// per-phone daily cap); nil keeps the defaults.
	OTP func(*otp.Config)
}

// buildPlatform wires every service over db. The simulated channel calls the
// payment service's Callback in-process, with callbacks signed and verified
// exactly as an external channel's would be.
func buildPlatform(cfg Config, db *store.DB, merchants *merchant.Service, reg *prometheus.Registry, log *slog.Logger, w wiring) (*platform, error) {
	if w.Clock == nil {
		w.Clock = paygate.SystemClock{}
	}
	if w.Dispatcher == nil {
		w.Dispatcher = sim.TimerDispatcher{}
	}
	if w.Keys == nil { // tests: a throwaway master key
		mk := make([]byte, sealing.MasterKeySize)
		rand.Read(mk)
		var err error
		if w.Keys, err = sealing.NewKeyring(mk); err != nil {
			return nil, err
		}
	}
	p := &platform{db: db, merchants: merchants, log: log, clock: w.Clock}
	p.ledger = ledger.New(db.Ledger(), w.Clock, cfg.Calendar)
	p.ledgerSvc = metrics.Ledger(reg, p.ledger)

	if err := p.buildCustomers(db, w, log); err != nil {
		return nil, err
	}
	secret := make([]byte, 32) // callbacks stay in this process, so a per-process secret suffices
	rand.Read(secret)
	var svc *payment.Service
	var err error
	// deliver hands a simulated channel's signed callback to the payment
	// service, in-process.
	deliver := func(name string) sim.Deliver {
		return func(ctx context.Context, h http.Header, body []byte) error {
			_, err := svc.Callback(ctx, name, h, body)
			if paygate.HasCode(err, paygate.CodeConflict) || paygate.HasCode(err, paygate.CodeUnauthenticated) {
				return nil // refused for good; the alert is logged, retrying cannot help
			}
			return err
		}
	}
	p.sim, err = sim.New(sim.Config{Secret: secret, Clock: w.Clock, Dispatcher: w.Dispatcher, Delay: w.SimDelay, Logger: log,
		Deliver: deliver(sim.Name)})
	if err != nil {
		return nil, err
	}
	p.interbank, err = sim.New(sim.Config{Name: interbankChannel, Secret: secret, Clock: w.Clock, Dispatcher: w.Dispatcher,
		Delay: w.SimDelay, Logger: log, Deliver: deliver(interbankChannel)})
	if err != nil {
		return nil, err
	}
	// The sandbox bank's online banking: its pages are served by paygate
	// (under /sandbox/bank/), and it debits the institution's own cards.
	checkoutPage := func(orderID string) string {
		if w.CheckoutBaseURL == "" {
			return "/checkout/" + orderID
		}
		return w.CheckoutBaseURL + orderID
	}
	p.netbank, err = netbank.New(netbank.Config{
		BaseURL: strings.TrimSuffix(w.CheckoutBaseURL, "/checkout/"), Secret: secret,
		CSRFKey: w.Keys.DeriveKeys("netbank-csrf")[0], Clock: w.Clock, Dispatcher: w.Dispatcher, Calendar: cfg.Calendar,
		Logger: log, Deliver: deliver(netbank.Name), Customers: p.customers, Ledger: p.ledger,
		InTx: func(ctx context.Context, fn func(netbank.Tx) error) error {
			return db.InTx(ctx, func(tx *store.Tx) error { return fn(tx) })
		},
		Orders: netbank.OrdersFunc(func(ctx context.Context, id string) (payment.CheckoutOrder, error) {
			return svc.CheckoutView(ctx, id)
		}),
		BackURL: checkoutPage,
	})
	if err != nil {
		return nil, err
	}
	svc, err = payment.New(payment.Config{Store: db.Payments(), Ledger: p.ledger, Merchants: merchants, Clock: w.Clock,
		Channels: []channel.Channel{p.sim, p.interbank, p.netbank}, Logger: log, CheckoutBaseURL: w.CheckoutBaseURL,
		AuthorizationPeriod: cfg.AuthorizationPeriod,
		AttemptFailed: func(ctx context.Context, tx payment.Tx, a payment.Attempt) error {
			return p.checkout.ReleaseFailed(ctx, tx, a)
		},
		Kick: func() {
			if p.worker != nil {
				p.worker.Kick()
			}
		}})
	if err != nil {
		return nil, err
	}
	p.payments = svc
	p.refundBatches, err = payment.NewBatchRefunds(payment.BatchConfig{Payments: svc, Store: db.RefundBatches(), Clock: w.Clock,
		Logger: log, Kick: func() {
			if p.worker != nil {
				p.worker.Kick()
			}
		}})
	if err != nil {
		return nil, err
	}
	p.notifications = notify.NewService(db.Notify(), w.Clock)
	p.worker, err = notify.NewWorker(db.Notify(), merchants, w.Clock, notify.Options{Logger: log, Timeout: w.NotifyTimeout})
	if err != nil {
		return nil, err
	}
	auth := httpapi.AuthConfig{Verifier: merchants, Clock: w.Clock}
	v1 := &httpapi.V1{
		Orders: svc, Notifications: p.notifications, Refunds: svc, RefundBatches: p.refundBatches, Preauth: svc,
		Certificates: httpapi.CertificatesHandler(merchants),
		Idempotency:  db.IdempotencyKeys(), Clock: w.Clock,
		Authenticate: auth.Wrap,
		Sign:         func(h http.Handler) http.Handler { return httpapi.SignResponses(merchants, h) },
	}
	secure := strings.HasPrefix(w.CheckoutBaseURL, "https://")
	p.checkout, err = checkout.New(checkout.Config{Payments: svc, Customers: p.customers, Codes: p.otp, Clock: w.Clock,
		Calendar: cfg.Calendar, Interbank: interbankChannel, InterbankScenario: customer.SandboxInterbankOutcome,
		OnlineBanking: netbank.Name, Logger: log})
	if err != nil {
		return nil, err
	}
	p.agreements, err = agreement.New(agreement.Config{Store: db.Agreements(), Payments: svc, Customers: p.customers, Codes: p.otp,
		Merchants: merchants, Clock: w.Clock, Calendar: cfg.Calendar, SignBaseURL: agreementSignBase(w.CheckoutBaseURL),
		Interbank: interbankChannel, InterbankScenario: customer.SandboxInterbankOutcome, Logger: log, Kick: func() { p.worker.Kick() }})
	if err != nil {
		return nil, err
	}
	v1.Agreements = p.agreements
	p.sessions, err = web.NewSessions(web.SessionConfig{Store: db.Sessions(), Clock: w.Clock, Secure: secure})
	if err != nil {
		return nil, err
	}
	pages, err := web.New(web.Config{Orders: svc, Clock: w.Clock, Logger: log, CSRFKey: w.Keys.DeriveKeys("csrf")[0],
		SecureCookies: secure, Checkout: p.checkout, Sessions: p.sessions, Customers: p.customers, Agreements: p.agreements})
	if err != nil {
		return nil, err
	}
	portal, err := web.NewPortal(web.PortalConfig{Customers: p.customers, Sessions: p.sessions, Clock: w.Clock, Logger: log,
		CSRFKey: w.Keys.DeriveKeys("portal-csrf")[0], SecureCookies: secure, Agreements: p.agreements})
	if err != nil {
		return nil, err
	}
	payouts, err := sim.NewPayouts(sim.PayoutConfig{Name: interbankChannel, Clock: w.Clock, Delay: w.SimDelay})
	if err != nil {
		return nil, err
	}
	p.transfers, err = transfer.New(transfer.Config{Store: db.Transfers(), Customers: p.customers, Books: p.ledger, Clock: w.Clock,
		Keyring: w.Keys, Calendar: cfg.Calendar, Logger: log, Payouts: payouts, Interbank: interbankChannel,
		InterbankScenario: customer.SandboxInterbankOutcome})
	if err != nil {
		return nil, err
	}
	// Merchants' payouts share the interbank switch's payout side with the
	// transfers; its answers are asked for as often as its delay.
	p.payoutKick = make(chan time.Time, 1)
	queryEvery := 2 * time.Second
	if w.SimDelay > 0 {
		queryEvery = w.SimDelay
	}
	p.payouts, err = payout.New(payout.Config{Store: db.Payouts(), Customers: p.customers, Books: p.ledger, Clock: w.Clock,
		Keyring: w.Keys, Logger: log, Payouts: payouts, Interbank: interbankChannel,
		InterbankScenario: customer.SandboxInterbankOutcome, QueryInterval: queryEvery,
		Kick: func() {
			select {
			case p.payoutKick <- time.Time{}:
			default:
			}
		}})
	if err != nil {
		return nil, err
	}
	v1.Payouts = p.payouts
	p.handler = httpapi.New(httpapi.Config{Logger: log, Registry: reg, DB: db, V1: v1,
		Pages: web.Routes{pages, portal, portal.Transfers(p.transfers), p.netbank}})
	return p, nil
}

// interbankChannel names the simulated interbank switch other banks' cards
// are charged through in the sandbox.
const interbankChannel = "interbank"

// agreementSignBase is where agreements' sign pages live, next to the
// checkout's: the checkout base URL with its last path segment replaced
// by "agreements/" ("" without a checkout base URL).
func agreementSignBase(checkoutBase string) string {
	s := strings.TrimSuffix(checkoutBase, "/")
	i := strings.LastIndex(s, "/")
	if s == "" || i < 0 {
		return ""
	}
	return s[:i+1] + "agreements/"
}

// buildCustomers wires customers and cards, one-time codes and the SMS
// outbox (with the sandbox sender: every message lands in the sandbox inbox
// that `paygate sms latest` reads; a live SMS gateway is not built yet).
func (p *platform) buildCustomers(db *store.DB, w wiring, log *slog.Logger) error {
	index, err := sealing.NewBlindIndex(w.Keys.DeriveKeys("blind-index")[0])
	if err != nil {
		return err
	}
	p.customers, err = customer.New(customer.Config{Store: db.Customers(), Books: p.ledger, Clock: w.Clock, Keyring: w.Keys,
		Index: index, Verifier: customer.SimVerifier{}, Logger: log})
	if err != nil {
		return err
	}
	smsKeys, err := sms.NewKeyring(w.Keys.DeriveKeys("sms-seal")...)
	if err != nil {
		return err
	}
	p.smsWorker, err = sms.NewWorker(db.SMS(), smsKeys, sms.NewSandbox(db.SMSInbox(), w.Clock), w.Clock, sms.Options{Logger: log})
	if err != nil {
		return err
	}
	ocfg := otp.Config{Store: db.OTP(), Keys: w.Keys.DeriveKeys("otp-hmac"), SMSKeys: smsKeys, Clock: w.Clock,
		Logger: log, Kick: p.smsWorker.Kick}
	if w.OTP != nil {
		w.OTP(&ocfg)
	}
	p.otp, err = otp.New(ocfg)
	return err
}

// jobIntervals says how often each background job wakes up.
type jobIntervals struct {
	Expire, Notify, CloseOrders, Reconcile, Nonces time.Duration
	SMS                                            time.Duration // 0: 1 s
	Payouts                                        time.Duration // 0: 1 s
}

// runJobs starts the background jobs on jobs; they stop when ctx is done.
// Every job is safe to run in several processes against one database.
func (p *platform) runJobs(ctx context.Context, jobs *sync.WaitGroup, iv jobIntervals) {
	every := func(d time.Duration, run func(<-chan time.Time)) {
		t := time.NewTicker(d)
		jobs.Go(func() {
			defer t.Stop()
			run(t.C)
		})
	}
	every(iv.Expire, func(c <-chan time.Time) { runExpiry(ctx, p.ledgerSvc, c, expireBatch, expireMaxRounds, p.log) })
	every(iv.Notify, func(c <-chan time.Time) { p.worker.Run(ctx, c) })
	if iv.SMS <= 0 {
		iv.SMS = time.Second
	}
	every(iv.SMS, func(c <-chan time.Time) { p.smsWorker.Run(ctx, c) })
	every(iv.CloseOrders, func(c <-chan time.Time) {
		runBatches(ctx, "closed expired orders", p.payments.CloseExpired, c, 100, 100, p.log)
	})
	// Authorizations past capture_before are released on the same ticker,
	// well before their ledger holds time out (payment.AuthorizationGrace).
	every(iv.CloseOrders, func(c <-chan time.Time) {
		runBatches(ctx, "released expired authorizations", p.payments.ExpireAuthorizations, c, 100, 100, p.log)
	})
	every(iv.Reconcile, func(c <-chan time.Time) {
		runBatches(ctx, "queried unknown payments", p.payments.ReconcileUnknown, c, 100, 10, p.log)
	})
	// Refunds ride on the same ticker: channel answers, resubmissions, and
	// refunds waiting for the merchant's settled balance.
	every(iv.Reconcile, func(c <-chan time.Time) {
		runBatches(ctx, "reconciled refunds", p.payments.ReconcileRefunds, c, 100, 10, p.log)
	})
	// Authorizations held at a channel: captures and voids the channel has
	// not confirmed yet are told again until it does.
	every(iv.Reconcile, func(c <-chan time.Time) {
		runBatches(ctx, "told channels how authorizations ended", p.payments.ReleaseAtChannels, c, 100, 10, p.log)
	})
	every(iv.Reconcile, func(c <-chan time.Time) {
		runBatches(ctx, "queried transfers to other banks", p.transfers.Reconcile, c, 100, 10, p.log)
	})
	// Agreements not signed in time, or past their end date, expire on the
	// order-expiry ticker (charges check the dates themselves too).
	every(iv.CloseOrders, func(c <-chan time.Time) {
		runBatches(ctx, "expired agreements", p.agreements.ExpireDue, c, 100, 100, p.log)
	})
	// Refund batches: the worker starts as soon as a batch is accepted
	// (Ticks wakes it) and looks again on the reconcile ticker for lines
	// left by a worker that died or met a transient fault.
	every(iv.Reconcile, func(c <-chan time.Time) {
		runBatches(ctx, "refund batch items", p.refundBatches.ProcessRefundBatches, p.refundBatches.Ticks(ctx, c), 100, 100, p.log)
	})
	// Payouts: the worker pays accepted items as soon as a batch is
	// accepted (kicked) and on its own ticker, which also asks the
	// interbank switch about items at other banks.
	if iv.Payouts <= 0 {
		iv.Payouts = time.Second
	}
	payoutTicks := mergeTicks(ctx, jobs, iv.Payouts, p.payoutKick)
	jobs.Go(func() {
		runBatches(ctx, "paid payout items", func(ctx context.Context, limit int) (int, error) {
			n, err := p.payouts.Process(ctx, limit)
			if err != nil {
				return n, err
			}
			m, err := p.payouts.Reconcile(ctx, limit)
			return max(n, m), err
		}, payoutTicks, 200, 1000, p.log)
	})
	every(iv.Nonces, func(c <-chan time.Time) {
		runBatches(ctx, "deleted expired nonces", func(ctx context.Context, limit int) (int, error) {
			n, err := p.merchants.DeleteExpiredNonces(ctx, limit)
			return int(n), err
		}, c, 1000, 100, p.log)
	})
	// Housekeeping rides on the nonce ticker: one-time codes a week after
	// they expired, SMS outbox rows a week after they were sent or failed,
	// sandbox inbox messages after a week, Idempotency-Key answers after a
	// day.
	every(iv.Nonces, func(c <-chan time.Time) {
		week := func() time.Time { return p.clock.Now().Add(-otp.DefaultRetention) }
		runBatches(ctx, "purged old one-time codes and text messages", func(ctx context.Context, limit int) (int, error) {
			a, err := p.otp.Purge(ctx, 0, limit)
			if err != nil {
				return 0, err
			}
			b, err := p.db.SMS().DeleteFinished(ctx, week(), limit)
			if err != nil {
				return 0, err
			}
			d, err := p.db.SMSInbox().DeleteBefore(ctx, week(), limit)
			if err != nil {
				return 0, err
			}
			e, err := p.db.IdempotencyKeys().DeleteIdempotentBefore(ctx, p.clock.Now().Add(-httpapi.IdempotencyTTL))
			return int(max(a, b, d, e)), err
		}, c, 1000, 100, p.log)
	})
}

// mergeTicks returns one channel that fires on a ticker of period d and
// whenever kick fires, so that a job runs at once when there is work and
// still on schedule otherwise. It stops with ctx.
func mergeTicks(ctx context.Context, jobs *sync.WaitGroup, d time.Duration, kick <-chan time.Time) <-chan time.Time {
	out := make(chan time.Time, 1)
	t := time.NewTicker(d)
	jobs.Go(func() {
		defer t.Stop()
		for {
			var v time.Time
			select {
			case <-ctx.Done():
				return
			case v = <-t.C:
			case v = <-kick:
			}
			select {
			case out <- v:
			default: // a run is already due
			}
		}
	})
	return out
}
