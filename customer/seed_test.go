package customer_test

import (
	"testing"

	"github.com/stretchr/testify/require"

	"paygate"
	"paygate/customer"
	"paygate/ledger"
	"paygate/store"
	"paygate/store/storetest"
)

func TestSandboxNumbersAreValid(t *testing.T) {
	t.Parallel()
	for _, c := range customer.SandboxCustomers {
		if c.Verify {
			_, err := customer.ParseIDNumber(c.IDNumber, t0)
			require.NoError(t, err, c.Name)
		}
		for _, k := range c.Cards {
			require.True(t, customer.Luhn(k.Number), k.Number)
			require.Equal(t, k.Kind.OwnBank(), k.Number[:6] == customer.SandboxOwnBIN, k.Number)
		}
	}
}

func TestSeed(t *testing.T) {
	t.Parallel()
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		f := newFixture(t, db)
		first, err := f.svc.Seed(f.ctx)
		require.NoError(t, err)
		second, err := f.svc.Seed(f.ctx)
		require.NoError(t, err, "seeding again is harmless")
		require.Len(t, second, len(customer.SandboxCustomers))
		for i := range first {
			require.Equal(t, first[i].Customer.ID, second[i].Customer.ID)
			require.Len(t, second[i].Cards, len(first[i].Cards))
		}

		for i, sc := range customer.SandboxCustomers {
			got := second[i]
			c, err := f.svc.Login(f.ctx, sc.Phone+sc.Username, sc.Password)
			require.NoError(t, err, "the documented password logs in")
			require.Equal(t, got.Customer.ID, c.ID)
			require.Equal(t, sc.Verify, c.Verified())
			require.Equal(t, sc.PayPassword != "", c.PayPasswordSet)
			if sc.PayPassword != "" {
				require.NoError(t, f.svc.VerifyPayPassword(f.ctx, c.ID, sc.PayPassword))
			}
			bal, err := f.svc.Balance(f.ctx, c.ID)
			require.NoError(t, err)
			require.Equal(t, sc.Balance, bal.Amount, "balance credited once")
			for j, k := range sc.Cards {
				card := got.Cards[j]
				byNumber, err := f.svc.CardByNumber(f.ctx, k.Number)
				require.NoError(t, err)
				require.Equal(t, card.ID, byNumber.ID)
				require.Equal(t, k.Kind, card.Kind)
				if k.Kind.OwnBank() {
					b, err := f.svc.CardBalance(f.ctx, c.ID, card.ID)
					require.NoError(t, err)
					require.Equal(t, k.Balance, b.Amount, k.Number)
				}
				if k.Frozen {
					require.Equal(t, customer.StatusFrozen, card.Status)
				}
				bound, err := f.svc.BoundCardsByLastFour(f.ctx, c.ID, k.Number[len(k.Number)-4:])
				require.NoError(t, err)
				require.Equal(t, k.Bound, len(bound) == 1, k.Number)
			}
		}

		// The documented behaviours.
		alice := second[0]
		cards := map[string]customer.Card{}
		for _, c := range alice.Cards {
			cards[c.Number.Last4()] = c
		}
		_, err = f.reserve(alice.Customer.ID, cards["0039"].ID, customer.MethodQuickPay, 100)
		require.Equal(t, paygate.CodeForbidden, paygate.CodeOf(err), "the frozen card declines")
		require.Equal(t, customer.KindOtherBank, cards["0066"].Kind)
		err = f.db.Customers().InTx(f.ctx, func(tx customer.Tx) error {
			_, err := f.led.Apply(f.ctx, tx, []ledger.Transfer{{ID: "t-lacks", DebitAccountID: cards["0021"].AccountID,
				CreditAccountID: ledger.SandboxFunding("CNY").ID, Amount: 2}})
			return err
		})
		require.Equal(t, paygate.CodeInsufficientFunds, paygate.CodeOf(err), "the card lacking funds cannot pay 0.02")
		require.Equal(t, int64(500_000), f.svc.Limits().CustomerDaily(alice.Customer.Factors))
		require.Equal(t, int64(100_000), f.svc.Limits().CustomerDaily(second[2].Customer.Factors))
	})
}
