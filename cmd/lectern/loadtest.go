package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/url"
	"os"
	"strings"
	"time"

	"github.com/lectern/lectern/internal/loadtest"
)

// runLoadtest runs virtual students (internal/loadtest) against a deployment on this machine and
// prints what they lived through; --json writes the same for tools.
func runLoadtest(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlags("loadtest", "loadtest --target URL --playlist PATH[,PATH...] [flags]", stderr)
	target := fs.String("target", "", "base URL of the router (or of one edge); loopback addresses only (required)")
	playlists := fs.String("playlist", "", "master playlist paths, PATH[,PATH...], e.g. /hls/{lecture}/v1/master.m3u8; the first is the most popular (required)")
	zipf := fs.Float64("zipf", 1, "popularity of the playlists: the k-th is picked in proportion to 1/k^zipf (0: evenly)")
	regions := fs.String("regions", "", "students' regions, carried in their playback tokens: NAME:WEIGHT[,NAME:WEIGHT...], e.g. seoul:3,busan-ulsan:1 (needs --playback-keys). Empty: no region, the router goes by address")
	students := fs.Int("students", 100, "virtual students")
	ramp := fs.String("ramp", "class-start", "how students join over --ramp-window: class-start (front-loaded: exponential arrivals of mean window/5, cut at the window), linear or instant")
	rampWindow := fs.Duration("ramp-window", 30*time.Second, "lecture time over which students join")
	speed := fs.Float64("speed", 1, "play X times faster: lecture time (ramp, watch, buffer, pacing) runs X times faster than the clock and every bandwidth is X times higher, so players decide as at 1x")
	watch := fs.Duration("watch", 2*time.Minute, "lecture time each student watches (less if the lecture ends first)")
	bandwidth := fs.Float64("bandwidth", 8, "median bandwidth of a student, Mb/s; each draws one (log-normal) and downloads no faster")
	sigma := fs.Float64("bandwidth-sigma", 0.5, "sigma of the log-normal bandwidth law (0: every student has the median)")
	startEstimate := fs.Float64("start-estimate", 0.5, "bandwidth estimate before the first segment is measured, Mb/s (hls.js's abrEwmaDefaultEstimate)")
	seek := fs.Float64("seek", 0.002, "probability per segment that a student seeks to a random position (flushing its buffer)")
	originMetrics := fs.String("origin-metrics", "", "origin /metrics URLs, URL[,URL...], read before and after for the origin offload")
	edgeMetrics := fs.String("edge-metrics", "", "edge /metrics URLs, URL[,URL...], read before and after (hits, misses, upstream fetches, collapsing, prefetch)")
	maxWall := fs.Duration("max-wall", 10*time.Minute, "longest run (wall time): students still playing then are stopped and counted as unfinished")
	timeout := fs.Duration("timeout", 10*time.Second, "longest wait for response headers, or for more of a body, before an attempt counts as a timeout")
	jsonOut := fs.String("json", "", "also write the report as JSON to this file")
	seed := fs.Uint64("seed", 1, "seed of the random draws (bandwidths, playlists, regions, seeks): the same seed gives the same students")
	progress := fs.Duration("progress", 5*time.Second, "print a progress line to stderr this often (0: never)")
	failOn := fs.Bool("fail", false, "exit 1 if any request failed, any student rebuffered, failed or did not finish")
	var pbf playbackFlags
	pbf.register(fs, true)
	if err := parse(fs, args); err != nil {
		return usageErr(err)
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "lectern loadtest: unexpected argument %q: every input is a flag (lectern loadtest -h)\n", fs.Arg(0))
		return errUsage
	}
	bad := func(format string, a ...any) error {
		fmt.Fprintf(stderr, "lectern loadtest: "+format+"\n", a...)
		return errUsage
	}
	keys, err := pbf.parse()
	if err != nil {
		return bad("%v", err)
	}
	cfg := loadtest.Config{
		Playlists: splitList(*playlists), Zipf: *zipf, Keys: keys, TokenTTL: pbf.ttl,
		Students: *students, Ramp: loadtest.Ramp(*ramp), RampWindow: *rampWindow, Speed: *speed, Watch: *watch,
		Bandwidth: *bandwidth * 1e6, BandwidthSigma: *sigma, StartEstimate: *startEstimate * 1e6, Seek: *seek,
		Timeout: *timeout, MaxWall: *maxWall, Seed: *seed,
		OriginMetrics: splitList(*originMetrics), EdgeMetrics: splitList(*edgeMetrics),
	}
	switch {
	case *target == "":
		return bad("--target: give the router's base URL, e.g. http://127.0.0.1:8083")
	case len(cfg.Playlists) == 0:
		return bad("--playlist: give a master playlist path, e.g. /hls/{lecture}/v1/master.m3u8")
	case *students <= 0:
		return bad("--students %d: give a positive number", *students)
	case !(*speed > 0) || !(*bandwidth > 0) || !(*startEstimate > 0):
		return bad("--speed, --bandwidth and --start-estimate must be positive")
	case *sigma < 0 || *zipf < 0 || *seek < 0 || *seek > 1:
		return bad("--bandwidth-sigma and --zipf must not be negative, --seek is a probability (0 to 1)")
	case *maxWall <= 0 || *timeout <= 0 || *watch <= 0 || *rampWindow < 0:
		return bad("--max-wall, --timeout and --watch must be positive, --ramp-window not negative")
	}
	if cfg.Target, err = url.Parse(*target); err != nil || cfg.Target.Host == "" || (cfg.Target.Scheme != "http" && cfg.Target.Scheme != "https") {
		return bad("--target %q: give an http(s) base URL, e.g. http://127.0.0.1:8083", *target)
	}
	if err := loadtest.CheckLoopback(ctx, cfg.Target.Host); err != nil {
		return bad("--target %s: %v", *target, err)
	}
	for _, m := range append(append([]string(nil), cfg.OriginMetrics...), cfg.EdgeMetrics...) {
		u, err := url.Parse(m)
		if err != nil || u.Host == "" {
			return bad("metrics URL %q: give http://host:port/metrics", m)
		}
		if err := loadtest.CheckLoopback(ctx, u.Host); err != nil {
			return bad("metrics URL %s: %v", m, err)
		}
	}
	if cfg.Regions, err = loadtest.ParseRegions(*regions); err != nil {
		return bad("--regions: %v", err)
	}
	if len(cfg.Regions) > 0 && len(keys) == 0 {
		return bad("--regions: the region travels in signed playback URLs: give --playback-keys too")
	}
	switch cfg.Ramp {
	case loadtest.RampClassStart, loadtest.RampLinear, loadtest.RampInstant:
	default:
		return bad("--ramp %q: give class-start, linear or instant", *ramp)
	}
	if err := cfg.Validate(); err != nil {
		return bad("%v", err)
	}
	if *progress > 0 {
		cfg.ProgressEvery = *progress
		cfg.Progress = func(p loadtest.Progress) {
			fmt.Fprintf(stderr, "lectern loadtest: %5.0fs  joined %d/%d  playing %d  finished %d  failed %d  requests %d  errors %d  rebuffers %d\n",
				p.Elapsed.Seconds(), p.Started, *students, p.Active, p.Finished, p.Failed, p.Requests, p.Errors, p.Rebuffers)
		}
	}

	rep, err := loadtest.Run(ctx, cfg)
	if err != nil {
		if errors.Is(err, loadtest.ErrNotLoopback) {
			return bad("%v", err)
		}
		return err
	}
	if err := rep.WriteTable(stdout); err != nil {
		return err
	}
	if *jsonOut != "" {
		data, err := json.MarshalIndent(rep, "", "  ")
		if err != nil {
			return err
		}
		if err := os.WriteFile(*jsonOut, append(data, '\n'), 0o644); err != nil {
			return fmt.Errorf("--json: %v", err)
		}
	}
	if *failOn && (rep.ErrorTotal > 0 || rep.Rebuffers > 0 || rep.Failed > 0 || rep.Unfinished > 0) {
		return fmt.Errorf("--fail: %d errors, %d rebuffers, %d students failed, %d unfinished", rep.ErrorTotal, rep.Rebuffers, rep.Failed, rep.Unfinished)
	}
	return nil
}

// splitList splits a comma-separated flag value, dropping empty items.
func splitList(s string) []string {
	var out []string
	for item := range strings.SplitSeq(s, ",") {
		if item = strings.TrimSpace(item); item != "" {
			out = append(out, item)
		}
	}
	return out
}
