package payment_test

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"pgregory.net/rapid"

	"paygate"
	"paygate/channel/sim"
	"paygate/ledger"
	"paygate/payment"
	"paygate/store"
	"paygate/store/storetest"
)

// releasedLog sums the limit usage given back per order.
type releasedLog struct {
	mu sync.Mutex
	by map[string]int64
}

func (l *releasedLog) option() option {
	return func(c *payment.Config) {
		c.AttemptFailed = func(ctx context.Context, tx payment.Tx, a payment.Attempt) error {
			l.mu.Lock()
			defer l.mu.Unlock()
			l.by[a.OrderID] += a.Amount
			return nil
		}
	}
}

func (l *releasedLog) of(orderID string) int64 {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.by[orderID]
}

// TestPreauthProperties runs random sequences of authorizations (on us,
// with limits reserved, and through the simulator), automatic payments,
// captures of random amounts, voids, partial refunds, clock jumps with the
// order's and the ledger's expiry jobs, and concurrent mixes of these on
// one order, and checks after every step that captures stay within the
// amount authorized, refunds within the amount captured, each hold is
// resolved once and as its order's status says, the limit usage given
// back is exactly what the authorization released, that the simulator
// holding an authorization captured and gave back exactly what paygate
// did (captured + released = authorized at the channel; while the
// simulator does not answer, it still holds it and the release job tells
// it later), and (for the first runs after every step, for all at their
// end) that the ledger balances.
func TestPreauthProperties(t *testing.T) {
	t.Parallel()
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		var run atomic.Int64
		rapid.Check(t, func(rt *rapid.T) {
			rel := &releasedLog{by: map[string]int64{}}
			f := newFixture(rt, db, rel.option())
			thisRun := run.Add(1)
			mch := fmt.Sprintf("pp%d_%s", thisRun, db.Dialect)
			f.mchs.add(paygate.Merchant{ID: mch, Status: paygate.MerchantSandbox, SettlementCurrency: "CNY",
				FeeRateBps: rapid.Int64Range(0, 300).Draw(rt, "fee_bps")})
			from := f.fundCustomer(rt)
			type ord struct {
				id     string
				manual bool
				limits bool // reserved limits (on us)
				sim    bool // authorized at the simulator
			}
			var orders []ord
			var n atomic.Int64 // the concurrent step numbers its refunds from several goroutines
			no := func() string { return fmt.Sprintf("pp_%d_%04d", thisRun, n.Add(1)) }
			pick := func(rt *rapid.T) ord {
				if len(orders) == 0 {
					rt.Skip("no orders")
				}
				return orders[rapid.IntRange(0, len(orders)-1).Draw(rt, "order")]
			}
			ok := func(rt *rapid.T, what string, err error, allowed ...paygate.Code) {
				c := paygate.CodeOf(err)
				if c == "" {
					return
				}
				for _, a := range allowed {
					if c == a {
						return
					}
				}
				rt.Fatalf("%s: %v", what, err)
			}
			capture := func(rt *rapid.T, o ord, amount int64) error {
				req := payment.CaptureRequest{}
				if amount > 0 {
					req.Amount = &payment.CaptureAmount{Total: amount}
				}
				_, err := f.svc.Capture(f.ctx, mch, o.id, req)
				return err
			}
			captureCodes := []paygate.Code{paygate.CodeLimitExceeded, paygate.CodeAlreadyResolved, paygate.CodeHoldExpired, paygate.CodeConflict}
			refund := func(rt *rapid.T, o ord, amount int64) error {
				got := f.get(rt, mch, o.id)
				_, _, err := f.svc.Refund(f.ctx, mch, refundReq(got, no(), amount))
				return err
			}
			rt.Repeat(map[string]func(*rapid.T){
				"authorize on us": func(rt *rapid.T) {
					o, _, err := f.svc.Create(f.ctx, mch, manualReq(no(), rapid.Int64Range(1, 300_000).Draw(rt, "total")))
					require.NoError(rt, err)
					o, _, err = f.svc.PayFromAccount(f.ctx, o.ID, payment.Payer{Method: "BALANCE", CustomerID: customer}, from,
						func(context.Context, payment.Tx, payment.Order) (paygate.Date, error) { return "2026-11-22", nil })
					require.NoError(rt, err)
					require.Equal(rt, payment.StatusAuthorized, o.Status)
					orders = append(orders, ord{o.ID, true, true, false})
				},
				"authorize through the simulator": func(rt *rapid.T) {
					o := f.authorizedSim(rt, mch, no(), rapid.Int64Range(1, 300_000).Draw(rt, "total"))
					orders = append(orders, ord{o.ID, true, false, true})
				},
				"pay automatically": func(rt *rapid.T) {
					o := f.paidOnUs(rt, mch, no(), rapid.Int64Range(1, 300_000).Draw(rt, "total"))
					orders = append(orders, ord{o.ID, false, false, false})
				},
				"capture": func(rt *rapid.T) {
					o := pick(rt)
					amount := rapid.Int64Range(0, 300_005).Draw(rt, "amount") // 0: all
					ok(rt, "capture", capture(rt, o, amount), captureCodes...)
				},
				"void": func(rt *rapid.T) {
					_, err := f.svc.Void(f.ctx, mch, pick(rt).id)
					ok(rt, "void", err, paygate.CodeAlreadyResolved, paygate.CodeHoldExpired, paygate.CodeConflict)
				},
				"refund": func(rt *rapid.T) {
					o := pick(rt)
					err := refund(rt, o, rapid.Int64Range(1, 300_000).Draw(rt, "refund"))
					ok(rt, "refund", err, paygate.CodeLimitExceeded, paygate.CodeConflict)
				},
				"concurrently": func(rt *rapid.T) {
					o := pick(rt)
					ops := rapid.SliceOfN(rapid.IntRange(0, 3), 2, 4).Draw(rt, "ops")
					amounts := rapid.SliceOfN(rapid.Int64Range(0, 300_000), len(ops), len(ops)).Draw(rt, "amounts")
					errs := make([]error, len(ops))
					var wg sync.WaitGroup
					for i, op := range ops {
						wg.Go(func() {
							switch op {
							case 0:
								errs[i] = capture(rt, o, amounts[i])
							case 1:
								_, errs[i] = f.svc.Void(f.ctx, mch, o.id)
							case 2:
								errs[i] = refund(rt, o, max(1, amounts[i]))
							case 3:
								_, errs[i] = f.svc.ExpireAuthorizations(f.ctx, 100)
							}
						})
					}
					wg.Wait()
					for i, err := range errs {
						ok(rt, fmt.Sprintf("concurrent op %d", ops[i]), err, captureCodes...)
					}
				},
				"the channel stops answering": func(rt *rapid.T) {
					f.sim.FailResolves(rapid.IntRange(0, 3).Draw(rt, "unanswered"))
				},
				"release job": func(rt *rapid.T) {
					_, err := f.svc.ReleaseAtChannels(f.ctx, 1000)
					require.NoError(rt, err)
				},
				"advance and expire": func(rt *rapid.T) {
					f.clock.Advance(time.Duration(rapid.Int64Range(1, 4*24*3600).Draw(rt, "seconds")) * time.Second)
					if rapid.Bool().Draw(rt, "ledger job first") {
						_, err := f.led.ExpireHolds(f.ctx, 1000)
						require.NoError(rt, err)
					}
					_, err := f.svc.ExpireAuthorizations(f.ctx, 1000)
					require.NoError(rt, err)
					_, err = f.svc.ReleaseAtChannels(f.ctx, 1000)
					require.NoError(rt, err)
				},
				"": func(rt *rapid.T) {
					for _, o := range orders {
						checkAuthorization(rt, f, rel, mch, o.id, o.manual, o.limits)
						if o.sim {
							checkAtChannel(rt, f, mch, o.id, false)
						}
					}
					checkRefundInvariants(rt, f, mch, thisRun <= ledgerEveryStepRuns)
				},
			})
			// Drain: every authorization ends by capture, void or expiry.
			f.clock.Advance(payment.DefaultAuthorizationPeriod + payment.AuthorizationGrace)
			_, err := f.svc.ExpireAuthorizations(f.ctx, 1000)
			require.NoError(rt, err)
			require.Zero(rt, f.count(rt, `SELECT COUNT(*) FROM payment_orders WHERE merchant_id = $1 AND status = 'AUTHORIZED'`, mch))
			// The channel answers again: the job tells it everything left.
			f.sim.FailResolves(0)
			f.clock.Advance(2 * time.Hour)
			_, err = f.svc.ReleaseAtChannels(f.ctx, 1000)
			require.NoError(rt, err)
			for _, o := range orders {
				checkAuthorization(rt, f, rel, mch, o.id, o.manual, o.limits)
				if o.sim {
					checkAtChannel(rt, f, mch, o.id, true)
				}
			}
			checkRefundInvariants(rt, f, mch, true)
		})
	})
}

// checkAuthorization checks an order against its hold's transfers and the
// limit usage given back.
func checkAuthorization(t testingT, f *fixture, rel *releasedLog, mch, id string, manual, limits bool) {
	t.Helper()
	o := f.get(t, mch, id)
	ts := map[string]ledger.Transfer{}
	for _, tr := range f.transfers(t, "pay_"+id, "cap_"+id, "void_"+id, "expire_pay_"+id) {
		ts[tr.ID[:len(tr.ID)-len(id)]] = tr
	}
	pay := ts["pay_"]
	require.LessOrEqual(t, o.Amount.Captured, o.Amount.Authorized, "%s: captured within authorized", id)
	if !manual {
		require.Equal(t, ledger.TransferFlags(0), pay.Flags, "%s: an automatic payment is posted at once", id)
		return
	}
	var wantReleased int64
	switch {
	case o.Status == payment.StatusAuthorized:
		require.Equal(t, ledger.HoldPending, pay.HoldStatus, id)
		require.Len(t, ts, 1, "%s: unresolved", id)
		require.Zero(t, o.Amount.PayerTotal, id)
	case o.Status == payment.StatusSuccess || o.Status == payment.StatusRefund:
		require.Equal(t, ledger.HoldPosted, pay.HoldStatus, id)
		require.Equal(t, o.Amount.Captured, ts["cap_"].Amount, "%s: posted as captured", id)
		require.NotContains(t, ts, "void_", id)
		require.NotContains(t, ts, "expire_pay_", id)
		require.Equal(t, o.Amount.Captured, o.Amount.PayerTotal, id)
		require.Positive(t, o.Amount.Captured, id)
		wantReleased = o.Amount.Authorized - o.Amount.Captured
	case o.Status == payment.StatusClosed:
		require.Contains(t, []string{payment.CloseVoided, payment.CloseAuthorizationExpired}, o.CloseReason, id)
		require.NotContains(t, ts, "cap_", id)
		if _, voided := ts["void_"]; voided {
			require.Equal(t, ledger.HoldVoided, pay.HoldStatus, id)
			require.NotContains(t, ts, "expire_pay_", id)
		} else {
			require.Equal(t, payment.CloseAuthorizationExpired, o.CloseReason, "%s: only expiry lets the ledger release it", id)
			require.Equal(t, ledger.HoldExpired, pay.HoldStatus, id)
		}
		require.Zero(t, o.Amount.PayerTotal, id)
		wantReleased = o.Amount.Authorized
	default:
		t.Errorf("%s: status %s", id, o.Status)
	}
	if limits {
		require.Equal(t, wantReleased, rel.of(id), "%s (%s): limit usage given back once, for what was released", id, o.Status)
	}
}

// checkAtChannel checks an order authorized at the simulator against what
// the simulator holds: held while the order is AUTHORIZED; once resolved,
// one release of the order's attempt, which the simulator has carried out
// exactly as paygate resolved it (captured + released = authorized at the
// channel) once it is DONE, and nothing yet while it is PENDING (drained:
// DONE). A channel never refuses here: DECLINED is a bug.
func checkAtChannel(t testingT, f *fixture, mch, id string, drained bool) {
	t.Helper()
	o := f.get(t, mch, id)
	at, ok := f.sim.Authorization(o.TransactionID)
	require.True(t, ok, "%s: held at the simulator", id)
	require.Equal(t, o.Amount.Authorized, at.Authorized, id)
	rs := f.releases(t, id)
	if o.Status == payment.StatusAuthorized {
		require.Empty(t, rs, "%s: nothing to tell the channel yet", id)
		require.Equal(t, sim.AuthorizationHeld, at.Status, id)
		return
	}
	require.Len(t, rs, 1, "%s: the channel is told once", id)
	r := rs[0]
	require.Equal(t, o.TransactionID, r.AttemptID, id)
	require.Equal(t, o.Amount.Captured, r.Amount, "%s: the channel captures what paygate captured", id)
	require.Equal(t, o.Amount.Authorized, r.Authorized, id)
	if drained {
		require.Equal(t, payment.ReleaseDone, r.Status, "%s: drained", id)
	}
	switch r.Status {
	case payment.ReleasePending:
		require.Equal(t, sim.AuthorizationHeld, at.Status, "%s: not told yet", id)
	case payment.ReleaseDone:
		want := sim.AuthorizationVoided
		if o.Amount.Captured > 0 {
			want = sim.AuthorizationCaptured
			require.Equal(t, payment.ReleaseCapture, r.Kind, id)
		} else {
			require.Equal(t, payment.ReleaseVoid, r.Kind, id)
		}
		require.Equal(t, want, at.Status, id)
		require.Equal(t, o.Amount.Captured, at.Captured, "%s: captured at the channel", id)
		require.Equal(t, o.Amount.Authorized-o.Amount.Captured, at.Released, "%s: the rest given back at the channel", id)
		require.Equal(t, at.Authorized, at.Captured+at.Released, id)
	default:
		t.Errorf("%s: release %s", id, r.Status)
	}
}
