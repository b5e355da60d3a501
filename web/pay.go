package web

// The checkout's payment forms. Every form is a plain HTML POST (CSRF
// protected, see csrf.go) that works without JavaScript:
//
//   - POST /checkout/{id}/quick-pay: card number, holder name, ID number and
//     phone → the page again, with the one-time code form;
//   - POST /checkout/{id}/quick-pay/bound: phone + a bound card's last four
//     digits → the code form;
//   - POST /checkout/{id}/quick-pay/confirm: card_id + code (+ bind) → pays;
//   - POST /checkout/{id}/card-pay: card number + payment password → pays;
//   - POST /checkout/{id}/online-banking → 303 to the bank's pages;
//   - POST /checkout/{id}/login, /logout: the customer session balance pay
//     needs; POST /checkout/{id}/balance: payment password → pays.
//
// A payment that succeeded answers 303 See Other to the checkout page
// (post/redirect/get: a reload never submits again), which then shows the
// order paid; a refusal renders the page again with the method open and a
// message, and never echoes a card number, ID number, password or code.

import (
	"context"
	"errors"
	"mime"
	"net/http"
	"strings"
	"time"
	"unicode/utf8"

	"paygate"
	"paygate/checkout"
	"paygate/customer"
)

// Checkout takes the payments of the page's forms; *checkout.Service
// implements it.
type Checkout interface {
	StartQuickPay(ctx context.Context, orderID string, c checkout.QuickPayCard) (checkout.Challenge, error)
	StartBoundQuickPay(ctx context.Context, orderID, phone, last4 string) (checkout.Challenge, error)
	ConfirmQuickPay(ctx context.Context, orderID, cardID, code string, bind bool) (checkout.Result, error)
	CardPay(ctx context.Context, orderID, number, payPassword string) (checkout.Result, error)
	BalancePay(ctx context.Context, orderID, customerID, payPassword string) (checkout.Result, error)
	OnlineBanking(ctx context.Context, orderID string) (checkout.Result, error)
}

// CheckoutCustomers is what the page needs of customers for balance pay;
// *customer.Service implements it.
type CheckoutCustomers interface {
	Login(ctx context.Context, login, password string) (customer.Customer, error)
	Customer(ctx context.Context, id string) (customer.Customer, error)
	Balance(ctx context.Context, id string) (paygate.Money, error)
}

// maxField bounds every form field (bytes); real values are far shorter.
const maxField = 128

// shanghai is where the checkout's customers are: times are shown in
// Beijing time.
var shanghai = func() *time.Location {
	l, err := time.LoadLocation("Asia/Shanghai")
	if err != nil {
		return time.FixedZone("CST", 8*3600)
	}
	return l
}()

// maxBody bounds a form's body (bytes).
const maxBody = 64 << 10

// registerPay adds the payment forms' routes.
func (h *Handler) registerPay(mux *http.ServeMux) {
	route := func(path, method string, fn http.HandlerFunc) {
		mux.Handle("POST /checkout/{id}/"+path, h.readForm(method, h.protect(fn)))
	}
	route("quick-pay", methodQuickPay, h.quickPayStart)
	route("quick-pay/bound", methodQuickPay, h.quickPayBound)
	route("quick-pay/confirm", methodQuickPay, h.quickPayConfirm)
	route("card-pay", methodCardPay, h.cardPay)
	route("online-banking", methodOnlineBanking, h.onlineBanking)
	route("login", methodBalance, h.login)
	route("logout", methodBalance, h.logout)
	route("balance", methodBalance, h.balancePay)
}

// readForm reads a POST's form before protect checks its CSRF token (which
// travels in the form), so that a body over maxBody (413), a body that is
// not a URL-encoded form (415) and a malformed one (400) get the page
// again with a message saying so, rather than a token error or, worse, a
// handler run with empty fields. Cross-origin requests are refused first,
// unread.
func (h *Handler) readForm(method string, next http.Handler) http.Handler {
	cop := http.NewCrossOriginProtection()
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if err := cop.Check(r); err != nil {
			h.forbidden(w, r)
			return
		}
		r.Body = http.MaxBytesReader(w, r.Body, maxBody)
		unreadable := "The form could not be read. Please reload the page and try again."
		if ct, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type")); ct != "application/x-www-form-urlencoded" {
			h.showMessage(w, r, method, http.StatusUnsupportedMediaType, unreadable, nil)
			return
		}
		if err := r.ParseForm(); err != nil {
			if _, ok := errors.AsType[*http.MaxBytesError](err); ok {
				h.showMessage(w, r, method, http.StatusRequestEntityTooLarge,
					"The form is too large. Please shorten what you entered and try again.", nil)
				return
			}
			h.showMessage(w, r, method, http.StatusBadRequest, unreadable, nil)
			return
		}
		next.ServeHTTP(w, r)
	})
}

// fieldNames name the forms' fields in messages.
var fieldNames = map[string]string{"card_number": "the card number", "name": "the card holder's name",
	"id_number": "the ID number", "phone": "the phone number", "last4": "the last four digits", "card_id": "the card",
	"code": "the SMS code", "pay_password": "the payment password", "login": "the phone or username", "password": "the password"}

// form reads the named fields of the POST readForm parsed, trimmed; ok is
// false (and the page answered) when a field is too long or not UTF-8.
func (h *Handler) form(w http.ResponseWriter, r *http.Request, method string, names ...string) (map[string]string, bool) {
	out := make(map[string]string, len(names))
	for _, n := range names {
		v := strings.TrimSpace(r.PostForm.Get(n))
		name := fieldNames[n]
		if name == "" {
			name = "a field"
		}
		switch {
		case !utf8.ValidString(v) || strings.ContainsRune(v, 0):
			h.payFailed(w, r, method, paygate.EField(paygate.CodeInvalidArgument, n, "%s contains characters that are not allowed", name), nil)
			return nil, false
		case len(v) > maxField:
			h.payFailed(w, r, method, paygate.EField(paygate.CodeInvalidArgument, n, "%s is too long", name), nil)
			return nil, false
		}
		out[n] = v
	}
	return out, true
}

func (h *Handler) quickPayStart(w http.ResponseWriter, r *http.Request) {
	f, ok := h.form(w, r, methodQuickPay, "card_number", "name", "id_number", "phone")
	if !ok {
		return
	}
	ch, err := h.cfg.Checkout.StartQuickPay(r.Context(), r.PathValue("id"), checkout.QuickPayCard{
		Number: digitsOnly(f["card_number"]), Name: f["name"], IDNumber: f["id_number"], Phone: f["phone"]})
	if err != nil {
		h.payFailed(w, r, methodQuickPay, err, nil)
		return
	}
	h.showChallenge(w, r, ch)
}

func (h *Handler) quickPayBound(w http.ResponseWriter, r *http.Request) {
	f, ok := h.form(w, r, methodQuickPay, "phone", "last4")
	if !ok {
		return
	}
	ch, err := h.cfg.Checkout.StartBoundQuickPay(r.Context(), r.PathValue("id"), f["phone"], f["last4"])
	if err != nil {
		h.payFailed(w, r, methodQuickPay, err, nil)
		return
	}
	h.showChallenge(w, r, ch)
}

// showChallenge renders the page with the one-time code form.
func (h *Handler) showChallenge(w http.ResponseWriter, r *http.Request, ch checkout.Challenge) {
	o, ok := h.order(w, r)
	if !ok {
		return
	}
	v := h.pageView(w, r, o)
	v.Active = methodQuickPay
	v.Challenge = &challengeView{CardID: ch.CardID, Card: ch.Card.String(), Bank: ch.Bank, Phone: ch.PhoneMasked,
		Expires: ch.ExpiresAt.In(shanghai).Format("15:04"), Bound: ch.Bound}
	h.render(w, http.StatusOK, "checkout", v)
}

func (h *Handler) quickPayConfirm(w http.ResponseWriter, r *http.Request) {
	f, ok := h.form(w, r, methodQuickPay, "card_id", "code", "bind")
	if !ok {
		return
	}
	res, err := h.cfg.Checkout.ConfirmQuickPay(r.Context(), r.PathValue("id"), f["card_id"], f["code"], f["bind"] != "")
	if err != nil {
		// Wrong or expired codes leave the code form up (a new code can be
		// asked for from the card form).
		var ch *challengeView
		if f["card_id"] != "" && paygate.HasCode(err, paygate.CodeUnauthenticated) {
			ch = &challengeView{CardID: f["card_id"], Retry: true}
		}
		h.payFailed(w, r, methodQuickPay, err, ch)
		return
	}
	h.paid(w, r, res)
}

func (h *Handler) cardPay(w http.ResponseWriter, r *http.Request) {
	f, ok := h.form(w, r, methodCardPay, "card_number", "pay_password")
	if !ok {
		return
	}
	res, err := h.cfg.Checkout.CardPay(r.Context(), r.PathValue("id"), digitsOnly(f["card_number"]), f["pay_password"])
	if err != nil {
		h.payFailed(w, r, methodCardPay, err, nil)
		return
	}
	h.paid(w, r, res)
}

func (h *Handler) onlineBanking(w http.ResponseWriter, r *http.Request) {
	res, err := h.cfg.Checkout.OnlineBanking(r.Context(), r.PathValue("id"))
	if err != nil {
		h.payFailed(w, r, methodOnlineBanking, err, nil)
		return
	}
	http.Redirect(w, r, res.RedirectURL, http.StatusSeeOther)
}

func (h *Handler) login(w http.ResponseWriter, r *http.Request) {
	f, ok := h.form(w, r, methodBalance, "login", "password")
	if !ok {
		return
	}
	c, err := h.cfg.Customers.Login(r.Context(), f["login"], f["password"])
	if err == nil {
		h.cfg.Sessions.forget(r) // the browser's previous session, if any, ends here
		err = h.cfg.Sessions.Start(r.Context(), w, c.ID)
	}
	if err != nil {
		h.payFailed(w, r, methodBalance, err, nil)
		return
	}
	http.Redirect(w, r, "/checkout/"+r.PathValue("id")+"?method="+methodBalance+"#method-"+methodBalance, http.StatusSeeOther)
}

func (h *Handler) logout(w http.ResponseWriter, r *http.Request) {
	h.cfg.Sessions.End(w, r)
	http.Redirect(w, r, "/checkout/"+r.PathValue("id"), http.StatusSeeOther)
}

func (h *Handler) balancePay(w http.ResponseWriter, r *http.Request) {
	f, ok := h.form(w, r, methodBalance, "pay_password")
	if !ok {
		return
	}
	id, ok := h.cfg.Sessions.Customer(r)
	if !ok {
		h.payFailed(w, r, methodBalance, paygate.E(paygate.CodeUnauthenticated, "your session has ended; please log in again"), nil)
		return
	}
	res, err := h.cfg.Checkout.BalancePay(r.Context(), r.PathValue("id"), id, f["pay_password"])
	if err != nil {
		h.payFailed(w, r, methodBalance, err, nil)
		return
	}
	h.paid(w, r, res)
}

// paid sends the payer back to the checkout page, which shows the order
// paid (or the other bank's payment in progress).
func (h *Handler) paid(w http.ResponseWriter, r *http.Request, res checkout.Result) {
	target := "/checkout/" + r.PathValue("id")
	if res.Outcome == checkout.Declined {
		target += "?declined=1"
	}
	http.Redirect(w, r, target, http.StatusSeeOther)
}

// payFailed renders the page again with the method open and the refusal's
// message.
func (h *Handler) payFailed(w http.ResponseWriter, r *http.Request, method string, err error, ch *challengeView) {
	msg, status := h.payMessage(r.Context(), err)
	h.showMessage(w, r, method, status, msg, ch)
}

// showMessage renders the page again with the method open, its message
// and status.
func (h *Handler) showMessage(w http.ResponseWriter, r *http.Request, method string, status int, msg string, ch *challengeView) {
	o, ok := h.order(w, r)
	if !ok {
		return
	}
	v := h.pageView(w, r, o)
	v.Active, v.Message, v.Challenge = method, msg, ch
	h.render(w, status, "checkout", v)
}

// payMessage turns a refusal into what the payer reads and the page's
// status. Error messages of the checkout, customer and otp packages are
// written for payers; internal and ledger errors are replaced.
func (h *Handler) payMessage(ctx context.Context, err error) (string, int) {
	var le *customer.LimitError
	var lock *customer.LockedError
	switch code := paygate.CodeOf(err); {
	case errors.As(err, &lock):
		return "Too many wrong passwords: this is locked until " + lock.Until.In(shanghai).Format("15:04 on 2 Jan") +
			" (Beijing time).", http.StatusForbidden
	case errors.As(err, &le):
		return "This payment is over " + limitText(le.Limit) + " of ¥" + FormatAmount(le.Max, "CNY") + ".", http.StatusUnprocessableEntity
	case code == paygate.CodeInsufficientFunds:
		return "Insufficient funds. Please choose another card or payment method.", http.StatusUnprocessableEntity
	case code == paygate.CodeAccountNotFound || code == paygate.CodeAccountClosed:
		return "This card or account cannot pay. Please choose another one.", http.StatusUnprocessableEntity
	case code == paygate.CodeConflict:
		return userMessage(err), http.StatusConflict
	case code == paygate.CodeForbidden:
		return userMessage(err), http.StatusForbidden
	case code == paygate.CodeUnavailable:
		return "This payment method is not available right now. Please try another one.", http.StatusServiceUnavailable
	case code == paygate.CodeInvalidArgument || code == paygate.CodeNotFound || code == paygate.CodeUnauthenticated ||
		code == paygate.CodeLimitExceeded || code == paygate.CodeCurrencyMismatch:
		return userMessage(err), http.StatusUnprocessableEntity
	default: // internal, and codes only the ledger or the store give (ID_CONFLICT, ALREADY_RESOLVED, ...)
		if errors.Is(err, context.Canceled) && ctx.Err() != nil {
			// The payer left (closed the tab, navigated away): not a fault.
			// The transaction rolled back or committed whole; the page
			// shows which when they come back.
			h.log.InfoContext(ctx, "checkout: payer left before the answer", "code", code)
			return "Something went wrong. Please try again.", http.StatusInternalServerError
		}
		h.log.ErrorContext(ctx, "checkout: payment failed", "code", code, "error", err)
		return "Something went wrong. Please try again.", http.StatusInternalServerError
	}
}

// userMessage is a paygate error's message with its first letter upper
// case and a full stop.
func userMessage(err error) string {
	var pe *paygate.Error
	if !errors.As(err, &pe) || pe.Message == "" {
		return "The payment could not be made."
	}
	m := strings.ToUpper(pe.Message[:1]) + pe.Message[1:]
	if !strings.HasSuffix(m, ".") {
		m += "."
	}
	return m
}

func limitText(l customer.Limit) string {
	switch l {
	case customer.LimitCustomerDaily:
		return "your daily payment limit"
	case customer.LimitMethodSingle:
		return "this payment method's limit per payment"
	case customer.LimitMethodDaily:
		return "this payment method's daily limit"
	case customer.LimitCardSingle:
		return "this card's limit per payment"
	case customer.LimitCardDaily:
		return "this card's daily limit"
	}
	return "a payment limit"
}

// digitsOnly drops the spaces and dashes people type in card numbers.
func digitsOnly(s string) string {
	return strings.Map(func(r rune) rune {
		if r == ' ' || r == '-' {
			return -1
		}
		return r
	}, s)
}
