package origin

import (
	"strconv"
	"sync/atomic"

	"github.com/prometheus/client_golang/prometheus"
)

// numClasses covers status classes 1xx to 5xx.
const numClasses = 5

// Stats are the origin's counters. They are plain atomics so the request path pays one atomic add per
// counter and nothing else; exporting them is the collector's job.
type Stats struct {
	requests [numKinds][numClasses]atomic.Int64

	// BytesOut counts body bytes written to clients.
	BytesOut atomic.Int64
	// StorageErrors counts storage calls that failed for a reason other than a missing object or an
	// unsatisfiable range (the failures that answer 503).
	StorageErrors atomic.Int64
}

// Requests returns how many object requests of kind were answered with a status in class (2 for 2xx,
// 4 for 4xx, ...). Probes (/healthz, /readyz) are not counted.
func (s *Stats) Requests(kind Kind, class int) int64 {
	if kind < 0 || kind >= numKinds || class < 1 || class > numClasses {
		return 0
	}
	return s.requests[kind][class-1].Load()
}

func (s *Stats) countRequest(kind Kind, status int) {
	class := status / 100
	if class < 1 || class > numClasses {
		return
	}
	s.requests[kind][class-1].Add(1)
}

// collector exports a Stats to Prometheus. Values are read at scrape time, so no metric is ever out of
// step with Stats.
type collector struct {
	stats         *Stats
	requests      *prometheus.Desc
	bytesOut      *prometheus.Desc
	storageErrors *prometheus.Desc
}

func newCollector(s *Stats) *collector {
	return &collector{
		stats: s,
		requests: prometheus.NewDesc("lectern_origin_requests_total",
			"Object requests answered, by object kind and status class.", []string{"kind", "code"}, nil),
		bytesOut: prometheus.NewDesc("lectern_origin_bytes_out_total",
			"Body bytes written to clients.", nil, nil),
		storageErrors: prometheus.NewDesc("lectern_origin_storage_errors_total",
			"Storage calls that failed for a reason other than a missing object.", nil, nil),
	}
}

func (c *collector) Describe(ch chan<- *prometheus.Desc) {
	ch <- c.requests
	ch <- c.bytesOut
	ch <- c.storageErrors
}

func (c *collector) Collect(ch chan<- prometheus.Metric) {
	for k := Kind(0); k < numKinds; k++ {
		for class := 1; class <= numClasses; class++ {
			ch <- prometheus.MustNewConstMetric(c.requests, prometheus.CounterValue,
				float64(c.stats.Requests(k, class)), k.String(), strconv.Itoa(class)+"xx")
		}
	}
	ch <- prometheus.MustNewConstMetric(c.bytesOut, prometheus.CounterValue, float64(c.stats.BytesOut.Load()))
	ch <- prometheus.MustNewConstMetric(c.storageErrors, prometheus.CounterValue,
		float64(c.stats.StorageErrors.Load()))
}
