// Package checkout is the payer's side of an order: how a customer pays a
// merchant's order on the hosted checkout page. It composes the orders
// (payment), the customers and their cards and limits (customer) and
// one-time codes (otp) into the checkout's payment methods:
//
//   - quick pay: card number + holder name, ID number and phone checked
//     against the card's records, then a one-time code sent to the card's
//     phone (StartQuickPay, ConfirmQuickPay); a bound card needs only the
//     payer's phone, the card's last four digits and a code
//     (StartBoundQuickPay);
//   - card-number pay: an own-bank card number + the payment password
//     (CardPay), under lower limits;
//   - online banking: a redirect to the bank's online-banking pages
//     (OnlineBanking); the result arrives by callback;
//   - balance: a logged-in customer's account balance + payment password
//     (BalancePay).
//
// Own-bank cards and balances are paid on us, in one transaction with the
// code's consumption, the limit reservation, the ledger journal, the
// order's status and the merchant's notification
// (payment.Service.PayFromAccount). Other banks' cards go through the
// interbank channel (payment.Service.PayThrough) and their limits are given
// back if the bank declines (ReleaseFailed). Every limit is enforced in one
// place, customer.Service.Reserve.
package checkout

import (
	"context"
	"errors"
	"log/slog"
	"time"

	"paygate"
	"paygate/customer"
	"paygate/otp"
	"paygate/payment"
)

// PurposeQuickPay is the one-time code purpose of quick pay; the subject
// is the order id and the card id, so a code pays only that order with that
// card.
const PurposeQuickPay = "checkout.quick_pay"

// Tx is a checkout payment's transaction: the orders', the customers' (and
// so the ledger's) and the one-time codes' at once. store.Tx implements it.
type Tx interface {
	payment.Tx
	customer.Tx
	otp.Tx
}

// Payments is what the checkout needs of orders; *payment.Service
// implements it.
type Payments interface {
	CheckoutView(ctx context.Context, orderID string) (payment.CheckoutOrder, error)
	PayFromAccount(ctx context.Context, orderID string, p payment.Payer, from string, authorize payment.Authorize) (payment.Order, payment.Attempt, error)
	PayThrough(ctx context.Context, orderID, channelName string, p payment.Payer, scenario string, authorize payment.Authorize) (payment.Attempt, error)
}

// Customers is what the checkout needs of customers and cards;
// *customer.Service implements it.
type Customers interface {
	Limits() customer.Limits
	CardByNumber(ctx context.Context, number string) (customer.Card, error)
	CardByID(ctx context.Context, cardID string) (customer.Card, error)
	VerifyHolder(ctx context.Context, cardID string, h customer.Holder) error
	HolderPhone(ctx context.Context, cardID string) (string, error)
	CustomerByPhone(ctx context.Context, phone string) (customer.Customer, error)
	BoundCardsByLastFour(ctx context.Context, customerID, last4 string) ([]customer.BoundCard, error)
	Bind(ctx context.Context, customerID, cardID string) (customer.Agreement, error)
	VerifyPayPassword(ctx context.Context, id, pin string) error
	Reserve(ctx context.Context, tx customer.Tx, customerID, cardID string, method customer.Method, amount int64, day paygate.Date) (customer.Reservation, error)
	Release(ctx context.Context, tx customer.Tx, r customer.Reservation) error
	BalanceAccount(customerID string) string
}

// Codes is what the checkout needs of one-time codes; *otp.Service
// implements it.
type Codes interface {
	Issue(ctx context.Context, purpose, subject, phone string) (otp.Issued, error)
	Check(ctx context.Context, purpose, subject, input string) (otp.Proof, error)
	ConsumeTx(ctx context.Context, tx otp.Tx, purpose, subject string, p otp.Proof) error
}

// Config configures a Service. Payments, Customers, Codes and Clock are
// required.
type Config struct {
	Payments  Payments
	Customers Customers
	Codes     Codes
	Clock     paygate.Clock
	// Calendar gives the business day limits count in (default
	// paygate.DefaultCalendar: 00:00 Asia/Shanghai).
	Calendar paygate.Calendar
	// Interbank names the channel other banks' cards are charged through
	// ("" refuses them).
	Interbank string
	// InterbankScenario, when set, names the outcome a simulated interbank
	// switch gives a card's payment (customer.SandboxInterbankOutcome in
	// the sandbox); real channels ignore it.
	InterbankScenario func(customer.Card) string
	// OnlineBanking names the online-banking channel ("" offers none).
	OnlineBanking string
	Logger        *slog.Logger
}

// Service is the checkout use case. It is safe for concurrent use.
type Service struct {
	cfg   Config
	pay   Payments
	cus   Customers
	codes Codes
	clock paygate.Clock
	cal   paygate.Calendar
	log   *slog.Logger
}

// New returns a Service. Errors: CodeInvalidArgument for a missing
// dependency.
func New(cfg Config) (*Service, error) {
	if cfg.Payments == nil || cfg.Customers == nil || cfg.Codes == nil || cfg.Clock == nil {
		return nil, paygate.E(paygate.CodeInvalidArgument, "checkout: Payments, Customers, Codes and Clock are required")
	}
	if cfg.Calendar == (paygate.Calendar{}) {
		cfg.Calendar = paygate.DefaultCalendar()
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	return &Service{cfg: cfg, pay: cfg.Payments, cus: cfg.Customers, codes: cfg.Codes, clock: cfg.Clock, cal: cfg.Calendar, log: cfg.Logger}, nil
}

// Outcome is how a checkout payment stands after the payer's step.
type Outcome string

// Outcomes.
const (
	// Paid: the order is paid (on-us payments are final at once).
	Paid Outcome = "PAID"
	// Processing: the payment went to another bank; its result arrives
	// asynchronously and the page follows the order's status.
	Processing Outcome = "PROCESSING"
	// Redirect: the payer must continue at RedirectURL (online banking).
	Redirect Outcome = "REDIRECT"
	// Declined: the other bank refused the payment at once.
	Declined Outcome = "DECLINED"
)

// Result is the outcome of a payer's payment step.
type Result struct {
	Outcome     Outcome
	OrderID     string
	AttemptID   string
	RedirectURL string
	// Bound is set when quick pay bound the card as the payer asked.
	Bound bool
}

// Challenge is what the page may show after a one-time code was sent:
// never the card number or phone in clear.
type Challenge struct {
	OrderID     string
	CardID      string
	Card        customer.Masked
	Bank        string
	OwnBank     bool
	PhoneMasked string
	ExpiresAt   time.Time
	// Bound is set when the card is already bound (no need to offer it).
	Bound bool
}

// methodName maps a limit method to the order's checkout method name.
var methodName = map[customer.Method]string{
	customer.MethodQuickPay:      payment.MethodQuickPay,
	customer.MethodCardNumber:    payment.MethodCardPay,
	customer.MethodOnlineBanking: payment.MethodOnlineBanking,
	customer.MethodBalance:       payment.MethodBalance,
}

// Order returns the order as the checkout shows it and checks that it can
// be paid with method now. Errors: CodeNotFound, CodeConflict (paid,
// closed, expired, a payment in flight, merchant may not transact),
// CodeForbidden (the order does not allow the method), CodeCurrencyMismatch
// (cards and balances pay in the limits' currency only).
func (s *Service) Order(ctx context.Context, orderID string, method customer.Method) (payment.CheckoutOrder, error) {
	o, err := s.pay.CheckoutView(ctx, orderID)
	if err != nil {
		return payment.CheckoutOrder{}, err
	}
	now := s.clock.Now()
	switch {
	case o.Status == payment.StatusSuccess:
		return o, paygate.E(paygate.CodeConflict, "this order is already paid")
	case o.Expired(now):
		return o, paygate.E(paygate.CodeConflict, "this order has expired")
	case !o.Status.Open():
		return o, paygate.E(paygate.CodeConflict, "this order is closed")
	case !o.MerchantCanTransact:
		return o, paygate.E(paygate.CodeConflict, "the merchant cannot take payments now")
	case o.InProgress != "":
		return o, paygate.E(paygate.CodeConflict, "a payment of this order is already in progress")
	}
	allowed := false
	for _, m := range o.Methods {
		allowed = allowed || m == methodName[method]
	}
	if !allowed {
		return o, paygate.E(paygate.CodeForbidden, "this order cannot be paid this way")
	}
	if o.Currency != s.cus.Limits().Currency {
		return o, paygate.E(paygate.CodeCurrencyMismatch, "cards and balances pay in %s only", s.cus.Limits().Currency)
	}
	return o, nil
}

// QuickPayCard is what a first-time quick-pay payer types.
type QuickPayCard struct {
	Number, Name, IDNumber, Phone string
}

func quickPaySubject(orderID, cardID string) string { return orderID + "/" + cardID }

// StartQuickPay checks the card number and the holder's name, ID number and
// phone against the card's records and sends a one-time code to the card's
// phone. Errors (nothing is sent): Order's errors; CodeInvalidArgument
// (field card_number: not a card number or fails the Luhn check; the holder
// details malformed or not matching — the message never says which);
// CodeNotFound (the card is not known); CodeForbidden (the card is frozen
// or closed, or another bank's card and no interbank channel);
// CodeLimitExceeded (codes sent too often).
func (s *Service) StartQuickPay(ctx context.Context, orderID string, c QuickPayCard) (Challenge, error) {
	if _, err := s.Order(ctx, orderID, customer.MethodQuickPay); err != nil {
		return Challenge{}, err
	}
	card, err := s.cus.CardByNumber(ctx, c.Number)
	switch {
	case paygate.HasCode(err, paygate.CodeInvalidArgument):
		return Challenge{}, paygate.EField(paygate.CodeInvalidArgument, "card_number", "this is not a valid card number")
	case paygate.HasCode(err, paygate.CodeNotFound):
		return Challenge{}, paygate.EField(paygate.CodeNotFound, "card_number", "this card is not recognised")
	case err != nil:
		return Challenge{}, err
	}
	if err := s.usable(card); err != nil {
		return Challenge{}, err
	}
	if err := s.cus.VerifyHolder(ctx, card.ID, customer.Holder{Name: c.Name, IDNumber: c.IDNumber, Phone: c.Phone}); err != nil {
		if paygate.HasCode(err, paygate.CodeInvalidArgument) {
			return Challenge{}, paygate.EField(paygate.CodeInvalidArgument, "holder", "the name, ID number or phone do not match the card's records")
		}
		return Challenge{}, err
	}
	return s.sendCode(ctx, orderID, card, false)
}

// StartBoundQuickPay finds the payer's bound card by the payer's phone and
// the card's last four digits and sends a one-time code to the card's
// phone. Errors: Order's errors; CodeInvalidArgument (phone or last4
// malformed); CodeNotFound (no bound card ends so for that phone);
// CodeForbidden; CodeLimitExceeded.
func (s *Service) StartBoundQuickPay(ctx context.Context, orderID, phone, last4 string) (Challenge, error) {
	if _, err := s.Order(ctx, orderID, customer.MethodQuickPay); err != nil {
		return Challenge{}, err
	}
	noCard := paygate.EField(paygate.CodeNotFound, "last4", "no bound card ending in these digits for this phone number")
	cust, err := s.cus.CustomerByPhone(ctx, phone)
	switch {
	case paygate.HasCode(err, paygate.CodeInvalidArgument):
		return Challenge{}, paygate.EField(paygate.CodeInvalidArgument, "phone", "give the mobile number you registered with")
	case paygate.HasCode(err, paygate.CodeNotFound):
		return Challenge{}, noCard
	case err != nil:
		return Challenge{}, err
	}
	bound, err := s.cus.BoundCardsByLastFour(ctx, cust.ID, last4)
	if err != nil {
		return Challenge{}, err
	}
	if len(bound) == 0 {
		return Challenge{}, noCard
	}
	card := bound[0].Card
	if err := s.usable(card); err != nil {
		return Challenge{}, err
	}
	return s.sendCode(ctx, orderID, card, true)
}

// usable refuses cards that cannot pay: frozen or closed ones, and other
// banks' cards when no interbank channel is configured.
func (s *Service) usable(card customer.Card) error {
	if card.Status != customer.StatusActive {
		return paygate.EField(paygate.CodeForbidden, "card_number", "this card cannot pay: it is frozen or closed")
	}
	if !card.Kind.OwnBank() && s.cfg.Interbank == "" {
		return paygate.EField(paygate.CodeForbidden, "card_number", "cards of other banks cannot pay here")
	}
	return nil
}

// sendCode issues the quick-pay code for the order and card to the card's
// phone.
func (s *Service) sendCode(ctx context.Context, orderID string, card customer.Card, bound bool) (Challenge, error) {
	phone, err := s.cus.HolderPhone(ctx, card.ID)
	if err != nil {
		return Challenge{}, err
	}
	is, err := s.codes.Issue(ctx, PurposeQuickPay, quickPaySubject(orderID, card.ID), phone)
	if err != nil {
		return Challenge{}, err
	}
	return Challenge{OrderID: orderID, CardID: card.ID, Card: card.Number, Bank: card.Bank, OwnBank: card.Kind.OwnBank(),
		PhoneMasked: card.PhoneMasked, ExpiresAt: is.ExpiresAt, Bound: bound}, nil
}

// ConfirmQuickPay pays the order with the card a code was sent for, given
// the code: an own-bank card at once (Paid), another bank's card through
// the interbank channel (Processing, or Declined). The code is consumed in
// the payment's transaction, so it pays once however often it is
// submitted. With bind set, a successful payment also binds the card for
// the next quick pay (a failure to bind is logged, the payment stands).
//
// Errors (nothing changes, apart from a wrong code counting a try):
// Order's errors; the otp errors (wrong, expired, used, too many tries,
// superseded); CodeNotFound (card); CodeForbidden (customer or card not
// active, online payment off); CodeLimitExceeded (*customer.LimitError);
// CodeInsufficientFunds.
func (s *Service) ConfirmQuickPay(ctx context.Context, orderID, cardID, code string, bind bool) (Result, error) {
	if _, err := s.Order(ctx, orderID, customer.MethodQuickPay); err != nil {
		return Result{}, err
	}
	card, err := s.cus.CardByID(ctx, cardID)
	if err != nil {
		return Result{}, err
	}
	subject := quickPaySubject(orderID, card.ID)
	proof, err := s.codes.Check(ctx, PurposeQuickPay, subject, code)
	if err != nil {
		return Result{}, err
	}
	payer := payment.Payer{Method: string(customer.MethodQuickPay), CustomerID: card.CustomerID, CardID: card.ID}
	auth := s.authorize(payer, func(ctx context.Context, tx Tx) error {
		return s.codes.ConsumeTx(ctx, tx, PurposeQuickPay, subject, proof)
	})
	var res Result
	if card.Kind.OwnBank() {
		o, at, err := s.pay.PayFromAccount(ctx, orderID, payer, card.AccountID, auth)
		if err != nil {
			return Result{}, err
		}
		res = Result{Outcome: Paid, OrderID: o.ID, AttemptID: at.ID}
	} else {
		if s.cfg.Interbank == "" {
			return Result{}, paygate.EField(paygate.CodeForbidden, "card_number", "cards of other banks cannot pay here")
		}
		scenario := ""
		if s.cfg.InterbankScenario != nil {
			scenario = s.cfg.InterbankScenario(card)
		}
		at, err := s.pay.PayThrough(ctx, orderID, s.cfg.Interbank, payer, scenario, auth)
		if err != nil {
			return Result{}, err
		}
		res = Result{Outcome: Processing, OrderID: orderID, AttemptID: at.ID}
		if at.Status == "FAILED" {
			res.Outcome = Declined
		}
	}
	if bind && res.Outcome != Declined {
		_, err := s.cus.Bind(ctx, card.CustomerID, card.ID)
		switch {
		case err == nil:
			res.Bound = true
		case paygate.HasCode(err, paygate.CodeConflict):
			res.Bound = true // bound already
		default:
			s.log.WarnContext(ctx, "checkout: could not bind the card after quick pay", "card", card.ID, "error", err)
		}
	}
	return res, nil
}

// CardPay pays the order with an own-bank card's number and its holder's
// payment password, on us, under card-number pay's lower limits. Wrong
// payment passwords count towards the holder's lock-out.
//
// Errors (nothing changes apart from the lock-out count): Order's errors;
// CodeInvalidArgument (field card_number: not a valid number, or another
// bank's card; pay_password malformed); CodeNotFound (card not known);
// CodeUnauthenticated (wrong payment password); CodeConflict (no payment
// password set); CodeForbidden (locked, customer or card not active,
// online payment off);
// CodeLimitExceeded; CodeInsufficientFunds.
func (s *Service) CardPay(ctx context.Context, orderID, number, payPassword string) (Result, error) {
	if _, err := s.Order(ctx, orderID, customer.MethodCardNumber); err != nil {
		return Result{}, err
	}
	card, err := s.cus.CardByNumber(ctx, number)
	switch {
	case paygate.HasCode(err, paygate.CodeInvalidArgument):
		return Result{}, paygate.EField(paygate.CodeInvalidArgument, "card_number", "this is not a valid card number")
	case paygate.HasCode(err, paygate.CodeNotFound):
		return Result{}, paygate.EField(paygate.CodeNotFound, "card_number", "this card is not recognised")
	case err != nil:
		return Result{}, err
	}
	if !card.Kind.OwnBank() {
		return Result{}, paygate.EField(paygate.CodeInvalidArgument, "card_number", "card-number pay takes this bank's cards only; use quick pay for other banks' cards")
	}
	if err := s.cus.VerifyPayPassword(ctx, card.CustomerID, payPassword); err != nil {
		return Result{}, err
	}
	payer := payment.Payer{Method: string(customer.MethodCardNumber), CustomerID: card.CustomerID, CardID: card.ID}
	o, at, err := s.pay.PayFromAccount(ctx, orderID, payer, card.AccountID, s.authorize(payer, nil))
	if err != nil {
		return Result{}, err
	}
	return Result{Outcome: Paid, OrderID: o.ID, AttemptID: at.ID}, nil
}

// BalancePay pays the order from the logged-in customer's account balance,
// confirmed with the payment password. Errors: as CardPay, with
// CodeInsufficientFunds when the balance is short.
func (s *Service) BalancePay(ctx context.Context, orderID, customerID, payPassword string) (Result, error) {
	if _, err := s.Order(ctx, orderID, customer.MethodBalance); err != nil {
		return Result{}, err
	}
	if err := s.cus.VerifyPayPassword(ctx, customerID, payPassword); err != nil {
		return Result{}, err
	}
	payer := payment.Payer{Method: string(customer.MethodBalance), CustomerID: customerID}
	o, at, err := s.pay.PayFromAccount(ctx, orderID, payer, s.cus.BalanceAccount(customerID), s.authorize(payer, nil))
	if err != nil {
		return Result{}, err
	}
	return Result{Outcome: Paid, OrderID: o.ID, AttemptID: at.ID}, nil
}

// OnlineBanking starts an online-banking payment of the order: the payer
// continues at the bank's pages (Result.RedirectURL), where the bank
// checks the login, the card and its limits; the result arrives by the
// bank's callback. Errors: Order's errors; CodeUnavailable when no
// online-banking channel is configured.
func (s *Service) OnlineBanking(ctx context.Context, orderID string) (Result, error) {
	if _, err := s.Order(ctx, orderID, customer.MethodOnlineBanking); err != nil {
		return Result{}, err
	}
	if s.cfg.OnlineBanking == "" {
		return Result{}, paygate.E(paygate.CodeUnavailable, "online banking is not available")
	}
	at, err := s.pay.PayThrough(ctx, orderID, s.cfg.OnlineBanking, payment.Payer{Method: string(customer.MethodOnlineBanking)}, "", nil)
	if err != nil {
		return Result{}, err
	}
	if at.RedirectURL == "" {
		return Result{}, paygate.E(paygate.CodeUnavailable, "the bank did not start the online-banking session")
	}
	return Result{Outcome: Redirect, OrderID: orderID, AttemptID: at.ID, RedirectURL: at.RedirectURL}, nil
}

// authorize returns the payment.Authorize of a checkout payment: it runs
// extra (consume the code) and reserves the payer's limits for the order's
// amount on today's business day, inside the payment's transaction.
func (s *Service) authorize(p payment.Payer, extra func(ctx context.Context, tx Tx) error) payment.Authorize {
	return func(ctx context.Context, ptx payment.Tx, o payment.Order) (paygate.Date, error) {
		tx, ok := ptx.(Tx)
		if !ok {
			return "", errors.New("checkout: the store's transaction is not a checkout transaction")
		}
		if o.Amount.Currency != s.cus.Limits().Currency {
			return "", paygate.E(paygate.CodeCurrencyMismatch, "cards and balances pay in %s only", s.cus.Limits().Currency)
		}
		if extra != nil {
			if err := extra(ctx, tx); err != nil {
				return "", err
			}
		}
		day := s.cal.AccountingDate(s.clock.Now())
		if _, err := s.cus.Reserve(ctx, tx, p.CustomerID, p.CardID, customer.Method(p.Method), o.Amount.Total, day); err != nil {
			return "", err
		}
		return day, nil
	}
}

// ReleaseFailed gives back the limit usage of a checkout payment that
// failed (payment.Config.AttemptFailed), inside the transaction that marks
// it FAILED.
func (s *Service) ReleaseFailed(ctx context.Context, ptx payment.Tx, a payment.Attempt) error {
	tx, ok := ptx.(customer.Tx)
	if !ok {
		return errors.New("checkout: the store's transaction is not a customer transaction")
	}
	return s.cus.Release(ctx, tx, customer.Reservation{CustomerID: a.Payer.CustomerID, CardID: a.Payer.CardID,
		Method: customer.Method(a.Payer.Method), Amount: a.Amount, Day: a.LimitDay})
}
