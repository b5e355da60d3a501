// Package client is paygate's Go SDK for merchants. It signs every request
// with the merchant's private key (WECHATPAY2-SHA256-RSA2048, the WeChat Pay
// APIv3 scheme), verifies every response's signature with the platform's
// public key, and decrypts and verifies notifications.
//
// A response whose signature does not verify is never returned as data: the
// call fails with ErrBadSignature, because a man in the middle could have
// written it.
package client

import (
	"bytes"
	"context"
	"crypto/rsa"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"paygate/signing"
)

// ErrBadSignature means a response or notification was not signed by the
// platform key the client trusts, or was signed too long ago.
var ErrBadSignature = errors.New("paygate client: response signature does not verify")

// APIError is an error answer from paygate: the HTTP status and the stable
// code and message of the error JSON. Branch on Code, never on Message.
type APIError struct {
	Status  int            `json:"-"`
	Code    string         `json:"code"`
	Message string         `json:"message"`
	Detail  map[string]any `json:"detail,omitempty"`
}

// Error formats the status, code and message.
func (e *APIError) Error() string {
	return fmt.Sprintf("paygate: %d %s: %s", e.Status, e.Code, e.Message)
}

// Config holds a merchant's credentials, as `paygate merchant create` prints
// them.
type Config struct {
	BaseURL    string          // e.g. "http://127.0.0.1:8080"
	MchID      string          // the merchant id
	SerialNo   string          // serial of the merchant key that signs requests
	PrivateKey *rsa.PrivateKey // the merchant's private key
	// PlatformKeys maps platform key serials to public keys; responses must
	// be signed by one of them.
	PlatformKeys map[string]*rsa.PublicKey
	APIv3Key     string       // 32 bytes; decrypts notifications
	HTTPClient   *http.Client // nil means a client with a 30 s timeout
	// Now is the clock for timestamps; nil means time.Now.
	Now func() time.Time
}

// Client calls paygate's open API. It is safe for concurrent use.
type Client struct {
	cfg Config
	mu  sync.RWMutex
}

// New returns a Client. It fails if a required credential is missing.
func New(cfg Config) (*Client, error) {
	switch {
	case cfg.BaseURL == "":
		return nil, errors.New("paygate client: BaseURL is required")
	case cfg.MchID == "" || cfg.SerialNo == "" || cfg.PrivateKey == nil:
		return nil, errors.New("paygate client: MchID, SerialNo and PrivateKey are required")
	case len(cfg.PlatformKeys) == 0:
		return nil, errors.New("paygate client: at least one platform public key is required")
	}
	cfg.BaseURL = strings.TrimRight(cfg.BaseURL, "/")
	if cfg.HTTPClient == nil {
		cfg.HTTPClient = &http.Client{Timeout: 30 * time.Second}
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	return &Client{cfg: cfg}, nil
}

type idempotencyKey struct{}

// WithIdempotencyKey returns ctx carrying an Idempotency-Key for the POST
// sent with it: retrying that POST with the same key and the same request
// gets the first answer again (for 24 hours) instead of running it twice.
// Use it for the POSTs that have no merchant number of their own (close,
// capture, void, revoke, resend); create requests are already idempotent
// by out_trade_no, out_refund_no and the other merchant numbers. A key is
// 1 to 255 visible ASCII characters, e.g. a UUID made once per operation.
func WithIdempotencyKey(ctx context.Context, key string) context.Context {
	return context.WithValue(ctx, idempotencyKey{}, key)
}

// Do sends a signed request to path (with its query, e.g. "/v1/orders?limit=10")
// with in marshalled as the JSON body (nil for none), verifies the response's
// signature and decodes a 2xx body into out (nil to discard). A non-2xx
// answer is returned as *APIError. It returns the HTTP status.
func (c *Client) Do(ctx context.Context, method, path string, in, out any) (int, error) {
	var body []byte
	if in != nil {
		var err error
		if body, err = json.Marshal(in); err != nil {
			return 0, fmt.Errorf("paygate client: encode request: %w", err)
		}
	}
	ts := c.cfg.Now().Unix()
	nonce := signing.NewNonce()
	sig, err := signing.Sign(c.cfg.PrivateKey, signing.RequestMessage(method, path, ts, nonce, body))
	if err != nil {
		return 0, err
	}
	req, err := http.NewRequestWithContext(ctx, method, c.cfg.BaseURL+path, bytes.NewReader(body))
	if err != nil {
		return 0, fmt.Errorf("paygate client: %w", err)
	}
	req.Header.Set("Authorization", signing.Authorization{MchID: c.cfg.MchID, Nonce: nonce, Timestamp: ts, SerialNo: c.cfg.SerialNo, Signature: sig}.String())
	req.Header.Set("Accept", "application/json")
	if key, ok := ctx.Value(idempotencyKey{}).(string); ok && method == http.MethodPost {
		req.Header.Set("Idempotency-Key", key)
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := c.cfg.HTTPClient.Do(req)
	if err != nil {
		return 0, fmt.Errorf("paygate client: %w", err)
	}
	defer resp.Body.Close()
	rb, err := io.ReadAll(io.LimitReader(resp.Body, 16<<20))
	if err != nil {
		return resp.StatusCode, fmt.Errorf("paygate client: read response: %w", err)
	}
	if err := c.VerifySignature(resp.Header, rb); err != nil {
		return resp.StatusCode, err
	}
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		ae := &APIError{Status: resp.StatusCode}
		if json.Unmarshal(rb, ae) != nil || ae.Code == "" {
			ae.Code, ae.Message = "UNKNOWN", strings.TrimSpace(string(rb))
		}
		return resp.StatusCode, ae
	}
	if out != nil && len(rb) > 0 {
		if err := json.Unmarshal(rb, out); err != nil {
			return resp.StatusCode, fmt.Errorf("paygate client: decode response: %w", err)
		}
	}
	return resp.StatusCode, nil
}

// VerifySignature checks the Wechatpay-* headers over body: a trusted
// platform serial, a timestamp within 5 minutes, and a valid signature.
// It returns ErrBadSignature (wrapped) otherwise.
func (c *Client) VerifySignature(h http.Header, body []byte) error {
	serial := h.Get(signing.HeaderSerial)
	c.mu.RLock()
	pub := c.cfg.PlatformKeys[serial]
	c.mu.RUnlock()
	if pub == nil {
		return fmt.Errorf("%w: unknown platform serial %q", ErrBadSignature, serial)
	}
	ts, err := strconv.ParseInt(h.Get(signing.HeaderTimestamp), 10, 64)
	if err != nil {
		return fmt.Errorf("%w: bad timestamp", ErrBadSignature)
	}
	if signing.CheckTimestamp(ts, c.cfg.Now()) != nil {
		return fmt.Errorf("%w: timestamp too far from now", ErrBadSignature)
	}
	if signing.Verify(pub, signing.ResponseMessage(ts, h.Get(signing.HeaderNonce), body), h.Get(signing.HeaderSignature)) != nil {
		return ErrBadSignature
	}
	return nil
}

// AddPlatformKey trusts another platform key (for rotation).
func (c *Client) AddPlatformKey(serial string, pub *rsa.PublicKey) {
	c.mu.Lock()
	defer c.mu.Unlock()
	keys := make(map[string]*rsa.PublicKey, len(c.cfg.PlatformKeys)+1)
	for k, v := range c.cfg.PlatformKeys {
		keys[k] = v
	}
	keys[serial] = pub
	c.cfg.PlatformKeys = keys
}

// Notification is a notification as paygate posts it to notify_url.
type Notification struct {
	ID           string           `json:"id"`
	CreateTime   string           `json:"create_time"`
	EventType    string           `json:"event_type"`
	ResourceType string           `json:"resource_type"`
	Resource     signing.Resource `json:"resource"`
	Summary      string           `json:"summary"`
}

// ParseNotification verifies a notification request's signature, decrypts
// its resource with the APIv3 key and unmarshals the plaintext into resource
// (e.g. *Order). Answer 2xx only after it succeeds and you have stored the
// result; paygate retries otherwise, always with the same Notification.ID,
// so handle each id once.
func (c *Client) ParseNotification(r *http.Request, resource any) (Notification, error) {
	var n Notification
	body, err := io.ReadAll(io.LimitReader(r.Body, 1<<20))
	if err != nil {
		return n, fmt.Errorf("paygate client: read notification: %w", err)
	}
	if err := c.VerifySignature(r.Header, body); err != nil {
		return n, err
	}
	if err := json.Unmarshal(body, &n); err != nil {
		return n, fmt.Errorf("paygate client: decode notification: %w", err)
	}
	pt, err := signing.Decrypt(c.cfg.APIv3Key, n.Resource)
	if err != nil {
		return n, fmt.Errorf("paygate client: decrypt notification: %w", err)
	}
	if resource != nil {
		if err := json.Unmarshal(pt, resource); err != nil {
			return n, fmt.Errorf("paygate client: decode notification resource: %w", err)
		}
	}
	return n, nil
}
