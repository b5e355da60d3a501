package payment_test

import (
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"pgregory.net/rapid"

	"paygate"
	"paygate/channel"
	"paygate/channel/sim"
	"paygate/ledger"
	"paygate/payment"
	"paygate/store"
	"paygate/store/storetest"
)

// TestOrderProperties runs random sequences of creates, sandbox payments of
// every outcome, closes, clock jumps, expiry runs, redelivered and
// concurrent callbacks and reconciliation, and checks after each sequence
// that every order was paid at most once and exactly as its status says,
// that every held payment sits in suspense, that the merchant was credited
// exactly its paid orders less fees, that each order was notified once per
// change, and that the ledger balances.
func TestOrderProperties(t *testing.T) {
	t.Parallel()
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		var run atomic.Int64
		rapid.Check(t, func(rt *rapid.T) {
			f := newFixture(rt, db)
			mch := fmt.Sprintf("p%d_%s", run.Add(1), db.Dialect)
			fee := rapid.Int64Range(0, 300).Draw(rt, "fee_bps")
			f.mchs.add(paygate.Merchant{ID: mch, Status: paygate.MerchantSandbox, SettlementCurrency: "CNY", FeeRateBps: fee})
			var orders []string
			closedByMerchant := map[string]bool{}
			pick := func(rt *rapid.T) string {
				return orders[rapid.IntRange(0, len(orders)-1).Draw(rt, "order")]
			}
			rt.Repeat(map[string]func(*rapid.T){
				"create": func(rt *rapid.T) {
					r := request(fmt.Sprintf("prop_%06d", len(orders)))
					r.Amount.Total = rapid.Int64Range(1, 5_000_000).Draw(rt, "amount")
					r.TimeExpire = f.clock.Now().Add(time.Duration(rapid.IntRange(1, 180).Draw(rt, "expire_min")) * time.Minute)
					o, replay, err := f.svc.Create(f.ctx, mch, r)
					require.NoError(rt, err)
					require.False(rt, replay)
					orders = append(orders, o.ID)
				},
				"pay": func(rt *rapid.T) {
					if len(orders) == 0 {
						rt.Skip("no orders")
					}
					id := pick(rt)
					outcome := rapid.SampledFrom(payment.SandboxOutcomes()).Draw(rt, "outcome")
					_, err := f.svc.SandboxPay(f.ctx, mch, id, outcome)
					if err != nil {
						requireCode(rt, err, paygate.CodeConflict)
						o := f.get(rt, mch, id)
						require.True(rt, !o.Status.Open() || !f.clock.Now().Before(o.TimeExpire), "refused only when paid, closed or expired")
					}
				},
				"close": func(rt *rapid.T) {
					if len(orders) == 0 {
						rt.Skip("no orders")
					}
					id := pick(rt)
					o, err := f.svc.Close(f.ctx, mch, id)
					if err != nil {
						requireCode(rt, err, paygate.CodeConflict)
						require.Equal(rt, payment.StatusSuccess, f.get(rt, mch, id).Status, "only a paid order refuses to close")
						return
					}
					require.Equal(rt, payment.StatusClosed, o.Status)
					closedByMerchant[id] = true
				},
				"advance": func(rt *rapid.T) {
					f.settle(time.Duration(rapid.IntRange(1, 5400).Draw(rt, "seconds")) * time.Second)
				},
				"expire": func(rt *rapid.T) {
					_, err := f.svc.CloseExpired(f.ctx, rapid.IntRange(1, 5).Draw(rt, "limit"))
					require.NoError(rt, err)
				},
				"reconcile": func(rt *rapid.T) {
					_, err := f.svc.ReconcileUnknown(f.ctx, rapid.IntRange(1, 5).Draw(rt, "limit"))
					require.NoError(rt, err)
				},
				"redeliver": func(rt *rapid.T) {
					cbs := f.callbacks()
					if len(cbs) == 0 {
						rt.Skip("no callbacks")
					}
					cb := cbs[rapid.IntRange(0, len(cbs)-1).Draw(rt, "callback")]
					n := rapid.IntRange(1, 4).Draw(rt, "concurrent")
					var wg sync.WaitGroup
					errs := make([]error, n)
					for i := range n {
						wg.Go(func() { _, errs[i] = f.svc.Callback(f.ctx, sim.Name, cb.h, cb.body) })
					}
					wg.Wait()
					for _, err := range errs {
						if err != nil { // only a stale callback is refused
							requireCode(rt, err, paygate.CodeUnauthenticated)
						}
					}
				},
			})

			// Invariants.
			pending := int64(0)
			for _, id := range orders {
				o := f.get(rt, mch, id)
				atts, err := f.svc.Attempts(f.ctx, mch, id)
				require.NoError(rt, err)
				payingAttempts := 0
				for _, a := range atts {
					susp := f.transfers(rt, "susp_"+a.ID)
					if a.Review != payment.ReviewNone {
						require.Equal(rt, channel.StatusSuccess, a.Status, "only money received is held")
						require.Len(rt, susp, 1, "a held payment sits in suspense")
						require.Equal(rt, a.Amount, susp[0].Amount)
					} else {
						require.Empty(rt, susp)
					}
					if a.Status == channel.StatusSuccess && a.Review == payment.ReviewNone {
						payingAttempts++
						require.Equal(rt, o.TransactionID, a.ID)
					}
				}
				pay := f.transfers(rt, "pay_"+id, "fee_"+id)
				evs := eventTypes(f.events(rt, id))
				count := func(typ string) int {
					n := 0
					for _, e := range evs {
						if e == typ {
							n++
						}
					}
					return n
				}
				switch o.Status {
				case payment.StatusSuccess:
					require.Equal(rt, 1, payingAttempts, "a paid order was paid exactly once")
					want := 1
					if o.Fee > 0 {
						want = 2
					}
					require.Len(rt, pay, want)
					require.Equal(rt, paygate.Merchant{FeeRateBps: fee}.Fee(o.Amount.Total), o.Fee)
					require.Equal(rt, o.Amount.Total, o.Amount.PayerTotal)
					require.Equal(rt, 1, count(payment.EventSuccess))
					require.Zero(rt, count(payment.EventClosed))
					require.False(rt, closedByMerchant[id], "a closed order never becomes paid")
					require.True(rt, o.SuccessTime.Before(o.TimeExpire), "paid before it expired")
					pending += o.Amount.Total - o.Fee
				case payment.StatusClosed:
					require.Zero(rt, payingAttempts)
					require.Empty(rt, pay, "a closed order credits nobody")
					require.Equal(rt, 1, count(payment.EventClosed))
					require.Zero(rt, count(payment.EventSuccess))
				default:
					require.True(rt, o.Status.Open())
					require.Zero(rt, payingAttempts)
					require.Empty(rt, pay)
					require.Empty(rt, evs, "an open order has not been notified")
				}
				held := 0
				for _, a := range atts {
					if a.Review != payment.ReviewNone {
						held++
					}
				}
				require.Equal(rt, held, count(payment.EventLatePayment)+count(payment.EventDuplicatePayment), "each held payment notified once")
			}
			require.Equal(rt, pending, f.balance(rt, ledger.MerchantPending(mch, "CNY")), "the merchant got its paid orders less fees")
			for a := range f.logs.alerts(rt) {
				require.Contains(rt, []string{payment.AlertHeldForReview, payment.AlertCallbackRejected}, a)
			}
			f.ledgerOK(rt)
		})
	})
}
