package main

import (
	"bytes"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"time"

	"github.com/lectern/lectern/bench/internal/harness"
	"github.com/lectern/lectern/internal/hls"
	"github.com/lectern/lectern/internal/loadtest"
)

// result is one run: the loadtest's report and what the harness read beside it.
type result struct {
	ablation
	command       string
	lt            loadtest.Report // `lectern loadtest --json`, with its origin and edge counters
	elapsed       time.Duration
	cpu           cpuTimes
	originMetrics metrics // at the end of the run (the origin started with it)
	edgeMetrics   metrics // the four edges', summed
	minioRequests float64 // S3 requests MinIO answered during the run; -1 unknown
	// busyMean and busyPeak are how busy the machine's cores were during the students' run, on the
	// whole and over the busiest 5 s: 1 is every core busy.
	busyMean, busyPeak float64
}

// offload is the share of the students' requests and bytes that did not reach the origin, in %, as
// the loadtest computed it (0 when the students made no request).
func (r result) offload() (requests, bytes float64) {
	if r.lt.Offload == nil {
		return 0, 0
	}
	return 100 * r.lt.Offload.Requests, 100 * r.lt.Offload.Bytes
}

func (r result) summary() string {
	oreq, obytes := r.offload()
	return fmt.Sprintf("finished %d/%d, errors %d, rebuffers %d, startup p50/p95/p99 %.0f/%.0f/%.0f ms, "+
		"requests %d, origin %d requests %s, offload %.3f%% requests %.3f%% bytes, wall %.0f s",
		r.lt.Finished, r.lt.Students, r.lt.ErrorTotal, r.lt.Rebuffers, r.lt.StartupMS.P50, r.lt.StartupMS.P95, r.lt.StartupMS.P99,
		r.lt.Requests, r.lt.Origin.Requests, mb(float64(r.lt.Origin.Bytes)), oreq, obytes, r.lt.WallSeconds)
}

// report is the whole benchmark.
type report struct {
	students              int
	runs                  []result
	loadBefore, loadAfter string
	ladder                string
	objects               int
}

func mb(b float64) string { return fmt.Sprintf("%.1f MB", b/1e6) }

func (rp report) markdown(s *stack) string {
	var b bytes.Buffer
	fmt.Fprintf(&b, "%s\n\n", section)
	fmt.Fprintf(&b, "%s, lectern `%s`; %d cores (%s), %s; load average %s before the first run, %s after the last.\n",
		time.Now().UTC().Format("2006-01-02"), orDash(*version), runtime.NumCPU(), harness.CPUModel(), harness.MemTotal(),
		rp.loadBefore, rp.loadAfter)
	fmt.Fprintf(&b, "Command: `%s` (or `make bench-scale`).\n\n", *command)
	fmt.Fprintf(&b, `Every process on 127.0.0.1 of this one machine: MinIO (one bucket), `+"`lectern origin --storage s3://...`"+`
(signed playback, edge secrets), two regions of two `+"`lectern edge`"+` each (memory tier, defaults otherwise;
each region's two edges are a peer group through `+"`--regions FILE --region R --self URL`"+`),
`+"`lectern router --regions FILE`"+`, and `+"`lectern loadtest`"+` itself.

The lecture: %s. Published with bench/puthls (the transcoder's object layout and metadata, %d objects)
under %d lecture ids. Ladder: %s.

Each run starts origin, edges and router afresh (empty caches; MinIO keeps the objects), then runs %d
virtual students: `+"`--ramp class-start --ramp-window %s`"+` (all join within %s of lecture time,
front-loaded), `+"`--speed %g`"+` (lecture time runs %gx as fast as the clock), `+"`--watch %s`"+` of lecture each,
lectures by Zipf popularity, signed tokens split evenly over the two regions (the router follows the
token's region).%s The students' command in the first run:

    %s

`, orDash(*clipNote), rp.objects, len(s.playlists), rp.ladder, rp.students, *ramp, *ramp, *speed, *speed, *watch, speedNote(),
		strings.NewReplacer(*bin, "lectern", s.work, "$WORK").Replace(rp.runs[0].command))
	b.WriteString("| run | finished | errors | rebuffers (right after a seek) | startup (wall) p50 / p95 / p99 | requests | origin requests | origin bytes " +
		"| offload, requests | offload, bytes | edge upstream fetches | collapsed waiters | prefetches | wall |\n")
	b.WriteString("|---|---|---|---|---|---|---|---|---|---|---|---|---|---|\n")
	for _, r := range rp.runs {
		oreq, obytes := r.offload()
		fmt.Fprintf(&b, "| %s | %d / %d | %s | %d (%d) | %.0f / %.0f / %.0f ms | %d | %d | %s | %s | %s | %d | %d | %d | %.0f s |\n",
			r.label, r.lt.Finished, r.lt.Students, errorCell(r.lt), r.lt.Rebuffers, r.lt.RebuffersAfterSeek, r.lt.StartupMS.P50, r.lt.StartupMS.P95,
			r.lt.StartupMS.P99, r.lt.Requests, r.lt.Origin.Requests, mb(float64(r.lt.Origin.Bytes)), pctCell(oreq), pctCell(obytes),
			r.lt.Edges.UpstreamFetches, r.lt.Edges.Collapsed, r.lt.Edges.Prefetches, r.lt.WallSeconds)
	}
	b.WriteString("\nBehind the table, per run: what the students moved, the edges' misses (client, peer and prefetch " +
		"requests not answered from the cache), what the origin read from MinIO, what the edges turned away, the processor time each role used during the run (seconds, both cores together), and how busy the " +
		"machine's cores were (everything on it, other work included):\n\n")
	b.WriteString("| run | student bytes | rebuffer s | switches | seeks | edge misses | peer fetches | shed 503s | origin storage reads | MinIO requests " +
		"| CPU loadtest | CPU edges | CPU origin | CPU router | machine busy, mean / peak 5 s |\n|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|\n")
	for _, r := range rp.runs {
		minio := "-"
		if r.minioRequests >= 0 {
			minio = fmt.Sprintf("%.0f", r.minioRequests)
		}
		fmt.Fprintf(&b, "| %s | %s | %.1f | %d | %d | %d | %.0f | %.0f | %.0f | %s | %.1f | %.1f | %.1f | %.1f | %.0f %% / %.0f %% |\n",
			r.label, mb(float64(r.lt.Bytes)), r.lt.RebufferSeconds, r.lt.Switches, r.lt.Seeks, r.lt.Edges.Misses, r.edgeMetrics["lectern_edge_peer_fetches_total"],
			r.edgeMetrics["lectern_edge_shed_total"]+r.edgeMetrics["lectern_edge_collapse_refused_total"],
			r.originMetrics["lectern_origin_storage_reads_total"], minio,
			r.cpu.loadtest.Seconds(), r.cpu.edges.Seconds(), r.cpu.origin.Seconds(), r.cpu.router.Seconds(),
			100*r.busyMean, 100*r.busyPeak)
	}
	b.WriteString("\n")
	b.WriteString(rp.reading())
	return b.String()
}

// speedNote says why a run is slowed down, when it is.
func speedNote() string {
	if *speed >= 1 {
		return ""
	}
	return fmt.Sprintf(` Slowed down, not accelerated: this machine cannot move the students' bytes at lecture
pace (bench/scale.sh says how much it can); every player decides as at 1x, and startup times, in wall time,
include downloads paced at %gx the students' bandwidths.`, *speed)
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

// errorCell is the error count with its statuses, e.g. "12 (503: 10, 504: 2)".
func errorCell(lt loadtest.Report) string {
	if lt.ErrorTotal == 0 {
		return "0"
	}
	var parts []string
	for status, n := range lt.Errors {
		parts = append(parts, fmt.Sprintf("%s: %d", status, n))
	}
	slices.Sort(parts)
	return fmt.Sprintf("%d (%s)", lt.ErrorTotal, strings.Join(parts, ", "))
}

func pctCell(p float64) string { return fmt.Sprintf("%.3f %%", p) }

// reading states what the figures say against the goal and against the first run; a person adds why.
func (rp report) reading() string {
	var b bytes.Buffer
	first := rp.runs[0]
	oreq, obytes := first.offload()
	// Stalls that begin right after a seek (playback resumed on the rest of the segment the seek landed
	// in) are the seek's, as quality-of-experience measures count them; the goal is about the rest.
	met := first.lt.ErrorTotal == 0 && first.lt.Rebuffers-first.lt.RebuffersAfterSeek == 0 && oreq >= 99.9 && obytes >= 99.9 && first.lt.Finished == first.lt.Students
	verdict := "met"
	if !met {
		verdict = "**not met**"
	}
	fmt.Fprintf(&b, "Reading: the goal for %s (every student finished, 0 errors, 0 rebuffers other than right after a seek, "+
		"offload >= 99.9 %% of requests and bytes) is %s: %d of %d finished, %d errors, %d rebuffers of which %d right after "+
		"a seek, %.3f %% and %.3f %%.", first.label, verdict, first.lt.Finished, first.lt.Students, first.lt.ErrorTotal,
		first.lt.Rebuffers, first.lt.RebuffersAfterSeek, oreq, obytes)
	if first.busyPeak >= 0.95 {
		fmt.Fprintf(&b, " The machine's cores were saturated during it (%.0f %% busy on the whole, %.0f %% over the busiest 5 s, "+
			"everything on the machine counted): startup times and rebuffers then measure the machine as much as the CDN.",
			100*first.busyMean, 100*first.busyPeak)
	}
	for _, r := range rp.runs[1:] {
		fmt.Fprintf(&b, " With %s the origin served %s the requests (%d) and %s the bytes (%s) of %s",
			r.label, ratio(float64(r.lt.Origin.Requests), float64(first.lt.Origin.Requests)), r.lt.Origin.Requests,
			ratio(float64(r.lt.Origin.Bytes), float64(first.lt.Origin.Bytes)), mb(float64(r.lt.Origin.Bytes)), first.label)
		fmt.Fprintf(&b, ", the edges made %d upstream fetches (%d)", r.lt.Edges.UpstreamFetches, first.lt.Edges.UpstreamFetches)
		fmt.Fprintf(&b, "; startup p95 %.0f ms (%.0f), %d rebuffers, %d errors.", r.lt.StartupMS.P95, first.lt.StartupMS.P95,
			r.lt.Rebuffers, r.lt.ErrorTotal)
	}
	b.WriteString("\n")
	return b.String()
}

// ratio says how a figure compares with the first run's: "3.2x", or "the same".
func ratio(x, base float64) string {
	switch {
	case base == 0 && x == 0, x == base:
		return "the same number of"
	case base == 0:
		return "more"
	}
	return fmt.Sprintf("%.2fx", x/base)
}

// ladder describes the master playlist's renditions: "1080p 592 kb/s, 720p 374 kb/s, ...".
func ladder(dir string) string {
	b, err := os.ReadFile(filepath.Join(dir, "master.m3u8"))
	if err != nil {
		return "?"
	}
	m, err := hls.ParseMaster(b)
	if err != nil {
		return "?"
	}
	var parts []string
	for _, v := range m.Variants {
		parts = append(parts, fmt.Sprintf("%dp %d kb/s", v.Height, v.Bandwidth/1000))
	}
	return strings.Join(parts, ", ") + " (peak, audio included)"
}

// countObjects counts the files of the lecture's tree: the objects of one published version.
func countObjects(dir string) int {
	n := 0
	filepath.WalkDir(dir, func(_ string, d fs.DirEntry, err error) error {
		if err == nil && !d.IsDir() {
			n++
		}
		return nil
	})
	return n
}
