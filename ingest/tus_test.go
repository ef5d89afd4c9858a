package ingest

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/lectern/lectern/internal/catalog"
	"github.com/lectern/lectern/internal/objstore"
	"github.com/lectern/lectern/internal/testenv"
)

// tusFixture is the ingest service over real HTTP on loopback, with real tusd, real ffprobe, SQLite or
// PostgreSQL, and file storage or MinIO.
type tusFixture struct {
	t          *testing.T
	svc        *Service
	srv        *httptest.Server
	cat        *catalog.Catalog
	store      *objstore.Bucket
	tokA, tokB string
	idA        string
	cfg        Config
}

type tusOpts struct {
	storeURL, dbURL string
	tweak           func(*Config)
}

func newTusFixture(t *testing.T, o tusOpts) *tusFixture {
	t.Helper()
	ctx := context.Background()
	dir := t.TempDir()
	if o.dbURL == "" {
		o.dbURL = "sqlite://" + filepath.Join(dir, "c.db")
	}
	if o.storeURL == "" {
		o.storeURL = "file://" + filepath.Join(dir, "objects")
	}
	cat, err := catalog.Open(ctx, o.dbURL, catalog.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cat.Close() })
	store, err := objstore.Open(ctx, o.storeURL)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { store.Close() })
	a, tokA, _ := cat.AddTeacher(ctx, "A")
	_, tokB, _ := cat.AddTeacher(ctx, "B")
	f := &tusFixture{t: t, cat: cat, store: store, tokA: tokA, tokB: tokB, idA: a.ID}
	f.cfg = Config{Catalog: cat, Store: store, TempDir: t.TempDir()}
	if o.tweak != nil {
		o.tweak(&f.cfg)
	}
	f.start()
	return f
}

// start (re)starts the service on a new server, as a restarted process would.
func (f *tusFixture) start() {
	svc, err := New(f.cfg)
	if err != nil {
		f.t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	svc.Start(ctx)
	f.svc = svc
	f.srv = httptest.NewServer(svc.Handler())
	srv := f.srv
	f.t.Cleanup(func() { srv.Close(); cancel() })
}

func (f *tusFixture) req(method, path, token string, hdr map[string]string, body []byte) (*http.Response, []byte) {
	f.t.Helper()
	url := path
	if strings.HasPrefix(path, "/") {
		url = f.srv.URL + path
	}
	req, err := http.NewRequest(method, url, bytes.NewReader(body))
	if err != nil {
		f.t.Fatal(err)
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		f.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp, b
}

// lecture creates a lecture for teacher A and returns its id.
func (f *tusFixture) lecture(title string) string {
	f.t.Helper()
	resp, body := f.req("POST", "/api/v1/lectures", f.tokA, map[string]string{"Content-Type": "application/json"},
		[]byte(`{"title":"`+title+`","course":"Physics"}`))
	if resp.StatusCode != 201 {
		f.t.Fatalf("create lecture: %d %s", resp.StatusCode, body)
	}
	var l lectureJSON
	if err := json.Unmarshal(body, &l); err != nil {
		f.t.Fatal(err)
	}
	if l.Status != catalog.StatusAwaitingUpload {
		f.t.Fatalf("new lecture status %q, want awaiting_upload", l.Status)
	}
	return l.ID
}

func b64(s string) string { return base64.StdEncoding.EncodeToString([]byte(s)) }

// create starts a tus upload of size bytes for lecture and returns its absolute URL.
func (f *tusFixture) create(token, lecture string, size int64) string {
	f.t.Helper()
	resp, body := f.req("POST", UploadsPath, token, map[string]string{
		"Tus-Resumable": "1.0.0", "Upload-Length": strconv.FormatInt(size, 10),
		"Upload-Metadata": "lecture " + b64(lecture) + ",filename " + b64("clip.mp4"),
	}, nil)
	if resp.StatusCode != 201 {
		f.t.Fatalf("create upload: %d %s", resp.StatusCode, body)
	}
	if resp.Header.Get("Upload-Expires") == "" {
		f.t.Fatal("creation response has no Upload-Expires")
	}
	return resp.Header.Get("Location")
}

func (f *tusFixture) patch(token, url string, offset int64, chunk []byte) (*http.Response, []byte) {
	return f.req("PATCH", url, token, map[string]string{
		"Tus-Resumable": "1.0.0", "Upload-Offset": strconv.FormatInt(offset, 10),
		"Content-Type": "application/offset+octet-stream",
	}, chunk)
}

func (f *tusFixture) offset(token, url string) (int, int64) {
	resp, _ := f.req("HEAD", url, token, map[string]string{"Tus-Resumable": "1.0.0"}, nil)
	n, _ := strconv.ParseInt(resp.Header.Get("Upload-Offset"), 10, 64)
	return resp.StatusCode, n
}

func errCode(t *testing.T, body []byte) string {
	t.Helper()
	var e struct {
		Error struct{ Code, Message string } `json:"error"`
	}
	if err := json.Unmarshal(body, &e); err != nil || e.Error.Code == "" {
		t.Fatalf("not the JSON error shape: %q", body)
	}
	return e.Error.Code
}

func (f *tusFixture) getLecture(id string) lectureJSON {
	f.t.Helper()
	resp, body := f.req("GET", "/api/v1/lectures/"+id, f.tokA, nil, nil)
	if resp.StatusCode != 200 {
		f.t.Fatalf("get lecture: %d %s", resp.StatusCode, body)
	}
	var l lectureJSON
	if err := json.Unmarshal(body, &l); err != nil {
		f.t.Fatal(err)
	}
	return l
}

var (
	clipOnce sync.Once
	clipData []byte
	clipErr  error
)

// testClip is a 3-second H.264/AAC MP4 made once per test binary.
func testClip(t *testing.T) []byte {
	t.Helper()
	if _, err := exec.LookPath("ffmpeg"); err != nil {
		t.Skip("needs ffmpeg")
	}
	clipOnce.Do(func() {
		dir, err := os.MkdirTemp("", "lectern-clip")
		if err != nil {
			clipErr = err
			return
		}
		defer os.RemoveAll(dir)
		p := filepath.Join(dir, "clip.mp4")
		out, err := exec.Command("ffmpeg", "-v", "error", "-f", "lavfi", "-i", "testsrc2=size=320x240:rate=25:duration=3",
			"-f", "lavfi", "-i", "sine=duration=3", "-c:v", "libx264", "-preset", "ultrafast", "-c:a", "aac",
			"-movflags", "+faststart", p).CombinedOutput()
		if err != nil {
			clipErr = fmt.Errorf("ffmpeg: %v: %s", err, out)
			return
		}
		clipData, clipErr = os.ReadFile(p)
	})
	if clipErr != nil {
		t.Fatal(clipErr)
	}
	return clipData
}

// sourceSum reads the lecture's stored source and returns its sha256.
func (f *tusFixture) sourceSum(id string) [32]byte {
	f.t.Helper()
	l, err := f.cat.GetLecture(context.Background(), id)
	if err != nil {
		f.t.Fatal(err)
	}
	if !strings.HasPrefix(l.SourceKey, "sources/"+id+"/") {
		f.t.Fatalf("source key %q is not under sources/%s/", l.SourceKey, id)
	}
	rc, _, err := f.store.Get(context.Background(), l.SourceKey)
	if err != nil {
		f.t.Fatal(err)
	}
	defer rc.Close()
	h := sha256.New()
	if _, err := io.Copy(h, rc); err != nil {
		f.t.Fatal(err)
	}
	var s [32]byte
	copy(s[:], h.Sum(nil))
	return s
}

// TestTusUploadQueuesLecture: a lecture uploaded in two PATCHes is validated when the last byte arrives,
// queued in the same response, and its source is byte-identical; a HEAD afterwards reports it complete.
func TestTusUploadQueuesLecture(t *testing.T) {
	for _, store := range []string{"file", "minio"} {
		t.Run(store, func(t *testing.T) {
			o := tusOpts{}
			if store == "minio" {
				o.storeURL = testenv.S3URL(t)
			}
			f := newTusFixture(t, o)
			clip := testClip(t)
			id := f.lecture("Waves")
			url := f.create(f.tokA, id, int64(len(clip)))

			if !strings.Contains(url, UploadsPath+id+"/") {
				t.Fatalf("upload URL %q does not name the lecture", url)
			}
			half := len(clip) / 2
			if resp, body := f.patch(f.tokA, url, 0, clip[:half]); resp.StatusCode != 204 {
				t.Fatalf("first PATCH: %d %s", resp.StatusCode, body)
			}
			l := f.getLecture(id)
			if l.Upload == nil || l.Upload.Offset != int64(half) || l.Upload.Size != int64(len(clip)) {
				t.Fatalf("lecture during upload: upload = %+v, want offset %d of %d", l.Upload, half, len(clip))
			}
			if resp, body := f.patch(f.tokA, url, int64(half), clip[half:]); resp.StatusCode != 204 {
				t.Fatalf("final PATCH: %d %s", resp.StatusCode, body)
			}
			l = f.getLecture(id)
			if l.Status != catalog.StatusQueued || l.Upload != nil || l.PendingVersion != 1 {
				t.Fatalf("after upload: status %q pending v%d upload %+v; want queued v1 and no upload", l.Status, l.PendingVersion, l.Upload)
			}
			if f.sourceSum(id) != sha256.Sum256(clip) {
				t.Fatal("stored source differs from the uploaded bytes")
			}
			if code, off := f.offset(f.tokA, url); code != 200 || off != int64(len(clip)) {
				t.Fatalf("HEAD after completion: %d offset %d, want 200 and %d", code, off, len(clip))
			}
			jobs, err := f.cat.TranscodeJobs(context.Background(), id)
			if err != nil || len(jobs) != 1 {
				t.Fatalf("transcode jobs: %v %v, want exactly one", jobs, err)
			}
			// Nothing of tusd's bookkeeping is left in the bucket.
			objs, _ := f.store.List(context.Background(), "sources/"+id+"/")
			if len(objs) != 1 {
				t.Fatalf("objects under sources/%s/: %+v, want only the source", id, objs)
			}
		})
	}
}

// TestTusRejectsBadMedia: each bad file is refused on its last byte with 422 and a reason, the lecture
// says failed with that reason, and the bytes are gone.
func TestTusRejectsBadMedia(t *testing.T) {
	clip := testClip(t)
	f := newTusFixture(t, tusOpts{tweak: func(c *Config) { c.MaxDuration = 2 * time.Second }})
	cases := []struct {
		name     string
		data     []byte
		mentions string
	}{
		{"not media", bytes.Repeat([]byte("my lecture notes, not a video\n"), 100), "not a video"},
		{"zero bytes", nil, "empty"},
		{"cut in half", clip[:len(clip)/2], "incomplete"},
		{"too long", clip, "limit is 2s"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			id := f.lecture(tc.name)
			var resp *http.Response
			var body []byte
			if len(tc.data) == 0 {
				// A zero-length upload is complete at creation; the creation response carries the verdict.
				resp, body = f.req("POST", UploadsPath, f.tokA, map[string]string{"Tus-Resumable": "1.0.0",
					"Upload-Length": "0", "Upload-Metadata": "lecture " + b64(id)}, nil)
			} else {
				url := f.create(f.tokA, id, int64(len(tc.data)))
				resp, body = f.patch(f.tokA, url, 0, tc.data)
			}
			if resp.StatusCode != 422 || errCode(t, body) != "invalid_media" || !strings.Contains(string(body), tc.mentions) {
				t.Fatalf("got %d %s; want 422 invalid_media mentioning %q", resp.StatusCode, body, tc.mentions)
			}
			l := f.getLecture(id)
			if l.Status != catalog.StatusFailed || !strings.Contains(l.Error, tc.mentions) || l.Upload != nil {
				t.Fatalf("lecture: status %q error %q upload %+v; want failed mentioning %q", l.Status, l.Error, l.Upload, tc.mentions)
			}
			if objs, _ := f.store.List(context.Background(), "sources/"+id); len(objs) != 0 {
				t.Fatalf("rejected upload left objects: %+v", objs)
			}
			dir, _, _ := f.store.LocalDir("uploads")
			if ents, _ := os.ReadDir(filepath.Join(dir, id)); len(ents) != 0 {
				names := []string{}
				for _, e := range ents {
					names = append(names, e.Name())
				}
				t.Fatalf("rejected upload left files in the upload dir: %v", names)
			}
		})
	}
}

// TestTusProtocolErrors: what tus clients get wrong gets the status the protocol names, in the JSON
// error shape, and the upload is unharmed.
func TestTusProtocolErrors(t *testing.T) {
	clip := testClip(t)
	f := newTusFixture(t, tusOpts{tweak: func(c *Config) { c.MaxUploadBytes = 1 << 20 }})
	id := f.lecture("Edge cases")
	url := f.create(f.tokA, id, int64(len(clip)))
	if resp, body := f.patch(f.tokA, url, 0, clip[:1000]); resp.StatusCode != 204 {
		t.Fatalf("PATCH: %d %s", resp.StatusCode, body)
	}
	t.Run("wrong offset 409", func(t *testing.T) {
		resp, body := f.patch(f.tokA, url, 500, clip[500:1500])
		if resp.StatusCode != 409 || errCode(t, body) != "mismatched_offset" {
			t.Fatalf("got %d %s", resp.StatusCode, body)
		}
	})
	t.Run("no Tus-Resumable 412", func(t *testing.T) {
		resp, _ := f.req("PATCH", url, f.tokA, map[string]string{"Upload-Offset": "1000", "Content-Type": "application/offset+octet-stream"}, clip[1000:2000])
		if resp.StatusCode != 412 {
			t.Fatalf("got %d", resp.StatusCode)
		}
	})
	t.Run("wrong content type 415 or 400", func(t *testing.T) {
		resp, _ := f.req("PATCH", url, f.tokA, map[string]string{"Tus-Resumable": "1.0.0", "Upload-Offset": "1000", "Content-Type": "video/mp4"}, clip[1000:2000])
		if resp.StatusCode != 400 && resp.StatusCode != 415 {
			t.Fatalf("got %d", resp.StatusCode)
		}
	})
	t.Run("over the size limit 413", func(t *testing.T) {
		resp, body := f.req("POST", UploadsPath, f.tokA, map[string]string{"Tus-Resumable": "1.0.0",
			"Upload-Length": strconv.Itoa(2 << 20), "Upload-Metadata": "lecture " + b64(id)}, nil)
		if resp.StatusCode != 413 || errCode(t, body) != "max_size_exceeded" {
			t.Fatalf("got %d %s", resp.StatusCode, body)
		}
	})
	t.Run("OPTIONS without a token lists the extensions", func(t *testing.T) {
		resp, _ := f.req("OPTIONS", UploadsPath, "", nil, nil)
		ext := resp.Header.Get("Tus-Extension")
		if resp.StatusCode >= 300 || !strings.Contains(ext, "creation") || !strings.Contains(ext, "termination") ||
			!strings.Contains(ext, "expiration") || strings.Contains(ext, "defer") {
			t.Fatalf("OPTIONS: %d Tus-Extension %q", resp.StatusCode, ext)
		}
	})
	t.Run("creation without the trailing slash", func(t *testing.T) {
		resp, body := f.req("POST", strings.TrimSuffix(UploadsPath, "/"), f.tokA, map[string]string{"Tus-Resumable": "1.0.0",
			"Upload-Length": "10", "Upload-Metadata": "lecture " + b64(id)}, nil)
		if resp.StatusCode != 201 {
			t.Fatalf("got %d %s", resp.StatusCode, body)
		}
	})
	t.Run("no lecture in metadata 400", func(t *testing.T) {
		resp, body := f.req("POST", UploadsPath, f.tokA, map[string]string{"Tus-Resumable": "1.0.0", "Upload-Length": "10"}, nil)
		if resp.StatusCode != 400 || errCode(t, body) != "missing_lecture" {
			t.Fatalf("got %d %s", resp.StatusCode, body)
		}
	})
	t.Run("unknown upload 404", func(t *testing.T) {
		resp, body := f.patch(f.tokA, f.srv.URL+UploadsPath+id+"/0123456789abcdef", 0, []byte("x"))
		if resp.StatusCode != 404 || errCode(t, body) != "upload_not_found" {
			t.Fatalf("got %d %s", resp.StatusCode, body)
		}
	})
	if code, off := f.offset(f.tokA, url); code != 200 || off != 1000 {
		t.Fatalf("after the bad requests: HEAD %d offset %d, want 200 and 1000", code, off)
	}
	// The upload still completes and is byte-identical.
	if resp, body := f.patch(f.tokA, url, 1000, clip[1000:]); resp.StatusCode != 204 {
		t.Fatalf("final PATCH: %d %s", resp.StatusCode, body)
	}
	if f.sourceSum(id) != sha256.Sum256(clip) {
		t.Fatal("source differs after the bad requests")
	}
}

// TestTusExpiry: an upload abandoned past its expiry answers 410, its bytes are deleted, and a fresh
// upload for the same lecture works.
func TestTusExpiry(t *testing.T) {
	clip := testClip(t)
	f := newTusFixture(t, tusOpts{})
	id := f.lecture("Abandoned")
	url := f.create(f.tokA, id, int64(len(clip)))
	if resp, _ := f.patch(f.tokA, url, 0, clip[:100]); resp.StatusCode != 204 {
		t.Fatal("PATCH failed")
	}
	// Past its expiry but before the janitor ran: refused already.
	up, err := f.cat.GetUpload(context.Background(), id+"/"+strings.TrimPrefix(url[strings.LastIndex(url, "/"):], "/"))
	if err != nil {
		t.Fatal(err)
	}
	if err := f.cat.TouchUpload(context.Background(), up.ID, time.Now().Add(-time.Second)); err != nil {
		t.Fatal(err)
	}
	if resp, body := f.patch(f.tokA, url, 100, clip[100:200]); resp.StatusCode != 410 || errCode(t, body) != "upload_expired" {
		t.Fatalf("PATCH to an expired upload: %d %s", resp.StatusCode, body)
	}
	n, err := f.svc.ExpireUploads(context.Background(), time.Now())
	if err != nil || n != 1 {
		t.Fatalf("ExpireUploads = %d, %v; want 1", n, err)
	}
	dir, _, _ := f.store.LocalDir("uploads")
	if _, err := os.Stat(filepath.Join(dir, filepath.FromSlash(up.ID))); !os.IsNotExist(err) {
		t.Fatalf("expired upload's bytes still on disk (%v)", err)
	}
	if code, _ := f.offset(f.tokA, url); code != 410 {
		t.Fatalf("HEAD on an expired upload: %d, want 410", code)
	}
	url2 := f.create(f.tokA, id, int64(len(clip)))
	if resp, body := f.patch(f.tokA, url2, 0, clip); resp.StatusCode != 204 {
		t.Fatalf("new upload after expiry: %d %s", resp.StatusCode, body)
	}
}

// TestTusConcurrentPatches: many clients PATCHing one upload at once (a client retrying while its
// first request is still open) never interleave bytes: the upload ends byte-identical.
func TestTusConcurrentPatches(t *testing.T) {
	clip := testClip(t)
	f := newTusFixture(t, tusOpts{tweak: func(c *Config) { c.LockTimeout = 2 * time.Second }})
	id := f.lecture("Racing")
	url := f.create(f.tokA, id, int64(len(clip)))
	chunk := int64(len(clip)/5 + 1)
	for done := false; !done; {
		_, off := f.offset(f.tokA, url)
		var wg sync.WaitGroup
		statuses := make(chan int, 8)
		for range 8 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				end := min(off+chunk, int64(len(clip)))
				resp, _ := f.patch(f.tokA, url, off, clip[off:end])
				statuses <- resp.StatusCode
			}()
		}
		wg.Wait()
		close(statuses)
		ok, gone := 0, false
		for s := range statuses {
			switch s {
			case 204:
				ok++
			case 409, 423, 500: // lost the race: stale offset, or the lock
			case 404: // only if the winner completed the upload and its bytes became the source
				gone = true
			default:
				t.Fatalf("concurrent PATCH got %d", s)
			}
		}
		if ok == 0 {
			t.Fatalf("no PATCH at offset %d succeeded", off)
		}
		done = f.getLecture(id).Status == catalog.StatusQueued
		if gone && !done {
			t.Fatal("a PATCH got 404 while the upload was still receiving")
		}
	}
	if f.sourceSum(id) != sha256.Sum256(clip) {
		t.Fatal("concurrent PATCHes corrupted the upload")
	}
}

// TestTusAuth: no token 401; another teacher's lecture or upload looks missing (404); a revoked
// teacher's token is 401.
func TestTusAuth(t *testing.T) {
	f := newTusFixture(t, tusOpts{})
	id := f.lecture("Private")
	url := f.create(f.tokA, id, 100)
	hdr := map[string]string{"Tus-Resumable": "1.0.0", "Upload-Length": "100", "Upload-Metadata": "lecture " + b64(id)}
	if resp, body := f.req("POST", UploadsPath, "", hdr, nil); resp.StatusCode != 401 || errCode(t, body) != "unauthorized" {
		t.Fatalf("no token: %d %s", resp.StatusCode, body)
	}
	if resp, body := f.req("POST", UploadsPath, f.tokB, hdr, nil); resp.StatusCode != 404 {
		t.Fatalf("upload to another teacher's lecture: %d %s", resp.StatusCode, body)
	}
	if resp, body := f.patch(f.tokB, url, 0, []byte("x")); resp.StatusCode != 404 {
		t.Fatalf("PATCH another teacher's upload: %d %s", resp.StatusCode, body)
	}
	if code, _ := f.offset(f.tokB, url); code != 404 {
		t.Fatalf("HEAD another teacher's upload: %d", code)
	}
	for _, m := range []string{"GET", "PATCH", "DELETE"} {
		body := []byte(`{"title":"stolen"}`)
		resp, _ := f.req(m, "/api/v1/lectures/"+id, f.tokB, map[string]string{"Content-Type": "application/json"}, body)
		if resp.StatusCode != 404 {
			t.Fatalf("%s another teacher's lecture: %d, want 404", m, resp.StatusCode)
		}
	}
	if err := f.cat.RevokeTeacher(context.Background(), f.idA); err != nil {
		t.Fatal(err)
	}
	if resp, body := f.req("GET", "/api/v1/lectures/"+id, f.tokA, nil, nil); resp.StatusCode != 401 {
		t.Fatalf("revoked teacher's token: %d %s", resp.StatusCode, body)
	}
	if code, _ := f.offset(f.tokA, url); code != 401 {
		t.Fatalf("revoked teacher's HEAD: %d", code)
	}
}

// recordingPurger remembers what ingest asked the edges to purge.
type recordingPurger struct {
	mu       sync.Mutex
	prefixes []string
}

func (p *recordingPurger) Purge(_ context.Context, prefix string) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.prefixes = append(p.prefixes, prefix)
	return nil
}

// TestLectureLifecycle: replace makes a new pending version; captions attach; rename and describe;
// delete removes unfinished uploads, every object and the row, and tells the edges to purge.
func TestLectureLifecycle(t *testing.T) {
	clip := testClip(t)
	purger := &recordingPurger{}
	f := newTusFixture(t, tusOpts{tweak: func(c *Config) { c.Purger = purger }})
	id := f.lecture("Lifecycle")
	json := map[string]string{"Content-Type": "application/json"}

	// Captions before the video are kept for the first version.
	vtt := []byte("WEBVTT\n\n00:00:00.000 --> 00:00:02.000\nHello\n")
	if resp, body := f.req("PUT", "/api/v1/lectures/"+id+"/captions?language=ko", f.tokA, nil, vtt); resp.StatusCode != 200 {
		t.Fatalf("captions: %d %s", resp.StatusCode, body)
	}
	if resp, body := f.req("PUT", "/api/v1/lectures/"+id+"/captions", f.tokA, nil, []byte("1\n00:00:00,000 --> 00:00:02,000\nsrt\n")); resp.StatusCode != 422 || errCode(t, body) != "invalid_captions" {
		t.Fatalf("SRT as captions: %d %s", resp.StatusCode, body)
	}
	url := f.create(f.tokA, id, int64(len(clip)))
	if resp, body := f.patch(f.tokA, url, 0, clip); resp.StatusCode != 204 {
		t.Fatalf("upload: %d %s", resp.StatusCode, body)
	}
	l, _ := f.cat.GetLecture(context.Background(), id)
	if l.CaptionsKey == "" || l.CaptionsLanguage != "ko" || l.PendingVersion != 1 {
		t.Fatalf("after upload: captions %q (%q), pending v%d", l.CaptionsKey, l.CaptionsLanguage, l.PendingVersion)
	}
	// Replace: a second upload is the next version.
	url2 := f.create(f.tokA, id, int64(len(clip)))
	if resp, body := f.patch(f.tokA, url2, 0, clip); resp.StatusCode != 204 {
		t.Fatalf("replace: %d %s", resp.StatusCode, body)
	}
	if got := f.getLecture(id); got.PendingVersion != 2 || !got.Captions {
		t.Fatalf("after replace: pending v%d captions %v; want v2 with captions", got.PendingVersion, got.Captions)
	}
	// Rename and describe.
	if resp, body := f.req("PATCH", "/api/v1/lectures/"+id, f.tokA, json, []byte(`{"title":"  Renamed  ","description":"Chapter 3"}`)); resp.StatusCode != 200 {
		t.Fatalf("rename: %d %s", resp.StatusCode, body)
	}
	if got := f.getLecture(id); got.Title != "Renamed" || got.Description != "Chapter 3" {
		t.Fatalf("after rename: %q %q", got.Title, got.Description)
	}
	for body, code := range map[string]string{`{"title":""}`: "missing_title", `{"titel":"x"}`: "bad_json", `{}`: "nothing_to_change"} {
		if resp, b := f.req("PATCH", "/api/v1/lectures/"+id, f.tokA, json, []byte(body)); resp.StatusCode != 400 || errCode(t, b) != code {
			t.Fatalf("PATCH %s: %d %s, want 400 %s", body, resp.StatusCode, b, code)
		}
	}
	// An unfinished third upload, then delete.
	url3 := f.create(f.tokA, id, int64(len(clip)))
	if resp, _ := f.patch(f.tokA, url3, 0, clip[:100]); resp.StatusCode != 204 {
		t.Fatal("partial upload failed")
	}
	if resp, body := f.req("DELETE", "/api/v1/lectures/"+id, f.tokA, nil, nil); resp.StatusCode != 204 {
		t.Fatalf("delete: %d %s", resp.StatusCode, body)
	}
	if resp, _ := f.req("GET", "/api/v1/lectures/"+id, f.tokA, nil, nil); resp.StatusCode != 404 {
		t.Fatalf("deleted lecture: GET %d, want 404", resp.StatusCode)
	}
	if objs, _ := f.store.List(context.Background(), "sources/"+id+"/"); len(objs) != 0 {
		t.Fatalf("objects left after delete: %+v", objs)
	}
	dir, _, _ := f.store.LocalDir("uploads")
	if _, err := os.Stat(filepath.Join(dir, id)); !os.IsNotExist(err) {
		t.Fatalf("upload dir of the lecture still there (%v)", err)
	}
	if code, _ := f.offset(f.tokA, url3); code != 404 {
		t.Fatalf("HEAD of the deleted lecture's upload: %d, want 404", code)
	}
	if len(purger.prefixes) != 1 || purger.prefixes[0] != "/hls/"+id+"/" {
		t.Fatalf("purged %v, want [/hls/%s/]", purger.prefixes, id)
	}
}

// TestTusRecoversUploadFinishedBeforeCrash: the last byte was stored but the process died before the
// upload was validated and queued (here: bytes written to the tus store behind the handler's back).
// The client saw every byte acknowledged and will not send anything again; the next start-up
// finishes the upload.
func TestTusRecoversUploadFinishedBeforeCrash(t *testing.T) {
	clip := testClip(t)
	f := newTusFixture(t, tusOpts{})
	id := f.lecture("Crashed at the end")
	url := f.create(f.tokA, id, int64(len(clip)))
	tusID := url[strings.Index(url, UploadsPath)+len(UploadsPath):]
	fu := f.svc.tus.store.(*fileUploads)
	up, err := fu.store.GetUpload(context.Background(), tusID)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := up.WriteChunk(context.Background(), 0, bytes.NewReader(clip)); err != nil {
		t.Fatal(err)
	}
	if l := f.getLecture(id); l.Status != catalog.StatusAwaitingUpload {
		t.Fatalf("before the restart: %q", l.Status)
	}
	f.start() // the restart
	deadline := time.Now().Add(10 * time.Second)
	for f.getLecture(id).Status != catalog.StatusQueued {
		if time.Now().After(deadline) {
			t.Fatalf("start-up recovery did not finish the upload: %+v", f.getLecture(id))
		}
		time.Sleep(50 * time.Millisecond)
	}
	if f.sourceSum(id) != sha256.Sum256(clip) {
		t.Fatal("recovered source differs")
	}
	if code, off := f.offset(f.tokA, url); code != 200 || off != int64(len(clip)) {
		t.Fatalf("HEAD after recovery: %d %d", code, off)
	}
}

// TestTusTermination: a client's DELETE (tus termination) removes the bytes; the upload is gone (404)
// and the cancellation is counted.
func TestTusTermination(t *testing.T) {
	clip := testClip(t)
	f := newTusFixture(t, tusOpts{})
	id := f.lecture("Changed my mind")
	url := f.create(f.tokA, id, int64(len(clip)))
	if resp, _ := f.patch(f.tokA, url, 0, clip[:1000]); resp.StatusCode != 204 {
		t.Fatal("PATCH failed")
	}
	if resp, body := f.req("DELETE", url, f.tokA, map[string]string{"Tus-Resumable": "1.0.0"}, nil); resp.StatusCode != 204 {
		t.Fatalf("DELETE: %d %s", resp.StatusCode, body)
	}
	if code, _ := f.offset(f.tokA, url); code != 404 {
		t.Fatalf("HEAD after termination: %d, want 404", code)
	}
	dir, _, _ := f.store.LocalDir("uploads")
	tusID := url[strings.Index(url, UploadsPath)+len(UploadsPath):]
	if _, err := os.Stat(filepath.Join(dir, filepath.FromSlash(tusID))); !os.IsNotExist(err) {
		t.Fatalf("terminated upload's bytes still on disk (%v)", err)
	}
	if got := f.svc.stats.UploadsCancelled.Load(); got != 1 {
		t.Fatalf("cancelled uploads counted %d, want 1", got)
	}
	if l := f.getLecture(id); l.Upload != nil {
		t.Fatalf("lecture still shows the upload: %+v", l.Upload)
	}
}

// TestUploadMetrics: the ingest collector counts what happened to uploads and their bytes.
func TestUploadMetrics(t *testing.T) {
	clip := testClip(t)
	f := newTusFixture(t, tusOpts{})
	good := f.lecture("Counted")
	if resp, body := f.patch(f.tokA, f.create(f.tokA, good, int64(len(clip))), 0, clip); resp.StatusCode != 204 {
		t.Fatalf("upload: %d %s", resp.StatusCode, body)
	}
	notes := bytes.Repeat([]byte("notes\n"), 100)
	bad := f.lecture("Rejected")
	if resp, _ := f.patch(f.tokA, f.create(f.tokA, bad, int64(len(notes))), 0, notes); resp.StatusCode != 422 {
		t.Fatal("text file was not rejected")
	}
	reg := prometheus.NewPedanticRegistry()
	reg.MustRegister(f.svc.Collector())
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]float64{}
	for _, mf := range mfs {
		for _, m := range mf.GetMetric() {
			key := mf.GetName()
			for _, l := range m.GetLabel() {
				key += "," + l.GetName() + "=" + l.GetValue()
			}
			switch {
			case m.Counter != nil:
				got[key] = m.Counter.GetValue()
			case m.Histogram != nil:
				got[key+",count"] = float64(m.Histogram.GetSampleCount())
			}
		}
	}
	want := map[string]float64{
		"lectern_ingest_uploads_started_total":                   2,
		"lectern_ingest_uploads_total,kind=tus,result=completed": 1,
		"lectern_ingest_uploads_total,kind=any,result=rejected":  1,
		"lectern_ingest_received_bytes_total":                    float64(len(clip) + len(notes)),
		"lectern_ingest_upload_bytes_total":                      float64(len(clip)),
		"lectern_ingest_upload_duration_seconds,count":           1,
	}
	for k, v := range want {
		if got[k] != v {
			t.Errorf("%s = %v, want %v", k, got[k], v)
		}
	}
}
