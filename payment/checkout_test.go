package payment_test

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"paygate"
	"paygate/payment"
	"paygate/store"
	"paygate/store/storetest"
)

// TestCheckoutView: the payer's view of an order, whoever's it is, with
// what the payer may see and nothing else; paid, closed and expired orders
// are not payable.
func TestCheckoutView(t *testing.T) {
	t.Parallel()
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		f := newFixture(t, db)
		req := request("chk_0001")
		req.ReturnURL = "https://shop.example.com/done"
		req.Metadata = map[string]string{"secret_ref": "internal"}
		req.PaymentMethods = []string{payment.MethodBalance, "unknown_method", payment.MethodQuickPay}
		o, _, err := f.svc.Create(f.ctx, mchA, req)
		require.NoError(t, err)

		c, err := f.svc.CheckoutView(f.ctx, o.ID)
		require.NoError(t, err)
		require.Equal(t, payment.CheckoutOrder{
			ID: o.ID, MerchantName: "A", Description: req.Description, Total: 10_000, Currency: "CNY",
			Status: payment.StatusNotPay, TimeExpire: o.TimeExpire, ReturnURL: "https://shop.example.com/done",
			Methods: []string{payment.MethodQuickPay, payment.MethodBalance}, Sandbox: true,
			MerchantCanTransact: true, CheckoutURL: "https://pay.example.com/checkout/" + o.ID,
		}, c, "known methods in checkout order; no notify_url, metadata, attach or out_trade_no")
		require.True(t, c.Payable(t0))
		require.False(t, c.Payable(o.TimeExpire), "not payable once time_expire has passed")
		require.True(t, c.Expired(o.TimeExpire))

		// No methods named: all of them.
		o2 := f.create(t, mchB, "chk_0002")
		c2, err := f.svc.CheckoutView(f.ctx, o2.ID)
		require.NoError(t, err)
		require.Equal(t, payment.CheckoutMethods, c2.Methods)
		require.Equal(t, "B", c2.MerchantName)

		// Paid: not payable any more.
		f.pay(t, mchA, o.ID, "success")
		f.settle(2 * time.Second)
		c, err = f.svc.CheckoutView(f.ctx, o.ID)
		require.NoError(t, err)
		require.Equal(t, payment.StatusSuccess, c.Status)
		require.False(t, c.Payable(t0))
		require.False(t, c.SuccessTime.IsZero())

		// Closed by the merchant.
		_, err = f.svc.Close(f.ctx, mchB, o2.ID)
		require.NoError(t, err)
		c2, err = f.svc.CheckoutView(f.ctx, o2.ID)
		require.NoError(t, err)
		require.Equal(t, payment.StatusClosed, c2.Status)
		require.False(t, c2.Payable(t0))
		require.False(t, c2.Expired(t0), "closed by the merchant, not expired")

		// A suspended merchant's order cannot be paid.
		f.mchs.add(paygate.Merchant{ID: mchB, Name: "B", Status: paygate.MerchantSuspended, SettlementCurrency: "CNY"})
		o3 := f.create(t, mchA, "chk_0003")
		f.mchs.add(paygate.Merchant{ID: mchA, Name: "A", Status: paygate.MerchantSuspended, SettlementCurrency: "CNY"})
		c3, err := f.svc.CheckoutView(f.ctx, o3.ID)
		require.NoError(t, err)
		require.False(t, c3.Payable(t0))

		for _, id := range []string{"", "ord_", "ord_does_not_exist", "pay_" + o.ID[4:], o.ID + "x", "ord_" + string(make([]byte, 100))} {
			_, err := f.svc.CheckoutView(f.ctx, id)
			require.True(t, paygate.HasCode(err, paygate.CodeNotFound), "id %q: %v", id, err)
		}
	})
}
