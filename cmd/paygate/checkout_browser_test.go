package main

import (
	"context"
	"crypto/rand"
	"crypto/rsa"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/cdproto/cdp"
	"github.com/chromedp/cdproto/page"
	"github.com/chromedp/chromedp"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/stretchr/testify/require"

	"paygate"
	"paygate/client"
	"paygate/merchant"
	"paygate/signing"
	"paygate/store"
	"paygate/store/storetest"
	"paygate/web/browsertest"
)

// screenshotDir is where UPDATE_SCREENSHOTS=1 writes the pages' pictures
// (shown in docs/CHECKOUT.md).
const screenshotDir = "../../docs/screenshots"

// startCheckoutE2E is startE2E with the checkout served where the orders'
// checkout_url points: the server's own address, so a browser can follow it.
func startCheckoutE2E(t *testing.T, db *store.DB) *e2e {
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

	srv := httptest.NewUnstartedServer(nil)
	base := "http://" + srv.Listener.Addr().String()
	p, err := buildPlatform(Config{Calendar: paygate.DefaultCalendar()}, db, ms, prometheus.NewRegistry(), log,
		wiring{SimDelay: 20 * time.Millisecond, CheckoutBaseURL: base + "/checkout/"})
	require.NoError(t, err)
	srv.Config.Handler = p.handler
	srv.Start()
	t.Cleanup(srv.Close)
	e := &e2e{p: p, srv: srv, platform: pk}
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

	e.created, err = ms.Create(ctx, merchant.CreateRequest{Name: "Tea House", Sandbox: true})
	require.NoError(t, err)
	e.pub, err = signing.ParsePublicKeyPEM([]byte(pk.PublicKeyPEM))
	require.NoError(t, err)
	e.client, err = client.New(client.Config{BaseURL: srv.URL, MchID: e.created.Merchant.ID, SerialNo: e.created.Key.SerialNo,
		PrivateKey: e.created.PrivateKey, PlatformKeys: map[string]*rsa.PublicKey{pk.SerialNo: e.pub}, APIv3Key: e.created.APIv3Key})
	require.NoError(t, err)
	return e
}

// cspWatch records Content-Security-Policy violations of every page the
// tab loads, so a test can assert the page needs nothing the policy blocks.
const cspWatch = `window.__csp = []; document.addEventListener("securitypolicyviolation",
	e => window.__csp.push(e.violatedDirective + " " + e.blockedURI));`

// TestCheckoutInBrowser opens a fresh order's checkout_url in chromium on
// a desktop and a phone viewport, checks what the payer sees, pays the
// order through the sandbox API and waits, without reloading, for the page
// to show it paid (htmx polling the status fragment), then for the
// merchant's notification. UPDATE_SCREENSHOTS=1 rewrites the screenshots
// in docs/screenshots.
func TestCheckoutInBrowser(t *testing.T) {
	t.Parallel()
	e := startCheckoutE2E(t, storetest.Open(t, store.SQLite))
	browser := browsertest.New(t)
	update := os.Getenv("UPDATE_SCREENSHOTS") == "1"
	require.NoError(t, chromedp.Do(browser, chromedp.Func(func(ctx context.Context, tg *chromedp.Target) error {
		_, err := cdp.Call(ctx, tg, page.AddScriptToEvaluateOnNewDocument, page.AddScriptToEvaluateOnNewDocumentParams{Source: cspWatch})
		return err
	})))

	viewports := []struct {
		name          string
		width, height int64
		opts          []chromedp.EmulateViewportOption
	}{
		{"desktop", 1280, 800, nil},
		{"phone", 375, 667, []chromedp.EmulateViewportOption{chromedp.EmulateScale(2), chromedp.EmulateMobile}},
	}
	for i, vp := range viewports {
		t.Run(vp.name, func(t *testing.T) {
			ctx := context.Background()
			o, err := e.client.CreateOrder(ctx, client.CreateOrderRequest{OutTradeNo: "BROWSER-" + vp.name, Description: "Green tea, 250 g tin",
				Amount: client.Amount{Total: 12_345, Currency: "CNY"}, NotifyURL: e.hook.URL + "/notify/secret-path",
				ReturnURL: "https://tea.example.com/orders/" + vp.name, Attach: "attach-secret", Metadata: map[string]string{"internal_ref": "meta-secret"}})
			require.NoError(t, err)
			require.Equal(t, e.srv.URL+"/checkout/"+o.ID, o.CheckoutURL)

			require.NoError(t, chromedp.Do(browser,
				chromedp.EmulateViewport(vp.width, vp.height, vp.opts...),
				chromedp.Navigate(o.CheckoutURL),
				chromedp.WaitVisible(chromedp.ID("amount-value")),
			))
			text := func(id string) string {
				s, err := chromedp.Run(browser, chromedp.Text(chromedp.ID(id)))
				require.NoError(t, err)
				return s
			}
			require.Equal(t, "123.45", text("amount-value"))
			require.Equal(t, "Tea House", text("merchant"))
			require.Equal(t, "Green tea, 250 g tin", text("description"))
			require.Equal(t, "Awaiting payment", text("status-title"))
			require.Contains(t, []string{"1 h 59 min", "2 h 00 min"}, text("time-left"))
			html, err := chromedp.Run(browser, chromedp.OuterHTML(chromedp.CSS("html")))
			require.NoError(t, err)
			for _, secret := range []string{"secret-path", "attach-secret", "meta-secret", "BROWSER-", e.hook.URL} {
				require.NotContains(t, html, secret, "the payer never sees the merchant's internals")
			}

			// htmx runs under the CSP, the QR code loads, the page fits the width.
			ok, err := chromedp.Run(browser, chromedp.Poll[bool](`typeof htmx === "object" &&
				document.getElementById("qr").complete && document.getElementById("qr").naturalWidth > 0`))
			require.NoError(t, err)
			require.True(t, ok)
			fits, err := chromedp.Run(browser, chromedp.Evaluate[bool](`document.documentElement.scrollWidth <= window.innerWidth`))
			require.NoError(t, err)
			require.True(t, fits, "no horizontal scrolling at %d px", vp.width)
			if update {
				shot, err := chromedp.Run(browser, chromedp.FullScreenshot(100))
				require.NoError(t, err)
				require.NoError(t, os.WriteFile(filepath.Join(screenshotDir, "checkout-"+vp.name+".png"), shot, 0o644))
			}

			// Paid elsewhere (the sandbox API): the page updates by itself.
			_, err = e.client.SandboxPay(ctx, o.ID, "success")
			require.NoError(t, err)
			wctx, cancel := context.WithTimeout(browser, 30*time.Second)
			defer cancel()
			require.NoError(t, chromedp.Do(wctx,
				chromedp.WaitVisible(chromedp.CSS(`#order-status[data-state="paid"]`)),
				chromedp.WaitNotPresent(chromedp.ID("method-quick_pay")),
				chromedp.WaitNotPresent(chromedp.ID("qr")),
			))
			require.Equal(t, "Paid", text("status-title"))
			require.Equal(t, "Return to merchant", text("return-to-merchant"))
			href, err := chromedp.Run(browser, chromedp.AttributeValue(chromedp.ID("return-to-merchant"), "href"))
			require.NoError(t, err)
			require.Equal(t, "https://tea.example.com/orders/"+vp.name, href.Value)
			if update && vp.name == "desktop" {
				shot, err := chromedp.Run(browser, chromedp.FullScreenshot(100))
				require.NoError(t, err)
				require.NoError(t, os.WriteFile(filepath.Join(screenshotDir, "checkout-paid.png"), shot, 0o644))
			}
			violations, err := chromedp.Run(browser, chromedp.Evaluate[[]string](`window.__csp`))
			require.NoError(t, err)
			require.Empty(t, violations, "Content-Security-Policy violations")

			// The truth arrived by the asynchronous path too.
			var paid client.Order
			n, err := e.client.ParseNotification(e.notification(t, i+1), &paid)
			require.NoError(t, err)
			require.Equal(t, "TRANSACTION.SUCCESS", n.EventType)
			require.Equal(t, o.ID, paid.ID)
		})
	}
	bad, err := e.p.db.LedgerCheck(context.Background())
	require.NoError(t, err)
	require.Empty(t, bad)
}

// TestCheckoutPageOverHTTP serves the checkout from the assembled platform
// on both stores: an order's page shows its own merchant and amount and
// none of the merchant's internals, another merchant's order shows only
// that merchant, and unknown orders answer the friendly 404.
func TestCheckoutPageOverHTTP(t *testing.T) {
	t.Parallel()
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		e := startE2E(t, db)
		ctx := context.Background()
		other, err := e.p.merchants.Create(ctx, merchant.CreateRequest{Name: "Other Shop", Sandbox: true})
		require.NoError(t, err)
		oc, err := client.New(client.Config{BaseURL: e.srv.URL, MchID: other.Merchant.ID, SerialNo: other.Key.SerialNo, PrivateKey: other.PrivateKey,
			PlatformKeys: map[string]*rsa.PublicKey{e.platform.SerialNo: e.pub}, APIv3Key: other.APIv3Key})
		require.NoError(t, err)

		mine, err := e.client.CreateOrder(ctx, client.CreateOrderRequest{OutTradeNo: "PAGE-0001", Description: "One fen",
			Amount: client.Amount{Total: 1, Currency: "CNY"}, NotifyURL: e.hook.URL + "/mine-notify", Attach: "mine-attach",
			Metadata: map[string]string{"k": "mine-meta"}})
		require.NoError(t, err)
		theirs, err := oc.CreateOrder(ctx, client.CreateOrderRequest{OutTradeNo: "PAGE-0002", Description: "A million",
			Amount: client.Amount{Total: 100_000_000, Currency: "CNY"}, NotifyURL: e.hook.URL + "/theirs-notify"})
		require.NoError(t, err)

		page := func(path string) (int, http.Header, string) {
			res, err := http.Get(e.srv.URL + path)
			require.NoError(t, err)
			defer res.Body.Close()
			b, err := io.ReadAll(res.Body)
			require.NoError(t, err)
			return res.StatusCode, res.Header, string(b)
		}
		status, hdr, body := page("/checkout/" + mine.ID)
		require.Equal(t, http.StatusOK, status)
		require.Equal(t, "no-store", hdr.Get("Cache-Control"))
		require.Contains(t, hdr.Get("Content-Security-Policy"), "default-src 'self'")
		require.Contains(t, body, `id="merchant">E2E Shop<`)
		require.Contains(t, body, `id="amount-value">0.01<`)
		for _, s := range []string{"mine-notify", "mine-attach", "mine-meta", "PAGE-0001", "Other Shop", "A million", theirs.ID} {
			require.NotContains(t, body, s)
		}
		_, _, body = page("/checkout/" + theirs.ID)
		require.Contains(t, body, `id="merchant">Other Shop<`)
		require.Contains(t, body, `id="amount-value">1,000,000.00<`)
		for _, s := range []string{"theirs-notify", "PAGE-0002", "E2E Shop", "One fen", mine.ID} {
			require.NotContains(t, body, s)
		}
		status, _, body = page("/checkout/" + theirs.ID + "/status")
		require.Equal(t, http.StatusOK, status)
		require.True(t, strings.HasPrefix(body, `<section id="order-status"`))

		status, _, body = page("/checkout/ord_0000000000000000000000000000000")
		require.Equal(t, http.StatusNotFound, status)
		require.Contains(t, body, "Order not found")
		status, _, _ = page("/static/htmx.min.js")
		require.Equal(t, http.StatusOK, status)
		// The API's own 404 stays JSON.
		status, hdr, _ = page("/v1/nope")
		require.Equal(t, http.StatusNotFound, status)
		require.Contains(t, hdr.Get("Content-Type"), "json")
	})
}

// TestCheckoutInBrowserClosedAndExpired: an open page updates by itself
// when the merchant closes the order, and when the order's time runs out
// (before the expiry job closes it), replacing the methods with a message.
func TestCheckoutInBrowserClosedAndExpired(t *testing.T) {
	t.Parallel()
	e := startCheckoutE2E(t, storetest.Open(t, store.SQLite))
	browser := browsertest.New(t)
	ctx := context.Background()
	open := func(no string, expire time.Time) client.Order {
		o, err := e.client.CreateOrder(ctx, client.CreateOrderRequest{OutTradeNo: no, Description: "Oolong",
			Amount: client.Amount{Total: 800, Currency: "CNY"}, NotifyURL: e.hook.URL, TimeExpire: expire,
			ReturnURL: "https://tea.example.com/cart"})
		require.NoError(t, err)
		require.NoError(t, chromedp.Do(browser, chromedp.Navigate(o.CheckoutURL), chromedp.WaitVisible(chromedp.ID("method-quick_pay"))))
		return o
	}
	wait := func(state string) {
		wctx, cancel := context.WithTimeout(browser, 30*time.Second)
		defer cancel()
		require.NoError(t, chromedp.Do(wctx,
			chromedp.WaitVisible(chromedp.CSS(`#order-status[data-state="`+state+`"]`)),
			chromedp.WaitNotPresent(chromedp.ID("method-quick_pay")),
		))
		href, err := chromedp.Run(browser, chromedp.AttributeValue(chromedp.ID("return-to-merchant"), "href"))
		require.NoError(t, err)
		require.Equal(t, "https://tea.example.com/cart", href.Value)
	}

	o := open("CLOSE-0001", time.Time{})
	_, err := e.client.CloseOrder(ctx, o.ID)
	require.NoError(t, err)
	wait("closed")
	title, err := chromedp.Run(browser, chromedp.Text(chromedp.ID("status-title")))
	require.NoError(t, err)
	require.Equal(t, "Closed", title)

	open("EXPIRE-0001", time.Now().Add(6*time.Second).Truncate(time.Second))
	wait("expired")
	title, err = chromedp.Run(browser, chromedp.Text(chromedp.ID("status-title")))
	require.NoError(t, err)
	require.Equal(t, "Expired", title)
}
