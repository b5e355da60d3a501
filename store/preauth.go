package store

import (
	"context"
	"time"

	"paygate"
	"paygate/payment"
)

// captureMethod stores an order's capture method, AUTOMATIC when unset.
func captureMethod(m payment.CaptureMethod) payment.CaptureMethod {
	if m == "" {
		return payment.CaptureAutomatic
	}
	return m
}

// LockExpiredAuthorizations implements payment.Tx with SKIP LOCKED on
// PostgreSQL: the partial index payment_orders_authorized serves it.
func (tx *Tx) LockExpiredAuthorizations(ctx context.Context, now time.Time, limit int) ([]payment.Order, error) {
	return queryMany(ctx, tx.tx, scanOrder, `SELECT `+orderCols+` FROM payment_orders
		WHERE status = 'AUTHORIZED' AND capture_before <= $1 ORDER BY capture_before, id LIMIT $2`+tx.db.skipLocked,
		micros(now), limit)
}

const releaseCols = `attempt_id, order_id, merchant_id, channel, channel_trade_no, kind, amount, authorized, currency, status,
	tries, next_try_at, fail_code, created_at, updated_at, done_at`

var _ payment.ReleaseTx = (*Tx)(nil)

func scanRelease(sc scanner) (payment.ChannelRelease, error) {
	var (
		r                                 payment.ChannelRelease
		kind, cur, status                 string
		next, created, modified, finished int64
	)
	if err := sc.Scan(&r.AttemptID, &r.OrderID, &r.MerchantID, &r.Channel, &r.ChannelTradeNo, &kind, &r.Amount, &r.Authorized,
		&cur, &status, &r.Tries, &next, &r.FailCode, &created, &modified, &finished); err != nil {
		return payment.ChannelRelease{}, err
	}
	r.Kind, r.Currency, r.Status = payment.ReleaseKind(kind), paygate.Currency(cur), payment.ReleaseStatus(status)
	r.NextTryAt, r.CreatedAt, r.UpdatedAt, r.DoneAt = fromMicros(next), fromMicros(created), fromMicros(modified), fromMicros(finished)
	return r, nil
}

func releaseNotFound() error { return paygate.E(paygate.CodeNotFound, "channel release not found") }

// InsertChannelRelease implements payment.ReleaseTx.
func (tx *Tx) InsertChannelRelease(ctx context.Context, r payment.ChannelRelease) error {
	_, err := tx.tx.ExecContext(ctx, `INSERT INTO payment_channel_releases (`+releaseCols+`) VALUES (`+placeholders(1, 16)+`)`,
		r.AttemptID, r.OrderID, r.MerchantID, r.Channel, r.ChannelTradeNo, string(r.Kind), r.Amount, r.Authorized,
		string(r.Currency), string(r.Status), r.Tries, micros(r.NextTryAt), r.FailCode, micros(r.CreatedAt), micros(r.UpdatedAt),
		micros(r.DoneAt))
	return wrapDB(err)
}

// LockChannelRelease implements payment.ReleaseTx: FOR UPDATE on
// PostgreSQL.
func (tx *Tx) LockChannelRelease(ctx context.Context, attemptID string) (payment.ChannelRelease, error) {
	return queryOne(ctx, tx.tx, scanRelease, releaseNotFound, `SELECT `+releaseCols+` FROM payment_channel_releases
		WHERE attempt_id = $1`+tx.db.lockSuffix, attemptID)
}

// UpdateChannelRelease implements payment.ReleaseTx.
func (tx *Tx) UpdateChannelRelease(ctx context.Context, r payment.ChannelRelease) error {
	res, err := tx.tx.ExecContext(ctx, `UPDATE payment_channel_releases SET status = $1, tries = $2, next_try_at = $3,
		fail_code = $4, updated_at = $5, done_at = $6 WHERE attempt_id = $7`,
		string(r.Status), r.Tries, micros(r.NextTryAt), r.FailCode, micros(r.UpdatedAt), micros(r.DoneAt), r.AttemptID)
	return affectedOne(res, err, releaseNotFound)
}

// LockChannelReleasesDue implements payment.ReleaseTx with SKIP LOCKED on
// PostgreSQL: the partial index payment_channel_releases_due serves it.
func (tx *Tx) LockChannelReleasesDue(ctx context.Context, now time.Time, limit int) ([]payment.ChannelRelease, error) {
	return queryMany(ctx, tx.tx, scanRelease, `SELECT `+releaseCols+` FROM payment_channel_releases
		WHERE status = 'PENDING' AND next_try_at <= $1 ORDER BY next_try_at, attempt_id LIMIT $2`+tx.db.skipLocked,
		micros(now), limit)
}

// ChannelReleases returns what the channels were (or are to be) told about
// the order's authorizations, oldest attempt first (the operator's and the
// tests' view; nothing when the order never was authorized at a channel).
func (db *DB) ChannelReleases(ctx context.Context, orderID string) ([]payment.ChannelRelease, error) {
	return queryMany(ctx, db.SQL, scanRelease, `SELECT `+releaseCols+` FROM payment_channel_releases
		WHERE order_id = $1 ORDER BY attempt_id`, orderID)
}
