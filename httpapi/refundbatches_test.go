package httpapi_test

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"paygate"
	"paygate/httpapi"
	"paygate/payment"
)

// fakeRefundBatches keeps one batch per merchant and number, replays an
// identical request and refuses a reused number, like payment.BatchRefunds.
type fakeRefundBatches struct {
	byNo map[string]payment.RefundBatch
	reqs map[string]string
	last payment.RefundBatchPage
}

func (f *fakeRefundBatches) SubmitRefundBatch(_ context.Context, mch string, req payment.CreateRefundBatchRequest) (payment.RefundBatch, bool, error) {
	if len(req.Items) == 0 || len(req.Items) > payment.MaxRefundBatchItems {
		return payment.RefundBatch{}, false, paygate.EField(paygate.CodeInvalidArgument, "items", "1 to 1000 items")
	}
	key := fmt.Sprint(req)
	if b, ok := f.byNo[mch+req.OutBatchNo]; ok {
		if f.reqs[mch+req.OutBatchNo] != key {
			return payment.RefundBatch{}, false, paygate.EField(paygate.CodeOutBatchNoUsed, "items[0].amount.refund", "used")
		}
		return b, true, nil
	}
	b := payment.RefundBatch{ID: "rfb_1", MerchantID: mch, OutBatchNo: req.OutBatchNo, Status: payment.RefundBatchProcessing,
		TotalCount: len(req.Items), PendingCount: len(req.Items), Currency: "CNY"}
	f.byNo[mch+req.OutBatchNo], f.reqs[mch+req.OutBatchNo] = b, key
	return b, false, nil
}

func (f *fakeRefundBatches) GetRefundBatch(_ context.Context, mch, id string, pg payment.RefundBatchPage) (payment.RefundBatch, error) {
	f.last = pg
	for _, b := range f.byNo {
		if b.ID == id && b.MerchantID == mch {
			b.Items = []payment.RefundBatchItem{{Line: 1, OutRefundNo: "R1", Status: payment.RefundItemFailed,
				FailCode: paygate.CodeNotFound, FailMessage: "order not found"}}
			return b, nil
		}
	}
	return payment.RefundBatch{}, paygate.E(paygate.CodeNotFound, "refund batch not found")
}

func (f *fakeRefundBatches) GetRefundBatchByOutBatchNo(_ context.Context, mch, no string, pg payment.RefundBatchPage) (payment.RefundBatch, error) {
	f.last = pg
	if b, ok := f.byNo[mch+no]; ok {
		return b, nil
	}
	return payment.RefundBatch{}, paygate.E(paygate.CodeNotFound, "refund batch not found")
}

func refundBatchServer(t *testing.T) (http.Handler, *fakeRefundBatches) {
	mux := http.NewServeMux()
	f := &fakeRefundBatches{byNo: map[string]payment.RefundBatch{}, reqs: map[string]string{}}
	(&httpapi.V1{Orders: &fakeOrders{created: map[string]payment.Order{}}, Notifications: fakeNotifications{},
		RefundBatches: f, Authenticate: asMerchant}).Register(mux)
	return mux, f
}

// batchBody is a batch of n items, as JSON.
func batchBody(no string, n int) string {
	var b strings.Builder
	fmt.Fprintf(&b, `{"out_batch_no":%q,"notify_url":"https://m.example.com/b","items":[`, no)
	for i := range n {
		if i > 0 {
			b.WriteByte(',')
		}
		fmt.Fprintf(&b, `{"out_refund_no":"R-%06d","out_trade_no":"T-%06d","reason":"%s","amount":{"refund":100,"total":1000,"currency":"CNY"},"if_insufficient":"FAIL"}`,
			i, i, strings.Repeat("退", 20))
	}
	b.WriteString(`]}`)
	return b.String()
}

// TestCreateRefundBatchDecoding: bad bodies are refused before the use
// case with the error shape and the field at fault; a batch answers 202,
// an identical replay 200, a reused number 409; a 1,000-item batch of long
// lines fits the route's own 1 MiB limit, more is 413.
func TestCreateRefundBatchDecoding(t *testing.T) {
	t.Parallel()
	h, _ := refundBatchServer(t)
	good := `{"out_batch_no":"B1","items":[{"order_id":"ord_1","out_refund_no":"R1","amount":{"refund":100,"total":1000}}]}`
	big := batchBody("B2", payment.MaxRefundBatchItems)
	require.Greater(t, len(big), httpapi.MaxBody, "a full batch needs more than the default limit")
	cases := []struct {
		name, body string
		status     int
		code       string
		field      string
	}{
		{"accepted", good, 202, "", ""},
		{"replayed", good, 200, "", ""},
		{"reused number", strings.Replace(good, `"refund":100`, `"refund":101`, 1), 409, "OUT_BATCH_NO_USED", "items[0].amount.refund"},
		{"1,000 items", big, 202, "", ""},
		{"malformed", `{"out_batch_no":`, 400, "INVALID_ARGUMENT", ""},
		{"not an object", `[]`, 400, "INVALID_ARGUMENT", ""},
		{"empty", ``, 400, "INVALID_ARGUMENT", ""},
		{"trailing data", good + `{}`, 400, "INVALID_ARGUMENT", ""},
		{"items not an array", `{"out_batch_no":"B3","items":{}}`, 400, "INVALID_ARGUMENT", "items"},
		{"string amount", `{"out_batch_no":"B3","items":[{"amount":{"refund":"100"}}]}`, 400, "INVALID_ARGUMENT", "items.amount.refund"},
		{"fractional amount", `{"out_batch_no":"B3","items":[{"amount":{"refund":0.5}}]}`, 400, "INVALID_ARGUMENT", "items.amount.refund"},
		{"overflowing amount", `{"out_batch_no":"B3","items":[{"amount":{"refund":9223372036854775808}}]}`, 400, "INVALID_ARGUMENT", "items.amount.refund"},
		{"number as out_batch_no", `{"out_batch_no":5}`, 400, "INVALID_ARGUMENT", "out_batch_no"},
		{"unknown field", `{"out_batch_no":"B3","batch_fee":1}`, 400, "INVALID_ARGUMENT", "batch_fee"},
		{"unknown item field", `{"out_batch_no":"B3","items":[{"refund_fee":1}]}`, 400, "INVALID_ARGUMENT", "refund_fee"},
		{"no items", `{"out_batch_no":"B3","items":[]}`, 400, "INVALID_ARGUMENT", "items"},
		{"1,001 items", batchBody("B4", payment.MaxRefundBatchItems+1), 400, "INVALID_ARGUMENT", "items"},
		{"oversized", `{"out_batch_no":"B5","notify_url":"` + strings.Repeat("x", httpapi.MaxRefundBatchBody) + `"}`, 413, "TOO_LARGE", ""},
	}
	for _, c := range cases {
		status, body := call(t, h, "POST", "/v1/refunds/batches", "1900000001", c.body)
		require.Equal(t, c.status, status, "%s: %v", c.name, body)
		if c.code != "" {
			require.Equal(t, c.code, body["code"], c.name)
			require.NotEmpty(t, body["message"], c.name)
			if c.field != "" {
				require.Equal(t, c.field, body["detail"].(map[string]any)["field"], c.name)
			}
		} else {
			require.Equal(t, "rfb_1", body["id"], c.name)
			require.Equal(t, "PROCESSING", body["status"], c.name)
			require.NotContains(t, body, "items", "the create answer is the summary")
		}
	}
}

func TestRefundBatchRoutes(t *testing.T) {
	t.Parallel()
	h, f := refundBatchServer(t)
	status, _ := call(t, h, "POST", "/v1/refunds/batches", "1900000001", `{"out_batch_no":"B1","items":[{"out_refund_no":"R1"}]}`)
	require.Equal(t, 202, status)
	cases := []struct {
		method, path, mch, body string
		status                  int
		code                    string
	}{
		{"GET", "/v1/refunds/batches/rfb_1", "1900000001", "", 200, ""},
		{"GET", "/v1/refunds/batches/rfb_1?cursor=100&limit=50", "1900000001", "", 200, ""},
		{"GET", "/v1/refunds/batches/rfb_1?limit=x", "1900000001", "", 400, "INVALID_ARGUMENT"},
		{"GET", "/v1/refunds/batches/rfb_1?limit=-1", "1900000001", "", 400, "INVALID_ARGUMENT"},
		{"GET", "/v1/refunds/batches/rfb_1", "1900000002", "", 404, "NOT_FOUND"}, // another merchant's batch
		{"GET", "/v1/refunds/batches/rfb_1", "", "", 401, "UNAUTHENTICATED"},
		{"POST", "/v1/refunds/batches", "", `{}`, 401, "UNAUTHENTICATED"},
		{"GET", "/v1/refunds/batches/out-batch-no/B1", "1900000001", "", 200, ""},
		{"GET", "/v1/refunds/batches/out-batch-no/B1", "1900000002", "", 404, "NOT_FOUND"},
		{"GET", "/v1/refunds/batches", "1900000001", "", 404, "NOT_FOUND"}, // a refund named "batches"
		{"PUT", "/v1/refunds/batches", "1900000001", "", 405, "METHOD_NOT_ALLOWED"},
		{"DELETE", "/v1/refunds/batches/rfb_1", "1900000001", "", 405, "METHOD_NOT_ALLOWED"},
	}
	for _, c := range cases {
		status, body := call(t, h, c.method, c.path, c.mch, c.body)
		require.Equal(t, c.status, status, "%s %s: %v", c.method, c.path, body)
		if c.code != "" {
			require.Equal(t, c.code, body["code"], "%s %s", c.method, c.path)
		}
	}
	_, body := call(t, h, "GET", "/v1/refunds/batches/rfb_1?cursor=7&limit=3", "1900000001", "")
	require.Equal(t, payment.RefundBatchPage{Cursor: "7", Limit: 3}, f.last)
	items := body["items"].([]any)
	require.Len(t, items, 1)
	require.Equal(t, "NOT_FOUND", items[0].(map[string]any)["fail_code"])

	// Without a batch use case the routes answer 404.
	status, body = call(t, v1Server(t), "POST", "/v1/refunds/batches", "1900000001", `{}`)
	require.Equal(t, 404, status)
	require.Equal(t, "NOT_FOUND", body["code"])
}

func FuzzDecodeCreateRefundBatch(f *testing.F) {
	f.Add(`{"out_batch_no":"B1","items":[{"order_id":"ord_1","out_refund_no":"R1","amount":{"refund":1,"total":2,"currency":"CNY"}}]}`)
	f.Add(`{"items":[{"amount":{"refund":1e400}}]}`)
	f.Add(`{"items":[null,{}],"currency":"\u0000"}`)
	f.Fuzz(func(t *testing.T, s string) {
		var req payment.CreateRefundBatchRequest
		if err := httpapi.DecodeJSON([]byte(s), &req); err != nil {
			require.Equal(t, paygate.CodeInvalidArgument, paygate.CodeOf(err))
			require.Less(t, len(err.Error()), 300, "errors never echo long input")
		}
	})
}
