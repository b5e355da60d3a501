package sms

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"strconv"
	"sync"
	"time"

	"paygate"
)

// Sender hands one message to a phone network. Send must be safe to repeat
// for the same message id (a worker that vanished mid-send leaves the
// message to be sent again) and must not put the text in its error. It
// returns the provider's id of the message.
type Sender interface {
	Send(ctx context.Context, m Message) (providerID string, err error)
}

// DefaultSchedule returns the delays before each retry after a failed
// attempt: 5s, 10s, 30s, 60s, 120s. One-time codes live for minutes, so
// there is no point retrying longer; a message due after its SendBefore is
// FAILED without being sent.
func DefaultSchedule() []time.Duration {
	return []time.Duration{5 * time.Second, 10 * time.Second, 30 * time.Second, time.Minute, 2 * time.Minute}
}

// Defaults for Options.
const (
	DefaultTimeout     = 10 * time.Second
	DefaultLease       = time.Minute
	DefaultConcurrency = 8
	DefaultMaxRounds   = 100
)

// Options tune a Worker. The zero value gives the defaults.
type Options struct {
	Name        string          // worker name in claims; default "HOST-PID-RANDOM"
	Concurrency int             // messages claimed and sent at once
	Timeout     time.Duration   // bounds one Send
	Lease       time.Duration   // how long a claim lasts; at least twice Timeout
	Schedule    []time.Duration // retry delays; DefaultSchedule if nil
	MaxRounds   int             // batches per wake-up of Run
	Logger      *slog.Logger    // one line per attempt, never the text; default slog.Default()
}

// Worker sends due messages through a Sender. Several workers may share a
// database; a message is attempted by one worker at a time while a lease
// holds. It is safe for concurrent use.
type Worker struct {
	store    Store
	keys     *Keyring
	sender   Sender
	clock    paygate.Clock
	name     string
	conc     int
	timeout  time.Duration
	lease    time.Duration
	schedule []time.Duration
	rounds   int
	log      *slog.Logger
	kick     chan struct{}
}

// NewWorker returns a Worker claiming from store, opening bodies with keys
// and sending through sender. Errors: CodeInvalidArgument for missing parts
// or inconsistent options.
func NewWorker(store Store, keys *Keyring, sender Sender, clock paygate.Clock, opt Options) (*Worker, error) {
	if store == nil || keys == nil || sender == nil || clock == nil {
		return nil, paygate.E(paygate.CodeInvalidArgument, "sms worker needs a store, keys, a sender and a clock")
	}
	w := &Worker{store: store, keys: keys, sender: sender, clock: clock, name: opt.Name, conc: opt.Concurrency,
		timeout: opt.Timeout, lease: opt.Lease, schedule: opt.Schedule, rounds: opt.MaxRounds, log: opt.Logger,
		kick: make(chan struct{}, 1)}
	if w.name == "" {
		h, _ := os.Hostname()
		if len(h) > 40 || !printableASCII(h) {
			h = "worker"
		}
		b := make([]byte, 3)
		rand.Read(b)
		w.name = h + "-" + strconv.Itoa(os.Getpid()) + "-" + hex.EncodeToString(b)
	}
	if w.conc <= 0 {
		w.conc = DefaultConcurrency
	}
	if w.timeout <= 0 {
		w.timeout = DefaultTimeout
	}
	if w.lease <= 0 {
		w.lease = max(DefaultLease, 2*w.timeout)
	}
	if w.lease < 2*w.timeout {
		return nil, paygate.E(paygate.CodeInvalidArgument, "sms worker lease must be at least twice the timeout")
	}
	if w.schedule == nil {
		w.schedule = DefaultSchedule()
	}
	for _, d := range w.schedule {
		if d <= 0 {
			return nil, paygate.E(paygate.CodeInvalidArgument, "sms schedule delays must be positive")
		}
	}
	if w.rounds <= 0 {
		w.rounds = DefaultMaxRounds
	}
	if w.log == nil {
		w.log = slog.Default()
	}
	return w, nil
}

// Name returns the worker's name.
func (w *Worker) Name() string { return w.name }

// Kick wakes Run to look for due messages now; call it after committing an
// Enqueue. It never blocks.
func (w *Worker) Kick() {
	select {
	case w.kick <- struct{}{}:
	default:
	}
}

// Run sends due messages on every tick (and Kick) until ctx is done, running
// RunOnce until a batch comes back short or MaxRounds batches ran. Errors
// are logged and retried on the next tick. ticks is injected so that tests
// drive Run without sleeping.
func (w *Worker) Run(ctx context.Context, ticks <-chan time.Time) {
	for {
		select {
		case <-ctx.Done():
			return
		case <-ticks:
		case <-w.kick:
		}
		for round := 0; round < w.rounds && ctx.Err() == nil; round++ {
			n, err := w.RunOnce(ctx)
			if err != nil {
				if ctx.Err() == nil {
					w.log.Warn("sms sending failed; retrying next tick", "worker", w.name, "error", err)
				}
				break
			}
			if n < w.conc {
				break
			}
		}
	}
}

// RunOnce claims up to Concurrency due messages, sends them in parallel
// outside any transaction, records each result and returns how many it
// attempted. It returns the claim's error, or else the first error
// recording a result (that message is retried when its lease ends).
func (w *Worker) RunOnce(ctx context.Context) (int, error) {
	now := w.now()
	cs, err := w.store.ClaimDue(ctx, w.name, now, now.Add(w.lease), w.conc)
	if err != nil {
		return 0, err
	}
	var (
		wg    sync.WaitGroup
		mu    sync.Mutex
		first error
	)
	for _, c := range cs {
		wg.Go(func() {
			if err := w.send(ctx, c); err != nil {
				mu.Lock()
				if first == nil {
					first = err
				}
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	return len(cs), first
}

func (w *Worker) now() time.Time { return w.clock.Now().UTC().Truncate(time.Microsecond) }

// send makes one attempt of a claimed message and records its result. The
// cause of a failure is logged by its class and type only: a Sender's error
// might echo the text.
func (w *Worker) send(ctx context.Context, c Claim) error {
	f := Finish{ID: c.ID, Owner: c.Owner, Attempt: c.Attempt}
	var cause error
	now := w.now()
	switch {
	case !c.SendBefore.IsZero() && !now.Before(c.SendBefore):
		f.Status, f.Error = StatusFailed, ClassExpired
	default:
		text, err := w.keys.Open(c.ID, c.Body, c.KeyID)
		if err != nil {
			f.Status, f.Error, cause = StatusFailed, ClassInternal, err
			break
		}
		sctx, cancel := context.WithTimeout(ctx, w.timeout)
		pid, err := w.sender.Send(sctx, Message{ID: c.ID, Phone: c.Phone, Purpose: c.Purpose, Text: text,
			CreatedAt: c.CreatedAt, SendBefore: c.SendBefore})
		cancel()
		now = w.now()
		switch {
		case err == nil:
			f.Status, f.ProviderID = StatusSent, pid
		default:
			f.Error, cause = ClassSender, err
			if errors.Is(err, context.DeadlineExceeded) {
				f.Error = ClassTimeout
			}
			if c.Attempt > len(w.schedule) {
				f.Status = StatusFailed
			} else {
				f.Status, f.NextAttemptAt = StatusPending, now.Add(w.schedule[c.Attempt-1])
			}
		}
	}
	f.At = now
	fctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
	defer cancel()
	applied, err := w.store.Finish(fctx, f)
	attrs := []any{"worker", w.name, "sms_id", c.ID, "phone", MaskPhone(c.Phone), "purpose", c.Purpose,
		"attempt", c.Attempt, "status", f.Status}
	if f.Error != ClassNone {
		attrs = append(attrs, "class", f.Error)
	}
	if cause != nil {
		// The type only: the message of a Sender's error is not trusted
		// to be free of the text.
		attrs = append(attrs, "cause_type", fmt.Sprintf("%T", cause))
	}
	if !applied && err == nil {
		attrs = append(attrs, "superseded", true)
	}
	switch {
	case err != nil:
		w.log.Error("sms result not recorded; retried after the lease", append(attrs, "record_error", err)...)
	case f.Status == StatusSent:
		w.log.Debug("sms sent", attrs...)
	case f.Status == StatusFailed:
		w.log.Error("sms failed for good", attrs...)
	default:
		w.log.Warn("sms attempt failed", append(attrs, "next_attempt_at", f.NextAttemptAt)...)
	}
	if err != nil {
		return fmt.Errorf("sms: record attempt %d of %s: %w", c.Attempt, c.ID, err)
	}
	return nil
}
