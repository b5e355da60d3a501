package store

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"sync"
	"time"

	"paygate"
	"paygate/merchant"
)

// Merchants returns db as the merchant package's Store. On SQLite, the
// nonces recorded through one Store commit in groups (nonceGroup).
func (db *DB) Merchants() merchant.Store {
	s := merchantStore{db: db}
	if db.Dialect == SQLite {
		s.nonces = &nonceGroup{}
	}
	return s
}

type merchantStore struct {
	db     *DB
	nonces *nonceGroup // SQLite only
}

var (
	_ merchant.Store = merchantStore{}
	_ merchant.Tx    = (*Tx)(nil)
)

// InTx implements merchant.Store.
func (s merchantStore) InTx(ctx context.Context, fn func(merchant.Tx) error) error {
	return s.db.InTx(ctx, func(tx *Tx) error { return fn(tx) })
}

const merchantCols = `id, parent_id, name, status, settlement_currency, fee_rate_bps, notify_hosts, ip_allow_list,
	apiv3_key_enc, apiv3_key_kid, live_since, created_at, updated_at`

// mchScanner is a *sql.Row or *sql.Rows.
type mchScanner interface{ Scan(...any) error }

func scanMerchantRecord(sc mchScanner, extra ...any) (merchant.Record, error) {
	var r merchant.Record
	var parent sql.NullString
	var liveSince sql.NullInt64
	var status, cur, hosts, ips string
	var created, updated int64
	m := &r.Merchant
	dest := append([]any{&m.ID, &parent, &m.Name, &status, &cur, &m.FeeRateBps, &hosts, &ips,
		&r.APIv3Key.Ciphertext, &r.APIv3Key.KeyID, &liveSince, &created, &updated}, extra...)
	if err := sc.Scan(dest...); err != nil {
		return r, err
	}
	m.ParentID, m.Status, m.SettlementCurrency = parent.String, paygate.MerchantStatus(status), paygate.Currency(cur)
	m.CreatedAt, r.UpdatedAt = fromMicros(created), fromMicros(updated)
	if liveSince.Valid {
		r.LiveSince = fromMicros(liveSince.Int64)
	}
	if err := json.Unmarshal([]byte(hosts), &m.NotifyHosts); err != nil {
		return r, fmt.Errorf("store: merchant %s notify_hosts: %w", m.ID, err)
	}
	if err := json.Unmarshal([]byte(ips), &m.IPAllowList); err != nil {
		return r, fmt.Errorf("store: merchant %s ip_allow_list: %w", m.ID, err)
	}
	if len(m.NotifyHosts) == 0 { // empty lists read back as nil, as they were written
		m.NotifyHosts = nil
	}
	if len(m.IPAllowList) == 0 {
		m.IPAllowList = nil
	}
	return r, nil
}

// mchJSONList encodes a list as a JSON array ("[]" when empty).
func mchJSONList(l []string) string {
	if len(l) == 0 {
		return "[]"
	}
	b, _ := json.Marshal(l)
	return string(b)
}

func errNoMerchant(err error) error {
	if errors.Is(err, sql.ErrNoRows) {
		return paygate.E(paygate.CodeNotFound, "no such merchant")
	}
	return wrapDB(err)
}

// InsertMerchant implements merchant.Tx.
func (tx *Tx) InsertMerchant(ctx context.Context, r merchant.Record) (bool, error) {
	m := r.Merchant
	res, err := tx.tx.ExecContext(ctx, `INSERT INTO merchants (`+merchantCols+`)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13) ON CONFLICT (id) DO NOTHING`,
		m.ID, nullString(m.ParentID), m.Name, string(m.Status), string(m.SettlementCurrency), m.FeeRateBps,
		mchJSONList(m.NotifyHosts), mchJSONList(m.IPAllowList), r.APIv3Key.Ciphertext, r.APIv3Key.KeyID,
		nullMicros(r.LiveSince), micros(m.CreatedAt), micros(r.UpdatedAt))
	return mchAffected(res, err)
}

// mchAffected reports whether an Exec changed a row.
func mchAffected(res sql.Result, err error) (bool, error) {
	if err != nil {
		return false, wrapDB(err)
	}
	n, err := res.RowsAffected()
	if err != nil {
		return false, wrapDB(err)
	}
	return n > 0, nil
}

// LockMerchant implements merchant.Tx.
func (tx *Tx) LockMerchant(ctx context.Context, id string) (merchant.Record, error) {
	r, err := scanMerchantRecord(tx.tx.QueryRowContext(ctx, `SELECT `+merchantCols+` FROM merchants WHERE id = $1`+tx.db.lockSuffix, id))
	if err != nil {
		return r, errNoMerchant(err)
	}
	return r, nil
}

// UpdateMerchant implements merchant.Tx.
func (tx *Tx) UpdateMerchant(ctx context.Context, r merchant.Record) error {
	m := r.Merchant
	ok, err := mchAffected(tx.tx.ExecContext(ctx, `UPDATE merchants SET name = $2, status = $3, fee_rate_bps = $4,
		notify_hosts = $5, ip_allow_list = $6, apiv3_key_enc = $7, apiv3_key_kid = $8, live_since = $9, updated_at = $10
		WHERE id = $1`,
		m.ID, m.Name, string(m.Status), m.FeeRateBps, mchJSONList(m.NotifyHosts), mchJSONList(m.IPAllowList),
		r.APIv3Key.Ciphertext, r.APIv3Key.KeyID, nullMicros(r.LiveSince), micros(r.UpdatedAt)))
	if err == nil && !ok {
		err = paygate.E(paygate.CodeNotFound, "no such merchant")
	}
	return err
}

// CountActiveMerchantKeys implements merchant.Tx.
func (tx *Tx) CountActiveMerchantKeys(ctx context.Context, merchantID string) (int, error) {
	var n int
	err := tx.tx.QueryRowContext(ctx, `SELECT COUNT(*) FROM merchant_keys WHERE merchant_id = $1 AND revoked_at IS NULL`, merchantID).Scan(&n)
	return n, wrapDB(err)
}

// InsertMerchantKey implements merchant.Tx.
func (tx *Tx) InsertMerchantKey(ctx context.Context, k merchant.Key) (bool, error) {
	return mchAffected(tx.tx.ExecContext(ctx, `INSERT INTO merchant_keys (merchant_id, serial_no, public_key, source, created_at, revoked_at)
		VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (merchant_id, serial_no) DO NOTHING`,
		k.MerchantID, k.SerialNo, k.PublicKeyPEM, string(k.Source), micros(k.CreatedAt), nullMicros(k.RevokedAt)))
}

// RevokeMerchantKey implements merchant.Tx.
func (tx *Tx) RevokeMerchantKey(ctx context.Context, merchantID, serialNo string, at time.Time) (bool, error) {
	return mchAffected(tx.tx.ExecContext(ctx, `UPDATE merchant_keys SET revoked_at = $3
		WHERE merchant_id = $1 AND serial_no = $2 AND revoked_at IS NULL`, merchantID, serialNo, micros(at)))
}

// InsertPlatformKey implements merchant.Tx.
func (tx *Tx) InsertPlatformKey(ctx context.Context, k merchant.PlatformKeyRecord) (bool, error) {
	return mchAffected(tx.tx.ExecContext(ctx, `INSERT INTO platform_keys (serial_no, generation, public_key, private_key_enc,
		private_key_kid, valid_from, valid_until, created_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8) ON CONFLICT DO NOTHING`,
		k.SerialNo, k.Generation, k.PublicKeyPEM, k.PrivateKey.Ciphertext, k.PrivateKey.KeyID,
		micros(k.ValidFrom), micros(k.ValidUntil), micros(k.CreatedAt)))
}

// CapPlatformKeys implements merchant.Tx.
func (tx *Tx) CapPlatformKeys(ctx context.Context, belowGeneration int64, until time.Time) error {
	_, err := tx.tx.ExecContext(ctx, `UPDATE platform_keys SET valid_until = $2 WHERE generation < $1 AND valid_until > $2`,
		belowGeneration, micros(until))
	return wrapDB(err)
}

// Merchant implements merchant.Store.
func (s merchantStore) Merchant(ctx context.Context, id string) (merchant.Record, error) {
	rows, err := s.db.SQL.QueryContext(ctx, `SELECT `+merchantCols+` FROM merchants WHERE id = $1`, id)
	if err != nil {
		return merchant.Record{}, wrapDB(err)
	}
	defer rows.Close()
	if !rows.Next() {
		if err := rows.Err(); err != nil {
			return merchant.Record{}, wrapDB(err)
		}
		return merchant.Record{}, paygate.E(paygate.CodeNotFound, "no such merchant")
	}
	r, err := scanMerchantRecord(rows)
	if err != nil {
		return r, wrapDB(err)
	}
	return r, wrapDB(rows.Close())
}

// HasMerchants implements merchant.Store.
func (s merchantStore) HasMerchants(ctx context.Context) (bool, error) {
	var n int
	err := s.db.SQL.QueryRowContext(ctx, `SELECT COUNT(*) FROM (SELECT 1 FROM merchants LIMIT 1) t`).Scan(&n)
	return n > 0, wrapDB(err)
}

// mchKeyCols are the merchant's columns (m) and its key's (k), as
// scanMerchantWithKey reads them.
const mchKeyCols = `m.id, m.parent_id, m.name, m.status, m.settlement_currency, m.fee_rate_bps,
	m.notify_hosts, m.ip_allow_list, m.apiv3_key_enc, m.apiv3_key_kid, m.live_since, m.created_at, m.updated_at,
	k.serial_no, k.public_key, k.source, k.created_at, k.revoked_at`

// mchKeyFrom finds the merchant's key with the serial ($1, $2).
const mchKeyFrom = ` FROM merchant_keys k JOIN merchants m ON m.id = k.merchant_id WHERE k.merchant_id = $1 AND k.serial_no = $2`

// scanMerchantWithKey reads mchKeyCols, then extra.
func scanMerchantWithKey(sc mchScanner, extra ...any) (paygate.Merchant, merchant.Key, error) {
	var k merchant.Key
	var source string
	var created int64
	var revoked sql.NullInt64
	r, err := scanMerchantRecord(sc, append([]any{&k.SerialNo, &k.PublicKeyPEM, &source, &created, &revoked}, extra...)...)
	if err != nil {
		return paygate.Merchant{}, merchant.Key{}, err
	}
	k.MerchantID, k.Source, k.CreatedAt = r.Merchant.ID, merchant.KeySource(source), fromMicros(created)
	if revoked.Valid {
		k.RevokedAt = fromMicros(revoked.Int64)
	}
	return r.Merchant, k, nil
}

// MerchantWithKey implements merchant.Store: one indexed join, read on
// every authenticated request.
func (s merchantStore) MerchantWithKey(ctx context.Context, merchantID, serialNo string) (paygate.Merchant, merchant.Key, error) {
	rows, err := s.db.SQL.QueryContext(ctx, `SELECT `+mchKeyCols+mchKeyFrom, merchantID, serialNo)
	if err != nil {
		return paygate.Merchant{}, merchant.Key{}, wrapDB(err)
	}
	defer rows.Close()
	if !rows.Next() {
		if err := rows.Err(); err != nil {
			return paygate.Merchant{}, merchant.Key{}, wrapDB(err)
		}
		return paygate.Merchant{}, merchant.Key{}, errNoKey()
	}
	m, k, err := scanMerchantWithKey(rows)
	if err != nil {
		return paygate.Merchant{}, merchant.Key{}, wrapDB(err)
	}
	return m, k, wrapDB(rows.Close())
}

func errNoKey() error { return paygate.E(paygate.CodeNotFound, "no such merchant key") }

// MerchantKeys implements merchant.Store.
func (s merchantStore) MerchantKeys(ctx context.Context, merchantID string) ([]merchant.Key, error) {
	rows, err := s.db.SQL.QueryContext(ctx, `SELECT merchant_id, serial_no, public_key, source, created_at, revoked_at
		FROM merchant_keys WHERE merchant_id = $1 ORDER BY created_at, serial_no`, merchantID)
	if err != nil {
		return nil, wrapDB(err)
	}
	defer rows.Close()
	var out []merchant.Key
	for rows.Next() {
		var k merchant.Key
		var source string
		var created int64
		var revoked sql.NullInt64
		if err := rows.Scan(&k.MerchantID, &k.SerialNo, &k.PublicKeyPEM, &source, &created, &revoked); err != nil {
			return nil, wrapDB(err)
		}
		k.Source, k.CreatedAt = merchant.KeySource(source), fromMicros(created)
		if revoked.Valid {
			k.RevokedAt = fromMicros(revoked.Int64)
		}
		out = append(out, k)
	}
	return out, wrapDB(rows.Err())
}

// PlatformKeys implements merchant.Store.
func (s merchantStore) PlatformKeys(ctx context.Context) ([]merchant.PlatformKeyRecord, error) {
	rows, err := s.db.SQL.QueryContext(ctx, `SELECT serial_no, generation, public_key, private_key_enc, private_key_kid,
		valid_from, valid_until, created_at FROM platform_keys ORDER BY generation DESC`)
	if err != nil {
		return nil, wrapDB(err)
	}
	defer rows.Close()
	var out []merchant.PlatformKeyRecord
	for rows.Next() {
		var k merchant.PlatformKeyRecord
		var from, until, created int64
		if err := rows.Scan(&k.SerialNo, &k.Generation, &k.PublicKeyPEM, &k.PrivateKey.Ciphertext, &k.PrivateKey.KeyID,
			&from, &until, &created); err != nil {
			return nil, wrapDB(err)
		}
		k.ValidFrom, k.ValidUntil, k.CreatedAt = fromMicros(from), fromMicros(until), fromMicros(created)
		out = append(out, k)
	}
	return out, wrapDB(rows.Err())
}

// nonceUpsert inserts a nonce ($1, $2, $3: merchant, nonce, expiry), or
// takes over an expired row of the same nonce (expired before $4); a live
// row is a replay and changes nothing.
const nonceUpsert = `INSERT INTO auth_nonces (merchant_id, nonce, expires_at) VALUES ($1, $2, $3)
	ON CONFLICT (merchant_id, nonce) DO UPDATE SET expires_at = excluded.expires_at WHERE auth_nonces.expires_at < $4`

// UseNonce implements merchant.Store in one statement, nonceUpsert. On
// SQLite it is committed with the other requests' nonces waiting at the
// same moment, in one transaction queued for the writer slot (nonceGroup).
func (s merchantStore) UseNonce(ctx context.Context, merchantID, nonce string, now, expires time.Time) (bool, error) {
	if s.nonces != nil {
		return s.nonces.use(ctx, s.db, nonceReq{merchantID: merchantID, nonce: nonce, now: micros(now), expires: micros(expires)})
	}
	return mchAffected(s.db.execWrite(ctx, nonceUpsert, merchantID, nonce, micros(expires), micros(now)))
}

// nonceGroup commits SQLite's nonces in groups. Every authenticated
// request records its nonce, and on SQLite each commit is an fsync made
// while holding the single writer lock, so one commit per nonce costs a
// whole write slot per request. A request queues its nonce; one of the
// requests waiting leads: it takes the writer slot, then records every
// nonce queued by then (its own among them) in one transaction, and hands
// each request its own answer once that transaction has committed. Nonces
// queued meanwhile go in the next group, led by a new goroutine. Each
// nonce is checked and recorded by the same statement as alone, in queue
// order, so a nonce twice in a group is a replay the second time; nothing
// is answered before it is durable.
type nonceGroup struct {
	mu      sync.Mutex
	queue   []nonceReq
	leading bool
}

// nonceReq is one queued nonce and where its answer goes.
type nonceReq struct {
	merchantID, nonce string
	now, expires      int64 // Unix microseconds
	done              chan nonceAnswer
}

type nonceAnswer struct {
	used bool
	err  error
}

// maxNonceGroup bounds one group's transaction.
const maxNonceGroup = 256

// use queues r and waits for its answer (or ctx). The nonce of a request
// that stops waiting may still be recorded, as if its request had failed
// after recording it.
func (g *nonceGroup) use(ctx context.Context, db *DB, r nonceReq) (bool, error) {
	r.done = make(chan nonceAnswer, 1)
	g.mu.Lock()
	g.queue = append(g.queue, r)
	lead := !g.leading
	g.leading = true
	g.mu.Unlock()
	if lead {
		// The group serves other requests too: it must not stop with
		// this one's context.
		g.lead(context.WithoutCancel(ctx), db)
	}
	select {
	case a := <-r.done:
		return a.used, a.err
	case <-ctx.Done():
		return false, wrapDB(ctx.Err())
	}
}

// lead commits one group: the nonces queued once the writer slot is
// taken. It passes the lead on to a new goroutine when more are queued.
func (g *nonceGroup) lead(ctx context.Context, db *DB) {
	ctx, cancel := context.WithTimeout(ctx, opTimeoutNonces)
	defer cancel()
	release, err := db.writer(ctx)
	g.mu.Lock()
	n := min(len(g.queue), maxNonceGroup)
	group := slices.Clone(g.queue[:n])
	g.queue = slices.Delete(g.queue, 0, n)
	g.mu.Unlock()
	if err == nil {
		err = g.commit(ctx, db, group)
		release()
	}
	for _, r := range group {
		if err != nil {
			r.done <- nonceAnswer{err: err}
		}
	}
	g.mu.Lock()
	more := len(g.queue) > 0
	g.leading = more
	g.mu.Unlock()
	if more {
		go g.lead(context.WithoutCancel(ctx), db)
	}
}

// opTimeoutNonces bounds one group's wait for the writer and its
// transaction.
const opTimeoutNonces = 30 * time.Second

// commit records the group's nonces in one transaction (the caller holds
// the writer slot) and answers each request once it committed; on an
// error it answers none and returns it.
func (g *nonceGroup) commit(ctx context.Context, db *DB, group []nonceReq) error {
	tx, err := db.SQL.BeginTx(ctx, nil)
	if err != nil {
		return wrapDB(err)
	}
	defer tx.Rollback() //nolint:errcheck // after Commit it does nothing
	used := make([]bool, len(group))
	for i, r := range group {
		res, err := tx.ExecContext(ctx, nonceUpsert, r.merchantID, r.nonce, r.expires, r.now)
		if used[i], err = mchAffected(res, err); err != nil {
			return err
		}
	}
	if err := tx.Commit(); err != nil {
		return wrapDB(err)
	}
	for i, r := range group {
		r.done <- nonceAnswer{used: used[i]}
	}
	return nil
}

// UseNonceForKey implements merchant.Store. On PostgreSQL it is one
// statement: the key and merchant read, and the nonce insert of UseNonce
// made only when the key is unrevoked, the status one of statuses and the
// IP allow-list empty ("[]", as mchJSONList writes it). On SQLite, which
// runs in this process (no round trip to save), it reads with
// MerchantWithKey and then calls UseNonce when the conditions hold.
func (s merchantStore) UseNonceForKey(ctx context.Context, merchantID, serialNo, nonce string, now, expires time.Time,
	statuses []paygate.MerchantStatus) (paygate.Merchant, bool, error) {
	if len(statuses) == 0 {
		return paygate.Merchant{}, false, paygate.E(paygate.CodeInvalidArgument, "store: UseNonceForKey needs statuses")
	}
	if s.db.Dialect == SQLite {
		m, k, err := s.MerchantWithKey(ctx, merchantID, serialNo)
		if err != nil || !k.Active() || len(m.IPAllowList) > 0 || !slices.Contains(statuses, m.Status) {
			return m, false, err
		}
		used, err := s.UseNonce(ctx, merchantID, nonce, now, expires)
		return m, used, err
	}
	args := []any{merchantID, serialNo, nonce, micros(expires), micros(now)}
	for _, st := range statuses {
		args = append(args, string(st))
	}
	rows, err := s.db.SQL.QueryContext(ctx, `WITH mk AS (SELECT `+mchKeyCols+mchKeyFrom+`),
		used AS (INSERT INTO auth_nonces (merchant_id, nonce, expires_at)
			SELECT $1, $3, $4 FROM mk
			WHERE mk.revoked_at IS NULL AND mk.ip_allow_list = '[]' AND mk.status IN (`+placeholders(6, len(statuses))+`)
			ON CONFLICT (merchant_id, nonce) DO UPDATE SET expires_at = excluded.expires_at WHERE auth_nonces.expires_at < $5
			RETURNING 1)
		SELECT mk.*, EXISTS (SELECT 1 FROM used) FROM mk`, args...)
	if err != nil {
		return paygate.Merchant{}, false, wrapDB(err)
	}
	defer rows.Close()
	if !rows.Next() {
		if err := rows.Err(); err != nil {
			return paygate.Merchant{}, false, wrapDB(err)
		}
		return paygate.Merchant{}, false, errNoKey()
	}
	var used bool
	m, _, err := scanMerchantWithKey(rows, &used)
	if err != nil {
		return paygate.Merchant{}, false, wrapDB(err)
	}
	return m, used, wrapDB(rows.Close())
}

// DeleteExpiredNonces implements merchant.Store (on SQLite, queued for the
// writer slot).
func (s merchantStore) DeleteExpiredNonces(ctx context.Context, now time.Time, limit int) (int64, error) {
	res, err := s.db.execWrite(ctx, `DELETE FROM auth_nonces WHERE (merchant_id, nonce) IN
		(SELECT merchant_id, nonce FROM auth_nonces WHERE expires_at < $1 LIMIT $2)`, micros(now), limit)
	if err != nil {
		return 0, wrapDB(err)
	}
	n, err := res.RowsAffected()
	return n, wrapDB(err)
}
