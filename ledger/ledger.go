package ledger

import (
	"context"
	"encoding/base64"
	"fmt"
	"hash/fnv"
	"maps"
	"slices"
	"strconv"
	"sync"
	"time"

	"paygate"
)

// Limits on what one call may submit.
const (
	MaxBatch  = 1000 // transfers per CreateTransfers call (one journal)
	MaxIDLen  = 128
	MaxRefLen = 256
	// DefaultPageSize and MaxPageSize bound ListTransfers pages.
	DefaultPageSize = 50
	MaxPageSize     = 500
)

// Service is what the rest of paygate uses of the ledger. *Ledger implements
// it; cross-cutting wrappers (metrics, tracing) implement it by delegation.
type Service interface {
	CreateAccounts(ctx context.Context, accounts []Account) ([]Account, error)
	CloseAccount(ctx context.Context, id string) error
	LookupAccounts(ctx context.Context, ids []string) ([]Account, error)
	CreateTransfers(ctx context.Context, transfers []Transfer) ([]Result, error)
	LookupTransfers(ctx context.Context, ids []string) ([]Transfer, error)
	ListTransfers(ctx context.Context, accountID, cursor string, limit int) (TransferPage, error)
	TrialBalance(ctx context.Context, date paygate.Date) (TrialBalance, error)
	ExpireHolds(ctx context.Context, limit int) (int, error)
}

// Ledger is the double-entry engine. It is safe for concurrent use by many
// goroutines and by several processes sharing one database.
type Ledger struct {
	store Store
	clock paygate.Clock
	cal   paygate.Calendar
	meta  sync.Map // account id -> Account; only immutable fields are read from it
}

var _ Service = (*Ledger)(nil)

// New returns a Ledger over store, stamping transfers with clock's time and
// cal's accounting date.
func New(store Store, clock paygate.Clock, cal paygate.Calendar) *Ledger {
	return &Ledger{store: store, clock: clock, cal: cal}
}

// Calendar returns the business-day calendar transfers are dated by.
func (l *Ledger) Calendar() paygate.Calendar { return l.cal }

// CreateAccounts creates accounts (Shards 0 means 1). It is idempotent: an id
// that exists with the same fields is returned as it is; with different
// fields it fails with CodeIDConflict. All accounts are created or none.
// Errors: CodeInvalidArgument, CodeUnknownCurrency, CodeIDConflict.
func (l *Ledger) CreateAccounts(ctx context.Context, accounts []Account) ([]Account, error) {
	if len(accounts) == 0 || len(accounts) > MaxBatch {
		return nil, paygate.E(paygate.CodeInvalidArgument, "submit between 1 and %d accounts", MaxBatch)
	}
	in := make([]Account, len(accounts))
	seen := make(map[string]bool, len(accounts))
	now := l.clock.Now().UTC().Truncate(time.Microsecond)
	for i, a := range accounts {
		if err := checkID("id", a.ID); err != nil {
			return nil, err
		}
		if seen[a.ID] {
			return nil, paygate.EField(paygate.CodeInvalidArgument, "id", "account id %q appears twice", a.ID)
		}
		seen[a.ID] = true
		if !a.Currency.Valid() {
			return nil, paygate.EField(paygate.CodeUnknownCurrency, "currency", "unknown currency %q", a.Currency)
		}
		if a.Normal != Debit && a.Normal != Credit {
			return nil, paygate.EField(paygate.CodeInvalidArgument, "normal_side", "normal side must be debit or credit")
		}
		if a.Shards == 0 {
			a.Shards = 1
		}
		if a.Shards < 1 || a.Shards > MaxShards {
			return nil, paygate.EField(paygate.CodeInvalidArgument, "shards", "shards must be between 1 and %d", MaxShards)
		}
		if a.Flags&^(DebitsMustNotExceedCredits|CreditsMustNotExceedDebits) != 0 {
			return nil, paygate.EField(paygate.CodeInvalidArgument, "flags", "unknown or closed flag on a new account")
		}
		if a.Flags&DebitsMustNotExceedCredits != 0 && a.Flags&CreditsMustNotExceedDebits != 0 {
			return nil, paygate.EField(paygate.CodeInvalidArgument, "flags", "an account cannot limit both debits and credits")
		}
		if len(a.Owner) > MaxRefLen {
			return nil, paygate.EField(paygate.CodeInvalidArgument, "owner", "owner is longer than %d bytes", MaxRefLen)
		}
		if a.Code < 0 {
			return nil, paygate.EField(paygate.CodeInvalidArgument, "code", "code must not be negative")
		}
		a.CreatedAt = now
		a.Balance = Balance{}
		in[i] = a
	}
	out := make([]Account, len(in))
	err := l.store.InTx(ctx, func(tx Tx) error {
		existing, err := tx.AccountsByID(ctx, slices.Collect(maps.Keys(seen)))
		if err != nil {
			return err
		}
		byID := make(map[string]Account, len(existing))
		for _, e := range existing {
			byID[e.ID] = e
		}
		var fresh []Account
		for i, a := range in {
			e, ok := byID[a.ID]
			if !ok {
				fresh = append(fresh, a)
				out[i] = a
				continue
			}
			if f := accountDiff(a, e); f != "" {
				return paygate.EField(paygate.CodeIDConflict, f, "account %q exists with a different %s", a.ID, f)
			}
			out[i] = e
		}
		if len(fresh) == 0 {
			return nil
		}
		n, err := tx.InsertAccounts(ctx, fresh)
		if err != nil {
			return err
		}
		if n != int64(len(fresh)) {
			return fmt.Errorf("ledger: concurrent account creation: %w", paygate.ErrRetry)
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

func accountDiff(a, e Account) string {
	switch {
	case a.Currency != e.Currency:
		return "currency"
	case a.Code != e.Code:
		return "code"
	case a.Owner != e.Owner:
		return "owner"
	case a.Normal != e.Normal:
		return "normal_side"
	case a.Flags != e.Flags&^Closed:
		return "flags"
	case a.Shards != e.Shards:
		return "shards"
	}
	return ""
}

// CloseAccount marks an account closed: it then refuses new transfers, while
// its outstanding holds can still be voided or expire. Closing twice is a
// no-op. Errors: CodeAccountNotFound.
func (l *Ledger) CloseAccount(ctx context.Context, id string) error {
	return l.store.InTx(ctx, func(tx Tx) error {
		as, err := tx.AccountsByID(ctx, []string{id})
		if err != nil {
			return err
		}
		if len(as) == 0 {
			return paygate.EField(paygate.CodeAccountNotFound, "id", "account %q not found", id)
		}
		a := as[0]
		keys := make([]ShardKey, a.Shards)
		for i := range keys {
			keys[i] = ShardKey{a.ID, i}
		}
		if _, err := tx.LockBalances(ctx, keys); err != nil {
			return err
		}
		return tx.SetAccountFlags(ctx, id, a.Flags|Closed)
	})
}

// LookupAccounts returns the accounts among ids that exist, with balances.
func (l *Ledger) LookupAccounts(ctx context.Context, ids []string) ([]Account, error) {
	if len(ids) == 0 || len(ids) > MaxBatch {
		return nil, paygate.E(paygate.CodeInvalidArgument, "look up between 1 and %d accounts", MaxBatch)
	}
	return l.store.Accounts(ctx, ids)
}

// LookupTransfers returns the transfers among ids that exist.
func (l *Ledger) LookupTransfers(ctx context.Context, ids []string) ([]Transfer, error) {
	if len(ids) == 0 || len(ids) > MaxBatch {
		return nil, paygate.E(paygate.CodeInvalidArgument, "look up between 1 and %d transfers", MaxBatch)
	}
	return l.store.Transfers(ctx, ids)
}

// ListTransfers returns one page of the transfers that debit or credit the
// account, newest first. cursor is "" for the first page or a NextCursor.
// Errors: CodeAccountNotFound, CodeInvalidArgument (bad cursor or limit).
func (l *Ledger) ListTransfers(ctx context.Context, accountID, cursor string, limit int) (TransferPage, error) {
	if limit == 0 {
		limit = DefaultPageSize
	}
	if limit < 0 || limit > MaxPageSize {
		return TransferPage{}, paygate.EField(paygate.CodeInvalidArgument, "limit", "limit must be between 1 and %d", MaxPageSize)
	}
	var before int64
	if cursor != "" {
		b, err := base64.RawURLEncoding.DecodeString(cursor)
		if err == nil {
			before, err = strconv.ParseInt(string(b), 10, 64)
		}
		if err != nil || before <= 0 {
			return TransferPage{}, paygate.EField(paygate.CodeInvalidArgument, "cursor", "invalid cursor")
		}
	}
	as, err := l.store.Accounts(ctx, []string{accountID})
	if err != nil {
		return TransferPage{}, err
	}
	if len(as) == 0 {
		return TransferPage{}, paygate.EField(paygate.CodeAccountNotFound, "account_id", "account %q not found", accountID)
	}
	ts, err := l.store.AccountTransfers(ctx, accountID, before, limit+1)
	if err != nil {
		return TransferPage{}, err
	}
	page := TransferPage{Transfers: ts}
	if len(ts) > limit {
		page.Transfers = ts[:limit]
		page.NextCursor = base64.RawURLEncoding.EncodeToString([]byte(strconv.FormatInt(ts[limit-1].Seq, 10)))
	}
	return page, nil
}

// TrialBalance sums every account's posted debits and credits dated on or
// before date. Errors: CodeInvalidArgument for a malformed date.
func (l *Ledger) TrialBalance(ctx context.Context, date paygate.Date) (TrialBalance, error) {
	if _, err := paygate.ParseDate(string(date)); err != nil {
		return TrialBalance{}, err
	}
	lines, err := l.store.TrialBalanceLines(ctx, date)
	if err != nil {
		return TrialBalance{}, err
	}
	tb := TrialBalance{Date: date, Lines: lines, Totals: map[paygate.Currency]TrialBalanceTotal{}}
	for _, ln := range lines {
		t := tb.Totals[ln.Currency]
		t.Debits += ln.DebitsPosted
		t.Credits += ln.CreditsPosted
		tb.Totals[ln.Currency] = t
	}
	return tb, nil
}

// ExpireHolds voids up to limit holds whose timeout has passed, recording
// for each a transfer with the Expired flag and id "expire_" + the hold's id.
// Several processes may run it at once: each hold is expired exactly once.
// It returns how many holds it expired.
func (l *Ledger) ExpireHolds(ctx context.Context, limit int) (int, error) {
	if limit <= 0 {
		limit = 100
	}
	n := 0
	err := l.store.InTx(ctx, func(tx Tx) error {
		n = 0
		holds, err := tx.LockExpiredHolds(ctx, l.clock.Now(), limit)
		if err != nil || len(holds) == 0 {
			return err
		}
		ts := make([]Transfer, len(holds))
		for i, h := range holds {
			ts[i] = Transfer{ID: "expire_" + h.ID, PendingID: h.ID, Flags: VoidPending | Expired, Code: h.Code, Ref: h.Ref}
		}
		_, err = l.apply(ctx, tx, ts, true)
		n = len(ts)
		return err
	})
	return n, err
}

// CreateTransfers submits transfers as one journal, in one database
// transaction: all of them apply, in order, or none does. Each later
// transfer sees the balances left by the earlier ones.
//
// Resubmitting the same ids with the same fields returns the stored
// transfers with Existed set; reusing an id with different fields fails with
// CodeIDConflict naming the field. Errors: CodeInvalidArgument,
// CodeAmountNotPositive, CodeUnknownCurrency, CodeCurrencyMismatch,
// CodeAccountNotFound, CodeAccountClosed, CodeInsufficientFunds,
// CodeLimitExceeded, CodeOverflow, CodeIDConflict, CodeNotFound (unknown
// hold), CodeAlreadyResolved, CodeHoldExpired. A rejected journal changes
// nothing.
func (l *Ledger) CreateTransfers(ctx context.Context, transfers []Transfer) ([]Result, error) {
	if err := validate(transfers, false); err != nil {
		return nil, err
	}
	var res []Result
	err := l.store.InTx(ctx, func(tx Tx) error {
		var err error
		res, err = l.apply(ctx, tx, transfers, false)
		return err
	})
	if err != nil {
		return nil, err
	}
	return res, nil
}

// Apply applies transfers as one journal inside the caller's transaction,
// so that a use case commits its own state change and its postings together.
// It behaves like CreateTransfers; on paygate.ErrRetry the caller's
// transaction must be run again (Store.InTx does that).
func (l *Ledger) Apply(ctx context.Context, tx Tx, transfers []Transfer) ([]Result, error) {
	if err := validate(transfers, false); err != nil {
		return nil, err
	}
	return l.apply(ctx, tx, transfers, false)
}

func checkID(field, id string) error {
	if id == "" || len(id) > MaxIDLen {
		return paygate.EField(paygate.CodeInvalidArgument, field, "%s must be 1 to %d characters", field, MaxIDLen)
	}
	for i := 0; i < len(id); i++ {
		if c := id[i]; c <= ' ' || c > '~' {
			return paygate.EField(paygate.CodeInvalidArgument, field, "%s must be printable ASCII without spaces", field)
		}
	}
	return nil
}

// validate checks what can be checked without the database.
func validate(ts []Transfer, internal bool) error {
	if len(ts) == 0 || len(ts) > MaxBatch {
		return paygate.E(paygate.CodeInvalidArgument, "submit between 1 and %d transfers", MaxBatch)
	}
	seen := make(map[string]bool, len(ts))
	for i, t := range ts {
		if err := validateOne(t, internal); err != nil {
			return at(i, t.ID, err)
		}
		if seen[t.ID] {
			return at(i, t.ID, paygate.EField(paygate.CodeInvalidArgument, "id", "transfer id appears twice in the journal"))
		}
		seen[t.ID] = true
	}
	return nil
}

func validateOne(t Transfer, internal bool) error {
	if !internal {
		if err := checkID("id", t.ID); err != nil {
			return err
		}
		if t.Flags&Expired != 0 {
			return paygate.EField(paygate.CodeInvalidArgument, "flags", "the expired flag is set by the ledger only")
		}
	}
	if t.Flags&^(Pending|PostPending|VoidPending|Expired) != 0 {
		return paygate.EField(paygate.CodeInvalidArgument, "flags", "unknown transfer flag")
	}
	phase := t.Flags & (Pending | PostPending | VoidPending)
	if phase != 0 && phase&(phase-1) != 0 {
		return paygate.EField(paygate.CodeInvalidArgument, "flags", "pending, post and void are mutually exclusive")
	}
	if t.Currency != "" && !t.Currency.Valid() {
		return paygate.EField(paygate.CodeUnknownCurrency, "currency", "unknown currency %q", t.Currency)
	}
	if len(t.Ref) > MaxRefLen {
		return paygate.EField(paygate.CodeInvalidArgument, "ref", "ref is longer than %d bytes", MaxRefLen)
	}
	if t.Code < 0 {
		return paygate.EField(paygate.CodeInvalidArgument, "code", "code must not be negative")
	}
	if t.Timeout != 0 && phase != Pending {
		return paygate.EField(paygate.CodeInvalidArgument, "timeout", "only a pending transfer has a timeout")
	}
	if t.Timeout < 0 || t.Timeout%time.Second != 0 {
		return paygate.EField(paygate.CodeInvalidArgument, "timeout", "timeout must be a whole number of seconds, zero for none")
	}
	switch phase {
	case PostPending, VoidPending:
		if err := checkID("pending_id", t.PendingID); err != nil {
			return err
		}
		if t.Amount < 0 {
			return paygate.EField(paygate.CodeAmountNotPositive, "amount", "amount must not be negative")
		}
		if t.DebitAccountID != "" && t.DebitAccountID == t.CreditAccountID {
			return paygate.EField(paygate.CodeInvalidArgument, "credit_account_id", "debit and credit accounts must differ")
		}
	default:
		if t.PendingID != "" {
			return paygate.EField(paygate.CodeInvalidArgument, "pending_id", "pending_id is only for post and void")
		}
		if err := checkID("debit_account_id", t.DebitAccountID); err != nil {
			return err
		}
		if err := checkID("credit_account_id", t.CreditAccountID); err != nil {
			return err
		}
		if t.DebitAccountID == t.CreditAccountID {
			return paygate.EField(paygate.CodeInvalidArgument, "credit_account_id", "debit and credit accounts must differ")
		}
		if t.Amount <= 0 {
			return paygate.EField(paygate.CodeAmountNotPositive, "amount", "amount must be a positive integer of minor units")
		}
	}
	return nil
}

// at prefixes an error's message with the transfer it concerns.
func at(i int, id string, err error) error {
	pe, ok := err.(*paygate.Error)
	if !ok {
		return err
	}
	c := *pe
	c.Message = fmt.Sprintf("transfer %d (%s): %s", i, id, pe.Message)
	return &c
}

func shardOf(id string, n int) int {
	if n <= 1 {
		return 0
	}
	h := fnv.New32a()
	h.Write([]byte(id))
	return int(h.Sum32() % uint32(n))
}

// accounts returns the immutable facts of the accounts, from the cache or tx.
func (l *Ledger) accounts(ctx context.Context, tx Tx, ids map[string]bool) (map[string]Account, error) {
	out := make(map[string]Account, len(ids))
	var miss []string
	for id := range ids {
		if v, ok := l.meta.Load(id); ok {
			out[id] = v.(Account)
		} else {
			miss = append(miss, id)
		}
	}
	if len(miss) > 0 {
		as, err := tx.AccountsByID(ctx, miss)
		if err != nil {
			return nil, err
		}
		for _, a := range as {
			a.Balance = Balance{}
			l.meta.Store(a.ID, a)
			out[a.ID] = a
		}
	}
	return out, nil
}

type work struct {
	now     time.Time
	date    paygate.Date
	accts   map[string]Account
	rows    map[ShardKey]*ShardBalance
	dirty   map[ShardKey]bool
	holds   map[string]*Transfer // holds being resolved, by id
	created map[string]*Transfer // pending transfers created in this journal
}

// lockChecker is an optional fast path of a Tx: TransfersByID(ids) and
// LockBalances(keys) in one round trip. apply uses it for journals without
// posts or voids whose accounts are all cached, where the rows to lock are
// known before the look-up; the results are those of the two calls.
type lockChecker interface {
	TransfersByIDLockBalances(ctx context.Context, ids []string, keys []ShardKey) ([]Transfer, []ShardBalance, error)
}

// journalWriter is an optional fast path of a Tx: InsertTransfers(ts) and,
// only when every transfer was inserted, WriteBalances(rows) and
// SetHoldStatus of each of holds (by ID, to its HoldStatus), in one round
// trip. It returns how many transfers were inserted.
type journalWriter interface {
	WriteJournal(ctx context.Context, ts []Transfer, rows []ShardBalance, holds []Transfer) (int64, error)
}

func (l *Ledger) apply(ctx context.Context, tx Tx, ts []Transfer, internal bool) ([]Result, error) {
	ids := make([]string, len(ts))
	for i, t := range ts {
		ids[i] = t.ID
	}
	// Fastest path: check, lock and write in one statement, so that the
	// balance rows (a merchant's, shared by all its payments and refunds)
	// wait for the caller's COMMIT only.
	if ja, ok := tx.(JournalApplier); ok && ja.AppliesJournals() {
		if accts, ok := l.cachedAccounts(ts); ok {
			if res, done, err := l.applyOneStatement(ctx, ja, ts, accts); done || err != nil {
				return res, err
			}
		}
	}
	// Fast path: look up the ids and lock the balance rows together.
	if lc, ok := tx.(lockChecker); ok {
		if accts, ok := l.cachedAccounts(ts); ok {
			w := newWork(l)
			w.accts = accts
			keys, err := w.lockKeys(ts)
			if err != nil {
				return nil, err
			}
			existing, rows, err := lc.TransfersByIDLockBalances(ctx, ids, keys)
			if err != nil {
				return nil, err
			}
			if len(existing) > 0 {
				return l.compareExisting(ctx, tx, ts, existing)
			}
			return l.applyLocked(ctx, tx, ts, w, keys, rows)
		}
	}
	existing, err := tx.TransfersByID(ctx, ids)
	if err != nil {
		return nil, err
	}
	if len(existing) > 0 {
		return l.compareExisting(ctx, tx, ts, existing)
	}

	w := newWork(l)

	// Holds first (lock order: hold rows, then balance rows, everywhere).
	inBatch := map[string]bool{}
	var holdIDs []string
	for _, t := range ts {
		if t.Flags&Pending != 0 {
			inBatch[t.ID] = true
		}
	}
	for _, t := range ts {
		if t.Flags&(PostPending|VoidPending) != 0 && !inBatch[t.PendingID] && !slices.Contains(holdIDs, t.PendingID) {
			holdIDs = append(holdIDs, t.PendingID)
		}
	}
	if len(holdIDs) > 0 {
		hs, err := tx.LockHolds(ctx, holdIDs)
		if err != nil {
			return nil, err
		}
		for i := range hs {
			w.holds[hs[i].ID] = &hs[i]
		}
	}

	// Accounts involved, and the balance rows to lock.
	acctIDs := map[string]bool{}
	for i, t := range ts {
		if t.Flags&(PostPending|VoidPending) != 0 && !inBatch[t.PendingID] {
			h, ok := w.holds[t.PendingID]
			if !ok {
				return nil, at(i, t.ID, paygate.EField(paygate.CodeNotFound, "pending_id", "pending transfer %q not found", t.PendingID))
			}
			acctIDs[h.DebitAccountID], acctIDs[h.CreditAccountID] = true, true
			continue
		}
		if t.DebitAccountID != "" {
			acctIDs[t.DebitAccountID] = true
		}
		if t.CreditAccountID != "" {
			acctIDs[t.CreditAccountID] = true
		}
	}
	w.accts, err = l.accounts(ctx, tx, acctIDs)
	if err != nil {
		return nil, err
	}
	keys, err := w.lockKeys(ts)
	if err != nil {
		return nil, err
	}
	rows, err := tx.LockBalances(ctx, keys)
	if err != nil {
		return nil, err
	}
	return l.applyLocked(ctx, tx, ts, w, keys, rows)
}

// applyOneStatement applies a journal of plain and pending transfers
// through JournalApplier. done is false when the journal is not for it
// (a limit over several shards, an overflow, a mistake the ordinary path
// names) or when the store refused it (an existing id, a closed account,
// a limit, an overflow): the ordinary path then decides, under the locks
// the statement took, exactly as without it.
func (l *Ledger) applyOneStatement(ctx context.Context, ja JournalApplier, ts []Transfer, accts map[string]Account) (res []Result, done bool, err error) {
	w := newWork(l)
	out := make([]Transfer, len(ts))
	deltas := map[ShardKey]*RowDelta{}
	var order []ShardKey
	row := func(k ShardKey) *RowDelta {
		d := deltas[k]
		if d == nil {
			d = &RowDelta{ShardKey: k}
			deltas[k] = d
			order = append(order, k)
		}
		return d
	}
	// tighten lowers *limit to v.
	tighten := func(limit **int64, v int64) {
		if *limit == nil || v < **limit {
			*limit = &v
		}
	}
	for i, t := range ts {
		d, c := accts[t.DebitAccountID], accts[t.CreditAccountID]
		if d.Currency != c.Currency || t.Currency != "" && t.Currency != d.Currency {
			return nil, false, nil
		}
		if d.Flags&DebitsMustNotExceedCredits != 0 && d.Shards > 1 || c.Flags&CreditsMustNotExceedDebits != 0 && c.Shards > 1 {
			return nil, false, nil // the limit is on the sum of the shards
		}
		t.CreatedAt, t.AccountingDate, t.HoldStatus, t.ExpiresAt = w.now, w.date, "", time.Time{}
		t.Currency = d.Currency
		t.DebitShard, t.CreditShard = shardOf(t.ID, d.Shards), shardOf(t.ID, c.Shards)
		dr, cr := row(ShardKey{d.ID, t.DebitShard}), row(ShardKey{c.ID, t.CreditShard})
		if d.Flags&DebitsMustNotExceedCredits != 0 {
			// before this transfer: debits + Σ earlier debits + amount ≤
			// credits posted + Σ earlier posted credits
			debits, err1 := addAll(dr.DebitsPending, dr.DebitsPosted, t.Amount)
			if err1 != nil {
				return nil, false, nil
			}
			tighten(&dr.DebitLimit, dr.CreditsPosted-debits)
		}
		if c.Flags&CreditsMustNotExceedDebits != 0 {
			credits, err1 := addAll(cr.CreditsPending, cr.CreditsPosted, t.Amount)
			if err1 != nil {
				return nil, false, nil
			}
			tighten(&cr.CreditLimit, cr.DebitsPosted-credits)
		}
		df, cf := &dr.DebitsPosted, &cr.CreditsPosted
		if t.Flags&Pending != 0 {
			df, cf = &dr.DebitsPending, &cr.CreditsPending
			t.HoldStatus = HoldPending
			if t.Timeout > 0 {
				t.ExpiresAt = w.now.Add(t.Timeout)
			}
		}
		var err1, err2 error
		*df, err1 = paygate.AddInt64(*df, t.Amount)
		*cf, err2 = paygate.AddInt64(*cf, t.Amount)
		if err1 != nil || err2 != nil {
			return nil, false, nil
		}
		out[i] = t
	}
	rows := make([]RowDelta, len(order))
	for i, k := range order {
		rows[i] = *deltas[k]
	}
	n, err := ja.ApplyJournal(ctx, out, rows)
	switch {
	case err != nil:
		return nil, false, err
	case n == 0:
		return nil, false, nil
	case n != int64(len(out)):
		return nil, false, fmt.Errorf("ledger: transfer id inserted concurrently: %w", paygate.ErrRetry)
	}
	res = make([]Result, len(out))
	for i, t := range out {
		res[i] = Result{Transfer: t}
	}
	return res, true, nil
}

func newWork(l *Ledger) *work {
	w := &work{
		now:     l.clock.Now().UTC().Truncate(time.Microsecond),
		rows:    map[ShardKey]*ShardBalance{},
		dirty:   map[ShardKey]bool{},
		holds:   map[string]*Transfer{},
		created: map[string]*Transfer{},
	}
	w.date = l.cal.AccountingDate(w.now)
	return w
}

// cachedAccounts returns the accounts of a journal without posts or voids
// when every one is in the cache.
func (l *Ledger) cachedAccounts(ts []Transfer) (map[string]Account, bool) {
	out := make(map[string]Account, 2*len(ts))
	for _, t := range ts {
		if t.Flags&(PostPending|VoidPending) != 0 {
			return nil, false
		}
		for _, id := range []string{t.DebitAccountID, t.CreditAccountID} {
			if _, ok := out[id]; ok {
				continue
			}
			v, ok := l.meta.Load(id)
			if !ok {
				return nil, false
			}
			out[id] = v.(Account)
		}
	}
	return out, true
}

// lockKeys returns the balance rows the journal must lock: each side's
// shard, or every shard of a sharded account whose limit the side could
// break; a resolved hold's rows.
func (w *work) lockKeys(ts []Transfer) ([]ShardKey, error) {
	keys := map[ShardKey]bool{}
	for i, t := range ts {
		if t.Flags&(PostPending|VoidPending) != 0 {
			if h, ok := w.holds[t.PendingID]; ok {
				keys[ShardKey{h.DebitAccountID, h.DebitShard}] = true
				keys[ShardKey{h.CreditAccountID, h.CreditShard}] = true
			}
			continue // an in-batch hold's rows are locked for its pending transfer
		}
		for _, side := range []struct {
			id, field string
			limit     AccountFlags
		}{{t.DebitAccountID, "debit_account_id", DebitsMustNotExceedCredits}, {t.CreditAccountID, "credit_account_id", CreditsMustNotExceedDebits}} {
			a, ok := w.accts[side.id]
			if !ok {
				return nil, at(i, t.ID, paygate.EField(paygate.CodeAccountNotFound, side.field, "account %q not found", side.id))
			}
			if a.Flags&side.limit != 0 && a.Shards > 1 {
				for s := 0; s < a.Shards; s++ { // the limit is on the sum of the shards
					keys[ShardKey{a.ID, s}] = true
				}
			} else {
				keys[ShardKey{a.ID, shardOf(t.ID, a.Shards)}] = true
			}
		}
	}
	return slices.Collect(maps.Keys(keys)), nil
}

// applyLocked applies the journal to the locked rows and writes it.
func (l *Ledger) applyLocked(ctx context.Context, tx Tx, ts []Transfer, w *work, keys []ShardKey, rows []ShardBalance) ([]Result, error) {
	for i := range rows {
		w.rows[rows[i].ShardKey] = &rows[i]
	}
	for _, k := range keys {
		if w.rows[k] == nil {
			return nil, paygate.EField(paygate.CodeAccountNotFound, "account_id", "account %q not found", k.AccountID)
		}
	}

	out := make([]Transfer, len(ts))
	for i, t := range ts {
		r, err := w.one(t)
		if err != nil {
			return nil, l.orExisting(ctx, tx, ts, at(i, t.ID, err))
		}
		out[i] = r
	}

	var dirty []ShardBalance
	for k := range w.dirty {
		dirty = append(dirty, *w.rows[k])
	}
	// A hold created and resolved in this journal is inserted resolved;
	// the others resolved here are updated.
	for i := range out {
		if h := w.created[out[i].ID]; h != nil {
			out[i].HoldStatus = h.HoldStatus
		}
	}
	var resolved []Transfer
	for id, h := range w.holds {
		if h.HoldStatus != HoldPending && w.created[id] == nil {
			resolved = append(resolved, *h)
		}
	}
	// The balance rows stay locked until the caller's COMMIT: write
	// everything in as few round trips as the store allows.
	if jw, ok := tx.(journalWriter); ok {
		n, err := jw.WriteJournal(ctx, out, dirty, resolved)
		if err != nil {
			return nil, err
		}
		if n != int64(len(out)) {
			return nil, fmt.Errorf("ledger: transfer id inserted concurrently: %w", paygate.ErrRetry)
		}
	} else {
		n, err := tx.InsertTransfers(ctx, out)
		if err != nil {
			return nil, err
		}
		if n != int64(len(out)) {
			return nil, fmt.Errorf("ledger: transfer id inserted concurrently: %w", paygate.ErrRetry)
		}
		if err := tx.WriteBalances(ctx, dirty); err != nil {
			return nil, err
		}
		for _, h := range resolved {
			if err := tx.SetHoldStatus(ctx, h.ID, h.HoldStatus); err != nil {
				return nil, err
			}
		}
	}
	res := make([]Result, len(out))
	for i, t := range out {
		res[i] = Result{Transfer: t}
	}
	return res, nil
}

// orExisting turns a rejection into the idempotent answer when the journal
// was in fact already applied (a retry racing the first submission).
func (l *Ledger) orExisting(ctx context.Context, tx Tx, ts []Transfer, rejection error) error {
	ids := make([]string, len(ts))
	for i, t := range ts {
		ids[i] = t.ID
	}
	existing, err := tx.TransfersByID(ctx, ids)
	if err != nil {
		return err
	}
	if len(existing) > 0 {
		// Committed by a concurrent submission after our first look: run
		// again, and the look finds it.
		return fmt.Errorf("ledger: journal committed concurrently: %w", paygate.ErrRetry)
	}
	return rejection
}

// sum returns the account's balance over the locked shards.
func (w *work) sum(a Account) (Balance, error) {
	var b Balance
	var err error
	for s := 0; s < a.Shards; s++ {
		r := w.rows[ShardKey{a.ID, s}]
		if r == nil {
			continue
		}
		for _, p := range [][2]*int64{{&b.DebitsPending, &r.DebitsPending}, {&b.DebitsPosted, &r.DebitsPosted}, {&b.CreditsPending, &r.CreditsPending}, {&b.CreditsPosted, &r.CreditsPosted}} {
			if *p[0], err = paygate.AddInt64(*p[0], *p[1]); err != nil {
				return b, err
			}
		}
	}
	return b, nil
}

// add adds delta to *field of row k, failing with CodeOverflow.
func (w *work) add(k ShardKey, field func(*ShardBalance) *int64, delta int64) error {
	r := w.rows[k]
	v, err := paygate.AddInt64(*field(r), delta)
	if err != nil {
		return err
	}
	*field(r) = v
	w.dirty[k] = true
	return nil
}

func dPending(r *ShardBalance) *int64 { return &r.DebitsPending }
func dPosted(r *ShardBalance) *int64  { return &r.DebitsPosted }
func cPending(r *ShardBalance) *int64 { return &r.CreditsPending }
func cPosted(r *ShardBalance) *int64  { return &r.CreditsPosted }

// one applies a single transfer to the in-memory balances and returns the
// transfer as it will be stored.
func (w *work) one(t Transfer) (Transfer, error) {
	t.CreatedAt = w.now
	t.AccountingDate = w.date
	t.HoldStatus = ""
	t.ExpiresAt = time.Time{}
	if t.Flags&(PostPending|VoidPending) != 0 {
		return w.resolve(t)
	}
	d, c := w.accts[t.DebitAccountID], w.accts[t.CreditAccountID]
	if d.Currency != c.Currency {
		return t, paygate.EField(paygate.CodeCurrencyMismatch, "credit_account_id", "accounts are in %s and %s", d.Currency, c.Currency)
	}
	if t.Currency != "" && t.Currency != d.Currency {
		return t, paygate.EField(paygate.CodeCurrencyMismatch, "currency", "transfer is in %s but the accounts are in %s", t.Currency, d.Currency)
	}
	t.Currency = d.Currency
	t.DebitShard, t.CreditShard = shardOf(t.ID, d.Shards), shardOf(t.ID, c.Shards)
	dk, ck := ShardKey{d.ID, t.DebitShard}, ShardKey{c.ID, t.CreditShard}
	if w.rows[dk].Flags&Closed != 0 {
		return t, paygate.EField(paygate.CodeAccountClosed, "debit_account_id", "account %q is closed", d.ID)
	}
	if w.rows[ck].Flags&Closed != 0 {
		return t, paygate.EField(paygate.CodeAccountClosed, "credit_account_id", "account %q is closed", c.ID)
	}
	if d.Flags&DebitsMustNotExceedCredits != 0 {
		b, err := w.sum(d)
		if err != nil {
			return t, err
		}
		out, err := addAll(b.DebitsPending, b.DebitsPosted, t.Amount)
		if err != nil {
			return t, err
		}
		if out > b.CreditsPosted {
			return t, paygate.EField(paygate.CodeInsufficientFunds, "amount", "account %q has insufficient funds", d.ID)
		}
	}
	if c.Flags&CreditsMustNotExceedDebits != 0 {
		b, err := w.sum(c)
		if err != nil {
			return t, err
		}
		in, err := addAll(b.CreditsPending, b.CreditsPosted, t.Amount)
		if err != nil {
			return t, err
		}
		if in > b.DebitsPosted {
			return t, paygate.EField(paygate.CodeLimitExceeded, "amount", "account %q would exceed its credit limit", c.ID)
		}
	}
	df, cf := dPosted, cPosted
	if t.Flags&Pending != 0 {
		df, cf = dPending, cPending
		t.HoldStatus = HoldPending
		if t.Timeout > 0 {
			t.ExpiresAt = w.now.Add(t.Timeout)
		}
	}
	if err := w.add(dk, df, t.Amount); err != nil {
		return t, err
	}
	if err := w.add(ck, cf, t.Amount); err != nil {
		return t, err
	}
	if t.Flags&Pending != 0 {
		h := t
		w.holds[t.ID] = &h
		w.created[t.ID] = &h
	}
	return t, nil
}

func addAll(vs ...int64) (int64, error) {
	var s int64
	var err error
	for _, v := range vs {
		if s, err = paygate.AddInt64(s, v); err != nil {
			return 0, err
		}
	}
	return s, nil
}

// resolve posts or voids a hold.
func (w *work) resolve(t Transfer) (Transfer, error) {
	h := w.holds[t.PendingID]
	if h == nil {
		return t, paygate.EField(paygate.CodeNotFound, "pending_id", "pending transfer %q not found", t.PendingID)
	}
	if h.HoldStatus != HoldPending {
		return t, paygate.EField(paygate.CodeAlreadyResolved, "pending_id", "pending transfer %q is already %s", h.ID, h.HoldStatus)
	}
	if t.DebitAccountID != "" && t.DebitAccountID != h.DebitAccountID {
		return t, paygate.EField(paygate.CodeInvalidArgument, "debit_account_id", "debit account differs from the pending transfer's")
	}
	if t.CreditAccountID != "" && t.CreditAccountID != h.CreditAccountID {
		return t, paygate.EField(paygate.CodeInvalidArgument, "credit_account_id", "credit account differs from the pending transfer's")
	}
	if t.Currency != "" && t.Currency != h.Currency {
		return t, paygate.EField(paygate.CodeCurrencyMismatch, "currency", "transfer is in %s but the hold is in %s", t.Currency, h.Currency)
	}
	t.DebitAccountID, t.CreditAccountID, t.Currency = h.DebitAccountID, h.CreditAccountID, h.Currency
	t.DebitShard, t.CreditShard = h.DebitShard, h.CreditShard
	dk, ck := ShardKey{h.DebitAccountID, h.DebitShard}, ShardKey{h.CreditAccountID, h.CreditShard}
	post := t.Flags&PostPending != 0
	if post {
		if !h.ExpiresAt.IsZero() && !w.now.Before(h.ExpiresAt) {
			return t, paygate.EField(paygate.CodeHoldExpired, "pending_id", "pending transfer %q expired at %s", h.ID, h.ExpiresAt.Format(time.RFC3339))
		}
		if t.Amount == 0 {
			t.Amount = h.Amount
		}
		if t.Amount > h.Amount {
			return t, paygate.EField(paygate.CodeLimitExceeded, "amount", "amount %d exceeds the held %d", t.Amount, h.Amount)
		}
		if w.rows[dk].Flags&Closed != 0 {
			return t, paygate.EField(paygate.CodeAccountClosed, "debit_account_id", "account %q is closed", h.DebitAccountID)
		}
		if w.rows[ck].Flags&Closed != 0 {
			return t, paygate.EField(paygate.CodeAccountClosed, "credit_account_id", "account %q is closed", h.CreditAccountID)
		}
	} else {
		if t.Amount != 0 && t.Amount != h.Amount {
			return t, paygate.EField(paygate.CodeInvalidArgument, "amount", "a void releases the whole held amount %d", h.Amount)
		}
		t.Amount = h.Amount
	}
	for _, step := range []struct {
		k ShardKey
		f func(*ShardBalance) *int64
		v int64
	}{{dk, dPending, -h.Amount}, {ck, cPending, -h.Amount}} {
		if err := w.add(step.k, step.f, step.v); err != nil {
			return t, err
		}
	}
	switch {
	case post:
		if err := w.add(dk, dPosted, t.Amount); err != nil {
			return t, err
		}
		if err := w.add(ck, cPosted, t.Amount); err != nil {
			return t, err
		}
		h.HoldStatus = HoldPosted
	case t.Flags&Expired != 0:
		h.HoldStatus = HoldExpired
	default:
		h.HoldStatus = HoldVoided
	}
	return t, nil
}

// compareExisting answers a resubmission: identical → the stored results,
// different → CodeIDConflict naming the first differing field.
func (l *Ledger) compareExisting(ctx context.Context, tx Tx, ts []Transfer, existing []Transfer) ([]Result, error) {
	byID := make(map[string]Transfer, len(existing))
	for _, e := range existing {
		byID[e.ID] = e
	}
	if len(existing) != len(ts) {
		for i, t := range ts {
			if _, ok := byID[t.ID]; ok {
				return nil, at(i, t.ID, paygate.EField(paygate.CodeIDConflict, "id", "the journal mixes ids already used with new ones"))
			}
		}
	}
	// A post for "the full amount" (0) matches a stored post of the hold's amount.
	var holdIDs []string
	for _, t := range ts {
		if t.Flags&PostPending != 0 && t.Amount == 0 {
			holdIDs = append(holdIDs, t.PendingID)
		}
	}
	held := map[string]int64{}
	if len(holdIDs) > 0 {
		hs, err := tx.TransfersByID(ctx, holdIDs)
		if err != nil {
			return nil, err
		}
		for _, h := range hs {
			held[h.ID] = h.Amount
		}
	}
	res := make([]Result, len(ts))
	for i, t := range ts {
		e := byID[t.ID]
		if t.Flags&PostPending != 0 && t.Amount == 0 {
			t.Amount = held[t.PendingID]
		}
		if t.Flags&VoidPending != 0 && t.Amount == 0 {
			t.Amount = e.Amount
		}
		var f string
		switch {
		case t.Flags != e.Flags:
			f = "flags"
		case t.PendingID != e.PendingID:
			f = "pending_id"
		case t.DebitAccountID != "" && t.DebitAccountID != e.DebitAccountID:
			f = "debit_account_id"
		case t.CreditAccountID != "" && t.CreditAccountID != e.CreditAccountID:
			f = "credit_account_id"
		case t.Amount != e.Amount:
			f = "amount"
		case t.Currency != "" && t.Currency != e.Currency:
			f = "currency"
		case t.Code != e.Code:
			f = "code"
		case t.Ref != e.Ref:
			f = "ref"
		case t.Timeout != e.Timeout:
			f = "timeout"
		}
		if f != "" {
			return nil, at(i, t.ID, paygate.EField(paygate.CodeIDConflict, f, "transfer id already used with a different %s", f))
		}
		res[i] = Result{Transfer: e, Existed: true}
	}
	return res, nil
}
