package ingest

import (
	"encoding/json"
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

// Handler returns the ingest HTTP surface: the JSON API under /api/v1 (gin), the tus endpoint under
// UploadsPath (tusd, on a plain net/http path: it streams request bodies and sets read deadlines), and
// the pages.
func (s *Service) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.Handle(UploadsPath, s.tus)
	mux.Handle(strings.TrimSuffix(UploadsPath, "/"), s.tus)
	mux.Handle("/", s.ginHandler())
	return mux
}

func (s *Service) ginHandler() http.Handler {
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
	api.PATCH("/lectures/:id", s.updateLecture)
	api.DELETE("/lectures/:id", s.deleteLecture)
	api.PUT("/lectures/:id/captions", s.putCaptions)
	api.DELETE("/lectures/:id/captions", s.deleteCaptions)

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
	t, err := s.authenticate(c.Request)
	if err != nil {
		writeError(c, err)
		return
	}
	c.Set(teacherKey, t)
	c.Next()
}

// authenticate finds the teacher of the request's bearer token; the error is ready to send.
func (s *Service) authenticate(r *http.Request) (catalog.Teacher, *Error) {
	token, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
	if !ok || strings.TrimSpace(token) == "" {
		return catalog.Teacher{}, apiError(401, "unauthorized", "missing API token: send the header \"Authorization: Bearer TOKEN\" (a token comes from `lectern teacher add NAME`)")
	}
	t, err := s.cfg.Catalog.TeacherByToken(r.Context(), strings.TrimSpace(token))
	if catalog.IsNotFound(err) {
		return catalog.Teacher{}, apiError(401, "unauthorized", "unknown API token: check it, or create one with `lectern teacher add NAME`")
	}
	if err != nil {
		s.logError(r, err)
		return catalog.Teacher{}, apiError(500, "internal", "internal error; the server log has details")
	}
	return t, nil
}

func (s *Service) logError(r *http.Request, err error) {
	s.log.Error("request failed", "method", r.Method, "path", r.URL.Path, "err", err)
}

// writeJSONError writes e in the API's one error shape, outside gin.
func (s *Service) writeJSONError(w http.ResponseWriter, e *Error) {
	body, _ := json.Marshal(map[string]map[string]string{"error": {"code": e.Code, "message": e.Message}})
	h := w.Header()
	h.Set("Content-Type", "application/json; charset=utf-8")
	h.Set("Cache-Control", "no-store")
	h.Set("Tus-Resumable", "1.0.0")
	w.WriteHeader(e.Status)
	_, _ = w.Write(body)
}

func teacherOf(c *gin.Context) catalog.Teacher { return c.MustGet(teacherKey).(catalog.Teacher) }

func writeError(c *gin.Context, e *Error) {
	c.Header("Cache-Control", "no-store")
	c.AbortWithStatusJSON(e.Status, gin.H{"error": gin.H{"code": e.Code, "message": e.Message}})
}

func (s *Service) internalError(c *gin.Context, err error) {
	s.logError(c.Request, err)
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
	if catalog.IsNotFound(err) {
		writeError(c, apiError(400, "bad_cursor", "after=%q is not a lecture of yours: pass the \"next\" value of the previous page", c.Query("after")))
		return
	}
	if err != nil {
		s.internalError(c, err)
		return
	}
	out := make([]lectureJSON, 0, len(ls))
	for _, l := range ls {
		out = append(out, s.toJSON(c.Request.Context(), l))
	}
	resp := gin.H{"lectures": out}
	if len(ls) == limit {
		resp["next"] = ls[len(ls)-1].ID
	}
	c.JSON(200, resp)
}

func (s *Service) getLecture(c *gin.Context) {
	l, ok := s.ownLecture(c)
	if !ok {
		return
	}
	c.JSON(200, s.detailJSON(c.Request.Context(), l))
}

// ownLecture loads the :id lecture of the signed-in teacher, or writes the error and returns false.
// Another teacher's lecture is indistinguishable from a missing one.
func (s *Service) ownLecture(c *gin.Context) (catalog.Lecture, bool) {
	l, err := s.cfg.Catalog.GetLecture(c.Request.Context(), c.Param("id"))
	if catalog.IsNotFound(err) || (err == nil && l.TeacherID != teacherOf(c).ID) {
		writeError(c, apiError(404, "not_found", "no lecture %q among your lectures", c.Param("id")))
		return catalog.Lecture{}, false
	}
	if err != nil {
		s.internalError(c, err)
		return catalog.Lecture{}, false
	}
	return l, true
}

// createLecture accepts the file either as the raw request body (title, course, description as query
// parameters) or as multipart/form-data with those fields before a "file" part.
func (s *Service) createLecture(c *gin.Context) {
	if mt, _, _ := mime.ParseMediaType(c.GetHeader("Content-Type")); mt == "application/json" {
		s.createEmptyLecture(c)
		return
	}
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
	c.JSON(201, s.toJSON(c.Request.Context(), l))
}
