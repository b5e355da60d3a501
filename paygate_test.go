package paygate_test

import (
	"errors"
	"fmt"
	"math"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"paygate"
)

func TestErrorCodes(t *testing.T) {
	t.Parallel()
	base := paygate.EField(paygate.CodeInsufficientFunds, "amount", "not enough")
	wrapped := fmt.Errorf("paying order: %w", base)
	require.Equal(t, paygate.CodeInsufficientFunds, paygate.CodeOf(wrapped))
	require.True(t, errors.Is(wrapped, paygate.E(paygate.CodeInsufficientFunds, "")))
	require.False(t, errors.Is(wrapped, paygate.E(paygate.CodeNotFound, "")))
	require.Equal(t, paygate.CodeInternal, paygate.CodeOf(errors.New("disk on fire")))
	require.Equal(t, paygate.Code(""), paygate.CodeOf(nil))

	in := paygate.Internal(errors.New("pq: password authentication failed for user bob"))
	require.Equal(t, paygate.CodeInternal, in.Code)
	require.Equal(t, "internal error", in.Message, "the cause never becomes the message")
	require.Same(t, base, paygate.Internal(wrapped), "Internal keeps an existing paygate error")
}

func TestCheckAmount(t *testing.T) {
	t.Parallel()
	cases := []struct {
		amount, max int64
		code        paygate.Code
	}{
		{1, 0, ""},
		{100, 100, ""},
		{0, 0, paygate.CodeAmountNotPositive},
		{-1, 0, paygate.CodeAmountNotPositive},
		{math.MinInt64, 0, paygate.CodeAmountNotPositive},
		{101, 100, paygate.CodeLimitExceeded},
		{math.MaxInt64, 0, ""},
	}
	for _, c := range cases {
		require.Equal(t, c.code, paygate.CodeOf(paygate.CheckAmount("amount", c.amount, c.max)), "%d/%d", c.amount, c.max)
	}
}

func TestAddInt64(t *testing.T) {
	t.Parallel()
	s, err := paygate.AddInt64(math.MaxInt64-1, 1)
	require.NoError(t, err)
	require.Equal(t, int64(math.MaxInt64), s)
	_, err = paygate.AddInt64(math.MaxInt64, 1)
	require.Equal(t, paygate.CodeOverflow, paygate.CodeOf(err))
	_, err = paygate.AddInt64(math.MinInt64, -1)
	require.Equal(t, paygate.CodeOverflow, paygate.CodeOf(err))
	s, err = paygate.AddInt64(math.MinInt64, math.MaxInt64)
	require.NoError(t, err)
	require.Equal(t, int64(-1), s)
}

func TestMoneyFormat(t *testing.T) {
	t.Parallel()
	cases := []struct {
		m    paygate.Money
		want string
	}{
		{paygate.Money{Amount: 12345, Currency: "CNY"}, "123.45 CNY"},
		{paygate.Money{Amount: 5, Currency: "CNY"}, "0.05 CNY"},
		{paygate.Money{Amount: -5, Currency: "USD"}, "-0.05 USD"},
		{paygate.Money{Amount: 500, Currency: "JPY"}, "500 JPY"},
		{paygate.Money{Amount: 1234, Currency: "KWD"}, "1.234 KWD"},
		{paygate.Money{Amount: math.MinInt64, Currency: "CNY"}, "-92233720368547758.08 CNY"},
	}
	for _, c := range cases {
		require.Equal(t, c.want, c.m.String())
	}
}

func TestParseCurrency(t *testing.T) {
	t.Parallel()
	c, err := paygate.ParseCurrency("CNY")
	require.NoError(t, err)
	require.Equal(t, 2, c.Exponent())
	for _, bad := range []string{"", "cny", "XXX", "CNYY", "人民币"} {
		_, err := paygate.ParseCurrency(bad)
		require.Equal(t, paygate.CodeUnknownCurrency, paygate.CodeOf(err), bad)
	}
}

func TestNewID(t *testing.T) {
	t.Parallel()
	a, b := paygate.NewID(paygate.PrefixOrder), paygate.NewID(paygate.PrefixOrder)
	require.True(t, strings.HasPrefix(a, "ord_"))
	require.Len(t, a, 4+32)
	require.NotEqual(t, a, b)
	require.Less(t, a[:4+12], paygate.NewID(paygate.PrefixOrder)[:4+12]+"~", "time-ordered prefix")
}

func TestAccountingDate(t *testing.T) {
	t.Parallel()
	sh := func(y int, mo time.Month, d, h, m int) time.Time {
		loc, _ := time.LoadLocation("Asia/Shanghai")
		return time.Date(y, mo, d, h, m, 0, 0, loc)
	}
	cases := []struct {
		zone, cutoff string
		at           time.Time
		want         paygate.Date
	}{
		{"Asia/Shanghai", "00:00", sh(2026, 11, 22, 0, 0), "2026-11-22"},
		{"Asia/Shanghai", "00:00", sh(2026, 11, 21, 23, 59), "2026-11-21"},
		{"Asia/Shanghai", "00:00", time.Date(2026, 11, 21, 16, 0, 0, 0, time.UTC), "2026-11-22"},
		{"Asia/Shanghai", "23:00", sh(2026, 11, 21, 22, 59), "2026-11-21"},
		{"Asia/Shanghai", "23:00", sh(2026, 11, 21, 23, 0), "2026-11-22"},
		{"Asia/Shanghai", "23:00", sh(2026, 12, 31, 23, 30), "2027-01-01"},
		{"Asia/Shanghai", "02:00", sh(2026, 11, 22, 1, 59), "2026-11-21"},
		{"Asia/Shanghai", "02:00", sh(2026, 11, 22, 2, 0), "2026-11-22"},
		{"UTC", "00:00", sh(2026, 11, 22, 7, 59), "2026-11-21"},
	}
	for _, c := range cases {
		cal, err := paygate.NewCalendar(c.zone, c.cutoff)
		require.NoError(t, err)
		require.Equal(t, c.want, cal.AccountingDate(c.at), "%s %s at %s", c.zone, c.cutoff, c.at)
	}
	require.Equal(t, paygate.Date("2026-11-22"), paygate.DefaultCalendar().AccountingDate(sh(2026, 11, 22, 0, 0)))
	for _, bad := range [][2]string{{"Mars/Base", "00:00"}, {"UTC", "24:00"}, {"UTC", "7:00"}, {"UTC", "07:60"}, {"UTC", "x"}} {
		_, err := paygate.NewCalendar(bad[0], bad[1])
		require.Equal(t, paygate.CodeInvalidArgument, paygate.CodeOf(err), bad)
	}
}

func FuzzNewCalendar(f *testing.F) {
	f.Add("Asia/Shanghai", "23:30")
	f.Add("UTC", "00:00")
	f.Fuzz(func(t *testing.T, zone, cutoff string) {
		cal, err := paygate.NewCalendar(zone, cutoff)
		if err != nil {
			require.Equal(t, paygate.CodeInvalidArgument, paygate.CodeOf(err))
			return
		}
		require.GreaterOrEqual(t, cal.Cutoff, time.Duration(0))
		require.Less(t, cal.Cutoff, 24*time.Hour)
		_, err = paygate.ParseDate(string(cal.AccountingDate(time.Unix(1_800_000_000, 0))))
		require.NoError(t, err)
	})
}

func TestManualClock(t *testing.T) {
	t.Parallel()
	c := paygate.NewManualClock(time.Unix(100, 0))
	c.Advance(time.Minute)
	require.Equal(t, time.Unix(160, 0), c.Now())
	c.Set(time.Unix(5, 0))
	require.Equal(t, time.Unix(5, 0), c.Now())
}

func TestMerchantFee(t *testing.T) {
	t.Parallel()
	cases := []struct {
		bps, amount, fee int64
	}{
		{60, 10_000, 60},
		{60, 1, 0},
		{60, 84, 1}, // 0.504 rounds up
		{60, 83, 0}, // 0.498 rounds down
		{0, 10_000, 0},
		{10_000, 77, 77},
		{60, math.MaxInt64, math.MaxInt64/10_000*60 + (math.MaxInt64%10_000*60+5_000)/10_000},
	}
	for _, c := range cases {
		m := paygate.Merchant{FeeRateBps: c.bps}
		require.Equal(t, c.fee, m.Fee(c.amount), "%d bps of %d", c.bps, c.amount)
	}
	require.True(t, paygate.MerchantLive.CanTransact())
	require.False(t, paygate.MerchantSuspended.CanTransact())
}

func TestNotifyHostAllowed(t *testing.T) {
	t.Parallel()
	open := paygate.Merchant{}
	require.True(t, open.NotifyHostAllowed("anything.example"))
	m := paygate.Merchant{NotifyHosts: []string{"shop.example.com", "*.hooks.example.net"}}
	cases := map[string]bool{
		"shop.example.com": true, "SHOP.example.com.": true, "evil.shop.example.com": false, "example.com": false,
		"a.hooks.example.net": true, "a.b.hooks.example.net": true, "hooks.example.net": false, "xhooks.example.net": false,
		"shop.example.com.evil.org": false,
	}
	for host, want := range cases {
		require.Equal(t, want, m.NotifyHostAllowed(host), host)
	}
}
