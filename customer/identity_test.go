package customer_test

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"paygate"
	"paygate/customer"
)

func TestIDCheckDigit(t *testing.T) {
	t.Parallel()
	cases := []struct {
		first17 string
		want    byte
		ok      bool
	}{
		{"11010519491231002", 'X', true}, // GB 11643's example
		{"11010119900307123", '3', true},
		{"31010419851120456", '7', true},
		{"44030519950615789", '1', true},
		{"1101051949123100", 0, false},
		{"1101051949123100A", 0, false},
	}
	for _, c := range cases {
		got, ok := customer.IDCheckDigit(c.first17)
		require.Equal(t, c.ok, ok, c.first17)
		require.Equal(t, c.want, got, c.first17)
	}
}

func TestParseIDNumber(t *testing.T) {
	t.Parallel()
	now := t0
	cases := []struct {
		name, in string
		ok       bool
	}{
		{"valid", "110101199003071233", true},
		{"valid X", "11010519491231002X", true},
		{"lower-case x", "11010519491231002x", true},
		{"surrounding space", " 110101199003071233 ", true},
		{"wrong check digit", "110101199003071234", false},
		{"check digit X where 3 is due", "11010119900307123X", false},
		{"impossible date", "110101199002301237", false},
		{"born in the future", "110101203001011234", false},
		{"born before 1900", "110101189912311234", false},
		{"unknown province", "990101199003071233", false},
		{"17 characters", "11010119900307123", false},
		{"letters", "11010119900307A233", false},
		{"empty", "", false},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			in := c.in
			if c.name == "impossible date" || c.name == "born in the future" || c.name == "born before 1900" {
				d, _ := customer.IDCheckDigit(in[:17]) // a right check digit, so only the date is wrong
				in = in[:17] + string(d)
			}
			n, err := customer.ParseIDNumber(in, now)
			if !c.ok {
				require.Equal(t, paygate.CodeInvalidArgument, paygate.CodeOf(err))
				if len(in) >= 10 {
					require.NotContains(t, err.Error(), in[:10], "errors never echo the number")
				}
				return
			}
			require.NoError(t, err)
			require.Equal(t, strings.ToUpper(strings.TrimSpace(in)), n.Value())
		})
	}
	n, err := customer.ParseIDNumber("110101199003071233", now)
	require.NoError(t, err)
	require.Equal(t, time.Date(1990, 3, 7, 0, 0, 0, 0, time.UTC), n.Birth())
	for _, s := range []string{n.String(), n.Masked(), fmt.Sprint(n), fmt.Sprintf("%v %+v %#v %s", n, n, n, n)} {
		require.NotContains(t, s, "19900307", "masked forms hide the birth date")
	}
	require.Equal(t, "110***********1233", n.Masked())
	b, err := json.Marshal(struct{ ID customer.IDNumber }{n})
	require.NoError(t, err)
	require.JSONEq(t, `{"ID":"110***********1233"}`, string(b))
}

func FuzzParseIDNumber(f *testing.F) {
	for _, s := range []string{"110101199003071233", "11010519491231002X", "11010519491231002x", "", "99", "110101199002301237"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		n, err := customer.ParseIDNumber(s, t0)
		if err != nil {
			require.Equal(t, paygate.CodeInvalidArgument, paygate.CodeOf(err))
			require.True(t, n.IsZero())
			return
		}
		v := n.Value()
		require.Len(t, v, 18)
		d, ok := customer.IDCheckDigit(v[:17])
		require.True(t, ok)
		require.Equal(t, d, v[17])
		require.False(t, n.Birth().After(t0))
		require.Equal(t, v[:3]+strings.Repeat("*", 11)+v[14:], n.String())
	})
}

func TestParsePhone(t *testing.T) {
	t.Parallel()
	cases := []struct{ in, want string }{
		{"13912345678", "13912345678"},
		{"+86 139-1234-5678", "13912345678"},
		{"8613912345678", "13912345678"},
		{"12912345678", ""},
		{"1391234567", ""},
		{"1391234567x", ""},
		{"", ""},
	}
	for _, c := range cases {
		got, err := customer.ParsePhone(c.in)
		if c.want == "" {
			require.Equal(t, paygate.CodeInvalidArgument, paygate.CodeOf(err), c.in)
			continue
		}
		require.NoError(t, err, c.in)
		require.Equal(t, c.want, got)
	}
	require.Equal(t, "139****5678", customer.MaskPhone("13912345678"))
}

func TestParseName(t *testing.T) {
	t.Parallel()
	for in, want := range map[string]string{"张三": "张三", "  Zhang   San ": "Zhang San", "阿依古丽·买买提": "阿依古丽·买买提"} {
		got, err := customer.ParseName(in)
		require.NoError(t, err, in)
		require.Equal(t, want, got)
	}
	for _, in := range []string{"", "   ", "Robert'); DROP", "a1", strings.Repeat("名", 65)} {
		_, err := customer.ParseName(in)
		require.Equal(t, paygate.CodeInvalidArgument, paygate.CodeOf(err), in)
	}
	require.Equal(t, "*三", customer.MaskName("张三"))
}
