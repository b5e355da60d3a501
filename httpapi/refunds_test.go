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

// fakeRefunds keeps refunds by merchant and out_refund_no, replays
// identical requests and refuses a reused number, like payment.Service.
type fakeRefunds struct {
	byNo map[string]payment.Refund
	reqs map[string]payment.CreateRefundRequest
}

func (f *fakeRefunds) Refund(_ context.Context, mch string, req payment.CreateRefundRequest) (payment.Refund, bool, error) {
	if req.Amount.Refund <= 0 {
		return payment.Refund{}, false, paygate.EField(paygate.CodeAmountNotPositive, "amount.refund", "must be positive")
	}
	if req.Amount.Currency != "" && req.Amount.Currency != "CNY" {
		return payment.Refund{}, false, paygate.EField(paygate.CodeUnknownCurrency, "amount.currency", "unknown")
	}
	if r, ok := f.byNo[mch+req.OutRefundNo]; ok {
		if f.reqs[mch+req.OutRefundNo] != req {
			return payment.Refund{}, false, paygate.EField(paygate.CodeOutRefundNoUsed, "amount.refund", "used")
		}
		return r, true, nil
	}
	r := payment.Refund{ID: "rfd_1", MerchantID: mch, OutRefundNo: req.OutRefundNo, OrderID: req.OrderID, Status: payment.RefundProcessing,
		Amount: payment.RefundAmount{Refund: req.Amount.Refund, Total: req.Amount.Total, PayerRefund: req.Amount.Refund, Currency: "CNY"}}
	f.byNo[mch+req.OutRefundNo], f.reqs[mch+req.OutRefundNo] = r, req
	return r, false, nil
}

func (f *fakeRefunds) GetRefund(_ context.Context, mch, id string) (payment.Refund, error) {
	for _, r := range f.byNo {
		if r.ID == id && r.MerchantID == mch {
			return r, nil
		}
	}
	return payment.Refund{}, paygate.E(paygate.CodeNotFound, "refund not found")
}

func (f *fakeRefunds) GetRefundByOutRefundNo(_ context.Context, mch, no string) (payment.Refund, error) {
	if r, ok := f.byNo[mch+no]; ok {
		return r, nil
	}
	return payment.Refund{}, paygate.E(paygate.CodeNotFound, "refund not found")
}

func (f *fakeRefunds) OrderRefunds(_ context.Context, mch, orderID string) (payment.RefundList, error) {
	if orderID != "ord_1" {
		return payment.RefundList{}, paygate.E(paygate.CodeNotFound, "order not found")
	}
	return payment.RefundList{}, nil
}

func (f *fakeRefunds) CloseRefund(ctx context.Context, mch, id string) (payment.Refund, error) {
	r, err := f.GetRefund(ctx, mch, id)
	if err == nil {
		err = paygate.E(paygate.CodeConflict, "not waiting for funds")
	}
	return r, err
}

func refundServer(t *testing.T) http.Handler {
	mux := http.NewServeMux()
	(&httpapi.V1{Orders: &fakeOrders{created: map[string]payment.Order{}}, Notifications: fakeNotifications{},
		Refunds: &fakeRefunds{byNo: map[string]payment.Refund{}, reqs: map[string]payment.CreateRefundRequest{}}, Authenticate: asMerchant}).Register(mux)
	return mux
}

// TestCreateRefundDecoding: bad bodies are refused before the use case
// with the error shape and the field at fault; a create answers 201, an
// identical replay 200, a reused number 409.
func TestCreateRefundDecoding(t *testing.T) {
	t.Parallel()
	h := refundServer(t)
	good := `{"order_id":"ord_1","out_refund_no":"R100001","reason":"退货","amount":{"refund":100,"total":1000,"currency":"CNY"},"if_insufficient":"WAIT"}`
	cases := []struct {
		name, body string
		status     int
		code       string
		field      string
	}{
		{"created", good, 201, "", ""},
		{"replayed", good, 200, "", ""},
		{"reused number", strings.Replace(good, `"refund":100`, `"refund":101`, 1), 409, "OUT_REFUND_NO_USED", "amount.refund"},
		{"malformed", `{"out_refund_no":`, 400, "INVALID_ARGUMENT", ""},
		{"not an object", `"refund"`, 400, "INVALID_ARGUMENT", ""},
		{"empty", ``, 400, "INVALID_ARGUMENT", ""},
		{"trailing data", good + `[]`, 400, "INVALID_ARGUMENT", ""},
		{"string amount", `{"out_refund_no":"R1","amount":{"refund":"100"}}`, 400, "INVALID_ARGUMENT", "amount.refund"},
		{"fractional amount", `{"out_refund_no":"R1","amount":{"refund":0.5}}`, 400, "INVALID_ARGUMENT", "amount.refund"},
		{"overflowing amount", `{"out_refund_no":"R1","amount":{"refund":9223372036854775808}}`, 400, "INVALID_ARGUMENT", "amount.refund"},
		{"overflowing total", `{"out_refund_no":"R1","amount":{"refund":1,"total":1e19}}`, 400, "INVALID_ARGUMENT", "amount.total"},
		{"amount as a string", `{"out_refund_no":"R1","amount":"100"}`, 400, "INVALID_ARGUMENT", "amount"},
		{"number as out_refund_no", `{"out_refund_no":5}`, 400, "INVALID_ARGUMENT", "out_refund_no"},
		{"bool as if_insufficient", `{"out_refund_no":"R1","if_insufficient":true}`, 400, "INVALID_ARGUMENT", "if_insufficient"},
		{"unknown field", `{"out_refund_no":"R1","refund_fee":1}`, 400, "INVALID_ARGUMENT", "refund_fee"},
		{"scenario is not in the API", `{"out_refund_no":"R1","Scenario":"fail"}`, 400, "INVALID_ARGUMENT", "Scenario"},
		{"zero amount", `{"out_refund_no":"R2","amount":{"refund":0}}`, 400, "AMOUNT_NOT_POSITIVE", "amount.refund"},
		{"unknown currency", `{"out_refund_no":"R3","amount":{"refund":1,"currency":"XXX"}}`, 400, "UNKNOWN_CURRENCY", "amount.currency"},
		{"oversized", `{"reason":"` + strings.Repeat("x", httpapi.MaxBody) + `"}`, 413, "TOO_LARGE", ""},
	}
	for _, c := range cases {
		status, body := call(t, h, "POST", "/v1/refunds", "1900000001", c.body)
		require.Equal(t, c.status, status, c.name)
		if c.code != "" {
			require.Equal(t, c.code, body["code"], c.name)
			require.NotEmpty(t, body["message"], c.name)
			if c.field != "" {
				require.Equal(t, c.field, body["detail"].(map[string]any)["field"], c.name)
			}
		} else {
			require.Equal(t, "rfd_1", body["id"], c.name)
			require.Equal(t, "R100001", body["out_refund_no"], c.name)
		}
	}
}

func TestRefundRoutes(t *testing.T) {
	t.Parallel()
	h := refundServer(t)
	status, _ := call(t, h, "POST", "/v1/refunds", "1900000001", `{"order_id":"ord_1","out_refund_no":"R100001","amount":{"refund":100,"total":1000}}`)
	require.Equal(t, 201, status)
	cases := []struct {
		method, path, mch, body string
		status                  int
		code                    string
	}{
		{"GET", "/v1/refunds/rfd_1", "1900000001", "", 200, ""},
		{"GET", "/v1/refunds/rfd_1", "1900000002", "", 404, "NOT_FOUND"}, // another merchant's refund
		{"GET", "/v1/refunds/rfd_1", "", "", 401, "UNAUTHENTICATED"},
		{"POST", "/v1/refunds", "", `{}`, 401, "UNAUTHENTICATED"},
		{"GET", "/v1/refunds/out-refund-no/R100001", "1900000001", "", 200, ""},
		{"GET", "/v1/refunds/out-refund-no/R100001", "1900000002", "", 404, "NOT_FOUND"},
		{"GET", "/v1/refunds?order_id=ord_1", "1900000001", "", 200, ""},
		{"GET", "/v1/refunds?order_id=ord_2", "1900000001", "", 404, "NOT_FOUND"},
		{"GET", "/v1/refunds", "1900000001", "", 400, "INVALID_ARGUMENT"},
		{"POST", "/v1/refunds/rfd_1/close", "1900000001", "", 409, "CONFLICT"},
		{"POST", "/v1/refunds/rfd_1/close", "1900000001", `{"x":1}`, 400, "INVALID_ARGUMENT"},
		{"POST", "/v1/refunds/rfd_1/close", "1900000002", "", 404, "NOT_FOUND"},
		{"PUT", "/v1/refunds", "1900000001", "", 405, "METHOD_NOT_ALLOWED"},
		{"DELETE", "/v1/refunds/rfd_1", "1900000001", "", 405, "METHOD_NOT_ALLOWED"},
	}
	for _, c := range cases {
		status, body := call(t, h, c.method, c.path, c.mch, c.body)
		require.Equal(t, c.status, status, "%s %s", c.method, c.path)
		if c.code != "" {
			require.Equal(t, c.code, body["code"], "%s %s", c.method, c.path)
		}
	}
	_, list := call(t, h, "GET", "/v1/refunds?order_id=ord_1", "1900000001", "")
	require.Equal(t, []any{}, list["data"], "no refunds lists [] not null")

	// Without a refund use case the routes answer 404.
	status, body := call(t, v1Server(t), "POST", "/v1/refunds", "1900000001", `{}`)
	require.Equal(t, 404, status)
	require.Equal(t, "NOT_FOUND", body["code"])
}

func FuzzDecodeCreateRefund(f *testing.F) {
	f.Add(`{"order_id":"ord_1","out_refund_no":"R1","amount":{"refund":1,"total":2,"currency":"CNY"}}`)
	f.Add(`{"amount":{"refund":1e400}}`)
	f.Add(`{"if_insufficient":"WAIT","notify_url":"https://x"}`)
	f.Fuzz(func(t *testing.T, s string) {
		var req payment.CreateRefundRequest
		err := httpapi.DecodeJSON([]byte(s), &req)
		if err != nil {
			require.Equal(t, paygate.CodeInvalidArgument, paygate.CodeOf(err))
			require.Less(t, len(err.Error()), 300, "errors never echo long input")
		}
		require.Empty(t, req.Scenario, "the sandbox scenario never comes from the API")
	})
}
