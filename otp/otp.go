// Package otp issues and verifies one-time codes sent by SMS (quick pay,
// binding a card, ...).
//
// A code is six digits from crypto/rand, issued for a purpose (for example
// "quickpay:ord_..." or "bind:card_...") and a subject (who may use it, for
// example a customer or card id) and sent to a phone through the sms outbox
// in the same transaction. Guarantees:
//
//   - only an HMAC-SHA256 of the code (bound to the code's id, purpose and
//     subject, under a server key) is stored, and codes are compared in
//     constant time; the code itself appears only in the SMS text, which the
//     outbox stores sealed and wipes once sent;
//   - a code expires ExpiresIn (5 minutes) after it was issued: valid while
//     now < issued + 5 min, by the injected clock;
//   - at most MaxTries (5) attempts per code: after 5 wrong codes even the
//     right one is refused until a new code is issued;
//   - single use: of any number of concurrent verifications of one code,
//     exactly one succeeds;
//   - a new code for the same purpose and subject supersedes the old one;
//   - a code may be re-sent for a purpose and subject once per
//     ResendInterval (60 s), and a phone receives at most DailyCap (10)
//     codes per local day.
//
// Two ways to verify: Verify checks and consumes in its own transaction;
// Check followed by ConsumeTx lets the caller consume the code inside its
// own transaction (so "code used" and "order paid" commit together) while
// wrong tries are still recorded even when that transaction rolls back.
//
// Errors carry a paygate code for the API and wrap one of this package's
// sentinels (ErrWrongCode, ErrExpired, ...) so that callers can show a
// precise message: test with errors.Is.
package otp

import (
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"time"

	"paygate"
	"paygate/sms"
)

// PrefixCode starts every code's id.
const PrefixCode = "otp_"

// Defaults for Config.
const (
	DefaultExpiresIn      = 5 * time.Minute
	DefaultMaxTries       = 5
	DefaultResendInterval = 60 * time.Second
	DefaultDailyCap       = 10
)

// Limits on the strings a code is issued for.
const (
	MaxPurposeLen = 128
	MaxSubjectLen = 128
)

// CodeLen is the number of digits of a code.
const CodeLen = 6

// Sentinel causes of verification and issue failures. Each is wrapped in a
// *paygate.Error whose code the API shows; test with errors.Is.
var (
	ErrNoCode        = errors.New("otp: no code was issued")                      // CodeNotFound
	ErrWrongCode     = errors.New("otp: wrong code")                              // CodeUnauthenticated
	ErrExpired       = errors.New("otp: code expired")                            // CodeUnauthenticated
	ErrSuperseded    = errors.New("otp: a newer code was issued")                 // CodeUnauthenticated
	ErrTooManyTries  = errors.New("otp: too many wrong codes")                    // CodeLimitExceeded
	ErrUsed          = errors.New("otp: code already used")                       // CodeConflict
	ErrMalformed     = errors.New("otp: not a six-digit code")                    // CodeInvalidArgument
	ErrResendTooSoon = errors.New("otp: a code was sent moments ago")             // CodeLimitExceeded
	ErrDailyCap      = errors.New("otp: the phone received too many codes today") // CodeLimitExceeded
	errProofMismatch = errors.New("otp: proof is for another purpose or subject") // CodeUnauthenticated
	errZeroProof     = errors.New("otp: zero proof")                              // CodeInvalidArgument
)

func fail(code paygate.Code, cause error, format string, args ...any) error {
	return &paygate.Error{Code: code, Field: "code", Message: fmt.Sprintf(format, args...), Err: cause}
}

// Code is one issued code as stored: never the code itself.
type Code struct {
	ID        string
	Purpose   string
	Subject   string
	Phone     string
	MAC       string // hex HMAC-SHA256 under KeyID
	KeyID     string
	Status    Status
	Tries     int
	MaxTries  int
	CreatedAt time.Time
	ExpiresAt time.Time
	UsedAt    time.Time
}

// Status is a code's state. Expiry and exhausted tries are not states: they
// follow from ExpiresAt and Tries.
type Status string

// Code statuses.
const (
	StatusActive     Status = "ACTIVE"     // issued, not used, not superseded
	StatusUsed       Status = "USED"       // consumed by a successful verification
	StatusSuperseded Status = "SUPERSEDED" // a newer code was issued for its purpose and subject
)

// Tx is what the service needs of a transaction; store.Tx implements it.
type Tx interface {
	sms.Tx
	// LastIssuedAt returns when the newest code for purpose and subject
	// was issued, or the zero time.
	LastIssuedAt(ctx context.Context, purpose, subject string) (time.Time, error)
	// TakePhoneQuota counts one more code to phone on day unless cap are
	// counted already, and reports whether it counted.
	TakePhoneQuota(ctx context.Context, phone, day string, cap int) (bool, error)
	// SupersedeCodes marks the ACTIVE code of purpose and subject (if any)
	// SUPERSEDED, locking it, and returns when it was issued (zero if there
	// was none). A code committed since LastIssuedAt is seen here.
	SupersedeCodes(ctx context.Context, purpose, subject string) (time.Time, error)
	// InsertCode inserts an ACTIVE code; it fails with paygate.ErrRetry
	// when purpose and subject have an ACTIVE code already (a concurrent
	// issue won).
	InsertCode(ctx context.Context, c Code) error
	// ClaimTry counts one try on the ACTIVE code of purpose and subject
	// that has not expired at now and has tries left, in one conditional
	// UPDATE, and returns the code after the update (locked until the
	// transaction ends); false if no code qualifies.
	ClaimTry(ctx context.Context, purpose, subject string, now time.Time) (Code, bool, error)
	// ConsumeCode marks the code USED at now in one conditional UPDATE if
	// it is ACTIVE, has purpose and subject and has not expired at now,
	// and reports whether it did.
	ConsumeCode(ctx context.Context, id, purpose, subject string, now time.Time) (bool, error)
	// LatestCode returns the newest code of purpose and subject; false if
	// there is none.
	LatestCode(ctx context.Context, purpose, subject string) (Code, bool, error)
	// CodeByID returns the code with the id; false if there is none.
	CodeByID(ctx context.Context, id string) (Code, bool, error)
	// SupersededMACs returns the MACs (with their key ids) of purpose and
	// subject's SUPERSEDED codes issued after since.
	SupersededMACs(ctx context.Context, purpose, subject string, since time.Time) ([]Code, error)
	// DeleteCodes deletes up to limit codes that expired before before,
	// and the phone quotas of days before day, and returns how many codes
	// it deleted.
	DeleteCodes(ctx context.Context, before time.Time, day string, limit int) (int64, error)
}

// Store runs transactions; store.DB.OTP implements it.
type Store interface {
	// InTx runs fn in one transaction, committing when it returns nil and
	// retrying it on transient conflicts.
	InTx(ctx context.Context, fn func(Tx) error) error
	// LatestCode returns the newest code of purpose and subject outside
	// any transaction; false if there is none.
	LatestCode(ctx context.Context, purpose, subject string) (Code, bool, error)
}

// Config configures a Service.
type Config struct {
	Store Store
	// Keys are HMAC keys of at least 32 bytes; the first makes new codes,
	// all verify (so the key can rotate while codes are live).
	Keys [][]byte
	// SMSKeys seals the outgoing SMS text (see sms.Keyring).
	SMSKeys *sms.Keyring
	Clock   paygate.Clock
	// Location is the zone of the per-phone day; default Asia/Shanghai.
	Location       *time.Location
	ExpiresIn      time.Duration // default 5 min
	MaxTries       int           // default 5
	ResendInterval time.Duration // default 60 s; negative disables
	DailyCap       int           // codes per phone per local day; default 10; negative disables
	// Text renders the SMS; default DefaultText.
	Text func(purpose, code string, expiresIn time.Duration) string
	// Logger gets one line per issue and failed verification (never the
	// code or the text); default slog.Default().
	Logger *slog.Logger
	// Rand is the source of codes; default crypto/rand.Reader. Tests only.
	Rand io.Reader
	// Kick, if set, is called after Issue commits: pass the SMS worker's
	// Kick so the message leaves at once. (After IssueTx the caller kicks
	// once its transaction commits.)
	Kick func()
}

// DefaultText is the default SMS text: the code, what it is for, its
// lifetime and a warning.
func DefaultText(purpose, code string, expiresIn time.Duration) string {
	// Purposes are "area.action" (checkout.quick_pay, agreement.sign) or,
	// in older callers, "kind:subject"; the SMS names what the code is for
	// so a customer who did not start it notices.
	what := "verification"
	kind, _, _ := strings.Cut(purpose, ":")
	switch {
	case kind == "quickpay" || strings.HasSuffix(kind, "quick_pay"):
		what = "payment"
	case kind == "bind" || strings.HasSuffix(kind, "bind"):
		what = "card binding"
	case strings.HasPrefix(kind, "agreement"):
		what = "agreement signing"
	}
	return fmt.Sprintf("[paygate] Your %s code is %s, valid for %d minutes. Never share it with anyone, including paygate staff.",
		what, code, int(expiresIn/time.Minute))
}

// Service issues and verifies codes. It is safe for concurrent use.
type Service struct {
	store   Store
	keys    map[string][]byte
	keyID   string
	smsKeys *sms.Keyring
	clock   paygate.Clock
	loc     *time.Location
	ttl     time.Duration
	tries   int
	resend  time.Duration
	cap     int
	text    func(purpose, code string, expiresIn time.Duration) string
	log     *slog.Logger
	rand    io.Reader
	kick    func()
}

// New returns a Service. Errors: CodeInvalidArgument for a missing store,
// clock or SMS keyring, or a key shorter than 32 bytes.
func New(cfg Config) (*Service, error) {
	if cfg.Store == nil || cfg.Clock == nil || cfg.SMSKeys == nil {
		return nil, paygate.E(paygate.CodeInvalidArgument, "otp: a store, a clock and SMS keys are needed")
	}
	if len(cfg.Keys) == 0 {
		return nil, paygate.E(paygate.CodeInvalidArgument, "otp: at least one HMAC key is needed")
	}
	s := &Service{store: cfg.Store, keys: make(map[string][]byte), smsKeys: cfg.SMSKeys, clock: cfg.Clock,
		loc: cfg.Location, ttl: cfg.ExpiresIn, tries: cfg.MaxTries, resend: cfg.ResendInterval, cap: cfg.DailyCap,
		text: cfg.Text, log: cfg.Logger, rand: cfg.Rand, kick: cfg.Kick}
	for i, k := range cfg.Keys {
		if len(k) < 32 {
			return nil, paygate.E(paygate.CodeInvalidArgument, "otp: HMAC keys must be at least 32 bytes")
		}
		sum := sha256.Sum256(k)
		id := hex.EncodeToString(sum[:4])
		if i == 0 {
			s.keyID = id
		}
		s.keys[id] = append([]byte(nil), k...)
	}
	if s.loc == nil {
		s.loc = paygate.DefaultCalendar().Location
	}
	if s.ttl <= 0 {
		s.ttl = DefaultExpiresIn
	}
	if s.tries <= 0 {
		s.tries = DefaultMaxTries
	}
	if s.resend == 0 {
		s.resend = DefaultResendInterval
	}
	if s.cap == 0 {
		s.cap = DefaultDailyCap
	}
	if s.text == nil {
		s.text = DefaultText
	}
	if s.log == nil {
		s.log = slog.Default()
	}
	if s.rand == nil {
		s.rand = rand.Reader
	}
	return s, nil
}

// Issued describes a code just issued (never the code itself).
type Issued struct {
	ID        string    // the code's id
	SMSID     string    // the outbox message carrying it
	Phone     string    // masked, for pages: "138****0000"
	ExpiresAt time.Time // valid while now is before it
	ResendAt  time.Time // a new code for the same purpose and subject is refused before it
	MaxTries  int
}

func (s *Service) now() time.Time { return s.clock.Now().UTC().Truncate(time.Microsecond) }

// Issue makes a new code for purpose and subject, supersedes the previous
// one and queues the SMS to phone, in one transaction of its own. Errors:
// CodeInvalidArgument (field purpose, subject or phone), CodeLimitExceeded
// wrapping ErrResendTooSoon (the message says how long to wait) or
// ErrDailyCap, CodeInternal or CodeUnavailable from the database.
func (s *Service) Issue(ctx context.Context, purpose, subject, phone string) (Issued, error) {
	var out Issued
	err := s.store.InTx(ctx, func(tx Tx) error {
		var err error
		out, err = s.IssueTx(ctx, tx, purpose, subject, phone)
		return err
	})
	if err == nil && s.kick != nil {
		s.kick()
	}
	return out, err
}

// IssueTx is Issue inside the caller's transaction: the code and its SMS
// exist only if tx commits. It may fail with paygate.ErrRetry, which the
// caller's InTx retries. Errors as Issue.
func (s *Service) IssueTx(ctx context.Context, tx Tx, purpose, subject, phone string) (Issued, error) {
	if err := checkName("purpose", purpose, MaxPurposeLen); err != nil {
		return Issued{}, err
	}
	if err := checkName("subject", subject, MaxSubjectLen); err != nil {
		return Issued{}, err
	}
	phone, err := sms.NormalizePhone(phone)
	if err != nil {
		return Issued{}, err
	}
	now := s.now()
	last, err := tx.LastIssuedAt(ctx, purpose, subject)
	if err != nil {
		return Issued{}, err
	}
	if err := s.resendLimit(last, now); err != nil {
		return Issued{}, err
	}
	if s.cap > 0 {
		ok, err := tx.TakePhoneQuota(ctx, phone, now.In(s.loc).Format(time.DateOnly), s.cap)
		if err != nil {
			return Issued{}, err
		}
		if !ok {
			return Issued{}, &paygate.Error{Code: paygate.CodeLimitExceeded, Err: ErrDailyCap, Field: "phone",
				Message: "this phone has received too many codes today; try again tomorrow"}
		}
	}
	// Checked again on the row now locked: on PostgreSQL a concurrent issue
	// may have committed since LastIssuedAt read.
	if last, err = tx.SupersedeCodes(ctx, purpose, subject); err != nil {
		return Issued{}, err
	}
	if err := s.resendLimit(last, now); err != nil {
		return Issued{}, err
	}
	code, err := s.newCode()
	if err != nil {
		return Issued{}, paygate.Internal(fmt.Errorf("otp: generate code: %w", err))
	}
	c := Code{ID: paygate.NewID(PrefixCode), Purpose: purpose, Subject: subject, Phone: phone, KeyID: s.keyID,
		Status: StatusActive, MaxTries: s.tries, CreatedAt: now, ExpiresAt: now.Add(s.ttl)}
	c.MAC = s.mac(s.keys[s.keyID], c.ID, purpose, subject, code)
	if err := tx.InsertCode(ctx, c); err != nil {
		return Issued{}, err
	}
	m := sms.Message{ID: paygate.NewID(sms.PrefixMessage), Phone: phone, Purpose: purpose,
		Text: s.text(purpose, code, s.ttl), CreatedAt: now, SendBefore: c.ExpiresAt}
	if err := sms.Enqueue(ctx, tx, s.smsKeys, s.clock, m); err != nil {
		return Issued{}, err
	}
	s.log.Debug("otp issued", "otp_id", c.ID, "purpose", purpose, "phone", sms.MaskPhone(phone), "sms_id", m.ID,
		"expires_at", c.ExpiresAt)
	out := Issued{ID: c.ID, SMSID: m.ID, Phone: sms.MaskPhone(phone), ExpiresAt: c.ExpiresAt, MaxTries: s.tries}
	if s.resend > 0 {
		out.ResendAt = now.Add(s.resend)
	}
	return out, nil
}

// State is what a page may show about the newest code of a purpose and
// subject (never the code).
type State struct {
	ID        string
	Phone     string    // masked: "138****0000"
	Status    Status    // ACTIVE, USED or SUPERSEDED
	Live      bool      // ACTIVE, not expired, tries left: worth typing
	TriesLeft int       // 0 once the tries are used up
	ExpiresAt time.Time // valid while now is before it
	ResendAt  time.Time // Issue is refused before it
}

// Status returns the state of the newest code for purpose and subject, for
// a page reloaded after a code was sent ("code sent to 138****0000; resend
// in 42 s"). Errors: CodeInvalidArgument for a malformed purpose or subject,
// CodeNotFound wrapping ErrNoCode when none was issued, CodeInternal or
// CodeUnavailable from the database.
func (s *Service) Status(ctx context.Context, purpose, subject string) (State, error) {
	if err := checkName("purpose", purpose, MaxPurposeLen); err != nil {
		return State{}, err
	}
	if err := checkName("subject", subject, MaxSubjectLen); err != nil {
		return State{}, err
	}
	c, ok, err := s.store.LatestCode(ctx, purpose, subject)
	if err != nil {
		return State{}, err
	}
	if !ok {
		return State{}, &paygate.Error{Code: paygate.CodeNotFound, Err: ErrNoCode, Message: "no code was sent for this"}
	}
	now := s.now()
	st := State{ID: c.ID, Phone: sms.MaskPhone(c.Phone), Status: c.Status, TriesLeft: max(c.MaxTries-c.Tries, 0),
		ExpiresAt: c.ExpiresAt}
	st.Live = c.Status == StatusActive && now.Before(c.ExpiresAt) && st.TriesLeft > 0
	if s.resend > 0 {
		st.ResendAt = c.CreatedAt.Add(s.resend)
	}
	return st, nil
}

// DefaultRetention is how long Purge keeps codes after they expired.
const DefaultRetention = 7 * 24 * time.Hour

// Purge deletes up to limit codes that expired more than retention ago
// (DefaultRetention when 0) and the per-phone counts of earlier days, in one
// transaction, and returns how many codes it deleted. Run it as a periodic
// job; the limits and superseded-code messages only look at recent codes.
// Errors: CodeInvalidArgument for a retention under a day or a limit under
// 1, CodeInternal or CodeUnavailable from the database.
func (s *Service) Purge(ctx context.Context, retention time.Duration, limit int) (int64, error) {
	if retention == 0 {
		retention = DefaultRetention
	}
	if retention < 24*time.Hour || limit < 1 {
		return 0, paygate.E(paygate.CodeInvalidArgument, "otp: keep codes at least a day and delete at least 1")
	}
	now := s.now()
	before := now.Add(-retention)
	day := now.In(s.loc).AddDate(0, 0, -1).Format(time.DateOnly)
	var n int64
	err := s.store.InTx(ctx, func(tx Tx) error {
		var err error
		n, err = tx.DeleteCodes(ctx, before, day, limit)
		return err
	})
	return n, err
}

// resendLimit refuses a new code within the resend interval of the last.
func (s *Service) resendLimit(last, now time.Time) error {
	if s.resend <= 0 || last.IsZero() {
		return nil
	}
	if next := last.Add(s.resend); now.Before(next) {
		wait := int((next.Sub(now) + time.Second - 1) / time.Second)
		return &paygate.Error{Code: paygate.CodeLimitExceeded, Err: ErrResendTooSoon,
			Message: fmt.Sprintf("a code was sent moments ago; wait %d seconds before asking for another", wait)}
	}
	return nil
}

func checkName(field, v string, maxLen int) error {
	if v == "" || len(v) > maxLen {
		return paygate.EField(paygate.CodeInvalidArgument, field, "%s must be 1 to %d printable ASCII characters", field, maxLen)
	}
	for i := 0; i < len(v); i++ {
		if v[i] <= ' ' || v[i] >= 0x7f {
			return paygate.EField(paygate.CodeInvalidArgument, field, "%s must be 1 to %d printable ASCII characters", field, maxLen)
		}
	}
	return nil
}

// newCode returns CodeLen uniformly random digits (rejection sampling over
// 32-bit values, so no digit is favoured).
func (s *Service) newCode() (string, error) {
	const n = 1_000_000
	const limit = (1 << 32) / n * n
	var b [4]byte
	for {
		if _, err := io.ReadFull(s.rand, b[:]); err != nil {
			return "", err
		}
		if v := binary.BigEndian.Uint32(b[:]); v < limit {
			return fmt.Sprintf("%06d", v%n), nil
		}
	}
}

// mac is HMAC-SHA256 over the code's id, purpose, subject and digits, so a
// MAC cannot be moved to another code.
func (s *Service) mac(key []byte, id, purpose, subject, code string) string {
	h := hmac.New(sha256.New, key)
	for _, p := range []string{"paygate-otp-v1", id, purpose, subject, code} {
		h.Write([]byte(p))
		h.Write([]byte{0})
	}
	return hex.EncodeToString(h.Sum(nil))
}

// matches compares the MAC of code with c's in constant time.
func (s *Service) matches(c Code, code string) bool {
	key, ok := s.keys[c.KeyID]
	if !ok {
		return false // made under a key no longer configured
	}
	want, err := hex.DecodeString(c.MAC)
	if err != nil {
		return false
	}
	got, _ := hex.DecodeString(s.mac(key, c.ID, c.Purpose, c.Subject, code))
	return hmac.Equal(got, want)
}

// ParseCode returns the six ASCII digits of a code as typed: surrounding
// white space is trimmed, and anything but exactly six ASCII digits fails
// with CodeInvalidArgument wrapping ErrMalformed.
func ParseCode(input string) (string, error) {
	s := strings.TrimSpace(input)
	if len(s) != CodeLen {
		return "", fail(paygate.CodeInvalidArgument, ErrMalformed, "enter the %d-digit code from the SMS", CodeLen)
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return "", fail(paygate.CodeInvalidArgument, ErrMalformed, "enter the %d-digit code from the SMS", CodeLen)
		}
	}
	return s, nil
}

var errNotConsumed = errors.New("otp: a claimed code could not be consumed")
