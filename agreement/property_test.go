package agreement_test

import (
	"fmt"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"pgregory.net/rapid"

	"paygate"
	"paygate/agreement"
	"paygate/payment"
	"paygate/store"
	"paygate/store/storetest"
)

// model is what the property test expects of one agreement.
type model struct {
	id              string
	perPayment      int64
	daily           int64
	endsAt          time.Time // zero for none
	signExpire      time.Time
	status          agreement.Status // as recorded (the expiry job or a refused charge records EXPIRED)
	card            string           // the signed card's number
	signed, revoked bool             // AGREEMENT.SIGNED / AGREEMENT.REVOKED due
}

// effective is the status the agreement shows at now: past its sign window
// or its end it is EXPIRED even before that is recorded.
func (m *model) effective(now time.Time) agreement.Status {
	switch {
	case m.status == agreement.StatusPending && !now.Before(m.signExpire):
		return agreement.StatusExpired
	case m.status == agreement.StatusSigned && !m.endsAt.IsZero() && !now.Before(m.endsAt):
		return agreement.StatusExpired
	}
	return m.status
}

// modelCharge is one charge the service accepted.
type modelCharge struct {
	agreement, order string
	amount           int64
	day              paygate.Date
	status           string // SUCCESS, PROCESSING, FAILED
	ownBank          bool
}

// propCardLimit keeps a run's charges of one business day well inside the
// customer's own daily limits, so that only the agreement's limits and the
// card's funds decide a charge.
const propCardLimit = 90_000

// TestAgreementProperties runs random sequences of agreement commands —
// create (random per-payment and per-day limits, none or end dates from
// today to three days ahead), sign (an own-bank card, another bank's,
// another bank's that declines; also signing what cannot be signed),
// charge (random
// amounts, at and one fen over each limit), revoke by the merchant or the
// customer, the interbank switch's answers, the expiry job, and clock
// advances of hours and past midnight in Shanghai — on both stores. Every
// answer must be the one the model expects (status, or the refusal's
// code), and after every step: no charge was taken outside the time its
// agreement was SIGNED and before its end, none over the per-payment
// limit, no business day's charges that have not failed over the per-day
// limit, every agreement shows and stores the expected status, each one
// notified AGREEMENT.SIGNED and AGREEMENT.REVOKED (after a signature) once,
// every charge's order is where the switch left it, the card's balance
// moved by exactly the paid on-us charges, and the ledger balances.
func TestAgreementProperties(t *testing.T) {
	t.Parallel()
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		f := newFixture(t, db)
		cal := paygate.DefaultCalendar()
		wang := f.cards[cardPays].CustomerID
		payAcct := f.cards[cardPays].AccountID
		cards := []string{cardPays, cardPays, cardOther, cardDeclined}
		run := 0
		seen := map[string]int{} // outcomes, logged for a look at the coverage
		rapid.Check(t, func(rt *rapid.T) {
			run++
			// A fresh business day, far from the last run's, at 10:00 in
			// Shanghai: every run starts at the same time of day.
			local := f.clock.Now().In(cal.Location)
			f.clock.Set(time.Date(local.Year(), local.Month(), local.Day()+2, 10, 0, 0, 0, cal.Location).UTC())
			var ags []*model
			var charges []*modelCharge
			startBalance := f.available(t, payAcct)
			n := 0
			// pick draws one of the run's agreements: any, or one showing the
			// status (so that signatures and charges that pass are common).
			pick := func(rt *rapid.T, only ...agreement.Status) *model {
				in := ags
				if len(only) > 0 {
					in = nil
					for _, m := range ags {
						if m.effective(f.clock.Now()) == only[0] {
							in = append(in, m)
						}
					}
				}
				if len(in) == 0 {
					rt.Skip("no such agreement")
				}
				return in[rapid.IntRange(0, len(in)-1).Draw(rt, "agreement")]
			}
			used := func(id string, day paygate.Date) (agr, customer int64) {
				for _, c := range charges {
					if c.day == day && c.status != "FAILED" {
						customer += c.amount
						if c.agreement == id {
							agr += c.amount
						}
					}
				}
				return agr, customer
			}
			deliver := func() {
				f.clock.Advance(2 * time.Second)
				f.dispatch.RunDue()
				for _, c := range charges {
					if c.status == "PROCESSING" {
						c.status = "SUCCESS"
						if ag := find(ags, c.agreement); ag.card == cardDeclined {
							c.status = "FAILED"
						}
					}
				}
			}

			// signStep signs m with a random card (refused unless it shows PENDING).
			signStep := func(rt *rapid.T, m *model) {
				card := rapid.SampledFrom(cards).Draw(rt, "card")
				now := f.clock.Now()
				ch, err := f.svc.StartSign(f.ctx, m.id, agreement.SignCard{Number: card, Name: wangName, IDNumber: wangID, Phone: wangPhone})
				seen["sign "+string(m.effective(now))]++
				if m.effective(now) != agreement.StatusPending {
					require.Equal(rt, paygate.CodeConflict, paygate.CodeOf(err), "%v", err)
					return
				}
				require.NoError(rt, err)
				_, err = f.smsw.RunOnce(f.ctx)
				require.NoError(rt, err)
				sms, err := f.inbox.Latest(f.ctx, wangPhone)
				require.NoError(rt, err)
				a, err := f.svc.ConfirmSign(f.ctx, m.id, ch.CardID, sms.Code())
				require.NoError(rt, err)
				require.Equal(rt, agreement.StatusSigned, a.Status)
				m.status, m.card, m.signed = agreement.StatusSigned, card, true
				_, err = f.svc.ConfirmSign(f.ctx, m.id, ch.CardID, sms.Code())
				require.Equal(rt, paygate.CodeConflict, paygate.CodeOf(err), "signing twice: %v", err)
			}
			// chargeStep charges m a random amount, or one at or one fen over a
			// limit, and checks the answer against the model.
			chargeStep := func(rt *rapid.T, m *model) {
				now := f.clock.Now()
				day := cal.AccountingDate(now)
				agrUsed, cusUsed := used(m.id, day)
				amounts := []int64{rapid.Int64Range(1, 6_000).Draw(rt, "random_amount")}
				if m.perPayment > 0 {
					amounts = append(amounts, m.perPayment, m.perPayment+1)
				}
				if left := m.daily - agrUsed; m.daily > 0 && left > 0 {
					amounts = append(amounts, left, left+1)
				}
				amount := rapid.SampledFrom(amounts).Draw(rt, "amount")
				st := m.effective(now)
				var want paygate.Code
				switch {
				case st != agreement.StatusSigned:
					want = paygate.CodeConflict
				case m.perPayment > 0 && amount > m.perPayment, m.daily > 0 && agrUsed+amount > m.daily:
					want = paygate.CodeLimitExceeded
				case cusUsed+amount > propCardLimit:
					rt.Skip("past what the customer's own limits are kept clear of")
				case m.card == cardPays && amount > f.available(t, payAcct):
					want = paygate.CodeInsufficientFunds
				}
				req := charge(amount)
				c, replay, err := f.svc.Charge(f.ctx, mch, m.id, req)
				seen[fmt.Sprintf("charge %s/%s", st, want)]++
				if want != "" {
					require.Equal(rt, want, paygate.CodeOf(err), "charge %d of %s (%s): %v", amount, m.id, st, err)
					_, err := f.pay.GetByOutTradeNo(f.ctx, mch, req.OutTradeNo)
					require.Equal(rt, paygate.CodeNotFound, paygate.CodeOf(err), "a refused charge leaves no order")
					if st == agreement.StatusExpired && m.status == agreement.StatusSigned {
						m.status = agreement.StatusExpired // the refusal records it
					}
					return
				}
				require.NoError(rt, err, "charge %d of %s", amount, m.id)
				require.False(rt, replay)
				mc := &modelCharge{agreement: m.id, order: c.Order.ID, amount: amount, day: day, status: "SUCCESS", ownBank: m.card == cardPays}
				if !mc.ownBank {
					mc.status = "PROCESSING"
				}
				require.Equal(rt, mc.status, string(c.Status))
				charges = append(charges, mc)
				again, replay, err := f.svc.Charge(f.ctx, mch, m.id, req)
				require.NoError(rt, err, "a replay")
				require.True(rt, replay)
				require.Equal(rt, c.Order.ID, again.Order.ID)
			}

			rt.Repeat(map[string]func(*rapid.T){
				"create": func(rt *rapid.T) {
					n++
					now := f.clock.Now()
					req := f.request(func(r *agreement.Request) {
						r.OutAgreementNo = fmt.Sprintf("P%d-%d-%s", run, n, db.Dialect)
						if rapid.Bool().Draw(rt, "has_daily") {
							r.DailyLimit = rapid.Int64Range(500, 8_000).Draw(rt, "daily")
						}
						if rapid.Bool().Draw(rt, "has_per_payment") {
							r.PerPaymentLimit = rapid.Int64Range(100, 5_000).Draw(rt, "per_payment")
							if r.DailyLimit > 0 {
								r.PerPaymentLimit = min(r.PerPaymentLimit, r.DailyLimit)
							}
						}
						if days := rapid.IntRange(-1, 3).Draw(rt, "end_in_days"); days >= 0 {
							r.EndDate = string(cal.AccountingDate(now.AddDate(0, 0, days)))
						}
					})
					a, replay, err := f.svc.Create(f.ctx, mch, req)
					require.NoError(rt, err)
					require.False(rt, replay)
					require.Equal(rt, agreement.StatusPending, a.Status)
					m := &model{id: a.ID, perPayment: req.PerPaymentLimit, daily: req.DailyLimit, signExpire: now.Add(agreement.DefaultSignExpire),
						status: agreement.StatusPending}
					if req.EndDate != "" {
						d, err := time.ParseInLocation(time.DateOnly, req.EndDate, cal.Location)
						require.NoError(rt, err)
						m.endsAt = d.AddDate(0, 0, 1)
					}
					if !m.endsAt.IsZero() && m.endsAt.Before(m.signExpire) {
						m.signExpire = m.endsAt // never signable past its end
					}
					require.True(rt, m.signExpire.Equal(a.SignExpireTime), "signable until %v, not %v", m.signExpire, a.SignExpireTime)
					ags = append(ags, m)
				},
				"sign": func(rt *rapid.T) { signStep(rt, pick(rt)) },
				"sign a pending one": func(rt *rapid.T) {
					signStep(rt, pick(rt, agreement.StatusPending))
				},
				"charge": func(rt *rapid.T) { chargeStep(rt, pick(rt)) },
				"charge a signed one": func(rt *rapid.T) {
					chargeStep(rt, pick(rt, agreement.StatusSigned))
				},
				"charge a signed one again": func(rt *rapid.T) {
					chargeStep(rt, pick(rt, agreement.StatusSigned))
				},
				"revoke": func(rt *rapid.T) {
					m := pick(rt)
					byCustomer := rapid.Bool().Draw(rt, "by_customer")
					st := m.effective(f.clock.Now())
					var a agreement.Agreement
					var err error
					if byCustomer {
						a, err = f.svc.RevokeByCustomer(f.ctx, wang, m.id)
					} else {
						a, err = f.svc.Revoke(f.ctx, mch, m.id)
					}
					switch {
					case byCustomer && m.card == "":
						require.Equal(rt, paygate.CodeNotFound, paygate.CodeOf(err), "never signed: not the customer's: %v", err)
					case st == agreement.StatusExpired:
						require.Equal(rt, paygate.CodeConflict, paygate.CodeOf(err), "%v", err)
					default:
						require.NoError(rt, err)
						require.Equal(rt, agreement.StatusRevoked, a.Status)
						if st == agreement.StatusSigned {
							m.revoked = true
						}
						m.status = agreement.StatusRevoked
					}
				},
				"the switch answers": func(rt *rapid.T) { deliver() },
				"hours pass": func(rt *rapid.T) {
					f.clock.Advance(time.Duration(rapid.IntRange(1, 8).Draw(rt, "hours")) * time.Hour)
				},
				"past midnight": func(rt *rapid.T) {
					local := f.clock.Now().In(cal.Location)
					midnight := time.Date(local.Year(), local.Month(), local.Day()+1, 0, 0, 0, 0, cal.Location)
					f.clock.Set(midnight.Add(time.Duration(rapid.IntRange(0, 90).Draw(rt, "seconds")) * time.Second).UTC())
				},
				"expiry job": func(rt *rapid.T) {
					for {
						k, err := f.svc.ExpireDue(f.ctx, 100)
						require.NoError(rt, err)
						if k == 0 {
							break
						}
					}
					now := f.clock.Now()
					for _, m := range ags {
						if m.effective(now) == agreement.StatusExpired {
							m.status = agreement.StatusExpired
						}
					}
				},
				"": func(rt *rapid.T) {
					checkAgreements(rt, f, ags, charges, payAcct, startBalance, run <= ledgerEveryStepRuns)
				},
			})
			// Let the switch answer what is in flight, so the next run's
			// balance and day start clean.
			deliver()
			checkAgreements(rt, f, ags, charges, payAcct, startBalance, true)
			for _, c := range charges {
				seen["charge ended "+c.status]++
			}
		})
		t.Logf("outcomes: %v", seen)
	})
}

// ledgerEveryStepRuns is how many of the first runs check the whole
// ledger (db.LedgerCheck reads every transfer of the shared database)
// after every step; later runs check it at their end, so the test's cost
// stays linear.
const ledgerEveryStepRuns = 15

func find(ags []*model, id string) *model {
	for _, m := range ags {
		if m.id == id {
			return m
		}
	}
	panic("no agreement " + id)
}

// checkAgreements checks the invariants of the run's agreements and
// charges, and the whole ledger when ledgerToo is set.
func checkAgreements(rt *rapid.T, f *fixture, ags []*model, charges []*modelCharge, payAcct string, startBalance int64, ledgerToo bool) {
	now := f.clock.Now()
	count := func(q string, args ...any) int {
		var n int
		require.NoError(rt, f.db.SQL.QueryRowContext(f.ctx, q, args...).Scan(&n))
		return n
	}
	for _, m := range ags {
		got, err := f.svc.Get(f.ctx, mch, m.id)
		require.NoError(rt, err)
		require.Equal(rt, m.effective(now), got.Status, "%s shows", m.id)
		rec, err := f.db.Agreements().MerchantAgreement(f.ctx, m.id)
		require.NoError(rt, err)
		require.Equal(rt, m.status, rec.Status, "%s is stored", m.id)
		require.True(rt, m.endsAt.Equal(rec.EndsAt), "%s ends at %v, stored %v", m.id, m.endsAt, rec.EndsAt)

		// Charges only while SIGNED and before the end, within the
		// per-payment limit; each business day within the daily limit.
		require.Zero(rt, count(`SELECT count(*) FROM merchant_agreement_charges c JOIN merchant_agreements a ON a.id = c.agreement_id
			WHERE a.id = $1 AND (a.signed_at = 0 OR c.created_at < a.signed_at OR (a.revoked_at > 0 AND c.created_at > a.revoked_at)
			OR (a.ends_at > 0 AND c.created_at >= a.ends_at) OR (a.expired_at > 0 AND c.created_at > a.expired_at)
			OR (a.per_payment_limit > 0 AND c.amount > a.per_payment_limit))`, m.id), "%s: a charge outside its terms", m.id)
		require.Zero(rt, count(`SELECT count(*) FROM (SELECT c.accounting_date FROM merchant_agreement_charges c
			JOIN merchant_agreements a ON a.id = c.agreement_id
			WHERE a.id = $1 AND a.daily_limit > 0
			AND NOT EXISTS (SELECT 1 FROM payment_attempts p WHERE p.order_id = c.order_id AND p.status = 'FAILED')
			GROUP BY c.accounting_date, a.daily_limit HAVING SUM(c.amount) > a.daily_limit) x`, m.id), "%s: a day over its limit", m.id)

		// Each status change notified once.
		events := func(typ string) int {
			return count(`SELECT count(*) FROM notify_events WHERE event_type = $1 AND payload LIKE '%' || $2 || '%'`, typ, m.id)
		}
		require.Equal(rt, b2i(m.signed), events(agreement.EventSigned), "%s: AGREEMENT.SIGNED", m.id)
		require.Equal(rt, b2i(m.revoked), events(agreement.EventRevoked), "%s: AGREEMENT.REVOKED", m.id)
	}

	// Every accepted charge has its order where the model has it; the card
	// paid exactly the on-us charges.
	var paidOnUs int64
	for _, c := range charges {
		o, err := f.pay.Get(f.ctx, mch, c.order)
		require.NoError(rt, err)
		require.Equal(rt, c.amount, o.Amount.Total)
		switch c.status {
		case "SUCCESS":
			require.Equal(rt, payment.StatusSuccess, o.Status, "order %s", c.order)
		case "FAILED":
			require.Equal(rt, payment.StatusPayError, o.Status, "order %s", c.order)
		default:
			require.Equal(rt, payment.StatusNotPay, o.Status, "order %s (%s)", c.order, c.status)
		}
		require.Equal(rt, b2i(c.status == "SUCCESS"), count(`SELECT count(*) FROM notify_events WHERE event_type = $1 AND payload LIKE '%' || $2 || '%'`,
			payment.EventSuccess, c.order), "order %s: TRANSACTION.SUCCESS", c.order)
		require.Equal(rt, b2i(c.status == "FAILED"), count(`SELECT count(*) FROM payment_attempts WHERE order_id = $1 AND status = 'FAILED'`, c.order))
		if c.ownBank {
			paidOnUs += c.amount
		}
	}
	as, err := f.led.LookupAccounts(f.ctx, []string{payAcct})
	require.NoError(rt, err)
	require.Equal(rt, startBalance-paidOnUs, as[0].Available(as[0].Normal), "the card paid the on-us charges, nothing else")
	if ledgerToo {
		problems, err := f.db.LedgerCheck(f.ctx)
		require.NoError(rt, err)
		require.Empty(rt, problems)
	}
}

func b2i(b bool) int {
	if b {
		return 1
	}
	return 0
}

// TestSignWindowEndsWithEndDate: an agreement whose end date comes before
// the usual sign window closes can be signed only until its end (found by
// TestAgreementProperties: it was signable, and notified SIGNED, after its
// last day); the expiry job then records it.
func TestSignWindowEndsWithEndDate(t *testing.T) {
	t.Parallel()
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		f := newFixture(t, db)
		a := f.create(t, func(r *agreement.Request) { r.EndDate = "2026-11-22" }) // t0 is 10:00 that day in Shanghai
		ends := time.Date(2026, 11, 22, 16, 0, 0, 0, time.UTC)
		require.Equal(t, ends, a.SignExpireTime)
		f.clock.Set(ends)
		_, err := f.svc.StartSign(f.ctx, a.ID, agreement.SignCard{Number: cardPays, Name: wangName, IDNumber: wangID, Phone: wangPhone})
		requireCode(t, paygate.CodeConflict, err)
		got, err := f.svc.Get(f.ctx, mch, a.ID)
		require.NoError(t, err)
		require.Equal(t, agreement.StatusExpired, got.Status)
		n, err := f.svc.ExpireDue(f.ctx, 10)
		require.NoError(t, err)
		require.Equal(t, 1, n)
		require.Zero(t, f.events(t, agreement.EventSigned, a.ID))
	})
}
