package sim_test

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"paygate"
	"paygate/channel"
	"paygate/channel/sim"
	"paygate/transfer"
)

func payoutReq(id string, outcome sim.PayoutOutcome) transfer.PayoutRequest {
	return transfer.PayoutRequest{ID: id, CardNumber: "6299990000000066", Amount: 100, Currency: "CNY", Scenario: string(outcome)}
}

// TestPayouts: a payout is accepted at once (or times out while recorded)
// and its result is learnt by query when due; the same id is one payout;
// malformed payouts are declined and recorded nowhere.
func TestPayouts(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	for _, c := range []struct {
		outcome sim.PayoutOutcome
		due     time.Duration
		status  channel.Status
		code    string
	}{
		{"", 2 * time.Second, channel.StatusSuccess, ""},
		{sim.PayoutSuccess, 2 * time.Second, channel.StatusSuccess, ""},
		{sim.PayoutFail, 2 * time.Second, channel.StatusFailed, sim.PayoutFailCode},
		{sim.PayoutTimeout, time.Minute, channel.StatusSuccess, ""},
	} {
		t.Run(string(c.outcome), func(t *testing.T) {
			t.Parallel()
			clock := paygate.NewManualClock(time.Date(2026, 11, 22, 2, 0, 0, 0, time.UTC))
			p, err := sim.NewPayouts(sim.PayoutConfig{Clock: clock})
			require.NoError(t, err)
			require.Equal(t, "interbank", p.Name())
			acc, err := p.Payout(ctx, payoutReq("trf_1", c.outcome))
			if c.outcome == sim.PayoutTimeout {
				require.ErrorIs(t, err, sim.ErrTimeout)
			} else {
				require.NoError(t, err)
				require.NotEmpty(t, acc.ChannelNo)
			}
			again, err := p.Payout(ctx, payoutReq("trf_1", sim.PayoutFail))
			require.NoError(t, err)
			res, err := p.QueryPayout(ctx, "trf_1")
			require.NoError(t, err)
			require.Equal(t, again.ChannelNo, res.ChannelNo)
			require.Equal(t, channel.StatusProcessing, res.Status)
			clock.Advance(c.due - time.Nanosecond)
			res, err = p.QueryPayout(ctx, "trf_1")
			require.NoError(t, err)
			require.Equal(t, channel.StatusProcessing, res.Status)
			clock.Advance(time.Nanosecond)
			res, err = p.QueryPayout(ctx, "trf_1")
			require.NoError(t, err)
			require.Equal(t, c.status, res.Status)
			require.Equal(t, c.code, res.FailCode)
		})
	}

	clock := paygate.NewManualClock(time.Date(2026, 11, 22, 2, 0, 0, 0, time.UTC))
	p, err := sim.NewPayouts(sim.PayoutConfig{Clock: clock})
	require.NoError(t, err)
	for name, r := range map[string]transfer.PayoutRequest{
		"outcome":  payoutReq("x1", "late"),
		"no id":    payoutReq("", ""),
		"amount":   {ID: "x2", CardNumber: "6299990000000066", Amount: 0, Currency: "CNY"},
		"currency": {ID: "x3", CardNumber: "6299990000000066", Amount: 1, Currency: "XXX"},
		"card":     {ID: "x4", CardNumber: "62999900000000-6", Amount: 1, Currency: "CNY"},
		"short":    {ID: "x5", CardNumber: "629999", Amount: 1, Currency: "CNY"},
	} {
		_, err := p.Payout(ctx, r)
		require.ErrorIs(t, err, channel.ErrDeclined, name)
		_, err = p.QueryPayout(ctx, r.ID)
		require.ErrorIs(t, err, channel.ErrUnknownPayment, name)
	}
	_, err = sim.NewPayouts(sim.PayoutConfig{})
	require.Equal(t, paygate.CodeInvalidArgument, paygate.CodeOf(err))
	for _, s := range []string{"", "success", "fail", "timeout"} {
		_, err := sim.ParsePayoutOutcome(s)
		require.NoError(t, err)
	}
}
