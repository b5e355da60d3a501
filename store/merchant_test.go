package store_test

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"paygate"
	"paygate/merchant"
	"paygate/store"
	"paygate/store/storetest"
)

// TestMerchantStore checks the merchant store's contract directly on both
// dialects (the merchant package's tests cover it through the service).
func TestMerchantStore(t *testing.T) {
	t.Parallel()
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		s := db.Merchants()
		at := time.Date(2030, 1, 1, 0, 0, 0, 123_000, time.UTC)
		rec := merchant.Record{
			Merchant: paygate.Merchant{ID: "1234567890", Name: "商户 One", Status: paygate.MerchantSandbox, SettlementCurrency: "CNY",
				FeeRateBps: 60, NotifyHosts: []string{"a.example.com"}, IPAllowList: []string{"10.0.0.0/8"}, CreatedAt: at},
			APIv3Key:  merchant.Sealed{KeyID: "kid", Ciphertext: "c2VhbGVk"},
			UpdatedAt: at,
		}
		has, err := s.HasMerchants(ctx)
		require.NoError(t, err)
		require.False(t, has)

		inTx := func(fn func(tx merchant.Tx) error) error { return s.InTx(ctx, fn) }
		require.NoError(t, inTx(func(tx merchant.Tx) error {
			ok, err := tx.InsertMerchant(ctx, rec)
			require.True(t, ok)
			return err
		}))
		require.NoError(t, inTx(func(tx merchant.Tx) error {
			ok, err := tx.InsertMerchant(ctx, rec)
			require.False(t, ok, "the id is taken")
			return err
		}))
		got, err := s.Merchant(ctx, rec.Merchant.ID)
		require.NoError(t, err)
		require.Equal(t, rec, got)
		_, err = s.Merchant(ctx, "1234567899")
		require.Equal(t, paygate.CodeNotFound, paygate.CodeOf(err))
		has, err = s.HasMerchants(ctx)
		require.NoError(t, err)
		require.True(t, has)

		// A sub-merchant's parent must exist.
		sub := rec
		sub.Merchant.ID, sub.Merchant.ParentID = "1234567891", "1999999999"
		err = inTx(func(tx merchant.Tx) error { _, err := tx.InsertMerchant(ctx, sub); return err })
		require.Error(t, err)
		sub.Merchant.ParentID = rec.Merchant.ID
		require.NoError(t, inTx(func(tx merchant.Tx) error { _, err := tx.InsertMerchant(ctx, sub); return err }))
		got, err = s.Merchant(ctx, sub.Merchant.ID)
		require.NoError(t, err)
		require.Equal(t, rec.Merchant.ID, got.Merchant.ParentID)

		// Update and lock.
		upd := rec
		upd.Merchant.Status, upd.Merchant.IPAllowList, upd.LiveSince, upd.UpdatedAt = paygate.MerchantLive, nil, at.Add(time.Hour), at.Add(time.Hour)
		require.NoError(t, inTx(func(tx merchant.Tx) error {
			locked, err := tx.LockMerchant(ctx, rec.Merchant.ID)
			require.NoError(t, err)
			require.Equal(t, rec, locked)
			return tx.UpdateMerchant(ctx, upd)
		}))
		got, err = s.Merchant(ctx, rec.Merchant.ID)
		require.NoError(t, err)
		require.Equal(t, upd, got)
		err = inTx(func(tx merchant.Tx) error { _, err := tx.LockMerchant(ctx, "1111111111"); return err })
		require.Equal(t, paygate.CodeNotFound, paygate.CodeOf(err))
		missing := rec
		missing.Merchant.ID = "1111111111"
		require.Equal(t, paygate.CodeNotFound, paygate.CodeOf(inTx(func(tx merchant.Tx) error { return tx.UpdateMerchant(ctx, missing) })))

		// Keys.
		k := merchant.Key{MerchantID: rec.Merchant.ID, SerialNo: "S1", PublicKeyPEM: "PEM1", Source: merchant.KeyUploaded, CreatedAt: at}
		require.NoError(t, inTx(func(tx merchant.Tx) error {
			ok, err := tx.InsertMerchantKey(ctx, k)
			require.True(t, ok)
			require.NoError(t, err)
			ok, err = tx.InsertMerchantKey(ctx, k)
			require.False(t, ok)
			return err
		}))
		m, gotKey, err := s.MerchantWithKey(ctx, rec.Merchant.ID, "S1")
		require.NoError(t, err)
		require.Equal(t, upd.Merchant, m)
		require.Equal(t, k, gotKey)
		_, _, err = s.MerchantWithKey(ctx, rec.Merchant.ID, "S2")
		require.Equal(t, paygate.CodeNotFound, paygate.CodeOf(err))
		require.NoError(t, inTx(func(tx merchant.Tx) error {
			n, err := tx.CountActiveMerchantKeys(ctx, rec.Merchant.ID)
			require.Equal(t, 1, n)
			require.NoError(t, err)
			ok, err := tx.RevokeMerchantKey(ctx, rec.Merchant.ID, "S1", at.Add(time.Minute))
			require.True(t, ok)
			require.NoError(t, err)
			ok, err = tx.RevokeMerchantKey(ctx, rec.Merchant.ID, "S1", at.Add(2*time.Minute))
			require.False(t, ok, "revoked once")
			require.NoError(t, err)
			n, err = tx.CountActiveMerchantKeys(ctx, rec.Merchant.ID)
			require.Zero(t, n)
			return err
		}))
		ks, err := s.MerchantKeys(ctx, rec.Merchant.ID)
		require.NoError(t, err)
		require.Len(t, ks, 1)
		require.Equal(t, at.Add(time.Minute), ks[0].RevokedAt)

		// Platform keys: generation is unique.
		pk := merchant.PlatformKeyRecord{SerialNo: "P1", Generation: 1, PublicKeyPEM: "PUB", PrivateKey: merchant.Sealed{KeyID: "kid", Ciphertext: "x"},
			ValidFrom: at, ValidUntil: at.Add(24 * time.Hour), CreatedAt: at}
		pk2 := pk
		pk2.SerialNo, pk2.Generation, pk2.ValidFrom, pk2.ValidUntil = "P2", 2, at.Add(time.Hour), at.Add(48*time.Hour)
		require.NoError(t, inTx(func(tx merchant.Tx) error {
			for _, r := range []merchant.PlatformKeyRecord{pk, pk2} {
				ok, err := tx.InsertPlatformKey(ctx, r)
				require.True(t, ok)
				require.NoError(t, err)
			}
			clash := pk2
			clash.SerialNo = "P3"
			ok, err := tx.InsertPlatformKey(ctx, clash)
			require.False(t, ok, "generation 2 exists")
			require.NoError(t, err)
			return tx.CapPlatformKeys(ctx, 2, at.Add(2*time.Hour))
		}))
		pks, err := s.PlatformKeys(ctx)
		require.NoError(t, err)
		require.Len(t, pks, 2)
		require.Equal(t, pk2, pks[0], "newest first, not capped")
		require.Equal(t, at.Add(2*time.Hour), pks[1].ValidUntil)

		// Nonces: one use per (merchant, nonce) until it expires.
		exp, exp2 := at.Add(5*time.Minute), at.Add(10*time.Minute)
		for _, c := range []struct {
			mch, nonce string
			now, exp   time.Time
			ok         bool
		}{
			{"1", "n", at, exp, true},
			{"1", "n", at, exp, false},
			{"2", "n", at, exp, true},
			{"1", "m", at, exp, true},
			{"1", "n", exp.Add(-time.Microsecond), exp, false},
			{"1", "n", exp, exp, false},
			{"1", "n", exp.Add(time.Microsecond), exp2, true}, // an expired row is reused
			{"1", "n", exp.Add(time.Microsecond), exp2, false},
		} {
			ok, err := s.UseNonce(ctx, c.mch, c.nonce, c.now, c.exp)
			require.NoError(t, err)
			require.Equal(t, c.ok, ok, "%+v", c)
		}
		n, err := s.DeleteExpiredNonces(ctx, exp, 10)
		require.NoError(t, err)
		require.Zero(t, n)
		for _, want := range []int64{1, 1, 0} { // (2, n) and (1, m) expired; (1, n) lives on
			n, err = s.DeleteExpiredNonces(ctx, exp.Add(time.Microsecond), 1)
			require.NoError(t, err)
			require.Equal(t, want, n)
		}
		ok, err := s.UseNonce(ctx, "1", "n", exp.Add(time.Microsecond), exp2)
		require.NoError(t, err)
		require.False(t, ok)
	})
}
