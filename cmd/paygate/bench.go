package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"syscall"
	"time"

	"paygate/bench"
	"paygate/ledger"
	"paygate/store"
)

// dbList is a repeatable --db flag that also takes a comma-separated list.
// A comma only separates URLs when what follows starts a new URL, so a
// PostgreSQL URL naming several hosts (postgres://h1,h2/db) stays whole.
type dbList []string

// String joins the URLs with commas.
func (l *dbList) String() string { return strings.Join(*l, ",") }

// Set adds one URL, or several separated by commas.
func (l *dbList) Set(v string) error {
	for i, part := range strings.Split(v, ",") {
		startsURL := part == "" || strings.HasPrefix(part, "sqlite:") ||
			strings.HasPrefix(part, "postgres://") || strings.HasPrefix(part, "postgresql://")
		if i > 0 && !startsURL {
			(*l)[len(*l)-1] += "," + part
			continue
		}
		*l = append(*l, part)
	}
	return nil
}

// parseClients parses "1,4,16,64" into positive client counts.
func parseClients(s string) ([]int, error) {
	var out []int
	for _, f := range strings.Split(s, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(f))
		if err != nil || n < 1 || n > bench.MaxClients {
			return nil, fmt.Errorf("invalid --clients %q: want a comma list of counts from 1 to %d", s, bench.MaxClients)
		}
		out = append(out, n)
	}
	return out, nil
}

// parseBenchLedger parses `paygate bench ledger` flags. Without --db it
// runs against the configured database ($PAYGATE_DATABASE_URL, else the
// default SQLite file).
func parseBenchLedger(args []string, getenv func(string) string, out io.Writer) (bench.LedgerConfig, Config, error) {
	var (
		dbs       dbList
		clients   string
		duration  time.Duration
		feeShards int
		maxConns  int
	)
	cfg, rest, err := parseConfig("bench ledger", args, getenv, out, func(fs *flag.FlagSet) {
		fs.Var(&dbs, "db", "database to load, repeatable or comma-separated (default $PAYGATE_DATABASE_URL, else sqlite:"+store.DefaultSQLitePath+")")
		fs.StringVar(&clients, "clients", "1,4,16,64", "concurrent clients per step, comma-separated")
		fs.DurationVar(&duration, "duration", 5*time.Second, "duration of each step and workload")
		fs.IntVar(&feeShards, "fee-shards", 16, "balance rows the platform fee account is spread over (1 = one hot row)")
		fs.IntVar(&maxConns, "max-conns", 0, "connection pool size per database (0: 4 per CPU)")
	})
	if err != nil {
		return bench.LedgerConfig{}, cfg, err
	}
	if len(rest) > 0 {
		return bench.LedgerConfig{}, cfg, fmt.Errorf("unexpected arguments %q", rest)
	}
	if len(dbs) == 0 {
		def := getenv(settingDB.env)
		if def == "" {
			def = "sqlite:" + store.DefaultSQLitePath
		}
		dbs = dbList{def}
	}
	for _, u := range dbs {
		if _, _, err := store.ParseURL(u); err != nil {
			return bench.LedgerConfig{}, cfg, fmt.Errorf("invalid --db %s: %s", redactURL(u), safeMessage(err))
		}
	}
	cs, err := parseClients(clients)
	if err != nil {
		return bench.LedgerConfig{}, cfg, err
	}
	if duration <= 0 || duration > bench.MaxDuration {
		return bench.LedgerConfig{}, cfg, fmt.Errorf("invalid --duration %s: want more than 0 and at most %s", duration, bench.MaxDuration)
	}
	if feeShards < 1 || feeShards > ledger.MaxShards {
		return bench.LedgerConfig{}, cfg, fmt.Errorf("invalid --fee-shards %d: want 1 to %d", feeShards, ledger.MaxShards)
	}
	if maxConns < 0 {
		return bench.LedgerConfig{}, cfg, fmt.Errorf("invalid --max-conns %d: want 0 (automatic) or more", maxConns)
	}
	return bench.LedgerConfig{DatabaseURLs: dbs, Clients: cs, Duration: duration, FeeShards: feeShards, MaxOpenConns: maxConns}, cfg, nil
}

// bench runs `paygate bench ledger`, `paygate bench api`, `paygate
// bench refunds` and `paygate bench payouts`.
func (a *app) bench(args []string) int {
	if len(args) > 0 && args[0] == "api" {
		return a.benchAPI(args[1:])
	}
	if len(args) > 0 && args[0] == "refunds" {
		return a.benchRefunds(args[1:])
	}
	if len(args) > 0 && args[0] == "payouts" {
		return a.benchPayouts(args[1:])
	}
	if len(args) == 0 || args[0] != "ledger" {
		return a.fail(exitUsage, "bench", "want: paygate bench ledger|api|refunds|payouts [flags] (see paygate help bench ledger)")
	}
	lc, cfg, err := parseBenchLedger(args[1:], a.getenv, a.stderr)
	if errors.Is(err, flag.ErrHelp) {
		return exitOK
	}
	if err != nil {
		return a.fail(exitUsage, "bench ledger", "%v", err)
	}
	slog.SetDefault(newLogger(a.stderr, cfg))
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, os.Interrupt)
	defer stop()
	if err := bench.Ledger(ctx, lc, a.stdout); err != nil {
		return a.fail(exitFailure, "bench ledger", "%v", err)
	}
	return exitOK
}
