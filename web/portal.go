package web

// The customer portal: /portal/... pages where a customer logs in, sees
// accounts, balances and transaction history (with CSV download), manages
// bound cards and agreements, turns online payment on or off and changes
// passwords. See docs/PORTAL.md.

import (
	"context"
	"crypto/rand"
	"encoding/csv"
	"errors"
	"fmt"
	"html/template"
	"io/fs"
	"log/slog"
	"net/http"
	"net/url"
	"path"
	"strings"
	"time"
	"unicode/utf8"

	"paygate"
	"paygate/customer"
	"paygate/transfer"
)

// PortalCustomers is what the portal uses of customers; *customer.Service
// implements it. Errors are the service's (paygate codes with messages safe
// to show); another customer's card or agreement is CodeNotFound.
type PortalCustomers interface {
	Login(ctx context.Context, login, password string) (customer.Customer, error)
	Register(ctx context.Context, req customer.RegisterRequest) (customer.Customer, error)
	VerifyRealName(ctx context.Context, id, name, idNumber, phone string) (customer.Customer, error)
	Customer(ctx context.Context, id string) (customer.Customer, error)
	Balance(ctx context.Context, id string) (paygate.Money, error)
	Cards(ctx context.Context, customerID string) ([]customer.Card, error)
	Card(ctx context.Context, customerID, cardID string) (customer.Card, error)
	CardBalance(ctx context.Context, customerID, cardID string) (paygate.Money, error)
	Agreements(ctx context.Context, customerID string) ([]customer.Agreement, error)
	Unbind(ctx context.Context, customerID, agreementID string) (customer.Agreement, error)
	SetOnlinePayment(ctx context.Context, id string, on bool) (customer.Customer, error)
	ChangePassword(ctx context.Context, id, old, new string) error
	SetPayPassword(ctx context.Context, id, loginPassword, pin string) (customer.Customer, error)
	History(ctx context.Context, customerID string, q customer.HistoryQuery) (customer.HistoryPage, error)
}

var _ PortalCustomers = (*customer.Service)(nil)

// PortalConfig configures a Portal. Customers and Sessions are required.
type PortalConfig struct {
	Customers PortalCustomers
	Sessions  *Sessions
	// Clock tells how long a lock-out has left; nil means the system clock.
	Clock paygate.Clock
	// Logger receives internal errors (never shown); nil means
	// slog.Default().
	Logger *slog.Logger
	// CSRFKey keys the portal's CSRF tokens (HMAC-SHA256, at least 32
	// bytes); nil means a random key for this process. Several nodes
	// behind one URL need the same key.
	CSRFKey []byte
	// SecureCookies marks the CSRF cookie Secure with the __Host- prefix
	// (the session cookie follows SessionConfig.Secure).
	SecureCookies bool
	// Agreements lists and revokes the customer's merchant agreements on
	// the cards page (agreement.go); nil shows none.
	Agreements PortalAgreements
}

// Portal serves the customer portal's pages under /portal/. Every page
// needs a live session (Sessions) except login and register, which a
// logged-out visitor is redirected to; every POST needs the portal's CSRF
// token for the session's customer (or, before login, the anonymous one)
// and passes http.CrossOriginProtection. Pages carry the strict CSP and
// no-store headers of the checkout. A card or agreement id of another
// customer answers 404, exactly as an unknown one. Portal is safe for
// concurrent use.
type Portal struct {
	customers PortalCustomers
	sessions  *Sessions
	clock     paygate.Clock
	log       *slog.Logger
	h         *Handler // rendering and CSRF tokens (render.go, csrf.go)
	loc       *time.Location
	mux       *http.ServeMux
	mandates  PortalAgreements // merchant agreements; nil for none
}

// NewPortal returns a Portal. Errors: CodeInvalidArgument when Customers or
// Sessions is missing or CSRFKey is shorter than 32 bytes; a template
// error.
func NewPortal(cfg PortalConfig) (*Portal, error) {
	if cfg.Customers == nil || cfg.Sessions == nil {
		return nil, paygate.E(paygate.CodeInvalidArgument, "web: PortalConfig needs Customers and Sessions")
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
	pp, err := parsePortalPages()
	if err != nil {
		return nil, err
	}
	loc, err := time.LoadLocation("Asia/Shanghai")
	if err != nil {
		return nil, err
	}
	p := &Portal{customers: cfg.Customers, sessions: cfg.Sessions, clock: cfg.Clock, log: cfg.Logger, loc: loc, mandates: cfg.Agreements,
		h: &Handler{cfg: Config{CSRFKey: cfg.CSRFKey, SecureCookies: cfg.SecureCookies, Clock: cfg.Clock, Logger: cfg.Logger},
			clock: cfg.Clock, log: cfg.Logger, pages: pp}}
	p.mux = http.NewServeMux()
	p.Register(p.mux)
	return p, nil
}

// Register adds the portal's routes to mux (next to the checkout's, which
// serve /static/).
func (p *Portal) Register(mux *http.ServeMux) {
	mux.HandleFunc("GET /portal", func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, "/portal/", http.StatusSeeOther)
	})
	mux.HandleFunc("GET /portal/{$}", p.authed(p.overview))
	mux.HandleFunc("GET /portal/login", p.loginPage)
	mux.Handle("POST /portal/login", p.protect(p.login))
	mux.Handle("POST /portal/logout", p.protect(p.authedPost(p.logout)))
	mux.HandleFunc("GET /portal/register", p.registerPage)
	mux.Handle("POST /portal/register", p.protect(p.register))
	mux.HandleFunc("GET /portal/verify", p.authed(p.verifyPage))
	mux.Handle("POST /portal/verify", p.protect(p.authedPost(p.verify)))
	mux.HandleFunc("GET /portal/history", p.authed(p.history))
	mux.HandleFunc("GET /portal/history.csv", p.authed(p.historyCSV))
	mux.HandleFunc("GET /portal/cards", p.authed(p.cards))
	mux.HandleFunc("GET /portal/cards/{id}/history", p.authed(p.history))
	mux.HandleFunc("GET /portal/cards/{id}/history.csv", p.authed(p.historyCSV))
	mux.Handle("POST /portal/agreements/{id}/revoke", p.protect(p.authedPost(p.revoke)))
	if p.mandates != nil {
		mux.Handle("POST /portal/merchant-agreements/{id}/revoke", p.protect(p.authedPost(p.revokeMandate)))
	}
	mux.HandleFunc("GET /portal/settings", p.authed(p.settingsPage))
	mux.Handle("POST /portal/settings/online-payment", p.protect(p.authedPost(p.onlinePayment)))
	mux.Handle("POST /portal/settings/password", p.protect(p.authedPost(p.changePassword)))
	mux.Handle("POST /portal/settings/pay-password", p.protect(p.authedPost(p.payPassword)))
	mux.HandleFunc("/portal/", func(w http.ResponseWriter, r *http.Request) {
		p.errorPage(w, http.StatusNotFound, "Page not found", "There is no such page in the customer portal.")
	})
}

// ServeHTTP serves the portal's routes alone (tests; paygate mounts them
// with Register next to the API and the checkout).
func (p *Portal) ServeHTTP(w http.ResponseWriter, r *http.Request) { p.mux.ServeHTTP(w, r) }

// portalAssetVersion busts caches of portal.css when it changes.
const portalAssetVersion = "p1"

// parsePortalPages parses the portal's templates: portal_layout.html is
// each page's "layout.html" (the entry render executes); every other
// portal_*.html is a page defining "content". Only the "asset" function
// and built-ins are used, so the checkout's parsePages, which sees these
// files too, parses them as well.
func parsePortalPages() (*pages, error) {
	layout, err := fs.ReadFile(templateFS, "templates/portal_layout.html")
	if err != nil {
		return nil, err
	}
	base, err := template.New("layout.html").Funcs(template.FuncMap{"asset": func(name string) string {
		return "/static/" + name + "?v=" + assetVersion + "-" + portalAssetVersion
	}}).Parse(string(layout))
	if err != nil {
		return nil, fmt.Errorf("web: parse portal_layout.html: %w", err)
	}
	names, err := fs.Glob(templateFS, "templates/portal_*.html")
	if err != nil {
		return nil, err
	}
	pp := &pages{sets: map[string]*template.Template{}}
	for _, n := range names {
		name := strings.TrimSuffix(path.Base(n), ".html")
		if name == "portal_layout" {
			continue
		}
		t, err := template.Must(base.Clone()).ParseFS(templateFS, n)
		if err != nil {
			return nil, fmt.Errorf("web: parse %s: %w", n, err)
		}
		pp.sets[name] = t
	}
	return pp, nil
}

// Field limits: longer input is refused with a message before any service
// is called.
const (
	maxLoginLen    = 64
	maxPasswordLen = customer.MaxPasswordLength
	maxNameLen     = customer.MaxNameLength
	maxIDLen       = 32
	maxPhoneLen    = 24
	maxPINLen      = 16
	maxRefLen      = 64 // card and agreement ids in paths
	maxCursorLen   = 256
	maxNextLen     = 512
	portalBodyMax  = 64 << 10
	historyPage    = customer.DefaultHistoryLimit
	csvMaxRows     = 10_000
)

// portalView is the data of every portal page.
type portalView struct {
	Title     string
	Nav       string // the current section: overview, history, cards, settings
	CSRFToken string
	User      *userView // nil when logged out
	Notice    string    // a success message (from a fixed list)
	Error     string    // what went wrong, safe to show
	Field     string    // the input at fault, if any
	Form      map[string]string
	Next      string // where to go after logging in
	Message   string // error page text

	Overview *overviewView
	History  *historyView
	Cards    *cardsView
}

// userView is the logged-in customer as pages show them.
type userView struct {
	Login          string // phone masked, or the username
	Name           string // verified name, masked
	IDMasked       string
	PhoneMasked    string
	Verified       bool
	Factors        string
	OnlinePayment  bool
	PayPasswordSet bool
}

type accountView struct {
	ID, Label, Number, Kind, Bank, Status, Balance string
	Own, Bound, Active                             bool
	HistoryURL                                     string
}

type overviewView struct {
	Balance string
	Cards   []accountView
}

type entryView struct {
	Time, TimeISO, Date, Kind, Direction, Amount, Ref string
	RefURL                                            string // a page about Ref, when there is one
	Pending                                           bool
}

type historyView struct {
	Account   string // what the history is of
	Accounts  []accountView
	Action    string // the filter form's action
	From, To  string
	Direction string // "", "in", "out"
	Entries   []entryView
	Filtered  bool
	NextURL   string
	FirstURL  string // when not on the newest page
	CSVURL    string
}

type agreementView struct {
	ID, Card, Status, Since, Revoked string
	Active                           bool
}

type cardsView struct {
	Cards      []accountView
	Agreements []agreementView
	// Mandates are the merchant agreements the customer signed.
	Mandates []mandateView
}

// notices are the success messages a redirect may ask for (?ok=...): a
// fixed list, so nothing from the URL is ever echoed.
var notices = map[string]string{
	"logged_out":      "You have logged out.",
	"registered":      "Welcome! Your account is ready. Verify your real name to raise your limits.",
	"verified":        "Your real name is verified.",
	"unbound":         "The card is unbound: quick pay with it needs the full card details again.",
	"mandate_revoked": "The agreement is revoked: the merchant can no longer charge your card with it.",
	"online_on":       "Online payment is on.",
	"online_off":      "Online payment is off: every online payment is refused until you turn it on again.",
	"password":        "Your login password is changed. Other devices were logged out.",
	"pay_password":    "Your payment password is set.",
}

func (p *Portal) render(w http.ResponseWriter, status int, name string, v *portalView) {
	p.h.render(w, status, name, v)
}

func (p *Portal) errorPage(w http.ResponseWriter, status int, title, msg string) {
	p.render(w, status, "portal_error", &portalView{Title: title, Message: msg})
}

// internal logs an unexpected error and answers the generic error page.
func (p *Portal) internal(w http.ResponseWriter, r *http.Request, what string, err error) {
	p.log.ErrorContext(r.Context(), "portal: "+what, "error", err)
	p.errorPage(w, http.StatusInternalServerError, "Something went wrong", "Please try again in a moment.")
}

func anonScope() string { return "portal\x00" }

func customerScope(id string) string { return "portal\x00" + id }

// base returns the view every page starts from.
func (p *Portal) base(w http.ResponseWriter, r *http.Request, c *customer.Customer, title, nav string) *portalView {
	v := &portalView{Title: title, Nav: nav, Form: map[string]string{}}
	if c != nil {
		v.User = p.user(*c)
		v.CSRFToken = p.h.csrfToken(w, r, customerScope(c.ID))
	} else {
		v.CSRFToken = p.h.csrfToken(w, r, anonScope())
	}
	v.Notice = notices[r.URL.Query().Get("ok")]
	return v
}

func (p *Portal) user(c customer.Customer) *userView {
	u := &userView{Login: c.Username, Name: c.NameMasked, IDMasked: c.IDMasked, PhoneMasked: c.PhoneMasked,
		Verified: c.Verified(), Factors: strings.Join(c.Factors.Names(), ", "), OnlinePayment: c.OnlinePayment,
		PayPasswordSet: c.PayPasswordSet}
	if c.Phone != "" {
		u.Login = customer.MaskPhone(c.Phone)
	}
	return u
}

// session returns the customer of the request's live session; otherwise
// it has answered (a redirect to the login page, or an error page).
func (p *Portal) session(w http.ResponseWriter, r *http.Request) (customer.Customer, bool) {
	id, err := p.sessions.lookup(r)
	switch {
	case err == nil && id == "":
		p.toLogin(w, r, p.sessions.HasCookie(r))
		return customer.Customer{}, false
	case paygate.HasCode(err, paygate.CodeNotFound):
		p.toLogin(w, r, true)
		return customer.Customer{}, false
	case err != nil: // the session may be fine: keep its cookie
		p.log.ErrorContext(r.Context(), "portal: reading the session", "error", err)
		p.errorPage(w, http.StatusServiceUnavailable, "Temporarily unavailable", "Please try again in a moment.")
		return customer.Customer{}, false
	}
	c, err := p.customers.Customer(r.Context(), id)
	switch {
	case paygate.HasCode(err, paygate.CodeNotFound):
		p.toLogin(w, r, true)
		return customer.Customer{}, false
	case err != nil:
		p.internal(w, r, "reading the customer", err)
		return customer.Customer{}, false
	case c.Status != customer.StatusActive:
		p.sessions.End(w, r)
		v := p.base(w, r, nil, "Log in", "")
		v.Error = "This customer account is " + strings.ToLower(string(c.Status)) + ". Please contact the bank."
		p.render(w, http.StatusForbidden, "portal_login", v)
		return customer.Customer{}, false
	}
	return c, true
}

// toLogin redirects to the login page: a GET comes back to its page after
// logging in; ended says the request had a session that is no longer live
// (its stale cookie is cleared).
func (p *Portal) toLogin(w http.ResponseWriter, r *http.Request, ended bool) {
	q := url.Values{}
	if ended {
		p.sessions.End(w, r)
		q.Set("expired", "1")
	}
	if r.Method == http.MethodGet {
		q.Set("next", r.URL.RequestURI())
	}
	target := "/portal/login"
	if len(q) > 0 {
		target += "?" + q.Encode()
	}
	secure(w, true)
	http.Redirect(w, r, target, http.StatusSeeOther)
}

// authed wraps a page that needs a logged-in customer.
func (p *Portal) authed(fn func(http.ResponseWriter, *http.Request, customer.Customer)) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if c, ok := p.session(w, r); ok {
			fn(w, r, c)
		}
	}
}

// authedPost wraps a POST that needs a logged-in customer and that
// customer's CSRF token: without a session it redirects to the login page,
// with a wrong or missing token it answers 403; either way fn never runs.
func (p *Portal) authedPost(fn func(http.ResponseWriter, *http.Request, customer.Customer)) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		c, ok := p.session(w, r)
		if !ok {
			return
		}
		if err := p.h.checkCSRF(r, customerScope(c.ID)); err != nil {
			p.forbidden(w, r)
			return
		}
		fn(w, r, c)
	}
}

// protect wraps every POST: cross-origin requests are refused (403), the
// body is limited to 64 KiB and parsed before next runs (413 or 400 with a
// message otherwise).
func (p *Portal) protect(next http.HandlerFunc) http.Handler {
	cop := http.NewCrossOriginProtection()
	cop.SetDenyHandler(http.HandlerFunc(p.forbidden))
	return cop.Handler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		r.Body = http.MaxBytesReader(w, r.Body, portalBodyMax)
		if err := r.ParseForm(); err != nil {
			var mbe *http.MaxBytesError
			if errors.As(err, &mbe) {
				p.errorPage(w, http.StatusRequestEntityTooLarge, "The form is too large", "Please go back and shorten what you entered.")
				return
			}
			p.errorPage(w, http.StatusBadRequest, "The form could not be read", "Please go back and try again.")
			return
		}
		next(w, r)
	}))
}

// forbidden answers a refused form.
func (p *Portal) forbidden(w http.ResponseWriter, r *http.Request) {
	p.errorPage(w, http.StatusForbidden, "This form has expired", "Nothing was changed. Please reload the page and try again.")
}

// field reads a form field: trimmed (unless raw), valid UTF-8 and at most
// max bytes; otherwise it records a message on v and returns ok false.
func field(v *portalView, r *http.Request, name, label string, max int, raw bool) (string, bool) {
	s := r.PostForm.Get(name)
	if !raw {
		s = strings.TrimSpace(s)
	}
	switch {
	case !utf8.ValidString(s) || strings.ContainsRune(s, 0):
		v.Error, v.Field = label+" contains characters that are not allowed.", name
		return "", false
	case len(s) > max:
		v.Error, v.Field = fmt.Sprintf("%s is too long: at most %d characters.", label, max), name
		return "", false
	case s == "":
		v.Error, v.Field = label+" is required.", name
		return "", false
	}
	return s, true
}

// statusOf maps a service error to an HTTP status.
func statusOf(err error) int {
	switch paygate.CodeOf(err) {
	case paygate.CodeInvalidArgument:
		return http.StatusBadRequest
	case paygate.CodeUnauthenticated:
		return http.StatusUnauthorized
	case paygate.CodeForbidden:
		return http.StatusForbidden
	case paygate.CodeNotFound:
		return http.StatusNotFound
	case paygate.CodeConflict:
		return http.StatusConflict
	case paygate.CodeUnavailable:
		return http.StatusServiceUnavailable
	}
	return http.StatusInternalServerError
}

// failed puts a service error on v for the customer: its safe message (a
// lock-out with the time it ends, in Asia/Shanghai), or a generic one for
// an internal error, which is logged. It returns the HTTP status.
func (p *Portal) failed(r *http.Request, v *portalView, err error) int {
	var pe *paygate.Error
	var le *customer.LockedError
	switch {
	case errors.As(err, &le):
		until := le.Until.In(p.loc)
		what := "your login is locked"
		if errors.As(err, &pe) && pe.Field == "pay_password" {
			what = "payments by payment password are locked"
		}
		v.Error = fmt.Sprintf("Too many wrong passwords: %s until %s (Beijing time), %s from now.", what,
			until.Format("2006-01-02 15:04"), roundUp(le.Until.Sub(p.clock.Now())))
		v.Field = ""
	case errors.As(err, &pe) && pe.Code != paygate.CodeInternal:
		v.Error, v.Field = sentence(pe.Message), pe.Field
	default:
		p.log.ErrorContext(r.Context(), "portal: a request failed", "path", r.URL.Path, "error", err)
		v.Error = "Something went wrong. Please try again in a moment."
	}
	return statusOf(err)
}

// roundUp renders a wait for people, rounded up to the minute.
func roundUp(d time.Duration) string {
	m := int((d + time.Minute - 1) / time.Minute)
	switch {
	case m <= 1:
		return "about a minute"
	case m < 120:
		return fmt.Sprintf("%d minutes", m)
	}
	return fmt.Sprintf("%d hours %d minutes", m/60, m%60)
}

// sentence capitalises a message and ends it with a full stop.
func sentence(s string) string {
	if s == "" {
		return s
	}
	r, n := utf8.DecodeRuneInString(s)
	s = strings.ToUpper(string(r)) + s[n:]
	if !strings.HasSuffix(s, ".") {
		s += "."
	}
	return s
}

// FormatYuan renders money for people: "¥1,234.56" for CNY (a minus sign
// in front when negative), "USD 1,234.56" for other currencies; integers
// only (FormatAmount).
func FormatYuan(m paygate.Money) string {
	sign, amt := "", m.Amount
	if amt < 0 {
		sign, amt = "-", -amt
	}
	s := FormatAmount(amt, m.Currency)
	if m.Currency == "CNY" {
		return sign + "¥" + s
	}
	return sign + string(m.Currency) + " " + s
}

func (p *Portal) localTime(t time.Time) string { return t.In(p.loc).Format("2006-01-02 15:04:05") }

// safeNext accepts a path on this site to return to after logging in: the
// portal's or a checkout's, nothing else.
func safeNext(s string) string {
	if len(s) > maxNextLen || strings.ContainsAny(s, "\\\x00\r\n") || strings.HasPrefix(s, "//") ||
		!(strings.HasPrefix(s, "/portal/") || strings.HasPrefix(s, "/checkout/")) {
		return ""
	}
	if u, err := url.Parse(s); err != nil || u.Scheme != "" || u.Host != "" {
		return ""
	}
	return s
}

// loginPage serves the login form (a logged-in customer goes to the
// overview).
func (p *Portal) loginPage(w http.ResponseWriter, r *http.Request) {
	if _, ok := p.sessions.Customer(r); ok {
		secure(w, true)
		http.Redirect(w, r, "/portal/", http.StatusSeeOther)
		return
	}
	v := p.base(w, r, nil, "Log in", "")
	v.Next = safeNext(r.URL.Query().Get("next"))
	if r.URL.Query().Get("expired") == "1" && v.Notice == "" {
		v.Notice = "Your session has ended. Please log in again."
	}
	p.render(w, http.StatusOK, "portal_login", v)
}

// login checks the login and password and starts a new session (any
// session the browser had is deleted first).
func (p *Portal) login(w http.ResponseWriter, r *http.Request) {
	v := p.base(w, r, nil, "Log in", "")
	if err := p.h.checkCSRF(r, anonScope()); err != nil {
		p.forbidden(w, r)
		return
	}
	v.Next = safeNext(r.PostForm.Get("next"))
	v.Form["login"] = r.PostForm.Get("login")
	login, ok := field(v, r, "login", "Phone or username", maxLoginLen, false)
	var pw string
	if ok {
		pw, ok = field(v, r, "password", "Password", maxPasswordLen, true)
	}
	if !ok {
		if len(v.Form["login"]) > maxLoginLen || !utf8.ValidString(v.Form["login"]) {
			v.Form["login"] = ""
		}
		p.render(w, http.StatusBadRequest, "portal_login", v)
		return
	}
	c, err := p.customers.Login(r.Context(), login, pw)
	if err != nil {
		p.render(w, p.failed(r, v, err), "portal_login", v)
		return
	}
	p.sessions.forget(r)
	if err := p.sessions.Start(r.Context(), w, c.ID); err != nil {
		p.internal(w, r, "starting a session", err)
		return
	}
	to := v.Next
	if to == "" {
		to = "/portal/"
	}
	secure(w, true)
	http.Redirect(w, r, to, http.StatusSeeOther)
}

// logout ends the session.
func (p *Portal) logout(w http.ResponseWriter, r *http.Request, c customer.Customer) {
	p.sessions.End(w, r)
	secure(w, true)
	http.Redirect(w, r, "/portal/login?ok=logged_out", http.StatusSeeOther)
}

// registerPage serves the registration form.
func (p *Portal) registerPage(w http.ResponseWriter, r *http.Request) {
	p.render(w, http.StatusOK, "portal_register", p.base(w, r, nil, "Open an account", ""))
}

// register creates a customer by phone or username and logs them in.
func (p *Portal) register(w http.ResponseWriter, r *http.Request) {
	v := p.base(w, r, nil, "Open an account", "")
	if err := p.h.checkCSRF(r, anonScope()); err != nil {
		p.forbidden(w, r)
		return
	}
	login, ok := field(v, r, "login", "Phone or username", maxLoginLen, false)
	if ok {
		v.Form["login"] = login
	}
	var pw, pw2 string
	if ok {
		pw, ok = field(v, r, "password", "Password", maxPasswordLen, true)
	}
	if ok {
		pw2, ok = field(v, r, "password2", "The repeated password", maxPasswordLen, true)
	}
	if ok && pw != pw2 {
		v.Error, v.Field, ok = "The two passwords differ. Please type them again.", "password2", false
	}
	if !ok {
		p.render(w, http.StatusBadRequest, "portal_register", v)
		return
	}
	req := customer.RegisterRequest{Username: login, Password: pw}
	if c := login[0]; c == '+' || c >= '0' && c <= '9' {
		req = customer.RegisterRequest{Phone: login, Password: pw}
	}
	c, err := p.customers.Register(r.Context(), req)
	if err != nil {
		status := p.failed(r, v, err)
		if v.Field == "phone" || v.Field == "username" {
			v.Field = "login"
		}
		p.render(w, status, "portal_register", v)
		return
	}
	p.sessions.forget(r)
	if err := p.sessions.Start(r.Context(), w, c.ID); err != nil {
		p.internal(w, r, "starting a session", err)
		return
	}
	secure(w, true)
	http.Redirect(w, r, "/portal/verify?ok=registered", http.StatusSeeOther)
}

// verifyPage serves the real-name verification form.
func (p *Portal) verifyPage(w http.ResponseWriter, r *http.Request, c customer.Customer) {
	p.render(w, http.StatusOK, "portal_verify", p.base(w, r, &c, "Verify your real name", "settings"))
}

// verify runs real-name verification.
func (p *Portal) verify(w http.ResponseWriter, r *http.Request, c customer.Customer) {
	v := p.base(w, r, &c, "Verify your real name", "settings")
	name, ok := field(v, r, "name", "Name", maxNameLen*4, false)
	if ok {
		v.Form["name"] = name
	}
	var idn, phone string
	if ok {
		idn, ok = field(v, r, "id_number", "ID number", maxIDLen, false)
	}
	if ok {
		phone, ok = field(v, r, "phone", "Phone", maxPhoneLen, false)
		if ok {
			v.Form["phone"] = phone
		}
	}
	if !ok {
		p.render(w, http.StatusBadRequest, "portal_verify", v)
		return
	}
	if _, err := p.customers.VerifyRealName(r.Context(), c.ID, name, idn, phone); err != nil {
		p.render(w, p.failed(r, v, err), "portal_verify", v)
		return
	}
	secure(w, true)
	http.Redirect(w, r, "/portal/?ok=verified", http.StatusSeeOther)
}

var kindLabels = map[customer.CardKind]string{
	customer.KindDebit: "Debit card", customer.KindCorporate: "Corporate card", customer.KindOtherBank: "Other bank's card",
}

// accounts lists the customer's cards for pages, with balances of own
// cards when withBalance.
func (p *Portal) accounts(ctx context.Context, c customer.Customer, withBalance bool) ([]accountView, error) {
	cards, err := p.customers.Cards(ctx, c.ID)
	if err != nil {
		return nil, err
	}
	out := make([]accountView, 0, len(cards))
	for _, cd := range cards {
		a := accountView{ID: cd.ID, Number: cd.Number.String(), Kind: kindLabels[cd.Kind], Bank: cd.Bank,
			Status: strings.ToLower(string(cd.Status)), Own: cd.Kind.OwnBank(), Active: cd.Status == customer.StatusActive}
		a.Label = a.Kind + " " + a.Number
		if a.Own {
			a.HistoryURL = "/portal/cards/" + url.PathEscape(cd.ID) + "/history"
			if withBalance {
				m, err := p.customers.CardBalance(ctx, c.ID, cd.ID)
				if err != nil {
					return nil, err
				}
				a.Balance = FormatYuan(m)
			}
		}
		out = append(out, a)
	}
	return out, nil
}

// overview serves the accounts and balances.
func (p *Portal) overview(w http.ResponseWriter, r *http.Request, c customer.Customer) {
	v := p.base(w, r, &c, "My accounts", "overview")
	bal, err := p.customers.Balance(r.Context(), c.ID)
	if err != nil {
		p.internal(w, r, "reading the balance", err)
		return
	}
	cards, err := p.accounts(r.Context(), c, true)
	if err != nil {
		p.internal(w, r, "reading the cards", err)
		return
	}
	v.Overview = &overviewView{Balance: FormatYuan(bal), Cards: cards}
	p.render(w, http.StatusOK, "portal_overview", v)
}

// historyFilter is a history request's validated query.
type historyFilter struct {
	cardID, from, to, direction, cursor string
	q                                   customer.HistoryQuery
}

// values returns the filter's query parameters (without the cursor).
func (f historyFilter) values() url.Values {
	q := url.Values{}
	for k, v := range map[string]string{"from": f.from, "to": f.to, "direction": f.direction} {
		if v != "" {
			q.Set(k, v)
		}
	}
	return q
}

// parseHistory validates the history query: from and to are YYYY-MM-DD
// dates in Asia/Shanghai (inclusive), direction "in" or "out".
func (p *Portal) parseHistory(r *http.Request, v *portalView) (historyFilter, bool) {
	qs := r.URL.Query()
	f := historyFilter{cardID: r.PathValue("id"), from: qs.Get("from"), to: qs.Get("to"),
		direction: qs.Get("direction"), cursor: qs.Get("cursor")}
	f.q = customer.HistoryQuery{CardID: f.cardID, Cursor: f.cursor, Limit: historyPage}
	bad := func(fieldName, msg string) (historyFilter, bool) {
		v.Error, v.Field = msg, fieldName
		f.from, f.to, f.direction, f.cursor = "", "", "", ""
		return f, false
	}
	date := func(s string) (time.Time, bool) {
		if len(s) != len(time.DateOnly) {
			return time.Time{}, false
		}
		t, err := time.ParseInLocation(time.DateOnly, s, p.loc)
		return t, err == nil && t.Year() >= 2000 && t.Year() <= 2999
	}
	if f.from != "" {
		t, ok := date(f.from)
		if !ok {
			return bad("from", "The start date must be a date like 2026-11-22.")
		}
		f.q.Since = t
	}
	if f.to != "" {
		t, ok := date(f.to)
		if !ok {
			return bad("to", "The end date must be a date like 2026-11-22.")
		}
		f.q.Until = t.AddDate(0, 0, 1)
	}
	if !f.q.Since.IsZero() && !f.q.Until.IsZero() && !f.q.Since.Before(f.q.Until) {
		return bad("from", "The start date must not be after the end date.")
	}
	switch f.direction {
	case "":
	case "in":
		f.q.Direction = customer.DirectionIn
	case "out":
		f.q.Direction = customer.DirectionOut
	default:
		return bad("direction", "Direction must be money in or money out.")
	}
	if len(f.cursor) > maxCursorLen {
		return bad("cursor", "This page link is broken. Start again from the newest page.")
	}
	return f, true
}

var entryKinds = map[customer.EntryKind]string{
	customer.EntryPayment: "Payment", customer.EntryRefund: "Refund", customer.EntryTopUp: "Top-up",
	customer.EntryTransfer: "Transfer", customer.EntryPayout: "Payout", customer.EntryOther: "Other",
}

// historyAccount names the account a history request is about: the
// balance account, or the customer's own card (another's: CodeNotFound).
func (p *Portal) historyAccount(ctx context.Context, c customer.Customer, cardID string) (label, base string, err error) {
	if cardID == "" {
		return "Account balance", "/portal/history", nil
	}
	if len(cardID) > maxRefLen {
		return "", "", paygate.E(paygate.CodeNotFound, "card not found")
	}
	cd, err := p.customers.Card(ctx, c.ID, cardID)
	if err != nil {
		return "", "", err
	}
	if !cd.Kind.OwnBank() {
		return "", "", paygate.E(paygate.CodeNotFound, "card not found")
	}
	return kindLabels[cd.Kind] + " " + cd.Number.String(), "/portal/cards/" + url.PathEscape(cd.ID) + "/history", nil
}

// history serves a page of an account's transaction history.
func (p *Portal) history(w http.ResponseWriter, r *http.Request, c customer.Customer) {
	v := p.base(w, r, &c, "Transaction history", "history")
	label, base, err := p.historyAccount(r.Context(), c, r.PathValue("id"))
	if err != nil {
		p.accountError(w, r, err)
		return
	}
	accts, err := p.accounts(r.Context(), c, false)
	if err != nil {
		p.internal(w, r, "reading the cards", err)
		return
	}
	hv := &historyView{Account: label, Action: base, Entries: []entryView{}}
	for _, a := range accts {
		if a.Own {
			hv.Accounts = append(hv.Accounts, a)
		}
	}
	v.History = hv
	f, ok := p.parseHistory(r, v)
	hv.From, hv.To, hv.Direction = f.from, f.to, f.direction
	if !ok {
		p.render(w, http.StatusBadRequest, "portal_history", v)
		return
	}
	page, err := p.customers.History(r.Context(), c.ID, f.q)
	if err != nil {
		p.render(w, p.failed(r, v, err), "portal_history", v)
		return
	}
	for _, e := range page.Entries {
		hv.Entries = append(hv.Entries, p.entry(e))
	}
	qv := f.values()
	hv.Filtered = len(qv) > 0
	hv.CSVURL = base + ".csv"
	if len(qv) > 0 {
		hv.CSVURL += "?" + qv.Encode()
	}
	if f.cursor != "" {
		hv.FirstURL = base
		if len(qv) > 0 {
			hv.FirstURL += "?" + qv.Encode()
		}
	}
	if page.NextCursor != "" {
		qv.Set("cursor", page.NextCursor)
		hv.NextURL = base + "?" + qv.Encode()
	}
	p.render(w, http.StatusOK, "portal_history", v)
}

func (p *Portal) entry(e customer.HistoryEntry) entryView {
	ev := entryView{Time: p.localTime(e.Time), TimeISO: e.Time.UTC().Format(time.RFC3339), Date: string(e.AccountingDate),
		Kind: entryKinds[e.Kind], Ref: e.Ref, Pending: e.Pending}
	if e.Kind == customer.EntryTransfer && strings.HasPrefix(e.Ref, transfer.PrefixTransfer) {
		// Both parties may open it (transfer.Get): who sent or received it.
		ev.RefURL = "/portal/transfers/" + url.PathEscape(e.Ref)
	}
	if e.Direction == customer.DirectionOut {
		ev.Direction, ev.Amount = "out", "-"+FormatYuan(e.Amount)
	} else {
		ev.Direction, ev.Amount = "in", "+"+FormatYuan(e.Amount)
	}
	return ev
}

// accountError answers a card that is not the customer's (404) or a
// failure.
func (p *Portal) accountError(w http.ResponseWriter, r *http.Request, err error) {
	if paygate.HasCode(err, paygate.CodeNotFound) {
		p.errorPage(w, http.StatusNotFound, "Card not found", "We could not find this card among yours.")
		return
	}
	p.internal(w, r, "reading a card", err)
}

// historyCSV downloads the history with the page's filters, every page
// (up to csvMaxRows rows), newest first. Amounts are decimal yuan from
// integer fen; no card number appears beyond its mask.
func (p *Portal) historyCSV(w http.ResponseWriter, r *http.Request, c customer.Customer) {
	label, _, err := p.historyAccount(r.Context(), c, r.PathValue("id"))
	if err != nil {
		p.accountError(w, r, err)
		return
	}
	v := p.base(w, r, &c, "Transaction history", "history")
	f, ok := p.parseHistory(r, v)
	if !ok {
		p.errorPage(w, http.StatusBadRequest, "The download could not be made", v.Error)
		return
	}
	f.q.Limit, f.q.Cursor = customer.MaxHistoryLimit, ""
	var rows []customer.HistoryEntry
	for {
		page, err := p.customers.History(r.Context(), c.ID, f.q)
		if err != nil {
			if st := statusOf(err); st < 500 {
				p.failed(r, v, err)
				p.errorPage(w, st, "The download could not be made", v.Error)
				return
			}
			p.internal(w, r, "reading the history", err)
			return
		}
		rows = append(rows, page.Entries...)
		if page.NextCursor == "" || len(rows) >= csvMaxRows {
			break
		}
		f.q.Cursor = page.NextCursor
	}
	if len(rows) > csvMaxRows {
		rows = rows[:csvMaxRows]
	}
	secure(w, true)
	name := "paygate-history-" + p.clock.Now().In(p.loc).Format("20060102") + ".csv"
	w.Header().Set("Content-Type", "text/csv; charset=utf-8")
	w.Header().Set("Content-Disposition", `attachment; filename="`+name+`"`)
	cw := csv.NewWriter(w)
	cw.Write([]string{"time", "accounting_date", "account", "type", "direction", "amount", "currency", "status", "reference", "transfer_id"})
	for _, e := range rows {
		amount := paygate.FormatMinor(e.Amount.Amount, e.Amount.Currency.Exponent())
		if e.Direction == customer.DirectionOut {
			amount = "-" + amount
		}
		status := "posted"
		if e.Pending {
			status = "pending"
		}
		cw.Write([]string{p.localTime(e.Time), string(e.AccountingDate), csvText(label), entryKinds[e.Kind],
			strings.ToLower(string(e.Direction)), amount, string(e.Amount.Currency), status, csvText(e.Ref), csvText(e.TransferID)})
	}
	cw.Flush()
	if err := cw.Error(); err != nil {
		p.log.WarnContext(r.Context(), "portal: writing the CSV", "error", err)
	}
}

// csvText keeps a text cell from being read as a formula by spreadsheets.
func csvText(s string) string {
	if s != "" && strings.ContainsRune("=+-@\t\r", rune(s[0])) {
		return "'" + s
	}
	return s
}

// cards serves the cards and agreements.
func (p *Portal) cards(w http.ResponseWriter, r *http.Request, c customer.Customer) {
	v := p.base(w, r, &c, "Cards and agreements", "cards")
	accts, err := p.accounts(r.Context(), c, false)
	if err != nil {
		p.internal(w, r, "reading the cards", err)
		return
	}
	ags, err := p.customers.Agreements(r.Context(), c.ID)
	if err != nil {
		p.internal(w, r, "reading the agreements", err)
		return
	}
	byID := map[string]int{}
	for i, a := range accts {
		byID[a.ID] = i
	}
	cv := &cardsView{Cards: accts}
	for i := len(ags) - 1; i >= 0; i-- { // newest first
		a := ags[i]
		av := agreementView{ID: a.ID, Status: strings.ToLower(string(a.Status)), Since: p.localTime(a.CreatedAt),
			Active: a.Status == customer.AgreementActive}
		if !a.RevokedAt.IsZero() {
			av.Revoked = p.localTime(a.RevokedAt)
		}
		if j, ok := byID[a.CardID]; ok {
			av.Card = accts[j].Label
			if av.Active {
				cv.Cards[j].Bound = true
			}
		}
		cv.Agreements = append(cv.Agreements, av)
	}
	if cv.Mandates, err = p.mandateViews(r.Context(), c.ID); err != nil {
		p.internal(w, r, "reading the merchant agreements", err)
		return
	}
	v.Cards = cv
	p.render(w, http.StatusOK, "portal_cards", v)
}

// revoke revokes one of the customer's agreements (unbinds its card).
func (p *Portal) revoke(w http.ResponseWriter, r *http.Request, c customer.Customer) {
	id := r.PathValue("id")
	if len(id) > maxRefLen {
		p.errorPage(w, http.StatusNotFound, "Agreement not found", "We could not find this agreement among yours.")
		return
	}
	if _, err := p.customers.Unbind(r.Context(), c.ID, id); err != nil {
		if paygate.HasCode(err, paygate.CodeNotFound) {
			p.errorPage(w, http.StatusNotFound, "Agreement not found", "We could not find this agreement among yours.")
			return
		}
		p.internal(w, r, "revoking an agreement", err)
		return
	}
	secure(w, true)
	http.Redirect(w, r, "/portal/cards?ok=unbound", http.StatusSeeOther)
}

// settingsPage serves online payment and the password forms.
func (p *Portal) settingsPage(w http.ResponseWriter, r *http.Request, c customer.Customer) {
	p.render(w, http.StatusOK, "portal_settings", p.base(w, r, &c, "Security settings", "settings"))
}

// settingsFailed re-renders the settings with the error of the form.
func (p *Portal) settingsFailed(w http.ResponseWriter, r *http.Request, c customer.Customer, v *portalView, status int) {
	if cc, err := p.customers.Customer(r.Context(), c.ID); err == nil {
		v.User = p.user(cc) // a failed attempt may have changed it
	}
	p.render(w, status, "portal_settings", v)
}

// onlinePayment turns online payment on or off.
func (p *Portal) onlinePayment(w http.ResponseWriter, r *http.Request, c customer.Customer) {
	v := p.base(w, r, &c, "Security settings", "settings")
	var on bool
	switch r.PostForm.Get("online_payment") {
	case "on":
		on = true
	case "off":
	default:
		v.Error, v.Field = "Choose whether online payment is on or off.", "online_payment"
		p.settingsFailed(w, r, c, v, http.StatusBadRequest)
		return
	}
	if _, err := p.customers.SetOnlinePayment(r.Context(), c.ID, on); err != nil {
		p.settingsFailed(w, r, c, v, p.failed(r, v, err))
		return
	}
	ok := "online_off"
	if on {
		ok = "online_on"
	}
	secure(w, true)
	http.Redirect(w, r, "/portal/settings?ok="+ok, http.StatusSeeOther)
}

// changePassword changes the login password after checking the old one;
// every session of the customer ends, and this browser gets a new one.
func (p *Portal) changePassword(w http.ResponseWriter, r *http.Request, c customer.Customer) {
	v := p.base(w, r, &c, "Security settings", "settings")
	old, ok := field(v, r, "old_password", "The current password", maxPasswordLen, true)
	var nw, nw2 string
	if ok {
		nw, ok = field(v, r, "new_password", "The new password", maxPasswordLen, true)
	}
	if ok {
		nw2, ok = field(v, r, "new_password2", "The repeated new password", maxPasswordLen, true)
	}
	if ok && nw != nw2 {
		v.Error, v.Field, ok = "The two new passwords differ. Please type them again.", "new_password2", false
	}
	if !ok {
		p.settingsFailed(w, r, c, v, http.StatusBadRequest)
		return
	}
	if err := p.customers.ChangePassword(r.Context(), c.ID, old, nw); err != nil {
		status := p.failed(r, v, err)
		if v.Field == "password" {
			v.Field = "old_password"
		}
		p.settingsFailed(w, r, c, v, status)
		return
	}
	if err := p.sessions.EndAll(r.Context(), c.ID); err != nil {
		p.internal(w, r, "ending sessions", err)
		return
	}
	if err := p.sessions.Start(r.Context(), w, c.ID); err != nil {
		p.internal(w, r, "starting a session", err)
		return
	}
	secure(w, true)
	http.Redirect(w, r, "/portal/settings?ok=password", http.StatusSeeOther)
}

// payPassword sets or changes the 6-digit payment password, confirmed
// with the login password.
func (p *Portal) payPassword(w http.ResponseWriter, r *http.Request, c customer.Customer) {
	v := p.base(w, r, &c, "Security settings", "settings")
	login, ok := field(v, r, "login_password", "The login password", maxPasswordLen, true)
	var pin, pin2 string
	if ok {
		pin, ok = field(v, r, "pay_password", "The payment password", maxPINLen, true)
	}
	if ok {
		pin2, ok = field(v, r, "pay_password2", "The repeated payment password", maxPINLen, true)
	}
	if ok && pin != pin2 {
		v.Error, v.Field, ok = "The two payment passwords differ. Please type them again.", "pay_password2", false
	}
	if !ok {
		p.settingsFailed(w, r, c, v, http.StatusBadRequest)
		return
	}
	if _, err := p.customers.SetPayPassword(r.Context(), c.ID, login, pin); err != nil {
		status := p.failed(r, v, err)
		if v.Field == "password" {
			v.Field = "login_password"
		}
		p.settingsFailed(w, r, c, v, status)
		return
	}
	secure(w, true)
	http.Redirect(w, r, "/portal/settings?ok=pay_password", http.StatusSeeOther)
}

// Routes registers several route sets on one mux: httpapi.Config.Pages
// takes one, and paygate mounts the checkout and the portal together
// (web.Routes{checkout, portal}).
type Routes []interface{ Register(mux *http.ServeMux) }

// Register registers every route set, in order.
func (rs Routes) Register(mux *http.ServeMux) {
	for _, r := range rs {
		r.Register(mux)
	}
}
