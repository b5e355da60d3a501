package ledger_test

import (
	"testing"

	"github.com/stretchr/testify/require"

	"paygate/ledger"
	"paygate/store"
	"paygate/store/storetest"
)

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
