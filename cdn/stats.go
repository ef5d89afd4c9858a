package cdn

import (
	"sync/atomic"

	"github.com/prometheus/client_golang/prometheus"
)

// Stats are the edge's counters and gauges: plain atomics, so the request path pays one atomic add
// each; exporting them is the collector's job.
type Stats struct {
	// Hits counts GET and HEAD requests answered from a fresh entry.
	Hits atomic.Int64
	// Misses counts GET and HEAD requests that went upstream (missing, another variant, or stale and
	// not servable under stale-while-revalidate), including collapsed waiters, HEAD misses forwarded
	// upstream and fills answered under stale-if-error.
	Misses atomic.Int64
	// StaleWhileRevalidate counts GET and HEAD requests answered from a stale entry at once while a
	// background fill revalidates it (stale-while-revalidate); they are neither hits nor misses.
	StaleWhileRevalidate atomic.Int64
	// StaleIfError counts fills whose upstream failed and whose stale entry was served instead
	// (stale-if-error), to the request that led the fill and to its waiters alike.
	StaleIfError atomic.Int64
	// Revalidations counts stale entries refreshed by an upstream 304.
	Revalidations atomic.Int64
	// Bypasses counts requests with methods the cache does not handle.
	Bypasses atomic.Int64
	// CollapsedWaiters counts requests that waited on another request's fill instead of fetching.
	CollapsedWaiters atomic.Int64
	// UpstreamFetches counts requests sent upstream, of every kind.
	UpstreamFetches atomic.Int64
	// UpstreamErrors counts upstream exchanges that failed (unreachable, broken body) or answered 5xx.
	UpstreamErrors atomic.Int64
	// BytesOut counts body bytes written to clients.
	BytesOut atomic.Int64
	// CacheBytes is the weight held by the memory tier (bodies, headers, per-entry overhead).
	CacheBytes atomic.Int64
	// CacheEntries is the number of entries in the memory tier.
	CacheEntries atomic.Int64
	// Evictions counts entries the memory tier dropped to stay within its byte budget.
	Evictions atomic.Int64
	// Purged counts entries removed by purges.
	Purged atomic.Int64
	// PlaybackDenied counts requests refused for a missing, invalid or expired playback token.
	PlaybackDenied atomic.Int64
}

type metric struct {
	desc  *prometheus.Desc
	kind  prometheus.ValueType
	value *atomic.Int64
}

// collector exports a Stats to Prometheus, reading the atomics at scrape time.
type collector struct{ metrics []metric }

func newCollector(s *Stats) *collector {
	m := func(name, help string, kind prometheus.ValueType, v *atomic.Int64) metric {
		return metric{prometheus.NewDesc("lectern_edge_"+name, help, nil, nil), kind, v}
	}
	c, g := prometheus.CounterValue, prometheus.GaugeValue
	return &collector{metrics: []metric{
		m("hits_total", "GET/HEAD requests answered from a fresh cache entry.", c, &s.Hits),
		m("misses_total", "GET/HEAD requests not answered from a fresh cache entry.", c, &s.Misses),
		m("stale_while_revalidate_total", "GET/HEAD requests answered from a stale entry being revalidated in the background.", c, &s.StaleWhileRevalidate),
		m("stale_if_error_total", "Failed upstream fills answered with a stale entry instead.", c, &s.StaleIfError),
		m("revalidations_total", "Stale entries refreshed by an upstream 304.", c, &s.Revalidations),
		m("bypasses_total", "Requests with methods the cache does not handle.", c, &s.Bypasses),
		m("collapsed_waiters_total", "Requests that waited on another request's upstream fetch.", c, &s.CollapsedWaiters),
		m("upstream_fetches_total", "Requests sent upstream.", c, &s.UpstreamFetches),
		m("upstream_errors_total", "Upstream exchanges that failed or answered 5xx.", c, &s.UpstreamErrors),
		m("bytes_out_total", "Body bytes written to clients.", c, &s.BytesOut),
		m("cache_bytes", "Weight held by the memory tier.", g, &s.CacheBytes),
		m("cache_entries", "Entries held by the memory tier.", g, &s.CacheEntries),
		m("evictions_total", "Entries evicted from the memory tier for space.", c, &s.Evictions),
		m("purged_total", "Entries removed by purges.", c, &s.Purged),
		m("playback_denied_total", "Requests refused for a missing, invalid or expired playback token.", c, &s.PlaybackDenied),
	}}
}

func (c *collector) Describe(ch chan<- *prometheus.Desc) {
	for _, m := range c.metrics {
		ch <- m.desc
	}
}

func (c *collector) Collect(ch chan<- prometheus.Metric) {
	for _, m := range c.metrics {
		ch <- prometheus.MustNewConstMetric(m.desc, m.kind, float64(m.value.Load()))
	}
}
