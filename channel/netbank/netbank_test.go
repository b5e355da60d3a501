package netbank_test

import (
	"context"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"paygate"
	"paygate/channel"
	"paygate/channel/netbank"
	"paygate/channel/sim"
	"paygate/customer"
	"paygate/ledger"
	"paygate/payment"
	"paygate/store"
	"paygate/store/storetest"
	"paygate/web"
)

// TestHappyPath: redirect → login → confirm: the card is debited and the
// clearing account credited in one transaction with the limit usage, the
// payer goes back to return_url with the result, and the result arrives by
// a signed callback and by Query (durably, after a restart too).
func TestHappyPath(t *testing.T) {
	t.Parallel()
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		r := newRig(t, db)
		s := r.open(t, 12_345)
		card := r.card(cardPays)
		before := r.available(t, card.AccountID)
		b := r.browser(t)

		lp := b.loginPage(s)
		require.Contains(t, lp.body, "Sandbox Bank")
		require.Contains(t, lp.body, "123.45")
		require.Contains(t, lp.body, "Green tea 250 g")
		require.NotContains(t, lp.body, "Tea House", "the bank's pages are merchant-neutral")
		requireSecure(t, lp)
		require.Contains(t, lp.header.Get("Content-Security-Policy"), "form-action 'self' https://shop.example.com")

		cp := b.login(s, wangLogin, password)
		require.Equal(t, http.StatusOK, cp.status, cp.body)
		requireSecure(t, cp)
		require.NotEmpty(t, cp.field("token"))
		for i, k := range r.seed[0].Cards {
			raw := customer.SandboxCustomers[0].Cards[i].Number
			require.NotContains(t, cp.body, raw, "never a full card number")
			if k.Kind.OwnBank() {
				require.Contains(t, cp.body, k.Number.String(), "own cards listed masked")
			} else {
				require.NotContains(t, cp.body, k.Number.String(), "another bank's card cannot pay here")
			}
		}
		require.Contains(t, cp.body, "Available 50,000.00 CNY")
		require.Contains(t, cp.body, "Frozen: cannot pay")
		require.NotContains(t, cp.body, password, "never echo a password")

		res := b.confirm(s, cp, card.ID, wangPIN)
		require.Equal(t, http.StatusSeeOther, res.status, res.body)
		require.Equal(t, wantReturn(s, netbank.ResultSuccess), res.location())

		require.Equal(t, before-12_345, r.available(t, card.AccountID), "card debited")
		require.Equal(t, int64(12_345), r.clearing(t), "clearing credited")
		require.Equal(t, customer.Usage{Customer: 12_345, Method: 12_345, Card: 12_345}, r.usage(t, card.ID), "limit usage recorded")

		require.Empty(t, r.callbacks(), "the result arrives asynchronously")
		got := r.results(t)
		require.Len(t, got, 1)
		want := channel.Result{Channel: netbank.Name, ChannelTradeNo: s.acc.ChannelTradeNo, AttemptID: s.attempt, OrderID: s.order,
			Status: channel.StatusSuccess, Amount: 12_345, Currency: "CNY", PaidAt: t0}
		require.Equal(t, want, normalise(got[0]))

		q, err := r.bank.Query(r.ctx, channel.QueryRequest{ChannelTradeNo: s.acc.ChannelTradeNo, AttemptID: s.attempt, OrderID: s.order})
		require.NoError(t, err)
		require.Equal(t, want, normalise(q))

		// A restarted bank has forgotten the session; the ledger has not.
		r2 := restarted(t, r)
		q, err = r2.Query(r.ctx, channel.QueryRequest{ChannelTradeNo: s.acc.ChannelTradeNo, AttemptID: s.attempt})
		require.NoError(t, err)
		want.OrderID = ""
		require.Equal(t, want, normalise(q))
		q, err = r2.Query(r.ctx, channel.QueryRequest{AttemptID: s.attempt})
		require.NoError(t, err)
		require.Equal(t, want, normalise(q), "the attempt id alone finds it")

		css := b.get("/sandbox/bank/static/bank.css?v=1")
		require.Equal(t, http.StatusOK, css.status)
		require.Contains(t, css.header.Get("Content-Type"), "text/css")
		require.Equal(t, http.StatusNotFound, b.get("/sandbox/bank/static/").status, "no listing")

		// Back at the bank later: the session shows as paid.
		p := b.get(s.acc.RedirectURL)
		require.Contains(t, p.body, "Payment successful")
		require.NotContains(t, r.logs.String(), password)
		require.NotContains(t, r.logs.String(), wangPIN)
	})
}

// normalise drops the monotonic clock and location of the result's time.
func normalise(r channel.Result) channel.Result {
	if !r.PaidAt.IsZero() {
		r.PaidAt = r.PaidAt.UTC().Round(0)
	}
	return r
}

// restarted is a second Bank over the same database and secret, as after
// a restart.
func restarted(t *testing.T, r *rig) *netbank.Bank {
	t.Helper()
	b, err := netbank.New(netbank.Config{Secret: secret, Clock: r.clock, Dispatcher: r.disp,
		Deliver:   func(context.Context, http.Header, []byte) error { return nil },
		Customers: r.cus, Ledger: r.led, InTx: inTx(r.db), Orders: r.orders})
	require.NoError(t, err)
	return b
}

func requireSecure(t *testing.T, p page) {
	t.Helper()
	csp := p.header.Get("Content-Security-Policy")
	require.Contains(t, csp, "default-src 'none'")
	require.Contains(t, csp, "frame-ancestors 'none'")
	require.NotContains(t, csp, "unsafe")
	require.Equal(t, "DENY", p.header.Get("X-Frame-Options"))
	require.Equal(t, "no-store", p.header.Get("Cache-Control"))
	require.Equal(t, "no-referrer", p.header.Get("Referrer-Policy"))
	require.NotContains(t, p.body, "<script")
	require.NotContains(t, p.body, "style=")
	require.Contains(t, p.body, `name="viewport" content="width=device-width, initial-scale=1"`)
}

// TestRefusals: every refusal shows a clear message, changes nothing (no
// money, no limit usage, no callback) and leaves the session open.
func TestRefusals(t *testing.T) {
	t.Parallel()
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		r := newRig(t, db)
		cases := []struct {
			name   string
			amount int64
			card   int
			pin    string
			before func(t *testing.T)
			status int
			msg    string
		}{
			{"wrong payment password", 100, cardPays, "000000", nil, http.StatusUnauthorized, "Wrong payment password, 4 tries left."},
			{"insufficient funds", 100, cardPoor, wangPIN, nil, http.StatusUnprocessableEntity, "The card&#39;s balance is not enough for this payment. Nothing was charged."},
			{"frozen card", 100, cardFrozen, wangPIN, nil, http.StatusUnprocessableEntity, "The card was declined: it is frozen. Nothing was charged."},
			{"another customer's card", 100, -1, wangPIN, nil, http.StatusUnprocessableEntity, "Choose one of your cards."},
			{"another bank's card", 100, cardOtherBk, wangPIN, nil, http.StatusUnprocessableEntity, "Only Sandbox Bank&#39;s own cards can pay here."},
			{"over the daily limit", 500_001, cardPays, wangPIN, nil, http.StatusUnprocessableEntity, "The amount exceeds your daily payment limit (5000.00 CNY). Nothing was charged."},
			{"online payment off", 100, cardPays, wangPIN, func(t *testing.T) {
				_, err := r.cus.SetOnlinePayment(r.ctx, r.wang().ID, false)
				require.NoError(t, err)
				t.Cleanup(func() { r.cus.SetOnlinePayment(r.ctx, r.wang().ID, true) })
			}, http.StatusUnprocessableEntity, "Online payment is turned off for your account"},
		}
		for _, c := range cases {
			t.Run(c.name, func(t *testing.T) { // sequential: they share wang's payment-password tries
				s := r.open(t, c.amount)
				b := r.browser(t)
				cp := b.login(s, wangLogin, password)
				require.Equal(t, http.StatusOK, cp.status)
				if c.before != nil {
					c.before(t)
				}
				card := r.seed[1].Cards[0] // lisi's
				if c.card >= 0 {
					card = r.card(c.card)
				}
				var bal int64
				if card.Kind.OwnBank() {
					bal = r.available(t, card.AccountID)
				}
				p := b.confirm(s, cp, card.ID, c.pin)
				require.Equal(t, c.status, p.status, p.body)
				require.Contains(t, p.body, c.msg)
				require.NotContains(t, p.body, c.pin, "never echo the payment password")
				require.NotEmpty(t, p.field("token"), "the payer may try again")
				if card.Kind.OwnBank() {
					require.Equal(t, bal, r.available(t, card.AccountID), "nothing moved")
				}
				require.Zero(t, r.clearing(t))
				require.Equal(t, customer.Usage{}, r.usage(t, card.ID), "no limit usage left behind")
				require.Empty(t, r.results(t), "no result to report")
				q, err := r.bank.Query(r.ctx, channel.QueryRequest{AttemptID: s.attempt})
				require.NoError(t, err)
				require.Equal(t, channel.StatusProcessing, q.Status)
			})
		}
	})
}

// TestLimitBoundary: exactly at the daily limit passes; one fen over is
// refused with the limit named.
func TestLimitBoundary(t *testing.T) {
	t.Parallel()
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		r := newRig(t, db)
		card := r.card(cardPays)
		b := r.browser(t)
		daily := r.cus.Limits().CustomerDaily(r.wang().Factors)
		require.Equal(t, int64(500_000), daily)

		over := r.open(t, daily+1)
		_, p := b.pay(over, card.ID)
		require.Equal(t, http.StatusUnprocessableEntity, p.status)
		require.Contains(t, p.body, "daily payment limit (5000.00 CNY)")

		at := r.open(t, daily)
		_, p = b.pay(at, card.ID)
		require.Equal(t, http.StatusSeeOther, p.status, p.body)
		require.Equal(t, daily, r.usage(t, card.ID).Customer)

		fen := r.open(t, 1)
		_, p = b.pay(fen, card.ID)
		require.Equal(t, http.StatusUnprocessableEntity, p.status)
		require.Contains(t, p.body, "daily payment limit")
		require.Equal(t, daily, r.clearing(t), "only the payment at the limit moved money")
	})
}

// TestLogin: a wrong password is refused with the tries left (never echoed,
// the login kept); five lock the login, even for the right password; a
// customer without cards of the bank is told so.
func TestLogin(t *testing.T) {
	t.Parallel()
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		r := newRig(t, db)
		s := r.open(t, 100)
		b := r.browser(t)
		for i := 4; i >= 0; i-- {
			p := b.login(s, wangLogin, "Wrong-pass-1")
			if i > 0 {
				require.Equal(t, http.StatusUnauthorized, p.status)
				require.Contains(t, p.body, "Wrong login or password, "+triesLeft(i))
			} else {
				require.Equal(t, http.StatusForbidden, p.status)
				require.Contains(t, p.body, "Too many wrong passwords: login is locked, try again later.")
			}
			require.NotContains(t, p.body, "Wrong-pass-1")
			require.Contains(t, p.body, `value="`+wangLogin+`"`, "the login is kept")
			require.Empty(t, p.field("token"))
		}
		p := b.login(s, wangLogin, password)
		require.Equal(t, http.StatusForbidden, p.status, "locked even for the right password")

		p = b.login(s, "nobody_here", password)
		require.Equal(t, http.StatusUnauthorized, p.status)
		require.Contains(t, p.body, "Wrong login or password.")
		p = b.post(path(s, "login"), url.Values{"csrf_token": {b.loginPage(s).field("csrf_token")}, "login": {lisiLogin}})
		require.Equal(t, http.StatusBadRequest, p.status)

		p = b.login(s, "13800000003", password) // no cards, no payment password
		require.Equal(t, http.StatusOK, p.status)
		require.Contains(t, p.body, "You have no Sandbox Bank card that can pay this payment.")
		require.Empty(t, r.results(t))
	})
}

// TestPayPasswordLockout: wrong payment passwords count towards the
// customer's lock-out; once locked, even the right one is refused.
func TestPayPasswordLockout(t *testing.T) {
	t.Parallel()
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		r := newRig(t, db)
		s := r.open(t, 100)
		b := r.browser(t)
		cp := b.login(s, lisiLogin, password)
		require.Equal(t, http.StatusOK, cp.status)
		card := r.seed[1].Cards[0]
		require.Contains(t, cp.body, card.Number.String())
		for i := 4; i >= 1; i-- {
			p := b.confirm(s, cp, card.ID, "000000")
			require.Equal(t, http.StatusUnauthorized, p.status)
			require.Contains(t, p.body, "Wrong payment password, "+triesLeft(i))
		}
		for _, pin := range []string{"000000", lisiPIN} {
			p := b.confirm(s, cp, card.ID, pin)
			require.Equal(t, http.StatusForbidden, p.status)
			require.Contains(t, p.body, "Too many wrong payment passwords: payments are locked, try again later.")
		}
		require.Equal(t, int64(200_000), r.available(t, card.AccountID))
		require.Empty(t, r.results(t))
	})
}

// TestCancel: Cancel returns the payer with CANCELLED and reports FAILED
// (PAYER_CANCELLED) by callback and Query; the session is over.
func TestCancel(t *testing.T) {
	t.Parallel()
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		r := newRig(t, db)
		s := r.open(t, 100)
		b := r.browser(t)
		cp := b.login(s, wangLogin, password)
		p := b.post(path(s, "cancel"), url.Values{"csrf_token": {cp.field("csrf_token")}})
		require.Equal(t, http.StatusSeeOther, p.status)
		require.Equal(t, wantReturn(s, netbank.ResultCancelled), p.location())
		got := r.results(t)
		require.Len(t, got, 1)
		require.Equal(t, channel.Result{Channel: netbank.Name, ChannelTradeNo: s.acc.ChannelTradeNo, AttemptID: s.attempt, OrderID: s.order,
			Status: channel.StatusFailed, Amount: 100, Currency: "CNY", FailCode: netbank.FailCancelled}, got[0])
		q, err := r.bank.Query(r.ctx, channel.QueryRequest{AttemptID: s.attempt})
		require.NoError(t, err)
		require.Equal(t, got[0], q)

		p = b.confirm(s, cp, r.card(cardPays).ID, wangPIN)
		require.Equal(t, http.StatusConflict, p.status)
		require.Contains(t, p.body, "Payment cancelled")
		require.Zero(t, r.clearing(t), "a cancelled session takes no money")
		p = b.post(path(s, "cancel"), url.Values{"csrf_token": {cp.field("csrf_token")}})
		require.Equal(t, wantReturn(s, netbank.ResultCancelled), p.location(), "cancelling again answers the same")
		require.Contains(t, b.get(s.acc.RedirectURL).body, "Payment cancelled")
		require.Len(t, r.results(t), 1, "one callback")
	})
}

// TestDoubleConfirm: a second confirmation (back button, double click, two
// tabs at once) moves the money once and answers the same redirect.
func TestDoubleConfirm(t *testing.T) {
	t.Parallel()
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		r := newRig(t, db)
		card := r.card(cardPays)
		before := r.available(t, card.AccountID)

		s := r.open(t, 1_000)
		b := r.browser(t)
		cp, first := b.pay(s, card.ID)
		again := b.confirm(s, cp, card.ID, wangPIN)
		require.Equal(t, http.StatusSeeOther, again.status)
		require.Equal(t, first.location(), again.location())

		// Two tabs confirming one session at once, and a third tab paying
		// another session of the same order.
		s2 := r.open(t, 2_000)
		tabs := []*browser{r.browser(t), r.browser(t)}
		pages := []page{tabs[0].login(s2, wangLogin, password), tabs[1].login(s2, wangLogin, password)}
		s3 := session{attempt: paygate.NewID(payment.PrefixAttempt), order: s2.order}
		req := s2.req
		req.AttemptID = s3.attempt
		var err error
		s3.acc, err = r.bank.Pay(r.ctx, req)
		require.NoError(t, err)
		third := r.browser(t)
		p3 := third.login(s3, wangLogin, password)
		var wg sync.WaitGroup
		out := make([]page, 3)
		for i := range 3 {
			wg.Go(func() {
				if i < 2 {
					out[i] = tabs[i].confirm(s2, pages[i], card.ID, wangPIN)
				} else {
					out[i] = third.confirm(s3, p3, card.ID, wangPIN)
				}
			})
		}
		wg.Wait()
		successes := 0
		for _, p := range out {
			if p.status == http.StatusSeeOther && strings.HasSuffix(p.location(), "result=SUCCESS") {
				successes++
			} else {
				require.Equal(t, http.StatusConflict, p.status, p.body)
				require.Contains(t, p.body, "This order has already been paid.")
			}
		}
		require.GreaterOrEqual(t, successes, 1)
		require.Equal(t, before-3_000, r.available(t, card.AccountID), "each order paid once")
		require.Equal(t, int64(3_000), r.usage(t, card.ID).Card, "limits counted once")
		var ok int
		for _, res := range r.results(t) {
			if res.Status == channel.StatusSuccess {
				ok++
			}
		}
		require.Equal(t, 2, ok, "one success per order")
	})
}

// TestOrderNotPayable: before taking money the bank asks whether the order
// may still be paid; paid another way, closed or expired ends the session
// (FAILED, ORDER_NOT_PAYABLE); a merchant that cannot transact for now
// leaves it open.
func TestOrderNotPayable(t *testing.T) {
	t.Parallel()
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		r := newRig(t, db)
		cases := []struct {
			name  string
			mod   func(*payment.CheckoutOrder)
			msg   string
			final bool
		}{
			{"paid another way", func(o *payment.CheckoutOrder) { o.Status = payment.StatusSuccess }, "This order has already been paid.", true},
			{"closed", func(o *payment.CheckoutOrder) { o.Status, o.CloseReason = payment.StatusClosed, "MERCHANT" }, "The merchant has closed this order", true},
			{"expired", func(o *payment.CheckoutOrder) { o.TimeExpire = t0.Add(-time.Second) }, "This order has expired", true},
			{"merchant suspended", func(o *payment.CheckoutOrder) { o.MerchantCanTransact = false }, "The merchant cannot take payments at the moment", false},
		}
		for _, c := range cases {
			t.Run(c.name, func(t *testing.T) {
				s := r.open(t, 100)
				b := r.browser(t)
				cp := b.login(s, wangLogin, password)
				r.orders.update(s.order, c.mod)
				lp := b.get(s.acc.RedirectURL)
				require.Equal(t, http.StatusConflict, lp.status)
				require.Contains(t, lp.body, c.msg, "the login page says so too")
				n := len(r.results(t))
				p := b.confirm(s, cp, r.card(cardPays).ID, wangPIN)
				require.Equal(t, http.StatusConflict, p.status, p.body)
				require.Contains(t, p.body, c.msg)
				require.Contains(t, p.body, "Nothing was charged.")
				require.Zero(t, r.clearing(t))
				got := r.results(t)[n:]
				q, err := r.bank.Query(r.ctx, channel.QueryRequest{AttemptID: s.attempt})
				require.NoError(t, err)
				if c.final {
					require.Len(t, got, 1)
					require.Equal(t, netbank.FailNotPayable, got[0].FailCode)
					require.Equal(t, channel.StatusFailed, q.Status)
					require.Contains(t, p.body, strings.ReplaceAll(wantReturn(s, netbank.ResultFailed), "&", "&amp;"), "with the way back")
				} else {
					require.Empty(t, got)
					require.Equal(t, channel.StatusProcessing, q.Status)
				}
			})
		}
	})
}

// TestSessions: unknown and ended sessions, forged or expired login tokens,
// and missing CSRF tokens change nothing.
func TestSessions(t *testing.T) {
	t.Parallel()
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		r := newRig(t, db)
		b := r.browser(t)
		card := r.card(cardPays)

		p := b.get("/sandbox/bank/pay/pay_unknown")
		require.Equal(t, http.StatusNotFound, p.status)
		require.Contains(t, p.body, "This payment session has ended or does not exist")
		requireSecure(t, p)
		require.Equal(t, http.StatusNotFound, b.get("/sandbox/bank/pay/x%2Fy").status)
		p = b.get(path(r.open(t, 1), "confirm"))
		require.Equal(t, http.StatusSeeOther, p.status, "a reloaded step goes back to the login")

		_, err := r.bank.Pay(r.ctx, channel.PayRequest{AttemptID: "pay_late", OrderID: "ord_late", Amount: 1, Currency: "CNY",
			ExpiresAt: t0})
		require.ErrorIs(t, err, channel.ErrDeclined, "an order already expired")
		for _, bad := range []channel.PayRequest{
			{AttemptID: "", OrderID: "o", Amount: 1, Currency: "CNY"},
			{AttemptID: "a/b", OrderID: "o", Amount: 1, Currency: "CNY"},
			{AttemptID: "a", OrderID: "", Amount: 1, Currency: "CNY"},
			{AttemptID: "a", OrderID: "o", Amount: 0, Currency: "CNY"},
			{AttemptID: "a", OrderID: "o", Amount: 1, Currency: "XXX"},
		} {
			_, err := r.bank.Pay(r.ctx, bad)
			require.ErrorIs(t, err, channel.ErrDeclined, "%+v", bad)
		}

		// Forged, misplaced and expired login tokens.
		s := r.open(t, 100)
		other := r.open(t, 100)
		cp := b.login(s, wangLogin, password)
		ocp := b.login(other, wangLogin, password)
		tok := cp.field("token")
		lisi := r.seed[1].Customer.ID
		forged := []string{"", "x", lisi + tok[strings.Index(tok, "."):], tok[:len(tok)-2] + "AA", ocp.field("token"), tok + "."}
		for _, ft := range forged {
			p := b.post(path(s, "confirm"), url.Values{"csrf_token": {cp.field("csrf_token")}, "token": {ft},
				"card_id": {card.ID}, "pay_password": {wangPIN}})
			require.Equal(t, http.StatusForbidden, p.status, ft)
			require.Contains(t, p.body, "Your online-banking login has timed out; please log in again.")
		}
		r.clock.Advance(netbank.TokenTTL)
		p = b.confirm(s, cp, card.ID, wangPIN)
		require.Equal(t, http.StatusForbidden, p.status, "a login lasts TokenTTL")
		require.Zero(t, r.clearing(t))

		// CSRF: no token, another session's token, no cookie, cross-site.
		lp := b.loginPage(s)
		for name, tc := range map[string]struct {
			br   *browser
			form url.Values
			hdr  []string
		}{
			"missing":    {b, url.Values{"login": {wangLogin}, "password": {password}}, nil},
			"other":      {b, url.Values{"csrf_token": {b.loginPage(other).field("csrf_token")}, "login": {wangLogin}, "password": {password}}, nil},
			"no cookie":  {r.browser(t), url.Values{"csrf_token": {lp.field("csrf_token")}, "login": {wangLogin}, "password": {password}}, nil},
			"cross-site": {b, url.Values{"csrf_token": {lp.field("csrf_token")}, "login": {wangLogin}, "password": {password}}, []string{"Sec-Fetch-Site", "cross-site"}},
		} {
			for _, step := range []string{"login", "confirm", "cancel"} {
				p := tc.br.post(path(s, step), tc.form, tc.hdr...)
				require.Equal(t, http.StatusForbidden, p.status, "%s %s", name, step)
				require.Contains(t, p.body, "This form has expired")
			}
		}
		require.Empty(t, r.results(t), "nothing was reported")

		// The session ends 15 minutes after Pay: confirming then is refused
		// and reported FAILED.
		cp = b.login(s, wangLogin, password)
		r.clock.Advance(netbank.DefaultSessionTTL - netbank.TokenTTL)
		q, err := r.bank.Query(r.ctx, channel.QueryRequest{AttemptID: other.attempt})
		require.NoError(t, err)
		require.Equal(t, channel.StatusFailed, q.Status, "Query ends a session whose time is up")
		require.Equal(t, netbank.FailSessionExpired, q.FailCode)
		p = b.confirm(s, cp, card.ID, wangPIN)
		require.Equal(t, http.StatusGone, p.status)
		require.Contains(t, p.body, "This payment session has ended")
		require.Equal(t, http.StatusGone, b.get(s.acc.RedirectURL).status)
		got := r.results(t)
		require.Len(t, got, 1)
		require.Equal(t, netbank.FailSessionExpired, got[0].FailCode)
		require.Zero(t, r.clearing(t))
	})
}

// TestQuery: unknown payments are ErrUnknownPayment; a session forgotten by
// a restart is reported FAILED once the end its trade number carries has
// passed.
func TestQuery(t *testing.T) {
	t.Parallel()
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		r := newRig(t, db)
		s := r.open(t, 700)
		again, err := r.bank.Pay(r.ctx, s.req)
		require.NoError(t, err)
		require.Equal(t, s.acc, again, "paying one attempt twice is one session")
		q, err := r.bank.Query(r.ctx, channel.QueryRequest{ChannelTradeNo: s.acc.ChannelTradeNo})
		require.NoError(t, err)
		require.Equal(t, channel.StatusProcessing, q.Status)
		require.Equal(t, s.attempt, q.AttemptID)

		for _, bad := range []channel.QueryRequest{
			{AttemptID: "pay_nope"},
			{ChannelTradeNo: "NB1-1CNY-00"},
			{AttemptID: s.attempt, OrderID: "ord_other"},
			{AttemptID: s.attempt, ChannelTradeNo: "NB1-1CNY-00"},
			{},
		} {
			_, err := r.bank.Query(r.ctx, bad)
			require.ErrorIs(t, err, channel.ErrUnknownPayment, "%+v", bad)
		}

		r2 := restarted(t, r)
		fq := channel.QueryRequest{AttemptID: s.attempt, ChannelTradeNo: s.acc.ChannelTradeNo, OrderID: s.order}
		_, err = r2.Query(r.ctx, fq)
		require.ErrorIs(t, err, channel.ErrUnknownPayment, "forgotten, and not over yet")
		r.clock.Advance(netbank.DefaultSessionTTL + time.Minute)
		q, err = r2.Query(r.ctx, fq)
		require.NoError(t, err)
		require.Equal(t, channel.Result{Channel: netbank.Name, ChannelTradeNo: s.acc.ChannelTradeNo, AttemptID: s.attempt,
			Status: channel.StatusFailed, Amount: 700, Currency: "CNY", FailCode: netbank.FailSessionExpired}, q)
		_, err = r2.Query(r.ctx, channel.QueryRequest{AttemptID: "pay_other", ChannelTradeNo: s.acc.ChannelTradeNo})
		require.ErrorIs(t, err, channel.ErrUnknownPayment, "a trade number is good for its attempt only")
	})
}

// TestNoReturnURL: without return_url the payer goes to BackURL (the
// checkout page), or, without one, sees the result at the bank.
func TestNoReturnURL(t *testing.T) {
	t.Parallel()
	db := storetest.Open(t, store.SQLite)
	back := func(id string) string { return "https://pay.example.com/checkout/" + id }
	r := newRig(t, db, func(c *netbank.Config) { c.BackURL = back })
	s := r.open(t, 100, func(p *channel.PayRequest) { p.ReturnURL = "" })
	b := r.browser(t)
	require.Contains(t, b.loginPage(s).header.Get("Content-Security-Policy"), "form-action 'self' https://pay.example.com")
	_, p := b.pay(s, r.card(cardPays).ID)
	require.Equal(t, http.StatusSeeOther, p.status)
	require.Equal(t, back(s.order)+"?paygate_order_id="+s.order+"&result=SUCCESS", p.location())

	r2 := newRig(t, storetest.Open(t, store.SQLite))
	s = r2.open(t, 100, func(p *channel.PayRequest) { p.ReturnURL = "javascript:alert(1)" })
	b = r2.browser(t)
	require.Contains(t, b.loginPage(s).header.Get("Content-Security-Policy"), "form-action 'self';")
	_, p = b.pay(s, r2.card(cardPays).ID)
	require.Equal(t, http.StatusOK, p.status)
	require.Contains(t, p.body, "Payment successful")
	require.NotContains(t, p.body, "javascript")
}

// TestVerifyCallbackRejects: forged, tampered and foreign callbacks are
// refused; only the bank's own signature passes.
func TestVerifyCallbackRejects(t *testing.T) {
	t.Parallel()
	r := newRig(t, storetest.Open(t, store.SQLite))
	s := r.open(t, 100)
	b := r.browser(t)
	cp := b.login(s, wangLogin, password)
	b.post(path(s, "cancel"), url.Values{"csrf_token": {cp.field("csrf_token")}})
	r.disp.RunDue()
	cb := r.callbacks()[0]
	_, err := r.bank.VerifyCallback(cb.h, cb.body)
	require.NoError(t, err)

	other, err := netbank.New(netbank.Config{Secret: []byte("another-secret-another-secret-32"), Clock: r.clock, Dispatcher: r.disp,
		Deliver: func(context.Context, http.Header, []byte) error { return nil }, Customers: r.cus, Ledger: r.led, InTx: inTx(r.db), Orders: r.orders})
	require.NoError(t, err)
	simCh, err := sim.New(sim.Config{Secret: secret, Clock: r.clock, Dispatcher: r.disp,
		Deliver: func(context.Context, http.Header, []byte) error { return nil }})
	require.NoError(t, err)

	flip := func(b []byte, i int) []byte { c := append([]byte(nil), b...); c[i] ^= 1; return c }
	with := func(k, v string) http.Header { h := cb.h.Clone(); h.Set(k, v); return h }
	simBody := []byte(strings.Replace(string(cb.body), `"channel":"netbank"`, `"channel":"sim"`, 1))
	cases := []struct {
		name string
		h    http.Header
		body []byte
		code paygate.Code
	}{
		{"tampered body", cb.h, flip(cb.body, len(cb.body)/2), paygate.CodeUnauthenticated},
		{"tampered status", cb.h, []byte(strings.Replace(string(cb.body), "FAILED", "SUCCESS", 1)), paygate.CodeUnauthenticated},
		{"flipped signature", with(netbank.HeaderSignature, string(flip([]byte(cb.h.Get(netbank.HeaderSignature)), 3))), cb.body, paygate.CodeUnauthenticated},
		{"other nonce", with(netbank.HeaderNonce, "n2"), cb.body, paygate.CodeUnauthenticated},
		{"other secret", other.Sign(r.clock.Now(), "n", cb.body), cb.body, paygate.CodeUnauthenticated},
		{"the simulator's headers", simCh.Sign(r.clock.Now(), "n", cb.body), cb.body, paygate.CodeUnauthenticated},
		{"stale", r.bank.Sign(r.clock.Now().Add(-sim.Window-time.Second), "n", cb.body), cb.body, paygate.CodeUnauthenticated},
		{"missing", http.Header{}, cb.body, paygate.CodeUnauthenticated},
		{"authentic, other channel", r.bank.Sign(r.clock.Now(), "n", simBody), simBody, paygate.CodeInvalidArgument},
	}
	for _, c := range cases {
		_, err := r.bank.VerifyCallback(c.h, c.body)
		require.Equal(t, c.code, paygate.CodeOf(err), c.name)
	}
}

// TestNewValidates: missing dependencies and bad settings are refused.
func TestNewValidates(t *testing.T) {
	t.Parallel()
	r := newRig(t, storetest.Open(t, store.SQLite))
	ok := netbank.Config{Secret: secret, Clock: r.clock, Dispatcher: r.disp, Deliver: func(context.Context, http.Header, []byte) error { return nil },
		Customers: r.cus, Ledger: r.led, InTx: inTx(r.db), Orders: r.orders}
	bank, err := netbank.New(ok)
	require.NoError(t, err)
	pages, err := web.New(web.Config{Orders: r.orders})
	require.NoError(t, err)
	mux := http.NewServeMux()
	pages.Register(mux)
	bank.Register(mux) // next to the checkout, without conflicts
	for name, mod := range map[string]func(*netbank.Config){
		"short secret": func(c *netbank.Config) { c.Secret = secret[:31] },
		"no clock":     func(c *netbank.Config) { c.Clock = nil },
		"no deliver":   func(c *netbank.Config) { c.Deliver = nil },
		"no customers": func(c *netbank.Config) { c.Customers = nil },
		"no ledger":    func(c *netbank.Config) { c.Ledger = nil },
		"no tx":        func(c *netbank.Config) { c.InTx = nil },
		"no orders":    func(c *netbank.Config) { c.Orders = nil },
		"short key":    func(c *netbank.Config) { c.CSRFKey = []byte("short") },
		"relative URL": func(c *netbank.Config) { c.BaseURL = "/pay" },
		"ftp URL":      func(c *netbank.Config) { c.BaseURL = "ftp://pay.example.com" },
	} {
		c := ok
		mod(&c)
		_, err := netbank.New(c)
		require.Equal(t, paygate.CodeInvalidArgument, paygate.CodeOf(err), name)
	}
}

// TestMaxSessions: the bank keeps at most MaxSessions sessions, forgetting
// those long over first.
func TestMaxSessions(t *testing.T) {
	t.Parallel()
	r := newRig(t, storetest.Open(t, store.SQLite), func(c *netbank.Config) { c.MaxSessions = 2 })
	r.open(t, 1)
	r.open(t, 1)
	_, err := r.bank.Pay(r.ctx, channel.PayRequest{AttemptID: "pay_3", OrderID: "ord_3", Amount: 1, Currency: "CNY"})
	require.ErrorIs(t, err, channel.ErrDeclined)
	r.clock.Advance(netbank.DefaultSessionTTL + time.Hour)
	_, err = r.bank.Pay(r.ctx, channel.PayRequest{AttemptID: "pay_3", OrderID: "ord_3", Amount: 1, Currency: "CNY"})
	require.NoError(t, err, "ended sessions make room")
}

// TestLedgerBalanced: after payments the ledger's trial balance is even
// and the clearing account holds exactly what was paid.
func TestLedgerBalanced(t *testing.T) {
	t.Parallel()
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		r := newRig(t, db)
		b := r.browser(t)
		for _, amount := range []int64{1, 99, 10_000} {
			_, p := b.pay(r.open(t, amount), r.card(cardCorp).ID)
			require.Equal(t, http.StatusSeeOther, p.status)
		}
		require.Equal(t, int64(10_100), r.clearing(t))
		tb, err := r.led.TrialBalance(r.ctx, day0)
		require.NoError(t, err)
		require.Equal(t, tb.Totals["CNY"].Debits, tb.Totals["CNY"].Credits)
		ts, err := r.led.ListTransfers(r.ctx, ledger.ChannelClearing(netbank.Name, "CNY").ID, "", 10)
		require.NoError(t, err)
		require.Len(t, ts.Transfers, 3)
		for _, tr := range ts.Transfers {
			require.True(t, strings.HasPrefix(tr.ID, netbank.TransferPrefix+payment.PrefixAttempt))
			require.Equal(t, netbank.TransferCode, tr.Code)
			require.Equal(t, day0, tr.AccountingDate)
		}
	})
}

// triesLeft is how the pages count the tries left: "1 try left.", "2 tries
// left.".
func triesLeft(n int) string {
	if n == 1 {
		return "1 try left."
	}
	return strconv.Itoa(n) + " tries left."
}
