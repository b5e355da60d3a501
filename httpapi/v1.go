package httpapi

import (
	"context"
	"maps"
	"net/http"
	"strconv"
	"strings"
	"time"

	"paygate"
	"paygate/notify"
	"paygate/payment"
)

// Orders is what the /v1 order routes call; *payment.Service implements it.
type Orders interface {
	Create(ctx context.Context, merchantID string, req payment.CreateRequest) (payment.Order, bool, error)
	Get(ctx context.Context, merchantID, id string) (payment.Order, error)
	GetByOutTradeNo(ctx context.Context, merchantID, outTradeNo string) (payment.Order, error)
	Close(ctx context.Context, merchantID, orderID string) (payment.Order, error)
	List(ctx context.Context, merchantID string, req payment.ListRequest) (payment.Page, error)
	SandboxPay(ctx context.Context, merchantID, orderID, outcome string) (payment.Attempt, error)
	Callback(ctx context.Context, channelName string, h http.Header, body []byte) (payment.Order, error)
}

// Notifications is what the /v1 notification routes call;
// *notify.Service implements it.
type Notifications interface {
	List(ctx context.Context, merchantID, cursor string, limit int) (notify.Page, error)
	Get(ctx context.Context, merchantID, eventID string) (notify.Record, error)
	Resend(ctx context.Context, merchantID, eventID string) error
}

// V1 serves the merchant open API under /v1. Register mounts it.
type V1 struct {
	Orders        Orders
	Notifications Notifications
	// Refunds serves the refund routes; nil answers them 404.
	Refunds Refunds
	// Preauth serves capture and void of manual-capture orders; nil
	// answers them 404.
	Preauth Preauth
	// RefundBatches serves the refund batch routes; nil answers them 404.
	RefundBatches RefundBatches
	// Agreements serves the agreement (mandate) routes; nil answers them
	// 404.
	Agreements Agreements
	// Payouts serves the payout batch routes; nil answers them 404.
	Payouts Payouts
	// Certificates serves GET /v1/certificates (the platform public keys).
	Certificates http.Handler
	// Idempotency keeps the answers of merchant POSTs sent with an
	// Idempotency-Key (see Idempotent); nil ignores the header.
	Idempotency IdempotencyStore
	// Clock dates Idempotency-Key rows; nil means the system clock.
	Clock paygate.Clock
	// Authenticate wraps the routes merchants call with their signature;
	// the handlers find the merchant with MerchantFrom.
	Authenticate func(http.Handler) http.Handler
	// Sign wraps every /v1 route to sign its responses, errors included.
	Sign func(http.Handler) http.Handler
}

// SandboxPayRequest is the body of POST /v1/sandbox/orders/{id}/pay.
type SandboxPayRequest struct {
	// Outcome tells the simulated channel what to do: success, fail,
	// timeout (accept, never call back; a later query answers), duplicate
	// (confirm twice) or late (confirm after the order expired).
	Outcome string `json:"outcome" enum:"success,fail,timeout,duplicate,late"`
}

// CallbackAck answers a channel's callback.
type CallbackAck struct {
	Code string `json:"code"`
}

// NotificationView is a notification as the API lists it: its delivery
// state and attempts, without its payload.
type NotificationView struct {
	ID            string              `json:"id"`
	EventType     string              `json:"event_type"`
	URL           string              `json:"notify_url"`
	Status        string              `json:"status"`
	CreateTime    time.Time           `json:"create_time"`
	NextAttemptAt time.Time           `json:"next_attempt_time,omitzero"`
	DeliveredAt   time.Time           `json:"delivered_time,omitzero"`
	Attempts      []NotificationTrial `json:"attempts"`
}

// NotificationTrial is one delivery attempt.
type NotificationTrial struct {
	Number     int       `json:"number"`
	Outcome    string    `json:"outcome"`
	StartTime  time.Time `json:"start_time"`
	DurationMS int64     `json:"duration_ms"`
	HTTPStatus int       `json:"http_status,omitempty"`
	Error      string    `json:"error,omitempty"`
}

// NotificationPage is one page of notifications, newest first.
type NotificationPage struct {
	Data       []NotificationView `json:"data"`
	NextCursor string             `json:"next_cursor,omitempty"`
}

// ResendAck answers a resend request.
type ResendAck struct {
	ID     string `json:"id"`
	Status string `json:"status"`
}

func notificationView(r notify.Record) NotificationView {
	v := NotificationView{ID: r.ID, EventType: r.EventType, URL: r.URL, Status: string(r.Status), CreateTime: r.CreatedAt,
		NextAttemptAt: r.NextAttemptAt, DeliveredAt: r.DeliveredAt, Attempts: []NotificationTrial{}}
	for _, a := range r.Attempts {
		v.Attempts = append(v.Attempts, NotificationTrial{Number: a.Number, Outcome: string(a.Outcome), StartTime: a.StartedAt,
			DurationMS: a.Duration.Milliseconds(), HTTPStatus: a.HTTPStatus, Error: string(a.ErrorClass)})
	}
	return v
}

// merchantOf returns the authenticated merchant; a route mounted without
// authentication answers 401 rather than serve anyone.
func merchantOf(w http.ResponseWriter, r *http.Request) (paygate.Merchant, bool) {
	m, ok := MerchantFrom(r.Context())
	if !ok {
		WriteError(w, paygate.E(paygate.CodeUnauthenticated, "this route needs a signed request"))
	}
	return m, ok
}

func (v *V1) createOrder(w http.ResponseWriter, r *http.Request) {
	m, ok := merchantOf(w, r)
	if !ok {
		return
	}
	b, err := readBody(w, r)
	if err != nil {
		WriteError(w, err)
		return
	}
	var req payment.CreateRequest
	if err := DecodeJSON(b, &req); err != nil {
		WriteError(w, err)
		return
	}
	o, replay, err := v.Orders.Create(r.Context(), m.ID, req)
	if err != nil {
		WriteError(w, err)
		return
	}
	status := http.StatusCreated
	if replay {
		status = http.StatusOK
	}
	writeJSON(w, status, o)
}

func (v *V1) getOrder(w http.ResponseWriter, r *http.Request) {
	if m, ok := merchantOf(w, r); ok {
		o, err := v.Orders.Get(r.Context(), m.ID, r.PathValue("id"))
		respond(w, o, err)
	}
}

func (v *V1) getOrderByOutTradeNo(w http.ResponseWriter, r *http.Request) {
	if m, ok := merchantOf(w, r); ok {
		o, err := v.Orders.GetByOutTradeNo(r.Context(), m.ID, r.PathValue("out_trade_no"))
		respond(w, o, err)
	}
}

func (v *V1) closeOrder(w http.ResponseWriter, r *http.Request) {
	m, ok := merchantOf(w, r)
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
	o, err := v.Orders.Close(r.Context(), m.ID, r.PathValue("id"))
	respond(w, o, err)
}

func (v *V1) listOrders(w http.ResponseWriter, r *http.Request) {
	m, ok := merchantOf(w, r)
	if !ok {
		return
	}
	q := r.URL.Query()
	req := payment.ListRequest{Status: payment.Status(q.Get("status")), Cursor: q.Get("cursor")}
	var err error
	if req.Limit, err = intParam(q.Get("limit"), "limit"); err != nil {
		WriteError(w, err)
		return
	}
	for _, p := range []struct {
		name string
		to   *time.Time
	}{{"created_from", &req.CreatedFrom}, {"created_to", &req.CreatedTo}} {
		if s := q.Get(p.name); s != "" {
			if *p.to, err = time.Parse(time.RFC3339, s); err != nil {
				WriteError(w, paygate.EField(paygate.CodeInvalidArgument, p.name, "%s must be an RFC 3339 time", p.name))
				return
			}
		}
	}
	page, err := v.Orders.List(r.Context(), m.ID, req)
	if err == nil && page.Orders == nil {
		page.Orders = []payment.Order{}
	}
	respond(w, page, err)
}

func intParam(s, name string) (int, error) {
	if s == "" {
		return 0, nil
	}
	n, err := strconv.Atoi(s)
	if err != nil || n < 0 {
		return 0, paygate.EField(paygate.CodeInvalidArgument, name, "%s must be a non-negative integer", name)
	}
	return n, nil
}

func (v *V1) sandboxPay(w http.ResponseWriter, r *http.Request) {
	m, ok := merchantOf(w, r)
	if !ok {
		return
	}
	b, err := readBody(w, r)
	if err != nil {
		WriteError(w, err)
		return
	}
	var req SandboxPayRequest
	if err := DecodeJSON(b, &req); err != nil {
		WriteError(w, err)
		return
	}
	a, err := v.Orders.SandboxPay(r.Context(), m.ID, r.PathValue("id"), req.Outcome)
	if err != nil {
		WriteError(w, err)
		return
	}
	writeJSON(w, http.StatusAccepted, a)
}

func (v *V1) channelCallback(w http.ResponseWriter, r *http.Request) {
	b, err := readBody(w, r)
	if err != nil {
		WriteError(w, err)
		return
	}
	if _, err := v.Orders.Callback(r.Context(), r.PathValue("channel"), r.Header, b); err != nil {
		WriteError(w, err)
		return
	}
	writeJSON(w, http.StatusOK, CallbackAck{Code: "SUCCESS"})
}

func (v *V1) listNotifications(w http.ResponseWriter, r *http.Request) {
	m, ok := merchantOf(w, r)
	if !ok {
		return
	}
	limit, err := intParam(r.URL.Query().Get("limit"), "limit")
	if err != nil {
		WriteError(w, err)
		return
	}
	page, err := v.Notifications.List(r.Context(), m.ID, r.URL.Query().Get("cursor"), limit)
	if err != nil {
		WriteError(w, err)
		return
	}
	out := NotificationPage{Data: []NotificationView{}, NextCursor: page.NextCursor}
	for _, rec := range page.Events {
		out.Data = append(out.Data, notificationView(rec))
	}
	writeJSON(w, http.StatusOK, out)
}

func (v *V1) getNotification(w http.ResponseWriter, r *http.Request) {
	if m, ok := merchantOf(w, r); ok {
		rec, err := v.Notifications.Get(r.Context(), m.ID, r.PathValue("id"))
		if err != nil {
			WriteError(w, err)
			return
		}
		writeJSON(w, http.StatusOK, notificationView(rec))
	}
}

func (v *V1) resendNotification(w http.ResponseWriter, r *http.Request) {
	if m, ok := merchantOf(w, r); ok {
		id := r.PathValue("id")
		if err := v.Notifications.Resend(r.Context(), m.ID, id); err != nil {
			WriteError(w, err)
			return
		}
		writeJSON(w, http.StatusAccepted, ResendAck{ID: id, Status: "PENDING"})
	}
}

func respond(w http.ResponseWriter, v any, err error) {
	if err != nil {
		WriteError(w, err)
		return
	}
	writeJSON(w, http.StatusOK, v)
}

func (v *V1) openAPI(w http.ResponseWriter, r *http.Request) {
	b, err := OpenAPISpec()
	if err != nil {
		WriteError(w, paygate.Internal(err))
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.Write(b)
}

// Register mounts the /v1 routes on mux: every route signs its responses;
// merchant routes authenticate first; the channel callback authenticates by
// the channel's own signature inside payment.Service.Callback.
func (v *V1) Register(mux *http.ServeMux) {
	id := func(h http.Handler) http.Handler { return h }
	sign, auth := v.Sign, v.Authenticate
	if sign == nil {
		sign = id
	}
	if auth == nil {
		auth = id
	}
	handlers := map[string]http.Handler{
		"createOrder": http.HandlerFunc(v.createOrder), "getOrder": http.HandlerFunc(v.getOrder),
		"getOrderByOutTradeNo": http.HandlerFunc(v.getOrderByOutTradeNo), "closeOrder": http.HandlerFunc(v.closeOrder),
		"listOrders": http.HandlerFunc(v.listOrders), "sandboxPay": http.HandlerFunc(v.sandboxPay),
		"channelCallback": http.HandlerFunc(v.channelCallback), "listNotifications": http.HandlerFunc(v.listNotifications),
		"getNotification": http.HandlerFunc(v.getNotification), "resendNotification": http.HandlerFunc(v.resendNotification),
		"openAPI":      http.HandlerFunc(v.openAPI),
		"createRefund": http.HandlerFunc(v.createRefund), "getRefund": http.HandlerFunc(v.getRefund),
		"getRefundByOutRefundNo": http.HandlerFunc(v.getRefundByOutRefundNo), "listRefunds": http.HandlerFunc(v.listRefunds),
		"closeRefund": http.HandlerFunc(v.closeRefund), "captureOrder": http.HandlerFunc(v.captureOrder), "voidOrder": http.HandlerFunc(v.voidOrder),
	}
	maps.Copy(handlers, v.agreementHandlers())
	if v.Certificates != nil {
		handlers["listCertificates"] = v.Certificates
	}
	maps.Copy(handlers, v.payoutHandlers())
	maps.Copy(handlers, v.refundBatchHandlers())
	for _, rt := range Routes() {
		h := handlers[rt.OperationID]
		if h == nil {
			continue
		}
		if rt.Auth && rt.Method == http.MethodPost && v.Idempotency != nil {
			clock := v.Clock
			if clock == nil {
				clock = paygate.SystemClock{}
			}
			h = Idempotent(v.Idempotency, clock, nil, h)
		}
		if rt.Auth {
			h = auth(h)
		}
		if rt.MaxBody > 0 {
			h = withBodyLimit(rt.MaxBody, h)
		}
		if rt.Signed {
			h = sign(h)
		}
		mux.Handle(rt.Method+" "+rt.Path, h)
	}
	// Unknown /v1 paths and wrong methods answer like every /v1 route:
	// signed, in the error shape.
	mux.Handle("/v1/", sign(http.HandlerFunc(v1NoRoute)))
}

// wired returns a use case of V1, answering 404 as for an unknown path
// when it is not wired (nil), so that a server without it shows no sign of
// the routes.
func wired[T any](w http.ResponseWriter, uc T) (T, bool) {
	if any(uc) == nil {
		WriteError(w, paygate.E(paygate.CodeNotFound, "no such API path"))
		return uc, false
	}
	return uc, true
}

// v1NoRoute answers a /v1 request no route matched: 405 when the path
// exists with another method (listing them in Allow), else 404.
func v1NoRoute(w http.ResponseWriter, r *http.Request) {
	var allow []string
	for _, rt := range Routes() {
		if pathMatches(rt.Path, r.URL.Path) && rt.Method != r.Method {
			allow = append(allow, rt.Method)
		}
	}
	if len(allow) == 0 {
		WriteError(w, paygate.E(paygate.CodeNotFound, "no such API path"))
		return
	}
	w.Header().Set("Allow", strings.Join(allow, ", "))
	WriteError(w, paygate.E(paygate.CodeMethodNotAllowed, "method not allowed; see the Allow header"))
}

// pathMatches reports whether path fits pattern, whose {name} segments
// match any one non-empty segment.
func pathMatches(pattern, path string) bool {
	ps, xs := strings.Split(pattern, "/"), strings.Split(path, "/")
	if len(ps) != len(xs) {
		return false
	}
	for i := range ps {
		if strings.HasPrefix(ps[i], "{") {
			if xs[i] == "" {
				return false
			}
		} else if ps[i] != xs[i] {
			return false
		}
	}
	return true
}
