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
	ReleaseTx

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
	// LockExpiredAuthorizations locks up to limit AUTHORIZED orders whose
	// capture_before is at or before now, earliest first, skipping rows
	// other transactions hold (PostgreSQL).
	LockExpiredAuthorizations(ctx context.Context, now time.Time, limit int) ([]Order, error)

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
	// ProcessingAttempts returns the order's PROCESSING attempts, oldest
	// first; the caller holds the order's lock.
	ProcessingAttempts(ctx context.Context, orderID string) ([]Attempt, error)

	// InsertRefund inserts r unless the merchant already has a refund with
	// its out_refund_no, and reports whether it inserted.
	InsertRefund(ctx context.Context, r Refund) (bool, error)
	// RefundByOutRefundNoInTx returns the merchant's refund with that number.
	RefundByOutRefundNoInTx(ctx context.Context, merchantID, outRefundNo string) (Refund, error)
	// LockRefund returns the refund with the id, locking its row; callers
	// lock its order first.
	LockRefund(ctx context.Context, id string) (Refund, error)
	// UpdateRefund stores r's mutable fields (status, channel refund
	// number, fail code, awaiting funds, query schedule, success and close
	// times, update time).
	UpdateRefund(ctx context.Context, r Refund) error
	// OrderRefundsInTx returns the order's refunds, oldest first; the
	// caller holds the order's lock.
	OrderRefundsInTx(ctx context.Context, orderID string) ([]Refund, error)
	// LockRefundsToQuery locks up to limit PROCESSING refunds whose next
	// look is due at or before now, earliest first, skipping rows other
	// transactions hold (PostgreSQL).
	LockRefundsToQuery(ctx context.Context, now time.Time, limit int) ([]Refund, error)
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

	// Refund returns the merchant's refund with the id (CodeNotFound when
	// it does not exist or is another merchant's).
	Refund(ctx context.Context, merchantID, id string) (Refund, error)
	// RefundByOutRefundNo returns the merchant's refund with that number.
	RefundByOutRefundNo(ctx context.Context, merchantID, outRefundNo string) (Refund, error)
	// RefundByID returns the refund with the id, whoever's it is.
	RefundByID(ctx context.Context, id string) (Refund, error)
	// OrderRefunds returns an order's refunds, oldest first.
	OrderRefunds(ctx context.Context, orderID string) ([]Refund, error)
	// SetRefundChannelNo records the channel's number of a PROCESSING
	// refund that has none yet, in one statement, and reports whether it
	// did.
	SetRefundChannelNo(ctx context.Context, id, channelRefundNo string, now time.Time) (bool, error)
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
