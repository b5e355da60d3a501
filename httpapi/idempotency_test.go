package httpapi_test

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"paygate"
	"paygate/httpapi"
	"paygate/store"
	"paygate/store/storetest"
)

// idemRig is a POST handler behind Idempotent on a real store: it counts
// its runs and answers 201 with the run number, or what fail says.
type idemRig struct {
	h     http.Handler
	runs  atomic.Int64
	clock *paygate.ManualClock
	fail  atomic.Int64 // a status to answer instead, when set
	gate  chan struct{}
}

func newIdemRig(t *testing.T, db *store.DB) *idemRig {
	rig := &idemRig{clock: paygate.NewManualClock(time.Date(2026, 11, 22, 2, 0, 0, 0, time.UTC))}
	inner := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n := rig.runs.Add(1)
		if rig.gate != nil {
			<-rig.gate
		}
		if st := rig.fail.Load(); st != 0 {
			httpapi.WriteError(w, paygate.E(paygate.CodeUnavailable, "down"))
			return
		}
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusCreated)
		fmt.Fprintf(w, `{"run":%d}`, n)
	})
	idem := httpapi.Idempotent(db.IdempotencyKeys(), rig.clock, nil, inner)
	// The merchant, as the authentication middleware would set it.
	rig.h = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		m := paygate.Merchant{ID: r.Header.Get("X-Test-Merchant")}
		idem.ServeHTTP(w, r.WithContext(httpapi.WithMerchant(r.Context(), m)))
	})
	return rig
}

func (rig *idemRig) post(mch, key, path, body string) *httptest.ResponseRecorder {
	req := httptest.NewRequest(http.MethodPost, path, strings.NewReader(body))
	req.Header.Set("X-Test-Merchant", mch)
	if key != "-" {
		req.Header.Set(httpapi.IdempotencyHeader, key)
	}
	rec := httptest.NewRecorder()
	rig.h.ServeHTTP(rec, req)
	return rec
}

func errCode(t *testing.T, rec *httptest.ResponseRecorder) string {
	t.Helper()
	var e struct{ Code string }
	require.NoError(t, json.Unmarshal(rec.Body.Bytes(), &e), rec.Body.String())
	return e.Code
}

// TestIdempotencyKey: the first answer under a key is kept and replayed to
// the same request, never run twice; another request under the key is a
// conflict; keys are per merchant; server errors are not kept; malformed
// keys are refused before anything runs.
func TestIdempotencyKey(t *testing.T) {
	t.Parallel()
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		rig := newIdemRig(t, db)
		const path = "/v1/orders/ord_1/capture"

		// Without the header every request runs.
		require.Equal(t, http.StatusCreated, rig.post("mch_a", "-", path, `{}`).Code)
		require.Equal(t, http.StatusCreated, rig.post("mch_a", "-", path, `{}`).Code)
		require.EqualValues(t, 2, rig.runs.Load())

		first := rig.post("mch_a", "key-1", path, `{"amount":{"total":100}}`)
		require.Equal(t, http.StatusCreated, first.Code)
		require.JSONEq(t, `{"run":3}`, first.Body.String())
		require.Empty(t, first.Header().Get(httpapi.ReplayedHeader))
		again := rig.post("mch_a", "key-1", path, `{"amount":{"total":100}}`)
		require.Equal(t, http.StatusCreated, again.Code)
		require.Equal(t, first.Body.String(), again.Body.String())
		require.Equal(t, "true", again.Header().Get(httpapi.ReplayedHeader))
		require.EqualValues(t, 3, rig.runs.Load(), "a replay runs nothing")

		for name, rec := range map[string]*httptest.ResponseRecorder{
			"another body": rig.post("mch_a", "key-1", path, `{"amount":{"total":101}}`),
			"another path": rig.post("mch_a", "key-1", "/v1/orders/ord_2/capture", `{"amount":{"total":100}}`),
		} {
			require.Equal(t, http.StatusConflict, rec.Code, name)
			require.Equal(t, "ID_CONFLICT", errCode(t, rec), name)
		}
		require.EqualValues(t, 3, rig.runs.Load())

		// Keys belong to their merchant.
		require.JSONEq(t, `{"run":4}`, rig.post("mch_b", "key-1", path, `{"amount":{"total":100}}`).Body.String())

		// A server error is not kept: the retry runs again.
		rig.fail.Store(503)
		require.Equal(t, http.StatusServiceUnavailable, rig.post("mch_a", "key-2", path, `{}`).Code)
		rig.fail.Store(0)
		retry := rig.post("mch_a", "key-2", path, `{}`)
		require.Equal(t, http.StatusCreated, retry.Code)
		require.Empty(t, retry.Header().Get(httpapi.ReplayedHeader))
		require.EqualValues(t, 6, rig.runs.Load())

		for _, key := range []string{"", strings.Repeat("k", httpapi.MaxIdempotencyKey+1), "has space", "ключ", "tab\tkey"} {
			rec := rig.post("mch_a", key, path, `{}`)
			require.Equal(t, http.StatusBadRequest, rec.Code, "%q", key)
			require.Equal(t, "INVALID_ARGUMENT", errCode(t, rec))
		}
		require.Equal(t, http.StatusCreated, rig.post("mch_a", strings.Repeat("k", httpapi.MaxIdempotencyKey), path, `{}`).Code)
		require.EqualValues(t, 7, rig.runs.Load())

		// Kept for a day, then the housekeeping job forgets them.
		n, err := db.IdempotencyKeys().DeleteIdempotentBefore(t.Context(), rig.clock.Now().Add(time.Second))
		require.NoError(t, err)
		require.EqualValues(t, 4, n, "key-1 of two merchants, key-2, the long key")
		require.JSONEq(t, `{"run":8}`, rig.post("mch_a", "key-1", path, `{"amount":{"total":100}}`).Body.String())
	})
}

// TestIdempotencyKeyConcurrent: requests racing on one key run the
// request once; the others are told it is running; a key whose request
// died is taken over once it is stale.
func TestIdempotencyKeyConcurrent(t *testing.T) {
	t.Parallel()
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		rig := newIdemRig(t, db)
		rig.gate = make(chan struct{})
		const n = 8
		first := make(chan int, 1)
		go func() { first <- rig.post("mch_a", "race", "/v1/orders/ord_1/void", `{}`).Code }()
		// The first request holds the key (it is inside the handler)...
		require.Eventually(t, func() bool { return rig.runs.Load() == 1 }, 10*time.Second, time.Millisecond)
		// ...while the others, at once, are told it is running.
		others := make(chan int, n-1)
		var wg sync.WaitGroup
		for range n - 1 {
			wg.Go(func() { others <- rig.post("mch_a", "race", "/v1/orders/ord_1/void", `{}`).Code })
		}
		wg.Wait()
		close(others)
		for code := range others {
			require.Equal(t, http.StatusConflict, code)
		}
		close(rig.gate)
		require.Equal(t, http.StatusCreated, <-first)
		require.EqualValues(t, 1, rig.runs.Load())
		rec := rig.post("mch_a", "race", "/v1/orders/ord_1/void", `{}`)
		require.Equal(t, "true", rec.Header().Get(httpapi.ReplayedHeader), "finished: replayed")

		// A key held by a request that never finished (its process died)
		// is taken over after a minute.
		ok, _, err := db.IdempotencyKeys().BeginIdempotent(t.Context(), "mch_a", "orphan", "hash-of-another-run", rig.clock.Now(), rig.clock.Now().Add(-time.Minute))
		require.NoError(t, err)
		require.True(t, ok)
		rec = rig.post("mch_a", "orphan", "/v1/orders/ord_1/void", `{}`)
		require.Equal(t, http.StatusConflict, rec.Code, "a different request under the orphan's key")
		started2, _, err := db.IdempotencyKeys().BeginIdempotent(t.Context(), "mch_a", "orphan2", "h", rig.clock.Now(), rig.clock.Now().Add(-time.Minute))
		require.NoError(t, err)
		require.True(t, started2)
		rig.clock.Advance(30 * time.Second)
		again, prior, err := db.IdempotencyKeys().BeginIdempotent(t.Context(), "mch_a", "orphan2", "h", rig.clock.Now(), rig.clock.Now().Add(-time.Minute))
		require.NoError(t, err)
		require.False(t, again, "still fresh: running")
		require.Equal(t, 0, prior.Status)
		rig.clock.Advance(31 * time.Second)
		again, _, err = db.IdempotencyKeys().BeginIdempotent(t.Context(), "mch_a", "orphan2", "h", rig.clock.Now(), rig.clock.Now().Add(-time.Minute))
		require.NoError(t, err)
		require.True(t, again, "stale: taken over")
	})
}
