package payment_test

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"paygate"
	"paygate/ledger"
	"paygate/payment"
	"paygate/store"
	"paygate/store/storetest"
)

// limitLog records the limit usage given back through
// Config.AttemptFailed.
type limitLog struct {
	mu       sync.Mutex
	released []int64
}

func (l *limitLog) option() option {
	return func(c *payment.Config) {
		c.AttemptFailed = func(ctx context.Context, tx payment.Tx, a payment.Attempt) error {
			l.mu.Lock()
			defer l.mu.Unlock()
			l.released = append(l.released, a.Amount)
			return nil
		}
	}
}

func (l *limitLog) all() []int64 {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]int64(nil), l.released...)
}

// manualReq is a create request with manual capture.
func manualReq(no string, total int64) payment.CreateRequest {
	r := request(no)
	r.Amount.Total, r.CaptureMethod = total, payment.CaptureManual
	return r
}

// authorizedSim creates a manual-capture order of total and pays it
// through the simulator.
func (f *fixture) authorizedSim(t testingT, mch, no string, total int64) payment.Order {
	t.Helper()
	o, _, err := f.svc.Create(f.ctx, mch, manualReq(no, total))
	require.NoError(t, err)
	f.pay(t, mch, o.ID, "success")
	f.settle(2 * time.Second)
	o = f.get(t, mch, o.ID)
	require.Equal(t, payment.StatusAuthorized, o.Status)
	return o
}

// authorizedOnUs creates a manual-capture order of total and pays it from
// the customer's balance, reserving limits on day "2026-11-22".
func (f *fixture) authorizedOnUs(t testingT, mch, no string, total int64) payment.Order {
	t.Helper()
	from := f.fundCustomer(t)
	o, _, err := f.svc.Create(f.ctx, mch, manualReq(no, total))
	require.NoError(t, err)
	o, _, err = f.svc.PayFromAccount(f.ctx, o.ID, payment.Payer{Method: "BALANCE", CustomerID: customer}, from,
		func(context.Context, payment.Tx, payment.Order) (paygate.Date, error) { return "2026-11-22", nil })
	require.NoError(t, err)
	require.Equal(t, payment.StatusAuthorized, o.Status)
	return o
}

func (f *fixture) holdOf(t testingT, orderID string) ledger.Transfer {
	t.Helper()
	ts := f.transfers(t, "pay_"+orderID)
	require.Len(t, ts, 1)
	return ts[0]
}

func TestPreauthCapture(t *testing.T) {
	t.Parallel()
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		cases := []struct {
			name    string
			onUs    bool
			capture int64 // 0: all
			want    int64
		}{
			{"sim full", false, 0, 10_000},
			{"sim partial", false, 6_000, 6_000},
			{"sim exact", false, 10_000, 10_000},
			{"on us full", true, 0, 10_000},
			{"on us partial", true, 2_500, 2_500},
			{"on us one fen", true, 1, 1},
		}
		for i, c := range cases {
			t.Run(c.name, func(t *testing.T) {
				limits := &limitLog{}
				f := newFixture(t, db, limits.option())
				no := fmt.Sprintf("pa_cap_%d", i)
				var o payment.Order
				var custBefore int64
				if c.onUs {
					f.fundCustomer(t)
					custBefore = f.balance(t, ledger.CustomerDeposit(customer, "CNY"))
					o = f.authorizedOnUs(t, mchA, no, 10_000)
				} else {
					o = f.authorizedSim(t, mchA, no, 10_000)
				}
				require.Equal(t, payment.CaptureManual, o.CaptureMethod)
				require.Equal(t, int64(10_000), o.Amount.Authorized)
				require.Zero(t, o.Amount.PayerTotal, "nothing paid to the merchant yet")
				require.Equal(t, f.clock.Now().UTC().Add(payment.DefaultAuthorizationPeriod), o.CaptureBefore)
				require.False(t, o.AuthorizeTime.IsZero())
				require.Empty(t, o.CheckoutURL)
				h := f.holdOf(t, o.ID)
				require.Equal(t, ledger.HoldPending, h.HoldStatus)
				require.Equal(t, o.CaptureBefore.Add(payment.AuthorizationGrace), h.ExpiresAt, "the ledger's hold outlives the order's authorization")
				pendingBefore := f.balance(t, ledger.MerchantPending(mchA, "CNY"))
				require.Equal(t, []string{payment.EventAuthorized}, eventTypes(f.events(t, o.ID)))
				if c.onUs {
					acc := f.account(t, ledger.CustomerDeposit(customer, "CNY"))
					require.Equal(t, custBefore-10_000, acc.Available(acc.Normal), "the customer's money is held")
				}
				_, _, err := f.svc.Refund(f.ctx, mchA, refundReq(o, no+"_r0", 100))
				requireCode(t, err, paygate.CodeConflict, "nothing captured: no refund")
				_, err = f.svc.Close(f.ctx, mchA, o.ID)
				requireCode(t, err, paygate.CodeConflict, "an authorization is voided, not closed")

				var req payment.CaptureRequest
				if c.capture > 0 {
					req.Amount = &payment.CaptureAmount{Total: c.capture}
				}
				f.clock.Advance(time.Hour)
				got, err := f.svc.Capture(f.ctx, mchA, o.ID, req)
				require.NoError(t, err)
				m, err := f.mchs.Merchant(f.ctx, mchA)
				require.NoError(t, err)
				fee := m.Fee(c.want)
				require.Equal(t, payment.StatusSuccess, got.Status)
				require.Equal(t, c.want, got.Amount.Captured)
				require.Equal(t, c.want, got.Amount.PayerTotal)
				require.Equal(t, int64(10_000), got.Amount.Authorized)
				require.Equal(t, f.clock.Now().UTC(), got.SuccessTime)
				require.Equal(t, got, f.get(t, mchA, o.ID))
				require.Equal(t, ledger.HoldPosted, f.holdOf(t, o.ID).HoldStatus)
				require.Equal(t, pendingBefore+c.want-fee, f.balance(t, ledger.MerchantPending(mchA, "CNY")))
				require.Equal(t, []string{payment.EventAuthorized, payment.EventSuccess}, eventTypes(f.events(t, o.ID)))
				if c.onUs {
					require.Equal(t, custBefore-c.want, f.balance(t, ledger.CustomerDeposit(customer, "CNY")), "the rest went back")
					if c.want < 10_000 {
						require.Equal(t, []int64{10_000 - c.want}, limits.all(), "the released rest's limit usage is given back")
					} else {
						require.Empty(t, limits.all())
					}
				}

				_, err = f.svc.Capture(f.ctx, mchA, o.ID, payment.CaptureRequest{})
				requireCode(t, err, paygate.CodeAlreadyResolved, "second capture")
				_, err = f.svc.Void(f.ctx, mchA, o.ID)
				requireCode(t, err, paygate.CodeAlreadyResolved, "void after capture")

				// Refunds give back at most what was captured.
				_, _, err = f.svc.Refund(f.ctx, mchA, refundReq(got, no+"_r1", c.want+1))
				requireCode(t, err, paygate.CodeLimitExceeded)
				r := f.refund(t, mchA, refundReq(got, no+"_r2", c.want))
				require.Equal(t, fee, r.Amount.FeeRefund, "a full refund of the capture returns its whole fee")
				f.ledgerOK(t)
			})
		}
	})
}

// account returns a ledger account with its balances.
func (f *fixture) account(t testingT, a ledger.Account) ledger.Account {
	t.Helper()
	as, err := f.db.Ledger().Accounts(f.ctx, []string{a.ID})
	require.NoError(t, err)
	require.Len(t, as, 1)
	return as[0]
}

func TestPreauthVoid(t *testing.T) {
	t.Parallel()
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		limits := &limitLog{}
		f := newFixture(t, db, limits.option())
		f.fundCustomer(t)
		before := f.balance(t, ledger.CustomerDeposit(customer, "CNY"))
		pendingBefore := f.balance(t, ledger.MerchantPending(mchA, "CNY"))
		o := f.authorizedOnUs(t, mchA, "pa_void_1", 7_000)
		got, err := f.svc.Void(f.ctx, mchA, o.ID)
		require.NoError(t, err)
		require.Equal(t, payment.StatusClosed, got.Status)
		require.Equal(t, payment.CloseVoided, got.CloseReason)
		require.Equal(t, f.clock.Now().UTC(), got.CloseTime)
		require.Equal(t, ledger.HoldVoided, f.holdOf(t, o.ID).HoldStatus)
		acc := f.account(t, ledger.CustomerDeposit(customer, "CNY"))
		require.Equal(t, before, acc.Available(acc.Normal), "the customer has all of it back")
		require.Equal(t, pendingBefore, f.balance(t, ledger.MerchantPending(mchA, "CNY")))
		require.Equal(t, []int64{7_000}, limits.all())
		require.Equal(t, []string{payment.EventAuthorized, payment.EventClosed}, eventTypes(f.events(t, o.ID)))

		for _, c := range []struct {
			name string
			do   func() error
		}{
			{"void again", func() error { _, err := f.svc.Void(f.ctx, mchA, o.ID); return err }},
			{"capture after void", func() error { _, err := f.svc.Capture(f.ctx, mchA, o.ID, payment.CaptureRequest{}); return err }},
		} {
			requireCode(t, c.do(), paygate.CodeAlreadyResolved, c.name)
		}
		requireCode(t, func() error { _, _, err := f.svc.Refund(f.ctx, mchA, refundReq(got, "pa_void_r", 1)); return err }(), paygate.CodeConflict)
		require.Len(t, f.events(t, o.ID), 2, "refusals notify nobody")
		require.Len(t, limits.all(), 1, "limits given back once")
		f.ledgerOK(t)
	})
}

func TestPreauthExpiry(t *testing.T) {
	t.Parallel()
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		limits := &limitLog{}
		f := newFixture(t, db, limits.option(), func(c *payment.Config) { c.AuthorizationPeriod = 24 * time.Hour })
		f.fundCustomer(t)
		before := f.balance(t, ledger.CustomerDeposit(customer, "CNY"))
		a := f.authorizedOnUs(t, mchA, "pa_exp_1", 3_000)
		b := f.authorizedSim(t, mchA, "pa_exp_2", 4_000)
		require.Equal(t, a.AuthorizeTime.Add(24*time.Hour), a.CaptureBefore)

		// Just before: nothing expires, a capture would still work.
		f.clock.Set(a.CaptureBefore.Add(-time.Microsecond))
		n, err := f.svc.ExpireAuthorizations(f.ctx, 100)
		require.NoError(t, err)
		require.Zero(t, n)

		// At capture_before: captures are refused even before the job runs.
		f.clock.Set(b.CaptureBefore)
		_, err = f.svc.Capture(f.ctx, mchA, b.ID, payment.CaptureRequest{})
		requireCode(t, err, paygate.CodeHoldExpired)
		require.Equal(t, payment.StatusAuthorized, f.get(t, mchA, b.ID).Status, "a refused capture changes nothing")

		n, err = f.svc.ExpireAuthorizations(f.ctx, 100)
		require.NoError(t, err)
		require.Equal(t, 2, n)
		for _, o := range []payment.Order{a, b} {
			got := f.get(t, mchA, o.ID)
			require.Equal(t, payment.StatusClosed, got.Status)
			require.Equal(t, payment.CloseAuthorizationExpired, got.CloseReason)
			require.Equal(t, ledger.HoldVoided, f.holdOf(t, o.ID).HoldStatus)
			require.Equal(t, []string{payment.EventAuthorized, payment.EventClosed}, eventTypes(f.events(t, o.ID)))
			_, err = f.svc.Capture(f.ctx, mchA, o.ID, payment.CaptureRequest{})
			requireCode(t, err, paygate.CodeHoldExpired)
			_, err = f.svc.Void(f.ctx, mchA, o.ID)
			requireCode(t, err, paygate.CodeHoldExpired)
		}
		require.Equal(t, before, f.balance(t, ledger.CustomerDeposit(customer, "CNY")))
		require.Equal(t, []int64{3_000}, limits.all(), "the on-us payment's limits given back; the sandbox one reserved none")
		n, err = f.svc.ExpireAuthorizations(f.ctx, 100)
		require.NoError(t, err)
		require.Zero(t, n, "each authorization expires once")

		// The ledger's own expiry got there first (the order job did not
		// run for longer than the grace): the order job still closes the
		// order, and the hold stays expired once.
		c := f.authorizedOnUs(t, mchA, "pa_exp_3", 2_000)
		f.clock.Set(c.CaptureBefore.Add(payment.AuthorizationGrace))
		k, err := f.led.ExpireHolds(f.ctx, 100)
		require.NoError(t, err)
		require.Equal(t, 1, k)
		require.Equal(t, ledger.HoldExpired, f.holdOf(t, c.ID).HoldStatus)
		n, err = f.svc.ExpireAuthorizations(f.ctx, 100)
		require.NoError(t, err)
		require.Equal(t, 1, n)
		got := f.get(t, mchA, c.ID)
		require.Equal(t, payment.StatusClosed, got.Status)
		require.Equal(t, payment.CloseAuthorizationExpired, got.CloseReason)
		require.Empty(t, f.transfers(t, "void_"+c.ID), "the ledger's expiry was the release")
		require.Equal(t, before, f.balance(t, ledger.CustomerDeposit(customer, "CNY")))
		f.ledgerOK(t)
	})
}

func TestPreauthBadInput(t *testing.T) {
	t.Parallel()
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		f := newFixture(t, db)
		o := f.authorizedSim(t, mchA, "pa_bad_1", 10_000)
		auto := f.paidSim(t, mchA, "pa_bad_2", 10_000)
		notPaid, _, err := f.svc.Create(f.ctx, mchA, manualReq("pa_bad_3", 10_000))
		require.NoError(t, err)
		other := f.authorizedSim(t, mchB, "pa_bad_4", 10_000)
		amount := func(n int64, cur paygate.Currency) payment.CaptureRequest {
			return payment.CaptureRequest{Amount: &payment.CaptureAmount{Total: n, Currency: cur}}
		}
		cases := []struct {
			name  string
			mch   string
			id    string
			req   payment.CaptureRequest
			void  bool
			code  paygate.Code
			field string
		}{
			{"zero", mchA, o.ID, amount(0, ""), false, paygate.CodeAmountNotPositive, "amount.total"},
			{"negative", mchA, o.ID, amount(-1, ""), false, paygate.CodeAmountNotPositive, "amount.total"},
			{"beyond the maximum", mchA, o.ID, amount(payment.DefaultMaxAmount+1, ""), false, paygate.CodeLimitExceeded, "amount.total"},
			{"overflowing", mchA, o.ID, amount(1<<62, ""), false, paygate.CodeLimitExceeded, "amount.total"},
			{"more than authorized", mchA, o.ID, amount(10_001, ""), false, paygate.CodeLimitExceeded, "amount.total"},
			{"unknown currency", mchA, o.ID, amount(100, "XXX"), false, paygate.CodeUnknownCurrency, "amount.currency"},
			{"other currency", mchA, o.ID, amount(100, "USD"), false, paygate.CodeCurrencyMismatch, "amount.currency"},
			{"another merchant's order", mchA, other.ID, payment.CaptureRequest{}, false, paygate.CodeNotFound, ""},
			{"another merchant's order, void", mchA, other.ID, payment.CaptureRequest{}, true, paygate.CodeNotFound, ""},
			{"unknown order", mchA, "ord_nope", payment.CaptureRequest{}, false, paygate.CodeNotFound, ""},
			{"oversized id", mchA, "ord_" + strings.Repeat("x", 100), payment.CaptureRequest{}, true, paygate.CodeNotFound, ""},
			{"automatic capture", mchA, auto.ID, payment.CaptureRequest{}, false, paygate.CodeConflict, ""},
			{"automatic capture, void", mchA, auto.ID, payment.CaptureRequest{}, true, paygate.CodeConflict, ""},
			{"not paid", mchA, notPaid.ID, payment.CaptureRequest{}, false, paygate.CodeConflict, ""},
			{"not paid, void", mchA, notPaid.ID, payment.CaptureRequest{}, true, paygate.CodeConflict, ""},
			{"suspended merchant", mchSusp, o.ID, payment.CaptureRequest{}, false, paygate.CodeForbidden, ""},
			{"unknown merchant", "1999999999", o.ID, payment.CaptureRequest{}, true, paygate.CodeNotFound, ""},
		}
		evs := len(f.events(t, ""))
		for _, c := range cases {
			var err error
			if c.void {
				_, err = f.svc.Void(f.ctx, c.mch, c.id)
			} else {
				_, err = f.svc.Capture(f.ctx, c.mch, c.id, c.req)
			}
			requireCode(t, err, c.code, c.name)
			require.Equal(t, c.field, fieldOf(err), c.name)
		}
		require.Equal(t, payment.StatusAuthorized, f.get(t, mchA, o.ID).Status, "refusals change nothing")

		// A merchant suspended after the authorization may still give the
		// money back, though it may not capture.
		f.mchs.add(paygate.Merchant{ID: mchB, Name: "B", Status: paygate.MerchantSuspended, SettlementCurrency: "CNY"})
		_, err = f.svc.Capture(f.ctx, mchB, other.ID, payment.CaptureRequest{})
		requireCode(t, err, paygate.CodeForbidden)
		voided, err := f.svc.Void(f.ctx, mchB, other.ID)
		require.NoError(t, err)
		require.Equal(t, payment.CloseVoided, voided.CloseReason)
		require.Empty(t, f.transfers(t, "cap_"+o.ID, "void_"+o.ID, "cap_"+other.ID))
		require.Len(t, f.events(t, ""), evs+1, "and notify nobody (the void did)")

		// Creating: capture_method is checked and part of idempotency.
		r := request("pa_bad_5")
		r.CaptureMethod = "LATER"
		_, _, err = f.svc.Create(f.ctx, mchA, r)
		requireCode(t, err, paygate.CodeInvalidArgument)
		require.Equal(t, "capture_method", fieldOf(err))
		r.CaptureMethod = payment.CaptureManual
		first, replay, err := f.svc.Create(f.ctx, mchA, r)
		require.NoError(t, err)
		require.False(t, replay)
		again, replay, err := f.svc.Create(f.ctx, mchA, r)
		require.NoError(t, err)
		require.True(t, replay)
		require.Equal(t, first.ID, again.ID)
		r.CaptureMethod = ""
		_, _, err = f.svc.Create(f.ctx, mchA, r)
		requireCode(t, err, paygate.CodeOutTradeNoUsed)
		require.Equal(t, "capture_method", fieldOf(err))
		// An explicit AUTOMATIC is the default: the same request.
		a := request("pa_bad_6")
		_, _, err = f.svc.Create(f.ctx, mchA, a)
		require.NoError(t, err)
		a.CaptureMethod = payment.CaptureAutomatic
		_, replay, err = f.svc.Create(f.ctx, mchA, a)
		require.NoError(t, err)
		require.True(t, replay)
	})
}

// TestPreauthRaces captures, voids and expires one authorization from many
// goroutines at once: exactly one wins, the others are told why, and the
// hold is resolved once.
func TestPreauthRaces(t *testing.T) {
	t.Parallel()
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		limits := &limitLog{}
		f := newFixture(t, db, limits.option())
		for round := range 6 {
			o := f.authorizedOnUs(t, mchA, fmt.Sprintf("pa_race_%d", round), 10_000)
			expiring := round%3 == 2
			if expiring { // the expiry job joins the race; captures are too late
				f.clock.Set(o.CaptureBefore)
			}
			var wg sync.WaitGroup
			errs := make([]error, 8)
			expired := make([]int, 8)
			for i := range errs {
				wg.Go(func() {
					switch i % 4 {
					case 0:
						_, errs[i] = f.svc.Capture(f.ctx, mchA, o.ID, payment.CaptureRequest{})
					case 1:
						_, errs[i] = f.svc.Capture(f.ctx, mchA, o.ID, payment.CaptureRequest{Amount: &payment.CaptureAmount{Total: 4_000}})
					case 2:
						_, errs[i] = f.svc.Void(f.ctx, mchA, o.ID)
					case 3:
						expired[i], errs[i] = f.svc.ExpireAuthorizations(f.ctx, 10)
					}
				})
			}
			wg.Wait()
			wins := 0
			for i, err := range errs {
				wins += expired[i]
				switch c := paygate.CodeOf(err); {
				case c == "" && i%4 != 3:
					wins++
				case c == "", c == paygate.CodeAlreadyResolved:
				case c == paygate.CodeHoldExpired && expiring:
				default:
					t.Fatalf("round %d, racer %d: %v", round, i, err)
				}
			}
			require.Equal(t, 1, wins, "round %d: one capture, void or expiry wins", round)
			got := f.get(t, mchA, o.ID)
			hold := f.holdOf(t, o.ID)
			resolved := f.transfers(t, "cap_"+o.ID, "void_"+o.ID)
			require.Len(t, resolved, 1, "round %d: the hold is resolved once", round)
			switch got.Status {
			case payment.StatusSuccess:
				require.Equal(t, ledger.HoldPosted, hold.HoldStatus)
				require.Contains(t, []int64{4_000, 10_000}, got.Amount.Captured)
			case payment.StatusClosed:
				require.Equal(t, ledger.HoldVoided, hold.HoldStatus)
				require.Contains(t, []string{payment.CloseVoided, payment.CloseAuthorizationExpired}, got.CloseReason)
				require.Equal(t, []int64{10_000}, limits.all()[len(limits.all())-1:], "round %d: limits given back", round)
			default:
				t.Fatalf("round %d: status %s", round, got.Status)
			}
			require.Len(t, f.events(t, o.ID), 2, "round %d: one outcome notified", round)
			f.clock.Set(t0)
		}
		f.ledgerOK(t)
	})
}

// TestPreauthCheckoutView: to the payer an authorized order is paid.
func TestPreauthCheckoutView(t *testing.T) {
	t.Parallel()
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		f := newFixture(t, db)
		o := f.authorizedSim(t, mchA, "pa_view_1", 10_000)
		v, err := f.svc.CheckoutView(f.ctx, o.ID)
		require.NoError(t, err)
		require.Equal(t, payment.StatusSuccess, v.Status)
		require.Equal(t, o.AuthorizeTime, v.SuccessTime)
		require.False(t, v.Payable(f.clock.Now()))
		_, err = f.svc.SandboxPay(f.ctx, mchA, o.ID, "success")
		requireCode(t, err, paygate.CodeConflict, "an authorized order is paid")
	})
}

func TestPreauthConfig(t *testing.T) {
	t.Parallel()
	for _, d := range []time.Duration{-time.Second, time.Millisecond, 1500 * time.Millisecond} {
		_, err := payment.New(payment.Config{Store: nopStore{}, Ledger: nopBooks{}, Merchants: newMerchants(),
			Clock: paygate.NewManualClock(t0), AuthorizationPeriod: d})
		requireCode(t, err, paygate.CodeInvalidArgument, d)
	}
}

type nopStore struct{ payment.Store }
type nopBooks struct{ payment.Books }
