package main

import (
	"context"
	"io"
	"log/slog"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"paygate"
	"paygate/bench"
	"paygate/merchant"
	"paygate/store"
	"paygate/store/storetest"
)

// TestBenchRefunds runs a tiny refund load on each store through the
// whole platform: single refunds at each client count made progress, each
// batch finished with every line accepted, and the ledger balances.
func TestBenchRefunds(t *testing.T) {
	t.Parallel()
	for _, d := range []store.Dialect{store.SQLite, store.Postgres} {
		t.Run(string(d), func(t *testing.T) {
			t.Parallel()
			key := merchant.NewMasterKey()
			a := &app{stdout: io.Discard, stderr: io.Discard, getenv: func(k string) string {
				if k == masterKeyEnv {
					return key
				}
				return ""
			}}
			cfg := Config{Calendar: paygate.DefaultCalendar(), ExpireInterval: 5 * time.Second}
			rep, err := bench.RunRefunds(context.Background(), bench.RefundsConfig{DatabaseURLs: []string{storetest.URL(t, d)},
				Clients: []int{1, 2}, Duration: 200 * time.Millisecond, BatchSize: 50, Batches: 2,
				Start: a.benchPlatform(cfg, slog.New(slog.DiscardHandler))})
			require.NoError(t, err)
			require.Len(t, rep.Databases, 1)
			dr := rep.Databases[0]
			require.Equal(t, d, dr.Dialect)
			require.Empty(t, dr.LedgerFindings)
			require.Positive(t, dr.Orders)
			require.Len(t, dr.Single, 2)
			for _, s := range dr.Single {
				require.Positive(t, s.Refunds.PerSec(), "%d clients", s.Clients)
				require.LessOrEqual(t, s.Refunds.P50, s.Refunds.P99)
			}
			require.Len(t, dr.Batches, 2)
			for _, b := range dr.Batches {
				require.Equal(t, 50, b.Accepted)
				require.Positive(t, b.ItemsPerSec())
			}
			require.Positive(t, dr.BatchItemsPerSec())
		})
	}
}

// TestBenchRefundsFlags: bad flags are usage errors naming the flag.
func TestBenchRefundsFlags(t *testing.T) {
	t.Parallel()
	env := func(string) string { return "" }
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"--batch-size", "0"}, "--batch-size"},
		{[]string{"--batch-size", "1001"}, "--batch-size"},
		{[]string{"--batches", "0"}, "--batches"},
		{[]string{"--clients", "0"}, "--clients"},
		{[]string{"--duration", "0s"}, "--duration"},
		{[]string{"--db", "mysql://x"}, "--db"},
		{[]string{"extra"}, "unexpected"},
	} {
		_, _, err := parseBenchRefunds(c.args, env, io.Discard)
		require.ErrorContains(t, err, c.want, c.args)
	}
	rc, _, err := parseBenchRefunds([]string{"--db", "sqlite:x.db", "--clients", "2,8", "--batches", "4"}, env, io.Discard)
	require.NoError(t, err)
	require.Equal(t, []int{2, 8}, rc.Clients)
	require.Equal(t, 4, rc.Batches)
	require.Equal(t, bench.DefaultRefundBatchSize, rc.BatchSize)
}
