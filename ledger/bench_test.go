package ledger_test

import (
	"context"
	"fmt"
	"runtime"
	"sync/atomic"
	"testing"

	"paygate"
	"paygate/ledger"
	"paygate/store"
	"paygate/store/storetest"
)

// benchParallelism × GOMAXPROCS goroutines submit at once: 16 on the
// 2-core machines these figures are recorded on (docs/BENCHMARKS.md).
const benchParallelism = 8

// benchRun counts benchmark invocations, so each gets fresh account ids.
var benchRun atomic.Int64

// benchLedger is one benchmark invocation's ledger and accounts: a funding
// account, a platform fee account with the given shards, and per goroutine
// its own no-overdraft customer and merchant, so that the fee account is
// the only account goroutines share.
type benchLedger struct {
	l         *ledger.Ledger
	prefix    string
	fee       string
	customers []string
	merchants []string
	next      atomic.Int64 // goroutine index
}

func newBenchLedger(b *testing.B, db *store.DB, feeShards int) *benchLedger {
	b.Helper()
	ctx := context.Background()
	n := benchParallelism * runtime.GOMAXPROCS(0) // one customer and merchant per goroutine
	bl := &benchLedger{
		l:      ledger.New(db.Ledger(), paygate.SystemClock{}, paygate.DefaultCalendar()),
		prefix: fmt.Sprintf("b%d_", benchRun.Add(1)),
	}
	bl.fee = bl.prefix + "fee"
	funding := bl.prefix + "funding"
	accts := []ledger.Account{
		{ID: funding, Currency: "CNY", Code: 1000, Normal: ledger.Debit},
		{ID: bl.fee, Currency: "CNY", Code: 4001, Normal: ledger.Credit, Shards: feeShards},
	}
	var fund []ledger.Transfer
	for i := range n {
		c, m := fmt.Sprintf("%scust%d", bl.prefix, i), fmt.Sprintf("%smerch%d", bl.prefix, i)
		bl.customers, bl.merchants = append(bl.customers, c), append(bl.merchants, m)
		accts = append(accts,
			ledger.Account{ID: c, Currency: "CNY", Code: 2001, Normal: ledger.Credit, Flags: ledger.DebitsMustNotExceedCredits},
			ledger.Account{ID: m, Currency: "CNY", Code: 2101, Normal: ledger.Credit})
		fund = append(fund, ledger.Transfer{ID: bl.prefix + "fund" + fmt.Sprint(i), DebitAccountID: funding, CreditAccountID: c, Amount: 1 << 50, Code: 1})
	}
	if _, err := bl.l.CreateAccounts(ctx, accts); err != nil {
		b.Fatal(err)
	}
	if _, err := bl.l.CreateTransfers(ctx, fund); err != nil {
		b.Fatal(err)
	}
	return bl
}

// journal returns one payment: customer → merchant for the amount, and for
// the single-transfer benchmark the customer pays the fee account directly.
func (bl *benchLedger) journal(g int, i int64, linked bool) []ledger.Transfer {
	amount := 100 + i%99_900
	fee := max(1, amount*6/1000)
	c, m := bl.customers[g], bl.merchants[g]
	id := fmt.Sprintf("%s%d_%d", bl.prefix, g, i)
	if !linked {
		return []ledger.Transfer{{ID: id, DebitAccountID: c, CreditAccountID: bl.fee, Amount: fee, Code: 2}}
	}
	return []ledger.Transfer{
		{ID: id + "p", DebitAccountID: c, CreditAccountID: m, Amount: amount, Code: 1, Ref: id},
		{ID: id + "f", DebitAccountID: m, CreditAccountID: bl.fee, Amount: fee, Code: 2, Ref: id},
	}
}

// benchTransfers runs CreateTransfers from benchParallelism × GOMAXPROCS
// goroutines on both stores with the fee account in 1 and in 16 shards,
// and reports transfers/s. linked selects the two-transfer payment journal.
func benchTransfers(b *testing.B, linked bool) {
	perOp := 1
	if linked {
		perOp = 2
	}
	for _, d := range []store.Dialect{store.SQLite, store.Postgres} {
		b.Run(string(d), func(b *testing.B) {
			db := storetest.Open(b, d)
			for _, shards := range []int{1, 16} {
				b.Run(fmt.Sprintf("fee_shards=%d", shards), func(b *testing.B) {
					bl := newBenchLedger(b, db, shards)
					ctx := context.Background()
					b.SetParallelism(benchParallelism)
					b.ResetTimer()
					b.RunParallel(func(pb *testing.PB) {
						g := int(bl.next.Add(1) - 1)
						var i int64
						for pb.Next() {
							i++
							if _, err := bl.l.CreateTransfers(ctx, bl.journal(g, i, linked)); err != nil {
								b.Error(err)
								return
							}
						}
					})
					b.ReportMetric(float64(b.N*perOp)/b.Elapsed().Seconds(), "transfers/s")
				})
			}
		})
	}
}

// BenchmarkSingleTransfer submits one transfer per call: a customer pays
// the (possibly sharded) platform fee account.
func BenchmarkSingleTransfer(b *testing.B) { benchTransfers(b, false) }

// BenchmarkPaymentJournal submits a linked payment journal per call:
// customer → merchant for the amount, merchant → platform fee for the fee.
func BenchmarkPaymentJournal(b *testing.B) { benchTransfers(b, true) }
