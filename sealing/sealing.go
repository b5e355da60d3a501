// Package sealing encrypts secrets at rest and derives blind indexes for
// looking them up. A Keyring seals with AES-256-GCM under a master key named
// by its key id, so keys can rotate; a BlindIndex is an HMAC-SHA256 under a
// separate key, so equal values can be found without decrypting anything.
// Nothing in this package logs, and no error carries a secret.
package sealing

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/hkdf"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"strings"

	"paygate"
)

// MasterKeySize is the size of a master key: AES-256.
const MasterKeySize = 32

// Sealed is a secret encrypted at rest: AES-256-GCM under the master key
// KeyID names, Ciphertext being base64(12-byte nonce || ciphertext || tag).
type Sealed struct {
	KeyID      string
	Ciphertext string
}

// Keyring holds the master keys that seal secrets at rest. The first key
// seals; every key opens, so a master key can rotate: put the new key first
// and keep the old one until every row is resealed. A Keyring is safe for
// concurrent use.
type Keyring struct {
	current string
	aeads   map[string]cipher.AEAD
	masters [][]byte // in order, the sealing key first; only for DeriveKeys
}

// NewKeyring returns a Keyring of the given 32-byte keys, the first sealing.
// Errors: CodeInvalidArgument for no key or a key of the wrong size.
func NewKeyring(keys ...[]byte) (*Keyring, error) {
	if len(keys) == 0 {
		return nil, paygate.E(paygate.CodeInvalidArgument, "a master key is required")
	}
	k := &Keyring{aeads: map[string]cipher.AEAD{}}
	for i, key := range keys {
		if len(key) != MasterKeySize {
			return nil, paygate.E(paygate.CodeInvalidArgument, "a master key must be %d bytes, key %d has %d", MasterKeySize, i+1, len(key))
		}
		block, err := aes.NewCipher(key)
		if err != nil {
			return nil, paygate.Internal(fmt.Errorf("sealing: master key: %w", err))
		}
		gcm, err := cipher.NewGCM(block)
		if err != nil {
			return nil, paygate.Internal(fmt.Errorf("sealing: master key: %w", err))
		}
		id := MasterKeyID(key)
		if i == 0 {
			k.current = id
		}
		k.aeads[id] = gcm
		k.masters = append(k.masters, append([]byte(nil), key...))
	}
	return k, nil
}

// DeriveKeys returns, for each master key (the sealing one first), a 32-byte
// key derived from it with HKDF-SHA256 for purpose. Subsystems that need a
// secret of their own (OTP HMACs, SMS sealing, CSRF tokens) derive it, so
// every process holding the same master keys agrees without configuring
// another secret, and rotating the master key rotates them too (the old
// derived keys still verify while the old master key is listed).
func (k *Keyring) DeriveKeys(purpose string) [][]byte {
	out := make([][]byte, len(k.masters))
	for i, m := range k.masters {
		d, err := hkdf.Key(sha256.New, m, nil, "paygate/"+purpose, MasterKeySize)
		if err != nil {
			panic(err) // only for lengths HKDF-SHA256 cannot produce; 32 it can
		}
		out[i] = d
	}
	return out
}

// ParseKeyring parses the PAYGATE_MASTER_KEY format: one or more standard
// base64 encodings of 32-byte keys separated by commas, the first sealing.
// Errors: CodeInvalidArgument, never echoing the value.
func ParseKeyring(s string) (*Keyring, error) {
	var keys [][]byte
	for i, part := range strings.Split(s, ",") {
		b, err := base64.StdEncoding.DecodeString(strings.TrimSpace(part))
		if err != nil {
			return nil, paygate.E(paygate.CodeInvalidArgument, "master key %d is not standard base64", i+1)
		}
		keys = append(keys, b)
	}
	return NewKeyring(keys...)
}

// NewMasterKey returns a random 32-byte master key, base64-encoded.
func NewMasterKey() string {
	b := make([]byte, MasterKeySize)
	rand.Read(b)
	return base64.StdEncoding.EncodeToString(b)
}

// MasterKeyID returns the public id of a master key: 16 hex digits of a
// domain-separated SHA-256 of it. It identifies the key without revealing it.
func MasterKeyID(key []byte) string {
	h := sha256.Sum256(append([]byte("paygate master key id\x00"), key...))
	return hex.EncodeToString(h[:8])
}

// KeyID returns the id of the key that seals.
func (k *Keyring) KeyID() string { return k.current }

// Seal encrypts plaintext under the current master key, binding it to aad
// (the row it belongs to), so a ciphertext moved to another row does not open.
func (k *Keyring) Seal(plaintext, aad []byte) Sealed {
	gcm := k.aeads[k.current]
	nonce := make([]byte, gcm.NonceSize(), gcm.NonceSize()+len(plaintext)+gcm.Overhead())
	rand.Read(nonce)
	out := gcm.Seal(nonce, nonce, plaintext, aad)
	return Sealed{KeyID: k.current, Ciphertext: base64.StdEncoding.EncodeToString(out)}
}

// Open decrypts s sealed with aad. Errors: CodeInternal (logged, never
// shown) when the master key s names is not in the ring, or the ciphertext
// is corrupt or belongs to another row.
func (k *Keyring) Open(s Sealed, aad []byte) ([]byte, error) {
	gcm, ok := k.aeads[s.KeyID]
	if !ok {
		return nil, paygate.Internal(fmt.Errorf("sealing: secret sealed with master key id %s, which is not configured "+
			"(this process has %s; set PAYGATE_MASTER_KEY to include the key that sealed it)", s.KeyID, k.current))
	}
	b, err := base64.StdEncoding.DecodeString(s.Ciphertext)
	if err != nil || len(b) < gcm.NonceSize()+gcm.Overhead() {
		return nil, paygate.Internal(fmt.Errorf("sealing: sealed secret is malformed"))
	}
	n := gcm.NonceSize()
	pt, err := gcm.Open(nil, b[:n], b[n:], aad)
	if err != nil {
		return nil, paygate.Internal(fmt.Errorf("sealing: sealed secret does not open under master key %s: %w", s.KeyID, err))
	}
	return pt, nil
}

// MinIndexKeySize is the smallest key a BlindIndex accepts.
const MinIndexKeySize = 32

// BlindIndex derives deterministic look-up tokens from secret values with
// HMAC-SHA256 under its own key (never a master key), so that a stored
// value can be found by equality without being decryptable from the token.
// It is safe for concurrent use.
type BlindIndex struct{ key []byte }

// NewBlindIndex returns a BlindIndex under key. Errors: CodeInvalidArgument
// for a key shorter than MinIndexKeySize.
func NewBlindIndex(key []byte) (*BlindIndex, error) {
	if len(key) < MinIndexKeySize {
		return nil, paygate.E(paygate.CodeInvalidArgument, "a blind index key must be at least %d bytes", MinIndexKeySize)
	}
	return &BlindIndex{key: append([]byte(nil), key...)}, nil
}

// Token returns the hex HMAC-SHA256 of value in domain (such as "pan" or
// "id"), so equal values in different domains never share a token.
func (b *BlindIndex) Token(domain string, value ...string) string {
	m := hmac.New(sha256.New, b.key)
	m.Write([]byte(domain))
	for _, v := range value {
		m.Write([]byte{0})
		m.Write([]byte(v))
	}
	return hex.EncodeToString(m.Sum(nil))
}

// Equal compares two tokens in constant time.
func Equal(a, b string) bool { return hmac.Equal([]byte(a), []byte(b)) }
