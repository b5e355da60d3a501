package bench

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"runtime"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"paygate"
	apiclient "paygate/client"
	"paygate/store"
)

// The refund load (`paygate bench refunds`) stands up a whole paygate
// in-process, as the API load does (StartPlatform), with one sandbox
// merchant, and on each database:
//
//   - pays orders through the open API and the simulated channel before
//     measuring (setup, outside every window);
//   - single: for each client count, signed POST /v1/refunds of part of a
//     paid order, back to back, for Duration: a refund counts when its
//     answer (PROCESSING: held, submitted to the channel) arrives. The SDK
//     signs each request in the window, on the same cores as the server;
//   - batch: Batches refund batches of BatchSize lines, one after the
//     other: each from the submit to the moment the batch is FINISHED (every
//     line refunded through the same one-refund command by the batch
//     worker), read from the database every millisecond, so its items/s is
//     the worker's rate.
//
// After the run the whole ledger is checked (db.LedgerCheck).

// Defaults of RefundsConfig.
const (
	DefaultRefundBatchSize = 1000
	DefaultRefundBatches   = 3
	// refundsPerOrder is how many partial refunds the load makes of one
	// order (payment.MaxRefundsPerOrder allows 50).
	refundsPerOrder = 40
	// refundLinesPerOrder is how many lines of a batch refund one order.
	refundLinesPerOrder = 10
	// refundOrderTotal is each paid order's total; every refund gives back
	// refundAmount of it.
	refundOrderTotal = 1_000_000
	refundAmount     = 100
	// batchWait bounds how long a batch may take to finish.
	batchWait = 10 * time.Minute
)

// DefaultRefundClients are the client counts run when RefundsConfig.Clients
// is empty.
var DefaultRefundClients = []int{1, 4, 16}

// RefundsConfig configures a refund load run. Zero fields take defaults:
// Clients DefaultRefundClients, Duration 5s, BatchSize
// DefaultRefundBatchSize, Batches DefaultRefundBatches, SimDelay
// DefaultSimDelay, NotifyTick DefaultNotifyTick.
type RefundsConfig struct {
	DatabaseURLs []string      // each database (sqlite:..., postgres://... on a loopback address)
	Clients      []int         // concurrent clients of the single-refund load, per step
	Duration     time.Duration // of each single-refund step
	BatchSize    int           // lines per batch, 1 to 1,000
	Batches      int           // batches, one after the other
	MaxOpenConns int           // each database's pool; 0: 4 per CPU
	SimDelay     time.Duration
	NotifyTick   time.Duration
	// Start stands the platform up; required.
	Start StartPlatform `json:"-"`
}

func (c RefundsConfig) withDefaults() (RefundsConfig, error) {
	a, err := APIConfig{DatabaseURLs: c.DatabaseURLs, Clients: c.Clients, Duration: c.Duration, MaxOpenConns: c.MaxOpenConns,
		SimDelay: c.SimDelay, NotifyTick: c.NotifyTick, Start: c.Start}.withDefaults()
	if err != nil {
		return c, err
	}
	if len(c.Clients) == 0 {
		a.Clients = slices.Clone(DefaultRefundClients)
	}
	c.DatabaseURLs, c.Clients, c.Duration, c.SimDelay, c.NotifyTick = a.DatabaseURLs, a.Clients, a.Duration, a.SimDelay, a.NotifyTick
	if c.BatchSize == 0 {
		c.BatchSize = DefaultRefundBatchSize
	}
	if c.Batches == 0 {
		c.Batches = DefaultRefundBatches
	}
	if c.BatchSize < 1 || c.BatchSize > 1000 {
		return c, paygate.EField(paygate.CodeInvalidArgument, "batch-size", "a batch has 1 to 1000 lines")
	}
	if c.Batches < 0 || c.Batches > 100 {
		return c, paygate.EField(paygate.CodeInvalidArgument, "batches", "run 0 to 100 batches")
	}
	return c, nil
}

// RefundsReport is the outcome of a refund load run, per database.
type RefundsReport struct {
	Config    RefundsConfig           `json:"config"`
	Databases []RefundsDatabaseReport `json:"databases"`
}

// RefundsDatabaseReport is the outcome on one database.
type RefundsDatabaseReport struct {
	URL     string        `json:"url"` // with any password redacted
	Dialect store.Dialect `json:"dialect"`
	// Setup is how long paying the orders took (unmeasured), and Orders
	// how many were paid.
	Setup  time.Duration `json:"setup"`
	Orders int           `json:"orders"`
	// Single is the single-refund load, per client count.
	Single []RefundStep `json:"single"`
	// Batches are the batches, in the order they ran.
	Batches []BatchRun `json:"batches"`
	// RSA is the machine's RSA-2048 signing rate, measured before the run.
	RSA            RSAMeasure `json:"rsa"`
	LedgerFindings []string   `json:"ledger_findings"`
}

// RefundStep is the single-refund load at one client count.
type RefundStep struct {
	Clients int        `json:"clients"`
	Refunds APIMeasure `json:"refunds"`
}

// BatchRun is one batch: Submit is the POST's latency (202), Finish the
// time from the submit to FINISHED, Accepted and Failed its lines' outcomes.
type BatchRun struct {
	Lines    int           `json:"lines"`
	Submit   time.Duration `json:"submit"`
	Finish   time.Duration `json:"finish"`
	Accepted int           `json:"accepted"`
	Failed   int           `json:"failed"`
}

// ItemsPerSec returns the batch's lines per second, submit to FINISHED.
func (b BatchRun) ItemsPerSec() float64 {
	if b.Finish <= 0 {
		return 0
	}
	return float64(b.Lines) / b.Finish.Seconds()
}

// BatchItemsPerSec returns all batches' lines over their total time.
func (d RefundsDatabaseReport) BatchItemsPerSec() float64 {
	var lines int
	var took time.Duration
	for _, b := range d.Batches {
		lines, took = lines+b.Lines, took+b.Finish
	}
	if took <= 0 {
		return 0
	}
	return float64(lines) / took.Seconds()
}

// Refunds runs the refund load on every database of cfg and writes a
// report per database to out. Errors are for bad configuration,
// unreachable databases and failed requests (a refund the platform
// refuses is a failure of the load).
func Refunds(ctx context.Context, cfg RefundsConfig, out io.Writer) error {
	cfg, err := cfg.withDefaults()
	if err != nil {
		return err
	}
	fmt.Fprintf(out, "refund load: single refunds at clients %s, %s each; %d batches of %d lines; GOMAXPROCS %d; channel delay %s\n",
		joinInts(cfg.Clients), cfg.Duration, cfg.Batches, cfg.BatchSize, runtime.GOMAXPROCS(0), cfg.SimDelay)
	for _, u := range cfg.DatabaseURLs {
		d, err := runRefundsDatabase(ctx, cfg, u, out)
		if err != nil {
			return fmt.Errorf("bench: %s: %w", redact(u), err)
		}
		WriteRefundsTable(out, d)
	}
	return nil
}

// RunRefunds is Refunds without the printing: it returns the figures.
func RunRefunds(ctx context.Context, cfg RefundsConfig) (RefundsReport, error) {
	cfg, err := cfg.withDefaults()
	if err != nil {
		return RefundsReport{}, err
	}
	rep := RefundsReport{Config: cfg}
	for _, u := range cfg.DatabaseURLs {
		d, err := runRefundsDatabase(ctx, cfg, u, io.Discard)
		if err != nil {
			return rep, fmt.Errorf("bench: %s: %w", redact(u), err)
		}
		rep.Databases = append(rep.Databases, d)
	}
	return rep, nil
}

// WriteRefundsTable prints one database's figures.
func WriteRefundsTable(out io.Writer, d RefundsDatabaseReport) {
	rsa := d.RSA.PerSec()
	fmt.Fprintf(out, "\n%s  %s\n", d.Dialect, d.URL)
	fmt.Fprintf(out, "setup (unmeasured): %d orders paid in %s; RSA-2048 signing, %d goroutines: %.0f signatures/s\n",
		d.Orders, d.Setup.Round(time.Millisecond), d.RSA.Goroutines, rsa)
	fmt.Fprintf(out, "single refunds (POST /v1/refunds, signed by the SDK in the window; 2 signatures each: ceiling %.0f/s):\n", rsa/2)
	fmt.Fprintf(out, "%7s | %9s %8s %8s | %14s\n", "clients", "refunds/s", "p50", "p99", "cpu/refund")
	for _, s := range d.Single {
		c := s.Refunds.CPUPerOp()
		fmt.Fprintf(out, "%7d | %9.0f %8s %8s | %s + %s\n", s.Clients, s.Refunds.PerSec(), ms(s.Refunds.P50), ms(s.Refunds.P99),
			ms(c.Process), ms(c.Postgres))
	}
	if len(d.Batches) > 0 {
		fmt.Fprintf(out, "batches (POST /v1/refunds/batches, then the worker; submit → FINISHED):\n")
		fmt.Fprintf(out, "%5s | %5s %8s | %9s %9s | %7s\n", "batch", "lines", "accepted", "submit", "finished", "items/s")
		for i, b := range d.Batches {
			fmt.Fprintf(out, "%5d | %5d %8d | %9s %9s | %7.0f\n", i+1, b.Lines, b.Accepted, ms(b.Submit), ms(b.Finish), b.ItemsPerSec())
		}
		fmt.Fprintf(out, "batch refund items/s over all batches: %.0f\n", d.BatchItemsPerSec())
	}
	if len(d.LedgerFindings) == 0 {
		fmt.Fprintf(out, "ledger after the run: balanced (LedgerCheck: no findings)\n")
	} else {
		fmt.Fprintf(out, "ledger after the run: NOT BALANCED: %s\n", strings.Join(d.LedgerFindings, "; "))
	}
}

// refundSlots hands out refunds of the paid orders: the k-th refund is of
// order k mod n, so that clients running at once refund different orders.
type refundSlots struct {
	orders []apiclient.Order
	next   atomic.Int64
	run    string
}

// take returns the next refund's order and number, or false when every
// order has had refundsPerOrder refunds.
func (s *refundSlots) take() (apiclient.Order, string, bool) {
	k := s.next.Add(1) - 1
	if k >= int64(len(s.orders)*refundsPerOrder) {
		return apiclient.Order{}, "", false
	}
	return s.orders[k%int64(len(s.orders))], fmt.Sprintf("R%s%09d", s.run, k), true
}

// runRefundsDatabase stands the platform up on one database, pays the
// orders and runs the loads.
func runRefundsDatabase(ctx context.Context, cfg RefundsConfig, rawURL string, progress io.Writer) (rep RefundsDatabaseReport, err error) {
	db, err := store.Open(ctx, rawURL, store.Options{MaxOpenConns: cfg.MaxOpenConns})
	if err != nil {
		return rep, err
	}
	defer db.Close()
	if _, err := db.Migrate(ctx); err != nil {
		return rep, err
	}
	rep = RefundsDatabaseReport{URL: redact(rawURL), Dialect: db.Dialect, LedgerFindings: []string{}}
	maxClients := slices.Max(cfg.Clients)

	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return rep, err
	}
	hook := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(http.StatusNoContent) }),
		ReadHeaderTimeout: 10 * time.Second}
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
	transport := &http.Transport{Proxy: nil, DialContext: (&net.Dialer{Timeout: 5 * time.Second, KeepAlive: 30 * time.Second}).DialContext,
		MaxIdleConns: 4 * maxClients, MaxIdleConnsPerHost: 4 * maxClients, IdleConnTimeout: 90 * time.Second}
	defer transport.CloseIdleConnections()
	mc.HTTPClient = &http.Client{Timeout: opTimeout, Transport: labelTransport{transport}}
	sdk, err := apiclient.New(mc)
	if err != nil {
		return rep, err
	}
	signer, err := newRSASigner()
	if err != nil {
		return rep, err
	}
	if err := signer.run(ctx, time.Second, &rep.RSA); err != nil {
		return rep, err
	}

	// Setup: enough paid orders for the single refunds at the signing
	// ceiling, and refundLinesPerOrder lines per order for the batches.
	run := randomHex(4)
	single := int(min(rep.RSA.PerSec()/2*cfg.Duration.Seconds()*float64(len(cfg.Clients)), 100_000))/refundsPerOrder + maxClients
	perBatch := (cfg.BatchSize + refundLinesPerOrder - 1) / refundLinesPerOrder
	fmt.Fprintf(progress, "%s: platform up at %s; paying %d orders\n", db.Dialect, mc.BaseURL, single+perBatch*cfg.Batches)
	t0 := time.Now()
	orders, err := payOrders(ctx, db, sdk, mc.MchID, run, single+perBatch*cfg.Batches, notifyURL)
	if err != nil {
		return rep, err
	}
	rep.Setup, rep.Orders = time.Since(t0), len(orders)
	slots := &refundSlots{orders: orders[:single], run: run}
	batchOrders := orders[single:]

	refund := func(ctx context.Context) (sample, error) {
		o, no, ok := slots.take()
		if !ok {
			return sample{}, fmt.Errorf("the paid orders ran out of refunds: run shorter steps")
		}
		ctx, cancel := context.WithTimeout(ctx, opTimeout)
		defer cancel()
		t0 := time.Now()
		r, err := sdk.CreateRefund(ctx, apiclient.CreateRefundRequest{OrderID: o.ID, OutRefundNo: no, Reason: "bench",
			Amount: apiclient.RefundAmount{Refund: refundAmount, Total: refundOrderTotal, Currency: "CNY"}})
		if err != nil {
			return sample{}, fmt.Errorf("refund %s: %w", no, err)
		}
		if r.Status != "PROCESSING" && r.Status != "SUCCESS" {
			return sample{}, fmt.Errorf("refund %s: status %s", no, r.Status)
		}
		return sample{total: time.Since(t0)}, nil
	}
	if err := warmAPI(ctx, maxClients, refund); err != nil {
		return rep, fmt.Errorf("warm-up: %w", err)
	}
	cpu := func() cpuSnap { return cpuTimes(ctx, db.SQL, db.Dialect == store.Postgres) }
	for _, n := range cfg.Clients {
		fmt.Fprintf(progress, "%s: single refunds, %d clients, %s\n", db.Dialect, n, cfg.Duration)
		var t apiTally
		if err := runAPI(ctx, "refund", n, cfg.Duration, refund, &t, cpu); err != nil {
			return rep, fmt.Errorf("single refunds, %d clients: %w", n, err)
		}
		rep.Single = append(rep.Single, RefundStep{Clients: n, Refunds: t.measure(false)})
	}

	for i := range cfg.Batches {
		fmt.Fprintf(progress, "%s: batch %d of %d, %d lines\n", db.Dialect, i+1, cfg.Batches, cfg.BatchSize)
		req := apiclient.CreateRefundBatchRequest{OutBatchNo: fmt.Sprintf("BENCH-%s-%d", run, i), NotifyURL: notifyURL}
		mine := batchOrders[i*perBatch : (i+1)*perBatch]
		for j := range cfg.BatchSize {
			o := mine[j/refundLinesPerOrder]
			req.Items = append(req.Items, apiclient.RefundBatchItemRequest{OutRefundNo: fmt.Sprintf("B%s%03d%04d", run, i, j), OrderID: o.ID,
				Reason: "bench", Amount: apiclient.RefundAmount{Refund: refundAmount, Total: refundOrderTotal, Currency: "CNY"}})
		}
		b, err := runBatch(ctx, db, sdk, req)
		if err != nil {
			return rep, fmt.Errorf("batch %d: %w", i+1, err)
		}
		rep.Batches = append(rep.Batches, b)
	}

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

// payOrders creates n orders of refundOrderTotal through the API, pays
// them in the sandbox (16 clients at once) and waits until every one is
// paid.
func payOrders(ctx context.Context, db *store.DB, sdk *apiclient.Client, mchID, run string, n int, notifyURL string) ([]apiclient.Order, error) {
	orders := make([]apiclient.Order, n)
	errs := make([]error, 16)
	var wg sync.WaitGroup
	for k := range errs {
		wg.Go(func() {
			for i := k; i < n && errs[k] == nil && ctx.Err() == nil; i += len(errs) {
				octx, cancel := context.WithTimeout(ctx, opTimeout)
				o, err := sdk.CreateOrder(octx, apiclient.CreateOrderRequest{OutTradeNo: fmt.Sprintf("RB%s%08d", run, i), Description: "Bench order",
					Amount: apiclient.Amount{Total: refundOrderTotal, Currency: "CNY"}, NotifyURL: notifyURL})
				if err == nil {
					_, err = sdk.SandboxPay(octx, o.ID, "success")
				}
				cancel()
				orders[i], errs[k] = o, err
			}
		})
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			return nil, fmt.Errorf("pay the orders: %w", err)
		}
	}
	deadline := time.Now().Add(batchWait)
	for {
		var paid int
		if err := db.SQL.QueryRowContext(ctx, `SELECT COUNT(*) FROM payment_orders WHERE merchant_id = $1 AND status = 'SUCCESS'
			AND out_trade_no LIKE $2`, mchID, "RB"+run+"%").Scan(&paid); err != nil {
			return nil, err
		}
		if paid == n {
			return orders, nil
		}
		if time.Now().After(deadline) || ctx.Err() != nil {
			return nil, fmt.Errorf("only %d of %d orders paid", paid, n)
		}
		time.Sleep(10 * time.Millisecond) // polling the channel's confirmations
	}
}

// runBatch submits a batch and waits until it is FINISHED, reading its
// status from the database every millisecond.
func runBatch(ctx context.Context, db *store.DB, sdk *apiclient.Client, req apiclient.CreateRefundBatchRequest) (BatchRun, error) {
	t0 := time.Now()
	b, err := sdk.CreateRefundBatch(ctx, req)
	if err != nil {
		return BatchRun{}, err
	}
	out := BatchRun{Lines: len(req.Items), Submit: time.Since(t0)}
	deadline := t0.Add(batchWait)
	for {
		var status string
		if err := db.SQL.QueryRowContext(ctx, `SELECT status, accepted_count, failed_count FROM refund_batches WHERE id = $1`, b.ID).
			Scan(&status, &out.Accepted, &out.Failed); err != nil {
			return out, err
		}
		if status == "FINISHED" {
			out.Finish = time.Since(t0)
			if out.Failed > 0 {
				return out, fmt.Errorf("%d of %d lines failed", out.Failed, out.Lines)
			}
			return out, nil
		}
		if time.Now().After(deadline) || ctx.Err() != nil {
			return out, fmt.Errorf("not finished after %s: %d accepted", batchWait, out.Accepted)
		}
		time.Sleep(time.Millisecond) // polling: the finish is known within a millisecond
	}
}
