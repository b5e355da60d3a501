package bench_test

import (
	"bytes"
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"paygate"
	"paygate/bench"
	"paygate/store"
	"paygate/store/storetest"
)

// TestLedgerLoad runs a tiny load on each store and checks that both
// workloads made progress and that the whole database still balances:
// the raw baseline writes the same rows as the ledger, consistently.
func TestLedgerLoad(t *testing.T) {
	t.Parallel()
	for _, d := range []store.Dialect{store.SQLite, store.Postgres} {
		t.Run(string(d), func(t *testing.T) {
			t.Parallel()
			u := storetest.URL(t, d)
			ctx := context.Background()
			var out bytes.Buffer
			cfg := bench.LedgerConfig{DatabaseURLs: []string{u}, Clients: []int{1, 2}, Duration: 200 * time.Millisecond, FeeShards: 4}
			require.NoError(t, bench.Ledger(ctx, cfg, &out))
			require.Contains(t, out.String(), "ledger/raw")
			require.Contains(t, out.String(), "verdict ("+string(d))
			require.Contains(t, out.String(), "ledger after the run: balanced")

			rep, err := bench.RunLedger(ctx, cfg)
			require.NoError(t, err)
			require.Len(t, rep.Databases, 1)
			dr := rep.Databases[0]
			require.Equal(t, d, dr.Dialect)
			require.True(t, dr.Balanced)
			require.Len(t, dr.Steps, 2)
			for _, s := range dr.Steps {
				require.Positive(t, s.Ledger.JournalsPerSec(), "ledger, %d clients", s.Clients)
				require.Positive(t, s.Raw.JournalsPerSec(), "raw, %d clients", s.Clients)
				require.Equal(t, 2*s.Ledger.Journals, s.Ledger.Transfers)
				require.Positive(t, s.Ledger.P50)
				require.LessOrEqual(t, s.Ledger.P50, s.Ledger.P99)
				require.Positive(t, s.Raw.P50)
				require.LessOrEqual(t, s.Raw.P50, s.Raw.P99)
			}
			requireBalanced(t, u)
		})
	}
}

// requireBalanced checks the whole database: per currency the balances
// sum to zero, and every balance row equals the sum of its transfers.
func requireBalanced(t *testing.T, u string) {
	t.Helper()
	ctx := context.Background()
	db, err := store.Open(ctx, u, store.Options{})
	require.NoError(t, err)
	defer db.Close()
	rows, err := db.SQL.QueryContext(ctx, `SELECT a.currency,
		CAST(SUM(b.debits_posted) AS BIGINT), CAST(SUM(b.credits_posted) AS BIGINT),
		CAST(SUM(b.debits_pending) AS BIGINT), CAST(SUM(b.credits_pending) AS BIGINT)
		FROM ledger_accounts a JOIN ledger_balances b ON b.account_id = a.id GROUP BY a.currency`)
	require.NoError(t, err)
	n := 0
	for rows.Next() {
		var cur string
		var dp, cp, dq, cq int64
		require.NoError(t, rows.Scan(&cur, &dp, &cp, &dq, &cq))
		require.Equal(t, dp, cp, "%s posted", cur)
		require.Equal(t, dq, cq, "%s pending", cur)
		require.Positive(t, dp)
		n++
	}
	require.NoError(t, rows.Err())
	require.NoError(t, rows.Close())
	require.Equal(t, 1, n)

	// Rebuilt from the transfers, every shard's posted totals match.
	var bad int
	require.NoError(t, db.SQL.QueryRowContext(ctx, `SELECT COUNT(*) FROM ledger_balances b WHERE
		b.debits_posted <> COALESCE((SELECT SUM(amount) FROM ledger_transfers t WHERE t.debit_account_id = b.account_id AND t.debit_shard = b.shard), 0)
		OR b.credits_posted <> COALESCE((SELECT SUM(amount) FROM ledger_transfers t WHERE t.credit_account_id = b.account_id AND t.credit_shard = b.shard), 0)`).Scan(&bad))
	require.Zero(t, bad, "balance rows that differ from their transfers")
}

func TestLedgerConfigRejected(t *testing.T) {
	t.Parallel()
	ok := "sqlite:" + t.TempDir() + "/x.db"
	cases := []struct {
		name  string
		cfg   bench.LedgerConfig
		field string
	}{
		{"no database", bench.LedgerConfig{}, "db"},
		{"remote postgres", bench.LedgerConfig{DatabaseURLs: []string{"postgres://u@10.1.2.3:5432/x"}}, "db"},
		{"remote host name", bench.LedgerConfig{DatabaseURLs: []string{"postgres://u@db.example.com/x"}}, "db"},
		{"remote fallback", bench.LedgerConfig{DatabaseURLs: []string{"postgres://u@127.0.0.1,10.0.0.1/x"}}, "db"},
		{"bad url", bench.LedgerConfig{DatabaseURLs: []string{"mysql://x"}}, ""},
		{"zero clients", bench.LedgerConfig{DatabaseURLs: []string{ok}, Clients: []int{0}}, "clients"},
		{"too many clients", bench.LedgerConfig{DatabaseURLs: []string{ok}, Clients: []int{bench.MaxClients + 1}}, "clients"},
		{"negative duration", bench.LedgerConfig{DatabaseURLs: []string{ok}, Duration: -time.Second}, "duration"},
		{"endless duration", bench.LedgerConfig{DatabaseURLs: []string{ok}, Duration: time.Hour}, "duration"},
		{"too many shards", bench.LedgerConfig{DatabaseURLs: []string{ok}, FeeShards: 65}, "fee-shards"},
		{"negative shards", bench.LedgerConfig{DatabaseURLs: []string{ok}, FeeShards: -1}, "fee-shards"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			var out bytes.Buffer
			err := bench.Ledger(context.Background(), c.cfg, &out)
			require.Error(t, err)
			require.Equal(t, paygate.CodeInvalidArgument, paygate.CodeOf(err), "%v", err)
			var pe *paygate.Error
			require.ErrorAs(t, err, &pe)
			require.Equal(t, c.field, pe.Field)
			require.Empty(t, out.String(), "nothing runs on a bad configuration")
		})
	}
}

func TestLoopbackAccepted(t *testing.T) {
	t.Parallel()
	for _, u := range []string{
		"postgres://postgres@127.0.0.1:5432/x",
		"postgres://postgres@localhost/x",
		"postgres://postgres@[::1]:5432/x",
		"postgres://postgres@127.0.0.2/x",
		"postgres:///x?host=/var/run/postgresql",
	} {
		require.NoError(t, bench.CheckLoopback(u), u)
	}
}

func TestVerdict(t *testing.T) {
	t.Parallel()
	m := func(journals int64) bench.Measure {
		return bench.Measure{Journals: journals, Transfers: 2 * journals, Elapsed: time.Second}
	}
	cases := []struct {
		name     string
		steps    []bench.Step
		want     bench.Verdict
		wantPass bool
	}{
		{"both met", []bench.Step{{Clients: 16, Ledger: m(700), Raw: m(1000)}, {Clients: 64, Ledger: m(630), Raw: m(1000)}},
			bench.Verdict{Ratio: 0.7, HasRatio: true, Scale: 0.9, HasScale: true}, true},
		{"ratio missed", []bench.Step{{Clients: 16, Ledger: m(500), Raw: m(1000)}, {Clients: 64, Ledger: m(500), Raw: m(1000)}},
			bench.Verdict{Ratio: 0.5, HasRatio: true, Scale: 1, HasScale: true}, false},
		{"collapse", []bench.Step{{Clients: 16, Ledger: m(1000), Raw: m(1000)}, {Clients: 64, Ledger: m(700), Raw: m(1000)}},
			bench.Verdict{Ratio: 1, HasRatio: true, Scale: 0.7, HasScale: true}, false},
		{"16 only", []bench.Step{{Clients: 16, Ledger: m(600), Raw: m(1000)}},
			bench.Verdict{Ratio: 0.6, HasRatio: true}, true},
		{"neither run", []bench.Step{{Clients: 1, Ledger: m(1), Raw: m(1000)}}, bench.Verdict{}, true},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			v := bench.DatabaseReport{Steps: c.steps}.Verdict()
			require.InDelta(t, c.want.Ratio, v.Ratio, 1e-9)
			require.InDelta(t, c.want.Scale, v.Scale, 1e-9)
			require.Equal(t, c.want.HasRatio, v.HasRatio)
			require.Equal(t, c.want.HasScale, v.HasScale)
			require.Equal(t, c.wantPass, v.Pass())
			var out bytes.Buffer
			bench.WriteTable(&out, bench.DatabaseReport{Dialect: store.Postgres, Steps: c.steps, Balanced: true})
			require.Contains(t, out.String(), "verdict (postgres")
		})
	}
}
