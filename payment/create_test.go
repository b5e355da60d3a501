package payment_test

import (
	"fmt"
	"math"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"paygate"
	"paygate/payment"
	"paygate/store"
	"paygate/store/storetest"
)

func TestCreateValidation(t *testing.T) {
	t.Parallel()
	type edit func(r *payment.CreateRequest)
	cases := []struct {
		name  string
		mch   string
		edit  edit
		code  paygate.Code // "" means accepted
		field string
	}{
		{"valid", mchA, func(r *payment.CreateRequest) {}, "", ""},

		{"out_trade_no missing", mchA, func(r *payment.CreateRequest) { r.OutTradeNo = "" }, paygate.CodeInvalidArgument, "out_trade_no"},
		{"out_trade_no 5 chars", mchA, func(r *payment.CreateRequest) { r.OutTradeNo = "12345" }, paygate.CodeInvalidArgument, "out_trade_no"},
		{"out_trade_no 33 chars", mchA, func(r *payment.CreateRequest) { r.OutTradeNo = strings.Repeat("a", 33) }, paygate.CodeInvalidArgument, "out_trade_no"},
		{"out_trade_no space", mchA, func(r *payment.CreateRequest) { r.OutTradeNo = "order 0001" }, paygate.CodeInvalidArgument, "out_trade_no"},
		{"out_trade_no hash", mchA, func(r *payment.CreateRequest) { r.OutTradeNo = "order#0001" }, paygate.CodeInvalidArgument, "out_trade_no"},
		{"out_trade_no non-ASCII", mchA, func(r *payment.CreateRequest) { r.OutTradeNo = "订单订单订单" }, paygate.CodeInvalidArgument, "out_trade_no"},
		{"out_trade_no 6 chars", mchA, func(r *payment.CreateRequest) { r.OutTradeNo = "a_-|*9" }, "", ""},
		{"out_trade_no 32 chars", mchA, func(r *payment.CreateRequest) { r.OutTradeNo = strings.Repeat("Zz09", 8) }, "", ""},

		{"description missing", mchA, func(r *payment.CreateRequest) { r.Description = "" }, paygate.CodeInvalidArgument, "description"},
		{"description blank", mchA, func(r *payment.CreateRequest) { r.Description = "   " }, paygate.CodeInvalidArgument, "description"},
		{"description 128 chars", mchA, func(r *payment.CreateRequest) { r.Description = strings.Repeat("商", 128) }, paygate.CodeInvalidArgument, "description"},
		{"description 127 chars", mchA, func(r *payment.CreateRequest) { r.Description = strings.Repeat("商", 127) }, "", ""},
		{"description newline", mchA, func(r *payment.CreateRequest) { r.Description = "a\nb" }, paygate.CodeInvalidArgument, "description"},
		{"description NUL", mchA, func(r *payment.CreateRequest) { r.Description = "a\x00b" }, paygate.CodeInvalidArgument, "description"},
		{"description bad UTF-8", mchA, func(r *payment.CreateRequest) { r.Description = "a\xffb" }, paygate.CodeInvalidArgument, "description"},

		{"amount zero", mchA, func(r *payment.CreateRequest) { r.Amount.Total = 0 }, paygate.CodeAmountNotPositive, "amount.total"},
		{"amount negative", mchA, func(r *payment.CreateRequest) { r.Amount.Total = -1 }, paygate.CodeAmountNotPositive, "amount.total"},
		{"amount min int64", mchA, func(r *payment.CreateRequest) { r.Amount.Total = math.MinInt64 }, paygate.CodeAmountNotPositive, "amount.total"},
		{"amount max int64", mchA, func(r *payment.CreateRequest) { r.Amount.Total = math.MaxInt64 }, paygate.CodeLimitExceeded, "amount.total"},
		{"amount over max", mchA, func(r *payment.CreateRequest) { r.Amount.Total = payment.DefaultMaxAmount + 1 }, paygate.CodeLimitExceeded, "amount.total"},
		{"amount at max", mchA, func(r *payment.CreateRequest) { r.Amount.Total = payment.DefaultMaxAmount }, "", ""},
		{"amount one fen", mchA, func(r *payment.CreateRequest) { r.Amount.Total = 1 }, "", ""},

		{"currency unknown", mchA, func(r *payment.CreateRequest) { r.Amount.Currency = "XXX" }, paygate.CodeUnknownCurrency, "amount.currency"},
		{"currency lower case", mchA, func(r *payment.CreateRequest) { r.Amount.Currency = "cny" }, paygate.CodeUnknownCurrency, "amount.currency"},
		{"currency missing means CNY", mchA, func(r *payment.CreateRequest) { r.Amount.Currency = "" }, "", ""},
		{"currency JPY", mchA, func(r *payment.CreateRequest) { r.Amount.Currency = "JPY" }, "", ""},

		{"notify_url missing", mchA, func(r *payment.CreateRequest) { r.NotifyURL = "" }, paygate.CodeInvalidArgument, "notify_url"},
		{"notify_url ftp", mchA, func(r *payment.CreateRequest) { r.NotifyURL = "ftp://merchant.example.com/n" }, paygate.CodeInvalidArgument, "notify_url"},
		{"notify_url relative", mchA, func(r *payment.CreateRequest) { r.NotifyURL = "/notify" }, paygate.CodeInvalidArgument, "notify_url"},
		{"notify_url user info", mchA, func(r *payment.CreateRequest) { r.NotifyURL = "https://u:p@merchant.example.com/n" }, paygate.CodeInvalidArgument, "notify_url"},
		{"notify_url fragment", mchA, func(r *payment.CreateRequest) { r.NotifyURL = "https://merchant.example.com/n#x" }, paygate.CodeInvalidArgument, "notify_url"},
		{"notify_url too long", mchA, func(r *payment.CreateRequest) {
			r.NotifyURL = "https://merchant.example.com/" + strings.Repeat("a", 2048)
		}, paygate.CodeInvalidArgument, "notify_url"},
		{"notify_url loopback in live mode", mchLive, func(r *payment.CreateRequest) { r.NotifyURL = "http://127.0.0.1:8080/n" }, paygate.CodeInvalidArgument, "notify_url"},
		{"notify_url private in live mode", mchLive, func(r *payment.CreateRequest) { r.NotifyURL = "http://10.0.0.1/n" }, paygate.CodeInvalidArgument, "notify_url"},
		{"notify_url loopback in sandbox", mchA, func(r *payment.CreateRequest) { r.NotifyURL = "http://127.0.0.1:8080/n" }, "", ""},

		{"return_url javascript", mchA, func(r *payment.CreateRequest) { r.ReturnURL = "javascript:alert(1)" }, paygate.CodeInvalidArgument, "return_url"},
		{"return_url relative", mchA, func(r *payment.CreateRequest) { r.ReturnURL = "/done" }, paygate.CodeInvalidArgument, "return_url"},
		{"return_url too long", mchA, func(r *payment.CreateRequest) {
			r.ReturnURL = "https://merchant.example.com/" + strings.Repeat("a", payment.MaxURL)
		}, paygate.CodeInvalidArgument, "return_url"},
		{"return_url ok", mchA, func(r *payment.CreateRequest) { r.ReturnURL = "https://merchant.example.com/done?o=1" }, "", ""},

		{"time_expire past", mchA, func(r *payment.CreateRequest) { r.TimeExpire = t0.Add(-time.Second) }, paygate.CodeInvalidArgument, "time_expire"},
		{"time_expire now", mchA, func(r *payment.CreateRequest) { r.TimeExpire = t0 }, paygate.CodeInvalidArgument, "time_expire"},
		{"time_expire beyond max", mchA, func(r *payment.CreateRequest) { r.TimeExpire = t0.Add(payment.DefaultMaxExpire + time.Second) }, paygate.CodeInvalidArgument, "time_expire"},
		{"time_expire at max", mchA, func(r *payment.CreateRequest) { r.TimeExpire = t0.Add(payment.DefaultMaxExpire) }, "", ""},
		{"time_expire in a second", mchA, func(r *payment.CreateRequest) { r.TimeExpire = t0.Add(time.Second) }, "", ""},

		{"attach 129 chars", mchA, func(r *payment.CreateRequest) { r.Attach = strings.Repeat("x", 129) }, paygate.CodeInvalidArgument, "attach"},
		{"attach control", mchA, func(r *payment.CreateRequest) { r.Attach = "a\tb" }, paygate.CodeInvalidArgument, "attach"},
		{"attach 128 chars", mchA, func(r *payment.CreateRequest) { r.Attach = strings.Repeat("附", 128) }, "", ""},

		{"metadata too many keys", mchA, func(r *payment.CreateRequest) {
			r.Metadata = map[string]string{}
			for i := range payment.MaxMetadataKeys + 1 {
				r.Metadata[fmt.Sprint("k", i)] = "v"
			}
		}, paygate.CodeInvalidArgument, "metadata"},
		{"metadata empty key", mchA, func(r *payment.CreateRequest) { r.Metadata = map[string]string{"": "v"} }, paygate.CodeInvalidArgument, "metadata"},
		{"metadata long key", mchA, func(r *payment.CreateRequest) { r.Metadata = map[string]string{strings.Repeat("k", 41): "v"} }, paygate.CodeInvalidArgument, "metadata"},
		{"metadata key with space", mchA, func(r *payment.CreateRequest) { r.Metadata = map[string]string{"a b": "v"} }, paygate.CodeInvalidArgument, "metadata"},
		{"metadata long value", mchA, func(r *payment.CreateRequest) { r.Metadata = map[string]string{"k": strings.Repeat("v", 257)} }, paygate.CodeInvalidArgument, "metadata"},
		{"metadata control value", mchA, func(r *payment.CreateRequest) { r.Metadata = map[string]string{"k": "a\rb"} }, paygate.CodeInvalidArgument, "metadata"},
		{"metadata ok", mchA, func(r *payment.CreateRequest) {
			r.Metadata = map[string]string{"order.ref": "A-1", "customer_id": "c_9", "empty": ""}
		}, "", ""},

		{"payment_methods too many", mchA, func(r *payment.CreateRequest) {
			r.PaymentMethods = strings.Split("a,b,c,d,e,f,g,h,i,j,k", ",")
		}, paygate.CodeInvalidArgument, "payment_methods"},
		{"payment_methods duplicate", mchA, func(r *payment.CreateRequest) { r.PaymentMethods = []string{"card", "card"} }, paygate.CodeInvalidArgument, "payment_methods"},
		{"payment_methods upper case", mchA, func(r *payment.CreateRequest) { r.PaymentMethods = []string{"Card"} }, paygate.CodeInvalidArgument, "payment_methods"},
		{"payment_methods empty name", mchA, func(r *payment.CreateRequest) { r.PaymentMethods = []string{""} }, paygate.CodeInvalidArgument, "payment_methods"},
		{"payment_methods ok", mchA, func(r *payment.CreateRequest) { r.PaymentMethods = []string{"card", "wechat_pay", "alipay"} }, "", ""},

		{"unknown merchant", "1999999999", func(r *payment.CreateRequest) {}, paygate.CodeNotFound, ""},
		{"suspended merchant", mchSusp, func(r *payment.CreateRequest) {}, paygate.CodeForbidden, ""},
		{"live merchant", mchLive, func(r *payment.CreateRequest) {}, "", ""},
	}
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		f := newFixture(t, db)
		created := 0
		for i, c := range cases {
			r := request(fmt.Sprintf("case_%04d", i))
			c.edit(&r)
			o, replay, err := f.svc.Create(f.ctx, c.mch, r)
			if c.code == "" {
				require.NoError(t, err, c.name)
				require.False(t, replay, c.name)
				created++
				got, err := f.svc.GetByOutTradeNo(f.ctx, c.mch, r.OutTradeNo)
				require.NoError(t, err, c.name)
				require.Equal(t, o, got, "%s: the stored order reads back as created", c.name)
				continue
			}
			requireCode(t, err, c.code, c.name)
			require.Equal(t, c.field, fieldOf(err), c.name)
			require.Zero(t, o.ID)
		}
		require.Equal(t, created, f.count(t, `SELECT COUNT(*) FROM payment_orders`), "rejected requests create nothing")

		o, err := f.svc.GetByOutTradeNo(f.ctx, mchA, "case_0000")
		require.NoError(t, err)
		require.Equal(t, paygate.Currency("CNY"), o.Amount.Currency)
		mdCase := -1
		for i, c := range cases {
			if c.name == "metadata ok" {
				mdCase = i
			}
		}
		md, err := f.svc.GetByOutTradeNo(f.ctx, mchA, fmt.Sprintf("case_%04d", mdCase))
		require.NoError(t, err)
		require.Equal(t, map[string]string{"order.ref": "A-1", "customer_id": "c_9", "empty": ""}, md.Metadata)
	})
}

func TestCreateIdempotent(t *testing.T) {
	t.Parallel()
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		f := newFixture(t, db)
		base := request("order_0001")
		base.Metadata = map[string]string{"a": "1", "b": "2"}
		base.PaymentMethods = []string{"card"}
		base.TimeExpire = t0.Add(time.Hour)
		first, replay, err := f.svc.Create(f.ctx, mchA, base)
		require.NoError(t, err)
		require.False(t, replay)

		same := base
		same.Metadata = map[string]string{"b": "2", "a": "1"}
		same.TimeExpire = t0.Add(time.Hour).In(time.FixedZone("CST", 8*3600))
		f.clock.Advance(time.Minute)
		again, replay, err := f.svc.Create(f.ctx, mchA, same)
		require.NoError(t, err)
		require.True(t, replay, "the same request is a replay")
		require.Equal(t, first, again)

		diffs := []struct {
			field string
			edit  func(r *payment.CreateRequest)
		}{
			{"description", func(r *payment.CreateRequest) { r.Description = "other" }},
			{"amount.total", func(r *payment.CreateRequest) { r.Amount.Total++ }},
			{"amount.currency", func(r *payment.CreateRequest) { r.Amount.Currency = "USD" }},
			{"notify_url", func(r *payment.CreateRequest) { r.NotifyURL += "2" }},
			{"return_url", func(r *payment.CreateRequest) { r.ReturnURL = "https://merchant.example.com/r" }},
			{"attach", func(r *payment.CreateRequest) { r.Attach = "x" }},
			{"time_expire", func(r *payment.CreateRequest) { r.TimeExpire = r.TimeExpire.Add(time.Second) }},
			{"time_expire", func(r *payment.CreateRequest) { r.TimeExpire = time.Time{} }},
			{"metadata", func(r *payment.CreateRequest) { r.Metadata = map[string]string{"a": "1"} }},
			{"payment_methods", func(r *payment.CreateRequest) { r.PaymentMethods = nil }},
		}
		for _, d := range diffs {
			r := base
			r.Metadata = map[string]string{"a": "1", "b": "2"}
			d.edit(&r)
			_, _, err := f.svc.Create(f.ctx, mchA, r)
			requireCode(t, err, paygate.CodeOutTradeNoUsed, d.field)
			require.Equal(t, d.field, fieldOf(err))
		}

		// Without time_expire, a replay matches whenever it comes.
		noExp := request("order_0002")
		o2, _, err := f.svc.Create(f.ctx, mchA, noExp)
		require.NoError(t, err)
		f.clock.Advance(30 * time.Minute)
		o2b, replay, err := f.svc.Create(f.ctx, mchA, noExp)
		require.NoError(t, err)
		require.True(t, replay)
		require.Equal(t, o2, o2b)

		// A replay of a paid order returns it as it is now.
		f.pay(t, mchA, o2.ID, "success")
		f.settle(2 * time.Second)
		o2c, replay, err := f.svc.Create(f.ctx, mchA, noExp)
		require.NoError(t, err)
		require.True(t, replay)
		require.Equal(t, payment.StatusSuccess, o2c.Status)

		// out_trade_no is unique per merchant only.
		ob, replay, err := f.svc.Create(f.ctx, mchB, base)
		require.NoError(t, err)
		require.False(t, replay)
		require.NotEqual(t, first.ID, ob.ID)
		require.Equal(t, 3, f.count(t, `SELECT COUNT(*) FROM payment_orders`))
	})
}

func TestCreateRace(t *testing.T) {
	t.Parallel()
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		f := newFixture(t, db)
		const n = 100
		ids := make([]string, n)
		replays := make([]bool, n)
		errs := make([]error, n)
		var wg sync.WaitGroup
		for i := range n {
			wg.Go(func() {
				o, replay, err := f.svc.Create(f.ctx, mchA, request("race_0001"))
				ids[i], replays[i], errs[i] = o.ID, replay, err
			})
		}
		wg.Wait()
		fresh := 0
		for i := range n {
			require.NoError(t, errs[i])
			require.Equal(t, ids[0], ids[i], "every identical create returns the one order")
			if !replays[i] {
				fresh++
			}
		}
		require.Equal(t, 1, fresh, "exactly one create is not a replay")

		const m = 30
		var won, conflicts int
		var mu sync.Mutex
		for i := range m {
			wg.Go(func() {
				r := request("race_0002")
				r.Description = fmt.Sprint("body ", i)
				_, replay, err := f.svc.Create(f.ctx, mchA, r)
				mu.Lock()
				defer mu.Unlock()
				switch {
				case err == nil && !replay:
					won++
				case paygate.HasCode(err, paygate.CodeOutTradeNoUsed):
					conflicts++
				default:
					t.Errorf("unexpected: replay=%v err=%v", replay, err)
				}
			})
		}
		wg.Wait()
		require.Equal(t, 1, won, "exactly one body wins")
		require.Equal(t, m-1, conflicts, "the others conflict")
		require.Equal(t, 2, f.count(t, `SELECT COUNT(*) FROM payment_orders`))
	})
}
