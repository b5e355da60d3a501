package main

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"paygate/client"
	"paygate/store"
	"paygate/store/storetest"
)

// TestEndToEndIdempotencyKey: over HTTP with the SDK on both stores, a POST
// retried with its Idempotency-Key gets the first answer again and runs
// once (the sandbox payment is not attempted twice); the key on another
// request is 409 ID_CONFLICT; without a key the retry runs again.
func TestEndToEndIdempotencyKey(t *testing.T) {
	t.Parallel()
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		e := startE2E(t, db)
		ctx := context.Background()
		newOrder := func(no string) client.Order {
			o, err := e.client.CreateOrder(ctx, client.CreateOrderRequest{OutTradeNo: no, Description: "Green tea",
				Amount: client.Amount{Total: 1_000, Currency: "CNY"}, NotifyURL: e.hook.URL + "/notify"})
			require.NoError(t, err)
			return o
		}
		o := newOrder("E2E-IDEM-1")
		kctx := client.WithIdempotencyKey(ctx, "pay-E2E-IDEM-1")
		first, err := e.client.SandboxPay(kctx, o.ID, "success")
		require.NoError(t, err)
		again, err := e.client.SandboxPay(kctx, o.ID, "success")
		require.NoError(t, err, "the kept answer, not a second attempt")
		require.Equal(t, first, again)
		attempts, err := e.p.payments.Attempts(ctx, e.created.Merchant.ID, o.ID)
		require.NoError(t, err)
		require.Len(t, attempts, 1, "paid once")

		// Without the key the retry runs, and the paid order refuses it
		// (once the simulated channel's confirmation has arrived).
		require.Eventually(t, func() bool {
			got, err := e.client.GetOrder(ctx, o.ID)
			return err == nil && got.Status == "SUCCESS"
		}, 15*time.Second, 10*time.Millisecond)
		_, err = e.client.SandboxPay(ctx, o.ID, "success")
		var ae *client.APIError
		require.ErrorAs(t, err, &ae)
		require.Equal(t, 409, ae.Status)

		// The key on another request is refused and runs nothing.
		o2 := newOrder("E2E-IDEM-2")
		_, err = e.client.SandboxPay(kctx, o2.ID, "success")
		require.ErrorAs(t, err, &ae)
		require.Equal(t, 409, ae.Status)
		require.Equal(t, "ID_CONFLICT", ae.Code)
		require.Equal(t, "Idempotency-Key", ae.Detail["field"])
		got, err := e.client.GetOrder(ctx, o2.ID)
		require.NoError(t, err)
		require.Equal(t, "NOTPAY", got.Status)

		// A malformed key is refused before anything runs.
		_, err = e.client.CloseOrder(client.WithIdempotencyKey(ctx, "has space"), o2.ID)
		require.ErrorAs(t, err, &ae)
		require.Equal(t, 400, ae.Status)
		require.Equal(t, "INVALID_ARGUMENT", ae.Code)
	})
}
