package httpapi_test

import (
	"context"
	"fmt"
	"net/http"
	"reflect"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"paygate"
	"paygate/httpapi"
	"paygate/payment"
	"paygate/payout"
)

// fakePayouts keeps batches by merchant and out_batch_no, replays identical
// requests and refuses a reused number, like payout.Service.
type fakePayouts struct {
	byNo map[string]payout.BatchPage
	reqs map[string]payout.CreateBatchRequest
}

func (f *fakePayouts) Submit(_ context.Context, m paygate.Merchant, req payout.CreateBatchRequest) (payout.BatchPage, bool, error) {
	if req.Currency != "" && req.Currency != "CNY" {
		return payout.BatchPage{}, false, paygate.EField(paygate.CodeUnknownCurrency, "currency", "unknown")
	}
	if len(req.Items) == 0 || len(req.Items) > payout.MaxItems {
		return payout.BatchPage{}, false, paygate.EField(paygate.CodeInvalidArgument, "items", "1 to 1000 items")
	}
	if p, ok := f.byNo[m.ID+req.OutBatchNo]; ok {
		if !reflect.DeepEqual(f.reqs[m.ID+req.OutBatchNo], req) {
			return payout.BatchPage{}, false, paygate.EField(paygate.CodeOutBatchNoUsed, "out_batch_no", "used")
		}
		return p, true, nil
	}
	p := payout.BatchPage{Batch: payout.Batch{ID: "pob_1", MerchantID: m.ID, OutBatchNo: req.OutBatchNo, Currency: "CNY",
		Status: payout.BatchProcessing, TotalCount: len(req.Items)}, Items: []payout.Item{}}
	for i, it := range req.Items {
		p.Items = append(p.Items, payout.Item{ID: fmt.Sprintf("pod_%d", i), BatchID: "pob_1", Seq: i + 1, OutDetailNo: it.OutDetailNo,
			Amount: it.Amount, Currency: "CNY", Recipient: payout.Recipient{Type: it.Recipient.Type, Masked: "138****0002"},
			Status: payout.StatusPending, MerchantID: m.ID})
	}
	f.byNo[m.ID+req.OutBatchNo], f.reqs[m.ID+req.OutBatchNo] = p, req
	return p, false, nil
}

func (f *fakePayouts) GetBatch(_ context.Context, mch, id, cursor string, limit int) (payout.BatchPage, error) {
	if cursor == "bad" {
		return payout.BatchPage{}, paygate.EField(paygate.CodeInvalidArgument, "cursor", "invalid cursor")
	}
	for _, p := range f.byNo {
		if p.ID == id && p.MerchantID == mch {
			return p, nil
		}
	}
	return payout.BatchPage{}, paygate.E(paygate.CodeNotFound, "payout batch not found")
}

func (f *fakePayouts) GetBatchByOutBatchNo(_ context.Context, mch, no, cursor string, limit int) (payout.BatchPage, error) {
	if p, ok := f.byNo[mch+no]; ok {
		return p, nil
	}
	return payout.BatchPage{}, paygate.E(paygate.CodeNotFound, "payout batch not found")
}

func (f *fakePayouts) GetDetail(_ context.Context, mch, no string) (payout.Item, error) {
	for _, p := range f.byNo {
		for _, it := range p.Items {
			if it.OutDetailNo == no && it.MerchantID == mch {
				return it, nil
			}
		}
	}
	return payout.Item{}, paygate.E(paygate.CodeNotFound, "payout item not found")
}

func payoutServer(t *testing.T) http.Handler {
	mux := http.NewServeMux()
	(&httpapi.V1{Orders: &fakeOrders{created: map[string]payment.Order{}}, Notifications: fakeNotifications{},
		Payouts: &fakePayouts{byNo: map[string]payout.BatchPage{}, reqs: map[string]payout.CreateBatchRequest{}}, Authenticate: asMerchant}).Register(mux)
	return mux
}

// TestCreatePayoutBatchDecoding: bad bodies are refused before the use case
// with the error shape and the field at fault; a create answers 201, an
// identical replay 200, a reused number 409; a batch of 1,000 items fits
// the route's larger body limit, a bigger body does not.
func TestCreatePayoutBatchDecoding(t *testing.T) {
	t.Parallel()
	h := payoutServer(t)
	good := `{"out_batch_no":"B1","currency":"CNY","items":[{"out_detail_no":"D1","amount":100,"recipient":{"type":"ACCOUNT","account":"13800000002"}}]}`
	var big strings.Builder
	big.WriteString(`{"out_batch_no":"BIG","items":[`)
	for i := range payout.MaxItems {
		if i > 0 {
			big.WriteString(",")
		}
		fmt.Fprintf(&big, `{"out_detail_no":"D%06d","amount":100,"recipient":{"type":"CARD","card_number":"6288880000000000013","name":"张三"},"remark":"November reward"}`, i)
	}
	big.WriteString(`]}`)
	require.Greater(t, big.Len(), httpapi.MaxBody, "the batch needs the larger limit")
	cases := []struct {
		name, body string
		status     int
		code       string
		field      string
	}{
		{"created", good, 201, "", ""},
		{"replayed", good, 200, "", ""},
		{"reused number", strings.Replace(good, `"amount":100`, `"amount":101`, 1), 409, "OUT_BATCH_NO_USED", "out_batch_no"},
		{"thousand items", big.String(), 201, "", ""},
		{"oversized", `{"remark":"` + strings.Repeat("x", httpapi.MaxPayoutBody) + `"}`, 413, "TOO_LARGE", ""},
		{"malformed", `{"out_batch_no":`, 400, "INVALID_ARGUMENT", ""},
		{"not an object", `[]`, 400, "INVALID_ARGUMENT", ""},
		{"empty", ``, 400, "INVALID_ARGUMENT", ""},
		{"string amount", `{"out_batch_no":"B2","items":[{"amount":"100"}]}`, 400, "INVALID_ARGUMENT", "items.amount"},
		{"fractional amount", `{"out_batch_no":"B2","items":[{"amount":1.5}]}`, 400, "INVALID_ARGUMENT", "items.amount"},
		{"overflowing amount", `{"out_batch_no":"B2","items":[{"amount":9223372036854775808}]}`, 400, "INVALID_ARGUMENT", "items.amount"},
		{"items as an object", `{"out_batch_no":"B2","items":{}}`, 400, "INVALID_ARGUMENT", "items"},
		{"number as out_batch_no", `{"out_batch_no":5}`, 400, "INVALID_ARGUMENT", "out_batch_no"},
		{"unknown field", `{"out_batch_no":"B2","total_amount":1}`, 400, "INVALID_ARGUMENT", "total_amount"},
		{"unknown recipient field", `{"out_batch_no":"B2","items":[{"recipient":{"id_number":"1"}}]}`, 400, "INVALID_ARGUMENT", "id_number"},
		{"unknown currency", `{"out_batch_no":"B3","currency":"XXX","items":[{}]}`, 400, "UNKNOWN_CURRENCY", "currency"},
		{"no items", `{"out_batch_no":"B4","items":[]}`, 400, "INVALID_ARGUMENT", "items"},
	}
	for _, c := range cases {
		status, body := call(t, h, "POST", "/v1/payouts/batches", "1900000001", c.body)
		require.Equal(t, c.status, status, c.name)
		if c.code != "" {
			require.Equal(t, c.code, body["code"], c.name)
			require.NotEmpty(t, body["message"], c.name)
			if c.field != "" {
				require.Equal(t, c.field, body["detail"].(map[string]any)["field"], c.name)
			}
		} else {
			require.Equal(t, "pob_1", body["id"], c.name)
		}
	}
	// Other routes keep the default limit.
	status, body := call(t, h, "POST", "/v1/orders", "1900000001", `{"description":"`+strings.Repeat("x", httpapi.MaxBody)+`"}`)
	require.Equal(t, 413, status)
	require.Equal(t, "TOO_LARGE", body["code"])
}

func TestPayoutRoutes(t *testing.T) {
	t.Parallel()
	h := payoutServer(t)
	status, _ := call(t, h, "POST", "/v1/payouts/batches", "1900000001",
		`{"out_batch_no":"B1","items":[{"out_detail_no":"D1","amount":100,"recipient":{"type":"ACCOUNT","account":"13800000002"}}]}`)
	require.Equal(t, 201, status)
	cases := []struct {
		method, path, mch string
		status            int
		code              string
	}{
		{"GET", "/v1/payouts/batches/pob_1", "1900000001", 200, ""},
		{"GET", "/v1/payouts/batches/pob_1?cursor=bad", "1900000001", 400, "INVALID_ARGUMENT"},
		{"GET", "/v1/payouts/batches/pob_1?limit=-1", "1900000001", 400, "INVALID_ARGUMENT"},
		{"GET", "/v1/payouts/batches/pob_1", "1900000002", 404, "NOT_FOUND"}, // another merchant's batch
		{"GET", "/v1/payouts/batches/pob_1", "", 401, "UNAUTHENTICATED"},
		{"GET", "/v1/payouts/batches/out-batch-no/B1", "1900000001", 200, ""},
		{"GET", "/v1/payouts/batches/out-batch-no/B1", "1900000002", 404, "NOT_FOUND"},
		{"GET", "/v1/payouts/details/D1", "1900000001", 200, ""},
		{"GET", "/v1/payouts/details/D1", "1900000002", 404, "NOT_FOUND"},
		{"PUT", "/v1/payouts/batches", "1900000001", 405, "METHOD_NOT_ALLOWED"},
		{"DELETE", "/v1/payouts/batches/pob_1", "1900000001", 405, "METHOD_NOT_ALLOWED"},
	}
	for _, c := range cases {
		status, body := call(t, h, c.method, c.path, c.mch, "")
		require.Equal(t, c.status, status, "%s %s", c.method, c.path)
		if c.code != "" {
			require.Equal(t, c.code, body["code"], "%s %s", c.method, c.path)
		}
	}
	_, d := call(t, h, "GET", "/v1/payouts/details/D1", "1900000001", "")
	require.Equal(t, "D1", d["out_detail_no"])
	require.NotContains(t, d, "MerchantID", "internal fields stay out of the JSON")

	// Without a payout use case the routes answer 404.
	status, body := call(t, v1Server(t), "POST", "/v1/payouts/batches", "1900000001", `{}`)
	require.Equal(t, 404, status)
	require.Equal(t, "NOT_FOUND", body["code"])
}

func FuzzDecodeCreatePayoutBatch(f *testing.F) {
	f.Add(`{"out_batch_no":"B1","items":[{"out_detail_no":"D1","amount":1,"recipient":{"type":"CARD","card_number":"6288880000000000013","name":"张三"}}]}`)
	f.Add(`{"items":[{"amount":1e400}]}`)
	f.Fuzz(func(t *testing.T, s string) {
		var req payout.CreateBatchRequest
		err := httpapi.DecodeJSON([]byte(s), &req)
		if err != nil {
			require.Equal(t, paygate.CodeInvalidArgument, paygate.CodeOf(err))
			require.Less(t, len(err.Error()), 300, "errors never echo long input")
		}
	})
}
