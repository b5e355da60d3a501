package customer_test

import (
	"fmt"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"paygate"
	"paygate/customer"
	"paygate/ledger"
	"paygate/store"
	"paygate/store/storetest"
)

// move books one transfer between two accounts at the fixture's clock.
func (f *fixture) move(t testing.TB, id, from, to string, amount int64, flags ledger.TransferFlags, pendingID string) {
	t.Helper()
	_, err := f.led.CreateTransfers(f.ctx, []ledger.Transfer{{ID: id, DebitAccountID: from, CreditAccountID: to,
		Amount: amount, Flags: flags, PendingID: pendingID, Ref: "ref_" + id}})
	require.NoError(t, err)
}

// allHistory follows NextCursor to the end and returns every entry.
func allHistory(t testing.TB, f *fixture, customerID string, q customer.HistoryQuery) (entries []customer.HistoryEntry, pages int) {
	t.Helper()
	for {
		p, err := f.svc.History(f.ctx, customerID, q)
		require.NoError(t, err)
		require.LessOrEqual(t, len(p.Entries), max(q.Limit, customer.DefaultHistoryLimit))
		entries = append(entries, p.Entries...)
		pages++
		if p.NextCursor == "" {
			return entries, pages
		}
		q.Cursor = p.NextCursor
		require.Less(t, pages, 2000, "pagination ends")
	}
}

func ids(es []customer.HistoryEntry) []string {
	out := make([]string, len(es))
	for i, e := range es {
		out[i] = e.TransferID
	}
	return out
}

func TestHistory(t *testing.T) {
	t.Parallel()
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		f := newFixture(t, db)
		c := f.verified(t)
		bal := f.svc.BalanceAccount(c.ID)
		funding := ledger.SandboxFunding("CNY").ID
		_, err := f.led.CreateAccounts(f.ctx, []ledger.Account{ledger.SandboxFunding("CNY"), ledger.MerchantPending("mch_1", "CNY")})
		require.NoError(t, err)
		shop := ledger.MerchantPending("mch_1", "CNY").ID
		card := f.addCard(t, c.ID, pan(customer.SandboxOwnBIN, 1), customer.KindDebit, alice)

		// 25 top-ups an hour apart, then 3 payments, a hold still pending,
		// a hold posted and a hold voided, and a move to the card.
		var in []string
		for i := range 25 {
			id := fmt.Sprintf("in_%02d", i)
			f.move(t, id, funding, bal, int64(100*(i+1)), 0, "")
			in = append([]string{id}, in...)
			f.clock.Advance(time.Hour)
		}
		for i := range 3 {
			f.move(t, fmt.Sprintf("pay_%d", i), bal, shop, 50, 0, "")
			f.clock.Advance(time.Minute)
		}
		f.move(t, "hold_open", bal, shop, 70, ledger.Pending, "")
		f.move(t, "hold_posted", bal, shop, 80, ledger.Pending, "")
		f.move(t, "hold_post", "", "", 60, ledger.PostPending, "hold_posted")
		f.move(t, "hold_voided", bal, shop, 90, ledger.Pending, "")
		f.move(t, "hold_void", "", "", 0, ledger.VoidPending, "hold_voided")
		f.move(t, "to_card", bal, card.AccountID, 10, 0, "")

		newest := []string{"to_card", "hold_post", "hold_open", "pay_2", "pay_1", "pay_0"}
		all, pages := allHistory(t, f, c.ID, customer.HistoryQuery{})
		require.Equal(t, append(append([]string{}, newest...), in...), ids(all), "newest first; resolved holds show as their posting")
		require.Equal(t, 2, pages, "31 entries in pages of 20")
		byID := map[string]customer.HistoryEntry{}
		for _, e := range all {
			byID[e.TransferID] = e
		}
		require.Equal(t, customer.HistoryEntry{TransferID: "in_24", Time: t0.Add(24 * time.Hour), AccountingDate: "2026-11-23",
			Direction: customer.DirectionIn, Amount: paygate.Money{Amount: 2500, Currency: "CNY"}, Kind: customer.EntryTopUp, Ref: "ref_in_24"},
			byID["in_24"])
		require.Equal(t, customer.EntryPayment, byID["pay_0"].Kind)
		require.Equal(t, customer.DirectionOut, byID["pay_0"].Direction)
		require.True(t, byID["hold_open"].Pending)
		require.EqualValues(t, 60, byID["hold_post"].Amount.Amount, "a partial post shows what moved")
		require.Equal(t, customer.EntryTransfer, byID["to_card"].Kind)

		for _, tc := range []struct {
			name string
			q    customer.HistoryQuery
			want []string
		}{
			{"out only", customer.HistoryQuery{Direction: customer.DirectionOut, Limit: 4}, newest},
			{"in only, small pages", customer.HistoryQuery{Direction: customer.DirectionIn, Limit: 3}, in},
			{"a window", customer.HistoryQuery{Since: t0.Add(2 * time.Hour), Until: t0.Add(5 * time.Hour)}, []string{"in_04", "in_03", "in_02"}},
			{"since only", customer.HistoryQuery{Since: t0.Add(24 * time.Hour), Direction: customer.DirectionIn}, []string{"in_24"}},
			{"until only", customer.HistoryQuery{Until: t0.Add(time.Hour)}, []string{"in_00"}},
			{"nothing in range", customer.HistoryQuery{Since: t0.Add(-48 * time.Hour), Until: t0.Add(-24 * time.Hour)}, nil},
			{"the card", customer.HistoryQuery{CardID: card.ID}, []string{"to_card"}},
		} {
			got, _ := allHistory(t, f, c.ID, tc.q)
			require.Equal(t, tc.want, nilIfEmpty(ids(got)), tc.name)
		}

		// Another customer's card is not found; another bank's has no history.
		bob := f.register(t, bobPhone)
		_, err = f.svc.History(f.ctx, bob.ID, customer.HistoryQuery{CardID: card.ID})
		require.Equal(t, paygate.CodeNotFound, paygate.CodeOf(err))
		bobPage, err := f.svc.History(f.ctx, bob.ID, customer.HistoryQuery{})
		require.NoError(t, err)
		require.Empty(t, bobPage.Entries, "bob sees none of alice's history")
		other := f.addCard(t, c.ID, pan("622202", 7), "", alice)
		_, err = f.svc.History(f.ctx, c.ID, customer.HistoryQuery{CardID: other.ID})
		require.Equal(t, paygate.CodeInvalidArgument, paygate.CodeOf(err))
		_, err = f.svc.History(f.ctx, "cus_nobody", customer.HistoryQuery{})
		require.Equal(t, paygate.CodeNotFound, paygate.CodeOf(err))

		for _, q := range []customer.HistoryQuery{
			{Limit: customer.MaxHistoryLimit + 1}, {Limit: -1}, {Direction: "SIDEWAYS"},
			{Since: t0, Until: t0}, {Cursor: "garbage!"}, {Cursor: "aDEuMC54"}, // "h1.0.x"
		} {
			_, err := f.svc.History(f.ctx, c.ID, q)
			require.Equal(t, paygate.CodeInvalidArgument, paygate.CodeOf(err), "%+v", q)
		}
	})
}

func nilIfEmpty(s []string) []string {
	if len(s) == 0 {
		return nil
	}
	return s
}

// TestHistoryLongScan pages through more postings than one ledger batch
// and than one call's scan budget: a filter matching rarely still finds
// every entry, each once, in order.
func TestHistoryLongScan(t *testing.T) {
	t.Parallel()
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		f := newFixture(t, db)
		c := f.register(t, alicePhone)
		bal := f.svc.BalanceAccount(c.ID)
		_, err := f.led.CreateAccounts(f.ctx, []ledger.Account{ledger.SandboxFunding("CNY"), ledger.MerchantPending("mch_1", "CNY")})
		require.NoError(t, err)
		funding, shop := ledger.SandboxFunding("CNY").ID, ledger.MerchantPending("mch_1", "CNY").ID
		var outs []string
		for batch := range 3 {
			var ts []ledger.Transfer
			for i := range 500 {
				n := batch*500 + i
				ts = append(ts, ledger.Transfer{ID: fmt.Sprintf("in_%04d", n), DebitAccountID: funding, CreditAccountID: bal, Amount: 10})
				if n%700 == 0 {
					id := fmt.Sprintf("out_%04d", n)
					ts = append(ts, ledger.Transfer{ID: id, DebitAccountID: bal, CreditAccountID: shop, Amount: 5})
					outs = append([]string{id}, outs...)
				}
			}
			_, err := f.led.CreateTransfers(f.ctx, ts)
			require.NoError(t, err)
		}
		got, pages := allHistory(t, f, c.ID, customer.HistoryQuery{Direction: customer.DirectionOut, Limit: 4})
		require.Equal(t, outs, ids(got))
		require.Equal(t, 2, pages, "the first call runs out of its scan budget after two entries")
		first, err := f.svc.History(f.ctx, c.ID, customer.HistoryQuery{Direction: customer.DirectionOut, Limit: 4})
		require.NoError(t, err)
		require.Equal(t, outs[:2], ids(first.Entries))
		require.NotEmpty(t, first.NextCursor)

		all, _ := allHistory(t, f, c.ID, customer.HistoryQuery{Limit: customer.MaxHistoryLimit})
		require.Len(t, all, 1500+len(outs))
		seen := map[string]bool{}
		for _, e := range all {
			require.False(t, seen[e.TransferID], "each entry once")
			seen[e.TransferID] = true
		}
	})
}

// TestHistoryPayout: a merchant's batch payment into the balance shows as
// a payout, not as "other".
func TestHistoryPayout(t *testing.T) {
	t.Parallel()
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		f := newFixture(t, db)
		c := f.verified(t)
		clearing := ledger.Account{ID: "payout:clearing:CNY", Currency: "CNY", Code: 110, Owner: "platform", Normal: ledger.Debit}
		_, err := f.led.CreateAccounts(f.ctx, []ledger.Account{clearing})
		require.NoError(t, err)
		f.move(t, "payout_1", clearing.ID, f.svc.BalanceAccount(c.ID), 1_000, 0, "")
		all, _ := allHistory(t, f, c.ID, customer.HistoryQuery{})
		require.Len(t, all, 1)
		require.Equal(t, customer.EntryPayout, all[0].Kind)
		require.Equal(t, customer.DirectionIn, all[0].Direction)
	})
}
