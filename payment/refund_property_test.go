package payment_test

import (
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"pgregory.net/rapid"

	"paygate"
	"paygate/ledger"
	"paygate/payment"
	"paygate/store"
	"paygate/store/storetest"
)

// TestRefundProperties runs random sequences of payments (on us and
// through the simulator), partial refunds of every channel outcome with
// FAIL or WAIT, replays, concurrent refunds, settlements, payouts that
// leave the settled balance short, closes of waiting refunds, clock jumps
// and ReconcileRefunds, and checks after every step that no order's
// refunds PROCESSING + SUCCESS exceed the amount paid, that fee shares
// never exceed the fee, and that every refund's ledger hold is in the
// state its status says (each resolved once, by one post or one void);
// and that the whole ledger balances (db.LedgerCheck) after every step of
// the first ledgerEveryStepRuns runs and at the end of every run.
func TestRefundProperties(t *testing.T) {
	t.Parallel()
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		var run atomic.Int64
		rapid.Check(t, func(rt *rapid.T) {
			f := newFixture(rt, db)
			thisRun := run.Add(1)
			mch := fmt.Sprintf("rp%d_%s", thisRun, db.Dialect)
			fee := rapid.Int64Range(0, 300).Draw(rt, "fee_bps")
			f.mchs.add(paygate.Merchant{ID: mch, Status: paygate.MerchantSandbox, SettlementCurrency: "CNY", FeeRateBps: fee})
			var orders []payment.Order
			var numbers []string // out_refund_no used, with their requests
			reqs := map[string]payment.CreateRefundRequest{}
			n := 0
			pick := func(rt *rapid.T) payment.Order {
				if len(orders) == 0 {
					rt.Skip("no paid orders")
				}
				return orders[rapid.IntRange(0, len(orders)-1).Draw(rt, "order")]
			}
			refund := func(rt *rapid.T, req payment.CreateRefundRequest) {
				_, _, err := f.svc.Refund(f.ctx, mch, req)
				switch paygate.CodeOf(err) {
				case "", paygate.CodeLimitExceeded, paygate.CodeInsufficientFunds, paygate.CodeOutRefundNoUsed:
				default:
					rt.Fatalf("refund %+v: %v", req, err)
				}
			}
			newRefund := func(rt *rapid.T, o payment.Order) payment.CreateRefundRequest {
				n++
				req := refundReq(o, fmt.Sprintf("rp_%d_%04d", thisRun, n), rapid.Int64Range(1, o.Amount.Total+5).Draw(rt, "amount"))
				req.Scenario = rapid.SampledFrom([]string{"success", "success", "fail", "timeout"}).Draw(rt, "scenario")
				req.IfInsufficient = rapid.SampledFrom([]payment.IfInsufficient{payment.InsufficientFail, payment.InsufficientWait}).Draw(rt, "if_insufficient")
				numbers = append(numbers, req.OutRefundNo)
				reqs[req.OutRefundNo] = req
				return req
			}
			rt.Repeat(map[string]func(*rapid.T){
				"pay on us": func(rt *rapid.T) {
					o := f.paidOnUs(rt, mch, fmt.Sprintf("rpo_%06d", len(orders)), rapid.Int64Range(1, 300_000).Draw(rt, "total"))
					orders = append(orders, o)
				},
				"pay through the simulator": func(rt *rapid.T) {
					orders = append(orders, f.paidSim(rt, mch, fmt.Sprintf("rpo_%06d", len(orders)), rapid.Int64Range(1, 300_000).Draw(rt, "total")))
				},
				"refund": func(rt *rapid.T) {
					refund(rt, newRefund(rt, pick(rt)))
				},
				"replay or reuse a number": func(rt *rapid.T) {
					if len(numbers) == 0 {
						rt.Skip("no refunds")
					}
					req := reqs[rapid.SampledFrom(numbers).Draw(rt, "number")]
					if rapid.Bool().Draw(rt, "change") {
						req.Amount.Refund++
					}
					refund(rt, req)
				},
				"concurrent refunds": func(rt *rapid.T) {
					o := pick(rt)
					k := rapid.IntRange(2, 4).Draw(rt, "k")
					rs := make([]payment.CreateRefundRequest, k)
					for i := range rs {
						rs[i] = newRefund(rt, o)
					}
					var wg sync.WaitGroup
					errs := make([]error, k)
					for i := range rs {
						wg.Go(func() { _, _, errs[i] = f.svc.Refund(f.ctx, mch, rs[i]) })
					}
					wg.Wait()
					for _, err := range errs {
						switch paygate.CodeOf(err) {
						case "", paygate.CodeLimitExceeded, paygate.CodeInsufficientFunds:
						default:
							rt.Fatalf("concurrent refund: %v", err)
						}
					}
				},
				"settle": func(rt *rapid.T) {
					o := pick(rt)
					_, err := f.svc.MarkSettled(f.ctx, o.ID)
					if err != nil {
						requireCode(rt, err, paygate.CodeConflict) // a refund from pending in flight
					}
				},
				"payout": func(rt *rapid.T) {
					avail := f.available(rt, ledger.MerchantSettled(mch, "CNY"))
					if avail <= 0 {
						rt.Skip("nothing settled")
					}
					f.withdraw(rt, mch, rapid.Int64Range(1, avail).Draw(rt, "payout"))
				},
				"close a waiting refund": func(rt *rapid.T) {
					if len(numbers) == 0 {
						rt.Skip("no refunds")
					}
					r, err := f.svc.GetRefundByOutRefundNo(f.ctx, mch, rapid.SampledFrom(numbers).Draw(rt, "number"))
					if paygate.HasCode(err, paygate.CodeNotFound) {
						rt.Skip("refused refund")
					}
					require.NoError(rt, err)
					_, err = f.svc.CloseRefund(f.ctx, mch, r.ID)
					if r.AwaitingFunds || r.Status == payment.RefundClosed {
						require.NoError(rt, err)
					} else {
						requireCode(rt, err, paygate.CodeConflict)
					}
				},
				"advance and reconcile": func(rt *rapid.T) {
					f.clock.Advance(time.Duration(rapid.IntRange(1, 120).Draw(rt, "seconds")) * time.Second)
					_, err := f.svc.ReconcileRefunds(f.ctx, 100)
					require.NoError(rt, err)
				},
				"": func(rt *rapid.T) { checkRefundInvariants(rt, f, mch, thisRun <= ledgerEveryStepRuns) },
			})
			// Drain: every channel refund ends, nothing waits for ever
			// once the money is there.
			f.fundSettled(rt, mch, 100_000_000)
			for range 6 {
				f.clock.Advance(time.Hour)
				_, err := f.svc.ReconcileRefunds(f.ctx, 1000)
				require.NoError(rt, err)
			}
			require.Zero(rt, f.count(rt, `SELECT COUNT(*) FROM payment_refunds WHERE merchant_id = $1 AND status = 'PROCESSING'`, mch))
			checkRefundInvariants(rt, f, mch, true)
		})
	})
}

// ledgerEveryStepRuns is how many of the first runs check the whole
// ledger (db.LedgerCheck, which reads every transfer of the shared
// database) after every step; later runs check it at their end, so that
// the test's cost stays linear.
const ledgerEveryStepRuns = 15

// checkRefundInvariants checks the merchant's orders and refunds against
// each other and their ledger transfers, and the whole ledger when
// ledgerToo is set.
func checkRefundInvariants(t testingT, f *fixture, mch string, ledgerToo bool) {
	t.Helper()
	over := f.count(t, `SELECT COUNT(*) FROM (SELECT o.id FROM payment_orders o JOIN payment_refunds r ON r.order_id = o.id
		WHERE o.merchant_id = $1 AND r.status IN ('PROCESSING', 'SUCCESS')
		GROUP BY o.id, o.payer_total, o.fee HAVING SUM(r.amount) > o.payer_total OR SUM(r.fee_refund) > o.fee) x`, mch)
	require.Zero(t, over, "refunds within the amount paid, fee shares within the fee")
	require.Zero(t, f.count(t, `SELECT COUNT(*) FROM payment_refunds r JOIN payment_orders o ON o.id = r.order_id
		WHERE r.merchant_id = $1 AND o.status <> 'REFUND'`, mch), "a refunded order is REFUND")

	rows, err := f.db.SQL.QueryContext(f.ctx, `SELECT r.id, r.channel, r.status, r.awaiting_funds, COALESCE(t.id, ''), COALESCE(t.hold_status, '')
		FROM payment_refunds r LEFT JOIN ledger_transfers t
		ON t.id IN ('rhold_' || r.id, 'rpost_' || r.id, 'rvoid_' || r.id, 'refund_' || r.id) WHERE r.merchant_id = $1`, mch)
	require.NoError(t, err)
	type rf struct {
		ch, status string
		waiting    bool
		got        map[string]string // transfer id prefix → hold status
	}
	rs := map[string]*rf{}
	for rows.Next() {
		var id, tid, hold string
		r := &rf{got: map[string]string{}}
		require.NoError(t, rows.Scan(&id, &r.ch, &r.status, &r.waiting, &tid, &hold))
		if prev, ok := rs[id]; ok {
			r = prev
		}
		rs[id] = r
		if p, _, ok := strings.Cut(tid, "_rfd_"); ok {
			r.got[p] = hold
		}
	}
	require.NoError(t, rows.Err())
	rows.Close()
	for id, r := range rs {
		want := map[string]string{}
		switch {
		case r.waiting || r.status == string(payment.RefundClosed):
		case r.ch == payment.ChannelOnUs:
			want["refund"] = ""
		case r.status == string(payment.RefundProcessing):
			want["rhold"] = string(ledger.HoldPending)
		case r.status == string(payment.RefundSuccess):
			want["rhold"], want["rpost"] = string(ledger.HoldPosted), ""
		case r.status == string(payment.RefundAbnormal):
			want["rhold"], want["rvoid"] = string(ledger.HoldVoided), ""
		}
		require.Equal(t, want, r.got, "refund %s (%s, %s): its transfers and hold", id, r.ch, r.status)
	}
	if ledgerToo {
		f.ledgerOK(t)
	}
}

var _ = testing.Short
