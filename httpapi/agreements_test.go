package httpapi_test

import (
	"context"
	"net/http"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"paygate"
	"paygate/agreement"
	"paygate/httpapi"
	"paygate/payment"
)

// fakeAgreements keeps one agreement per merchant number and replays
// identical creates, like agreement.Service; its validation is the
// service's (tested in package agreement), here only what the adapter does.
type fakeAgreements struct {
	byNo map[string]agreement.Agreement
	reqs map[string]agreement.Request
}

func (f *fakeAgreements) Create(_ context.Context, mch string, req agreement.Request) (agreement.Agreement, bool, error) {
	if req.DailyLimit < 0 {
		return agreement.Agreement{}, false, paygate.EField(paygate.CodeAmountNotPositive, "daily_limit", "must be positive")
	}
	if a, ok := f.byNo[mch+req.OutAgreementNo]; ok {
		if f.reqs[mch+req.OutAgreementNo] != req {
			return agreement.Agreement{}, false, paygate.EField(paygate.CodeIDConflict, "plan", "used")
		}
		return a, true, nil
	}
	a := agreement.Agreement{ID: "agm_1", MerchantID: mch, OutAgreementNo: req.OutAgreementNo, Plan: req.Plan, Status: agreement.StatusPending}
	f.byNo[mch+req.OutAgreementNo], f.reqs[mch+req.OutAgreementNo] = a, req
	return a, false, nil
}

func (f *fakeAgreements) Get(_ context.Context, mch, id string) (agreement.Agreement, error) {
	for _, a := range f.byNo {
		if a.ID == id && a.MerchantID == mch {
			return a, nil
		}
	}
	return agreement.Agreement{}, paygate.E(paygate.CodeNotFound, "agreement not found")
}

func (f *fakeAgreements) GetByOutAgreementNo(_ context.Context, mch, no string) (agreement.Agreement, error) {
	if a, ok := f.byNo[mch+no]; ok {
		return a, nil
	}
	return agreement.Agreement{}, paygate.E(paygate.CodeNotFound, "agreement not found")
}

func (f *fakeAgreements) List(_ context.Context, mch string, req agreement.ListRequest) (agreement.Listing, error) {
	if req.Status != "" && !req.Status.Valid() {
		return agreement.Listing{}, paygate.EField(paygate.CodeInvalidArgument, "status", "unknown status")
	}
	return agreement.Listing{}, nil
}

func (f *fakeAgreements) Revoke(ctx context.Context, mch, id string) (agreement.Agreement, error) {
	a, err := f.Get(ctx, mch, id)
	a.Status = agreement.StatusRevoked
	return a, err
}

func (f *fakeAgreements) Charge(ctx context.Context, mch, id string, req agreement.ChargeRequest) (agreement.Charge, bool, error) {
	if _, err := f.Get(ctx, mch, id); err != nil {
		return agreement.Charge{}, false, err
	}
	if req.Amount.Total > 100 {
		return agreement.Charge{}, false, paygate.EField(paygate.CodeLimitExceeded, "amount.total", "over the agreement's limit")
	}
	return agreement.Charge{AgreementID: id, Status: agreement.ChargeSuccess, Order: payment.Order{ID: "ord_1", Status: payment.StatusSuccess}}, false, nil
}

func agreementServer(t *testing.T) http.Handler {
	mux := http.NewServeMux()
	(&httpapi.V1{Orders: &fakeOrders{created: map[string]payment.Order{}}, Notifications: fakeNotifications{},
		Agreements: &fakeAgreements{byNo: map[string]agreement.Agreement{}, reqs: map[string]agreement.Request{}}, Authenticate: asMerchant}).Register(mux)
	return mux
}

// TestAgreementRoutes: bad bodies are refused with the error shape and the
// field at fault before the use case runs; creates answer 201, replays
// 200; another merchant's agreement is 404; wrong methods 405; without an
// agreement use case the routes answer 404.
func TestAgreementRoutes(t *testing.T) {
	t.Parallel()
	h := agreementServer(t)
	good := `{"out_agreement_no":"AGR-0001","plan":"Tea box","per_payment_limit":100,"daily_limit":300,"end_date":"2027-01-31","notify_url":"https://shop.example/n"}`
	charge := `{"out_trade_no":"C-0001","description":"Tea","amount":{"total":100}}`
	cases := []struct {
		name, method, path, mch, body string
		status                        int
		code, field                   string
	}{
		{"created", "POST", "/v1/agreements", "1900000001", good, 201, "", ""},
		{"replayed", "POST", "/v1/agreements", "1900000001", good, 200, "", ""},
		{"reused number", "POST", "/v1/agreements", "1900000001", strings.Replace(good, "Tea box", "Coffee", 1), 409, "ID_CONFLICT", "plan"},
		{"malformed", "POST", "/v1/agreements", "1900000001", `{"plan":`, 400, "INVALID_ARGUMENT", ""},
		{"empty", "POST", "/v1/agreements", "1900000001", ``, 400, "INVALID_ARGUMENT", ""},
		{"not an object", "POST", "/v1/agreements", "1900000001", `[1]`, 400, "INVALID_ARGUMENT", ""},
		{"string limit", "POST", "/v1/agreements", "1900000001", `{"daily_limit":"300"}`, 400, "INVALID_ARGUMENT", "daily_limit"},
		{"fractional limit", "POST", "/v1/agreements", "1900000001", `{"per_payment_limit":1.5}`, 400, "INVALID_ARGUMENT", "per_payment_limit"},
		{"overflowing limit", "POST", "/v1/agreements", "1900000001", `{"daily_limit":9223372036854775808}`, 400, "INVALID_ARGUMENT", "daily_limit"},
		{"negative limit", "POST", "/v1/agreements", "1900000001", `{"out_agreement_no":"AGR-2","daily_limit":-1}`, 400, "AMOUNT_NOT_POSITIVE", "daily_limit"},
		{"unknown field", "POST", "/v1/agreements", "1900000001", `{"customer_id":"cus_1"}`, 400, "INVALID_ARGUMENT", "customer_id"},
		{"oversized", "POST", "/v1/agreements", "1900000001", `{"plan":"` + strings.Repeat("x", httpapi.MaxBody) + `"}`, 413, "TOO_LARGE", ""},
		{"unsigned", "POST", "/v1/agreements", "", good, 401, "UNAUTHENTICATED", ""},
		{"get", "GET", "/v1/agreements/agm_1", "1900000001", "", 200, "", ""},
		{"get other merchant's", "GET", "/v1/agreements/agm_1", "1900000002", "", 404, "NOT_FOUND", ""},
		{"by number", "GET", "/v1/agreements/out-agreement-no/AGR-0001", "1900000001", "", 200, "", ""},
		{"by number other merchant", "GET", "/v1/agreements/out-agreement-no/AGR-0001", "1900000002", "", 404, "NOT_FOUND", ""},
		{"list", "GET", "/v1/agreements?status=SIGNED&limit=5", "1900000001", "", 200, "", ""},
		{"list bad status", "GET", "/v1/agreements?status=NOPE", "1900000001", "", 400, "INVALID_ARGUMENT", "status"},
		{"list bad limit", "GET", "/v1/agreements?limit=x", "1900000001", "", 400, "INVALID_ARGUMENT", "limit"},
		{"charge", "POST", "/v1/agreements/agm_1/charges", "1900000001", charge, 201, "", ""},
		{"charge over limit", "POST", "/v1/agreements/agm_1/charges", "1900000001", strings.Replace(charge, "100", "101", 1), 422, "LIMIT_EXCEEDED", "amount.total"},
		{"charge other merchant's", "POST", "/v1/agreements/agm_1/charges", "1900000002", charge, 404, "NOT_FOUND", ""},
		{"charge string amount", "POST", "/v1/agreements/agm_1/charges", "1900000001", `{"amount":{"total":"1"}}`, 400, "INVALID_ARGUMENT", "amount.total"},
		{"charge overflowing", "POST", "/v1/agreements/agm_1/charges", "1900000001", `{"amount":{"total":1e30}}`, 400, "INVALID_ARGUMENT", "amount.total"},
		{"charge malformed", "POST", "/v1/agreements/agm_1/charges", "1900000001", `{`, 400, "INVALID_ARGUMENT", ""},
		{"revoke body", "POST", "/v1/agreements/agm_1/revoke", "1900000001", `{"reason":1}`, 400, "INVALID_ARGUMENT", "reason"},
		{"revoke", "POST", "/v1/agreements/agm_1/revoke", "1900000001", ``, 200, "", ""},
		{"revoke other merchant's", "POST", "/v1/agreements/agm_1/revoke", "1900000002", ``, 404, "NOT_FOUND", ""},
		{"wrong method", "DELETE", "/v1/agreements/agm_1", "1900000001", "", 405, "METHOD_NOT_ALLOWED", ""},
	}
	for _, c := range cases {
		status, body := call(t, h, c.method, c.path, c.mch, c.body)
		require.Equal(t, c.status, status, c.name)
		if c.code != "" {
			require.Equal(t, c.code, body["code"], c.name)
			require.NotEmpty(t, body["message"], c.name)
			if c.field != "" {
				require.Equal(t, c.field, body["detail"].(map[string]any)["field"], c.name)
			}
		}
	}
	_, list := call(t, h, "GET", "/v1/agreements", "1900000001", "")
	require.Equal(t, []any{}, list["data"], "an empty list is [] not null")

	status, body := call(t, v1Server(t), "POST", "/v1/agreements", "1900000001", `{}`)
	require.Equal(t, 404, status)
	require.Equal(t, "NOT_FOUND", body["code"])
}
