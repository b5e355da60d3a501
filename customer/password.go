package customer

import (
	"crypto/rand"
	"crypto/subtle"
	"encoding/base64"
	"fmt"
	"strings"

	"golang.org/x/crypto/argon2"
)

// HashParams are argon2id's cost parameters. They are stored with each
// hash, so raising them affects new hashes only.
type HashParams struct {
	Time    uint32 // passes
	Memory  uint32 // KiB
	Threads uint8
}

// DefaultHashParams follow RFC 9106's second recommendation (64 MiB, one
// pass), with two lanes for the two-core machines paygate runs on.
var DefaultHashParams = HashParams{Time: 1, Memory: 64 * 1024, Threads: 2}

const (
	saltLen = 16
	hashLen = 32
)

var b64 = base64.RawStdEncoding

// hashSecret returns the PHC string of secret under p with a fresh salt:
// $argon2id$v=19$m=65536,t=1,p=2$salt$hash.
func hashSecret(secret string, p HashParams) string {
	salt := make([]byte, saltLen)
	rand.Read(salt)
	h := argon2.IDKey([]byte(secret), salt, p.Time, p.Memory, p.Threads, hashLen)
	return fmt.Sprintf("$argon2id$v=%d$m=%d,t=%d,p=%d$%s$%s", argon2.Version, p.Memory, p.Time, p.Threads, b64.EncodeToString(salt), b64.EncodeToString(h))
}

// checkSecret reports whether secret matches the PHC string, comparing in
// constant time. A malformed hash never matches.
func checkSecret(secret, phc string) bool {
	parts := strings.Split(phc, "$")
	if len(parts) != 6 || parts[1] != "argon2id" || parts[2] != fmt.Sprintf("v=%d", argon2.Version) {
		return false
	}
	var p HashParams
	if _, err := fmt.Sscanf(parts[3], "m=%d,t=%d,p=%d", &p.Memory, &p.Time, &p.Threads); err != nil || p.Time == 0 || p.Threads == 0 || p.Memory > 1<<21 {
		return false
	}
	salt, err1 := b64.DecodeString(parts[4])
	want, err2 := b64.DecodeString(parts[5])
	if err1 != nil || err2 != nil || len(want) == 0 {
		return false
	}
	got := argon2.IDKey([]byte(secret), salt, p.Time, p.Memory, p.Threads, uint32(len(want)))
	return subtle.ConstantTimeCompare(got, want) == 1
}

// hashOf hashes a secret with the Service's parameters, waiting for a
// hashing slot: at most one argon2id computation per CPU runs at once, so
// a burst of logins queues instead of allocating Memory each.
func (s *Service) hashOf(secret string) string {
	s.hashing <- struct{}{}
	defer func() { <-s.hashing }()
	return hashSecret(secret, s.hash)
}

// matches checks a secret against a PHC string in a hashing slot.
func (s *Service) matches(secret, phc string) bool {
	s.hashing <- struct{}{}
	defer func() { <-s.hashing }()
	return checkSecret(secret, phc)
}
