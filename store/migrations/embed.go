// Package migrations embeds paygate's schema migrations: one directory per
// SQL dialect (postgres/, sqlite/) holding the same version numbers.
package migrations

import "embed"

// FS holds postgres/*.sql and sqlite/*.sql.
//
//go:embed postgres/*.sql sqlite/*.sql
var FS embed.FS
