package metrics

import (
	"context"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"paygate"
	"paygate/ledger"
)

// The ledger methods a wrapper instruments, in Service order.
var ledgerMethods = []string{
	"CreateAccounts", "CloseAccount", "LookupAccounts", "CreateTransfers",
	"LookupTransfers", "ListTransfers", "TrialBalance", "ExpireHolds",
}

// codeOK labels successful calls.
const codeOK = "OK"

type ledgerMetrics struct {
	calls     *prometheus.CounterVec
	duration  *prometheus.HistogramVec
	transfers *prometheus.CounterVec
}

// instrumentedLedger implements ledger.Service by delegating to next and
// recording every call.
type instrumentedLedger struct {
	next ledger.Service
	m    ledgerMetrics
}

var _ ledger.Service = (*instrumentedLedger)(nil)

// Ledger returns next wrapped with Prometheus metrics registered on reg:
//
//   - paygate_ledger_calls_total{method,code}: calls by method and outcome,
//     code "OK" or the paygate error code (INSUFFICIENT_FUNDS, INTERNAL, ...);
//   - paygate_ledger_call_duration_seconds{method}: latency histogram;
//   - paygate_ledger_transfers_created_total{kind}: transfers newly recorded
//     (idempotent replays are not counted), kind "single", "pending",
//     "post", "void" or "expire".
//
// The wrapper changes no result and no error. Wrapping several services over
// one registry shares the series (see Register).
func Ledger(reg prometheus.Registerer, next ledger.Service) ledger.Service {
	m := ledgerMetrics{
		calls: Register(reg, prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: Namespace, Subsystem: "ledger", Name: "calls_total",
			Help: "Ledger calls by method and outcome (OK or the paygate error code).",
		}, []string{"method", "code"})),
		duration: Register(reg, prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Namespace: Namespace, Subsystem: "ledger", Name: "call_duration_seconds",
			Help:    "Latency of ledger calls by method.",
			Buckets: prometheus.ExponentialBuckets(0.00025, 2, 16), // 0.25 ms .. ~8 s
		}, []string{"method"})),
		transfers: Register(reg, prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: Namespace, Subsystem: "ledger", Name: "transfers_created_total",
			Help: "Transfers newly recorded by the ledger, by kind (idempotent replays excluded).",
		}, []string{"kind"})),
	}
	// Create the success series up front so dashboards see zeros, not gaps.
	for _, method := range ledgerMethods {
		m.calls.WithLabelValues(method, codeOK)
		m.duration.WithLabelValues(method)
	}
	for _, kind := range []string{"single", "pending", "post", "void", "expire"} {
		m.transfers.WithLabelValues(kind)
	}
	return &instrumentedLedger{next: next, m: m}
}

// observe records one call that started at start and ended with err.
func (l *instrumentedLedger) observe(method string, start time.Time, err error) {
	l.m.duration.WithLabelValues(method).Observe(time.Since(start).Seconds())
	code := codeOK
	if err != nil {
		code = string(paygate.CodeOf(err))
	}
	l.m.calls.WithLabelValues(method, code).Inc()
}

// CreateAccounts delegates to the wrapped ledger and records the call.
func (l *instrumentedLedger) CreateAccounts(ctx context.Context, accounts []ledger.Account) ([]ledger.Account, error) {
	start := time.Now()
	out, err := l.next.CreateAccounts(ctx, accounts)
	l.observe("CreateAccounts", start, err)
	return out, err
}

// CloseAccount delegates to the wrapped ledger and records the call.
func (l *instrumentedLedger) CloseAccount(ctx context.Context, id string) error {
	start := time.Now()
	err := l.next.CloseAccount(ctx, id)
	l.observe("CloseAccount", start, err)
	return err
}

// LookupAccounts delegates to the wrapped ledger and records the call.
func (l *instrumentedLedger) LookupAccounts(ctx context.Context, ids []string) ([]ledger.Account, error) {
	start := time.Now()
	out, err := l.next.LookupAccounts(ctx, ids)
	l.observe("LookupAccounts", start, err)
	return out, err
}

// CreateTransfers delegates to the wrapped ledger, records the call and
// counts the transfers it newly recorded by kind.
func (l *instrumentedLedger) CreateTransfers(ctx context.Context, transfers []ledger.Transfer) ([]ledger.Result, error) {
	start := time.Now()
	res, err := l.next.CreateTransfers(ctx, transfers)
	l.observe("CreateTransfers", start, err)
	if err == nil {
		for _, r := range res {
			if !r.Existed {
				l.m.transfers.WithLabelValues(r.Flags.Kind()).Inc()
			}
		}
	}
	return res, err
}

// LookupTransfers delegates to the wrapped ledger and records the call.
func (l *instrumentedLedger) LookupTransfers(ctx context.Context, ids []string) ([]ledger.Transfer, error) {
	start := time.Now()
	out, err := l.next.LookupTransfers(ctx, ids)
	l.observe("LookupTransfers", start, err)
	return out, err
}

// ListTransfers delegates to the wrapped ledger and records the call.
func (l *instrumentedLedger) ListTransfers(ctx context.Context, accountID, cursor string, limit int) (ledger.TransferPage, error) {
	start := time.Now()
	page, err := l.next.ListTransfers(ctx, accountID, cursor, limit)
	l.observe("ListTransfers", start, err)
	return page, err
}

// TrialBalance delegates to the wrapped ledger and records the call.
func (l *instrumentedLedger) TrialBalance(ctx context.Context, date paygate.Date) (ledger.TrialBalance, error) {
	start := time.Now()
	tb, err := l.next.TrialBalance(ctx, date)
	l.observe("TrialBalance", start, err)
	return tb, err
}

// ExpireHolds delegates to the wrapped ledger, records the call and counts
// the holds it expired (only when their transaction committed).
func (l *instrumentedLedger) ExpireHolds(ctx context.Context, limit int) (int, error) {
	start := time.Now()
	n, err := l.next.ExpireHolds(ctx, limit)
	l.observe("ExpireHolds", start, err)
	if err == nil && n > 0 {
		l.m.transfers.WithLabelValues(ledger.Expired.Kind()).Add(float64(n))
	}
	return n, err
}
