package store

import (
	"context"
	"database/sql"
	"errors"
	"slices"
	"strings"
	"time"

	"paygate"
	"paygate/sms"
)

// SMS returns db as the SMS outbox's Store.
func (db *DB) SMS() sms.Store { return smsStore{db} }

// SMSInbox returns db as the sandbox SMS inbox.
func (db *DB) SMSInbox() sms.Inbox { return smsStore{db} }

type smsStore struct{ db *DB }

var (
	_ sms.Store = smsStore{}
	_ sms.Inbox = smsStore{}
	_ sms.Tx    = (*Tx)(nil)
)

// InsertSMS implements sms.Tx: one multi-row INSERT, each message PENDING
// and due at its CreatedAt. An id that exists already fails with
// CodeIDConflict.
func (tx *Tx) InsertSMS(ctx context.Context, msgs []sms.Sealed) error {
	if len(msgs) == 0 {
		return nil
	}
	args := make([]any, 0, 10*len(msgs))
	for _, m := range msgs {
		at := micros(m.CreatedAt)
		args = append(args, m.ID, m.Phone, m.Purpose, m.Body, m.KeyID, string(sms.StatusPending), at,
			nullMicros(m.SendBefore), at, at)
	}
	res, err := tx.tx.ExecContext(ctx, `INSERT INTO sms_messages (id, phone, purpose, body_sealed, key_id, status,
		next_attempt_at, send_before, created_at, updated_at)
		VALUES `+tuples(len(msgs), "", "", "", "", "", "", "", "BIGINT", "", "")+` ON CONFLICT (id) DO NOTHING`, args...)
	if err != nil {
		return wrapDB(err)
	}
	n, err := res.RowsAffected()
	if err != nil {
		return wrapDB(err)
	}
	if n != int64(len(msgs)) {
		return paygate.EField(paygate.CodeIDConflict, "id", "a message id is already in the outbox")
	}
	return nil
}

// ClaimDue implements sms.Store.
func (s smsStore) ClaimDue(ctx context.Context, owner string, now, until time.Time, limit int) ([]sms.Claim, error) {
	if limit <= 0 {
		return nil, nil
	}
	var out []sms.Claim
	err := s.db.InTx(ctx, func(tx *Tx) error {
		out = out[:0]
		rows, err := tx.tx.QueryContext(ctx, `WITH due AS MATERIALIZED (SELECT id FROM sms_messages
				WHERE status = 'PENDING' AND next_attempt_at <= $1
				ORDER BY next_attempt_at, seq LIMIT $2`+tx.db.skipLocked+`)
			UPDATE sms_messages SET attempts = attempts + 1, claim_owner = $3, claimed_until = $4,
				next_attempt_at = $4, updated_at = $1
			WHERE id IN (SELECT id FROM due)
			RETURNING id, phone, purpose, body_sealed, key_id, send_before, created_at, attempts`,
			micros(now), limit, owner, micros(until))
		if err != nil {
			return wrapDB(err)
		}
		defer rows.Close()
		for rows.Next() {
			var c sms.Claim
			var before sql.NullInt64
			var created int64
			if err := rows.Scan(&c.ID, &c.Phone, &c.Purpose, &c.Body, &c.KeyID, &before, &created, &c.Attempt); err != nil {
				return wrapDB(err)
			}
			c.SendBefore, c.CreatedAt = fromMicros(before.Int64), fromMicros(created)
			c.Owner, c.Until = owner, until.UTC()
			out = append(out, c)
		}
		if err := rows.Err(); err != nil {
			return wrapDB(err)
		}
		return wrapDB(rows.Close())
	})
	if err != nil {
		return nil, err
	}
	slices.SortFunc(out, func(a, b sms.Claim) int { return strings.Compare(a.ID, b.ID) })
	return out, nil
}

// Finish implements sms.Store.
func (s smsStore) Finish(ctx context.Context, f sms.Finish) (bool, error) {
	at := micros(f.At)
	var applied bool
	err := s.db.InTx(ctx, func(tx *Tx) error {
		var res sql.Result
		var err error
		switch f.Status {
		case sms.StatusSent:
			res, err = tx.tx.ExecContext(ctx, `UPDATE sms_messages SET status = 'SENT', body_sealed = '', sent_at = $2,
				provider_id = $3, last_error = '', next_attempt_at = NULL, claimed_until = NULL, claim_owner = '', updated_at = $2
				WHERE id = $1 AND status = 'PENDING'`, f.ID, at, f.ProviderID)
		case sms.StatusFailed:
			res, err = tx.tx.ExecContext(ctx, `UPDATE sms_messages SET status = 'FAILED', body_sealed = '', last_error = $4,
				next_attempt_at = NULL, claimed_until = NULL, claim_owner = '', updated_at = $5
				WHERE id = $1 AND claim_owner = $2 AND attempts = $3 AND status = 'PENDING'`,
				f.ID, f.Owner, f.Attempt, string(f.Error), at)
		case sms.StatusPending:
			res, err = tx.tx.ExecContext(ctx, `UPDATE sms_messages SET last_error = $4, next_attempt_at = $5,
				claimed_until = NULL, claim_owner = '', updated_at = $6
				WHERE id = $1 AND claim_owner = $2 AND attempts = $3 AND status = 'PENDING'`,
				f.ID, f.Owner, f.Attempt, string(f.Error), micros(f.NextAttemptAt), at)
		default:
			return paygate.E(paygate.CodeInvalidArgument, "unknown sms status %q", f.Status)
		}
		if err != nil {
			return wrapDB(err)
		}
		n, err := res.RowsAffected()
		applied = n == 1
		return wrapDB(err)
	})
	return applied, err
}

// Message implements sms.Store.
func (s smsStore) Message(ctx context.Context, id string) (sms.Record, error) {
	var r sms.Record
	var status, class string
	var created int64
	var sent, next sql.NullInt64
	err := s.db.SQL.QueryRowContext(ctx, `SELECT id, phone, purpose, status, attempts, last_error, provider_id,
		created_at, sent_at, next_attempt_at FROM sms_messages WHERE id = $1`, id).
		Scan(&r.ID, &r.Phone, &r.Purpose, &status, &r.Attempts, &class, &r.ProviderID, &created, &sent, &next)
	if errors.Is(err, sql.ErrNoRows) {
		return sms.Record{}, paygate.E(paygate.CodeNotFound, "no such message")
	}
	if err != nil {
		return sms.Record{}, wrapDB(err)
	}
	r.Status, r.LastError = sms.Status(status), sms.ErrorClass(class)
	r.CreatedAt, r.SentAt, r.NextAttemptAt = fromMicros(created), fromMicros(sent.Int64), fromMicros(next.Int64)
	return r, nil
}

// Deliver implements sms.Inbox.
func (s smsStore) Deliver(ctx context.Context, m sms.InboxMessage) error {
	return s.db.InTx(ctx, func(tx *Tx) error {
		_, err := tx.tx.ExecContext(ctx, `INSERT INTO sms_sandbox_inbox (message_id, phone, purpose, text, received_at)
			VALUES ($1, $2, $3, $4, $5) ON CONFLICT (message_id) DO NOTHING`,
			m.MessageID, m.Phone, m.Purpose, m.Text, micros(m.ReceivedAt))
		return wrapDB(err)
	})
}

// Latest implements sms.Inbox.
func (s smsStore) Latest(ctx context.Context, phone string) (sms.InboxMessage, bool, error) {
	rows, err := s.db.SQL.QueryContext(ctx, `SELECT seq, message_id, phone, purpose, text, received_at
		FROM sms_sandbox_inbox WHERE phone = $1 ORDER BY seq DESC LIMIT 1`, phone)
	if err != nil {
		return sms.InboxMessage{}, false, wrapDB(err)
	}
	defer rows.Close()
	if !rows.Next() {
		return sms.InboxMessage{}, false, wrapDB(rows.Err())
	}
	var m sms.InboxMessage
	var at int64
	if err := rows.Scan(&m.Seq, &m.MessageID, &m.Phone, &m.Purpose, &m.Text, &at); err != nil {
		return sms.InboxMessage{}, false, wrapDB(err)
	}
	m.ReceivedAt = fromMicros(at)
	return m, true, wrapDB(rows.Close())
}

// DeleteFinished implements sms.Store.
func (s smsStore) DeleteFinished(ctx context.Context, before time.Time, limit int) (int64, error) {
	return s.deleteSome(ctx, `DELETE FROM sms_messages WHERE id IN (SELECT id FROM sms_messages
		WHERE status <> 'PENDING' AND updated_at < $1 ORDER BY updated_at LIMIT $2)`, before, limit)
}

// DeleteBefore implements sms.Inbox.
func (s smsStore) DeleteBefore(ctx context.Context, before time.Time, limit int) (int64, error) {
	return s.deleteSome(ctx, `DELETE FROM sms_sandbox_inbox WHERE seq IN (SELECT seq FROM sms_sandbox_inbox
		WHERE received_at < $1 ORDER BY received_at LIMIT $2)`, before, limit)
}

func (s smsStore) deleteSome(ctx context.Context, query string, before time.Time, limit int) (int64, error) {
	var n int64
	err := s.db.InTx(ctx, func(tx *Tx) error {
		res, err := tx.tx.ExecContext(ctx, query, micros(before), limit)
		if err != nil {
			return wrapDB(err)
		}
		n, err = res.RowsAffected()
		return wrapDB(err)
	})
	return n, err
}
