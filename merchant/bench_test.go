package merchant_test

import (
	"context"
	"strconv"
	"sync/atomic"
	"testing"

	"github.com/stretchr/testify/require"

	"paygate"
	"paygate/merchant"
	"paygate/signing"
	"paygate/store"
	"paygate/store/storetest"
)

// BenchmarkMerchantKey measures the per-request credential look-up, which
// deliberately reads the database every time (so revocation is immediate
// in every process), against the parse it would save to cache (see
// BenchmarkParsePublicKey).
func BenchmarkMerchantKey(b *testing.B) {
	for _, d := range []store.Dialect{store.SQLite, store.Postgres} {
		b.Run(string(d), func(b *testing.B) {
			svc := newService(b, storetest.Open(b, d), paygate.NewManualClock(t0))
			c := create(b, svc, merchant.CreateRequest{})
			ctx := context.Background()
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				if _, _, err := svc.MerchantKey(ctx, c.Merchant.ID, c.Key.SerialNo); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkUseNonce measures the nonce insert, one round trip per request.
func BenchmarkUseNonce(b *testing.B) {
	for _, d := range []store.Dialect{store.SQLite, store.Postgres} {
		b.Run(string(d), func(b *testing.B) {
			svc := newService(b, storetest.Open(b, d), paygate.NewManualClock(t0))
			ctx := context.Background()
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				if err := svc.UseNonce(ctx, "1234567890", strconv.Itoa(i), t0.Unix()); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkUseNonceParallel records nonces from 16 goroutines per CPU at
// once, as concurrent requests do (on SQLite they commit in groups).
func BenchmarkUseNonceParallel(b *testing.B) {
	for _, d := range []store.Dialect{store.SQLite, store.Postgres} {
		b.Run(string(d), func(b *testing.B) {
			svc := newService(b, storetest.Open(b, d), paygate.NewManualClock(t0))
			ctx := context.Background()
			var seq atomic.Int64
			b.SetParallelism(16)
			b.ResetTimer()
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					if err := svc.UseNonce(ctx, "1234567890", strconv.FormatInt(seq.Add(1), 10), t0.Unix()); err != nil {
						b.Error(err)
						return
					}
				}
			})
		})
	}
}

// BenchmarkParsePublicKey is the parse the in-process parsed-key cache saves.
func BenchmarkParsePublicKey(b *testing.B) {
	p := pubPEM(keyA)
	for i := 0; i < b.N; i++ {
		k, err := signing.ParsePublicKeyPEM(p)
		require.NoError(b, err)
		_ = signing.SerialNo(k)
	}
}

// BenchmarkSigningKey is the hot path of response signing: the cached
// platform key, no database round trip.
func BenchmarkSigningKey(b *testing.B) {
	svc := newService(b, storetest.Open(b, store.SQLite), paygate.NewManualClock(t0))
	ctx := context.Background()
	_, err := svc.EnsurePlatformKey(ctx)
	require.NoError(b, err)
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if _, _, err := svc.SigningKey(ctx); err != nil {
			b.Fatal(err)
		}
	}
}
