package payment

// Authorizations through a channel. A manual-capture order paid through a
// channel leaves the payer's money held at the channel (PayRequest with
// AuthorizeOnly; only channels implementing channel.Authorizer may take
// such orders). paygate's ledger hold mirrors it. When the order is
// captured, voided or expires, the same transaction that resolves the
// ledger hold records what the channel must be told (a ChannelRelease,
// PENDING); after the commit the channel is told, and the release job
// (ReleaseAtChannels) repeats the call until the channel confirms. The
// channel's calls are idempotent on the attempt id, so a crash between the
// call and the DONE mark only repeats a call the channel answers alike.

import (
	"context"
	"errors"
	"fmt"
	"time"

	"paygate"
	"paygate/channel"
)

// ReleaseKind says how an authorization at a channel is resolved.
type ReleaseKind string

// Release kinds: CAPTURE takes Amount and gives the rest back to the
// payer; VOID gives all of it back.
const (
	ReleaseCapture ReleaseKind = "CAPTURE"
	ReleaseVoid    ReleaseKind = "VOID"
)

// ReleaseStatus is where telling the channel stands.
type ReleaseStatus string

// Release statuses. PENDING: the channel has not confirmed yet (the job
// repeats the call); DONE: it confirmed; DECLINED: it refused outright —
// the channel and paygate disagree about the authorization, an operator's
// matter (logged with AlertReleaseDeclined), never retried.
const (
	ReleasePending  ReleaseStatus = "PENDING"
	ReleaseDone     ReleaseStatus = "DONE"
	ReleaseDeclined ReleaseStatus = "DECLINED"
)

// AlertReleaseDeclined: a channel refused to capture or void an
// authorization paygate resolved (the payer's money may still be held
// there, or the capture not taken). Logged at Error; needs a human.
const AlertReleaseDeclined = "payment.channel_release_declined"

// ChannelRelease is what a channel must be told about one authorization
// it holds: written in the transaction that captures, voids or expires
// the order (or that finds a second authorization of an order already
// authorized or closed), then carried out after the commit until the
// channel confirms. One per authorizing attempt.
type ChannelRelease struct {
	AttemptID      string
	OrderID        string
	MerchantID     string
	Channel        string
	ChannelTradeNo string
	Kind           ReleaseKind
	// Amount is what CAPTURE takes (the rest, Authorized - Amount, goes
	// back to the payer); 0 for VOID.
	Amount     int64
	Authorized int64
	Currency   paygate.Currency
	Status     ReleaseStatus
	Tries      int       // calls made so far
	NextTryAt  time.Time // when the job calls next (PENDING)
	FailCode   string    // why the last call failed, safe to show
	CreatedAt  time.Time
	UpdatedAt  time.Time
	DoneAt     time.Time // DONE or DECLINED
}

// Released is how much of the authorization goes back to the payer.
func (r ChannelRelease) Released() int64 { return r.Authorized - r.Amount }

// ReleaseTx is the part of Tx that keeps channel releases; the store
// implements it. Lookups of a missing row fail with CodeNotFound.
type ReleaseTx interface {
	// InsertChannelRelease inserts r; an attempt has at most one.
	InsertChannelRelease(ctx context.Context, r ChannelRelease) error
	// LockChannelRelease returns the attempt's release, locking its row.
	LockChannelRelease(ctx context.Context, attemptID string) (ChannelRelease, error)
	// UpdateChannelRelease stores r's status, tries, next try, fail code
	// and times.
	UpdateChannelRelease(ctx context.Context, r ChannelRelease) error
	// LockChannelReleasesDue locks up to limit PENDING releases whose next
	// try is at or before now, earliest first, skipping rows other
	// transactions hold (PostgreSQL).
	LockChannelReleasesDue(ctx context.Context, now time.Time, limit int) ([]ChannelRelease, error)
}

// authorizer returns the channel's Authorizer, if it has one.
func (s *Service) authorizer(name string) (channel.Authorizer, bool) {
	a, ok := s.channels[name].(channel.Authorizer)
	return a, ok
}

// canTake checks that ch may take a payment of o: a manual-capture order
// only through a channel that can hold the money (channel.Authorizer), so
// that what paygate releases is given back at the channel too. Errors:
// CodeConflict naming the channel.
func canTake(ch channel.Channel, o Order) error {
	if o.CaptureMethod != CaptureManual {
		return nil
	}
	if _, ok := ch.(channel.Authorizer); !ok {
		return paygate.E(paygate.CodeConflict, "channel %s cannot hold a payment: an order with capture_method MANUAL cannot be paid this way", ch.Name())
	}
	return nil
}

// authorizedAtChannel reports whether o's authorization is held at an
// external channel (not on us), which must then be told how it ends.
func authorizedAtChannel(o Order) bool {
	return o.CaptureMethod == CaptureManual && o.Channel != "" && o.Channel != ChannelOnUs && o.TransactionID != ""
}

// recordRelease writes, inside the transaction that captures (captured >
// 0) or releases o's authorization, what its channel must be told, when
// the authorization is held at a channel; it returns the release (Status
// "" when there is none).
func (s *Service) recordRelease(ctx context.Context, tx Tx, o Order, captured int64) (ChannelRelease, error) {
	if !authorizedAtChannel(o) {
		return ChannelRelease{}, nil
	}
	kind := ReleaseVoid
	if captured > 0 {
		kind = ReleaseCapture
	}
	return s.insertRelease(ctx, tx, ChannelRelease{AttemptID: o.TransactionID, OrderID: o.ID, MerchantID: o.MerchantID,
		Channel: o.Channel, ChannelTradeNo: o.ChannelTradeNo, Kind: kind, Amount: captured, Authorized: o.Amount.Authorized,
		Currency: o.Amount.Currency})
}

// insertRelease inserts r PENDING, its first job try one backoff step
// away: the committing command tells the channel itself at once.
func (s *Service) insertRelease(ctx context.Context, tx Tx, r ChannelRelease) (ChannelRelease, error) {
	now := s.now()
	r.Status, r.CreatedAt, r.UpdatedAt, r.NextTryAt = ReleasePending, now, now, now.Add(s.releaseBackoff(0))
	if err := tx.InsertChannelRelease(ctx, r); err != nil {
		return ChannelRelease{}, fmt.Errorf("payment: record the channel release: %w", err)
	}
	return r, nil
}

// voidStray books a successful authorization its order cannot take (the
// order was closed, or another attempt authorized it first). Nothing was
// taken from the payer, so nothing goes to suspense: the attempt is
// recorded SUCCESS and the channel is told to void it (ChannelRelease
// VOID), in the same transaction.
func (s *Service) voidStray(ctx context.Context, tx Tx, o Order, at Attempt) (ChannelRelease, error) {
	if err := tx.UpdateAttempt(ctx, at); err != nil {
		return ChannelRelease{}, err
	}
	return s.insertRelease(ctx, tx, ChannelRelease{AttemptID: at.ID, OrderID: o.ID, MerchantID: o.MerchantID, Channel: at.Channel,
		ChannelTradeNo: at.ChannelTradeNo, Kind: ReleaseVoid, Authorized: at.Amount, Currency: at.Currency})
}

// strayAuthorization reports whether a successful attempt of o that o
// cannot take was an authorization (see voidStray).
func strayAuthorization(o Order, at Attempt) bool {
	return o.CaptureMethod == CaptureManual && at.Channel != ChannelOnUs
}

// releaseBackoff is the wait before the job's try after n calls.
func (s *Service) releaseBackoff(n int) time.Duration {
	b := s.cfg.RefundQueryBackoff
	return b[min(n, len(b)-1)]
}

// tellChannels carries out releases just committed, outside any
// transaction; a failure leaves them to ReleaseAtChannels.
func (s *Service) tellChannels(ctx context.Context, rs ...ChannelRelease) {
	for _, r := range rs {
		if r.Status != ReleasePending {
			continue
		}
		if _, err := s.tellChannel(ctx, r); err != nil {
			s.log.Warn("payment: could not tell the channel how an authorization ended; will retry", "attempt_id", r.AttemptID,
				"order_id", r.OrderID, "channel", r.Channel, "kind", string(r.Kind), "error", err)
		}
	}
}

// tellChannel makes r's channel call and books its answer: DONE when the
// channel confirms, DECLINED (alerted) when it refuses outright; an
// unknown outcome leaves r PENDING with the error's code for the job. It
// returns the release as booked.
func (s *Service) tellChannel(ctx context.Context, r ChannelRelease) (ChannelRelease, error) {
	a, ok := s.authorizer(r.Channel)
	if !ok {
		return r, paygate.E(paygate.CodeUnavailable, "payment: channel %q cannot capture or void authorizations", r.Channel)
	}
	req := channel.ResolveRequest{AttemptID: r.AttemptID, ChannelTradeNo: r.ChannelTradeNo, OrderID: r.OrderID, Amount: r.Amount,
		Authorized: r.Authorized, Currency: r.Currency}
	var err error
	if r.Kind == ReleaseCapture {
		err = a.Capture(ctx, req)
	} else {
		err = a.Void(ctx, req)
	}
	to, code := ReleaseDone, ""
	switch {
	case errors.Is(err, channel.ErrResolveDeclined):
		to, code = ReleaseDeclined, "DECLINED"
	case err != nil:
		to, code = ReleasePending, "UNKNOWN"
		if errors.Is(err, context.DeadlineExceeded) {
			code = "TIMEOUT"
		}
	}
	booked, berr := s.bookRelease(ctx, r.AttemptID, to, code)
	if berr != nil {
		return r, berr
	}
	if to == ReleaseDeclined {
		s.log.Error("payment: the channel refused to capture or void an authorization", "alert", AlertReleaseDeclined,
			"attempt_id", r.AttemptID, "order_id", r.OrderID, "channel", r.Channel, "kind", string(r.Kind), "amount", r.Amount,
			"authorized", r.Authorized, "error", err)
	}
	if to == ReleasePending {
		return booked, err
	}
	return booked, nil
}

// bookRelease records a channel's answer on the attempt's release, once:
// a release already DONE or DECLINED stays as it is.
func (s *Service) bookRelease(ctx context.Context, attemptID string, to ReleaseStatus, failCode string) (ChannelRelease, error) {
	var out ChannelRelease
	err := s.store.InTx(ctx, func(tx Tx) error {
		r, err := tx.LockChannelRelease(ctx, attemptID)
		if err != nil {
			return err
		}
		out = r
		if r.Status != ReleasePending {
			return nil
		}
		now := s.now()
		r.Tries++
		r.Status, r.FailCode, r.UpdatedAt = to, failCode, now
		if to == ReleasePending {
			r.NextTryAt = now.Add(s.releaseBackoff(r.Tries))
		} else {
			r.DoneAt = now
		}
		out = r
		return tx.UpdateChannelRelease(ctx, r)
	})
	return out, err
}

// ReleaseAtChannels tells channels how up to limit (default 100) due
// authorizations ended — captured (the rest released) or voided — when the
// call made after the commit did not get through: it claims due PENDING
// releases (pushing their next try back, so that concurrent runs do not
// call twice), calls each channel outside the transaction, and books the
// answer: DONE, DECLINED (alerted with AlertReleaseDeclined), or still
// PENDING with the next try further back (RefundQueryBackoff). Safe to run
// in several processes at once, and after a crash: the channels' calls are
// idempotent on the attempt id. It returns how many releases it finished.
func (s *Service) ReleaseAtChannels(ctx context.Context, limit int) (int, error) {
	if limit <= 0 {
		limit = 100
	}
	var due []ChannelRelease
	err := s.store.InTx(ctx, func(tx Tx) error {
		now := s.now()
		rs, err := tx.LockChannelReleasesDue(ctx, now, limit)
		if err != nil {
			return err
		}
		due = due[:0]
		for _, r := range rs {
			r.NextTryAt, r.UpdatedAt = now.Add(s.releaseBackoff(r.Tries+1)), now
			if err := tx.UpdateChannelRelease(ctx, r); err != nil {
				return err
			}
			due = append(due, r)
		}
		return nil
	})
	if err != nil {
		return 0, err
	}
	done := 0
	for _, r := range due {
		if ctx.Err() != nil {
			break
		}
		got, err := s.tellChannel(ctx, r)
		if err != nil {
			s.log.Warn("payment: telling the channel how an authorization ended failed; will retry", "attempt_id", r.AttemptID,
				"order_id", r.OrderID, "channel", r.Channel, "kind", string(r.Kind), "tries", got.Tries, "error", err)
			continue
		}
		if got.Status != ReleasePending {
			done++
		}
	}
	return done, nil
}

// authorizingMethods keeps the checkout methods that can pay a
// manual-capture order: balances and own-bank cards are held on us, other
// banks' cards by the interbank switch (an Authorizer); online banking is
// a transfer the payer makes at the bank's own pages, taken outright, so
// it is not offered (and its channel would refuse: canTake).
func authorizingMethods(ms []string) []string {
	out := ms[:0:0]
	for _, m := range ms {
		if m != MethodOnlineBanking {
			out = append(out, m)
		}
	}
	return out
}
