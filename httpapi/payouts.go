package httpapi

import (
	"context"
	"net/http"

	"paygate"
	"paygate/payout"
)

// MaxPayoutBody bounds the body of a payout batch: room for payout.MaxItems
// lines (every other route keeps MaxBody).
const MaxPayoutBody = 1 << 20

// Payouts is what the /v1 payout routes call; *payout.Service implements
// it. Its errors are payout.Service's (see payout.Service.Submit).
type Payouts interface {
	Submit(ctx context.Context, m paygate.Merchant, req payout.CreateBatchRequest) (payout.BatchPage, bool, error)
	GetBatch(ctx context.Context, merchantID, id, cursor string, limit int) (payout.BatchPage, error)
	GetBatchByOutBatchNo(ctx context.Context, merchantID, outBatchNo, cursor string, limit int) (payout.BatchPage, error)
	GetDetail(ctx context.Context, merchantID, outDetailNo string) (payout.Item, error)
}

var _ Payouts = (*payout.Service)(nil)

// payoutRoutes are the payout operations of the route table.
func payoutRoutes(authErrs []int) []Route {
	page := []QueryParam{{"cursor", "next_cursor of the previous page of items"}, {"limit", "items per page, default 100, at most 1000"}}
	return []Route{
		{Method: "POST", Path: "/v1/payouts/batches", OperationID: "createPayoutBatch", Tags: []string{"payouts"}, Auth: true, Signed: true,
			Summary: "Pay many recipients at once from the available balance (a payout batch)",
			Description: "Up to 1,000 items, each to a customer's account (type ACCOUNT, by registered mobile phone) or a card (type CARD: number and holder name; " +
				"own-bank cards are credited at once, other banks' cards go through the interbank channel). A bad line is REJECTED alone with a fail_reason; " +
				"the good lines' total is held at once, or the batch is refused as a whole with 422 INSUFFICIENT_FUNDS. Idempotent on out_batch_no: the same body " +
				"answers 200 with the existing batch, a different body 409 OUT_BATCH_NO_USED; out_detail_no is unique per merchant across batches. " +
				"The batch is PROCESSING until every accepted item is SUCCESS or FAILED, then FINISHED (PAYOUT_BATCH.FINISHED notification). Bodies up to 1 MiB.",
			Request: payout.CreateBatchRequest{}, Response: payout.BatchPage{}, Status: 201, Errors: append(authErrs, 409, 422, 503),
			MaxBody: MaxPayoutBody},
		{Method: "GET", Path: "/v1/payouts/batches/{id}", OperationID: "getPayoutBatch", Tags: []string{"payouts"}, Auth: true, Signed: true,
			Summary: "Query a payout batch by paygate id, with a page of its items in batch order", Response: payout.BatchPage{}, Status: 200,
			Errors: authErrs, Query: page},
		{Method: "GET", Path: "/v1/payouts/batches/out-batch-no/{out_batch_no}", OperationID: "getPayoutBatchByOutBatchNo", Tags: []string{"payouts"},
			Auth: true, Signed: true, Summary: "Query a payout batch by the merchant's out_batch_no, with a page of its items",
			Response: payout.BatchPage{}, Status: 200, Errors: authErrs, Query: page},
		{Method: "GET", Path: "/v1/payouts/details/{out_detail_no}", OperationID: "getPayoutDetail", Tags: []string{"payouts"}, Auth: true, Signed: true,
			Summary: "Query an accepted payout item by the merchant's out_detail_no", Response: payout.Item{}, Status: 200, Errors: authErrs},
	}
}

// payoutHandlers are the handlers of payoutRoutes by operation id.
func (v *V1) payoutHandlers() map[string]http.Handler {
	return map[string]http.Handler{
		"createPayoutBatch": http.HandlerFunc(v.createPayoutBatch), "getPayoutBatch": http.HandlerFunc(v.getPayoutBatch),
		"getPayoutBatchByOutBatchNo": http.HandlerFunc(v.getPayoutBatchByOutBatchNo), "getPayoutDetail": http.HandlerFunc(v.getPayoutDetail),
	}
}

// payouts returns the payout use case, answering 404 when none is wired.
func (v *V1) payouts(w http.ResponseWriter) (Payouts, bool) { return wired(w, v.Payouts) }

func (v *V1) createPayoutBatch(w http.ResponseWriter, r *http.Request) {
	m, ok := merchantOf(w, r)
	if !ok {
		return
	}
	ps, ok := v.payouts(w)
	if !ok {
		return
	}
	b, err := readBody(w, r)
	if err != nil {
		WriteError(w, err)
		return
	}
	var req payout.CreateBatchRequest
	if err := DecodeJSON(b, &req); err != nil {
		WriteError(w, err)
		return
	}
	out, replay, err := ps.Submit(r.Context(), m, req)
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

// pageParams reads the cursor and limit of a page of items.
func pageParams(r *http.Request) (string, int, error) {
	q := r.URL.Query()
	limit, err := intParam(q.Get("limit"), "limit")
	return q.Get("cursor"), limit, err
}

func (v *V1) getPayoutBatch(w http.ResponseWriter, r *http.Request) {
	if m, ok := merchantOf(w, r); ok {
		if ps, ok := v.payouts(w); ok {
			cursor, limit, err := pageParams(r)
			if err != nil {
				WriteError(w, err)
				return
			}
			out, err := ps.GetBatch(r.Context(), m.ID, r.PathValue("id"), cursor, limit)
			respond(w, out, err)
		}
	}
}

func (v *V1) getPayoutBatchByOutBatchNo(w http.ResponseWriter, r *http.Request) {
	if m, ok := merchantOf(w, r); ok {
		if ps, ok := v.payouts(w); ok {
			cursor, limit, err := pageParams(r)
			if err != nil {
				WriteError(w, err)
				return
			}
			out, err := ps.GetBatchByOutBatchNo(r.Context(), m.ID, r.PathValue("out_batch_no"), cursor, limit)
			respond(w, out, err)
		}
	}
}

func (v *V1) getPayoutDetail(w http.ResponseWriter, r *http.Request) {
	if m, ok := merchantOf(w, r); ok {
		if ps, ok := v.payouts(w); ok {
			out, err := ps.GetDetail(r.Context(), m.ID, r.PathValue("out_detail_no"))
			respond(w, out, err)
		}
	}
}
