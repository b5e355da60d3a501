package web_test

import (
	"bytes"
	"context"
	"html"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"regexp"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"paygate"
	"paygate/agreement"
	"paygate/customer"
	"paygate/ledger"
	"paygate/otp"
	"paygate/payment"
	"paygate/sealing"
	"paygate/sms"
	"paygate/store"
	"paygate/store/storetest"
	"paygate/web"
)

// The merchants of the portal's agreement tests.
const (
	teaShop   = "1900000001"
	phoneShop = "1900000002"
)

type mandateMerchants map[string]paygate.Merchant

func (m mandateMerchants) Merchant(_ context.Context, id string) (paygate.Merchant, error) {
	v, ok := m[id]
	if !ok {
		return paygate.Merchant{}, paygate.E(paygate.CodeNotFound, "merchant not found")
	}
	return v, nil
}

// noCharges is the agreements' Payments here: the portal never charges.
type noCharges struct{}

func (noCharges) CreateAndPay(context.Context, string, payment.CreateRequest, payment.Payer, payment.Source, payment.Authorize) (payment.Order, payment.Attempt, bool, error) {
	return payment.Order{}, payment.Attempt{}, false, paygate.E(paygate.CodeForbidden, "no charges in the portal's tests")
}

// mandateEnv is the portal over real customers and merchant agreements
// (signed through the sign flow with real one-time codes), served over
// HTTP.
type mandateEnv struct {
	*portalEnv
	agr   *agreement.Service
	smsw  *sms.Worker
	inbox *sms.Sandbox
	n     int
}

func newMandateEnv(t *testing.T, db *store.DB) *mandateEnv {
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
	m := &mandateEnv{portalEnv: e}
	smsKeys, err := sms.NewKeyring([]byte("sms sealing key of 32 bytes, ok!"))
	require.NoError(t, err)
	m.inbox = sms.NewSandbox(db.SMSInbox(), e.clock)
	m.smsw, err = sms.NewWorker(db.SMS(), smsKeys, m.inbox, e.clock, sms.Options{Logger: log})
	require.NoError(t, err)
	codes, err := otp.New(otp.Config{Store: db.OTP(), Keys: [][]byte{[]byte("otp hmac key of at least 32 bytes")}, SMSKeys: smsKeys,
		Clock: e.clock, Logger: log, ResendInterval: -1, DailyCap: -1})
	require.NoError(t, err)
	m.agr, err = agreement.New(agreement.Config{Store: db.Agreements(), Payments: noCharges{}, Customers: e.svc, Codes: codes,
		Merchants: mandateMerchants{
			teaShop:   {ID: teaShop, Name: "Tea House", Status: paygate.MerchantSandbox, SettlementCurrency: "CNY"},
			phoneShop: {ID: phoneShop, Name: "Phone & Co", Status: paygate.MerchantSandbox, SettlementCurrency: "CNY"},
		}, Clock: e.clock, SignBaseURL: "https://pay.example/agreements/", Logger: log})
	require.NoError(t, err)
	sessions, err := web.NewSessions(web.SessionConfig{Store: db.Sessions(), Clock: e.clock})
	require.NoError(t, err)
	portal, err := web.NewPortal(web.PortalConfig{Customers: e.svc, Sessions: sessions, Clock: e.clock, Logger: log,
		CSRFKey: bytes.Repeat([]byte("k"), 32), Agreements: m.agr})
	require.NoError(t, err)
	checkout, err := web.New(web.Config{Orders: fakeOrders{}, Clock: e.clock, Logger: log})
	require.NoError(t, err)
	mux := http.NewServeMux()
	web.Routes{checkout, portal}.Register(mux)
	e.srv = httptest.NewServer(mux)
	t.Cleanup(e.srv.Close)
	return m
}

// signed creates an agreement of the merchant and signs it with the card,
// the holder's details and the code the holder's phone received.
func (m *mandateEnv) signed(t *testing.T, merchantID, number, name, idNumber, phone string, req agreement.Request) agreement.Agreement {
	t.Helper()
	ctx := context.Background()
	m.n++
	req.OutAgreementNo = "PORTAL-AGR-" + string(rune('A'+m.n))
	req.NotifyURL = "https://shop.example/agreements/notify"
	a, _, err := m.agr.Create(ctx, merchantID, req)
	require.NoError(t, err)
	ch, err := m.agr.StartSign(ctx, a.ID, agreement.SignCard{Number: number, Name: name, IDNumber: idNumber, Phone: phone})
	require.NoError(t, err)
	_, err = m.smsw.RunOnce(ctx)
	require.NoError(t, err)
	msg, err := m.inbox.Latest(ctx, phone)
	require.NoError(t, err)
	a, err = m.agr.ConfirmSign(ctx, a.ID, ch.CardID, msg.Code())
	require.NoError(t, err)
	require.Equal(t, agreement.StatusSigned, a.Status)
	return a
}

// stored returns the agreement as stored now.
func (m *mandateEnv) stored(t *testing.T, id string) agreement.Record {
	t.Helper()
	a, err := m.db.Agreements().MerchantAgreement(context.Background(), id)
	require.NoError(t, err)
	return a
}

// revokedEvents counts the AGREEMENT.REVOKED notifications queued for the
// agreement.
func (m *mandateEnv) revokedEvents(t *testing.T, id string) int {
	t.Helper()
	var n int
	require.NoError(t, m.db.SQL.QueryRowContext(context.Background(),
		`SELECT count(*) FROM notify_events WHERE event_type = $1 AND payload LIKE '%' || $2 || '%'`, agreement.EventRevoked, id).Scan(&n))
	return n
}

// mandateRow returns the status and the text of the agreement's entry on
// the cards page body; ok false when it is not listed.
func mandateRow(body, id string) (status, row string, ok bool) {
	re := regexp.MustCompile(`(?s)<li class="account" id="mandate-` + regexp.QuoteMeta(id) + `" data-status="([a-z]+)">(.*?)</li>`)
	mm := re.FindStringSubmatch(body)
	if mm == nil {
		return "", "", false
	}
	return mm[1], html.UnescapeString(mm[2]), true
}

// TestPortalMerchantAgreements: the cards page lists the agreements the
// customer signed (merchant, plan, masked card, limits, end date, status)
// and none of another customer's; revoking one with the page's CSRF token
// makes it REVOKED by the customer and queues AGREEMENT.REVOKED once;
// revoking it again changes nothing; a missing or forged token, a
// cross-origin form, another customer's agreement (404, as an unknown id)
// and an agreement past its end (409) change nothing; no card or ID
// number reaches a page or the logs.
func TestPortalMerchantAgreements(t *testing.T) {
	t.Parallel()
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		m := newMandateEnv(t, db)
		tea := m.signed(t, teaShop, wangCard, "王小明", "110101199003071233", wangLogin, agreement.Request{Plan: "Tea box, monthly",
			PerPaymentLimit: 2_000, DailyLimit: 5_000, EndDate: "2027-11-30"})
		topUp := m.signed(t, phoneShop, wangCard, "王小明", "110101199003071233", wangLogin, agreement.Request{Plan: "Phone top-up"})
		ends := m.signed(t, teaShop, wangCard, "王小明", "110101199003071233", wangLogin, agreement.Request{Plan: "Trial week", EndDate: "2026-11-23"})
		lis := m.signed(t, teaShop, "6288880000000054", "李四", "310104198511204567", "13800000002", agreement.Request{Plan: "Tea box, monthly"})

		b := m.browser(t)
		b.login(wangLogin, sandboxPW)
		res, body := b.get("/portal/cards")
		require.Equal(t, http.StatusOK, res.StatusCode)
		require.Contains(t, body, `id="merchant-agreements"`)
		for _, c := range []struct {
			id   string
			want []string
		}{
			{tea.ID, []string{"Tea House · Tea box, monthly", "628888******0013", "per payment ¥20.00, per day ¥50.00, end date 2027-11-30", "signed 2026-11-22 10:00:00"}},
			{topUp.ID, []string{"Phone & Co · Phone top-up", "per payment —, per day —, end date none"}},
			{ends.ID, []string{"Tea House · Trial week", "end date 2026-11-23"}},
		} {
			status, row, ok := mandateRow(body, c.id)
			require.True(t, ok, "%s is listed", c.id)
			require.Equal(t, "signed", status)
			for _, w := range c.want {
				require.Contains(t, row, w)
			}
			require.Contains(t, row, `action="/portal/merchant-agreements/`+c.id+`/revoke"`)
		}
		require.Less(t, bytes.Index([]byte(body), []byte(ends.ID)), bytes.Index([]byte(body), []byte(tea.ID)), "newest first")
		_, _, ok := mandateRow(body, lis.ID)
		require.False(t, ok, "another customer's agreement is not listed")
		require.NotContains(t, body, wangCard, "card numbers show masked only")
		require.NotContains(t, body, "110101199003071233")

		revoke := func(id string) string { return "/portal/merchant-agreements/" + id + "/revoke" }
		unchanged := func(id string, want agreement.Record) {
			t.Helper()
			require.Equal(t, want, m.stored(t, id))
			require.Zero(t, m.revokedEvents(t, id))
		}

		// Refused before anything is read: no token, a forged one, another
		// site's form.
		before := m.stored(t, tea.ID)
		res, _ = b.post(revoke(tea.ID), url.Values{})
		require.Equal(t, http.StatusForbidden, res.StatusCode)
		res, _ = b.post(revoke(tea.ID), url.Values{"csrf_token": {"forged"}})
		require.Equal(t, http.StatusForbidden, res.StatusCode)
		tok := b.token("/portal/cards")
		res, _ = b.post(revoke(tea.ID), url.Values{"csrf_token": {tok}}, "Sec-Fetch-Site", "cross-site")
		require.Equal(t, http.StatusForbidden, res.StatusCode)
		unchanged(tea.ID, before)

		// Another customer's agreement is not found, like an unknown one.
		lisBefore := m.stored(t, lis.ID)
		for _, id := range []string{lis.ID, "agm_unknown", "not-an-id"} {
			res, body = b.submit("/portal/cards", revoke(id), nil)
			require.Equal(t, http.StatusNotFound, res.StatusCode, id)
			require.Contains(t, body, "Agreement not found")
		}
		unchanged(lis.ID, lisBefore)

		// The customer revokes.
		m.clock.Advance(time.Minute)
		res, _ = b.submit("/portal/cards", revoke(tea.ID), nil)
		require.Equal(t, http.StatusSeeOther, res.StatusCode)
		require.Equal(t, "/portal/cards?ok=mandate_revoked#merchant-agreements", res.Header.Get("Location"))
		got := m.stored(t, tea.ID)
		require.Equal(t, agreement.StatusRevoked, got.Status)
		require.Equal(t, agreement.RevokedByCustomer, got.RevokedBy)
		require.Equal(t, t0.Add(time.Minute), got.RevokedTime)
		require.Equal(t, 1, m.revokedEvents(t, tea.ID))
		_, body = b.get("/portal/cards?ok=mandate_revoked")
		require.Contains(t, body, "The agreement is revoked: the merchant can no longer charge your card with it.")
		status, row, ok := mandateRow(body, tea.ID)
		require.True(t, ok)
		require.Equal(t, "revoked", status)
		require.Contains(t, row, "revoked 2026-11-22 10:01:00")
		require.NotContains(t, row, "<form", "nothing left to revoke")
		status, _, _ = mandateRow(body, topUp.ID)
		require.Equal(t, "signed", status, "the other agreements stand")

		// Twice is harmless: the same revocation, no second notification.
		m.clock.Advance(time.Minute)
		res, _ = b.submit("/portal/cards", revoke(tea.ID), nil)
		require.Equal(t, http.StatusSeeOther, res.StatusCode)
		require.Equal(t, got, m.stored(t, tea.ID))
		require.Equal(t, 1, m.revokedEvents(t, tea.ID))

		// Past its end date (2026-11-24 00:00 in Shanghai) an agreement shows
		// expired and can no longer be revoked.
		m.clock.Set(time.Date(2026, 11, 23, 16, 0, 0, 0, time.UTC))
		b = m.browser(t) // the old session idled out
		b.login(wangLogin, sandboxPW)
		_, body = b.get("/portal/cards")
		status, row, ok = mandateRow(body, ends.ID)
		require.True(t, ok)
		require.Equal(t, "expired", status)
		require.NotContains(t, row, "<form")
		endsBefore := m.stored(t, ends.ID)
		res, body = b.submit("/portal/cards", revoke(ends.ID), nil)
		require.Equal(t, http.StatusConflict, res.StatusCode)
		require.Contains(t, body, "Agreement already ended")
		unchanged(ends.ID, endsBefore)

		// 李四 sees only his own.
		li := m.browser(t)
		li.login(lisiLogin, sandboxPW)
		_, body = li.get("/portal/cards")
		status, _, ok = mandateRow(body, lis.ID)
		require.True(t, ok)
		require.Equal(t, "signed", status)
		for _, id := range []string{tea.ID, topUp.ID, ends.ID} {
			require.NotContains(t, body, id)
		}

		for _, secret := range []string{wangCard, "6288880000000054", "110101199003071233", "310104198511204567"} {
			require.NotContains(t, m.logs.String(), secret)
		}
	})
}
