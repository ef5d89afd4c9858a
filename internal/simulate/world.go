package simulate

import (
	"fmt"
	"math"
	"math/rand/v2"
	"net/netip"
	"net/url"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/lectern/lectern/cdn"
	"github.com/lectern/lectern/internal/playtoken"
	"github.com/lectern/lectern/internal/rendezvous"
)

// Object sizes the ladder does not give: assumptions, documented in docs/scale.md.
const (
	masterBytes   = 1200   // a master playlist of five rungs, audio and captions
	playlistBytes = 15_000 // a media playlist of a 45-minute lecture: 450 segments of 6 s
	initBytes     = 1000   // an fMP4 init section
)

// A lecture's renditions, in this order: its master (one object), its audio rendition (used when
// Config.AudioRate is set), its video rungs. A media rendition's objects are its playlist, its
// init section, then its segments from seg_00000.m4s on.
const (
	kindMaster = 0
	kindAudio  = 1
	kindVideo  = 2

	objPlaylist = 0
	objInit     = 1
	objSeg0     = 2
)

// Object classes, for sizes, latencies and the origin's requests by kind.
const (
	classMaster = iota
	classPlaylist
	classInit
	classSegment
	nClasses
)

var classNames = [nClasses]string{"master", "playlist", "init", "segment"}

type region struct {
	name       string
	edges      []int16  // indices into world.edges
	urls       []string // as the map spells them: what keys are ranked over
	neighbours []int
	weight     float64
}

type edge struct {
	url    string // without a trailing slash, as Decision.Edge spells it
	region int
}

// world is what every scenario shares: the topology, the students, the objects' keys and owners.
// It is read-only once built, but for keys and owners, filled in once each under atomic pointers.
type world struct {
	cfg      Config
	regions  []region
	edges    []edge
	edgeIdx  map[string]int16
	lectures []string // ids, the most watched first
	kinds    int      // renditions per lecture
	names    []string // rendition directory by kind ("" for the master)
	nseg     int      // segments a student can ask for in the window
	nobj     int      // objects of a media rendition, prefetch margin included
	secs     int

	size [][nClasses]int64 // by kind and class

	join    []int32 // ms after 09:00
	lecture []int32
	rung    []uint8
	home    []uint8 // region index
	routed  []int16 // the edge the router sends the student to when nothing is lost; -1: none

	tokenKeys playtoken.Keys
	expires   time.Time
	keys      []atomic.Pointer[[]string] // by rendition
	owners    []atomic.Pointer[[]int16]  // by region*renditions + rendition: owner edge by object
	largest   int                        // region with the most students

	checked, mismatched int // sampled signed URLs
}

func (w *world) renditions() int { return len(w.lectures) * w.kinds }

func (w *world) nobjOf(rend int32) int {
	if int(rend)%w.kinds == kindMaster {
		return 1
	}
	return w.nobj
}

func class(kind int, o int) int {
	switch {
	case kind == kindMaster:
		return classMaster
	case o == objPlaylist:
		return classPlaylist
	case o == objInit:
		return classInit
	}
	return classSegment
}

// newWorld builds the topology and draws the students. maxPrefetch is the deepest prefetch of the
// scenarios to run: segments that far past the window's last are still fetched.
func newWorld(cfg Config, maxPrefetch int, needOwners bool) (*world, error) {
	if cfg.Sample <= 0 {
		cfg.Sample = 1000
	}
	if cfg.Parallel <= 0 {
		cfg.Parallel = 2
	}
	w := &world{cfg: cfg, edgeIdx: map[string]int16{}}
	byName := map[string]int{}
	for i, r := range cfg.Map.Regions {
		byName[r.Name] = i
	}
	for i, r := range cfg.Map.Regions {
		reg := region{name: r.Name}
		for _, e := range r.Edges {
			if e.Drain {
				continue
			}
			idx := int16(len(w.edges))
			u := strings.TrimRight(e.URL, "/")
			w.edges = append(w.edges, edge{url: u, region: i})
			w.edgeIdx[u] = idx
			reg.edges = append(reg.edges, idx)
			reg.urls = append(reg.urls, e.URL)
			reg.weight += e.Weight
		}
		for _, n := range r.Neighbours {
			reg.neighbours = append(reg.neighbours, byName[n])
		}
		w.regions = append(w.regions, reg)
	}
	if len(w.edges) == 0 {
		return nil, fmt.Errorf("the region map has no edge in service")
	}

	seg := cfg.Segment.Seconds()
	w.secs = int(math.Ceil(cfg.Window.Seconds()))
	w.nseg = int(math.Ceil(cfg.Window.Seconds()/seg)) + cfg.Buffer + 1
	w.nobj = objSeg0 + w.nseg + maxPrefetch
	w.kinds = kindVideo + len(cfg.Rungs)
	w.names = append([]string{"", "audio"}, make([]string, len(cfg.Rungs))...)
	w.size = make([][nClasses]int64, w.kinds)
	w.size[kindMaster][classMaster] = masterBytes
	w.size[kindAudio] = [nClasses]int64{0, playlistBytes, initBytes, int64(cfg.AudioRate * seg / 8)}
	for i, r := range cfg.Rungs {
		w.names[kindVideo+i] = r.Name
		w.size[kindVideo+i] = [nClasses]int64{0, playlistBytes, initBytes, int64((r.Rate - cfg.AudioRate) * seg / 8)}
	}

	rng := rand.New(rand.NewPCG(uint64(cfg.Seed), 0x1ec7e2))
	w.lectures = make([]string, cfg.Lectures)
	for i := range w.lectures {
		w.lectures[i] = lectureID(rng)
	}
	w.drawStudents(rng)

	secret := make([]byte, 32)
	for i := range secret {
		secret[i] = byte(rng.Uint32())
	}
	w.tokenKeys = playtoken.Keys{{ID: "sim", Secret: secret}}
	w.expires = time.Date(2026, 3, 2, 10, 0, 0, 0, time.UTC)
	w.keys = make([]atomic.Pointer[[]string], w.renditions())
	w.owners = make([]atomic.Pointer[[]int16], len(w.regions)*w.renditions())
	w.checkSample(rng)
	if err := w.routeAll(); err != nil {
		return nil, err
	}
	if needOwners {
		w.precomputeOwners()
	}
	return w, nil
}

// routeAll sends every student to an edge with one router, in the order they join (by time, then
// by index, as the passes' calendars have them): where they go in every scenario until something
// is lost.
func (w *world) routeAll() error {
	router, err := cdn.NewRouter(cdn.RouterConfig{Map: w.cfg.Map, ProbeInterval: -1})
	if err != nil {
		return err
	}
	end := slices.Max(w.join) + 1
	start := make([]int32, end+1) // counting sort by join time
	for _, j := range w.join {
		start[j+1]++
	}
	for t := 1; t <= int(end); t++ {
		start[t] += start[t-1]
	}
	order := make([]int32, len(w.join))
	for i, j := range w.join {
		order[start[j]] = int32(i)
		start[j]++
	}
	w.routed = make([]int16, len(w.join))
	for _, i := range order {
		d, err := router.Route(w.lectures[w.lecture[i]], w.regions[w.home[i]].name, netip.Addr{}, "")
		w.routed[i] = -1
		if err == nil {
			w.routed[i] = w.edgeIdx[d.Edge]
		}
	}
	return nil
}

// lectureID is a catalog-like id: 16 characters of [a-z2-7].
func lectureID(rng *rand.Rand) string {
	const alphabet = "abcdefghijklmnopqrstuvwxyz234567"
	var b [16]byte
	for i := range b {
		b[i] = alphabet[rng.IntN(len(alphabet))]
	}
	return string(b[:])
}

// cdf returns the cumulative sums of weights, for drawing by weight with pick.
func cdf(weights []float64) []float64 {
	out := make([]float64, len(weights))
	sum := 0.0
	for i, x := range weights {
		sum += x
		out[i] = sum
	}
	return out
}

func pick(rng *rand.Rand, c []float64) int {
	u := rng.Float64() * c[len(c)-1]
	i, _ := slices.BinarySearch(c, u)
	return min(i, len(c)-1)
}

func (w *world) drawStudents(rng *rand.Rand) {
	cfg := &w.cfg
	n := cfg.Students
	w.join, w.lecture = make([]int32, n), make([]int32, n)
	w.rung, w.home = make([]uint8, n), make([]uint8, n)
	regW := make([]float64, len(w.regions))
	for i, r := range w.regions {
		regW[i] = r.weight
	}
	lecW := make([]float64, cfg.Lectures)
	for k := range lecW {
		lecW[k] = math.Pow(float64(k+1), -cfg.Zipf)
	}
	rungW := make([]float64, len(cfg.Rungs))
	for i, r := range cfg.Rungs {
		rungW[i] = r.Share
	}
	regC, lecC, rungC := cdf(regW), cdf(lecW), cdf(rungW)
	count := make([]int, len(w.regions))
	ramp := float64(cfg.Ramp.Milliseconds())
	for i := range n {
		if cfg.JoinAt != nil {
			w.join[i] = int32(cfg.JoinAt(i).Milliseconds())
		} else {
			// Inverse of the triangular CDF 1-(1-t/R)^2: the density falls linearly to 0 at R.
			w.join[i] = int32(ramp * (1 - math.Sqrt(1-rng.Float64())))
		}
		r := pick(rng, regC)
		w.home[i] = uint8(r)
		count[r]++
		w.lecture[i] = int32(pick(rng, lecC))
		w.rung[i] = uint8(pick(rng, rungC))
	}
	for i, c := range count {
		if c > count[w.largest] {
			w.largest = i
		}
	}
}

// objName is the object's path below /hls/{lecture}/v1/.
func (w *world) objName(rend int32, o int) string {
	kind := int(rend) % w.kinds
	switch {
	case kind == kindMaster:
		return "master.m3u8"
	case o == objPlaylist:
		return w.names[kind] + "/index.m3u8"
	case o == objInit:
		return w.names[kind] + "/init.mp4"
	}
	return fmt.Sprintf("%s/seg_%05d.m4s", w.names[kind], o-objSeg0)
}

// signedKey is the cache key, by the edge's own code, of the URL a student with token and CMCD data
// sends for object o of rendition rend.
func (w *world) signedKey(token, cmcd string, rend int32, o int) string {
	lec := w.lectures[int(rend)/w.kinds]
	raw := "/s/" + token + "/hls/" + lec + "/v1/" + w.objName(rend, o)
	if cmcd != "" {
		raw += "?CMCD=" + url.QueryEscape(cmcd)
	}
	u, err := url.ParseRequestURI(raw)
	if err != nil {
		panic(err) // the names above are all valid paths
	}
	return cdn.CacheKey(u)
}

// keysOf returns the cache keys of a rendition's objects, computed once from signed URLs.
func (w *world) keysOf(rend int32) []string {
	if k := w.keys[rend].Load(); k != nil {
		return *k
	}
	lec := w.lectures[int(rend)/w.kinds]
	token := playtoken.Mint(w.tokenKeys, lec, w.expires, "")
	keys := make([]string, w.nobjOf(rend))
	for o := range keys {
		keys[o] = w.signedKey(token, `bl=0,sid="interned"`, rend, o)
	}
	w.keys[rend].CompareAndSwap(nil, &keys)
	return *w.keys[rend].Load()
}

// ownersOf returns, for each object of rend, its owner among region's edges: rendezvous.Owner over
// the edges' URLs as the map spells them, as cdn/peers.go ranks them.
func (w *world) ownersOf(reg int, rend int32) []int16 {
	slot := &w.owners[reg*w.renditions()+int(rend)]
	if o := slot.Load(); o != nil {
		return *o
	}
	r := &w.regions[reg]
	keys := w.keysOf(rend)
	owners := make([]int16, len(keys))
	pos := make(map[string]int16, len(r.urls))
	for i, u := range r.urls {
		pos[u] = r.edges[i]
	}
	for o, k := range keys {
		owners[o] = pos[rendezvous.Owner(r.urls, k)]
	}
	slot.CompareAndSwap(nil, &owners)
	return *slot.Load()
}

// precomputeOwners fills in the owners of every rendition a student watches in their home region,
// on every core, before the scenarios (which share them) start.
func (w *world) precomputeOwners() {
	need := make([]bool, len(w.owners))
	for i := range w.join {
		base := int(w.home[i])*w.renditions() + int(w.lecture[i])*w.kinds
		need[base+kindMaster] = true
		need[base+kindVideo+int(w.rung[i])] = true
		if w.cfg.AudioRate > 0 {
			need[base+kindAudio] = true
		}
	}
	var wg sync.WaitGroup
	per := w.renditions()
	for p := range w.cfg.Parallel {
		wg.Go(func() {
			for i := p; i < len(need); i += w.cfg.Parallel {
				if need[i] {
					w.ownersOf(i/per, int32(i%per))
				}
			}
		})
	}
	wg.Wait()
}

type object struct {
	rend int32
	o    int
}

// checkSample mints every Sample-th student their own token (their expiry, their region) and CMCD
// data, and checks that the edge's cache key of each URL they send is the object's shared key.
func (w *world) checkSample(rng *rand.Rand) {
	for i := 0; i < len(w.join); i += w.cfg.Sample {
		lec := w.lecture[i]
		token := playtoken.Mint(w.tokenKeys, w.lectures[lec], w.expires.Add(time.Duration(i)*time.Second), w.regions[w.home[i]].name)
		sid := fmt.Sprintf(`sid="%08x"`, rng.Uint32())
		base := lec * int32(w.kinds)
		objs := []object{{base + kindMaster, 0}}
		for _, kind := range []int{kindVideo + int(w.rung[i]), kindAudio} {
			if kind == kindAudio && w.cfg.AudioRate == 0 {
				continue
			}
			rend := base + int32(kind)
			objs = append(objs, object{rend, objPlaylist}, object{rend, objInit}, object{rend, objSeg0 + rng.IntN(w.nseg)})
		}
		for _, x := range objs {
			cmcd := fmt.Sprintf(`bl=%d,br=%d,%s`, rng.IntN(30000), 100+rng.IntN(3000), sid)
			if x.o >= objSeg0 {
				cmcd += fmt.Sprintf(`,nor="seg_%05d.m4s"`, x.o-objSeg0+1)
			}
			w.checked++
			if w.signedKey(token, cmcd, x.rend, x.o) != w.keysOf(x.rend)[x.o] {
				w.mismatched++
			}
		}
	}
}

// mediaPlaylist is a media playlist as the worker writes it (fMP4, an init section, 6 s segments)
// of n segments.
func mediaPlaylist(segment time.Duration, n int) []byte {
	var b strings.Builder
	fmt.Fprintf(&b, "#EXTM3U\n#EXT-X-VERSION:7\n#EXT-X-TARGETDURATION:%d\n#EXT-X-MEDIA-SEQUENCE:0\n#EXT-X-PLAYLIST-TYPE:VOD\n#EXT-X-MAP:URI=\"init.mp4\"\n",
		int(math.Ceil(segment.Seconds())))
	for i := range n {
		fmt.Fprintf(&b, "#EXTINF:%.6f,\nseg_%05d.m4s\n", segment.Seconds(), i)
	}
	b.WriteString("#EXT-X-ENDLIST\n")
	return []byte(b.String())
}

// prefetchTable returns, for each object of a media rendition, the objects the edge prefetches
// once it has served it (cdn.PrefetchTargets over the rendition's playlist). Every media rendition
// has the same layout, so one (the first lecture's first rung) stands for all.
func (w *world) prefetchTable(n int) ([][]uint16, error) {
	if n == 0 {
		return nil, nil
	}
	rend := int32(kindVideo)
	keys := w.keysOf(rend)
	index := make(map[string]int, len(keys))
	for o, k := range keys {
		index[k] = o
	}
	body := mediaPlaylist(w.cfg.Segment, w.nobj-objSeg0)
	table := make([][]uint16, len(keys))
	for o, k := range keys {
		for _, t := range cdn.PrefetchTargets(keys[objPlaylist], body, k, n) {
			j, ok := index[t]
			if !ok {
				return nil, fmt.Errorf("prefetch target %s is no object of the rendition", t)
			}
			table[o] = append(table[o], uint16(j))
		}
	}
	return table, nil
}
