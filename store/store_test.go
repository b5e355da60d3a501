package store_test

import (
	"context"
	"fmt"
	"slices"
	"testing"
	"testing/fstest"

	"github.com/stretchr/testify/require"

	"paygate"
	"paygate/ledger"
	"paygate/store"
	"paygate/store/storetest"
)

func TestParseURL(t *testing.T) {
	t.Parallel()
	cases := []struct {
		in      string
		dialect store.Dialect
		ok      bool
	}{
		{"", store.SQLite, true},
		{"sqlite:", store.SQLite, true},
		{"sqlite:/tmp/x.db", store.SQLite, true},
		{"sqlite://data/pg.db", store.SQLite, true},
		{"postgres://postgres@127.0.0.1:5432/paygate?sslmode=disable", store.Postgres, true},
		{"postgresql://u:p@db/x", store.Postgres, true},
		{"mysql://root@localhost/x", "", false},
		{"sqlite:/tmp/x.db?_pragma=foo", "", false},
		{"postgres://%zz", "", false},
		{"/tmp/x.db", "", false},
	}
	for _, c := range cases {
		d, dsn, err := store.ParseURL(c.in)
		if !c.ok {
			require.Error(t, err, c.in)
			require.Equal(t, paygate.CodeInvalidArgument, paygate.CodeOf(err), c.in)
			continue
		}
		require.NoError(t, err, c.in)
		require.Equal(t, c.dialect, d, c.in)
		require.NotEmpty(t, dsn)
	}
}

func FuzzParseURL(f *testing.F) {
	for _, s := range []string{"", "sqlite:x.db", "postgres://a@b/c", "postgresql://%", "sqlite:?#"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		d, dsn, err := store.ParseURL(s)
		if err != nil {
			require.Equal(t, paygate.CodeInvalidArgument, paygate.CodeOf(err))
			return
		}
		require.Contains(t, []store.Dialect{store.SQLite, store.Postgres}, d)
		require.NotEmpty(t, dsn)
	})
}

func TestOpenErrors(t *testing.T) {
	t.Parallel()
	_, err := store.Open(context.Background(), "mysql://x", store.Options{})
	require.Equal(t, paygate.CodeInvalidArgument, paygate.CodeOf(err))
	_, err = store.Open(context.Background(), "postgres://postgres@127.0.0.1:1/x?sslmode=disable&connect_timeout=2", store.Options{})
	require.Equal(t, paygate.CodeUnavailable, paygate.CodeOf(err))
	require.NotContains(t, err.(*paygate.Error).Message, "127.0.0.1", "the safe message names no internals")
}

// schema lists "table.column" and index names of the migrated database.
func schema(t *testing.T, db *store.DB) (cols, idx []string) {
	t.Helper()
	var q1, q2 string
	if db.Dialect == store.SQLite {
		q1 = `SELECT m.name || '.' || p.name FROM sqlite_master m JOIN pragma_table_info(m.name) p
			WHERE m.type = 'table' AND m.name NOT LIKE 'sqlite_%' AND m.name <> 'goose_db_version'`
		q2 = `SELECT name FROM sqlite_master WHERE type = 'index' AND name NOT LIKE 'sqlite_autoindex%'`
	} else {
		q1 = `SELECT table_name || '.' || column_name FROM information_schema.columns
			WHERE table_schema = current_schema() AND table_name <> 'goose_db_version'`
		q2 = `SELECT indexname FROM pg_indexes WHERE schemaname = current_schema()
			AND indexname NOT LIKE '%_pkey' AND indexname NOT LIKE '%_key'`
	}
	for _, x := range []struct {
		q   string
		out *[]string
	}{{q1, &cols}, {q2, &idx}} {
		rows, err := db.SQL.Query(x.q)
		require.NoError(t, err)
		for rows.Next() {
			var s string
			require.NoError(t, rows.Scan(&s))
			*x.out = append(*x.out, s)
		}
		require.NoError(t, rows.Err())
		rows.Close()
		slices.Sort(*x.out)
	}
	return cols, idx
}

// TestSchemasAgree proves both dialects' migrations build the same tables,
// columns and indexes, and end at the same version.
func TestSchemasAgree(t *testing.T) {
	t.Parallel()
	lite := storetest.Open(t, store.SQLite)
	pg := storetest.Open(t, store.Postgres)
	lc, li := schema(t, lite)
	pc, pi := schema(t, pg)
	require.NotEmpty(t, lc)
	require.Equal(t, lc, pc, "tables and columns")
	require.Equal(t, li, pi, "indexes")
	lv, err := lite.Migrate(context.Background())
	require.NoError(t, err)
	pv, err := pg.Migrate(context.Background())
	require.NoError(t, err)
	require.Equal(t, lv, pv)
	require.Positive(t, lv)
}

func TestMigrateIsIdempotent(t *testing.T) {
	t.Parallel()
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		v1, err := db.Migrate(context.Background())
		require.NoError(t, err)
		v2, err := db.Migrate(context.Background())
		require.NoError(t, err)
		require.Equal(t, v1, v2)
		require.NoError(t, db.Ping(context.Background()))
	})
}

func TestInTxRollsBackOnError(t *testing.T) {
	t.Parallel()
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		boom := fmt.Errorf("boom")
		err := db.InTx(ctx, func(tx *store.Tx) error {
			_, err := tx.InsertAccounts(ctx, []ledger.Account{{ID: "gone", Currency: "CNY", Normal: ledger.Credit, Shards: 1}})
			require.NoError(t, err)
			return boom
		})
		require.ErrorIs(t, err, boom)
		var n int
		require.NoError(t, db.SQL.QueryRow(`SELECT COUNT(*) FROM ledger_accounts`).Scan(&n))
		require.Zero(t, n, "the failed transaction left nothing")
		attempts := 0
		err = db.InTx(ctx, func(tx *store.Tx) error {
			attempts++
			if attempts < 3 {
				return fmt.Errorf("racing: %w", paygate.ErrRetry)
			}
			return nil
		})
		require.NoError(t, err)
		require.Equal(t, 3, attempts, "ErrRetry runs the transaction again")
	})
}

// TestFailedMigrationRollsBack proves a failing migration leaves the schema
// at the last good version, with nothing of the failed one applied.
func TestFailedMigrationRollsBack(t *testing.T) {
	t.Parallel()
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		fsys := fstest.MapFS{
			"90001_ok.sql":     {Data: []byte("-- +goose Up\nCREATE TABLE ok_table (id INTEGER PRIMARY KEY);\n")},
			"90002_broken.sql": {Data: []byte("-- +goose Up\nCREATE TABLE half_table (id INTEGER PRIMARY KEY);\nINSERT INTO no_such_table VALUES (1);\n")},
		}
		_, err := store.MigrateFS(context.Background(), db, fsys)
		require.Error(t, err)
		var n int
		require.NoError(t, db.SQL.QueryRow(`SELECT COUNT(*) FROM ok_table`).Scan(&n))
		_, err = db.SQL.Exec(`SELECT COUNT(*) FROM half_table`)
		require.Error(t, err, "the failed migration's table was rolled back")
	})
}
