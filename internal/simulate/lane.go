package simulate

import (
	"net/netip"
	"strings"

	"github.com/lectern/lectern/cdn"
	"github.com/lectern/lectern/internal/rendezvous"
)

// lane is one scenario in a pass: its edges' mechanisms, losses, counters, and the students whose
// place differs from the pass's.
type lane struct {
	k      int
	bit    uint8 // the lane's bit in entry.trig and group.learned
	sc     Scenario
	pf     [][]uint16  // prefetch targets by object
	router *cdn.Router // its own when the scenario loses edges (nil: the pass's)
	kills  []Kill      // still to come

	dead      []bool           // by edge
	deadIn    []bool           // by region: some edge of it is dead
	deadOwner map[uint64]int16 // objects whose owner died: the next-ranked live owner
	slots     [][cdn.PrefetchSlots]int32
	learned   [][]int32 // by edge: groups whose playlist its prefetcher knows

	moved map[int32]*moved // students whose student.moved has the lane's bit

	res *Result
}

// moved is a student's place in a lane where it is not the pass's: another edge after a failover
// (or a join routed elsewhere), failing over, or unserved.
type moved struct {
	spot
	failing bool
	gone    bool
	from    uint16 // the steps that failed, asked again on the next edge
	to      uint16
	playT   int32
}

// spot is where a student's requests go: the edge and its groups (gm, the master's, is known
// only when the student is placed).
type spot struct {
	edge       int16
	gm, gv, ga int32
	vbase      int32
	abase      int32
}

func newLane(p *pass, k int, sc Scenario) (*lane, error) {
	w := p.w
	pf, err := w.prefetchTable(sc.Prefetch)
	if err != nil {
		return nil, err
	}
	l := &lane{k: k, bit: 1 << k, sc: sc, pf: pf, kills: sc.Kills, dead: make([]bool, len(w.edges)), deadIn: make([]bool, len(w.regions)),
		deadOwner: map[uint64]int16{}, slots: make([][cdn.PrefetchSlots]int32, len(w.edges)),
		learned: make([][]int32, len(w.edges)), res: newResult(sc, w)}
	if len(sc.Kills) > 0 {
		if l.router, err = cdn.NewRouter(cdn.RouterConfig{Map: w.cfg.Map, ProbeInterval: -1}); err != nil {
			return nil, err
		}
		l.moved = map[int32]*moved{}
	}
	return l, nil
}

func (l *lane) setMoved(s *student, m *moved) {
	l.moved[s.id] = m
	s.moved |= l.bit
}

// killDue takes out, at once, the edges the scenario loses by now: the router sends them no more
// students, and what they cached is gone.
func (l *lane) killDue(p *pass) {
	for len(l.kills) > 0 && int32(l.kills[0].At.Milliseconds()) <= p.now {
		k := l.kills[0]
		l.kills = l.kills[1:]
		var edges []int16
		if k.Region != "" {
			r, _ := p.w.resolveRegion(k.Region)
			edges = p.w.regions[r].edges
		} else {
			e, _ := p.w.resolveEdge(k.Edge)
			edges = []int16{e}
		}
		for _, e := range edges {
			l.deadIn[p.w.edges[e].region] = true
			l.dead[e] = true
			l.router.SetEdgeUp(p.w.edges[e].url, false)
		}
	}
}

// join routes a joining student with the lane's own router, which may send it elsewhere than the
// pass's once the lane has lost edges.
func (l *lane) join(p *pass, s *student) {
	w := p.w
	d, err := l.router.Route(w.lectures[w.lecture[s.id]], p.regNames[w.home[s.id]], netip.Addr{}, "")
	if err != nil {
		l.res.Summary.Unserved++
		l.setMoved(s, &moved{gone: true})
		return
	}
	e := p.w.edgeIdx[d.Edge]
	if p.onRoute != nil {
		p.onRoute(l.k, s.id, e)
	}
	if e != s.edge {
		l.setMoved(s, &moved{spot: p.place(s.id, e)})
	}
}

// step is a student's request of the pass's timeline, in this lane.
func (l *lane) step(p *pass, s *student, at spot, objs []stepObject, took, due int32) {
	var m *moved
	if s.moved&l.bit != 0 {
		m = l.moved[s.id]
		switch {
		case m.gone:
			return
		case m.failing:
			m.to, m.playT = s.step, s.playT
			return
		}
		at = m.spot
	}
	if l.dead[at.edge] {
		// No answer. After two failed loads the player asks the router again with failed=edge and
		// loads what it missed from the next edge (docs/playback.md, "Through the router").
		l.res.Summary.FailedRequests++
		if m == nil {
			m = &moved{spot: at}
			l.setMoved(s, m)
		}
		m.failing, m.from, m.to, m.playT = true, s.step, s.step, s.playT
		if t := p.now + int32(p.w.cfg.Failover.Milliseconds()); t < p.end {
			p.retryCal[t] = append(p.retryCal[t], retry{s.id, uint8(l.k)})
		}
		return
	}
	l.ask(p, at, objs, took, due)
}

// retry is a failed-over student asking the router again, then the steps it missed.
func (l *lane) retry(p *pass, id int32) {
	w := p.w
	m := l.moved[id]
	d, err := l.router.Route(w.lectures[w.lecture[id]], p.regNames[w.home[id]], netip.Addr{}, w.edges[m.edge].url)
	if err != nil {
		m.gone = true
		l.res.Summary.Unserved++
		return
	}
	e := w.edgeIdx[d.Edge]
	if p.onRoute != nil {
		p.onRoute(l.k, id, e)
	}
	l.res.Summary.Failovers++
	m.spot = p.place(id, e)
	m.failing = false
	s := student{id: id, rung: w.rung[id]}
	var buf [4]stepObject
	for step := m.from; step <= m.to; step++ {
		objs := p.objects(&s, step, &buf)
		l.ask(p, m.spot, objs, p.download(objs), p.due(m.playT, step))
	}
}

// ask sends a step's requests to the student's edge; an answer later than the segment was due to
// play is a stall.
func (l *lane) ask(p *pass, at spot, objs []stepObject, took, due int32) {
	ready := p.now
	for _, x := range objs {
		g, base := at.gv, at.vbase
		switch x.kind {
		case kindAudio:
			g, base = at.ga, at.abase
		case kindMaster:
			g, base = at.gm, p.groups[at.gm].base
		}
		ready = max(ready, l.request(p, at.edge, g, base, x.kind, x.o))
	}
	if due > 0 && ready+took > due {
		l.res.Summary.Stalls++
	}
}

// request is a student's request at edge for object o of its rendition of kind, of which the edge
// keeps group g, its entries from base; it returns when the edge has the answer.
func (l *lane) request(p *pass, edge int16, g, base int32, kind, o int) int32 {
	t := p.now
	res := l.res
	res.StudentRequests[p.sec]++
	res.StudentBytes[p.sec] += p.w.size[kind][class(kind, o)]
	res.edgeReq[int(edge)*p.w.secs+int(p.sec)]++
	local := p.states.at(base + int32(o))
	f := p.entry(base+int32(o), l.sc.Peers)
	ready := l.serve(p, edge, g, o, f, local, true)
	if l.pf == nil || kind == kindMaster {
		return ready
	}
	if o == objPlaylist && p.groups[g].learned&l.bit == 0 {
		l.learn(p, g)
	}
	switch {
	case f.pfDone&l.bit != 0:
	case ready == t:
		l.prefetch(p, g, base, edge, o)
	case f.pfDue&l.bit == 0 && ready < p.end:
		// Prefetch runs once the answer is served.
		f.pfDue |= l.bit
		p.pfCal[ready] = append(p.pfCal[ready], uint64(l.k)<<60|uint64(g)<<16|uint64(o))
	}
	return ready
}

// learn has the edge's prefetcher know group g's playlist; it forgets every playlist when it knows
// too many (cdn.PrefetchRenditions).
func (l *lane) learn(p *pass, g int32) {
	e := p.groups[g].edge
	if len(l.learned[e]) >= cdn.PrefetchRenditions {
		for _, x := range l.learned[e] {
			p.groups[x].learned &^= l.bit
		}
		l.learned[e] = l.learned[e][:0]
		l.res.Summary.PrefetchForgets++
	}
	p.groups[g].learned |= l.bit
	l.learned[e] = append(l.learned[e], g)
}

// serve answers a request at edge e for object o of a rendition whose entry there is f (local: the
// edge's own entry for it, in group g, which is read for the rendition only on a miss; g < 0: the
// rendition is -g-1): from the cache, by joining the fill under way (collapsing), or by a fill of
// its own; it returns when the answer is complete. client: a student's request (a peer's is counted
// by the asking edge).
func (l *lane) serve(p *pass, e int16, g int32, o int, f, local *entry, client bool) int32 {
	t := p.now
	ready := f.ready[l.k]
	switch {
	case ready <= t:
		return t
	case ready != never && l.sc.Collapse:
		if client {
			l.res.Summary.Collapsed++
		}
		return ready
	}
	rend := -g - 1
	if g >= 0 {
		rend = p.groups[g].rend
	}
	mine := l.upstream(p, e, rend, o, local)
	f.ready[l.k] = min(ready, mine)
	return mine
}

// upstream fills the object of local, edge e's entry for object o of rend: from the key's owner in
// the region when there is a peer group and another edge owns it, else from the origin. It
// returns when the fill is stored.
func (l *lane) upstream(p *pass, e int16, rend int32, o int, local *entry) int32 {
	kind := int(rend) % p.w.kinds
	c := class(kind, o)
	// local.peer < 0: local is an owner's entry in the block.
	if l.sc.Peers && local.peer >= 0 && !local.owned {
		owner, f := int16(-1), p.states.at(local.peer)
		if l.deadIn[p.w.edges[e].region] {
			// A dead owner's keys go to the next-ranked live edge, which keeps them in its group.
			if owner = l.liveOwner(p, e, rend, o); owner != e {
				f = l.ownerEntry(p, owner, rend, o)
			}
		}
		if owner != e {
			l.res.PeerRequests[p.sec]++
			return l.serve(p, owner, -rend-1, o, f, f, false) + p.latPeer[kind][c]
		}
	}
	l.res.OriginRequests[p.sec]++
	l.res.OriginBytes[p.sec] += p.w.size[kind][c]
	l.res.Summary.OriginByKind[classNames[c]]++
	return p.now + p.latOrigin[kind][c]
}

// ownerEntry is the entry of object o of rend at its owner: in the region's block, or, when the
// owner took the object over from a dead one, in the owner's own group.
func (l *lane) ownerEntry(p *pass, owner int16, rend int32, o int) *entry {
	if p.w.ownersOf(p.w.edges[owner].region, rend)[o] != owner {
		return p.states.at(p.groups[p.groupFor(owner, rend)].base + int32(o))
	}
	return p.states.at(p.block(owner, rend) + int32(o))
}

// liveOwner returns the owner of object o of rend in edge e's region when the one rendezvous
// hashing picks over all its edges is dead: the next of rendezvous.Rank among the live ones.
func (l *lane) liveOwner(p *pass, e int16, rend int32, o int) int16 {
	w := p.w
	reg := w.edges[e].region
	own := w.ownersOf(reg, rend)[o]
	if !l.dead[own] {
		return own
	}
	k := uint64(reg)<<48 | uint64(uint32(rend))<<16 | uint64(o)
	if x, ok := l.deadOwner[k]; ok {
		return x
	}
	region := &w.regions[reg]
	var live []string
	for i, u := range region.urls {
		if !l.dead[region.edges[i]] {
			live = append(live, u)
		}
	}
	x := e
	if len(live) > 0 {
		x = w.edgeIdx[strings.TrimRight(rendezvous.Owner(live, w.keysOf(rend)[o]), "/")]
	}
	l.deadOwner[k] = x
	return x
}

// prefetch is the edge's prefetcher after it served object o of group g (its entries from base,
// at edge): the following segments neither cached nor being filled are filled, each on a free
// prefetch slot, else dropped.
func (l *lane) prefetch(p *pass, g, base int32, edge int16, o int) {
	t := p.now
	done := true
	for _, n := range l.pf[o] {
		f := p.entry(base+int32(n), l.sc.Peers)
		if f.ready[l.k] != never {
			continue
		}
		if l.dead[edge] || p.groups[g].learned&l.bit == 0 {
			return
		}
		slots := &l.slots[edge]
		free := -1
		for i, busy := range slots {
			if busy <= t {
				free = i
				break
			}
		}
		if free < 0 {
			l.res.Summary.PrefetchShed++
			done = false
			continue
		}
		l.res.Prefetches[p.sec]++
		f.ready[l.k] = l.upstream(p, edge, p.groups[g].rend, int(n), p.states.at(base+int32(n)))
		slots[free] = f.ready[l.k]
	}
	if done {
		p.entry(base+int32(o), l.sc.Peers).pfDone |= l.bit
	}
}
