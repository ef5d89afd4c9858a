package catalog

import (
	"context"
	"fmt"
	"time"

	"github.com/riverqueue/river/riverdriver"
	"github.com/riverqueue/river/rivermigrate"
)

// migration is one step of the catalog schema. Steps are append-only: never edit one that has shipped,
// add the next version instead. SQL is written once for both databases: TEXT ids, BIGINT unix-millisecond
// timestamps, JSON in TEXT, DOUBLE PRECISION floats.
type migration struct {
	version    int
	name       string
	statements []string
}

// schemaMigrations is a function rather than a package variable so nothing can append to it at run time.
func schemaMigrations() []migration {
	return []migration{
		{
			version: 1,
			name:    "teachers, courses, lectures",
			statements: []string{
				`CREATE TABLE teachers (
				id         TEXT PRIMARY KEY,
				name       TEXT NOT NULL,
				token_hash TEXT NOT NULL UNIQUE,
				created_at BIGINT NOT NULL
			)`,
				`CREATE TABLE courses (
				id         TEXT PRIMARY KEY,
				teacher_id TEXT NOT NULL REFERENCES teachers (id),
				title      TEXT NOT NULL,
				created_at BIGINT NOT NULL,
				UNIQUE (teacher_id, title)
			)`,
				`CREATE TABLE lectures (
				id               TEXT PRIMARY KEY,
				teacher_id       TEXT NOT NULL REFERENCES teachers (id),
				course_id        TEXT REFERENCES courses (id),
				title            TEXT NOT NULL,
				description      TEXT NOT NULL DEFAULT '',
				status           TEXT NOT NULL,
				progress         DOUBLE PRECISION NOT NULL DEFAULT 0,
				eta_seconds      DOUBLE PRECISION NOT NULL DEFAULT 0,
				error_reason     TEXT NOT NULL DEFAULT '',
				version          INTEGER NOT NULL DEFAULT 0,
				pending_version  INTEGER NOT NULL DEFAULT 0,
				last_version     INTEGER NOT NULL DEFAULT 0,
				source_key       TEXT NOT NULL DEFAULT '',
				duration_seconds DOUBLE PRECISION NOT NULL DEFAULT 0,
				renditions       TEXT NOT NULL DEFAULT '[]',
				created_at       BIGINT NOT NULL,
				updated_at       BIGINT NOT NULL
			)`,
				// Listing pages by (created_at, id), overall, per teacher and per course.
				`CREATE INDEX lectures_created ON lectures (created_at, id)`,
				`CREATE INDEX lectures_teacher ON lectures (teacher_id, created_at, id)`,
				`CREATE INDEX lectures_course ON lectures (course_id, created_at, id)`,
			},
		},
		{
			version: 2,
			name:    "transcode profile, captions, published assets, worker lease",
			statements: []string{
				`ALTER TABLE lectures ADD COLUMN profile TEXT NOT NULL DEFAULT 'lecture'`,
				`ALTER TABLE lectures ADD COLUMN captions_key TEXT NOT NULL DEFAULT ''`,
				`ALTER TABLE lectures ADD COLUMN captions_language TEXT NOT NULL DEFAULT ''`,
				`ALTER TABLE lectures ADD COLUMN source_seconds DOUBLE PRECISION NOT NULL DEFAULT 0`,
				`ALTER TABLE lectures ADD COLUMN assets TEXT NOT NULL DEFAULT '{}'`,
				`ALTER TABLE lectures ADD COLUMN worker_id TEXT NOT NULL DEFAULT ''`,
				`ALTER TABLE lectures ADD COLUMN heartbeat_at BIGINT NOT NULL DEFAULT 0`,
			},
		},
		{
			version: 3,
			name:    "resumable uploads",
			statements: []string{
				// One row per tus upload. The bytes live in the tus store; this row is who may touch
				// them, for which lecture, until when, and whether they were already handed over.
				`CREATE TABLE uploads (
				id          TEXT PRIMARY KEY,
				tus_id      TEXT NOT NULL DEFAULT '',
				lecture_id  TEXT NOT NULL REFERENCES lectures (id) ON DELETE CASCADE,
				teacher_id  TEXT NOT NULL,
				size        BIGINT NOT NULL,
				filename    TEXT NOT NULL DEFAULT '',
				state       TEXT NOT NULL,
				error       TEXT NOT NULL DEFAULT '',
				created_at  BIGINT NOT NULL,
				updated_at  BIGINT NOT NULL,
				expires_at  BIGINT NOT NULL
			)`,
				`CREATE INDEX uploads_lecture ON uploads (lecture_id, created_at)`,
				`CREATE INDEX uploads_expiry ON uploads (state, expires_at)`,
			},
		},
		{
			version: 4,
			name:    "teachers' schools",
			statements: []string{
				// The school a teacher teaches at; the region map says which region serves it, and
				// the playback URLs of the teacher's lectures carry that region.
				`ALTER TABLE teachers ADD COLUMN school TEXT NOT NULL DEFAULT ''`,
			},
		},
	}
}

// migrate applies the catalog migrations not yet recorded in lectern_migrations, all in one transaction,
// so a crash mid-way leaves the schema as it was. Both databases have transactional DDL.
func migrate(ctx context.Context, pool dbtx, inTx func(context.Context, func(dbtx) error) error) error {
	if _, err := pool.exec(ctx, `CREATE TABLE IF NOT EXISTS lectern_migrations (
		version    INTEGER PRIMARY KEY,
		name       TEXT NOT NULL,
		applied_at BIGINT NOT NULL
	)`); err != nil {
		return fmt.Errorf("catalog: create lectern_migrations: %w", err)
	}
	err := inTx(ctx, func(q dbtx) error {
		var current int
		if err := q.queryRow(ctx, `SELECT COALESCE(MAX(version), 0) FROM lectern_migrations`).Scan(&current); err != nil {
			return fmt.Errorf("read schema version: %w", err)
		}
		migrations := schemaMigrations()
		latest := migrations[len(migrations)-1].version
		if current > latest {
			return fmt.Errorf("database schema is at version %d but this lectern knows only up to %d: upgrade lectern", current, latest)
		}
		for _, m := range migrations {
			if m.version <= current {
				continue
			}
			for _, stmt := range m.statements {
				if _, err := q.exec(ctx, stmt); err != nil {
					return fmt.Errorf("migration %d (%s): %w", m.version, m.name, err)
				}
			}
			if _, err := q.exec(ctx, `INSERT INTO lectern_migrations (version, name, applied_at) VALUES ($1, $2, $3)`,
				m.version, m.name, time.Now().UnixMilli()); err != nil {
				return fmt.Errorf("record migration %d: %w", m.version, err)
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("catalog: migrate: %w", err)
	}
	return nil
}

// migrateRiver brings River's own tables (river_job, river_leader, ...) up to the version this build of
// River expects. It is a no-op when they already are.
func migrateRiver[TTx any](ctx context.Context, driver riverdriver.Driver[TTx], opts Options) error {
	m, err := rivermigrate.New(driver, &rivermigrate.Config{Logger: quieter(opts.Logger)})
	if err != nil {
		return fmt.Errorf("catalog: River migrator: %w", err)
	}
	if _, err := m.Migrate(ctx, rivermigrate.DirectionUp, nil); err != nil {
		return fmt.Errorf("catalog: River migrations: %w", err)
	}
	return nil
}
