package store

import (
	"context"
	"database/sql"
	"fmt"
	"strconv"
	"strings"
	"time"

	"paygate"
	"paygate/ledger"
)

// Ledger returns db as the ledger's Store.
func (db *DB) Ledger() ledger.Store { return ledgerStore{db} }

type ledgerStore struct{ db *DB }

var (
	_ ledger.Store = ledgerStore{}
	_ ledger.Tx    = (*Tx)(nil)
)

// InTx implements ledger.Store.
func (s ledgerStore) InTx(ctx context.Context, fn func(ledger.Tx) error) error {
	return s.db.InTx(ctx, func(tx *Tx) error { return fn(tx) })
}

const accountCols = `id, currency, code, owner, normal_side, flags, shards, created_at`

func scanAccount(sc interface{ Scan(...any) error }, extra ...any) (ledger.Account, error) {
	var a ledger.Account
	var created int64
	var cur, side string
	dest := append([]any{&a.ID, &cur, &a.Code, &a.Owner, &side, &a.Flags, &a.Shards, &created}, extra...)
	err := sc.Scan(dest...)
	a.Currency, a.Normal, a.CreatedAt = paygate.Currency(cur), ledger.Side(side), fromMicros(created)
	return a, err
}

type querier interface {
	QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error)
}

func queryAccounts(ctx context.Context, q querier, ids []string, withBalance bool) ([]ledger.Account, error) {
	var query string
	if withBalance {
		query = `SELECT a.id, a.currency, a.code, a.owner, a.normal_side, a.flags, a.shards, a.created_at,
		CAST(SUM(b.debits_pending) AS BIGINT), CAST(SUM(b.debits_posted) AS BIGINT),
		CAST(SUM(b.credits_pending) AS BIGINT), CAST(SUM(b.credits_posted) AS BIGINT)
		FROM ledger_accounts a JOIN ledger_balances b ON b.account_id = a.id
		WHERE a.id IN (` + placeholders(1, len(ids)) + `)
		GROUP BY a.id, a.currency, a.code, a.owner, a.normal_side, a.flags, a.shards, a.created_at`
	} else {
		query = `SELECT ` + accountCols + ` FROM ledger_accounts WHERE id IN (` + placeholders(1, len(ids)) + `)`
	}
	rows, err := q.QueryContext(ctx, query, anys(ids)...)
	if err != nil {
		return nil, wrapDB(err)
	}
	defer rows.Close()
	var out []ledger.Account
	for rows.Next() {
		var a ledger.Account
		if withBalance {
			var b ledger.Balance
			a, err = scanAccount(rows, &b.DebitsPending, &b.DebitsPosted, &b.CreditsPending, &b.CreditsPosted)
			a.Balance = b
		} else {
			a, err = scanAccount(rows)
		}
		if err != nil {
			return nil, wrapDB(err)
		}
		out = append(out, a)
	}
	return out, wrapDB(rows.Err())
}

func anys[T any](vs []T) []any {
	out := make([]any, len(vs))
	for i, v := range vs {
		out[i] = v
	}
	return out
}

// AccountsByID implements ledger.Tx.
func (tx *Tx) AccountsByID(ctx context.Context, ids []string) ([]ledger.Account, error) {
	return queryAccounts(ctx, tx.tx, ids, false)
}

// LockBalances implements ledger.Tx. Rows are locked in (account, shard)
// order, the same order in every transaction, so writers never deadlock.
func (tx *Tx) LockBalances(ctx context.Context, keys []ledger.ShardKey) ([]ledger.ShardBalance, error) {
	args := make([]any, 0, 2*len(keys))
	for _, k := range keys {
		args = append(args, k.AccountID, k.Shard)
	}
	rows, err := tx.tx.QueryContext(ctx, `SELECT account_id, shard, flags, debits_pending, debits_posted, credits_pending, credits_posted
		FROM ledger_balances WHERE (account_id, shard) IN (VALUES `+tuples(len(keys), "", "INTEGER")+`)
		ORDER BY account_id, shard`+tx.db.lockSuffix, args...)
	if err != nil {
		return nil, wrapDB(err)
	}
	defer rows.Close()
	out := make([]ledger.ShardBalance, 0, len(keys))
	for rows.Next() {
		var r ledger.ShardBalance
		if err := rows.Scan(&r.AccountID, &r.Shard, &r.Flags, &r.DebitsPending, &r.DebitsPosted, &r.CreditsPending, &r.CreditsPosted); err != nil {
			return nil, wrapDB(err)
		}
		out = append(out, r)
	}
	return out, wrapDB(rows.Err())
}

// TransfersByIDLockBalances is the ledger's one-round-trip fast path for
// TransfersByID(ids) followed by LockBalances(keys): one statement locks the
// balance rows (in (account, shard) order, as LockBalances does) and lists
// which ids exist. Only when some do (a resubmission) are their rows read.
func (tx *Tx) TransfersByIDLockBalances(ctx context.Context, ids []string, keys []ledger.ShardKey) ([]ledger.Transfer, []ledger.ShardBalance, error) {
	args := make([]any, 0, 2*len(keys)+len(ids))
	for _, k := range keys {
		args = append(args, k.AccountID, k.Shard)
	}
	args = append(args, anys(ids)...)
	rows, err := tx.tx.QueryContext(ctx, `WITH b AS MATERIALIZED (SELECT account_id, shard, flags, debits_pending, debits_posted, credits_pending, credits_posted
		FROM ledger_balances WHERE (account_id, shard) IN (VALUES `+tuples(len(keys), "", "INTEGER")+`)
		ORDER BY account_id, shard`+tx.db.lockSuffix+`)
		SELECT account_id, shard, flags, debits_pending, debits_posted, credits_pending, credits_posted FROM b
		UNION ALL
		SELECT id, -1, 0, 0, 0, 0, 0 FROM ledger_transfers WHERE id IN (`+placeholders(2*len(keys)+1, len(ids))+`)`, args...)
	if err != nil {
		return nil, nil, wrapDB(err)
	}
	defer rows.Close()
	out := make([]ledger.ShardBalance, 0, len(keys))
	var existing []string
	for rows.Next() {
		var r ledger.ShardBalance
		if err := rows.Scan(&r.AccountID, &r.Shard, &r.Flags, &r.DebitsPending, &r.DebitsPosted, &r.CreditsPending, &r.CreditsPosted); err != nil {
			return nil, nil, wrapDB(err)
		}
		if r.Shard < 0 {
			existing = append(existing, r.AccountID)
			continue
		}
		out = append(out, r)
	}
	if err := rows.Err(); err != nil {
		return nil, nil, wrapDB(err)
	}
	rows.Close()
	if len(existing) == 0 {
		return nil, out, nil
	}
	ts, err := tx.TransfersByID(ctx, existing)
	return ts, out, err
}

// WriteJournal is the ledger's one-round-trip fast path for
// InsertTransfers(ts) followed, when every transfer was inserted, by
// WriteBalances(rows) and SetHoldStatus of each of holds. On PostgreSQL
// they are one statement (the UPDATEs data-modifying CTEs that run only if
// the INSERT inserted every row), so that the balance rows the caller
// locked wait for one round trip before its COMMIT, not one per write; on
// SQLite, where statements cost no round trip, they are the separate
// calls.
func (tx *Tx) WriteJournal(ctx context.Context, ts []ledger.Transfer, rows []ledger.ShardBalance, holds []ledger.Transfer) (int64, error) {
	if tx.db.Dialect != Postgres || len(rows) == 0 {
		n, err := tx.InsertTransfers(ctx, ts)
		if err != nil || n != int64(len(ts)) {
			return n, err
		}
		if err := tx.WriteBalances(ctx, rows); err != nil {
			return n, err
		}
		for _, h := range holds {
			if err := tx.SetHoldStatus(ctx, h.ID, h.HoldStatus); err != nil {
				return n, err
			}
		}
		return n, nil
	}
	ins, args := insertTransfersSQL(ts)
	p := len(args) + 1
	args = append(args, len(ts))
	count := p
	var b strings.Builder
	for i, r := range rows {
		if i > 0 {
			b.WriteString(", ")
		}
		fmt.Fprintf(&b, "($%d, CAST($%d AS INTEGER), CAST($%d AS BIGINT), CAST($%d AS BIGINT), CAST($%d AS BIGINT), CAST($%d AS BIGINT))",
			p+1, p+2, p+3, p+4, p+5, p+6)
		p += 6
		args = append(args, r.AccountID, r.Shard, r.DebitsPending, r.DebitsPosted, r.CreditsPending, r.CreditsPosted)
	}
	var hs strings.Builder
	if len(holds) > 0 {
		hs.WriteString(`,
		hld AS (UPDATE ledger_transfers SET hold_status = h.column2 FROM (VALUES `)
		for i, h := range holds {
			if i > 0 {
				hs.WriteString(", ")
			}
			fmt.Fprintf(&hs, "($%d, CAST($%d AS TEXT))", p+1, p+2)
			p += 2
			args = append(args, h.ID, string(h.HoldStatus))
		}
		hs.WriteString(`) AS h WHERE ledger_transfers.id = h.column1 AND (SELECT count(*) FROM ins) = $` + strconv.Itoa(count) + `)`)
	}
	var n int64
	err := tx.tx.QueryRowContext(ctx, `WITH ins AS (`+ins+` RETURNING 1),
		upd AS (UPDATE ledger_balances SET debits_pending = v.column3, debits_posted = v.column4,
			credits_pending = v.column5, credits_posted = v.column6
			FROM (VALUES `+b.String()+`) AS v
			WHERE ledger_balances.account_id = v.column1 AND ledger_balances.shard = v.column2
			AND (SELECT count(*) FROM ins) = $`+strconv.Itoa(count)+`)`+hs.String()+`
		SELECT count(*) FROM ins`, args...).Scan(&n)
	return n, wrapDB(err)
}

// AppliesJournals implements ledger.JournalApplier: on PostgreSQL; SQLite's
// statements cost no round trip and its one writer takes no row locks.
func (tx *Tx) AppliesJournals() bool { return tx.db.Dialect == Postgres }

// ApplyJournal implements ledger.JournalApplier. One statement: b locks the
// rows in (account, shard) order, ok checks them against v (every row
// there, open, within its limit, no field overflowing; limits in NUMERIC
// so that no check can fail the statement), and only if ok and no id
// exists does ins insert the journal, and only if ins inserted every
// transfer does upd add the deltas. upd sees the rows b locked: READ
// COMMITTED re-reads a row updated since the statement's snapshot before
// updating it, and the sums are relative (column + delta).
func (tx *Tx) ApplyJournal(ctx context.Context, ts []ledger.Transfer, rows []ledger.RowDelta) (int64, error) {
	if !tx.AppliesJournals() || len(rows) == 0 {
		return 0, nil
	}
	ins, args := insertTransfersSQL(ts)
	p := len(args)
	arg := func(v any) string {
		args = append(args, v)
		p++
		return "$" + strconv.Itoa(p)
	}
	limit := func(l *int64) any {
		if l == nil {
			return nil
		}
		return *l
	}
	var keys, vals, ids strings.Builder
	for i, r := range rows {
		if i > 0 {
			keys.WriteString(", ")
			vals.WriteString(", ")
		}
		fmt.Fprintf(&keys, "(%s, CAST(%s AS INTEGER))", arg(r.AccountID), arg(r.Shard))
		fmt.Fprintf(&vals, "(%s, CAST(%s AS INTEGER), CAST(%s AS BIGINT), CAST(%s AS BIGINT), CAST(%s AS BIGINT), CAST(%s AS BIGINT), CAST(%s AS NUMERIC), CAST(%s AS NUMERIC))",
			arg(r.AccountID), arg(r.Shard), arg(r.DebitsPending), arg(r.DebitsPosted), arg(r.CreditsPending), arg(r.CreditsPosted),
			arg(limit(r.DebitLimit)), arg(limit(r.CreditLimit)))
	}
	for i, t := range ts {
		if i > 0 {
			ids.WriteString(", ")
		}
		ids.WriteString(arg(t.ID))
	}
	nrows, nts, closed := arg(len(rows)), arg(len(ts)), arg(int64(ledger.Closed))
	// ins is the multi-row INSERT of insertTransfersSQL, made conditional:
	// INSERT ... SELECT * FROM (VALUES ...) WHERE ok, its parameters typed
	// by the table's columns through the first row's casts.
	values := strings.TrimPrefix(ins[strings.Index(ins, "VALUES "):], "VALUES ")
	values = strings.TrimSuffix(values, " ON CONFLICT (id) DO NOTHING")
	cols := ins[:strings.Index(ins, "VALUES ")]
	const maxInt64 = "9223372036854775807"
	var n int64
	err := tx.tx.QueryRowContext(ctx, `WITH b AS MATERIALIZED (SELECT account_id, shard, flags, debits_pending, debits_posted, credits_pending, credits_posted
			FROM ledger_balances WHERE (account_id, shard) IN (VALUES `+keys.String()+`)
			ORDER BY account_id, shard FOR UPDATE),
		v (account_id, shard, dp, dpo, cp, cpo, dlim, clim) AS (VALUES `+vals.String()+`),
		ok AS MATERIALIZED (SELECT count(*) = `+nrows+` AND coalesce(bool_and(
				b.flags & CAST(`+closed+` AS INTEGER) = 0
				AND b.debits_pending <= `+maxInt64+` - v.dp AND b.debits_posted <= `+maxInt64+` - v.dpo
				AND b.credits_pending <= `+maxInt64+` - v.cp AND b.credits_posted <= `+maxInt64+` - v.cpo
				AND (v.dlim IS NULL OR CAST(b.debits_pending AS NUMERIC) + b.debits_posted <= CAST(b.credits_posted AS NUMERIC) + v.dlim)
				AND (v.clim IS NULL OR CAST(b.credits_pending AS NUMERIC) + b.credits_posted <= CAST(b.debits_posted AS NUMERIC) + v.clim)
			), false) AND NOT EXISTS (SELECT 1 FROM ledger_transfers WHERE id IN (`+ids.String()+`)) AS ok
			FROM b JOIN v ON v.account_id = b.account_id AND v.shard = b.shard),
		ins AS (`+cols+`SELECT * FROM (VALUES `+typedFirstRow(values)+`) AS t WHERE (SELECT ok FROM ok)
			ON CONFLICT (id) DO NOTHING RETURNING 1),
		upd AS (UPDATE ledger_balances SET debits_pending = ledger_balances.debits_pending + v.dp,
			debits_posted = ledger_balances.debits_posted + v.dpo, credits_pending = ledger_balances.credits_pending + v.cp,
			credits_posted = ledger_balances.credits_posted + v.cpo
			FROM v WHERE ledger_balances.account_id = v.account_id AND ledger_balances.shard = v.shard
			AND (SELECT count(*) FROM ins) = `+nts+`)
		SELECT count(*) FROM ins`, args...).Scan(&n)
	return n, wrapDB(err)
}

// transferColumnTypes are the types of insertTransfersSQL's columns, in
// order (created_at last).
var transferColumnTypes = []string{"TEXT", "TEXT", "TEXT", "INTEGER", "INTEGER", "BIGINT", "TEXT", "TEXT", "INTEGER", "TEXT",
	"BIGINT", "BIGINT", "TEXT", "INTEGER", "TEXT", "TEXT", "BIGINT"}

// typedFirstRow casts the parameters of the first row of insertTransfersSQL's
// VALUES list to the columns' types: a VALUES list in a SELECT takes its
// column types from its rows, where bare parameters would be text.
func typedFirstRow(values string) string {
	end := strings.Index(values, ")")
	first := strings.Split(strings.TrimPrefix(values[:end], "("), ", ")
	for i := range first {
		first[i] = "CAST(" + first[i] + " AS " + transferColumnTypes[i] + ")"
	}
	return "(" + strings.Join(first, ", ") + values[end:]
}

// WriteBalances implements ledger.Tx with one UPDATE ... FROM (VALUES ...).
func (tx *Tx) WriteBalances(ctx context.Context, rs []ledger.ShardBalance) error {
	if len(rs) == 0 {
		return nil
	}
	args := make([]any, 0, 6*len(rs))
	for _, r := range rs {
		args = append(args, r.AccountID, r.Shard, r.DebitsPending, r.DebitsPosted, r.CreditsPending, r.CreditsPosted)
	}
	// VALUES columns are named column1..column6 in both dialects.
	_, err := tx.tx.ExecContext(ctx, `UPDATE ledger_balances SET debits_pending = v.column3, debits_posted = v.column4,
		credits_pending = v.column5, credits_posted = v.column6
		FROM (VALUES `+tuples(len(rs), "", "INTEGER", "BIGINT", "BIGINT", "BIGINT", "BIGINT")+`) AS v
		WHERE ledger_balances.account_id = v.column1 AND ledger_balances.shard = v.column2`, args...)
	return wrapDB(err)
}

const transferCols = `seq, id, debit_account_id, credit_account_id, debit_shard, credit_shard, amount, currency,
	flags, pending_id, timeout_s, expires_at, hold_status, code, ref, accounting_date, created_at`

func scanTransfers(rows *sql.Rows) ([]ledger.Transfer, error) {
	defer rows.Close()
	var out []ledger.Transfer
	for rows.Next() {
		var t ledger.Transfer
		var cur, date string
		var pending, status sql.NullString
		var expires sql.NullInt64
		var timeout, created int64
		if err := rows.Scan(&t.Seq, &t.ID, &t.DebitAccountID, &t.CreditAccountID, &t.DebitShard, &t.CreditShard, &t.Amount, &cur,
			&t.Flags, &pending, &timeout, &expires, &status, &t.Code, &t.Ref, &date, &created); err != nil {
			return nil, wrapDB(err)
		}
		t.Currency, t.AccountingDate = paygate.Currency(cur), paygate.Date(date)
		t.PendingID, t.HoldStatus = pending.String, ledger.HoldStatus(status.String)
		t.Timeout = time.Duration(timeout) * time.Second
		t.ExpiresAt, t.CreatedAt = fromMicros(expires.Int64), fromMicros(created)
		out = append(out, t)
	}
	return out, wrapDB(rows.Err())
}

// TransfersByID implements ledger.Tx.
func (tx *Tx) TransfersByID(ctx context.Context, ids []string) ([]ledger.Transfer, error) {
	return queryTransfersByID(ctx, tx.tx, ids)
}

func queryTransfersByID(ctx context.Context, q querier, ids []string) ([]ledger.Transfer, error) {
	rows, err := q.QueryContext(ctx, `SELECT `+transferCols+` FROM ledger_transfers WHERE id IN (`+placeholders(1, len(ids))+`)`, anys(ids)...)
	if err != nil {
		return nil, wrapDB(err)
	}
	return scanTransfers(rows)
}

// LockHolds implements ledger.Tx.
func (tx *Tx) LockHolds(ctx context.Context, ids []string) ([]ledger.Transfer, error) {
	rows, err := tx.tx.QueryContext(ctx, `SELECT `+transferCols+` FROM ledger_transfers
		WHERE id IN (`+placeholders(1, len(ids))+`) AND kind = 'pending' ORDER BY id`+tx.db.lockSuffix, anys(ids)...)
	if err != nil {
		return nil, wrapDB(err)
	}
	return scanTransfers(rows)
}

// LockExpiredHolds implements ledger.Tx.
func (tx *Tx) LockExpiredHolds(ctx context.Context, now time.Time, limit int) ([]ledger.Transfer, error) {
	rows, err := tx.tx.QueryContext(ctx, `SELECT `+transferCols+` FROM ledger_transfers
		WHERE hold_status = 'pending' AND expires_at IS NOT NULL AND expires_at <= $1
		ORDER BY expires_at, id LIMIT $2`+tx.db.skipLocked, now.UnixMicro(), limit)
	if err != nil {
		return nil, wrapDB(err)
	}
	return scanTransfers(rows)
}

// InsertTransfers implements ledger.Tx with one multi-row INSERT.
func (tx *Tx) InsertTransfers(ctx context.Context, ts []ledger.Transfer) (int64, error) {
	query, args := insertTransfersSQL(ts)
	res, err := tx.tx.ExecContext(ctx, query, args...)
	if err != nil {
		return 0, wrapDB(err)
	}
	n, err := res.RowsAffected()
	return n, wrapDB(err)
}

// insertTransfersSQL returns the multi-row INSERT of ts, skipping ids that
// exist, with its arguments ($1 to $len(args)).
func insertTransfersSQL(ts []ledger.Transfer) (string, []any) {
	const width = 16
	args := make([]any, 0, width*len(ts))
	for _, t := range ts {
		var pending, status any
		var expires any
		if t.PendingID != "" {
			pending = t.PendingID
		}
		if t.HoldStatus != "" {
			status = string(t.HoldStatus)
		}
		if !t.ExpiresAt.IsZero() {
			expires = t.ExpiresAt.UnixMicro()
		}
		args = append(args, t.ID, t.DebitAccountID, t.CreditAccountID, t.DebitShard, t.CreditShard, t.Amount, string(t.Currency),
			t.Flags.Kind(), int64(t.Flags), pending, int64(t.Timeout/time.Second), expires, status, t.Code, t.Ref, string(t.AccountingDate))
	}
	created := micros(firstCreated(ts))
	args = append(args, created)
	var b []byte
	p := 1
	for i := range ts {
		if i > 0 {
			b = append(b, ", "...)
		}
		b = append(b, '(')
		for j := 0; j < width; j++ {
			b = append(b, '$')
			b = appendInt(b, p)
			p++
			b = append(b, ", "...)
		}
		b = append(b, '$')
		b = appendInt(b, width*len(ts)+1)
		b = append(b, ')')
	}
	return `INSERT INTO ledger_transfers (id, debit_account_id, credit_account_id, debit_shard, credit_shard,
		amount, currency, kind, flags, pending_id, timeout_s, expires_at, hold_status, code, ref, accounting_date, created_at)
		VALUES ` + string(b) + ` ON CONFLICT (id) DO NOTHING`, args
}

func firstCreated(ts []ledger.Transfer) time.Time {
	if len(ts) == 0 {
		return time.Time{}
	}
	return ts[0].CreatedAt
}

func appendInt(b []byte, n int) []byte {
	if n >= 10 {
		b = appendInt(b, n/10)
	}
	return append(b, byte('0'+n%10))
}

// SetHoldStatus implements ledger.Tx.
func (tx *Tx) SetHoldStatus(ctx context.Context, id string, status ledger.HoldStatus) error {
	_, err := tx.tx.ExecContext(ctx, `UPDATE ledger_transfers SET hold_status = $1 WHERE id = $2`, string(status), id)
	return wrapDB(err)
}

// InsertAccounts implements ledger.Tx.
func (tx *Tx) InsertAccounts(ctx context.Context, as []ledger.Account) (int64, error) {
	args := make([]any, 0, 8*len(as))
	for _, a := range as {
		args = append(args, a.ID, string(a.Currency), a.Code, a.Owner, string(a.Normal), int64(a.Flags), a.Shards, micros(a.CreatedAt))
	}
	res, err := tx.tx.ExecContext(ctx, `INSERT INTO ledger_accounts (`+accountCols+`) VALUES `+
		tuples(len(as), "", "", "", "", "", "", "", "")+` ON CONFLICT (id) DO NOTHING`, args...)
	if err != nil {
		return 0, wrapDB(err)
	}
	n, err := res.RowsAffected()
	if err != nil || n != int64(len(as)) {
		return n, wrapDB(err)
	}
	var bargs []any
	nrows := 0
	for _, a := range as {
		for s := 0; s < a.Shards; s++ {
			bargs = append(bargs, a.ID, s, int64(a.Flags))
			nrows++
		}
	}
	_, err = tx.tx.ExecContext(ctx, `INSERT INTO ledger_balances (account_id, shard, flags) VALUES `+tuples(nrows, "", "", ""), bargs...)
	return n, wrapDB(err)
}

// SetAccountFlags implements ledger.Tx.
func (tx *Tx) SetAccountFlags(ctx context.Context, id string, flags ledger.AccountFlags) error {
	if _, err := tx.tx.ExecContext(ctx, `UPDATE ledger_accounts SET flags = $1 WHERE id = $2`, int64(flags), id); err != nil {
		return wrapDB(err)
	}
	_, err := tx.tx.ExecContext(ctx, `UPDATE ledger_balances SET flags = $1 WHERE account_id = $2`, int64(flags), id)
	return wrapDB(err)
}

// Accounts implements ledger.Store.
func (s ledgerStore) Accounts(ctx context.Context, ids []string) ([]ledger.Account, error) {
	return queryAccounts(ctx, s.db.SQL, ids, true)
}

// Transfers implements ledger.Store.
func (s ledgerStore) Transfers(ctx context.Context, ids []string) ([]ledger.Transfer, error) {
	return queryTransfersByID(ctx, s.db.SQL, ids)
}

// AccountTransfers implements ledger.Store.
func (s ledgerStore) AccountTransfers(ctx context.Context, accountID string, before int64, limit int) ([]ledger.Transfer, error) {
	if before <= 0 {
		before = 1<<63 - 1
	}
	// The two indexed halves never overlap (debit and credit accounts differ);
	// their UNION ALL beats an OR on both dialects.
	rows, err := s.db.SQL.QueryContext(ctx, `SELECT `+transferCols+` FROM (
		SELECT * FROM (SELECT `+transferCols+` FROM ledger_transfers WHERE debit_account_id = $1 AND seq < $2 ORDER BY seq DESC LIMIT $3) AS d
		UNION ALL
		SELECT * FROM (SELECT `+transferCols+` FROM ledger_transfers WHERE credit_account_id = $1 AND seq < $2 ORDER BY seq DESC LIMIT $3) AS c
	) AS t ORDER BY seq DESC LIMIT $3`, accountID, before, limit)
	if err != nil {
		return nil, wrapDB(err)
	}
	return scanTransfers(rows)
}

// TrialBalanceLines implements ledger.Store.
func (s ledgerStore) TrialBalanceLines(ctx context.Context, date paygate.Date) ([]ledger.TrialBalanceLine, error) {
	rows, err := s.db.SQL.QueryContext(ctx, `SELECT a.id, a.currency, a.code, a.normal_side,
		CAST(COALESCE(SUM(m.d), 0) AS BIGINT), CAST(COALESCE(SUM(m.c), 0) AS BIGINT)
		FROM ledger_accounts a LEFT JOIN (
			SELECT debit_account_id AS account_id, amount AS d, 0 AS c FROM ledger_transfers
			WHERE kind IN ('single', 'post') AND accounting_date <= $1
			UNION ALL
			SELECT credit_account_id, 0, amount FROM ledger_transfers
			WHERE kind IN ('single', 'post') AND accounting_date <= $1
		) AS m ON m.account_id = a.id
		GROUP BY a.id, a.currency, a.code, a.normal_side ORDER BY a.id`, string(date))
	if err != nil {
		return nil, wrapDB(err)
	}
	defer rows.Close()
	var out []ledger.TrialBalanceLine
	for rows.Next() {
		var l ledger.TrialBalanceLine
		var cur, side string
		if err := rows.Scan(&l.AccountID, &cur, &l.Code, &side, &l.DebitsPosted, &l.CreditsPosted); err != nil {
			return nil, wrapDB(err)
		}
		l.Currency, l.Normal = paygate.Currency(cur), ledger.Side(side)
		out = append(out, l)
	}
	return out, wrapDB(rows.Err())
}
