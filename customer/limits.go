package customer

import (
	"context"
	"fmt"
	"math"
	"slices"

	"paygate"
)

// Method is a way of paying at the checkout; each may have its own limits.
type Method string

// Payment methods.
const (
	MethodQuickPay      Method = "QUICK_PAY"      // card + holder details + one-time code, or a bound card
	MethodCardNumber    Method = "CARD_NUMBER"    // own-bank card number + payment password
	MethodOnlineBanking Method = "ONLINE_BANKING" // the bank's online-banking login and confirmation
	MethodBalance       Method = "BALANCE"        // the customer's account balance
	// MethodTransfer is a customer's transfer from the balance account to
	// another customer or a card (package transfer); like BALANCE it takes
	// no card, and it counts in the customer's daily limit.
	MethodTransfer Method = "TRANSFER"
)

// Valid reports whether m is a known method.
func (m Method) Valid() bool {
	return m == MethodQuickPay || m == MethodCardNumber || m == MethodOnlineBanking || m == MethodBalance || m == MethodTransfer
}

// cardless reports whether m pays from the balance account, without a card.
func (m Method) cardless() bool { return m == MethodBalance || m == MethodTransfer }

// Cap is a pair of limits in minor units: the most one payment may be
// (Single) and the most a business day's payments may add up to (Daily).
// Zero means no limit of its own.
type Cap struct {
	Single int64 `json:"single"`
	Daily  int64 `json:"daily"`
}

// Limits are the payment limits, in minor units of Currency. A payment
// must fit every one that applies: the customer's daily limit by
// verification strength, its method's caps, and its card's caps.
type Limits struct {
	Currency paygate.Currency `json:"currency"`
	// Basic is the daily limit of a customer with fewer than two
	// verification factors; Strong with two or more but no certificate;
	// Certificate with two or more including a certificate.
	Basic       int64 `json:"basic"`
	Strong      int64 `json:"strong"`
	Certificate int64 `json:"certificate"`
	// Methods caps each method per customer.
	Methods map[Method]Cap `json:"methods"`
	// OwnCard and OtherCard are the default caps of each card of the
	// institution and of other banks; a card's own positive limits
	// replace them.
	OwnCard   Cap `json:"own_card"`
	OtherCard Cap `json:"other_card"`
}

// DefaultLimits returns the default limits (CNY): 1,000 a day below two
// factors, 5,000 with two or more, 50,000 with a certificate; card-number
// pay 500 a payment and 1,000 a day, below quick pay (5,000 and 5,000) and
// online banking (50,000 and 50,000); transfers 50,000 and 50,000; own
// cards 50,000/50,000, other banks' cards 5,000/5,000.
func DefaultLimits() Limits {
	return Limits{
		Currency: "CNY",
		Basic:    100_000, Strong: 500_000, Certificate: 5_000_000,
		Methods: map[Method]Cap{
			MethodCardNumber:    {Single: 50_000, Daily: 100_000},
			MethodQuickPay:      {Single: 500_000, Daily: 500_000},
			MethodOnlineBanking: {Single: 5_000_000, Daily: 5_000_000},
			MethodBalance:       {},
			MethodTransfer:      {Single: 5_000_000, Daily: 5_000_000},
		},
		OwnCard:   Cap{Single: 5_000_000, Daily: 5_000_000},
		OtherCard: Cap{Single: 500_000, Daily: 500_000},
	}
}

// Validate checks the limits are consistent: a known currency, 0 < Basic
// <= Strong <= Certificate, no negative cap, known methods, and card-number
// pay capped below online-banking pay. Errors: CodeInvalidArgument.
func (l Limits) Validate() error {
	bad := func(format string, args ...any) error {
		return paygate.E(paygate.CodeInvalidArgument, "customer limits: "+format, args...)
	}
	if !l.Currency.Valid() {
		return bad("unknown currency")
	}
	if l.Basic <= 0 || l.Strong < l.Basic || l.Certificate < l.Strong {
		return bad("need 0 < basic <= strong <= certificate")
	}
	caps := []Cap{l.OwnCard, l.OtherCard}
	for m, c := range l.Methods {
		if !m.Valid() {
			return bad("unknown method %q", m)
		}
		caps = append(caps, c)
	}
	for _, c := range caps {
		if c.Single < 0 || c.Daily < 0 {
			return bad("caps must not be negative")
		}
	}
	cn, ob := l.Methods[MethodCardNumber], l.Methods[MethodOnlineBanking]
	if cn.Daily == 0 || (ob.Daily != 0 && cn.Daily >= ob.Daily) || cn.Single == 0 || (ob.Single != 0 && cn.Single >= ob.Single) {
		return bad("card-number pay must be capped below online-banking pay")
	}
	return nil
}

// CustomerDaily returns the daily limit of a customer with factors f.
func (l Limits) CustomerDaily(f Factors) int64 {
	switch {
	case f.Count() < 2:
		return l.Basic
	case f.Has(FactorCertificate):
		return l.Certificate
	default:
		return l.Strong
	}
}

// CardCap returns the caps of card c: its own positive limits, else its
// kind's default.
func (l Limits) CardCap(c Card) Cap {
	d := l.OwnCard
	if !c.Kind.OwnBank() {
		d = l.OtherCard
	}
	if c.SingleLimit > 0 {
		d.Single = c.SingleLimit
	}
	if c.DailyLimit > 0 {
		d.Daily = c.DailyLimit
	}
	return d
}

// Limit names one of the limits a payment must fit.
type Limit string

// The limits Reserve enforces.
const (
	LimitCustomerDaily Limit = "CUSTOMER_DAILY" // by verification strength
	LimitMethodSingle  Limit = "METHOD_SINGLE"
	LimitMethodDaily   Limit = "METHOD_DAILY"
	LimitCardSingle    Limit = "CARD_SINGLE"
	LimitCardDaily     Limit = "CARD_DAILY"
)

var limitText = map[Limit]string{
	LimitCustomerDaily: "your daily payment limit",
	LimitMethodSingle:  "the single-payment limit of this payment method",
	LimitMethodDaily:   "the daily limit of this payment method",
	LimitCardSingle:    "this card's single-payment limit",
	LimitCardDaily:     "this card's daily limit",
}

// LimitError is the cause (errors.As) of a CodeLimitExceeded refusal: which
// limit, and its value in minor units.
type LimitError struct {
	Limit Limit
	Max   int64
}

// Error names the limit.
func (e *LimitError) Error() string { return fmt.Sprintf("limit %s of %d exceeded", e.Limit, e.Max) }

func (l Limits) exceeded(which Limit, max int64) error {
	return &paygate.Error{Code: paygate.CodeLimitExceeded, Field: "amount",
		Message: "the amount exceeds " + limitText[which] + " (" + paygate.Money{Amount: max, Currency: l.Currency}.String() + ")",
		Err:     &LimitError{Limit: which, Max: max}}
}

// Reservation is limit usage recorded by Reserve; Release gives it back.
type Reservation struct {
	CustomerID string       `json:"customer_id"`
	CardID     string       `json:"card_id,omitempty"`
	Method     Method       `json:"method"`
	Amount     int64        `json:"amount"`
	Day        paygate.Date `json:"day"`
}

// usage is one scope's daily usage row and the limit it counts against.
type usage struct {
	scope string
	which Limit
}

// scopes returns the usage rows a reservation touches, in the one fixed
// order every transaction locks them in (so none deadlock).
func (r Reservation) scopes() []usage {
	out := []usage{
		{scope: "cus:" + r.CustomerID, which: LimitCustomerDaily},
		{scope: "cus:" + r.CustomerID + ":" + string(r.Method), which: LimitMethodDaily},
	}
	if r.CardID != "" {
		out = append(out, usage{scope: "card:" + r.CardID, which: LimitCardDaily})
	}
	slices.SortFunc(out, func(a, b usage) int {
		switch {
		case a.scope < b.scope:
			return -1
		case a.scope > b.scope:
			return 1
		}
		return 0
	})
	return out
}

// UsageScopes returns the usage scopes a reservation of the customer's
// method and card counts against, for reports and tests.
func UsageScopes(customerID, cardID string, m Method) []string {
	var out []string
	for _, u := range (Reservation{CustomerID: customerID, CardID: cardID, Method: m}).scopes() {
		out = append(out, u.scope)
	}
	return out
}

func orMax(v int64) int64 {
	if v <= 0 {
		return math.MaxInt64
	}
	return v
}

// Reserve checks a payment of amount (minor units of the limits' currency)
// by the customer with method and card (cardID "" for BALANCE and
// TRANSFER) against
// every limit, and records it in that business day's usage inside the
// caller's transaction tx, so the usage commits or rolls back with the
// payment. Limits are the one place they are enforced: exactly at a limit
// is allowed, one minor unit over is refused; concurrent reservations
// never overshoot a daily limit (each usage row is raised by one
// conditional upsert). CARD_NUMBER and ONLINE_BANKING take own-bank cards
// only. On a refusal nothing is left recorded.
//
// Errors: CodeAmountNotPositive, CodeInvalidArgument (bad method, day, or
// card for the method), CodeNotFound (no such customer, or the card is
// missing or another customer's), CodeForbidden (customer not active,
// online payment off, card frozen or closed), CodeLimitExceeded with a
// *LimitError cause naming the limit.
func (s *Service) Reserve(ctx context.Context, tx Tx, customerID, cardID string, method Method, amount int64, day paygate.Date) (Reservation, error) {
	if err := paygate.CheckAmount("amount", amount, 0); err != nil {
		return Reservation{}, err
	}
	if !method.Valid() {
		return Reservation{}, paygate.EField(paygate.CodeInvalidArgument, "method", "unknown payment method")
	}
	if _, err := paygate.ParseDate(string(day)); err != nil {
		return Reservation{}, err
	}
	if method.cardless() != (cardID == "") {
		return Reservation{}, paygate.EField(paygate.CodeInvalidArgument, "card_id", "a card is needed for every method but BALANCE and TRANSFER")
	}
	cust, err := tx.CustomerInTx(ctx, customerID)
	if err != nil {
		return Reservation{}, err
	}
	if cust.Status != StatusActive {
		return Reservation{}, paygate.E(paygate.CodeForbidden, "this customer account is not active")
	}
	if !cust.OnlinePayment {
		return Reservation{}, paygate.E(paygate.CodeForbidden, "online payment is turned off for this customer")
	}
	l := s.limits
	mc := l.Methods[method]
	var cc Cap
	if cardID != "" {
		card, err := tx.CardInTx(ctx, cardID)
		if card, err = ownCard(card, err, customerID); err != nil {
			return Reservation{}, err
		}
		if card.Status != StatusActive {
			return Reservation{}, paygate.E(paygate.CodeForbidden, "the card was declined: it is %s", map[Status]string{StatusFrozen: "frozen", StatusClosed: "closed"}[card.Status])
		}
		if (method == MethodCardNumber || method == MethodOnlineBanking) && !card.Kind.OwnBank() {
			return Reservation{}, paygate.EField(paygate.CodeInvalidArgument, "method", "this payment method takes the institution's own cards only")
		}
		cc = l.CardCap(card.Card)
	}
	if mc.Single > 0 && amount > mc.Single {
		return Reservation{}, l.exceeded(LimitMethodSingle, mc.Single)
	}
	if cc.Single > 0 && amount > cc.Single {
		return Reservation{}, l.exceeded(LimitCardSingle, cc.Single)
	}
	r := Reservation{CustomerID: customerID, CardID: cardID, Method: method, Amount: amount, Day: day}
	limits := map[Limit]int64{LimitCustomerDaily: l.CustomerDaily(cust.Factors), LimitMethodDaily: orMax(mc.Daily), LimitCardDaily: orMax(cc.Daily)}
	scopes := r.scopes()
	for i, u := range scopes {
		max := limits[u.which]
		ok := amount <= max
		if ok {
			if ok, err = tx.AddUsage(ctx, u.scope, day, amount, max); err != nil {
				return Reservation{}, err
			}
		}
		if !ok {
			for _, done := range scopes[:i] {
				if err := tx.SubUsage(ctx, done.scope, day, amount); err != nil {
					return Reservation{}, err
				}
			}
			return Reservation{}, l.exceeded(u.which, max)
		}
	}
	return r, nil
}

// Release gives a reservation's usage back inside the caller's
// transaction, for a payment that failed or was cancelled. The caller
// releases a reservation at most once (its payment's state machine
// resolves once); usage never drops below zero.
func (s *Service) Release(ctx context.Context, tx Tx, r Reservation) error {
	for _, u := range r.scopes() {
		if err := tx.SubUsage(ctx, u.scope, r.Day, r.Amount); err != nil {
			return err
		}
	}
	return nil
}

// Usage reports what the customer has used on day in total, with method m
// and, when cardID is set, with that card: the figures Reserve compares
// with the limits.
type Usage struct {
	Customer int64 `json:"customer"`
	Method   int64 `json:"method"`
	Card     int64 `json:"card"`
}

// UsageOn returns the customer's usage on day. Errors: CodeInvalidArgument.
func (s *Service) UsageOn(ctx context.Context, customerID, cardID string, m Method, day paygate.Date) (Usage, error) {
	var u Usage
	var err error
	if u.Customer, err = s.store.Usage(ctx, "cus:"+customerID, day); err != nil {
		return u, err
	}
	if u.Method, err = s.store.Usage(ctx, "cus:"+customerID+":"+string(m), day); err != nil {
		return u, err
	}
	if cardID != "" {
		u.Card, err = s.store.Usage(ctx, "card:"+cardID, day)
	}
	return u, err
}
