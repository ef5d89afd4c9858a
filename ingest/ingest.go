// Package ingest is where lectures enter Lectern: the lecture API (gin, JSON under /api/v1), uploads,
// and the teacher and student pages.
//
// # Uploads
//
// An upload is spooled to a temp file, probed with ffprobe (by content, never by file name), and only a
// valid file creates anything: the source goes to object storage under sources/{lecture}/{upload}, and the
// lecture's status change to "queued" and its transcode job are written in ONE catalog transaction. A bad
// upload gets a 4xx with a message saying what to fix and leaves no lecture and no objects behind.
// (Resumable tus uploads replace the plain POST body in a later step; the validation path stays.)
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
	// AssetsDir holds hls.min.js, installed from npm by the build (default internal/web/node_modules/hls.js/dist).
	AssetsDir string
	Logger    *slog.Logger
}

// Service is the ingest role: call Handler for its HTTP surface, Ingest to add a lecture from code.
type Service struct {
	cfg   Config
	log   *slog.Logger
	stats Stats
}

// Stats are plain counters; Collector exports them.
type Stats struct {
	UploadsAccepted atomic.Int64
	UploadsRejected atomic.Int64
	UploadBytes     atomic.Int64
}

// New returns a Service with defaults filled in.
func New(cfg Config) *Service {
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
		cfg.AssetsDir = "internal/web/node_modules/hls.js/dist"
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	cfg.PlaybackBase = strings.TrimSuffix(cfg.PlaybackBase, "/")
	return &Service{cfg: cfg, log: cfg.Logger}
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
	if len(meta.Title) > 200 {
		return catalog.Lecture{}, apiError(400, "title_too_long", "the title is longer than 200 characters")
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
			return catalog.Lecture{}, apiError(422, "invalid_media", "%v: upload a video (e.g. MP4, MOV, MKV, WebM) or an audio file", err)
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
	s.stats.UploadBytes.Add(size)
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
		uploads: prometheus.NewDesc("lectern_ingest_uploads_total", "Uploads by result.", []string{"result"}, nil),
		bytes:   prometheus.NewDesc("lectern_ingest_upload_bytes_total", "Bytes of accepted uploads.", nil, nil),
		queue:   prometheus.NewDesc("lectern_transcode_jobs", "Transcode jobs by state.", []string{"state"}, nil),
	}
}

type collector struct {
	s                     *Service
	uploads, bytes, queue *prometheus.Desc
}

func (c *collector) Describe(ch chan<- *prometheus.Desc) {
	ch <- c.uploads
	ch <- c.bytes
	ch <- c.queue
}

func (c *collector) Collect(ch chan<- prometheus.Metric) {
	st := &c.s.stats
	ch <- prometheus.MustNewConstMetric(c.uploads, prometheus.CounterValue, float64(st.UploadsAccepted.Load()), "accepted")
	ch <- prometheus.MustNewConstMetric(c.uploads, prometheus.CounterValue, float64(st.UploadsRejected.Load()), "rejected")
	ch <- prometheus.MustNewConstMetric(c.bytes, prometheus.CounterValue, float64(st.UploadBytes.Load()))
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	if q, err := c.s.cfg.Catalog.QueueStats(ctx); err == nil {
		for state, n := range q {
			ch <- prometheus.MustNewConstMetric(c.queue, prometheus.GaugeValue, float64(n), state)
		}
	}
}
