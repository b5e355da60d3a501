package payment_test

import (
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"paygate"
	"paygate/channel"
	"paygate/channel/sim"
	"paygate/ledger"
	"paygate/payment"
	"paygate/store"
	"paygate/store/storetest"
)

// releases returns what the channels were told about the order.
func (f *fixture) releases(t testingT, orderID string) []payment.ChannelRelease {
	t.Helper()
	rs, err := f.db.ChannelReleases(f.ctx, orderID)
	require.NoError(t, err)
	return rs
}

// atSim returns the simulator's view of the order's authorization.
func (f *fixture) atSim(t testingT, o payment.Order) sim.Authorization {
	t.Helper()
	a, ok := f.sim.Authorization(o.TransactionID)
	require.True(t, ok, "the simulator holds %s's authorization", o.ID)
	return a
}

// TestPreauthChannelRelease: what paygate captures, voids or lets expire
// of an authorization held at the channel is captured or given back at the
// channel too, right after the commit: captured + released = authorized
// at the channel, and the channel's clearing account owes exactly what
// was captured.
func TestPreauthChannelRelease(t *testing.T) {
	t.Parallel()
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		cases := []struct {
			name    string
			do      func(f *fixture, o payment.Order) (payment.Order, error)
			kind    payment.ReleaseKind
			capture int64
			status  sim.AuthorizationStatus
		}{
			{"capture all", func(f *fixture, o payment.Order) (payment.Order, error) {
				return f.svc.Capture(f.ctx, mchA, o.ID, payment.CaptureRequest{})
			}, payment.ReleaseCapture, 10_000, sim.AuthorizationCaptured},
			{"capture part", func(f *fixture, o payment.Order) (payment.Order, error) {
				return f.svc.Capture(f.ctx, mchA, o.ID, payment.CaptureRequest{Amount: &payment.CaptureAmount{Total: 3_280}})
			}, payment.ReleaseCapture, 3_280, sim.AuthorizationCaptured},
			{"capture one fen", func(f *fixture, o payment.Order) (payment.Order, error) {
				return f.svc.Capture(f.ctx, mchA, o.ID, payment.CaptureRequest{Amount: &payment.CaptureAmount{Total: 1}})
			}, payment.ReleaseCapture, 1, sim.AuthorizationCaptured},
			{"void", func(f *fixture, o payment.Order) (payment.Order, error) {
				return f.svc.Void(f.ctx, mchA, o.ID)
			}, payment.ReleaseVoid, 0, sim.AuthorizationVoided},
			{"void by a suspended merchant", func(f *fixture, o payment.Order) (payment.Order, error) {
				f.mchs.add(paygate.Merchant{ID: mchA, Name: "A", Status: paygate.MerchantSuspended, SettlementCurrency: "CNY", FeeRateBps: 60})
				return f.svc.Void(f.ctx, mchA, o.ID)
			}, payment.ReleaseVoid, 0, sim.AuthorizationVoided},
			{"expiry", func(f *fixture, o payment.Order) (payment.Order, error) {
				f.clock.Set(o.CaptureBefore)
				n, err := f.svc.ExpireAuthorizations(f.ctx, 10)
				require.Equal(t, 1, n)
				return f.get(t, mchA, o.ID), err
			}, payment.ReleaseVoid, 0, sim.AuthorizationVoided},
			{"expiry after the ledger's", func(f *fixture, o payment.Order) (payment.Order, error) {
				f.clock.Set(o.CaptureBefore.Add(payment.AuthorizationGrace))
				_, err := f.led.ExpireHolds(f.ctx, 10)
				require.NoError(t, err)
				n, err := f.svc.ExpireAuthorizations(f.ctx, 10)
				require.Equal(t, 1, n)
				return f.get(t, mchA, o.ID), err
			}, payment.ReleaseVoid, 0, sim.AuthorizationVoided},
		}
		for i, c := range cases {
			t.Run(c.name, func(t *testing.T) {
				f := newFixture(t, db)
				clearing := ledger.ChannelClearing(sim.Name, "CNY")
				o := f.authorizedSim(t, mchA, fmt.Sprintf("pa_ch_%d", i), 10_000)
				require.Equal(t, sim.Authorization{AttemptID: o.TransactionID, Status: sim.AuthorizationHeld, Authorized: 10_000}, f.atSim(t, o))
				require.Empty(t, f.releases(t, o.ID), "nothing to tell the channel yet")
				// While held, the clearing account shows it pending only.
				held := f.account(t, clearing)
				require.GreaterOrEqual(t, held.DebitsPending, int64(10_000))

				got, err := c.do(f, o)
				require.NoError(t, err)
				require.Contains(t, []payment.Status{payment.StatusSuccess, payment.StatusClosed}, got.Status)
				require.Equal(t, c.capture, got.Amount.Captured)
				want := sim.Authorization{AttemptID: o.TransactionID, Status: c.status, Authorized: 10_000, Captured: c.capture,
					Released: 10_000 - c.capture}
				require.Equal(t, want, f.atSim(t, o), "the channel captured and gave back as paygate did")
				rs := f.releases(t, o.ID)
				require.Len(t, rs, 1)
				r := rs[0]
				require.Equal(t, payment.ChannelRelease{AttemptID: o.TransactionID, OrderID: o.ID, MerchantID: mchA, Channel: sim.Name,
					ChannelTradeNo: o.ChannelTradeNo, Kind: c.kind, Amount: c.capture, Authorized: 10_000, Currency: "CNY",
					Status: payment.ReleaseDone, Tries: 1, NextTryAt: r.NextTryAt, CreatedAt: f.clock.Now().UTC(),
					UpdatedAt: f.clock.Now().UTC(), DoneAt: f.clock.Now().UTC()}, r)
				require.Equal(t, 10_000-c.capture, r.Released())
				after := f.account(t, clearing)
				require.Equal(t, held.DebitsPending-10_000, after.DebitsPending, "no hold left at the clearing account")
				require.Equal(t, held.DebitsPosted+c.capture, after.DebitsPosted, "the channel owes what it captured")

				n, err := f.svc.ReleaseAtChannels(f.ctx, 10)
				require.NoError(t, err)
				require.Zero(t, n, "nothing left for the job")
				f.clock.Advance(24 * time.Hour)
				n, err = f.svc.ReleaseAtChannels(f.ctx, 10)
				require.NoError(t, err)
				require.Zero(t, n)
				f.ledgerOK(t)
			})
		}
	})
}

// TestPreauthChannelRetries: a channel that does not answer leaves the
// release PENDING (never lost, never recorded as failed); the job repeats
// the call on its backoff until the channel confirms, once however many
// jobs run; a call the channel already carried out (a crash before DONE
// was booked) is confirmed alike; an outright refusal is DECLINED and
// alerted, and never repeated.
func TestPreauthChannelRetries(t *testing.T) {
	t.Parallel()
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		f := newFixture(t, db)
		run := func(want int) {
			t.Helper()
			n, err := f.svc.ReleaseAtChannels(f.ctx, 10)
			require.NoError(t, err)
			require.Equal(t, want, n)
		}

		// Unknown outcomes: retried on the backoff until confirmed.
		o := f.authorizedSim(t, mchA, "pa_retry_1", 10_000)
		f.sim.FailResolves(3)
		got, err := f.svc.Capture(f.ctx, mchA, o.ID, payment.CaptureRequest{Amount: &payment.CaptureAmount{Total: 4_000}})
		require.NoError(t, err, "the capture is paygate's; the channel is told after the commit")
		require.Equal(t, payment.StatusSuccess, got.Status)
		r := f.releases(t, o.ID)[0]
		require.Equal(t, payment.ReleasePending, r.Status)
		require.Equal(t, 1, r.Tries)
		require.Equal(t, "UNKNOWN", r.FailCode)
		require.Equal(t, f.clock.Now().UTC().Add(30*time.Second), r.NextTryAt)
		require.Equal(t, sim.AuthorizationHeld, f.atSim(t, o).Status)
		run(0) // not due yet
		f.clock.Advance(30 * time.Second)
		run(0) // fails again
		r = f.releases(t, o.ID)[0]
		require.Equal(t, 2, r.Tries)
		require.Equal(t, f.clock.Now().UTC().Add(time.Minute), r.NextTryAt)
		f.clock.Advance(time.Minute)
		run(0)
		f.clock.Advance(2 * time.Minute)
		var wg sync.WaitGroup
		done := make([]int, 4)
		for i := range done {
			wg.Go(func() {
				var err error
				done[i], err = f.svc.ReleaseAtChannels(f.ctx, 10)
				require.NoError(t, err)
			})
		}
		wg.Wait()
		require.Equal(t, 1, done[0]+done[1]+done[2]+done[3], "one job finishes it")
		r = f.releases(t, o.ID)[0]
		require.Equal(t, payment.ReleaseDone, r.Status)
		require.Equal(t, 4, r.Tries)
		require.Equal(t, sim.Authorization{AttemptID: o.TransactionID, Status: sim.AuthorizationCaptured, Authorized: 10_000,
			Captured: 4_000, Released: 6_000}, f.atSim(t, o))
		f.clock.Advance(24 * time.Hour)
		run(0)

		// A crash after the channel's call, before DONE: the job's repeat
		// is answered alike and books DONE.
		o2 := f.authorizedSim(t, mchA, "pa_retry_2", 5_000)
		f.sim.FailResolves(1)
		_, err = f.svc.Void(f.ctx, mchA, o2.ID)
		require.NoError(t, err)
		require.NoError(t, f.sim.Void(f.ctx, channel.ResolveRequest{AttemptID: o2.TransactionID, Authorized: 5_000, Currency: "CNY"}))
		f.clock.Advance(time.Minute)
		run(1)
		require.Equal(t, payment.ReleaseDone, f.releases(t, o2.ID)[0].Status)
		require.Equal(t, int64(5_000), f.atSim(t, o2).Released)

		// An outright refusal (the channel resolved it otherwise) is an
		// operator's alert, not retried.
		o3 := f.authorizedSim(t, mchA, "pa_retry_3", 5_000)
		require.NoError(t, f.sim.Capture(f.ctx, channel.ResolveRequest{AttemptID: o3.TransactionID, Amount: 5_000, Authorized: 5_000, Currency: "CNY"}))
		_, err = f.svc.Void(f.ctx, mchA, o3.ID)
		require.NoError(t, err)
		r = f.releases(t, o3.ID)[0]
		require.Equal(t, payment.ReleaseDeclined, r.Status)
		require.Equal(t, "DECLINED", r.FailCode)
		require.Equal(t, 1, f.logs.alerts(t)[payment.AlertReleaseDeclined])
		f.clock.Advance(24 * time.Hour)
		run(0)
		require.Equal(t, payment.ReleaseDeclined, f.releases(t, o3.ID)[0].Status)
		f.ledgerOK(t)
	})
}

// TestPreauthStrayAuthorization: a second authorization of an order that
// another attempt authorized first was never taken from the payer: it is
// voided at the channel, not held in suspense, and the order is unchanged.
func TestPreauthStrayAuthorization(t *testing.T) {
	t.Parallel()
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		f := newFixture(t, db)
		o, _, err := f.svc.Create(f.ctx, mchA, manualReq("pa_stray_1", 10_000))
		require.NoError(t, err)
		first := f.pay(t, mchA, o.ID, "timeout") // accepted, never calls back
		f.pay(t, mchA, o.ID, "success")
		f.settle(2 * time.Second)
		o = f.get(t, mchA, o.ID)
		require.Equal(t, payment.StatusAuthorized, o.Status)
		require.NotEqual(t, first.ID, o.TransactionID)

		f.clock.Advance(time.Minute) // the channel now knows the first one succeeded
		_, err = f.svc.ReconcileUnknown(f.ctx, 10)
		require.NoError(t, err)
		a := f.attempt(t, first.ID)
		require.Equal(t, channel.StatusSuccess, a.Status)
		require.Empty(t, a.Review, "nothing taken: nothing to review")
		require.Empty(t, f.transfers(t, "susp_"+first.ID), "nothing in suspense")
		got, ok := f.sim.Authorization(first.ID)
		require.True(t, ok)
		require.Equal(t, sim.Authorization{AttemptID: first.ID, Status: sim.AuthorizationVoided, Authorized: 10_000, Released: 10_000}, got)
		rs := f.releases(t, o.ID)
		require.Len(t, rs, 1)
		require.Equal(t, payment.ReleaseVoid, rs[0].Kind)
		require.Equal(t, payment.ReleaseDone, rs[0].Status)
		require.Equal(t, first.ID, rs[0].AttemptID)
		require.Equal(t, o, f.get(t, mchA, o.ID), "the order is unchanged")
		require.Equal(t, []string{payment.EventAuthorized}, eventTypes(f.events(t, o.ID)))

		// The order's own authorization is still captured as usual.
		_, err = f.svc.Capture(f.ctx, mchA, o.ID, payment.CaptureRequest{})
		require.NoError(t, err)
		require.Equal(t, sim.AuthorizationCaptured, f.atSim(t, o).Status)
		require.Len(t, f.releases(t, o.ID), 2)
		f.ledgerOK(t)
	})
}

// plainChannel is a channel that cannot hold a payment (no Authorizer).
type plainChannel struct{ channel.Channel }

func (plainChannel) Name() string { return "plain" }

// TestPreauthChannelMustAuthorize: a manual-capture order is refused by a
// channel that can only take money outright, before anything is recorded,
// and the checkout does not offer online banking for it.
func TestPreauthChannelMustAuthorize(t *testing.T) {
	t.Parallel()
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		var f *fixture
		f = newFixture(t, db, func(c *payment.Config) {
			c.Channels = append(c.Channels, plainChannel{c.Channels[0]})
		})
		o, _, err := f.svc.Create(f.ctx, mchA, manualReq("pa_plain_1", 10_000))
		require.NoError(t, err)
		_, err = f.svc.PayThrough(f.ctx, o.ID, "plain", payment.Payer{Method: "ONLINE_BANKING"}, "", nil)
		requireCode(t, err, paygate.CodeConflict)
		require.Contains(t, err.Error(), "cannot hold")
		as, err := f.db.Payments().OrderAttempts(f.ctx, o.ID)
		require.NoError(t, err)
		require.Empty(t, as, "nothing recorded")
		require.Equal(t, payment.StatusNotPay, f.get(t, mchA, o.ID).Status)

		auto := f.create(t, mchA, "pa_plain_2")
		v, err := f.svc.CheckoutView(f.ctx, auto.ID)
		require.NoError(t, err)
		require.Contains(t, v.Methods, payment.MethodOnlineBanking)
		v, err = f.svc.CheckoutView(f.ctx, o.ID)
		require.NoError(t, err)
		require.NotContains(t, v.Methods, payment.MethodOnlineBanking)
		require.Equal(t, []string{payment.MethodQuickPay, payment.MethodCardPay, payment.MethodMobileQR, payment.MethodBalance}, v.Methods)

		// The channel that can hold takes it.
		f.pay(t, mchA, o.ID, "success")
		f.settle(2 * time.Second)
		require.Equal(t, payment.StatusAuthorized, f.get(t, mchA, o.ID).Status)
	})
}
