package bench

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"net/http"
	"runtime"
	"sync"
	"sync/atomic"
	"time"

	apiclient "paygate/client"
	"paygate/signing"
)

// Pre-signing. Merchants sign their requests on their own machines; on
// these two shared cores the load client's RSA signature (about a
// millisecond, as much as the server's response signature) would be
// counted against the server. So the create-order requests of the measured
// window, those of the create workload and the create that starts each
// complete payment, are signed before measuring starts, into one pool per
// workload and client count: the same signed POST /v1/orders the SDK sends
// (signed as client.Client.Do signs), sent in the window and its signed
// answer verified as the SDK verifies it. Each request is used once (its
// nonce is new) within the server's ±300 s timestamp window: runs last
// seconds, and a pool older than presignMaxAge is signed afresh (unmeasured)
// before its next slice. A pool that runs dry signs in the window, and the
// report counts those requests. The SDK create workload keeps signing in
// the window, for comparison. The pay request of a complete payment is
// signed in the window: its path carries the order id the create returns.
const (
	// presignProbe is how long each workload is probed at each client
	// count to size its pool.
	presignProbe = 250 * time.Millisecond
	// presignMargin is how many times the probed rate's requests a pool
	// holds for the workload's measured duration.
	presignMargin = 2.0
	// maxPresigned bounds one pool (about 20 s of signing at 2,000
	// signatures/s).
	maxPresigned = 40_000
	// presignMaxAge is the oldest a pool's requests may be when a slice
	// starts (plus the slice's length): the server refuses timestamps more
	// than signing.Window away, and clocks may differ by a little.
	presignMaxAge = signing.Window - time.Minute
)

// PresignReport tells how many requests were signed before the measured
// window and how that went.
type PresignReport struct {
	// Requests is how many create-order requests were signed ahead, in
	// Took (unmeasured), with GOMAXPROCS goroutines.
	Requests int           `json:"requests"`
	Took     time.Duration `json:"took"`
	// OldestUsed is the age of the oldest pre-signed request sent (the
	// server accepts up to signing.Window).
	OldestUsed time.Duration `json:"oldest_used"`
	// Inline counts requests of the pre-signed workloads that were signed
	// in the window after all, because their pool ran dry.
	Inline int64 `json:"inline"`
	// Resigned counts pools signed afresh because they grew too old.
	Resigned int `json:"resigned"`
}

// signedRequest is a create-order body with its Authorization header,
// signed at signedAt.
type signedRequest struct {
	body     []byte
	auth     string
	signedAt time.Time
}

// presignPool is one workload's pre-signed requests at one client count.
type presignPool struct {
	reqs     []signedRequest
	next     atomic.Int64
	signedAt time.Time // when its oldest request was signed
}

// take returns the next unused request; false when the pool is used up.
func (p *presignPool) take() (signedRequest, bool) {
	if p == nil {
		return signedRequest{}, false
	}
	i := p.next.Add(1) - 1
	if i >= int64(len(p.reqs)) {
		return signedRequest{}, false
	}
	return p.reqs[i], true
}

// left returns how many requests are unused.
func (p *presignPool) left() int {
	if p == nil {
		return 0
	}
	return max(0, len(p.reqs)-int(p.next.Load()))
}

// presigner signs create-order requests as the SDK does and sends them.
type presigner struct {
	cfg        apiclient.Config // credentials, BaseURL and HTTPClient
	sdk        *apiclient.Client
	notifyURL  string
	outTradeNo func() string
	inline     atomic.Int64 // requests signed in the window: a pool ran dry
	oldest     atomic.Int64 // age in ns of the oldest pre-signed request sent
	signed     atomic.Int64 // requests signed ahead
	took       atomic.Int64 // ns spent signing ahead
	resigned   atomic.Int64
}

const createPath = "/v1/orders"

func (p *presigner) sign() (signedRequest, error) {
	body, err := json.Marshal(orderRequest(p.outTradeNo(), p.notifyURL))
	if err != nil {
		return signedRequest{}, err
	}
	now := time.Now()
	ts, nonce := now.Unix(), signing.NewNonce()
	sig, err := signing.Sign(p.cfg.PrivateKey, signing.RequestMessage(http.MethodPost, createPath, ts, nonce, body))
	if err != nil {
		return signedRequest{}, err
	}
	auth := signing.Authorization{MchID: p.cfg.MchID, Nonce: nonce, Timestamp: ts, SerialNo: p.cfg.SerialNo, Signature: sig}.String()
	return signedRequest{body: body, auth: auth, signedAt: now}, nil
}

// pool signs n requests with GOMAXPROCS goroutines (n is clamped to 1 ..
// maxPresigned), counting them as signed ahead when ahead is set.
func (p *presigner) pool(ctx context.Context, n int, ahead bool) (*presignPool, error) {
	n = min(max(n, 1), maxPresigned)
	start := time.Now()
	pool := &presignPool{reqs: make([]signedRequest, n), signedAt: start}
	var next atomic.Int64
	procs := runtime.GOMAXPROCS(0)
	errs := make([]error, procs)
	var wg sync.WaitGroup
	for k := range procs {
		wg.Go(func() {
			for ctx.Err() == nil {
				i := next.Add(1) - 1
				if i >= int64(n) {
					return
				}
				if pool.reqs[i], errs[k] = p.sign(); errs[k] != nil {
					return
				}
			}
		})
	}
	wg.Wait()
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	for _, err := range errs {
		if err != nil {
			return nil, err
		}
	}
	if ahead {
		p.signed.Add(int64(n))
		p.took.Add(int64(time.Since(start)))
	}
	return pool, nil
}

// next returns a request of the pool, or one signed now when the pool is
// used up (counted in inline).
func (p *presigner) next(pool *presignPool) (signedRequest, error) {
	if s, ok := pool.take(); ok {
		age := int64(time.Since(s.signedAt))
		for {
			old := p.oldest.Load()
			if age <= old || p.oldest.CompareAndSwap(old, age) {
				break
			}
		}
		return s, nil
	}
	p.inline.Add(1)
	return p.sign()
}

// report returns what was signed ahead so far.
func (p *presigner) report() PresignReport {
	return PresignReport{Requests: int(p.signed.Load()), Took: time.Duration(p.took.Load()),
		OldestUsed: time.Duration(p.oldest.Load()), Inline: p.inline.Load(), Resigned: int(p.resigned.Load())}
}

// poolSize is the size of a pool for a workload measured for d that ran
// at rate per second when probed, and can run at most at ceiling per
// second (the signing bound): presignMargin times the probed rate's
// requests, at most the ceiling's, plus a few per client.
func poolSize(rate, ceiling float64, d time.Duration, clients int) int {
	n := presignMargin * rate * d.Seconds()
	if ceiling > 0 {
		n = min(n, 1.25*ceiling*d.Seconds())
	}
	if math.IsNaN(n) || n < 0 {
		n = 0
	}
	return min(int(math.Ceil(n))+4*clients+16, maxPresigned)
}

// createWorkload sends pre-signed create-order requests from the pool
// current() returns.
func (p *presigner) createWorkload(current func() *presignPool) apiWorkload {
	return func(ctx context.Context) (sample, error) {
		ctx, cancel := context.WithTimeout(ctx, opTimeout)
		defer cancel()
		s, err := p.next(current())
		if err != nil {
			return sample{}, err
		}
		t0 := time.Now()
		if _, err := p.send(ctx, s); err != nil {
			return sample{}, fmt.Errorf("create order (pre-signed): %w", err)
		}
		return sample{total: time.Since(t0)}, nil
	}
}

// send posts the signed request and checks the answer as the SDK does: a
// verified signature, then 201; it returns the order created.
func (p *presigner) send(ctx context.Context, s signedRequest) (apiclient.Order, error) {
	var o apiclient.Order
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, p.cfg.BaseURL+createPath, bytes.NewReader(s.body))
	if err != nil {
		return o, err
	}
	req.Header.Set("Authorization", s.auth)
	req.Header.Set("Accept", "application/json")
	req.Header.Set("Content-Type", "application/json")
	resp, err := p.cfg.HTTPClient.Do(req)
	if err != nil {
		return o, err
	}
	defer resp.Body.Close()
	rb, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return o, err
	}
	if err := p.sdk.VerifySignature(resp.Header, rb); err != nil {
		return o, err
	}
	if resp.StatusCode != http.StatusCreated {
		return o, fmt.Errorf("HTTP %d: %.200s", resp.StatusCode, rb)
	}
	if err := json.Unmarshal(rb, &o); err != nil {
		return o, fmt.Errorf("decode the order: %w", err)
	}
	if o.ID == "" {
		return o, fmt.Errorf("the answer names no order: %.200s", rb)
	}
	return o, nil
}
