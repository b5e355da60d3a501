package httpapi

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/stretchr/testify/require"

	"paygate"
)

// syncBuffer is a log sink safe for the server's goroutines.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

// lines returns the JSON log records written so far.
func (s *syncBuffer) lines(t *testing.T) []map[string]any {
	t.Helper()
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []map[string]any
	for _, l := range strings.Split(strings.TrimSpace(s.b.String()), "\n") {
		if l == "" {
			continue
		}
		var m map[string]any
		require.NoError(t, json.Unmarshal([]byte(l), &m), l)
		out = append(out, m)
	}
	return out
}

type pingFunc func(ctx context.Context) error

func (f pingFunc) Ping(ctx context.Context) error { return f(ctx) }

type fixture struct {
	h   http.Handler
	reg *prometheus.Registry
	log *syncBuffer
}

func newFixture(t *testing.T, db Pinger) fixture {
	t.Helper()
	buf := &syncBuffer{}
	reg := prometheus.NewRegistry()
	h := New(Config{
		Logger:       slog.New(slog.NewJSONHandler(buf, &slog.HandlerOptions{Level: slog.LevelDebug})),
		Registry:     reg,
		DB:           db,
		ReadyTimeout: 50 * time.Millisecond,
	})
	return fixture{h: h, reg: reg, log: buf}
}

func (f fixture) do(t *testing.T, method, target string) *httptest.ResponseRecorder {
	t.Helper()
	w := httptest.NewRecorder()
	f.h.ServeHTTP(w, httptest.NewRequest(method, target, nil))
	return w
}

func TestEndpoints(t *testing.T) {
	t.Parallel()
	up := pingFunc(func(context.Context) error { return nil })
	down := pingFunc(func(context.Context) error {
		return errors.New("dial tcp 127.0.0.1:5432: connect: connection refused (password=hunter2)")
	})
	hung := pingFunc(func(ctx context.Context) error { <-ctx.Done(); return ctx.Err() })
	tests := []struct {
		name       string
		db         Pinger
		method     string
		target     string
		wantStatus int
		wantBody   string // JSON, compared semantically; "" skips
		wantHeader map[string]string
	}{
		{"healthz", up, "GET", "/healthz", 200, `{"status":"ok"}`, nil},
		{"healthz while the database is down", down, "GET", "/healthz", 200, `{"status":"ok"}`, nil},
		{"healthz HEAD", up, "HEAD", "/healthz", 200, "", nil},
		{"readyz up", up, "GET", "/readyz", 200, `{"status":"ok"}`, nil},
		{"readyz without a database", nil, "GET", "/readyz", 200, `{"status":"ok"}`, nil},
		{"readyz down", down, "GET", "/readyz", 503, `{"code":"UNAVAILABLE","message":"the database does not answer"}`, nil},
		{"readyz hung database times out", hung, "GET", "/readyz", 503, `{"code":"UNAVAILABLE","message":"the database does not answer"}`, nil},
		{"unknown path", up, "GET", "/nope", 404, `{"code":"NOT_FOUND","message":"no such endpoint"}`, nil},
		{"wrong method", up, "POST", "/healthz", 405, `{"code":"METHOD_NOT_ALLOWED","message":"method not allowed; see the Allow header"}`,
			map[string]string{"Allow": "GET, HEAD", "Content-Type": "application/json"}},
		{"metrics", up, "GET", "/metrics", 200, "", nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			f := newFixture(t, tt.db)
			w := f.do(t, tt.method, tt.target)
			require.Equal(t, tt.wantStatus, w.Code, w.Body.String())
			if tt.wantBody != "" {
				require.JSONEq(t, tt.wantBody, w.Body.String())
				require.Equal(t, "application/json", w.Header().Get("Content-Type"))
			}
			for k, v := range tt.wantHeader {
				require.Equal(t, v, w.Header().Get(k), k)
			}
			require.NotEmpty(t, w.Header().Get("X-Request-Id"))
			require.NotContains(t, w.Body.String(), "hunter2")
			require.NotContains(t, w.Body.String(), "refused")
		})
	}
}

func TestReadyzLogsTheCause(t *testing.T) {
	t.Parallel()
	f := newFixture(t, pingFunc(func(context.Context) error { return errors.New("connection refused") }))
	w := f.do(t, "GET", "/readyz")
	require.Equal(t, 503, w.Code)
	lines := f.log.lines(t)
	require.Len(t, lines, 1)
	require.Equal(t, "ERROR", lines[0]["level"])
	require.Contains(t, lines[0]["error"], "connection refused")
}

func TestMetricsServesTheRegistry(t *testing.T) {
	t.Parallel()
	f := newFixture(t, nil)
	c := prometheus.NewCounter(prometheus.CounterOpts{Name: "paygate_test_marker_total", Help: "marker"})
	f.reg.MustRegister(c)
	c.Add(7)
	require.Equal(t, 200, f.do(t, "GET", "/healthz").Code)
	require.Equal(t, 404, f.do(t, "GET", "/secret/ord_123").Code)

	w := f.do(t, "GET", "/metrics")
	require.Equal(t, 200, w.Code)
	require.True(t, strings.HasPrefix(w.Header().Get("Content-Type"), "text/plain"), w.Header().Get("Content-Type"))
	body := w.Body.String()
	require.Contains(t, body, "paygate_test_marker_total 7")
	require.Contains(t, body, `paygate_http_requests_total{method="GET",route="GET /healthz",status="200"} 1`)
	require.Contains(t, body, `paygate_http_requests_total{method="GET",route="unmatched",status="404"} 1`)
	require.NotContains(t, body, "ord_123", "unmatched paths must not become label values")
	require.Contains(t, body, "paygate_http_request_duration_seconds_bucket")
	require.Contains(t, body, "paygate_http_requests_in_flight 1") // the scrape itself

	problems, err := testutil.GatherAndLint(f.reg)
	require.NoError(t, err)
	require.Empty(t, problems)
}

func TestNewTwiceOnOneRegistry(t *testing.T) {
	t.Parallel()
	reg := prometheus.NewRegistry()
	a := New(Config{Registry: reg, Logger: slog.New(slog.DiscardHandler)})
	b := New(Config{Registry: reg, Logger: slog.New(slog.DiscardHandler)})
	for _, h := range []http.Handler{a, b} {
		h.ServeHTTP(httptest.NewRecorder(), httptest.NewRequest("GET", "/healthz", nil))
	}
	require.Equal(t, 2.0, testutil.ToFloat64(newHTTPMetrics(reg).requests.WithLabelValues("GET", "GET /healthz", "200")))
}

func TestRequestLog(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name      string
		target    string
		reqID     string
		wantLevel string
		wantRoute string
		wantID    string // "" means a generated req_ id
	}{
		{"probe at debug", "/healthz?token=s3cret", "", "DEBUG", "GET /healthz", ""},
		{"unmatched at info", "/v1/orders?token=s3cret", "", "INFO", "unmatched", ""},
		{"proxy request id kept", "/healthz", "abc-123.X_y", "DEBUG", "GET /healthz", "abc-123.X_y"},
		{"unsafe request id replaced", "/healthz", "bad id\nwith newline", "DEBUG", "GET /healthz", ""},
		{"long request id replaced", "/healthz", strings.Repeat("a", 65), "DEBUG", "GET /healthz", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			f := newFixture(t, nil)
			r := httptest.NewRequest("GET", tt.target, nil)
			if tt.reqID != "" {
				r.Header.Set("X-Request-Id", tt.reqID)
			}
			w := httptest.NewRecorder()
			f.h.ServeHTTP(w, r)
			lines := f.log.lines(t)
			require.Len(t, lines, 1)
			l := lines[0]
			require.Equal(t, "request", l["msg"])
			require.Equal(t, tt.wantLevel, l["level"])
			require.Equal(t, tt.wantRoute, l["route"])
			require.Equal(t, "GET", l["method"])
			require.Equal(t, float64(w.Code), l["status"])
			require.Equal(t, w.Header().Get("X-Request-Id"), l["request_id"])
			if tt.wantID != "" {
				require.Equal(t, tt.wantID, l["request_id"])
			} else {
				require.True(t, strings.HasPrefix(l["request_id"].(string), "req_"), l["request_id"])
			}
			raw, _ := json.Marshal(l)
			require.NotContains(t, string(raw), "s3cret", "query strings are never logged")
		})
	}
}

// serveWith runs handler h behind the observing middleware.
func serveWith(t *testing.T, h http.HandlerFunc) (http.Handler, *syncBuffer, *prometheus.Registry) {
	t.Helper()
	buf := &syncBuffer{}
	reg := prometheus.NewRegistry()
	log := slog.New(slog.NewJSONHandler(buf, &slog.HandlerOptions{Level: slog.LevelDebug}))
	mux := http.NewServeMux()
	mux.Handle("GET /x", h)
	return observe(log, newHTTPMetrics(reg), jsonMuxErrors(mux)), buf, reg
}

func TestPanicRecovery(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		value   any
		wantLog string
	}{
		{"string", "secret card number 6222020000000000", "secret card number"},
		{"error", errors.New("secret: nil pointer in payment"), "secret: nil pointer"},
		{"runtime error", nil, "assignment to entry in nil map"}, // a real nil map write
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			h, logs, reg := serveWith(t, func(w http.ResponseWriter, r *http.Request) {
				w.Header().Set("X-Partial", "set before the panic")
				if tt.value == nil {
					var m map[string]int
					m["secret"]++
				}
				panic(tt.value)
			})
			w := httptest.NewRecorder()
			require.NotPanics(t, func() { h.ServeHTTP(w, httptest.NewRequest("GET", "/x", nil)) })
			require.Equal(t, 500, w.Code)
			require.JSONEq(t, `{"code":"INTERNAL","message":"internal error"}`, w.Body.String())
			require.NotContains(t, w.Body.String(), "secret")

			lines := logs.lines(t)
			require.Len(t, lines, 1)
			require.Equal(t, "ERROR", lines[0]["level"])
			require.Contains(t, lines[0]["error"], "panic: ")
			require.Contains(t, lines[0]["error"], tt.wantLog, "the log keeps the cause")
			require.Contains(t, lines[0]["stack"], "httpapi.TestPanicRecovery")
			require.Equal(t, 1.0, testutil.ToFloat64(newHTTPMetrics(reg).requests.WithLabelValues("GET", "GET /x", "500")))
			require.Equal(t, 0.0, testutil.ToFloat64(newHTTPMetrics(reg).inFlight))
		})
	}
}

func TestPanicAfterTheHeaderAbortsTheResponse(t *testing.T) {
	t.Parallel()
	h, logs, _ := serveWith(t, func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(200)
		io.WriteString(w, `{"partial":`)
		panic("secret midway")
	})
	require.PanicsWithValue(t, http.ErrAbortHandler, func() {
		h.ServeHTTP(httptest.NewRecorder(), httptest.NewRequest("GET", "/x", nil))
	})
	lines := logs.lines(t)
	require.Len(t, lines, 1)
	require.Equal(t, "ERROR", lines[0]["level"])
	require.Contains(t, lines[0]["error"], "secret midway")

	// Through a real server the client sees a broken response, not a
	// truncated success.
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	resp, err := srv.Client().Get(srv.URL + "/x")
	if err == nil {
		_, err = io.ReadAll(resp.Body)
		resp.Body.Close()
	}
	require.Error(t, err)
}

func TestAbortHandlerIsNotAnError500(t *testing.T) {
	t.Parallel()
	h, logs, _ := serveWith(t, func(w http.ResponseWriter, r *http.Request) {
		panic(http.ErrAbortHandler)
	})
	w := httptest.NewRecorder()
	require.NotPanics(t, func() { h.ServeHTTP(w, httptest.NewRequest("GET", "/x", nil)) })
	require.Empty(t, w.Body.String(), "an abort writes nothing")
	require.Contains(t, logs.lines(t)[0]["error"], "aborted")
}

func TestHandlerErrorIsLoggedWithTheRequest(t *testing.T) {
	t.Parallel()
	h, logs, _ := serveWith(t, func(w http.ResponseWriter, r *http.Request) {
		WriteError(w, &paygate.Error{Code: paygate.CodeInsufficientFunds, Message: "not enough", Err: errors.New("balance 10 < 20")})
	})
	w := httptest.NewRecorder()
	h.ServeHTTP(w, httptest.NewRequest("GET", "/x", nil))
	require.Equal(t, 422, w.Code)
	l := logs.lines(t)[0]
	require.Equal(t, "INFO", l["level"])
	require.Contains(t, l["error"], "balance 10 < 20")
	require.Equal(t, float64(len(w.Body.Bytes())), l["bytes"])
}
