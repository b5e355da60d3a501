// Package channel defines how paygate talks to the external systems money
// moves through: other banks, card switches, WeChat Pay, Alipay, and the
// simulated channel of the sandbox (channel/sim). Each channel is one
// subpackage implementing Channel.
//
// A payment goes to a channel in two steps, like every real channel does:
//
//  1. Pay asks the channel to take the payment and answers synchronously
//     whether the channel accepted it (Accepted), refused it (an error
//     matching ErrDeclined), or — any other error, a timeout above all —
//     nobody knows. An unknown outcome is never a failure: the payment stays
//     PROCESSING and is queried until the channel knows.
//  2. The result arrives later as an authenticated callback, which the
//     HTTP layer verifies with CallbackVerifier and hands to
//     payment.Service.Confirm; or it is learnt by Query.
//
// Refunds go the same way through Refunder: a synchronous accept, an
// asynchronous result learnt by QueryRefund.
//
// Manual-capture payments go through channels that implement Authorizer:
// Pay with AuthorizeOnly only holds the payer's money, and Capture or Void
// later takes all or part of it and gives the rest back.
//
// The package is pure: no I/O of its own.
package channel

import (
	"context"
	"errors"
	"net/http"
	"time"

	"paygate"
)

// Status is what a channel says about one payment.
type Status string

// Channel payment statuses. Processing is the only non-final one: the
// channel accepted the payment and does not know (or has not said) how it
// ended. Success and Failed are final and never change.
const (
	StatusProcessing Status = "PROCESSING"
	StatusSuccess    Status = "SUCCESS"
	StatusFailed     Status = "FAILED"
)

// Final reports whether s is Success or Failed.
func (s Status) Final() bool { return s == StatusSuccess || s == StatusFailed }

// ErrDeclined marks a definite refusal by the channel before it accepted a
// payment (bad card, limits, closed account): the payment did not and will
// not happen. Channels wrap it; callers test with errors.Is. Any other error
// from Pay means the outcome is unknown.
var ErrDeclined = errors.New("channel: payment declined")

// ErrUnknownPayment is returned by Query when the channel has no record of
// the payment. It is not proof of failure (the channel may not have
// recorded it yet), so callers keep querying.
var ErrUnknownPayment = errors.New("channel: no such payment at the channel")

// PayRequest asks a channel to take one payment attempt. AttemptID is
// paygate's number for the attempt and is what the channel knows the
// payment by (its "merchant order number"); it is unique, so a channel that
// sees the same AttemptID twice must not take the money twice.
type PayRequest struct {
	AttemptID   string
	OrderID     string
	MerchantID  string
	Amount      int64 // minor units, positive
	Currency    paygate.Currency
	Description string
	// ExpiresAt is when the order stops accepting payments; channels that
	// support it refuse payments after it.
	ExpiresAt time.Time
	// ReturnURL is where a channel that takes the payer to its own pages
	// (RedirectURL) sends the payer back afterwards.
	ReturnURL string
	// Scenario is for simulated channels only: the outcome the sandbox
	// merchant asked for (channel/sim's outcomes). Real channels ignore it.
	Scenario string
	// AuthorizeOnly asks the channel to authorize the payment without
	// taking it (a card pre-authorization): the payer's money stays held
	// at the channel until paygate captures or voids it through
	// Authorizer. paygate sets it only for channels that implement
	// Authorizer; a SUCCESS result then means "authorized".
	AuthorizeOnly bool
}

// Accepted is a channel's synchronous acceptance of a payment. The result
// comes later (callback or Query).
type Accepted struct {
	// ChannelTradeNo is the channel's own number for the payment.
	ChannelTradeNo string
	AcceptedAt     time.Time
	// RedirectURL, when set, is where the payer must go to authorise the
	// payment at the channel (an online-banking login); the result still
	// arrives by callback or Query.
	RedirectURL string
}

// QueryRequest names a payment to look up: by the channel's number when it
// is known, else by paygate's attempt id.
type QueryRequest struct {
	ChannelTradeNo string
	AttemptID      string
	OrderID        string
}

// Result is what a channel reports about a payment, through a verified
// callback or a Query. A Result with a final Status is a fact the channel
// will not take back; payment.Service.Confirm books it exactly once.
type Result struct {
	Channel        string           `json:"channel"`
	ChannelTradeNo string           `json:"channel_trade_no"`
	AttemptID      string           `json:"attempt_id"`
	OrderID        string           `json:"order_id"`
	Status         Status           `json:"status"`
	Amount         int64            `json:"amount"`
	Currency       paygate.Currency `json:"currency"`
	// PaidAt is when the channel took the money (Success only).
	PaidAt time.Time `json:"paid_at,omitzero"`
	// FailCode is the channel's reason for a failure, safe to show.
	FailCode string `json:"fail_code,omitempty"`
}

// Channel is one external payment channel. Implementations are safe for
// concurrent use. Pay and Query may be slow and are never called inside a
// database transaction.
type Channel interface {
	// Name is the channel's stable name ("sim", "wechatpay", ...): it names
	// its clearing account in the ledger and appears in orders.
	Name() string
	// Pay submits a payment. It returns Accepted, or an error: one matching
	// ErrDeclined is a definite refusal; any other (timeouts above all)
	// leaves the outcome unknown, and the payment must be queried.
	Pay(ctx context.Context, req PayRequest) (Accepted, error)
	// Query asks the channel how a payment stands. It returns a Result
	// whose Status is Processing while the channel does not know, or an
	// error (ErrUnknownPayment when the channel has no record).
	Query(ctx context.Context, q QueryRequest) (Result, error)
}

// CallbackVerifier is implemented by channels that send results as
// callbacks. The HTTP callback endpoint passes the request's headers and
// exact body; VerifyCallback authenticates them and decodes the Result.
// Errors: CodeUnauthenticated when the callback is not authentic (forged,
// tampered, stale); CodeInvalidArgument when an authentic body is
// malformed. A rejected callback must change nothing.
type CallbackVerifier interface {
	VerifyCallback(h http.Header, body []byte) (Result, error)
}

// ErrRefundDeclined marks a channel's definite refusal of a refund before
// it accepted it (the payment is unknown to it, the amount exceeds what it
// may refund): the refund did not and will not happen. Channels wrap it;
// callers test with errors.Is. Any other error from Refund means the
// outcome is unknown, and the refund must be queried.
var ErrRefundDeclined = errors.New("channel: refund declined")

// ErrUnknownRefund is returned by QueryRefund when the channel has no
// record of the refund. Like ErrUnknownPayment it is not proof of failure;
// a caller that holds the refund's money may submit it again (Refund is
// idempotent on RefundID).
var ErrUnknownRefund = errors.New("channel: no such refund at the channel")

// RefundRequest asks a channel to give back (part of) a payment it took.
// RefundID is paygate's number for the refund and what the channel knows
// it by: a channel that sees the same RefundID twice must refund once.
type RefundRequest struct {
	RefundID string
	// AttemptID and ChannelTradeNo name the payment refunded (paygate's
	// attempt id and the channel's trade number).
	AttemptID      string
	ChannelTradeNo string
	OrderID        string
	Amount         int64 // minor units to refund, positive
	Total          int64 // the payment's amount
	Currency       paygate.Currency
	Reason         string
	// Scenario is for simulated channels only: how the sandbox wants the
	// refund to end (channel/sim's refund outcomes). Real channels ignore it.
	Scenario string
}

// RefundAccepted is a channel's synchronous acceptance of a refund. The
// result comes later (QueryRefund).
type RefundAccepted struct {
	// ChannelRefundNo is the channel's own number for the refund.
	ChannelRefundNo string
	AcceptedAt      time.Time
}

// RefundQuery names a refund to look up: by paygate's refund id, and by
// the channel's number when it is known.
type RefundQuery struct {
	RefundID        string
	ChannelRefundNo string
}

// RefundResult is what a channel reports about a refund. A final Status
// (Success: the money went back to the payer; Failed: it did not and will
// not) is a fact the channel will not take back.
type RefundResult struct {
	Channel         string           `json:"channel"`
	RefundID        string           `json:"refund_id"`
	ChannelRefundNo string           `json:"channel_refund_no"`
	Status          Status           `json:"status"`
	Amount          int64            `json:"amount"`
	Currency        paygate.Currency `json:"currency"`
	// SucceededAt is when the channel returned the money (Success only).
	SucceededAt time.Time `json:"succeeded_at,omitzero"`
	// FailCode is the channel's reason for a failure, safe to show.
	FailCode string `json:"fail_code,omitempty"`
}

// Refunder is implemented by channels that can give a payment back. Like
// Pay, Refund answers synchronously whether the channel accepted the
// refund (RefundAccepted), refused it (an error matching
// ErrRefundDeclined) or — any other error — nobody knows; the result
// arrives later and is learnt by QueryRefund. Both may be slow and are
// never called inside a database transaction.
type Refunder interface {
	// Refund submits a refund; it is idempotent on req.RefundID.
	Refund(ctx context.Context, req RefundRequest) (RefundAccepted, error)
	// QueryRefund asks how a refund stands: a RefundResult whose Status is
	// Processing while the channel does not know, or an error
	// (ErrUnknownRefund when the channel has no record).
	QueryRefund(ctx context.Context, q RefundQuery) (RefundResult, error)
}

// ErrResolveDeclined marks a channel's definite refusal to capture or void
// an authorization: it was already resolved the other way (captured when
// asked to void, voided or captured for another amount when asked to
// capture), or the request is malformed. Channels wrap it; callers test
// with errors.Is. Any other error from Capture or Void leaves the outcome
// unknown, and the call must be repeated.
var ErrResolveDeclined = errors.New("channel: capture or void declined")

// ResolveRequest names an authorization (a payment made with
// AuthorizeOnly) to capture or void. AttemptID is what the channel knows
// the payment by; each authorization is captured or voided once, so the
// attempt id is also the resolution's idempotency key.
type ResolveRequest struct {
	AttemptID      string
	ChannelTradeNo string
	OrderID        string
	// Amount is what Capture takes (0 < Amount <= Authorized; the rest
	// goes back to the payer); Void ignores it.
	Amount     int64
	Authorized int64 // what the authorization holds
	Currency   paygate.Currency
}

// Authorizer is implemented by channels that can hold a payment without
// taking it (PayRequest.AuthorizeOnly). Capture takes req.Amount of the
// authorization and releases the rest to the payer; Void releases all of
// it. Both answer synchronously and are idempotent on req.AttemptID: the
// same capture (same amount) or void again answers nil; a contradicting
// one fails with an error matching ErrResolveDeclined; any other error
// means the outcome is unknown and the call must be repeated. Both may be
// slow and are never called inside a database transaction.
type Authorizer interface {
	Capture(ctx context.Context, req ResolveRequest) error
	Void(ctx context.Context, req ResolveRequest) error
}

// FailCode is a channel's fail code fit to store and show: at most 64
// printable ASCII characters without spaces, else (or when empty)
// "FAILED". Channels' codes come from outside and may be anything.
func FailCode(c string) string {
	if c == "" {
		return "FAILED"
	}
	if len(c) > 64 {
		c = c[:64]
	}
	for i := 0; i < len(c); i++ {
		if c[i] <= ' ' || c[i] > '~' {
			return "FAILED"
		}
	}
	return c
}
