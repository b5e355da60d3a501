package main

import (
	"context"
	"crypto/rsa"
	"encoding/json"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"paygate/client"
	"paygate/merchant"
	"paygate/store"
	"paygate/store/storetest"
)

// waitEvent waits for a notification of the event type, decrypts it into
// resource with the SDK and returns its envelope.
func (e *e2e) waitEvent(t *testing.T, typ string, resource any) client.Notification {
	t.Helper()
	for n := 1; ; n++ {
		req := e.notification(t, n)
		got, err := e.client.ParseNotification(req, resource)
		require.NoError(t, err, "the SDK verifies and decrypts every notification")
		if got.EventType == typ {
			return got
		}
	}
}

// TestEndToEndRefundBatch drives a refund batch over HTTP with the Go SDK
// on both stores: orders paid in the sandbox → a batch of good and bad
// lines submitted six times at once (one 202, five 200, one batch) → a
// replay (200, same batch) and a reused number (409) → the worker refunds
// the good lines (through the simulated channel) and fails each bad one
// alone → FINISHED, queried page by page →
// REFUND.BATCH_FINISHED and REFUND.SUCCESS notifications verified and
// decrypted → another merchant sees nothing → each out_refund_no refunded
// once, the ledger balanced.
func TestEndToEndRefundBatch(t *testing.T) {
	t.Parallel()
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		e := startE2E(t, db)
		ctx := context.Background()
		var orders []client.Order
		for i := range 3 {
			o, err := e.client.CreateOrder(ctx, client.CreateOrderRequest{OutTradeNo: fmt.Sprintf("E2E-RB-%04d", i), Description: "Green tea",
				Amount: client.Amount{Total: 10_000, Currency: "CNY"}, NotifyURL: e.hook.URL + "/paygate/notify"})
			require.NoError(t, err)
			_, err = e.client.SandboxPay(ctx, o.ID, "success")
			require.NoError(t, err)
			orders = append(orders, o)
		}
		e.notification(t, 3) // all three paid
		item := func(no string, o client.Order, amount int64) client.RefundBatchItemRequest {
			return client.RefundBatchItemRequest{OutRefundNo: no, OrderID: o.ID, Reason: "returned",
				Amount: client.RefundAmount{Refund: amount, Total: o.Amount.Total, Currency: "CNY"}}
		}
		byNo := item("E2E-RB-4", orders[2], 10_000)
		byNo.OrderID, byNo.OutTradeNo = "", orders[2].OutTradeNo
		req := client.CreateRefundBatchRequest{OutBatchNo: "E2E-BATCH-1", NotifyURL: e.hook.URL + "/paygate/notify",
			Items: []client.RefundBatchItemRequest{
				item("E2E-RB-1", orders[0], 2_500),
				item("E2E-RB-2", orders[0], 7_500),
				item("E2E-RB-3", orders[0], 1),   // over-refund: fails alone
				item("E2E-RB-1", orders[1], 100), // repeats line 1's number: fails alone
				byNo,                             // by out_trade_no
				item("E2E-RB-5", orders[1], 0),   // zero amount: fails alone
				item("E2E-RB-6", client.Order{ID: "ord_nope", Amount: client.Amount{Total: 1}}, 1), // unknown order
				item("E2E-RB-7", orders[1], 10_000),                                                // the whole order
			}}
		// The same batch six times at once: one batch, one 202.
		var wg sync.WaitGroup
		var mu sync.Mutex
		statuses, ids := map[int]int{}, map[string]bool{}
		for range 6 {
			wg.Go(func() {
				var got client.RefundBatch
				status, err := e.client.Do(ctx, "POST", "/v1/refunds/batches", req, &got)
				mu.Lock()
				defer mu.Unlock()
				if err != nil {
					t.Error(err)
					return
				}
				statuses[status]++
				ids[got.ID] = true
			})
		}
		wg.Wait()
		require.Equal(t, map[int]int{202: 1, 200: 5}, statuses)
		require.Len(t, ids, 1)
		b, err := e.client.CreateRefundBatch(ctx, req)
		require.NoError(t, err)
		require.True(t, ids[b.ID])
		require.Equal(t, 8, b.TotalCount)
		require.True(t, strings.HasPrefix(b.ID, "rfb_"))
		status, err := e.client.Do(ctx, "POST", "/v1/refunds/batches", req, nil)
		require.NoError(t, err)
		require.Equal(t, 200, status, "a replay answers 200")
		again, err := e.client.CreateRefundBatch(ctx, req)
		require.NoError(t, err)
		require.Equal(t, b.ID, again.ID)
		diff := req
		diff.Items = append([]client.RefundBatchItemRequest(nil), req.Items...)
		diff.Items[1].Amount.Refund--
		_, err = e.client.CreateRefundBatch(ctx, diff)
		var ae *client.APIError
		require.ErrorAs(t, err, &ae)
		require.Equal(t, 409, ae.Status)
		require.Equal(t, "OUT_BATCH_NO_USED", ae.Code)
		require.Equal(t, "items[1].amount.refund", ae.Detail["field"])

		require.Eventually(t, func() bool {
			got, err := e.client.GetRefundBatch(ctx, b.ID, client.RefundBatchPage{})
			return err == nil && got.Status == "FINISHED"
		}, 30*time.Second, 20*time.Millisecond, "the batch never finished")
		var lines []client.RefundBatchItem
		p := client.RefundBatchPage{Limit: 3}
		for {
			got, err := e.client.GetRefundBatchByOutBatchNo(ctx, "E2E-BATCH-1", p)
			require.NoError(t, err)
			require.Equal(t, 4, got.AcceptedCount)
			require.Equal(t, 4, got.FailedCount)
			require.Equal(t, int64(2_500+7_500+10_000+10_000), got.AcceptedAmount)
			lines = append(lines, got.Items...)
			if got.NextCursor == "" {
				break
			}
			p.Cursor = got.NextCursor
		}
		require.Len(t, lines, 8)
		wantFail := map[int]string{3: "LIMIT_EXCEEDED", 4: "INVALID_ARGUMENT", 6: "AMOUNT_NOT_POSITIVE", 7: "NOT_FOUND"}
		for i, it := range lines {
			require.Equal(t, i+1, it.Line)
			if code, bad := wantFail[it.Line]; bad {
				require.Equal(t, "FAILED", it.Status, "line %d", it.Line)
				require.Equal(t, code, it.FailCode, "line %d", it.Line)
				require.NotEmpty(t, it.FailMessage)
				continue
			}
			require.Equal(t, "ACCEPTED", it.Status, "line %d: %+v", it.Line, it)
			r, err := e.client.GetRefund(ctx, it.RefundID)
			require.NoError(t, err)
			require.Equal(t, it.OutRefundNo, r.OutRefundNo)
		}

		var fin client.RefundBatch
		n := e.waitEvent(t, "REFUND.BATCH_FINISHED", &fin)
		require.Equal(t, "refund_batch", n.Resource.OriginalType)
		require.Equal(t, b.ID, fin.ID)
		require.Equal(t, "FINISHED", fin.Status)
		require.Equal(t, 4, fin.AcceptedCount)
		require.Empty(t, fin.Items)
		var done client.Refund
		e.waitEvent(t, "REFUND.SUCCESS", &done)
		require.True(t, strings.HasPrefix(done.OutRefundNo, "E2E-RB-"))

		other, err := e.p.merchants.Create(ctx, merchant.CreateRequest{Name: "Other Shop", Sandbox: true})
		require.NoError(t, err)
		oc, err := client.New(client.Config{BaseURL: e.srv.URL, MchID: other.Merchant.ID, SerialNo: other.Key.SerialNo, PrivateKey: other.PrivateKey,
			PlatformKeys: map[string]*rsa.PublicKey{e.platform.SerialNo: e.pub}, APIv3Key: other.APIv3Key})
		require.NoError(t, err)
		_, err = oc.GetRefundBatch(ctx, b.ID, client.RefundBatchPage{})
		require.ErrorAs(t, err, &ae)
		require.Equal(t, 404, ae.Status, "another merchant's batch is not found")
		_, err = oc.GetRefundBatchByOutBatchNo(ctx, "E2E-BATCH-1", client.RefundBatchPage{})
		require.ErrorAs(t, err, &ae)
		require.Equal(t, 404, ae.Status)
		theirs, err := oc.CreateRefundBatch(ctx, client.CreateRefundBatchRequest{OutBatchNo: "E2E-BATCH-1",
			Items: []client.RefundBatchItemRequest{item("OTHER-1", orders[1], 1)}})
		require.NoError(t, err, "batch numbers are per merchant")
		require.Eventually(t, func() bool {
			got, err := oc.GetRefundBatch(ctx, theirs.ID, client.RefundBatchPage{})
			return err == nil && got.Status == "FINISHED" && got.FailedCount == 1 && got.Items[0].FailCode == "NOT_FOUND"
		}, 30*time.Second, 20*time.Millisecond, "another merchant's order is not found")

		var dup int
		require.NoError(t, db.SQL.QueryRow(`SELECT COUNT(*) FROM (SELECT out_refund_no FROM payment_refunds
			GROUP BY merchant_id, out_refund_no HAVING COUNT(*) > 1) d`).Scan(&dup))
		require.Zero(t, dup)
		var refunds int
		require.NoError(t, db.SQL.QueryRow(`SELECT COUNT(*) FROM payment_refunds`).Scan(&refunds))
		require.Equal(t, 4, refunds)
		bad, err := db.LedgerCheck(ctx)
		require.NoError(t, err)
		require.Empty(t, bad)
	})
}

// TestEndToEndRefundBatchBadInput: malformed bodies, wrong types, an
// oversized body, too many items and an unknown currency are refused over
// HTTP with the error shape, and store nothing.
func TestEndToEndRefundBatchBadInput(t *testing.T) {
	t.Parallel()
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		e := startE2E(t, db)
		line := `{"out_refund_no":"R-%d","order_id":"ord_x","amount":{"refund":100,"total":1000,"currency":"CNY"}}`
		items := func(n int) string {
			var s []string
			for i := range n {
				s = append(s, fmt.Sprintf(line, i))
			}
			return "[" + strings.Join(s, ",") + "]"
		}
		good := `{"out_batch_no":"BB-1","items":` + items(1) + `}`
		cases := []struct {
			name, method, path, body string
			status                   int
			code, field              string
		}{
			{"malformed", "POST", "/v1/refunds/batches", `{"out_batch_no":`, 400, "INVALID_ARGUMENT", ""},
			{"not an object", "POST", "/v1/refunds/batches", `[]`, 400, "INVALID_ARGUMENT", ""},
			{"wrong type", "POST", "/v1/refunds/batches", strings.Replace(good, `"refund":100`, `"refund":"100"`, 1), 400, "INVALID_ARGUMENT", "items.amount.refund"},
			{"fraction", "POST", "/v1/refunds/batches", strings.Replace(good, `"refund":100`, `"refund":1.5`, 1), 400, "INVALID_ARGUMENT", "items.amount.refund"},
			{"overflow", "POST", "/v1/refunds/batches", strings.Replace(good, `"refund":100`, `"refund":99999999999999999999`, 1), 400, "INVALID_ARGUMENT", "items.amount.refund"},
			{"unknown field", "POST", "/v1/refunds/batches", strings.Replace(good, `{`, `{"priority":1,`, 1), 400, "INVALID_ARGUMENT", "priority"},
			{"no items", "POST", "/v1/refunds/batches", `{"out_batch_no":"BB-1","items":[]}`, 400, "INVALID_ARGUMENT", "items"},
			{"1,001 items", "POST", "/v1/refunds/batches", `{"out_batch_no":"BB-1","items":` + items(1001) + `}`, 400, "INVALID_ARGUMENT", "items"},
			{"bad out_batch_no", "POST", "/v1/refunds/batches", strings.Replace(good, `BB-1`, `BB 1`, 1), 400, "INVALID_ARGUMENT", "out_batch_no"},
			{"unknown currency", "POST", "/v1/refunds/batches", strings.Replace(good, `{"out_batch_no"`, `{"currency":"ABC","out_batch_no"`, 1), 400, "UNKNOWN_CURRENCY", "currency"},
			{"bad notify_url", "POST", "/v1/refunds/batches", strings.Replace(good, `{"out_batch_no"`, `{"notify_url":"ftp://x","out_batch_no"`, 1), 400, "INVALID_ARGUMENT", "notify_url"},
			{"oversized", "POST", "/v1/refunds/batches", `{"out_batch_no":"` + strings.Repeat("x", 1<<20) + `"}`, 413, "TOO_LARGE", ""},
			{"unknown batch", "GET", "/v1/refunds/batches/rfb_nope", "", 404, "NOT_FOUND", ""},
			{"bad limit", "GET", "/v1/refunds/batches/rfb_nope?limit=5000", "", 400, "INVALID_ARGUMENT", "limit"},
			{"bad cursor", "GET", "/v1/refunds/batches/out-batch-no/BB-1?cursor=abc", "", 400, "INVALID_ARGUMENT", "cursor"},
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
		require.NoError(t, db.SQL.QueryRow(`SELECT COUNT(*) FROM refund_batches`).Scan(&n))
		require.Zero(t, n)
		// A 1,000-item batch of unknown orders is accepted (its lines fail alone).
		status, body := e.raw(t, "POST", "/v1/refunds/batches", `{"out_batch_no":"BB-2","items":`+items(1000)+`}`)
		require.Equal(t, 202, status, "%s", body)
	})
}
