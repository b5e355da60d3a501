package store

import (
	"context"
	"database/sql"
	"time"

	"paygate"
	"paygate/payment"
)

const refundCols = `id, merchant_id, out_refund_no, order_id, out_trade_no, transaction_id, channel, channel_refund_no, reason,
	notify_url, status, amount, total, fee_refund, currency, funds_source, if_insufficient, awaiting_funds, scenario, fail_code,
	request_hash, sandbox, query_count, next_query_at, success_time, close_time, created_at, updated_at`

// refundRow holds one scanned payment_refunds row before conversion.
type refundRow struct {
	r                                  payment.Refund
	channelNo                          sql.NullString
	next                               sql.NullInt64
	status, cur, source, insufficient  string
	success, closed, created, modified int64
}

func (w *refundRow) dest() []any {
	r := &w.r
	return []any{&r.ID, &r.MerchantID, &r.OutRefundNo, &r.OrderID, &r.OutTradeNo, &r.TransactionID, &r.Channel, &w.channelNo,
		&r.Reason, &r.NotifyURL, &w.status, &r.Amount.Refund, &r.Amount.Total, &r.Amount.FeeRefund, &w.cur, &w.source,
		&w.insufficient, &r.AwaitingFunds, &r.Scenario, &r.FailCode, &r.RequestHash, &r.Sandbox, &r.QueryCount, &w.next,
		&w.success, &w.closed, &w.created, &w.modified}
}

func (w *refundRow) refund() payment.Refund {
	r := w.r
	r.ChannelRefundNo, r.Status, r.Amount.Currency = w.channelNo.String, payment.RefundStatus(w.status), paygate.Currency(w.cur)
	r.Amount.PayerRefund = r.Amount.Refund
	r.FundsSource, r.IfInsufficient = payment.FundsSource(w.source), payment.IfInsufficient(w.insufficient)
	r.NextQueryAt, r.SuccessTime, r.CloseTime = fromMicros(w.next.Int64), fromMicros(w.success), fromMicros(w.closed)
	r.CreateTime, r.UpdateTime = fromMicros(w.created), fromMicros(w.modified)
	return r
}

func scanRefund(sc scanner) (payment.Refund, error) {
	var w refundRow
	if err := sc.Scan(w.dest()...); err != nil {
		return payment.Refund{}, err
	}
	return w.refund(), nil
}

func refundNotFound() error { return paygate.E(paygate.CodeNotFound, "refund not found") }

// InsertRefund implements payment.Tx.
func (tx *Tx) InsertRefund(ctx context.Context, r payment.Refund) (bool, error) {
	res, err := tx.tx.ExecContext(ctx, `INSERT INTO payment_refunds (`+refundCols+`) VALUES (`+placeholders(1, 28)+`)
		ON CONFLICT (merchant_id, out_refund_no) DO NOTHING`,
		r.ID, r.MerchantID, r.OutRefundNo, r.OrderID, r.OutTradeNo, r.TransactionID, r.Channel, nullString(r.ChannelRefundNo),
		r.Reason, r.NotifyURL, string(r.Status), r.Amount.Refund, r.Amount.Total, r.Amount.FeeRefund, string(r.Amount.Currency),
		string(r.FundsSource), string(r.IfInsufficient), r.AwaitingFunds, r.Scenario, r.FailCode, r.RequestHash, r.Sandbox,
		r.QueryCount, nullMicros(r.NextQueryAt), micros(r.SuccessTime), micros(r.CloseTime), micros(r.CreateTime), micros(r.UpdateTime))
	if err != nil {
		return false, wrapDB(err)
	}
	n, err := res.RowsAffected()
	return n == 1, wrapDB(err)
}

// RefundByOutRefundNoInTx implements payment.Tx.
func (tx *Tx) RefundByOutRefundNoInTx(ctx context.Context, merchantID, outRefundNo string) (payment.Refund, error) {
	return queryOne(ctx, tx.tx, scanRefund, refundNotFound, `SELECT `+refundCols+` FROM payment_refunds
		WHERE merchant_id = $1 AND out_refund_no = $2`, merchantID, outRefundNo)
}

// LockRefund implements payment.Tx: FOR UPDATE on PostgreSQL.
func (tx *Tx) LockRefund(ctx context.Context, id string) (payment.Refund, error) {
	return queryOne(ctx, tx.tx, scanRefund, refundNotFound, `SELECT `+refundCols+` FROM payment_refunds WHERE id = $1`+tx.db.lockSuffix, id)
}

// UpdateRefund implements payment.Tx.
func (tx *Tx) UpdateRefund(ctx context.Context, r payment.Refund) error {
	res, err := tx.tx.ExecContext(ctx, `UPDATE payment_refunds SET status = $1, channel_refund_no = $2, fail_code = $3,
		awaiting_funds = $4, query_count = $5, next_query_at = $6, success_time = $7, close_time = $8, updated_at = $9 WHERE id = $10`,
		string(r.Status), nullString(r.ChannelRefundNo), r.FailCode, r.AwaitingFunds, r.QueryCount, nullMicros(r.NextQueryAt),
		micros(r.SuccessTime), micros(r.CloseTime), micros(r.UpdateTime), r.ID)
	return affectedOne(res, err, refundNotFound)
}

// OrderRefundsInTx implements payment.Tx.
func (tx *Tx) OrderRefundsInTx(ctx context.Context, orderID string) ([]payment.Refund, error) {
	return queryMany(ctx, tx.tx, scanRefund, `SELECT `+refundCols+` FROM payment_refunds WHERE order_id = $1 ORDER BY id`, orderID)
}

// LockRefundsToQuery implements payment.Tx with SKIP LOCKED on PostgreSQL.
func (tx *Tx) LockRefundsToQuery(ctx context.Context, now time.Time, limit int) ([]payment.Refund, error) {
	return queryMany(ctx, tx.tx, scanRefund, `SELECT `+refundCols+` FROM payment_refunds
		WHERE status = 'PROCESSING' AND next_query_at <= $1 ORDER BY next_query_at, id LIMIT $2`+tx.db.skipLocked, micros(now), limit)
}

// Refund implements payment.Store.
func (s paymentStore) Refund(ctx context.Context, merchantID, id string) (payment.Refund, error) {
	return queryOne(ctx, s.db.SQL, scanRefund, refundNotFound, `SELECT `+refundCols+` FROM payment_refunds
		WHERE id = $1 AND merchant_id = $2`, id, merchantID)
}

// RefundByOutRefundNo implements payment.Store.
func (s paymentStore) RefundByOutRefundNo(ctx context.Context, merchantID, outRefundNo string) (payment.Refund, error) {
	return queryOne(ctx, s.db.SQL, scanRefund, refundNotFound, `SELECT `+refundCols+` FROM payment_refunds
		WHERE merchant_id = $1 AND out_refund_no = $2`, merchantID, outRefundNo)
}

// RefundByID implements payment.Store.
func (s paymentStore) RefundByID(ctx context.Context, id string) (payment.Refund, error) {
	return queryOne(ctx, s.db.SQL, scanRefund, refundNotFound, `SELECT `+refundCols+` FROM payment_refunds WHERE id = $1`, id)
}

// OrderRefunds implements payment.Store.
func (s paymentStore) OrderRefunds(ctx context.Context, orderID string) ([]payment.Refund, error) {
	return queryMany(ctx, s.db.SQL, scanRefund, `SELECT `+refundCols+` FROM payment_refunds WHERE order_id = $1 ORDER BY id`, orderID)
}

// SetRefundChannelNo implements payment.Store in one autocommitted
// statement, queued on SQLite for the writer slot. On PostgreSQL its
// commit does not wait for the WAL flush (synchronous_commit off for this
// statement's transaction alone): the number is the channel's, so if a
// crash of the database loses it, the refund's query (ReconcileRefunds)
// records it again, and every refund saves a disk flush.
func (s paymentStore) SetRefundChannelNo(ctx context.Context, id, channelRefundNo string, now time.Time) (bool, error) {
	with, cond := "", ""
	if s.db.Dialect == Postgres {
		with, cond = `WITH async AS (SELECT set_config('synchronous_commit', 'off', true)) `, ` AND EXISTS (SELECT 1 FROM async)`
	}
	res, err := s.db.execWrite(ctx, with+`UPDATE payment_refunds SET channel_refund_no = $1, updated_at = $2
		WHERE id = $3 AND channel_refund_no IS NULL AND status = 'PROCESSING'`+cond, channelRefundNo, micros(now), id)
	if err != nil {
		return false, wrapDB(err)
	}
	n, err := res.RowsAffected()
	return n == 1, wrapDB(err)
}
