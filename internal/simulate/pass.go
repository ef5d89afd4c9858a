package simulate

import (
	"cmp"
	"errors"
	"fmt"
	"math"
	"net/netip"
	"slices"
	"strconv"
	"strings"
	"sync"

	"github.com/lectern/lectern/cdn"
)

// A pass plays up to maxLanes scenarios, its lanes, over one timeline of the students' requests:
// a student asks for the same objects at the same times in every scenario (the timeline is open
// loop: a request's time depends on the student's own clock and link, not on how fast the edge
// answered, which makes answers late rather than later requests). Every cache entry holds the
// state of each lane side by side, so that one memory access serves them all.
const maxLanes = 4

// never is the ready time of an entry no fill has started for.
const never = math.MaxInt32

// entry is one key in one edge's cache: per lane, when it is (or will be) stored, never when no
// fill has started; fills start when asked for, so ready > now means a fill is under way.
type entry struct {
	ready [maxLanes]int32
	// peer, for lanes with a peer group, is the index of the key's entry in the region's block: the
	// entry its owner keeps, which the other edges ask on a miss (-1: no peer group in the pass).
	peer  int32
	owned bool  // this edge owns the key: its entry is the block's
	pfDue uint8 // by lane: a prefetch is due when the fill completes
	// pfDone, by lane: the prefetcher found nothing left to do after serving the key, and never
	// will (what it fetches stays), so later hits skip it.
	pfDone uint8
}

// group is one edge's entries for one rendition.
type group struct {
	base    int32 // the first object's entry
	rend    int32
	edge    int16
	learned uint8 // by lane: the edge's prefetcher knows the rendition's playlist
}

// student is a student's place in the timeline, carried in their next event: a calendar step
// reads a bucket of them in order. Lanes in which the student is elsewhere keep a moved.
type student struct {
	id           int32
	gv, ga       int32 // groups on the student's edge: the video rung, the audio (-1: none)
	vbase, abase int32 // their first entries
	playT        int32 // when the first segment arrived and playback started
	step         uint16
	edge         int16
	rung         uint8
	moved        uint8 // by lane: the lane keeps the student elsewhere (lane.moved)
}

// Steps of a student: the master, the media playlists, the init sections with the first segment,
// then the segment step-stepSeg0.
const (
	stepMaster = iota
	stepPlaylists
	stepSeg0
)

type retry struct {
	id   int32
	lane uint8
}

type pass struct {
	w        *world
	lanes    []*lane
	router   *cdn.Router // the lanes that lose nothing route with it
	regNames []string
	onRoute  func(lane int, id int32, edge int16) // tests; lane -1 is the pass's router

	groups  []group
	groupOf map[uint64]int32
	states  store
	blocks  []int32 // by region*renditions + rendition: the owners' entries, -1 until used

	cal      []bucket   // by ms
	chunks   []*chunk   // processed buckets' chunks, for the next ones
	pfCal    [][]uint64 // prefetches due: lane << 60 | group << 16 | object
	retryCal [][]retry  // students asking the router again
	now, sec int32
	end      int32

	latOrigin, latPeer [][nClasses]int32 // fill times by kind and class, ms
	peers              bool              // some lane has a peer group
	rttMs, bitsPerMs   float64           // the students' link
	sink               int32             // what touch read, so that the reads are made
}

func newPass(w *world, scenarios []Scenario) (*pass, error) {
	router, err := cdn.NewRouter(cdn.RouterConfig{Map: w.cfg.Map, ProbeInterval: -1})
	if err != nil {
		return nil, err
	}
	p := &pass{w: w, router: router, groupOf: map[uint64]int32{}, end: int32(w.cfg.Window.Milliseconds())}
	p.cal, p.pfCal, p.retryCal = make([]bucket, p.end), make([][]uint64, p.end), make([][]retry, p.end)
	for _, reg := range w.regions {
		p.regNames = append(p.regNames, reg.name)
	}
	for k, sc := range scenarios {
		l, err := newLane(p, k, sc)
		if err != nil {
			return nil, err
		}
		p.lanes = append(p.lanes, l)
		p.peers = p.peers || sc.Peers
	}
	if p.peers {
		p.blocks = make([]int32, len(w.regions)*w.renditions())
		for i := range p.blocks {
			p.blocks[i] = -1
		}
	}
	p.rttMs, p.bitsPerMs = w.cfg.StudentRTT.Seconds()*1000, w.cfg.StudentRate/1000
	ms := func(seconds float64) int32 { return int32(max(1, math.Ceil(seconds*1000))) }
	for kind := range w.kinds {
		var o, q [nClasses]int32
		for c := range nClasses {
			transfer := float64(w.size[kind][c]*8) / w.cfg.FillRate
			o[c] = ms(w.cfg.OriginRTT.Seconds() + transfer)
			q[c] = ms(w.cfg.PeerRTT.Seconds() + transfer)
		}
		p.latOrigin, p.latPeer = append(p.latOrigin, o), append(p.latPeer, q)
	}
	for i, j := range w.join {
		p.schedule(j, student{id: int32(i)})
	}
	return p, nil
}

// A bucket of the calendar is a list of chunks of students, taken from and given back to a pool:
// buckets of any size, with no array growing and no garbage.
type bucket struct{ head, tail *chunk }

const chunkLen = 128

type chunk struct {
	ev   [chunkLen]student
	n    int
	next *chunk
}

func (p *pass) schedule(t int32, s student) {
	if t >= p.end {
		return
	}
	b := &p.cal[t]
	if b.tail == nil || b.tail.n == chunkLen {
		var c *chunk
		if n := len(p.chunks); n > 0 {
			c, p.chunks = p.chunks[n-1], p.chunks[:n-1]
		} else {
			c = new(chunk)
		}
		if b.tail == nil {
			b.head = c
		} else {
			b.tail.next = c
		}
		b.tail = c
	}
	b.tail.ev[b.tail.n] = s
	b.tail.n++
}

// play runs the calendar to the end of the window.
func (p *pass) play() {
	for t := int32(0); t < p.end; t++ {
		p.now, p.sec = t, t/1000
		for _, l := range p.lanes {
			l.killDue(p)
		}
		for c := p.cal[t].head; c != nil; c = c.next {
			p.touch(c.ev[:c.n])
			for i := 0; i < c.n; i++ {
				p.step(c.ev[i])
			}
		}
		for _, r := range p.retryCal[t] {
			p.lanes[r.lane].retry(p, r.id)
		}
		for i := 0; i < len(p.pfCal[t]); i++ {
			ev := p.pfCal[t][i]
			l := p.lanes[ev>>60]
			g := int32(ev >> 16 & (1<<44 - 1))
			gr := p.groups[g]
			l.prefetch(p, g, gr.base, gr.edge, int(ev&0xffff))
		}
		for c := p.cal[t].head; c != nil; {
			next := c.next
			c.n, c.next = 0, nil
			p.chunks = append(p.chunks, c)
			c = next
		}
		p.cal[t], p.pfCal[t], p.retryCal[t] = bucket{}, nil, nil
	}
}

// touch reads the entries the bucket's students are about to ask for, one after another without
// waiting for each: the memory fetches overlap, and the entries are in the cache when the students'
// requests need them. A bucket's entries are far more than the cache misses its processing would
// otherwise wait for one at a time.
func (p *pass) touch(bucket []student) {
	var sink int32
	for i := range bucket {
		s := &bucket[i]
		if s.step == stepMaster {
			continue
		}
		o := int32(objPlaylist)
		if s.step >= stepSeg0 {
			o = objSeg0 + int32(s.step-stepSeg0)
		}
		for _, base := range [2]int32{s.vbase, s.abase} {
			if base >= 0 {
				e := p.states.at(base + o)
				// The entries after it, which prefetch looks at, are in this cache line or the next.
				sink += e.ready[0] + p.states.at(base + min(o+2, int32(p.w.nobj)-1)).ready[0]
				if p.peers && e.owned {
					sink += p.states.at(e.peer).ready[0]
				}
			}
		}
	}
	p.sink += sink
}

// store holds the cache entries in pages, so that a pointer to one stays valid while others are
// added.
type store struct {
	pages [][]entry
	next  int // entries used in the last page
}

const pageBits = 16

func (st *store) at(i int32) *entry { return &st.pages[i>>pageBits][i&(1<<pageBits-1)] }

// alloc adds n empty entries, all in one page, and returns the first one's index.
func (st *store) alloc(n int) int32 {
	if len(st.pages) == 0 || st.next+n > 1<<pageBits {
		if len(st.pages) >= math.MaxInt32>>pageBits {
			panic("simulate: more cache entries than the model can index")
		}
		page := make([]entry, 1<<pageBits)
		for i := range page {
			page[i] = entry{peer: -1}
			for k := range page[i].ready {
				page[i].ready[k] = never
			}
		}
		st.pages, st.next = append(st.pages, page), 0
	}
	i := int32(len(st.pages)-1)<<pageBits | int32(st.next)
	st.next += n
	return i
}

// entry returns entry i, or with a peer group, when the edge owns the key, the block's entry.
func (p *pass) entry(i int32, peers bool) *entry {
	e := p.states.at(i)
	if peers && e.owned {
		return p.states.at(e.peer)
	}
	return e
}

// groupFor returns the group of edge e for rend, creating it.
func (p *pass) groupFor(e int16, rend int32) int32 {
	k := uint64(uint16(e))<<32 | uint64(uint32(rend))
	if g, ok := p.groupOf[k]; ok {
		return g
	}
	g := int32(len(p.groups))
	base := p.states.alloc(p.w.nobjOf(rend))
	p.groups = append(p.groups, group{base: base, rend: rend, edge: e})
	p.groupOf[k] = g
	if p.peers {
		b := p.block(e, rend)
		for o, owner := range p.w.ownersOf(p.w.edges[e].region, rend) {
			x := p.states.at(base + int32(o))
			x.peer, x.owned = b+int32(o), owner == e
		}
	}
	return g
}

// block returns the first entry of the region's block for rend, where the entries its objects'
// owners hold are.
func (p *pass) block(e int16, rend int32) int32 {
	b := &p.blocks[p.w.edges[e].region*p.w.renditions()+int(rend)]
	if *b < 0 {
		*b = p.states.alloc(p.w.nobjOf(rend))
	}
	return *b
}

func (p *pass) rend(lec int32, kind int) int32 { return lec*int32(p.w.kinds) + int32(kind) }

// place returns where student id's requests go on edge: its groups there.
func (p *pass) place(id int32, edge int16) spot {
	w := p.w
	lec := w.lecture[id]
	at := spot{edge: edge, ga: -1, abase: -1}
	at.gm = p.groupFor(edge, p.rend(lec, kindMaster))
	at.gv = p.groupFor(edge, p.rend(lec, kindVideo+int(w.rung[id])))
	at.vbase = p.groups[at.gv].base
	if w.cfg.AudioRate > 0 {
		at.ga = p.groupFor(edge, p.rend(lec, kindAudio))
		at.abase = p.groups[at.ga].base
	}
	return at
}

// join places a joining student on the edge the world's router chose, and routes it with each
// lane's own router; false: it has no edge anywhere.
func (p *pass) join(s *student) (spot, bool) {
	w := p.w
	s.rung = w.rung[s.id]
	e := w.routed[s.id]
	if e < 0 {
		for _, l := range p.lanes {
			l.res.Summary.Unserved++
		}
		return spot{}, false
	}
	at := p.place(s.id, e)
	s.edge, s.gv, s.ga, s.vbase, s.abase = e, at.gv, at.ga, at.vbase, at.abase
	if p.onRoute != nil {
		p.onRoute(-1, s.id, s.edge)
	}
	for _, l := range p.lanes {
		if l.router != nil {
			l.join(p, s)
		}
	}
	return at, true
}

// object is one request of a step: object o of the rendition of kind.
type stepObject struct {
	kind int
	o    int
}

// objects returns the objects of a student's step.
func (p *pass) objects(s *student, step uint16, buf *[4]stepObject) []stepObject {
	video := kindVideo + int(s.rung)
	out := buf[:0]
	add := func(o int) {
		out = append(out, stepObject{video, o})
		if p.w.cfg.AudioRate > 0 {
			out = append(out, stepObject{kindAudio, o})
		}
	}
	switch step {
	case stepMaster:
		out = append(out, stepObject{kindMaster, 0})
	case stepPlaylists:
		add(objPlaylist)
	case stepSeg0:
		add(objInit)
		add(objSeg0)
	default:
		add(objSeg0 + int(step-stepSeg0))
	}
	return out
}

// download is the time the student's link takes for objs: a round trip and their bytes.
func (p *pass) download(objs []stepObject) int32 {
	var bytes int64
	for _, x := range objs {
		bytes += p.w.size[x.kind][class(x.kind, x.o)]
	}
	return int32(math.Ceil(p.rttMs + float64(bytes*8)/p.bitsPerMs))
}

// due is when a step's segment is due to play (0: nothing is playing yet).
func (p *pass) due(playT int32, step uint16) int32 {
	if step <= stepSeg0 {
		return 0
	}
	return playT + int32(step-stepSeg0)*p.segMs()
}

func (p *pass) segMs() int32 { return int32(p.w.cfg.Segment.Milliseconds()) }

// step is a student's next request, in every lane.
func (p *pass) step(s student) {
	t := p.now
	at := spot{s.edge, -1, s.gv, s.ga, s.vbase, s.abase}
	if s.step == stepMaster {
		var ok bool
		if at, ok = p.join(&s); !ok {
			return
		}
	}
	var buf [4]stepObject
	objs := p.objects(&s, s.step, &buf)
	took := p.download(objs)
	due := p.due(s.playT, s.step)
	for _, l := range p.lanes {
		l.step(p, &s, at, objs, took, due)
	}
	// The next request, on the student's clock: the startup steps one after another, segments back
	// to back until Buffer of them are buffered, then one whenever playback has made room.
	next := t + took
	if s.step == stepSeg0 {
		s.playT = next
	}
	s.step++
	if s.step > stepSeg0 {
		seg := int32(s.step - stepSeg0)
		if int(seg) >= p.w.nseg {
			return
		}
		next = max(next, s.playT+(seg-int32(p.w.cfg.Buffer))*p.segMs())
	}
	p.schedule(next, s)
}

// Run plays each scenario on the world cfg describes and returns their results in order. The
// scenarios are spread over passes of up to maxLanes, cfg.Parallel passes at a time.
func Run(cfg Config, scenarios []Scenario) ([]*Result, error) {
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	maxPF, peers := 0, false
	for i := range scenarios {
		if err := scenarios[i].validate(cfg.Window); err != nil {
			return nil, err
		}
		maxPF = max(maxPF, scenarios[i].Prefetch)
		peers = peers || scenarios[i].Peers
	}
	w, err := newWorld(cfg, maxPF, peers)
	if err != nil {
		return nil, err
	}
	return w.runAll(slices.Clone(scenarios), nil)
}

// runAll resolves the scenarios' losses and plays them; hook, if set, sees each pass before it
// plays (tests).
func (w *world) runAll(scenarios []Scenario, hook func(*pass)) ([]*Result, error) {
	for i := range scenarios {
		if err := w.resolveKills(&scenarios[i]); err != nil {
			return nil, err
		}
	}
	n := len(scenarios)
	passes := max((n+maxLanes-1)/maxLanes, min(w.cfg.Parallel, n))
	// Scenarios are dealt round-robin, those that lose edges (the dearest: students fail over, and
	// the lane routes them itself) first and from the last pass, which has the fewest lanes.
	order := make([]int, 0, n)
	for _, losing := range []bool{true, false} {
		for j := range scenarios {
			if len(scenarios[j].Kills) > 0 == losing {
				order = append(order, j)
			}
		}
	}
	groups := make([][]int, passes) // scenario indices by pass
	for i, j := range order {
		groups[passes-1-i%passes] = append(groups[passes-1-i%passes], j)
	}
	results := make([]*Result, n)
	errs := make([]error, passes)
	next := make(chan int)
	var wg sync.WaitGroup
	for range min(w.cfg.Parallel, passes) {
		wg.Go(func() {
			for i := range next {
				var scs []Scenario
				for _, j := range groups[i] {
					scs = append(scs, scenarios[j])
				}
				p, err := newPass(w, scs)
				if err != nil {
					errs[i] = err
					continue
				}
				if hook != nil {
					hook(p)
				}
				p.play()
				for k, j := range groups[i] {
					results[j] = p.lanes[k].finish(p)
				}
			}
		})
	}
	for i := range passes {
		next <- i
	}
	close(next)
	wg.Wait()
	return results, errors.Join(errs...)
}

// resolveKills names the edges and regions a scenario loses as the map spells them, in time order.
func (w *world) resolveKills(sc *Scenario) error {
	kills := make([]Kill, len(sc.Kills))
	for j, k := range sc.Kills {
		if k.Edge != "" {
			e, err := w.resolveEdge(k.Edge)
			if err != nil {
				return err
			}
			k.Edge = w.edges[e].url
		} else {
			r, err := w.resolveRegion(k.Region)
			if err != nil {
				return err
			}
			k.Region = w.regions[r].name
		}
		kills[j] = k
	}
	slices.SortStableFunc(kills, func(a, b Kill) int { return cmp.Compare(a.At, b.At) })
	sc.Kills = kills
	return nil
}

func (w *world) resolveRegion(name string) (int, error) {
	for i, reg := range w.regions {
		if reg.name == name || name == LargestRegion && i == w.largest {
			return i, nil
		}
	}
	return 0, fmt.Errorf("no region %q in the region map", name)
}

// resolveEdge finds an edge by URL, REGION/N or BusiestEdge.
func (w *world) resolveEdge(name string) (int16, error) {
	if name == BusiestEdge {
		router, err := cdn.NewRouter(cdn.RouterConfig{Map: w.cfg.Map, ProbeInterval: -1})
		if err != nil {
			return 0, err
		}
		d, err := router.Route(w.lectures[0], w.regions[w.largest].name, netip.Addr{}, "")
		if err != nil {
			return 0, err
		}
		return w.edgeIdx[d.Edge], nil
	}
	if e, ok := w.edgeIdx[strings.TrimRight(name, "/")]; ok {
		return e, nil
	}
	if reg, n, ok := strings.Cut(name, "/"); ok {
		for _, r := range w.regions {
			if i, err := strconv.Atoi(n); err == nil && r.name == reg && i >= 1 && i <= len(r.edges) {
				return r.edges[i-1], nil
			}
		}
	}
	return 0, fmt.Errorf("no edge %q in service in the region map (give its URL, REGION/N or %q)", name, BusiestEdge)
}
