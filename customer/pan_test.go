package customer_test

import (
	"encoding/json"
	"fmt"
	"regexp"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"paygate"
	"paygate/customer"
)

func TestLuhn(t *testing.T) {
	t.Parallel()
	cases := []struct {
		in string
		ok bool
	}{
		{"79927398713", true},
		{"79927398710", false},
		{"4111111111111111", true},
		{"4111111111111112", false},
		{"6288880000000013", true},
		{"6288880000000014", false},
		{"6299990000000066", true},
		{"0", true},
		{"", false},
		{"4111 1111", false},
	}
	for _, c := range cases {
		require.Equal(t, c.ok, customer.Luhn(c.in), c.in)
	}
	d, ok := customer.LuhnDigit("7992739871")
	require.True(t, ok)
	require.Equal(t, byte('3'), d)
}

func TestParsePAN(t *testing.T) {
	t.Parallel()
	cases := []struct {
		in, want string
	}{
		{"6288880000000013", "6288880000000013"},
		{"6288 8800 0000 0013", "6288880000000013"},
		{"6288-8800-0000-0013", "6288880000000013"},
		{"4111111111111111", "4111111111111111"},
		{"6288880000000014", ""},     // Luhn fails
		{"79927398713", ""},          // too short
		{"62888800000000130000", ""}, // too long
		{"628888000000001a", ""},
		{"", ""},
	}
	for _, c := range cases {
		p, err := customer.ParsePAN(c.in)
		if c.want == "" {
			require.Equal(t, paygate.CodeInvalidArgument, paygate.CodeOf(err), c.in)
			require.Equal(t, "card_number", err.(*paygate.Error).Field)
			if len(c.in) > 8 {
				require.NotContains(t, err.Error(), c.in[:8])
			}
			continue
		}
		require.NoError(t, err, c.in)
		require.Equal(t, c.want, p.Digits())
	}
}

// revealed returns the longest run of digits of s that is not within the
// first six or last four digit positions of a masked number.
var digitsRe = regexp.MustCompile(`[0-9*]{13,19}`)

// requireMasked asserts every card-number-like run in s shows at most its
// first six and last four digits.
func requireMasked(t *testing.T, s, digits string) {
	t.Helper()
	require.NotContains(t, s, digits)
	require.NotContains(t, s, digits[6:len(digits)-4], "the middle digits never show")
	for _, m := range digitsRe.FindAllString(s, -1) {
		middle := m[6 : len(m)-4]
		require.Equal(t, strings.Repeat("*", len(middle)), middle, "%q shows more than 6+4", m)
	}
}

func TestMaskedNeverRevealsMore(t *testing.T) {
	t.Parallel()
	for _, n := range []string{"6288880000000013", "4111111111111111", "6299990000000066", "3530111333300000", "6011000990139424"} {
		p, err := customer.ParsePAN(n)
		require.NoError(t, err)
		m := p.Masked()
		require.Equal(t, n[:6]+strings.Repeat("*", len(n)-10)+n[len(n)-4:], m.String())
		card := customer.Card{ID: "card_1", Number: m}
		b, err := json.Marshal(card)
		require.NoError(t, err)
		pj, err := json.Marshal(p)
		require.NoError(t, err)
		for _, s := range []string{m.String(), p.String(), fmt.Sprint(p), fmt.Sprintf("%v %+v %#v %s", p, p, p, p),
			fmt.Sprintf("%v %+v %#v", m, m, m), fmt.Sprintf("%v %+v %#v", card, card, card), string(b), string(pj)} {
			requireMasked(t, s, n)
		}
		var back customer.Masked
		require.NoError(t, json.Unmarshal([]byte(`"`+n+`"`), &back), "even a full number read back keeps only 6+4")
		require.Equal(t, m.String(), back.String())
		require.Equal(t, n[:6], m.First6())
		require.Equal(t, n[len(n)-4:], m.Last4())
	}
	require.Equal(t, "", customer.Masked{}.String())
	require.Equal(t, "******"+"******"+"****", customer.NewMasked("12", "x", 16).String(), "malformed parts show as stars")
}

func FuzzParsePAN(f *testing.F) {
	for _, s := range []string{"6288880000000013", "6288 8800 0000 0013", "79927398713", "", "0000000000000", "12345678901234567890"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		p, err := customer.ParsePAN(s)
		if err != nil {
			require.Equal(t, paygate.CodeInvalidArgument, paygate.CodeOf(err))
			require.True(t, p.IsZero())
			return
		}
		d := p.Digits()
		require.True(t, customer.Luhn(d))
		require.GreaterOrEqual(t, len(d), 13)
		require.LessOrEqual(t, len(d), 19)
		m := p.Masked().String()
		require.Len(t, m, len(d))
		require.Equal(t, d[:6]+strings.Repeat("*", len(d)-10)+d[len(d)-4:], m)
	})
}
