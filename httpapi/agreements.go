package httpapi

import (
	"context"
	"net/http"

	"paygate/agreement"
)

// Agreements is what the /v1 agreement routes call; *agreement.Service
// implements it. Its errors are agreement.Service's.
type Agreements interface {
	Create(ctx context.Context, merchantID string, req agreement.Request) (agreement.Agreement, bool, error)
	Get(ctx context.Context, merchantID, id string) (agreement.Agreement, error)
	GetByOutAgreementNo(ctx context.Context, merchantID, no string) (agreement.Agreement, error)
	List(ctx context.Context, merchantID string, req agreement.ListRequest) (agreement.Listing, error)
	Revoke(ctx context.Context, merchantID, id string) (agreement.Agreement, error)
	Charge(ctx context.Context, merchantID, id string, req agreement.ChargeRequest) (agreement.Charge, bool, error)
}

// agreementRoutes are the /v1 agreement operations, part of Routes.
func agreementRoutes(authErrs []int) []Route {
	tags := []string{"agreements"}
	return []Route{
		{Method: "POST", Path: "/v1/agreements", OperationID: "createAgreement", Tags: tags, Auth: true, Signed: true,
			Summary: "Ask a customer for an agreement (mandate): PENDING until signed at sign_url",
			Description: "Idempotent on out_agreement_no: the same out_agreement_no with the same body answers 200 with the existing agreement; " +
				"with a different body 409 ID_CONFLICT naming the differing field. The customer signs on the hosted page at sign_url " +
				"(card, holder details, SMS code) before sign_expire_time; AGREEMENT.SIGNED then reaches notify_url. " +
				"per_payment_limit and daily_limit (minor units, optional) bound charges; end_date (YYYY-MM-DD, optional) is the last day charges are taken.",
			Request: agreement.Request{}, Response: agreement.Agreement{}, Status: 201, Errors: append(authErrs, 409)},
		{Method: "GET", Path: "/v1/agreements", OperationID: "listAgreements", Tags: tags, Auth: true, Signed: true,
			Summary: "List agreements, newest first", Response: agreement.Listing{}, Status: 200, Errors: authErrs,
			Query: []QueryParam{{"status", "PENDING, SIGNED, REVOKED or EXPIRED"}, {"cursor", "next_cursor of the previous page"},
				{"limit", "page size, default 20, at most 100"}}},
		{Method: "GET", Path: "/v1/agreements/{id}", OperationID: "getAgreement", Tags: tags, Auth: true, Signed: true,
			Summary: "Query an agreement by paygate id", Response: agreement.Agreement{}, Status: 200, Errors: authErrs},
		{Method: "GET", Path: "/v1/agreements/out-agreement-no/{out_agreement_no}", OperationID: "getAgreementByOutAgreementNo", Tags: tags,
			Auth: true, Signed: true, Summary: "Query an agreement by the merchant's out_agreement_no", Response: agreement.Agreement{},
			Status: 200, Errors: authErrs},
		{Method: "POST", Path: "/v1/agreements/{id}/revoke", OperationID: "revokeAgreement", Tags: tags, Auth: true, Signed: true,
			Summary:     "Revoke an agreement (a pending one can no longer be signed, a signed one no longer charged)",
			Description: "A signed agreement's revocation sends AGREEMENT.REVOKED, as when the customer revokes it in the portal. Idempotent on a revoked agreement; 409 CONFLICT on an expired one.",
			Response:    agreement.Agreement{}, Status: 200, Errors: append(authErrs, 409)},
		{Method: "POST", Path: "/v1/agreements/{id}/charges", OperationID: "chargeAgreement", Tags: tags, Auth: true, Signed: true,
			Summary: "Charge a signed agreement without the customer: creates an order and pays it from the signed card",
			Description: "Own-bank cards are paid at once (status SUCCESS); other banks' cards through the interbank switch (PROCESSING; " +
				"TRANSACTION.SUCCESS or the order's query gives the result). Idempotent on out_trade_no like POST /v1/orders (409 OUT_TRADE_NO_USED). " +
				"Refused with nothing created: 409 CONFLICT (pending, revoked or expired agreement), 422 LIMIT_EXCEEDED (the agreement's per-payment " +
				"or per-day limit, or the customer's limits), 422 INSUFFICIENT_FUNDS.",
			Request: agreement.ChargeRequest{}, Response: agreement.Charge{}, Status: 201, Errors: append(authErrs, 409, 422, 503)},
	}
}

// agreements returns the agreement use case, answering 404 when none is
// wired.
func (v *V1) agreements(w http.ResponseWriter) (Agreements, bool) { return wired(w, v.Agreements) }

// agreementHandlers are the handlers of agreementRoutes by operation id.
func (v *V1) agreementHandlers() map[string]http.Handler {
	return map[string]http.Handler{
		"createAgreement": http.HandlerFunc(v.createAgreement), "listAgreements": http.HandlerFunc(v.listAgreements),
		"getAgreement": http.HandlerFunc(v.getAgreement), "getAgreementByOutAgreementNo": http.HandlerFunc(v.getAgreementByNo),
		"revokeAgreement": http.HandlerFunc(v.revokeAgreement), "chargeAgreement": http.HandlerFunc(v.chargeAgreement),
	}
}

func (v *V1) createAgreement(w http.ResponseWriter, r *http.Request) {
	m, ok := merchantOf(w, r)
	if !ok {
		return
	}
	ag, ok := v.agreements(w)
	if !ok {
		return
	}
	var req agreement.Request
	if !decodeBody(w, r, &req) {
		return
	}
	out, replay, err := ag.Create(r.Context(), m.ID, req)
	if err != nil {
		WriteError(w, err)
		return
	}
	writeJSON(w, createdStatus(replay), out)
}

func (v *V1) chargeAgreement(w http.ResponseWriter, r *http.Request) {
	m, ok := merchantOf(w, r)
	if !ok {
		return
	}
	ag, ok := v.agreements(w)
	if !ok {
		return
	}
	var req agreement.ChargeRequest
	if !decodeBody(w, r, &req) {
		return
	}
	out, replay, err := ag.Charge(r.Context(), m.ID, r.PathValue("id"), req)
	if err != nil {
		WriteError(w, err)
		return
	}
	writeJSON(w, createdStatus(replay), out)
}

func (v *V1) getAgreement(w http.ResponseWriter, r *http.Request) {
	if m, ok := merchantOf(w, r); ok {
		if ag, ok := v.agreements(w); ok {
			out, err := ag.Get(r.Context(), m.ID, r.PathValue("id"))
			respond(w, out, err)
		}
	}
}

func (v *V1) getAgreementByNo(w http.ResponseWriter, r *http.Request) {
	if m, ok := merchantOf(w, r); ok {
		if ag, ok := v.agreements(w); ok {
			out, err := ag.GetByOutAgreementNo(r.Context(), m.ID, r.PathValue("out_agreement_no"))
			respond(w, out, err)
		}
	}
}

func (v *V1) listAgreements(w http.ResponseWriter, r *http.Request) {
	m, ok := merchantOf(w, r)
	if !ok {
		return
	}
	ag, ok := v.agreements(w)
	if !ok {
		return
	}
	q := r.URL.Query()
	limit, err := intParam(q.Get("limit"), "limit")
	if err != nil {
		WriteError(w, err)
		return
	}
	page, err := ag.List(r.Context(), m.ID, agreement.ListRequest{Status: agreement.Status(q.Get("status")), Cursor: q.Get("cursor"), Limit: limit})
	if err == nil && page.Agreements == nil {
		page.Agreements = []agreement.Agreement{}
	}
	respond(w, page, err)
}

func (v *V1) revokeAgreement(w http.ResponseWriter, r *http.Request) {
	m, ok := merchantOf(w, r)
	if !ok {
		return
	}
	ag, ok := v.agreements(w)
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
	out, err := ag.Revoke(r.Context(), m.ID, r.PathValue("id"))
	respond(w, out, err)
}

// decodeBody reads and strictly decodes the request's JSON body into v,
// answering the error itself (ok false).
func decodeBody(w http.ResponseWriter, r *http.Request, v any) bool {
	b, err := readBody(w, r)
	if err == nil {
		err = DecodeJSON(b, v)
	}
	if err != nil {
		WriteError(w, err)
		return false
	}
	return true
}

// createdStatus is 201 for a new object, 200 for a replay.
func createdStatus(replay bool) int {
	if replay {
		return http.StatusOK
	}
	return http.StatusCreated
}
