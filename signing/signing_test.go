package signing_test

import (
	"bytes"
	"context"
	"crypto/rsa"
	"io"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"github.com/wechatpay-apiv3/wechatpay-go/core/auth/credentials"
	"github.com/wechatpay-apiv3/wechatpay-go/core/auth/signers"
	"github.com/wechatpay-apiv3/wechatpay-go/core/auth/validators"
	"github.com/wechatpay-apiv3/wechatpay-go/core/auth/verifiers"
	"github.com/wechatpay-apiv3/wechatpay-go/utils"

	"paygate"
	"paygate/signing"
)

var testKey, otherKey = mustKey(), mustKey()

func mustKey() *rsa.PrivateKey {
	k, err := signing.GenerateKey()
	if err != nil {
		panic(err)
	}
	return k
}

func TestParseAuthorization(t *testing.T) {
	t.Parallel()
	good := `WECHATPAY2-SHA256-RSA2048 mchid="1900000001",nonce_str="abc",timestamp="1700000000",serial_no="SER",signature="c2ln"`
	a, err := signing.ParseAuthorization(good)
	require.NoError(t, err)
	require.Equal(t, signing.Authorization{MchID: "1900000001", Nonce: "abc", Timestamp: 1700000000, SerialNo: "SER", Signature: "c2ln"}, a)
	require.Equal(t, good, a.String())
	reordered := `WECHATPAY2-SHA256-RSA2048 signature="c2ln", serial_no="SER",timestamp="1700000000",nonce_str="abc",mchid="1900000001"`
	b, err := signing.ParseAuthorization(reordered)
	require.NoError(t, err)
	require.Equal(t, a, b)

	bad := []string{
		"",
		"Bearer x",
		`WECHATPAY2-SHA256-RSA2048`,
		`WECHATPAY2-SHA256-RSA2048 mchid="1"`,
		`WECHATPAY2-SHA256-RSA2048 mchid=1,nonce_str="abc",timestamp="1700000000",serial_no="SER",signature="c2ln"`,
		`WECHATPAY2-SHA256-RSA2048 mchid="1",mchid="2",nonce_str="abc",timestamp="1700000000",serial_no="SER",signature="c2ln"`,
		`WECHATPAY2-SHA256-RSA2048 mchid="1",nonce_str="abc",timestamp="soon",serial_no="SER",signature="c2ln"`,
		`WECHATPAY2-SHA256-RSA2048 mchid="1",nonce_str="abc",timestamp="-5",serial_no="SER",signature="c2ln"`,
		`WECHATPAY2-SHA256-RSA2048 mchid="1",nonce_str="abc",timestamp="1700000000",serial_no="SER",signature="c2ln",`,
		`WECHATPAY2-SHA256-RSA2048 mchid="1",nonce_str="abc",timestamp="1700000000",serial_no="SER",signature="c2ln" x`,
		`WECHATPAY2-SHA256-RSA2048 mchid="1",nonce_str="abc",timestamp="1700000000",serial_no="SER",signature="WECHATPAY/SIGNTEST/abc"`,
		`WECHATPAY2-SHA256-RSA2048 mchid="1",nonce_str="abc",timestamp="1700000000",serial_no="SER",signature="c2ln",extra="1"`,
		`WECHATPAY2-SHA256-RSA2048 mchid="",nonce_str="abc",timestamp="1700000000",serial_no="SER",signature="c2ln"`,
		`WECHATPAY2-SHA256-RSA2048 mchid="1",nonce_str="abc",timestamp="1700000000",serial_no="SER",signature="c2ln`,
		`WECHATPAY2-SHA256-RSA2048 mchid="1",nonce_str="abc",timestamp="1700000000",serial_no="SER",signature="` + strings.Repeat("A", 3000) + `"`,
	}
	for _, h := range bad {
		_, err := signing.ParseAuthorization(h)
		require.Equal(t, paygate.CodeUnauthenticated, paygate.CodeOf(err), h)
	}
}

func FuzzParseAuthorization(f *testing.F) {
	f.Add(`WECHATPAY2-SHA256-RSA2048 mchid="1900000001",nonce_str="abc",timestamp="1700000000",serial_no="SER",signature="c2ln"`)
	f.Add(`WECHATPAY2-SHA256-RSA2048 mchid="1",,`)
	f.Add(`WECHATPAY2-SHA256-RSA2048 a="`)
	f.Fuzz(func(t *testing.T, h string) {
		a, err := signing.ParseAuthorization(h)
		if err != nil {
			require.Equal(t, paygate.CodeUnauthenticated, paygate.CodeOf(err))
			require.Less(t, len(err.Error()), 200, "errors never echo long input")
			return
		}
		// A parsed header round-trips.
		again, err := signing.ParseAuthorization(a.String())
		require.NoError(t, err)
		require.Equal(t, a, again)
	})
}

func TestSignVerify(t *testing.T) {
	t.Parallel()
	msg := signing.RequestMessage("POST", "/v1/orders?x=1", 1700000000, "N", []byte(`{"a":1}`))
	require.Equal(t, "POST\n/v1/orders?x=1\n1700000000\nN\n{\"a\":1}\n", string(msg))
	sig, err := signing.Sign(testKey, msg)
	require.NoError(t, err)
	require.NoError(t, signing.Verify(&testKey.PublicKey, msg, sig))
	require.Equal(t, paygate.CodeUnauthenticated, paygate.CodeOf(signing.Verify(&otherKey.PublicKey, msg, sig)))
	tampered := append([]byte{}, msg...)
	tampered[3] ^= 1
	require.Equal(t, paygate.CodeUnauthenticated, paygate.CodeOf(signing.Verify(&testKey.PublicKey, tampered, sig)))
	require.Equal(t, paygate.CodeUnauthenticated, paygate.CodeOf(signing.Verify(&testKey.PublicKey, msg, "%%%")))
}

func TestCheckTimestamp(t *testing.T) {
	t.Parallel()
	now := time.Unix(1_800_000_000, 0)
	for _, c := range []struct {
		off int64
		ok  bool
	}{{0, true}, {299, true}, {-299, true}, {300, true}, {-300, true}, {301, false}, {-301, false}} {
		err := signing.CheckTimestamp(now.Unix()+c.off, now)
		require.Equal(t, c.ok, err == nil, "offset %d", c.off)
	}
}

func TestKeysPEM(t *testing.T) {
	t.Parallel()
	k, err := signing.ParsePrivateKeyPEM(signing.PrivateKeyPEM(testKey))
	require.NoError(t, err)
	require.True(t, k.Equal(testKey))
	p, err := signing.ParsePublicKeyPEM(signing.PublicKeyPEM(&testKey.PublicKey))
	require.NoError(t, err)
	require.True(t, p.Equal(&testKey.PublicKey))
	require.Len(t, signing.SerialNo(p), 40)
	require.Equal(t, signing.SerialNo(p), signing.SerialNo(&testKey.PublicKey))
	require.NotEqual(t, signing.SerialNo(p), signing.SerialNo(&otherKey.PublicKey))
	for _, bad := range []string{"", "not pem", "-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----\n"} {
		_, err := signing.ParsePublicKeyPEM([]byte(bad))
		require.Equal(t, paygate.CodeInvalidArgument, paygate.CodeOf(err))
		_, err = signing.ParsePrivateKeyPEM([]byte(bad))
		require.Equal(t, paygate.CodeInvalidArgument, paygate.CodeOf(err))
	}
}

func TestEncryptDecrypt(t *testing.T) {
	t.Parallel()
	key := signing.NewAPIv3Key()
	require.Len(t, key, 32)
	r, err := signing.Encrypt(key, "transaction", "transaction", []byte(`{"id":"ord_1"}`))
	require.NoError(t, err)
	pt, err := signing.Decrypt(key, r)
	require.NoError(t, err)
	require.Equal(t, `{"id":"ord_1"}`, string(pt))
	r2 := r
	r2.AssociatedData = "other"
	_, err = signing.Decrypt(key, r2)
	require.Equal(t, paygate.CodeUnauthenticated, paygate.CodeOf(err))
	_, err = signing.Decrypt(signing.NewAPIv3Key(), r)
	require.Equal(t, paygate.CodeUnauthenticated, paygate.CodeOf(err))
	_, err = signing.Encrypt("short", "", "", nil)
	require.Equal(t, paygate.CodeInvalidArgument, paygate.CodeOf(err))
}

// TestOfficialSDKInterop proves the official APIv3 Go SDK's signer builds a
// header paygate accepts, its validator accepts paygate's response
// signatures, and its decryptor opens paygate's notification resources.
func TestOfficialSDKInterop(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	cred := credentials.WechatPayCredentials{Signer: &signers.SHA256WithRSASigner{MchID: "1900000001", CertificateSerialNo: "MERCHANTSERIAL", PrivateKey: testKey}}
	body := `{"out_trade_no":"T1"}`
	h, err := cred.GenerateAuthorizationHeader(ctx, "POST", "/v1/orders", body)
	require.NoError(t, err)
	a, err := signing.ParseAuthorization(h)
	require.NoError(t, err)
	require.Equal(t, "1900000001", a.MchID)
	require.NoError(t, signing.CheckTimestamp(a.Timestamp, time.Now()))
	require.NoError(t, signing.Verify(&testKey.PublicKey, signing.RequestMessage("POST", "/v1/orders", a.Timestamp, a.Nonce, []byte(body)), a.Signature))

	// Response signed by paygate, validated by the SDK in public-key mode.
	serial := signing.SerialNo(&otherKey.PublicKey)
	ts, nonce, respBody := time.Now().Unix(), signing.NewNonce(), []byte(`{"id":"ord_1"}`)
	sig, err := signing.Sign(otherKey, signing.ResponseMessage(ts, nonce, respBody))
	require.NoError(t, err)
	hdr := http.Header{}
	hdr.Set(signing.HeaderTimestamp, strconv.FormatInt(ts, 10))
	hdr.Set(signing.HeaderNonce, nonce)
	hdr.Set(signing.HeaderSignature, sig)
	hdr.Set(signing.HeaderSerial, serial)
	v := validators.NewWechatPayResponseValidator(verifiers.NewSHA256WithRSAPubkeyVerifier(serial, otherKey.PublicKey))
	resp := func() *http.Response {
		return &http.Response{Header: hdr, Body: io.NopCloser(bytes.NewReader(respBody))}
	}
	require.NoError(t, v.Validate(ctx, resp()))
	flipped := []byte(sig)
	flipped[10] ^= 1
	hdr.Set(signing.HeaderSignature, string(flipped))
	require.Error(t, v.Validate(ctx, resp()))

	key := signing.NewAPIv3Key()
	r, err := signing.Encrypt(key, "transaction", "transaction", []byte(`{"status":"SUCCESS"}`))
	require.NoError(t, err)
	pt, err := utils.DecryptAES256GCM(key, r.AssociatedData, r.Nonce, r.Ciphertext)
	require.NoError(t, err)
	require.Equal(t, `{"status":"SUCCESS"}`, pt)
}
