package payment_test

import (
	"fmt"
	"os"
	"strings"
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

// TestDocumentedTransitions keeps docs/ORDERS.md's table and the code's
// state machine identical, and checks the machine is complete.
func TestDocumentedTransitions(t *testing.T) {
	t.Parallel()
	b, err := os.ReadFile("../docs/ORDERS.md")
	require.NoError(t, err)
	doc := string(b)
	start, end := strings.Index(doc, "<!-- transitions -->"), strings.Index(doc, "<!-- /transitions -->")
	require.True(t, start >= 0 && end > start, "docs/ORDERS.md marks its transition table")
	var rows []payment.Transition
	for _, line := range strings.Split(doc[start:end], "\n") {
		cells := strings.Split(line, "|")
		if len(cells) < 5 {
			continue
		}
		from, on, to := strings.TrimSpace(cells[1]), strings.TrimSpace(cells[2]), strings.TrimSpace(cells[3])
		if from == "from" || strings.HasPrefix(from, "---") {
			continue
		}
		tr := payment.Transition{From: payment.Status(from), On: payment.Trigger(on), To: payment.Status(to)}
		if to == "refused" {
			tr.To, tr.Refused = tr.From, true
		}
		rows = append(rows, tr)
	}
	require.Equal(t, payment.Transitions(), rows, "docs/ORDERS.md and payment.Transitions agree")

	seen := map[string]bool{}
	for _, tr := range rows {
		k := string(tr.From) + "/" + string(tr.On)
		require.False(t, seen[k], "one row per pair: %s", k)
		seen[k] = true
	}
	require.Len(t, seen, len(payment.Statuses)*len(payment.Triggers), "every (status, trigger) pair is listed")
}

// TestStateMachine drives every row of the state machine through the
// service on both stores: it brings a fresh order to the row's status with
// a second payment attempt in flight, fires the trigger, and checks the
// outcome, the notifications and the books.
func TestStateMachine(t *testing.T) {
	t.Parallel()
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		f := newFixture(t, db)
		for i, tr := range payment.Transitions() {
			name := fmt.Sprintf("%s+%s", tr.From, tr.On)
			no := fmt.Sprintf("sm_%04d", i)
			// Authorization rows run on manual-capture orders, whose
			// payment authorizes and whose SUCCESS is a full capture.
			manual := tr.From == payment.StatusAuthorized || tr.On == payment.TriggerAuthorized || tr.On == payment.TriggerCapture ||
				tr.On == payment.TriggerVoid || tr.On == payment.TriggerAuthExpire
			req := request(no)
			if manual {
				req.CaptureMethod = payment.CaptureManual
			}
			o, _, err := f.svc.Create(f.ctx, mchA, req)
			require.NoError(t, err)
			capture := func() {
				if manual {
					_, err := f.svc.Capture(f.ctx, mchA, o.ID, payment.CaptureRequest{})
					require.NoError(t, err, name)
				}
			}
			// The in-flight attempt that "paid" and "failed" confirm: the
			// channel accepted it and will not call back.
			x := f.pay(t, mchA, o.ID, "timeout")
			switch tr.From {
			case payment.StatusPayError:
				f.pay(t, mchA, o.ID, "fail")
				f.settle(2 * time.Second)
			case payment.StatusSuccess:
				f.pay(t, mchA, o.ID, "success")
				f.settle(2 * time.Second)
				capture()
			case payment.StatusAuthorized:
				f.pay(t, mchA, o.ID, "success")
				f.settle(2 * time.Second)
			case payment.StatusClosed:
				_, err := f.svc.Close(f.ctx, mchA, o.ID)
				require.NoError(t, err)
			case payment.StatusRefund:
				f.pay(t, mchA, o.ID, "success")
				f.settle(2 * time.Second)
				capture()
				f.refund(t, mchA, refundReq(f.get(t, mchA, o.ID), no+"_r1", 5_000))
			}
			o = f.get(t, mchA, o.ID)
			require.Equal(t, tr.From, o.Status, name)
			evsBefore := len(f.events(t, o.ID))

			switch tr.On {
			case payment.TriggerPay:
				_, err = f.svc.SandboxPay(f.ctx, mchA, o.ID, "success")
			case payment.TriggerPaid, payment.TriggerAuthorized:
				_, err = f.svc.Confirm(f.ctx, channel.Result{Channel: sim.Name, ChannelTradeNo: x.ChannelTradeNo, AttemptID: x.ID,
					OrderID: o.ID, Status: channel.StatusSuccess, Amount: x.Amount, Currency: x.Currency, PaidAt: f.clock.Now()})
			case payment.TriggerFailed:
				_, err = f.svc.Confirm(f.ctx, channel.Result{Channel: sim.Name, ChannelTradeNo: x.ChannelTradeNo, AttemptID: x.ID,
					OrderID: o.ID, Status: channel.StatusFailed, Amount: x.Amount, Currency: x.Currency, FailCode: "NO_MONEY"})
			case payment.TriggerClose:
				_, err = f.svc.Close(f.ctx, mchA, o.ID)
			case payment.TriggerExpire:
				f.clock.Set(o.TimeExpire)
				_, err = f.svc.CloseExpired(f.ctx, 1000)
			case payment.TriggerRefund:
				_, _, err = f.svc.Refund(f.ctx, mchA, refundReq(o, no+"_r2", 5_000))
			case payment.TriggerCapture:
				_, err = f.svc.Capture(f.ctx, mchA, o.ID, payment.CaptureRequest{})
			case payment.TriggerVoid:
				_, err = f.svc.Void(f.ctx, mchA, o.ID)
			case payment.TriggerAuthExpire:
				f.clock.Set(t0.Add(payment.DefaultAuthorizationPeriod + time.Hour))
				_, err = f.svc.ExpireAuthorizations(f.ctx, 1000)
			}
			got := f.get(t, mchA, o.ID)
			require.Equal(t, tr.To, got.Status, name)
			if tr.Refused {
				want := paygate.CodeConflict
				if (tr.On == payment.TriggerCapture || tr.On == payment.TriggerVoid) && !tr.From.Open() && tr.From != payment.StatusClosed {
					want = paygate.CodeAlreadyResolved // captured before
				}
				requireCode(t, err, want, name)
				require.Len(t, f.events(t, o.ID), evsBefore, "%s: a refused trigger notifies nobody", name)
			} else {
				require.NoError(t, err, name)
			}

			newEvents := eventTypes(f.events(t, o.ID)[evsBefore:])
			xa := f.attempt(t, x.ID)
			susp := f.transfers(t, "susp_"+x.ID)
			confirmed := tr.On == payment.TriggerPaid || tr.On == payment.TriggerAuthorized
			switch {
			case tr.Refused:
			case confirmed && tr.From.Open() && manual:
				require.Equal(t, []string{payment.EventAuthorized}, newEvents, name)
				require.Equal(t, x.ID, got.TransactionID, name)
				hold := f.transfers(t, "pay_"+o.ID)
				require.Len(t, hold, 1, name)
				require.Equal(t, ledger.HoldPending, hold[0].HoldStatus, name)
				require.Equal(t, int64(10_000), got.Amount.Authorized, name)
				require.Zero(t, got.Amount.PayerTotal, name)
				require.Empty(t, susp, name)
			case confirmed && manual:
				// A second or late authorization was only held at the
				// channel, never taken: voided there, nothing to review.
				require.Empty(t, newEvents, name)
				require.Equal(t, channel.StatusSuccess, xa.Status, name)
				require.Empty(t, xa.Review, name)
				require.Empty(t, susp, name)
				at, ok := f.sim.Authorization(x.ID)
				require.True(t, ok, name)
				require.Equal(t, sim.AuthorizationVoided, at.Status, name)
				require.NotEqual(t, x.ID, got.TransactionID, name)
			case tr.On == payment.TriggerCapture:
				require.Equal(t, []string{payment.EventSuccess}, newEvents, name)
				require.Equal(t, int64(10_000), got.Amount.Captured, name)
				require.Len(t, f.transfers(t, "cap_"+o.ID), 1, name)
			case tr.On == payment.TriggerVoid || (tr.On == payment.TriggerAuthExpire && tr.From == payment.StatusAuthorized):
				require.Equal(t, []string{payment.EventClosed}, newEvents, name)
				want := payment.CloseVoided
				if tr.On == payment.TriggerAuthExpire {
					want = payment.CloseAuthorizationExpired
				}
				require.Equal(t, want, got.CloseReason, name)
				require.Len(t, f.transfers(t, "void_"+o.ID), 1, name)
			case confirmed && tr.From.Open():
				require.Equal(t, []string{payment.EventSuccess}, newEvents, name)
				require.Equal(t, x.ID, got.TransactionID, name)
				require.Len(t, f.transfers(t, "pay_"+o.ID), 1, name)
				require.Empty(t, susp, name)
			case confirmed && (tr.From == payment.StatusSuccess || tr.From == payment.StatusRefund || tr.From == payment.StatusAuthorized):
				require.Equal(t, []string{payment.EventDuplicatePayment}, newEvents, name)
				require.Equal(t, payment.ReviewAlreadyPaid, xa.Review, name)
				require.Len(t, susp, 1, name)
				require.NotEqual(t, x.ID, got.TransactionID, "%s: the first payment keeps the order", name)
			case confirmed && tr.From == payment.StatusClosed:
				require.Equal(t, []string{payment.EventLatePayment}, newEvents, name)
				require.Equal(t, payment.ReviewOrderClosed, xa.Review, name)
				require.Len(t, susp, 1, name)
				require.Empty(t, f.transfers(t, "pay_"+o.ID), name)
			case tr.On == payment.TriggerFailed:
				require.Empty(t, newEvents, name)
				require.Equal(t, channel.StatusFailed, xa.Status, name)
				require.Equal(t, "NO_MONEY", xa.FailCode, name)
			case (tr.On == payment.TriggerClose || tr.On == payment.TriggerExpire) && tr.From.Open():
				require.Equal(t, []string{payment.EventClosed}, newEvents, name)
				want := payment.CloseMerchant
				if tr.On == payment.TriggerExpire {
					want = payment.CloseExpired
				}
				require.Equal(t, want, got.CloseReason, name)
				require.Equal(t, f.clock.Now(), got.CloseTime, name)
			case tr.On == payment.TriggerRefund:
				require.Empty(t, newEvents, "%s: refunds notify with their own resource", name)
				rs, err := f.svc.OrderRefunds(f.ctx, mchA, o.ID)
				require.NoError(t, err)
				require.Equal(t, "_r2", rs.Refunds[0].OutRefundNo[len(no):], name)
			default:
				require.Empty(t, newEvents, "%s: no change, no notification", name)
			}
			if !confirmed && tr.On != payment.TriggerFailed {
				require.Equal(t, channel.StatusProcessing, xa.Status, "%s: the in-flight attempt is untouched", name)
			}
			f.clock.Set(t0)
		}
		f.ledgerOK(t)
		paid := f.count(t, `SELECT COUNT(*) FROM payment_orders WHERE status IN ('SUCCESS', 'REFUND')`)
		feeBack := f.count(t, `SELECT COALESCE(SUM(fee_refund), 0) FROM payment_refunds`)
		require.Equal(t, int64(paid*(10_000-60)+feeBack), f.balance(t, ledger.MerchantPending(mchA, "CNY")),
			"the merchant got whole payments less fees, plus the fee shares of refunds (their money still held)")
	})
}
