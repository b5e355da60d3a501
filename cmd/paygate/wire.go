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
	"paygate/channel"
	"paygate/channel/sim"
	"paygate/httpapi"
	"paygate/ledger"
	"paygate/merchant"
	"paygate/metrics"
	"paygate/notify"
	"paygate/payment"
	"paygate/store"
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
	notifications *notify.Service
	worker        *notify.Worker
	sim           *sim.Sim
	handler       http.Handler
	log           *slog.Logger
}

// wiring holds what differs between serve and tests.
type wiring struct {
	Clock           paygate.Clock
	Dispatcher      sim.Dispatcher // when the simulated channel calls back; default real timers
	SimDelay        time.Duration  // accept → callback; 0 means the simulator's default
	CheckoutBaseURL string
	NotifyTimeout   time.Duration // 0: 5 s
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
	p := &platform{db: db, merchants: merchants, log: log}
	p.ledger = ledger.New(db.Ledger(), w.Clock, cfg.Calendar)
	p.ledgerSvc = metrics.Ledger(reg, p.ledger)

	secret := make([]byte, 32) // callbacks stay in this process, so a per-process secret suffices
	rand.Read(secret)
	var svc *payment.Service
	var err error
	p.sim, err = sim.New(sim.Config{Secret: secret, Clock: w.Clock, Dispatcher: w.Dispatcher, Delay: w.SimDelay, Logger: log,
		Deliver: func(ctx context.Context, h http.Header, body []byte) error {
			_, err := svc.Callback(ctx, sim.Name, h, body)
			if paygate.HasCode(err, paygate.CodeConflict) || paygate.HasCode(err, paygate.CodeUnauthenticated) {
				return nil // refused for good; the alert is logged, retrying cannot help
			}
			return err
		}})
	if err != nil {
		return nil, err
	}
	svc, err = payment.New(payment.Config{Store: db.Payments(), Ledger: p.ledger, Merchants: merchants, Clock: w.Clock,
		Channels: []channel.Channel{p.sim}, Logger: log, CheckoutBaseURL: w.CheckoutBaseURL})
	if err != nil {
		return nil, err
	}
	p.payments = svc
	p.notifications = notify.NewService(db.Notify(), w.Clock)
	p.worker, err = notify.NewWorker(db.Notify(), merchants, w.Clock, notify.Options{Logger: log, Timeout: w.NotifyTimeout})
	if err != nil {
		return nil, err
	}
	auth := httpapi.AuthConfig{Verifier: merchants, Clock: w.Clock}
	v1 := &httpapi.V1{
		Orders: svc, Notifications: p.notifications,
		Certificates: httpapi.CertificatesHandler(merchants),
		Authenticate: auth.Wrap,
		Sign:         func(h http.Handler) http.Handler { return httpapi.SignResponses(merchants, h) },
	}
	pages, err := web.New(web.Config{Orders: svc, Clock: w.Clock, Logger: log,
		SecureCookies: strings.HasPrefix(w.CheckoutBaseURL, "https://")})
	if err != nil {
		return nil, err
	}
	p.handler = httpapi.New(httpapi.Config{Logger: log, Registry: reg, DB: db, V1: v1, Pages: pages})
	return p, nil
}

// jobIntervals says how often each background job wakes up.
type jobIntervals struct {
	Expire, Notify, CloseOrders, Reconcile, Nonces time.Duration
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
	every(iv.CloseOrders, func(c <-chan time.Time) {
		runBatches(ctx, "closed expired orders", p.payments.CloseExpired, c, 100, 100, p.log)
	})
	every(iv.Reconcile, func(c <-chan time.Time) {
		runBatches(ctx, "queried unknown payments", p.payments.ReconcileUnknown, c, 100, 10, p.log)
	})
	every(iv.Nonces, func(c <-chan time.Time) {
		runBatches(ctx, "deleted expired nonces", func(ctx context.Context, limit int) (int, error) {
			n, err := p.merchants.DeleteExpiredNonces(ctx, limit)
			return int(n), err
		}, c, 1000, 100, p.log)
	})
}
