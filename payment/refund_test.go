package payment_test

import (
	"fmt"
	"math"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"paygate"
	"paygate/channel"
	"paygate/ledger"
	"paygate/payment"
	"paygate/store"
	"paygate/store/storetest"
)

// TestRefundOnUsPartialMultipleFull: three partial refunds of a payment on
// us go straight back to the payer's balance, each with its share of the
// fee (floor of the cumulative share; the last takes the remainder), and
// together give everything back: the payer whole, the merchant's pending
// account and the platform's fee income at zero.
func TestRefundOnUsPartialMultipleFull(t *testing.T) {
	t.Parallel()
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		f := newFixture(t, db)
		o := f.paidOnUs(t, mchA, "rf_onus_1", 10_000)
		cus, pending, fee := ledger.CustomerDeposit(customer, "CNY"), ledger.MerchantPending(mchA, "CNY"), ledger.PlatformFeeFor("CNY", true)
		require.Equal(t, int64(customerFunds-10_000), f.balance(t, cus))
		require.Equal(t, int64(9_940), f.balance(t, pending))

		steps := []struct {
			amount, feeRefund int64
		}{{3_333, 19}, {3_333, 20}, {3_334, 21}}
		var refunded, feeBack int64
		for i, st := range steps {
			f.clock.Advance(time.Second)
			r := f.refund(t, mchA, refundReq(o, fmt.Sprintf("rf_onus_1_%d", i), st.amount))
			refunded += st.amount
			feeBack += st.feeRefund
			require.Equal(t, payment.RefundSuccess, r.Status, "on us: at once")
			require.Equal(t, payment.RefundAmount{Refund: st.amount, Total: 10_000, PayerRefund: st.amount, FeeRefund: st.feeRefund, Currency: "CNY"}, r.Amount)
			require.Equal(t, payment.FundsPending, r.FundsSource)
			require.Equal(t, payment.ChannelOnUs, r.Channel)
			require.Equal(t, o.TransactionID, r.TransactionID)
			require.Equal(t, f.clock.Now(), r.SuccessTime)
			require.True(t, strings.HasPrefix(r.ID, "rfd_"))
			require.Equal(t, r, f.getRefund(t, mchA, r.ID), "stored as returned")
			require.Equal(t, int64(customerFunds-10_000)+refunded, f.balance(t, cus))
			require.Equal(t, 9_940-refunded+feeBack, f.balance(t, pending))
			require.Equal(t, 60-feeBack, f.balance(t, fee))
			require.Equal(t, payment.StatusRefund, f.get(t, mchA, o.ID).Status)

			evs := f.refundEvents(t, r.ID)
			require.Equal(t, []string{payment.EventRefundSuccess}, eventTypes(evs))
			p := evs[0].Payload
			require.Equal(t, "SUCCESS", p["status"])
			require.Equal(t, o.ID, p["order_id"])
			require.Equal(t, "rf_onus_1", p["out_trade_no"])
			require.Equal(t, fmt.Sprintf("rf_onus_1_%d", i), p["out_refund_no"])
			require.Equal(t, map[string]any{"refund": float64(st.amount), "total": 10000.0, "payer_refund": float64(st.amount),
				"fee_refund": float64(st.feeRefund), "currency": "CNY"}, p["amount"])
			require.Equal(t, "PENDING", p["funds_source"])
			require.NotContains(t, p, "notify_url")
			require.True(t, evs[0].Sandbox)
		}
		require.Equal(t, int64(customerFunds), f.balance(t, cus), "the payer is whole")
		require.Zero(t, f.balance(t, pending))
		require.Zero(t, f.balance(t, fee), "the whole fee came back")

		_, _, err := f.svc.Refund(f.ctx, mchA, refundReq(o, "rf_onus_1_x", 1))
		requireCode(t, err, paygate.CodeLimitExceeded)
		require.Equal(t, "amount.refund", fieldOf(err))

		list, err := f.svc.OrderRefunds(f.ctx, mchA, o.ID)
		require.NoError(t, err)
		require.Len(t, list.Refunds, 3)
		require.Equal(t, "rf_onus_1_2", list.Refunds[0].OutRefundNo, "newest first")
		f.ledgerOK(t)
	})
}

// TestRefundRefusals: every refusal answers its code and field and changes
// nothing — no refund, no order change, no money moved.
func TestRefundRefusals(t *testing.T) {
	t.Parallel()
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		f := newFixture(t, db)
		paid := f.paidOnUs(t, mchA, "rf_ref_paid", 10_000)
		settled := f.paidOnUs(t, mchA, "rf_ref_setl", 10_000)
		_, err := f.svc.MarkSettled(f.ctx, settled.ID)
		require.NoError(t, err)
		open := f.create(t, mchA, "rf_ref_open")
		closed := f.create(t, mchA, "rf_ref_clsd")
		_, err = f.svc.Close(f.ctx, mchA, closed.ID)
		require.NoError(t, err)
		other := f.paidOnUs(t, mchB, "rf_ref_othr", 10_000)

		ok := func(mod func(r *payment.CreateRefundRequest)) payment.CreateRefundRequest {
			r := refundReq(paid, "rf_refusal", 100)
			mod(r2(&r))
			return r
		}
		cases := []struct {
			name  string
			mch   string
			req   payment.CreateRefundRequest
			code  paygate.Code
			field string
		}{
			{"over-refund", mchA, ok(func(r *payment.CreateRefundRequest) { r.Amount.Refund = 10_001 }), paygate.CodeLimitExceeded, "amount.refund"},
			{"wrong total", mchA, ok(func(r *payment.CreateRefundRequest) { r.Amount.Total = 9_999 }), paygate.CodeInvalidArgument, "amount.total"},
			{"zero total", mchA, ok(func(r *payment.CreateRefundRequest) { r.Amount.Total = 0 }), paygate.CodeAmountNotPositive, "amount.total"},
			{"other currency", mchA, ok(func(r *payment.CreateRefundRequest) { r.Amount.Currency = "USD" }), paygate.CodeCurrencyMismatch, "amount.currency"},
			{"unknown currency", mchA, ok(func(r *payment.CreateRefundRequest) { r.Amount.Currency = "XYZ" }), paygate.CodeUnknownCurrency, "amount.currency"},
			{"lower-case currency", mchA, ok(func(r *payment.CreateRefundRequest) { r.Amount.Currency = "cny" }), paygate.CodeUnknownCurrency, "amount.currency"},
			{"zero", mchA, ok(func(r *payment.CreateRefundRequest) { r.Amount.Refund = 0 }), paygate.CodeAmountNotPositive, "amount.refund"},
			{"negative", mchA, ok(func(r *payment.CreateRefundRequest) { r.Amount.Refund = -1 }), paygate.CodeAmountNotPositive, "amount.refund"},
			{"overflowing", mchA, ok(func(r *payment.CreateRefundRequest) { r.Amount.Refund = math.MaxInt64 }), paygate.CodeLimitExceeded, "amount.refund"},
			{"above maximum", mchA, ok(func(r *payment.CreateRefundRequest) { r.Amount.Refund = payment.DefaultMaxAmount + 1 }), paygate.CodeLimitExceeded, "amount.refund"},
			{"unknown order", mchA, ok(func(r *payment.CreateRefundRequest) { r.OrderID = "ord_0000000000000000000000000000000" }), paygate.CodeNotFound, ""},
			{"unknown out_trade_no", mchA, ok(func(r *payment.CreateRefundRequest) { r.OrderID, r.OutTradeNo = "", "no_such_order" }), paygate.CodeNotFound, ""},
			{"another merchant's order", mchA, ok(func(r *payment.CreateRefundRequest) { r.OrderID = other.ID }), paygate.CodeNotFound, ""},
			{"another merchant's out_trade_no", mchA, ok(func(r *payment.CreateRefundRequest) { r.OrderID, r.OutTradeNo = "", "rf_ref_othr" }), paygate.CodeNotFound, ""},
			{"unpaid order", mchA, ok(func(r *payment.CreateRefundRequest) { r.OrderID = open.ID }), paygate.CodeConflict, ""},
			{"closed order", mchA, ok(func(r *payment.CreateRefundRequest) { r.OrderID = closed.ID }), paygate.CodeConflict, ""},
			{"no order named", mchA, ok(func(r *payment.CreateRefundRequest) { r.OrderID = "" }), paygate.CodeInvalidArgument, "order_id"},
			{"order_id and out_trade_no disagree", mchA, ok(func(r *payment.CreateRefundRequest) { r.OutTradeNo = "rf_ref_setl" }), paygate.CodeInvalidArgument, "out_trade_no"},
			{"empty out_refund_no", mchA, ok(func(r *payment.CreateRefundRequest) { r.OutRefundNo = "" }), paygate.CodeInvalidArgument, "out_refund_no"},
			{"bad out_refund_no", mchA, ok(func(r *payment.CreateRefundRequest) { r.OutRefundNo = "has space" }), paygate.CodeInvalidArgument, "out_refund_no"},
			{"long out_refund_no", mchA, ok(func(r *payment.CreateRefundRequest) { r.OutRefundNo = strings.Repeat("a", 65) }), paygate.CodeInvalidArgument, "out_refund_no"},
			{"long reason", mchA, ok(func(r *payment.CreateRefundRequest) { r.Reason = strings.Repeat("退", 81) }), paygate.CodeInvalidArgument, "reason"},
			{"control in reason", mchA, ok(func(r *payment.CreateRefundRequest) { r.Reason = "a\nb" }), paygate.CodeInvalidArgument, "reason"},
			{"bad if_insufficient", mchA, ok(func(r *payment.CreateRefundRequest) { r.IfInsufficient = "MAYBE" }), paygate.CodeInvalidArgument, "if_insufficient"},
			{"bad notify_url", mchA, ok(func(r *payment.CreateRefundRequest) { r.NotifyURL = "ftp://x.example.com/" }), paygate.CodeInvalidArgument, "notify_url"},
			{"suspended merchant", mchSusp, ok(func(r *payment.CreateRefundRequest) {}), paygate.CodeForbidden, ""},
			{"settled balance short, FAIL", mchA, ok(func(r *payment.CreateRefundRequest) {
				r.OrderID, r.Amount.Refund = settled.ID, 10_000 // the settled 9,940 cannot pay 10,000
			}), paygate.CodeInsufficientFunds, "amount.refund"},
		}
		pending, settledAcc := f.balance(t, ledger.MerchantPending(mchA, "CNY")), f.balance(t, ledger.MerchantSettled(mchA, "CNY"))
		evs := len(f.events(t, ""))
		for _, c := range cases {
			_, _, err := f.svc.Refund(f.ctx, c.mch, c.req)
			requireCode(t, err, c.code, c.name)
			require.Equal(t, c.field, fieldOf(err), c.name)
		}
		require.Zero(t, f.count(t, `SELECT COUNT(*) FROM payment_refunds`), "refusals record nothing")
		require.Equal(t, pending, f.balance(t, ledger.MerchantPending(mchA, "CNY")))
		require.Equal(t, settledAcc, f.balance(t, ledger.MerchantSettled(mchA, "CNY")))
		require.Equal(t, evs, len(f.events(t, "")), "refusals notify nobody")
		for _, o := range []payment.Order{paid, settled, other} {
			require.Contains(t, []payment.Status{payment.StatusSuccess}, f.get(t, o.MerchantID, o.ID).Status, "still unrefunded")
		}
		f.ledgerOK(t)

		// The out_trade_no alone names the order too.
		r := refundReq(paid, "rf_by_no", 100)
		r.OrderID, r.OutTradeNo = "", paid.OutTradeNo
		got := f.refund(t, mchA, r)
		require.Equal(t, paid.ID, got.OrderID)
	})
}

// r2 returns its argument (lets table rows modify a request inline).
func r2(r *payment.CreateRefundRequest) *payment.CreateRefundRequest { return r }

// TestRefundThroughChannel: a channel refund is held, submitted, and
// booked when the channel's answer is learnt — success posts the hold,
// failure voids it and returns the fee share, a timeout is queried until
// known, a refusal is ABNORMAL at once, and a submission the channel never
// got is submitted again.
func TestRefundThroughChannel(t *testing.T) {
	t.Parallel()
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		fl := &flakyRefunder{}
		f := newFixture(t, db, withFlaky(fl))
		o := f.paidSim(t, mchA, "rf_chan_1", 10_000)
		pending, clearing := ledger.MerchantPending(mchA, "CNY"), ledger.ChannelClearing("sim", "CNY")
		require.Equal(t, int64(10_000), f.balance(t, clearing))

		// Success.
		r := f.refund(t, mchA, refundReq(o, "rf_chan_ok", 4_000))
		require.Equal(t, payment.RefundProcessing, r.Status)
		require.NotEmpty(t, r.ChannelRefundNo, "the channel accepted it")
		require.Equal(t, int64(24), r.Amount.FeeRefund)
		require.Equal(t, ledger.HoldPending, f.holdStatus(t, r.ID))
		require.Equal(t, int64(9_940+24-4_000), f.available(t, pending), "held")
		require.Equal(t, payment.StatusRefund, f.get(t, mchA, o.ID).Status)
		require.Empty(t, f.refundEvents(t, r.ID))
		n, err := f.svc.ReconcileRefunds(f.ctx, 10)
		require.NoError(t, err)
		require.Zero(t, n, "not due yet")
		f.clock.Advance(5 * time.Second)
		n, err = f.svc.ReconcileRefunds(f.ctx, 10)
		require.NoError(t, err)
		require.Equal(t, 1, n)
		r = f.getRefund(t, mchA, r.ID)
		require.Equal(t, payment.RefundSuccess, r.Status)
		require.False(t, r.SuccessTime.IsZero())
		require.Equal(t, ledger.HoldPosted, f.holdStatus(t, r.ID))
		require.Equal(t, int64(6_000), f.balance(t, clearing), "the channel paid the payer back")
		require.Equal(t, int64(9_940+24-4_000), f.balance(t, pending))
		require.Equal(t, []string{payment.EventRefundSuccess}, eventTypes(f.refundEvents(t, r.ID)))

		// Failure: ABNORMAL, money and fee share back; the merchant may retry.
		f.clock.Advance(time.Minute)
		before := f.balance(t, pending)
		req := refundReq(o, "rf_chan_fail", 6_000)
		req.Scenario = "fail"
		r = f.refund(t, mchA, req)
		require.Equal(t, payment.RefundProcessing, r.Status)
		require.Equal(t, int64(36), r.Amount.FeeRefund, "the last refund takes the remainder: 60-24")
		_, _, err = f.svc.Refund(f.ctx, mchA, refundReq(o, "rf_chan_more", 1))
		requireCode(t, err, paygate.CodeLimitExceeded, "a PROCESSING refund counts")
		f.clock.Advance(5 * time.Second)
		_, err = f.svc.ReconcileRefunds(f.ctx, 10)
		require.NoError(t, err)
		r = f.getRefund(t, mchA, r.ID)
		require.Equal(t, payment.RefundAbnormal, r.Status)
		require.Equal(t, "SIM_REFUND_FAILED", r.FailCode)
		require.Equal(t, ledger.HoldVoided, f.holdStatus(t, r.ID))
		require.Len(t, f.transfers(t, "rfeerev_"+r.ID), 1)
		require.Equal(t, before, f.balance(t, pending))
		require.Equal(t, before, f.available(t, pending))
		require.Equal(t, int64(60-24), f.balance(t, ledger.PlatformFeeFor("CNY", true)))
		evs := f.refundEvents(t, r.ID)
		require.Equal(t, []string{payment.EventRefundAbnormal}, eventTypes(evs))
		require.Equal(t, "ABNORMAL", evs[0].Payload["status"])

		// Timeout: unknown outcome, queried until known.
		req = refundReq(o, "rf_chan_slow", 6_000)
		req.Scenario = "timeout"
		r = f.refund(t, mchA, req)
		require.Equal(t, payment.RefundProcessing, r.Status)
		require.Empty(t, r.ChannelRefundNo, "the channel did not answer")
		f.clock.Advance(5 * time.Second)
		_, err = f.svc.ReconcileRefunds(f.ctx, 10)
		require.NoError(t, err)
		require.Equal(t, payment.RefundProcessing, f.getRefund(t, mchA, r.ID).Status, "still unknown: never failed for want of an answer")
		f.clock.Advance(time.Minute)
		_, err = f.svc.ReconcileRefunds(f.ctx, 10)
		require.NoError(t, err)
		r = f.getRefund(t, mchA, r.ID)
		require.Equal(t, payment.RefundSuccess, r.Status)
		require.NotEmpty(t, r.ChannelRefundNo)
		require.Zero(t, f.balance(t, pending), "fully refunded")
		require.Zero(t, f.balance(t, ledger.PlatformFeeFor("CNY", true)))
		require.Zero(t, f.balance(t, clearing))

		// Declined outright: ABNORMAL at once.
		o2 := f.paidSim(t, mchA, "rf_chan_2", 10_000)
		fl.set(func(c *flakyRefunder) { c.declined = true })
		r = f.refund(t, mchA, refundReq(o2, "rf_chan_decl", 10_000))
		require.Equal(t, payment.RefundAbnormal, r.Status)
		require.Equal(t, payment.FailRefundDeclined, r.FailCode)
		require.Equal(t, ledger.HoldVoided, f.holdStatus(t, r.ID))
		require.Equal(t, []string{payment.EventRefundAbnormal}, eventTypes(f.refundEvents(t, r.ID)))
		require.Equal(t, int64(9_940), f.balance(t, pending))

		// Lost on the way (crash between commit and call): submitted again.
		fl.set(func(c *flakyRefunder) { c.declined, c.drop, c.calls = false, 1, 0 })
		r = f.refund(t, mchA, refundReq(o2, "rf_chan_lost", 10_000))
		require.Equal(t, payment.RefundProcessing, r.Status)
		f.clock.Advance(5 * time.Second)
		_, err = f.svc.ReconcileRefunds(f.ctx, 10) // the channel has no record: resubmitted
		require.NoError(t, err)
		require.NotEmpty(t, f.getRefund(t, mchA, r.ID).ChannelRefundNo)
		f.clock.Advance(30 * time.Second)
		_, err = f.svc.ReconcileRefunds(f.ctx, 10)
		require.NoError(t, err)
		require.Equal(t, payment.RefundSuccess, f.getRefund(t, mchA, r.ID).Status)
		fl.set(func(c *flakyRefunder) { require.Equal(t, 2, c.calls) })
		require.Zero(t, f.balance(t, pending))
		f.ledgerOK(t)
	})
}

// TestRefundResultsBookedOnce: duplicate and contradicting channel results
// change nothing once a refund is final.
func TestRefundResultsBookedOnce(t *testing.T) {
	t.Parallel()
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		f := newFixture(t, db)
		o := f.paidSim(t, mchA, "rf_once_1", 10_000)
		r := f.refund(t, mchA, refundReq(o, "rf_once", 5_000))
		f.clock.Advance(5 * time.Second)
		var wg sync.WaitGroup
		for range 8 {
			wg.Go(func() {
				_, err := f.svc.ReconcileRefunds(f.ctx, 10)
				require.NoError(t, err)
			})
		}
		wg.Wait()
		require.Equal(t, payment.RefundSuccess, f.getRefund(t, mchA, r.ID).Status)
		require.Len(t, f.transfers(t, "rpost_"+r.ID), 1)
		require.Len(t, f.refundEvents(t, r.ID), 1, "notified once")
		// Nothing is due any more.
		f.clock.Advance(time.Hour)
		n, err := f.svc.ReconcileRefunds(f.ctx, 10)
		require.NoError(t, err)
		require.Zero(t, n)
		f.ledgerOK(t)
	})
}

// TestRefundIdempotencyRace: 100 identical concurrent requests make one
// refund; a different request with the same out_refund_no is refused with
// OUT_REFUND_NO_USED naming the differing field.
func TestRefundIdempotencyRace(t *testing.T) {
	t.Parallel()
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		f := newFixture(t, db)
		for _, kind := range []string{"onus", "sim"} {
			var o payment.Order
			if kind == "onus" {
				o = f.paidOnUs(t, mchA, "rf_race_"+kind, 10_000)
			} else {
				o = f.paidSim(t, mchA, "rf_race_"+kind, 10_000)
			}
			req := refundReq(o, "rf_race_no_"+kind, 2_500)
			var (
				wg      sync.WaitGroup
				created atomic.Int32
				mu      sync.Mutex
				ids     = map[string]bool{}
			)
			for range 100 {
				wg.Go(func() {
					r, replay, err := f.svc.Refund(f.ctx, mchA, req)
					require.NoError(t, err)
					if !replay {
						created.Add(1)
					}
					mu.Lock()
					ids[r.ID] = true
					mu.Unlock()
				})
			}
			wg.Wait()
			require.Equal(t, int32(1), created.Load(), "%s: one refund created", kind)
			require.Len(t, ids, 1, "%s: every answer is that refund", kind)
			require.Equal(t, 1, f.count(t, `SELECT COUNT(*) FROM payment_refunds WHERE order_id = $1`, o.ID))

			// Replays match whatever the refund's status now.
			r, replay, err := f.svc.Refund(f.ctx, mchA, req)
			require.NoError(t, err)
			require.True(t, replay)
			byNo := req
			byNo.OrderID, byNo.OutTradeNo = "", o.OutTradeNo
			r2, replay, err := f.svc.Refund(f.ctx, mchA, byNo)
			require.NoError(t, err, "naming the order by its number is the same request")
			require.True(t, replay)
			require.Equal(t, r.ID, r2.ID)

			other := f.paidOnUs(t, mchA, "rf_race_o_"+kind, 10_000)
			for field, mod := range map[string]func(*payment.CreateRefundRequest){
				"amount.refund": func(r *payment.CreateRefundRequest) { r.Amount.Refund++ },
				"reason":        func(r *payment.CreateRefundRequest) { r.Reason = "another reason" },
				"notify_url":    func(r *payment.CreateRefundRequest) { r.NotifyURL = "https://merchant.example.com/refunds" },
				"order_id":      func(r *payment.CreateRefundRequest) { r.OrderID = other.ID },
				"if_insufficient": func(r *payment.CreateRefundRequest) {
					r.IfInsufficient = payment.InsufficientWait
				},
			} {
				d := req
				mod(&d)
				_, _, err := f.svc.Refund(f.ctx, mchA, d)
				requireCode(t, err, paygate.CodeOutRefundNoUsed, field)
				require.Equal(t, field, fieldOf(err))
			}
			// Concurrent different bodies under one new number: one wins.
			var wins, used atomic.Int32
			for i := range 20 {
				wg.Go(func() {
					d := refundReq(o, "rf_race_diff_"+kind, int64(100+i))
					_, replay, err := f.svc.Refund(f.ctx, mchA, d)
					switch {
					case err == nil && !replay:
						wins.Add(1)
					case paygate.HasCode(err, paygate.CodeOutRefundNoUsed):
						used.Add(1)
					default:
						t.Errorf("unexpected: replay %v err %v", replay, err)
					}
				})
			}
			wg.Wait()
			require.Equal(t, int32(1), wins.Load())
			require.Equal(t, int32(19), used.Load())
		}
		f.ledgerOK(t)
	})
}

// TestConcurrentRefundsNeverExceedPaid: many different refunds at once
// never refund more than was paid, on us (SUCCESS at once) and through a
// channel (PROCESSING counts).
func TestConcurrentRefundsNeverExceedPaid(t *testing.T) {
	t.Parallel()
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		f := newFixture(t, db)
		for _, kind := range []string{"onus", "sim"} {
			var o payment.Order
			if kind == "onus" {
				o = f.paidOnUs(t, mchA, "rf_conc_"+kind, 10_000)
			} else {
				o = f.paidSim(t, mchA, "rf_conc_"+kind, 10_000)
			}
			var (
				wg     sync.WaitGroup
				ok     atomic.Int32
				refuse atomic.Int32
			)
			for i := range 40 {
				wg.Go(func() {
					_, _, err := f.svc.Refund(f.ctx, mchA, refundReq(o, fmt.Sprintf("rf_conc_%s_%02d", kind, i), 700))
					switch {
					case err == nil:
						ok.Add(1)
					case paygate.HasCode(err, paygate.CodeLimitExceeded):
						refuse.Add(1)
					default:
						t.Errorf("unexpected: %v", err)
					}
				})
			}
			wg.Wait()
			require.Equal(t, int32(14), ok.Load(), "%s: 14 × 700 ≤ 10,000 < 15 × 700", kind)
			require.Equal(t, int32(26), refuse.Load())
			require.Equal(t, 9_800, f.count(t, `SELECT COALESCE(SUM(amount), 0) FROM payment_refunds WHERE order_id = $1 AND status IN ('PROCESSING', 'SUCCESS')`, o.ID))
		}
		f.clock.Advance(5 * time.Second)
		_, err := f.svc.ReconcileRefunds(f.ctx, 100)
		require.NoError(t, err)
		require.Zero(t, f.count(t, `SELECT COUNT(*) FROM payment_refunds WHERE status <> 'SUCCESS'`))
		f.ledgerOK(t)
	})
}

// TestRefundAfterSettlement: once settled, refunds come from the
// merchant's settled balance without the fee; FAIL refuses when it is
// short, WAIT waits for funds (ReconcileRefunds pays it once they arrive,
// through a channel too) or is closed by the merchant; settlement waits
// for refunds reversing a payment from pending.
func TestRefundAfterSettlement(t *testing.T) {
	t.Parallel()
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		f := newFixture(t, db)
		pending, settled := ledger.MerchantPending(mchA, "CNY"), ledger.MerchantSettled(mchA, "CNY")
		look := func(want int) {
			t.Helper()
			n, err := f.svc.ReconcileRefunds(f.ctx, 10)
			require.NoError(t, err)
			require.Equal(t, want, n)
		}

		// A refund before settlement is taken off what settles.
		o1 := f.paidOnUs(t, mchA, "rf_set_1", 10_000)
		f.refund(t, mchA, refundReq(o1, "rf_set_1_a", 3_000)) // fee share 18
		so, err := f.svc.MarkSettled(f.ctx, o1.ID)
		require.NoError(t, err)
		require.Equal(t, payment.StatusRefund, so.Status)
		require.Zero(t, f.balance(t, pending))
		require.Equal(t, int64(10_000-60-(3_000-18)), f.balance(t, settled))
		_, err = f.svc.MarkSettled(f.ctx, o1.ID)
		require.NoError(t, err, "settling twice changes nothing")
		require.Len(t, f.transfers(t, "settle_"+o1.ID), 1)
		require.Equal(t, int64(6_958), f.balance(t, settled))

		// After settlement: from the settled balance, no fee share; on us at once.
		r := f.refund(t, mchA, refundReq(o1, "rf_set_1_b", 2_000))
		require.Equal(t, payment.RefundSuccess, r.Status)
		require.Equal(t, payment.FundsSettled, r.FundsSource)
		require.Zero(t, r.Amount.FeeRefund)
		require.Equal(t, int64(4_958), f.balance(t, settled))
		require.Equal(t, int64(60-18), f.balance(t, ledger.PlatformFeeFor("CNY", true)), "the fee is not returned after settlement")

		// Through a channel: held on the settled balance.
		o2 := f.paidSim(t, mchA, "rf_set_2", 10_000)
		_, err = f.svc.MarkSettled(f.ctx, o2.ID)
		require.NoError(t, err)
		require.Equal(t, int64(4_958+9_940), f.balance(t, settled))
		r = f.refund(t, mchA, refundReq(o2, "rf_set_2_a", 9_000))
		require.Equal(t, payment.FundsSettled, r.FundsSource)
		require.Equal(t, int64(14_898-9_000), f.available(t, settled))
		f.clock.Advance(5 * time.Second)
		look(1)
		require.Equal(t, int64(5_898), f.balance(t, settled))

		// Short: FAIL refuses, WAIT waits.
		f.withdraw(t, mchA, 5_000)
		_, _, err = f.svc.Refund(f.ctx, mchA, refundReq(o1, "rf_set_1_c", 5_000))
		requireCode(t, err, paygate.CodeInsufficientFunds)
		wait := refundReq(o1, "rf_set_1_c", 5_000)
		wait.IfInsufficient = payment.InsufficientWait
		w := f.refund(t, mchA, wait)
		require.Equal(t, payment.RefundProcessing, w.Status)
		require.True(t, w.AwaitingFunds)
		require.Empty(t, f.transfers(t, "refund_"+w.ID), "nothing moved")
		require.Empty(t, f.refundEvents(t, w.ID))
		_, _, err = f.svc.Refund(f.ctx, mchA, refundReq(o1, "rf_set_1_d", 1))
		requireCode(t, err, paygate.CodeLimitExceeded, "a waiting refund counts against the refundable amount")
		f.clock.Advance(5 * time.Second)
		look(0)
		require.True(t, f.getRefund(t, mchA, w.ID).AwaitingFunds, "still short")

		// Funds arrive (another order settles); the next look pays it.
		o3 := f.paidOnUs(t, mchA, "rf_set_3", 10_000)
		_, err = f.svc.MarkSettled(f.ctx, o3.ID)
		require.NoError(t, err)
		f.clock.Advance(time.Minute)
		look(1)
		w = f.getRefund(t, mchA, w.ID)
		require.Equal(t, payment.RefundSuccess, w.Status)
		require.False(t, w.AwaitingFunds)
		require.Len(t, f.transfers(t, "refund_"+w.ID), 1)
		require.Equal(t, []string{payment.EventRefundSuccess}, eventTypes(f.refundEvents(t, w.ID)))
		require.Equal(t, int64(898+9_940-5_000), f.balance(t, settled))

		// A waiting channel refund is held and submitted once funded.
		f.withdraw(t, mchA, 5_838)
		wait = refundReq(o2, "rf_set_2_b", 1_000)
		wait.IfInsufficient = payment.InsufficientWait
		w2 := f.refund(t, mchA, wait)
		require.True(t, w2.AwaitingFunds)
		require.Empty(t, w2.ChannelRefundNo, "not submitted")
		f.fundSettled(t, mchA, 1_000)
		f.clock.Advance(5 * time.Second)
		look(1)
		w2 = f.getRefund(t, mchA, w2.ID)
		require.Equal(t, payment.RefundProcessing, w2.Status)
		require.False(t, w2.AwaitingFunds)
		require.NotEmpty(t, w2.ChannelRefundNo, "submitted")
		require.Equal(t, ledger.HoldPending, f.holdStatus(t, w2.ID))
		f.clock.Advance(5 * time.Second)
		look(1)
		require.Equal(t, payment.RefundSuccess, f.getRefund(t, mchA, w2.ID).Status)
		require.Zero(t, f.balance(t, settled))

		// The merchant closes a waiting refund instead.
		wait = refundReq(o3, "rf_set_3_a", 10_000)
		wait.IfInsufficient = payment.InsufficientWait
		w3 := f.refund(t, mchA, wait)
		require.True(t, w3.AwaitingFunds)
		c, err := f.svc.CloseRefund(f.ctx, mchA, w3.ID)
		require.NoError(t, err)
		require.Equal(t, payment.RefundClosed, c.Status)
		require.False(t, c.CloseTime.IsZero())
		require.Equal(t, []string{payment.EventRefundClosed}, eventTypes(f.refundEvents(t, w3.ID)))
		c2, err := f.svc.CloseRefund(f.ctx, mchA, w3.ID)
		require.NoError(t, err, "closing a closed refund is a no-op")
		require.Equal(t, c, c2)
		require.Len(t, f.refundEvents(t, w3.ID), 1)
		_, err = f.svc.CloseRefund(f.ctx, mchA, w.ID)
		requireCode(t, err, paygate.CodeConflict, "a refund that succeeded cannot be closed")
		_, err = f.svc.CloseRefund(f.ctx, mchB, w3.ID)
		requireCode(t, err, paygate.CodeNotFound)
		f.fundSettled(t, mchA, 10_000)
		f.clock.Advance(time.Hour)
		look(0)
		require.Equal(t, payment.RefundClosed, f.getRefund(t, mchA, w3.ID).Status, "a closed refund is never paid")
		again := f.refund(t, mchA, refundReq(o3, "rf_set_3_b", 10_000))
		require.Equal(t, payment.RefundSuccess, again.Status, "a closed refund no longer counts")

		// Settlement waits for a refund reversing the payment from pending.
		o4 := f.paidSim(t, mchA, "rf_set_4", 10_000)
		r4 := f.refund(t, mchA, refundReq(o4, "rf_set_4_a", 1_000))
		_, err = f.svc.MarkSettled(f.ctx, o4.ID)
		requireCode(t, err, paygate.CodeConflict)
		f.clock.Advance(5 * time.Second)
		look(1)
		require.Equal(t, payment.RefundSuccess, f.getRefund(t, mchA, r4.ID).Status)
		_, err = f.svc.MarkSettled(f.ctx, o4.ID)
		require.NoError(t, err)
		require.Zero(t, f.balance(t, pending), "every order settled: nothing left pending")

		open := f.create(t, mchA, "rf_set_open")
		_, err = f.svc.MarkSettled(f.ctx, open.ID)
		requireCode(t, err, paygate.CodeConflict)
		_, err = f.svc.MarkSettled(f.ctx, "ord_nope")
		requireCode(t, err, paygate.CodeNotFound)
		f.ledgerOK(t)
	})
}

// TestRefundQueries: by id, by out_refund_no, an order's list; another
// merchant's refunds and orders are not found.
func TestRefundQueries(t *testing.T) {
	t.Parallel()
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		f := newFixture(t, db)
		o := f.paidOnUs(t, mchA, "rf_q_1", 10_000)
		r := f.refund(t, mchA, refundReq(o, "rf-q@1|*", 100))
		got, err := f.svc.GetRefundByOutRefundNo(f.ctx, mchA, "rf-q@1|*")
		require.NoError(t, err)
		require.Equal(t, r, got)
		list, err := f.svc.OrderRefunds(f.ctx, mchA, o.ID)
		require.NoError(t, err)
		require.Equal(t, []payment.Refund{r}, list.Refunds)
		empty := f.paidOnUs(t, mchA, "rf_q_2", 10_000)
		list, err = f.svc.OrderRefunds(f.ctx, mchA, empty.ID)
		require.NoError(t, err)
		require.NotNil(t, list.Refunds)
		require.Empty(t, list.Refunds)

		_, err = f.svc.GetRefund(f.ctx, mchB, r.ID)
		requireCode(t, err, paygate.CodeNotFound)
		_, err = f.svc.GetRefundByOutRefundNo(f.ctx, mchB, "rf-q@1|*")
		requireCode(t, err, paygate.CodeNotFound)
		_, err = f.svc.OrderRefunds(f.ctx, mchB, o.ID)
		requireCode(t, err, paygate.CodeNotFound)
		for _, id := range []string{"", "rfd_nope", strings.Repeat("x", 100)} {
			_, err = f.svc.GetRefund(f.ctx, mchA, id)
			requireCode(t, err, paygate.CodeNotFound, id)
		}
		for _, no := range []string{"", "bad no", strings.Repeat("x", 65)} {
			_, err = f.svc.GetRefundByOutRefundNo(f.ctx, mchA, no)
			requireCode(t, err, paygate.CodeNotFound, no)
		}
	})
}

// TestRefundsPerOrderCapped: at most MaxRefundsPerOrder refunds per order.
func TestRefundsPerOrderCapped(t *testing.T) {
	t.Parallel()
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		f := newFixture(t, db)
		o := f.paidOnUs(t, mchB, "rf_cap_1", 10_000)
		for i := range payment.MaxRefundsPerOrder {
			f.refund(t, mchB, refundReq(o, fmt.Sprintf("rf_cap_%02d", i), 1))
		}
		_, _, err := f.svc.Refund(f.ctx, mchB, refundReq(o, "rf_cap_last", 1))
		requireCode(t, err, paygate.CodeLimitExceeded)
		require.Equal(t, int64(10_000-payment.MaxRefundsPerOrder), f.balance(t, ledger.MerchantPending(mchB, "CNY")))
	})
}

var _ = channel.StatusSuccess
