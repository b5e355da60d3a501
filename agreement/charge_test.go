package agreement_test

import (
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"paygate"
	"paygate/agreement"
	"paygate/payment"
	"paygate/store"
	"paygate/store/storetest"
)

// TestChargeLimits: the per-payment and per-day limits hold exactly (at
// the limit passes, one fen over is LIMIT_EXCEEDED); a refused charge
// leaves no order, no money moved and no limit usage; the next business
// day starts afresh; bad amounts and currencies are refused.
func TestChargeLimits(t *testing.T) {
	t.Parallel()
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		f := newFixture(t, db)
		a := f.signed(t, cardPays, func(r *agreement.Request) { r.PerPaymentLimit, r.DailyLimit = 5_000, 8_000 })
		acct := f.cards[cardPays].AccountID
		before := f.available(t, acct)
		refused := func(req agreement.ChargeRequest, code paygate.Code, field string) {
			t.Helper()
			_, _, err := f.svc.Charge(f.ctx, mch, a.ID, req)
			requireField(t, code, field, err)
			_, err = f.pay.GetByOutTradeNo(f.ctx, mch, req.OutTradeNo)
			requireCode(t, paygate.CodeNotFound, err, "a refused charge leaves no order")
		}
		refused(charge(5_001), paygate.CodeLimitExceeded, "amount.total")
		refused(charge(0), paygate.CodeAmountNotPositive, "amount.total")
		refused(charge(-1), paygate.CodeAmountNotPositive, "amount.total")
		refused(charge(1<<62), paygate.CodeLimitExceeded, "amount.total")
		usd := charge(100)
		usd.Amount.Currency = "USD"
		refused(usd, paygate.CodeCurrencyMismatch, "amount.currency")
		xyz := charge(100)
		xyz.Amount.Currency = "XYZ"
		refused(xyz, paygate.CodeUnknownCurrency, "amount.currency")
		noDesc := charge(100)
		noDesc.Description = ""
		refused(noDesc, paygate.CodeInvalidArgument, "description")
		badNo := charge(100)
		badNo.OutTradeNo = "x"
		refused(badNo, paygate.CodeInvalidArgument, "out_trade_no")

		_, _, err := f.svc.Charge(f.ctx, mch, a.ID, charge(5_000))
		require.NoError(t, err, "exactly the per-payment limit")
		refused(charge(3_001), paygate.CodeLimitExceeded, "amount.total")
		_, _, err = f.svc.Charge(f.ctx, mch, a.ID, charge(3_000))
		require.NoError(t, err, "exactly the daily limit")
		refused(charge(1), paygate.CodeLimitExceeded, "amount.total")
		require.Equal(t, before-8_000, f.available(t, acct))

		f.clock.Advance(24 * time.Hour)
		_, _, err = f.svc.Charge(f.ctx, mch, a.ID, charge(5_000))
		require.NoError(t, err, "a new business day")

		_, _, err = f.svc.Charge(f.ctx, mchOther, a.ID, charge(100))
		requireCode(t, paygate.CodeNotFound, err, "another merchant's agreement")
		_, _, err = f.svc.Charge(f.ctx, mch, "agm_unknown", charge(100))
		requireCode(t, paygate.CodeNotFound, err)

		poor := f.signed(t, cardPoor)
		_, _, err = f.svc.Charge(f.ctx, mch, poor.ID, charge(100))
		requireCode(t, paygate.CodeInsufficientFunds, err)
		f.balanced(t)
	})
}

// TestChargeDailyLimitConcurrent: parallel charges of one agreement never
// overshoot its per-day limit: exactly as many as fit succeed, the rest
// are LIMIT_EXCEEDED, and the card is debited by exactly the limit.
func TestChargeDailyLimitConcurrent(t *testing.T) {
	t.Parallel()
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		f := newFixture(t, db)
		a := f.signed(t, cardPays, func(r *agreement.Request) { r.DailyLimit = 3_000 })
		acct := f.cards[cardPays].AccountID
		before := f.available(t, acct)
		const n = 10
		errs := make([]error, n)
		var wg sync.WaitGroup
		for i := range n {
			wg.Go(func() { _, _, errs[i] = f.svc.Charge(f.ctx, mch, a.ID, charge(1_000)) })
		}
		wg.Wait()
		ok := 0
		for _, err := range errs {
			if err == nil {
				ok++
				continue
			}
			requireCode(t, paygate.CodeLimitExceeded, err)
		}
		require.Equal(t, 3, ok)
		require.Equal(t, before-3_000, f.available(t, acct))
		require.Equal(t, 3, f.count(t, `SELECT count(*) FROM merchant_agreement_charges WHERE agreement_id = $1`, a.ID))
		f.balanced(t)
	})
}

// TestChargeOtherBank: another bank's card is charged through the
// interbank channel: PROCESSING, then TRANSACTION.SUCCESS when the switch
// answers; a charge its bank declines counts while in flight and no
// longer counts once FAILED against the day's limit.
func TestChargeOtherBank(t *testing.T) {
	t.Parallel()
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		f := newFixture(t, db)
		a := f.signed(t, cardOther, func(r *agreement.Request) { r.DailyLimit = 1_000 })
		c, _, err := f.svc.Charge(f.ctx, mch, a.ID, charge(600))
		require.NoError(t, err)
		require.Equal(t, agreement.ChargeProcessing, c.Status)
		require.Equal(t, payment.StatusNotPay, c.Order.Status)
		f.clock.Advance(2 * time.Second)
		f.dispatch.RunDue()
		o, err := f.pay.Get(f.ctx, mch, c.Order.ID)
		require.NoError(t, err)
		require.Equal(t, payment.StatusSuccess, o.Status)
		require.Equal(t, 1, f.events(t, payment.EventSuccess, c.Order.ID))

		d := f.signed(t, cardDeclined, func(r *agreement.Request) { r.DailyLimit = 1_000 })
		c, _, err = f.svc.Charge(f.ctx, mch, d.ID, charge(800))
		require.NoError(t, err)
		require.Equal(t, agreement.ChargeProcessing, c.Status)
		_, _, err = f.svc.Charge(f.ctx, mch, d.ID, charge(900))
		requireCode(t, paygate.CodeLimitExceeded, err, "a charge in flight counts")
		f.clock.Advance(2 * time.Second)
		f.dispatch.RunDue()
		o, err = f.pay.Get(f.ctx, mch, c.Order.ID)
		require.NoError(t, err)
		require.NotEqual(t, payment.StatusSuccess, o.Status, "the bank declined")
		_, _, err = f.svc.Charge(f.ctx, mch, d.ID, charge(900))
		require.NoError(t, err, "a declined charge does not count against the daily limit")
		f.balanced(t)
	})
}

// TestRevoke: the merchant or the customer revokes; a revoked agreement
// refuses charges (CONFLICT, nothing created); AGREEMENT.REVOKED is
// queued once; revoking again returns it unchanged; another merchant or
// customer gets NOT_FOUND.
func TestRevoke(t *testing.T) {
	t.Parallel()
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		f := newFixture(t, db)
		wang := f.cards[cardPays].CustomerID
		li := f.cards[liCard].CustomerID

		a := f.signed(t, cardPays)
		_, err := f.svc.Revoke(f.ctx, mchOther, a.ID)
		requireCode(t, paygate.CodeNotFound, err)
		r, err := f.svc.Revoke(f.ctx, mch, a.ID)
		require.NoError(t, err)
		require.Equal(t, agreement.StatusRevoked, r.Status)
		require.Equal(t, agreement.RevokedByMerchant, r.RevokedBy)
		again, err := f.svc.Revoke(f.ctx, mch, a.ID)
		require.NoError(t, err)
		require.Equal(t, r.RevokedTime, again.RevokedTime)
		require.Equal(t, 1, f.events(t, agreement.EventRevoked, a.ID))
		req := charge(100)
		_, _, err = f.svc.Charge(f.ctx, mch, a.ID, req)
		requireCode(t, paygate.CodeConflict, err)
		_, err = f.pay.GetByOutTradeNo(f.ctx, mch, req.OutTradeNo)
		requireCode(t, paygate.CodeNotFound, err)

		b := f.signed(t, cardPays)
		_, err = f.svc.RevokeByCustomer(f.ctx, li, b.ID)
		requireCode(t, paygate.CodeNotFound, err, "another customer's agreement")
		mine, err := f.svc.CustomerAgreements(f.ctx, wang)
		require.NoError(t, err)
		require.Len(t, mine, 2)
		require.Equal(t, b.ID, mine[0].ID, "newest first")
		require.Equal(t, "Demo Shop", mine[0].MerchantName)
		r, err = f.svc.RevokeByCustomer(f.ctx, wang, b.ID)
		require.NoError(t, err)
		require.Equal(t, agreement.RevokedByCustomer, r.RevokedBy)
		require.Equal(t, 1, f.events(t, agreement.EventRevoked, b.ID))
		_, _, err = f.svc.Charge(f.ctx, mch, b.ID, charge(100))
		requireCode(t, paygate.CodeConflict, err)

		p := f.create(t)
		r, err = f.svc.Revoke(f.ctx, mch, p.ID)
		require.NoError(t, err, "a pending agreement may be withdrawn")
		require.Equal(t, agreement.StatusRevoked, r.Status)
		require.Zero(t, f.events(t, agreement.EventRevoked, p.ID), "nobody signed it: nothing to tell")
		_, err = f.svc.StartSign(f.ctx, p.ID, agreement.SignCard{Number: cardPays, Name: wangName, IDNumber: wangID, Phone: wangPhone})
		requireCode(t, paygate.CodeConflict, err)
	})
}

// TestExpiry: a sign request not signed within its window expires (the
// page refuses it, the job records it); a signed agreement past its end
// date refuses charges and is recorded EXPIRED at the refusal.
func TestExpiry(t *testing.T) {
	t.Parallel()
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		f := newFixture(t, db)
		p := f.create(t)
		ends := f.signed(t, cardPays, func(r *agreement.Request) { r.EndDate = "2026-11-23" })
		f.clock.Advance(agreement.DefaultSignExpire)
		_, err := f.svc.StartSign(f.ctx, p.ID, agreement.SignCard{Number: cardPays, Name: wangName, IDNumber: wangID, Phone: wangPhone})
		requireCode(t, paygate.CodeConflict, err)
		got, err := f.svc.Get(f.ctx, mch, p.ID)
		require.NoError(t, err)
		require.Equal(t, agreement.StatusExpired, got.Status, "shown expired before the job runs")
		require.Empty(t, got.SignURL)
		n, err := f.svc.ExpireDue(f.ctx, 10)
		require.NoError(t, err)
		require.Equal(t, 1, n)
		n, err = f.svc.ExpireDue(f.ctx, 10)
		require.NoError(t, err)
		require.Zero(t, n)

		_, _, err = f.svc.Charge(f.ctx, mch, ends.ID, charge(100))
		require.NoError(t, err, "on its end date (2026-11-23, Shanghai)")
		f.clock.Advance(14 * time.Hour) // 2026-11-24 00:00 Shanghai
		_, _, err = f.svc.Charge(f.ctx, mch, ends.ID, charge(100))
		requireCode(t, paygate.CodeConflict, err)
		require.Equal(t, 1, f.count(t, `SELECT count(*) FROM merchant_agreements WHERE id = $1 AND status = 'EXPIRED'`, ends.ID))
		_, err = f.svc.Revoke(f.ctx, mch, ends.ID)
		requireCode(t, paygate.CodeConflict, err, "an expired agreement cannot be revoked")
	})
}

// TestList pages the merchant's agreements newest first and filters by
// status; bad cursors, limits and statuses are INVALID_ARGUMENT.
func TestList(t *testing.T) {
	t.Parallel()
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		f := newFixture(t, db)
		var ids []string
		for range 3 {
			ids = append(ids, f.create(t).ID)
		}
		f.sign(t, ids[0], cardPays)
		p, err := f.svc.List(f.ctx, mch, agreement.ListRequest{Limit: 2})
		require.NoError(t, err)
		require.Len(t, p.Agreements, 2)
		require.Equal(t, ids[2], p.Agreements[0].ID)
		require.NotEmpty(t, p.NextCursor)
		p, err = f.svc.List(f.ctx, mch, agreement.ListRequest{Limit: 2, Cursor: p.NextCursor})
		require.NoError(t, err)
		require.Len(t, p.Agreements, 1)
		require.Equal(t, ids[0], p.Agreements[0].ID)
		require.Empty(t, p.NextCursor)
		p, err = f.svc.List(f.ctx, mch, agreement.ListRequest{Status: agreement.StatusSigned})
		require.NoError(t, err)
		require.Len(t, p.Agreements, 1)
		p, err = f.svc.List(f.ctx, mchOther, agreement.ListRequest{})
		require.NoError(t, err)
		require.Empty(t, p.Agreements)
		for _, bad := range []agreement.ListRequest{{Limit: -1}, {Limit: 101}, {Cursor: "!!"}, {Cursor: "b3JkXzE"}, {Status: "DONE"}} {
			_, err := f.svc.List(f.ctx, mch, bad)
			requireCode(t, paygate.CodeInvalidArgument, err)
		}
	})
}
