package payment_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"paygate"
	"paygate/channel"
	"paygate/channel/sim"
	"paygate/ledger"
	"paygate/payment"
	"paygate/store"
	"paygate/store/storetest"
)

// requirePaidOnce checks that the order is paid, with exactly one journal
// and one success notification, and that the books balance.
func requirePaidOnce(t testingT, f *fixture, mch, orderID string) {
	t.Helper()
	require.Equal(t, payment.StatusSuccess, f.get(t, mch, orderID).Status)
	require.Len(t, f.transfers(t, "pay_"+orderID), 1)
	n := 0
	for _, e := range f.events(t, orderID) {
		if e.Type == payment.EventSuccess {
			n++
		}
	}
	require.Equal(t, 1, n, "one TRANSACTION.SUCCESS")
	require.Equal(t, 1, f.count(t, `SELECT COUNT(*) FROM ledger_transfers WHERE ref IN (SELECT id FROM payment_attempts WHERE order_id = $1) AND code = $2`,
		orderID, payment.TransferPayment), "one payment posting for the order")
	f.ledgerOK(t)
}

func TestDuplicateCallbacksPayOnce(t *testing.T) {
	t.Parallel()
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		f := newFixture(t, db)
		o := f.create(t, mchA, "dup_000001")
		f.pay(t, mchA, o.ID, "duplicate")
		f.settle(2 * time.Second)
		f.settle(2 * time.Second)
		require.Len(t, f.callbacks(), 2, "the channel called back twice")
		for _, err := range f.deliverE {
			require.NoError(t, err, "a duplicate is acknowledged, so the channel stops retrying")
		}
		requirePaidOnce(t, f, mchA, o.ID)
		require.Equal(t, int64(10_000-60), f.balance(t, ledger.MerchantPending(mchA, "CNY")))

		// Replaying the same callbacks later (within their window) changes nothing.
		for _, cb := range f.callbacks() {
			_, err := f.svc.Callback(f.ctx, sim.Name, cb.h, cb.body)
			require.NoError(t, err)
		}
		requirePaidOnce(t, f, mchA, o.ID)
		require.Empty(t, f.logs.alerts(t))
	})
}

func TestConcurrentConfirmationsPayOnce(t *testing.T) {
	t.Parallel()
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		f := newFixture(t, db)
		f.hold = true // collect the callback instead of delivering it
		o := f.create(t, mchA, "conc_00001")
		a := f.pay(t, mchA, o.ID, "success")
		f.settle(2 * time.Second)
		cbs := f.callbacks()
		require.Len(t, cbs, 1)
		f.clock.Advance(time.Minute) // the query of ReconcileUnknown is due

		var wg sync.WaitGroup
		errs := make(chan error, 64)
		for range 20 {
			wg.Go(func() {
				_, err := f.svc.Callback(f.ctx, sim.Name, cbs[0].h, cbs[0].body)
				errs <- err
			})
		}
		for range 5 {
			wg.Go(func() {
				_, err := f.svc.ReconcileUnknown(f.ctx, 10)
				errs <- err
			})
			wg.Go(func() {
				r, err := f.sim.Query(f.ctx, channel.QueryRequest{AttemptID: a.ID})
				if err == nil {
					_, err = f.svc.Confirm(f.ctx, r)
				}
				errs <- err
			})
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			require.NoError(t, err)
		}
		requirePaidOnce(t, f, mchA, o.ID)
		require.Equal(t, int64(10_000-60), f.balance(t, ledger.MerchantPending(mchA, "CNY")))
		require.Equal(t, int64(60), f.balance(t, ledger.PlatformFeeFor("CNY", true)))
		require.Empty(t, f.logs.alerts(t))
	})
}

func TestConfirmRacesClose(t *testing.T) {
	t.Parallel()
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		f := newFixture(t, db)
		f.hold = true
		for i := range 10 {
			o := f.create(t, mchA, "racec_"+string(rune('a'+i))+"000")
			f.pay(t, mchA, o.ID, "success")
			f.settle(2 * time.Second)
			cb := f.callbacks()[i]
			var wg sync.WaitGroup
			var closeErr, confirmErr error
			wg.Go(func() { _, closeErr = f.svc.Close(f.ctx, mchA, o.ID) })
			wg.Go(func() { _, confirmErr = f.svc.Callback(f.ctx, sim.Name, cb.h, cb.body) })
			wg.Wait()
			require.NoError(t, confirmErr)
			got := f.get(t, mchA, o.ID)
			switch got.Status {
			case payment.StatusSuccess: // paid first: the close is refused
				requireCode(t, closeErr, paygate.CodeConflict)
				require.Len(t, f.transfers(t, "pay_"+o.ID), 1)
			case payment.StatusClosed: // closed first: the payment is held
				require.NoError(t, closeErr)
				require.Empty(t, f.transfers(t, "pay_"+o.ID))
				atts, err := f.svc.Attempts(f.ctx, mchA, o.ID)
				require.NoError(t, err)
				require.Equal(t, payment.ReviewOrderClosed, atts[0].Review)
			default:
				t.Fatalf("status %s", got.Status)
			}
		}
		f.ledgerOK(t)
	})
}

func TestLatePayment(t *testing.T) {
	t.Parallel()
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		for _, jobRuns := range []bool{true, false} {
			f := newFixture(t, db)
			no := "late_00001"
			if !jobRuns {
				no = "late_00002"
			}
			o := f.create(t, mchB, no)
			a := f.pay(t, mchB, o.ID, "late")
			f.clock.Set(o.TimeExpire)
			if jobRuns {
				n, err := f.svc.CloseExpired(f.ctx, 100)
				require.NoError(t, err)
				require.Equal(t, 1, n)
				require.Equal(t, payment.StatusClosed, f.get(t, mchB, o.ID).Status)
			} else {
				require.Equal(t, payment.StatusNotPay, f.get(t, mchB, o.ID).Status, "expired, but the job has not run")
			}
			before := f.balance(t, ledger.SuspenseFor("CNY", true))
			f.settle(time.Minute) // the late callback
			require.Len(t, f.callbacks(), 1)

			got := f.get(t, mchB, o.ID)
			require.Equal(t, payment.StatusClosed, got.Status, "a late payment does not reopen the order")
			require.Equal(t, payment.CloseExpired, got.CloseReason)
			require.Empty(t, got.TransactionID)
			att := f.attempt(t, a.ID)
			require.Equal(t, channel.StatusSuccess, att.Status, "the payment is recorded")
			require.Equal(t, payment.ReviewOrderClosed, att.Review, "and flagged for review")
			require.Equal(t, o.TimeExpire.Add(time.Minute), att.PaidAt)

			require.Empty(t, f.transfers(t, "pay_"+o.ID), "the merchant is not credited")
			require.Len(t, f.transfers(t, "susp_"+a.ID), 1)
			require.Equal(t, before+10_000, f.balance(t, ledger.SuspenseFor("CNY", true)), "the money waits in suspense")
			f.ledgerOK(t)

			evs := f.events(t, o.ID)
			require.Equal(t, []string{payment.EventClosed, payment.EventLatePayment}, eventTypes(evs), "closed, then told of the late payment")
			late := evs[1].Payload
			require.Equal(t, "CLOSED", late["status"])
			held := late["review_payment"].(map[string]any)
			require.Equal(t, a.ID, held["id"])
			require.Equal(t, "ORDER_CLOSED", held["review"])
			require.Equal(t, 10000.0, held["amount"])

			require.Equal(t, map[string]int{payment.AlertHeldForReview: 1}, f.logs.alerts(t))
			rv, err := f.svc.InReview(f.ctx, "", 10)
			require.NoError(t, err)
			require.Contains(t, ids(rv), a.ID)
		}
	})
}

func ids(as []payment.Attempt) []string {
	out := make([]string, len(as))
	for i, a := range as {
		out[i] = a.ID
	}
	return out
}

func TestSecondPaymentOfPaidOrderIsHeld(t *testing.T) {
	t.Parallel()
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		f := newFixture(t, db)
		o := f.create(t, mchA, "twice_0001")
		a1 := f.pay(t, mchA, o.ID, "success")
		a2 := f.pay(t, mchA, o.ID, "success") // the payer taps twice
		f.settle(2 * time.Second)
		got := f.get(t, mchA, o.ID)
		require.Equal(t, payment.StatusSuccess, got.Status)
		require.Equal(t, a1.ID, got.TransactionID, "the first confirmation pays the order")
		require.Equal(t, payment.ReviewAlreadyPaid, f.attempt(t, a2.ID).Review)
		require.Len(t, f.transfers(t, "susp_"+a2.ID), 1)
		require.Equal(t, int64(10_000-60), f.balance(t, ledger.MerchantPending(mchA, "CNY")), "the merchant is credited once")
		require.Equal(t, []string{payment.EventSuccess, payment.EventDuplicatePayment}, eventTypes(f.events(t, o.ID)))
		f.ledgerOK(t)
	})
}

func TestMismatchedConfirmationsChangeNothing(t *testing.T) {
	t.Parallel()
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		f := newFixture(t, db)
		o := f.create(t, mchA, "mism_00001")
		other := f.create(t, mchA, "mism_00002")
		a := f.pay(t, mchA, o.ID, "timeout")
		good := channel.Result{Channel: sim.Name, ChannelTradeNo: a.ChannelTradeNo, AttemptID: a.ID, OrderID: o.ID,
			Status: channel.StatusSuccess, Amount: 10_000, Currency: "CNY", PaidAt: f.clock.Now()}
		cases := []struct {
			name  string
			edit  func(r *channel.Result)
			code  paygate.Code
			field string
		}{
			{"amount", func(r *channel.Result) { r.Amount = 1 }, paygate.CodeInvalidArgument, "amount"},
			{"amount over", func(r *channel.Result) { r.Amount = 10_001 }, paygate.CodeInvalidArgument, "amount"},
			{"currency", func(r *channel.Result) { r.Currency = "USD" }, paygate.CodeCurrencyMismatch, "currency"},
			{"order", func(r *channel.Result) { r.OrderID = other.ID }, paygate.CodeInvalidArgument, "order_id"},
			{"channel", func(r *channel.Result) { r.Channel = "wechatpay" }, paygate.CodeInvalidArgument, "channel"},
			{"trade number", func(r *channel.Result) { r.ChannelTradeNo = "sim_other" }, paygate.CodeInvalidArgument, "channel_trade_no"},
			{"no trade number", func(r *channel.Result) { r.ChannelTradeNo = "" }, paygate.CodeInvalidArgument, "channel_trade_no"},
			{"unknown attempt", func(r *channel.Result) { r.AttemptID = "pay_unknown" }, paygate.CodeNotFound, "attempt_id"},
			{"no attempt", func(r *channel.Result) { r.AttemptID = "" }, paygate.CodeNotFound, "attempt_id"},
			{"not final", func(r *channel.Result) { r.Status = channel.StatusProcessing }, paygate.CodeInvalidArgument, "status"},
			{"failed, wrong amount", func(r *channel.Result) { r.Status, r.Amount = channel.StatusFailed, 5 }, paygate.CodeInvalidArgument, "amount"},
		}
		mismatches := 0
		for _, c := range cases {
			r := good
			c.edit(&r)
			_, err := f.svc.Confirm(f.ctx, r)
			requireCode(t, err, c.code, c.name)
			require.Equal(t, c.field, fieldOf(err), c.name)
			if c.field != "status" {
				mismatches++
			}
		}

		// Forged and tampered callbacks through the callback entry point.
		sign := func(r channel.Result) (http.Header, []byte) {
			body := mustJSON(t, r)
			return f.sim.Sign(f.clock.Now(), "n1", body), body
		}
		h, body := sign(good)
		forger, err := sim.New(sim.Config{Secret: []byte("not-the-channel-secret-not-at-al"), Clock: f.clock, Dispatcher: f.disp,
			Deliver: func(context.Context, http.Header, []byte) error { return nil }})
		require.NoError(t, err)
		tampered := append([]byte(nil), body...)
		tampered[len(tampered)-2] ^= 1
		wrongAmount := good
		wrongAmount.Amount = 1
		wh, wbody := sign(wrongAmount)
		forged := []struct {
			name    string
			channel string
			h       http.Header
			body    []byte
			code    paygate.Code
		}{
			{"other key", sim.Name, forger.Sign(f.clock.Now(), "n1", body), body, paygate.CodeUnauthenticated},
			{"tampered body", sim.Name, h, tampered, paygate.CodeUnauthenticated},
			{"no signature", sim.Name, http.Header{}, body, paygate.CodeUnauthenticated},
			{"stale", sim.Name, f.sim.Sign(f.clock.Now().Add(-time.Hour), "n1", body), body, paygate.CodeUnauthenticated},
			{"unknown channel", "wechatpay", h, body, paygate.CodeNotFound},
			{"authentic, wrong amount", sim.Name, wh, wbody, paygate.CodeInvalidArgument},
		}
		for _, c := range forged {
			_, err := f.svc.Callback(f.ctx, c.channel, c.h, c.body)
			requireCode(t, err, c.code, c.name)
		}
		mismatches++ // the authentic one with the wrong amount

		require.Equal(t, payment.StatusNotPay, f.get(t, mchA, o.ID).Status)
		require.Equal(t, payment.StatusNotPay, f.get(t, mchA, other.ID).Status)
		att := f.attempt(t, a.ID)
		require.Equal(t, channel.StatusProcessing, att.Status)
		require.Equal(t, a.ChannelTradeNo, att.ChannelTradeNo)
		require.Empty(t, f.transfers(t, "pay_"+o.ID, "fee_"+o.ID, "susp_"+a.ID))
		require.Empty(t, f.events(t, ""))
		require.Zero(t, f.count(t, `SELECT COUNT(*) FROM ledger_transfers`))
		require.Equal(t, map[string]int{payment.AlertMismatch: mismatches, payment.AlertCallbackRejected: 4}, f.logs.alerts(t))
		for _, r := range f.logs.records() {
			for k, v := range r {
				require.NotContains(t, fmt.Sprint(v), h.Get(sim.HeaderSignature), "logs never carry a signature (%s)", k)
			}
		}

		// The genuine result still books afterwards.
		_, err = f.svc.Callback(f.ctx, sim.Name, h, body)
		require.NoError(t, err)
		requirePaidOnce(t, f, mchA, o.ID)
	})
}

func TestChannelContradictions(t *testing.T) {
	t.Parallel()
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		f := newFixture(t, db)
		o := f.create(t, mchA, "contra_001")
		a := f.pay(t, mchA, o.ID, "success")
		f.settle(2 * time.Second)
		requirePaidOnce(t, f, mchA, o.ID)
		_, err := f.svc.Confirm(f.ctx, channel.Result{Channel: sim.Name, ChannelTradeNo: a.ChannelTradeNo, AttemptID: a.ID,
			OrderID: o.ID, Status: channel.StatusFailed, Amount: 10_000, Currency: "CNY"})
		requireCode(t, err, paygate.CodeConflict)
		requirePaidOnce(t, f, mchA, o.ID)
		require.Equal(t, channel.StatusSuccess, f.attempt(t, a.ID).Status)

		// FAILED, then SUCCESS: the money is real, so it is booked.
		o2 := f.create(t, mchA, "contra_002")
		b := f.pay(t, mchA, o2.ID, "timeout")
		_, err = f.svc.Confirm(f.ctx, channel.Result{Channel: sim.Name, ChannelTradeNo: b.ChannelTradeNo, AttemptID: b.ID,
			OrderID: o2.ID, Status: channel.StatusFailed, Amount: 10_000, Currency: "CNY"})
		require.NoError(t, err)
		require.Equal(t, payment.StatusPayError, f.get(t, mchA, o2.ID).Status)
		_, err = f.svc.Confirm(f.ctx, channel.Result{Channel: sim.Name, ChannelTradeNo: b.ChannelTradeNo, AttemptID: b.ID,
			OrderID: o2.ID, Status: channel.StatusSuccess, Amount: 10_000, Currency: "CNY", PaidAt: f.clock.Now()})
		require.NoError(t, err)
		requirePaidOnce(t, f, mchA, o2.ID)
		require.Equal(t, map[string]int{payment.AlertContradiction: 2}, f.logs.alerts(t))
	})
}

func mustJSON(t *testing.T, v any) []byte {
	t.Helper()
	b, err := json.Marshal(v)
	require.NoError(t, err)
	return b
}
