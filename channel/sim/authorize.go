package sim

import (
	"context"
	"fmt"

	"paygate/channel"
)

// AuthorizationStatus is where an authorization stands at the simulator.
type AuthorizationStatus string

// Authorization statuses: held until captured or voided.
const (
	AuthorizationHeld     AuthorizationStatus = "HELD"
	AuthorizationCaptured AuthorizationStatus = "CAPTURED"
	AuthorizationVoided   AuthorizationStatus = "VOIDED"
)

// Authorization is what the simulator knows of one authorization, as the
// payer's bank would show it: how much it held, took and gave back.
// Captured + Released = Authorized once it is resolved.
type Authorization struct {
	AttemptID  string
	Status     AuthorizationStatus
	Authorized int64
	Captured   int64
	Released   int64
}

var _ channel.Authorizer = (*Sim)(nil)

// refundable is how much of p may be refunded in all: an authorization
// only what it captured (all it holds while unresolved, so that a refund
// racing ahead of the capture is not refused; nothing once voided).
func (p *payment) refundable() int64 {
	if !p.authOnly {
		return p.req.Amount
	}
	switch p.resolved {
	case AuthorizationCaptured:
		return p.captured
	case AuthorizationVoided:
		return 0
	}
	return p.req.Amount
}

// Authorization returns the authorization paid with attempt id attemptID,
// and whether the simulator knows one (false for an attempt that was not
// an authorization, or paid before a restart and never resolved since).
func (s *Sim) Authorization(attemptID string) (Authorization, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	p, ok := s.payments[attemptID]
	if !ok || !p.authOnly {
		return Authorization{}, false
	}
	a := Authorization{AttemptID: attemptID, Status: AuthorizationHeld, Authorized: p.req.Amount}
	if p.resolved != "" {
		a.Status, a.Captured, a.Released = p.resolved, p.captured, p.req.Amount-p.captured
	}
	return a, true
}

// FailResolves makes the next n Capture or Void calls answer ErrTimeout
// without doing anything: the caller cannot know the outcome and must
// repeat the call (tests of paygate's retries).
func (s *Sim) FailResolves(n int) {
	s.mu.Lock()
	s.failResolves = n
	s.mu.Unlock()
}

// Capture takes req.Amount of the authorization paid with req.AttemptID
// and gives the rest back to the payer. Capturing the same amount again
// answers nil. Errors: ErrTimeout (nothing done) while FailResolves says
// so; matching channel.ErrResolveDeclined for a malformed request, an
// amount above what was authorized, another currency, a payment that
// failed or was not an authorization, or one already voided or captured
// for another amount. An authorization the simulator does not know (paid
// before a restart) is captured on the request's word.
func (s *Sim) Capture(ctx context.Context, req channel.ResolveRequest) error {
	if req.Amount <= 0 || req.Amount > req.Authorized {
		return fmt.Errorf("sim: capture of %d of %d: %w", req.Amount, req.Authorized, channel.ErrResolveDeclined)
	}
	return s.resolve(req, AuthorizationCaptured, req.Amount)
}

// Void gives all of the authorization paid with req.AttemptID back to the
// payer. Voiding again answers nil. Errors: as Capture's, for one already
// captured.
func (s *Sim) Void(ctx context.Context, req channel.ResolveRequest) error {
	return s.resolve(req, AuthorizationVoided, 0)
}

// resolve captures (captured > 0) or voids an authorization once.
func (s *Sim) resolve(req channel.ResolveRequest, to AuthorizationStatus, captured int64) error {
	if req.AttemptID == "" || req.Authorized <= 0 || !req.Currency.Valid() {
		return fmt.Errorf("sim: malformed capture or void: %w", channel.ErrResolveDeclined)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.failResolves > 0 {
		s.failResolves--
		return ErrTimeout
	}
	p, ok := s.payments[req.AttemptID]
	if !ok {
		// Paid before a restart: taken on the request's word, and
		// remembered so that a repeat is answered alike.
		p = &payment{req: channel.PayRequest{AttemptID: req.AttemptID, OrderID: req.OrderID, Amount: req.Authorized,
			Currency: req.Currency, AuthorizeOnly: true}, tradeNo: req.ChannelTradeNo, final: channel.StatusSuccess, authOnly: true}
		s.payments[req.AttemptID] = p
		if req.ChannelTradeNo != "" {
			s.byTrade[req.ChannelTradeNo] = req.AttemptID
		}
	}
	switch {
	case !p.authOnly:
		return fmt.Errorf("sim: the payment is not an authorization: %w", channel.ErrResolveDeclined)
	case p.final == channel.StatusFailed:
		return fmt.Errorf("sim: the authorization failed: %w", channel.ErrResolveDeclined)
	case req.Currency != p.req.Currency || req.Authorized != p.req.Amount:
		return fmt.Errorf("sim: the request does not match the authorization: %w", channel.ErrResolveDeclined)
	case req.ChannelTradeNo != "" && req.ChannelTradeNo != p.tradeNo:
		return fmt.Errorf("sim: the trade number does not match the authorization: %w", channel.ErrResolveDeclined)
	case p.resolved == to && p.captured == captured:
		return nil // a repeat
	case p.resolved != "":
		return fmt.Errorf("sim: the authorization was already %s: %w", p.resolved, channel.ErrResolveDeclined)
	}
	p.resolved, p.captured = to, captured
	return nil
}
