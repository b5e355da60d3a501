package store

import (
	"context"
	"time"

	"paygate"
)

// Sessions persists customers' login sessions (table customer_sessions,
// migration 00008); it implements web.SessionStore. A session is keyed by
// the hex SHA-256 of its token: the token itself is never stored. Every
// write runs in its own transaction (on SQLite through the writer queue);
// every read closes its rows.
type Sessions struct{ db *DB }

// Sessions returns db's session store.
func (db *DB) Sessions() Sessions { return Sessions{db} }

func sessionNotFound() error { return paygate.E(paygate.CodeNotFound, "session not found") }

// CreateSession stores a new session of the customer. idleUntil is capped
// at expiresAt. Errors: CodeInvalidArgument (empty hash or customer,
// expiresAt not after createdAt), CodeConflict (the hash exists: a token
// was reused), CodeInternal (e.g. an unknown customer, refused by the
// foreign key), CodeUnavailable.
func (s Sessions) CreateSession(ctx context.Context, tokenHash, customerID string, createdAt, idleUntil, expiresAt time.Time) error {
	if tokenHash == "" || customerID == "" || !expiresAt.After(createdAt) {
		return paygate.E(paygate.CodeInvalidArgument, "store: a session needs a token hash, a customer and a lifetime")
	}
	if idleUntil.After(expiresAt) {
		idleUntil = expiresAt
	}
	return s.db.InTx(ctx, func(tx *Tx) error {
		res, err := tx.tx.ExecContext(ctx, `INSERT INTO customer_sessions (token_hash, customer_id, created_at, idle_expires_at, expires_at)
			VALUES ($1, $2, $3, $4, $5) ON CONFLICT (token_hash) DO NOTHING`,
			tokenHash, customerID, micros(createdAt), micros(idleUntil), micros(expiresAt))
		if err != nil {
			return wrapDB(err)
		}
		n, err := res.RowsAffected()
		if err != nil {
			return wrapDB(err)
		}
		if n != 1 {
			return paygate.E(paygate.CodeConflict, "store: the session exists already")
		}
		return nil
	})
}

// TouchSession finds the session live at now (its idle expiry after now,
// which implies its absolute expiry is too), slides its idle expiry to
// idleUntil (never past its absolute expiry, never backwards) in the same
// statement, and returns its customer. Errors: CodeNotFound (no such
// session, or it has expired), CodeUnavailable, CodeInternal.
func (s Sessions) TouchSession(ctx context.Context, tokenHash string, now, idleUntil time.Time) (string, error) {
	var id string
	err := s.db.InTx(ctx, func(tx *Tx) error {
		var err error
		id, err = queryOne(ctx, tx.tx, func(sc scanner) (string, error) {
			var v string
			return v, sc.Scan(&v)
		}, sessionNotFound, `UPDATE customer_sessions SET idle_expires_at = CASE
				WHEN $3 >= expires_at THEN expires_at
				WHEN $3 > idle_expires_at THEN $3
				ELSE idle_expires_at END
			WHERE token_hash = $1 AND idle_expires_at > $2 RETURNING customer_id`,
			tokenHash, micros(now), micros(idleUntil))
		return err
	})
	return id, err
}

// SessionTimes returns the session's creation, idle expiry and absolute
// expiry, live or not (tests and operators). Errors: CodeNotFound.
func (s Sessions) SessionTimes(ctx context.Context, tokenHash string) (created, idleUntil, expiresAt time.Time, err error) {
	type times struct{ c, i, e int64 }
	t, err := queryOne(ctx, s.db.SQL, func(sc scanner) (times, error) {
		var v times
		return v, sc.Scan(&v.c, &v.i, &v.e)
	}, sessionNotFound, `SELECT created_at, idle_expires_at, expires_at FROM customer_sessions WHERE token_hash = $1`, tokenHash)
	return fromMicros(t.c), fromMicros(t.i), fromMicros(t.e), err
}

// DeleteSession deletes the session; deleting a missing one is not an
// error. Errors: CodeUnavailable, CodeInternal.
func (s Sessions) DeleteSession(ctx context.Context, tokenHash string) error {
	_, err := s.exec(ctx, `DELETE FROM customer_sessions WHERE token_hash = $1`, tokenHash)
	return err
}

// DeleteCustomerSessions deletes every session of the customer (after a
// password change, or when an operator freezes the customer) and returns
// how many it deleted. Errors: CodeUnavailable, CodeInternal.
func (s Sessions) DeleteCustomerSessions(ctx context.Context, customerID string) (int64, error) {
	return s.exec(ctx, `DELETE FROM customer_sessions WHERE customer_id = $1`, customerID)
}

// DeleteExpiredSessions deletes up to limit sessions expired at now
// (oldest idle expiry first) and returns how many it deleted. Errors:
// CodeUnavailable, CodeInternal.
func (s Sessions) DeleteExpiredSessions(ctx context.Context, now time.Time, limit int) (int64, error) {
	if limit <= 0 {
		return 0, nil
	}
	return s.exec(ctx, `DELETE FROM customer_sessions WHERE token_hash IN (SELECT token_hash FROM customer_sessions
		WHERE idle_expires_at <= $1 ORDER BY idle_expires_at LIMIT $2)`, micros(now), limit)
}

func (s Sessions) exec(ctx context.Context, query string, args ...any) (int64, error) {
	var n int64
	err := s.db.InTx(ctx, func(tx *Tx) error {
		res, err := tx.tx.ExecContext(ctx, query, args...)
		if err != nil {
			return wrapDB(err)
		}
		n, err = res.RowsAffected()
		return wrapDB(err)
	})
	return n, err
}
