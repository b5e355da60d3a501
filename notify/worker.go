package notify

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"os"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"paygate"
	"paygate/signing"
)

// DefaultSchedule returns the delays before each retry after a failed
// attempt: 15s/15s/30s/3m/10m/20m/30m/30m/30m/60m/3h/3h/3h/6h/6h. With the
// first attempt that makes 16 attempts over about 24 hours; when the last
// fails the event is FAILED.
func DefaultSchedule() []time.Duration {
	return []time.Duration{
		15 * time.Second, 15 * time.Second, 30 * time.Second, 3 * time.Minute, 10 * time.Minute,
		20 * time.Minute, 30 * time.Minute, 30 * time.Minute, 30 * time.Minute, 60 * time.Minute,
		3 * time.Hour, 3 * time.Hour, 3 * time.Hour, 6 * time.Hour, 6 * time.Hour,
	}
}

// Defaults for Options.
const (
	DefaultTimeout     = 5 * time.Second
	DefaultLease       = time.Minute
	DefaultConcurrency = 8
	DefaultMaxRounds   = 100
	// SnippetLen bounds how much of a merchant's answer an attempt keeps.
	SnippetLen = 128
)

// ResourceType is the resource_type of every notification.
const ResourceType = "encrypt-resource"

// SignatureType is sent in the Wechatpay-Signature-Type header.
const SignatureType = signing.Scheme

// Notification is the JSON body POSTed to a merchant's notify_url.
type Notification struct {
	ID           string           `json:"id"`
	CreateTime   string           `json:"create_time"` // RFC 3339 with the zone offset
	EventType    string           `json:"event_type"`
	ResourceType string           `json:"resource_type"` // always ResourceType
	Resource     signing.Resource `json:"resource"`
	Summary      string           `json:"summary"`
}

// Observer is told about every finished attempt, for metrics. status is
// what the worker asked the event to become. Implementations must be fast
// and safe for concurrent use.
type Observer interface {
	ObserveAttempt(eventType string, a Attempt, status Status)
}

// Options tune a Worker. The zero value gives the defaults.
type Options struct {
	// Name identifies the worker in claims and attempts; default
	// "HOSTNAME-PID-RANDOM". Every worker sharing a database needs its own.
	Name string
	// Concurrency is how many events one worker claims and delivers at once.
	Concurrency int
	// Timeout bounds one attempt, from dialling to the response headers and
	// the snippet of the body; default 5 s.
	Timeout time.Duration
	// Lease is how long a claim lasts; a worker that vanishes leaves its
	// events due again after it. It must be at least twice Timeout.
	Lease time.Duration
	// Schedule overrides DefaultSchedule.
	Schedule []time.Duration
	// MaxRounds bounds the batches one wake-up of Run delivers.
	MaxRounds int
	// Location is the zone of create_time; default Asia/Shanghai.
	Location *time.Location
	// Logger receives one line per attempt (never secrets); default slog.Default().
	Logger *slog.Logger
	// Observer, if set, is told about every attempt.
	Observer Observer
}

// Worker delivers due events. Several workers (in one process or many) may
// share a database: each claims different events, and an event is never
// attempted by two workers at once while a lease holds. It is safe for
// concurrent use.
type Worker struct {
	store    Store
	keys     Keys
	clock    paygate.Clock
	name     string
	conc     int
	timeout  time.Duration
	lease    time.Duration
	schedule []time.Duration
	rounds   int
	loc      *time.Location
	log      *slog.Logger
	obs      Observer
	live     *http.Client // dials public addresses only
	sandbox  *http.Client // dials anything
	kick     chan struct{}
}

// NewWorker returns a Worker claiming from store, encrypting and signing with
// keys, and timing everything by clock. Errors: CodeInvalidArgument for
// inconsistent options.
func NewWorker(store Store, keys Keys, clock paygate.Clock, opt Options) (*Worker, error) {
	w := &Worker{store: store, keys: keys, clock: clock, name: opt.Name, conc: opt.Concurrency,
		timeout: opt.Timeout, lease: opt.Lease, schedule: opt.Schedule, rounds: opt.MaxRounds,
		loc: opt.Location, log: opt.Logger, obs: opt.Observer, kick: make(chan struct{}, 1)}
	if store == nil || keys == nil || clock == nil {
		return nil, paygate.E(paygate.CodeInvalidArgument, "notify worker needs a store, keys and a clock")
	}
	if w.name == "" {
		w.name = defaultName()
	}
	if len(w.name) > MaxNameLen || !printableASCII(w.name) {
		return nil, paygate.E(paygate.CodeInvalidArgument, "worker name must be 1 to %d printable ASCII characters", MaxNameLen)
	}
	if w.conc <= 0 {
		w.conc = DefaultConcurrency
	}
	if w.timeout <= 0 {
		w.timeout = DefaultTimeout
	}
	if w.lease <= 0 {
		w.lease = DefaultLease
	}
	if w.lease < 2*w.timeout {
		return nil, paygate.E(paygate.CodeInvalidArgument, "lease must be at least twice the timeout")
	}
	if w.schedule == nil {
		w.schedule = DefaultSchedule()
	}
	for _, d := range w.schedule {
		if d <= 0 {
			return nil, paygate.E(paygate.CodeInvalidArgument, "schedule delays must be positive")
		}
	}
	if w.rounds <= 0 {
		w.rounds = DefaultMaxRounds
	}
	if w.loc == nil {
		w.loc = paygate.DefaultCalendar().Location
	}
	if w.log == nil {
		w.log = slog.Default()
	}
	w.live = newClient(liveControl)
	w.sandbox = newClient(nil)
	return w, nil
}

func defaultName() string {
	h, _ := os.Hostname()
	if len(h) > 40 || !printableASCII(h) {
		h = "worker"
	}
	b := make([]byte, 3)
	rand.Read(b)
	return h + "-" + strconv.Itoa(os.Getpid()) + "-" + hex.EncodeToString(b)
}

// newClient returns a client that never uses a proxy (the address check must
// see the merchant's address), never follows redirects, and runs control on
// every address it connects to.
func newClient(control func(network, address string, c syscall.RawConn) error) *http.Client {
	d := &net.Dialer{Timeout: 5 * time.Second, KeepAlive: 30 * time.Second, Control: control}
	return &http.Client{
		Transport: &http.Transport{
			Proxy:                  nil,
			DialContext:            d.DialContext,
			ForceAttemptHTTP2:      true,
			MaxIdleConns:           100,
			MaxIdleConnsPerHost:    4,
			IdleConnTimeout:        90 * time.Second,
			TLSHandshakeTimeout:    5 * time.Second,
			MaxResponseHeaderBytes: 64 << 10,
			TLSClientConfig:        &tls.Config{MinVersion: tls.VersionTLS12},
		},
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
}

// Name returns the worker's name.
func (w *Worker) Name() string { return w.name }

// Kick wakes Run to look for due events now instead of at the next tick;
// call it after committing an Enqueue or a Resend. It never blocks.
func (w *Worker) Kick() {
	select {
	case w.kick <- struct{}{}:
	default:
	}
}

// Run delivers due events on every tick (and Kick) until ctx is done: it
// runs RunOnce until a batch comes back short or MaxRounds batches ran.
// Errors are logged and retried on the next tick. On return, attempts in
// flight have been given up (their events are due again at once) and idle
// connections are closed. ticks is injected so that tests drive Run without
// sleeping; serve passes a time.Ticker's channel.
func (w *Worker) Run(ctx context.Context, ticks <-chan time.Time) {
	defer w.live.CloseIdleConnections()
	defer w.sandbox.CloseIdleConnections()
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
					w.log.Warn("notification delivery failed; retrying next tick", "worker", w.name, "error", err)
				}
				break
			}
			if n < w.conc {
				break
			}
		}
	}
}

// RunOnce claims up to Concurrency due events, attempts them in parallel
// outside any transaction, records each result, and returns how many it
// attempted. Should ctx end mid-attempt, the attempt is given up and its
// event is due again at once. It returns the claim's error, or else the
// first error recording a result (that event is retried when its lease
// ends).
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
			if err := w.deliver(ctx, c); err != nil {
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

// deliver makes one attempt of a claimed event and records its result.
func (w *Worker) deliver(ctx context.Context, c Claim) error {
	a, host, cause := w.attempt(ctx, c)
	f := Finish{Attempt: a, Owner: c.Owner}
	round := max(c.Round, 1)
	switch {
	case a.Outcome == OutcomeDelivered:
		f.Status = StatusDelivered
	case ctx.Err() != nil:
		f.Attempt.Outcome, f.Attempt.ErrorClass = OutcomeAbandoned, ClassNone
		f.Status, f.NextAttemptAt, f.Release = StatusPending, a.FinishedAt, true
	case round > len(w.schedule):
		f.Status = StatusFailed
	default:
		f.Status, f.NextAttemptAt = StatusPending, a.FinishedAt.Add(w.schedule[round-1])
	}
	fctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
	defer cancel()
	applied, err := w.store.Finish(fctx, f)

	attrs := []any{"worker", w.name, "event_id", c.ID, "merchant_id", c.MerchantID, "event_type", c.EventType,
		"attempt", c.Attempt, "round", c.Round, "host", host, "outcome", f.Attempt.Outcome,
		"http_status", a.HTTPStatus, "class", f.Attempt.ErrorClass, "duration", a.Duration, "status", f.Status}
	if !f.NextAttemptAt.IsZero() {
		attrs = append(attrs, "next_attempt_at", f.NextAttemptAt)
	}
	if cause != nil {
		attrs = append(attrs, "error", cause.Error())
	}
	if !applied && err == nil {
		attrs = append(attrs, "superseded", true) // the lease ended or a resend came first
	}
	switch {
	case err != nil:
		w.log.Error("notification result not recorded; retried after the lease", append(attrs, "record_error", err)...)
	case f.Status == StatusDelivered:
		w.log.Debug("notification delivered", attrs...)
	case f.Status == StatusFailed:
		w.log.Error("notification failed for good after its last attempt", attrs...)
	case f.Attempt.Outcome == OutcomeAbandoned:
		// Shutting down: not a fault; the event is released for the next
		// worker at once.
		w.log.Info("notification attempt abandoned at shutdown; released", attrs...)
	case a.ErrorClass == ClassInternal:
		w.log.Error("notification could not be prepared", attrs...)
	default:
		w.log.Warn("notification attempt failed", attrs...)
	}
	if w.obs != nil {
		w.obs.ObserveAttempt(c.EventType, f.Attempt, f.Status)
	}
	if err != nil {
		return fmt.Errorf("notify: record attempt %d of %s: %w", c.Attempt, c.ID, err)
	}
	return nil
}

// attempt POSTs the event once. It returns the attempt, the URL's host (for
// logs) and, for a failure, its cause (for logs only: never stored).
func (w *Worker) attempt(ctx context.Context, c Claim) (a Attempt, host string, cause error) {
	a = Attempt{EventID: c.ID, Number: c.Attempt, Worker: c.Owner, Outcome: OutcomeFailed, StartedAt: w.now()}
	defer func() {
		a.FinishedAt = w.now()
		a.Duration = a.FinishedAt.Sub(a.StartedAt)
	}()
	u, err := parseURL(c.URL, true) // addresses are checked when dialled
	if err != nil {
		a.ErrorClass = ClassInvalidURL
		return a, "", err
	}
	host = u.Hostname()
	body, hdr, err := w.prepare(ctx, c.Event)
	if err != nil {
		a.ErrorClass = ClassInternal
		return a, host, err
	}
	rctx, cancel := context.WithTimeout(ctx, w.timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(rctx, http.MethodPost, c.URL, bytes.NewReader(body))
	if err != nil {
		a.ErrorClass = ClassInvalidURL
		return a, host, err
	}
	req.Header = hdr
	client := w.live
	if c.Sandbox {
		client = w.sandbox
	}
	resp, err := client.Do(req)
	if err != nil {
		a.ErrorClass = classify(err)
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err // url.Error repeats the URL, which may carry the merchant's secrets
		}
		return a, host, err
	}
	defer resp.Body.Close()
	a.HTTPStatus = resp.StatusCode
	buf := make([]byte, SnippetLen)
	n, _ := io.ReadFull(resp.Body, buf)
	a.ResponseSnippet = snippet(buf[:n])
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 4<<10)) // lets the connection be reused
	switch {
	case resp.StatusCode >= 200 && resp.StatusCode < 300:
		a.Outcome = OutcomeDelivered
		return a, host, nil
	case resp.StatusCode >= 300 && resp.StatusCode < 400:
		a.ErrorClass = ClassRedirect
	default:
		a.ErrorClass = ClassHTTPStatus
	}
	return a, host, fmt.Errorf("merchant answered HTTP %d", resp.StatusCode)
}

// prepare encrypts the event's resource under the merchant's APIv3 key and
// signs the body with the platform key.
func (w *Worker) prepare(ctx context.Context, ev Event) ([]byte, http.Header, error) {
	apiv3, serial, key, err := w.keys.NotificationKeys(ctx, ev.MerchantID)
	if err != nil {
		return nil, nil, fmt.Errorf("notification keys: %w", err)
	}
	if key == nil || serial == "" {
		return nil, nil, errors.New("notification keys: no platform key")
	}
	body, err := Body(ev, apiv3, w.loc)
	if err != nil {
		return nil, nil, err
	}
	ts, nonce := w.clock.Now().Unix(), signing.NewNonce()
	sig, err := signing.Sign(key, signing.ResponseMessage(ts, nonce, body))
	if err != nil {
		return nil, nil, fmt.Errorf("sign notification: %w", err)
	}
	h := http.Header{}
	h.Set("Content-Type", "application/json")
	h.Set("User-Agent", "paygate-notify/1")
	h.Set(signing.HeaderTimestamp, strconv.FormatInt(ts, 10))
	h.Set(signing.HeaderNonce, nonce)
	h.Set(signing.HeaderSignature, sig)
	h.Set(signing.HeaderSerial, serial)
	h.Set("Wechatpay-Signature-Type", SignatureType)
	return body, h, nil
}

// Body returns the notification body of ev: its resource encrypted under
// apiv3Key with associated data original_type, and create_time in loc.
// Every call encrypts with a fresh nonce. Errors: CodeInvalidArgument for an
// APIv3 key that is not 32 bytes.
func Body(ev Event, apiv3Key string, loc *time.Location) ([]byte, error) {
	res, err := signing.Encrypt(apiv3Key, ev.OriginalType, ev.OriginalType, ev.Payload)
	if err != nil {
		return nil, fmt.Errorf("encrypt notification: %w", err)
	}
	return json.Marshal(Notification{
		ID:           ev.ID,
		CreateTime:   ev.CreatedAt.In(loc).Format(time.RFC3339),
		EventType:    ev.EventType,
		ResourceType: ResourceType,
		Resource:     res,
		Summary:      ev.Summary,
	})
}

// classify names a failed request's cause without its details.
func classify(err error) ErrorClass {
	var (
		dnsErr  *net.DNSError
		netErr  net.Error
		certErr *tls.CertificateVerificationError
		recErr  tls.RecordHeaderError
		alert   tls.AlertError
		unknown x509.UnknownAuthorityError
		hostErr x509.HostnameError
		invalid x509.CertificateInvalidError
	)
	switch {
	case errors.Is(err, errAddressRefused):
		return ClassAddressRefused
	case errors.Is(err, context.DeadlineExceeded), errors.As(err, &netErr) && netErr.Timeout():
		return ClassTimeout
	case errors.As(err, &dnsErr):
		return ClassDNS
	case errors.Is(err, syscall.ECONNREFUSED):
		return ClassConnectionRefused
	case errors.As(err, &certErr), errors.As(err, &recErr), errors.As(err, &alert),
		errors.As(err, &unknown), errors.As(err, &hostErr), errors.As(err, &invalid):
		return ClassTLS
	}
	return ClassNetwork
}

// snippet keeps valid UTF-8 text of b with control characters blanked.
func snippet(b []byte) string {
	s := strings.ToValidUTF8(string(b), "")
	// A rune cut at the end by the length limit is dropped, not mangled.
	return strings.Map(func(r rune) rune {
		if r < ' ' || r == 0x7f {
			return ' '
		}
		return r
	}, s)
}
