package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"runtime"
	"syscall"
	"text/tabwriter"

	"github.com/pressly/goose/v3"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"

	"paygate/store"
)

// openAndMigrate opens the configured database and applies every pending
// migration, returning the schema version. On any failure it closes the
// database and returns an error that names the database (without password)
// and the cause.
func openAndMigrate(ctx context.Context, cfg Config) (*store.DB, int64, error) {
	db, err := store.Open(ctx, cfg.DatabaseURL, store.Options{})
	if err != nil {
		return nil, 0, fmt.Errorf("cannot open the database %s: %w", cfg.Database(), err)
	}
	v, err := db.Migrate(ctx)
	if err != nil {
		db.Close()
		return nil, 0, fmt.Errorf("cannot migrate the database %s (nothing was served): %w", cfg.Database(), err)
	}
	return db, v, nil
}

// migrate runs `paygate migrate [status]`.
func (a *app) migrate(args []string) int {
	sub := "up"
	if len(args) > 0 && (args[0] == "up" || args[0] == "status") {
		sub, args = args[0], args[1:]
	}
	cfg, rest, err := parseConfig("migrate", args, a.getenv, a.stderr, nil)
	if errors.Is(err, flag.ErrHelp) {
		return exitOK
	}
	if err != nil {
		return a.fail(exitUsage, "migrate", "%v", err)
	}
	if len(rest) > 0 {
		return a.fail(exitUsage, "migrate", "unexpected arguments %q (want: migrate [status] [flags])", rest)
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, os.Interrupt)
	defer stop()

	if sub == "status" {
		return a.migrateStatus(ctx, cfg)
	}
	db, v, err := openAndMigrate(ctx, cfg)
	if err != nil {
		return a.fail(exitFailure, "migrate", "%v", err)
	}
	defer db.Close()
	fmt.Fprintf(a.stdout, "%s migrated to version %d\n", cfg.Database(), v)
	return exitOK
}

// migrateStatus lists each migration and whether it is applied.
func (a *app) migrateStatus(ctx context.Context, cfg Config) int {
	db, err := store.Open(ctx, cfg.DatabaseURL, store.Options{MaxOpenConns: 2})
	if err != nil {
		return a.fail(exitFailure, "migrate", "cannot open the database %s: %v", cfg.Database(), err)
	}
	defer db.Close()
	gd := goose.DialectSQLite3
	if db.Dialect == store.Postgres {
		gd = goose.DialectPostgres
	}
	p, err := goose.NewProvider(gd, db.SQL, store.MigrationsFS(db.Dialect))
	if err != nil {
		return a.fail(exitFailure, "migrate", "cannot load the migrations: %v", err)
	}
	st, err := p.Status(ctx)
	if err != nil {
		return a.fail(exitFailure, "migrate", "cannot read the migration status of %s: %v", cfg.Database(), err)
	}
	tw := tabwriter.NewWriter(a.stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintf(tw, "VERSION\tSTATE\tAPPLIED AT\tFILE\n")
	for _, s := range st {
		at := "-"
		if !s.AppliedAt.IsZero() {
			at = s.AppliedAt.UTC().Format("2006-01-02 15:04:05Z")
		}
		fmt.Fprintf(tw, "%d\t%s\t%s\t%s\n", s.Source.Version, s.State, at, s.Source.Path)
	}
	tw.Flush()
	return exitOK
}

// newRegistry returns the Prometheus registry serve exports: Go runtime,
// process and connection-pool collectors and paygate_build_info.
func newRegistry(db *store.DB) *prometheus.Registry {
	reg := prometheus.NewRegistry()
	build := prometheus.NewGauge(prometheus.GaugeOpts{
		Name:        "paygate_build_info",
		Help:        "Always 1; the labels name the running build.",
		ConstLabels: prometheus.Labels{"version": version, "goversion": runtime.Version()},
	})
	build.Set(1)
	reg.MustRegister(
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
		collectors.NewDBStatsCollector(db.SQL, string(db.Dialect)),
		build,
	)
	return reg
}
