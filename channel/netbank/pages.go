package netbank

import (
	"context"
	"errors"
	"net/http"
	"net/url"
	"strings"
	"time"

	"paygate"
	"paygate/channel"
	"paygate/customer"
	"paygate/ledger"
	"paygate/payment"
)

// Routes of the bank's pages (Register):
//
//   - GET  /sandbox/bank/pay/{attempt}: the online-banking login page of a
//     payment session (RedirectURL);
//   - POST /sandbox/bank/pay/{attempt}/login: log in → the confirmation
//     page (the customer's own-bank cards, the payment password);
//   - POST /sandbox/bank/pay/{attempt}/confirm: pay → 303 to the return URL;
//   - POST /sandbox/bank/pay/{attempt}/cancel: cancel → 303 to the return URL;
//   - GET  /sandbox/bank/pay/{attempt}/{step}: back to the login page (a
//     reload after a POST);
//   - GET  /sandbox/bank/static/...: the bank's stylesheet.
const pathPay = "/sandbox/bank/pay/"

// Register adds the bank's pages to mux.
func (b *Bank) Register(mux *http.ServeMux) {
	mux.HandleFunc("GET "+pathPay+"{attempt}", b.loginPage)
	mux.HandleFunc("GET "+pathPay+"{attempt}/{step}", b.restart)
	mux.Handle("POST "+pathPay+"{attempt}/login", b.protect(b.login))
	mux.Handle("POST "+pathPay+"{attempt}/confirm", b.protect(b.confirm))
	mux.Handle("POST "+pathPay+"{attempt}/cancel", b.protect(b.cancel))
	mux.HandleFunc("GET "+staticPrefix, b.serveStatic)
	mux.HandleFunc("/sandbox/bank/", b.notFound)
}

func (b *Bank) serveStatic(w http.ResponseWriter, r *http.Request) {
	if strings.HasSuffix(r.URL.Path, "/") { // no directory listings
		b.notFound(w, r)
		return
	}
	secure(w, nil)
	w.Header().Set("Cache-Control", "public, max-age=3600")
	b.static.ServeHTTP(w, r)
}

// notFound answers an unknown (or long forgotten) payment session.
func (b *Bank) notFound(w http.ResponseWriter, r *http.Request) {
	b.render(w, http.StatusNotFound, "message", &view{Title: "This payment session has ended or does not exist",
		Detail: "Nothing has been charged. Go back to the merchant's checkout and choose online banking again."}, nil)
}

// internal answers an unexpected error, logged and never shown.
func (b *Bank) internal(w http.ResponseWriter, r *http.Request, what string, err error) {
	b.log.ErrorContext(r.Context(), "netbank: "+what, "attempt_id", r.PathValue("attempt"), "error", err)
	b.render(w, http.StatusInternalServerError, "message", &view{Title: "Something went wrong",
		Detail: "Please go back and try again in a moment: a payment is never taken twice."}, nil)
}

// restart sends a reloaded step back to the login page.
func (b *Bank) restart(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("attempt")
	if !validAttemptID(id) {
		b.notFound(w, r)
		return
	}
	http.Redirect(w, r, pathPay+id, http.StatusSeeOther)
}

// find returns the attempt's session and where it stands.
func (b *Bank) find(id string) (*session, state, string) {
	b.mu.Lock()
	defer b.mu.Unlock()
	s := b.sessions[id]
	if s == nil {
		return nil, 0, ""
	}
	return s, s.state, s.failCode
}

// baseView is the payment as every page of the session shows it.
func (b *Bank) baseView(s *session, now time.Time) *view {
	base := pathPay + s.req.AttemptID
	return &view{Amount: formatAmount(s.req.Amount, s.req.Currency), Currency: string(s.req.Currency),
		Description: s.req.Description, Reference: s.req.AttemptID, TimeLeft: timeLeft(s.ends.Sub(now)),
		LoginAction: base + "/login", ConfirmAction: base + "/confirm", CancelAction: base + "/cancel"}
}

// returnTo adds the order id and the result to a return URL: an absolute
// http(s) URL, or (relative true) a path on paygate. "" when raw is
// neither.
func returnTo(raw, orderID, result string, relative bool) string {
	u, err := url.Parse(raw)
	switch {
	case err != nil || u.User != nil:
		return ""
	case u.Scheme == "" && u.Host == "":
		if !relative || !strings.HasPrefix(raw, "/") || strings.HasPrefix(raw, "//") || strings.HasPrefix(raw, "/\\") {
			return ""
		}
	case (u.Scheme != "http" && u.Scheme != "https") || u.Host == "":
		return ""
	}
	q := u.Query()
	q.Set("paygate_order_id", orderID)
	q.Set("result", result)
	u.RawQuery, u.Fragment = q.Encode(), ""
	return u.String()
}

// back is where the payer returns with result: the order's return_url,
// else BackURL's page; "" for none.
func (b *Bank) back(s *session, result string) string {
	if s.req.ReturnURL != "" {
		return returnTo(s.req.ReturnURL, s.req.OrderID, result, false)
	}
	if b.cfg.BackURL != nil {
		return returnTo(b.cfg.BackURL(s.req.OrderID), s.req.OrderID, result, true)
	}
	return ""
}

// formTargets are the origins the session's forms may be redirected to.
func (b *Bank) formTargets(s *session) []string {
	if o := origin(b.back(s, ResultSuccess)); o != "" {
		return []string{o}
	}
	return nil
}

// resultOf is the result the payer brings back from a failed session.
func resultOf(failCode string) string {
	if failCode == FailCancelled {
		return ResultCancelled
	}
	return ResultFailed
}

// ended shows a session that is over (or refused) with the way back.
func (b *Bank) ended(w http.ResponseWriter, s *session, status int, result, title, detail string) {
	v := b.baseView(s, b.cfg.Clock.Now())
	v.Title, v.Detail = title, detail
	if result != "" {
		v.BackURL, v.BackText = b.back(s, result), "Return to the merchant"
	}
	b.render(w, status, "message", v, nil)
}

// endedPage shows a finished session by its state.
func (b *Bank) endedPage(w http.ResponseWriter, s *session, st state, code string) {
	switch {
	case st == paid:
		b.ended(w, s, http.StatusOK, ResultSuccess, "Payment successful", "The payment was taken from your card. The merchant is being notified.")
	case code == FailCancelled:
		b.ended(w, s, http.StatusConflict, ResultCancelled, "Payment cancelled", "You cancelled this payment. Nothing was charged.")
	case code == FailNotPayable:
		b.mu.Lock()
		why := s.why
		b.mu.Unlock()
		b.ended(w, s, http.StatusConflict, ResultFailed, "This order cannot be paid", why+" Nothing was charged.")
	default:
		b.ended(w, s, http.StatusGone, ResultFailed, "This payment session has ended",
			"Nothing was charged. Go back to the merchant and start the payment again.")
	}
}

// finish sends the payer back to the merchant with result (303), or shows
// the result when there is nowhere to go back to.
func (b *Bank) finish(w http.ResponseWriter, r *http.Request, s *session, st state, code string) {
	result := ResultSuccess
	if st != paid {
		result = resultOf(code)
	}
	if u := b.back(s, result); u != "" {
		secure(w, nil)
		http.Redirect(w, r, u, http.StatusSeeOther)
		return
	}
	b.endedPage(w, s, st, code)
}

// checkOrder asks whether the session's order may still be paid: "" when
// it may; else why not, and whether that is for good (paid, closed,
// expired) rather than for now (the merchant cannot take payments).
func (b *Bank) checkOrder(ctx context.Context, s *session, now time.Time) (why string, final bool, err error) {
	o, err := b.cfg.Orders.CheckoutView(ctx, s.req.OrderID)
	switch {
	case paygate.HasCode(err, paygate.CodeNotFound):
		return "This order cannot be found.", true, nil
	case err != nil:
		return "", false, err
	case o.Total != s.req.Amount || o.Currency != s.req.Currency:
		b.log.ErrorContext(ctx, "netbank: the order's amount differs from the payment's", "attempt_id", s.req.AttemptID, "order_id", o.ID)
		return "This order has changed since the payment started.", true, nil
	case o.Status == payment.StatusSuccess || o.Status == payment.StatusRefund:
		return "This order has already been paid.", true, nil
	case o.Expired(now):
		return "This order has expired and can no longer be paid.", true, nil
	case o.Status == payment.StatusClosed:
		return "The merchant has closed this order; it can no longer be paid.", true, nil
	case !o.Payable(now):
		return "The merchant cannot take payments at the moment. Please try again later.", false, nil
	}
	return "", false, nil
}

// refuseOrder shows why the order cannot be paid; for good, the session
// ends (FAILED, FailNotPayable, called back). s.ord is locked when end.
func (b *Bank) refuseOrder(w http.ResponseWriter, s *session, why string, final, end bool) {
	result := ""
	if final {
		result = ResultFailed
		if end {
			b.end(s, FailNotPayable, why)
		}
	}
	b.ended(w, s, http.StatusConflict, result, "This order cannot be paid", why+" Nothing was charged.")
}

// end closes an open session as FAILED with code (and why, for the
// payer) and calls back (s.ord locked). It reports whether it closed it.
func (b *Bank) end(s *session, code, why string) bool {
	b.mu.Lock()
	ok := s.state == open
	if ok {
		s.state, s.failCode, s.why = failed, code, why
	}
	b.mu.Unlock()
	if ok {
		r := b.result(s)
		r.Status, r.FailCode = channel.StatusFailed, code
		b.cb.Send(b.cfg.Delay, r)
		b.log.Info("netbank: payment session ended unpaid", "attempt_id", s.req.AttemptID, "order_id", s.req.OrderID, "fail_code", code)
	}
	return ok
}

// loginPage serves the online-banking login of a payment session.
func (b *Bank) loginPage(w http.ResponseWriter, r *http.Request) {
	s, st, code := b.find(r.PathValue("attempt"))
	if s == nil {
		b.notFound(w, r)
		return
	}
	now := b.cfg.Clock.Now()
	if st != open || !now.Before(s.ends) {
		b.endedPage(w, s, st, code)
		return
	}
	why, final, err := b.checkOrder(r.Context(), s, now)
	if err != nil {
		b.internal(w, r, "read the order", err)
		return
	}
	if why != "" {
		b.refuseOrder(w, s, why, final, false)
		return
	}
	b.renderLogin(w, r, s, http.StatusOK, "", "")
}

func (b *Bank) renderLogin(w http.ResponseWriter, r *http.Request, s *session, status int, login, msg string) {
	v := b.baseView(s, b.cfg.Clock.Now())
	v.Title, v.Login, v.Error = "Log in to pay", login, msg
	v.CSRFToken = b.csrfToken(w, r, s.req.AttemptID)
	b.render(w, status, "login", v, b.formTargets(s))
}

// login checks the login and shows the confirmation step.
func (b *Bank) login(w http.ResponseWriter, r *http.Request) {
	s, st, code := b.find(r.PathValue("attempt"))
	if s == nil {
		b.notFound(w, r)
		return
	}
	ctx, now := r.Context(), b.cfg.Clock.Now()
	if st == paid {
		b.finish(w, r, s, st, code)
		return
	}
	if st != open || !now.Before(s.ends) {
		b.endedPage(w, s, st, code)
		return
	}
	login, password := strings.TrimSpace(r.PostFormValue("login")), r.PostFormValue("password")
	if len(login) > 64 {
		login = login[:64]
	}
	if login == "" || password == "" {
		b.renderLogin(w, r, s, http.StatusBadRequest, login, "Enter your phone number or username and your login password.")
		return
	}
	c, err := b.cfg.Customers.Login(ctx, login, password)
	if err != nil {
		switch code := paygate.CodeOf(err); code {
		case paygate.CodeUnauthenticated, paygate.CodeForbidden, paygate.CodeInvalidArgument:
			status := map[paygate.Code]int{paygate.CodeUnauthenticated: http.StatusUnauthorized, paygate.CodeForbidden: http.StatusForbidden,
				paygate.CodeInvalidArgument: http.StatusBadRequest}[code]
			b.log.InfoContext(ctx, "netbank: online-banking login refused", "attempt_id", s.req.AttemptID, "code", string(code))
			b.renderLogin(w, r, s, status, login, sentence(message(err)))
		default:
			b.internal(w, r, "log in", err)
		}
		return
	}
	b.log.InfoContext(ctx, "netbank: payer logged in", "attempt_id", s.req.AttemptID, "customer", c.ID)
	b.renderConfirm(w, r, s, c.ID, b.loginToken(s.req.AttemptID, c.ID, now), http.StatusOK, "", "")
}

// message is an error's safe message.
func message(err error) string {
	var pe *paygate.Error
	if errors.As(err, &pe) {
		return pe.Message
	}
	return ""
}

// display names the logged-in customer, masked.
func display(c customer.Customer) string {
	switch {
	case c.NameMasked != "":
		return c.NameMasked
	case c.Phone != "":
		return customer.MaskPhone(c.Phone)
	}
	return c.Username
}

// renderConfirm shows the confirmation step: the customer's own-bank
// cards (masked numbers, balances) and the payment password.
func (b *Bank) renderConfirm(w http.ResponseWriter, r *http.Request, s *session, customerID, token string, status int, msg, checked string) {
	ctx := r.Context()
	c, err := b.cfg.Customers.Customer(ctx, customerID)
	if err != nil {
		b.internal(w, r, "read the customer", err)
		return
	}
	cards, err := b.cfg.Customers.Cards(ctx, customerID)
	if err != nil {
		b.internal(w, r, "list the cards", err)
		return
	}
	v := b.baseView(s, b.cfg.Clock.Now())
	v.Title, v.Error, v.Token, v.Customer, v.OnlineOff = "Confirm the payment", msg, token, display(c), !c.OnlinePayment
	for _, k := range cards {
		if !k.Kind.OwnBank() || k.Status == customer.StatusClosed {
			continue
		}
		cv := cardView{ID: k.ID, Kind: "Debit card", Number: k.Number.String()}
		if k.Kind == customer.KindCorporate {
			cv.Kind = "Corporate card"
		}
		switch {
		case k.Status != customer.StatusActive:
			cv.Disabled, cv.Note = true, "Frozen: cannot pay"
		case k.Currency != s.req.Currency:
			cv.Disabled, cv.Note = true, "Cannot pay in "+string(s.req.Currency)
		default:
			bal, err := b.cfg.Customers.CardBalance(ctx, customerID, k.ID)
			if err != nil {
				b.internal(w, r, "read a card's balance", err)
				return
			}
			cv.Balance = formatAmount(bal.Amount, bal.Currency) + " " + string(bal.Currency)
			v.Payable = true
		}
		v.Cards = append(v.Cards, cv)
	}
	for i := range v.Cards {
		if !v.Cards[i].Disabled && (checked == "" || v.Cards[i].ID == checked) {
			v.Cards[i].Checked = true
			break
		}
	}
	v.CSRFToken = b.csrfToken(w, r, s.req.AttemptID)
	b.render(w, status, "confirm", v, b.formTargets(s))
}

// confirm takes the payment: the card is debited in one transaction with
// the payer's limit usage, the result is called back, and the payer goes
// back to the merchant. One confirmation of an order runs at a time; a
// second one (a double click, the back button, another tab) finds the
// session paid and answers the same redirect.
func (b *Bank) confirm(w http.ResponseWriter, r *http.Request) {
	s, _, _ := b.find(r.PathValue("attempt"))
	if s == nil {
		b.notFound(w, r)
		return
	}
	ctx := r.Context()
	if err := s.ord.lock(ctx); err != nil {
		return // the payer has gone
	}
	defer s.ord.unlock()
	_, st, code := b.find(s.req.AttemptID)
	now := b.cfg.Clock.Now()
	switch {
	case st == paid:
		b.finish(w, r, s, st, code)
		return
	case st == failed:
		b.endedPage(w, s, st, code)
		return
	case !now.Before(s.ends):
		b.end(s, FailSessionExpired, "")
		b.endedPage(w, s, failed, FailSessionExpired)
		return
	}
	cus, err := b.checkLogin(r.PostFormValue("token"), s.req.AttemptID, now)
	if err != nil {
		b.log.InfoContext(ctx, "netbank: confirmation without a valid login", "attempt_id", s.req.AttemptID)
		b.renderLogin(w, r, s, http.StatusForbidden, "", sentence(message(err)))
		return
	}
	b.mu.Lock()
	paidBy := s.ord.paidBy
	b.mu.Unlock()
	if paidBy != "" {
		b.refuseOrder(w, s, "This order has already been paid.", true, true)
		return
	}
	why, final, err := b.checkOrder(ctx, s, now)
	if err != nil {
		b.internal(w, r, "read the order", err)
		return
	}
	if why != "" {
		b.refuseOrder(w, s, why, final, true)
		return
	}
	cardID, pin := r.PostFormValue("card_id"), r.PostFormValue("pay_password")
	again := func(status int, msg string) {
		b.renderConfirm(w, r, s, cus, r.PostFormValue("token"), status, msg, cardID)
	}
	if cardID == "" || pin == "" {
		again(http.StatusBadRequest, "Choose a card and enter your 6-digit payment password.")
		return
	}
	card, err := b.cfg.Customers.Card(ctx, cus, cardID)
	switch {
	case paygate.HasCode(err, paygate.CodeNotFound):
		again(http.StatusUnprocessableEntity, "Choose one of your cards.")
		return
	case err != nil:
		b.internal(w, r, "read the card", err)
		return
	case !card.Kind.OwnBank():
		again(http.StatusUnprocessableEntity, "Only "+BankName+"'s own cards can pay here.")
		return
	case card.Currency != s.req.Currency:
		again(http.StatusUnprocessableEntity, "This card cannot pay in "+string(s.req.Currency)+". Nothing was charged.")
		return
	}
	c, err := b.cfg.Customers.Customer(ctx, cus)
	if err != nil {
		b.internal(w, r, "read the customer", err)
		return
	}
	if !c.OnlinePayment {
		again(http.StatusUnprocessableEntity, "Online payment is turned off for your account: turn it on in online banking, then try again. Nothing was charged.")
		return
	}
	if err := b.cfg.Customers.VerifyPayPassword(ctx, cus, pin); err != nil {
		b.log.InfoContext(ctx, "netbank: payment password refused", "attempt_id", s.req.AttemptID, "customer", cus,
			"code", string(paygate.CodeOf(err)))
		switch paygate.CodeOf(err) {
		case paygate.CodeUnauthenticated:
			again(http.StatusUnauthorized, sentence(message(err)))
		case paygate.CodeForbidden:
			again(http.StatusForbidden, sentence(message(err)))
		case paygate.CodeConflict:
			again(http.StatusConflict, "You have not set a payment password: set one in online banking first.")
		default:
			b.internal(w, r, "verify the payment password", err)
		}
		return
	}
	paidAt, err := b.take(ctx, s, cus, card, now)
	if err != nil {
		if status, msg := refusal(err, s.req.Currency); status != 0 {
			b.log.InfoContext(ctx, "netbank: payment refused", "attempt_id", s.req.AttemptID, "customer", cus, "card", card.ID,
				"code", string(paygate.CodeOf(err)))
			again(status, msg)
			return
		}
		b.internal(w, r, "take the payment", err)
		return
	}
	b.mu.Lock()
	s.state, s.paidAt, s.ord.paidBy = paid, paidAt, s.req.AttemptID
	b.mu.Unlock()
	res := b.result(s)
	res.Status, res.PaidAt = channel.StatusSuccess, paidAt
	b.cb.Send(b.cfg.Delay, res)
	b.log.InfoContext(ctx, "netbank: payment confirmed", "attempt_id", s.req.AttemptID, "order_id", s.req.OrderID,
		"customer", cus, "card", card.ID, "amount", s.req.Amount, "currency", string(s.req.Currency))
	b.finish(w, r, s, paid, "")
}

// take moves the money in one transaction: the payer's limits
// (customer.MethodOnlineBanking, the business day of now), then card →
// clearing with the transfer id TransferPrefix + attempt id. A transfer
// already there (a confirmation that committed before) is the payment:
// nothing is reserved or moved again. It returns when the money moved.
func (b *Bank) take(ctx context.Context, s *session, customerID string, card customer.Card, now time.Time) (time.Time, error) {
	cur := s.req.Currency
	clearing := ledger.ChannelClearing(Name, cur)
	if _, ok := b.accounts.Load(cur); !ok {
		if _, err := b.cfg.Ledger.CreateAccounts(ctx, []ledger.Account{clearing}); err != nil {
			return time.Time{}, err
		}
		b.accounts.Store(cur, true)
	}
	id := TransferPrefix + s.req.AttemptID
	day := b.cfg.Calendar.AccountingDate(now)
	var paidAt time.Time
	err := b.cfg.InTx(ctx, func(tx Tx) error {
		done, err := tx.TransfersByID(ctx, []string{id})
		if err != nil {
			return err
		}
		if len(done) > 0 {
			paidAt = done[0].CreatedAt
			return nil
		}
		if _, err := b.cfg.Customers.Reserve(ctx, tx, customerID, card.ID, customer.MethodOnlineBanking, s.req.Amount, day); err != nil {
			return err
		}
		res, err := b.cfg.Ledger.Apply(ctx, tx, []ledger.Transfer{{ID: id, DebitAccountID: card.AccountID, CreditAccountID: clearing.ID,
			Amount: s.req.Amount, Currency: cur, Code: TransferCode, Ref: s.tradeNo}})
		if err != nil {
			return err
		}
		paidAt = res[0].CreatedAt
		return nil
	})
	return paidAt, err
}

// refusal turns a refused payment into its status and message; 0 for an
// unexpected error.
func refusal(err error, cur paygate.Currency) (int, string) {
	const none = " Nothing was charged."
	switch paygate.CodeOf(err) {
	case paygate.CodeInsufficientFunds:
		return http.StatusUnprocessableEntity, "The card's balance is not enough for this payment." + none
	case paygate.CodeLimitExceeded, paygate.CodeForbidden, paygate.CodeInvalidArgument, paygate.CodeNotFound:
		return http.StatusUnprocessableEntity, sentence(message(err)) + none
	case paygate.CodeAccountClosed:
		return http.StatusUnprocessableEntity, "This card's account is closed." + none
	case paygate.CodeAccountNotFound, paygate.CodeCurrencyMismatch:
		return http.StatusUnprocessableEntity, "This card cannot pay in " + string(cur) + "." + none
	}
	return 0, ""
}

// cancel ends the session unpaid at the payer's request (FAILED,
// FailCancelled, called back) and sends them back with result CANCELLED.
// A paid session stays paid: the payer goes back with SUCCESS.
func (b *Bank) cancel(w http.ResponseWriter, r *http.Request) {
	s, _, _ := b.find(r.PathValue("attempt"))
	if s == nil {
		b.notFound(w, r)
		return
	}
	if err := s.ord.lock(r.Context()); err != nil {
		return
	}
	defer s.ord.unlock()
	if _, st, _ := b.find(s.req.AttemptID); st == open {
		code := FailCancelled
		if !b.cfg.Clock.Now().Before(s.ends) {
			code = FailSessionExpired
		}
		b.end(s, code, "")
	}
	_, st, code := b.find(s.req.AttemptID)
	b.finish(w, r, s, st, code)
}
