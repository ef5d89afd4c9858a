package loadtest

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
)

// sample is the sums of metrics by name, over every label set.
type sample map[string]float64

// Metric names the report reads.
const (
	originRequests   = "lectern_origin_requests_total"
	originBytes      = "lectern_origin_bytes_out_total"
	edgeHits         = "lectern_edge_hits_total"
	edgeMisses       = "lectern_edge_misses_total"
	edgeUpstream     = "lectern_edge_upstream_fetches_total"
	edgeBytes        = "lectern_edge_bytes_out_total"
	edgeCollapsed    = "lectern_edge_collapsed_waiters_total"
	edgePrefetches   = "lectern_edge_prefetches_total"
	edgePeerFetches  = "lectern_edge_peer_fetches_total"
	scrapeTimeout    = 10 * time.Second
	scrapeBodyLimit  = 16 << 20
	prometheusAccept = "text/plain;version=0.0.4"
)

// scrape reads the Prometheus text exposition at each URL and sums the counters (and untyped and
// gauge values) of the given names over every label set and every URL.
func scrape(ctx context.Context, client *http.Client, urls []string, names ...string) (sample, error) {
	out := sample{}
	for _, u := range urls {
		s, err := scrapeOne(ctx, client, u)
		if err != nil {
			return nil, err
		}
		for _, n := range names {
			out[n] += s[n]
		}
	}
	return out, nil
}

func scrapeOne(ctx context.Context, client *http.Client, u string) (sample, error) {
	ctx, cancel := context.WithTimeout(ctx, scrapeTimeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return nil, fmt.Errorf("metrics %s: %v", u, err)
	}
	req.Header.Set("Accept", prometheusAccept)
	resp, err := client.Do(req)
	if err != nil {
		return nil, fmt.Errorf("metrics %s: %v", u, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("metrics %s: %s", u, resp.Status)
	}
	return parseMetrics(http.MaxBytesReader(nil, resp.Body, scrapeBodyLimit))
}

// parseMetrics sums each metric family of a text exposition over its label sets.
func parseMetrics(r io.Reader) (sample, error) {
	p := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := p.TextToMetricFamilies(r)
	if err != nil {
		return nil, fmt.Errorf("metrics: %v", err)
	}
	out := sample{}
	for name, f := range fams {
		for _, m := range f.GetMetric() {
			out[name] += value(f.GetType(), m)
		}
	}
	return out, nil
}

func value(t dto.MetricType, m *dto.Metric) float64 {
	switch t {
	case dto.MetricType_COUNTER:
		return m.GetCounter().GetValue()
	case dto.MetricType_GAUGE:
		return m.GetGauge().GetValue()
	case dto.MetricType_UNTYPED:
		return m.GetUntyped().GetValue()
	}
	return 0
}

// delta is after minus before, name by name.
func delta(before, after sample) sample {
	out := sample{}
	for k, v := range after {
		out[k] = v - before[k]
	}
	return out
}
