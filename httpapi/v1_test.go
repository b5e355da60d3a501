package httpapi_test

import (
	"context"
	"encoding/json"
	"flag"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"paygate"
	"paygate/httpapi"
	"paygate/notify"
	"paygate/payment"
)

var updateSpec = flag.Bool("update", false, "rewrite docs/openapi.json from the code")

// TestOpenAPIUpToDate fails when the committed spec differs from the one the
// route table and types generate. Regenerate with
// `go test ./httpapi -run TestOpenAPIUpToDate -update`.
func TestOpenAPIUpToDate(t *testing.T) {
	spec, err := httpapi.OpenAPISpec()
	require.NoError(t, err)
	const path = "../docs/openapi.json"
	if *updateSpec {
		require.NoError(t, os.WriteFile(path, spec, 0o644))
	}
	committed, err := os.ReadFile(path)
	require.NoError(t, err)
	require.Equal(t, string(committed), string(spec), "docs/openapi.json is stale: go test ./httpapi -run TestOpenAPIUpToDate -update")
	var doc map[string]any
	require.NoError(t, json.Unmarshal(spec, &doc))
	require.Equal(t, "3.1.0", doc["openapi"])
}

type fakeOrders struct {
	created map[string]payment.Order
}

func (f *fakeOrders) Create(_ context.Context, mch string, req payment.CreateRequest) (payment.Order, bool, error) {
	if req.Amount.Total <= 0 {
		return payment.Order{}, false, paygate.EField(paygate.CodeAmountNotPositive, "amount.total", "amount must be positive")
	}
	if o, ok := f.created[mch+req.OutTradeNo]; ok {
		return o, true, nil
	}
	o := payment.Order{ID: "ord_1", MerchantID: mch, OutTradeNo: req.OutTradeNo, Status: payment.StatusNotPay,
		Amount: payment.Amount{Total: req.Amount.Total, Currency: "CNY"}}
	f.created[mch+req.OutTradeNo] = o
	return o, false, nil
}
func (f *fakeOrders) Get(_ context.Context, mch, id string) (payment.Order, error) {
	for _, o := range f.created {
		if o.ID == id && o.MerchantID == mch {
			return o, nil
		}
	}
	return payment.Order{}, paygate.E(paygate.CodeNotFound, "order not found")
}
func (f *fakeOrders) GetByOutTradeNo(_ context.Context, mch, no string) (payment.Order, error) {
	if o, ok := f.created[mch+no]; ok {
		return o, nil
	}
	return payment.Order{}, paygate.E(paygate.CodeNotFound, "order not found")
}
func (f *fakeOrders) Close(ctx context.Context, mch, id string) (payment.Order, error) {
	return f.Get(ctx, mch, id)
}
func (f *fakeOrders) List(_ context.Context, mch string, req payment.ListRequest) (payment.Page, error) {
	if req.Limit > 100 {
		return payment.Page{}, paygate.EField(paygate.CodeInvalidArgument, "limit", "too big")
	}
	return payment.Page{}, nil
}
func (f *fakeOrders) SandboxPay(_ context.Context, mch, id, outcome string) (payment.Attempt, error) {
	return payment.Attempt{ID: "pay_1", OrderID: id}, nil
}
func (f *fakeOrders) Callback(_ context.Context, ch string, h http.Header, b []byte) (payment.Order, error) {
	return payment.Order{}, paygate.E(paygate.CodeUnauthenticated, "bad callback signature")
}

type fakeNotifications struct{}

func (fakeNotifications) List(context.Context, string, string, int) (notify.Page, error) {
	return notify.Page{}, nil
}
func (fakeNotifications) Get(context.Context, string, string) (notify.Record, error) {
	return notify.Record{}, paygate.E(paygate.CodeNotFound, "notification not found")
}
func (fakeNotifications) Resend(context.Context, string, string) error { return nil }

// asMerchant stands in for the signature check: it authenticates the
// merchant named by the X-Test-Mch header.
func asMerchant(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if id := r.Header.Get("X-Test-Mch"); id != "" {
			r = r.WithContext(httpapi.WithMerchant(r.Context(), paygate.Merchant{ID: id, Status: paygate.MerchantSandbox}))
		}
		next.ServeHTTP(w, r)
	})
}

func v1Server(t *testing.T) http.Handler {
	mux := http.NewServeMux()
	(&httpapi.V1{Orders: &fakeOrders{created: map[string]payment.Order{}}, Notifications: fakeNotifications{}, Authenticate: asMerchant}).Register(mux)
	return mux
}

func call(t *testing.T, h http.Handler, method, path, mch, body string) (int, map[string]any) {
	t.Helper()
	req := httptest.NewRequest(method, path, strings.NewReader(body))
	if mch != "" {
		req.Header.Set("X-Test-Mch", mch)
	}
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	var out map[string]any
	_ = json.Unmarshal(rec.Body.Bytes(), &out)
	return rec.Code, out
}

func TestCreateOrderDecoding(t *testing.T) {
	t.Parallel()
	h := v1Server(t)
	good := `{"out_trade_no":"T100001","description":"tea","amount":{"total":100,"currency":"CNY"},"notify_url":"https://m.example/n"}`
	cases := []struct {
		name, body string
		status     int
		code       string
		field      string
	}{
		{"created", good, 201, "", ""},
		{"replayed", good, 200, "", ""},
		{"malformed", `{"out_trade_no":`, 400, "INVALID_ARGUMENT", ""},
		{"not an object", `[1,2]`, 400, "INVALID_ARGUMENT", ""},
		{"empty", ``, 400, "INVALID_ARGUMENT", ""},
		{"trailing data", good + `{}`, 400, "INVALID_ARGUMENT", ""},
		{"string amount", `{"out_trade_no":"T1","amount":{"total":"100"}}`, 400, "INVALID_ARGUMENT", "amount.total"},
		{"fractional amount", `{"out_trade_no":"T1","amount":{"total":1.5}}`, 400, "INVALID_ARGUMENT", "amount.total"},
		{"overflowing amount", `{"out_trade_no":"T1","amount":{"total":100000000000000000000}}`, 400, "INVALID_ARGUMENT", "amount.total"},
		{"number as out_trade_no", `{"out_trade_no":5}`, 400, "INVALID_ARGUMENT", "out_trade_no"},
		{"unknown field", `{"out_trade_no":"T1","tip":1}`, 400, "INVALID_ARGUMENT", "tip"},
		{"zero amount", `{"out_trade_no":"T2","amount":{"total":0}}`, 400, "AMOUNT_NOT_POSITIVE", "amount.total"},
		{"oversized", `{"description":"` + strings.Repeat("x", httpapi.MaxBody) + `"}`, 413, "TOO_LARGE", ""},
	}
	for _, c := range cases {
		status, body := call(t, h, "POST", "/v1/orders", "1900000001", c.body)
		require.Equal(t, c.status, status, c.name)
		if c.code != "" {
			require.Equal(t, c.code, body["code"], c.name)
			require.NotEmpty(t, body["message"], c.name)
			if c.field != "" {
				require.Equal(t, c.field, body["detail"].(map[string]any)["field"], c.name)
			}
		}
	}
}

func TestV1Routes(t *testing.T) {
	t.Parallel()
	h := v1Server(t)
	status, _ := call(t, h, "POST", "/v1/orders", "1900000001", `{"out_trade_no":"T100001","amount":{"total":100}}`)
	require.Equal(t, 201, status)
	cases := []struct {
		method, path, mch, body string
		status                  int
		code                    string
	}{
		{"GET", "/v1/orders/ord_1", "1900000001", "", 200, ""},
		{"GET", "/v1/orders/ord_1", "1900000002", "", 404, "NOT_FOUND"}, // another merchant's order
		{"GET", "/v1/orders/ord_1", "", "", 401, "UNAUTHENTICATED"},
		{"GET", "/v1/orders/out-trade-no/T100001", "1900000001", "", 200, ""},
		{"POST", "/v1/orders/ord_1/close", "1900000001", "", 200, ""},
		{"POST", "/v1/orders/ord_1/close", "1900000001", `{"x":1}`, 400, "INVALID_ARGUMENT"},
		{"GET", "/v1/orders?limit=10&status=NOTPAY", "1900000001", "", 200, ""},
		{"GET", "/v1/orders?limit=-1", "1900000001", "", 400, "INVALID_ARGUMENT"},
		{"GET", "/v1/orders?limit=1000", "1900000001", "", 400, "INVALID_ARGUMENT"},
		{"GET", "/v1/orders?created_from=yesterday", "1900000001", "", 400, "INVALID_ARGUMENT"},
		{"POST", "/v1/sandbox/orders/ord_1/pay", "1900000001", `{"outcome":"success"}`, 202, ""},
		{"POST", "/v1/sandbox/orders/ord_1/pay", "1900000001", `{"outcome":7}`, 400, "INVALID_ARGUMENT"},
		{"POST", "/v1/channels/sim/notify", "", `{}`, 401, "UNAUTHENTICATED"},
		{"GET", "/v1/notifications", "1900000001", "", 200, ""},
		{"GET", "/v1/notifications/evt_x", "1900000001", "", 404, "NOT_FOUND"},
		{"POST", "/v1/notifications/evt_x/resend", "1900000001", "", 202, ""},
		{"GET", "/v1/openapi.json", "", "", 200, ""},
		{"GET", "/v1/nothing-here", "1900000001", "", 404, "NOT_FOUND"},
		{"DELETE", "/v1/orders/ord_1", "1900000001", "", 405, "METHOD_NOT_ALLOWED"},
		{"GET", "/v1/orders/ord_1/close", "1900000001", "", 405, "METHOD_NOT_ALLOWED"},
	}
	for _, c := range cases {
		status, body := call(t, h, c.method, c.path, c.mch, c.body)
		require.Equal(t, c.status, status, "%s %s", c.method, c.path)
		if c.code != "" {
			require.Equal(t, c.code, body["code"], "%s %s", c.method, c.path)
		}
	}
	_, list := call(t, h, "GET", "/v1/orders", "1900000001", "")
	require.Equal(t, []any{}, list["data"], "an empty page lists [] not null")
}

func FuzzDecodeCreateOrder(f *testing.F) {
	f.Add(`{"out_trade_no":"T1","amount":{"total":1,"currency":"CNY"}}`)
	f.Add(`{"amount":{"total":1e400}}`)
	f.Add(`{"metadata":{"a":"b"},"time_expire":"2026-01-01T00:00:00Z"}`)
	f.Fuzz(func(t *testing.T, s string) {
		var req payment.CreateRequest
		err := httpapi.DecodeJSON([]byte(s), &req)
		if err != nil {
			require.Equal(t, paygate.CodeInvalidArgument, paygate.CodeOf(err))
			require.Less(t, len(err.Error()), 300, "errors never echo long input")
		}
	})
}
