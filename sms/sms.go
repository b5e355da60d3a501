// Package sms sends text messages through a transactional outbox:
//
//   - a use case (otp.Service) calls Enqueue inside its transaction, so the
//     message commits or rolls back with the state change that needs it;
//   - the text is sealed (AES-256-GCM under a Keyring key, the message id as
//     associated data) before it reaches the database, and the sealed body
//     is wiped once the message is SENT or FAILED;
//   - Workers claim due messages in a short transaction (FOR UPDATE SKIP
//     LOCKED on PostgreSQL, plus a lease), hand them to a Sender outside any
//     transaction, and record the result, retrying on a schedule;
//   - Sandbox is the Sender of the sandbox: it "delivers" into an inbox that
//     testers read (Sandbox.Latest, `paygate sms latest`). That inbox is the
//     only place the database holds message text in clear; a live Sender
//     hands the text to the operator and stores none of it.
//
// Message text (which carries one-time codes) never appears in logs: the
// worker logs ids, masked phones, purposes and error classes only.
package sms

import (
	"context"
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"strings"
	"time"
	"unicode/utf8"

	"paygate"
)

// PrefixMessage starts every message id.
const PrefixMessage = "sms_"

// Limits on what a message may carry.
const (
	MaxTextLen    = 500 // bytes of text
	MaxPurposeLen = 128 // bytes of purpose
	MaxBatch      = 100 // messages per Enqueue
)

// Message is one text message to a phone.
type Message struct {
	ID         string    // "sms_..." (filled in by Enqueue when empty)
	Phone      string    // normalised phone number (see NormalizePhone)
	Purpose    string    // what it is for, e.g. "quickpay:ord_..."; never secret
	Text       string    // the body; may carry a one-time code, so never logged
	CreatedAt  time.Time // set by Enqueue from the clock when zero
	SendBefore time.Time // not sent at or after this time (zero: no limit)
}

// Sealed is a message as the outbox stores it: the text only sealed.
type Sealed struct {
	ID         string
	Phone      string
	Purpose    string
	Body       string // base64(nonce || AES-256-GCM(text)) under KeyID
	KeyID      string
	CreatedAt  time.Time
	SendBefore time.Time
}

// Tx is what Enqueue needs of the caller's transaction; store.Tx implements it.
type Tx interface {
	// InsertSMS adds the messages to the outbox as PENDING, due at their
	// CreatedAt. An id that exists already fails with CodeIDConflict.
	InsertSMS(ctx context.Context, msgs []Sealed) error
}

// Keyring seals and opens message text. The first key seals; every key
// opens what it sealed (so keys can rotate while messages wait). It is safe
// for concurrent use.
type Keyring struct {
	current string
	aeads   map[string]cipher.AEAD
}

// NewKeyring returns a Keyring over 32-byte keys, the first of which seals.
// A key's id is the first 8 hex digits of its SHA-256. Errors:
// CodeInvalidArgument for no key or a key that is not 32 bytes.
func NewKeyring(keys ...[]byte) (*Keyring, error) {
	if len(keys) == 0 {
		return nil, paygate.E(paygate.CodeInvalidArgument, "sms: at least one key is needed")
	}
	kr := &Keyring{aeads: make(map[string]cipher.AEAD, len(keys))}
	for i, k := range keys {
		if len(k) != 32 {
			return nil, paygate.E(paygate.CodeInvalidArgument, "sms: keys must be 32 bytes")
		}
		block, err := aes.NewCipher(k)
		if err != nil {
			return nil, fmt.Errorf("sms: key: %w", err)
		}
		aead, err := cipher.NewGCM(block)
		if err != nil {
			return nil, fmt.Errorf("sms: key: %w", err)
		}
		sum := sha256.Sum256(k)
		id := hex.EncodeToString(sum[:4])
		if i == 0 {
			kr.current = id
		}
		kr.aeads[id] = aead
	}
	return kr, nil
}

// Seal encrypts text with the current key, binding it to the message id.
func (k *Keyring) Seal(id, text string) (body, keyID string) {
	aead := k.aeads[k.current]
	nonce := make([]byte, aead.NonceSize(), aead.NonceSize()+len(text)+aead.Overhead())
	rand.Read(nonce)
	out := aead.Seal(nonce, nonce, []byte(text), []byte(id))
	return base64.StdEncoding.EncodeToString(out), k.current
}

// Open decrypts a body sealed for the message id. Errors: CodeInternal when
// the key is unknown or the body was altered or belongs to another message.
func (k *Keyring) Open(id, body, keyID string) (string, error) {
	aead, ok := k.aeads[keyID]
	if !ok {
		return "", paygate.Internal(fmt.Errorf("sms: unknown key id %q", keyID))
	}
	b, err := base64.StdEncoding.DecodeString(body)
	if err != nil || len(b) < aead.NonceSize() {
		return "", paygate.Internal(fmt.Errorf("sms: malformed sealed body of %s", id))
	}
	pt, err := aead.Open(nil, b[:aead.NonceSize()], b[aead.NonceSize():], []byte(id))
	if err != nil {
		return "", paygate.Internal(fmt.Errorf("sms: cannot open the body of %s: %w", id, err))
	}
	return string(pt), nil
}

// Enqueue validates msgs, seals their text with kr and adds them to the
// outbox inside tx, so they are sent only if tx commits. It fills in an empty
// ID with a new "sms_" id and a zero CreatedAt with the clock's time.
// Errors: CodeInvalidArgument naming the field, CodeIDConflict for an id
// already in the outbox, or the transaction's own error.
func Enqueue(ctx context.Context, tx Tx, kr *Keyring, clock paygate.Clock, msgs ...Message) error {
	if len(msgs) == 0 {
		return nil
	}
	if len(msgs) > MaxBatch {
		return paygate.E(paygate.CodeInvalidArgument, "enqueue at most %d messages at once", MaxBatch)
	}
	now := clock.Now().UTC().Truncate(time.Microsecond)
	out := make([]Sealed, len(msgs))
	for i, m := range msgs {
		if m.ID == "" {
			m.ID = paygate.NewID(PrefixMessage)
		}
		if m.CreatedAt.IsZero() {
			m.CreatedAt = now
		}
		phone, err := NormalizePhone(m.Phone)
		if err != nil {
			return err
		}
		switch {
		case !strings.HasPrefix(m.ID, PrefixMessage) || len(m.ID) > 64 || !printableASCII(m.ID):
			return paygate.EField(paygate.CodeInvalidArgument, "id", "message id must start with %q", PrefixMessage)
		case m.Purpose == "" || len(m.Purpose) > MaxPurposeLen || !printableASCII(m.Purpose):
			return paygate.EField(paygate.CodeInvalidArgument, "purpose", "purpose must be 1 to %d printable ASCII characters", MaxPurposeLen)
		case m.Text == "" || len(m.Text) > MaxTextLen || !utf8.ValidString(m.Text):
			return paygate.EField(paygate.CodeInvalidArgument, "text", "text must be UTF-8 of 1 to %d bytes", MaxTextLen)
		}
		body, kid := kr.Seal(m.ID, m.Text)
		out[i] = Sealed{ID: m.ID, Phone: phone, Purpose: m.Purpose, Body: body, KeyID: kid,
			CreatedAt: m.CreatedAt.UTC().Truncate(time.Microsecond), SendBefore: m.SendBefore.UTC().Truncate(time.Microsecond)}
	}
	return tx.InsertSMS(ctx, out)
}

// NormalizePhone returns the canonical form of a mobile number: a mainland
// China number as its 11 digits (a leading "+86" or "86" dropped), any
// other as "+" and 7 to 15 digits (E.164). Spaces and dashes are ignored.
// Errors: CodeInvalidArgument (field "phone").
func NormalizePhone(s string) (string, error) {
	s = strings.Map(func(r rune) rune {
		if r == ' ' || r == '-' {
			return -1
		}
		return r
	}, s)
	bad := paygate.EField(paygate.CodeInvalidArgument, "phone", "phone must be an 11-digit mainland mobile number or +E.164")
	plus := strings.HasPrefix(s, "+")
	digits := strings.TrimPrefix(s, "+")
	if digits == "" || len(digits) > 15 {
		return "", bad
	}
	for i := 0; i < len(digits); i++ {
		if digits[i] < '0' || digits[i] > '9' {
			return "", bad
		}
	}
	if len(digits) == 13 && strings.HasPrefix(digits, "86") {
		digits = digits[2:]
		plus = false
	}
	if !plus {
		if len(digits) == 11 && digits[0] == '1' && digits[1] >= '3' {
			return digits, nil
		}
		return "", bad
	}
	if len(digits) < 7 || digits[0] == '0' {
		return "", bad
	}
	return "+" + digits, nil
}

// MaskPhone shows at most the first three and last four digits of a phone,
// for logs and pages: "138****0000".
func MaskPhone(p string) string {
	if len(p) <= 7 {
		return strings.Repeat("*", len(p))
	}
	return p[:3] + strings.Repeat("*", len(p)-7) + p[len(p)-4:]
}

func printableASCII(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] <= ' ' || s[i] >= 0x7f {
			return false
		}
	}
	return true
}

// Status is a message's state in the outbox.
type Status string

// Message statuses. SENT and FAILED are final and hold no text.
const (
	StatusPending Status = "PENDING" // waiting for its first or next attempt, or being attempted
	StatusSent    Status = "SENT"    // the Sender accepted it
	StatusFailed  Status = "FAILED"  // every attempt failed, or it was due after SendBefore
)

// ErrorClass says why an attempt failed, without details.
type ErrorClass string

// Error classes of failed attempts.
const (
	ClassNone     ErrorClass = ""
	ClassSender   ErrorClass = "SENDER"   // the Sender returned an error
	ClassTimeout  ErrorClass = "TIMEOUT"  // the Sender did not answer in time
	ClassExpired  ErrorClass = "EXPIRED"  // due at or after SendBefore: not sent
	ClassInternal ErrorClass = "INTERNAL" // the body could not be opened
)

// Claim is a message a worker holds for one attempt until Until. Body is
// still sealed.
type Claim struct {
	Sealed
	Attempt int       // 1-based, counted over the message's life
	Owner   string    // the claiming worker
	Until   time.Time // the lease
}

// Finish is the result of a claimed attempt, for Store.Finish.
type Finish struct {
	ID            string
	Owner         string
	Attempt       int
	Status        Status     // SENT, PENDING (retry) or FAILED
	NextAttemptAt time.Time  // for PENDING
	Error         ErrorClass // for PENDING and FAILED
	ProviderID    string     // for SENT: the Sender's id of the message
	At            time.Time
}

// Record is a message's outbox state (never its text), for operators.
type Record struct {
	ID, Phone, Purpose string
	Status             Status
	Attempts           int
	LastError          ErrorClass
	ProviderID         string
	CreatedAt, SentAt  time.Time
	NextAttemptAt      time.Time
}

// Store is the outbox's persistence; store.DB.SMS implements it. Every
// method runs in its own short transaction.
type Store interface {
	// ClaimDue claims up to limit PENDING messages due at or before now,
	// oldest due first, skipping rows other transactions hold; each one's
	// attempts go up by one and its lease (and due time) becomes until.
	ClaimDue(ctx context.Context, owner string, now, until time.Time, limit int) ([]Claim, error)
	// Finish records an attempt's result. SENT applies to any PENDING
	// message; PENDING and FAILED apply only while the claim holds (same
	// owner and attempt). SENT and FAILED wipe the sealed body. It reports
	// whether the message changed.
	Finish(ctx context.Context, f Finish) (bool, error)
	// Message returns a message's outbox state; CodeNotFound if none.
	Message(ctx context.Context, id string) (Record, error)
	// DeleteFinished deletes up to limit SENT or FAILED messages last
	// updated before before, and returns how many it deleted.
	DeleteFinished(ctx context.Context, before time.Time, limit int) (int64, error)
}
