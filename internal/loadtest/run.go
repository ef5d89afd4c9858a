// Package loadtest runs virtual students against a Lectern deployment on this machine: each one a
// goroutine that plays a lecture the way hls.js does, so that edges, peers, prefetch and the origin
// see the requests of a class and the report says what students would have lived through.
//
// # A student
//
// A student joins at its ramp time, fetches the master playlist through the target (the router's 302
// names an edge; every later URL is resolved against the edge's, as hls.js resolves them), picks the
// highest rung whose peak BANDWIDTH is at most 0.8 times its bandwidth estimate, and fetches that rung's
// media playlist, init section and segments in order, with the alternate audio rendition's segments
// beside them, keeping up to 30 s buffered ahead. The estimate is hls.js's: 500 kb/s until the first
// segment is measured, then the lower of two throughput averages (half-lives 3 s and 9 s). A new
// estimate may switch the rung before any segment; each rung's playlist is fetched once. Every
// request carries CMCD as hls.js sends it (sid, cid, ot, br, bl, d, mtp, su, tb and nor, the next
// segment relative to the request), which the edges read to tell sessions apart and to prefetch.
//
// Each student draws a bandwidth from a log-normal law and reads every body no faster than it, so
// that the rung choices and the stalls mean on loopback what they would on a real access network.
// Sometimes (Config.Seek) a student jumps to a random position and flushes its buffer.
//
// # Time
//
// Playback can be accelerated (Config.Speed): a lecture second lasts 1/Speed wall seconds, every
// bandwidth is multiplied by Speed, and throughputs are measured back in lecture time, so a run at
// 10x makes the same decisions as one at 1x, ten times faster. Startup times are wall time; played and
// stalled times are lecture time.
//
// # Measures
//
// Startup is from joining to the first media downloaded; a rebuffer is the buffer running dry while
// playing (the wait after a seek is not one). Failed attempts are counted by HTTP status or transport
// error; a request is tried 3 times (5xx and transport errors), and a student whose request fails for
// good stops and counts as failed. The origins' and edges' /metrics are read before and after the run
// for the origin offload. Every connection must go to a loopback address: this is a tool for one
// machine, never a way to load someone else's servers.
package loadtest

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/lectern/lectern/internal/playtoken"
)

// runner is one run's shared state.
type runner struct {
	cfg    Config
	client *http.Client

	// Live totals, for progress lines; the report takes its maps from the students' own counts.
	requests, bytes, errors, switches, seeks, rebuffers atomic.Int64
	started, active, finished, failed                   atomic.Int64

	mu            sync.Mutex
	startups      []float64 // ms
	played        float64
	stalled       float64
	seekRebuffers int64
	outcomes      [3]int
	errs          map[string]int64
	rungs         map[int]int64
}

// Run runs the load test described by cfg and reports what the students saw. It returns an error
// when cfg is wrong, a URL is not on loopback (errors.Is(err, ErrNotLoopback)) or the metrics
// cannot be read; failures of the students' requests are in the report. Run returns within about
// cfg.MaxWall (plus the metrics scrape), or soon after ctx is cancelled, with no goroutine left.
func Run(ctx context.Context, cfg Config) (*Report, error) {
	cfg, err := cfg.withDefaults()
	if err != nil {
		return nil, err
	}
	if err := CheckLoopback(ctx, cfg.Target.Host); err != nil {
		return nil, fmt.Errorf("target %s: %w", cfg.Target, err)
	}
	for _, m := range append(append([]string(nil), cfg.OriginMetrics...), cfg.EdgeMetrics...) {
		u, err := url.Parse(m)
		if err != nil || u.Host == "" {
			return nil, fmt.Errorf("metrics URL %q: give http://host:port/metrics", m)
		}
		if err := CheckLoopback(ctx, u.Host); err != nil {
			return nil, fmt.Errorf("metrics %s: %w", m, err)
		}
	}
	client, transport := newClient(cfg.Students)
	defer transport.CloseIdleConnections()
	r := &runner{cfg: cfg, client: client, errs: map[string]int64{}, rungs: map[int]int64{}}

	originNames := []string{originRequests, originBytes}
	edgeNames := []string{edgeHits, edgeMisses, edgeUpstream, edgeBytes, edgeCollapsed, edgePrefetches, edgePeerFetches}
	originBefore, err := scrape(ctx, client, cfg.OriginMetrics, originNames...)
	if err != nil {
		return nil, err
	}
	edgeBefore, err := scrape(ctx, client, cfg.EdgeMetrics, edgeNames...)
	if err != nil {
		return nil, err
	}

	start := time.Now()
	runCtx, cancel := context.WithTimeout(ctx, cfg.MaxWall)
	defer cancel()
	var wg sync.WaitGroup
	for i, at := range arrivals(cfg.Ramp, cfg.RampWindow, cfg.Students) {
		s := r.newStudent(i)
		wg.Go(func() {
			wall := time.Duration(float64(at) / cfg.Speed)
			if sleep(runCtx, time.Until(start.Add(wall))) != nil {
				r.done(s, stopped)
				return
			}
			r.started.Add(1)
			r.active.Add(1)
			out := s.play(runCtx)
			r.active.Add(-1)
			r.done(s, out)
		})
	}
	stopProgress := r.reportProgress(runCtx, start)
	wg.Wait()
	stopProgress()
	wall := time.Since(start)

	// The run's context may be over (MaxWall): the second scrape gets its own.
	originAfter, err := scrape(context.WithoutCancel(ctx), client, cfg.OriginMetrics, originNames...)
	if err != nil {
		return nil, err
	}
	edgeAfter, err := scrape(context.WithoutCancel(ctx), client, cfg.EdgeMetrics, edgeNames...)
	if err != nil {
		return nil, err
	}
	return r.report(wall, delta(originBefore, originAfter), delta(edgeBefore, edgeAfter)), nil
}

// newStudent draws student i: bandwidth, lecture, region.
func (r *runner) newStudent(i int) *student {
	cfg := r.cfg
	rng := studentRand(cfg.Seed, i)
	bw := logNormal(rng, cfg.Bandwidth, cfg.BandwidthSigma)
	path := cfg.Playlists[newPicker(zipfWeights(len(cfg.Playlists), cfg.Zipf)).pick(rng)]
	lecture := lectureOf(path)
	entry := *cfg.Target
	prefix := strings.TrimSuffix(entry.Path, "/")
	if len(cfg.Keys) > 0 {
		region := ""
		if len(cfg.Regions) > 0 {
			w := make([]float64, len(cfg.Regions))
			for j, reg := range cfg.Regions {
				w[j] = reg.Weight
			}
			region = cfg.Regions[newPicker(w).pick(rng)].Name
		}
		prefix += "/s/" + playtoken.Mint(cfg.Keys, lecture, time.Now().Add(cfg.TokenTTL), region)
	}
	entry.Path, entry.RawPath, entry.RawQuery = prefix+path, "", ""
	return &student{
		r: r, rng: rng, entry: &entry, bandwidth: bw, cid: lecture,
		sid:   fmt.Sprintf("lt-%d-%d", cfg.Seed, i),
		est:   newEstimator(cfg.StartEstimate),
		lists: map[string]*mediaList{}, inits: map[string]bool{},
		count: counts{errors: map[string]int64{}, rungs: map[int]int64{}},
	}
}

// done merges a student's results.
func (r *runner) done(s *student, out outcome) {
	switch out {
	case finished:
		r.finished.Add(1)
	case failed:
		r.failed.Add(1)
	}
	s.reportRebuffers() // a stall found as the student stopped
	r.mu.Lock()
	defer r.mu.Unlock()
	r.outcomes[out]++
	if s.startup > 0 {
		r.startups = append(r.startups, float64(s.startup)/float64(time.Millisecond))
	}
	r.played += s.pb.played
	r.stalled += s.pb.stalled
	r.seekRebuffers += int64(s.pb.seekRebuffers)
	for k, v := range s.count.errors {
		r.errs[k] += v
	}
	for k, v := range s.count.rungs {
		r.rungs[k] += v
	}
}

// reportProgress calls cfg.Progress every ProgressEvery until the returned function is called.
func (r *runner) reportProgress(ctx context.Context, start time.Time) (stop func()) {
	if r.cfg.Progress == nil {
		return func() {}
	}
	ctx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() {
		defer close(done)
		t := time.NewTicker(r.cfg.ProgressEvery)
		defer t.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-t.C:
				r.cfg.Progress(Progress{Elapsed: time.Since(start), Started: int(r.started.Load()), Active: int(r.active.Load()),
					Finished: int(r.finished.Load()), Failed: int(r.failed.Load()), Requests: r.requests.Load(),
					Errors: r.errors.Load(), Rebuffers: r.rebuffers.Load(), Switches: r.switches.Load()})
			}
		}
	}()
	return func() { cancel(); <-done }
}

func (r *runner) report(wall time.Duration, origin, edges sample) *Report {
	r.mu.Lock()
	defer r.mu.Unlock()
	rep := &Report{
		Students: r.cfg.Students, Started: int(r.started.Load()),
		Finished: r.outcomes[finished], Failed: r.outcomes[failed], Unfinished: r.outcomes[stopped],
		StartupMS: percentiles(r.startups),
		Rebuffers: r.rebuffers.Load(), RebuffersAfterSeek: r.seekRebuffers, RebufferSeconds: r.stalled, PlayedSeconds: r.played,
		RebufferRatio: ratio(r.stalled, r.played+r.stalled),
		Requests:      r.requests.Load(), Bytes: r.bytes.Load(),
		Errors: r.errs, ErrorTotal: r.errors.Load(), Switches: r.switches.Load(), Seeks: r.seeks.Load(),
		Rungs:       map[string]int64{},
		WallSeconds: wall.Seconds(), Speed: r.cfg.Speed,
	}
	for bw, n := range r.rungs {
		rep.Rungs[strconv.Itoa(bw)] = n
	}
	if len(r.cfg.EdgeMetrics) > 0 {
		n := func(k string) int64 { return int64(edges[k]) }
		rep.Edges = &EdgeCounters{
			Requests: n(edgeHits) + n(edgeMisses) - n(edgePeerFetches) - n(edgePrefetches),
			Hits:     n(edgeHits), Misses: n(edgeMisses), UpstreamFetches: n(edgeUpstream), Bytes: n(edgeBytes),
			Collapsed: n(edgeCollapsed), Prefetches: n(edgePrefetches), PeerFetches: n(edgePeerFetches),
		}
	}
	if len(r.cfg.OriginMetrics) > 0 {
		rep.Origin = &OriginCounters{Requests: int64(origin[originRequests]), Bytes: int64(origin[originBytes])}
		if rep.Requests > 0 && rep.Bytes > 0 {
			rep.Offload = &Offload{
				Requests: 1 - float64(rep.Origin.Requests)/float64(rep.Requests),
				Bytes:    1 - float64(rep.Origin.Bytes)/float64(rep.Bytes),
			}
		}
	}
	return rep
}
