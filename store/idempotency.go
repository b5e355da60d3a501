package store

import (
	"context"
	"database/sql"
	"errors"
	"time"

	"paygate"
)

// IdempotencyKeys persists the results of requests sent with an
// Idempotency-Key (table idempotency_keys, migration 00016); it implements
// httpapi.IdempotencyStore. Every write runs in its own transaction (on
// SQLite through the writer queue).
type IdempotencyKeys struct{ db *DB }

// IdempotencyKeys returns db's Idempotency-Key store.
func (db *DB) IdempotencyKeys() IdempotencyKeys { return IdempotencyKeys{db} }

// IdempotentRecord is a key's row: the request's hash, and its answer once
// it has one (Status 0 while the first request runs).
type IdempotentRecord struct {
	RequestHash string
	Status      int
	Body        []byte
	CreatedAt   time.Time
}

// BeginIdempotent claims (merchantID, key) for a request with requestHash
// at now. started is true when the caller runs the request: the key was
// new, or its only holder started before staleBefore without finishing
// (its process died; the command it ran was one transaction, so it either
// committed whole or not at all, and running it again is as safe as any
// retry). Otherwise prior is the key's row, finished or still running.
// Errors: CodeUnavailable, CodeInternal.
func (s IdempotencyKeys) BeginIdempotent(ctx context.Context, merchantID, key, requestHash string, now, staleBefore time.Time) (started bool, prior IdempotentRecord, err error) {
	err = s.db.InTx(ctx, func(tx *Tx) error {
		res, err := tx.tx.ExecContext(ctx, `INSERT INTO idempotency_keys (merchant_id, idem_key, request_hash, status, body, created_at)
			VALUES ($1, $2, $3, 0, '', $4) ON CONFLICT (merchant_id, idem_key) DO NOTHING`, merchantID, key, requestHash, micros(now))
		if err != nil {
			return wrapDB(err)
		}
		if n, err := res.RowsAffected(); err != nil {
			return wrapDB(err)
		} else if n == 1 {
			started = true
			return nil
		}
		var body string
		var created int64
		err = tx.tx.QueryRowContext(ctx, `SELECT request_hash, status, body, created_at FROM idempotency_keys
			WHERE merchant_id = $1 AND idem_key = $2`+s.db.lockSuffix, merchantID, key).Scan(&prior.RequestHash, &prior.Status, &body, &created)
		if errors.Is(err, sql.ErrNoRows) {
			return paygate.ErrRetry // deleted between the two statements
		}
		if err != nil {
			return wrapDB(err)
		}
		prior.Body, prior.CreatedAt = []byte(body), fromMicros(created)
		if prior.Status == 0 && prior.RequestHash == requestHash && prior.CreatedAt.Before(staleBefore) {
			if _, err := tx.tx.ExecContext(ctx, `UPDATE idempotency_keys SET created_at = $3 WHERE merchant_id = $1 AND idem_key = $2`,
				merchantID, key, micros(now)); err != nil {
				return wrapDB(err)
			}
			started, prior = true, IdempotentRecord{}
		}
		return nil
	})
	return started, prior, err
}

// FinishIdempotent records the answer of the request holding the key.
// Errors: CodeUnavailable, CodeInternal.
func (s IdempotencyKeys) FinishIdempotent(ctx context.Context, merchantID, key string, status int, body []byte) error {
	_, err := s.db.execWrite(ctx, `UPDATE idempotency_keys SET status = $3, body = $4 WHERE merchant_id = $1 AND idem_key = $2`,
		merchantID, key, status, string(body))
	return wrapDB(err)
}

// AbandonIdempotent deletes a key whose request did not finish with an
// answer worth keeping (a server error, whose transaction rolled back), so
// that a retry runs again. Errors: CodeUnavailable, CodeInternal.
func (s IdempotencyKeys) AbandonIdempotent(ctx context.Context, merchantID, key string) error {
	_, err := s.db.execWrite(ctx, `DELETE FROM idempotency_keys WHERE merchant_id = $1 AND idem_key = $2 AND status = 0`, merchantID, key)
	return wrapDB(err)
}

// DeleteIdempotentBefore deletes keys created before t and reports how
// many. Errors: CodeUnavailable, CodeInternal.
func (s IdempotencyKeys) DeleteIdempotentBefore(ctx context.Context, t time.Time) (int64, error) {
	res, err := s.db.execWrite(ctx, `DELETE FROM idempotency_keys WHERE created_at < $1`, micros(t))
	if err != nil {
		return 0, wrapDB(err)
	}
	n, err := res.RowsAffected()
	return n, wrapDB(err)
}
