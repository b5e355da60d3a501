package httpapi

import (
	"context"
	"net/http"

	"paygate/payment"
)

// MaxRefundBatchBody bounds the body of a refund batch: room for
// payment.MaxRefundBatchItems lines of the longest fields (every other
// route keeps MaxBody).
const MaxRefundBatchBody = 1 << 20

// RefundBatches is what the /v1 refund batch routes call;
// *payment.BatchRefunds implements it. Its errors are
// payment.BatchRefunds' (see SubmitRefundBatch).
type RefundBatches interface {
	SubmitRefundBatch(ctx context.Context, merchantID string, req payment.CreateRefundBatchRequest) (payment.RefundBatch, bool, error)
	GetRefundBatch(ctx context.Context, merchantID, id string, pg payment.RefundBatchPage) (payment.RefundBatch, error)
	GetRefundBatchByOutBatchNo(ctx context.Context, merchantID, outBatchNo string, pg payment.RefundBatchPage) (payment.RefundBatch, error)
}

var _ RefundBatches = (*payment.BatchRefunds)(nil)

// refundBatchRoutes are the refund batch operations of the route table.
func refundBatchRoutes(authErrs []int) []Route {
	page := []QueryParam{{"cursor", "next_cursor of the previous page of items"}, {"limit", "items per page, default 100, at most 1000"}}
	return []Route{
		{Method: "POST", Path: "/v1/refunds/batches", OperationID: "createRefundBatch", Tags: []string{"refunds"}, Auth: true, Signed: true,
			Summary: "Refund many orders at once (a refund batch of up to 1,000 items)",
			Description: "Accepted at once (202, status PROCESSING) and worked through in the background, each item exactly as POST /v1/refunds " +
				"(idempotent by out_refund_no, so an item refunded before is found again, never refunded twice). A bad item fails alone with " +
				"fail_code, fail_field and fail_message (the codes POST /v1/refunds answers); an item that repeats an earlier item's out_refund_no fails. " +
				"Idempotent on out_batch_no: the same body answers 200 with the batch (and gets a batch still PROCESSING moving at once), " +
				"a different body 409 OUT_BATCH_NO_USED naming the first differing field. When every item is ACCEPTED or FAILED the batch is " +
				"FINISHED and, with a notify_url, a REFUND.BATCH_FINISHED notification carries its summary; each refund still notifies " +
				"REFUND.SUCCESS or REFUND.ABNORMAL. Bodies up to 1 MiB.",
			Request: payment.CreateRefundBatchRequest{}, Response: payment.RefundBatch{}, Status: 202, Errors: append(authErrs, 409),
			MaxBody: MaxRefundBatchBody},
		{Method: "GET", Path: "/v1/refunds/batches/{id}", OperationID: "getRefundBatch", Tags: []string{"refunds"}, Auth: true, Signed: true,
			Summary: "Query a refund batch by paygate id, with a page of its items in line order", Response: payment.RefundBatch{}, Status: 200,
			Errors: authErrs, Query: page},
		{Method: "GET", Path: "/v1/refunds/batches/out-batch-no/{out_batch_no}", OperationID: "getRefundBatchByOutBatchNo", Tags: []string{"refunds"},
			Auth: true, Signed: true, Summary: "Query a refund batch by the merchant's out_batch_no, with a page of its items",
			Response: payment.RefundBatch{}, Status: 200, Errors: authErrs, Query: page},
	}
}

// refundBatchHandlers are the handlers of refundBatchRoutes by operation id.
func (v *V1) refundBatchHandlers() map[string]http.Handler {
	return map[string]http.Handler{
		"createRefundBatch": http.HandlerFunc(v.createRefundBatch), "getRefundBatch": http.HandlerFunc(v.getRefundBatch),
		"getRefundBatchByOutBatchNo": http.HandlerFunc(v.getRefundBatchByOutBatchNo),
	}
}

// refundBatches returns the batch use case, answering 404 when none is
// wired.
func (v *V1) refundBatches(w http.ResponseWriter) (RefundBatches, bool) {
	return wired(w, v.RefundBatches)
}

func (v *V1) createRefundBatch(w http.ResponseWriter, r *http.Request) {
	m, ok := merchantOf(w, r)
	if !ok {
		return
	}
	rb, ok := v.refundBatches(w)
	if !ok {
		return
	}
	b, err := readBody(w, r)
	if err != nil {
		WriteError(w, err)
		return
	}
	var req payment.CreateRefundBatchRequest
	if err := DecodeJSON(b, &req); err != nil {
		WriteError(w, err)
		return
	}
	out, replay, err := rb.SubmitRefundBatch(r.Context(), m.ID, req)
	if err != nil {
		WriteError(w, err)
		return
	}
	status := http.StatusAccepted
	if replay {
		status = http.StatusOK
	}
	writeJSON(w, status, out)
}

// refundBatchPage reads the cursor and limit of a page of items.
func refundBatchPage(r *http.Request) (payment.RefundBatchPage, error) {
	q := r.URL.Query()
	limit, err := intParam(q.Get("limit"), "limit")
	return payment.RefundBatchPage{Cursor: q.Get("cursor"), Limit: limit}, err
}

func (v *V1) getRefundBatch(w http.ResponseWriter, r *http.Request) {
	if m, ok := merchantOf(w, r); ok {
		if rb, ok := v.refundBatches(w); ok {
			pg, err := refundBatchPage(r)
			if err != nil {
				WriteError(w, err)
				return
			}
			out, err := rb.GetRefundBatch(r.Context(), m.ID, r.PathValue("id"), pg)
			respond(w, out, err)
		}
	}
}

func (v *V1) getRefundBatchByOutBatchNo(w http.ResponseWriter, r *http.Request) {
	if m, ok := merchantOf(w, r); ok {
		if rb, ok := v.refundBatches(w); ok {
			pg, err := refundBatchPage(r)
			if err != nil {
				WriteError(w, err)
				return
			}
			out, err := rb.GetRefundBatchByOutBatchNo(r.Context(), m.ID, r.PathValue("out_batch_no"), pg)
			respond(w, out, err)
		}
	}
}
