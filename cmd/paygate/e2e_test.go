package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/rsa"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/stretchr/testify/require"
	"github.com/wechatpay-apiv3/wechatpay-go/core"
	"github.com/wechatpay-apiv3/wechatpay-go/core/auth/verifiers"
	wxnotify "github.com/wechatpay-apiv3/wechatpay-go/core/notify"
	"github.com/wechatpay-apiv3/wechatpay-go/core/option"

	"paygate"
	"paygate/client"
	"paygate/ledger"
	"paygate/merchant"
	"paygate/signing"
	"paygate/store"
	"paygate/store/storetest"
)

// e2e is a running paygate (real HTTP on loopback) with one sandbox
// merchant, its SDK client, and the merchant's notification endpoint.
type e2e struct {
	p        *platform
	srv      *httptest.Server
	created  merchant.Created
	platform merchant.PlatformKey
	pub      *rsa.PublicKey
	client   *client.Client
	// notifications received by the merchant's endpoint, raw.
	mu       sync.Mutex
	received []*http.Request
	bodies   [][]byte
	hook     *httptest.Server
}

func startE2E(t *testing.T, db *store.DB) *e2e {
	t.Helper()
	ctx := context.Background()
	log := slog.New(slog.DiscardHandler)
	mk := make([]byte, 32)
	rand.Read(mk)
	kr, err := merchant.NewKeyring(mk)
	require.NoError(t, err)
	ms, err := merchant.New(merchant.Config{Store: db.Merchants(), Clock: paygate.SystemClock{}, Keyring: kr, Logger: log})
	require.NoError(t, err)
	pk, err := ms.EnsurePlatformKey(ctx)
	require.NoError(t, err)
	cfg := Config{Calendar: paygate.DefaultCalendar()}
	p, err := buildPlatform(cfg, db, ms, prometheus.NewRegistry(), log, wiring{SimDelay: 20 * time.Millisecond, CheckoutBaseURL: "http://checkout.local/pay/"})
	require.NoError(t, err)
	e := &e2e{p: p, platform: pk}
	e.srv = httptest.NewServer(p.handler)
	t.Cleanup(e.srv.Close)
	e.hook = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		e.mu.Lock()
		e.received = append(e.received, r.Clone(context.Background()))
		e.bodies = append(e.bodies, b)
		e.mu.Unlock()
		w.WriteHeader(http.StatusNoContent)
	}))
	t.Cleanup(e.hook.Close)

	jctx, cancel := context.WithCancel(context.Background())
	var jobs sync.WaitGroup
	p.runJobs(jctx, &jobs, jobIntervals{Expire: time.Second, Notify: 20 * time.Millisecond, CloseOrders: time.Second, Reconcile: time.Second, Nonces: time.Minute})
	t.Cleanup(func() { cancel(); jobs.Wait() })

	e.created, err = ms.Create(ctx, merchant.CreateRequest{Name: "E2E Shop", Sandbox: true})
	require.NoError(t, err)
	e.pub, err = signing.ParsePublicKeyPEM([]byte(pk.PublicKeyPEM))
	require.NoError(t, err)
	e.client, err = client.New(client.Config{BaseURL: e.srv.URL, MchID: e.created.Merchant.ID, SerialNo: e.created.Key.SerialNo,
		PrivateKey: e.created.PrivateKey, PlatformKeys: map[string]*rsa.PublicKey{pk.SerialNo: e.pub}, APIv3Key: e.created.APIv3Key})
	require.NoError(t, err)
	return e
}

// notification waits until the merchant's endpoint has received n
// notifications and returns the n-th (request with its body restored).
func (e *e2e) notification(t *testing.T, n int) *http.Request {
	t.Helper()
	require.Eventually(t, func() bool {
		e.mu.Lock()
		defer e.mu.Unlock()
		return len(e.received) >= n
	}, 15*time.Second, 10*time.Millisecond, "notification %d never arrived", n)
	e.mu.Lock()
	defer e.mu.Unlock()
	r := e.received[n-1].Clone(context.Background())
	r.Body = io.NopCloser(bytes.NewReader(e.bodies[n-1]))
	return r
}

// TestEndToEndSandboxPayment drives the whole flow over HTTP with the Go
// SDK: create → pay through the simulated channel → notification received,
// verified and decrypted → query shows SUCCESS → the ledger is balanced and
// booked the payment less the fee to the merchant.
func TestEndToEndSandboxPayment(t *testing.T) {
	t.Parallel()
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		e := startE2E(t, db)
		ctx := context.Background()
		req := client.CreateOrderRequest{OutTradeNo: "E2E-0001", Description: "Green tea", Amount: client.Amount{Total: 12_345, Currency: "CNY"}, NotifyURL: e.hook.URL + "/paygate/notify"}
		o, err := e.client.CreateOrder(ctx, req)
		require.NoError(t, err)
		require.Equal(t, "NOTPAY", o.Status)
		require.Equal(t, "http://checkout.local/pay/"+o.ID, o.CheckoutURL)
		again, err := e.client.CreateOrder(ctx, req)
		require.NoError(t, err)
		require.Equal(t, o.ID, again.ID, "an identical replay returns the same order")
		req.Amount.Total++
		_, err = e.client.CreateOrder(ctx, req)
		var ae *client.APIError
		require.ErrorAs(t, err, &ae)
		require.Equal(t, 409, ae.Status)
		require.Equal(t, "OUT_TRADE_NO_USED", ae.Code)

		a, err := e.client.SandboxPay(ctx, o.ID, "success")
		require.NoError(t, err)
		require.Equal(t, o.ID, a.OrderID)

		var paid client.Order
		n, err := e.client.ParseNotification(e.notification(t, 1), &paid)
		require.NoError(t, err)
		require.Equal(t, "TRANSACTION.SUCCESS", n.EventType)
		require.Equal(t, o.ID, paid.ID)
		require.Equal(t, "E2E-0001", paid.OutTradeNo)
		require.Equal(t, "SUCCESS", paid.Status)
		require.Equal(t, int64(12_345), paid.Amount.Total)

		got, err := e.client.GetOrderByOutTradeNo(ctx, "E2E-0001")
		require.NoError(t, err)
		require.Equal(t, "SUCCESS", got.Status)
		require.NotEmpty(t, got.TransactionID)

		// Paying again through the channel cannot pay twice.
		_, err = e.client.SandboxPay(ctx, o.ID, "success")
		require.Error(t, err)

		fee := e.created.Merchant.Fee(12_345)
		accts, err := e.p.ledger.LookupAccounts(ctx, []string{ledger.MerchantPending(e.created.Merchant.ID, "CNY").ID, ledger.PlatformFeeFor("CNY", true).ID})
		require.NoError(t, err)
		for _, acc := range accts {
			if acc.Code == ledger.CodeMerchantPending {
				require.Equal(t, 12_345-fee, acc.Net(ledger.Credit))
			} else {
				require.GreaterOrEqual(t, acc.Net(ledger.Credit), fee)
			}
		}
		bad, err := db.LedgerCheck(ctx)
		require.NoError(t, err)
		require.Empty(t, bad)

		// Another merchant cannot see the order.
		other, err := e.p.merchants.Create(ctx, merchant.CreateRequest{Name: "Other Shop", Sandbox: true})
		require.NoError(t, err)
		oc, err := client.New(client.Config{BaseURL: e.srv.URL, MchID: other.Merchant.ID, SerialNo: other.Key.SerialNo, PrivateKey: other.PrivateKey,
			PlatformKeys: map[string]*rsa.PublicKey{e.platform.SerialNo: e.pub}, APIv3Key: other.APIv3Key})
		require.NoError(t, err)
		_, err = oc.GetOrder(ctx, o.ID)
		require.ErrorAs(t, err, &ae)
		require.Equal(t, 404, ae.Status)
	})
}

// TestEndToEndOfficialSDK runs the flow with the official WeChat Pay APIv3
// Go SDK as the merchant's client: its signer authenticates to paygate, its
// validator checks paygate's response signatures, and its notify handler
// verifies and decrypts paygate's notification.
func TestEndToEndOfficialSDK(t *testing.T) {
	t.Parallel()
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		e := startE2E(t, db)
		ctx := context.Background()
		wx, err := core.NewClient(ctx, option.WithWechatPayPublicKeyAuthCipher(e.created.Merchant.ID, e.created.Key.SerialNo, e.created.PrivateKey, e.platform.SerialNo, e.pub))
		require.NoError(t, err)
		body := map[string]any{"out_trade_no": "WX-0001", "description": "Oolong", "amount": map[string]any{"total": 800, "currency": "CNY"}, "notify_url": e.hook.URL}
		res, err := wx.Post(ctx, e.srv.URL+"/v1/orders", body)
		require.NoError(t, err, "the SDK accepted paygate's signed response")
		require.Equal(t, 201, res.Response.StatusCode)
		var o client.Order
		require.NoError(t, json.NewDecoder(res.Response.Body).Decode(&o))

		res, err = wx.Post(ctx, e.srv.URL+"/v1/sandbox/orders/"+o.ID+"/pay", map[string]string{"outcome": "success"})
		require.NoError(t, err)
		require.Equal(t, 202, res.Response.StatusCode)

		h, err := wxnotify.NewRSANotifyHandler(e.created.APIv3Key, verifiers.NewSHA256WithRSAPubkeyVerifier(e.platform.SerialNo, *e.pub))
		require.NoError(t, err)
		var content map[string]any
		nr, err := h.ParseNotifyRequest(ctx, e.notification(t, 1), &content)
		require.NoError(t, err)
		require.Equal(t, "TRANSACTION.SUCCESS", nr.EventType)
		require.Equal(t, "SUCCESS", content["status"])
		require.Equal(t, o.ID, content["id"])

		res, err = wx.Get(ctx, e.srv.URL+"/v1/orders/"+o.ID)
		require.NoError(t, err)
		var got client.Order
		require.NoError(t, json.NewDecoder(res.Response.Body).Decode(&got))
		require.Equal(t, "SUCCESS", got.Status)

		// An error answer is signed too: the SDK validates it and reports the API error.
		_, err = wx.Get(ctx, e.srv.URL+"/v1/orders/ord_does_not_exist")
		require.Error(t, err)
		var apiErr *core.APIError
		require.ErrorAs(t, err, &apiErr)
		require.Equal(t, 404, apiErr.StatusCode)
		require.Equal(t, "NOT_FOUND", apiErr.Code)
		// So is the answer for a path that does not exist.
		_, err = wx.Get(ctx, e.srv.URL+"/v1/no/such/path")
		require.ErrorAs(t, err, &apiErr)
		require.Equal(t, 404, apiErr.StatusCode)
	})
}

// TestEndToEndConcurrentCreates: 100 identical creates with one out_trade_no
// make exactly one order; different bodies conflict.
func TestEndToEndConcurrentCreates(t *testing.T) {
	t.Parallel()
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		e := startE2E(t, db)
		ctx := context.Background()
		var wg sync.WaitGroup
		ids := make(chan string, 100)
		conflicts := make(chan int, 100)
		for i := 0; i < 100; i++ {
			wg.Add(1)
			go func(i int) {
				defer wg.Done()
				total := int64(500)
				if i%10 == 9 { // every tenth request differs
					total = int64(600 + i)
				}
				o, err := e.client.CreateOrder(ctx, client.CreateOrderRequest{OutTradeNo: "RACE-0001", Description: "race", Amount: client.Amount{Total: total, Currency: "CNY"}, NotifyURL: e.hook.URL})
				if err != nil {
					var ae *client.APIError
					if assertAPIError(err, &ae) && ae.Code == "OUT_TRADE_NO_USED" {
						conflicts <- i
						return
					}
					t.Errorf("create %d: %v", i, err)
					return
				}
				ids <- o.ID
			}(i)
		}
		wg.Wait()
		close(ids)
		close(conflicts)
		seen := map[string]bool{}
		for id := range ids {
			seen[id] = true
		}
		require.Len(t, seen, 1, "exactly one order")
		require.GreaterOrEqual(t, len(conflicts), 9, "different bodies conflict")
		var n int
		require.NoError(t, db.SQL.QueryRow(`SELECT COUNT(*) FROM payment_orders`).Scan(&n))
		require.Equal(t, 1, n)
	})
}

func assertAPIError(err error, target **client.APIError) bool {
	ae, ok := err.(*client.APIError)
	if ok {
		*target = ae
	}
	return ok
}
