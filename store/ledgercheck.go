package store

import (
	"context"
	"fmt"
	"sort"

	"paygate"
	"paygate/ledger"
)

// LedgerCheck verifies the ledger's invariants over the whole database and
// returns one line per violation (nil when all hold):
//   - every account's stored balance (summed over shards) equals the balance
//     rebuilt from its transfers;
//   - per currency, pending debits equal pending credits and posted debits
//     equal posted credits, so all balances sum to zero;
//   - no account flagged DebitsMustNotExceedCredits or
//     CreditsMustNotExceedDebits has broken its limit;
//   - every hold is resolved at most once, its status agrees with its
//     resolving transfer, and no post exceeds its hold.
//
// It reads without locks; run it when writers are quiet (tests, end of day).
func (db *DB) LedgerCheck(ctx context.Context) ([]string, error) {
	type acct struct {
		cur    string
		flags  ledger.AccountFlags
		stored ledger.Balance
		built  ledger.Balance
	}
	accts := map[string]*acct{}
	rows, err := db.SQL.QueryContext(ctx, `SELECT a.id, a.currency, a.flags,
		CAST(SUM(b.debits_pending) AS BIGINT), CAST(SUM(b.debits_posted) AS BIGINT),
		CAST(SUM(b.credits_pending) AS BIGINT), CAST(SUM(b.credits_posted) AS BIGINT)
		FROM ledger_accounts a JOIN ledger_balances b ON b.account_id = a.id GROUP BY a.id, a.currency, a.flags`)
	if err != nil {
		return nil, wrapDB(err)
	}
	for rows.Next() {
		var id string
		a := &acct{}
		if err := rows.Scan(&id, &a.cur, &a.flags, &a.stored.DebitsPending, &a.stored.DebitsPosted, &a.stored.CreditsPending, &a.stored.CreditsPosted); err != nil {
			rows.Close()
			return nil, wrapDB(err)
		}
		accts[id] = a
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, wrapDB(err)
	}

	rows, err = db.SQL.QueryContext(ctx, `SELECT t.id, t.debit_account_id, t.credit_account_id, t.amount, t.kind,
		COALESCE(t.hold_status, ''), COALESCE(t.pending_id, '') FROM ledger_transfers t`)
	if err != nil {
		return nil, wrapDB(err)
	}
	type hold struct {
		amount   int64
		status   string
		resolved []string // kinds of resolving transfers
	}
	holds := map[string]*hold{}
	var resolutions [][3]string // pending id, kind, amount (as text)
	var resAmounts []int64
	var bad []string
	add := func(p *int64, v int64) {
		s, err := paygate.AddInt64(*p, v)
		if err != nil {
			bad = append(bad, "rebuilt balance overflows")
		}
		*p = s
	}
	for rows.Next() {
		var id, debit, credit, kind, status, pending string
		var amount int64
		if err := rows.Scan(&id, &debit, &credit, &amount, &kind, &status, &pending); err != nil {
			rows.Close()
			return nil, wrapDB(err)
		}
		d, c := accts[debit], accts[credit]
		if d == nil || c == nil {
			bad = append(bad, fmt.Sprintf("transfer %s names a missing account", id))
			continue
		}
		switch kind {
		case "single", "post":
			add(&d.built.DebitsPosted, amount)
			add(&c.built.CreditsPosted, amount)
		case "pending":
			holds[id] = &hold{amount: amount, status: status}
			if status == string(ledger.HoldPending) {
				add(&d.built.DebitsPending, amount)
				add(&c.built.CreditsPending, amount)
			}
		}
		if pending != "" {
			resolutions = append(resolutions, [3]string{pending, kind, id})
			resAmounts = append(resAmounts, amount)
		}
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, wrapDB(err)
	}

	for i, r := range resolutions {
		h := holds[r[0]]
		if h == nil {
			bad = append(bad, fmt.Sprintf("transfer %s resolves unknown hold %s", r[2], r[0]))
			continue
		}
		h.resolved = append(h.resolved, r[1])
		if r[1] == "post" && resAmounts[i] > h.amount {
			bad = append(bad, fmt.Sprintf("post %s of %d exceeds hold %s of %d", r[2], resAmounts[i], r[0], h.amount))
		}
	}
	want := map[string]string{"post": "posted", "void": "voided", "expire": "expired"}
	for id, h := range holds {
		switch {
		case len(h.resolved) > 1:
			bad = append(bad, fmt.Sprintf("hold %s resolved %d times", id, len(h.resolved)))
		case len(h.resolved) == 0 && h.status != string(ledger.HoldPending):
			bad = append(bad, fmt.Sprintf("hold %s is %s without a resolving transfer", id, h.status))
		case len(h.resolved) == 1 && want[h.resolved[0]] != h.status:
			bad = append(bad, fmt.Sprintf("hold %s is %q but was resolved by a %s", id, h.status, h.resolved[0]))
		}
	}

	type sums struct{ dp, dpo, cp, cpo int64 }
	perCur := map[string]*sums{}
	ids := make([]string, 0, len(accts))
	for id := range accts {
		ids = append(ids, id)
	}
	sort.Strings(ids)
	for _, id := range ids {
		a := accts[id]
		if a.stored != a.built {
			bad = append(bad, fmt.Sprintf("account %s: stored %+v, rebuilt from transfers %+v", id, a.stored, a.built))
		}
		s := perCur[a.cur]
		if s == nil {
			s = &sums{}
			perCur[a.cur] = s
		}
		add(&s.dp, a.stored.DebitsPending)
		add(&s.dpo, a.stored.DebitsPosted)
		add(&s.cp, a.stored.CreditsPending)
		add(&s.cpo, a.stored.CreditsPosted)
		b := a.stored
		if a.flags&ledger.DebitsMustNotExceedCredits != 0 && b.DebitsPending+b.DebitsPosted > b.CreditsPosted {
			bad = append(bad, fmt.Sprintf("account %s: debits %d+%d exceed credits %d", id, b.DebitsPending, b.DebitsPosted, b.CreditsPosted))
		}
		if a.flags&ledger.CreditsMustNotExceedDebits != 0 && b.CreditsPending+b.CreditsPosted > b.DebitsPosted {
			bad = append(bad, fmt.Sprintf("account %s: credits %d+%d exceed debits %d", id, b.CreditsPending, b.CreditsPosted, b.DebitsPosted))
		}
	}
	for cur, s := range perCur {
		if s.dp != s.cp || s.dpo != s.cpo {
			bad = append(bad, fmt.Sprintf("%s does not sum to zero: pending %d/%d, posted %d/%d", cur, s.dp, s.cp, s.dpo, s.cpo))
		}
	}
	return bad, nil
}
