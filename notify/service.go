package notify

import (
	"context"
	"encoding/base64"
	"strconv"
	"time"

	"paygate"
)

// Page sizes for List.
const (
	DefaultPageSize = 20
	MaxPageSize     = 100
)

// Page is one page of a merchant's events, newest first. NextCursor is empty
// on the last page.
type Page struct {
	Events     []Record
	NextCursor string
}

// Service answers merchants' questions about their notifications. It is safe
// for concurrent use.
type Service struct {
	store Store
	clock paygate.Clock
}

// NewService returns a Service over store, timing resends by clock.
func NewService(store Store, clock paygate.Clock) *Service {
	return &Service{store: store, clock: clock}
}

// List returns one page of the merchant's events, newest first, each with its
// attempts oldest first. cursor is "" for the first page or a NextCursor;
// limit 0 means DefaultPageSize. Only the merchant's own events are listed.
// Errors: CodeInvalidArgument (bad cursor or limit), CodeInternal or
// CodeUnavailable from the database.
func (s *Service) List(ctx context.Context, merchantID, cursor string, limit int) (Page, error) {
	if limit == 0 {
		limit = DefaultPageSize
	}
	if limit < 0 || limit > MaxPageSize {
		return Page{}, paygate.EField(paygate.CodeInvalidArgument, "limit", "limit must be between 1 and %d", MaxPageSize)
	}
	var before int64
	if cursor != "" {
		b, err := base64.RawURLEncoding.DecodeString(cursor)
		if err == nil {
			before, err = strconv.ParseInt(string(b), 10, 64)
		}
		if err != nil || before <= 0 {
			return Page{}, paygate.EField(paygate.CodeInvalidArgument, "cursor", "invalid cursor")
		}
	}
	if merchantID == "" {
		return Page{}, nil
	}
	rs, err := s.store.Events(ctx, merchantID, before, limit+1)
	if err != nil {
		return Page{}, err
	}
	page := Page{Events: rs}
	if len(rs) > limit {
		page.Events = rs[:limit]
		page.NextCursor = base64.RawURLEncoding.EncodeToString([]byte(strconv.FormatInt(rs[limit-1].Seq, 10)))
	}
	return page, nil
}

// Get returns one of the merchant's events with its attempts. Errors:
// CodeNotFound when the merchant has no such event (another merchant's
// event included), CodeInternal or CodeUnavailable from the database.
func (s *Service) Get(ctx context.Context, merchantID, eventID string) (Record, error) {
	if merchantID == "" || eventID == "" || len(eventID) > MaxIDLen {
		return Record{}, notFound()
	}
	r, ok, err := s.store.Event(ctx, merchantID, eventID)
	if err != nil {
		return Record{}, err
	}
	if !ok {
		return Record{}, notFound()
	}
	return r, nil
}

// Resend makes one of the merchant's events due now again, delivered or
// failed alike, with a fresh round of the retry schedule. If an attempt is
// in flight, it is not doubled: should that attempt fail, the event is due
// again at once. Callers tell the workers with Worker.Kick after Resend
// returns. Errors: CodeNotFound when the merchant has no such event
// (another merchant's event included), CodeInternal or CodeUnavailable from
// the database.
func (s *Service) Resend(ctx context.Context, merchantID, eventID string) error {
	if merchantID == "" || eventID == "" || len(eventID) > MaxIDLen {
		return notFound()
	}
	ok, err := s.store.Resend(ctx, merchantID, eventID, s.clock.Now().UTC().Truncate(time.Microsecond))
	if err != nil {
		return err
	}
	if !ok {
		return notFound()
	}
	return nil
}

func notFound() error {
	return paygate.EField(paygate.CodeNotFound, "id", "notification not found")
}
