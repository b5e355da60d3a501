package notify_test

import (
	"context"
	"io"
	"log/slog"
	"testing"

	"paygate"
	"paygate/notify"
	"paygate/store"
	"paygate/store/storetest"
)

// BenchmarkDeliver measures whole deliveries per second: claim, encrypt,
// sign (RSA-2048), POST to a local endpoint answering 200, record. Enqueueing
// is outside the timer.
func BenchmarkDeliver(b *testing.B) {
	for _, d := range []store.Dialect{store.SQLite, store.Postgres} {
		b.Run(string(d), func(b *testing.B) {
			db := storetest.Open(b, d)
			ctx := context.Background()
			clock := paygate.NewManualClock(t0)
			w, err := notify.NewWorker(db.Notify(), &keys{}, clock, notify.Options{
				Concurrency: 8, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
			if err != nil {
				b.Fatal(err)
			}
			m := newMerchant(b)
			evs := make([]notify.Event, b.N)
			for i := range evs {
				evs[i] = event("mch_bench", m.srv.URL)
			}
			for len(evs) > 0 {
				n := min(len(evs), notify.MaxBatch)
				if err := db.InTx(ctx, func(tx *store.Tx) error { return notify.Enqueue(ctx, tx, clock, evs[:n]...) }); err != nil {
					b.Fatal(err)
				}
				evs = evs[n:]
			}
			b.ResetTimer()
			done := 0
			for done < b.N {
				n, err := w.RunOnce(ctx)
				if err != nil {
					b.Fatal(err)
				}
				done += n
			}
			b.StopTimer()
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "deliveries/s")
		})
	}
}
