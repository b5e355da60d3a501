package web_test

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"pgregory.net/rapid"

	"paygate"
	"paygate/payment"
	"paygate/web"
)

// t0 is the tests' now; open orders expire at t0 + 2 h.
var t0 = time.Date(2026, 11, 22, 2, 0, 0, 0, time.UTC)

// fakeOrders serves fixed checkout views; the id "ord_broken" fails with an
// internal error whose text must never reach the page.
type fakeOrders map[string]payment.CheckoutOrder

func (f fakeOrders) CheckoutView(ctx context.Context, id string) (payment.CheckoutOrder, error) {
	if id == "ord_broken" {
		return payment.CheckoutOrder{}, errors.New("pq: connection refused to db-internal-7:5432")
	}
	o, ok := f[id]
	if !ok {
		return payment.CheckoutOrder{}, paygate.E(paygate.CodeNotFound, "order not found")
	}
	return o, nil
}

// order is an open sandbox order of "Tea House" with every method.
func order(id string, mod ...func(*payment.CheckoutOrder)) payment.CheckoutOrder {
	o := payment.CheckoutOrder{ID: id, MerchantName: "Tea House", Description: "Green tea 250 g", Total: 12_345, Currency: "CNY",
		Status: payment.StatusNotPay, TimeExpire: t0.Add(2 * time.Hour), ReturnURL: "https://shop.example.com/return?o=1",
		Methods: payment.CheckoutMethods, Sandbox: true, MerchantCanTransact: true, CheckoutURL: "https://pay.example.com/checkout/" + id}
	for _, m := range mod {
		m(&o)
	}
	return o
}

func newHandler(t *testing.T, orders web.Orders) (*web.Handler, *paygate.ManualClock) {
	t.Helper()
	clock := paygate.NewManualClock(t0)
	h, err := web.New(web.Config{Orders: orders, Clock: clock, Logger: slog.New(slog.DiscardHandler)})
	require.NoError(t, err)
	return h, clock
}

// get serves one GET and returns the response and its body.
func get(t *testing.T, h http.Handler, path string) (*http.Response, string) {
	t.Helper()
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, path, nil))
	res := rec.Result()
	b, err := io.ReadAll(res.Body)
	require.NoError(t, err)
	return res, string(b)
}

// TestCheckoutStates: every order status renders its own message; only a
// payable order shows methods, the QR code and the polling trigger; paid
// orders offer the way back to the merchant.
func TestCheckoutStates(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name      string
		order     payment.CheckoutOrder
		state     web.State
		title     string
		methods   bool
		returnURL string // the link expected, "" for none
	}{
		{"notpay", order("ord_notpay"), web.StateOpen, "Awaiting payment", true, ""},
		{"payerror", order("ord_payerror", func(o *payment.CheckoutOrder) { o.Status = payment.StatusPayError }),
			web.StateOpen, "Awaiting payment", true, ""},
		{"paid", order("ord_paid", func(o *payment.CheckoutOrder) { o.Status, o.SuccessTime = payment.StatusSuccess, t0 }),
			web.StatePaid, "Paid", false, "Return to merchant"},
		{"paid without return url", order("ord_paid2", func(o *payment.CheckoutOrder) { o.Status, o.ReturnURL = payment.StatusSuccess, "" }),
			web.StatePaid, "Paid", false, ""},
		{"closed", order("ord_closed", func(o *payment.CheckoutOrder) { o.Status, o.CloseReason = payment.StatusClosed, payment.CloseMerchant }),
			web.StateClosed, "Closed", false, "Back to merchant"},
		{"closed by expiry", order("ord_expclosed", func(o *payment.CheckoutOrder) {
			o.Status, o.CloseReason, o.TimeExpire = payment.StatusClosed, payment.CloseExpired, t0.Add(-time.Minute)
		}), web.StateExpired, "Expired", false, "Back to merchant"},
		{"expired, not closed yet", order("ord_expopen", func(o *payment.CheckoutOrder) { o.TimeExpire = t0 }),
			web.StateExpired, "Expired", false, "Back to merchant"},
		{"merchant suspended", order("ord_susp", func(o *payment.CheckoutOrder) { o.MerchantCanTransact = false }),
			web.StateUnavailable, "Unavailable", false, "Back to merchant"},
	}
	orders := fakeOrders{}
	for _, tt := range tests {
		orders[tt.order.ID] = tt.order
	}
	h, _ := newHandler(t, orders)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			res, body := get(t, h, "/checkout/"+tt.order.ID)
			require.Equal(t, http.StatusOK, res.StatusCode)
			require.Equal(t, "text/html; charset=utf-8", res.Header.Get("Content-Type"))
			require.Contains(t, body, `data-state="`+string(tt.state)+`"`)
			require.Contains(t, body, `id="status-title">`+tt.title+`<`)
			require.Contains(t, body, `id="merchant">Tea House<`)
			require.Contains(t, body, `id="amount-value">123.45<`)
			require.Contains(t, body, "Green tea 250 g")
			require.Contains(t, body, "Sandbox")
			require.Equal(t, tt.methods, strings.Contains(body, `id="method-quick_pay"`), "methods")
			require.Equal(t, tt.methods, strings.Contains(body, `id="qr"`), "QR code")
			require.Equal(t, tt.methods, strings.Contains(body, `hx-trigger="every 2000ms"`), "polling")
			require.Equal(t, tt.methods, strings.Contains(body, `id="time-left">2 h 00 min<`), "time left")
			if tt.returnURL != "" {
				require.Contains(t, body, `<a class="button`)
				require.Contains(t, body, `href="https://shop.example.com/return?o=1">`+tt.returnURL+`</a>`)
			} else {
				require.NotContains(t, body, `id="return-to-merchant"`)
			}
			if tt.order.Status == payment.StatusPayError {
				require.Contains(t, body, "last payment attempt failed")
			}
		})
	}
}

// TestCheckoutStatusFragment: the polled fragment keeps polling while the
// order is open, and once it is not, stops and removes the methods with an
// out-of-band swap.
func TestCheckoutStatusFragment(t *testing.T) {
	t.Parallel()
	orders := fakeOrders{"ord_a": order("ord_a")}
	h, clock := newHandler(t, orders)

	res, body := get(t, h, "/checkout/ord_a/status")
	require.Equal(t, http.StatusOK, res.StatusCode)
	require.Equal(t, "no-store", res.Header.Get("Cache-Control"))
	require.True(t, strings.HasPrefix(body, `<section id="order-status"`), body)
	require.Contains(t, body, `hx-get="/checkout/ord_a/status?shown=open" hx-trigger="every 2000ms" hx-swap="outerHTML"`)
	require.Empty(t, res.Header.Get("HX-Redirect"))
	require.NotContains(t, body, "hx-swap-oob")
	require.NotContains(t, body, "<html", "a fragment, not a page")

	clock.Advance(time.Hour + 58*time.Minute + 30*time.Second)
	_, body = get(t, h, "/checkout/ord_a/status")
	require.Contains(t, body, `id="time-left">1 min 30 s<`, "the time left counts down at each poll")

	// Another bank processing a card payment: the page shows it and keeps
	// polling; when the bank declines, the order is open again and the
	// page is sent to a fresh checkout that says so.
	o := orders["ord_a"]
	o.InProgress = "interbank"
	orders["ord_a"] = o
	_, body = get(t, h, "/checkout/ord_a/status?shown=open")
	require.Contains(t, body, `hx-get="/checkout/ord_a/status?shown=processing"`)
	o.InProgress, o.Status = "", payment.StatusPayError
	orders["ord_a"] = o
	res, _ = get(t, h, "/checkout/ord_a/status?shown=processing")
	require.Equal(t, "/checkout/ord_a?declined=1", res.Header.Get("HX-Redirect"))
	res, _ = get(t, h, "/checkout/ord_a/status?shown=open")
	require.Empty(t, res.Header.Get("HX-Redirect"), "a page already showing the methods stays")

	o.Status = payment.StatusSuccess
	orders["ord_a"] = o
	res, body = get(t, h, "/checkout/ord_a/status?shown=processing")
	require.Empty(t, res.Header.Get("HX-Redirect"), "paid: the fragment says so in place")
	require.Contains(t, body, `data-state="paid"`)
	require.NotContains(t, body, "hx-trigger", "polling stops")
	require.Contains(t, body, `<div id="pay" class="pay" hx-swap-oob="true"></div>`, "the methods go")
	require.Contains(t, body, `id="return-to-merchant"`)
}

// TestCheckoutAmounts: amounts are formatted from integer minor units with
// the currency's decimals.
func TestCheckoutAmounts(t *testing.T) {
	t.Parallel()
	tests := []struct {
		total    int64
		currency paygate.Currency
		want     string
	}{
		{1, "CNY", "0.01"},
		{99, "CNY", "0.99"},
		{100, "CNY", "1.00"},
		{123_456, "CNY", "1,234.56"},
		{100_000_000, "CNY", "1,000,000.00"},
		{1, "JPY", "1"},
		{1_234, "JPY", "1,234"},
		{100_000_000, "JPY", "100,000,000"},
		{1_234_567, "KWD", "1,234.567"},
		{9_223_372_036_854_775_807, "USD", "92,233,720,368,547,758.07"},
		{-12_345, "CNY", "-123.45"},
	}
	orders := fakeOrders{}
	for _, tt := range tests {
		t.Run(tt.want+" "+string(tt.currency), func(t *testing.T) {
			require.Equal(t, tt.want, web.FormatAmount(tt.total, tt.currency))
		})
		if tt.total > 0 && tt.total <= payment.DefaultMaxAmount {
			id := "ord_" + string(tt.currency) + tt.want
			orders[id] = order(id, func(o *payment.CheckoutOrder) { o.Total, o.Currency = tt.total, tt.currency })
		}
	}
	h, _ := newHandler(t, orders)
	for id, o := range orders {
		_, body := get(t, h, "/checkout/"+id)
		require.Contains(t, body, `<span class="currency">`+string(o.Currency)+`</span> <span class="value" id="amount-value">`+
			web.FormatAmount(o.Total, o.Currency)+`</span>`)
	}
}

func TestTimeLeft(t *testing.T) {
	t.Parallel()
	tests := []struct {
		d    time.Duration
		want string
	}{
		{-time.Minute, "0 s"},
		{0, "0 s"},
		{999 * time.Millisecond, "0 s"},
		{time.Second, "1 s"},
		{59*time.Second + 999*time.Millisecond, "59 s"},
		{time.Minute, "1 min 00 s"},
		{4*time.Minute + 9*time.Second, "4 min 09 s"},
		{time.Hour, "1 h 00 min"},
		{2*time.Hour - time.Second, "1 h 59 min"},
		{24 * time.Hour, "1 d 0 h"},
		{7*24*time.Hour - time.Nanosecond, "6 d 23 h"},
	}
	for _, tt := range tests {
		require.Equal(t, tt.want, web.TimeLeft(tt.d), "%v", tt.d)
	}
}

// TestCheckoutNotFound: unknown orders and paths answer a friendly 404
// page with the page's security headers.
func TestCheckoutNotFound(t *testing.T) {
	t.Parallel()
	h, _ := newHandler(t, fakeOrders{"ord_a": order("ord_a")})
	for _, path := range []string{"/checkout/ord_nope", "/checkout/ord_nope/status", "/checkout/ord_nope/qr.svg",
		"/checkout/", "/checkout/ord_a/nothing/here", "/checkout/%3Cscript%3E"} {
		t.Run(path, func(t *testing.T) {
			res, body := get(t, h, path)
			require.Equal(t, http.StatusNotFound, res.StatusCode)
			require.Contains(t, body, "<h1>Order not found</h1>")
			require.NotContains(t, body, "<script>")
			require.Equal(t, "no-store", res.Header.Get("Cache-Control"))
			require.Equal(t, "DENY", res.Header.Get("X-Frame-Options"))
		})
	}
}

// TestCheckoutInternalError: a failing read answers 500 with a page that
// does not leak the error.
func TestCheckoutInternalError(t *testing.T) {
	t.Parallel()
	h, _ := newHandler(t, fakeOrders{})
	for _, path := range []string{"/checkout/ord_broken", "/checkout/ord_broken/status", "/checkout/ord_broken/qr.svg"} {
		res, body := get(t, h, path)
		require.Equal(t, http.StatusInternalServerError, res.StatusCode)
		require.Contains(t, body, "Something went wrong")
		require.NotContains(t, body, "db-internal")
		require.NotContains(t, body, "connection refused")
	}
}

// TestCheckoutSecurityHeaders: a strict CSP (self only, no inline code),
// no framing, no caching of order pages, on every route.
func TestCheckoutSecurityHeaders(t *testing.T) {
	t.Parallel()
	h, _ := newHandler(t, fakeOrders{"ord_a": order("ord_a")})
	for _, path := range []string{"/checkout/ord_a", "/checkout/ord_a/status", "/checkout/ord_a/qr.svg", "/checkout/ord_x",
		"/static/htmx.min.js", "/static/checkout.css"} {
		t.Run(path, func(t *testing.T) {
			res, _ := get(t, h, path)
			csp := res.Header.Get("Content-Security-Policy")
			require.Contains(t, csp, "default-src 'self'")
			require.Contains(t, csp, "script-src 'self';")
			require.Contains(t, csp, "style-src 'self';")
			require.Contains(t, csp, "frame-ancestors 'none'")
			require.NotContains(t, csp, "unsafe-")
			require.Equal(t, "DENY", res.Header.Get("X-Frame-Options"))
			require.Equal(t, "nosniff", res.Header.Get("X-Content-Type-Options"))
			require.Equal(t, "no-referrer", res.Header.Get("Referrer-Policy"))
			if strings.HasPrefix(path, "/static/") {
				require.Equal(t, "public, max-age=3600", res.Header.Get("Cache-Control"))
			} else if !strings.HasSuffix(path, ".svg") {
				require.Equal(t, "no-store", res.Header.Get("Cache-Control"))
			}
		})
	}
	// No inline script or style for the CSP to block.
	_, body := get(t, h, "/checkout/ord_a")
	require.NotContains(t, body, "<style")
	require.NotContains(t, body, " style=")
	require.NotRegexp(t, `\son[a-z]+=`, body, "no inline event handlers")
	require.Equal(t, 1, strings.Count(body, "<script"))
	require.Contains(t, body, `<script src="/static/htmx.min.js?v=`)
}

// TestCheckoutEscapes: merchant-supplied text is escaped.
func TestCheckoutEscapes(t *testing.T) {
	t.Parallel()
	o := order("ord_x", func(o *payment.CheckoutOrder) {
		o.Description, o.MerchantName = `<script>alert("d")</script>`, `<img src=x onerror=alert(1)>`
		o.Status, o.ReturnURL = payment.StatusSuccess, "javascript:alert(1)"
	})
	h, _ := newHandler(t, fakeOrders{"ord_x": o})
	_, body := get(t, h, "/checkout/ord_x")
	require.NotContains(t, body, `<script>alert`)
	require.NotContains(t, body, `<img src=x`)
	require.Contains(t, body, `&lt;script&gt;alert(&#34;d&#34;)&lt;/script&gt;`)
	require.NotContains(t, body, `href="javascript:`)
}

// TestCheckoutQR: the QR code is an SVG of the checkout URL; no QR without
// a checkout URL.
func TestCheckoutQR(t *testing.T) {
	t.Parallel()
	h, _ := newHandler(t, fakeOrders{"ord_a": order("ord_a"), "ord_nourl": order("ord_nourl", func(o *payment.CheckoutOrder) { o.CheckoutURL = "" })})
	res, body := get(t, h, "/checkout/ord_a/qr.svg")
	require.Equal(t, http.StatusOK, res.StatusCode)
	require.Equal(t, "image/svg+xml", res.Header.Get("Content-Type"))
	want, err := web.QRSVG("https://pay.example.com/checkout/ord_a")
	require.NoError(t, err)
	require.Equal(t, string(want), body)
	require.True(t, strings.HasPrefix(body, `<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 `))
	require.True(t, strings.HasSuffix(body, `"/></svg>`))

	res, _ = get(t, h, "/checkout/ord_nourl/qr.svg")
	require.Equal(t, http.StatusNotFound, res.StatusCode)
	_, page := get(t, h, "/checkout/ord_nourl")
	require.NotContains(t, page, `id="qr"`)
	require.Contains(t, page, `id="method-quick_pay"`)

	// An order that allows only methods the checkout does not know.
	h, _ = newHandler(t, fakeOrders{"ord_m": order("ord_m", func(o *payment.CheckoutOrder) { o.Methods = nil })})
	_, page = get(t, h, "/checkout/ord_m")
	require.Contains(t, page, `id="no-methods"`)
}

// TestStatic: the embedded htmx and CSS are served with their types.
func TestStatic(t *testing.T) {
	t.Parallel()
	h, _ := newHandler(t, fakeOrders{})
	res, body := get(t, h, "/static/htmx.min.js")
	require.Equal(t, http.StatusOK, res.StatusCode)
	require.Contains(t, res.Header.Get("Content-Type"), "javascript")
	require.True(t, strings.HasPrefix(body, "var htmx=function(){"))
	res, _ = get(t, h, "/static/checkout.css")
	require.Equal(t, http.StatusOK, res.StatusCode)
	require.Contains(t, res.Header.Get("Content-Type"), "text/css")
	res, _ = get(t, h, "/static/nope.js")
	require.Equal(t, http.StatusNotFound, res.StatusCode)
}

func TestNewValidates(t *testing.T) {
	t.Parallel()
	_, err := web.New(web.Config{})
	require.True(t, paygate.HasCode(err, paygate.CodeInvalidArgument))
	_, err = web.New(web.Config{Orders: fakeOrders{}, CSRFKey: []byte("short")})
	require.True(t, paygate.HasCode(err, paygate.CodeInvalidArgument))
}

// TestFormatAmountProperty: without its separators, a formatted amount is
// paygate.FormatMinor's, and the separators group the whole part by three.
func TestFormatAmountProperty(t *testing.T) {
	t.Parallel()
	rapid.Check(t, func(t *rapid.T) {
		n := rapid.Int64().Draw(t, "minor")
		c := rapid.SampledFrom([]paygate.Currency{"CNY", "JPY", "KWD"}).Draw(t, "currency")
		s := web.FormatAmount(n, c)
		require.Equal(t, paygate.FormatMinor(n, c.Exponent()), strings.ReplaceAll(s, ",", ""))
		whole, _, _ := strings.Cut(strings.TrimPrefix(s, "-"), ".")
		groups := strings.Split(whole, ",")
		require.True(t, len(groups[0]) >= 1 && len(groups[0]) <= 3, s)
		for _, g := range groups[1:] {
			require.Len(t, g, 3, s)
		}
	})
}
