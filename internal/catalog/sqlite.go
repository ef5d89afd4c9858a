package catalog

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"strings"

	"github.com/riverqueue/river"
	"github.com/riverqueue/river/riverdriver/riversqlite"
	_ "modernc.org/sqlite" // registers the pure-Go "sqlite" database/sql driver
)

// sqlitePragmas are applied by modernc.org/sqlite to every new connection.
//
//   - WAL lets readers of other processes (e.g. an admin shell) run while we write.
//   - busy_timeout makes a second process wait for the write lock instead of failing at once.
//   - foreign_keys is off by default in SQLite; the schema relies on it.
//   - synchronous=NORMAL is durable across process crashes in WAL mode and much faster than FULL.
//   - _txlock=immediate takes the write lock at BEGIN, so a transaction never fails half-way with
//     SQLITE_BUSY when it upgrades from reading to writing.
const sqlitePragmas = "_pragma=busy_timeout(10000)&_pragma=journal_mode(WAL)&_pragma=foreign_keys(1)" +
	"&_pragma=synchronous(NORMAL)&_txlock=immediate"

// sqlitePath turns a sqlite:// or file: URL into a filesystem path.
func sqlitePath(rawURL string) (string, error) {
	_, rest, _ := strings.Cut(rawURL, ":")
	rest, _, _ = strings.Cut(rest, "?")
	var p string
	switch {
	case strings.HasPrefix(rest, "//"):
		// sqlite:///abs/x.db -> "/abs/x.db"; sqlite://rel/x.db -> "rel/x.db" (host + path).
		p = strings.TrimPrefix(rest, "//")
	default:
		p = rest // file:/abs/x.db, file:rel.db, sqlite:rel.db
	}
	unescaped, err := url.PathUnescape(p)
	if err != nil {
		return "", fmt.Errorf("catalog: SQLite URL %q: %w", rawURL, err)
	}
	if unescaped == "" || strings.HasSuffix(unescaped, "/") {
		return "", fmt.Errorf("catalog: SQLite URL %q names no database file", rawURL)
	}
	return filepath.Clean(unescaped), nil
}

func openSQLite(ctx context.Context, rawURL string, opts Options) (backend, error) {
	path, err := sqlitePath(rawURL)
	if err != nil {
		return nil, err
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return nil, fmt.Errorf("catalog: create directory for SQLite database: %w", err)
	}
	// A file: URI (SQLite's own URI syntax) so that unusual characters in the path survive: the path
	// is percent-escaped and modernc keeps our _pragma parameters for itself.
	dsn := "file:" + (&url.URL{Path: path}).EscapedPath() + "?" + sqlitePragmas
	db, err := sql.Open("sqlite", dsn)
	if err != nil {
		return nil, fmt.Errorf("catalog: open SQLite %s: %w", path, err)
	}
	// ONE connection: SQLite allows one writer at a time, and River's many concurrent maintenance queries
	// otherwise fail with SQLITE_BUSY. The cost is that nothing may query db while holding a transaction
	// on it (it would wait for the only connection forever); all catalog code runs a transaction's
	// statements on the transaction itself.
	db.SetMaxOpenConns(1)
	db.SetMaxIdleConns(1)
	db.SetConnMaxLifetime(0)
	db.SetConnMaxIdleTime(0)

	fail := func(err error) (backend, error) {
		_ = db.Close()
		return nil, err
	}
	if err := db.PingContext(ctx); err != nil {
		return fail(fmt.Errorf("catalog: open SQLite %s: %w", path, err))
	}
	driver := riversqlite.New(db)
	pool := sqlDBTX{db}
	if err := migrateRiver(ctx, driver, opts); err != nil {
		return fail(err)
	}
	if err := migrate(ctx, pool, func(ctx context.Context, fn func(dbtx) error) error {
		return sqlTx(ctx, db, fn)
	}); err != nil {
		return fail(err)
	}
	client, err := river.NewClient(driver, riverConfig(opts))
	if err != nil {
		return fail(fmt.Errorf("catalog: River client: %w", err))
	}
	return &riverBackend[*sql.Tx]{
		kind:   "sqlite",
		pool:   pool,
		client: client,
		tx: txOps[*sql.Tx]{
			begin: func(ctx context.Context) (*sql.Tx, dbtx, error) {
				tx, err := db.BeginTx(ctx, nil)
				if err != nil {
					return nil, nil, err
				}
				return tx, sqlDBTX{tx}, nil
			},
			commit:   func(_ context.Context, tx *sql.Tx) error { return tx.Commit() },
			rollback: func(_ context.Context, tx *sql.Tx) error { return ignoreDone(tx.Rollback()) },
		},
		pingDB:  db.PingContext,
		closeDB: db.Close,
	}, nil
}

// sqlTx runs fn in a database/sql transaction.
func sqlTx(ctx context.Context, db *sql.DB, fn func(dbtx) error) error {
	tx, err := db.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	if err := fn(sqlDBTX{tx}); err != nil {
		_ = tx.Rollback()
		return err
	}
	return tx.Commit()
}

func ignoreDone(err error) error {
	if errors.Is(err, sql.ErrTxDone) {
		return nil
	}
	return err
}
