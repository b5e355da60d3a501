// Package httpapi is paygate's HTTP adapter: it turns requests into calls on
// the use cases and their results and errors into JSON responses.
//
// Every error response has one shape, {code, message, detail?} (ErrorBody),
// written by WriteError with the status Status maps the code to. Every
// request is logged with slog, counted in Prometheus, and protected by a
// panic recovery that answers 500 INTERNAL without leaking the panic's text.
package httpapi

import (
	"context"
	"log/slog"
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"paygate"
)

// Pinger checks a dependency (the database) answers. *store.DB implements it.
type Pinger interface {
	Ping(ctx context.Context) error
}

// Config is what New needs. Registry is required; the rest have defaults.
type Config struct {
	// Logger receives one line per request; nil means slog.Default().
	Logger *slog.Logger
	// Registry is where the HTTP metrics are registered and what /metrics
	// serves (register the process, Go and service collectors on it too).
	Registry *prometheus.Registry
	// DB is pinged by /readyz; nil means there is nothing to check.
	DB Pinger
	// ReadyTimeout bounds the /readyz ping; 0 means 2 seconds.
	ReadyTimeout time.Duration
	// V1 is the merchant open API; nil serves only the operational routes.
	V1 *V1
	// Pages registers the browser-facing pages (the hosted checkout,
	// package web) on the same mux, behind the same request log, metrics
	// and panic recovery; nil serves none.
	Pages interface{ Register(mux *http.ServeMux) }
}

// New returns paygate's HTTP handler, a net/http ServeMux behind the
// observing middleware (request log, metrics, panic recovery). Routes:
//
//   - GET /healthz: 200 {"status":"ok"} while the process runs;
//   - GET /readyz: 200 {"status":"ok"} when the database answers within
//     ReadyTimeout, else 503 with code UNAVAILABLE;
//   - GET /metrics: the registry in the Prometheus exposition format;
//   - the /v1 merchant API (V1.Register) when Config.V1 is set;
//   - the pages (Pages.Register) when Config.Pages is set.
//
// Unknown paths answer 404 NOT_FOUND and known paths with another method
// 405 METHOD_NOT_ALLOWED, both in the error JSON shape.
func New(cfg Config) http.Handler {
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.ReadyTimeout <= 0 {
		cfg.ReadyTimeout = 2 * time.Second
	}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusOK, statusBody{Status: "ok"})
	})
	mux.HandleFunc("GET /readyz", func(w http.ResponseWriter, r *http.Request) {
		if cfg.DB != nil {
			ctx, cancel := context.WithTimeout(r.Context(), cfg.ReadyTimeout)
			defer cancel()
			if err := cfg.DB.Ping(ctx); err != nil {
				WriteError(w, &paygate.Error{Code: paygate.CodeUnavailable, Message: "the database does not answer", Err: err})
				return
			}
		}
		writeJSON(w, http.StatusOK, statusBody{Status: "ok"})
	})
	mux.Handle("GET /metrics", promhttp.HandlerFor(cfg.Registry, promhttp.HandlerOpts{
		ErrorLog:          slog.NewLogLogger(cfg.Logger.Handler(), slog.LevelError),
		ErrorHandling:     promhttp.ContinueOnError,
		Registry:          cfg.Registry,
		EnableOpenMetrics: false,
	}))
	if cfg.V1 != nil {
		cfg.V1.Register(mux)
	}
	if cfg.Pages != nil {
		cfg.Pages.Register(mux)
	}
	return observe(cfg.Logger, newHTTPMetrics(cfg.Registry), jsonMuxErrors(mux))
}

// statusBody answers the probes.
type statusBody struct {
	Status string `json:"status"`
}

// jsonMuxErrors serves mux, rewriting the plain-text 404 and 405 answers the
// mux itself gives (no route matched) into the error JSON shape.
func jsonMuxErrors(mux *http.ServeMux) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if _, pattern := mux.Handler(r); pattern == "" {
			w = &muxErrorWriter{ResponseWriter: w}
		}
		mux.ServeHTTP(w, r)
	})
}

// muxErrorWriter replaces the body of a 404 or 405 with the error JSON.
type muxErrorWriter struct {
	http.ResponseWriter
	replaced bool
}

// WriteHeader answers a 404 or 405 with the error JSON and passes any
// other status on.
func (m *muxErrorWriter) WriteHeader(status int) {
	var err *paygate.Error
	switch status {
	case http.StatusNotFound:
		err = paygate.E(paygate.CodeNotFound, "no such endpoint")
	case http.StatusMethodNotAllowed:
		err = paygate.E(paygate.CodeMethodNotAllowed, "method not allowed; see the Allow header")
	default:
		m.ResponseWriter.WriteHeader(status)
		return
	}
	m.replaced = true
	m.Header().Del("Content-Type")
	WriteError(m.ResponseWriter, err)
}

// Write drops the mux's plain-text body once the JSON answer is written.
func (m *muxErrorWriter) Write(b []byte) (int, error) {
	if m.replaced {
		return len(b), nil // the mux's plain-text body; ours is written
	}
	return m.ResponseWriter.Write(b)
}

// Unwrap lets http.ResponseController reach the connection.
func (m *muxErrorWriter) Unwrap() http.ResponseWriter { return m.ResponseWriter }
