package agreement

import (
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"strings"
	"time"
	"unicode/utf8"

	"paygate"
	"paygate/channel"
	"paygate/customer"
	"paygate/notify"
	"paygate/otp"
	"paygate/payment"
)

// Payments is what agreements need of orders; *payment.Service implements
// it.
type Payments interface {
	CreateAndPay(ctx context.Context, merchantID string, req payment.CreateRequest, p payment.Payer, src payment.Source, authorize payment.Authorize) (payment.Order, payment.Attempt, bool, error)
}

// Customers is what agreements need of customers and cards;
// *customer.Service implements it.
type Customers interface {
	Limits() customer.Limits
	CardByNumber(ctx context.Context, number string) (customer.Card, error)
	CardByID(ctx context.Context, cardID string) (customer.Card, error)
	VerifyHolder(ctx context.Context, cardID string, h customer.Holder) error
	HolderPhone(ctx context.Context, cardID string) (string, error)
	Reserve(ctx context.Context, tx customer.Tx, customerID, cardID string, method customer.Method, amount int64, day paygate.Date) (customer.Reservation, error)
}

// Codes is what signing needs of one-time codes; *otp.Service implements
// it.
type Codes interface {
	Issue(ctx context.Context, purpose, subject, phone string) (otp.Issued, error)
	Check(ctx context.Context, purpose, subject, input string) (otp.Proof, error)
	ConsumeTx(ctx context.Context, tx otp.Tx, purpose, subject string, p otp.Proof) error
}

// Merchants supplies merchants; *merchant.Service implements it.
type Merchants interface {
	Merchant(ctx context.Context, id string) (paygate.Merchant, error)
}

// Config configures a Service. Store, Payments, Customers, Codes,
// Merchants and Clock are required.
type Config struct {
	Store     Store
	Payments  Payments
	Customers Customers
	Codes     Codes
	Merchants Merchants
	Clock     paygate.Clock
	// Calendar dates the per-day limit and end dates (default
	// paygate.DefaultCalendar()).
	Calendar paygate.Calendar
	// SignBaseURL + id is an agreement's sign_url ("" shows none).
	SignBaseURL string
	// SignExpire is how long a PENDING agreement may be signed
	// (DefaultSignExpire).
	SignExpire time.Duration
	// MaxAmount bounds limits and charges (payment.DefaultMaxAmount).
	MaxAmount int64
	// Interbank names the channel other banks' cards are charged through
	// ("" refuses other banks' cards).
	Interbank string
	// InterbankScenario names a simulated switch's outcome for a card
	// (customer.SandboxInterbankOutcome in the sandbox).
	InterbankScenario func(customer.Card) string
	// Kick wakes the notification worker after a commit that queued one.
	Kick   func()
	Logger *slog.Logger
}

// Service is the agreements use case. It is safe for concurrent use.
type Service struct {
	cfg   Config
	store Store
	pay   Payments
	cus   Customers
	codes Codes
	mchs  Merchants
	clock paygate.Clock
	cal   paygate.Calendar
	log   *slog.Logger
}

// New returns a Service. Errors: CodeInvalidArgument for a missing
// dependency.
func New(cfg Config) (*Service, error) {
	if cfg.Store == nil || cfg.Payments == nil || cfg.Customers == nil || cfg.Codes == nil || cfg.Merchants == nil || cfg.Clock == nil {
		return nil, paygate.E(paygate.CodeInvalidArgument, "agreement: Store, Payments, Customers, Codes, Merchants and Clock are required")
	}
	if cfg.Calendar.Location == nil {
		cfg.Calendar = paygate.DefaultCalendar()
	}
	if cfg.SignExpire <= 0 {
		cfg.SignExpire = DefaultSignExpire
	}
	if cfg.MaxAmount <= 0 {
		cfg.MaxAmount = payment.DefaultMaxAmount
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	return &Service{cfg: cfg, store: cfg.Store, pay: cfg.Payments, cus: cfg.Customers, codes: cfg.Codes, mchs: cfg.Merchants,
		clock: cfg.Clock, cal: cfg.Calendar, log: cfg.Logger}, nil
}

func (s *Service) now() time.Time { return s.clock.Now().UTC().Truncate(time.Microsecond) }

func (s *Service) kick() {
	if s.cfg.Kick != nil {
		s.cfg.Kick()
	}
}

func notFound() error { return paygate.E(paygate.CodeNotFound, "agreement not found") }

// view fills what the API shows but the store does not keep: the sign URL
// while signable, and the effective status.
func (s *Service) view(a Agreement) Agreement {
	now := s.clock.Now()
	a.Status = a.effective(now)
	a.SignURL = ""
	if a.Status == StatusPending && s.cfg.SignBaseURL != "" {
		a.SignURL = s.cfg.SignBaseURL + a.ID
	}
	return a
}

// merchant returns a merchant that may transact. Errors: CodeNotFound,
// CodeForbidden.
func (s *Service) merchant(ctx context.Context, id string) (paygate.Merchant, error) {
	m, err := s.mchs.Merchant(ctx, id)
	if err != nil {
		return paygate.Merchant{}, err
	}
	if !m.Status.CanTransact() {
		return paygate.Merchant{}, paygate.E(paygate.CodeForbidden, "the merchant may not transact in status %s", m.Status)
	}
	return m, nil
}

// Create creates a PENDING agreement for the merchant, to be signed by a
// customer at its sign_url within the sign window, or returns the
// agreement the merchant already created with the same out_agreement_no
// and the same request (replay true). Concurrent identical requests
// create one.
//
// Errors (nothing is created): CodeForbidden / CodeNotFound (merchant);
// CodeInvalidArgument naming the field (out_agreement_no, plan,
// description, end_date, notify_url, return_url, or limits where the
// per-payment limit exceeds the daily one); CodeAmountNotPositive (a
// negative limit); CodeLimitExceeded (a limit over the maximum amount);
// CodeUnknownCurrency; CodeCurrencyMismatch (cards are charged in the
// customers' currency only); CodeIDConflict naming the first differing
// field when the out_agreement_no was used with a different request.
func (s *Service) Create(ctx context.Context, merchantID string, req Request) (Agreement, bool, error) {
	m, err := s.merchant(ctx, merchantID)
	if err != nil {
		return Agreement{}, false, err
	}
	now := s.now()
	a, err := s.newAgreement(m, req, now)
	if err != nil {
		return Agreement{}, false, err
	}
	var out Agreement
	replay := false
	err = s.store.InTx(ctx, func(tx SignTx) error {
		replay = false
		ok, err := tx.InsertMerchantAgreement(ctx, a)
		if err != nil {
			return err
		}
		if ok {
			out = a
			return nil
		}
		prev, err := tx.MerchantAgreementByNoInTx(ctx, m.ID, a.OutAgreementNo)
		if err != nil {
			if paygate.HasCode(err, paygate.CodeNotFound) {
				return fmt.Errorf("agreement: vanished: %w", paygate.ErrRetry)
			}
			return err
		}
		if prev.RequestHash != a.RequestHash {
			f := diffField(prev, a)
			return paygate.EField(paygate.CodeIDConflict, f, "out_agreement_no %q was already used with a different %s", a.OutAgreementNo, f)
		}
		out, replay = prev, true
		return nil
	})
	if err != nil {
		return Agreement{}, false, err
	}
	return s.view(out), replay, nil
}

// newAgreement validates req and builds the agreement it creates.
func (s *Service) newAgreement(m paygate.Merchant, req Request, now time.Time) (Agreement, error) {
	if err := checkNo("out_agreement_no", req.OutAgreementNo); err != nil {
		return Agreement{}, err
	}
	if err := checkText("plan", req.Plan, 1, MaxPlan); err != nil {
		return Agreement{}, err
	}
	if req.Description != "" {
		if err := checkText("description", req.Description, 1, MaxDescription); err != nil {
			return Agreement{}, err
		}
	}
	cur := req.Currency
	if cur == "" {
		cur = "CNY"
	}
	if _, err := paygate.ParseCurrency(string(cur)); err != nil {
		return Agreement{}, paygate.EField(paygate.CodeUnknownCurrency, "currency", "unknown currency %q", string(cur))
	}
	if want := s.cus.Limits().Currency; cur != want {
		return Agreement{}, paygate.EField(paygate.CodeCurrencyMismatch, "currency", "agreements charge cards in %s only", want)
	}
	for _, l := range []struct {
		field string
		v     int64
	}{{"per_payment_limit", req.PerPaymentLimit}, {"daily_limit", req.DailyLimit}} {
		if l.v != 0 {
			if err := paygate.CheckAmount(l.field, l.v, s.cfg.MaxAmount); err != nil {
				return Agreement{}, err
			}
		}
	}
	if req.PerPaymentLimit > 0 && req.DailyLimit > 0 && req.PerPaymentLimit > req.DailyLimit {
		return Agreement{}, paygate.EField(paygate.CodeInvalidArgument, "per_payment_limit", "per_payment_limit must not exceed daily_limit")
	}
	var endDate paygate.Date
	var endsAt time.Time
	if req.EndDate != "" {
		d, err := time.ParseInLocation(time.DateOnly, req.EndDate, s.cal.Location)
		if err != nil || d.Format(time.DateOnly) != req.EndDate {
			return Agreement{}, paygate.EField(paygate.CodeInvalidArgument, "end_date", "end_date must be a date YYYY-MM-DD")
		}
		endsAt = d.AddDate(0, 0, 1).Add(s.cal.Cutoff).UTC()
		if !endsAt.After(now) {
			return Agreement{}, paygate.EField(paygate.CodeInvalidArgument, "end_date", "end_date must be today or later")
		}
		if endsAt.After(now.Add(MaxTerm)) {
			return Agreement{}, paygate.EField(paygate.CodeInvalidArgument, "end_date", "end_date must be within ten years")
		}
		endDate = paygate.Date(req.EndDate)
	}
	if err := notify.ValidateURL(req.NotifyURL, m.Sandbox()); err != nil {
		return Agreement{}, err
	}
	if u, err := url.Parse(req.NotifyURL); err != nil || !m.NotifyHostAllowed(u.Hostname()) {
		return Agreement{}, paygate.EField(paygate.CodeInvalidArgument, "notify_url", "notify_url's host is not among the merchant's allowed notify hosts")
	}
	if req.ReturnURL != "" {
		if len(req.ReturnURL) > MaxURL || notify.ValidateURL(req.ReturnURL, true) != nil {
			return Agreement{}, paygate.EField(paygate.CodeInvalidArgument, "return_url", "return_url must be an absolute http or https URL of at most %d bytes", MaxURL)
		}
	}
	// The sign window closes with the end date at the latest: an agreement
	// signed after its end could never be charged.
	signBy := now.Add(s.cfg.SignExpire)
	if !endsAt.IsZero() && endsAt.Before(signBy) {
		signBy = endsAt
	}
	a := Agreement{ID: paygate.NewID(PrefixAgreement), MerchantID: m.ID, OutAgreementNo: req.OutAgreementNo, Plan: req.Plan,
		Description: req.Description, Currency: cur, PerPaymentLimit: req.PerPaymentLimit, DailyLimit: req.DailyLimit,
		EndDate: endDate, EndsAt: endsAt, NotifyURL: req.NotifyURL, ReturnURL: req.ReturnURL, Status: StatusPending,
		SignExpireTime: signBy, Sandbox: m.Sandbox(), CreateTime: now, UpdateTime: now}
	b, _ := json.Marshal([]any{a.OutAgreementNo, a.Plan, a.Description, a.Currency, a.PerPaymentLimit, a.DailyLimit, a.EndDate,
		a.NotifyURL, a.ReturnURL})
	sum := sha256.Sum256(b)
	a.RequestHash = hex.EncodeToString(sum[:])
	return a, nil
}

// diffField names the first field in which a repeated request differs.
func diffField(prev, a Agreement) string {
	switch {
	case prev.Plan != a.Plan:
		return "plan"
	case prev.Description != a.Description:
		return "description"
	case prev.Currency != a.Currency:
		return "currency"
	case prev.PerPaymentLimit != a.PerPaymentLimit:
		return "per_payment_limit"
	case prev.DailyLimit != a.DailyLimit:
		return "daily_limit"
	case prev.EndDate != a.EndDate:
		return "end_date"
	case prev.NotifyURL != a.NotifyURL:
		return "notify_url"
	}
	return "return_url"
}

// checkNo checks a merchant number: 6 to 32 letters, digits and _-|*.
func checkNo(field, s string) error {
	if len(s) < MinOutAgreementNo || len(s) > MaxOutAgreementNo {
		return paygate.EField(paygate.CodeInvalidArgument, field, "%s must be %d to %d characters", field, MinOutAgreementNo, MaxOutAgreementNo)
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_' || c == '-' || c == '|' || c == '*') {
			return paygate.EField(paygate.CodeInvalidArgument, field, "%s may contain only letters, digits and _-|*", field)
		}
	}
	return nil
}

// checkText checks a free-text field: valid UTF-8 without control
// characters, min to max characters, not only spaces.
func checkText(field, s string, min, max int) error {
	n := utf8.RuneCountInString(s)
	if !utf8.ValidString(s) || n < min || n > max || strings.TrimSpace(s) == "" {
		return paygate.EField(paygate.CodeInvalidArgument, field, "%s must be %d to %d characters of text", field, min, max)
	}
	for _, r := range s {
		if r < ' ' || r == 0x7f || (r >= 0x80 && r < 0xa0) || r == '\u2028' || r == '\u2029' {
			return paygate.EField(paygate.CodeInvalidArgument, field, "%s must not contain control characters", field)
		}
	}
	return nil
}

// validID reports whether id can be an agreement id (before any look-up).
func validID(id string) bool {
	return len(id) <= maxIDLen && len(id) > len(PrefixAgreement) && strings.HasPrefix(id, PrefixAgreement)
}

// Get returns the merchant's agreement with the id. Errors: CodeNotFound
// (another merchant's included).
func (s *Service) Get(ctx context.Context, merchantID, id string) (Agreement, error) {
	if !validID(id) {
		return Agreement{}, notFound()
	}
	a, err := s.store.MerchantAgreement(ctx, id)
	if err != nil {
		return Agreement{}, err
	}
	if a.MerchantID != merchantID {
		return Agreement{}, notFound()
	}
	return s.view(a), nil
}

// GetByOutAgreementNo returns the merchant's agreement with the
// out_agreement_no. Errors: CodeNotFound.
func (s *Service) GetByOutAgreementNo(ctx context.Context, merchantID, no string) (Agreement, error) {
	if checkNo("out_agreement_no", no) != nil {
		return Agreement{}, notFound()
	}
	a, err := s.store.MerchantAgreementByNo(ctx, merchantID, no)
	if err != nil {
		return Agreement{}, err
	}
	return s.view(a), nil
}

// List returns one page of the merchant's agreements, newest first.
// Errors: CodeInvalidArgument for a bad status, cursor or limit.
func (s *Service) List(ctx context.Context, merchantID string, req ListRequest) (Listing, error) {
	limit := req.Limit
	if limit == 0 {
		limit = DefaultPage
	}
	if limit < 0 || limit > MaxPage {
		return Listing{}, paygate.EField(paygate.CodeInvalidArgument, "limit", "limit must be between 1 and %d", MaxPage)
	}
	if req.Status != "" && !req.Status.Valid() {
		return Listing{}, paygate.EField(paygate.CodeInvalidArgument, "status", "unknown status %q", string(req.Status))
	}
	before := ""
	if req.Cursor != "" {
		b, err := base64.RawURLEncoding.DecodeString(req.Cursor)
		if err != nil || !validID(string(b)) {
			return Listing{}, paygate.EField(paygate.CodeInvalidArgument, "cursor", "invalid cursor")
		}
		before = string(b)
	}
	as, err := s.store.MerchantAgreements(ctx, merchantID, req.Status, before, limit+1)
	if err != nil {
		return Listing{}, err
	}
	p := Listing{Agreements: make([]Agreement, 0, min(len(as), limit))}
	for i, a := range as {
		if i == limit {
			p.NextCursor = base64.RawURLEncoding.EncodeToString([]byte(as[limit-1].ID))
			break
		}
		p.Agreements = append(p.Agreements, s.view(a))
	}
	return p, nil
}

// Revoke revokes the merchant's agreement: a PENDING one can no longer be
// signed, a SIGNED one no longer charged (AGREEMENT.REVOKED tells the
// merchant's notify_url, as when the customer revokes). Revoking a revoked
// agreement returns it unchanged. Errors: CodeNotFound (another
// merchant's included), CodeConflict (expired).
func (s *Service) Revoke(ctx context.Context, merchantID, id string) (Agreement, error) {
	return s.revoke(ctx, id, func(a Agreement) bool { return a.MerchantID == merchantID }, RevokedByMerchant)
}

// RevokeByCustomer revokes an agreement the customer signed, from the
// portal; the merchant gets AGREEMENT.REVOKED. Idempotent like Revoke.
// Errors: CodeNotFound (not the customer's), CodeConflict (expired).
func (s *Service) RevokeByCustomer(ctx context.Context, customerID, id string) (Agreement, error) {
	return s.revoke(ctx, id, func(a Agreement) bool { return customerID != "" && a.CustomerID == customerID }, RevokedByCustomer)
}

func (s *Service) revoke(ctx context.Context, id string, mine func(Agreement) bool, by string) (Agreement, error) {
	if !validID(id) {
		return Agreement{}, notFound()
	}
	var out Agreement
	notified := false
	err := s.store.InTx(ctx, func(tx SignTx) error {
		notified = false
		a, err := tx.LockMerchantAgreement(ctx, id)
		if err != nil {
			return err
		}
		if !mine(a) {
			return notFound()
		}
		out = a
		now := s.now()
		switch a.effective(now) {
		case StatusRevoked:
			return nil
		case StatusExpired:
			return paygate.E(paygate.CodeConflict, "the agreement has expired")
		}
		wasSigned := a.Status == StatusSigned
		a.Status, a.RevokedTime, a.RevokedBy, a.UpdateTime = StatusRevoked, now, by, now
		if err := tx.UpdateMerchantAgreement(ctx, a); err != nil {
			return err
		}
		out = a
		if !wasSigned {
			return nil
		}
		notified = true
		return s.enqueue(ctx, tx, a, EventRevoked, "Agreement revoked")
	})
	if err != nil {
		return Agreement{}, err
	}
	if notified {
		s.kick()
	}
	return s.view(out), nil
}

// enqueue queues the agreement's notification inside tx.
func (s *Service) enqueue(ctx context.Context, tx notify.Tx, a Agreement, typ, summary string) error {
	v := a
	v.SignURL = ""
	b, err := json.Marshal(v)
	if err != nil {
		return fmt.Errorf("agreement: encode notification: %w", err)
	}
	return notify.Enqueue(ctx, tx, s.clock, notify.Event{MerchantID: a.MerchantID, EventType: typ, OriginalType: OriginalType,
		Summary: summary, URL: a.NotifyURL, Payload: b, Sandbox: a.Sandbox})
}

// ExpireDue marks up to limit (default 100) agreements EXPIRED whose sign
// window passed unsigned or whose end date passed, in one transaction,
// and returns how many. Several processes may run it at once.
func (s *Service) ExpireDue(ctx context.Context, limit int) (int, error) {
	if limit <= 0 {
		limit = 100
	}
	n := 0
	err := s.store.InTx(ctx, func(tx SignTx) error {
		n = 0
		now := s.now()
		as, err := tx.LockDueMerchantAgreements(ctx, now, limit)
		if err != nil {
			return err
		}
		for _, a := range as {
			if a.effective(now) != StatusExpired || a.Status == StatusExpired {
				continue
			}
			a.Status, a.ExpiredTime, a.UpdateTime = StatusExpired, now, now
			if err := tx.UpdateMerchantAgreement(ctx, a); err != nil {
				return err
			}
			n++
		}
		return nil
	})
	return n, err
}

// expire records one agreement found expired at a charge (best effort: the
// job does it otherwise).
func (s *Service) expire(ctx context.Context, id string) {
	err := s.store.InTx(ctx, func(tx SignTx) error {
		a, err := tx.LockMerchantAgreement(ctx, id)
		if err != nil {
			return err
		}
		now := s.now()
		if a.Status == StatusExpired || a.effective(now) != StatusExpired {
			return nil
		}
		a.Status, a.ExpiredTime, a.UpdateTime = StatusExpired, now, now
		return tx.UpdateMerchantAgreement(ctx, a)
	})
	if err != nil {
		s.log.WarnContext(ctx, "agreement: could not record an expiry", "agreement_id", id, "error", err)
	}
}

// CustomerAgreements returns the agreements the customer signed, newest
// first, with their merchants' names, for the portal.
func (s *Service) CustomerAgreements(ctx context.Context, customerID string) ([]CustomerAgreement, error) {
	as, err := s.store.CustomerMerchantAgreements(ctx, customerID)
	if err != nil {
		return nil, err
	}
	names := map[string]string{}
	out := make([]CustomerAgreement, 0, len(as))
	for _, a := range as {
		name, ok := names[a.MerchantID]
		if !ok {
			m, err := s.mchs.Merchant(ctx, a.MerchantID)
			if err != nil {
				return nil, err
			}
			name, names[a.MerchantID] = m.Name, m.Name
		}
		v := s.view(a)
		out = append(out, CustomerAgreement{Agreement: v, MerchantName: name, Status: v.Status})
	}
	return out, nil
}

// SignView returns the agreement as the sign page shows it. Like a
// checkout page it is not scoped: whoever holds the unguessable sign_url
// may see this much. Errors: CodeNotFound.
func (s *Service) SignView(ctx context.Context, id string) (SignPage, error) {
	if !validID(id) {
		return SignPage{}, notFound()
	}
	a, err := s.store.MerchantAgreement(ctx, id)
	if err != nil {
		return SignPage{}, err
	}
	m, err := s.mchs.Merchant(ctx, a.MerchantID)
	if err != nil {
		return SignPage{}, err
	}
	v := s.view(a)
	return SignPage{ID: a.ID, MerchantName: m.Name, Plan: a.Plan, Description: a.Description, Currency: a.Currency,
		PerPaymentLimit: a.PerPaymentLimit, DailyLimit: a.DailyLimit, EndDate: a.EndDate, Status: v.Status,
		SignExpireTime: a.SignExpireTime, ReturnURL: a.ReturnURL, Card: a.Card, Sandbox: a.Sandbox}, nil
}

// signable loads an agreement that can be signed now. Errors:
// CodeNotFound, CodeConflict (signed, revoked or expired).
func (s *Service) signable(ctx context.Context, id string) (Agreement, error) {
	if !validID(id) {
		return Agreement{}, notFound()
	}
	a, err := s.store.MerchantAgreement(ctx, id)
	if err != nil {
		return Agreement{}, err
	}
	return a, s.checkSignable(a, s.clock.Now())
}

func (s *Service) checkSignable(a Agreement, now time.Time) error {
	switch a.effective(now) {
	case StatusSigned:
		return paygate.E(paygate.CodeConflict, "this agreement is already signed")
	case StatusRevoked:
		return paygate.E(paygate.CodeConflict, "the merchant has withdrawn this agreement")
	case StatusExpired:
		return paygate.E(paygate.CodeConflict, "this agreement can no longer be signed: its time to sign has passed")
	}
	return nil
}

func signSubject(id, cardID string) string { return id + "/" + cardID }

// StartSign checks the card number and the holder's name, ID number and
// phone against the card's records and sends a one-time code to the
// card's phone. Errors (nothing is sent): CodeNotFound (agreement; field
// card_number: the card is not known); CodeConflict (not signable);
// CodeInvalidArgument (field card_number: not a card number or fails the
// Luhn check; field holder: the details do not match — never saying
// which); CodeForbidden (card frozen or closed, or another bank's card
// and no interbank channel); CodeLimitExceeded (codes sent too often).
func (s *Service) StartSign(ctx context.Context, id string, c SignCard) (Challenge, error) {
	if _, err := s.signable(ctx, id); err != nil {
		return Challenge{}, err
	}
	card, err := s.cus.CardByNumber(ctx, c.Number)
	switch {
	case paygate.HasCode(err, paygate.CodeInvalidArgument):
		return Challenge{}, paygate.EField(paygate.CodeInvalidArgument, "card_number", "this is not a valid card number")
	case paygate.HasCode(err, paygate.CodeNotFound):
		return Challenge{}, paygate.EField(paygate.CodeNotFound, "card_number", "this card is not recognised")
	case err != nil:
		return Challenge{}, err
	}
	if err := s.usable(card); err != nil {
		return Challenge{}, err
	}
	if err := s.cus.VerifyHolder(ctx, card.ID, customer.Holder{Name: c.Name, IDNumber: c.IDNumber, Phone: c.Phone}); err != nil {
		if paygate.HasCode(err, paygate.CodeInvalidArgument) {
			return Challenge{}, paygate.EField(paygate.CodeInvalidArgument, "holder", "the name, ID number or phone do not match the card's records")
		}
		return Challenge{}, err
	}
	phone, err := s.cus.HolderPhone(ctx, card.ID)
	if err != nil {
		return Challenge{}, err
	}
	is, err := s.codes.Issue(ctx, purposeSign, signSubject(id, card.ID), phone)
	if err != nil {
		return Challenge{}, err
	}
	return Challenge{AgreementID: id, CardID: card.ID, Card: card.Number.String(), Bank: card.Bank, PhoneMasked: card.PhoneMasked,
		ExpiresAt: is.ExpiresAt}, nil
}

// usable refuses cards that cannot be charged: frozen or closed ones, and
// other banks' cards without an interbank channel.
func (s *Service) usable(card customer.Card) error {
	if card.Status != customer.StatusActive {
		return paygate.EField(paygate.CodeForbidden, "card_number", "this card cannot be used: it is frozen or closed")
	}
	if !card.Kind.OwnBank() && s.cfg.Interbank == "" {
		return paygate.EField(paygate.CodeForbidden, "card_number", "cards of other banks cannot be used here")
	}
	return nil
}

// ConfirmSign signs the agreement with the card the code was sent for,
// given the code: in one transaction the code is consumed, the agreement
// becomes SIGNED with the signer and the card (by id) and AGREEMENT.SIGNED
// is queued. A second submission finds it signed. Errors (nothing
// changes, apart from a wrong code counting a try): CodeNotFound;
// CodeConflict (not signable); the otp errors (wrong, expired, used, too
// many tries, superseded); CodeForbidden (the customer or card is not
// active).
func (s *Service) ConfirmSign(ctx context.Context, id, cardID, code string) (Agreement, error) {
	if _, err := s.signable(ctx, id); err != nil {
		return Agreement{}, err
	}
	card, err := s.cus.CardByID(ctx, cardID)
	if err != nil {
		return Agreement{}, err
	}
	if err := s.usable(card); err != nil {
		return Agreement{}, err
	}
	subject := signSubject(id, card.ID)
	proof, err := s.codes.Check(ctx, purposeSign, subject, code)
	if err != nil {
		return Agreement{}, err
	}
	var out Agreement
	err = s.store.InTx(ctx, func(tx SignTx) error {
		a, err := tx.LockMerchantAgreement(ctx, id)
		if err != nil {
			return err
		}
		now := s.now()
		if err := s.checkSignable(a, now); err != nil {
			return err
		}
		if err := s.codes.ConsumeTx(ctx, tx, purposeSign, subject, proof); err != nil {
			return err
		}
		cust, err := tx.CustomerInTx(ctx, card.CustomerID)
		if err != nil {
			return err
		}
		if cust.Status != customer.StatusActive {
			return paygate.E(paygate.CodeForbidden, "this customer account is not active")
		}
		a.Status, a.CustomerID, a.CardID, a.Card, a.Bank = StatusSigned, card.CustomerID, card.ID, card.Number.String(), card.Bank
		a.SignedTime, a.UpdateTime = now, now
		if err := tx.UpdateMerchantAgreement(ctx, a); err != nil {
			return err
		}
		out = a
		return s.enqueue(ctx, tx, a, EventSigned, "Agreement signed")
	})
	if err != nil {
		return Agreement{}, err
	}
	s.kick()
	s.log.InfoContext(ctx, "agreement signed", "agreement_id", id, "merchant", out.MerchantID, "customer", out.CustomerID)
	return s.view(out), nil
}

// Charge charges the merchant's SIGNED agreement without the customer:
// it creates an order from req and pays it from the signed card at once —
// an own-bank card on us (SUCCESS), another bank's card through the
// interbank channel (PROCESSING; the order's TRANSACTION.SUCCESS or its
// query tells the result; FAILED when the bank declines at once). Inside
// the order's transaction the agreement is locked and checked: signed,
// not past its end date, the amount within its per-payment limit and,
// with the day's earlier charges that have not failed, its per-day limit;
// then the customer's own limits are reserved (as quick pay). Idempotent
// on out_trade_no (replay true) like orders.
//
// Errors (nothing changes): CodeNotFound (agreement, another merchant's
// included); CodeConflict (pending, revoked or expired); order validation
// errors (CodeInvalidArgument, CodeAmountNotPositive, CodeLimitExceeded
// naming the field); CodeCurrencyMismatch (not the agreement's currency);
// CodeLimitExceeded (field amount: the agreement's per-payment or per-day
// limit, or the customer's limits); CodeForbidden (customer, card or
// merchant not active); CodeInsufficientFunds; CodeOutTradeNoUsed.
func (s *Service) Charge(ctx context.Context, merchantID, id string, req ChargeRequest) (Charge, bool, error) {
	if !validID(id) {
		return Charge{}, false, notFound()
	}
	a, err := s.store.MerchantAgreement(ctx, id)
	if err != nil {
		return Charge{}, false, err
	}
	if a.MerchantID != merchantID {
		return Charge{}, false, notFound()
	}
	if a.CardID == "" { // never signed: no charge of it can exist
		if a.effective(s.clock.Now()) == StatusPending {
			return Charge{}, false, paygate.E(paygate.CodeConflict, "the agreement is not signed yet")
		}
		return Charge{}, false, paygate.E(paygate.CodeConflict, "the agreement was never signed")
	}
	if err := paygate.CheckAmount("amount.total", req.Amount.Total, s.cfg.MaxAmount); err != nil {
		return Charge{}, false, err
	}
	if req.Amount.Currency == "" {
		req.Amount.Currency = a.Currency
	} else if _, err := paygate.ParseCurrency(string(req.Amount.Currency)); err != nil {
		return Charge{}, false, paygate.EField(paygate.CodeUnknownCurrency, "amount.currency", "unknown currency %q", string(req.Amount.Currency))
	} else if req.Amount.Currency != a.Currency {
		return Charge{}, false, paygate.EField(paygate.CodeCurrencyMismatch, "amount.currency", "the agreement charges in %s", a.Currency)
	}
	if req.NotifyURL == "" {
		req.NotifyURL = a.NotifyURL
	}
	card, err := s.cus.CardByID(ctx, a.CardID)
	if err != nil {
		return Charge{}, false, err
	}
	src := payment.Source{Account: card.AccountID}
	if !card.Kind.OwnBank() {
		if s.cfg.Interbank == "" {
			return Charge{}, false, paygate.E(paygate.CodeForbidden, "cards of other banks cannot be charged here")
		}
		src = payment.Source{Channel: s.cfg.Interbank}
		if s.cfg.InterbankScenario != nil {
			src.Scenario = s.cfg.InterbankScenario(card)
		}
	}
	oreq := payment.CreateRequest{OutTradeNo: req.OutTradeNo, Description: req.Description, Amount: req.Amount,
		NotifyURL: req.NotifyURL, Attach: req.Attach, Metadata: map[string]string{"agreement_id": a.ID},
		PaymentMethods: []string{payment.MethodAgreement}}
	payer := payment.Payer{Method: string(customer.MethodQuickPay), CustomerID: a.CustomerID, CardID: a.CardID}
	expired := false
	o, at, replay, err := s.pay.CreateAndPay(ctx, merchantID, oreq, payer, src, func(ctx context.Context, ptx payment.Tx, o payment.Order) (paygate.Date, error) {
		expired = false
		tx, ok := ptx.(ChargeTx)
		if !ok {
			return "", errors.New("agreement: the store's transaction is not a charge transaction")
		}
		a, err := tx.LockMerchantAgreement(ctx, id)
		if err != nil {
			return "", err
		}
		now := s.now()
		switch a.effective(now) {
		case StatusRevoked:
			return "", paygate.E(paygate.CodeConflict, "the agreement is revoked")
		case StatusExpired:
			expired = true
			return "", paygate.E(paygate.CodeConflict, "the agreement has expired")
		case StatusPending:
			return "", paygate.E(paygate.CodeConflict, "the agreement is not signed yet")
		}
		amount := o.Amount.Total
		if a.PerPaymentLimit > 0 && amount > a.PerPaymentLimit {
			return "", paygate.EField(paygate.CodeLimitExceeded, "amount.total", "the amount exceeds the agreement's per-payment limit of %s",
				paygate.Money{Amount: a.PerPaymentLimit, Currency: a.Currency}.String())
		}
		day := s.cal.AccountingDate(now)
		if a.DailyLimit > 0 {
			used, err := tx.AgreementChargedOn(ctx, a.ID, day)
			if err != nil {
				return "", err
			}
			if used > a.DailyLimit || amount > a.DailyLimit-used {
				return "", paygate.EField(paygate.CodeLimitExceeded, "amount.total", "the amount exceeds what the agreement's daily limit of %s leaves today (%s)",
					paygate.Money{Amount: a.DailyLimit, Currency: a.Currency}.String(), paygate.Money{Amount: max(0, a.DailyLimit-used), Currency: a.Currency}.String())
			}
		}
		if err := tx.InsertAgreementCharge(ctx, ChargeRecord{OrderID: o.ID, AgreementID: a.ID, Amount: amount, Day: day, CreatedAt: now}); err != nil {
			return "", err
		}
		if _, err := s.cus.Reserve(ctx, tx, a.CustomerID, a.CardID, customer.MethodQuickPay, amount, day); err != nil {
			return "", err
		}
		return day, nil
	})
	if err != nil {
		if expired {
			s.expire(ctx, id)
		}
		return Charge{}, false, err
	}
	c := Charge{AgreementID: a.ID, Order: o, Status: ChargeProcessing}
	switch {
	case o.Status == payment.StatusSuccess || o.Status == payment.StatusRefund:
		c.Status = ChargeSuccess
	case at.Status == channel.StatusFailed:
		c.Status, c.FailCode = ChargeFailed, at.FailCode
	}
	return c, replay, nil
}
