package netbank

import (
	"bytes"
	"embed"
	"fmt"
	"html/template"
	"io/fs"
	"net/http"
	"strconv"
	"strings"
	"time"

	"paygate"
)

//go:embed templates/*.html
var templateFS embed.FS

//go:embed static
var staticFS embed.FS

// assetVersion busts caches of the stylesheet when it changes.
const assetVersion = "1"

// staticPrefix is where the bank's stylesheet is served.
const staticPrefix = "/sandbox/bank/static/"

// pages are the parsed templates: each page with the layout.
type pages struct {
	sets map[string]*template.Template
}

func parsePages() (*pages, http.Handler, error) {
	base, err := template.New("layout.html").Funcs(template.FuncMap{
		"asset": func(name string) string { return staticPrefix + name + "?v=" + assetVersion },
	}).ParseFS(templateFS, "templates/layout.html")
	if err != nil {
		return nil, nil, fmt.Errorf("netbank: parse layout: %w", err)
	}
	p := &pages{sets: map[string]*template.Template{}}
	for _, n := range []string{"login", "confirm", "message"} {
		t, err := template.Must(base.Clone()).ParseFS(templateFS, "templates/"+n+".html")
		if err != nil {
			return nil, nil, fmt.Errorf("netbank: parse %s: %w", n, err)
		}
		p.sets[n] = t
	}
	sub, err := fs.Sub(staticFS, "static")
	if err != nil {
		return nil, nil, err
	}
	return p, http.StripPrefix(staticPrefix, http.FileServerFS(sub)), nil
}

// view is the data of every page.
type view struct {
	Title string
	Bank  string

	// The payment, as the bank shows it.
	Amount      string
	Currency    string
	Description string
	Reference   string // the attempt id: the bank's "merchant order number"
	TimeLeft    string

	// Forms.
	LoginAction, ConfirmAction, CancelAction string
	CSRFToken                                string
	Login                                    string // the login typed, kept after a wrong password (never the password)
	Error                                    string
	Token                                    string // the login token of the confirmation step

	// The confirmation step.
	Customer  string // who is logged in, masked
	Cards     []cardView
	Payable   bool // at least one card can pay
	OnlineOff bool

	// Message pages.
	Detail   string
	BackURL  string // to the merchant
	BackText string
	RetryURL string // to the login page
}

// cardView is one card on the confirmation page: masked number only.
type cardView struct {
	ID, Kind, Number, Balance, Note string
	Disabled, Checked               bool
}

// render writes the page with data (its Title and Bank set) under the
// security headers; formTargets are the origins its forms may be
// redirected to. It renders into a buffer first, so a template error
// answers a plain 500 and never half a page.
func (b *Bank) render(w http.ResponseWriter, status int, page string, v *view, formTargets []string) {
	secure(w, formTargets)
	v.Bank = BankName
	var buf bytes.Buffer
	if err := b.pages.sets[page].ExecuteTemplate(&buf, "layout.html", v); err != nil {
		b.log.Error("netbank: render", "template", page, "error", err)
		http.Error(w, "Something went wrong. Please try again.", http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("Content-Length", strconv.Itoa(buf.Len()))
	w.WriteHeader(status)
	w.Write(buf.Bytes())
}

// formatAmount renders minor units for people: the currency's decimals
// and thousands separated by commas ("1,000,000.00"); integers only.
func formatAmount(minor int64, c paygate.Currency) string {
	s := paygate.FormatMinor(minor, c.Exponent())
	sign := ""
	if strings.HasPrefix(s, "-") {
		sign, s = "-", s[1:]
	}
	whole, frac, hasFrac := strings.Cut(s, ".")
	var sb strings.Builder
	for i, d := range whole {
		if i > 0 && (len(whole)-i)%3 == 0 {
			sb.WriteByte(',')
		}
		sb.WriteRune(d)
	}
	if hasFrac {
		return sign + sb.String() + "." + frac
	}
	return sign + sb.String()
}

// timeLeft renders the time a session has left, rounded down to minutes.
func timeLeft(d time.Duration) string {
	switch m := int(d / time.Minute); {
	case d < time.Minute:
		return "less than a minute"
	case m == 1:
		return "1 minute"
	default:
		return strconv.Itoa(m) + " minutes"
	}
}

// sentence capitalises a safe error message for a page.
func sentence(msg string) string {
	if msg == "" {
		return msg
	}
	msg = strings.ToUpper(msg[:1]) + msg[1:]
	if !strings.HasSuffix(msg, ".") {
		msg += "."
	}
	return msg
}
