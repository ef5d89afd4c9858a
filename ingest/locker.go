package ingest

import (
	"context"
	"log/slog"
	"sync"
	"time"

	tusd "github.com/tus/tusd/v2/pkg/handler"

	"github.com/lectern/lectern/internal/catalog"
)

// pgLocker is a tusd Locker over PostgreSQL advisory locks, for several ingest instances behind one
// load balancer: a PATCH for an upload may reach any instance, and only one may append at a time.
//
// tusd asks the current holder to let go when another request wants the lock (a client that lost its
// connection resumes before the server noticed the old request is dead). Across processes that request
// travels as a PostgreSQL NOTIFY, which the holder's instance hears in listen and passes to tusd.
type pgLocker struct {
	locks *catalog.Locks
	log   *slog.Logger
	mu    sync.Mutex
	held  map[string]func() // upload id -> tusd's requestRelease, for locks held by this process
}

func newPGLocker(l *catalog.Locks, log *slog.Logger) *pgLocker {
	return &pgLocker{locks: l, log: log, held: map[string]func(){}}
}

func (l *pgLocker) UseIn(c *tusd.StoreComposer) { c.UseLocker(l) }

func (l *pgLocker) NewLock(id string) (tusd.Lock, error) { return &pgLock{l: l, id: id}, nil }

// listen passes release requests from other processes to the holders in this one, until ctx ends.
func (l *pgLocker) listen(ctx context.Context) {
	l.locks.ListenReleases(ctx, func(id string) {
		l.mu.Lock()
		release := l.held[id]
		l.mu.Unlock()
		if release != nil {
			go release()
		}
	})
}

type pgLock struct {
	l       *pgLocker
	id      string
	release func()
}

// Lock takes the lock, asking the holder (wherever it is) to release it while waiting, until ctx ends
// (tusd bounds it with AcquireLockTimeout).
func (k *pgLock) Lock(ctx context.Context, requestRelease func()) error {
	wait := 20 * time.Millisecond
	asked := time.Time{}
	for {
		release, ok, err := k.l.locks.TryLock(ctx, "tus:"+k.id)
		if err != nil {
			if ctx.Err() != nil {
				return tusd.ErrLockTimeout
			}
			return err
		}
		if ok {
			k.release = release
			k.l.mu.Lock()
			k.l.held[k.id] = requestRelease
			k.l.mu.Unlock()
			return nil
		}
		if time.Since(asked) > time.Second {
			asked = time.Now()
			if err := k.l.locks.RequestRelease(ctx, k.id); err != nil && ctx.Err() == nil {
				k.l.log.Warn("ask lock holder to release", "upload", k.id, "err", err)
			}
		}
		select {
		case <-ctx.Done():
			return tusd.ErrLockTimeout
		case <-time.After(wait):
		}
		wait = min(2*wait, 250*time.Millisecond)
	}
}

func (k *pgLock) Unlock() error {
	k.l.mu.Lock()
	delete(k.l.held, k.id)
	k.l.mu.Unlock()
	if k.release != nil {
		k.release()
		k.release = nil
	}
	return nil
}
