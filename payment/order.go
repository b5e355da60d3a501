// Package payment is paygate's payments use case: the unified order a
// merchant creates through the open API, the payment attempts that pay it
// through a channel, and the jobs that keep both honest (closing expired
// orders, querying payments whose outcome is unknown).
//
// Every state change commits in one database transaction with its ledger
// journal (ledger.Ledger.Apply) and its merchant notification (the outbox,
// notify.Enqueue). Channel calls happen outside transactions and are safe to
// repeat. The order state machine is documented in docs/ORDERS.md and
// listed by Transitions; a test keeps the two in agreement.
package payment

import (
	"encoding/json"
	"time"

	"paygate"
	"paygate/channel"
)

// Status is an order's state. Statuses are upper-case words, as in the
// WeChat Pay APIv3 ("trade_state").
type Status string

// Order statuses.
const (
	// StatusNotPay: created, not paid yet; a payment may be attempted.
	StatusNotPay Status = "NOTPAY"
	// StatusPayError: the last payment attempt failed; another may be
	// attempted until the order expires.
	StatusPayError Status = "PAYERROR"
	// StatusSuccess: paid exactly once; may be refunded (then REFUND).
	StatusSuccess Status = "SUCCESS"
	// StatusClosed: closed by the merchant or by expiry; final.
	StatusClosed Status = "CLOSED"
	// StatusRefund: paid, and at least one refund was requested (whatever
	// became of it); more refunds may follow while the amount refunded or
	// in progress is below the amount paid. Like WeChat Pay's "REFUND".
	StatusRefund Status = "REFUND"
	// StatusAuthorized: an order created with capture_method MANUAL was
	// paid and its money is held (a ledger hold) until the merchant
	// captures all or part of it (then SUCCESS), voids it, or
	// capture_before passes (then CLOSED). See Service.Capture.
	StatusAuthorized Status = "AUTHORIZED"
)

// Open reports whether an order in status s may still be paid or closed:
// NOTPAY or PAYERROR.
func (s Status) Open() bool { return s == StatusNotPay || s == StatusPayError }

// Valid reports whether s is one of the order statuses.
func (s Status) Valid() bool {
	switch s {
	case StatusNotPay, StatusPayError, StatusSuccess, StatusClosed, StatusRefund, StatusAuthorized:
		return true
	}
	return false
}

// Close reasons recorded on a closed order.
const (
	CloseMerchant = "MERCHANT" // the merchant closed it
	CloseExpired  = "EXPIRED"  // time_expire passed
	// CloseVoided: the merchant voided the order's authorization; the
	// held money went back to the payer.
	CloseVoided = "VOIDED"
	// CloseAuthorizationExpired: capture_before passed without a capture;
	// the held money went back to the payer (ExpireAuthorizations).
	CloseAuthorizationExpired = "AUTHORIZATION_EXPIRED"
)

// CaptureMethod says when a paid order's money goes to the merchant, as
// Stripe's capture_method.
type CaptureMethod string

// Capture methods.
const (
	// CaptureAutomatic: the payment is the merchant's at once (SUCCESS).
	// The default.
	CaptureAutomatic CaptureMethod = "AUTOMATIC"
	// CaptureManual: the payment only authorizes: the money is held
	// (AUTHORIZED) until the merchant captures or voids it, or the
	// authorization expires.
	CaptureManual CaptureMethod = "MANUAL"
)

// Review says why a successful payment could not be booked to its order and
// awaits review (refund or manual booking). Its money sits in the ledger's
// suspense account.
type Review string

// Review reasons.
const (
	ReviewNone        Review = ""
	ReviewOrderClosed Review = "ORDER_CLOSED"       // paid after the order closed or expired
	ReviewAlreadyPaid Review = "ORDER_ALREADY_PAID" // a second payment of a paid order
)

// Notification event types written to the outbox (notify.Event.EventType).
// OriginalType is always "transaction".
const (
	EventSuccess          = "TRANSACTION.SUCCESS"           // the order was paid
	EventClosed           = "TRANSACTION.CLOSED"            // the order was closed (merchant or expiry)
	EventLatePayment      = "TRANSACTION.LATE_PAYMENT"      // money arrived for a closed order; held for review
	EventDuplicatePayment = "TRANSACTION.DUPLICATE_PAYMENT" // money arrived twice for one order; the extra held for review
	EventAuthorized       = "TRANSACTION.AUTHORIZED"        // a manual-capture order was paid; its money is held for capture
	OriginalType          = "transaction"
)

// Ledger transfer codes of the journals this package writes.
const (
	TransferPayment   = 1 // channel clearing → merchant pending, the order's total
	TransferFee       = 2 // merchant pending → platform fee income
	TransferSuspense  = 3 // channel clearing → suspense, a payment held for review
	TransferRefund    = 4 // merchant pending or settled → the payment's source (on us), or its hold → channel clearing
	TransferRefundFee = 5 // platform fee → merchant pending: the fee share of a refund before settlement (and its reversal)
	TransferSettle    = 6 // merchant pending → merchant settled: an order's net proceeds at settlement
)

// PrefixAttempt starts payment attempt ids ("pay_" + UUIDv7). An attempt id
// is the transaction_id merchants see on a paid order.
const PrefixAttempt = "pay_"

// Amount is an order's amount as the API shows it: integer minor units.
// PayerTotal is what the payer paid, set once the order is paid (for a
// manual-capture order: once captured, the amount captured). Authorized is
// what a manual-capture order's authorization held, Captured what the
// merchant captured of it (the rest went back to the payer).
type Amount struct {
	Total      int64            `json:"total"`
	Currency   paygate.Currency `json:"currency"`
	PayerTotal int64            `json:"payer_total,omitempty"`
	Authorized int64            `json:"authorized,omitempty"`
	Captured   int64            `json:"captured,omitempty"`
}

// Order is the unified order, with JSON as the open API shows it (and as
// notifications carry it). Fields tagged "-" are internal.
type Order struct {
	ID             string            `json:"id"`
	MerchantID     string            `json:"mchid"`
	OutTradeNo     string            `json:"out_trade_no"`
	Description    string            `json:"description"`
	Amount         Amount            `json:"amount"`
	Status         Status            `json:"status"`
	NotifyURL      string            `json:"notify_url"`
	ReturnURL      string            `json:"return_url,omitempty"`
	Attach         string            `json:"attach,omitempty"`
	Metadata       map[string]string `json:"metadata,omitempty"`
	PaymentMethods []string          `json:"payment_methods,omitempty"`
	TimeExpire     time.Time         `json:"time_expire"`
	CreateTime     time.Time         `json:"create_time"`
	SuccessTime    time.Time         `json:"success_time,omitzero"`
	CloseTime      time.Time         `json:"close_time,omitzero"`
	CloseReason    string            `json:"close_reason,omitempty"`
	TransactionID  string            `json:"transaction_id,omitempty"` // the attempt that paid it
	// CaptureMethod is AUTOMATIC or MANUAL (pre-authorization).
	CaptureMethod CaptureMethod `json:"capture_method" enum:"AUTOMATIC,MANUAL"`
	// AuthorizeTime is when a manual-capture order was paid (authorized);
	// CaptureBefore is when its authorization expires: a capture must
	// come before it.
	AuthorizeTime  time.Time `json:"authorize_time,omitzero"`
	CaptureBefore  time.Time `json:"capture_before,omitzero"`
	Channel        string    `json:"channel,omitempty"`
	ChannelTradeNo string    `json:"channel_trade_no,omitempty"`
	Sandbox        bool      `json:"sandbox"`
	// CheckoutURL is the hosted checkout page; CodeURL is the payload of a
	// QR code that opens it. Both are set while the order is open and
	// Config.CheckoutBaseURL is configured.
	CheckoutURL string `json:"checkout_url,omitempty"`
	CodeURL     string `json:"code_url,omitempty"`

	Fee         int64     `json:"-"` // platform fee booked when paid
	RequestHash string    `json:"-"` // fingerprint of the create request, for idempotency
	UpdateTime  time.Time `json:"-"`
	// SettleTime is when settlement moved the order's net proceeds from
	// the merchant's pending account to its settled balance (MarkSettled);
	// zero while unsettled. Refunds of a settled order are paid from the
	// settled balance.
	SettleTime time.Time `json:"-"`
}

// Attempt is one try at paying an order through a channel. Its Status is
// the channel's: PROCESSING until the channel says SUCCESS or FAILED. A
// successful attempt whose order could not take it carries a Review reason.
type Attempt struct {
	ID             string           `json:"id"`
	OrderID        string           `json:"order_id"`
	MerchantID     string           `json:"mchid"`
	Channel        string           `json:"channel"`
	ChannelTradeNo string           `json:"channel_trade_no,omitempty"`
	Amount         int64            `json:"amount"`
	Currency       paygate.Currency `json:"currency"`
	Status         channel.Status   `json:"status"`
	FailCode       string           `json:"fail_code,omitempty"`
	Review         Review           `json:"review,omitempty"`
	PaidAt         time.Time        `json:"paid_at,omitzero"`
	CreatedAt      time.Time        `json:"created_at"`
	UpdatedAt      time.Time        `json:"updated_at"`
	// QueryCount and NextQueryAt schedule ReconcileUnknown; NextQueryAt is
	// zero once the attempt is final.
	QueryCount  int       `json:"-"`
	NextQueryAt time.Time `json:"-"`
	// Payer is who paid at the hosted checkout, and how (zero for payments
	// through the open API's sandbox endpoint).
	Payer Payer `json:"payer,omitzero"`
	// LimitDay is the business day whose limit usage the attempt reserved
	// ("" when it reserved none); a FAILED attempt gives it back.
	LimitDay paygate.Date `json:"-"`
	// RedirectURL is where the payer goes to authorise the payment at the
	// channel (online banking), when the channel said so; not stored.
	RedirectURL string `json:"-"`
}

// CreateRequest is the body of "create an order". Amount.PayerTotal is
// ignored. A zero TimeExpire means Config.DefaultExpire from now.
type CreateRequest struct {
	OutTradeNo     string            `json:"out_trade_no"`
	Description    string            `json:"description"`
	Amount         AmountRequest     `json:"amount"`
	NotifyURL      string            `json:"notify_url"`
	ReturnURL      string            `json:"return_url,omitempty"`
	TimeExpire     time.Time         `json:"time_expire,omitzero"`
	Attach         string            `json:"attach,omitempty"`
	Metadata       map[string]string `json:"metadata,omitempty"`
	PaymentMethods []string          `json:"payment_methods,omitempty"`
	// CaptureMethod is AUTOMATIC (the default when empty) or MANUAL: the
	// payment only authorizes, and the merchant captures it later
	// (Service.Capture).
	CaptureMethod CaptureMethod `json:"capture_method,omitempty" enum:"AUTOMATIC,MANUAL"`
}

// AmountRequest is the amount of a CreateRequest. An empty Currency means
// CNY, as in the WeChat Pay API.
type AmountRequest struct {
	Total    int64            `json:"total"`
	Currency paygate.Currency `json:"currency,omitempty"`
}

// ListRequest filters and pages List. Status "" means any; CreatedFrom and
// CreatedTo bound create_time as [from, to) when non-zero; Cursor is "" or a
// Page.NextCursor; Limit 0 means DefaultPageSize.
type ListRequest struct {
	Status      Status
	CreatedFrom time.Time
	CreatedTo   time.Time
	Cursor      string
	Limit       int
}

// Page is one page of orders, newest first. NextCursor is empty on the last page.
type Page struct {
	Orders     []Order `json:"data"`
	NextCursor string  `json:"next_cursor,omitempty"`
}

// ListQuery is what List asks the store: the merchant's orders with id <
// BeforeID (all when empty), newest (highest id) first.
type ListQuery struct {
	MerchantID  string
	Status      Status
	CreatedFrom time.Time
	CreatedTo   time.Time
	BeforeID    string
	Limit       int
}

// payload is the JSON resource of a notification: the order as the API
// shows it, plus the payment held for review on late and duplicate payments.
func payload(o Order, held *Attempt) ([]byte, error) {
	if held == nil {
		return json.Marshal(o)
	}
	return json.Marshal(struct {
		Order
		Payment *Attempt `json:"review_payment"`
	}{o, held})
}
