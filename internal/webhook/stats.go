package webhook

import (
	"sync/atomic"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/lectern/lectern/internal/catalog"
)

// Stats are the worker's plain counters, one set per event type; Collector exports them.
type Stats struct {
	Ready, Failed EventStats
	// Other counts events of a type this build does not know (sent by a newer lectern).
	Other EventStats
}

// EventStats count the deliveries of one event type. Every POST is either Delivered or an AttemptError.
type EventStats struct {
	Delivered     atomic.Int64 // attempts answered 2xx: the event was delivered
	AttemptErrors atomic.Int64 // attempts answered with another status or not answered at all
	GaveUp        atomic.Int64 // events whose last attempt failed; River discards them
}

// Attempts is the number of POSTs made, retries included.
func (e *EventStats) Attempts() int64 { return e.Delivered.Load() + e.AttemptErrors.Load() }

// For returns the counters of an event type.
func (s *Stats) For(event string) *EventStats {
	switch event {
	case catalog.EventLectureReady:
		return &s.Ready
	case catalog.EventLectureFailed:
		return &s.Failed
	}
	return &s.Other
}

// Collector exports the counters to Prometheus.
func (s *Stats) Collector() prometheus.Collector {
	return &collector{s: s,
		attempts: prometheus.NewDesc("lectern_webhook_attempts_total",
			"Webhook POSTs by event and result (ok: 2xx; error: another status, a redirect, a network error or a timeout).",
			[]string{"event", "result"}, nil),
		deliveries: prometheus.NewDesc("lectern_webhook_deliveries_total",
			"Webhook events by event and outcome (delivered, or gave_up after the last attempt failed).",
			[]string{"event", "result"}, nil),
	}
}

type collector struct {
	s                    *Stats
	attempts, deliveries *prometheus.Desc
}

func (c *collector) Describe(ch chan<- *prometheus.Desc) {
	ch <- c.attempts
	ch <- c.deliveries
}

func (c *collector) Collect(ch chan<- prometheus.Metric) {
	for _, e := range []struct {
		name string
		st   *EventStats
	}{{catalog.EventLectureReady, &c.s.Ready}, {catalog.EventLectureFailed, &c.s.Failed}, {"other", &c.s.Other}} {
		ch <- prometheus.MustNewConstMetric(c.attempts, prometheus.CounterValue, float64(e.st.Delivered.Load()), e.name, "ok")
		ch <- prometheus.MustNewConstMetric(c.attempts, prometheus.CounterValue, float64(e.st.AttemptErrors.Load()), e.name, "error")
		ch <- prometheus.MustNewConstMetric(c.deliveries, prometheus.CounterValue, float64(e.st.Delivered.Load()), e.name, "delivered")
		ch <- prometheus.MustNewConstMetric(c.deliveries, prometheus.CounterValue, float64(e.st.GaveUp.Load()), e.name, "gave_up")
	}
}
