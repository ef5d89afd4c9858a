package transcode

import (
	"sync"
	"sync/atomic"

	"github.com/prometheus/client_golang/prometheus"
)

// Stats are the worker's counters. Plain atomics keep the worker free of any metrics library; Collector
// exports them.
type Stats struct {
	// JobsStarted counts calls to Work (attempts, not distinct jobs).
	JobsStarted atomic.Int64
	// JobsSucceeded counts published versions.
	JobsSucceeded atomic.Int64
	// JobsFailed counts attempts that returned an error for River to retry (or discard on the last).
	JobsFailed atomic.Int64
	// JobsRejected counts sources that can never be transcoded (the lecture was failed, job cancelled).
	JobsRejected atomic.Int64
	// JobsStale counts jobs that stopped because a newer upload replaced the version, the lecture was
	// deleted, or the attempt lost its lease.
	JobsStale atomic.Int64
	// JobsBusy counts attempts that found another live worker on the version and waited (snoozed).
	JobsBusy atomic.Int64
	// EncodeMillis is the wall time of the published jobs, in milliseconds (with MediaMillis: the speed).
	EncodeMillis atomic.Int64

	mu       sync.Mutex
	progress map[string][2]float64 // lecture -> percent, eta of the jobs running now
	// MediaMillis is the duration of the published lectures, in milliseconds.
	MediaMillis atomic.Int64
	// BytesPublished is the size of every object uploaded, including those of attempts that failed later.
	BytesPublished atomic.Int64
}

func (s *Stats) setProgress(lecture string, percent, eta float64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.progress == nil {
		s.progress = make(map[string][2]float64)
	}
	s.progress[lecture] = [2]float64{percent, eta}
}

func (s *Stats) clearProgress(lecture string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.progress, lecture)
}

// Progress returns the percent done and estimated seconds left of lecture's running job.
func (s *Stats) Progress(lecture string) (percent, eta float64, ok bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	p, ok := s.progress[lecture]
	return p[0], p[1], ok
}

// Collector returns a Prometheus collector that reads s on every scrape.
func (s *Stats) Collector() prometheus.Collector {
	return &collector{
		s: s,
		started: prometheus.NewDesc("lectern_transcode_jobs_started_total",
			"Transcode job attempts started.", nil, nil),
		finished: prometheus.NewDesc("lectern_transcode_jobs_finished_total",
			"Transcode job attempts finished, by outcome: succeeded, failed (retried), rejected (bad source), stale (superseded), waiting (another worker holds the lease).",
			[]string{"outcome"}, nil),
		running: prometheus.NewDesc("lectern_transcode_jobs_running",
			"Transcode job attempts in progress.", nil, nil),
		seconds: prometheus.NewDesc("lectern_transcode_media_seconds_total",
			"Seconds of lecture published by transcode jobs.", nil, nil),
		bytes: prometheus.NewDesc("lectern_transcode_published_bytes_total",
			"Bytes uploaded to object storage by transcode jobs.", nil, nil),
		encode: prometheus.NewDesc("lectern_transcode_wall_seconds_total",
			"Wall time of the transcode jobs that published (media seconds / this = speed in x realtime).", nil, nil),
		percent: prometheus.NewDesc("lectern_transcode_progress_percent",
			"Progress of each running transcode (series disappear when the job ends).", []string{"lecture"}, nil),
		eta: prometheus.NewDesc("lectern_transcode_eta_seconds",
			"Estimated seconds left of each running transcode.", []string{"lecture"}, nil),
	}
}

type collector struct {
	s                                                                *Stats
	started, finished, running, seconds, bytes, encode, percent, eta *prometheus.Desc
}

func (c *collector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{c.started, c.finished, c.running, c.seconds, c.bytes, c.encode, c.percent, c.eta} {
		ch <- d
	}
}

func (c *collector) Collect(ch chan<- prometheus.Metric) {
	s := c.s
	started := s.JobsStarted.Load()
	ch <- prometheus.MustNewConstMetric(c.started, prometheus.CounterValue, float64(started))
	var ended int64
	for _, o := range []struct {
		outcome string
		v       *atomic.Int64
	}{
		{"succeeded", &s.JobsSucceeded}, {"failed", &s.JobsFailed}, {"rejected", &s.JobsRejected}, {"stale", &s.JobsStale},
		{"waiting", &s.JobsBusy},
	} {
		n := o.v.Load()
		ended += n
		ch <- prometheus.MustNewConstMetric(c.finished, prometheus.CounterValue, float64(n), o.outcome)
	}
	ch <- prometheus.MustNewConstMetric(c.running, prometheus.GaugeValue, float64(max(started-ended, 0)))
	ch <- prometheus.MustNewConstMetric(c.seconds, prometheus.CounterValue, float64(s.MediaMillis.Load())/1000)
	ch <- prometheus.MustNewConstMetric(c.bytes, prometheus.CounterValue, float64(s.BytesPublished.Load()))
	ch <- prometheus.MustNewConstMetric(c.encode, prometheus.CounterValue, float64(s.EncodeMillis.Load())/1000)
	s.mu.Lock()
	defer s.mu.Unlock()
	for lecture, p := range s.progress {
		ch <- prometheus.MustNewConstMetric(c.percent, prometheus.GaugeValue, p[0], lecture)
		ch <- prometheus.MustNewConstMetric(c.eta, prometheus.GaugeValue, p[1], lecture)
	}
}
