package paygate

import (
	"errors"
	"fmt"
)

// Code is a stable, upper-case error code. Codes are part of the public API:
// merchants branch on them, so a code is never renamed or reused.
type Code string

// The complete set of error codes. Each maps to one HTTP status in httpapi.
const (
	CodeInvalidArgument   Code = "INVALID_ARGUMENT"    // malformed or out-of-range input
	CodeAmountNotPositive Code = "AMOUNT_NOT_POSITIVE" // an amount was zero or negative
	CodeOverflow          Code = "OVERFLOW"            // an amount or balance would overflow int64
	CodeCurrencyMismatch  Code = "CURRENCY_MISMATCH"   // accounts or amount disagree on currency
	CodeUnknownCurrency   Code = "UNKNOWN_CURRENCY"    // not an ISO 4217 code paygate supports
	CodeNotFound          Code = "NOT_FOUND"           // the object does not exist (or is not yours)
	CodeAccountNotFound   Code = "ACCOUNT_NOT_FOUND"   // a ledger account does not exist
	CodeAccountClosed     Code = "ACCOUNT_CLOSED"      // a ledger account is closed
	CodeInsufficientFunds Code = "INSUFFICIENT_FUNDS"  // debits would exceed credits on a no-overdraft account
	CodeLimitExceeded     Code = "LIMIT_EXCEEDED"      // credits would exceed debits on a capped account, or a configured limit
	CodeIDConflict        Code = "ID_CONFLICT"         // an id was reused with different fields
	CodeOutTradeNoUsed    Code = "OUT_TRADE_NO_USED"   // a merchant number was reused with a different request
	CodeOutRefundNoUsed   Code = "OUT_REFUND_NO_USED"  // a merchant refund number was reused with a different request
	CodeOutBatchNoUsed    Code = "OUT_BATCH_NO_USED"   // a merchant batch number (refund or payout batch) was reused with a different request
	CodeAlreadyResolved   Code = "ALREADY_RESOLVED"    // a hold was already posted, voided or expired
	CodeHoldExpired       Code = "HOLD_EXPIRED"        // a hold's timeout passed before it was posted
	CodeConflict          Code = "CONFLICT"            // the object's state does not allow the operation
	CodeUnauthenticated   Code = "UNAUTHENTICATED"     // missing or bad credentials or signature
	CodeForbidden         Code = "FORBIDDEN"           // authenticated but not allowed
	CodeTooLarge          Code = "TOO_LARGE"           // request body over the limit
	CodeMethodNotAllowed  Code = "METHOD_NOT_ALLOWED"  // the path exists but not with this method
	CodeUnavailable       Code = "UNAVAILABLE"         // a dependency is down; safe to retry
	CodeInternal          Code = "INTERNAL"            // a bug or unexpected fault; text never shown
)

// Error is the one error type of paygate. Message is safe to show to a caller;
// Err (the cause) is for logs only and never reaches a user. Field names the
// input field at fault, when there is one.
type Error struct {
	Code    Code
	Message string
	Field   string
	Err     error
}

// Error returns the code, the safe message and, for logs, the cause.
func (e *Error) Error() string {
	s := string(e.Code) + ": " + e.Message
	if e.Field != "" {
		s += " (field " + e.Field + ")"
	}
	if e.Err != nil {
		s += ": " + e.Err.Error()
	}
	return s
}

// Unwrap returns the cause so errors.Is/As see through an Error.
func (e *Error) Unwrap() error { return e.Err }

// Is reports whether target is an *Error with the same code, so callers can
// write errors.Is(err, paygate.E(paygate.CodeNotFound, "")).
func (e *Error) Is(target error) bool {
	var t *Error
	if errors.As(target, &t) {
		return t.Code == e.Code
	}
	return false
}

// E returns a new *Error with the code and a caller-safe message.
func E(code Code, format string, args ...any) *Error {
	return &Error{Code: code, Message: fmt.Sprintf(format, args...)}
}

// EField returns a new *Error that names the input field at fault.
func EField(code Code, field, format string, args ...any) *Error {
	return &Error{Code: code, Field: field, Message: fmt.Sprintf(format, args...)}
}

// Internal wraps an unexpected cause as CodeInternal. The cause's text is kept
// for logs; callers see only "internal error".
func Internal(err error) *Error {
	var pe *Error
	if errors.As(err, &pe) {
		return pe
	}
	return &Error{Code: CodeInternal, Message: "internal error", Err: err}
}

// CodeOf returns the code of the first *Error in err's chain, CodeInternal
// for any other non-nil error, and "" for nil.
func CodeOf(err error) Code {
	if err == nil {
		return ""
	}
	var pe *Error
	if errors.As(err, &pe) {
		return pe.Code
	}
	return CodeInternal
}

// HasCode reports whether err carries the code.
func HasCode(err error, code Code) bool { return CodeOf(err) == code }

// ErrRetry marks a transient conflict (a concurrent writer got there first):
// the whole transaction may be run again. Stores retry it themselves.
var ErrRetry = errors.New("paygate: transient conflict, retry the transaction")
