package customer_test

import (
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"paygate"
	"paygate/customer"
	"paygate/store"
	"paygate/store/storetest"
)

func TestCards(t *testing.T) {
	t.Parallel()
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		f := newFixture(t, db)
		a := f.verified(t)
		own := pan(customer.SandboxOwnBIN, 1)
		debit := f.addCard(t, a.ID, own, "", alice)
		require.True(t, strings.HasPrefix(debit.ID, customer.PrefixCard))
		require.Equal(t, customer.KindDebit, debit.Kind)
		require.Equal(t, customer.OwnBankName, debit.Bank)
		require.Equal(t, own[:6]+"******"+own[12:], debit.Number.String())
		require.Equal(t, "139****5678", debit.PhoneMasked)
		require.NotEmpty(t, debit.AccountID)
		bal, err := f.svc.CardBalance(f.ctx, a.ID, debit.ID)
		require.NoError(t, err)
		require.Zero(t, bal.Amount)
		f.fund(t, debit.AccountID, 12_345)
		bal, err = f.svc.CardBalance(f.ctx, a.ID, debit.ID)
		require.NoError(t, err)
		require.Equal(t, paygate.Money{Amount: 12_345, Currency: "CNY"}, bal)

		corp := f.addCard(t, a.ID, pan(customer.SandboxOwnBIN, 2), customer.KindCorporate, alice)
		require.Equal(t, customer.KindCorporate, corp.Kind)
		other, err := f.svc.AddCard(f.ctx, customer.AddCardRequest{CustomerID: a.ID, Number: pan("629999", 3), Bank: "SANDBOX INTERBANK", Holder: alice})
		require.NoError(t, err)
		require.Equal(t, customer.KindOtherBank, other.Kind)
		require.Empty(t, other.AccountID)
		_, err = f.svc.CardBalance(f.ctx, a.ID, other.ID)
		require.Equal(t, paygate.CodeInvalidArgument, paygate.CodeOf(err))
		issued, err := f.svc.AddCard(f.ctx, customer.AddCardRequest{CustomerID: a.ID, Holder: alice})
		require.NoError(t, err, "an empty number issues a new own card")
		require.Equal(t, customer.SandboxOwnBIN, issued.Number.First6())

		// Look-ups by number go through the blind index.
		got, err := f.svc.CardByNumber(f.ctx, strings.Join([]string{own[:4], own[4:8], own[8:12], own[12:]}, " "))
		require.NoError(t, err)
		require.Equal(t, debit.ID, got.ID)
		_, err = f.svc.CardByNumber(f.ctx, pan(customer.SandboxOwnBIN, 99))
		require.Equal(t, paygate.CodeNotFound, paygate.CodeOf(err))
		_, err = f.svc.CardByNumber(f.ctx, own[:15]+"0")
		require.Equal(t, paygate.CodeInvalidArgument, paygate.CodeOf(err), "a number failing Luhn")
		cards, err := f.svc.Cards(f.ctx, a.ID)
		require.NoError(t, err)
		require.Len(t, cards, 4)

		bad := []struct {
			name string
			req  customer.AddCardRequest
			code paygate.Code
		}{
			{"registered already", customer.AddCardRequest{CustomerID: a.ID, Number: own, Holder: alice}, paygate.CodeConflict},
			{"Luhn", customer.AddCardRequest{CustomerID: a.ID, Number: "6288880000000014", Holder: alice}, paygate.CodeInvalidArgument},
			{"own kind on other bank", customer.AddCardRequest{CustomerID: a.ID, Number: pan(customer.SandboxOwnBIN, 5), Kind: customer.KindOtherBank, Holder: alice}, paygate.CodeInvalidArgument},
			{"other bank without number", customer.AddCardRequest{CustomerID: a.ID, Kind: customer.KindOtherBank, Holder: alice}, paygate.CodeInvalidArgument},
			{"holder is someone else", customer.AddCardRequest{CustomerID: a.ID, Number: pan(customer.SandboxOwnBIN, 6), Holder: customer.Holder{Name: bobName, IDNumber: bobID, Phone: bobPhone}}, paygate.CodeForbidden},
			{"bad holder ID", customer.AddCardRequest{CustomerID: a.ID, Number: pan(customer.SandboxOwnBIN, 7), Holder: customer.Holder{Name: aliceName, IDNumber: "110101199003071234", Phone: alicePhone}}, paygate.CodeInvalidArgument},
			{"no customer", customer.AddCardRequest{CustomerID: "cus_nobody", Number: pan(customer.SandboxOwnBIN, 8), Holder: alice}, paygate.CodeNotFound},
		}
		for _, b := range bad {
			_, err := f.svc.AddCard(f.ctx, b.req)
			require.Equal(t, b.code, paygate.CodeOf(err), b.name)
			if b.req.Number != "" {
				require.NotContains(t, err.Error(), b.req.Number[6:], b.name)
			}
		}

		// Quick pay's holder check.
		require.NoError(t, f.svc.VerifyHolder(f.ctx, debit.ID, customer.Holder{Name: " 张三 ", IDNumber: aliceID, Phone: "+86 13912345678"}))
		for _, h := range []customer.Holder{
			{Name: "张四", IDNumber: aliceID, Phone: alicePhone},
			{Name: aliceName, IDNumber: bobID, Phone: alicePhone},
			{Name: aliceName, IDNumber: aliceID, Phone: bobPhone},
		} {
			err := f.svc.VerifyHolder(f.ctx, debit.ID, h)
			require.Equal(t, paygate.CodeInvalidArgument, paygate.CodeOf(err))
		}
		phone, err := f.svc.HolderPhone(f.ctx, debit.ID)
		require.NoError(t, err)
		require.Equal(t, alicePhone, phone)

		// Agreements.
		ag, err := f.svc.Bind(f.ctx, a.ID, debit.ID)
		require.NoError(t, err)
		require.Equal(t, customer.AgreementActive, ag.Status)
		_, err = f.svc.Bind(f.ctx, a.ID, debit.ID)
		require.Equal(t, paygate.CodeConflict, paygate.CodeOf(err))
		c, err := f.svc.Customer(f.ctx, a.ID)
		require.NoError(t, err)
		require.True(t, c.Factors.Has(customer.FactorCard))
		ag2, err := f.svc.Bind(f.ctx, a.ID, other.ID)
		require.NoError(t, err)
		bound, err := f.svc.BoundCardsByLastFour(f.ctx, a.ID, own[12:])
		require.NoError(t, err)
		require.Len(t, bound, 1)
		require.Equal(t, debit.ID, bound[0].Card.ID)
		_, err = f.svc.BoundCardsByLastFour(f.ctx, a.ID, "12a4")
		require.Equal(t, paygate.CodeInvalidArgument, paygate.CodeOf(err))

		un, err := f.svc.Unbind(f.ctx, a.ID, ag.ID)
		require.NoError(t, err)
		require.Equal(t, customer.AgreementRevoked, un.Status)
		again, err := f.svc.Unbind(f.ctx, a.ID, ag.ID)
		require.NoError(t, err, "unbinding is idempotent")
		require.Equal(t, un.RevokedAt, again.RevokedAt)
		c, _ = f.svc.Customer(f.ctx, a.ID)
		require.True(t, c.Factors.Has(customer.FactorCard), "another card is still bound")
		_, err = f.svc.Unbind(f.ctx, a.ID, ag2.ID)
		require.NoError(t, err)
		c, _ = f.svc.Customer(f.ctx, a.ID)
		require.False(t, c.Factors.Has(customer.FactorCard))
		bound, err = f.svc.BoundCardsByLastFour(f.ctx, a.ID, own[12:])
		require.NoError(t, err)
		require.Empty(t, bound)
		ag3, err := f.svc.Bind(f.ctx, a.ID, debit.ID)
		require.NoError(t, err, "a card can be bound again after revoking")
		list, err := f.svc.Agreements(f.ctx, a.ID)
		require.NoError(t, err)
		require.Len(t, list, 3)

		// Another customer's card and agreement are NotFound, like missing ones.
		b, err := f.svc.Register(f.ctx, customer.RegisterRequest{Username: "bob_lee", Password: password})
		require.NoError(t, err)
		_, err = f.svc.Card(f.ctx, b.ID, debit.ID)
		require.Equal(t, paygate.CodeNotFound, paygate.CodeOf(err))
		_, err = f.svc.CardBalance(f.ctx, b.ID, debit.ID)
		require.Equal(t, paygate.CodeNotFound, paygate.CodeOf(err))
		_, err = f.svc.Bind(f.ctx, b.ID, corp.ID)
		require.Equal(t, paygate.CodeNotFound, paygate.CodeOf(err))
		_, err = f.svc.Unbind(f.ctx, b.ID, ag3.ID)
		require.Equal(t, paygate.CodeNotFound, paygate.CodeOf(err))
		_, err = f.svc.SetCardStatus(f.ctx, b.ID, debit.ID, customer.StatusFrozen)
		require.Equal(t, paygate.CodeNotFound, paygate.CodeOf(err))
		_, err = f.reserve(b.ID, debit.ID, customer.MethodQuickPay, 100)
		require.Equal(t, paygate.CodeNotFound, paygate.CodeOf(err))
		_, err = f.svc.Card(f.ctx, a.ID, "card_missing")
		require.Equal(t, paygate.CodeNotFound, paygate.CodeOf(err))

		fr, err := f.svc.SetCardStatus(f.ctx, a.ID, corp.ID, customer.StatusFrozen)
		require.NoError(t, err)
		require.Equal(t, customer.StatusFrozen, fr.Status)
		_, err = f.svc.Bind(f.ctx, a.ID, corp.ID)
		require.Equal(t, paygate.CodeForbidden, paygate.CodeOf(err), "a frozen card cannot be bound")

		logs := f.logs.String()
		for _, secret := range []string{own, own[6:12], aliceID, password} {
			require.NotContains(t, logs, secret)
		}
	})
}

// TestSealedAtRest dumps the whole database after every kind of write and
// finds no card number, password, payment password, ID number, holder name
// or reserved phone in it, while the blind index still finds the card.
func TestSealedAtRest(t *testing.T) {
	t.Parallel()
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		f := newFixture(t, db)
		c, err := f.svc.Register(f.ctx, customer.RegisterRequest{Username: "alice_w", Password: password})
		require.NoError(t, err)
		_, err = f.svc.VerifyRealName(f.ctx, c.ID, aliceName, aliceID, alicePhone)
		require.NoError(t, err)
		_, err = f.svc.SetPayPassword(f.ctx, c.ID, password, pin)
		require.NoError(t, err)
		own, other := pan(customer.SandboxOwnBIN, 424242), pan("629999", 737373)
		card := f.addCard(t, c.ID, own, "", alice)
		f.addCard(t, c.ID, other, "", alice)
		_, err = f.svc.Bind(f.ctx, c.ID, card.ID)
		require.NoError(t, err)
		_, err = f.reserve(c.ID, card.ID, customer.MethodQuickPay, 100)
		require.NoError(t, err)

		d := dump(t, db)
		require.Contains(t, d, c.ID, "the dump has the rows")
		for name, secret := range map[string]string{
			"own card number": own, "other card number": other, "own middle digits": own[6:12], "other middle digits": other[6:12],
			"password": password, "payment password": pin, "ID number": aliceID, "ID digits": aliceID[6:14],
			"holder name": aliceName, "reserved phone": alicePhone,
		} {
			require.NotContains(t, d, secret, name)
		}
		got, err := f.svc.CardByNumber(f.ctx, own)
		require.NoError(t, err, "the blind index finds the card")
		require.Equal(t, card.ID, got.ID)
		got, err = f.svc.CardByNumber(f.ctx, other)
		require.NoError(t, err)
		require.Equal(t, c.ID, got.CustomerID)

		// A second key ring cannot open what the first sealed: the ciphertext
		// is bound to its key id, and a wrong index key finds nothing.
		g := newFixture(t, db, func(cfg *customer.Config) {
			cfg.Index, _ = sealingIndex("another blind index key, 32 bytes+")
		})
		_, err = g.svc.CardByNumber(f.ctx, own)
		require.Equal(t, paygate.CodeNotFound, paygate.CodeOf(err))
	})
}
