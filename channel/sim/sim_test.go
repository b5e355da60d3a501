package sim_test

import (
	"context"
	"errors"
	"net/http"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"paygate"
	"paygate/channel"
	"paygate/channel/sim"
)

var t0 = time.Date(2026, 11, 22, 2, 0, 0, 0, time.UTC)

var secret = []byte("0123456789abcdef0123456789abcdef")

type callback struct {
	h    http.Header
	body []byte
}

type rig struct {
	clock *paygate.ManualClock
	disp  *sim.ManualDispatcher
	sim   *sim.Sim
	mu    sync.Mutex
	got   []callback
	fail  int // deliveries to refuse before accepting
}

func newRig(t *testing.T) *rig {
	t.Helper()
	r := &rig{clock: paygate.NewManualClock(t0)}
	r.disp = sim.NewManualDispatcher(r.clock)
	s, err := sim.New(sim.Config{Secret: secret, Clock: r.clock, Dispatcher: r.disp, Deliver: func(ctx context.Context, h http.Header, body []byte) error {
		r.mu.Lock()
		defer r.mu.Unlock()
		if r.fail > 0 {
			r.fail--
			return errors.New("endpoint down")
		}
		r.got = append(r.got, callback{h, body})
		return nil
	}})
	require.NoError(t, err)
	r.sim = s
	return r
}

func (r *rig) callbacks() []callback {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]callback(nil), r.got...)
}

func req(id string, outcome sim.Outcome) channel.PayRequest {
	return channel.PayRequest{AttemptID: id, OrderID: "ord_" + id, MerchantID: "m1", Amount: 100, Currency: "CNY",
		Description: "x", ExpiresAt: t0.Add(2 * time.Hour), Scenario: string(outcome)}
}

func TestNewValidates(t *testing.T) {
	t.Parallel()
	clock := paygate.NewManualClock(t0)
	d := sim.NewManualDispatcher(clock)
	deliver := func(context.Context, http.Header, []byte) error { return nil }
	for _, c := range []sim.Config{
		{Secret: secret[:31], Clock: clock, Dispatcher: d, Deliver: deliver},
		{Secret: secret, Dispatcher: d, Deliver: deliver},
		{Secret: secret, Clock: clock, Deliver: deliver},
		{Secret: secret, Clock: clock, Dispatcher: d},
	} {
		_, err := sim.New(c)
		require.Equal(t, paygate.CodeInvalidArgument, paygate.CodeOf(err))
	}
}

func TestParseOutcome(t *testing.T) {
	t.Parallel()
	for _, o := range sim.Outcomes {
		got, err := sim.ParseOutcome(string(o))
		require.NoError(t, err)
		require.Equal(t, o, got)
	}
	got, err := sim.ParseOutcome("")
	require.NoError(t, err)
	require.Equal(t, sim.Success, got)
	for _, bad := range []string{"SUCCESS", "ok", " success", "refund"} {
		_, err := sim.ParseOutcome(bad)
		require.Equal(t, paygate.CodeInvalidArgument, paygate.CodeOf(err), bad)
	}
}

func TestOutcomes(t *testing.T) {
	t.Parallel()
	cases := []struct {
		outcome   sim.Outcome
		advance   time.Duration // to the first callback
		callbacks int
		status    channel.Status
	}{
		{sim.Success, 2 * time.Second, 1, channel.StatusSuccess},
		{sim.Fail, 2 * time.Second, 1, channel.StatusFailed},
		{sim.Duplicate, 2 * time.Second, 2, channel.StatusSuccess},
		{sim.Late, 2*time.Hour + time.Minute, 1, channel.StatusSuccess},
		{sim.Timeout, 24 * time.Hour, 0, channel.StatusSuccess},
	}
	for _, c := range cases {
		t.Run(string(c.outcome), func(t *testing.T) {
			t.Parallel()
			r := newRig(t)
			ctx := context.Background()
			acc, err := r.sim.Pay(ctx, req("a1", c.outcome))
			require.NoError(t, err)
			require.NotEmpty(t, acc.ChannelTradeNo)
			again, err := r.sim.Pay(ctx, req("a1", c.outcome))
			require.NoError(t, err)
			require.Equal(t, acc, again, "paying one attempt twice is one payment")

			q, err := r.sim.Query(ctx, channel.QueryRequest{ChannelTradeNo: acc.ChannelTradeNo})
			require.NoError(t, err)
			require.Equal(t, channel.StatusProcessing, q.Status, "nothing is known at once")
			require.Zero(t, r.disp.RunDue())

			r.clock.Advance(c.advance - time.Second)
			r.disp.RunDue()
			require.Empty(t, r.callbacks(), "no callback before it is due")
			r.clock.Advance(time.Second)
			r.disp.RunDue()
			require.Len(t, r.callbacks(), min(c.callbacks, 1), "the first callback is due")
			r.clock.Advance(2 * time.Second) // a duplicate's second callback
			r.disp.RunDue()
			cbs := r.callbacks()
			require.Len(t, cbs, c.callbacks)
			for _, cb := range cbs {
				res, err := r.sim.VerifyCallback(cb.h, cb.body)
				require.NoError(t, err)
				require.Equal(t, c.status, res.Status)
				require.Equal(t, "a1", res.AttemptID)
				require.Equal(t, "ord_a1", res.OrderID)
				require.Equal(t, acc.ChannelTradeNo, res.ChannelTradeNo)
				require.Equal(t, int64(100), res.Amount)
				require.Equal(t, paygate.Currency("CNY"), res.Currency)
				require.Equal(t, sim.Name, res.Channel)
			}
			q, err = r.sim.Query(ctx, channel.QueryRequest{AttemptID: "a1"})
			require.NoError(t, err)
			require.Equal(t, c.status, q.Status, "the query knows the result once it is due")
			if c.status == channel.StatusSuccess {
				require.False(t, q.PaidAt.IsZero())
			} else {
				require.Equal(t, sim.FailCode, q.FailCode)
			}
			require.Zero(t, r.disp.Pending())
		})
	}
}

func TestQueryUnknown(t *testing.T) {
	t.Parallel()
	r := newRig(t)
	ctx := context.Background()
	acc, err := r.sim.Pay(ctx, req("a1", sim.Success))
	require.NoError(t, err)
	for _, q := range []channel.QueryRequest{
		{AttemptID: "nope"},
		{ChannelTradeNo: "sim_nope"},
		{ChannelTradeNo: acc.ChannelTradeNo, AttemptID: "other"},
		{AttemptID: "a1", OrderID: "ord_other"},
	} {
		_, err := r.sim.Query(ctx, q)
		require.ErrorIs(t, err, channel.ErrUnknownPayment, "%+v", q)
	}
}

func TestPayDeclines(t *testing.T) {
	t.Parallel()
	r := newRig(t)
	ctx := context.Background()
	for _, p := range []channel.PayRequest{
		{AttemptID: "a", Amount: 1, Currency: "CNY", Scenario: "explode"},
		{AttemptID: "", Amount: 1, Currency: "CNY"},
		{AttemptID: "a", Amount: 0, Currency: "CNY"},
		{AttemptID: "a", Amount: 1, Currency: "XXX"},
	} {
		_, err := r.sim.Pay(ctx, p)
		require.ErrorIs(t, err, channel.ErrDeclined, "%+v", p)
	}
	require.Zero(t, r.disp.Pending())
}

func TestDeliveryRetries(t *testing.T) {
	t.Parallel()
	r := newRig(t)
	r.fail = 2
	_, err := r.sim.Pay(context.Background(), req("a1", sim.Success))
	require.NoError(t, err)
	r.clock.Advance(2 * time.Second)
	r.disp.RunDue()
	require.Empty(t, r.callbacks())
	r.clock.Advance(15 * time.Second)
	r.disp.RunDue()
	require.Empty(t, r.callbacks())
	r.clock.Advance(15 * time.Second)
	r.disp.RunDue()
	require.Len(t, r.callbacks(), 1, "the third try is accepted")
	require.Zero(t, r.disp.Pending())
}

func TestVerifyCallbackRejects(t *testing.T) {
	t.Parallel()
	r := newRig(t)
	_, err := r.sim.Pay(context.Background(), req("a1", sim.Success))
	require.NoError(t, err)
	r.clock.Advance(2 * time.Second)
	r.disp.RunDue()
	cb := r.callbacks()[0]
	_, err = r.sim.VerifyCallback(cb.h, cb.body)
	require.NoError(t, err)

	other, err := sim.New(sim.Config{Secret: []byte("another-secret-another-secret-32"), Clock: r.clock, Dispatcher: r.disp,
		Deliver: func(context.Context, http.Header, []byte) error { return nil }})
	require.NoError(t, err)

	flip := func(b []byte, i int) []byte { c := append([]byte(nil), b...); c[i] ^= 1; return c }
	with := func(k, v string) http.Header { h := cb.h.Clone(); h.Set(k, v); return h }
	without := func(k string) http.Header { h := cb.h.Clone(); h.Del(k); return h }
	sig := cb.h.Get(sim.HeaderSignature)
	cases := []struct {
		name string
		h    http.Header
		body []byte
		code paygate.Code
	}{
		{"tampered body", cb.h, flip(cb.body, len(cb.body)/2), paygate.CodeUnauthenticated},
		{"tampered amount", cb.h, []byte(string(cb.body[:len(cb.body)-1]) + " "), paygate.CodeUnauthenticated},
		{"flipped signature", with(sim.HeaderSignature, string(flip([]byte(sig), 3))), cb.body, paygate.CodeUnauthenticated},
		{"other nonce", with(sim.HeaderNonce, "n2"), cb.body, paygate.CodeUnauthenticated},
		{"other timestamp", with(sim.HeaderTimestamp, strconv.FormatInt(r.clock.Now().Unix()+1, 10)), cb.body, paygate.CodeUnauthenticated},
		{"missing signature", without(sim.HeaderSignature), cb.body, paygate.CodeUnauthenticated},
		{"missing nonce", without(sim.HeaderNonce), cb.body, paygate.CodeUnauthenticated},
		{"missing timestamp", without(sim.HeaderTimestamp), cb.body, paygate.CodeUnauthenticated},
		{"bad timestamp", with(sim.HeaderTimestamp, "soon"), cb.body, paygate.CodeUnauthenticated},
		{"not base64", with(sim.HeaderSignature, "%%%"), cb.body, paygate.CodeUnauthenticated},
		{"other secret", other.Sign(r.clock.Now(), "n", cb.body), cb.body, paygate.CodeUnauthenticated},
		{"stale", r.sim.Sign(r.clock.Now().Add(-sim.Window-time.Second), "n", cb.body), cb.body, paygate.CodeUnauthenticated},
		{"future", r.sim.Sign(r.clock.Now().Add(sim.Window+time.Second), "n", cb.body), cb.body, paygate.CodeUnauthenticated},
		{"authentic garbage", r.sim.Sign(r.clock.Now(), "n", []byte("{")), []byte("{"), paygate.CodeInvalidArgument},
		{"authentic unknown field", r.sim.Sign(r.clock.Now(), "n", []byte(`{"channel":"sim","status":"SUCCESS","x":1}`)), []byte(`{"channel":"sim","status":"SUCCESS","x":1}`), paygate.CodeInvalidArgument},
		{"authentic other channel", r.sim.Sign(r.clock.Now(), "n", []byte(`{"channel":"wechat","status":"SUCCESS"}`)), []byte(`{"channel":"wechat","status":"SUCCESS"}`), paygate.CodeInvalidArgument},
		{"authentic processing", r.sim.Sign(r.clock.Now(), "n", []byte(`{"channel":"sim","status":"PROCESSING"}`)), []byte(`{"channel":"sim","status":"PROCESSING"}`), paygate.CodeInvalidArgument},
		{"authentic trailing", r.sim.Sign(r.clock.Now(), "n", []byte(`{"channel":"sim","status":"SUCCESS"}{}`)), []byte(`{"channel":"sim","status":"SUCCESS"}{}`), paygate.CodeInvalidArgument},
	}
	for _, c := range cases {
		_, err := r.sim.VerifyCallback(c.h, c.body)
		require.Equal(t, c.code, paygate.CodeOf(err), c.name)
		require.NotContains(t, err.Error(), sig, "errors never echo the signature")
	}
	// Within the window either way is fine.
	for _, d := range []time.Duration{sim.Window - time.Second, -sim.Window + time.Second} {
		_, err := r.sim.VerifyCallback(r.sim.Sign(r.clock.Now().Add(d), "n", cb.body), cb.body)
		require.NoError(t, err)
	}
}

func FuzzVerifyCallback(f *testing.F) {
	clock := paygate.NewManualClock(t0)
	s, err := sim.New(sim.Config{Secret: secret, Clock: clock, Dispatcher: sim.NewManualDispatcher(clock),
		Deliver: func(context.Context, http.Header, []byte) error { return nil }})
	if err != nil {
		f.Fatal(err)
	}
	body := []byte(`{"channel":"sim","channel_trade_no":"sim_1","attempt_id":"pay_1","order_id":"ord_1","status":"SUCCESS","amount":100,"currency":"CNY"}`)
	h := s.Sign(t0, "nonce", body)
	f.Add(h.Get(sim.HeaderTimestamp), "nonce", h.Get(sim.HeaderSignature), body)
	f.Add("0", "", "", []byte("{}"))
	f.Fuzz(func(t *testing.T, ts, nonce, sig string, body []byte) {
		h := http.Header{}
		h.Set(sim.HeaderTimestamp, ts)
		h.Set(sim.HeaderNonce, nonce)
		h.Set(sim.HeaderSignature, sig)
		r, err := s.VerifyCallback(h, body)
		if err == nil {
			// Only authentic callbacks pass: re-signing must reproduce the signature.
			want := s.Sign(time.Unix(mustInt(t, ts), 0), nonce, body)
			if want.Get(sim.HeaderSignature) != sig {
				t.Fatalf("accepted a callback with a wrong signature")
			}
			if r.Channel != sim.Name || !r.Status.Final() {
				t.Fatalf("accepted a non-final or foreign result: %+v", r)
			}
			return
		}
		if c := paygate.CodeOf(err); c != paygate.CodeUnauthenticated && c != paygate.CodeInvalidArgument {
			t.Fatalf("unexpected code %s", c)
		}
	})
}

func mustInt(t *testing.T, s string) int64 {
	var n int64
	for _, c := range s {
		if c < '0' || c > '9' {
			t.Fatalf("accepted timestamp %q", s)
		}
		n = n*10 + int64(c-'0')
	}
	return n
}
