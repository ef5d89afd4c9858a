package catalog_test

import (
	"context"
	"database/sql"
	"path/filepath"
	"strings"
	"testing"

	"github.com/lectern/lectern/internal/catalog"
	"github.com/lectern/lectern/internal/catalog/catalogtest"
)

func TestSQLiteConformance(t *testing.T) {
	catalogtest.RunConformance(t, func(t *testing.T) string {
		return "sqlite://" + filepath.Join(t.TempDir(), "nested", "lectern.db")
	})
}

// A database migrated by a newer lectern must be refused, not half-understood.
func TestSQLiteRefusesNewerSchema(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "lectern.db")
	c, err := catalog.Open(ctx, "sqlite://"+path, catalog.Options{Logger: quiet})
	if err != nil {
		t.Fatal(err)
	}
	c.Close()
	db, err := sql.Open("sqlite", path)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := db.Exec(`INSERT INTO lectern_migrations (version, name, applied_at) VALUES (999, 'future', 0)`); err != nil {
		t.Fatal(err)
	}
	db.Close()
	_, err = catalog.Open(ctx, "sqlite://"+path, catalog.Options{Logger: quiet})
	if err == nil || !strings.Contains(err.Error(), "upgrade lectern") {
		t.Errorf("Open of a newer schema = %v, want a refusal asking to upgrade", err)
	}
}
