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
