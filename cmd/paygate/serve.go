package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"sync"
	"syscall"
	"time"

	"paygate/store"
)

// serve runs `paygate serve`: open the database, migrate it, serve HTTP and
// run the background jobs until SIGTERM or SIGINT, then shut down in order:
// stop accepting, let in-flight requests finish (up to ShutdownTimeout),
// stop the jobs, close the database. It never serves a database it could
// not fully migrate. A second signal during shutdown kills the process.
func (a *app) serve(args []string) int {
	cfg, rest, err := parseConfig("serve", args, a.getenv, a.stderr, nil)
	if errors.Is(err, flag.ErrHelp) {
		return exitOK
	}
	if err != nil {
		return a.fail(exitUsage, "serve", "%v", err)
	}
	if len(rest) > 0 {
		return a.fail(exitUsage, "serve", "unexpected arguments %q", rest)
	}
	log := newLogger(a.stderr, cfg)
	slog.SetDefault(log)

	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, os.Interrupt)
	defer stop()

	db, schemaVersion, err := openAndMigrate(ctx, cfg)
	if err != nil {
		return a.fail(exitFailure, "serve", "%v", err)
	}
	dbClosed := false
	defer func() {
		if !dbClosed {
			db.Close()
		}
	}()

	// Merchants and credentials: the platform signing key exists before
	// the first request; a fresh SQLite database gets a demo merchant.
	keys, err := a.masterKeyring(cfg, log)
	if err != nil {
		return a.fail(exitFailure, "serve", "%v", err)
	}
	merchants, err := newMerchantsWith(keys, db, log)
	if err != nil {
		return a.fail(exitFailure, "serve", "%v", err)
	}
	if _, err := merchants.EnsurePlatformKey(ctx); err != nil {
		return a.fail(exitFailure, "serve", "cannot set up the platform signing key: %v", err)
	}
	if cfg.Dialect == store.SQLite {
		if _, err := ensureDemoMerchant(ctx, merchants, dataDir(cfg), log); err != nil {
			return a.fail(exitFailure, "serve", "%v", err)
		}
	}

	reg := newRegistry(db)
	plat, err := buildPlatform(cfg, db, merchants, reg, log, wiring{CheckoutBaseURL: cfg.PublicURL + "/checkout/", Keys: keys})
	if err != nil {
		return a.fail(exitFailure, "serve", "%v", err)
	}
	if cfg.Dialect == store.SQLite { // the embedded default is the sandbox: seed its test customers and cards
		if res, err := plat.customers.Seed(ctx); err != nil {
			return a.fail(exitFailure, "serve", "cannot seed the sandbox customers: %v", err)
		} else {
			log.Info("sandbox test customers ready (numbers and passwords in docs/CUSTOMERS.md)", "customers", len(res))
		}
	}
	handler := plat.handler
	if a.wrapHandler != nil {
		handler = a.wrapHandler(handler)
	}

	ln, err := net.Listen("tcp", cfg.Listen)
	if err != nil {
		return a.fail(exitFailure, "serve", "cannot listen on %s: %v", cfg.Listen, err)
	}
	srv := &http.Server{
		Handler:           handler,
		ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout:       30 * time.Second,
		WriteTimeout:      60 * time.Second,
		IdleTimeout:       120 * time.Second,
		MaxHeaderBytes:    64 << 10,
		ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelWarn),
	}
	srv.RegisterOnShutdown(func() {
		log.Info("draining: no longer accepting connections, waiting for in-flight requests")
	})

	jobsCtx, stopJobs := context.WithCancel(context.Background())
	var jobs sync.WaitGroup
	plat.runJobs(jobsCtx, &jobs, jobIntervals{Expire: cfg.ExpireInterval, Notify: time.Second,
		CloseOrders: 10 * time.Second, Reconcile: 30 * time.Second, Nonces: 5 * time.Minute})

	served := make(chan error, 1)
	go func() { served <- srv.Serve(ln) }()
	log.Info("listening", "addr", ln.Addr().String(), "database", cfg.Database(),
		"schema_version", schemaVersion, "version", version, "timezone", cfg.Calendar.Location.String(),
		"cutoff", fmt.Sprintf("%02d:%02d", int(cfg.Calendar.Cutoff.Hours()), int(cfg.Calendar.Cutoff.Minutes())%60))

	status := exitOK
	select {
	case <-ctx.Done():
		stop() // a second signal now terminates at once
		log.Info("shutting down", "timeout", cfg.ShutdownTimeout)
	case err := <-served:
		log.Error("server failed", "error", err)
		status = exitFailure
	}

	sctx, cancel := context.WithTimeout(context.Background(), cfg.ShutdownTimeout)
	if err := srv.Shutdown(sctx); err != nil {
		log.Error("in-flight requests did not finish in time; closing their connections", "error", err)
		srv.Close()
		status = exitFailure
	}
	cancel()

	stopJobs()
	jobs.Wait()

	dbClosed = true
	if err := db.Close(); err != nil {
		log.Error("closing the database", "error", err)
		status = exitFailure
	}
	log.Info("stopped")
	return status
}
