package bench

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"runtime"
	"runtime/pprof"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"paygate"
	apiclient "paygate/client"
	"paygate/signing"
	"paygate/store"
)

// The API load (`paygate bench api`) drives a whole paygate, assembled
// in-process and served over HTTP on loopback, with the Go SDK's signing
// as the merchant: every request is signed (RSA-2048) and every response
// and notification verified, exactly as a merchant's integration does. On
// each database, for each client count, it interleaves in 500 ms slices:
//
//   - create: signed create-order requests (POST /v1/orders), signed
//     before measuring started (apipresign.go): the window measures the
//     server, as merchants sign on their own machines;
//   - create-sdk: the same through the SDK, which signs each request in the
//     window, on the same cores (the definition of earlier runs);
//   - payment: complete payments: create (pre-signed), sandbox pay
//     (success; signed in the window by the SDK), the simulated channel's
//     confirmation with its ledger journal, and the notification delivered
//     to the merchant's endpoint; a payment counts when its notification
//     arrives, and its latency runs from the start of the create to that
//     arrival;
//   - raw: the raw SQL baseline, plain SQL writing the rows one complete
//     payment writes, in the same transactions, with no logic (apiraw.go);
//
// and once per round, the machine's RSA-2048 signing rate with GOMAXPROCS
// goroutines. All of them therefore see the same background load, and the
// goals are ratios between them.

// Goals of the API load (issue 3, item 8), checked at GoalAPIClients.
const (
	// GoalAPIClients is the client count the goals are checked at.
	GoalAPIClients = 16
	// GoalPaymentsRaw is the least complete payments/s as a fraction of
	// the raw baseline's payments/s.
	GoalPaymentsRaw = 0.5
	// GoalCreatesRSA is the least signed creates/s as a fraction of the
	// machine's RSA-2048 signatures/s.
	GoalCreatesRSA = 0.6
	// GoalCreateP99 bounds the create's p99 latency.
	GoalCreateP99 = 50 * time.Millisecond
)

// RSA-2048 signatures one operation costs in the measured window, on these
// shared cores: each response is signed by the server, the notification by
// the worker, and the requests the load does not sign ahead by the load
// client.
const (
	// SignaturesPerCreate: the response (the request is pre-signed).
	SignaturesPerCreate = 1
	// SignaturesPerSDKCreate: the request and the response.
	SignaturesPerSDKCreate = 2
	// SignaturesPerPayment: the pay request, two responses (create, pay)
	// and one notification (the create request is pre-signed).
	SignaturesPerPayment = 4
)

// Defaults of APIConfig.
const (
	DefaultSimDelay   = 10 * time.Millisecond
	DefaultNotifyTick = 10 * time.Millisecond
	// notifyWait bounds how long a payment waits for its notification:
	// beyond it the run fails (a notification was lost or badly late).
	notifyWait = 30 * time.Second
	// opTimeout bounds one HTTP call or raw transaction.
	opTimeout = 30 * time.Second
	// apiWarmup is how many operations each client runs per workload
	// before measuring.
	apiWarmup = 3
)

// DefaultAPIClients are the client counts run when APIConfig.Clients is empty.
var DefaultAPIClients = []int{1, 4, 16}

// PlatformOptions is what the load asks of the platform it stands up.
type PlatformOptions struct {
	// DatabaseURL is the URL db was opened with (for settings that
	// depend on it, such as where the master key file lives).
	DatabaseURL string
	// SimDelay is the simulated channel's delay from accepting a payment
	// to calling back with its result.
	SimDelay time.Duration
	// NotifyTick is how often the notification worker looks for due
	// events.
	NotifyTick time.Duration
}

// Platform is a running paygate with one sandbox merchant, as StartPlatform
// returns it.
type Platform struct {
	// Merchant is the sandbox merchant's SDK configuration: BaseURL (a
	// loopback address), its credentials and the platform's public keys.
	// HTTPClient and Now are left to the load.
	Merchant apiclient.Config
	// Stop stops serving and the background jobs; the load calls it once,
	// before it closes the database.
	Stop func()
}

// StartPlatform stands paygate up over db, which is open and migrated:
// the /v1 API served on a loopback listener, the simulated channel, the
// notification worker and the other jobs, and a new sandbox merchant.
// `paygate bench api` supplies it (the platform is assembled in
// cmd/paygate).
type StartPlatform func(ctx context.Context, db *store.DB, opt PlatformOptions) (*Platform, error)

// APIConfig configures an API load run. Zero fields take defaults: Clients
// DefaultAPIClients, Duration 5s, SimDelay DefaultSimDelay, NotifyTick
// DefaultNotifyTick.
type APIConfig struct {
	DatabaseURLs []string      // each database (sqlite:..., postgres://... on a loopback address)
	Clients      []int         // concurrent clients per step
	Duration     time.Duration // per client count and workload, in slices
	// MaxOpenConns caps each database's pool, shared by the platform and
	// the raw baseline; 0 lets store.Open choose (4 per CPU).
	MaxOpenConns int
	SimDelay     time.Duration
	NotifyTick   time.Duration
	// Start stands the platform up; required.
	Start StartPlatform `json:"-"`
}

func (c APIConfig) withDefaults() (APIConfig, error) {
	lc, err := LedgerConfig{DatabaseURLs: c.DatabaseURLs, Clients: c.Clients, Duration: c.Duration,
		FeeShards: 1, MaxOpenConns: c.MaxOpenConns}.withDefaults()
	if err != nil {
		return c, err
	}
	if len(c.Clients) == 0 {
		lc.Clients = slices.Clone(DefaultAPIClients)
	}
	c.DatabaseURLs, c.Clients, c.Duration = lc.DatabaseURLs, lc.Clients, lc.Duration
	if c.SimDelay == 0 {
		c.SimDelay = DefaultSimDelay
	}
	if c.NotifyTick == 0 {
		c.NotifyTick = DefaultNotifyTick
	}
	if c.SimDelay < 0 || c.SimDelay > time.Second {
		return c, paygate.EField(paygate.CodeInvalidArgument, "sim-delay", "the channel delay must be between 0 and 1s")
	}
	if c.NotifyTick < 0 || c.NotifyTick > time.Second {
		return c, paygate.EField(paygate.CodeInvalidArgument, "notify-tick", "the notification tick must be between 0 and 1s")
	}
	if c.Start == nil {
		return c, paygate.EField(paygate.CodeInvalidArgument, "start", "the API load needs a way to start the platform")
	}
	return c, nil
}

// APIReport is the outcome of an API load run, one entry per database.
type APIReport struct {
	Config    APIConfig           `json:"config"`
	Databases []APIDatabaseReport `json:"databases"`
}

// APIDatabaseReport is the outcome on one database.
type APIDatabaseReport struct {
	URL     string        `json:"url"` // with any password redacted
	Dialect store.Dialect `json:"dialect"`
	Steps   []APIStep     `json:"steps"`
	// RSA is the machine's RSA-2048 signing rate, measured in slices
	// between the others.
	RSA RSAMeasure `json:"rsa"`
	// LedgerFindings is db.LedgerCheck after the run: empty when the whole
	// ledger balances and every balance equals its transfers.
	LedgerFindings []string `json:"ledger_findings"`
	// Rejected counts notifications the merchant's endpoint could not
	// verify or decrypt (it answered 400); Duplicates counts repeated
	// deliveries of a notification already counted.
	Rejected   int64 `json:"rejected"`
	Duplicates int64 `json:"duplicates"`
	// Presign tells about the requests signed before measuring.
	Presign PresignReport `json:"presign"`
}

// APIStep is one client count: the four workloads.
type APIStep struct {
	Clients int `json:"clients"`
	// Create is the create order with its requests signed before
	// measuring (unmeasured): what the server sustains when the merchants'
	// signing runs elsewhere, as it does in production. The goals are
	// checked on it.
	Create APIMeasure `json:"create"`
	// CreateSDK is the create order through the SDK, which signs each
	// request in the window on the same cores.
	CreateSDK APIMeasure `json:"create_sdk"`
	Payment   APIMeasure `json:"payment"`
	Raw       APIMeasure `json:"raw"`
}

// APIMeasure is what one workload achieved at one client count. For
// complete payments, Parts are the p50 and p99 of each step: create, pay,
// and from the pay's answer to the notification's arrival.
type APIMeasure struct {
	Ops     int64         `json:"ops"`
	Elapsed time.Duration `json:"elapsed"`
	P50     time.Duration `json:"p50"`
	P99     time.Duration `json:"p99"`
	Parts   []PartLatency `json:"parts,omitempty"`
	// CPU is the CPU time used during the workload's slices (0 where not
	// measured): by this process (load client, platform and baselines
	// alike), by the PostgreSQL backends serving the database, and by the
	// whole machine (everything else that runs included).
	CPU CPUTimes `json:"cpu"`
}

// CPUTimes is CPU time spent, by whom.
type CPUTimes struct {
	Process  time.Duration `json:"process"`
	Postgres time.Duration `json:"postgres"`
	Machine  time.Duration `json:"machine"`
}

// CPUPerOp returns the CPU time per operation.
func (m APIMeasure) CPUPerOp() CPUTimes {
	if m.Ops == 0 {
		return CPUTimes{}
	}
	n := time.Duration(m.Ops)
	return CPUTimes{Process: m.CPU.Process / n, Postgres: m.CPU.Postgres / n, Machine: m.CPU.Machine / n}
}

// cpuSnap is a reading of the CPU clocks cpuTimes reads.
type cpuSnap struct{ process, postgres, machine time.Duration }

// PartLatency is one step's latency within an operation.
type PartLatency struct {
	Name string        `json:"name"`
	P50  time.Duration `json:"p50"`
	P99  time.Duration `json:"p99"`
}

// PerSec returns operations completed per second.
func (m APIMeasure) PerSec() float64 {
	if m.Elapsed <= 0 {
		return 0
	}
	return float64(m.Ops) / m.Elapsed.Seconds()
}

// RSAMeasure is the signing rate: Signatures RSA-2048 PKCS#1 v1.5 SHA-256
// signatures by Goroutines goroutines (GOMAXPROCS) in Elapsed.
type RSAMeasure struct {
	Signatures int64         `json:"signatures"`
	Elapsed    time.Duration `json:"elapsed"`
	Goroutines int           `json:"goroutines"`
}

// PerSec returns signatures per second.
func (m RSAMeasure) PerSec() float64 {
	if m.Elapsed <= 0 {
		return 0
	}
	return float64(m.Signatures) / m.Elapsed.Seconds()
}

// PaymentsRaw returns complete payments/s over raw baseline payments/s.
func (s APIStep) PaymentsRaw() float64 { return ratio(s.Payment.PerSec(), s.Raw.PerSec()) }

// CreatesRSA returns (pre-signed) creates/s over the signing rate.
func (s APIStep) CreatesRSA(rsa RSAMeasure) float64 { return ratio(s.Create.PerSec(), rsa.PerSec()) }

// SDKRSA returns SDK creates/s (signed in the window) over the signing
// rate.
func (s APIStep) SDKRSA(rsa RSAMeasure) float64 { return ratio(s.CreateSDK.PerSec(), rsa.PerSec()) }

func ratio(a, b float64) float64 {
	if b == 0 {
		return 0
	}
	return a / b
}

// APIVerdict is the check of one database's figures against the goals, at
// GoalAPIClients; Checked is false when that client count was not run.
type APIVerdict struct {
	Checked     bool          `json:"checked"`
	PaymentsRaw float64       `json:"payments_raw"`
	CreatesRSA  float64       `json:"creates_rsa"`
	CreateP99   time.Duration `json:"create_p99"`
}

// Pass reports whether every goal was met (true when nothing was checked).
func (v APIVerdict) Pass() bool {
	return !v.Checked || v.PaymentsRaw >= GoalPaymentsRaw && v.CreatesRSA >= GoalCreatesRSA && v.CreateP99 < GoalCreateP99
}

// Verdict checks the database's figures against the goals.
func (d APIDatabaseReport) Verdict() APIVerdict {
	for _, s := range d.Steps {
		if s.Clients == GoalAPIClients {
			return APIVerdict{Checked: true, PaymentsRaw: s.PaymentsRaw(), CreatesRSA: s.CreatesRSA(d.RSA), CreateP99: s.Create.P99}
		}
	}
	return APIVerdict{}
}

// API runs the API load on every database of cfg and writes a report per
// database to out, with verdict lines against the goals. Missing a goal is
// reported, not an error; errors are for bad configuration, unreachable
// databases, failed requests and lost notifications.
func API(ctx context.Context, cfg APIConfig, out io.Writer) error {
	cfg, err := cfg.withDefaults()
	if err != nil {
		return err
	}
	fmt.Fprintf(out, "api load: clients %s, %s per workload and client count in %s slices; GOMAXPROCS %d; channel delay %s, notification tick %s\n",
		joinInts(cfg.Clients), cfg.Duration, slice, runtime.GOMAXPROCS(0), cfg.SimDelay, cfg.NotifyTick)
	for _, u := range cfg.DatabaseURLs {
		d, err := runAPIDatabase(ctx, cfg, u, out)
		if err != nil {
			return fmt.Errorf("bench: %s: %w", redact(u), err)
		}
		WriteAPITable(out, d)
	}
	return nil
}

// RunAPI is API without the printing: it returns the figures.
func RunAPI(ctx context.Context, cfg APIConfig) (APIReport, error) {
	cfg, err := cfg.withDefaults()
	if err != nil {
		return APIReport{}, err
	}
	rep := APIReport{Config: cfg}
	for _, u := range cfg.DatabaseURLs {
		d, err := runAPIDatabase(ctx, cfg, u, io.Discard)
		if err != nil {
			return rep, fmt.Errorf("bench: %s: %w", redact(u), err)
		}
		rep.Databases = append(rep.Databases, d)
	}
	return rep, nil
}

// WriteAPITable prints one database's figures, how the requests were
// signed, the signing ceilings and the verdict.
func WriteAPITable(out io.Writer, d APIDatabaseReport) {
	rsa := d.RSA.PerSec()
	fmt.Fprintf(out, "\n%s  %s\n", d.Dialect, d.URL)
	fmt.Fprintf(out, "RSA-2048 signing, %d goroutines: %.0f signatures/s\n", d.RSA.Goroutines, rsa)
	p := d.Presign
	fmt.Fprintf(out, "pre-signed: %d create-order requests (create, and the create of each payment) signed before measuring, in %s, unmeasured;"+
		" the oldest was %s old when sent (the server accepts %s). Merchants sign on their own machines: on these shared cores the load"+
		" client's signature would be counted against the server. sdk: the SDK signs each request in the window.\n",
		p.Requests, p.Took.Round(time.Millisecond), p.OldestUsed.Round(time.Second), signing.Window)
	if p.Inline > 0 || p.Resigned > 0 {
		fmt.Fprintf(out, "pre-signed pools ran dry for %d requests (signed in the window); %d pools signed afresh (too old)\n", p.Inline, p.Resigned)
	}
	fmt.Fprintf(out, "%7s | %9s %8s %8s | %9s %8s %8s | %10s %8s %8s | %9s %8s %8s | %7s %10s %7s\n",
		"clients", "creates/s", "p50", "p99", "sdk/s", "p50", "p99", "payments/s", "p50", "p99", "raw pay/s", "p50", "p99",
		"pay/raw", "create/rsa", "sdk/rsa")
	for _, s := range d.Steps {
		fmt.Fprintf(out, "%7d | %9.0f %8s %8s | %9.0f %8s %8s | %10.0f %8s %8s | %9.0f %8s %8s | %7.2f %10.2f %7.2f\n",
			s.Clients, s.Create.PerSec(), ms(s.Create.P50), ms(s.Create.P99),
			s.CreateSDK.PerSec(), ms(s.CreateSDK.P50), ms(s.CreateSDK.P99),
			s.Payment.PerSec(), ms(s.Payment.P50), ms(s.Payment.P99),
			s.Raw.PerSec(), ms(s.Raw.P50), ms(s.Raw.P99), s.PaymentsRaw(), s.CreatesRSA(d.RSA), s.SDKRSA(d.RSA))
	}
	fmt.Fprintf(out, "complete payment by step, p50 / p99:\n")
	for _, s := range d.Steps {
		var parts []string
		for _, p := range s.Payment.Parts {
			parts = append(parts, fmt.Sprintf("%s %s / %s", p.Name, ms(p.P50), ms(p.P99)))
		}
		fmt.Fprintf(out, "%7d | %s\n", s.Clients, strings.Join(parts, " | "))
	}
	fmt.Fprintf(out, "CPU per operation, this process + PostgreSQL backends / whole machine:\n")
	for _, s := range d.Steps {
		var parts []string
		for _, w := range []struct {
			name string
			m    APIMeasure
		}{{"create", s.Create}, {"sdk", s.CreateSDK}, {"payment", s.Payment}, {"raw", s.Raw}} {
			c := w.m.CPUPerOp()
			parts = append(parts, fmt.Sprintf("%s %s + %s / %s", w.name, ms(c.Process), ms(c.Postgres), ms(c.Machine)))
		}
		fmt.Fprintf(out, "%7d | %s\n", s.Clients, strings.Join(parts, " | "))
	}
	fmt.Fprintf(out, "signing ceiling on these cores: creates ≤ rsa/%d = %.0f/s, sdk creates ≤ rsa/%d = %.0f/s (%.2f × rsa); complete payments ≤ rsa/%d = %.0f/s\n",
		SignaturesPerCreate, rsa/SignaturesPerCreate, SignaturesPerSDKCreate, rsa/SignaturesPerSDKCreate, 1.0/SignaturesPerSDKCreate,
		SignaturesPerPayment, rsa/SignaturesPerPayment)
	if len(d.LedgerFindings) == 0 {
		fmt.Fprintf(out, "ledger after the run: balanced (LedgerCheck: no findings)\n")
	} else {
		fmt.Fprintf(out, "ledger after the run: NOT BALANCED: %s\n", strings.Join(d.LedgerFindings, "; "))
	}
	if d.Rejected > 0 || d.Duplicates > 0 {
		fmt.Fprintf(out, "notifications: %d rejected by the merchant's verification, %d delivered twice\n", d.Rejected, d.Duplicates)
	}
	v := d.Verdict()
	if !v.Checked {
		fmt.Fprintf(out, "verdict (%s): goals are checked at %d clients, not run\n", d.Dialect, GoalAPIClients)
		return
	}
	fmt.Fprintf(out, "verdict (%s, %d clients, creates pre-signed): payments/raw %.2f (goal ≥ %.1f) %s; creates/rsa %.2f (goal ≥ %.1f) %s; create p99 %s (goal < %s) %s\n",
		d.Dialect, GoalAPIClients, v.PaymentsRaw, GoalPaymentsRaw, passFail(v.PaymentsRaw >= GoalPaymentsRaw),
		v.CreatesRSA, GoalCreatesRSA, passFail(v.CreatesRSA >= GoalCreatesRSA),
		ms(v.CreateP99), ms(GoalCreateP99), passFail(v.CreateP99 < GoalCreateP99))
}

// sample is one operation's latency and, for complete payments, its steps'.
type sample struct {
	total time.Duration
	parts [3]time.Duration
}

// apiWorkload runs one operation.
type apiWorkload func(ctx context.Context) (sample, error)

// apiTally accumulates one workload's slices at one client count.
type apiTally struct {
	hist    Histogram
	parts   [3]Histogram
	ops     int64
	elapsed time.Duration
	cpu     CPUTimes
}

var partNames = [3]string{"create", "pay", "pay→notified"}

func (t *apiTally) measure(withParts bool) APIMeasure {
	m := APIMeasure{Ops: t.ops, Elapsed: t.elapsed, P50: t.hist.Quantile(0.50), P99: t.hist.Quantile(0.99),
		CPU: t.cpu}
	if withParts {
		for i := range t.parts {
			m.Parts = append(m.Parts, PartLatency{Name: partNames[i], P50: t.parts[i].Quantile(0.50), P99: t.parts[i].Quantile(0.99)})
		}
	}
	return m
}

// WorkloadHeader carries the workload's name on the load's requests, so
// that the server can label its goroutines for CPU profiles the way the
// load labels its own (pprof label "workload").
const WorkloadHeader = "Bench-Workload"

// labelTransport sets WorkloadHeader from the request context's pprof
// label "workload".
type labelTransport struct{ base http.RoundTripper }

// RoundTrip adds the header to a copy of the request.
func (t labelTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	if v, ok := pprof.Label(r.Context(), "workload"); ok {
		r = r.Clone(r.Context())
		r.Header.Set(WorkloadHeader, v)
	}
	return t.base.RoundTrip(r)
}

// runAPI drives n clients with w for d and adds what they achieved to t.
// Each client runs operations back to back until d has passed; the run
// ends when the last operation in flight completes. The clients'
// goroutines carry the pprof label workload=name.
func runAPI(ctx context.Context, name string, n int, d time.Duration, w apiWorkload, t *apiTally, cpu func() cpuSnap) error {
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	type local struct {
		hist  Histogram
		parts [3]Histogram
		ops   int64
	}
	ls := make([]local, n)
	var wg sync.WaitGroup
	c0 := cpu()
	start := time.Now()
	deadline := start.Add(d)
	for k := range n {
		wg.Go(func() {
			pprof.Do(ctx, pprof.Labels("workload", name), func(ctx context.Context) {
				l := &ls[k]
				for ctx.Err() == nil && time.Now().Before(deadline) {
					s, err := w(ctx)
					if err != nil {
						cancel(err)
						return
					}
					l.hist.Record(s.total)
					for i, p := range s.parts {
						if p > 0 {
							l.parts[i].Record(p)
						}
					}
					l.ops++
				}
			})
		})
	}
	wg.Wait()
	t.elapsed += time.Since(start)
	c1 := cpu()
	t.cpu.Process += c1.process - c0.process
	t.cpu.Postgres += c1.postgres - c0.postgres
	t.cpu.Machine += c1.machine - c0.machine
	if err := context.Cause(ctx); err != nil {
		return err
	}
	for k := range ls {
		t.hist.Merge(&ls[k].hist)
		for i := range t.parts {
			t.parts[i].Merge(&ls[k].parts[i])
		}
		t.ops += ls[k].ops
	}
	return nil
}

// warmAPI runs apiWarmup operations on each of n clients, unmeasured.
func warmAPI(ctx context.Context, n int, w apiWorkload) error {
	var wg sync.WaitGroup
	errs := make([]error, n)
	for k := range n {
		wg.Go(func() {
			for range apiWarmup {
				if _, errs[k] = w(ctx); errs[k] != nil {
					return
				}
			}
		})
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			return err
		}
	}
	return nil
}

// Workloads of the API load, in their tallies' order.
const (
	wCreate = iota
	wCreateSDK
	wPayment
	wRaw
	nw
)

var workloadNames = [nw]string{"create", "create-sdk", "payment", "raw"}

// runAPIDatabase stands the platform up on one database and runs every
// step.
func runAPIDatabase(ctx context.Context, cfg APIConfig, rawURL string, progress io.Writer) (rep APIDatabaseReport, err error) {
	db, err := store.Open(ctx, rawURL, store.Options{MaxOpenConns: cfg.MaxOpenConns})
	if err != nil {
		return rep, err
	}
	defer db.Close()
	if _, err := db.Migrate(ctx); err != nil {
		return rep, err
	}
	rep = APIDatabaseReport{URL: redact(rawURL), Dialect: db.Dialect}
	maxClients := slices.Max(cfg.Clients)

	// The merchant's notification endpoint, on loopback.
	recv := &receiver{waiting: map[string]chan time.Time{}}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return rep, err
	}
	hook := &http.Server{Handler: recv, ReadHeaderTimeout: 10 * time.Second}
	go hook.Serve(ln) //nolint:errcheck // ends with Shutdown
	defer func() {
		sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
		defer cancel()
		hook.Shutdown(sctx) //nolint:errcheck // best effort at the end of a run
	}()
	notifyURL := "http://" + ln.Addr().String() + "/paygate/notify"

	p, err := cfg.Start(ctx, db, PlatformOptions{DatabaseURL: rawURL, SimDelay: cfg.SimDelay, NotifyTick: cfg.NotifyTick})
	if err != nil {
		return rep, fmt.Errorf("start the platform: %w", err)
	}
	stopped := false
	stop := func() {
		if !stopped {
			stopped = true
			p.Stop()
		}
	}
	defer stop()
	mc := p.Merchant
	transport := &http.Transport{
		Proxy:               nil,
		DialContext:         (&net.Dialer{Timeout: 5 * time.Second, KeepAlive: 30 * time.Second}).DialContext,
		MaxIdleConns:        4 * maxClients,
		MaxIdleConnsPerHost: 4 * maxClients, // keep every client's connection alive (the default keeps 2)
		IdleConnTimeout:     90 * time.Second,
	}
	defer transport.CloseIdleConnections()
	mc.HTTPClient = &http.Client{Timeout: opTimeout, Transport: labelTransport{transport}}
	sdk, err := apiclient.New(mc)
	if err != nil {
		return rep, err
	}
	recv.setClient(sdk)

	run := randomHex(4)
	var seq atomic.Int64
	outTradeNo := func() string { return fmt.Sprintf("B%s%010d", run, seq.Add(1)) }
	ps := &presigner{cfg: mc, sdk: sdk, notifyURL: notifyURL, outTradeNo: outTradeNo}
	raw, err := newRawPayments(ctx, db, "bench_"+randomHex(6)+"_", notifyURL)
	if err != nil {
		return rep, err
	}
	signer, err := newRSASigner()
	if err != nil {
		return rep, err
	}
	// pools[i][w] holds the pre-signed requests of workload w (create,
	// payment) at client count i; the workloads read the pool of the
	// client count running.
	pools := make([][nw]*presignPool, len(cfg.Clients))
	var cur struct {
		sync.Mutex
		create, payment *presignPool
	}
	use := func(i int) {
		cur.Lock()
		cur.create, cur.payment = pools[i][wCreate], pools[i][wPayment]
		cur.Unlock()
	}
	current := func(w int) func() *presignPool {
		return func() *presignPool {
			cur.Lock()
			defer cur.Unlock()
			if w == wCreate {
				return cur.create
			}
			return cur.payment
		}
	}
	ws := [nw]apiWorkload{ps.createWorkload(current(wCreate)), createWorkload(sdk, notifyURL, outTradeNo),
		paymentWorkload(ps, current(wPayment), sdk, recv), raw.workload()}

	fmt.Fprintf(progress, "%s: platform up at %s, merchant %s; warming up\n", db.Dialect, mc.BaseURL, mc.MchID)
	warm := [nw]*presignPool{}
	for _, w := range []int{wCreate, wPayment} {
		if warm[w], err = ps.pool(ctx, maxClients*apiWarmup, false); err != nil {
			return rep, err
		}
	}
	cur.create, cur.payment = warm[wCreate], warm[wPayment]
	for w := range nw {
		if err := warmAPI(ctx, maxClients, ws[w]); err != nil {
			return rep, fmt.Errorf("%s warm-up: %w", workloadNames[w], err)
		}
	}

	// Size the pools: probe each pre-signed workload at each client count
	// (unmeasured, its requests signed first), bounded by the signing
	// ceiling, then sign every pool before measuring starts.
	var rsa0 RSAMeasure
	if err := pprofDo(ctx, "rsa", func(ctx context.Context) error { return signer.run(ctx, 200*time.Millisecond, &rsa0) }); err != nil {
		return rep, err
	}
	ceiling := [nw]float64{wCreate: rsa0.PerSec() / SignaturesPerCreate, wPayment: rsa0.PerSec() / SignaturesPerPayment}
	fmt.Fprintf(progress, "%s: probing for %s per workload and client count to size the pre-signed pools\n", db.Dialect, presignProbe)
	sizes := make([][nw]int, len(cfg.Clients))
	for i, n := range cfg.Clients {
		for _, w := range []int{wCreate, wPayment} {
			probe, err := ps.pool(ctx, poolSize(ceiling[w], 0, presignProbe, n), false)
			if err != nil {
				return rep, err
			}
			cur.Lock()
			cur.create, cur.payment = probe, probe
			cur.Unlock()
			var t apiTally
			if err := runAPI(ctx, "probe", n, presignProbe, ws[w], &t, func() cpuSnap { return cpuSnap{} }); err != nil {
				return rep, fmt.Errorf("%s probe, %d clients: %w", workloadNames[w], n, err)
			}
			sizes[i][w] = poolSize(t.rate(), ceiling[w], cfg.Duration, n)
		}
	}
	ps.inline.Store(0) // the warm-up's and probes' requests are not the window's
	ps.oldest.Store(0)
	err = pprofDo(ctx, "sign-ahead", func(ctx context.Context) error {
		for i := range cfg.Clients {
			for _, w := range []int{wCreate, wPayment} {
				var err error
				if pools[i][w], err = ps.pool(ctx, sizes[i][w], true); err != nil {
					return err
				}
			}
		}
		return nil
	})
	if err != nil {
		return rep, err
	}
	pr := ps.report()
	total := time.Duration(nw*len(cfg.Clients)+1) * cfg.Duration
	fmt.Fprintf(progress, "%s: signed %d requests ahead in %s; measuring for %s in %s slices\n",
		db.Dialect, pr.Requests, pr.Took.Round(time.Millisecond), total, slice)

	cpu := func() cpuSnap { return cpuTimes(ctx, db.SQL, db.Dialect == store.Postgres) }
	rounds := max(1, int((cfg.Duration+slice-1)/slice))
	ts := make([][nw]apiTally, len(cfg.Clients))
	var rsaT RSAMeasure
	for r := range rounds {
		part := cfg.Duration / time.Duration(rounds)
		if r == rounds-1 {
			part = cfg.Duration - part*time.Duration(rounds-1)
		}
		if err := pprofDo(ctx, "rsa", func(ctx context.Context) error { return signer.run(ctx, part, &rsaT) }); err != nil {
			return rep, err
		}
		for j := range cfg.Clients {
			i := (j + r) % len(cfg.Clients)
			n := cfg.Clients[i]
			for o := range nw { // rotate which workload goes first
				w := (o + r + j) % nw
				if w == wCreate || w == wPayment {
					// A pool about to grow older than the server accepts is
					// signed afresh (unmeasured); with runs of seconds, never.
					if pl := pools[i][w]; time.Since(pl.signedAt)+part > presignMaxAge {
						err := pprofDo(ctx, "sign-ahead", func(ctx context.Context) error {
							var err error
							pools[i][w], err = ps.pool(ctx, pl.left(), true)
							return err
						})
						if err != nil {
							return rep, err
						}
						ps.resigned.Add(1)
					}
					use(i)
				}
				if err := runAPI(ctx, workloadNames[w], n, part, ws[w], &ts[i][w], cpu); err != nil {
					return rep, fmt.Errorf("%s, %d clients: %w", workloadNames[w], n, err)
				}
			}
		}
		if (r+1)%4 == 0 && r+1 < rounds {
			fmt.Fprintf(progress, "%s: round %d of %d\n", db.Dialect, r+1, rounds)
		}
	}
	for i, n := range cfg.Clients {
		rep.Steps = append(rep.Steps, APIStep{Clients: n, Create: ts[i][wCreate].measure(false), CreateSDK: ts[i][wCreateSDK].measure(false),
			Payment: ts[i][wPayment].measure(true), Raw: ts[i][wRaw].measure(false)})
	}
	rep.RSA = rsaT
	rep.Rejected, rep.Duplicates = recv.rejected.Load(), recv.duplicates.Load()
	rep.Presign = ps.report()

	// Stop the platform (its jobs write too), then check the whole ledger.
	stop()
	rep.LedgerFindings, err = db.LedgerCheck(ctx)
	if err != nil {
		return rep, fmt.Errorf("ledger check: %w", err)
	}
	if rep.LedgerFindings == nil {
		rep.LedgerFindings = []string{}
	}
	return rep, nil
}

// rate returns the tally's operations per second so far (0 before any).
func (t *apiTally) rate() float64 {
	if t.elapsed <= 0 {
		return 0
	}
	return float64(t.ops) / t.elapsed.Seconds()
}

// pprofDo runs fn with the pprof label workload=name.
func pprofDo(ctx context.Context, name string, fn func(context.Context) error) error {
	var err error
	pprof.Do(ctx, pprof.Labels("workload", name), func(ctx context.Context) { err = fn(ctx) })
	return err
}

// createWorkload creates one order per call through the SDK.
func createWorkload(sdk *apiclient.Client, notifyURL string, outTradeNo func() string) apiWorkload {
	return func(ctx context.Context) (sample, error) {
		ctx, cancel := context.WithTimeout(ctx, opTimeout)
		defer cancel()
		t0 := time.Now()
		if _, err := sdk.CreateOrder(ctx, orderRequest(outTradeNo(), notifyURL)); err != nil {
			return sample{}, fmt.Errorf("create order: %w", err)
		}
		return sample{total: time.Since(t0)}, nil
	}
}

func orderRequest(outTradeNo, notifyURL string) apiclient.CreateOrderRequest {
	return apiclient.CreateOrderRequest{OutTradeNo: outTradeNo, Description: "Bench order",
		Amount: apiclient.Amount{Total: randomAmount(), Currency: "CNY"}, NotifyURL: notifyURL}
}

// paymentWorkload runs one complete payment per call: create (pre-signed,
// from the pool current returns), sandbox pay through the SDK, and wait
// for the notification.
func paymentWorkload(ps *presigner, current func() *presignPool, sdk *apiclient.Client, recv *receiver) apiWorkload {
	return func(ctx context.Context) (sample, error) {
		octx, cancel := context.WithTimeout(ctx, opTimeout)
		defer cancel()
		s, err := ps.next(current())
		if err != nil {
			return sample{}, err
		}
		t0 := time.Now()
		o, err := ps.send(octx, s)
		if err != nil {
			return sample{}, fmt.Errorf("create order (pre-signed): %w", err)
		}
		t1 := time.Now()
		arrived := recv.expect(o.ID)
		if _, err := sdk.SandboxPay(octx, o.ID, "success"); err != nil {
			recv.forget(o.ID)
			return sample{}, fmt.Errorf("sandbox pay %s: %w", o.ID, err)
		}
		t2 := time.Now()
		timer := time.NewTimer(notifyWait)
		defer timer.Stop()
		select {
		case at := <-arrived:
			return sample{total: at.Sub(t0), parts: [3]time.Duration{t1.Sub(t0), t2.Sub(t1), max(at.Sub(t2), 1)}}, nil
		case <-timer.C:
			recv.forget(o.ID)
			return sample{}, fmt.Errorf("order %s: no notification within %s of paying", o.ID, notifyWait)
		case <-ctx.Done():
			recv.forget(o.ID)
			return sample{}, context.Cause(ctx)
		}
	}
}

// receiver is the merchant's notification endpoint: it verifies and
// decrypts each notification with the SDK (as a merchant must) and hands
// the arrival time to the payment waiting for it.
type receiver struct {
	sdk        atomic.Pointer[apiclient.Client]
	mu         sync.Mutex
	waiting    map[string]chan time.Time
	rejected   atomic.Int64
	duplicates atomic.Int64
}

func (r *receiver) setClient(c *apiclient.Client) { r.sdk.Store(c) }

// expect registers a payment of the order; the channel receives the
// arrival time of its TRANSACTION.SUCCESS notification.
func (r *receiver) expect(orderID string) <-chan time.Time {
	ch := make(chan time.Time, 1)
	r.mu.Lock()
	r.waiting[orderID] = ch
	r.mu.Unlock()
	return ch
}

func (r *receiver) forget(orderID string) {
	r.mu.Lock()
	delete(r.waiting, orderID)
	r.mu.Unlock()
}

// ServeHTTP answers 204 to a notification it verified, 400 otherwise.
func (r *receiver) ServeHTTP(w http.ResponseWriter, req *http.Request) {
	at := time.Now()
	sdk := r.sdk.Load()
	var o apiclient.Order
	if sdk == nil {
		w.WriteHeader(http.StatusServiceUnavailable)
		return
	}
	n, err := sdk.ParseNotification(req, &o)
	if err != nil {
		r.rejected.Add(1)
		w.WriteHeader(http.StatusBadRequest)
		return
	}
	if n.EventType == "TRANSACTION.SUCCESS" && o.Status == "SUCCESS" {
		r.mu.Lock()
		ch, ok := r.waiting[o.ID]
		delete(r.waiting, o.ID)
		r.mu.Unlock()
		if ok {
			ch <- at
		} else {
			r.duplicates.Add(1)
		}
	}
	w.WriteHeader(http.StatusNoContent)
}
