package store

import (
	"context"
	"database/sql"
	"encoding/json"
	"strconv"
	"strings"
	"time"

	"paygate"
	"paygate/channel"
	"paygate/payment"
)

// Payments returns db as the payment use cases' Store.
func (db *DB) Payments() payment.Store { return paymentStore{db} }

type paymentStore struct{ db *DB }

var (
	_ payment.Store = paymentStore{}
	_ payment.Tx    = (*Tx)(nil)
)

func (s paymentStore) InTx(ctx context.Context, fn func(payment.Tx) error) error {
	return s.db.InTx(ctx, func(tx *Tx) error { return fn(tx) })
}

const orderCols = `id, merchant_id, out_trade_no, description, amount, currency, status, notify_url, return_url, attach,
	metadata, payment_methods, time_expire, sandbox, request_hash, payer_total, fee, transaction_id, channel,
	channel_trade_no, success_time, close_time, close_reason, created_at, updated_at`

type scanner interface{ Scan(...any) error }

func scanOrder(sc scanner) (payment.Order, error) {
	var o payment.Order
	var cur, status, md, methods string
	var expire, success, closed, created, updated int64
	err := sc.Scan(&o.ID, &o.MerchantID, &o.OutTradeNo, &o.Description, &o.Amount.Total, &cur, &status, &o.NotifyURL,
		&o.ReturnURL, &o.Attach, &md, &methods, &expire, &o.Sandbox, &o.RequestHash, &o.Amount.PayerTotal, &o.Fee,
		&o.TransactionID, &o.Channel, &o.ChannelTradeNo, &success, &closed, &o.CloseReason, &created, &updated)
	if err != nil {
		return o, err
	}
	o.Amount.Currency, o.Status = paygate.Currency(cur), payment.Status(status)
	o.TimeExpire, o.SuccessTime, o.CloseTime = fromMicros(expire), fromMicros(success), fromMicros(closed)
	o.CreateTime, o.UpdateTime = fromMicros(created), fromMicros(updated)
	if md != "" {
		if err := json.Unmarshal([]byte(md), &o.Metadata); err != nil {
			return o, err
		}
	}
	if methods != "" {
		if err := json.Unmarshal([]byte(methods), &o.PaymentMethods); err != nil {
			return o, err
		}
	}
	return o, nil
}

func orderNotFound() error { return paygate.E(paygate.CodeNotFound, "order not found") }

func attemptNotFound() error { return paygate.E(paygate.CodeNotFound, "payment not found") }

// queryOne runs a query expected to return at most one row and scans it
// with scan, reading the rows to the end (never QueryRow, see DESIGN.md).
func queryOne[T any](ctx context.Context, q querier, scan func(scanner) (T, error), notFound func() error, query string, args ...any) (T, error) {
	var zero T
	rows, err := q.QueryContext(ctx, query, args...)
	if err != nil {
		return zero, wrapDB(err)
	}
	defer rows.Close()
	if !rows.Next() {
		if err := rows.Err(); err != nil {
			return zero, wrapDB(err)
		}
		return zero, notFound()
	}
	v, err := scan(rows)
	if err != nil {
		return zero, wrapDB(err)
	}
	for rows.Next() {
	}
	return v, wrapDB(rows.Err())
}

func queryMany[T any](ctx context.Context, q querier, scan func(scanner) (T, error), query string, args ...any) ([]T, error) {
	rows, err := q.QueryContext(ctx, query, args...)
	if err != nil {
		return nil, wrapDB(err)
	}
	defer rows.Close()
	var out []T
	for rows.Next() {
		v, err := scan(rows)
		if err != nil {
			return nil, wrapDB(err)
		}
		out = append(out, v)
	}
	return out, wrapDB(rows.Err())
}

// jsonText encodes v as JSON, or "" when empty is set (no metadata, no methods).
func jsonText(v any, empty bool) (string, error) {
	if empty {
		return "", nil
	}
	b, err := json.Marshal(v)
	return string(b), err
}

// InsertOrder implements payment.Tx.
func (tx *Tx) InsertOrder(ctx context.Context, o payment.Order) (bool, error) {
	md, err := jsonText(o.Metadata, len(o.Metadata) == 0)
	if err != nil {
		return false, paygate.Internal(err)
	}
	methods, err := jsonText(o.PaymentMethods, len(o.PaymentMethods) == 0)
	if err != nil {
		return false, paygate.Internal(err)
	}
	res, err := tx.tx.ExecContext(ctx, `INSERT INTO payment_orders (`+orderCols+`) VALUES (`+placeholders(1, 25)+`)
		ON CONFLICT (merchant_id, out_trade_no) DO NOTHING`,
		o.ID, o.MerchantID, o.OutTradeNo, o.Description, o.Amount.Total, string(o.Amount.Currency), string(o.Status), o.NotifyURL,
		o.ReturnURL, o.Attach, md, methods, micros(o.TimeExpire), o.Sandbox, o.RequestHash, o.Amount.PayerTotal, o.Fee,
		o.TransactionID, o.Channel, o.ChannelTradeNo, micros(o.SuccessTime), micros(o.CloseTime), o.CloseReason,
		micros(o.CreateTime), micros(o.UpdateTime))
	if err != nil {
		return false, wrapDB(err)
	}
	n, err := res.RowsAffected()
	return n == 1, wrapDB(err)
}

// OrderByOutTradeNoInTx implements payment.Tx.
func (tx *Tx) OrderByOutTradeNoInTx(ctx context.Context, merchantID, outTradeNo string) (payment.Order, error) {
	return queryOne(ctx, tx.tx, scanOrder, orderNotFound, `SELECT `+orderCols+` FROM payment_orders
		WHERE merchant_id = $1 AND out_trade_no = $2`, merchantID, outTradeNo)
}

// LockOrder implements payment.Tx: FOR UPDATE on PostgreSQL; SQLite's write
// transactions are serialised already.
func (tx *Tx) LockOrder(ctx context.Context, id string) (payment.Order, error) {
	return queryOne(ctx, tx.tx, scanOrder, orderNotFound, `SELECT `+orderCols+` FROM payment_orders WHERE id = $1`+tx.db.lockSuffix, id)
}

// UpdateOrder implements payment.Tx.
func (tx *Tx) UpdateOrder(ctx context.Context, o payment.Order) error {
	res, err := tx.tx.ExecContext(ctx, `UPDATE payment_orders SET status = $1, payer_total = $2, fee = $3, transaction_id = $4,
		channel = $5, channel_trade_no = $6, success_time = $7, close_time = $8, close_reason = $9, updated_at = $10 WHERE id = $11`,
		string(o.Status), o.Amount.PayerTotal, o.Fee, o.TransactionID, o.Channel, o.ChannelTradeNo, micros(o.SuccessTime),
		micros(o.CloseTime), o.CloseReason, micros(o.UpdateTime), o.ID)
	return affectedOne(res, err, orderNotFound)
}

func affectedOne(res sql.Result, err error, notFound func() error) error {
	if err != nil {
		return wrapDB(err)
	}
	n, err := res.RowsAffected()
	if err != nil {
		return wrapDB(err)
	}
	if n != 1 {
		return notFound()
	}
	return nil
}

// LockExpiredOrders implements payment.Tx with SKIP LOCKED on PostgreSQL.
func (tx *Tx) LockExpiredOrders(ctx context.Context, now time.Time, limit int) ([]payment.Order, error) {
	return queryMany(ctx, tx.tx, scanOrder, `SELECT `+orderCols+` FROM payment_orders
		WHERE status IN ('NOTPAY', 'PAYERROR') AND time_expire <= $1 ORDER BY time_expire, id LIMIT $2`+tx.db.skipLocked,
		micros(now), limit)
}

func (s paymentStore) Order(ctx context.Context, merchantID, id string) (payment.Order, error) {
	return queryOne(ctx, s.db.SQL, scanOrder, orderNotFound, `SELECT `+orderCols+` FROM payment_orders
		WHERE id = $1 AND merchant_id = $2`, id, merchantID)
}

func (s paymentStore) OrderByOutTradeNo(ctx context.Context, merchantID, outTradeNo string) (payment.Order, error) {
	return queryOne(ctx, s.db.SQL, scanOrder, orderNotFound, `SELECT `+orderCols+` FROM payment_orders
		WHERE merchant_id = $1 AND out_trade_no = $2`, merchantID, outTradeNo)
}

func (s paymentStore) Orders(ctx context.Context, q payment.ListQuery) ([]payment.Order, error) {
	var b strings.Builder
	args := []any{q.MerchantID}
	b.WriteString(`SELECT ` + orderCols + ` FROM payment_orders WHERE merchant_id = $1`)
	add := func(cond string, v any) {
		args = append(args, v)
		b.WriteString(" AND " + cond + " $" + strconv.Itoa(len(args)))
	}
	if q.Status != "" {
		add("status =", string(q.Status))
	}
	if !q.CreatedFrom.IsZero() {
		add("created_at >=", q.CreatedFrom.UnixMicro())
	}
	if !q.CreatedTo.IsZero() {
		add("created_at <", q.CreatedTo.UnixMicro())
	}
	if q.BeforeID != "" {
		add("id <", q.BeforeID)
	}
	args = append(args, q.Limit)
	b.WriteString(` ORDER BY id DESC LIMIT $` + strconv.Itoa(len(args)))
	return queryMany(ctx, s.db.SQL, scanOrder, b.String(), args...)
}

const attemptCols = `id, order_id, merchant_id, channel, channel_trade_no, amount, currency, status, fail_code, review,
	paid_at, query_count, next_query_at, created_at, updated_at`

func scanAttempt(sc scanner) (payment.Attempt, error) {
	var a payment.Attempt
	var trade sql.NullString
	var next sql.NullInt64
	var cur, status, review string
	var paid, created, updated int64
	err := sc.Scan(&a.ID, &a.OrderID, &a.MerchantID, &a.Channel, &trade, &a.Amount, &cur, &status, &a.FailCode, &review,
		&paid, &a.QueryCount, &next, &created, &updated)
	a.ChannelTradeNo, a.Currency, a.Status, a.Review = trade.String, paygate.Currency(cur), channel.Status(status), payment.Review(review)
	a.PaidAt, a.NextQueryAt, a.CreatedAt, a.UpdatedAt = fromMicros(paid), fromMicros(next.Int64), fromMicros(created), fromMicros(updated)
	return a, err
}

func nullString(s string) any {
	if s == "" {
		return nil
	}
	return s
}

func nullMicros(t time.Time) any {
	if t.IsZero() {
		return nil
	}
	return t.UnixMicro()
}

// InsertAttempt implements payment.Tx.
func (tx *Tx) InsertAttempt(ctx context.Context, a payment.Attempt) error {
	_, err := tx.tx.ExecContext(ctx, `INSERT INTO payment_attempts (`+attemptCols+`) VALUES (`+placeholders(1, 15)+`)`,
		a.ID, a.OrderID, a.MerchantID, a.Channel, nullString(a.ChannelTradeNo), a.Amount, string(a.Currency), string(a.Status),
		a.FailCode, string(a.Review), micros(a.PaidAt), a.QueryCount, nullMicros(a.NextQueryAt), micros(a.CreatedAt), micros(a.UpdatedAt))
	return wrapDB(err)
}

// LockAttempt implements payment.Tx.
func (tx *Tx) LockAttempt(ctx context.Context, id string) (payment.Attempt, error) {
	return queryOne(ctx, tx.tx, scanAttempt, attemptNotFound, `SELECT `+attemptCols+` FROM payment_attempts WHERE id = $1`+tx.db.lockSuffix, id)
}

// UpdateAttempt implements payment.Tx.
func (tx *Tx) UpdateAttempt(ctx context.Context, a payment.Attempt) error {
	res, err := tx.tx.ExecContext(ctx, `UPDATE payment_attempts SET channel_trade_no = $1, status = $2, fail_code = $3, review = $4,
		paid_at = $5, query_count = $6, next_query_at = $7, updated_at = $8 WHERE id = $9`,
		nullString(a.ChannelTradeNo), string(a.Status), a.FailCode, string(a.Review), micros(a.PaidAt), a.QueryCount,
		nullMicros(a.NextQueryAt), micros(a.UpdatedAt), a.ID)
	return affectedOne(res, err, attemptNotFound)
}

// LockAttemptsToQuery implements payment.Tx with SKIP LOCKED on PostgreSQL.
func (tx *Tx) LockAttemptsToQuery(ctx context.Context, now time.Time, limit int) ([]payment.Attempt, error) {
	return queryMany(ctx, tx.tx, scanAttempt, `SELECT `+attemptCols+` FROM payment_attempts
		WHERE status = 'PROCESSING' AND next_query_at <= $1 ORDER BY next_query_at, id LIMIT $2`+tx.db.skipLocked, micros(now), limit)
}

func (s paymentStore) Attempt(ctx context.Context, id string) (payment.Attempt, error) {
	return queryOne(ctx, s.db.SQL, scanAttempt, attemptNotFound, `SELECT `+attemptCols+` FROM payment_attempts WHERE id = $1`, id)
}

func (s paymentStore) OrderAttempts(ctx context.Context, orderID string) ([]payment.Attempt, error) {
	return queryMany(ctx, s.db.SQL, scanAttempt, `SELECT `+attemptCols+` FROM payment_attempts WHERE order_id = $1 ORDER BY id`, orderID)
}

func (s paymentStore) AttemptsInReview(ctx context.Context, afterID string, limit int) ([]payment.Attempt, error) {
	return queryMany(ctx, s.db.SQL, scanAttempt, `SELECT `+attemptCols+` FROM payment_attempts
		WHERE review <> '' AND id > $1 ORDER BY id LIMIT $2`, afterID, limit)
}
