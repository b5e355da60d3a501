// Package customer manages the people who pay: customers (registration,
// login with lock-out, real-name verification, payment password, online
// payment on or off, verification factors), their cards (the institution's
// own debit and corporate cards, which are ledger accounts with balances,
// and other banks' cards, paid through an interbank channel), quick-pay
// binding agreements, and the payment limits, enforced in one place
// (Reserve).
//
// Secrets never leave this package in clear and never reach a log or an
// error: passwords and payment passwords are argon2id hashes; card numbers,
// ID numbers and reserved phones are sealed with AES-256-GCM under a
// master key (sealing.Keyring) and found through HMAC-SHA256 blind indexes
// (sealing.BlindIndex, a separate key). Card numbers are shown only as
// Masked (first six and last four digits at most).
package customer

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"runtime"
	"strings"
	"time"

	"paygate"
	"paygate/ledger"
	"paygate/sealing"
)

// Id prefixes of the objects this package creates.
const (
	PrefixCustomer  = "cus_"
	PrefixCard      = "card_"
	PrefixAgreement = "agr_"
)

// Status is a customer's or a card's life-cycle state.
type Status string

// Statuses. Only ACTIVE customers log in and pay; only ACTIVE cards pay.
const (
	StatusActive Status = "ACTIVE"
	StatusFrozen Status = "FROZEN"
	StatusClosed Status = "CLOSED"
)

// Factors is the set of verification factors a customer has completed.
// Their count (and the certificate) decide the customer's daily limit.
type Factors uint8

// The verification factors.
const (
	FactorPassword    Factors = 1 << iota // a login password (every registered customer)
	FactorRealName                        // name and ID number verified
	FactorPhone                           // phone verified as the customer's
	FactorCard                            // a card bound for quick pay
	FactorCertificate                     // a digital certificate (USB key) issued
)

var factorNames = []struct {
	f    Factors
	name string
}{{FactorPassword, "PASSWORD"}, {FactorRealName, "REAL_NAME"}, {FactorPhone, "PHONE"}, {FactorCard, "CARD"}, {FactorCertificate, "CERTIFICATE"}}

// Has reports whether every factor of g is in f.
func (f Factors) Has(g Factors) bool { return f&g == g }

// Count returns how many factors f holds.
func (f Factors) Count() int {
	n := 0
	for _, x := range factorNames {
		if f&x.f != 0 {
			n++
		}
	}
	return n
}

// Names returns the factors' names, in a fixed order.
func (f Factors) Names() []string {
	out := []string{}
	for _, x := range factorNames {
		if f&x.f != 0 {
			out = append(out, x.name)
		}
	}
	return out
}

// MarshalJSON encodes the factors as a list of names.
func (f Factors) MarshalJSON() ([]byte, error) { return json.Marshal(f.Names()) }

// Customer is a customer as callers see it: no secret, and identity data
// only masked.
type Customer struct {
	ID             string    `json:"id"`
	Phone          string    `json:"phone,omitempty"`    // login phone, when registered by phone
	Username       string    `json:"username,omitempty"` // when registered by username
	Status         Status    `json:"status"`
	Factors        Factors   `json:"factors"`
	OnlinePayment  bool      `json:"online_payment"`
	PayPasswordSet bool      `json:"pay_password_set"`
	NameMasked     string    `json:"name,omitempty"`      // verified name, masked
	IDMasked       string    `json:"id_number,omitempty"` // verified ID number, masked
	PhoneMasked    string    `json:"verified_phone,omitempty"`
	VerifiedAt     time.Time `json:"verified_at,omitzero"`
	CreatedAt      time.Time `json:"created_at"`
	UpdatedAt      time.Time `json:"updated_at"`
}

// Verified reports whether the customer passed real-name verification.
func (c Customer) Verified() bool { return c.Factors.Has(FactorRealName) }

// Lockout is a lock-out policy for one secret: after MaxFailures wrong
// attempts within Window, attempts are refused for Duration.
type Lockout struct {
	MaxFailures int
	Window      time.Duration
	Duration    time.Duration
}

// Default lock-out policies.
var (
	DefaultLoginLockout = Lockout{MaxFailures: 5, Window: 15 * time.Minute, Duration: 30 * time.Minute}
	DefaultPayLockout   = Lockout{MaxFailures: 5, Window: 24 * time.Hour, Duration: 3 * time.Hour}
)

// SandboxOwnBIN is the issuer prefix of the institution's own cards in the
// sandbox; OwnBankName names the institution on its cards.
const (
	SandboxOwnBIN = "628888"
	OwnBankName   = "PAYGATE"
)

// Config configures a Service. Store, Books, Clock, Keyring, Index and
// Verifier are required; zero settings take the defaults.
type Config struct {
	Store    Store
	Books    Books
	Clock    paygate.Clock
	Keyring  *sealing.Keyring
	Index    *sealing.BlindIndex // its key must differ from every master key
	Verifier Verifier
	Logger   *slog.Logger // nil: slog.Default()

	Limits       Limits     // zero: DefaultLimits()
	LoginLockout Lockout    // zero: DefaultLoginLockout
	PayLockout   Lockout    // zero: DefaultPayLockout
	Hash         HashParams // zero: DefaultHashParams
	// OwnBINs are the issuer prefixes of the institution's own cards
	// (default: SandboxOwnBIN). Every other card is another bank's.
	OwnBINs []string
}

// Service is the customer use case. It is safe for concurrent use.
type Service struct {
	store    Store
	books    Books
	clock    paygate.Clock
	keyring  *sealing.Keyring
	index    *sealing.BlindIndex
	verifier Verifier
	log      *slog.Logger
	limits   Limits
	login    Lockout
	pay      Lockout
	hash     HashParams
	ownBINs  []string
	dummy    string        // a hash to check against when the login is unknown
	hashing  chan struct{} // bounds concurrent argon2id work (and its memory)
}

// New returns a Service. Errors: CodeInvalidArgument for a missing
// dependency or an inconsistent setting.
func New(cfg Config) (*Service, error) {
	if cfg.Store == nil || cfg.Books == nil || cfg.Clock == nil || cfg.Keyring == nil || cfg.Index == nil || cfg.Verifier == nil {
		return nil, paygate.E(paygate.CodeInvalidArgument, "customer: Store, Books, Clock, Keyring, Index and Verifier are required")
	}
	s := &Service{store: cfg.Store, books: cfg.Books, clock: cfg.Clock, keyring: cfg.Keyring, index: cfg.Index,
		verifier: cfg.Verifier, log: cfg.Logger, limits: cfg.Limits, login: cfg.LoginLockout, pay: cfg.PayLockout,
		hash: cfg.Hash, ownBINs: cfg.OwnBINs}
	if s.log == nil {
		s.log = slog.Default()
	}
	if s.limits.Currency == "" {
		s.limits = DefaultLimits()
	}
	if err := s.limits.Validate(); err != nil {
		return nil, err
	}
	for _, l := range []*Lockout{&s.login, &s.pay} {
		if *l == (Lockout{}) {
			*l = DefaultLoginLockout
			if l == &s.pay {
				*l = DefaultPayLockout
			}
		}
		if l.MaxFailures < 1 || l.Window <= 0 || l.Duration <= 0 {
			return nil, paygate.E(paygate.CodeInvalidArgument, "customer: a lock-out needs MaxFailures >= 1 and positive durations")
		}
	}
	if s.hash == (HashParams{}) {
		s.hash = DefaultHashParams
	}
	if s.hash.Time < 1 || s.hash.Threads < 1 || s.hash.Memory < 8*uint32(s.hash.Threads) {
		return nil, paygate.E(paygate.CodeInvalidArgument, "customer: argon2id parameters are too small")
	}
	if len(s.ownBINs) == 0 {
		s.ownBINs = []string{SandboxOwnBIN}
	}
	for _, b := range s.ownBINs {
		if len(b) != 6 || strings.Trim(b, "0123456789") != "" {
			return nil, paygate.E(paygate.CodeInvalidArgument, "customer: an issuer prefix has 6 digits")
		}
	}
	s.hashing = make(chan struct{}, runtime.NumCPU())
	s.dummy = hashSecret("paygate: no such customer", s.hash)
	return s, nil
}

// Limits returns the limits the Service enforces.
func (s *Service) Limits() Limits { return s.limits }

func (r Record) public() Customer {
	c := r.Customer
	c.PayPasswordSet = r.PayPasswordHash != ""
	return c
}

// RegisterRequest registers a customer by phone or by username (exactly
// one) with a login password.
type RegisterRequest struct {
	Phone    string
	Username string
	Password string
}

// Password rules.
const (
	MinPasswordLength = 8
	MaxPasswordLength = 128
)

// checkPassword enforces the login password rules: 8 to 128 bytes, with at
// least two of letters, digits and other characters.
func checkPassword(field, p string) error {
	if len(p) < MinPasswordLength || len(p) > MaxPasswordLength {
		return paygate.EField(paygate.CodeInvalidArgument, field, "a password has %d to %d characters", MinPasswordLength, MaxPasswordLength)
	}
	var letter, digit, other int
	for _, r := range p {
		switch {
		case r >= '0' && r <= '9':
			digit = 1
		case r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z':
			letter = 1
		default:
			other = 1
		}
	}
	if letter+digit+other < 2 {
		return paygate.EField(paygate.CodeInvalidArgument, field, "a password mixes at least two of letters, digits and symbols")
	}
	return nil
}

// ParseUsername validates a username: 4 to 32 characters, a letter first,
// then letters, digits and underscores; it is folded to lower case.
// Errors: CodeInvalidArgument on field "username".
func ParseUsername(s string) (string, error) {
	s = strings.ToLower(strings.TrimSpace(s))
	ok := len(s) >= 4 && len(s) <= 32 && s[0] >= 'a' && s[0] <= 'z'
	for i := 0; ok && i < len(s); i++ {
		c := s[i]
		ok = c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '_'
	}
	if !ok {
		return "", paygate.EField(paygate.CodeInvalidArgument, "username", "a username has 4 to 32 letters, digits or underscores and starts with a letter")
	}
	return s, nil
}

// Register creates a customer with the login password (hashed with
// argon2id), online payment on, one verification factor (the password)
// and a balance account in the limits' currency. Errors:
// CodeInvalidArgument (bad phone, username or password; both or neither of
// phone and username), CodeConflict when the phone or username is taken.
func (s *Service) Register(ctx context.Context, req RegisterRequest) (Customer, error) {
	var r Record
	switch {
	case (req.Phone == "") == (req.Username == ""):
		return Customer{}, paygate.E(paygate.CodeInvalidArgument, "register with a phone or a username")
	case req.Phone != "":
		p, err := ParsePhone(req.Phone)
		if err != nil {
			return Customer{}, err
		}
		r.Phone = p
	default:
		u, err := ParseUsername(req.Username)
		if err != nil {
			return Customer{}, err
		}
		r.Username = u
	}
	if err := checkPassword("password", req.Password); err != nil {
		return Customer{}, err
	}
	now := s.clock.Now().UTC().Truncate(time.Microsecond)
	r.ID = paygate.NewID(PrefixCustomer)
	r.Status, r.Factors, r.OnlinePayment = StatusActive, FactorPassword, true
	r.CreatedAt, r.UpdatedAt = now, now
	taken := func() error {
		if r.Phone != "" {
			return paygate.EField(paygate.CodeConflict, "phone", "this phone is already registered")
		}
		return paygate.EField(paygate.CodeConflict, "username", "this username is taken")
	}
	// Look first, so a taken login does not leave an account behind (the
	// insert below still decides races).
	if _, err := s.store.CustomerByLogin(ctx, r.Phone+r.Username); err == nil {
		return Customer{}, taken()
	} else if !paygate.HasCode(err, paygate.CodeNotFound) {
		return Customer{}, err
	}
	r.PasswordHash = s.hashOf(req.Password)
	if _, err := s.books.CreateAccounts(ctx, []ledger.Account{ledger.CustomerDeposit(r.ID, s.limits.Currency)}); err != nil {
		return Customer{}, fmt.Errorf("customer: balance account: %w", err)
	}
	err := s.store.InTx(ctx, func(tx Tx) error {
		ok, err := tx.InsertCustomer(ctx, r)
		if err != nil {
			return err
		}
		if !ok {
			return taken()
		}
		return nil
	})
	if err != nil {
		return Customer{}, err
	}
	s.log.InfoContext(ctx, "customer registered", "customer", r.ID)
	return r.public(), nil
}

// Customer returns the customer. Errors: CodeNotFound.
func (s *Service) Customer(ctx context.Context, id string) (Customer, error) {
	r, err := s.store.Customer(ctx, id)
	if err != nil {
		return Customer{}, err
	}
	return r.public(), nil
}

// LockedError is the cause (errors.As) of a refusal because a secret is
// locked after too many wrong attempts: Until is when it unlocks.
type LockedError struct{ Until time.Time }

// Error describes the lock-out without any secret.
func (e *LockedError) Error() string { return "locked until " + e.Until.UTC().Format(time.RFC3339) }

// which secret an attempt is at.
type secret int

const (
	loginSecret secret = iota
	paySecret
)

func (s *Service) policy(w secret) Lockout {
	if w == paySecret {
		return s.pay
	}
	return s.login
}

func attempts(r *Record, w secret) *Attempts {
	if w == paySecret {
		return &r.Pay
	}
	return &r.Login
}

func lockedErr(w secret, until time.Time) error {
	msg, field := "too many wrong passwords: login is locked, try again later", "password"
	if w == paySecret {
		msg, field = "too many wrong payment passwords: payments are locked, try again later", "pay_password"
	}
	return &paygate.Error{Code: paygate.CodeForbidden, Field: field, Message: msg, Err: &LockedError{Until: until}}
}

// beginAttempt counts an attempt at a secret before it is checked, so that
// concurrent guesses can never check more than MaxFailures secrets per
// window: the attempt counts as a failure until finishAttempt clears it.
// It refuses a locked secret and an inactive customer.
func (s *Service) beginAttempt(ctx context.Context, id string, w secret) (Record, error) {
	var out Record
	pol := s.policy(w)
	err := s.store.InTx(ctx, func(tx Tx) error {
		r, err := tx.LockCustomer(ctx, id)
		if err != nil {
			return err
		}
		if r.Status != StatusActive {
			return paygate.E(paygate.CodeForbidden, "this customer account is %s", strings.ToLower(string(r.Status)))
		}
		now := s.clock.Now().UTC().Truncate(time.Microsecond)
		a := attempts(&r, w)
		if now.Before(a.LockedUntil) {
			return lockedErr(w, a.LockedUntil)
		}
		if !a.LockedUntil.IsZero() || a.WindowStart.IsZero() || now.Sub(a.WindowStart) >= pol.Window {
			*a = Attempts{WindowStart: now}
		}
		a.Failures++
		if a.Failures >= pol.MaxFailures {
			a.LockedUntil = now.Add(pol.Duration)
		}
		r.UpdatedAt = now
		out = r
		return tx.UpdateCustomer(ctx, r)
	})
	return out, err
}

// finishAttempt clears the failure count after a right secret.
func (s *Service) finishAttempt(ctx context.Context, id string, w secret, update func(*Record) error) (Record, error) {
	var out Record
	err := s.store.InTx(ctx, func(tx Tx) error {
		r, err := tx.LockCustomer(ctx, id)
		if err != nil {
			return err
		}
		*attempts(&r, w) = Attempts{}
		if update != nil {
			if err := update(&r); err != nil {
				return err
			}
		}
		r.UpdatedAt = s.clock.Now().UTC().Truncate(time.Microsecond)
		out = r
		return tx.UpdateCustomer(ctx, r)
	})
	return out, err
}

// wrongSecret is the refusal of a wrong secret, telling how many tries are
// left in the window (never which part was wrong).
func (s *Service) wrongSecret(w secret, r Record) error {
	a, pol := attempts(&r, w), s.policy(w)
	if !a.LockedUntil.IsZero() {
		return lockedErr(w, a.LockedUntil)
	}
	left := pol.MaxFailures - a.Failures
	tries := "tries"
	if left == 1 {
		tries = "try"
	}
	if w == paySecret {
		return paygate.EField(paygate.CodeUnauthenticated, "pay_password", "wrong payment password, %d %s left", left, tries)
	}
	return paygate.EField(paygate.CodeUnauthenticated, "password", "wrong login or password, %d %s left", left, tries)
}

// check runs one counted attempt at a secret: it begins the attempt, checks
// the secret against the hash (outside any transaction, argon2id being
// slow), and on success clears the count and applies update in the same
// transaction.
func (s *Service) check(ctx context.Context, id string, w secret, given string, update func(*Record) error) (Record, error) {
	r, err := s.beginAttempt(ctx, id, w)
	if err != nil {
		return Record{}, err
	}
	hash := r.PasswordHash
	if w == paySecret {
		hash = r.PayPasswordHash
	}
	if !s.matches(given, hash) {
		return Record{}, s.wrongSecret(w, r)
	}
	return s.finishAttempt(ctx, id, w, update)
}

// Login checks a login (phone or username) and password. After
// LoginLockout.MaxFailures wrong passwords within its window the login is
// locked for its duration, even for the right password. Passwords are
// compared in constant time, and an unknown login costs the same hashing
// as a known one. Errors: CodeUnauthenticated (unknown login or wrong
// password: the same message), CodeForbidden (locked, with a *LockedError
// cause; or the customer is frozen or closed).
func (s *Service) Login(ctx context.Context, login, password string) (Customer, error) {
	key := strings.ToLower(strings.TrimSpace(login))
	if p, err := ParsePhone(login); err == nil {
		key = p
	}
	r, err := s.store.CustomerByLogin(ctx, key)
	if paygate.HasCode(err, paygate.CodeNotFound) {
		s.matches(password, s.dummy)
		return Customer{}, paygate.EField(paygate.CodeUnauthenticated, "password", "wrong login or password")
	}
	if err != nil {
		return Customer{}, err
	}
	r, err = s.check(ctx, r.ID, loginSecret, password, nil)
	if err != nil {
		return Customer{}, err
	}
	return r.public(), nil
}

// CustomerByPhone finds the customer registered with the mobile phone
// number (a returning quick-pay payer names their phone and a bound card's
// last four digits; the one-time code then goes to the card's phone).
// Errors: CodeInvalidArgument (not a mainland mobile number), CodeNotFound.
func (s *Service) CustomerByPhone(ctx context.Context, phone string) (Customer, error) {
	p, err := ParsePhone(phone)
	if err != nil {
		return Customer{}, err
	}
	r, err := s.store.CustomerByLogin(ctx, p)
	if err != nil {
		return Customer{}, err
	}
	return r.public(), nil
}

// ChangePassword replaces the login password after checking the old one
// (a counted attempt, as in Login). Errors: CodeInvalidArgument (the new
// password breaks the rules), CodeUnauthenticated, CodeForbidden,
// CodeNotFound.
func (s *Service) ChangePassword(ctx context.Context, id, old, new string) error {
	if err := checkPassword("new_password", new); err != nil {
		return err
	}
	h := s.hashOf(new)
	_, err := s.check(ctx, id, loginSecret, old, func(r *Record) error { r.PasswordHash = h; return nil })
	return err
}

// checkPIN enforces the payment password rules: exactly six ASCII digits,
// not all the same and not a straight run (123456, 654321).
func checkPIN(field, p string) error {
	if len(p) != 6 || strings.Trim(p, "0123456789") != "" {
		return paygate.EField(paygate.CodeInvalidArgument, field, "a payment password is 6 digits")
	}
	same, up, down := true, true, true
	for i := 1; i < 6; i++ {
		same = same && p[i] == p[0]
		up = up && p[i] == p[i-1]+1
		down = down && p[i] == p[i-1]-1
	}
	if same || up || down {
		return paygate.EField(paygate.CodeInvalidArgument, field, "a payment password must not be one digit repeated or a run of digits")
	}
	return nil
}

// SetPayPassword sets (or resets) the 6-digit payment password after
// checking the login password (a counted login attempt). The payment
// password is hashed with argon2id and its lock-out is cleared. Errors:
// CodeInvalidArgument (not 6 digits, repeated or a run),
// CodeUnauthenticated, CodeForbidden, CodeNotFound.
func (s *Service) SetPayPassword(ctx context.Context, id, loginPassword, pin string) (Customer, error) {
	if err := checkPIN("pay_password", pin); err != nil {
		return Customer{}, err
	}
	h := s.hashOf(pin)
	r, err := s.check(ctx, id, loginSecret, loginPassword, func(r *Record) error {
		r.PayPasswordHash, r.Pay = h, Attempts{}
		return nil
	})
	if err != nil {
		return Customer{}, err
	}
	return r.public(), nil
}

// VerifyPayPassword checks the customer's payment password. After
// PayLockout.MaxFailures wrong tries within its window, payments by
// password are locked for its duration (independently of the login
// lock-out). Errors: CodeConflict (no payment password set, field
// "pay_password"), CodeUnauthenticated (wrong; the message tells the
// tries left), CodeForbidden (locked, with a *LockedError cause; or the
// customer is not active), CodeNotFound.
func (s *Service) VerifyPayPassword(ctx context.Context, id, pin string) error {
	r, err := s.store.Customer(ctx, id)
	if err != nil {
		return err
	}
	if r.PayPasswordHash == "" {
		return paygate.EField(paygate.CodeConflict, "pay_password", "no payment password is set")
	}
	_, err = s.check(ctx, id, paySecret, pin, nil)
	return err
}

// identityData is what real-name verification seals.
type identityData struct {
	Name     string `json:"name"`
	IDNumber string `json:"id_number"`
	Phone    string `json:"phone"`
}

func identityAAD(id string) []byte { return []byte("customer:" + id + ":identity") }

// VerifyRealName verifies the customer's name, ID number and phone through
// the Verifier and, when they match, records them (the ID number sealed
// and blind-indexed, masks for display) and adds the real-name and phone
// factors. Errors: CodeInvalidArgument (a malformed field, or the identity
// does not match; the message never says which part), CodeConflict
// (already verified), CodeUnavailable (the service is down; retry),
// CodeNotFound.
func (s *Service) VerifyRealName(ctx context.Context, id string, name, idNumber, phone string) (Customer, error) {
	ident, err := s.parseIdentity(name, idNumber, phone)
	if err != nil {
		return Customer{}, err
	}
	r, err := s.store.Customer(ctx, id)
	if err != nil {
		return Customer{}, err
	}
	if r.Factors.Has(FactorRealName) {
		return Customer{}, paygate.E(paygate.CodeConflict, "the customer is already verified")
	}
	ok, err := s.verifier.VerifyIdentity(ctx, ident)
	if err != nil {
		if paygate.HasCode(err, paygate.CodeUnavailable) {
			return Customer{}, err
		}
		return Customer{}, &paygate.Error{Code: paygate.CodeUnavailable, Message: "the verification service failed; try again", Err: err}
	}
	if !ok {
		s.log.InfoContext(ctx, "real-name verification did not match", "customer", id)
		return Customer{}, paygate.E(paygate.CodeInvalidArgument, "the name, ID number and phone could not be verified together")
	}
	plain, err := json.Marshal(identityData{Name: ident.Name, IDNumber: ident.IDNumber.Value(), Phone: ident.Phone})
	if err != nil {
		return Customer{}, paygate.Internal(err)
	}
	sealed := s.keyring.Seal(plain, identityAAD(id))
	idx := s.index.Token("id", ident.IDNumber.Value())
	var out Record
	err = s.store.InTx(ctx, func(tx Tx) error {
		r, err := tx.LockCustomer(ctx, id)
		if err != nil {
			return err
		}
		if r.Factors.Has(FactorRealName) {
			return paygate.E(paygate.CodeConflict, "the customer is already verified")
		}
		now := s.clock.Now().UTC().Truncate(time.Microsecond)
		r.Identity, r.IDIndex = sealed, idx
		r.NameMasked, r.IDMasked, r.PhoneMasked = MaskName(ident.Name), ident.IDNumber.Masked(), MaskPhone(ident.Phone)
		r.Factors |= FactorRealName | FactorPhone
		r.VerifiedAt, r.UpdatedAt = now, now
		out = r
		return tx.UpdateCustomer(ctx, r)
	})
	if err != nil {
		return Customer{}, err
	}
	s.log.InfoContext(ctx, "customer verified", "customer", id)
	return out.public(), nil
}

// NameMatches reports whether name is the customer's verified real name
// (the whole name, compared after the same normalisation ParseName
// applies; the mask shown elsewhere keeps only its last character, which
// many people share). An unverified customer matches no name. Errors:
// CodeInvalidArgument (a malformed name), CodeNotFound, CodeInternal
// (the sealed identity cannot be opened).
func (s *Service) NameMatches(ctx context.Context, customerID, name string) (bool, error) {
	n, err := ParseName(name)
	if err != nil {
		return false, err
	}
	r, err := s.store.Customer(ctx, customerID)
	if err != nil {
		return false, err
	}
	if !r.Factors.Has(FactorRealName) || r.Identity.Ciphertext == "" {
		return false, nil
	}
	plain, err := s.keyring.Open(r.Identity, identityAAD(r.ID))
	if err != nil {
		return false, paygate.Internal(fmt.Errorf("customer: open the identity: %w", err))
	}
	var d identityData
	if err := json.Unmarshal(plain, &d); err != nil {
		return false, paygate.Internal(fmt.Errorf("customer: read the identity: %w", err))
	}
	return d.Name == n, nil
}

func (s *Service) parseIdentity(name, idNumber, phone string) (Identity, error) {
	n, err := ParseName(name)
	if err != nil {
		return Identity{}, err
	}
	idn, err := ParseIDNumber(idNumber, s.clock.Now())
	if err != nil {
		return Identity{}, err
	}
	p, err := ParsePhone(phone)
	if err != nil {
		return Identity{}, err
	}
	return Identity{Name: n, IDNumber: idn, Phone: p}, nil
}

// update applies fn to the locked customer and stores it.
func (s *Service) update(ctx context.Context, id string, fn func(*Record) error) (Customer, error) {
	var out Record
	err := s.store.InTx(ctx, func(tx Tx) error {
		r, err := tx.LockCustomer(ctx, id)
		if err != nil {
			return err
		}
		if err := fn(&r); err != nil {
			return err
		}
		r.UpdatedAt = s.clock.Now().UTC().Truncate(time.Microsecond)
		out = r
		return tx.UpdateCustomer(ctx, r)
	})
	if err != nil {
		return Customer{}, err
	}
	return out.public(), nil
}

// SetOnlinePayment turns the customer's online payment on or off; while it
// is off, Reserve refuses every payment. Errors: CodeNotFound.
func (s *Service) SetOnlinePayment(ctx context.Context, id string, on bool) (Customer, error) {
	return s.update(ctx, id, func(r *Record) error { r.OnlinePayment = on; return nil })
}

// SetCertificate records that a digital certificate was issued to (on) or
// withdrawn from the customer, adding or removing that factor. Errors:
// CodeNotFound.
func (s *Service) SetCertificate(ctx context.Context, id string, on bool) (Customer, error) {
	return s.update(ctx, id, func(r *Record) error {
		if on {
			r.Factors |= FactorCertificate
		} else {
			r.Factors &^= FactorCertificate
		}
		return nil
	})
}

// SetStatus freezes, unfreezes or closes the customer (an operator's
// action). Errors: CodeInvalidArgument (unknown status), CodeNotFound.
func (s *Service) SetStatus(ctx context.Context, id string, st Status) (Customer, error) {
	if st != StatusActive && st != StatusFrozen && st != StatusClosed {
		return Customer{}, paygate.EField(paygate.CodeInvalidArgument, "status", "status must be ACTIVE, FROZEN or CLOSED")
	}
	return s.update(ctx, id, func(r *Record) error { r.Status = st; return nil })
}

// Balance returns the customer's account balance (available: posted less
// holds) in the limits' currency. Errors: CodeNotFound.
func (s *Service) Balance(ctx context.Context, id string) (paygate.Money, error) {
	if _, err := s.store.Customer(ctx, id); err != nil {
		return paygate.Money{}, err
	}
	return s.available(ctx, ledger.CustomerDeposit(id, s.limits.Currency).ID, s.limits.Currency)
}

func (s *Service) available(ctx context.Context, accountID string, cur paygate.Currency) (paygate.Money, error) {
	as, err := s.books.LookupAccounts(ctx, []string{accountID})
	if err != nil {
		return paygate.Money{}, err
	}
	if len(as) != 1 {
		return paygate.Money{}, paygate.Internal(errors.New("customer: balance account missing"))
	}
	return paygate.Money{Amount: as[0].Available(as[0].Normal), Currency: cur}, nil
}

// BalanceAccount returns the id of the customer's balance account (for
// balance payments' postings).
func (s *Service) BalanceAccount(customerID string) string {
	return ledger.CustomerDeposit(customerID, s.limits.Currency).ID
}
