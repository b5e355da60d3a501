//go:build linux

package bench

import (
	"bytes"
	"context"
	"database/sql"
	"os"
	"strconv"
	"syscall"
	"time"
)

// userHZ is the unit of /proc CPU times: USER_HZ, 100 on every Linux
// architecture Go supports.
const userHZ = 100

// cpuTimes returns the CPU time this process has used (user and system),
// the CPU time of the PostgreSQL backends serving db's database (0 for
// SQLite, which runs in this process), and the CPU time the whole machine
// has spent busy, all cores together (/proc/stat: all but idle and
// iowait). Figures it cannot read are 0.
func cpuTimes(ctx context.Context, db *sql.DB, postgres bool) cpuSnap {
	var s cpuSnap
	var ru syscall.Rusage
	if syscall.Getrusage(syscall.RUSAGE_SELF, &ru) == nil {
		s.process = time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
	}
	if postgres {
		s.postgres = postgresCPU(ctx, db)
	}
	b, err := os.ReadFile("/proc/stat")
	if err != nil {
		return s
	}
	line, _, _ := bytes.Cut(b, []byte("\n"))
	f := bytes.Fields(line)
	if len(f) < 6 || string(f[0]) != "cpu" {
		return s
	}
	var busy int64
	for i, v := range f[1:] {
		n, err := strconv.ParseInt(string(v), 10, 64)
		if err != nil {
			return s
		}
		if i != 3 && i != 4 && i < 8 { // not idle, iowait, nor guest (counted in user already)
			busy += n
		}
	}
	s.machine = time.Duration(busy) * time.Second / userHZ
	return s
}

// postgresCPU sums the CPU time of the client backends connected to db's
// database, read from /proc (the server runs on this machine: the load
// only runs against loopback).
func postgresCPU(ctx context.Context, db *sql.DB) time.Duration {
	rows, err := db.QueryContext(ctx, `SELECT pid FROM pg_stat_activity
		WHERE datname = current_database() AND backend_type = 'client backend'`)
	if err != nil {
		return 0
	}
	defer rows.Close()
	var ticks int64
	for rows.Next() {
		var pid int
		if rows.Scan(&pid) != nil {
			return 0
		}
		b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
		if err != nil {
			continue // gone, or another machine's server after all
		}
		i := bytes.LastIndexByte(b, ')')
		if i < 0 {
			continue
		}
		f := bytes.Fields(b[i+1:]) // from field 3 (state) on
		if len(f) < 13 {
			continue
		}
		u, _ := strconv.ParseInt(string(f[11]), 10, 64)
		st, _ := strconv.ParseInt(string(f[12]), 10, 64)
		ticks += u + st
	}
	return time.Duration(ticks) * time.Second / userHZ
}
