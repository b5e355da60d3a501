package httpapi

import (
	"context"

	"paygate"
)

type merchantKey struct{}

// WithMerchant returns ctx carrying the authenticated merchant. Only the
// authentication middleware (auth.go) calls it, after the request's
// signature verified.
func WithMerchant(ctx context.Context, m paygate.Merchant) context.Context {
	return context.WithValue(ctx, merchantKey{}, m)
}

// MerchantFrom returns the merchant the request authenticated as. ok is
// false outside authenticated routes; handlers of those routes never run
// without one.
func MerchantFrom(ctx context.Context) (m paygate.Merchant, ok bool) {
	m, ok = ctx.Value(merchantKey{}).(paygate.Merchant)
	return m, ok
}
