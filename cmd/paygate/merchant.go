package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"text/tabwriter"
	"time"

	"paygate"
	"paygate/merchant"
	"paygate/signing"
	"paygate/store"
)

// masterKeyEnv names the variable holding the master key(s) that seal
// secrets at rest: standard base64 of 32 bytes; several separated by
// commas during a rotation, the first sealing. There is deliberately no
// flag: a flag would show the key in the process list.
const masterKeyEnv = "PAYGATE_MASTER_KEY"

// masterKeyFile is the file, under the data directory, that holds a master
// key generated because PAYGATE_MASTER_KEY was not set (sandbox and
// development only).
const masterKeyFile = "master.key"

// demoMerchantFile is the file, under the data directory, that holds the
// demo merchant's credentials.
const demoMerchantFile = "demo-merchant.json"

// dataDir is where paygate keeps its local files: the directory of the
// SQLite database, or "data" (the default database's directory) with
// PostgreSQL.
func dataDir(cfg Config) string {
	if strings.HasPrefix(cfg.DatabaseURL, "sqlite:") {
		p := strings.TrimPrefix(strings.TrimPrefix(cfg.DatabaseURL, "sqlite:"), "//")
		if p != "" {
			return filepath.Dir(p)
		}
	}
	return filepath.Dir(store.DefaultSQLitePath)
}

// masterKeyring returns the master keys from PAYGATE_MASTER_KEY or, when
// it is not set, from the data directory's master.key file, generating the
// file (0600) on first use with a warning: fine for sandbox and
// development, never for production, where the key must come from a secret
// store and be the same for every process sharing the database.
func (a *app) masterKeyring(cfg Config, log *slog.Logger) (*merchant.Keyring, error) {
	if v := a.getenv(masterKeyEnv); v != "" {
		kr, err := merchant.ParseKeyring(v)
		if err != nil {
			return nil, fmt.Errorf("invalid $%s: %s", masterKeyEnv, safeMessage(err))
		}
		return kr, nil
	}
	dir := dataDir(cfg)
	path := filepath.Join(dir, masterKeyFile)
	generated := false
	b, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		if err := os.MkdirAll(dir, 0o700); err != nil {
			return nil, fmt.Errorf("cannot create %s: %w", dir, err)
		}
		// Write a temporary file, then link it into place: the file
		// appears whole or not at all, and of processes racing here
		// exactly one wins and the others read its key.
		ferr := createFileAtomic(path, []byte(merchant.NewMasterKey()+"\n"), 0o600)
		switch {
		case ferr == nil:
			generated = true
			log.Warn("$"+masterKeyEnv+" is not set: generated a master key for secrets at rest and saved it (mode 0600); "+
				"fine for sandbox and development, but in production set "+masterKeyEnv+" from a secret store", "file", path)
		case errors.Is(ferr, fs.ErrExist): // another process created it first
		default:
			return nil, fmt.Errorf("cannot create the master key file %s: %w", path, ferr)
		}
		b, err = os.ReadFile(path)
	}
	if err != nil {
		return nil, fmt.Errorf("cannot read the master key file %s: %w", path, err)
	}
	kr, err := merchant.ParseKeyring(strings.TrimSpace(string(b)))
	if err != nil {
		return nil, fmt.Errorf("the master key file %s is invalid: %s", path, safeMessage(err))
	}
	if st, err := os.Stat(path); err == nil && st.Mode().Perm()&0o077 != 0 {
		log.Warn("the master key file is readable by other users; chmod 600 it", "file", path, "mode", st.Mode().Perm().String())
	}
	if generated {
		return kr, nil
	}
	log.Warn("$"+masterKeyEnv+" is not set: using the master key file (sandbox and development only; "+
		"every process sharing the database must use the same key)", "file", path, "key_id", kr.KeyID())
	return kr, nil
}

// newMerchants returns the merchant service over db with the configured
// master key.
func (a *app) newMerchants(cfg Config, db *store.DB, log *slog.Logger) (*merchant.Service, error) {
	kr, err := a.masterKeyring(cfg, log)
	if err != nil {
		return nil, err
	}
	return newMerchantsWith(kr, db, log)
}

// newMerchantsWith returns the merchant service over db sealing with kr.
func newMerchantsWith(kr *merchant.Keyring, db *store.DB, log *slog.Logger) (*merchant.Service, error) {
	return merchant.New(merchant.Config{Store: db.Merchants(), Clock: paygate.SystemClock{}, Keyring: kr, Logger: log})
}

// Credentials is what `paygate merchant create --json` prints and what the
// demo merchant's file holds. The field names are a fixed contract.
type Credentials struct {
	MchID                  string                 `json:"mchid"`
	Name                   string                 `json:"name"`
	Status                 paygate.MerchantStatus `json:"status"`
	SettlementCurrency     paygate.Currency       `json:"settlement_currency"`
	FeeRateBps             int64                  `json:"fee_rate_bps"`
	MerchantSerialNo       string                 `json:"merchant_serial_no"`
	MerchantPrivateKeyFile string                 `json:"merchant_private_key_file"`
	APIv3Key               string                 `json:"apiv3_key"`
	PlatformSerialNo       string                 `json:"platform_serial_no"`
	PlatformPublicKeyFile  string                 `json:"platform_public_key_file"`
}

// createFileAtomic creates path holding b (mode perm) whole or not at all;
// it fails with an error matching fs.ErrExist when path exists.
func createFileAtomic(path string, b []byte, perm os.FileMode) error {
	tmp, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".*")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name())
	err = tmp.Chmod(perm)
	if err == nil {
		_, err = tmp.Write(b)
	}
	if serr := tmp.Sync(); err == nil {
		err = serr
	}
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return err
	}
	return os.Link(tmp.Name(), path)
}

// writeNewFile writes b to a file that must not exist yet, with mode perm.
func writeNewFile(path string, b []byte, perm os.FileMode) error {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, perm)
	if err != nil {
		return err
	}
	_, err = f.Write(b)
	if serr := f.Sync(); err == nil {
		err = serr
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		os.Remove(path)
	}
	return err
}

// writeFileAtomic replaces path with b (mode perm) through a rename.
func writeFileAtomic(path string, b []byte, perm os.FileMode) error {
	tmp, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".*")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name())
	if err := tmp.Chmod(perm); err != nil {
		tmp.Close()
		return err
	}
	_, err = tmp.Write(b)
	if serr := tmp.Sync(); err == nil {
		err = serr
	}
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return err
	}
	return os.Rename(tmp.Name(), path)
}

// privateKeyPath and platformKeyPath name the PEM files in dir.
func privateKeyPath(dir, mchid, serial string) string {
	return filepath.Join(dir, "merchant-"+mchid+"-"+serial+"-private-key.pem")
}

func platformKeyPath(dir, serial string) string {
	return filepath.Join(dir, "platform-"+serial+"-public-key.pem")
}

// writePlatformKey writes the platform public key PEM into dir and returns
// its absolute path.
func writePlatformKey(dir string, pk merchant.PlatformKey) (string, error) {
	path, err := filepath.Abs(platformKeyPath(dir, pk.SerialNo))
	if err != nil {
		return "", err
	}
	if err := writeFileAtomic(path, []byte(pk.PublicKeyPEM), 0o644); err != nil {
		return "", fmt.Errorf("cannot write the platform public key: %w", err)
	}
	return path, nil
}

// issueCredentials creates a merchant with a generated key pair (unless
// req carries a public key) and the platform key if there is none, writes
// the merchant's private key (0600) and the platform public key into dir,
// and returns the credentials.
func issueCredentials(ctx context.Context, svc *merchant.Service, req merchant.CreateRequest, dir string) (Credentials, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return Credentials{}, fmt.Errorf("cannot create %s: %w", dir, err)
	}
	created, err := svc.Create(ctx, req)
	if err != nil {
		return Credentials{}, err
	}
	m := created.Merchant
	c := Credentials{MchID: m.ID, Name: m.Name, Status: m.Status, SettlementCurrency: m.SettlementCurrency,
		FeeRateBps: m.FeeRateBps, MerchantSerialNo: created.Key.SerialNo, APIv3Key: created.APIv3Key}
	if created.PrivateKey != nil { // written first: it exists nowhere else
		if c.MerchantPrivateKeyFile, err = filepath.Abs(privateKeyPath(dir, m.ID, created.Key.SerialNo)); err == nil {
			err = writeNewFile(c.MerchantPrivateKeyFile, signing.PrivateKeyPEM(created.PrivateKey), 0o600)
		}
		if err != nil {
			return c, fmt.Errorf("merchant %s was created but its private key could not be written (revoke key %s and add another): %w",
				m.ID, created.Key.SerialNo, err)
		}
	}
	pk, err := svc.EnsurePlatformKey(ctx)
	if err != nil {
		return c, err
	}
	c.PlatformSerialNo = pk.SerialNo
	if c.PlatformPublicKeyFile, err = writePlatformKey(dir, pk); err != nil {
		return c, err
	}
	return c, nil
}

// ensureDemoMerchant makes sure the sandbox demo merchant exists and its
// credentials are in dir/demo-merchant.json (0600) with its PEM files. On a
// database without merchants it creates "Demo Shop"; when the file names a
// merchant that exists it reuses it (refreshing the platform key in it if
// that rotated); when the database has other merchants but no demo file it
// does nothing. It returns the file's path, or "" when there is no demo
// merchant.
func ensureDemoMerchant(ctx context.Context, svc *merchant.Service, dir string, log *slog.Logger) (string, error) {
	path, err := filepath.Abs(filepath.Join(dir, demoMerchantFile))
	if err != nil {
		return "", err
	}
	var c Credentials
	if b, err := os.ReadFile(path); err == nil && json.Unmarshal(b, &c) == nil && c.MchID != "" {
		if _, err := svc.Get(ctx, c.MchID); err == nil {
			pk, err := svc.EnsurePlatformKey(ctx)
			if err != nil {
				return "", err
			}
			if pk.SerialNo != c.PlatformSerialNo {
				if c.PlatformPublicKeyFile, err = writePlatformKey(dir, pk); err != nil {
					return "", err
				}
				c.PlatformSerialNo = pk.SerialNo
				b, _ := json.MarshalIndent(c, "", "  ")
				if err := writeFileAtomic(path, append(b, '\n'), 0o600); err != nil {
					return "", fmt.Errorf("cannot update %s: %w", path, err)
				}
			}
			log.Info("demo merchant ready: its credentials are in the file", "file", path, "mchid", c.MchID)
			return path, nil
		} else if !paygate.HasCode(err, paygate.CodeNotFound) {
			return "", err
		}
	}
	has, err := svc.HasMerchants(ctx)
	if err != nil {
		return "", err
	}
	if has {
		log.Info("no demo merchant: the database already has merchants", "file", path)
		return "", nil
	}
	c, err = issueCredentials(ctx, svc, merchant.CreateRequest{Name: "Demo Shop", Sandbox: true}, dir)
	if err != nil {
		return "", fmt.Errorf("cannot create the demo merchant: %w", err)
	}
	b, _ := json.MarshalIndent(c, "", "  ")
	if err := writeFileAtomic(path, append(b, '\n'), 0o600); err != nil {
		return "", fmt.Errorf("cannot write %s: %w", path, err)
	}
	log.Info("demo merchant created: its credentials are in the file", "file", path, "mchid", c.MchID,
		"merchant_private_key_file", c.MerchantPrivateKeyFile, "platform_public_key_file", c.PlatformPublicKeyFile)
	return path, nil
}

const merchantUsage = `usage:
  paygate merchant create --name NAME [--sandbox] [--json] [--fee-bps N] [--currency CNY]
                          [--parent MCHID] [--ip CIDR]... [--notify-host HOST]...
                          [--public-key FILE] [--out DIR] [--db URL]
  paygate merchant get MCHID [--json]
  paygate merchant status MCHID STATUS     SANDBOX, PENDING_REVIEW, LIVE, SUSPENDED or CLOSED
  paygate merchant keys list MCHID [--json]
  paygate merchant keys add MCHID [--public-key FILE] [--out DIR] [--json]
  paygate merchant keys revoke MCHID SERIAL_NO
  paygate merchant platform-keys list [--json]
  paygate merchant platform-keys rotate [--at RFC3339] [--out DIR]

create makes a merchant with a generated RSA-2048 key pair (or your
--public-key), an APIv3 key and, if there is none, the platform's signing
key; it writes the merchant's private key (mode 0600; hand it to the
merchant, paygate keeps only the public key) and the platform's public key
into --out (default: the data directory). --json prints one JSON object:
mchid, merchant_serial_no, merchant_private_key_file, apiv3_key,
platform_serial_no, platform_public_key_file, ...

Every subcommand takes --db / $PAYGATE_DATABASE_URL, --log-level and
--log-format like serve, and reads the master key from $PAYGATE_MASTER_KEY
(base64 of 32 bytes; if unset, from <data dir>/master.key, generated on
first use: sandbox and development only).
`

// listFlag collects a repeatable flag; a value may also hold a
// comma-separated list.
type listFlag []string

// String joins the values with commas.
func (l *listFlag) String() string { return strings.Join(*l, ",") }

// Set adds the comma-separated values of one flag occurrence.
func (l *listFlag) Set(v string) error {
	for _, p := range strings.Split(v, ",") {
		if p = strings.TrimSpace(p); p != "" {
			*l = append(*l, p)
		}
	}
	return nil
}

// merchantFlags parses args for a merchant subcommand: flags may come
// before, between or after the positional arguments.
func (a *app) merchantFlags(name string, args []string, extra func(*flag.FlagSet)) (Config, []string, error) {
	fs := flag.NewFlagSet("paygate merchant "+name, flag.ContinueOnError)
	fs.SetOutput(a.stderr)
	vals := bindSettings(fs, []setting{settingDB, settingLogLevel, settingLogFormat}, a.getenv)
	if extra != nil {
		extra(fs)
	}
	fs.Usage = func() {
		fmt.Fprint(a.stderr, merchantUsage+"\nflags of "+name+":\n")
		fs.PrintDefaults()
	}
	var pos []string
	for {
		if err := fs.Parse(args); err != nil {
			return Config{}, nil, err
		}
		args = fs.Args()
		if len(args) == 0 {
			break
		}
		pos, args = append(pos, args[0]), args[1:]
	}
	cfg, err := resolve(vals)
	return cfg, pos, err
}

// merchant runs `paygate merchant ...`.
func (a *app) merchant(args []string) int {
	if len(args) == 0 {
		fmt.Fprint(a.stderr, merchantUsage)
		return exitUsage
	}
	sub, rest := args[0], args[1:]
	if sub == "keys" || sub == "platform-keys" {
		if len(rest) == 0 {
			return a.fail(exitUsage, "merchant "+sub, "want a subcommand (see paygate merchant -h)")
		}
		sub, rest = sub+" "+rest[0], rest[1:]
	}
	var (
		name, currency, publicKey, out, at string
		sandbox, asJSON                    bool
		fee                                int64
		ips, hosts                         listFlag
		parent                             string
		want                               int // positional arguments
	)
	var extra func(fs *flag.FlagSet)
	jsonFlag := func(fs *flag.FlagSet) { fs.BoolVar(&asJSON, "json", false, "print JSON") }
	outFlag := func(fs *flag.FlagSet) {
		fs.StringVar(&out, "out", "", "directory the PEM files are written to (default: the data directory)")
	}
	switch sub {
	case "create":
		extra = func(fs *flag.FlagSet) {
			fs.StringVar(&name, "name", "", "the merchant's name (required)")
			fs.BoolVar(&sandbox, "sandbox", false, "create a SANDBOX merchant (else PENDING_REVIEW)")
			fs.Int64Var(&fee, "fee-bps", merchant.DefaultFeeRateBps, "platform fee in basis points (0-10000)")
			fs.StringVar(&currency, "currency", string(merchant.DefaultCurrency), "settlement currency (ISO 4217)")
			fs.StringVar(&parent, "parent", "", "mchid of the platform merchant this is a sub-merchant of")
			fs.Var(&ips, "ip", "allowed client IP or CIDR (repeat or comma-separate; none allows any)")
			fs.Var(&hosts, "notify-host", "allowed notify_url host (repeat or comma-separate)")
			fs.StringVar(&publicKey, "public-key", "", "PEM file of the merchant's own RSA public key (no key pair is generated)")
			jsonFlag(fs)
			outFlag(fs)
		}
	case "get", "keys list":
		want, extra = 1, jsonFlag
	case "status":
		want = 2
	case "keys add":
		want = 1
		extra = func(fs *flag.FlagSet) {
			fs.StringVar(&publicKey, "public-key", "", "PEM file of the merchant's own RSA public key (else a pair is generated)")
			jsonFlag(fs)
			outFlag(fs)
		}
	case "keys revoke":
		want = 2
	case "platform-keys list":
		extra = jsonFlag
	case "platform-keys rotate":
		extra = func(fs *flag.FlagSet) {
			fs.StringVar(&at, "at", "", "when the new key takes over (RFC 3339; default now)")
			outFlag(fs)
		}
	case "-h", "-help", "--help", "help":
		fmt.Fprint(a.stdout, merchantUsage)
		return exitOK
	default:
		return a.fail(exitUsage, "merchant", "unknown subcommand %q (see paygate merchant -h)", sub)
	}
	cmd := "merchant " + sub
	cfg, pos, err := a.merchantFlags(sub, rest, extra)
	if errors.Is(err, flag.ErrHelp) {
		return exitOK
	}
	if err != nil {
		return a.fail(exitUsage, cmd, "%v", err)
	}
	if len(pos) != want {
		return a.fail(exitUsage, cmd, "want %d argument(s), got %d (see paygate merchant -h)", want, len(pos))
	}
	if sub == "create" && strings.TrimSpace(name) == "" {
		return a.fail(exitUsage, cmd, "--name is required")
	}
	var activate time.Time
	if at != "" {
		if activate, err = time.Parse(time.RFC3339, at); err != nil {
			return a.fail(exitUsage, cmd, "invalid --at: want RFC 3339 such as 2030-01-02T15:04:05Z")
		}
	}
	var pemBytes []byte
	if publicKey != "" {
		if pemBytes, err = os.ReadFile(publicKey); err != nil {
			return a.fail(exitUsage, cmd, "cannot read --public-key: %v", err)
		}
	}
	if out == "" {
		out = dataDir(cfg)
	}

	log := newLogger(a.stderr, cfg)
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, os.Interrupt)
	defer stop()
	db, _, err := openAndMigrate(ctx, cfg)
	if err != nil {
		return a.fail(exitFailure, cmd, "%v", err)
	}
	defer db.Close()
	svc, err := a.newMerchants(cfg, db, log)
	if err != nil {
		return a.fail(exitFailure, cmd, "%v", err)
	}
	failed := func(err error) int {
		status := exitFailure
		switch paygate.CodeOf(err) {
		case paygate.CodeInternal, paygate.CodeUnavailable:
		default:
			status = exitUsage // the input was refused
		}
		return a.fail(status, cmd, "%s", userMessage(err))
	}

	switch sub {
	case "create":
		req := merchant.CreateRequest{Name: name, ParentID: parent, Sandbox: sandbox, SettlementCurrency: paygate.Currency(currency),
			FeeRateBps: &fee, NotifyHosts: hosts, IPAllowList: ips, PublicKeyPEM: pemBytes}
		c, err := issueCredentials(ctx, svc, req, out)
		if err != nil {
			return failed(err)
		}
		if asJSON {
			return a.printJSON(c)
		}
		fmt.Fprintf(a.stdout, "Created merchant %s %q (%s, %s, fee %d bps).\n\n", c.MchID, c.Name, c.Status, c.SettlementCurrency, c.FeeRateBps)
		w := tabwriter.NewWriter(a.stdout, 0, 0, 2, ' ', 0)
		fmt.Fprintf(w, "  mchid\t%s\n", c.MchID)
		fmt.Fprintf(w, "  merchant key serial\t%s\n", c.MerchantSerialNo)
		if c.MerchantPrivateKeyFile != "" {
			fmt.Fprintf(w, "  merchant private key\t%s\n", c.MerchantPrivateKeyFile)
		}
		fmt.Fprintf(w, "  APIv3 key\t%s\n", c.APIv3Key)
		fmt.Fprintf(w, "  platform key serial\t%s\n", c.PlatformSerialNo)
		fmt.Fprintf(w, "  platform public key\t%s\n", c.PlatformPublicKeyFile)
		w.Flush()
		fmt.Fprint(a.stdout, "\nHand the merchant its private key file (paygate keeps only the public key), the APIv3 key\n"+
			"(shown this once; it decrypts notifications) and the platform public key (it verifies\n"+
			"paygate's responses and notifications).\n")
		return exitOK

	case "get":
		m, err := svc.Get(ctx, pos[0])
		if err != nil {
			return failed(err)
		}
		if asJSON {
			return a.printJSON(m)
		}
		fmt.Fprintf(a.stdout, "%s %q %s %s fee=%dbps parent=%s ip_allow_list=%s notify_hosts=%s created=%s\n", m.ID, m.Name, m.Status,
			m.SettlementCurrency, m.FeeRateBps, orDash(m.ParentID), orDash(strings.Join(m.IPAllowList, ",")),
			orDash(strings.Join(m.NotifyHosts, ",")), m.CreatedAt.Format(time.RFC3339))
		return exitOK

	case "status":
		st, err := merchant.ParseStatus(pos[1])
		if err != nil {
			return failed(err)
		}
		m, err := svc.SetStatus(ctx, pos[0], st)
		if err != nil {
			return failed(err)
		}
		fmt.Fprintf(a.stdout, "merchant %s is %s\n", m.ID, m.Status)
		return exitOK

	case "keys list":
		ks, err := svc.Keys(ctx, pos[0])
		if err != nil {
			return failed(err)
		}
		if asJSON {
			return a.printJSON(ks)
		}
		w := tabwriter.NewWriter(a.stdout, 0, 0, 2, ' ', 0)
		fmt.Fprintln(w, "SERIAL_NO\tSOURCE\tCREATED\tSTATE")
		for _, k := range ks {
			state := "active"
			if !k.Active() {
				state = "revoked " + k.RevokedAt.Format(time.RFC3339)
			}
			fmt.Fprintf(w, "%s\t%s\t%s\t%s\n", k.SerialNo, k.Source, k.CreatedAt.Format(time.RFC3339), state)
		}
		w.Flush()
		return exitOK

	case "keys add":
		type added struct {
			MchID                  string `json:"mchid"`
			MerchantSerialNo       string `json:"merchant_serial_no"`
			MerchantPrivateKeyFile string `json:"merchant_private_key_file,omitempty"`
		}
		var res added
		if pemBytes != nil {
			k, err := svc.AddPublicKey(ctx, pos[0], pemBytes)
			if err != nil {
				return failed(err)
			}
			res = added{MchID: k.MerchantID, MerchantSerialNo: k.SerialNo}
		} else {
			if err := os.MkdirAll(out, 0o700); err != nil {
				return a.fail(exitFailure, cmd, "cannot create %s: %v", out, err)
			}
			k, priv, err := svc.GenerateKey(ctx, pos[0])
			if err != nil {
				return failed(err)
			}
			res = added{MchID: k.MerchantID, MerchantSerialNo: k.SerialNo}
			if res.MerchantPrivateKeyFile, err = filepath.Abs(privateKeyPath(out, k.MerchantID, k.SerialNo)); err == nil {
				err = writeNewFile(res.MerchantPrivateKeyFile, signing.PrivateKeyPEM(priv), 0o600)
			}
			if err != nil {
				return a.fail(exitFailure, cmd, "key %s was added but its private key could not be written (revoke it): %v", k.SerialNo, err)
			}
		}
		if asJSON {
			return a.printJSON(res)
		}
		fmt.Fprintf(a.stdout, "merchant %s: key %s added and active", res.MchID, res.MerchantSerialNo)
		if res.MerchantPrivateKeyFile != "" {
			fmt.Fprintf(a.stdout, "; private key in %s", res.MerchantPrivateKeyFile)
		}
		fmt.Fprintln(a.stdout)
		return exitOK

	case "keys revoke":
		if err := svc.RevokeKey(ctx, pos[0], pos[1]); err != nil {
			return failed(err)
		}
		fmt.Fprintf(a.stdout, "merchant %s: key %s revoked\n", pos[0], pos[1])
		return exitOK

	case "platform-keys list":
		if _, err := svc.EnsurePlatformKey(ctx); err != nil {
			return failed(err)
		}
		pks, err := svc.PlatformKeys(ctx)
		if err != nil {
			return failed(err)
		}
		if asJSON {
			return a.printJSON(pks)
		}
		w := tabwriter.NewWriter(a.stdout, 0, 0, 2, ' ', 0)
		fmt.Fprintln(w, "SERIAL_NO\tVALID_FROM\tVALID_UNTIL")
		for _, k := range pks {
			fmt.Fprintf(w, "%s\t%s\t%s\n", k.SerialNo, k.ValidFrom.Format(time.RFC3339), k.ValidUntil.Format(time.RFC3339))
		}
		w.Flush()
		return exitOK

	case "platform-keys rotate":
		pk, err := svc.RotatePlatformKey(ctx, activate)
		if err != nil {
			return failed(err)
		}
		if err := os.MkdirAll(out, 0o700); err != nil {
			return a.fail(exitFailure, cmd, "cannot create %s: %v", out, err)
		}
		file, err := writePlatformKey(out, pk)
		if err != nil {
			return a.fail(exitFailure, cmd, "%v", err)
		}
		fmt.Fprintf(a.stdout, "platform key %s signs from %s; public key in %s\n", pk.SerialNo, pk.ValidFrom.Format(time.RFC3339), file)
		return exitOK
	}
	return exitUsage
}

// userMessage is err's text for the operator: the safe message of a
// paygate error (with its field), plus the cause of an internal one, which
// the operator running the command may see.
func userMessage(err error) string {
	var pe *paygate.Error
	if !errors.As(err, &pe) {
		return err.Error()
	}
	msg := string(pe.Code) + ": " + pe.Message
	if pe.Field != "" {
		msg += " (" + pe.Field + ")"
	}
	if pe.Code == paygate.CodeInternal || pe.Code == paygate.CodeUnavailable {
		msg = err.Error()
	}
	return msg
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

// printJSON prints v as one line of JSON.
func (a *app) printJSON(v any) int {
	b, err := json.Marshal(v)
	if err != nil {
		return a.fail(exitFailure, "merchant", "%v", err)
	}
	fmt.Fprintf(a.stdout, "%s\n", b)
	return exitOK
}
