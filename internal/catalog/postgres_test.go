package catalog_test

import (
	"context"
	"net/url"
	"strings"
	"testing"

	"github.com/lectern/lectern/internal/catalog"
	"github.com/lectern/lectern/internal/catalog/catalogtest"
	"github.com/lectern/lectern/internal/testenv"
)

func TestPostgresConformance(t *testing.T) {
	catalogtest.RunConformance(t, func(t *testing.T) string { return testenv.PostgresURL(t) })
}

func TestPostgresRefusalIsOneLine(t *testing.T) {
	u, err := url.Parse(testenv.PostgresURL(t))
	if err != nil {
		t.Fatal(err)
	}
	u.Path = "/" + testenv.RandomName("lectern_missing_")
	_, err = catalog.Open(context.Background(), u.String(), catalog.Options{Logger: quiet})
	if err == nil {
		t.Fatal("Open of a missing database succeeded")
	}
	msg := err.Error()
	if !strings.HasPrefix(msg, "PostgreSQL at "+u.Host+" refused the connection: ") || !strings.Contains(msg, "does not exist") ||
		strings.Contains(msg, "\n") {
		t.Errorf("error = %q", msg)
	}
	t.Log(msg)
}
