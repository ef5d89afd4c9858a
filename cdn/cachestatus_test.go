package cdn

import (
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// TestCacheStatus walks one edge through the ways it answers and checks the Cache-Status field
// (RFC 9211) of each answer, next to X-Cache.
func TestCacheStatus(t *testing.T) {
	clk := newClock()
	var failing atomic.Bool
	up := newUpstream(t, func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/a":
			serveObject(w, r, segment, "Cache-Control", "max-age=60")
		case "/r":
			serveObject(w, r, segment, "Cache-Control", "max-age=1", "Etag", `"r1"`)
		case "/v":
			serveObject(w, r, segment, "Cache-Control", "max-age=60", "Vary", "Accept-Language")
		case "/no-store":
			serveObject(w, r, segment, "Cache-Control", "no-store")
		case "/parent":
			serveObject(w, r, segment, "Cache-Control", "max-age=60", "Cache-Status", "parent-edge; fwd=uri-miss; stored")
		case "/swr":
			serveObject(w, r, segment, "Cache-Control", "max-age=10, stale-while-revalidate=30", "Etag", `"s1"`)
		case "/sie":
			if failing.Load() {
				http.Error(w, "down", http.StatusServiceUnavailable)
				return
			}
			serveObject(w, r, segment, "Cache-Control", "max-age=10, stale-if-error=60")
		case "/post":
			w.Write([]byte("ok"))
		case "/gone":
			c, _, err := http.NewResponseController(w).Hijack()
			if err == nil {
				c.Close()
			}
		}
	})
	_, ts := newTestEdge(t, up.URL, clk, nil)
	tests := []struct {
		method, path string
		hdr          []string
		advance      time.Duration // before the request
		fail         bool          // the upstream answers /sie with 503
		status       int
		cache        string // X-Cache
		want         string // Cache-Status, all field lines joined
	}{
		{"GET", "/a", nil, 0, false, 200, "MISS", "lectern-edge; fwd=uri-miss; fwd-status=200; stored; ttl=60"},
		{"GET", "/a", nil, 7 * time.Second, false, 200, "HIT", "lectern-edge; hit; ttl=53"},
		{"HEAD", "/a", nil, 0, false, 200, "HIT", "lectern-edge; hit; ttl=53"},
		{"GET", "/a", []string{"Range", "bytes=0-9"}, 0, false, 206, "HIT", "lectern-edge; hit; ttl=53"},
		{"HEAD", "/head-miss", nil, 0, false, 200, "MISS", "lectern-edge; fwd=uri-miss; fwd-status=200"},
		{"GET", "/r", nil, 0, false, 200, "MISS", "lectern-edge; fwd=uri-miss; fwd-status=200; stored; ttl=1"},
		{"GET", "/r", nil, 2 * time.Second, false, 200, "REVALIDATED", "lectern-edge; fwd=stale; fwd-status=304; stored; ttl=1"},
		{"GET", "/v", []string{"Accept-Language", "en"}, 0, false, 200, "MISS", "lectern-edge; fwd=uri-miss; fwd-status=200; stored; ttl=60"},
		{"GET", "/v", []string{"Accept-Language", "fr"}, 0, false, 200, "MISS", "lectern-edge; fwd=vary-miss; fwd-status=200; stored; ttl=60"},
		{"GET", "/no-store", nil, 0, false, 200, "MISS", "lectern-edge; fwd=uri-miss; fwd-status=200"},
		{"GET", "/parent", nil, 0, false, 200, "MISS", "parent-edge; fwd=uri-miss; stored, lectern-edge; fwd=uri-miss; fwd-status=200; stored; ttl=60"},
		{"GET", "/parent", nil, 0, false, 200, "HIT", "parent-edge; fwd=uri-miss; stored, lectern-edge; hit; ttl=60"},
		{"POST", "/post", nil, 0, false, 200, "BYPASS", "lectern-edge; fwd=method; fwd-status=200"},
		{"GET", "/swr", nil, 0, false, 200, "MISS", "lectern-edge; fwd=uri-miss; fwd-status=200; stored; ttl=10"},
		{"GET", "/swr", nil, 15 * time.Second, false, 200, "STALE", "lectern-edge; hit; ttl=-5; detail=stale-while-revalidate"},
		{"GET", "/sie", nil, 0, false, 200, "MISS", "lectern-edge; fwd=uri-miss; fwd-status=200; stored; ttl=10"},
		{"GET", "/sie", nil, 20 * time.Second, true, 200, "STALE", "lectern-edge; fwd=stale; fwd-status=503; ttl=-10; detail=stale-if-error"},
		{"GET", "/sie", nil, 60 * time.Second, true, 503, "MISS", "lectern-edge; fwd=stale; fwd-status=503"},
		// The edge's own error answers are not about any upstream response: no member (RFC 9211 §2).
		{"GET", "/gone", nil, 0, false, 502, "MISS", ""},
	}
	for i, tc := range tests {
		clk.Advance(tc.advance)
		failing.Store(tc.fail)
		r := get(t, ts, tc.method, tc.path, tc.hdr...)
		got := strings.Join(r.Header.Values("Cache-Status"), ", ")
		if r.StatusCode != tc.status || r.cache() != tc.cache || got != tc.want {
			t.Errorf("step %d, %s %s: %d %s %q\n\twant %d %s %q", i, tc.method, tc.path, r.StatusCode, r.cache(), got,
				tc.status, tc.cache, tc.want)
		}
		if tc.path == "/swr" && tc.cache == "STALE" {
			waitFor(t, "the background revalidation", func() bool { return up.count("/swr") == 2 })
		}
	}
}

// TestCacheStatusCollapsed checks the collapsed parameter: set on requests answered by another's
// fill, "?0" on those that waited for a fill they could not use and went upstream themselves.
func TestCacheStatusCollapsed(t *testing.T) {
	tests := []struct {
		name           string
		cacheControl   string
		leader, waiter string
	}{
		{"shared", "max-age=60",
			"lectern-edge; fwd=uri-miss; fwd-status=200; stored; ttl=60",
			"lectern-edge; fwd=uri-miss; fwd-status=200; stored; collapsed; ttl=60"},
		{"not shareable", "private",
			"lectern-edge; fwd=uri-miss; fwd-status=200",
			"lectern-edge; fwd=uri-miss; fwd-status=200; collapsed=?0"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			up, release := blockingUpstream(t, func(w http.ResponseWriter, r *http.Request) {
				serveObject(w, r, segment, "Cache-Control", tc.cacheControl)
			})
			e, ts := newTestEdge(t, up.URL, newClock(), nil) // a stopped clock: ttl is exact
			const n = 5
			done := make(chan []response)
			go func() { done <- concurrently(t, ts, n, "/seg") }()
			waitFor(t, "the waiters", func() bool { return e.Stats().CollapsedWaiters.Load() == n-1 })
			close(release)
			counts := map[string]int{}
			for _, r := range <-done {
				counts[strings.Join(r.Header.Values("Cache-Status"), ", ")]++
			}
			if counts[tc.leader] != 1 || counts[tc.waiter] != n-1 {
				t.Errorf("Cache-Status values: %v", counts)
			}
		})
	}
}
