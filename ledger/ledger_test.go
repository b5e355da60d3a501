package ledger_test

import (
	"fmt"
	"math"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"paygate"
	"paygate/ledger"
	"paygate/store"
	"paygate/store/storetest"
)

// base sets up: bank (debit-normal, unlimited), alice and bob (customers, no
// overdraft, alice funded with 1000), capped (credit cap: credits must not
// exceed debits), usd (another currency), fee (16 shards).
func base(t *testing.T, db *store.DB) *fixture {
	f := newFixture(t, db)
	f.account(t, "bank", "CNY", ledger.Debit, 0, 1)
	f.account(t, "alice", "CNY", ledger.Credit, ledger.DebitsMustNotExceedCredits, 1)
	f.account(t, "bob", "CNY", ledger.Credit, ledger.DebitsMustNotExceedCredits, 1)
	f.account(t, "capped", "CNY", ledger.Debit, ledger.CreditsMustNotExceedDebits, 1)
	f.account(t, "usd", "USD", ledger.Credit, 0, 1)
	f.account(t, "fee", "CNY", ledger.Credit, 0, 16)
	f.transfer(t, ledger.Transfer{ID: "fund-alice", DebitAccountID: "bank", CreditAccountID: "alice", Amount: 1000})
	return f
}

func TestSmoke(t *testing.T) {
	t.Parallel()
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		f := newFixture(t, db)
		f.account(t, "bank", "CNY", ledger.Debit, 0, 1)
		f.account(t, "alice", "CNY", ledger.Credit, ledger.DebitsMustNotExceedCredits, 1)
		f.account(t, "fee", "CNY", ledger.Credit, 0, 16)
		r := f.transfer(t, ledger.Transfer{ID: "t1", DebitAccountID: "bank", CreditAccountID: "alice", Amount: 1000})
		require.False(t, r[0].Existed)
		r = f.transfer(t, ledger.Transfer{ID: "t1", DebitAccountID: "bank", CreditAccountID: "alice", Amount: 1000})
		require.True(t, r[0].Existed)
		require.Equal(t, int64(1000), f.balance(t, "alice").CreditsPosted)
		f.transfer(t, ledger.Transfer{ID: "t2", DebitAccountID: "alice", CreditAccountID: "fee", Amount: 10})
		require.Equal(t, int64(10), f.balance(t, "fee").CreditsPosted)
	})
}

// TestTransferRejections proves every rejection returns its stable code and
// changes nothing.
func TestTransferRejections(t *testing.T) {
	t.Parallel()
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		f := base(t, db)
		f.transfer(t, ledger.Transfer{ID: "hold", DebitAccountID: "alice", CreditAccountID: "bob", Amount: 100, Flags: ledger.Pending})
		f.transfer(t, ledger.Transfer{ID: "hold2", DebitAccountID: "alice", CreditAccountID: "bob", Amount: 100, Flags: ledger.Pending, Timeout: time.Minute})
		f.transfer(t, ledger.Transfer{ID: "done", DebitAccountID: "alice", CreditAccountID: "bob", Amount: 50, Flags: ledger.Pending})
		f.transfer(t, ledger.Transfer{ID: "done-void", PendingID: "done", Flags: ledger.VoidPending})
		f.account(t, "shut", "CNY", ledger.Credit, 0, 1)
		require.NoError(t, f.l.CloseAccount(f.ctx, "shut"))
		f.account(t, "big", "CNY", ledger.Credit, 0, 1)
		f.account(t, "bank2", "CNY", ledger.Debit, 0, 1)
		f.transfer(t, ledger.Transfer{ID: "fund-big", DebitAccountID: "bank2", CreditAccountID: "big", Amount: math.MaxInt64})
		f.clock.Advance(2 * time.Minute) // hold2 is now expired
		before := snapshot(t, f)

		tr := func(id, debit, credit string, amount int64) ledger.Transfer {
			return ledger.Transfer{ID: id, DebitAccountID: debit, CreditAccountID: credit, Amount: amount}
		}
		cases := []struct {
			name  string
			ts    []ledger.Transfer
			code  paygate.Code
			field string
		}{
			{"zero amount", []ledger.Transfer{tr("x", "bank", "bob", 0)}, paygate.CodeAmountNotPositive, "amount"},
			{"negative amount", []ledger.Transfer{tr("x", "bank", "bob", -5)}, paygate.CodeAmountNotPositive, "amount"},
			{"insufficient funds", []ledger.Transfer{tr("x", "alice", "bob", 1001)}, paygate.CodeInsufficientFunds, "amount"},
			{"insufficient counting holds", []ledger.Transfer{tr("x", "alice", "bob", 801)}, paygate.CodeInsufficientFunds, "amount"},
			{"credit limit", []ledger.Transfer{tr("x", "bank", "capped", 1)}, paygate.CodeLimitExceeded, "amount"},
			{"currency mismatch", []ledger.Transfer{tr("x", "bank", "usd", 1)}, paygate.CodeCurrencyMismatch, "credit_account_id"},
			{"currency field mismatch", []ledger.Transfer{{ID: "x", DebitAccountID: "bank", CreditAccountID: "bob", Amount: 1, Currency: "USD"}}, paygate.CodeCurrencyMismatch, "currency"},
			{"unknown currency", []ledger.Transfer{{ID: "x", DebitAccountID: "bank", CreditAccountID: "bob", Amount: 1, Currency: "XXX"}}, paygate.CodeUnknownCurrency, "currency"},
			{"debit account not found", []ledger.Transfer{tr("x", "nobody", "bob", 1)}, paygate.CodeAccountNotFound, "debit_account_id"},
			{"credit account not found", []ledger.Transfer{tr("x", "bank", "nobody", 1)}, paygate.CodeAccountNotFound, "credit_account_id"},
			{"account closed", []ledger.Transfer{tr("x", "bank", "shut", 1)}, paygate.CodeAccountClosed, "credit_account_id"},
			{"balance overflow", []ledger.Transfer{tr("x", "bank", "big", 1)}, paygate.CodeOverflow, ""},
			{"same account", []ledger.Transfer{tr("x", "bob", "bob", 1)}, paygate.CodeInvalidArgument, "credit_account_id"},
			{"empty id", []ledger.Transfer{tr("", "bank", "bob", 1)}, paygate.CodeInvalidArgument, "id"},
			{"id with space", []ledger.Transfer{tr("a b", "bank", "bob", 1)}, paygate.CodeInvalidArgument, "id"},
			{"duplicate id in journal", []ledger.Transfer{tr("x", "bank", "bob", 1), tr("x", "bank", "bob", 1)}, paygate.CodeInvalidArgument, "id"},
			{"id conflict amount", []ledger.Transfer{tr("fund-alice", "bank", "alice", 999)}, paygate.CodeIDConflict, "amount"},
			{"id conflict account", []ledger.Transfer{tr("fund-alice", "bank", "bob", 1000)}, paygate.CodeIDConflict, "credit_account_id"},
			{"id conflict flags", []ledger.Transfer{{ID: "fund-alice", DebitAccountID: "bank", CreditAccountID: "alice", Amount: 1000, Flags: ledger.Pending}}, paygate.CodeIDConflict, "flags"},
			{"journal mixing used and new ids", []ledger.Transfer{tr("fund-alice", "bank", "alice", 1000), tr("x", "bank", "bob", 1)}, paygate.CodeIDConflict, "id"},
			{"journal with a bad second leg", []ledger.Transfer{tr("x", "bank", "bob", 10), tr("y", "alice", "bob", 5000)}, paygate.CodeInsufficientFunds, "amount"},
			{"post unknown hold", []ledger.Transfer{{ID: "x", PendingID: "nope", Flags: ledger.PostPending}}, paygate.CodeNotFound, "pending_id"},
			{"post beyond hold", []ledger.Transfer{{ID: "x", PendingID: "hold", Flags: ledger.PostPending, Amount: 101}}, paygate.CodeLimitExceeded, "amount"},
			{"post resolved hold", []ledger.Transfer{{ID: "x", PendingID: "done", Flags: ledger.PostPending}}, paygate.CodeAlreadyResolved, "pending_id"},
			{"void resolved hold", []ledger.Transfer{{ID: "x", PendingID: "done", Flags: ledger.VoidPending}}, paygate.CodeAlreadyResolved, "pending_id"},
			{"post expired hold", []ledger.Transfer{{ID: "x", PendingID: "hold2", Flags: ledger.PostPending}}, paygate.CodeHoldExpired, "pending_id"},
			{"post other accounts", []ledger.Transfer{{ID: "x", PendingID: "hold", Flags: ledger.PostPending, DebitAccountID: "bank"}}, paygate.CodeInvalidArgument, "debit_account_id"},
			{"partial void", []ledger.Transfer{{ID: "x", PendingID: "hold", Flags: ledger.VoidPending, Amount: 3}}, paygate.CodeInvalidArgument, "amount"},
			{"pending id on single", []ledger.Transfer{{ID: "x", DebitAccountID: "bank", CreditAccountID: "bob", Amount: 1, PendingID: "hold"}}, paygate.CodeInvalidArgument, "pending_id"},
			{"two phase flags", []ledger.Transfer{{ID: "x", PendingID: "hold", Flags: ledger.PostPending | ledger.VoidPending}}, paygate.CodeInvalidArgument, "flags"},
			{"caller sets expired", []ledger.Transfer{{ID: "x", PendingID: "hold", Flags: ledger.VoidPending | ledger.Expired}}, paygate.CodeInvalidArgument, "flags"},
			{"timeout on single", []ledger.Transfer{{ID: "x", DebitAccountID: "bank", CreditAccountID: "bob", Amount: 1, Timeout: time.Second}}, paygate.CodeInvalidArgument, "timeout"},
			{"fractional timeout", []ledger.Transfer{{ID: "x", DebitAccountID: "bank", CreditAccountID: "bob", Amount: 1, Flags: ledger.Pending, Timeout: 1500 * time.Millisecond}}, paygate.CodeInvalidArgument, "timeout"},
			{"empty journal", nil, paygate.CodeInvalidArgument, ""},
		}
		for _, c := range cases {
			_, err := f.l.CreateTransfers(f.ctx, c.ts)
			requireCode(t, err, c.code, c.name)
			var pe *paygate.Error
			require.ErrorAs(t, err, &pe, c.name)
			require.Equal(t, c.field, pe.Field, c.name)
			require.Equal(t, before, snapshot(t, f), "%s changed the ledger", c.name)
		}
		tooMany := make([]ledger.Transfer, ledger.MaxBatch+1)
		for i := range tooMany {
			tooMany[i] = tr(fmt.Sprint("m", i), "bank", "bob", 1)
		}
		_, err := f.l.CreateTransfers(f.ctx, tooMany)
		requireCode(t, err, paygate.CodeInvalidArgument)
	})
}

// snapshot captures every balance and the transfer count.
func snapshot(t *testing.T, f *fixture) map[string]ledger.Balance {
	t.Helper()
	ids := []string{"bank", "alice", "bob", "capped", "usd", "fee", "shut", "big"}
	as, err := f.l.LookupAccounts(f.ctx, ids)
	require.NoError(t, err)
	m := map[string]ledger.Balance{}
	for _, a := range as {
		m[a.ID] = a.Balance
	}
	var n int
	require.NoError(t, f.db.SQL.QueryRow(`SELECT COUNT(*) FROM ledger_transfers`).Scan(&n))
	m["#transfers"] = ledger.Balance{DebitsPosted: int64(n)}
	return m
}

func TestCreateAccounts(t *testing.T) {
	t.Parallel()
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		f := newFixture(t, db)
		a := ledger.Account{ID: "a1", Currency: "CNY", Normal: ledger.Credit, Code: 10, Owner: "mch_1", Flags: ledger.DebitsMustNotExceedCredits}
		out, err := f.l.CreateAccounts(f.ctx, []ledger.Account{a})
		require.NoError(t, err)
		require.Equal(t, 1, out[0].Shards)
		again, err := f.l.CreateAccounts(f.ctx, []ledger.Account{a})
		require.NoError(t, err, "same id, same fields is idempotent")
		require.Equal(t, out[0].ID, again[0].ID)

		cases := []struct {
			name  string
			a     ledger.Account
			code  paygate.Code
			field string
		}{
			{"conflict currency", ledger.Account{ID: "a1", Currency: "USD", Normal: ledger.Credit, Code: 10, Owner: "mch_1", Flags: ledger.DebitsMustNotExceedCredits}, paygate.CodeIDConflict, "currency"},
			{"conflict owner", ledger.Account{ID: "a1", Currency: "CNY", Normal: ledger.Credit, Code: 10, Owner: "mch_2", Flags: ledger.DebitsMustNotExceedCredits}, paygate.CodeIDConflict, "owner"},
			{"unknown currency", ledger.Account{ID: "a2", Currency: "ABC", Normal: ledger.Credit}, paygate.CodeUnknownCurrency, "currency"},
			{"lower-case currency", ledger.Account{ID: "a2", Currency: "cny", Normal: ledger.Credit}, paygate.CodeUnknownCurrency, "currency"},
			{"no side", ledger.Account{ID: "a2", Currency: "CNY"}, paygate.CodeInvalidArgument, "normal_side"},
			{"too many shards", ledger.Account{ID: "a2", Currency: "CNY", Normal: ledger.Credit, Shards: ledger.MaxShards + 1}, paygate.CodeInvalidArgument, "shards"},
			{"both limits", ledger.Account{ID: "a2", Currency: "CNY", Normal: ledger.Credit, Flags: ledger.DebitsMustNotExceedCredits | ledger.CreditsMustNotExceedDebits}, paygate.CodeInvalidArgument, "flags"},
			{"created closed", ledger.Account{ID: "a2", Currency: "CNY", Normal: ledger.Credit, Flags: ledger.Closed}, paygate.CodeInvalidArgument, "flags"},
			{"empty id", ledger.Account{Currency: "CNY", Normal: ledger.Credit}, paygate.CodeInvalidArgument, "id"},
		}
		for _, c := range cases {
			_, err := f.l.CreateAccounts(f.ctx, []ledger.Account{c.a})
			requireCode(t, err, c.code, c.name)
			var pe *paygate.Error
			require.ErrorAs(t, err, &pe)
			require.Equal(t, c.field, pe.Field, c.name)
		}
		as, err := f.l.LookupAccounts(f.ctx, []string{"a1", "a2"})
		require.NoError(t, err)
		require.Len(t, as, 1, "no rejected account was created")
	})
}

func TestTwoPhase(t *testing.T) {
	t.Parallel()
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		f := base(t, db)
		// Hold 300, post 120: 180 released.
		r := f.transfer(t, ledger.Transfer{ID: "h1", DebitAccountID: "alice", CreditAccountID: "bob", Amount: 300, Flags: ledger.Pending})
		require.Equal(t, ledger.HoldPending, r[0].HoldStatus)
		require.Equal(t, ledger.Balance{DebitsPending: 300, CreditsPosted: 1000}, f.balance(t, "alice"))
		require.Equal(t, int64(700), f.balance(t, "alice").Available(ledger.Credit))
		f.transfer(t, ledger.Transfer{ID: "p1", PendingID: "h1", Flags: ledger.PostPending, Amount: 120})
		require.Equal(t, ledger.Balance{DebitsPosted: 120, CreditsPosted: 1000}, f.balance(t, "alice"))
		require.Equal(t, ledger.Balance{CreditsPosted: 120}, f.balance(t, "bob"))
		ts, err := f.l.LookupTransfers(f.ctx, []string{"h1", "p1"})
		require.NoError(t, err)
		for _, x := range ts {
			if x.ID == "h1" {
				require.Equal(t, ledger.HoldPosted, x.HoldStatus)
			} else {
				require.Equal(t, "alice", x.DebitAccountID, "post takes the hold's accounts")
				require.Equal(t, int64(120), x.Amount)
			}
		}
		// A retried post is idempotent; a second different post is refused.
		r = f.transfer(t, ledger.Transfer{ID: "p1", PendingID: "h1", Flags: ledger.PostPending, Amount: 120})
		require.True(t, r[0].Existed)
		_, err = f.l.CreateTransfers(f.ctx, []ledger.Transfer{{ID: "p2", PendingID: "h1", Flags: ledger.PostPending}})
		requireCode(t, err, paygate.CodeAlreadyResolved)

		// Post in full with amount 0, and retry with 0 is still identical.
		f.transfer(t, ledger.Transfer{ID: "h2", DebitAccountID: "alice", CreditAccountID: "bob", Amount: 80, Flags: ledger.Pending})
		r = f.transfer(t, ledger.Transfer{ID: "p3", PendingID: "h2", Flags: ledger.PostPending})
		require.Equal(t, int64(80), r[0].Amount)
		r = f.transfer(t, ledger.Transfer{ID: "p3", PendingID: "h2", Flags: ledger.PostPending})
		require.True(t, r[0].Existed)

		// Void releases everything.
		f.transfer(t, ledger.Transfer{ID: "h3", DebitAccountID: "alice", CreditAccountID: "bob", Amount: 500, Flags: ledger.Pending})
		f.transfer(t, ledger.Transfer{ID: "v3", PendingID: "h3", Flags: ledger.VoidPending})
		require.Equal(t, ledger.Balance{DebitsPosted: 200, CreditsPosted: 1000}, f.balance(t, "alice"))

		// Hold, post and a new hold in one journal.
		r = f.transfer(t,
			ledger.Transfer{ID: "h4", DebitAccountID: "alice", CreditAccountID: "bob", Amount: 50, Flags: ledger.Pending},
			ledger.Transfer{ID: "p4", PendingID: "h4", Flags: ledger.PostPending, Amount: 20},
		)
		require.Equal(t, ledger.HoldPosted, r[0].HoldStatus)
		require.Equal(t, ledger.Balance{DebitsPosted: 220, CreditsPosted: 1000}, f.balance(t, "alice"))
		ts, err = f.l.LookupTransfers(f.ctx, []string{"h1", "h2", "h3", "h4"})
		require.NoError(t, err)
		status := map[string]ledger.HoldStatus{}
		for _, x := range ts {
			status[x.ID] = x.HoldStatus
		}
		require.Equal(t, map[string]ledger.HoldStatus{"h1": ledger.HoldPosted, "h2": ledger.HoldPosted, "h3": ledger.HoldVoided,
			"h4": ledger.HoldPosted}, status, "stored as resolved, the hold of the same journal included")
	})
}

func TestExpiry(t *testing.T) {
	t.Parallel()
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		f := base(t, db)
		f.transfer(t,
			ledger.Transfer{ID: "h1", DebitAccountID: "alice", CreditAccountID: "bob", Amount: 100, Flags: ledger.Pending, Timeout: time.Hour},
			ledger.Transfer{ID: "h2", DebitAccountID: "alice", CreditAccountID: "bob", Amount: 200, Flags: ledger.Pending, Timeout: 2 * time.Hour},
			ledger.Transfer{ID: "h3", DebitAccountID: "alice", CreditAccountID: "bob", Amount: 300, Flags: ledger.Pending},
		)
		n, err := f.l.ExpireHolds(f.ctx, 10)
		require.NoError(t, err)
		require.Zero(t, n, "nothing is due yet")

		f.clock.Advance(time.Hour) // exactly at h1's deadline
		_, err = f.l.CreateTransfers(f.ctx, []ledger.Transfer{{ID: "late", PendingID: "h1", Flags: ledger.PostPending}})
		requireCode(t, err, paygate.CodeHoldExpired)
		n, err = f.l.ExpireHolds(f.ctx, 10)
		require.NoError(t, err)
		require.Equal(t, 1, n)
		require.Equal(t, int64(500), f.balance(t, "alice").DebitsPending)

		f.clock.Advance(100 * time.Hour)
		n, err = f.l.ExpireHolds(f.ctx, 10)
		require.NoError(t, err)
		require.Equal(t, 1, n, "h3 has no timeout and never expires")
		n, err = f.l.ExpireHolds(f.ctx, 10)
		require.NoError(t, err)
		require.Zero(t, n, "an expired hold is expired once")
		require.Equal(t, ledger.Balance{DebitsPending: 300, CreditsPosted: 1000}, f.balance(t, "alice"))
		ts, err := f.l.LookupTransfers(f.ctx, []string{"h1", "h2", "expire_h1"})
		require.NoError(t, err)
		require.Len(t, ts, 3)
		for _, x := range ts {
			if x.ID == "expire_h1" {
				require.Equal(t, ledger.VoidPending|ledger.Expired, x.Flags)
				continue
			}
			require.Equal(t, ledger.HoldExpired, x.HoldStatus)
		}
		_, err = f.l.CreateTransfers(f.ctx, []ledger.Transfer{{ID: "v1", PendingID: "h1", Flags: ledger.VoidPending}})
		requireCode(t, err, paygate.CodeAlreadyResolved)
	})
}

func TestClosedAccountReleasesHolds(t *testing.T) {
	t.Parallel()
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		f := base(t, db)
		f.transfer(t, ledger.Transfer{ID: "h1", DebitAccountID: "alice", CreditAccountID: "bob", Amount: 100, Flags: ledger.Pending})
		f.transfer(t, ledger.Transfer{ID: "h2", DebitAccountID: "alice", CreditAccountID: "bob", Amount: 100, Flags: ledger.Pending})
		require.NoError(t, f.l.CloseAccount(f.ctx, "alice"))
		require.NoError(t, f.l.CloseAccount(f.ctx, "alice"), "closing twice is a no-op")
		_, err := f.l.CreateTransfers(f.ctx, []ledger.Transfer{{ID: "p1", PendingID: "h1", Flags: ledger.PostPending}})
		requireCode(t, err, paygate.CodeAccountClosed)
		f.transfer(t, ledger.Transfer{ID: "v2", PendingID: "h2", Flags: ledger.VoidPending})
		_, err = f.l.CreateTransfers(f.ctx, []ledger.Transfer{{ID: "x", DebitAccountID: "bank", CreditAccountID: "alice", Amount: 1}})
		requireCode(t, err, paygate.CodeAccountClosed)
		requireCode(t, f.l.CloseAccount(f.ctx, "nobody"), paygate.CodeAccountNotFound)
		as, err := f.l.LookupAccounts(f.ctx, []string{"alice"})
		require.NoError(t, err)
		require.NotZero(t, as[0].Flags&ledger.Closed)
	})
}

func TestShardedAccountLimit(t *testing.T) {
	t.Parallel()
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		f := base(t, db)
		// A sharded no-overdraft account: credits land on many shards, and a
		// debit is checked against the sum of all of them.
		f.account(t, "pool", "CNY", ledger.Credit, ledger.DebitsMustNotExceedCredits, 8)
		for i := 0; i < 20; i++ {
			f.transfer(t, ledger.Transfer{ID: fmt.Sprint("in", i), DebitAccountID: "bank", CreditAccountID: "pool", Amount: 10})
		}
		var shards int
		require.NoError(t, db.SQL.QueryRow(`SELECT COUNT(*) FROM ledger_balances WHERE account_id = 'pool' AND credits_posted > 0`).Scan(&shards))
		require.Greater(t, shards, 1, "credits spread over shards")
		f.transfer(t, ledger.Transfer{ID: "out1", DebitAccountID: "pool", CreditAccountID: "bob", Amount: 150})
		_, err := f.l.CreateTransfers(f.ctx, []ledger.Transfer{{ID: "out2", DebitAccountID: "pool", CreditAccountID: "bob", Amount: 51}})
		requireCode(t, err, paygate.CodeInsufficientFunds)
		f.transfer(t, ledger.Transfer{ID: "out3", DebitAccountID: "pool", CreditAccountID: "bob", Amount: 50})
		require.Equal(t, int64(0), f.balance(t, "pool").Net(ledger.Credit))
	})
}

func TestAccountingDate(t *testing.T) {
	t.Parallel()
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		f := base(t, db)
		// 2026-11-22 23:59:59 and 2026-11-23 00:00:00 in Shanghai.
		f.clock.Set(time.Date(2026, 11, 22, 15, 59, 59, 0, time.UTC))
		r1 := f.transfer(t, ledger.Transfer{ID: "d1", DebitAccountID: "bank", CreditAccountID: "bob", Amount: 1})
		f.clock.Advance(time.Second)
		r2 := f.transfer(t, ledger.Transfer{ID: "d2", DebitAccountID: "bank", CreditAccountID: "bob", Amount: 2})
		require.Equal(t, paygate.Date("2026-11-22"), r1[0].AccountingDate)
		require.Equal(t, paygate.Date("2026-11-23"), r2[0].AccountingDate)

		tb, err := f.l.TrialBalance(f.ctx, "2026-11-22")
		require.NoError(t, err)
		require.True(t, tb.Balanced())
		require.Equal(t, ledger.TrialBalanceTotal{Debits: 1001, Credits: 1001}, tb.Totals["CNY"])
		tb, err = f.l.TrialBalance(f.ctx, "2026-11-23")
		require.NoError(t, err)
		require.Equal(t, ledger.TrialBalanceTotal{Debits: 1003, Credits: 1003}, tb.Totals["CNY"])
		for _, ln := range tb.Lines {
			if ln.AccountID == "bob" {
				require.Equal(t, int64(3), ln.CreditsPosted)
			}
		}
		tb, err = f.l.TrialBalance(f.ctx, "2026-11-21")
		require.NoError(t, err)
		require.Equal(t, ledger.TrialBalanceTotal{}, tb.Totals["CNY"])
		_, err = f.l.TrialBalance(f.ctx, "22/11/2026")
		requireCode(t, err, paygate.CodeInvalidArgument)
	})
}

func TestListTransfers(t *testing.T) {
	t.Parallel()
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		f := base(t, db)
		for i := 0; i < 7; i++ {
			f.transfer(t, ledger.Transfer{ID: fmt.Sprint("in", i), DebitAccountID: "bank", CreditAccountID: "bob", Amount: 10})
			f.transfer(t, ledger.Transfer{ID: fmt.Sprint("out", i), DebitAccountID: "bob", CreditAccountID: "alice", Amount: 1})
			f.transfer(t, ledger.Transfer{ID: fmt.Sprint("other", i), DebitAccountID: "bank", CreditAccountID: "alice", Amount: 1})
		}
		var got []string
		cursor := ""
		pages := 0
		for {
			p, err := f.l.ListTransfers(f.ctx, "bob", cursor, 4)
			require.NoError(t, err)
			pages++
			for _, x := range p.Transfers {
				got = append(got, x.ID)
			}
			if p.NextCursor == "" {
				break
			}
			cursor = p.NextCursor
		}
		require.Equal(t, 4, pages)
		require.Len(t, got, 14)
		require.Equal(t, []string{"out6", "in6", "out5"}, got[:3], "newest first")
		require.Equal(t, "in0", got[13])

		_, err := f.l.ListTransfers(f.ctx, "nobody", "", 10)
		requireCode(t, err, paygate.CodeAccountNotFound)
		_, err = f.l.ListTransfers(f.ctx, "bob", "!!", 10)
		requireCode(t, err, paygate.CodeInvalidArgument)
		_, err = f.l.ListTransfers(f.ctx, "bob", "", ledger.MaxPageSize+1)
		requireCode(t, err, paygate.CodeInvalidArgument)
	})
}

// TestJournalLimitsInOrder: each transfer of a journal sees the balances
// the earlier ones left (a credit earlier in the journal pays a later
// debit; a debit before the credit that would pay it is refused), on
// limits of both sides, with the accounts cached (PostgreSQL's
// one-statement path) — and a refused journal changes nothing.
func TestJournalLimitsInOrder(t *testing.T) {
	t.Parallel()
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		f := newFixture(t, db)
		f.account(t, "src", "CNY", ledger.Debit, 0, 1)
		f.account(t, "wallet", "CNY", ledger.Credit, ledger.DebitsMustNotExceedCredits, 1)
		f.account(t, "capped", "CNY", ledger.Debit, ledger.CreditsMustNotExceedDebits, 1)
		f.account(t, "sink", "CNY", ledger.Credit, 0, 4)
		// Warm the account cache.
		f.transfer(t, ledger.Transfer{ID: "warm", DebitAccountID: "src", CreditAccountID: "sink", Amount: 1})

		cases := []struct {
			name    string
			journal []ledger.Transfer
			code    paygate.Code // "" when it applies
		}{
			{"credit then debit", []ledger.Transfer{
				{ID: "a1", DebitAccountID: "src", CreditAccountID: "wallet", Amount: 100},
				{ID: "a2", DebitAccountID: "wallet", CreditAccountID: "sink", Amount: 60, Flags: ledger.Pending},
				{ID: "a3", DebitAccountID: "wallet", CreditAccountID: "sink", Amount: 40},
			}, ""},
			{"one more than left", []ledger.Transfer{
				{ID: "b1", DebitAccountID: "wallet", CreditAccountID: "sink", Amount: 1},
			}, paygate.CodeInsufficientFunds},
			{"debit before its credit", []ledger.Transfer{
				{ID: "c1", DebitAccountID: "wallet", CreditAccountID: "sink", Amount: 50},
				{ID: "c2", DebitAccountID: "src", CreditAccountID: "wallet", Amount: 50},
			}, paygate.CodeInsufficientFunds},
			{"capped: debit then credit", []ledger.Transfer{
				{ID: "d1", DebitAccountID: "capped", CreditAccountID: "sink", Amount: 70},
				{ID: "d2", DebitAccountID: "src", CreditAccountID: "capped", Amount: 70},
			}, ""},
			{"capped: credit before its debit", []ledger.Transfer{
				{ID: "e1", DebitAccountID: "src", CreditAccountID: "capped", Amount: 10},
				{ID: "e2", DebitAccountID: "capped", CreditAccountID: "sink", Amount: 10},
			}, paygate.CodeLimitExceeded},
			{"overflow", []ledger.Transfer{
				{ID: "f1", DebitAccountID: "src", CreditAccountID: "sink", Amount: math.MaxInt64},
				{ID: "f2", DebitAccountID: "src", CreditAccountID: "sink", Amount: math.MaxInt64},
			}, paygate.CodeOverflow},
		}
		for _, c := range cases {
			before := map[string]ledger.Balance{}
			for _, id := range []string{"src", "wallet", "capped", "sink"} {
				before[id] = f.balance(t, id)
			}
			res, err := f.l.CreateTransfers(f.ctx, c.journal)
			if c.code == "" {
				require.NoError(t, err, c.name)
				require.Len(t, res, len(c.journal))
				for i, r := range res {
					require.False(t, r.Existed)
					require.Equal(t, c.journal[i].ID, r.ID)
				}
				again, err := f.l.CreateTransfers(f.ctx, c.journal)
				require.NoError(t, err, c.name)
				require.True(t, again[0].Existed, "a resubmission answers the stored journal")
				continue
			}
			requireCode(t, err, c.code, c.name)
			for id, b := range before {
				require.Equal(t, b, f.balance(t, id), "%s: %s unchanged", c.name, id)
			}
			ids := make([]string, len(c.journal))
			for i, tr := range c.journal {
				ids[i] = tr.ID
			}
			got, err := f.l.LookupTransfers(f.ctx, ids)
			require.NoError(t, err)
			require.Empty(t, got, c.name)
		}
		require.Equal(t, ledger.Balance{DebitsPending: 60, DebitsPosted: 40, CreditsPosted: 100}, f.balance(t, "wallet"))
		require.Equal(t, ledger.Balance{DebitsPosted: 70, CreditsPosted: 70}, f.balance(t, "capped"))

		// A closed account refuses the journal; nothing changes.
		require.NoError(t, f.l.CloseAccount(f.ctx, "capped"))
		_, err := f.l.CreateTransfers(f.ctx, []ledger.Transfer{{ID: "g1", DebitAccountID: "src", CreditAccountID: "sink", Amount: 5},
			{ID: "g2", DebitAccountID: "capped", CreditAccountID: "sink", Amount: 5}})
		requireCode(t, err, paygate.CodeAccountClosed)
		got, err := f.l.LookupTransfers(f.ctx, []string{"g1", "g2"})
		require.NoError(t, err)
		require.Empty(t, got)
	})
}
