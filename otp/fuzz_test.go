package otp_test

import (
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"paygate"
	"paygate/otp"
)

func TestParseCode(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct{ in, want string }{
		{"123456", "123456"},
		{"  000000\t\n", "000000"},
		{"\u3000123456", "123456"}, // ideographic space is white space
		{"12345", ""},
		{"1234567", ""},
		{"123 456", ""},
		{"12345a", ""},
		{"１２３４５６", ""}, // full-width digits are not ASCII
		{"+12345", ""},
		{"", ""},
	} {
		got, err := otp.ParseCode(tc.in)
		if tc.want == "" {
			require.Equal(t, paygate.CodeInvalidArgument, paygate.CodeOf(err), "%q", tc.in)
			require.ErrorIs(t, err, otp.ErrMalformed)
			continue
		}
		require.NoError(t, err, "%q", tc.in)
		require.Equal(t, tc.want, got)
	}
}

func FuzzParseCode(f *testing.F) {
	for _, s := range []string{"123456", " 123456 ", "12345", "1234567", "abcdef", "１２３４５６", "\x00123456", "12\n3456"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, in string) {
		got, err := otp.ParseCode(in)
		if err != nil {
			if paygate.CodeOf(err) != paygate.CodeInvalidArgument {
				t.Fatalf("ParseCode(%q): code %s", in, paygate.CodeOf(err))
			}
			return
		}
		if len(got) != otp.CodeLen {
			t.Fatalf("ParseCode(%q) = %q: not %d bytes", in, got, otp.CodeLen)
		}
		for i := 0; i < len(got); i++ {
			if got[i] < '0' || got[i] > '9' {
				t.Fatalf("ParseCode(%q) = %q: not ASCII digits", in, got)
			}
		}
		if strings.TrimSpace(in) != got {
			t.Fatalf("ParseCode(%q) = %q: not the trimmed input", in, got)
		}
	})
}
