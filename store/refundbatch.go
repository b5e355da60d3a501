package store

import (
	"context"
	"database/sql"
	"strings"
	"time"

	"paygate"
	"paygate/payment"
)

// RefundBatches returns db as the batch refund use case's store.
func (db *DB) RefundBatches() payment.BatchStore { return batchStore{db} }

type batchStore struct{ db *DB }

var (
	_ payment.BatchStore = batchStore{}
	_ payment.BatchTx    = (*Tx)(nil)
)

// InTx implements payment.BatchStore.
func (s batchStore) InTx(ctx context.Context, fn func(payment.BatchTx) error) error {
	return s.db.InTx(ctx, func(tx *Tx) error { return fn(tx) })
}

const refundBatchCols = `id, merchant_id, out_batch_no, request_hash, notify_url, currency, status, total_count, accepted_count,
	failed_count, accepted_amount, sandbox, created_at, updated_at, finished_at`

func scanRefundBatch(sc scanner) (payment.RefundBatch, error) {
	var b payment.RefundBatch
	var cur, status string
	var created, updated, finished int64
	if err := sc.Scan(&b.ID, &b.MerchantID, &b.OutBatchNo, &b.RequestHash, &b.NotifyURL, &cur, &status, &b.TotalCount,
		&b.AcceptedCount, &b.FailedCount, &b.AcceptedAmount, &b.Sandbox, &created, &updated, &finished); err != nil {
		return b, err
	}
	b.Currency, b.Status = paygate.Currency(cur), payment.RefundBatchStatus(status)
	b.CreateTime, b.UpdateTime, b.FinishTime = fromMicros(created), fromMicros(updated), fromMicros(finished)
	b.PendingCount = b.TotalCount - b.AcceptedCount - b.FailedCount
	return b, nil
}

func refundBatchNotFound() error { return paygate.E(paygate.CodeNotFound, "refund batch not found") }

// refundBatchItemCols are a line's columns; the queries that show lines
// add the refund's status (LEFT JOIN payment_refunds).
const refundBatchItemCols = `batch_id, line, merchant_id, notify_url, out_refund_no, order_id, out_trade_no, amount, total, currency,
	reason, if_insufficient, status, refund_id, fail_code, fail_field, fail_message, attempts, next_attempt_at, updated_at`

// itemWidth is the number of refundBatchItemCols.
const itemWidth = 20

func scanRefundBatchItem(sc scanner, extra ...any) (payment.RefundBatchItem, error) {
	var it payment.RefundBatchItem
	var cur, insufficient, status, code string
	var refundID sql.NullString
	var next sql.NullInt64
	var updated int64
	dest := append([]any{&it.BatchID, &it.Line, &it.MerchantID, &it.NotifyURL, &it.OutRefundNo, &it.OrderID, &it.OutTradeNo,
		&it.Amount.Refund, &it.Amount.Total, &cur, &it.Reason, &insufficient, &status, &refundID, &code, &it.FailField,
		&it.FailMessage, &it.Attempts, &next, &updated}, extra...)
	if err := sc.Scan(dest...); err != nil {
		return it, err
	}
	it.Amount.Currency, it.IfInsufficient, it.Status = paygate.Currency(cur), payment.IfInsufficient(insufficient), payment.RefundBatchItemStatus(status)
	it.RefundID, it.FailCode = refundID.String, paygate.Code(code)
	it.NextAttemptAt, it.UpdateTime = fromMicros(next.Int64), fromMicros(updated)
	return it, nil
}

// itemsPerInsert bounds one multi-row INSERT of lines (20 columns each,
// well under both dialects' parameter limits).
const itemsPerInsert = 200

// InsertRefundBatch implements payment.BatchTx: the batch row, then its
// lines in multi-row INSERTs, only if the batch number was free.
func (tx *Tx) InsertRefundBatch(ctx context.Context, b payment.RefundBatch, items []payment.RefundBatchItem) (bool, error) {
	res, err := tx.tx.ExecContext(ctx, `INSERT INTO refund_batches (`+refundBatchCols+`) VALUES (`+placeholders(1, 15)+`)
		ON CONFLICT (merchant_id, out_batch_no) DO NOTHING`,
		b.ID, b.MerchantID, b.OutBatchNo, b.RequestHash, b.NotifyURL, string(b.Currency), string(b.Status), b.TotalCount,
		b.AcceptedCount, b.FailedCount, b.AcceptedAmount, b.Sandbox, micros(b.CreateTime), micros(b.UpdateTime), micros(b.FinishTime))
	if err != nil {
		return false, wrapDB(err)
	}
	if n, err := res.RowsAffected(); err != nil || n != 1 {
		return false, wrapDB(err)
	}
	for start := 0; start < len(items); start += itemsPerInsert {
		chunk := items[start:min(start+itemsPerInsert, len(items))]
		args := make([]any, 0, len(chunk)*itemWidth)
		for _, it := range chunk {
			args = append(args, it.BatchID, it.Line, it.MerchantID, it.NotifyURL, it.OutRefundNo, it.OrderID, it.OutTradeNo,
				it.Amount.Refund, it.Amount.Total, string(it.Amount.Currency), it.Reason, string(it.IfInsufficient), string(it.Status),
				nullString(it.RefundID), string(it.FailCode), it.FailField, it.FailMessage, it.Attempts, nullMicros(it.NextAttemptAt),
				micros(it.UpdateTime))
		}
		casts := make([]string, itemWidth)
		if _, err := tx.tx.ExecContext(ctx, `INSERT INTO refund_batch_items (`+refundBatchItemCols+`) VALUES `+
			tuples(len(chunk), casts...), args...); err != nil {
			return false, wrapDB(err)
		}
	}
	return true, nil
}

// RefundBatchByOutBatchNoInTx implements payment.BatchTx.
func (tx *Tx) RefundBatchByOutBatchNoInTx(ctx context.Context, merchantID, outBatchNo string) (payment.RefundBatch, error) {
	return queryOne(ctx, tx.tx, scanRefundBatch, refundBatchNotFound, `SELECT `+refundBatchCols+` FROM refund_batches
		WHERE merchant_id = $1 AND out_batch_no = $2`, merchantID, outBatchNo)
}

// WakeRefundBatch implements payment.BatchTx.
func (tx *Tx) WakeRefundBatch(ctx context.Context, batchID string, now time.Time) error {
	_, err := tx.tx.ExecContext(ctx, `UPDATE refund_batch_items SET next_attempt_at = $1
		WHERE batch_id = $2 AND status = 'PENDING' AND next_attempt_at > $1`, micros(now), batchID)
	return wrapDB(err)
}

// ClaimRefundBatchItems implements payment.BatchTx in one statement: the
// due lines are chosen (SKIP LOCKED on PostgreSQL), counted and leased,
// and returned.
func (tx *Tx) ClaimRefundBatchItems(ctx context.Context, now, until time.Time, limit int) ([]payment.RefundBatchItem, error) {
	its, err := queryMany(ctx, tx.tx, func(sc scanner) (payment.RefundBatchItem, error) { return scanRefundBatchItem(sc) },
		`UPDATE refund_batch_items SET attempts = attempts + 1, next_attempt_at = $1, updated_at = $2
		WHERE (batch_id, line) IN (SELECT batch_id, line FROM refund_batch_items
			WHERE status = 'PENDING' AND next_attempt_at <= $2 ORDER BY next_attempt_at, batch_id, line LIMIT $3`+tx.db.skipLocked+`)
		RETURNING `+refundBatchItemCols, micros(until), micros(now), limit)
	if err != nil {
		return nil, err
	}
	// RETURNING gives no order: work through each batch in line order.
	sortItems(its)
	return its, nil
}

func sortItems(its []payment.RefundBatchItem) {
	for i := 1; i < len(its); i++ { // insertion sort: a claim is at most a few hundred lines, mostly in order
		for j := i; j > 0 && itemLess(its[j], its[j-1]); j-- {
			its[j], its[j-1] = its[j-1], its[j]
		}
	}
}

func itemLess(a, b payment.RefundBatchItem) bool {
	if c := strings.Compare(a.BatchID, b.BatchID); c != 0 {
		return c < 0
	}
	return a.Line < b.Line
}

// FinishRefundBatchItem implements payment.BatchTx.
func (tx *Tx) FinishRefundBatchItem(ctx context.Context, it payment.RefundBatchItem) (bool, error) {
	res, err := tx.tx.ExecContext(ctx, `UPDATE refund_batch_items SET status = $1, refund_id = $2, fail_code = $3, fail_field = $4,
		fail_message = $5, next_attempt_at = NULL, updated_at = $6 WHERE batch_id = $7 AND line = $8 AND status = 'PENDING'`,
		string(it.Status), nullString(it.RefundID), string(it.FailCode), it.FailField, it.FailMessage, micros(it.UpdateTime),
		it.BatchID, it.Line)
	if err != nil {
		return false, wrapDB(err)
	}
	n, err := res.RowsAffected()
	return n == 1, wrapDB(err)
}

// DeferRefundBatchItem implements payment.BatchTx.
func (tx *Tx) DeferRefundBatchItem(ctx context.Context, batchID string, line int, next time.Time) error {
	_, err := tx.tx.ExecContext(ctx, `UPDATE refund_batch_items SET next_attempt_at = $1
		WHERE batch_id = $2 AND line = $3 AND status = 'PENDING'`, micros(next), batchID, line)
	return wrapDB(err)
}

// AddRefundBatchCounts implements payment.BatchTx in one statement (the
// row lock orders concurrent recorders on PostgreSQL).
func (tx *Tx) AddRefundBatchCounts(ctx context.Context, batchID string, accepted, failed int, acceptedAmount int64, now time.Time) (payment.RefundBatch, error) {
	return queryOne(ctx, tx.tx, scanRefundBatch, refundBatchNotFound, `UPDATE refund_batches SET
		accepted_count = accepted_count + $1, failed_count = failed_count + $2, accepted_amount = accepted_amount + $3, updated_at = $4,
		status = CASE WHEN accepted_count + $1 + failed_count + $2 >= total_count THEN 'FINISHED' ELSE status END,
		finished_at = CASE WHEN accepted_count + $1 + failed_count + $2 >= total_count AND finished_at = 0 THEN $4 ELSE finished_at END
		WHERE id = $5 RETURNING `+refundBatchCols, accepted, failed, acceptedAmount, micros(now), batchID)
}

// RefundBatch implements payment.BatchStore.
func (s batchStore) RefundBatch(ctx context.Context, merchantID, id string) (payment.RefundBatch, error) {
	return queryOne(ctx, s.db.SQL, scanRefundBatch, refundBatchNotFound, `SELECT `+refundBatchCols+` FROM refund_batches
		WHERE id = $1 AND merchant_id = $2`, id, merchantID)
}

// RefundBatchByOutBatchNo implements payment.BatchStore.
func (s batchStore) RefundBatchByOutBatchNo(ctx context.Context, merchantID, outBatchNo string) (payment.RefundBatch, error) {
	return queryOne(ctx, s.db.SQL, scanRefundBatch, refundBatchNotFound, `SELECT `+refundBatchCols+` FROM refund_batches
		WHERE merchant_id = $1 AND out_batch_no = $2`, merchantID, outBatchNo)
}

// RefundBatchItems implements payment.BatchStore.
func (s batchStore) RefundBatchItems(ctx context.Context, batchID string, afterLine, limit int) ([]payment.RefundBatchItem, error) {
	cols := "i." + strings.ReplaceAll(strings.Join(strings.Fields(refundBatchItemCols), " "), ", ", ", i.")
	return queryMany(ctx, s.db.SQL, func(sc scanner) (payment.RefundBatchItem, error) {
		var st sql.NullString
		it, err := scanRefundBatchItem(sc, &st)
		it.RefundStatus = payment.RefundStatus(st.String)
		return it, err
	}, `SELECT `+cols+`, r.status FROM refund_batch_items i LEFT JOIN payment_refunds r ON r.id = i.refund_id
		WHERE i.batch_id = $1 AND i.line > $2 ORDER BY i.line LIMIT $3`, batchID, afterLine, limit)
}
