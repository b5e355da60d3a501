package store

import (
	"context"
	"database/sql"
	"time"

	"paygate"
	"paygate/customer"
)

// Customers returns db as the customer package's Store.
func (db *DB) Customers() customer.Store { return customerStore{db} }

type customerStore struct{ db *DB }

var (
	_ customer.Store = customerStore{}
	_ customer.Tx    = (*Tx)(nil)
)

// InTx implements customer.Store.
func (s customerStore) InTx(ctx context.Context, fn func(customer.Tx) error) error {
	return s.db.InTx(ctx, func(tx *Tx) error { return fn(tx) })
}

const customerCols = `id, phone, username, password_hash, pay_password_hash, status, factors, online_payment,
	identity_enc, identity_kid, id_index, name_masked, id_masked, phone_masked, verified_at,
	login_failures, login_window_start, login_locked_until, pay_failures, pay_window_start, pay_locked_until,
	created_at, updated_at`

func scanCustomer(sc scanner) (customer.Record, error) {
	var r customer.Record
	var phone, username, idIndex sql.NullString
	var status string
	var factors int64
	var verified, lws, llu, pws, plu, created, updated int64
	if err := sc.Scan(&r.ID, &phone, &username, &r.PasswordHash, &r.PayPasswordHash, &status, &factors, &r.OnlinePayment,
		&r.Identity.Ciphertext, &r.Identity.KeyID, &idIndex, &r.NameMasked, &r.IDMasked, &r.PhoneMasked, &verified,
		&r.Login.Failures, &lws, &llu, &r.Pay.Failures, &pws, &plu, &created, &updated); err != nil {
		return r, err
	}
	r.Phone, r.Username, r.IDIndex = phone.String, username.String, idIndex.String
	r.Status, r.Factors = customer.Status(status), customer.Factors(factors)
	r.VerifiedAt, r.CreatedAt, r.UpdatedAt = fromMicros(verified), fromMicros(created), fromMicros(updated)
	r.Login.WindowStart, r.Login.LockedUntil = fromMicros(lws), fromMicros(llu)
	r.Pay.WindowStart, r.Pay.LockedUntil = fromMicros(pws), fromMicros(plu)
	r.PayPasswordSet = r.PayPasswordHash != ""
	return r, nil
}

func customerNotFound() error { return paygate.E(paygate.CodeNotFound, "customer not found") }

func customerCardNotFound() error { return paygate.E(paygate.CodeNotFound, "card not found") }

func agreementNotFound() error { return paygate.E(paygate.CodeNotFound, "agreement not found") }

// InsertCustomer implements customer.Tx.
func (tx *Tx) InsertCustomer(ctx context.Context, r customer.Record) (bool, error) {
	res, err := tx.tx.ExecContext(ctx, `INSERT INTO customers (`+customerCols+`) VALUES (`+placeholders(1, 23)+`)
		ON CONFLICT DO NOTHING`,
		r.ID, nullString(r.Phone), nullString(r.Username), r.PasswordHash, r.PayPasswordHash, string(r.Status), int64(r.Factors),
		r.OnlinePayment, r.Identity.Ciphertext, r.Identity.KeyID, nullString(r.IDIndex), r.NameMasked, r.IDMasked, r.PhoneMasked,
		micros(r.VerifiedAt), r.Login.Failures, micros(r.Login.WindowStart), micros(r.Login.LockedUntil), r.Pay.Failures,
		micros(r.Pay.WindowStart), micros(r.Pay.LockedUntil), micros(r.CreatedAt), micros(r.UpdatedAt))
	if err != nil {
		return false, wrapDB(err)
	}
	n, err := res.RowsAffected()
	return n == 1, wrapDB(err)
}

// CustomerInTx implements customer.Tx.
func (tx *Tx) CustomerInTx(ctx context.Context, id string) (customer.Record, error) {
	return queryOne(ctx, tx.tx, scanCustomer, customerNotFound, `SELECT `+customerCols+` FROM customers WHERE id = $1`, id)
}

// LockCustomer implements customer.Tx: FOR UPDATE on PostgreSQL.
func (tx *Tx) LockCustomer(ctx context.Context, id string) (customer.Record, error) {
	return queryOne(ctx, tx.tx, scanCustomer, customerNotFound, `SELECT `+customerCols+` FROM customers WHERE id = $1`+tx.db.lockSuffix, id)
}

// UpdateCustomer implements customer.Tx.
func (tx *Tx) UpdateCustomer(ctx context.Context, r customer.Record) error {
	res, err := tx.tx.ExecContext(ctx, `UPDATE customers SET password_hash = $1, pay_password_hash = $2, status = $3,
		factors = $4, online_payment = $5, identity_enc = $6, identity_kid = $7, id_index = $8, name_masked = $9,
		id_masked = $10, phone_masked = $11, verified_at = $12, login_failures = $13, login_window_start = $14,
		login_locked_until = $15, pay_failures = $16, pay_window_start = $17, pay_locked_until = $18, updated_at = $19
		WHERE id = $20`,
		r.PasswordHash, r.PayPasswordHash, string(r.Status), int64(r.Factors), r.OnlinePayment, r.Identity.Ciphertext,
		r.Identity.KeyID, nullString(r.IDIndex), r.NameMasked, r.IDMasked, r.PhoneMasked, micros(r.VerifiedAt),
		r.Login.Failures, micros(r.Login.WindowStart), micros(r.Login.LockedUntil), r.Pay.Failures,
		micros(r.Pay.WindowStart), micros(r.Pay.LockedUntil), micros(r.UpdatedAt), r.ID)
	return affectedOne(res, err, customerNotFound)
}

func (s customerStore) Customer(ctx context.Context, id string) (customer.Record, error) {
	return queryOne(ctx, s.db.SQL, scanCustomer, customerNotFound, `SELECT `+customerCols+` FROM customers WHERE id = $1`, id)
}

func (s customerStore) CustomerByLogin(ctx context.Context, login string) (customer.Record, error) {
	return queryOne(ctx, s.db.SQL, scanCustomer, customerNotFound, `SELECT `+customerCols+` FROM customers
		WHERE phone = $1 UNION ALL SELECT `+customerCols+` FROM customers WHERE username = $1`, login)
}

const cardCols = `id, customer_id, kind, bank, status, pan_enc, pan_kid, pan_index, first6, last4, pan_length, holder_digest,
	holder_phone_enc, holder_phone_kid, holder_phone_masked, account_id, currency, single_limit, daily_limit, created_at, updated_at`

func scanCard(sc scanner) (customer.CardRecord, error) {
	var r customer.CardRecord
	var kind, status, first6, last4, cur string
	var length int
	var created, updated int64
	if err := sc.Scan(&r.ID, &r.CustomerID, &kind, &r.Bank, &status, &r.PAN.Ciphertext, &r.PAN.KeyID, &r.PANIndex, &first6,
		&last4, &length, &r.HolderDigest, &r.HolderPhone.Ciphertext, &r.HolderPhone.KeyID, &r.PhoneMasked, &r.AccountID, &cur,
		&r.SingleLimit, &r.DailyLimit, &created, &updated); err != nil {
		return r, err
	}
	r.Kind, r.Status, r.Currency = customer.CardKind(kind), customer.Status(status), paygate.Currency(cur)
	r.Number = customer.NewMasked(first6, last4, length)
	r.CreatedAt, r.UpdatedAt = fromMicros(created), fromMicros(updated)
	return r, nil
}

// InsertCard implements customer.Tx.
func (tx *Tx) InsertCard(ctx context.Context, c customer.CardRecord) (bool, error) {
	res, err := tx.tx.ExecContext(ctx, `INSERT INTO customer_cards (`+cardCols+`) VALUES (`+placeholders(1, 21)+`)
		ON CONFLICT DO NOTHING`,
		c.ID, c.CustomerID, string(c.Kind), c.Bank, string(c.Status), c.PAN.Ciphertext, c.PAN.KeyID, c.PANIndex,
		c.Number.First6(), c.Number.Last4(), len(c.Number.String()), c.HolderDigest, c.HolderPhone.Ciphertext,
		c.HolderPhone.KeyID, c.PhoneMasked, c.AccountID, string(c.Currency), c.SingleLimit, c.DailyLimit,
		micros(c.CreatedAt), micros(c.UpdatedAt))
	if err != nil {
		return false, wrapDB(err)
	}
	n, err := res.RowsAffected()
	return n == 1, wrapDB(err)
}

// CardInTx implements customer.Tx.
func (tx *Tx) CardInTx(ctx context.Context, id string) (customer.CardRecord, error) {
	return queryOne(ctx, tx.tx, scanCard, customerCardNotFound, `SELECT `+cardCols+` FROM customer_cards WHERE id = $1`, id)
}

// UpdateCard implements customer.Tx.
func (tx *Tx) UpdateCard(ctx context.Context, c customer.CardRecord) error {
	res, err := tx.tx.ExecContext(ctx, `UPDATE customer_cards SET status = $1, single_limit = $2, daily_limit = $3, updated_at = $4
		WHERE id = $5`, string(c.Status), c.SingleLimit, c.DailyLimit, micros(c.UpdatedAt), c.ID)
	return affectedOne(res, err, customerCardNotFound)
}

func (s customerStore) Card(ctx context.Context, id string) (customer.CardRecord, error) {
	return queryOne(ctx, s.db.SQL, scanCard, customerCardNotFound, `SELECT `+cardCols+` FROM customer_cards WHERE id = $1`, id)
}

func (s customerStore) CardByIndex(ctx context.Context, panIndex string) (customer.CardRecord, error) {
	return queryOne(ctx, s.db.SQL, scanCard, customerCardNotFound, `SELECT `+cardCols+` FROM customer_cards WHERE pan_index = $1`, panIndex)
}

func (s customerStore) Cards(ctx context.Context, customerID string) ([]customer.CardRecord, error) {
	return queryMany(ctx, s.db.SQL, scanCard, `SELECT `+cardCols+` FROM customer_cards WHERE customer_id = $1 ORDER BY id`, customerID)
}

const agreementCols = `id, customer_id, card_id, status, created_at, revoked_at`

func scanAgreement(sc scanner) (customer.Agreement, error) {
	var a customer.Agreement
	var status string
	var created, revoked int64
	if err := sc.Scan(&a.ID, &a.CustomerID, &a.CardID, &status, &created, &revoked); err != nil {
		return a, err
	}
	a.Status, a.CreatedAt, a.RevokedAt = customer.AgreementStatus(status), fromMicros(created), fromMicros(revoked)
	return a, nil
}

// InsertAgreement implements customer.Tx.
func (tx *Tx) InsertAgreement(ctx context.Context, a customer.Agreement) (bool, error) {
	res, err := tx.tx.ExecContext(ctx, `INSERT INTO customer_agreements (`+agreementCols+`) VALUES ($1, $2, $3, $4, $5, $6)
		ON CONFLICT DO NOTHING`, a.ID, a.CustomerID, a.CardID, string(a.Status), micros(a.CreatedAt), micros(a.RevokedAt))
	if err != nil {
		return false, wrapDB(err)
	}
	n, err := res.RowsAffected()
	return n == 1, wrapDB(err)
}

// LockAgreement implements customer.Tx.
func (tx *Tx) LockAgreement(ctx context.Context, id string) (customer.Agreement, error) {
	return queryOne(ctx, tx.tx, scanAgreement, agreementNotFound, `SELECT `+agreementCols+` FROM customer_agreements
		WHERE id = $1`+tx.db.lockSuffix, id)
}

// RevokeAgreement implements customer.Tx.
func (tx *Tx) RevokeAgreement(ctx context.Context, id string, at time.Time) error {
	res, err := tx.tx.ExecContext(ctx, `UPDATE customer_agreements SET status = 'REVOKED', revoked_at = $1
		WHERE id = $2 AND status = 'ACTIVE'`, micros(at), id)
	return affectedOne(res, err, agreementNotFound)
}

// CountActiveAgreements implements customer.Tx.
func (tx *Tx) CountActiveAgreements(ctx context.Context, customerID string) (int, error) {
	return queryOne(ctx, tx.tx, func(sc scanner) (int, error) {
		var n int
		return n, sc.Scan(&n)
	}, agreementNotFound, `SELECT COUNT(*) FROM customer_agreements WHERE customer_id = $1 AND status = 'ACTIVE'`, customerID)
}

func (s customerStore) Agreements(ctx context.Context, customerID string) ([]customer.Agreement, error) {
	return queryMany(ctx, s.db.SQL, scanAgreement, `SELECT `+agreementCols+` FROM customer_agreements
		WHERE customer_id = $1 ORDER BY id`, customerID)
}

func (s customerStore) Agreement(ctx context.Context, id string) (customer.Agreement, error) {
	return queryOne(ctx, s.db.SQL, scanAgreement, agreementNotFound, `SELECT `+agreementCols+` FROM customer_agreements WHERE id = $1`, id)
}

// AddUsage implements customer.Tx with one conditional upsert: the row is
// created with amount, or raised by amount only while it stays within
// limit. On PostgreSQL a concurrent raiser waits for the row lock and
// re-checks the condition against the committed value, so no interleaving
// overshoots; SQLite serialises writers.
func (tx *Tx) AddUsage(ctx context.Context, scope string, day paygate.Date, amount, limit int64) (bool, error) {
	if amount <= 0 || amount > limit {
		return false, nil
	}
	res, err := tx.tx.ExecContext(ctx, `INSERT INTO customer_limit_usage (scope, day, used) VALUES ($1, $2, $3)
		ON CONFLICT (scope, day) DO UPDATE SET used = customer_limit_usage.used + excluded.used
		WHERE customer_limit_usage.used <= $4 - excluded.used`, scope, string(day), amount, limit)
	if err != nil {
		return false, wrapDB(err)
	}
	n, err := res.RowsAffected()
	return n == 1, wrapDB(err)
}

// SubUsage implements customer.Tx.
func (tx *Tx) SubUsage(ctx context.Context, scope string, day paygate.Date, amount int64) error {
	_, err := tx.tx.ExecContext(ctx, `UPDATE customer_limit_usage SET used = CASE WHEN used > $1 THEN used - $1 ELSE 0 END
		WHERE scope = $2 AND day = $3`, amount, scope, string(day))
	return wrapDB(err)
}

func (s customerStore) Usage(ctx context.Context, scope string, day paygate.Date) (int64, error) {
	rows, err := queryMany(ctx, s.db.SQL, func(sc scanner) (int64, error) {
		var n int64
		return n, sc.Scan(&n)
	}, `SELECT used FROM customer_limit_usage WHERE scope = $1 AND day = $2`, scope, string(day))
	if err != nil || len(rows) == 0 {
		return 0, err
	}
	return rows[0], nil
}
