package cdn

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/lectern/lectern/internal/rendezvous"
)

// waitOwners waits until edge e ranks keys over want.
func waitOwners(t *testing.T, e *Edge, want []string) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !slices.Equal(e.peers.members.Load().owners, want) {
		if time.Now().After(deadline) {
			t.Fatalf("owners %q, want %q", e.peers.members.Load().owners, want)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// writeRegionMap replaces the file at path as an editor that renames a new file over it would, with
// a map whose region seoul has edges (JSON objects) and neighbours.
func writeRegionMap(t *testing.T, path string, neighbours string, edges ...string) {
	t.Helper()
	data := fmt.Sprintf(`{"default": "seoul", "regions": {"seoul": {"edges": [%s], "neighbours": [%s]}, "busan-ulsan": {}}}`,
		strings.Join(edges, ", "), neighbours)
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, []byte(data), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, path); err != nil {
		t.Fatal(err)
	}
}

func regionEdge(url string, drain bool) string {
	return fmt.Sprintf(`{"url": %q, "drain": %t}`, url, drain)
}

// pathOwnedBy returns a segment path whose owner among each of groups is the matching want.
func pathOwnedBy(prefix string, groups [][]string, want ...string) string {
next:
	for i := 0; ; i++ {
		p := fmt.Sprintf("%sseg%d.ts", prefix, i)
		for j, g := range groups {
			if rendezvous.Owner(g, p) != want[j] {
				continue next
			}
		}
		return p
	}
}

// Edges that follow the region map file re-rank keys as it is edited, without a restart: a draining
// edge's keys go to the next-ranked peer, and it asks the owners itself; a bad edit, or one that
// drops an edge from its region, is logged and changes nothing on that edge.
func TestFollowRegionMap(t *testing.T) {
	origin := slowOrigin(t, 0)
	logs := make(logCapture, 1000)
	g := newTestGroup(t, 3, origin.URL, func(c *Config) { c.Logger = slog.New(logs) })
	u := g.urls
	file := filepath.Join(t.TempDir(), "regions.json")
	writeRegionMap(t, file, "", regionEdge(u[0], false), regionEdge(u[1], false), regionEdge(u[2], false))
	m, err := LoadRegionMap(file)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	t.Cleanup(func() { cancel(); wg.Wait() })
	for _, e := range g.edges {
		wg.Go(func() {
			if err := e.FollowRegionMap(ctx, file, "seoul", m, 10*time.Millisecond); err != nil {
				t.Error(err)
			}
		})
	}
	fromPeer := func(edge int, path string, owner int) {
		t.Helper()
		before := g.edges[owner].Stats().UpstreamFetches.Load()
		r := get(t, g.servers[edge], "GET", path)
		cs := r.Header.Values("Cache-Status")
		if r.StatusCode != 200 || !bytes.Equal(r.body, peerSegment(path)) || len(cs) != 2 || !strings.HasSuffix(cs[1], "detail=peer") {
			t.Errorf("%s from edge %d: %d %q; want the copy of edge %d", path, edge, r.StatusCode, cs, owner)
		}
		if n := g.edges[owner].Stats().UpstreamFetches.Load() - before; n != 1 {
			t.Errorf("%s: edge %d fetched it upstream %d times, want 1 (the owner)", path, owner, n)
		}
	}
	all, first2 := [][]string{u}, [][]string{u, u[:2]}

	fromPeer(1, pathOwnedBy("/hls/a/", all, u[2]), 2)

	// Draining edge 2: its keys go to the next-ranked edge, here edge 0.
	writeRegionMap(t, file, "", regionEdge(u[0], false), regionEdge(u[1], false), regionEdge(u[2], true))
	for _, e := range g.edges {
		waitOwners(t, e, u[:2])
	}
	moved := pathOwnedBy("/hls/b/", first2, u[2], u[0])
	fromPeer(1, moved, 0)
	// The draining edge asks the owners too: edge 0 has it cached, and the origin sees it once.
	r := get(t, g.servers[2], "GET", moved)
	if cs := r.Header.Values("Cache-Status"); r.StatusCode != 200 || len(cs) != 2 ||
		!strings.HasPrefix(cs[0], "lectern-edge; hit;") || !strings.HasSuffix(cs[1], "detail=peer") {
		t.Errorf("from the draining edge: %d %q; want edge 0's hit", r.StatusCode, cs)
	}
	if n := origin.count(moved); n != 1 {
		t.Errorf("the origin saw %s %d times, want 1", moved, n)
	}

	// A bad edit: each edge says what is wrong and keeps the map in use.
	writeRegionMap(t, file, `"busan"`, regionEdge(u[0], false), regionEdge(u[1], false), regionEdge(u[2], false))
	for _, l := range waitLogs(t, logs, "region map edit refused", 3) {
		if !strings.Contains(l, `regions.seoul.neighbours[0]: "busan" is not a region`) {
			t.Errorf("log line %q does not say what is wrong", l)
		}
	}
	for _, e := range g.edges {
		if o := e.peers.members.Load().owners; !slices.Equal(o, u[:2]) {
			t.Errorf("after a bad edit, owners %q; want the previous %q", o, u[:2])
		}
	}
	fromPeer(1, pathOwnedBy("/hls/c/", first2, u[2], u[0]), 0)

	// An edit that drops edge 1 from the region: edges 0 and 2 take it, edge 1 refuses it.
	writeRegionMap(t, file, `"busan-ulsan"`, regionEdge(u[0], false), regionEdge(u[2], false))
	waitOwners(t, g.edges[0], []string{u[0], u[2]})
	waitOwners(t, g.edges[2], []string{u[0], u[2]})
	waitLogs(t, logs, "is not an edge of region seoul", 1)
	if o := g.edges[1].peers.members.Load().owners; !slices.Equal(o, u[:2]) {
		t.Errorf("edge 1, dropped from the region, ranks over %q; want its previous %q", o, u[:2])
	}

	// Back to three: edge 2 owns its keys again.
	writeRegionMap(t, file, "", regionEdge(u[0], false), regionEdge(u[1], false), regionEdge(u[2], false))
	for _, e := range g.edges {
		waitOwners(t, e, u)
	}
	fromPeer(0, pathOwnedBy("/hls/d/", all, u[2]), 2)
}

func TestSetPeers(t *testing.T) {
	origin := slowOrigin(t, 0)
	lone, _ := newTestEdge(t, origin.URL, nil, nil)
	if err := lone.SetPeers([]string{"http://a:1"}, nil); err == nil {
		t.Error("SetPeers on an edge without a peer group succeeded")
	}
	if err := lone.FollowRegionMap(context.Background(), "x.json", "seoul", nil, time.Second); err == nil {
		t.Error("FollowRegionMap on an edge without a peer group succeeded")
	}

	self, b, c := "http://a:1", "http://b:1", "http://c:1"
	e, _ := newTestEdge(t, origin.URL, nil, func(cfg *Config) { cfg.Peers, cfg.Self = []string{self, b}, self })
	old := e.peers.members.Load()
	old.byName[b].markDown(time.Hour)
	for _, tc := range []struct {
		peers, draining []string
		want            string
	}{
		{[]string{b, c}, nil, `this edge, Config.Self "http://a:1", must be one of them`},
		{[]string{self, b, b}, nil, `"http://b:1" is listed twice`},
		{[]string{self, "b:1"}, nil, `"b:1": give an absolute http:// or https:// URL`},
		{[]string{self, b}, []string{c}, `draining peer "http://c:1" is not one of them`},
		{nil, nil, "must be one of them"},
	} {
		err := e.SetPeers(tc.peers, tc.draining)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("SetPeers(%q, %q): %v, want %q", tc.peers, tc.draining, err, tc.want)
		}
		if e.peers.members.Load() != old {
			t.Errorf("SetPeers(%q, %q) failed but changed the membership", tc.peers, tc.draining)
		}
	}
	if err := e.SetPeers([]string{self, b, c}, []string{self}); err != nil {
		t.Fatal(err)
	}
	m := e.peers.members.Load()
	if !slices.Equal(m.owners, []string{b, c}) || m.byName[b] != old.byName[b] || m.byName[b].downUntil.Load() == 0 {
		t.Errorf("owners %q; the peer that stayed must keep its down mark", m.owners)
	}
}

// Requests keep succeeding while the membership changes under them, over and over (run with -race).
func TestSetPeersConcurrent(t *testing.T) {
	origin := slowOrigin(t, 0)
	g := newTestGroup(t, 3, origin.URL, nil)
	u := g.urls
	memberships := []struct{ peers, draining []string }{
		{u, nil},
		{u, u[2:]},
		{u, u[:1]},
		{u[:2], nil}, // edge 2 left (edge 2 itself keeps itself, draining)
	}
	stop := make(chan struct{})
	var swaps atomic.Int64
	var wg sync.WaitGroup
	wg.Go(func() {
		for i := 0; ; i++ {
			select {
			case <-stop:
				return
			default:
			}
			ms := memberships[i%len(memberships)]
			for j, e := range g.edges {
				peers, draining := ms.peers, ms.draining
				if !slices.Contains(peers, u[j]) {
					peers, draining = append(slices.Clone(peers), u[j]), append(slices.Clone(draining), u[j])
				}
				if err := e.SetPeers(peers, draining); err != nil {
					t.Error(err)
					return
				}
			}
			swaps.Add(1)
			time.Sleep(time.Millisecond)
		}
	})
	client := herdClient()
	var errs []error
	var mu sync.Mutex
	var clients sync.WaitGroup
	for c := range 12 {
		clients.Go(func() {
			for i := range 30 {
				path := fmt.Sprintf("/hls/swap/seg%d.ts", (c*7+i)%40)
				edge := u[(c+i)%3]
				resp, err := client.Get(edge + path)
				if err == nil {
					var body bytes.Buffer
					_, err = body.ReadFrom(resp.Body)
					resp.Body.Close()
					if err == nil && (resp.StatusCode != 200 || !bytes.Equal(body.Bytes(), peerSegment(path))) {
						err = fmt.Errorf("%s%s: %d, %d bytes", edge, path, resp.StatusCode, body.Len())
					}
				}
				if err != nil {
					mu.Lock()
					errs = append(errs, err)
					mu.Unlock()
				}
			}
		})
	}
	clients.Wait()
	close(stop)
	wg.Wait()
	checkHerd(t, "requests during membership changes", errs)
	var peerFetches, peerErrors int64
	for _, e := range g.edges {
		peerFetches += e.Stats().PeerFetches.Load()
		peerErrors += e.Stats().PeerErrors.Load()
	}
	if swaps.Load() < 3 || peerFetches == 0 || peerErrors != 0 {
		t.Errorf("%d membership changes, %d peer fetches, %d peer errors; want several, some, none",
			swaps.Load(), peerFetches, peerErrors)
	}
}

// TestDisagreeingOwnersDoNotWaitOnEachOther: while a membership edit has reached one edge and not
// the other, each may think the other owns a key. Their fills then ask each other; a peer's request
// must not wait on a fill that is itself waiting on a peer, or the two wait in a circle until
// WaitTimeout turns into 504s.
func TestDisagreeingOwnersDoNotWaitOnEachOther(t *testing.T) {
	origin := slowOrigin(t, 300*time.Millisecond) // long enough for both fills to overlap
	g := newTestGroup(t, 2, origin.URL, func(c *Config) { c.WaitTimeout = 3 * time.Second })
	a, b := g.urls[0], g.urls[1]
	// Each drains itself in its own view, so each ranks the other first for every key.
	if err := g.edges[0].SetPeers([]string{a, b}, []string{a}); err != nil {
		t.Fatal(err)
	}
	if err := g.edges[1].SetPeers([]string{a, b}, []string{b}); err != nil {
		t.Fatal(err)
	}
	const path = "/hls/circle/seg1.ts"
	start := time.Now()
	errs := herd(herdClient(), []string{a, b}, 20, path)
	checkHerd(t, "clients of both edges", errs)
	if took := time.Since(start); took > 2*time.Second {
		t.Errorf("the herd took %v: the edges waited on each other", took)
	}
	if n := origin.count(path); n < 1 || n > 2 {
		t.Errorf("origin fetches %d, want 1 or 2 (one per edge at most)", n)
	}
}
