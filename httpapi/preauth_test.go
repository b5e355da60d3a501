package httpapi_test

import (
	"context"
	"net/http"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"paygate"
	"paygate/httpapi"
	"paygate/payment"
)

// fakePreauth holds one authorized order, ord_1 of merchant 1900000001,
// and resolves it once, like payment.Service.
type fakePreauth struct {
	o        payment.Order
	captures []payment.CaptureRequest
}

func (f *fakePreauth) order(mch, id string) error {
	if id != f.o.ID || mch != f.o.MerchantID {
		return paygate.E(paygate.CodeNotFound, "order not found")
	}
	if f.o.Status != payment.StatusAuthorized {
		return paygate.E(paygate.CodeAlreadyResolved, "already resolved")
	}
	return nil
}

func (f *fakePreauth) Capture(_ context.Context, mch, id string, req payment.CaptureRequest) (payment.Order, error) {
	if err := f.order(mch, id); err != nil {
		return payment.Order{}, err
	}
	n := f.o.Amount.Authorized
	if req.Amount != nil {
		if req.Amount.Total <= 0 {
			return payment.Order{}, paygate.EField(paygate.CodeAmountNotPositive, "amount.total", "must be positive")
		}
		if req.Amount.Total > n {
			return payment.Order{}, paygate.EField(paygate.CodeLimitExceeded, "amount.total", "beyond the amount authorized")
		}
		n = req.Amount.Total
	}
	f.captures = append(f.captures, req)
	f.o.Status, f.o.Amount.Captured = payment.StatusSuccess, n
	return f.o, nil
}

func (f *fakePreauth) Void(_ context.Context, mch, id string) (payment.Order, error) {
	if err := f.order(mch, id); err != nil {
		return payment.Order{}, err
	}
	f.o.Status, f.o.CloseReason = payment.StatusClosed, payment.CloseVoided
	return f.o, nil
}

func preauthServer(pa *fakePreauth) http.Handler {
	mux := http.NewServeMux()
	v := &httpapi.V1{Orders: &fakeOrders{created: map[string]payment.Order{}}, Notifications: fakeNotifications{}, Authenticate: asMerchant}
	if pa != nil {
		v.Preauth = pa
	}
	v.Register(mux)
	return mux
}

func authorized() *fakePreauth {
	return &fakePreauth{o: payment.Order{ID: "ord_1", MerchantID: "1900000001", Status: payment.StatusAuthorized,
		CaptureMethod: payment.CaptureManual, Amount: payment.Amount{Total: 1000, Currency: "CNY", Authorized: 1000}}}
}

// TestCaptureDecoding: bad capture bodies are refused before the use case
// with the error shape and the field at fault; an empty body or {}
// captures everything.
func TestCaptureDecoding(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name, body string
		status     int
		code       string
		field      string
		captured   int64
	}{
		{"empty body: all", ``, 200, "", "", 1000},
		{"empty object: all", `{}`, 200, "", "", 1000},
		{"part", `{"amount":{"total":600}}`, 200, "", "", 600},
		{"part with currency", `{"amount":{"total":600,"currency":"CNY"}}`, 200, "", "", 600},
		{"zero", `{"amount":{"total":0}}`, 400, "AMOUNT_NOT_POSITIVE", "amount.total", 0},
		{"negative", `{"amount":{"total":-5}}`, 400, "AMOUNT_NOT_POSITIVE", "amount.total", 0},
		{"beyond authorized", `{"amount":{"total":1001}}`, 422, "LIMIT_EXCEEDED", "amount.total", 0},
		{"malformed", `{"amount":`, 400, "INVALID_ARGUMENT", "", 0},
		{"not an object", `[]`, 400, "INVALID_ARGUMENT", "", 0},
		{"trailing data", `{}{}`, 400, "INVALID_ARGUMENT", "", 0},
		{"string amount", `{"amount":{"total":"600"}}`, 400, "INVALID_ARGUMENT", "amount.total", 0},
		{"fractional amount", `{"amount":{"total":0.5}}`, 400, "INVALID_ARGUMENT", "amount.total", 0},
		{"overflowing amount", `{"amount":{"total":9223372036854775808}}`, 400, "INVALID_ARGUMENT", "amount.total", 0},
		{"amount as a number", `{"amount":600}`, 400, "INVALID_ARGUMENT", "amount", 0},
		{"number as currency", `{"amount":{"total":1,"currency":156}}`, 400, "INVALID_ARGUMENT", "amount.currency", 0},
		{"unknown field", `{"amount":{"total":1},"final":true}`, 400, "INVALID_ARGUMENT", "final", 0},
		{"oversized", `{"amount":{"total":1,"currency":"` + strings.Repeat("x", httpapi.MaxBody) + `"}}`, 413, "TOO_LARGE", "", 0},
	}
	for _, c := range cases {
		pa := authorized()
		status, body := call(t, preauthServer(pa), "POST", "/v1/orders/ord_1/capture", "1900000001", c.body)
		require.Equal(t, c.status, status, c.name)
		if c.code != "" {
			require.Equal(t, c.code, body["code"], c.name)
			require.NotEmpty(t, body["message"], c.name)
			if c.field != "" {
				require.Equal(t, c.field, body["detail"].(map[string]any)["field"], c.name)
			}
			require.Equal(t, payment.StatusAuthorized, pa.o.Status, "%s: nothing changed", c.name)
			continue
		}
		require.Equal(t, "SUCCESS", body["status"], c.name)
		require.Equal(t, float64(c.captured), body["amount"].(map[string]any)["captured"], c.name)
		require.Equal(t, "MANUAL", body["capture_method"], c.name)
	}
}

func TestPreauthRoutes(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name, method, path, mch, body string
		status                        int
		code                          string
	}{
		{"void", "POST", "/v1/orders/ord_1/void", "1900000001", "", 200, ""},
		{"void with {}", "POST", "/v1/orders/ord_1/void", "1900000001", "{}", 200, ""},
		{"void with a body", "POST", "/v1/orders/ord_1/void", "1900000001", `{"reason":"x"}`, 400, "INVALID_ARGUMENT"},
		{"void malformed", "POST", "/v1/orders/ord_1/void", "1900000001", `{`, 400, "INVALID_ARGUMENT"},
		{"void oversized", "POST", "/v1/orders/ord_1/void", "1900000001", `{"x":"` + strings.Repeat("x", httpapi.MaxBody) + `"}`, 413, "TOO_LARGE"},
		{"another merchant's capture", "POST", "/v1/orders/ord_1/capture", "1900000002", "", 404, "NOT_FOUND"},
		{"another merchant's void", "POST", "/v1/orders/ord_1/void", "1900000002", "", 404, "NOT_FOUND"},
		{"unknown order", "POST", "/v1/orders/ord_9/capture", "1900000001", "", 404, "NOT_FOUND"},
		{"unsigned capture", "POST", "/v1/orders/ord_1/capture", "", "", 401, "UNAUTHENTICATED"},
		{"unsigned void", "POST", "/v1/orders/ord_1/void", "", "", 401, "UNAUTHENTICATED"},
		{"GET capture", "GET", "/v1/orders/ord_1/capture", "1900000001", "", 405, "METHOD_NOT_ALLOWED"},
		{"DELETE void", "DELETE", "/v1/orders/ord_1/void", "1900000001", "", 405, "METHOD_NOT_ALLOWED"},
	}
	for _, c := range cases {
		pa := authorized()
		status, body := call(t, preauthServer(pa), c.method, c.path, c.mch, c.body)
		require.Equal(t, c.status, status, c.name)
		if c.code != "" {
			require.Equal(t, c.code, body["code"], c.name)
			require.Equal(t, payment.StatusAuthorized, pa.o.Status, "%s: nothing changed", c.name)
		} else {
			require.Equal(t, "CLOSED", body["status"], c.name)
			require.Equal(t, "VOIDED", body["close_reason"], c.name)
		}
	}

	// Resolved once: the second capture or void is 409 ALREADY_RESOLVED.
	pa := authorized()
	h := preauthServer(pa)
	status, _ := call(t, h, "POST", "/v1/orders/ord_1/capture", "1900000001", `{"amount":{"total":300}}`)
	require.Equal(t, 200, status)
	for _, p := range []string{"/v1/orders/ord_1/capture", "/v1/orders/ord_1/void"} {
		status, body := call(t, h, "POST", p, "1900000001", "")
		require.Equal(t, 409, status, p)
		require.Equal(t, "ALREADY_RESOLVED", body["code"], p)
	}
	require.Len(t, pa.captures, 1)

	// Without the use case the routes answer 404.
	status, body := call(t, preauthServer(nil), "POST", "/v1/orders/ord_1/capture", "1900000001", "")
	require.Equal(t, 404, status)
	require.Equal(t, "NOT_FOUND", body["code"])
}

func FuzzDecodeCapture(f *testing.F) {
	f.Add(`{"amount":{"total":1,"currency":"CNY"}}`)
	f.Add(`{"amount":{"total":1e400}}`)
	f.Add(`{"amount":null}`)
	f.Fuzz(func(t *testing.T, s string) {
		var req payment.CaptureRequest
		err := httpapi.DecodeJSON([]byte(s), &req)
		if err != nil {
			require.Equal(t, paygate.CodeInvalidArgument, paygate.CodeOf(err))
			require.Less(t, len(err.Error()), 300, "errors never echo long input")
		}
	})
}
