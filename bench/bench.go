// Package bench drives load against paygate's components and reports
// throughput and latency. `paygate bench ledger` calls Ledger.
package bench

import (
	"context"
	"errors"
	"io"
	"time"
)

// LedgerConfig configures a ledger load run.
type LedgerConfig struct {
	DatabaseURLs []string      // each database to run against (sqlite:..., postgres://...)
	Clients      []int         // concurrent clients per step, e.g. 1, 4, 16, 64
	Duration     time.Duration // per step
	FeeShards    int           // shards of the platform fee account (1 = one hot row)
}

// Ledger runs the ledger load and the raw-SQL baseline and writes a report
// table to out.
func Ledger(ctx context.Context, cfg LedgerConfig, out io.Writer) error {
	return errors.New("bench: not implemented yet")
}
