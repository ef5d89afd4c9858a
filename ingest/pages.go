package ingest

import (
	"embed"
	"fmt"
	"html/template"
	"math"
	"net/http"
	"os"
	"path/filepath"
	"strings"

	"github.com/gin-gonic/gin"

	"github.com/lectern/lectern/internal/catalog"
)

//go:embed templates/*.html
var templateFS embed.FS

// scriptFS holds the pages' own scripts, ES modules: the teacher page's from /assets/teach/main.js, the
// student player's from /assets/watch/player.js.
//
//go:embed static/teach/*.js static/watch/*.js
var scriptFS embed.FS

var pages = template.Must(template.New("").Funcs(template.FuncMap{"clock": clock}).ParseFS(templateFS, "templates/*.html"))

// clock formats seconds as a player shows them: m:ss, or h:mm:ss from an hour.
func clock(seconds float64) string {
	if math.IsNaN(seconds) || seconds < 0 {
		seconds = 0
	}
	t := int64(seconds)
	if t >= 3600 {
		return fmt.Sprintf("%d:%02d:%02d", t/3600, t/60%60, t%60)
	}
	return fmt.Sprintf("%d:%02d", t/60, t%60)
}

func (s *Service) mountPages(r *gin.Engine) {
	r.GET("/", s.indexPage)
	r.GET("/courses/:id", s.coursePage)
	r.GET("/watch/:id", s.watchPage)
	r.GET("/teach", func(c *gin.Context) { s.render(c, 200, "teach.html", nil) })
	r.GET("/assets/teach/:file", s.pageScript("teach"))
	r.GET("/assets/watch/:file", s.pageScript("watch"))
	for name := range npmAssets {
		r.GET("/assets/"+name, s.npmAsset(name))
	}
}

func (s *Service) render(c *gin.Context, status int, name string, data any) {
	c.Header("Content-Type", "text/html; charset=utf-8")
	// Pages reflect the catalog's current state; only the versioned HLS objects are cached for long.
	c.Header("Cache-Control", "no-cache")
	c.Status(status)
	if err := pages.ExecuteTemplate(c.Writer, name, data); err != nil {
		s.log.Error("render page", "page", name, "err", err)
	}
}

// lectureCard is one lecture on a course page.
type lectureCard struct {
	ID, Title string
	Course    *catalog.Course // nil on a course's own page, or outside any course
	Poster    string          // URL, "" = none
	Duration  float64
	Chapters  int
}

func (s *Service) indexPage(c *gin.Context) {
	s.listPage(c, catalog.Course{})
}

// coursePage lists one course's ready lectures.
func (s *Service) coursePage(c *gin.Context) {
	course, err := s.cfg.Catalog.GetCourse(c.Request.Context(), c.Param("id"))
	switch {
	case catalog.IsNotFound(err):
		s.render(c, 404, "message.html", gin.H{"Title": "Course not found", "Message": "This course does not exist or was deleted. Ask your teacher for a new link."})
		return
	case err != nil:
		s.log.Error("get course", "err", err)
		s.render(c, 503, "message.html", gin.H{"Title": "Course unavailable", "Message": "The course cannot be loaded right now. Try again in a minute."})
		return
	}
	s.listPage(c, course)
}

// listPage lists the ready lectures, of course when it has an ID, else all of them with their courses.
func (s *Service) listPage(c *gin.Context, course catalog.Course) {
	ctx := c.Request.Context()
	ls, err := s.cfg.Catalog.ListLectures(ctx, catalog.ListFilter{Published: true, CourseID: course.ID, Limit: 200})
	if err != nil {
		s.log.Error("list lectures", "err", err)
		s.render(c, 503, "message.html", gin.H{"Title": "Lectures unavailable", "Message": "The lecture list cannot be loaded right now. Try again in a minute."})
		return
	}
	courses := make(map[string]*catalog.Course) // few courses per page: one lookup each
	cards := make([]lectureCard, 0, len(ls))
	for _, l := range ls {
		card := lectureCard{ID: l.ID, Title: l.Title, Duration: l.DurationSeconds, Chapters: l.Assets.ChapterCount}
		if l.Assets.Poster != "" {
			base, _ := s.playbackPrefix(ctx, l)
			card.Poster = base + l.Assets.Poster
		}
		if course.ID == "" && l.CourseID != "" {
			cr, ok := courses[l.CourseID]
			if !ok {
				if got, err := s.cfg.Catalog.GetCourse(ctx, l.CourseID); err == nil {
					cr = &got
				}
				courses[l.CourseID] = cr
			}
			card.Course = cr
		}
		cards = append(cards, card)
	}
	title := "Lectures"
	if course.ID != "" {
		title = course.Title
	}
	s.render(c, 200, "index.html", gin.H{"Title": title, "Course": course.ID != "", "Lectures": cards})
}

func (s *Service) watchPage(c *gin.Context) {
	l, err := s.cfg.Catalog.GetLecture(c.Request.Context(), c.Param("id"))
	switch {
	case catalog.IsNotFound(err):
		s.render(c, 404, "message.html", gin.H{"Title": "Lecture not found", "Message": "This lecture does not exist or was deleted. Ask your teacher for a new link."})
		return
	case err != nil:
		s.log.Error("get lecture", "err", err)
		s.render(c, 503, "message.html", gin.H{"Title": "Lecture unavailable", "Message": "The lecture cannot be loaded right now. Try again in a minute."})
		return
	case l.Version == 0:
		msg := "This lecture is still being prepared. This page reloads by itself when it is ready."
		if l.Status == catalog.StatusFailed {
			msg = "This lecture could not be prepared. Your teacher has been shown why."
		}
		s.render(c, 200, "message.html", gin.H{"Title": l.Title, "Message": msg, "Refresh": l.Status != catalog.StatusFailed})
		return
	}
	base, _ := s.playbackPrefix(c.Request.Context(), l)
	data := gin.H{"Lecture": l, "Src": base + "master.m3u8"}
	if l.Assets.Poster != "" {
		data["Poster"] = base + l.Assets.Poster
	}
	if l.Assets.Chapters != "" {
		data["Chapters"] = base + l.Assets.Chapters
	}
	s.render(c, 200, "watch.html", data)
}

// npmAssets are the browser bundles the pages load, by file name, with the npm package directory
// each comes from. `make web` installs them under internal/web/node_modules; they are never copied into
// the repository.
var npmAssets = map[string]string{
	"hls.min.js": "hls.js/dist",
	"tus.min.js": "tus-js-client/dist",
}

// assetPath finds an npm bundle under AssetsDir, which may be a node_modules directory, a directory the
// bundles were copied into (a deployment), or one package's dist directory inside node_modules (what
// --assets-dir named when hls.js was the only bundle).
func (s *Service) assetPath(name string) (string, bool) {
	dir, pkg := s.cfg.AssetsDir, npmAssets[name]
	for _, p := range []string{
		filepath.Join(dir, pkg, name),
		filepath.Join(dir, name),
		filepath.Join(dir, "..", "..", pkg, name),
	} {
		if fi, err := os.Stat(p); err == nil && fi.Mode().IsRegular() {
			return p, true
		}
	}
	return "", false
}

func (s *Service) npmAsset(name string) gin.HandlerFunc {
	return func(c *gin.Context) {
		path, ok := s.assetPath(name)
		if !ok {
			c.String(http.StatusNotFound, "%s is not installed under %s: run `make web` (npm ci) or set --assets-dir\n", name, s.cfg.AssetsDir)
			return
		}
		c.Header("Cache-Control", "public, max-age=3600")
		c.File(path)
	}
}

// pageScript serves one module of a page's script from static/{dir}/.
func (s *Service) pageScript(dir string) gin.HandlerFunc {
	return func(c *gin.Context) {
		name := c.Param("file")
		b, err := scriptFS.ReadFile("static/" + dir + "/" + name)
		if err != nil || !strings.HasSuffix(name, ".js") {
			c.String(http.StatusNotFound, "not found\n")
			return
		}
		// Revalidated every time: the modules change with the binary, are small, and must match each other.
		c.Header("Cache-Control", "no-cache")
		c.Data(http.StatusOK, "text/javascript; charset=utf-8", b)
	}
}
