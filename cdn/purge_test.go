package cdn

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// versionedUpstream answers every path with "PATH #n", n counting its requests, so a test can tell an
// object fetched before a purge from one fetched after it.
func versionedUpstream(t *testing.T, hold <-chan struct{}) (*upstream, *atomic.Int64) {
	var n atomic.Int64
	up := newUpstream(t, func(w http.ResponseWriter, r *http.Request) {
		i := n.Add(1)
		if hold != nil {
			<-hold
		}
		serveObject(w, r, fmt.Appendf(nil, "%s #%d", r.URL.RequestURI(), i), "Cache-Control", "max-age=600", "Etag", `"e"`)
	})
	return up, &n
}

func TestPurgeByPrefixAndPath(t *testing.T) {
	up, _ := versionedUpstream(t, nil)
	e, ts := newTestEdge(t, up.URL, nil, nil)
	paths := []string{
		"/hls/a/v1/master.m3u8", "/hls/a/v1/720p/seg1.m4s", "/hls/a/v2/master.m3u8?x=1",
		"/hls/ab/v1/master.m3u8", "/hls/b/v1/seg.ts", "/hls/b/v1/seg.ts?q=2", "/hls/b/v1/seg.ts2",
	}
	for _, p := range paths {
		get(t, ts, "GET", p)
	}
	if n := e.Purge("/hls/a/"); n != 3 {
		t.Errorf("Purge(/hls/a/) = %d, want 3", n)
	}
	if n := e.Purge("/hls/b/v1/seg.ts"); n != 2 {
		t.Errorf("Purge(/hls/b/v1/seg.ts) = %d, want 2 (the path and its query variant)", n)
	}
	if n := e.Purge("/hls/a/"); n != 0 {
		t.Errorf("second Purge(/hls/a/) = %d, want 0", n)
	}
	want := map[string]string{
		"/hls/a/v1/master.m3u8": "MISS", "/hls/a/v1/720p/seg1.m4s": "MISS", "/hls/a/v2/master.m3u8?x=1": "MISS",
		"/hls/ab/v1/master.m3u8": "HIT", "/hls/b/v1/seg.ts": "MISS", "/hls/b/v1/seg.ts?q=2": "MISS", "/hls/b/v1/seg.ts2": "HIT",
	}
	for _, p := range paths {
		if got := get(t, ts, "GET", p).cache(); got != want[p] {
			t.Errorf("after purge, GET %s: %s, want %s", p, got, want[p])
		}
	}
	if got := e.Stats().Purged.Load(); got != 5 {
		t.Errorf("Stats.Purged = %d, want 5", got)
	}
	if got := e.Stats().CacheEntries.Load(); got != int64(len(paths)) {
		t.Errorf("CacheEntries = %d after refilling, want %d", got, len(paths))
	}
}

// A fill that started before a purge must not put its object back, and requests made after the
// purge must not join it.
func TestPurgeDuringFill(t *testing.T) {
	// Request i (from 1) is held until holds[i-1] is closed.
	holds := []chan struct{}{make(chan struct{}), make(chan struct{})}
	var n atomic.Int64
	up := newUpstream(t, func(w http.ResponseWriter, r *http.Request) {
		i := n.Add(1)
		if int(i) <= len(holds) {
			<-holds[i-1]
		}
		serveObject(w, r, fmt.Appendf(nil, "#%d", i), "Cache-Control", "max-age=600")
	})
	var once [2]sync.Once
	release := func(i int) { once[i].Do(func() { close(holds[i]) }) }
	// Registered after newUpstream, so it runs first: a failing test must not leave handlers blocked.
	t.Cleanup(func() { release(0); release(1) })
	e, ts := newTestEdge(t, up.URL, nil, nil)
	const p = "/hls/a/v1/seg1.m4s"
	async := func() <-chan response {
		ch := make(chan response, 1)
		go func() {
			r, err := fetch(ts, "GET", p)
			if err != nil {
				t.Error(err)
			}
			ch <- r
		}()
		return ch
	}

	first := async()
	waitFor(t, "the first fill to reach upstream", func() bool { return n.Load() == 1 })
	e.Purge("/hls/a/")
	second := async()
	// Had the second request joined the first fill, upstream would never see it.
	waitFor(t, "a new fill after the purge", func() bool { return n.Load() == 2 })

	release(0)
	if r := <-first; r.StatusCode != 200 || string(r.body) != "#1" {
		t.Errorf("first request: %d %q", r.StatusCode, r.body)
	}
	if ent, ok := e.mem.get(p); ok {
		t.Errorf("the fill that began before the purge stored %q", ent.body)
	}
	release(1)
	if r := <-second; r.StatusCode != 200 || string(r.body) != "#2" {
		t.Errorf("second request: %d %q", r.StatusCode, r.body)
	}
	if r := get(t, ts, "GET", p); r.cache() != "HIT" || string(r.body) != "#2" {
		t.Errorf("after both fills: %s %q, want a hit on the object fetched after the purge", r.cache(), r.body)
	}
}

// A revalidation in flight during a purge must not put the stale object back.
func TestPurgeDuringRevalidation(t *testing.T) {
	var hold atomic.Pointer[chan struct{}]
	up := newUpstream(t, func(w http.ResponseWriter, r *http.Request) {
		if h := hold.Load(); h != nil {
			<-*h
		}
		serveObject(w, r, []byte("object"), "Cache-Control", "max-age=1", "Etag", `"e"`)
	})
	clk := newClock()
	e, ts := newTestEdge(t, up.URL, clk, nil)
	const p = "/hls/a/v1/master.m3u8"
	get(t, ts, "GET", p)
	clk.Advance(5 * time.Second)

	h := make(chan struct{})
	release := sync.OnceFunc(func() { close(h) })
	t.Cleanup(release) // runs before the upstream closes, which waits for its handlers
	hold.Store(&h)
	done := make(chan response, 1)
	go func() {
		r, err := fetch(ts, "GET", p)
		if err != nil {
			t.Error(err)
		}
		done <- r
	}()
	waitFor(t, "the revalidation", func() bool { return up.count(p) == 2 })
	e.Purge("/hls/a/")
	hold.Store(nil)
	release()
	if r := <-done; r.cache() != "REVALIDATED" {
		t.Errorf("request in flight during the purge: %s", r.cache())
	}
	if r := get(t, ts, "GET", p); r.cache() != "MISS" {
		t.Errorf("after the purge: %s, want MISS", r.cache())
	}
	if last := up.last(); last.Header.Get("If-None-Match") != "" {
		t.Errorf("the fill after the purge revalidated %q: the purged copy was kept", last.Header.Get("If-None-Match"))
	}
}

func TestPurgeEndpoint(t *testing.T) {
	up, _ := versionedUpstream(t, nil)
	_, off := newTestEdge(t, up.URL, nil, nil)
	if r := post(t, off.URL, "Bearer x", `{"prefix":"/hls/"}`); r.StatusCode != 404 {
		t.Errorf("no secret configured: %d, want 404", r.StatusCode)
	}

	e, ts := newTestEdge(t, up.URL, nil, func(c *Config) { c.PurgeSecret = "s3cret" })
	get(t, ts, "GET", "/hls/a/v1/master.m3u8")
	get(t, ts, "GET", "/hls/a/v1/seg.m4s")
	for _, tc := range []struct {
		name, authz, body string
		status            int
		want              string
	}{
		{"no auth", "", `{"prefix":"/hls/a/"}`, 401, ""},
		{"wrong secret", "Bearer s3cre", `{"prefix":"/hls/a/"}`, 401, ""},
		{"longer secret", "Bearer s3cret!", `{"prefix":"/hls/a/"}`, 401, ""},
		{"basic", "Basic s3cret", `{"prefix":"/hls/a/"}`, 401, ""},
		{"not json", "Bearer s3cret", `prefix=/hls/a/`, 400, ""},
		{"unknown field", "Bearer s3cret", `{"prefx":"/hls/a/"}`, 400, ""},
		{"relative", "Bearer s3cret", `{"prefix":"hls/a/"}`, 400, ""},
		{"prefix without slash", "Bearer s3cret", `{"prefix":"/hls/a"}`, 400, ""},
		{"path with slash", "Bearer s3cret", `{"path":"/hls/a/"}`, 400, ""},
		{"both", "Bearer s3cret", `{"prefix":"/hls/a/","path":"/hls/a/x"}`, 400, ""},
		{"empty", "Bearer s3cret", `{}`, 400, ""},
		{"path", "bearer s3cret", `{"path":"/hls/a/v1/seg.m4s"}`, 200, `{"purged":1}`},
		{"prefix", "Bearer s3cret", `{"prefix":"/hls/a/"}`, 200, `{"purged":1}`},
		{"nothing left", "Bearer s3cret", `{"prefix":"/hls/a/"}`, 200, `{"purged":0}`},
	} {
		r := post(t, ts.URL, tc.authz, tc.body)
		if r.StatusCode != tc.status || (tc.want != "" && strings.TrimSpace(string(r.body)) != tc.want) {
			t.Errorf("%s: %d %q, want %d %s", tc.name, r.StatusCode, r.body, tc.status, tc.want)
		}
	}
	if r := get(t, ts, "GET", PurgePath, "Authorization", "Bearer s3cret"); r.StatusCode != 405 {
		t.Errorf("GET %s: %d, want 405", PurgePath, r.StatusCode)
	}
	if got := e.Stats().Purged.Load(); got != 2 {
		t.Errorf("Stats.Purged = %d, want 2", got)
	}
	if n := up.count(PurgePath); n != 0 {
		t.Errorf("purge requests reached the upstream %d times", n)
	}
}

func post(t *testing.T, base, authz, body string) response {
	t.Helper()
	req, err := http.NewRequest("POST", base+PurgePath, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if authz != "" {
		req.Header.Set("Authorization", authz)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return response{resp, b}
}

func TestHTTPPurger(t *testing.T) {
	up, _ := versionedUpstream(t, nil)
	withSecret := func(c *Config) { c.PurgeSecret = "s3cret" }
	live, liveTS := newTestEdge(t, up.URL, nil, withSecret)
	_, deadTS := newTestEdge(t, up.URL, nil, withSecret)
	other, otherTS := newTestEdge(t, up.URL, nil, withSecret)
	get(t, liveTS, "GET", "/hls/a/v1/master.m3u8")
	get(t, otherTS, "GET", "/hls/a/v1/master.m3u8")
	get(t, otherTS, "GET", "/hls/b/v1/master.m3u8")
	deadTS.Close()

	p := HTTPPurger{Edges: []string{liveTS.URL, deadTS.URL + "/", otherTS.URL}, Secret: "s3cret", Timeout: 5 * time.Second}
	err := p.Purge(context.Background(), "/hls/a/")
	if err == nil || !strings.Contains(err.Error(), deadTS.URL) {
		t.Fatalf("Purge with one edge down: %v, want an error naming %s", err, deadTS.URL)
	}
	if strings.Contains(err.Error(), liveTS.URL+":") || strings.Contains(err.Error(), otherTS.URL+":") {
		t.Errorf("error names edges that purged: %v", err)
	}
	if live.Stats().Purged.Load() != 1 || other.Stats().Purged.Load() != 1 {
		t.Errorf("purged: live %d, other %d; want 1 each", live.Stats().Purged.Load(), other.Stats().Purged.Load())
	}
	if r := get(t, otherTS, "GET", "/hls/b/v1/master.m3u8"); r.cache() != "HIT" {
		t.Errorf("another lecture was purged too: %s", r.cache())
	}

	if err := (HTTPPurger{Edges: []string{liveTS.URL, otherTS.URL}, Secret: "s3cret"}).Purge(context.Background(), "/hls/b/v1/master.m3u8"); err != nil {
		t.Errorf("Purge of a path on live edges: %v", err)
	}
	if other.Stats().Purged.Load() != 2 {
		t.Errorf("path purge: other edge purged %d in all, want 2", other.Stats().Purged.Load())
	}
	err = HTTPPurger{Edges: []string{liveTS.URL}, Secret: "wrong"}.Purge(context.Background(), "/hls/a/")
	if err == nil || !strings.Contains(err.Error(), "401") {
		t.Errorf("wrong secret: %v, want an HTTP 401 error", err)
	}
	if err := (HTTPPurger{Edges: []string{liveTS.URL}}).Purge(context.Background(), "hls/a/"); err == nil {
		t.Error("a relative prefix was sent")
	}
}

// An edge that accepts the connection but never answers must not hold up the others past Timeout.
func TestHTTPPurgerBoundedByTimeout(t *testing.T) {
	up, _ := versionedUpstream(t, nil)
	hang := make(chan struct{})
	slow := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { <-hang }))
	t.Cleanup(slow.Close)
	t.Cleanup(func() { close(hang) })
	live, liveTS := newTestEdge(t, up.URL, nil, func(c *Config) { c.PurgeSecret = "s" })
	get(t, liveTS, "GET", "/hls/a/x")

	start := time.Now()
	err := HTTPPurger{Edges: []string{slow.URL, liveTS.URL}, Secret: "s", Timeout: 200 * time.Millisecond}.Purge(context.Background(), "/hls/a/")
	if err == nil || !strings.Contains(err.Error(), slow.URL) {
		t.Errorf("hung edge: %v", err)
	}
	if took := time.Since(start); took > 3*time.Second {
		t.Errorf("Purge took %v with a 200ms timeout", took)
	}
	if live.Stats().Purged.Load() != 1 {
		t.Error("the live edge was not purged")
	}
}

func TestLocalPurger(t *testing.T) {
	up, _ := versionedUpstream(t, nil)
	e, ts := newTestEdge(t, up.URL, nil, nil)
	get(t, ts, "GET", "/hls/a/x")
	var p Purger = LocalPurger{Edge: e}
	if err := p.Purge(context.Background(), "/hls/a/"); err != nil {
		t.Fatal(err)
	}
	if r := get(t, ts, "GET", "/hls/a/x"); r.cache() != "MISS" {
		t.Errorf("after a local purge: %s", r.cache())
	}
	if err := p.Purge(context.Background(), "hls/a/"); err == nil {
		t.Error("relative prefix accepted")
	}
}

// Purges racing fills and hits on many keys must leave the gauges exact and never deadlock.
func TestPurgeConcurrentWithTraffic(t *testing.T) {
	up, _ := versionedUpstream(t, nil)
	e, ts := newTestEdge(t, up.URL, nil, nil)
	var wg sync.WaitGroup
	for w := range 4 {
		wg.Go(func() {
			for i := range 50 {
				if _, err := fetch(ts, "GET", fmt.Sprintf("/hls/l%d/v1/s%d", w, i%7)); err != nil {
					t.Error(err)
					return
				}
			}
		})
	}
	wg.Go(func() {
		for i := range 50 {
			e.Purge(fmt.Sprintf("/hls/l%d/", i%4))
		}
	})
	wg.Wait()
	e.Purge("/")
	waitFor(t, "empty gauges", func() bool { return e.Stats().CacheEntries.Load() == 0 && e.Stats().CacheBytes.Load() == 0 })
}
