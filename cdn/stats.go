package cdn

import (
	"sync/atomic"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/lectern/lectern/internal/latency"
)

// Stats are the edge's counters and gauges: plain atomics, so the request path pays one atomic add
// each; exporting them is the collector's job.
type Stats struct {
	prefetchStats

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
	// CollapseRefused counts requests answered 503 because their key's fill had Config.MaxWaiters
	// waiters already; CollapseTimeouts those answered 504 after waiting Config.WaitTimeout.
	CollapseRefused, CollapseTimeouts atomic.Int64
	// UpstreamFetches counts requests sent upstream, of every kind.
	UpstreamFetches atomic.Int64
	// PeerFetches counts fill requests sent to peers of the group (see Config.Peers); they are not
	// in UpstreamFetches.
	PeerFetches atomic.Int64
	// PeerErrors counts peer requests that failed (unreachable, slow, a broken body, an error of the
	// peer's own) and went on to the next peer or the upstream.
	PeerErrors atomic.Int64
	// PeersMarkedDown counts the times a peer that was up was marked down (Config.PeerDownFor).
	PeersMarkedDown atomic.Int64
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

	// Tiers. Every request counted in Hits or Misses is counted once per tier it looked in: a hit in
	// the tier that had the fresh entry, a miss in each tier before it (and in both when it went
	// upstream); the bytes are the body bytes written for those requests. The disk counters stay
	// zero without a disk tier.
	MemoryHits, MemoryHitBytes, MemoryMisses, MemoryMissBytes atomic.Int64
	DiskHits, DiskHitBytes, DiskMisses, DiskMissBytes         atomic.Int64
	// DiskBytes is the size of the disk tier's files; DiskEntries their number.
	DiskBytes, DiskEntries atomic.Int64
	// DiskEvictions counts files removed to keep the disk tier within its byte bound.
	DiskEvictions atomic.Int64
	// DiskCorrupt counts disk entries found damaged (checksum, length, another key's file, unreadable
	// meta), at start-up or on a read; each is deleted and never served.
	DiskCorrupt atomic.Int64
	// DiskWriteErrors counts entries that could not be written to disk; DiskWritesSkipped those not
	// written because too many writes were in flight.
	DiskWriteErrors, DiskWritesSkipped atomic.Int64

	// Shed counts work turned away under load, by priority: prefetch fills, first requests of new
	// sessions, requests of sessions already playing (see Config.MaxRequests).
	Shed [3]atomic.Int64
	// RequestsInFlight and FillsInFlight are the loads shedding looks at: client GET/HEAD requests
	// being answered, and upstream fills (misses) in progress.
	RequestsInFlight, FillsInFlight atomic.Int64

	// UpstreamSeconds is the time from sending a request upstream to its response headers (or
	// failure); PeerSeconds the same for requests to peers of the group.
	UpstreamSeconds, PeerSeconds latency.Histogram

	// RegionMapEdits counts the edits of the region map file the edge follows (FollowRegionMap).
	RegionMapEdits RegionMapEdits
}

type metric struct {
	desc  *prometheus.Desc
	kind  prometheus.ValueType
	value *atomic.Int64
}

// histogramMetric is a latency histogram under its description.
type histogramMetric struct {
	desc *prometheus.Desc
	h    *latency.Histogram
}

// collector exports a Stats to Prometheus, reading the atomics at scrape time.
type collector struct {
	metrics    []metric
	histograms []histogramMetric
}

func newCollector(s *Stats) *collector {
	m := func(name, help string, kind prometheus.ValueType, v *atomic.Int64) metric {
		return metric{prometheus.NewDesc("lectern_edge_"+name, help, nil, nil), kind, v}
	}
	// tier is a metric with a tier label; the series of one name differ only in its value.
	tier := func(name, help, tier string, v *atomic.Int64) metric {
		return metric{prometheus.NewDesc("lectern_edge_"+name, help, nil, prometheus.Labels{"tier": tier}), prometheus.CounterValue, v}
	}
	const (
		tierHits      = "GET/HEAD requests answered from a fresh entry of this tier."
		tierHitBytes  = "Body bytes written for requests answered from a fresh entry of this tier."
		tierMiss      = "GET/HEAD requests that looked in this tier and found no fresh entry."
		tierMissBytes = "Body bytes written for requests that looked in this tier and found no fresh entry."
	)
	shed := func(class string, v *atomic.Int64) metric {
		return metric{prometheus.NewDesc("lectern_edge_shed_total", "Work turned away with 503 under load (prefetches are dropped silently), by priority.",
			nil, prometheus.Labels{"priority": class}), prometheus.CounterValue, v}
	}
	c, g := prometheus.CounterValue, prometheus.GaugeValue
	hist := func(name, help string, h *latency.Histogram) histogramMetric {
		return histogramMetric{prometheus.NewDesc("lectern_edge_"+name, help, nil, nil), h}
	}
	return &collector{histograms: []histogramMetric{
		hist("upstream_seconds", "Time from a request sent upstream to its response headers or failure.", &s.UpstreamSeconds),
		hist("peer_seconds", "Time from a request sent to a peer of the regional group to its response headers or failure.", &s.PeerSeconds),
	}, metrics: []metric{
		m("hits_total", "GET/HEAD requests answered from a fresh cache entry.", c, &s.Hits),
		m("misses_total", "GET/HEAD requests not answered from a fresh cache entry.", c, &s.Misses),
		m("stale_while_revalidate_total", "GET/HEAD requests answered from a stale entry being revalidated in the background.", c, &s.StaleWhileRevalidate),
		m("stale_if_error_total", "Failed upstream fills answered with a stale entry instead.", c, &s.StaleIfError),
		m("revalidations_total", "Stale entries refreshed by an upstream 304.", c, &s.Revalidations),
		m("bypasses_total", "Requests with methods the cache does not handle.", c, &s.Bypasses),
		m("collapsed_waiters_total", "Requests that waited on another request's upstream fetch.", c, &s.CollapsedWaiters),
		m("collapse_refused_total", "Requests refused because their key's fill had the most waiters allowed.", c, &s.CollapseRefused),
		m("collapse_timeouts_total", "Requests that waited on another request's fill too long for its response to begin.", c, &s.CollapseTimeouts),
		m("upstream_fetches_total", "Requests sent upstream.", c, &s.UpstreamFetches),
		m("peer_fetches_total", "Fill requests sent to peers of the regional group.", c, &s.PeerFetches),
		m("peer_errors_total", "Peer requests that failed and went to the next peer or the upstream.", c, &s.PeerErrors),
		m("peers_marked_down_total", "Times a peer was marked down after a failure.", c, &s.PeersMarkedDown),
		m("upstream_errors_total", "Upstream exchanges that failed or answered 5xx.", c, &s.UpstreamErrors),
		m("bytes_out_total", "Body bytes written to clients.", c, &s.BytesOut),
		m("cache_bytes", "Weight held by the memory tier.", g, &s.CacheBytes),
		m("cache_entries", "Entries held by the memory tier.", g, &s.CacheEntries),
		m("evictions_total", "Entries evicted from the memory tier for space.", c, &s.Evictions),
		m("purged_total", "Entries removed by purges.", c, &s.Purged),
		m("playback_denied_total", "Requests refused for a missing, invalid or expired playback token.", c, &s.PlaybackDenied),
		tier("tier_hits_total", tierHits, "memory", &s.MemoryHits),
		tier("tier_hits_total", tierHits, "disk", &s.DiskHits),
		tier("tier_hit_bytes_total", tierHitBytes, "memory", &s.MemoryHitBytes),
		tier("tier_hit_bytes_total", tierHitBytes, "disk", &s.DiskHitBytes),
		tier("tier_misses_total", tierMiss, "memory", &s.MemoryMisses),
		tier("tier_misses_total", tierMiss, "disk", &s.DiskMisses),
		tier("tier_miss_bytes_total", tierMissBytes, "memory", &s.MemoryMissBytes),
		tier("tier_miss_bytes_total", tierMissBytes, "disk", &s.DiskMissBytes),
		m("prefetches_total", "Fills started by prefetch (the next segments of a rendition being played).", c, &s.Prefetches),
		m("prefetch_used_total", "Prefetched objects a client then asked for.", c, &s.PrefetchUsed),
		m("prefetch_wasted_total", "Prefetched objects evicted before any client asked for them.", c, &s.PrefetchWasted),
		m("prefetch_shed_total", "Prefetches dropped because every prefetch slot was busy.", c, &s.PrefetchShed),
		shed("prefetch", &s.Shed[prioPrefetch]),
		shed("new_session", &s.Shed[prioNew]),
		shed("playing", &s.Shed[prioPlaying]),
		m("requests_in_flight", "Client GET/HEAD requests being answered.", g, &s.RequestsInFlight),
		m("fills_in_flight", "Upstream fills (misses) in progress.", g, &s.FillsInFlight),
		m("region_map_edits_applied_total", "Edits of the followed region map file applied to the peer group.", c, &s.RegionMapEdits.Applied),
		m("region_map_edits_refused_total", "Edits of the followed region map file refused (did not parse, or dropped this edge or its region); the peer group stayed.", c, &s.RegionMapEdits.Refused),
		m("disk_bytes", "Size of the disk tier's files.", g, &s.DiskBytes),
		m("disk_entries", "Files held by the disk tier.", g, &s.DiskEntries),
		m("disk_evictions_total", "Disk tier files removed for space.", c, &s.DiskEvictions),
		m("disk_corrupt_total", "Disk tier files found damaged and deleted, never served.", c, &s.DiskCorrupt),
		m("disk_write_errors_total", "Entries that could not be written to the disk tier.", c, &s.DiskWriteErrors),
		m("disk_writes_skipped_total", "Entries not written to the disk tier because too many writes were in flight.", c, &s.DiskWritesSkipped),
	}}
}

func (c *collector) Describe(ch chan<- *prometheus.Desc) {
	for _, m := range c.metrics {
		ch <- m.desc
	}
	for _, h := range c.histograms {
		ch <- h.desc
	}
}

func (c *collector) Collect(ch chan<- prometheus.Metric) {
	for _, m := range c.metrics {
		ch <- prometheus.MustNewConstMetric(m.desc, m.kind, float64(m.value.Load()))
	}
	for _, h := range c.histograms {
		ch <- h.h.Metric(h.desc)
	}
}
