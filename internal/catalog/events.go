package catalog

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/riverqueue/river"
)

// Event job settings.
const (
	EventKind  = "webhook"
	EventQueue = "webhooks"
	// EventMaxAttempts bounds deliveries of one event. With the webhook worker's backoff (15 s doubling,
	// capped at an hour) twelve attempts span about four hours: a receiver that is down for a deploy or
	// an afternoon still gets the event.
	EventMaxAttempts = 12
)

// Event types.
const (
	// EventLectureReady: a version was published (PublishVersion); the lecture is playable.
	EventLectureReady = "lecture.ready"
	// EventLectureFailed: a transcode failed for good (FailLecture) or an upload was rejected by
	// validation (RejectUpload). A previously published version, if any, still plays.
	EventLectureFailed = "lecture.failed"
)

// EventArgs is one event, as the River job that delivers it and as the JSON body POSTed to the webhook.
// ID is unique per event and stays the same across delivery attempts, so receivers deduplicate by it.
type EventArgs struct {
	ID        string       `json:"id"`
	Type      string       `json:"type"`
	CreatedAt time.Time    `json:"created_at"`
	Lecture   EventLecture `json:"lecture"`
}

// EventLecture is the lecture as it was when the event's transaction committed.
type EventLecture struct {
	ID        string `json:"id"`
	Title     string `json:"title"`
	TeacherID string `json:"teacher_id"`
	CourseID  string `json:"course_id"`
	Status    Status `json:"status"`
	// Version is the published version (0 = none). After a failed replacement it is the one still playing.
	Version int `json:"version"`
	// FailedVersion is the version whose transcode failed (lecture.failed from FailLecture); 0 otherwise.
	FailedVersion int `json:"failed_version,omitempty"`
	// Error is the reason of a failure ("" in lecture.ready).
	Error           string  `json:"error"`
	DurationSeconds float64 `json:"duration_seconds"`
}

// Kind is River's job kind for EventArgs.
func (EventArgs) Kind() string { return EventKind }

// InsertOpts keeps deliveries on their own queue, so a receiver that hangs never holds a transcode slot,
// and gives them more attempts than a transcode: a retry costs one small request.
func (EventArgs) InsertOpts() river.InsertOpts {
	return river.InsertOpts{Queue: EventQueue, MaxAttempts: EventMaxAttempts}
}

// RejectUpload records that an upload for the lecture was rejected by validation (not media, truncated,
// empty, too long): status failed with reason. Nothing else changes: a published Version keeps playing,
// and a version already pending from an earlier upload goes on (its worker moves the status on). With
// Options.Events a lecture.failed event is recorded in the same transaction. IsNotFound if the lecture
// does not exist.
func (c *Catalog) RejectUpload(ctx context.Context, lectureID, reason string) error {
	reason = truncateUTF8(strings.TrimSpace(reason), maxReasonLen)
	if reason == "" {
		reason = "the upload was rejected"
	}
	err := c.b.inTx(ctx, func(q dbtx, insert insertFunc) error {
		n, err := q.exec(ctx, `UPDATE lectures SET status = $2, error_reason = $3, eta_seconds = 0, updated_at = $4 WHERE id = $1`,
			lectureID, string(StatusFailed), reason, millis(now()))
		if err != nil {
			return err
		}
		if n == 0 {
			return ErrNotFound
		}
		if !c.events {
			return nil
		}
		return c.recordEvent(ctx, q, insert, EventLectureFailed, lectureID, 0)
	})
	if err != nil {
		return fmt.Errorf("catalog: reject upload of lecture %q: %w", lectureID, err)
	}
	return nil
}

// recordEvent inserts an event about the lecture as the surrounding transaction sees it; failedVersion
// goes into lecture.failed events of a transcode.
func (c *Catalog) recordEvent(ctx context.Context, q dbtx, insert insertFunc, typ, lectureID string, failedVersion int) error {
	ev := EventArgs{ID: "evt_" + newID(), Type: typ, CreatedAt: now()}
	l := &ev.Lecture
	var status string
	err := q.queryRow(ctx, `SELECT id, title, teacher_id, COALESCE(course_id, ''), status, version, error_reason,
			duration_seconds FROM lectures WHERE id = $1`, lectureID).
		Scan(&l.ID, &l.Title, &l.TeacherID, &l.CourseID, &status, &l.Version, &l.Error, &l.DurationSeconds)
	if err != nil {
		return fmt.Errorf("event %s: %w", typ, err)
	}
	l.Status, l.FailedVersion = Status(status), failedVersion
	if _, err := insert(ctx, ev); err != nil {
		return err
	}
	return c.hooks.afterEventInsert(ctx)
}

// EventJob is an event's delivery job as River records it; Args is the event.
type EventJob = JobRecord[EventArgs]

// EventJobs returns the events about a lecture (up to the newest 100 that River still keeps), oldest
// first.
func (c *Catalog) EventJobs(ctx context.Context, lectureID string) ([]EventJob, error) {
	return lectureJobs[EventArgs](ctx, c, EventKind, "args -> 'lecture' ->> 'id' = @lecture_id", "events", lectureID)
}
