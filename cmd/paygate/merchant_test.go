package main

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"

	"github.com/stretchr/testify/require"

	"paygate"
	"paygate/merchant"
	"paygate/signing"
	"paygate/store"
	"paygate/store/storetest"
)

// checkCredentials checks the contract of `merchant create --json` and the
// files it names against the database.
func checkCredentials(t *testing.T, u, masterKey string, c Credentials) {
	t.Helper()
	require.True(t, merchant.ValidID(c.MchID), c.MchID)
	require.Len(t, c.APIv3Key, 32)
	require.True(t, filepath.IsAbs(c.MerchantPrivateKeyFile), c.MerchantPrivateKeyFile)
	require.True(t, filepath.IsAbs(c.PlatformPublicKeyFile), c.PlatformPublicKeyFile)

	st, err := os.Stat(c.MerchantPrivateKeyFile)
	require.NoError(t, err)
	require.Equal(t, os.FileMode(0o600), st.Mode().Perm(), "the private key file is the operator's only")
	b, err := os.ReadFile(c.MerchantPrivateKeyFile)
	require.NoError(t, err)
	priv, err := signing.ParsePrivateKeyPEM(b)
	require.NoError(t, err)
	require.Equal(t, c.MerchantSerialNo, signing.SerialNo(&priv.PublicKey))
	b, err = os.ReadFile(c.PlatformPublicKeyFile)
	require.NoError(t, err)
	pub, err := signing.ParsePublicKeyPEM(b)
	require.NoError(t, err)
	require.Equal(t, c.PlatformSerialNo, signing.SerialNo(pub))

	// The database agrees: the key authenticates, the APIv3 key and the
	// platform key are the ones handed over.
	db, err := store.Open(context.Background(), u, store.Options{})
	require.NoError(t, err)
	defer db.Close()
	kr, err := merchant.ParseKeyring(masterKey)
	require.NoError(t, err)
	svc, err := merchant.New(merchant.Config{Store: db.Merchants(), Clock: paygate.SystemClock{}, Keyring: kr, Logger: slog.New(slog.DiscardHandler)})
	require.NoError(t, err)
	m, k, err := svc.MerchantKey(context.Background(), c.MchID, c.MerchantSerialNo)
	require.NoError(t, err)
	require.True(t, k.Equal(&priv.PublicKey))
	require.Equal(t, c.Name, m.Name)
	require.Equal(t, c.Status, m.Status)
	apiv3, serial, platform, err := svc.NotificationKeys(context.Background(), c.MchID)
	require.NoError(t, err)
	require.Equal(t, c.APIv3Key, apiv3)
	require.Equal(t, c.PlatformSerialNo, serial)
	require.True(t, platform.PublicKey.Equal(pub))
}

func TestMerchantCreateJSON(t *testing.T) {
	t.Parallel()
	for _, d := range []store.Dialect{store.SQLite, store.Postgres} {
		t.Run(string(d), func(t *testing.T) {
			t.Parallel()
			u := storetest.URL(t, d)
			key := merchant.NewMasterKey()
			out := t.TempDir()
			env := map[string]string{"PAYGATE_DATABASE_URL": u, masterKeyEnv: key}
			status, stdout, stderr := runChild(t, env, "merchant", "create", "--name", "Shop One", "--sandbox", "--json",
				"--fee-bps", "25", "--currency", "HKD", "--out", out)
			require.Equal(t, exitOK, status, stderr)
			require.Equal(t, 1, strings.Count(stdout, "\n"), "one JSON object on one line")
			var fields map[string]any
			require.NoError(t, json.Unmarshal([]byte(stdout), &fields))
			for _, f := range []string{"mchid", "merchant_serial_no", "merchant_private_key_file", "apiv3_key", "platform_serial_no", "platform_public_key_file"} {
				require.NotEmpty(t, fields[f], f)
			}
			var c Credentials
			require.NoError(t, json.Unmarshal([]byte(stdout), &c))
			require.Equal(t, "Shop One", c.Name)
			require.Equal(t, paygate.MerchantSandbox, c.Status)
			require.Equal(t, paygate.Currency("HKD"), c.SettlementCurrency)
			require.Equal(t, int64(25), c.FeeRateBps)
			require.Equal(t, out, filepath.Dir(c.MerchantPrivateKeyFile))
			checkCredentials(t, u, key, c)
			require.NotContains(t, stderr, c.APIv3Key, "the APIv3 key is never logged")

			// A second merchant shares the platform key; --db works like the
			// variable.
			status, stdout, stderr = runChild(t, map[string]string{masterKeyEnv: key}, "merchant", "create", "--db", u, "--name", "Shop Two", "--json", "--out", out)
			require.Equal(t, exitOK, status, stderr)
			var c2 Credentials
			require.NoError(t, json.Unmarshal([]byte(stdout), &c2))
			require.NotEqual(t, c.MchID, c2.MchID)
			require.Equal(t, c.PlatformSerialNo, c2.PlatformSerialNo)
			require.Equal(t, paygate.MerchantPending, c2.Status, "not --sandbox: pending review")
			checkCredentials(t, u, key, c2)
		})
	}
}

func TestMerchantCommands(t *testing.T) {
	t.Parallel()
	u := storetest.URL(t, store.SQLite)
	key := merchant.NewMasterKey()
	env := map[string]string{"PAYGATE_DATABASE_URL": u, masterKeyEnv: key, "PAYGATE_LOG_LEVEL": "warn"}
	run := func(args ...string) (int, string, string) {
		t.Helper()
		return runChild(t, env, append([]string{"merchant"}, args...)...)
	}

	// The readable summary.
	status, stdout, stderr := run("create", "--name", "Readable", "--sandbox", "--ip", "203.0.113.0/24,198.51.100.7", "--notify-host", "hooks.example.com")
	require.Equal(t, exitOK, status, stderr)
	m := regexp.MustCompile(`(?m)^Created merchant (\d{10}) "Readable" \(SANDBOX, CNY, fee 60 bps\)\.$`).FindStringSubmatch(stdout)
	require.NotNil(t, m, stdout)
	mchid := m[1]
	for _, want := range []string{"merchant private key", "APIv3 key", "platform public key", "merchant key serial"} {
		require.Contains(t, stdout, want)
	}

	status, stdout, stderr = run("get", mchid, "--json")
	require.Equal(t, exitOK, status, stderr)
	var got paygate.Merchant
	require.NoError(t, json.Unmarshal([]byte(stdout), &got))
	require.Equal(t, []string{"203.0.113.0/24", "198.51.100.7/32"}, got.IPAllowList)
	require.Equal(t, []string{"hooks.example.com"}, got.NotifyHosts)

	// Keys: add a generated and an uploaded one, revoke the first.
	status, stdout, stderr = run("keys", "add", mchid, "--json", "--out", t.TempDir())
	require.Equal(t, exitOK, status, stderr)
	var added struct {
		Serial string `json:"merchant_serial_no"`
		File   string `json:"merchant_private_key_file"`
	}
	require.NoError(t, json.Unmarshal([]byte(stdout), &added))
	st, err := os.Stat(added.File)
	require.NoError(t, err)
	require.Equal(t, os.FileMode(0o600), st.Mode().Perm())

	k, err := signing.GenerateKey()
	require.NoError(t, err)
	pemFile := filepath.Join(t.TempDir(), "pub.pem")
	require.NoError(t, os.WriteFile(pemFile, signing.PublicKeyPEM(&k.PublicKey), 0o644))
	status, stdout, stderr = run("keys", "add", mchid, "--public-key", pemFile)
	require.Equal(t, exitOK, status, stderr)
	require.Contains(t, stdout, signing.SerialNo(&k.PublicKey))

	status, stdout, stderr = run("keys", "revoke", mchid, added.Serial)
	require.Equal(t, exitOK, status, stderr)
	status, stdout, stderr = run("keys", "list", mchid, "--json")
	require.Equal(t, exitOK, status, stderr)
	var keys []merchant.Key
	require.NoError(t, json.Unmarshal([]byte(stdout), &keys))
	require.Len(t, keys, 3)
	active := 0
	for _, k := range keys {
		if k.Active() {
			active++
		} else {
			require.Equal(t, added.Serial, k.SerialNo)
		}
	}
	require.Equal(t, 2, active)
	status, stdout, stderr = run("keys", "list", mchid)
	require.Equal(t, exitOK, status, stderr)
	require.Contains(t, stdout, "revoked")

	// Status changes follow the rules.
	status, stdout, stderr = run("status", mchid, "SUSPENDED")
	require.Equal(t, exitOK, status, stderr)
	require.Equal(t, "merchant "+mchid+" is SUSPENDED\n", stdout)
	status, _, stderr = run("status", mchid, "CLOSED")
	require.Equal(t, exitOK, status, stderr)
	status, _, stderr = run("status", mchid, "LIVE")
	require.Equal(t, exitUsage, status)
	require.Regexp(t, `^paygate merchant status: CONFLICT: a CLOSED merchant cannot become LIVE \(status\)$`, strings.TrimSpace(stderr))

	// Platform keys: list, then rotate now.
	status, stdout, stderr = run("platform-keys", "list", "--json")
	require.Equal(t, exitOK, status, stderr)
	var pks []merchant.PlatformKey
	require.NoError(t, json.Unmarshal([]byte(stdout), &pks))
	require.Len(t, pks, 1)
	status, stdout, stderr = run("platform-keys", "rotate", "--out", t.TempDir())
	require.Equal(t, exitOK, status, stderr)
	require.Contains(t, stdout, "platform key ")
	status, stdout, stderr = run("platform-keys", "list")
	require.Equal(t, exitOK, status, stderr)
	require.Equal(t, 3, strings.Count(stdout, "\n"), "header and two keys:\n%s", stdout)
}

func TestMerchantCommandErrors(t *testing.T) {
	t.Parallel()
	u := storetest.URL(t, store.SQLite)
	db, err := store.Open(context.Background(), u, store.Options{})
	require.NoError(t, err)
	_, err = db.Migrate(context.Background()) // before the commands run in parallel
	require.NoError(t, err)
	require.NoError(t, db.Close())
	tests := []struct {
		name   string
		env    map[string]string
		args   []string
		status int
		stderr string // regexp on the one line
	}{
		{"no subcommand", nil, []string{"merchant"}, exitUsage, ""},
		{"unknown subcommand", nil, []string{"merchant", "delete"}, exitUsage, `^paygate merchant: unknown subcommand "delete"`},
		{"create without name", nil, []string{"merchant", "create", "--db", u}, exitUsage, `^paygate merchant create: --name is required$`},
		{"bad fee", nil, []string{"merchant", "create", "--db", u, "--name", "x", "--fee-bps", "20000"}, exitUsage,
			`^paygate merchant create: INVALID_ARGUMENT: fee_rate_bps must be 0 to 10000 \(fee_rate_bps\)$`},
		{"bad currency", nil, []string{"merchant", "create", "--db", u, "--name", "x", "--currency", "ABC"}, exitUsage, `UNKNOWN_CURRENCY`},
		{"bad ip", nil, []string{"merchant", "create", "--db", u, "--name", "x", "--ip", "nowhere"}, exitUsage, `ip_allow_list`},
		{"missing public key file", nil, []string{"merchant", "create", "--db", u, "--name", "x", "--public-key", "/nonexistent.pem"}, exitUsage, `cannot read --public-key`},
		{"bad database", nil, []string{"merchant", "create", "--db", "mysql://root:hunter2@x/y", "--name", "x"}, exitUsage, `invalid --db`},
		{"bad master key", map[string]string{masterKeyEnv: "hunter2"}, []string{"merchant", "create", "--db", u, "--name", "x"}, exitFailure,
			`^paygate merchant create: invalid \$PAYGATE_MASTER_KEY: master key 1 is not standard base64$`},
		{"short master key", map[string]string{masterKeyEnv: "aHVudGVyMg=="}, []string{"merchant", "create", "--db", u, "--name", "x"}, exitFailure,
			`must be 32 bytes`},
		{"get unknown", nil, []string{"merchant", "get", "1234567890", "--db", u}, exitUsage, `NOT_FOUND: no such merchant`},
		{"get wants an argument", nil, []string{"merchant", "get", "--db", u}, exitUsage, `want 1 argument`},
		{"bad status", nil, []string{"merchant", "status", "1234567890", "open", "--db", u}, exitUsage, `status must be SANDBOX`},
		{"revoke unknown", nil, []string{"merchant", "keys", "revoke", "1234567890", "ABC", "--db", u}, exitUsage, `NOT_FOUND`},
		{"keys without subcommand", nil, []string{"merchant", "keys"}, exitUsage, `want a subcommand`},
		{"bad rotation time", nil, []string{"merchant", "platform-keys", "rotate", "--at", "tomorrow", "--db", u}, exitUsage, `invalid --at`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			env := map[string]string{"PAYGATE_LOG_LEVEL": "error", masterKeyEnv: merchant.NewMasterKey()}
			for k, v := range tt.env {
				env[k] = v
			}
			status, stdout, stderr := runChild(t, env, tt.args...)
			require.Equal(t, tt.status, status, "stdout:\n%s\nstderr:\n%s", stdout, stderr)
			if tt.stderr != "" {
				require.NotContains(t, strings.TrimSpace(stderr), "\n", "one line")
				require.Regexp(t, tt.stderr, strings.TrimSpace(stderr))
			}
			require.NotContains(t, stdout+stderr, "hunter2")
		})
	}
}

// TestMasterKeyFile: without PAYGATE_MASTER_KEY the first command
// generates data/master.key (0600) with a warning, and later commands use
// the same key.
func TestMasterKeyFile(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	u := "sqlite:" + filepath.Join(dir, "paygate.db")
	status, stdout, stderr := runChild(t, nil, "merchant", "create", "--db", u, "--name", "A", "--sandbox", "--json")
	require.Equal(t, exitOK, status, stderr)
	require.Contains(t, stderr, "generated a master key")
	st, err := os.Stat(filepath.Join(dir, masterKeyFile))
	require.NoError(t, err)
	require.Equal(t, os.FileMode(0o600), st.Mode().Perm())
	b, err := os.ReadFile(filepath.Join(dir, masterKeyFile))
	require.NoError(t, err)
	var c Credentials
	require.NoError(t, json.Unmarshal([]byte(stdout), &c))
	require.Equal(t, dir, filepath.Dir(c.MerchantPrivateKeyFile), "the default --out is the data directory")
	checkCredentials(t, u, strings.TrimSpace(string(b)), c)

	status, _, stderr = runChild(t, nil, "merchant", "get", c.MchID, "--db", u)
	require.Equal(t, exitOK, status, stderr)
	require.Contains(t, stderr, "using the master key file")
	require.NotContains(t, stderr, strings.TrimSpace(string(b)), "the key itself is never logged")
}

// TestServeDemoMerchant: serve on a fresh SQLite database creates the demo
// merchant and logs where its credentials are; the next start reuses it.
func TestServeDemoMerchant(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	u := "sqlite:" + filepath.Join(dir, "paygate.db")
	key := merchant.NewMasterKey()
	env := map[string]string{"PAYGATE_DATABASE_URL": u, "PAYGATE_LOG_FORMAT": "json", masterKeyEnv: key}
	start := func() (string, map[string]any) {
		c := startChild(t, "1", env, "serve", "--listen", "127.0.0.1:0")
		var demo map[string]any
		c.waitLine(t, "demo merchant log", func(l string) bool {
			var rec map[string]any
			if json.Unmarshal([]byte(l), &rec) == nil && strings.HasPrefix(rec["msg"].(string), "demo merchant") {
				demo = rec
				return true
			}
			return false
		})
		c.waitLog(t, "listening")
		require.NoError(t, c.cmd.Process.Signal(syscall.SIGTERM))
		require.Equal(t, exitOK, c.wait(t), c.output())
		require.NotContains(t, c.output(), key)
		return demo["msg"].(string), demo
	}
	msg, rec := start()
	require.Equal(t, "demo merchant created: its credentials are in the file", msg)
	file := filepath.Join(dir, demoMerchantFile)
	require.Equal(t, file, rec["file"])
	st, err := os.Stat(file)
	require.NoError(t, err)
	require.Equal(t, os.FileMode(0o600), st.Mode().Perm())
	b, err := os.ReadFile(file)
	require.NoError(t, err)
	var c Credentials
	require.NoError(t, json.NewDecoder(bytes.NewReader(b)).Decode(&c))
	require.Equal(t, "Demo Shop", c.Name)
	require.Equal(t, paygate.MerchantSandbox, c.Status)
	require.Equal(t, c.MchID, rec["mchid"])
	checkCredentials(t, u, key, c)

	msg, rec = start()
	require.Equal(t, "demo merchant ready: its credentials are in the file", msg)
	require.Equal(t, c.MchID, rec["mchid"], "reused")
	again, err := os.ReadFile(file)
	require.NoError(t, err)
	require.Equal(t, string(b), string(again))
}

// TestDemoMerchantNotOnAPopulatedDatabase: a database that already has
// merchants but no demo file gets no demo merchant.
func TestDemoMerchantNotOnAPopulatedDatabase(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	u := "sqlite:" + filepath.Join(dir, "paygate.db")
	db, err := store.Open(context.Background(), u, store.Options{})
	require.NoError(t, err)
	defer db.Close()
	_, err = db.Migrate(context.Background())
	require.NoError(t, err)
	kr, err := merchant.ParseKeyring(merchant.NewMasterKey())
	require.NoError(t, err)
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	svc, err := merchant.New(merchant.Config{Store: db.Merchants(), Clock: paygate.SystemClock{}, Keyring: kr, Logger: log})
	require.NoError(t, err)
	k, err := signing.GenerateKey()
	require.NoError(t, err)
	_, err = svc.Create(context.Background(), merchant.CreateRequest{Name: "Real", PublicKeyPEM: signing.PublicKeyPEM(&k.PublicKey)})
	require.NoError(t, err)
	path, err := ensureDemoMerchant(context.Background(), svc, dir, log)
	require.NoError(t, err)
	require.Empty(t, path)
	_, err = os.Stat(filepath.Join(dir, demoMerchantFile))
	require.ErrorIs(t, err, os.ErrNotExist)
}

func TestDataDir(t *testing.T) {
	t.Parallel()
	for in, want := range map[string]string{
		"":                             "data",
		"sqlite:":                      "data",
		"sqlite:/var/lib/paygate/x.db": "/var/lib/paygate",
		"sqlite://rel/x.db":            "rel",
		"sqlite:x.db":                  ".",
		"postgres://u@h/db":            "data",
	} {
		require.Equal(t, want, dataDir(Config{DatabaseURL: in}), in)
	}
}
