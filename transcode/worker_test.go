package transcode

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/riverqueue/river"
	"github.com/riverqueue/river/rivertype"

	"github.com/lectern/lectern/internal/catalog"
	"github.com/lectern/lectern/internal/hls"
	"github.com/lectern/lectern/internal/objstore"
)

// The real types satisfy the small interfaces the worker declares.
var (
	_ Store   = (*objstore.Bucket)(nil)
	_ Catalog = (*catalog.Catalog)(nil)
)

// events is the shared, ordered log of what the worker did to storage and catalog.
type events struct {
	mu  sync.Mutex
	log []string
}

func (e *events) add(s string) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.log = append(e.log, s)
}

func (e *events) all() []string {
	e.mu.Lock()
	defer e.mu.Unlock()
	return append([]string(nil), e.log...)
}

// recordingStore wraps a real file bucket, logs puts and can fail them.
type recordingStore struct {
	*objstore.Bucket
	ev      *events
	failPut func(key string) error
}

func (s *recordingStore) PutFile(ctx context.Context, key, path string, opts objstore.PutOptions) error {
	if s.failPut != nil {
		if err := s.failPut(key); err != nil {
			return err
		}
	}
	if err := s.Bucket.PutFile(ctx, key, path, opts); err != nil {
		return err
	}
	s.ev.add("put " + key)
	return nil
}

// fakeCatalog records calls; each error field, when set, is returned by that call.
type fakeCatalog struct {
	ev                                        *events
	markErr, progressErr, publishErr, failErr error
	mu                                        sync.Mutex
	progress                                  []float64
	progressAt                                []time.Time
	workers                                   map[string]bool // worker ids seen in any call
	published                                 []catalog.Rendition
	assets                                    catalog.Assets
	duration                                  float64
	failReason                                string
}

func (c *fakeCatalog) saw(worker string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.workers == nil {
		c.workers = make(map[string]bool)
	}
	c.workers[worker] = true
}

func (c *fakeCatalog) MarkTranscoding(ctx context.Context, id string, v int, worker string, ttl time.Duration) error {
	c.ev.add(fmt.Sprintf("mark %s v%d", id, v))
	c.saw(worker)
	return c.markErr
}

func (c *fakeCatalog) SetProgress(ctx context.Context, id string, v int, worker string, pct, eta float64) error {
	c.saw(worker)
	c.mu.Lock()
	c.progress = append(c.progress, pct)
	c.progressAt = append(c.progressAt, time.Now())
	c.mu.Unlock()
	return c.progressErr
}

func (c *fakeCatalog) PublishVersion(ctx context.Context, id string, v int, worker string, p catalog.Publication) error {
	c.ev.add(fmt.Sprintf("publish %s v%d", id, v))
	c.saw(worker)
	c.mu.Lock()
	c.published, c.duration, c.assets = p.Renditions, p.DurationSeconds, p.Assets
	c.mu.Unlock()
	return c.publishErr
}

func (c *fakeCatalog) FailLecture(ctx context.Context, id string, v int, reason string) error {
	c.ev.add(fmt.Sprintf("fail %s v%d", id, v))
	c.mu.Lock()
	c.failReason = reason
	c.mu.Unlock()
	return c.failErr
}

type workerEnv struct {
	bucket  *objstore.Bucket
	store   *recordingStore
	cat     *fakeCatalog
	ev      *events
	tempDir string
	worker  *Worker
}

const sourceKey = "sources/lec1/up1"

// newWorkerEnv stores source (a file path, or nil for none) and builds a worker over a real file bucket.
func newWorkerEnv(t *testing.T, source []byte) *workerEnv {
	t.Helper()
	b, err := objstore.Open(context.Background(), t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	if source != nil {
		if err := b.PutBytes(context.Background(), sourceKey, source, objstore.PutOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	ev := &events{}
	e := &workerEnv{bucket: b, ev: ev, store: &recordingStore{Bucket: b, ev: ev}, cat: &fakeCatalog{ev: ev}, tempDir: t.TempDir()}
	e.worker = NewWorker(Config{Store: e.store, Catalog: e.cat, TempDir: e.tempDir})
	return e
}

func job(attempt int) *river.Job[catalog.TranscodeArgs] {
	return &river.Job[catalog.TranscodeArgs]{
		JobRow: &rivertype.JobRow{ID: 7, Attempt: attempt, MaxAttempts: 5},
		Args:   catalog.TranscodeArgs{LectureID: "lec1", Version: 3, SourceKey: sourceKey},
	}
}

// assertTempDirEmpty checks that the job removed its working directory, whatever the outcome.
func (e *workerEnv) assertTempDirEmpty(t *testing.T) {
	t.Helper()
	entries, err := os.ReadDir(e.tempDir)
	if err != nil {
		t.Fatal(err)
	}
	if len(entries) != 0 {
		t.Errorf("temp dir not cleaned: %v", entries)
	}
}

func (e *workerEnv) puts() []string {
	var out []string
	for _, s := range e.ev.all() {
		if k, ok := strings.CutPrefix(s, "put "); ok {
			out = append(out, k)
		}
	}
	return out
}

func readSource(t *testing.T, c clip) []byte {
	t.Helper()
	data, err := os.ReadFile(makeClip(t, c))
	if err != nil {
		t.Fatal(err)
	}
	return data
}

func TestWorkerPublishes(t *testing.T) {
	needFFmpeg(t)
	e := newWorkerEnv(t, readSource(t, clip{width: 640, height: 360, seconds: 8, video: true, audio: true}))
	if err := e.worker.Check(); err != nil {
		t.Fatal(err)
	}
	if s := e.worker.cfg.Scaler; s != ScalerZscale && s != ScalerSwscale {
		t.Errorf("Check left the scaler %q undecided", s)
	}
	if err := e.worker.Work(context.Background(), job(1)); err != nil {
		t.Fatal(err)
	}
	e.assertTempDirEmpty(t)

	log := e.ev.all()
	if log[0] != "mark lec1 v3" {
		t.Errorf("first event %q, want mark", log[0])
	}
	n := len(log)
	if log[n-1] != "publish lec1 v3" || log[n-2] != "put hls/lec1/v3/master.m3u8" {
		t.Errorf("want master put then publish last, got ... %v", log[max(0, n-3):])
	}
	// Nothing refers to an object not yet stored: media before playlists before the master.
	stage := -1
	for _, k := range e.puts() {
		if !strings.HasPrefix(k, "hls/lec1/v3/") {
			t.Errorf("key outside the version prefix: %s", k)
		}
		s := PublishStage(strings.TrimPrefix(k, "hls/lec1/v3/"))
		if s < stage {
			t.Errorf("%s uploaded after a later stage", k)
		}
		stage = s
	}

	// Every object the master leads to exists with immutable caching and the right type.
	ctx := context.Background()
	body, attrs, err := e.bucket.Get(ctx, "hls/lec1/v3/master.m3u8")
	if err != nil {
		t.Fatal(err)
	}
	data, _ := io.ReadAll(body)
	body.Close()
	if attrs.ContentType != "application/vnd.apple.mpegurl" || attrs.CacheControl != cacheControl {
		t.Errorf("master attrs %+v", attrs)
	}
	m, err := hls.ParseMaster(data)
	if err != nil {
		t.Fatal(err)
	}
	for _, uri := range []string{m.Variants[0].URI, m.Audio[0].URI} {
		body, _, err := e.bucket.Get(ctx, "hls/lec1/v3/"+uri)
		if err != nil {
			t.Fatal(err)
		}
		pl, _ := io.ReadAll(body)
		body.Close()
		media, err := hls.ParseMedia(pl)
		if err != nil {
			t.Fatal(err)
		}
		dir := strings.TrimSuffix(uri, "index.m3u8")
		for _, key := range append([]string{media.InitURI}, media.Segments[0].URI) {
			a, err := e.bucket.Head(ctx, "hls/lec1/v3/"+dir+key)
			if err != nil {
				t.Fatal(err)
			}
			if a.CacheControl != cacheControl || a.ContentType != ObjectOptions(dir+key).ContentType {
				t.Errorf("%s%s attrs %+v", dir, key, a)
			}
		}
	}

	// The catalog got what the master advertises, from one worker id (the lease holder).
	if len(e.cat.workers) != 1 {
		t.Errorf("worker ids %v, want one per attempt", e.cat.workers)
	}
	if a := e.cat.assets; a.Poster != PosterName || a.Profile != "lecture" || a.Captions != "" ||
		(a.ChapterCount > 0) != (a.Chapters == ChaptersName) {
		t.Errorf("published assets %+v", a)
	}
	if _, err := e.bucket.Head(ctx, "hls/lec1/v3/poster.jpg"); err != nil {
		t.Errorf("poster not uploaded: %v", err)
	}
	if len(e.cat.published) != 2 || e.cat.published[0].Name != "360p" || e.cat.published[0].Width != 640 ||
		e.cat.published[0].Codecs != m.Variants[0].Codecs || e.cat.published[0].Bandwidth != m.Variants[0].Bandwidth {
		t.Errorf("published renditions %+v, master %+v", e.cat.published, m.Variants)
	}
	if e.cat.duration < 7.9 || e.cat.duration > 8.2 {
		t.Errorf("published duration %v", e.cat.duration)
	}
	if len(e.cat.progress) == 0 || e.cat.progress[len(e.cat.progress)-1] > 99 {
		t.Errorf("progress reports %v (want some, never 100 before publish)", e.cat.progress)
	}

	st := e.worker.Stats()
	if st.JobsStarted.Load() != 1 || st.JobsSucceeded.Load() != 1 || st.BytesPublished.Load() == 0 || st.MediaMillis.Load() < 7900 {
		t.Errorf("stats %+v", st)
	}
	got := gather(t, st.Collector())
	for name, want := range map[string]float64{
		"lectern_transcode_jobs_started_total":                     1,
		"lectern_transcode_jobs_finished_total{outcome=succeeded}": 1,
		"lectern_transcode_jobs_finished_total{outcome=failed}":    0,
		"lectern_transcode_jobs_running":                           0,
	} {
		if got[name] != want {
			t.Errorf("%s = %v, want %v", name, got[name], want)
		}
	}
	if got["lectern_transcode_media_seconds_total"] < 7.9 || got["lectern_transcode_published_bytes_total"] == 0 ||
		got["lectern_transcode_wall_seconds_total"] <= 0 || len(got) != 10 {
		t.Errorf("metrics %v", got)
	}
}

func TestWorkerRejectsInvalidSource(t *testing.T) {
	needFFmpeg(t)
	tests := []struct {
		name   string
		source []byte
		reason string
	}{
		{"text file", []byte("these are my slides\n"), "not a video or audio file (ffprobe could not read it)"},
		{"empty file", []byte{}, "the file is empty"},
		{"missing source", nil, "the uploaded file is missing from storage; please upload it again"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newWorkerEnv(t, tt.source)
			err := e.worker.Work(context.Background(), job(1))
			var cancel *river.JobCancelError
			if !errors.As(err, &cancel) {
				t.Fatalf("err = %v, want river.JobCancel", err)
			}
			if e.cat.failReason != tt.reason {
				t.Errorf("FailLecture reason %q, want %q", e.cat.failReason, tt.reason)
			}
			if p := e.puts(); len(p) != 0 {
				t.Errorf("uploaded %v", p)
			}
			if e.worker.Stats().JobsRejected.Load() != 1 {
				t.Error("rejection not counted")
			}
			e.assertTempDirEmpty(t)
		})
	}
}

func TestWorkerStaleVersion(t *testing.T) {
	needFFmpeg(t)
	src := readSource(t, clip{width: 320, height: 180, seconds: 4, video: true, audio: true})
	conflict := fmt.Errorf("catalog: lecture lec1 v3: pending version is 4: %w", catalog.ErrConflict)
	tests := []struct {
		name  string
		setup func(c *fakeCatalog)
	}{
		{"superseded before start", func(c *fakeCatalog) { c.markErr = conflict }},
		{"lecture deleted before start", func(c *fakeCatalog) { c.markErr = catalog.ErrNotFound }},
		{"superseded while encoding", func(c *fakeCatalog) { c.progressErr = conflict }},
		{"superseded before publish", func(c *fakeCatalog) { c.publishErr = conflict }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newWorkerEnv(t, src)
			tt.setup(e.cat)
			if err := e.worker.Work(context.Background(), job(1)); err != nil {
				t.Fatalf("err = %v, want nil (nothing to do)", err)
			}
			if e.cat.markErr != nil || e.cat.progressErr != nil {
				if p := e.puts(); len(p) != 0 {
					t.Errorf("uploaded %v for a stale version", p)
				}
			}
			for _, ev := range e.ev.all() {
				if strings.HasPrefix(ev, "fail") || (e.cat.publishErr == nil && strings.HasPrefix(ev, "publish")) {
					t.Errorf("unexpected %q", ev)
				}
			}
			if e.worker.Stats().JobsStale.Load() != 1 {
				t.Error("stale job not counted")
			}
			e.assertTempDirEmpty(t)
		})
	}
}

func TestWorkerStorageErrorIsRetried(t *testing.T) {
	needFFmpeg(t)
	src := readSource(t, clip{width: 320, height: 180, seconds: 4, video: true, audio: true})
	for _, attempt := range []int{1, 5} {
		t.Run(fmt.Sprintf("attempt %d of 5", attempt), func(t *testing.T) {
			e := newWorkerEnv(t, src)
			e.store.failPut = func(key string) error {
				if strings.HasSuffix(key, "/audio/init.mp4") {
					return errors.New("minio: connection reset")
				}
				return nil
			}
			err := e.worker.Work(context.Background(), job(attempt))
			var cancel *river.JobCancelError
			if err == nil || errors.As(err, &cancel) || !strings.Contains(err.Error(), "connection reset") {
				t.Fatalf("err = %v, want a retryable storage error", err)
			}
			for _, k := range e.puts() {
				if strings.HasSuffix(k, ".m3u8") {
					t.Errorf("playlist %s uploaded although media failed", k)
				}
			}
			failed := e.cat.failReason != ""
			if last := attempt == 5; failed != last {
				t.Errorf("FailLecture called=%v on attempt %d (reason %q)", failed, attempt, e.cat.failReason)
			}
			if attempt == 5 && !strings.HasPrefix(e.cat.failReason, "transcoding failed after 5 attempts: ") {
				t.Errorf("reason %q", e.cat.failReason)
			}
			for _, ev := range e.ev.all() {
				if strings.HasPrefix(ev, "publish") {
					t.Error("published after a failed upload")
				}
			}
			if e.worker.Stats().JobsFailed.Load() != 1 {
				t.Error("failure not counted")
			}
			e.assertTempDirEmpty(t)
		})
	}
}

// gather registers c on a pedantic registry (which checks Describe against Collect) and returns
// every sample as "name{label=value} value".
func gather(t *testing.T, c prometheus.Collector) map[string]float64 {
	t.Helper()
	r := prometheus.NewPedanticRegistry()
	if err := r.Register(c); err != nil {
		t.Fatal(err)
	}
	fams, err := r.Gather()
	if err != nil {
		t.Fatal(err)
	}
	out := make(map[string]float64)
	for _, f := range fams {
		for _, m := range f.GetMetric() {
			name := f.GetName()
			for _, l := range m.GetLabel() {
				name += "{" + l.GetName() + "=" + l.GetValue() + "}"
			}
			switch {
			case m.GetCounter() != nil:
				out[name] = m.GetCounter().GetValue()
			case m.GetGauge() != nil:
				out[name] = m.GetGauge().GetValue()
			}
		}
	}
	return out
}

// TestWorkerCaptionsAndProfile: the job's captions become a SUBTITLES rendition, its profile is used.
func TestWorkerCaptionsAndProfile(t *testing.T) {
	needFFmpeg(t)
	e := newWorkerEnv(t, readSource(t, clip{width: 320, height: 180, seconds: 4, video: true, audio: true}))
	vtt := "WEBVTT\n\n00:00:00.500 --> 00:00:02.000\n안녕하세요\n"
	if err := e.bucket.PutBytes(context.Background(), "sources/lec1/up1.vtt", []byte("\xef\xbb\xbf"+vtt), objstore.PutOptions{}); err != nil {
		t.Fatal(err)
	}
	j := job(1)
	j.Args.CaptionsKey, j.Args.CaptionsLanguage, j.Args.Profile = "sources/lec1/up1.vtt", "ko", "motion"
	if err := e.worker.Work(context.Background(), j); err != nil {
		t.Fatal(err)
	}
	if a := e.cat.assets; a.Captions != "subs/index.m3u8" || a.Profile != "motion" {
		t.Errorf("assets %+v", a)
	}
	ctx := context.Background()
	body, attrs, err := e.bucket.Get(ctx, "hls/lec1/v3/subs/captions.vtt")
	if err != nil {
		t.Fatal(err)
	}
	got, _ := io.ReadAll(body)
	body.Close()
	if string(got) != vtt || !strings.HasPrefix(attrs.ContentType, "text/vtt") {
		t.Errorf("captions %q (%s), want %q without the byte-order mark", got, attrs.ContentType, vtt)
	}
	body, _, err = e.bucket.Get(ctx, "hls/lec1/v3/master.m3u8")
	if err != nil {
		t.Fatal(err)
	}
	data, _ := io.ReadAll(body)
	body.Close()
	m, err := hls.ParseMaster(data)
	if err != nil {
		t.Fatal(err)
	}
	if len(m.Subtitles) != 1 || m.Subtitles[0].Language != "ko" || m.Variants[0].Subtitles != m.Subtitles[0].GroupID {
		t.Errorf("master subtitles %+v\n%s", m.Subtitles, data)
	}

	// Captions that are not WebVTT reject the job with a reason, and nothing is published.
	bad := newWorkerEnv(t, readSource(t, clip{width: 320, height: 180, seconds: 2, video: true}))
	if err := bad.bucket.PutBytes(ctx, "c.srt", []byte("1\n00:00:01,000 --> 00:00:02,000\nhi\n"), objstore.PutOptions{}); err != nil {
		t.Fatal(err)
	}
	j = job(1)
	j.Args.CaptionsKey = "c.srt"
	var cancel *river.JobCancelError
	if err := bad.worker.Work(ctx, j); !errors.As(err, &cancel) || !strings.Contains(bad.cat.failReason, "WebVTT") {
		t.Errorf("err = %v, reason %q: want a cancelled job and a WebVTT reason", err, bad.cat.failReason)
	}
	if p := bad.puts(); len(p) != 0 {
		t.Errorf("uploaded %v", p)
	}
}

// TestWorkerLeaseBusy: an attempt that finds another live worker on the version waits (snoozes) and
// touches nothing.
func TestWorkerLeaseBusy(t *testing.T) {
	e := newWorkerEnv(t, []byte("unused"))
	e.cat.markErr = fmt.Errorf("lease: %w", catalog.ErrBusy)
	err := e.worker.Work(context.Background(), job(2))
	var snooze *river.JobSnoozeError
	if !errors.As(err, &snooze) || snooze.Duration != 2*time.Minute {
		t.Fatalf("err = %v, want a snooze of the lease TTL", err)
	}
	if p := e.puts(); len(p) != 0 || e.cat.failReason != "" {
		t.Errorf("busy attempt did something: puts %v, fail %q", p, e.cat.failReason)
	}
	if e.worker.Stats().JobsBusy.Load() != 1 {
		t.Error("waiting attempt not counted")
	}
	e.assertTempDirEmpty(t)
}

// TestWorkerHeartbeat: the lease is renewed while nothing moves (a long download or upload), not only
// when the percentage changes.
func TestWorkerHeartbeat(t *testing.T) {
	c := &fakeCatalog{ev: &events{}}
	w := NewWorker(Config{Catalog: c, LeaseTTL: 200 * time.Millisecond})
	ctx, cancel := context.WithCancelCause(context.Background())
	defer cancel(nil)
	r := newReporter(w, catalog.TranscodeArgs{LectureID: "l", Version: 1}, "w1", cancel, w.cfg.Logger)
	go r.run(ctx)
	time.Sleep(500 * time.Millisecond)
	r.stop()
	c.mu.Lock()
	n := len(c.progressAt)
	c.mu.Unlock()
	// A heartbeat every LeaseTTL/4 = 50 ms: about 10 in 500 ms.
	if n < 5 {
		t.Errorf("%d heartbeats in 500 ms with a 200 ms lease, want about 10", n)
	}
	// A stale answer cancels the job with errStale.
	c.progressErr = catalog.ErrNotFound
	ctx2, cancel2 := context.WithCancelCause(context.Background())
	r2 := newReporter(w, catalog.TranscodeArgs{LectureID: "l", Version: 1}, "w1", cancel2, w.cfg.Logger)
	go r2.run(ctx2)
	select {
	case <-ctx2.Done():
		if !errors.Is(context.Cause(ctx2), errStale) {
			t.Errorf("cause %v, want errStale", context.Cause(ctx2))
		}
	case <-time.After(5 * time.Second):
		t.Error("a deleted lecture did not cancel the job")
	}
	r2.stop()
}

func TestWorkerTimeout(t *testing.T) {
	w := NewWorker(Config{})
	j := job(1)
	// River's own timeout is off: its rescuer would otherwise leave a killed worker's job alone for hours.
	if got := w.Timeout(j); got != -1 {
		t.Errorf("River Timeout = %v, want -1 (unbounded; the attempt bounds itself)", got)
	}
	for _, tt := range []struct {
		seconds float64
		want    time.Duration
	}{
		{3600, 15*time.Minute + 3*time.Hour},
		{60, 18 * time.Minute},
		{0, 15*time.Minute + 18*time.Hour},   // unknown: as long as the longest lecture allowed
		{1e9, 15*time.Minute + 18*time.Hour}, // nonsense is clamped too
	} {
		j.Args.SourceSeconds = tt.seconds
		if got := w.AttemptTimeout(j.Args); got != tt.want {
			t.Errorf("AttemptTimeout(%v s) = %v, want %v", tt.seconds, got, tt.want)
		}
	}
}

// TestWorkerAttemptDeadline: the attempt's own deadline (River's is off) stops a running encode; the job
// is retried, and the last attempt records the failure although its context is the one that expired.
func TestWorkerAttemptDeadline(t *testing.T) {
	needFFmpeg(t)
	src := readSource(t, clip{width: 1280, height: 720, seconds: 20, video: true, audio: true})
	for _, attempt := range []int{1, 5} {
		t.Run(fmt.Sprintf("attempt %d of 5", attempt), func(t *testing.T) {
			e := newWorkerEnv(t, src)
			e.worker = NewWorker(Config{Store: e.store, Catalog: e.cat, TempDir: e.tempDir,
				TimeoutBase: 700 * time.Millisecond, TimeoutPerSecond: 1e-9})
			start := time.Now()
			err := e.worker.Work(context.Background(), job(attempt))
			if took := time.Since(start); took > 10*time.Second {
				t.Errorf("Work took %v with a 0.7 s deadline", took)
			}
			if !errors.Is(err, context.DeadlineExceeded) {
				t.Fatalf("err = %v, want the attempt's deadline", err)
			}
			if last := attempt == 5; (e.cat.failReason != "") != last {
				t.Errorf("FailLecture on attempt %d: reason %q", attempt, e.cat.failReason)
			}
			if p := e.puts(); len(p) != 0 {
				t.Errorf("uploaded %v from a timed-out attempt", p)
			}
			e.assertTempDirEmpty(t)
		})
	}
}

// TestSweepTempDirs: dirs of dead workers go, dirs of live processes and anything else stay.
func TestSweepTempDirs(t *testing.T) {
	dir := t.TempDir()
	dead := exec.Command("true")
	if err := dead.Run(); err != nil {
		t.Fatal(err)
	}
	mk := func(name string) string {
		p := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Join(p, "hls"), 0o755); err != nil {
			t.Fatal(err)
		}
		return p
	}
	gone := mk(fmt.Sprintf("%s%d-abc", tempPrefix, dead.Process.Pid))
	keep := []string{
		mk(fmt.Sprintf("%s%d-abc", tempPrefix, os.Getpid())),  // ours
		mk(fmt.Sprintf("%s%d-abc", tempPrefix, os.Getppid())), // a live process
		mk("lectern-transcode-notapid-x"),
		mk("something-else"),
	}
	n, err := SweepTempDirs(dir)
	if err != nil || n != 1 {
		t.Fatalf("SweepTempDirs = %d, %v; want 1", n, err)
	}
	if _, err := os.Stat(gone); !os.IsNotExist(err) {
		t.Errorf("dead worker's dir still there: %v", err)
	}
	for _, k := range keep {
		if _, err := os.Stat(k); err != nil {
			t.Errorf("%s removed: %v", k, err)
		}
	}
}

// TestWorkerDeletedWhileEncoding: deleting the lecture (real catalog, SQLite) while ffmpeg runs stops the
// encode at the next heartbeat; nothing is uploaded and the job ends quietly.
func TestWorkerDeletedWhileEncoding(t *testing.T) {
	needFFmpeg(t)
	ctx := context.Background()
	cat, err := catalog.Open(ctx, "sqlite://"+filepath.Join(t.TempDir(), "lectern.db"), catalog.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer cat.Close()
	teacher, _, err := cat.AddTeacher(ctx, "Mr. Seo")
	if err != nil {
		t.Fatal(err)
	}
	lec, err := cat.CreateLecture(ctx, catalog.NewLecture{TeacherID: teacher.ID, Title: "Optics"})
	if err != nil {
		t.Fatal(err)
	}
	e := newWorkerEnv(t, readSource(t, clip{width: 1280, height: 720, seconds: 30, video: true, audio: true}))
	if _, err := cat.EnqueueTranscode(ctx, lec.ID, catalog.Source{Key: sourceKey, Seconds: 30}); err != nil {
		t.Fatal(err)
	}
	jobs, err := cat.TranscodeJobs(ctx, lec.ID)
	if err != nil || len(jobs) != 1 {
		t.Fatalf("jobs %+v, %v", jobs, err)
	}
	w := NewWorker(Config{Store: e.store, Catalog: cat, TempDir: e.tempDir})
	done := make(chan error, 1)
	go func() {
		done <- w.Work(ctx, &river.Job[catalog.TranscodeArgs]{
			JobRow: &rivertype.JobRow{ID: jobs[0].ID, Attempt: 1, MaxAttempts: 5}, Args: jobs[0].Args})
	}()
	for deadline := time.Now().Add(time.Minute); ; time.Sleep(50 * time.Millisecond) {
		l, err := cat.GetLecture(ctx, lec.ID)
		if err != nil {
			t.Fatal(err)
		}
		if l.Progress > 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no progress recorded: %+v", l)
		}
	}
	if err := cat.DeleteLecture(ctx, lec.ID); err != nil {
		t.Fatal(err)
	}
	deleted := time.Now()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("Work = %v, want nil (the lecture is gone: nothing to retry)", err)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("the encode went on after the lecture was deleted")
	}
	t.Logf("stopped %v after the delete", time.Since(deleted).Round(time.Millisecond))
	if p := e.puts(); len(p) != 0 {
		t.Errorf("uploaded %v for a deleted lecture", p)
	}
	if w.Stats().JobsStale.Load() != 1 {
		t.Error("stopped job not counted as stale")
	}
	e.assertTempDirEmpty(t)
}
