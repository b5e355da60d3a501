// Package bench drives load against paygate's components and reports
// throughput and latency. `paygate bench ledger` calls Ledger.
//
// The ledger load runs, on each database and for each client count, two
// workloads one after the other for the same duration: payment journals
// through the ledger engine, and a raw baseline of plain SQL writing the
// same rows with no ledger logic. Their ratio is the engine's overhead, and
// holds on a noisy machine where absolute figures drift.
package bench

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/jackc/pgx/v5/pgconn"

	"paygate"
	"paygate/ledger"
	"paygate/store"
)

// Goals the ledger load checks (issue 2, item 6).
const (
	// GoalRatioClients is the client count at which the ledger is compared
	// with the raw baseline.
	GoalRatioClients = 16
	// GoalRatio is the least ledger/raw throughput ratio at GoalRatioClients.
	GoalRatio = 0.6
	// GoalScaleClients is the client count whose ledger throughput is
	// compared with that at GoalRatioClients.
	GoalScaleClients = 64
	// GoalScale is the least ledger throughput at GoalScaleClients as a
	// fraction of that at GoalRatioClients: the ledger must not collapse.
	GoalScale = 0.8
)

// Limits on a ledger load run, so that it always stops by itself.
const (
	MaxClients  = 1024
	MaxDuration = 10 * time.Minute
)

// DefaultClients are the client counts run when LedgerConfig.Clients is empty.
var DefaultClients = []int{1, 4, 16, 64}

// LedgerConfig configures a ledger load run. Zero fields take defaults:
// Clients DefaultClients, Duration 5s, FeeShards 16.
type LedgerConfig struct {
	DatabaseURLs []string      // each database to run against (sqlite:..., postgres://... on a loopback address)
	Clients      []int         // concurrent clients per step, e.g. 1, 4, 16, 64
	Duration     time.Duration // per step and per workload (ledger, then raw)
	FeeShards    int           // shards of the platform fee account (1 = one hot row)
	// MaxOpenConns caps each database's connection pool; 0 lets store.Open
	// choose (4 per CPU), so that many clients queue for connections
	// instead of oversubscribing the server.
	MaxOpenConns int
}

// withDefaults fills zero fields and validates the rest.
func (c LedgerConfig) withDefaults() (LedgerConfig, error) {
	if len(c.DatabaseURLs) == 0 {
		return c, paygate.EField(paygate.CodeInvalidArgument, "db", "name at least one database URL")
	}
	if len(c.Clients) == 0 {
		c.Clients = DefaultClients
	}
	c.Clients = slices.Clone(c.Clients)
	for _, n := range c.Clients {
		if n < 1 || n > MaxClients {
			return c, paygate.EField(paygate.CodeInvalidArgument, "clients", "client counts must be between 1 and %d", MaxClients)
		}
	}
	if c.Duration == 0 {
		c.Duration = 5 * time.Second
	}
	if c.Duration < 0 || c.Duration > MaxDuration {
		return c, paygate.EField(paygate.CodeInvalidArgument, "duration", "duration must be positive and at most %s", MaxDuration)
	}
	if c.FeeShards == 0 {
		c.FeeShards = 16
	}
	if c.FeeShards < 1 || c.FeeShards > ledger.MaxShards {
		return c, paygate.EField(paygate.CodeInvalidArgument, "fee-shards", "fee shards must be between 1 and %d", ledger.MaxShards)
	}
	if c.MaxOpenConns < 0 {
		return c, paygate.EField(paygate.CodeInvalidArgument, "max-open-conns", "pool size must not be negative")
	}
	for _, u := range c.DatabaseURLs {
		if err := checkLoopback(u); err != nil {
			return c, err
		}
	}
	return c, nil
}

// checkLoopback refuses a database URL that is malformed or names a
// PostgreSQL server off this machine: load is only ever sent to loopback
// addresses (or a local Unix socket).
func checkLoopback(raw string) error {
	d, _, err := store.ParseURL(raw)
	if err != nil {
		return err
	}
	if d != store.Postgres {
		return nil
	}
	cfg, err := pgconn.ParseConfig(raw)
	if err != nil {
		return paygate.E(paygate.CodeInvalidArgument, "malformed PostgreSQL URL")
	}
	hosts := []string{cfg.Host}
	for _, f := range cfg.Fallbacks {
		hosts = append(hosts, f.Host)
	}
	for _, h := range hosts {
		if !isLoopback(h) {
			return paygate.EField(paygate.CodeInvalidArgument, "db", "bench runs only against a database on this machine (loopback or Unix socket), not %q", h)
		}
	}
	return nil
}

func isLoopback(host string) bool {
	if strings.HasPrefix(host, "/") || host == "localhost" {
		return true
	}
	ip := net.ParseIP(strings.Trim(host, "[]"))
	return ip != nil && ip.IsLoopback()
}

// Report is the outcome of a ledger load run, one entry per database.
type Report struct {
	Config    LedgerConfig     `json:"config"`
	Databases []DatabaseReport `json:"databases"`
}

// DatabaseReport is the outcome on one database.
type DatabaseReport struct {
	URL       string        `json:"url"` // with any password redacted
	Dialect   store.Dialect `json:"dialect"`
	FeeShards int           `json:"fee_shards"`
	Steps     []Step        `json:"steps"`
	// Balanced reports that, after the run, the run's accounts sum to zero
	// per currency (posted and pending), ledger and raw accounts alike.
	Balanced bool `json:"balanced"`
}

// Step is one client count: the ledger workload and the raw baseline.
type Step struct {
	Clients int     `json:"clients"`
	Ledger  Measure `json:"ledger"`
	Raw     Measure `json:"raw"`
}

// Ratio returns ledger throughput over raw throughput (0 when raw is 0).
func (s Step) Ratio() float64 {
	r := s.Raw.JournalsPerSec()
	if r == 0 {
		return 0
	}
	return s.Ledger.JournalsPerSec() / r
}

// Measure is what one workload achieved in one step. A journal is one
// payment: two transfers (customer → merchant, merchant → platform fee).
type Measure struct {
	Journals  int64         `json:"journals"`
	Transfers int64         `json:"transfers"`
	Elapsed   time.Duration `json:"elapsed"`
	P50       time.Duration `json:"p50"`
	P99       time.Duration `json:"p99"`
}

// JournalsPerSec returns journals completed per second.
func (m Measure) JournalsPerSec() float64 {
	if m.Elapsed <= 0 {
		return 0
	}
	return float64(m.Journals) / m.Elapsed.Seconds()
}

// TransfersPerSec returns transfers completed per second.
func (m Measure) TransfersPerSec() float64 {
	if m.Elapsed <= 0 {
		return 0
	}
	return float64(m.Transfers) / m.Elapsed.Seconds()
}

// Verdict is the check of one database's figures against the goals.
type Verdict struct {
	// Ratio is ledger/raw at GoalRatioClients; HasRatio is false when that
	// client count was not run.
	Ratio    float64 `json:"ratio"`
	HasRatio bool    `json:"has_ratio"`
	// Scale is ledger throughput at GoalScaleClients over that at
	// GoalRatioClients; HasScale is false unless both were run.
	Scale    float64 `json:"scale"`
	HasScale bool    `json:"has_scale"`
}

// Pass reports whether every goal that could be checked was met.
func (v Verdict) Pass() bool {
	return (!v.HasRatio || v.Ratio >= GoalRatio) && (!v.HasScale || v.Scale >= GoalScale)
}

// Verdict checks the database's figures against the goals.
func (d DatabaseReport) Verdict() Verdict {
	var v Verdict
	at := func(n int) (Step, bool) {
		for _, s := range d.Steps {
			if s.Clients == n {
				return s, true
			}
		}
		return Step{}, false
	}
	s16, ok16 := at(GoalRatioClients)
	if ok16 {
		v.Ratio, v.HasRatio = s16.Ratio(), true
	}
	if s64, ok64 := at(GoalScaleClients); ok16 && ok64 && s16.Ledger.JournalsPerSec() > 0 {
		v.Scale, v.HasScale = s64.Ledger.JournalsPerSec()/s16.Ledger.JournalsPerSec(), true
	}
	return v
}

// Ledger runs the ledger load and the raw-SQL baseline on every database of
// cfg and writes a report table per database to out, with a verdict line
// against the goals. Missing a goal is reported, not an error; errors are
// for bad configuration, unreachable databases and failed journals.
func Ledger(ctx context.Context, cfg LedgerConfig, out io.Writer) error {
	cfg, err := cfg.withDefaults()
	if err != nil {
		return err
	}
	fmt.Fprintf(out, "ledger load: clients %s, %s per workload and step, fee account in %d shard(s); journal = customer→merchant + merchant→fee\n",
		joinInts(cfg.Clients), cfg.Duration, cfg.FeeShards)
	for _, u := range cfg.DatabaseURLs {
		d, err := runDatabase(ctx, cfg, u, out)
		if err != nil {
			return fmt.Errorf("bench: %s: %w", redact(u), err)
		}
		WriteTable(out, d)
	}
	return nil
}

// RunLedger is Ledger without the printing: it returns the figures.
func RunLedger(ctx context.Context, cfg LedgerConfig) (Report, error) {
	cfg, err := cfg.withDefaults()
	if err != nil {
		return Report{}, err
	}
	rep := Report{Config: cfg}
	for _, u := range cfg.DatabaseURLs {
		d, err := runDatabase(ctx, cfg, u, io.Discard)
		if err != nil {
			return rep, fmt.Errorf("bench: %s: %w", redact(u), err)
		}
		rep.Databases = append(rep.Databases, d)
	}
	return rep, nil
}

// WriteTable prints one database's figures and its verdict.
func WriteTable(out io.Writer, d DatabaseReport) {
	fmt.Fprintf(out, "\n%s  %s, fee shards %d\n", d.Dialect, d.URL, d.FeeShards)
	fmt.Fprintf(out, "%7s | %10s %11s %8s %8s | %10s %8s %8s | %10s\n",
		"clients", "ledger j/s", "transfers/s", "p50", "p99", "raw j/s", "p50", "p99", "ledger/raw")
	for _, s := range d.Steps {
		fmt.Fprintf(out, "%7d | %10.0f %11.0f %8s %8s | %10.0f %8s %8s | %10.2f\n",
			s.Clients, s.Ledger.JournalsPerSec(), s.Ledger.TransfersPerSec(), ms(s.Ledger.P50), ms(s.Ledger.P99),
			s.Raw.JournalsPerSec(), ms(s.Raw.P50), ms(s.Raw.P99), s.Ratio())
	}
	bal := "balanced"
	if !d.Balanced {
		bal = "NOT BALANCED"
	}
	fmt.Fprintf(out, "ledger after the run: %s\n", bal)
	v := d.Verdict()
	var parts []string
	if v.HasRatio {
		parts = append(parts, fmt.Sprintf("ledger/raw at %d clients %.2f (goal ≥ %.1f) %s", GoalRatioClients, v.Ratio, GoalRatio, passFail(v.Ratio >= GoalRatio)))
	} else {
		parts = append(parts, fmt.Sprintf("ledger/raw at %d clients not run", GoalRatioClients))
	}
	if v.HasScale {
		parts = append(parts, fmt.Sprintf("ledger %d vs %d clients %.2f (goal ≥ %.1f) %s", GoalScaleClients, GoalRatioClients, v.Scale, GoalScale, passFail(v.Scale >= GoalScale)))
	} else {
		parts = append(parts, fmt.Sprintf("ledger %d vs %d clients not run", GoalScaleClients, GoalRatioClients))
	}
	fmt.Fprintf(out, "verdict (%s, fee shards %d): %s\n", d.Dialect, d.FeeShards, strings.Join(parts, "; "))
}

func passFail(ok bool) string {
	if ok {
		return "PASS"
	}
	return "FAIL"
}

func ms(d time.Duration) string {
	return fmt.Sprintf("%.2fms", float64(d)/float64(time.Millisecond))
}

func joinInts(ns []int) string {
	s := make([]string, len(ns))
	for i, n := range ns {
		s[i] = fmt.Sprint(n)
	}
	return strings.Join(s, ",")
}

// redact hides a PostgreSQL password; other URLs are shown as they are.
func redact(raw string) string {
	u, err := url.Parse(raw)
	if err != nil || u.User == nil {
		return raw
	}
	return u.Redacted()
}
