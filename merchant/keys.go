package merchant

import (
	"context"
	"crypto/rsa"
	"errors"
	"fmt"
	"time"

	"paygate"
	"paygate/signing"
)

// parsePublicKey parses an uploaded public key (PKIX, PKCS #1 or an X.509
// certificate; RSA of at least 2048 bits). Errors: CodeInvalidArgument.
func parsePublicKey(b []byte) (*rsa.PublicKey, error) {
	if len(b) > 16<<10 {
		return nil, paygate.EField(paygate.CodeInvalidArgument, "public_key", "public key PEM is too long")
	}
	pub, err := signing.ParsePublicKeyPEM(b)
	if err != nil {
		return nil, paygate.EField(paygate.CodeInvalidArgument, "public_key", "%s", safeMessage(err))
	}
	if pub.N.BitLen() > 8192 {
		return nil, paygate.EField(paygate.CodeInvalidArgument, "public_key", "RSA keys may have at most 8192 bits")
	}
	return pub, nil
}

// safeMessage is the caller-safe message of err.
func safeMessage(err error) string {
	var pe *paygate.Error
	if errors.As(err, &pe) {
		return pe.Message
	}
	return "invalid value"
}

// GenerateKey generates a new RSA-2048 key pair for the merchant and adds
// its public key, active at once beside the merchant's other keys (for
// rotation without downtime). The private key is returned this once and
// never stored. Errors: CodeNotFound, CodeConflict for a closed merchant,
// CodeLimitExceeded when the merchant has MaxActiveKeys active keys.
func (s *Service) GenerateKey(ctx context.Context, mchid string) (Key, *rsa.PrivateKey, error) {
	priv, err := signing.GenerateKey()
	if err != nil {
		return Key{}, nil, paygate.Internal(fmt.Errorf("merchant: generate key: %w", err))
	}
	k, err := s.addKey(ctx, mchid, &priv.PublicKey, KeyGenerated)
	if err != nil {
		return Key{}, nil, err
	}
	return k, priv, nil
}

// AddPublicKey adds the merchant's own RSA public key (PEM: PKIX, PKCS #1
// or an X.509 certificate; at least 2048 bits), active at once. Its serial
// is derived from the key (signing.SerialNo). Errors: CodeInvalidArgument
// for a bad key, CodeNotFound, CodeConflict for a closed merchant or a key
// the merchant already has, CodeLimitExceeded as for GenerateKey.
func (s *Service) AddPublicKey(ctx context.Context, mchid string, publicKeyPEM []byte) (Key, error) {
	pub, err := parsePublicKey(publicKeyPEM)
	if err != nil {
		return Key{}, err
	}
	return s.addKey(ctx, mchid, pub, KeyUploaded)
}

func (s *Service) addKey(ctx context.Context, mchid string, pub *rsa.PublicKey, source KeySource) (Key, error) {
	if !validID(mchid) {
		return Key{}, paygate.E(paygate.CodeNotFound, "no such merchant")
	}
	k := Key{MerchantID: mchid, SerialNo: signing.SerialNo(pub), PublicKeyPEM: string(signing.PublicKeyPEM(pub)),
		Source: source, CreatedAt: s.now()}
	err := s.store.InTx(ctx, func(tx Tx) error {
		r, err := tx.LockMerchant(ctx, mchid)
		if err != nil {
			return err
		}
		if r.Merchant.Status == paygate.MerchantClosed {
			return paygate.E(paygate.CodeConflict, "the merchant is closed")
		}
		n, err := tx.CountActiveMerchantKeys(ctx, mchid)
		if err != nil {
			return err
		}
		if n >= s.maxKeys {
			return paygate.E(paygate.CodeLimitExceeded, "a merchant may have at most %d active keys; revoke one first", s.maxKeys)
		}
		ok, err := tx.InsertMerchantKey(ctx, k)
		if err != nil {
			return err
		}
		if !ok {
			return paygate.EField(paygate.CodeConflict, "public_key", "the merchant already has this key (it may be revoked; revoked keys cannot return)")
		}
		return nil
	})
	if err != nil {
		return Key{}, fmt.Errorf("merchant: add key: %w", err)
	}
	s.log.Info("merchant key added", "mchid", mchid, "serial_no", k.SerialNo, "key_source", source)
	return k, nil
}

// RevokeKey revokes the merchant's key with the serial. It takes effect on
// the next request in every process: authentication reads key status from
// the database on each request. Errors: CodeNotFound when the merchant has
// no active key with that serial.
func (s *Service) RevokeKey(ctx context.Context, mchid, serialNo string) error {
	if !validID(mchid) {
		return paygate.E(paygate.CodeNotFound, "no such merchant")
	}
	var ok bool
	err := s.store.InTx(ctx, func(tx Tx) error {
		var err error
		ok, err = tx.RevokeMerchantKey(ctx, mchid, serialNo, s.now())
		return err
	})
	if err != nil {
		return fmt.Errorf("merchant: revoke key: %w", err)
	}
	if !ok {
		return paygate.EField(paygate.CodeNotFound, "serial_no", "the merchant has no active key with that serial")
	}
	s.log.Info("merchant key revoked", "mchid", mchid, "serial_no", serialNo)
	return nil
}

// Keys lists the merchant's keys, revoked ones included, oldest first.
// Errors: CodeNotFound for an unknown merchant.
func (s *Service) Keys(ctx context.Context, mchid string) ([]Key, error) {
	if _, err := s.Get(ctx, mchid); err != nil {
		return nil, err
	}
	ks, err := s.store.MerchantKeys(ctx, mchid)
	if err != nil {
		return nil, fmt.Errorf("merchant: keys: %w", err)
	}
	return ks, nil
}

// APIv3Key returns the merchant's APIv3 key (a secret: never log it).
// Errors: CodeNotFound; CodeInternal when it cannot be unsealed (wrong
// master key).
func (s *Service) APIv3Key(ctx context.Context, mchid string) (string, error) {
	if !validID(mchid) {
		return "", paygate.E(paygate.CodeNotFound, "no such merchant")
	}
	r, err := s.store.Merchant(ctx, mchid)
	if err != nil {
		return "", fmt.Errorf("merchant: APIv3 key: %w", err)
	}
	b, err := s.keyring.Open(r.APIv3Key, apiv3AAD(mchid))
	if err != nil {
		return "", err
	}
	return string(b), nil
}

// RotateAPIv3Key replaces the merchant's APIv3 key with a new one, returned
// this once; notifications are encrypted with it from now on.
// Errors: CodeNotFound.
func (s *Service) RotateAPIv3Key(ctx context.Context, mchid string) (string, error) {
	key := signing.NewAPIv3Key()
	_, err := s.update(ctx, mchid, func(r *Record) error {
		r.APIv3Key = s.keyring.Seal([]byte(key), apiv3AAD(mchid))
		return nil
	})
	if err != nil {
		return "", err
	}
	s.log.Info("merchant APIv3 key rotated", "mchid", mchid)
	return key, nil
}

// ResealSecrets re-encrypts the merchant's APIv3 key under the current
// master key if another key sealed it, and reports whether it did (master
// key rotation). Errors: CodeNotFound, CodeInternal when the old master
// key is missing.
func (s *Service) ResealSecrets(ctx context.Context, mchid string) (bool, error) {
	changed := false
	_, err := s.update(ctx, mchid, func(r *Record) error {
		if r.APIv3Key.KeyID == s.keyring.KeyID() {
			return nil
		}
		b, err := s.keyring.Open(r.APIv3Key, apiv3AAD(mchid))
		if err != nil {
			return err
		}
		r.APIv3Key, changed = s.keyring.Seal(b, apiv3AAD(mchid)), true
		return nil
	})
	return changed, err
}

// errUnknownKey is the one answer for an unknown merchant, an unknown
// serial and a revoked key, so a caller cannot tell them apart.
func errUnknownKey(cause error) error {
	return &paygate.Error{Code: paygate.CodeUnauthenticated,
		Message: "unknown mchid or serial_no, or the key was revoked", Err: cause}
}

// MerchantKey returns the merchant and its active public key with the
// serial, for request authentication (httpapi.Verifier). It reads the
// database on every call (one round trip), so revocations and status
// changes apply to the next request in every process. Errors:
// CodeUnauthenticated for an unknown merchant or serial or a revoked key
// (one message for all three).
func (s *Service) MerchantKey(ctx context.Context, mchid, serialNo string) (paygate.Merchant, *rsa.PublicKey, error) {
	if !validID(mchid) {
		return paygate.Merchant{}, nil, errUnknownKey(fmt.Errorf("mchid %q is malformed", truncate(mchid, 16)))
	}
	m, k, err := s.store.MerchantWithKey(ctx, mchid, serialNo)
	if err != nil {
		if paygate.HasCode(err, paygate.CodeNotFound) {
			return paygate.Merchant{}, nil, errUnknownKey(fmt.Errorf("no key %s for merchant %s", truncate(serialNo, 64), mchid))
		}
		return paygate.Merchant{}, nil, fmt.Errorf("merchant: key: %w", err)
	}
	if !k.Active() {
		return paygate.Merchant{}, nil, errUnknownKey(fmt.Errorf("key %s of merchant %s was revoked at %s", serialNo, mchid, k.RevokedAt.Format(time.RFC3339)))
	}
	pub, err := publicKeys.parse(k.SerialNo, k.PublicKeyPEM)
	if err != nil {
		return paygate.Merchant{}, nil, paygate.Internal(fmt.Errorf("merchant: stored key %s of %s does not parse: %w", serialNo, mchid, err))
	}
	s.known.add(mchid, serialNo, pub)
	return m, pub, nil
}

// KnownKey returns the merchant's public key with the serial when this
// Service has returned it from MerchantKey before, without reading the
// database. It is a hint, not a check: the key may have been revoked since.
// A request whose signature verifies with it goes to UseNonceForKnownKey,
// which checks in the database. The serial is a hash of the key
// (signing.SerialNo, checked when the key is parsed), so the key for a
// (mchid, serial) pair never changes.
func (s *Service) KnownKey(mchid, serialNo string) (*rsa.PublicKey, bool) {
	return s.known.get(mchid, serialNo)
}

// transactStatuses are the statuses whose merchants may call the API
// (paygate.MerchantStatus.CanTransact).
var transactStatuses = func() []paygate.MerchantStatus {
	var out []paygate.MerchantStatus
	for _, st := range []paygate.MerchantStatus{paygate.MerchantSandbox, paygate.MerchantPending, paygate.MerchantLive,
		paygate.MerchantSuspended, paygate.MerchantClosed} {
		if st.CanTransact() {
			out = append(out, st)
		}
	}
	return out
}()

// UseNonceForKnownKey authenticates, in one database round trip, a request
// signed at timestamp whose signature the caller verified with the key
// KnownKey returned: when the key is still unrevoked, the merchant's status
// allows transacting and the merchant has no IP allow-list (so no address
// is refused), it records the nonce (as UseNonce does) and returns the
// merchant as read in that round trip, and true. Otherwise it records
// nothing and returns false, whatever the reason (revoked key, status,
// allow-list, replayed nonce): the caller then authenticates the request
// the full way (MerchantKey, its checks, UseNonce), which says why it is
// refused. The checks are those of the full way, made in the database at
// the moment the nonce is recorded. Errors: the store's.
func (s *Service) UseNonceForKnownKey(ctx context.Context, mchid, serialNo, nonce string, timestamp int64) (paygate.Merchant, bool, error) {
	if !validID(mchid) {
		return paygate.Merchant{}, false, nil
	}
	expires := time.Unix(timestamp, 0).Add(NonceTTL)
	m, used, err := s.store.UseNonceForKey(ctx, mchid, serialNo, nonce, s.now(), expires, transactStatuses)
	if err != nil {
		if paygate.HasCode(err, paygate.CodeNotFound) {
			return paygate.Merchant{}, false, nil
		}
		return paygate.Merchant{}, false, fmt.Errorf("merchant: nonce: %w", err)
	}
	if !used {
		return paygate.Merchant{}, false, nil
	}
	return m, true, nil
}

// NonceTTL is how long a used nonce is remembered after its request's
// timestamp: the timestamp window plus a second of rounding.
const NonceTTL = signing.Window + time.Second

// UseNonce records that the merchant used nonce in a request signed at
// timestamp (Unix seconds), for replay protection across every process
// sharing the database. Call it only after the request's signature
// verified, so nobody can burn another merchant's nonces. One round trip.
// Errors: CodeUnauthenticated when the nonce was already used within the
// window.
func (s *Service) UseNonce(ctx context.Context, mchid, nonce string, timestamp int64) error {
	expires := time.Unix(timestamp, 0).Add(NonceTTL)
	ok, err := s.store.UseNonce(ctx, mchid, nonce, s.now(), expires)
	if err != nil {
		return fmt.Errorf("merchant: nonce: %w", err)
	}
	if !ok {
		return paygate.E(paygate.CodeUnauthenticated, "nonce_str was already used; send a new nonce with every request")
	}
	return nil
}

// DeleteExpiredNonces deletes up to limit nonces whose window has passed
// and returns how many it deleted; a job calls it until it returns less
// than limit.
func (s *Service) DeleteExpiredNonces(ctx context.Context, limit int) (int64, error) {
	if limit <= 0 {
		limit = 1000
	}
	n, err := s.store.DeleteExpiredNonces(ctx, s.now(), limit)
	if err != nil {
		return 0, fmt.Errorf("merchant: delete expired nonces: %w", err)
	}
	return n, nil
}
