package main

import (
	"bytes"
	"context"
	"crypto/rsa"
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"paygate/client"
	"paygate/ledger"
	"paygate/merchant"
	"paygate/signing"
	"paygate/store"
	"paygate/store/storetest"
)

// TestEndToEndRefund drives refunds over HTTP with the Go SDK on both
// stores: create → pay in the sandbox → partial refund (held, submitted to
// the simulated channel, learnt by the refund job) → REFUND.SUCCESS
// notification verified and decrypted by the SDK → queries → a replay, a
// reused number, an over-refund, another merchant → the rest refunded →
// the merchant's pending account back at zero, the fee returned, the
// ledger balanced.
func TestEndToEndRefund(t *testing.T) {
	t.Parallel()
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		e := startE2E(t, db)
		ctx := context.Background()
		o, err := e.client.CreateOrder(ctx, client.CreateOrderRequest{OutTradeNo: "E2E-R-0001", Description: "Green tea",
			Amount: client.Amount{Total: 10_000, Currency: "CNY"}, NotifyURL: e.hook.URL + "/paygate/notify"})
		require.NoError(t, err)
		_, err = e.client.SandboxPay(ctx, o.ID, "success")
		require.NoError(t, err)
		var paid client.Order
		n, err := e.client.ParseNotification(e.notification(t, 1), &paid)
		require.NoError(t, err)
		require.Equal(t, "TRANSACTION.SUCCESS", n.EventType)

		req := client.CreateRefundRequest{OutTradeNo: "E2E-R-0001", OutRefundNo: "E2E-R-0001-1", Reason: "one item returned",
			Amount: client.RefundAmount{Refund: 2_500, Total: 10_000, Currency: "CNY"}}
		r, err := e.client.CreateRefund(ctx, req)
		require.NoError(t, err)
		require.Equal(t, "PROCESSING", r.Status, "through a channel: the answer comes later")
		require.Equal(t, o.ID, r.OrderID)
		require.Equal(t, "PENDING", r.FundsSource)
		require.Equal(t, "sim", r.Channel)
		require.Equal(t, paid.TransactionID, r.TransactionID)
		again, err := e.client.CreateRefund(ctx, req)
		require.NoError(t, err)
		require.Equal(t, r.ID, again.ID, "an identical replay returns the same refund")
		status, err := e.client.Do(ctx, "POST", "/v1/refunds", req, nil)
		require.NoError(t, err)
		require.Equal(t, 200, status, "a replay answers 200")
		diff := req
		diff.Amount.Refund++
		_, err = e.client.CreateRefund(ctx, diff)
		var ae *client.APIError
		require.ErrorAs(t, err, &ae)
		require.Equal(t, 409, ae.Status)
		require.Equal(t, "OUT_REFUND_NO_USED", ae.Code)
		require.Equal(t, "amount.refund", ae.Detail["field"])

		var done client.Refund
		n, err = e.client.ParseNotification(e.notification(t, 2), &done)
		require.NoError(t, err, "the SDK verifies and decrypts the refund notification")
		require.Equal(t, "REFUND.SUCCESS", n.EventType)
		require.Equal(t, "refund", n.Resource.OriginalType)
		require.Equal(t, r.ID, done.ID)
		require.Equal(t, "SUCCESS", done.Status)
		require.Equal(t, "E2E-R-0001-1", done.OutRefundNo)
		require.Equal(t, int64(2_500), done.Amount.Refund)
		require.Equal(t, int64(2_500), done.Amount.PayerRefund)
		require.False(t, done.SuccessTime.IsZero())

		got, err := e.client.GetRefund(ctx, r.ID)
		require.NoError(t, err)
		require.Equal(t, "SUCCESS", got.Status)
		got, err = e.client.GetRefundByOutRefundNo(ctx, "E2E-R-0001-1")
		require.NoError(t, err)
		require.Equal(t, r.ID, got.ID)
		list, err := e.client.ListRefunds(ctx, o.ID)
		require.NoError(t, err)
		require.Len(t, list, 1)
		order, err := e.client.GetOrder(ctx, o.ID)
		require.NoError(t, err)
		require.Equal(t, "REFUND", order.Status)

		_, err = e.client.CreateRefund(ctx, client.CreateRefundRequest{OrderID: o.ID, OutRefundNo: "E2E-R-0001-X",
			Amount: client.RefundAmount{Refund: 7_501, Total: 10_000, Currency: "CNY"}})
		require.ErrorAs(t, err, &ae)
		require.Equal(t, 422, ae.Status)
		require.Equal(t, "LIMIT_EXCEEDED", ae.Code)

		other, err := e.p.merchants.Create(ctx, merchant.CreateRequest{Name: "Other Shop", Sandbox: true})
		require.NoError(t, err)
		oc, err := client.New(client.Config{BaseURL: e.srv.URL, MchID: other.Merchant.ID, SerialNo: other.Key.SerialNo, PrivateKey: other.PrivateKey,
			PlatformKeys: map[string]*rsa.PublicKey{e.platform.SerialNo: e.pub}, APIv3Key: other.APIv3Key})
		require.NoError(t, err)
		_, err = oc.GetRefund(ctx, r.ID)
		require.ErrorAs(t, err, &ae)
		require.Equal(t, 404, ae.Status)
		_, err = oc.CreateRefund(ctx, client.CreateRefundRequest{OrderID: o.ID, OutRefundNo: "OTHER-1",
			Amount: client.RefundAmount{Refund: 1, Total: 10_000, Currency: "CNY"}})
		require.ErrorAs(t, err, &ae)
		require.Equal(t, 404, ae.Status, "another merchant's order is not found")

		// The rest: the last refund takes the rest of the fee.
		last, err := e.client.CreateRefund(ctx, client.CreateRefundRequest{OrderID: o.ID, OutRefundNo: "E2E-R-0001-2",
			Amount: client.RefundAmount{Refund: 7_500, Total: 10_000, Currency: "CNY"}})
		require.NoError(t, err)
		n, err = e.client.ParseNotification(e.notification(t, 3), &done)
		require.NoError(t, err)
		require.Equal(t, "REFUND.SUCCESS", n.EventType)
		require.Equal(t, last.ID, done.ID)
		fee := e.created.Merchant.Fee(10_000)
		require.Equal(t, fee, got.Amount.FeeRefund+last.Amount.FeeRefund, "the whole fee came back")
		accts, err := e.p.ledger.LookupAccounts(ctx, []string{ledger.MerchantPending(e.created.Merchant.ID, "CNY").ID})
		require.NoError(t, err)
		require.Zero(t, accts[0].Net(ledger.Credit))
		bad, err := db.LedgerCheck(ctx)
		require.NoError(t, err)
		require.Empty(t, bad)
	})
}

// TestEndToEndRefundBadInput: malformed bodies, wrong types, an oversized
// body and an unknown currency are refused over HTTP with the error shape,
// and record nothing.
func TestEndToEndRefundBadInput(t *testing.T) {
	t.Parallel()
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		e := startE2E(t, db)
		ctx := context.Background()
		o, err := e.client.CreateOrder(ctx, client.CreateOrderRequest{OutTradeNo: "E2E-RB-001", Description: "tea",
			Amount: client.Amount{Total: 1_000, Currency: "CNY"}, NotifyURL: e.hook.URL})
		require.NoError(t, err)
		good := `{"order_id":"` + o.ID + `","out_refund_no":"RB-1","amount":{"refund":100,"total":1000,"currency":"CNY"}}`
		cases := []struct {
			name, method, path, body string
			status                   int
			code, field              string
		}{
			{"malformed", "POST", "/v1/refunds", `{"order_id":`, 400, "INVALID_ARGUMENT", ""},
			{"not an object", "POST", "/v1/refunds", `[]`, 400, "INVALID_ARGUMENT", ""},
			{"wrong type", "POST", "/v1/refunds", strings.Replace(good, `"refund":100`, `"refund":"100"`, 1), 400, "INVALID_ARGUMENT", "amount.refund"},
			{"fraction", "POST", "/v1/refunds", strings.Replace(good, `"refund":100`, `"refund":1.5`, 1), 400, "INVALID_ARGUMENT", "amount.refund"},
			{"overflow", "POST", "/v1/refunds", strings.Replace(good, `"refund":100`, `"refund":99999999999999999999`, 1), 400, "INVALID_ARGUMENT", "amount.refund"},
			{"negative", "POST", "/v1/refunds", strings.Replace(good, `"refund":100`, `"refund":-100`, 1), 400, "AMOUNT_NOT_POSITIVE", "amount.refund"},
			{"unknown field", "POST", "/v1/refunds", strings.Replace(good, `{`, `{"refund_fee":1,`, 1), 400, "INVALID_ARGUMENT", "refund_fee"},
			{"unknown currency", "POST", "/v1/refunds", strings.Replace(good, `"CNY"`, `"ABC"`, 1), 400, "UNKNOWN_CURRENCY", "amount.currency"},
			{"bad if_insufficient", "POST", "/v1/refunds", strings.Replace(good, `{`, `{"if_insufficient":"LATER",`, 1), 400, "INVALID_ARGUMENT", "if_insufficient"},
			{"oversized", "POST", "/v1/refunds", `{"reason":"` + strings.Repeat("x", 70_000) + `"}`, 413, "TOO_LARGE", ""},
			{"unpaid order", "POST", "/v1/refunds", good, 409, "CONFLICT", ""},
			{"list without order", "GET", "/v1/refunds", "", 400, "INVALID_ARGUMENT", "order_id"},
			{"unknown refund", "GET", "/v1/refunds/rfd_nope", "", 404, "NOT_FOUND", ""},
			{"close with a body", "POST", "/v1/refunds/rfd_nope/close", `{"x":1}`, 400, "INVALID_ARGUMENT", "x"},
		}
		for _, c := range cases {
			status, body := e.raw(t, c.method, c.path, c.body)
			require.Equal(t, c.status, status, "%s: %s", c.name, body)
			var eb struct {
				Code, Message string
				Detail        map[string]string
			}
			require.NoError(t, json.Unmarshal(body, &eb), c.name)
			require.Equal(t, c.code, eb.Code, c.name)
			require.NotEmpty(t, eb.Message, c.name)
			require.Equal(t, c.field, eb.Detail["field"], c.name)
		}
		var n int
		require.NoError(t, db.SQL.QueryRow(`SELECT COUNT(*) FROM payment_refunds`).Scan(&n))
		require.Zero(t, n)
	})
}

// raw sends a request with an exact body, signed as the merchant, and
// returns the status and body.
func (e *e2e) raw(t *testing.T, method, path, body string) (int, []byte) {
	t.Helper()
	ts, nonce := time.Now().Unix(), signing.NewNonce()
	sig, err := signing.Sign(e.created.PrivateKey, signing.RequestMessage(method, path, ts, nonce, []byte(body)))
	require.NoError(t, err)
	req, err := http.NewRequest(method, e.srv.URL+path, strings.NewReader(body))
	require.NoError(t, err)
	req.Header.Set("Authorization", signing.Authorization{MchID: e.created.Merchant.ID, Nonce: nonce, Timestamp: ts,
		SerialNo: e.created.Key.SerialNo, Signature: sig}.String())
	req.Header.Set("Content-Type", "application/json")
	res, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	defer res.Body.Close()
	var b bytes.Buffer
	_, err = b.ReadFrom(res.Body)
	require.NoError(t, err)
	return res.StatusCode, b.Bytes()
}
