package payment

import (
	"context"
	"time"

	"paygate"
	"paygate/ledger"
	"paygate/notify"
)

// Tx is the database transaction the payment use cases write through. The
// store implements it; it is also the ledger's and the outbox's
// transaction, so that a state change, its journal and its notification
// commit together. Lookups of a missing row fail with CodeNotFound.
type Tx interface {
	ledger.Tx
	notify.Tx

	// InsertOrder inserts o unless the merchant already has an order with
	// its out_trade_no, and reports whether it inserted.
	InsertOrder(ctx context.Context, o Order) (bool, error)
	// OrderByOutTradeNoInTx returns the merchant's order with that number.
	OrderByOutTradeNoInTx(ctx context.Context, merchantID, outTradeNo string) (Order, error)
	// LockOrder returns the order with the id, locking its row until the
	// transaction ends.
	LockOrder(ctx context.Context, id string) (Order, error)
	// UpdateOrder stores o's mutable fields (status, payment, closing, fee,
	// update time).
	UpdateOrder(ctx context.Context, o Order) error
	// LockExpiredOrders locks up to limit open (NOTPAY, PAYERROR) orders
	// whose time_expire is at or before now, oldest expiry first, skipping
	// rows other transactions hold (PostgreSQL).
	LockExpiredOrders(ctx context.Context, now time.Time, limit int) ([]Order, error)

	// InsertAttempt inserts a new attempt.
	InsertAttempt(ctx context.Context, a Attempt) error
	// LockAttemptWithOrder returns the attempt with the id and its order,
	// locking both rows, in one round trip.
	LockAttemptWithOrder(ctx context.Context, id string) (Attempt, Order, error)
	// UpdateAttempt stores a's mutable fields (status, channel trade number,
	// fail code, review, paid time, query schedule, update time).
	UpdateAttempt(ctx context.Context, a Attempt) error
	// LockAttemptsToQuery locks up to limit PROCESSING attempts whose next
	// query is due at or before now, earliest first, skipping rows other
	// transactions hold (PostgreSQL).
	LockAttemptsToQuery(ctx context.Context, now time.Time, limit int) ([]Attempt, error)
}

// Store is the payment use cases' persistence: transactions plus reads that
// need none.
type Store interface {
	// InTx runs fn in one transaction, committing when it returns nil and
	// retrying it on transient conflicts, so fn must have no other effects.
	InTx(ctx context.Context, fn func(Tx) error) error
	// Order returns the merchant's order with the id (CodeNotFound when it
	// does not exist or is another merchant's).
	Order(ctx context.Context, merchantID, id string) (Order, error)
	// OrderByOutTradeNo returns the merchant's order with that number.
	OrderByOutTradeNo(ctx context.Context, merchantID, outTradeNo string) (Order, error)
	// OrderByID returns the order with the id, whoever's it is (the
	// checkout's read; CodeNotFound when there is none).
	OrderByID(ctx context.Context, id string) (Order, error)
	// Orders lists orders as q says, newest first.
	Orders(ctx context.Context, q ListQuery) ([]Order, error)
	// Attempt returns the attempt with the id, whoever's it is.
	Attempt(ctx context.Context, id string) (Attempt, error)
	// SetAttemptTradeNo records the channel's trade number of a PROCESSING
	// attempt that has none yet, in one statement, and reports whether it
	// did (false: a callback got there first, or the attempt is not
	// PROCESSING any more).
	SetAttemptTradeNo(ctx context.Context, id, tradeNo string, now time.Time) (bool, error)
	// OrderAttempts returns an order's attempts, oldest first.
	OrderAttempts(ctx context.Context, orderID string) ([]Attempt, error)
	// AttemptsInReview returns up to limit successful attempts held for
	// review (Review set) with id > afterID, oldest first.
	AttemptsInReview(ctx context.Context, afterID string, limit int) ([]Attempt, error)
}

// Merchants supplies merchant data; the merchant package implements it.
// Merchant fails with CodeNotFound for an unknown id.
type Merchants interface {
	Merchant(ctx context.Context, id string) (paygate.Merchant, error)
}

// Books is the part of the ledger payments post through; *ledger.Ledger
// implements it.
type Books interface {
	CreateAccounts(ctx context.Context, accounts []ledger.Account) ([]ledger.Account, error)
	Apply(ctx context.Context, tx ledger.Tx, transfers []ledger.Transfer) ([]ledger.Result, error)
}
