package main

import (
	"context"
	"encoding/json"
	"fmt"
	"html"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"paygate/client"
	"paygate/store"
	"paygate/store/storetest"
)

// agBrowser is the customer's browser on the sign page: a cookie jar,
// redirects not followed.
type agBrowser struct {
	t *testing.T
	e *e2e
	c *http.Client
}

func (b *agBrowser) do(method, path string, form url.Values) (*http.Response, string) {
	b.t.Helper()
	var body io.Reader
	if form != nil {
		body = strings.NewReader(form.Encode())
	}
	req, err := http.NewRequest(method, b.e.srv.URL+path, body)
	require.NoError(b.t, err)
	if form != nil {
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	}
	res, err := b.c.Do(req)
	require.NoError(b.t, err)
	defer res.Body.Close()
	raw, err := io.ReadAll(res.Body)
	require.NoError(b.t, err)
	return res, html.UnescapeString(string(raw))
}

var (
	agTokenRE  = regexp.MustCompile(`name="csrf_token" value="([^"]+)"`)
	agCardRE   = regexp.MustCompile(`name="card_id" value="([^"]+)"`)
	agErrorRE  = regexp.MustCompile(`id="sign-error" role="alert">([^<]*)<`)
	agSandboxN = "13800000001"
)

// submit opens the sign page and posts form to route with its token.
func (b *agBrowser) submit(page, route string, form url.Values) (*http.Response, string) {
	b.t.Helper()
	res, body := b.do("GET", page, nil)
	require.Equal(b.t, http.StatusOK, res.StatusCode)
	m := agTokenRE.FindStringSubmatch(body)
	require.NotNil(b.t, m, "no form on the sign page")
	form.Set("csrf_token", m[1])
	return b.do("POST", page+"/"+route, form)
}

// agEvent waits for the merchant's endpoint to receive an event of the type
// whose resource has the id, verifies and decrypts it with the SDK into
// out, and returns it.
func agEvent(t *testing.T, e *e2e, typ, id string, out any) client.Notification {
	t.Helper()
	var found client.Notification
	require.Eventually(t, func() bool {
		e.mu.Lock()
		n := len(e.received)
		e.mu.Unlock()
		for i := 1; i <= n; i++ {
			var res map[string]any
			nt, err := e.client.ParseNotification(e.notification(t, i), &res)
			if err != nil || nt.EventType != typ || res["id"] != id {
				continue
			}
			_, err = e.client.ParseNotification(e.notification(t, i), out)
			require.NoError(t, err)
			found = nt
			return true
		}
		return false
	}, 15*time.Second, 20*time.Millisecond, "no %s for %s", typ, id)
	return found
}

// TestEndToEndAgreement drives agreement payments over real HTTP on both
// stores: the merchant asks for an agreement with the SDK → the customer
// signs on the sign page's forms (a wrong holder and a wrong code refused)
// with the sandbox SMS code → AGREEMENT.SIGNED reaches the merchant →
// charges pay from the card at once (TRANSACTION.SUCCESS), replays return
// the same order, parallel charges never pass the per-day limit → the
// merchant revokes (AGREEMENT.REVOKED) → a charge is refused and creates
// nothing.
func TestEndToEndAgreement(t *testing.T) {
	t.Parallel()
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		e := startE2E(t, db)
		ctx := context.Background()
		_, err := e.p.customers.Seed(ctx)
		require.NoError(t, err)
		req := client.CreateAgreementRequest{OutAgreementNo: "E2E-AGR-0001", Plan: "Tea box, monthly", PerPaymentLimit: 2_000,
			DailyLimit: 5_000, EndDate: time.Now().AddDate(1, 0, 0).Format(time.DateOnly), NotifyURL: e.hook.URL + "/paygate/notify",
			ReturnURL: "https://shop.example/done"}
		a, err := e.client.CreateAgreement(ctx, req)
		require.NoError(t, err)
		require.Equal(t, "PENDING", a.Status)
		require.Equal(t, "http://checkout.local/agreements/"+a.ID, a.SignURL)
		again, err := e.client.CreateAgreement(ctx, req)
		require.NoError(t, err)
		require.Equal(t, a.ID, again.ID)
		diff := req
		diff.DailyLimit++
		_, err = e.client.CreateAgreement(ctx, diff)
		var ae *client.APIError
		require.ErrorAs(t, err, &ae)
		require.Equal(t, 409, ae.Status)
		require.Equal(t, "ID_CONFLICT", ae.Code)
		require.Equal(t, "daily_limit", ae.Detail["field"])
		_, err = e.client.ChargeAgreement(ctx, a.ID, client.ChargeAgreementRequest{OutTradeNo: "E2E-AGC-0000", Description: "Tea", Amount: client.Amount{Total: 100}})
		require.ErrorAs(t, err, &ae)
		require.Equal(t, 409, ae.Status, "not signed yet")

		// The customer signs on the page.
		jar, err := cookiejar.New(nil)
		require.NoError(t, err)
		b := &agBrowser{t: t, e: e, c: &http.Client{Jar: jar, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}}
		page := "/agreements/" + a.ID
		res, body := b.do("GET", page, nil)
		require.Equal(t, http.StatusOK, res.StatusCode)
		require.Contains(t, body, "Tea box, monthly")
		require.Contains(t, body, "At most CNY 20.00 a payment")
		holder := url.Values{"card_number": {"6288 8800 0000 0013"}, "name": {"王小明"}, "id_number": {"110101199003071233"}, "phone": {"13800000002"}}
		res, body = b.submit(page, "sign", holder)
		require.Equal(t, http.StatusUnprocessableEntity, res.StatusCode)
		require.Contains(t, agErrorRE.FindStringSubmatch(body)[1], "do not match")
		holder.Set("phone", agSandboxN)
		res, body = b.submit(page, "sign", holder)
		require.Equal(t, http.StatusOK, res.StatusCode, body)
		require.Contains(t, body, `id="sign-confirm"`)
		require.NotContains(t, body, "6288880000000013", "never the card number")
		cardID := agCardRE.FindStringSubmatch(body)[1]
		// The SMS job may be sending it already: wait for the sandbox inbox.
		code := ""
		require.Eventually(t, func() bool {
			_, err := e.p.smsWorker.RunOnce(ctx)
			require.NoError(t, err)
			sms, ok, err := e.p.db.SMSInbox().Latest(ctx, agSandboxN)
			require.NoError(t, err)
			code = sms.Code()
			return ok
		}, 10*time.Second, 10*time.Millisecond, "no SMS code")
		wrong := fmt.Sprintf("%06d", (int(code[0]-'0')*100000+1)%1_000_000)
		if wrong == code {
			wrong = "999999"
		}
		res, body = b.do("POST", page+"/sign/confirm", url.Values{"csrf_token": {agTokenRE.FindStringSubmatch(body)[1]}, "card_id": {cardID}, "code": {wrong}})
		require.Equal(t, http.StatusUnprocessableEntity, res.StatusCode)
		require.Contains(t, body, `id="sign-confirm"`, "the code form stays up")
		res, _ = b.do("POST", page+"/sign/confirm", url.Values{"csrf_token": {agTokenRE.FindStringSubmatch(body)[1]}, "card_id": {cardID}, "code": {code}})
		require.Equal(t, http.StatusSeeOther, res.StatusCode)
		require.Equal(t, page, res.Header.Get("Location"))
		_, body = b.do("GET", page, nil)
		require.Contains(t, body, `data-state="signed"`)
		require.Contains(t, body, `href="https://shop.example/done"`)
		res, _ = b.do("POST", page+"/sign", url.Values{"csrf_token": {"forged"}})
		require.Equal(t, http.StatusForbidden, res.StatusCode, "a forged token is refused")

		var signed client.Agreement
		n := agEvent(t, e, "AGREEMENT.SIGNED", a.ID, &signed)
		require.Equal(t, "agreement", n.Resource.OriginalType)
		require.Equal(t, "SIGNED", signed.Status)
		require.Equal(t, "628888******0013", signed.Card)

		// Charges.
		creq := client.ChargeAgreementRequest{OutTradeNo: "E2E-AGC-0001", Description: "Tea box, December", Amount: client.Amount{Total: 2_000}}
		ch, err := e.client.ChargeAgreement(ctx, a.ID, creq)
		require.NoError(t, err)
		require.Equal(t, "SUCCESS", ch.Status)
		require.Equal(t, "SUCCESS", ch.Order.Status)
		var paid client.Order
		agEvent(t, e, "TRANSACTION.SUCCESS", ch.Order.ID, &paid)
		require.Equal(t, "E2E-AGC-0001", paid.OutTradeNo)
		status, err := e.client.Do(ctx, "POST", "/v1/agreements/"+a.ID+"/charges", creq, nil)
		require.NoError(t, err)
		require.Equal(t, 200, status, "a replay answers 200")
		creq.Amount.Total = 2_001
		_, err = e.client.ChargeAgreement(ctx, a.ID, creq)
		require.ErrorAs(t, err, &ae)
		require.Equal(t, "OUT_TRADE_NO_USED", ae.Code)

		// Parallel: one number raced by several requests pays once; distinct
		// numbers never pass the 50.00 day (20.00 used: 30.00 left).
		var wg sync.WaitGroup
		ids := make([]string, 4)
		for i := range ids {
			wg.Go(func() {
				c, err := e.client.ChargeAgreement(ctx, a.ID, client.ChargeAgreementRequest{OutTradeNo: "E2E-AGC-RACE", Description: "Tea", Amount: client.Amount{Total: 1_000}})
				if err == nil {
					ids[i] = c.Order.ID
				}
			})
		}
		wg.Wait()
		for _, id := range ids {
			require.Equal(t, ids[0], id, "one order for one number")
		}
		okN, refused := 0, 0
		var mu sync.Mutex
		for i := range 6 {
			wg.Go(func() {
				_, err := e.client.ChargeAgreement(ctx, a.ID, client.ChargeAgreementRequest{OutTradeNo: fmt.Sprintf("E2E-AGC-P%02d", i), Description: "Tea", Amount: client.Amount{Total: 1_000}})
				mu.Lock()
				defer mu.Unlock()
				var ae *client.APIError
				switch {
				case err == nil:
					okN++
				case assertAPIError(err, &ae) && ae.Code == "LIMIT_EXCEEDED" && ae.Status == 422:
					refused++
				default:
					t.Errorf("unexpected: %v", err)
				}
			})
		}
		wg.Wait()
		require.Equal(t, 2, okN, "20.00 + 10.00 (race) + 2 × 10.00 = the 50.00 day")
		require.Equal(t, 4, refused)

		// Bad input over HTTP.
		for _, c := range []struct {
			body  string
			code  string
			field string
		}{
			{`{"out_trade_no":"E2E-AGC-B1","description":"x","amount":{"total":0}}`, "AMOUNT_NOT_POSITIVE", "amount.total"},
			{`{"out_trade_no":"E2E-AGC-B2","description":"x","amount":{"total":-5}}`, "AMOUNT_NOT_POSITIVE", "amount.total"},
			{`{"out_trade_no":"E2E-AGC-B3","description":"x","amount":{"total":100,"currency":"XYZ"}}`, "UNKNOWN_CURRENCY", "amount.currency"},
			{`{"out_trade_no":"E2E-AGC-B4","description":"x","amount":{"total":9223372036854775808}}`, "INVALID_ARGUMENT", "amount.total"},
			{`{"out_trade_no":"E2E-AGC-B5","description":"x","amount":{"total":"1"}}`, "INVALID_ARGUMENT", "amount.total"},
		} {
			_, err := e.client.Do(ctx, "POST", "/v1/agreements/"+a.ID+"/charges", json.RawMessage(c.body), nil)
			require.ErrorAs(t, err, &ae, c.body)
			require.Equal(t, c.code, ae.Code, c.body)
			if c.field != "" {
				require.Equal(t, c.field, ae.Detail["field"], c.body)
			}
		}

		// The merchant revokes; charges are refused and create nothing.
		r, err := e.client.RevokeAgreement(ctx, a.ID)
		require.NoError(t, err)
		require.Equal(t, "REVOKED", r.Status)
		require.Equal(t, "MERCHANT", r.RevokedBy)
		var revoked client.Agreement
		agEvent(t, e, "AGREEMENT.REVOKED", a.ID, &revoked)
		require.Equal(t, "REVOKED", revoked.Status)
		_, err = e.client.ChargeAgreement(ctx, a.ID, client.ChargeAgreementRequest{OutTradeNo: "E2E-AGC-9999", Description: "Tea", Amount: client.Amount{Total: 100}})
		require.ErrorAs(t, err, &ae)
		require.Equal(t, 409, ae.Status)
		require.Equal(t, "CONFLICT", ae.Code)
		_, err = e.client.GetOrderByOutTradeNo(ctx, "E2E-AGC-9999")
		require.ErrorAs(t, err, &ae)
		require.Equal(t, 404, ae.Status, "a refused charge leaves no order")
		got, err := e.client.GetAgreementByOutAgreementNo(ctx, "E2E-AGR-0001")
		require.NoError(t, err)
		require.Equal(t, "REVOKED", got.Status)
		list, err := e.client.ListAgreements(ctx, client.ListAgreementsParams{Status: "REVOKED"})
		require.NoError(t, err)
		require.Len(t, list.Data, 1)
		bad, err := db.LedgerCheck(ctx)
		require.NoError(t, err)
		require.Empty(t, bad)
	})
}

// agSign signs the agreement on its sign page with the sandbox payer's
// card number, as the customer does: the card form, then the code the
// sandbox phone received (a new one: the inbox's previous message is
// skipped). It returns the code step's page.
func agSign(t *testing.T, e *e2e, b *agBrowser, id, number string) string {
	t.Helper()
	ctx := context.Background()
	before, _, err := e.p.db.SMSInbox().Latest(ctx, agSandboxN)
	require.NoError(t, err)
	page := "/agreements/" + id
	res, body := b.submit(page, "sign", url.Values{"card_number": {number}, "name": {"王小明"}, "id_number": {"110101199003071233"},
		"phone": {agSandboxN}})
	require.Equal(t, http.StatusOK, res.StatusCode, body)
	require.Contains(t, body, `id="sign-confirm"`)
	require.NotContains(t, body, number, "never the card number")
	code := ""
	require.Eventually(t, func() bool {
		_, err := e.p.smsWorker.RunOnce(ctx)
		require.NoError(t, err)
		sms, ok, err := e.p.db.SMSInbox().Latest(ctx, agSandboxN)
		require.NoError(t, err)
		code = sms.Code()
		return ok && sms.MessageID != before.MessageID
	}, 10*time.Second, 10*time.Millisecond, "no SMS code")
	res, _ = b.do("POST", page+"/sign/confirm", url.Values{"csrf_token": {agTokenRE.FindStringSubmatch(body)[1]},
		"card_id": {agCardRE.FindStringSubmatch(body)[1]}, "code": {code}})
	require.Equal(t, http.StatusSeeOther, res.StatusCode)
	return body
}

// agOrderStatus waits until the order's query shows one of the final
// statuses and returns it.
func agOrderStatus(t *testing.T, e *e2e, orderID string, final ...string) string {
	t.Helper()
	var status string
	require.Eventually(t, func() bool {
		o, err := e.client.GetOrder(context.Background(), orderID)
		require.NoError(t, err)
		status = o.Status
		for _, s := range final {
			if s == status {
				return true
			}
		}
		return false
	}, 15*time.Second, 20*time.Millisecond, "order %s never left %s", orderID, status)
	return status
}

// TestEndToEndAgreementOtherBank drives agreements signed with other
// banks' cards over real HTTP on both stores: the customer signs on the
// sign page with another bank's card (the code step and the signed page
// show it masked, with its bank) → AGREEMENT.SIGNED → a charge answers
// PROCESSING, and the interbank switch's answer brings TRANSACTION.SUCCESS
// and the order SUCCESS. With the card whose bank declines, the charge is
// PROCESSING, then PAYERROR, and it no longer counts against the day: a
// charge that would not fit beside it passes the limit, while one over
// what is left is still refused. The ledger balances.
func TestEndToEndAgreementOtherBank(t *testing.T) {
	t.Parallel()
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		e := startE2E(t, db)
		ctx := context.Background()
		_, err := e.p.customers.Seed(ctx)
		require.NoError(t, err)
		jar, err := cookiejar.New(nil)
		require.NoError(t, err)
		b := &agBrowser{t: t, e: e, c: &http.Client{Jar: jar, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}}
		notify := e.hook.URL + "/paygate/notify"

		// Another bank's card, signed on the page.
		a, err := e.client.CreateAgreement(ctx, client.CreateAgreementRequest{OutAgreementNo: "E2E-AGR-OB01", Plan: "Phone top-up",
			PerPaymentLimit: 2_000, DailyLimit: 3_000, NotifyURL: notify, ReturnURL: "https://shop.example/done"})
		require.NoError(t, err)
		confirm := agSign(t, e, b, a.ID, "6299 9900 0000 0066")
		require.Contains(t, confirm, "629999******0066")
		require.Contains(t, confirm, "SANDBOX INTERBANK")
		_, body := b.do("GET", "/agreements/"+a.ID, nil)
		require.Contains(t, body, `data-state="signed"`)
		require.Contains(t, body, "629999******0066")
		var signed client.Agreement
		agEvent(t, e, "AGREEMENT.SIGNED", a.ID, &signed)
		require.Equal(t, "SIGNED", signed.Status)
		require.Equal(t, "629999******0066", signed.Card)
		require.Equal(t, "SANDBOX INTERBANK", signed.Bank)

		ch, err := e.client.ChargeAgreement(ctx, a.ID, client.ChargeAgreementRequest{OutTradeNo: "E2E-AGC-OB01", Description: "Top-up",
			Amount: client.Amount{Total: 2_000}})
		require.NoError(t, err)
		require.Equal(t, "PROCESSING", ch.Status, "at the card's bank")
		require.Equal(t, "NOTPAY", ch.Order.Status)
		var paid client.Order
		agEvent(t, e, "TRANSACTION.SUCCESS", ch.Order.ID, &paid)
		require.Equal(t, "SUCCESS", paid.Status)
		require.Equal(t, "E2E-AGC-OB01", paid.OutTradeNo)
		require.Equal(t, a.ID, paid.Metadata["agreement_id"])
		require.Equal(t, "SUCCESS", agOrderStatus(t, e, ch.Order.ID, "SUCCESS", "PAYERROR"))
		var ae *client.APIError
		_, err = e.client.ChargeAgreement(ctx, a.ID, client.ChargeAgreementRequest{OutTradeNo: "E2E-AGC-OB02", Description: "Top-up",
			Amount: client.Amount{Total: 1_001}})
		require.ErrorAs(t, err, &ae)
		require.Equal(t, "LIMIT_EXCEEDED", ae.Code, "20.00 paid of the 30.00 day")

		// The card whose bank declines: a declined charge stops counting.
		d, err := e.client.CreateAgreement(ctx, client.CreateAgreementRequest{OutAgreementNo: "E2E-AGR-OB02", Plan: "Phone top-up",
			DailyLimit: 1_000, NotifyURL: notify})
		require.NoError(t, err)
		agSign(t, e, b, d.ID, "6299990000000074")
		agEvent(t, e, "AGREEMENT.SIGNED", d.ID, &signed)
		declined := func(no string, amount int64) {
			t.Helper()
			ch, err := e.client.ChargeAgreement(ctx, d.ID, client.ChargeAgreementRequest{OutTradeNo: no, Description: "Top-up",
				Amount: client.Amount{Total: amount}})
			require.NoError(t, err, no)
			require.Contains(t, []string{"PROCESSING", "FAILED"}, ch.Status, no)
			require.Equal(t, "PAYERROR", agOrderStatus(t, e, ch.Order.ID, "SUCCESS", "PAYERROR"), no)
		}
		declined("E2E-AGC-OB03", 800)
		declined("E2E-AGC-OB04", 900) // 8.00 + 9.00 > 10.00: passes only because the first was declined
		declined("E2E-AGC-OB05", 1_000)
		_, err = e.client.ChargeAgreement(ctx, d.ID, client.ChargeAgreementRequest{OutTradeNo: "E2E-AGC-OB06", Description: "Top-up",
			Amount: client.Amount{Total: 1_001}})
		require.ErrorAs(t, err, &ae)
		require.Equal(t, "LIMIT_EXCEEDED", ae.Code, "the limit itself still holds")
		bad, err := db.LedgerCheck(ctx)
		require.NoError(t, err)
		require.Empty(t, bad)
	})
}
