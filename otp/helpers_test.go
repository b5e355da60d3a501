package otp_test

import (
	"bytes"
	"context"
	"encoding/binary"
	"log/slog"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"paygate"
	"paygate/otp"
	"paygate/sms"
	"paygate/store"
)

// t0 is 2026-11-22 10:00 in Shanghai.
var t0 = time.Date(2026, 11, 22, 2, 0, 0, 0, time.UTC)

const phone = "13800000000"

var (
	hmacKey = bytes.Repeat([]byte{7}, 32)
	smsKey  = bytes.Repeat([]byte{9}, 32)
)

// codes is a deterministic code source: each Read yields the next value as
// 4 big-endian bytes (values below 1e6 come out as that code), then falls
// back to the pattern of zeros.
type codes struct {
	mu   sync.Mutex
	vals []uint32
}

func (c *codes) Read(p []byte) (int, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	var v uint32
	if len(c.vals) > 0 {
		v, c.vals = c.vals[0], c.vals[1:]
	}
	var b [4]byte
	binary.BigEndian.PutUint32(b[:], v)
	return copy(p, b[:]), nil
}

// syncBuffer is a bytes.Buffer safe for concurrent writes (log capture).
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// env is one test's service, outbox worker and sandbox over a database.
type env struct {
	db      *store.DB
	clock   *paygate.ManualClock
	svc     *otp.Service
	worker  *sms.Worker
	sandbox *sms.Sandbox
	logs    *syncBuffer
}

// newEnv builds an env; mod, when set, adjusts the configuration.
func newEnv(t *testing.T, db *store.DB, mod func(*otp.Config)) *env {
	t.Helper()
	e := &env{db: db, clock: paygate.NewManualClock(t0), logs: &syncBuffer{}}
	log := slog.New(slog.NewJSONHandler(e.logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	kr, err := sms.NewKeyring(smsKey)
	require.NoError(t, err)
	cfg := otp.Config{Store: db.OTP(), Keys: [][]byte{hmacKey}, SMSKeys: kr, Clock: e.clock, Logger: log}
	if mod != nil {
		mod(&cfg)
	}
	e.svc, err = otp.New(cfg)
	require.NoError(t, err)
	e.sandbox = sms.NewSandbox(db.SMSInbox(), e.clock)
	e.worker, err = sms.NewWorker(db.SMS(), kr, e.sandbox, e.clock, sms.Options{Name: "w1", Logger: log})
	require.NoError(t, err)
	return e
}

// issue issues a code, delivers its SMS through the worker and returns the
// code as the phone received it.
func (e *env) issue(t *testing.T, purpose, subject string) (otp.Issued, string) {
	t.Helper()
	iss, err := e.svc.Issue(context.Background(), purpose, subject, phone)
	require.NoError(t, err)
	return iss, e.deliver(t, iss.SMSID)
}

// deliver runs the worker and returns the code of the SMS with the id.
func (e *env) deliver(t *testing.T, smsID string) string {
	t.Helper()
	_, err := e.worker.RunOnce(context.Background())
	require.NoError(t, err)
	m, err := e.sandbox.Latest(context.Background(), phone)
	require.NoError(t, err)
	require.Equal(t, smsID, m.MessageID)
	code := m.Code()
	require.Len(t, code, 6)
	return code
}

// wrongCode returns a six-digit code other than code.
func wrongCode(code string) string {
	if code == "000000" {
		return "000001"
	}
	return "000000"
}
