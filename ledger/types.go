// Package ledger is paygate's double-entry engine, modelled on TigerBeetle's
// accounts and transfers. Every movement of money is a Transfer that debits
// one Account and credits another by the same amount in the same currency, so
// per currency the balances of all accounts always sum to zero.
//
// Transfers are single-phase (posted at once) or two-phase: a pending
// transfer holds funds, and is later posted (in full or in part; the rest is
// released), voided, or expired by a job after its timeout. A hold is
// resolved exactly once.
//
// Transfer ids are chosen by the caller and idempotent: submitting the same
// id with the same fields returns the first result (Result.Existed), the same
// id with different fields fails with CodeIDConflict naming the field.
//
// The Ledger validates and computes in Go; a Store (package store) persists
// accounts, transfers and balances, with row locks taken in a fixed order so
// that concurrent writers never deadlock.
package ledger

import (
	"time"

	"paygate"
)

// AccountFlags constrain an account's balances.
type AccountFlags uint32

// Account flags. DebitsMustNotExceedCredits is "no overdraft" for a
// credit-normal account such as a customer's deposit; CreditsMustNotExceedDebits
// is its mirror for debit-normal accounts. Closed accounts refuse every new
// transfer except releasing holds (void and expiry).
const (
	DebitsMustNotExceedCredits AccountFlags = 1 << iota
	CreditsMustNotExceedDebits
	Closed
)

// Side is the normal balance side of an account: assets and expenses are
// debit-normal, liabilities, equity and income are credit-normal.
type Side string

// The two sides.
const (
	Debit  Side = "debit"
	Credit Side = "credit"
)

// MaxShards bounds how many balance rows a hot account may spread over.
const MaxShards = 64

// Balance holds an account's totals. Pending amounts are held by unresolved
// two-phase transfers; posted amounts are final.
type Balance struct {
	DebitsPending  int64 `json:"debits_pending"`
	DebitsPosted   int64 `json:"debits_posted"`
	CreditsPending int64 `json:"credits_pending"`
	CreditsPosted  int64 `json:"credits_posted"`
}

// Net returns the posted balance on the account's normal side: credits minus
// debits for credit-normal accounts, debits minus credits for debit-normal.
func (b Balance) Net(normal Side) int64 {
	if normal == Debit {
		return b.DebitsPosted - b.CreditsPosted
	}
	return b.CreditsPosted - b.DebitsPosted
}

// Available returns the posted balance less outgoing holds: what a
// credit-normal account may still spend.
func (b Balance) Available(normal Side) int64 {
	if normal == Debit {
		return b.DebitsPosted - b.CreditsPosted - b.CreditsPending
	}
	return b.CreditsPosted - b.DebitsPosted - b.DebitsPending
}

// Account is a ledger account. Currency, Code, Owner, Normal and Shards never
// change after creation; Flags gains Closed when the account is closed.
//
// Shards > 1 spreads a hot account (platform fee income, channel clearing)
// over that many balance rows, so that concurrent transfers touching it do
// not queue on one row lock. Its balance is the sum of its shards; a
// transfer that could break its limit locks every shard.
type Account struct {
	ID        string           `json:"id"`
	Currency  paygate.Currency `json:"currency"`
	Code      int              `json:"code"`  // account type, chosen by the caller (e.g. customer deposit, fee income)
	Owner     string           `json:"owner"` // owner reference, e.g. a merchant or customer id
	Normal    Side             `json:"normal_side"`
	Flags     AccountFlags     `json:"flags"`
	Shards    int              `json:"shards"`
	CreatedAt time.Time        `json:"created_at"`
	Balance
}

// TransferFlags select the kind of a transfer.
type TransferFlags uint32

// Transfer flags. At most one of Pending, PostPending and VoidPending is set;
// none means a single-phase transfer. Expired is set by the ledger only, on
// the void it records when a hold times out.
const (
	Pending TransferFlags = 1 << iota
	PostPending
	VoidPending
	Expired
)

// Kind names a transfer's kind as stored: "single", "pending", "post",
// "void" or "expire".
func (f TransferFlags) Kind() string {
	switch {
	case f&Expired != 0:
		return "expire"
	case f&Pending != 0:
		return "pending"
	case f&PostPending != 0:
		return "post"
	case f&VoidPending != 0:
		return "void"
	}
	return "single"
}

// HoldStatus is the state of a pending transfer.
type HoldStatus string

// Hold statuses. A hold leaves HoldPending exactly once.
const (
	HoldPending HoldStatus = "pending"
	HoldPosted  HoldStatus = "posted"
	HoldVoided  HoldStatus = "voided"
	HoldExpired HoldStatus = "expired"
)

// Transfer moves Amount from DebitAccountID to CreditAccountID.
//
// Caller-set fields: ID, the two accounts (optional for post/void, which
// take them from the hold), Amount, Currency (optional; checked against the
// accounts when set), PendingID (post/void), Timeout (pending only; zero
// means the hold never expires), Flags, Code and Ref.
//
// For PostPending, Amount 0 posts the full held amount and a smaller amount
// posts part and releases the rest. For VoidPending, Amount is 0 or the held
// amount.
//
// The ledger sets Seq, Currency, AccountingDate, CreatedAt, ExpiresAt,
// HoldStatus (pending transfers only) and the shards.
type Transfer struct {
	ID              string           `json:"id"`
	DebitAccountID  string           `json:"debit_account_id"`
	CreditAccountID string           `json:"credit_account_id"`
	Amount          int64            `json:"amount"`
	Currency        paygate.Currency `json:"currency"`
	PendingID       string           `json:"pending_id,omitempty"`
	Timeout         time.Duration    `json:"timeout,omitempty"`
	Flags           TransferFlags    `json:"flags"`
	Code            int              `json:"code"`
	Ref             string           `json:"ref,omitempty"`

	Seq            int64        `json:"seq"`
	AccountingDate paygate.Date `json:"accounting_date"`
	CreatedAt      time.Time    `json:"created_at"`
	ExpiresAt      time.Time    `json:"expires_at,omitzero"`
	HoldStatus     HoldStatus   `json:"hold_status,omitempty"`
	DebitShard     int          `json:"-"`
	CreditShard    int          `json:"-"`
}

// Result is the outcome of one submitted transfer: the stored transfer, and
// whether it already existed from an earlier identical submission.
type Result struct {
	Transfer
	Existed bool `json:"existed"`
}

// TrialBalanceLine is one account's posted totals up to a date.
type TrialBalanceLine struct {
	AccountID     string           `json:"account_id"`
	Currency      paygate.Currency `json:"currency"`
	Code          int              `json:"code"`
	Normal        Side             `json:"normal_side"`
	DebitsPosted  int64            `json:"debits_posted"`
	CreditsPosted int64            `json:"credits_posted"`
}

// TrialBalance lists every account's posted totals up to and including a
// business date, with per-currency totals. In a correct ledger each currency's
// debits equal its credits.
type TrialBalance struct {
	Date   paygate.Date                           `json:"date"`
	Lines  []TrialBalanceLine                     `json:"lines"`
	Totals map[paygate.Currency]TrialBalanceTotal `json:"totals"`
}

// TrialBalanceTotal sums one currency's lines.
type TrialBalanceTotal struct {
	Debits  int64 `json:"debits"`
	Credits int64 `json:"credits"`
}

// Balanced reports whether every currency's debits equal its credits.
func (tb TrialBalance) Balanced() bool {
	for _, t := range tb.Totals {
		if t.Debits != t.Credits {
			return false
		}
	}
	return true
}

// TransferPage is one page of an account's transfers, newest first.
// NextCursor is empty on the last page.
type TransferPage struct {
	Transfers  []Transfer `json:"transfers"`
	NextCursor string     `json:"next_cursor,omitempty"`
}
