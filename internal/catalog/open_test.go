package catalog_test

import (
	"context"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/lectern/lectern/internal/catalog"
)

var quiet = slog.New(slog.DiscardHandler)

func TestOpenRejectsBadURLs(t *testing.T) {
	ctx := context.Background()
	for _, tc := range []struct {
		url  string
		want []string // substrings of the error
		hide string   // must not appear in the error
	}{
		{url: "mysql://root:hunter2@db/lectern", want: []string{`unsupported database URL scheme "mysql"`, "sqlite://", "postgres://"}, hide: "hunter2"},
		{url: "lectern.db", want: []string{"has no scheme"}},
		{url: "", want: []string{"has no scheme"}},
		{url: "sqlite://", want: []string{"names no database file"}},
		{url: "postgres://u:hunter2@[::1", want: []string{"bad PostgreSQL URL"}, hide: "hunter2"},
	} {
		c, err := catalog.Open(ctx, tc.url, catalog.Options{Logger: quiet})
		if err == nil {
			c.Close()
			t.Errorf("Open(%q) succeeded", tc.url)
			continue
		}
		msg := err.Error()
		for _, w := range tc.want {
			if !strings.Contains(msg, w) {
				t.Errorf("Open(%q) = %q, want it to mention %q", tc.url, msg, w)
			}
		}
		if tc.hide != "" && strings.Contains(msg, tc.hide) {
			t.Errorf("Open(%q) = %q leaks the password", tc.url, msg)
		}
		if strings.Contains(msg, "\n") {
			t.Errorf("Open(%q) error spans lines: %q", tc.url, msg)
		}
	}
}

func TestOpenUnreachablePostgresFailsFast(t *testing.T) {
	ctx := context.Background()
	start := time.Now()
	c, err := catalog.Open(ctx, "postgres://lectern@127.0.0.1:1/lectern?sslmode=disable", catalog.Options{Logger: quiet})
	if err == nil {
		c.Close()
		t.Fatal("Open of a closed port succeeded")
	}
	if d := time.Since(start); d > 8*time.Second {
		t.Errorf("Open took %v, want a bounded connect timeout", d)
	}
	msg := err.Error()
	if !strings.HasPrefix(msg, "cannot reach PostgreSQL at 127.0.0.1:1: ") || !strings.Contains(msg, "is it running? check --db") ||
		strings.Contains(msg, "\n") {
		t.Errorf("error = %q, want one line: cannot reach PostgreSQL at 127.0.0.1:1: ... (is it running? check --db)", msg)
	}
	t.Log(msg)
}

func TestOpenSilentPostgresTimesOut(t *testing.T) {
	if testing.Short() {
		t.Skip("waits for the connect timeout")
	}
	// A loopback listener that never accepts: the TCP handshake completes in the kernel's backlog but no
	// server ever answers, like a hung database. Open must give up within its bound.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	addr := ln.Addr().String()
	start := time.Now()
	_, err = catalog.Open(context.Background(), "postgres://lectern@"+addr+"/lectern?sslmode=disable", catalog.Options{Logger: quiet})
	if err == nil {
		t.Fatal("Open of a silent server succeeded")
	}
	if d := time.Since(start); d > 8*time.Second {
		t.Errorf("Open took %v, want about 5s at most", d)
	}
	if msg := err.Error(); !strings.HasPrefix(msg, "cannot reach PostgreSQL at "+addr+": ") {
		t.Errorf("error = %q", msg)
	}
}

func TestOpenSQLiteURLForms(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	t.Chdir(dir)
	for _, tc := range []struct{ url, file string }{
		{"sqlite://" + filepath.Join(dir, "abs", "a.db"), filepath.Join(dir, "abs", "a.db")},
		{"sqlite://rel/b.db", filepath.Join(dir, "rel", "b.db")},
		{"file:" + filepath.Join(dir, "c.db"), filepath.Join(dir, "c.db")},
		{"file:d.db", filepath.Join(dir, "d.db")},
		{"sqlite://" + filepath.Join(dir, "with space", "e?.db"), filepath.Join(dir, "with space", "e?.db")},
	} {
		c, err := catalog.Open(ctx, tc.url, catalog.Options{Logger: quiet})
		if err != nil {
			// "?" starts a query in a URL; only the escaped form can name such a file.
			if strings.Contains(tc.url, "?") {
				continue
			}
			t.Errorf("Open(%q): %v", tc.url, err)
			continue
		}
		if c.Backend() != "sqlite" {
			t.Errorf("Open(%q).Backend() = %q", tc.url, c.Backend())
		}
		c.Close()
		if _, err := os.Stat(tc.file); err != nil && !strings.Contains(tc.url, "?") {
			t.Errorf("Open(%q) did not create %s: %v", tc.url, tc.file, err)
		}
	}
}
