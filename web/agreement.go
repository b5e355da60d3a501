package web

// The hosted agreement (mandate) sign page a merchant sends a customer to
// (the agreement's sign_url), and the portal's list of the customer's
// merchant agreements with their revocation. See docs/AGREEMENTS.md.
//
//   - GET /agreements/{id}: the merchant, the plan, the limits and the end
//     date, and the card form while the agreement can be signed;
//   - POST /agreements/{id}/sign: card number, holder name, ID number and
//     phone → the page again, with the one-time code form;
//   - POST /agreements/{id}/sign/confirm: card_id + code → signs, 303 to
//     the page, which then shows it signed with a link to the merchant;
//   - POST /portal/merchant-agreements/{id}/revoke (the portal).
//
// The forms are protected like the checkout's (csrf.go: cross-origin
// refusal plus a token bound to the agreement id and the browser's
// cookie), and a refusal never echoes a card number, ID number or code.

import (
	"context"
	"errors"
	"mime"
	"net/http"
	"strings"
	"unicode/utf8"

	"paygate"
	"paygate/agreement"
	"paygate/customer"
)

// Agreements is what the sign page needs; *agreement.Service implements
// it.
type Agreements interface {
	SignView(ctx context.Context, id string) (agreement.SignPage, error)
	StartSign(ctx context.Context, id string, c agreement.SignCard) (agreement.Challenge, error)
	ConfirmSign(ctx context.Context, id, cardID, code string) (agreement.Agreement, error)
}

// PortalAgreements is what the portal needs of merchant agreements;
// *agreement.Service implements it. Another customer's agreement is
// CodeNotFound.
type PortalAgreements interface {
	CustomerAgreements(ctx context.Context, customerID string) ([]agreement.CustomerAgreement, error)
	RevokeByCustomer(ctx context.Context, customerID, id string) (agreement.Agreement, error)
}

// signView is the data of the sign page.
type signView struct {
	Title             string
	Page              agreement.SignPage
	State             string // open, signed, revoked, expired
	StatusTitle       string
	StatusDetail      string
	PerPayment, Daily string
	Until, SignBy     string
	CSRFToken         string
	Message           string
	Challenge         *signChallenge
}

// signChallenge is the code step: masked values only.
type signChallenge struct {
	CardID, Card, Bank, Phone, Expires string
	Retry                              bool
}

// registerAgreements adds the sign page's routes.
func (h *Handler) registerAgreements(mux *http.ServeMux) {
	mux.HandleFunc("GET /agreements/{id}", h.signPage)
	mux.Handle("POST /agreements/{id}/sign", h.signForm(h.signStart))
	mux.Handle("POST /agreements/{id}/sign/confirm", h.signForm(h.signConfirm))
}

// signPage serves the sign page.
func (h *Handler) signPage(w http.ResponseWriter, r *http.Request) {
	h.showSign(w, r, http.StatusOK, "", nil)
}

// showSign renders the sign page with a message and the code step.
func (h *Handler) showSign(w http.ResponseWriter, r *http.Request, status int, msg string, ch *signChallenge) {
	p, err := h.cfg.Agreements.SignView(r.Context(), r.PathValue("id"))
	switch {
	case paygate.HasCode(err, paygate.CodeNotFound):
		h.render(w, http.StatusNotFound, "notfound", errorPage{Title: "Agreement not found"})
		return
	case err != nil:
		h.log.ErrorContext(r.Context(), "agreement: reading the agreement", "error", err)
		h.render(w, http.StatusInternalServerError, "error", errorPage{Title: "Something went wrong"})
		return
	}
	v := signView{Title: "Agreement with " + p.MerchantName, Page: p, Message: msg, Challenge: ch,
		PerPayment: "No limit of its own per payment", Daily: "No limit of its own per day", Until: "Until you or the merchant revoke it",
		SignBy: p.SignExpireTime.In(shanghai).Format("2006-01-02 15:04")}
	if p.PerPaymentLimit > 0 {
		v.PerPayment = "At most " + string(p.Currency) + " " + FormatAmount(p.PerPaymentLimit, p.Currency) + " a payment"
	}
	if p.DailyLimit > 0 {
		v.Daily = "At most " + string(p.Currency) + " " + FormatAmount(p.DailyLimit, p.Currency) + " a day"
	}
	if p.EndDate != "" {
		v.Until = "Until " + string(p.EndDate) + " (last day), unless revoked earlier"
	}
	switch p.Status {
	case agreement.StatusPending:
		v.State, v.StatusTitle, v.StatusDetail = "open", "Awaiting your signature", "Check the terms, then sign with your bank card and an SMS code."
		v.CSRFToken = h.csrfToken(w, r, p.ID)
	case agreement.StatusSigned:
		v.State, v.StatusTitle, v.StatusDetail = "signed", "Signed", "The agreement is signed with card "+p.Card+"."
	case agreement.StatusRevoked:
		v.State, v.StatusTitle, v.StatusDetail = "revoked", "Revoked", "This agreement was revoked and can no longer be signed or charged."
	default:
		v.State, v.StatusTitle, v.StatusDetail = "expired", "Expired", "This agreement can no longer be signed. Please ask the merchant for a new one."
	}
	if v.State != "open" {
		v.Challenge = nil
	}
	h.render(w, status, "agreement_sign", v)
}

// signForm wraps a sign form's POST: cross-origin requests and forms
// without the agreement's CSRF token are refused (403) unread; a body
// over maxBody (413), not a URL-encoded form (415) or malformed (400)
// gets the page again with a message.
func (h *Handler) signForm(next http.HandlerFunc) http.Handler {
	cop := http.NewCrossOriginProtection()
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if err := cop.Check(r); err != nil {
			h.forbidden(w, r)
			return
		}
		r.Body = http.MaxBytesReader(w, r.Body, maxBody)
		unreadable := "The form could not be read. Please reload the page and try again."
		if ct, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type")); ct != "application/x-www-form-urlencoded" {
			h.showSign(w, r, http.StatusUnsupportedMediaType, unreadable, nil)
			return
		}
		if err := r.ParseForm(); err != nil {
			if _, ok := errors.AsType[*http.MaxBytesError](err); ok {
				h.showSign(w, r, http.StatusRequestEntityTooLarge, "The form is too large. Please shorten what you entered and try again.", nil)
				return
			}
			h.showSign(w, r, http.StatusBadRequest, unreadable, nil)
			return
		}
		if err := h.checkCSRF(r, r.PathValue("id")); err != nil {
			h.forbidden(w, r)
			return
		}
		next(w, r)
	})
}

// signFields reads the named fields, trimmed; ok false (and the page
// answered) when one is too long or not UTF-8.
func (h *Handler) signFields(w http.ResponseWriter, r *http.Request, names ...string) (map[string]string, bool) {
	out := make(map[string]string, len(names))
	for _, n := range names {
		v := strings.TrimSpace(r.PostForm.Get(n))
		name := fieldNames[n]
		switch {
		case !utf8.ValidString(v) || strings.ContainsRune(v, 0):
			h.signFailed(w, r, paygate.EField(paygate.CodeInvalidArgument, n, "%s contains characters that are not allowed", name), nil)
			return nil, false
		case len(v) > maxField:
			h.signFailed(w, r, paygate.EField(paygate.CodeInvalidArgument, n, "%s is too long", name), nil)
			return nil, false
		}
		out[n] = v
	}
	return out, true
}

func (h *Handler) signStart(w http.ResponseWriter, r *http.Request) {
	f, ok := h.signFields(w, r, "card_number", "name", "id_number", "phone")
	if !ok {
		return
	}
	ch, err := h.cfg.Agreements.StartSign(r.Context(), r.PathValue("id"), agreement.SignCard{
		Number: digitsOnly(f["card_number"]), Name: f["name"], IDNumber: f["id_number"], Phone: f["phone"]})
	if err != nil {
		h.signFailed(w, r, err, nil)
		return
	}
	h.showSign(w, r, http.StatusOK, "", &signChallenge{CardID: ch.CardID, Card: ch.Card, Bank: ch.Bank, Phone: ch.PhoneMasked,
		Expires: ch.ExpiresAt.In(shanghai).Format("15:04")})
}

func (h *Handler) signConfirm(w http.ResponseWriter, r *http.Request) {
	f, ok := h.signFields(w, r, "card_id", "code")
	if !ok {
		return
	}
	if _, err := h.cfg.Agreements.ConfirmSign(r.Context(), r.PathValue("id"), f["card_id"], f["code"]); err != nil {
		// A wrong or expired code leaves the code form up.
		var ch *signChallenge
		if f["card_id"] != "" && paygate.HasCode(err, paygate.CodeUnauthenticated) {
			ch = &signChallenge{CardID: f["card_id"], Retry: true}
		}
		h.signFailed(w, r, err, ch)
		return
	}
	secure(w, true)
	http.Redirect(w, r, "/agreements/"+r.PathValue("id"), http.StatusSeeOther)
}

// signFailed renders the page again with the refusal's message (the
// checkout's wording and statuses).
func (h *Handler) signFailed(w http.ResponseWriter, r *http.Request, err error, ch *signChallenge) {
	msg, status := h.payMessage(r.Context(), err)
	h.showSign(w, r, status, msg, ch)
}

// mandateView is one merchant agreement on the portal's cards page.
type mandateView struct {
	ID, Merchant, Plan, Card, Status, Since, Ended string
	PerPayment, Daily, EndDate                     string
	Active                                         bool
}

// mandateViews returns the customer's merchant agreements, newest first
// (none when the portal has no agreements wired).
func (p *Portal) mandateViews(ctx context.Context, customerID string) ([]mandateView, error) {
	if p.mandates == nil {
		return nil, nil
	}
	as, err := p.mandates.CustomerAgreements(ctx, customerID)
	if err != nil {
		return nil, err
	}
	out := make([]mandateView, 0, len(as))
	for _, a := range as {
		v := mandateView{ID: a.ID, Merchant: a.MerchantName, Plan: a.Plan, Card: a.Card, Status: strings.ToLower(string(a.Status)),
			Since: p.localTime(a.SignedTime), Active: a.Status == agreement.StatusSigned, PerPayment: "—", Daily: "—", EndDate: "none"}
		if a.PerPaymentLimit > 0 {
			v.PerPayment = FormatYuan(paygate.Money{Amount: a.PerPaymentLimit, Currency: a.Currency})
		}
		if a.DailyLimit > 0 {
			v.Daily = FormatYuan(paygate.Money{Amount: a.DailyLimit, Currency: a.Currency})
		}
		if a.EndDate != "" {
			v.EndDate = string(a.EndDate)
		}
		switch {
		case !a.RevokedTime.IsZero():
			v.Ended = "revoked " + p.localTime(a.RevokedTime)
		case !a.ExpiredTime.IsZero():
			v.Ended = "ended " + p.localTime(a.ExpiredTime)
		}
		out = append(out, v)
	}
	return out, nil
}

// revokeMandate revokes one of the customer's merchant agreements; the
// merchant is told (AGREEMENT.REVOKED).
func (p *Portal) revokeMandate(w http.ResponseWriter, r *http.Request, c customer.Customer) {
	_, err := p.mandates.RevokeByCustomer(r.Context(), c.ID, r.PathValue("id"))
	switch {
	case paygate.HasCode(err, paygate.CodeNotFound):
		p.errorPage(w, http.StatusNotFound, "Agreement not found", "We could not find this agreement among yours.")
		return
	case paygate.HasCode(err, paygate.CodeConflict):
		p.errorPage(w, http.StatusConflict, "Agreement already ended", "This agreement has ended; nothing was changed.")
		return
	case err != nil:
		p.internal(w, r, "revoking a merchant agreement", err)
		return
	}
	secure(w, true)
	http.Redirect(w, r, "/portal/cards?ok=mandate_revoked#merchant-agreements", http.StatusSeeOther)
}
