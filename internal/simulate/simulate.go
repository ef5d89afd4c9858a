// Package simulate is the discrete-event model of `lectern simulate`: the start of class at 09:00,
// when millions of students open a lecture within seconds, played against the edges of a region
// map to see what reaches the origin with and without request collapsing, regional peer groups and
// prefetch, and when an edge or a whole region is lost.
//
// # What is real and what is modelled
//
// The decisions are Lectern's own code: every student is routed by a [cdn.Router] built from the
// region map (its weighted rendezvous ranking of edges by lecture, bounded loads, fallback to
// neighbour regions, the failed= exclusion a player sends); an edge that dies is taken out with
// [cdn.Router.SetEdgeUp]. Cache keys are [cdn.CacheKey] of the signed URLs students send
// (/s/{token}/hls/... with a CMCD query): each object's key is computed once, from a URL with a
// token minted by internal/playtoken, and a sample of students (Config.Sample) mint their own tokens
// and CMCD data, whose keys are checked to be the same. A key's owner in a region's peer group is
// rendezvous.Owner over the region's edge URLs, the first of rendezvous.Rank that cdn/peers.go asks;
// what prefetch fetches after an object is [cdn.PrefetchTargets] over a media playlist of the form
// the worker writes, with the edge's bounds (cdn.PrefetchSlots fills at once, cdn.PrefetchRenditions
// playlists remembered).
//
// The rest is a model:
//
//   - Students: Config.Students, each in a region drawn in proportion to the region's edge weights
//     (its serving capacity), watching a lecture drawn from a Zipf popularity over Config.Lectures
//     (lecture k is watched in proportion to 1/k^Zipf), on a rung drawn by the ladder's shares, with
//     the separate audio rendition when Config.AudioRate is set. Everyone starts at the beginning.
//   - Joins: every student joins within Config.Ramp after 09:00, front-loaded: the join rate falls
//     linearly from its peak at 09:00:00 to zero at the end of the ramp (half the students join in
//     the first 29% of it, three quarters in the first half).
//   - A student asks for the master, then the media playlists (video and audio), then the init
//     sections with the first segments, each once the previous download is over; segments follow
//     back to back until Config.Buffer are buffered (hls.js fills a 30 s buffer), then one each
//     time playback has made room for it. A download takes Config.StudentRTT plus the bytes at
//     Config.StudentRate. The timeline is open loop: an edge that answers late (a fill under way,
//     a failover) makes that answer late, counted as a stall when the segment was due to play, but
//     does not move the student's later requests. This is what lets scenarios share one timeline.
//   - An edge is a cache that never evicts within the window. A miss fills in Config.OriginRTT plus
//     size / Config.FillRate from the origin, or in Config.PeerRTT plus size / Config.FillRate more
//     from the key's owner, which fills from the origin itself. With collapsing, requests for a key
//     being filled wait for that fill; without it, each goes upstream on its own (at the owner
//     too). Prefetch fills start when a segment or playlist is served. Time has 1 ms steps.
//   - A lost edge answers nothing from the moment it dies. The router takes it out at once; each of
//     its students fails its next request, asks the router again Config.Failover later with
//     failed=edge (docs/playback.md, "Through the router") and asks the new edge for what failed,
//     then goes on there. The peer group skips the dead edge at once (a real edge first pays a dial
//     timeout); its cached objects are gone, and its keys pass to the next-ranked live edges.
//
// # Speed
//
// Scenarios play as the lanes of a pass: one calendar of 1 ms buckets holds the students' next
// requests (each event the student's whole state, read in order), and every cache entry holds each
// lane's state side by side, so a request costs one memory access for up to four scenarios.
// Before a bucket is played its entries are read ahead, so that their cache misses overlap. Each
// student is routed once (again on failover, and by a lane's own router when it loses edges), keys
// and owners are computed once per object and region for all passes, which run in parallel.
// The default matrix (3 000 000 students, 186 edges, 7 scenarios in two passes) is timed in
// docs/scale.md, "Simulated 09:00".
package simulate

import (
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/lectern/lectern/cdn"
	"github.com/lectern/lectern/internal/plan"
)

// Config is the world the scenarios play in.
type Config struct {
	Students int
	Lectures int
	// Zipf is the popularity exponent: lecture k of Lectures is watched in proportion to 1/k^Zipf.
	Zipf float64
	// Map is the regions and their edges (see GenerateMap).
	Map *cdn.RegionMap

	Ramp    time.Duration // every student joins within Ramp after 09:00
	Window  time.Duration // simulated time after 09:00
	Segment time.Duration // media segment duration
	// Buffer is how many segments a player fetches ahead of the playhead (hls.js's 30 s buffer
	// with 6 s segments: 5), at least 1.
	Buffer int

	// Rungs are the ladder: each rung's average rate (audio included, as in internal/plan) and
	// share of the students.
	Rungs []plan.Rung
	// AudioRate is the rate of the one audio rendition every rung plays, fetched beside each video
	// segment; 0: audio muxed into the rungs.
	AudioRate float64

	OriginRTT time.Duration // time to first byte of a fill from the origin
	PeerRTT   time.Duration // the same from another edge of the region
	FillRate  float64       // bits per second one fill receives
	// Failover is how long a student on a dead edge takes to notice (two failed loads) and ask the
	// router again.
	Failover time.Duration
	// StudentRTT and StudentRate are a student's link to the edge: each request takes a round trip
	// and its bytes at this rate (bits per second), whatever the edge's cache holds.
	StudentRTT  time.Duration
	StudentRate float64

	Seed int64
	// Sample: every Sample-th student's signed URLs are minted with their own token and CMCD data
	// and their cache keys checked against the shared ones. Default 1000.
	Sample int
	// JoinAt, when set, places student i at JoinAt(i) after 09:00 instead of the ramp (tests).
	JoinAt func(i int) time.Duration
	// Parallel is how many passes (of up to four scenarios each) run at once. Default 2.
	Parallel int
}

// Scenario is one run of the world: which edge mechanisms are on and what is lost.
type Scenario struct {
	Name     string `json:"name"`
	Collapse bool   `json:"collapse"`
	Peers    bool   `json:"peers"`
	Prefetch int    `json:"prefetch"`
	Kills    []Kill `json:"kills,omitempty"`
}

// Kill is the loss of an edge or of every edge of a region at At after 09:00. Edge is the edge's URL
// as the map spells it, REGION/N (the region's Nth edge, from 1), or BusiestEdge; Region is a region
// name or LargestRegion.
type Kill struct {
	Edge   string        `json:"edge,omitempty"`
	Region string        `json:"region,omitempty"`
	At     time.Duration `json:"at_ns"`
}

const (
	// BusiestEdge names the edge the router sends the most watched lecture's first student of the
	// largest region to.
	BusiestEdge = "busiest"
	// LargestRegion names the region with the most students.
	LargestRegion = "largest"
)

// DefaultPrefetch is the edge's default --prefetch.
const DefaultPrefetch = 2

// Matrix is the default set of scenarios: everything on, each mechanism off in turn, everything
// off, and everything on with the busiest edge, then the largest region, lost at lossAt.
func Matrix(lossAt time.Duration) []Scenario {
	on := Scenario{Collapse: true, Peers: true, Prefetch: DefaultPrefetch}
	with := func(name string, f func(*Scenario)) Scenario {
		s := on
		s.Name = name
		f(&s)
		return s
	}
	return []Scenario{
		with("all on", func(*Scenario) {}),
		with("collapsing off", func(s *Scenario) { s.Collapse = false }),
		with("peer group off", func(s *Scenario) { s.Peers = false }),
		with("prefetch off", func(s *Scenario) { s.Prefetch = 0 }),
		with("all off", func(s *Scenario) { *s = Scenario{Name: s.Name} }),
		with("all on, edge lost at "+Clock(lossAt), func(s *Scenario) { s.Kills = []Kill{{Edge: BusiestEdge, At: lossAt}} }),
		with("all on, region lost at "+Clock(lossAt), func(s *Scenario) { s.Kills = []Kill{{Region: LargestRegion, At: lossAt}} }),
	}
}

// Clock spells an offset after 09:00 as a time of day, 09:00:20.
func Clock(d time.Duration) string {
	s := int(d / time.Second)
	return fmt.Sprintf("%02d:%02d:%02d", 9+s/3600, s/60%60, s%60)
}

// GenerateMap is the default region map's twelve regions, with their neighbours, and edges edges
// spread over them as evenly as they divide (the first regions get one more), each of weight 1, at
// http://10.{region}.0.{n}:8082.
func GenerateMap(edges int) (*cdn.RegionMap, error) {
	def, err := cdn.ParseRegionMap(cdn.DefaultRegionMapJSON())
	if err != nil {
		return nil, err
	}
	n := len(def.Regions)
	if edges < n {
		return nil, fmt.Errorf("%d edges for %d regions: give at least one per region", edges, n)
	}
	var regs []string
	for i, r := range def.Regions {
		var es []string
		for k := range edges/n + btoi(i < edges%n) {
			es = append(es, fmt.Sprintf(`{"url": "http://10.%d.0.%d:8082"}`, i, k+1))
		}
		nb := make([]string, len(r.Neighbours))
		for j, x := range r.Neighbours {
			nb[j] = fmt.Sprintf("%q", x)
		}
		regs = append(regs, fmt.Sprintf(`%q: {"edges": [%s], "neighbours": [%s]}`, r.Name, strings.Join(es, ", "), strings.Join(nb, ", ")))
	}
	return cdn.ParseRegionMap([]byte(fmt.Sprintf(`{"default": %q, "regions": {%s}}`, def.Default, strings.Join(regs, ", "))))
}

func btoi(b bool) int {
	if b {
		return 1
	}
	return 0
}

func (c *Config) validate() error {
	var errs []error
	check := func(ok bool, format string, a ...any) {
		if !ok {
			errs = append(errs, fmt.Errorf(format, a...))
		}
	}
	check(c.Students > 0, "students %d: at least 1", c.Students)
	check(c.Lectures > 0, "lectures %d: at least 1", c.Lectures)
	check(c.Zipf >= 0, "zipf %v: not negative", c.Zipf)
	check(c.Map != nil, "no region map")
	check(c.Ramp >= 0, "ramp %v: not negative", c.Ramp)
	check(c.Window >= time.Second && c.Window <= time.Hour, "window %v: from 1s to 1h", c.Window)
	check(c.Ramp < c.Window, "ramp %v: shorter than the window %v", c.Ramp, c.Window)
	check(c.Segment >= 100*time.Millisecond, "segment %v: at least 100ms", c.Segment)
	check(c.Buffer >= 1, "buffer %d: at least 1 segment", c.Buffer)
	check(len(c.Rungs) > 0 && len(c.Rungs) < 250, "ladder: 1 to 249 rungs")
	check(c.AudioRate >= 0, "audio rate: not negative")
	for _, r := range c.Rungs {
		check(r.Rate > c.AudioRate, "rung %s: rate %s must exceed the audio rate it includes", r.Name, plan.Rate(r.Rate))
		check(r.Share >= 0, "rung %s: negative share", r.Name)
	}
	check(c.OriginRTT >= 0 && c.PeerRTT >= 0 && c.Failover >= 0, "origin-rtt, peer-rtt, failover: not negative")
	check(c.FillRate > 0 && c.StudentRate > 0, "fill rate, student rate: above 0")
	check(c.StudentRTT >= 0, "student rtt: not negative")
	if c.Map != nil {
		edges := 0
		for _, r := range c.Map.Regions {
			edges += len(r.Edges)
		}
		check(edges > 0 && edges < 1<<15, "region map: 1 to 32767 edges, has %d", edges)
		check(len(c.Map.Regions) < 256, "region map: at most 255 regions")
	}
	return errors.Join(errs...)
}

func (sc *Scenario) validate(window time.Duration) error {
	if sc.Prefetch < 0 || sc.Prefetch > 64 {
		return fmt.Errorf("scenario %q: prefetch %d: 0 to 64", sc.Name, sc.Prefetch)
	}
	for _, k := range sc.Kills {
		if (k.Edge == "") == (k.Region == "") || k.At < 0 || k.At >= window {
			return fmt.Errorf("scenario %q: a loss names an edge or a region, at a time within the window", sc.Name)
		}
	}
	return nil
}
