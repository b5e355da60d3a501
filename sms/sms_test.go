package sms_test

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"paygate"
	"paygate/sms"
	"paygate/store"
	"paygate/store/storetest"
)

var (
	ctx    = context.Background()
	t0     = time.Date(2026, 11, 22, 2, 0, 0, 0, time.UTC)
	smsKey = bytes.Repeat([]byte{9}, 32)
)

func keyring(t testing.TB) *sms.Keyring {
	kr, err := sms.NewKeyring(smsKey)
	require.NoError(t, err)
	return kr
}

// enqueue commits messages to the outbox.
func enqueue(t *testing.T, db *store.DB, clock paygate.Clock, msgs ...sms.Message) {
	t.Helper()
	require.NoError(t, db.InTx(ctx, func(tx *store.Tx) error { return sms.Enqueue(ctx, tx, keyring(t), clock, msgs...) }))
}

// flaky fails its first n sends of each message, then delivers to next.
type flaky struct {
	n     int32
	calls sync.Map // id -> *atomic.Int32
	next  sms.Sender
}

func (f *flaky) Send(ctx context.Context, m sms.Message) (string, error) {
	v, _ := f.calls.LoadOrStore(m.ID, new(atomic.Int32))
	if v.(*atomic.Int32).Add(1) <= f.n {
		return "", errors.New("provider said no to " + m.Text) // a careless provider echoing the text
	}
	return f.next.Send(ctx, m)
}

func TestWorkerRetriesOnScheduleThenSends(t *testing.T) {
	t.Parallel()
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		clock := paygate.NewManualClock(t0)
		var logs bytes.Buffer
		log := slog.New(slog.NewJSONHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
		box := sms.NewSandbox(db.SMSInbox(), clock)
		sender := &flaky{n: 2, next: box}
		w, err := sms.NewWorker(db.SMS(), keyring(t), sender, clock, sms.Options{Name: "w", Logger: log,
			Schedule: []time.Duration{5 * time.Second, 10 * time.Second}})
		require.NoError(t, err)
		enqueue(t, db, clock, sms.Message{ID: "sms_1", Phone: "13800000000", Purpose: "test", Text: "secret 424242"})

		for _, step := range []struct {
			advance  time.Duration
			attempts int
			status   sms.Status
		}{
			{0, 1, sms.StatusPending},               // fails, due in 5 s
			{4 * time.Second, 0, sms.StatusPending}, // not due yet
			{time.Second, 1, sms.StatusPending},     // fails, due in 10 s
			{10 * time.Second, 1, sms.StatusSent},   // sent
			{time.Hour, 0, sms.StatusSent},          // nothing left
		} {
			clock.Advance(step.advance)
			n, err := w.RunOnce(ctx)
			require.NoError(t, err)
			require.Equal(t, step.attempts, n)
			r, err := db.SMS().Message(ctx, "sms_1")
			require.NoError(t, err)
			require.Equal(t, step.status, r.Status)
		}
		m, err := box.Latest(ctx, "+8613800000000")
		require.NoError(t, err)
		require.Equal(t, "secret 424242", m.Text)
		require.Equal(t, "424242", m.Code())
		require.NotContains(t, logs.String(), "424242", "neither the text nor a sender's echo of it is logged")
		require.Contains(t, logs.String(), "138****0000")
	})
}

func TestWorkerGivesUpAfterTheSchedule(t *testing.T) {
	t.Parallel()
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		clock := paygate.NewManualClock(t0)
		w, err := sms.NewWorker(db.SMS(), keyring(t), &flaky{n: 100}, clock, sms.Options{Name: "w",
			Logger: slog.New(slog.DiscardHandler), Schedule: []time.Duration{time.Second}})
		require.NoError(t, err)
		enqueue(t, db, clock, sms.Message{ID: "sms_1", Phone: "13800000000", Purpose: "test", Text: "hello"})
		for range 2 {
			_, err := w.RunOnce(ctx)
			require.NoError(t, err)
			clock.Advance(time.Second)
		}
		r, err := db.SMS().Message(ctx, "sms_1")
		require.NoError(t, err)
		require.Equal(t, sms.StatusFailed, r.Status)
		require.Equal(t, sms.ClassSender, r.LastError)
		require.Equal(t, 2, r.Attempts)
		var body string
		require.NoError(t, db.SQL.QueryRow(`SELECT body_sealed FROM sms_messages WHERE id = 'sms_1'`).Scan(&body))
		require.Empty(t, body, "a failed message keeps no text")
	})
}

// TestWorkersShareTheOutbox runs several workers at once over many messages:
// each message is delivered exactly once and never attempted twice.
func TestWorkersShareTheOutbox(t *testing.T) {
	t.Parallel()
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		clock := paygate.NewManualClock(t0)
		var sends atomic.Int64
		box := sms.NewSandbox(db.SMSInbox(), clock)
		counting := senderFunc(func(ctx context.Context, m sms.Message) (string, error) {
			sends.Add(1)
			return box.Send(ctx, m)
		})
		const n = 60
		msgs := make([]sms.Message, n)
		for i := range msgs {
			msgs[i] = sms.Message{Phone: "1380000" + strconv.Itoa(1000+i), Purpose: "test", Text: "code " + strconv.Itoa(100000+i)}
		}
		enqueue(t, db, clock, msgs...)
		var wg sync.WaitGroup
		for i := range 4 {
			w, err := sms.NewWorker(db.SMS(), keyring(t), counting, clock, sms.Options{Name: "w" + strconv.Itoa(i),
				Concurrency: 5, Logger: slog.New(slog.DiscardHandler)})
			require.NoError(t, err)
			wg.Go(func() {
				for {
					k, err := w.RunOnce(ctx)
					if err != nil {
						t.Error(err)
						return
					}
					if k == 0 {
						return
					}
				}
			})
		}
		wg.Wait()
		require.EqualValues(t, n, sends.Load())
		var sent int
		require.NoError(t, db.SQL.QueryRow(`SELECT COUNT(*) FROM sms_messages WHERE status = 'SENT' AND attempts = 1`).Scan(&sent))
		require.Equal(t, n, sent)
	})
}

type senderFunc func(context.Context, sms.Message) (string, error)

func (f senderFunc) Send(ctx context.Context, m sms.Message) (string, error) { return f(ctx, m) }

func TestLeaseExpiryResendsAndInboxKeepsOneCopy(t *testing.T) {
	t.Parallel()
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		clock := paygate.NewManualClock(t0)
		enqueue(t, db, clock, sms.Message{ID: "sms_1", Phone: "13800000000", Purpose: "test", Text: "code 123456"})
		// A worker claims and vanishes.
		cs, err := db.SMS().ClaimDue(ctx, "ghost", t0, t0.Add(time.Minute), 10)
		require.NoError(t, err)
		require.Len(t, cs, 1)
		box := sms.NewSandbox(db.SMSInbox(), clock)
		_, err = box.Send(ctx, sms.Message{ID: "sms_1", Phone: "13800000000", Purpose: "test", Text: "code 123456"})
		require.NoError(t, err)
		w, err := sms.NewWorker(db.SMS(), keyring(t), box, clock, sms.Options{Name: "w", Logger: slog.New(slog.DiscardHandler)})
		require.NoError(t, err)
		n, err := w.RunOnce(ctx)
		require.NoError(t, err)
		require.Zero(t, n, "the lease holds")
		clock.Advance(time.Minute)
		n, err = w.RunOnce(ctx)
		require.NoError(t, err)
		require.Equal(t, 1, n)
		// The ghost's late result does not apply any more.
		ok, err := db.SMS().Finish(ctx, sms.Finish{ID: "sms_1", Owner: "ghost", Attempt: 1, Status: sms.StatusFailed, At: clock.Now()})
		require.NoError(t, err)
		require.False(t, ok)
		var copies int
		require.NoError(t, db.SQL.QueryRow(`SELECT COUNT(*) FROM sms_sandbox_inbox WHERE message_id = 'sms_1'`).Scan(&copies))
		require.Equal(t, 1, copies)
		r, err := db.SMS().Message(ctx, "sms_1")
		require.NoError(t, err)
		require.Equal(t, sms.StatusSent, r.Status)
		require.Equal(t, 2, r.Attempts)
	})
}

func TestEnqueueValidatesAndRollsBack(t *testing.T) {
	t.Parallel()
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		clock := paygate.NewManualClock(t0)
		for _, tc := range []struct {
			m     sms.Message
			field string
		}{
			{sms.Message{Phone: "1", Purpose: "p", Text: "t"}, "phone"},
			{sms.Message{Phone: "13800000000", Purpose: "", Text: "t"}, "purpose"},
			{sms.Message{Phone: "13800000000", Purpose: "p", Text: ""}, "text"},
			{sms.Message{Phone: "13800000000", Purpose: "p", Text: string(bytes.Repeat([]byte("x"), 501))}, "text"},
			{sms.Message{ID: "msg_1", Phone: "13800000000", Purpose: "p", Text: "t"}, "id"},
		} {
			err := db.InTx(ctx, func(tx *store.Tx) error { return sms.Enqueue(ctx, tx, keyring(t), clock, tc.m) })
			require.Equal(t, paygate.CodeInvalidArgument, paygate.CodeOf(err), "%+v", tc)
			require.Equal(t, tc.field, err.(*paygate.Error).Field)
		}
		enqueue(t, db, clock, sms.Message{ID: "sms_dup", Phone: "13800000000", Purpose: "p", Text: "t"})
		err := db.InTx(ctx, func(tx *store.Tx) error {
			return sms.Enqueue(ctx, tx, keyring(t), clock, sms.Message{ID: "sms_dup", Phone: "13800000000", Purpose: "p", Text: "t"})
		})
		require.Equal(t, paygate.CodeIDConflict, paygate.CodeOf(err))
		// Rolled back: nothing to send.
		boom := errors.New("boom")
		err = db.InTx(ctx, func(tx *store.Tx) error {
			require.NoError(t, sms.Enqueue(ctx, tx, keyring(t), clock, sms.Message{ID: "sms_rb", Phone: "13800000000", Purpose: "p", Text: "t"}))
			return boom
		})
		require.ErrorIs(t, err, boom)
		_, err = db.SMS().Message(ctx, "sms_rb")
		require.Equal(t, paygate.CodeNotFound, paygate.CodeOf(err))
	})
}

func TestKeyring(t *testing.T) {
	t.Parallel()
	kr := keyring(t)
	body, kid := kr.Seal("sms_1", "code 123456")
	require.NotContains(t, body, "123456")
	got, err := kr.Open("sms_1", body, kid)
	require.NoError(t, err)
	require.Equal(t, "code 123456", got)
	_, err = kr.Open("sms_2", body, kid)
	require.Error(t, err, "bound to the message id")
	_, err = kr.Open("sms_1", body, "00000000")
	require.Error(t, err)
	_, err = kr.Open("sms_1", "!!", kid)
	require.Error(t, err)
	// Rotation: a new first key seals, the old one still opens.
	kr2, err := sms.NewKeyring(bytes.Repeat([]byte{1}, 32), smsKey)
	require.NoError(t, err)
	got, err = kr2.Open("sms_1", body, kid)
	require.NoError(t, err)
	require.Equal(t, "code 123456", got)
	_, err = sms.NewKeyring()
	require.Equal(t, paygate.CodeInvalidArgument, paygate.CodeOf(err))
	_, err = sms.NewKeyring(make([]byte, 16))
	require.Equal(t, paygate.CodeInvalidArgument, paygate.CodeOf(err))
}

func TestNormalizeAndMaskPhone(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct{ in, want string }{
		{"13800000000", "13800000000"},
		{"+8613800000000", "13800000000"},
		{"8613800000000", "13800000000"},
		{"138 0000-0000", "13800000000"},
		{"+447700900123", "+447700900123"},
		{"12800000000", ""}, // no mainland mobile starts 12
		{"1380000000", ""},
		{"+0123456789", ""},
		{"+123", ""},
		{"abc", ""},
		{"", ""},
	} {
		got, err := sms.NormalizePhone(tc.in)
		if tc.want == "" {
			require.Equal(t, paygate.CodeInvalidArgument, paygate.CodeOf(err), tc.in)
			continue
		}
		require.NoError(t, err, tc.in)
		require.Equal(t, tc.want, got)
	}
	require.Equal(t, "138****0000", sms.MaskPhone("13800000000"))
	require.Equal(t, "+44******0123", sms.MaskPhone("+447700900123"))
	require.Equal(t, "****", sms.MaskPhone("1234"))
}

func TestInboxCode(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct{ text, want string }{
		{"Your code is 123456, valid for 5 minutes.", "123456"},
		{"order 1234567 code 654321", "654321"},
		{"no code", ""},
		{"12345", ""},
		{"000000", "000000"},
	} {
		require.Equal(t, tc.want, sms.InboxMessage{Text: tc.text}.Code(), tc.text)
	}
}
