package simulate

import (
	"cmp"
	"net/netip"
	"reflect"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/lectern/lectern/cdn"
	"github.com/lectern/lectern/internal/plan"
	"github.com/lectern/lectern/internal/playtoken"
)

// twoEdges is one region with two edges of weight 1.
const twoEdges = `{"default": "r", "regions": {"r": {"edges": [{"url": "http://e1.test:8082"}, {"url": "http://e2.test:8082"}]}}}`

// small is a world of one lecture of one 1 Mb/s rung (audio muxed) that n students start at once
// in the region map m; nothing else varies, so its requests can be counted by hand.
func small(t *testing.T, m string, n int) Config {
	t.Helper()
	rm, err := cdn.ParseRegionMap([]byte(m))
	if err != nil {
		t.Fatal(err)
	}
	return Config{Students: n, Lectures: 1, Zipf: 1, Map: rm, Window: 57 * time.Second, Segment: 6 * time.Second,
		Buffer: 1, Rungs: []plan.Rung{{Name: "v", Rate: 1e6, Share: 1}}, OriginRTT: 20 * time.Millisecond,
		PeerRTT: 2 * time.Millisecond, FillRate: 1e9, Failover: time.Second, StudentRTT: 30 * time.Millisecond,
		StudentRate: 10e6, Seed: 1, JoinAt: func(int) time.Duration { return 0 }}
}

func run1(t *testing.T, cfg Config, sc Scenario) *Result {
	t.Helper()
	res, err := Run(cfg, []Scenario{sc})
	if err != nil {
		t.Fatal(err)
	}
	return res[0]
}

// distinctObjects is what each student of small asks for in its 57 s. The master's download takes
// 30 ms + 1200 B at 10 Mb/s = 31 ms, the playlist's 30 ms + 15 kB = 42 ms, the init section's with
// the first segment 30 ms + 751 kB = 631 ms: playback starts at 704 ms. With a one-segment buffer
// segment i is asked for at 704 ms + (i-1) x 6 s, the last one before 57 s being segment 10. So: the
// master, the playlist, the init section and segments 0 to 10.
const distinctObjects = 3 + 11

// With collapsing and a peer group, the origin is asked for each object once, however many
// students of however many edges ask for it at the same moment; without the peer group, once per
// edge.
func TestOriginRequestsAreDistinctObjects(t *testing.T) {
	cfg := small(t, twoEdges, 40)
	w, err := newWorld(cfg, 0, true)
	if err != nil {
		t.Fatal(err)
	}
	perEdge := map[int16]int{}
	for _, e := range w.routed {
		perEdge[e]++
	}
	if len(perEdge) != 2 {
		t.Fatalf("students per edge %v: the router's bounded load should use both edges", perEdge)
	}
	res := run1(t, cfg, Scenario{Collapse: true, Peers: true})
	if got := res.Summary.OriginRequests; got != distinctObjects {
		t.Errorf("collapsing and peers: %d origin requests, want %d", got, distinctObjects)
	}
	if got, want := res.Summary.StudentRequests, int64(40*distinctObjects); got != want {
		t.Errorf("%d student requests, want %d", got, want)
	}
	if res.Summary.PeerRequests == 0 || res.Summary.Collapsed == 0 {
		t.Errorf("peer requests %d, collapsed %d: both edges should have asked the owners, and waited on fills",
			res.Summary.PeerRequests, res.Summary.Collapsed)
	}
	if got := run1(t, cfg, Scenario{Collapse: true}).Summary.OriginRequests; got != 2*distinctObjects {
		t.Errorf("collapsing without peers: %d origin requests, want %d (each edge once)", got, 2*distinctObjects)
	}
}

// Without collapsing, every request that arrives while its object is being filled goes upstream
// itself: at once, all of them; spread out, those within the first fill's latency.
func TestWithoutCollapsing(t *testing.T) {
	cfg := small(t, twoEdges, 40)
	for _, peers := range []bool{false, true} {
		res := run1(t, cfg, Scenario{Peers: peers})
		if res.Summary.OriginRequests != res.Summary.StudentRequests || res.Summary.OriginRequests <= 2*distinctObjects {
			t.Errorf("peers %v, all at once: %d origin requests for %d student requests, want as many", peers,
				res.Summary.OriginRequests, res.Summary.StudentRequests)
		}
	}
	// One edge; student i asks for the master at i x 5 ms. Its fill takes 20 ms + 1200 B at 1 Gb/s,
	// 21 ms: the requests at 0, 5, 10, 15 and 20 ms go to the origin, the later ones are hits.
	cfg = small(t, `{"default": "r", "regions": {"r": {"edges": [{"url": "http://e1.test:8082"}]}}}`, 20)
	cfg.JoinAt = func(i int) time.Duration { return time.Duration(i) * 5 * time.Millisecond }
	if got := run1(t, cfg, Scenario{}).Summary.OriginByKind["master"]; got != 5 {
		t.Errorf("without collapsing: the master was asked of the origin %d times, want 5", got)
	}
	if got := run1(t, cfg, Scenario{Collapse: true}).Summary.OriginByKind["master"]; got != 1 {
		t.Errorf("with collapsing: the master was asked of the origin %d times, want 1", got)
	}
}

// Prefetch fetches segments before students ask for them: the origin sees them earlier, and in
// the window two more (those after the last segment asked for).
func TestPrefetchMovesFetchesEarlier(t *testing.T) {
	cfg := small(t, twoEdges, 40)
	off := run1(t, cfg, Scenario{Collapse: true, Peers: true})
	on := run1(t, cfg, Scenario{Collapse: true, Peers: true, Prefetch: 2})
	if on.Summary.Prefetches == 0 || on.Summary.PrefetchShed != 0 {
		t.Fatalf("prefetches %d, shed %d", on.Summary.Prefetches, on.Summary.PrefetchShed)
	}
	if got, want := on.Summary.OriginRequests, off.Summary.OriginRequests+2; got != want {
		t.Errorf("with prefetch 2: %d origin requests, want %d", got, want)
	}
	var sumOn, sumOff int64
	earlier := false
	for sec := range on.OriginRequests {
		sumOn += on.OriginRequests[sec]
		sumOff += off.OriginRequests[sec]
		if sumOn < sumOff {
			t.Fatalf("by second %d the origin saw %d requests with prefetch, %d without", sec, sumOn, sumOff)
		}
		earlier = earlier || sumOn > sumOff
	}
	if !earlier {
		t.Error("prefetch moved no origin request earlier")
	}
}

// medium is a world of the default map's twelve regions with 24 edges, 3000 students of 40
// lectures joining within 5 s.
func medium(t *testing.T) Config {
	t.Helper()
	m, err := GenerateMap(24)
	if err != nil {
		t.Fatal(err)
	}
	rungs, err := plan.ParseLadder("720p:345kb/s:60%,360p:181kb/s:40%")
	if err != nil {
		t.Fatal(err)
	}
	return Config{Students: 3000, Lectures: 40, Zipf: 1, Map: m, Ramp: 5 * time.Second, Window: 30 * time.Second,
		Segment: 6 * time.Second, Buffer: 5, Rungs: rungs, AudioRate: 98e3, OriginRTT: 20 * time.Millisecond,
		PeerRTT: 2 * time.Millisecond, FillRate: 1e9, Failover: time.Second, StudentRTT: 30 * time.Millisecond,
		StudentRate: 10e6, Seed: 7, Sample: 10, Parallel: 2}
}

// play runs scenarios on w and returns the passes they ran in (their lanes' state kept).
func play(t *testing.T, w *world, scs ...Scenario) ([]*Result, []*pass, map[int32]int16) {
	t.Helper()
	var passes []*pass
	joined := map[int32]int16{}
	var mu sync.Mutex
	res, err := w.runAll(scs, func(p *pass) {
		mu.Lock()
		defer mu.Unlock()
		passes = append(passes, p)
		p.onRoute = func(lane int, id int32, e int16) {
			mu.Lock()
			defer mu.Unlock()
			if lane < 0 {
				joined[id] = e
			}
		}
	})
	if err != nil {
		t.Fatal(err)
	}
	return res, passes, joined
}

// Students go where cdn.Router sends them: the same decisions, asked in the order they join.
func TestRoutesAreTheRouters(t *testing.T) {
	cfg := medium(t)
	cfg.Parallel = 1
	w, err := newWorld(cfg, 0, false)
	if err != nil {
		t.Fatal(err)
	}
	_, _, joined := play(t, w, Scenario{Collapse: true})
	router, err := cdn.NewRouter(cdn.RouterConfig{Map: cfg.Map, ProbeInterval: -1})
	if err != nil {
		t.Fatal(err)
	}
	order := make([]int, cfg.Students)
	for i := range order {
		order[i] = i
	}
	slices.SortStableFunc(order, func(a, b int) int { return cmp.Compare(w.join[a], w.join[b]) })
	spills := 0
	for _, i := range order {
		d, err := router.Route(w.lectures[w.lecture[i]], w.regions[w.home[i]].name, netip.Addr{}, "")
		if err != nil {
			t.Fatal(err)
		}
		spills += btoi(d.Spilled)
		if got := w.edges[joined[int32(i)]].url; got != d.Edge {
			t.Fatalf("student %d went to %s, the router says %s", i, got, d.Edge)
		}
	}
	if len(joined) != cfg.Students || spills == 0 {
		t.Errorf("%d students routed, %d spills: want all, and some bounded-load spills", len(joined), spills)
	}
}

// A lost edge's students move to other edges of its region; a lost region's to its nearest
// neighbour (every neighbour is up); nobody is sent to the dead edges afterwards.
func TestLosses(t *testing.T) {
	cfg := medium(t)
	w, err := newWorld(cfg, DefaultPrefetch, true)
	if err != nil {
		t.Fatal(err)
	}
	on := Scenario{Collapse: true, Peers: true, Prefetch: DefaultPrefetch}
	edgeLoss, regionLoss := on, on
	edgeLoss.Kills = []Kill{{Edge: BusiestEdge, At: 3 * time.Second}}
	regionLoss.Kills = []Kill{{Region: "seoul", At: 3 * time.Second}}
	res, passes, _ := play(t, w, on, edgeLoss, regionLoss)
	var le, lr *lane
	for _, p := range passes {
		for _, l := range p.lanes {
			switch {
			case len(l.sc.Kills) > 0 && l.sc.Kills[0].Edge != "":
				le = l
			case len(l.sc.Kills) > 0:
				lr = l
			}
		}
	}
	dead, _ := w.resolveEdge(BusiestEdge)
	region := w.edges[dead].region
	if res[1].Summary.Failovers == 0 || len(le.moved) == 0 {
		t.Fatal("nobody failed over from the lost edge")
	}
	for id, m := range le.moved {
		if m.gone || m.failing {
			t.Errorf("student %d: unserved or still failing", id)
			continue
		}
		if m.edge == dead || w.edges[m.edge].region != region {
			t.Errorf("student %d of the lost edge went to %s, want another edge of %s", id, w.edges[m.edge].url, w.regions[region].name)
		}
	}
	seoul, _ := w.resolveRegion("seoul")
	near := w.regions[seoul].neighbours[0]
	if res[2].Summary.Failovers == 0 {
		t.Fatal("nobody failed over from the lost region")
	}
	for id, m := range lr.moved {
		if m.gone || w.edges[m.edge].region != near {
			t.Errorf("student %d of seoul went to %s, want %s (its first neighbour)", id, w.edges[m.edge].url, w.regions[near].name)
		}
	}
	for i, r := range res {
		if r.Summary.Unserved != 0 || r.Summary.StudentRequests == 0 {
			t.Errorf("scenario %d: %d unserved of %d requests", i, r.Summary.Unserved, r.Summary.StudentRequests)
		}
	}
	// Every edge request a lane counted after the loss went to a live edge.
	for _, l := range []*lane{le, lr} {
		for e := range w.edges {
			if !l.dead[e] {
				continue
			}
			for sec := 4; sec < w.secs; sec++ {
				if n := l.res.edgeReq[e*w.secs+sec]; n != 0 {
					t.Errorf("%s: dead edge %s served %d requests at second %d", l.sc.Kills[0], w.edges[e].url, n, sec)
				}
			}
		}
	}
}

// The sampled students' signed URLs (their own tokens, expiries, regions and CMCD data) give the
// shared key of their object; another lecture's token on the same path would not verify, and
// another object is another key.
func TestSignedURLsShareKeys(t *testing.T) {
	cfg := medium(t)
	w, err := newWorld(cfg, 0, false)
	if err != nil {
		t.Fatal(err)
	}
	if w.checked < cfg.Students/cfg.Sample || w.mismatched != 0 {
		t.Fatalf("%d signed URLs checked, %d mismatched", w.checked, w.mismatched)
	}
	rend := int32(kindVideo)
	a := playtoken.Mint(w.tokenKeys, w.lectures[0], w.expires, "seoul")
	b := playtoken.Mint(w.tokenKeys, w.lectures[0], w.expires.Add(time.Hour), "busan-ulsan")
	if a == b {
		t.Fatal("two students' tokens are the same")
	}
	ka := w.signedKey(a, `bl=300,sid="a"`, rend, objSeg0+3)
	if kb := w.signedKey(b, `bl=21000,sid="b",nor="seg_00004.m4s"`, rend, objSeg0+3); ka != kb || ka != w.keysOf(rend)[objSeg0+3] {
		t.Errorf("keys %q and %q, shared %q", ka, kb, w.keysOf(rend)[objSeg0+3])
	}
	if k := w.signedKey(a, "", rend, objSeg0+4); k == ka {
		t.Errorf("another segment has the same key %q", k)
	}
	if k := w.signedKey(a, "", rend+int32(w.kinds), objSeg0+3); k == ka {
		t.Errorf("another lecture has the same key %q", k)
	}
}

// The same seed gives the same results however the scenarios are spread over passes; another
// seed other students.
func TestDeterministic(t *testing.T) {
	cfg := medium(t)
	scs := Matrix(3 * time.Second)
	a, err := Run(cfg, scs)
	if err != nil {
		t.Fatal(err)
	}
	cfg.Parallel = 1
	b, err := Run(cfg, scs)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(a, b) {
		t.Error("the same seed gave different results")
	}
	cfg.Seed++
	c, err := Run(cfg, scs[:1])
	if err != nil {
		t.Fatal(err)
	}
	if reflect.DeepEqual(a[0].OriginRequests, c[0].OriginRequests) {
		t.Error("another seed gave the same origin series")
	}
	for i, r := range a {
		var sum int64
		for _, v := range r.OriginRequests {
			sum += v
		}
		if sum != r.Summary.OriginRequests || r.Summary.OriginPeak < r.OriginRequests[r.Summary.OriginPeakAt] {
			t.Errorf("scenario %d: series and summary disagree", i)
		}
	}
}
