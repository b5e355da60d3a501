// Package notify tells merchants about state changes through a transactional
// outbox:
//
//   - a use case calls Enqueue inside the transaction of the state change, so
//     the notification commits (or rolls back) with it;
//   - Workers, in any number of server processes, claim due events in one
//     short transaction (FOR UPDATE SKIP LOCKED on PostgreSQL, plus a lease),
//     POST them to the merchant's notify_url outside any transaction in the
//     APIv3 notification format (AEAD_AES_256_GCM resource under the
//     merchant's APIv3 key, Wechatpay-* signature headers by the platform
//     key), and record each attempt in another transaction;
//   - a 2xx answer within the timeout (5 s) delivers the event; anything else
//     is a failed attempt, retried on Schedule, after which the event is
//     FAILED;
//   - merchants list their events with every attempt (Service.List) and ask
//     for a resend (Service.Resend).
//
// Delivery is at least once: the same event id is sent on every attempt, and
// a worker that dies mid-attempt leaves its claim to expire and be retried.
// In live mode a notify_url may only reach public addresses, checked on the
// addresses actually dialled (SSRF); sandbox events may reach any address.
package notify

import (
	"context"
	"crypto/rsa"
	"encoding/json"
	"time"
	"unicode/utf8"

	"paygate"
)

// Limits on what an event may carry.
const (
	MaxBatch      = 1000     // events per Enqueue call
	MaxIDLen      = 64       // event id
	MaxNameLen    = 64       // merchant id, event type, original type
	MaxSummaryLen = 256      // summary, in bytes
	MaxURLLen     = 2048     // notify_url, in bytes
	MaxPayload    = 64 << 10 // plaintext resource, in bytes
)

// Event is one notification to a merchant, written in the same transaction as
// the state change.
type Event struct {
	ID           string    // "evt_..." (paygate.NewID(paygate.PrefixEvent)) if empty
	MerchantID   string    // the merchant told
	EventType    string    // e.g. "TRANSACTION.SUCCESS", "TRANSACTION.CLOSED", "REFUND.SUCCESS"
	OriginalType string    // resource.original_type, e.g. "transaction", "refund"
	Summary      string    // e.g. "支付成功" / "payment succeeded"
	URL          string    // the merchant's notify_url
	Sandbox      bool      // the merchant is in the sandbox: URL may reach private addresses
	Payload      []byte    // plaintext JSON of the resource (the order/refund as the API shows it)
	CreatedAt    time.Time // set by Enqueue from the clock if zero
}

// Tx is what Enqueue needs of the caller's transaction; store.Tx implements it.
type Tx interface {
	// InsertEvents adds evs to the outbox as PENDING and due at their
	// CreatedAt. An id that already exists fails with CodeIDConflict.
	InsertEvents(ctx context.Context, evs []Event) error
}

// Enqueue validates events and adds them to the outbox inside tx (so they
// commit with the state change). It fills in an empty ID with a new "evt_"
// id and a zero CreatedAt with the clock's time, and changes nothing when
// evs is empty. It does not check the URL beyond its length: a URL that
// cannot be delivered to fails its attempts (and the state change it
// belongs to still commits); use ValidateURL when the merchant supplies it.
// Errors: CodeInvalidArgument (naming the field), CodeIDConflict for an id
// already in the outbox, or the transaction's own error.
func Enqueue(ctx context.Context, tx Tx, clock paygate.Clock, evs ...Event) error {
	if len(evs) == 0 {
		return nil
	}
	if len(evs) > MaxBatch {
		return paygate.E(paygate.CodeInvalidArgument, "enqueue at most %d events at once", MaxBatch)
	}
	now := clock.Now().UTC().Truncate(time.Microsecond)
	out := make([]Event, len(evs))
	seen := make(map[string]bool, len(evs))
	for i, ev := range evs {
		if ev.ID == "" {
			ev.ID = paygate.NewID(paygate.PrefixEvent)
		}
		if ev.CreatedAt.IsZero() {
			ev.CreatedAt = now
		}
		ev.CreatedAt = ev.CreatedAt.UTC().Truncate(time.Microsecond)
		if err := validate(ev); err != nil {
			return err
		}
		if seen[ev.ID] {
			return paygate.EField(paygate.CodeInvalidArgument, "id", "event id %q appears twice", ev.ID)
		}
		seen[ev.ID] = true
		out[i] = ev
	}
	if err := tx.InsertEvents(ctx, out); err != nil {
		return err
	}
	return nil
}

func validate(ev Event) error {
	name := func(field, v string) error {
		if v == "" || len(v) > MaxNameLen || !printableASCII(v) {
			return paygate.EField(paygate.CodeInvalidArgument, field, "%s must be 1 to %d printable ASCII characters", field, MaxNameLen)
		}
		return nil
	}
	switch {
	case len(ev.ID) > MaxIDLen || len(ev.ID) <= len(paygate.PrefixEvent) || ev.ID[:len(paygate.PrefixEvent)] != paygate.PrefixEvent || !printableASCII(ev.ID):
		return paygate.EField(paygate.CodeInvalidArgument, "id", "event id must start with %q and have at most %d printable ASCII characters", paygate.PrefixEvent, MaxIDLen)
	case name("merchant_id", ev.MerchantID) != nil:
		return name("merchant_id", ev.MerchantID)
	case name("event_type", ev.EventType) != nil:
		return name("event_type", ev.EventType)
	case name("original_type", ev.OriginalType) != nil:
		return name("original_type", ev.OriginalType)
	case len(ev.Summary) > MaxSummaryLen || !utf8.ValidString(ev.Summary) || hasControl(ev.Summary):
		return paygate.EField(paygate.CodeInvalidArgument, "summary", "summary must be UTF-8 text of at most %d bytes", MaxSummaryLen)
	case ev.URL == "" || len(ev.URL) > MaxURLLen:
		return paygate.EField(paygate.CodeInvalidArgument, "notify_url", "notify_url must be 1 to %d bytes", MaxURLLen)
	case len(ev.Payload) == 0 || len(ev.Payload) > MaxPayload || !utf8.Valid(ev.Payload) || !json.Valid(ev.Payload):
		return paygate.EField(paygate.CodeInvalidArgument, "payload", "payload must be UTF-8 JSON of at most %d bytes", MaxPayload)
	}
	return nil
}

func printableASCII(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] <= ' ' || s[i] >= 0x7f {
			return false
		}
	}
	return true
}

func hasControl(s string) bool {
	for _, r := range s {
		if r < ' ' || r == 0x7f {
			return true
		}
	}
	return false
}

// Keys supplies, at delivery time, the merchant's 32-byte APIv3 key and the
// platform's signing key.
type Keys interface {
	NotificationKeys(ctx context.Context, merchantID string) (apiv3Key string, platformSerial string, platformKey *rsa.PrivateKey, err error)
}

// Status is an event's delivery state.
type Status string

// Event statuses. PENDING events are delivered when due; DELIVERED and
// FAILED are final until the merchant asks for a resend.
const (
	StatusPending   Status = "PENDING"   // waiting for its first or next attempt, or being attempted
	StatusDelivered Status = "DELIVERED" // the merchant answered 2xx in time
	StatusFailed    Status = "FAILED"    // every attempt of the schedule failed
)

// Outcome is how one attempt ended.
type Outcome string

// Attempt outcomes.
const (
	OutcomeInProgress Outcome = "IN_PROGRESS" // claimed, not yet finished
	OutcomeDelivered  Outcome = "DELIVERED"   // 2xx within the timeout
	OutcomeFailed     Outcome = "FAILED"      // anything else; ErrorClass says what
	OutcomeAbandoned  Outcome = "ABANDONED"   // the worker stopped or vanished; the event was retried
)

// ErrorClass says why an attempt failed, without the details (which are
// logged, never shown to the merchant).
type ErrorClass string

// Error classes of failed attempts. The set is part of the merchant API.
const (
	ClassNone              ErrorClass = ""
	ClassHTTPStatus        ErrorClass = "HTTP_STATUS"        // the merchant answered neither 2xx nor 3xx
	ClassRedirect          ErrorClass = "REDIRECT"           // the merchant answered 3xx; redirects are not followed
	ClassTimeout           ErrorClass = "TIMEOUT"            // no 2xx within the timeout
	ClassConnectionRefused ErrorClass = "CONNECTION_REFUSED" // nothing listens on the address
	ClassDNS               ErrorClass = "DNS"                // the host name did not resolve
	ClassAddressRefused    ErrorClass = "ADDRESS_REFUSED"    // live mode: the host resolved to a non-public address
	ClassTLS               ErrorClass = "TLS"                // the TLS handshake or certificate check failed
	ClassNetwork           ErrorClass = "NETWORK"            // any other network failure
	ClassInvalidURL        ErrorClass = "INVALID_URL"        // the notify_url cannot be requested
	ClassInternal          ErrorClass = "INTERNAL"           // paygate could not prepare the notification
)

// Attempt is one delivery attempt of an event.
type Attempt struct {
	EventID         string
	Number          int    // 1-based, counted over the event's life
	Worker          string // the claiming worker's name (operators only)
	Outcome         Outcome
	StartedAt       time.Time
	FinishedAt      time.Time // zero while in progress
	Duration        time.Duration
	HTTPStatus      int // 0 when no answer was received
	ErrorClass      ErrorClass
	ResponseSnippet string // at most SnippetLen bytes of the merchant's answer
}

// Record is an event with its delivery state and attempts, oldest first.
type Record struct {
	Event
	Seq           int64 // insertion order; pagination cursor
	Status        Status
	NextAttemptAt time.Time // zero unless PENDING
	DeliveredAt   time.Time // when last delivered; zero if never
	Attempts      []Attempt
}

// Claim is an event a worker holds for one attempt until Until.
type Claim struct {
	Event
	Attempt int       // the attempt's number; with Owner it identifies the claim
	Round   int       // attempts since enqueue or the last resend, this one included
	Owner   string    // the claiming worker
	Until   time.Time // the lease: after it the event is due again
}

// Finish is the result of a claimed attempt, for Store.Finish.
type Finish struct {
	Attempt       Attempt   // EventID and Number name the attempt; the rest is its result
	Owner         string    // the claiming worker
	Status        Status    // what the event becomes: DELIVERED, PENDING or FAILED
	NextAttemptAt time.Time // when the event is next due, for PENDING
	Release       bool      // the worker gave the attempt up (shutdown); it does not count toward the schedule
}

// Store is the outbox's persistence; the database adapter (store.DB.Notify)
// implements it. Every method runs in its own short transaction.
type Store interface {
	// ClaimDue claims up to limit PENDING events due at or before now,
	// oldest due first, skipping rows other transactions hold. Each claimed
	// event's attempt counters go up by one, its lease (and due time) is set
	// to until, so that a claimant that vanishes leaves it due again then,
	// and an IN_PROGRESS attempt row is written (an earlier attempt left
	// IN_PROGRESS becomes ABANDONED).
	ClaimDue(ctx context.Context, owner string, now, until time.Time, limit int) ([]Claim, error)
	// Finish records an attempt's result on its attempt row and updates the
	// event: a DELIVERED result marks any PENDING event DELIVERED; any other
	// result applies only while the claim still holds (owner and attempt
	// number unchanged, event PENDING), and if a resend arrived during the
	// attempt the event instead stays PENDING, due at once. The claim is
	// cleared. It reports whether the event changed.
	Finish(ctx context.Context, f Finish) (bool, error)
	// Events returns up to limit of the merchant's events with Seq < before
	// (0: from the newest), newest first, each with its attempts.
	Events(ctx context.Context, merchantID string, before int64, limit int) ([]Record, error)
	// Event returns one of the merchant's events with its attempts, and
	// false if the merchant has no such event.
	Event(ctx context.Context, merchantID, eventID string) (Record, bool, error)
	// Resend makes the merchant's event PENDING with a fresh round of the
	// schedule, due at now (or when its current attempt's lease ends, if an
	// attempt is in flight). It reports false if the merchant has no such
	// event.
	Resend(ctx context.Context, merchantID, eventID string, now time.Time) (bool, error)
}
