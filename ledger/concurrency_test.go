package ledger_test

import (
	"context"
	"fmt"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"paygate"
	"paygate/ledger"
	"paygate/store"
	"paygate/store/storetest"
)

// expectedRejections are the business outcomes a random workload may meet;
// anything else (internal errors, deadlocks that escaped retry) fails.
var expectedRejections = map[paygate.Code]bool{
	paygate.CodeInsufficientFunds: true,
	paygate.CodeLimitExceeded:     true,
	paygate.CodeAlreadyResolved:   true,
	paygate.CodeHoldExpired:       true,
}

// TestConcurrentBank hammers a few hot accounts from 32 goroutines with
// thousands of mixed transfers, journals, holds, posts, voids, expiries and
// duplicate submissions of the same ids, then checks every invariant.
func TestConcurrentBank(t *testing.T) {
	t.Parallel()
	const workers, opsPerWorker = 32, 125
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		clock := paygate.NewManualClock(t0)
		l := ledger.New(db.Ledger(), clock, paygate.DefaultCalendar())
		accts := []ledger.Account{
			{ID: "bank", Currency: "CNY", Normal: ledger.Debit},
			{ID: "fee", Currency: "CNY", Normal: ledger.Credit, Shards: 8},
			{ID: "merchant", Currency: "CNY", Normal: ledger.Credit, Flags: ledger.DebitsMustNotExceedCredits},
			{ID: "capped", Currency: "CNY", Normal: ledger.Debit, Flags: ledger.CreditsMustNotExceedDebits},
			{ID: "pool", Currency: "CNY", Normal: ledger.Credit, Flags: ledger.DebitsMustNotExceedCredits, Shards: 4},
		}
		customers := []string{"c0", "c1", "c2", "c3"}
		for _, c := range customers {
			accts = append(accts, ledger.Account{ID: c, Currency: "CNY", Normal: ledger.Credit, Flags: ledger.DebitsMustNotExceedCredits})
		}
		_, err := l.CreateAccounts(ctx, accts)
		require.NoError(t, err)
		var created, existed atomic.Int64
		var mu sync.Mutex
		holds := []string{}
		applied := map[string]int{} // id -> times reported as newly created
		record := func(res []ledger.Result) {
			mu.Lock()
			defer mu.Unlock()
			for _, r := range res {
				if r.Existed {
					existed.Add(1)
				} else {
					created.Add(1)
					applied[r.ID]++
					if r.Flags&ledger.Pending != 0 {
						holds = append(holds, r.ID)
					}
				}
			}
		}
		submit := func(ts ...ledger.Transfer) error {
			res, err := l.CreateTransfers(ctx, ts)
			if err != nil {
				if !expectedRejections[paygate.CodeOf(err)] {
					return err
				}
				return nil
			}
			record(res)
			return nil
		}
		for _, c := range customers {
			require.NoError(t, submit(ledger.Transfer{ID: "fund-" + c, DebitAccountID: "bank", CreditAccountID: c, Amount: 50_000}))
		}
		pickHold := func(r *rand.Rand) string {
			mu.Lock()
			defer mu.Unlock()
			if len(holds) == 0 {
				return ""
			}
			return holds[r.IntN(len(holds))]
		}

		stop := make(chan struct{})
		expiryDone := make(chan error, 1)
		go func() { // the expiry job, with time moving on
			for {
				select {
				case <-stop:
					expiryDone <- nil
					return
				default:
				}
				clock.Advance(time.Second)
				if _, err := l.ExpireHolds(ctx, 50); err != nil {
					expiryDone <- err
					return
				}
			}
		}()

		var wg sync.WaitGroup
		errs := make(chan error, workers)
		for w := 0; w < workers; w++ {
			wg.Add(1)
			go func(w int) {
				defer wg.Done()
				r := rand.New(rand.NewPCG(uint64(w/2), 42)) // twins draw the same operations
				for i := 0; i < opsPerWorker; i++ {
					cust := customers[r.IntN(len(customers))]
					amt := int64(1 + r.IntN(2_000))
					// Ids collide on purpose across pairs of workers: the
					// same logical operation is submitted twice.
					id := fmt.Sprintf("w%d-%d", w/2, i)
					var err error
					switch r.IntN(7) {
					case 0, 1: // a payment: customer -> merchant, merchant -> fee
						fee := amt/100 + 1
						err = submit(
							ledger.Transfer{ID: id + "-pay", DebitAccountID: cust, CreditAccountID: "merchant", Amount: amt},
							ledger.Transfer{ID: id + "-fee", DebitAccountID: "merchant", CreditAccountID: "fee", Amount: fee},
						)
					case 2: // a hold, expiring soon or never
						timeout := time.Duration(r.IntN(3)) * time.Second
						err = submit(ledger.Transfer{ID: id + "-hold", DebitAccountID: cust, CreditAccountID: "merchant", Amount: amt, Flags: ledger.Pending, Timeout: timeout})
					case 3: // post part of a hold, or void it
						h := pickHold(r)
						if h == "" {
							continue
						}
						tr := ledger.Transfer{ID: id + "-res", PendingID: h, Flags: ledger.VoidPending}
						if r.IntN(2) == 0 {
							tr.Flags, tr.Amount = ledger.PostPending, int64(1+r.IntN(5))
						}
						err = submit(tr)
						if paygate.HasCode(err, paygate.CodeIDConflict) {
							err = nil // the twin worker resolved a different hold with this id
						}
					case 4: // refunds back to customers, from the merchant
						err = submit(ledger.Transfer{ID: id + "-rfd", DebitAccountID: "merchant", CreditAccountID: cust, Amount: amt / 2})
					case 5: // pool in and out (sharded account with a limit)
						if r.IntN(2) == 0 {
							err = submit(ledger.Transfer{ID: id + "-pin", DebitAccountID: cust, CreditAccountID: "pool", Amount: amt})
						} else {
							err = submit(ledger.Transfer{ID: id + "-pout", DebitAccountID: "pool", CreditAccountID: cust, Amount: amt})
						}
					case 6: // into the capped account, which refuses credits beyond its debits
						err = submit(ledger.Transfer{ID: id + "-cap", DebitAccountID: "bank", CreditAccountID: "capped", Amount: amt})
					}
					if err != nil && !paygate.HasCode(err, paygate.CodeIDConflict) {
						errs <- fmt.Errorf("worker %d op %d: %w", w, i, err)
						return
					}
				}
			}(w)
		}
		wg.Wait()
		close(stop)
		require.NoError(t, <-expiryDone)
		close(errs)
		for err := range errs {
			require.NoError(t, err)
		}

		// No id was applied twice, and the database agrees.
		for id, n := range applied {
			require.Equal(t, 1, n, "transfer %s applied %d times", id, n)
		}
		var rows int64
		require.NoError(t, db.SQL.QueryRow(`SELECT COUNT(*) FROM ledger_transfers WHERE id NOT LIKE 'expire_%'`).Scan(&rows))
		require.Equal(t, created.Load(), rows)
		require.Positive(t, existed.Load(), "duplicate submissions were answered idempotently")
		t.Logf("%d transfers created, %d duplicates answered idempotently", created.Load(), existed.Load())

		bad, err := db.LedgerCheck(ctx)
		require.NoError(t, err)
		require.Empty(t, bad)
	})
}
