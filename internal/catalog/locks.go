package catalog

import (
	"context"
	"errors"
	"fmt"
	"hash/fnv"
	"log/slog"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
)

// releaseChannel is the PostgreSQL NOTIFY channel on which a process waiting for a lock asks its holder
// (in whatever process) to let go.
const releaseChannel = "lectern_lock_release"

// Locks are named exclusive locks shared by every process using one PostgreSQL catalog: PostgreSQL
// session advisory locks, each held on its own connection for as long as it is held. They guard state
// outside the database that several instances may reach at once (a resumable upload being appended to).
// A lock dies with its connection, so a crashed holder never leaves it stuck.
type Locks struct {
	pool *pgxpool.Pool
	log  *slog.Logger
}

// DefaultMaxLocks bounds the connections Locks holds open (one per lock held at once, plus one
// listening for release requests). PostgreSQL's own max_connections must leave room for them.
const DefaultMaxLocks = 64

// Locks returns the catalog's shared locks, or nil when the catalog is SQLite: SQLite is one machine,
// where file locks next to the data do the same job. maxHeld bounds the locks held at once (<= 0 means
// DefaultMaxLocks); a caller past the bound waits for a connection. Close the Locks when done.
func (c *Catalog) Locks(maxHeld int) (*Locks, error) {
	pool := c.b.pgPool()
	if pool == nil {
		return nil, nil
	}
	if maxHeld <= 0 {
		maxHeld = DefaultMaxLocks
	}
	cfg := pool.Config().Copy()
	cfg.MaxConns = int32(maxHeld) + 1
	cfg.MinConns = 0
	// Idle lock connections go back quickly; a held one is never idle in the pool's sense.
	cfg.MaxConnIdleTime = time.Minute
	lp, err := pgxpool.NewWithConfig(context.Background(), cfg)
	if err != nil {
		return nil, fmt.Errorf("catalog: lock pool: %w", err)
	}
	return &Locks{pool: lp, log: c.log}, nil
}

// Close closes the lock connections; locks still held are released by PostgreSQL.
func (l *Locks) Close() { l.pool.Close() }

// lockKey maps a lock name to PostgreSQL's 64-bit advisory lock key space.
func lockKey(name string) int64 {
	h := fnv.New64a()
	h.Write([]byte("lectern-lock:"))
	h.Write([]byte(name))
	return int64(h.Sum64())
}

// TryLock takes the named lock if it is free. ok is false when another session holds it. The returned
// release lets it go (safe to call once; a failed unlock closes the connection, which releases the
// lock as well).
func (l *Locks) TryLock(ctx context.Context, name string) (release func(), ok bool, err error) {
	conn, err := l.pool.Acquire(ctx)
	if err != nil {
		return nil, false, fmt.Errorf("catalog: lock %q: %w", name, err)
	}
	key := lockKey(name)
	if err := conn.QueryRow(ctx, `SELECT pg_try_advisory_lock($1)`, key).Scan(&ok); err != nil {
		conn.Release()
		return nil, false, fmt.Errorf("catalog: lock %q: %w", name, err)
	}
	if !ok {
		conn.Release()
		return nil, false, nil
	}
	return func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		var unlocked bool
		if err := conn.QueryRow(ctx, `SELECT pg_advisory_unlock($1)`, key).Scan(&unlocked); err != nil || !unlocked {
			// Ending the session is the one sure way to drop a session lock.
			l.log.Warn("advisory unlock failed; closing its connection", "lock", name, "err", err)
			_ = conn.Hijack().Close(ctx)
			return
		}
		conn.Release()
	}, true, nil
}

// RequestRelease asks whoever holds the named lock, in any process, to release it soon.
func (l *Locks) RequestRelease(ctx context.Context, name string) error {
	if _, err := l.pool.Exec(ctx, `SELECT pg_notify($1, $2)`, releaseChannel, name); err != nil {
		return fmt.Errorf("catalog: request release of %q: %w", name, err)
	}
	return nil
}

// ListenReleases calls fn with the name of every lock some process asked to be released, until ctx
// ends. It reconnects after errors. Run it in its own goroutine.
func (l *Locks) ListenReleases(ctx context.Context, fn func(name string)) {
	for ctx.Err() == nil {
		err := l.listen(ctx, fn)
		if ctx.Err() != nil {
			return
		}
		l.log.Warn("lock release listener lost its connection; reconnecting", "err", err)
		select {
		case <-ctx.Done():
		case <-time.After(time.Second):
		}
	}
}

func (l *Locks) listen(ctx context.Context, fn func(string)) error {
	conn, err := l.pool.Acquire(ctx)
	if err != nil {
		return err
	}
	defer conn.Release()
	if _, err := conn.Exec(ctx, `LISTEN `+pgx.Identifier{releaseChannel}.Sanitize()); err != nil {
		return err
	}
	defer func() {
		if ctx.Err() == nil {
			return
		}
		// The connection goes back to the pool: stop listening on it first.
		uctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		if _, err := conn.Exec(uctx, `UNLISTEN *`); err != nil {
			_ = conn.Hijack().Close(uctx)
		}
	}()
	for {
		n, err := conn.Conn().WaitForNotification(ctx)
		if err != nil {
			if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
				return ctx.Err()
			}
			return err
		}
		fn(n.Payload)
	}
}
