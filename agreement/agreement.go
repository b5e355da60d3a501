// Package agreement is merchants' agreement payments (mandates, 协议支付,
// WeChat Pay's 委托代扣): a merchant asks for an agreement through the open
// API (Create: a plan, optional per-payment and per-day limits, an optional
// end date); the customer signs it on the hosted sign page with a card, the
// holder's details and a one-time code (StartSign, ConfirmSign); the
// merchant then charges the card without the customer present (Charge),
// within the agreement's limits and the customer's own, until the
// agreement is revoked by either side (Revoke, RevokeByCustomer) or ends
// (its end date passed; ExpireDue).
//
// Every command is one transaction with its outbox rows: a signature
// consumes its code, records the signer's card (by id, never its number)
// and queues AGREEMENT.SIGNED together; a revocation queues
// AGREEMENT.REVOKED; a charge's checks (status, end date, per-payment and
// per-day limits, the customer's limits) commit with its order and payment
// (payment.Service.CreateAndPay), so a refused charge leaves nothing and
// concurrent charges never overshoot the per-day limit (they queue on the
// agreement's row).
//
// States: PENDING (awaiting the customer's signature) → SIGNED → REVOKED
// or EXPIRED; PENDING → REVOKED (the merchant withdrew it) or EXPIRED (not
// signed within the sign window). REVOKED and EXPIRED are final.
package agreement

import (
	"time"

	"paygate"
	"paygate/payment"
)

// PrefixAgreement starts agreement ids ("agm_" + UUIDv7). A customer's
// quick-pay card binding is another thing (customer.Agreement, "agr_").
const PrefixAgreement = "agm_"

// Status is an agreement's life-cycle state.
type Status string

// Agreement states.
const (
	StatusPending Status = "PENDING" // awaiting the customer's signature at sign_url
	StatusSigned  Status = "SIGNED"  // the merchant may charge it
	StatusRevoked Status = "REVOKED" // revoked by the merchant or the customer; final
	StatusExpired Status = "EXPIRED" // not signed in time, or past its end date; final
)

// Valid reports whether s is a known status.
func (s Status) Valid() bool {
	return s == StatusPending || s == StatusSigned || s == StatusRevoked || s == StatusExpired
}

// Who revoked an agreement.
const (
	RevokedByMerchant = "MERCHANT"
	RevokedByCustomer = "CUSTOMER"
)

// Notification event types (notify.Event.EventType); the resource's
// original_type is OriginalType and its plaintext is the Agreement as the
// API shows it.
const (
	EventSigned  = "AGREEMENT.SIGNED"
	EventRevoked = "AGREEMENT.REVOKED"
	OriginalType = "agreement"
)

// Limits and defaults.
const (
	MinOutAgreementNo = 6
	MaxOutAgreementNo = 32
	MaxPlan           = 64  // characters
	MaxDescription    = 127 // characters
	MaxURL            = 512 // bytes, return_url (notify_url: notify.MaxURLLen)
	// DefaultSignExpire is how long a PENDING agreement may be signed.
	DefaultSignExpire = 24 * time.Hour
	// MaxTerm bounds end_date: at most ten years ahead.
	MaxTerm        = 10 * 366 * 24 * time.Hour
	DefaultPage    = 20
	MaxPage        = 100
	maxIDLen       = 64 // ids taken from URLs
	purposeSign    = "agreement.sign"
	defaultPayLane = "interbank"
)

// Agreement is an agreement, with JSON as the open API shows it (and as its
// notifications carry it). Fields tagged "-" are internal: the signer and
// the card are kept by id only, and the card shows masked.
type Agreement struct {
	ID             string           `json:"id"`
	MerchantID     string           `json:"mchid"`
	OutAgreementNo string           `json:"out_agreement_no"`
	Plan           string           `json:"plan"`
	Description    string           `json:"description,omitempty"`
	Currency       paygate.Currency `json:"currency"`
	// PerPaymentLimit and DailyLimit are in minor units; 0 means the
	// agreement sets none (the customer's own limits still apply).
	PerPaymentLimit int64 `json:"per_payment_limit,omitempty"`
	DailyLimit      int64 `json:"daily_limit,omitempty"`
	// EndDate is the last day (business calendar, Asia/Shanghai by
	// default) charges are taken; "" for none.
	EndDate   paygate.Date `json:"end_date,omitempty"`
	NotifyURL string       `json:"notify_url"`
	ReturnURL string       `json:"return_url,omitempty"`
	Status    Status       `json:"status"`
	// SignURL is the hosted page the customer signs at, while PENDING.
	SignURL        string    `json:"sign_url,omitempty"`
	SignExpireTime time.Time `json:"sign_expire_time"`
	// Card is the signed card, masked (628888******0013), and its Bank.
	Card        string    `json:"card,omitempty"`
	Bank        string    `json:"bank,omitempty"`
	SignedTime  time.Time `json:"signed_time,omitzero"`
	RevokedTime time.Time `json:"revoked_time,omitzero"`
	RevokedBy   string    `json:"revoked_by,omitempty" enum:"MERCHANT,CUSTOMER"`
	ExpiredTime time.Time `json:"expired_time,omitzero"`
	Sandbox     bool      `json:"sandbox"`
	CreateTime  time.Time `json:"create_time"`

	CustomerID  string    `json:"-"`
	CardID      string    `json:"-"`
	RequestHash string    `json:"-"`
	EndsAt      time.Time `json:"-"` // the instant after EndDate ends; zero for none
	UpdateTime  time.Time `json:"-"`
}

// Record is an agreement as stored.
type Record = Agreement

// effective is the agreement's status at now: a PENDING agreement past its
// sign window and a SIGNED one past its end are EXPIRED even before the
// expiry job records it.
func (a Agreement) effective(now time.Time) Status {
	switch {
	case a.Status == StatusPending && !now.Before(a.SignExpireTime):
		return StatusExpired
	case a.Status == StatusSigned && !a.EndsAt.IsZero() && !now.Before(a.EndsAt):
		return StatusExpired
	}
	return a.Status
}

// Request is the body of "create an agreement". An empty Currency
// means CNY.
type Request struct {
	OutAgreementNo  string           `json:"out_agreement_no"`
	Plan            string           `json:"plan"`
	Description     string           `json:"description,omitempty"`
	Currency        paygate.Currency `json:"currency,omitempty"`
	PerPaymentLimit int64            `json:"per_payment_limit,omitempty"`
	DailyLimit      int64            `json:"daily_limit,omitempty"`
	EndDate         string           `json:"end_date,omitempty" doc:"YYYY-MM-DD, the last day charges are taken"`
	NotifyURL       string           `json:"notify_url"`
	ReturnURL       string           `json:"return_url,omitempty"`
}

// ListRequest filters and pages List: Status "" means any; Cursor is "" or
// a Listing.NextCursor; Limit 0 means DefaultPage.
type ListRequest struct {
	Status Status
	Cursor string
	Limit  int
}

// Listing is one page of agreements, newest first.
type Listing struct {
	Agreements []Agreement `json:"data"`
	NextCursor string      `json:"next_cursor,omitempty"`
}

// ChargeRequest is the body of "charge an agreement". An empty
// Amount.Currency means the agreement's; an empty NotifyURL the
// agreement's.
type ChargeRequest struct {
	OutTradeNo  string                `json:"out_trade_no"`
	Description string                `json:"description"`
	Amount      payment.AmountRequest `json:"amount"`
	NotifyURL   string                `json:"notify_url,omitempty"`
	Attach      string                `json:"attach,omitempty"`
}

// ChargeStatus is how a charge stands after the request.
type ChargeStatus string

// Charge outcomes.
const (
	ChargeSuccess    ChargeStatus = "SUCCESS"    // paid (own-bank card: at once)
	ChargeProcessing ChargeStatus = "PROCESSING" // at the card's bank; TRANSACTION.SUCCESS or the order's query tells
	ChargeFailed     ChargeStatus = "FAILED"     // the card's bank declined
)

// Charge is the answer to a charge: the order it created (and paid, or is
// paying) and where its payment stands.
type Charge struct {
	AgreementID string        `json:"agreement_id"`
	Status      ChargeStatus  `json:"status" enum:"SUCCESS,PROCESSING,FAILED"`
	FailCode    string        `json:"fail_code,omitempty"`
	Order       payment.Order `json:"order"`
}

// SignPage is what the hosted sign page shows of an agreement: never the
// merchant's URLs but return_url, never the out_agreement_no.
type SignPage struct {
	ID              string
	MerchantName    string
	Plan            string
	Description     string
	Currency        paygate.Currency
	PerPaymentLimit int64
	DailyLimit      int64
	EndDate         paygate.Date
	Status          Status // effective now
	SignExpireTime  time.Time
	ReturnURL       string
	Card            string // masked, once signed
	Sandbox         bool
}

// SignCard is what the signer types on the sign page.
type SignCard struct {
	Number, Name, IDNumber, Phone string
}

// Challenge is what the sign page may show after the code was sent: the
// card and phone masked only.
type Challenge struct {
	AgreementID string
	CardID      string
	Card        string
	Bank        string
	PhoneMasked string
	ExpiresAt   time.Time
}

// CustomerAgreement is one of a customer's agreements as the portal lists
// it.
type CustomerAgreement struct {
	Agreement
	MerchantName string
	// Status is the effective status (EXPIRED once past the end date).
	Status Status
}
