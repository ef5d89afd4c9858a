// Package testenv hands tests the real servers that `make test` starts: a MinIO server (S3) and a
// PostgreSQL server, both on loopback.
//
// The servers are found through environment variables set by scripts/test-services.sh:
//
//	LECTERN_TEST_S3_URL        s3://?endpoint=127.0.0.1:PORT&access_key=...&secret_key=...&secure=false
//	LECTERN_TEST_POSTGRES_URL  postgres://user@127.0.0.1:PORT/postgres?sslmode=disable
//
// When a variable is missing the test is skipped, unless LECTERN_TEST_REQUIRE_SERVICES=1 (set by
// `make test` and CI), in which case the test fails: a run that claims to test against real parts must not
// quietly skip them.
//
// A test that must stop storage under a running service starts a MinIO of its own with [StartMinIO]
// and calls Stop and Start on it; the shared server stays up for every other test.
package testenv

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"net/url"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
)

// need returns the value of an environment variable that names a real server, or skips/fails the test.
func need(t testing.TB, name, what string) string {
	t.Helper()
	v := os.Getenv(name)
	if v != "" {
		return v
	}
	msg := name + " is not set: run the tests through `make test`, which starts " + what
	if os.Getenv("LECTERN_TEST_REQUIRE_SERVICES") == "1" {
		t.Fatal(msg)
	}
	t.Skip(msg)
	return ""
}

// RandomName returns prefix followed by 12 random hex digits; safe as a bucket or database name.
func RandomName(prefix string) string {
	b := make([]byte, 6)
	_, _ = rand.Read(b)
	return prefix + hex.EncodeToString(b)
}

// S3URL returns an objstore URL for a fresh, empty bucket on the test MinIO server. The bucket is created
// by the driver on open (create=true) and is left behind with the server's temp dir.
func S3URL(t testing.TB) string {
	t.Helper()
	base := need(t, "LECTERN_TEST_S3_URL", "a MinIO server")
	u, err := url.Parse(base)
	if err != nil {
		t.Fatalf("LECTERN_TEST_S3_URL: %v", err)
	}
	u.Host = RandomName("lectern-")
	q := u.Query()
	q.Set("create", "true")
	u.RawQuery = q.Encode()
	return u.String()
}

// PostgresURL returns the URL of a fresh database on the test PostgreSQL server, dropped when the test ends.
func PostgresURL(t testing.TB) string {
	t.Helper()
	base := need(t, "LECTERN_TEST_POSTGRES_URL", "a PostgreSQL server")
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, base)
	if err != nil {
		t.Fatalf("connect to test PostgreSQL: %v", err)
	}
	defer conn.Close(ctx)
	name := RandomName("lectern_test_")
	if _, err := conn.Exec(ctx, "CREATE DATABASE "+name); err != nil {
		t.Fatalf("create test database: %v", err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		c, err := pgx.Connect(ctx, base)
		if err != nil {
			return
		}
		defer c.Close(ctx)
		_, _ = c.Exec(ctx, "DROP DATABASE IF EXISTS "+name+" WITH (FORCE)")
	})
	u, err := url.Parse(base)
	if err != nil {
		t.Fatalf("LECTERN_TEST_POSTGRES_URL: %v", err)
	}
	u.Path = "/" + name
	return u.String()
}

// Short reports whether slow suites should be skipped (`go test -short`).
func Short() bool { return testing.Short() }

// Required reports whether the run requires every real part (make test / CI).
func Required() bool { return strings.TrimSpace(os.Getenv("LECTERN_TEST_REQUIRE_SERVICES")) == "1" }
