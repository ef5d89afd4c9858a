package origin

import (
	"strconv"
	"sync/atomic"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/lectern/lectern/internal/latency"
)

// codes are the statuses the origin answers with, each counted on its own; anything else is "other".
var codes = [...]int{200, 204, 206, 302, 304, 403, 404, 405, 412, 416, statusClientClosed, 503}

const numCodes = len(codes) + 1 // + other

func codeIndex(status int) int {
	for i, c := range codes {
		if c == status {
			return i
		}
	}
	return len(codes)
}

// Stats are the origin's counters. They are plain atomics so the request path pays one atomic add per
// counter and nothing else; exporting them is the collector's job.
type Stats struct {
	requests [numKinds][numCodes]atomic.Int64

	// BytesOut counts body bytes written to clients.
	BytesOut atomic.Int64
	// StorageReads counts storage calls (Get, GetRange, Head, List), whatever their outcome.
	StorageReads atomic.Int64
	// StorageErrors counts storage calls and body reads that failed for a reason other than a missing
	// object or an unsatisfiable range.
	StorageErrors atomic.Int64

	// HotHits and HotMisses count object and entry-point lookups in the hot cache (a remembered 404
	// is a hit). HotBytes and HotEntries are its current size; HotEvictions what it dropped for room.
	HotHits, HotMisses, HotBytes, HotEntries, HotEvictions atomic.Int64
	// Collapsed counts requests that shared another request's storage read instead of making one.
	Collapsed atomic.Int64
	// Forbidden counts 403s; TokensDenied those for a student's token that failed verification.
	Forbidden, TokensDenied atomic.Int64

	rejected [numRejectReasons]atomic.Int64
	latency  [numOps]latency.Histogram
}

// Responses returns how many object requests of kind were answered with status. Probes (/healthz,
// /readyz, /metrics) and purges are not counted.
func (s *Stats) Responses(kind Kind, status int) int64 {
	if kind < 0 || kind >= numKinds {
		return 0
	}
	i := codeIndex(status)
	if i == len(codes) {
		return 0
	}
	return s.requests[kind][i].Load()
}

// Rejected returns how many requests were answered 503 without reaching storage (overload, or
// storage failing just now).
func (s *Stats) Rejected() int64 {
	var n int64
	for i := range s.rejected {
		n += s.rejected[i].Load()
	}
	return n
}

func (s *Stats) countRequest(kind Kind, status int) {
	s.requests[kind][codeIndex(status)].Add(1)
}

// collector exports a Server's Stats to Prometheus. Values are read at scrape time, so no metric is
// ever out of step with Stats.
type collector struct {
	s *Server

	requests, bytesOut, storageReads, storageErrors, storageSeconds *prometheus.Desc
	hotHits, hotMisses, hotBytes, hotEntries, hotEvictions          *prometheus.Desc
	collapsed, inflight, rejected, forbidden                        *prometheus.Desc
}

func newCollector(s *Server) *collector {
	d := func(name, help string, labels ...string) *prometheus.Desc {
		return prometheus.NewDesc("lectern_origin_"+name, help, labels, nil)
	}
	return &collector{
		s:              s,
		requests:       d("requests_total", "Object and entry-point requests answered, by object kind and status code.", "kind", "code"),
		bytesOut:       d("bytes_out_total", "Body bytes written to clients."),
		storageReads:   d("storage_reads_total", "Storage calls made (get, range, head, list)."),
		storageErrors:  d("storage_errors_total", "Storage calls and body reads that failed for a reason other than a missing object."),
		storageSeconds: d("storage_seconds", "Latency of storage calls, to the response headers.", "op"),
		hotHits:        d("hot_hits_total", "Requests answered from the hot cache."),
		hotMisses:      d("hot_misses_total", "Requests that did not find their object in the hot cache."),
		hotBytes:       d("hot_bytes", "Bytes held by the hot cache."),
		hotEntries:     d("hot_entries", "Entries in the hot cache."),
		hotEvictions:   d("hot_evictions_total", "Entries the hot cache dropped for room."),
		collapsed:      d("collapsed_total", "Requests that shared another request's storage read."),
		inflight:       d("inflight_reads", "Storage slots in use."),
		rejected:       d("rejected_total", "Requests answered 503 without reaching storage, by reason.", "reason"),
		forbidden:      d("forbidden_total", "Requests refused for a missing or bad credential or token."),
	}
}

func (c *collector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{c.requests, c.bytesOut, c.storageReads, c.storageErrors, c.storageSeconds,
		c.hotHits, c.hotMisses, c.hotBytes, c.hotEntries, c.hotEvictions, c.collapsed, c.inflight, c.rejected, c.forbidden} {
		ch <- d
	}
}

func (c *collector) Collect(ch chan<- prometheus.Metric) {
	st := &c.s.stats
	counter := func(d *prometheus.Desc, v int64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.CounterValue, float64(v), labels...)
	}
	gauge := func(d *prometheus.Desc, v int64) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, float64(v))
	}
	for k := Kind(0); k < numKinds; k++ {
		for i := range numCodes {
			code := "other"
			if i < len(codes) {
				code = strconv.Itoa(codes[i])
			}
			counter(c.requests, st.requests[k][i].Load(), k.String(), code)
		}
	}
	counter(c.bytesOut, st.BytesOut.Load())
	counter(c.storageReads, st.StorageReads.Load())
	counter(c.storageErrors, st.StorageErrors.Load())
	for op := storageOp(0); op < numOps; op++ {
		ch <- st.latency[op].Metric(c.storageSeconds, op.String())
	}
	counter(c.hotHits, st.HotHits.Load())
	counter(c.hotMisses, st.HotMisses.Load())
	gauge(c.hotBytes, st.HotBytes.Load())
	gauge(c.hotEntries, st.HotEntries.Load())
	counter(c.hotEvictions, st.HotEvictions.Load())
	counter(c.collapsed, st.Collapsed.Load())
	gauge(c.inflight, int64(c.s.limit.inFlight()))
	for r := rejectReason(0); r < numRejectReasons; r++ {
		counter(c.rejected, st.rejected[r].Load(), r.String())
	}
	counter(c.forbidden, st.Forbidden.Load())
}
