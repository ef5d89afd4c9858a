package catalog

import (
	"context"
	"encoding/json"
	"fmt"
	"math"
	"regexp"
	"strings"
	"time"

	"github.com/riverqueue/river"
	"github.com/riverqueue/river/rivertype"
)

// Transcode job settings.
const (
	TranscodeKind        = "transcode"
	TranscodeQueue       = "transcode"
	transcodeMaxAttempts = 5
)

// TranscodeArgs is the River job that produces one version of a lecture from one source object. A worker
// registers river.Worker[TranscodeArgs] in Options.Workers; it should call MarkTranscoding, SetProgress,
// then PublishVersion (or FailLecture once job.Attempt == job.MaxAttempts), and give up without a retry
// (return river.JobCancel(err)) when any of them returns IsConflict or IsNotFound: the job was superseded
// by a newer upload, or the lecture was deleted.
type TranscodeArgs struct {
	LectureID string `json:"lecture_id"`
	Version   int    `json:"version"`
	SourceKey string `json:"source_key"`
	// Profile names the transcode profile ("" = DefaultProfile, for jobs enqueued before profiles existed).
	Profile string `json:"profile,omitempty"`
	// CaptionsKey is a WebVTT file to publish as a SUBTITLES rendition ("" = none), in CaptionsLanguage.
	CaptionsKey      string `json:"captions_key,omitempty"`
	CaptionsLanguage string `json:"captions_language,omitempty"`
	// SourceSeconds is the source's probed duration (0 = unknown); the worker sizes its timeout from it.
	SourceSeconds float64 `json:"source_seconds,omitempty"`
}

// Source is a newly stored source for EnqueueTranscode.
type Source struct {
	// Key is the objstore key of the source media. Required.
	Key string
	// CaptionsKey is the objstore key of WebVTT captions uploaded with it ("" = none).
	CaptionsKey string
	// CaptionsLanguage is the captions' RFC 5646 tag ("" = unknown).
	CaptionsLanguage string
	// Seconds is the probed duration (0 = unknown).
	Seconds float64
	// UploadID, when set, is the resumable upload the source came from: it goes from receiving to done
	// in the same transaction (IsConflict if it is not receiving, so it is handed over at most once).
	UploadID string
}

var languageTag = regexp.MustCompile(`^[A-Za-z]{2,8}(-[A-Za-z0-9]{1,8})*$`)

// Kind is River's job kind for TranscodeArgs.
func (TranscodeArgs) Kind() string { return TranscodeKind }

// InsertOpts puts every transcode job on its own queue, so a worker process can be sized for ffmpeg
// alone, and bounds retries: a source that failed five times will fail again.
func (TranscodeArgs) InsertOpts() river.InsertOpts {
	return river.InsertOpts{Queue: TranscodeQueue, MaxAttempts: transcodeMaxAttempts}
}

// EnqueueTranscode asks for a new version of the lecture made from sourceKey, in ONE transaction: the
// lecture gets a new PendingVersion (greater than any version it ever had), SourceKey = sourceKey, status
// queued with progress and error cleared, AND the River job is inserted. Either both happen or neither:
// no job without its status, no queued lecture without its job. Returns the new pending version. A
// published Version stays playable until the new one is published.
func (c *Catalog) EnqueueTranscode(ctx context.Context, lectureID string, src Source) (int, error) {
	if strings.TrimSpace(src.Key) == "" {
		return 0, fmt.Errorf("%w: empty source key", ErrInvalid)
	}
	if src.CaptionsLanguage != "" && !languageTag.MatchString(src.CaptionsLanguage) {
		return 0, fmt.Errorf("%w: captions language %q is not a language tag like \"en\" or \"ko-KR\"", ErrInvalid, src.CaptionsLanguage)
	}
	if math.IsNaN(src.Seconds) || math.IsInf(src.Seconds, 0) || src.Seconds < 0 {
		return 0, fmt.Errorf("%w: source duration %v", ErrInvalid, src.Seconds)
	}
	v, err := c.enqueue(ctx, lectureID, src.UploadID, `source_key = $4, captions_key = $5, captions_language = $6, source_seconds = $7`,
		src.Key, src.CaptionsKey, src.CaptionsLanguage, src.Seconds)
	if err != nil {
		return 0, fmt.Errorf("catalog: enqueue transcode of lecture %q: %w", lectureID, err)
	}
	return v, nil
}

// Retranscode asks for a new version of the lecture made from its stored source (and captions), with
// profile ("" keeps the lecture's profile): a new ladder or profile becomes v{n+1} while v{n} keeps
// playing. Same transaction rules as EnqueueTranscode. IsConflict if the lecture has no source yet.
func (c *Catalog) Retranscode(ctx context.Context, lectureID, profile string) (int, error) {
	set := `profile = profile`
	var args []any
	if profile != "" {
		p, err := checkProfile(profile)
		if err != nil {
			return 0, err
		}
		set, args = `profile = $4`, []any{p}
	}
	v, err := c.enqueue(ctx, lectureID, "", set+` WHERE source_key <> ''`, args...)
	if IsNotFound(err) {
		// Tell "no such lecture" from "nothing uploaded yet".
		if _, gerr := c.GetLecture(ctx, lectureID); gerr == nil {
			err = fmt.Errorf("no source uploaded yet: %w", ErrConflict)
		}
	}
	if err != nil {
		return 0, fmt.Errorf("catalog: retranscode lecture %q: %w", lectureID, err)
	}
	return v, nil
}

// enqueue moves the lecture to a new pending version, applies set (SQL assignments using $4 onwards,
// optionally ending in an extra "WHERE" condition), marks uploadID done (when not "") and inserts its
// job, in one transaction.
func (c *Catalog) enqueue(ctx context.Context, lectureID, uploadID, set string, args ...any) (int, error) {
	var version int
	err := c.b.inTx(ctx, func(q dbtx, insert insertFunc) error {
		if uploadID != "" {
			if err := markUploadDone(ctx, q, uploadID, lectureID); err != nil {
				return err
			}
		}
		where := `WHERE id = $1`
		if assign, cond, ok := strings.Cut(set, " WHERE "); ok {
			set, where = assign, where+" AND "+cond
		}
		// last_version, not max(Version, PendingVersion): after a failed v2 the next upload must be v3,
		// or a retry of the failed v2 job could still match and publish the old source.
		a := TranscodeArgs{LectureID: lectureID}
		err := q.queryRow(ctx, `UPDATE lectures SET last_version = last_version + 1, pending_version = last_version + 1,
				status = $2, progress = 0, eta_seconds = 0, error_reason = '', updated_at = $3, worker_id = '',
				heartbeat_at = 0, `+set+` `+where+`
			RETURNING pending_version, source_key, profile, captions_key, captions_language, source_seconds`,
			append([]any{lectureID, string(StatusQueued), millis(now())}, args...)...).
			Scan(&a.Version, &a.SourceKey, &a.Profile, &a.CaptionsKey, &a.CaptionsLanguage, &a.SourceSeconds)
		if err != nil {
			return err
		}
		version = a.Version
		if _, err := insert(ctx, a); err != nil {
			return err
		}
		return c.hooks.afterEnqueueInsert(ctx)
	})
	return version, err
}

// jobStates are every state a River job can be in; QueueStats reports them all, zeros included, so
// metrics series do not appear and vanish.
func jobStates() []rivertype.JobState {
	return []rivertype.JobState{
		rivertype.JobStateAvailable, rivertype.JobStateCancelled, rivertype.JobStateCompleted,
		rivertype.JobStateDiscarded, rivertype.JobStatePending, rivertype.JobStateRetryable,
		rivertype.JobStateRunning, rivertype.JobStateScheduled,
	}
}

// QueueStats counts jobs by River state ("available", "running", "retryable", "completed", "discarded",
// and the rarer "scheduled", "pending", "cancelled"). Completed and discarded jobs are pruned by River
// after a day or a week, so those two are recent counts, not totals.
func (c *Catalog) QueueStats(ctx context.Context) (map[string]int, error) {
	out := make(map[string]int)
	for _, s := range jobStates() {
		out[string(s)] = 0
	}
	rs, err := c.b.db().query(ctx, `SELECT state, COUNT(*) FROM river_job GROUP BY state`)
	if err != nil {
		return nil, fmt.Errorf("catalog: queue stats: %w", err)
	}
	defer rs.Close()
	for rs.Next() {
		var state string
		var n int64
		if err := rs.Scan(&state, &n); err != nil {
			return nil, fmt.Errorf("catalog: queue stats: %w", err)
		}
		out[state] = int(n)
	}
	if err := rs.Err(); err != nil {
		return nil, fmt.Errorf("catalog: queue stats: %w", err)
	}
	return out, nil
}

// JobRecord is a job as River records it, for admin pages and tests; Args are its decoded arguments.
type JobRecord[A any] struct {
	ID          int64
	State       string // River's state: available, running, retryable, completed, discarded, ...
	Attempt     int
	MaxAttempts int
	Args        A
	Errors      []string // one per failed attempt, oldest first
	CreatedAt   time.Time
	FinalizedAt time.Time // zero while not finished
}

// Job is a transcode job as River records it.
type Job = JobRecord[TranscodeArgs]

// TranscodeJobs returns the lecture's transcode jobs (up to the newest 100 that River still keeps),
// oldest first.
func (c *Catalog) TranscodeJobs(ctx context.Context, lectureID string) ([]Job, error) {
	// `args ->> 'lecture_id'` reads a JSON field in both PostgreSQL (jsonb) and SQLite (JSON text in a blob).
	return lectureJobs[TranscodeArgs](ctx, c, TranscodeKind, "args ->> 'lecture_id' = @lecture_id", "transcode jobs", lectureID)
}

// lectureJobs lists the jobs of kind whose args match where (with @lecture_id bound), up to the newest
// 100 River still keeps, oldest first, with their args decoded into A.
func lectureJobs[A any](ctx context.Context, c *Catalog, kind, where, what, lectureID string) ([]JobRecord[A], error) {
	params := river.NewJobListParams().
		Kinds(kind).
		Where(where, river.NamedArgs{"lecture_id": lectureID}).
		OrderBy(river.JobListOrderByID, river.SortOrderDesc).
		First(100)
	res, err := c.b.listJobs(ctx, params)
	if err != nil {
		return nil, fmt.Errorf("catalog: %s of lecture %q: %w", what, lectureID, err)
	}
	out := make([]JobRecord[A], 0, len(res.Jobs))
	for i := len(res.Jobs) - 1; i >= 0; i-- {
		r := res.Jobs[i]
		j := JobRecord[A]{ID: r.ID, State: string(r.State), Attempt: r.Attempt, MaxAttempts: r.MaxAttempts, CreatedAt: r.CreatedAt.UTC()}
		if r.FinalizedAt != nil {
			j.FinalizedAt = r.FinalizedAt.UTC()
		}
		for _, e := range r.Errors {
			j.Errors = append(j.Errors, e.Error)
		}
		if err := decodeJSON(r.EncodedArgs, &j.Args); err != nil {
			return nil, fmt.Errorf("catalog: %s of lecture %q: job %d args: %w", what, lectureID, r.ID, err)
		}
		out = append(out, j)
	}
	return out, nil
}

func decodeJSON(b []byte, v any) error {
	if err := json.Unmarshal(b, v); err != nil {
		return fmt.Errorf("decode JSON: %w", err)
	}
	return nil
}
