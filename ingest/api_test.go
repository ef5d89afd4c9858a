package ingest

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"mime/multipart"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	"github.com/lectern/lectern/internal/catalog"
	"github.com/lectern/lectern/internal/objstore"
)

type fixture struct {
	srv        *httptest.Server
	cat        *catalog.Catalog
	store      *objstore.Bucket
	tokA, tokB string
	clip       []byte
}

// openStores opens a SQLite catalog and a disk object store in a fresh temporary directory, which it
// returns too; the catalog is closed when the test ends.
func openStores(t *testing.T) (*catalog.Catalog, *objstore.Bucket, string) {
	t.Helper()
	ctx := context.Background()
	dir := t.TempDir()
	cat, err := catalog.Open(ctx, "sqlite://"+filepath.Join(dir, "c.db"), catalog.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cat.Close() })
	store, err := objstore.Open(ctx, "file://"+filepath.Join(dir, "objects"))
	if err != nil {
		t.Fatal(err)
	}
	return cat, store, dir
}

func newFixture(t *testing.T) *fixture {
	t.Helper()
	ctx := context.Background()
	cat, store, dir := openStores(t)
	_, tokA, _ := cat.AddTeacher(ctx, "A")
	_, tokB, _ := cat.AddTeacher(ctx, "B")
	clip := filepath.Join(dir, "clip.mp4")
	out, err := exec.Command("ffmpeg", "-v", "error", "-f", "lavfi", "-i", "testsrc2=size=320x240:rate=25:duration=2",
		"-c:v", "libx264", "-preset", "ultrafast", clip).CombinedOutput()
	if err != nil {
		t.Fatalf("ffmpeg: %v %s", err, out)
	}
	data, _ := os.ReadFile(clip)
	svc, err := New(Config{Catalog: cat, Store: store, TempDir: t.TempDir(), PlaybackBase: "https://edge.example/"})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(svc.Handler())
	t.Cleanup(srv.Close)
	return &fixture{srv: srv, cat: cat, store: store, tokA: tokA, tokB: tokB, clip: data}
}

func (f *fixture) do(t *testing.T, method, path, token, ctype string, body io.Reader) (int, map[string]any) {
	t.Helper()
	req, _ := http.NewRequest(method, f.srv.URL+path, body)
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	if ctype != "" {
		req.Header.Set("Content-Type", ctype)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var m map[string]any
	_ = json.NewDecoder(resp.Body).Decode(&m)
	return resp.StatusCode, m
}

func multipartBody(t *testing.T, fields map[string]string, file []byte) (string, io.Reader) {
	var buf bytes.Buffer
	w := multipart.NewWriter(&buf)
	for k, v := range fields {
		_ = w.WriteField(k, v)
	}
	if file != nil {
		fw, _ := w.CreateFormFile("file", "lecture.mp4")
		_, _ = fw.Write(file)
	}
	_ = w.Close()
	return w.FormDataContentType(), &buf
}

func TestAPI(t *testing.T) {
	if _, err := exec.LookPath("ffprobe"); err != nil {
		t.Skip("ffprobe not installed")
	}
	f := newFixture(t)

	// Multipart upload, then the raw-body form.
	ct, body := multipartBody(t, map[string]string{"title": "Optics", "course": "Physics"}, f.clip)
	code, lec := f.do(t, "POST", "/api/v1/lectures", f.tokA, ct, body)
	if code != 201 || lec["status"] != "queued" || lec["title"] != "Optics" {
		t.Fatalf("multipart upload: %d %v", code, lec)
	}
	id := lec["id"].(string)
	code, second := f.do(t, "POST", "/api/v1/lectures?title=Lenses&course=Physics", f.tokA, "video/mp4", bytes.NewReader(f.clip))
	if code != 201 || second["course_id"] != lec["course_id"] {
		t.Fatalf("raw upload: %d %v (want same course as the first)", code, second)
	}
	objs, err := f.store.List(context.Background(), "sources/"+id+"/")
	if err != nil || len(objs) != 1 || objs[0].Size != int64(len(f.clip)) {
		t.Fatalf("source object for %s: %v %v", id, objs, err)
	}
	jobs, err := f.cat.TranscodeJobs(context.Background(), id)
	if err != nil || len(jobs) != 1 {
		t.Fatalf("transcode jobs for %s: %v %v", id, jobs, err)
	}

	// A teacher sees only their own lectures.
	if code, e := f.do(t, "GET", "/api/v1/lectures/"+id, f.tokB, "", nil); code != 404 || e["error"] == nil {
		t.Errorf("other teacher's lecture: %d %v, want 404", code, e)
	}
	if code, l := f.do(t, "GET", "/api/v1/lectures/"+id, f.tokA, "", nil); code != 200 || l["id"] != id {
		t.Errorf("own lecture: %d %v", code, l)
	}
	if code, l := f.do(t, "GET", "/api/v1/lectures", f.tokB, "", nil); code != 200 || len(l["lectures"].([]any)) != 0 {
		t.Errorf("teacher B lists %v", l)
	}

	// Pagination: two lectures, one per page.
	code, page := f.do(t, "GET", "/api/v1/lectures?limit=1", f.tokA, "", nil)
	if code != 200 || len(page["lectures"].([]any)) != 1 || page["next"] == nil {
		t.Fatalf("page 1: %d %v", code, page)
	}
	code, page2 := f.do(t, "GET", "/api/v1/lectures?limit=1&after="+page["next"].(string), f.tokA, "", nil)
	if code != 200 || len(page2["lectures"].([]any)) != 1 || page2["lectures"].([]any)[0].(map[string]any)["id"] == page["lectures"].([]any)[0].(map[string]any)["id"] {
		t.Fatalf("page 2: %d %v", code, page2)
	}

	// Errors: one JSON shape with the right status.
	ct, body = multipartBody(t, map[string]string{"title": "No file"}, nil)
	for _, tc := range []struct {
		name, method, path, ctype string
		body                      io.Reader
		status                    int
		code                      string
	}{
		{"multipart without file", "POST", "/api/v1/lectures", ct, body, 400, "missing_file"},
		{"bad limit", "GET", "/api/v1/lectures?limit=0", "", nil, 400, "bad_limit"},
		{"unknown endpoint", "GET", "/api/v1/nothing", "", nil, 404, "not_found"},
		{"wrong method", "DELETE", "/api/v1/courses", "", nil, 405, "method_not_allowed"},
	} {
		code, e := f.do(t, tc.method, tc.path, f.tokA, tc.ctype, tc.body)
		errObj, _ := e["error"].(map[string]any)
		if code != tc.status || errObj == nil || errObj["code"] != tc.code || errObj["message"] == "" {
			t.Errorf("%s: %d %v, want %d %s", tc.name, code, e, tc.status, tc.code)
		}
	}
}

func TestUploadTooLarge(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	cat, err := catalog.Open(ctx, "sqlite://"+filepath.Join(dir, "c.db"), catalog.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer cat.Close()
	store, _ := objstore.Open(ctx, "file://"+filepath.Join(dir, "objects"))
	_, tok, _ := cat.AddTeacher(ctx, "A")
	svc, err := New(Config{Catalog: cat, Store: store, TempDir: t.TempDir(), MaxUploadBytes: 1 << 10})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(svc.Handler())
	defer srv.Close()
	req, _ := http.NewRequest("POST", srv.URL+"/api/v1/lectures?title=Big", bytes.NewReader(make([]byte, 4<<20)))
	req.Header.Set("Authorization", "Bearer "+tok)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var e struct {
		Error struct{ Code, Message string }
	}
	_ = json.NewDecoder(resp.Body).Decode(&e)
	if resp.StatusCode != 413 || e.Error.Code != "upload_too_large" {
		t.Fatalf("oversized upload: %d %+v", resp.StatusCode, e)
	}
	if n, _ := cat.CountLectures(ctx); n != 0 {
		t.Errorf("oversized upload left %d lectures", n)
	}
}
