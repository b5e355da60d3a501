package client_test

import (
	"bytes"
	"context"
	"crypto/rsa"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"paygate/client"
	"paygate/signing"
)

var merchantKey, platformKey, rogueKey = mustKey(), mustKey(), mustKey()

func mustKey() *rsa.PrivateKey {
	k, err := signing.GenerateKey()
	if err != nil {
		panic(err)
	}
	return k
}

// fakePaygate verifies the request signature and answers with a signed body.
func fakePaygate(t *testing.T, signer *rsa.PrivateKey, status int, body string) *httptest.Server {
	return httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		a, err := signing.ParseAuthorization(r.Header.Get("Authorization"))
		require.NoError(t, err)
		require.NoError(t, signing.Verify(&merchantKey.PublicKey, signing.RequestMessage(r.Method, r.URL.RequestURI(), a.Timestamp, a.Nonce, b), a.Signature))
		signResponse(t, w.Header(), signer, []byte(body))
		w.WriteHeader(status)
		w.Write([]byte(body))
	}))
}

func signResponse(t *testing.T, h http.Header, key *rsa.PrivateKey, body []byte) {
	ts, nonce := time.Now().Unix(), signing.NewNonce()
	sig, err := signing.Sign(key, signing.ResponseMessage(ts, nonce, body))
	require.NoError(t, err)
	h.Set(signing.HeaderTimestamp, strconv.FormatInt(ts, 10))
	h.Set(signing.HeaderNonce, nonce)
	h.Set(signing.HeaderSignature, sig)
	h.Set(signing.HeaderSerial, signing.SerialNo(&platformKey.PublicKey))
}

func newClient(t *testing.T, url string) *client.Client {
	c, err := client.New(client.Config{
		BaseURL: url, MchID: "1900000001", SerialNo: signing.SerialNo(&merchantKey.PublicKey), PrivateKey: merchantKey,
		PlatformKeys: map[string]*rsa.PublicKey{signing.SerialNo(&platformKey.PublicKey): &platformKey.PublicKey},
		APIv3Key:     "0123456789abcdef0123456789abcdef",
	})
	require.NoError(t, err)
	return c
}

func TestDo(t *testing.T) {
	t.Parallel()
	srv := fakePaygate(t, platformKey, 201, `{"id":"ord_1"}`)
	defer srv.Close()
	var out struct{ ID string }
	status, err := newClient(t, srv.URL).Do(context.Background(), "POST", "/v1/orders?x=1", map[string]any{"a": 1}, &out)
	require.NoError(t, err)
	require.Equal(t, 201, status)
	require.Equal(t, "ord_1", out.ID)
}

func TestDoAPIError(t *testing.T) {
	t.Parallel()
	srv := fakePaygate(t, platformKey, 409, `{"code":"ID_CONFLICT","message":"out_trade_no used"}`)
	defer srv.Close()
	_, err := newClient(t, srv.URL).Do(context.Background(), "POST", "/v1/orders", nil, nil)
	var ae *client.APIError
	require.ErrorAs(t, err, &ae)
	require.Equal(t, 409, ae.Status)
	require.Equal(t, "ID_CONFLICT", ae.Code)
}

func TestDoRejectsForgedResponse(t *testing.T) {
	t.Parallel()
	srv := fakePaygate(t, rogueKey, 200, `{"id":"ord_1"}`)
	defer srv.Close()
	var out map[string]any
	_, err := newClient(t, srv.URL).Do(context.Background(), "GET", "/v1/orders/ord_1", nil, &out)
	require.ErrorIs(t, err, client.ErrBadSignature)
	require.Nil(t, out, "a forged body is never decoded")
}

func TestParseNotification(t *testing.T) {
	t.Parallel()
	c := newClient(t, "http://unused")
	res, err := signing.Encrypt("0123456789abcdef0123456789abcdef", "transaction", "transaction", []byte(`{"id":"ord_9","status":"SUCCESS"}`))
	require.NoError(t, err)
	body, _ := json.Marshal(client.Notification{ID: "evt_1", EventType: "TRANSACTION.SUCCESS", ResourceType: "encrypt-resource", Resource: res})
	req := httptest.NewRequest("POST", "/notify", bytes.NewReader(body))
	signResponse(t, req.Header, platformKey, body)
	var order struct{ ID, Status string }
	n, err := c.ParseNotification(req, &order)
	require.NoError(t, err)
	require.Equal(t, "evt_1", n.ID)
	require.Equal(t, "SUCCESS", order.Status)

	tampered := bytes.Replace(body, []byte("evt_1"), []byte("evt_2"), 1)
	req = httptest.NewRequest("POST", "/notify", bytes.NewReader(tampered))
	signResponse(t, req.Header, platformKey, body) // signature over the original
	_, err = c.ParseNotification(req, &order)
	require.ErrorIs(t, err, client.ErrBadSignature)
}
