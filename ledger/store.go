package ledger

import (
	"context"
	"time"

	"paygate"
)

// ShardKey names one balance row of an account.
type ShardKey struct {
	AccountID string
	Shard     int
}

// ShardBalance is one balance row with the account's current flags.
type ShardBalance struct {
	ShardKey
	Flags AccountFlags
	Balance
}

// RowDelta is what a journal adds to one balance row, and the limit the
// row must meet first; see JournalApplier.
type RowDelta struct {
	ShardKey
	// Added to the row's fields; never negative.
	DebitsPending, DebitsPosted, CreditsPending, CreditsPosted int64
	// DebitLimit, when set, requires debits_pending + debits_posted ≤
	// credits_posted + *DebitLimit of the row before the deltas (the
	// tightest of the journal's no-overdraft checks on it, the earlier
	// transfers' amounts folded in); CreditLimit is its mirror,
	// credits_pending + credits_posted ≤ debits_posted + *CreditLimit.
	DebitLimit, CreditLimit *int64
}

// JournalApplier is an optional fast path of a Tx for a journal of plain
// and pending transfers (no posts or voids) on accounts whose limits sit
// on one row: in one statement it locks the rows (in (account, shard)
// order, as LockBalances), and only if every row exists, is open, meets
// its limits and does not overflow, and no transfer id exists, inserts ts
// and adds the deltas. The rows stay locked either way. It returns how
// many transfers it inserted: len(ts) when it applied the journal, 0 when
// it did not (the caller decides why on the ordinary path).
// AppliesJournals reports whether the store has such a statement.
type JournalApplier interface {
	AppliesJournals() bool
	ApplyJournal(ctx context.Context, ts []Transfer, rows []RowDelta) (int64, error)
}

// Tx is the part of a database transaction the ledger writes through. The
// store implements it; use cases pass their own transaction to Apply so that
// a state change and its postings commit together.
type Tx interface {
	// AccountsByID returns the accounts that exist among ids, without
	// balances, in any order.
	AccountsByID(ctx context.Context, ids []string) ([]Account, error)
	// LockBalances locks the balance rows (FOR UPDATE on PostgreSQL) in
	// (account, shard) order and returns those that exist.
	LockBalances(ctx context.Context, keys []ShardKey) ([]ShardBalance, error)
	// WriteBalances stores new values for rows locked by LockBalances.
	WriteBalances(ctx context.Context, rows []ShardBalance) error
	// TransfersByID returns the transfers that exist among ids.
	TransfersByID(ctx context.Context, ids []string) ([]Transfer, error)
	// LockHolds locks the pending transfers among ids in id order.
	LockHolds(ctx context.Context, ids []string) ([]Transfer, error)
	// LockExpiredHolds locks up to limit pending transfers whose ExpiresAt is
	// at or before now, skipping rows another transaction holds.
	LockExpiredHolds(ctx context.Context, now time.Time, limit int) ([]Transfer, error)
	// InsertTransfers inserts transfers, skipping ids that already exist,
	// and reports how many rows were inserted.
	InsertTransfers(ctx context.Context, ts []Transfer) (int64, error)
	// SetHoldStatus records how a pending transfer was resolved.
	SetHoldStatus(ctx context.Context, id string, status HoldStatus) error
	// InsertAccounts inserts accounts and their zero balance rows, skipping
	// ids that already exist, and reports how many were inserted.
	InsertAccounts(ctx context.Context, as []Account) (int64, error)
	// SetAccountFlags sets an account's flags on the account and all of its
	// balance rows.
	SetAccountFlags(ctx context.Context, id string, flags AccountFlags) error
}

// Store is the ledger's persistence: transactions plus read-only queries that
// need no transaction.
type Store interface {
	// InTx runs fn in one database transaction, committing if it returns
	// nil. It retries fn on transient conflicts (paygate.ErrRetry,
	// serialization failures, deadlocks, busy databases).
	InTx(ctx context.Context, fn func(Tx) error) error
	// Accounts returns the accounts among ids with balances summed over shards.
	Accounts(ctx context.Context, ids []string) ([]Account, error)
	// Transfers returns the transfers among ids.
	Transfers(ctx context.Context, ids []string) ([]Transfer, error)
	// AccountTransfers returns up to limit transfers touching the account
	// with Seq < before (0: from the newest), newest first.
	AccountTransfers(ctx context.Context, accountID string, before int64, limit int) ([]Transfer, error)
	// TrialBalanceLines sums posted amounts per account for transfers dated
	// on or before date.
	TrialBalanceLines(ctx context.Context, date paygate.Date) ([]TrialBalanceLine, error)
}
