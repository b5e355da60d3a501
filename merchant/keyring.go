package merchant

import "paygate/sealing"

// MasterKeySize is the size of a master key: AES-256 (sealing.MasterKeySize).
const MasterKeySize = sealing.MasterKeySize

// Sealed is a secret encrypted at rest; see sealing.Sealed.
type Sealed = sealing.Sealed

// Keyring holds the master keys that seal secrets at rest; see
// sealing.Keyring.
type Keyring = sealing.Keyring

// NewKeyring returns a Keyring of the given 32-byte keys, the first sealing.
// Errors: CodeInvalidArgument for no key or a key of the wrong size.
func NewKeyring(keys ...[]byte) (*Keyring, error) { return sealing.NewKeyring(keys...) }

// ParseKeyring parses the PAYGATE_MASTER_KEY format (sealing.ParseKeyring).
// Errors: CodeInvalidArgument, never echoing the value.
func ParseKeyring(s string) (*Keyring, error) { return sealing.ParseKeyring(s) }

// NewMasterKey returns a random 32-byte master key, base64-encoded.
func NewMasterKey() string { return sealing.NewMasterKey() }

// MasterKeyID returns the public id of a master key (sealing.MasterKeyID).
func MasterKeyID(key []byte) string { return sealing.MasterKeyID(key) }
