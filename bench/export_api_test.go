package bench

import (
	"context"
	"time"

	"paygate/store"
)

// RawPayments writes n complete payments' rows with the raw baseline of
// the API load, into accounts under prefix.
func RawPayments(ctx context.Context, db *store.DB, prefix string, n int) error {
	r, err := newRawPayments(ctx, db, prefix, "http://127.0.0.1:9/notify")
	if err != nil {
		return err
	}
	w := r.workload()
	for range n {
		if _, err := w(ctx); err != nil {
			return err
		}
	}
	return nil
}

// SignFor runs the RSA signing measure for d.
func SignFor(ctx context.Context, d time.Duration) (RSAMeasure, error) {
	s, err := newRSASigner()
	if err != nil {
		return RSAMeasure{}, err
	}
	var m RSAMeasure
	err = s.run(ctx, d, &m)
	return m, err
}
