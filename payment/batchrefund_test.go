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
	"paygate/payment"
	"paygate/store"
	"paygate/store/storetest"
)

const batchNotify = "https://merchant.example.com/batch"

func newBatches(t testingT, f *fixture) *payment.BatchRefunds {
	t.Helper()
	b, err := payment.NewBatchRefunds(payment.BatchConfig{Payments: f.svc, Store: f.db.RefundBatches(), Clock: f.clock})
	require.NoError(t, err)
	return b
}

func line(no, orderID string, amount, total int64) payment.RefundBatchItemRequest {
	return payment.RefundBatchItemRequest{OutRefundNo: no, OrderID: orderID, Reason: "退货",
		Amount: payment.RefundAmountRequest{Refund: amount, Total: total}}
}

// drain runs the worker until no line is due.
func drain(t testingT, f *fixture, b *payment.BatchRefunds) {
	t.Helper()
	for range 100 {
		n, err := b.ProcessRefundBatches(f.ctx, 7)
		require.NoError(t, err)
		if n == 0 {
			return
		}
	}
	t.Errorf("the worker never drained")
}

// refundsOf counts the merchant's refunds with the out_refund_no.
func (f *fixture) refundsOf(t testingT, mch, no string) int {
	return f.count(t, `SELECT COUNT(*) FROM payment_refunds WHERE merchant_id = $1 AND out_refund_no = $2`, mch, no)
}

// TestRefundBatchLines: a batch with good and bad lines is accepted at
// once; each bad line fails alone with its code and field (at submit for
// what needs no order, in the worker for the rest); the good ones are
// refunded once; the batch finishes with its notification in the
// transaction of its last line; a replay returns the batch, a different
// body is OUT_BATCH_NO_USED naming the line and field.
func TestRefundBatchLines(t *testing.T) {
	t.Parallel()
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		f := newFixture(t, db)
		b := newBatches(t, f)
		o1 := f.paidOnUs(t, mchA, "BL-0001", 10_000)
		o2 := f.paidOnUs(t, mchA, "BL-0002", 5_000)
		o3 := f.paidSim(t, mchA, "BL-0003", 3_000)
		theirs := f.paidOnUs(t, mchB, "BL-0004", 1_000)
		unpaid := f.create(t, mchA, "BL-0005")
		byNo := line("L-7", "", 500, 5_000)
		byNo.OutTradeNo = "BL-0002"
		wrongCur := line("L-11", o1.ID, 1, 10_000)
		wrongCur.Amount.Currency = "USD"
		badCur := line("L-12", o1.ID, 1, 10_000)
		badCur.Amount.Currency = "XXZ"
		badWait := line("L-13", o1.ID, 1, 10_000)
		badWait.IfInsufficient = "LATER"
		req := payment.CreateRefundBatchRequest{OutBatchNo: "BATCH-1", NotifyURL: batchNotify, Items: []payment.RefundBatchItemRequest{
			line("L-1", o1.ID, 4_000, 10_000),           // 1 ok
			line("L-2", o1.ID, 6_000, 10_000),           // 2 ok: the rest
			line("L-3", o1.ID, 1, 10_000),               // 3 over-refund
			line("L-4", o2.ID, 0, 5_000),                // 4 zero amount
			line("L-5", o2.ID, -5, 5_000),               // 5 negative amount
			line("L-1", o2.ID, 100, 5_000),              // 6 repeats line 1's number
			byNo,                                        // 7 ok, by out_trade_no
			line("L-8", "ord_nope", 1, 5_000),           // 8 unknown order
			line("L-9", theirs.ID, 1, 1_000),            // 9 another merchant's order
			line("L-10", o3.ID, 3_000, 3_000),           // 10 ok, through the channel
			wrongCur,                                    // 11 another currency than the batch's
			badCur,                                      // 12 unknown currency
			badWait,                                     // 13 bad if_insufficient
			line("L 14", o2.ID, 1, 5_000),               // 14 bad out_refund_no
			line("L-15", "", 1, 5_000),                  // 15 no order named
			line("L-16", unpaid.ID, 1, 10_000),          // 16 unpaid order
			line("L-17", o2.ID, 1, 4_000),               // 17 wrong total
			line("L-18", o2.ID, 100_000_000_000, 5_000), // 18 over the maximum
		}}
		batch, replay, err := b.SubmitRefundBatch(f.ctx, mchA, req)
		require.NoError(t, err)
		require.False(t, replay)
		require.True(t, strings.HasPrefix(batch.ID, payment.PrefixRefundBatch))
		require.Equal(t, payment.RefundBatchProcessing, batch.Status)
		require.Equal(t, 18, batch.TotalCount)
		require.Equal(t, 9, batch.FailedCount, "the lines that need no order fail at once")
		require.Equal(t, 9, batch.PendingCount)
		require.Equal(t, 0, f.count(t, `SELECT COUNT(*) FROM payment_refunds`), "submitting moves no money")

		drain(t, f, b)
		got, err := b.GetRefundBatch(f.ctx, mchA, batch.ID, payment.RefundBatchPage{})
		require.NoError(t, err)
		require.Equal(t, payment.RefundBatchFinished, got.Status)
		require.Equal(t, 4, got.AcceptedCount)
		require.Equal(t, 14, got.FailedCount)
		require.Equal(t, 0, got.PendingCount)
		require.Equal(t, int64(4_000+6_000+500+3_000), got.AcceptedAmount)
		require.False(t, got.FinishTime.IsZero())
		require.Len(t, got.Items, 18)
		want := []struct {
			status payment.RefundBatchItemStatus
			code   paygate.Code
			field  string
		}{
			{payment.RefundItemAccepted, "", ""}, {payment.RefundItemAccepted, "", ""},
			{payment.RefundItemFailed, paygate.CodeLimitExceeded, "amount.refund"},
			{payment.RefundItemFailed, paygate.CodeAmountNotPositive, "amount.refund"},
			{payment.RefundItemFailed, paygate.CodeAmountNotPositive, "amount.refund"},
			{payment.RefundItemFailed, paygate.CodeInvalidArgument, "out_refund_no"},
			{payment.RefundItemAccepted, "", ""},
			{payment.RefundItemFailed, paygate.CodeNotFound, ""},
			{payment.RefundItemFailed, paygate.CodeNotFound, ""},
			{payment.RefundItemAccepted, "", ""},
			{payment.RefundItemFailed, paygate.CodeCurrencyMismatch, "amount.currency"},
			{payment.RefundItemFailed, paygate.CodeUnknownCurrency, "amount.currency"},
			{payment.RefundItemFailed, paygate.CodeInvalidArgument, "if_insufficient"},
			{payment.RefundItemFailed, paygate.CodeInvalidArgument, "out_refund_no"},
			{payment.RefundItemFailed, paygate.CodeInvalidArgument, "order_id"},
			{payment.RefundItemFailed, paygate.CodeConflict, ""},
			{payment.RefundItemFailed, paygate.CodeInvalidArgument, "amount.total"},
			{payment.RefundItemFailed, paygate.CodeLimitExceeded, "amount.refund"},
		}
		for i, w := range want {
			it := got.Items[i]
			require.Equal(t, i+1, it.Line)
			require.Equal(t, w.status, it.Status, "line %d: %+v", i+1, it)
			require.Equal(t, w.code, it.FailCode, "line %d: %+v", i+1, it)
			require.Equal(t, w.field, it.FailField, "line %d", i+1)
			if w.status == payment.RefundItemAccepted {
				r := f.getRefund(t, mchA, it.RefundID)
				require.Equal(t, it.OutRefundNo, r.OutRefundNo)
				require.Equal(t, it.Amount.Refund, r.Amount.Refund)
				require.Equal(t, batchNotify, r.NotifyURL, "the batch's notify_url gets the refund's notifications")
				require.Equal(t, r.Status, it.RefundStatus)
			} else {
				require.Empty(t, it.RefundID)
				require.NotEmpty(t, it.FailMessage)
			}
		}
		require.Equal(t, payment.RefundSuccess, got.Items[0].RefundStatus, "on us: at once")
		require.Equal(t, payment.RefundProcessing, got.Items[9].RefundStatus, "through the channel: later")
		require.Equal(t, 1, f.refundsOf(t, mchA, "L-1"), "line 6 repeating line 1's number refunded nothing")
		require.Equal(t, 0, f.count(t, `SELECT COUNT(*) FROM payment_refunds WHERE merchant_id = $1`, mchB))
		require.Equal(t, 4, f.count(t, `SELECT COUNT(*) FROM payment_refunds`))
		var finished []event
		for _, e := range f.events(t, "") {
			if e.Type == payment.EventRefundBatchFinished {
				finished = append(finished, e)
			}
		}
		require.Len(t, finished, 1)
		require.Equal(t, batch.ID, finished[0].Payload["id"])
		require.Equal(t, "FINISHED", finished[0].Payload["status"])
		require.EqualValues(t, 14, finished[0].Payload["failed_count"])
		require.NotContains(t, finished[0].Payload, "items", "the notification carries the summary")
		f.ledgerOK(t)

		// Pages follow the lines.
		p1, err := b.GetRefundBatchByOutBatchNo(f.ctx, mchA, "BATCH-1", payment.RefundBatchPage{Limit: 10})
		require.NoError(t, err)
		require.Len(t, p1.Items, 10)
		require.Equal(t, "10", p1.NextCursor)
		p2, err := b.GetRefundBatch(f.ctx, mchA, batch.ID, payment.RefundBatchPage{Limit: 10, Cursor: p1.NextCursor})
		require.NoError(t, err)
		require.Len(t, p2.Items, 8)
		require.Equal(t, 11, p2.Items[0].Line)
		require.Empty(t, p2.NextCursor)

		// Replays and reuse.
		again, replay, err := b.SubmitRefundBatch(f.ctx, mchA, req)
		require.NoError(t, err)
		require.True(t, replay)
		require.Equal(t, batch.ID, again.ID)
		require.Equal(t, payment.RefundBatchFinished, again.Status)
		diff := req
		diff.Items = append([]payment.RefundBatchItemRequest(nil), req.Items...)
		diff.Items[6].Amount.Refund++
		_, _, err = b.SubmitRefundBatch(f.ctx, mchA, diff)
		requireCode(t, err, paygate.CodeOutBatchNoUsed)
		require.Equal(t, "items[6].amount.refund", fieldOf(err))
		diff = req
		diff.NotifyURL = ""
		_, _, err = b.SubmitRefundBatch(f.ctx, mchA, diff)
		requireCode(t, err, paygate.CodeOutBatchNoUsed)
		require.Equal(t, "notify_url", fieldOf(err))
		other, replay, err := b.SubmitRefundBatch(f.ctx, mchB, payment.CreateRefundBatchRequest{OutBatchNo: "BATCH-1",
			Items: []payment.RefundBatchItemRequest{line("L-1", theirs.ID, 1, 1_000)}})
		require.NoError(t, err, "batch numbers are per merchant")
		require.False(t, replay)
		require.NotEqual(t, batch.ID, other.ID)
		_, err = b.GetRefundBatch(f.ctx, mchB, batch.ID, payment.RefundBatchPage{})
		requireCode(t, err, paygate.CodeNotFound, "another merchant's batch")
	})
}

// TestRefundBatchBadRequests: a batch that is wrong as a whole is refused
// with a clear code and field, and nothing is stored.
func TestRefundBatchBadRequests(t *testing.T) {
	t.Parallel()
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		f := newFixture(t, db)
		b := newBatches(t, f)
		ok := []payment.RefundBatchItemRequest{line("R-1", "ord_x", 1, 1)}
		many := make([]payment.RefundBatchItemRequest, payment.MaxRefundBatchItems+1)
		for i := range many {
			many[i] = line(fmt.Sprintf("R-%d", i), "ord_x", 1, 1)
		}
		cases := []struct {
			name  string
			mch   string
			req   payment.CreateRefundBatchRequest
			code  paygate.Code
			field string
		}{
			{"no out_batch_no", mchA, payment.CreateRefundBatchRequest{Items: ok}, paygate.CodeInvalidArgument, "out_batch_no"},
			{"long out_batch_no", mchA, payment.CreateRefundBatchRequest{OutBatchNo: strings.Repeat("B", 65), Items: ok}, paygate.CodeInvalidArgument, "out_batch_no"},
			{"bad out_batch_no", mchA, payment.CreateRefundBatchRequest{OutBatchNo: "B 1", Items: ok}, paygate.CodeInvalidArgument, "out_batch_no"},
			{"no items", mchA, payment.CreateRefundBatchRequest{OutBatchNo: "B1"}, paygate.CodeInvalidArgument, "items"},
			{"1,001 items", mchA, payment.CreateRefundBatchRequest{OutBatchNo: "B1", Items: many}, paygate.CodeInvalidArgument, "items"},
			{"bad notify_url", mchA, payment.CreateRefundBatchRequest{OutBatchNo: "B1", NotifyURL: "ftp://x", Items: ok}, paygate.CodeInvalidArgument, "notify_url"},
			{"unknown currency", mchA, payment.CreateRefundBatchRequest{OutBatchNo: "B1", Currency: "XXZ", Items: ok}, paygate.CodeUnknownCurrency, "currency"},
			{"suspended merchant", mchSusp, payment.CreateRefundBatchRequest{OutBatchNo: "B1", Items: ok}, paygate.CodeForbidden, ""},
		}
		for _, c := range cases {
			_, _, err := b.SubmitRefundBatch(f.ctx, c.mch, c.req)
			requireCode(t, err, c.code, c.name)
			require.Equal(t, c.field, fieldOf(err), c.name)
		}
		require.Zero(t, f.count(t, `SELECT COUNT(*) FROM refund_batches`))
		require.Zero(t, f.count(t, `SELECT COUNT(*) FROM refund_batch_items`))
		for _, pg := range []payment.RefundBatchPage{{Limit: -1}, {Limit: payment.MaxRefundBatchPg + 1}, {Cursor: "x"}, {Cursor: "0"}} {
			_, err := b.GetRefundBatch(f.ctx, mchA, "rfb_x", pg)
			requireCode(t, err, paygate.CodeInvalidArgument, pg)
		}
		_, err := b.GetRefundBatchByOutBatchNo(f.ctx, mchA, "no such", payment.RefundBatchPage{})
		requireCode(t, err, paygate.CodeNotFound)
		_, err = b.GetRefundBatch(f.ctx, mchA, strings.Repeat("x", 200), payment.RefundBatchPage{})
		requireCode(t, err, paygate.CodeNotFound)

		// A batch whose every line fails its checks is finished at once,
		// its notification queued with it.
		bad, _, err := b.SubmitRefundBatch(f.ctx, mchA, payment.CreateRefundBatchRequest{OutBatchNo: "ALL-BAD", NotifyURL: batchNotify,
			Items: []payment.RefundBatchItemRequest{line("R-1", "ord_x", 0, 1), line("R-2", "", 1, 1)}})
		require.NoError(t, err)
		require.Equal(t, payment.RefundBatchFinished, bad.Status)
		require.Equal(t, 2, bad.FailedCount)
		require.Equal(t, []string{payment.EventRefundBatchFinished}, eventTypes(f.events(t, "")))
		n, err := b.ProcessRefundBatches(f.ctx, 10)
		require.NoError(t, err)
		require.Zero(t, n)
	})
}

// TestRefundBatchCrashAndRetry: a worker that refunded a line and died
// before recording it, and one that claimed lines and died, leave no
// double refund: the lease hands the lines on, the refund is found again
// by its out_refund_no, and a merchant's replay of the batch gets it
// moving at once.
func TestRefundBatchCrashAndRetry(t *testing.T) {
	t.Parallel()
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		f := newFixture(t, db)
		b := newBatches(t, f)
		o := f.paidOnUs(t, mchA, "CR-0001", 10_000)
		var items []payment.RefundBatchItemRequest
		for i := range 10 {
			items = append(items, line(fmt.Sprintf("CR-%d", i), o.ID, 1_000, 10_000))
		}
		req := payment.CreateRefundBatchRequest{OutBatchNo: "CRASH-1", Items: items}
		batch, _, err := b.SubmitRefundBatch(f.ctx, mchA, req)
		require.NoError(t, err)

		// A worker claimed every line, refunded the first three, and died.
		require.NoError(t, db.RefundBatches().InTx(f.ctx, func(tx payment.BatchTx) error {
			its, err := tx.ClaimRefundBatchItems(f.ctx, f.clock.Now(), f.clock.Now().Add(time.Minute), 100)
			require.Len(t, its, 10)
			return err
		}))
		var first []payment.Refund
		for _, it := range items[:3] {
			r, _, err := f.svc.Refund(f.ctx, mchA, payment.CreateRefundRequest{OrderID: it.OrderID, OutRefundNo: it.OutRefundNo,
				Reason: it.Reason, Amount: payment.RefundAmountRequest{Refund: it.Amount.Refund, Total: it.Amount.Total, Currency: "CNY"},
				IfInsufficient: payment.InsufficientFail})
			require.NoError(t, err)
			first = append(first, r)
		}
		n, err := b.ProcessRefundBatches(f.ctx, 100)
		require.NoError(t, err)
		require.Zero(t, n, "leased lines wait for their lease")

		// The merchant retries: the batch moves at once.
		again, replay, err := b.SubmitRefundBatch(f.ctx, mchA, req)
		require.NoError(t, err)
		require.True(t, replay)
		require.Equal(t, batch.ID, again.ID)
		drain(t, f, b)
		got, err := b.GetRefundBatch(f.ctx, mchA, batch.ID, payment.RefundBatchPage{})
		require.NoError(t, err)
		require.Equal(t, payment.RefundBatchFinished, got.Status)
		require.Equal(t, 10, got.AcceptedCount)
		for i, r := range first {
			require.Equal(t, r.ID, got.Items[i].RefundID, "the refund made before the crash is the line's")
		}
		for _, it := range items {
			require.Equal(t, 1, f.refundsOf(t, mchA, it.OutRefundNo))
		}
		require.Equal(t, 10, f.count(t, `SELECT COUNT(*) FROM payment_refunds`))

		// Without a replay, the lease alone hands lines on.
		batch2, _, err := b.SubmitRefundBatch(f.ctx, mchA, payment.CreateRefundBatchRequest{OutBatchNo: "CRASH-2",
			Items: []payment.RefundBatchItemRequest{line("CR2-1", f.paidOnUs(t, mchA, "CR-0002", 500).ID, 500, 500)}})
		require.NoError(t, err)
		require.NoError(t, db.RefundBatches().InTx(f.ctx, func(tx payment.BatchTx) error {
			_, err := tx.ClaimRefundBatchItems(f.ctx, f.clock.Now(), f.clock.Now().Add(time.Minute), 100)
			return err
		}))
		f.clock.Advance(time.Minute)
		drain(t, f, b)
		got, err = b.GetRefundBatch(f.ctx, mchA, batch2.ID, payment.RefundBatchPage{})
		require.NoError(t, err)
		require.Equal(t, payment.RefundBatchFinished, got.Status)
		require.Equal(t, 1, got.AcceptedCount)
		f.ledgerOK(t)
	})
}

// TestRefundBatchRaces: the same batch submitted at once is one batch;
// two batches and single refunds racing on the same out_refund_no make one
// refund; workers racing on the same lines record each once.
func TestRefundBatchRaces(t *testing.T) {
	t.Parallel()
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		f := newFixture(t, db)
		b := newBatches(t, f)
		var orders []payment.Order
		for i := range 4 {
			orders = append(orders, f.paidOnUs(t, mchA, fmt.Sprintf("RC-%04d", i), 8_000))
		}
		items := func(prefix string) []payment.RefundBatchItemRequest {
			var out []payment.RefundBatchItemRequest
			for i := range 40 {
				o := orders[i%4]
				out = append(out, line(fmt.Sprintf("%s-%d", prefix, i), o.ID, 500, 8_000))
			}
			return out
		}
		// The same batch, eight times at once.
		req := payment.CreateRefundBatchRequest{OutBatchNo: "RACE-1", NotifyURL: batchNotify, Items: items("RN")}
		var wg sync.WaitGroup
		ids := make([]string, 8)
		replays := atomic.Int64{}
		for k := range 8 {
			wg.Go(func() {
				got, replay, err := b.SubmitRefundBatch(f.ctx, mchA, req)
				require.NoError(t, err)
				ids[k] = got.ID
				if replay {
					replays.Add(1)
				}
			})
		}
		wg.Wait()
		for _, id := range ids {
			require.Equal(t, ids[0], id)
		}
		require.EqualValues(t, 7, replays.Load())
		// Another batch with the same out_refund_nos and the same refunds,
		// and single refunds of some of them, all at once, with four
		// workers.
		req2 := payment.CreateRefundBatchRequest{OutBatchNo: "RACE-2", NotifyURL: batchNotify, Items: items("RN")}
		_, _, err := b.SubmitRefundBatch(f.ctx, mchA, req2)
		require.NoError(t, err)
		for k := range 4 {
			wg.Go(func() {
				for {
					n, err := b.ProcessRefundBatches(f.ctx, 5)
					require.NoError(t, err)
					if n == 0 {
						return
					}
				}
			})
			wg.Go(func() {
				for i := k; i < 40; i += 4 {
					it := req.Items[i]
					_, _, err := f.svc.Refund(f.ctx, mchA, it2req(it, batchNotify))
					require.NoError(t, err)
				}
			})
		}
		wg.Wait()
		for _, no := range []string{"RACE-1", "RACE-2"} {
			got, err := b.GetRefundBatchByOutBatchNo(f.ctx, mchA, no, payment.RefundBatchPage{Limit: 100})
			require.NoError(t, err)
			require.Equal(t, payment.RefundBatchFinished, got.Status, no)
			require.Equal(t, 40, got.AcceptedCount, no)
			require.Equal(t, int64(40*500), got.AcceptedAmount, no)
			for i, it := range got.Items {
				r, err := f.svc.GetRefundByOutRefundNo(f.ctx, mchA, req.Items[i].OutRefundNo)
				require.NoError(t, err)
				require.Equal(t, r.ID, it.RefundID, "both batches name the one refund")
			}
		}
		require.Equal(t, 40, f.count(t, `SELECT COUNT(*) FROM payment_refunds`))
		require.Equal(t, 2, f.count(t, `SELECT COUNT(*) FROM notify_events WHERE event_type = $1`, payment.EventRefundBatchFinished))
		for _, o := range orders {
			require.Equal(t, 10*500, f.count(t, `SELECT CAST(COALESCE(SUM(amount), 0) AS BIGINT) FROM payment_refunds WHERE order_id = $1`, o.ID))
		}
		f.ledgerOK(t)
	})
}

func it2req(it payment.RefundBatchItemRequest, notifyURL string) payment.CreateRefundRequest {
	return payment.CreateRefundRequest{OrderID: it.OrderID, OutTradeNo: it.OutTradeNo, OutRefundNo: it.OutRefundNo, Reason: it.Reason,
		NotifyURL: notifyURL, Amount: payment.RefundAmountRequest{Refund: it.Amount.Refund, Total: it.Amount.Total, Currency: "CNY"},
		IfInsufficient: payment.InsufficientFail}
}

// TestRefundBatchProperties runs random batches over a few paid orders —
// lines of random amounts, repeated and reused numbers, lines refunded
// directly before the worker gets to them (a crash after the refund),
// claims abandoned by dying workers, replays, clock jumps and partial
// worker runs — and checks after every step that no order's refunds
// exceed what was paid, that each out_refund_no has at most one refund,
// that each batch's counts match its lines, that a batch is FINISHED
// exactly when no line is PENDING and then notified once, and at the end
// that everything drains and the ledger balances.
func TestRefundBatchProperties(t *testing.T) {
	t.Parallel()
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		var run atomic.Int64
		rapid.Check(t, func(rt *rapid.T) {
			f := newFixture(rt, db)
			b := newBatches(rt, f)
			thisRun := run.Add(1)
			mch := fmt.Sprintf("bp%d_%s", thisRun, db.Dialect)
			f.mchs.add(paygate.Merchant{ID: mch, Status: paygate.MerchantSandbox, SettlementCurrency: "CNY", FeeRateBps: 60})
			var orders []payment.Order
			for i := range rapid.IntRange(1, 3).Draw(rt, "orders") {
				orders = append(orders, f.paidOnUs(rt, mch, fmt.Sprintf("P%d-%d-%s", thisRun, i, db.Dialect), rapid.Int64Range(1, 5_000).Draw(rt, "total")))
			}
			var batches []payment.CreateRefundBatchRequest
			check := func(rt *rapid.T) {
				for _, o := range orders {
					sum := f.count(rt, `SELECT CAST(COALESCE(SUM(amount), 0) AS BIGINT) FROM payment_refunds WHERE order_id = $1 AND status IN ('PROCESSING', 'SUCCESS')`, o.ID)
					require.LessOrEqual(rt, int64(sum), o.Amount.Total)
				}
				require.Zero(rt, f.count(rt, `SELECT COUNT(*) FROM (SELECT out_refund_no FROM payment_refunds WHERE merchant_id = $1
					GROUP BY out_refund_no HAVING COUNT(*) > 1) d`, mch))
				for _, req := range batches {
					got, err := b.GetRefundBatchByOutBatchNo(f.ctx, mch, req.OutBatchNo, payment.RefundBatchPage{Limit: 1000})
					require.NoError(rt, err)
					counts := map[payment.RefundBatchItemStatus]int{}
					var amount int64
					for _, it := range got.Items {
						counts[it.Status]++
						if it.Status == payment.RefundItemAccepted {
							r := f.getRefund(rt, mch, it.RefundID)
							require.Equal(rt, it.OutRefundNo, r.OutRefundNo)
							amount += r.Amount.Refund
						}
					}
					require.Equal(rt, counts[payment.RefundItemAccepted], got.AcceptedCount)
					require.Equal(rt, counts[payment.RefundItemFailed], got.FailedCount)
					require.Equal(rt, counts[payment.RefundItemPending], got.PendingCount)
					require.Equal(rt, amount, got.AcceptedAmount)
					require.Equal(rt, got.PendingCount == 0, got.Status == payment.RefundBatchFinished)
					n := f.count(rt, `SELECT COUNT(*) FROM notify_events WHERE event_type = $1 AND payload LIKE $2`,
						payment.EventRefundBatchFinished, "%"+got.ID+"%")
					require.Equal(rt, map[bool]int{true: 1, false: 0}[got.Status == payment.RefundBatchFinished], n)
				}
			}
			numbers := 0
			rt.Repeat(map[string]func(*rapid.T){
				"submit": func(rt *rapid.T) {
					var items []payment.RefundBatchItemRequest
					for range rapid.IntRange(1, 6).Draw(rt, "lines") {
						o := orders[rapid.IntRange(0, len(orders)-1).Draw(rt, "order")]
						no := fmt.Sprintf("N%d", rapid.IntRange(0, numbers+2).Draw(rt, "number"))
						numbers++
						items = append(items, line(no, o.ID, rapid.Int64Range(-1, o.Amount.Total).Draw(rt, "amount"), o.Amount.Total))
					}
					req := payment.CreateRefundBatchRequest{OutBatchNo: fmt.Sprintf("PB-%d", len(batches)), NotifyURL: batchNotify, Items: items}
					_, replay, err := b.SubmitRefundBatch(f.ctx, mch, req)
					require.NoError(rt, err)
					require.False(rt, replay)
					batches = append(batches, req)
				},
				"replay": func(rt *rapid.T) {
					if len(batches) == 0 {
						rt.Skip("no batch")
					}
					req := batches[rapid.IntRange(0, len(batches)-1).Draw(rt, "batch")]
					_, replay, err := b.SubmitRefundBatch(f.ctx, mch, req)
					require.NoError(rt, err)
					require.True(rt, replay)
				},
				"refund a line directly (crash after the refund)": func(rt *rapid.T) {
					if len(batches) == 0 {
						rt.Skip("no batch")
					}
					req := batches[rapid.IntRange(0, len(batches)-1).Draw(rt, "batch")]
					it := req.Items[rapid.IntRange(0, len(req.Items)-1).Draw(rt, "line")]
					_, _, err := f.svc.Refund(f.ctx, mch, it2req(it, batchNotify))
					switch paygate.CodeOf(err) {
					case "", paygate.CodeLimitExceeded, paygate.CodeAmountNotPositive, paygate.CodeOutRefundNoUsed:
					default:
						rt.Fatalf("refund: %v", err)
					}
				},
				"abandon a claim": func(rt *rapid.T) {
					require.NoError(rt, db.RefundBatches().InTx(f.ctx, func(tx payment.BatchTx) error {
						_, err := tx.ClaimRefundBatchItems(f.ctx, f.clock.Now(), f.clock.Now().Add(time.Minute),
							rapid.IntRange(1, 5).Draw(rt, "claim"))
						return err
					}))
				},
				"work": func(rt *rapid.T) {
					_, err := b.ProcessRefundBatches(f.ctx, rapid.IntRange(1, 8).Draw(rt, "limit"))
					require.NoError(rt, err)
				},
				"time passes": func(rt *rapid.T) {
					f.clock.Advance(time.Duration(rapid.IntRange(1, 90).Draw(rt, "seconds")) * time.Second)
				},
				"": check,
			})
			f.clock.Advance(time.Hour)
			drain(rt, f, b)
			check(rt)
			for _, req := range batches {
				got, err := b.GetRefundBatchByOutBatchNo(f.ctx, mch, req.OutBatchNo, payment.RefundBatchPage{})
				require.NoError(rt, err)
				require.Equal(rt, payment.RefundBatchFinished, got.Status)
			}
			f.ledgerOK(rt)
		})
	})
}
