package ledger_test

import (
	"context"
	"fmt"
	"slices"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"pgregory.net/rapid"

	"paygate"
	"paygate/ledger"
	"paygate/store"
	"paygate/store/storetest"
)

// model is the obvious in-memory ledger the engine must agree with.
type model struct {
	flags map[string]ledger.AccountFlags
	bal   map[string]*ledger.Balance
	holds map[string]*mhold
	done  map[string]ledger.Transfer // accepted transfers, by id, as submitted
}

type mhold struct {
	debit, credit string
	amount        int64
	status        ledger.HoldStatus
	expires       time.Time
}

// check applies a single or pending transfer's limits; the model's view of
// the rejection code.
func (m *model) limits(debit, credit string, amount int64) paygate.Code {
	d, c := m.bal[debit], m.bal[credit]
	if m.flags[debit]&ledger.DebitsMustNotExceedCredits != 0 && d.DebitsPending+d.DebitsPosted+amount > d.CreditsPosted {
		return paygate.CodeInsufficientFunds
	}
	if m.flags[credit]&ledger.CreditsMustNotExceedDebits != 0 && c.CreditsPending+c.CreditsPosted+amount > c.DebitsPosted {
		return paygate.CodeLimitExceeded
	}
	return ""
}

// TestLedgerProperties runs random sequences of transfers, journals, holds,
// posts, voids, expiries and resubmissions against the engine and the model,
// and after every step compares balances and checks the invariants.
func TestLedgerProperties(t *testing.T) {
	t.Parallel()
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		var run atomic.Int64
		ctx := context.Background()
		rapid.Check(t, func(rt *rapid.T) {
			clock := paygate.NewManualClock(t0)
			l := ledger.New(db.Ledger(), clock, paygate.DefaultCalendar())
			p := fmt.Sprintf("r%d_", run.Add(1)) // each run has its own accounts
			names := []string{"bank", "a", "b", "c", "capped", "fee"}
			m := &model{flags: map[string]ledger.AccountFlags{}, bal: map[string]*ledger.Balance{}, holds: map[string]*mhold{}, done: map[string]ledger.Transfer{}}
			var accts []ledger.Account
			for _, n := range names {
				a := ledger.Account{ID: p + n, Currency: "CNY", Normal: ledger.Credit}
				switch n {
				case "bank":
					a.Normal = ledger.Debit
				case "a", "b", "c":
					a.Flags = ledger.DebitsMustNotExceedCredits
				case "capped":
					a.Normal, a.Flags = ledger.Debit, ledger.CreditsMustNotExceedDebits
				case "fee":
					a.Shards = 4
				}
				accts = append(accts, a)
				m.flags[a.ID] = a.Flags
				m.bal[a.ID] = &ledger.Balance{}
			}
			_, err := l.CreateAccounts(ctx, accts)
			require.NoError(rt, err)
			acct := rapid.SampledFrom(accts)
			seq := 0
			nextID := func() string { seq++; return fmt.Sprintf("%st%d", p, seq) }
			var holdIDs []string

			submit := func(ts []ledger.Transfer, want paygate.Code) []ledger.Result {
				res, err := l.CreateTransfers(ctx, ts)
				if want == "" {
					require.NoError(rt, err)
				} else {
					require.Equal(rt, want, paygate.CodeOf(err), "got %v", err)
				}
				return res
			}
			pair := func(rt *rapid.T) (string, string) {
				d := acct.Draw(rt, "debit").ID
				c := acct.Filter(func(a ledger.Account) bool { return a.ID != d }).Draw(rt, "credit").ID
				return d, c
			}
			applyPosted := func(d, c string, amt int64) {
				m.bal[d].DebitsPosted += amt
				m.bal[c].CreditsPosted += amt
			}

			steps := rapid.IntRange(1, 40).Draw(rt, "steps")
			for i := 0; i < steps; i++ {
				switch rapid.IntRange(0, 7).Draw(rt, "action") {
				case 0, 1: // single transfer
					d, c := pair(rt)
					amt := rapid.Int64Range(1, 500).Draw(rt, "amount")
					tr := ledger.Transfer{ID: nextID(), DebitAccountID: d, CreditAccountID: c, Amount: amt}
					want := m.limits(d, c, amt)
					submit([]ledger.Transfer{tr}, want)
					if want == "" {
						applyPosted(d, c, amt)
						m.done[tr.ID] = tr
					}
				case 2: // two-leg journal: both or neither
					d1, c1 := pair(rt)
					d2, c2 := pair(rt)
					a1, a2 := rapid.Int64Range(1, 300).Draw(rt, "a1"), rapid.Int64Range(1, 300).Draw(rt, "a2")
					t1 := ledger.Transfer{ID: nextID(), DebitAccountID: d1, CreditAccountID: c1, Amount: a1}
					t2 := ledger.Transfer{ID: nextID(), DebitAccountID: d2, CreditAccountID: c2, Amount: a2}
					want := m.limits(d1, c1, a1)
					if want == "" {
						applyPosted(d1, c1, a1)
						want = m.limits(d2, c2, a2)
						if want != "" {
							m.bal[d1].DebitsPosted -= a1 // the journal rolls back
							m.bal[c1].CreditsPosted -= a1
						}
					}
					submit([]ledger.Transfer{t1, t2}, want)
					if want == "" {
						applyPosted(d2, c2, a2)
						m.done[t1.ID], m.done[t2.ID] = t1, t2
					}
				case 3: // hold
					d, c := pair(rt)
					amt := rapid.Int64Range(1, 500).Draw(rt, "amount")
					timeout := time.Duration(rapid.IntRange(0, 2).Draw(rt, "timeout")) * time.Minute
					tr := ledger.Transfer{ID: nextID(), DebitAccountID: d, CreditAccountID: c, Amount: amt, Flags: ledger.Pending, Timeout: timeout}
					want := m.limits(d, c, amt)
					submit([]ledger.Transfer{tr}, want)
					if want == "" {
						m.bal[d].DebitsPending += amt
						m.bal[c].CreditsPending += amt
						h := &mhold{debit: d, credit: c, amount: amt, status: ledger.HoldPending}
						if timeout > 0 {
							h.expires = clock.Now().Add(timeout)
						}
						m.holds[tr.ID] = h
						holdIDs = append(holdIDs, tr.ID)
						m.done[tr.ID] = tr
					}
				case 4, 5: // post or void a hold
					if len(holdIDs) == 0 {
						continue
					}
					hid := rapid.SampledFrom(holdIDs).Draw(rt, "hold")
					h := m.holds[hid]
					post := rapid.Bool().Draw(rt, "post")
					tr := ledger.Transfer{ID: nextID(), PendingID: hid, Flags: ledger.VoidPending}
					if post {
						tr.Flags = ledger.PostPending
						tr.Amount = rapid.Int64Range(0, h.amount+50).Draw(rt, "post amount")
					}
					var want paygate.Code
					switch {
					case h.status != ledger.HoldPending:
						want = paygate.CodeAlreadyResolved
					case post && !h.expires.IsZero() && !clock.Now().Before(h.expires):
						want = paygate.CodeHoldExpired
					case post && tr.Amount > h.amount:
						want = paygate.CodeLimitExceeded
					}
					submit([]ledger.Transfer{tr}, want)
					if want != "" {
						continue
					}
					m.bal[h.debit].DebitsPending -= h.amount
					m.bal[h.credit].CreditsPending -= h.amount
					h.status = ledger.HoldVoided
					if post {
						amt := tr.Amount
						if amt == 0 {
							amt = h.amount
						}
						applyPosted(h.debit, h.credit, amt)
						h.status = ledger.HoldPosted
					}
					m.done[tr.ID] = tr
				case 6: // time passes; the expiry job runs
					clock.Advance(time.Duration(rapid.IntRange(1, 150).Draw(rt, "seconds")) * time.Second)
					want := 0
					for _, id := range holdIDs {
						h := m.holds[id]
						if h.status == ledger.HoldPending && !h.expires.IsZero() && !clock.Now().Before(h.expires) {
							h.status = ledger.HoldExpired
							m.bal[h.debit].DebitsPending -= h.amount
							m.bal[h.credit].CreditsPending -= h.amount
							want++
						}
					}
					got := 0
					for {
						n, err := l.ExpireHolds(ctx, 2)
						require.NoError(rt, err)
						got += n
						if n == 0 {
							break
						}
					}
					// Earlier runs' holds in the same database may expire too.
					require.GreaterOrEqual(rt, got, want)
				case 7: // resubmit an accepted transfer: same result, no change
					if len(m.done) == 0 {
						continue
					}
					ids := make([]string, 0, len(m.done))
					for id := range m.done {
						ids = append(ids, id)
					}
					id := rapid.SampledFrom(sorted(ids)).Draw(rt, "resubmit")
					tr := m.done[id]
					res := submit([]ledger.Transfer{tr}, "")
					require.True(rt, res[0].Existed)
					if tr.Flags&(ledger.PostPending|ledger.VoidPending) == 0 {
						tr.Amount++
						submit([]ledger.Transfer{tr}, paygate.CodeIDConflict)
					}
				}
				// Compare with the model.
				ids := make([]string, len(accts))
				for i, a := range accts {
					ids[i] = a.ID
				}
				got, err := l.LookupAccounts(ctx, ids)
				require.NoError(rt, err)
				for _, a := range got {
					require.Equal(rt, *m.bal[a.ID], a.Balance, "account %s", a.ID)
				}
				if len(holdIDs) > 0 {
					hs, err := l.LookupTransfers(ctx, holdIDs)
					require.NoError(rt, err)
					for _, h := range hs {
						require.Equal(rt, m.holds[h.ID].status, h.HoldStatus, "hold %s", h.ID)
					}
				}
			}
			bad, err := db.LedgerCheck(ctx)
			require.NoError(rt, err)
			require.Empty(rt, bad)
		})
	})
}

func sorted(s []string) []string { slices.Sort(s); return s }
