package payment_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"paygate"
	"paygate/channel"
	"paygate/channel/sim"
	"paygate/payment"
	"paygate/store"
	"paygate/store/storetest"
)

func TestCloseExpired(t *testing.T) {
	t.Parallel()
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		f := newFixture(t, db)
		var open []payment.Order
		for i := range 5 {
			r := request(fmt.Sprintf("exp_%06d", i))
			r.TimeExpire = t0.Add(time.Duration(i+1) * time.Hour)
			o, _, err := f.svc.Create(f.ctx, mchA, r)
			require.NoError(t, err)
			open = append(open, o)
		}
		paid := f.create(t, mchA, "exp_paid01") // expires at +2h but is paid
		f.pay(t, mchA, paid.ID, "success")
		failed := f.create(t, mchA, "exp_fail01") // PAYERROR expires too
		f.pay(t, mchA, failed.ID, "fail")
		f.settle(2 * time.Second)
		require.Equal(t, payment.StatusPayError, f.get(t, mchA, failed.ID).Status)

		n, err := f.svc.CloseExpired(f.ctx, 10)
		require.NoError(t, err)
		require.Zero(t, n, "nothing has expired yet")

		f.clock.Set(t0.Add(2 * time.Hour)) // orders 0, 1 and the PAYERROR one
		n, err = f.svc.CloseExpired(f.ctx, 2)
		require.NoError(t, err)
		require.Equal(t, 2, n, "the limit bounds one run")
		n, err = f.svc.CloseExpired(f.ctx, 2)
		require.NoError(t, err)
		require.Equal(t, 1, n)
		for _, id := range []string{open[0].ID, open[1].ID, failed.ID} {
			o := f.get(t, mchA, id)
			require.Equal(t, payment.StatusClosed, o.Status)
			require.Equal(t, payment.CloseExpired, o.CloseReason)
			require.Equal(t, []string{payment.EventClosed}, eventTypes(f.events(t, id)))
			require.Equal(t, "CLOSED", f.events(t, id)[0].Payload["status"])
		}
		require.Equal(t, payment.StatusSuccess, f.get(t, mchA, paid.ID).Status)
		require.Equal(t, payment.StatusNotPay, f.get(t, mchA, open[2].ID).Status)

		// An expired order that the job has not closed yet cannot be paid.
		f.clock.Set(open[2].TimeExpire)
		_, err = f.svc.SandboxPay(f.ctx, mchA, open[2].ID, "success")
		requireCode(t, err, paygate.CodeConflict)

		// Several workers at once close each order exactly once.
		f.clock.Set(t0.Add(24 * time.Hour))
		var wg sync.WaitGroup
		var mu sync.Mutex
		total := 0
		for range 8 {
			wg.Go(func() {
				for {
					n, err := f.svc.CloseExpired(f.ctx, 1)
					if !assertNoError(t, err) || n == 0 {
						return
					}
					mu.Lock()
					total += n
					mu.Unlock()
				}
			})
		}
		wg.Wait()
		require.Equal(t, 3, total)
		require.Len(t, f.events(t, ""), 7, "one TRANSACTION.CLOSED per expired order (6), one SUCCESS")
		require.Zero(t, f.count(t, `SELECT COUNT(*) FROM payment_orders WHERE status IN ('NOTPAY', 'PAYERROR')`))
	})
}

func assertNoError(t *testing.T, err error) bool {
	t.Helper()
	if err != nil {
		t.Errorf("unexpected error: %v", err)
		return false
	}
	return true
}

// fakeChannel is a channel whose answers the test sets.
type fakeChannel struct {
	mu       sync.Mutex
	payErr   error
	tradeNo  string
	results  map[string]channel.Result // by attempt id
	queryErr error
	queries  int
	paid     []channel.PayRequest
}

func (c *fakeChannel) Name() string { return "fake" }

func (c *fakeChannel) Pay(ctx context.Context, req channel.PayRequest) (channel.Accepted, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.paid = append(c.paid, req)
	if c.payErr != nil {
		return channel.Accepted{}, c.payErr
	}
	return channel.Accepted{ChannelTradeNo: c.tradeNo + req.AttemptID}, nil
}

func (c *fakeChannel) Query(ctx context.Context, q channel.QueryRequest) (channel.Result, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.queries++
	if c.queryErr != nil {
		return channel.Result{}, c.queryErr
	}
	r, ok := c.results[q.AttemptID]
	if !ok {
		return channel.Result{}, fmt.Errorf("fake: %w", channel.ErrUnknownPayment)
	}
	return r, nil
}

func (c *fakeChannel) set(f func(c *fakeChannel)) { c.mu.Lock(); f(c); c.mu.Unlock() }

func withChannel(ch channel.Channel) option {
	return func(c *payment.Config) {
		c.Channels = append(c.Channels, ch)
		c.SandboxChannel = ch.Name()
	}
}

func TestReconcileUnknownWithSimulator(t *testing.T) {
	t.Parallel()
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		f := newFixture(t, db)
		o := f.create(t, mchA, "recon_0001")
		a := f.pay(t, mchA, o.ID, "timeout")
		n, err := f.svc.ReconcileUnknown(f.ctx, 10)
		require.NoError(t, err)
		require.Zero(t, n, "no query is due yet")

		f.settle(30 * time.Second) // first query due; the channel still does not know
		n, err = f.svc.ReconcileUnknown(f.ctx, 10)
		require.NoError(t, err)
		require.Zero(t, n)
		require.Equal(t, channel.StatusProcessing, f.attempt(t, a.ID).Status, "not knowing is not failing")
		require.Equal(t, 1, f.attempt(t, a.ID).QueryCount)
		n, err = f.svc.ReconcileUnknown(f.ctx, 10)
		require.NoError(t, err)
		require.Zero(t, n, "the next query waits for the backoff")
		require.Equal(t, 1, f.attempt(t, a.ID).QueryCount)

		f.settle(time.Minute)
		n, err = f.svc.ReconcileUnknown(f.ctx, 10)
		require.NoError(t, err)
		require.Equal(t, 1, n)
		requirePaidOnce(t, f, mchA, o.ID)
		require.Equal(t, t0.Add(time.Minute), f.get(t, mchA, o.ID).SuccessTime, "paid when the channel says it was")
		require.True(t, f.attempt(t, a.ID).NextQueryAt.IsZero(), "a final attempt is not queried again")
		f.settle(24 * time.Hour)
		n, err = f.svc.ReconcileUnknown(f.ctx, 10)
		require.NoError(t, err)
		require.Zero(t, n)
	})
}

func TestUnknownOutcomes(t *testing.T) {
	t.Parallel()
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		ch := &fakeChannel{tradeNo: "F", results: map[string]channel.Result{}}
		f := newFixture(t, db, withChannel(ch))

		// Pay times out: the attempt stays PROCESSING, with no trade number.
		ch.set(func(c *fakeChannel) { c.payErr = context.DeadlineExceeded })
		o := f.create(t, mchA, "unk_000001")
		a, err := f.svc.SandboxPay(f.ctx, mchA, o.ID, "success")
		require.NoError(t, err, "an unknown outcome is not an error of the request")
		require.Equal(t, channel.StatusProcessing, a.Status)
		require.Empty(t, a.ChannelTradeNo)
		require.Equal(t, payment.StatusNotPay, f.get(t, mchA, o.ID).Status)

		// The channel's queries fail, then say it does not know the payment:
		// it keeps being queried, on the backoff, for a day.
		ch.set(func(c *fakeChannel) { c.queryErr = errors.New("connection reset") })
		f.settle(30 * time.Second)
		n, err := f.svc.ReconcileUnknown(f.ctx, 10)
		require.NoError(t, err)
		require.Zero(t, n)
		ch.set(func(c *fakeChannel) { c.queryErr = nil })
		for range 20 {
			f.settle(time.Hour)
			n, err := f.svc.ReconcileUnknown(f.ctx, 10)
			require.NoError(t, err)
			require.Zero(t, n)
			require.Equal(t, channel.StatusProcessing, f.attempt(t, a.ID).Status)
		}
		f.settle(5 * time.Hour) // past GiveUpUnknown
		n, err = f.svc.ReconcileUnknown(f.ctx, 10)
		require.NoError(t, err)
		require.Equal(t, 1, n)
		att := f.attempt(t, a.ID)
		require.Equal(t, channel.StatusFailed, att.Status)
		require.Equal(t, payment.FailNotAtChannel, att.FailCode)
		require.Equal(t, payment.StatusPayError, f.get(t, mchA, o.ID).Status)

		// Accepted but unknown: queried until known, however long it takes.
		ch.set(func(c *fakeChannel) { c.payErr = nil })
		o2 := f.create(t, mchA, "unk_000002")
		b, err := f.svc.SandboxPay(f.ctx, mchA, o2.ID, "success")
		require.NoError(t, err)
		require.Equal(t, "F"+b.ID, b.ChannelTradeNo)
		for range 30 {
			f.settle(time.Hour)
			_, err := f.svc.ReconcileUnknown(f.ctx, 10)
			require.NoError(t, err)
		}
		require.Equal(t, channel.StatusProcessing, f.attempt(t, b.ID).Status, "an accepted payment is never given up")
		ch.set(func(c *fakeChannel) {
			c.results[b.ID] = channel.Result{Channel: "fake", ChannelTradeNo: b.ChannelTradeNo, AttemptID: b.ID, OrderID: o2.ID,
				Status: channel.StatusSuccess, Amount: b.Amount, Currency: b.Currency, PaidAt: f.clock.Now().Add(-31 * time.Hour)}
		})
		f.settle(time.Hour)
		n, err = f.svc.ReconcileUnknown(f.ctx, 10)
		require.NoError(t, err)
		require.Equal(t, 1, n)
		requirePaidOnce(t, f, mchA, o2.ID)

		// Declined outright: FAILED at once, PAYERROR, and another try is allowed.
		ch.set(func(c *fakeChannel) { c.payErr = fmt.Errorf("card blocked: %w", channel.ErrDeclined) })
		o3 := f.create(t, mchA, "unk_000003")
		d, err := f.svc.SandboxPay(f.ctx, mchA, o3.ID, "success")
		require.NoError(t, err)
		require.Equal(t, channel.StatusFailed, d.Status)
		require.Equal(t, payment.FailDeclined, d.FailCode)
		require.Equal(t, payment.StatusPayError, f.get(t, mchA, o3.ID).Status)
		ch.set(func(c *fakeChannel) { c.payErr = nil })
		_, err = f.svc.SandboxPay(f.ctx, mchA, o3.ID, "success")
		require.NoError(t, err)
		f.ledgerOK(t)
	})
}

func TestSandboxPayRules(t *testing.T) {
	t.Parallel()
	outcomes := make([]string, len(sim.Outcomes))
	for i, o := range sim.Outcomes {
		outcomes[i] = string(o)
	}
	require.Equal(t, outcomes, payment.SandboxOutcomes(), "SandboxPay accepts exactly the simulator's outcomes")
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		f := newFixture(t, db)
		o := f.create(t, mchA, "sbx_000001")
		live, _, err := f.svc.Create(f.ctx, mchLive, request("sbx_000001"))
		require.NoError(t, err)

		_, err = f.svc.SandboxPay(f.ctx, mchLive, live.ID, "success")
		requireCode(t, err, paygate.CodeForbidden, "live merchants cannot use the sandbox")
		_, err = f.svc.SandboxPay(f.ctx, mchSusp, o.ID, "success")
		requireCode(t, err, paygate.CodeForbidden)
		_, err = f.svc.SandboxPay(f.ctx, mchA, o.ID, "refund")
		requireCode(t, err, paygate.CodeInvalidArgument)
		require.Equal(t, "outcome", fieldOf(err))
		_, err = f.svc.SandboxPay(f.ctx, mchB, o.ID, "success")
		requireCode(t, err, paygate.CodeNotFound, "another merchant's order")
		_, err = f.svc.SandboxPay(f.ctx, mchA, "ord_nope", "success")
		requireCode(t, err, paygate.CodeNotFound)
		require.Zero(t, f.count(t, `SELECT COUNT(*) FROM payment_attempts`), "refusals start no payment")

		a, err := f.svc.SandboxPay(f.ctx, mchA, o.ID, "") // success by default
		require.NoError(t, err)
		f.settle(2 * time.Second)
		require.Equal(t, channel.StatusSuccess, f.attempt(t, a.ID).Status)
		_, err = f.svc.SandboxPay(f.ctx, mchA, o.ID, "success")
		requireCode(t, err, paygate.CodeConflict, "a paid order")

		noSim, err := payment.New(payment.Config{Store: db.Payments(), Ledger: f.led, Merchants: f.mchs, Clock: f.clock})
		require.NoError(t, err)
		_, err = noSim.SandboxPay(f.ctx, mchA, o.ID, "success")
		requireCode(t, err, paygate.CodeUnavailable)
	})
}

func TestOtherMerchantsOrdersAreNotFound(t *testing.T) {
	t.Parallel()
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		f := newFixture(t, db)
		o := f.create(t, mchA, "mine_00001")
		_, err := f.svc.Get(f.ctx, mchB, o.ID)
		requireCode(t, err, paygate.CodeNotFound)
		_, err = f.svc.GetByOutTradeNo(f.ctx, mchB, "mine_00001")
		requireCode(t, err, paygate.CodeNotFound)
		_, err = f.svc.Close(f.ctx, mchB, o.ID)
		requireCode(t, err, paygate.CodeNotFound)
		_, err = f.svc.Attempts(f.ctx, mchB, o.ID)
		requireCode(t, err, paygate.CodeNotFound)
		p, err := f.svc.List(f.ctx, mchB, payment.ListRequest{})
		require.NoError(t, err)
		require.Empty(t, p.Orders)
		for _, id := range []string{"", "ord_", "x", o.ID + "0"} {
			_, err = f.svc.Get(f.ctx, mchA, id)
			requireCode(t, err, paygate.CodeNotFound, id)
		}
		for _, no := range []string{"", "short", "mine_00001 "} {
			_, err = f.svc.GetByOutTradeNo(f.ctx, mchA, no)
			requireCode(t, err, paygate.CodeNotFound, no)
		}
		require.Equal(t, payment.StatusNotPay, f.get(t, mchA, o.ID).Status, "nothing changed")
		got, err := f.svc.GetByOutTradeNo(f.ctx, mchA, "mine_00001")
		require.NoError(t, err)
		require.Equal(t, o, got)
	})
}

func TestList(t *testing.T) {
	t.Parallel()
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		f := newFixture(t, db)
		var all []payment.Order // oldest first
		for i := range 7 {
			o := f.create(t, mchA, fmt.Sprintf("list_%06d", i))
			all = append(all, o)
			f.clock.Advance(time.Minute)
		}
		f.create(t, mchB, "list_other")
		f.pay(t, mchA, all[1].ID, "success")
		f.pay(t, mchA, all[4].ID, "success")
		f.settle(2 * time.Second)
		_, err := f.svc.Close(f.ctx, mchA, all[2].ID)
		require.NoError(t, err)

		collect := func(req payment.ListRequest) []string {
			var got []string
			for range 20 {
				p, err := f.svc.List(f.ctx, mchA, req)
				require.NoError(t, err)
				limit := req.Limit
				if limit == 0 {
					limit = payment.DefaultPageSize
				}
				require.LessOrEqual(t, len(p.Orders), limit)
				for _, o := range p.Orders {
					got = append(got, o.OutTradeNo)
				}
				if p.NextCursor == "" {
					return got
				}
				req.Cursor = p.NextCursor
			}
			t.Fatal("pagination does not end")
			return nil
		}
		nos := func(idx ...int) []string {
			out := make([]string, len(idx))
			for i, j := range idx {
				out[i] = all[j].OutTradeNo
			}
			return out
		}
		require.Equal(t, nos(6, 5, 4, 3, 2, 1, 0), collect(payment.ListRequest{Limit: 3}), "newest first, across pages")
		require.Equal(t, nos(6, 5, 4, 3, 2, 1, 0), collect(payment.ListRequest{Limit: 7}))
		require.Equal(t, nos(6, 5, 4, 3, 2, 1, 0), collect(payment.ListRequest{}))
		require.Equal(t, nos(4, 1), collect(payment.ListRequest{Status: payment.StatusSuccess, Limit: 1}))
		require.Equal(t, nos(2), collect(payment.ListRequest{Status: payment.StatusClosed}))
		require.Equal(t, nos(6, 5, 3, 0), collect(payment.ListRequest{Status: payment.StatusNotPay, Limit: 2}))
		require.Equal(t, nos(4, 3, 2), collect(payment.ListRequest{CreatedFrom: t0.Add(2 * time.Minute), CreatedTo: t0.Add(5 * time.Minute), Limit: 2}))
		require.Equal(t, nos(6, 5), collect(payment.ListRequest{CreatedFrom: t0.Add(5 * time.Minute)}))
		require.Equal(t, nos(0), collect(payment.ListRequest{CreatedTo: t0.Add(time.Minute)}))
		require.Equal(t, nos(4), collect(payment.ListRequest{Status: payment.StatusSuccess, CreatedFrom: t0.Add(3 * time.Minute)}))
		p, err := f.svc.List(f.ctx, mchA, payment.ListRequest{Status: payment.StatusPayError})
		require.NoError(t, err)
		require.Empty(t, p.Orders)
		require.Empty(t, p.NextCursor)

		// Listed orders are shown as Get shows them.
		p, err = f.svc.List(f.ctx, mchA, payment.ListRequest{Limit: 1})
		require.NoError(t, err)
		require.Equal(t, f.get(t, mchA, all[6].ID), p.Orders[0])

		bad := []struct {
			req   payment.ListRequest
			field string
		}{
			{payment.ListRequest{Limit: -1}, "limit"},
			{payment.ListRequest{Limit: payment.MaxPageSize + 1}, "limit"},
			{payment.ListRequest{Status: "PAID"}, "status"},
			{payment.ListRequest{Status: "notpay"}, "status"},
			{payment.ListRequest{CreatedFrom: t0, CreatedTo: t0}, "created_to"},
			{payment.ListRequest{Cursor: "!!"}, "cursor"},
			{payment.ListRequest{Cursor: "b3JkXw"}, ""}, // "ord_": valid, an empty page is fine
			{payment.ListRequest{Cursor: "eHl6"}, "cursor"},
		}
		for _, b := range bad {
			_, err := f.svc.List(f.ctx, mchA, b.req)
			if b.field == "" {
				require.NoError(t, err)
				continue
			}
			requireCode(t, err, paygate.CodeInvalidArgument, b.req)
			require.Equal(t, b.field, fieldOf(err))
		}
		require.True(t, slices.IsSortedFunc(all, func(a, b payment.Order) int { return compareStrings(a.ID, b.ID) }), "ids are time-ordered")
	})
}

func compareStrings(a, b string) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}
