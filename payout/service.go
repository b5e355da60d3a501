package payout

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"slices"
	"strings"
	"sync"
	"time"
	"unicode"
	"unicode/utf8"

	"paygate"
	"paygate/customer"
	"paygate/ledger"
	"paygate/notify"
	"paygate/sealing"
	"paygate/transfer"
)

// Customers is what payouts use of customers; *customer.Service implements
// it.
type Customers interface {
	Limits() customer.Limits
	CustomerByPhone(ctx context.Context, phone string) (customer.Customer, error)
	Customer(ctx context.Context, id string) (customer.Customer, error)
	CardByNumber(ctx context.Context, number string) (customer.Card, error)
	BalanceAccount(customerID string) string
	NameMatches(ctx context.Context, customerID, name string) (bool, error)
}

var _ Customers = (*customer.Service)(nil)

// Books is what payouts use of the ledger; *ledger.Ledger implements it.
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
	// requests' fingerprints (a key derived for "payout-request").
	Keyring *sealing.Keyring
	Logger  *slog.Logger // nil: slog.Default()
	// OwnBINs are the issuer prefixes of the institution's own cards
	// (default customer.SandboxOwnBIN): a number under one of them that
	// no customer registered is RECIPIENT_NOT_FOUND; every other number
	// is another bank's card.
	OwnBINs []string
	// Payouts is the interbank channel other banks' cards are paid
	// through (transfer.Payouts; channel/sim's Payouts in the sandbox);
	// nil rejects other banks' cards (OTHER_BANK_UNAVAILABLE).
	Payouts transfer.Payouts
	// Interbank names that channel: its clearing account holds the money
	// until it answers. Default transfer.DefaultInterbank.
	Interbank string
	// InterbankScenario, when set, names the outcome a simulated interbank
	// channel gives a card (customer.SandboxInterbankOutcome in the
	// sandbox); real channels ignore it.
	InterbankScenario func(customer.Card) string
	// MaxItemAmount bounds one item's amount; default DefaultMaxItem.
	MaxItemAmount int64
	// QueryInterval is how long after submitting an item to the interbank
	// channel Reconcile first asks about it, doubling with each unanswered
	// question up to MaxQueryInterval. Defaults 2 s and 10 min.
	QueryInterval, MaxQueryInterval time.Duration
	// Kick, when set, is called after a batch is accepted, so that the
	// worker (Process) starts at once instead of at its next tick.
	Kick func()
}

// Service is the payout use case. It is safe for concurrent use.
type Service struct {
	cfg      Config
	store    Store
	cus      Customers
	books    Books
	clock    paygate.Clock
	log      *slog.Logger
	hashKeys [][]byte // the first computes fingerprints; all are accepted
	accounts sync.Map // ledger account id → created
}

// New returns a Service. Errors: CodeInvalidArgument for a missing
// dependency or a malformed setting.
func New(cfg Config) (*Service, error) {
	if cfg.Store == nil || cfg.Customers == nil || cfg.Books == nil || cfg.Clock == nil || cfg.Keyring == nil {
		return nil, paygate.E(paygate.CodeInvalidArgument, "payout: Store, Customers, Books, Clock and Keyring are required")
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if len(cfg.OwnBINs) == 0 {
		cfg.OwnBINs = []string{customer.SandboxOwnBIN}
	}
	for _, b := range cfg.OwnBINs {
		if len(b) != 6 || strings.Trim(b, "0123456789") != "" {
			return nil, paygate.E(paygate.CodeInvalidArgument, "payout: an issuer prefix has 6 digits")
		}
	}
	if cfg.Interbank == "" {
		cfg.Interbank = transfer.DefaultInterbank
	}
	if cfg.MaxItemAmount <= 0 {
		cfg.MaxItemAmount = DefaultMaxItem
	}
	if cfg.QueryInterval <= 0 {
		cfg.QueryInterval = 2 * time.Second
	}
	if cfg.MaxQueryInterval < cfg.QueryInterval {
		cfg.MaxQueryInterval = max(10*time.Minute, cfg.QueryInterval)
	}
	if cfg.Kick == nil {
		cfg.Kick = func() {}
	}
	return &Service{cfg: cfg, store: cfg.Store, cus: cfg.Customers, books: cfg.Books, clock: cfg.Clock, log: cfg.Logger,
		hashKeys: cfg.Keyring.DeriveKeys("payout-request")}, nil
}

// Clearing is the payout clearing account in a currency: an item to a
// recipient on us is posted from the merchant into it and credited from it
// to the recipient in one journal, so it nets to zero. It is sharded
// because every payout touches it.
func Clearing(cur paygate.Currency) ledger.Account {
	return ledger.Account{ID: "payout:clearing:" + string(cur), Currency: cur, Code: CodeClearing, Owner: "platform",
		Normal: ledger.Debit, Shards: ledger.HotShards}
}

// checkOutNo: 1 to 64 of A-Z a-z 0-9 _ -.
func checkOutNo(field, s string) error {
	if s == "" || len(s) > MaxOutNoLen {
		return paygate.EField(paygate.CodeInvalidArgument, field, "%s must be 1 to %d characters", field, MaxOutNoLen)
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_' || c == '-') {
			return paygate.EField(paygate.CodeInvalidArgument, field, "%s may contain only letters, digits, '_' and '-'", field)
		}
	}
	return nil
}

// checkText validates a remark: UTF-8 without control characters, at
// most max characters.
func checkText(field, s string, max int) error {
	if !utf8.ValidString(s) || strings.IndexFunc(s, unicode.IsControl) >= 0 {
		return paygate.EField(paygate.CodeInvalidArgument, field, "%s contains characters that are not allowed", field)
	}
	if utf8.RuneCountInString(s) > max {
		return paygate.EField(paygate.CodeInvalidArgument, field, "%s has at most %d characters", field, max)
	}
	return nil
}

// validName: 1 to MaxNameLen letters, marks, spaces, '·', '.', '-', '\”.
func validName(s string) bool {
	if s == "" || !utf8.ValidString(s) || utf8.RuneCountInString(s) > MaxNameLen {
		return false
	}
	for _, r := range s {
		if !(unicode.IsLetter(r) || unicode.IsMark(r) || r == ' ' || r == '·' || r == '.' || r == '-' || r == '\'') {
			return false
		}
	}
	return true
}

// checkRequest validates what makes the whole request unusable; a line's
// business faults (amount, recipient) are left to the line.
func (s *Service) checkRequest(m paygate.Merchant, req *CreateBatchRequest) error {
	if err := checkOutNo("out_batch_no", req.OutBatchNo); err != nil {
		return err
	}
	if req.Currency == "" {
		req.Currency = "CNY"
	}
	if _, err := paygate.ParseCurrency(string(req.Currency)); err != nil {
		return paygate.EField(paygate.CodeUnknownCurrency, "currency", "unknown currency %q", string(req.Currency))
	}
	req.Remark = strings.TrimSpace(req.Remark)
	if err := checkText("remark", req.Remark, MaxRemarkLen); err != nil {
		return err
	}
	if req.NotifyURL != "" {
		if err := notify.ValidateURL(req.NotifyURL, m.Sandbox()); err != nil {
			return err
		}
		if u, err := url.Parse(req.NotifyURL); err != nil || !m.NotifyHostAllowed(u.Hostname()) {
			return paygate.EField(paygate.CodeInvalidArgument, "notify_url", "notify_url's host is not among the merchant's allowed notify hosts")
		}
	}
	if len(req.Items) == 0 || len(req.Items) > MaxItems {
		return paygate.EField(paygate.CodeInvalidArgument, "items", "a batch has 1 to %d items", MaxItems)
	}
	for i := range req.Items {
		it := &req.Items[i]
		f := fmt.Sprintf("items[%d].", i)
		if err := checkOutNo(f+"out_detail_no", it.OutDetailNo); err != nil {
			return err
		}
		it.Remark = strings.TrimSpace(it.Remark)
		if err := checkText(f+"remark", it.Remark, MaxRemarkLen); err != nil {
			return err
		}
		if it.Recipient.Type != RecipientAccount && it.Recipient.Type != RecipientCard {
			return paygate.EField(paygate.CodeInvalidArgument, f+"recipient.type", "recipient.type must be ACCOUNT or CARD")
		}
		if len(it.Recipient.Account) > 64 || len(it.Recipient.CardNumber) > 64 || len(it.Recipient.Name) > 4*MaxNameLen {
			return paygate.EField(paygate.CodeInvalidArgument, f+"recipient", "a recipient's fields are at most 64 characters")
		}
		it.Recipient.Name = strings.TrimSpace(it.Recipient.Name)
	}
	return nil
}

// fingerprint is the HMAC of what makes two requests the same batch.
func fingerprint(key []byte, req CreateBatchRequest) string {
	b, _ := json.Marshal(req)
	m := hmac.New(sha256.New, key)
	m.Write([]byte("v1\x00"))
	m.Write(b)
	return hex.EncodeToString(m.Sum(nil))
}

func (s *Service) sameRequest(b Batch, req CreateBatchRequest) bool {
	for _, k := range s.hashKeys {
		if sealing.Equal(b.RequestHash, fingerprint(k, req)) {
			return true
		}
	}
	return false
}

// Submit accepts a batch and returns it with the first page of its items
// (each accepted line PENDING, each bad line REJECTED with its reason),
// and whether it is the replay of a batch accepted before. The worker
// (Process) then pays the items.
//
// The request is refused as a whole, recording nothing, when its form is
// bad: CodeInvalidArgument (out_batch_no, remark, notify_url, 0 or more
// than MaxItems items, a malformed out_detail_no, remark or recipient
// type, naming the field as items[i].field), CodeUnknownCurrency; when
// out_batch_no was used for another body: CodeOutBatchNoUsed; when the
// merchant's available balance is short of the accepted items' total:
// CodeInsufficientFunds. The same out_batch_no with the same body returns
// the first batch (replay true).
func (s *Service) Submit(ctx context.Context, m paygate.Merchant, req CreateBatchRequest) (BatchPage, bool, error) {
	req.Items = slices.Clone(req.Items)
	if err := s.checkRequest(m, &req); err != nil {
		return BatchPage{}, false, err
	}
	if p, found, err := s.replay(ctx, m.ID, req); found || err != nil {
		return p, found, err
	}
	now := s.clock.Now().UTC().Truncate(time.Microsecond)
	b := Batch{ID: paygate.NewID(PrefixBatch), MerchantID: m.ID, OutBatchNo: req.OutBatchNo, Currency: req.Currency,
		Remark: req.Remark, Status: BatchProcessing, TotalCount: len(req.Items), CreateTime: now, UpdateTime: now,
		NotifyURL: req.NotifyURL, Sandbox: m.Sandbox(), RequestHash: fingerprint(s.hashKeys[0], req)}
	lines, err := s.resolve(ctx, b, req.Items)
	if err != nil {
		return BatchPage{}, false, err
	}
	if err := s.ensureAccounts(ctx, m.ID, req.Currency); err != nil {
		return BatchPage{}, false, err
	}
	errTaken := errors.New("payout: out_batch_no taken")
	var out Batch
	var items []Item
	err = s.store.InTx(ctx, func(tx Tx) error {
		out, items = b, slices.Clone(lines) // a retried transaction starts again from the resolved lines
		var nos []string
		for _, it := range items {
			if it.Status == StatusPending {
				nos = append(nos, it.OutDetailNo)
			}
		}
		used := map[string]bool{}
		if len(nos) > 0 {
			got, err := tx.UsedDetailNos(ctx, m.ID, nos)
			if err != nil {
				return err
			}
			for _, n := range got {
				used[n] = true
			}
		}
		var holds []ledger.Transfer
		for i := range items {
			it := &items[i]
			if it.Status == StatusPending && used[it.OutDetailNo] {
				it.Status, it.FailReason, it.FinishTime = StatusRejected, ReasonDetailNoUsed, now
			}
			if it.Status != StatusPending {
				out.RejectedCount++
				continue
			}
			out.AcceptedCount++
			out.AcceptedAmount += it.Amount // at most MaxItems × MaxItemAmount: no overflow
			holds = append(holds, s.hold(*it))
		}
		if out.AcceptedCount == 0 {
			out.Status, out.FinishTime = BatchFinished, now
		}
		ok, err := tx.InsertBatch(ctx, out)
		if err != nil {
			return err
		}
		if !ok {
			return errTaken
		}
		if err := tx.InsertItems(ctx, items); err != nil {
			return err
		}
		if err := s.apply(ctx, tx, holds); err != nil {
			return err
		}
		if out.Status == BatchFinished {
			return s.finishedEvent(ctx, tx, out)
		}
		return nil
	})
	if errors.Is(err, errTaken) { // the same out_batch_no, committed concurrently
		p, found, err := s.replay(ctx, m.ID, req)
		if err == nil && !found {
			err = paygate.Internal(errors.New("payout: out_batch_no taken, batch not found"))
		}
		return p, found, err
	}
	if paygate.HasCode(err, paygate.CodeInsufficientFunds) {
		return BatchPage{}, false, &paygate.Error{Code: paygate.CodeInsufficientFunds, Field: "items",
			Message: fmt.Sprintf("the available balance cannot pay the batch's accepted total of %d", out.AcceptedAmount), Err: err}
	}
	if err != nil {
		return BatchPage{}, false, err
	}
	s.log.InfoContext(ctx, "payout batch accepted", "batch", out.ID, "merchant", m.ID, "items", out.TotalCount,
		"accepted", out.AcceptedCount, "amount", out.AcceptedAmount)
	if out.AcceptedCount > 0 {
		s.cfg.Kick()
	}
	return s.page(out, items, 0, DefaultPage), false, nil
}

// page is a batch with the items of its page after seq after.
func (s *Service) page(b Batch, items []Item, after, limit int) BatchPage {
	p := BatchPage{Batch: b, Items: []Item{}}
	for _, it := range items {
		if it.Seq <= after {
			continue
		}
		if len(p.Items) == limit {
			p.NextCursor = cursorOf(p.Items[limit-1].Seq)
			break
		}
		p.Items = append(p.Items, it)
	}
	return p
}

// replay finds the merchant's batch with the request's out_batch_no: found
// and returned with its first page when it is the same request,
// CodeOutBatchNoUsed when not.
func (s *Service) replay(ctx context.Context, merchantID string, req CreateBatchRequest) (BatchPage, bool, error) {
	b, err := s.store.BatchByOutBatchNo(ctx, merchantID, req.OutBatchNo)
	switch {
	case paygate.HasCode(err, paygate.CodeNotFound):
		return BatchPage{}, false, nil
	case err != nil:
		return BatchPage{}, false, err
	case !s.sameRequest(b, req):
		return BatchPage{}, true, paygate.EField(paygate.CodeOutBatchNoUsed, "out_batch_no",
			"out_batch_no %s was used for a batch with other contents", req.OutBatchNo)
	}
	p, err := s.batchPage(ctx, b, "", DefaultPage)
	return p, true, err
}

// ensureAccounts creates, once per process, the ledger accounts a batch
// may touch (before the transaction: the embedded store has one writer).
func (s *Service) ensureAccounts(ctx context.Context, mch string, cur paygate.Currency) error {
	as := []ledger.Account{ledger.MerchantSettled(mch, cur), Clearing(cur), ledger.ChannelClearing(s.cfg.Interbank, cur)}
	var missing []ledger.Account
	for _, a := range as {
		if _, ok := s.accounts.Load(a.ID); !ok {
			missing = append(missing, a)
		}
	}
	if len(missing) == 0 {
		return nil
	}
	if _, err := s.books.CreateAccounts(ctx, missing); err != nil {
		return fmt.Errorf("payout: ledger accounts: %w", err)
	}
	for _, a := range missing {
		s.accounts.Store(a.ID, true)
	}
	return nil
}

// journalChunk bounds the transfers of one ledger.Apply call: a statement
// with thousands of parameters costs the embedded SQLite time quadratic in
// their number to prepare, so a long journal goes in several calls inside
// the same transaction — they commit or roll back together all the same.
const journalChunk = 50

// apply applies ts inside tx, journalChunk transfers per call.
func (s *Service) apply(ctx context.Context, tx Tx, ts []ledger.Transfer) error {
	for len(ts) > 0 {
		n := min(len(ts), journalChunk)
		if _, err := s.books.Apply(ctx, tx, ts[:n]); err != nil {
			return err
		}
		ts = ts[n:]
	}
	return nil
}

// hold is the ledger hold of an accepted item: the merchant's available
// balance → the payout clearing account (recipients on us) or the
// interbank channel's clearing account (other banks' cards). It never
// expires: only the item's outcome resolves it.
func (s *Service) hold(it Item) ledger.Transfer {
	credit := Clearing(it.Currency).ID
	if it.Recipient.Kind == KindOtherBank {
		credit = ledger.ChannelClearing(s.cfg.Interbank, it.Currency).ID
	}
	return ledger.Transfer{ID: HoldID(it.ID), DebitAccountID: ledger.MerchantSettled(it.MerchantID, it.Currency).ID,
		CreditAccountID: credit, Amount: it.Amount, Currency: it.Currency, Flags: ledger.Pending, Code: LedgerCodeHold, Ref: it.ID}
}

// lookup caches a recipient's look-up within one batch: many lines often
// pay the same recipient.
type lookup struct {
	cus  customer.Customer
	card customer.Card
	err  error
}

// resolve turns the request's lines into items: each PENDING with its
// recipient resolved, or REJECTED with a reason. Only a fault of the
// look-ups themselves (the database) fails the whole request.
func (s *Service) resolve(ctx context.Context, b Batch, reqs []ItemRequest) ([]Item, error) {
	items := make([]Item, len(reqs))
	seen := make(map[string]bool, len(reqs))
	phones, cards, names := map[string]lookup{}, map[string]lookup{}, map[[2]string]string{}
	for i, r := range reqs {
		it := Item{ID: paygate.NewID(PrefixDetail), BatchID: b.ID, OutBatchNo: b.OutBatchNo, Seq: i + 1, OutDetailNo: r.OutDetailNo,
			Amount: r.Amount, Currency: b.Currency, Recipient: Recipient{Type: r.Recipient.Type}, Remark: r.Remark,
			Status: StatusPending, CreateTime: b.CreateTime, UpdateTime: b.CreateTime, MerchantID: b.MerchantID}
		reason, err := s.resolveLine(ctx, &it, r, phones, cards, names)
		if err != nil {
			return nil, err
		}
		if reason == "" && seen[r.OutDetailNo] {
			reason = ReasonDetailNoRepeated
		}
		if reason != "" {
			it.Status, it.FailReason, it.FinishTime = StatusRejected, reason, b.CreateTime
			it.RecipientCustomerID, it.RecipientCardID, it.Card, it.Scenario = "", "", sealing.Sealed{}, ""
			it.Recipient.Kind, it.Channel = "", ""
		} else {
			seen[r.OutDetailNo] = true
		}
		items[i] = it
	}
	return items, nil
}

// checkName compares a line's holder name with the recipient's whole
// verified name: "" when it matches, else the line's rejection reason.
// seen keeps the answers of the batch's earlier lines (a batch often pays
// the same people many times).
func (s *Service) checkName(ctx context.Context, customerID, name string, seen map[[2]string]string) (string, error) {
	k := [2]string{customerID, name}
	if reason, ok := seen[k]; ok {
		return reason, nil
	}
	ok, err := s.cus.NameMatches(ctx, customerID, name)
	reason := ""
	switch {
	case paygate.HasCode(err, paygate.CodeInvalidArgument):
		reason = ReasonInvalidName
	case err != nil:
		return "", err
	case !ok:
		reason = ReasonNameMismatch
	}
	seen[k] = reason
	return reason, nil
}

// resolveLine checks one line and fills in its recipient; it returns the
// reason the line is rejected, or "".
func (s *Service) resolveLine(ctx context.Context, it *Item, r ItemRequest, phones, cards map[string]lookup, names map[[2]string]string) (string, error) {
	switch {
	case r.Amount <= 0:
		return ReasonAmountNotPositive, nil
	case r.Amount > s.cfg.MaxItemAmount:
		return ReasonAmountTooLarge, nil
	}
	if r.Recipient.Type == RecipientAccount {
		phone, err := customer.ParsePhone(r.Recipient.Account)
		if err != nil {
			return ReasonInvalidAccount, nil
		}
		it.Recipient.Masked = customer.MaskPhone(phone)
		if r.Recipient.Name != "" && !validName(r.Recipient.Name) {
			return ReasonInvalidName, nil
		}
		l, ok := phones[phone]
		if !ok {
			l.cus, l.err = s.cus.CustomerByPhone(ctx, phone)
			phones[phone] = l
		}
		switch {
		case paygate.HasCode(l.err, paygate.CodeNotFound):
			return ReasonRecipientNotFound, nil
		case l.err != nil:
			return "", l.err
		}
		it.Recipient.Name = l.cus.NameMasked
		switch {
		case l.cus.Status != customer.StatusActive:
			return ReasonRecipientInactive, nil
		case r.Recipient.Name != "":
			if reason, err := s.checkName(ctx, l.cus.ID, r.Recipient.Name, names); reason != "" || err != nil {
				return reason, err
			}
		}
		switch {
		case it.Currency != s.cus.Limits().Currency:
			return ReasonCurrencyMismatch, nil
		}
		it.Recipient.Kind, it.RecipientCustomerID = KindAccount, l.cus.ID
		return "", nil
	}
	pan, err := customer.ParsePAN(r.Recipient.CardNumber)
	if err != nil {
		return ReasonInvalidCardNumber, nil
	}
	masked := pan.Masked()
	it.Recipient.Masked = masked.String()
	switch {
	case r.Recipient.Name == "":
		return ReasonNameRequired, nil
	case !validName(r.Recipient.Name):
		return ReasonInvalidName, nil
	}
	l, ok := cards[pan.Digits()]
	if !ok {
		l.card, l.err = s.cus.CardByNumber(ctx, pan.Digits())
		if l.err == nil && l.card.Kind.OwnBank() {
			l.cus, l.err = s.cus.Customer(ctx, l.card.CustomerID)
		}
		cards[pan.Digits()] = l
	}
	switch {
	case l.err == nil && l.card.Kind.OwnBank():
		it.Recipient.Name = l.cus.NameMasked
		if l.card.Status != customer.StatusActive || l.cus.Status != customer.StatusActive {
			return ReasonRecipientInactive, nil
		}
		// The whole verified name, not its mask: the mask keeps only the
		// last character, which many people share.
		if reason, err := s.checkName(ctx, l.cus.ID, r.Recipient.Name, names); reason != "" || err != nil {
			return reason, err
		}
		switch {
		case l.card.Currency != it.Currency:
			return ReasonCurrencyMismatch, nil
		}
		it.Recipient.Kind, it.RecipientCustomerID, it.RecipientCardID = KindOwnCard, l.cus.ID, l.card.ID
		return "", nil
	case l.err == nil, paygate.HasCode(l.err, paygate.CodeNotFound) && !slices.Contains(s.cfg.OwnBINs, masked.First6()):
		// another bank's card, registered here for quick pay or not
	case paygate.HasCode(l.err, paygate.CodeNotFound):
		return ReasonRecipientNotFound, nil
	default:
		return "", l.err
	}
	it.Recipient.Name = customer.MaskName(r.Recipient.Name)
	if s.cfg.Payouts == nil {
		return ReasonOtherBankDisabled, nil
	}
	it.Recipient.Kind, it.Channel = KindOtherBank, s.cfg.Interbank
	it.Card = s.cfg.Keyring.Seal([]byte(pan.Digits()), panAAD(it.ID))
	if s.cfg.InterbankScenario != nil {
		it.Scenario = s.cfg.InterbankScenario(customer.Card{Number: masked, Kind: customer.KindOtherBank})
	}
	return "", nil
}

func panAAD(itemID string) []byte { return []byte("payout:" + itemID + ":pan") }

// finishedEvent queues PAYOUT_BATCH.FINISHED for b inside tx, when the
// merchant gave a notify_url.
func (s *Service) finishedEvent(ctx context.Context, tx Tx, b Batch) error {
	if b.NotifyURL == "" {
		return nil
	}
	payload, err := json.Marshal(b)
	if err != nil {
		return paygate.Internal(err)
	}
	return notify.Enqueue(ctx, tx, s.clock, notify.Event{MerchantID: b.MerchantID, EventType: EventBatchFinished,
		OriginalType: BatchOriginalType, Summary: "Payout batch finished", URL: b.NotifyURL, Sandbox: b.Sandbox, Payload: payload})
}
