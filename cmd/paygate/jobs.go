package main

import (
	"context"
	"log/slog"
	"time"
)

// holdExpirer is the part of the ledger the expiry job drives.
type holdExpirer interface {
	ExpireHolds(ctx context.Context, limit int) (int, error)
}

// Expiry job limits: holds per transaction, and transactions per tick (so
// that one tick of a huge backlog still yields to shutdown and to the next
// tick's fresh look).
const (
	expireBatch     = 100
	expireMaxRounds = 100
)

// runExpiry releases expired holds: on every tick it calls ExpireHolds in
// batches of batch until a batch comes back short (the backlog is drained)
// or maxRounds batches ran. It returns when ctx is done. Errors are logged
// and retried on the next tick. Several processes may run it at once against
// one database: the ledger expires each hold exactly once (locked rows are
// skipped by the others). ticks is injected so that tests drive it without
// sleeping; serve passes a time.Ticker's channel.
func runExpiry(ctx context.Context, l holdExpirer, ticks <-chan time.Time, batch, maxRounds int, log *slog.Logger) {
	runBatches(ctx, "expired holds", l.ExpireHolds, ticks, batch, maxRounds, log)
}

// runBatches runs a batch job (close expired orders, query unknown payments,
// delete old nonces...) the way runExpiry runs hold expiry: on every tick,
// batches of batch until one comes back short or maxRounds ran; errors are
// logged and retried on the next tick; it returns when ctx is done. name
// labels its log lines.
func runBatches(ctx context.Context, name string, fn func(ctx context.Context, limit int) (int, error), ticks <-chan time.Time, batch, maxRounds int, log *slog.Logger) {
	for {
		select {
		case <-ctx.Done():
			return
		case <-ticks:
		}
		total := 0
		for round := 0; round < maxRounds && ctx.Err() == nil; round++ {
			n, err := fn(ctx, batch)
			total += n
			if err != nil {
				if ctx.Err() == nil { // not merely cancelled by shutdown
					log.Warn("job failed; retrying next tick", "job", name, "error", err)
				}
				break
			}
			if n < batch {
				break
			}
		}
		if total > 0 {
			log.Info(name, "count", total)
		}
	}
}
