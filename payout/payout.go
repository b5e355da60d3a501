// Package payout is merchants' batch payments (payouts): a merchant pays
// many recipients at once — customers' balance accounts (named by their
// registered mobile phone), the institution's own cards, and other banks'
// cards through the interbank channel — from its available (settled)
// balance, as WeChat Pay's 商家转账 batches and Stripe's payouts do.
//
// A batch is accepted in one database transaction. Each line (an item) is
// checked alone: a bad line (unknown recipient, a card number failing its
// check digit, a zero amount, an out_detail_no already used...) is
// REJECTED with a reason and holds nothing, while the good lines go on.
// The good lines' total is then held on the merchant's available balance —
// one two-phase ledger transfer (a hold) per item, all in one journal — so
// the batch is refused as a whole with CodeInsufficientFunds when the
// balance is short, and nothing is recorded. From then on each item posts
// or releases its own hold exactly once:
//
//	PENDING ──► SUCCESS                 customer account or own-bank card: posted and credited at once (Process)
//	   └──────► PROCESSING ──► SUCCESS  another bank's card: posted when the interbank channel pays it
//	   │                   └─► FAILED   the channel refused it: the hold is voided (the money is the merchant's again)
//	   └──────► FAILED                  the recipient can no longer receive: the hold is voided
//
// REJECTED, SUCCESS and FAILED are final. When every accepted item is
// final the batch is FINISHED with its counts and sums, and a
// PAYOUT_BATCH.FINISHED notification is queued in the same transaction.
//
// Idempotency: a batch is named by the merchant's out_batch_no (the same
// number with the same body returns the same batch; with another body it
// is refused with CodeOutBatchNoUsed) and every item by its out_detail_no,
// unique per merchant across batches. Ledger ids are derived from item ids,
// so a hold is posted or voided once however often the worker runs, crashes
// or is run by several processes at once. Other banks' card numbers are
// sealed at rest and shown only masked; request fingerprints are HMACs.
package payout

import (
	"context"
	"time"

	"paygate"
	"paygate/customer"
	"paygate/notify"
	"paygate/sealing"
)

// Id prefixes.
const (
	PrefixBatch  = "pob_"
	PrefixDetail = "pod_"
)

// Limits.
const (
	MaxItems       = 1000        // lines per batch
	MaxOutNoLen    = 64          // out_batch_no and out_detail_no: 1 to 64 of A-Z a-z 0-9 _ -
	MaxRemarkLen   = 64          // characters of a batch's or an item's remark
	MaxNameLen     = 64          // characters of a recipient's name
	DefaultMaxItem = 100_000_000 // minor units one item may pay (Config.MaxItemAmount)
	DefaultPage    = 100         // items per page of a batch
	MaxPage        = 1000
)

// Ledger codes of payouts' postings.
const (
	// LedgerCodeHold is the code of an item's hold on the merchant's
	// available balance, and of its post or void.
	LedgerCodeHold = 40
	// LedgerCodePay is the code of the posting that credits a customer's
	// account or own-bank card from the payout clearing account.
	LedgerCodePay = 41
	// CodeClearing is the ledger account code of the payout clearing
	// account (money on its way from merchants to recipients on us).
	CodeClearing = 110
)

// HoldID is the id of an item's hold. An item's ledger transfers — its
// hold, the hold's post or void, the credit to a recipient on us — have
// ids derived from the item's (so each happens once) and the item's id as
// their Ref.
func HoldID(itemID string) string { return "pout_hold_" + itemID }

// PostID is the id of the post of an item's hold.
func PostID(itemID string) string { return "pout_post_" + itemID }

// VoidID is the id of the void of an item's hold.
func VoidID(itemID string) string { return "pout_void_" + itemID }

// PayID is the id of the credit to a recipient on us.
func PayID(itemID string) string { return "pout_pay_" + itemID }

// Notification event type and original type of a finished batch.
const (
	EventBatchFinished = "PAYOUT_BATCH.FINISHED"
	BatchOriginalType  = "payout_batch"
)

// BatchStatus is where a batch stands: PROCESSING until every accepted item
// is final, then FINISHED.
type BatchStatus string

// Batch statuses.
const (
	BatchProcessing BatchStatus = "PROCESSING"
	BatchFinished   BatchStatus = "FINISHED"
)

// Status is where an item stands (see the package documentation).
type Status string

// Item statuses.
const (
	StatusRejected   Status = "REJECTED"   // refused at acceptance; nothing held; final
	StatusPending    Status = "PENDING"    // held; waiting for the worker
	StatusProcessing Status = "PROCESSING" // held; at the interbank channel
	StatusSuccess    Status = "SUCCESS"    // paid; final
	StatusFailed     Status = "FAILED"     // released back to the merchant; final
)

// Final reports whether s is REJECTED, SUCCESS or FAILED.
func (s Status) Final() bool { return s == StatusRejected || s == StatusSuccess || s == StatusFailed }

// RecipientType is how the merchant names a recipient.
type RecipientType string

// Recipient types.
const (
	RecipientAccount RecipientType = "ACCOUNT" // a customer's balance account, by registered mobile phone
	RecipientCard    RecipientType = "CARD"    // a card, by number and holder name
)

// Kind is where an accepted item's money goes.
type Kind string

// Kinds.
const (
	KindAccount   Kind = "ACCOUNT"         // a customer's balance account
	KindOwnCard   Kind = "OWN_CARD"        // one of the institution's own cards
	KindOtherBank Kind = "OTHER_BANK_CARD" // another bank's card, through the interbank channel
)

// Reasons a line is REJECTED or an item FAILED (Item.FailReason). They are
// part of the API: merchants branch on them.
const (
	ReasonAmountNotPositive = "AMOUNT_NOT_POSITIVE"    // the amount is zero or negative
	ReasonAmountTooLarge    = "AMOUNT_TOO_LARGE"       // above the per-item maximum
	ReasonInvalidAccount    = "INVALID_ACCOUNT"        // not a mainland mobile phone
	ReasonInvalidCardNumber = "INVALID_CARD_NUMBER"    // not 13-19 digits, or the check digit fails
	ReasonNameRequired      = "NAME_REQUIRED"          // a card recipient needs the holder's name
	ReasonInvalidName       = "INVALID_NAME"           // too long or not letters
	ReasonNameMismatch      = "NAME_MISMATCH"          // not the verified name of the recipient
	ReasonRecipientNotFound = "RECIPIENT_NOT_FOUND"    // no customer with the phone; no own-bank card with the number
	ReasonRecipientInactive = "RECIPIENT_UNAVAILABLE"  // the customer or the card cannot receive (frozen, closed)
	ReasonCurrencyMismatch  = "CURRENCY_MISMATCH"      // the card is not in the batch's currency
	ReasonOtherBankDisabled = "OTHER_BANK_UNAVAILABLE" // payouts to other banks' cards are not available
	ReasonDetailNoUsed      = "OUT_DETAIL_NO_USED"     // an earlier batch used this out_detail_no
	ReasonDetailNoRepeated  = "OUT_DETAIL_NO_REPEATED" // an earlier line of this batch used it
	ReasonChannelDeclined   = "DECLINED"               // the interbank channel refused the payout at once
)

// CreateBatchRequest is the body of "create a payout batch".
type CreateBatchRequest struct {
	// OutBatchNo is the merchant's number of the batch, unique per
	// merchant: 1 to 64 of A-Z a-z 0-9 _ -.
	OutBatchNo string `json:"out_batch_no"`
	// Currency of every item; "" means CNY.
	Currency paygate.Currency `json:"currency,omitempty"`
	// Remark is an optional note (at most 64 characters).
	Remark string `json:"remark,omitempty"`
	// NotifyURL receives PAYOUT_BATCH.FINISHED; "" sends none.
	NotifyURL string `json:"notify_url,omitempty"`
	// Items are the lines: 1 to MaxItems.
	Items []ItemRequest `json:"items" maxItems:"1000"`
}

// ItemRequest is one line of a batch.
type ItemRequest struct {
	// OutDetailNo is the merchant's number of the item, unique per
	// merchant across batches: 1 to 64 of A-Z a-z 0-9 _ -.
	OutDetailNo string `json:"out_detail_no"`
	// Amount in minor units of the batch's currency.
	Amount    int64            `json:"amount"`
	Recipient RecipientRequest `json:"recipient"`
	// Remark is an optional note the recipient sees (at most 64 characters).
	Remark string `json:"remark,omitempty"`
}

// RecipientRequest names a recipient: Type ACCOUNT with Account (the
// mobile phone a customer registered with; Name optional, checked when
// given), or Type CARD with CardNumber and the holder's Name.
type RecipientRequest struct {
	Type       RecipientType `json:"type" enum:"ACCOUNT,CARD"`
	Account    string        `json:"account,omitempty"`
	CardNumber string        `json:"card_number,omitempty"`
	Name       string        `json:"name,omitempty"`
}

// Recipient is a recipient as the API shows it: masked only.
type Recipient struct {
	Type RecipientType `json:"type" enum:"ACCOUNT,CARD"`
	// Kind is where the money goes; "" for a line rejected before its
	// recipient was known.
	Kind Kind `json:"kind,omitempty" enum:"ACCOUNT,OWN_CARD,OTHER_BANK_CARD"`
	// Masked is the phone or card number masked (138****0002,
	// 628888******0054); Name the name masked (*三), when known.
	Masked string `json:"masked"`
	Name   string `json:"name,omitempty"`
}

// Item is one line of a batch, with JSON as the open API shows it.
type Item struct {
	ID          string           `json:"id"`
	BatchID     string           `json:"batch_id"`
	OutBatchNo  string           `json:"out_batch_no"`
	Seq         int              `json:"seq"` // position in the batch, from 1
	OutDetailNo string           `json:"out_detail_no"`
	Amount      int64            `json:"amount"`
	Currency    paygate.Currency `json:"currency"`
	Recipient   Recipient        `json:"recipient"`
	Remark      string           `json:"remark,omitempty"`
	Status      Status           `json:"status" enum:"REJECTED,PENDING,PROCESSING,SUCCESS,FAILED"`
	// FailReason says why a line is REJECTED or an item FAILED.
	FailReason string    `json:"fail_reason,omitempty"`
	Channel    string    `json:"channel,omitempty"`
	ChannelNo  string    `json:"channel_no,omitempty"`
	CreateTime time.Time `json:"create_time"`
	UpdateTime time.Time `json:"update_time"`
	FinishTime time.Time `json:"finish_time,omitzero"`

	MerchantID          string         `json:"-"`
	RecipientCustomerID string         `json:"-"` // the customer credited (ACCOUNT, OWN_CARD)
	RecipientCardID     string         `json:"-"` // the own-bank card credited
	Card                sealing.Sealed `json:"-"` // another bank's card number, sealed
	Scenario            string         `json:"-"` // the simulated channel's outcome
	QueryCount          int            `json:"-"`
	NextQueryAt         time.Time      `json:"-"` // when Reconcile asks the channel next; zero unless PROCESSING
}

// Batch is a payout batch with JSON as the open API shows it (and as
// PAYOUT_BATCH.FINISHED carries it, without items).
type Batch struct {
	ID         string           `json:"id"`
	MerchantID string           `json:"mchid"`
	OutBatchNo string           `json:"out_batch_no"`
	Currency   paygate.Currency `json:"currency"`
	Remark     string           `json:"remark,omitempty"`
	Status     BatchStatus      `json:"status" enum:"PROCESSING,FINISHED"`
	// TotalCount is the number of lines; RejectedCount of them were
	// refused at acceptance; AcceptedCount (AcceptedAmount) were held.
	TotalCount     int   `json:"total_count"`
	RejectedCount  int   `json:"rejected_count"`
	AcceptedCount  int   `json:"accepted_count"`
	AcceptedAmount int64 `json:"accepted_amount"`
	// Success and Fail count and sum the accepted items that are final.
	SuccessCount  int       `json:"success_count"`
	SuccessAmount int64     `json:"success_amount"`
	FailCount     int       `json:"fail_count"`
	FailAmount    int64     `json:"fail_amount"`
	CreateTime    time.Time `json:"create_time"`
	UpdateTime    time.Time `json:"update_time"`
	FinishTime    time.Time `json:"finish_time,omitzero"`

	NotifyURL   string `json:"-"`
	Sandbox     bool   `json:"-"`
	RequestHash string `json:"-"`
}

// Open is the number of accepted items not yet final.
func (b Batch) Open() int { return b.AcceptedCount - b.SuccessCount - b.FailCount }

// BatchPage is a batch with one page of its items, in batch order.
// NextCursor is empty on the last page.
type BatchPage struct {
	Batch
	Items      []Item `json:"items"`
	NextCursor string `json:"next_cursor,omitempty"`
}

// Tx is one transaction of the payout store; store.Tx implements it. It is
// also the ledger's, the customer store's and the outbox's transaction, so
// an item's state change, its postings and the batch's notification commit
// together. Lookups of a missing row fail with CodeNotFound.
type Tx interface {
	customer.Tx
	notify.Tx

	// InsertBatch inserts b unless the merchant's out_batch_no is taken,
	// and reports whether it inserted.
	InsertBatch(ctx context.Context, b Batch) (bool, error)
	// UsedDetailNos returns those of nos the merchant's accepted (not
	// REJECTED) items already carry.
	UsedDetailNos(ctx context.Context, merchantID string, nos []string) ([]string, error)
	// InsertItems inserts items. An out_detail_no an accepted item of a
	// concurrent transaction took fails with paygate.ErrRetry, so that the
	// transaction runs again and sees it.
	InsertItems(ctx context.Context, items []Item) error
	// LockBatch reads the batch and locks its row.
	LockBatch(ctx context.Context, id string) (Batch, error)
	// UpdateBatch writes b's status, counters and times.
	UpdateBatch(ctx context.Context, b Batch) error
	// LockItemsToProcess locks up to limit PENDING items, oldest first,
	// skipping rows another transaction holds.
	LockItemsToProcess(ctx context.Context, limit int) ([]Item, error)
	// LockItem reads the item and locks its row.
	LockItem(ctx context.Context, id string) (Item, error)
	// UpdateItems writes the items' status, fail reason, channel number,
	// query count, next query time and update and finish times.
	UpdateItems(ctx context.Context, items []Item) error
	// LockItemsToQuery locks up to limit PROCESSING items whose
	// NextQueryAt is at or before now, oldest due first, skipping rows
	// another transaction holds.
	LockItemsToQuery(ctx context.Context, now time.Time, limit int) ([]Item, error)
}

// Store is the payout package's persistence; store.DB implements it
// (db.Payouts()).
type Store interface {
	// InTx runs fn in one transaction, committing when it returns nil and
	// retrying it on transient conflicts, so fn must have no other effects.
	InTx(ctx context.Context, fn func(Tx) error) error
	// Batch returns the merchant's batch with the id.
	Batch(ctx context.Context, merchantID, id string) (Batch, error)
	// BatchByOutBatchNo returns the merchant's batch with the number.
	BatchByOutBatchNo(ctx context.Context, merchantID, outBatchNo string) (Batch, error)
	// BatchItems returns up to limit items of the batch with Seq > after,
	// in Seq order.
	BatchItems(ctx context.Context, batchID string, after, limit int) ([]Item, error)
	// ItemByOutDetailNo returns the merchant's accepted item with the
	// number.
	ItemByOutDetailNo(ctx context.Context, merchantID, outDetailNo string) (Item, error)
	// SetItemChannelNo records the channel's number of a PROCESSING item
	// that has none yet, and reports whether it did.
	SetItemChannelNo(ctx context.Context, id, channelNo string, now time.Time) (bool, error)
}
