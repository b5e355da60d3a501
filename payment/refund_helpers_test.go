package payment_test

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/stretchr/testify/require"

	"paygate"
	"paygate/channel"
	"paygate/channel/sim"
	"paygate/ledger"
	"paygate/payment"
)

// customer is the payer of the fixtures' payments on us: a balance
// account funded from the sandbox funding account.
const customer = "cus_refund_1"

// customerFunds is what the fixture credits the customer's balance.
const customerFunds = 1_000_000_000

// fundCustomer creates and funds the on-us payer's balance account (once).
func (f *fixture) fundCustomer(t testingT) string {
	t.Helper()
	acc := ledger.CustomerDeposit(customer, "CNY")
	if f.balance(t, acc) > 0 {
		return acc.ID
	}
	_, err := f.led.CreateAccounts(f.ctx, []ledger.Account{acc, ledger.SandboxFunding("CNY")})
	require.NoError(t, err)
	_, err = f.led.CreateTransfers(f.ctx, []ledger.Transfer{{ID: "fund_" + customer, DebitAccountID: ledger.SandboxFunding("CNY").ID,
		CreditAccountID: acc.ID, Amount: customerFunds, Code: 99}})
	require.NoError(t, err)
	return acc.ID
}

// paidOnUs creates an order of total and pays it from the customer's balance.
func (f *fixture) paidOnUs(t testingT, mch, no string, total int64) payment.Order {
	t.Helper()
	from := f.fundCustomer(t)
	r := request(no)
	r.Amount.Total = total
	o, _, err := f.svc.Create(f.ctx, mch, r)
	require.NoError(t, err)
	o, _, err = f.svc.PayFromAccount(f.ctx, o.ID, payment.Payer{Method: "BALANCE", CustomerID: customer}, from, nil)
	require.NoError(t, err)
	require.Equal(t, payment.StatusSuccess, o.Status)
	return o
}

// paidSim creates an order of total and pays it through the simulator.
func (f *fixture) paidSim(t testingT, mch, no string, total int64) payment.Order {
	t.Helper()
	r := request(no)
	r.Amount.Total = total
	o, _, err := f.svc.Create(f.ctx, mch, r)
	require.NoError(t, err)
	f.pay(t, mch, o.ID, "success")
	f.settle(2 * time.Second)
	o = f.get(t, mch, o.ID)
	require.Equal(t, payment.StatusSuccess, o.Status)
	return o
}

func refundReq(o payment.Order, no string, amount int64) payment.CreateRefundRequest {
	return payment.CreateRefundRequest{OrderID: o.ID, OutRefundNo: no, Reason: "退货",
		Amount: payment.RefundAmountRequest{Refund: amount, Total: o.Amount.Total, Currency: o.Amount.Currency}}
}

func (f *fixture) refund(t testingT, mch string, req payment.CreateRefundRequest) payment.Refund {
	t.Helper()
	r, replay, err := f.svc.Refund(f.ctx, mch, req)
	require.NoError(t, err)
	require.False(t, replay)
	return r
}

func (f *fixture) getRefund(t testingT, mch, id string) payment.Refund {
	t.Helper()
	r, err := f.svc.GetRefund(f.ctx, mch, id)
	require.NoError(t, err)
	return r
}

// refundEvents returns the outbox rows about a refund.
func (f *fixture) refundEvents(t testingT, refundID string) []event {
	t.Helper()
	var out []event
	for _, e := range f.events(t, "") {
		if e.Payload["id"] == refundID {
			out = append(out, e)
		}
	}
	return out
}

// holdStatus returns the status of a refund's ledger hold ("" when none).
func (f *fixture) holdStatus(t testingT, refundID string) ledger.HoldStatus {
	t.Helper()
	ts := f.transfers(t, "rhold_"+refundID)
	if len(ts) == 0 {
		return ""
	}
	return ts[0].HoldStatus
}

// available returns an account's posted balance less its outgoing holds.
func (f *fixture) available(t testingT, a ledger.Account) int64 {
	t.Helper()
	as, err := f.db.Ledger().Accounts(f.ctx, []string{a.ID})
	require.NoError(t, err)
	if len(as) == 0 {
		return 0
	}
	return as[0].Available(as[0].Normal)
}

// fundSettled credits a merchant's settled balance directly (as settlements of
// other orders would).
func (f *fixture) fundSettled(t testingT, mch string, amount int64) {
	t.Helper()
	_, err := f.led.CreateAccounts(f.ctx, []ledger.Account{ledger.MerchantSettled(mch, "CNY"), ledger.SandboxFunding("CNY")})
	require.NoError(t, err)
	_, err = f.led.CreateTransfers(f.ctx, []ledger.Transfer{{ID: paygate.NewID("fundset_"), DebitAccountID: ledger.SandboxFunding("CNY").ID,
		CreditAccountID: ledger.MerchantSettled(mch, "CNY").ID, Amount: amount, Code: 99}})
	require.NoError(t, err)
}

// withdraw moves money out of a merchant's settled balance (as a payout
// to its bank account would).
func (f *fixture) withdraw(t testingT, mch string, amount int64) {
	t.Helper()
	_, err := f.led.CreateAccounts(f.ctx, []ledger.Account{ledger.MerchantSettled(mch, "CNY"), ledger.SandboxFunding("CNY")})
	require.NoError(t, err)
	_, err = f.led.CreateTransfers(f.ctx, []ledger.Transfer{{ID: paygate.NewID("payout_"), DebitAccountID: ledger.MerchantSettled(mch, "CNY").ID,
		CreditAccountID: ledger.SandboxFunding("CNY").ID, Amount: amount, Code: 99}})
	require.NoError(t, err)
}

// flakyRefunder wraps the simulator: while drop > 0 it loses refund
// submissions (a crash between the commit and the channel call) and
// answers with an error instead.
type flakyRefunder struct {
	*sim.Sim
	mu       sync.Mutex
	drop     int
	declined bool // refuse every refund outright
	calls    int
}

func (c *flakyRefunder) Refund(ctx context.Context, req channel.RefundRequest) (channel.RefundAccepted, error) {
	c.mu.Lock()
	c.calls++
	if c.declined {
		c.mu.Unlock()
		return channel.RefundAccepted{}, fmt.Errorf("flaky: %w", channel.ErrRefundDeclined)
	}
	if c.drop > 0 {
		c.drop--
		c.mu.Unlock()
		return channel.RefundAccepted{}, fmt.Errorf("flaky: connection reset")
	}
	c.mu.Unlock()
	return c.Sim.Refund(ctx, req)
}

func (c *flakyRefunder) set(fn func(*flakyRefunder)) { c.mu.Lock(); fn(c); c.mu.Unlock() }

// withFlaky makes the fixture's "sim" channel the flakyRefunder fl,
// wrapping the fixture's simulator.
func withFlaky(fl *flakyRefunder) option {
	return func(c *payment.Config) {
		fl.Sim = c.Channels[0].(*sim.Sim)
		c.Channels[0] = fl
	}
}
