// Package transfer is customers' transfers: from a customer's balance
// account to another customer's balance account (named by their registered
// mobile phone), to one of the institution's own cards (credited at once),
// or to another bank's card (through the interbank channel,
// asynchronously). Every transfer is within the payer's limits
// (customer.MethodTransfer, counted in the customer's daily limit) and
// confirmed with the payment password.
//
// One transfer is one database transaction: the limit usage
// (customer.Service.Reserve), the transfer's row and its ledger journal
// commit together or not at all. A transfer to a customer or an own-bank
// card is final at once (SUCCESS). A transfer to another bank's card holds
// the money (a ledger hold: the payer's balance → the interbank channel's
// clearing account) and is PROCESSING until the channel answers: its
// success posts the hold (SUCCESS), its failure voids it and gives the
// limit usage back (FAILED). A channel that does not answer is asked again
// (Reconcile) until it does; an unknown outcome is never a failure.
//
// The payer's RequestID makes Send idempotent: the same RequestID with the
// same fields returns the first transfer, with other fields it is refused
// (CodeConflict). Other banks' card numbers are sealed at rest and shown
// only masked; request fingerprints are HMACs, never the number.
package transfer

import (
	"context"
	"time"

	"paygate"
	"paygate/customer"
	"paygate/sealing"
)

// PrefixTransfer starts every transfer's id.
const PrefixTransfer = "trf_"

// Ledger codes of transfers' postings.
const (
	// LedgerCode is the code of a transfer's posting between customers'
	// accounts (balance → balance or own-bank card).
	LedgerCode = 30
	// LedgerCodeInterbank is the code of a transfer's hold on the payer's
	// balance for another bank's card (balance → the interbank clearing
	// account) and of its post or void.
	LedgerCodeInterbank = 31
)

// LedgerID returns the id of the ledger transfer that moves (or holds) a
// transfer's money: "xfer_" + the transfer's id. LedgerPostID and
// LedgerVoidID name the post and the void of an interbank hold. Every one
// of them has the transfer's id as its Ref.
func LedgerID(transferID string) string { return "xfer_" + transferID }

// LedgerPostID is the id of the post of an interbank transfer's hold.
func LedgerPostID(transferID string) string { return "xfer_post_" + transferID }

// LedgerVoidID is the id of the void of an interbank transfer's hold.
func LedgerVoidID(transferID string) string { return "xfer_void_" + transferID }

// Kind tells where a transfer goes.
type Kind string

// Kinds of transfers.
const (
	// KindCustomer goes to another customer's balance account, named by the
	// mobile phone they registered with.
	KindCustomer Kind = "CUSTOMER"
	// KindOwnCard goes to one of the institution's own cards (DEBIT or
	// CORPORATE), credited at once.
	KindOwnCard Kind = "OWN_CARD"
	// KindOtherBank goes to another bank's card through the interbank
	// channel, asynchronously.
	KindOtherBank Kind = "OTHER_BANK_CARD"
)

// Status is where a transfer stands.
type Status string

// Statuses. PROCESSING is the only one that changes, exactly once, to
// SUCCESS or FAILED.
const (
	// StatusProcessing: another bank's card; the money is held until the
	// interbank channel answers.
	StatusProcessing Status = "PROCESSING"
	// StatusSuccess: the money reached the recipient.
	StatusSuccess Status = "SUCCESS"
	// StatusFailed: the other bank refused it; the hold was voided (the
	// money is back on the payer's balance) and the limit usage given back.
	StatusFailed Status = "FAILED"
)

// Final reports whether s is SUCCESS or FAILED.
func (s Status) Final() bool { return s == StatusSuccess || s == StatusFailed }

// FailDeclined is the FailCode of a transfer the interbank channel refused
// before it accepted it.
const FailDeclined = "DECLINED"

// Field sizes.
const (
	MaxRequestIDLen = 64 // a RequestID: 1 to 64 of A-Z a-z 0-9 _ -
	MaxMemoLen      = 64 // a memo, in characters
)

// Request is a payer's transfer.
type Request struct {
	// RequestID is the payer's idempotency key (1 to 64 letters, digits,
	// '_' or '-'): the portal renders a random one with its form, so a
	// double submit or a reload sends the same one.
	RequestID string
	// To is the recipient: a mainland mobile phone registered with a
	// customer (their balance account), or a card number (13 to 19
	// digits, Luhn-checked; spaces and dashes ignored).
	To string
	// Amount is in minor units; its Currency "" means the limits' currency
	// (CNY), the only one transfers take.
	Amount paygate.Money
	// Memo is an optional note for both parties, at most MaxMemoLen
	// characters, no control characters.
	Memo string
	// PayPassword is the payer's 6-digit payment password.
	PayPassword string
}

// Transfer is a transfer as its payer and its recipient see it: numbers
// and names only masked.
type Transfer struct {
	ID         string `json:"id"`
	CustomerID string `json:"customer_id"` // the payer
	RequestID  string `json:"request_id"`
	Kind       Kind   `json:"kind"`
	// RecipientCustomerID is the customer credited (KindCustomer, and the
	// owner of an own-bank card); "" for another bank's card.
	RecipientCustomerID string `json:"recipient_customer_id,omitempty"`
	// RecipientCardID is the own-bank card credited (KindOwnCard).
	RecipientCardID string `json:"recipient_card_id,omitempty"`
	// Recipient is the recipient masked: "138****0002" or
	// "628888******0054"; RecipientName their verified name masked ("*四"),
	// when known.
	Recipient     string `json:"recipient"`
	RecipientName string `json:"recipient_name,omitempty"`
	// Sender is the payer's login masked ("138****0001", "li***"); SenderName
	// their verified name masked, when verified.
	Sender         string        `json:"sender"`
	SenderName     string        `json:"sender_name,omitempty"`
	Amount         paygate.Money `json:"amount"`
	Memo           string        `json:"memo,omitempty"`
	Status         Status        `json:"status"`
	FailCode       string        `json:"fail_code,omitempty"`
	AccountingDate paygate.Date  `json:"accounting_date"` // the business day its limits count in
	// Channel and ChannelNo name the interbank channel and its number for
	// the transfer (KindOtherBank).
	Channel    string    `json:"channel,omitempty"`
	ChannelNo  string    `json:"channel_no,omitempty"`
	CreatedAt  time.Time `json:"created_at"`
	UpdatedAt  time.Time `json:"updated_at"`
	FinishedAt time.Time `json:"finished_at,omitzero"`
}

// Record is a transfer as stored: the public fields plus what never leaves
// this package.
type Record struct {
	Transfer
	// RequestHash is the HMAC fingerprint of the request's recipient,
	// amount and memo (idempotency).
	RequestHash string
	// Card is another bank's card number, sealed (KindOtherBank only).
	Card sealing.Sealed
	// Scenario is the outcome a simulated interbank channel is asked for.
	Scenario    string
	QueryCount  int
	NextQueryAt time.Time // when Reconcile asks the channel next; zero once final
}

// Tx is one transaction of the transfer store; store.Tx implements it. It
// is also the customer store's and the ledger's transaction, so a
// transfer's limit usage, row and postings commit together. Lookups of a
// missing row fail with CodeNotFound.
type Tx interface {
	customer.Tx

	// InsertTransfer inserts r unless its id or its payer's RequestID is
	// taken, and reports whether it inserted.
	InsertTransfer(ctx context.Context, r Record) (bool, error)
	// LockTransfer reads the transfer and locks its row.
	LockTransfer(ctx context.Context, id string) (Record, error)
	// UpdateTransfer writes r's mutable fields: status, fail code, channel
	// number, query count, next query time, finish and update times.
	UpdateTransfer(ctx context.Context, r Record) error
	// LockTransfersToQuery locks up to limit PROCESSING transfers whose
	// NextQueryAt is at or before now, oldest due first, skipping rows
	// another transaction holds.
	LockTransfersToQuery(ctx context.Context, now time.Time, limit int) ([]Record, error)
}

// Store is the transfer package's persistence; store.DB implements it
// (db.Transfers()).
type Store interface {
	// InTx runs fn in one transaction, committing when it returns nil and
	// retrying it on transient conflicts, so fn must have no other effects.
	InTx(ctx context.Context, fn func(Tx) error) error
	// Transfer returns the transfer with the id.
	Transfer(ctx context.Context, id string) (Record, error)
	// TransferByRequest returns the payer's transfer with the RequestID.
	TransferByRequest(ctx context.Context, customerID, requestID string) (Record, error)
	// CustomerTransfers returns up to limit transfers the customer sent or
	// received whose id sorts before before ("" for the newest), newest
	// (greatest id) first.
	CustomerTransfers(ctx context.Context, customerID, before string, limit int) ([]Record, error)
	// SetChannelNo records the channel's number of a PROCESSING transfer
	// that has none yet, and reports whether it did.
	SetChannelNo(ctx context.Context, id, channelNo string, now time.Time) (bool, error)
}
