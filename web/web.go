// Package web serves paygate's browser-facing pages: for now the hosted
// checkout (the cashier) a merchant's payer opens at an order's
// checkout_url. Pages are html/template renderings with htmx 2 (vendored in
// static/, embedded) for the parts that update by themselves; they work
// without JavaScript apart from that.
//
// Routes (Handler.Register):
//
//   - GET /checkout/{id}: the checkout page of an order;
//   - GET /checkout/{id}/status: the order's status fragment, polled by the
//     page every PollInterval; once the order is no longer payable it also
//     removes the payment methods (an htmx out-of-band swap);
//   - GET /checkout/{id}/qr.svg: a QR code of the checkout URL, to open the
//     order on a phone;
//   - GET /static/...: the embedded CSS and htmx.
//
// Every page carries a strict Content-Security-Policy (only 'self'; no
// inline script or style), X-Frame-Options DENY and, for order pages,
// Cache-Control no-store. POST forms are protected as csrf.go describes.
package web

import (
	"context"
	"crypto/rand"
	"embed"
	"io/fs"
	"log/slog"
	"net/http"
	"net/url"
	"time"

	"paygate"
	"paygate/payment"
)

//go:embed templates/*.html
var templateFS embed.FS

//go:embed static
var staticFS embed.FS

// DefaultPollInterval is how often an open checkout page asks for its
// order's status.
const DefaultPollInterval = 2 * time.Second

// Orders is what the checkout reads of orders; *payment.Service implements
// it. CheckoutView fails with CodeNotFound for an unknown id.
type Orders interface {
	CheckoutView(ctx context.Context, orderID string) (payment.CheckoutOrder, error)
}

// Config configures a Handler. Orders is required.
type Config struct {
	Orders Orders
	// Clock tells the time left; nil means the system clock.
	Clock paygate.Clock
	// Logger receives internal errors (never shown to the payer); nil
	// means slog.Default().
	Logger *slog.Logger
	// CSRFKey keys the CSRF tokens (HMAC-SHA256, at least 32 bytes). All
	// nodes serving one public URL need the same key; nil means a random
	// key for this process (tokens then do not survive a restart).
	CSRFKey []byte
	// SecureCookies marks cookies Secure (and names them with the
	// __Host- prefix); set it when the public URL is https.
	SecureCookies bool
	// PollInterval is how often an open page polls its status; 0 means
	// DefaultPollInterval.
	PollInterval time.Duration
	// Checkout takes the payments of the page's forms; nil shows the
	// methods as coming soon (pay.go).
	Checkout Checkout
	// Sessions and Customers let a customer log in on the page and pay
	// from their balance; balance pay is offered only with both.
	Sessions  *Sessions
	Customers CheckoutCustomers
	// Agreements serves the merchant agreements' sign pages
	// (/agreements/{id}, agreement.go); nil serves none.
	Agreements Agreements
}

// Handler serves the pages. It is safe for concurrent use.
type Handler struct {
	cfg    Config
	orders Orders
	clock  paygate.Clock
	log    *slog.Logger
	pages  *pages
	static http.Handler
	mux    *http.ServeMux
}

// New returns a Handler. Errors: CodeInvalidArgument for a missing Orders
// or a short CSRFKey.
func New(cfg Config) (*Handler, error) {
	if cfg.Orders == nil {
		return nil, paygate.E(paygate.CodeInvalidArgument, "web: Orders is required")
	}
	if cfg.Clock == nil {
		cfg.Clock = paygate.SystemClock{}
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.CSRFKey == nil {
		cfg.CSRFKey = make([]byte, 32)
		rand.Read(cfg.CSRFKey)
	}
	if len(cfg.CSRFKey) < 32 {
		return nil, paygate.E(paygate.CodeInvalidArgument, "web: CSRFKey must be at least 32 bytes")
	}
	if cfg.PollInterval <= 0 {
		cfg.PollInterval = DefaultPollInterval
	}
	p, err := parsePages()
	if err != nil {
		return nil, err
	}
	sub, err := fs.Sub(staticFS, "static")
	if err != nil {
		return nil, err
	}
	h := &Handler{cfg: cfg, orders: cfg.Orders, clock: cfg.Clock, log: cfg.Logger, pages: p,
		static: http.StripPrefix("/static/", http.FileServerFS(sub))}
	h.mux = http.NewServeMux()
	h.Register(h.mux)
	return h, nil
}

// Register adds the pages' routes to mux.
func (h *Handler) Register(mux *http.ServeMux) {
	mux.HandleFunc("GET /checkout/{id}", h.checkout)
	mux.HandleFunc("GET /checkout/{id}/status", h.status)
	mux.HandleFunc("GET /checkout/{id}/qr.svg", h.qr)
	if h.cfg.Checkout != nil {
		h.registerPay(mux)
	}
	if h.cfg.Agreements != nil {
		h.registerAgreements(mux)
	}
	mux.HandleFunc("GET /checkout/", h.notFound)
	mux.HandleFunc("GET /static/", h.serveStatic)
}

// ServeHTTP serves the pages' routes alone (tests; paygate mounts them with
// Register next to the API).
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) { h.mux.ServeHTTP(w, r) }

// contentSecurityPolicy allows scripts, styles, images and requests from
// paygate itself only, forms to post only to paygate, and no framing.
const contentSecurityPolicy = "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self'; " +
	"connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'; object-src 'none'"

// secure sets the security headers of every page; noStore also forbids
// caching (order pages: status and amounts must never come from a cache).
func secure(w http.ResponseWriter, noStore bool) {
	hd := w.Header()
	hd.Set("Content-Security-Policy", contentSecurityPolicy)
	hd.Set("X-Frame-Options", "DENY")
	hd.Set("X-Content-Type-Options", "nosniff")
	hd.Set("Referrer-Policy", "no-referrer")
	hd.Set("Cross-Origin-Opener-Policy", "same-origin")
	hd.Set("Permissions-Policy", "camera=(), microphone=(), geolocation=(), payment=()")
	if noStore {
		hd.Set("Cache-Control", "no-store")
	}
}

// serveStatic serves the embedded assets; they change only with a new
// build, so caches may keep them for an hour.
func (h *Handler) serveStatic(w http.ResponseWriter, r *http.Request) {
	secure(w, false)
	w.Header().Set("Cache-Control", "public, max-age=3600")
	h.static.ServeHTTP(w, r)
}

// order reads the order of the request's path, answering the not-found or
// error page itself when it cannot (ok false).
func (h *Handler) order(w http.ResponseWriter, r *http.Request) (payment.CheckoutOrder, bool) {
	o, err := h.orders.CheckoutView(r.Context(), r.PathValue("id"))
	switch {
	case err == nil:
		return o, true
	case paygate.HasCode(err, paygate.CodeNotFound):
		h.notFound(w, r)
	default:
		h.log.ErrorContext(r.Context(), "checkout: reading the order", "order_id", r.PathValue("id"), "error", err)
		h.render(w, http.StatusInternalServerError, "error", errorPage{Title: "Something went wrong"})
	}
	return payment.CheckoutOrder{}, false
}

// checkout serves the checkout page.
func (h *Handler) checkout(w http.ResponseWriter, r *http.Request) {
	o, ok := h.order(w, r)
	if !ok {
		return
	}
	v := h.pageView(w, r, o)
	if m := r.URL.Query().Get("method"); methodTexts[m] != [2]string{} {
		v.Active = m
	}
	if r.URL.Query().Get("declined") != "" && v.State == StateOpen {
		v.Message = "The card's bank declined the payment. Please try another card or method."
	}
	h.render(w, http.StatusOK, "checkout", v)
}

// pageView is view plus what only the full page shows: the CSRF token and
// the logged-in customer of balance pay.
func (h *Handler) pageView(w http.ResponseWriter, r *http.Request, o payment.CheckoutOrder) checkoutView {
	v := h.view(o)
	v.CSRFToken = h.csrfToken(w, r, o.ID)
	if h.balanceReady() && v.State == StateOpen {
		if id, ok := h.cfg.Sessions.Customer(r); ok {
			c, err := h.cfg.Customers.Customer(r.Context(), id)
			if err == nil {
				cv := &customerView{Name: c.NameMasked, Login: c.PhoneMasked, PayPasswordSet: c.PayPasswordSet}
				if cv.Login == "" {
					cv.Login = c.Username
				}
				if b, err := h.cfg.Customers.Balance(r.Context(), id); err == nil {
					cv.Balance = FormatAmount(b.Amount, b.Currency)
				}
				v.Customer = cv
			}
		}
	}
	return v
}

// balanceReady reports whether balance pay can work: a checkout, sessions
// and customers.
func (h *Handler) balanceReady() bool {
	return h.cfg.Checkout != nil && h.cfg.Sessions != nil && h.cfg.Customers != nil
}

// status serves the status fragment the page polls.
func (h *Handler) status(w http.ResponseWriter, r *http.Request) {
	o, ok := h.order(w, r)
	if !ok {
		return
	}
	v := h.view(o)
	v.Fragment = true
	// A page that showed "processing" removed its methods; when the other
	// bank's answer turns out a failure the order is open again, and only
	// a fresh page brings the methods back, with the failure said.
	if r.URL.Query().Get("shown") == string(StateProcessing) && v.State == StateOpen {
		w.Header().Set("HX-Redirect", "/checkout/"+url.PathEscape(o.ID)+"?declined=1")
	}
	h.render(w, http.StatusOK, "status-fragment", v)
}

// notFound serves the friendly 404 page.
func (h *Handler) notFound(w http.ResponseWriter, r *http.Request) {
	h.render(w, http.StatusNotFound, "notfound", errorPage{Title: "Order not found"})
}
