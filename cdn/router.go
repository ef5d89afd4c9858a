package cdn

import (
	"errors"
	"log/slog"
	"math"
	"net/http"
	"net/netip"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/lectern/lectern/internal/playtoken"
	"github.com/lectern/lectern/internal/rendezvous"
)

// RouterConfig configures a Router. Only Map is required.
type RouterConfig struct {
	// Map is the region map to start with; see Router.SetRegionMap for edits.
	Map *RegionMap
	// PlaybackKeys verify the tokens of signed playback URLs, whose region claim then chooses the
	// student's region; a bad token is answered 403. Empty: tokens are not read (the edge judges them)
	// and students are placed by address.
	PlaybackKeys playtoken.Keys
	// TrustForwardedFor lists the proxies (load balancers) whose X-Forwarded-For is believed: from a
	// peer in them, the client is the rightmost address of the header not in them. Empty: the header
	// is ignored and the client is the connection's peer.
	TrustForwardedFor []netip.Prefix
	// LoadFactor bounds an edge's sessions to this multiple of its weighted share of its region's
	// sessions before students spill to the next edge of the lecture's ranking. Default 1.25.
	LoadFactor float64
	// SessionHalfLife is how fast an edge's session count decays: every half-life it is halved, so the
	// count weighs the last few minutes of decisions. Default 1 minute.
	SessionHalfLife time.Duration
	// ProbeInterval is how often every edge's /readyz is asked. Default 2 s; negative: no probes
	// (every edge counts as healthy; for tests and benchmarks).
	ProbeInterval time.Duration
	// ProbeTimeout bounds one probe. Default 1 s.
	ProbeTimeout time.Duration
	// DownAfter is how many failed probes in a row take an edge out of service. Default 2.
	DownAfter int
	// Client makes the probes. Default: a client that follows no redirects.
	Client *http.Client
	Logger *slog.Logger
	// Now is the clock for token expiry. Default time.Now.
	Now func() time.Time
}

// Router sends students to an edge: see "Router" in the package documentation.
type Router struct {
	cfg   RouterConfig
	log   *slog.Logger
	now   func() time.Time
	table atomic.Pointer[routeTable]
	stats RouterStats

	mu    sync.Mutex      // serialises SetRegionMap
	probe chan *edgeState // edges to probe at once (added by an edit, or reported failing)
}

// RouterStats are the router's counters (per-edge counts live with the edges; see Router.Collector).
type RouterStats struct {
	// Spills counts decisions that passed over the lecture's first healthy edge because it had more
	// than its share of sessions.
	Spills atomic.Int64
	// Fallbacks counts decisions answered from a neighbour region because the student's region had
	// no edge in service.
	Fallbacks atomic.Int64
	// NoEdge counts requests answered 503 because neither the region nor its neighbours had an edge.
	NoEdge atomic.Int64
	// Denied counts requests answered 403 for a bad playback token.
	Denied atomic.Int64
	// Reported counts failed= reports from players (see "Router" in the package documentation).
	Reported atomic.Int64
	// By the source of the student's region.
	FromToken, FromAddress, FromDefault atomic.Int64
	// RegionMapEdits counts the edits of the followed map file (FollowRegionMap).
	RegionMapEdits RegionMapEdits
}

// edgeState is what the router learns about one edge: it is shared by every table that lists the edge.
type edgeState struct {
	url       string // as the map spells it, without a trailing slash
	up        atomic.Bool
	fails     atomic.Int32
	sessions  atomic.Int64 // decayed count of students sent here
	decisions atomic.Int64 // students sent here, ever
	lastProbe atomic.Int64 // unix nanoseconds of the last probe started
}

// routeTable is one region map compiled for routing. It is never modified once published, so a
// decision reads it without locks while an edit builds the next one.
type routeTable struct {
	regions  []routeRegion
	byName   map[string]int
	def      int
	prefixes map[netip.Prefix]int // client network -> region
	bits4    []int                // the prefix lengths in use, longest first
	bits6    []int
	byURL    map[string]*edgeState // by canonical URL, draining ones too
	listed   []listedEdge          // every edge in the file's order, for metrics and probes
}

type listedEdge struct {
	region string
	drain  bool
	st     *edgeState
}

type routeRegion struct {
	name       string
	edges      []routeEdge // in service or not; draining ones are left out
	neighbours []int
}

type routeEdge struct {
	seed   uint64 // the URL's hash: an edge's rank for a lecture is a function of seed and the lecture
	weight float64
	st     *edgeState
}

// NewRouter returns a router for cfg.Map. Call Run to probe the edges.
func NewRouter(cfg RouterConfig) (*Router, error) {
	if cfg.Map == nil {
		return nil, errors.New("cdn: RouterConfig.Map is required")
	}
	if cfg.LoadFactor == 0 {
		cfg.LoadFactor = 1.25
	}
	if cfg.LoadFactor < 1 || math.IsNaN(cfg.LoadFactor) || math.IsInf(cfg.LoadFactor, 0) {
		return nil, errors.New("cdn: RouterConfig.LoadFactor must be at least 1")
	}
	if cfg.SessionHalfLife <= 0 {
		cfg.SessionHalfLife = time.Minute
	}
	if cfg.ProbeInterval == 0 {
		cfg.ProbeInterval = 2 * time.Second
	}
	if cfg.ProbeTimeout <= 0 {
		cfg.ProbeTimeout = time.Second
	}
	if cfg.DownAfter <= 0 {
		cfg.DownAfter = 2
	}
	if cfg.Client == nil {
		cfg.Client = &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	r := &Router{cfg: cfg, log: cfg.Logger, now: cfg.Now, probe: make(chan *edgeState, 1024)}
	r.apply(cfg.Map, true)
	return r, nil
}

// SetRegionMap routes by m from now on. Requests being decided finish on the map they started with;
// no request waits or fails. Edges the router already knew keep their health and session counts;
// new edges are out of service until their first probe answers (made at once by Run).
func (r *Router) SetRegionMap(m *RegionMap) error {
	if m == nil {
		return errors.New("cdn: SetRegionMap(nil)")
	}
	r.apply(m, false)
	return nil
}

func (r *Router) apply(m *RegionMap, startup bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	t := &routeTable{byName: map[string]int{}, prefixes: map[netip.Prefix]int{}, byURL: map[string]*edgeState{}}
	for i, reg := range m.Regions {
		t.byName[reg.Name] = i
	}
	t.def = t.byName[m.Default]
	// Edges are known by canonical URL, so that their health and load outlive edits to the map.
	prev := r.table.Load()
	var added []*edgeState
	for i, reg := range m.Regions {
		rr := routeRegion{name: reg.Name}
		for _, n := range reg.Neighbours {
			rr.neighbours = append(rr.neighbours, t.byName[n])
		}
		for _, e := range reg.Edges {
			key := canonicalBaseURL(e.URL)
			var st *edgeState
			if prev != nil {
				st = prev.byURL[key]
			}
			if st == nil {
				st = &edgeState{url: strings.TrimRight(e.URL, "/")}
				// At start-up nothing is known and every edge is trusted until its probes fail; an
				// edge added later waits for its first probe, so that one listed before it runs
				// gets no students.
				st.up.Store(startup || r.cfg.ProbeInterval < 0)
				added = append(added, st)
			}
			t.byURL[key] = st
			t.listed = append(t.listed, listedEdge{reg.Name, e.Drain, st})
			if e.Drain {
				continue
			}
			rr.edges = append(rr.edges, routeEdge{seed: rendezvous.Hash(key), weight: e.Weight, st: st})
		}
		for _, p := range reg.Prefixes {
			t.prefixes[p] = i
			bits := &t.bits4
			if p.Addr().Is6() {
				bits = &t.bits6
			}
			if !slices.Contains(*bits, p.Bits()) {
				*bits = append(*bits, p.Bits())
			}
		}
		t.regions = append(t.regions, rr)
	}
	slices.SortFunc(t.bits4, func(a, b int) int { return b - a })
	slices.SortFunc(t.bits6, func(a, b int) int { return b - a })
	r.table.Store(t)
	if !startup && r.cfg.ProbeInterval >= 0 {
		for _, st := range added {
			select {
			case r.probe <- st:
			default: // the next round probes it
			}
		}
	}
}

// Decision is where a student is sent.
type Decision struct {
	// Edge is the edge's base URL as the region map spells it, without a trailing slash.
	Edge string
	// Region is the edge's region: the student's, or a neighbour's when Fallback.
	Region string
	// Student is the student's region.
	Student  string
	Fallback bool
	Spilled  bool
}

// ErrNoEdge is Route's error when neither the student's region nor its neighbours have an edge in service.
var ErrNoEdge = errors.New("cdn: no edge in service in the region or its neighbours")

// Route picks the edge for a student of region (a name of the map; "" or an unknown name: the
// region of addr's network, else the default region) watching lecture. exclude, if not empty, is an
// edge's URL not to choose (one the student just failed to reach). The chosen edge's session count
// goes up by one.
func (r *Router) Route(lecture, region string, addr netip.Addr, exclude string) (Decision, error) {
	return r.route(lecture, region, addr, exclude, true)
}

// route is Route; session false leaves the session counts as they are (a poster or a chapter list
// asked of the router is no student starting to watch).
func (r *Router) route(lecture, region string, addr netip.Addr, exclude string, session bool) (Decision, error) {
	t := r.table.Load()
	ri, ok := t.byName[region]
	switch {
	case ok:
		r.stats.FromToken.Add(1)
	default:
		ri, ok = t.lookup(addr)
		if ok {
			r.stats.FromAddress.Add(1)
		} else {
			ri = t.def
			r.stats.FromDefault.Add(1)
		}
	}
	if len(t.regions) == 0 {
		r.stats.NoEdge.Add(1)
		return Decision{}, ErrNoEdge
	}
	key := rendezvous.Hash(lecture)
	var skip *edgeState
	if exclude != "" {
		skip = t.byURL[canonicalBaseURL(exclude)]
	}
	d := Decision{Student: t.regions[ri].name}
	st, spilled := r.pick(&t.regions[ri], key, skip)
	if st == nil {
		for _, n := range t.regions[ri].neighbours {
			if st, spilled = r.pick(&t.regions[n], key, skip); st != nil {
				ri = n
				d.Fallback = true
				r.stats.Fallbacks.Add(1)
				break
			}
		}
	}
	if st == nil {
		r.stats.NoEdge.Add(1)
		return Decision{}, ErrNoEdge
	}
	if spilled {
		r.stats.Spills.Add(1)
	}
	if session {
		st.sessions.Add(1)
	}
	st.decisions.Add(1)
	d.Edge, d.Region, d.Spilled = st.url, t.regions[ri].name, spilled
	return d, nil
}

// lookup returns the region of the longest prefix holding a.
func (t *routeTable) lookup(a netip.Addr) (int, bool) {
	if !a.IsValid() {
		return 0, false
	}
	a = a.Unmap()
	bits := t.bits4
	if a.Is6() {
		bits = t.bits6
	}
	for _, b := range bits {
		p, err := a.Prefix(b)
		if err != nil {
			continue
		}
		if i, ok := t.prefixes[p]; ok {
			return i, true
		}
	}
	return 0, false
}

// candidate is an edge in service with its score for the lecture.
type candidate struct {
	score float64
	e     *routeEdge
}

// pick returns the region's edge for the lecture: the highest weighted rendezvous score among the
// edges in service whose sessions are within their bounded share, and whether a higher-ranked one
// was passed over for its load. nil when the region has no edge in service.
func (r *Router) pick(reg *routeRegion, key uint64, skip *edgeState) (*edgeState, bool) {
	var buf [256]candidate
	cands := buf[:0]
	var total int64
	var weights float64
	for i := range reg.edges {
		e := &reg.edges[i]
		if !e.st.up.Load() || e.st == skip {
			continue
		}
		total += max(e.st.sessions.Load(), 0)
		weights += e.weight
		cands = append(cands, candidate{weightedScore(e.seed, key, e.weight), e})
	}
	if len(cands) == 0 {
		return nil, false
	}
	// Consistent hashing with bounded loads: counting this student, an edge may hold
	// LoadFactor times its weighted share of the region's sessions, rounded up. Some edge is always
	// at or under its share, so the walk down the ranking ends.
	perWeight := r.cfg.LoadFactor * float64(total+1) / weights
	for n := 0; n < len(cands); n++ {
		best := n
		for j := n + 1; j < len(cands); j++ {
			if cands[j].score > cands[best].score {
				best = j
			}
		}
		cands[n], cands[best] = cands[best], cands[n]
		e := cands[n].e
		if float64(e.st.sessions.Load()+1) <= math.Ceil(perWeight*e.weight) {
			return e.st, n > 0
		}
	}
	return cands[0].e.st, false // unreachable but for races with the decay; the top choice then
}

// weightedScore is the weighted rendezvous score of an edge for a key: -weight / ln(u), with u
// uniform in (0, 1) from the pair's hash, so that an edge's chance to rank first is its share of the
// weights (and with equal weights the order is plain rendezvous hashing).
func weightedScore(seed, key uint64, weight float64) float64 {
	h := rendezvous.Mix(seed ^ key)
	u := (float64(h>>11) + 0.5) / (1 << 53)
	return -weight / math.Log(u)
}
