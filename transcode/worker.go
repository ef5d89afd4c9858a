package transcode

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/riverqueue/river"

	"github.com/lectern/lectern/internal/catalog"
	"github.com/lectern/lectern/internal/objstore"
	"github.com/lectern/lectern/internal/probe"
)

// Store is the object storage the worker needs; *objstore.Bucket satisfies it.
type Store interface {
	// Get opens the whole object; missing -> objstore.IsNotFound.
	Get(ctx context.Context, key string) (io.ReadCloser, objstore.Attrs, error)
	// PutFile stores the file at path under key; the object appears all at once or not at all.
	PutFile(ctx context.Context, key, path string, opts objstore.PutOptions) error
}

// Catalog is the part of the lecture catalog the worker drives; *catalog.Catalog satisfies it. Each
// call returns an error for which catalog.IsConflict (or catalog.IsNotFound) is true when the version is
// no longer the pending one (the lecture was replaced or deleted) or this attempt lost its lease: the job
// must stop quietly. MarkTranscoding returns catalog.IsBusy while another live attempt holds the lease.
type Catalog interface {
	MarkTranscoding(ctx context.Context, lectureID string, version int, worker string, leaseTTL time.Duration) error
	SetProgress(ctx context.Context, lectureID string, version int, worker string, percent, etaSeconds float64) error
	PublishVersion(ctx context.Context, lectureID string, version int, worker string, p catalog.Publication) error
	FailLecture(ctx context.Context, lectureID string, version int, reason string) error
}

// progressInterval is how often the reporter looks at the encode's progress; the catalog is written when
// the percentage moved, and at least every LeaseTTL/4 as the lease heartbeat.
const progressInterval = time.Second

// errStale ends a job whose version was superseded; Work turns it into success.
var errStale = errors.New("transcode: version superseded, lecture deleted, or lease lost")

// tempPrefix names the worker's per-job temp dirs: "lectern-transcode-{pid}-{random}". The pid lets a
// restarted worker remove what a killed one left behind (see SweepTempDirs).
const tempPrefix = "lectern-transcode-"

// Worker is the River worker for catalog.TranscodeArgs.
type Worker struct {
	river.WorkerDefaults[catalog.TranscodeArgs]
	cfg   Config
	stats Stats
	host  string
}

// NewWorker returns a worker; cfg.Store and cfg.Catalog are required, other fields have defaults.
func NewWorker(cfg Config) *Worker {
	host, _ := os.Hostname()
	return &Worker{cfg: cfg.withDefaults(), host: host}
}

// Stats returns the worker's live counters.
func (w *Worker) Stats() *Stats { return &w.stats }

// Timeout returns -1: River puts no bound of its own on a transcode attempt. River's rescuer leaves a
// running job alone until its worker's Timeout has passed, so a duration-sized Timeout (hours for a long
// lecture) would keep a killed worker's job stuck that long. The lease (see [catalog.Catalog.MarkTranscoding])
// is what makes an early rescue safe; Work bounds each attempt itself with [Worker.AttemptTimeout].
func (w *Worker) Timeout(*river.Job[catalog.TranscodeArgs]) time.Duration { return -1 }

// AttemptTimeout bounds one attempt by the lecture's length: TimeoutBase + TimeoutPerSecond x duration,
// or the bound of a MaxDuration lecture when the duration is unknown.
func (w *Worker) AttemptTimeout(args catalog.TranscodeArgs) time.Duration {
	seconds := args.SourceSeconds
	if !(seconds > 0) || seconds > w.cfg.MaxDuration.Seconds() {
		seconds = w.cfg.MaxDuration.Seconds()
	}
	return w.cfg.TimeoutBase + time.Duration(seconds*w.cfg.TimeoutPerSecond*float64(time.Second))
}

// Work produces version job.Args.Version of the lecture and publishes it. See the package
// documentation for the failure policy.
func (w *Worker) Work(ctx context.Context, job *river.Job[catalog.TranscodeArgs]) error {
	a := job.Args
	log := w.cfg.Logger.With("lecture", a.LectureID, "version", a.Version, "attempt", job.Attempt)
	w.stats.JobsStarted.Add(1)
	start := time.Now()

	// The attempt's own deadline (River's is off, see Timeout). Work's failure handling below records
	// the failure with a fresh context when this is what expired.
	ctx, cancel := context.WithTimeout(ctx, w.AttemptTimeout(a))
	defer cancel()
	res, err := w.work(ctx, a, log)
	switch {
	case err == nil:
		w.stats.JobsSucceeded.Add(1)
		w.stats.MediaMillis.Add(int64(res.DurationSeconds * 1000))
		w.stats.EncodeMillis.Add(time.Since(start).Milliseconds())
		log.InfoContext(ctx, "transcode: published", "duration", res.DurationSeconds, "profile", res.Profile,
			"renditions", len(res.Renditions), "chapters", len(res.Chapters), "bytes", res.Bytes,
			"took", time.Since(start).Round(time.Millisecond))
		return nil
	case catalog.IsBusy(err):
		// River's rescuer handed us a job whose first attempt is alive, only slow. Look again once its
		// lease would have run out if it had died.
		w.stats.JobsBusy.Add(1)
		log.InfoContext(ctx, "transcode: another worker holds the lease; waiting", "retry_in", w.cfg.LeaseTTL)
		return river.JobSnooze(w.cfg.LeaseTTL)
	case errors.Is(err, errStale):
		w.stats.JobsStale.Add(1)
		log.InfoContext(ctx, "transcode: stopped, version is no longer pending (or its lease moved)")
		return nil
	case IsRejected(err):
		reason := Reason(err)
		log.WarnContext(ctx, "transcode: source rejected", "reason", reason, "err", err)
		if ferr := w.cfg.Catalog.FailLecture(ctx, a.LectureID, a.Version, reason); ferr != nil {
			if isStale(ferr) {
				w.stats.JobsStale.Add(1)
				return nil
			}
			// The lecture still says "transcoding": retry, the next attempt rejects it again.
			w.stats.JobsFailed.Add(1)
			return fmt.Errorf("transcode: record failure: %w", ferr)
		}
		w.stats.JobsRejected.Add(1)
		return river.JobCancel(err)
	default:
		w.stats.JobsFailed.Add(1)
		log.ErrorContext(ctx, "transcode: attempt failed", "err", err, "max_attempts", job.MaxAttempts)
		if job.MaxAttempts > 0 && job.Attempt >= job.MaxAttempts {
			// River discards the job after this; without this the lecture would say "transcoding" forever.
			reason := "transcoding failed after " + fmt.Sprint(job.Attempt) + " attempts: " + oneLine(err.Error())
			// The job's ctx may be the very thing that expired (job timeout); record the failure anyway.
			fctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
			defer cancel()
			if ferr := w.cfg.Catalog.FailLecture(fctx, a.LectureID, a.Version, reason); ferr != nil && !isStale(ferr) {
				log.ErrorContext(ctx, "transcode: record failure", "err", ferr)
			}
		}
		return err
	}
}

// work is one attempt; it returns errStale, catalog.IsBusy, a rejected source, or an error worth retrying.
func (w *Worker) work(ctx context.Context, a catalog.TranscodeArgs, log *slog.Logger) (Result, error) {
	id := fmt.Sprintf("%s/%d/%s", w.host, os.Getpid(), randomID())
	if err := w.cfg.Catalog.MarkTranscoding(ctx, a.LectureID, a.Version, id, w.cfg.LeaseTTL); err != nil {
		if catalog.IsBusy(err) {
			return Result{}, err
		}
		return Result{}, catalogErr(err)
	}
	tmp, err := os.MkdirTemp(w.cfg.TempDir, fmt.Sprintf("%s%d-", tempPrefix, os.Getpid()))
	if err != nil {
		return Result{}, fmt.Errorf("transcode: temp dir: %w", err)
	}
	defer func() {
		if err := os.RemoveAll(tmp); err != nil {
			log.WarnContext(ctx, "transcode: remove temp dir", "dir", tmp, "err", err)
		}
	}()

	// The reporter writes progress and renews the lease for the whole attempt (download, encode, upload).
	// A stale answer (lecture deleted or replaced, lease taken over) cancels everything with errStale.
	jobCtx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	rep := newReporter(w, a, id, cancel, log)
	go rep.run(jobCtx)
	defer rep.stop()

	res, err := w.produce(jobCtx, a, tmp, rep)
	if errors.Is(context.Cause(jobCtx), errStale) {
		return Result{}, errStale
	}
	if err != nil {
		return Result{}, err
	}
	rends := make([]catalog.Rendition, len(res.Renditions))
	for i, r := range res.Renditions {
		rends[i] = catalog.Rendition{Name: r.Name, Width: r.Width, Height: r.Height, Bandwidth: r.Bandwidth,
			AverageBandwidth: r.AverageBandwidth, Codecs: r.Codecs, FrameRate: r.FrameRate}
	}
	pub := catalog.Publication{DurationSeconds: res.DurationSeconds, Renditions: rends, Assets: catalog.Assets{
		Poster: res.Poster, ChapterCount: len(res.Chapters), Captions: res.Captions, Profile: res.Profile,
	}}
	if len(res.Chapters) > 0 {
		pub.Assets.Chapters = ChaptersName
	}
	rep.stop() // no heartbeat may race the publish
	if err := w.cfg.Catalog.PublishVersion(ctx, a.LectureID, a.Version, id, pub); err != nil {
		return Result{}, catalogErr(err)
	}
	return res, nil
}

// produce downloads the inputs, encodes and uploads every object of the version.
func (w *Worker) produce(ctx context.Context, a catalog.TranscodeArgs, tmp string, rep *reporter) (Result, error) {
	in := Input{Source: filepath.Join(tmp, "source"), Profile: a.Profile, CaptionsLanguage: a.CaptionsLanguage}
	if err := w.download(ctx, a.SourceKey, in.Source); err != nil {
		return Result{}, err
	}
	if a.CaptionsKey != "" {
		in.Captions = filepath.Join(tmp, "captions.vtt")
		if err := w.download(ctx, a.CaptionsKey, in.Captions); err != nil {
			return Result{}, err
		}
	}
	out := filepath.Join(tmp, "hls")
	res, err := Transcode(ctx, w.cfg, in, out, rep.report)
	if err != nil {
		return Result{}, err
	}
	prefix := VersionPrefix(a.LectureID, a.Version)
	n, err := publish(ctx, w.cfg.Store, prefix, out, res.Objects, w.cfg.UploadConcurrency)
	w.stats.BytesPublished.Add(n)
	if err != nil {
		return Result{}, err
	}
	return res, nil
}

// reporter carries progress from ffmpeg's goroutine to the catalog and to the progress gauge, and
// renews the worker's lease.
type reporter struct {
	w          *Worker
	a          catalog.TranscodeArgs
	id         string
	cancel     context.CancelCauseFunc
	log        *slog.Logger
	mu         sync.Mutex
	percent    float64
	eta        float64
	done       chan struct{}
	stopped    chan struct{}
	stopOnce   sync.Once
	lastPct    float64
	lastWrite  time.Time
	heartbeats time.Duration
}

func newReporter(w *Worker, a catalog.TranscodeArgs, id string, cancel context.CancelCauseFunc, log *slog.Logger) *reporter {
	return &reporter{w: w, a: a, id: id, cancel: cancel, log: log, lastPct: -1, lastWrite: time.Now(),
		done: make(chan struct{}), stopped: make(chan struct{}), heartbeats: w.cfg.LeaseTTL / 4}
}

// report is the encode's ProgressFunc.
func (r *reporter) report(percent, eta float64) {
	r.mu.Lock()
	r.percent, r.eta = percent, eta
	r.mu.Unlock()
	r.w.stats.setProgress(r.a.LectureID, percent, eta)
}

func (r *reporter) run(ctx context.Context) {
	defer close(r.stopped)
	defer r.w.stats.clearProgress(r.a.LectureID)
	t := time.NewTicker(min(progressInterval, r.heartbeats))
	defer t.Stop()
	for first := true; ; first = false {
		// The first write is immediate: a version superseded while queued stops before the download.
		if !first {
			select {
			case <-r.done:
				return
			case <-ctx.Done():
				return
			case <-t.C:
			}
		}
		r.mu.Lock()
		pct, eta := r.percent, r.eta
		r.mu.Unlock()
		if pct == r.lastPct && time.Since(r.lastWrite) < r.heartbeats {
			continue
		}
		// 100% is for the published version; uploading is still ahead.
		err := r.w.cfg.Catalog.SetProgress(ctx, r.a.LectureID, r.a.Version, r.id, min(pct, 99), eta)
		switch {
		case isStale(err):
			r.cancel(errStale)
			return
		case err != nil && ctx.Err() == nil:
			r.log.WarnContext(ctx, "transcode: set progress", "err", err) // retried on the next tick
		case err == nil:
			r.lastPct, r.lastWrite = pct, time.Now()
		}
	}
}

// stop ends the reporter and waits for it, so no heartbeat is in flight afterwards.
func (r *reporter) stop() {
	r.stopOnce.Do(func() { close(r.done) })
	<-r.stopped
}

func randomID() string {
	var b [6]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// download copies the source object to path. A missing source can never be transcoded.
func (w *Worker) download(ctx context.Context, key, path string) error {
	body, attrs, err := w.cfg.Store.Get(ctx, key)
	if objstore.IsNotFound(err) {
		return &rejectedError{reason: "the uploaded file is missing from storage; please upload it again"}
	}
	if err != nil {
		return fmt.Errorf("transcode: download source %s: %w", key, err)
	}
	defer body.Close()
	f, err := os.Create(path)
	if err != nil {
		return fmt.Errorf("transcode: %w", err)
	}
	n, err := io.Copy(f, body)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil && attrs.Size > 0 && n != attrs.Size {
		err = fmt.Errorf("got %d of %d bytes", n, attrs.Size)
	}
	if err != nil {
		return fmt.Errorf("transcode: download source %s: %w", key, err)
	}
	return nil
}

func isStale(err error) bool { return catalog.IsConflict(err) || catalog.IsNotFound(err) }

// catalogErr turns a stale-version answer into errStale and keeps any other error for a retry.
func catalogErr(err error) error {
	if isStale(err) {
		return fmt.Errorf("%w: %w", errStale, err)
	}
	return fmt.Errorf("transcode: catalog: %w", err)
}

func oneLine(s string) string {
	return strings.Join(strings.Fields(s), " ")
}

// Check verifies the configuration a worker needs before it takes jobs: the profiles, and that ffmpeg
// and ffprobe run. Call it at startup so a broken install fails loudly once, not every job.
func (w *Worker) Check() error {
	if w.cfg.Store == nil || w.cfg.Catalog == nil {
		return errors.New("transcode: worker needs a Store and a Catalog")
	}
	if err := validateProfiles(w.cfg.Profiles); err != nil {
		return err
	}
	if err := probe.CheckTools(w.cfg.FFmpeg, w.cfg.FFprobe); err != nil {
		return err
	}
	if w.cfg.Scaler == "" { // once here, not once per job
		s, err := DetectScaler(context.Background(), w.cfg.FFmpeg)
		if err != nil {
			return err
		}
		w.cfg.Scaler = s
		w.cfg.Logger.Debug("transcode: ladder scaler", "scaler", s)
	}
	return nil
}

// SweepTempDirs removes the temp dirs of workers on this machine that no longer run (killed mid-job:
// a deferred RemoveAll never ran). Dirs of live processes are left alone. It returns how many it removed.
func SweepTempDirs(dir string) (int, error) {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return 0, fmt.Errorf("transcode: sweep %s: %w", dir, err)
	}
	removed := 0
	for _, e := range entries {
		rest, ok := strings.CutPrefix(e.Name(), tempPrefix)
		if !ok || !e.IsDir() {
			continue
		}
		pidStr, _, ok := strings.Cut(rest, "-")
		pid, err := strconv.Atoi(pidStr)
		if !ok || err != nil || pid <= 0 || pid == os.Getpid() || processAlive(pid) {
			continue
		}
		if err := os.RemoveAll(filepath.Join(dir, e.Name())); err != nil {
			return removed, fmt.Errorf("transcode: sweep: %w", err)
		}
		removed++
	}
	return removed, nil
}

// processAlive reports whether a process with this pid exists (signal 0 checks without sending).
func processAlive(pid int) bool {
	err := syscall.Kill(pid, 0)
	return err == nil || errors.Is(err, syscall.EPERM)
}
