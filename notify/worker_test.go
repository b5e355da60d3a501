package notify_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"github.com/wechatpay-apiv3/wechatpay-go/core/auth/verifiers"
	wxnotify "github.com/wechatpay-apiv3/wechatpay-go/core/notify"

	"paygate"
	"paygate/notify"
	"paygate/signing"
	"paygate/store"
	"paygate/store/storetest"
)

// TestDelivered proves a 2xx answer delivers the event once, with a body
// whose signature verifies with the platform public key and whose resource
// decrypts with the APIv3 key to the payload.
func TestDelivered(t *testing.T) {
	t.Parallel()
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		obs := &observer{}
		f := newFixture(t, db, notify.Options{Observer: obs})
		m := newMerchant(t)
		ev := event("mch_a", m.srv.URL+"/notify?x=1")
		id := f.enqueue(ev)[0]
		f.clock.Advance(time.Second)
		f.runOnce(1)
		f.runOnce(0) // delivered: never again

		reqs := m.requests()
		require.Len(t, reqs, 1)
		got := reqs[0]
		require.Equal(t, "application/json", got.Header.Get("Content-Type"))
		key, serial := platform(t)
		require.Equal(t, serial, got.Header.Get(signing.HeaderSerial))
		ts, err := strconv.ParseInt(got.Header.Get(signing.HeaderTimestamp), 10, 64)
		require.NoError(t, err)
		require.Equal(t, f.clock.Now().Unix(), ts, "signed at the clock's time")
		require.NoError(t, signing.Verify(&key.PublicKey,
			signing.ResponseMessage(ts, got.Header.Get(signing.HeaderNonce), got.Body), got.Header.Get(signing.HeaderSignature)))

		var n notify.Notification
		require.NoError(t, json.Unmarshal(got.Body, &n))
		require.Equal(t, id, n.ID)
		require.Equal(t, "2026-11-22T10:00:00+08:00", n.CreateTime, "enqueue time, RFC 3339 with offset")
		require.Equal(t, "TRANSACTION.SUCCESS", n.EventType)
		require.Equal(t, "encrypt-resource", n.ResourceType)
		require.Equal(t, "支付成功", n.Summary)
		require.Equal(t, "AEAD_AES_256_GCM", n.Resource.Algorithm)
		require.Equal(t, "transaction", n.Resource.OriginalType)
		require.Equal(t, "transaction", n.Resource.AssociatedData)
		pt, err := signing.Decrypt(apiv3Key, n.Resource)
		require.NoError(t, err)
		require.JSONEq(t, string(ev.Payload), string(pt))
		var keys map[string]any
		require.NoError(t, json.Unmarshal(got.Body, &keys))
		require.ElementsMatch(t, []string{"id", "create_time", "event_type", "resource_type", "resource", "summary"}, mapKeys(keys))

		r := f.get("mch_a", id)
		require.Equal(t, notify.StatusDelivered, r.Status)
		require.Equal(t, f.clock.Now(), r.DeliveredAt)
		require.True(t, r.NextAttemptAt.IsZero())
		require.Len(t, r.Attempts, 1)
		a := r.Attempts[0]
		require.Equal(t, notify.OutcomeDelivered, a.Outcome)
		require.Equal(t, 1, a.Number)
		require.Equal(t, 200, a.HTTPStatus)
		require.Equal(t, notify.ClassNone, a.ErrorClass)
		require.Equal(t, f.w.Name(), a.Worker)
		require.Equal(t, f.clock.Now(), a.StartedAt)
		require.Equal(t, f.clock.Now(), a.FinishedAt)
		require.Equal(t, []string{"TRANSACTION.SUCCESS DELIVERED DELIVERED"}, obs.lines())
	})
}

// TestOfficialSDKAcceptsNotification proves the official APIv3 Go SDK's
// notify handler, in public-key mode, verifies and decrypts what a worker
// sends (its validator checks the timestamp against the real time, so this
// test's clock shows the real time).
func TestOfficialSDKAcceptsNotification(t *testing.T) {
	t.Parallel()
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		f := newFixture(t, db, notify.Options{})
		f.clock.Set(time.Now())
		key, serial := platform(t)
		h := wxnotify.NewNotifyHandler(apiv3Key, verifiers.NewSHA256WithRSAPubkeyVerifier(serial, key.PublicKey))
		m := newMerchant(t)
		type parsed struct {
			req     *wxnotify.Request
			content map[string]any
			err     error
		}
		got := make(chan parsed, 4)
		m.setHandler(func(w http.ResponseWriter, r *http.Request, _ []byte) {
			var p parsed
			p.req, p.err = h.ParseNotifyRequest(r.Context(), r, &p.content)
			got <- p
			if p.err != nil {
				w.WriteHeader(http.StatusUnauthorized)
				return
			}
			w.WriteHeader(http.StatusNoContent)
		})
		id := f.enqueue(event("mch_a", m.srv.URL))[0]
		f.runOnce(1)
		p := <-got
		require.NoError(t, p.err)
		require.Equal(t, id, p.req.ID)
		require.Equal(t, "TRANSACTION.SUCCESS", p.req.EventType)
		require.Equal(t, "encrypt-resource", p.req.ResourceType)
		require.Equal(t, "transaction", p.req.Resource.OriginalType)
		require.Equal(t, "SUCCESS", p.content["status"])
		require.Equal(t, "TRADE-SECRET-7731", p.content["out_trade_no"])
		require.WithinDuration(t, f.clock.Now(), *p.req.CreateTime, time.Second)
		require.Equal(t, notify.StatusDelivered, f.get("mch_a", id).Status, "204 is a 2xx")
	})
}

// TestScheduleToFailed walks the whole retry schedule with a merchant that
// always answers 500: each retry falls due exactly its delay after the
// failure before it, never a microsecond early; after the 16th attempt the
// event is FAILED, and a resend delivers it again on a fresh schedule.
func TestScheduleToFailed(t *testing.T) {
	t.Parallel()
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		f := newFixture(t, db, notify.Options{})
		m := newMerchant(t)
		m.status.Store(500)
		id := f.enqueue(event("mch_a", m.srv.URL))[0]
		f.runOnce(1)
		schedule := notify.DefaultSchedule()
		require.Equal(t, []time.Duration{15 * time.Second, 15 * time.Second, 30 * time.Second, 3 * time.Minute,
			10 * time.Minute, 20 * time.Minute, 30 * time.Minute, 30 * time.Minute, 30 * time.Minute, time.Hour,
			3 * time.Hour, 3 * time.Hour, 3 * time.Hour, 6 * time.Hour, 6 * time.Hour}, schedule)
		for i, d := range schedule {
			r := f.get("mch_a", id)
			require.Equal(t, notify.StatusPending, r.Status, "after attempt %d", i+1)
			require.Equal(t, f.clock.Now().Add(d), r.NextAttemptAt, "retry %d is due %v after the failure", i+1, d)
			a := lastAttempt(t, r)
			require.Equal(t, i+1, a.Number)
			require.Equal(t, notify.OutcomeFailed, a.Outcome)
			require.Equal(t, 500, a.HTTPStatus)
			require.Equal(t, notify.ClassHTTPStatus, a.ErrorClass)
			require.Equal(t, `{"code":"FAIL","message":"merchant says no"}`, a.ResponseSnippet)
			f.clock.Advance(d - time.Microsecond)
			f.runOnce(0)
			f.clock.Advance(time.Microsecond)
			f.runOnce(1)
		}
		r := f.get("mch_a", id)
		require.Equal(t, notify.StatusFailed, r.Status)
		require.True(t, r.NextAttemptAt.IsZero())
		require.Len(t, r.Attempts, 16)
		require.Len(t, m.requests(), 16)
		f.clock.Advance(24 * time.Hour)
		f.runOnce(0)

		ids := map[string]bool{}
		for _, q := range m.requests() {
			var n notify.Notification
			require.NoError(t, json.Unmarshal(q.Body, &n))
			ids[n.ID] = true
		}
		require.Equal(t, map[string]bool{id: true}, ids, "the same event id on every attempt")

		// A resend restarts the schedule: one failure waits 15 s again.
		require.NoError(t, f.svc.Resend(f.ctx, "mch_a", id))
		r = f.get("mch_a", id)
		require.Equal(t, notify.StatusPending, r.Status)
		require.Equal(t, f.clock.Now(), r.NextAttemptAt)
		f.runOnce(1)
		require.Equal(t, f.clock.Now().Add(15*time.Second), f.get("mch_a", id).NextAttemptAt)
		m.status.Store(201)
		f.clock.Advance(15 * time.Second)
		f.runOnce(1)
		r = f.get("mch_a", id)
		require.Equal(t, notify.StatusDelivered, r.Status)
		require.Len(t, r.Attempts, 18)

		// Resending a delivered event delivers it again.
		require.NoError(t, f.svc.Resend(f.ctx, "mch_a", id))
		f.runOnce(1)
		require.Len(t, m.requests(), 19)
		require.Equal(t, notify.StatusDelivered, f.get("mch_a", id).Status)
	})
}

// TestFailures proves every way an attempt fails is recorded with its class
// and retried 15 s later, and that redirects are not followed.
func TestFailures(t *testing.T) {
	t.Parallel()
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		target := newMerchant(t)
		closed, err := net.Listen("tcp", "127.0.0.1:0")
		require.NoError(t, err)
		refusedURL := "http://" + closed.Addr().String() + "/notify"
		closed.Close()

		for _, tc := range []struct {
			name    string
			status  int
			handler func(w http.ResponseWriter, r *http.Request, _ []byte)
			url     string
			class   notify.ErrorClass
			code    int
		}{
			{name: "server error", status: 503, class: notify.ClassHTTPStatus, code: 503},
			{name: "client error", status: 400, class: notify.ClassHTTPStatus, code: 400},
			{name: "redirect not followed", handler: func(w http.ResponseWriter, r *http.Request, _ []byte) {
				http.Redirect(w, r, target.srv.URL, http.StatusFound)
			}, class: notify.ClassRedirect, code: 302},
			{name: "connection refused", url: refusedURL, class: notify.ClassConnectionRefused},
			{name: "unresolvable host", url: "http://paygate-test.invalid/notify", class: notify.ClassDNS},
			{name: "not a URL", url: "ftp://example.com/notify", class: notify.ClassInvalidURL},
			{name: "hijacked connection", handler: func(w http.ResponseWriter, r *http.Request, _ []byte) {
				c, _, _ := w.(http.Hijacker).Hijack()
				c.Close()
			}, class: notify.ClassNetwork},
		} {
			t.Run(tc.name, func(t *testing.T) { // not parallel: the cases share one outbox
				f := newFixture(t, db, notify.Options{})
				m := newMerchant(t)
				if tc.status != 0 {
					m.status.Store(int32(tc.status))
				}
				if tc.handler != nil {
					m.setHandler(tc.handler)
				}
				u := tc.url
				if u == "" {
					u = m.srv.URL
				}
				mch := "mch_" + strings.ReplaceAll(tc.name, " ", "_")
				id := f.enqueue(event(mch, u))[0]
				f.runOnce(1)
				r := f.get(mch, id)
				require.Equal(t, notify.StatusPending, r.Status)
				require.Equal(t, f.clock.Now().Add(15*time.Second), r.NextAttemptAt)
				a := lastAttempt(t, r)
				require.Equal(t, notify.OutcomeFailed, a.Outcome)
				require.Equal(t, tc.class, a.ErrorClass)
				require.Equal(t, tc.code, a.HTTPStatus)
			})
		}
		require.Empty(t, target.requests(), "redirect targets are never requested")
	})
}

// TestTimeout proves an answer that does not come within the timeout is a
// failed attempt, without the test waiting for the real 5 s.
func TestTimeout(t *testing.T) {
	t.Parallel()
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		f := newFixture(t, db, notify.Options{Timeout: 50 * time.Millisecond})
		m := newMerchant(t)
		release := make(chan struct{})
		t.Cleanup(func() { close(release) }) // before the server closes (cleanups run last first)
		m.setHandler(func(w http.ResponseWriter, r *http.Request, _ []byte) {
			select {
			case <-release:
			case <-r.Context().Done():
			}
		})
		id := f.enqueue(event("mch_a", m.srv.URL))[0]
		f.runOnce(1)
		r := f.get("mch_a", id)
		require.Equal(t, notify.StatusPending, r.Status)
		require.Equal(t, f.clock.Now().Add(15*time.Second), r.NextAttemptAt)
		a := lastAttempt(t, r)
		require.Equal(t, notify.OutcomeFailed, a.Outcome)
		require.Equal(t, notify.ClassTimeout, a.ErrorClass)
		require.Zero(t, a.HTTPStatus)
	})
}

// TestSlowButInTime proves a 2xx that comes late but within the timeout
// delivers, and that the attempt's duration is taken from the clock.
func TestSlowButInTime(t *testing.T) {
	t.Parallel()
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		f := newFixture(t, db, notify.Options{})
		m := newMerchant(t)
		arrived, release := make(chan struct{}), make(chan struct{})
		m.setHandler(func(w http.ResponseWriter, r *http.Request, _ []byte) {
			close(arrived)
			<-release
			w.WriteHeader(http.StatusOK)
		})
		id := f.enqueue(event("mch_a", m.srv.URL))[0]
		done := make(chan error)
		go func() {
			_, err := f.w.RunOnce(f.ctx)
			done <- err
		}()
		<-arrived
		f.clock.Advance(4900 * time.Millisecond)
		close(release)
		require.NoError(t, <-done)
		r := f.get("mch_a", id)
		require.Equal(t, notify.StatusDelivered, r.Status)
		a := lastAttempt(t, r)
		require.Equal(t, notify.OutcomeDelivered, a.Outcome)
		require.Equal(t, 4900*time.Millisecond, a.Duration)
	})
}

// TestLeaseExpiryRedelivers proves a worker that claims an event and
// vanishes leaves it due again when its lease ends, not before; the lost
// attempt shows as ABANDONED, and the vanished worker's late report cannot
// undo the redelivery.
func TestLeaseExpiryRedelivers(t *testing.T) {
	t.Parallel()
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		f := newFixture(t, db, notify.Options{})
		m := newMerchant(t)
		id := f.enqueue(event("mch_a", m.srv.URL))[0]
		lease := time.Minute
		cs, err := db.Notify().ClaimDue(f.ctx, "dead-worker", f.clock.Now(), f.clock.Now().Add(lease), 10)
		require.NoError(t, err)
		require.Len(t, cs, 1)
		require.Equal(t, id, cs[0].ID)
		require.Equal(t, 1, cs[0].Attempt)
		require.Equal(t, 1, cs[0].Round)
		r := f.get("mch_a", id)
		require.Equal(t, notify.OutcomeInProgress, lastAttempt(t, r).Outcome)
		require.Equal(t, "dead-worker", lastAttempt(t, r).Worker)

		f.runOnce(0)
		f.clock.Advance(lease - time.Microsecond)
		f.runOnce(0)
		require.Empty(t, m.requests(), "nobody else touches a claimed event during its lease")
		f.clock.Advance(time.Microsecond)
		f.runOnce(1)
		r = f.get("mch_a", id)
		require.Equal(t, notify.StatusDelivered, r.Status)
		require.Len(t, r.Attempts, 2)
		require.Equal(t, notify.OutcomeAbandoned, r.Attempts[0].Outcome)
		require.Equal(t, notify.OutcomeDelivered, r.Attempts[1].Outcome)
		require.Len(t, m.requests(), 1)

		// The dead worker comes back and reports a failure: its attempt row
		// tells the truth, the event stays delivered.
		applied, err := db.Notify().Finish(f.ctx, notify.Finish{
			Attempt: notify.Attempt{EventID: id, Number: 1, Outcome: notify.OutcomeFailed, ErrorClass: notify.ClassTimeout,
				StartedAt: t0, FinishedAt: f.clock.Now()},
			Owner: "dead-worker", Status: notify.StatusPending, NextAttemptAt: f.clock.Now().Add(15 * time.Second),
		})
		require.NoError(t, err)
		require.False(t, applied)
		r = f.get("mch_a", id)
		require.Equal(t, notify.StatusDelivered, r.Status)
		require.Equal(t, notify.OutcomeFailed, r.Attempts[0].Outcome)
	})
}

// TestWorkersShareWithoutOverlap runs two workers (and, on SQLite and
// PostgreSQL alike, concurrent claim transactions) over one outbox: every
// event is delivered exactly once and never attempted by two at a time.
func TestWorkersShareWithoutOverlap(t *testing.T) {
	t.Parallel()
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		f := newFixture(t, db, notify.Options{Name: "w1", Concurrency: 4})
		w2 := f.worker(notify.Options{Name: "w2", Concurrency: 4})
		m := newMerchant(t)
		var (
			mu       sync.Mutex
			inFlight = map[string]int{}
			overlap  atomic.Int64
		)
		const events = 60
		evs := make([]notify.Event, events)
		for i := range evs {
			evs[i] = event("mch_a", m.srv.URL)
		}
		f.enqueue(evs...)
		m.setHandler(func(w http.ResponseWriter, r *http.Request, body []byte) {
			var n notify.Notification
			if json.Unmarshal(body, &n) != nil {
				w.WriteHeader(400)
				return
			}
			mu.Lock()
			inFlight[n.ID]++
			if inFlight[n.ID] > 1 {
				overlap.Add(1)
			}
			mu.Unlock()
			w.WriteHeader(200)
			mu.Lock()
			inFlight[n.ID]--
			mu.Unlock()
		})
		var total atomic.Int64
		var wg sync.WaitGroup
		for _, w := range []*notify.Worker{f.w, w2, f.w, w2} {
			// The clock stands still, so nothing falls due again: a worker
			// that finds nothing to claim is done, and every event is
			// claimed (by someone) once all have found nothing.
			wg.Go(func() {
				for {
					n, err := w.RunOnce(f.ctx)
					if err != nil {
						t.Error(err)
						return
					}
					if n == 0 {
						return
					}
					total.Add(int64(n))
				}
			})
		}
		wg.Wait()
		require.Zero(t, overlap.Load())
		require.EqualValues(t, events, total.Load(), "each event attempted once")
		seen := map[string]int{}
		for _, q := range m.requests() {
			var n notify.Notification
			require.NoError(t, json.Unmarshal(q.Body, &n))
			seen[n.ID]++
		}
		require.Len(t, seen, events)
		for id, n := range seen {
			require.Equal(t, 1, n, "event %s sent once", id)
		}
		page, err := f.svc.List(f.ctx, "mch_a", "", notify.MaxPageSize)
		require.NoError(t, err)
		workers := map[string]int{}
		for _, r := range page.Events {
			require.Equal(t, notify.StatusDelivered, r.Status)
			require.Len(t, r.Attempts, 1)
			workers[r.Attempts[0].Worker]++
		}
		require.Len(t, page.Events, events)
		t.Logf("deliveries per worker: %v", workers)
	})
}

// TestSSRF proves live events never reach loopback or private addresses,
// whether the URL names the address or a host that resolves to it, while
// sandbox events may.
func TestSSRF(t *testing.T) {
	t.Parallel()
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		f := newFixture(t, db, notify.Options{})
		m := newMerchant(t)
		_, port, err := net.SplitHostPort(m.srv.Listener.Addr().String())
		require.NoError(t, err)
		for i, u := range []string{
			m.srv.URL + "/notify",                  // 127.0.0.1 literal
			"http://localhost:" + port + "/n",      // a name resolving to loopback
			"http://[::ffff:127.0.0.1]:" + port,    // IPv4-mapped IPv6 spelling
			"http://127.0.0.1.nip.invalid:" + port, // unresolvable: a DNS failure, still no request
		} {
			live := event("mch_live", u)
			live.Sandbox = false
			id := f.enqueue(live)[0]
			f.runOnce(1)
			a := lastAttempt(t, f.get("mch_live", id))
			require.Equal(t, notify.OutcomeFailed, a.Outcome, u)
			if i < 3 {
				require.Equal(t, notify.ClassAddressRefused, a.ErrorClass, u)
			}
			require.Empty(t, m.requests(), "live notifications never reach %s", u)
		}
		for _, u := range []string{m.srv.URL + "/notify", "http://localhost:" + port + "/n"} {
			id := f.enqueue(event("mch_sandbox", u))[0]
			f.runOnce(1)
			require.Equal(t, notify.StatusDelivered, f.get("mch_sandbox", id).Status, u)
		}
		require.Len(t, m.requests(), 2)
	})
}

// TestKeysUnavailable proves a failure to get the keys is an attempt of class
// INTERNAL, retried on the schedule, and nothing is sent.
func TestKeysUnavailable(t *testing.T) {
	t.Parallel()
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		f := newFixture(t, db, notify.Options{})
		m := newMerchant(t)
		e := error(paygate.E(paygate.CodeNotFound, "merchant has no keys"))
		f.keys.err.Store(&e)
		id := f.enqueue(event("mch_a", m.srv.URL))[0]
		f.runOnce(1)
		r := f.get("mch_a", id)
		require.Equal(t, notify.ClassInternal, lastAttempt(t, r).ErrorClass)
		require.Equal(t, f.clock.Now().Add(15*time.Second), r.NextAttemptAt)
		require.Empty(t, m.requests())
		f.keys.err.Store(nil)
		f.clock.Advance(15 * time.Second)
		f.runOnce(1)
		require.Equal(t, notify.StatusDelivered, f.get("mch_a", id).Status)
	})
}

// TestShutdownGivesUp proves an attempt cut short by the worker's context
// (shutdown) is ABANDONED, leaves the event due at once for another worker,
// and does not use up a step of the schedule.
func TestShutdownGivesUp(t *testing.T) {
	t.Parallel()
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		var logs syncBuffer
		f := newFixture(t, db, notify.Options{Logger: slog.New(slog.NewJSONHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))})
		m := newMerchant(t)
		arrived := make(chan struct{})
		m.setHandler(func(w http.ResponseWriter, r *http.Request, _ []byte) {
			close(arrived)
			<-r.Context().Done()
		})
		id := f.enqueue(event("mch_a", m.srv.URL))[0]
		ctx, cancel := context.WithCancel(f.ctx)
		done := make(chan error)
		go func() {
			_, err := f.w.RunOnce(ctx)
			done <- err
		}()
		<-arrived
		cancel()
		require.NoError(t, <-done)
		r := f.get("mch_a", id)
		require.Equal(t, notify.StatusPending, r.Status)
		require.Equal(t, f.clock.Now(), r.NextAttemptAt)
		require.Equal(t, notify.OutcomeAbandoned, lastAttempt(t, r).Outcome)
		require.Contains(t, logs.String(), `"level":"INFO","msg":"notification attempt abandoned at shutdown; released"`)
		require.NotContains(t, logs.String(), `"level":"ERROR"`, "shutting down is not a fault")

		m.setHandler(nil)
		m.status.Store(500)
		w2 := f.worker(notify.Options{Name: "w2"})
		n, err := w2.RunOnce(f.ctx)
		require.NoError(t, err)
		require.Equal(t, 1, n)
		r = f.get("mch_a", id)
		require.Len(t, r.Attempts, 2)
		require.Equal(t, f.clock.Now().Add(15*time.Second), r.NextAttemptAt, "the given-up attempt used no step of the schedule")
	})
}

// TestResendDuringAttempt proves a resend that arrives while an attempt is in
// flight does not start a second one, and that the event is due at once if
// that attempt fails.
func TestResendDuringAttempt(t *testing.T) {
	t.Parallel()
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		f := newFixture(t, db, notify.Options{})
		m := newMerchant(t)
		m.status.Store(500)
		id := f.enqueue(event("mch_a", m.srv.URL))[0]
		arrived, release := make(chan struct{}), make(chan struct{})
		m.setHandler(func(w http.ResponseWriter, r *http.Request, _ []byte) {
			close(arrived)
			<-release
			w.WriteHeader(500)
		})
		done := make(chan error)
		go func() {
			_, err := f.w.RunOnce(f.ctx)
			done <- err
		}()
		<-arrived
		f.clock.Advance(time.Second)
		require.NoError(t, f.svc.Resend(f.ctx, "mch_a", id))
		w2 := f.worker(notify.Options{Name: "w2"})
		n, err := w2.RunOnce(f.ctx)
		require.NoError(t, err)
		require.Zero(t, n, "the attempt in flight keeps its lease")
		close(release)
		require.NoError(t, <-done)
		r := f.get("mch_a", id)
		require.Equal(t, notify.StatusPending, r.Status)
		require.Equal(t, f.clock.Now(), r.NextAttemptAt, "due at once: the resend is honoured")
		m.setHandler(nil)
		m.status.Store(200)
		f.runOnce(1)
		require.Equal(t, notify.StatusDelivered, f.get("mch_a", id).Status)
	})
}

// TestRunLoop drives Run with an injected ticker and with Kick, and proves it
// returns when its context ends.
func TestRunLoop(t *testing.T) {
	t.Parallel()
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		obs := &observer{done: make(chan notify.Status, 16)}
		f := newFixture(t, db, notify.Options{Concurrency: 2, Observer: obs})
		m := newMerchant(t)
		ticks := make(chan time.Time)
		ctx, cancel := context.WithCancel(f.ctx)
		stopped := make(chan struct{})
		go func() {
			f.w.Run(ctx, ticks)
			close(stopped)
		}()
		// Five events, two per batch: one tick drains them all.
		evs := make([]notify.Event, 5)
		for i := range evs {
			evs[i] = event("mch_a", m.srv.URL)
		}
		f.enqueue(evs...)
		ticks <- f.clock.Now()
		for range 5 {
			require.Equal(t, notify.StatusDelivered, <-obs.done)
		}
		f.enqueue(event("mch_a", m.srv.URL))
		f.w.Kick()
		f.w.Kick() // never blocks
		require.Equal(t, notify.StatusDelivered, <-obs.done)
		cancel()
		<-stopped
		page, err := f.svc.List(f.ctx, "mch_a", "", 0)
		require.NoError(t, err)
		require.Len(t, page.Events, 6)
		for _, r := range page.Events {
			require.Equal(t, notify.StatusDelivered, r.Status)
		}
		require.Len(t, m.requests(), 6)
	})
}

// TestLogsKeepSecrets proves the worker's log lines carry neither the APIv3
// key, the payload, nor the notify_url's path and query.
func TestLogsKeepSecrets(t *testing.T) {
	t.Parallel()
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		var buf syncBuffer
		f := newFixture(t, db, notify.Options{Logger: slog.New(slog.NewJSONHandler(&buf, &slog.HandlerOptions{Level: slog.LevelDebug}))})
		m := newMerchant(t)
		closed, err := net.Listen("tcp", "127.0.0.1:0")
		require.NoError(t, err)
		addr := closed.Addr().String()
		closed.Close()
		f.enqueue(event("mch_a", "http://"+addr+"/hook/s3cretpath?token=s3cret"), event("mch_a", m.srv.URL+"/ok?token=s3cret"))
		f.runOnce(2)
		out := buf.String()
		require.Contains(t, out, "connection refused", "operators see the cause")
		for _, secret := range []string{"s3cret", apiv3Key, "out_trade_no", "TRADE-SECRET-7731"} {
			require.NotContains(t, out, secret)
		}
	})
}

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}
func (s *syncBuffer) String() string { s.mu.Lock(); defer s.mu.Unlock(); return s.b.String() }

// observer records "EVENT_TYPE OUTCOME STATUS" per attempt.
type observer struct {
	mu   sync.Mutex
	l    []string
	done chan notify.Status // if set, gets each attempt's status once recorded
}

func (o *observer) ObserveAttempt(eventType string, a notify.Attempt, status notify.Status) {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.l = append(o.l, fmt.Sprintf("%s %s %s", eventType, a.Outcome, status))
	if o.done != nil {
		o.done <- status
	}
}

func (o *observer) lines() []string {
	o.mu.Lock()
	defer o.mu.Unlock()
	return append([]string(nil), o.l...)
}

func mapKeys(m map[string]any) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	return out
}
