// Package store implements paygate's persistence on database/sql for two
// dialects: PostgreSQL (through pgx) and embedded SQLite (modernc.org/sqlite,
// pure Go). SQL is written once with $N placeholders; the only difference
// between dialects is the row-lock suffix (FOR UPDATE [SKIP LOCKED] on
// PostgreSQL, nothing on SQLite, whose write transactions are serialised by
// BEGIN IMMEDIATE).
package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"hash/fnv"
	"io/fs"
	"log/slog"
	"net/url"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"time"

	"github.com/jackc/pgx/v5/pgconn"
	_ "github.com/jackc/pgx/v5/stdlib" // registers the "pgx" driver
	"github.com/pressly/goose/v3"
	"github.com/pressly/goose/v3/lock"
	"modernc.org/sqlite"
	sqlite3 "modernc.org/sqlite/lib"

	"paygate"
	"paygate/store/migrations"
)

// Dialect names a supported SQL dialect.
type Dialect string

// The supported dialects.
const (
	Postgres Dialect = "postgres"
	SQLite   Dialect = "sqlite"
)

// DefaultSQLitePath is where paygate keeps its embedded database when no
// database URL is configured.
const DefaultSQLitePath = "data/paygate.db"

// DB is an open paygate database.
type DB struct {
	SQL     *sql.DB
	Dialect Dialect
	// lockSuffix and skipLocked end SELECTs that lock rows.
	lockSuffix, skipLocked string
	maxRetries             int
	// writers admits one write transaction at a time on SQLite, which
	// allows only one writer anyway: queueing in Go hands the lock over at
	// once, where SQLite's busy handler would poll with sleeps (measured:
	// p99 of seconds at 16 clients). Nil on PostgreSQL.
	writers chan struct{}
}

// Options tune Open. The zero value is fine.
type Options struct {
	// MaxOpenConns caps the pool; 0 means 4 per CPU, which measured best on
	// small machines (callers queue for a connection instead of thrashing
	// the server).
	MaxOpenConns int
}

// ParseURL tells which dialect a database URL selects and returns the
// driver's data source name. "" and "sqlite:PATH" select SQLite (PATH
// defaults to DefaultSQLitePath); "postgres://..." and "postgresql://..."
// select PostgreSQL. Anything else fails with CodeInvalidArgument.
func ParseURL(raw string) (Dialect, string, error) {
	switch {
	case raw == "":
		return SQLite, sqliteDSN(DefaultSQLitePath), nil
	case strings.HasPrefix(raw, "sqlite:"):
		p := strings.TrimPrefix(strings.TrimPrefix(raw, "sqlite:"), "//")
		if p == "" {
			p = DefaultSQLitePath
		}
		if strings.ContainsAny(p, "?#") {
			return "", "", paygate.E(paygate.CodeInvalidArgument, "sqlite path must not contain '?' or '#'")
		}
		return SQLite, sqliteDSN(p), nil
	case strings.HasPrefix(raw, "postgres://"), strings.HasPrefix(raw, "postgresql://"):
		if _, err := url.Parse(raw); err != nil {
			return "", "", paygate.E(paygate.CodeInvalidArgument, "malformed PostgreSQL URL")
		}
		if _, err := pgconn.ParseConfig(raw); err != nil {
			return "", "", paygate.E(paygate.CodeInvalidArgument, "malformed PostgreSQL URL")
		}
		return Postgres, raw, nil
	}
	return "", "", paygate.E(paygate.CodeInvalidArgument, "database URL must be empty, sqlite:PATH or postgres://...")
}

// sqliteDSN: WAL for concurrent readers, IMMEDIATE transactions so writers
// queue on the lock at BEGIN instead of failing at their first write, a long
// busy timeout, foreign keys on, and full fsync (money).
func sqliteDSN(path string) string {
	return "file:" + path + "?_pragma=busy_timeout(30000)&_pragma=journal_mode(WAL)&_pragma=foreign_keys(1)" +
		"&_pragma=synchronous(FULL)&_txlock=immediate"
}

// Open connects to the database named by rawURL (see ParseURL) and checks
// that it answers. It does not migrate; call Migrate. Errors:
// CodeInvalidArgument for a bad URL, CodeUnavailable when the database does
// not answer.
func Open(ctx context.Context, rawURL string, opt Options) (*DB, error) {
	dialect, dsn, err := ParseURL(rawURL)
	if err != nil {
		return nil, err
	}
	db := &DB{Dialect: dialect, maxRetries: 20}
	max := opt.MaxOpenConns
	if max <= 0 {
		max = 4 * runtime.NumCPU()
	}
	switch dialect {
	case SQLite:
		db.writers = make(chan struct{}, 1)
		path := strings.TrimPrefix(dsn[:strings.IndexByte(dsn, '?')], "file:")
		if dir := filepath.Dir(path); dir != "." {
			if err := os.MkdirAll(dir, 0o700); err != nil {
				return nil, &paygate.Error{Code: paygate.CodeUnavailable, Message: "cannot create the database directory", Err: err}
			}
		}
		db.SQL, err = sql.Open("sqlite", dsn)
	case Postgres:
		db.SQL, err = sql.Open("pgx", dsn)
		db.lockSuffix, db.skipLocked = " FOR UPDATE", " FOR UPDATE SKIP LOCKED"
	}
	if err != nil {
		return nil, &paygate.Error{Code: paygate.CodeInvalidArgument, Message: "cannot open the database", Err: err}
	}
	db.SQL.SetMaxOpenConns(max)
	db.SQL.SetMaxIdleConns(max)
	db.SQL.SetConnMaxIdleTime(5 * time.Minute)
	pctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	if err := db.SQL.PingContext(pctx); err != nil {
		db.SQL.Close()
		return nil, &paygate.Error{Code: paygate.CodeUnavailable, Message: "database does not answer", Err: err}
	}
	return db, nil
}

// Close closes the pool.
func (db *DB) Close() error { return db.SQL.Close() }

// Ping checks that the database answers; /readyz uses it.
func (db *DB) Ping(ctx context.Context) error {
	if err := db.SQL.PingContext(ctx); err != nil {
		return &paygate.Error{Code: paygate.CodeUnavailable, Message: "database does not answer", Err: err}
	}
	return nil
}

// MigrationsFS returns the migrations for a dialect.
func MigrationsFS(d Dialect) fs.FS {
	sub, err := fs.Sub(migrations.FS, string(d))
	if err != nil {
		panic(err)
	}
	return sub
}

// Migrate applies every pending migration, each in its own transaction, and
// returns the resulting version. On PostgreSQL a session advisory lock keeps
// several processes starting together from migrating at once. A failed
// migration rolls back and Migrate returns an error: the caller must not
// serve.
func (db *DB) Migrate(ctx context.Context) (int64, error) {
	return db.migrate(ctx, MigrationsFS(db.Dialect))
}

func (db *DB) migrate(ctx context.Context, fsys fs.FS) (int64, error) {
	gd := goose.DialectSQLite3
	var opts []goose.ProviderOption
	if db.Dialect == Postgres {
		gd = goose.DialectPostgres
		// One advisory lock per database and schema: processes migrating the
		// same schema queue; different schemas (tests) do not.
		var where string
		if err := db.SQL.QueryRowContext(ctx, `SELECT current_database() || '.' || current_schema()`).Scan(&where); err != nil {
			return 0, wrapDB(err)
		}
		h := fnv.New64a()
		h.Write([]byte("paygate.migrate." + where))
		locker, err := lock.NewPostgresSessionLocker(lock.WithLockID(int64(h.Sum64()>>1)), lock.WithLockTimeout(1, 600))
		if err != nil {
			return 0, err
		}
		opts = append(opts, goose.WithSessionLocker(locker))
	}
	p, err := goose.NewProvider(gd, db.SQL, fsys, opts...)
	if err != nil {
		return 0, fmt.Errorf("store: load migrations: %w", err)
	}
	res, err := p.Up(ctx)
	for _, r := range res {
		slog.Debug("migration applied", "version", r.Source.Version, "took", r.Duration)
	}
	if err != nil {
		return 0, fmt.Errorf("store: migrate: %w", err)
	}
	return p.GetDBVersion(ctx)
}

// InTx runs fn inside one transaction and commits when fn returns nil. When
// fn or the commit fails with a transient conflict (paygate.ErrRetry, a
// PostgreSQL serialization failure or deadlock, a busy SQLite database) the
// whole transaction runs again, so fn must not have effects outside it.
func (db *DB) InTx(ctx context.Context, fn func(*Tx) error) error {
	var err error
	for attempt := 0; ; attempt++ {
		err = db.inTxOnce(ctx, fn)
		if err == nil || !retryable(err) || attempt >= db.maxRetries || ctx.Err() != nil {
			return err
		}
		// Back off a little (bounded jitter) so racing writers spread out.
		d := time.Duration(attempt+1) * time.Duration(100+time.Now().UnixNano()%400) * time.Microsecond
		select {
		case <-time.After(d):
		case <-ctx.Done():
			return err
		}
	}
}

func (db *DB) inTxOnce(ctx context.Context, fn func(*Tx) error) (err error) {
	release, err := db.writer(ctx)
	if err != nil {
		return err
	}
	defer release()
	stx, err := db.SQL.BeginTx(ctx, nil)
	if err != nil {
		return wrapDB(err)
	}
	tx := &Tx{tx: stx, db: db}
	defer func() {
		if p := recover(); p != nil {
			_ = stx.Rollback()
			panic(p)
		}
		if err != nil {
			_ = stx.Rollback()
		}
	}()
	if err = fn(tx); err != nil {
		return err
	}
	return wrapDB(stx.Commit())
}

// writer takes SQLite's writer slot, the Go queue every write waits in
// for SQLite's single writer lock, and returns its release; on PostgreSQL
// it takes nothing. It fails when ctx ends first.
func (db *DB) writer(ctx context.Context) (release func(), err error) {
	if db.writers == nil {
		return func() {}, nil
	}
	select {
	case db.writers <- struct{}{}:
		return func() { <-db.writers }, nil
	case <-ctx.Done():
		return nil, wrapDB(ctx.Err())
	}
}

// execWrite runs one autocommitted write statement. On SQLite it queues
// for the writer slot first, as InTx does, so that it never meets a
// transaction's writer lock in SQLite's busy handler (which sleeps 1, 2,
// 5 ... ms between polls); on PostgreSQL it is ExecContext.
func (db *DB) execWrite(ctx context.Context, query string, args ...any) (sql.Result, error) {
	release, err := db.writer(ctx)
	if err != nil {
		return nil, err
	}
	defer release()
	return db.SQL.ExecContext(ctx, query, args...)
}

func retryable(err error) bool {
	if errors.Is(err, paygate.ErrRetry) {
		return true
	}
	var pe *pgconn.PgError
	if errors.As(err, &pe) {
		return pe.Code == "40001" || pe.Code == "40P01"
	}
	var se *sqlite.Error
	if errors.As(err, &se) {
		c := se.Code() & 0xff
		return c == sqlite3.SQLITE_BUSY || c == sqlite3.SQLITE_LOCKED
	}
	return false
}

// wrapDB keeps paygate errors and marks everything else internal.
func wrapDB(err error) error {
	if err == nil {
		return nil
	}
	var pe *paygate.Error
	if errors.As(err, &pe) || retryable(err) {
		return err
	}
	if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return &paygate.Error{Code: paygate.CodeUnavailable, Message: "request cancelled or timed out", Err: err}
	}
	return paygate.Internal(err)
}

// Tx is one database transaction. It implements the Tx interfaces of the
// use-case packages (ledger.Tx, ...), so that one command's state change,
// postings and outbox rows commit together.
type Tx struct {
	tx *sql.Tx
	db *DB
}

// placeholders returns "$from, $from+1, ..., $from+n-1".
func placeholders(from, n int) string {
	var b strings.Builder
	for i := 0; i < n; i++ {
		if i > 0 {
			b.WriteString(", ")
		}
		fmt.Fprintf(&b, "$%d", from+i)
	}
	return b.String()
}

// tuples returns n groups of width placeholders: "($1, $2), ($3, $4)".
// cast, when non-empty for a column, wraps its placeholder in CAST(... AS cast).
func tuples(n int, casts ...string) string {
	var b strings.Builder
	p := 1
	for i := 0; i < n; i++ {
		if i > 0 {
			b.WriteString(", ")
		}
		b.WriteByte('(')
		for j, c := range casts {
			if j > 0 {
				b.WriteString(", ")
			}
			if c != "" {
				fmt.Fprintf(&b, "CAST($%d AS %s)", p, c)
			} else {
				fmt.Fprintf(&b, "$%d", p)
			}
			p++
		}
		b.WriteByte(')')
	}
	return b.String()
}

func micros(t time.Time) int64 {
	if t.IsZero() {
		return 0
	}
	return t.UnixMicro()
}

func fromMicros(us int64) time.Time {
	if us == 0 {
		return time.Time{}
	}
	return time.UnixMicro(us).UTC()
}

// nullString stores "" as SQL NULL.
func nullString(s string) any {
	if s == "" {
		return nil
	}
	return s
}

// nullMicros stores the zero time as SQL NULL, other times as Unix microseconds.
func nullMicros(t time.Time) any {
	if t.IsZero() {
		return nil
	}
	return t.UnixMicro()
}
