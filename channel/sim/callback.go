package sim

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"log/slog"
	"net/http"
	"strconv"
	"time"

	"paygate"
	"paygate/channel"
)

// CallbackHeaders names the three headers that carry a callback's
// signature.
type CallbackHeaders struct {
	Timestamp, Nonce, Signature string
}

// SimHeaders are the simulated channel's callback headers.
var SimHeaders = CallbackHeaders{Timestamp: HeaderTimestamp, Nonce: HeaderNonce, Signature: HeaderSignature}

// CallbackConfig configures Callbacks. Channel, Secret, Clock, Dispatcher
// and Deliver are required; zero settings take the defaults shown.
type CallbackConfig struct {
	// Channel is the channel's name: every result sent carries it, and a
	// callback for another channel does not verify. It also prefixes
	// errors and log messages.
	Channel    string
	Headers    CallbackHeaders // default SimHeaders
	Secret     []byte          // HMAC key, at least MinSecretLen bytes
	Clock      paygate.Clock   // stamps callbacks; checks their window
	Dispatcher Dispatcher      // runs deliveries later
	Deliver    Deliver         // sends one callback
	RetryDelay time.Duration   // failed delivery → next try; default 15s
	MaxTries   int             // deliveries of one callback; default 8
	Logger     *slog.Logger    // default slog.Default()
}

// Callbacks is the callback half of a simulated channel, shared by Sim and
// the sandbox bank (channel/netbank): it signs results with HMAC-SHA256
// (headers Timestamp, Nonce and Signature, the base64 MAC over
// "TIMESTAMP\nNONCE\nBODY\n"), delivers them later through the Dispatcher
// and Deliver, retrying refused deliveries, and verifies them. It is safe
// for concurrent use.
type Callbacks struct {
	cfg CallbackConfig
}

// NewCallbacks returns Callbacks. Errors: CodeInvalidArgument for a
// missing dependency or a short secret.
func NewCallbacks(cfg CallbackConfig) (*Callbacks, error) {
	switch {
	case cfg.Channel == "":
		return nil, paygate.E(paygate.CodeInvalidArgument, "callbacks: the channel's name is required")
	case len(cfg.Secret) < MinSecretLen:
		return nil, paygate.E(paygate.CodeInvalidArgument, "%s: the callback secret must be at least %d bytes", cfg.Channel, MinSecretLen)
	case cfg.Clock == nil || cfg.Dispatcher == nil || cfg.Deliver == nil:
		return nil, paygate.E(paygate.CodeInvalidArgument, "%s: Clock, Dispatcher and Deliver are required", cfg.Channel)
	}
	if cfg.Headers == (CallbackHeaders{}) {
		cfg.Headers = SimHeaders
	}
	if cfg.Headers.Timestamp == "" || cfg.Headers.Nonce == "" || cfg.Headers.Signature == "" {
		return nil, paygate.E(paygate.CodeInvalidArgument, "%s: every callback header needs a name", cfg.Channel)
	}
	if cfg.RetryDelay <= 0 {
		cfg.RetryDelay = 15 * time.Second
	}
	if cfg.MaxTries <= 0 {
		cfg.MaxTries = 8
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	cfg.Secret = bytes.Clone(cfg.Secret)
	return &Callbacks{cfg: cfg}, nil
}

// Send delivers r (its Channel set to the channel's name) as a signed
// callback d from now, and again every RetryDelay while Deliver refuses
// it, MaxTries times at most. Each try is signed afresh.
func (c *Callbacks) Send(d time.Duration, r channel.Result) {
	r.Channel = c.cfg.Channel
	c.schedule(d, r, 1)
}

func (c *Callbacks) schedule(d time.Duration, r channel.Result, try int) {
	c.cfg.Dispatcher.After(d, func() { c.deliver(r, try) })
}

func (c *Callbacks) deliver(r channel.Result, try int) {
	body, err := json.Marshal(r)
	if err != nil {
		c.cfg.Logger.Error(c.cfg.Channel+": encode callback", "error", err)
		return
	}
	h := c.Sign(c.cfg.Clock.Now(), randHex(16), body)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := c.cfg.Deliver(ctx, h, body); err != nil {
		if try >= c.cfg.MaxTries {
			c.cfg.Logger.Warn(c.cfg.Channel+": callback not accepted; giving up", "attempt_id", r.AttemptID, "tries", try, "error", err)
			return
		}
		c.cfg.Logger.Info(c.cfg.Channel+": callback not accepted; will retry", "attempt_id", r.AttemptID, "try", try, "error", err)
		c.schedule(c.cfg.RetryDelay, r, try+1)
	}
}

// Sign returns the callback headers for body at time t with the nonce.
func (c *Callbacks) Sign(t time.Time, nonce string, body []byte) http.Header {
	ts := strconv.FormatInt(t.Unix(), 10)
	h := http.Header{}
	h.Set(c.cfg.Headers.Timestamp, ts)
	h.Set(c.cfg.Headers.Nonce, nonce)
	h.Set(c.cfg.Headers.Signature, base64.StdEncoding.EncodeToString(mac(c.cfg.Secret, ts, nonce, body)))
	return h
}

func mac(secret []byte, ts, nonce string, body []byte) []byte {
	m := hmac.New(sha256.New, secret)
	m.Write([]byte(ts + "\n" + nonce + "\n"))
	m.Write(body)
	m.Write([]byte("\n"))
	return m.Sum(nil)
}

// maxBody bounds a callback body.
const maxBody = 16 << 10

// Verify authenticates a callback (signature over the exact body,
// timestamp within Window of the clock) and decodes its Result. Errors:
// CodeUnauthenticated for a missing, malformed, stale or wrong signature;
// CodeInvalidArgument for an authentic but malformed body (unknown fields,
// another channel, a non-final status). It never echoes the signature.
func (c *Callbacks) Verify(h http.Header, body []byte) (channel.Result, error) {
	name := c.cfg.Channel
	unauth := func(msg string) (channel.Result, error) {
		return channel.Result{}, paygate.E(paygate.CodeUnauthenticated, "%s callback: %s", name, msg)
	}
	ts, nonce, sig := h.Get(c.cfg.Headers.Timestamp), h.Get(c.cfg.Headers.Nonce), h.Get(c.cfg.Headers.Signature)
	if ts == "" || nonce == "" || sig == "" {
		return unauth("missing signature headers")
	}
	if len(body) > maxBody || len(nonce) > 64 || len(ts) > 20 {
		return unauth("oversized callback")
	}
	for i := 0; i < len(ts); i++ {
		if ts[i] < '0' || ts[i] > '9' {
			return unauth("malformed timestamp")
		}
	}
	sec, err := strconv.ParseInt(ts, 10, 64)
	if err != nil || sec <= 0 {
		return unauth("malformed timestamp")
	}
	now := c.cfg.Clock.Now()
	if d := now.Sub(time.Unix(sec, 0)); d > Window || d < -Window {
		return unauth("timestamp outside the window")
	}
	want := base64.StdEncoding.EncodeToString(mac(c.cfg.Secret, ts, nonce, body))
	if !hmac.Equal([]byte(sig), []byte(want)) { // the exact canonical encoding only
		return unauth("bad signature")
	}
	var r channel.Result
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&r); err != nil || dec.More() {
		return channel.Result{}, paygate.E(paygate.CodeInvalidArgument, "%s callback: malformed body", name)
	}
	if r.Channel != name {
		return channel.Result{}, paygate.EField(paygate.CodeInvalidArgument, "channel", "%s callback: wrong channel", name)
	}
	if !r.Status.Final() {
		return channel.Result{}, paygate.EField(paygate.CodeInvalidArgument, "status", "%s callback: status must be final", name)
	}
	return r, nil
}
