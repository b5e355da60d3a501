package main

import (
	"bytes"
	"context"
	"io"
	"log/slog"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"paygate"
	"paygate/bench"
	"paygate/merchant"
	"paygate/signing"
	"paygate/store"
	"paygate/store/storetest"
)

// TestBenchAPI runs a tiny API load on each store through the whole
// platform: every workload made progress, no notification was lost or
// rejected, and the ledger balances afterwards.
func TestBenchAPI(t *testing.T) {
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
			ctx := context.Background()
			rep, err := bench.RunAPI(ctx, bench.APIConfig{DatabaseURLs: []string{u}, Clients: []int{1, 2}, Duration: 300 * time.Millisecond,
				Start: a.benchPlatform(cfg, slog.New(slog.DiscardHandler))})
			require.NoError(t, err)
			require.Len(t, rep.Databases, 1)
			dr := rep.Databases[0]
			require.Equal(t, d, dr.Dialect)
			require.Empty(t, dr.LedgerFindings)
			require.Zero(t, dr.Rejected)
			require.Positive(t, dr.Presign.Requests, "requests were signed before measuring")
			require.Less(t, dr.Presign.OldestUsed, signing.Window, "every pre-signed request was within the server's window")
			require.Positive(t, dr.RSA.PerSec())
			require.Len(t, dr.Steps, 2)
			for _, s := range dr.Steps {
				for name, m := range map[string]bench.APIMeasure{"create": s.Create, "create sdk": s.CreateSDK, "payment": s.Payment, "raw": s.Raw} {
					require.Positive(t, m.PerSec(), "%s, %d clients", name, s.Clients)
					require.Positive(t, m.P50, "%s, %d clients", name, s.Clients)
					require.LessOrEqual(t, m.P50, m.P99, "%s, %d clients", name, s.Clients)
				}
				require.Len(t, s.Payment.Parts, 3)
				require.Greater(t, s.Payment.P50, s.Payment.Parts[0].P50, "a payment takes longer than its create")
			}

			db, err := store.Open(ctx, u, store.Options{})
			require.NoError(t, err)
			defer db.Close()
			bad, err := db.LedgerCheck(ctx)
			require.NoError(t, err)
			require.Empty(t, bad)
			var paid int
			require.NoError(t, db.SQL.QueryRowContext(ctx, `SELECT COUNT(*) FROM payment_orders o JOIN notify_events e ON e.merchant_id = o.merchant_id
				WHERE o.status = 'SUCCESS' AND o.sandbox AND e.status = 'DELIVERED' AND e.payload LIKE '%' || o.id || '%'`).Scan(&paid))
			require.Positive(t, paid, "paid orders whose notification was delivered")
		})
	}
}

// TestBenchAPICommand runs `paygate bench api` end to end on SQLite.
func TestBenchAPICommand(t *testing.T) {
	t.Parallel()
	u := storetest.URL(t, store.SQLite)
	key := merchant.NewMasterKey()
	var stdout, stderr bytes.Buffer
	a := &app{stdout: &stdout, stderr: &stderr, getenv: func(k string) string {
		if k == masterKeyEnv {
			return key
		}
		return ""
	}}
	code := a.run([]string{"bench", "api", "--db", u, "--clients", "1", "--duration", "200ms", "--sim-delay", "5ms", "--notify-tick", "5ms"})
	require.Equal(t, exitOK, code, stderr.String())
	out := stdout.String()
	require.Contains(t, out, "api load: clients 1")
	require.Contains(t, out, "RSA-2048 signing")
	require.Contains(t, out, "ledger after the run: balanced (LedgerCheck: no findings)")
	require.Contains(t, out, "verdict (sqlite): goals are checked at 16 clients, not run")
}

func TestBenchAPIFlags(t *testing.T) {
	t.Parallel()
	for _, c := range []struct {
		name string
		args []string
		code int
		msg  string
	}{
		{"bad clients", []string{"--clients", "0"}, exitUsage, "invalid --clients"},
		{"bad duration", []string{"--duration", "0s"}, exitUsage, "invalid --duration"},
		{"bad channel delay", []string{"--sim-delay", "2s"}, exitUsage, "invalid --sim-delay"},
		{"bad tick", []string{"--notify-tick", "0s"}, exitUsage, "invalid --notify-tick"},
		{"bad database", []string{"--db", "mysql://x"}, exitUsage, "invalid --db"},
		{"extra argument", []string{"now"}, exitUsage, "unexpected arguments"},
		{"remote database", []string{"--db", "postgres://u@10.1.2.3:5432/x"}, exitFailure, "loopback"},
	} {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			var stdout, stderr bytes.Buffer
			a := &app{stdout: &stdout, stderr: &stderr, getenv: func(string) string { return "" }}
			require.Equal(t, c.code, a.run(append([]string{"bench", "api"}, c.args...)))
			require.Contains(t, stderr.String(), "paygate bench api: ")
			require.Contains(t, stderr.String(), c.msg)
		})
	}
}
