package payout_test

import (
	"context"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"pgregory.net/rapid"

	"paygate"
	"paygate/channel/sim"
	"paygate/customer"
	"paygate/ledger"
	"paygate/payout"
	"paygate/sealing"
	"paygate/store"
	"paygate/store/storetest"
)

// propertyChecks is how many runs TestPayoutProperties makes per store
// unless -rapid.checks or RAPID_CHECKS asks for another number.
const propertyChecks = "20"

// TestMain applies propertyChecks.
func TestMain(m *testing.M) {
	flag.Parse()
	set := false
	flag.Visit(func(f *flag.Flag) { set = set || f.Name == "rapid.checks" })
	if _, env := os.LookupEnv("RAPID_CHECKS"); !set && !env {
		if err := flag.Set("rapid.checks", propertyChecks); err != nil {
			panic(err)
		}
	}
	os.Exit(m.Run())
}

// TestPayoutProperties runs random sequences of batch submissions (lines
// to customers' accounts, own-bank cards, other banks' cards that succeed
// or are declined, bad lines, reused out_detail_no and out_batch_no,
// replays), workers running two at a time, rounds of the interbank
// channel's answers, and a recipient's card frozen and unfrozen. After
// every step: each accepted item has exactly one hold, resolved at most
// once and as its status says (pending while open, posted when SUCCESS,
// voided when FAILED); a REJECTED line holds nothing; the merchant's
// available balance is the funds less every item not FAILED; each batch's
// counters are its items' and it is FINISHED exactly when none is open;
// an out_detail_no is taken by at most one accepted item; the ledger
// balances. At the end every item is final.
func TestPayoutProperties(t *testing.T) {
	t.Parallel()
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		var run atomic.Int64
		rapid.Check(t, func(rt *rapid.T) {
			n := int(run.Add(1))
			ctx := context.Background()
			clock := paygate.NewManualClock(t0)
			led := ledger.New(db.Ledger(), clock, paygate.DefaultCalendar())
			kr, err := sealing.ParseKeyring("AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=")
			require.NoError(rt, err)
			idx, err := sealing.NewBlindIndex([]byte("a separate 32-byte blind index key!"))
			require.NoError(rt, err)
			log := slog.New(slog.NewTextHandler(io.Discard, nil))
			cus, err := customer.New(customer.Config{Store: db.Customers(), Books: led, Clock: clock, Keyring: kr, Index: idx,
				Verifier: customer.SimVerifier{}, Logger: log, Hash: customer.HashParams{Time: 1, Memory: 64, Threads: 1}})
			require.NoError(rt, err)
			channel, err := sim.NewPayouts(sim.PayoutConfig{Clock: clock, Delay: time.Second})
			require.NoError(rt, err)
			svc, err := payout.New(payout.Config{Store: db.Payouts(), Customers: cus, Books: led, Clock: clock, Keyring: kr,
				Logger: log, Payouts: channel, InterbankScenario: customer.SandboxInterbankOutcome,
				QueryInterval: time.Second, MaxQueryInterval: time.Second})
			require.NoError(rt, err)

			mch := paygate.Merchant{ID: fmt.Sprintf("mch_prop_%d_%s", n, paygate.NewID("")[24:]), Status: paygate.MerchantSandbox}
			const funds = 50_000
			_, err = led.CreateAccounts(ctx, []ledger.Account{ledger.SandboxFunding("CNY"), ledger.MerchantSettled(mch.ID, "CNY")})
			require.NoError(rt, err)
			_, err = led.CreateTransfers(ctx, []ledger.Transfer{{ID: "fund_" + mch.ID, DebitAccountID: ledger.SandboxFunding("CNY").ID,
				CreditAccountID: ledger.MerchantSettled(mch.ID, "CNY").ID, Amount: funds}})
			require.NoError(rt, err)
			phone := fmt.Sprintf("1380%03d%04d", n%1000, 1+n/1000%9999)
			c, err := cus.Register(ctx, customer.RegisterRequest{Phone: phone, Password: password})
			require.NoError(rt, err)
			c, err = cus.VerifyRealName(ctx, c.ID, aliceName, aliceID, phone)
			require.NoError(rt, err)
			cardNo := pan(customer.SandboxOwnBIN, 200_000+n)
			ownCard, err := cus.AddCard(ctx, customer.AddCardRequest{CustomerID: c.ID, Number: cardNo,
				Holder: customer.Holder{Name: aliceName, IDNumber: aliceID, Phone: phone}})
			require.NoError(rt, err)
			recipients := []payout.RecipientRequest{
				account(phone, ""), account(phone, aliceName), card(cardNo, aliceName), card(pan("621700", 300_000+n), "王五"),
				card(customer.SandboxDeclinedCard, "赵六"), card(cardNo, "王五"), account("13000000000", ""), card("6217000000000001", "王五"),
			}

			var reqs []payout.CreateBatchRequest // every request made, for replays
			check := func(rt *rapid.T) {
				rows, err := db.SQL.QueryContext(ctx, `SELECT i.id, i.batch_id, i.status, i.amount, i.out_detail_no,
					COALESCE(h.hold_status, ''), (SELECT COUNT(*) FROM ledger_transfers r WHERE r.pending_id = h.id)
					FROM payout_items i LEFT JOIN ledger_transfers h ON h.id = 'pout_hold_' || i.id WHERE i.mchid = $1`, mch.ID)
				require.NoError(rt, err)
				defer rows.Close()
				held := int64(0)
				type agg struct{ open, succ, fail int }
				batches := map[string]*agg{}
				taken := map[string]bool{}
				for rows.Next() {
					var id, batch, status, no, hold string
					var amount int64
					var resolutions int
					require.NoError(rt, rows.Scan(&id, &batch, &status, &amount, &no, &hold, &resolutions))
					a := batches[batch]
					if a == nil {
						a = &agg{}
						batches[batch] = a
					}
					want := map[payout.Status]string{payout.StatusRejected: "", payout.StatusPending: "pending",
						payout.StatusProcessing: "pending", payout.StatusSuccess: "posted", payout.StatusFailed: "voided"}[payout.Status(status)]
					require.Equal(rt, want, hold, "item %s %s", id, status)
					require.LessOrEqual(rt, resolutions, 1, "a hold is resolved at most once")
					require.Equal(rt, want == "posted" || want == "voided", resolutions == 1)
					switch payout.Status(status) {
					case payout.StatusRejected:
						continue
					case payout.StatusPending, payout.StatusProcessing:
						a.open++
					case payout.StatusSuccess:
						a.succ++
					case payout.StatusFailed:
						a.fail++
						continue
					}
					require.False(rt, taken[no], "out_detail_no %s taken twice", no)
					taken[no] = true
					held += amount
				}
				require.NoError(rt, rows.Err())
				acc, err := led.LookupAccounts(ctx, []string{ledger.MerchantSettled(mch.ID, "CNY").ID})
				require.NoError(rt, err)
				require.Equal(rt, funds-held, acc[0].Available(acc[0].Normal), "the balance is the funds less every item not failed")
				for id, a := range batches {
					b, err := db.Payouts().Batch(ctx, mch.ID, id)
					require.NoError(rt, err)
					require.Equal(rt, a.succ, b.SuccessCount, id)
					require.Equal(rt, a.fail, b.FailCount, id)
					require.Equal(rt, a.open, b.Open(), id)
					require.Equal(rt, a.open == 0, b.Status == payout.BatchFinished, id)
				}
				problems, err := db.LedgerCheck(ctx)
				require.NoError(rt, err)
				require.Empty(rt, problems)
			}

			rt.Repeat(map[string]func(*rapid.T){
				"submit": func(rt *rapid.T) {
					var req payout.CreateBatchRequest
					if len(reqs) > 0 && rapid.Bool().Draw(rt, "replay") {
						req = reqs[rapid.IntRange(0, len(reqs)-1).Draw(rt, "which")]
					} else {
						req.OutBatchNo = fmt.Sprintf("B%d", rapid.IntRange(0, 5).Draw(rt, "batch"))
						for range rapid.IntRange(1, 5).Draw(rt, "lines") {
							req.Items = append(req.Items, payout.ItemRequest{
								OutDetailNo: fmt.Sprintf("D%d", rapid.IntRange(0, 12).Draw(rt, "detail")),
								Amount:      rapid.Int64Range(-10, 6_000).Draw(rt, "amount"),
								Recipient:   recipients[rapid.IntRange(0, len(recipients)-1).Draw(rt, "recipient")]})
						}
					}
					reqs = append(reqs, req)
					_, _, err := svc.Submit(ctx, mch, req)
					switch paygate.CodeOf(err) {
					case "", paygate.CodeOutBatchNoUsed, paygate.CodeInsufficientFunds:
					default:
						rt.Fatalf("submit: %v", err)
					}
				},
				"process": func(rt *rapid.T) {
					limit := rapid.IntRange(1, 4).Draw(rt, "limit")
					var wg sync.WaitGroup
					errs := make([]error, 2)
					for i := range errs {
						wg.Go(func() { _, errs[i] = svc.Process(ctx, limit) })
					}
					wg.Wait()
					for _, err := range errs {
						require.NoError(rt, err)
					}
				},
				"channel": func(rt *rapid.T) {
					clock.Advance(time.Duration(rapid.IntRange(0, 2).Draw(rt, "seconds")) * time.Second)
					_, err := svc.Reconcile(ctx, 100)
					require.NoError(rt, err)
				},
				"freeze": func(rt *rapid.T) {
					st := customer.StatusFrozen
					if rapid.Bool().Draw(rt, "unfreeze") {
						st = customer.StatusActive
					}
					_, err := cus.SetCardStatus(ctx, c.ID, ownCard.ID, st)
					require.NoError(rt, err)
				},
				"": check,
			})

			// The end: every item final.
			for range 10 {
				_, err := svc.Process(ctx, 100)
				require.NoError(rt, err)
				clock.Advance(2 * time.Second)
				_, err = svc.Reconcile(ctx, 100)
				require.NoError(rt, err)
			}
			var open int
			require.NoError(rt, db.SQL.QueryRow(`SELECT COUNT(*) FROM payout_items WHERE mchid = $1 AND status IN ('PENDING', 'PROCESSING')`,
				mch.ID).Scan(&open))
			require.Zero(rt, open)
			check(rt)
		})
	})
}
