package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"runtime"
	"strings"
	"time"

	"github.com/lectern/lectern/cdn"
	"github.com/lectern/lectern/internal/plan"
	"github.com/lectern/lectern/internal/simulate"
)

// defaultSimLadder is the lecture profile's measured ladder and mix of docs/scale.md, run 1.
const defaultSimLadder = "1080p:546kb/s:10%,720p:345kb/s:40%,480p:232kb/s:30%,360p:181kb/s:15%,240p:142kb/s:5%"

// simLossAt is when the default matrix loses an edge, then a region: 09:00:20.
const simLossAt = 20 * time.Second

// runSimulate is the discrete-event model of the 09:00 flash crowd (internal/simulate). The default
// matrix (3 000 000 students, 186 edges, 7 scenarios) ran in 41 s (75 s of CPU, 1.4 GB) on this
// project's 2-core machine (docs/scale.md, "Simulated 09:00").
func runSimulate(_ context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlags("simulate", "simulate [flags]\n\nThe default matrix of 7 scenarios (about 40 s and 1.4 GB on 2 cores); --collapse, --peers, --prefetch,\n--kill-edge or --kill-region run one scenario instead. docs/scale.md, \"Simulated 09:00\", explains the model.", stderr)
	students := fs.String("students", "3000000", "students joining at 09:00")
	lectures := fs.String("lectures", "2000", "lectures they watch, by a Zipf popularity (--zipf)")
	zipf := fs.String("zipf", "1", "popularity exponent: lecture k is watched in proportion to 1/k^zipf (0: all alike)")
	regions := fs.String("regions", "", "region map file (JSON, the router's); default: the shipped twelve regions with --edges edges spread over them")
	edges := fs.String("edges", "186", "edges spread over the default map's regions (not with --regions)")
	ramp := fs.Duration("ramp", 30*time.Second, "every student joins within this time after 09:00, front-loaded (the join rate falls linearly to 0)")
	window := fs.Duration("window", 3*time.Minute, "simulated time after 09:00")
	segment := fs.Duration("segment", 6*time.Second, "segment duration (the worker's -hls_time)")
	buffer := fs.Int("buffer", 5, "segments a player fetches ahead of the playhead (hls.js's 30 s buffer / 6 s)")
	ladder := fs.String("ladder", defaultSimLadder, "rungs NAME:RATE:SHARE,... as for lectern plan (RATE is the average a student downloads, audio included)")
	audio := fs.String("audio", "98kb/s", "rate of the audio rendition every rung plays, fetched beside each video segment; 0: muxed")
	originRTT := fs.Duration("origin-rtt", 20*time.Millisecond, "a fill from the origin: time to its first byte")
	peerRTT := fs.Duration("peer-rtt", 2*time.Millisecond, "a fill from the owner edge of the region: time to its first byte")
	fillRate := fs.String("fill-rate", "1Gb/s", "what one fill transfers per second (from the origin or a peer)")
	studentRTT := fs.Duration("student-rtt", 30*time.Millisecond, "a student's round trip to the edge, paid by every request")
	studentRate := fs.String("student-rate", "10Mb/s", "a student's download rate: how long a segment takes to arrive once the edge has it")
	failover := fs.Duration("failover", time.Second, "how long a student on a dead edge takes to ask the router again (two failed loads)")
	collapse := fs.Bool("collapse", true, "request collapsing: a miss waits for the fill under way (one scenario)")
	peers := fs.Bool("peers", true, "regional peer group: a miss asks the key's owner edge first (one scenario)")
	prefetch := fs.Int("prefetch", simulate.DefaultPrefetch, "segments prefetched after one is served (one scenario)")
	killEdge := fs.String("kill-edge", "", "NAME@T,...: the edge (URL, REGION/N or \"busiest\") dies at T (20s or 09:00:20) (one scenario)")
	killRegion := fs.String("kill-region", "", "NAME@T,...: every edge of the region (or \"largest\") dies at T (one scenario)")
	seed := fs.Int64("seed", 1, "random seed: the same seed, the same students and results")
	sample := fs.Int("sample", 1000, "every Nth student's signed URLs are minted with their own token and checked for the shared cache key")
	parallel := fs.Int("parallel", runtime.GOMAXPROCS(0), "passes run at once (a pass plays up to 4 scenarios over one timeline of requests)")
	jsonOut := fs.String("json", "", "write the inputs, per-second series and summaries to this file")
	pos, err := parseInterspersed(fs, args)
	if err != nil {
		return usageErr(err)
	}
	if len(pos) > 0 {
		return fmt.Errorf("unexpected argument %q: every input is a flag (lectern simulate -h)", pos[0])
	}

	p := flagParser{}
	cfg := simulate.Config{
		Students: p.count("students", *students), Lectures: p.count("lectures", *lectures), Zipf: p.number("zipf", *zipf),
		Ramp: *ramp, Window: *window, Segment: *segment, Buffer: *buffer, AudioRate: p.rateOrZero("audio", *audio),
		OriginRTT: *originRTT, PeerRTT: *peerRTT, FillRate: p.rate("fill-rate", *fillRate), Failover: *failover,
		StudentRTT: *studentRTT, StudentRate: p.rate("student-rate", *studentRate),
		Seed: *seed, Sample: *sample, Parallel: *parallel,
	}
	nEdges := p.count("edges", *edges)
	if p.err != nil {
		return p.err
	}
	if cfg.Rungs, err = plan.ParseLadder(*ladder); err != nil {
		return fmt.Errorf("--ladder: %v", err)
	}
	given := givenFlags(fs)
	if *regions != "" {
		if given["edges"] {
			return errors.New("--edges spreads edges over the default map; with --regions the file's edges are used")
		}
		if cfg.Map, err = cdn.LoadRegionMap(*regions); err != nil {
			return err
		}
	} else if cfg.Map, err = simulate.GenerateMap(nEdges); err != nil {
		return fmt.Errorf("--edges: %v", err)
	}

	scenarios := simulate.Matrix(min(simLossAt, *window/2))
	if given["collapse"] || given["peers"] || given["prefetch"] || given["kill-edge"] || given["kill-region"] {
		sc := simulate.Scenario{Collapse: *collapse, Peers: *peers, Prefetch: *prefetch}
		if sc.Kills, err = parseKills(*killEdge, *killRegion); err != nil {
			return err
		}
		sc.Name = scenarioName(sc)
		scenarios = []simulate.Scenario{sc}
	}

	start := time.Now()
	results, err := simulate.Run(cfg, scenarios)
	if err != nil {
		return err
	}
	took := time.Since(start)
	edgeCount := 0
	for _, r := range cfg.Map.Regions {
		edgeCount += len(r.Edges)
	}
	fmt.Fprintf(stdout, "%s students, %s lectures (Zipf %s), %d regions, %d edges, joining within %v; %s to %s; %d scenario(s) in %.1f s\n\n",
		plan.Count(float64(cfg.Students)), plan.Count(float64(cfg.Lectures)), *zipf, len(cfg.Map.Regions), edgeCount, cfg.Ramp,
		simulate.Clock(0), simulate.Clock(cfg.Window), len(results), took.Seconds())
	if err := simulate.WriteTable(stdout, results); err != nil {
		return err
	}
	if *jsonOut == "" {
		return nil
	}
	inputs := map[string]any{}
	fs.VisitAll(func(f *flag.Flag) {
		if f.Name != "json" {
			inputs[f.Name] = f.Value.String()
		}
	})
	data, err := json.MarshalIndent(map[string]any{"inputs": inputs, "elapsed_seconds": took.Seconds(), "scenarios": results}, "", "  ")
	if err != nil {
		return err
	}
	return os.WriteFile(*jsonOut, append(data, '\n'), 0o644)
}

// givenFlags are the flags set on the command line or by their environment variable.
func givenFlags(fs *flag.FlagSet) map[string]bool {
	given := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { given[f.Name] = true })
	fs.VisitAll(func(f *flag.Flag) {
		if _, ok := os.LookupEnv(envName(f.Name)); ok {
			given[f.Name] = true
		}
	})
	return given
}

// parseKills reads --kill-edge and --kill-region: NAME@T,... with T an offset (20s) or a time of
// day from 09:00 (09:00:20).
func parseKills(edges, regions string) ([]simulate.Kill, error) {
	var kills []simulate.Kill
	for flagName, list := range map[string]string{"kill-edge": edges, "kill-region": regions} {
		for item := range strings.SplitSeq(list, ",") {
			if item = strings.TrimSpace(item); item == "" {
				continue
			}
			name, at, ok := strings.Cut(item, "@")
			d, err := parseAt(at)
			if !ok || name == "" || err != nil {
				return nil, fmt.Errorf("--%s %q: write NAME@T, e.g. seoul/3@20s or seoul@09:00:20", flagName, item)
			}
			k := simulate.Kill{At: d}
			if flagName == "kill-edge" {
				k.Edge = name
			} else {
				k.Region = name
			}
			kills = append(kills, k)
		}
	}
	return kills, nil
}

func parseAt(s string) (time.Duration, error) {
	if d, err := time.ParseDuration(s); err == nil {
		return d, nil
	}
	t, err := time.Parse("15:04:05", s)
	if err != nil {
		return 0, err
	}
	d := time.Duration(t.Hour()-9)*time.Hour + time.Duration(t.Minute())*time.Minute + time.Duration(t.Second())*time.Second
	if d < 0 {
		return 0, errors.New("before 09:00")
	}
	return d, nil
}

func scenarioName(sc simulate.Scenario) string {
	on := func(b bool) string {
		if b {
			return "on"
		}
		return "off"
	}
	name := fmt.Sprintf("collapsing %s, peers %s, prefetch %d", on(sc.Collapse), on(sc.Peers), sc.Prefetch)
	for _, k := range sc.Kills {
		name += fmt.Sprintf(", %s%s lost at %s", k.Edge, k.Region, simulate.Clock(k.At))
	}
	return name
}
