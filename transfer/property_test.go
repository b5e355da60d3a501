package transfer_test

import (
	"context"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"pgregory.net/rapid"

	"paygate"
	"paygate/channel/sim"
	"paygate/customer"
	"paygate/ledger"
	"paygate/store"
	"paygate/store/storetest"
	"paygate/transfer"
)

// propertyChecks is how many runs TestTransferProperties makes per store
// unless -rapid.checks or RAPID_CHECKS asks for another number: each run is
// a few dozen committed transactions, and under the race detector SQLite's
// cost about 15 ms each (100 runs took three minutes).
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

// TestTransferProperties runs random sequences of transfers between three
// unverified customers (daily limit ¥1,000.00) — to a phone, to an
// own-bank card, to other banks' cards that succeed or are declined —,
// replays of earlier requests, reuses of request ids with other amounts,
// and rounds of the interbank channel's answers, against a model of the
// balances and the limit usage. After every step every balance and usage
// is the model's; at the end of a run every transfer is final and the
// ledger balances (db.LedgerCheck).
func TestTransferProperties(t *testing.T) {
	t.Parallel()
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		var run atomic.Int64
		rapid.Check(t, func(rt *rapid.T) {
			n := int(run.Add(1))
			ctx := context.Background()
			clock := paygate.NewManualClock(t0)
			led := ledger.New(db.Ledger(), clock, paygate.DefaultCalendar())
			kr, idx := testKeys(t)
			log := slog.New(slog.NewTextHandler(io.Discard, nil))
			cus, err := customer.New(customer.Config{Store: db.Customers(), Books: led, Clock: clock, Keyring: kr, Index: idx,
				Verifier: customer.SimVerifier{}, Logger: log, Hash: customer.HashParams{Time: 1, Memory: 64, Threads: 1}})
			require.NoError(rt, err)
			payouts, err := sim.NewPayouts(sim.PayoutConfig{Clock: clock, Delay: time.Second})
			require.NoError(rt, err)
			svc, err := transfer.New(transfer.Config{Store: db.Transfers(), Customers: cus, Books: led, Clock: clock, Keyring: kr,
				Logger: log, Payouts: payouts, InterbankScenario: customer.SandboxInterbankOutcome,
				QueryInterval: time.Second, MaxQueryInterval: time.Second})
			require.NoError(rt, err)
			_, err = led.CreateAccounts(ctx, []ledger.Account{ledger.SandboxFunding("CNY")})
			require.NoError(rt, err)

			// Three customers, each with ¥600.00 and a payment password;
			// the first has an own-bank card.
			type party struct {
				c     customer.Customer
				phone string
			}
			var ps []party
			for i := range 3 {
				phone := fmt.Sprintf("1390%03d%04d", n%1000, i)
				c, err := cus.Register(ctx, customer.RegisterRequest{Phone: phone, Password: password})
				require.NoError(rt, err)
				_, err = cus.SetPayPassword(ctx, c.ID, password, pin)
				require.NoError(rt, err)
				_, err = led.CreateTransfers(ctx, []ledger.Transfer{{ID: "fund_" + c.ID, DebitAccountID: ledger.SandboxFunding("CNY").ID,
					CreditAccountID: cus.BalanceAccount(c.ID), Amount: 60_000}})
				require.NoError(rt, err)
				ps = append(ps, party{c: c, phone: phone})
			}
			cardNo := pan(customer.SandboxOwnBIN, 100_000+n)
			card, err := cus.AddCard(ctx, customer.AddCardRequest{CustomerID: ps[0].c.ID, Number: cardNo,
				Holder: customer.Holder{Name: aliceName, IDNumber: aliceID, Phone: ps[0].phone}})
			require.NoError(rt, err)

			// The model.
			bal := map[string]int64{}   // balance account or card → available
			usage := map[string]int64{} // customer → today's transfer usage
			for _, p := range ps {
				bal[p.c.ID] = 60_000
			}
			type sent struct {
				from int
				req  transfer.Request
				id   string
			}
			var done []sent
			processing := map[string]sent{} // PROCESSING transfers by id
			declined := map[string]bool{}
			seq := 0

			send := func(rt *rapid.T, from int, to string, amount int64, recipient string, otherBank, declines bool) {
				seq++
				r := transfer.Request{RequestID: fmt.Sprintf("p%d_%d", n, seq), To: to, Amount: cny(amount), PayPassword: pin}
				tr, err := svc.Send(ctx, ps[from].c.ID, r)
				id := ps[from].c.ID
				switch {
				case usage[id]+amount > 100_000:
					require.Equal(rt, paygate.CodeLimitExceeded, paygate.CodeOf(err), "%v", err)
					return
				case amount > bal[id]:
					require.Equal(rt, paygate.CodeInsufficientFunds, paygate.CodeOf(err), "%v", err)
					return
				}
				require.NoError(rt, err)
				usage[id] += amount
				bal[id] -= amount
				done = append(done, sent{from: from, req: r, id: tr.ID})
				if otherBank {
					require.Equal(rt, transfer.StatusProcessing, tr.Status)
					processing[tr.ID] = done[len(done)-1]
					declined[tr.ID] = declines
					return
				}
				require.Equal(rt, transfer.StatusSuccess, tr.Status)
				bal[recipient] += amount
			}
			check := func(rt *rapid.T) {
				for _, p := range ps {
					m, err := cus.Balance(ctx, p.c.ID)
					require.NoError(rt, err)
					require.Equal(rt, bal[p.c.ID], m.Amount, "balance of %s", p.phone)
					u, err := cus.UsageOn(ctx, p.c.ID, "", customer.MethodTransfer, day0)
					require.NoError(rt, err)
					require.Equal(rt, usage[p.c.ID], u.Customer)
					require.Equal(rt, usage[p.c.ID], u.Method)
				}
				m, err := cus.CardBalance(ctx, ps[0].c.ID, card.ID)
				require.NoError(rt, err)
				require.Equal(rt, bal[card.ID], m.Amount)
			}
			settle := func(rt *rapid.T) {
				clock.Advance(2 * time.Second)
				for {
					k, err := svc.Reconcile(ctx, 100)
					require.NoError(rt, err)
					if k == 0 {
						break
					}
				}
				for id, s := range processing {
					got, err := svc.Get(ctx, ps[s.from].c.ID, id)
					require.NoError(rt, err)
					want := transfer.StatusSuccess
					if declined[id] {
						want = transfer.StatusFailed
						bal[ps[s.from].c.ID] += s.req.Amount.Amount
						usage[ps[s.from].c.ID] -= s.req.Amount.Amount
					}
					require.Equal(rt, want, got.Status)
					delete(processing, id)
				}
			}

			rt.Repeat(map[string]func(*rapid.T){
				"to a phone": func(rt *rapid.T) {
					from := rapid.IntRange(0, 2).Draw(rt, "from")
					to := (from + rapid.IntRange(1, 2).Draw(rt, "to")) % 3
					send(rt, from, ps[to].phone, rapid.Int64Range(1, 40_000).Draw(rt, "amount"), ps[to].c.ID, false, false)
				},
				"to an own-bank card": func(rt *rapid.T) {
					from := rapid.IntRange(1, 2).Draw(rt, "from")
					send(rt, from, cardNo, rapid.Int64Range(1, 40_000).Draw(rt, "amount"), card.ID, false, false)
				},
				"to another bank's card": func(rt *rapid.T) {
					declines := rapid.Bool().Draw(rt, "declines")
					no := pan("629999", 500+n)
					if declines {
						no = customer.SandboxDeclinedCard
					}
					send(rt, rapid.IntRange(0, 2).Draw(rt, "from"), no, rapid.Int64Range(1, 40_000).Draw(rt, "amount"), "", true, declines)
				},
				"replay": func(rt *rapid.T) {
					if len(done) == 0 {
						rt.Skip("nothing sent")
					}
					s := done[rapid.IntRange(0, len(done)-1).Draw(rt, "which")]
					tr, err := svc.Send(ctx, ps[s.from].c.ID, s.req)
					require.NoError(rt, err)
					require.Equal(rt, s.id, tr.ID)
				},
				"reuse a request id": func(rt *rapid.T) {
					if len(done) == 0 {
						rt.Skip("nothing sent")
					}
					s := done[rapid.IntRange(0, len(done)-1).Draw(rt, "which")]
					r := s.req
					r.Amount.Amount++
					_, err := svc.Send(ctx, ps[s.from].c.ID, r)
					require.Equal(rt, paygate.CodeConflict, paygate.CodeOf(err))
				},
				"the other banks answer": settle,
				"":                       check,
			})
			settle(rt)
			check(rt)
			problems, err := db.LedgerCheck(ctx)
			require.NoError(rt, err)
			require.Empty(rt, problems)
		})
	})
}
