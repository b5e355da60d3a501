package transfer

import (
	"context"
	"encoding/base64"
	"strings"

	"paygate"
)

// List page sizes.
const (
	DefaultListLimit = 20
	MaxListLimit     = 100
)

// Direction is how a transfer looks from one customer's side.
type Direction string

// Directions: OUT for the payer, IN for the recipient.
const (
	DirectionOut Direction = "OUT"
	DirectionIn  Direction = "IN"
)

// DirectionFor returns the transfer's direction for the customer: OUT when
// they sent it, IN when they received it.
func (t Transfer) DirectionFor(customerID string) Direction {
	if t.CustomerID == customerID {
		return DirectionOut
	}
	return DirectionIn
}

// Page is one page of a customer's transfers, newest first. NextCursor is
// empty on the last page.
type Page struct {
	Transfers  []Transfer `json:"transfers"`
	NextCursor string     `json:"next_cursor,omitempty"`
}

// Get returns a transfer the customer sent or received. A transfer of
// anybody else is CodeNotFound, exactly like a missing one.
func (s *Service) Get(ctx context.Context, customerID, id string) (Transfer, error) {
	notFound := paygate.E(paygate.CodeNotFound, "transfer not found")
	if !strings.HasPrefix(id, PrefixTransfer) || len(id) > 64 {
		return Transfer{}, notFound
	}
	r, err := s.store.Transfer(ctx, id)
	if paygate.HasCode(err, paygate.CodeNotFound) {
		return Transfer{}, notFound
	}
	if err != nil {
		return Transfer{}, err
	}
	if r.CustomerID != customerID && r.RecipientCustomerID != customerID {
		return Transfer{}, notFound
	}
	return r.Transfer, nil
}

// List returns a page of the transfers the customer sent or received,
// newest first: cursor is "" for the newest page or a Page.NextCursor;
// limit 0 means DefaultListLimit, at most MaxListLimit. Errors:
// CodeInvalidArgument (bad cursor or limit).
func (s *Service) List(ctx context.Context, customerID, cursor string, limit int) (Page, error) {
	switch {
	case limit == 0:
		limit = DefaultListLimit
	case limit < 0 || limit > MaxListLimit:
		return Page{}, paygate.EField(paygate.CodeInvalidArgument, "limit", "a page holds 1 to %d transfers", MaxListLimit)
	}
	before := ""
	if cursor != "" {
		b, err := base64.RawURLEncoding.DecodeString(cursor)
		before = string(b)
		if err != nil || len(cursor) > 128 || !strings.HasPrefix(before, PrefixTransfer) || !validRequestID(before) {
			return Page{}, paygate.EField(paygate.CodeInvalidArgument, "cursor", "invalid cursor; start again from the newest page")
		}
	}
	rs, err := s.store.CustomerTransfers(ctx, customerID, before, limit+1)
	if err != nil {
		return Page{}, err
	}
	p := Page{Transfers: make([]Transfer, 0, min(len(rs), limit))}
	for i, r := range rs {
		if i == limit {
			p.NextCursor = base64.RawURLEncoding.EncodeToString([]byte(p.Transfers[limit-1].ID))
			break
		}
		p.Transfers = append(p.Transfers, r.Transfer)
	}
	return p, nil
}
