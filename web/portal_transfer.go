package web

// The customer portal's transfer pages: a transfer form (to a customer by
// mobile phone, or to a card), its result, and the list of transfers sent
// and received. See docs/TRANSFERS.md.

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"net/http"
	"net/url"
	"strings"
	"time"
	"unicode/utf8"

	"paygate"
	"paygate/customer"
	"paygate/transfer"
)

// PortalTransfers is what the portal's transfer pages use of transfers;
// *transfer.Service implements it. Errors are the service's (paygate codes
// with messages safe to show); another customer's transfer is
// CodeNotFound.
type PortalTransfers interface {
	Send(ctx context.Context, customerID string, req transfer.Request) (transfer.Transfer, error)
	Get(ctx context.Context, customerID, id string) (transfer.Transfer, error)
	List(ctx context.Context, customerID, cursor string, limit int) (transfer.Page, error)
}

var _ PortalTransfers = (*transfer.Service)(nil)

// TransferPages serves the portal's transfer pages, on the portal's
// sessions, CSRF tokens, headers and layout:
//
//	GET  /portal/transfer        the form (a fresh request id with each page)
//	POST /portal/transfer        send; 303 to the transfer's page, or the form again with the refusal
//	GET  /portal/transfers       transfers sent and received, newest first, cursor-paginated
//	GET  /portal/transfers/{id}  one transfer (the payer's or the recipient's; 404 otherwise)
//
// Every page needs a live session; the POST also the customer's CSRF
// token (403 otherwise, nothing sent). No page ever shows a card number
// beyond its mask or a payment password. It is safe for concurrent use.
type TransferPages struct {
	p *Portal
	t PortalTransfers
}

// Transfers returns the portal's transfer pages over t, to be mounted next
// to the portal (web.Routes{..., portal, portal.Transfers(t)}).
func (p *Portal) Transfers(t PortalTransfers) *TransferPages { return &TransferPages{p: p, t: t} }

// Register adds the transfer pages' routes to mux.
func (tp *TransferPages) Register(mux *http.ServeMux) {
	p := tp.p
	mux.HandleFunc("GET /portal/transfer", p.authed(tp.form))
	mux.Handle("POST /portal/transfer", p.protect(p.authedPost(tp.send)))
	mux.HandleFunc("GET /portal/transfers", p.authed(tp.list))
	mux.HandleFunc("GET /portal/transfers/{id}", p.authed(tp.detail))
}

// Transfer form limits, in bytes (the memo in characters, checked by the
// service too).
const (
	maxToLen        = 32
	maxAmountLen    = 24
	maxMemoBytes    = transfer.MaxMemoLen * 4
	transferPerPage = 20
)

// transferView is the data of the transfer pages: the portal's, plus the
// transfer page's own.
type transferView struct {
	*portalView
	Transfer *transferPageView
}

type transferPageView struct {
	// The form.
	Form      bool
	RequestID string
	ToMasked  string // a card number typed, masked (never echoed whole)
	Balance   string
	Limits    string
	// One transfer.
	Detail *transferItem
	Sent   bool // the detail page right after sending
	// The list.
	Items             []transferItem
	NextURL, FirstURL string
}

// transferItem is one transfer as a page shows it to one of its parties.
type transferItem struct {
	ID, URL, Time, TimeISO, Date, Finished string
	Direction                              string // "in" or "out"
	Title                                  string // "Transfer to *四 137****1111"
	Kind                                   string
	Counterparty                           string
	Amount                                 string // "+¥12.34", "-¥12.34"
	Status, StatusText                     string
	Memo, FailCode, ChannelNo              string
	Processing, Failed                     bool
}

var transferKinds = map[transfer.Kind]string{
	transfer.KindCustomer:  "To a customer's account",
	transfer.KindOwnCard:   "To a card of this bank",
	transfer.KindOtherBank: "To another bank's card",
}

var transferStatuses = map[transfer.Status]string{
	transfer.StatusSuccess:    "Succeeded",
	transfer.StatusProcessing: "Processing: the other bank has not answered yet",
	transfer.StatusFailed:     "Failed: the money is back on your balance",
}

func (tp *TransferPages) view(w http.ResponseWriter, r *http.Request, c customer.Customer, title string) *transferView {
	return &transferView{portalView: tp.p.base(w, r, &c, title, "transfer"), Transfer: &transferPageView{}}
}

func (tp *TransferPages) render(w http.ResponseWriter, status int, v *transferView) {
	tp.p.h.render(w, status, "portal_transfer", v)
}

// newRequestID returns a random request id for a form.
func newRequestID() string {
	b := make([]byte, 16)
	rand.Read(b)
	return "ptr_" + hex.EncodeToString(b)
}

// form serves the transfer form.
func (tp *TransferPages) form(w http.ResponseWriter, r *http.Request, c customer.Customer) {
	v := tp.view(w, r, c, "Transfer")
	if !tp.fillForm(w, r, c, v) {
		return
	}
	v.Transfer.RequestID = newRequestID()
	tp.render(w, http.StatusOK, v)
}

// fillForm puts the balance and the limits on the form; false when it has
// answered an internal error.
func (tp *TransferPages) fillForm(w http.ResponseWriter, r *http.Request, c customer.Customer, v *transferView) bool {
	bal, err := tp.p.customers.Balance(r.Context(), c.ID)
	if err != nil {
		tp.p.internal(w, r, "reading the balance", err)
		return false
	}
	v.Transfer.Form, v.Transfer.Balance = true, FormatYuan(bal)
	if l, ok := tp.p.customers.(interface{ Limits() customer.Limits }); ok {
		lim := l.Limits()
		daily := lim.CustomerDaily(c.Factors)
		text := "Up to " + FormatYuan(paygate.Money{Amount: daily, Currency: lim.Currency}) + " a day in all your payments and transfers"
		if m := lim.Methods[customer.MethodTransfer]; m.Single > 0 && m.Single < daily {
			text += ", " + FormatYuan(paygate.Money{Amount: m.Single, Currency: lim.Currency}) + " a transfer"
		}
		v.Transfer.Limits = text + "."
	}
	return true
}

// optField reads an optional form field: trimmed, valid UTF-8, at most max
// bytes; otherwise it records a message on v and returns ok false.
func optField(v *portalView, r *http.Request, name, label string, max int) (string, bool) {
	s := strings.TrimSpace(r.PostForm.Get(name))
	switch {
	case !utf8.ValidString(s) || strings.ContainsRune(s, 0):
		v.Error, v.Field = label+" contains characters that are not allowed.", name
		return "", false
	case len(s) > max:
		v.Error, v.Field = label+" is too long.", name
		return "", false
	}
	return s, true
}

// ParseYuan reads an amount of yuan as people type it ("1,234.5",
// "¥12.30", "0.01") into fen, with integers only: at most two decimals and
// 13 digits before the point. It returns a message for the payer when it
// cannot.
func ParseYuan(s string) (int64, string) {
	s = strings.TrimSpace(s)
	s = strings.TrimPrefix(strings.TrimPrefix(s, "¥"), "￥")
	s = strings.ReplaceAll(strings.TrimSpace(s), ",", "")
	if s == "" {
		return 0, "Enter the amount."
	}
	if strings.HasPrefix(s, "-") {
		return 0, "The amount must be more than zero."
	}
	whole, frac, dot := strings.Cut(s, ".")
	digits := func(d string) bool { return strings.Trim(d, "0123456789") == "" }
	switch {
	case !digits(whole) || !digits(frac) || (whole == "" && frac == "") || (dot && frac == ""):
		return 0, "The amount must be a number of yuan, like 12.50."
	case len(frac) > 2:
		return 0, "The amount has at most two decimals (fen)."
	case len(whole) > 13:
		return 0, "The amount is too large."
	}
	var fen int64
	for _, d := range whole + (frac + "00")[:2] {
		fen = fen*10 + int64(d-'0')
	}
	if fen == 0 {
		return 0, "The amount must be more than zero."
	}
	return fen, ""
}

// send makes the transfer: 303 to its page, or the form again with what
// was refused (the phone, amount and memo kept; a card number only
// masked; never the payment password).
func (tp *TransferPages) send(w http.ResponseWriter, r *http.Request, c customer.Customer) {
	v := tp.view(w, r, c, "Transfer")
	tv := v.Transfer
	tv.RequestID = r.PostForm.Get("request_id")
	if !utf8.ValidString(tv.RequestID) || len(tv.RequestID) > transfer.MaxRequestIDLen || tv.RequestID == "" {
		tv.RequestID = "" // a new one below; a stale form at worst sends once more
	}
	to, ok := field(v.portalView, r, "to", "The recipient", maxToLen, false)
	if ok {
		if phone, card, err := transfer.ParseRecipient(to); err == nil && phone == "" {
			tv.ToMasked = card.String()
		} else if strings.Trim(to, "+0123456789 -") == "" && len(strings.Trim(to, "+ -")) <= 13 {
			v.Form["to"] = to // a phone, or digits too few to be a card
		}
	}
	var amountText, memo, pin string
	if ok {
		amountText, ok = field(v.portalView, r, "amount", "The amount", maxAmountLen, false)
		if ok {
			v.Form["amount"] = amountText
		}
	}
	if ok {
		memo, ok = optField(v.portalView, r, "memo", "The memo", maxMemoBytes)
		if ok {
			v.Form["memo"] = memo
		}
	}
	var fen int64
	if ok {
		var msg string
		if fen, msg = ParseYuan(amountText); msg != "" {
			v.Error, v.Field, ok = msg, "amount", false
		}
	}
	if ok {
		pin, ok = field(v.portalView, r, "pay_password", "The payment password", maxPINLen, true)
	}
	if ok && tv.RequestID == "" {
		v.Error, ok = "This form has expired. Please check the details and send again.", false
	}
	if !ok {
		tp.again(w, r, c, v, http.StatusBadRequest)
		return
	}
	t, err := tp.t.Send(r.Context(), c.ID, transfer.Request{RequestID: tv.RequestID, To: to,
		Amount: paygate.Money{Amount: fen, Currency: "CNY"}, Memo: memo, PayPassword: pin})
	if err != nil {
		status := tp.refused(r, v, err)
		if paygate.HasCode(err, paygate.CodeConflict) && v.Field == "request_id" {
			tv.RequestID = "" // the form was used: the next send is a new transfer
		}
		tp.again(w, r, c, v, status)
		return
	}
	secure(w, true)
	http.Redirect(w, r, "/portal/transfers/"+url.PathEscape(t.ID)+"?sent=1", http.StatusSeeOther)
}

// again renders the form with a refusal.
func (tp *TransferPages) again(w http.ResponseWriter, r *http.Request, c customer.Customer, v *transferView, status int) {
	if cc, err := tp.p.customers.Customer(r.Context(), c.ID); err == nil {
		v.User = tp.p.user(cc) // a failed attempt may have changed it
	}
	if v.Transfer.RequestID == "" {
		v.Transfer.RequestID = newRequestID()
	}
	if !tp.fillForm(w, r, c, v) {
		return
	}
	tp.render(w, status, v)
}

// refused puts a refusal on v for the payer and returns the HTTP status.
func (tp *TransferPages) refused(r *http.Request, v *transferView, err error) int {
	var le *customer.LimitError
	switch code := paygate.CodeOf(err); {
	case errors.As(err, &le):
		v.Error, v.Field = "This transfer is over "+transferLimitText(le.Limit)+" of ¥"+FormatAmount(le.Max, "CNY")+".", "amount"
		return http.StatusUnprocessableEntity
	case code == paygate.CodeInsufficientFunds:
		v.Error, v.Field = "Your balance is not enough for this transfer.", "amount"
		return http.StatusUnprocessableEntity
	case code == paygate.CodeConflict && fieldOf(err) == "request_id":
		v.Error, v.Field = "This form was already used for another transfer. Check the details below and send again to make a new transfer.", "request_id"
		return http.StatusConflict
	}
	status := tp.p.failed(r, v.portalView, err)
	switch paygate.CodeOf(err) {
	case paygate.CodeAmountNotPositive, paygate.CodeCurrencyMismatch:
		status = http.StatusBadRequest
	case paygate.CodeLimitExceeded:
		status = http.StatusUnprocessableEntity
	}
	return status
}

func fieldOf(err error) string {
	var pe *paygate.Error
	if errors.As(err, &pe) {
		return pe.Field
	}
	return ""
}

func transferLimitText(l customer.Limit) string {
	switch l {
	case customer.LimitCustomerDaily:
		return "your daily payment limit"
	case customer.LimitMethodSingle:
		return "the limit per transfer"
	case customer.LimitMethodDaily:
		return "the daily transfer limit"
	}
	return "a payment limit"
}

// item shows a transfer to the customer viewing it.
func (tp *TransferPages) item(t transfer.Transfer, viewer string) transferItem {
	it := transferItem{ID: t.ID, URL: "/portal/transfers/" + url.PathEscape(t.ID), Time: tp.p.localTime(t.CreatedAt),
		TimeISO: t.CreatedAt.UTC().Format(time.RFC3339), Date: string(t.AccountingDate), Kind: transferKinds[t.Kind],
		Status: strings.ToLower(string(t.Status)), StatusText: transferStatuses[t.Status], Memo: t.Memo, FailCode: t.FailCode,
		ChannelNo: t.ChannelNo, Processing: t.Status == transfer.StatusProcessing, Failed: t.Status == transfer.StatusFailed}
	if !t.FinishedAt.IsZero() {
		it.Finished = tp.p.localTime(t.FinishedAt)
	}
	name := func(masked, login string) string {
		if masked == "" {
			return login
		}
		return masked + " " + login
	}
	if t.DirectionFor(viewer) == transfer.DirectionOut {
		it.Direction, it.Amount = "out", "-"+FormatYuan(t.Amount)
		it.Counterparty = name(t.RecipientName, t.Recipient)
		it.Title = "Transfer to " + it.Counterparty
	} else {
		it.Direction, it.Amount = "in", "+"+FormatYuan(t.Amount)
		it.Counterparty = name(t.SenderName, t.Sender)
		it.Title = "Transfer from " + it.Counterparty
		it.StatusText = map[bool]string{true: "Received", false: it.StatusText}[t.Status == transfer.StatusSuccess]
	}
	return it
}

// detail serves one transfer.
func (tp *TransferPages) detail(w http.ResponseWriter, r *http.Request, c customer.Customer) {
	id := r.PathValue("id")
	if len(id) > maxRefLen {
		tp.p.errorPage(w, http.StatusNotFound, "Transfer not found", "We could not find this transfer among yours.")
		return
	}
	t, err := tp.t.Get(r.Context(), c.ID, id)
	if paygate.HasCode(err, paygate.CodeNotFound) {
		tp.p.errorPage(w, http.StatusNotFound, "Transfer not found", "We could not find this transfer among yours.")
		return
	}
	if err != nil {
		tp.p.internal(w, r, "reading a transfer", err)
		return
	}
	v := tp.view(w, r, c, "Transfer")
	it := tp.item(t, c.ID)
	v.Transfer.Detail = &it
	v.Transfer.Sent = r.URL.Query().Get("sent") == "1" && t.CustomerID == c.ID
	v.Title = it.Title
	tp.render(w, http.StatusOK, v)
}

// list serves the transfers sent and received, newest first.
func (tp *TransferPages) list(w http.ResponseWriter, r *http.Request, c customer.Customer) {
	v := tp.view(w, r, c, "Transfers")
	cursor := r.URL.Query().Get("cursor")
	if len(cursor) > maxCursorLen {
		cursor = "\x00" // refused below with the service's message
	}
	page, err := tp.t.List(r.Context(), c.ID, cursor, transferPerPage)
	if err != nil {
		if paygate.HasCode(err, paygate.CodeInvalidArgument) {
			v.Error, v.Field = "This page link is broken. Start again from the newest page.", "cursor"
			v.Transfer.FirstURL = "/portal/transfers"
			tp.render(w, http.StatusBadRequest, v)
			return
		}
		tp.p.internal(w, r, "listing transfers", err)
		return
	}
	v.Transfer.Items = []transferItem{}
	for _, t := range page.Transfers {
		v.Transfer.Items = append(v.Transfer.Items, tp.item(t, c.ID))
	}
	if cursor != "" {
		v.Transfer.FirstURL = "/portal/transfers"
	}
	if page.NextCursor != "" {
		v.Transfer.NextURL = "/portal/transfers?cursor=" + url.QueryEscape(page.NextCursor)
	}
	tp.render(w, http.StatusOK, v)
}
