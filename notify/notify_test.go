package notify_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"paygate"
	"paygate/notify"
	"paygate/store"
	"paygate/store/storetest"
)

// captureTx is a notify.Tx that keeps what it is given.
type captureTx struct{ evs []notify.Event }

func (c *captureTx) InsertEvents(_ context.Context, evs []notify.Event) error {
	c.evs = append(c.evs, evs...)
	return nil
}

func TestEnqueueValidates(t *testing.T) {
	t.Parallel()
	ok := event("mch_a", "https://merchant.example/notify")
	for _, tc := range []struct {
		name  string
		edit  func(e *notify.Event)
		field string
	}{
		{"bad id prefix", func(e *notify.Event) { e.ID = "ord_1" }, "id"},
		{"bare prefix", func(e *notify.Event) { e.ID = "evt_" }, "id"},
		{"long id", func(e *notify.Event) { e.ID = "evt_" + strings.Repeat("a", 61) }, "id"},
		{"id with space", func(e *notify.Event) { e.ID = "evt_a b" }, "id"},
		{"no merchant", func(e *notify.Event) { e.MerchantID = "" }, "merchant_id"},
		{"long merchant", func(e *notify.Event) { e.MerchantID = strings.Repeat("m", 65) }, "merchant_id"},
		{"no event type", func(e *notify.Event) { e.EventType = "" }, "event_type"},
		{"event type with newline", func(e *notify.Event) { e.EventType = "A\nB" }, "event_type"},
		{"no original type", func(e *notify.Event) { e.OriginalType = "" }, "original_type"},
		{"long summary", func(e *notify.Event) { e.Summary = strings.Repeat("x", 257) }, "summary"},
		{"summary not UTF-8", func(e *notify.Event) { e.Summary = "\xff" }, "summary"},
		{"summary with control", func(e *notify.Event) { e.Summary = "a\x00b" }, "summary"},
		{"no URL", func(e *notify.Event) { e.URL = "" }, "notify_url"},
		{"long URL", func(e *notify.Event) { e.URL = "https://a.example/" + strings.Repeat("p", notify.MaxURLLen) }, "notify_url"},
		{"no payload", func(e *notify.Event) { e.Payload = nil }, "payload"},
		{"payload not JSON", func(e *notify.Event) { e.Payload = []byte(`{"a":`) }, "payload"},
		{"payload not UTF-8", func(e *notify.Event) { e.Payload = []byte("\"\xff\"") }, "payload"},
		{"payload too big", func(e *notify.Event) {
			e.Payload = []byte(`"` + strings.Repeat("x", notify.MaxPayload) + `"`)
		}, "payload"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			e := ok
			tc.edit(&e)
			var tx captureTx
			err := notify.Enqueue(context.Background(), &tx, paygate.NewManualClock(t0), e)
			requireCode(t, err, paygate.CodeInvalidArgument)
			var pe *paygate.Error
			require.True(t, errors.As(err, &pe))
			require.Equal(t, tc.field, pe.Field)
			require.Empty(t, tx.evs, "nothing reaches the transaction")
		})
	}

	t.Run("fills in id and time", func(t *testing.T) {
		t.Parallel()
		var tx captureTx
		clock := paygate.NewManualClock(t0.Add(1234 * time.Nanosecond).In(time.FixedZone("X", 3600)))
		given := ok
		given.ID, given.CreatedAt = "evt_given", t0.Add(-time.Hour)
		require.NoError(t, notify.Enqueue(context.Background(), &tx, clock, ok, given))
		require.Len(t, tx.evs, 2)
		require.True(t, strings.HasPrefix(tx.evs[0].ID, "evt_"))
		require.Len(t, tx.evs[0].ID, 36)
		require.Equal(t, t0.Add(time.Microsecond), tx.evs[0].CreatedAt, "UTC, microseconds")
		require.Equal(t, time.UTC, tx.evs[0].CreatedAt.Location())
		require.Equal(t, "evt_given", tx.evs[1].ID)
		require.Equal(t, t0.Add(-time.Hour), tx.evs[1].CreatedAt)
	})
	t.Run("nothing to do", func(t *testing.T) {
		t.Parallel()
		var tx captureTx
		require.NoError(t, notify.Enqueue(context.Background(), &tx, paygate.NewManualClock(t0)))
		require.Empty(t, tx.evs)
	})
	t.Run("duplicate ids in one call", func(t *testing.T) {
		t.Parallel()
		e := ok
		e.ID = "evt_same"
		requireCode(t, notify.Enqueue(context.Background(), &captureTx{}, paygate.NewManualClock(t0), e, e), paygate.CodeInvalidArgument)
	})
	t.Run("too many", func(t *testing.T) {
		t.Parallel()
		evs := make([]notify.Event, notify.MaxBatch+1)
		requireCode(t, notify.Enqueue(context.Background(), &captureTx{}, paygate.NewManualClock(t0), evs...), paygate.CodeInvalidArgument)
	})
}

// TestEnqueueCommitsWithTheTransaction proves an event exists exactly when
// the transaction that enqueued it commits, and that event ids are unique.
func TestEnqueueCommitsWithTheTransaction(t *testing.T) {
	t.Parallel()
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		f := newFixture(t, db, notify.Options{})
		boom := errors.New("state change failed")
		e := event("mch_a", "http://127.0.0.1:1/")
		e.ID = "evt_rolled_back"
		err := db.InTx(f.ctx, func(tx *store.Tx) error {
			require.NoError(t, notify.Enqueue(f.ctx, tx, f.clock, e))
			return boom
		})
		require.ErrorIs(t, err, boom)
		_, err = f.svc.Get(f.ctx, "mch_a", e.ID)
		requireCode(t, err, paygate.CodeNotFound)
		f.runOnce(0)

		f.enqueue(e)
		r := f.get("mch_a", e.ID)
		require.Equal(t, notify.StatusPending, r.Status)
		require.Equal(t, t0, r.CreatedAt)
		require.Equal(t, t0, r.NextAttemptAt, "due at once")
		require.Empty(t, r.Attempts)
		require.True(t, r.Sandbox)
		require.Equal(t, e.Payload, r.Payload)
		require.Equal(t, e.Summary, r.Summary)

		// The same id again: a conflict, and the transaction's other
		// events roll back with it.
		other := event("mch_a", "http://127.0.0.1:1/")
		other.ID = "evt_other"
		err = db.InTx(f.ctx, func(tx *store.Tx) error { return notify.Enqueue(f.ctx, tx, f.clock, other, e) })
		requireCode(t, err, paygate.CodeIDConflict)
		_, err = f.svc.Get(f.ctx, "mch_a", other.ID)
		requireCode(t, err, paygate.CodeNotFound)

		// Many at once (more than one INSERT's worth).
		evs := make([]notify.Event, 450)
		for i := range evs {
			evs[i] = event("mch_many", "http://127.0.0.1:1/")
		}
		f.enqueue(evs...)
		page, err := f.svc.List(f.ctx, "mch_many", "", notify.MaxPageSize)
		require.NoError(t, err)
		require.Len(t, page.Events, notify.MaxPageSize)
		require.NotEmpty(t, page.NextCursor)
	})
}

// TestListAndResend proves merchants see only their own events, newest
// first, page by page, and may resend only their own.
func TestListAndResend(t *testing.T) {
	t.Parallel()
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		f := newFixture(t, db, notify.Options{})
		m := newMerchant(t)
		var mine []string
		for i := range 5 {
			f.clock.Advance(time.Second)
			mine = append(mine, f.enqueue(event("mch_a", m.srv.URL))...)
			if i == 2 {
				f.enqueue(event("mch_b", m.srv.URL))
			}
		}
		theirs := f.enqueue(event("mch_b", m.srv.URL))[0]
		m.status.Store(500)
		f.runOnce(7)

		var got []string
		cursor := ""
		for pages := 0; ; pages++ {
			require.Less(t, pages, 3)
			page, err := f.svc.List(f.ctx, "mch_a", cursor, 2)
			require.NoError(t, err)
			for _, r := range page.Events {
				require.Equal(t, "mch_a", r.MerchantID)
				require.Len(t, r.Attempts, 1, "each event with its attempts")
				require.Equal(t, 500, r.Attempts[0].HTTPStatus)
				got = append(got, r.ID)
			}
			if page.NextCursor == "" {
				break
			}
			cursor = page.NextCursor
		}
		require.Equal(t, []string{mine[4], mine[3], mine[2], mine[1], mine[0]}, got, "newest first")

		empty, err := f.svc.List(f.ctx, "mch_nobody", "", 0)
		require.NoError(t, err)
		require.Empty(t, empty.Events)
		require.Empty(t, empty.NextCursor)

		for _, tc := range []struct {
			cursor string
			limit  int
			field  string
		}{
			{"not base64!", 10, "cursor"},
			{"MA", 10, "cursor"},  // "0"
			{"LTE", 10, "cursor"}, // "-1"
			{"", -1, "limit"},
			{"", notify.MaxPageSize + 1, "limit"},
		} {
			_, err := f.svc.List(f.ctx, "mch_a", tc.cursor, tc.limit)
			requireCode(t, err, paygate.CodeInvalidArgument)
			var pe *paygate.Error
			require.True(t, errors.As(err, &pe))
			require.Equal(t, tc.field, pe.Field)
		}

		// Another merchant's event does not exist for mch_a.
		_, err = f.svc.Get(f.ctx, "mch_a", theirs)
		requireCode(t, err, paygate.CodeNotFound)
		requireCode(t, f.svc.Resend(f.ctx, "mch_a", theirs), paygate.CodeNotFound)
		requireCode(t, f.svc.Resend(f.ctx, "mch_a", "evt_missing"), paygate.CodeNotFound)
		requireCode(t, f.svc.Resend(f.ctx, "mch_a", strings.Repeat("x", 1000)), paygate.CodeNotFound)
		requireCode(t, f.svc.Resend(f.ctx, "", theirs), paygate.CodeNotFound)
		require.Equal(t, f.clock.Now().Add(15*time.Second), f.get("mch_b", theirs).NextAttemptAt, "untouched")

		require.NoError(t, f.svc.Resend(f.ctx, "mch_a", mine[0]))
		require.Equal(t, f.clock.Now(), f.get("mch_a", mine[0]).NextAttemptAt)
		m.status.Store(200)
		f.runOnce(1)
		r := f.get("mch_a", mine[0])
		require.Equal(t, notify.StatusDelivered, r.Status)
		require.Len(t, r.Attempts, 2)
	})
}

func TestNewWorkerOptions(t *testing.T) {
	t.Parallel()
	db := storetest.Open(t, store.SQLite)
	clock := paygate.NewManualClock(t0)
	for _, tc := range []struct {
		name string
		opt  notify.Options
		ok   bool
	}{
		{"defaults", notify.Options{}, true},
		{"lease shorter than two timeouts", notify.Options{Timeout: time.Second, Lease: 1999 * time.Millisecond}, false},
		{"lease of two timeouts", notify.Options{Timeout: time.Second, Lease: 2 * time.Second}, true},
		{"default lease under a long timeout", notify.Options{Timeout: time.Minute}, false},
		{"non-positive delay", notify.Options{Schedule: []time.Duration{time.Second, 0}}, false},
		{"name with space", notify.Options{Name: "a b"}, false},
		{"long name", notify.Options{Name: strings.Repeat("n", 65)}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			w, err := notify.NewWorker(db.Notify(), &keys{}, clock, tc.opt)
			if tc.ok {
				require.NoError(t, err)
				require.NotEmpty(t, w.Name())
				return
			}
			requireCode(t, err, paygate.CodeInvalidArgument)
		})
	}
	_, err := notify.NewWorker(nil, &keys{}, clock, notify.Options{})
	requireCode(t, err, paygate.CodeInvalidArgument)
}

// TestShortSchedule proves a custom schedule is followed to FAILED.
func TestShortSchedule(t *testing.T) {
	t.Parallel()
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		f := newFixture(t, db, notify.Options{Schedule: []time.Duration{time.Second}})
		m := newMerchant(t)
		m.status.Store(404)
		id := f.enqueue(event("mch_a", m.srv.URL))[0]
		f.runOnce(1)
		f.clock.Advance(time.Second)
		f.runOnce(1)
		r := f.get("mch_a", id)
		require.Equal(t, notify.StatusFailed, r.Status)
		require.Len(t, r.Attempts, 2)
	})
}
