package catalog

import (
	"context"
	"encoding/json"
	"fmt"
	"math"
	"strings"
	"unicode/utf8"
)

// The transitions below are guarded by PendingVersion: each is allowed only for the version a job was
// enqueued for. When a teacher uploads a replacement, EnqueueTranscode moves PendingVersion on, and the
// job still working on the old version gets IsConflict from its next call: its result is stale and must
// not be published. Workers should treat IsConflict and IsNotFound (lecture deleted) as "stop, nothing to
// do", not as failures to retry.

// MarkTranscoding records that a worker has started producing version. It may be called again for the
// same version (a retried job). IsConflict if version is not the pending one.
func (c *Catalog) MarkTranscoding(ctx context.Context, lectureID string, version int) error {
	if err := checkVersion(version); err != nil {
		return err
	}
	return c.transition(ctx, "mark transcoding", lectureID, version,
		`UPDATE lectures SET status = $3, progress = 0, eta_seconds = 0, error_reason = '', updated_at = $4
		WHERE id = $1 AND pending_version = $2`,
		string(StatusTranscoding), millis(now()))
}

// SetProgress records how far the transcode of version is (percent is clamped to 0..100; etaSeconds < 0
// means unknown). IsConflict if version is not the pending one.
func (c *Catalog) SetProgress(ctx context.Context, lectureID string, version int, percent, etaSeconds float64) error {
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
	return c.transition(ctx, "set progress", lectureID, version,
		`UPDATE lectures SET progress = $3, eta_seconds = $4, updated_at = $5 WHERE id = $1 AND pending_version = $2`,
		percent, etaSeconds, millis(now()))
}

// PublishVersion makes version the one players get: status ready, progress 100, with its duration and
// renditions. Call it LAST, after every object of the version is in the object store. IsConflict if
// version is not the pending one (a newer upload superseded it, or it was failed).
func (c *Catalog) PublishVersion(ctx context.Context, lectureID string, version int, durationSeconds float64, renditions []Rendition) error {
	if err := checkVersion(version); err != nil {
		return err
	}
	if renditions == nil {
		renditions = []Rendition{}
	}
	js, err := json.Marshal(renditions)
	if err != nil {
		return fmt.Errorf("catalog: publish lecture %q: renditions: %w", lectureID, err)
	}
	if math.IsNaN(durationSeconds) || math.IsInf(durationSeconds, 0) || durationSeconds < 0 {
		return fmt.Errorf("%w: duration %v", ErrInvalid, durationSeconds)
	}
	return c.transition(ctx, "publish", lectureID, version,
		`UPDATE lectures SET version = pending_version, pending_version = 0, status = $3, progress = 100,
			eta_seconds = 0, error_reason = '', duration_seconds = $4, renditions = $5, updated_at = $6
		WHERE id = $1 AND pending_version = $2`,
		string(StatusReady), durationSeconds, string(js), millis(now()))
}

// FailLecture records that producing version failed for good: status failed with reason, nothing pending.
// A previously published Version stays published and playable. Pass version 0 to fail a lecture that has
// nothing pending (e.g. its upload could not be stored). IsConflict if version is not the pending one.
func (c *Catalog) FailLecture(ctx context.Context, lectureID string, version int, reason string) error {
	reason = truncateUTF8(strings.TrimSpace(reason), maxReasonLen)
	if reason == "" {
		reason = "unknown error"
	}
	return c.transition(ctx, "fail", lectureID, version,
		`UPDATE lectures SET status = $3, error_reason = $4, pending_version = 0, eta_seconds = 0, updated_at = $5
		WHERE id = $1 AND pending_version = $2`,
		string(StatusFailed), reason, millis(now()))
}

// transition runs a guarded UPDATE (its $1 is the lecture id, $2 the expected pending version) and, when
// it matched nothing, tells a missing lecture (IsNotFound) from a stale version (IsConflict).
func (c *Catalog) transition(ctx context.Context, what, lectureID string, version int, query string, args ...any) error {
	q := c.b.db()
	n, err := q.exec(ctx, query, append([]any{lectureID, version}, args...)...)
	if err != nil {
		return fmt.Errorf("catalog: %s lecture %q v%d: %w", what, lectureID, version, err)
	}
	if n > 0 {
		return nil
	}
	var pending int
	if err := q.queryRow(ctx, `SELECT pending_version FROM lectures WHERE id = $1`, lectureID).Scan(&pending); err != nil {
		return fmt.Errorf("catalog: %s lecture %q v%d: %w", what, lectureID, version, err)
	}
	return fmt.Errorf("catalog: %s lecture %q v%d: pending version is %d: %w", what, lectureID, version, pending, ErrConflict)
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
