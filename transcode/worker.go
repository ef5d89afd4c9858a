package transcode

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
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
// no longer the pending one: the lecture was replaced or deleted, and the job must stop quietly.
type Catalog interface {
	MarkTranscoding(ctx context.Context, lectureID string, version int) error
	SetProgress(ctx context.Context, lectureID string, version int, percent, etaSeconds float64) error
	PublishVersion(ctx context.Context, lectureID string, version int, durationSeconds float64, renditions []catalog.Rendition) error
	FailLecture(ctx context.Context, lectureID string, version int, reason string) error
}

// progressInterval bounds how often progress reaches the catalog: a database write per ffmpeg report
// (twice a second) would be load for nothing a teacher can see.
const progressInterval = time.Second

// errStale ends a job whose version was superseded; Work turns it into success.
var errStale = errors.New("transcode: version superseded or lecture deleted")

// Worker is the River worker for catalog.TranscodeArgs. Its per-attempt timeout is the River client's
// JobTimeout (catalog.Options.JobTimeout), which must fit the longest lecture accepted (MaxDuration) at
// this machine's encode speed.
type Worker struct {
	river.WorkerDefaults[catalog.TranscodeArgs]
	cfg   Config
	stats Stats
}

// NewWorker returns a worker; cfg.Store and cfg.Catalog are required, other fields have defaults.
func NewWorker(cfg Config) *Worker {
	return &Worker{cfg: cfg.withDefaults()}
}

// Stats returns the worker's live counters.
func (w *Worker) Stats() *Stats { return &w.stats }

// Work produces version job.Args.Version of the lecture and publishes it. See the package
// documentation for the failure policy.
func (w *Worker) Work(ctx context.Context, job *river.Job[catalog.TranscodeArgs]) error {
	a := job.Args
	log := w.cfg.Logger.With("lecture", a.LectureID, "version", a.Version, "attempt", job.Attempt)
	w.stats.JobsStarted.Add(1)
	start := time.Now()

	res, err := w.work(ctx, a, log)
	switch {
	case err == nil:
		w.stats.JobsSucceeded.Add(1)
		w.stats.MediaMillis.Add(int64(res.DurationSeconds * 1000))
		log.InfoContext(ctx, "transcode: published", "duration", res.DurationSeconds,
			"renditions", len(res.Renditions), "bytes", res.Bytes, "took", time.Since(start).Round(time.Millisecond))
		return nil
	case errors.Is(err, errStale):
		w.stats.JobsStale.Add(1)
		log.InfoContext(ctx, "transcode: stopped, version is no longer pending")
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

// work is one attempt; it returns errStale, a rejected source, or an error worth retrying.
func (w *Worker) work(ctx context.Context, a catalog.TranscodeArgs, log *slog.Logger) (Result, error) {
	if err := w.cfg.Catalog.MarkTranscoding(ctx, a.LectureID, a.Version); err != nil {
		return Result{}, catalogErr(err)
	}
	tmp, err := os.MkdirTemp(w.cfg.TempDir, "lectern-transcode-")
	if err != nil {
		return Result{}, fmt.Errorf("transcode: temp dir: %w", err)
	}
	defer func() {
		if err := os.RemoveAll(tmp); err != nil {
			log.WarnContext(ctx, "transcode: remove temp dir", "dir", tmp, "err", err)
		}
	}()

	src := filepath.Join(tmp, "source")
	if err := w.download(ctx, a.SourceKey, src); err != nil {
		return Result{}, err
	}

	// A superseded version cancels the encode from the progress callback; the cause tells it apart from
	// a job timeout or shutdown.
	encCtx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	var mu sync.Mutex
	var last time.Time
	report := func(percent, eta float64) {
		mu.Lock()
		defer mu.Unlock()
		if time.Since(last) < progressInterval {
			return
		}
		last = time.Now()
		// 100% is for the published version; uploading is still ahead.
		err := w.cfg.Catalog.SetProgress(encCtx, a.LectureID, a.Version, min(percent, 99), eta)
		switch {
		case isStale(err):
			cancel(errStale)
		case err != nil && encCtx.Err() == nil:
			log.WarnContext(ctx, "transcode: set progress", "err", err) // progress is best effort
		}
	}
	out := filepath.Join(tmp, "hls")
	res, err := Transcode(encCtx, w.cfg, src, out, report)
	if errors.Is(context.Cause(encCtx), errStale) {
		return Result{}, errStale
	}
	if err != nil {
		return Result{}, err
	}

	prefix := VersionPrefix(a.LectureID, a.Version)
	n, err := publish(ctx, w.cfg.Store, prefix, out, res.Objects, w.cfg.UploadConcurrency)
	w.stats.BytesPublished.Add(n)
	if err != nil {
		return Result{}, err
	}
	rends := make([]catalog.Rendition, len(res.Renditions))
	for i, r := range res.Renditions {
		rends[i] = catalog.Rendition{Name: r.Name, Width: r.Width, Height: r.Height, Bandwidth: r.Bandwidth,
			AverageBandwidth: r.AverageBandwidth, Codecs: r.Codecs, FrameRate: r.FrameRate}
	}
	if err := w.cfg.Catalog.PublishVersion(ctx, a.LectureID, a.Version, res.DurationSeconds, rends); err != nil {
		return Result{}, catalogErr(err)
	}
	return res, nil
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

// Check verifies the configuration a worker needs before it takes jobs: the ladder, and that ffmpeg
// and ffprobe run. Call it at startup so a broken install fails loudly once, not every job.
func (w *Worker) Check() error {
	if w.cfg.Store == nil || w.cfg.Catalog == nil {
		return errors.New("transcode: worker needs a Store and a Catalog")
	}
	if err := validateLadder(w.cfg.Ladder); err != nil {
		return err
	}
	return probe.CheckTools(w.cfg.FFmpeg, w.cfg.FFprobe)
}
