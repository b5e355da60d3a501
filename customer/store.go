package customer

import (
	"context"
	"time"

	"paygate"
	"paygate/ledger"
	"paygate/sealing"
)

// Record is a customer as stored: the public fields plus the secrets and
// lock-out counters that never leave this package.
type Record struct {
	Customer
	PasswordHash    string         // argon2id PHC string
	PayPasswordHash string         // "" until set
	Identity        sealing.Sealed // sealed identityData once verified
	IDIndex         string         // blind index of the ID number; "" until verified
	Login           Attempts
	Pay             Attempts
}

// Attempts counts failed attempts at one secret within a window and holds
// the time a lock-out ends.
type Attempts struct {
	Failures    int
	WindowStart time.Time
	LockedUntil time.Time
}

// CardRecord is a card as stored: the public fields plus its sealed number,
// blind index, holder digest and sealed reserved phone.
type CardRecord struct {
	Card
	PAN          sealing.Sealed
	PANIndex     string
	HolderDigest string
	HolderPhone  sealing.Sealed
}

// Tx is one transaction of the customer store; store.Tx implements it. It
// is also the ledger's transaction, so a payment's postings, its limit usage
// and its state change commit together. Lookups of a missing row fail with
// CodeNotFound.
type Tx interface {
	ledger.Tx

	// InsertCustomer inserts r unless its id, phone or username is taken,
	// and reports whether it inserted.
	InsertCustomer(ctx context.Context, r Record) (bool, error)
	// CustomerInTx reads the customer without locking it.
	CustomerInTx(ctx context.Context, id string) (Record, error)
	// LockCustomer reads the customer and locks its row until the
	// transaction ends.
	LockCustomer(ctx context.Context, id string) (Record, error)
	// UpdateCustomer writes r's mutable fields (everything but the id,
	// phone, username and creation time).
	UpdateCustomer(ctx context.Context, r Record) error

	// InsertCard inserts c unless its id or card number (PANIndex) is
	// taken, and reports whether it inserted.
	InsertCard(ctx context.Context, c CardRecord) (bool, error)
	// CardInTx reads the card with the id, whoever's it is.
	CardInTx(ctx context.Context, id string) (CardRecord, error)
	// UpdateCard writes c's mutable fields (status, limits, update time).
	UpdateCard(ctx context.Context, c CardRecord) error

	// InsertAgreement inserts a unless the card already has an active
	// agreement, and reports whether it inserted.
	InsertAgreement(ctx context.Context, a Agreement) (bool, error)
	// LockAgreement reads the agreement and locks it.
	LockAgreement(ctx context.Context, id string) (Agreement, error)
	// RevokeAgreement marks an active agreement revoked at the time.
	RevokeAgreement(ctx context.Context, id string, at time.Time) error
	// CountActiveAgreements counts the customer's active agreements.
	CountActiveAgreements(ctx context.Context, customerID string) (int, error)

	// AddUsage adds amount to the usage of scope on day, in one statement,
	// only if the result stays at or below limit; it reports whether it
	// added. amount must be positive and at most limit.
	AddUsage(ctx context.Context, scope string, day paygate.Date, amount, limit int64) (bool, error)
	// SubUsage takes amount off the usage of scope on day, never below 0.
	SubUsage(ctx context.Context, scope string, day paygate.Date, amount int64) error
}

// Store is the customer package's persistence; store.DB implements it
// (db.Customers()).
type Store interface {
	// InTx runs fn in one transaction, committing when it returns nil and
	// retrying it on transient conflicts, so fn must have no other effects.
	InTx(ctx context.Context, fn func(Tx) error) error
	// Customer returns the customer with the id.
	Customer(ctx context.Context, id string) (Record, error)
	// CustomerByLogin returns the customer whose phone or username is login.
	CustomerByLogin(ctx context.Context, login string) (Record, error)
	// Card returns the card with the id, whoever's it is.
	Card(ctx context.Context, id string) (CardRecord, error)
	// CardByIndex returns the card whose number has the blind index.
	CardByIndex(ctx context.Context, panIndex string) (CardRecord, error)
	// Cards lists the customer's cards, oldest first.
	Cards(ctx context.Context, customerID string) ([]CardRecord, error)
	// Agreements lists the customer's agreements, revoked ones included,
	// oldest first.
	Agreements(ctx context.Context, customerID string) ([]Agreement, error)
	// Agreement returns the agreement with the id, whoever's it is.
	Agreement(ctx context.Context, id string) (Agreement, error)
	// Usage returns what scope has used on day (0 when nothing).
	Usage(ctx context.Context, scope string, day paygate.Date) (int64, error)
}

// Books is the part of the ledger customers need; *ledger.Ledger
// implements it.
type Books interface {
	CreateAccounts(ctx context.Context, accounts []ledger.Account) ([]ledger.Account, error)
	LookupAccounts(ctx context.Context, ids []string) ([]ledger.Account, error)
	Apply(ctx context.Context, tx ledger.Tx, transfers []ledger.Transfer) ([]ledger.Result, error)
}
