package store_test

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"paygate"
	"paygate/customer"
	"paygate/sealing"
	"paygate/store"
	"paygate/store/storetest"
)

func customerRecord(id, phone, username string) customer.Record {
	now := time.Date(2026, 11, 22, 2, 0, 0, 0, time.UTC)
	r := customer.Record{PasswordHash: "$argon2id$x"}
	r.ID, r.Phone, r.Username, r.Status, r.Factors, r.OnlinePayment = id, phone, username, customer.StatusActive, customer.FactorPassword, true
	r.CreatedAt, r.UpdatedAt = now, now
	return r
}

func TestCustomerStoreRoundTrip(t *testing.T) {
	t.Parallel()
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		s := db.Customers()
		a := customerRecord("cus_a", "13900000001", "")
		b := customerRecord("cus_b", "", "bob_lee")
		require.NoError(t, s.InTx(ctx, func(tx customer.Tx) error {
			for _, r := range []customer.Record{a, b} {
				ok, err := tx.InsertCustomer(ctx, r)
				require.NoError(t, err)
				require.True(t, ok)
			}
			for _, dup := range []customer.Record{customerRecord("cus_c", "13900000001", ""), customerRecord("cus_d", "", "bob_lee"), customerRecord("cus_a", "", "other")} {
				ok, err := tx.InsertCustomer(ctx, dup)
				require.NoError(t, err)
				require.False(t, ok, dup.ID)
			}
			return nil
		}))
		got, err := s.CustomerByLogin(ctx, "13900000001")
		require.NoError(t, err)
		require.Equal(t, a.Customer, got.Customer)
		got, err = s.CustomerByLogin(ctx, "bob_lee")
		require.NoError(t, err)
		require.Equal(t, "cus_b", got.ID)
		_, err = s.CustomerByLogin(ctx, "nobody")
		require.Equal(t, paygate.CodeNotFound, paygate.CodeOf(err))

		// Every mutable field round-trips.
		lock := time.Date(2026, 11, 22, 3, 0, 0, 0, time.UTC)
		require.NoError(t, s.InTx(ctx, func(tx customer.Tx) error {
			r, err := tx.LockCustomer(ctx, "cus_a")
			require.NoError(t, err)
			r.PayPasswordHash, r.Factors, r.OnlinePayment = "$argon2id$y", r.Factors|customer.FactorRealName, false
			r.Identity, r.IDIndex = sealing.Sealed{KeyID: "k1", Ciphertext: "c2VhbGVk"}, "idx"
			r.NameMasked, r.IDMasked, r.PhoneMasked, r.VerifiedAt = "*三", "110***", "139****0001", lock
			r.Login = customer.Attempts{Failures: 2, WindowStart: lock, LockedUntil: lock.Add(time.Hour)}
			r.Pay = customer.Attempts{Failures: 1, WindowStart: lock}
			r.UpdatedAt = lock
			return tx.UpdateCustomer(ctx, r)
		}))
		got, err = s.Customer(ctx, "cus_a")
		require.NoError(t, err)
		require.Equal(t, "$argon2id$y", got.PayPasswordHash)
		require.True(t, got.PayPasswordSet)
		require.False(t, got.OnlinePayment)
		require.Equal(t, sealing.Sealed{KeyID: "k1", Ciphertext: "c2VhbGVk"}, got.Identity)
		require.Equal(t, customer.Attempts{Failures: 2, WindowStart: lock, LockedUntil: lock.Add(time.Hour)}, got.Login)
		require.Equal(t, customer.Attempts{Failures: 1, WindowStart: lock}, got.Pay)
		require.Equal(t, lock, got.VerifiedAt)
	})
}

func TestCustomerUsageUpsert(t *testing.T) {
	t.Parallel()
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		s := db.Customers()
		add := func(amount, limit int64) bool {
			var ok bool
			require.NoError(t, s.InTx(ctx, func(tx customer.Tx) error {
				var err error
				ok, err = tx.AddUsage(ctx, "cus:x", "2026-11-22", amount, limit)
				return err
			}))
			return ok
		}
		require.False(t, add(101, 100), "a first payment over the limit")
		require.True(t, add(60, 100))
		require.True(t, add(40, 100), "exactly at the limit")
		require.False(t, add(1, 100), "one over")
		require.True(t, add(1, 200), "a higher limit lets it through")
		n, err := s.Usage(ctx, "cus:x", "2026-11-22")
		require.NoError(t, err)
		require.Equal(t, int64(101), n)
		n, err = s.Usage(ctx, "cus:x", "2026-11-23")
		require.NoError(t, err)
		require.Zero(t, n)
		require.NoError(t, s.InTx(ctx, func(tx customer.Tx) error { return tx.SubUsage(ctx, "cus:x", "2026-11-22", 500) }))
		n, err = s.Usage(ctx, "cus:x", "2026-11-22")
		require.NoError(t, err)
		require.Zero(t, n, "usage never drops below zero")
	})
}
