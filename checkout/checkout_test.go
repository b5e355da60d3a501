package checkout_test

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"paygate"
	"paygate/checkout"
	"paygate/customer"
	"paygate/ledger"
	"paygate/otp"
	"paygate/payment"
	"paygate/store"
	"paygate/store/storetest"
)

func TestQuickPayOwnCard(t *testing.T) {
	t.Parallel()
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		f := newFixture(t, db)
		o := f.order(t, 12_345)
		card := f.cards[cardPays]
		before := f.available(t, card.AccountID)

		ch, err := f.co.StartQuickPay(f.ctx, o.ID, withCard(cardPays))
		require.NoError(t, err)
		require.Equal(t, card.ID, ch.CardID)
		require.Equal(t, "628888******0013", ch.Card.String())
		require.Equal(t, "138****0001", ch.PhoneMasked)
		require.True(t, ch.OwnBank)

		res, err := f.co.ConfirmQuickPay(f.ctx, o.ID, ch.CardID, f.code(t, wangPhone), false)
		require.NoError(t, err)
		require.Equal(t, checkout.Paid, res.Outcome)
		require.Equal(t, payment.StatusSuccess, f.status(t, o.ID))
		require.Equal(t, before-12_345, f.available(t, card.AccountID))
		require.Equal(t, int64(12_345-74), f.available(t, ledger.MerchantPending(mch, "CNY").ID)) // fee 60 bps of 123.45 = 0.74
		u := f.usage(t, card.CustomerID, card.ID, customer.MethodQuickPay)
		require.Equal(t, customer.Usage{Customer: 12_345, Method: 12_345, Card: 12_345}, u)
		f.balanced(t)

		// The same code again: the order is paid; nothing moves twice.
		_, err = f.co.ConfirmQuickPay(f.ctx, o.ID, ch.CardID, "000000", false)
		requireCode(t, paygate.CodeConflict, err)
		require.Equal(t, before-12_345, f.available(t, card.AccountID))
	})
}

func TestQuickPayRefusals(t *testing.T) {
	t.Parallel()
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		f := newFixture(t, db)
		o := f.order(t, 100)
		cases := []struct {
			name  string
			card  checkout.QuickPayCard
			code  paygate.Code
			field string
		}{
			{"luhn", withCard("6288880000000012"), paygate.CodeInvalidArgument, "card_number"},
			{"letters", withCard("6288abcd00000013"), paygate.CodeInvalidArgument, "card_number"},
			{"unknown card", withCard("6288880000000104"), paygate.CodeNotFound, "card_number"},
			{"frozen", withCard(cardFrozen), paygate.CodeForbidden, "card_number"},
			{"wrong name", checkout.QuickPayCard{Number: cardPays, Name: "王大明", IDNumber: wangID, Phone: wangPhone}, paygate.CodeInvalidArgument, "holder"},
			{"wrong id", checkout.QuickPayCard{Number: cardPays, Name: wangName, IDNumber: "310104198511204567", Phone: wangPhone}, paygate.CodeInvalidArgument, "holder"},
			{"wrong phone", checkout.QuickPayCard{Number: cardPays, Name: wangName, IDNumber: wangID, Phone: "13800000002"}, paygate.CodeInvalidArgument, "holder"},
			{"another's card", checkout.QuickPayCard{Number: liCard, Name: wangName, IDNumber: wangID, Phone: wangPhone}, paygate.CodeInvalidArgument, "holder"},
		}
		for _, c := range cases {
			_, err := f.co.StartQuickPay(f.ctx, o.ID, c.card)
			requireCode(t, c.code, err)
			var pe *paygate.Error
			require.ErrorAs(t, err, &pe)
			require.Equal(t, c.field, pe.Field, c.name)
		}
		// No code was sent for any of them.
		_, err := f.inbox.Latest(f.ctx, wangPhone)
		requireCode(t, paygate.CodeNotFound, err)
		require.Equal(t, payment.StatusNotPay, f.status(t, o.ID))
	})
}

func TestQuickPayCodes(t *testing.T) {
	t.Parallel()
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		f := newFixture(t, db)
		card := f.cards[cardPays]

		// Wrong codes count tries; the fifth wrong one uses them up.
		o := f.order(t, 100)
		ch, err := f.co.StartQuickPay(f.ctx, o.ID, withCard(cardPays))
		require.NoError(t, err)
		good := f.code(t, wangPhone)
		wrong := "000000"
		if good == wrong {
			wrong = "111111"
		}
		for i := 0; i < 4; i++ {
			_, err := f.co.ConfirmQuickPay(f.ctx, o.ID, ch.CardID, wrong, false)
			requireCode(t, paygate.CodeUnauthenticated, err)
			require.ErrorIs(t, err, otp.ErrWrongCode)
		}
		_, err = f.co.ConfirmQuickPay(f.ctx, o.ID, ch.CardID, wrong, false)
		requireCode(t, paygate.CodeLimitExceeded, err)
		_, err = f.co.ConfirmQuickPay(f.ctx, o.ID, ch.CardID, good, false)
		requireCode(t, paygate.CodeLimitExceeded, err)
		require.ErrorIs(t, err, otp.ErrTooManyTries)

		// Expired: a new code, then 5 minutes pass.
		ch, err = f.co.StartQuickPay(f.ctx, o.ID, withCard(cardPays))
		require.NoError(t, err)
		good = f.code(t, wangPhone)
		f.clock.Advance(5 * time.Minute)
		_, err = f.co.ConfirmQuickPay(f.ctx, o.ID, ch.CardID, good, false)
		require.ErrorIs(t, err, otp.ErrExpired)

		// A code for one order does not pay another, nor with another card.
		o2 := f.order(t, 100)
		ch, err = f.co.StartQuickPay(f.ctx, o.ID, withCard(cardPays))
		require.NoError(t, err)
		good = f.code(t, wangPhone)
		_, err = f.co.ConfirmQuickPay(f.ctx, o2.ID, ch.CardID, good, false)
		require.ErrorIs(t, err, otp.ErrNoCode)
		_, err = f.co.ConfirmQuickPay(f.ctx, o.ID, f.cards[cardCorp].ID, good, false)
		require.ErrorIs(t, err, otp.ErrNoCode)

		require.Equal(t, payment.StatusNotPay, f.status(t, o.ID))
		require.Equal(t, payment.StatusNotPay, f.status(t, o2.ID))
		require.Equal(t, customer.Usage{}, f.usage(t, card.CustomerID, card.ID, customer.MethodQuickPay))

		// The right code pays once, however often it is sent.
		var wg sync.WaitGroup
		results := make([]error, 8)
		for i := range results {
			wg.Go(func() { _, results[i] = f.co.ConfirmQuickPay(f.ctx, o.ID, ch.CardID, good, false) })
		}
		wg.Wait()
		paid := 0
		for _, err := range results {
			if err == nil {
				paid++
				continue
			}
			// Each submission counts a try, so late ones may find the
			// tries used up; none pays twice.
			require.Contains(t, []paygate.Code{paygate.CodeConflict, paygate.CodeLimitExceeded}, paygate.CodeOf(err), "%v", err)
		}
		require.Equal(t, 1, paid)
		require.Equal(t, customer.Usage{Customer: 100, Method: 100, Card: 100}, f.usage(t, card.CustomerID, card.ID, customer.MethodQuickPay))
		f.balanced(t)
	})
}

func TestBoundQuickPay(t *testing.T) {
	t.Parallel()
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		f := newFixture(t, db)
		o := f.order(t, 2_000)
		ch, err := f.co.StartBoundQuickPay(f.ctx, o.ID, wangPhone, "0013")
		require.NoError(t, err)
		require.True(t, ch.Bound)
		res, err := f.co.ConfirmQuickPay(f.ctx, o.ID, ch.CardID, f.code(t, wangPhone), false)
		require.NoError(t, err)
		require.Equal(t, checkout.Paid, res.Outcome)

		o2 := f.order(t, 2_000)
		// The corporate card is not bound; 李四 (by username) has no phone
		// login; an unknown phone; malformed input.
		for _, c := range []struct {
			phone, last4 string
			code         paygate.Code
		}{
			{wangPhone, "0047", paygate.CodeNotFound},
			{"13800000002", "0054", paygate.CodeNotFound},
			{"13900000009", "0013", paygate.CodeNotFound},
			{"12345", "0013", paygate.CodeInvalidArgument},
			{wangPhone, "13", paygate.CodeInvalidArgument},
		} {
			_, err := f.co.StartBoundQuickPay(f.ctx, o2.ID, c.phone, c.last4)
			requireCode(t, c.code, err)
		}

		// Binding the corporate card with a first quick pay makes it
		// usable by its last four digits.
		ch, err = f.co.StartQuickPay(f.ctx, o2.ID, withCard(cardCorp))
		require.NoError(t, err)
		require.False(t, ch.Bound)
		res, err = f.co.ConfirmQuickPay(f.ctx, o2.ID, ch.CardID, f.code(t, wangPhone), true)
		require.NoError(t, err)
		require.True(t, res.Bound)
		o3 := f.order(t, 2_000)
		ch, err = f.co.StartBoundQuickPay(f.ctx, o3.ID, wangPhone, "0047")
		require.NoError(t, err)
		require.Equal(t, f.cards[cardCorp].ID, ch.CardID)
	})
}

func TestCardPay(t *testing.T) {
	t.Parallel()
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		f := newFixture(t, db)
		card := f.cards[cardPays]
		before := f.available(t, card.AccountID)
		o := f.order(t, 50_000) // exactly card-number pay's single limit
		res, err := f.co.CardPay(f.ctx, o.ID, cardPays, wangPIN)
		require.NoError(t, err)
		require.Equal(t, checkout.Paid, res.Outcome)
		require.Equal(t, before-50_000, f.available(t, card.AccountID))

		over := f.order(t, 50_001)
		_, err = f.co.CardPay(f.ctx, over.ID, cardPays, wangPIN)
		requireCode(t, paygate.CodeLimitExceeded, err)
		var le *customer.LimitError
		require.ErrorAs(t, err, &le)
		require.Equal(t, customer.LimitMethodSingle, le.Limit)

		o2 := f.order(t, 100)
		for _, c := range []struct {
			name, number, pin string
			code              paygate.Code
		}{
			{"other bank", cardOther, wangPIN, paygate.CodeInvalidArgument},
			{"luhn", "6288880000000014", wangPIN, paygate.CodeInvalidArgument},
			{"unknown", "6288880000000104", wangPIN, paygate.CodeNotFound},
			{"malformed pin", cardPays, "12ab", paygate.CodeUnauthenticated},
			{"no pay password", "6288880000000054", "000000", paygate.CodeUnauthenticated}, // 李四's card, wrong PIN
			{"poor", cardPoor, wangPIN, paygate.CodeInsufficientFunds},
			{"frozen", cardFrozen, wangPIN, paygate.CodeForbidden},
		} {
			_, err := f.co.CardPay(f.ctx, o2.ID, c.number, c.pin)
			requireCode(t, c.code, err)
		}
		require.Equal(t, payment.StatusNotPay, f.status(t, o2.ID))
		// The refusals reserved nothing.
		u := f.usage(t, card.CustomerID, f.cards[cardPoor].ID, customer.MethodCardNumber)
		require.Equal(t, int64(0), u.Card)
		require.Equal(t, int64(50_000), u.Method)
		f.balanced(t)
	})
}

func TestCardPayLockout(t *testing.T) {
	t.Parallel()
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		f := newFixture(t, db)
		o := f.order(t, 100)
		for i := 0; i < 4; i++ {
			_, err := f.co.CardPay(f.ctx, o.ID, cardPays, "000000")
			requireCode(t, paygate.CodeUnauthenticated, err)
		}
		_, err := f.co.CardPay(f.ctx, o.ID, cardPays, "000000") // the fifth locks
		requireCode(t, paygate.CodeForbidden, err)
		_, err = f.co.CardPay(f.ctx, o.ID, cardPays, wangPIN)
		requireCode(t, paygate.CodeForbidden, err)
		var le *customer.LockedError
		require.ErrorAs(t, err, &le)
		// Balance pay shares the payment password and its lock-out.
		_, err = f.co.BalancePay(f.ctx, o.ID, f.seeded[wangPhone].ID, wangPIN)
		requireCode(t, paygate.CodeForbidden, err)
		f.clock.Advance(3 * time.Hour)
		o = f.order(t, 100) // the first expired meanwhile
		_, err = f.co.CardPay(f.ctx, o.ID, cardPays, wangPIN)
		require.NoError(t, err)
	})
}

func TestBalancePay(t *testing.T) {
	t.Parallel()
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		f := newFixture(t, db)
		wang := f.seeded[wangPhone]
		acct := f.cus.BalanceAccount(wang.ID)
		o := f.order(t, 250_000)
		res, err := f.co.BalancePay(f.ctx, o.ID, wang.ID, wangPIN)
		require.NoError(t, err)
		require.Equal(t, checkout.Paid, res.Outcome)
		require.Equal(t, int64(wangBalance-250_000), f.available(t, acct))

		big := f.order(t, 800_000) // more than the balance left (7,500.00)
		_, err = f.co.BalancePay(f.ctx, big.ID, wang.ID, wangPIN)
		requireCode(t, paygate.CodeLimitExceeded, err) // 2,500 + 8,000 > 5,000 a day
		// A customer without a payment password cannot pay.
		_, err = f.co.BalancePay(f.ctx, big.ID, f.seeded[noPINPhone].ID, "123456")
		requireCode(t, paygate.CodeConflict, err)
		require.Equal(t, payment.StatusNotPay, f.status(t, big.ID))
		f.balanced(t)
	})
}

func TestOtherBankQuickPay(t *testing.T) {
	t.Parallel()
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		f := newFixture(t, db)
		card := f.cards[cardOther]
		o := f.order(t, 30_000)
		ch, err := f.co.StartQuickPay(f.ctx, o.ID, withCard(cardOther))
		require.NoError(t, err)
		require.False(t, ch.OwnBank)
		res, err := f.co.ConfirmQuickPay(f.ctx, o.ID, ch.CardID, f.code(t, wangPhone), false)
		require.NoError(t, err)
		require.Equal(t, checkout.Processing, res.Outcome)
		require.Equal(t, payment.StatusNotPay, f.status(t, o.ID))
		require.Equal(t, int64(30_000), f.usage(t, card.CustomerID, card.ID, customer.MethodQuickPay).Card)

		// In flight: no second payment of the order by any method.
		_, err = f.co.CardPay(f.ctx, o.ID, cardPays, wangPIN)
		requireCode(t, paygate.CodeConflict, err)
		_, err = f.co.StartQuickPay(f.ctx, o.ID, withCard(cardPays))
		requireCode(t, paygate.CodeConflict, err)

		f.clock.Advance(time.Second)
		require.Equal(t, 1, f.dispatch.RunDue())
		require.Equal(t, payment.StatusSuccess, f.status(t, o.ID))
		require.Equal(t, int64(-30_000), -f.available(t, ledger.ChannelClearing("interbank", "CNY").ID))
		f.balanced(t)
	})
}

func TestOtherBankDeclines(t *testing.T) {
	t.Parallel()
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		f := newFixture(t, db)
		card := f.cards[customer.SandboxDeclinedCard]
		o := f.order(t, 30_000)
		ch, err := f.co.StartQuickPay(f.ctx, o.ID, withCard(customer.SandboxDeclinedCard))
		require.NoError(t, err)
		res, err := f.co.ConfirmQuickPay(f.ctx, o.ID, ch.CardID, f.code(t, wangPhone), true)
		require.NoError(t, err)
		require.Equal(t, checkout.Processing, res.Outcome)
		require.Equal(t, int64(30_000), f.usage(t, card.CustomerID, card.ID, customer.MethodQuickPay).Card)
		f.clock.Advance(time.Second)
		require.Equal(t, 1, f.dispatch.RunDue())
		require.Equal(t, payment.StatusPayError, f.status(t, o.ID))
		// The limits are given back, and the order can be paid another way.
		require.Equal(t, customer.Usage{}, f.usage(t, card.CustomerID, card.ID, customer.MethodQuickPay))
		_, err = f.co.CardPay(f.ctx, o.ID, cardPays, wangPIN)
		require.NoError(t, err)
		f.balanced(t)
	})
}

func TestFailedPaymentGivesLimitsBack(t *testing.T) {
	t.Parallel()
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		f := newFixture(t, db)
		card := f.cards[cardOther]
		o := f.order(t, 30_000)
		payer := payment.Payer{Method: string(customer.MethodQuickPay), CustomerID: card.CustomerID, CardID: card.ID}
		// The interbank simulator is told to fail the payment.
		at, err := f.pay.PayThrough(f.ctx, o.ID, "interbank", payer, "fail", func(ctx context.Context, tx payment.Tx, o payment.Order) (paygate.Date, error) {
			_, err := f.cus.Reserve(ctx, tx.(customer.Tx), card.CustomerID, card.ID, customer.MethodQuickPay, o.Amount.Total, day0)
			return day0, err
		})
		require.NoError(t, err)
		require.Equal(t, day0, at.LimitDay)
		require.Equal(t, int64(30_000), f.usage(t, card.CustomerID, card.ID, customer.MethodQuickPay).Card)
		f.clock.Advance(time.Second)
		require.Equal(t, 1, f.dispatch.RunDue())
		require.Equal(t, payment.StatusPayError, f.status(t, o.ID))
		require.Equal(t, customer.Usage{}, f.usage(t, card.CustomerID, card.ID, customer.MethodQuickPay))
	})
}

func TestOrderStates(t *testing.T) {
	t.Parallel()
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		f := newFixture(t, db)
		expired := f.order(t, 100, func(r *payment.CreateRequest) { r.TimeExpire = t0.Add(time.Minute) })
		closed := f.order(t, 100)
		_, err := f.pay.Close(f.ctx, mch, closed.ID)
		require.NoError(t, err)
		onlyBalance := f.order(t, 100, func(r *payment.CreateRequest) { r.PaymentMethods = []string{payment.MethodBalance} })
		usd := f.order(t, 100, func(r *payment.CreateRequest) { r.Amount.Currency = "USD" })
		f.clock.Advance(time.Minute)

		_, err = f.co.CardPay(f.ctx, expired.ID, cardPays, wangPIN)
		requireCode(t, paygate.CodeConflict, err)
		require.Contains(t, err.Error(), "expired")
		_, err = f.co.StartQuickPay(f.ctx, closed.ID, withCard(cardPays))
		requireCode(t, paygate.CodeConflict, err)
		require.Contains(t, err.Error(), "closed")
		_, err = f.co.CardPay(f.ctx, onlyBalance.ID, cardPays, wangPIN)
		requireCode(t, paygate.CodeForbidden, err)
		_, err = f.co.CardPay(f.ctx, usd.ID, cardPays, wangPIN)
		requireCode(t, paygate.CodeCurrencyMismatch, err)
		_, err = f.co.CardPay(f.ctx, "ord_nope", cardPays, wangPIN)
		requireCode(t, paygate.CodeNotFound, err)
		_, err = f.co.OnlineBanking(f.ctx, onlyBalance.ID)
		requireCode(t, paygate.CodeForbidden, err)
	})
}

// TestDailyLimitUnderConcurrency pays 50 orders at once with one card by
// quick pay (5,000.00 a day for the method and for the customer): exactly
// the limit's worth succeeds, and the rest are refused with nothing moved.
func TestDailyLimitUnderConcurrency(t *testing.T) {
	t.Parallel()
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		f := newFixture(t, db)
		card := f.cards[cardPays]
		before := f.available(t, card.AccountID)
		type ready struct {
			order, card, code string
		}
		var rs []ready
		for range 50 {
			o := f.order(t, 15_000) // 150.00: 33 fit in 5,000.00
			ch, err := f.co.StartBoundQuickPay(f.ctx, o.ID, wangPhone, "0013")
			require.NoError(t, err)
			rs = append(rs, ready{o.ID, ch.CardID, f.code(t, wangPhone)})
		}
		var wg sync.WaitGroup
		errs := make([]error, len(rs))
		for i, r := range rs {
			wg.Go(func() { _, errs[i] = f.co.ConfirmQuickPay(f.ctx, r.order, r.card, r.code, false) })
		}
		wg.Wait()
		paid := 0
		for _, err := range errs {
			if err == nil {
				paid++
				continue
			}
			requireCode(t, paygate.CodeLimitExceeded, err)
		}
		require.Equal(t, 33, paid)
		require.Equal(t, before-33*15_000, f.available(t, card.AccountID))
		u := f.usage(t, card.CustomerID, card.ID, customer.MethodQuickPay)
		require.Equal(t, customer.Usage{Customer: 495_000, Method: 495_000, Card: 495_000}, u)
		f.balanced(t)
	})
}
