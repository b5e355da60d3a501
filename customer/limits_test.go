package customer_test

import (
	"errors"
	"sync"
	"testing"

	"github.com/stretchr/testify/require"

	"paygate"
	"paygate/customer"
	"paygate/ledger"
	"paygate/store"
	"paygate/store/storetest"
)

func TestDefaultLimits(t *testing.T) {
	t.Parallel()
	l := customer.DefaultLimits()
	require.NoError(t, l.Validate())
	require.Equal(t, int64(100_000), l.CustomerDaily(customer.FactorPassword), "fewer than two factors: 1,000 CNY")
	require.Equal(t, int64(500_000), l.CustomerDaily(customer.FactorPassword|customer.FactorCard), "two factors: 5,000 CNY")
	require.Equal(t, int64(500_000), l.CustomerDaily(customer.FactorPassword|customer.FactorRealName|customer.FactorPhone))
	require.Equal(t, int64(100_000), l.CustomerDaily(customer.FactorCertificate), "a certificate alone is one factor")
	require.Greater(t, l.CustomerDaily(customer.FactorPassword|customer.FactorCertificate), int64(500_000))
	cn, ob := l.Methods[customer.MethodCardNumber], l.Methods[customer.MethodOnlineBanking]
	require.Less(t, cn.Single, ob.Single, "card-number pay is capped below online banking")
	require.Less(t, cn.Daily, ob.Daily)

	for name, mutate := range map[string]func(*customer.Limits){
		"card number above online banking": func(l *customer.Limits) {
			l.Methods[customer.MethodCardNumber] = customer.Cap{Single: 6_000_000, Daily: 6_000_000}
		},
		"basic zero":          func(l *customer.Limits) { l.Basic = 0 },
		"strong below basic":  func(l *customer.Limits) { l.Strong = l.Basic - 1 },
		"negative card cap":   func(l *customer.Limits) { l.OwnCard.Daily = -1 },
		"unknown method":      func(l *customer.Limits) { l.Methods["CASH"] = customer.Cap{} },
		"unknown currency":    func(l *customer.Limits) { l.Currency = "XXX" },
		"card number no caps": func(l *customer.Limits) { l.Methods[customer.MethodCardNumber] = customer.Cap{} },
	} {
		l := customer.DefaultLimits()
		mutate(&l)
		require.Equal(t, paygate.CodeInvalidArgument, paygate.CodeOf(l.Validate()), name)
	}
}

// limitsFixture has small, distinct limits so each boundary is reachable:
// basic 1,000.00, strong 5,000.00, certificate 20,000.00 a day; card-number
// pay 300.00 a payment and 800.00 a day; quick pay 2,000.00 a payment;
// other banks' cards 1,500.00 a payment and 2,500.00 a day.
func limitsFixture(t *testing.T, db *store.DB) *fixture {
	return newFixture(t, db, func(c *customer.Config) {
		c.Limits = customer.Limits{Currency: "CNY", Basic: 100_000, Strong: 500_000, Certificate: 2_000_000,
			Methods: map[customer.Method]customer.Cap{
				customer.MethodCardNumber:    {Single: 30_000, Daily: 80_000},
				customer.MethodQuickPay:      {Single: 200_000},
				customer.MethodOnlineBanking: {Single: 2_000_000, Daily: 2_000_000},
			},
			OwnCard:   customer.Cap{},
			OtherCard: customer.Cap{Single: 150_000, Daily: 250_000},
		}
	})
}

func TestReserveBoundaries(t *testing.T) {
	t.Parallel()
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		f := limitsFixture(t, db)
		basic := f.register(t, "13900000001") // one factor
		strong := f.verified(t)               // password, real name, phone
		bCard := f.addCard(t, basic.ID, pan(customer.SandboxOwnBIN, 1), "", customer.Holder{Name: bobName, IDNumber: bobID, Phone: bobPhone})
		sCard := f.addCard(t, strong.ID, pan(customer.SandboxOwnBIN, 2), "", alice)
		sOther := f.addCard(t, strong.ID, pan("629999", 3), "", alice)
		limited, err := f.svc.AddCard(f.ctx, customer.AddCardRequest{CustomerID: strong.ID, Number: pan(customer.SandboxOwnBIN, 4),
			Holder: alice, SingleLimit: 7_000, DailyLimit: 10_000})
		require.NoError(t, err)

		type step struct {
			name     string
			customer string
			card     string
			method   customer.Method
			amount   int64
			limit    customer.Limit // "" when it must pass
		}
		steps := []step{
			// Basic customer: 1,000.00 a day across methods.
			{"basic balance 600", basic.ID, "", customer.MethodBalance, 60_000, ""},
			{"basic quick pay to exactly 1,000", basic.ID, bCard.ID, customer.MethodQuickPay, 40_000, ""},
			{"basic one fen over", basic.ID, "", customer.MethodBalance, 1, customer.LimitCustomerDaily},
			{"basic one fen over by card", basic.ID, bCard.ID, customer.MethodOnlineBanking, 1, customer.LimitCustomerDaily},
			// Card-number pay: 300.00 a payment, 800.00 a day.
			{"card number exactly single", strong.ID, sCard.ID, customer.MethodCardNumber, 30_000, ""},
			{"card number one fen over single", strong.ID, sCard.ID, customer.MethodCardNumber, 30_001, customer.LimitMethodSingle},
			{"card number to 600", strong.ID, sCard.ID, customer.MethodCardNumber, 30_000, ""},
			{"card number to exactly 800", strong.ID, sCard.ID, customer.MethodCardNumber, 20_000, ""},
			{"card number one fen over daily", strong.ID, sCard.ID, customer.MethodCardNumber, 1, customer.LimitMethodDaily},
			{"online banking same card still fine", strong.ID, sCard.ID, customer.MethodOnlineBanking, 100_000, ""},
			// Other bank's card: 1,500.00 a payment, 2,500.00 a day.
			{"other card exactly single", strong.ID, sOther.ID, customer.MethodQuickPay, 150_000, ""},
			{"other card one fen over single", strong.ID, sOther.ID, customer.MethodQuickPay, 150_001, customer.LimitCardSingle},
			{"other card to exactly 2,500", strong.ID, sOther.ID, customer.MethodQuickPay, 100_000, ""},
			{"other card one fen over daily", strong.ID, sOther.ID, customer.MethodQuickPay, 1, customer.LimitCardDaily},
			// A card's own limits: 70.00 a payment, 100.00 a day.
			{"own limit exactly single", strong.ID, limited.ID, customer.MethodQuickPay, 7_000, ""},
			{"own limit over single", strong.ID, limited.ID, customer.MethodQuickPay, 7_001, customer.LimitCardSingle},
			{"own limit to exactly daily", strong.ID, limited.ID, customer.MethodQuickPay, 3_000, ""},
			{"own limit over daily", strong.ID, limited.ID, customer.MethodQuickPay, 1, customer.LimitCardDaily},
			// Strong customer: 5,000.00 a day. Used so far: 800 + 1,000 + 2,500 + 100 = 4,400.
			{"strong balance to exactly 5,000", strong.ID, "", customer.MethodBalance, 60_000, ""},
			{"strong one fen over", strong.ID, "", customer.MethodBalance, 1, customer.LimitCustomerDaily},
			// Quick pay single cap.
			{"quick pay over single", strong.ID, sCard.ID, customer.MethodQuickPay, 200_001, customer.LimitMethodSingle},
		}
		for _, s := range steps {
			_, err := f.reserve(s.customer, s.card, s.method, s.amount)
			if s.limit == "" {
				require.NoError(t, err, s.name)
				continue
			}
			requireLimit(t, err, s.limit)
			require.Contains(t, err.(*paygate.Error).Message, "CNY", s.name)
		}
		u, err := f.svc.UsageOn(f.ctx, strong.ID, sCard.ID, customer.MethodCardNumber, day0)
		require.NoError(t, err)
		require.Equal(t, customer.Usage{Customer: 500_000, Method: 80_000, Card: 180_000}, u, "refusals left nothing recorded")

		// A certificate raises the customer's limit; the next day starts afresh.
		_, err = f.svc.SetCertificate(f.ctx, strong.ID, true)
		require.NoError(t, err)
		_, err = f.reserve(strong.ID, "", customer.MethodBalance, 1)
		require.NoError(t, err)
		err = f.db.Customers().InTx(f.ctx, func(tx customer.Tx) error {
			_, err := f.svc.Reserve(f.ctx, tx, basic.ID, "", customer.MethodBalance, 100_000, "2026-11-23")
			return err
		})
		require.NoError(t, err)
	})
}

func TestReserveRefusals(t *testing.T) {
	t.Parallel()
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		f := newFixture(t, db)
		c := f.verified(t)
		card := f.addCard(t, c.ID, pan(customer.SandboxOwnBIN, 1), "", alice)
		other := f.addCard(t, c.ID, pan("629999", 2), "", alice)
		cases := []struct {
			name   string
			cust   string
			card   string
			method customer.Method
			amount int64
			code   paygate.Code
		}{
			{"zero", c.ID, card.ID, customer.MethodQuickPay, 0, paygate.CodeAmountNotPositive},
			{"negative", c.ID, card.ID, customer.MethodQuickPay, -1, paygate.CodeAmountNotPositive},
			{"unknown method", c.ID, card.ID, "CASH", 1, paygate.CodeInvalidArgument},
			{"balance with a card", c.ID, card.ID, customer.MethodBalance, 1, paygate.CodeInvalidArgument},
			{"card method without card", c.ID, "", customer.MethodQuickPay, 1, paygate.CodeInvalidArgument},
			{"card number on another bank's card", c.ID, other.ID, customer.MethodCardNumber, 1, paygate.CodeInvalidArgument},
			{"online banking on another bank's card", c.ID, other.ID, customer.MethodOnlineBanking, 1, paygate.CodeInvalidArgument},
			{"no customer", "cus_nobody", "", customer.MethodBalance, 1, paygate.CodeNotFound},
			{"no card", c.ID, "card_nothing", customer.MethodQuickPay, 1, paygate.CodeNotFound},
		}
		for _, k := range cases {
			_, err := f.reserve(k.cust, k.card, k.method, k.amount)
			require.Equal(t, k.code, paygate.CodeOf(err), k.name)
		}
		_, err := f.svc.SetCardStatus(f.ctx, c.ID, card.ID, customer.StatusFrozen)
		require.NoError(t, err)
		_, err = f.reserve(c.ID, card.ID, customer.MethodQuickPay, 1)
		require.Equal(t, paygate.CodeForbidden, paygate.CodeOf(err), "a frozen card declines")
		_, err = f.svc.SetOnlinePayment(f.ctx, c.ID, false)
		require.NoError(t, err)
		_, err = f.reserve(c.ID, "", customer.MethodBalance, 1)
		require.Equal(t, paygate.CodeForbidden, paygate.CodeOf(err), "online payment off")
		_, err = f.svc.SetOnlinePayment(f.ctx, c.ID, true)
		require.NoError(t, err)
		_, err = f.reserve(c.ID, "", customer.MethodBalance, 1)
		require.NoError(t, err)
	})
}

// TestReserveCommitsWithThePayment proves usage is recorded inside the
// caller's transaction: a rolled-back payment leaves none, and Release
// gives it back.
func TestReserveCommitsWithThePayment(t *testing.T) {
	t.Parallel()
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		f := newFixture(t, db)
		c := f.register(t, alicePhone)
		boom := errors.New("the payment failed")
		err := f.db.Customers().InTx(f.ctx, func(tx customer.Tx) error {
			_, err := f.svc.Reserve(f.ctx, tx, c.ID, "", customer.MethodBalance, 100_000, day0)
			require.NoError(t, err)
			return boom
		})
		require.ErrorIs(t, err, boom)
		u, err := f.svc.UsageOn(f.ctx, c.ID, "", customer.MethodBalance, day0)
		require.NoError(t, err)
		require.Zero(t, u.Customer)

		r, err := f.reserve(c.ID, "", customer.MethodBalance, 100_000)
		require.NoError(t, err)
		_, err = f.reserve(c.ID, "", customer.MethodBalance, 1)
		requireLimit(t, err, customer.LimitCustomerDaily)
		require.NoError(t, f.db.Customers().InTx(f.ctx, func(tx customer.Tx) error { return f.svc.Release(f.ctx, tx, r) }))
		u, err = f.svc.UsageOn(f.ctx, c.ID, "", customer.MethodBalance, day0)
		require.NoError(t, err)
		require.Equal(t, customer.Usage{}, u)
		_, err = f.reserve(c.ID, "", customer.MethodBalance, 100_000)
		require.NoError(t, err)
	})
}

// TestReserveConcurrent runs 50 parallel payments against a daily limit
// they would overshoot together: exactly as many as fit succeed.
func TestReserveConcurrent(t *testing.T) {
	t.Parallel()
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		f := newFixture(t, db)
		c := f.register(t, alicePhone) // 1,000.00 a day
		card := f.addCard(t, c.ID, pan(customer.SandboxOwnBIN, 1), "", alice)
		const n, amount = 50, 3_000 // 50 x 30.00 = 1,500.00; 33 fit in 1,000.00
		var wg sync.WaitGroup
		var mu sync.Mutex
		ok, refused := 0, 0
		for i := 0; i < n; i++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				m, cardID := customer.MethodBalance, ""
				if i%2 == 0 {
					m, cardID = customer.MethodQuickPay, card.ID
				}
				_, err := f.reserve(c.ID, cardID, m, amount)
				mu.Lock()
				defer mu.Unlock()
				switch paygate.CodeOf(err) {
				case "":
					ok++
				case paygate.CodeLimitExceeded:
					refused++
				default:
					t.Errorf("unexpected: %v", err)
				}
			}()
		}
		wg.Wait()
		require.Equal(t, 33, ok)
		require.Equal(t, 17, refused)
		u, err := f.svc.UsageOn(f.ctx, c.ID, card.ID, customer.MethodQuickPay, day0)
		require.NoError(t, err)
		require.Equal(t, int64(33*amount), u.Customer)
		require.LessOrEqual(t, u.Customer, int64(100_000))
		b, err := f.svc.UsageOn(f.ctx, c.ID, "", customer.MethodBalance, day0)
		require.NoError(t, err)
		require.Equal(t, u.Customer, u.Method+b.Method, "the method rows add up to the customer's")
		require.Equal(t, u.Method, u.Card)
	})
}

// TestReserveWithPostings is the checkout's shape: the limit usage and the
// ledger postings of one payment share a transaction, so a payment refused
// by the ledger (insufficient funds) leaves no usage behind.
func TestReserveWithPostings(t *testing.T) {
	t.Parallel()
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		f := newFixture(t, db)
		c := f.verified(t)
		card := f.addCard(t, c.ID, pan(customer.SandboxOwnBIN, 1), "", alice)
		f.fund(t, card.AccountID, 5_000)
		_, err := f.led.CreateAccounts(f.ctx, []ledger.Account{ledger.MerchantPending("1900000001", "CNY")})
		require.NoError(t, err)
		pay := func(id string, amount int64) error {
			return f.db.Customers().InTx(f.ctx, func(tx customer.Tx) error {
				if _, err := f.svc.Reserve(f.ctx, tx, c.ID, card.ID, customer.MethodCardNumber, amount, day0); err != nil {
					return err
				}
				_, err := f.led.Apply(f.ctx, tx, []ledger.Transfer{{ID: id, DebitAccountID: card.AccountID,
					CreditAccountID: ledger.MerchantPending("1900000001", "CNY").ID, Amount: amount}})
				return err
			})
		}
		require.NoError(t, pay("txn_1", 3_000))
		require.Equal(t, paygate.CodeInsufficientFunds, paygate.CodeOf(pay("txn_2", 3_000)))
		u, err := f.svc.UsageOn(f.ctx, c.ID, card.ID, customer.MethodCardNumber, day0)
		require.NoError(t, err)
		require.Equal(t, customer.Usage{Customer: 3_000, Method: 3_000, Card: 3_000}, u, "the refused payment left no usage")
		bal, err := f.svc.CardBalance(f.ctx, c.ID, card.ID)
		require.NoError(t, err)
		require.Equal(t, int64(2_000), bal.Amount)
	})
}
