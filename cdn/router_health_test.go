package cdn

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// fakeEdge answers /readyz with 200 while ready, 503 otherwise, and counts its probes.
type fakeEdge struct {
	*httptest.Server
	ready  atomic.Bool
	probes atomic.Int64
}

func newFakeEdge(t *testing.T) *fakeEdge {
	t.Helper()
	e := &fakeEdge{}
	e.ready.Store(true)
	e.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !strings.HasSuffix(r.URL.Path, "/readyz") {
			http.NotFound(w, r)
			return
		}
		e.probes.Add(1)
		if !e.ready.Load() {
			w.WriteHeader(http.StatusServiceUnavailable)
		}
	}))
	t.Cleanup(e.Close)
	return e
}

func runRouter(t *testing.T, r *Router) {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); r.Run(ctx) }()
	t.Cleanup(func() { cancel(); <-done })
}

// gauge returns the value of the series name{labels} in the router's metrics, or -1.
func gauge(t *testing.T, r *Router, name string, labels map[string]string) float64 {
	t.Helper()
	reg := prometheus.NewRegistry()
	reg.MustRegister(r.Collector())
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
	next:
		for _, m := range mf.GetMetric() {
			for _, lp := range m.GetLabel() {
				if labels[lp.GetName()] != lp.GetValue() {
					continue next
				}
			}
			if m.Counter != nil {
				return m.Counter.GetValue()
			}
			return m.Gauge.GetValue()
		}
	}
	return -1
}

// An edge whose probes fail twice gets no students; a region with none in service sends its students
// to its neighbour; with none there either the router answers 503; an edge whose probe answers again
// is back at once.
func TestRouterHealthAndFallback(t *testing.T) {
	a, b, c := newFakeEdge(t), newFakeEdge(t), newFakeEdge(t)
	m := mustMap(t, fmt.Sprintf(`{"default": "seoul", "regions": {
	  "seoul": {"edges": [{"url": %q}, {"url": %q}], "neighbours": ["busan-ulsan"]},
	  "busan-ulsan": {"edges": [{"url": %q}]}}}`, a.URL, b.URL, c.URL))
	r, srv := newTestRouter(t, RouterConfig{Map: m, ProbeInterval: 5 * time.Millisecond, ProbeTimeout: time.Second, DownAfter: 2})
	runRouter(t, r)
	edgesFor := func(n int) map[string]bool {
		seen := map[string]bool{}
		for i := range n {
			d, err := r.Route(fmt.Sprintf("lec-%d", i), "", netip.Addr{}, "")
			if err != nil {
				t.Fatal(err)
			}
			seen[d.Edge] = true
		}
		return seen
	}
	if seen := edgesFor(40); !seen[a.URL] || !seen[b.URL] || seen[c.URL] {
		t.Fatalf("all in service: edges %v, want seoul's two", seen)
	}
	a.ready.Store(false)
	waitFor(t, "a out of service", func() bool {
		return gauge(t, r, "lectern_router_unhealthy_edges", map[string]string{"region": "seoul"}) == 1
	})
	// An edit keeps what the router knows of the edges it lists still (a spelled with a trailing slash).
	decided := func() float64 {
		return gauge(t, r, "lectern_router_decisions_total", map[string]string{"region": "seoul", "edge": b.URL})
	}
	before := decided()
	if err := r.SetRegionMap(mustMap(t, fmt.Sprintf(`{"default": "seoul", "regions": {
	  "seoul": {"edges": [{"url": %q}, {"url": %q}], "neighbours": ["busan-ulsan"]},
	  "busan-ulsan": {"edges": [{"url": %q}]}}}`, a.URL+"/", b.URL, c.URL))); err != nil {
		t.Fatal(err)
	}
	if after := decided(); before < 10 || after != before {
		t.Errorf("b's decisions: %v before the edit, %v after, want the same (at least 10)", before, after)
	}
	if seen := edgesFor(40); len(seen) != 1 || !seen[b.URL] {
		t.Errorf("a down: edges %v, want only b", seen)
	}
	if up := gauge(t, r, "lectern_router_edge_up", map[string]string{"region": "seoul", "edge": a.URL}); up != 0 {
		t.Errorf("edge_up of a = %v", up)
	}
	b.ready.Store(false)
	waitFor(t, "b out of service", func() bool { return !r.table.Load().byURL[canonicalBaseURL(b.URL)].up.Load() })
	d, err := r.Route("lec-1", "", netip.Addr{}, "")
	if err != nil || d.Edge != c.URL || !d.Fallback || d.Region != "busan-ulsan" || d.Student != "seoul" {
		t.Errorf("seoul down: %+v %v, want busan-ulsan's edge as a fallback", d, err)
	}
	if r.Stats().Fallbacks.Load() != 1 {
		t.Errorf("Fallbacks = %d", r.Stats().Fallbacks.Load())
	}
	c.ready.Store(false)
	waitFor(t, "c out of service", func() bool { return !r.table.Load().byURL[canonicalBaseURL(c.URL)].up.Load() })
	res, _ := ask(t, srv, "GET", "/hls/lec1/v1/master.m3u8", "")
	if res.StatusCode != http.StatusServiceUnavailable || res.Header.Get("Retry-After") == "" {
		t.Errorf("all down: status %d Retry-After %q, want 503 with Retry-After", res.StatusCode, res.Header.Get("Retry-After"))
	}
	if err := r.Ready(); err == nil {
		t.Error("Ready with every edge down")
	}
	a.ready.Store(true)
	waitFor(t, "a back", func() bool { return r.Ready() == nil })
	if d, err := r.Route("lec-1", "", netip.Addr{}, ""); err != nil || d.Edge != a.URL {
		t.Errorf("a back: %+v %v", d, err)
	}
}

// A player's failed= report keeps that edge out of its answer, and has the edge probed at once: when
// that probe fails too, the edge is out of service for everyone (without waiting for DownAfter rounds).
func TestRouterFailureReport(t *testing.T) {
	a, b := newFakeEdge(t), newFakeEdge(t)
	m := mustMap(t, fmt.Sprintf(`{"default": "seoul", "regions": {"seoul": {"edges": [{"url": %q}, {"url": %q}]}}}`, a.URL, b.URL))
	r, srv := newTestRouter(t, RouterConfig{Map: m, ProbeInterval: time.Hour, DownAfter: 5})
	runRouter(t, r)
	waitFor(t, "the first round", func() bool { return a.probes.Load() == 1 && b.probes.Load() == 1 })
	stA := r.table.Load().byURL[canonicalBaseURL(a.URL)]
	waitFor(t, "the first round's results", func() bool { return stA.fails.Load() == 0 && stA.lastProbe.Load() != 0 })
	stA.lastProbe.Store(0) // as if the last probe were long ago
	// A lecture whose first edge is a.
	lecture := ""
	for i := 0; lecture == ""; i++ {
		if d, _ := r.Route(fmt.Sprintf("lec-%d", i), "", netip.Addr{}, ""); d.Edge == a.URL {
			lecture = fmt.Sprintf("lec-%d", i)
		}
	}
	a.ready.Store(false)
	res, _ := ask(t, srv, "GET", "/hls/"+lecture+"/v1/master.m3u8?failed="+a.URL+"/", "")
	if loc, want := res.Header.Get("Location"), b.URL+"/hls/"+lecture+"/v1/master.m3u8"; loc != want {
		t.Errorf("after a report on a: Location %q, want %q (and no failed= argument)", loc, want)
	}
	waitFor(t, "a out of service after its reported probe failed", func() bool { return !stA.up.Load() })
	if r.Stats().Reported.Load() != 1 || a.probes.Load() != 2 {
		t.Errorf("Reported %d, probes of a %d; want 1, 2", r.Stats().Reported.Load(), a.probes.Load())
	}
	// A second report within a second probes nothing more.
	ask(t, srv, "GET", "/hls/"+lecture+"/v1/master.m3u8?failed="+a.URL, "")
	time.Sleep(20 * time.Millisecond)
	if a.probes.Load() != 2 {
		t.Errorf("a second report probed again: %d probes", a.probes.Load())
	}
}

// Edits of the map take effect while requests keep coming, and none of them fails: 100 edges added,
// one drained, back and forth, under concurrent requests (run with -race).
func TestRouterSwapUnderLoad(t *testing.T) {
	base := func(extra int, drain0 bool) *RegionMap {
		var es []string
		for i := range 10 + extra {
			es = append(es, fmt.Sprintf(`{"url": "http://e%d.test", "drain": %t}`, i, i == 0 && drain0))
		}
		return mustMap(t, `{"default": "seoul", "regions": {"seoul": {"edges": [`+strings.Join(es, ", ")+`]}}}`)
	}
	r, srv := newTestRouter(t, RouterConfig{Map: base(0, false)})
	stop := make(chan struct{})
	var wg sync.WaitGroup
	var answered, bad atomic.Int64
	for w := range 4 {
		wg.Go(func() {
			for i := 0; ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				res, err := http.Get(srv.URL + fmt.Sprintf("/hls/lec-%d-%d/v1/master.m3u8?format=json", w, i))
				if err != nil || res.StatusCode != 200 {
					bad.Add(1)
				} else {
					answered.Add(1)
				}
				if res != nil {
					res.Body.Close()
				}
			}
		})
	}
	for i := range 20 {
		if err := r.SetRegionMap(base(100*(i%2), i%4 == 1)); err != nil {
			t.Fatal(err)
		}
		time.Sleep(2 * time.Millisecond)
	}
	if err := r.SetRegionMap(base(100, true)); err != nil {
		t.Fatal(err)
	}
	close(stop)
	wg.Wait()
	if bad.Load() != 0 || answered.Load() < 20 {
		t.Fatalf("%d requests failed, %d answered", bad.Load(), answered.Load())
	}
	// The old edges took every session while they were alone; with that forgotten, the drained
	// edge would rank first for some lectures.
	for range 64 {
		r.decay()
	}
	count := map[string]int{}
	for i := range 2000 {
		d, err := r.Route(fmt.Sprintf("after-%d", i), "", netip.Addr{}, "")
		if err != nil {
			t.Fatal(err)
		}
		count[d.Edge]++
	}
	if count["http://e0.test"] != 0 {
		t.Errorf("the drained edge got %d students", count["http://e0.test"])
	}
	added := 0
	for e := range count {
		var n int
		if _, err := fmt.Sscanf(e, "http://e%d.test", &n); err == nil && n >= 10 {
			added++
		}
	}
	if added < 50 {
		t.Errorf("only %d of the 100 added edges got students: %d edges in all", added, len(count))
	}
}

// The router follows its file: 100 edges added (each in service once its first probe answers) and
// the first drained, without a restart.
func TestRouterFollowsFile(t *testing.T) {
	e := newFakeEdge(t) // one server stands for every edge: they differ by path
	edges := func(n int, drain0 bool) string {
		var es []string
		for i := range n {
			es = append(es, fmt.Sprintf(`{"url": "%s/e%d", "drain": %t}`, e.URL, i, i == 0 && drain0))
		}
		return `{"default": "seoul", "regions": {"seoul": {"edges": [` + strings.Join(es, ", ") + `]}}}`
	}
	file := filepath.Join(t.TempDir(), "regions.json")
	if err := os.WriteFile(file, []byte(edges(1, false)), 0o644); err != nil {
		t.Fatal(err)
	}
	m, err := LoadRegionMap(file)
	if err != nil {
		t.Fatal(err)
	}
	r, srv := newTestRouter(t, RouterConfig{Map: m, ProbeInterval: time.Hour})
	runRouter(t, r)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go r.FollowRegionMap(ctx, file, m, 2*time.Millisecond)
	if err := os.WriteFile(file+".tmp", []byte(edges(101, true)), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(file+".tmp", file); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the added edges in service", func() bool {
		return gauge(t, r, "lectern_router_unhealthy_edges", map[string]string{"region": "seoul"}) == 0 && len(r.table.Load().listed) == 101
	})
	seen := map[string]bool{}
	for i := range 300 {
		res, _ := ask(t, srv, "GET", fmt.Sprintf("/hls/lec-%d/v1/master.m3u8", i), "")
		loc := res.Header.Get("Location")
		if res.StatusCode != http.StatusFound || strings.HasPrefix(loc, e.URL+"/e0/") {
			t.Fatalf("status %d Location %q (e0 drains)", res.StatusCode, loc)
		}
		seen[loc[:strings.Index(loc, "/hls/")]] = true
	}
	if len(seen) < 50 {
		t.Errorf("300 lectures went to %d edges", len(seen))
	}
	if n := gauge(t, r, "lectern_router_decisions_total", map[string]string{"region": "seoul", "edge": e.URL + "/e0"}); n != 0 {
		t.Errorf("decisions of the drained edge: %v", n)
	}
}
