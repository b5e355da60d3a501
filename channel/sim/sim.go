// Package sim is the simulated channel of the sandbox. It behaves like a real
// channel — it accepts a payment synchronously and reports the result later
// through an authenticated callback — and each payment can be told how to
// end (see Outcome): succeed, fail, time out, confirm twice, or confirm
// late. Time and asynchrony are injected (a paygate.Clock and a Dispatcher),
// so tests drive it deterministically without sleeping.
//
// Callbacks are authenticated with HMAC-SHA256 under a per-channel secret:
// headers Sim-Timestamp (Unix seconds), Sim-Nonce and Sim-Signature, the
// base64 MAC over "TIMESTAMP\nNONCE\nBODY\n". VerifyCallback checks them.
//
// Refunds (Refund, QueryRefund; see RefundOutcome) are accepted at once and
// their result is learnt by query, as with channels that do not call back
// for refunds.
//
// Payments made with AuthorizeOnly are authorizations: the payer's money
// is held until Capture takes all or part of it (the rest goes back) or
// Void gives it all back (channel.Authorizer); Authorization shows where
// one stands.
//
// The simulator keeps its payments and refunds in memory: a restart forgets
// those in flight, which Query then reports as channel.ErrUnknownPayment
// (QueryRefund as channel.ErrUnknownRefund).
package sim

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"log/slog"
	"net/http"
	"sync"
	"time"

	"paygate"
	"paygate/channel"
)

// Name is the simulated channel's name.
const Name = "sim"

// Outcome tells the simulator how a payment ends.
type Outcome string

// The outcomes a sandbox payment can be told to have.
const (
	// Success confirms the payment after Config.Delay.
	Success Outcome = "success"
	// Fail reports a failed payment after Config.Delay.
	Fail Outcome = "fail"
	// Timeout accepts the payment but never calls back; Query reports it
	// PROCESSING until Config.RevealAfter has passed, then SUCCESS.
	Timeout Outcome = "timeout"
	// Duplicate confirms the payment twice, Config.Delay apart.
	Duplicate Outcome = "duplicate"
	// Late confirms the payment Config.LateDelay after the order's
	// expiry (so after the order was closed, if the expiry job ran).
	Late Outcome = "late"
)

// Outcomes lists every outcome, for help texts and tests.
var Outcomes = []Outcome{Success, Fail, Timeout, Duplicate, Late}

// ParseOutcome validates an outcome name; "" means Success. Errors:
// CodeInvalidArgument naming the field "outcome".
func ParseOutcome(s string) (Outcome, error) {
	if s == "" {
		return Success, nil
	}
	for _, o := range Outcomes {
		if string(o) == s {
			return o, nil
		}
	}
	return "", paygate.EField(paygate.CodeInvalidArgument, "outcome", "outcome must be one of success, fail, timeout, duplicate, late")
}

// Callback header names.
const (
	HeaderTimestamp = "Sim-Timestamp"
	HeaderNonce     = "Sim-Nonce"
	HeaderSignature = "Sim-Signature"
)

// Window is how far a callback's timestamp may be from the verifier's clock.
const Window = 5 * time.Minute

// MinSecretLen is the shortest callback secret New accepts.
const MinSecretLen = 32

// FailCode is the FailCode of payments told to fail.
const FailCode = "SIM_DECLINED"

// Deliver sends one callback (headers and exact body) to paygate: in
// production an HTTP POST to the callback endpoint, or a direct call to
// payment.Service.Callback. A non-nil error makes the simulator retry.
type Deliver func(ctx context.Context, h http.Header, body []byte) error

// Config configures a simulator. Secret, Clock, Dispatcher and Deliver are
// required; zero durations take the defaults shown.
type Config struct {
	// Name is the channel's name (default Name, "sim"). The sandbox runs
	// a second simulator as the interbank switch other banks' cards go
	// through.
	Name        string
	Secret      []byte        // HMAC key for callbacks, at least MinSecretLen bytes
	Clock       paygate.Clock // stamps payments and callbacks
	Dispatcher  Dispatcher    // runs callbacks later
	Deliver     Deliver       // sends callbacks
	Delay       time.Duration // accept → callback; default 2s
	LateDelay   time.Duration // order expiry → late callback; default 1m
	RevealAfter time.Duration // accept → Query knows a timed-out payment; default 1m
	RetryDelay  time.Duration // failed delivery → next try; default 15s
	MaxTries    int           // deliveries of one callback; default 8
	Logger      *slog.Logger  // default slog.Default()
}

// Sim is the simulated channel. It implements channel.Channel,
// channel.CallbackVerifier, channel.Refunder and channel.Authorizer, and
// is safe for concurrent use.
type Sim struct {
	cfg Config
	cb  *Callbacks
	mu  sync.Mutex
	// payments by attempt id, and attempt ids by trade number.
	payments map[string]*payment
	byTrade  map[string]string
	refunds  map[string]*refund // by refund id
	// refunds by attempt id, so that checking what a payment has left to
	// refund looks at its own refunds only.
	attemptRefunds map[string][]*refund
	// failResolves is how many more Capture/Void calls answer ErrTimeout
	// without doing anything (FailResolves).
	failResolves int
}

type payment struct {
	req        channel.PayRequest
	outcome    Outcome
	tradeNo    string
	acceptedAt time.Time
	finalAt    time.Time // when the result becomes known
	final      channel.Status
	// An authorization (PayRequest.AuthorizeOnly) holds the payer's money
	// until Capture or Void resolves it: resolved is "" until then.
	authOnly bool
	resolved AuthorizationStatus
	captured int64
}

var (
	_ channel.Channel          = (*Sim)(nil)
	_ channel.CallbackVerifier = (*Sim)(nil)
)

// New returns a simulator. Errors: CodeInvalidArgument for a missing
// dependency or a short secret.
func New(cfg Config) (*Sim, error) {
	switch {
	case len(cfg.Secret) < MinSecretLen:
		return nil, paygate.E(paygate.CodeInvalidArgument, "sim: the callback secret must be at least %d bytes", MinSecretLen)
	case cfg.Clock == nil || cfg.Dispatcher == nil || cfg.Deliver == nil:
		return nil, paygate.E(paygate.CodeInvalidArgument, "sim: Clock, Dispatcher and Deliver are required")
	}
	def := func(d *time.Duration, v time.Duration) {
		if *d <= 0 {
			*d = v
		}
	}
	def(&cfg.Delay, 2*time.Second)
	def(&cfg.LateDelay, time.Minute)
	def(&cfg.RevealAfter, time.Minute)
	if cfg.Name == "" {
		cfg.Name = Name
	}
	cb, err := NewCallbacks(CallbackConfig{Channel: cfg.Name, Secret: cfg.Secret, Clock: cfg.Clock, Dispatcher: cfg.Dispatcher,
		Deliver: cfg.Deliver, RetryDelay: cfg.RetryDelay, MaxTries: cfg.MaxTries, Logger: cfg.Logger})
	if err != nil {
		return nil, err
	}
	cfg.Secret = nil // kept by cb only
	return &Sim{cfg: cfg, cb: cb, payments: map[string]*payment{}, byTrade: map[string]string{},
		refunds: map[string]*refund{}, attemptRefunds: map[string][]*refund{}}, nil
}

// Name returns Config.Name ("sim" by default).
func (s *Sim) Name() string { return s.cfg.Name }

// Pay accepts a payment at once and schedules its result as req.Scenario
// says (an Outcome; "" is Success). Paying the same AttemptID again returns
// the first acceptance and schedules nothing. Errors (all matching
// channel.ErrDeclined, nothing scheduled): an unknown scenario, a missing
// attempt id, a non-positive amount, an unknown currency.
func (s *Sim) Pay(ctx context.Context, req channel.PayRequest) (channel.Accepted, error) {
	outcome, err := ParseOutcome(req.Scenario)
	if err != nil {
		return channel.Accepted{}, fmt.Errorf("sim: %w: %w", err, channel.ErrDeclined)
	}
	if req.AttemptID == "" || req.Amount <= 0 || !req.Currency.Valid() {
		return channel.Accepted{}, fmt.Errorf("sim: malformed payment: %w", channel.ErrDeclined)
	}
	now := s.cfg.Clock.Now().UTC()
	s.mu.Lock()
	if p, ok := s.payments[req.AttemptID]; ok {
		s.mu.Unlock()
		return channel.Accepted{ChannelTradeNo: p.tradeNo, AcceptedAt: p.acceptedAt}, nil
	}
	p := &payment{req: req, outcome: outcome, tradeNo: "sim_" + randHex(16), acceptedAt: now, final: channel.StatusSuccess,
		authOnly: req.AuthorizeOnly}
	switch outcome {
	case Success, Duplicate:
		p.finalAt = now.Add(s.cfg.Delay)
	case Fail:
		p.finalAt, p.final = now.Add(s.cfg.Delay), channel.StatusFailed
	case Timeout:
		p.finalAt = now.Add(s.cfg.RevealAfter)
	case Late:
		base := now
		if req.ExpiresAt.After(base) {
			base = req.ExpiresAt
		}
		p.finalAt = base.Add(s.cfg.LateDelay)
	}
	s.payments[req.AttemptID] = p
	s.byTrade[p.tradeNo] = req.AttemptID
	s.mu.Unlock()

	switch outcome {
	case Success, Fail, Late:
		s.schedule(p, p.finalAt.Sub(now))
	case Duplicate:
		s.schedule(p, p.finalAt.Sub(now))
		s.schedule(p, p.finalAt.Sub(now)+s.cfg.Delay)
	}
	return channel.Accepted{ChannelTradeNo: p.tradeNo, AcceptedAt: now}, nil
}

// Query reports a payment: PROCESSING until its result is due, then the
// result. Errors: channel.ErrUnknownPayment when the simulator has no such
// payment (never paid, or paid before a restart).
func (s *Sim) Query(ctx context.Context, q channel.QueryRequest) (channel.Result, error) {
	s.mu.Lock()
	id := q.AttemptID
	if q.ChannelTradeNo != "" {
		if a, ok := s.byTrade[q.ChannelTradeNo]; ok && (id == "" || id == a) {
			id = a
		} else {
			id = ""
		}
	}
	p, ok := s.payments[id]
	s.mu.Unlock()
	if !ok || (q.OrderID != "" && q.OrderID != p.req.OrderID) {
		return channel.Result{}, fmt.Errorf("sim: query: %w", channel.ErrUnknownPayment)
	}
	return s.result(p, s.cfg.Clock.Now()), nil
}

// result is the payment as the channel knows it at now.
func (s *Sim) result(p *payment, now time.Time) channel.Result {
	r := channel.Result{
		Channel: s.cfg.Name, ChannelTradeNo: p.tradeNo, AttemptID: p.req.AttemptID, OrderID: p.req.OrderID,
		Status: channel.StatusProcessing, Amount: p.req.Amount, Currency: p.req.Currency,
	}
	if !now.Before(p.finalAt) {
		r.Status = p.final
		if p.final == channel.StatusSuccess {
			r.PaidAt = p.finalAt
		} else {
			r.FailCode = FailCode
		}
	}
	return r
}

// schedule delivers p's result after d.
func (s *Sim) schedule(p *payment, d time.Duration) {
	s.cb.Send(d, s.result(p, p.finalAt))
}

// Sign returns the callback headers for body at time t with the nonce,
// under the simulator's secret.
func (s *Sim) Sign(t time.Time, nonce string, body []byte) http.Header {
	return s.cb.Sign(t, nonce, body)
}

// VerifyCallback authenticates a callback (signature over the exact body,
// timestamp within Window of the simulator's clock) and decodes its Result.
// Errors: CodeUnauthenticated for a missing, malformed, stale or wrong
// signature; CodeInvalidArgument for an authentic but malformed body (unknown
// fields, wrong channel, non-final status). It never echoes the signature.
func (s *Sim) VerifyCallback(h http.Header, body []byte) (channel.Result, error) {
	return s.cb.Verify(h, body)
}

func randHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}
