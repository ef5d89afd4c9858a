package ingest

import (
	"embed"
	"html/template"
	"net/http"
	"os"
	"path/filepath"
	"strings"

	"github.com/gin-gonic/gin"

	"github.com/lectern/lectern/internal/catalog"
)

//go:embed templates/*.html
var templateFS embed.FS

// teachFS holds the teacher page's script, ES modules loaded from /assets/teach/main.js.
//
//go:embed static/teach/*.js
var teachFS embed.FS

var pages = template.Must(template.ParseFS(templateFS, "templates/*.html"))

func (s *Service) mountPages(r *gin.Engine) {
	r.GET("/", s.indexPage)
	r.GET("/watch/:id", s.watchPage)
	r.GET("/teach", func(c *gin.Context) { s.render(c, 200, "teach.html", nil) })
	r.GET("/assets/teach/:file", s.teachScript)
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

func (s *Service) indexPage(c *gin.Context) {
	ls, err := s.cfg.Catalog.ListLectures(c.Request.Context(), catalog.ListFilter{Published: true, Limit: 200})
	if err != nil {
		s.log.Error("list lectures", "err", err)
		s.render(c, 503, "message.html", gin.H{"Title": "Lectures unavailable", "Message": "The lecture list cannot be loaded right now. Try again in a minute."})
		return
	}
	s.render(c, 200, "index.html", gin.H{"Lectures": ls})
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
	s.render(c, 200, "watch.html", gin.H{"Lecture": l, "Src": s.playbackURL(l)})
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

// teachScript serves one module of the teacher page's script.
func (s *Service) teachScript(c *gin.Context) {
	b, err := teachFS.ReadFile("static/teach/" + c.Param("file"))
	if err != nil || !strings.HasSuffix(c.Param("file"), ".js") {
		c.String(http.StatusNotFound, "not found\n")
		return
	}
	// Revalidated every time: the modules change with the binary, are small, and must match each other.
	c.Header("Cache-Control", "no-cache")
	c.Data(http.StatusOK, "text/javascript; charset=utf-8", b)
}
