package catalog

import (
	"context"
	"encoding/json"
	"fmt"
	"regexp"
	"strconv"
	"strings"
	"time"
)

// Status is where a lecture is in its life: awaiting_upload -> queued -> transcoding -> ready | failed.
// A ready or failed lecture goes back to queued when a new source is uploaded; an upload rejected by
// validation makes it failed (a published version, if any, keeps playing).
type Status string

const (
	StatusAwaitingUpload Status = "awaiting_upload" // created; no valid source uploaded yet
	StatusQueued         Status = "queued"          // a transcode job for PendingVersion is waiting
	StatusTranscoding    Status = "transcoding"     // a worker is producing PendingVersion
	StatusReady          Status = "ready"           // Version is published and playable
	StatusFailed         Status = "failed"          // the last transcode failed; Version (if any) still plays
)

// Rendition describes one variant stream of a published version, as the master playlist advertises it.
type Rendition struct {
	Name             string  `json:"name"`
	Width            int     `json:"width"`
	Height           int     `json:"height"`
	Bandwidth        int     `json:"bandwidth"`
	AverageBandwidth int     `json:"average_bandwidth"`
	Codecs           string  `json:"codecs"`
	FrameRate        float64 `json:"frame_rate"`
}

// Lecture is one video. Version is what players get (hls/{ID}/v{Version}/master.m3u8; 0 = nothing yet),
// PendingVersion what a job is producing. Version numbers only grow and are never reused, so objects under
// a v{n}/ prefix are immutable once published and a stale job can never publish over a newer upload.
type Lecture struct {
	ID, CourseID, TeacherID, Title, Description string

	Status      Status
	Progress    float64 // 0..100, of the transcode of PendingVersion
	ETASeconds  float64 // estimated seconds left in that transcode; 0 = unknown
	ErrorReason string  // why the last transcode failed (StatusFailed)

	Version         int    // published version; 0 = none yet
	PendingVersion  int    // version being produced; 0 = none
	SourceKey       string // objstore key of the newest source
	DurationSeconds float64
	Renditions      []Rendition
	// Assets are the published version's extras (poster, chapters, captions); zero before the first publish.
	Assets Assets

	// Profile is the transcode profile of the next version ("lecture" unless the teacher picked another).
	Profile string
	// CaptionsKey is the objstore key of the WebVTT captions uploaded with the newest source ("" = none),
	// and CaptionsLanguage their RFC 5646 language tag ("" = unknown).
	CaptionsKey, CaptionsLanguage string
	// SourceSeconds is the newest source's duration as probed at upload (0 = unknown); it sizes job timeouts.
	SourceSeconds float64

	CreatedAt, UpdatedAt time.Time
}

// Assets are the files a published version has besides its HLS renditions, as paths relative to its
// hls/{lecture}/v{n}/ prefix ("" = the version has none).
type Assets struct {
	// Poster is a still image for the player before playback (video) or the whole time (audio only).
	Poster string `json:"poster,omitempty"`
	// Chapters is a WebVTT file of slide chapters, ChapterCount its number of cues; each cue's identifier
	// is the path of its thumbnail.
	Chapters     string `json:"chapters,omitempty"`
	ChapterCount int    `json:"chapter_count,omitempty"`
	// Captions is the SUBTITLES media playlist, present when captions were uploaded.
	Captions string `json:"captions,omitempty"`
	// Profile is the transcode profile the version was made with.
	Profile string `json:"profile,omitempty"`
}

// Playable reports whether some version is published (it may be ready, or being replaced, or failed).
func (l Lecture) Playable() bool { return l.Version > 0 }

// NewLecture is what CreateLecture needs. CourseID may be empty (a lecture outside any course); when set it
// must name a course of TeacherID.
type NewLecture struct {
	TeacherID, CourseID, Title, Description string
	// Profile is the transcode profile name; "" means DefaultProfile. The catalog checks its shape only:
	// which profiles exist is the transcoder's business.
	Profile string
}

// DefaultProfile is the transcode profile of a lecture that did not ask for one.
const DefaultProfile = "lecture"

var profileName = regexp.MustCompile(`^[a-z0-9][a-z0-9-]{0,31}$`)

// checkProfile returns the profile to store, DefaultProfile for "".
func checkProfile(p string) (string, error) {
	if p == "" {
		return DefaultProfile, nil
	}
	if !profileName.MatchString(p) {
		return "", fmt.Errorf("%w: profile %q: want 1-32 of [a-z0-9-]", ErrInvalid, p)
	}
	return p, nil
}

// ListFilter selects lectures for ListLectures. Empty fields match everything.
type ListFilter struct {
	TeacherID string
	CourseID  string
	Status    Status
	// Published keeps lectures that have a published version, whatever their status: a lecture whose
	// next version is being made (queued, transcoding, or failed) still plays the last one.
	Published bool
	// Limit caps the page size; <= 0 or more than MaxListLimit means MaxListLimit.
	Limit int
	// After is the id of the last lecture of the previous page; the next page starts after it in
	// (CreatedAt, ID) order. An unknown id is an error for which IsNotFound is true.
	After string
}

// MaxListLimit is the largest page ListLectures returns.
const MaxListLimit = 1000

// maxReasonLen bounds stored failure reasons: a worker may hand over a whole ffmpeg log.
const maxReasonLen = 4096

const lectureColumns = `id, teacher_id, COALESCE(course_id, ''), title, description, status, progress, eta_seconds,
	error_reason, version, pending_version, source_key, duration_seconds, renditions, assets, profile, captions_key,
	captions_language, source_seconds, created_at, updated_at`

func scanLecture(r row) (Lecture, error) {
	var l Lecture
	var status, renditions, assets string
	var created, updated int64
	err := r.Scan(&l.ID, &l.TeacherID, &l.CourseID, &l.Title, &l.Description, &status, &l.Progress, &l.ETASeconds,
		&l.ErrorReason, &l.Version, &l.PendingVersion, &l.SourceKey, &l.DurationSeconds, &renditions, &assets,
		&l.Profile, &l.CaptionsKey, &l.CaptionsLanguage, &l.SourceSeconds, &created, &updated)
	if err != nil {
		return Lecture{}, err
	}
	l.Status = Status(status)
	l.CreatedAt, l.UpdatedAt = fromMillis(created), fromMillis(updated)
	if renditions != "" && renditions != "[]" {
		if err := json.Unmarshal([]byte(renditions), &l.Renditions); err != nil {
			return Lecture{}, fmt.Errorf("lecture %s: renditions: %w", l.ID, err)
		}
	}
	if assets != "" && assets != "{}" {
		if err := json.Unmarshal([]byte(assets), &l.Assets); err != nil {
			return Lecture{}, fmt.Errorf("lecture %s: assets: %w", l.ID, err)
		}
	}
	return l, nil
}

// CreateLecture stores a new lecture with status awaiting_upload and no version. The teacher (and course, if
// given) must exist: IsNotFound otherwise; a course of another teacher is IsConflict.
func (c *Catalog) CreateLecture(ctx context.Context, nl NewLecture) (Lecture, error) {
	title := strings.TrimSpace(nl.Title)
	if title == "" {
		return Lecture{}, fmt.Errorf("%w: lecture title is empty", ErrInvalid)
	}
	profile, err := checkProfile(nl.Profile)
	if err != nil {
		return Lecture{}, err
	}
	t := now()
	l := Lecture{
		ID: newID(), TeacherID: nl.TeacherID, CourseID: nl.CourseID, Title: title, Description: nl.Description,
		Status: StatusAwaitingUpload, Profile: profile, CreatedAt: t, UpdatedAt: t,
	}
	err = c.b.inTx(ctx, func(q dbtx, _ insertFunc) error {
		var one int
		if err := q.queryRow(ctx, `SELECT 1 FROM teachers WHERE id = $1`, nl.TeacherID).Scan(&one); err != nil {
			return fmt.Errorf("teacher %q: %w", nl.TeacherID, err)
		}
		var course any // NULL when the lecture is in no course
		if nl.CourseID != "" {
			var owner string
			if err := q.queryRow(ctx, `SELECT teacher_id FROM courses WHERE id = $1`, nl.CourseID).Scan(&owner); err != nil {
				return fmt.Errorf("course %q: %w", nl.CourseID, err)
			}
			if owner != nl.TeacherID {
				return fmt.Errorf("course %q belongs to another teacher: %w", nl.CourseID, ErrConflict)
			}
			course = nl.CourseID
		}
		_, err := q.exec(ctx, `INSERT INTO lectures (id, teacher_id, course_id, title, description, status,
			renditions, profile, created_at, updated_at) VALUES ($1, $2, $3, $4, $5, $6, '[]', $7, $8, $8)`,
			l.ID, l.TeacherID, course, l.Title, l.Description, string(l.Status), l.Profile, millis(t))
		return err
	})
	if err != nil {
		return Lecture{}, fmt.Errorf("catalog: create lecture: %w", err)
	}
	return l, nil
}

// GetLecture returns a lecture, or an error for which IsNotFound is true.
func (c *Catalog) GetLecture(ctx context.Context, id string) (Lecture, error) {
	l, err := scanLecture(c.b.db().queryRow(ctx, `SELECT `+lectureColumns+` FROM lectures WHERE id = $1`, id))
	if err != nil {
		return Lecture{}, fmt.Errorf("catalog: lecture %q: %w", id, err)
	}
	return l, nil
}

// ListLectures returns one page of lectures matching f, oldest first (by CreatedAt, then ID). Pass the
// last lecture's ID as f.After to get the next page; a page shorter than the limit is the last one.
func (c *Catalog) ListLectures(ctx context.Context, f ListFilter) ([]Lecture, error) {
	var conds []string
	var args []any
	arg := func(v any) string {
		args = append(args, v)
		return "$" + strconv.Itoa(len(args))
	}
	if f.TeacherID != "" {
		conds = append(conds, "teacher_id = "+arg(f.TeacherID))
	}
	if f.CourseID != "" {
		conds = append(conds, "course_id = "+arg(f.CourseID))
	}
	if f.Status != "" {
		conds = append(conds, "status = "+arg(string(f.Status)))
	}
	if f.Published {
		conds = append(conds, "version > 0")
	}
	if f.After != "" {
		var after int64
		if err := c.b.db().queryRow(ctx, `SELECT created_at FROM lectures WHERE id = $1`, f.After).Scan(&after); err != nil {
			return nil, fmt.Errorf("catalog: list lectures: cursor %q: %w", f.After, err)
		}
		ts, id := arg(after), arg(f.After)
		conds = append(conds, "(created_at > "+ts+" OR (created_at = "+ts+" AND id > "+id+"))")
	}
	limit := f.Limit
	if limit <= 0 || limit > MaxListLimit {
		limit = MaxListLimit
	}
	query := `SELECT ` + lectureColumns + ` FROM lectures`
	if len(conds) > 0 {
		query += ` WHERE ` + strings.Join(conds, " AND ")
	}
	query += ` ORDER BY created_at, id LIMIT ` + arg(limit)

	rs, err := c.b.db().query(ctx, query, args...)
	if err != nil {
		return nil, fmt.Errorf("catalog: list lectures: %w", err)
	}
	defer rs.Close()
	var out []Lecture
	for rs.Next() {
		l, err := scanLecture(rs)
		if err != nil {
			return nil, fmt.Errorf("catalog: list lectures: %w", err)
		}
		out = append(out, l)
	}
	if err := rs.Err(); err != nil {
		return nil, fmt.Errorf("catalog: list lectures: %w", err)
	}
	return out, nil
}

// CountLectures returns the number of lectures (for metrics and the admin page).
func (c *Catalog) CountLectures(ctx context.Context) (int, error) {
	var n int64
	if err := c.b.db().queryRow(ctx, `SELECT COUNT(*) FROM lectures`).Scan(&n); err != nil {
		return 0, fmt.Errorf("catalog: count lectures: %w", err)
	}
	return int(n), nil
}

// RenameLecture changes a lecture's title. IsNotFound if it does not exist.
func (c *Catalog) RenameLecture(ctx context.Context, id, title string) error {
	title = strings.TrimSpace(title)
	if title == "" {
		return fmt.Errorf("%w: lecture title is empty", ErrInvalid)
	}
	n, err := c.b.db().exec(ctx, `UPDATE lectures SET title = $2, updated_at = $3 WHERE id = $1`, id, title, millis(now()))
	if err != nil {
		return fmt.Errorf("catalog: rename lecture %q: %w", id, err)
	}
	if n == 0 {
		return fmt.Errorf("catalog: rename lecture %q: %w", id, ErrNotFound)
	}
	return nil
}

// DeleteLecture removes a lecture row. Its objects are the caller's to remove. A transcode job still
// queued for it finds the lecture gone (MarkTranscoding returns IsNotFound) and should give up.
func (c *Catalog) DeleteLecture(ctx context.Context, id string) error {
	n, err := c.b.db().exec(ctx, `DELETE FROM lectures WHERE id = $1`, id)
	if err != nil {
		return fmt.Errorf("catalog: delete lecture %q: %w", id, err)
	}
	if n == 0 {
		return fmt.Errorf("catalog: delete lecture %q: %w", id, ErrNotFound)
	}
	return nil
}

// DescribeLecture changes a lecture's description. IsNotFound if it does not exist.
func (c *Catalog) DescribeLecture(ctx context.Context, id, description string) error {
	n, err := c.b.db().exec(ctx, `UPDATE lectures SET description = $2, updated_at = $3 WHERE id = $1`, id, description, millis(now()))
	if err != nil {
		return fmt.Errorf("catalog: describe lecture %q: %w", id, err)
	}
	if n == 0 {
		return fmt.Errorf("catalog: describe lecture %q: %w", id, ErrNotFound)
	}
	return nil
}

// SetCaptions attaches WebVTT captions (an objstore key, "" to remove) in language to a lecture. When
// the lecture already has a source, a new version with these captions is queued in the same transaction
// and its number returned (the current version keeps playing); otherwise the captions wait for the
// first upload and 0 is returned.
func (c *Catalog) SetCaptions(ctx context.Context, lectureID, key, language string) (int, error) {
	if language != "" && !languageTag.MatchString(language) {
		return 0, fmt.Errorf("%w: captions language %q is not a language tag like \"en\" or \"ko-KR\"", ErrInvalid, language)
	}
	v, err := c.enqueue(ctx, lectureID, "", `captions_key = $4, captions_language = $5 WHERE source_key <> ''`, key, language)
	if err == nil {
		return v, nil
	}
	if !IsNotFound(err) {
		return 0, fmt.Errorf("catalog: set captions of lecture %q: %w", lectureID, err)
	}
	// No source yet (or no lecture): store the captions for the first upload.
	n, err := c.b.db().exec(ctx, `UPDATE lectures SET captions_key = $2, captions_language = $3, updated_at = $4 WHERE id = $1`,
		lectureID, key, language, millis(now()))
	if err != nil {
		return 0, fmt.Errorf("catalog: set captions of lecture %q: %w", lectureID, err)
	}
	if n == 0 {
		return 0, fmt.Errorf("catalog: set captions of lecture %q: %w", lectureID, ErrNotFound)
	}
	return 0, nil
}
