package web_test

import (
	"context"
	"html"
	"io"
	"log/slog"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"paygate"
	"paygate/agreement"
	"paygate/web"
)

// fakeSigner is an agreement service with one pending and one signed
// agreement; the right card and code sign the pending one.
type fakeSigner struct {
	pages  map[string]agreement.SignPage
	signed bool
}

func (f *fakeSigner) SignView(_ context.Context, id string) (agreement.SignPage, error) {
	p, ok := f.pages[id]
	if !ok {
		return p, paygate.E(paygate.CodeNotFound, "agreement not found")
	}
	if id == "agm_pending" && f.signed {
		p.Status, p.Card = agreement.StatusSigned, "628888******0013"
	}
	return p, nil
}

func (f *fakeSigner) StartSign(_ context.Context, id string, c agreement.SignCard) (agreement.Challenge, error) {
	if c.Number != "6288880000000013" {
		return agreement.Challenge{}, paygate.EField(paygate.CodeInvalidArgument, "card_number", "this is not a valid card number")
	}
	return agreement.Challenge{AgreementID: id, CardID: "card_1", Card: "628888******0013", PhoneMasked: "138****0001",
		ExpiresAt: time.Date(2026, 11, 22, 2, 5, 0, 0, time.UTC)}, nil
}

func (f *fakeSigner) ConfirmSign(_ context.Context, id, cardID, code string) (agreement.Agreement, error) {
	if code != "123456" {
		return agreement.Agreement{}, paygate.E(paygate.CodeUnauthenticated, "the code is wrong")
	}
	f.signed = true
	return agreement.Agreement{ID: id, Status: agreement.StatusSigned}, nil
}

var signTokenRE = regexp.MustCompile(`name="csrf_token" value="([^"]+)"`)

// TestSignPage: the page shows the terms and the card form while pending;
// the card form leads to the code form (masked card and phone only); a
// wrong code keeps the code form; the right one redirects to the page,
// now signed with the way back; unknown ids are 404; forged tokens 403;
// forms that are not URL-encoded 415; nothing typed is echoed.
func TestSignPage(t *testing.T) {
	t.Parallel()
	exp := time.Date(2026, 11, 23, 2, 0, 0, 0, time.UTC)
	f := &fakeSigner{pages: map[string]agreement.SignPage{
		"agm_pending": {ID: "agm_pending", MerchantName: "Demo Shop", Plan: "Tea box, monthly", Currency: "CNY", PerPaymentLimit: 2_000,
			EndDate: "2027-11-30", Status: agreement.StatusPending, SignExpireTime: exp, ReturnURL: "https://shop.example/done", Sandbox: true},
		"agm_revoked": {ID: "agm_revoked", MerchantName: "Demo Shop", Plan: "Old plan", Currency: "CNY", Status: agreement.StatusRevoked},
	}}
	h, err := web.New(web.Config{Orders: fakeOrders{}, Clock: paygate.NewManualClock(t0), Logger: slog.New(slog.DiscardHandler), Agreements: f})
	require.NoError(t, err)
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	jar, err := cookiejar.New(nil)
	require.NoError(t, err)
	c := &http.Client{Jar: jar, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	do := func(method, path, ct string, form url.Values) (*http.Response, string) {
		t.Helper()
		req, err := http.NewRequest(method, srv.URL+path, strings.NewReader(form.Encode()))
		require.NoError(t, err)
		if ct != "" {
			req.Header.Set("Content-Type", ct)
		}
		res, err := c.Do(req)
		require.NoError(t, err)
		defer res.Body.Close()
		b, _ := io.ReadAll(res.Body)
		return res, html.UnescapeString(string(b))
	}
	const formCT = "application/x-www-form-urlencoded"

	res, body := do("GET", "/agreements/agm_pending", "", nil)
	require.Equal(t, 200, res.StatusCode)
	require.Contains(t, body, `data-state="open"`)
	require.Contains(t, body, "At most CNY 20.00 a payment")
	require.Contains(t, body, "No limit of its own per day")
	require.Contains(t, body, "Until 2027-11-30 (last day)")
	require.Contains(t, body, `id="sign-start"`)
	require.Equal(t, "no-store", res.Header.Get("Cache-Control"))
	require.Contains(t, res.Header.Get("Content-Security-Policy"), "default-src 'self'")
	tok := signTokenRE.FindStringSubmatch(body)[1]

	res, _ = do("POST", "/agreements/agm_pending/sign", formCT, url.Values{"csrf_token": {"forged"}, "card_number": {"6288880000000013"}})
	require.Equal(t, 403, res.StatusCode)
	res, _ = do("POST", "/agreements/agm_pending/sign", "application/json", url.Values{"csrf_token": {tok}})
	require.Equal(t, 415, res.StatusCode)
	res, body = do("POST", "/agreements/agm_pending/sign", formCT, url.Values{"csrf_token": {tok}, "card_number": {"6288880000000014"},
		"name": {"王小明"}, "id_number": {"110101199003071233"}, "phone": {"13800000001"}})
	require.Equal(t, 422, res.StatusCode)
	require.Contains(t, body, "This is not a valid card number.")
	require.NotContains(t, body, "6288880000000014")
	require.NotContains(t, body, "110101199003071233")
	res, body = do("POST", "/agreements/agm_pending/sign", formCT, url.Values{"csrf_token": {tok}, "card_number": {strings.Repeat("1", 200)}})
	require.Equal(t, 422, res.StatusCode)
	require.Contains(t, body, "too long")
	res, body = do("POST", "/agreements/agm_pending/sign", formCT, url.Values{"csrf_token": {tok}, "card_number": {"6288 8800 0000 0013"},
		"name": {"王小明"}, "id_number": {"110101199003071233"}, "phone": {"13800000001"}})
	require.Equal(t, 200, res.StatusCode)
	require.Contains(t, body, `id="sign-confirm"`)
	require.Contains(t, body, "138****0001")
	require.Contains(t, body, "628888******0013")
	require.NotContains(t, body, "6288880000000013")

	res, body = do("POST", "/agreements/agm_pending/sign/confirm", formCT, url.Values{"csrf_token": {tok}, "card_id": {"card_1"}, "code": {"000000"}})
	require.Equal(t, 422, res.StatusCode)
	require.Contains(t, body, `id="sign-confirm"`, "a wrong code keeps the code form")
	require.NotContains(t, body, `value="000000"`)
	res, _ = do("POST", "/agreements/agm_pending/sign/confirm", formCT, url.Values{"csrf_token": {tok}, "card_id": {"card_1"}, "code": {"123456"}})
	require.Equal(t, 303, res.StatusCode)
	require.Equal(t, "/agreements/agm_pending", res.Header.Get("Location"))
	_, body = do("GET", "/agreements/agm_pending", "", nil)
	require.Contains(t, body, `data-state="signed"`)
	require.Contains(t, body, `href="https://shop.example/done"`)
	require.NotContains(t, body, "<form")

	_, body = do("GET", "/agreements/agm_revoked", "", nil)
	require.Contains(t, body, `data-state="revoked"`)
	require.NotContains(t, body, "<form")
	res, _ = do("GET", "/agreements/agm_nope", "", nil)
	require.Equal(t, 404, res.StatusCode)
	res, _ = do("POST", "/agreements/agm_revoked/sign", formCT, url.Values{"csrf_token": {tok}})
	require.Equal(t, 403, res.StatusCode, "a token is good for its own agreement only")
}
