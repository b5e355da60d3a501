package store

import (
	"context"
	"database/sql"
	"time"

	"paygate"
	"paygate/otp"
)

// OTP returns db as the one-time code service's Store.
func (db *DB) OTP() otp.Store { return otpStore{db} }

type otpStore struct{ db *DB }

var (
	_ otp.Store = otpStore{}
	_ otp.Tx    = (*Tx)(nil)
)

// LatestCode implements otp.Store: one read outside any transaction, the
// rows read to the end and closed.
func (s otpStore) LatestCode(ctx context.Context, purpose, subject string) (otp.Code, bool, error) {
	rows, err := s.db.SQL.QueryContext(ctx, `SELECT `+otpCols+` FROM otp_codes WHERE purpose = $1 AND subject = $2
		ORDER BY created_at DESC, id DESC LIMIT 1`, purpose, subject)
	if err != nil {
		return otp.Code{}, false, wrapDB(err)
	}
	defer rows.Close()
	if !rows.Next() {
		return otp.Code{}, false, wrapDB(rows.Err())
	}
	c, err := scanOTP(rows)
	if err != nil {
		return otp.Code{}, false, wrapDB(err)
	}
	return c, true, wrapDB(rows.Close())
}

// InTx implements otp.Store.
func (s otpStore) InTx(ctx context.Context, fn func(otp.Tx) error) error {
	return s.db.InTx(ctx, func(tx *Tx) error { return fn(tx) })
}

const otpCols = `id, purpose, subject, phone, code_mac, key_id, status, tries, max_tries, created_at, expires_at, used_at`

func scanOTP(sc scanner) (otp.Code, error) {
	var c otp.Code
	var status string
	var created, expires int64
	var used sql.NullInt64
	if err := sc.Scan(&c.ID, &c.Purpose, &c.Subject, &c.Phone, &c.MAC, &c.KeyID, &status, &c.Tries, &c.MaxTries,
		&created, &expires, &used); err != nil {
		return otp.Code{}, err
	}
	c.Status = otp.Status(status)
	c.CreatedAt, c.ExpiresAt, c.UsedAt = fromMicros(created), fromMicros(expires), fromMicros(used.Int64)
	return c, nil
}

// otpQuery runs a query of otpCols and returns every row; rows are always
// read to the end and closed (see DESIGN.md on SQLite statements).
func (tx *Tx) otpQuery(ctx context.Context, query string, args ...any) ([]otp.Code, error) {
	rows, err := tx.tx.QueryContext(ctx, query, args...)
	if err != nil {
		return nil, wrapDB(err)
	}
	defer rows.Close()
	var out []otp.Code
	for rows.Next() {
		c, err := scanOTP(rows)
		if err != nil {
			return nil, wrapDB(err)
		}
		out = append(out, c)
	}
	if err := rows.Err(); err != nil {
		return nil, wrapDB(err)
	}
	return out, wrapDB(rows.Close())
}

func (tx *Tx) otpOne(ctx context.Context, query string, args ...any) (otp.Code, bool, error) {
	cs, err := tx.otpQuery(ctx, query, args...)
	if err != nil || len(cs) == 0 {
		return otp.Code{}, false, err
	}
	return cs[0], true, nil
}

// LastIssuedAt implements otp.Tx.
func (tx *Tx) LastIssuedAt(ctx context.Context, purpose, subject string) (time.Time, error) {
	var at sql.NullInt64
	err := tx.tx.QueryRowContext(ctx, `SELECT MAX(created_at) FROM otp_codes WHERE purpose = $1 AND subject = $2`,
		purpose, subject).Scan(&at)
	return fromMicros(at.Int64), wrapDB(err)
}

// TakePhoneQuota implements otp.Tx in one statement: the upsert counts only
// while the count is below cap, so concurrent issues never overshoot it.
func (tx *Tx) TakePhoneQuota(ctx context.Context, phone, day string, cap int) (bool, error) {
	if cap <= 0 {
		return false, nil
	}
	res, err := tx.tx.ExecContext(ctx, `INSERT INTO otp_phone_quota (phone, day, sent) VALUES ($1, $2, 1)
		ON CONFLICT (phone, day) DO UPDATE SET sent = otp_phone_quota.sent + 1 WHERE otp_phone_quota.sent < $3`,
		phone, day, cap)
	if err != nil {
		return false, wrapDB(err)
	}
	n, err := res.RowsAffected()
	return n == 1, wrapDB(err)
}

// SupersedeCodes implements otp.Tx.
func (tx *Tx) SupersedeCodes(ctx context.Context, purpose, subject string) (time.Time, error) {
	cs, err := tx.otpQuery(ctx, `UPDATE otp_codes SET status = 'SUPERSEDED'
		WHERE purpose = $1 AND subject = $2 AND status = 'ACTIVE' RETURNING `+otpCols, purpose, subject)
	var last time.Time
	for _, c := range cs {
		if c.CreatedAt.After(last) {
			last = c.CreatedAt
		}
	}
	return last, err
}

// InsertCode implements otp.Tx: the partial unique index on ACTIVE codes
// turns a concurrent issue for the same purpose and subject into
// paygate.ErrRetry (the transaction runs again and sees the winner).
func (tx *Tx) InsertCode(ctx context.Context, c otp.Code) error {
	res, err := tx.tx.ExecContext(ctx, `INSERT INTO otp_codes (`+otpCols+`) VALUES (`+placeholders(1, 12)+`)
		ON CONFLICT (purpose, subject) WHERE status = 'ACTIVE' DO NOTHING`,
		c.ID, c.Purpose, c.Subject, c.Phone, c.MAC, c.KeyID, string(c.Status), c.Tries, c.MaxTries,
		micros(c.CreatedAt), micros(c.ExpiresAt), nullMicros(c.UsedAt))
	if err != nil {
		return wrapDB(err)
	}
	n, err := res.RowsAffected()
	if err != nil {
		return wrapDB(err)
	}
	if n != 1 {
		return paygate.ErrRetry
	}
	return nil
}

// ClaimTry implements otp.Tx with one conditional UPDATE; on PostgreSQL a
// concurrent claimer waits for this transaction and then finds the row no
// longer qualifies if it was consumed.
func (tx *Tx) ClaimTry(ctx context.Context, purpose, subject string, now time.Time) (otp.Code, bool, error) {
	return tx.otpOne(ctx, `UPDATE otp_codes SET tries = tries + 1
		WHERE purpose = $1 AND subject = $2 AND status = 'ACTIVE' AND expires_at > $3 AND tries < max_tries
		RETURNING `+otpCols, purpose, subject, micros(now))
}

// ConsumeCode implements otp.Tx.
func (tx *Tx) ConsumeCode(ctx context.Context, id, purpose, subject string, now time.Time) (bool, error) {
	res, err := tx.tx.ExecContext(ctx, `UPDATE otp_codes SET status = 'USED', used_at = $4
		WHERE id = $1 AND purpose = $2 AND subject = $3 AND status = 'ACTIVE' AND expires_at > $4`,
		id, purpose, subject, micros(now))
	if err != nil {
		return false, wrapDB(err)
	}
	n, err := res.RowsAffected()
	return n == 1, wrapDB(err)
}

// LatestCode implements otp.Tx.
func (tx *Tx) LatestCode(ctx context.Context, purpose, subject string) (otp.Code, bool, error) {
	return tx.otpOne(ctx, `SELECT `+otpCols+` FROM otp_codes WHERE purpose = $1 AND subject = $2
		ORDER BY created_at DESC, id DESC LIMIT 1`, purpose, subject)
}

// CodeByID implements otp.Tx.
func (tx *Tx) CodeByID(ctx context.Context, id string) (otp.Code, bool, error) {
	return tx.otpOne(ctx, `SELECT `+otpCols+` FROM otp_codes WHERE id = $1`, id)
}

// SupersededMACs implements otp.Tx.
func (tx *Tx) SupersededMACs(ctx context.Context, purpose, subject string, since time.Time) ([]otp.Code, error) {
	return tx.otpQuery(ctx, `SELECT `+otpCols+` FROM otp_codes
		WHERE purpose = $1 AND subject = $2 AND status = 'SUPERSEDED' AND created_at > $3
		ORDER BY created_at DESC LIMIT 20`, purpose, subject, micros(since))
}

// DeleteCodes implements otp.Tx.
func (tx *Tx) DeleteCodes(ctx context.Context, before time.Time, day string, limit int) (int64, error) {
	res, err := tx.tx.ExecContext(ctx, `DELETE FROM otp_codes WHERE id IN (SELECT id FROM otp_codes
		WHERE expires_at < $1 ORDER BY expires_at LIMIT $2)`, micros(before), limit)
	if err != nil {
		return 0, wrapDB(err)
	}
	n, err := res.RowsAffected()
	if err != nil {
		return 0, wrapDB(err)
	}
	if _, err := tx.tx.ExecContext(ctx, `DELETE FROM otp_phone_quota WHERE day < $1`, day); err != nil {
		return 0, wrapDB(err)
	}
	return n, nil
}
