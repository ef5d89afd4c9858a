package catalog

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/riverqueue/river"
	"github.com/riverqueue/river/riverdriver/riverpgxv5"
)

// migrationLockKey is the PostgreSQL advisory lock that serialises migrations when several processes
// (ingest, workers) start at once against one database. Arbitrary, but fixed forever.
const migrationLockKey int64 = 0x6c65637465726e // "lectern"

func openPostgres(ctx context.Context, rawURL string, opts Options) (backend, error) {
	cfg, err := pgxpool.ParseConfig(rawURL)
	if err != nil {
		// pgx's parse errors never echo the password.
		return nil, fmt.Errorf("catalog: bad PostgreSQL URL: %v", err)
	}
	// Without a bound a wrong host black-holes Open for minutes (the OS TCP timeout); a connect_timeout
	// in the URL wins.
	if cfg.ConnConfig.ConnectTimeout <= 0 {
		cfg.ConnConfig.ConnectTimeout = connectTimeout
	}
	timeout := cfg.ConnConfig.ConnectTimeout
	where := net.JoinHostPort(cfg.ConnConfig.Host, strconv.Itoa(int(cfg.ConnConfig.Port)))
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("catalog: PostgreSQL pool for %s: %v", where, err)
	}
	pingCtx, cancel := context.WithTimeout(ctx, timeout)
	err = pool.Ping(pingCtx)
	cancel()
	if err != nil {
		pool.Close()
		return nil, connectError(where, timeout, err)
	}

	fail := func(err error) (backend, error) {
		pool.Close()
		return nil, err
	}
	driver := riverpgxv5.New(pool)
	q := pgxDBTX{pool}
	err = withAdvisoryLock(ctx, pool, func() error {
		if err := migrateRiver(ctx, driver, opts); err != nil {
			return err
		}
		return migrate(ctx, q, func(ctx context.Context, fn func(dbtx) error) error {
			return pgx.BeginFunc(ctx, pool, func(tx pgx.Tx) error { return fn(pgxDBTX{tx}) })
		})
	})
	if err != nil {
		return fail(err)
	}
	client, err := river.NewClient(driver, riverConfig(opts))
	if err != nil {
		return fail(fmt.Errorf("catalog: River client: %w", err))
	}
	return &riverBackend[pgx.Tx]{
		kind:   "postgres",
		pool:   q,
		pg:     pool,
		client: client,
		tx: txOps[pgx.Tx]{
			begin: func(ctx context.Context) (pgx.Tx, dbtx, error) {
				tx, err := pool.Begin(ctx)
				if err != nil {
					return nil, nil, err
				}
				return tx, pgxDBTX{tx}, nil
			},
			commit: func(ctx context.Context, tx pgx.Tx) error { return tx.Commit(ctx) },
			rollback: func(ctx context.Context, tx pgx.Tx) error {
				if err := tx.Rollback(ctx); err != nil && !errors.Is(err, pgx.ErrTxClosed) {
					return err
				}
				return nil
			},
		},
		pingDB:  pool.Ping,
		closeDB: func() error { pool.Close(); return nil },
	}, nil
}

// connectError turns pgx's multi-line connect error into the one line an operator needs.
func connectError(where string, timeout time.Duration, err error) error {
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) {
		// The server answered: it is reachable but refused us (bad database, user, password...).
		return fmt.Errorf("PostgreSQL at %s refused the connection: %s (SQLSTATE %s) (check --db)", where, pgErr.Message, pgErr.Code)
	}
	reason := err.Error()
	var opErr *net.OpError
	switch {
	case errors.As(err, &opErr) && opErr.Err != nil:
		reason = opErr.Err.Error() // e.g. "connect: connection refused"
	case errors.Is(err, context.DeadlineExceeded) || pgconn.Timeout(err):
		reason = "no answer within " + timeout.String()
	}
	reason = strings.Join(strings.Fields(reason), " ") // never more than one line
	return fmt.Errorf("cannot reach PostgreSQL at %s: %s (is it running? check --db)", where, reason)
}

// withAdvisoryLock runs fn while holding migrationLockKey on a dedicated connection.
func withAdvisoryLock(ctx context.Context, pool *pgxpool.Pool, fn func() error) error {
	conn, err := pool.Acquire(ctx)
	if err != nil {
		return fmt.Errorf("catalog: acquire connection for migrations: %w", err)
	}
	defer conn.Release()
	if _, err := conn.Exec(ctx, "SELECT pg_advisory_lock($1)", migrationLockKey); err != nil {
		return fmt.Errorf("catalog: take migration lock: %w", err)
	}
	defer func() {
		_, _ = conn.Exec(context.WithoutCancel(ctx), "SELECT pg_advisory_unlock($1)", migrationLockKey)
	}()
	return fn()
}
