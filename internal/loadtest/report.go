package loadtest

import (
	"fmt"
	"io"
	"math"
	"sort"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"
)

// Report is what a run measured. Its JSON form is what tools (bench/scale) read.
type Report struct {
	Students   int `json:"students"`
	Started    int `json:"started"`
	Finished   int `json:"finished"`
	Failed     int `json:"failed"`
	Unfinished int `json:"unfinished"`
	// StartupMS: wall milliseconds from joining to the first media (init and segments) downloaded,
	// over the students that got that far.
	StartupMS Percentiles `json:"startup_ms"`
	// Rebuffers counts stalls (the buffer ran dry during playback; not the wait after a seek);
	// RebufferSeconds and PlayedSeconds are lecture time; RebufferRatio is stalled / (played + stalled).
	Rebuffers int64 `json:"rebuffers"`
	// RebuffersAfterSeek is how many of Rebuffers began right after a seek, before the second media
	// arrived there: playback resumed on what was left of the segment the seek landed in. Quality of
	// experience measures usually count these with the seek rather than as rebuffering.
	RebuffersAfterSeek int64   `json:"rebuffers_after_seek"`
	RebufferSeconds    float64 `json:"rebuffer_seconds"`
	PlayedSeconds      float64 `json:"played_seconds"`
	RebufferRatio      float64 `json:"rebuffer_ratio"`
	// Requests and Bytes are the students' own requests (every attempt, the router's redirects not
	// counted separately) and the body bytes they received.
	Requests int64 `json:"requests"`
	Bytes    int64 `json:"bytes"`
	// Errors counts failed attempts by key: the HTTP status ("503"), or "timeout", "reset", "refused",
	// "eof" (the connection closed early), "transport", "bad-playlist".
	Errors     map[string]int64 `json:"errors"`
	ErrorTotal int64            `json:"error_total"`
	Switches   int64            `json:"switches"`
	Seeks      int64            `json:"seeks"`
	// Rungs counts video segments fetched by rung, keyed by the rung's BANDWIDTH.
	Rungs map[string]int64 `json:"rungs"`

	Origin  *OriginCounters `json:"origin,omitempty"`
	Edges   *EdgeCounters   `json:"edges,omitempty"`
	Offload *Offload        `json:"offload,omitempty"`

	WallSeconds float64 `json:"wall_seconds"`
	Speed       float64 `json:"speed"`
}

// Percentiles of a distribution (nearest rank); all zero when it is empty.
type Percentiles struct {
	P50 float64 `json:"p50"`
	P95 float64 `json:"p95"`
	P99 float64 `json:"p99"`
	Max float64 `json:"max"`
}

// OriginCounters are deltas of the origins' metrics over the run: requests answered (every kind
// and status) and body bytes.
type OriginCounters struct {
	Requests int64 `json:"requests"`
	Bytes    int64 `json:"bytes"`
}

// EdgeCounters are deltas of the edges' metrics over the run, summed over the edges.
type EdgeCounters struct {
	// Requests are the clients' requests the edges answered from their caches or by a fill: hits plus
	// misses, less the requests edges made to each other (peer fetches) and the edges' own prefetches,
	// both of which are counted as hits or misses where they are served.
	Requests        int64 `json:"requests"`
	Hits            int64 `json:"hits"`
	Misses          int64 `json:"misses"`
	UpstreamFetches int64 `json:"upstream_fetches"`
	Bytes           int64 `json:"bytes"`
	Collapsed       int64 `json:"collapsed"`
	Prefetches      int64 `json:"prefetches"`
	PeerFetches     int64 `json:"peer_fetches"`
}

// Offload is the share of the students' requests and bytes that did not reach the origin:
// 1 - origin/students'.
type Offload struct {
	Requests float64 `json:"requests"`
	Bytes    float64 `json:"bytes"`
}

// percentiles of values (sorted in place).
func percentiles(values []float64) Percentiles {
	if len(values) == 0 {
		return Percentiles{}
	}
	sort.Float64s(values)
	rank := func(p float64) float64 {
		i := int(math.Ceil(p*float64(len(values)))) - 1
		return values[max(i, 0)]
	}
	return Percentiles{P50: rank(0.50), P95: rank(0.95), P99: rank(0.99), Max: values[len(values)-1]}
}

func ratio(part, whole float64) float64 {
	if whole <= 0 {
		return 0
	}
	return part / whole
}

// WriteTable prints the report for a person.
func (r *Report) WriteTable(w io.Writer) error {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	row := func(k, format string, a ...any) { fmt.Fprintf(tw, "%s\t"+format+"\n", append([]any{k}, a...)...) }
	row("students", "%d (started %d, finished %d, failed %d, unfinished %d)", r.Students, r.Started, r.Finished, r.Failed, r.Unfinished)
	row("startup", "p50 %.0f ms  p95 %.0f ms  p99 %.0f ms  max %.0f ms", r.StartupMS.P50, r.StartupMS.P95, r.StartupMS.P99, r.StartupMS.Max)
	row("rebuffers", "%d (%d right after a seek), %.1f s stalled over %.1f s played (ratio %.5f)", r.Rebuffers, r.RebuffersAfterSeek,
		r.RebufferSeconds, r.PlayedSeconds, r.RebufferRatio)
	row("requests", "%d, %s", r.Requests, bytesText(r.Bytes))
	errs := keyed(r.Errors)
	if errs != "" {
		errs = " (" + errs + ")"
	}
	row("errors", "%d%s", r.ErrorTotal, errs)
	row("switches, seeks", "%d, %d", r.Switches, r.Seeks)
	rungs := keyed(r.Rungs)
	if rungs == "" {
		rungs = "none"
	}
	row("segments by rung", "%s", rungs)
	if e := r.Edges; e != nil {
		row("edges", "%d client requests: %d hits, %d misses, %d upstream fetches, %d collapsed, %d prefetches, %d peer fetches, %s out",
			e.Requests, e.Hits, e.Misses, e.UpstreamFetches, e.Collapsed, e.Prefetches, e.PeerFetches, bytesText(e.Bytes))
	}
	if o := r.Origin; o != nil {
		row("origin", "%d requests, %s", o.Requests, bytesText(o.Bytes))
	}
	if o := r.Offload; o != nil {
		row("origin offload", "%.4f%% of requests, %.4f%% of bytes", 100*o.Requests, 100*o.Bytes)
	}
	row("wall time", "%s at %gx", (time.Duration(r.WallSeconds * float64(time.Second))).Round(time.Millisecond), r.Speed)
	return tw.Flush()
}

// keyed prints a map as "k: n, k: n" in key order (numeric keys by value); "" when empty.
func keyed(m map[string]int64) string {
	if len(m) == 0 {
		return ""
	}
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Slice(keys, func(i, j int) bool {
		a, errA := strconv.Atoi(keys[i])
		b, errB := strconv.Atoi(keys[j])
		if errA == nil && errB == nil {
			return a < b
		}
		return keys[i] < keys[j]
	})
	parts := make([]string, len(keys))
	for i, k := range keys {
		parts[i] = fmt.Sprintf("%s: %d", k, m[k])
	}
	return strings.Join(parts, ", ")
}

func bytesText(n int64) string {
	const unit = 1 << 20
	return fmt.Sprintf("%.1f MiB", float64(n)/unit)
}
