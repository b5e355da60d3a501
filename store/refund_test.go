package store_test

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"paygate"
	"paygate/payment"
	"paygate/store"
	"paygate/store/storetest"
)

func storedRefund(id, mch, orderID, no string) payment.Refund {
	return payment.Refund{ID: id, MerchantID: mch, OutRefundNo: no, OrderID: orderID, OutTradeNo: "no_" + orderID,
		TransactionID: "pay_1", Channel: "sim", Reason: "退货", Status: payment.RefundProcessing,
		Amount:      payment.RefundAmount{Refund: 40, Total: 100, PayerRefund: 40, FeeRefund: 1, Currency: "CNY"},
		FundsSource: payment.FundsPending, IfInsufficient: payment.InsufficientFail, CreateTime: pt0, UpdateTime: pt0,
		NotifyURL: "https://m.example.com/n", Sandbox: true, Scenario: "fail", RequestHash: "h-" + no, NextQueryAt: pt0}
}

// TestRefundStoreRoundTrip: refunds read back as written, one per
// merchant and number, updates and the channel number stick, lists are
// per order, and the settled marker of orders round-trips.
func TestRefundStoreRoundTrip(t *testing.T) {
	t.Parallel()
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		ps := db.Payments()
		r1 := storedRefund("rfd_1", "m1", "ord_1", "rn_1")
		r2 := storedRefund("rfd_2", "m1", "ord_1", "rn_2")
		r2.Channel, r2.Status, r2.FundsSource, r2.IfInsufficient = payment.ChannelOnUs, payment.RefundSuccess, payment.FundsSettled, payment.InsufficientWait
		r2.SuccessTime, r2.NextQueryAt, r2.Reason, r2.Scenario, r2.Amount.FeeRefund = pt0.Add(time.Second), time.Time{}, "", "", 0
		require.NoError(t, ps.InTx(ctx, func(tx payment.Tx) error {
			for _, id := range []string{"ord_1", "ord_2"} {
				if _, err := tx.InsertOrder(ctx, order(id, "m1", "no_"+id, pt0)); err != nil {
					return err
				}
			}
			for _, r := range []payment.Refund{r1, r2} {
				ok, err := tx.InsertRefund(ctx, r)
				require.NoError(t, err)
				require.True(t, ok)
			}
			ok, err := tx.InsertRefund(ctx, storedRefund("rfd_3", "m1", "ord_2", "rn_1"))
			require.NoError(t, err)
			require.False(t, ok, "one refund per merchant and number")
			ok, err = tx.InsertRefund(ctx, storedRefund("rfd_4", "m2", "ord_2", "rn_1"))
			require.NoError(t, err)
			require.True(t, ok, "numbers are per merchant")
			got, err := tx.RefundByOutRefundNoInTx(ctx, "m1", "rn_1")
			require.NoError(t, err)
			require.Equal(t, r1, got)
			got, err = tx.LockRefund(ctx, "rfd_2")
			require.NoError(t, err)
			require.Equal(t, r2, got)
			_, err = tx.LockRefund(ctx, "rfd_9")
			require.Equal(t, paygate.CodeNotFound, paygate.CodeOf(err))
			rs, err := tx.OrderRefundsInTx(ctx, "ord_1")
			require.NoError(t, err)
			require.Equal(t, []payment.Refund{r1, r2}, rs)

			o, err := tx.LockOrder(ctx, "ord_2")
			require.NoError(t, err)
			o.SettleTime = pt0.Add(time.Hour)
			return tx.UpdateOrder(ctx, o)
		}))
		o, err := ps.Order(ctx, "m1", "ord_2")
		require.NoError(t, err)
		require.Equal(t, pt0.Add(time.Hour), o.SettleTime)

		got, err := ps.Refund(ctx, "m1", "rfd_1")
		require.NoError(t, err)
		require.Equal(t, r1, got)
		_, err = ps.Refund(ctx, "m2", "rfd_1")
		require.Equal(t, paygate.CodeNotFound, paygate.CodeOf(err), "another merchant's refund")
		got, err = ps.RefundByOutRefundNo(ctx, "m2", "rn_1")
		require.NoError(t, err)
		require.Equal(t, "rfd_4", got.ID)
		got, err = ps.RefundByID(ctx, "rfd_2")
		require.NoError(t, err)
		require.Equal(t, r2, got)
		rs, err := ps.OrderRefunds(ctx, "ord_2")
		require.NoError(t, err)
		require.Len(t, rs, 1)

		ok, err := ps.SetRefundChannelNo(ctx, "rfd_1", "simr_1", pt0.Add(time.Minute))
		require.NoError(t, err)
		require.True(t, ok)
		ok, err = ps.SetRefundChannelNo(ctx, "rfd_1", "simr_2", pt0.Add(time.Minute))
		require.NoError(t, err)
		require.False(t, ok, "the first number stays")
		ok, err = ps.SetRefundChannelNo(ctx, "rfd_2", "simr_3", pt0)
		require.NoError(t, err)
		require.False(t, ok, "not PROCESSING")

		r1.ChannelRefundNo, r1.UpdateTime = "simr_1", pt0.Add(time.Minute)
		r1.Status, r1.FailCode, r1.AwaitingFunds, r1.QueryCount, r1.NextQueryAt = payment.RefundAbnormal, "X", true, 3, time.Time{}
		r1.CloseTime = pt0.Add(2 * time.Minute)
		require.NoError(t, ps.InTx(ctx, func(tx payment.Tx) error { return tx.UpdateRefund(ctx, r1) }))
		got, err = ps.RefundByID(ctx, "rfd_1")
		require.NoError(t, err)
		require.Equal(t, r1, got)
		require.Equal(t, paygate.CodeNotFound, paygate.CodeOf(ps.InTx(ctx, func(tx payment.Tx) error {
			return tx.UpdateRefund(ctx, storedRefund("rfd_9", "m1", "ord_1", "x"))
		})))
	})
}

// TestRefundStoreSkipLocked: on PostgreSQL two workers claiming due
// refunds at once get different rows; neither waits. Only PROCESSING
// refunds that are due are claimed.
func TestRefundStoreSkipLocked(t *testing.T) {
	t.Parallel()
	db := storetest.Open(t, store.Postgres)
	ctx := context.Background()
	ps := db.Payments()
	require.NoError(t, ps.InTx(ctx, func(tx payment.Tx) error {
		if _, err := tx.InsertOrder(ctx, order("ord_1", "m1", "no_1", pt0)); err != nil {
			return err
		}
		late := storedRefund("rfd_c", "m1", "ord_1", "rn_c")
		late.NextQueryAt = pt0.Add(time.Hour)
		done := storedRefund("rfd_d", "m1", "ord_1", "rn_d")
		done.Status = payment.RefundSuccess
		for _, r := range []payment.Refund{storedRefund("rfd_a", "m1", "ord_1", "rn_a"), storedRefund("rfd_b", "m1", "ord_1", "rn_b"), late, done} {
			if _, err := tx.InsertRefund(ctx, r); err != nil {
				return err
			}
		}
		return nil
	}))
	locked, release, done := make(chan string), make(chan struct{}), make(chan error)
	go func() {
		done <- ps.InTx(ctx, func(tx payment.Tx) error {
			rs, err := tx.LockRefundsToQuery(ctx, pt0, 1)
			if err != nil {
				return err
			}
			locked <- rs[0].ID
			<-release
			return nil
		})
	}()
	require.Equal(t, "rfd_a", <-locked)
	require.NoError(t, ps.InTx(ctx, func(tx payment.Tx) error {
		rs, err := tx.LockRefundsToQuery(ctx, pt0, 10)
		require.NoError(t, err)
		require.Len(t, rs, 1)
		require.Equal(t, "rfd_b", rs[0].ID, "the locked refund is skipped; later and final ones are not due")
		return nil
	}))
	close(release)
	require.NoError(t, <-done)
}
