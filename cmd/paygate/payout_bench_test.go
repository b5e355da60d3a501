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

// TestBenchPayouts runs a tiny payout load on each store through the whole
// platform, with every third item to another bank's card: every item is
// paid, the figures are sane, and the ledger balances afterwards.
func TestBenchPayouts(t *testing.T) {
	t.Parallel()
	for _, d := range []store.Dialect{store.SQLite, store.Postgres} {
		t.Run(string(d), func(t *testing.T) {
			t.Parallel()
			u := storetest.URL(t, d)
			key := merchant.NewMasterKey()
			a := &app{stdout: io.Discard, stderr: io.Discard, getenv: func(k string) string {
				if k == masterKeyEnv {
					return key
				}
				return ""
			}}
			cfg := Config{Calendar: paygate.DefaultCalendar(), ExpireInterval: 5 * time.Second}
			reps, err := bench.RunPayouts(context.Background(), bench.PayoutsConfig{DatabaseURLs: []string{u}, Batches: 3, Items: 30,
				Clients: 2, OtherBankEvery: 3, Start: a.payoutPlatform(cfg, slog.New(slog.DiscardHandler))}, nil)
			require.NoError(t, err)
			require.Len(t, reps, 1)
			r := reps[0]
			require.Equal(t, d, r.Dialect)
			require.Zero(t, r.Failed, "every item was paid")
			require.Positive(t, r.ItemsPerSec())
			require.Positive(t, r.ItemP50)
			require.LessOrEqual(t, r.ItemP50, r.ItemP99)
			require.LessOrEqual(t, r.AcceptP50, r.AcceptP99)
			db, err := store.Open(context.Background(), u, store.Options{})
			require.NoError(t, err)
			defer db.Close()
			bad, err := db.LedgerCheck(context.Background())
			require.NoError(t, err)
			require.Empty(t, bad)
		})
	}
}

// TestBenchPayoutsFlags: bad flags are usage errors naming the flag.
func TestBenchPayoutsFlags(t *testing.T) {
	t.Parallel()
	env := func(string) string { return "" }
	for _, args := range [][]string{{"--batches", "0"}, {"--items", "1001"}, {"--clients", "0"}, {"--other-bank-every", "-1"},
		{"--max-conns", "-1"}, {"--db", "mysql://x"}, {"extra"}} {
		_, _, err := parseBenchPayouts(args, env, io.Discard)
		require.Error(t, err, "%v", args)
	}
	pc, _, err := parseBenchPayouts([]string{"--db", "sqlite:x.db", "--batches", "2", "--items", "10"}, env, io.Discard)
	require.NoError(t, err)
	require.Equal(t, []string{"sqlite:x.db"}, pc.DatabaseURLs)
	require.Equal(t, 2, pc.Batches)
	require.Equal(t, 10, pc.Items)
	require.Equal(t, bench.DefaultPayoutClients, pc.Clients)
}
