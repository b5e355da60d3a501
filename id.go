package paygate

import (
	"encoding/hex"

	"github.com/google/uuid"
)

// Id prefixes name the kind of object an id refers to.
const (
	PrefixAccount  = "acc_"
	PrefixTransfer = "txn_"
	PrefixOrder    = "ord_"
	PrefixRefund   = "rfd_"
	PrefixEvent    = "evt_"
)

// NewID returns prefix followed by a UUIDv7 in 32 lower-case hex digits.
// Ids sort by creation time (millisecond precision) and are unique without
// coordination between processes.
func NewID(prefix string) string {
	u := uuid.Must(uuid.NewV7())
	var b [32]byte
	hex.Encode(b[:], u[:])
	return prefix + string(b[:])
}
