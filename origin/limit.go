package origin

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"time"

	"github.com/lectern/lectern/internal/objstore"
)

// overloadError is why a request was turned away before reaching storage; it answers 503 with a
// short Retry-After.
type overloadError struct{ reason rejectReason }

func (e *overloadError) Error() string { return "origin overloaded: " + e.reason.String() }

type rejectReason int

const (
	rejectQueueFull    rejectReason = iota // every slot busy and the queue full
	rejectQueueTimeout                     // waited QueueTimeout for a slot
	rejectMemory                           // the fill budget is spent
	rejectStorageDown                      // the breaker is open: storage failed repeatedly just now
	numRejectReasons
)

func (r rejectReason) String() string {
	switch r {
	case rejectQueueFull:
		return "queue_full"
	case rejectQueueTimeout:
		return "queue_timeout"
	case rejectMemory:
		return "memory"
	default:
		return "storage_down"
	}
}

// errStorageDown is returned without calling storage while the breaker is open.
var errStorageDown = errors.New("origin: storage failing, not called")

// limiter bounds concurrent storage calls, with a short bounded queue in front: a flash crowd of
// misses waits a moment for a slot rather than piling work onto storage, and past the queue it is
// told to come back (503) while hits, probes and metrics go on being answered.
type limiter struct {
	slots    chan struct{}
	waiting  atomic.Int64
	maxQueue int64
	timeout  time.Duration
}

func newLimiter(slots, queue int, timeout time.Duration) *limiter {
	return &limiter{slots: make(chan struct{}, slots), maxQueue: int64(queue), timeout: timeout}
}

// acquire takes a slot, waiting at most the queue timeout. The returned function gives it back.
func (l *limiter) acquire(ctx context.Context) (func(), error) {
	select {
	case l.slots <- struct{}{}:
		return l.release, nil
	default:
	}
	if l.waiting.Add(1) > l.maxQueue {
		l.waiting.Add(-1)
		return nil, &overloadError{rejectQueueFull}
	}
	defer l.waiting.Add(-1)
	t := time.NewTimer(l.timeout)
	defer t.Stop()
	select {
	case l.slots <- struct{}{}:
		return l.release, nil
	case <-t.C:
		return nil, &overloadError{rejectQueueTimeout}
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

func (l *limiter) release() { <-l.slots }

// inFlight is the number of slots taken.
func (l *limiter) inFlight() int { return len(l.slots) }

// budget bounds the bytes held by fills in progress.
type budget struct {
	mu   sync.Mutex
	used int64
	max  int64
}

func (b *budget) take(n int64) bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.used+n > b.max {
		return false
	}
	b.used += n
	return true
}

func (b *budget) give(n int64) {
	b.mu.Lock()
	b.used -= n
	b.mu.Unlock()
}

// breaker stops calling storage for a moment after it failed several times in a row, so that an
// outage costs each miss a fast 503 instead of a connection attempt (and the S3 client's retries).
// After the pause calls go through again; the first success closes it, a failure reopens it.
type breaker struct {
	failures  atomic.Int32
	openUntil atomic.Int64 // UnixNano; 0 when closed
}

const (
	breakerThreshold = 5
	breakerPause     = time.Second
)

func (b *breaker) allow(now time.Time) bool {
	until := b.openUntil.Load()
	return until == 0 || now.UnixNano() >= until
}

// record notes a storage call's outcome. Answers about the object (missing, bad range) and
// cancellations say nothing about storage's health.
func (b *breaker) record(err error, now time.Time) {
	switch {
	case err == nil, objstore.IsNotFound(err), objstore.IsInvalidRange(err), errors.Is(err, context.Canceled):
		if b.failures.Load() != 0 {
			b.failures.Store(0)
			b.openUntil.Store(0)
		}
		return
	}
	if b.failures.Add(1) >= breakerThreshold {
		b.openUntil.Store(now.Add(breakerPause).UnixNano())
	}
}
