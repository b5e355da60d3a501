package sim

import (
	"sort"
	"sync"
	"time"

	"paygate"
)

// Dispatcher runs the simulated channel's asynchronous work (callbacks)
// later. Production uses TimerDispatcher; tests use ManualDispatcher so
// that nothing sleeps.
type Dispatcher interface {
	// After runs fn once, d from now, on some goroutine.
	After(d time.Duration, fn func())
}

// TimerDispatcher runs work on time.AfterFunc timers.
type TimerDispatcher struct{}

// After runs fn on its own goroutine after d.
func (TimerDispatcher) After(d time.Duration, fn func()) { time.AfterFunc(d, fn) }

// ManualDispatcher queues work until the test runs it: RunDue runs what is
// due by the injected clock's time. It is safe for concurrent use.
type ManualDispatcher struct {
	clock paygate.Clock
	mu    sync.Mutex
	seq   int64
	tasks []task
}

type task struct {
	due time.Time
	seq int64
	fn  func()
}

// NewManualDispatcher returns a ManualDispatcher that reads "now" from clock.
func NewManualDispatcher(clock paygate.Clock) *ManualDispatcher {
	return &ManualDispatcher{clock: clock}
}

// After queues fn to run at clock.Now()+d.
func (m *ManualDispatcher) After(d time.Duration, fn func()) {
	due := m.clock.Now().Add(d)
	m.mu.Lock()
	m.seq++
	m.tasks = append(m.tasks, task{due: due, seq: m.seq, fn: fn})
	m.mu.Unlock()
}

// RunDue runs, on the calling goroutine and in order of due time (then of
// scheduling), every queued task due at or before the clock's time,
// including tasks that those tasks queue and that are due too. It returns
// how many ran.
func (m *ManualDispatcher) RunDue() int {
	n := 0
	for {
		now := m.clock.Now()
		m.mu.Lock()
		sort.Slice(m.tasks, func(i, j int) bool {
			if !m.tasks[i].due.Equal(m.tasks[j].due) {
				return m.tasks[i].due.Before(m.tasks[j].due)
			}
			return m.tasks[i].seq < m.tasks[j].seq
		})
		if len(m.tasks) == 0 || m.tasks[0].due.After(now) {
			m.mu.Unlock()
			return n
		}
		t := m.tasks[0]
		m.tasks = m.tasks[1:]
		m.mu.Unlock()
		t.fn()
		n++
	}
}

// Pending returns how many tasks are queued.
func (m *ManualDispatcher) Pending() int {
	m.mu.Lock()
	defer m.mu.Unlock()
	return len(m.tasks)
}
