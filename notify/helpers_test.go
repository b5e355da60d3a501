package notify_test

import (
	"bytes"
	"context"
	"crypto/rsa"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"paygate"
	"paygate/notify"
	"paygate/signing"
	"paygate/store"
)

// t0 is 2026-11-22 10:00 in Shanghai.
var t0 = time.Date(2026, 11, 22, 2, 0, 0, 0, time.UTC)

const apiv3Key = "0123456789abcdefABCDEF0123456789"

var (
	keyOnce     sync.Once
	platformKey *rsa.PrivateKey
)

// platform returns the test platform key (generated once per run) and its serial.
func platform(t testing.TB) (*rsa.PrivateKey, string) {
	keyOnce.Do(func() {
		k, err := signing.GenerateKey()
		if err != nil {
			panic(err)
		}
		platformKey = k
	})
	return platformKey, signing.SerialNo(&platformKey.PublicKey)
}

// keys is a notify.Keys for tests; err, when set, fails every look-up.
type keys struct {
	err   atomic.Pointer[error]
	calls atomic.Int64
}

func (k *keys) NotificationKeys(_ context.Context, merchantID string) (string, string, *rsa.PrivateKey, error) {
	k.calls.Add(1)
	if e := k.err.Load(); e != nil {
		return "", "", nil, *e
	}
	key, serial := platform(nil)
	return apiv3Key, serial, key, nil
}

// received is one request the merchant's endpoint got.
type received struct {
	Header http.Header
	Body   []byte
}

// merchant is a merchant's notify endpoint on 127.0.0.1. It answers status
// (200 unless set) unless handle is set, and records every request.
type merchant struct {
	srv    *httptest.Server
	status atomic.Int32
	mu     sync.Mutex
	reqs   []received
	handle func(w http.ResponseWriter, r *http.Request, body []byte) // optional, after recording
}

func newMerchant(t testing.TB) *merchant {
	m := &merchant{}
	m.status.Store(200)
	m.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		m.mu.Lock()
		m.reqs = append(m.reqs, received{Header: r.Header.Clone(), Body: body})
		h := m.handle
		m.mu.Unlock()
		if h != nil {
			r.Body = io.NopCloser(bytes.NewReader(body))
			h(w, r, body)
			return
		}
		w.WriteHeader(int(m.status.Load()))
		io.WriteString(w, `{"code":"FAIL","message":"merchant says no"}`)
	}))
	t.Cleanup(m.srv.Close)
	return m
}

func (m *merchant) requests() []received {
	m.mu.Lock()
	defer m.mu.Unlock()
	return append([]received(nil), m.reqs...)
}

func (m *merchant) setHandler(h func(w http.ResponseWriter, r *http.Request, body []byte)) {
	m.mu.Lock()
	m.handle = h
	m.mu.Unlock()
}

// fixture is one test's database, clock, keys, worker and service.
type fixture struct {
	t     *testing.T
	ctx   context.Context
	db    *store.DB
	clock *paygate.ManualClock
	keys  *keys
	w     *notify.Worker
	svc   *notify.Service
}

func newFixture(t *testing.T, db *store.DB, opt notify.Options) *fixture {
	t.Helper()
	f := &fixture{t: t, ctx: context.Background(), db: db, clock: paygate.NewManualClock(t0), keys: &keys{}}
	f.w = f.worker(opt)
	f.svc = notify.NewService(db.Notify(), f.clock)
	return f
}

func (f *fixture) worker(opt notify.Options) *notify.Worker {
	f.t.Helper()
	if opt.Logger == nil {
		opt.Logger = slog.New(slog.NewTextHandler(f.t.Output(), &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	w, err := notify.NewWorker(f.db.Notify(), f.keys, f.clock, opt)
	require.NoError(f.t, err)
	return w
}

// event returns a sandbox TRANSACTION.SUCCESS event for merchant mch to url.
func event(mch, url string) notify.Event {
	return notify.Event{
		MerchantID:   mch,
		EventType:    "TRANSACTION.SUCCESS",
		OriginalType: "transaction",
		Summary:      "支付成功",
		URL:          url,
		Sandbox:      true,
		Payload:      []byte(`{"id":"ord_1","out_trade_no":"TRADE-SECRET-7731","status":"SUCCESS","amount":{"total":100,"currency":"CNY"}}`),
	}
}

// enqueue commits evs in one transaction and returns their ids.
func (f *fixture) enqueue(evs ...notify.Event) []string {
	f.t.Helper()
	for i := range evs {
		if evs[i].ID == "" {
			evs[i].ID = paygate.NewID(paygate.PrefixEvent)
		}
	}
	require.NoError(f.t, f.db.InTx(f.ctx, func(tx *store.Tx) error {
		return notify.Enqueue(f.ctx, tx, f.clock, evs...)
	}))
	ids := make([]string, len(evs))
	for i, e := range evs {
		ids[i] = e.ID
	}
	return ids
}

// runOnce runs one batch and requires it to attempt want events.
func (f *fixture) runOnce(want int) {
	f.t.Helper()
	n, err := f.w.RunOnce(f.ctx)
	require.NoError(f.t, err)
	require.Equal(f.t, want, n, "events attempted")
}

func (f *fixture) get(mch, id string) notify.Record {
	f.t.Helper()
	r, err := f.svc.Get(f.ctx, mch, id)
	require.NoError(f.t, err)
	return r
}

func requireCode(t *testing.T, err error, code paygate.Code) {
	t.Helper()
	require.Error(t, err)
	require.Equal(t, code, paygate.CodeOf(err), "error: %v", err)
}

// lastAttempt returns the record's newest attempt.
func lastAttempt(t *testing.T, r notify.Record) notify.Attempt {
	t.Helper()
	require.NotEmpty(t, r.Attempts)
	return r.Attempts[len(r.Attempts)-1]
}
