package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5/pgconn"

	"paygate"
	"paygate/payout"
)

// Payouts returns db as the payout package's Store.
func (db *DB) Payouts() payout.Store { return payoutStore{db} }

type payoutStore struct{ db *DB }

var (
	_ payout.Store = payoutStore{}
	_ payout.Tx    = (*Tx)(nil)
)

// InTx implements payout.Store.
func (s payoutStore) InTx(ctx context.Context, fn func(payout.Tx) error) error {
	return s.db.InTx(ctx, func(tx *Tx) error { return fn(tx) })
}

const payoutBatchCols = `id, mchid, out_batch_no, request_hash, currency, remark, notify_url, sandbox, status, total_count,
	rejected_count, accepted_count, accepted_amount, success_count, success_amount, fail_count, fail_amount, created_at,
	updated_at, finished_at`

func scanPayoutBatch(sc scanner) (payout.Batch, error) {
	var b payout.Batch
	var cur, status string
	var created, updated, finished int64
	if err := sc.Scan(&b.ID, &b.MerchantID, &b.OutBatchNo, &b.RequestHash, &cur, &b.Remark, &b.NotifyURL, &b.Sandbox, &status,
		&b.TotalCount, &b.RejectedCount, &b.AcceptedCount, &b.AcceptedAmount, &b.SuccessCount, &b.SuccessAmount, &b.FailCount,
		&b.FailAmount, &created, &updated, &finished); err != nil {
		return b, err
	}
	b.Currency, b.Status = paygate.Currency(cur), payout.BatchStatus(status)
	b.CreateTime, b.UpdateTime, b.FinishTime = fromMicros(created), fromMicros(updated), fromMicros(finished)
	return b, nil
}

const payoutItemCols = `i.id, i.batch_id, b.out_batch_no, i.mchid, i.seq, i.out_detail_no, i.amount, i.currency,
	i.recipient_type, i.kind, i.recipient_customer_id, i.recipient_card_id, i.recipient_masked, i.recipient_name, i.card_enc,
	i.card_kid, i.remark, i.status, i.fail_reason, i.scenario, i.channel, i.channel_no, i.query_count, i.next_query_at,
	i.created_at, i.updated_at, i.finished_at`

// payoutItemFrom joins each item to its batch for the batch's number.
const payoutItemFrom = ` FROM payout_items i JOIN payout_batches b ON b.id = i.batch_id`

func scanPayoutItem(sc scanner) (payout.Item, error) {
	var it payout.Item
	var rtype, kind, cur, status string
	var rcus, rcard, chNo sql.NullString
	var next sql.NullInt64
	var created, updated, finished int64
	if err := sc.Scan(&it.ID, &it.BatchID, &it.OutBatchNo, &it.MerchantID, &it.Seq, &it.OutDetailNo, &it.Amount, &cur, &rtype,
		&kind, &rcus, &rcard, &it.Recipient.Masked, &it.Recipient.Name, &it.Card.Ciphertext, &it.Card.KeyID, &it.Remark, &status,
		&it.FailReason, &it.Scenario, &it.Channel, &chNo, &it.QueryCount, &next, &created, &updated, &finished); err != nil {
		return it, err
	}
	it.Currency, it.Status = paygate.Currency(cur), payout.Status(status)
	it.Recipient.Type, it.Recipient.Kind = payout.RecipientType(rtype), payout.Kind(kind)
	it.RecipientCustomerID, it.RecipientCardID, it.ChannelNo = rcus.String, rcard.String, chNo.String
	it.NextQueryAt = fromMicros(next.Int64)
	it.CreateTime, it.UpdateTime, it.FinishTime = fromMicros(created), fromMicros(updated), fromMicros(finished)
	return it, nil
}

func payoutBatchNotFound() error { return paygate.E(paygate.CodeNotFound, "payout batch not found") }

func payoutItemNotFound() error { return paygate.E(paygate.CodeNotFound, "payout item not found") }

// InsertBatch implements payout.Tx.
func (tx *Tx) InsertBatch(ctx context.Context, b payout.Batch) (bool, error) {
	res, err := tx.tx.ExecContext(ctx, `INSERT INTO payout_batches (`+payoutBatchCols+`) VALUES (`+placeholders(1, 20)+`)
		ON CONFLICT DO NOTHING`,
		b.ID, b.MerchantID, b.OutBatchNo, b.RequestHash, string(b.Currency), b.Remark, b.NotifyURL, b.Sandbox, string(b.Status),
		b.TotalCount, b.RejectedCount, b.AcceptedCount, b.AcceptedAmount, b.SuccessCount, b.SuccessAmount, b.FailCount,
		b.FailAmount, micros(b.CreateTime), micros(b.UpdateTime), micros(b.FinishTime))
	if err != nil {
		return false, wrapDB(err)
	}
	n, err := res.RowsAffected()
	return n == 1, wrapDB(err)
}

// UsedDetailNos implements payout.Tx, in chunks that keep the statement's
// parameters few.
func (tx *Tx) UsedDetailNos(ctx context.Context, merchantID string, nos []string) ([]string, error) {
	var out []string
	for len(nos) > 0 {
		chunk := nos[:min(len(nos), 500)]
		nos = nos[len(chunk):]
		args := append([]any{merchantID}, anys(chunk)...)
		got, err := queryMany(ctx, tx.tx, func(sc scanner) (string, error) {
			var s string
			return s, sc.Scan(&s)
		}, `SELECT out_detail_no FROM payout_items WHERE mchid = $1 AND status <> 'REJECTED'
			AND out_detail_no IN (`+placeholders(2, len(chunk))+`)`, args...)
		if err != nil {
			return nil, err
		}
		out = append(out, got...)
	}
	return out, nil
}

// payoutItemInsertCols are the columns InsertItems writes (26 per item).
const payoutItemInsertCols = `id, batch_id, mchid, seq, out_detail_no, amount, currency, recipient_type, kind,
	recipient_customer_id, recipient_card_id, recipient_masked, recipient_name, card_enc, card_kid, remark, status,
	fail_reason, scenario, channel, channel_no, query_count, next_query_at, created_at, updated_at, finished_at`

// InsertItems implements payout.Tx with multi-row inserts of up to 50
// items (SQLite prepares a statement in time quadratic in its parameters). On PostgreSQL an out_detail_no taken by a concurrent transaction
// is a unique violation, turned into paygate.ErrRetry; on SQLite writers
// are serialised, so UsedDetailNos already saw it.
func (tx *Tx) InsertItems(ctx context.Context, items []payout.Item) error {
	const width = 26
	for len(items) > 0 {
		chunk := items[:min(len(items), 50)]
		items = items[len(chunk):]
		args := make([]any, 0, width*len(chunk))
		for _, it := range chunk {
			args = append(args, it.ID, it.BatchID, it.MerchantID, it.Seq, it.OutDetailNo, it.Amount, string(it.Currency),
				string(it.Recipient.Type), string(it.Recipient.Kind), nullString(it.RecipientCustomerID), nullString(it.RecipientCardID),
				it.Recipient.Masked, it.Recipient.Name, it.Card.Ciphertext, it.Card.KeyID, it.Remark, string(it.Status), it.FailReason,
				it.Scenario, it.Channel, nullString(it.ChannelNo), it.QueryCount, nullMicros(it.NextQueryAt), micros(it.CreateTime),
				micros(it.UpdateTime), micros(it.FinishTime))
		}
		casts := make([]string, width)
		_, err := tx.tx.ExecContext(ctx, `INSERT INTO payout_items (`+payoutItemInsertCols+`) VALUES `+tuples(len(chunk), casts...), args...)
		var pe *pgconn.PgError
		if errors.As(err, &pe) && pe.Code == "23505" && pe.ConstraintName == "payout_items_detail_no" {
			return fmt.Errorf("store: out_detail_no taken concurrently: %w", paygate.ErrRetry)
		}
		if err != nil {
			return wrapDB(err)
		}
	}
	return nil
}

// LockBatch implements payout.Tx: FOR UPDATE on PostgreSQL.
func (tx *Tx) LockBatch(ctx context.Context, id string) (payout.Batch, error) {
	return queryOne(ctx, tx.tx, scanPayoutBatch, payoutBatchNotFound, `SELECT `+payoutBatchCols+` FROM payout_batches
		WHERE id = $1`+tx.db.lockSuffix, id)
}

// UpdateBatch implements payout.Tx.
func (tx *Tx) UpdateBatch(ctx context.Context, b payout.Batch) error {
	res, err := tx.tx.ExecContext(ctx, `UPDATE payout_batches SET status = $1, success_count = $2, success_amount = $3,
		fail_count = $4, fail_amount = $5, updated_at = $6, finished_at = $7 WHERE id = $8`,
		string(b.Status), b.SuccessCount, b.SuccessAmount, b.FailCount, b.FailAmount, micros(b.UpdateTime), micros(b.FinishTime), b.ID)
	return affectedOne(res, err, payoutBatchNotFound)
}

// LockItemsToProcess implements payout.Tx with SKIP LOCKED on PostgreSQL.
func (tx *Tx) LockItemsToProcess(ctx context.Context, limit int) ([]payout.Item, error) {
	lock := ""
	if tx.db.skipLocked != "" {
		lock = " FOR UPDATE OF i SKIP LOCKED"
	}
	return queryMany(ctx, tx.tx, scanPayoutItem, `SELECT `+payoutItemCols+payoutItemFrom+`
		WHERE i.status = 'PENDING' ORDER BY i.id LIMIT $1`+lock, limit)
}

// LockItem implements payout.Tx: FOR UPDATE on PostgreSQL.
func (tx *Tx) LockItem(ctx context.Context, id string) (payout.Item, error) {
	lock := ""
	if tx.db.lockSuffix != "" {
		lock = " FOR UPDATE OF i"
	}
	return queryOne(ctx, tx.tx, scanPayoutItem, payoutItemNotFound, `SELECT `+payoutItemCols+payoutItemFrom+`
		WHERE i.id = $1`+lock, id)
}

// UpdateItems implements payout.Tx: one UPDATE ... FROM (VALUES ...) per
// 100 items (round trips dominate a chunk's cost).
func (tx *Tx) UpdateItems(ctx context.Context, items []payout.Item) error {
	const width = 8
	casts := []string{"TEXT", "TEXT", "TEXT", "TEXT", "INTEGER", "BIGINT", "BIGINT", "BIGINT"}
	for len(items) > 0 {
		chunk := items[:min(len(items), 100)]
		items = items[len(chunk):]
		args := make([]any, 0, width*len(chunk))
		for _, it := range chunk {
			args = append(args, it.ID, string(it.Status), it.FailReason, nullString(it.ChannelNo), it.QueryCount,
				nullMicros(it.NextQueryAt), micros(it.UpdateTime), micros(it.FinishTime))
		}
		res, err := tx.tx.ExecContext(ctx, `WITH v (id, status, fail_reason, channel_no, query_count, next_query_at, updated_at,
				finished_at) AS (VALUES `+tuples(len(chunk), casts...)+`)
			UPDATE payout_items SET status = v.status, fail_reason = v.fail_reason, channel_no = v.channel_no,
				query_count = v.query_count, next_query_at = v.next_query_at, updated_at = v.updated_at, finished_at = v.finished_at
			FROM v WHERE payout_items.id = v.id`, args...)
		if err != nil {
			return wrapDB(err)
		}
		n, err := res.RowsAffected()
		if err != nil {
			return wrapDB(err)
		}
		if n != int64(len(chunk)) {
			return payoutItemNotFound()
		}
	}
	return nil
}

// LockItemsToQuery implements payout.Tx with SKIP LOCKED on PostgreSQL.
func (tx *Tx) LockItemsToQuery(ctx context.Context, now time.Time, limit int) ([]payout.Item, error) {
	lock := ""
	if tx.db.skipLocked != "" {
		lock = " FOR UPDATE OF i SKIP LOCKED"
	}
	return queryMany(ctx, tx.tx, scanPayoutItem, `SELECT `+payoutItemCols+payoutItemFrom+`
		WHERE i.status = 'PROCESSING' AND i.next_query_at <= $1 ORDER BY i.next_query_at, i.id LIMIT $2`+lock, micros(now), limit)
}

// Batch implements payout.Store.
func (s payoutStore) Batch(ctx context.Context, merchantID, id string) (payout.Batch, error) {
	return queryOne(ctx, s.db.SQL, scanPayoutBatch, payoutBatchNotFound, `SELECT `+payoutBatchCols+` FROM payout_batches
		WHERE id = $1 AND mchid = $2`, id, merchantID)
}

// BatchByOutBatchNo implements payout.Store.
func (s payoutStore) BatchByOutBatchNo(ctx context.Context, merchantID, outBatchNo string) (payout.Batch, error) {
	return queryOne(ctx, s.db.SQL, scanPayoutBatch, payoutBatchNotFound, `SELECT `+payoutBatchCols+` FROM payout_batches
		WHERE mchid = $1 AND out_batch_no = $2`, merchantID, outBatchNo)
}

// BatchItems implements payout.Store.
func (s payoutStore) BatchItems(ctx context.Context, batchID string, after, limit int) ([]payout.Item, error) {
	return queryMany(ctx, s.db.SQL, scanPayoutItem, `SELECT `+payoutItemCols+payoutItemFrom+`
		WHERE i.batch_id = $1 AND i.seq > $2 ORDER BY i.seq LIMIT $3`, batchID, after, limit)
}

// ItemByOutDetailNo implements payout.Store.
func (s payoutStore) ItemByOutDetailNo(ctx context.Context, merchantID, outDetailNo string) (payout.Item, error) {
	return queryOne(ctx, s.db.SQL, scanPayoutItem, payoutItemNotFound, `SELECT `+payoutItemCols+payoutItemFrom+`
		WHERE i.mchid = $1 AND i.out_detail_no = $2 AND i.status <> 'REJECTED'`, merchantID, outDetailNo)
}

// SetItemChannelNo implements payout.Store in one autocommitted statement,
// queued on SQLite for the writer slot.
func (s payoutStore) SetItemChannelNo(ctx context.Context, id, channelNo string, now time.Time) (bool, error) {
	res, err := s.db.execWrite(ctx, `UPDATE payout_items SET channel_no = $1, updated_at = $2
		WHERE id = $3 AND channel_no IS NULL AND status = 'PROCESSING'`, channelNo, micros(now), id)
	if err != nil {
		return false, wrapDB(err)
	}
	n, err := res.RowsAffected()
	return n == 1, wrapDB(err)
}
