package bench

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"runtime"
	"strings"
	"sync"
	"time"

	"paygate"
	apiclient "paygate/client"
	"paygate/store"
)

// Payout load defaults.
const (
	DefaultPayoutBatches = 10
	DefaultPayoutItems   = 1000
	DefaultPayoutClients = 2
	// payoutPoll is how often the load asks whether a batch finished.
	payoutPoll = 20 * time.Millisecond
)

// PayoutsConfig configures `paygate bench payouts`: on each database,
// Batches batches of Items items each, submitted by Clients concurrent
// merchant clients through the open API. Zero fields take the defaults.
type PayoutsConfig struct {
	DatabaseURLs []string // each database (sqlite:..., postgres://... on a loopback address)
	Batches      int
	Items        int // per batch, at most 1,000
	Clients      int
	// OtherBankEvery sends every n-th item to another bank's card through
	// the simulated interbank switch (0: none; all items are paid on us).
	OtherBankEvery int
	MaxOpenConns   int
	// Start stands the platform up; required.
	Start StartPayoutPlatform `json:"-"`
}

// PayoutPlatform is a running paygate with a funded sandbox merchant and
// recipients to pay, as StartPayoutPlatform returns it.
type PayoutPlatform struct {
	// Merchant is the merchant's SDK configuration (BaseURL on loopback).
	Merchant apiclient.Config
	// Recipients are customers' accounts and own-bank cards the batches
	// pay in turn; OtherBank is another bank's card number.
	Recipients []apiclient.PayoutRecipient
	OtherBank  string
	// Stop stops serving and the jobs; called once before the database
	// closes.
	Stop func()
}

// StartPayoutPlatform stands paygate up over db (open, migrated) with a
// sandbox merchant whose available balance covers funds, and a few
// recipients; `paygate bench payouts` supplies it.
type StartPayoutPlatform func(ctx context.Context, db *store.DB, funds int64) (*PayoutPlatform, error)

// PayoutsReport is one database's result.
type PayoutsReport struct {
	URL     string        `json:"url"`
	Dialect store.Dialect `json:"dialect"`
	Batches int           `json:"batches"`
	Items   int           `json:"items"`
	Clients int           `json:"clients"`
	// Elapsed runs from the first submission to the last batch FINISHED.
	Elapsed time.Duration `json:"elapsed"`
	// Accept is the time the API took to accept a batch (validate every
	// line, hold the total), p50 and p99 over batches.
	AcceptP50, AcceptP99 time.Duration
	// ItemP50 and ItemP99 run from a batch's acceptance to an item's
	// payment (its finish time), over every item.
	ItemP50, ItemP99 time.Duration
	Failed           int `json:"failed"` // items not SUCCESS (declined cards: none are sent)
}

// ItemsPerSec is paid items per second, end to end.
func (r PayoutsReport) ItemsPerSec() float64 {
	if r.Elapsed <= 0 {
		return 0
	}
	return float64(r.Batches*r.Items) / r.Elapsed.Seconds()
}

func (c PayoutsConfig) withDefaults() (PayoutsConfig, error) {
	if len(c.DatabaseURLs) == 0 {
		c.DatabaseURLs = []string{"sqlite:" + store.DefaultSQLitePath}
	}
	for _, u := range c.DatabaseURLs {
		if err := checkLoopback(u); err != nil {
			return c, err
		}
	}
	if c.Batches == 0 {
		c.Batches = DefaultPayoutBatches
	}
	if c.Items == 0 {
		c.Items = DefaultPayoutItems
	}
	if c.Clients == 0 {
		c.Clients = DefaultPayoutClients
	}
	switch {
	case c.Batches < 1 || c.Batches > 10_000:
		return c, paygate.EField(paygate.CodeInvalidArgument, "batches", "batches must be 1 to 10000")
	case c.Items < 1 || c.Items > 1000:
		return c, paygate.EField(paygate.CodeInvalidArgument, "items", "items must be 1 to 1000")
	case c.Clients < 1 || c.Clients > MaxClients:
		return c, paygate.EField(paygate.CodeInvalidArgument, "clients", "clients must be 1 to %d", MaxClients)
	case c.OtherBankEvery < 0:
		return c, paygate.EField(paygate.CodeInvalidArgument, "other-bank-every", "other-bank-every must be 0 or more")
	case c.Start == nil:
		return c, paygate.EField(paygate.CodeInvalidArgument, "start", "the payout load needs a way to start the platform")
	}
	return c, nil
}

// Payouts runs the payout load on each database and writes the machine
// line and a table per database to out.
func Payouts(ctx context.Context, cfg PayoutsConfig, out io.Writer) error {
	fmt.Fprintln(out, MachineLine())
	_, err := RunPayouts(ctx, cfg, func(r PayoutsReport) { WritePayoutsTable(out, r) })
	return err
}

// RunPayouts runs the payout load on each database in turn and returns
// their reports, calling done (when not nil) after each. Errors:
// CodeInvalidArgument for a bad configuration (a database not on
// loopback), or the first fault of a run.
func RunPayouts(ctx context.Context, cfg PayoutsConfig, done func(PayoutsReport)) ([]PayoutsReport, error) {
	cfg, err := cfg.withDefaults()
	if err != nil {
		return nil, err
	}
	var out []PayoutsReport
	for _, u := range cfg.DatabaseURLs {
		r, err := runPayouts(ctx, cfg, u)
		if err != nil {
			return out, fmt.Errorf("%s: %w", redact(u), err)
		}
		if done != nil {
			done(r)
		}
		out = append(out, r)
	}
	return out, nil
}

// MachineLine describes the machine a figure was measured on: CPUs, the
// CPU model and the load average.
func MachineLine() string {
	model := "unknown CPU"
	if b, err := os.ReadFile("/proc/cpuinfo"); err == nil {
		for _, l := range strings.Split(string(b), "\n") {
			if k, v, ok := strings.Cut(l, ":"); ok && strings.TrimSpace(k) == "model name" {
				model = strings.TrimSpace(v)
				break
			}
		}
	}
	load := "?"
	if b, err := os.ReadFile("/proc/loadavg"); err == nil {
		load = strings.Join(strings.Fields(string(b))[:3], " ")
	}
	return fmt.Sprintf("machine: %d CPUs (nproc), %s, load average %s, %s", runtime.NumCPU(), model, load, runtime.Version())
}

// WritePayoutsTable writes one database's result.
func WritePayoutsTable(out io.Writer, r PayoutsReport) {
	fmt.Fprintf(out, "\n%s (%s): %d batches × %d items, %d clients\n", r.URL, r.Dialect, r.Batches, r.Items, r.Clients)
	fmt.Fprintf(out, "  payout items/s end to end: %.0f (%d items in %s; %d not paid)\n", r.ItemsPerSec(), r.Batches*r.Items,
		r.Elapsed.Round(time.Millisecond), r.Failed)
	fmt.Fprintf(out, "  batch acceptance (API): p50 %s, p99 %s\n", ms(r.AcceptP50), ms(r.AcceptP99))
	fmt.Fprintf(out, "  item, accepted → paid: p50 %s, p99 %s\n", ms(r.ItemP50), ms(r.ItemP99))
}

func runPayouts(ctx context.Context, cfg PayoutsConfig, rawURL string) (rep PayoutsReport, err error) {
	db, err := store.Open(ctx, rawURL, store.Options{MaxOpenConns: cfg.MaxOpenConns})
	if err != nil {
		return rep, err
	}
	defer db.Close()
	if _, err := db.Migrate(ctx); err != nil {
		return rep, err
	}
	rep = PayoutsReport{URL: redact(rawURL), Dialect: db.Dialect, Batches: cfg.Batches, Items: cfg.Items, Clients: cfg.Clients}
	// Every item pays 1.00 to 9.99: fund the worst case.
	p, err := cfg.Start(ctx, db, int64(cfg.Batches*cfg.Items)*1_000)
	if err != nil {
		return rep, fmt.Errorf("start the platform: %w", err)
	}
	defer p.Stop()
	transport := &http.Transport{Proxy: nil, DialContext: (&net.Dialer{Timeout: 5 * time.Second}).DialContext,
		MaxIdleConnsPerHost: 2 * cfg.Clients}
	defer transport.CloseIdleConnections()
	mc := p.Merchant
	mc.HTTPClient = &http.Client{Timeout: 2 * time.Minute, Transport: transport}
	sdk, err := apiclient.New(mc)
	if err != nil {
		return rep, err
	}
	run := randomHex(4)
	batch := func(b int) apiclient.CreatePayoutBatchRequest {
		req := apiclient.CreatePayoutBatchRequest{OutBatchNo: fmt.Sprintf("BP%s%05d", run, b), Items: make([]apiclient.PayoutItemRequest, cfg.Items)}
		for i := range req.Items {
			r := p.Recipients[(b*cfg.Items+i)%len(p.Recipients)]
			if cfg.OtherBankEvery > 0 && i%cfg.OtherBankEvery == cfg.OtherBankEvery-1 {
				r = apiclient.PayoutRecipient{Type: "CARD", CardNumber: p.OtherBank, Name: "王五"}
			}
			req.Items[i] = apiclient.PayoutItemRequest{OutDetailNo: fmt.Sprintf("%s-%04d", req.OutBatchNo, i), Amount: int64(100 + i%900), Recipient: r}
		}
		return req
	}
	reqs := make([]apiclient.CreatePayoutBatchRequest, cfg.Batches)
	for b := range reqs {
		reqs[b] = batch(b)
	}

	var (
		mu      sync.Mutex
		accept  Histogram
		items   Histogram
		failed  int
		firstEr error
	)
	next := make(chan int)
	start := time.Now()
	var wg sync.WaitGroup
	for range cfg.Clients {
		wg.Go(func() {
			for b := range next {
				t0 := time.Now()
				created, err := sdk.CreatePayoutBatch(ctx, reqs[b])
				took := time.Since(t0)
				if err == nil {
					err = waitFinished(ctx, sdk, created.ID)
				}
				var page apiclient.PayoutBatch
				var lat []time.Duration
				bad := 0
				for cursor := ""; err == nil; cursor = page.NextCursor {
					page, err = sdk.GetPayoutBatch(ctx, created.ID, apiclient.PayoutPage{Cursor: cursor, Limit: 1000})
					for _, it := range page.Items {
						if it.Status != "SUCCESS" {
							bad++
						}
						lat = append(lat, it.FinishTime.Sub(created.CreateTime))
					}
					if page.NextCursor == "" {
						break
					}
				}
				mu.Lock()
				if err != nil && firstEr == nil {
					firstEr = err
				}
				accept.Record(took)
				for _, d := range lat {
					items.Record(d)
				}
				failed += bad
				mu.Unlock()
			}
		})
	}
	for b := range reqs {
		select {
		case next <- b:
		case <-ctx.Done():
		}
	}
	close(next)
	wg.Wait()
	if firstEr != nil {
		return rep, firstEr
	}
	if err := ctx.Err(); err != nil {
		return rep, err
	}
	// The last batch's finish is seen within one poll (payoutPoll) of it.
	rep.Elapsed = time.Since(start)
	rep.AcceptP50, rep.AcceptP99 = accept.Quantile(0.5), accept.Quantile(0.99)
	rep.ItemP50, rep.ItemP99 = items.Quantile(0.5), items.Quantile(0.99)
	rep.Failed = failed
	return rep, nil
}

// waitFinished polls a batch until it is FINISHED.
func waitFinished(ctx context.Context, sdk *apiclient.Client, id string) error {
	t := time.NewTicker(payoutPoll)
	defer t.Stop()
	for {
		b, err := sdk.GetPayoutBatch(ctx, id, apiclient.PayoutPage{Limit: 1})
		if err != nil {
			return err
		}
		if b.Status == "FINISHED" {
			return nil
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-t.C:
		}
	}
}
