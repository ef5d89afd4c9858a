package cdn

import (
	"bytes"
	"net/http"
	"testing"
	"time"
)

// The edge keeps a response for CDN-Cache-Control's lifetime while clients get Cache-Control as the
// upstream sent it, and CDN-Cache-Control too (RFC 9213 §3: forwarded for downstream CDNs).
func TestCDNCacheControl(t *testing.T) {
	up := newUpstream(t, func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/targeted":
			serveObject(w, r, segment, "Cache-Control", "public, max-age=5", "Cdn-Cache-Control", "max-age=60", "Etag", `"t"`)
		case "/cdn-no-store":
			serveObject(w, r, segment, "Cache-Control", "public, max-age=60", "Cdn-Cache-Control", "no-store")
		case "/browser-no-store":
			serveObject(w, r, segment, "Cache-Control", "no-store", "Cdn-Cache-Control", "max-age=60")
		}
	})
	clk := newClock()
	_, ts := newTestEdge(t, up.URL, clk, nil)

	if r := get(t, ts, "GET", "/targeted"); r.cache() != "MISS" || r.Header.Get("Cache-Control") != "public, max-age=5" {
		t.Fatalf("first: %s, Cache-Control %q", r.cache(), r.Header.Get("Cache-Control"))
	}
	clk.Advance(10 * time.Second)
	r := get(t, ts, "GET", "/targeted")
	if r.cache() != "HIT" || !bytes.Equal(r.body, segment) {
		t.Fatalf("after 10s (past max-age=5, within CDN max-age=60): %s, %d bytes", r.cache(), len(r.body))
	}
	for k, want := range map[string]string{"Cache-Control": "public, max-age=5", "Cdn-Cache-Control": "max-age=60", "Age": "10"} {
		if got := r.Header.Get(k); got != want {
			t.Errorf("HIT %s = %q, want %q", k, got, want)
		}
	}
	if n := up.count("/targeted"); n != 1 {
		t.Errorf("upstream saw %d requests within the CDN lifetime, want 1", n)
	}
	clk.Advance(51 * time.Second)
	if r := get(t, ts, "GET", "/targeted"); r.cache() != "REVALIDATED" {
		t.Errorf("after 61s: %s, want REVALIDATED", r.cache())
	}

	for range 2 {
		if r := get(t, ts, "GET", "/cdn-no-store"); r.StatusCode != 200 || r.Header.Get("Cache-Control") != "public, max-age=60" {
			t.Fatalf("cdn-no-store: %d, Cache-Control %q", r.StatusCode, r.Header.Get("Cache-Control"))
		}
	}
	if n := up.count("/cdn-no-store"); n != 2 {
		t.Errorf("CDN-Cache-Control: no-store was stored (%d upstream requests, want 2)", n)
	}

	get(t, ts, "GET", "/browser-no-store")
	if r := get(t, ts, "GET", "/browser-no-store"); r.cache() != "HIT" || r.Header.Get("Cache-Control") != "no-store" {
		t.Errorf("Cache-Control: no-store with CDN-Cache-Control: max-age=60: %s, Cache-Control %q; want a HIT that keeps no-store for the browser",
			r.cache(), r.Header.Get("Cache-Control"))
	}
}

// The origin answers a lecture's unversioned entry point with a 302 to its newest version: browsers
// keep it 5s, edges 30s. The edge serves it from memory with Location intact.
func TestRedirectEntryPointCached(t *testing.T) {
	up := newUpstream(t, func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/hls/lec/master.m3u8":
			w.Header().Set("Location", "v3/master.m3u8")
			w.Header().Set("Cache-Control", "public, max-age=5, stale-while-revalidate=30")
			w.Header().Set("Cdn-Cache-Control", "public, max-age=30, stale-while-revalidate=60")
			w.WriteHeader(http.StatusFound)
		case "/hls/gone/master.m3u8":
			w.Header().Set("Cache-Control", "public, max-age=10")
			http.NotFound(w, r)
		}
	})
	clk := newClock()
	e, ts := newTestEdge(t, up.URL, clk, nil)
	const p = "/hls/lec/master.m3u8"
	check := func(what string, r response, cache string) {
		t.Helper()
		if r.StatusCode != 302 || r.cache() != cache || r.Header.Get("Location") != "v3/master.m3u8" {
			t.Errorf("%s: %d %s Location %q; want 302 %s v3/master.m3u8", what, r.StatusCode, r.cache(), r.Header.Get("Location"), cache)
		}
		if got := r.Header.Get("Cache-Control"); got != "public, max-age=5, stale-while-revalidate=30" {
			t.Errorf("%s: Cache-Control %q", what, got)
		}
	}
	check("first", get(t, ts, "GET", p), "MISS")
	clk.Advance(20 * time.Second)
	check("after 20s", get(t, ts, "GET", p), "HIT")
	check("HEAD after 20s", get(t, ts, "HEAD", p), "HIT")
	// A Range or conditional from a player does not turn the stored redirect into something else.
	check("with Range", get(t, ts, "GET", p, "Range", "bytes=0-9"), "HIT")
	if n := up.count(p); n != 1 {
		t.Errorf("upstream saw %d requests within 30s, want 1", n)
	}
	// Past the edge lifetime, within the edge's stale-while-revalidate: served stale at once while a
	// background fill fetches it again.
	clk.Advance(11 * time.Second)
	check("after 31s", get(t, ts, "GET", p), "STALE")
	waitFor(t, "the background fill", func() bool {
		ent, ok := e.mem.get(p)
		return ok && ent.fresh(clk.Now())
	})
	if n := up.count(p); n != 2 {
		t.Errorf("upstream saw %d requests after the edge lifetime, want 2", n)
	}
	check("after the background fill", get(t, ts, "GET", p), "HIT")
	// Past lifetime and stale-while-revalidate (30s + 60s): fetched before answering.
	clk.Advance(91 * time.Second)
	check("after 91s more", get(t, ts, "GET", p), "MISS")
	if n := up.count(p); n != 3 {
		t.Errorf("upstream saw %d requests, want 3", n)
	}

	// A 404 with explicit freshness is kept too (negative caching): a bad link cannot hammer the origin.
	for i, want := range []string{"MISS", "HIT"} {
		if r := get(t, ts, "GET", "/hls/gone/master.m3u8"); r.StatusCode != 404 || r.cache() != want {
			t.Errorf("404 request %d: %d %s, want 404 %s", i, r.StatusCode, r.cache(), want)
		}
	}
}
