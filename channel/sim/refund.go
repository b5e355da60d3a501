package sim

import (
	"context"
	"errors"
	"fmt"
	"time"

	"paygate"
	"paygate/channel"
)

// RefundOutcome tells the simulator how a refund ends.
type RefundOutcome string

// The outcomes a sandbox refund can be told to have.
const (
	// RefundSuccess accepts the refund; QueryRefund reports SUCCESS from
	// Config.Delay after it was accepted.
	RefundSuccess RefundOutcome = "success"
	// RefundFail accepts the refund; QueryRefund reports FAILED
	// (RefundFailCode) from Config.Delay after it was accepted.
	RefundFail RefundOutcome = "fail"
	// RefundTimeout records the refund but Refund answers with an error
	// that is not a refusal (the caller cannot know whether it was taken);
	// QueryRefund reports PROCESSING until Config.RevealAfter has passed,
	// then SUCCESS.
	RefundTimeout RefundOutcome = "timeout"
)

// RefundOutcomes lists every refund outcome.
var RefundOutcomes = []RefundOutcome{RefundSuccess, RefundFail, RefundTimeout}

// RefundFailCode is the FailCode of refunds told to fail.
const RefundFailCode = "SIM_REFUND_FAILED"

// ErrTimeout is what Refund answers for a refund told to time out: the
// outcome is unknown, it is not a refusal.
var ErrTimeout = errors.New("sim: the channel did not answer in time")

// ParseRefundOutcome validates a refund outcome name; "" means
// RefundSuccess. Errors: CodeInvalidArgument naming the field "outcome".
func ParseRefundOutcome(s string) (RefundOutcome, error) {
	if s == "" {
		return RefundSuccess, nil
	}
	for _, o := range RefundOutcomes {
		if string(o) == s {
			return o, nil
		}
	}
	return "", paygate.EField(paygate.CodeInvalidArgument, "outcome", "refund outcome must be one of success, fail, timeout")
}

type refund struct {
	req        channel.RefundRequest
	outcome    RefundOutcome
	refundNo   string
	acceptedAt time.Time
	finalAt    time.Time
	final      channel.Status
}

var _ channel.Refunder = (*Sim)(nil)

// Refund accepts a refund and schedules its result as req.Scenario says (a
// RefundOutcome; "" is RefundSuccess). The same RefundID again returns the
// first acceptance. Errors: matching channel.ErrRefundDeclined (nothing
// recorded) for an unknown scenario, a missing refund id, a non-positive
// amount, an amount above the payment's total, an unknown currency, or —
// for a payment the simulator took — another currency or more than the
// payment's amount refunded in all (of an authorization: more than it
// captured, or anything once voided); ErrTimeout (recorded, outcome
// unknown to the caller) for RefundTimeout. A payment the simulator does
// not know (paid before a restart) is refunded on the request's word.
func (s *Sim) Refund(ctx context.Context, req channel.RefundRequest) (channel.RefundAccepted, error) {
	outcome, err := ParseRefundOutcome(req.Scenario)
	if err != nil {
		return channel.RefundAccepted{}, fmt.Errorf("sim: %w: %w", err, channel.ErrRefundDeclined)
	}
	if req.RefundID == "" || req.Amount <= 0 || req.Amount > req.Total || !req.Currency.Valid() {
		return channel.RefundAccepted{}, fmt.Errorf("sim: malformed refund: %w", channel.ErrRefundDeclined)
	}
	now := s.cfg.Clock.Now().UTC()
	s.mu.Lock()
	if r, ok := s.refunds[req.RefundID]; ok {
		s.mu.Unlock()
		return channel.RefundAccepted{ChannelRefundNo: r.refundNo, AcceptedAt: r.acceptedAt}, nil
	}
	if p, ok := s.payments[req.AttemptID]; ok {
		refunded := int64(0)
		for _, r := range s.attemptRefunds[req.AttemptID] {
			failed := r.final == channel.StatusFailed && !now.Before(r.finalAt)
			if !failed {
				refunded += r.req.Amount
			}
		}
		if req.Currency != p.req.Currency || refunded+req.Amount > p.refundable() {
			s.mu.Unlock()
			return channel.RefundAccepted{}, fmt.Errorf("sim: refund exceeds the payment: %w", channel.ErrRefundDeclined)
		}
	}
	r := &refund{req: req, outcome: outcome, refundNo: "simr_" + randHex(16), acceptedAt: now, final: channel.StatusSuccess,
		finalAt: now.Add(s.cfg.Delay)}
	switch outcome {
	case RefundFail:
		r.final = channel.StatusFailed
	case RefundTimeout:
		r.finalAt = now.Add(s.cfg.RevealAfter)
	}
	s.refunds[req.RefundID] = r
	s.attemptRefunds[req.AttemptID] = append(s.attemptRefunds[req.AttemptID], r)
	s.mu.Unlock()
	if outcome == RefundTimeout {
		return channel.RefundAccepted{}, ErrTimeout
	}
	return channel.RefundAccepted{ChannelRefundNo: r.refundNo, AcceptedAt: now}, nil
}

// QueryRefund reports a refund: PROCESSING until its result is due, then
// the result. Errors: channel.ErrUnknownRefund when the simulator has no
// such refund (never submitted, or submitted before a restart), or the
// channel number names another refund.
func (s *Sim) QueryRefund(ctx context.Context, q channel.RefundQuery) (channel.RefundResult, error) {
	s.mu.Lock()
	r, ok := s.refunds[q.RefundID]
	s.mu.Unlock()
	if !ok || (q.ChannelRefundNo != "" && q.ChannelRefundNo != r.refundNo) {
		return channel.RefundResult{}, fmt.Errorf("sim: query refund: %w", channel.ErrUnknownRefund)
	}
	out := channel.RefundResult{Channel: s.cfg.Name, RefundID: r.req.RefundID, ChannelRefundNo: r.refundNo,
		Status: channel.StatusProcessing, Amount: r.req.Amount, Currency: r.req.Currency}
	if !s.cfg.Clock.Now().Before(r.finalAt) {
		out.Status = r.final
		if r.final == channel.StatusSuccess {
			out.SucceededAt = r.finalAt
		} else {
			out.FailCode = RefundFailCode
		}
	}
	return out, nil
}
