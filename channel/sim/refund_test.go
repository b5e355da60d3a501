package sim_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"paygate"
	"paygate/channel"
	"paygate/channel/sim"
)

func refundReq(id, attempt string, amount int64, outcome sim.RefundOutcome) channel.RefundRequest {
	return channel.RefundRequest{RefundID: id, AttemptID: attempt, OrderID: "ord_" + attempt, Amount: amount, Total: 100,
		Currency: "CNY", Scenario: string(outcome)}
}

func TestParseRefundOutcome(t *testing.T) {
	t.Parallel()
	for _, o := range sim.RefundOutcomes {
		got, err := sim.ParseRefundOutcome(string(o))
		require.NoError(t, err)
		require.Equal(t, o, got)
	}
	got, err := sim.ParseRefundOutcome("")
	require.NoError(t, err)
	require.Equal(t, sim.RefundSuccess, got)
	for _, bad := range []string{"SUCCESS", "late", "duplicate"} {
		_, err := sim.ParseRefundOutcome(bad)
		require.Equal(t, paygate.CodeInvalidArgument, paygate.CodeOf(err), bad)
	}
}

// TestRefundOutcomes: a refund is accepted at once (or times out while
// recorded) and its result is learnt by query when due; the same refund id
// is one refund.
func TestRefundOutcomes(t *testing.T) {
	t.Parallel()
	cases := []struct {
		outcome sim.RefundOutcome
		due     time.Duration
		status  channel.Status
	}{
		{sim.RefundSuccess, 2 * time.Second, channel.StatusSuccess},
		{sim.RefundFail, 2 * time.Second, channel.StatusFailed},
		{sim.RefundTimeout, time.Minute, channel.StatusSuccess},
	}
	for _, c := range cases {
		t.Run(string(c.outcome), func(t *testing.T) {
			t.Parallel()
			r := newRig(t)
			ctx := context.Background()
			_, err := r.sim.Pay(ctx, req("a1", sim.Success))
			require.NoError(t, err)
			acc, err := r.sim.Refund(ctx, refundReq("r1", "a1", 60, c.outcome))
			if c.outcome == sim.RefundTimeout {
				require.ErrorIs(t, err, sim.ErrTimeout)
				require.False(t, errors.Is(err, channel.ErrRefundDeclined), "a timeout is not a refusal")
			} else {
				require.NoError(t, err)
				require.NotEmpty(t, acc.ChannelRefundNo)
			}
			again, err := r.sim.Refund(ctx, refundReq("r1", "a1", 60, c.outcome))
			require.NoError(t, err, "the same refund id again: the first acceptance")
			q, err := r.sim.QueryRefund(ctx, channel.RefundQuery{RefundID: "r1"})
			require.NoError(t, err)
			require.Equal(t, channel.StatusProcessing, q.Status)
			require.Equal(t, again.ChannelRefundNo, q.ChannelRefundNo)
			r.clock.Advance(c.due - time.Second)
			q, _ = r.sim.QueryRefund(ctx, channel.RefundQuery{RefundID: "r1", ChannelRefundNo: again.ChannelRefundNo})
			require.Equal(t, channel.StatusProcessing, q.Status, "not before it is due")
			r.clock.Advance(time.Second)
			q, err = r.sim.QueryRefund(ctx, channel.RefundQuery{RefundID: "r1"})
			require.NoError(t, err)
			require.Equal(t, c.status, q.Status)
			require.Equal(t, sim.Name, q.Channel)
			require.Equal(t, "r1", q.RefundID)
			require.Equal(t, int64(60), q.Amount)
			require.Equal(t, paygate.Currency("CNY"), q.Currency)
			if c.status == channel.StatusSuccess {
				require.False(t, q.SucceededAt.IsZero())
			} else {
				require.Equal(t, sim.RefundFailCode, q.FailCode)
			}
			require.Equal(t, 1, r.disp.Pending(), "the payment's callback only: refunds call nobody back")
		})
	}
}

func TestRefundDeclinesAndUnknown(t *testing.T) {
	t.Parallel()
	r := newRig(t)
	ctx := context.Background()
	_, err := r.sim.Pay(ctx, req("a1", sim.Success))
	require.NoError(t, err)
	for _, bad := range []channel.RefundRequest{
		refundReq("r", "a1", 1, "explode"),
		refundReq("", "a1", 1, ""),
		refundReq("r", "a1", 0, ""),
		refundReq("r", "a1", 101, ""),
		{RefundID: "r", AttemptID: "a1", Amount: 1, Total: 100, Currency: "XXX"},
		{RefundID: "r", AttemptID: "a1", Amount: 1, Total: 100, Currency: "USD"},
	} {
		_, err := r.sim.Refund(ctx, bad)
		require.ErrorIs(t, err, channel.ErrRefundDeclined, "%+v", bad)
	}
	// More than the payment in all is refused; a failed refund gives its
	// amount back.
	_, err = r.sim.Refund(ctx, refundReq("r1", "a1", 70, sim.RefundFail))
	require.NoError(t, err)
	_, err = r.sim.Refund(ctx, refundReq("r2", "a1", 40, ""))
	require.ErrorIs(t, err, channel.ErrRefundDeclined)
	r.clock.Advance(2 * time.Second)
	_, err = r.sim.QueryRefund(ctx, channel.RefundQuery{RefundID: "r1"}) // now FAILED
	require.NoError(t, err)
	_, err = r.sim.Refund(ctx, refundReq("r2", "a1", 100, ""))
	require.NoError(t, err)
	// A payment the simulator never saw (paid before a restart) is refunded on the request's word.
	_, err = r.sim.Refund(ctx, refundReq("r3", "unknown", 100, ""))
	require.NoError(t, err)

	for _, q := range []channel.RefundQuery{{RefundID: "nope"}, {RefundID: "r2", ChannelRefundNo: "simr_other"}} {
		_, err := r.sim.QueryRefund(ctx, q)
		require.ErrorIs(t, err, channel.ErrUnknownRefund, "%+v", q)
	}
}
