// Package ingest is where lectures enter Lectern: the lecture API (gin, JSON under /api/v1), uploads,
// and the teacher and student pages.
//
// # Uploads
//
// Teachers upload with tus 1.0 (resumable, through the tusd library) at /api/v1/uploads/: a lecture is
// created first (POST /api/v1/lectures with JSON), then its file is uploaded in as many requests and
// connections as it takes. Bytes go to tusd's filestore next to file storage, or straight into the S3
// bucket with tusd's s3store. When the last byte arrives the file is probed with ffprobe (by content,
// never by file name) and checked for a cut-off end; a valid file becomes sources/{lecture}/{upload} and
// the lecture's status change to "queued", its transcode job and the upload's "done" are written in ONE
// catalog transaction. A rejected file is deleted and the lecture says why (status failed).
//
// The one-shot POST of a whole file (raw body or multipart) remains for scripts and curl: it is spooled,
// probed the same way, and a bad file leaves no lecture and no objects behind.
//
// # Errors
//
// Every API error has one JSON shape: {"error": {"code": "...", "message": "..."}}.
package ingest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"strings"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/lectern/lectern/internal/catalog"
	"github.com/lectern/lectern/internal/objstore"
	"github.com/lectern/lectern/internal/playtoken"
	"github.com/lectern/lectern/internal/probe"
)

// Config configures the ingest service. Zero values get the documented defaults in New.
type Config struct {
	Catalog *catalog.Catalog
	Store   *objstore.Bucket
	// FFprobe is the ffprobe binary used to validate uploads (default "ffprobe").
	FFprobe string
	// TempDir holds uploads while they are validated (default os.TempDir()).
	TempDir string
	// MaxUploadBytes bounds one upload (default 20 GiB).
	MaxUploadBytes int64
	// PlaybackBase is prefixed to /hls/... playback URLs: "" means the same host (serve runs the edge
	// there); a separate ingest role points it at the edge or router, e.g. "https://edge.example".
	PlaybackBase string
	// PlaybackKeys sign playback URLs (/s/{token}/hls/...); empty means unsigned /hls/ URLs.
	PlaybackKeys playtoken.Keys
	// PlaybackTTL is how long a minted playback URL works (default 6h: a school day).
	PlaybackTTL time.Duration
	// SchoolRegion names the region that serves a school's students ("" for none), for the region
	// claim of signed playback URLs: a lecture's URLs name the region of its teacher's school, and
	// the router sends the student there. nil: tokens carry no region.
	SchoolRegion func(school string) string
	// AssetsDir is the node_modules of `make web` (hls.min.js and tus.min.js are found in their packages' dist
	// folders) or a directory holding both files (default internal/web/node_modules).
	AssetsDir string
	Logger    *slog.Logger

	// UploadDir holds tus uploads in progress when storage is not S3 (default: inside file storage's
	// reserved area, so a finished upload is renamed into place, not copied).
	UploadDir string
	// UploadTTL: an upload that receives no bytes for this long is abandoned and deleted (default 72h:
	// a laptop closed on Friday evening resumes on Monday morning).
	UploadTTL time.Duration
	// MaxDuration: longer lectures are rejected (default 6h; 0 keeps the default, < 0 means no limit).
	MaxDuration time.Duration
	// Locks are shared locks for several ingest instances on one PostgreSQL catalog (catalog.Locks);
	// nil means lock files, right for one machine.
	Locks *catalog.Locks
	// LockTimeout bounds how long a request waits for an upload's lock (default 20s).
	LockTimeout time.Duration
	// TrustForwardedHeaders makes upload URLs use X-Forwarded-Host/Proto (behind a proxy).
	TrustForwardedHeaders bool
	// Purger tells the edges to drop a deleted lecture's objects (nil: nothing to tell).
	Purger Purger
}

// Purger drops cached objects under a URL path prefix (e.g. "/hls/{lecture}/") from every edge.
type Purger interface {
	Purge(ctx context.Context, prefix string) error
}

// Service is the ingest role: call Handler for its HTTP surface, Start for its background work (upload
// expiry, recovery after a crash), Ingest to add a lecture from code.
type Service struct {
	cfg           Config
	log           *slog.Logger
	stats         Stats
	uploadSeconds prometheus.Histogram
	tus           *tus
	schools       schools
}

// Stats are plain counters; Collector exports them.
type Stats struct {
	UploadsStarted   atomic.Int64 // tus uploads created
	UploadsCompleted atomic.Int64 // tus uploads accepted and queued
	UploadsAccepted  atomic.Int64 // one-shot uploads accepted
	UploadsRejected  atomic.Int64 // failed validation (both kinds)
	UploadsExpired   atomic.Int64 // abandoned and deleted
	UploadsCancelled atomic.Int64 // deleted by the teacher (tus termination, lecture deleted)
	BytesReceived    atomic.Int64 // every upload byte read from a client
	AcceptedBytes    atomic.Int64 // bytes of accepted uploads
}

// New returns a Service with defaults filled in.
func New(cfg Config) (*Service, error) {
	if cfg.FFprobe == "" {
		cfg.FFprobe = "ffprobe"
	}
	if cfg.TempDir == "" {
		cfg.TempDir = os.TempDir()
	}
	if cfg.MaxUploadBytes <= 0 {
		cfg.MaxUploadBytes = 20 << 30
	}
	if cfg.AssetsDir == "" {
		cfg.AssetsDir = "internal/web/node_modules"
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.UploadTTL <= 0 {
		cfg.UploadTTL = 72 * time.Hour
	}
	switch {
	case cfg.MaxDuration == 0:
		cfg.MaxDuration = 6 * time.Hour
	case cfg.MaxDuration < 0:
		cfg.MaxDuration = 0
	}
	if cfg.PlaybackTTL <= 0 {
		cfg.PlaybackTTL = 6 * time.Hour
	}
	if cfg.LockTimeout <= 0 {
		cfg.LockTimeout = 20 * time.Second
	}
	cfg.PlaybackBase = strings.TrimSuffix(cfg.PlaybackBase, "/")
	s := &Service{cfg: cfg, log: cfg.Logger,
		uploadSeconds: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name: "lectern_ingest_upload_duration_seconds",
			Help: "Time from creating a resumable upload to its acceptance, pauses and resumes included.",
			// From a one-minute clip on a fast link to a 20 GiB file over a weekend.
			Buckets: prometheus.ExponentialBuckets(1, 4, 10),
		}),
	}
	t, err := s.newTus()
	if err != nil {
		return nil, err
	}
	s.tus = t
	return s, nil
}

// Meta describes a lecture being uploaded.
type Meta struct {
	Title       string
	Course      string // course title; created for the teacher on first use
	Description string
}

// Error is an API error: a stable code, an HTTP status and a message that says what to fix.
type Error struct {
	Status  int
	Code    string
	Message string
}

func (e *Error) Error() string { return e.Message }

func apiError(status int, code, format string, args ...any) *Error {
	return &Error{Status: status, Code: code, Message: fmt.Sprintf(format, args...)}
}

// Ingest validates src and, when it is playable media, creates the lecture, stores the source and queues
// its transcode. Bad input returns an *Error (4xx) and leaves nothing behind.
func (s *Service) Ingest(ctx context.Context, teacher catalog.Teacher, meta Meta, src io.Reader) (catalog.Lecture, error) {
	meta.Title = strings.TrimSpace(meta.Title)
	meta.Course = strings.TrimSpace(meta.Course)
	if meta.Title == "" {
		return catalog.Lecture{}, apiError(400, "missing_title", "a lecture needs a title: add title=...")
	}
	if e := checkTitle(meta.Title); e != nil {
		return catalog.Lecture{}, e
	}
	if e := checkDescription(meta.Description); e != nil {
		return catalog.Lecture{}, e
	}
	if meta.Course == "" {
		meta.Course = "General"
	}

	tmp, size, err := s.spool(src)
	if tmp != "" {
		defer os.Remove(tmp)
	}
	if err != nil {
		s.stats.UploadsRejected.Add(1)
		return catalog.Lecture{}, err
	}
	info, err := probe.Probe(ctx, s.cfg.FFprobe, tmp)
	if err != nil {
		s.stats.UploadsRejected.Add(1)
		if probe.IsInvalidMedia(err) {
			return catalog.Lecture{}, apiError(422, "invalid_media", "%s: upload a video (e.g. MP4, MOV, MKV, WebM) or an audio file", probe.Reason(err))
		}
		return catalog.Lecture{}, fmt.Errorf("probe upload: %w", err)
	}

	course, err := s.cfg.Catalog.EnsureCourse(ctx, teacher.ID, meta.Course)
	if err != nil {
		return catalog.Lecture{}, fmt.Errorf("course: %w", err)
	}
	lec, err := s.cfg.Catalog.CreateLecture(ctx, catalog.NewLecture{
		TeacherID: teacher.ID, CourseID: course.ID, Title: meta.Title, Description: meta.Description,
	})
	if err != nil {
		return catalog.Lecture{}, fmt.Errorf("create lecture: %w", err)
	}
	key := "sources/" + lec.ID + "/" + randomID()
	if err := s.cfg.Store.PutFile(ctx, key, tmp, objstore.PutOptions{ContentType: "application/octet-stream"}); err != nil {
		s.undo(lec.ID)
		return catalog.Lecture{}, fmt.Errorf("store source: %w", err)
	}
	if _, err := s.cfg.Catalog.EnqueueTranscode(ctx, lec.ID, catalog.Source{Key: key, Seconds: info.DurationSeconds}); err != nil {
		s.undo(lec.ID)
		return catalog.Lecture{}, fmt.Errorf("queue transcode: %w", err)
	}
	s.stats.UploadsAccepted.Add(1)
	s.stats.AcceptedBytes.Add(size)
	s.log.Info("lecture uploaded", "lecture", lec.ID, "teacher", teacher.ID, "bytes", size)
	return s.cfg.Catalog.GetLecture(ctx, lec.ID)
}

// undo removes a lecture whose upload failed half-way, so no partial lecture stays visible.
func (s *Service) undo(lectureID string) {
	ctx := context.Background()
	if err := s.cfg.Store.DeletePrefix(ctx, "sources/"+lectureID+"/"); err != nil {
		s.log.Warn("cleanup source", "lecture", lectureID, "err", err)
	}
	if err := s.cfg.Catalog.DeleteLecture(ctx, lectureID); err != nil {
		s.log.Warn("cleanup lecture", "lecture", lectureID, "err", err)
	}
}

// spool copies the upload to a temp file, enforcing the size limit.
func (s *Service) spool(src io.Reader) (path string, size int64, err error) {
	f, err := os.CreateTemp(s.cfg.TempDir, "upload-*")
	if err != nil {
		return "", 0, fmt.Errorf("spool upload: %w", err)
	}
	defer f.Close()
	n, err := io.Copy(f, io.LimitReader(src, s.cfg.MaxUploadBytes+1))
	s.stats.BytesReceived.Add(n)
	if err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			return f.Name(), n, s.tooLarge()
		}
		return f.Name(), n, apiError(400, "upload_interrupted", "the upload was interrupted after %d bytes: try again", n)
	}
	if n > s.cfg.MaxUploadBytes {
		return f.Name(), n, s.tooLarge()
	}
	if n == 0 {
		return f.Name(), 0, apiError(400, "empty_upload", "the upload is empty (0 bytes): choose a video file")
	}
	if err := f.Sync(); err != nil {
		return f.Name(), n, fmt.Errorf("spool upload: %w", err)
	}
	return f.Name(), n, nil
}

func (s *Service) tooLarge() *Error {
	return apiError(413, "upload_too_large", "the upload is larger than the %d MiB limit", s.cfg.MaxUploadBytes>>20)
}

func randomID() string {
	b := make([]byte, 8)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// Collector exports the ingest counters to Prometheus.
func (s *Service) Collector() prometheus.Collector {
	return &collector{s: s,
		started:  prometheus.NewDesc("lectern_ingest_uploads_started_total", "Resumable uploads created.", nil, nil),
		uploads:  prometheus.NewDesc("lectern_ingest_uploads_total", "Uploads that ended, by result (completed, rejected, expired, cancelled) and kind (tus, oneshot).", []string{"result", "kind"}, nil),
		received: prometheus.NewDesc("lectern_ingest_received_bytes_total", "Upload bytes read from clients, whatever became of them.", nil, nil),
		bytes:    prometheus.NewDesc("lectern_ingest_upload_bytes_total", "Bytes of accepted uploads.", nil, nil),
		queue:    prometheus.NewDesc("lectern_transcode_jobs", "Transcode jobs by state.", []string{"state"}, nil),
	}
}

type collector struct {
	s                                        *Service
	started, uploads, received, bytes, queue *prometheus.Desc
}

func (c *collector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{c.started, c.uploads, c.received, c.bytes, c.queue} {
		ch <- d
	}
	c.s.uploadSeconds.Describe(ch)
}

func (c *collector) Collect(ch chan<- prometheus.Metric) {
	st := &c.s.stats
	counter := func(d *prometheus.Desc, v int64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.CounterValue, float64(v), labels...)
	}
	counter(c.started, st.UploadsStarted.Load())
	counter(c.uploads, st.UploadsCompleted.Load(), "completed", "tus")
	counter(c.uploads, st.UploadsAccepted.Load(), "completed", "oneshot")
	counter(c.uploads, st.UploadsRejected.Load(), "rejected", "any")
	counter(c.uploads, st.UploadsExpired.Load(), "expired", "tus")
	counter(c.uploads, st.UploadsCancelled.Load(), "cancelled", "tus")
	counter(c.received, st.BytesReceived.Load())
	counter(c.bytes, st.AcceptedBytes.Load())
	c.s.uploadSeconds.Collect(ch)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	if q, err := c.s.cfg.Catalog.QueueStats(ctx); err == nil {
		for state, n := range q {
			ch <- prometheus.MustNewConstMetric(c.queue, prometheus.GaugeValue, float64(n), state)
		}
	}
}
