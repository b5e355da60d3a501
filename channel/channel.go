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
	// Scenario is for simulated channels only: the outcome the sandbox
	// merchant asked for (channel/sim's outcomes). Real channels ignore it.
	Scenario string
}

// Accepted is a channel's synchronous acceptance of a payment. The result
// comes later (callback or Query).
type Accepted struct {
	// ChannelTradeNo is the channel's own number for the payment.
	ChannelTradeNo string
	AcceptedAt     time.Time
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
