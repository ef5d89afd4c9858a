// Package latency is a fixed-bucket latency histogram on atomics, for hot paths that must not take a
// lock to record a duration; a Prometheus collector reads it at scrape time.
package latency

import (
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// Buckets are the upper bounds in seconds: a local disk or a warm peer answers in well under a
// millisecond, S3 or a distant origin in tens of milliseconds, a struggling one in seconds.
var Buckets = []float64{0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10}

// Histogram counts durations into Buckets. The zero value is ready to use.
type Histogram struct {
	counts [15]atomic.Uint64 // one per bucket, the last one is +Inf
	sum    atomic.Int64      // nanoseconds
}

// Observe records one duration.
func (h *Histogram) Observe(d time.Duration) {
	v := d.Seconds()
	i := 0
	for i < len(Buckets) && v > Buckets[i] {
		i++
	}
	h.counts[i].Add(1)
	h.sum.Add(int64(d))
}

// Snapshot returns the cumulative bucket counts Prometheus wants, the total count and the sum in
// seconds.
func (h *Histogram) Snapshot() (map[float64]uint64, uint64, float64) {
	buckets := make(map[float64]uint64, len(Buckets))
	var cum uint64
	for i, ub := range Buckets {
		cum += h.counts[i].Load()
		buckets[ub] = cum
	}
	cum += h.counts[len(Buckets)].Load()
	return buckets, cum, time.Duration(h.sum.Load()).Seconds()
}

// Metric returns the histogram as a Prometheus metric of desc, with the desc's variable labels set
// to labelValues.
func (h *Histogram) Metric(desc *prometheus.Desc, labelValues ...string) prometheus.Metric {
	buckets, n, sum := h.Snapshot()
	return prometheus.MustNewConstHistogram(desc, n, sum, buckets, labelValues...)
}
