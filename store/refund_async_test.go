package store_test

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"paygate/payment"
	"paygate/store"
	"paygate/store/storetest"
)

// TestSetRefundChannelNoAsyncCommitStaysLocal: on PostgreSQL the channel
// number's statement turns synchronous_commit off for its own transaction
// only — the connection it ran on (the pool's only one here) is back to
// "on" for whatever runs next, a refund's transaction included — and the
// number is there at once for every reader.
func TestSetRefundChannelNoAsyncCommitStaysLocal(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	db, err := store.Open(ctx, storetest.URL(t, store.Postgres), store.Options{MaxOpenConns: 1})
	require.NoError(t, err)
	t.Cleanup(func() { db.Close() })
	_, err = db.Migrate(ctx)
	require.NoError(t, err)
	ps := db.Payments()
	require.NoError(t, ps.InTx(ctx, func(tx payment.Tx) error {
		if _, err := tx.InsertOrder(ctx, order("ord_1", "m1", "no_ord_1", pt0)); err != nil {
			return err
		}
		_, err := tx.InsertRefund(ctx, storedRefund("rfd_1", "m1", "ord_1", "rn_1"))
		return err
	}))

	ok, err := ps.SetRefundChannelNo(ctx, "rfd_1", "simr_1", pt0.Add(time.Minute))
	require.NoError(t, err)
	require.True(t, ok)
	var setting string
	require.NoError(t, db.SQL.QueryRowContext(ctx, `SHOW synchronous_commit`).Scan(&setting))
	require.Equal(t, "on", setting)
	r, err := ps.RefundByID(ctx, "rfd_1")
	require.NoError(t, err)
	require.Equal(t, "simr_1", r.ChannelRefundNo)
}
