package payment_test

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"runtime"
	"sync/atomic"
	"testing"
	"time"

	"paygate"
	"paygate/channel"
	"paygate/channel/sim"
	"paygate/ledger"
	"paygate/payment"
	"paygate/store"
	"paygate/store/storetest"
)

// inline runs the simulator's callbacks at once, on the paying goroutine,
// so that a benchmark operation is a whole payment.
type inline struct{}

func (inline) After(_ time.Duration, fn func()) { fn() }

var benchRun atomic.Int64

// benchService returns a service on db with the system clock whose
// simulator confirms synchronously, and a merchant per client.
func benchService(b *testing.B, db *store.DB) (*payment.Service, []string) {
	b.Helper()
	mchs := &fakeMerchants{m: map[string]paygate.Merchant{}}
	var ids []string
	for i := range 2 * runtime.GOMAXPROCS(0) * 4 {
		id := fmt.Sprintf("b%d_%d", benchRun.Add(1), i)
		mchs.add(paygate.Merchant{ID: id, Status: paygate.MerchantSandbox, SettlementCurrency: "CNY", FeeRateBps: 60})
		ids = append(ids, id)
	}
	clock := paygate.SystemClock{}
	quiet := slog.New(slog.DiscardHandler)
	var svc *payment.Service
	s, err := sim.New(sim.Config{Secret: simSecret, Clock: clock, Dispatcher: inline{}, Logger: quiet,
		Deliver: func(ctx context.Context, h http.Header, body []byte) error {
			_, err := svc.Callback(ctx, sim.Name, h, body)
			return err
		}})
	if err != nil {
		b.Fatal(err)
	}
	svc, err = payment.New(payment.Config{Store: db.Payments(), Ledger: ledger.New(db.Ledger(), clock, paygate.DefaultCalendar()),
		Merchants: mchs, Clock: clock, Channels: []channel.Channel{s}, Logger: quiet})
	if err != nil {
		b.Fatal(err)
	}
	return svc, ids
}

// BenchmarkPayment measures, with 2 clients per CPU, whole sandbox payments
// (create; pay through the simulator, whose callback is verified and booked
// with its journal and notification at once) and creates alone.
func BenchmarkPayment(b *testing.B) {
	for _, d := range []store.Dialect{store.SQLite, store.Postgres} {
		db := storetest.Open(b, d)
		for _, step := range []string{"create", "create+pay"} {
			b.Run(string(d)+"/"+step, func(b *testing.B) {
				svc, mchs := benchService(b, db)
				var next, seq atomic.Int64
				ctx := context.Background()
				b.SetParallelism(2)
				b.ResetTimer()
				b.RunParallel(func(pb *testing.PB) {
					mch := mchs[int(next.Add(1)-1)%len(mchs)]
					for pb.Next() {
						o, _, err := svc.Create(ctx, mch, request(fmt.Sprintf("bench_%d", seq.Add(1))))
						if err != nil {
							b.Error(err)
							return
						}
						if step == "create" {
							continue
						}
						a, err := svc.SandboxPay(ctx, mch, o.ID, "success")
						if err != nil || a.Status != channel.StatusSuccess {
							b.Errorf("pay: %v %v", a.Status, err)
							return
						}
					}
				})
				b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "ops/s")
			})
		}
	}
}
