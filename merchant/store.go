package merchant

import (
	"context"
	"time"

	"paygate"
)

// Record is a merchant as stored: the public fields plus its sealed APIv3
// key and when it first went live (zero if never).
type Record struct {
	Merchant  paygate.Merchant
	APIv3Key  Sealed
	LiveSince time.Time
	UpdatedAt time.Time
}

// KeySource tells how paygate got a merchant's public key.
type KeySource string

// Key sources.
const (
	KeyGenerated KeySource = "GENERATED" // paygate generated the pair and handed the private key over once
	KeyUploaded  KeySource = "UPLOADED"  // the merchant uploaded its public key
)

// Key is one of a merchant's request-signing public keys. A key is active
// until RevokedAt is set.
type Key struct {
	MerchantID   string    `json:"mchid"`
	SerialNo     string    `json:"serial_no"`
	PublicKeyPEM string    `json:"public_key"`
	Source       KeySource `json:"source"`
	CreatedAt    time.Time `json:"created_at"`
	RevokedAt    time.Time `json:"revoked_at,omitzero"`
}

// Active reports whether the key may sign requests.
func (k Key) Active() bool { return k.RevokedAt.IsZero() }

// PlatformKeyRecord is one of the platform's signing keys as stored.
// Generation orders keys (the newest valid one signs).
type PlatformKeyRecord struct {
	SerialNo     string
	Generation   int64
	PublicKeyPEM string
	PrivateKey   Sealed
	ValidFrom    time.Time
	ValidUntil   time.Time
	CreatedAt    time.Time
}

// Tx is one transaction of the merchant store. store.Tx implements it.
type Tx interface {
	// InsertMerchant inserts r unless its id is taken, and reports whether
	// it inserted.
	InsertMerchant(ctx context.Context, r Record) (bool, error)
	// LockMerchant reads and locks the merchant (CodeNotFound if absent).
	LockMerchant(ctx context.Context, id string) (Record, error)
	// UpdateMerchant writes r's mutable fields (everything but the id,
	// parent and creation time).
	UpdateMerchant(ctx context.Context, r Record) error
	// CountActiveMerchantKeys counts the merchant's unrevoked keys.
	CountActiveMerchantKeys(ctx context.Context, merchantID string) (int, error)
	// InsertMerchantKey inserts k unless the merchant already has a key
	// with its serial, and reports whether it inserted.
	InsertMerchantKey(ctx context.Context, k Key) (bool, error)
	// RevokeMerchantKey sets revoked_at on the merchant's active key with
	// the serial, and reports whether there was one.
	RevokeMerchantKey(ctx context.Context, merchantID, serialNo string, at time.Time) (bool, error)
	// InsertPlatformKey inserts k unless its generation or serial exists,
	// and reports whether it inserted.
	InsertPlatformKey(ctx context.Context, k PlatformKeyRecord) (bool, error)
	// CapPlatformKeys lowers valid_until to until for every key of a lower
	// generation whose validity ends later.
	CapPlatformKeys(ctx context.Context, belowGeneration int64, until time.Time) error
}

// Store is the merchant package's persistence. store.DB implements it
// (db.Merchants()).
type Store interface {
	// InTx runs fn in one transaction, committing when it returns nil and
	// retrying it on transient conflicts, so fn must have no other effects.
	InTx(ctx context.Context, fn func(Tx) error) error
	// Merchant returns the merchant (CodeNotFound if absent).
	Merchant(ctx context.Context, id string) (Record, error)
	// HasMerchants reports whether any merchant exists.
	HasMerchants(ctx context.Context) (bool, error)
	// MerchantWithKey returns, in one round trip, the merchant and its key
	// with the serial, revoked or not (CodeNotFound if either is absent).
	MerchantWithKey(ctx context.Context, merchantID, serialNo string) (paygate.Merchant, Key, error)
	// MerchantKeys lists the merchant's keys, revoked ones included,
	// oldest first.
	MerchantKeys(ctx context.Context, merchantID string) ([]Key, error)
	// PlatformKeys lists every platform key, newest generation first.
	PlatformKeys(ctx context.Context) ([]PlatformKeyRecord, error)
	// UseNonce records (merchantID, nonce) as used until expires, in one
	// round trip, unless it is recorded already and unexpired at now; it
	// reports whether it recorded it (false: a replay).
	UseNonce(ctx context.Context, merchantID, nonce string, now, expires time.Time) (bool, error)
	// UseNonceForKey is UseNonce for a request signed with the merchant's
	// key with the serial: in one round trip it records the nonce only if
	// that key is unrevoked, the merchant's status is one of statuses and
	// its IP allow-list is empty, and it returns the merchant as read in
	// that round trip and whether it recorded the nonce. CodeNotFound when
	// the merchant has no key with the serial (nothing recorded).
	UseNonceForKey(ctx context.Context, merchantID, serialNo, nonce string, now, expires time.Time,
		statuses []paygate.MerchantStatus) (paygate.Merchant, bool, error)
	// DeleteExpiredNonces deletes up to limit nonces that expired before
	// now and returns how many it deleted.
	DeleteExpiredNonces(ctx context.Context, now time.Time, limit int) (int64, error)
}
