package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/rsa"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/stretchr/testify/require"

	"paygate"
	"paygate/channel/sim"
	"paygate/client"
	"paygate/ledger"
	"paygate/merchant"
	"paygate/signing"
	"paygate/store"
	"paygate/store/storetest"
)

// startPreauthE2E is startE2E with the authorization period configured
// (cfg.AuthorizationPeriod; 0 for the default), so that the expiry job can
// be watched in real time.
func startPreauthE2E(t *testing.T, db *store.DB, period time.Duration) *e2e {
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
	cfg := Config{Calendar: paygate.DefaultCalendar(), AuthorizationPeriod: period}
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
	p.runJobs(jctx, &jobs, jobIntervals{Expire: time.Second, Notify: 20 * time.Millisecond, CloseOrders: 200 * time.Millisecond,
		Reconcile: 200 * time.Millisecond, Nonces: time.Minute})
	t.Cleanup(func() { cancel(); jobs.Wait() })
	e.created, err = ms.Create(ctx, merchant.CreateRequest{Name: "Hotel", Sandbox: true})
	require.NoError(t, err)
	e.pub, err = signing.ParsePublicKeyPEM([]byte(pk.PublicKeyPEM))
	require.NoError(t, err)
	e.client, err = client.New(client.Config{BaseURL: e.srv.URL, MchID: e.created.Merchant.ID, SerialNo: e.created.Key.SerialNo,
		PrivateKey: e.created.PrivateKey, PlatformKeys: map[string]*rsa.PublicKey{pk.SerialNo: e.pub}, APIv3Key: e.created.APIv3Key})
	require.NoError(t, err)
	return e
}

// requireAtSim checks that the sandbox channel, which held the order's
// authorization, captured what paygate captured and gave the payer the
// rest back — right after paygate's command, or soon after through the
// release job.
func (e *e2e) requireAtSim(t *testing.T, o client.Order, status sim.AuthorizationStatus, captured int64) {
	t.Helper()
	want := sim.Authorization{AttemptID: o.TransactionID, Status: status, Authorized: o.Amount.Authorized, Captured: captured,
		Released: o.Amount.Authorized - captured}
	require.NotEmpty(t, o.TransactionID)
	require.Eventually(t, func() bool {
		got, ok := e.p.sim.Authorization(o.TransactionID)
		return ok && got == want
	}, 15*time.Second, 20*time.Millisecond, "the sandbox channel shows %+v", want)
}

// orderEvent waits for the merchant's endpoint to receive the notification
// of type typ about the order, verified and decrypted by the SDK.
func (e *e2e) orderEvent(t *testing.T, orderID, typ string) client.Order {
	t.Helper()
	var got client.Order
	require.Eventually(t, func() bool {
		e.mu.Lock()
		n := len(e.received)
		e.mu.Unlock()
		for i := 1; i <= n; i++ {
			var o client.Order
			r := e.nth(i)
			nt, err := e.client.ParseNotification(r, &o)
			require.NoError(t, err)
			if nt.EventType == typ && o.ID == orderID {
				got = o
				return true
			}
		}
		return false
	}, 15*time.Second, 20*time.Millisecond, "%s of %s never arrived", typ, orderID)
	return got
}

func (e *e2e) nth(n int) *http.Request {
	e.mu.Lock()
	defer e.mu.Unlock()
	r := e.received[n-1].Clone(context.Background())
	r.Body = io.NopCloser(bytes.NewReader(e.bodies[n-1]))
	return r
}

// apiCode returns the API error's status and code.
func apiCode(t *testing.T, err error) (int, string) {
	t.Helper()
	var ae *client.APIError
	require.ErrorAs(t, err, &ae)
	return ae.Status, ae.Code
}

// TestEndToEndPreauth drives pre-authorization over HTTP with the Go SDK
// on both stores: a manual-capture order paid in the sandbox is AUTHORIZED
// (TRANSACTION.AUTHORIZED), refuses refunds and close, is captured in part
// (TRANSACTION.SUCCESS, the rest released), refuses a second capture and a
// void, refunds within the amount captured; another is voided
// (TRANSACTION.CLOSED, VOIDED); bad input and another merchant's order are
// refused; concurrent captures capture once; the ledger balances; and the
// sandbox channel, which held each authorization, captured exactly what
// paygate captured and gave the payer the rest (all of a void) back.
func TestEndToEndPreauth(t *testing.T) {
	t.Parallel()
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		e := startPreauthE2E(t, db, 0)
		ctx := context.Background()
		create := func(no string) client.Order {
			o, err := e.client.CreateOrder(ctx, client.CreateOrderRequest{OutTradeNo: no, Description: "Room 42, deposit",
				Amount: client.Amount{Total: 10_000, Currency: "CNY"}, NotifyURL: e.hook.URL + "/paygate/notify", CaptureMethod: "MANUAL"})
			require.NoError(t, err)
			require.Equal(t, "MANUAL", o.CaptureMethod)
			require.Equal(t, "NOTPAY", o.Status)
			return o
		}
		authorize := func(no string) client.Order {
			o := create(no)
			_, err := e.client.SandboxPay(ctx, o.ID, "success")
			require.NoError(t, err)
			a := e.orderEvent(t, o.ID, "TRANSACTION.AUTHORIZED")
			require.Equal(t, "AUTHORIZED", a.Status)
			require.Equal(t, int64(10_000), a.Amount.Authorized)
			require.Zero(t, a.Amount.PayerTotal)
			require.WithinDuration(t, time.Now().Add(7*24*time.Hour), a.CaptureBefore, time.Minute)
			return a
		}

		// Capture part.
		o := authorize("E2E-PA-0001")
		got, err := e.client.GetOrder(ctx, o.ID)
		require.NoError(t, err)
		require.Equal(t, "AUTHORIZED", got.Status)
		_, err = e.client.CreateRefund(ctx, client.CreateRefundRequest{OrderID: o.ID, OutRefundNo: "E2E-PA-0001-R0",
			Amount: client.RefundAmount{Refund: 100, Total: 10_000, Currency: "CNY"}})
		status, code := apiCode(t, err)
		require.Equal(t, 409, status)
		require.Equal(t, "CONFLICT", code, "nothing captured yet")
		_, err = e.client.CloseOrder(ctx, o.ID)
		_, code = apiCode(t, err)
		require.Equal(t, "CONFLICT", code, "an authorization is voided, not closed")

		for _, c := range []struct {
			name, body string
			status     int
			code       string
		}{
			{"zero", `{"amount":{"total":0}}`, 400, "AMOUNT_NOT_POSITIVE"},
			{"beyond authorized", `{"amount":{"total":10001}}`, 422, "LIMIT_EXCEEDED"},
			{"other currency", `{"amount":{"total":100,"currency":"USD"}}`, 400, "CURRENCY_MISMATCH"},
			{"string amount", `{"amount":{"total":"100"}}`, 400, "INVALID_ARGUMENT"},
			{"malformed", `{"amount":`, 400, "INVALID_ARGUMENT"},
			{"oversized", `{"x":"` + strings.Repeat("x", 70_000) + `"}`, 413, "TOO_LARGE"},
		} {
			path := "/v1/orders/" + o.ID + "/capture"
			ts, nonce := time.Now().Unix(), signing.NewNonce()
			sig, err := signing.Sign(e.created.PrivateKey, signing.RequestMessage("POST", path, ts, nonce, []byte(c.body)))
			require.NoError(t, err)
			req, err := http.NewRequestWithContext(ctx, "POST", e.srv.URL+path, strings.NewReader(c.body))
			require.NoError(t, err)
			req.Header.Set("Authorization", signing.Authorization{MchID: e.created.Merchant.ID, Nonce: nonce, Timestamp: ts,
				SerialNo: e.created.Key.SerialNo, Signature: sig}.String())
			resp, err := http.DefaultClient.Do(req)
			require.NoError(t, err)
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			require.Equal(t, c.status, resp.StatusCode, c.name)
			require.Contains(t, string(b), `"code":"`+c.code+`"`, c.name)
		}

		other, err := e.p.merchants.Create(ctx, merchant.CreateRequest{Name: "Other Shop", Sandbox: true})
		require.NoError(t, err)
		oc, err := client.New(client.Config{BaseURL: e.srv.URL, MchID: other.Merchant.ID, SerialNo: other.Key.SerialNo, PrivateKey: other.PrivateKey,
			PlatformKeys: map[string]*rsa.PublicKey{e.platform.SerialNo: e.pub}, APIv3Key: other.APIv3Key})
		require.NoError(t, err)
		_, err = oc.CaptureOrder(ctx, o.ID, client.CaptureOrderRequest{})
		status, _ = apiCode(t, err)
		require.Equal(t, 404, status, "another merchant's order is not found")
		_, err = oc.VoidOrder(ctx, o.ID)
		status, _ = apiCode(t, err)
		require.Equal(t, 404, status)

		captured, err := e.client.CaptureOrder(ctx, o.ID, client.CaptureOrderRequest{Amount: &client.Amount{Total: 6_000, Currency: "CNY"}})
		require.NoError(t, err)
		require.Equal(t, "SUCCESS", captured.Status)
		require.Equal(t, int64(6_000), captured.Amount.Captured)
		require.Equal(t, int64(6_000), captured.Amount.PayerTotal)
		require.Equal(t, int64(10_000), captured.Amount.Authorized)
		n := e.orderEvent(t, o.ID, "TRANSACTION.SUCCESS")
		require.Equal(t, int64(6_000), n.Amount.Captured)
		e.requireAtSim(t, captured, sim.AuthorizationCaptured, 6_000)
		_, err = e.client.CaptureOrder(ctx, o.ID, client.CaptureOrderRequest{})
		status, code = apiCode(t, err)
		require.Equal(t, 409, status)
		require.Equal(t, "ALREADY_RESOLVED", code, "second capture")
		_, err = e.client.VoidOrder(ctx, o.ID)
		_, code = apiCode(t, err)
		require.Equal(t, "ALREADY_RESOLVED", code, "void after capture")

		_, err = e.client.CreateRefund(ctx, client.CreateRefundRequest{OrderID: o.ID, OutRefundNo: "E2E-PA-0001-R1",
			Amount: client.RefundAmount{Refund: 6_001, Total: 10_000, Currency: "CNY"}})
		status, code = apiCode(t, err)
		require.Equal(t, 422, status)
		require.Equal(t, "LIMIT_EXCEEDED", code, "refunds within the amount captured")
		r, err := e.client.CreateRefund(ctx, client.CreateRefundRequest{OrderID: o.ID, OutRefundNo: "E2E-PA-0001-R2",
			Amount: client.RefundAmount{Refund: 6_000, Total: 10_000, Currency: "CNY"}})
		require.NoError(t, err)
		require.Eventually(t, func() bool {
			r, err = e.client.GetRefund(ctx, r.ID)
			return err == nil && r.Status == "SUCCESS"
		}, 15*time.Second, 20*time.Millisecond)

		// Void another.
		v := authorize("E2E-PA-0002")
		voided, err := e.client.VoidOrder(ctx, v.ID)
		require.NoError(t, err)
		require.Equal(t, "CLOSED", voided.Status)
		require.Equal(t, "VOIDED", voided.CloseReason)
		require.Equal(t, "VOIDED", e.orderEvent(t, v.ID, "TRANSACTION.CLOSED").CloseReason)
		e.requireAtSim(t, voided, sim.AuthorizationVoided, 0)
		_, err = e.client.CaptureOrder(ctx, v.ID, client.CaptureOrderRequest{})
		_, code = apiCode(t, err)
		require.Equal(t, "ALREADY_RESOLVED", code, "capture after void")

		// Concurrent captures and voids of one authorization: one wins.
		c := authorize("E2E-PA-0003")
		var wg sync.WaitGroup
		errs := make([]error, 6)
		for i := range errs {
			wg.Go(func() {
				if i%3 == 2 {
					_, errs[i] = e.client.VoidOrder(ctx, c.ID)
				} else {
					_, errs[i] = e.client.CaptureOrder(ctx, c.ID, client.CaptureOrderRequest{})
				}
			})
		}
		wg.Wait()
		wins := 0
		for _, err := range errs {
			if err == nil {
				wins++
				continue
			}
			_, code := apiCode(t, err)
			require.Equal(t, "ALREADY_RESOLVED", code)
		}
		require.Equal(t, 1, wins)
		ts, err := e.p.ledger.LookupTransfers(ctx, []string{"cap_" + c.ID, "void_" + c.ID})
		require.NoError(t, err)
		require.Len(t, ts, 1, "the hold is resolved once")

		// Only the refund's money is still moving; the books balance and
		// the merchant's pending account holds the two captures less fees
		// less the refund.
		bad, err := db.LedgerCheck(ctx)
		require.NoError(t, err)
		require.Empty(t, bad)
		accts, err := e.p.ledger.LookupAccounts(ctx, []string{ledger.MerchantPending(e.created.Merchant.ID, "CNY").ID})
		require.NoError(t, err)
		require.Len(t, accts, 1)
		final, err := e.client.GetOrder(ctx, c.ID)
		require.NoError(t, err)
		want := int64(0)
		if final.Status == "SUCCESS" {
			want = 10_000 - e.created.Merchant.Fee(10_000)
			e.requireAtSim(t, final, sim.AuthorizationCaptured, 10_000)
		} else {
			e.requireAtSim(t, final, sim.AuthorizationVoided, 0)
		}
		require.Equal(t, want, accts[0].Net(accts[0].Normal), "the first order refunded in full (fee back), the third captured or voided")
		require.Zero(t, accts[0].CreditsPending, "no authorization left holding money")
	})
}

// TestEndToEndPreauthExpiry: with a 2-second authorization period, an
// authorization nobody captures is released by the job running on the
// server's ticker (TRANSACTION.CLOSED, AUTHORIZATION_EXPIRED); capturing
// or voiding it afterwards answers 409 HOLD_EXPIRED; the sandbox channel
// gave the payer all of it back.
func TestEndToEndPreauthExpiry(t *testing.T) {
	t.Parallel()
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		e := startPreauthE2E(t, db, 2*time.Second)
		ctx := context.Background()
		o, err := e.client.CreateOrder(ctx, client.CreateOrderRequest{OutTradeNo: "E2E-PA-EXP-1", Description: "Deposit",
			Amount: client.Amount{Total: 5_000, Currency: "CNY"}, NotifyURL: e.hook.URL + "/paygate/notify", CaptureMethod: "MANUAL"})
		require.NoError(t, err)
		_, err = e.client.SandboxPay(ctx, o.ID, "success")
		require.NoError(t, err)
		a := e.orderEvent(t, o.ID, "TRANSACTION.AUTHORIZED")
		require.Equal(t, a.AuthorizeTime.Add(2*time.Second).Truncate(time.Second), a.CaptureBefore.Truncate(time.Second))
		closed := e.orderEvent(t, o.ID, "TRANSACTION.CLOSED")
		require.Equal(t, "CLOSED", closed.Status)
		require.Equal(t, "AUTHORIZATION_EXPIRED", closed.CloseReason)
		_, err = e.client.CaptureOrder(ctx, o.ID, client.CaptureOrderRequest{})
		status, code := apiCode(t, err)
		require.Equal(t, 409, status)
		require.Equal(t, "HOLD_EXPIRED", code)
		_, err = e.client.VoidOrder(ctx, o.ID)
		_, code = apiCode(t, err)
		require.Equal(t, "HOLD_EXPIRED", code)
		ts, err := e.p.ledger.LookupTransfers(ctx, []string{"pay_" + o.ID})
		require.NoError(t, err)
		require.Len(t, ts, 1)
		require.Equal(t, ledger.HoldVoided, ts[0].HoldStatus, "the order's job, not the ledger's, released it")
		e.requireAtSim(t, closed, sim.AuthorizationVoided, 0)
		bad, err := db.LedgerCheck(ctx)
		require.NoError(t, err)
		require.Empty(t, bad)
	})
}
