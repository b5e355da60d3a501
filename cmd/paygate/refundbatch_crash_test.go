package main

import (
	"context"
	"crypto/rand"
	"crypto/rsa"
	"encoding/base64"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"paygate"
	"paygate/client"
	"paygate/merchant"
	"paygate/signing"
	"paygate/store"
	"paygate/store/storetest"
)

// crashOrders and crashLinesPerOrder shape the crash test's batch: a full
// batch of 1,000 lines, ten partial refunds of each order, the last
// order's tenth line over-refunding it.
const (
	crashOrders        = 100
	crashLinesPerOrder = 10
	crashTotal         = 10_000
)

// TestRefundBatchCrash runs the real binary (`paygate serve`) on a fresh
// database of each dialect, submits a 1,000-line batch over paid orders
// through the SDK, kills the server (SIGKILL) while the batch is being
// worked through, starts it again, submits the same batch again (a replay,
// which gets it moving at once), waits for FINISHED, and checks that no
// money moved twice: each out_refund_no has exactly one refund and one
// ledger hold, no order's refunds exceed what was paid, the batch's counts
// match its lines, and the ledger balances.
func TestRefundBatchCrash(t *testing.T) {
	t.Parallel()
	for _, d := range []store.Dialect{store.SQLite, store.Postgres} {
		t.Run(string(d), func(t *testing.T) {
			t.Parallel()
			crashBatch(t, storetest.URL(t, d))
		})
	}
}

func crashBatch(t *testing.T, u string) {
	ctx := context.Background()
	mk := make([]byte, 32)
	rand.Read(mk)
	env := map[string]string{"PAYGATE_DATABASE_URL": u, "PAYGATE_MASTER_KEY": base64.StdEncoding.EncodeToString(mk),
		"PAYGATE_LOG_FORMAT": "json"}

	// The merchant, created in the database the server will serve.
	db, err := store.Open(ctx, u, store.Options{})
	require.NoError(t, err)
	defer db.Close()
	_, err = db.Migrate(ctx)
	require.NoError(t, err)
	kr, err := merchant.NewKeyring(mk)
	require.NoError(t, err)
	ms, err := merchant.New(merchant.Config{Store: db.Merchants(), Clock: paygate.SystemClock{}, Keyring: kr, Logger: slog.New(slog.DiscardHandler)})
	require.NoError(t, err)
	pk, err := ms.EnsurePlatformKey(ctx)
	require.NoError(t, err)
	created, err := ms.Create(ctx, merchant.CreateRequest{Name: "Crash Shop", Sandbox: true})
	require.NoError(t, err)
	pub, err := signing.ParsePublicKeyPEM([]byte(pk.PublicKeyPEM))
	require.NoError(t, err)
	hook := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(http.StatusNoContent) }))
	defer hook.Close()

	serve := func() (*child, *client.Client) {
		c := startChild(t, "1", env, "serve", "--listen", "127.0.0.1:0")
		addr, _ := c.waitLog(t, "listening")["addr"].(string)
		require.NotEmpty(t, addr)
		sdk, err := client.New(client.Config{BaseURL: "http://" + addr, MchID: created.Merchant.ID, SerialNo: created.Key.SerialNo,
			PrivateKey: created.PrivateKey, PlatformKeys: map[string]*rsa.PublicKey{pk.SerialNo: pub}, APIv3Key: created.APIv3Key})
		require.NoError(t, err)
		return c, sdk
	}
	srv, sdk := serve()

	// Paid orders (four clients at once), then the batch.
	orders := make([]client.Order, crashOrders)
	var wg sync.WaitGroup
	for k := range 4 {
		wg.Go(func() {
			for i := k; i < crashOrders; i += 4 {
				o, err := sdk.CreateOrder(ctx, client.CreateOrderRequest{OutTradeNo: fmt.Sprintf("CRASH-%04d", i), Description: "tea",
					Amount: client.Amount{Total: crashTotal, Currency: "CNY"}, NotifyURL: hook.URL})
				if err == nil {
					_, err = sdk.SandboxPay(ctx, o.ID, "success")
				}
				if err != nil {
					t.Error(err)
					return
				}
				orders[i] = o
			}
		})
	}
	wg.Wait()
	require.False(t, t.Failed())
	require.Eventually(t, func() bool {
		var paid int
		err := db.SQL.QueryRow(`SELECT COUNT(*) FROM payment_orders WHERE status = 'SUCCESS' AND merchant_id = $1`,
			created.Merchant.ID).Scan(&paid)
		return err == nil && paid == crashOrders
	}, failAfter, 20*time.Millisecond, "the orders were never paid")
	req := client.CreateRefundBatchRequest{OutBatchNo: "CRASH-BATCH", NotifyURL: hook.URL}
	for i, o := range orders {
		amount := int64(crashTotal / crashLinesPerOrder)
		if i == crashOrders-1 {
			amount += 100 // the last order: nine lines fit, the tenth over-refunds
		}
		for j := range crashLinesPerOrder {
			req.Items = append(req.Items, client.RefundBatchItemRequest{OutRefundNo: fmt.Sprintf("CR-%04d-%02d", i, j), OrderID: o.ID,
				Reason: "recall", Amount: client.RefundAmount{Refund: amount, Total: crashTotal, Currency: "CNY"}})
		}
	}
	require.Len(t, req.Items, 1000)
	b, err := sdk.CreateRefundBatch(ctx, req)
	require.NoError(t, err)
	require.Equal(t, "PROCESSING", b.Status)

	// Kill the server in the window that matters: refunds made whose lines
	// are not recorded yet (the worker records a claim's outcomes together).
	progress := func() (refunds, recorded int, status string) {
		err := db.SQL.QueryRow(`SELECT (SELECT COUNT(*) FROM payment_refunds), accepted_count + failed_count, status
			FROM refund_batches WHERE id = $1`, b.ID).Scan(&refunds, &recorded, &status)
		if err != nil {
			return 0, 0, ""
		}
		return refunds, recorded, status
	}
	var status string
	require.Eventually(t, func() bool {
		refunds, recorded, st := progress()
		status = st
		return st == "FINISHED" || refunds >= recorded+20 && recorded > 0
	}, failAfter, time.Millisecond)
	require.Equal(t, "PROCESSING", status, "the batch finished before it could be interrupted")
	require.NoError(t, srv.cmd.Process.Kill()) // SIGKILL: no shutdown, transactions in flight lost
	srv.wait(t)
	refunds, recorded, _ := progress()
	t.Logf("killed with %d lines recorded and %d refunds made", recorded, refunds)
	require.Less(t, recorded, refunds, "refunds were made whose lines were not recorded")
	require.Less(t, refunds, 1000, "killed mid-batch")

	// Again: the same batch, submitted again, finishes.
	srv, sdk = serve()
	code, err := sdk.Do(ctx, "POST", "/v1/refunds/batches", req, &b)
	require.NoError(t, err)
	require.Equal(t, 200, code, "the same batch again is a replay")
	require.Eventually(t, func() bool {
		got, err := sdk.GetRefundBatch(ctx, b.ID, client.RefundBatchPage{Limit: 1})
		if err != nil {
			return false
		}
		b = got
		return got.Status == "FINISHED"
	}, failAfter, 10*time.Millisecond, "the batch never finished after the restart")
	require.Equal(t, 999, b.AcceptedCount)
	require.Equal(t, 1, b.FailedCount)
	require.Equal(t, int64(99*crashTotal+9*1_100), b.AcceptedAmount)

	// No double money movement.
	lines := map[string]client.RefundBatchItem{}
	for p := (client.RefundBatchPage{Limit: 1000}); ; {
		got, err := sdk.GetRefundBatch(ctx, b.ID, p)
		require.NoError(t, err)
		for _, it := range got.Items {
			lines[it.OutRefundNo] = it
		}
		if got.NextCursor == "" {
			break
		}
		p.Cursor = got.NextCursor
	}
	require.Len(t, lines, 1000)
	require.Equal(t, "LIMIT_EXCEEDED", lines["CR-0099-09"].FailCode)
	rows, err := db.SQL.Query(`SELECT out_refund_no, id, COUNT(*) OVER (PARTITION BY out_refund_no) FROM payment_refunds WHERE merchant_id = $1`,
		created.Merchant.ID)
	require.NoError(t, err)
	n := 0
	for rows.Next() {
		var no, id string
		var same int
		require.NoError(t, rows.Scan(&no, &id, &same))
		require.Equal(t, 1, same, "%s refunded %d times", no, same)
		require.Equal(t, id, lines[no].RefundID, "the line names its one refund")
		n++
	}
	require.NoError(t, rows.Err())
	rows.Close()
	require.Equal(t, 999, n)
	var holds, over int
	require.NoError(t, db.SQL.QueryRow(`SELECT COUNT(*) FROM ledger_transfers WHERE id LIKE 'rhold_%'`).Scan(&holds))
	require.Equal(t, 999, holds, "one ledger hold per refund")
	require.NoError(t, db.SQL.QueryRow(`SELECT COUNT(*) FROM (SELECT o.id FROM payment_orders o JOIN payment_refunds r ON r.order_id = o.id
		GROUP BY o.id, o.payer_total HAVING SUM(r.amount) > o.payer_total) x`).Scan(&over))
	require.Zero(t, over, "no order refunded beyond what was paid")
	bad, err := db.LedgerCheck(ctx)
	require.NoError(t, err)
	require.Empty(t, bad, "the ledger balances")
	require.NoError(t, srv.cmd.Process.Signal(syscall.SIGTERM))
	require.Equal(t, exitOK, srv.wait(t), srv.output())
}
