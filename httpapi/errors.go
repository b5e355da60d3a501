package httpapi

import (
	"encoding/json"
	"errors"
	"log/slog"
	"net/http"

	"paygate"
)

// statuses is the one mapping from paygate error codes to HTTP statuses.
// A test checks that every code declared in the root package is listed.
var statuses = map[paygate.Code]int{
	paygate.CodeInvalidArgument:   http.StatusBadRequest,
	paygate.CodeAmountNotPositive: http.StatusBadRequest,
	paygate.CodeUnknownCurrency:   http.StatusBadRequest,
	paygate.CodeCurrencyMismatch:  http.StatusBadRequest,
	paygate.CodeUnauthenticated:   http.StatusUnauthorized,
	paygate.CodeForbidden:         http.StatusForbidden,
	paygate.CodeNotFound:          http.StatusNotFound,
	paygate.CodeAccountNotFound:   http.StatusNotFound,
	paygate.CodeMethodNotAllowed:  http.StatusMethodNotAllowed,
	paygate.CodeIDConflict:        http.StatusConflict,
	paygate.CodeOutTradeNoUsed:    http.StatusConflict,
	paygate.CodeOutRefundNoUsed:   http.StatusConflict,
	paygate.CodeOutBatchNoUsed:    http.StatusConflict,
	paygate.CodeConflict:          http.StatusConflict,
	paygate.CodeAlreadyResolved:   http.StatusConflict,
	paygate.CodeHoldExpired:       http.StatusConflict,
	paygate.CodeAccountClosed:     http.StatusConflict,
	paygate.CodeTooLarge:          http.StatusRequestEntityTooLarge,
	paygate.CodeInsufficientFunds: http.StatusUnprocessableEntity,
	paygate.CodeLimitExceeded:     http.StatusUnprocessableEntity,
	paygate.CodeOverflow:          http.StatusUnprocessableEntity,
	paygate.CodeUnavailable:       http.StatusServiceUnavailable,
	paygate.CodeInternal:          http.StatusInternalServerError,
}

// Status returns the HTTP status for a paygate error code: 400 for malformed
// input, 401/403 for authentication and permission, 404 for missing objects,
// 409 for id and state conflicts, 413 for oversized bodies, 422 for
// well-formed requests that the books refuse (insufficient funds, limits,
// overflow), 503 for UNAVAILABLE (safe to retry) and 500 for INTERNAL and
// any code it does not know.
func Status(code paygate.Code) int {
	if s, ok := statuses[code]; ok {
		return s
	}
	return http.StatusInternalServerError
}

// ErrorBody is the one JSON shape of every error paygate's HTTP API returns.
type ErrorBody struct {
	Code    paygate.Code `json:"code"`
	Message string       `json:"message"`
	Detail  *ErrorDetail `json:"detail,omitempty"`
}

// ErrorDetail carries optional machine-readable detail of an error.
type ErrorDetail struct {
	// Field names the request field at fault.
	Field string `json:"field,omitempty"`
}

// internalMessage is all a caller ever learns about an internal fault.
const internalMessage = "internal error"

// errorRecorder is implemented by the response writer of the observing
// middleware, which logs the cause with the request.
type errorRecorder interface{ recordError(error) }

// WriteError answers with err as the error JSON ({code, message, detail?})
// and the status Status gives its code. A *paygate.Error anywhere in err's
// chain supplies the code, the caller-safe message and the field; any other
// error is INTERNAL. The message of an INTERNAL error, and the cause (Err)
// of any error, never reach the response: the cause is logged with the
// request line (or, outside the middleware, by slog's default logger when
// the status is 5xx).
func WriteError(w http.ResponseWriter, err error) {
	if err == nil {
		err = errors.New("httpapi: WriteError called with a nil error")
	}
	var pe *paygate.Error
	if !errors.As(err, &pe) {
		pe = &paygate.Error{Code: paygate.CodeInternal}
	}
	status := Status(pe.Code)
	body := ErrorBody{Code: pe.Code, Message: pe.Message}
	if status == http.StatusInternalServerError {
		body.Code, body.Message = paygate.CodeInternal, internalMessage
	} else if pe.Field != "" {
		body.Detail = &ErrorDetail{Field: pe.Field}
	}
	if rec, ok := w.(errorRecorder); ok {
		rec.recordError(err)
	} else if status >= 500 {
		slog.Default().Error("request failed", "status", status, "error", err)
	}
	h := w.Header()
	h.Set("Cache-Control", "no-store")
	writeJSON(w, status, body)
}

// writeJSON answers with v as JSON.
func writeJSON(w http.ResponseWriter, status int, v any) {
	b, err := json.Marshal(v)
	if err != nil { // only for values that cannot be marshalled: a bug
		status = http.StatusInternalServerError
		b = []byte(`{"code":"INTERNAL","message":"internal error"}`)
		if rec, ok := w.(errorRecorder); ok {
			rec.recordError(err)
		}
	}
	h := w.Header()
	h.Set("Content-Type", "application/json")
	h.Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(status)
	w.Write(append(b, '\n'))
}
