package sealing_test

import (
	"bytes"
	"testing"

	"github.com/stretchr/testify/require"

	"paygate"
	"paygate/sealing"
)

func TestKeyringRotation(t *testing.T) {
	t.Parallel()
	oldKey, newKey := make([]byte, 32), make([]byte, 32)
	newKey[0] = 1
	old, err := sealing.NewKeyring(oldKey)
	require.NoError(t, err)
	s := old.Seal([]byte("6288880000000013"), []byte("card:1"))
	require.Equal(t, sealing.MasterKeyID(oldKey), s.KeyID)
	require.NotContains(t, s.Ciphertext, "6288880000000013")

	both, err := sealing.NewKeyring(newKey, oldKey)
	require.NoError(t, err)
	require.Equal(t, sealing.MasterKeyID(newKey), both.KeyID())
	pt, err := both.Open(s, []byte("card:1"))
	require.NoError(t, err, "the old key still opens during a rotation")
	require.Equal(t, "6288880000000013", string(pt))
	_, err = both.Open(s, []byte("card:2"))
	require.Equal(t, paygate.CodeInternal, paygate.CodeOf(err), "bound to its row")
	onlyNew, err := sealing.NewKeyring(newKey)
	require.NoError(t, err)
	_, err = onlyNew.Open(s, []byte("card:1"))
	require.Equal(t, paygate.CodeInternal, paygate.CodeOf(err))
	require.NotContains(t, err.Error(), "6288880000000013")

	_, err = sealing.NewKeyring(make([]byte, 16))
	require.Equal(t, paygate.CodeInvalidArgument, paygate.CodeOf(err))
	_, err = sealing.ParseKeyring("not base64!")
	require.Equal(t, paygate.CodeInvalidArgument, paygate.CodeOf(err))
	kr, err := sealing.ParseKeyring(sealing.NewMasterKey() + "," + sealing.NewMasterKey())
	require.NoError(t, err)
	require.Len(t, kr.KeyID(), 16)
}

func TestBlindIndex(t *testing.T) {
	t.Parallel()
	_, err := sealing.NewBlindIndex([]byte("short"))
	require.Equal(t, paygate.CodeInvalidArgument, paygate.CodeOf(err))
	a, err := sealing.NewBlindIndex([]byte("0123456789abcdef0123456789abcdef"))
	require.NoError(t, err)
	b, err := sealing.NewBlindIndex([]byte("0123456789abcdef0123456789abcdeX"))
	require.NoError(t, err)
	x := a.Token("pan", "6288880000000013")
	require.Len(t, x, 64)
	require.Equal(t, x, a.Token("pan", "6288880000000013"), "deterministic")
	require.NotEqual(t, x, a.Token("id", "6288880000000013"), "domains are separate")
	require.NotEqual(t, x, b.Token("pan", "6288880000000013"), "keys are separate")
	require.NotEqual(t, a.Token("holder", "ab", "c"), a.Token("holder", "a", "bc"), "parts are delimited")
	require.True(t, sealing.Equal(x, a.Token("pan", "6288880000000013")))
	require.False(t, sealing.Equal(x, a.Token("pan", "6288880000000021")))
}

func TestDeriveKeys(t *testing.T) {
	t.Parallel()
	a, b := bytes.Repeat([]byte{1}, 32), bytes.Repeat([]byte{2}, 32)
	k1, err := sealing.NewKeyring(a, b)
	require.NoError(t, err)
	k2, err := sealing.NewKeyring(a)
	require.NoError(t, err)
	d1, d2 := k1.DeriveKeys("otp"), k2.DeriveKeys("otp")
	require.Len(t, d1, 2)
	require.Len(t, d1[0], 32)
	require.Equal(t, d1[0], d2[0], "same master key, same purpose: same key in every process")
	require.NotEqual(t, d1[0], d1[1], "each master key derives its own")
	require.NotEqual(t, d1[0], k1.DeriveKeys("sms")[0], "purposes are separated")
	require.NotEqual(t, a, d1[0], "never the master key itself")
}
