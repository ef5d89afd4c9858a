package ingest

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/lectern/lectern/internal/catalog"
	"github.com/lectern/lectern/internal/playtoken"
)

// TestNPMAssets: the bundles are found whether --assets-dir names node_modules, a flat directory they were
// copied into, or hls.js's dist directory (the flag's old meaning); a missing one says how to install it.
func TestNPMAssets(t *testing.T) {
	root := t.TempDir()
	write := func(path, body string) {
		t.Helper()
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	nm := filepath.Join(root, "node_modules")
	write(filepath.Join(nm, "hls.js", "dist", "hls.min.js"), "hls")
	write(filepath.Join(nm, "tus-js-client", "dist", "tus.min.js"), "tus")
	flat := filepath.Join(root, "flat")
	write(filepath.Join(flat, "hls.min.js"), "hls-flat")
	write(filepath.Join(flat, "tus.min.js"), "tus-flat")
	hlsOnly := filepath.Join(root, "hlsonly")
	write(filepath.Join(hlsOnly, "hls.min.js"), "hls-only")

	for _, tc := range []struct {
		dir, asset string
		code       int
		body       string
	}{
		{nm, "hls.min.js", 200, "hls"},
		{nm, "tus.min.js", 200, "tus"},
		{flat, "hls.min.js", 200, "hls-flat"},
		{flat, "tus.min.js", 200, "tus-flat"},
		{filepath.Join(nm, "hls.js", "dist"), "hls.min.js", 200, "hls"},
		{filepath.Join(nm, "hls.js", "dist"), "tus.min.js", 200, "tus"},
		{hlsOnly, "tus.min.js", 404, "make web"},
		{hlsOnly, "teach/upload.js", 200, "tus.Upload"}, // the page's own script is embedded, not from npm
		{hlsOnly, "teach/main.js", 200, "import"},
		{hlsOnly, "teach/nope.js", 404, "not found"},
		{hlsOnly, "watch/player.js", 200, "import"},
		{hlsOnly, "watch/chapters.js", 200, "parseChapters"},
		{hlsOnly, "watch/main.js", 404, "not found"}, // one page's modules are not served under the other's path
		{hlsOnly, "teach/player.js", 404, "not found"},
	} {
		s := &Service{cfg: Config{AssetsDir: tc.dir}} // the asset routes need nothing else
		r := gin.New()
		s.mountPages(r)
		w := httptest.NewRecorder()
		r.ServeHTTP(w, httptest.NewRequest("GET", "/assets/"+tc.asset, nil))
		body, _ := io.ReadAll(w.Body)
		if w.Code != tc.code || !strings.Contains(string(body), tc.body) {
			t.Errorf("%s from %s: %d %.80q, want %d with %q", tc.asset, tc.dir, w.Code, body, tc.code, tc.body)
		}
	}
}

// pagesFixture is an ingest service over a real SQLite catalog, with lectures in every state a student
// can meet, created through the catalog as the transcoder would leave them.
type pagesFixture struct {
	srv    *httptest.Server
	course catalog.Course
	ids    map[string]string // by name: slides, short, preparing, failed, deleted
}

func newPagesFixture(t *testing.T, keys playtoken.Keys) *pagesFixture {
	t.Helper()
	ctx := context.Background()
	cat, store, _ := openStores(t)
	teacher, _, err := cat.AddTeacher(ctx, "Ms. Park")
	if err != nil {
		t.Fatal(err)
	}
	physics, err := cat.EnsureCourse(ctx, teacher.ID, "Physics 1")
	if err != nil {
		t.Fatal(err)
	}
	f := &pagesFixture{course: physics, ids: map[string]string{}}
	add := func(name, course string) (string, int) {
		l, err := cat.CreateLecture(ctx, catalog.NewLecture{TeacherID: teacher.ID, CourseID: course, Title: name + " lecture"})
		if err != nil {
			t.Fatal(err)
		}
		v, err := cat.EnqueueTranscode(ctx, l.ID, catalog.Source{Key: "sources/" + l.ID})
		if err != nil {
			t.Fatal(err)
		}
		f.ids[name] = l.ID
		return l.ID, v
	}
	publish := func(name, course string, p catalog.Publication) {
		id, v := add(name, course)
		if err := cat.MarkTranscoding(ctx, id, v, "w1", time.Minute); err != nil {
			t.Fatal(err)
		}
		if err := cat.PublishVersion(ctx, id, v, "w1", p); err != nil {
			t.Fatal(err)
		}
	}
	publish("slides", physics.ID, catalog.Publication{DurationSeconds: 3725.4, Assets: catalog.Assets{
		Poster: "poster.jpg", Chapters: "chapters.vtt", ChapterCount: 8, Captions: "subs/index.m3u8"}})
	publish("short", "", catalog.Publication{DurationSeconds: 59.9})
	add("preparing", physics.ID)
	id, v := add("failed", physics.ID)
	if err := cat.FailLecture(ctx, id, v, "not a video"); err != nil {
		t.Fatal(err)
	}
	publish("deleted", physics.ID, catalog.Publication{DurationSeconds: 10})
	if err := cat.DeleteLecture(ctx, f.ids["deleted"]); err != nil {
		t.Fatal(err)
	}
	svc, err := New(Config{Catalog: cat, Store: store, TempDir: t.TempDir(), PlaybackBase: "https://edge.example", PlaybackKeys: keys})
	if err != nil {
		t.Fatal(err)
	}
	f.srv = httptest.NewServer(svc.Handler())
	t.Cleanup(f.srv.Close)
	return f
}

func (f *pagesFixture) get(t *testing.T, path string) (int, string) {
	t.Helper()
	resp, err := http.Get(f.srv.URL + path)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if ct := resp.Header.Get("Content-Type"); !strings.HasPrefix(ct, "text/html") {
		t.Errorf("%s: Content-Type %q", path, ct)
	}
	return resp.StatusCode, string(b)
}

// TestCoursePages: the lecture list and a course's page show the ready lectures only, each with its
// poster, duration and chapter count; lectures being prepared, failed or deleted are not listed.
func TestCoursePages(t *testing.T) {
	f := newPagesFixture(t, nil)
	slides, short := f.ids["slides"], f.ids["short"]
	code, all := f.get(t, "/")
	if code != 200 {
		t.Fatalf("/: %d", code)
	}
	for _, want := range []string{
		`href="/watch/` + slides + `"`, `src="https://edge.example/hls/` + slides + `/v1/poster.jpg"`,
		`<span class="duration">1:02:05</span>`, `<span class="chaptercount">8 chapters</span>`,
		`href="/courses/` + f.course.ID + `">Physics 1</a>`,
		`href="/watch/` + short + `"`, `<span class="duration">0:59</span>`,
	} {
		if !strings.Contains(all, want) {
			t.Errorf("/ lacks %s", want)
		}
	}
	if n := strings.Count(all, `class="card lecture"`); n != 2 {
		t.Errorf("/ lists %d lectures, want the 2 ready ones", n)
	}
	for _, name := range []string{"preparing", "failed", "deleted"} {
		if strings.Contains(all, f.ids[name]) {
			t.Errorf("/ lists the %s lecture", name)
		}
	}
	if strings.Count(all, "chaptercount") != 1 || strings.Count(all, "<img") != 1 {
		t.Errorf("the lecture without chapters or poster shows some:\n%s", all)
	}

	code, course := f.get(t, "/courses/"+f.course.ID)
	if code != 200 || !strings.Contains(course, "<h1>Physics 1</h1>") || !strings.Contains(course, slides) ||
		strings.Contains(course, short) || !strings.Contains(course, `href="/">All lectures`) {
		t.Errorf("course page: %d\n%s", code, course)
	}
	if code, body := f.get(t, "/courses/nope"); code != 404 || !strings.Contains(body, "Course not found") {
		t.Errorf("unknown course: %d %s", code, body)
	}
}

// TestWatchPage: a ready lecture gets the player with its playlist, poster and chapters from the
// playback prefix (signed when keys are set); a lecture being prepared, failed or deleted gets a clear
// message instead, the one being prepared reloading itself.
func TestWatchPage(t *testing.T) {
	keys, err := playtoken.ParseKeys("k1:" + strings.Repeat("ab", 32))
	if err != nil {
		t.Fatal(err)
	}
	for _, signed := range []bool{false, true} {
		var k playtoken.Keys
		if signed {
			k = keys
		}
		f := newPagesFixture(t, k)
		slides := f.ids["slides"]
		code, page := f.get(t, "/watch/"+slides)
		if code != 200 {
			t.Fatalf("watch: %d", code)
		}
		prefix := `https://edge.example/hls/` + slides + `/v1/`
		if signed {
			i := strings.Index(page, `data-src="https://edge.example/s/`)
			j := strings.Index(page, `/hls/`+slides+`/v1/master.m3u8"`)
			if i < 0 || j < i {
				t.Fatalf("signed watch page has no signed playlist URL:\n%s", page)
			}
			prefix = page[i+len(`data-src="`):j] + `/hls/` + slides + `/v1/`
		}
		for _, want := range []string{
			`data-src="` + prefix + `master.m3u8"`, `data-chapters="` + prefix + `chapters.vtt"`,
			`poster="` + prefix + `poster.jpg"`, `data-id="` + slides + `"`, `data-duration="3725.4"`,
			`0:00 / 1:02:05`, `<script src="/assets/hls.min.js">`, `<script type="module" src="/assets/watch/player.js">`,
		} {
			if !strings.Contains(page, want) {
				t.Errorf("signed=%v: watch page lacks %s", signed, want)
			}
		}
		code, page = f.get(t, "/watch/"+f.ids["short"])
		if code != 200 || strings.Contains(page, "data-chapters") || strings.Contains(page, "poster=") {
			t.Errorf("lecture without chapters or poster: %d\n%s", code, page)
		}
	}

	f := newPagesFixture(t, nil)
	for _, tc := range []struct {
		name    string
		code    int
		want    string
		refresh bool
	}{
		{"preparing", 200, "still being prepared", true},
		{"failed", 200, "could not be prepared", false},
		{"deleted", 404, "does not exist or was deleted", false},
	} {
		code, page := f.get(t, "/watch/"+f.ids[tc.name])
		if code != tc.code || !strings.Contains(page, tc.want) || strings.Contains(page, `id="video"`) ||
			strings.Contains(page, `http-equiv="refresh"`) != tc.refresh {
			t.Errorf("%s lecture: %d, want %d with %q (refresh %v):\n%s", tc.name, code, tc.code, tc.want, tc.refresh, page)
		}
	}
}

func TestClock(t *testing.T) {
	for in, want := range map[float64]string{0: "0:00", 59.9: "0:59", 60: "1:00", 3599: "59:59", 3725.4: "1:02:05", -3: "0:00"} {
		if got := clock(in); got != want {
			t.Errorf("clock(%v) = %q, want %q", in, got, want)
		}
	}
}
