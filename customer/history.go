package customer

import (
	"context"
	"encoding/base64"
	"strconv"
	"strings"
	"time"

	"paygate"
	"paygate/ledger"
)

// Direction is which way money moved on a customer's account.
type Direction string

// Directions: IN credits the customer's account, OUT debits it.
const (
	DirectionIn  Direction = "IN"
	DirectionOut Direction = "OUT"
)

// EntryKind tells what a history entry was, from the account on its
// other side.
type EntryKind string

// Entry kinds.
const (
	EntryPayment  EntryKind = "PAYMENT"  // out to a merchant
	EntryRefund   EntryKind = "REFUND"   // in from a merchant
	EntryTopUp    EntryKind = "TOP_UP"   // in from the sandbox's funding (or a channel)
	EntryTransfer EntryKind = "TRANSFER" // between customer accounts and cards
	EntryPayout   EntryKind = "PAYOUT"   // in from a merchant's batch payment
	EntryOther    EntryKind = "OTHER"
)

// History page sizes.
const (
	DefaultHistoryLimit = 20
	MaxHistoryLimit     = 100
	// historyScan bounds the ledger transfers one History call reads, so
	// a narrow filter over a long history costs bounded work: the page is
	// then shorter than asked, with a NextCursor to go on.
	historyScan = 1000
	// historyBatch is the ledger page size History reads with.
	historyBatch = 200
	// historySkew is how far out of time order transfers may be by
	// sequence number (concurrent commits): the scan looks this far past
	// Since before it stops.
	historySkew = time.Minute
)

// HistoryQuery selects a page of the transaction history of one of the
// customer's accounts: the balance account (CardID "") or one of the
// customer's own-bank cards.
type HistoryQuery struct {
	CardID string
	// Since and Until bound the entries' times: Since <= time < Until; a
	// zero bound is open.
	Since, Until time.Time
	// Direction keeps only IN or only OUT entries; "" keeps both.
	Direction Direction
	// Cursor is "" for the newest page, or a HistoryPage.NextCursor of the
	// same query.
	Cursor string
	// Limit is the page size: 0 means DefaultHistoryLimit, at most
	// MaxHistoryLimit.
	Limit int
}

// HistoryEntry is one movement of money on the account. Pending entries
// are holds not yet posted (the money is reserved); holds that were posted
// show as their posting, and voided or expired holds not at all.
type HistoryEntry struct {
	TransferID     string        `json:"transfer_id"`
	Time           time.Time     `json:"time"`
	AccountingDate paygate.Date  `json:"accounting_date"`
	Direction      Direction     `json:"direction"`
	Amount         paygate.Money `json:"amount"` // positive; Direction gives the sign
	Kind           EntryKind     `json:"kind"`
	Pending        bool          `json:"pending,omitempty"`
	// Ref is the posting's reference (a payment attempt, an order); never
	// a card number.
	Ref string `json:"ref,omitempty"`
}

// HistoryPage is one page of history, newest first. NextCursor is empty on
// the last page.
type HistoryPage struct {
	Entries    []HistoryEntry `json:"entries"`
	NextCursor string         `json:"next_cursor,omitempty"`
}

// transferLister is the ledger's transfers-of-account look-up;
// *ledger.Ledger (and ledger.Service) implement it.
type transferLister interface {
	ListTransfers(ctx context.Context, accountID, cursor string, limit int) (ledger.TransferPage, error)
}

// historyCursor is where a History page continues: the ledger page that
// holds the next entries and the sequence number to continue below.
type historyCursor struct {
	ledger string
	below  int64 // skip transfers with Seq >= below; 0: skip none
}

func (c historyCursor) encode() string {
	return base64.RawURLEncoding.EncodeToString([]byte("h1." + strconv.FormatInt(c.below, 10) + "." + c.ledger))
}

func parseHistoryCursor(s string) (historyCursor, error) {
	if s == "" {
		return historyCursor{}, nil
	}
	bad := paygate.EField(paygate.CodeInvalidArgument, "cursor", "invalid cursor; start again from the newest page")
	if len(s) > 256 {
		return historyCursor{}, bad
	}
	b, err := base64.RawURLEncoding.DecodeString(s)
	if err != nil {
		return historyCursor{}, bad
	}
	parts := strings.SplitN(string(b), ".", 3)
	if len(parts) != 3 || parts[0] != "h1" {
		return historyCursor{}, bad
	}
	below, err := strconv.ParseInt(parts[1], 10, 64)
	if err != nil || below <= 0 {
		return historyCursor{}, bad
	}
	return historyCursor{ledger: parts[2], below: below}, nil
}

// History returns a page of the transaction history of the customer's
// balance account or own-bank card, newest first, filtered by time and
// direction. It reads the ledger's postings of the account (bounded work
// per call: a page may hold fewer entries than Limit and still have a
// NextCursor). Errors: CodeNotFound (unknown customer, or a card that is
// not the customer's), CodeInvalidArgument (another bank's card, a bad
// direction, limit, time range or cursor).
func (s *Service) History(ctx context.Context, customerID string, q HistoryQuery) (HistoryPage, error) {
	switch {
	case q.Limit == 0:
		q.Limit = DefaultHistoryLimit
	case q.Limit < 0 || q.Limit > MaxHistoryLimit:
		return HistoryPage{}, paygate.EField(paygate.CodeInvalidArgument, "limit", "a page holds 1 to %d entries", MaxHistoryLimit)
	}
	if q.Direction != "" && q.Direction != DirectionIn && q.Direction != DirectionOut {
		return HistoryPage{}, paygate.EField(paygate.CodeInvalidArgument, "direction", "direction must be IN or OUT")
	}
	if !q.Since.IsZero() && !q.Until.IsZero() && !q.Since.Before(q.Until) {
		return HistoryPage{}, paygate.EField(paygate.CodeInvalidArgument, "since", "the start of the range must come before its end")
	}
	cur, err := parseHistoryCursor(q.Cursor)
	if err != nil {
		return HistoryPage{}, err
	}
	account, currency := "", s.limits.Currency
	if q.CardID == "" {
		if _, err := s.store.Customer(ctx, customerID); err != nil {
			return HistoryPage{}, err
		}
		account = s.BalanceAccount(customerID)
	} else {
		c, err := s.Card(ctx, customerID, q.CardID)
		if err != nil {
			return HistoryPage{}, err
		}
		if !c.Kind.OwnBank() {
			return HistoryPage{}, paygate.E(paygate.CodeInvalidArgument, "another bank's card has no history here")
		}
		account, currency = c.AccountID, c.Currency
	}
	lister, ok := s.books.(transferLister)
	if !ok {
		return HistoryPage{}, paygate.E(paygate.CodeUnavailable, "transaction history is not available")
	}

	page := HistoryPage{Entries: []HistoryEntry{}}
	var lastSeq int64 // of the newest-page entry that ends the page
	scanned := 0
	for {
		lp, err := lister.ListTransfers(ctx, account, cur.ledger, historyBatch)
		if err != nil {
			if paygate.HasCode(err, paygate.CodeAccountNotFound) {
				return page, nil // nothing was ever booked on it
			}
			return HistoryPage{}, err
		}
		for _, t := range lp.Transfers {
			if cur.below > 0 && t.Seq >= cur.below {
				continue
			}
			if scanned == historyScan { // out of budget: go on from here next time
				page.NextCursor = historyCursor{ledger: cur.ledger, below: t.Seq + 1}.encode()
				return page, nil
			}
			scanned++
			if !q.Since.IsZero() && t.CreatedAt.Before(q.Since.Add(-historySkew)) {
				return page, nil // older than the range: done
			}
			e, ok := entryOf(t, account, currency)
			if !ok || q.Direction != "" && e.Direction != q.Direction ||
				!q.Since.IsZero() && e.Time.Before(q.Since) || !q.Until.IsZero() && !e.Time.Before(q.Until) {
				continue
			}
			if len(page.Entries) == q.Limit { // one more exists: the page is full
				page.NextCursor = historyCursor{ledger: cur.ledger, below: lastSeq}.encode()
				return page, nil
			}
			page.Entries = append(page.Entries, e)
			lastSeq = t.Seq
		}
		if lp.NextCursor == "" {
			return page, nil
		}
		cur = historyCursor{ledger: lp.NextCursor}
	}
}

// entryOf turns a posting of account into a history entry; holds that were
// resolved, voids and expiries give none.
func entryOf(t ledger.Transfer, account string, cur paygate.Currency) (HistoryEntry, bool) {
	e := HistoryEntry{TransferID: t.ID, Time: t.CreatedAt, AccountingDate: t.AccountingDate,
		Amount: paygate.Money{Amount: t.Amount, Currency: cur}, Ref: t.Ref}
	switch t.Flags.Kind() {
	case "single", "post":
	case "pending":
		if t.HoldStatus != ledger.HoldPending {
			return HistoryEntry{}, false
		}
		e.Pending = true
	default:
		return HistoryEntry{}, false
	}
	other := t.DebitAccountID
	e.Direction = DirectionIn
	if t.DebitAccountID == account {
		other, e.Direction = t.CreditAccountID, DirectionOut
	}
	if t.Currency != "" {
		e.Amount.Currency = t.Currency
	}
	switch {
	case strings.HasPrefix(other, "mch:") && e.Direction == DirectionOut:
		e.Kind = EntryPayment
	case strings.HasPrefix(other, "mch:"):
		e.Kind = EntryRefund
	case strings.HasPrefix(other, "sandbox:funding:") && e.Direction == DirectionIn, strings.HasPrefix(other, "chan:") && e.Direction == DirectionIn:
		e.Kind = EntryTopUp
	case strings.HasPrefix(other, "payout:") && e.Direction == DirectionIn:
		e.Kind = EntryPayout
	case strings.HasPrefix(other, "cus:"), strings.HasPrefix(other, "card:"):
		e.Kind = EntryTransfer
	default:
		e.Kind = EntryOther
	}
	return e, true
}
