package ingest

import (
	"errors"
	"io"
	"mime"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/lectern/lectern/internal/catalog"
)

// Handler returns the ingest HTTP surface: the JSON API under /api/v1 and the pages.
func (s *Service) Handler() http.Handler {
	gin.SetMode(gin.ReleaseMode)
	r := gin.New()
	r.Use(gin.Recovery(), s.logRequests)
	r.HandleMethodNotAllowed = true
	r.NoRoute(func(c *gin.Context) {
		if strings.HasPrefix(c.Request.URL.Path, "/api/") {
			writeError(c, apiError(404, "not_found", "no such API endpoint: %s %s", c.Request.Method, c.Request.URL.Path))
			return
		}
		c.String(404, "not found\n")
	})
	r.NoMethod(func(c *gin.Context) {
		writeError(c, apiError(405, "method_not_allowed", "%s is not allowed here", c.Request.Method))
	})

	api := r.Group("/api/v1", s.requireTeacher)
	api.GET("/me", s.getMe)
	api.GET("/courses", s.listCourses)
	api.GET("/lectures", s.listLectures)
	api.POST("/lectures", s.createLecture)
	api.GET("/lectures/:id", s.getLecture)

	s.mountPages(r)
	return r
}

func (s *Service) logRequests(c *gin.Context) {
	start := time.Now()
	c.Next()
	s.log.Debug("request", "method", c.Request.Method, "path", c.Request.URL.Path,
		"status", c.Writer.Status(), "dur", time.Since(start))
}

const teacherKey = "lectern.teacher"

func (s *Service) requireTeacher(c *gin.Context) {
	h := c.GetHeader("Authorization")
	token, ok := strings.CutPrefix(h, "Bearer ")
	if !ok || strings.TrimSpace(token) == "" {
		writeError(c, apiError(401, "unauthorized", "missing API token: send the header \"Authorization: Bearer TOKEN\" (a token comes from `lectern teacher add NAME`)"))
		return
	}
	t, err := s.cfg.Catalog.TeacherByToken(c.Request.Context(), strings.TrimSpace(token))
	if catalog.IsNotFound(err) {
		writeError(c, apiError(401, "unauthorized", "unknown API token: check it, or create one with `lectern teacher add NAME`"))
		return
	}
	if err != nil {
		s.internalError(c, err)
		return
	}
	c.Set(teacherKey, t)
	c.Next()
}

func teacherOf(c *gin.Context) catalog.Teacher { return c.MustGet(teacherKey).(catalog.Teacher) }

func writeError(c *gin.Context, e *Error) {
	c.Header("Cache-Control", "no-store")
	c.AbortWithStatusJSON(e.Status, gin.H{"error": gin.H{"code": e.Code, "message": e.Message}})
}

func (s *Service) internalError(c *gin.Context, err error) {
	s.log.Error("request failed", "method", c.Request.Method, "path", c.Request.URL.Path, "err", err)
	writeError(c, apiError(500, "internal", "internal error; the server log has details"))
}

func (s *Service) fail(c *gin.Context, err error) {
	var e *Error
	if errors.As(err, &e) {
		writeError(c, e)
		return
	}
	s.internalError(c, err)
}

func (s *Service) getMe(c *gin.Context) {
	t := teacherOf(c)
	c.JSON(200, gin.H{"id": t.ID, "name": t.Name})
}

func (s *Service) listCourses(c *gin.Context) {
	cs, err := s.cfg.Catalog.ListCourses(c.Request.Context(), teacherOf(c).ID)
	if err != nil {
		s.internalError(c, err)
		return
	}
	out := make([]gin.H, 0, len(cs))
	for _, co := range cs {
		out = append(out, gin.H{"id": co.ID, "title": co.Title, "created_at": co.CreatedAt})
	}
	c.JSON(200, gin.H{"courses": out})
}

func (s *Service) listLectures(c *gin.Context) {
	limit := 50
	if v := c.Query("limit"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > 500 {
			writeError(c, apiError(400, "bad_limit", "limit must be a number from 1 to 500"))
			return
		}
		limit = n
	}
	ls, err := s.cfg.Catalog.ListLectures(c.Request.Context(), catalog.ListFilter{
		TeacherID: teacherOf(c).ID, CourseID: c.Query("course"), Limit: limit, After: c.Query("after"),
	})
	if err != nil {
		s.internalError(c, err)
		return
	}
	out := make([]lectureJSON, 0, len(ls))
	for _, l := range ls {
		out = append(out, s.toJSON(l))
	}
	resp := gin.H{"lectures": out}
	if len(ls) == limit {
		resp["next"] = ls[len(ls)-1].ID
	}
	c.JSON(200, resp)
}

func (s *Service) getLecture(c *gin.Context) {
	l, err := s.cfg.Catalog.GetLecture(c.Request.Context(), c.Param("id"))
	// Another teacher's lecture is indistinguishable from a missing one.
	if catalog.IsNotFound(err) || (err == nil && l.TeacherID != teacherOf(c).ID) {
		writeError(c, apiError(404, "not_found", "no lecture %q among your lectures", c.Param("id")))
		return
	}
	if err != nil {
		s.internalError(c, err)
		return
	}
	c.JSON(200, s.toJSON(l))
}

// createLecture accepts the file either as the raw request body (title, course, description as query
// parameters) or as multipart/form-data with those fields before a "file" part.
func (s *Service) createLecture(c *gin.Context) {
	c.Request.Body = http.MaxBytesReader(c.Writer, c.Request.Body, s.cfg.MaxUploadBytes+1<<20)
	meta := Meta{Title: c.Query("title"), Course: c.Query("course"), Description: c.Query("description")}
	var body io.Reader = c.Request.Body
	mt, _, _ := mime.ParseMediaType(c.GetHeader("Content-Type"))
	if mt == "multipart/form-data" {
		mr, err := c.Request.MultipartReader()
		if err != nil {
			writeError(c, apiError(400, "bad_multipart", "malformed multipart body: %v", err))
			return
		}
		body = nil
		for {
			p, err := mr.NextPart()
			if err == io.EOF {
				break
			}
			if err != nil {
				writeError(c, apiError(400, "bad_multipart", "malformed multipart body: %v", err))
				return
			}
			if p.FormName() == "file" {
				body = p
				break
			}
			v, _ := io.ReadAll(io.LimitReader(p, 4096))
			switch p.FormName() {
			case "title":
				meta.Title = string(v)
			case "course":
				meta.Course = string(v)
			case "description":
				meta.Description = string(v)
			}
		}
		if body == nil {
			writeError(c, apiError(400, "missing_file", "the form has no \"file\" part: attach the video as file=@lecture.mp4"))
			return
		}
	}
	l, err := s.Ingest(c.Request.Context(), teacherOf(c), meta, body)
	if err != nil {
		s.fail(c, err)
		return
	}
	c.Header("Location", "/api/v1/lectures/"+l.ID)
	c.JSON(201, s.toJSON(l))
}

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
	DurationSeconds float64             `json:"duration_seconds,omitempty"`
	Renditions      []catalog.Rendition `json:"renditions"`
	PlaybackURL     string              `json:"playback_url,omitempty"`
	WatchURL        string              `json:"watch_url"`
	CreatedAt       time.Time           `json:"created_at"`
	UpdatedAt       time.Time           `json:"updated_at"`
}

func (s *Service) toJSON(l catalog.Lecture) lectureJSON {
	j := lectureJSON{
		ID: l.ID, Title: l.Title, Description: l.Description, CourseID: l.CourseID, Status: l.Status,
		Progress: l.Progress, ETASeconds: l.ETASeconds, Error: l.ErrorReason, Version: l.Version,
		DurationSeconds: l.DurationSeconds, Renditions: l.Renditions, WatchURL: "/watch/" + l.ID,
		CreatedAt: l.CreatedAt, UpdatedAt: l.UpdatedAt,
	}
	if j.Renditions == nil {
		j.Renditions = []catalog.Rendition{}
	}
	if l.Version > 0 {
		j.PlaybackURL = s.playbackURL(l)
	}
	return j
}

// playbackURL is the versioned master playlist: immutable, so every cache may keep it for a year.
func (s *Service) playbackURL(l catalog.Lecture) string {
	return s.cfg.PlaybackBase + "/hls/" + l.ID + "/v" + strconv.Itoa(l.Version) + "/master.m3u8"
}
