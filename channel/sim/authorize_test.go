package sim_test

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"paygate/channel"
	"paygate/channel/sim"
)

func authReq(id string) channel.PayRequest {
	r := req(id, sim.Success)
	r.AuthorizeOnly = true
	return r
}

func resolveReq(id string, amount int64) channel.ResolveRequest {
	return channel.ResolveRequest{AttemptID: id, OrderID: "ord_" + id, Amount: amount, Authorized: 100, Currency: "CNY"}
}

// TestAuthorizeCaptureVoid: an authorization holds the money until it is
// captured in part or in full (the rest released) or voided; repeats are
// answered alike, contradictions are declined and change nothing.
func TestAuthorizeCaptureVoid(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	cases := []struct {
		name     string
		capture  int64 // 0: void
		captured int64
		released int64
		status   sim.AuthorizationStatus
	}{
		{"capture all", 100, 100, 0, sim.AuthorizationCaptured},
		{"capture part", 30, 30, 70, sim.AuthorizationCaptured},
		{"capture one fen", 1, 1, 99, sim.AuthorizationCaptured},
		{"void", 0, 0, 100, sim.AuthorizationVoided},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			r := newRig(t)
			acc, err := r.sim.Pay(ctx, authReq("a1"))
			require.NoError(t, err)
			r.clock.Advance(2 * time.Second)
			res, err := r.sim.Query(ctx, channel.QueryRequest{AttemptID: "a1"})
			require.NoError(t, err)
			require.Equal(t, channel.StatusSuccess, res.Status, "authorized")
			a, ok := r.sim.Authorization("a1")
			require.True(t, ok)
			require.Equal(t, sim.Authorization{AttemptID: "a1", Status: sim.AuthorizationHeld, Authorized: 100}, a)

			rr := resolveReq("a1", c.capture)
			rr.ChannelTradeNo = acc.ChannelTradeNo
			do := func(rr channel.ResolveRequest) error {
				if c.capture == 0 {
					return r.sim.Void(ctx, rr)
				}
				return r.sim.Capture(ctx, rr)
			}
			require.NoError(t, do(rr))
			want := sim.Authorization{AttemptID: "a1", Status: c.status, Authorized: 100, Captured: c.captured, Released: c.released}
			a, _ = r.sim.Authorization("a1")
			require.Equal(t, want, a)
			require.NoError(t, do(rr), "a repeat is answered alike")

			// Contradictions are declined and change nothing.
			bad := []error{r.sim.Void(ctx, resolveReq("a1", 0)), r.sim.Capture(ctx, resolveReq("a1", 50))}
			if c.capture == 0 {
				bad = bad[1:]
			}
			for _, err := range bad {
				require.ErrorIs(t, err, channel.ErrResolveDeclined)
			}
			a, _ = r.sim.Authorization("a1")
			require.Equal(t, want, a)

			// Refunds: within what was captured.
			_, err = r.sim.Refund(ctx, refundReq("r1", "a1", c.captured+1, sim.RefundSuccess))
			require.ErrorIs(t, err, channel.ErrRefundDeclined)
			if c.captured > 0 {
				_, err = r.sim.Refund(ctx, refundReq("r2", "a1", c.captured, sim.RefundSuccess))
				require.NoError(t, err)
			}
		})
	}
}

func TestAuthorizeBadRequests(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	r := newRig(t)
	_, err := r.sim.Pay(ctx, authReq("a1"))
	require.NoError(t, err)
	_, err = r.sim.Pay(ctx, req("p1", sim.Success))
	require.NoError(t, err)
	f := authReq("f1")
	f.Scenario = string(sim.Fail)
	_, err = r.sim.Pay(ctx, f)
	require.NoError(t, err)
	r.clock.Advance(2 * time.Second)
	other := resolveReq("a1", 10)
	other.Currency = "USD"
	trade := resolveReq("a1", 10)
	trade.ChannelTradeNo = "sim_other"
	for name, rr := range map[string]channel.ResolveRequest{
		"zero":                 resolveReq("a1", 0),
		"negative":             resolveReq("a1", -1),
		"above authorized":     resolveReq("a1", 101),
		"no attempt":           resolveReq("", 10),
		"bad currency":         {AttemptID: "a1", Amount: 10, Authorized: 100, Currency: "XXX"},
		"other currency":       other,
		"other trade number":   trade,
		"other authorized":     {AttemptID: "a1", Amount: 10, Authorized: 99, Currency: "CNY"},
		"not an authorization": resolveReq("p1", 10),
		"failed":               resolveReq("f1", 10),
	} {
		require.ErrorIs(t, r.sim.Capture(ctx, rr), channel.ErrResolveDeclined, name)
	}
	a, _ := r.sim.Authorization("a1")
	require.Equal(t, sim.AuthorizationHeld, a.Status, "nothing changed")
	_, ok := r.sim.Authorization("p1")
	require.False(t, ok, "a payment taken outright is no authorization")

	// Unknown outcomes: nothing done until the call is repeated.
	r.sim.FailResolves(2)
	require.ErrorIs(t, r.sim.Void(ctx, resolveReq("a1", 0)), sim.ErrTimeout)
	require.ErrorIs(t, r.sim.Capture(ctx, resolveReq("a1", 10)), sim.ErrTimeout)
	a, _ = r.sim.Authorization("a1")
	require.Equal(t, sim.AuthorizationHeld, a.Status)
	require.NoError(t, r.sim.Void(ctx, resolveReq("a1", 0)))

	// After a restart the simulator takes the request's word, once.
	require.NoError(t, r.sim.Capture(ctx, resolveReq("gone", 40)))
	a, ok = r.sim.Authorization("gone")
	require.True(t, ok)
	require.Equal(t, sim.Authorization{AttemptID: "gone", Status: sim.AuthorizationCaptured, Authorized: 100, Captured: 40, Released: 60}, a)
	require.ErrorIs(t, r.sim.Void(ctx, resolveReq("gone", 0)), channel.ErrResolveDeclined)
}
