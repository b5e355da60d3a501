package agreement_test

import (
	"strings"
	"sync"
	"testing"

	"github.com/stretchr/testify/require"

	"paygate"
	"paygate/agreement"
	"paygate/customer"
	"paygate/payment"
	"paygate/store"
	"paygate/store/storetest"
)

// TestCreate: a valid request creates a PENDING agreement with its sign
// URL; the same number with the same request replays it, with another
// request is ID_CONFLICT naming the field; bad input is refused with a
// clear code and creates nothing.
func TestCreate(t *testing.T) {
	t.Parallel()
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		f := newFixture(t, db)
		req := f.request(func(r *agreement.Request) {
			r.PerPaymentLimit, r.DailyLimit, r.EndDate = 10_000, 30_000, "2027-11-22"
		})
		a, replay, err := f.svc.Create(f.ctx, mch, req)
		require.NoError(t, err)
		require.False(t, replay)
		require.True(t, strings.HasPrefix(a.ID, agreement.PrefixAgreement))
		require.Equal(t, agreement.StatusPending, a.Status)
		require.Equal(t, "https://pay.example/agreements/"+a.ID, a.SignURL)
		require.Equal(t, paygate.Currency("CNY"), a.Currency)
		require.Equal(t, t0.Add(agreement.DefaultSignExpire), a.SignExpireTime)
		require.Equal(t, paygate.Date("2027-11-22"), a.EndDate)

		again, replay, err := f.svc.Create(f.ctx, mch, req)
		require.NoError(t, err)
		require.True(t, replay)
		require.Equal(t, a.ID, again.ID)
		diff := req
		diff.DailyLimit++
		_, _, err = f.svc.Create(f.ctx, mch, diff)
		requireField(t, paygate.CodeIDConflict, "daily_limit", err)
		got, err := f.svc.GetByOutAgreementNo(f.ctx, mch, req.OutAgreementNo)
		require.NoError(t, err)
		require.Equal(t, a.ID, got.ID)
		_, err = f.svc.Get(f.ctx, mchOther, a.ID)
		requireCode(t, paygate.CodeNotFound, err, "another merchant's agreement is not found")

		cases := []struct {
			name  string
			mod   func(*agreement.Request)
			code  paygate.Code
			field string
		}{
			{"short number", func(r *agreement.Request) { r.OutAgreementNo = "A1" }, paygate.CodeInvalidArgument, "out_agreement_no"},
			{"number charset", func(r *agreement.Request) { r.OutAgreementNo = "AGR 0001" }, paygate.CodeInvalidArgument, "out_agreement_no"},
			{"no plan", func(r *agreement.Request) { r.Plan = "  " }, paygate.CodeInvalidArgument, "plan"},
			{"long plan", func(r *agreement.Request) { r.Plan = strings.Repeat("茶", 65) }, paygate.CodeInvalidArgument, "plan"},
			{"control character", func(r *agreement.Request) { r.Description = "a\x00b" }, paygate.CodeInvalidArgument, "description"},
			{"unknown currency", func(r *agreement.Request) { r.Currency = "XYZ" }, paygate.CodeUnknownCurrency, "currency"},
			{"other currency", func(r *agreement.Request) { r.Currency = "USD" }, paygate.CodeCurrencyMismatch, "currency"},
			{"negative per payment", func(r *agreement.Request) { r.PerPaymentLimit = -1 }, paygate.CodeAmountNotPositive, "per_payment_limit"},
			{"negative daily", func(r *agreement.Request) { r.DailyLimit = -5 }, paygate.CodeAmountNotPositive, "daily_limit"},
			{"huge daily", func(r *agreement.Request) { r.DailyLimit = 1 << 62 }, paygate.CodeLimitExceeded, "daily_limit"},
			{"per payment over daily", func(r *agreement.Request) { r.PerPaymentLimit, r.DailyLimit = 2, 1 }, paygate.CodeInvalidArgument, "per_payment_limit"},
			{"bad end date", func(r *agreement.Request) { r.EndDate = "2027-02-30" }, paygate.CodeInvalidArgument, "end_date"},
			{"end date format", func(r *agreement.Request) { r.EndDate = "22/11/2027" }, paygate.CodeInvalidArgument, "end_date"},
			{"end date past", func(r *agreement.Request) { r.EndDate = "2026-11-21" }, paygate.CodeInvalidArgument, "end_date"},
			{"end date far", func(r *agreement.Request) { r.EndDate = "2040-01-01" }, paygate.CodeInvalidArgument, "end_date"},
			{"no notify url", func(r *agreement.Request) { r.NotifyURL = "" }, paygate.CodeInvalidArgument, "notify_url"},
			{"bad return url", func(r *agreement.Request) { r.ReturnURL = "javascript:alert(1)" }, paygate.CodeInvalidArgument, "return_url"},
		}
		for _, c := range cases {
			t.Run(c.name, func(t *testing.T) {
				req := f.request(c.mod)
				_, _, err := f.svc.Create(f.ctx, mch, req)
				requireField(t, c.code, c.field, err)
				_, err = f.svc.GetByOutAgreementNo(f.ctx, mch, req.OutAgreementNo)
				requireCode(t, paygate.CodeNotFound, err, "nothing was created")
			})
		}
		today := f.create(t, func(r *agreement.Request) { r.EndDate = "2026-11-22" })
		require.Equal(t, agreement.StatusPending, today.Status, "an end date of today is allowed")
	})
}

// TestCreateRace: concurrent identical creates make one agreement;
// concurrent different creates with one number make one and refuse the
// rest with ID_CONFLICT.
func TestCreateRace(t *testing.T) {
	t.Parallel()
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		f := newFixture(t, db)
		req := f.request()
		const n = 8
		ids := make([]string, n)
		errs := make([]error, n)
		var wg sync.WaitGroup
		for i := range n {
			wg.Go(func() {
				r := req
				if i%2 == 1 {
					r.Plan = "Another plan"
				}
				a, _, err := f.svc.Create(f.ctx, mch, r)
				ids[i], errs[i] = a.ID, err
			})
		}
		wg.Wait()
		winner := ""
		for i := range n {
			if errs[i] != nil {
				requireCode(t, paygate.CodeIDConflict, errs[i])
				continue
			}
			if winner == "" {
				winner = ids[i]
			}
			require.Equal(t, winner, ids[i])
		}
		require.NotEmpty(t, winner)
		require.Equal(t, 1, f.count(t, `SELECT count(*) FROM merchant_agreements WHERE out_agreement_no = $1`, req.OutAgreementNo))
	})
}

// TestSignAndCharge: the customer signs with an own-bank card (wrong
// details and codes refused with clear errors), AGREEMENT.SIGNED is
// queued with the masked card only; a charge pays at once from the card
// with TRANSACTION.SUCCESS; a replay returns the same order; a different
// request with the number is OUT_TRADE_NO_USED.
func TestSignAndCharge(t *testing.T) {
	t.Parallel()
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		f := newFixture(t, db)
		a := f.create(t)
		holder := agreement.SignCard{Name: wangName, IDNumber: wangID, Phone: wangPhone}
		bad := []struct {
			name  string
			card  agreement.SignCard
			code  paygate.Code
			field string
		}{
			{"luhn", agreement.SignCard{Number: "6288880000000014", Name: wangName, IDNumber: wangID, Phone: wangPhone}, paygate.CodeInvalidArgument, "card_number"},
			{"unknown card", agreement.SignCard{Number: "6288880000000062", Name: wangName, IDNumber: wangID, Phone: wangPhone}, paygate.CodeNotFound, "card_number"},
			{"frozen card", agreement.SignCard{Number: cardFrozen, Name: wangName, IDNumber: wangID, Phone: wangPhone}, paygate.CodeForbidden, "card_number"},
			{"wrong holder", agreement.SignCard{Number: cardPays, Name: liName, IDNumber: liID, Phone: liPhone}, paygate.CodeInvalidArgument, "holder"},
			{"wrong phone", agreement.SignCard{Number: cardPays, Name: wangName, IDNumber: wangID, Phone: liPhone}, paygate.CodeInvalidArgument, "holder"},
		}
		for _, c := range bad {
			_, err := f.svc.StartSign(f.ctx, a.ID, c.card)
			requireField(t, c.code, c.field, err)
		}
		_, err := f.svc.StartSign(f.ctx, "agm_nope", agreement.SignCard{Number: cardPays, Name: wangName, IDNumber: wangID, Phone: wangPhone})
		requireCode(t, paygate.CodeNotFound, err)
		holder.Number = cardPays
		ch, err := f.svc.StartSign(f.ctx, a.ID, holder)
		require.NoError(t, err)
		require.Equal(t, "628888******0013", ch.Card)
		code := f.code(t, wangPhone)
		wrong := "000000"
		if code == wrong {
			wrong = "111111"
		}
		_, err = f.svc.ConfirmSign(f.ctx, a.ID, ch.CardID, wrong)
		requireCode(t, paygate.CodeUnauthenticated, err)
		_, _, err = f.svc.Charge(f.ctx, mch, a.ID, charge(100))
		requireCode(t, paygate.CodeConflict, err, "not signed yet")
		signed, err := f.svc.ConfirmSign(f.ctx, a.ID, ch.CardID, code)
		require.NoError(t, err)
		require.Equal(t, agreement.StatusSigned, signed.Status)
		require.Empty(t, signed.SignURL)
		require.Equal(t, "628888******0013", signed.Card)
		require.Equal(t, t0, signed.SignedTime)
		_, err = f.svc.ConfirmSign(f.ctx, a.ID, ch.CardID, code)
		requireCode(t, paygate.CodeConflict, err, "signed once")
		require.Equal(t, 1, f.events(t, agreement.EventSigned, a.ID))
		require.Zero(t, f.count(t, `SELECT count(*) FROM notify_events WHERE payload LIKE '%' || $1 || '%'`, cardPays), "never the card number")

		acct := f.cards[cardPays].AccountID
		before := f.available(t, acct)
		req := charge(1_234)
		c, replay, err := f.svc.Charge(f.ctx, mch, a.ID, req)
		require.NoError(t, err)
		require.False(t, replay)
		require.Equal(t, agreement.ChargeSuccess, c.Status)
		require.Equal(t, payment.StatusSuccess, c.Order.Status)
		require.Equal(t, a.ID, c.Order.Metadata["agreement_id"])
		require.Equal(t, []string{payment.MethodAgreement}, c.Order.PaymentMethods)
		require.Equal(t, a.NotifyURL, c.Order.NotifyURL, "the agreement's notify_url by default")
		require.Equal(t, before-1_234, f.available(t, acct))
		require.Equal(t, 1, f.events(t, payment.EventSuccess, c.Order.ID))
		again, replay, err := f.svc.Charge(f.ctx, mch, a.ID, req)
		require.NoError(t, err)
		require.True(t, replay)
		require.Equal(t, c.Order.ID, again.Order.ID)
		require.Equal(t, agreement.ChargeSuccess, again.Status)
		require.Equal(t, before-1_234, f.available(t, acct), "paid once")
		diff := req
		diff.Amount.Total++
		_, _, err = f.svc.Charge(f.ctx, mch, a.ID, diff)
		requireField(t, paygate.CodeOutTradeNoUsed, "amount.total", err)
		u, err := f.cus.UsageOn(f.ctx, f.cards[cardPays].CustomerID, f.cards[cardPays].ID, customer.MethodQuickPay, "2026-11-22")
		require.NoError(t, err)
		require.Equal(t, int64(1_234), u.Card, "the customer's limits count the charge")
		f.balanced(t)
	})
}
