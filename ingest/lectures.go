package ingest

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"regexp"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/gin-gonic/gin"

	"github.com/lectern/lectern/internal/catalog"
	"github.com/lectern/lectern/internal/objstore"
	"github.com/lectern/lectern/internal/playtoken"
)

// Limits on lecture fields, checked with messages that say which field is wrong.
const (
	maxTitleLen       = 200
	maxDescriptionLen = 5000
	maxCaptionsBytes  = 2 << 20
)

// newLectureRequest is the JSON body of POST /api/v1/lectures.
type newLectureRequest struct {
	Title       string `json:"title"`
	Course      string `json:"course"`
	Description string `json:"description"`
	Profile     string `json:"profile"`
}

// decodeJSON reads a small JSON body strictly: unknown fields are mistakes worth reporting.
func decodeJSON(c *gin.Context, v any) *Error {
	dec := json.NewDecoder(http.MaxBytesReader(c.Writer, c.Request.Body, 64<<10))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return apiError(400, "bad_json", "the request body is not the JSON this endpoint takes: %v", err)
	}
	if dec.More() {
		return apiError(400, "bad_json", "the request body has more than one JSON value")
	}
	return nil
}

func checkTitle(title string) *Error {
	switch {
	case title == "":
		return apiError(400, "missing_title", "a lecture needs a title")
	case len(title) > maxTitleLen:
		return apiError(400, "title_too_long", "the title is longer than %d characters", maxTitleLen)
	case !utf8.ValidString(title):
		return apiError(400, "bad_title", "the title is not valid UTF-8")
	}
	return nil
}

func checkDescription(d string) *Error {
	if len(d) > maxDescriptionLen || !utf8.ValidString(d) {
		return apiError(400, "bad_description", "the description must be UTF-8 text of at most %d bytes", maxDescriptionLen)
	}
	return nil
}

// createEmptyLecture creates a lecture that waits for its upload (POST /api/v1/lectures with JSON).
func (s *Service) createEmptyLecture(c *gin.Context) {
	var req newLectureRequest
	if e := decodeJSON(c, &req); e != nil {
		writeError(c, e)
		return
	}
	req.Title, req.Course = strings.TrimSpace(req.Title), strings.TrimSpace(req.Course)
	if e := checkTitle(req.Title); e != nil {
		writeError(c, e)
		return
	}
	if e := checkDescription(req.Description); e != nil {
		writeError(c, e)
		return
	}
	if req.Course == "" {
		req.Course = "General"
	}
	if len(req.Course) > maxTitleLen {
		writeError(c, apiError(400, "course_too_long", "the course name is longer than %d characters", maxTitleLen))
		return
	}
	ctx := c.Request.Context()
	t := teacherOf(c)
	course, err := s.cfg.Catalog.EnsureCourse(ctx, t.ID, req.Course)
	if err != nil {
		s.internalError(c, err)
		return
	}
	l, err := s.cfg.Catalog.CreateLecture(ctx, catalog.NewLecture{
		TeacherID: t.ID, CourseID: course.ID, Title: req.Title, Description: req.Description, Profile: req.Profile,
	})
	if catalog.IsInvalid(err) {
		writeError(c, apiError(400, "bad_profile", "profile %q: use a profile name such as \"lecture\", \"screencast\" or \"motion\"", req.Profile))
		return
	}
	if err != nil {
		s.internalError(c, err)
		return
	}
	c.Header("Location", "/api/v1/lectures/"+l.ID)
	c.JSON(201, s.detailJSON(ctx, l))
}

// updateLectureRequest is the JSON body of PATCH /api/v1/lectures/:id; absent fields stay as they are.
type updateLectureRequest struct {
	Title       *string `json:"title"`
	Description *string `json:"description"`
}

func (s *Service) updateLecture(c *gin.Context) {
	l, ok := s.ownLecture(c)
	if !ok {
		return
	}
	var req updateLectureRequest
	if e := decodeJSON(c, &req); e != nil {
		writeError(c, e)
		return
	}
	if req.Title == nil && req.Description == nil {
		writeError(c, apiError(400, "nothing_to_change", "send {\"title\": ...} and/or {\"description\": ...}"))
		return
	}
	ctx := c.Request.Context()
	if req.Title != nil {
		title := strings.TrimSpace(*req.Title)
		if e := checkTitle(title); e != nil {
			writeError(c, e)
			return
		}
		if err := s.cfg.Catalog.RenameLecture(ctx, l.ID, title); err != nil {
			s.lectureGoneOr500(c, l.ID, err)
			return
		}
	}
	if req.Description != nil {
		if e := checkDescription(*req.Description); e != nil {
			writeError(c, e)
			return
		}
		if err := s.cfg.Catalog.DescribeLecture(ctx, l.ID, *req.Description); err != nil {
			s.lectureGoneOr500(c, l.ID, err)
			return
		}
	}
	l, err := s.cfg.Catalog.GetLecture(ctx, l.ID)
	if err != nil {
		s.lectureGoneOr500(c, l.ID, err)
		return
	}
	c.JSON(200, s.detailJSON(ctx, l))
}

func (s *Service) lectureGoneOr500(c *gin.Context, id string, err error) {
	if catalog.IsNotFound(err) {
		writeError(c, apiError(404, "not_found", "no lecture %q among your lectures", id))
		return
	}
	s.internalError(c, err)
}

// deleteLecture removes a lecture: unfinished uploads, every object (sources and all versions), the
// catalog row, then tells the edges to drop what they cached. A transcode still running for it finds
// the lecture gone and gives up.
func (s *Service) deleteLecture(c *gin.Context) {
	l, ok := s.ownLecture(c)
	if !ok {
		return
	}
	// Once started, a delete runs to the end even if the teacher's connection drops: objects and the
	// edge purge must follow the row.
	if err := s.DeleteLecture(context.WithoutCancel(c.Request.Context()), l.ID); err != nil {
		s.lectureGoneOr500(c, l.ID, err)
		return
	}
	c.Status(http.StatusNoContent)
}

// DeleteLecture removes a lecture and everything it owns; see deleteLecture.
func (s *Service) DeleteLecture(ctx context.Context, id string) error {
	ups, err := s.cfg.Catalog.ListUploads(ctx, id)
	if err != nil {
		return err
	}
	for _, up := range ups {
		if err := s.cfg.Catalog.EndUpload(ctx, up.ID, catalog.UploadCancelled, "lecture deleted"); err == nil {
			s.stats.UploadsCancelled.Add(1)
		}
		if err := s.tus.store.discard(ctx, s.tus.storeID(up)); err != nil {
			return err
		}
	}
	// The row goes first: from then on nobody can see the lecture, a worker cannot publish into it, and
	// a failure below leaves only unreachable objects, not a lecture with missing parts.
	if err := s.cfg.Catalog.DeleteLecture(ctx, id); err != nil {
		return err
	}
	var errs []error
	if err := s.tus.store.removeLecture(ctx, id); err != nil {
		errs = append(errs, err)
	}
	for _, prefix := range []string{"hls/" + id + "/", sourcePrefix + id + "/"} {
		if err := s.cfg.Store.DeletePrefix(ctx, prefix); err != nil {
			errs = append(errs, err)
		}
	}
	if s.cfg.Purger != nil {
		if err := s.cfg.Purger.Purge(ctx, "/hls/"+id+"/"); err != nil {
			// The objects are gone from storage; an edge that missed the purge serves its copy until it
			// is evicted. Logged, not fatal: the teacher's delete did happen.
			s.log.Warn("purge edges", "lecture", id, "err", err)
		}
	}
	s.log.Info("lecture deleted", "lecture", id)
	if len(errs) > 0 {
		s.log.Warn("delete lecture objects", "lecture", id, "err", errors.Join(errs...))
	}
	return nil
}

var languageTag = regexp.MustCompile(`^[A-Za-z]{2,8}(-[A-Za-z0-9]{1,8})*$`)

// putCaptions attaches WebVTT captions (the request body). A lecture with a source gets a new version
// with them (the current one keeps playing); one still waiting for its video uses them for the first.
func (s *Service) putCaptions(c *gin.Context) {
	l, ok := s.ownLecture(c)
	if !ok {
		return
	}
	lang := c.DefaultQuery("language", "en")
	if !languageTag.MatchString(lang) {
		writeError(c, apiError(400, "bad_language", "language=%q is not a language tag like \"en\" or \"ko-KR\"", lang))
		return
	}
	body, err := io.ReadAll(io.LimitReader(c.Request.Body, maxCaptionsBytes+1))
	if err != nil {
		writeError(c, apiError(400, "upload_interrupted", "the captions upload was interrupted: try again"))
		return
	}
	if len(body) > maxCaptionsBytes {
		writeError(c, apiError(413, "captions_too_large", "captions are limited to %d MiB", maxCaptionsBytes>>20))
		return
	}
	if e := checkWebVTT(body); e != nil {
		writeError(c, e)
		return
	}
	ctx := c.Request.Context()
	key := sourcePrefix + l.ID + "/captions-" + randomID() + ".vtt"
	if err := s.cfg.Store.PutBytes(ctx, key, body, objstore.PutOptions{ContentType: "text/vtt; charset=utf-8"}); err != nil {
		s.internalError(c, err)
		return
	}
	if _, err := s.cfg.Catalog.SetCaptions(ctx, l.ID, key, lang); err != nil {
		_ = s.cfg.Store.Delete(context.WithoutCancel(ctx), key)
		s.lectureGoneOr500(c, l.ID, err)
		return
	}
	l, err = s.cfg.Catalog.GetLecture(ctx, l.ID)
	if err != nil {
		s.lectureGoneOr500(c, l.ID, err)
		return
	}
	c.JSON(200, s.detailJSON(ctx, l))
}

func (s *Service) deleteCaptions(c *gin.Context) {
	l, ok := s.ownLecture(c)
	if !ok {
		return
	}
	if l.CaptionsKey == "" {
		writeError(c, apiError(404, "no_captions", "this lecture has no captions"))
		return
	}
	if _, err := s.cfg.Catalog.SetCaptions(c.Request.Context(), l.ID, "", ""); err != nil {
		s.lectureGoneOr500(c, l.ID, err)
		return
	}
	c.Status(http.StatusNoContent)
}

// checkWebVTT accepts a UTF-8 file that starts with the WEBVTT signature (after an optional BOM).
func checkWebVTT(b []byte) *Error {
	if !utf8.Valid(b) {
		return apiError(422, "invalid_captions", "captions must be a UTF-8 WebVTT (.vtt) file")
	}
	t := strings.TrimPrefix(string(b), "\ufeff")
	if !strings.HasPrefix(t, "WEBVTT") || (len(t) > 6 && !strings.ContainsRune(" \t\r\n", rune(t[6]))) {
		return apiError(422, "invalid_captions", "captions must be a WebVTT file: the first line must be \"WEBVTT\" (convert .srt files first)")
	}
	if !strings.Contains(t, "-->") {
		return apiError(422, "invalid_captions", "the WebVTT file has no cues (lines like \"00:00:01.000 --> 00:00:04.000\")")
	}
	return nil
}

// lectureJSON is a lecture as the API shows it.
type lectureJSON struct {
	ID              string              `json:"id"`
	Title           string              `json:"title"`
	Description     string              `json:"description,omitempty"`
	CourseID        string              `json:"course_id"`
	Status          catalog.Status      `json:"status"`
	Progress        float64             `json:"progress"`
	ETASeconds      float64             `json:"eta_seconds,omitempty"`
	Error           string              `json:"error,omitempty"`
	Version         int                 `json:"version"`
	PendingVersion  int                 `json:"pending_version,omitempty"`
	Profile         string              `json:"profile"`
	DurationSeconds float64             `json:"duration_seconds,omitempty"`
	Renditions      []catalog.Rendition `json:"renditions"`
	PlaybackURL     string              `json:"playback_url,omitempty"`
	PlaybackExpires *time.Time          `json:"playback_expires_at,omitempty"`
	PosterURL       string              `json:"poster_url,omitempty"`
	ChaptersURL     string              `json:"chapters_url,omitempty"`
	ChapterCount    int                 `json:"chapter_count"`
	Captions        bool                `json:"captions"`
	CaptionsLang    string              `json:"captions_language,omitempty"`
	WatchURL        string              `json:"watch_url"`
	Upload          *uploadJSON         `json:"upload,omitempty"`
	CreatedAt       time.Time           `json:"created_at"`
	UpdatedAt       time.Time           `json:"updated_at"`
}

// uploadJSON is an unfinished upload of a lecture.
type uploadJSON struct {
	URL       string    `json:"url"`
	Filename  string    `json:"filename,omitempty"`
	Offset    int64     `json:"offset"`
	Size      int64     `json:"size"`
	ExpiresAt time.Time `json:"expires_at"`
}

func (s *Service) toJSON(ctx context.Context, l catalog.Lecture) lectureJSON {
	j := lectureJSON{
		ID: l.ID, Title: l.Title, Description: l.Description, CourseID: l.CourseID, Status: l.Status,
		Progress: l.Progress, ETASeconds: l.ETASeconds, Error: l.ErrorReason, Version: l.Version,
		PendingVersion: l.PendingVersion, Profile: l.Profile,
		DurationSeconds: l.DurationSeconds, Renditions: l.Renditions, WatchURL: "/watch/" + l.ID,
		ChapterCount: l.Assets.ChapterCount, Captions: l.CaptionsKey != "", CaptionsLang: l.CaptionsLanguage,
		CreatedAt: l.CreatedAt, UpdatedAt: l.UpdatedAt,
	}
	if j.Renditions == nil {
		j.Renditions = []catalog.Rendition{}
	}
	if l.Version > 0 {
		base, expires := s.playbackPrefix(ctx, l)
		j.PlaybackURL = base + "master.m3u8"
		if !expires.IsZero() {
			j.PlaybackExpires = &expires
		}
		if l.Assets.Poster != "" {
			j.PosterURL = base + l.Assets.Poster
		}
		if l.Assets.Chapters != "" {
			j.ChaptersURL = base + l.Assets.Chapters
		}
	}
	return j
}

// detailJSON is toJSON plus the lecture's unfinished upload, read from the tus store (one lecture at
// a time: it costs a store lookup).
func (s *Service) detailJSON(ctx context.Context, l catalog.Lecture) lectureJSON {
	j := s.toJSON(ctx, l)
	ups, err := s.cfg.Catalog.ListUploads(ctx, l.ID)
	if err != nil || len(ups) == 0 {
		return j
	}
	up := ups[len(ups)-1]
	u := &uploadJSON{URL: UploadsPath + s.tus.storeID(up), Filename: up.Filename, Size: up.Size, ExpiresAt: up.ExpiresAt}
	if info, err := s.tus.store.info(ctx, s.tus.storeID(up)); err == nil {
		u.Offset = info.Offset
	}
	j.Upload = u
	return j
}

// playbackPrefix is the directory of the published version's master playlist, ending in "/":
// /hls/{id}/v{n}/, or with signing keys /s/{token}/hls/{id}/v{n}/ and the token's expiry. Versioned,
// so every cache may keep what is under it for a year. The token's region is that of the teacher's
// school (Config.SchoolRegion).
func (s *Service) playbackPrefix(ctx context.Context, l catalog.Lecture) (string, time.Time) {
	path := "/hls/" + l.ID + "/v" + strconv.Itoa(l.Version) + "/"
	if len(s.cfg.PlaybackKeys) == 0 {
		return s.cfg.PlaybackBase + path, time.Time{}
	}
	// Whole minutes: URLs minted in the same minute are the same URL, so browsers cache them.
	expires := time.Now().Add(s.cfg.PlaybackTTL).Truncate(time.Minute).UTC()
	return s.cfg.PlaybackBase + "/s/" + playtoken.Mint(s.cfg.PlaybackKeys, l.ID, expires, s.playbackRegion(ctx, l.TeacherID)) + path, expires
}
