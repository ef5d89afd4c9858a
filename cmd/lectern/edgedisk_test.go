package main

import (
	"bytes"
	"io/fs"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// TestEdgeDiskTierFlags: `lectern edge --disk-dir DIR --disk-size N` writes what it caches to DIR,
// and another edge started on DIR after the first was killed serves it with no upstream request.
func TestEdgeDiskTierFlags(t *testing.T) {
	if testing.Short() {
		t.Skip("runs the lectern binary")
	}
	body := bytes.Repeat([]byte("segment!"), 2048)
	up, fetches := countingUpstream(t, body)
	dir := filepath.Join(t.TempDir(), "edge-cache")
	const path = "/hls/lec1/v1/720p/seg_00001.m4s"

	addr := freeAddr(t)
	kill := startRole(t, addr, "edge", "--listen", addr, "--upstream", up.URL, "--disk-dir", dir, "--disk-size", "1MiB")
	if r := do(t, "GET", "http://"+addr+path); r.status != 200 || r.header.Get("X-Cache") != "MISS" {
		t.Fatalf("first GET: %d %s", r.status, r.header.Get("X-Cache"))
	}
	// The disk write is in the background: wait until the edge counts the file in place.
	entries := regexp.MustCompile(`(?m)^lectern_edge_disk_entries 1$`)
	for deadline := time.Now().Add(5 * time.Second); !entries.Match(do(t, "GET", "http://"+addr+"/metrics").body); time.Sleep(20 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("the edge reports no disk entry after 5s")
		}
	}
	if n := countFiles(dir); n != 1 {
		t.Fatalf("%d files in --disk-dir, want 1", n)
	}
	kill() // no graceful shutdown: the file must already be complete

	addr = freeAddr(t)
	startRole(t, addr, "edge", "--listen", addr, "--upstream", up.URL, "--disk-dir", dir, "--disk-size", "1MiB")
	r := do(t, "GET", "http://"+addr+path)
	if r.status != 200 || !bytes.Equal(r.body, body) || r.header.Get("X-Cache") != "HIT" ||
		!strings.HasSuffix(r.header.Get("Cache-Status"), "detail=disk") {
		t.Errorf("after the restart: %d %s %q, %d bytes; want a disk hit", r.status, r.header.Get("X-Cache"),
			r.header.Get("Cache-Status"), len(r.body))
	}
	if n := fetches.Load(); n != 1 {
		t.Errorf("upstream fetches: %d, want 1", n)
	}
	m := do(t, "GET", "http://"+addr+"/metrics")
	if !regexp.MustCompile(`(?m)^lectern_edge_tier_hits_total\{tier="disk"\} 1$`).Match(m.body) ||
		!regexp.MustCompile(`(?m)^lectern_edge_disk_entries 1$`).Match(m.body) {
		t.Errorf("metrics lack the disk hit or entry:\n%s", m.body)
	}
}

func countFiles(dir string) int {
	n := 0
	filepath.WalkDir(dir, func(_ string, d fs.DirEntry, err error) error {
		if err == nil && !d.IsDir() {
			n++
		}
		return nil
	})
	return n
}

// TestServeEdgeDiskDir: serve passes --edge-disk-dir to its edge, which creates it at start-up.
func TestServeEdgeDiskDir(t *testing.T) {
	if testing.Short() {
		t.Skip("runs the lectern binary")
	}
	dir := filepath.Join(t.TempDir(), "edge-cache")
	startServe(t, t.TempDir(), "--edge-disk-dir", dir, "--edge-disk-size", "64MiB")
	if fi, err := os.Stat(dir); err != nil || !fi.IsDir() {
		t.Errorf("serve --edge-disk-dir: %v", err)
	}
}

// countingUpstream serves body, cacheable for an hour, to every request and counts them.
func countingUpstream(t *testing.T, body []byte) (*httptest.Server, *atomic.Int64) {
	t.Helper()
	var fetches atomic.Int64
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fetches.Add(1)
		w.Header().Set("Cache-Control", "max-age=3600")
		w.Write(body)
	}))
	t.Cleanup(up.Close)
	return up, &fetches
}
