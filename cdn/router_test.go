package cdn

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/lectern/lectern/internal/playtoken"
)

// twoRegions is a map of seoul (edges s1, s2; 10.1.0.0/16, 10.1.2.0/24 is busan's) and busan-ulsan
// (edge b1; 10.2.0.0/16), each the other's neighbour, and jeju with no edges and no neighbours.
const twoRegions = `{"default": "seoul", "regions": {
  "seoul": {"edges": [{"url": "http://s1.test:8082"}, {"url": "http://s2.test:8082/"}], "prefixes": ["10.1.0.0/16"], "neighbours": ["busan-ulsan"]},
  "busan-ulsan": {"edges": [{"url": "http://b1.test:8082"}], "prefixes": ["10.2.0.0/16", "10.1.2.0/24"], "neighbours": ["seoul"]},
  "jeju": {"prefixes": ["10.3.0.0/16"]}
}}`

func mustMap(t testing.TB, s string) *RegionMap {
	t.Helper()
	m, err := ParseRegionMap([]byte(s))
	if err != nil {
		t.Fatal(err)
	}
	return m
}

func newTestRouter(t *testing.T, cfg RouterConfig) (*Router, *httptest.Server) {
	t.Helper()
	if cfg.ProbeInterval == 0 {
		cfg.ProbeInterval = -1
	}
	r, err := NewRouter(cfg)
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(r)
	t.Cleanup(srv.Close)
	return r, srv
}

var noFollow = &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}

// ask sends GET path to the router as a client behind the trusted proxy at 127.0.0.1 (xff may be
// empty) and returns the response with its body read.
func ask(t *testing.T, srv *httptest.Server, method, path, xff string, hdr ...string) (*http.Response, string) {
	t.Helper()
	req, err := http.NewRequest(method, srv.URL+path, nil)
	if err != nil {
		t.Fatal(err)
	}
	if xff != "" {
		req.Header.Set("X-Forwarded-For", xff)
	}
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	res, err := noFollow.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(res.Body)
	res.Body.Close()
	return res, string(body)
}

var loopback = []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8")}

// The answer is a 302 to the same path and query on an edge of the client's region, found by the
// longest prefix holding its address; a client in no prefix goes to the default region.
func TestRouterRedirectsByAddress(t *testing.T) {
	_, srv := newTestRouter(t, RouterConfig{Map: mustMap(t, twoRegions), TrustForwardedFor: loopback})
	for _, tc := range []struct{ xff, want string }{
		{"10.1.7.7", "seoul"},
		{"10.1.2.9", "busan-ulsan"},            // the longer prefix wins
		{"10.2.0.1", "busan-ulsan"},            //
		{"::ffff:10.2.0.1", "busan-ulsan"},     // a mapped IPv4 address is the IPv4 one
		{"192.0.2.1", "seoul"},                 // no prefix: the default
		{"10.2.0.1, 10.1.0.1", "seoul"},        // the rightmost untrusted hop is the client
		{"10.2.0.1, 127.0.0.5", "busan-ulsan"}, // trusted hops are skipped
	} {
		res, _ := ask(t, srv, "GET", "/hls/lec1/v1/master.m3u8?CMCD=sid%3D%22a%22", tc.xff)
		if res.StatusCode != http.StatusFound {
			t.Fatalf("%s: status %d", tc.xff, res.StatusCode)
		}
		loc := res.Header.Get("Location")
		wantEdge := map[string][]string{"seoul": {"http://s1.test:8082", "http://s2.test:8082"}, "busan-ulsan": {"http://b1.test:8082"}}[tc.want]
		ok := false
		for _, e := range wantEdge {
			ok = ok || loc == e+"/hls/lec1/v1/master.m3u8?CMCD=sid%3D%22a%22"
		}
		if !ok {
			t.Errorf("%s: Location %q, want an edge of %s (%v) with the same path and query", tc.xff, loc, tc.want, wantEdge)
		}
		if cc := res.Header.Get("Cache-Control"); cc != "no-store" {
			t.Errorf("Cache-Control %q", cc)
		}
	}
}

// X-Forwarded-For is ignored unless the peer is a trusted proxy.
func TestRouterIgnoresUntrustedForwardedFor(t *testing.T) {
	r, srv := newTestRouter(t, RouterConfig{Map: mustMap(t, twoRegions)})
	res, _ := ask(t, srv, "GET", "/hls/lec1/v1/master.m3u8", "10.2.0.1")
	if loc := res.Header.Get("Location"); !strings.HasPrefix(loc, "http://s") {
		t.Errorf("Location %q: the forged header chose the region", loc)
	}
	if n := r.Stats().FromDefault.Load(); n != 1 {
		t.Errorf("FromDefault = %d, want 1", n)
	}
}

// The JSON form (?format=json or Accept: application/json) names the edge, its region and the URL,
// without the format argument.
func TestRouterJSON(t *testing.T) {
	_, srv := newTestRouter(t, RouterConfig{Map: mustMap(t, twoRegions), TrustForwardedFor: loopback})
	for _, tc := range []struct{ path, accept string }{
		{"/hls/lec1/v1/master.m3u8?format=json", ""},
		{"/hls/lec1/v1/master.m3u8", "application/json"},
	} {
		res, body := ask(t, srv, "GET", tc.path, "10.2.3.4", "Accept", tc.accept)
		if res.StatusCode != 200 || res.Header.Get("Content-Type") != "application/json" {
			t.Fatalf("%s: %d %q", tc.path, res.StatusCode, res.Header.Get("Content-Type"))
		}
		var a routeAnswer
		if err := json.Unmarshal([]byte(body), &a); err != nil {
			t.Fatal(err)
		}
		want := routeAnswer{Edge: "http://b1.test:8082", Region: "busan-ulsan", URL: "http://b1.test:8082/hls/lec1/v1/master.m3u8"}
		if a != want {
			t.Errorf("%s: %+v, want %+v", tc.path, a, want)
		}
	}
}

// With playback keys, the token's region places the student whatever their address; a token for no
// region of the map leaves it to the address; a bad token is refused.
func TestRouterTokenRegion(t *testing.T) {
	clk := newClock()
	keys := playtoken.Keys{{ID: "k1", Secret: []byte("0123456789abcdef0123")}}
	r, srv := newTestRouter(t, RouterConfig{Map: mustMap(t, twoRegions), PlaybackKeys: keys, TrustForwardedFor: loopback, Now: clk.Now})
	exp := clk.Now().Add(time.Hour)
	busan := playtoken.Mint(keys, "lec1", exp, "busan-ulsan")
	res, _ := ask(t, srv, "GET", "/s/"+busan+"/hls/lec1/v1/master.m3u8", "10.1.0.1")
	if loc, want := res.Header.Get("Location"), "http://b1.test:8082/s/"+busan+"/hls/lec1/v1/master.m3u8"; loc != want {
		t.Errorf("Location %q, want %q (the token's region, token kept)", loc, want)
	}
	nowhere := playtoken.Mint(keys, "lec1", exp, "mars")
	res, _ = ask(t, srv, "GET", "/s/"+nowhere+"/hls/lec1/v1/master.m3u8", "10.2.0.1")
	if loc := res.Header.Get("Location"); !strings.HasPrefix(loc, "http://b1.test:8082/") {
		t.Errorf("unknown token region: Location %q, want busan-ulsan's edge by address", loc)
	}
	for name, path := range map[string]string{
		"other lecture": "/s/" + busan + "/hls/lec2/v1/master.m3u8",
		"garbage":       "/s/AAAA/hls/lec1/v1/master.m3u8",
		"expired":       "/s/" + playtoken.Mint(keys, "lec1", clk.Now().Add(-time.Second), "") + "/hls/lec1/v1/master.m3u8",
	} {
		if res, _ := ask(t, srv, "GET", path, ""); res.StatusCode != http.StatusForbidden || res.Header.Get("Location") != "" {
			t.Errorf("%s: status %d, want 403", name, res.StatusCode)
		}
	}
	if r.Stats().Denied.Load() != 3 || r.Stats().FromToken.Load() != 1 {
		t.Errorf("Denied %d, FromToken %d; want 3, 1", r.Stats().Denied.Load(), r.Stats().FromToken.Load())
	}
}

// Requests that are not playback URLs get a clear 404 or 405 and no Location.
func TestRouterBadRequests(t *testing.T) {
	_, srv := newTestRouter(t, RouterConfig{Map: mustMap(t, twoRegions)})
	for _, tc := range []struct {
		method, path string
		status       int
	}{
		{"POST", "/hls/lec1/v1/master.m3u8", 405},
		{"DELETE", "/hls/lec1/v1/master.m3u8", 405},
		{"GET", "/", 404},
		{"GET", "/hls/", 404},
		{"GET", "/hls", 404},
		{"GET", "/other/lec1", 404},
		{"GET", "/s/", 404},
		{"GET", "/s/tok", 404},
		{"GET", "/s/tok/other/x", 404},
		{"GET", "/hls/lec1/../../etc/passwd", 404},
		{"GET", "/hls//lec1/x", 404},
	} {
		res, body := ask(t, srv, tc.method, tc.path, "")
		if res.StatusCode != tc.status || res.Header.Get("Location") != "" || body == "" {
			t.Errorf("%s %s: %d %q Location %q, want %d with a message", tc.method, tc.path, res.StatusCode, body, res.Header.Get("Location"), tc.status)
		}
	}
}

// equalEdges is a one-region map with n edges http://e{i}.test of weight 1, or weights[i] if given.
func equalEdges(n int, weights ...int) string {
	var es []string
	for i := range n {
		w := 1
		if i < len(weights) {
			w = weights[i]
		}
		es = append(es, fmt.Sprintf(`{"url": "http://e%d.test", "weight": %d}`, i, w))
	}
	return `{"default": "seoul", "regions": {"seoul": {"edges": [` + strings.Join(es, ", ") + `]}}}`
}

// One lecture stays on one edge while that edge is within its share; lectures spread over the edges
// by weight.
func TestRouterAffinityAndWeights(t *testing.T) {
	r, err := NewRouter(RouterConfig{Map: mustMap(t, equalEdges(4, 3, 1, 1, 1)), ProbeInterval: -1, LoadFactor: 100})
	if err != nil {
		t.Fatal(err)
	}
	first, _ := r.Route("lec-a", "", netip.Addr{}, "")
	for range 50 {
		if d, _ := r.Route("lec-a", "", netip.Addr{}, ""); d.Edge != first.Edge {
			t.Fatalf("lec-a went to %s, then %s", first.Edge, d.Edge)
		}
	}
	count := map[string]int{}
	const lectures = 6000
	for i := range lectures {
		d, err := r.Route(fmt.Sprintf("lec-%d", i), "", netip.Addr{}, "")
		if err != nil {
			t.Fatal(err)
		}
		count[d.Edge]++
	}
	// Edge 0 has half the weight.
	if share := float64(count["http://e0.test"]) / lectures; share < 0.46 || share > 0.54 {
		t.Errorf("the weight-3 edge got %.1f%% of lectures, want about 50%% (%v)", share*100, count)
	}
	for i := 1; i < 4; i++ {
		if share := float64(count[fmt.Sprintf("http://e%d.test", i)]) / lectures; share < 0.14 || share > 0.20 {
			t.Errorf("edge %d got %.1f%%, want about 16.7%% (%v)", i, share*100, count)
		}
	}
}

// Bounded load: one lecture watched by everyone fills its first edge to its share, then spills to the
// next edges of its ranking; no edge exceeds ceil(1.25 x its share).
func TestRouterBoundedLoad(t *testing.T) {
	r, err := NewRouter(RouterConfig{Map: mustMap(t, equalEdges(4)), ProbeInterval: -1})
	if err != nil {
		t.Fatal(err)
	}
	count := map[string]int{}
	spilled := 0
	const students = 400
	var first string
	for i := range students {
		d, err := r.Route("lec-hot", "", netip.Addr{}, "")
		if err != nil {
			t.Fatal(err)
		}
		if i == 0 {
			first = d.Edge
		}
		count[d.Edge]++
		if d.Spilled {
			spilled++
		}
		for e, n := range count {
			if limit := (1.25*float64(i+1)/4 + 1); float64(n) > limit {
				t.Fatalf("after %d students %s has %d, above its bound %.0f", i+1, e, n, limit)
			}
		}
	}
	if len(count) != 4 || int64(spilled) != r.Stats().Spills.Load() || spilled == 0 {
		t.Errorf("spread %v, %d spilled, Spills %d", count, spilled, r.Stats().Spills.Load())
	}
	for e, n := range count {
		if n > count[first] {
			t.Errorf("%s got %d, more than the lecture's first edge %s (%d)", e, n, first, count[first])
		}
	}
	// The count decays: after two halvings the first edge takes the lecture again.
	r.decay()
	r.decay()
	if d, _ := r.Route("lec-hot", "", netip.Addr{}, ""); d.Edge != first || d.Spilled {
		t.Errorf("after decay: %+v, want %s unspilled", d, first)
	}
}

// Only playlists count as sessions for bounded load: the posters of a course page and the player's
// chapter and caption files are routed the same way, and counted as decisions, but are no student
// starting to watch.
func TestRouterSessionsArePlaylists(t *testing.T) {
	r, srv := newTestRouter(t, RouterConfig{Map: mustMap(t, twoRegions), TrustForwardedFor: loopback})
	sessions := func() int64 {
		var n int64
		for _, e := range r.table.Load().byURL {
			n += e.sessions.Load()
		}
		return n
	}
	for i, path := range []string{"/hls/lec1/v1/poster.jpg", "/hls/lec1/v1/chapters.vtt", "/hls/lec1/v1/subs/en.vtt", "/hls/lec1/v1/thumbs.jpg"} {
		res, _ := ask(t, srv, "GET", path, "10.1.7.7")
		if res.StatusCode != http.StatusFound || !strings.HasSuffix(res.Header.Get("Location"), path) {
			t.Fatalf("%s: %d %q", path, res.StatusCode, res.Header.Get("Location"))
		}
		if n := sessions(); n != 0 {
			t.Fatalf("after %d non-playlist requests: %d sessions, want 0", i+1, n)
		}
	}
	for _, path := range []string{"/hls/lec1/v1/master.m3u8", "/hls/lec2/v3/720p/index.m3u8"} {
		ask(t, srv, "GET", path, "10.1.7.7")
	}
	if n := sessions(); n != 2 {
		t.Errorf("after 2 playlist requests: %d sessions, want 2", n)
	}
	var decisions int64
	for _, e := range r.table.Load().byURL {
		decisions += e.decisions.Load()
	}
	if decisions != 6 {
		t.Errorf("%d decisions counted, want all 6", decisions)
	}
}

// SetEdgeUp takes an edge out of service without probes: its lectures go to the other edge of the
// region, and with the region's edges all out, to the neighbour; back in, it has them again.
func TestRouterSetEdgeUp(t *testing.T) {
	r, _ := newTestRouter(t, RouterConfig{Map: mustMap(t, twoRegions)})
	first, err := r.Route("lec-7", "seoul", netip.Addr{}, "")
	if err != nil {
		t.Fatal(err)
	}
	other := "http://s1.test:8082"
	if first.Edge == other {
		other = "http://s2.test:8082/"
	}
	if !r.SetEdgeUp(first.Edge+"/", false) {
		t.Fatalf("SetEdgeUp(%s/) found no edge", first.Edge)
	}
	if d, err := r.Route("lec-7", "seoul", netip.Addr{}, ""); err != nil || canonicalBaseURL(d.Edge) != canonicalBaseURL(other) || d.Fallback {
		t.Errorf("%s down: %+v %v, want %s", first.Edge, d, err, other)
	}
	r.SetEdgeUp(other, false)
	if d, err := r.Route("lec-7", "seoul", netip.Addr{}, ""); err != nil || d.Edge != "http://b1.test:8082" || !d.Fallback {
		t.Errorf("seoul down: %+v %v, want busan-ulsan's edge", d, err)
	}
	r.SetEdgeUp(first.Edge, true)
	if d, err := r.Route("lec-7", "seoul", netip.Addr{}, ""); err != nil || d.Edge != first.Edge {
		t.Errorf("%s back: %+v %v", first.Edge, d, err)
	}
	if r.SetEdgeUp("http://nowhere.test:8082", false) {
		t.Error("SetEdgeUp of an edge the map does not list")
	}
}
