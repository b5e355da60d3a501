package httpapi

import (
	"context"
	"net/http"

	"paygate"
	"paygate/payment"
)

// Refunds is what the /v1 refund routes call; *payment.Service implements
// it. Its errors are payment.Service's (see payment.Service.Refund).
type Refunds interface {
	Refund(ctx context.Context, merchantID string, req payment.CreateRefundRequest) (payment.Refund, bool, error)
	GetRefund(ctx context.Context, merchantID, id string) (payment.Refund, error)
	GetRefundByOutRefundNo(ctx context.Context, merchantID, outRefundNo string) (payment.Refund, error)
	OrderRefunds(ctx context.Context, merchantID, orderID string) (payment.RefundList, error)
	CloseRefund(ctx context.Context, merchantID, id string) (payment.Refund, error)
}

// refunds returns the refund use case, answering 404 when none is wired.
func (v *V1) refunds(w http.ResponseWriter) (Refunds, bool) { return wired(w, v.Refunds) }

func (v *V1) createRefund(w http.ResponseWriter, r *http.Request) {
	m, ok := merchantOf(w, r)
	if !ok {
		return
	}
	rf, ok := v.refunds(w)
	if !ok {
		return
	}
	b, err := readBody(w, r)
	if err != nil {
		WriteError(w, err)
		return
	}
	var req payment.CreateRefundRequest
	if err := DecodeJSON(b, &req); err != nil {
		WriteError(w, err)
		return
	}
	out, replay, err := rf.Refund(r.Context(), m.ID, req)
	if err != nil {
		WriteError(w, err)
		return
	}
	status := http.StatusCreated
	if replay {
		status = http.StatusOK
	}
	writeJSON(w, status, out)
}

func (v *V1) getRefund(w http.ResponseWriter, r *http.Request) {
	if m, ok := merchantOf(w, r); ok {
		if rf, ok := v.refunds(w); ok {
			out, err := rf.GetRefund(r.Context(), m.ID, r.PathValue("id"))
			respond(w, out, err)
		}
	}
}

func (v *V1) getRefundByOutRefundNo(w http.ResponseWriter, r *http.Request) {
	if m, ok := merchantOf(w, r); ok {
		if rf, ok := v.refunds(w); ok {
			out, err := rf.GetRefundByOutRefundNo(r.Context(), m.ID, r.PathValue("out_refund_no"))
			respond(w, out, err)
		}
	}
}

func (v *V1) listRefunds(w http.ResponseWriter, r *http.Request) {
	if m, ok := merchantOf(w, r); ok {
		if rf, ok := v.refunds(w); ok {
			orderID := r.URL.Query().Get("order_id")
			if orderID == "" {
				WriteError(w, paygate.EField(paygate.CodeInvalidArgument, "order_id", "order_id is required"))
				return
			}
			out, err := rf.OrderRefunds(r.Context(), m.ID, orderID)
			if err == nil && out.Refunds == nil {
				out.Refunds = []payment.Refund{}
			}
			respond(w, out, err)
		}
	}
}

func (v *V1) closeRefund(w http.ResponseWriter, r *http.Request) {
	m, ok := merchantOf(w, r)
	if !ok {
		return
	}
	rf, ok := v.refunds(w)
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
	out, err := rf.CloseRefund(r.Context(), m.ID, r.PathValue("id"))
	respond(w, out, err)
}
