package merchant_test

import (
	"context"
	"crypto/rsa"
	"log/slog"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"paygate"
	"paygate/merchant"
	"paygate/signing"
	"paygate/store"
	"paygate/store/storetest"
)

// RSA key generation costs tens of milliseconds (more under -race), so
// tests share a few pre-generated merchant keys: a key may belong to
// several merchants, so sharing keeps tests independent.
var keyA, keyB, keyC = mustKey(), mustKey(), mustKey()

func mustKey() *rsa.PrivateKey {
	k, err := signing.GenerateKey()
	if err != nil {
		panic(err)
	}
	return k
}

func pubPEM(k *rsa.PrivateKey) []byte { return signing.PublicKeyPEM(&k.PublicKey) }

var quiet = slog.New(slog.DiscardHandler)

var t0 = time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC)

// testKeyring is one fixed master key for the tests.
func testKeyring(t testing.TB) *merchant.Keyring {
	kr, err := merchant.ParseKeyring("AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=")
	require.NoError(t, err)
	return kr
}

func newService(t testing.TB, db *store.DB, clock paygate.Clock) *merchant.Service {
	t.Helper()
	svc, err := merchant.New(merchant.Config{Store: db.Merchants(), Clock: clock, Keyring: testKeyring(t), Logger: quiet})
	require.NoError(t, err)
	return svc
}

// create makes a sandbox merchant with keyA uploaded.
func create(t testing.TB, svc *merchant.Service, req merchant.CreateRequest) merchant.Created {
	t.Helper()
	if req.Name == "" {
		req.Name = "Test Shop"
	}
	if req.PublicKeyPEM == nil {
		req.PublicKeyPEM = pubPEM(keyA)
	}
	req.Sandbox = true
	c, err := svc.Create(context.Background(), req)
	require.NoError(t, err)
	return c
}

// sameDatabase runs fn on each dialect with two store.DB handles on one
// database, as two server processes would have.
func sameDatabase(t *testing.T, fn func(t *testing.T, a, b *store.DB)) {
	for _, d := range []store.Dialect{store.SQLite, store.Postgres} {
		t.Run(string(d), func(t *testing.T) {
			t.Parallel()
			u := storetest.URL(t, d)
			open := func() *store.DB {
				db, err := store.Open(context.Background(), u, store.Options{MaxOpenConns: 4})
				require.NoError(t, err)
				t.Cleanup(func() { db.Close() })
				return db
			}
			a := open()
			_, err := a.Migrate(context.Background())
			require.NoError(t, err)
			fn(t, a, open())
		})
	}
}
