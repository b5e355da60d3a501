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
	"syscall"
	"time"

	"paygate/bench"
	"paygate/store"
)

// parseBenchRefunds parses `paygate bench refunds` flags. Without --db it
// runs against the configured database ($PAYGATE_DATABASE_URL, else the
// default SQLite file).
func parseBenchRefunds(args []string, getenv func(string) string, out io.Writer) (bench.RefundsConfig, Config, error) {
	var (
		dbs       dbList
		clients   string
		duration  time.Duration
		batchSize int
		batches   int
		maxConns  int
	)
	cfg, rest, err := parseConfig("bench refunds", args, getenv, out, func(fs *flag.FlagSet) {
		fs.Var(&dbs, "db", "database to load, repeatable or comma-separated (default $PAYGATE_DATABASE_URL, else sqlite:"+store.DefaultSQLitePath+")")
		fs.StringVar(&clients, "clients", "1,4,16", "concurrent clients of the single-refund load, comma-separated")
		fs.DurationVar(&duration, "duration", 5*time.Second, "duration of the single-refund load at each client count")
		fs.IntVar(&batchSize, "batch-size", bench.DefaultRefundBatchSize, "lines per refund batch (1 to 1000)")
		fs.IntVar(&batches, "batches", bench.DefaultRefundBatches, "refund batches, one after the other (1 to 100)")
		fs.IntVar(&maxConns, "max-conns", 0, "connection pool size per database (0: 4 per CPU)")
	})
	if err != nil {
		return bench.RefundsConfig{}, cfg, err
	}
	if len(rest) > 0 {
		return bench.RefundsConfig{}, cfg, fmt.Errorf("unexpected arguments %q", rest)
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
			return bench.RefundsConfig{}, cfg, fmt.Errorf("invalid --db %s: %s", redactURL(u), safeMessage(err))
		}
	}
	cs, err := parseClients(clients)
	if err != nil {
		return bench.RefundsConfig{}, cfg, err
	}
	switch {
	case duration <= 0 || duration > bench.MaxDuration:
		return bench.RefundsConfig{}, cfg, fmt.Errorf("invalid --duration %s: want more than 0 and at most %s", duration, bench.MaxDuration)
	case batchSize < 1 || batchSize > 1000:
		return bench.RefundsConfig{}, cfg, fmt.Errorf("invalid --batch-size %d: want 1 to 1000", batchSize)
	case batches < 1 || batches > 100:
		return bench.RefundsConfig{}, cfg, fmt.Errorf("invalid --batches %d: want 1 to 100", batches)
	case maxConns < 0:
		return bench.RefundsConfig{}, cfg, fmt.Errorf("invalid --max-conns %d: want 0 (automatic) or more", maxConns)
	}
	return bench.RefundsConfig{DatabaseURLs: dbs, Clients: cs, Duration: duration, BatchSize: batchSize, Batches: batches,
		MaxOpenConns: maxConns}, cfg, nil
}

// benchRefunds runs `paygate bench refunds`: the whole platform in-process,
// single refunds over signed HTTP at each client count, then refund
// batches through the batch worker (bench.Refunds).
func (a *app) benchRefunds(args []string) int {
	rc, cfg, err := parseBenchRefunds(args, a.getenv, a.stderr)
	if errors.Is(err, flag.ErrHelp) {
		return exitOK
	}
	if err != nil {
		return a.fail(exitUsage, "bench refunds", "%v", err)
	}
	log := newLogger(a.stderr, cfg)
	slog.SetDefault(log)
	rc.Start = a.benchPlatform(cfg, log)
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, os.Interrupt)
	defer stop()
	if err := bench.Refunds(ctx, rc, a.stdout); err != nil {
		return a.fail(exitFailure, "bench refunds", "%v", err)
	}
	return exitOK
}
