package catalog

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"strings"
	"time"
	"unicode/utf8"
)

// The transitions below are guarded by PendingVersion: each is allowed only for the version a job was
// enqueued for. When a teacher uploads a replacement, EnqueueTranscode moves PendingVersion on, and the
// job still working on the old version gets IsConflict from its next call: its result is stale and must
// not be published. Workers should treat IsConflict and IsNotFound (lecture deleted) as "stop, nothing to
// do", not as failures to retry.

// # Worker lease
//
// A job is worked by one attempt at a time, identified by a worker id (unique per attempt). MarkTranscoding
// takes the lease; SetProgress renews it (it doubles as the heartbeat, so a worker calls it regularly even
// when progress does not move); PublishVersion requires it. A second attempt of the same job (River's
// rescuer presumed the first one dead, but it is only slow: a six-hour lecture) finds the lease fresh and
// gets IsBusy, so it waits instead of encoding the same version twice. A lease whose heartbeat is older
// than the caller's leaseTTL belonged to a dead worker (SIGKILL, power loss) and is taken over.

// ErrBusy: another live worker holds the lease on the version (see MarkTranscoding).
var ErrBusy = errors.New("catalog: another worker is producing this version")

// IsBusy reports whether err means another worker holds the lease on the version.
func IsBusy(err error) bool { return errors.Is(err, ErrBusy) }

// MarkTranscoding records that worker has started producing version and takes the lease on it. It may be
// called again by the same worker, and by another worker once the holder's last heartbeat is older than
// leaseTTL. IsBusy while another worker's lease is fresh; IsConflict if version is not the pending one.
func (c *Catalog) MarkTranscoding(ctx context.Context, lectureID string, version int, worker string, leaseTTL time.Duration) error {
	if err := checkVersion(version); err != nil {
		return err
	}
	if worker == "" || leaseTTL <= 0 {
		return fmt.Errorf("%w: worker id %q, lease %s", ErrInvalid, worker, leaseTTL)
	}
	t := now()
	return c.transition(ctx, "mark transcoding", "", lectureID, version, worker,
		`UPDATE lectures SET status = $4, progress = 0, eta_seconds = 0, error_reason = '', updated_at = $5,
			worker_id = $3, heartbeat_at = $5
		WHERE id = $1 AND pending_version = $2 AND (worker_id = '' OR worker_id = $3 OR heartbeat_at < $6)`,
		string(StatusTranscoding), millis(t), millis(t.Add(-leaseTTL)))
}

// SetProgress records how far worker's transcode of version is (percent is clamped to 0..100; etaSeconds
// < 0 means unknown) and renews its lease. IsConflict if version is not the pending one or worker no
// longer holds the lease (it was presumed dead and another worker took over): stop, the other one finishes.
func (c *Catalog) SetProgress(ctx context.Context, lectureID string, version int, worker string, percent, etaSeconds float64) error {
	if err := checkVersion(version); err != nil {
		return err
	}
	if math.IsNaN(percent) || math.IsInf(percent, 0) {
		return fmt.Errorf("%w: progress %v", ErrInvalid, percent)
	}
	percent = min(max(percent, 0), 100)
	if math.IsNaN(etaSeconds) || math.IsInf(etaSeconds, 0) || etaSeconds < 0 {
		etaSeconds = 0
	}
	return c.transition(ctx, "set progress", "", lectureID, version, worker,
		`UPDATE lectures SET progress = $4, eta_seconds = $5, updated_at = $6, heartbeat_at = $6
		WHERE id = $1 AND pending_version = $2 AND worker_id = $3`,
		percent, etaSeconds, millis(now()))
}

// Publication is what a worker publishes with a version.
type Publication struct {
	DurationSeconds float64
	Renditions      []Rendition
	Assets          Assets
}

// PublishVersion makes version the one players get: status ready, progress 100, with its duration,
// renditions and assets. Call it LAST, after every object of the version is in the object store.
// IsConflict if version is not the pending one (a newer upload superseded it, or it was failed) or
// worker does not hold its lease.
func (c *Catalog) PublishVersion(ctx context.Context, lectureID string, version int, worker string, p Publication) error {
	if err := checkVersion(version); err != nil {
		return err
	}
	renditions := p.Renditions
	if renditions == nil {
		renditions = []Rendition{}
	}
	js, err := json.Marshal(renditions)
	if err != nil {
		return fmt.Errorf("catalog: publish lecture %q: renditions: %w", lectureID, err)
	}
	assets, err := json.Marshal(p.Assets)
	if err != nil {
		return fmt.Errorf("catalog: publish lecture %q: assets: %w", lectureID, err)
	}
	if d := p.DurationSeconds; math.IsNaN(d) || math.IsInf(d, 0) || d < 0 {
		return fmt.Errorf("%w: duration %v", ErrInvalid, d)
	}
	return c.transition(ctx, "publish", EventLectureReady, lectureID, version, worker,
		`UPDATE lectures SET version = pending_version, pending_version = 0, status = $4, progress = 100,
			eta_seconds = 0, error_reason = '', duration_seconds = $5, renditions = $6, assets = $7, updated_at = $8,
			worker_id = '', heartbeat_at = 0
		WHERE id = $1 AND pending_version = $2 AND worker_id = $3`,
		string(StatusReady), p.DurationSeconds, string(js), string(assets), millis(now()))
}

// FailLecture records that producing version failed for good: status failed with reason, nothing pending.
// A previously published Version stays published and playable. Pass version 0 to fail a lecture that has
// nothing pending (e.g. its upload could not be stored). IsConflict if version is not the pending one.
func (c *Catalog) FailLecture(ctx context.Context, lectureID string, version int, reason string) error {
	reason = truncateUTF8(strings.TrimSpace(reason), maxReasonLen)
	if reason == "" {
		reason = "unknown error"
	}
	return c.transition(ctx, "fail", EventLectureFailed, lectureID, version, "",
		`UPDATE lectures SET status = $4, error_reason = $5, pending_version = 0, eta_seconds = 0, updated_at = $6,
			worker_id = '', heartbeat_at = 0
		WHERE id = $1 AND pending_version = $2 AND (worker_id = $3 OR $3 = '')`,
		string(StatusFailed), reason, millis(now()))
}

// transition runs a guarded UPDATE (its $1 is the lecture id, $2 the expected pending version, $3 the
// worker) and, when it matched nothing, tells a missing lecture (IsNotFound) from a stale version
// (IsConflict) and, for MarkTranscoding, a lease held by another worker (IsBusy). With Options.Events, a
// change that webhooks report (event != "") records the event in the same transaction.
func (c *Catalog) transition(ctx context.Context, what, event, lectureID string, version int, worker, query string, args ...any) error {
	args = append([]any{lectureID, version, worker}, args...)
	var err error
	if event == "" || !c.events {
		err = guarded(ctx, c.b.db(), what, lectureID, version, worker, query, args)
	} else {
		err = c.b.inTx(ctx, func(q dbtx, insert insertFunc) error {
			if err := guarded(ctx, q, what, lectureID, version, worker, query, args); err != nil {
				return err
			}
			failed := 0
			if event == EventLectureFailed {
				failed = version
			}
			return c.recordEvent(ctx, q, insert, event, lectureID, failed)
		})
	}
	if err != nil {
		return fmt.Errorf("catalog: %s lecture %q v%d: %w", what, lectureID, version, err)
	}
	return nil
}

// guarded runs transition's UPDATE on q and explains a miss.
func guarded(ctx context.Context, q dbtx, what, lectureID string, version int, worker, query string, args []any) error {
	n, err := q.exec(ctx, query, args...)
	if err != nil {
		return err
	}
	if n > 0 {
		return nil
	}
	var pending int
	var holder string
	if err := q.queryRow(ctx, `SELECT pending_version, worker_id FROM lectures WHERE id = $1`, lectureID).Scan(&pending, &holder); err != nil {
		return err
	}
	if pending != version {
		return fmt.Errorf("pending version is %d: %w", pending, ErrConflict)
	}
	if what == "mark transcoding" {
		return fmt.Errorf("worker %q holds the lease: %w", holder, ErrBusy)
	}
	return fmt.Errorf("worker %q holds the lease, not %q: %w", holder, worker, ErrConflict)
}

// checkVersion rejects version 0 where a job's version is expected: 0 means "nothing pending".
func checkVersion(version int) error {
	if version <= 0 {
		return fmt.Errorf("%w: version %d (versions start at 1)", ErrInvalid, version)
	}
	return nil
}

func truncateUTF8(s string, n int) string {
	if len(s) <= n {
		return s
	}
	s = s[:n]
	// Drop the bytes of a rune the cut went through.
	for len(s) > 0 {
		if r, size := utf8.DecodeLastRuneInString(s); r != utf8.RuneError || size > 1 {
			break
		}
		s = s[:len(s)-1]
	}
	return s
}
