package store_test

import (
	"context"
	"io/fs"
	"sync"
	"testing"
	"testing/fstest"
	"time"

	"github.com/stretchr/testify/require"

	"paygate"
	"paygate/channel"
	"paygate/payment"
	"paygate/store"
	"paygate/store/storetest"
)

// TestPreauthOrderFields round-trips an authorization's fields and finds
// expired authorizations, and only those.
func TestPreauthOrderFields(t *testing.T) {
	t.Parallel()
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		ps := db.Payments()
		a := order("ord_a1", "m1", "no_a00001", pt0.Add(time.Hour))
		a.CaptureMethod = payment.CaptureManual
		b := order("ord_a2", "m1", "no_a00002", pt0.Add(time.Hour))
		b.CaptureMethod = payment.CaptureManual
		c := order("ord_a3", "m1", "no_a00003", pt0.Add(time.Hour))
		require.NoError(t, ps.InTx(ctx, func(tx payment.Tx) error {
			for _, o := range []payment.Order{a, b, c} {
				if _, err := tx.InsertOrder(ctx, o); err != nil {
					return err
				}
			}
			return nil
		}))
		a.Status, a.Amount.Authorized, a.AuthorizeTime, a.CaptureBefore = payment.StatusAuthorized, 100, pt0, pt0.Add(24*time.Hour)
		a.TransactionID, a.Channel = "pay_a1", "sim"
		b.Status, b.Amount.Authorized, b.AuthorizeTime, b.CaptureBefore = payment.StatusAuthorized, 100, pt0, pt0.Add(48*time.Hour)
		require.NoError(t, ps.InTx(ctx, func(tx payment.Tx) error {
			if err := tx.UpdateOrder(ctx, a); err != nil {
				return err
			}
			return tx.UpdateOrder(ctx, b)
		}))
		got, err := ps.Order(ctx, "m1", a.ID)
		require.NoError(t, err)
		require.Equal(t, a, got)
		for _, tc := range []struct {
			now  time.Time
			want []string
		}{
			{pt0.Add(24*time.Hour - time.Microsecond), nil},
			{pt0.Add(24 * time.Hour), []string{a.ID}},
			{pt0.Add(72 * time.Hour), []string{a.ID, b.ID}},
		} {
			var ids []string
			require.NoError(t, ps.InTx(ctx, func(tx payment.Tx) error {
				os, err := tx.LockExpiredAuthorizations(ctx, tc.now, 10)
				ids = nil
				for _, o := range os {
					ids = append(ids, o.ID)
				}
				return err
			}))
			require.Equal(t, tc.want, ids, tc.now)
		}
		a.Status, a.Amount.Captured, a.Amount.PayerTotal = payment.StatusSuccess, 60, 60
		require.NoError(t, ps.InTx(ctx, func(tx payment.Tx) error { return tx.UpdateOrder(ctx, a) }))
		got, err = ps.Order(ctx, "m1", a.ID)
		require.NoError(t, err)
		require.Equal(t, a, got)
	})
}

// TestPreauthMigrationKeepsData migrates a database holding orders,
// attempts and refunds from version 10 to the latest: SQLite rebuilds
// payment_orders, and every row, reference and constraint survives.
func TestPreauthMigrationKeepsData(t *testing.T) {
	t.Parallel()
	for _, d := range []store.Dialect{store.SQLite, store.Postgres} {
		t.Run(string(d), func(t *testing.T) {
			t.Parallel()
			ctx := context.Background()
			db, err := store.Open(ctx, storetest.URL(t, d), store.Options{MaxOpenConns: 4})
			require.NoError(t, err)
			t.Cleanup(func() { db.Close() })
			all := store.MigrationsFS(d)
			upTo10 := fstest.MapFS{}
			require.NoError(t, fs.WalkDir(all, ".", func(p string, e fs.DirEntry, err error) error {
				if err != nil || e.IsDir() || p > "00010_~" {
					return err
				}
				b, err := fs.ReadFile(all, p)
				upTo10[p] = &fstest.MapFile{Data: b}
				return err
			}))
			v, err := store.MigrateFS(ctx, db, upTo10)
			require.NoError(t, err)
			require.Equal(t, int64(10), v)
			_, err = db.SQL.ExecContext(ctx, `INSERT INTO payment_orders (id, merchant_id, out_trade_no, description, amount, currency,
				status, notify_url, time_expire, sandbox, request_hash, payer_total, created_at, updated_at)
				VALUES ('ord_m1', 'm1', 'no_m00001', 'd', 100, 'CNY', 'REFUND', 'https://m.example.com/n', 1, TRUE, 'h', 100, 1, 1)`)
			require.NoError(t, err)
			_, err = db.SQL.ExecContext(ctx, `INSERT INTO payment_attempts (id, order_id, merchant_id, channel, amount, currency, status,
				created_at, updated_at) VALUES ('pay_m1', 'ord_m1', 'm1', 'sim', 100, 'CNY', 'SUCCESS', 1, 1)`)
			require.NoError(t, err)
			_, err = db.SQL.ExecContext(ctx, `INSERT INTO payment_refunds (id, merchant_id, out_refund_no, order_id, out_trade_no,
				transaction_id, channel, notify_url, status, amount, total, currency, funds_source, if_insufficient, request_hash, sandbox,
				created_at, updated_at) VALUES ('rfd_m1', 'm1', 'r1', 'ord_m1', 'no_m00001', 'pay_m1', 'sim', 'https://m.example.com/n',
				'SUCCESS', 10, 100, 'CNY', 'PENDING', 'FAIL', 'h', TRUE, 1, 1)`)
			require.NoError(t, err)

			_, err = db.Migrate(ctx)
			require.NoError(t, err)
			o, err := db.Payments().Order(ctx, "m1", "ord_m1")
			require.NoError(t, err)
			require.Equal(t, payment.StatusRefund, o.Status)
			require.Equal(t, payment.CaptureAutomatic, o.CaptureMethod)
			require.Equal(t, int64(100), o.Amount.PayerTotal)
			as, err := db.Payments().OrderAttempts(ctx, "ord_m1")
			require.NoError(t, err)
			require.Len(t, as, 1)
			require.Equal(t, channel.StatusSuccess, as[0].Status)
			rs, err := db.Payments().OrderRefunds(ctx, "ord_m1")
			require.NoError(t, err)
			require.Len(t, rs, 1)

			// The references and checks still hold.
			_, err = db.SQL.ExecContext(ctx, `INSERT INTO payment_attempts (id, order_id, merchant_id, channel, amount, currency, status,
				created_at, updated_at) VALUES ('pay_m2', 'ord_nope', 'm1', 'sim', 100, 'CNY', 'SUCCESS', 1, 1)`)
			require.Error(t, err, "attempts still reference orders")
			_, err = db.SQL.ExecContext(ctx, `UPDATE payment_orders SET status = 'BOGUS' WHERE id = 'ord_m1'`)
			require.Error(t, err, "the status is still checked")
			_, err = db.SQL.ExecContext(ctx, `UPDATE payment_orders SET capture_method = 'LATER' WHERE id = 'ord_m1'`)
			require.Error(t, err, "the capture method is checked")
			_, err = db.SQL.ExecContext(ctx, `UPDATE payment_orders SET status = 'AUTHORIZED' WHERE id = 'ord_m1'`)
			require.NoError(t, err, "AUTHORIZED is a status")
			require.NoError(t, db.Ping(ctx))
		})
	}
}

// TestChannelReleases round-trips a channel release, refuses a second one
// for an attempt and one without its attempt, finds due PENDING releases
// only, and lets concurrent claimers take disjoint rows on PostgreSQL.
func TestChannelReleases(t *testing.T) {
	t.Parallel()
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		ps := db.Payments()
		o := order("ord_r1", "m1", "no_r00001", pt0.Add(time.Hour))
		var rs []payment.ChannelRelease
		require.NoError(t, ps.InTx(ctx, func(tx payment.Tx) error {
			if _, err := tx.InsertOrder(ctx, o); err != nil {
				return err
			}
			for i, id := range []string{"pay_r1", "pay_r2", "pay_r3"} {
				if err := tx.InsertAttempt(ctx, payment.Attempt{ID: id, OrderID: o.ID, MerchantID: "m1", Channel: "sim", Amount: 100,
					Currency: "CNY", Status: channel.StatusSuccess, CreatedAt: pt0, UpdatedAt: pt0}); err != nil {
					return err
				}
				r := payment.ChannelRelease{AttemptID: id, OrderID: o.ID, MerchantID: "m1", Channel: "sim", ChannelTradeNo: "sim_" + id,
					Kind: payment.ReleaseCapture, Amount: 40, Authorized: 100, Currency: "CNY", Status: payment.ReleasePending,
					NextTryAt: pt0.Add(time.Duration(i) * time.Second), CreatedAt: pt0, UpdatedAt: pt0}
				if err := tx.InsertChannelRelease(ctx, r); err != nil {
					return err
				}
				rs = append(rs, r)
			}
			return nil
		}))
		got, err := db.ChannelReleases(ctx, o.ID)
		require.NoError(t, err)
		require.Equal(t, rs, got)

		for name, r := range map[string]payment.ChannelRelease{
			"second for an attempt": rs[0],
			"no such attempt":       {AttemptID: "pay_none", OrderID: o.ID, Kind: payment.ReleaseVoid, Authorized: 100, Status: payment.ReleasePending},
			"capture above":         {AttemptID: "pay_r9", OrderID: o.ID, Kind: payment.ReleaseCapture, Amount: 101, Authorized: 100, Status: payment.ReleasePending},
			"unknown status":        {AttemptID: "pay_r9", OrderID: o.ID, Kind: payment.ReleaseVoid, Authorized: 100, Status: "LOST"},
		} {
			err := ps.InTx(ctx, func(tx payment.Tx) error { return tx.InsertChannelRelease(ctx, r) })
			require.Error(t, err, name)
		}

		// Due and PENDING only, earliest first.
		done := rs[0]
		done.Status, done.Tries, done.DoneAt, done.UpdatedAt = payment.ReleaseDone, 1, pt0.Add(time.Second), pt0.Add(time.Second)
		require.NoError(t, ps.InTx(ctx, func(tx payment.Tx) error {
			if err := tx.UpdateChannelRelease(ctx, done); err != nil {
				return err
			}
			l, err := tx.LockChannelRelease(ctx, done.AttemptID)
			require.Equal(t, done, l)
			return err
		}))
		due := func(now time.Time) []string {
			var ids []string
			require.NoError(t, ps.InTx(ctx, func(tx payment.Tx) error {
				got, err := tx.LockChannelReleasesDue(ctx, now, 10)
				ids = ids[:0]
				for _, r := range got {
					ids = append(ids, r.AttemptID)
				}
				return err
			}))
			return ids
		}
		require.Empty(t, due(pt0.Add(time.Second-time.Microsecond)))
		require.Equal(t, []string{"pay_r2"}, due(pt0.Add(time.Second)))
		require.Equal(t, []string{"pay_r2", "pay_r3"}, due(pt0.Add(time.Hour)))
		require.NoError(t, ps.InTx(ctx, func(tx payment.Tx) error {
			_, err := tx.LockChannelRelease(ctx, "pay_none")
			require.Equal(t, "NOT_FOUND", string(paygate.CodeOf(err)))
			require.Equal(t, "NOT_FOUND", string(paygate.CodeOf(tx.UpdateChannelRelease(ctx, payment.ChannelRelease{AttemptID: "pay_none"}))))
			return nil
		}))

		if db.Dialect != store.Postgres {
			return
		}
		// A claimer skips the rows another holds.
		hold := make(chan struct{})
		release := make(chan struct{})
		var once sync.Once
		go func() {
			_ = ps.InTx(ctx, func(tx payment.Tx) error {
				_, err := tx.LockChannelReleasesDue(ctx, pt0.Add(time.Hour), 1)
				once.Do(func() { close(hold) })
				<-release
				return err
			})
		}()
		<-hold
		require.Equal(t, []string{"pay_r3"}, due(pt0.Add(time.Hour)), "pay_r2 is held by the other claimer")
		close(release)
	})
}
