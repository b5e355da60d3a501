package httpapi

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"io"
	"log/slog"
	"net/http"
	"time"

	"paygate"
	"paygate/store"
)

// IdempotencyHeader is the request header that makes a POST safe to
// retry: the first answer (other than a server error) under a key is kept
// for a day, and a retry with the same key and the same request gets it
// again, marked with the ReplayedHeader.
const (
	IdempotencyHeader = "Idempotency-Key"
	ReplayedHeader    = "Idempotent-Replayed"
)

// Idempotency-Key limits and lifetimes.
const (
	MaxIdempotencyKey = 255              // bytes, visible ASCII
	IdempotencyTTL    = 24 * time.Hour   // how long an answer is kept
	idempotencyStale  = 60 * time.Second // a request holding a key longer than this died
)

// IdempotencyStore keeps the answers of requests sent with an
// Idempotency-Key; *store.IdempotencyKeys implements it.
type IdempotencyStore interface {
	BeginIdempotent(ctx context.Context, merchantID, key, requestHash string, now, staleBefore time.Time) (bool, store.IdempotentRecord, error)
	FinishIdempotent(ctx context.Context, merchantID, key string, status int, body []byte) error
	AbandonIdempotent(ctx context.Context, merchantID, key string) error
}

var _ IdempotencyStore = store.IdempotencyKeys{}

// Idempotent wraps an authenticated POST handler with Idempotency-Key
// handling (the Stripe semantics, per merchant):
//
//   - no header: the request runs as usual;
//   - a new key: the request runs; its answer is kept unless it is a
//     server error (5xx: the command's transaction rolled back, so a retry
//     runs it again);
//   - the same key and the same method, path and body: the kept answer,
//     with Idempotent-Replayed: true, and nothing runs;
//   - the same key with a different request: 409 ID_CONFLICT;
//   - the same key while its first request still runs: 409 CONFLICT (retry
//     later);
//   - a malformed key (empty, over 255 bytes, not visible ASCII): 400
//     INVALID_ARGUMENT.
//
// Natural keys (out_trade_no, out_refund_no, ...) stay the primary
// protection of create requests; the header makes the other POSTs
// (close, capture, void, revoke, resend) retry-safe too.
func Idempotent(st IdempotencyStore, clock paygate.Clock, log *slog.Logger, next http.Handler) http.Handler {
	if st == nil {
		return next
	}
	if log == nil {
		log = slog.Default()
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		key, present := r.Header[http.CanonicalHeaderKey(IdempotencyHeader)]
		if !present {
			next.ServeHTTP(w, r)
			return
		}
		m, ok := merchantOf(w, r)
		if !ok {
			return
		}
		if len(key) != 1 || !validIdempotencyKey(key[0]) {
			WriteError(w, paygate.EField(paygate.CodeInvalidArgument, IdempotencyHeader,
				"Idempotency-Key must be one value of 1 to %d visible ASCII characters", MaxIdempotencyKey))
			return
		}
		// The authentication middleware has read the body already (within
		// the route's limit) and handed it on as a bytes reader.
		body, err := io.ReadAll(r.Body)
		if err != nil {
			WriteError(w, paygate.E(paygate.CodeInvalidArgument, "the request body could not be read"))
			return
		}
		r.Body = io.NopCloser(bytes.NewReader(body))
		h := sha256.New()
		io.WriteString(h, r.Method+"\n"+r.URL.RequestURI()+"\n")
		h.Write(body)
		hash := hex.EncodeToString(h.Sum(nil))
		now := clock.Now().UTC()
		started, prior, err := st.BeginIdempotent(r.Context(), m.ID, key[0], hash, now, now.Add(-idempotencyStale))
		switch {
		case err != nil:
			WriteError(w, err)
			return
		case !started && prior.RequestHash != hash:
			WriteError(w, paygate.EField(paygate.CodeIDConflict, IdempotencyHeader,
				"this Idempotency-Key was used with a different request"))
			return
		case !started && prior.Status == 0:
			WriteError(w, paygate.EField(paygate.CodeConflict, IdempotencyHeader,
				"a request with this Idempotency-Key is still running; retry later"))
			return
		case !started:
			hd := w.Header()
			hd.Set("Content-Type", "application/json")
			hd.Set("X-Content-Type-Options", "nosniff")
			hd.Set(ReplayedHeader, "true")
			w.WriteHeader(prior.Status)
			w.Write(prior.Body)
			return
		}
		rec := &keptResponse{ResponseWriter: w}
		next.ServeHTTP(rec, r)
		// The answer is kept even when the client went away: a retry must
		// find it. A fresh context, since the request's may be cancelled.
		ctx := context.WithoutCancel(r.Context())
		if rec.status == 0 {
			rec.status = http.StatusOK
		}
		if rec.status >= 500 {
			err = st.AbandonIdempotent(ctx, m.ID, key[0])
		} else {
			err = st.FinishIdempotent(ctx, m.ID, key[0], rec.status, rec.body.Bytes())
		}
		if err != nil {
			// The request's answer went out; a retry with this key will
			// find it running until it turns stale, then run it again.
			log.ErrorContext(ctx, "idempotency: keeping the answer failed", "merchant_id", m.ID, "error", err)
		}
	})
}

// validIdempotencyKey reports whether k is 1 to MaxIdempotencyKey visible
// ASCII characters.
func validIdempotencyKey(k string) bool {
	if k == "" || len(k) > MaxIdempotencyKey {
		return false
	}
	for i := 0; i < len(k); i++ {
		if k[i] < 0x21 || k[i] > 0x7e {
			return false
		}
	}
	return true
}

// keptResponse passes a response through while keeping its status and
// body.
type keptResponse struct {
	http.ResponseWriter
	status int
	body   bytes.Buffer
}

func (k *keptResponse) WriteHeader(status int) {
	if k.status == 0 {
		k.status = status
	}
	k.ResponseWriter.WriteHeader(status)
}

func (k *keptResponse) Write(b []byte) (int, error) {
	if k.status == 0 {
		k.status = http.StatusOK
	}
	k.body.Write(b)
	return k.ResponseWriter.Write(b)
}

// recordError passes an error's cause to the observing middleware's
// writer, if it is one.
func (k *keptResponse) recordError(err error) {
	if rec, ok := k.ResponseWriter.(errorRecorder); ok {
		rec.recordError(err)
	}
}
