// Package merchant manages merchants and their credentials: the merchant
// record (status, settlement currency, fee rate, notify hosts, IP
// allow-list, sub-merchants), the merchants' request-signing public keys
// (generated or uploaded, several active at once, revocation effective at
// once), each merchant's 32-byte APIv3 key, and the platform's own signing
// keys. Secrets are sealed at rest with AES-256-GCM under a master key
// (Keyring); no method logs or returns a secret except the ones whose job it
// is (Create, GenerateKey, APIv3Key, RotateAPIv3Key, NotificationKeys,
// SigningKey).
//
// Service implements the interfaces other packages declare: payment's
// Merchants (Merchant), notify's Keys (NotificationKeys), and httpapi's
// request Verifier (MerchantKey, UseNonce) and response PlatformSigner
// (SigningKey, Now).
package merchant

import (
	"context"
	"crypto/rand"
	"crypto/rsa"
	"errors"
	"fmt"
	"log/slog"
	"math/big"
	"net/netip"
	"strings"
	"sync"
	"sync/atomic"
	"time"
	"unicode"
	"unicode/utf8"

	"paygate"
	"paygate/signing"
)

// Limits and defaults.
const (
	DefaultFeeRateBps          = 60                       // 0.60%
	DefaultCurrency            = paygate.Currency("CNY")  // settlement currency unless asked otherwise
	DefaultMaxActiveKeys       = 5                        // active request-signing keys per merchant
	DefaultPlatformKeyLifetime = 5 * 365 * 24 * time.Hour // validity of a new platform key
	DefaultPlatformKeyCacheTTL = time.Minute              // how long a process trusts its copy of the platform keys
	// PlatformKeyGrace is how long a platform key stays listed (and valid)
	// after its successor takes over.
	PlatformKeyGrace = 24 * time.Hour
	MaxNameLength    = 128 // characters
	MaxIPAllowList   = 50
	MaxNotifyHosts   = 20
	MaxFeeRateBps    = 10_000
	idDigits         = 10
	idAttempts       = 8
)

// Config configures a Service. Store, Clock and Keyring are required.
type Config struct {
	Store   Store
	Clock   paygate.Clock
	Keyring *Keyring
	Logger  *slog.Logger // nil: slog.Default()
	// PlatformKeyLifetime is the validity of a new platform key
	// (DefaultPlatformKeyLifetime).
	PlatformKeyLifetime time.Duration
	// PlatformKeyCacheTTL bounds how long SigningKey uses its in-memory
	// copy of the platform keys before reading them again
	// (DefaultPlatformKeyCacheTTL). Another process's rotation is seen
	// within it; schedule rotations at least this far ahead.
	PlatformKeyCacheTTL time.Duration
	// MaxActiveKeys caps a merchant's active keys (DefaultMaxActiveKeys).
	MaxActiveKeys int
}

// Service is the merchant use case. It is safe for concurrent use.
type Service struct {
	store    Store
	clock    paygate.Clock
	keyring  *Keyring
	log      *slog.Logger
	lifetime time.Duration
	cacheTTL time.Duration
	maxKeys  int

	platformMu sync.Mutex // serialises reloads of platform
	platform   atomic.Pointer[platformSnapshot]
	known      knownKeys // (mchid, serial) → key, for KnownKey
}

// New returns a Service. Errors: CodeInvalidArgument for a missing
// dependency or a negative setting.
func New(cfg Config) (*Service, error) {
	if cfg.Store == nil || cfg.Clock == nil || cfg.Keyring == nil {
		return nil, paygate.E(paygate.CodeInvalidArgument, "merchant: Store, Clock and Keyring are required")
	}
	if cfg.PlatformKeyLifetime < 0 || cfg.PlatformKeyCacheTTL < 0 || cfg.MaxActiveKeys < 0 {
		return nil, paygate.E(paygate.CodeInvalidArgument, "merchant: settings must not be negative")
	}
	s := &Service{store: cfg.Store, clock: cfg.Clock, keyring: cfg.Keyring, log: cfg.Logger,
		lifetime: cfg.PlatformKeyLifetime, cacheTTL: cfg.PlatformKeyCacheTTL, maxKeys: cfg.MaxActiveKeys}
	if s.log == nil {
		s.log = slog.Default()
	}
	if s.lifetime == 0 {
		s.lifetime = DefaultPlatformKeyLifetime
	}
	if s.cacheTTL == 0 {
		s.cacheTTL = DefaultPlatformKeyCacheTTL
	}
	if s.maxKeys == 0 {
		s.maxKeys = DefaultMaxActiveKeys
	}
	return s, nil
}

// Now returns the Service's clock time (the time responses are signed at).
func (s *Service) Now() time.Time { return s.clock.Now() }

// CreateRequest describes a new merchant.
type CreateRequest struct {
	Name string
	// ParentID makes the merchant a sub-merchant of that platform merchant,
	// which must exist, not be closed, and not be a sub-merchant itself.
	ParentID string
	// Sandbox creates the merchant in SANDBOX; otherwise it starts in
	// PENDING_REVIEW and may not transact until an operator sets it LIVE.
	Sandbox bool
	// SettlementCurrency defaults to DefaultCurrency.
	SettlementCurrency paygate.Currency
	// FeeRateBps is the platform fee in basis points, 0 to 10000; nil means
	// DefaultFeeRateBps.
	FeeRateBps  *int64
	NotifyHosts []string
	IPAllowList []string
	// PublicKeyPEM, when set, is the merchant's own RSA public key (at
	// least 2048 bits) and no key pair is generated.
	PublicKeyPEM []byte
}

// Created is the result of Create: the merchant, its first key, and the
// secrets that are shown this once. PrivateKey is nil when the merchant
// uploaded its public key.
type Created struct {
	Merchant   paygate.Merchant
	Key        Key
	PrivateKey *rsa.PrivateKey
	APIv3Key   string
}

// Create creates a merchant with a fresh numeric mchid, its first
// request-signing key (generated, or the uploaded PublicKeyPEM) and a new
// APIv3 key, in one transaction. The private key and APIv3 key are returned
// once and only their public half / sealed form is stored. Errors:
// CodeInvalidArgument or CodeUnknownCurrency for bad input (with the
// field), CodeNotFound for an unknown parent, CodeConflict for a parent
// that cannot have sub-merchants.
func (s *Service) Create(ctx context.Context, req CreateRequest) (Created, error) {
	m, err := s.validateCreate(req)
	if err != nil {
		return Created{}, err
	}
	var out Created
	var pub *rsa.PublicKey
	source := KeyGenerated
	if len(req.PublicKeyPEM) > 0 {
		if pub, err = parsePublicKey(req.PublicKeyPEM); err != nil {
			return Created{}, err
		}
		source = KeyUploaded
	} else {
		if out.PrivateKey, err = signing.GenerateKey(); err != nil {
			return Created{}, paygate.Internal(fmt.Errorf("merchant: generate key: %w", err))
		}
		pub = &out.PrivateKey.PublicKey
	}
	out.APIv3Key = signing.NewAPIv3Key()
	now := s.now()
	m.CreatedAt = now
	for attempt := 0; ; attempt++ {
		m.ID = newMerchantID()
		rec := Record{Merchant: m, APIv3Key: s.keyring.Seal([]byte(out.APIv3Key), apiv3AAD(m.ID)), UpdatedAt: now}
		key := Key{MerchantID: m.ID, SerialNo: signing.SerialNo(pub), PublicKeyPEM: string(signing.PublicKeyPEM(pub)),
			Source: source, CreatedAt: now}
		inserted := false
		err = s.store.InTx(ctx, func(tx Tx) error {
			if m.ParentID != "" {
				parent, err := tx.LockMerchant(ctx, m.ParentID)
				if err != nil {
					if paygate.HasCode(err, paygate.CodeNotFound) {
						return paygate.EField(paygate.CodeNotFound, "parent_mchid", "no such parent merchant")
					}
					return err
				}
				if parent.Merchant.ParentID != "" {
					return paygate.EField(paygate.CodeConflict, "parent_mchid", "a sub-merchant cannot have sub-merchants")
				}
				if parent.Merchant.Status == paygate.MerchantClosed {
					return paygate.EField(paygate.CodeConflict, "parent_mchid", "the parent merchant is closed")
				}
			}
			var err error
			if inserted, err = tx.InsertMerchant(ctx, rec); err != nil || !inserted {
				return err
			}
			if ok, err := tx.InsertMerchantKey(ctx, key); err != nil {
				return err
			} else if !ok {
				return paygate.Internal(errors.New("merchant: the new merchant already has a key"))
			}
			return nil
		})
		if err != nil {
			return Created{}, fmt.Errorf("merchant: create: %w", err)
		}
		if inserted {
			out.Merchant, out.Key = m, key
			s.log.Info("merchant created", "mchid", m.ID, "status", m.Status, "serial_no", key.SerialNo, "key_source", source)
			return out, nil
		}
		if attempt+1 >= idAttempts {
			return Created{}, paygate.Internal(errors.New("merchant: no free mchid after several attempts"))
		}
	}
}

func (s *Service) validateCreate(req CreateRequest) (paygate.Merchant, error) {
	m := paygate.Merchant{ParentID: req.ParentID, Status: paygate.MerchantPending, SettlementCurrency: req.SettlementCurrency,
		FeeRateBps: DefaultFeeRateBps}
	if req.Sandbox {
		m.Status = paygate.MerchantSandbox
	}
	var err error
	if m.Name, err = validName(req.Name); err != nil {
		return m, err
	}
	if m.ParentID != "" && !validID(m.ParentID) {
		return m, paygate.EField(paygate.CodeInvalidArgument, "parent_mchid", "parent_mchid must be %d digits", idDigits)
	}
	if m.SettlementCurrency == "" {
		m.SettlementCurrency = DefaultCurrency
	}
	if !m.SettlementCurrency.Valid() {
		return m, paygate.EField(paygate.CodeUnknownCurrency, "settlement_currency", "unknown currency %q", string(m.SettlementCurrency))
	}
	if req.FeeRateBps != nil {
		if m.FeeRateBps, err = validFee(*req.FeeRateBps); err != nil {
			return m, err
		}
	}
	if m.NotifyHosts, err = validNotifyHosts(req.NotifyHosts); err != nil {
		return m, err
	}
	if m.IPAllowList, err = validIPAllowList(req.IPAllowList); err != nil {
		return m, err
	}
	return m, nil
}

// Get returns the merchant. Errors: CodeNotFound.
func (s *Service) Get(ctx context.Context, id string) (paygate.Merchant, error) {
	if !validID(id) {
		return paygate.Merchant{}, paygate.E(paygate.CodeNotFound, "no such merchant")
	}
	r, err := s.store.Merchant(ctx, id)
	if err != nil {
		return paygate.Merchant{}, fmt.Errorf("merchant: get: %w", err)
	}
	return r.Merchant, nil
}

// Merchant returns the merchant; it implements payment.Merchants. It reads
// the database every time, so a status change takes effect at once, except
// within a request that authenticated as that merchant (ctx from
// WithAuthenticated): there it returns the merchant as authentication read
// it moments before in the same request, instead of reading it again.
// Errors: CodeNotFound.
func (s *Service) Merchant(ctx context.Context, id string) (paygate.Merchant, error) {
	if m, ok := ctx.Value(authenticatedKey{}).(paygate.Merchant); ok && m.ID == id {
		return m, nil
	}
	return s.Get(ctx, id)
}

type authenticatedKey struct{}

// WithAuthenticated returns ctx carrying m, the merchant a request
// authenticated as, as request authentication read it from the database
// (httpapi's middleware calls it once the request's signature, the
// merchant's status and the nonce are checked). Merchant then answers from
// it for that merchant for the rest of the request: the use cases it calls
// need not read the same row again.
func WithAuthenticated(ctx context.Context, m paygate.Merchant) context.Context {
	return context.WithValue(ctx, authenticatedKey{}, m)
}

// HasMerchants reports whether any merchant exists.
func (s *Service) HasMerchants(ctx context.Context) (bool, error) { return s.store.HasMerchants(ctx) }

// CanChangeStatus reports whether a merchant may go from status from to
// status to, wentLive telling whether it was ever LIVE. The rules:
//
//	SANDBOX        -> PENDING_REVIEW, SUSPENDED, CLOSED
//	PENDING_REVIEW -> LIVE, SANDBOX, SUSPENDED, CLOSED
//	LIVE           -> SUSPENDED, CLOSED
//	SUSPENDED      -> LIVE, SANDBOX, PENDING_REVIEW, CLOSED
//	CLOSED         -> (final)
//
// and a merchant that was ever LIVE never returns to SANDBOX, whose
// simulated money must not mix with real money.
func CanChangeStatus(from, to paygate.MerchantStatus, wentLive bool) bool {
	if to == paygate.MerchantSandbox && wentLive {
		return false
	}
	switch from {
	case paygate.MerchantSandbox:
		return to == paygate.MerchantPending || to == paygate.MerchantSuspended || to == paygate.MerchantClosed
	case paygate.MerchantPending:
		return to == paygate.MerchantLive || to == paygate.MerchantSandbox || to == paygate.MerchantSuspended || to == paygate.MerchantClosed
	case paygate.MerchantLive:
		return to == paygate.MerchantSuspended || to == paygate.MerchantClosed
	case paygate.MerchantSuspended:
		return to == paygate.MerchantLive || to == paygate.MerchantSandbox || to == paygate.MerchantPending || to == paygate.MerchantClosed
	}
	return false
}

// ParseStatus validates a merchant status name (upper case).
// Errors: CodeInvalidArgument.
func ParseStatus(s string) (paygate.MerchantStatus, error) {
	switch st := paygate.MerchantStatus(s); st {
	case paygate.MerchantSandbox, paygate.MerchantPending, paygate.MerchantLive, paygate.MerchantSuspended, paygate.MerchantClosed:
		return st, nil
	}
	return "", paygate.EField(paygate.CodeInvalidArgument, "status",
		"status must be SANDBOX, PENDING_REVIEW, LIVE, SUSPENDED or CLOSED")
}

// SetStatus moves the merchant to status (see CanChangeStatus); setting the
// status it has is a no-op. It takes effect on the merchant's next request
// in every process. Errors: CodeNotFound, CodeInvalidArgument for an
// unknown status, CodeConflict for a transition the rules forbid.
func (s *Service) SetStatus(ctx context.Context, id string, status paygate.MerchantStatus) (paygate.Merchant, error) {
	if _, err := ParseStatus(string(status)); err != nil {
		return paygate.Merchant{}, err
	}
	var from paygate.MerchantStatus
	m, err := s.update(ctx, id, func(r *Record) error {
		from = r.Merchant.Status
		if from == status {
			return nil
		}
		if !CanChangeStatus(from, status, !r.LiveSince.IsZero()) {
			return paygate.EField(paygate.CodeConflict, "status", "a %s merchant cannot become %s", from, status)
		}
		r.Merchant.Status = status
		if status == paygate.MerchantLive && r.LiveSince.IsZero() {
			r.LiveSince = s.now()
		}
		return nil
	})
	if err != nil {
		return m, err
	}
	if from != status {
		s.log.Info("merchant status changed", "mchid", id, "from", from, "to", status)
	}
	return m, nil
}

// Update lists the settings Update changes; nil fields stay as they are.
type Update struct {
	Name        *string
	FeeRateBps  *int64
	NotifyHosts *[]string
	IPAllowList *[]string
}

// Update changes the merchant's settings. An IP allow-list change applies
// to the next request. Errors: CodeNotFound, CodeInvalidArgument (with the
// field) for a bad value.
func (s *Service) Update(ctx context.Context, id string, u Update) (paygate.Merchant, error) {
	var err error
	var name string
	var fee int64
	var hosts, ips []string
	if u.Name != nil {
		if name, err = validName(*u.Name); err != nil {
			return paygate.Merchant{}, err
		}
	}
	if u.FeeRateBps != nil {
		if fee, err = validFee(*u.FeeRateBps); err != nil {
			return paygate.Merchant{}, err
		}
	}
	if u.NotifyHosts != nil {
		if hosts, err = validNotifyHosts(*u.NotifyHosts); err != nil {
			return paygate.Merchant{}, err
		}
	}
	if u.IPAllowList != nil {
		if ips, err = validIPAllowList(*u.IPAllowList); err != nil {
			return paygate.Merchant{}, err
		}
	}
	return s.update(ctx, id, func(r *Record) error {
		if u.Name != nil {
			r.Merchant.Name = name
		}
		if u.FeeRateBps != nil {
			r.Merchant.FeeRateBps = fee
		}
		if u.NotifyHosts != nil {
			r.Merchant.NotifyHosts = hosts
		}
		if u.IPAllowList != nil {
			r.Merchant.IPAllowList = ips
		}
		return nil
	})
}

// update locks the merchant, lets change edit it and writes it back.
func (s *Service) update(ctx context.Context, id string, change func(*Record) error) (paygate.Merchant, error) {
	if !validID(id) {
		return paygate.Merchant{}, paygate.E(paygate.CodeNotFound, "no such merchant")
	}
	var out paygate.Merchant
	err := s.store.InTx(ctx, func(tx Tx) error {
		r, err := tx.LockMerchant(ctx, id)
		if err != nil {
			return err
		}
		before := r
		if err := change(&r); err != nil {
			return err
		}
		out = r.Merchant
		if sameRecord(before, r) {
			return nil
		}
		r.UpdatedAt = s.now()
		return tx.UpdateMerchant(ctx, r)
	})
	if err != nil {
		return paygate.Merchant{}, fmt.Errorf("merchant: update: %w", err)
	}
	return out, nil
}

func sameRecord(a, b Record) bool {
	return a.Merchant.Name == b.Merchant.Name && a.Merchant.Status == b.Merchant.Status &&
		a.Merchant.FeeRateBps == b.Merchant.FeeRateBps && strings.Join(a.Merchant.NotifyHosts, ",") == strings.Join(b.Merchant.NotifyHosts, ",") &&
		strings.Join(a.Merchant.IPAllowList, ",") == strings.Join(b.Merchant.IPAllowList, ",") &&
		a.APIv3Key == b.APIv3Key && a.LiveSince.Equal(b.LiveSince)
}

// now is the clock's time at the stores' precision (microseconds, UTC).
func (s *Service) now() time.Time { return s.clock.Now().UTC().Truncate(time.Microsecond) }

// newMerchantID returns a random 10-digit mchid not starting with 0.
func newMerchantID() string {
	lo := int64(1_000_000_000)
	n, err := rand.Int(rand.Reader, big.NewInt(9*lo))
	if err != nil {
		panic(err) // crypto/rand never fails on supported platforms
	}
	return fmt.Sprint(lo + n.Int64())
}

// ValidID reports whether id has the form of an mchid: 10 digits, the
// first not 0.
func ValidID(id string) bool { return validID(id) }

func validID(id string) bool {
	if len(id) != idDigits || id[0] == '0' {
		return false
	}
	for i := 0; i < len(id); i++ {
		if id[i] < '0' || id[i] > '9' {
			return false
		}
	}
	return true
}

func validName(name string) (string, error) {
	name = strings.TrimSpace(name)
	n := utf8.RuneCountInString(name)
	if n == 0 || n > MaxNameLength || !utf8.ValidString(name) {
		return "", paygate.EField(paygate.CodeInvalidArgument, "name", "name must be 1 to %d characters", MaxNameLength)
	}
	for _, r := range name {
		if unicode.IsControl(r) {
			return "", paygate.EField(paygate.CodeInvalidArgument, "name", "name must not contain control characters")
		}
	}
	return name, nil
}

func validFee(bps int64) (int64, error) {
	if bps < 0 || bps > MaxFeeRateBps {
		return 0, paygate.EField(paygate.CodeInvalidArgument, "fee_rate_bps", "fee_rate_bps must be 0 to %d", MaxFeeRateBps)
	}
	return bps, nil
}

// validNotifyHosts lower-cases host names and checks them: letters,
// digits, '-' and '.', optionally a leading "*." for any subdomain.
func validNotifyHosts(hosts []string) ([]string, error) {
	if len(hosts) > MaxNotifyHosts {
		return nil, paygate.EField(paygate.CodeInvalidArgument, "notify_hosts", "at most %d notify hosts", MaxNotifyHosts)
	}
	var out []string
	for _, h := range hosts {
		h = strings.ToLower(strings.TrimSpace(h))
		name := strings.TrimPrefix(h, "*.")
		ok := len(name) > 0 && len(name) <= 253 && name[0] != '.' && name[len(name)-1] != '.' && name[0] != '-'
		for i := 0; ok && i < len(name); i++ {
			c := name[i]
			ok = c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-' || c == '.'
		}
		if !ok || strings.Contains(name, "..") {
			return nil, paygate.EField(paygate.CodeInvalidArgument, "notify_hosts", "%q is not a host name", truncate(h, 64))
		}
		out = append(out, h)
	}
	return out, nil
}

// validIPAllowList normalises addresses and CIDRs to canonical prefixes
// ("203.0.113.7/32", "2001:db8::/32").
func validIPAllowList(list []string) ([]string, error) {
	if len(list) > MaxIPAllowList {
		return nil, paygate.EField(paygate.CodeInvalidArgument, "ip_allow_list", "at most %d entries", MaxIPAllowList)
	}
	var out []string
	for _, e := range list {
		p, err := ParseAllowEntry(strings.TrimSpace(e))
		if err != nil {
			return nil, err
		}
		out = append(out, p.String())
	}
	return out, nil
}

// ParseAllowEntry parses an IP allow-list entry, an address or a CIDR, into
// a masked prefix (IPv4-mapped IPv6 addresses become IPv4).
// Errors: CodeInvalidArgument.
func ParseAllowEntry(e string) (netip.Prefix, error) {
	bad := paygate.EField(paygate.CodeInvalidArgument, "ip_allow_list", "%q is not an IP address or CIDR", truncate(e, 64))
	if strings.Contains(e, "/") {
		p, err := netip.ParsePrefix(e)
		if err != nil {
			return netip.Prefix{}, bad
		}
		if p.Addr().Is4In6() && p.Bits() >= 96 {
			p = netip.PrefixFrom(p.Addr().Unmap(), p.Bits()-96)
		}
		return p.Masked(), nil
	}
	a, err := netip.ParseAddr(e)
	if err != nil || a.Zone() != "" {
		return netip.Prefix{}, bad
	}
	a = a.Unmap()
	return netip.PrefixFrom(a, a.BitLen()), nil
}

// IPAllowed reports whether addr may call the API for m: true when m's
// allow-list is empty or one of its entries contains addr.
func IPAllowed(m paygate.Merchant, addr netip.Addr) bool {
	if len(m.IPAllowList) == 0 {
		return true
	}
	addr = addr.Unmap()
	for _, e := range m.IPAllowList {
		if p, err := ParseAllowEntry(e); err == nil && p.Contains(addr) {
			return true
		}
	}
	return false
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "..."
}

func apiv3AAD(mchid string) []byte { return []byte("paygate/merchant/apiv3/" + mchid) }
