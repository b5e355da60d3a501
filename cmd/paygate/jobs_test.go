package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"paygate"
	"paygate/ledger"
	"paygate/store"
	"paygate/store/storetest"
)

// scriptedExpirer hands each ExpireHolds call to the test and returns what
// the test answers, so the test steps the loop one call at a time.
type scriptedExpirer struct {
	calls   chan int // the limit of each call
	answers chan expireAnswer
}

type expireAnswer struct {
	n   int
	err error
}

func (s *scriptedExpirer) ExpireHolds(ctx context.Context, limit int) (int, error) {
	s.calls <- limit
	a := <-s.answers
	return a.n, a.err
}

// logCounter counts log records by level.
type logCounter struct {
	slog.Handler
	warns atomic.Int64
}

func (l *logCounter) Handle(ctx context.Context, r slog.Record) error {
	if r.Level == slog.LevelWarn {
		l.warns.Add(1)
	}
	return nil
}
func (l *logCounter) Enabled(context.Context, slog.Level) bool { return true }

func TestRunExpiryLoop(t *testing.T) {
	t.Parallel()
	fake := &scriptedExpirer{calls: make(chan int), answers: make(chan expireAnswer)}
	ticks := make(chan time.Time)
	logs := &logCounter{Handler: slog.DiscardHandler}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		runExpiry(ctx, fake, ticks, 10, 3, slog.New(logs))
		close(done)
	}()
	step := func(n int, err error) {
		t.Helper()
		require.Equal(t, 10, <-fake.calls, "called with the batch size")
		fake.answers <- expireAnswer{n, err}
	}

	// A tick drains in batches until one comes back short.
	ticks <- time.Time{}
	step(10, nil)
	step(10, nil)
	step(4, nil)
	// The loop is idle again: it takes the next tick (an unbuffered send
	// completes only when the loop waits in select).
	ticks <- time.Time{}
	step(0, nil)

	// A huge backlog stops after maxRounds full batches and waits for the
	// next tick.
	ticks <- time.Time{}
	step(10, nil)
	step(10, nil)
	step(10, nil)
	ticks <- time.Time{}
	step(2, nil)

	// An error is logged and retried on the next tick, not in a hot loop.
	ticks <- time.Time{}
	step(0, errors.New("database down"))
	ticks <- time.Time{}
	step(0, nil)
	require.Equal(t, int64(1), logs.warns.Load())

	// Cancelling stops the loop, also in the middle of a call; an error
	// caused by the cancellation is not reported as a failure.
	ticks <- time.Time{}
	require.Equal(t, 10, <-fake.calls)
	cancel()
	fake.answers <- expireAnswer{0, context.Canceled}
	<-done
	require.Equal(t, int64(1), logs.warns.Load())
}

func TestRunExpiryStopsWhenIdle(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		runExpiry(ctx, &scriptedExpirer{}, make(chan time.Time), 10, 3, slog.New(slog.DiscardHandler))
		close(done)
	}()
	cancel()
	<-done
}

// drainSignal reports each tick's end (a short or failed batch) of the
// expirer it wraps and counts the holds expired.
type drainSignal struct {
	next    holdExpirer
	total   atomic.Int64
	drained chan struct{}
}

func (d *drainSignal) ExpireHolds(ctx context.Context, limit int) (int, error) {
	n, err := d.next.ExpireHolds(ctx, limit)
	d.total.Add(int64(n))
	if err != nil || n < limit {
		d.drained <- struct{}{}
	}
	return n, err
}

// TestRunExpiryConcurrentJobs runs two expiry jobs, as two serve processes
// would, against one database: every expired hold is released exactly once
// and holds not yet due are left alone.
func TestRunExpiryConcurrentJobs(t *testing.T) {
	t.Parallel()
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		clock := paygate.NewManualClock(time.Date(2025, 6, 1, 8, 0, 0, 0, time.UTC))
		l := ledger.New(db.Ledger(), clock, paygate.DefaultCalendar())
		_, err := l.CreateAccounts(ctx, []ledger.Account{
			{ID: "cash", Currency: "CNY", Normal: ledger.Debit},
			{ID: "alice", Currency: "CNY", Normal: ledger.Credit, Flags: ledger.DebitsMustNotExceedCredits},
		})
		require.NoError(t, err)
		ts := []ledger.Transfer{{ID: "fund", DebitAccountID: "cash", CreditAccountID: "alice", Amount: 1_000_000}}
		const due, notDue = 45, 5
		var dueIDs []string
		for i := range due + notDue {
			timeout := time.Minute
			if i >= due {
				timeout = time.Hour
			}
			id := fmt.Sprintf("hold_%03d", i)
			if i < due {
				dueIDs = append(dueIDs, id)
			}
			ts = append(ts, ledger.Transfer{ID: id, DebitAccountID: "alice", CreditAccountID: "cash", Amount: 100, Flags: ledger.Pending, Timeout: timeout})
		}
		_, err = l.CreateTransfers(ctx, ts)
		require.NoError(t, err)
		clock.Advance(2 * time.Minute)

		jobCtx, cancel := context.WithCancel(ctx)
		var wg sync.WaitGroup
		var jobs []*drainSignal
		var tickers []chan time.Time
		for range 2 {
			j := &drainSignal{next: l, drained: make(chan struct{}, 1)}
			tick := make(chan time.Time)
			jobs, tickers = append(jobs, j), append(tickers, tick)
			wg.Go(func() { runExpiry(jobCtx, j, tick, 4, 100, slog.New(slog.DiscardHandler)) })
		}
		for _, tick := range tickers {
			tick <- time.Time{}
		}
		for _, j := range jobs {
			<-j.drained
		}
		cancel()
		wg.Wait()

		require.Equal(t, int64(due), jobs[0].total.Load()+jobs[1].total.Load(), "each due hold expired exactly once")
		got, err := l.LookupTransfers(ctx, dueIDs)
		require.NoError(t, err)
		require.Len(t, got, due)
		for _, h := range got {
			require.Equal(t, ledger.HoldExpired, h.HoldStatus, h.ID)
		}
		rest, err := l.LookupTransfers(ctx, []string{fmt.Sprintf("hold_%03d", due)})
		require.NoError(t, err)
		require.Equal(t, ledger.HoldPending, rest[0].HoldStatus)
		acc, err := l.LookupAccounts(ctx, []string{"alice"})
		require.NoError(t, err)
		require.Equal(t, int64(notDue*100), acc[0].DebitsPending, "only the holds not yet due still hold funds")
	})
}
