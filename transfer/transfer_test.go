package transfer_test

import (
	"io"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"paygate"
	"paygate/channel/sim"
	"paygate/customer"
	"paygate/ledger"
	"paygate/store"
	"paygate/store/storetest"
	"paygate/transfer"
)

func TestSendToCustomerAndCard(t *testing.T) {
	t.Parallel()
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		f := newFixture(t, db, fixtureOpts{})

		// To bob's balance account by his phone (with +86 and spaces).
		r := req("+86 137 0000 1111", 12_345)
		r.Memo = "  dinner 晚饭  "
		tr, err := f.svc.Send(f.ctx, f.alice.ID, r)
		require.NoError(t, err)
		require.True(t, strings.HasPrefix(tr.ID, transfer.PrefixTransfer))
		require.Equal(t, transfer.StatusSuccess, tr.Status)
		require.Equal(t, transfer.KindCustomer, tr.Kind)
		require.Equal(t, f.bob.ID, tr.RecipientCustomerID)
		require.Equal(t, "137****1111", tr.Recipient)
		require.Equal(t, "*四", tr.RecipientName)
		require.Equal(t, "139****5678", tr.Sender)
		require.Equal(t, "*三", tr.SenderName)
		require.Equal(t, "dinner 晚饭", tr.Memo)
		require.Equal(t, cny(12_345), tr.Amount)
		require.Equal(t, day0, tr.AccountingDate)
		require.Equal(t, int64(1_000_000-12_345), f.balance(t, f.alice.ID))
		require.Equal(t, int64(12_345), f.balance(t, f.bob.ID))

		// To bob's own-bank card by its number (dashes ignored).
		no := f.bobCardNo[:4] + "-" + f.bobCardNo[4:8] + " " + f.bobCardNo[8:]
		tc, err := f.svc.Send(f.ctx, f.alice.ID, req(no, 50_000))
		require.NoError(t, err)
		require.Equal(t, transfer.StatusSuccess, tc.Status)
		require.Equal(t, transfer.KindOwnCard, tc.Kind)
		require.Equal(t, f.bobCard.ID, tc.RecipientCardID)
		require.Equal(t, f.bob.ID, tc.RecipientCustomerID)
		require.Equal(t, f.bobCard.Number.String(), tc.Recipient)
		require.Equal(t, int64(50_000), f.cardBalance(t, f.bobCard))
		require.Equal(t, int64(1_000_000-62_345), f.balance(t, f.alice.ID))

		// Limits: counted in the customer's daily limit and the method's.
		u := f.usage(t, f.alice.ID)
		require.Equal(t, int64(62_345), u.Customer)
		require.Equal(t, int64(62_345), u.Method)

		// Both parties' history show the postings with the transfer as
		// reference; both see the transfer in their list, newest first.
		ha, err := f.cus.History(f.ctx, f.alice.ID, customer.HistoryQuery{})
		require.NoError(t, err)
		require.Len(t, ha.Entries, 3) // two transfers and the funding
		require.Equal(t, tc.ID, ha.Entries[0].Ref)
		require.Equal(t, customer.DirectionOut, ha.Entries[0].Direction)
		require.Equal(t, customer.EntryTransfer, ha.Entries[0].Kind)
		require.Equal(t, tr.ID, ha.Entries[1].Ref)
		hb, err := f.cus.History(f.ctx, f.bob.ID, customer.HistoryQuery{})
		require.NoError(t, err)
		require.Len(t, hb.Entries, 1)
		require.Equal(t, tr.ID, hb.Entries[0].Ref)
		require.Equal(t, customer.DirectionIn, hb.Entries[0].Direction)
		require.Equal(t, customer.EntryTransfer, hb.Entries[0].Kind)
		hc, err := f.cus.History(f.ctx, f.bob.ID, customer.HistoryQuery{CardID: f.bobCard.ID})
		require.NoError(t, err)
		require.Len(t, hc.Entries, 1)
		require.Equal(t, tc.ID, hc.Entries[0].Ref)

		pa, err := f.svc.List(f.ctx, f.alice.ID, "", 0)
		require.NoError(t, err)
		require.Equal(t, []string{tc.ID, tr.ID}, ids(pa.Transfers))
		require.Equal(t, transfer.DirectionOut, pa.Transfers[0].DirectionFor(f.alice.ID))
		pb, err := f.svc.List(f.ctx, f.bob.ID, "", 0)
		require.NoError(t, err)
		require.Equal(t, []string{tc.ID, tr.ID}, ids(pb.Transfers))
		require.Equal(t, transfer.DirectionIn, pb.Transfers[0].DirectionFor(f.bob.ID))
		pc, err := f.svc.List(f.ctx, f.carol.ID, "", 0)
		require.NoError(t, err)
		require.Empty(t, pc.Transfers)

		// Get: payer and recipient only.
		got, err := f.svc.Get(f.ctx, f.bob.ID, tr.ID)
		require.NoError(t, err)
		require.Equal(t, tr, got)
		for _, id := range []string{tr.ID, "trf_nonexistent", "ord_x", strings.Repeat("x", 100)} {
			_, err = f.svc.Get(f.ctx, f.carol.ID, id)
			require.Equal(t, paygate.CodeNotFound, paygate.CodeOf(err), id)
		}
		f.balanced(t)
	})
}

func TestSendRefusals(t *testing.T) {
	t.Parallel()
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		f := newFixture(t, db, fixtureOpts{})
		otherBankUnknownOwnBIN := pan(customer.SandboxOwnBIN, 999)
		luhnBad := f.bobCardNo[:15] + string('0'+(f.bobCardNo[15]-'0'+1)%10)
		cases := []struct {
			name     string
			from     string
			mod      func(*transfer.Request)
			code     paygate.Code
			field    string
			contains string
		}{
			{"self by phone", f.alice.ID, func(r *transfer.Request) { r.To = alicePhone }, paygate.CodeInvalidArgument, "to", "yourself"},
			{"unknown phone", f.alice.ID, func(r *transfer.Request) { r.To = "13999999999" }, paygate.CodeNotFound, "to", "no customer"},
			{"short phone", f.alice.ID, func(r *transfer.Request) { r.To = "1370000111" }, paygate.CodeInvalidArgument, "to", "11 digits"},
			{"Luhn-failing card", f.alice.ID, func(r *transfer.Request) { r.To = luhnBad }, paygate.CodeInvalidArgument, "to", "check digit"},
			{"letters", f.alice.ID, func(r *transfer.Request) { r.To = "bob" }, paygate.CodeInvalidArgument, "to", "mobile phone or a card"},
			{"no recipient", f.alice.ID, func(r *transfer.Request) { r.To = " " }, paygate.CodeInvalidArgument, "to", ""},
			{"unknown own-bank card", f.alice.ID, func(r *transfer.Request) { r.To = otherBankUnknownOwnBIN }, paygate.CodeNotFound, "to", "no card"},
			{"frozen recipient card", f.alice.ID, func(r *transfer.Request) { r.To = f.frozenNo }, paygate.CodeForbidden, "to", "frozen"},
			{"frozen recipient", f.alice.ID, func(r *transfer.Request) { r.To = carolPhone }, paygate.CodeForbidden, "to", "cannot receive"},
			{"zero amount", f.alice.ID, func(r *transfer.Request) { r.Amount = cny(0) }, paygate.CodeAmountNotPositive, "amount", ""},
			{"negative amount", f.alice.ID, func(r *transfer.Request) { r.Amount = cny(-100) }, paygate.CodeAmountNotPositive, "amount", ""},
			{"another currency", f.alice.ID, func(r *transfer.Request) { r.Amount = paygate.Money{Amount: 100, Currency: "USD"} }, paygate.CodeCurrencyMismatch, "currency", "CNY"},
			{"over the daily limit", f.alice.ID, func(r *transfer.Request) { r.Amount = cny(500_001) }, paygate.CodeLimitExceeded, "amount", "5000.00"},
			{"wrong payment password", f.alice.ID, func(r *transfer.Request) { r.PayPassword = "111111" }, paygate.CodeUnauthenticated, "pay_password", "4 tries left"},
			{"no payment password", f.alice.ID, func(r *transfer.Request) { r.PayPassword = "" }, paygate.CodeInvalidArgument, "pay_password", ""},
			{"memo too long", f.alice.ID, func(r *transfer.Request) { r.Memo = strings.Repeat("字", 65) }, paygate.CodeInvalidArgument, "memo", "64"},
			{"memo control", f.alice.ID, func(r *transfer.Request) { r.Memo = "a\x07b" }, paygate.CodeInvalidArgument, "memo", ""},
			{"memo not UTF-8", f.alice.ID, func(r *transfer.Request) { r.Memo = "\xff" }, paygate.CodeInvalidArgument, "memo", ""},
			{"bad request id", f.alice.ID, func(r *transfer.Request) { r.RequestID = "a b" }, paygate.CodeInvalidArgument, "request_id", ""},
			{"no request id", f.alice.ID, func(r *transfer.Request) { r.RequestID = "" }, paygate.CodeInvalidArgument, "request_id", ""},
			{"long request id", f.alice.ID, func(r *transfer.Request) { r.RequestID = strings.Repeat("a", 65) }, paygate.CodeInvalidArgument, "request_id", ""},
			{"online payment off", f.dave.ID, func(r *transfer.Request) { r.To = alicePhone }, paygate.CodeForbidden, "", "online payment"},
			{"frozen payer", f.carol.ID, func(r *transfer.Request) { r.To = alicePhone }, paygate.CodeForbidden, "", "frozen"},
			{"unknown payer", "cus_nobody", nil, paygate.CodeNotFound, "", ""},
			{"to oneself by own card", f.bob.ID, func(r *transfer.Request) { r.To, r.PayPassword = f.bobCardNo, otherPIN }, paygate.CodeInvalidArgument, "to", "yourself"},
			{"insufficient balance", f.bob.ID, func(r *transfer.Request) { r.To, r.PayPassword = alicePhone, otherPIN }, paygate.CodeInsufficientFunds, "amount", "balance"},
		}
		for _, c := range cases {
			r := req(bobPhone, 10_000)
			if c.mod != nil {
				c.mod(&r)
			}
			_, err := f.svc.Send(f.ctx, c.from, r)
			require.Equal(t, c.code, paygate.CodeOf(err), "%s: %v", c.name, err)
			var pe *paygate.Error
			require.ErrorAs(t, err, &pe, c.name)
			require.Equal(t, c.field, pe.Field, c.name)
			require.Contains(t, pe.Message, c.contains, c.name)
			if c.code == paygate.CodeLimitExceeded {
				var le *customer.LimitError
				require.ErrorAs(t, err, &le)
				require.Equal(t, customer.LimitCustomerDaily, le.Limit)
			}
			// Nothing recorded: no transfer, no usage, no money moved.
			require.Zero(t, f.rows(t), c.name)
			require.Zero(t, f.usage(t, f.alice.ID).Customer, c.name)
			require.Zero(t, f.usage(t, f.bob.ID).Customer, c.name)
			require.Equal(t, int64(1_000_000), f.balance(t, f.alice.ID), c.name)
			// No card number and no payment password in any message.
			for _, secret := range []string{f.bobCardNo, f.frozenNo, luhnBad, otherBankUnknownOwnBIN, pin, "111111"} {
				require.NotContains(t, err.Error(), secret, c.name)
			}
		}
		// A customer without a payment password.
		e := f.register(t, "13400004444")
		_, err := f.svc.Send(f.ctx, e.ID, req(alicePhone, 100))
		require.Equal(t, paygate.CodeConflict, paygate.CodeOf(err))
		f.balanced(t)
		logs := f.logs.String()
		for _, secret := range []string{f.bobCardNo, f.frozenNo, luhnBad, pin, "111111"} {
			require.NotContains(t, logs, secret)
		}
	})
}

func TestPayPasswordLockout(t *testing.T) {
	t.Parallel()
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		f := newFixture(t, db, fixtureOpts{})
		for i := 4; i >= 1; i-- {
			r := req(bobPhone, 100)
			r.PayPassword = "000001"
			_, err := f.svc.Send(f.ctx, f.alice.ID, r)
			require.Equal(t, paygate.CodeUnauthenticated, paygate.CodeOf(err))
			require.ErrorContains(t, err, map[int]string{4: "4 tries", 3: "3 tries", 2: "2 tries", 1: "1 try left"}[i])
		}
		r := req(bobPhone, 100)
		r.PayPassword = "000001"
		_, err := f.svc.Send(f.ctx, f.alice.ID, r)
		require.Equal(t, paygate.CodeForbidden, paygate.CodeOf(err))
		var le *customer.LockedError
		require.ErrorAs(t, err, &le)
		require.Equal(t, t0.Add(3*time.Hour), le.Until)
		// Locked: even the right password is refused, and nothing moves.
		_, err = f.svc.Send(f.ctx, f.alice.ID, req(bobPhone, 100))
		require.Equal(t, paygate.CodeForbidden, paygate.CodeOf(err))
		require.ErrorAs(t, err, &le)
		require.Zero(t, f.rows(t))
		// Three hours later it pays again.
		f.clock.Advance(3 * time.Hour)
		tr, err := f.svc.Send(f.ctx, f.alice.ID, req(bobPhone, 100))
		require.NoError(t, err)
		require.Equal(t, transfer.StatusSuccess, tr.Status)
	})
}

func TestIdempotentReplay(t *testing.T) {
	t.Parallel()
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		f := newFixture(t, db, fixtureOpts{})
		r := req(bobPhone, 10_000)
		r.Memo = "rent"
		first, err := f.svc.Send(f.ctx, f.alice.ID, r)
		require.NoError(t, err)

		// The same request: the first transfer, nothing more moved — even
		// with the phone written another way, or a wrong payment password
		// (the replay checks no password and counts no attempt).
		again := r
		again.To = "+86-137-0000-1111"
		again.PayPassword = "999999"
		got, err := f.svc.Send(f.ctx, f.alice.ID, again)
		require.NoError(t, err)
		require.Equal(t, first, got)
		require.Equal(t, int64(1_000_000-10_000), f.balance(t, f.alice.ID))
		require.Equal(t, int64(10_000), f.usage(t, f.alice.ID).Customer)
		require.Equal(t, 1, f.rows(t))

		// The same request id with another amount, memo or recipient.
		for _, mod := range []func(*transfer.Request){
			func(r *transfer.Request) { r.Amount = cny(10_001) },
			func(r *transfer.Request) { r.Memo = "rent!" },
			func(r *transfer.Request) { r.To = f.bobCardNo },
		} {
			c := r
			mod(&c)
			_, err := f.svc.Send(f.ctx, f.alice.ID, c)
			require.Equal(t, paygate.CodeConflict, paygate.CodeOf(err))
			require.ErrorContains(t, err, "already used")
		}
		require.Equal(t, 1, f.rows(t))

		// Another payer may use the same request id.
		b := r
		b.To, b.PayPassword, b.Amount = alicePhone, otherPIN, cny(100)
		_, err = f.svc.Send(f.ctx, f.bob.ID, b)
		require.NoError(t, err)

		// A refused request leaves nothing: its id may be used again.
		big := req(bobPhone, 600_000)
		_, err = f.svc.Send(f.ctx, f.alice.ID, big)
		require.Equal(t, paygate.CodeLimitExceeded, paygate.CodeOf(err))
		big.Amount = cny(1_000)
		_, err = f.svc.Send(f.ctx, f.alice.ID, big)
		require.NoError(t, err)

		// Concurrent double submission: one transfer, everyone gets it.
		// (Four at once: each counts as a payment-password attempt until
		// checked, and five would lock the password.)
		dbl := req(bobPhone, 777)
		var wg sync.WaitGroup
		res := make([]transfer.Transfer, 4)
		errs := make([]error, 4)
		for i := range res {
			wg.Go(func() { res[i], errs[i] = f.svc.Send(f.ctx, f.alice.ID, dbl) })
		}
		wg.Wait()
		for i := range res {
			require.NoError(t, errs[i])
			require.Equal(t, res[0].ID, res[i].ID)
		}
		require.Equal(t, int64(1_000_000-10_000-1_000-777+100), f.balance(t, f.alice.ID))
		require.Equal(t, int64(10_000+1_000+777), f.usage(t, f.alice.ID).Customer)
		f.balanced(t)
	})
}

func TestConcurrentTransfersNeverOvershoot(t *testing.T) {
	t.Parallel()
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		for _, c := range []struct {
			name    string
			balance int64 // alice's balance before (1,000,000 funded, less what she sends away first)
			want    int   // successes of 50 × 150.00
			code    paygate.Code
		}{
			{"the daily limit binds", 1_000_000, 33, paygate.CodeLimitExceeded}, // 33 × 150 = 4,950 ≤ 5,000
			{"the balance binds", 300_000, 20, paygate.CodeInsufficientFunds},   // 20 × 150 = 3,000
		} {
			t.Run(c.name, func(t *testing.T) {
				// Concurrent right payment passwords each count as an attempt
				// until checked: a loose lock-out keeps fifty at once from
				// locking it (see customer.Service.VerifyPayPassword).
				loose := customer.Lockout{MaxFailures: 1000, Window: time.Hour, Duration: time.Hour}
				f := newFixture(t, storetest.Open(t, db.Dialect), fixtureOpts{payLockout: &loose})
				if c.balance < 1_000_000 { // move the rest to the sandbox funding's side
					_, err := f.led.CreateTransfers(f.ctx, []ledger.Transfer{{ID: "drain", DebitAccountID: f.cus.BalanceAccount(f.alice.ID),
						CreditAccountID: "sandbox:funding:CNY", Amount: 1_000_000 - c.balance}})
					require.NoError(t, err)
				}
				const n = 50
				var wg sync.WaitGroup
				errs := make([]error, n)
				for i := range n {
					to := bobPhone
					if i%2 == 1 {
						to = f.bobCardNo
					}
					wg.Go(func() { _, errs[i] = f.svc.Send(f.ctx, f.alice.ID, req(to, 15_000)) })
				}
				wg.Wait()
				ok := 0
				for _, err := range errs {
					if err == nil {
						ok++
						continue
					}
					require.Equal(t, c.code, paygate.CodeOf(err), "%v", err)
				}
				require.Equal(t, c.want, ok)
				require.Equal(t, ok, f.rows(t))
				u := f.usage(t, f.alice.ID)
				require.Equal(t, int64(ok)*15_000, u.Customer)
				require.Equal(t, int64(ok)*15_000, u.Method)
				require.Equal(t, c.balance-int64(ok)*15_000, f.balance(t, f.alice.ID))
				require.Equal(t, int64(ok)*15_000, f.balance(t, f.bob.ID)+f.cardBalance(t, f.bobCard))
				f.balanced(t)
			})
		}
	})
}

func ids(ts []transfer.Transfer) []string {
	var out []string
	for _, t := range ts {
		out = append(out, t.ID)
	}
	return out
}

func TestListPagination(t *testing.T) {
	t.Parallel()
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		f := newFixture(t, db, fixtureOpts{})
		var want []string
		for i := range 7 {
			from, to, p := f.alice.ID, bobPhone, pin
			if i%3 == 2 {
				from, to, p = f.bob.ID, alicePhone, otherPIN
			}
			if i == 2 {
				f.fund(t, f.cus.BalanceAccount(f.bob.ID), 10_000)
			}
			r := req(to, 100)
			r.PayPassword = p
			tr, err := f.svc.Send(f.ctx, from, r)
			require.NoError(t, err)
			want = append([]string{tr.ID}, want...)
			f.clock.Advance(time.Millisecond)
		}
		var got []string
		cursor := ""
		for {
			p, err := f.svc.List(f.ctx, f.alice.ID, cursor, 3)
			require.NoError(t, err)
			got = append(got, ids(p.Transfers)...)
			if p.NextCursor == "" {
				break
			}
			cursor = p.NextCursor
		}
		require.Equal(t, want, got)
		for _, bad := range []string{"x", "dHJmXyB4", strings.Repeat("a", 200), "bm90LWEtdHJhbnNmZXI"} {
			_, err := f.svc.List(f.ctx, f.alice.ID, bad, 3)
			require.Equal(t, paygate.CodeInvalidArgument, paygate.CodeOf(err), bad)
		}
		for _, bad := range []int{-1, transfer.MaxListLimit + 1} {
			_, err := f.svc.List(f.ctx, f.alice.ID, "", bad)
			require.Equal(t, paygate.CodeInvalidArgument, paygate.CodeOf(err))
		}
	})
}

func TestOtherBankCard(t *testing.T) {
	t.Parallel()
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		f := newFixture(t, db, fixtureOpts{})
		good := "6299990000000066" // the sandbox's other-bank card (registered to nobody here)

		// Accepted: the money is held, the limits counted; PROCESSING.
		tr, err := f.svc.Send(f.ctx, f.alice.ID, req(good, 20_000))
		require.NoError(t, err)
		require.Equal(t, transfer.StatusProcessing, tr.Status)
		require.Equal(t, transfer.KindOtherBank, tr.Kind)
		require.Equal(t, "629999******0066", tr.Recipient)
		require.Empty(t, tr.RecipientCustomerID)
		require.Equal(t, transfer.DefaultInterbank, tr.Channel)
		require.True(t, strings.HasPrefix(tr.ChannelNo, "simp_"))
		require.Equal(t, int64(1_000_000-20_000), f.balance(t, f.alice.ID))
		require.Equal(t, int64(20_000), f.usage(t, f.alice.ID).Customer)
		h, err := f.cus.History(f.ctx, f.alice.ID, customer.HistoryQuery{Limit: 1})
		require.NoError(t, err)
		require.True(t, h.Entries[0].Pending)
		require.Equal(t, tr.ID, h.Entries[0].Ref)

		// Declined by the other bank (the sandbox's declined card).
		bad, err := f.svc.Send(f.ctx, f.alice.ID, req(customer.SandboxDeclinedCard, 30_000))
		require.NoError(t, err)
		require.Equal(t, transfer.StatusProcessing, bad.Status)
		require.Equal(t, int64(1_000_000-50_000), f.balance(t, f.alice.ID))

		// Not yet due: nothing asked.
		n, err := f.svc.Reconcile(f.ctx, 10)
		require.NoError(t, err)
		require.Zero(t, n)
		f.clock.Advance(10 * time.Second)
		n, err = f.svc.Reconcile(f.ctx, 10)
		require.NoError(t, err)
		require.Equal(t, 2, n)

		ok, err := f.svc.Get(f.ctx, f.alice.ID, tr.ID)
		require.NoError(t, err)
		require.Equal(t, transfer.StatusSuccess, ok.Status)
		require.Equal(t, t0.Add(10*time.Second), ok.FinishedAt)
		failed, err := f.svc.Get(f.ctx, f.alice.ID, bad.ID)
		require.NoError(t, err)
		require.Equal(t, transfer.StatusFailed, failed.Status)
		require.Equal(t, sim.PayoutFailCode, failed.FailCode)
		// The failed one's money and limit usage are back.
		require.Equal(t, int64(1_000_000-20_000), f.balance(t, f.alice.ID))
		require.Equal(t, int64(20_000), f.usage(t, f.alice.ID).Customer)
		require.Equal(t, int64(20_000), f.usage(t, f.alice.ID).Method)

		// Final: asked no more; a repeated answer books nothing.
		f.clock.Advance(time.Hour)
		n, err = f.svc.Reconcile(f.ctx, 10)
		require.NoError(t, err)
		require.Zero(t, n)
		f.balanced(t)

		// Nothing holds the card number in clear but the sealed column;
		// the logs hold none of it.
		var enc string
		require.NoError(t, db.SQL.QueryRow(`SELECT card_enc FROM customer_transfers WHERE id = $1`, tr.ID).Scan(&enc))
		require.NotEmpty(t, enc)
		require.NotContains(t, enc, good)
		require.NotContains(t, f.logs.String(), good)
		require.NotContains(t, f.logs.String(), customer.SandboxDeclinedCard)
	})
}

func TestOtherBankCardUnknownOutcome(t *testing.T) {
	t.Parallel()
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		f := newFixture(t, db, fixtureOpts{scenario: func(customer.Card) string { return string(sim.PayoutTimeout) }})
		tr, err := f.svc.Send(f.ctx, f.alice.ID, req(pan("629999", 5), 10_000))
		require.NoError(t, err)
		require.Equal(t, transfer.StatusProcessing, tr.Status)
		require.Empty(t, tr.ChannelNo) // the channel did not answer

		// Asked every 10 s, 20 s, 40 s ...: PROCESSING until the channel
		// reveals the payout (1 min), never failed for not knowing.
		for _, d := range []time.Duration{10 * time.Second, 20 * time.Second} {
			f.clock.Advance(d)
			n, err := f.svc.Reconcile(f.ctx, 10)
			require.NoError(t, err)
			require.Equal(t, 1, n)
			got, err := f.svc.Get(f.ctx, f.alice.ID, tr.ID)
			require.NoError(t, err)
			require.Equal(t, transfer.StatusProcessing, got.Status)
		}
		f.clock.Advance(40 * time.Second)
		_, err = f.svc.Reconcile(f.ctx, 10)
		require.NoError(t, err)
		got, err := f.svc.Get(f.ctx, f.alice.ID, tr.ID)
		require.NoError(t, err)
		require.Equal(t, transfer.StatusSuccess, got.Status)
		require.True(t, strings.HasPrefix(got.ChannelNo, "simp_"))
		f.balanced(t)
	})
}

func TestOtherBankCardChannelRestarted(t *testing.T) {
	t.Parallel()
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		f := newFixture(t, db, fixtureOpts{})
		tr, err := f.svc.Send(f.ctx, f.alice.ID, req(pan("629999", 8), 10_000))
		require.NoError(t, err)

		// A service whose channel forgot the payout (a restart): the payout
		// is submitted again under the same id, then learnt.
		kr, _ := testKeys(t)
		fresh, err := sim.NewPayouts(sim.PayoutConfig{Clock: f.clock})
		require.NoError(t, err)
		svc, err := transfer.New(transfer.Config{Store: db.Transfers(), Customers: f.cus, Books: f.led, Clock: f.clock, Keyring: kr, Payouts: fresh,
			Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
		require.NoError(t, err)
		f.clock.Advance(10 * time.Second)
		n, err := svc.Reconcile(f.ctx, 10)
		require.NoError(t, err)
		require.Equal(t, 1, n)
		_, err = fresh.QueryPayout(f.ctx, tr.ID)
		require.NoError(t, err)
		f.clock.Advance(20 * time.Second)
		_, err = svc.Reconcile(f.ctx, 10)
		require.NoError(t, err)
		got, err := svc.Get(f.ctx, f.alice.ID, tr.ID)
		require.NoError(t, err)
		require.Equal(t, transfer.StatusSuccess, got.Status)
		f.balanced(t)
	})
}

func TestOtherBankCardsRefusedWithoutPayouts(t *testing.T) {
	t.Parallel()
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		f := newFixture(t, db, fixtureOpts{noPayout: true})
		_, err := f.svc.Send(f.ctx, f.alice.ID, req(pan("629999", 66), 100))
		require.Equal(t, paygate.CodeForbidden, paygate.CodeOf(err))
		require.ErrorContains(t, err, "other banks' cards are not available")
		n, err := f.svc.Reconcile(f.ctx, 10)
		require.NoError(t, err)
		require.Zero(t, n)
		require.Zero(t, f.rows(t))
	})
}

func TestNewRefusesMissingDependencies(t *testing.T) {
	_, err := transfer.New(transfer.Config{})
	require.Equal(t, paygate.CodeInvalidArgument, paygate.CodeOf(err))
}
