package cdn

import (
	"bytes"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/lectern/lectern/internal/playtoken"
	"github.com/lectern/lectern/internal/rendezvous"
)

// peerSegment is the body the peer tests' origin serves for path: distinct per path, so a client
// handed another segment's bytes is caught.
func peerSegment(path string) []byte {
	return bytes.Repeat([]byte(path+"|"), 20<<10/(len(path)+1))
}

// slowOrigin answers every path with peerSegment after delay, so a herd builds up behind each fill.
func slowOrigin(t *testing.T, delay time.Duration) *upstream {
	return newUpstream(t, func(w http.ResponseWriter, r *http.Request) {
		time.Sleep(delay)
		serveObject(w, r, peerSegment(r.URL.Path), "Cache-Control", "max-age=60", "Content-Type", "video/mp2t")
	})
}

// herdClient is shared by a herd's clients: 400 clients over a handful of edges need more than the
// default two idle connections per host.
func herdClient() *http.Client {
	t := http.DefaultTransport.(*http.Transport).Clone()
	t.MaxIdleConnsPerHost = 200
	t.DisableKeepAlives = false
	return &http.Client{Transport: t, Timeout: 20 * time.Second}
}

// herd has n concurrent clients GET path, client i from edges[i%len(edges)], and returns what went
// wrong: transport errors, non-200 answers, wrong bodies.
func herd(client *http.Client, edges []string, n int, path string) []error {
	var (
		mu   sync.Mutex
		errs []error
		wg   sync.WaitGroup
	)
	want := peerSegment(path)
	for i := range n {
		wg.Go(func() {
			err := func() error {
				resp, err := client.Get(edges[i%len(edges)] + path)
				if err != nil {
					return err
				}
				defer resp.Body.Close()
				body, err := io.ReadAll(resp.Body)
				switch {
				case err != nil:
					return fmt.Errorf("%s: body: %v", edges[i%len(edges)], err)
				case resp.StatusCode != http.StatusOK:
					return fmt.Errorf("%s: status %d (%s)", edges[i%len(edges)], resp.StatusCode, body)
				case !bytes.Equal(body, want):
					return fmt.Errorf("%s: wrong body (%d bytes)", edges[i%len(edges)], len(body))
				}
				return nil
			}()
			if err != nil {
				mu.Lock()
				errs = append(errs, err)
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	return errs
}

func checkHerd(t *testing.T, what string, errs []error) {
	t.Helper()
	if len(errs) > 0 {
		t.Errorf("%s: %d client errors, first: %v", what, len(errs), errs[0])
	}
}

// peerKey returns the first segment path under prefix whose owner among peers is want.
func peerKey(peers []string, want, prefix string) string {
	for i := 0; ; i++ {
		p := fmt.Sprintf("%sseg%d.ts", prefix, i)
		if rendezvous.Owner(peers, p) == want {
			return p
		}
	}
}

type testGroup struct {
	urls    []string
	edges   []*Edge
	servers []*httptest.Server
}

// newTestGroup starts n edges in one process, each knowing all n as its peers.
func newTestGroup(t *testing.T, n int, upstreamURL string, mod func(*Config)) *testGroup {
	t.Helper()
	g := &testGroup{}
	for range n {
		ts := httptest.NewUnstartedServer(nil)
		g.servers = append(g.servers, ts)
		g.urls = append(g.urls, "http://"+ts.Listener.Addr().String())
	}
	up, err := url.Parse(upstreamURL)
	if err != nil {
		t.Fatal(err)
	}
	for i, ts := range g.servers {
		// Generous timeouts: a loaded test machine must not turn a slow peer into a failed one.
		cfg := Config{Upstream: up, Logger: slog.New(slog.DiscardHandler), Peers: g.urls, Self: g.urls[i],
			PeerTimeout: 10 * time.Second, PeerDialTimeout: 2 * time.Second}
		if mod != nil {
			mod(&cfg)
		}
		e, err := NewEdge(cfg)
		if err != nil {
			t.Fatal(err)
		}
		g.edges = append(g.edges, e)
		ts.Config.Handler = e
		ts.Start()
		t.Cleanup(ts.Close)
	}
	return g
}

func (g *testGroup) index(u string) int {
	for i, x := range g.urls {
		if x == u {
			return i
		}
	}
	panic("no edge " + u)
}

func TestPeerGroupFetchesOncePerRegion(t *testing.T) {
	origin := slowOrigin(t, 100*time.Millisecond)
	g := newTestGroup(t, 4, origin.URL, nil)
	client := herdClient()

	const path = "/hls/lec/v1/720p/seg1.ts"
	checkHerd(t, "herd", herd(client, g.urls, 400, path))
	if n := origin.count(path); n != 1 {
		t.Errorf("origin saw %d requests for one segment asked of 4 edges by 400 clients, want 1", n)
	}
	owner := g.index(rendezvous.Owner(g.urls, path))
	for i, e := range g.edges {
		s := e.Stats()
		if i == owner && s.PeerFetches.Load() != 0 {
			t.Errorf("the owner asked peers %d times", s.PeerFetches.Load())
		}
		if i != owner && s.PeerFetches.Load() != 1 {
			t.Errorf("edge %d asked peers %d times, want 1 (its own fill, collapsed)", i, s.PeerFetches.Load())
		}
		if s.PeerErrors.Load() != 0 {
			t.Errorf("edge %d: %d peer errors", i, s.PeerErrors.Load())
		}
	}

	// A non-owner stored what the owner sent: the next request is its own hit, with the peer's
	// member before its own.
	other := g.urls[(owner+1)%4]
	resp, err := client.Get(other + path)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.Header.Get("X-Cache") != cacheHit {
		t.Errorf("non-owner's second answer: X-Cache %q, want HIT", resp.Header.Get("X-Cache"))
	}
	if cs := resp.Header.Values("Cache-Status"); len(cs) != 2 || !strings.HasPrefix(cs[1], cacheStatusName+"; hit") {
		t.Errorf("Cache-Status %q, want the owner's member then a hit", cs)
	}
}

func TestPeerMissCacheStatus(t *testing.T) {
	origin := slowOrigin(t, 0)
	g := newTestGroup(t, 2, origin.URL, nil)
	path := peerKey(g.urls, g.urls[0], "/hls/cs/")
	resp, err := http.Get(g.urls[1] + path)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	cs := resp.Header.Values("Cache-Status")
	for i := range cs {
		cs[i] = strings.Replace(cs[i], "ttl=59", "ttl=60", 1) // the round trip may take the first second
	}
	want := []string{
		"lectern-edge; fwd=uri-miss; fwd-status=200; stored; ttl=60",
		"lectern-edge; fwd=uri-miss; fwd-status=200; stored; ttl=60; detail=peer",
	}
	if strings.Join(cs, "\n") != strings.Join(want, "\n") {
		t.Errorf("Cache-Status\n%s\nwant\n%s", strings.Join(cs, "\n"), strings.Join(want, "\n"))
	}
}

// The owner's listener closes in the middle of a herd: its peers' requests fail mid-flight, and
// every client still gets the segment, from the next-ranked peer or the origin. Afterwards the
// next-ranked peer stands in as owner, so the region again fetches each segment once.
func TestPeerGroupOwnerDies(t *testing.T) {
	origin := slowOrigin(t, 150*time.Millisecond)
	g := newTestGroup(t, 4, origin.URL, nil)
	client := herdClient()

	victim := 0
	var survivors []string
	for i, u := range g.urls {
		if i != victim {
			survivors = append(survivors, u)
		}
	}
	during := peerKey(g.urls, g.urls[victim], "/hls/during/")
	done := make(chan []error)
	go func() { done <- herd(client, survivors, 300, during) }()
	waitFor(t, "the owner's fill", func() bool { return origin.count(during) > 0 })
	g.servers[victim].CloseClientConnections()
	g.servers[victim].Close()
	checkHerd(t, "herd while the owner dies", <-done)

	for i := range 3 {
		after := peerKey(g.urls, g.urls[victim], fmt.Sprintf("/hls/after%d/", i))
		checkHerd(t, "herd after the owner died", herd(client, survivors, 300, after))
		if n := origin.count(after); n != 1 {
			t.Errorf("%s: origin saw %d requests with the owner dead, want 1", after, n)
		}
	}
	var down int64
	for _, u := range survivors {
		down += g.edges[g.index(u)].Stats().PeersMarkedDown.Load()
	}
	if down == 0 {
		t.Error("no survivor marked the dead owner down")
	}
}

// A peer that answers 5xx of its own making (here: not a Lectern edge at all) is skipped; an origin
// 5xx that the owner relays is the origin's answer, passed on without blaming the owner.
func TestPeerErrorsSkippedOriginErrorsRelayed(t *testing.T) {
	var failing sync.Map
	origin := newUpstream(t, func(w http.ResponseWriter, r *http.Request) {
		if _, ok := failing.Load(r.URL.Path); ok {
			http.Error(w, "origin trouble", http.StatusServiceUnavailable)
			return
		}
		serveObject(w, r, peerSegment(r.URL.Path), "Cache-Control", "max-age=60")
	})
	broken := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Error(w, "overloaded", http.StatusServiceUnavailable)
	}))
	defer broken.Close()
	g := newTestGroup(t, 2, origin.URL, nil)

	// A group of this edge and a broken one: keys the broken one owns come from the origin.
	u, _ := url.Parse(origin.URL)
	peers := []string{g.urls[0], broken.URL}
	e, err := NewEdge(Config{Upstream: u, Logger: slog.New(slog.DiscardHandler), Peers: peers, Self: g.urls[0],
		PeerDownFor: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	ts := httptest.NewServer(e)
	defer ts.Close()
	for i := range 3 {
		path := peerKey(peers, broken.URL, fmt.Sprintf("/hls/broken%d/", i))
		r := get(t, ts, "GET", path)
		if r.StatusCode != http.StatusOK || !bytes.Equal(r.body, peerSegment(path)) {
			t.Errorf("%s: %d, want the origin's 200", path, r.StatusCode)
		}
	}
	if s := e.Stats(); s.PeerFetches.Load() != 1 || s.PeerErrors.Load() != 1 || s.PeersMarkedDown.Load() != 1 {
		t.Errorf("peer fetches %d, errors %d, marked down %d; want 1, 1, 1 (then skipped while down)",
			s.PeerFetches.Load(), s.PeerErrors.Load(), s.PeersMarkedDown.Load())
	}

	path := peerKey(g.urls, g.urls[0], "/hls/failing/")
	failing.Store(path, true)
	resp, err := http.Get(g.urls[1] + path)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusServiceUnavailable {
		t.Errorf("status %d, want the origin's 503", resp.StatusCode)
	}
	if n := origin.count(path); n != 1 {
		t.Errorf("origin saw %d requests, want 1: a relayed origin error is not retried on other peers", n)
	}
	if s := g.edges[1].Stats(); s.PeerErrors.Load() != 0 || s.PeersMarkedDown.Load() != 0 {
		t.Errorf("the owner was blamed for the origin's 503: %d errors, %d marked down", s.PeerErrors.Load(),
			s.PeersMarkedDown.Load())
	}
}

// Keyed edges serve plain /hls/ paths to peers with the peer secret, and to nobody else.
func TestPeerGroupSignedPlayback(t *testing.T) {
	keys := playbackKeys(t)
	origin := slowOrigin(t, 0)
	g := newTestGroup(t, 2, origin.URL, func(c *Config) {
		c.PlaybackKeys = keys
		c.PeerSecret = "peer-secret"
		c.OriginSecret = "origin-secret"
	})
	path := peerKey(g.urls, g.urls[0], "/hls/lec/")
	tok := playtoken.Mint(keys, "lec", time.Now().Add(time.Hour), "")
	resp, err := http.Get(g.urls[1] + "/s/" + tok + path)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || !bytes.Equal(body, peerSegment(path)) {
		t.Fatalf("signed request through a non-owner: %d %q", resp.StatusCode, body)
	}
	if g.edges[1].Stats().PeerFetches.Load() != 1 || g.edges[1].Stats().PeerErrors.Load() != 0 {
		t.Error("the non-owner did not get the segment from the owner")
	}
	if last := origin.last(); last.Header.Get("Authorization") != "Bearer origin-secret" || last.Header.Get(peerHeader) != "" {
		t.Errorf("origin got Authorization %q, %s %q", last.Header.Get("Authorization"), peerHeader, last.Header.Get(peerHeader))
	}

	for _, hdr := range [][]string{
		{peerHeader, "1"},
		{peerHeader, "1", "Authorization", "Bearer wrong"},
		{peerHeader, "1", "Authorization", "Bearer origin-secret"},
	} {
		req, _ := http.NewRequest("GET", g.urls[0]+path, nil)
		for i := 0; i < len(hdr); i += 2 {
			req.Header.Set(hdr[i], hdr[i+1])
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusForbidden {
			t.Errorf("plain /hls/ with %q: %d, want 403", hdr, resp.StatusCode)
		}
	}
}

func TestPeerConfig(t *testing.T) {
	u, _ := url.Parse("http://origin")
	keys := playbackKeys(t)
	for _, tc := range []struct {
		name string
		cfg  Config
	}{
		{"self not listed", Config{Peers: []string{"http://a", "http://b"}, Self: "http://c"}},
		{"self without peers", Config{Self: "http://a"}},
		{"not a URL", Config{Peers: []string{"http://a", "b:80"}, Self: "http://a"}},
		{"duplicate", Config{Peers: []string{"http://a", "http://a"}, Self: "http://a"}},
		{"keyed without secret", Config{Peers: []string{"http://a"}, Self: "http://a", PlaybackKeys: keys}},
		{"bad secret", Config{Peers: []string{"http://a"}, Self: "http://a", PeerSecret: "a b"}},
	} {
		tc.cfg.Upstream = u
		if _, err := NewEdge(tc.cfg); err == nil {
			t.Errorf("%s: NewEdge accepted it", tc.name)
		}
	}
}

// A purge reaches the edges of a region one after another. An edge already purged must not take
// back the purged object from a peer the purge has not reached yet.
func TestPeerNotAskedForWhatWasJustPurged(t *testing.T) {
	var version sync.Map
	origin := newUpstream(t, func(w http.ResponseWriter, r *http.Request) {
		v, _ := version.Load(r.URL.Path)
		body := append(peerSegment(r.URL.Path), fmt.Sprint(v)...)
		serveObject(w, r, body, "Cache-Control", "max-age=600")
	})
	g := newTestGroup(t, 2, origin.URL, nil)
	path := peerKey(g.urls, g.urls[0], "/hls/purged/")
	version.Store(path, "v1")
	if r, err := http.Get(g.urls[1] + path); err != nil {
		t.Fatal(err)
	} else {
		r.Body.Close()
	}
	version.Store(path, "v2")
	g.edges[1].Purge("/hls/purged/") // the owner, edges[0], is not purged yet

	resp, err := http.Get(g.urls[1] + path)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if !bytes.HasSuffix(body, []byte("v2")) {
		t.Errorf("after the purge the edge served %q..., the purged copy its peer still held", body[len(body)-2:])
	}
	if s := g.edges[1].Stats(); s.PeerErrors.Load() != 0 || s.PeersMarkedDown.Load() != 0 {
		t.Errorf("the owner was blamed for not being purged yet: %d errors", s.PeerErrors.Load())
	}
	if n := origin.count(path); n != 2 {
		t.Errorf("origin saw %d requests, want 2 (the first fill, then the purged edge's own)", n)
	}
}

// A peer that accepts the connection but does not answer is given up after PeerTimeout.
func TestPeerTimeout(t *testing.T) {
	origin := slowOrigin(t, 0)
	release := make(chan struct{})
	hung := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { <-release }))
	defer hung.Close()
	defer close(release)
	u, _ := url.Parse(origin.URL)
	self := "http://self.invalid"
	peers := []string{self, hung.URL}
	e, err := NewEdge(Config{Upstream: u, Logger: slog.New(slog.DiscardHandler), Peers: peers, Self: self,
		PeerTimeout: 100 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	ts := httptest.NewServer(e)
	defer ts.Close()
	path := peerKey(peers, hung.URL, "/hls/hung/")
	start := time.Now()
	r := get(t, ts, "GET", path)
	if r.StatusCode != http.StatusOK || !bytes.Equal(r.body, peerSegment(path)) {
		t.Errorf("%d, want the origin's 200", r.StatusCode)
	}
	if took := time.Since(start); took > 2*time.Second {
		t.Errorf("took %v with a 100ms PeerTimeout", took)
	}
	if s := e.Stats(); s.PeerErrors.Load() != 1 || s.PeersMarkedDown.Load() != 1 {
		t.Errorf("peer errors %d, marked down %d; want 1, 1", s.PeerErrors.Load(), s.PeersMarkedDown.Load())
	}
}

// Prefetch in a group: the edge a student plays from prefetches through the owners, each segment
// reaches the origin once, and an owner answering peers does not prefetch on their behalf.
func TestPeerGroupPrefetch(t *testing.T) {
	up := prefetchUpstream(t, 8)
	g := newTestGroup(t, 2, up.URL, func(c *Config) { c.Prefetch = 2 })
	player := httptest.NewServer(g.edges[1])
	defer player.Close()
	get(t, player, "GET", "/hls/p1/v1/720p/index.m3u8")
	for i := 1; i <= 8; i++ {
		waitIdle(t, g.edges[1])
		r := get(t, player, "GET", fmt.Sprintf("/hls/p1/v1/720p/seg_%05d.m4s", i))
		if r.StatusCode != 200 || (i >= 2 && r.cache() != cacheHit) {
			t.Fatalf("segment %d: %d %s, want a prefetched hit from the second on", i, r.StatusCode, r.cache())
		}
	}
	waitIdle(t, g.edges[0])
	for i := 1; i <= 8; i++ {
		if n := up.count(fmt.Sprintf("/hls/p1/v1/720p/seg_%05d.m4s", i)); n != 1 {
			t.Errorf("segment %d fetched %d times upstream, want 1", i, n)
		}
	}
	if n := g.edges[0].Stats().Prefetches.Load(); n != 0 {
		t.Errorf("the other edge prefetched %d times for its peer's requests, want 0", n)
	}
	if g.edges[1].Stats().PeerFetches.Load() == 0 {
		t.Error("the player's edge never asked its peer: no key owned by it in this test")
	}
}
