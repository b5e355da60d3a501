package store

import (
	"context"
	"time"

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
