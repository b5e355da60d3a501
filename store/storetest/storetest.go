// Package storetest gives tests a fresh, migrated paygate database on each
// dialect. Run every store-touching test through Each so it runs against
// SQLite and PostgreSQL alike.
//
// PostgreSQL is found or started as follows: $PAYGATE_TEST_POSTGRES_URL if
// set; else the server on 127.0.0.1:5432 if it answers; else a throwaway
// server this package initialises under the system temp directory and
// starts on port 54329 (as the postgres user when run as root, since
// PostgreSQL refuses to run as root). The throwaway server is shared by the
// test binaries of one run (a file lock serialises start-up) and keeps
// running afterwards so the next run starts fast. When CI=true a missing
// PostgreSQL fails the test instead of skipping it.
package storetest

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"fmt"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"sync"
	"syscall"
	"testing"
	"time"

	_ "github.com/jackc/pgx/v5/stdlib"

	"paygate/store"
)

// ThrowawayPort is where a PostgreSQL started by this package listens.
const ThrowawayPort = 54329

// Each runs fn as two parallel subtests, "sqlite" and "postgres", each with
// its own freshly migrated database that is removed when the subtest ends.
func Each(t *testing.T, fn func(t *testing.T, db *store.DB)) {
	t.Helper()
	for _, d := range []store.Dialect{store.SQLite, store.Postgres} {
		t.Run(string(d), func(t *testing.T) {
			t.Parallel()
			fn(t, Open(t, d))
		})
	}
}

// Open returns a fresh migrated database of the dialect for t.
func Open(t testing.TB, d store.Dialect) *store.DB {
	t.Helper()
	u := URL(t, d)
	ctx := context.Background()
	db, err := store.Open(ctx, u, store.Options{MaxOpenConns: 8})
	if err != nil {
		t.Fatalf("storetest: open %s: %v", d, err)
	}
	t.Cleanup(func() { db.Close() })
	if _, err := db.Migrate(ctx); err != nil {
		t.Fatalf("storetest: migrate %s: %v", d, err)
	}
	return db
}

// URL returns a database URL for a fresh, empty database of the dialect:
// a new SQLite file, or a new PostgreSQL schema (dropped at cleanup).
func URL(t testing.TB, d store.Dialect) string {
	t.Helper()
	if d == store.SQLite {
		return "sqlite:" + filepath.Join(t.TempDir(), "paygate.db")
	}
	base := PostgresURL(t)
	schema := "t_" + randHex(8)
	admin, err := sql.Open("pgx", base)
	if err != nil {
		t.Fatalf("storetest: %v", err)
	}
	defer admin.Close()
	if _, err := admin.Exec(`CREATE SCHEMA ` + schema); err != nil {
		t.Fatalf("storetest: create schema: %v", err)
	}
	t.Cleanup(func() {
		a, err := sql.Open("pgx", base)
		if err == nil {
			a.Exec(`DROP SCHEMA ` + schema + ` CASCADE`)
			a.Close()
		}
	})
	pu, _ := url.Parse(base)
	q := pu.Query()
	q.Set("search_path", schema)
	pu.RawQuery = q.Encode()
	return pu.String()
}

func randHex(n int) string {
	b := make([]byte, n)
	rand.Read(b)
	return hex.EncodeToString(b)
}

var (
	pgOnce sync.Once
	pgURL  string
	pgErr  error
)

// PostgresURL returns the URL of a reachable PostgreSQL server's "postgres"
// database, finding or starting one (see the package comment). It skips the
// test when none can be had, or fails it when CI=true.
func PostgresURL(t testing.TB) string {
	t.Helper()
	pgOnce.Do(func() { pgURL, pgErr = findOrStart() })
	if pgErr != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("storetest: PostgreSQL is required in CI: %v", pgErr)
		}
		t.Skipf("storetest: no PostgreSQL: %v", pgErr)
	}
	return pgURL
}

func answers(u string) bool {
	db, err := sql.Open("pgx", u)
	if err != nil {
		return false
	}
	defer db.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	return db.PingContext(ctx) == nil
}

func findOrStart() (string, error) {
	if u := os.Getenv("PAYGATE_TEST_POSTGRES_URL"); u != "" {
		if answers(u) {
			return u, nil
		}
		return "", fmt.Errorf("PAYGATE_TEST_POSTGRES_URL=%s does not answer", u)
	}
	const local = "postgres://postgres@127.0.0.1:5432/postgres?sslmode=disable"
	if answers(local) {
		return local, nil
	}
	throwaway := fmt.Sprintf("postgres://postgres@127.0.0.1:%d/postgres?sslmode=disable", ThrowawayPort)
	if answers(throwaway) {
		return throwaway, nil
	}
	if err := startThrowaway(); err != nil {
		return "", err
	}
	for i := 0; i < 100; i++ {
		if answers(throwaway) {
			return throwaway, nil
		}
		time.Sleep(100 * time.Millisecond) // waiting for an external server to start, not timing a test
	}
	return "", fmt.Errorf("throwaway PostgreSQL on port %d did not start", ThrowawayPort)
}

// binDir finds the newest /usr/lib/postgresql/*/bin holding initdb.
func binDir() (string, error) {
	m, _ := filepath.Glob("/usr/lib/postgresql/*/bin/initdb")
	if len(m) == 0 {
		if p, err := exec.LookPath("initdb"); err == nil {
			return filepath.Dir(p), nil
		}
		return "", fmt.Errorf("PostgreSQL server binaries not installed (apt-get install postgresql)")
	}
	sort.Strings(m)
	return filepath.Dir(m[len(m)-1]), nil
}

func startThrowaway() error {
	bin, err := binDir()
	if err != nil {
		return err
	}
	root := filepath.Join(os.TempDir(), "paygate-pgtest")
	if err := os.MkdirAll(root, 0o755); err != nil {
		return err
	}
	lf, err := os.OpenFile(filepath.Join(root, "lock"), os.O_CREATE|os.O_RDWR, 0o644)
	if err != nil {
		return err
	}
	defer lf.Close()
	if err := syscall.Flock(int(lf.Fd()), syscall.LOCK_EX); err != nil {
		return err
	}
	defer syscall.Flock(int(lf.Fd()), syscall.LOCK_UN)
	if answers(fmt.Sprintf("postgres://postgres@127.0.0.1:%d/postgres?sslmode=disable", ThrowawayPort)) {
		return nil // another test binary started it while we waited
	}
	data := filepath.Join(root, "data")
	run := func(name string, args ...string) error {
		cmd := exec.Command(filepath.Join(bin, name), args...)
		if os.Geteuid() == 0 {
			cmd = exec.Command("runuser", append([]string{"-u", "postgres", "--", filepath.Join(bin, name)}, args...)...)
		}
		out, err := cmd.CombinedOutput()
		if err != nil {
			return fmt.Errorf("%s: %v: %s", name, err, out)
		}
		return nil
	}
	if os.Geteuid() == 0 {
		if err := exec.Command("chown", "-R", "postgres:postgres", root).Run(); err != nil {
			return fmt.Errorf("chown %s to postgres: %v", root, err)
		}
	}
	if _, err := os.Stat(filepath.Join(data, "PG_VERSION")); err != nil {
		os.RemoveAll(data)
		if err := run("initdb", "-D", data, "-U", "postgres", "--auth=trust", "--no-sync", "-E", "UTF8"); err != nil {
			return err
		}
	}
	sock := root
	return run("pg_ctl", "-D", data, "-l", filepath.Join(root, "log"), "-w", "-t", "60", "start",
		"-o", fmt.Sprintf("-p %d -k %s -c listen_addresses=127.0.0.1 -c fsync=off -c max_connections=300", ThrowawayPort, sock))
}
