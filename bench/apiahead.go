package bench

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"runtime"
	"sync"
	"sync/atomic"
	"time"

	apiclient "paygate/client"
	"paygate/signing"
)

// aheadCreates is the create workload with each request signed before its
// slice starts: the same signed POST /v1/orders the SDK sends (signed as
// client.Client.Do signs, the response verified as it verifies), but the
// merchant's RSA signature is not computed on the measured cores while the
// slice runs. It shows what the server sustains when the merchants' signing
// happens on the merchants' machines, as it does in production. A request
// is used once (its nonce is new), within the ±300 s timestamp window.
type aheadCreates struct {
	cfg        apiclient.Config // credentials, BaseURL and HTTPClient
	sdk        *apiclient.Client
	notifyURL  string
	outTradeNo func() string
	mu         sync.Mutex
	pool       chan signedRequest
	inline     atomic.Int64 // requests signed in a slice because the pool ran dry
}

// signedRequest is a create-order body with its Authorization header.
type signedRequest struct {
	body []byte
	auth string
}

const aheadPath = "/v1/orders"

func (a *aheadCreates) sign() (signedRequest, error) {
	body, err := json.Marshal(orderRequest(a.outTradeNo(), a.notifyURL))
	if err != nil {
		return signedRequest{}, err
	}
	ts, nonce := time.Now().Unix(), signing.NewNonce()
	sig, err := signing.Sign(a.cfg.PrivateKey, signing.RequestMessage(http.MethodPost, aheadPath, ts, nonce, body))
	if err != nil {
		return signedRequest{}, err
	}
	auth := signing.Authorization{MchID: a.cfg.MchID, Nonce: nonce, Timestamp: ts, SerialNo: a.cfg.SerialNo, Signature: sig}.String()
	return signedRequest{body: body, auth: auth}, nil
}

// prepare replaces the pool with n freshly signed requests, signed by
// GOMAXPROCS goroutines.
func (a *aheadCreates) prepare(ctx context.Context, n int) error {
	n = min(max(n, 1), 100_000)
	pool := make(chan signedRequest, n)
	var wg sync.WaitGroup
	var left atomic.Int64
	left.Store(int64(n))
	procs := runtime.GOMAXPROCS(0)
	errs := make([]error, procs)
	for k := range procs {
		wg.Go(func() {
			for left.Add(-1) >= 0 && ctx.Err() == nil {
				var s signedRequest
				if s, errs[k] = a.sign(); errs[k] != nil {
					return
				}
				pool <- s
			}
		})
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			return err
		}
	}
	a.mu.Lock()
	a.pool = pool
	a.mu.Unlock()
	return ctx.Err()
}

func (a *aheadCreates) next() (signedRequest, error) {
	a.mu.Lock()
	pool := a.pool
	a.mu.Unlock()
	select {
	case s := <-pool:
		return s, nil
	default:
		a.inline.Add(1)
		return a.sign()
	}
}

func (a *aheadCreates) workload() apiWorkload {
	return func(ctx context.Context) (sample, error) {
		ctx, cancel := context.WithTimeout(ctx, opTimeout)
		defer cancel()
		s, err := a.next()
		if err != nil {
			return sample{}, err
		}
		t0 := time.Now()
		if err := a.send(ctx, s); err != nil {
			return sample{}, fmt.Errorf("create order (signed ahead): %w", err)
		}
		return sample{total: time.Since(t0)}, nil
	}
}

// send posts the signed request and checks the answer as the SDK does: a
// verified signature, then 201.
func (a *aheadCreates) send(ctx context.Context, s signedRequest) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, a.cfg.BaseURL+aheadPath, bytes.NewReader(s.body))
	if err != nil {
		return err
	}
	req.Header.Set("Authorization", s.auth)
	req.Header.Set("Accept", "application/json")
	req.Header.Set("Content-Type", "application/json")
	resp, err := a.cfg.HTTPClient.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	rb, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return err
	}
	if err := a.sdk.VerifySignature(resp.Header, rb); err != nil {
		return err
	}
	if resp.StatusCode != http.StatusCreated {
		return fmt.Errorf("HTTP %d: %.200s", resp.StatusCode, rb)
	}
	return nil
}
