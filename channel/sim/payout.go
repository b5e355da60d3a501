package sim

import (
	"context"
	"fmt"
	"sync"
	"time"

	"paygate"
	"paygate/channel"
	"paygate/transfer"
)

// PayoutOutcome tells the simulated interbank channel how a payout to
// another bank's card ends.
type PayoutOutcome string

// The outcomes a sandbox payout can be told to have (the sandbox asks for
// them by card: customer.SandboxInterbankOutcome gives "fail" for
// customer.SandboxDeclinedCard and "" — success — for every other card).
const (
	// PayoutSuccess accepts the payout; QueryPayout reports SUCCESS from
	// PayoutConfig.Delay after it was accepted.
	PayoutSuccess PayoutOutcome = "success"
	// PayoutFail accepts the payout; QueryPayout reports FAILED
	// (PayoutFailCode) from PayoutConfig.Delay after it was accepted.
	PayoutFail PayoutOutcome = "fail"
	// PayoutTimeout records the payout but Payout answers ErrTimeout (the
	// caller cannot know whether it was taken); QueryPayout reports
	// PROCESSING until PayoutConfig.RevealAfter has passed, then SUCCESS.
	PayoutTimeout PayoutOutcome = "timeout"
)

// PayoutFailCode is the FailCode of payouts told to fail.
const PayoutFailCode = "SIM_PAYOUT_FAILED"

// ParsePayoutOutcome validates a payout outcome name; "" means
// PayoutSuccess. Errors: CodeInvalidArgument naming the field "outcome".
func ParsePayoutOutcome(s string) (PayoutOutcome, error) {
	switch o := PayoutOutcome(s); o {
	case "":
		return PayoutSuccess, nil
	case PayoutSuccess, PayoutFail, PayoutTimeout:
		return o, nil
	}
	return "", paygate.EField(paygate.CodeInvalidArgument, "outcome", "payout outcome must be one of success, fail, timeout")
}

// PayoutConfig configures a simulated payout channel. Clock is required;
// zero durations take the defaults shown.
type PayoutConfig struct {
	Name        string        // the channel's name; default "interbank"
	Clock       paygate.Clock // stamps payouts and decides when results are due
	Delay       time.Duration // accept → result; default 2s
	RevealAfter time.Duration // accept → a timed-out payout's result; default 1m
}

// Payouts is the sandbox interbank switch's side that credits other banks'
// cards: it implements transfer.Payouts. A payout is accepted at once and
// its result learnt by query (QueryPayout), as with channels that do not
// call back for payouts. It keeps payouts in memory (never the card
// number, only its last four digits): a restart forgets those in flight,
// which QueryPayout then reports as channel.ErrUnknownPayment, and which
// the transfer service submits again. It is safe for concurrent use.
type Payouts struct {
	cfg     PayoutConfig
	mu      sync.Mutex
	payouts map[string]*payout // by payout id
}

type payout struct {
	req        transfer.PayoutRequest // CardNumber cleared
	channelNo  string
	acceptedAt time.Time
	finalAt    time.Time
	final      channel.Status
}

var _ transfer.Payouts = (*Payouts)(nil)

// NewPayouts returns a simulated payout channel. Errors:
// CodeInvalidArgument without a Clock.
func NewPayouts(cfg PayoutConfig) (*Payouts, error) {
	if cfg.Clock == nil {
		return nil, paygate.E(paygate.CodeInvalidArgument, "sim: payouts need a Clock")
	}
	if cfg.Name == "" {
		cfg.Name = transfer.DefaultInterbank
	}
	if cfg.Delay <= 0 {
		cfg.Delay = 2 * time.Second
	}
	if cfg.RevealAfter <= 0 {
		cfg.RevealAfter = time.Minute
	}
	return &Payouts{cfg: cfg, payouts: map[string]*payout{}}, nil
}

// Name returns PayoutConfig.Name.
func (p *Payouts) Name() string { return p.cfg.Name }

// Payout accepts a payout and schedules its result as req.Scenario says (a
// PayoutOutcome; "" is PayoutSuccess). The same ID again returns the first
// acceptance and pays nothing more. Errors: matching channel.ErrDeclined
// (nothing recorded) for an unknown scenario, a missing id, a card number
// that is not 13 to 19 digits, a non-positive amount or an unknown
// currency; ErrTimeout (recorded, outcome unknown to the caller) for
// PayoutTimeout.
func (p *Payouts) Payout(ctx context.Context, req transfer.PayoutRequest) (transfer.PayoutAccepted, error) {
	outcome, err := ParsePayoutOutcome(req.Scenario)
	if err != nil {
		return transfer.PayoutAccepted{}, fmt.Errorf("sim: %w: %w", err, channel.ErrDeclined)
	}
	digits := len(req.CardNumber) >= 13 && len(req.CardNumber) <= 19
	for i := 0; digits && i < len(req.CardNumber); i++ {
		digits = req.CardNumber[i] >= '0' && req.CardNumber[i] <= '9'
	}
	if req.ID == "" || !digits || req.Amount <= 0 || !req.Currency.Valid() {
		return transfer.PayoutAccepted{}, fmt.Errorf("sim: malformed payout: %w", channel.ErrDeclined)
	}
	now := p.cfg.Clock.Now().UTC()
	p.mu.Lock()
	if o, ok := p.payouts[req.ID]; ok {
		p.mu.Unlock()
		return transfer.PayoutAccepted{ChannelNo: o.channelNo, AcceptedAt: o.acceptedAt}, nil
	}
	req.CardNumber = "" // the simulator keeps no card number
	o := &payout{req: req, channelNo: "simp_" + randHex(16), acceptedAt: now, finalAt: now.Add(p.cfg.Delay), final: channel.StatusSuccess}
	switch outcome {
	case PayoutFail:
		o.final = channel.StatusFailed
	case PayoutTimeout:
		o.finalAt = now.Add(p.cfg.RevealAfter)
	}
	p.payouts[req.ID] = o
	p.mu.Unlock()
	if outcome == PayoutTimeout {
		return transfer.PayoutAccepted{}, ErrTimeout
	}
	return transfer.PayoutAccepted{ChannelNo: o.channelNo, AcceptedAt: now}, nil
}

// QueryPayout reports a payout: PROCESSING until its result is due, then
// the result. Errors: channel.ErrUnknownPayment when the simulator has no
// such payout (never submitted, or submitted before a restart).
func (p *Payouts) QueryPayout(ctx context.Context, id string) (transfer.PayoutResult, error) {
	p.mu.Lock()
	o, ok := p.payouts[id]
	p.mu.Unlock()
	if !ok {
		return transfer.PayoutResult{}, fmt.Errorf("sim: query payout: %w", channel.ErrUnknownPayment)
	}
	r := transfer.PayoutResult{ID: id, ChannelNo: o.channelNo, Status: channel.StatusProcessing}
	if !p.cfg.Clock.Now().Before(o.finalAt) {
		r.Status = o.final
		if o.final == channel.StatusFailed {
			r.FailCode = PayoutFailCode
		}
	}
	return r, nil
}
