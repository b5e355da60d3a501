package merchant

import (
	"context"
	"crypto/rsa"
	"errors"
	"fmt"
	"sync"
	"time"

	"paygate"
	"paygate/signing"
)

// PlatformKey is one of the platform's public signing keys as published by
// GET /v1/certificates: merchants verify responses and notifications with
// the key whose serial a response's Wechatpay-Serial names.
type PlatformKey struct {
	SerialNo     string    `json:"serial_no"`
	PublicKeyPEM string    `json:"public_key"`
	ValidFrom    time.Time `json:"effective_time"`
	ValidUntil   time.Time `json:"expire_time"`
}

func publicPlatformKey(r PlatformKeyRecord) PlatformKey {
	return PlatformKey{SerialNo: r.SerialNo, PublicKeyPEM: r.PublicKeyPEM, ValidFrom: r.ValidFrom, ValidUntil: r.ValidUntil}
}

func platformAAD(serial string) []byte { return []byte("paygate/platform-key/" + serial) }

// platformSnapshot is a process's copy of the platform keys that are valid
// now or later, private keys unsealed, newest generation first.
type platformSnapshot struct {
	loaded time.Time
	keys   []platformEntry
}

type platformEntry struct {
	rec  PlatformKeyRecord
	priv *rsa.PrivateKey
}

// current returns the newest key valid at now.
func (p *platformSnapshot) current(now time.Time) (platformEntry, bool) {
	for _, e := range p.keys {
		if !now.Before(e.rec.ValidFrom) && now.Before(e.rec.ValidUntil) {
			return e, true
		}
	}
	return platformEntry{}, false
}

// currentRecord returns the newest record valid at now.
func currentRecord(recs []PlatformKeyRecord, now time.Time) (PlatformKeyRecord, bool) {
	for _, r := range recs { // newest generation first
		if !now.Before(r.ValidFrom) && now.Before(r.ValidUntil) {
			return r, true
		}
	}
	return PlatformKeyRecord{}, false
}

// PlatformKeys lists the platform's public keys that are valid now or will
// be (a scheduled successor is published ahead of use), newest first.
func (s *Service) PlatformKeys(ctx context.Context) ([]PlatformKey, error) {
	recs, err := s.store.PlatformKeys(ctx)
	if err != nil {
		return nil, fmt.Errorf("merchant: platform keys: %w", err)
	}
	now := s.now()
	out := []PlatformKey{}
	for _, r := range recs {
		if now.Before(r.ValidUntil) {
			out = append(out, publicPlatformKey(r))
		}
	}
	return out, nil
}

// EnsurePlatformKey returns the platform key valid now, creating one (valid
// from now for the configured lifetime) if there is none. Several processes
// calling it at once create at most one key. Errors: the store's.
func (s *Service) EnsurePlatformKey(ctx context.Context) (PlatformKey, error) {
	recs, err := s.store.PlatformKeys(ctx)
	if err != nil {
		return PlatformKey{}, fmt.Errorf("merchant: platform keys: %w", err)
	}
	if r, ok := currentRecord(recs, s.now()); ok {
		return publicPlatformKey(r), nil
	}
	var next int64 = 1
	if len(recs) > 0 {
		next = recs[0].Generation + 1
	}
	rec, err := s.newPlatformKey(next, s.now())
	if err != nil {
		return PlatformKey{}, err
	}
	var inserted bool
	if err := s.store.InTx(ctx, func(tx Tx) error {
		var err error
		inserted, err = tx.InsertPlatformKey(ctx, rec)
		return err
	}); err != nil {
		return PlatformKey{}, fmt.Errorf("merchant: add platform key: %w", err)
	}
	s.dropPlatformCache()
	if inserted {
		s.log.Info("platform signing key created", "serial_no", rec.SerialNo, "valid_until", rec.ValidUntil)
		return publicPlatformKey(rec), nil
	}
	// Another process got there first: use its key.
	if recs, err = s.store.PlatformKeys(ctx); err != nil {
		return PlatformKey{}, fmt.Errorf("merchant: platform keys: %w", err)
	}
	if r, ok := currentRecord(recs, s.now()); ok {
		return publicPlatformKey(r), nil
	}
	return PlatformKey{}, paygate.E(paygate.CodeUnavailable, "no platform signing key is valid; try again")
}

// RotatePlatformKey adds a new platform key that takes over signing at
// activateAt (now if zero or past) and caps the validity of the older keys
// at activateAt + PlatformKeyGrace. Publish it ahead: schedule activateAt
// at least the cache TTL away so that every process switches at the same
// moment, and merchants can fetch the new key from /v1/certificates first.
// Errors: CodeConflict when another rotation raced this one.
func (s *Service) RotatePlatformKey(ctx context.Context, activateAt time.Time) (PlatformKey, error) {
	now := s.now()
	if activateAt.Before(now) {
		activateAt = now
	}
	activateAt = activateAt.UTC().Truncate(time.Microsecond)
	recs, err := s.store.PlatformKeys(ctx)
	if err != nil {
		return PlatformKey{}, fmt.Errorf("merchant: platform keys: %w", err)
	}
	var next int64 = 1
	if len(recs) > 0 {
		next = recs[0].Generation + 1
	}
	rec, err := s.newPlatformKey(next, activateAt)
	if err != nil {
		return PlatformKey{}, err
	}
	err = s.store.InTx(ctx, func(tx Tx) error {
		ok, err := tx.InsertPlatformKey(ctx, rec)
		if err != nil {
			return err
		}
		if !ok {
			return paygate.E(paygate.CodeConflict, "another platform key rotation happened at the same time; list the keys and retry if needed")
		}
		return tx.CapPlatformKeys(ctx, rec.Generation, activateAt.Add(PlatformKeyGrace))
	})
	if err != nil {
		return PlatformKey{}, fmt.Errorf("merchant: rotate platform key: %w", err)
	}
	s.dropPlatformCache()
	s.log.Info("platform signing key rotated", "serial_no", rec.SerialNo, "active_from", rec.ValidFrom)
	return publicPlatformKey(rec), nil
}

func (s *Service) newPlatformKey(generation int64, from time.Time) (PlatformKeyRecord, error) {
	priv, err := signing.GenerateKey()
	if err != nil {
		return PlatformKeyRecord{}, paygate.Internal(fmt.Errorf("merchant: generate platform key: %w", err))
	}
	serial := signing.SerialNo(&priv.PublicKey)
	return PlatformKeyRecord{
		SerialNo: serial, Generation: generation, PublicKeyPEM: string(signing.PublicKeyPEM(&priv.PublicKey)),
		PrivateKey: s.keyring.Seal(signing.PrivateKeyPEM(priv), platformAAD(serial)),
		ValidFrom:  from, ValidUntil: from.Add(s.lifetime), CreatedAt: s.now(),
	}, nil
}

// SigningKey returns the serial and private key of the platform key that
// signs now (httpapi.PlatformSigner). It serves from an in-memory copy
// refreshed every PlatformKeyCacheTTL, so it costs no database round trip
// on the hot path; when no key is valid it creates one. Errors: the
// store's; CodeInternal when a key cannot be unsealed (wrong master key).
func (s *Service) SigningKey(ctx context.Context) (string, *rsa.PrivateKey, error) {
	now := s.clock.Now()
	snap, err := s.platformKeys(ctx, now, false)
	if err != nil {
		return "", nil, err
	}
	e, ok := snap.current(now)
	if !ok {
		if _, err := s.EnsurePlatformKey(ctx); err != nil {
			return "", nil, err
		}
		if snap, err = s.platformKeys(ctx, now, true); err != nil {
			return "", nil, err
		}
		if e, ok = snap.current(now); !ok {
			return "", nil, paygate.E(paygate.CodeUnavailable, "no platform signing key is valid")
		}
	}
	return e.rec.SerialNo, e.priv, nil
}

// NotificationKeys returns what a notification to the merchant is sealed
// and signed with: its APIv3 key and the current platform signing key
// (notify.Keys). Errors: CodeNotFound for an unknown merchant, else as
// APIv3Key and SigningKey.
func (s *Service) NotificationKeys(ctx context.Context, mchid string) (string, string, *rsa.PrivateKey, error) {
	apiv3, err := s.APIv3Key(ctx, mchid)
	if err != nil {
		return "", "", nil, err
	}
	serial, priv, err := s.SigningKey(ctx)
	if err != nil {
		return "", "", nil, err
	}
	return apiv3, serial, priv, nil
}

// platformKeys returns the cached snapshot, reloading it when it is older
// than the TTL (or force). The fresh path takes no lock; one caller
// reloads while the others wait for it. When the reload fails and a
// snapshot exists, the old one keeps serving (platform keys change rarely
// and on a schedule) and the reload is retried after platformRetry.
func (s *Service) platformKeys(ctx context.Context, now time.Time, force bool) (*platformSnapshot, error) {
	fresh := func(p *platformSnapshot) bool {
		return p != nil && !now.Before(p.loaded) && now.Sub(p.loaded) < s.cacheTTL
	}
	if snap := s.platform.Load(); !force && fresh(snap) {
		return snap, nil
	}
	s.platformMu.Lock()
	defer s.platformMu.Unlock()
	snap := s.platform.Load()
	if !force && fresh(snap) {
		return snap, nil
	}
	next, err := s.loadPlatformKeys(ctx, now, snap)
	if err != nil {
		if snap == nil || force {
			return nil, err
		}
		s.log.Warn("cannot reload the platform keys; signing with the ones loaded before", "error", err)
		stale := &platformSnapshot{loaded: now.Add(platformRetry - s.cacheTTL), keys: snap.keys}
		s.platform.Store(stale)
		return stale, nil
	}
	s.platform.Store(next)
	return next, nil
}

// platformRetry is how soon a failed reload of the platform keys is retried.
const platformRetry = 5 * time.Second

func (s *Service) loadPlatformKeys(ctx context.Context, now time.Time, old *platformSnapshot) (*platformSnapshot, error) {
	recs, err := s.store.PlatformKeys(ctx)
	if err != nil {
		return nil, fmt.Errorf("merchant: platform keys: %w", err)
	}
	next := &platformSnapshot{loaded: now}
	have := map[string]*rsa.PrivateKey{}
	if old != nil {
		for _, e := range old.keys {
			have[e.rec.SerialNo] = e.priv
		}
	}
	for _, r := range recs {
		if !now.Before(r.ValidUntil) {
			continue
		}
		priv := have[r.SerialNo] // unsealing and parsing costs about a millisecond: reuse
		if priv == nil {
			b, err := s.keyring.Open(r.PrivateKey, platformAAD(r.SerialNo))
			if err != nil {
				return nil, err
			}
			if priv, err = signing.ParsePrivateKeyPEM(b); err != nil {
				return nil, paygate.Internal(fmt.Errorf("merchant: platform key %s does not parse: %w", r.SerialNo, err))
			}
			if signing.SerialNo(&priv.PublicKey) != r.SerialNo {
				return nil, paygate.Internal(errors.New("merchant: platform key " + r.SerialNo + " does not match its serial"))
			}
		}
		next.keys = append(next.keys, platformEntry{rec: r, priv: priv})
	}
	return next, nil
}

func (s *Service) dropPlatformCache() { s.platform.Store(nil) }

// publicKeyCache keeps parsed merchant public keys by their PEM text, which
// is immutable, so it can never serve a revoked key: revocation is checked
// in the database on every request before the cache is consulted.
type publicKeyCache struct {
	mu   sync.RWMutex
	keys map[string]*rsa.PublicKey
}

// maxCachedKeys bounds the cache; it is emptied when full.
const maxCachedKeys = 4096

var publicKeys = &publicKeyCache{keys: map[string]*rsa.PublicKey{}}

func (c *publicKeyCache) parse(serial, pemText string) (*rsa.PublicKey, error) {
	c.mu.RLock()
	k := c.keys[pemText]
	c.mu.RUnlock()
	if k != nil {
		return k, nil
	}
	k, err := signing.ParsePublicKeyPEM([]byte(pemText))
	if err != nil {
		return nil, err
	}
	if signing.SerialNo(k) != serial {
		return nil, errors.New("the key does not match its serial")
	}
	c.mu.Lock()
	if len(c.keys) >= maxCachedKeys {
		clear(c.keys)
	}
	c.keys[pemText] = k
	c.mu.Unlock()
	return k, nil
}

// knownKeys maps (mchid, serial) to the parsed public key MerchantKey
// returned for them (Service.KnownKey), bounded like publicKeys.
type knownKeys struct {
	mu   sync.RWMutex
	keys map[string]*rsa.PublicKey
}

func knownKeyID(mchid, serialNo string) string { return mchid + "\x00" + serialNo }

func (c *knownKeys) get(mchid, serialNo string) (*rsa.PublicKey, bool) {
	c.mu.RLock()
	k, ok := c.keys[knownKeyID(mchid, serialNo)]
	c.mu.RUnlock()
	return k, ok
}

func (c *knownKeys) add(mchid, serialNo string, k *rsa.PublicKey) {
	id := knownKeyID(mchid, serialNo)
	c.mu.RLock()
	have := c.keys[id] == k
	c.mu.RUnlock()
	if have {
		return
	}
	c.mu.Lock()
	if c.keys == nil || len(c.keys) >= maxCachedKeys {
		c.keys = map[string]*rsa.PublicKey{}
	}
	c.keys[id] = k
	c.mu.Unlock()
}
