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

// InTx implements payment.Store.
func (s paymentStore) InTx(ctx context.Context, fn func(payment.Tx) error) error {
	return s.db.InTx(ctx, func(tx *Tx) error { return fn(tx) })
}

const orderCols = `id, merchant_id, out_trade_no, description, amount, currency, status, notify_url, return_url, attach,
	metadata, payment_methods, time_expire, sandbox, request_hash, payer_total, fee, transaction_id, channel,
	channel_trade_no, success_time, close_time, close_reason, created_at, updated_at, settled_at,
	capture_method, authorized_amount, captured_amount, authorize_time, capture_before`

type scanner interface{ Scan(...any) error }

// orderRow holds one scanned payment_orders row before conversion.
type orderRow struct {
	o                                         payment.Order
	cur, status, md, methods                  string
	expire, success, closed, created, updated int64
	settled                                   int64
	capture                                   string
	authorized, captureBefore                 int64
}

func (r *orderRow) dest() []any {
	o := &r.o
	return []any{&o.ID, &o.MerchantID, &o.OutTradeNo, &o.Description, &o.Amount.Total, &r.cur, &r.status, &o.NotifyURL,
		&o.ReturnURL, &o.Attach, &r.md, &r.methods, &r.expire, &o.Sandbox, &o.RequestHash, &o.Amount.PayerTotal, &o.Fee,
		&o.TransactionID, &o.Channel, &o.ChannelTradeNo, &r.success, &r.closed, &o.CloseReason, &r.created, &r.updated, &r.settled,
		&r.capture, &o.Amount.Authorized, &o.Amount.Captured, &r.authorized, &r.captureBefore}
}

func (r *orderRow) order() (payment.Order, error) {
	o := r.o
	o.Amount.Currency, o.Status = paygate.Currency(r.cur), payment.Status(r.status)
	o.TimeExpire, o.SuccessTime, o.CloseTime = fromMicros(r.expire), fromMicros(r.success), fromMicros(r.closed)
	o.CreateTime, o.UpdateTime, o.SettleTime = fromMicros(r.created), fromMicros(r.updated), fromMicros(r.settled)
	o.CaptureMethod, o.AuthorizeTime, o.CaptureBefore = payment.CaptureMethod(r.capture), fromMicros(r.authorized), fromMicros(r.captureBefore)
	if r.md != "" {
		if err := json.Unmarshal([]byte(r.md), &o.Metadata); err != nil {
			return o, err
		}
	}
	if r.methods != "" {
		if err := json.Unmarshal([]byte(r.methods), &o.PaymentMethods); err != nil {
			return o, err
		}
	}
	return o, nil
}

func scanOrder(sc scanner) (payment.Order, error) {
	var r orderRow
	if err := sc.Scan(r.dest()...); err != nil {
		return payment.Order{}, err
	}
	return r.order()
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
	res, err := tx.tx.ExecContext(ctx, `INSERT INTO payment_orders (`+orderCols+`) VALUES (`+placeholders(1, 31)+`)
		ON CONFLICT (merchant_id, out_trade_no) DO NOTHING`,
		o.ID, o.MerchantID, o.OutTradeNo, o.Description, o.Amount.Total, string(o.Amount.Currency), string(o.Status), o.NotifyURL,
		o.ReturnURL, o.Attach, md, methods, micros(o.TimeExpire), o.Sandbox, o.RequestHash, o.Amount.PayerTotal, o.Fee,
		o.TransactionID, o.Channel, o.ChannelTradeNo, micros(o.SuccessTime), micros(o.CloseTime), o.CloseReason,
		micros(o.CreateTime), micros(o.UpdateTime), micros(o.SettleTime),
		string(captureMethod(o.CaptureMethod)), o.Amount.Authorized, o.Amount.Captured, micros(o.AuthorizeTime), micros(o.CaptureBefore))
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
		channel = $5, channel_trade_no = $6, success_time = $7, close_time = $8, close_reason = $9, updated_at = $10, settled_at = $11,
		authorized_amount = $12, captured_amount = $13, authorize_time = $14, capture_before = $15
		WHERE id = $16`,
		string(o.Status), o.Amount.PayerTotal, o.Fee, o.TransactionID, o.Channel, o.ChannelTradeNo, micros(o.SuccessTime),
		micros(o.CloseTime), o.CloseReason, micros(o.UpdateTime), micros(o.SettleTime),
		o.Amount.Authorized, o.Amount.Captured, micros(o.AuthorizeTime), micros(o.CaptureBefore), o.ID)
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

// Order implements payment.Store.
func (s paymentStore) Order(ctx context.Context, merchantID, id string) (payment.Order, error) {
	return queryOne(ctx, s.db.SQL, scanOrder, orderNotFound, `SELECT `+orderCols+` FROM payment_orders
		WHERE id = $1 AND merchant_id = $2`, id, merchantID)
}

// OrderByID implements payment.Store.
func (s paymentStore) OrderByID(ctx context.Context, id string) (payment.Order, error) {
	return queryOne(ctx, s.db.SQL, scanOrder, orderNotFound, `SELECT `+orderCols+` FROM payment_orders WHERE id = $1`, id)
}

// OrderByOutTradeNo implements payment.Store.
func (s paymentStore) OrderByOutTradeNo(ctx context.Context, merchantID, outTradeNo string) (payment.Order, error) {
	return queryOne(ctx, s.db.SQL, scanOrder, orderNotFound, `SELECT `+orderCols+` FROM payment_orders
		WHERE merchant_id = $1 AND out_trade_no = $2`, merchantID, outTradeNo)
}

// Orders implements payment.Store.
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
	paid_at, query_count, next_query_at, created_at, updated_at, method, customer_id, card_id, limit_day`

// attemptRow holds one scanned payment_attempts row before conversion.
type attemptRow struct {
	a                      payment.Attempt
	trade                  sql.NullString
	next                   sql.NullInt64
	cur, status, review    string
	day                    string
	paid, created, updated int64
}

func (r *attemptRow) dest() []any {
	a := &r.a
	return []any{&a.ID, &a.OrderID, &a.MerchantID, &a.Channel, &r.trade, &a.Amount, &r.cur, &r.status, &a.FailCode, &r.review,
		&r.paid, &a.QueryCount, &r.next, &r.created, &r.updated, &a.Payer.Method, &a.Payer.CustomerID, &a.Payer.CardID, &r.day}
}

func (r *attemptRow) attempt() payment.Attempt {
	a := r.a
	a.ChannelTradeNo, a.Currency, a.Status, a.Review = r.trade.String, paygate.Currency(r.cur), channel.Status(r.status), payment.Review(r.review)
	a.PaidAt, a.NextQueryAt, a.CreatedAt, a.UpdatedAt = fromMicros(r.paid), fromMicros(r.next.Int64), fromMicros(r.created), fromMicros(r.updated)
	a.LimitDay = paygate.Date(r.day)
	return a
}

func scanAttempt(sc scanner) (payment.Attempt, error) {
	var r attemptRow
	if err := sc.Scan(r.dest()...); err != nil {
		return payment.Attempt{}, err
	}
	return r.attempt(), nil
}

// InsertAttempt implements payment.Tx.
func (tx *Tx) InsertAttempt(ctx context.Context, a payment.Attempt) error {
	_, err := tx.tx.ExecContext(ctx, `INSERT INTO payment_attempts (`+attemptCols+`) VALUES (`+placeholders(1, 19)+`)`,
		a.ID, a.OrderID, a.MerchantID, a.Channel, nullString(a.ChannelTradeNo), a.Amount, string(a.Currency), string(a.Status),
		a.FailCode, string(a.Review), micros(a.PaidAt), a.QueryCount, nullMicros(a.NextQueryAt), micros(a.CreatedAt), micros(a.UpdatedAt),
		a.Payer.Method, a.Payer.CustomerID, a.Payer.CardID, string(a.LimitDay))
	return wrapDB(err)
}

// LockAttemptWithOrder implements payment.Tx: one SELECT … FOR UPDATE
// over the join locks both rows on PostgreSQL.
func (tx *Tx) LockAttemptWithOrder(ctx context.Context, id string) (payment.Attempt, payment.Order, error) {
	type pair struct {
		a payment.Attempt
		o payment.Order
	}
	p, err := queryOne(ctx, tx.tx, func(sc scanner) (pair, error) {
		var ar attemptRow
		var or orderRow
		if err := sc.Scan(append(ar.dest(), or.dest()...)...); err != nil {
			return pair{}, err
		}
		o, err := or.order()
		return pair{ar.attempt(), o}, err
	}, attemptNotFound, `SELECT `+prefixed("a.", attemptCols)+`, `+prefixed("o.", orderCols)+`
		FROM payment_attempts a JOIN payment_orders o ON o.id = a.order_id WHERE a.id = $1`+tx.db.lockSuffix, id)
	return p.a, p.o, err
}

// prefixed qualifies each column of a column list with a table alias.
func prefixed(alias, cols string) string {
	parts := strings.Split(cols, ",")
	for i, p := range parts {
		parts[i] = alias + strings.TrimSpace(p)
	}
	return strings.Join(parts, ", ")
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

// ProcessingAttempts implements payment.Tx.
func (tx *Tx) ProcessingAttempts(ctx context.Context, orderID string) ([]payment.Attempt, error) {
	return queryMany(ctx, tx.tx, scanAttempt, `SELECT `+attemptCols+` FROM payment_attempts
		WHERE order_id = $1 AND status = 'PROCESSING' ORDER BY id`, orderID)
}

// SetAttemptTradeNo implements payment.Store in one autocommitted
// statement, queued on SQLite for the writer slot like every write
// transaction.
func (s paymentStore) SetAttemptTradeNo(ctx context.Context, id, tradeNo string, now time.Time) (bool, error) {
	res, err := s.db.execWrite(ctx, `UPDATE payment_attempts SET channel_trade_no = $1, updated_at = $2
		WHERE id = $3 AND channel_trade_no IS NULL AND status = 'PROCESSING'`, tradeNo, micros(now), id)
	if err != nil {
		return false, wrapDB(err)
	}
	n, err := res.RowsAffected()
	return n == 1, wrapDB(err)
}

// Attempt implements payment.Store.
func (s paymentStore) Attempt(ctx context.Context, id string) (payment.Attempt, error) {
	return queryOne(ctx, s.db.SQL, scanAttempt, attemptNotFound, `SELECT `+attemptCols+` FROM payment_attempts WHERE id = $1`, id)
}

// OrderAttempts implements payment.Store.
func (s paymentStore) OrderAttempts(ctx context.Context, orderID string) ([]payment.Attempt, error) {
	return queryMany(ctx, s.db.SQL, scanAttempt, `SELECT `+attemptCols+` FROM payment_attempts WHERE order_id = $1 ORDER BY id`, orderID)
}

// AttemptsInReview implements payment.Store.
func (s paymentStore) AttemptsInReview(ctx context.Context, afterID string, limit int) ([]payment.Attempt, error) {
	return queryMany(ctx, s.db.SQL, scanAttempt, `SELECT `+attemptCols+` FROM payment_attempts
		WHERE review <> '' AND id > $1 ORDER BY id LIMIT $2`, afterID, limit)
}
