package customer

import (
	"context"
	"crypto/rand"
	"math/big"
	"slices"
	"strings"
	"time"

	"paygate"
	"paygate/ledger"
	"paygate/sealing"
)

// CardKind tells what a card is and how it is paid.
type CardKind string

// Card kinds. DEBIT and CORPORATE cards are the institution's own: each is a
// ledger account with a balance that may not be overdrawn. OTHER_BANK cards
// are paid through an interbank channel.
const (
	KindDebit     CardKind = "DEBIT"
	KindCorporate CardKind = "CORPORATE"
	KindOtherBank CardKind = "OTHER_BANK"
)

// OwnBank reports whether cards of kind k are the institution's own.
func (k CardKind) OwnBank() bool { return k == KindDebit || k == KindCorporate }

// Card is a card as callers see it: the number only masked, the holder's
// reserved phone only masked.
type Card struct {
	ID          string           `json:"id"`
	CustomerID  string           `json:"customer_id"`
	Kind        CardKind         `json:"kind"`
	Bank        string           `json:"bank"`
	Status      Status           `json:"status"`
	Number      Masked           `json:"number"`
	PhoneMasked string           `json:"holder_phone"`
	AccountID   string           `json:"account_id,omitempty"` // ledger account of an own-bank card
	Currency    paygate.Currency `json:"currency"`
	SingleLimit int64            `json:"single_limit,omitempty"` // 0: the configured default for its kind
	DailyLimit  int64            `json:"daily_limit,omitempty"`
	CreatedAt   time.Time        `json:"created_at"`
	UpdatedAt   time.Time        `json:"updated_at"`
}

// Holder is what the card's bank has on record for its holder, given in
// clear by a caller (quick pay checks it) and kept only as an HMAC digest,
// with the phone sealed for sending one-time codes.
type Holder struct {
	Name     string
	IDNumber string
	Phone    string
}

// AddCardRequest registers a card for a customer.
type AddCardRequest struct {
	CustomerID string
	// Number is the card number. Empty issues a new own-bank card with a
	// generated number under the first own issuer prefix.
	Number string
	// Kind is DEBIT (default) or CORPORATE for own-bank numbers; a number
	// with another issuer prefix is always OTHER_BANK.
	Kind CardKind
	// Bank names another bank (default "OTHER"); own cards are OwnBankName.
	Bank   string
	Holder Holder
	// SingleLimit and DailyLimit override the kind's default card limits
	// when positive (they can only lower the configured method and
	// customer limits, never raise them).
	SingleLimit, DailyLimit int64
}

func panAAD(cardID string) []byte   { return []byte("card:" + cardID + ":pan") }
func phoneAAD(cardID string) []byte { return []byte("card:" + cardID + ":phone") }

func (s *Service) ownBIN(p PAN) bool { return slices.Contains(s.ownBINs, p.First6()) }

func cardNotFound() error { return paygate.E(paygate.CodeNotFound, "card not found") }

// newPAN generates a 16-digit Luhn-valid number under bin.
func newPAN(bin string) PAN {
	n, _ := rand.Int(rand.Reader, big.NewInt(1_000_000_000))
	body := bin + leftPad(n.String(), 9)
	d, _ := LuhnDigit(body)
	return PAN{d: body + string(d)}
}

func leftPad(s string, n int) string { return strings.Repeat("0", max(0, n-len(s))) + s }

// holderDigest binds the holder's details to the card.
func (s *Service) holderDigest(cardID, name, idNumber, phone string) string {
	return s.index.Token("holder", cardID, name, idNumber, phone)
}

// AddCard registers a card (or issues an own-bank card) for an active
// customer. The number is Luhn-checked, sealed and blind-indexed; the
// holder's details are kept as a digest and the reserved phone sealed. An
// own-bank card gets its ledger account. When the customer has passed
// real-name verification, the holder's ID number must be the customer's.
// Errors: CodeInvalidArgument (bad number, kind or holder details),
// CodeForbidden (customer not active, or the holder is someone else),
// CodeConflict (the number is registered already), CodeNotFound.
func (s *Service) AddCard(ctx context.Context, req AddCardRequest) (Card, error) {
	var pan PAN
	if req.Number == "" {
		if req.Kind == KindOtherBank {
			return Card{}, paygate.EField(paygate.CodeInvalidArgument, "card_number", "another bank's card needs its number")
		}
		pan = newPAN(s.ownBINs[0])
	} else {
		p, err := ParsePAN(req.Number)
		if err != nil {
			return Card{}, err
		}
		pan = p
	}
	c := Card{ID: paygate.NewID(PrefixCard), CustomerID: req.CustomerID, Status: StatusActive, Number: pan.Masked(),
		Currency: s.limits.Currency, SingleLimit: req.SingleLimit, DailyLimit: req.DailyLimit}
	if req.SingleLimit < 0 || req.DailyLimit < 0 {
		return Card{}, paygate.EField(paygate.CodeInvalidArgument, "limit", "card limits must not be negative")
	}
	if s.ownBIN(pan) {
		switch req.Kind {
		case "", KindDebit:
			c.Kind = KindDebit
		case KindCorporate:
			c.Kind = KindCorporate
		default:
			return Card{}, paygate.EField(paygate.CodeInvalidArgument, "kind", "an own-bank card is DEBIT or CORPORATE")
		}
		c.Bank = OwnBankName
		c.AccountID = ledger.CardAccount(c.ID, c.CustomerID, c.Currency).ID
	} else {
		c.Kind, c.Bank = KindOtherBank, strings.TrimSpace(req.Bank)
		if c.Bank == "" {
			c.Bank = "OTHER"
		}
		if len(c.Bank) > 64 {
			return Card{}, paygate.EField(paygate.CodeInvalidArgument, "bank", "a bank name has at most 64 characters")
		}
	}
	ident, err := s.parseIdentity(req.Holder.Name, req.Holder.IDNumber, req.Holder.Phone)
	if err != nil {
		return Card{}, err
	}
	c.PhoneMasked = MaskPhone(ident.Phone)
	cust, err := s.store.Customer(ctx, req.CustomerID)
	if err != nil {
		return Card{}, err
	}
	if cust.Status != StatusActive {
		return Card{}, paygate.E(paygate.CodeForbidden, "this customer account is %s", strings.ToLower(string(cust.Status)))
	}
	if cust.IDIndex != "" && !sealing.Equal(cust.IDIndex, s.index.Token("id", ident.IDNumber.Value())) {
		return Card{}, paygate.E(paygate.CodeForbidden, "the card holder must be the customer")
	}
	now := s.clock.Now().UTC().Truncate(time.Microsecond)
	c.CreatedAt, c.UpdatedAt = now, now
	rec := CardRecord{Card: c,
		PAN:          s.keyring.Seal([]byte(pan.Digits()), panAAD(c.ID)),
		PANIndex:     s.index.Token("pan", pan.Digits()),
		HolderDigest: s.holderDigest(c.ID, ident.Name, ident.IDNumber.Value(), ident.Phone),
		HolderPhone:  s.keyring.Seal([]byte(ident.Phone), phoneAAD(c.ID)),
	}
	if _, err := s.store.CardByIndex(ctx, rec.PANIndex); err == nil {
		return Card{}, paygate.EField(paygate.CodeConflict, "card_number", "this card is already registered")
	} else if !paygate.HasCode(err, paygate.CodeNotFound) {
		return Card{}, err
	}
	if c.Kind.OwnBank() {
		if _, err := s.books.CreateAccounts(ctx, []ledger.Account{ledger.CardAccount(c.ID, c.CustomerID, c.Currency)}); err != nil {
			return Card{}, err
		}
	}
	err = s.store.InTx(ctx, func(tx Tx) error {
		ok, err := tx.InsertCard(ctx, rec)
		if err != nil {
			return err
		}
		if !ok {
			return paygate.EField(paygate.CodeConflict, "card_number", "this card is already registered")
		}
		return nil
	})
	if err != nil {
		return Card{}, err
	}
	s.log.InfoContext(ctx, "card added", "customer", c.CustomerID, "card", c.ID, "kind", c.Kind, "number", c.Number.String())
	return c, nil
}

// ownCard returns the customer's card; another customer's card is
// CodeNotFound, exactly like a missing one.
func ownCard(r CardRecord, err error, customerID string) (CardRecord, error) {
	if err != nil {
		return CardRecord{}, err
	}
	if r.CustomerID != customerID {
		return CardRecord{}, cardNotFound()
	}
	return r, nil
}

// Card returns the customer's card. Errors: CodeNotFound (also for another
// customer's card).
func (s *Service) Card(ctx context.Context, customerID, cardID string) (Card, error) {
	r, err := s.store.Card(ctx, cardID)
	r, err = ownCard(r, err, customerID)
	return r.Card, err
}

// CardByID returns a card whoever's it is, for flows that identified the
// card by other means first (quick pay: the number and holder details, then
// a one-time code to the holder's phone). Errors: CodeNotFound.
func (s *Service) CardByID(ctx context.Context, cardID string) (Card, error) {
	r, err := s.store.Card(ctx, cardID)
	return r.Card, err
}

// Cards lists the customer's cards, oldest first.
func (s *Service) Cards(ctx context.Context, customerID string) ([]Card, error) {
	rs, err := s.store.Cards(ctx, customerID)
	if err != nil {
		return nil, err
	}
	out := make([]Card, len(rs))
	for i, r := range rs {
		out[i] = r.Card
	}
	return out, nil
}

// CardByNumber finds a card by its number through the blind index. Errors:
// CodeInvalidArgument (not a valid number), CodeNotFound.
func (s *Service) CardByNumber(ctx context.Context, number string) (Card, error) {
	pan, err := ParsePAN(number)
	if err != nil {
		return Card{}, err
	}
	r, err := s.store.CardByIndex(ctx, s.index.Token("pan", pan.Digits()))
	return r.Card, err
}

// VerifyHolder checks, in constant time, that the holder's name, ID number
// and phone are those on record for the card (quick pay's first step).
// Errors: CodeInvalidArgument (a malformed field, or the details do not
// match; the message never says which), CodeNotFound.
func (s *Service) VerifyHolder(ctx context.Context, cardID string, h Holder) error {
	ident, err := s.parseIdentity(h.Name, h.IDNumber, h.Phone)
	if err != nil {
		return err
	}
	r, err := s.store.Card(ctx, cardID)
	if err != nil {
		return err
	}
	if !sealing.Equal(r.HolderDigest, s.holderDigest(r.ID, ident.Name, ident.IDNumber.Value(), ident.Phone)) {
		return paygate.E(paygate.CodeInvalidArgument, "the card holder's details do not match the card")
	}
	return nil
}

// HolderPhone returns the card's reserved phone in clear, for sending a
// one-time code to it. Callers must not log or show it (show
// Card.PhoneMasked). Errors: CodeNotFound, CodeInternal (cannot unseal).
func (s *Service) HolderPhone(ctx context.Context, cardID string) (string, error) {
	r, err := s.store.Card(ctx, cardID)
	if err != nil {
		return "", err
	}
	b, err := s.keyring.Open(r.HolderPhone, phoneAAD(r.ID))
	if err != nil {
		return "", err
	}
	return string(b), nil
}

// SetCardStatus freezes, unfreezes or closes the customer's card. A frozen
// or closed card declines every payment. Errors: CodeInvalidArgument,
// CodeNotFound (also for another customer's card).
func (s *Service) SetCardStatus(ctx context.Context, customerID, cardID string, st Status) (Card, error) {
	if st != StatusActive && st != StatusFrozen && st != StatusClosed {
		return Card{}, paygate.EField(paygate.CodeInvalidArgument, "status", "status must be ACTIVE, FROZEN or CLOSED")
	}
	var out Card
	err := s.store.InTx(ctx, func(tx Tx) error {
		r, err := tx.CardInTx(ctx, cardID)
		r, err = ownCard(r, err, customerID)
		if err != nil {
			return err
		}
		r.Status, r.UpdatedAt = st, s.clock.Now().UTC().Truncate(time.Microsecond)
		out = r.Card
		return tx.UpdateCard(ctx, r)
	})
	return out, err
}

// CardBalance returns the available balance of the customer's own-bank
// card. Errors: CodeNotFound (also for another customer's card),
// CodeInvalidArgument (another bank's card has no balance here).
func (s *Service) CardBalance(ctx context.Context, customerID, cardID string) (paygate.Money, error) {
	c, err := s.Card(ctx, customerID, cardID)
	if err != nil {
		return paygate.Money{}, err
	}
	if !c.Kind.OwnBank() {
		return paygate.Money{}, paygate.E(paygate.CodeInvalidArgument, "another bank's card has no balance here")
	}
	return s.available(ctx, c.AccountID, c.Currency)
}

// AgreementStatus is a binding agreement's state.
type AgreementStatus string

// Agreement statuses: an agreement is revoked once and stays revoked.
const (
	AgreementActive  AgreementStatus = "ACTIVE"
	AgreementRevoked AgreementStatus = "REVOKED"
)

// Agreement binds a card to its customer for quick pay: while it is
// active, a quick payment needs only the card's last four digits and a
// one-time code.
type Agreement struct {
	ID         string          `json:"id"`
	CustomerID string          `json:"customer_id"`
	CardID     string          `json:"card_id"`
	Status     AgreementStatus `json:"status"`
	CreatedAt  time.Time       `json:"created_at"`
	RevokedAt  time.Time       `json:"revoked_at,omitzero"`
}

// Bind makes an agreement for the customer's active card and adds the card
// factor. Errors: CodeNotFound (also another customer's card),
// CodeForbidden (card or customer not active), CodeConflict (the card is
// bound already).
func (s *Service) Bind(ctx context.Context, customerID, cardID string) (Agreement, error) {
	now := s.clock.Now().UTC().Truncate(time.Microsecond)
	a := Agreement{ID: paygate.NewID(PrefixAgreement), CustomerID: customerID, CardID: cardID, Status: AgreementActive, CreatedAt: now}
	err := s.store.InTx(ctx, func(tx Tx) error {
		cust, err := tx.LockCustomer(ctx, customerID)
		if err != nil {
			return err
		}
		c, err := tx.CardInTx(ctx, cardID)
		if c, err = ownCard(c, err, customerID); err != nil {
			return err
		}
		if cust.Status != StatusActive || c.Status != StatusActive {
			return paygate.E(paygate.CodeForbidden, "the customer or the card is not active")
		}
		ok, err := tx.InsertAgreement(ctx, a)
		if err != nil {
			return err
		}
		if !ok {
			return paygate.E(paygate.CodeConflict, "the card is bound already")
		}
		if !cust.Factors.Has(FactorCard) {
			cust.Factors |= FactorCard
			cust.UpdatedAt = now
			return tx.UpdateCustomer(ctx, cust)
		}
		return nil
	})
	if err != nil {
		return Agreement{}, err
	}
	s.log.InfoContext(ctx, "card bound", "customer", customerID, "card", cardID, "agreement", a.ID)
	return a, nil
}

// Unbind revokes the customer's agreement (idempotent: a revoked agreement
// is returned as it is) and drops the card factor when no agreement is
// left. Errors: CodeNotFound (also another customer's agreement).
func (s *Service) Unbind(ctx context.Context, customerID, agreementID string) (Agreement, error) {
	var out Agreement
	err := s.store.InTx(ctx, func(tx Tx) error {
		cust, err := tx.LockCustomer(ctx, customerID)
		if err != nil {
			return err
		}
		a, err := tx.LockAgreement(ctx, agreementID)
		if err != nil {
			return err
		}
		if a.CustomerID != customerID {
			return paygate.E(paygate.CodeNotFound, "agreement not found")
		}
		out = a
		if a.Status == AgreementRevoked {
			return nil
		}
		now := s.clock.Now().UTC().Truncate(time.Microsecond)
		if err := tx.RevokeAgreement(ctx, a.ID, now); err != nil {
			return err
		}
		out.Status, out.RevokedAt = AgreementRevoked, now
		n, err := tx.CountActiveAgreements(ctx, customerID)
		if err != nil {
			return err
		}
		if n == 0 && cust.Factors.Has(FactorCard) {
			cust.Factors &^= FactorCard
			cust.UpdatedAt = now
			return tx.UpdateCustomer(ctx, cust)
		}
		return nil
	})
	if err != nil {
		return Agreement{}, err
	}
	s.log.InfoContext(ctx, "card unbound", "customer", customerID, "agreement", agreementID)
	return out, nil
}

// Agreements lists the customer's agreements, revoked ones included,
// oldest first.
func (s *Service) Agreements(ctx context.Context, customerID string) ([]Agreement, error) {
	return s.store.Agreements(ctx, customerID)
}

// BoundCard is an active agreement with its card.
type BoundCard struct {
	Agreement Agreement `json:"agreement"`
	Card      Card      `json:"card"`
}

// BoundCardsByLastFour returns the customer's active agreements whose
// active card ends in last4 (a returning quick-pay customer's choice).
// Errors: CodeInvalidArgument when last4 is not four digits.
func (s *Service) BoundCardsByLastFour(ctx context.Context, customerID, last4 string) ([]BoundCard, error) {
	if len(last4) != 4 || strings.Trim(last4, "0123456789") != "" {
		return nil, paygate.EField(paygate.CodeInvalidArgument, "last4", "give the card's last four digits")
	}
	as, err := s.store.Agreements(ctx, customerID)
	if err != nil {
		return nil, err
	}
	cards, err := s.store.Cards(ctx, customerID)
	if err != nil {
		return nil, err
	}
	byID := map[string]Card{}
	for _, c := range cards {
		byID[c.ID] = c.Card
	}
	var out []BoundCard
	for _, a := range as {
		c, ok := byID[a.CardID]
		if a.Status == AgreementActive && ok && c.Status == StatusActive && c.Number.Last4() == last4 {
			out = append(out, BoundCard{Agreement: a, Card: c})
		}
	}
	return out, nil
}
