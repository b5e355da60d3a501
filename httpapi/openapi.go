package httpapi

import (
	"encoding/json"
	"net/http"
	"reflect"
	"strconv"
	"time"

	"github.com/danielgtaylor/huma/v2"

	"paygate/payment"
)

// Route describes one /v1 operation. The same table mounts the handlers
// (V1.Register) and generates the OpenAPI document (OpenAPISpec), so the
// spec cannot drift from the code; CI checks the committed docs/openapi.json
// against OpenAPISpec.
type Route struct {
	Method, Path, OperationID, Summary, Description string
	Tags                                            []string
	Auth                                            bool // merchant-signed request required
	Signed                                          bool // responses carry Wechatpay-* signature headers
	Request                                         any  // zero value of the JSON body type, or nil
	Response                                        any  // zero value of the success body type
	Status                                          int  // success status
	Query                                           []QueryParam
	Errors                                          []int
	// MaxBody, when set, is the route's own body limit (else MaxBody).
	MaxBody int64
}

// QueryParam is a documented query parameter.
type QueryParam struct{ Name, Description string }

// Certificate is one platform public key, as GET /v1/certificates lists it.
type Certificate struct {
	SerialNo      string    `json:"serial_no"`
	PublicKey     string    `json:"public_key" doc:"PEM (PKIX) RSA-2048 public key"`
	EffectiveTime time.Time `json:"effective_time"`
	ExpireTime    time.Time `json:"expire_time"`
}

// CertificateList is the body of GET /v1/certificates.
type CertificateList struct {
	Data []Certificate `json:"data"`
}

// Routes returns the /v1 route table.
func Routes() []Route {
	authErrs := []int{400, 401, 403, 404, 413, 500}
	return append([]Route{
		{Method: "POST", Path: "/v1/orders", OperationID: "createOrder", Tags: []string{"orders"}, Auth: true, Signed: true,
			Summary:     "Create an order (the unified order)",
			Description: "Idempotent on out_trade_no: the same out_trade_no with the same body answers 200 with the existing order; with a different body 409 OUT_TRADE_NO_USED naming the differing field.",
			Request:     payment.CreateRequest{}, Response: payment.Order{}, Status: 201, Errors: append(authErrs, 409)},
		{Method: "GET", Path: "/v1/orders", OperationID: "listOrders", Tags: []string{"orders"}, Auth: true, Signed: true,
			Summary: "List orders, newest first", Response: payment.Page{}, Status: 200, Errors: authErrs,
			Query: []QueryParam{{"status", "NOTPAY, PAYERROR, SUCCESS, CLOSED, REFUND or AUTHORIZED"}, {"created_from", "RFC 3339, inclusive"},
				{"created_to", "RFC 3339, exclusive"}, {"cursor", "next_cursor of the previous page"}, {"limit", "page size, default 20, at most 100"}}},
		{Method: "GET", Path: "/v1/orders/{id}", OperationID: "getOrder", Tags: []string{"orders"}, Auth: true, Signed: true,
			Summary: "Query an order by paygate id", Response: payment.Order{}, Status: 200, Errors: authErrs},
		{Method: "GET", Path: "/v1/orders/out-trade-no/{out_trade_no}", OperationID: "getOrderByOutTradeNo", Tags: []string{"orders"}, Auth: true, Signed: true,
			Summary: "Query an order by the merchant's out_trade_no", Response: payment.Order{}, Status: 200, Errors: authErrs},
		{Method: "POST", Path: "/v1/orders/{id}/close", OperationID: "closeOrder", Tags: []string{"orders"}, Auth: true, Signed: true,
			Summary: "Close an unpaid order", Description: "Idempotent on a closed order; 409 CONFLICT on a paid one.",
			Response: payment.Order{}, Status: 200, Errors: append(authErrs, 409)},
		{Method: "POST", Path: "/v1/orders/{id}/capture", OperationID: "captureOrder", Tags: []string{"orders"}, Auth: true, Signed: true,
			Summary: "Capture an authorized order (capture_method MANUAL): all, or part of the amount authorized",
			Description: "The body is optional: without amount everything authorized is captured; with amount.total that much, and the rest goes back to the payer. " +
				"The order becomes SUCCESS with amount.captured (TRANSACTION.SUCCESS); refunds may then give back up to the amount captured. " +
				"422 LIMIT_EXCEEDED (field amount.total) beyond the amount authorized; 409 ALREADY_RESOLVED once captured or voided; " +
				"409 HOLD_EXPIRED at or after capture_before; 409 CONFLICT for an order that is not an authorization.",
			Request: payment.CaptureRequest{}, Response: payment.Order{}, Status: 200, Errors: append(authErrs, 409, 422)},
		{Method: "POST", Path: "/v1/orders/{id}/void", OperationID: "voidOrder", Tags: []string{"orders"}, Auth: true, Signed: true,
			Summary: "Void an authorized order (capture_method MANUAL): the held money goes back to the payer",
			Description: "The order becomes CLOSED with close_reason VOIDED (TRANSACTION.CLOSED). 409 ALREADY_RESOLVED once captured or voided; " +
				"409 HOLD_EXPIRED once the authorization expired; 409 CONFLICT for an order that is not an authorization.",
			Response: payment.Order{}, Status: 200, Errors: append(authErrs, 409)},
		{Method: "POST", Path: "/v1/sandbox/orders/{id}/pay", OperationID: "sandboxPay", Tags: []string{"sandbox"}, Auth: true, Signed: true,
			Summary:     "Pay an order through the simulated channel (sandbox merchants only)",
			Description: "The channel accepts at once and confirms asynchronously; the order's truth arrives by notification and query.",
			Request:     SandboxPayRequest{}, Response: payment.Attempt{}, Status: 202, Errors: append(authErrs, 409)},
		{Method: "POST", Path: "/v1/refunds", OperationID: "createRefund", Tags: []string{"refunds"}, Auth: true, Signed: true,
			Summary: "Refund all or part of a paid order",
			Description: "Names the order by order_id or out_trade_no. Idempotent on out_refund_no: the same out_refund_no with the same body answers 200 with the existing refund; " +
				"with a different body 409 OUT_REFUND_NO_USED naming the differing field. The refunds PROCESSING and SUCCESS of an order never exceed the amount paid (422 LIMIT_EXCEEDED). " +
				"Payments on us are refunded at once (SUCCESS); through a channel the refund is PROCESSING until the channel answers (REFUND.SUCCESS or REFUND.ABNORMAL notification). " +
				"After settlement the refund is paid from the settled balance: if it is short, if_insufficient FAIL answers 422 INSUFFICIENT_FUNDS, WAIT keeps the refund PROCESSING until funds arrive.",
			Request: payment.CreateRefundRequest{}, Response: payment.Refund{}, Status: 201, Errors: append(authErrs, 409, 422, 503)},
		{Method: "GET", Path: "/v1/refunds/{id}", OperationID: "getRefund", Tags: []string{"refunds"}, Auth: true, Signed: true,
			Summary: "Query a refund by paygate id", Response: payment.Refund{}, Status: 200, Errors: authErrs},
		{Method: "GET", Path: "/v1/refunds/out-refund-no/{out_refund_no}", OperationID: "getRefundByOutRefundNo", Tags: []string{"refunds"}, Auth: true, Signed: true,
			Summary: "Query a refund by the merchant's out_refund_no", Response: payment.Refund{}, Status: 200, Errors: authErrs},
		{Method: "POST", Path: "/v1/refunds/{id}/close", OperationID: "closeRefund", Tags: []string{"refunds"}, Auth: true, Signed: true,
			Summary:     "Close a refund still waiting for funds (if_insufficient WAIT)",
			Description: "Nothing had moved; the refund becomes CLOSED (REFUND.CLOSED) and no longer counts against the refundable amount. Idempotent on a closed refund; 409 CONFLICT once the refund reached its channel or ended.",
			Response:    payment.Refund{}, Status: 200, Errors: append(authErrs, 409)},
		{Method: "GET", Path: "/v1/refunds", OperationID: "listRefunds", Tags: []string{"refunds"}, Auth: true, Signed: true,
			Summary: "An order's refunds, newest first (at most 50: one page)", Response: payment.RefundList{}, Status: 200, Errors: authErrs,
			Query: []QueryParam{{"order_id", "the order whose refunds to list (required)"}}},
		{Method: "GET", Path: "/v1/notifications", OperationID: "listNotifications", Tags: []string{"notifications"}, Auth: true, Signed: true,
			Summary: "List notifications with their delivery attempts, newest first", Response: NotificationPage{}, Status: 200, Errors: authErrs,
			Query: []QueryParam{{"cursor", "next_cursor of the previous page"}, {"limit", "page size"}}},
		{Method: "GET", Path: "/v1/notifications/{id}", OperationID: "getNotification", Tags: []string{"notifications"}, Auth: true, Signed: true,
			Summary: "One notification with its delivery attempts", Response: NotificationView{}, Status: 200, Errors: authErrs},
		{Method: "POST", Path: "/v1/notifications/{id}/resend", OperationID: "resendNotification", Tags: []string{"notifications"}, Auth: true, Signed: true,
			Summary: "Deliver a notification again now (same event id)", Response: ResendAck{}, Status: 202, Errors: authErrs},
		{Method: "GET", Path: "/v1/certificates", OperationID: "listCertificates", Tags: []string{"keys"}, Auth: true, Signed: true,
			Summary: "The platform's public keys that sign responses and notifications", Response: CertificateList{}, Status: 200, Errors: authErrs},
		{Method: "POST", Path: "/v1/channels/{channel}/notify", OperationID: "channelCallback", Tags: []string{"channels"}, Signed: true,
			Summary:     "A channel's asynchronous payment result (authenticated by the channel's own signature)",
			Description: "Duplicate and late callbacks are safe: an order is paid once. A forged or mismatched callback changes nothing.",
			Response:    CallbackAck{}, Status: 200, Errors: []int{400, 401, 404, 409, 413, 500}},
		{Method: "GET", Path: "/v1/openapi.json", OperationID: "openAPI", Tags: []string{"meta"},
			Summary: "This document", Status: 200},
	}, append(append(payoutRoutes(authErrs), agreementRoutes(authErrs)...), refundBatchRoutes(authErrs)...)...)
}

// OpenAPISpec generates the OpenAPI 3.1 document of the /v1 API from the
// route table and the Go types of the bodies.
func OpenAPISpec() ([]byte, error) {
	reg := huma.NewMapRegistry("#/components/schemas/", huma.DefaultSchemaNamer)
	doc := &huma.OpenAPI{
		OpenAPI: "3.1.0",
		Info: &huma.Info{Title: "paygate merchant API", Version: "1.0.0",
			Description: "Requests are signed with WECHATPAY2-SHA256-RSA2048 (the WeChat Pay APIv3 scheme); responses carry Wechatpay-Timestamp/-Nonce/-Signature/-Serial. Amounts are integers of minor units. Errors are {code, message, detail?} with stable codes. See docs/API.md."},
		Components: &huma.Components{Schemas: reg, SecuritySchemes: map[string]*huma.SecurityScheme{
			"apiv3": {Type: "apiKey", In: "header", Name: "Authorization",
				Description: `WECHATPAY2-SHA256-RSA2048 mchid="..",nonce_str="..",timestamp="..",serial_no="..",signature=".." over METHOD\nURL\nTIMESTAMP\nNONCE\nBODY\n`},
		}},
	}
	errSchema := reg.Schema(reflect.TypeOf(ErrorBody{}), true, "ErrorBody")
	sigHeaders := map[string]*huma.Param{}
	for _, h := range []string{"Wechatpay-Timestamp", "Wechatpay-Nonce", "Wechatpay-Signature", "Wechatpay-Serial"} {
		sigHeaders[h] = &huma.Param{Schema: &huma.Schema{Type: "string"}}
	}
	one, maxIdemKey := 1, MaxIdempotencyKey
	for _, rt := range Routes() {
		op := &huma.Operation{Method: rt.Method, Path: rt.Path, OperationID: rt.OperationID, Summary: rt.Summary,
			Description: rt.Description, Tags: rt.Tags, Responses: map[string]*huma.Response{}}
		if rt.Auth {
			op.Security = []map[string][]string{{"apiv3": {}}}
		}
		for _, seg := range pathParams(rt.Path) {
			op.Parameters = append(op.Parameters, &huma.Param{Name: seg, In: "path", Required: true, Schema: &huma.Schema{Type: "string"}})
		}
		for _, q := range rt.Query {
			op.Parameters = append(op.Parameters, &huma.Param{Name: q.Name, In: "query", Description: q.Description, Schema: &huma.Schema{Type: "string"}})
		}
		if rt.Auth && rt.Method == http.MethodPost {
			op.Parameters = append(op.Parameters, &huma.Param{Name: IdempotencyHeader, In: "header",
				Description: "Optional. A retry with the same key and the same request gets the first answer again (marked Idempotent-Replayed: true) for 24 hours; the same key with another request is 409 ID_CONFLICT, and while the first still runs 409 CONFLICT.",
				Schema:      &huma.Schema{Type: "string", MinLength: &one, MaxLength: &maxIdemKey}})
		}
		if rt.Request != nil {
			op.RequestBody = &huma.RequestBody{Required: true, Content: map[string]*huma.MediaType{
				"application/json": {Schema: reg.Schema(reflect.TypeOf(rt.Request), true, rt.OperationID+"Request")}}}
		}
		ok := &huma.Response{Description: http.StatusText(rt.Status)}
		if rt.Response != nil {
			ok.Content = map[string]*huma.MediaType{"application/json": {Schema: reg.Schema(reflect.TypeOf(rt.Response), true, rt.OperationID+"Response")}}
		}
		if rt.Signed {
			ok.Headers = sigHeaders
		}
		op.Responses[strconv.Itoa(rt.Status)] = ok
		for _, e := range rt.Errors {
			r := &huma.Response{Description: http.StatusText(e), Content: map[string]*huma.MediaType{"application/json": {Schema: errSchema}}}
			if rt.Signed {
				r.Headers = sigHeaders
			}
			op.Responses[strconv.Itoa(e)] = r
		}
		doc.AddOperation(op)
	}
	b, err := json.MarshalIndent(doc, "", "  ")
	if err != nil {
		return nil, err
	}
	return append(b, '\n'), nil
}

func pathParams(p string) []string {
	var out []string
	for i := 0; i < len(p); i++ {
		if p[i] == '{' {
			j := i + 1
			for j < len(p) && p[j] != '}' {
				j++
			}
			out = append(out, p[i+1:j])
			i = j
		}
	}
	return out
}
