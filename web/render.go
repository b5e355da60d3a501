package web

import (
	"bytes"
	"fmt"
	"html/template"
	"net/http"
	"strconv"
	"strings"
	"time"

	"paygate"
	"paygate/payment"
)

// assetVersion busts caches of the static files when they change.
const assetVersion = "2-htmx2.0.11"

// pages are the parsed templates, one set per page, each with the shared
// layout and partials.
type pages struct {
	sets map[string]*template.Template
}

// parsePages parses the embedded templates: layout.html and the partials
// (_*.html) with each page (every other file).
func parsePages() (*pages, error) {
	entries, err := templateFS.ReadDir("templates")
	if err != nil {
		return nil, err
	}
	base := template.New("layout.html").Funcs(template.FuncMap{
		"asset": func(name string) string { return "/static/" + name + "?v=" + assetVersion },
		// methodForm pairs the page's data with one method, for the
		// method-form template.
		"methodForm": func(v checkoutView, name string) methodFormData { return methodFormData{View: v, Name: name} },
	})
	shared := []string{"templates/layout.html"}
	var names []string
	for _, e := range entries {
		n := e.Name()
		switch {
		case n == "layout.html":
		case strings.HasPrefix(n, "_"):
			shared = append(shared, "templates/"+n)
		default:
			names = append(names, n)
		}
	}
	base, err = base.ParseFS(templateFS, shared...)
	if err != nil {
		return nil, fmt.Errorf("web: parse templates: %w", err)
	}
	p := &pages{sets: map[string]*template.Template{}}
	for _, n := range names {
		t, err := template.Must(base.Clone()).ParseFS(templateFS, "templates/"+n)
		if err != nil {
			return nil, fmt.Errorf("web: parse %s: %w", n, err)
		}
		p.sets[strings.TrimSuffix(n, ".html")] = t
	}
	return p, nil
}

// render writes the page (or fragment) name with data. It renders into a
// buffer first, so a template error answers a plain 500 and never half a
// page.
func (h *Handler) render(w http.ResponseWriter, status int, name string, data any) {
	secure(w, true)
	entry := "layout.html"
	set := h.pages.sets[name]
	if set == nil { // a fragment: defined in a partial, executed alone
		set, entry = h.pages.sets["checkout"], name
	}
	var buf bytes.Buffer
	if err := set.ExecuteTemplate(&buf, entry, data); err != nil {
		h.log.Error("web: render", "template", name, "error", err)
		http.Error(w, "Something went wrong. Please try again.", http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("Content-Length", strconv.Itoa(buf.Len()))
	w.WriteHeader(status)
	w.Write(buf.Bytes())
}

// errorPage is the data of the not-found and error pages.
type errorPage struct {
	Title string
}

// State is what the checkout shows for an order.
type State string

// The checkout states.
const (
	StateOpen        State = "open"        // payable: methods shown
	StatePaid        State = "paid"        // paid: return to the merchant
	StateClosed      State = "closed"      // closed by the merchant
	StateExpired     State = "expired"     // time_expire passed
	StateUnavailable State = "unavailable" // the merchant cannot take payments
	StateProcessing  State = "processing"  // another bank is processing a card payment
)

// checkoutView is the data of the checkout page and its status fragment.
type checkoutView struct {
	Title        string
	Order        payment.CheckoutOrder
	Amount       string // formatted from minor units
	Currency     string
	State        State
	TimeLeft     string
	ExpireAt     string // RFC 3339, for <time datetime>
	ExpireText   string
	Methods      []methodView // the methods listed, mobile_qr excepted
	QR           *methodView  // mobile_qr, when allowed and a checkout URL is known
	CSRFToken    string
	PollEvery    string // htmx trigger, "every 2s"
	Fragment     bool   // rendering the polled fragment (out-of-band swaps)
	StatusTitle  string
	StatusDetail string
	// Active is the method whose form is open (after a POST, or ?method=);
	// Message is its refusal, for the payer.
	Active  string
	Message string
	// Challenge is quick pay's one-time code step.
	Challenge *challengeView
	// Customer is the logged-in customer of balance pay.
	Customer *customerView
}

// methodFormData is what the method-form template renders.
type methodFormData struct {
	View checkoutView
	Name string
}

// challengeView is the code step of quick pay: masked values only.
type challengeView struct {
	CardID, Card, Bank, Phone, Expires string
	Bound                              bool
	// Retry: the code was wrong; the card details are not shown again.
	Retry bool
}

// customerView is the logged-in customer as the balance method shows them.
type customerView struct {
	Name, Login, Balance string
	PayPasswordSet       bool
}

// Checkout method names as the templates use them.
const (
	methodQuickPay      = payment.MethodQuickPay
	methodCardPay       = payment.MethodCardPay
	methodOnlineBanking = payment.MethodOnlineBanking
	methodBalance       = payment.MethodBalance
)

// methodView is one payment method as the page lists it.
type methodView struct {
	Name, Title, Blurb string
	// Ready: the method works; otherwise it shows "coming soon".
	Ready bool
}

// methodTexts are the checkout methods' titles and one-line descriptions.
var methodTexts = map[string][2]string{
	payment.MethodQuickPay:      {"Quick pay", "Bank card, holder name, ID number and phone, confirmed with an SMS code."},
	payment.MethodCardPay:       {"Card number and payment password", "For cards without online banking."},
	payment.MethodOnlineBanking: {"Online banking", "Log in to your bank's online banking and confirm there."},
	payment.MethodMobileQR:      {"Pay on your phone", "Scan the QR code with your phone's camera to open this order there."},
	payment.MethodBalance:       {"Account balance", "Log in and pay from your paygate account."},
}

// ready reports whether method m works with this handler's configuration.
func (h *Handler) ready(m string) bool {
	switch m {
	case payment.MethodMobileQR:
		return true
	case payment.MethodBalance:
		return h.balanceReady()
	}
	return h.cfg.Checkout != nil
}

// view builds the page data of an order at the handler's clock.
func (h *Handler) view(o payment.CheckoutOrder) checkoutView {
	now := h.clock.Now()
	v := checkoutView{
		Title: "Pay " + o.MerchantName, Order: o, Currency: string(o.Currency),
		Amount:    FormatAmount(o.Total, o.Currency),
		ExpireAt:  o.TimeExpire.UTC().Format(time.RFC3339),
		PollEvery: "every " + strconv.FormatInt(int64(h.cfg.PollInterval/time.Millisecond), 10) + "ms",
	}
	switch {
	case o.Status == payment.StatusSuccess || o.Status == payment.StatusRefund:
		v.State, v.StatusTitle, v.StatusDetail = StatePaid, "Paid", "Payment received. Thank you!"
	case o.Expired(now):
		v.State, v.StatusTitle, v.StatusDetail = StateExpired, "Expired", "This order has expired and can no longer be paid. Please place the order again at the merchant."
	case o.Status == payment.StatusClosed:
		v.State, v.StatusTitle, v.StatusDetail = StateClosed, "Closed", "The merchant has closed this order; it can no longer be paid."
	case !o.Payable(now):
		v.State, v.StatusTitle, v.StatusDetail = StateUnavailable, "Unavailable", "This merchant cannot take payments at the moment. Please try again later."
	case o.InProgress != "":
		v.State, v.StatusTitle = StateProcessing, "Payment in progress"
		v.StatusDetail = "Your card's bank is processing the payment. This page updates by itself when it is done; please do not pay again."
	default:
		v.State, v.StatusTitle = StateOpen, "Awaiting payment"
		v.TimeLeft = TimeLeft(o.TimeExpire.Sub(now))
		v.StatusDetail = "Choose a payment method below."
		if o.Status == payment.StatusPayError {
			v.StatusDetail = "The last payment attempt failed. You may try again."
		}
		for _, m := range o.Methods {
			t := methodTexts[m]
			mv := methodView{Name: m, Title: t[0], Blurb: t[1], Ready: h.ready(m)}
			switch {
			case m != payment.MethodMobileQR:
				v.Methods = append(v.Methods, mv)
			case o.CheckoutURL != "":
				v.QR = &mv
			}
		}
	}
	v.ExpireText = o.TimeExpire.In(shanghai).Format("2006-01-02 15:04") + " Beijing time"
	return v
}

// FormatAmount renders an amount of minor units for people: the
// currency's decimals (paygate.FormatMinor, integers only) and thousands
// separated by commas: 100000000 CNY is "1,000,000.00", 1234 JPY "1,234".
func FormatAmount(minor int64, c paygate.Currency) string {
	s := paygate.FormatMinor(minor, c.Exponent())
	sign := ""
	if strings.HasPrefix(s, "-") {
		sign, s = "-", s[1:]
	}
	whole, frac, hasFrac := strings.Cut(s, ".")
	var b strings.Builder
	for i, d := range whole {
		if i > 0 && (len(whole)-i)%3 == 0 {
			b.WriteByte(',')
		}
		b.WriteRune(d)
	}
	if hasFrac {
		return sign + b.String() + "." + frac
	}
	return sign + b.String()
}

// TimeLeft renders a remaining duration, rounded down, for people:
// "2 d 3 h", "1 h 05 min", "4 min 09 s", "42 s"; "0 s" when none is left.
func TimeLeft(d time.Duration) string {
	if d < time.Second {
		return "0 s"
	}
	days, hours := d/(24*time.Hour), (d%(24*time.Hour))/time.Hour
	mins, secs := (d%time.Hour)/time.Minute, (d%time.Minute)/time.Second
	switch {
	case days > 0:
		return fmt.Sprintf("%d d %d h", days, hours)
	case hours > 0:
		return fmt.Sprintf("%d h %02d min", hours, mins)
	case mins > 0:
		return fmt.Sprintf("%d min %02d s", mins, secs)
	}
	return fmt.Sprintf("%d s", secs)
}
