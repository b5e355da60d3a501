package bench

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"fmt"
	"hash/fnv"
	"io"
	mrand "math/rand/v2"
	"sync"
	"time"

	"paygate"
	"paygate/ledger"
	"paygate/store"
)

// Account codes of the accounts the load creates.
const (
	codeFunding    = 1000 // bank clearing (asset, debit-normal): funds the customers
	codeCustomer   = 2001 // customer deposit (liability, no overdraft)
	codeMerchant   = 2101 // merchant pending settlement (liability)
	codeFeeIncome  = 4001 // platform fee income (credit-normal, the hot account)
	codePayment    = 1    // transfer code: customer pays merchant
	codeFee        = 2    // transfer code: merchant pays the platform fee
	currency       = paygate.Currency("CNY")
	customersEach  = 4                 // customer accounts per client
	merchantsEach  = 2                 // merchant accounts per client
	customerFunds  = 1_000_000_000_000 // minor units credited to each customer up front
	warmupJournals = 20                // per client, before measuring
)

// accountSet is one workload's accounts: each client has its own customers
// and merchants, so that the fee account is the only one clients share.
type accountSet struct {
	funding, fee string
	customers    []string
	merchants    []string
	feeShards    int
}

func newAccountSet(prefix string, clients, feeShards int) accountSet {
	s := accountSet{funding: prefix + "funding", fee: prefix + "fee", feeShards: feeShards}
	for i := range clients * customersEach {
		s.customers = append(s.customers, fmt.Sprintf("%scust_%04d", prefix, i))
	}
	for i := range clients * merchantsEach {
		s.merchants = append(s.merchants, fmt.Sprintf("%smerch_%04d", prefix, i))
	}
	return s
}

func (s accountSet) accounts() []ledger.Account {
	as := []ledger.Account{
		{ID: s.funding, Currency: currency, Code: codeFunding, Owner: "bench", Normal: ledger.Debit},
		{ID: s.fee, Currency: currency, Code: codeFeeIncome, Owner: "bench", Normal: ledger.Credit, Shards: s.feeShards},
	}
	for _, id := range s.customers {
		as = append(as, ledger.Account{ID: id, Currency: currency, Code: codeCustomer, Owner: id, Normal: ledger.Credit, Flags: ledger.DebitsMustNotExceedCredits})
	}
	for _, id := range s.merchants {
		as = append(as, ledger.Account{ID: id, Currency: currency, Code: codeMerchant, Owner: id, Normal: ledger.Credit})
	}
	return as
}

// setup creates the set's accounts and funds its customers, through the
// ledger (this is not measured).
func (s accountSet) setup(ctx context.Context, l *ledger.Ledger, prefix string) error {
	as := s.accounts()
	for len(as) > 0 {
		n := min(len(as), ledger.MaxBatch)
		if _, err := l.CreateAccounts(ctx, as[:n]); err != nil {
			return fmt.Errorf("create accounts: %w", err)
		}
		as = as[n:]
	}
	var ts []ledger.Transfer
	for i, c := range s.customers {
		ts = append(ts, ledger.Transfer{ID: fmt.Sprintf("%sfund_%04d", prefix, i), DebitAccountID: s.funding, CreditAccountID: c, Amount: customerFunds, Code: codePayment})
	}
	for len(ts) > 0 {
		n := min(len(ts), ledger.MaxBatch)
		if _, err := l.CreateTransfers(ctx, ts[:n]); err != nil {
			return fmt.Errorf("fund customers: %w", err)
		}
		ts = ts[n:]
	}
	return nil
}

// client is one load-generating goroutine's state.
type client struct {
	set       accountSet
	customers []string
	merchants []string
	rng       *mrand.Rand
	i         int
}

// clients returns the state of clients 0 to n-1.
func (s accountSet) clients(n int) []*client {
	cs := make([]*client, n)
	for k := range cs {
		cs[k] = s.client(k)
	}
	return cs
}

func (s accountSet) client(k int) *client {
	return &client{
		set:       s,
		customers: s.customers[k*customersEach : (k+1)*customersEach],
		merchants: s.merchants[k*merchantsEach : (k+1)*merchantsEach],
		rng:       mrand.New(mrand.NewPCG(uint64(k), uint64(time.Now().UnixNano()))),
	}
}

// payment is one payment journal's parameters.
type payment struct {
	customer, merchant string
	payID, feeID, ref  string
	amount, fee        int64
}

// next draws the client's next payment: 1.00 to 1000.00 CNY, fee 0.6%.
func (c *client) next() payment {
	c.i++
	amount := 100 + c.rng.Int64N(99_901)
	return payment{
		customer: c.customers[c.i%len(c.customers)],
		merchant: c.merchants[c.i%len(c.merchants)],
		payID:    paygate.NewID(paygate.PrefixTransfer),
		feeID:    paygate.NewID(paygate.PrefixTransfer),
		ref:      paygate.NewID(paygate.PrefixOrder),
		amount:   amount,
		fee:      max(1, amount*6/1000),
	}
}

// workload runs one payment journal for a client.
type workload func(ctx context.Context, c *client) error

func ledgerWorkload(l *ledger.Ledger) workload {
	return func(ctx context.Context, c *client) error {
		p := c.next()
		_, err := l.CreateTransfers(ctx, []ledger.Transfer{
			{ID: p.payID, DebitAccountID: p.customer, CreditAccountID: p.merchant, Amount: p.amount, Currency: currency, Code: codePayment, Ref: p.ref},
			{ID: p.feeID, DebitAccountID: p.merchant, CreditAccountID: c.set.fee, Amount: p.fee, Currency: currency, Code: codeFee, Ref: p.ref},
		})
		return err
	}
}

// The raw baseline: the rows one payment journal writes, in plain SQL with
// no ledger logic (no idempotency look-up, no locking read, no limit
// checks): one multi-row INSERT of the two transfers and one UPDATE of the
// three balance rows, in one transaction.
const (
	rawInsert = `INSERT INTO ledger_transfers (id, debit_account_id, credit_account_id, debit_shard, credit_shard,
		amount, currency, kind, flags, pending_id, timeout_s, expires_at, hold_status, code, ref, accounting_date, created_at)
		VALUES ($1, $2, $3, 0, 0, $4, $5, 'single', 0, NULL, 0, NULL, NULL, $6, $7, $8, $9),
		($10, $3, $11, 0, $12, $13, $5, 'single', 0, NULL, 0, NULL, NULL, $14, $7, $8, $9)
		ON CONFLICT (id) DO NOTHING`
	rawUpdate = `UPDATE ledger_balances SET debits_posted = debits_posted + v.column3, credits_posted = credits_posted + v.column4
		FROM (VALUES ($1, CAST(0 AS INTEGER), CAST($2 AS BIGINT), CAST(0 AS BIGINT)),
			($3, CAST(0 AS INTEGER), CAST($4 AS BIGINT), CAST($5 AS BIGINT)),
			($6, CAST($7 AS INTEGER), CAST(0 AS BIGINT), CAST($8 AS BIGINT))) AS v
		WHERE ledger_balances.account_id = v.column1 AND ledger_balances.shard = v.column2`
)

func rawWorkload(db *sql.DB, cal paygate.Calendar) workload {
	return func(ctx context.Context, c *client) error {
		p := c.next()
		now := time.Now().UTC()
		date := string(cal.AccountingDate(now))
		shard := shardOf(p.feeID, c.set.feeShards)
		tx, err := db.BeginTx(ctx, nil)
		if err != nil {
			return err
		}
		defer tx.Rollback() //nolint:errcheck // a no-op after Commit
		if _, err := tx.ExecContext(ctx, rawInsert, p.payID, p.customer, p.merchant, p.amount, string(currency), codePayment, p.ref, date, now.UnixMicro(),
			p.feeID, c.set.fee, shard, p.fee, codeFee); err != nil {
			return err
		}
		if _, err := tx.ExecContext(ctx, rawUpdate, p.customer, p.amount, p.merchant, p.fee, p.amount, c.set.fee, shard, p.fee); err != nil {
			return err
		}
		return tx.Commit()
	}
}

// shardOf picks the fee shard the way the ledger does: FNV-1a of the
// transfer id modulo the shard count.
func shardOf(id string, n int) int {
	if n <= 1 {
		return 0
	}
	h := fnv.New32a()
	h.Write([]byte(id))
	return int(h.Sum32() % uint32(n))
}

// slice is how long one workload runs at one client count before the next
// takes over. A run interleaves every (client count, workload) pair in
// slices, round after round, so that all figures, and so both ratios the
// goals are about, see the same background load on a shared machine.
const slice = 500 * time.Millisecond

// tally accumulates one workload's slices at one client count.
type tally struct {
	hist     Histogram
	journals int64
	elapsed  time.Duration
}

func (t *tally) measure() Measure {
	return Measure{Journals: t.journals, Transfers: 2 * t.journals, Elapsed: t.elapsed,
		P50: t.hist.Quantile(0.50), P99: t.hist.Quantile(0.99)}
}

// steps runs each client count of both workloads for d in total, in
// interleaved slices: round r visits the client counts starting from the
// r-th, and alternates which workload goes first.
func steps(ctx context.Context, counts []int, d time.Duration, ledgerSet, rawSet accountSet, ledgerW, rawW workload, progress func(round, rounds int)) ([]Step, error) {
	rounds := max(1, int((d+slice-1)/slice))
	type pair struct {
		ledger, raw tally
		lcs, rcs    []*client
	}
	ps := make([]pair, len(counts))
	for i, n := range counts {
		ps[i].lcs, ps[i].rcs = ledgerSet.clients(n), rawSet.clients(n)
	}
	for r := range rounds {
		part := d / time.Duration(rounds)
		if r == rounds-1 {
			part = d - part*time.Duration(rounds-1)
		}
		for j := range counts {
			i := (j + r) % len(counts)
			p := &ps[i]
			order := []bool{true, false} // ledger first
			if (r+j)%2 == 1 {
				order = []bool{false, true}
			}
			for _, isLedger := range order {
				var err error
				if isLedger {
					err = run(ctx, p.lcs, part, ledgerW, &p.ledger)
				} else {
					err = run(ctx, p.rcs, part, rawW, &p.raw)
				}
				if err != nil {
					name := "raw"
					if isLedger {
						name = "ledger"
					}
					return nil, fmt.Errorf("%s, %d clients: %w", name, counts[i], err)
				}
			}
		}
		progress(r+1, rounds)
	}
	out := make([]Step, len(counts))
	for i, n := range counts {
		out[i] = Step{Clients: n, Ledger: ps[i].ledger.measure(), Raw: ps[i].raw.measure()}
	}
	return out, nil
}

// run drives the clients with w for d and adds what they achieved to t.
// Each client issues journals back to back until d has passed; the run
// ends when the last in-flight journal completes.
func run(ctx context.Context, clients []*client, d time.Duration, w workload, t *tally) error {
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	n := len(clients)
	hists := make([]Histogram, n)
	counts := make([]int64, n)
	var wg sync.WaitGroup
	start := time.Now()
	deadline := start.Add(d)
	for k, c := range clients {
		wg.Go(func() {
			for ctx.Err() == nil {
				t0 := time.Now()
				if !t0.Before(deadline) {
					return
				}
				if err := w(ctx, c); err != nil {
					cancel(err)
					return
				}
				hists[k].Record(time.Since(t0))
				counts[k]++
			}
		})
	}
	wg.Wait()
	t.elapsed += time.Since(start)
	if err := context.Cause(ctx); err != nil {
		return err
	}
	for k := range n {
		t.hist.Merge(&hists[k])
		t.journals += counts[k]
	}
	return nil
}

// warm runs n journals on each of the clients, unmeasured, so that every
// pooled connection has its statements prepared and the ledger has every
// account in its cache before the first measured slice.
func warm(ctx context.Context, set accountSet, clients, n int, w workload) error {
	var wg sync.WaitGroup
	errs := make([]error, clients)
	for k := range clients {
		c := set.client(k)
		wg.Go(func() {
			for range n {
				if errs[k] = w(ctx, c); errs[k] != nil {
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

// runDatabase runs every step on one database.
func runDatabase(ctx context.Context, cfg LedgerConfig, rawURL string, progress io.Writer) (DatabaseReport, error) {
	db, err := store.Open(ctx, rawURL, store.Options{MaxOpenConns: cfg.MaxOpenConns})
	if err != nil {
		return DatabaseReport{}, err
	}
	defer db.Close()
	if _, err := db.Migrate(ctx); err != nil {
		return DatabaseReport{}, err
	}
	rep := DatabaseReport{URL: redact(rawURL), Dialect: db.Dialect, FeeShards: cfg.FeeShards}

	// A fresh, uniquely named set of accounts per run and workload: the
	// database may be a user's, so nothing is dropped or reset.
	prefix := "bench_" + randomHex(6) + "_"
	maxClients := 0
	for _, n := range cfg.Clients {
		maxClients = max(maxClients, n)
	}
	cal := paygate.DefaultCalendar()
	l := ledger.New(db.Ledger(), paygate.SystemClock{}, cal)
	ledgerSet := newAccountSet(prefix+"l_", maxClients, cfg.FeeShards)
	rawSet := newAccountSet(prefix+"r_", maxClients, cfg.FeeShards)
	fmt.Fprintf(progress, "%s: creating %d accounts under prefix %s\n", db.Dialect, len(ledgerSet.accounts())+len(rawSet.accounts()), prefix)
	if err := ledgerSet.setup(ctx, l, prefix+"l_"); err != nil {
		return rep, err
	}
	if err := rawSet.setup(ctx, l, prefix+"r_"); err != nil {
		return rep, err
	}
	ledgerW, rawW := ledgerWorkload(l), rawWorkload(db.SQL, cal)
	if err := warm(ctx, ledgerSet, maxClients, warmupJournals, ledgerW); err != nil {
		return rep, fmt.Errorf("ledger warm-up: %w", err)
	}
	if err := warm(ctx, rawSet, maxClients, warmupJournals, rawW); err != nil {
		return rep, fmt.Errorf("raw warm-up: %w", err)
	}

	total := time.Duration(2*len(cfg.Clients)) * cfg.Duration
	fmt.Fprintf(progress, "%s: measuring for %s in %s slices\n", db.Dialect, total, slice)
	rep.Steps, err = steps(ctx, cfg.Clients, cfg.Duration, ledgerSet, rawSet, ledgerW, rawW, func(r, rounds int) {
		if r%10 == 0 && r < rounds {
			fmt.Fprintf(progress, "%s: round %d of %d\n", db.Dialect, r, rounds)
		}
	})
	if err != nil {
		return rep, err
	}
	rep.Balanced, err = balanced(ctx, db.SQL, prefix)
	return rep, err
}

// balanced reports whether the accounts named with prefix sum to zero per
// currency, posted and pending: every transfer of the run stays among them.
func balanced(ctx context.Context, db *sql.DB, prefix string) (bool, error) {
	rows, err := db.QueryContext(ctx, `SELECT a.currency,
		CAST(SUM(b.debits_posted) AS BIGINT), CAST(SUM(b.credits_posted) AS BIGINT),
		CAST(SUM(b.debits_pending) AS BIGINT), CAST(SUM(b.credits_pending) AS BIGINT)
		FROM ledger_accounts a JOIN ledger_balances b ON b.account_id = a.id
		WHERE substr(a.id, 1, CAST($2 AS INTEGER)) = $1 GROUP BY a.currency`, prefix, len(prefix))
	if err != nil {
		return false, err
	}
	defer rows.Close()
	ok, any := true, false
	for rows.Next() {
		var cur string
		var dp, cp, dq, cq int64
		if err := rows.Scan(&cur, &dp, &cp, &dq, &cq); err != nil {
			return false, err
		}
		any = true
		ok = ok && dp == cp && dq == cq
	}
	return ok && any, rows.Err()
}

func randomHex(n int) string {
	b := make([]byte, n)
	rand.Read(b)
	return hex.EncodeToString(b)
}
