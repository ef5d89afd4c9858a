package cdn

import (
	"bytes"
	"context"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// Tests of the bounds on waiting for a fill (Config.MaxWaiters, Config.WaitTimeout), and that no way
// a waiter ends leaves a goroutine behind.

// Beyond MaxWaiters a request is refused with 503 and Retry-After at once; a waiter that leaves
// frees its place.
func TestMaxWaiters(t *testing.T) {
	g := newGates(1)
	up := newUpstream(t, func(w http.ResponseWriter, r *http.Request) {
		<-g[0]
		serveObject(w, r, segment, "Cache-Control", "max-age=60")
	})
	e, ts := newTestEdge(t, up.URL, nil, func(c *Config) { c.MaxWaiters = 2 })
	g.openAtCleanup(t)
	const path = "/seg"
	results := make(chan response, 4)
	async := func(ctx context.Context) {
		go func() {
			req, _ := http.NewRequestWithContext(ctx, "GET", ts.URL+path, nil)
			resp, err := ts.Client().Do(req)
			if err != nil {
				results <- response{Response: &http.Response{StatusCode: statusClientClosed}}
				return
			}
			defer resp.Body.Close()
			body, _ := io.ReadAll(resp.Body)
			results <- response{resp, body}
		}()
	}
	async(context.Background()) // the leader
	waitFor(t, "the fill", func() bool { return up.count(path) == 1 })
	leaving, leave := context.WithCancel(context.Background())
	async(leaving)
	async(context.Background())
	waitFor(t, "two waiters", func() bool { return e.Stats().CollapsedWaiters.Load() == 2 })

	r := get(t, ts, "GET", path)
	if r.StatusCode != http.StatusServiceUnavailable || r.Header.Get("Retry-After") != "1" ||
		r.Header.Get("Cache-Status") != "lectern-edge; fwd=uri-miss; collapsed=?0; detail=too-many-waiters" {
		t.Errorf("third waiter: %d, Retry-After %q, Cache-Status %q", r.StatusCode, r.Header.Get("Retry-After"),
			r.Header.Get("Cache-Status"))
	}
	if got := e.Stats().CollapseRefused.Load(); got != 1 {
		t.Errorf("CollapseRefused = %d, want 1", got)
	}
	leave()
	if r := <-results; r.StatusCode != statusClientClosed {
		t.Fatalf("the waiter that left got %d", r.StatusCode)
	}
	waitFor(t, "the departed waiter's place", func() bool {
		e.flights.mu.Lock()
		defer e.flights.mu.Unlock()
		return e.flights.m[path] != nil && e.flights.m[path].waiters == 1
	})
	async(context.Background())
	waitFor(t, "a new waiter in its place", func() bool { return e.Stats().CollapsedWaiters.Load() == 3 })
	g.open(0)
	for i := range 3 {
		if r := <-results; r.StatusCode != 200 || !bytes.Equal(r.body, segment) {
			t.Errorf("response %d: %d, %d bytes", i, r.StatusCode, len(r.body))
		}
	}
	if got := up.count(path); got != 1 {
		t.Errorf("upstream saw %d requests, want 1", got)
	}
}

// A waiter whose fill has no response headers within WaitTimeout gets 504; the fill goes on for
// the leader, and is cached.
func TestWaitTimeout(t *testing.T) {
	g := newGates(1)
	up := newUpstream(t, func(w http.ResponseWriter, r *http.Request) {
		<-g[0]
		serveObject(w, r, segment, "Cache-Control", "max-age=60")
	})
	e, ts := newTestEdge(t, up.URL, nil, func(c *Config) { c.WaitTimeout = 100 * time.Millisecond })
	g.openAtCleanup(t)
	leader := make(chan response, 1)
	go func() {
		r, err := fetch(ts, "GET", "/seg")
		if err != nil {
			t.Error(err)
		}
		leader <- r
	}()
	waitFor(t, "the fill", func() bool { return up.count("/seg") == 1 })
	start := time.Now()
	r := get(t, ts, "GET", "/seg")
	if r.StatusCode != http.StatusGatewayTimeout || !strings.Contains(r.Header.Get("Cache-Status"), "detail=wait-timeout") {
		t.Errorf("waiter: %d, Cache-Status %q; want 504", r.StatusCode, r.Header.Get("Cache-Status"))
	}
	if took := time.Since(start); took < 100*time.Millisecond || took > 3*time.Second {
		t.Errorf("the waiter was answered after %v, want about 100ms", took)
	}
	if got := e.Stats().CollapseTimeouts.Load(); got != 1 {
		t.Errorf("CollapseTimeouts = %d, want 1", got)
	}
	g.open(0)
	if r := <-leader; r.StatusCode != 200 || !bytes.Equal(r.body, segment) {
		t.Errorf("leader: %d, %d bytes", r.StatusCode, len(r.body))
	}
	if r := get(t, ts, "GET", "/seg"); r.cache() != "HIT" {
		t.Errorf("after the fill: %s", r.cache())
	}
}

// Waiters that time out, are refused, leave mid-body or see their fill fail leave no goroutine
// behind.
func TestCollapseLeavesNoGoroutines(t *testing.T) {
	before := runtime.NumGoroutine()
	func() {
		g := newGates(2)
		var reached atomic.Int32
		handler := halfThenWait(g, func() bool { return true })
		up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			reached.Add(1)
			handler(w, r)
		}))
		defer up.Close()
		defer g.open(1)
		defer g.open(0)
		u, _ := url.Parse(up.URL)
		e, err := NewEdge(Config{Upstream: u, Logger: slog.New(slog.DiscardHandler), MaxWaiters: 4,
			WaitTimeout: time.Second})
		if err != nil {
			t.Fatal(err)
		}
		ts := httptest.NewServer(e)
		defer ts.Close()
		client := &http.Client{Transport: &http.Transport{}}
		defer client.CloseIdleConnections()
		defer e.client.CloseIdleConnections()
		target := ts.URL + "/seg"

		halves := make(chan struct{}, 2)
		leader := make(chan streamed, 1)
		go func() { leader <- streamGet(context.Background(), client, target, streamHalf, halves) }()
		waitFor(t, "the fill", func() bool { return reached.Load() == 1 })
		var wg sync.WaitGroup
		var timedOut, refused atomic.Int32
		waiter := func() {
			switch r := streamGet(context.Background(), client, target, 0, nil); r.status {
			case http.StatusGatewayTimeout:
				timedOut.Add(1)
			case http.StatusServiceUnavailable:
				refused.Add(1)
			default:
				t.Errorf("waiter: %d, %v", r.status, r.err)
			}
		}
		for range 4 {
			wg.Go(waiter)
		}
		waitFor(t, "four waiters", func() bool { return e.Stats().CollapsedWaiters.Load() == 4 })
		for range 6 {
			wg.Go(waiter) // refused while the four wait (for a second at most)
		}
		wg.Wait()
		if timedOut.Load() != 4 || refused.Load() != 6 {
			t.Errorf("%d waiters timed out and %d were refused; want 4 and 6", timedOut.Load(), refused.Load())
		}

		g.open(0)
		receive(t, halves, 1, "the leader's first half")
		ctx, leave := context.WithCancel(context.Background())
		leaver := make(chan streamed, 1)
		go func() { leaver <- streamGet(ctx, client, target, streamHalf, halves) }()
		receive(t, halves, 1, "the leaving waiter's first half")
		leave()
		if r := <-leaver; r.err == nil {
			t.Error("the waiter that left got the whole body")
		}
		g.open(1)
		if r := <-leader; r.err == nil {
			t.Errorf("the leader of a broken fill got a complete response: %d, %d bytes", r.status, len(r.body))
		}
	}()
	waitFor(t, "goroutines to end", func() bool { return runtime.NumGoroutine() <= before })
}
