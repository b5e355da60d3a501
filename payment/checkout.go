package payment

import (
	"context"
	"time"

	"paygate"
	"paygate/channel"
)

// Payment methods the hosted checkout offers, as named in an order's
// payment_methods (an order without any allows them all).
const (
	MethodQuickPay      = "quick_pay"      // card details verified + SMS one-time code
	MethodCardPay       = "card_pay"       // card number + payment password
	MethodOnlineBanking = "online_banking" // redirect to the bank's online banking
	MethodMobileQR      = "mobile_qr"      // open the order on a phone by its QR code
	MethodBalance       = "balance"        // a logged-in customer's account balance
)

// CheckoutMethods lists the checkout's payment methods in the order the
// page shows them.
var CheckoutMethods = []string{MethodQuickPay, MethodCardPay, MethodOnlineBanking, MethodMobileQR, MethodBalance}

// maxOrderIDLen bounds an order id taken from a URL before it reaches the
// database; real ids are "ord_" + a 32-digit UUID.
const maxOrderIDLen = 64

// CheckoutOrder is what the payer may see of an order on the hosted
// checkout page: never the merchant's notify_url, attach, metadata,
// out_trade_no or fee.
type CheckoutOrder struct {
	ID           string
	MerchantName string
	Description  string
	Total        int64
	Currency     paygate.Currency
	Status       Status
	TimeExpire   time.Time
	// ReturnURL is where the payer goes back to the merchant ("" for none).
	ReturnURL string
	// Methods are the checkout methods the order allows, in
	// CheckoutMethods order (all of them when the order names none).
	Methods     []string
	SuccessTime time.Time
	CloseReason string
	Sandbox     bool
	// MerchantCanTransact is false when the merchant is suspended or
	// closed: the order cannot be paid.
	MerchantCanTransact bool
	// InProgress names the checkout method of a card payment in flight
	// (sent to another bank, awaiting its result): the page says so and
	// offers no second payment. "" when none.
	InProgress string
	// CheckoutURL is the page itself (Config.CheckoutBaseURL + id), the
	// payload of the QR code that opens it on a phone; "" when no base URL
	// is configured.
	CheckoutURL string
}

// Payable reports whether the order may be paid at now: open, not expired
// (even before the expiry job closes it) and its merchant may transact.
func (c CheckoutOrder) Payable(now time.Time) bool {
	return c.Status.Open() && now.Before(c.TimeExpire) && c.MerchantCanTransact
}

// Expired reports whether the order is closed by expiry, or open with its
// time_expire passed.
func (c CheckoutOrder) Expired(now time.Time) bool {
	return (c.Status == StatusClosed && c.CloseReason == CloseExpired) || (c.Status.Open() && !now.Before(c.TimeExpire))
}

// CheckoutView returns the order with the id as the payer may see it. It
// is not scoped to a merchant: whoever knows an order's id (the unguessable
// id in its checkout URL) may see this much of it. Errors: CodeNotFound.
func (s *Service) CheckoutView(ctx context.Context, orderID string) (CheckoutOrder, error) {
	if len(orderID) > maxOrderIDLen || len(orderID) <= len(paygate.PrefixOrder) || orderID[:len(paygate.PrefixOrder)] != paygate.PrefixOrder {
		return CheckoutOrder{}, paygate.E(paygate.CodeNotFound, "order not found")
	}
	o, err := s.store.OrderByID(ctx, orderID)
	if err != nil {
		return CheckoutOrder{}, err
	}
	m, err := s.mchs.Merchant(ctx, o.MerchantID)
	if err != nil {
		return CheckoutOrder{}, err
	}
	c := CheckoutOrder{
		ID: o.ID, MerchantName: m.Name, Description: o.Description, Total: o.Amount.Total, Currency: o.Amount.Currency,
		Status: o.Status, TimeExpire: o.TimeExpire, ReturnURL: o.ReturnURL, SuccessTime: o.SuccessTime,
		CloseReason: o.CloseReason, Sandbox: o.Sandbox, MerchantCanTransact: m.Status.CanTransact(),
		Methods: allowedMethods(o.PaymentMethods),
	}
	if o.CaptureMethod == CaptureManual {
		c.Methods = authorizingMethods(c.Methods)
	}
	if o.Status == StatusAuthorized {
		// To the payer an authorized order is paid: the money left their
		// account (held); capturing or voiding it is the merchant's affair.
		c.Status, c.SuccessTime = StatusSuccess, o.AuthorizeTime
	}
	if s.cfg.CheckoutBaseURL != "" {
		c.CheckoutURL = s.cfg.CheckoutBaseURL + o.ID
	}
	if o.Status.Open() {
		as, err := s.store.OrderAttempts(ctx, o.ID)
		if err != nil {
			return CheckoutOrder{}, err
		}
		for _, a := range as {
			if a.Status == channel.StatusProcessing && a.Payer.Method != "" && a.Payer.Method != AwaitingPayer {
				c.InProgress = a.Payer.Method
			}
		}
	}
	return c, nil
}

// allowedMethods returns the checkout methods an order's payment_methods
// allow: all when it names none, else the known names it lists.
func allowedMethods(names []string) []string {
	if len(names) == 0 {
		return append([]string(nil), CheckoutMethods...)
	}
	want := map[string]bool{}
	for _, n := range names {
		want[n] = true
	}
	var out []string
	for _, m := range CheckoutMethods {
		if want[m] {
			out = append(out, m)
		}
	}
	return out
}
