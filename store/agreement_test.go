package store_test

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"paygate"
	"paygate/agreement"
	"paygate/channel"
	"paygate/customer"
	"paygate/payment"
	"paygate/store"
	"paygate/store/storetest"
)

// storedAgreement is a PENDING agreement of the merchant, created at pt0
// (microsecond times, as stored), with every optional field set.
func storedAgreement(id, mch, no string) agreement.Record {
	return agreement.Record{ID: id, MerchantID: mch, OutAgreementNo: no, RequestHash: "h-" + no, Plan: "茶叶月卡",
		Description: "One box a month", Currency: "CNY", PerPaymentLimit: 2_000, DailyLimit: 5_000, EndDate: "2027-11-30",
		EndsAt: time.Date(2027, 11, 30, 16, 0, 0, 0, time.UTC), NotifyURL: "https://m.example.com/agreements",
		ReturnURL: "https://m.example.com/done", Status: agreement.StatusPending, SignExpireTime: pt0.Add(24 * time.Hour),
		Sandbox: true, CreateTime: pt0, UpdateTime: pt0}
}

// insertAgreements inserts the agreements, each one new.
func insertAgreements(t *testing.T, db *store.DB, as ...agreement.Record) {
	t.Helper()
	require.NoError(t, db.InTx(context.Background(), func(tx *store.Tx) error {
		for _, a := range as {
			ok, err := tx.InsertMerchantAgreement(context.Background(), a)
			require.NoError(t, err)
			require.True(t, ok, a.ID)
		}
		return nil
	}))
}

// signStored marks the stored agreement SIGNED by the customer with the card.
func signStored(t *testing.T, db *store.DB, id, customerID, cardID string, at time.Time) agreement.Record {
	t.Helper()
	ctx := context.Background()
	var out agreement.Record
	require.NoError(t, db.InTx(ctx, func(tx *store.Tx) error {
		a, err := tx.LockMerchantAgreement(ctx, id)
		require.NoError(t, err)
		a.Status, a.CustomerID, a.CardID, a.Card, a.Bank, a.SignedTime, a.UpdateTime =
			agreement.StatusSigned, customerID, cardID, "628888******0013", "Paygate Bank", at, at
		out = a
		return tx.UpdateMerchantAgreement(ctx, a)
	}))
	return out
}

// TestAgreementStoreRoundTrip: an agreement reads back exactly as written
// (in and out of transactions, by id and by number); one agreement per
// merchant and out_agreement_no, while another merchant may use the same
// number; another merchant's number and unknown ids are NOT_FOUND; an
// update stores every mutable field and nothing else; a lock reads the
// row in its transaction.
func TestAgreementStoreRoundTrip(t *testing.T) {
	t.Parallel()
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		s := db.Agreements()
		full := storedAgreement("agm_1", "m1", "AGR-000001")
		bare := agreement.Record{ID: "agm_2", MerchantID: "m1", OutAgreementNo: "AGR-000002", RequestHash: "h2", Plan: "p",
			Currency: "CNY", NotifyURL: "https://m.example.com/n", Status: agreement.StatusPending, SignExpireTime: pt0.Add(time.Hour),
			CreateTime: pt0, UpdateTime: pt0}
		require.NoError(t, db.InTx(ctx, func(tx *store.Tx) error {
			for _, a := range []agreement.Record{full, bare} {
				ok, err := tx.InsertMerchantAgreement(ctx, a)
				require.NoError(t, err)
				require.True(t, ok)
			}
			dup := storedAgreement("agm_3", "m1", "AGR-000001")
			dup.Plan = "another plan"
			ok, err := tx.InsertMerchantAgreement(ctx, dup)
			require.NoError(t, err)
			require.False(t, ok, "one agreement per merchant and out_agreement_no")
			sameID := storedAgreement("agm_1", "m2", "AGR-000009")
			ok, err = tx.InsertMerchantAgreement(ctx, sameID)
			require.NoError(t, err)
			require.False(t, ok, "ids are unique")
			other := storedAgreement("agm_4", "m2", "AGR-000001")
			ok, err = tx.InsertMerchantAgreement(ctx, other)
			require.NoError(t, err)
			require.True(t, ok, "numbers are per merchant")

			got, err := tx.MerchantAgreementByNoInTx(ctx, "m1", "AGR-000001")
			require.NoError(t, err)
			require.Equal(t, full, got, "the first request's agreement, not the duplicate")
			_, err = tx.MerchantAgreementByNoInTx(ctx, "m3", "AGR-000001")
			require.Equal(t, paygate.CodeNotFound, paygate.CodeOf(err))
			got, err = tx.LockMerchantAgreement(ctx, "agm_2")
			require.NoError(t, err)
			require.Equal(t, bare, got, "empty optional fields read back empty")
			_, err = tx.LockMerchantAgreement(ctx, "agm_9")
			require.Equal(t, paygate.CodeNotFound, paygate.CodeOf(err))
			return nil
		}))

		got, err := s.MerchantAgreement(ctx, "agm_1")
		require.NoError(t, err)
		require.Equal(t, full, got)
		got, err = s.MerchantAgreementByNo(ctx, "m1", "AGR-000001")
		require.NoError(t, err)
		require.Equal(t, full, got)
		got, err = s.MerchantAgreementByNo(ctx, "m2", "AGR-000001")
		require.NoError(t, err)
		require.Equal(t, "agm_4", got.ID, "the other merchant's own agreement")
		for _, c := range []struct{ mch, no string }{{"m2", "AGR-000002"}, {"m1", "AGR-000009"}, {"", "AGR-000001"}} {
			_, err = s.MerchantAgreementByNo(ctx, c.mch, c.no)
			require.Equal(t, paygate.CodeNotFound, paygate.CodeOf(err), c)
		}
		_, err = s.MerchantAgreement(ctx, "agm_9")
		require.Equal(t, paygate.CodeNotFound, paygate.CodeOf(err))

		// Every mutable field round-trips; the rest stays as inserted.
		cus := customerRecord("cus_a", "13900000001", "")
		require.NoError(t, db.Customers().InTx(ctx, func(tx customer.Tx) error {
			_, err := tx.InsertCustomer(ctx, cus)
			return err
		}))
		signed := signStored(t, db, "agm_1", "cus_a", "card_1", pt0.Add(time.Minute))
		got, err = s.MerchantAgreement(ctx, "agm_1")
		require.NoError(t, err)
		require.Equal(t, signed, got)
		revoked := signed
		revoked.Status, revoked.RevokedTime, revoked.RevokedBy, revoked.UpdateTime = agreement.StatusRevoked, pt0.Add(time.Hour), agreement.RevokedByCustomer, pt0.Add(time.Hour)
		changed := revoked
		changed.Plan, changed.DailyLimit, changed.NotifyURL, changed.RequestHash = "changed", 1, "https://evil.example", "h-x"
		require.NoError(t, db.InTx(ctx, func(tx *store.Tx) error { return tx.UpdateMerchantAgreement(ctx, changed) }))
		got, err = s.MerchantAgreement(ctx, "agm_1")
		require.NoError(t, err)
		require.Equal(t, revoked, got, "an update writes the mutable fields only")
		expired := bare
		expired.Status, expired.ExpiredTime, expired.UpdateTime = agreement.StatusExpired, pt0.Add(2*time.Hour), pt0.Add(2*time.Hour)
		require.NoError(t, db.InTx(ctx, func(tx *store.Tx) error { return tx.UpdateMerchantAgreement(ctx, expired) }))
		got, err = s.MerchantAgreement(ctx, "agm_2")
		require.NoError(t, err)
		require.Equal(t, expired, got)

		ghost := storedAgreement("agm_9", "m1", "AGR-000009")
		err = db.InTx(ctx, func(tx *store.Tx) error { return tx.UpdateMerchantAgreement(ctx, ghost) })
		require.Equal(t, paygate.CodeNotFound, paygate.CodeOf(err))

		unknown := signed
		unknown.ID, unknown.OutAgreementNo, unknown.CustomerID = "agm_5", "AGR-000005", "cus_nobody"
		err = db.InTx(ctx, func(tx *store.Tx) error {
			_, err := tx.InsertMerchantAgreement(ctx, unknown)
			return err
		})
		require.Error(t, err, "the signer must be a customer")
	})
}

// TestAgreementStoreLists: a merchant's agreements page newest (greatest
// id) first with the id cursor, alone or filtered by status, and never
// show another merchant's; a customer's list holds the agreements that
// customer signed, newest first.
func TestAgreementStoreLists(t *testing.T) {
	t.Parallel()
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		s := db.Agreements()
		var mine []agreement.Record
		for i := range 5 {
			mine = append(mine, storedAgreement(fmt.Sprintf("agm_%d", i+1), "m1", fmt.Sprintf("AGR-00000%d", i+1)))
		}
		insertAgreements(t, db, mine...)
		insertAgreements(t, db, storedAgreement("agm_9", "m2", "AGR-000001"))
		require.NoError(t, db.Customers().InTx(ctx, func(tx customer.Tx) error {
			for _, c := range []customer.Record{customerRecord("cus_a", "13900000001", ""), customerRecord("cus_b", "13900000002", "")} {
				if _, err := tx.InsertCustomer(ctx, c); err != nil {
					return err
				}
			}
			return nil
		}))
		signStored(t, db, "agm_1", "cus_a", "card_a", pt0)
		signStored(t, db, "agm_3", "cus_a", "card_a", pt0)
		signStored(t, db, "agm_4", "cus_b", "card_b", pt0)
		signStored(t, db, "agm_9", "cus_a", "card_a", pt0)

		ids := func(as []agreement.Record) []string {
			out := []string{}
			for _, a := range as {
				out = append(out, a.ID)
			}
			return out
		}
		for _, c := range []struct {
			name   string
			mch    string
			status agreement.Status
			before string
			limit  int
			want   []string
		}{
			{"first page", "m1", "", "", 2, []string{"agm_5", "agm_4"}},
			{"next page", "m1", "", "agm_4", 2, []string{"agm_3", "agm_2"}},
			{"last page", "m1", "", "agm_2", 2, []string{"agm_1"}},
			{"past the end", "m1", "", "agm_1", 2, []string{}},
			{"all", "m1", "", "", 100, []string{"agm_5", "agm_4", "agm_3", "agm_2", "agm_1"}},
			{"by status", "m1", agreement.StatusSigned, "", 100, []string{"agm_4", "agm_3", "agm_1"}},
			{"by status, paged", "m1", agreement.StatusSigned, "agm_4", 1, []string{"agm_3"}},
			{"pending", "m1", agreement.StatusPending, "", 100, []string{"agm_5", "agm_2"}},
			{"none in a status", "m1", agreement.StatusRevoked, "", 100, []string{}},
			{"another merchant", "m2", "", "", 100, []string{"agm_9"}},
			{"an unknown merchant", "m3", "", "", 100, []string{}},
		} {
			got, err := s.MerchantAgreements(ctx, c.mch, c.status, c.before, c.limit)
			require.NoError(t, err, c.name)
			require.Equal(t, c.want, ids(got), c.name)
		}

		got, err := s.CustomerMerchantAgreements(ctx, "cus_a")
		require.NoError(t, err)
		require.Equal(t, []string{"agm_9", "agm_3", "agm_1"}, ids(got), "every merchant's, newest first")
		got, err = s.CustomerMerchantAgreements(ctx, "cus_b")
		require.NoError(t, err)
		require.Equal(t, []string{"agm_4"}, ids(got))
		got, err = s.CustomerMerchantAgreements(ctx, "cus_nobody")
		require.NoError(t, err)
		require.Empty(t, got)
	})
}

// TestAgreementStoreDue: the expiry job's query finds PENDING agreements
// past their sign window and SIGNED ones past their end (never one without
// an end date, nor a revoked or expired one), up to its limit.
func TestAgreementStoreDue(t *testing.T) {
	t.Parallel()
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		now := pt0.Add(48 * time.Hour)
		pendingDue := storedAgreement("agm_1", "m1", "AGR-000001")  // sign window ended pt0+24h
		pendingOpen := storedAgreement("agm_2", "m1", "AGR-000002") // signable until now+1h
		pendingOpen.SignExpireTime = now.Add(time.Hour)
		signedDue := storedAgreement("agm_3", "m1", "AGR-000003")
		signedDue.EndsAt = now
		signedOpen := storedAgreement("agm_4", "m1", "AGR-000004") // ends next year
		signedForever := storedAgreement("agm_5", "m1", "AGR-000005")
		signedForever.EndDate, signedForever.EndsAt = "", time.Time{}
		revoked := storedAgreement("agm_6", "m1", "AGR-000006")
		revoked.EndsAt = now.Add(-time.Hour)
		insertAgreements(t, db, pendingDue, pendingOpen, signedDue, signedOpen, signedForever, revoked)
		require.NoError(t, db.Customers().InTx(ctx, func(tx customer.Tx) error {
			_, err := tx.InsertCustomer(ctx, customerRecord("cus_a", "13900000001", ""))
			return err
		}))
		for _, id := range []string{"agm_3", "agm_4", "agm_5", "agm_6"} {
			signStored(t, db, id, "cus_a", "card_a", pt0)
		}
		require.NoError(t, db.InTx(ctx, func(tx *store.Tx) error {
			a, err := tx.LockMerchantAgreement(ctx, "agm_6")
			require.NoError(t, err)
			a.Status, a.RevokedTime, a.RevokedBy = agreement.StatusRevoked, pt0, agreement.RevokedByMerchant
			return tx.UpdateMerchantAgreement(ctx, a)
		}))

		due := func(at time.Time, limit int) []string {
			var out []string
			require.NoError(t, db.InTx(ctx, func(tx *store.Tx) error {
				as, err := tx.LockDueMerchantAgreements(ctx, at, limit)
				for _, a := range as {
					out = append(out, a.ID)
				}
				return err
			}))
			return out
		}
		require.Equal(t, []string{"agm_1", "agm_3"}, due(now, 10))
		require.Equal(t, []string{"agm_1"}, due(now, 1), "pending first, up to the limit")
		require.Equal(t, []string{"agm_1"}, due(now.Add(-time.Microsecond), 10), "agm_3 ends at now, not before")
		require.Empty(t, due(pt0.Add(24*time.Hour-time.Microsecond), 10), "agm_1's sign window is open until pt0+24h")
	})
}

// TestAgreementStoreCharges: the per-day usage counts an agreement's
// charges of that business day whose order has not failed (in flight and
// paid ones count, a failed attempt's does not), never another day's or
// another agreement's; a charge is recorded once per order.
func TestAgreementStoreCharges(t *testing.T) {
	t.Parallel()
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		insertAgreements(t, db, storedAgreement("agm_1", "m1", "AGR-000001"), storedAgreement("agm_2", "m1", "AGR-000002"))
		const day, next = paygate.Date("2026-11-22"), paygate.Date("2026-11-23")
		charges := []struct {
			order, agreement string
			amount           int64
			day              paygate.Date
			attempt          channel.Status // "" for none yet
		}{
			{"ord_1", "agm_1", 100, day, channel.StatusSuccess},
			{"ord_2", "agm_1", 200, day, channel.StatusProcessing},
			{"ord_3", "agm_1", 400, day, channel.StatusFailed},
			{"ord_4", "agm_1", 800, day, ""},
			{"ord_5", "agm_1", 1_600, next, channel.StatusSuccess},
			{"ord_6", "agm_2", 3_200, day, channel.StatusSuccess},
		}
		usage := func(id string, d paygate.Date) int64 {
			var n int64
			require.NoError(t, db.InTx(ctx, func(tx *store.Tx) error {
				var err error
				n, err = tx.AgreementChargedOn(ctx, id, d)
				return err
			}))
			return n
		}
		require.Zero(t, usage("agm_1", day), "no charges yet")
		require.NoError(t, db.InTx(ctx, func(tx *store.Tx) error {
			for i, c := range charges {
				o := order(c.order, "m1", fmt.Sprintf("C-%06d", i), pt0.Add(time.Hour))
				o.Amount.Total = c.amount
				_, err := tx.InsertOrder(ctx, o)
				require.NoError(t, err)
				if c.attempt != "" {
					require.NoError(t, tx.InsertAttempt(ctx, payment.Attempt{ID: "pay_" + c.order, OrderID: c.order, MerchantID: "m1",
						Channel: "interbank", Amount: c.amount, Currency: "CNY", Status: c.attempt, CreatedAt: pt0, UpdatedAt: pt0}))
				}
				require.NoError(t, tx.InsertAgreementCharge(ctx, agreement.ChargeRecord{OrderID: c.order, AgreementID: c.agreement,
					Amount: c.amount, Day: c.day, CreatedAt: pt0}))
			}
			return nil
		}))
		require.Equal(t, int64(100+200+800), usage("agm_1", day), "the failed charge does not count")
		require.Equal(t, int64(1_600), usage("agm_1", next))
		require.Equal(t, int64(3_200), usage("agm_2", day))
		require.Zero(t, usage("agm_1", "2026-11-21"))
		require.Zero(t, usage("agm_9", day))

		err := db.InTx(ctx, func(tx *store.Tx) error {
			return tx.InsertAgreementCharge(ctx, agreement.ChargeRecord{OrderID: "ord_1", AgreementID: "agm_1", Amount: 1, Day: day, CreatedAt: pt0})
		})
		require.Error(t, err, "one charge per order")
		err = db.InTx(ctx, func(tx *store.Tx) error {
			return tx.InsertAgreementCharge(ctx, agreement.ChargeRecord{OrderID: "ord_9", AgreementID: "agm_1", Amount: 1, Day: day, CreatedAt: pt0})
		})
		require.Error(t, err, "a charge is of an existing order")
		require.Equal(t, int64(1_100), usage("agm_1", day), "nothing changed")
	})
}

// TestAgreementStoreLock: LockMerchantAgreement holds the row until the
// transaction ends, so concurrent read-modify-writes of one agreement
// (as charges and revocations do) never lose an update.
func TestAgreementStoreLock(t *testing.T) {
	t.Parallel()
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		insertAgreements(t, db, storedAgreement("agm_1", "m1", "AGR-000001"))
		const n = 8
		var wg sync.WaitGroup
		errs := make([]error, n)
		for i := range n {
			wg.Go(func() {
				errs[i] = db.InTx(ctx, func(tx *store.Tx) error {
					a, err := tx.LockMerchantAgreement(ctx, "agm_1")
					if err != nil {
						return err
					}
					a.UpdateTime = a.UpdateTime.Add(time.Second)
					return tx.UpdateMerchantAgreement(ctx, a)
				})
			})
		}
		wg.Wait()
		for _, err := range errs {
			require.NoError(t, err)
		}
		got, err := db.Agreements().MerchantAgreement(ctx, "agm_1")
		require.NoError(t, err)
		require.Equal(t, pt0.Add(n*time.Second), got.UpdateTime, "every update counted")
	})
}
