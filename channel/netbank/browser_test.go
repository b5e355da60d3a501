package netbank_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/chromedp/cdproto/cdp"
	cdppage "github.com/chromedp/cdproto/page"
	"github.com/chromedp/chromedp"
	"github.com/stretchr/testify/require"

	"paygate/channel"
	"paygate/channel/netbank"
	"paygate/store"
	"paygate/store/storetest"
	"paygate/web/browsertest"
)

// cspWatch records Content-Security-Policy violations of every page the
// tab loads.
const cspWatch = `window.__csp = []; document.addEventListener("securitypolicyviolation",
	e => window.__csp.push(e.violatedDirective + " " + e.blockedURI));`

// TestBankInBrowser drives the bank's pages in chromium on a desktop and a
// phone viewport: the pages fit, break no CSP rule, and the confirmation's
// redirect reaches the merchant's return_url on another origin (the CSP's
// form-action names it, or the browser would block the redirect). Cancel
// goes back the same way. UPDATE_SCREENSHOTS=1 writes the pages to
// docs/screenshots/netbank-*.png.
func TestBankInBrowser(t *testing.T) {
	t.Parallel()
	merchant := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		w.Write([]byte(`<!doctype html><title>shop</title><h1 id="back">back at the shop</h1>`))
	}))
	t.Cleanup(merchant.Close)
	r := newRig(t, storetest.Open(t, store.SQLite))
	b := browsertest.New(t)
	require.NoError(t, chromedp.Do(b, chromedp.Func(func(ctx context.Context, tg *chromedp.Target) error {
		_, err := cdp.Call(ctx, tg, cdppage.AddScriptToEvaluateOnNewDocument, cdppage.AddScriptToEvaluateOnNewDocumentParams{Source: cspWatch})
		return err
	})))
	update := os.Getenv("UPDATE_SCREENSHOTS") == "1"
	check := func(name string) {
		t.Helper()
		violations, err := chromedp.Run(b, chromedp.Evaluate[[]string](`window.__csp`))
		require.NoError(t, err)
		require.Empty(t, violations, name)
		fits, err := chromedp.Run(b, chromedp.Evaluate[bool](`document.documentElement.scrollWidth <= window.innerWidth`))
		require.NoError(t, err)
		require.True(t, fits, "%s: no horizontal scrolling", name)
		if update {
			shot, err := chromedp.Run(b, chromedp.FullScreenshot(100))
			require.NoError(t, err)
			require.NoError(t, os.WriteFile(filepath.Join("..", "..", "docs", "screenshots", "netbank-"+name+".png"), shot, 0o644))
		}
	}
	back := func(result string) {
		t.Helper()
		require.NoError(t, chromedp.Do(b, chromedp.WaitVisible(chromedp.ID("back"))))
		loc, err := chromedp.Run(b, chromedp.Location())
		require.NoError(t, err)
		require.True(t, strings.HasPrefix(loc, merchant.URL+"/return?"), loc)
		require.True(t, strings.HasSuffix(loc, "&result="+result), loc)
	}
	viewports := []struct {
		name          string
		width, height int64
		opts          []chromedp.EmulateViewportOption
	}{
		{"desktop", 1280, 800, nil},
		{"phone", 375, 667, []chromedp.EmulateViewportOption{chromedp.EmulateScale(2), chromedp.EmulateMobile}},
	}
	for _, vp := range viewports {
		s := r.open(t, 12_345, func(p *channel.PayRequest) { p.ReturnURL = merchant.URL + "/return?o=1" })
		require.NoError(t, chromedp.Do(b,
			chromedp.EmulateViewport(vp.width, vp.height, vp.opts...),
			chromedp.Navigate(s.acc.RedirectURL),
			chromedp.WaitVisible(chromedp.ID("login-name"))))
		check("login-" + vp.name)
		require.NoError(t, chromedp.Do(b,
			chromedp.SendKeys(chromedp.ID("login-name"), wangLogin),
			chromedp.SendKeys(chromedp.ID("login-password"), password),
			chromedp.Click(chromedp.CSS("#login button[type=submit]")),
			chromedp.WaitVisible(chromedp.ID("pay-password")),
			chromedp.SendKeys(chromedp.ID("pay-password"), "000000"),
			chromedp.Click(chromedp.CSS("#confirm button[type=submit]")),
			chromedp.WaitVisible(chromedp.CSS(".error"))))
		check("confirm-" + vp.name)
		html, err := chromedp.Run(b, chromedp.OuterHTML(chromedp.CSS("html")))
		require.NoError(t, err)
		require.NotContains(t, html, "6288880000000013")
		require.NotContains(t, html, password)
		require.NoError(t, chromedp.Do(b,
			chromedp.SendKeys(chromedp.ID("pay-password"), wangPIN),
			chromedp.Click(chromedp.CSS("#confirm button[type=submit]"))))
		back(netbank.ResultSuccess)
	}
	got := r.results(t)
	require.Len(t, got, 2)
	for _, res := range got {
		require.Equal(t, channel.StatusSuccess, res.Status)
	}

	s := r.open(t, 100, func(p *channel.PayRequest) { p.ReturnURL = merchant.URL + "/return?o=2" })
	require.NoError(t, chromedp.Do(b,
		chromedp.Navigate(s.acc.RedirectURL),
		chromedp.WaitVisible(chromedp.ID("login-name")),
		chromedp.Click(chromedp.CSS(".cancel button"))))
	back(netbank.ResultCancelled)
}
