package ledger_test

import (
	"bufio"
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"paygate"
	"paygate/ledger"
	"paygate/store"
	"paygate/store/storetest"
)

// TestCrashLeavesLedgerBalanced kills (SIGKILL) a process in the middle of a
// concurrent load, twice, and checks after each restart that every invariant
// holds and the ledger still accepts work: a transaction either committed
// with all its postings or left no trace.
func TestCrashLeavesLedgerBalanced(t *testing.T) {
	t.Parallel()
	for _, d := range []store.Dialect{store.SQLite, store.Postgres} {
		t.Run(string(d), func(t *testing.T) {
			t.Parallel()
			url := storeURL(t, d)
			for round, after := range []int{3, 40} {
				cmd := exec.Command(os.Args[0], "-test.run=^TestCrashLoadHelper$", "-test.count=1")
				cmd.Env = append(os.Environ(), "PAYGATE_CRASH_DB="+url, fmt.Sprintf("PAYGATE_CRASH_ROUND=%d", round))
				out, err := cmd.StdoutPipe()
				require.NoError(t, err)
				cmd.Stderr = os.Stderr
				require.NoError(t, cmd.Start())
				sc := bufio.NewScanner(out)
				commits := 0
				for commits < after && sc.Scan() {
					if sc.Text() == "commit" {
						commits++
					}
				}
				require.Equal(t, after, commits, "the load process stopped early")
				require.NoError(t, cmd.Process.Kill()) // SIGKILL: no deferred code runs
				_ = cmd.Wait()

				db, err := store.Open(context.Background(), url, store.Options{})
				require.NoError(t, err)
				bad, err := db.LedgerCheck(context.Background())
				require.NoError(t, err)
				require.Empty(t, bad, "round %d", round)
				var durable int
				require.NoError(t, db.SQL.QueryRow(`SELECT COUNT(*) FROM ledger_transfers WHERE id LIKE $1`, fmt.Sprintf("r%d-%%-pay", round)).Scan(&durable))
				require.GreaterOrEqual(t, durable, after, "every journal reported committed survived the crash")
				// The ledger still works after the crash.
				l := ledger.New(db.Ledger(), paygate.SystemClock{}, paygate.DefaultCalendar())
				_, err = l.CreateTransfers(context.Background(), []ledger.Transfer{{ID: fmt.Sprintf("after-crash-%d", round), DebitAccountID: "bank", CreditAccountID: "c0", Amount: 1}})
				require.NoError(t, err)
				_, err = l.ExpireHolds(context.Background(), 1000)
				require.NoError(t, err)
				bad, err = db.LedgerCheck(context.Background())
				require.NoError(t, err)
				require.Empty(t, bad)
				db.Close()
			}
		})
	}
}

// storeURL is a fresh, migrated database URL with the crash test's accounts.
func storeURL(t *testing.T, d store.Dialect) string {
	u := storetest.URL(t, d)
	db, err := store.Open(context.Background(), u, store.Options{})
	require.NoError(t, err)
	defer db.Close()
	_, err = db.Migrate(context.Background())
	require.NoError(t, err)
	l := ledger.New(db.Ledger(), paygate.SystemClock{}, paygate.DefaultCalendar())
	accts := []ledger.Account{
		{ID: "bank", Currency: "CNY", Normal: ledger.Debit},
		{ID: "merchant", Currency: "CNY", Normal: ledger.Credit, Flags: ledger.DebitsMustNotExceedCredits},
		{ID: "fee", Currency: "CNY", Normal: ledger.Credit, Shards: 8},
	}
	for i := 0; i < 4; i++ {
		accts = append(accts, ledger.Account{ID: fmt.Sprint("c", i), Currency: "CNY", Normal: ledger.Credit, Flags: ledger.DebitsMustNotExceedCredits})
	}
	_, err = l.CreateAccounts(context.Background(), accts)
	require.NoError(t, err)
	for i := 0; i < 4; i++ {
		_, err := l.CreateTransfers(context.Background(), []ledger.Transfer{{ID: fmt.Sprint("fund", i), DebitAccountID: "bank", CreditAccountID: fmt.Sprint("c", i), Amount: 1 << 40}})
		require.NoError(t, err)
	}
	return u
}

// TestCrashLoadHelper is the process TestCrashLeavesLedgerBalanced kills. It
// runs only when PAYGATE_CRASH_DB is set, prints "commit" after every
// committed journal, and stops by itself after 60 s if nobody kills it.
func TestCrashLoadHelper(t *testing.T) {
	url := os.Getenv("PAYGATE_CRASH_DB")
	if url == "" {
		t.Skip("run by TestCrashLeavesLedgerBalanced")
	}
	round := os.Getenv("PAYGATE_CRASH_ROUND")
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	db, err := store.Open(ctx, url, store.Options{})
	require.NoError(t, err)
	l := ledger.New(db.Ledger(), paygate.SystemClock{}, paygate.DefaultCalendar())
	var mu sync.Mutex
	var wg sync.WaitGroup
	for w := 0; w < 8; w++ {
		wg.Add(1)
		go func(w int) {
			defer wg.Done()
			r := rand.New(rand.NewPCG(uint64(w), 7))
			var holds []string
			for i := 0; ctx.Err() == nil; i++ {
				id := fmt.Sprintf("r%s-w%d-%d", round, w, i)
				c := fmt.Sprint("c", r.IntN(4))
				amt := int64(1 + r.IntN(10_000))
				ts := []ledger.Transfer{
					{ID: id + "-pay", DebitAccountID: c, CreditAccountID: "merchant", Amount: amt},
					{ID: id + "-fee", DebitAccountID: "merchant", CreditAccountID: "fee", Amount: amt / 100},
					{ID: id + "-hold", DebitAccountID: c, CreditAccountID: "merchant", Amount: amt, Flags: ledger.Pending, Timeout: time.Hour},
				}
				if ts[1].Amount == 0 {
					ts = append(ts[:1], ts[2:]...)
				}
				if len(holds) > 0 {
					ts = append(ts, ledger.Transfer{ID: id + "-post", PendingID: holds[0], Flags: ledger.PostPending, Amount: 1})
					holds = holds[1:]
				}
				if _, err := l.CreateTransfers(ctx, ts); err != nil {
					if ctx.Err() != nil {
						return
					}
					panic(err)
				}
				holds = append(holds, id+"-hold")
				mu.Lock()
				fmt.Println("commit")
				mu.Unlock()
			}
		}(w)
	}
	wg.Wait()
}
