package store

import (
	"context"
	"database/sql"
	"time"

	"paygate"
	"paygate/transfer"
)

// Transfers returns db as the transfer package's Store.
func (db *DB) Transfers() transfer.Store { return transferStore{db} }

type transferStore struct{ db *DB }

var (
	_ transfer.Store = transferStore{}
	_ transfer.Tx    = (*Tx)(nil)
)

// InTx implements transfer.Store.
func (s transferStore) InTx(ctx context.Context, fn func(transfer.Tx) error) error {
	return s.db.InTx(ctx, func(tx *Tx) error { return fn(tx) })
}

const customerTransferCols = `id, customer_id, request_id, request_hash, kind, recipient_customer_id, recipient_card_id,
	recipient_masked, recipient_name, sender_masked, sender_name, card_enc, card_kid, amount, currency, memo, status,
	fail_code, accounting_date, scenario, channel, channel_no, query_count, next_query_at, finished_at, created_at, updated_at`

func scanTransfer(sc scanner) (transfer.Record, error) {
	var r transfer.Record
	var rcus, rcard, chNo sql.NullString
	var next sql.NullInt64
	var kind, cur, status, date string
	var finished, created, updated int64
	if err := sc.Scan(&r.ID, &r.CustomerID, &r.RequestID, &r.RequestHash, &kind, &rcus, &rcard, &r.Recipient,
		&r.RecipientName, &r.Sender, &r.SenderName, &r.Card.Ciphertext, &r.Card.KeyID, &r.Amount.Amount, &cur, &r.Memo,
		&status, &r.FailCode, &date, &r.Scenario, &r.Channel, &chNo, &r.QueryCount, &next, &finished, &created, &updated); err != nil {
		return r, err
	}
	r.Kind, r.Status, r.Amount.Currency, r.AccountingDate = transfer.Kind(kind), transfer.Status(status), paygate.Currency(cur), paygate.Date(date)
	r.RecipientCustomerID, r.RecipientCardID, r.ChannelNo = rcus.String, rcard.String, chNo.String
	r.NextQueryAt, r.FinishedAt = fromMicros(next.Int64), fromMicros(finished)
	r.CreatedAt, r.UpdatedAt = fromMicros(created), fromMicros(updated)
	return r, nil
}

func transferNotFound() error { return paygate.E(paygate.CodeNotFound, "transfer not found") }

// InsertTransfer implements transfer.Tx.
func (tx *Tx) InsertTransfer(ctx context.Context, r transfer.Record) (bool, error) {
	res, err := tx.tx.ExecContext(ctx, `INSERT INTO customer_transfers (`+customerTransferCols+`) VALUES (`+placeholders(1, 27)+`)
		ON CONFLICT DO NOTHING`,
		r.ID, r.CustomerID, r.RequestID, r.RequestHash, string(r.Kind), nullString(r.RecipientCustomerID),
		nullString(r.RecipientCardID), r.Recipient, r.RecipientName, r.Sender, r.SenderName, r.Card.Ciphertext, r.Card.KeyID,
		r.Amount.Amount, string(r.Amount.Currency), r.Memo, string(r.Status), r.FailCode, string(r.AccountingDate), r.Scenario,
		r.Channel, nullString(r.ChannelNo), r.QueryCount, nullMicros(r.NextQueryAt), micros(r.FinishedAt), micros(r.CreatedAt),
		micros(r.UpdatedAt))
	if err != nil {
		return false, wrapDB(err)
	}
	n, err := res.RowsAffected()
	return n == 1, wrapDB(err)
}

// LockTransfer implements transfer.Tx: FOR UPDATE on PostgreSQL.
func (tx *Tx) LockTransfer(ctx context.Context, id string) (transfer.Record, error) {
	return queryOne(ctx, tx.tx, scanTransfer, transferNotFound, `SELECT `+customerTransferCols+` FROM customer_transfers
		WHERE id = $1`+tx.db.lockSuffix, id)
}

// UpdateTransfer implements transfer.Tx.
func (tx *Tx) UpdateTransfer(ctx context.Context, r transfer.Record) error {
	res, err := tx.tx.ExecContext(ctx, `UPDATE customer_transfers SET status = $1, fail_code = $2, channel_no = $3,
		query_count = $4, next_query_at = $5, finished_at = $6, updated_at = $7 WHERE id = $8`,
		string(r.Status), r.FailCode, nullString(r.ChannelNo), r.QueryCount, nullMicros(r.NextQueryAt), micros(r.FinishedAt),
		micros(r.UpdatedAt), r.ID)
	return affectedOne(res, err, transferNotFound)
}

// LockTransfersToQuery implements transfer.Tx with SKIP LOCKED on
// PostgreSQL.
func (tx *Tx) LockTransfersToQuery(ctx context.Context, now time.Time, limit int) ([]transfer.Record, error) {
	return queryMany(ctx, tx.tx, scanTransfer, `SELECT `+customerTransferCols+` FROM customer_transfers
		WHERE status = 'PROCESSING' AND next_query_at <= $1 ORDER BY next_query_at, id LIMIT $2`+tx.db.skipLocked, micros(now), limit)
}

// Transfer implements transfer.Store.
func (s transferStore) Transfer(ctx context.Context, id string) (transfer.Record, error) {
	return queryOne(ctx, s.db.SQL, scanTransfer, transferNotFound, `SELECT `+customerTransferCols+` FROM customer_transfers WHERE id = $1`, id)
}

// TransferByRequest implements transfer.Store.
func (s transferStore) TransferByRequest(ctx context.Context, customerID, requestID string) (transfer.Record, error) {
	return queryOne(ctx, s.db.SQL, scanTransfer, transferNotFound, `SELECT `+customerTransferCols+` FROM customer_transfers
		WHERE customer_id = $1 AND request_id = $2`, customerID, requestID)
}

// CustomerTransfers implements transfer.Store: the sent and the received
// transfers each walk their own index, merged newest first. Ids compare as
// the same kind of string throughout (prefix and hex digits), so the
// collation does not matter.
func (s transferStore) CustomerTransfers(ctx context.Context, customerID, before string, limit int) ([]transfer.Record, error) {
	cond, args := "", []any{customerID, limit}
	if before != "" {
		cond, args = " AND id < $3", append(args, before)
	}
	return queryMany(ctx, s.db.SQL, scanTransfer, `SELECT `+customerTransferCols+` FROM (
		SELECT `+customerTransferCols+` FROM customer_transfers WHERE customer_id = $1`+cond+`
		UNION ALL
		SELECT `+customerTransferCols+` FROM customer_transfers WHERE recipient_customer_id = $1 AND customer_id <> $1`+cond+`
	) t ORDER BY id DESC LIMIT $2`, args...)
}

// SetChannelNo implements transfer.Store in one autocommitted statement,
// queued on SQLite for the writer slot.
func (s transferStore) SetChannelNo(ctx context.Context, id, channelNo string, now time.Time) (bool, error) {
	res, err := s.db.execWrite(ctx, `UPDATE customer_transfers SET channel_no = $1, updated_at = $2
		WHERE id = $3 AND channel_no IS NULL AND status = 'PROCESSING'`, channelNo, micros(now), id)
	if err != nil {
		return false, wrapDB(err)
	}
	n, err := res.RowsAffected()
	return n == 1, wrapDB(err)
}
