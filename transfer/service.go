package transfer

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"
	"unicode"
	"unicode/utf8"

	"paygate"
	"paygate/customer"
	"paygate/ledger"
	"paygate/sealing"
)

// Customers is what transfers use of customers; *customer.Service
// implements it.
type Customers interface {
	Limits() customer.Limits
	Customer(ctx context.Context, id string) (customer.Customer, error)
	CustomerByPhone(ctx context.Context, phone string) (customer.Customer, error)
	CardByNumber(ctx context.Context, number string) (customer.Card, error)
	VerifyPayPassword(ctx context.Context, id, pin string) error
	Reserve(ctx context.Context, tx customer.Tx, customerID, cardID string, method customer.Method, amount int64, day paygate.Date) (customer.Reservation, error)
	Release(ctx context.Context, tx customer.Tx, r customer.Reservation) error
	BalanceAccount(customerID string) string
}

var _ Customers = (*customer.Service)(nil)

// Books is what transfers use of the ledger; *ledger.Ledger implements it.
type Books interface {
	CreateAccounts(ctx context.Context, accounts []ledger.Account) ([]ledger.Account, error)
	Apply(ctx context.Context, tx ledger.Tx, transfers []ledger.Transfer) ([]ledger.Result, error)
}

// Config configures a Service. Store, Customers, Books, Clock and Keyring
// are required; zero settings take the defaults shown.
type Config struct {
	Store     Store
	Customers Customers
	Books     Books
	Clock     paygate.Clock
	// Keyring seals other banks' card numbers at rest and keys the
	// requests' fingerprints (a key derived for "transfer-request").
	Keyring *sealing.Keyring
	// Calendar dates the limit usage by business day (the ledger's
	// calendar). Zero: paygate.DefaultCalendar().
	Calendar paygate.Calendar
	Logger   *slog.Logger // nil: slog.Default()
	// OwnBINs are the issuer prefixes of the institution's own cards, the
	// customer service's (default customer.SandboxOwnBIN): a number under
	// one of them that no customer registered is refused, every other
	// number is another bank's card.
	OwnBINs []string
	// Payouts is the interbank channel other banks' cards are credited
	// through; nil refuses other banks' cards.
	Payouts Payouts
	// Interbank names that channel: its clearing account
	// (ledger.ChannelClearing) holds the money until it answers. Default
	// "interbank".
	Interbank string
	// InterbankScenario, when set, names the outcome a simulated interbank
	// channel gives a card (customer.SandboxInterbankOutcome in the
	// sandbox); real channels ignore it.
	InterbankScenario func(customer.Card) string
	// QueryInterval is how long after a transfer to another bank's card
	// Reconcile first asks the channel, doubling with each unanswered
	// question up to MaxQueryInterval. Defaults 10 s and 10 min.
	QueryInterval, MaxQueryInterval time.Duration
}

// DefaultInterbank is the default Config.Interbank.
const DefaultInterbank = "interbank"

// Service is the transfer use case. It is safe for concurrent use.
type Service struct {
	cfg      Config
	store    Store
	cus      Customers
	books    Books
	clock    paygate.Clock
	log      *slog.Logger
	hashKeys [][]byte // the first computes fingerprints; all are accepted
	clearing sync.Map // currency → interbank clearing account created
}

// New returns a Service. Errors: CodeInvalidArgument for a missing
// dependency or a malformed setting.
func New(cfg Config) (*Service, error) {
	if cfg.Store == nil || cfg.Customers == nil || cfg.Books == nil || cfg.Clock == nil || cfg.Keyring == nil {
		return nil, paygate.E(paygate.CodeInvalidArgument, "transfer: Store, Customers, Books, Clock and Keyring are required")
	}
	if cfg.Calendar.Location == nil {
		cfg.Calendar = paygate.DefaultCalendar()
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if len(cfg.OwnBINs) == 0 {
		cfg.OwnBINs = []string{customer.SandboxOwnBIN}
	}
	for _, b := range cfg.OwnBINs {
		if len(b) != 6 || strings.Trim(b, "0123456789") != "" {
			return nil, paygate.E(paygate.CodeInvalidArgument, "transfer: an issuer prefix has 6 digits")
		}
	}
	if cfg.Interbank == "" {
		cfg.Interbank = DefaultInterbank
	}
	if cfg.QueryInterval <= 0 {
		cfg.QueryInterval = 10 * time.Second
	}
	if cfg.MaxQueryInterval < cfg.QueryInterval {
		cfg.MaxQueryInterval = max(10*time.Minute, cfg.QueryInterval)
	}
	return &Service{cfg: cfg, store: cfg.Store, cus: cfg.Customers, books: cfg.Books, clock: cfg.Clock, log: cfg.Logger,
		hashKeys: cfg.Keyring.DeriveKeys("transfer-request")}, nil
}

// recipient is a request's To, parsed: exactly one of phone and pan.
type recipient struct {
	phone string
	pan   customer.PAN
}

// parsed is a validated request.
type parsed struct {
	requestID, memo, pin string
	to                   recipient
	amount               paygate.Money
}

// fingerprint is the HMAC of what makes two requests the same transfer.
func (s *Service) fingerprint(key []byte, p parsed) string {
	m := hmac.New(sha256.New, key)
	to := "phone:" + p.to.phone
	if p.to.phone == "" {
		to = "card:" + p.to.pan.Digits()
	}
	m.Write([]byte("v1\x00" + to + "\x00" + strconv.FormatInt(p.amount.Amount, 10) + string(p.amount.Currency) + "\x00" + p.memo))
	return hex.EncodeToString(m.Sum(nil))
}

// sameRequest reports whether a stored transfer was made from the request.
func (s *Service) sameRequest(r Record, p parsed) bool {
	for _, k := range s.hashKeys {
		if sealing.Equal(r.RequestHash, s.fingerprint(k, p)) {
			return true
		}
	}
	return false
}

func validRequestID(id string) bool {
	if id == "" || len(id) > MaxRequestIDLen {
		return false
	}
	for i := 0; i < len(id); i++ {
		c := id[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_' || c == '-') {
			return false
		}
	}
	return true
}

// ParseRecipient tells whether to names a customer by their mobile phone
// (it returns the 11 digits) or a card (it returns "" and the number's
// mask). Errors: CodeInvalidArgument on field "to", never echoing a card
// number.
func ParseRecipient(to string) (phone string, card customer.Masked, err error) {
	r, err := parseRecipient(to)
	if err != nil {
		return "", customer.Masked{}, err
	}
	if r.phone != "" {
		return r.phone, customer.Masked{}, nil
	}
	return "", r.pan.Masked(), nil
}

func parseRecipient(to string) (recipient, error) {
	to = strings.TrimSpace(to)
	if to == "" {
		return recipient{}, paygate.EField(paygate.CodeInvalidArgument, "to", "give the recipient's mobile phone or card number")
	}
	if p, err := customer.ParsePhone(to); err == nil {
		return recipient{phone: p}, nil
	}
	digits := strings.Map(func(r rune) rune {
		if r == ' ' || r == '-' || r == '+' {
			return -1
		}
		return r
	}, to)
	if len(digits) <= 11 && strings.Trim(digits, "0123456789") == "" {
		return recipient{}, paygate.EField(paygate.CodeInvalidArgument, "to", "a mobile phone has 11 digits starting with 13 to 19")
	}
	pan, err := customer.ParsePAN(to)
	if err != nil {
		var pe *paygate.Error
		msg := "the recipient must be a mobile phone or a card number"
		if errors.As(err, &pe) && len(digits) >= 13 && len(digits) <= 19 {
			msg = pe.Message
		}
		return recipient{}, paygate.EField(paygate.CodeInvalidArgument, "to", "%s", msg)
	}
	return recipient{pan: pan}, nil
}

// CheckMemo validates a memo: at most MaxMemoLen characters of valid UTF-8
// without control characters; surrounding space is trimmed. Errors:
// CodeInvalidArgument on field "memo".
func CheckMemo(memo string) (string, error) {
	memo = strings.TrimSpace(memo)
	if !utf8.ValidString(memo) || strings.IndexFunc(memo, unicode.IsControl) >= 0 {
		return "", paygate.EField(paygate.CodeInvalidArgument, "memo", "the memo contains characters that are not allowed")
	}
	if utf8.RuneCountInString(memo) > MaxMemoLen {
		return "", paygate.EField(paygate.CodeInvalidArgument, "memo", "the memo has at most %d characters", MaxMemoLen)
	}
	return memo, nil
}

func (s *Service) parse(req Request) (parsed, error) {
	p := parsed{requestID: req.RequestID, pin: req.PayPassword, amount: req.Amount}
	if !validRequestID(p.requestID) {
		return parsed{}, paygate.EField(paygate.CodeInvalidArgument, "request_id", "a request id has 1 to %d letters, digits, '_' or '-'", MaxRequestIDLen)
	}
	var err error
	if p.to, err = parseRecipient(req.To); err != nil {
		return parsed{}, err
	}
	cur := s.cus.Limits().Currency
	if p.amount.Currency == "" {
		p.amount.Currency = cur
	}
	if p.amount.Currency != cur {
		return parsed{}, paygate.EField(paygate.CodeCurrencyMismatch, "currency", "transfers are in %s only", cur)
	}
	if p.amount.Amount <= 0 {
		return parsed{}, paygate.EField(paygate.CodeAmountNotPositive, "amount", "the amount must be more than zero")
	}
	if p.memo, err = CheckMemo(req.Memo); err != nil {
		return parsed{}, err
	}
	return p, nil
}

// Send makes a transfer from the payer's balance account (customerID) as
// the request says, and returns it: SUCCESS for a customer or an own-bank
// card (credited at once), PROCESSING for another bank's card (the money
// is held until the interbank channel answers; see Reconcile), or FAILED
// when the channel refused it at once (the money is back).
//
// Checks, in order: the request's form (request id, recipient, amount,
// currency, memo); the same RequestID again returns the first transfer
// when the recipient, amount and memo are the same (whatever the payment
// password), and is refused otherwise; the payer is active with online
// payment on; the payment password (customer.Service.VerifyPayPassword:
// counted, locked after too many wrong ones); the recipient exists, is not
// the payer and is active (so is the card). Then one transaction records
// the limit usage (customer.MethodTransfer), the transfer and its ledger
// journal; a refusal there leaves nothing recorded.
//
// Errors: CodeInvalidArgument (a malformed field, named; transferring to
// oneself), CodeAmountNotPositive, CodeCurrencyMismatch (not the limits'
// currency), CodeConflict (the RequestID was used for another transfer;
// or no payment password is set, field "pay_password"),
// CodeUnauthenticated (wrong payment password, with the tries left),
// CodeForbidden (the payer is not active or has online payment off; the
// payment password is locked, with a *customer.LockedError cause; the
// recipient or the card cannot receive transfers; other banks' cards are
// not available), CodeNotFound (no customer registered with the phone, no
// such own-bank card; or the payer is unknown), CodeLimitExceeded (with a
// *customer.LimitError cause naming the limit), CodeInsufficientFunds
// (the balance is short).
func (s *Service) Send(ctx context.Context, customerID string, req Request) (Transfer, error) {
	p, err := s.parse(req)
	if err != nil {
		return Transfer{}, err
	}
	if t, found, err := s.replay(ctx, customerID, p); found || err != nil {
		return t, err
	}
	payer, err := s.cus.Customer(ctx, customerID)
	if err != nil {
		return Transfer{}, err
	}
	switch {
	case payer.Status != customer.StatusActive:
		return Transfer{}, paygate.E(paygate.CodeForbidden, "this customer account is %s", strings.ToLower(string(payer.Status)))
	case !payer.OnlinePayment:
		return Transfer{}, paygate.E(paygate.CodeForbidden, "online payment is turned off: turn it on in the security settings to transfer")
	case p.pin == "":
		return Transfer{}, paygate.EField(paygate.CodeInvalidArgument, "pay_password", "enter your payment password")
	}
	if err := s.cus.VerifyPayPassword(ctx, customerID, p.pin); err != nil {
		return Transfer{}, err
	}
	r, err := s.newRecord(ctx, payer, p)
	if err != nil {
		return Transfer{}, err
	}
	if r.Kind == KindOtherBank {
		if err := s.ensureClearing(ctx, r.Amount.Currency); err != nil {
			return Transfer{}, err
		}
	}
	errTaken := errors.New("transfer: request id taken")
	err = s.store.InTx(ctx, func(tx Tx) error {
		ok, err := tx.InsertTransfer(ctx, r)
		if err != nil {
			return err
		}
		if !ok {
			return errTaken
		}
		if err := s.checkRecipientInTx(ctx, tx, r); err != nil {
			return err
		}
		if _, err := s.cus.Reserve(ctx, tx, customerID, "", customer.MethodTransfer, r.Amount.Amount, r.AccountingDate); err != nil {
			return err
		}
		_, err = s.books.Apply(ctx, tx, []ledger.Transfer{s.journal(r)})
		return err
	})
	if errors.Is(err, errTaken) { // the same request, committed concurrently
		t, found, err := s.replay(ctx, customerID, p)
		if err == nil && !found {
			err = paygate.Internal(errors.New("transfer: request id taken, transfer not found"))
		}
		return t, err
	}
	if err != nil {
		return Transfer{}, s.refusal(err)
	}
	s.log.InfoContext(ctx, "transfer made", "transfer", r.ID, "customer", customerID, "kind", r.Kind,
		"recipient", r.Recipient, "amount", r.Amount.Amount, "status", r.Status)
	if r.Kind == KindOtherBank {
		return s.submit(ctx, r).Transfer, nil
	}
	return r.Transfer, nil
}

// replay finds the payer's transfer with the request's RequestID: found
// and returned when it is the same request, CodeConflict when not.
func (s *Service) replay(ctx context.Context, customerID string, p parsed) (Transfer, bool, error) {
	r, err := s.store.TransferByRequest(ctx, customerID, p.requestID)
	switch {
	case paygate.HasCode(err, paygate.CodeNotFound):
		return Transfer{}, false, nil
	case err != nil:
		return Transfer{}, false, err
	case !s.sameRequest(r, p):
		return Transfer{}, true, paygate.EField(paygate.CodeConflict, "request_id",
			"this form was already used for another transfer; start a new transfer")
	}
	return r.Transfer, true, nil
}

// refusal rewords the transaction's refusals for the payer.
func (s *Service) refusal(err error) error {
	var pe *paygate.Error
	if !errors.As(err, &pe) {
		return err
	}
	switch pe.Code {
	case paygate.CodeInsufficientFunds:
		return &paygate.Error{Code: pe.Code, Field: "amount", Message: "your balance is not enough for this transfer", Err: err}
	case paygate.CodeAccountNotFound, paygate.CodeAccountClosed:
		return &paygate.Error{Code: paygate.CodeForbidden, Field: "to", Message: "the recipient's account cannot receive transfers", Err: err}
	}
	return err
}

func (s *Service) ownBIN(m customer.Masked) bool { return slices.Contains(s.cfg.OwnBINs, m.First6()) }

// maskLogin shows a customer's login masked: a phone as 138****0001, a
// username as its first two characters and ***.
func maskLogin(c customer.Customer) string {
	if c.Phone != "" {
		return customer.MaskPhone(c.Phone)
	}
	u := []rune(c.Username)
	if len(u) > 2 {
		u = u[:2]
	}
	return string(u) + "***"
}

// newRecord resolves the recipient and builds the transfer to record.
func (s *Service) newRecord(ctx context.Context, payer customer.Customer, p parsed) (Record, error) {
	now := s.clock.Now().UTC().Truncate(time.Microsecond)
	r := Record{Transfer: Transfer{ID: paygate.NewID(PrefixTransfer), CustomerID: payer.ID, RequestID: p.requestID,
		Sender: maskLogin(payer), SenderName: payer.NameMasked, Amount: p.amount, Memo: p.memo, Status: StatusSuccess,
		AccountingDate: s.cfg.Calendar.AccountingDate(now), CreatedAt: now, UpdatedAt: now, FinishedAt: now}}
	r.RequestHash = s.fingerprint(s.hashKeys[0], p)
	self := paygate.EField(paygate.CodeInvalidArgument, "to", "you cannot transfer to yourself")
	if p.to.phone != "" {
		rc, err := s.cus.CustomerByPhone(ctx, p.to.phone)
		if paygate.HasCode(err, paygate.CodeNotFound) {
			return Record{}, paygate.EField(paygate.CodeNotFound, "to", "no customer of this bank is registered with this mobile phone")
		}
		if err != nil {
			return Record{}, err
		}
		if rc.ID == payer.ID {
			return Record{}, self
		}
		if rc.Status != customer.StatusActive {
			return Record{}, paygate.EField(paygate.CodeForbidden, "to", "the recipient's account cannot receive transfers")
		}
		r.Kind, r.RecipientCustomerID, r.Recipient, r.RecipientName = KindCustomer, rc.ID, customer.MaskPhone(rc.Phone), rc.NameMasked
		return r, nil
	}
	masked := p.to.pan.Masked()
	r.Recipient = masked.String()
	card, err := s.cus.CardByNumber(ctx, p.to.pan.Digits())
	switch {
	case err == nil && card.Kind.OwnBank():
		if card.CustomerID == payer.ID {
			return Record{}, self
		}
		if card.Status != customer.StatusActive {
			return Record{}, paygate.EField(paygate.CodeForbidden, "to", "the recipient card cannot receive transfers: it is %s",
				strings.ToLower(string(card.Status)))
		}
		owner, err := s.cus.Customer(ctx, card.CustomerID)
		if err != nil {
			return Record{}, err
		}
		if owner.Status != customer.StatusActive {
			return Record{}, paygate.EField(paygate.CodeForbidden, "to", "the recipient card cannot receive transfers")
		}
		if card.Currency != p.amount.Currency {
			return Record{}, paygate.EField(paygate.CodeCurrencyMismatch, "to", "the recipient card is not in %s", p.amount.Currency)
		}
		r.Kind, r.RecipientCustomerID, r.RecipientCardID, r.RecipientName = KindOwnCard, owner.ID, card.ID, owner.NameMasked
		return r, nil
	case err == nil, paygate.HasCode(err, paygate.CodeNotFound) && !s.ownBIN(masked):
		// another bank's card, registered here for quick pay or not
	case paygate.HasCode(err, paygate.CodeNotFound):
		return Record{}, paygate.EField(paygate.CodeNotFound, "to", "this bank has no card with this number")
	default:
		return Record{}, err
	}
	if s.cfg.Payouts == nil {
		return Record{}, paygate.EField(paygate.CodeForbidden, "to", "transfers to other banks' cards are not available")
	}
	r.Kind, r.Status, r.FinishedAt, r.Channel = KindOtherBank, StatusProcessing, time.Time{}, s.cfg.Interbank
	r.Card = s.cfg.Keyring.Seal([]byte(p.to.pan.Digits()), panAAD(r.ID))
	r.NextQueryAt = now.Add(s.cfg.QueryInterval)
	if s.cfg.InterbankScenario != nil {
		r.Scenario = s.cfg.InterbankScenario(customer.Card{Number: masked, Kind: customer.KindOtherBank})
	}
	return r, nil
}

func panAAD(transferID string) []byte { return []byte("transfer:" + transferID + ":pan") }

// checkRecipientInTx checks again, inside the transaction, that the
// recipient (and the card) can receive: a freeze committed since the
// look-up refuses the transfer.
func (s *Service) checkRecipientInTx(ctx context.Context, tx Tx, r Record) error {
	if r.RecipientCustomerID != "" {
		c, err := tx.CustomerInTx(ctx, r.RecipientCustomerID)
		if err != nil {
			return err
		}
		if c.Status != customer.StatusActive {
			return paygate.EField(paygate.CodeForbidden, "to", "the recipient's account cannot receive transfers")
		}
	}
	if r.RecipientCardID != "" {
		c, err := tx.CardInTx(ctx, r.RecipientCardID)
		if err != nil {
			return err
		}
		if c.Status != customer.StatusActive {
			return paygate.EField(paygate.CodeForbidden, "to", "the recipient card cannot receive transfers: it is %s",
				strings.ToLower(string(c.Status)))
		}
	}
	return nil
}

// journal is the ledger transfer of r: a posting to a customer's balance
// account or own-bank card, or a hold towards the interbank channel.
func (s *Service) journal(r Record) ledger.Transfer {
	t := ledger.Transfer{ID: LedgerID(r.ID), DebitAccountID: s.cus.BalanceAccount(r.CustomerID), Amount: r.Amount.Amount,
		Currency: r.Amount.Currency, Code: LedgerCode, Ref: r.ID}
	switch r.Kind {
	case KindCustomer:
		t.CreditAccountID = s.cus.BalanceAccount(r.RecipientCustomerID)
	case KindOwnCard:
		t.CreditAccountID = ledger.CardAccount(r.RecipientCardID, r.RecipientCustomerID, r.Amount.Currency).ID
	case KindOtherBank:
		t.CreditAccountID = ledger.ChannelClearing(r.Channel, r.Amount.Currency).ID
		t.Flags, t.Code = ledger.Pending, LedgerCodeInterbank
	}
	return t
}

// ensureClearing creates the interbank clearing account once per currency.
func (s *Service) ensureClearing(ctx context.Context, cur paygate.Currency) error {
	if _, ok := s.clearing.Load(cur); ok {
		return nil
	}
	if _, err := s.books.CreateAccounts(ctx, []ledger.Account{ledger.ChannelClearing(s.cfg.Interbank, cur)}); err != nil {
		return fmt.Errorf("transfer: clearing account: %w", err)
	}
	s.clearing.Store(cur, true)
	return nil
}
