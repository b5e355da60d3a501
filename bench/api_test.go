package bench_test

import (
	"bytes"
	"context"
	"runtime"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"paygate"
	"paygate/bench"
	"paygate/store"
	"paygate/store/storetest"
)

func noStart(context.Context, *store.DB, bench.PlatformOptions) (*bench.Platform, error) {
	panic("not reached: the configuration is refused first")
}

func TestAPIConfigRejected(t *testing.T) {
	t.Parallel()
	ok := "sqlite:" + t.TempDir() + "/x.db"
	cases := []struct {
		name  string
		cfg   bench.APIConfig
		field string
	}{
		{"no database", bench.APIConfig{Start: noStart}, "db"},
		{"remote postgres", bench.APIConfig{DatabaseURLs: []string{"postgres://u@10.1.2.3:5432/x"}, Start: noStart}, "db"},
		{"remote host name", bench.APIConfig{DatabaseURLs: []string{"postgres://u@db.example.com/x"}, Start: noStart}, "db"},
		{"zero clients", bench.APIConfig{DatabaseURLs: []string{ok}, Clients: []int{0}, Start: noStart}, "clients"},
		{"endless duration", bench.APIConfig{DatabaseURLs: []string{ok}, Duration: time.Hour, Start: noStart}, "duration"},
		{"slow channel", bench.APIConfig{DatabaseURLs: []string{ok}, SimDelay: time.Minute, Start: noStart}, "sim-delay"},
		{"negative tick", bench.APIConfig{DatabaseURLs: []string{ok}, NotifyTick: -time.Second, Start: noStart}, "notify-tick"},
		{"no platform", bench.APIConfig{DatabaseURLs: []string{ok}}, "start"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			var out bytes.Buffer
			err := bench.API(context.Background(), c.cfg, &out)
			require.Error(t, err)
			require.Equal(t, paygate.CodeInvalidArgument, paygate.CodeOf(err), "%v", err)
			var pe *paygate.Error
			require.ErrorAs(t, err, &pe)
			require.Equal(t, c.field, pe.Field)
			require.Empty(t, out.String(), "nothing runs on a bad configuration")
		})
	}
}

func TestAPIVerdict(t *testing.T) {
	t.Parallel()
	m := func(ops int64, p99 time.Duration) bench.APIMeasure {
		return bench.APIMeasure{Ops: ops, Elapsed: time.Second, P50: p99 / 2, P99: p99}
	}
	rsa := bench.RSAMeasure{Signatures: 1000, Elapsed: time.Second, Goroutines: 2}
	cases := []struct {
		name  string
		steps []bench.APIStep
		want  bench.APIVerdict
		pass  bool
	}{
		{"all met", []bench.APIStep{{Clients: 16, Create: m(700, 40*time.Millisecond), Payment: m(300, time.Second), Raw: m(500, time.Millisecond)}},
			bench.APIVerdict{Checked: true, PaymentsRaw: 0.6, CreatesRSA: 0.7, CreateP99: 40 * time.Millisecond}, true},
		{"payments short", []bench.APIStep{{Clients: 16, Create: m(700, 40*time.Millisecond), Payment: m(200, time.Second), Raw: m(500, time.Millisecond)}},
			bench.APIVerdict{Checked: true, PaymentsRaw: 0.4, CreatesRSA: 0.7, CreateP99: 40 * time.Millisecond}, false},
		{"creates short", []bench.APIStep{{Clients: 16, Create: m(500, 40*time.Millisecond), Payment: m(300, time.Second), Raw: m(500, time.Millisecond)}},
			bench.APIVerdict{Checked: true, PaymentsRaw: 0.6, CreatesRSA: 0.5, CreateP99: 40 * time.Millisecond}, false},
		{"create slow", []bench.APIStep{{Clients: 16, Create: m(700, 50*time.Millisecond), Payment: m(300, time.Second), Raw: m(500, time.Millisecond)}},
			bench.APIVerdict{Checked: true, PaymentsRaw: 0.6, CreatesRSA: 0.7, CreateP99: 50 * time.Millisecond}, false},
		{"16 not run", []bench.APIStep{{Clients: 4, Create: m(1, time.Second), Payment: m(1, time.Second), Raw: m(1000, time.Millisecond)}},
			bench.APIVerdict{}, true},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			d := bench.APIDatabaseReport{Dialect: store.Postgres, Steps: c.steps, RSA: rsa, LedgerFindings: []string{}}
			v := d.Verdict()
			require.Equal(t, c.want.Checked, v.Checked)
			require.InDelta(t, c.want.PaymentsRaw, v.PaymentsRaw, 1e-9)
			require.InDelta(t, c.want.CreatesRSA, v.CreatesRSA, 1e-9)
			require.Equal(t, c.want.CreateP99, v.CreateP99)
			require.Equal(t, c.pass, v.Pass())
			var out bytes.Buffer
			bench.WriteAPITable(&out, d)
			require.Contains(t, out.String(), "verdict (postgres")
			require.Contains(t, out.String(), "balanced (LedgerCheck: no findings)")
			if v.Checked && !c.pass {
				require.Contains(t, out.String(), "FAIL")
			}
		})
	}
}

// TestRawPayments runs the raw baseline on each store: every payment's
// rows end in their final state, and the whole ledger checks out.
func TestRawPayments(t *testing.T) {
	t.Parallel()
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		const n = 5
		require.NoError(t, bench.RawPayments(ctx, db, "bench_t_", n))
		count := func(q string) int {
			var c int
			require.NoError(t, db.SQL.QueryRowContext(ctx, q).Scan(&c))
			return c
		}
		require.Equal(t, n, count(`SELECT COUNT(*) FROM payment_orders WHERE merchant_id = 'bench_t_mch' AND status = 'SUCCESS'`))
		require.Equal(t, n, count(`SELECT COUNT(*) FROM payment_attempts WHERE merchant_id = 'bench_t_mch' AND status = 'SUCCESS' AND channel_trade_no IS NOT NULL`))
		require.Equal(t, 2*n, count(`SELECT COUNT(*) FROM auth_nonces WHERE merchant_id = 'bench_t_mch'`))
		require.Equal(t, 2*n, count(`SELECT COUNT(*) FROM ledger_transfers WHERE debit_account_id LIKE 'bench_t_%'`))
		require.Equal(t, n, count(`SELECT COUNT(*) FROM notify_events WHERE merchant_id = 'bench_t_mch' AND status = 'DELIVERED' AND next_attempt_at IS NULL`))
		require.Equal(t, n, count(`SELECT COUNT(*) FROM notify_attempts a JOIN notify_events e ON e.id = a.event_id
			WHERE e.merchant_id = 'bench_t_mch' AND a.outcome = 'DELIVERED'`))
		bad, err := db.LedgerCheck(ctx)
		require.NoError(t, err)
		require.Empty(t, bad)
	})
}

func TestSigningRate(t *testing.T) {
	t.Parallel()
	m, err := bench.SignFor(context.Background(), 50*time.Millisecond)
	require.NoError(t, err)
	require.Positive(t, m.Signatures)
	require.Positive(t, m.PerSec())
	require.Equal(t, runtime.GOMAXPROCS(0), m.Goroutines)
}
