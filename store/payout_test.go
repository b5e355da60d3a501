package store_test

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"paygate"
	"paygate/payout"
	"paygate/sealing"
	"paygate/store"
	"paygate/store/storetest"
)

func payoutBatch(id, mch, no string, at time.Time) payout.Batch {
	return payout.Batch{ID: id, MerchantID: mch, OutBatchNo: no, Currency: "CNY", Remark: "备注", Status: payout.BatchProcessing,
		TotalCount: 2, RejectedCount: 1, AcceptedCount: 1, AcceptedAmount: 500, CreateTime: at, UpdateTime: at,
		NotifyURL: "https://shop.example/n", Sandbox: true, RequestHash: "hash-" + no}
}

func payoutItem(id, batch, mch string, seq int, no string, st payout.Status, at time.Time) payout.Item {
	return payout.Item{ID: id, BatchID: batch, MerchantID: mch, Seq: seq, OutDetailNo: no, Amount: 500, Currency: "CNY",
		Recipient: payout.Recipient{Type: payout.RecipientCard, Kind: payout.KindOtherBank, Masked: "621700******0014", Name: "*五"},
		Status:    st, Channel: "interbank", Card: sealing.Sealed{Ciphertext: "c", KeyID: "k"}, Scenario: "fail",
		CreateTime: at, UpdateTime: at}
}

// TestPayoutStore round-trips batches and items, and checks the claims,
// the per-merchant detail numbers and the channel number on both stores.
func TestPayoutStore(t *testing.T) {
	t.Parallel()
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		s := db.Payouts()
		at := time.Date(2026, 11, 22, 2, 0, 0, 123000, time.UTC)
		b := payoutBatch("pob_1", "mch_a", "B-1", at)
		items := []payout.Item{payoutItem("pod_1", "pob_1", "mch_a", 1, "D-1", payout.StatusPending, at),
			payoutItem("pod_2", "pob_1", "mch_a", 2, "D-2", payout.StatusRejected, at)}
		items[1].FailReason, items[1].FinishTime, items[1].Recipient.Kind = payout.ReasonAmountNotPositive, at, ""
		require.NoError(t, s.InTx(ctx, func(tx payout.Tx) error {
			ok, err := tx.InsertBatch(ctx, b)
			require.NoError(t, err)
			require.True(t, ok)
			ok, err = tx.InsertBatch(ctx, payoutBatch("pob_2", "mch_a", "B-1", at))
			require.NoError(t, err)
			require.False(t, ok, "the merchant's out_batch_no is taken")
			return tx.InsertItems(ctx, items)
		}))
		got, err := s.Batch(ctx, "mch_a", "pob_1")
		require.NoError(t, err)
		require.Equal(t, b, got)
		_, err = s.Batch(ctx, "mch_b", "pob_1")
		require.True(t, paygate.HasCode(err, paygate.CodeNotFound), "another merchant's batch")
		got, err = s.BatchByOutBatchNo(ctx, "mch_a", "B-1")
		require.NoError(t, err)
		require.Equal(t, "pob_1", got.ID)
		page, err := s.BatchItems(ctx, "pob_1", 0, 10)
		require.NoError(t, err)
		want := items
		for i := range want {
			want[i].OutBatchNo = "B-1"
		}
		require.Equal(t, want, page)
		page, err = s.BatchItems(ctx, "pob_1", 1, 10)
		require.NoError(t, err)
		require.Len(t, page, 1)
		it, err := s.ItemByOutDetailNo(ctx, "mch_a", "D-1")
		require.NoError(t, err)
		require.Equal(t, "pod_1", it.ID)
		_, err = s.ItemByOutDetailNo(ctx, "mch_a", "D-2")
		require.True(t, paygate.HasCode(err, paygate.CodeNotFound), "a rejected line does not take its number")

		require.NoError(t, s.InTx(ctx, func(tx payout.Tx) error {
			used, err := tx.UsedDetailNos(ctx, "mch_a", []string{"D-1", "D-2", "D-3"})
			require.NoError(t, err)
			require.Equal(t, []string{"D-1"}, used)
			used, err = tx.UsedDetailNos(ctx, "mch_b", []string{"D-1"})
			require.NoError(t, err)
			require.Empty(t, used)
			claimed, err := tx.LockItemsToProcess(ctx, 10)
			require.NoError(t, err)
			require.Len(t, claimed, 1)
			require.Equal(t, "pod_1", claimed[0].ID)
			c := claimed[0]
			c.Status, c.NextQueryAt, c.UpdateTime = payout.StatusProcessing, at.Add(time.Second), at.Add(time.Second)
			require.NoError(t, tx.UpdateItems(ctx, []payout.Item{c}))
			missing := c
			missing.ID = "pod_nope"
			require.True(t, paygate.HasCode(tx.UpdateItems(ctx, []payout.Item{missing}), paygate.CodeNotFound))
			return nil
		}))
		ok, err := s.SetItemChannelNo(ctx, "pod_1", "simp_1", at)
		require.NoError(t, err)
		require.True(t, ok)
		ok, err = s.SetItemChannelNo(ctx, "pod_1", "simp_2", at)
		require.NoError(t, err)
		require.False(t, ok, "the first number stays")
		require.NoError(t, s.InTx(ctx, func(tx payout.Tx) error {
			due, err := tx.LockItemsToQuery(ctx, at, 10)
			require.NoError(t, err)
			require.Empty(t, due, "not due yet")
			due, err = tx.LockItemsToQuery(ctx, at.Add(time.Second), 10)
			require.NoError(t, err)
			require.Len(t, due, 1)
			require.Equal(t, "simp_1", due[0].ChannelNo)
			bb, err := tx.LockBatch(ctx, "pob_1")
			require.NoError(t, err)
			bb.Status, bb.SuccessCount, bb.SuccessAmount, bb.FinishTime = payout.BatchFinished, 1, 500, at
			return tx.UpdateBatch(ctx, bb)
		}))
		got, err = s.Batch(ctx, "mch_a", "pob_1")
		require.NoError(t, err)
		require.Equal(t, payout.BatchFinished, got.Status)
		require.Equal(t, 1, got.SuccessCount)
	})
}

// TestPayoutDetailNoRace: transactions racing to accept the same
// out_detail_no — exactly one inserts it; on PostgreSQL the others fail
// with paygate.ErrRetry (their InTx runs again), on SQLite they queue.
func TestPayoutDetailNoRace(t *testing.T) {
	t.Parallel()
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		at := time.Now().UTC().Truncate(time.Microsecond)
		const n = 6
		var wg sync.WaitGroup
		won := make([]bool, n)
		for i := range n {
			wg.Go(func() {
				err := db.Payouts().InTx(ctx, func(tx payout.Tx) error {
					won[i] = false
					used, err := tx.UsedDetailNos(ctx, "mch_a", []string{"SHARED"})
					if err != nil || len(used) > 0 {
						return err
					}
					id := fmt.Sprintf("pob_%d", i)
					if _, err := tx.InsertBatch(ctx, payoutBatch(id, "mch_a", id, at)); err != nil {
						return err
					}
					if err := tx.InsertItems(ctx, []payout.Item{payoutItem(fmt.Sprintf("pod_%d", i), id, "mch_a", 1, "SHARED", payout.StatusPending, at)}); err != nil {
						return err
					}
					won[i] = true
					return nil
				})
				if err != nil && !errors.Is(err, paygate.ErrRetry) {
					t.Errorf("race %d: %v", i, err)
				}
			})
		}
		wg.Wait()
		wins := 0
		for _, w := range won {
			if w {
				wins++
			}
		}
		require.Equal(t, 1, wins)
		var taken int
		require.NoError(t, db.SQL.QueryRow(`SELECT COUNT(*) FROM payout_items WHERE out_detail_no = 'SHARED'`).Scan(&taken))
		require.Equal(t, 1, taken)
	})
}
