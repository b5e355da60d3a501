package payment_test

import (
	"testing"

	"github.com/stretchr/testify/require"

	"paygate"
	"paygate/store"
	"paygate/store/storetest"
)

// TestCreateNotifyHosts: a merchant that lists notify hosts gets orders only
// with a notify_url on one of them; a refused create changes nothing.
func TestCreateNotifyHosts(t *testing.T) {
	t.Parallel()
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		f := newFixture(t, db)
		const mch = "1900000009"
		f.mchs.add(paygate.Merchant{ID: mch, Name: "Hosts", Status: paygate.MerchantSandbox, SettlementCurrency: "CNY",
			NotifyHosts: []string{"merchant.example.com", "*.hooks.example.net"}})
		cases := []struct {
			url string
			ok  bool
		}{
			{"https://merchant.example.com/notify", true},
			{"https://a.hooks.example.net/n", true},
			{"https://evil.example.org/notify", false},
			{"https://merchant.example.com.evil.org/notify", false},
			{"https://hooks.example.net/n", false},
		}
		for i, c := range cases {
			req := request("HOSTS-" + string(rune('A'+i)) + "0001")
			req.NotifyURL = c.url
			_, _, err := f.svc.Create(f.ctx, mch, req)
			if c.ok {
				require.NoError(t, err, c.url)
				continue
			}
			require.Equal(t, paygate.CodeInvalidArgument, paygate.CodeOf(err), c.url)
			var pe *paygate.Error
			require.ErrorAs(t, err, &pe)
			require.Equal(t, "notify_url", pe.Field)
			_, err = f.svc.GetByOutTradeNo(f.ctx, mch, req.OutTradeNo)
			require.Equal(t, paygate.CodeNotFound, paygate.CodeOf(err), "nothing was created")
		}
	})
}
