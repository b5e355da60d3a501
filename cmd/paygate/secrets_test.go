package main

// Nothing sensitive in logs, pages or the database: known card numbers,
// login and payment passwords, ID numbers and every one-time code go
// through every checkout flow over HTTP — and through their failures —
// then the platform's debug logs, every HTML page the browsers received
// and a dump of every table are scanned for them.

import (
	"encoding/base64"
	"fmt"
	"net/http"
	"net/url"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"paygate/customer"
	"paygate/ledger"
	"paygate/store"
	"paygate/store/storetest"
)

// secretsInbox is the sandbox's SMS inbox: what the sandbox "phone"
// received, the text of every code in clear by design (testers read their
// codes there; no sandbox sender runs in production, see docs/OTP.md). It
// is the one table the scan leaves out, and only for the codes.
const secretsInbox = "sms_sandbox_inbox"

// secretsSealed are the columns holding AES-256-GCM ciphertexts (base64 of
// nonce || ciphertext || tag): they are not scanned as text (base64 may
// hold any short run of characters by chance) but checked to be
// ciphertexts. Every other column of every other table is scanned.
var secretsSealed = map[string]bool{
	"customers.identity_enc":          true, // verified name, ID number and phone
	"customer_cards.pan_enc":          true, // the card number
	"customer_cards.holder_phone_enc": true, // the card's reserved phone
	"sms_messages.body_sealed":        true, // an SMS's text, until sent ('' after)
	"merchants.apiv3_key_enc":         true, // the merchant's APIv3 key
	"platform_keys.private_key_enc":   true, // the platform's signing key
	"customer_transfers.card_enc":     true, // another bank's card number of a transfer
}

// TestSecretsNeverInLogsPagesOrDatabase pushes known secrets through every
// checkout flow over HTTP on both stores — quick pay (own card, another
// customer's new card, a card that lacks funds, another bank's card),
// bound quick pay, card-number pay, balance login and pay — with wrong
// codes, wrong passwords, a wrong holder and Luhn failures along the way,
// then scans (1) the platform's debug JSON logs, (2) every HTML page the
// browsers received and (3) every column of every table but the sealed
// ones and the sandbox inbox: no card number (nor more of it than its
// first six and last four digits), password, payment password, ID number
// or one-time code appears. The sealed columns are ciphertexts; the codes
// are in the sandbox inbox only.
func TestSecretsNeverInLogsPagesOrDatabase(t *testing.T) {
	t.Parallel()
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		e := startCoEnv(t, db)
		ctx := e.ctx

		// A card of 李四's with distinctive middle digits (the sandbox
		// cards' are zeros, as in any timestamp), funded.
		distinct := luhnComplete("628888739146258")
		lisi := e.custs[coLisiLogin]
		dc, err := e.p.customers.AddCard(ctx, customer.AddCardRequest{CustomerID: lisi.ID, Number: distinct,
			Holder: customer.Holder{Name: coLisiName, IDNumber: coLisiID, Phone: coLisiPhone}})
		require.NoError(t, err)
		_, err = e.p.ledger.CreateTransfers(ctx, []ledger.Transfer{{ID: "secrets-fund", DebitAccountID: ledger.SandboxFunding("CNY").ID,
			CreditAccountID: dc.AccountID, Amount: 1_000_000, Currency: "CNY"}})
		require.NoError(t, err)

		const (
			wrongLogin  = "Wrong-Login-42"
			wrongPIN    = "864208"
			strangerID  = "11010519491231002X" // valid, nobody's
			otherBank   = "6299990000000066"   // 王小明's, another bank's, bound
			grouped0013 = "6288 8800 0000 0013"
		)
		b := e.browser(t)
		var typed []string // wrong codes typed
		wrong := func(code string) string {
			w := coWrongCode(code)
			typed = append(typed, w)
			return w
		}

		// Quick pay, own card typed with spaces: a wrong code, then the
		// right one, binding the card.
		o := e.order(t, 1_100)
		cardID := b.startQuickPay(o.ID, grouped0013, coWangName, coWangID, coWangPhone)
		code := e.code(t, coWangPhone)
		res, body := b.confirm(o.ID, cardID, wrong(code))
		coRequireRefused(t, res, body, http.StatusUnprocessableEntity, "The code is wrong")
		res, body = b.submit(o.ID, "quick-pay/confirm", url.Values{"card_id": {cardID}, "code": {code}, "bind": {"1"}})
		b.requirePaid(res, body, o.ID)

		// Quick pay, 李四's new card: wrong code, right code.
		lb := e.browser(t)
		o = e.order(t, 1_200)
		cardID = lb.startQuickPay(o.ID, distinct, coLisiName, coLisiID, coLisiPhone)
		code = e.code(t, coLisiPhone)
		res, body = lb.confirm(o.ID, cardID, wrong(code))
		coRequireRefused(t, res, body, http.StatusUnprocessableEntity, "The code is wrong")
		res, body = lb.confirm(o.ID, cardID, code)
		lb.requirePaid(res, body, o.ID)

		// Quick pay refusals: a card lacking funds (after its code), 李四's
		// card with 王小明's details and with a stranger's ID number, a
		// number failing the Luhn check.
		o = e.order(t, 1_300)
		cardID = b.startQuickPay(o.ID, coCardPoor, coWangName, coWangID, coWangPhone)
		res, body = b.confirm(o.ID, cardID, e.code(t, coWangPhone))
		coRequireRefused(t, res, body, http.StatusUnprocessableEntity, "Insufficient funds")
		for _, h := range [][3]string{{coWangName, coWangID, coWangPhone}, {coLisiName, strangerID, coLisiPhone}} {
			res, body = b.submit(o.ID, "quick-pay", url.Values{"card_number": {coCardLisi}, "name": {h[0]}, "id_number": {h[1]}, "phone": {h[2]}})
			coRequireRefused(t, res, body, http.StatusUnprocessableEntity, "do not match the card's records")
		}
		res, body = b.submit(o.ID, "quick-pay", url.Values{"card_number": {coBadLuhn}, "name": {coWangName}, "id_number": {coWangID}, "phone": {coWangPhone}})
		coRequireRefused(t, res, body, http.StatusUnprocessableEntity, "This is not a valid card number.")

		// Bound quick pay: phone + last four, a wrong code, the right one.
		res, body = b.submit(o.ID, "quick-pay/bound", url.Values{"phone": {coWangPhone}, "last4": {"0013"}})
		require.Equal(t, http.StatusOK, res.StatusCode, coMessage(body))
		cardID = coCardID(t, body)
		code = e.code(t, coWangPhone)
		res, body = b.confirm(o.ID, cardID, wrong(code))
		coRequireRefused(t, res, body, http.StatusUnprocessableEntity, "The code is wrong")
		res, body = b.confirm(o.ID, cardID, code)
		b.requirePaid(res, body, o.ID)

		// Quick pay with another bank's card: in progress, then paid when
		// the interbank switch calls back.
		o = e.order(t, 1_400)
		cardID = b.startQuickPay(o.ID, otherBank, coWangName, coWangID, coWangPhone)
		res, body = b.confirm(o.ID, cardID, e.code(t, coWangPhone))
		require.Equal(t, http.StatusSeeOther, res.StatusCode, coMessage(body))
		e.clock.Advance(time.Minute)
		require.Positive(t, e.disp.RunDue())
		_, body = b.get("/checkout/" + o.ID)
		require.Contains(t, body, `data-state="paid"`)

		// Card-number pay: a wrong payment password, a Luhn failure,
		// 王小明's password on 李四's card, then 王小明's corporate card and
		// 李四's new card with the right ones.
		o = e.order(t, 1_500)
		res, body = b.submit(o.ID, "card-pay", url.Values{"card_number": {coCardCorp}, "pay_password": {wrongPIN}})
		coRequireRefused(t, res, body, http.StatusUnprocessableEntity, "Wrong payment password")
		res, body = b.submit(o.ID, "card-pay", url.Values{"card_number": {coBadLuhn}, "pay_password": {coWangPIN}})
		coRequireRefused(t, res, body, http.StatusUnprocessableEntity, "This is not a valid card number.")
		res, body = b.submit(o.ID, "card-pay", url.Values{"card_number": {coCardLisi}, "pay_password": {coWangPIN}})
		coRequireRefused(t, res, body, http.StatusUnprocessableEntity, "Wrong payment password")
		res, body = b.submit(o.ID, "card-pay", url.Values{"card_number": {coCardCorp}, "pay_password": {coWangPIN}})
		b.requirePaid(res, body, o.ID)
		o = e.order(t, 1_600)
		res, body = lb.submit(o.ID, "card-pay", url.Values{"card_number": {distinct}, "pay_password": {coLisiPIN}})
		lb.requirePaid(res, body, o.ID)

		// Balance: a wrong login password, the right one, a wrong payment
		// password, the right one; 李四 logs in by username.
		o = e.order(t, 1_700)
		res, body = b.submit(o.ID, "login", url.Values{"login": {coWangPhone}, "password": {wrongLogin}})
		coRequireRefused(t, res, body, http.StatusUnprocessableEntity, "Wrong login or password")
		res, body = b.submit(o.ID, "login", url.Values{"login": {coWangPhone}, "password": {coPassword}})
		require.Equal(t, http.StatusSeeOther, res.StatusCode, coMessage(body))
		res, body = b.submit(o.ID, "balance", url.Values{"pay_password": {wrongPIN}})
		coRequireRefused(t, res, body, http.StatusUnprocessableEntity, "Wrong payment password")
		res, body = b.submit(o.ID, "balance", url.Values{"pay_password": {coWangPIN}})
		b.requirePaid(res, body, o.ID)
		res, body = lb.submit(e.order(t, 1_800).ID, "login", url.Values{"login": {coLisiLogin}, "password": {coPassword}})
		require.Equal(t, http.StatusSeeOther, res.StatusCode, coMessage(body))
		res, body = b.submit(o.ID, "logout", nil)
		require.Equal(t, http.StatusSeeOther, res.StatusCode, coMessage(body))
		e.balanced(t)

		// The secrets.
		pans := []string{coCardPays, coCardPoor, coCardCorp, coCardLisi, otherBank, distinct, coBadLuhn}
		long := []string{coWangID, coLisiID, strangerID, coPassword, wrongLogin}
		short := []string{coWangPIN, coLisiPIN, wrongPIN} // six digits: matched as whole tokens
		e.mu.Lock()
		codes := slices.Clone(e.codes)
		pages := slices.Clone(e.pages)
		e.mu.Unlock()
		require.Len(t, codes, 5, "every code read from the inbox")
		short = append(append(short, codes...), typed...)

		scan := func(where, text string) {
			t.Helper()
			for _, p := range pans {
				require.Empty(t, panLeaks(text, p), "card number %s… in %s", p[:6], where)
			}
			for _, s := range long {
				require.NotContains(t, text, s, "in %s", where)
			}
			for _, s := range short {
				require.False(t, tokenRE(s).MatchString(text), "%s in %s", s, where)
			}
			require.NotContains(t, text, "valid for 5 minutes", "an SMS text in %s", where)
		}

		// (1) The logs, which did capture the flows.
		logs := e.logs.String()
		for _, s := range []string{`"msg":"request"`, `"msg":"otp issued"`, `"msg":"otp verification failed"`, `/checkout/`} {
			require.Contains(t, logs, s, "the log capture works")
		}
		scan("the logs", logs)

		// (2) Every page the browsers received.
		require.Greater(t, len(pages), 40)
		for i, p := range pages {
			scan(fmt.Sprintf("page %d", i), p)
		}

		// (3) The database, but the sealed columns and the inbox.
		cells, sealed, inbox := secretsDump(t, db)
		var all strings.Builder
		for _, c := range cells {
			all.WriteString(c)
			all.WriteByte('\n')
		}
		dump := all.String()
		for _, s := range []string{"customer_cards.first6=628888", "customer_cards.last4=0013", "otp_codes.code_mac=",
			"customers.pay_password_hash=$argon2id$", "payment_orders.", "notify_events.payload="} {
			require.Contains(t, dump, s, "the dump works")
		}
		scan("the database", dump)

		// The sealed columns hold ciphertexts: base64 of at least a nonce
		// and a tag, none of the secrets.
		checked := map[string]int{}
		for col, vals := range sealed {
			for _, v := range vals {
				if v == "" && (col == "sms_messages.body_sealed" || col == "customers.identity_enc" || col == "customer_transfers.card_enc") {
					continue // wiped once sent; none before real-name verification; none for a transfer to an account
				}
				checked[col]++
				raw, err := base64.StdEncoding.DecodeString(v)
				require.NoError(t, err, "%s is not base64", col)
				require.GreaterOrEqual(t, len(raw), 12+16, "%s is too short for a ciphertext", col)
				for _, s := range append(append([]string{coWangName, coLisiName, coWangPhone, coLisiPhone}, pans...), long...) {
					require.NotContains(t, v, s, col)
				}
			}
		}
		for _, col := range []string{"customers.identity_enc", "customer_cards.pan_enc", "customer_cards.holder_phone_enc",
			"merchants.apiv3_key_enc"} {
			require.Positive(t, checked[col], "no value of %s was checked", col)
		}
		require.NotEmpty(t, sealed["sms_messages.body_sealed"], "the SMS outbox was dumped")

		// The codes are in the sandbox inbox, and nowhere else (above).
		for _, c := range codes {
			require.True(t, slices.ContainsFunc(inbox, func(text string) bool { return tokenRE(c).MatchString(text) }), "code not in the inbox")
		}
	})
}

// luhnComplete appends the Luhn check digit to body.
func luhnComplete(body string) string {
	d, ok := customer.LuhnDigit(body)
	if !ok {
		panic("luhn: " + body)
	}
	return body + string(d)
}

// tokenRE matches s as a whole token: not inside a longer run of letters
// and digits. Six-digit secrets (codes, payment passwords) are matched so,
// or a random hex id or a timestamp would hold one by chance now and then;
// a leak shows them as a token of their own (JSON strings, form values,
// text).
func tokenRE(s string) *regexp.Regexp {
	return regexp.MustCompile(`(^|[^0-9A-Za-z])` + regexp.QuoteMeta(s) + `($|[^0-9A-Za-z])`)
}

var panRunRE = regexp.MustCompile(`[0-9*]{13,19}`)

// panLeaks lists where text shows more of the card number pan than its
// first six and last four digits:
//   - the number itself, or grouped by four with spaces or dashes;
//   - a run of its length of digits and '*' (a mask) that agrees with it
//     wherever it shows a digit and shows one of its middle digits;
//   - for a number whose middle digits are not one repeated digit (the
//     sandbox's are zeros, as in any timestamp), any eight consecutive
//     digits of it that include a middle digit.
func panLeaks(text, pan string) []string {
	var out []string
	n := len(pan)
	var groups []string
	for i := 0; i < n; i += 4 {
		groups = append(groups, pan[i:min(i+4, n)])
	}
	for _, s := range []string{pan, strings.Join(groups, " "), strings.Join(groups, "-")} {
		if strings.Contains(text, s) {
			out = append(out, "the number")
		}
	}
	for _, run := range panRunRE.FindAllString(text, -1) {
		if len(run) != n || run == pan {
			continue
		}
		agrees, middle := true, false
		for i := range n {
			if run[i] == '*' {
				continue
			}
			agrees = agrees && run[i] == pan[i]
			middle = middle || (i >= 6 && i < n-4)
		}
		if agrees && middle {
			out = append(out, "a mask showing middle digits: "+run)
		}
	}
	mid := pan[6 : n-4]
	if strings.Trim(mid, mid[:1]) != "" {
		for i := 0; i+8 <= n; i++ {
			if i+8 > 6 && i < n-4 && strings.Contains(text, pan[i:i+8]) {
				out = append(out, "digits "+pan[i:i+8])
			}
		}
	}
	return out
}

// secretsDump reads every table: cells are "table.column=value" of every
// column but the sealed ones, of every table but the sandbox inbox; sealed
// holds the sealed columns' values; inbox the inbox's texts.
func secretsDump(t *testing.T, db *store.DB) (cells []string, sealed map[string][]string, inbox []string) {
	t.Helper()
	q := `SELECT table_name FROM information_schema.tables WHERE table_schema = current_schema()`
	if db.Dialect == store.SQLite {
		q = `SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%'`
	}
	rows, err := db.SQL.Query(q)
	require.NoError(t, err)
	var tables []string
	for rows.Next() {
		var s string
		require.NoError(t, rows.Scan(&s))
		tables = append(tables, s)
	}
	require.NoError(t, rows.Err())
	rows.Close()
	require.Contains(t, tables, secretsInbox)
	require.Contains(t, tables, "customer_cards")
	sealed = map[string][]string{}
	for _, tbl := range tables {
		rows, err := db.SQL.Query(`SELECT * FROM ` + tbl)
		require.NoError(t, err)
		cols, err := rows.Columns()
		require.NoError(t, err)
		for rows.Next() {
			vals := make([]any, len(cols))
			ptrs := make([]any, len(cols))
			for i := range vals {
				ptrs[i] = &vals[i]
			}
			require.NoError(t, rows.Scan(ptrs...))
			for i, v := range vals {
				if b, ok := v.([]byte); ok {
					v = string(b)
				}
				s := fmt.Sprint(v)
				name := tbl + "." + cols[i]
				switch {
				case tbl == secretsInbox:
					if cols[i] == "text" {
						inbox = append(inbox, s)
					}
				case secretsSealed[name]:
					sealed[name] = append(sealed[name], s)
				default:
					cells = append(cells, name+"="+s)
				}
			}
		}
		require.NoError(t, rows.Err())
		rows.Close()
	}
	return cells, sealed, inbox
}

// TestSecretScanners: the scan finds what it looks for (so a clean scan
// means something) and leaves masks and timestamps alone.
func TestSecretScanners(t *testing.T) {
	t.Parallel()
	distinct := luhnComplete("628888739146258")
	for _, tc := range []struct {
		text, pan string
		leak      bool
	}{
		{`{"card":"6288880000000013"}`, coCardPays, true},
		{"card 6288 8800 0000 0013 here", coCardPays, true},
		{"card 6288-8800-0000-0013 here", coCardPays, true},
		{"628888000000**13", coCardPays, true},
		{"6288880*********", coCardPays, true},
		{"628888******0013", coCardPays, false},
		{"6288**********13", coCardPays, false},
		{`"created_at":1795312800000000,"id":"ord_0000000000000013"`, coCardPays, false},
		{"628888******" + distinct[12:], distinct, false},
		{"ref=" + distinct[4:12] + ";", distinct, true},
		{"x" + distinct[6:14] + "x", distinct, true},
	} {
		require.Equal(t, tc.leak, len(panLeaks(tc.text, tc.pan)) > 0, "%s in %q", tc.pan, tc.text)
	}
	for _, tc := range []struct {
		text string
		leak bool
	}{
		{`{"pin":"135790"}`, true},
		{"pay_password=135790&csrf_token=x", true},
		{"Your payment code is 135790, valid", true},
		{"135790", true},
		{"ord_01a2135790bc", false},
		{"1795312135790000", false},
	} {
		require.Equal(t, tc.leak, tokenRE("135790").MatchString(tc.text), "%q", tc.text)
	}
}
