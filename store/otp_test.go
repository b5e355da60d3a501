package store_test

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"paygate"
	"paygate/otp"
	"paygate/store"
	"paygate/store/storetest"
)

var ot0 = time.Date(2026, 11, 22, 2, 0, 0, 0, time.UTC)

func otpCode(id, purpose string, status otp.Status, tries int, created time.Time) otp.Code {
	return otp.Code{ID: id, Purpose: purpose, Subject: "cus_1", Phone: "13800000000", MAC: "ab", KeyID: "k1",
		Status: status, Tries: tries, MaxTries: 5, CreatedAt: created, ExpiresAt: created.Add(5 * time.Minute)}
}

func TestOTPStore(t *testing.T) {
	t.Parallel()
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		in := func(fn func(tx *store.Tx) error) error { return db.InTx(ctx, fn) }

		require.NoError(t, in(func(tx *store.Tx) error {
			last, err := tx.LastIssuedAt(ctx, "p", "cus_1")
			require.NoError(t, err)
			require.True(t, last.IsZero())
			for _, c := range []otp.Code{
				otpCode("otp_active", "p", otp.StatusActive, 0, ot0),
				otpCode("otp_used", "used", otp.StatusUsed, 1, ot0),
				otpCode("otp_spent", "spent", otp.StatusActive, 5, ot0),
				otpCode("otp_old", "p", otp.StatusSuperseded, 0, ot0.Add(-time.Minute)),
			} {
				require.NoError(t, tx.InsertCode(ctx, c))
			}
			// A second ACTIVE code for the same purpose and subject: retry.
			require.ErrorIs(t, tx.InsertCode(ctx, otpCode("otp_dup", "p", otp.StatusActive, 0, ot0)), paygate.ErrRetry)
			last, err = tx.LastIssuedAt(ctx, "p", "cus_1")
			require.NoError(t, err)
			require.Equal(t, ot0, last)
			return nil
		}))

		require.NoError(t, in(func(tx *store.Tx) error {
			for _, tc := range []struct {
				name, purpose string
				at            time.Time
				ok            bool
				tries         int
			}{
				{"active", "p", ot0.Add(time.Minute), true, 1},
				{"expires exactly now", "p", ot0.Add(5 * time.Minute), false, 0},
				{"used", "used", ot0, false, 0},
				{"tries spent", "spent", ot0, false, 0},
				{"none", "none", ot0, false, 0},
			} {
				c, ok, err := tx.ClaimTry(ctx, tc.purpose, "cus_1", tc.at)
				require.NoError(t, err, tc.name)
				require.Equal(t, tc.ok, ok, tc.name)
				if ok {
					require.Equal(t, tc.tries, c.Tries, tc.name)
					require.Equal(t, "otp_active", c.ID)
					require.Equal(t, ot0.Add(5*time.Minute), c.ExpiresAt)
				}
			}
			old, err := tx.SupersededMACs(ctx, "p", "cus_1", ot0.Add(-5*time.Minute))
			require.NoError(t, err)
			require.Len(t, old, 1)
			require.Equal(t, "otp_old", old[0].ID)
			old, err = tx.SupersededMACs(ctx, "p", "cus_1", ot0.Add(-time.Minute))
			require.NoError(t, err)
			require.Empty(t, old, "only those issued after since")
			return nil
		}))

		require.NoError(t, in(func(tx *store.Tx) error {
			ok, err := tx.ConsumeCode(ctx, "otp_active", "p", "other", ot0)
			require.NoError(t, err)
			require.False(t, ok, "another subject")
			ok, err = tx.ConsumeCode(ctx, "otp_active", "p", "cus_1", ot0.Add(5*time.Minute))
			require.NoError(t, err)
			require.False(t, ok, "expired")
			ok, err = tx.ConsumeCode(ctx, "otp_active", "p", "cus_1", ot0.Add(time.Minute))
			require.NoError(t, err)
			require.True(t, ok)
			ok, err = tx.ConsumeCode(ctx, "otp_active", "p", "cus_1", ot0.Add(time.Minute))
			require.NoError(t, err)
			require.False(t, ok, "once")
			c, found, err := tx.CodeByID(ctx, "otp_active")
			require.NoError(t, err)
			require.True(t, found)
			require.Equal(t, otp.StatusUsed, c.Status)
			require.Equal(t, ot0.Add(time.Minute), c.UsedAt)
			require.Equal(t, 1, c.Tries)
			_, found, err = tx.CodeByID(ctx, "otp_none")
			require.NoError(t, err)
			require.False(t, found)
			return nil
		}))

		require.NoError(t, in(func(tx *store.Tx) error {
			require.NoError(t, tx.InsertCode(ctx, otpCode("otp_new", "p", otp.StatusActive, 0, ot0.Add(2*time.Minute))))
			last, err := tx.SupersedeCodes(ctx, "p", "cus_1")
			require.NoError(t, err)
			require.Equal(t, ot0.Add(2*time.Minute), last)
			last, err = tx.SupersedeCodes(ctx, "p", "cus_1")
			require.NoError(t, err)
			require.True(t, last.IsZero(), "nothing ACTIVE left")
			c, ok, err := tx.LatestCode(ctx, "p", "cus_1")
			require.NoError(t, err)
			require.True(t, ok)
			require.Equal(t, "otp_new", c.ID)
			require.Equal(t, otp.StatusSuperseded, c.Status)
			return nil
		}))

		require.NoError(t, in(func(tx *store.Tx) error {
			for i := range 4 {
				ok, err := tx.TakePhoneQuota(ctx, "13800000000", "2026-11-22", 3)
				require.NoError(t, err)
				require.Equal(t, i < 3, ok, i)
			}
			ok, err := tx.TakePhoneQuota(ctx, "13800000000", "2026-11-23", 3)
			require.NoError(t, err)
			require.True(t, ok, "a new day")
			ok, err = tx.TakePhoneQuota(ctx, "13800000001", "2026-11-22", 0)
			require.NoError(t, err)
			require.False(t, ok, "a zero cap allows nothing")
			return nil
		}))
	})
}
