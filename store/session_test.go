package store_test

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"paygate"
	"paygate/customer"
	"paygate/store"
	"paygate/store/storetest"
)

var st0 = time.Date(2026, 11, 22, 2, 0, 0, 0, time.UTC)

func insertCustomers(t *testing.T, db *store.DB, ids ...string) {
	t.Helper()
	ctx := context.Background()
	require.NoError(t, db.Customers().InTx(ctx, func(tx customer.Tx) error {
		for i, id := range ids {
			ok, err := tx.InsertCustomer(ctx, customerRecord(id, fmt.Sprintf("1390000%04d", i), ""))
			require.NoError(t, err)
			require.True(t, ok)
		}
		return nil
	}))
}

func TestSessionStore(t *testing.T) {
	t.Parallel()
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		s := db.Sessions()
		insertCustomers(t, db, "cus_a", "cus_b")
		idle, max := 15*time.Minute, 12*time.Hour
		require.NoError(t, s.CreateSession(ctx, "h1", "cus_a", st0, st0.Add(idle), st0.Add(max)))
		require.NoError(t, s.CreateSession(ctx, "h2", "cus_a", st0, st0.Add(idle), st0.Add(max)))
		require.NoError(t, s.CreateSession(ctx, "h3", "cus_b", st0, st0.Add(idle), st0.Add(max)))
		require.Equal(t, paygate.CodeConflict, paygate.CodeOf(s.CreateSession(ctx, "h1", "cus_b", st0, st0.Add(idle), st0.Add(max))))
		require.Equal(t, paygate.CodeInvalidArgument, paygate.CodeOf(s.CreateSession(ctx, "", "cus_b", st0, st0.Add(idle), st0.Add(max))))
		require.Equal(t, paygate.CodeInvalidArgument, paygate.CodeOf(s.CreateSession(ctx, "h9", "cus_b", st0, st0, st0)))
		require.Error(t, s.CreateSession(ctx, "h9", "cus_nobody", st0, st0.Add(idle), st0.Add(max)), "foreign key")

		times := func(h string) (time.Time, time.Time) {
			t.Helper()
			_, i, e, err := s.SessionTimes(ctx, h)
			require.NoError(t, err)
			return i, e
		}
		for _, tc := range []struct {
			name     string
			hash     string
			now      time.Time
			wantID   string
			wantIdle time.Time // after the touch; zero: unchanged
		}{
			{"live: slides", "h1", st0.Add(10 * time.Minute), "cus_a", st0.Add(25 * time.Minute)},
			{"live again", "h1", st0.Add(24 * time.Minute), "cus_a", st0.Add(39 * time.Minute)},
			{"idle exactly at expiry is dead", "h2", st0.Add(idle), "", st0.Add(idle)},
			{"unknown", "nope", st0, "", time.Time{}},
		} {
			id, err := s.TouchSession(ctx, tc.hash, tc.now, tc.now.Add(idle))
			if tc.wantID == "" {
				require.Equal(t, paygate.CodeNotFound, paygate.CodeOf(err), tc.name)
			} else {
				require.NoError(t, err, tc.name)
				require.Equal(t, tc.wantID, id, tc.name)
			}
			if !tc.wantIdle.IsZero() {
				i, _ := times(tc.hash)
				require.Equal(t, tc.wantIdle, i, tc.name)
			}
		}

		// Sliding never passes the absolute expiry, and a session dies with it.
		require.NoError(t, s.CreateSession(ctx, "short", "cus_b", st0, st0.Add(idle), st0.Add(20*time.Minute)))
		_, err := s.TouchSession(ctx, "short", st0.Add(14*time.Minute), st0.Add(29*time.Minute))
		require.NoError(t, err)
		i, e := times("short")
		require.Equal(t, e, i)
		require.Equal(t, st0.Add(20*time.Minute), i)
		_, err = s.TouchSession(ctx, "short", st0.Add(20*time.Minute), st0.Add(35*time.Minute))
		require.Equal(t, paygate.CodeNotFound, paygate.CodeOf(err))

		// Clean-up of expired sessions, bounded by the limit.
		n, err := s.DeleteExpiredSessions(ctx, st0.Add(30*time.Minute), 1)
		require.NoError(t, err)
		require.EqualValues(t, 1, n)
		n, err = s.DeleteExpiredSessions(ctx, st0.Add(30*time.Minute), 100)
		require.NoError(t, err)
		require.EqualValues(t, 2, n, "h2, h3 and short were idle; h1 was touched to 39 min")
		_, _, _, err = s.SessionTimes(ctx, "h1")
		require.NoError(t, err)

		require.NoError(t, s.DeleteSession(ctx, "h1"))
		require.NoError(t, s.DeleteSession(ctx, "h1"), "deleting twice is fine")
		_, err = s.TouchSession(ctx, "h1", st0, st0.Add(idle))
		require.Equal(t, paygate.CodeNotFound, paygate.CodeOf(err))

		for _, h := range []string{"a1", "a2"} {
			require.NoError(t, s.CreateSession(ctx, h, "cus_a", st0, st0.Add(idle), st0.Add(max)))
		}
		require.NoError(t, s.CreateSession(ctx, "b1", "cus_b", st0, st0.Add(idle), st0.Add(max)))
		n, err = s.DeleteCustomerSessions(ctx, "cus_a")
		require.NoError(t, err)
		require.EqualValues(t, 2, n)
		_, err = s.TouchSession(ctx, "b1", st0, st0.Add(idle))
		require.NoError(t, err, "another customer's session stays")
	})
}

// TestSessionStoreConcurrentTouch touches one session from many goroutines:
// every touch succeeds and the idle expiry ends at the latest.
func TestSessionStoreConcurrentTouch(t *testing.T) {
	t.Parallel()
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		s := db.Sessions()
		insertCustomers(t, db, "cus_a")
		require.NoError(t, s.CreateSession(ctx, "h", "cus_a", st0, st0.Add(15*time.Minute), st0.Add(12*time.Hour)))
		var wg sync.WaitGroup
		errs := make(chan error, 20)
		for i := range 20 {
			wg.Go(func() {
				now := st0.Add(time.Duration(i) * time.Second)
				_, err := s.TouchSession(ctx, "h", now, now.Add(15*time.Minute))
				errs <- err
			})
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			require.NoError(t, err)
		}
		_, idle, _, err := s.SessionTimes(ctx, "h")
		require.NoError(t, err)
		require.Equal(t, st0.Add(19*time.Second+15*time.Minute), idle)
	})
}
