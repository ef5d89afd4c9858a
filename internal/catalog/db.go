package catalog

import (
	"context"
	"database/sql"
	"errors"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
)

// dbtx is the one seam between the catalog's SQL and the two database libraries. Both a pool and a
// transaction satisfy it, so every query is written once (with $N placeholders, which modernc.org/sqlite
// binds positionally just like PostgreSQL) and runs unchanged inside or outside a transaction.
//
// Rows must be read to the end and closed before the next statement on the same dbtx: SQLite runs on a
// single connection, and a pgx connection cannot interleave statements either.
type dbtx interface {
	exec(ctx context.Context, query string, args ...any) (rowsAffected int64, err error)
	queryRow(ctx context.Context, query string, args ...any) row
	query(ctx context.Context, query string, args ...any) (rows, error)
}

// row.Scan returns ErrNotFound when the query matched nothing, whichever library ran it.
type row interface {
	Scan(dest ...any) error
}

type rows interface {
	Next() bool
	Scan(dest ...any) error
	Err() error
	Close()
}

// sqlQuerier is what *sql.DB and *sql.Tx have in common.
type sqlQuerier interface {
	ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error)
	QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error)
	QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row
}

type sqlDBTX struct{ q sqlQuerier }

func (d sqlDBTX) exec(ctx context.Context, query string, args ...any) (int64, error) {
	res, err := d.q.ExecContext(ctx, query, args...)
	if err != nil {
		return 0, err
	}
	return res.RowsAffected()
}

func (d sqlDBTX) queryRow(ctx context.Context, query string, args ...any) row {
	return sqlRow{d.q.QueryRowContext(ctx, query, args...)}
}

func (d sqlDBTX) query(ctx context.Context, query string, args ...any) (rows, error) {
	rs, err := d.q.QueryContext(ctx, query, args...)
	if err != nil {
		return nil, err
	}
	return sqlRows{rs}, nil
}

type sqlRow struct{ r *sql.Row }

func (r sqlRow) Scan(dest ...any) error {
	err := r.r.Scan(dest...)
	if errors.Is(err, sql.ErrNoRows) {
		return ErrNotFound
	}
	return err
}

type sqlRows struct{ *sql.Rows }

func (r sqlRows) Close() { _ = r.Rows.Close() }

// pgxQuerier is what *pgxpool.Pool and pgx.Tx have in common.
type pgxQuerier interface {
	Exec(ctx context.Context, sql string, args ...any) (pgconn.CommandTag, error)
	Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error)
	QueryRow(ctx context.Context, sql string, args ...any) pgx.Row
}

type pgxDBTX struct{ q pgxQuerier }

func (d pgxDBTX) exec(ctx context.Context, query string, args ...any) (int64, error) {
	tag, err := d.q.Exec(ctx, query, args...)
	if err != nil {
		return 0, err
	}
	return tag.RowsAffected(), nil
}

func (d pgxDBTX) queryRow(ctx context.Context, query string, args ...any) row {
	return pgxRow{d.q.QueryRow(ctx, query, args...)}
}

func (d pgxDBTX) query(ctx context.Context, query string, args ...any) (rows, error) {
	rs, err := d.q.Query(ctx, query, args...)
	if err != nil {
		return nil, err
	}
	return rs, nil
}

type pgxRow struct{ r pgx.Row }

func (r pgxRow) Scan(dest ...any) error {
	err := r.r.Scan(dest...)
	if errors.Is(err, pgx.ErrNoRows) {
		return ErrNotFound
	}
	return err
}
