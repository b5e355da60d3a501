package httpapi

import (
	"fmt"
	"log/slog"
	"net/http"
	"runtime/debug"
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"paygate"
	"paygate/metrics"
)

// httpMetrics are the request metrics of the HTTP API.
type httpMetrics struct {
	requests *prometheus.CounterVec
	duration *prometheus.HistogramVec
	inFlight prometheus.Gauge
}

func newHTTPMetrics(reg prometheus.Registerer) httpMetrics {
	return httpMetrics{
		requests: metrics.Register(reg, prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: metrics.Namespace, Subsystem: "http", Name: "requests_total",
			Help: "HTTP requests by method, route pattern and status code.",
		}, []string{"method", "route", "status"})),
		duration: metrics.Register(reg, prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Namespace: metrics.Namespace, Subsystem: "http", Name: "request_duration_seconds",
			Help:    "HTTP request latency by method and route pattern.",
			Buckets: prometheus.ExponentialBuckets(0.0005, 2, 15), // 0.5 ms .. ~8 s
		}, []string{"method", "route"})),
		inFlight: metrics.Register(reg, prometheus.NewGauge(prometheus.GaugeOpts{
			Namespace: metrics.Namespace, Subsystem: "http", Name: "requests_in_flight",
			Help: "HTTP requests being served.",
		})),
	}
}

// methodLabel bounds the method label to the standard methods.
func methodLabel(m string) string {
	switch m {
	case http.MethodGet, http.MethodHead, http.MethodPost, http.MethodPut,
		http.MethodPatch, http.MethodDelete, http.MethodOptions:
		return m
	}
	return "OTHER"
}

// quietRoutes are probes and scrapes: logged at debug level only, so that a
// load balancer polling them does not flood the log.
var quietRoutes = map[string]bool{"GET /healthz": true, "GET /readyz": true, "GET /metrics": true}

// requestIDHeader carries the id that ties a response to its log line.
const requestIDHeader = "X-Request-Id"

// requestID returns the caller's X-Request-Id when it is short and plain
// (set by a proxy in front), else a new id.
func requestID(r *http.Request) string {
	id := r.Header.Get(requestIDHeader)
	if len(id) == 0 || len(id) > 64 {
		return paygate.NewID("req_")
	}
	for i := 0; i < len(id); i++ {
		c := id[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_' || c == '.') {
			return paygate.NewID("req_")
		}
	}
	return id
}

// observe wraps next with panic recovery, one log line per request and the
// request metrics. The route label is the ServeMux pattern that matched
// ("unmatched" otherwise), so the label set stays bounded. next must pass
// the request it receives to the mux unchanged, since the mux records the
// pattern on it.
func observe(log *slog.Logger, m httpMetrics, next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		id := requestID(r)
		w.Header().Set(requestIDHeader, id)
		rec := &recorder{ResponseWriter: w}
		m.inFlight.Inc()
		defer func() {
			m.inFlight.Dec()
			p := recover()
			abort := p != nil && rec.wroteHeader // too late to answer 500
			if p != nil {
				if p == http.ErrAbortHandler {
					rec.recordError(fmt.Errorf("handler aborted the response"))
				} else {
					rec.recordError(fmt.Errorf("panic: %v", p))
					rec.stack = debug.Stack()
				}
				if !rec.wroteHeader && p != http.ErrAbortHandler {
					WriteError(rec, paygate.Internal(rec.err))
				}
			}
			status := rec.status
			if !rec.wroteHeader {
				status = http.StatusOK
			}
			route := r.Pattern
			if route == "" {
				route = "unmatched"
			}
			method := methodLabel(r.Method)
			elapsed := time.Since(start)
			m.requests.WithLabelValues(method, route, strconv.Itoa(status)).Inc()
			m.duration.WithLabelValues(method, route).Observe(elapsed.Seconds())

			level := slog.LevelInfo
			switch {
			case status >= 500 || rec.stack != nil:
				level = slog.LevelError
			case quietRoutes[r.Pattern]:
				level = slog.LevelDebug
			}
			if log.Enabled(r.Context(), level) {
				attrs := []slog.Attr{
					slog.String("request_id", id),
					slog.String("method", r.Method),
					slog.String("path", r.URL.Path), // never the query: it may carry ids or tokens
					slog.String("route", route),
					slog.Int("status", status),
					slog.Int64("bytes", rec.bytes),
					slog.Duration("duration", elapsed),
					slog.String("remote", r.RemoteAddr),
				}
				if rec.err != nil {
					attrs = append(attrs, slog.String("error", rec.err.Error()))
				}
				if rec.stack != nil {
					attrs = append(attrs, slog.String("stack", string(rec.stack)))
				}
				log.LogAttrs(r.Context(), level, "request", attrs...)
			}
			if abort {
				// The status and part of the body are out: abort the
				// connection so the client sees a broken response, not a
				// truncated success.
				panic(http.ErrAbortHandler)
			}
		}()
		next.ServeHTTP(rec, r)
	})
}

// recorder remembers what a handler wrote, and the error WriteError
// answered with, for the log line and the metrics.
type recorder struct {
	http.ResponseWriter
	status      int
	wroteHeader bool
	bytes       int64
	err         error
	stack       []byte
}

// WriteHeader records the first final status and passes it on.
func (r *recorder) WriteHeader(status int) {
	if !r.wroteHeader && status >= 200 {
		r.status, r.wroteHeader = status, true
	}
	r.ResponseWriter.WriteHeader(status)
}

// Write counts the bytes of the body and passes them on.
func (r *recorder) Write(b []byte) (int, error) {
	if !r.wroteHeader {
		r.status, r.wroteHeader = http.StatusOK, true
	}
	n, err := r.ResponseWriter.Write(b)
	r.bytes += int64(n)
	return n, err
}

// Flush sends buffered data to the client, for handlers that stream.
func (r *recorder) Flush() {
	if !r.wroteHeader {
		r.status, r.wroteHeader = http.StatusOK, true
	}
	http.NewResponseController(r.ResponseWriter).Flush()
}

// Unwrap lets http.ResponseController reach the connection.
func (r *recorder) Unwrap() http.ResponseWriter { return r.ResponseWriter }

func (r *recorder) recordError(err error) {
	if r.err == nil {
		r.err = err
	}
}
