package httpapi

import (
	"bytes"
	"context"
	"crypto/rsa"
	"fmt"
	"net/http"
	"runtime/debug"
	"strconv"
	"time"

	"paygate"
	"paygate/merchant"
	"paygate/signing"
)

// PlatformSigner supplies the key responses are signed with and the time
// they are signed at; *merchant.Service implements it (from an in-memory
// copy of the platform keys, so signing costs no database round trip).
type PlatformSigner interface {
	// SigningKey returns the serial and private key of the platform key
	// that signs now.
	SigningKey(ctx context.Context) (serial string, key *rsa.PrivateKey, err error)
	// Now is the signing time (Wechatpay-Timestamp).
	Now() time.Time
}

// SignResponses returns next with every response signed as WeChat Pay
// APIv3 responses are: it buffers the status, headers and body, then adds
// Wechatpay-Timestamp, Wechatpay-Nonce (fresh), Wechatpay-Serial (the
// platform key's serial) and Wechatpay-Signature (RSA-SHA256, base64) over
// "TIMESTAMP\nNONCE\nBODY\n", and Content-Length. Errors answered by next
// (401, 413, ...) are signed like any response, and so is the 500 a panic
// in next turns into (the panic is recorded for the request log;
// http.ErrAbortHandler still aborts). If the response cannot be signed (no
// platform key), it answers 503 UNAVAILABLE, unsigned. The ~2 ms RSA
// signature runs after next returns: outside any transaction or lock of
// next's. Responses are buffered whole, so next must not stream.
func SignResponses(s PlatformSigner, next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		bw := &bufferedWriter{w: w}
		if !serveRecovering(bw, r, next) {
			return
		}
		status := bw.status
		if status == 0 {
			status = http.StatusOK
		}
		serial, key, err := s.SigningKey(r.Context())
		var ts int64
		var nonce, sig string
		if err == nil {
			ts, nonce = s.Now().Unix(), signing.NewNonce()
			sig, err = signing.Sign(key, signing.ResponseMessage(ts, nonce, bw.body.Bytes()))
		}
		h := w.Header()
		if err != nil {
			for k := range h {
				if k != requestIDHeader {
					delete(h, k)
				}
			}
			WriteError(w, &paygate.Error{Code: paygate.CodeUnavailable, Message: "the response could not be signed; retry",
				Err: fmt.Errorf("httpapi: sign response: %w", err)})
			return
		}
		h.Set(signing.HeaderTimestamp, strconv.FormatInt(ts, 10))
		h.Set(signing.HeaderNonce, nonce)
		h.Set(signing.HeaderSerial, serial)
		h.Set(signing.HeaderSignature, sig)
		h.Set("Content-Length", strconv.Itoa(bw.body.Len()))
		w.WriteHeader(status)
		w.Write(bw.body.Bytes())
	})
}

// serveRecovering runs next into bw. A panic other than
// http.ErrAbortHandler becomes a buffered 500 INTERNAL (to be signed) and
// is recorded with its stack for the request log. It reports whether the
// buffered response should be sent.
func serveRecovering(bw *bufferedWriter, r *http.Request, next http.Handler) (ok bool) {
	defer func() {
		p := recover()
		if p == nil {
			return
		}
		if p == http.ErrAbortHandler {
			panic(p)
		}
		bw.reset()
		WriteError(bw, paygate.Internal(fmt.Errorf("panic: %v\n%s", p, debug.Stack())))
		ok = true
	}()
	next.ServeHTTP(bw, r)
	return true
}

// bufferedWriter holds a response until it is signed. Headers go straight
// to the underlying writer's map (nothing is sent before WriteHeader).
type bufferedWriter struct {
	w      http.ResponseWriter
	status int
	body   bytes.Buffer
}

// Header returns the underlying header map.
func (b *bufferedWriter) Header() http.Header { return b.w.Header() }

// WriteHeader records the first final status; informational (1xx) ones
// pass through at once.
func (b *bufferedWriter) WriteHeader(status int) {
	if status < 200 {
		b.w.WriteHeader(status)
		return
	}
	if b.status == 0 {
		b.status = status
	}
}

// Write buffers the body.
func (b *bufferedWriter) Write(p []byte) (int, error) {
	if b.status == 0 {
		b.status = http.StatusOK
	}
	return b.body.Write(p)
}

func (b *bufferedWriter) reset() {
	b.status = 0
	b.body.Reset()
	h := b.w.Header()
	for k := range h {
		if k != requestIDHeader {
			delete(h, k)
		}
	}
}

// recordError passes the cause of an error response on to the request
// log (the observing middleware's writer).
func (b *bufferedWriter) recordError(err error) {
	if rec, ok := b.w.(errorRecorder); ok {
		rec.recordError(err)
	}
}

// PlatformKeyLister lists the platform's public keys; *merchant.Service
// implements it.
type PlatformKeyLister interface {
	PlatformKeys(ctx context.Context) ([]merchant.PlatformKey, error)
}

// CertificatesHandler serves GET /v1/certificates: 200 with a
// CertificateList of the platform public keys valid now or scheduled to
// take over (newest first), with which merchants verify the
// Wechatpay-Signature of responses and notifications. Mount it behind
// Authenticate and SignResponses like the other /v1 routes.
func CertificatesHandler(keys PlatformKeyLister) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		pks, err := keys.PlatformKeys(r.Context())
		if err != nil {
			WriteError(w, err)
			return
		}
		out := CertificateList{Data: make([]Certificate, 0, len(pks))}
		for _, k := range pks {
			out.Data = append(out.Data, Certificate{SerialNo: k.SerialNo, PublicKey: k.PublicKeyPEM,
				EffectiveTime: k.ValidFrom, ExpireTime: k.ValidUntil})
		}
		writeJSON(w, http.StatusOK, out)
	})
}
