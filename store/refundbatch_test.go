package store_test

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"paygate"
	"paygate/payment"
	"paygate/store"
	"paygate/store/storetest"
)

func storedBatch(id, mch, no string, n int) (payment.RefundBatch, []payment.RefundBatchItem) {
	b := payment.RefundBatch{ID: id, MerchantID: mch, OutBatchNo: no, RequestHash: "h-" + no, NotifyURL: "https://m.example.com/b",
		Currency: "CNY", Status: payment.RefundBatchProcessing, TotalCount: n, CreateTime: pt0, UpdateTime: pt0, Sandbox: true}
	items := make([]payment.RefundBatchItem, n)
	for i := range items {
		items[i] = payment.RefundBatchItem{BatchID: id, Line: i + 1, MerchantID: mch, NotifyURL: b.NotifyURL,
			OutRefundNo: fmt.Sprintf("%s-%d", no, i+1), OutTradeNo: "T-1", Reason: "退货",
			Amount:         payment.RefundAmountRequest{Refund: 10, Total: 100, Currency: "CNY"},
			IfInsufficient: payment.InsufficientFail, Status: payment.RefundItemPending, NextAttemptAt: pt0, UpdateTime: pt0}
	}
	return b, items
}

// TestRefundBatchStoreRoundTrip: a batch and its lines (250: more than
// one INSERT) read back as written, one batch per merchant and number,
// pages follow the line order, claims lease lines, outcomes are recorded
// once, and the counts finish the batch exactly when the last line has
// its outcome.
func TestRefundBatchStoreRoundTrip(t *testing.T) {
	t.Parallel()
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		bs := db.RefundBatches()
		b, items := storedBatch("rfb_1", "m1", "B1", 250)
		items[1].Status, items[1].FailCode, items[1].FailField, items[1].FailMessage, items[1].NextAttemptAt =
			payment.RefundItemFailed, paygate.CodeInvalidArgument, "out_refund_no", "bad", time.Time{}
		b.FailedCount = 1
		require.NoError(t, bs.InTx(ctx, func(tx payment.BatchTx) error {
			ok, err := tx.InsertRefundBatch(ctx, b, items)
			require.NoError(t, err)
			require.True(t, ok)
			other, otherItems := storedBatch("rfb_2", "m1", "B1", 1)
			ok, err = tx.InsertRefundBatch(ctx, other, otherItems)
			require.NoError(t, err)
			require.False(t, ok, "one batch per merchant and number")
			got, err := tx.RefundBatchByOutBatchNoInTx(ctx, "m1", "B1")
			require.NoError(t, err)
			want := b
			want.PendingCount = 249
			require.Equal(t, want, got)
			_, err = tx.RefundBatchByOutBatchNoInTx(ctx, "m2", "B1")
			require.Equal(t, paygate.CodeNotFound, paygate.CodeOf(err))
			return nil
		}))
		got, err := bs.RefundBatch(ctx, "m1", "rfb_1")
		require.NoError(t, err)
		require.Equal(t, "B1", got.OutBatchNo)
		_, err = bs.RefundBatch(ctx, "m2", "rfb_1")
		require.Equal(t, paygate.CodeNotFound, paygate.CodeOf(err), "another merchant's batch is not found")
		got, err = bs.RefundBatchByOutBatchNo(ctx, "m1", "B1")
		require.NoError(t, err)
		require.Equal(t, "rfb_1", got.ID)

		page, err := bs.RefundBatchItems(ctx, "rfb_1", 0, 3)
		require.NoError(t, err)
		require.Len(t, page, 3)
		require.Equal(t, items[0], page[0])
		require.Equal(t, items[1], page[1])
		page, err = bs.RefundBatchItems(ctx, "rfb_1", 248, 10)
		require.NoError(t, err)
		require.Len(t, page, 2)
		require.Equal(t, 249, page[0].Line)

		// Claims: due lines only, leased, in line order; a second claim
		// meanwhile finds none of them.
		var claimed []payment.RefundBatchItem
		lease := pt0.Add(time.Minute)
		require.NoError(t, bs.InTx(ctx, func(tx payment.BatchTx) error {
			claimed, err = tx.ClaimRefundBatchItems(ctx, pt0, lease, 5)
			return err
		}))
		require.Len(t, claimed, 5)
		for i, it := range claimed {
			require.Equal(t, []int{1, 3, 4, 5, 6}[i], it.Line, "the failed line is not claimed")
			require.Equal(t, 1, it.Attempts)
			require.True(t, it.NextAttemptAt.Equal(lease))
		}
		require.NoError(t, bs.InTx(ctx, func(tx payment.BatchTx) error {
			again, err := tx.ClaimRefundBatchItems(ctx, pt0, lease, 1000)
			require.Len(t, again, 244)
			return err
		}))
		require.NoError(t, bs.InTx(ctx, func(tx payment.BatchTx) error {
			none, err := tx.ClaimRefundBatchItems(ctx, pt0.Add(time.Second), lease, 1000)
			require.Empty(t, none, "leased lines are not due before the lease ends")
			require.NoError(t, tx.WakeRefundBatch(ctx, "rfb_1", pt0.Add(time.Second)))
			woken, err2 := tx.ClaimRefundBatchItems(ctx, pt0.Add(time.Second), lease, 1000)
			require.Len(t, woken, 249, "a woken batch's pending lines are due at once")
			return errorsJoin(err, err2)
		}))

		// Outcomes: recorded once; the counts finish the batch with the last.
		require.NoError(t, bs.InTx(ctx, func(tx payment.BatchTx) error {
			for line := 1; line <= 250; line++ {
				if line == 2 { // failed when stored
					continue
				}
				it := claimed[0]
				it.Line = line
				it.Status, it.RefundID, it.UpdateTime = payment.RefundItemAccepted, fmt.Sprintf("rfd_%d", it.Line), pt0
				ok, err := tx.FinishRefundBatchItem(ctx, it)
				require.NoError(t, err)
				require.True(t, ok, "line %d", it.Line)
			}
			ok, err := tx.FinishRefundBatchItem(ctx, claimed[0])
			require.NoError(t, err)
			require.False(t, ok, "an outcome is recorded once")
			got, err := tx.AddRefundBatchCounts(ctx, "rfb_1", 248, 0, 2480, pt0.Add(time.Second))
			require.NoError(t, err)
			require.Equal(t, payment.RefundBatchProcessing, got.Status)
			require.Equal(t, 1, got.PendingCount)
			require.True(t, got.FinishTime.IsZero())
			got, err = tx.AddRefundBatchCounts(ctx, "rfb_1", 1, 0, 10, pt0.Add(2*time.Second))
			require.NoError(t, err)
			require.Equal(t, payment.RefundBatchFinished, got.Status)
			require.Equal(t, 249, got.AcceptedCount)
			require.Equal(t, int64(2490), got.AcceptedAmount)
			require.True(t, got.FinishTime.Equal(pt0.Add(2*time.Second)))
			return nil
		}))
		page, err = bs.RefundBatchItems(ctx, "rfb_1", 0, 1)
		require.NoError(t, err)
		require.Equal(t, "rfd_1", page[0].RefundID)
		require.Equal(t, payment.RefundStatus(""), page[0].RefundStatus, "no such refund row: no status")
	})
}

func errorsJoin(errs ...error) error {
	for _, err := range errs {
		if err != nil {
			return err
		}
	}
	return nil
}

// TestRefundBatchClaimsAreDisjoint: workers claiming at once never get the
// same line (SKIP LOCKED on PostgreSQL, one writer on SQLite).
func TestRefundBatchClaimsAreDisjoint(t *testing.T) {
	t.Parallel()
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		bs := db.RefundBatches()
		b, items := storedBatch("rfb_c", "m1", "C1", 400)
		require.NoError(t, bs.InTx(ctx, func(tx payment.BatchTx) error {
			_, err := tx.InsertRefundBatch(ctx, b, items)
			return err
		}))
		var mu sync.Mutex
		seen := map[int]int{}
		var wg sync.WaitGroup
		for range 8 {
			wg.Go(func() {
				for {
					var got []payment.RefundBatchItem
					err := bs.InTx(ctx, func(tx payment.BatchTx) error {
						var err error
						got, err = tx.ClaimRefundBatchItems(ctx, pt0, pt0.Add(time.Hour), 17)
						return err
					})
					if err != nil {
						t.Error(err)
						return
					}
					if len(got) == 0 {
						return
					}
					mu.Lock()
					for _, it := range got {
						seen[it.Line]++
					}
					mu.Unlock()
				}
			})
		}
		wg.Wait()
		require.Len(t, seen, 400)
		for line, n := range seen {
			require.Equal(t, 1, n, "line %d claimed %d times", line, n)
		}
	})
}
