package customer

import (
	"context"
	"fmt"

	"paygate"
	"paygate/ledger"
)

// SeedCard is one sandbox test card.
type SeedCard struct {
	Number  string   // in clear: these are public test numbers
	Kind    CardKind // DEBIT, CORPORATE or OTHER_BANK
	Bank    string   // other banks only
	Balance int64    // own cards: seeded balance in fen
	Frozen  bool     // declines every payment
	Bound   bool     // has a quick-pay agreement
	Note    string
}

// SeedCustomer is one sandbox test customer.
type SeedCustomer struct {
	Phone, Username string
	Password        string
	PayPassword     string // "" leaves it unset
	Verify          bool   // real-name verified with Name, IDNumber, VerifyPhone
	Name, IDNumber  string
	VerifyPhone     string
	Balance         int64 // account balance in fen
	Cards           []SeedCard
}

// SandboxCustomers are the documented sandbox test customers and cards
// (docs/CUSTOMERS.md). Their numbers and passwords are public: they exist
// only in the sandbox.
var SandboxCustomers = []SeedCustomer{
	{
		Phone: "13800000001", Password: "Sandbox2026!", PayPassword: "135790",
		Verify: true, Name: "王小明", IDNumber: "110101199003071233", VerifyPhone: "13800000001",
		Balance: 1_000_000,
		Cards: []SeedCard{
			{Number: "6288880000000013", Kind: KindDebit, Balance: 5_000_000, Bound: true, Note: "pays"},
			{Number: "6288880000000021", Kind: KindDebit, Balance: 1, Note: "lacks funds (0.01 CNY)"},
			{Number: "6288880000000039", Kind: KindDebit, Balance: 5_000_000, Frozen: true, Note: "declines (frozen)"},
			{Number: "6288880000000047", Kind: KindCorporate, Balance: 10_000_000, Note: "corporate card"},
			{Number: "6299990000000066", Kind: KindOtherBank, Bank: "SANDBOX INTERBANK", Bound: true, Note: "another bank's card"},
			{Number: SandboxDeclinedCard, Kind: KindOtherBank, Bank: "SANDBOX INTERBANK", Note: "another bank's card its bank declines"},
		},
	},
	{
		Username: "lisi_sandbox", Password: "Sandbox2026!", PayPassword: "246801",
		Verify: true, Name: "李四", IDNumber: "310104198511204567", VerifyPhone: "13800000002",
		Cards: []SeedCard{
			{Number: "6288880000000054", Kind: KindDebit, Balance: 200_000, Note: "pays (2,000 CNY)"},
		},
	},
	{
		Phone: "13800000003", Password: "Sandbox2026!",
		Balance: 50_000,
	},
}

// SandboxDeclinedCard is the sandbox's other-bank test card whose bank
// declines every payment (SandboxInterbankOutcome).
const SandboxDeclinedCard = "6299990000000074"

// SandboxInterbankOutcome is the outcome the sandbox's simulated interbank
// switch gives a payment with card c (a channel/sim outcome): "fail" for
// SandboxDeclinedCard, "" (success) for every other card. Real channels
// ignore it.
func SandboxInterbankOutcome(c Card) string {
	d := SandboxDeclinedCard
	if c.Number.First6() == d[:6] && c.Number.Last4() == d[len(d)-4:] {
		return "fail"
	}
	return ""
}

// SeedResult names what Seed created or found for one test customer.
type SeedResult struct {
	Customer Customer `json:"customer"`
	Cards    []Card   `json:"cards"`
}

// Seed creates the sandbox test customers and cards in SandboxCustomers,
// with their passwords, verification, agreements and balances (credited
// from the sandbox funding account). It is idempotent: what exists is kept
// and what is missing is added, and balances are credited once (transfer
// ids derive from the accounts). Use it only on a sandbox: the passwords
// are public. Errors: those of Register, VerifyRealName, SetPayPassword,
// AddCard, Bind and the ledger.
func (s *Service) Seed(ctx context.Context) ([]SeedResult, error) {
	cur := s.limits.Currency
	if _, err := s.books.CreateAccounts(ctx, []ledger.Account{ledger.SandboxFunding(cur)}); err != nil {
		return nil, fmt.Errorf("customer: seed funding account: %w", err)
	}
	var out []SeedResult
	for _, sc := range SandboxCustomers {
		res, err := s.seedOne(ctx, sc)
		if err != nil {
			return nil, fmt.Errorf("customer: seed %s%s: %w", sc.Phone, sc.Username, err)
		}
		out = append(out, res)
	}
	return out, nil
}

func (s *Service) seedOne(ctx context.Context, sc SeedCustomer) (SeedResult, error) {
	cur := s.limits.Currency
	login := sc.Phone + sc.Username
	r, err := s.store.CustomerByLogin(ctx, login)
	if paygate.HasCode(err, paygate.CodeNotFound) {
		if _, err = s.Register(ctx, RegisterRequest{Phone: sc.Phone, Username: sc.Username, Password: sc.Password}); err != nil {
			return SeedResult{}, err
		}
		r, err = s.store.CustomerByLogin(ctx, login)
	}
	if err != nil {
		return SeedResult{}, err
	}
	id := r.ID
	if sc.Verify && !r.Factors.Has(FactorRealName) {
		if _, err := s.VerifyRealName(ctx, id, sc.Name, sc.IDNumber, sc.VerifyPhone); err != nil {
			return SeedResult{}, err
		}
	}
	if sc.PayPassword != "" && r.PayPasswordHash == "" {
		if _, err := s.SetPayPassword(ctx, id, sc.Password, sc.PayPassword); err != nil {
			return SeedResult{}, err
		}
	}
	credits := []ledger.Transfer{}
	credit := func(account string, amount int64) {
		if amount > 0 {
			credits = append(credits, ledger.Transfer{ID: "sandbox-seed:" + account, DebitAccountID: ledger.SandboxFunding(cur).ID,
				CreditAccountID: account, Amount: amount, Currency: cur, Ref: "sandbox seed"})
		}
	}
	credit(ledger.CustomerDeposit(id, cur).ID, sc.Balance)
	holder := Holder{Name: sc.Name, IDNumber: sc.IDNumber, Phone: sc.VerifyPhone}
	var cards []Card
	for _, k := range sc.Cards {
		c, err := s.CardByNumber(ctx, k.Number)
		if paygate.HasCode(err, paygate.CodeNotFound) {
			c, err = s.AddCard(ctx, AddCardRequest{CustomerID: id, Number: k.Number, Kind: k.Kind, Bank: k.Bank, Holder: holder})
		}
		if err != nil {
			return SeedResult{}, err
		}
		if c.CustomerID != id {
			return SeedResult{}, paygate.E(paygate.CodeConflict, "a sandbox card number belongs to another customer")
		}
		if k.Frozen && c.Status != StatusFrozen {
			if c, err = s.SetCardStatus(ctx, id, c.ID, StatusFrozen); err != nil {
				return SeedResult{}, err
			}
		}
		if k.Bound {
			if _, err := s.Bind(ctx, id, c.ID); err != nil && !paygate.HasCode(err, paygate.CodeConflict) {
				return SeedResult{}, err
			}
		}
		if c.Kind.OwnBank() {
			credit(c.AccountID, k.Balance)
		}
		cards = append(cards, c)
	}
	if len(credits) > 0 {
		if err := s.store.InTx(ctx, func(tx Tx) error {
			for _, t := range credits { // one journal each: a resubmitted one is found by id
				if _, err := s.books.Apply(ctx, tx, []ledger.Transfer{t}); err != nil {
					return err
				}
			}
			return nil
		}); err != nil {
			return SeedResult{}, err
		}
	}
	cust, err := s.Customer(ctx, id)
	return SeedResult{Customer: cust, Cards: cards}, err
}
