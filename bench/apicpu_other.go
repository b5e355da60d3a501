//go:build !linux

package bench

import (
	"context"
	"database/sql"
)

// cpuTimes is not measured on this system: the CPU figures read 0.
func cpuTimes(context.Context, *sql.DB, bool) cpuSnap { return cpuSnap{} }
