package merchant_test

import (
	"context"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/pem"
	"fmt"
	"net/netip"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"paygate"
	"paygate/merchant"
	"paygate/signing"
	"paygate/store"
	"paygate/store/storetest"
)

func ptr[T any](v T) *T { return &v }

func TestCreateAndGet(t *testing.T) {
	t.Parallel()
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		svc := newService(t, db, paygate.NewManualClock(t0))

		has, err := svc.HasMerchants(ctx)
		require.NoError(t, err)
		require.False(t, has)

		// A generated key pair: the private key comes back once.
		c, err := svc.Create(ctx, merchant.CreateRequest{Name: "  Demo Shop ", Sandbox: true,
			IPAllowList: []string{"203.0.113.7", "2001:db8::/32", "::ffff:198.51.100.0/120"}, NotifyHosts: []string{"Shop.Example.com", "*.example.net"}})
		require.NoError(t, err)
		require.True(t, merchant.ValidID(c.Merchant.ID), c.Merchant.ID)
		require.Equal(t, "Demo Shop", c.Merchant.Name)
		require.Equal(t, paygate.MerchantSandbox, c.Merchant.Status)
		require.Equal(t, paygate.Currency("CNY"), c.Merchant.SettlementCurrency)
		require.Equal(t, int64(merchant.DefaultFeeRateBps), c.Merchant.FeeRateBps)
		require.Equal(t, []string{"203.0.113.7/32", "2001:db8::/32", "198.51.100.0/24"}, c.Merchant.IPAllowList)
		require.Equal(t, []string{"shop.example.com", "*.example.net"}, c.Merchant.NotifyHosts)
		require.Equal(t, t0, c.Merchant.CreatedAt)
		require.NotNil(t, c.PrivateKey)
		require.Equal(t, signing.SerialNo(&c.PrivateKey.PublicKey), c.Key.SerialNo)
		require.Equal(t, merchant.KeyGenerated, c.Key.Source)
		require.Len(t, c.APIv3Key, 32)

		got, err := svc.Get(ctx, c.Merchant.ID)
		require.NoError(t, err)
		require.Equal(t, c.Merchant, got)
		viaPayment, err := svc.Merchant(ctx, c.Merchant.ID)
		require.NoError(t, err)
		require.Equal(t, got, viaPayment)
		apiv3, err := svc.APIv3Key(ctx, c.Merchant.ID)
		require.NoError(t, err)
		require.Equal(t, c.APIv3Key, apiv3)

		// An uploaded key, not sandbox, explicit settings.
		u, err := svc.Create(ctx, merchant.CreateRequest{Name: "Live Co", SettlementCurrency: "USD", FeeRateBps: ptr(int64(0)),
			PublicKeyPEM: pubPEM(keyB)})
		require.NoError(t, err)
		require.Nil(t, u.PrivateKey)
		require.Equal(t, merchant.KeyUploaded, u.Key.Source)
		require.Equal(t, signing.SerialNo(&keyB.PublicKey), u.Key.SerialNo)
		require.Equal(t, paygate.MerchantPending, u.Merchant.Status)
		require.Equal(t, int64(0), u.Merchant.FeeRateBps)
		require.NotEqual(t, c.Merchant.ID, u.Merchant.ID)
		require.NotEqual(t, c.APIv3Key, u.APIv3Key)

		has, err = svc.HasMerchants(ctx)
		require.NoError(t, err)
		require.True(t, has)

		for _, id := range []string{"1000000000", "abc", "", "0123456789", c.Merchant.ID + "0"} {
			_, err := svc.Get(ctx, id)
			require.Equal(t, paygate.CodeNotFound, paygate.CodeOf(err), id)
		}
	})
}

func TestCreateRejects(t *testing.T) {
	t.Parallel()
	small, err := rsaKey1024()
	require.NoError(t, err)
	svc := newService(t, storetest.Open(t, store.SQLite), paygate.NewManualClock(t0))
	tests := []struct {
		name  string
		req   merchant.CreateRequest
		code  paygate.Code
		field string
	}{
		{"empty name", merchant.CreateRequest{Name: "  "}, paygate.CodeInvalidArgument, "name"},
		{"long name", merchant.CreateRequest{Name: strings.Repeat("商", 129)}, paygate.CodeInvalidArgument, "name"},
		{"control character", merchant.CreateRequest{Name: "a\x00b"}, paygate.CodeInvalidArgument, "name"},
		{"invalid UTF-8", merchant.CreateRequest{Name: "a\xffb"}, paygate.CodeInvalidArgument, "name"},
		{"unknown currency", merchant.CreateRequest{Name: "x", SettlementCurrency: "XXX"}, paygate.CodeUnknownCurrency, "settlement_currency"},
		{"lower-case currency", merchant.CreateRequest{Name: "x", SettlementCurrency: "cny"}, paygate.CodeUnknownCurrency, "settlement_currency"},
		{"negative fee", merchant.CreateRequest{Name: "x", FeeRateBps: ptr(int64(-1))}, paygate.CodeInvalidArgument, "fee_rate_bps"},
		{"fee over 100%", merchant.CreateRequest{Name: "x", FeeRateBps: ptr(int64(10_001))}, paygate.CodeInvalidArgument, "fee_rate_bps"},
		{"bad IP", merchant.CreateRequest{Name: "x", IPAllowList: []string{"10.0.0.256"}}, paygate.CodeInvalidArgument, "ip_allow_list"},
		{"bad CIDR", merchant.CreateRequest{Name: "x", IPAllowList: []string{"10.0.0.0/33"}}, paygate.CodeInvalidArgument, "ip_allow_list"},
		{"zoned IP", merchant.CreateRequest{Name: "x", IPAllowList: []string{"fe80::1%eth0"}}, paygate.CodeInvalidArgument, "ip_allow_list"},
		{"host name", merchant.CreateRequest{Name: "x", IPAllowList: []string{"example.com"}}, paygate.CodeInvalidArgument, "ip_allow_list"},
		{"too many IPs", merchant.CreateRequest{Name: "x", IPAllowList: make([]string, 51)}, paygate.CodeInvalidArgument, "ip_allow_list"},
		{"bad host", merchant.CreateRequest{Name: "x", NotifyHosts: []string{"http://x.com"}}, paygate.CodeInvalidArgument, "notify_hosts"},
		{"empty host", merchant.CreateRequest{Name: "x", NotifyHosts: []string{""}}, paygate.CodeInvalidArgument, "notify_hosts"},
		{"dotted host", merchant.CreateRequest{Name: "x", NotifyHosts: []string{"a..b"}}, paygate.CodeInvalidArgument, "notify_hosts"},
		{"malformed parent", merchant.CreateRequest{Name: "x", ParentID: "12"}, paygate.CodeInvalidArgument, "parent_mchid"},
		{"unknown parent", merchant.CreateRequest{Name: "x", ParentID: "1234567890"}, paygate.CodeNotFound, "parent_mchid"},
		{"not PEM", merchant.CreateRequest{Name: "x", PublicKeyPEM: []byte("ssh-rsa AAAA")}, paygate.CodeInvalidArgument, "public_key"},
		{"1024-bit key", merchant.CreateRequest{Name: "x", PublicKeyPEM: small}, paygate.CodeInvalidArgument, "public_key"},
		{"private key", merchant.CreateRequest{Name: "x", PublicKeyPEM: signing.PrivateKeyPEM(keyA)}, paygate.CodeInvalidArgument, "public_key"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			if tt.req.PublicKeyPEM == nil {
				tt.req.PublicKeyPEM = pubPEM(keyA)
			}
			_, err := svc.Create(context.Background(), tt.req)
			require.Equal(t, tt.code, paygate.CodeOf(err), "%v", err)
			var pe *paygate.Error
			require.ErrorAs(t, err, &pe)
			require.Equal(t, tt.field, pe.Field)
		})
	}
	has, err := svc.HasMerchants(context.Background())
	require.NoError(t, err)
	require.False(t, has, "a refused create stores nothing")
}

// rsaKey1024 returns the PEM public key of a too-small RSA key.
func rsaKey1024() ([]byte, error) {
	k, err := rsa.GenerateKey(rand.Reader, 1024)
	if err != nil {
		return nil, err
	}
	return signing.PublicKeyPEM(&k.PublicKey), nil
}

func TestSubMerchants(t *testing.T) {
	t.Parallel()
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		svc := newService(t, db, paygate.NewManualClock(t0))
		parent := create(t, svc, merchant.CreateRequest{Name: "Platform"})
		sub := create(t, svc, merchant.CreateRequest{Name: "Sub", ParentID: parent.Merchant.ID})
		require.Equal(t, parent.Merchant.ID, sub.Merchant.ParentID)
		got, err := svc.Get(ctx, sub.Merchant.ID)
		require.NoError(t, err)
		require.Equal(t, parent.Merchant.ID, got.ParentID)

		_, err = svc.Create(ctx, merchant.CreateRequest{Name: "SubSub", ParentID: sub.Merchant.ID, PublicKeyPEM: pubPEM(keyA)})
		require.Equal(t, paygate.CodeConflict, paygate.CodeOf(err))

		_, err = svc.SetStatus(ctx, parent.Merchant.ID, paygate.MerchantClosed)
		require.NoError(t, err)
		_, err = svc.Create(ctx, merchant.CreateRequest{Name: "Late", ParentID: parent.Merchant.ID, PublicKeyPEM: pubPEM(keyA)})
		require.Equal(t, paygate.CodeConflict, paygate.CodeOf(err))
	})
}

func TestCanChangeStatus(t *testing.T) {
	t.Parallel()
	all := []paygate.MerchantStatus{paygate.MerchantSandbox, paygate.MerchantPending, paygate.MerchantLive, paygate.MerchantSuspended, paygate.MerchantClosed}
	allowed := map[[2]paygate.MerchantStatus]bool{
		{paygate.MerchantSandbox, paygate.MerchantPending}:   true,
		{paygate.MerchantSandbox, paygate.MerchantSuspended}: true,
		{paygate.MerchantSandbox, paygate.MerchantClosed}:    true,
		{paygate.MerchantPending, paygate.MerchantLive}:      true,
		{paygate.MerchantPending, paygate.MerchantSandbox}:   true,
		{paygate.MerchantPending, paygate.MerchantSuspended}: true,
		{paygate.MerchantPending, paygate.MerchantClosed}:    true,
		{paygate.MerchantLive, paygate.MerchantSuspended}:    true,
		{paygate.MerchantLive, paygate.MerchantClosed}:       true,
		{paygate.MerchantSuspended, paygate.MerchantLive}:    true,
		{paygate.MerchantSuspended, paygate.MerchantSandbox}: true,
		{paygate.MerchantSuspended, paygate.MerchantPending}: true,
		{paygate.MerchantSuspended, paygate.MerchantClosed}:  true,
	}
	for _, from := range all {
		for _, to := range all {
			want := allowed[[2]paygate.MerchantStatus{from, to}]
			require.Equal(t, want, merchant.CanChangeStatus(from, to, false), "%s -> %s", from, to)
			if to == paygate.MerchantSandbox {
				want = false // a merchant that was ever live never returns to the sandbox
			}
			require.Equal(t, want, merchant.CanChangeStatus(from, to, true), "%s -> %s after live", from, to)
		}
	}
	_, err := merchant.ParseStatus("live")
	require.Equal(t, paygate.CodeInvalidArgument, paygate.CodeOf(err))
}

func TestSetStatus(t *testing.T) {
	t.Parallel()
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		clock := paygate.NewManualClock(t0)
		svc := newService(t, db, clock)
		m := create(t, svc, merchant.CreateRequest{}).Merchant
		steps := []struct {
			to   paygate.MerchantStatus
			code paygate.Code
		}{
			{paygate.MerchantLive, paygate.CodeConflict}, // sandbox must be reviewed first
			{paygate.MerchantPending, ""},
			{paygate.MerchantPending, ""}, // the same status: a no-op
			{paygate.MerchantLive, ""},
			{paygate.MerchantSandbox, paygate.CodeConflict},
			{paygate.MerchantSuspended, ""},
			{paygate.MerchantSandbox, paygate.CodeConflict}, // was live: never back to the sandbox
			{paygate.MerchantLive, ""},
			{paygate.MerchantClosed, ""},
			{paygate.MerchantLive, paygate.CodeConflict},
			{"ACTIVE", paygate.CodeInvalidArgument},
		}
		want := paygate.MerchantSandbox
		for i, s := range steps {
			clock.Advance(time.Second)
			got, err := svc.SetStatus(ctx, m.ID, s.to)
			require.Equal(t, s.code, paygate.CodeOf(err), "step %d: %v", i, err)
			if s.code == "" {
				want = s.to
				require.Equal(t, want, got.Status)
			}
			stored, err := svc.Get(ctx, m.ID)
			require.NoError(t, err)
			require.Equal(t, want, stored.Status, "step %d", i)
		}
		_, err := svc.SetStatus(ctx, "9999999999", paygate.MerchantLive)
		require.Equal(t, paygate.CodeNotFound, paygate.CodeOf(err))
	})
}

func TestUpdate(t *testing.T) {
	t.Parallel()
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		svc := newService(t, db, paygate.NewManualClock(t0))
		m := create(t, svc, merchant.CreateRequest{IPAllowList: []string{"10.0.0.1"}}).Merchant
		got, err := svc.Update(ctx, m.ID, merchant.Update{Name: ptr("Renamed"), FeeRateBps: ptr(int64(38)),
			IPAllowList: &[]string{"192.0.2.0/24"}, NotifyHosts: &[]string{"hooks.example.com"}})
		require.NoError(t, err)
		require.Equal(t, "Renamed", got.Name)
		require.Equal(t, int64(38), got.FeeRateBps)
		require.Equal(t, []string{"192.0.2.0/24"}, got.IPAllowList)
		require.Equal(t, []string{"hooks.example.com"}, got.NotifyHosts)
		stored, err := svc.Get(ctx, m.ID)
		require.NoError(t, err)
		require.Equal(t, got, stored)

		// Clearing the allow-list allows any address; nil fields stay.
		got, err = svc.Update(ctx, m.ID, merchant.Update{IPAllowList: &[]string{}})
		require.NoError(t, err)
		require.Empty(t, got.IPAllowList)
		require.Equal(t, "Renamed", got.Name)

		_, err = svc.Update(ctx, m.ID, merchant.Update{FeeRateBps: ptr(int64(-5))})
		require.Equal(t, paygate.CodeInvalidArgument, paygate.CodeOf(err))
		_, err = svc.Update(ctx, "2222222222", merchant.Update{Name: ptr("x")})
		require.Equal(t, paygate.CodeNotFound, paygate.CodeOf(err))
	})
}

func TestIPAllowed(t *testing.T) {
	t.Parallel()
	m := paygate.Merchant{IPAllowList: []string{"203.0.113.0/24", "2001:db8::1/128"}}
	for _, c := range []struct {
		addr string
		ok   bool
	}{
		{"203.0.113.9", true}, {"::ffff:203.0.113.9", true}, {"203.0.114.1", false},
		{"2001:db8::1", true}, {"2001:db8::2", false}, {"127.0.0.1", false},
	} {
		require.Equal(t, c.ok, merchant.IPAllowed(m, netip.MustParseAddr(c.addr)), c.addr)
	}
	require.True(t, merchant.IPAllowed(paygate.Merchant{}, netip.MustParseAddr("198.51.100.1")), "no list allows any")
}

func TestMerchantKeys(t *testing.T) {
	t.Parallel()
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		clock := paygate.NewManualClock(t0)
		svc := newService(t, db, clock)
		m := create(t, svc, merchant.CreateRequest{PublicKeyPEM: pubPEM(keyA)}).Merchant
		serialA := signing.SerialNo(&keyA.PublicKey)

		got, pub, err := svc.MerchantKey(ctx, m.ID, serialA)
		require.NoError(t, err)
		require.Equal(t, m, got)
		require.True(t, pub.Equal(&keyA.PublicKey))

		// Rotation: a second key (uploaded as an X.509-less PKCS #1 PEM) and
		// a generated third are active beside the first.
		pkcs1 := pem.EncodeToMemory(&pem.Block{Type: "RSA PUBLIC KEY", Bytes: x509.MarshalPKCS1PublicKey(&keyB.PublicKey)})
		clock.Advance(time.Minute)
		kb, err := svc.AddPublicKey(ctx, m.ID, pkcs1)
		require.NoError(t, err)
		require.Equal(t, signing.SerialNo(&keyB.PublicKey), kb.SerialNo)
		clock.Advance(time.Minute)
		kc, privC, err := svc.GenerateKey(ctx, m.ID)
		require.NoError(t, err)
		require.Equal(t, signing.SerialNo(&privC.PublicKey), kc.SerialNo)
		for _, serial := range []string{serialA, kb.SerialNo, kc.SerialNo} {
			_, _, err := svc.MerchantKey(ctx, m.ID, serial)
			require.NoError(t, err, serial)
		}
		_, err = svc.AddPublicKey(ctx, m.ID, pubPEM(keyB))
		require.Equal(t, paygate.CodeConflict, paygate.CodeOf(err), "the same key twice")

		// Revocation applies at once; the other keys keep working.
		require.NoError(t, svc.RevokeKey(ctx, m.ID, serialA))
		_, _, err = svc.MerchantKey(ctx, m.ID, serialA)
		require.Equal(t, paygate.CodeUnauthenticated, paygate.CodeOf(err))
		require.NotContains(t, err.(*paygate.Error).Message+fmt.Sprint(err.(*paygate.Error).Field), serialA)
		_, _, err = svc.MerchantKey(ctx, m.ID, kb.SerialNo)
		require.NoError(t, err)
		require.Equal(t, paygate.CodeNotFound, paygate.CodeOf(svc.RevokeKey(ctx, m.ID, serialA)), "already revoked")
		require.Equal(t, paygate.CodeNotFound, paygate.CodeOf(svc.RevokeKey(ctx, m.ID, "NOPE")))
		_, err = svc.AddPublicKey(ctx, m.ID, pubPEM(keyA))
		require.Equal(t, paygate.CodeConflict, paygate.CodeOf(err), "a revoked key cannot come back")

		ks, err := svc.Keys(ctx, m.ID)
		require.NoError(t, err)
		require.Len(t, ks, 3)
		require.Equal(t, serialA, ks[0].SerialNo)
		require.False(t, ks[0].Active())
		require.Equal(t, t0.Add(2*time.Minute), ks[0].RevokedAt)
		require.Equal(t, merchant.KeyUploaded, ks[1].Source)
		require.Equal(t, merchant.KeyGenerated, ks[2].Source)
		require.True(t, ks[1].Active() && ks[2].Active())

		// Unknown merchant, unknown serial: one answer.
		for _, c := range [][2]string{{"1111111111", kb.SerialNo}, {m.ID, "UNKNOWN"}, {"x", kb.SerialNo}} {
			_, _, err := svc.MerchantKey(ctx, c[0], c[1])
			require.Equal(t, paygate.CodeUnauthenticated, paygate.CodeOf(err))
			require.Equal(t, "unknown mchid or serial_no, or the key was revoked", err.(*paygate.Error).Message)
		}
		_, err = svc.Keys(ctx, "1111111111")
		require.Equal(t, paygate.CodeNotFound, paygate.CodeOf(err))
	})
}

func TestMaxActiveKeys(t *testing.T) {
	t.Parallel()
	db := storetest.Open(t, store.SQLite)
	svc, err := merchant.New(merchant.Config{Store: db.Merchants(), Clock: paygate.NewManualClock(t0), Keyring: testKeyring(t), MaxActiveKeys: 2})
	require.NoError(t, err)
	ctx := context.Background()
	m := create(t, svc, merchant.CreateRequest{PublicKeyPEM: pubPEM(keyA)}).Merchant
	_, err = svc.AddPublicKey(ctx, m.ID, pubPEM(keyB))
	require.NoError(t, err)
	_, err = svc.AddPublicKey(ctx, m.ID, pubPEM(keyC))
	require.Equal(t, paygate.CodeLimitExceeded, paygate.CodeOf(err))
	require.NoError(t, svc.RevokeKey(ctx, m.ID, signing.SerialNo(&keyA.PublicKey)))
	_, err = svc.AddPublicKey(ctx, m.ID, pubPEM(keyC))
	require.NoError(t, err, "revoking frees a slot")

	_, err = svc.SetStatus(ctx, m.ID, paygate.MerchantClosed)
	require.NoError(t, err)
	_, err = svc.AddPublicKey(ctx, m.ID, pubPEM(keyA))
	require.Equal(t, paygate.CodeConflict, paygate.CodeOf(err), "a closed merchant gets no keys")
}

// TestRevocationAcrossProcesses revokes a key through one database handle
// and checks that a service on another handle, which just used the key,
// refuses it on the very next call: nothing caches key status.
func TestRevocationAcrossProcesses(t *testing.T) {
	t.Parallel()
	sameDatabase(t, func(t *testing.T, a, b *store.DB) {
		ctx := context.Background()
		clock := paygate.NewManualClock(t0)
		svcA, svcB := newService(t, a, clock), newService(t, b, clock)
		m := create(t, svcA, merchant.CreateRequest{PublicKeyPEM: pubPEM(keyA)}).Merchant
		serial := signing.SerialNo(&keyA.PublicKey)
		_, _, err := svcB.MerchantKey(ctx, m.ID, serial)
		require.NoError(t, err)
		require.NoError(t, svcA.RevokeKey(ctx, m.ID, serial))
		_, _, err = svcB.MerchantKey(ctx, m.ID, serial)
		require.Equal(t, paygate.CodeUnauthenticated, paygate.CodeOf(err))

		// A status change is seen at once as well.
		_, err = svcA.AddPublicKey(ctx, m.ID, pubPEM(keyB))
		require.NoError(t, err)
		_, err = svcA.SetStatus(ctx, m.ID, paygate.MerchantSuspended)
		require.NoError(t, err)
		got, _, err := svcB.MerchantKey(ctx, m.ID, signing.SerialNo(&keyB.PublicKey))
		require.NoError(t, err)
		require.Equal(t, paygate.MerchantSuspended, got.Status)
	})
}

// TestKnownKeyAcrossProcesses: the one-round-trip authentication of a
// request signed with a key the process has seen (KnownKey,
// UseNonceForKnownKey) admits it only while the key is active, the
// merchant may transact and has no IP allow-list, whatever another process
// changed since; when it refuses, it consumes no nonce, so the full way
// gives the precise answer.
func TestKnownKeyAcrossProcesses(t *testing.T) {
	t.Parallel()
	sameDatabase(t, func(t *testing.T, a, b *store.DB) {
		ctx := context.Background()
		clock := paygate.NewManualClock(t0)
		svcA, svcB := newService(t, a, clock), newService(t, b, clock)
		m := create(t, svcA, merchant.CreateRequest{PublicKeyPEM: pubPEM(keyA)}).Merchant
		serial := signing.SerialNo(&keyA.PublicKey)
		ts := t0.Unix()
		fast := func(nonce string) bool {
			t.Helper()
			got, used, err := svcB.UseNonceForKnownKey(ctx, m.ID, serial, nonce, ts)
			require.NoError(t, err)
			if used {
				require.Equal(t, m.ID, got.ID)
			}
			return used
		}
		unused := func(nonce string) {
			t.Helper()
			require.NoError(t, svcA.UseNonce(ctx, m.ID, nonce, ts), "the refused request consumed no nonce")
		}

		_, ok := svcB.KnownKey(m.ID, serial)
		require.False(t, ok, "a key is known only once MerchantKey returned it")
		_, pub, err := svcB.MerchantKey(ctx, m.ID, serial)
		require.NoError(t, err)
		known, ok := svcB.KnownKey(m.ID, serial)
		require.True(t, ok)
		require.Equal(t, pub, known)
		_, ok = svcA.KnownKey(m.ID, serial)
		require.False(t, ok, "each process knows the keys it has read")
		_, ok = svcB.KnownKey("1000000001", serial)
		require.False(t, ok, "a key is known for its merchant only")

		require.True(t, fast("F1"))
		require.False(t, fast("F1"), "a replay")
		require.Equal(t, paygate.CodeUnauthenticated, paygate.CodeOf(svcA.UseNonce(ctx, m.ID, "F1", ts)), "the nonce is used in the database")

		// Another process suspends the merchant, then revokes the key.
		_, err = svcA.SetStatus(ctx, m.ID, paygate.MerchantSuspended)
		require.NoError(t, err)
		require.False(t, fast("F2"))
		unused("F2")
		_, err = svcA.SetStatus(ctx, m.ID, paygate.MerchantSandbox)
		require.NoError(t, err)
		require.True(t, fast("F3"))

		// An IP allow-list sends every request the full way (the address
		// is checked there).
		_, err = svcA.Update(ctx, m.ID, merchant.Update{IPAllowList: &[]string{"203.0.113.0/24"}})
		require.NoError(t, err)
		require.False(t, fast("F4"))
		unused("F4")
		_, err = svcA.Update(ctx, m.ID, merchant.Update{IPAllowList: &[]string{}})
		require.NoError(t, err)
		require.True(t, fast("F5"))

		_, err = svcA.AddPublicKey(ctx, m.ID, pubPEM(keyB))
		require.NoError(t, err)
		require.NoError(t, svcA.RevokeKey(ctx, m.ID, serial))
		_, ok = svcB.KnownKey(m.ID, serial)
		require.True(t, ok, "still known: it is a hint")
		require.False(t, fast("F6"), "a revoked key admits nothing")
		unused("F6")

		// Unknown merchants and serials admit nothing either.
		_, used, err := svcB.UseNonceForKnownKey(ctx, m.ID, "0123456789ABCDEF", "F7", ts)
		require.NoError(t, err)
		require.False(t, used)
		_, used, err = svcB.UseNonceForKnownKey(ctx, "not-an-id", serial, "F7", ts)
		require.NoError(t, err)
		require.False(t, used)
		unused("F7")
	})
}

// TestMerchantWithinAuthenticatedRequest: within a request that
// authenticated as a merchant, Merchant answers for that merchant from the
// context; for any other merchant, or without it, it reads the database.
func TestMerchantWithinAuthenticatedRequest(t *testing.T) {
	t.Parallel()
	db := storetest.Open(t, store.SQLite)
	svc := newService(t, db, paygate.NewManualClock(t0))
	ctx := context.Background()
	a := create(t, svc, merchant.CreateRequest{Name: "A"}).Merchant
	b := create(t, svc, merchant.CreateRequest{Name: "B"}).Merchant
	authed, _, err := svc.MerchantKey(ctx, a.ID, signing.SerialNo(&keyA.PublicKey))
	require.NoError(t, err)
	rctx := merchant.WithAuthenticated(ctx, authed)
	_, err = svc.SetStatus(ctx, a.ID, paygate.MerchantSuspended)
	require.NoError(t, err)

	got, err := svc.Merchant(rctx, a.ID)
	require.NoError(t, err)
	require.Equal(t, paygate.MerchantSandbox, got.Status, "as the request authenticated")
	got, err = svc.Merchant(ctx, a.ID)
	require.NoError(t, err)
	require.Equal(t, paygate.MerchantSuspended, got.Status, "outside it, read at once")
	got, err = svc.Merchant(rctx, b.ID)
	require.NoError(t, err)
	require.Equal(t, "B", got.Name, "another merchant is read")
}

func TestNonces(t *testing.T) {
	t.Parallel()
	sameDatabase(t, func(t *testing.T, a, b *store.DB) {
		ctx := context.Background()
		clock := paygate.NewManualClock(t0)
		svcA, svcB := newService(t, a, clock), newService(t, b, clock)
		ts := t0.Unix()
		require.NoError(t, svcA.UseNonce(ctx, "1234567890", "N1", ts))
		for _, svc := range []*merchant.Service{svcA, svcB} {
			err := svc.UseNonce(ctx, "1234567890", "N1", ts)
			require.Equal(t, paygate.CodeUnauthenticated, paygate.CodeOf(err), "a replay in either process")
		}
		require.NoError(t, svcB.UseNonce(ctx, "1234567891", "N1", ts), "nonces are per merchant")

		// Racing processes: exactly one use of a nonce wins.
		var wg sync.WaitGroup
		wins := make(chan int, 20)
		for i := range 20 {
			svc := []*merchant.Service{svcA, svcB}[i%2]
			wg.Go(func() {
				if err := svc.UseNonce(ctx, "1234567890", "RACE", ts); err == nil {
					wins <- i
				} else {
					require.Equal(t, paygate.CodeUnauthenticated, paygate.CodeOf(err), "%v", err)
				}
			})
		}
		wg.Wait()
		close(wins)
		require.Len(t, wins, 1)

		// Until the window has passed for the request's timestamp the
		// nonce stays used; then it may be used again and is purged.
		clock.Set(time.Unix(ts, 0).Add(merchant.NonceTTL - time.Microsecond))
		require.Error(t, svcB.UseNonce(ctx, "1234567890", "N1", ts))
		n, err := svcA.DeleteExpiredNonces(ctx, 100)
		require.NoError(t, err)
		require.Zero(t, n)
		clock.Set(time.Unix(ts, 0).Add(merchant.NonceTTL + time.Microsecond))
		n, err = svcA.DeleteExpiredNonces(ctx, 2)
		require.NoError(t, err)
		require.Equal(t, int64(2), n, "bounded by the limit")
		// An expired row not yet purged does not block a new use.
		require.NoError(t, svcB.UseNonce(ctx, "1234567891", "N1", clock.Now().Unix()))
		n, err = svcA.DeleteExpiredNonces(ctx, 100)
		require.NoError(t, err)
		require.Equal(t, int64(1), n)
		require.Error(t, svcA.UseNonce(ctx, "1234567891", "N1", clock.Now().Unix()))
	})
}

// TestNoncesConcurrent: many requests record nonces at once, each nonce
// sent several times to two processes (on SQLite they commit in groups):
// every nonce is used exactly once, and every use is recorded.
func TestNoncesConcurrent(t *testing.T) {
	t.Parallel()
	sameDatabase(t, func(t *testing.T, a, b *store.DB) {
		ctx := context.Background()
		clock := paygate.NewManualClock(t0)
		svcs := []*merchant.Service{newService(t, a, clock), newService(t, b, clock)}
		ts := t0.Unix()
		const nonces, sends = 40, 3
		var wins [nonces]atomic.Int32
		var wg sync.WaitGroup
		for i := range nonces * sends {
			wg.Go(func() {
				n := i % nonces
				err := svcs[i%2].UseNonce(ctx, "1234567890", fmt.Sprintf("C%03d", n), ts)
				if err == nil {
					wins[n].Add(1)
					return
				}
				require.Equal(t, paygate.CodeUnauthenticated, paygate.CodeOf(err), "%v", err)
			})
		}
		wg.Wait()
		for n := range nonces {
			require.Equal(t, int32(1), wins[n].Load(), "nonce %d", n)
			err := svcs[n%2].UseNonce(ctx, "1234567890", fmt.Sprintf("C%03d", n), ts)
			require.Equal(t, paygate.CodeUnauthenticated, paygate.CodeOf(err), "nonce %d is recorded", n)
		}
	})
}

func TestPlatformKeys(t *testing.T) {
	t.Parallel()
	sameDatabase(t, func(t *testing.T, a, b *store.DB) {
		ctx := context.Background()
		clock := paygate.NewManualClock(t0)
		svcA, svcB := newService(t, a, clock), newService(t, b, clock)

		keys, err := svcA.PlatformKeys(ctx)
		require.NoError(t, err)
		require.Empty(t, keys)

		// Two processes starting together create one key.
		var wg sync.WaitGroup
		got := make([]merchant.PlatformKey, 2)
		for i, svc := range []*merchant.Service{svcA, svcB} {
			wg.Go(func() {
				var err error
				got[i], err = svc.EnsurePlatformKey(ctx)
				require.NoError(t, err)
			})
		}
		wg.Wait()
		require.Equal(t, got[0], got[1])
		first := got[0]
		require.Equal(t, t0, first.ValidFrom)
		require.Equal(t, t0.Add(merchant.DefaultPlatformKeyLifetime), first.ValidUntil)
		again, err := svcA.EnsurePlatformKey(ctx)
		require.NoError(t, err)
		require.Equal(t, first, again)

		serial, priv, err := svcB.SigningKey(ctx)
		require.NoError(t, err)
		require.Equal(t, first.SerialNo, serial)
		pub, err := signing.ParsePublicKeyPEM([]byte(first.PublicKeyPEM))
		require.NoError(t, err)
		require.True(t, pub.Equal(&priv.PublicKey))

		// A rotation scheduled an hour ahead is published at once and
		// signs from its time on, in every process.
		activate := t0.Add(time.Hour)
		next, err := svcA.RotatePlatformKey(ctx, activate)
		require.NoError(t, err)
		require.Equal(t, activate, next.ValidFrom)
		keys, err = svcB.PlatformKeys(ctx)
		require.NoError(t, err)
		require.Len(t, keys, 2)
		require.Equal(t, next.SerialNo, keys[0].SerialNo)
		require.Equal(t, activate.Add(merchant.PlatformKeyGrace), keys[1].ValidUntil, "the old key is capped")

		for _, svc := range []*merchant.Service{svcA, svcB} {
			s, _, err := svc.SigningKey(ctx)
			require.NoError(t, err)
			require.Equal(t, first.SerialNo, s, "before activation")
		}
		clock.Set(activate)
		for _, svc := range []*merchant.Service{svcA, svcB} {
			s, k, err := svc.SigningKey(ctx)
			require.NoError(t, err)
			require.Equal(t, next.SerialNo, s, "from activation")
			require.Equal(t, next.SerialNo, signing.SerialNo(&k.PublicKey))
		}
		apiv3, s, k, err := svcB.NotificationKeys(ctx, create(t, svcA, merchant.CreateRequest{}).Merchant.ID)
		require.NoError(t, err)
		require.Len(t, apiv3, 32)
		require.Equal(t, next.SerialNo, s)
		require.Equal(t, next.SerialNo, signing.SerialNo(&k.PublicKey))
		_, _, _, err = svcB.NotificationKeys(ctx, "1111111111")
		require.Equal(t, paygate.CodeNotFound, paygate.CodeOf(err))

		// After the grace period only the new key is listed.
		clock.Set(activate.Add(merchant.PlatformKeyGrace))
		keys, err = svcA.PlatformKeys(ctx)
		require.NoError(t, err)
		require.Equal(t, []merchant.PlatformKey{next}, keys)

		// When every key has expired, signing makes a new one.
		clock.Set(next.ValidUntil)
		s, _, err = svcA.SigningKey(ctx)
		require.NoError(t, err)
		require.NotEqual(t, next.SerialNo, s)
	})
}

// TestSecretsEncryptedAtRest dumps every text column of the merchant
// tables and checks that no secret appears: not the APIv3 key, not the
// platform private key (PEM or its base64 body), while the public parts do.
func TestSecretsEncryptedAtRest(t *testing.T) {
	t.Parallel()
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		svc := newService(t, db, paygate.NewManualClock(t0))
		c := create(t, svc, merchant.CreateRequest{})
		pk, err := svc.EnsurePlatformKey(ctx)
		require.NoError(t, err)
		_, priv, err := svc.SigningKey(ctx)
		require.NoError(t, err)

		var dump strings.Builder
		for _, table := range []string{"merchants", "merchant_keys", "platform_keys"} {
			rows, err := db.SQL.QueryContext(ctx, `SELECT * FROM `+table)
			require.NoError(t, err)
			cols, err := rows.Columns()
			require.NoError(t, err)
			for rows.Next() {
				vals := make([]any, len(cols))
				ptrs := make([]any, len(cols))
				for i := range vals {
					ptrs[i] = &vals[i]
				}
				require.NoError(t, rows.Scan(ptrs...))
				for _, v := range vals {
					fmt.Fprintf(&dump, "%s\n", v)
				}
			}
			require.NoError(t, rows.Err())
			rows.Close()
		}
		s := dump.String()
		require.Contains(t, s, c.Key.PublicKeyPEM, "the dump is real")
		require.Contains(t, s, pk.PublicKeyPEM)
		require.NotContains(t, s, c.APIv3Key)
		privPEM := string(signing.PrivateKeyPEM(priv))
		require.NotContains(t, s, "PRIVATE KEY")
		for _, line := range strings.Split(privPEM, "\n") {
			if len(line) == 64 {
				require.NotContains(t, s, line)
			}
		}
	})
}

func TestWrongMasterKey(t *testing.T) {
	t.Parallel()
	db := storetest.Open(t, store.SQLite)
	ctx := context.Background()
	svc := newService(t, db, paygate.NewManualClock(t0))
	c := create(t, svc, merchant.CreateRequest{})
	_, err := svc.EnsurePlatformKey(ctx)
	require.NoError(t, err)

	other, err := merchant.NewKeyring(make([]byte, 32))
	require.NoError(t, err)
	wrong, err := merchant.New(merchant.Config{Store: db.Merchants(), Clock: paygate.NewManualClock(t0), Keyring: other})
	require.NoError(t, err)
	_, err = wrong.APIv3Key(ctx, c.Merchant.ID)
	require.Equal(t, paygate.CodeInternal, paygate.CodeOf(err))
	require.Contains(t, err.Error(), testKeyring(t).KeyID(), "the log names the missing master key")
	require.Equal(t, "internal error", err.(*paygate.Error).Message)
	_, _, err = wrong.SigningKey(ctx)
	require.Equal(t, paygate.CodeInternal, paygate.CodeOf(err))

	// Master key rotation: the new key first, the old one still opens;
	// resealing moves the secret to the new key.
	ring, err := merchant.ParseKeyring(merchant.NewMasterKey() + ", AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=")
	require.NoError(t, err)
	rotated, err := merchant.New(merchant.Config{Store: db.Merchants(), Clock: paygate.NewManualClock(t0), Keyring: ring})
	require.NoError(t, err)
	k, err := rotated.APIv3Key(ctx, c.Merchant.ID)
	require.NoError(t, err)
	require.Equal(t, c.APIv3Key, k)
	changed, err := rotated.ResealSecrets(ctx, c.Merchant.ID)
	require.NoError(t, err)
	require.True(t, changed)
	changed, err = rotated.ResealSecrets(ctx, c.Merchant.ID)
	require.NoError(t, err)
	require.False(t, changed)
	_, err = svc.APIv3Key(ctx, c.Merchant.ID)
	require.Equal(t, paygate.CodeInternal, paygate.CodeOf(err), "the old ring alone no longer opens it")
	k, err = rotated.APIv3Key(ctx, c.Merchant.ID)
	require.NoError(t, err)
	require.Equal(t, c.APIv3Key, k)
}

func TestRotateAPIv3Key(t *testing.T) {
	t.Parallel()
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		svc := newService(t, db, paygate.NewManualClock(t0))
		c := create(t, svc, merchant.CreateRequest{})
		k, err := svc.RotateAPIv3Key(ctx, c.Merchant.ID)
		require.NoError(t, err)
		require.Len(t, k, 32)
		require.NotEqual(t, c.APIv3Key, k)
		got, err := svc.APIv3Key(ctx, c.Merchant.ID)
		require.NoError(t, err)
		require.Equal(t, k, got)
	})
}

func TestKeyring(t *testing.T) {
	t.Parallel()
	kr := testKeyring(t)
	s := kr.Seal([]byte("secret"), []byte("row 1"))
	require.Equal(t, kr.KeyID(), s.KeyID)
	require.NotContains(t, s.Ciphertext, "secret")
	require.NotEqual(t, s, kr.Seal([]byte("secret"), []byte("row 1")), "fresh nonce each time")
	pt, err := kr.Open(s, []byte("row 1"))
	require.NoError(t, err)
	require.Equal(t, "secret", string(pt))
	_, err = kr.Open(s, []byte("row 2"))
	require.Equal(t, paygate.CodeInternal, paygate.CodeOf(err), "a ciphertext moved to another row does not open")
	bad := s
	bad.Ciphertext = "!!"
	_, err = kr.Open(bad, []byte("row 1"))
	require.Equal(t, paygate.CodeInternal, paygate.CodeOf(err))
	bad = s
	bad.KeyID = "0000000000000000"
	_, err = kr.Open(bad, []byte("row 1"))
	require.Equal(t, paygate.CodeInternal, paygate.CodeOf(err))

	for _, v := range []string{"", "not base64!", "AAAA", merchant.NewMasterKey() + ",x"} {
		_, err := merchant.ParseKeyring(v)
		require.Equal(t, paygate.CodeInvalidArgument, paygate.CodeOf(err), v)
		if v != "" {
			require.NotContains(t, err.Error(), v, "the value is never echoed")
		}
	}
	_, err = merchant.NewKeyring()
	require.Equal(t, paygate.CodeInvalidArgument, paygate.CodeOf(err))
	require.Len(t, merchant.MasterKeyID(make([]byte, 32)), 16)
}

func TestNewRequiresDependencies(t *testing.T) {
	t.Parallel()
	_, err := merchant.New(merchant.Config{})
	require.Equal(t, paygate.CodeInvalidArgument, paygate.CodeOf(err))
	_, err = merchant.New(merchant.Config{Store: storetest.Open(t, store.SQLite).Merchants(), Clock: paygate.SystemClock{},
		Keyring: testKeyring(t), MaxActiveKeys: -1})
	require.Equal(t, paygate.CodeInvalidArgument, paygate.CodeOf(err))
}

// flakyStore fails PlatformKeys while down is set.
type flakyStore struct {
	merchant.Store
	down *atomic.Bool
}

func (f flakyStore) PlatformKeys(ctx context.Context) ([]merchant.PlatformKeyRecord, error) {
	if f.down.Load() {
		return nil, paygate.E(paygate.CodeUnavailable, "database down")
	}
	return f.Store.PlatformKeys(ctx)
}

// TestSigningKeySurvivesAnOutage: when reloading the platform keys fails,
// the keys loaded before keep signing; a process that never loaded them
// reports the failure.
func TestSigningKeySurvivesAnOutage(t *testing.T) {
	t.Parallel()
	db := storetest.Open(t, store.SQLite)
	ctx := context.Background()
	clock := paygate.NewManualClock(t0)
	down := &atomic.Bool{}
	svc, err := merchant.New(merchant.Config{Store: flakyStore{db.Merchants(), down}, Clock: clock, Keyring: testKeyring(t), Logger: quiet})
	require.NoError(t, err)
	pk, err := svc.EnsurePlatformKey(ctx)
	require.NoError(t, err)
	serial, _, err := svc.SigningKey(ctx)
	require.NoError(t, err)
	require.Equal(t, pk.SerialNo, serial)

	down.Store(true)
	clock.Advance(merchant.DefaultPlatformKeyCacheTTL + time.Second)
	serial, _, err = svc.SigningKey(ctx)
	require.NoError(t, err)
	require.Equal(t, pk.SerialNo, serial)

	fresh, err := merchant.New(merchant.Config{Store: flakyStore{db.Merchants(), down}, Clock: clock, Keyring: testKeyring(t), Logger: quiet})
	require.NoError(t, err)
	_, _, err = fresh.SigningKey(ctx)
	require.Equal(t, paygate.CodeUnavailable, paygate.CodeOf(err))
	down.Store(false)
	serial, _, err = fresh.SigningKey(ctx)
	require.NoError(t, err)
	require.Equal(t, pk.SerialNo, serial)
}
