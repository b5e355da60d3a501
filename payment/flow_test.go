package payment_test

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"paygate"
	"paygate/channel"
	"paygate/ledger"
	"paygate/payment"
	"paygate/store"
	"paygate/store/storetest"
)

func TestPaidOrder(t *testing.T) {
	t.Parallel()
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		f := newFixture(t, db)
		o := f.create(t, mchA, "order_0001")
		require.Equal(t, payment.StatusNotPay, o.Status)
		require.Equal(t, "https://pay.example.com/checkout/"+o.ID, o.CheckoutURL)
		require.Equal(t, o.CheckoutURL, o.CodeURL)
		require.Equal(t, t0.Add(payment.DefaultExpire), o.TimeExpire)
		require.True(t, o.Sandbox)

		a := f.pay(t, mchA, o.ID, "success")
		require.Equal(t, channel.StatusProcessing, a.Status)
		require.NotEmpty(t, a.ChannelTradeNo)
		require.Equal(t, payment.StatusNotPay, f.get(t, mchA, o.ID).Status, "the result comes asynchronously")

		f.settle(2 * time.Second)
		got := f.get(t, mchA, o.ID)
		require.Equal(t, payment.StatusSuccess, got.Status)
		require.Equal(t, int64(10_000), got.Amount.PayerTotal)
		require.Equal(t, t0.Add(2*time.Second), got.SuccessTime)
		require.Equal(t, a.ID, got.TransactionID)
		require.Equal(t, "sim", got.Channel)
		require.Equal(t, a.ChannelTradeNo, got.ChannelTradeNo)
		require.Empty(t, got.CheckoutURL, "a paid order has no checkout")

		fee := int64(60) // 60 bps of 100.00
		require.Len(t, f.transfers(t, "pay_"+o.ID, "fee_"+o.ID), 2)
		require.Equal(t, int64(10_000), f.balance(t, ledger.ChannelClearing("sim", "CNY")))
		require.Equal(t, 10_000-fee, f.balance(t, ledger.MerchantPending(mchA, "CNY")))
		require.Equal(t, fee, f.balance(t, ledger.PlatformFeeFor("CNY", true)))
		f.ledgerOK(t)

		evs := f.events(t, o.ID)
		require.Equal(t, []string{payment.EventSuccess}, eventTypes(evs))
		p := evs[0].Payload
		require.Equal(t, o.ID, p["id"])
		require.Equal(t, "order_0001", p["out_trade_no"])
		require.Equal(t, "SUCCESS", p["status"])
		require.Equal(t, map[string]any{"total": 10000.0, "currency": "CNY", "payer_total": 10000.0}, p["amount"])
		require.NotEmpty(t, p["success_time"])
		require.Equal(t, mchA, evs[0].Merchant)
		require.True(t, evs[0].Sandbox)
		require.Empty(t, f.logs.alerts(t))
	})
}

func TestNoFeeLegWhenFeeIsZero(t *testing.T) {
	t.Parallel()
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		f := newFixture(t, db)
		o := f.create(t, mchB, "order_0001")
		f.pay(t, mchB, o.ID, "success")
		f.settle(2 * time.Second)
		require.Equal(t, payment.StatusSuccess, f.get(t, mchB, o.ID).Status)
		require.Len(t, f.transfers(t, "pay_"+o.ID, "fee_"+o.ID), 1)
		require.Equal(t, int64(10_000), f.balance(t, ledger.MerchantPending(mchB, "CNY")))
		f.ledgerOK(t)
	})
}

var _ = paygate.CodeNotFound
