package store_test

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"paygate"
	"paygate/channel"
	"paygate/payment"
	"paygate/store"
	"paygate/store/storetest"
)

var pt0 = time.Date(2026, 11, 22, 2, 0, 0, 123456000, time.UTC)

func order(id, mch, no string, expire time.Time) payment.Order {
	return payment.Order{ID: id, MerchantID: mch, OutTradeNo: no, Description: "商品", Amount: payment.Amount{Total: 100, Currency: "CNY"},
		Status: payment.StatusNotPay, NotifyURL: "https://m.example.com/n", TimeExpire: expire, CreateTime: pt0, UpdateTime: pt0,
		RequestHash: "h-" + no, CaptureMethod: payment.CaptureAutomatic}
}

func TestPaymentStoreRoundTrip(t *testing.T) {
	t.Parallel()
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		ps := db.Payments()
		full := order("ord_1", "m1", "no_000001", pt0.Add(time.Hour))
		full.ReturnURL, full.Attach, full.Sandbox = "https://m.example.com/r", "附加", true
		full.Metadata = map[string]string{"k": "v", "empty": ""}
		full.PaymentMethods = []string{"card", "wechat"}
		bare := order("ord_2", "m1", "no_000002", pt0.Add(2*time.Hour))
		require.NoError(t, ps.InTx(ctx, func(tx payment.Tx) error {
			for _, o := range []payment.Order{full, bare} {
				ok, err := tx.InsertOrder(ctx, o)
				require.NoError(t, err)
				require.True(t, ok)
			}
			dup := order("ord_3", "m1", "no_000001", pt0)
			ok, err := tx.InsertOrder(ctx, dup)
			require.NoError(t, err)
			require.False(t, ok, "one order per merchant and number")
			other := order("ord_4", "m2", "no_000001", pt0)
			ok, err = tx.InsertOrder(ctx, other)
			require.NoError(t, err)
			require.True(t, ok, "numbers are per merchant")
			got, err := tx.OrderByOutTradeNoInTx(ctx, "m1", "no_000001")
			require.NoError(t, err)
			require.Equal(t, full, got)
			got, err = tx.LockOrder(ctx, "ord_2")
			require.NoError(t, err)
			require.Equal(t, bare, got, "empty metadata and methods read back as nil")
			_, err = tx.LockOrder(ctx, "ord_9")
			require.Equal(t, paygate.CodeNotFound, paygate.CodeOf(err))
			return nil
		}))
		got, err := ps.Order(ctx, "m1", "ord_1")
		require.NoError(t, err)
		require.Equal(t, full, got)
		_, err = ps.Order(ctx, "m2", "ord_1")
		require.Equal(t, paygate.CodeNotFound, paygate.CodeOf(err), "scoped to the merchant")
		_, err = ps.OrderByOutTradeNo(ctx, "m1", "no_000009")
		require.Equal(t, paygate.CodeNotFound, paygate.CodeOf(err))

		paid := full
		paid.Status, paid.Amount.PayerTotal, paid.Fee, paid.TransactionID = payment.StatusSuccess, 100, 1, "pay_1"
		paid.Channel, paid.ChannelTradeNo, paid.SuccessTime, paid.UpdateTime = "sim", "sim_1", pt0.Add(time.Minute), pt0.Add(time.Minute)
		a := payment.Attempt{ID: "pay_1", OrderID: "ord_1", MerchantID: "m1", Channel: "sim", Amount: 100, Currency: "CNY",
			Status: channel.StatusProcessing, CreatedAt: pt0, UpdatedAt: pt0, NextQueryAt: pt0.Add(30 * time.Second)}
		b := a
		b.ID, b.NextQueryAt = "pay_2", pt0.Add(10*time.Second)
		require.NoError(t, ps.InTx(ctx, func(tx payment.Tx) error {
			require.NoError(t, tx.UpdateOrder(ctx, paid))
			require.NoError(t, tx.InsertAttempt(ctx, a))
			require.NoError(t, tx.InsertAttempt(ctx, b))
			got, o, err := tx.LockAttemptWithOrder(ctx, "pay_1")
			require.NoError(t, err)
			require.Equal(t, a, got)
			require.Equal(t, paid, o, "with its order")
			_, _, err = tx.LockAttemptWithOrder(ctx, "pay_9")
			require.Equal(t, paygate.CodeNotFound, paygate.CodeOf(err))
			due, err := tx.LockAttemptsToQuery(ctx, pt0.Add(30*time.Second), 10)
			require.NoError(t, err)
			require.Equal(t, []string{"pay_2", "pay_1"}, attemptIDs(due), "earliest query first")
			due, err = tx.LockAttemptsToQuery(ctx, pt0.Add(29*time.Second), 10)
			require.NoError(t, err)
			require.Equal(t, []string{"pay_2"}, attemptIDs(due))
			a.Status, a.ChannelTradeNo, a.PaidAt, a.NextQueryAt, a.UpdatedAt = channel.StatusSuccess, "sim_1", pt0.Add(time.Minute), time.Time{}, pt0.Add(time.Minute)
			require.NoError(t, tx.UpdateAttempt(ctx, a))
			b.Status, b.Review, b.ChannelTradeNo, b.FailCode = channel.StatusSuccess, payment.ReviewAlreadyPaid, "sim_2", "X"
			require.NoError(t, tx.UpdateAttempt(ctx, b))
			due, err = tx.LockAttemptsToQuery(ctx, pt0.Add(time.Hour), 10)
			require.NoError(t, err)
			require.Empty(t, due, "final attempts are not queried")
			require.Equal(t, paygate.CodeNotFound, paygate.CodeOf(tx.UpdateAttempt(ctx, payment.Attempt{ID: "pay_9", Status: channel.StatusFailed})))
			require.Equal(t, paygate.CodeNotFound, paygate.CodeOf(tx.UpdateOrder(ctx, payment.Order{ID: "ord_9", Status: payment.StatusClosed})))
			return nil
		}))
		got, err = ps.Order(ctx, "m1", "ord_1")
		require.NoError(t, err)
		require.Equal(t, paid, got)
		ga, err := ps.Attempt(ctx, "pay_1")
		require.NoError(t, err)
		require.Equal(t, a, ga)
		all, err := ps.OrderAttempts(ctx, "ord_1")
		require.NoError(t, err)
		require.Equal(t, []string{"pay_1", "pay_2"}, attemptIDs(all))
		rv, err := ps.AttemptsInReview(ctx, "", 10)
		require.NoError(t, err)
		require.Equal(t, []string{"pay_2"}, attemptIDs(rv))
		rv, err = ps.AttemptsInReview(ctx, "pay_2", 10)
		require.NoError(t, err)
		require.Empty(t, rv)
		_, err = ps.Attempt(ctx, "pay_9")
		require.Equal(t, paygate.CodeNotFound, paygate.CodeOf(err))

		// The trade number is recorded once, on a PROCESSING attempt only.
		require.NoError(t, ps.InTx(ctx, func(tx payment.Tx) error {
			c := a
			c.ID, c.ChannelTradeNo, c.Status, c.NextQueryAt = "pay_4", "", channel.StatusProcessing, pt0
			return tx.InsertAttempt(ctx, c)
		}))
		for _, c := range []struct {
			id, trade string
			ok        bool
		}{{"pay_4", "sim_4", true}, {"pay_4", "sim_5", false}, {"pay_1", "sim_6", false}, {"pay_9", "sim_7", false}} {
			ok, err := ps.SetAttemptTradeNo(ctx, c.id, c.trade, pt0.Add(time.Hour))
			require.NoError(t, err)
			require.Equal(t, c.ok, ok, c)
		}
		got4, err := ps.Attempt(ctx, "pay_4")
		require.NoError(t, err)
		require.Equal(t, "sim_4", got4.ChannelTradeNo)
		require.Equal(t, pt0.Add(time.Hour), got4.UpdatedAt)

		// A channel's trade number names one payment.
		err = ps.InTx(ctx, func(tx payment.Tx) error {
			c := a
			c.ID = "pay_3"
			return tx.InsertAttempt(ctx, c)
		})
		require.Error(t, err)
		require.Equal(t, paygate.CodeInternal, paygate.CodeOf(err))
	})
}

func attemptIDs(as []payment.Attempt) []string {
	out := make([]string, len(as))
	for i, a := range as {
		out[i] = a.ID
	}
	return out
}

func TestPaymentStoreOrdersQuery(t *testing.T) {
	t.Parallel()
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		ps := db.Payments()
		require.NoError(t, ps.InTx(ctx, func(tx payment.Tx) error {
			for i, id := range []string{"ord_a", "ord_b", "ord_c", "ord_d"} {
				o := order(id, "m1", "no_00000"+id[4:], pt0)
				o.CreateTime = pt0.Add(time.Duration(i) * time.Minute)
				if i%2 == 1 {
					o.Status = payment.StatusClosed
				}
				if _, err := tx.InsertOrder(ctx, o); err != nil {
					return err
				}
			}
			_, err := tx.InsertOrder(ctx, order("ord_z", "m2", "no_00000z", pt0))
			return err
		}))
		q := func(lq payment.ListQuery) []string {
			lq.MerchantID = "m1"
			if lq.Limit == 0 {
				lq.Limit = 10
			}
			os, err := ps.Orders(ctx, lq)
			require.NoError(t, err)
			out := make([]string, len(os))
			for i, o := range os {
				out[i] = o.ID
			}
			return out
		}
		require.Equal(t, []string{"ord_d", "ord_c", "ord_b", "ord_a"}, q(payment.ListQuery{}))
		require.Equal(t, []string{"ord_d", "ord_c"}, q(payment.ListQuery{Limit: 2}))
		require.Equal(t, []string{"ord_b", "ord_a"}, q(payment.ListQuery{BeforeID: "ord_c"}))
		require.Equal(t, []string{"ord_d", "ord_b"}, q(payment.ListQuery{Status: payment.StatusClosed}))
		require.Equal(t, []string{"ord_c", "ord_b"}, q(payment.ListQuery{CreatedFrom: pt0.Add(time.Minute), CreatedTo: pt0.Add(3 * time.Minute)}))
		require.Equal(t, []string{"ord_b"}, q(payment.ListQuery{Status: payment.StatusClosed, CreatedTo: pt0.Add(3 * time.Minute)}))
	})
}

// TestPaymentStoreSkipLocked: on PostgreSQL two workers claiming expired
// orders or due queries at once get different rows; neither waits.
func TestPaymentStoreSkipLocked(t *testing.T) {
	t.Parallel()
	db := storetest.Open(t, store.Postgres)
	ctx := context.Background()
	ps := db.Payments()
	require.NoError(t, ps.InTx(ctx, func(tx payment.Tx) error {
		for _, id := range []string{"ord_a", "ord_b"} {
			if _, err := tx.InsertOrder(ctx, order(id, "m1", "no_"+id, pt0)); err != nil {
				return err
			}
			a := payment.Attempt{ID: "pay_" + id, OrderID: id, MerchantID: "m1", Channel: "sim", Amount: 100, Currency: "CNY",
				Status: channel.StatusProcessing, CreatedAt: pt0, UpdatedAt: pt0, NextQueryAt: pt0}
			if err := tx.InsertAttempt(ctx, a); err != nil {
				return err
			}
		}
		return nil
	}))
	locked, release, done := make(chan []string), make(chan struct{}), make(chan error)
	go func() {
		done <- ps.InTx(ctx, func(tx payment.Tx) error {
			os, err := tx.LockExpiredOrders(ctx, pt0, 1)
			if err != nil {
				return err
			}
			as, err := tx.LockAttemptsToQuery(ctx, pt0, 1)
			if err != nil {
				return err
			}
			locked <- []string{os[0].ID, as[0].ID}
			<-release
			return nil
		})
	}()
	first := <-locked
	require.Equal(t, []string{"ord_a", "pay_ord_a"}, first)
	require.NoError(t, ps.InTx(ctx, func(tx payment.Tx) error {
		os, err := tx.LockExpiredOrders(ctx, pt0, 10)
		require.NoError(t, err)
		require.Len(t, os, 1)
		require.Equal(t, "ord_b", os[0].ID, "the locked order is skipped")
		as, err := tx.LockAttemptsToQuery(ctx, pt0, 10)
		require.NoError(t, err)
		require.Equal(t, []string{"pay_ord_b"}, attemptIDs(as))
		return nil
	}))
	close(release)
	require.NoError(t, <-done)
}
