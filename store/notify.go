package store

import (
	"context"
	"database/sql"
	"slices"
	"strings"
	"time"

	"paygate"
	"paygate/notify"
)

// Notify returns db as the notification outbox's Store.
func (db *DB) Notify() notify.Store { return notifyStore{db} }

type notifyStore struct{ db *DB }

var (
	_ notify.Store = notifyStore{}
	_ notify.Tx    = (*Tx)(nil)
)

// insertEventChunk keeps one INSERT's parameters far below both dialects'
// limits (PostgreSQL 65535, SQLite 32766).
const insertEventChunk = 200

// InsertEvents implements notify.Tx: one multi-row INSERT per 200 events,
// each PENDING and due at its CreatedAt. An id that exists already fails
// with CodeIDConflict (and the caller's transaction should roll back).
func (tx *Tx) InsertEvents(ctx context.Context, evs []notify.Event) error {
	for len(evs) > 0 {
		n := min(len(evs), insertEventChunk)
		chunk := evs[:n]
		evs = evs[n:]
		const width = 12
		args := make([]any, 0, width*len(chunk))
		for _, e := range chunk {
			at := micros(e.CreatedAt)
			args = append(args, e.ID, e.MerchantID, e.EventType, e.OriginalType, e.Summary, e.URL, e.Sandbox,
				string(e.Payload), string(notify.StatusPending), at, at, at)
		}
		res, err := tx.tx.ExecContext(ctx, `INSERT INTO notify_events (id, merchant_id, event_type, original_type,
			summary, url, sandbox, payload, status, next_attempt_at, created_at, updated_at)
			VALUES `+tuples(len(chunk), "", "", "", "", "", "", "", "", "", "", "", "")+`
			ON CONFLICT (id) DO NOTHING`, args...)
		if err != nil {
			return wrapDB(err)
		}
		got, err := res.RowsAffected()
		if err != nil {
			return wrapDB(err)
		}
		if got != int64(len(chunk)) {
			return paygate.EField(paygate.CodeIDConflict, "id", "an event id is already in the outbox")
		}
	}
	return nil
}

const claimCols = `seq, id, merchant_id, event_type, original_type, summary, url, sandbox, payload, created_at,
	attempts, attempts_in_round`

// ClaimDue implements notify.Store.
func (s notifyStore) ClaimDue(ctx context.Context, owner string, now, until time.Time, limit int) ([]notify.Claim, error) {
	if limit <= 0 {
		return nil, nil
	}
	var out []notify.Claim
	err := s.db.InTx(ctx, func(tx *Tx) error {
		out = out[:0]
		rows, err := tx.tx.QueryContext(ctx, `WITH due AS MATERIALIZED (SELECT id FROM notify_events
				WHERE status = 'PENDING' AND next_attempt_at <= $1
				ORDER BY next_attempt_at, seq LIMIT $2`+tx.db.skipLocked+`)
			UPDATE notify_events SET attempts = attempts + 1, attempts_in_round = attempts_in_round + 1,
				claim_owner = $3, claimed_until = $4, next_attempt_at = $4, updated_at = $1
			WHERE id IN (SELECT id FROM due)
			RETURNING `+claimCols, micros(now), limit, owner, micros(until))
		if err != nil {
			return wrapDB(err)
		}
		defer rows.Close()
		for rows.Next() {
			var c notify.Claim
			var payload string
			var created int64
			var seq int64
			if err := rows.Scan(&seq, &c.ID, &c.MerchantID, &c.EventType, &c.OriginalType, &c.Summary, &c.URL,
				&c.Sandbox, &payload, &created, &c.Attempt, &c.Round); err != nil {
				return wrapDB(err)
			}
			c.Payload, c.CreatedAt = []byte(payload), fromMicros(created)
			c.Owner, c.Until = owner, until.UTC()
			out = append(out, c)
		}
		if err := rows.Err(); err != nil {
			return wrapDB(err)
		}
		rows.Close()
		if len(out) == 0 {
			return nil
		}
		// An earlier attempt still IN_PROGRESS was left by a worker whose
		// lease ended: it is abandoned. Only events attempted before can
		// have one.
		var again []any
		for _, c := range out {
			if c.Attempt > 1 {
				again = append(again, c.ID)
			}
		}
		if len(again) > 0 {
			if _, err := tx.tx.ExecContext(ctx, `UPDATE notify_attempts SET outcome = 'ABANDONED', finished_at = $1
				WHERE outcome = 'IN_PROGRESS' AND event_id IN (`+placeholders(2, len(again))+`)`,
				append([]any{micros(now)}, again...)...); err != nil {
				return wrapDB(err)
			}
		}
		args := make([]any, 0, 5*len(out))
		for _, c := range out {
			args = append(args, c.ID, c.Attempt, owner, micros(now), string(notify.OutcomeInProgress))
		}
		_, err = tx.tx.ExecContext(ctx, `INSERT INTO notify_attempts (event_id, attempt, worker, started_at, outcome)
			VALUES `+tuples(len(out), "", "", "", "", ""), args...)
		return wrapDB(err)
	})
	if err != nil {
		return nil, err
	}
	slices.SortFunc(out, func(a, b notify.Claim) int { return strings.Compare(a.ID, b.ID) })
	return out, nil
}

// Finish implements notify.Store.
func (s notifyStore) Finish(ctx context.Context, f notify.Finish) (bool, error) {
	a := f.Attempt
	at := micros(a.FinishedAt)
	var applied bool
	err := s.db.InTx(ctx, func(tx *Tx) error {
		if _, err := tx.tx.ExecContext(ctx, `UPDATE notify_attempts SET outcome = $3, started_at = $4, finished_at = $5,
			duration_us = $6, http_status = $7, error_class = $8, response_snippet = $9
			WHERE event_id = $1 AND attempt = $2`,
			a.EventID, a.Number, string(a.Outcome), micros(a.StartedAt), at, a.Duration.Microseconds(),
			a.HTTPStatus, string(a.ErrorClass), a.ResponseSnippet); err != nil {
			return wrapDB(err)
		}
		var res sql.Result
		var err error
		switch {
		case f.Status == notify.StatusDelivered:
			// Delivered is delivered, whoever delivered it.
			res, err = tx.tx.ExecContext(ctx, `UPDATE notify_events SET status = 'DELIVERED', delivered_at = $2,
				next_attempt_at = NULL, claimed_until = NULL, claim_owner = '', updated_at = $2
				WHERE id = $1 AND status = 'PENDING'`, a.EventID, at)
		default:
			var next any
			if f.Status == notify.StatusPending {
				next = micros(f.NextAttemptAt)
			}
			dec := 0
			if f.Release {
				dec = 1
			}
			// attempts_in_round = 0 means a resend arrived during the
			// attempt: the event stays PENDING, due at once.
			res, err = tx.tx.ExecContext(ctx, `UPDATE notify_events SET
				status = CASE WHEN attempts_in_round = 0 THEN 'PENDING' ELSE CAST($4 AS TEXT) END,
				next_attempt_at = CASE WHEN attempts_in_round = 0 THEN CAST($5 AS BIGINT) ELSE CAST($6 AS BIGINT) END,
				attempts_in_round = CASE WHEN attempts_in_round >= $7 THEN attempts_in_round - $7 ELSE 0 END,
				claimed_until = NULL, claim_owner = '', updated_at = $5
				WHERE id = $1 AND claim_owner = $2 AND attempts = $3 AND status = 'PENDING'`,
				a.EventID, f.Owner, a.Number, string(f.Status), at, next, dec)
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

const recordCols = `seq, id, merchant_id, event_type, original_type, summary, url, sandbox, payload, created_at,
	status, next_attempt_at, delivered_at`

// Events implements notify.Store.
func (s notifyStore) Events(ctx context.Context, merchantID string, before int64, limit int) ([]notify.Record, error) {
	if before <= 0 {
		before = 1<<63 - 1
	}
	return s.records(ctx, `SELECT `+recordCols+` FROM notify_events WHERE merchant_id = $1 AND seq < $2
		ORDER BY seq DESC LIMIT $3`, merchantID, before, limit)
}

// Event implements notify.Store.
func (s notifyStore) Event(ctx context.Context, merchantID, eventID string) (notify.Record, bool, error) {
	rs, err := s.records(ctx, `SELECT `+recordCols+` FROM notify_events WHERE id = $1 AND merchant_id = $2`, eventID, merchantID)
	if err != nil || len(rs) == 0 {
		return notify.Record{}, false, err
	}
	return rs[0], true, nil
}

// records runs a query of recordCols and adds each event's attempts. The two
// reads run outside a transaction (on SQLite every transaction takes the
// write lock): an attempt that lands between them at worst shows up early.
func (s notifyStore) records(ctx context.Context, query string, args ...any) ([]notify.Record, error) {
	rows, err := s.db.SQL.QueryContext(ctx, query, args...)
	if err != nil {
		return nil, wrapDB(err)
	}
	defer rows.Close()
	var out []notify.Record
	for rows.Next() {
		var r notify.Record
		var payload, status string
		var created int64
		var next, delivered sql.NullInt64
		if err := rows.Scan(&r.Seq, &r.ID, &r.MerchantID, &r.EventType, &r.OriginalType, &r.Summary, &r.URL,
			&r.Sandbox, &payload, &created, &status, &next, &delivered); err != nil {
			return nil, wrapDB(err)
		}
		r.Payload, r.CreatedAt, r.Status = []byte(payload), fromMicros(created), notify.Status(status)
		r.NextAttemptAt, r.DeliveredAt = fromMicros(next.Int64), fromMicros(delivered.Int64)
		out = append(out, r)
	}
	if err := rows.Err(); err != nil {
		return nil, wrapDB(err)
	}
	rows.Close()
	if len(out) == 0 {
		return nil, nil
	}
	idx := make(map[string]int, len(out))
	ids := make([]any, len(out))
	for i, r := range out {
		idx[r.ID], ids[i] = i, r.ID
	}
	arows, err := s.db.SQL.QueryContext(ctx, `SELECT event_id, attempt, worker, outcome, started_at, finished_at,
		duration_us, http_status, error_class, response_snippet
		FROM notify_attempts WHERE event_id IN (`+placeholders(1, len(ids))+`) ORDER BY event_id, attempt`, ids...)
	if err != nil {
		return nil, wrapDB(err)
	}
	defer arows.Close()
	for arows.Next() {
		var a notify.Attempt
		var outcome, class string
		var started, dur int64
		var finished sql.NullInt64
		if err := arows.Scan(&a.EventID, &a.Number, &a.Worker, &outcome, &started, &finished, &dur,
			&a.HTTPStatus, &class, &a.ResponseSnippet); err != nil {
			return nil, wrapDB(err)
		}
		a.Outcome, a.ErrorClass = notify.Outcome(outcome), notify.ErrorClass(class)
		a.StartedAt, a.FinishedAt = fromMicros(started), fromMicros(finished.Int64)
		a.Duration = time.Duration(dur) * time.Microsecond
		r := &out[idx[a.EventID]]
		r.Attempts = append(r.Attempts, a)
	}
	return out, wrapDB(arows.Err())
}

// Resend implements notify.Store.
func (s notifyStore) Resend(ctx context.Context, merchantID, eventID string, now time.Time) (bool, error) {
	var ok bool
	err := s.db.InTx(ctx, func(tx *Tx) error {
		// An attempt in flight keeps its lease (no second worker joins it);
		// Finish makes the event due at once should that attempt fail.
		res, err := tx.tx.ExecContext(ctx, `UPDATE notify_events SET status = 'PENDING', attempts_in_round = 0,
			next_attempt_at = CASE WHEN claimed_until > $3 THEN next_attempt_at ELSE $3 END, updated_at = $3
			WHERE id = $1 AND merchant_id = $2`, eventID, merchantID, micros(now))
		if err != nil {
			return wrapDB(err)
		}
		n, err := res.RowsAffected()
		ok = n == 1
		return wrapDB(err)
	})
	return ok, err
}
