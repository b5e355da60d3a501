package store

import (
	"context"
	"database/sql"
	"time"

	"paygate"
	"paygate/agreement"
)

// Agreements returns db as the agreement package's Store.
func (db *DB) Agreements() agreement.Store { return agreementStore{db} }

type agreementStore struct{ db *DB }

var (
	_ agreement.Store    = agreementStore{}
	_ agreement.SignTx   = (*Tx)(nil)
	_ agreement.ChargeTx = (*Tx)(nil)
)

// InTx implements agreement.Store.
func (s agreementStore) InTx(ctx context.Context, fn func(agreement.SignTx) error) error {
	return s.db.InTx(ctx, func(tx *Tx) error { return fn(tx) })
}

const merchantAgreementCols = `id, merchant_id, out_agreement_no, request_hash, plan, description, currency, per_payment_limit,
	daily_limit, end_date, ends_at, notify_url, return_url, status, customer_id, card_id, card_masked, card_bank,
	sign_expires_at, signed_at, revoked_at, revoked_by, expired_at, sandbox, created_at, updated_at`

func scanMerchantAgreement(sc scanner) (agreement.Record, error) {
	var a agreement.Record
	var cus, card sql.NullString
	var cur, status, end string
	var endsAt, signExp, signed, revoked, expired, created, updated int64
	if err := sc.Scan(&a.ID, &a.MerchantID, &a.OutAgreementNo, &a.RequestHash, &a.Plan, &a.Description, &cur, &a.PerPaymentLimit,
		&a.DailyLimit, &end, &endsAt, &a.NotifyURL, &a.ReturnURL, &status, &cus, &card, &a.Card, &a.Bank,
		&signExp, &signed, &revoked, &a.RevokedBy, &expired, &a.Sandbox, &created, &updated); err != nil {
		return a, err
	}
	a.Currency, a.Status, a.EndDate = paygate.Currency(cur), agreement.Status(status), paygate.Date(end)
	a.CustomerID, a.CardID = cus.String, card.String
	a.EndsAt, a.SignExpireTime, a.SignedTime = fromMicros(endsAt), fromMicros(signExp), fromMicros(signed)
	a.RevokedTime, a.ExpiredTime, a.CreateTime, a.UpdateTime = fromMicros(revoked), fromMicros(expired), fromMicros(created), fromMicros(updated)
	return a, nil
}

func merchantAgreementNotFound() error { return paygate.E(paygate.CodeNotFound, "agreement not found") }

// InsertMerchantAgreement implements agreement.Tx.
func (tx *Tx) InsertMerchantAgreement(ctx context.Context, a agreement.Record) (bool, error) {
	res, err := tx.tx.ExecContext(ctx, `INSERT INTO merchant_agreements (`+merchantAgreementCols+`) VALUES (`+placeholders(1, 26)+`)
		ON CONFLICT DO NOTHING`,
		a.ID, a.MerchantID, a.OutAgreementNo, a.RequestHash, a.Plan, a.Description, string(a.Currency), a.PerPaymentLimit,
		a.DailyLimit, string(a.EndDate), micros(a.EndsAt), a.NotifyURL, a.ReturnURL, string(a.Status), nullString(a.CustomerID),
		nullString(a.CardID), a.Card, a.Bank, micros(a.SignExpireTime), micros(a.SignedTime), micros(a.RevokedTime), a.RevokedBy,
		micros(a.ExpiredTime), a.Sandbox, micros(a.CreateTime), micros(a.UpdateTime))
	if err != nil {
		return false, wrapDB(err)
	}
	n, err := res.RowsAffected()
	return n == 1, wrapDB(err)
}

// MerchantAgreementByNoInTx implements agreement.Tx.
func (tx *Tx) MerchantAgreementByNoInTx(ctx context.Context, merchantID, no string) (agreement.Record, error) {
	return queryOne(ctx, tx.tx, scanMerchantAgreement, merchantAgreementNotFound, `SELECT `+merchantAgreementCols+` FROM merchant_agreements
		WHERE merchant_id = $1 AND out_agreement_no = $2`, merchantID, no)
}

// LockMerchantAgreement implements agreement.Tx: FOR UPDATE on PostgreSQL.
func (tx *Tx) LockMerchantAgreement(ctx context.Context, id string) (agreement.Record, error) {
	return queryOne(ctx, tx.tx, scanMerchantAgreement, merchantAgreementNotFound, `SELECT `+merchantAgreementCols+` FROM merchant_agreements
		WHERE id = $1`+tx.db.lockSuffix, id)
}

// UpdateMerchantAgreement implements agreement.Tx.
func (tx *Tx) UpdateMerchantAgreement(ctx context.Context, a agreement.Record) error {
	res, err := tx.tx.ExecContext(ctx, `UPDATE merchant_agreements SET status = $1, customer_id = $2, card_id = $3, card_masked = $4,
		card_bank = $5, signed_at = $6, revoked_at = $7, revoked_by = $8, expired_at = $9, updated_at = $10 WHERE id = $11`,
		string(a.Status), nullString(a.CustomerID), nullString(a.CardID), a.Card, a.Bank, micros(a.SignedTime), micros(a.RevokedTime),
		a.RevokedBy, micros(a.ExpiredTime), micros(a.UpdateTime), a.ID)
	return affectedOne(res, err, merchantAgreementNotFound)
}

// LockDueMerchantAgreements implements agreement.Tx with SKIP LOCKED on
// PostgreSQL; each arm walks its partial index.
func (tx *Tx) LockDueMerchantAgreements(ctx context.Context, now time.Time, limit int) ([]agreement.Record, error) {
	pending, err := queryMany(ctx, tx.tx, scanMerchantAgreement, `SELECT `+merchantAgreementCols+` FROM merchant_agreements
		WHERE status = 'PENDING' AND sign_expires_at <= $1 ORDER BY sign_expires_at, id LIMIT $2`+tx.db.skipLocked, micros(now), limit)
	if err != nil || len(pending) >= limit {
		return pending, err
	}
	signed, err := queryMany(ctx, tx.tx, scanMerchantAgreement, `SELECT `+merchantAgreementCols+` FROM merchant_agreements
		WHERE status = 'SIGNED' AND ends_at > 0 AND ends_at <= $1 ORDER BY ends_at, id LIMIT $2`+tx.db.skipLocked, micros(now), limit-len(pending))
	return append(pending, signed...), err
}

// AgreementChargedOn implements agreement.Tx: a charge counts unless its
// order's attempt failed (a charge's order has one attempt).
func (tx *Tx) AgreementChargedOn(ctx context.Context, agreementID string, day paygate.Date) (int64, error) {
	var n int64
	err := tx.tx.QueryRowContext(ctx, `SELECT COALESCE(SUM(c.amount), 0) FROM merchant_agreement_charges c
		WHERE c.agreement_id = $1 AND c.accounting_date = $2
		AND NOT EXISTS (SELECT 1 FROM payment_attempts a WHERE a.order_id = c.order_id AND a.status = 'FAILED')`,
		agreementID, string(day)).Scan(&n)
	return n, wrapDB(err)
}

// InsertAgreementCharge implements agreement.Tx.
func (tx *Tx) InsertAgreementCharge(ctx context.Context, c agreement.ChargeRecord) error {
	_, err := tx.tx.ExecContext(ctx, `INSERT INTO merchant_agreement_charges (order_id, agreement_id, amount, accounting_date, created_at)
		VALUES ($1, $2, $3, $4, $5)`, c.OrderID, c.AgreementID, c.Amount, string(c.Day), micros(c.CreatedAt))
	return wrapDB(err)
}

// MerchantAgreement implements agreement.Store.
func (s agreementStore) MerchantAgreement(ctx context.Context, id string) (agreement.Record, error) {
	return queryOne(ctx, s.db.SQL, scanMerchantAgreement, merchantAgreementNotFound, `SELECT `+merchantAgreementCols+` FROM merchant_agreements
		WHERE id = $1`, id)
}

// MerchantAgreementByNo implements agreement.Store.
func (s agreementStore) MerchantAgreementByNo(ctx context.Context, merchantID, no string) (agreement.Record, error) {
	return queryOne(ctx, s.db.SQL, scanMerchantAgreement, merchantAgreementNotFound, `SELECT `+merchantAgreementCols+` FROM merchant_agreements
		WHERE merchant_id = $1 AND out_agreement_no = $2`, merchantID, no)
}

// MerchantAgreements implements agreement.Store.
func (s agreementStore) MerchantAgreements(ctx context.Context, merchantID string, status agreement.Status, before string, limit int) ([]agreement.Record, error) {
	q, args := `SELECT `+merchantAgreementCols+` FROM merchant_agreements WHERE merchant_id = $1`, []any{merchantID}
	if status != "" {
		args = append(args, string(status))
		q += ` AND status = $2`
	}
	if before != "" {
		args = append(args, before)
		q += ` AND id < ` + placeholders(len(args), 1)
	}
	args = append(args, limit)
	q += ` ORDER BY id DESC LIMIT ` + placeholders(len(args), 1)
	return queryMany(ctx, s.db.SQL, scanMerchantAgreement, q, args...)
}

// CustomerMerchantAgreements implements agreement.Store.
func (s agreementStore) CustomerMerchantAgreements(ctx context.Context, customerID string) ([]agreement.Record, error) {
	return queryMany(ctx, s.db.SQL, scanMerchantAgreement, `SELECT `+merchantAgreementCols+` FROM merchant_agreements
		WHERE customer_id = $1 ORDER BY id DESC LIMIT 200`, customerID)
}
