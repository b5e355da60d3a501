// Package metrics wraps paygate's services with Prometheus instrumentation.
// Cross-cutting concerns wrap a service by delegation; business code never
// imports this package.
package metrics

import (
	"errors"

	"github.com/prometheus/client_golang/prometheus"
)

// Namespace prefixes every metric paygate exports.
const Namespace = "paygate"

// Register registers c with reg and returns it. When an equal collector is
// already registered (a second wrapper over the same registry), it returns
// the existing one, so wrapping twice shares the series instead of
// panicking. Any other registration error is a programming error and panics.
func Register[C prometheus.Collector](reg prometheus.Registerer, c C) C {
	if err := reg.Register(c); err != nil {
		var are prometheus.AlreadyRegisteredError
		if errors.As(err, &are) {
			if existing, ok := are.ExistingCollector.(C); ok {
				return existing
			}
		}
		panic(err)
	}
	return c
}
