package catalog

import (
	"context"
	"encoding/json"
	"fmt"
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
}

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
func (c *Catalog) EnqueueTranscode(ctx context.Context, lectureID, sourceKey string) (int, error) {
	if strings.TrimSpace(sourceKey) == "" {
		return 0, fmt.Errorf("%w: empty source key", ErrInvalid)
	}
	var version int
	err := c.b.inTx(ctx, func(q dbtx, insert insertFunc) error {
		// last_version, not max(Version, PendingVersion): after a failed v2 the next upload must be v3,
		// or a retry of the failed v2 job could still match and publish the old source.
		err := q.queryRow(ctx, `UPDATE lectures SET last_version = last_version + 1, pending_version = last_version + 1,
				source_key = $2, status = $3, progress = 0, eta_seconds = 0, error_reason = '', updated_at = $4
			WHERE id = $1 RETURNING pending_version`,
			lectureID, sourceKey, string(StatusQueued), millis(now())).Scan(&version)
		if err != nil {
			return err
		}
		if _, err := insert(ctx, TranscodeArgs{LectureID: lectureID, Version: version, SourceKey: sourceKey}); err != nil {
			return err
		}
		return c.hooks.afterEnqueueInsert(ctx)
	})
	if err != nil {
		return 0, fmt.Errorf("catalog: enqueue transcode of lecture %q: %w", lectureID, err)
	}
	return version, nil
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

// Job is a transcode job as River records it, for admin pages and tests.
type Job struct {
	ID          int64
	State       string // River's state: available, running, retryable, completed, discarded, ...
	Attempt     int
	MaxAttempts int
	Args        TranscodeArgs
	Errors      []string // one per failed attempt, oldest first
	CreatedAt   time.Time
	FinalizedAt time.Time // zero while not finished
}

// TranscodeJobs returns the lecture's transcode jobs (up to the newest 100 that River still keeps),
// oldest first.
func (c *Catalog) TranscodeJobs(ctx context.Context, lectureID string) ([]Job, error) {
	// `args ->> 'lecture_id'` reads a JSON field in both PostgreSQL (jsonb) and SQLite (JSON text in a blob).
	params := river.NewJobListParams().
		Kinds(TranscodeKind).
		Where("args ->> 'lecture_id' = @lecture_id", river.NamedArgs{"lecture_id": lectureID}).
		OrderBy(river.JobListOrderByID, river.SortOrderDesc).
		First(100)
	res, err := c.b.listJobs(ctx, params)
	if err != nil {
		return nil, fmt.Errorf("catalog: transcode jobs of lecture %q: %w", lectureID, err)
	}
	out := make([]Job, 0, len(res.Jobs))
	for i := len(res.Jobs) - 1; i >= 0; i-- {
		j, err := jobFromRow(res.Jobs[i])
		if err != nil {
			return nil, fmt.Errorf("catalog: transcode jobs of lecture %q: %w", lectureID, err)
		}
		out = append(out, j)
	}
	return out, nil
}

func jobFromRow(r *rivertype.JobRow) (Job, error) {
	j := Job{
		ID: r.ID, State: string(r.State), Attempt: r.Attempt, MaxAttempts: r.MaxAttempts,
		CreatedAt: r.CreatedAt.UTC(),
	}
	if r.FinalizedAt != nil {
		j.FinalizedAt = r.FinalizedAt.UTC()
	}
	for _, e := range r.Errors {
		j.Errors = append(j.Errors, e.Error)
	}
	if err := decodeJSON(r.EncodedArgs, &j.Args); err != nil {
		return Job{}, fmt.Errorf("job %d args: %w", r.ID, err)
	}
	return j, nil
}

func decodeJSON(b []byte, v any) error {
	if err := json.Unmarshal(b, v); err != nil {
		return fmt.Errorf("decode JSON: %w", err)
	}
	return nil
}
