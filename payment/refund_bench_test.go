package payment_test

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"

	"paygate/channel"
	"paygate/payment"
	"paygate/store"
	"paygate/store/storetest"
)

// refundsPerBenchOrder is how many partial refunds BenchmarkRefund makes
// of one order (MaxRefundsPerOrder allows 50).
const refundsPerBenchOrder = 40

// BenchmarkRefund measures single channel refunds of one merchant's paid
// orders (each refund held in the ledger and submitted to the simulator,
// which accepts it at once) with 1, 4 and 16 clients: the k-th refund is
// of order k mod n, so clients never wait on one order's lock, only on
// what every refund of the merchant shares — its pending balance row.
// Paying the orders is not timed.
func BenchmarkRefund(b *testing.B) {
	for _, d := range []store.Dialect{store.SQLite, store.Postgres} {
		db := storetest.Open(b, d)
		for _, clients := range []int{1, 4, 16} {
			b.Run(fmt.Sprintf("%s/clients=%d", d, clients), func(b *testing.B) {
				svc, mchs := benchService(b, db)
				mch, ctx := mchs[0], context.Background()
				orders := make([]payment.Order, b.N/refundsPerBenchOrder+clients)
				for i := range orders {
					o, _, err := svc.Create(ctx, mch, request(fmt.Sprintf("bench_rf_%d", i)))
					if err != nil {
						b.Fatal(err)
					}
					if a, err := svc.SandboxPay(ctx, mch, o.ID, "success"); err != nil || a.Status != channel.StatusSuccess {
						b.Fatalf("pay: %v %v", a.Status, err)
					}
					orders[i] = o
				}
				var next atomic.Int64
				var wg sync.WaitGroup
				b.ResetTimer()
				for range clients {
					wg.Go(func() {
						for {
							k := int(next.Add(1) - 1)
							if k >= b.N {
								return
							}
							o := orders[k%len(orders)]
							r, _, err := svc.Refund(ctx, mch, refundReq(o, fmt.Sprintf("bench_rf_%d", k), 100))
							if err != nil || r.Status != payment.RefundProcessing {
								b.Errorf("refund: %v %v", r.Status, err)
								return
							}
						}
					})
				}
				wg.Wait()
				b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "refunds/s")
			})
		}
	}
}
