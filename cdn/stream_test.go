package cdn

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// Tests of collapsed fills that stream: every request on a fill gets the body as it arrives.

// streamBody is a body whose bytes differ by position, so a misplaced chunk shows.
var streamBody = func() []byte {
	b := make([]byte, 200<<10)
	for i := range b {
		b[i] = byte(i*7 + i>>9)
	}
	return b
}()

const streamHalf = 100 << 10

// streamed is what a streaming GET got.
type streamed struct {
	status int
	header http.Header
	body   []byte
	err    error // from the request or from reading the body
}

// streamGet GETs url, sends on half once it has read the first n bytes of a 200's body, and then
// reads the rest. hdr are request headers, in pairs.
func streamGet(ctx context.Context, client *http.Client, url string, n int, half chan<- struct{}, hdr ...string) streamed {
	req, err := http.NewRequestWithContext(ctx, "GET", url, nil)
	if err != nil {
		return streamed{err: err}
	}
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	resp, err := client.Do(req)
	if err != nil {
		return streamed{err: err}
	}
	defer resp.Body.Close()
	out := streamed{status: resp.StatusCode, header: resp.Header}
	if resp.StatusCode == http.StatusOK && half != nil {
		first := make([]byte, n)
		if _, out.err = io.ReadFull(resp.Body, first); out.err != nil {
			return out
		}
		out.body = first
		half <- struct{}{}
	}
	rest, err := io.ReadAll(resp.Body)
	out.body, out.err = append(out.body, rest...), err
	return out
}

// receive takes n values from ch, failing the test when they take more than a few seconds.
func receive(t *testing.T, ch <-chan struct{}, n int, what string) {
	t.Helper()
	deadline := time.After(5 * time.Second)
	for i := range n {
		select {
		case <-ch:
		case <-deadline:
			t.Fatalf("%s: %d of %d after 5s", what, i, n)
		}
	}
}

// gates are channels a test upstream blocks on.
type gates []chan struct{}

func newGates(n int) gates {
	g := make(gates, n)
	for i := range g {
		g[i] = make(chan struct{})
	}
	return g
}

func (g gates) open(i int) {
	select {
	case <-g[i]:
	default:
		close(g[i])
	}
}

// openAtCleanup opens every gate when the test ends. Called after newUpstream and newTestEdge, so it
// runs before their servers close, which wait for their handlers: a failing test does not hang.
func (g gates) openAtCleanup(t *testing.T) {
	t.Cleanup(func() {
		for i := range g {
			g.open(i)
		}
	})
}

// halfThenWait is an upstream handler that sends the headers (Content-Length included) and the first
// half of streamBody once g[0] opens, then the rest once g[1] opens, or, when broken says so, drops
// the connection instead.
func halfThenWait(g gates, broken func() bool) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		<-g[0]
		w.Header().Set("Cache-Control", "max-age=60")
		w.Header().Set("Content-Type", "video/iso.segment")
		w.Header().Set("Content-Length", strconv.Itoa(len(streamBody)))
		w.Write(streamBody[:streamHalf])
		w.(http.Flusher).Flush()
		<-g[1]
		if broken != nil && broken() {
			panic(http.ErrAbortHandler)
		}
		w.Write(streamBody[streamHalf:])
	}
}

// The leader and its waiters, those that joined before the upstream's headers and those that
// joined in the middle of the body, each receive the first half of the body before the upstream
// sends the second; all then get the whole body, from one upstream request.
func TestCollapsedFillStreams(t *testing.T) {
	g := newGates(2)
	up := newUpstream(t, halfThenWait(g, nil))
	e, ts := newTestEdge(t, up.URL, nil, nil)
	g.openAtCleanup(t)
	const path = "/hls/a/v1/seg_00001.m4s"
	const early, late = 10, 10
	halves := make(chan struct{}, 1+early+late)
	results := make(chan streamed, 1+early+late)
	start := func() {
		go func() { results <- streamGet(context.Background(), ts.Client(), ts.URL+path, streamHalf, halves) }()
	}

	start()
	waitFor(t, "the fill to reach the upstream", func() bool { return up.count(path) == 1 })
	for range early {
		start()
	}
	waitFor(t, "the early waiters", func() bool { return e.Stats().CollapsedWaiters.Load() == early })
	g.open(0) // headers and the first half
	receive(t, halves, 1+early, "first halves (leader and early waiters) before the second half was sent")
	for range late {
		start()
	}
	receive(t, halves, late, "first halves (waiters that joined mid-body) before the second half was sent")
	if n := e.Stats().FillsInFlight.Load(); n != 1 {
		t.Errorf("FillsInFlight = %d in the middle of the body, want 1", n)
	}
	ranged := make(chan response, 1)
	go func() {
		r, err := fetch(ts, "GET", path, "Range", "bytes=100-199")
		if err != nil {
			t.Error(err)
		}
		ranged <- r
	}()
	waitFor(t, "the ranged waiter", func() bool { return e.Stats().CollapsedWaiters.Load() == early+late+1 })
	g.open(1)

	collapsed := 0
	for i := range 1 + early + late {
		r := <-results
		if r.err != nil || r.status != 200 || !bytes.Equal(r.body, streamBody) {
			t.Fatalf("response %d: %d, %d bytes, %v", i, r.status, len(r.body), r.err)
		}
		if r.header.Get("X-Cache") != "MISS" || r.header.Get("Content-Length") != strconv.Itoa(len(streamBody)) ||
			r.header.Get("Content-Type") != "video/iso.segment" {
			t.Errorf("response %d headers: %v", i, r.header)
		}
		cs := r.header.Get("Cache-Status")
		if !strings.HasPrefix(cs, "lectern-edge; fwd=uri-miss; fwd-status=200; stored") {
			t.Errorf("response %d Cache-Status %q", i, cs)
		}
		if strings.Contains(cs, "; collapsed;") {
			collapsed++
		}
	}
	if collapsed != early+late {
		t.Errorf("%d responses say collapsed, want the %d waiters'", collapsed, early+late)
	}
	if r := <-ranged; r.StatusCode != http.StatusPartialContent || !bytes.Equal(r.body, streamBody[100:200]) {
		t.Errorf("ranged waiter: %d, %d bytes", r.StatusCode, len(r.body))
	}
	if n := up.count(path); n != 1 {
		t.Errorf("upstream saw %d requests, want 1", n)
	}
	if r := get(t, ts, "GET", path); r.cache() != "HIT" || !bytes.Equal(r.body, streamBody) {
		t.Errorf("after the fill: %s, %d bytes", r.cache(), len(r.body))
	}
	waitFor(t, "the fill slot to be given back", func() bool { return e.Stats().FillsInFlight.Load() == 0 })
}

// A HEAD on a stale entry leads a fill that revalidates it; when the upstream answers with a new
// 200, the HEAD gets its headers alone while the body is streamed into the cache.
func TestHeadLeadsStreamedFill(t *testing.T) {
	var version atomic.Int32
	up := newUpstream(t, func(w http.ResponseWriter, r *http.Request) {
		v := strconv.Itoa(int(version.Load()))
		serveObject(w, r, bytes.Repeat([]byte(v), 5000), "Cache-Control", "max-age=1", "Etag", `"`+v+`"`)
	})
	clk := newClock()
	e, ts := newTestEdge(t, up.URL, clk, nil)
	get(t, ts, "GET", "/seg")
	clk.Advance(5 * time.Second)
	version.Store(1)
	r := get(t, ts, "HEAD", "/seg")
	if r.StatusCode != 200 || r.cache() != "MISS" || r.Header.Get("Content-Length") != "5000" || len(r.body) != 0 {
		t.Errorf("HEAD: %d %s, Content-Length %q, %d body bytes", r.StatusCode, r.cache(), r.Header.Get("Content-Length"), len(r.body))
	}
	// The HEAD is answered once the headers are in; the body may still be on its way into the cache
	// (a GET then would join the fill, a collapsed MISS).
	waitFor(t, "the fill to finish", func() bool { return e.Stats().FillsInFlight.Load() == 0 })
	if r := get(t, ts, "GET", "/seg"); r.cache() != "HIT" || !bytes.Equal(r.body, bytes.Repeat([]byte("1"), 5000)) {
		t.Errorf("GET after the HEAD: %s, %.10q", r.cache(), r.body)
	}
}

// The upstream drops the connection in the middle of the body: the requests that were streaming it
// see a truncated response, never a complete-looking one; a waiter that had not started (its Range
// waits for the whole object) gets 502 at once; nothing is cached, and the next request fetches
// again.
func TestFillFailingMidBody(t *testing.T) {
	var broken atomic.Bool
	broken.Store(true)
	g := newGates(2)
	up := newUpstream(t, halfThenWait(g, broken.Load))
	e, ts := newTestEdge(t, up.URL, nil, nil)
	g.openAtCleanup(t)
	const path = "/hls/a/v1/seg_00002.m4s"
	const n = 8
	halves := make(chan struct{}, n)
	results := make(chan streamed, n)
	for range n {
		go func() { results <- streamGet(context.Background(), ts.Client(), ts.URL+path, streamHalf, halves) }()
	}
	g.open(0)
	receive(t, halves, n, "first halves")
	ranged := make(chan streamed, 1)
	go func() {
		ranged <- streamGet(context.Background(), ts.Client(), ts.URL+path, 0, nil, "Range", "bytes=0-9")
	}()
	waitFor(t, "the ranged waiter", func() bool { return e.Stats().CollapsedWaiters.Load() == n })
	g.open(1)

	for i := range n {
		r := <-results
		if r.status != 200 || r.err == nil || len(r.body) >= len(streamBody) {
			t.Errorf("response %d: %d, %d bytes, err %v; want a truncated 200", i, r.status, len(r.body), r.err)
		}
	}
	if r := <-ranged; r.status != http.StatusBadGateway {
		t.Errorf("ranged waiter: %d, %v; want 502", r.status, r.err)
	}
	if _, ok := e.mem.get(path); ok {
		t.Error("the broken fill was cached")
	}
	if got := e.Stats().UpstreamErrors.Load(); got != 1 {
		t.Errorf("UpstreamErrors = %d, want 1", got)
	}
	broken.Store(false)
	if r := get(t, ts, "GET", path); r.StatusCode != 200 || r.cache() != "MISS" || !bytes.Equal(r.body, streamBody) {
		t.Errorf("after the failure: %d %s, %d bytes", r.StatusCode, r.cache(), len(r.body))
	}
	if got := up.count(path); got != 2 {
		t.Errorf("upstream saw %d requests, want 2 (the broken fill, then a new one)", got)
	}
}

// A fill that fails before the upstream's headers fails its waiters at once: 502 when the upstream
// hung up, 504 when it ran past FillTimeout.
func TestFillFailingBeforeHeaders(t *testing.T) {
	for _, tc := range []struct {
		name        string
		fillTimeout time.Duration
		status      int
	}{
		{"upstream hangs up", 0, http.StatusBadGateway},
		{"fill timeout", 300 * time.Millisecond, http.StatusGatewayTimeout},
	} {
		t.Run(tc.name, func(t *testing.T) {
			g := newGates(1)
			up := newUpstream(t, func(w http.ResponseWriter, r *http.Request) {
				<-g[0]
				if tc.fillTimeout == 0 {
					conn, _, err := http.NewResponseController(w).Hijack()
					if err == nil {
						conn.Close()
					}
				}
			})
			e, ts := newTestEdge(t, up.URL, nil, func(c *Config) {
				if tc.fillTimeout > 0 {
					c.FillTimeout = tc.fillTimeout
				}
			})
			g.openAtCleanup(t)
			const n = 10
			done := make(chan []response)
			start := time.Now()
			go func() { done <- concurrently(t, ts, n, "/seg") }()
			waitFor(t, "waiters", func() bool { return e.Stats().CollapsedWaiters.Load() == n-1 })
			if tc.fillTimeout == 0 {
				g.open(0)
			}
			for i, r := range <-done {
				if r.StatusCode != tc.status || r.Header.Get("Cache-Status") != "" {
					t.Errorf("response %d: %d, Cache-Status %q; want %d and none", i, r.StatusCode,
						r.Header.Get("Cache-Status"), tc.status)
				}
			}
			// Well under the default FillTimeout (30 s), and under the fill's own when it has one.
			if took := time.Since(start); took > tc.fillTimeout+3*time.Second {
				t.Errorf("the waiters took %v", took)
			}
			if got := up.count("/seg"); got != 1 {
				t.Errorf("upstream saw %d requests, want 1", got)
			}
		})
	}
}

// A response of unknown length that is too big to cache goes to the leader alone; when the
// upstream breaks off, the leader's connection is dropped rather than its chunked body ended as if
// complete.
func TestUnknownLengthBrokenOffIsNotComplete(t *testing.T) {
	up := newUpstream(t, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Cache-Control", "max-age=60")
		w.Write(bytes.Repeat([]byte("x"), 3000))
		w.(http.Flusher).Flush()
		panic(http.ErrAbortHandler)
	})
	_, ts := newTestEdge(t, up.URL, nil, func(c *Config) { c.MaxObjectBytes = 1000 })
	resp, err := ts.Client().Get(ts.URL + "/big")
	if err != nil {
		t.Fatal(err)
	}
	body, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err == nil || resp.ContentLength != -1 {
		t.Errorf("%d bytes, Content-Length %d, err %v: want a chunked body that breaks off", len(body), resp.ContentLength, err)
	}
}
