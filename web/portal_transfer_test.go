package web_test

import (
	"bytes"
	"context"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"paygate"
	"paygate/channel/sim"
	"paygate/customer"
	"paygate/ledger"
	"paygate/sealing"
	"paygate/store"
	"paygate/store/storetest"
	"paygate/transfer"
	"paygate/web"
)

// Sandbox payment passwords (docs/CUSTOMERS.md).
const (
	wangPIN      = "135790"
	lisiPIN      = "246801"
	lisiCard     = "6288880000000054"
	wangFrozen   = "6288880000000039"
	otherBankNo  = "6299990000000066"
	luhnBadCard  = "6288880000000055"
	transferPage = "/portal/transfer"
)

// transferEnv is the portal with its transfer pages over real customer
// and transfer services, the sandbox customers seeded.
type transferEnv struct {
	*portalEnv
	transfers *transfer.Service
}

func newTransferEnv(t *testing.T, db *store.DB) *transferEnv {
	t.Helper()
	ctx := context.Background()
	e := &portalEnv{db: db, clock: paygate.NewManualClock(t0), logs: &syncBuffer{}, seeded: map[string]customer.SeedResult{}}
	log := slog.New(slog.NewJSONHandler(e.logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	e.led = ledger.New(db.Ledger(), e.clock, paygate.DefaultCalendar())
	kr, err := sealing.ParseKeyring("AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=")
	require.NoError(t, err)
	idx, err := sealing.NewBlindIndex([]byte("a separate 32-byte blind index key!"))
	require.NoError(t, err)
	e.svc, err = customer.New(customer.Config{Store: db.Customers(), Books: e.led, Clock: e.clock, Keyring: kr, Index: idx,
		Verifier: customer.SimVerifier{}, Logger: log, Hash: customer.HashParams{Time: 1, Memory: 64, Threads: 1}})
	require.NoError(t, err)
	res, err := e.svc.Seed(ctx)
	require.NoError(t, err)
	for _, r := range res {
		e.seeded[r.Customer.Phone+r.Customer.Username] = r
	}
	payouts, err := sim.NewPayouts(sim.PayoutConfig{Clock: e.clock})
	require.NoError(t, err)
	ts, err := transfer.New(transfer.Config{Store: db.Transfers(), Customers: e.svc, Books: e.led, Clock: e.clock, Keyring: kr,
		Logger: log, Payouts: payouts, InterbankScenario: customer.SandboxInterbankOutcome})
	require.NoError(t, err)
	sessions, err := web.NewSessions(web.SessionConfig{Store: db.Sessions(), Clock: e.clock})
	require.NoError(t, err)
	portal, err := web.NewPortal(web.PortalConfig{Customers: e.svc, Sessions: sessions, Clock: e.clock, Logger: log,
		CSRFKey: bytes.Repeat([]byte("k"), 32)})
	require.NoError(t, err)
	mux := http.NewServeMux()
	web.Routes{portal, portal.Transfers(ts)}.Register(mux)
	e.srv = httptest.NewServer(mux)
	t.Cleanup(e.srv.Close)
	return &transferEnv{portalEnv: e, transfers: ts}
}

var requestIDRE = regexp.MustCompile(`name="request_id" value="([^"]+)"`)

// transferForm loads the form and returns its fields, csrf and request id
// included, with the given fields set.
func (b *browser) transferForm(fields url.Values) url.Values {
	b.t.Helper()
	resp, body := b.get(transferPage)
	require.Equal(b.t, http.StatusOK, resp.StatusCode, body)
	f := url.Values{"csrf_token": {csrfRE.FindStringSubmatch(body)[1]}, "request_id": {requestIDRE.FindStringSubmatch(body)[1]}}
	for k, v := range fields {
		f[k] = v
	}
	return f
}

func (e *transferEnv) rows(t *testing.T) int {
	t.Helper()
	var n int
	require.NoError(t, e.db.SQL.QueryRow(`SELECT COUNT(*) FROM customer_transfers`).Scan(&n))
	return n
}

func (e *transferEnv) balance(t *testing.T, login string) int64 {
	t.Helper()
	m, err := e.svc.Balance(context.Background(), e.seeded[login].Customer.ID)
	require.NoError(t, err)
	return m.Amount
}

// noSecrets checks a page shows no card number beyond its mask and no
// payment password.
func noSecrets(t *testing.T, body string, secrets ...string) {
	t.Helper()
	for _, s := range append(secrets, wangPIN, lisiPIN, lisiCard, wangFrozen, otherBankNo, luhnBadCard) {
		require.NotContains(t, body, s)
	}
}

func TestPortalTransferNeedsLoginAndCSRF(t *testing.T) {
	t.Parallel()
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		e := newTransferEnv(t, db)
		anon := e.browser(t)
		for _, p := range []string{transferPage, "/portal/transfers", "/portal/transfers/trf_x"} {
			resp, _ := anon.get(p)
			require.Equal(t, http.StatusSeeOther, resp.StatusCode, p)
			require.True(t, strings.HasPrefix(resp.Header.Get("Location"), "/portal/login?"), p)
		}
		resp, _ := anon.post(transferPage, url.Values{"to": {plainLogin}, "amount": {"1"}, "pay_password": {wangPIN}})
		require.Equal(t, http.StatusSeeOther, resp.StatusCode)

		wang, lisi := e.browser(t), e.browser(t)
		wang.login(wangLogin, sandboxPW)
		lisi.login(lisiLogin, sandboxPW)
		form := wang.transferForm(url.Values{"to": {plainLogin}, "amount": {"1.00"}, "pay_password": {wangPIN}})
		lisiToken := lisi.token(transferPage)
		anonToken := anon.token("/portal/login")
		for _, c := range []struct {
			name  string
			token string
			hdr   []string
		}{
			{"missing", "", nil},
			{"wrong", "x" + form.Get("csrf_token"), nil},
			{"anonymous", anonToken, nil},
			{"another customer's", lisiToken, nil},
			{"cross-site", form.Get("csrf_token"), []string{"Sec-Fetch-Site", "cross-site"}},
			{"cross-origin", form.Get("csrf_token"), []string{"Origin", "https://evil.example"}},
		} {
			f := url.Values{}
			for k, v := range form {
				f[k] = v
			}
			f.Set("csrf_token", c.token)
			resp, body := wang.post(transferPage, f, c.hdr...)
			require.Equal(t, http.StatusForbidden, resp.StatusCode, c.name)
			require.Contains(t, body, "Nothing was changed", c.name)
			noSecrets(t, body)
		}
		require.Zero(t, e.rows(t))
		require.Equal(t, int64(1_000_000), e.balance(t, wangLogin))
	})
}

func TestPortalTransferSends(t *testing.T) {
	t.Parallel()
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		e := newTransferEnv(t, db)
		wang := e.browser(t)
		wang.login(wangLogin, sandboxPW)
		resp, body := wang.get(transferPage)
		require.Equal(t, http.StatusOK, resp.StatusCode)
		require.Contains(t, body, `href="/portal/transfer" aria-current="page"`)
		require.Contains(t, body, "¥10,000.00")
		require.Contains(t, body, "Up to ¥5,000.00 a day")
		require.Equal(t, "no-store", resp.Header.Get("Cache-Control"))

		// To a customer by phone: 303 to the transfer, which both see.
		form := wang.transferForm(url.Values{"to": {"138 0000 0003"}, "amount": {"1,234.5"}, "memo": {"lunch <b>午饭</b>"},
			"pay_password": {wangPIN}})
		resp, body = wang.post(transferPage, form)
		require.Equal(t, http.StatusSeeOther, resp.StatusCode, body)
		loc := resp.Header.Get("Location")
		require.Regexp(t, `^/portal/transfers/trf_[0-9a-f]{32}\?sent=1$`, loc)
		id := strings.TrimSuffix(strings.TrimPrefix(loc, "/portal/transfers/"), "?sent=1")
		require.Equal(t, int64(1_000_000-123_450), e.balance(t, wangLogin))
		require.Equal(t, int64(50_000+123_450), e.balance(t, plainLogin))

		// The same form again (a double submit, a reload): the same
		// transfer, nothing more moved.
		resp, _ = wang.post(transferPage, form)
		require.Equal(t, http.StatusSeeOther, resp.StatusCode)
		require.Equal(t, loc, resp.Header.Get("Location"))
		require.Equal(t, int64(1_000_000-123_450), e.balance(t, wangLogin))
		require.Equal(t, 1, e.rows(t))

		resp, body = wang.get(loc)
		require.Equal(t, http.StatusOK, resp.StatusCode)
		require.Contains(t, body, "Transfer sent")
		require.Contains(t, body, "-¥1,234.50")
		require.Contains(t, body, "138****0003")
		require.Contains(t, body, "lunch &lt;b&gt;午饭&lt;/b&gt;")
		require.Contains(t, body, id)
		noSecrets(t, body)

		plain := e.browser(t)
		plain.login(plainLogin, sandboxPW)
		resp, body = plain.get("/portal/transfers")
		require.Equal(t, http.StatusOK, resp.StatusCode)
		require.Contains(t, body, "Transfer from *明 138****0001")
		require.Contains(t, body, "&#43;¥1,234.50")
		resp, body = plain.get("/portal/transfers/" + id)
		require.Equal(t, http.StatusOK, resp.StatusCode)
		require.Contains(t, body, "Transfer from *明 138****0001")
		require.NotContains(t, body, "Transfer sent")
		// Both parties' histories show it, linked to its page.
		for _, b := range []*browser{wang, plain} {
			resp, body = b.get("/portal/history")
			require.Equal(t, http.StatusOK, resp.StatusCode)
			require.Contains(t, body, `<a href="/portal/transfers/`+id+`">`+id+`</a>`)
		}

		// Another customer's session: 404, as an unknown id.
		lisi := e.browser(t)
		lisi.login(lisiLogin, sandboxPW)
		for _, p := range []string{"/portal/transfers/" + id, "/portal/transfers/trf_nope", "/portal/transfers/" + strings.Repeat("x", 100)} {
			resp, body = lisi.get(p)
			require.Equal(t, http.StatusNotFound, resp.StatusCode, p)
			require.NotContains(t, body, "1,234.50")
		}
		_, body = lisi.get("/portal/transfers")
		require.Contains(t, body, "No transfers yet")

		// To an own-bank card: credited at once; the card shown masked.
		form = wang.transferForm(url.Values{"to": {lisiCard}, "amount": {"20"}, "pay_password": {wangPIN}})
		resp, body = wang.post(transferPage, form)
		require.Equal(t, http.StatusSeeOther, resp.StatusCode, body)
		_, body = wang.get(resp.Header.Get("Location"))
		require.Contains(t, body, "628888******0054")
		require.Contains(t, body, "Transfer sent")
		noSecrets(t, body)
		_, body = lisi.get("/portal/transfers")
		require.Contains(t, body, "Transfer from *明 138****0001")

		// To another bank's card: processing, then the other bank answers.
		form = wang.transferForm(url.Values{"to": {otherBankNo}, "amount": {"0.01"}, "pay_password": {wangPIN}})
		resp, _ = wang.post(transferPage, form)
		require.Equal(t, http.StatusSeeOther, resp.StatusCode)
		other := resp.Header.Get("Location")
		_, body = wang.get(other)
		require.Contains(t, body, "Transfer sent to the other bank")
		require.Contains(t, body, `data-status="processing"`)
		noSecrets(t, body)
		e.clock.Advance(10 * time.Second)
		_, err := e.transfers.Reconcile(context.Background(), 10)
		require.NoError(t, err)
		_, body = wang.get(other)
		require.Contains(t, body, `data-status="success"`)

		// The list: newest first, sent ones out.
		_, body = wang.get("/portal/transfers")
		i1, i2, i3 := strings.Index(body, "629999******0066"), strings.Index(body, "628888******0054"), strings.Index(body, "138****0003")
		require.True(t, i1 > 0 && i1 < i2 && i2 < i3, body)
		require.Contains(t, body, "-¥0.01")
		noSecrets(t, body)
		problems, err := db.LedgerCheck(context.Background())
		require.NoError(t, err)
		require.Empty(t, problems)
		logs := e.logs.String()
		noSecrets(t, logs)
	})
}

func TestPortalTransferRefusals(t *testing.T) {
	t.Parallel()
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		e := newTransferEnv(t, db)
		wang, lisi := e.browser(t), e.browser(t)
		wang.login(wangLogin, sandboxPW)
		lisi.login(lisiLogin, sandboxPW)
		cases := []struct {
			name    string
			who     *browser
			fields  url.Values
			status  int
			message string
			field   string
			keepTo  bool
		}{
			{"no recipient", wang, url.Values{"to": {""}, "amount": {"1"}, "pay_password": {wangPIN}}, 400, "The recipient is required.", "to", false},
			{"no amount", wang, url.Values{"to": {plainLogin}, "amount": {" "}, "pay_password": {wangPIN}}, 400, "The amount is required.", "amount", true},
			{"three decimals", wang, url.Values{"to": {plainLogin}, "amount": {"12.345"}, "pay_password": {wangPIN}}, 400, "at most two decimals", "amount", true},
			{"zero", wang, url.Values{"to": {plainLogin}, "amount": {"0.00"}, "pay_password": {wangPIN}}, 400, "more than zero", "amount", true},
			{"negative", wang, url.Values{"to": {plainLogin}, "amount": {"-5"}, "pay_password": {wangPIN}}, 400, "more than zero", "amount", true},
			{"not a number", wang, url.Values{"to": {plainLogin}, "amount": {"1e3"}, "pay_password": {wangPIN}}, 400, "like 12.50", "amount", true},
			{"float-looking", wang, url.Values{"to": {plainLogin}, "amount": {"0.1."}, "pay_password": {wangPIN}}, 400, "like 12.50", "amount", true},
			{"too large", wang, url.Values{"to": {plainLogin}, "amount": {"99999999999999"}, "pay_password": {wangPIN}}, 400, "too large", "amount", true},
			{"no payment password", wang, url.Values{"to": {plainLogin}, "amount": {"1"}}, 400, "The payment password is required.", "pay_password", true},
			{"memo too long", wang, url.Values{"to": {plainLogin}, "amount": {"1"}, "memo": {strings.Repeat("字", 65)}, "pay_password": {wangPIN}}, 400, "at most 64", "memo", true},
			{"memo not UTF-8", wang, url.Values{"to": {plainLogin}, "amount": {"1"}, "memo": {"\xff"}, "pay_password": {wangPIN}}, 400, "not allowed", "memo", true},
			{"to oneself", wang, url.Values{"to": {wangLogin}, "amount": {"1"}, "pay_password": {wangPIN}}, 400, "You cannot transfer to yourself.", "to", true},
			{"to one's own card", wang, url.Values{"to": {wangCard}, "amount": {"1"}, "pay_password": {wangPIN}}, 400, "yourself", "to", false},
			{"unknown phone", wang, url.Values{"to": {"13912349876"}, "amount": {"1"}, "pay_password": {wangPIN}}, 404, "No customer of this bank", "to", true},
			{"Luhn-failing card", wang, url.Values{"to": {luhnBadCard}, "amount": {"1"}, "pay_password": {wangPIN}}, 400, "check digit", "to", false},
			{"over the daily limit", wang, url.Values{"to": {plainLogin}, "amount": {"5000.01"}, "pay_password": {wangPIN}}, 422, "over your daily payment limit of ¥5,000.00", "amount", true},
			{"wrong payment password", wang, url.Values{"to": {plainLogin}, "amount": {"1"}, "pay_password": {"111111"}}, 401, "Wrong payment password, 4 tries left.", "pay_password", true},
			{"insufficient balance", lisi, url.Values{"to": {wangLogin}, "amount": {"1"}, "pay_password": {lisiPIN}}, 422, "Your balance is not enough", "amount", true},
			{"frozen recipient card", lisi, url.Values{"to": {wangFrozen}, "amount": {"1"}, "pay_password": {lisiPIN}}, 403, "it is frozen", "to", false},
		}
		for _, c := range cases {
			f := c.who.transferForm(c.fields)
			resp, body := c.who.post(transferPage, f)
			require.Equal(t, c.status, resp.StatusCode, "%s: %s", c.name, body)
			require.Contains(t, body, c.message, c.name)
			require.Contains(t, body, `data-field="`+c.field+`"`, c.name)
			require.Contains(t, body, `id="transfer-form"`, c.name)
			// The form comes back with its request id and what is harmless.
			require.Contains(t, body, `name="request_id" value="`+f.Get("request_id")+`"`, c.name)
			if c.keepTo {
				require.Contains(t, body, `value="`+c.fields.Get("to")+`"`, c.name)
			}
			noSecrets(t, body, "111111")
		}
		_, body := wang.post(transferPage, wang.transferForm(url.Values{"to": {wangFrozen}, "amount": {"1"}, "pay_password": {wangPIN}}))
		require.Contains(t, body, "You entered card 628888******0039")
		require.Zero(t, e.rows(t))
		require.Equal(t, int64(1_000_000), e.balance(t, wangLogin))

		// Online payment off.
		_, err := e.svc.SetOnlinePayment(context.Background(), e.seeded[lisiLogin].Customer.ID, false)
		require.NoError(t, err)
		resp, body := lisi.post(transferPage, lisi.transferForm(url.Values{"to": {wangLogin}, "amount": {"1"}, "pay_password": {lisiPIN}}))
		require.Equal(t, http.StatusForbidden, resp.StatusCode)
		require.Contains(t, body, "Online payment is turned off")
		require.Contains(t, body, `id="online-off"`)

		// No payment password set.
		plain := e.browser(t)
		plain.login(plainLogin, sandboxPW)
		resp, body = plain.get(transferPage)
		require.Contains(t, body, `id="no-pay-password"`)
		resp, body = plain.post(transferPage, plain.transferForm(url.Values{"to": {wangLogin}, "amount": {"1"}, "pay_password": {"135791"}}))
		require.Equal(t, http.StatusConflict, resp.StatusCode)
		require.Contains(t, body, "No payment password is set")

		// Oversized and malformed bodies.
		f := wang.transferForm(url.Values{"to": {plainLogin}, "amount": {"1"}, "pay_password": {wangPIN}, "memo": {strings.Repeat("a", 70<<10)}})
		resp, _ = wang.post(transferPage, f)
		require.Equal(t, http.StatusRequestEntityTooLarge, resp.StatusCode)
		f = wang.transferForm(url.Values{"to": {plainLogin}, "amount": {"1"}, "pay_password": {wangPIN}})
		f.Set("request_id", "")
		resp, body = wang.post(transferPage, f)
		require.Equal(t, http.StatusBadRequest, resp.StatusCode)
		require.Contains(t, body, "This form has expired")
		require.Zero(t, e.rows(t))
	})
}

func TestPortalTransferConflictAndLockout(t *testing.T) {
	t.Parallel()
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		e := newTransferEnv(t, db)
		wang := e.browser(t)
		wang.login(wangLogin, sandboxPW)
		form := wang.transferForm(url.Values{"to": {plainLogin}, "amount": {"10"}, "pay_password": {wangPIN}})
		resp, _ := wang.post(transferPage, form)
		require.Equal(t, http.StatusSeeOther, resp.StatusCode)

		// Back, another amount, the same form: refused, with a new form.
		form.Set("amount", "11")
		resp, body := wang.post(transferPage, form)
		require.Equal(t, http.StatusConflict, resp.StatusCode)
		require.Contains(t, body, "already used for another transfer")
		m := requestIDRE.FindStringSubmatch(body)
		require.NotEqual(t, form.Get("request_id"), m[1])
		form.Set("request_id", m[1])
		form.Set("csrf_token", csrfRE.FindStringSubmatch(body)[1])
		resp, _ = wang.post(transferPage, form)
		require.Equal(t, http.StatusSeeOther, resp.StatusCode)
		require.Equal(t, 2, e.rows(t))

		// Five wrong payment passwords lock transfers, shown in Beijing time.
		for i := 0; i < 5; i++ {
			wang.post(transferPage, wang.transferForm(url.Values{"to": {plainLogin}, "amount": {"1"}, "pay_password": {"000001"}}))
		}
		resp, body = wang.post(transferPage, wang.transferForm(url.Values{"to": {plainLogin}, "amount": {"1"}, "pay_password": {wangPIN}}))
		require.Equal(t, http.StatusForbidden, resp.StatusCode)
		require.Contains(t, body, "payments by payment password are locked until 2026-11-22 13:00 (Beijing time)")
		require.Equal(t, 2, e.rows(t))
	})
}

func TestPortalTransferList(t *testing.T) {
	t.Parallel()
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		e := newTransferEnv(t, db)
		ctx := context.Background()
		wangID := e.seeded[wangLogin].Customer.ID
		for i := range 23 {
			_, err := e.transfers.Send(ctx, wangID, transfer.Request{RequestID: "r" + string(rune('a'+i)), To: plainLogin,
				Amount: paygate.Money{Amount: int64(100 + i), Currency: "CNY"}, PayPassword: wangPIN})
			require.NoError(t, err)
		}
		wang := e.browser(t)
		wang.login(wangLogin, sandboxPW)
		resp, body := wang.get("/portal/transfers")
		require.Equal(t, http.StatusOK, resp.StatusCode)
		require.Equal(t, 20, strings.Count(body, "data-transfer-id="))
		require.Contains(t, body, "-¥1.22") // the newest
		older := regexp.MustCompile(`href="([^"]+)" id="older"`).FindStringSubmatch(body)
		require.NotNil(t, older)
		resp, body = wang.get(strings.ReplaceAll(older[1], "&amp;", "&"))
		require.Equal(t, http.StatusOK, resp.StatusCode)
		require.Equal(t, 3, strings.Count(body, "data-transfer-id="))
		require.Contains(t, body, "-¥1.00") // the oldest
		require.Contains(t, body, `id="newest"`)
		require.NotContains(t, body, `id="older"`)
		resp, body = wang.get("/portal/transfers?cursor=bogus")
		require.Equal(t, http.StatusBadRequest, resp.StatusCode)
		require.Contains(t, body, "This page link is broken")
		resp, _ = wang.get("/portal/transfers?cursor=" + strings.Repeat("a", 300))
		require.Equal(t, http.StatusBadRequest, resp.StatusCode)
	})
}
