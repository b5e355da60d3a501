package customer

import (
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

func TestHashSecret(t *testing.T) {
	t.Parallel()
	h := hashSecret("Correct-horse-9", DefaultHashParams)
	require.True(t, strings.HasPrefix(h, "$argon2id$v=19$m=65536,t=1,p=2$"), h)
	require.NotContains(t, h, "Correct-horse-9")
	require.True(t, checkSecret("Correct-horse-9", h))
	require.False(t, checkSecret("Correct-horse-8", h))
	require.NotEqual(t, h, hashSecret("Correct-horse-9", DefaultHashParams), "fresh salt each time")

	small := hashSecret("271828", HashParams{Time: 2, Memory: 64, Threads: 1})
	require.True(t, checkSecret("271828", small), "parameters travel with the hash")
	parts := strings.Split(small, "$")
	for name, bad := range map[string]string{
		"empty":         "",
		"argon2i":       strings.Replace(small, "argon2id", "argon2i", 1),
		"version":       strings.Replace(small, "v=19", "v=16", 1),
		"params":        strings.Join([]string{"", parts[1], parts[2], "m=64,t=0,p=1", parts[4], parts[5]}, "$"),
		"huge memory":   strings.Join([]string{"", parts[1], parts[2], "m=99999999,t=1,p=1", parts[4], parts[5]}, "$"),
		"bad salt":      strings.Join([]string{"", parts[1], parts[2], parts[3], "!!", parts[5]}, "$"),
		"no hash":       strings.Join([]string{"", parts[1], parts[2], parts[3], parts[4], ""}, "$"),
		"other hash":    strings.Join([]string{"", parts[1], parts[2], parts[3], parts[4], strings.Repeat("A", 43)}, "$"),
		"missing parts": "$argon2id$v=19$m=64,t=1,p=1",
	} {
		require.False(t, checkSecret("271828", bad), name)
	}
}
