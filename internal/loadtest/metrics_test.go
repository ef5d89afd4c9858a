package loadtest

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strings"
	"sync/atomic"
	"testing"
)

// fakeMetrics serves a Prometheus text exposition whose counters grow by step at every scrape.
func fakeMetrics(t *testing.T, format string) *httptest.Server {
	t.Helper()
	var n atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		k := n.Add(1)
		w.Header().Set("Content-Type", "text/plain; version=0.0.4")
		// "7*N" in format stands for 7 times the scrape's number.
		fmt.Fprint(w, multiples.ReplaceAllStringFunc(format, func(m string) string {
			var f int64
			fmt.Sscanf(m, "%d*N", &f)
			return fmt.Sprint(f * k)
		}))
	}))
	t.Cleanup(srv.Close)
	return srv
}

var multiples = regexp.MustCompile(`[0-9]+\*N`)

// Values are multiples of N, the scrape's number: the delta of one run is the multiplier.
const originText = `# HELP lectern_origin_requests_total Object and entry-point requests answered.
# TYPE lectern_origin_requests_total counter
lectern_origin_requests_total{code="200",kind="segment"} 10*N
lectern_origin_requests_total{code="200",kind="playlist"} 3*N
lectern_origin_requests_total{code="404",kind="other"} 1*N
# TYPE lectern_origin_bytes_out_total counter
lectern_origin_bytes_out_total 5000*N
# TYPE lectern_origin_storage_seconds histogram
lectern_origin_storage_seconds_bucket{op="get",le="0.1"} 7
lectern_origin_storage_seconds_bucket{op="get",le="+Inf"} 9
lectern_origin_storage_seconds_sum{op="get"} 0.5
lectern_origin_storage_seconds_count{op="get"} 9
`

const edgeText = `# TYPE lectern_edge_hits_total counter
lectern_edge_hits_total 10*N
# TYPE lectern_edge_misses_total counter
lectern_edge_misses_total 7*N
# TYPE lectern_edge_upstream_fetches_total counter
lectern_edge_upstream_fetches_total 4*N
# TYPE lectern_edge_bytes_out_total counter
lectern_edge_bytes_out_total 10000*N
# TYPE lectern_edge_collapsed_waiters_total counter
lectern_edge_collapsed_waiters_total 3*N
# TYPE lectern_edge_prefetches_total counter
lectern_edge_prefetches_total 2*N
# TYPE lectern_edge_peer_fetches_total counter
lectern_edge_peer_fetches_total 1*N
# TYPE lectern_edge_tier_hits_total counter
lectern_edge_tier_hits_total{tier="memory"} 99*N
`

// TestMetricsDeltas: the report holds the counters' growth over the run, summed over label sets
// and over the URLs of each role, and the offload against the students' own requests.
func TestMetricsDeltas(t *testing.T) {
	origin := fakeMetrics(t, originText)
	edge1, edge2 := fakeMetrics(t, edgeText), fakeMetrics(t, edgeText)
	cdn := newFakeCDN(t, ladder[:1], 2, 5, nil)
	cfg := testConfig(cdn.srv.URL)
	cfg.OriginMetrics = []string{origin.URL + "/metrics"}
	cfg.EdgeMetrics = []string{edge1.URL + "/metrics", edge2.URL + "/metrics"}
	rep := run(t, cfg)
	if rep.Origin == nil || *rep.Origin != (OriginCounters{Requests: 10 + 3 + 1, Bytes: 5000}) {
		t.Errorf("origin %+v, want 14 requests (three label sets), 5000 bytes", rep.Origin)
	}
	want := EdgeCounters{Requests: 2 * (10 + 7 - 1 - 2), Hits: 20, Misses: 14, UpstreamFetches: 8, Bytes: 20000,
		Collapsed: 6, Prefetches: 4, PeerFetches: 2}
	if rep.Edges == nil || *rep.Edges != want {
		t.Errorf("edges %+v, want %+v", rep.Edges, want)
	}
	if rep.Requests == 0 || rep.Offload == nil || f6(rep.Offload.Requests) != f6(1-14/float64(rep.Requests)) ||
		f6(rep.Offload.Bytes) != f6(1-5000/float64(rep.Bytes)) {
		t.Errorf("offload %+v for %d requests and %d bytes", rep.Offload, rep.Requests, rep.Bytes)
	}
	// Without origin metrics there is no offload to report.
	cfg.OriginMetrics = nil
	if rep := run(t, cfg); rep.Offload != nil || rep.Origin != nil {
		t.Errorf("no origin metrics: origin %+v, offload %+v", rep.Origin, rep.Offload)
	}
}

func TestParseMetricsErrors(t *testing.T) {
	if _, err := parseMetrics(strings.NewReader("lectern_edge_hits_total{ 1\n")); err == nil {
		t.Error("a malformed exposition parsed")
	}
	s, err := parseMetrics(strings.NewReader(""))
	if err != nil || len(s) != 0 {
		t.Errorf("empty: %v %v", s, err)
	}
}
