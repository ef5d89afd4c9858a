package cdn

import (
	"context"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// FollowRegionMap routes by the region map file at path as edits to it come, until ctx is done (see
// WatchRegionMap; cur is the map the router started with).
func (r *Router) FollowRegionMap(ctx context.Context, path string, cur *RegionMap, interval time.Duration) {
	WatchRegionMap(ctx, path, cur, interval, r.log, &r.stats.RegionMapEdits, r.SetRegionMap)
}

// Stats returns the router's counters.
func (r *Router) Stats() *RouterStats { return &r.stats }

// Collector exports the router's counters and its edges' state to Prometheus.
func (r *Router) Collector() prometheus.Collector {
	c := &routerCollector{r: r,
		decisions: prometheus.NewDesc("lectern_router_decisions_total", "Students sent to an edge, by the edge's region and URL.", []string{"region", "edge"}, nil),
		sessions:  prometheus.NewDesc("lectern_router_edge_sessions", "An edge's decayed count of students sent to it, which bounded load compares with its share.", []string{"region", "edge"}, nil),
		up:        prometheus.NewDesc("lectern_router_edge_up", "1 while an edge is in service (its probes answer), 0 while it is not.", []string{"region", "edge"}, nil),
		unhealthy: prometheus.NewDesc("lectern_router_unhealthy_edges", "Edges not draining whose probes fail, by region.", []string{"region"}, nil),
		source:    prometheus.NewDesc("lectern_router_region_source_total", "Decisions by where the student's region came from.", []string{"source"}, nil),
	}
	m := func(name, help string, v *atomic.Int64) metric {
		return metric{prometheus.NewDesc("lectern_router_"+name, help, nil, nil), prometheus.CounterValue, v}
	}
	s := &r.stats
	c.counters = []metric{
		m("spills_total", "Decisions that passed over the lecture's first edge because it had more than its share of sessions.", &s.Spills),
		m("fallbacks_total", "Decisions answered from a neighbour region because the student's had no edge in service.", &s.Fallbacks),
		m("no_edge_total", "Requests answered 503: no edge in service in the region or its neighbours.", &s.NoEdge),
		m("denied_total", "Requests answered 403 for a bad playback token.", &s.Denied),
		m("failure_reports_total", "Players' reports (failed=) of an edge they could not reach.", &s.Reported),
		m("region_map_edits_applied_total", "Edits of the followed region map file applied.", &s.RegionMapEdits.Applied),
		m("region_map_edits_refused_total", "Edits of the followed region map file refused (did not parse, or not valid); the map in use stayed.", &s.RegionMapEdits.Refused),
	}
	return c
}

type routerCollector struct {
	r                                          *Router
	decisions, sessions, up, unhealthy, source *prometheus.Desc
	counters                                   []metric
}

func (c *routerCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{c.decisions, c.sessions, c.up, c.unhealthy, c.source} {
		ch <- d
	}
	for _, m := range c.counters {
		ch <- m.desc
	}
}

func (c *routerCollector) Collect(ch chan<- prometheus.Metric) {
	for _, m := range c.counters {
		ch <- prometheus.MustNewConstMetric(m.desc, m.kind, float64(m.value.Load()))
	}
	s := &c.r.stats
	for src, v := range map[string]*atomic.Int64{"token": &s.FromToken, "address": &s.FromAddress, "default": &s.FromDefault} {
		ch <- prometheus.MustNewConstMetric(c.source, prometheus.CounterValue, float64(v.Load()), src)
	}
	t := c.r.table.Load()
	down := map[string]int{}
	for _, reg := range t.regions {
		down[reg.name] = 0
	}
	for _, e := range t.listed {
		ch <- prometheus.MustNewConstMetric(c.decisions, prometheus.CounterValue, float64(e.st.decisions.Load()), e.region, e.st.url)
		ch <- prometheus.MustNewConstMetric(c.sessions, prometheus.GaugeValue, float64(e.st.sessions.Load()), e.region, e.st.url)
		up := 0.0
		if e.st.up.Load() {
			up = 1
		} else if !e.drain {
			down[e.region]++
		}
		ch <- prometheus.MustNewConstMetric(c.up, prometheus.GaugeValue, up, e.region, e.st.url)
	}
	for region, n := range down {
		ch <- prometheus.MustNewConstMetric(c.unhealthy, prometheus.GaugeValue, float64(n), region)
	}
}
