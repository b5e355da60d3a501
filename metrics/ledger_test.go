package metrics_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/stretchr/testify/require"

	"paygate"
	"paygate/ledger"
	"paygate/metrics"
	"paygate/store"
	"paygate/store/storetest"
)

// fakeLedger answers every call with err; ExpireHolds reports expired.
type fakeLedger struct {
	err     error
	expired int
}

func (f fakeLedger) CreateAccounts(context.Context, []ledger.Account) ([]ledger.Account, error) {
	return nil, f.err
}
func (f fakeLedger) CloseAccount(context.Context, string) error { return f.err }
func (f fakeLedger) LookupAccounts(context.Context, []string) ([]ledger.Account, error) {
	return nil, f.err
}
func (f fakeLedger) CreateTransfers(context.Context, []ledger.Transfer) ([]ledger.Result, error) {
	if f.err != nil {
		return nil, f.err
	}
	return []ledger.Result{{Transfer: ledger.Transfer{Flags: ledger.Pending}}, {Existed: true}}, nil
}
func (f fakeLedger) LookupTransfers(context.Context, []string) ([]ledger.Transfer, error) {
	return nil, f.err
}
func (f fakeLedger) ListTransfers(context.Context, string, string, int) (ledger.TransferPage, error) {
	return ledger.TransferPage{}, f.err
}
func (f fakeLedger) TrialBalance(context.Context, paygate.Date) (ledger.TrialBalance, error) {
	return ledger.TrialBalance{}, f.err
}
func (f fakeLedger) ExpireHolds(context.Context, int) (int, error) { return f.expired, f.err }

func TestLedgerCountsCallsByMethodAndCode(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	calls := []struct {
		method string
		call   func(ledger.Service) error
	}{
		{"CreateAccounts", func(s ledger.Service) error { _, err := s.CreateAccounts(ctx, nil); return err }},
		{"CloseAccount", func(s ledger.Service) error { return s.CloseAccount(ctx, "a") }},
		{"LookupAccounts", func(s ledger.Service) error { _, err := s.LookupAccounts(ctx, nil); return err }},
		{"CreateTransfers", func(s ledger.Service) error { _, err := s.CreateTransfers(ctx, nil); return err }},
		{"LookupTransfers", func(s ledger.Service) error { _, err := s.LookupTransfers(ctx, nil); return err }},
		{"ListTransfers", func(s ledger.Service) error { _, err := s.ListTransfers(ctx, "a", "", 0); return err }},
		{"TrialBalance", func(s ledger.Service) error { _, err := s.TrialBalance(ctx, "2025-01-01"); return err }},
		{"ExpireHolds", func(s ledger.Service) error { _, err := s.ExpireHolds(ctx, 10); return err }},
	}
	outcomes := []struct {
		name string
		err  error
		code string
	}{
		{"ok", nil, "OK"},
		{"paygate error", paygate.E(paygate.CodeInsufficientFunds, "no"), "INSUFFICIENT_FUNDS"},
		{"wrapped paygate error", paygate.Internal(paygate.E(paygate.CodeAccountNotFound, "no")), "ACCOUNT_NOT_FOUND"},
		{"plain error", context.DeadlineExceeded, "INTERNAL"},
	}
	for _, c := range calls {
		for _, o := range outcomes {
			t.Run(c.method+"/"+o.name, func(t *testing.T) {
				t.Parallel()
				reg := prometheus.NewRegistry()
				svc := metrics.Ledger(reg, fakeLedger{err: o.err})
				for range 3 {
					err := c.call(svc)
					require.ErrorIs(t, err, o.err, "the wrapper must return the error unchanged")
				}
				calls := counterVec(t, reg, "paygate_ledger_calls_total", "method", "code")
				require.Equal(t, 3.0, calls[c.method+","+o.code])
				hist := histogramCount(t, reg, "paygate_ledger_call_duration_seconds", c.method)
				require.Equal(t, uint64(3), hist)
			})
		}
	}
}

func TestLedgerSeriesExistBeforeFirstCall(t *testing.T) {
	t.Parallel()
	reg := prometheus.NewRegistry()
	metrics.Ledger(reg, fakeLedger{})
	calls := counterVec(t, reg, "paygate_ledger_calls_total", "method", "code")
	require.Len(t, calls, 8)
	require.Contains(t, calls, "ExpireHolds,OK")
	kinds := counterVec(t, reg, "paygate_ledger_transfers_created_total", "kind")
	require.Equal(t, map[string]float64{"single": 0, "pending": 0, "post": 0, "void": 0, "expire": 0}, kinds)
}

func TestLedgerTwiceOnOneRegistryShares(t *testing.T) {
	t.Parallel()
	reg := prometheus.NewRegistry()
	a := metrics.Ledger(reg, fakeLedger{})
	b := metrics.Ledger(reg, fakeLedger{})
	require.NoError(t, a.CloseAccount(context.Background(), "x"))
	require.NoError(t, b.CloseAccount(context.Background(), "x"))
	require.Equal(t, 2.0, counterVec(t, reg, "paygate_ledger_calls_total", "method", "code")["CloseAccount,OK"])
}

func TestLedgerCountsExpiredHoldsOnlyOnSuccess(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		fake fakeLedger
		want float64
	}{
		{"expired", fakeLedger{expired: 7}, 7},
		{"none", fakeLedger{}, 0},
		{"rolled back", fakeLedger{expired: 7, err: paygate.E(paygate.CodeUnavailable, "down")}, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			reg := prometheus.NewRegistry()
			n, _ := metrics.Ledger(reg, tt.fake).ExpireHolds(context.Background(), 10)
			require.Equal(t, tt.fake.expired, n)
			require.Equal(t, tt.want, counterVec(t, reg, "paygate_ledger_transfers_created_total", "kind")["expire"])
		})
	}
}

// TestLedgerCountsTransfersCreated drives a real ledger: replays of the same
// ids are not counted again, and each kind lands in its own series.
func TestLedgerCountsTransfersCreated(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	db := storetest.Open(t, store.SQLite)
	clock := paygate.NewManualClock(time.Date(2025, 3, 1, 12, 0, 0, 0, time.UTC))
	reg := prometheus.NewRegistry()
	svc := metrics.Ledger(reg, ledger.New(db.Ledger(), clock, paygate.DefaultCalendar()))

	_, err := svc.CreateAccounts(ctx, []ledger.Account{
		{ID: "cash", Currency: "CNY", Normal: ledger.Debit},
		{ID: "alice", Currency: "CNY", Normal: ledger.Credit, Flags: ledger.DebitsMustNotExceedCredits},
	})
	require.NoError(t, err)
	journal := []ledger.Transfer{
		{ID: "t1", DebitAccountID: "cash", CreditAccountID: "alice", Amount: 1000},
		{ID: "h1", DebitAccountID: "alice", CreditAccountID: "cash", Amount: 300, Flags: ledger.Pending, Timeout: time.Minute},
		{ID: "h2", DebitAccountID: "alice", CreditAccountID: "cash", Amount: 200, Flags: ledger.Pending, Timeout: time.Minute},
		{ID: "p1", PendingID: "h1", Flags: ledger.PostPending},
	}
	_, err = svc.CreateTransfers(ctx, journal)
	require.NoError(t, err)
	_, err = svc.CreateTransfers(ctx, journal) // idempotent replay
	require.NoError(t, err)
	_, err = svc.CreateTransfers(ctx, []ledger.Transfer{{ID: "t2", DebitAccountID: "alice", CreditAccountID: "cash", Amount: 1_000_000}})
	require.Error(t, err)

	clock.Advance(2 * time.Minute)
	n, err := svc.ExpireHolds(ctx, 10)
	require.NoError(t, err)
	require.Equal(t, 1, n)

	require.Equal(t, map[string]float64{"single": 1, "pending": 2, "post": 1, "void": 0, "expire": 1},
		counterVec(t, reg, "paygate_ledger_transfers_created_total", "kind"))
	calls := counterVec(t, reg, "paygate_ledger_calls_total", "method", "code")
	require.Equal(t, 2.0, calls["CreateTransfers,OK"])
	require.Equal(t, 1.0, calls["CreateTransfers,INSUFFICIENT_FUNDS"])
	require.Equal(t, 1.0, calls["ExpireHolds,OK"])
	problems, err := testutil.GatherAndLint(reg)
	require.NoError(t, err)
	require.Empty(t, problems)
}

// counterVec gathers the counter family name from reg as a map from the
// values of labels (in the order given) joined by "," to the value.
func counterVec(t *testing.T, reg *prometheus.Registry, name string, labels ...string) map[string]float64 {
	t.Helper()
	mfs, err := reg.Gather()
	require.NoError(t, err)
	out := map[string]float64{}
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
		for _, m := range mf.GetMetric() {
			byName := map[string]string{}
			for _, lp := range m.GetLabel() {
				byName[lp.GetName()] = lp.GetValue()
			}
			var vals []string
			for _, l := range labels {
				vals = append(vals, byName[l])
			}
			out[strings.Join(vals, ",")] = m.GetCounter().GetValue()
		}
	}
	return out
}

// histogramCount returns the sample count of the histogram name{method}.
func histogramCount(t *testing.T, reg *prometheus.Registry, name, method string) uint64 {
	t.Helper()
	mfs, err := reg.Gather()
	require.NoError(t, err)
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
		for _, m := range mf.GetMetric() {
			if m.GetLabel()[0].GetValue() == method {
				return m.GetHistogram().GetSampleCount()
			}
		}
	}
	t.Fatalf("no %s{method=%q}", name, method)
	return 0
}
