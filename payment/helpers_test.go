package payment_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"net/http"
	"sync"
	"time"

	"github.com/stretchr/testify/require"

	"paygate"
	"paygate/channel"
	"paygate/channel/sim"
	"paygate/ledger"
	"paygate/payment"
	"paygate/store"
)

// t0 is 2026-11-22 10:00 in Shanghai.
var t0 = time.Date(2026, 11, 22, 2, 0, 0, 0, time.UTC)

var simSecret = []byte("sandbox-callback-secret-32-bytes")

// Merchants of the fixtures: two sandbox merchants and a live one.
const (
	mchA    = "1900000001" // sandbox, fee 60 bps
	mchB    = "1900000002" // sandbox, no fee
	mchLive = "1900000003" // live, fee 38 bps
	mchSusp = "1900000004" // suspended
)

// testingT is what the helpers need of *testing.T and *rapid.T.
type testingT interface {
	require.TestingT
	Helper()
}

type fakeMerchants struct {
	mu sync.Mutex
	m  map[string]paygate.Merchant
}

func (f *fakeMerchants) Merchant(ctx context.Context, id string) (paygate.Merchant, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	m, ok := f.m[id]
	if !ok {
		return paygate.Merchant{}, paygate.E(paygate.CodeNotFound, "merchant not found")
	}
	return m, nil
}

func (f *fakeMerchants) add(m paygate.Merchant) {
	f.mu.Lock()
	f.m[m.ID] = m
	f.mu.Unlock()
}

func newMerchants() *fakeMerchants {
	f := &fakeMerchants{m: map[string]paygate.Merchant{}}
	f.add(paygate.Merchant{ID: mchA, Name: "A", Status: paygate.MerchantSandbox, SettlementCurrency: "CNY", FeeRateBps: 60})
	f.add(paygate.Merchant{ID: mchB, Name: "B", Status: paygate.MerchantSandbox, SettlementCurrency: "CNY"})
	f.add(paygate.Merchant{ID: mchLive, Name: "Live", Status: paygate.MerchantLive, SettlementCurrency: "CNY", FeeRateBps: 38})
	f.add(paygate.Merchant{ID: mchSusp, Name: "Susp", Status: paygate.MerchantSuspended, SettlementCurrency: "CNY"})
	return f
}

// logBuffer collects JSON log lines safely from many goroutines.
type logBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *logBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

// records returns the logged records as maps.
func (l *logBuffer) records() []map[string]any {
	l.mu.Lock()
	defer l.mu.Unlock()
	var out []map[string]any
	sc := bufio.NewScanner(bytes.NewReader(l.b.Bytes()))
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		var m map[string]any
		if json.Unmarshal(sc.Bytes(), &m) == nil {
			out = append(out, m)
		}
	}
	return out
}

// alerts counts logged records per alert, and checks their levels.
func (l *logBuffer) alerts(t testingT) map[string]int {
	t.Helper()
	out := map[string]int{}
	for _, r := range l.records() {
		a, ok := r["alert"].(string)
		if !ok {
			continue
		}
		want := "ERROR"
		if a == payment.AlertHeldForReview {
			want = "WARN"
		}
		require.Equal(t, want, r["level"], "alert %s level", a)
		out[a]++
	}
	return out
}

type delivered struct {
	h    http.Header
	body []byte
}

type fixture struct {
	db    *store.DB
	clock *paygate.ManualClock
	disp  *sim.ManualDispatcher
	sim   *sim.Sim
	led   *ledger.Ledger
	mchs  *fakeMerchants
	svc   *payment.Service
	logs  *logBuffer
	ctx   context.Context

	mu       sync.Mutex
	hold     bool        // record callbacks without delivering them
	sent     []delivered // every callback the simulator sent
	deliverE []error     // what delivery answered
}

type option func(*payment.Config)

func newFixture(t testingT, db *store.DB, opts ...option) *fixture {
	t.Helper()
	f := &fixture{db: db, clock: paygate.NewManualClock(t0), mchs: newMerchants(), logs: &logBuffer{}, ctx: context.Background()}
	f.disp = sim.NewManualDispatcher(f.clock)
	f.led = ledger.New(db.Ledger(), f.clock, paygate.DefaultCalendar())
	var err error
	f.sim, err = sim.New(sim.Config{Secret: simSecret, Clock: f.clock, Dispatcher: f.disp, MaxTries: 3,
		Logger: slog.New(slog.NewJSONHandler(f.logs, nil)),
		Deliver: func(ctx context.Context, h http.Header, body []byte) error {
			f.mu.Lock()
			f.sent = append(f.sent, delivered{h, body})
			hold := f.hold
			f.mu.Unlock()
			if hold {
				return nil
			}
			_, err := f.svc.Callback(ctx, sim.Name, h, body)
			f.mu.Lock()
			f.deliverE = append(f.deliverE, err)
			f.mu.Unlock()
			return err
		}})
	require.NoError(t, err)
	cfg := payment.Config{Store: db.Payments(), Ledger: f.led, Merchants: f.mchs, Clock: f.clock,
		Channels: []channel.Channel{f.sim}, Logger: slog.New(slog.NewJSONHandler(f.logs, nil)),
		CheckoutBaseURL: "https://pay.example.com/checkout/"}
	for _, o := range opts {
		o(&cfg)
	}
	f.svc, err = payment.New(cfg)
	require.NoError(t, err)
	return f
}

func (f *fixture) callbacks() []delivered {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]delivered(nil), f.sent...)
}

func request(no string) payment.CreateRequest {
	return payment.CreateRequest{OutTradeNo: no, Description: "Image形象店-深圳腾大-QQ公仔",
		Amount: payment.AmountRequest{Total: 10_000, Currency: "CNY"}, NotifyURL: "https://merchant.example.com/notify"}
}

func (f *fixture) create(t testingT, mch, no string) payment.Order {
	t.Helper()
	o, replay, err := f.svc.Create(f.ctx, mch, request(no))
	require.NoError(t, err)
	require.False(t, replay)
	return o
}

func (f *fixture) pay(t testingT, mch, orderID, outcome string) payment.Attempt {
	t.Helper()
	a, err := f.svc.SandboxPay(f.ctx, mch, orderID, outcome)
	require.NoError(t, err)
	return a
}

// settle moves the clock and runs what the simulator has due.
func (f *fixture) settle(d time.Duration) {
	f.clock.Advance(d)
	f.disp.RunDue()
}

func (f *fixture) get(t testingT, mch, id string) payment.Order {
	t.Helper()
	o, err := f.svc.Get(f.ctx, mch, id)
	require.NoError(t, err)
	return o
}

func (f *fixture) attempt(t testingT, id string) payment.Attempt {
	t.Helper()
	a, err := f.db.Payments().Attempt(f.ctx, id)
	require.NoError(t, err)
	return a
}

type event struct {
	Type     string
	Merchant string
	Sandbox  bool
	Payload  map[string]any
}

// events returns the outbox rows about an order (every order when id is "").
func (f *fixture) events(t testingT, orderID string) []event {
	t.Helper()
	rows, err := f.db.SQL.QueryContext(f.ctx, `SELECT event_type, merchant_id, sandbox, payload FROM notify_events ORDER BY seq`)
	require.NoError(t, err)
	defer rows.Close()
	var out []event
	for rows.Next() {
		var e event
		var p string
		require.NoError(t, rows.Scan(&e.Type, &e.Merchant, &e.Sandbox, &p))
		require.NoError(t, json.Unmarshal([]byte(p), &e.Payload))
		if orderID == "" || e.Payload["id"] == orderID {
			out = append(out, e)
		}
	}
	require.NoError(t, rows.Err())
	return out
}

func eventTypes(evs []event) []string {
	out := make([]string, len(evs))
	for i, e := range evs {
		out[i] = e.Type
	}
	return out
}

// transfers returns the ledger transfers among ids that exist.
func (f *fixture) transfers(t testingT, ids ...string) []ledger.Transfer {
	t.Helper()
	ts, err := f.db.Ledger().Transfers(f.ctx, ids)
	require.NoError(t, err)
	return ts
}

// balance returns an account's net posted balance on its normal side (0
// when it does not exist).
func (f *fixture) balance(t testingT, a ledger.Account) int64 {
	t.Helper()
	as, err := f.db.Ledger().Accounts(f.ctx, []string{a.ID})
	require.NoError(t, err)
	if len(as) == 0 {
		return 0
	}
	return as[0].Net(as[0].Normal)
}

func (f *fixture) ledgerOK(t testingT) {
	t.Helper()
	bad, err := f.db.LedgerCheck(f.ctx)
	require.NoError(t, err)
	require.Empty(t, bad)
}

func (f *fixture) count(t testingT, query string, args ...any) int {
	t.Helper()
	var n int
	require.NoError(t, f.db.SQL.QueryRowContext(f.ctx, query, args...).Scan(&n))
	return n
}

// fieldOf returns the field a paygate error names.
func fieldOf(err error) string {
	var pe *paygate.Error
	if errors.As(err, &pe) {
		return pe.Field
	}
	return ""
}

func requireCode(t testingT, err error, code paygate.Code, msg ...any) {
	t.Helper()
	require.Error(t, err, msg...)
	require.Equal(t, code, paygate.CodeOf(err), "error: %v %v", err, msg)
}
