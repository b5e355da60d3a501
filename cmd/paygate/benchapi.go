package main

import (
	"context"
	"crypto/rsa"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"runtime/pprof"
	"sync"
	"syscall"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"paygate/bench"
	"paygate/client"
	"paygate/merchant"
	"paygate/signing"
	"paygate/store"
)

// benchAPIOptions are `paygate bench api`'s parsed flags.
type benchAPIOptions struct {
	load       bench.APIConfig
	cpuProfile string // file for a CPU profile of the whole run, or ""
}

// parseBenchAPI parses `paygate bench api` flags. Without --db it runs
// against the configured database ($PAYGATE_DATABASE_URL, else the default
// SQLite file).
func parseBenchAPI(args []string, getenv func(string) string, out io.Writer) (benchAPIOptions, Config, error) {
	var (
		dbs        dbList
		clients    string
		duration   time.Duration
		maxConns   int
		simDelay   time.Duration
		notifyTick time.Duration
		cpuProfile string
	)
	cfg, rest, err := parseConfig("bench api", args, getenv, out, func(fs *flag.FlagSet) {
		fs.Var(&dbs, "db", "database to load, repeatable or comma-separated (default $PAYGATE_DATABASE_URL, else sqlite:"+store.DefaultSQLitePath+")")
		fs.StringVar(&clients, "clients", "1,4,16", "concurrent merchant clients per step, comma-separated")
		fs.DurationVar(&duration, "duration", 5*time.Second, "duration of each workload at each client count")
		fs.IntVar(&maxConns, "max-conns", 0, "connection pool size per database (0: 4 per CPU)")
		fs.DurationVar(&simDelay, "sim-delay", bench.DefaultSimDelay, "simulated channel: payment accepted → result callback")
		fs.DurationVar(&notifyTick, "notify-tick", bench.DefaultNotifyTick, "how often the notification worker looks for due events")
		fs.StringVar(&cpuProfile, "cpuprofile", "", "write a CPU profile of the whole run (server, load client and baselines) to this file")
	})
	if err != nil {
		return benchAPIOptions{}, cfg, err
	}
	if len(rest) > 0 {
		return benchAPIOptions{}, cfg, fmt.Errorf("unexpected arguments %q", rest)
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
			return benchAPIOptions{}, cfg, fmt.Errorf("invalid --db %s: %s", redactURL(u), safeMessage(err))
		}
	}
	cs, err := parseClients(clients)
	if err != nil {
		return benchAPIOptions{}, cfg, err
	}
	if duration <= 0 || duration > bench.MaxDuration {
		return benchAPIOptions{}, cfg, fmt.Errorf("invalid --duration %s: want more than 0 and at most %s", duration, bench.MaxDuration)
	}
	if maxConns < 0 {
		return benchAPIOptions{}, cfg, fmt.Errorf("invalid --max-conns %d: want 0 (automatic) or more", maxConns)
	}
	if simDelay <= 0 || simDelay > time.Second {
		return benchAPIOptions{}, cfg, fmt.Errorf("invalid --sim-delay %s: want more than 0 and at most 1s", simDelay)
	}
	if notifyTick <= 0 || notifyTick > time.Second {
		return benchAPIOptions{}, cfg, fmt.Errorf("invalid --notify-tick %s: want more than 0 and at most 1s", notifyTick)
	}
	return benchAPIOptions{
		load: bench.APIConfig{DatabaseURLs: dbs, Clients: cs, Duration: duration, MaxOpenConns: maxConns,
			SimDelay: simDelay, NotifyTick: notifyTick},
		cpuProfile: cpuProfile,
	}, cfg, nil
}

// benchAPI runs `paygate bench api`: the whole platform in-process, loaded
// over loopback HTTP by the Go SDK, against the raw SQL baseline and the
// machine's RSA signing rate (bench.API).
func (a *app) benchAPI(args []string) int {
	opt, cfg, err := parseBenchAPI(args, a.getenv, a.stderr)
	if errors.Is(err, flag.ErrHelp) {
		return exitOK
	}
	if err != nil {
		return a.fail(exitUsage, "bench api", "%v", err)
	}
	log := newLogger(a.stderr, cfg)
	slog.SetDefault(log)
	opt.load.Start = a.benchPlatform(cfg, log)
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, os.Interrupt)
	defer stop()
	if opt.cpuProfile != "" {
		f, err := os.Create(opt.cpuProfile)
		if err != nil {
			return a.fail(exitFailure, "bench api", "cannot create the CPU profile: %v", err)
		}
		defer f.Close()
		if err := pprof.StartCPUProfile(f); err != nil {
			return a.fail(exitFailure, "bench api", "cannot start the CPU profile: %v", err)
		}
		defer pprof.StopCPUProfile()
	}
	if err := bench.API(ctx, opt.load, a.stdout); err != nil {
		return a.fail(exitFailure, "bench api", "%v", err)
	}
	return exitOK
}

// benchPlatform returns how the API load stands paygate up: as serve does
// (buildPlatform, the configured master key, the platform signing key),
// listening on a free loopback port, with a new sandbox merchant, the
// simulated channel and notification worker timed as the load asks, and
// the other jobs on serve's intervals. The platform logs at warn and
// above: serve's info line per request would go to the terminal thousands
// of times a second.
func (a *app) benchPlatform(cfg Config, log *slog.Logger) bench.StartPlatform {
	return func(ctx context.Context, db *store.DB, opt bench.PlatformOptions) (*bench.Platform, error) {
		cfg := cfg
		cfg.DatabaseURL = opt.DatabaseURL
		plog := slog.New(warnOnly{log.Handler()})
		merchants, err := a.newMerchants(cfg, db, plog)
		if err != nil {
			return nil, err
		}
		pk, err := merchants.EnsurePlatformKey(ctx)
		if err != nil {
			return nil, fmt.Errorf("platform signing key: %w", err)
		}
		// Fail now, not on the first response, if the key was sealed with
		// another master key than this process's.
		if _, _, err := merchants.SigningKey(ctx); err != nil {
			return nil, fmt.Errorf("platform signing key: %w", err)
		}
		pub, err := signing.ParsePublicKeyPEM([]byte(pk.PublicKeyPEM))
		if err != nil {
			return nil, err
		}
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return nil, err
		}
		base := "http://" + ln.Addr().String()
		p, err := buildPlatform(cfg, db, merchants, prometheus.NewRegistry(), plog,
			wiring{SimDelay: opt.SimDelay, CheckoutBaseURL: base + "/checkout/", Dispatcher: labelledDispatcher{}})
		if err != nil {
			ln.Close()
			return nil, err
		}
		created, err := merchants.Create(ctx, merchant.CreateRequest{Name: "Bench Shop", Sandbox: true})
		if err != nil {
			ln.Close()
			return nil, fmt.Errorf("sandbox merchant: %w", err)
		}
		srv := &http.Server{Handler: labelWorkload(p.handler), ReadHeaderTimeout: 10 * time.Second, IdleTimeout: 120 * time.Second,
			ErrorLog: slog.NewLogLogger(plog.Handler(), slog.LevelWarn)}
		go srv.Serve(ln) //nolint:errcheck // ends with Shutdown
		jctx, stopJobs := context.WithCancel(context.WithoutCancel(ctx))
		var jobs sync.WaitGroup
		// The jobs' goroutines inherit the label (the notification worker's
		// work is most of it).
		pprof.Do(jctx, pprof.Labels("workload", "jobs"), func(jctx context.Context) {
			p.runJobs(jctx, &jobs, jobIntervals{Expire: cfg.ExpireInterval, Notify: opt.NotifyTick,
				CloseOrders: 10 * time.Second, Reconcile: 30 * time.Second, Nonces: 5 * time.Minute})
		})
		return &bench.Platform{
			Merchant: client.Config{BaseURL: base, MchID: created.Merchant.ID, SerialNo: created.Key.SerialNo,
				PrivateKey: created.PrivateKey, PlatformKeys: map[string]*rsa.PublicKey{pk.SerialNo: pub}, APIv3Key: created.APIv3Key},
			Stop: func() {
				sctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
				defer cancel()
				if err := srv.Shutdown(sctx); err != nil {
					srv.Close()
				}
				stopJobs()
				jobs.Wait()
			},
		}, nil
	}
}

// labelWorkload serves requests that name their load workload
// (bench.WorkloadHeader) with the pprof label workload=NAME, so that a CPU
// profile of the run splits the server's work by workload too.
func labelWorkload(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		v := r.Header.Get(bench.WorkloadHeader)
		if v == "" || len(v) > 32 {
			next.ServeHTTP(w, r)
			return
		}
		pprof.Do(r.Context(), pprof.Labels("workload", v), func(ctx context.Context) { next.ServeHTTP(w, r.WithContext(ctx)) })
	})
}

// labelledDispatcher runs the simulated channel's callbacks on timers, as
// serve does, under the pprof label workload=callback.
type labelledDispatcher struct{}

// After runs fn on its own goroutine after d.
func (labelledDispatcher) After(d time.Duration, fn func()) {
	time.AfterFunc(d, func() {
		pprof.Do(context.Background(), pprof.Labels("workload", "callback"), func(context.Context) { fn() })
	})
}

// warnOnly passes on records at warn and above.
type warnOnly struct{ slog.Handler }

// Enabled reports whether the level is warn or above and the wrapped
// handler takes it.
func (h warnOnly) Enabled(ctx context.Context, l slog.Level) bool {
	return l >= slog.LevelWarn && h.Handler.Enabled(ctx, l)
}

// WithAttrs keeps the filter on the derived handler.
func (h warnOnly) WithAttrs(as []slog.Attr) slog.Handler { return warnOnly{h.Handler.WithAttrs(as)} }

// WithGroup keeps the filter on the derived handler.
func (h warnOnly) WithGroup(name string) slog.Handler { return warnOnly{h.Handler.WithGroup(name)} }
