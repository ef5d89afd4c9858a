package cdn

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// waitFor polls cond until it holds or a few seconds pass.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(time.Millisecond)
	}
}

// blockingUpstream holds every request until release is closed, then answers with h.
func blockingUpstream(t *testing.T, h http.HandlerFunc) (*upstream, chan struct{}) {
	release := make(chan struct{})
	up := newUpstream(t, func(w http.ResponseWriter, r *http.Request) {
		select { // the request's end too: a test failing early must not hang on it
		case <-release:
		case <-r.Context().Done():
			return
		}
		h(w, r)
	})
	return up, release
}

// concurrently runs n GETs of path and returns their responses once all have finished.
func concurrently(t *testing.T, ts *httptest.Server, n int, path string) []response {
	out := make([]response, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			r, err := fetch(ts, "GET", path)
			if err != nil {
				t.Errorf("concurrent GET %s: %v", path, err)
				r = response{Response: &http.Response{Header: http.Header{}}}
			}
			out[i] = r
		})
	}
	wg.Wait()
	return out
}

func TestCollapsedMisses(t *testing.T) {
	up, release := blockingUpstream(t, func(w http.ResponseWriter, r *http.Request) {
		serveObject(w, r, segment, "Cache-Control", "max-age=60")
	})
	e, ts := newTestEdge(t, up.URL, nil, nil)

	const n = 50
	done := make(chan []response)
	go func() { done <- concurrently(t, ts, n, "/seg") }()
	waitFor(t, "49 waiters", func() bool { return e.Stats().CollapsedWaiters.Load() == n-1 })
	close(release)
	for i, r := range <-done {
		if r.StatusCode != 200 || !bytes.Equal(r.body, segment) || r.cache() != "MISS" {
			t.Errorf("response %d: %d %s, %d bytes", i, r.StatusCode, r.cache(), len(r.body))
		}
	}
	if got := up.count("/seg"); got != 1 {
		t.Errorf("upstream saw %d requests for %d concurrent misses, want 1", got, n)
	}
	if r := get(t, ts, "GET", "/seg"); r.cache() != "HIT" {
		t.Errorf("after the fill: %s", r.cache())
	}
}

func TestUpstream5xxSharedNotCached(t *testing.T) {
	up, release := blockingUpstream(t, func(w http.ResponseWriter, r *http.Request) {
		// What the origin sends when storage is down.
		w.Header().Set("Retry-After", "2")
		w.Header().Set("Cache-Control", "no-store")
		http.Error(w, "storage unavailable", http.StatusServiceUnavailable)
	})
	e, ts := newTestEdge(t, up.URL, nil, nil)
	const n = 10
	done := make(chan []response)
	go func() { done <- concurrently(t, ts, n, "/seg") }()
	waitFor(t, "waiters", func() bool { return e.Stats().CollapsedWaiters.Load() == n-1 })
	close(release)
	for i, r := range <-done {
		if r.StatusCode != 503 || r.Header.Get("Retry-After") != "2" {
			t.Errorf("response %d: %d, Retry-After %q", i, r.StatusCode, r.Header.Get("Retry-After"))
		}
	}
	get(t, ts, "GET", "/seg")
	if got := up.count("/seg"); got != 2 {
		t.Errorf("upstream saw %d requests, want 2 (one collapsed fill, then not cached)", got)
	}
}

func TestUncacheableNotShared(t *testing.T) {
	up, release := blockingUpstream(t, func(w http.ResponseWriter, r *http.Request) {
		serveObject(w, r, segment, "Cache-Control", "private, max-age=60")
	})
	e, ts := newTestEdge(t, up.URL, nil, nil)
	const n = 5
	done := make(chan []response)
	go func() { done <- concurrently(t, ts, n, "/me") }()
	waitFor(t, "waiters", func() bool { return e.Stats().CollapsedWaiters.Load() == n-1 })
	close(release)
	bypass := 0
	for _, r := range <-done {
		if r.StatusCode != 200 || !bytes.Equal(r.body, segment) {
			t.Errorf("status %d, %d bytes", r.StatusCode, len(r.body))
		}
		if r.cache() == "BYPASS" {
			bypass++
		}
	}
	// A private response goes to the client that asked; every waiter asks for its own.
	if got := up.count("/me"); got != n || bypass != n-1 {
		t.Errorf("upstream saw %d requests and %d waiters bypassed, want %d and %d", got, bypass, n, n-1)
	}
}

func TestLeaderLeavingDoesNotFailWaiters(t *testing.T) {
	up, release := blockingUpstream(t, func(w http.ResponseWriter, r *http.Request) {
		serveObject(w, r, segment, "Cache-Control", "max-age=60")
	})
	e, ts := newTestEdge(t, up.URL, nil, nil)

	ctx, cancel := context.WithCancel(context.Background())
	leaderDone := make(chan error, 1)
	go func() {
		req, _ := http.NewRequestWithContext(ctx, "GET", ts.URL+"/seg", nil)
		resp, err := ts.Client().Do(req)
		if err == nil {
			_, err = io.ReadAll(resp.Body)
			resp.Body.Close()
		}
		leaderDone <- err
	}()
	waitFor(t, "the fill", func() bool { return up.count("/seg") == 1 })
	done := make(chan []response)
	go func() { done <- concurrently(t, ts, 3, "/seg") }()
	waitFor(t, "waiters", func() bool { return e.Stats().CollapsedWaiters.Load() == 3 })
	cancel()
	if err := <-leaderDone; err == nil {
		t.Error("the cancelled leader got a response")
	}
	close(release)
	for i, r := range <-done {
		if r.StatusCode != 200 || !bytes.Equal(r.body, segment) {
			t.Errorf("waiter %d: %d, %d bytes", i, r.StatusCode, len(r.body))
		}
	}
	if r := get(t, ts, "GET", "/seg"); r.cache() != "HIT" {
		t.Errorf("the fill of a departed leader was not cached: %s", r.cache())
	}
}

func TestWaiterBoundedByItsContext(t *testing.T) {
	up, release := blockingUpstream(t, func(w http.ResponseWriter, r *http.Request) {
		serveObject(w, r, segment, "Cache-Control", "max-age=60")
	})
	defer close(release)
	e, ts := newTestEdge(t, up.URL, nil, nil)
	go fetch(ts, "GET", "/seg") // the leader, held upstream until the test ends

	waitFor(t, "the fill", func() bool { return up.count("/seg") == 1 })
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, "GET", ts.URL+"/seg", nil)
	start := time.Now()
	if resp, err := ts.Client().Do(req); err == nil {
		resp.Body.Close()
		t.Fatal("the waiter got a response from a fill that never finished")
	}
	if time.Since(start) > 2*time.Second {
		t.Errorf("the waiter waited %v", time.Since(start))
	}
	if e.Stats().CollapsedWaiters.Load() != 1 {
		t.Errorf("CollapsedWaiters = %d", e.Stats().CollapsedWaiters.Load())
	}
}

func TestUpstreamDown(t *testing.T) {
	dead := httptest.NewServer(http.NotFoundHandler())
	dead.Close()
	e, ts := newTestEdge(t, dead.URL, nil, nil)
	for _, method := range []string{"GET", "HEAD", "POST"} {
		r := get(t, ts, method, "/hls/a/v1/master.m3u8")
		if r.StatusCode != http.StatusBadGateway {
			t.Errorf("%s: status %d, want 502", method, r.StatusCode)
		}
		if method == "GET" && !strings.Contains(string(r.body), "bad gateway") {
			t.Errorf("502 body %q", r.body)
		}
		if r.Header.Get("Cache-Control") != "no-store" {
			t.Errorf("502 Cache-Control %q", r.Header.Get("Cache-Control"))
		}
	}
	if got := e.Stats().UpstreamErrors.Load(); got != 3 {
		t.Errorf("UpstreamErrors = %d, want 3", got)
	}
	if r := get(t, ts, "GET", "/readyz"); r.StatusCode != http.StatusServiceUnavailable {
		t.Errorf("readyz with the upstream down: %d", r.StatusCode)
	}
	if r := get(t, ts, "GET", "/healthz"); r.StatusCode != http.StatusOK || string(r.body) != "ok\n" {
		t.Errorf("healthz: %d %q", r.StatusCode, r.body)
	}
}

// TestNoCollapse: N concurrent misses of one key on a slow upstream make one upstream request with
// collapsing and N without it (Config.NoCollapse), and every client gets the whole body either way,
// streamed as the upstream sends it in pieces; the object is cached afterwards in both cases.
func TestNoCollapse(t *testing.T) {
	body := bytes.Repeat([]byte("0123456789abcdef"), 20<<10) // 320 KiB: several fill chunks
	for _, tc := range []struct {
		noCollapse bool
		upstream   int
	}{{false, 1}, {true, 12}} {
		t.Run(map[bool]string{false: "collapsing", true: "NoCollapse"}[tc.noCollapse], func(t *testing.T) {
			up, release := blockingUpstream(t, func(w http.ResponseWriter, r *http.Request) {
				w.Header().Set("Cache-Control", "max-age=60")
				w.Header().Set("Content-Length", strconv.Itoa(len(body)))
				for part := range slices.Chunk(body, len(body)/4) {
					w.Write(part)
					w.(http.Flusher).Flush()
					time.Sleep(10 * time.Millisecond)
				}
			})
			e, ts := newTestEdge(t, up.URL, nil, func(c *Config) { c.NoCollapse = tc.noCollapse })
			const n = 12
			done := make(chan []response)
			go func() { done <- concurrently(t, ts, n, "/seg") }()
			// Every request is either at the upstream or waiting on a fill before any is answered.
			waitFor(t, "every request upstream or waiting", func() bool {
				return up.count("/seg")+int(e.Stats().CollapsedWaiters.Load()) == n
			})
			close(release)
			for i, r := range <-done {
				if r.StatusCode != 200 || !bytes.Equal(r.body, body) {
					t.Errorf("response %d: %d, %d bytes (want %d)", i, r.StatusCode, len(r.body), len(body))
				}
			}
			if got := up.count("/seg"); got != tc.upstream {
				t.Errorf("upstream saw %d requests for %d concurrent misses, want %d", got, n, tc.upstream)
			}
			if got, want := e.Stats().CollapsedWaiters.Load(), int64(n-tc.upstream); got != want {
				t.Errorf("collapsed waiters %d, want %d", got, want)
			}
			if r := get(t, ts, "GET", "/seg"); r.cache() != "HIT" || !bytes.Equal(r.body, body) {
				t.Errorf("after the fills: %s, %d bytes", r.cache(), len(r.body))
			}
		})
	}
}
