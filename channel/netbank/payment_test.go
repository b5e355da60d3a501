package netbank_test

import (
	"context"
	"errors"
	"net/http"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"paygate"
	"paygate/channel"
	"paygate/channel/netbank"
	"paygate/ledger"
	"paygate/payment"
	"paygate/store"
	"paygate/store/storetest"
)

const mch = "1900000001"

type oneMerchant struct{}

func (oneMerchant) Merchant(ctx context.Context, id string) (paygate.Merchant, error) {
	if id != mch {
		return paygate.Merchant{}, paygate.E(paygate.CodeNotFound, "merchant not found")
	}
	return paygate.Merchant{ID: mch, Name: "Tea House", Status: paygate.MerchantSandbox, SettlementCurrency: "CNY", FeeRateBps: 60}, nil
}

// TestThroughPayments runs the whole path with the real payment service:
// the checkout starts an online-banking attempt (PayThrough), the payer
// pays at the bank and comes back to return_url, the callback books the
// order SUCCESS, and the money goes card → clearing → merchant. A callback
// that never gets through is made up for by ReconcileUnknown's Query.
func TestThroughPayments(t *testing.T) {
	t.Parallel()
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		var svc *payment.Service
		var down atomic.Bool
		r := newRig(t, db, func(c *netbank.Config) {
			c.Orders = netbank.OrdersFunc(func(ctx context.Context, id string) (payment.CheckoutOrder, error) {
				return svc.CheckoutView(ctx, id)
			})
			c.Deliver = func(ctx context.Context, h http.Header, body []byte) error {
				if down.Load() {
					return errors.New("paygate unreachable")
				}
				_, err := svc.Callback(ctx, netbank.Name, h, body)
				return err
			}
		})
		var err error
		svc, err = payment.New(payment.Config{Store: db.Payments(), Ledger: r.led, Merchants: oneMerchant{}, Clock: r.clock,
			Channels: []channel.Channel{r.bank}, CheckoutBaseURL: "https://pay.example.com/checkout/"})
		require.NoError(t, err)
		card := r.card(cardPays)
		before := r.available(t, card.AccountID)
		b := r.browser(t)

		order := func(no string, amount int64) (payment.Order, session) {
			o, _, err := svc.Create(r.ctx, mch, payment.CreateRequest{OutTradeNo: no, Description: "Oolong 100 g",
				Amount: payment.AmountRequest{Total: amount}, NotifyURL: "https://shop.example.com/notify", ReturnURL: returnURL})
			require.NoError(t, err)
			a, err := svc.PayThrough(r.ctx, o.ID, netbank.Name, payment.Payer{Method: payment.AwaitingPayer}, "", nil)
			require.NoError(t, err)
			require.Equal(t, channel.StatusProcessing, a.Status)
			require.Equal(t, r.srv.URL+"/sandbox/bank/pay/"+a.ID, a.RedirectURL)
			require.NotEmpty(t, a.ChannelTradeNo)
			return o, session{attempt: a.ID, order: o.ID, acc: channel.Accepted{ChannelTradeNo: a.ChannelTradeNo, RedirectURL: a.RedirectURL}}
		}
		status := func(id string) payment.Status {
			v, err := svc.CheckoutView(r.ctx, id)
			require.NoError(t, err)
			return v.Status
		}

		o1, s1 := order("netbank-1", 8_800)
		_, p := b.pay(s1, card.ID)
		require.Equal(t, http.StatusSeeOther, p.status, p.body)
		require.Equal(t, wantReturn(s1, netbank.ResultSuccess), p.location())
		require.Equal(t, payment.StatusNotPay, status(o1.ID), "the redirect is not the order's truth")
		r.disp.RunDue()
		require.Equal(t, payment.StatusSuccess, status(o1.ID), "the callback is")

		// The callback is lost: the reconciliation job's Query finds the
		// payment in the ledger.
		down.Store(true)
		o2, s2 := order("netbank-2", 1_200)
		_, p = b.pay(s2, card.ID)
		require.Equal(t, http.StatusSeeOther, p.status, p.body)
		r.disp.RunDue()
		require.Equal(t, payment.StatusNotPay, status(o2.ID))
		r.clock.Advance(time.Minute)
		n, err := svc.ReconcileUnknown(r.ctx, 10)
		require.NoError(t, err)
		require.Equal(t, 1, n)
		require.Equal(t, payment.StatusSuccess, status(o2.ID))
		down.Store(false)
		r.clock.Advance(time.Hour)
		r.disp.RunDue() // the retried callback is a duplicate: booked once

		// A payer who cancels: the order is still open to pay another way.
		o3, s3 := order("netbank-3", 500)
		lp := b.loginPage(s3)
		p = b.post(path(s3, "cancel"), map[string][]string{"csrf_token": {lp.field("csrf_token")}})
		require.Equal(t, wantReturn(s3, netbank.ResultCancelled), p.location())
		r.disp.RunDue()
		require.Equal(t, payment.StatusPayError, status(o3.ID))

		require.Equal(t, before-10_000, r.available(t, card.AccountID))
		as, err := r.led.LookupAccounts(r.ctx, []string{ledger.ChannelClearing(netbank.Name, "CNY").ID, ledger.MerchantPending(mch, "CNY").ID})
		require.NoError(t, err)
		for _, a := range as {
			switch a.ID {
			case ledger.ChannelClearing(netbank.Name, "CNY").ID:
				require.Equal(t, ledger.Balance{DebitsPosted: 10_000, CreditsPosted: 10_000}, a.Balance, "clearing is cleared")
			default:
				m, _ := oneMerchant{}.Merchant(r.ctx, mch)
				require.Equal(t, 10_000-m.Fee(8_800)-m.Fee(1_200), a.Available(a.Normal), "the merchant has the money less fees")
			}
		}
		tb, err := r.led.TrialBalance(r.ctx, day0)
		require.NoError(t, err)
		require.Equal(t, tb.Totals["CNY"].Debits, tb.Totals["CNY"].Credits)
	})
}
