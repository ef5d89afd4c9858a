package simulate

import (
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/lectern/lectern/internal/plan"
)

// Result is one scenario's outcome. The series have one value per second after 09:00.
type Result struct {
	Scenario Scenario `json:"scenario"`
	Summary  Summary  `json:"summary"`

	OriginRequests  []int64 `json:"origin_requests"`
	OriginBytes     []int64 `json:"origin_bytes"`
	StudentRequests []int64 `json:"student_requests"`
	StudentBytes    []int64 `json:"student_bytes"`
	PeerRequests    []int64 `json:"peer_requests"` // an edge's miss asked of the key's owner
	Prefetches      []int64 `json:"prefetches"`    // fills started by prefetch
	// EdgePeak is the requests of the busiest edge in each second.
	EdgePeak []int64 `json:"edge_peak"`

	edgeReq []int32 // by edge*seconds + second
	edges   []edge
}

// Summary is a scenario's totals and peaks.
type Summary struct {
	Students        int     `json:"students"`
	StudentRequests int64   `json:"student_requests"`
	StudentBytes    int64   `json:"student_bytes"`
	OriginRequests  int64   `json:"origin_requests"`
	OriginBytes     int64   `json:"origin_bytes"`
	OriginPeak      int64   `json:"origin_peak_rps"`
	OriginPeakAt    int     `json:"origin_peak_second"` // after 09:00
	RequestOffload  float64 `json:"request_offload"`    // 1 - origin requests / student requests
	ByteOffload     float64 `json:"byte_offload"`
	// OriginByKind splits the origin's requests: master, playlist, init, segment.
	OriginByKind map[string]int64 `json:"origin_by_kind"`

	PeerRequests    int64 `json:"peer_requests"`
	Collapsed       int64 `json:"collapsed"` // student requests that joined a fill under way
	Prefetches      int64 `json:"prefetches"`
	PrefetchShed    int64 `json:"prefetch_shed"`    // no free prefetch slot
	PrefetchForgets int64 `json:"prefetch_forgets"` // an edge's prefetcher forgot its playlists

	Unserved       int64 `json:"unserved"`        // students the router had no edge for
	Failovers      int64 `json:"failovers"`       // students who moved to another edge
	FailedRequests int64 `json:"failed_requests"` // requests to a dead edge
	Stalls         int64 `json:"stalls"`          // segments that arrived after they were due to play

	EdgePeak     int64  `json:"edge_peak_rps"` // the busiest edge-second
	EdgePeakEdge string `json:"edge_peak_edge"`
	EdgePeakAt   int    `json:"edge_peak_second"`

	KeysChecked   int `json:"keys_checked"`   // sampled students' signed URLs
	KeyMismatches int `json:"key_mismatches"` // of those, keys that were not the object's shared key
}

func newResult(sc Scenario, w *world) *Result {
	n := w.secs
	return &Result{Scenario: sc, OriginRequests: make([]int64, n), OriginBytes: make([]int64, n),
		StudentRequests: make([]int64, n), StudentBytes: make([]int64, n), PeerRequests: make([]int64, n),
		Prefetches: make([]int64, n), EdgePeak: make([]int64, n), edgeReq: make([]int32, len(w.edges)*n), edges: w.edges,
		Summary: Summary{Students: len(w.join), OriginByKind: map[string]int64{}, KeysChecked: w.checked, KeyMismatches: w.mismatched}}
}

// finish adds up the lane's series into its summary.
func (l *lane) finish(p *pass) *Result {
	res := l.res
	s := &res.Summary
	n := len(res.OriginRequests)
	for sec := range n {
		s.StudentRequests += res.StudentRequests[sec]
		s.StudentBytes += res.StudentBytes[sec]
		s.OriginRequests += res.OriginRequests[sec]
		s.OriginBytes += res.OriginBytes[sec]
		s.PeerRequests += res.PeerRequests[sec]
		s.Prefetches += res.Prefetches[sec]
		if res.OriginRequests[sec] > s.OriginPeak {
			s.OriginPeak, s.OriginPeakAt = res.OriginRequests[sec], sec
		}
	}
	for e := range res.edges {
		for sec, v := range res.edgeReq[e*n : (e+1)*n] {
			res.EdgePeak[sec] = max(res.EdgePeak[sec], int64(v))
			if int64(v) > s.EdgePeak {
				s.EdgePeak, s.EdgePeakEdge, s.EdgePeakAt = int64(v), res.edges[e].url, sec
			}
		}
	}
	if s.StudentRequests > 0 {
		s.RequestOffload = 1 - float64(s.OriginRequests)/float64(s.StudentRequests)
	}
	if s.StudentBytes > 0 {
		s.ByteOffload = 1 - float64(s.OriginBytes)/float64(s.StudentBytes)
	}
	return res
}

// Span is a stretch of seconds after 09:00, [From, To).
type Span struct{ From, To int }

// Spans are the stretches of the per-second table within secs seconds: each of the first five
// seconds, then longer ones. The table shows their means: requests follow the 6 s segment clock of
// students who joined together, so single seconds later on would show a phase of it.
func Spans(secs int) []Span {
	var out []Span
	for _, b := range [][2]int{{0, 1}, {1, 2}, {2, 3}, {3, 4}, {4, 5}, {5, 10}, {10, 20}, {20, 25}, {25, 30}, {30, 60}, {60, 120}, {120, 180}, {180, 600}, {600, 3600}} {
		if b[0] < secs {
			out = append(out, Span{b[0], min(b[1], secs)})
		}
	}
	return out
}

func (s Span) String() string {
	if s.To == s.From+1 {
		return Clock(time.Duration(s.From) * time.Second)
	}
	return Clock(time.Duration(s.From)*time.Second) + "-" + Clock(time.Duration(s.To)*time.Second)
}

// Mean is series' mean over the span.
func (s Span) Mean(series []int64) float64 {
	var sum int64
	for _, v := range series[s.From:s.To] {
		sum += v
	}
	return float64(sum) / float64(s.To-s.From)
}

func offload(f float64) string { return fmt.Sprintf("%.2f%%", f*100) }

// WriteTable prints the scenarios' summaries, then the origin's requests per second at selected
// seconds, one column per scenario (numbered as in the summary).
func WriteTable(out io.Writer, results []*Result) error {
	tw := tabwriter.NewWriter(out, 0, 4, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "#\tscenario\torigin req\tpeak req/s (at)\torigin bytes\toffload req\toffload bytes\tedge peak req/s\tunserved\tfailovers\tstalls\t")
	for i, r := range results {
		s := r.Summary
		fmt.Fprintf(tw, "%d\t%s\t%s\t%s (%s)\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t\n", i+1, r.Scenario.Name,
			plan.Count(float64(s.OriginRequests)), plan.Count(float64(s.OriginPeak)), Clock(time.Duration(s.OriginPeakAt)*time.Second),
			plan.Bytes(float64(s.OriginBytes)), offload(s.RequestOffload), offload(s.ByteOffload),
			plan.Count(float64(s.EdgePeak)), plan.Count(float64(s.Unserved)), plan.Count(float64(s.Failovers)), plan.Count(float64(s.Stalls)))
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	if len(results) == 0 {
		return nil
	}
	fmt.Fprintln(out, "\nedge work, by scenario")
	fmt.Fprintln(tw, "#\tpeer requests\tcollapsed\tprefetches\tprefetch shed\tfailed requests\t")
	for i, r := range results {
		s := r.Summary
		fmt.Fprintf(tw, "%d\t%s\t%s\t%s\t%s\t%s\t\n", i+1, plan.Count(float64(s.PeerRequests)), plan.Count(float64(s.Collapsed)),
			plan.Count(float64(s.Prefetches)), plan.Count(float64(s.PrefetchShed)), plan.Count(float64(s.FailedRequests)))
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	fmt.Fprintln(out, "\norigin requests per second (mean over each span), by scenario")
	head := []string{"time"}
	for i := range results {
		head = append(head, fmt.Sprint(i+1))
	}
	fmt.Fprintln(tw, strings.Join(head, "\t")+"\t")
	for _, sp := range Spans(len(results[0].OriginRequests)) {
		row := []string{sp.String()}
		for _, r := range results {
			row = append(row, plan.Count(sp.Mean(r.OriginRequests)))
		}
		fmt.Fprintln(tw, strings.Join(row, "\t")+"\t")
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	s := results[0].Summary
	_, err := fmt.Fprintf(out, "\ncache keys: %s signed URLs of sampled students (own tokens and CMCD data), %d not the object's shared key\n",
		plan.Count(float64(s.KeysChecked)), s.KeyMismatches)
	return err
}
