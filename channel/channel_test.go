package channel_test

import (
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"paygate/channel"
)

func TestFailCode(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct{ in, want string }{
		{"", "FAILED"},
		{"ACCOUNT_CLOSED", "ACCOUNT_CLOSED"},
		{"has space", "FAILED"},
		{"line\nbreak", "FAILED"},
		{"余额不足", "FAILED"},
		{strings.Repeat("X", 80), strings.Repeat("X", 64)},
	} {
		require.Equal(t, tc.want, channel.FailCode(tc.in), "%q", tc.in)
	}
}
