package cdn

import (
	"net/http"
	"strconv"
	"sync"
	"testing"
	"time"
)

// staleUpstream serves "v1" with the headers set for each path, or fails as told: mode "503" answers
// 503, "down" drops the connection without an answer, anything else serves the object (304 to a
// matching If-None-Match).
type staleUpstream struct {
	*upstream
	mu    sync.Mutex
	hdr   map[string][]string
	mode  map[string]string
	block map[string]chan struct{} // when set, a request waits for it to close
}

func newStaleUpstream(t *testing.T) *staleUpstream {
	s := &staleUpstream{hdr: map[string][]string{}, mode: map[string]string{}, block: map[string]chan struct{}{}}
	s.upstream = newUpstream(t, func(w http.ResponseWriter, r *http.Request) {
		s.mu.Lock()
		hdr, mode, block := s.hdr[r.URL.Path], s.mode[r.URL.Path], s.block[r.URL.Path]
		s.mu.Unlock()
		if block != nil {
			select { // the request's end too: a test failing early must not hang on it
			case <-block:
			case <-r.Context().Done():
				return
			}
		}
		switch mode {
		case "503":
			w.Header().Set("Cache-Control", "no-store")
			http.Error(w, "overloaded", http.StatusServiceUnavailable)
		case "500-cacheable":
			w.Header().Set("Cache-Control", "max-age=60")
			http.Error(w, "broken", http.StatusInternalServerError)
		case "404":
			w.Header().Set("Cache-Control", "max-age=60")
			http.Error(w, "gone", http.StatusNotFound)
		case "down":
			c, _, err := http.NewResponseController(w).Hijack()
			if err == nil {
				c.Close()
			}
		default:
			serveObject(w, r, []byte("v1"), append([]string{"Etag", `"v1"`}, hdr...)...)
		}
	})
	return s
}

func (s *staleUpstream) set(path, mode string, block chan struct{}, hdr ...string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if hdr != nil {
		s.hdr[path] = hdr
	}
	s.mode[path] = mode
	if block == nil {
		delete(s.block, path)
	} else {
		s.block[path] = block
	}
}

// TestServeStale checks stale-while-revalidate and stale-if-error (RFC 5861) from Cache-Control and
// from CDN-Cache-Control, and that must-revalidate, proxy-revalidate and s-maxage rule both out.
func TestServeStale(t *testing.T) {
	clk := newClock()
	up := newStaleUpstream(t)
	e, ts := newTestEdge(t, up.URL, clk, nil)
	tests := []struct {
		name    string
		hdr     []string
		advance time.Duration
		mode    string // the upstream's behaviour for the second request
		status  int
		cache   string // X-Cache
		age     string
		body    string
		// background: the answer came at once, while a revalidation runs behind it; after it the
		// entry is fresh again (Age 0).
		background bool
	}{
		{"swr within", []string{"Cache-Control", "max-age=10, stale-while-revalidate=30"}, 15 * time.Second, "", 200, "STALE", "15", "v1", true},
		{"swr past window", []string{"Cache-Control", "max-age=10, stale-while-revalidate=30"}, 40 * time.Second, "", 200, "REVALIDATED", "0", "v1", false},
		{"swr must-revalidate", []string{"Cache-Control", "max-age=10, stale-while-revalidate=30, must-revalidate"}, 15 * time.Second, "", 200, "REVALIDATED", "0", "v1", false},
		{"swr proxy-revalidate", []string{"Cache-Control", "max-age=10, stale-while-revalidate=30, proxy-revalidate"}, 15 * time.Second, "", 200, "REVALIDATED", "0", "v1", false},
		{"swr s-maxage", []string{"Cache-Control", "s-maxage=10, stale-while-revalidate=30"}, 15 * time.Second, "", 200, "REVALIDATED", "0", "v1", false},
		{"swr from CDN-Cache-Control", []string{"Cache-Control", "max-age=10", "CDN-Cache-Control", "max-age=10, stale-while-revalidate=30"}, 15 * time.Second, "", 200, "STALE", "15", "v1", true},
		{"swr ignored when CDN-Cache-Control governs", []string{"Cache-Control", "max-age=10, stale-while-revalidate=30", "CDN-Cache-Control", "max-age=10"}, 15 * time.Second, "", 200, "REVALIDATED", "0", "v1", false},
		{"swr with upstream down", []string{"Cache-Control", "max-age=10, stale-while-revalidate=30"}, 15 * time.Second, "down", 200, "STALE", "15", "v1", false},

		{"sie 503", []string{"Cache-Control", "max-age=10, stale-if-error=60"}, 20 * time.Second, "503", 200, "STALE", "20", "v1", false},
		{"sie 500 that says cacheable", []string{"Cache-Control", "max-age=10, stale-if-error=60"}, 20 * time.Second, "500-cacheable", 200, "STALE", "20", "v1", false},
		{"sie connection error", []string{"Cache-Control", "max-age=10, stale-if-error=60"}, 20 * time.Second, "down", 200, "STALE", "20", "v1", false},
		{"sie past window 503", []string{"Cache-Control", "max-age=10, stale-if-error=60"}, 70 * time.Second, "503", 503, "MISS", "", "overloaded\n", false},
		{"sie past window down", []string{"Cache-Control", "max-age=10, stale-if-error=60"}, 70 * time.Second, "down", 502, "MISS", "", "bad gateway: upstream unavailable\n", false},
		{"sie 404 is no error", []string{"Cache-Control", "max-age=10, stale-if-error=60"}, 20 * time.Second, "404", 404, "MISS", "", "gone\n", false},
		{"sie must-revalidate", []string{"Cache-Control", "max-age=10, stale-if-error=60, must-revalidate"}, 20 * time.Second, "503", 503, "MISS", "", "overloaded\n", false},
		{"sie proxy-revalidate", []string{"Cache-Control", "max-age=10, stale-if-error=60, proxy-revalidate"}, 20 * time.Second, "down", 504, "MISS", "", "gateway timeout: upstream unavailable\n", false},
		{"sie from CDN-Cache-Control", []string{"Cache-Control", "no-store", "CDN-Cache-Control", "max-age=10, stale-if-error=60"}, 20 * time.Second, "503", 200, "STALE", "20", "v1", false},
		{"sie ignored when CDN-Cache-Control governs", []string{"Cache-Control", "max-age=10, stale-if-error=60", "CDN-Cache-Control", "max-age=10"}, 20 * time.Second, "503", 503, "MISS", "", "overloaded\n", false},
		{"no stale directives", []string{"Cache-Control", "max-age=10"}, 20 * time.Second, "503", 503, "MISS", "", "overloaded\n", false},
	}
	for i, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			path := "/stale" + strconv.Itoa(i)
			up.set(path, "", nil, tc.hdr...)
			if r := get(t, ts, "GET", path); r.StatusCode != 200 || r.cache() != "MISS" {
				t.Fatalf("first: %d %s", r.StatusCode, r.cache())
			}
			clk.Advance(tc.advance)
			var release chan struct{}
			if tc.background {
				// The revalidation is held upstream: the stale answer must not wait for it.
				release = make(chan struct{})
			}
			up.set(path, tc.mode, release)
			r := get(t, ts, "GET", path)
			if r.StatusCode != tc.status || r.cache() != tc.cache || string(r.body) != tc.body {
				t.Fatalf("stale request: %d %s %q, want %d %s %q", r.StatusCode, r.cache(), r.body, tc.status, tc.cache, tc.body)
			}
			if got := r.Header.Get("Age"); got != tc.age {
				t.Errorf("Age %q, want %q", got, tc.age)
			}
			if tc.background {
				waitFor(t, "the revalidation to reach the upstream", func() bool { return up.count(path) == 2 })
				// Another stale request meanwhile is served stale and joins nothing new.
				if r := get(t, ts, "GET", path); r.cache() != "STALE" {
					t.Errorf("during the revalidation: %s, want STALE", r.cache())
				}
				close(release)
				waitFor(t, "the revalidation to refresh the entry", func() bool {
					ent, ok := e.mem.get(path)
					return ok && ent.fresh(clk.Now())
				})
				if r := get(t, ts, "GET", path); r.cache() != "HIT" || r.Header.Get("Age") != "0" || string(r.body) != "v1" {
					t.Errorf("after the revalidation: %s, Age %q, %q; want HIT 0 v1", r.cache(), r.Header.Get("Age"), r.body)
				}
				if n := up.count(path); n != 2 {
					t.Errorf("upstream saw %d requests, want 2", n)
				}
			}
		})
	}
	if e.Stats().StaleIfError.Load() == 0 || e.Stats().StaleWhileRevalidate.Load() == 0 {
		t.Errorf("stale counters: %d while revalidating, %d on error", e.Stats().StaleWhileRevalidate.Load(),
			e.Stats().StaleIfError.Load())
	}
}

// TestStaleWhileRevalidateCollapses checks that many stale requests at once start one revalidation,
// and that a request for another variant waits for that same fill instead of fetching.
func TestStaleWhileRevalidateCollapses(t *testing.T) {
	clk := newClock()
	up := newStaleUpstream(t)
	e, ts := newTestEdge(t, up.URL, clk, nil)
	const path = "/p.m3u8"
	up.set(path, "", nil, "Cache-Control", "max-age=2, stale-while-revalidate=10")
	get(t, ts, "GET", path)
	clk.Advance(3 * time.Second)
	release := make(chan struct{})
	up.set(path, "", release)
	for i, r := range concurrently(t, ts, 20, path) {
		if r.StatusCode != 200 || r.cache() != "STALE" || r.Header.Get("Age") != "3" || string(r.body) != "v1" {
			t.Errorf("response %d: %d %s, Age %q, %q", i, r.StatusCode, r.cache(), r.Header.Get("Age"), r.body)
		}
	}
	waitFor(t, "the revalidation", func() bool { return up.count(path) == 2 })
	close(release)
	waitFor(t, "the refresh", func() bool {
		ent, ok := e.mem.get(path)
		return ok && ent.fresh(clk.Now())
	})
	if n := up.count(path); n != 2 {
		t.Errorf("upstream saw %d requests, want 2 (one fill, one revalidation)", n)
	}
	if got := up.last().Header.Get("If-None-Match"); got != `"v1"` {
		t.Errorf("revalidation sent If-None-Match %q", got)
	}
	if n := e.Stats().StaleWhileRevalidate.Load(); n != 20 {
		t.Errorf("StaleWhileRevalidate = %d, want 20", n)
	}
}
