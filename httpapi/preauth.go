package httpapi

import (
	"context"
	"net/http"

	"paygate/payment"
)

// Preauth is what the /v1 authorization routes (capture, void) call;
// *payment.Service implements it. Its errors are payment.Service's (see
// payment.Service.Capture and Void).
type Preauth interface {
	Capture(ctx context.Context, merchantID, orderID string, req payment.CaptureRequest) (payment.Order, error)
	Void(ctx context.Context, merchantID, orderID string) (payment.Order, error)
}

// preauth returns the authorization use case, answering 404 when none is
// wired.
func (v *V1) preauth(w http.ResponseWriter) (Preauth, bool) { return wired(w, v.Preauth) }

// captureOrder answers POST /v1/orders/{id}/capture. An empty body
// captures everything authorized, as {} does.
func (v *V1) captureOrder(w http.ResponseWriter, r *http.Request) {
	m, ok := merchantOf(w, r)
	if !ok {
		return
	}
	pa, ok := v.preauth(w)
	if !ok {
		return
	}
	b, err := readBody(w, r)
	if err != nil {
		WriteError(w, err)
		return
	}
	var req payment.CaptureRequest
	if len(b) > 0 {
		if err := DecodeJSON(b, &req); err != nil {
			WriteError(w, err)
			return
		}
	}
	o, err := pa.Capture(r.Context(), m.ID, r.PathValue("id"), req)
	respond(w, o, err)
}

// voidOrder answers POST /v1/orders/{id}/void; its body is empty or {}.
func (v *V1) voidOrder(w http.ResponseWriter, r *http.Request) {
	m, ok := merchantOf(w, r)
	if !ok {
		return
	}
	pa, ok := v.preauth(w)
	if !ok {
		return
	}
	if b, err := readBody(w, r); err != nil {
		WriteError(w, err)
		return
	} else if len(b) > 0 {
		var empty struct{}
		if err := DecodeJSON(b, &empty); err != nil {
			WriteError(w, err)
			return
		}
	}
	o, err := pa.Void(r.Context(), m.ID, r.PathValue("id"))
	respond(w, o, err)
}
