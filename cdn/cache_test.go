package cdn

import (
	"bytes"
	"io"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

var segment = bytes.Repeat([]byte("abcdefghij"), 100) // 1000 bytes

func TestHitMissAndAge(t *testing.T) {
	up := newUpstream(t, func(w http.ResponseWriter, r *http.Request) {
		age := "0"
		if r.URL.Path == "/aged" {
			age = "5"
		}
		serveObject(w, r, segment, "Cache-Control", "public, max-age=60", "Etag", `"s1"`, "Age", age,
			"Content-Type", "video/iso.segment")
	})
	clk := newClock()
	_, ts := newTestEdge(t, up.URL, clk, nil)

	first := get(t, ts, "GET", "/seg.m4s")
	if first.StatusCode != 200 || first.cache() != "MISS" || !bytes.Equal(first.body, segment) {
		t.Fatalf("first: %d %s, %d bytes", first.StatusCode, first.cache(), len(first.body))
	}
	if !strings.Contains(first.Header.Get("Via"), "1.1 lectern-edge") {
		t.Errorf("Via = %q", first.Header.Get("Via"))
	}
	clk.Advance(7 * time.Second)
	second := get(t, ts, "GET", "/seg.m4s")
	if second.cache() != "HIT" || !bytes.Equal(second.body, segment) {
		t.Fatalf("second: %s, %d bytes", second.cache(), len(second.body))
	}
	if got := second.Header.Get("Age"); got != "7" {
		t.Errorf("Age = %q, want 7", got)
	}
	for k, v := range map[string]string{"Content-Type": "video/iso.segment", "Etag": `"s1"`,
		"Cache-Control": "public, max-age=60", "Content-Length": "1000"} {
		if got := second.Header.Get(k); got != v {
			t.Errorf("HIT %s = %q, want %q", k, got, v)
		}
	}
	if n := up.count("/seg.m4s"); n != 1 {
		t.Errorf("upstream saw %d requests, want 1", n)
	}
	// The query is part of the key.
	if r := get(t, ts, "GET", "/seg.m4s?x=1"); r.cache() != "MISS" {
		t.Errorf("other query: %s", r.cache())
	}

	// The upstream's Age counts: 5 when it arrived, 15 ten seconds later.
	get(t, ts, "GET", "/aged")
	clk.Advance(10 * time.Second)
	if r := get(t, ts, "GET", "/aged"); r.cache() != "HIT" || r.Header.Get("Age") != "15" {
		t.Errorf("aged: %s, Age %q, want HIT 15", r.cache(), r.Header.Get("Age"))
	}
}

func TestRevalidation(t *testing.T) {
	clk := newClock()
	etag := `"v1"`
	body := []byte("version one")
	var mu sync.Mutex
	up := newUpstream(t, func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		et, b := etag, body
		mu.Unlock()
		serveObject(w, r, b, "Cache-Control", "max-age=1", "Etag", et, "X-Generation", et)
	})
	e, ts := newTestEdge(t, up.URL, clk, nil)

	get(t, ts, "GET", "/p.m3u8")
	clk.Advance(2 * time.Second)
	r := get(t, ts, "GET", "/p.m3u8")
	if r.cache() != "REVALIDATED" || string(r.body) != "version one" || r.StatusCode != 200 {
		t.Fatalf("stale request: %d %s %q", r.StatusCode, r.cache(), r.body)
	}
	if got := up.last().Header.Get("If-None-Match"); got != `"v1"` {
		t.Errorf("revalidation sent If-None-Match %q", got)
	}
	if r.Header.Get("Age") != "0" {
		t.Errorf("Age after revalidation %q, want 0", r.Header.Get("Age"))
	}
	if r := get(t, ts, "GET", "/p.m3u8"); r.cache() != "HIT" {
		t.Errorf("after a 304 the entry is fresh again: %s", r.cache())
	}
	if e.Stats().Revalidations.Load() != 1 {
		t.Errorf("Revalidations = %d", e.Stats().Revalidations.Load())
	}

	// A changed object answers the revalidation with 200, which replaces the entry.
	mu.Lock()
	etag, body = `"v2"`, []byte("version two")
	mu.Unlock()
	clk.Advance(2 * time.Second)
	r = get(t, ts, "GET", "/p.m3u8")
	if r.cache() != "MISS" || string(r.body) != "version two" || r.Header.Get("Etag") != `"v2"` {
		t.Fatalf("changed object: %s %q %s", r.cache(), r.body, r.Header.Get("Etag"))
	}
	if r := get(t, ts, "GET", "/p.m3u8"); r.cache() != "HIT" || string(r.body) != "version two" {
		t.Errorf("replaced entry: %s %q", r.cache(), r.body)
	}
	if n := up.count("/p.m3u8"); n != 3 {
		t.Errorf("upstream saw %d requests, want 3", n)
	}
	// Replacements keep the gauges exact.
	e.mem.cache.CleanUp()
	if st := e.Stats(); st.CacheEntries.Load() != 1 || uint64(st.CacheBytes.Load()) != e.mem.cache.WeightedSize() {
		t.Errorf("gauges after replacements: %d entries, %d bytes; cache weighs %d", st.CacheEntries.Load(),
			st.CacheBytes.Load(), e.mem.cache.WeightedSize())
	}
}

// A 304 that names another representation by a strong ETag (RFC 9111 §4.3.4) updates nothing: the
// edge refetches the object whole instead of serving its stored body under the new headers.
func TestNotModifiedForAnotherRepresentation(t *testing.T) {
	var version atomic.Int64
	up := newUpstream(t, func(w http.ResponseWriter, r *http.Request) {
		etag, body := `"v1"`, "first"
		if version.Load() > 0 {
			etag, body = `"v2"`, "second"
		}
		w.Header().Set("Cache-Control", "max-age=1")
		w.Header().Set("Etag", etag)
		if r.Header.Get("If-None-Match") != "" {
			// A broken origin: it answers every conditional request with 304, under its new ETag.
			w.WriteHeader(http.StatusNotModified)
			return
		}
		io.WriteString(w, body)
	})
	clk := newClock()
	_, ts := newTestEdge(t, up.URL, clk, nil)
	if r := get(t, ts, "GET", "/o"); string(r.body) != "first" {
		t.Fatalf("first: %q", r.body)
	}
	version.Store(1)
	clk.Advance(2 * time.Second)
	r := get(t, ts, "GET", "/o")
	if string(r.body) != "second" || r.Header.Get("Etag") != `"v2"` {
		t.Fatalf("after a 304 for another representation: %q, Etag %s; want the new object", r.body, r.Header.Get("Etag"))
	}
	if n := up.count("/o"); n != 3 {
		t.Errorf("upstream requests %d, want 3 (fill, conditional, whole refetch)", n)
	}
	if req := up.last(); req.Header.Get("If-None-Match") != "" {
		t.Errorf("the refetch was conditional: If-None-Match %q", req.Header.Get("If-None-Match"))
	}
	if r := get(t, ts, "GET", "/o"); string(r.body) != "second" || r.cache() != "HIT" {
		t.Errorf("then: %q %s, want the new object from the cache", r.body, r.cache())
	}
}
