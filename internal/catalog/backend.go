package catalog

import (
	"context"
	"errors"
	"fmt"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/riverqueue/river"
)

// backend is what the catalog needs from a database plus its River client. River's client is generic
// over the driver's transaction type (*sql.Tx for SQLite, pgx.Tx for PostgreSQL); riverBackend hides that
// parameter so Catalog itself is not generic.
type backend interface {
	name() string
	db() dbtx
	// inTx runs fn in one transaction. Jobs inserted through fn's insert commit or roll back with the rows.
	inTx(ctx context.Context, fn func(q dbtx, insert insertFunc) error) error
	listJobs(ctx context.Context, params *river.JobListParams) (*river.JobListResult, error)
	start(ctx context.Context) error
	stop(ctx context.Context) error
	stopAndCancel(ctx context.Context) error
	ping(ctx context.Context) error
	close() error
	// pgPool is the PostgreSQL pool, nil on SQLite.
	pgPool() *pgxpool.Pool
}

// insertFunc inserts a River job in the surrounding transaction and returns its id.
type insertFunc func(ctx context.Context, args river.JobArgs) (int64, error)

// txOps are the three transaction operations that differ between database/sql and pgx.
type txOps[TTx any] struct {
	begin    func(ctx context.Context) (TTx, dbtx, error)
	commit   func(ctx context.Context, tx TTx) error
	rollback func(ctx context.Context, tx TTx) error
}

type riverBackend[TTx any] struct {
	kind    string
	pool    dbtx
	pg      *pgxpool.Pool // nil on SQLite
	client  *river.Client[TTx]
	tx      txOps[TTx]
	pingDB  func(ctx context.Context) error
	closeDB func() error
}

func (b *riverBackend[TTx]) name() string { return b.kind }
func (b *riverBackend[TTx]) db() dbtx     { return b.pool }

func (b *riverBackend[TTx]) pgPool() *pgxpool.Pool { return b.pg }

func (b *riverBackend[TTx]) inTx(ctx context.Context, fn func(q dbtx, insert insertFunc) error) (err error) {
	tx, q, err := b.tx.begin(ctx)
	if err != nil {
		return fmt.Errorf("catalog: begin transaction: %w", err)
	}
	done := false
	defer func() {
		if done {
			return
		}
		// Roll back even when ctx is already cancelled: a pgx rollback on a dead context would only
		// close the connection, and a panic must not leave SQLite's single connection inside a tx.
		if rbErr := b.tx.rollback(context.WithoutCancel(ctx), tx); rbErr != nil && err != nil {
			err = errors.Join(err, fmt.Errorf("catalog: rollback: %w", rbErr))
		}
	}()
	insert := func(ctx context.Context, args river.JobArgs) (int64, error) {
		res, err := b.client.InsertTx(ctx, tx, args, nil)
		if err != nil {
			return 0, fmt.Errorf("catalog: insert %s job: %w", args.Kind(), err)
		}
		return res.Job.ID, nil
	}
	if err := fn(q, insert); err != nil {
		return err
	}
	done = true
	if err := b.tx.commit(ctx, tx); err != nil {
		return fmt.Errorf("catalog: commit: %w", err)
	}
	return nil
}

func (b *riverBackend[TTx]) listJobs(ctx context.Context, params *river.JobListParams) (*river.JobListResult, error) {
	return b.client.JobList(ctx, params)
}

func (b *riverBackend[TTx]) start(ctx context.Context) error { return b.client.Start(ctx) }
func (b *riverBackend[TTx]) stop(ctx context.Context) error  { return b.client.Stop(ctx) }
func (b *riverBackend[TTx]) stopAndCancel(ctx context.Context) error {
	return b.client.StopAndCancel(ctx)
}
func (b *riverBackend[TTx]) ping(ctx context.Context) error { return b.pingDB(ctx) }
func (b *riverBackend[TTx]) close() error                   { return b.closeDB() }
