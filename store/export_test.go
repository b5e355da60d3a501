package store

import (
	"context"
	"io/fs"
)

// MigrateFS applies the migrations in fsys, for tests of failure handling.
func MigrateFS(ctx context.Context, db *DB, fsys fs.FS) (int64, error) { return db.migrate(ctx, fsys) }
