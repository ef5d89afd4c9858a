package main

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/tus/tusd/v2/pkg/filelocker"
	"github.com/tus/tusd/v2/pkg/filestore"
	tusd "github.com/tus/tusd/v2/pkg/handler"
	"golang.org/x/exp/slog" // the logger type tusd v2.9.0 takes

	"github.com/lectern/lectern/internal/tusclient"
)

func TestFormatProgress(t *testing.T) {
	const m = 1 << 20
	for _, tc := range []struct {
		sent, total int64
		rate        float64
		eta         time.Duration
		bar         bool
		want        string
	}{
		{0, 100 * m, -1, -1, true, "[>                       ]   0%  0.0/100.0 MiB  --- MiB/s  ETA --:--"},
		{50 * m, 100 * m, 5 * m, 10 * time.Second, true, "[============>           ]  50%  50.0/100.0 MiB  5.0 MiB/s  ETA 0:10"},
		{100 * m, 100 * m, 12.25 * m, 0, true, "[========================] 100%  100.0/100.0 MiB  12.2 MiB/s"},
		{m, 4 * m, 1.5 * m, 95 * time.Minute, false, "upload  25%  1.0/4.0 MiB  1.5 MiB/s  ETA 1:35:00"},
		{0, 0, -1, -1, false, "upload 100%  0.0/0.0 MiB  --- MiB/s"},
	} {
		if got := formatProgress(tc.sent, tc.total, tc.rate, tc.eta, tc.bar); got != tc.want {
			t.Errorf("formatProgress(%d, %d, %.0f, %v, %v)\n got %q\nwant %q", tc.sent, tc.total, tc.rate, tc.eta, tc.bar, got, tc.want)
		}
	}
	for status, want := range map[string]string{
		"queued":      "queued: waiting for a worker",
		"transcoding": "transcoding  42%  ETA 1:05",
	} {
		if got := formatTranscode(status, 42.7, 65); got != want {
			t.Errorf("formatTranscode(%s) = %q, want %q", status, got, want)
		}
	}
}

// fakeClock advances by step on every reading.
type fakeClock struct {
	t    time.Time
	step time.Duration
}

func (c *fakeClock) now() time.Time { c.t = c.t.Add(c.step); return c.t }

func TestProgressBar(t *testing.T) {
	const total = 100 << 20
	t.Run("terminal", func(t *testing.T) {
		// 1000 updates 10 ms apart at 10 MiB/s: redrawn every 200 ms (about 50 times), the last one at 100%.
		var out bytes.Buffer
		clock := &fakeClock{t: time.Unix(0, 0), step: 10 * time.Millisecond}
		p := newProgressBar(&out, true, total, clock.now)
		for i := int64(1); i <= 1000; i++ {
			p.update(i * total / 1000)
		}
		p.done()
		draws := strings.Count(out.String(), "\r")
		if draws < 45 || draws > 55 {
			t.Errorf("%d redraws for 10 s of updates, want about 50", draws)
		}
		lines := strings.Split(out.String(), "\r")
		if last := lines[len(lines)-1]; !strings.HasPrefix(last, "[========================] 100%  100.0/100.0 MiB  10.0 MiB/s") || !strings.HasSuffix(last, "\n") {
			t.Errorf("last draw = %q", last)
		}
		if mid := lines[len(lines)/2]; !strings.Contains(mid, "10.0 MiB/s  ETA 0:0") {
			t.Errorf("a draw half way = %q, want the rate and an ETA", mid)
		}
	})
	t.Run("log", func(t *testing.T) {
		// Resumed at 35%: a line at 40, 50, ... 100%.
		var out bytes.Buffer
		clock := &fakeClock{t: time.Unix(0, 0), step: 10 * time.Millisecond}
		p := newProgressBar(&out, false, total, clock.now)
		for i := int64(350); i <= 1000; i++ {
			p.update(i * total / 1000)
		}
		p.done()
		lines := strings.Split(strings.TrimSuffix(out.String(), "\n"), "\n")
		if len(lines) != 7 || !strings.HasPrefix(lines[0], "upload  40%") || !strings.HasPrefix(lines[6], "upload 100%") {
			t.Errorf("plain output:\n%s", out.String())
		}
		if strings.Contains(out.String(), "\r") {
			t.Error("carriage return in plain output")
		}
	})
	t.Run("rate after a failed request", func(t *testing.T) {
		var out bytes.Buffer
		clock := &fakeClock{t: time.Unix(0, 0), step: 100 * time.Millisecond}
		p := newProgressBar(&out, true, total, clock.now)
		for i := int64(1); i <= 20; i++ {
			p.update(i << 20)
		}
		p.update(5 << 20) // the server had only 5 MiB: no negative rate
		if got := p.line(5 << 20); !strings.Contains(got, "--- MiB/s") {
			t.Errorf("line right after going back = %q, want the rate unknown", got)
		}
	})
}

func TestUploadStates(t *testing.T) {
	dir := t.TempDir()
	s := uploadStates{path: filepath.Join(dir, "sub", "uploads.json")}
	mtime := time.Unix(1700000000, 5)
	k := uploadKey("http://h:8080/", "/v/a.mp4", 10, mtime)
	for _, other := range []string{
		uploadKey("http://h:8080", "/v/a.mp4", 11, mtime),
		uploadKey("http://h:8080", "/v/a.mp4", 10, mtime.Add(time.Nanosecond)),
		uploadKey("http://h:9090", "/v/a.mp4", 10, mtime),
		uploadKey("http://h:8080", "/v/b.mp4", 10, mtime),
	} {
		if other == k {
			t.Errorf("key %q names another file too", k)
		}
	}
	if k != uploadKey("http://h:8080", "/v/a.mp4", 10, mtime) {
		t.Error("a trailing slash on the server changes the key")
	}
	if _, ok, err := s.get(k); ok || err != nil {
		t.Fatalf("get before any put: %v %v", ok, err)
	}
	if err := s.put(k, uploadEntry{LectureID: "L1", UploadURL: "http://h/u/1"}); err != nil {
		t.Fatal(err)
	}
	e, ok, err := s.get(k)
	if !ok || err != nil || e.LectureID != "L1" || e.UploadURL != "http://h/u/1" || e.Updated.IsZero() {
		t.Fatalf("get = %+v %v %v", e, ok, err)
	}

	// Concurrent runs (one per terminal) keep each other's entries.
	var wg sync.WaitGroup
	for i := range 20 {
		wg.Go(func() {
			if err := s.put(fmt.Sprint("k", i), uploadEntry{LectureID: fmt.Sprint(i)}); err != nil {
				t.Error(err)
			}
		})
	}
	wg.Wait()
	m, err := s.read()
	if err != nil || len(m) != 21 {
		t.Fatalf("%d entries after 20 concurrent puts (+1), %v", len(m), err)
	}

	// Old entries go; removing one leaves the rest.
	m["old"] = uploadEntry{LectureID: "L0", Updated: time.Now().Add(-stateMaxAge - time.Hour)}
	b, _ := json.Marshal(m)
	if err := os.WriteFile(s.path, b, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := s.remove(k); err != nil {
		t.Fatal(err)
	}
	m, _ = s.read()
	if _, ok := m[k]; ok || len(m) != 20 {
		t.Errorf("after remove: %d entries, removed one present %v", len(m), ok)
	}
	if _, err := os.Stat(s.path + ".lock"); !os.IsNotExist(err) {
		t.Errorf("lock file left behind: %v", err)
	}

	if err := os.WriteFile(s.path, []byte("{not json"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, _, err := s.get(k); err == nil || !strings.Contains(err.Error(), "delete it") {
		t.Errorf("damaged state file: %v", err)
	}
}

func TestDefaultStatePath(t *testing.T) {
	t.Setenv("HOME", "/home/kim")
	t.Setenv("LECTERN_STATE_DIR", "")
	t.Setenv("XDG_STATE_HOME", "")
	for _, tc := range []struct{ stateDir, xdg, want string }{
		{"", "", "/home/kim/.local/state/lectern/uploads.json"},
		{"", "/xdg", "/xdg/lectern/uploads.json"},
		{"", "relative", "/home/kim/.local/state/lectern/uploads.json"}, // XDG: relative paths are ignored
		{"/tmp/s", "/xdg", "/tmp/s/uploads.json"},
	} {
		t.Setenv("LECTERN_STATE_DIR", tc.stateDir)
		t.Setenv("XDG_STATE_HOME", tc.xdg)
		if got, err := defaultStatePath(); err != nil || got != tc.want {
			t.Errorf("LECTERN_STATE_DIR=%q XDG_STATE_HOME=%q: %q %v, want %q", tc.stateDir, tc.xdg, got, err, tc.want)
		}
	}
}

// fakeLectern is the lecture API's part that `lectern upload` uses, in front of the real tusd handler,
// so the command's decisions (create, resume, start over, report) are tested without a transcode. The
// end-to-end test below runs the command against the real server.
type fakeLectern struct {
	URL, dir string
	mu       sync.Mutex
	lectures map[string]*lectureInfo
	captions map[string]string // lecture id -> "language:text"
	polls    map[string]int    // GETs of a queued lecture
	patched  atomic.Int64      // PATCH body bytes received
	nextID   int
}

const fakeToken = "t0ken"

func newFakeLectern(t *testing.T) *fakeLectern {
	f := &fakeLectern{dir: t.TempDir(), lectures: map[string]*lectureInfo{}, captions: map[string]string{}, polls: map[string]int{}}
	composer := tusd.NewStoreComposer()
	filestore.New(f.dir).UseIn(composer)
	filelocker.New(f.dir).UseIn(composer)
	h, err := tusd.NewHandler(tusd.Config{
		BasePath:      "/api/v1/uploads/",
		StoreComposer: composer,
		Logger:        slog.New(slog.NewTextHandler(io.Discard, nil)),
		PreUploadCreateCallback: func(ev tusd.HookEvent) (tusd.HTTPResponse, tusd.FileInfoChanges, error) {
			f.mu.Lock()
			defer f.mu.Unlock()
			if f.lectures[ev.Upload.MetaData["lecture"]] == nil || ev.Upload.MetaData["filename"] == "" {
				return tusd.HTTPResponse{}, tusd.FileInfoChanges{}, jsonError(404, "not_found", "no such lecture")
			}
			return tusd.HTTPResponse{}, tusd.FileInfoChanges{}, nil
		},
		PreFinishResponseCallback: func(ev tusd.HookEvent) (tusd.HTTPResponse, error) {
			f.mu.Lock()
			defer f.mu.Unlock()
			lec := f.lectures[ev.Upload.MetaData["lecture"]]
			head := make([]byte, 3)
			file, _ := os.Open(filepath.Join(f.dir, ev.Upload.ID))
			_, _ = io.ReadFull(file, head)
			file.Close()
			if string(head) == "BAD" {
				lec.Status, lec.Error = "failed", "not a video: no audio or video stream"
				return tusd.HTTPResponse{}, jsonError(422, "invalid_media", lec.Error)
			}
			lec.Status = "queued"
			return tusd.HTTPResponse{}, nil
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	mux := http.NewServeMux()
	mux.Handle("/api/v1/uploads/", http.StripPrefix("/api/v1/uploads/", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodPatch {
			r.Body = countingBody{r.Body, &f.patched}
		}
		h.ServeHTTP(w, r)
	})))
	mux.HandleFunc("POST /api/v1/lectures", func(w http.ResponseWriter, r *http.Request) {
		var nl newLecture
		if err := json.NewDecoder(r.Body).Decode(&nl); err != nil || nl.Title == "" || nl.Course == "" {
			writeJSON(w, 400, map[string]any{"error": map[string]string{"code": "bad_request", "message": "title and course are required"}})
			return
		}
		f.mu.Lock()
		f.nextID++
		lec := &lectureInfo{ID: fmt.Sprint("L", f.nextID), Status: "awaiting_upload"}
		f.lectures[lec.ID] = lec
		f.mu.Unlock()
		writeJSON(w, 201, lec)
	})
	mux.HandleFunc("GET /api/v1/lectures/{id}", func(w http.ResponseWriter, r *http.Request) {
		f.mu.Lock()
		defer f.mu.Unlock()
		lec := f.lectures[r.PathValue("id")]
		if lec == nil {
			writeJSON(w, 404, map[string]any{"error": map[string]string{"code": "not_found", "message": "no such lecture"}})
			return
		}
		if lec.Status == "queued" || lec.Status == "transcoding" {
			// --wait: transcoding at the next poll, ready at the one after.
			if f.polls[lec.ID]++; f.polls[lec.ID] > 2 {
				lec.Status, lec.Version, lec.WatchURL, lec.PlaybackURL = "ready", 1, "/watch/"+lec.ID, "/hls/"+lec.ID+"/v1/master.m3u8"
			} else if f.polls[lec.ID] == 2 {
				lec.Status, lec.Progress, lec.ETASeconds = "transcoding", 40, 3
			}
		}
		writeJSON(w, 200, lec)
	})
	mux.HandleFunc("PUT /api/v1/lectures/{id}/captions", func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		f.mu.Lock()
		defer f.mu.Unlock()
		f.captions[r.PathValue("id")] = r.URL.Query().Get("language") + ":" + string(b)
		writeJSON(w, 200, f.lectures[r.PathValue("id")])
	})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Authorization") != "Bearer "+fakeToken {
			writeJSON(w, 401, map[string]any{"error": map[string]string{"code": "unauthorized", "message": "missing or unknown token"}})
			return
		}
		mux.ServeHTTP(w, r)
	}))
	t.Cleanup(srv.Close)
	f.URL = srv.URL
	return f
}

func jsonError(status int, code, msg string) tusd.Error {
	b, _ := json.Marshal(map[string]any{"error": map[string]string{"code": code, "message": msg}})
	return tusd.Error{ErrorCode: code, Message: msg, HTTPResponse: tusd.HTTPResponse{
		StatusCode: status, Body: string(b), Header: tusd.HTTPHeader{"Content-Type": "application/json"},
	}}
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

type countingBody struct {
	io.ReadCloser
	n *atomic.Int64
}

func (c countingBody) Read(p []byte) (int, error) {
	n, err := c.ReadCloser.Read(p)
	c.n.Add(int64(n))
	return n, err
}

// storedSum is the sha256 of the single finished upload in the fake's tusd store.
func (f *fakeLectern) stored(t *testing.T) [32]byte {
	t.Helper()
	infos, _ := filepath.Glob(filepath.Join(f.dir, "*.info"))
	if len(infos) == 0 {
		t.Fatal("no upload on the server")
	}
	b, err := os.ReadFile(strings.TrimSuffix(infos[len(infos)-1], ".info"))
	if err != nil {
		t.Fatal(err)
	}
	return sha256.Sum256(b)
}

func randomFile(t *testing.T, size int, prefix string) (string, []byte) {
	t.Helper()
	b := make([]byte, size)
	_, _ = rand.NewChaCha8([32]byte{9}).Read(b)
	copy(b, prefix)
	p := filepath.Join(t.TempDir(), "talk.mp4")
	if err := os.WriteFile(p, b, 0o600); err != nil {
		t.Fatal(err)
	}
	return p, b
}

// upload runs `lectern upload` in-process.
func runUploadCmd(args ...string) (stdout, stderr string, code int) {
	var o, e bytes.Buffer
	code = run(context.Background(), append([]string{"upload"}, args...), &o, &e)
	return o.String(), e.String(), code
}

// TestUploadCommand drives `lectern upload` in-process against the fake server: a first upload with
// captions and --wait, a resume from the state file, an upload the server lost, and the errors a teacher
// must be able to act on.
func TestUploadCommand(t *testing.T) {
	t.Setenv("LECTERN_STATE_DIR", t.TempDir())
	t.Setenv("LECTERN_TOKEN", fakeToken)
	states := uploadStates{path: filepath.Join(os.Getenv("LECTERN_STATE_DIR"), "uploads.json")}
	vtt := filepath.Join(t.TempDir(), "en.vtt")
	if err := os.WriteFile(vtt, []byte("WEBVTT\n\n00:00.000 --> 00:01.000\nhello\n"), 0o600); err != nil {
		t.Fatal(err)
	}

	t.Run("upload, captions, wait", func(t *testing.T) {
		f := newFakeLectern(t)
		file, src := randomFile(t, 3<<20, "")
		out, errOut, code := runUploadCmd(file, "--server", f.URL, "--title", "Waves", "--course", "Physics",
			"--captions", vtt, "--captions-language", "ko", "--chunk-size", "1MiB", "--wait")
		if code != 0 {
			t.Fatalf("exit %d\nstdout %s\nstderr %s", code, out, errOut)
		}
		if f.stored(t) != sha256.Sum256(src) {
			t.Error("stored upload differs from the file")
		}
		if got := f.captions["L1"]; !strings.HasPrefix(got, "ko:WEBVTT") {
			t.Errorf("captions = %q", got)
		}
		for _, want := range []string{"lecture L1 queued\n", "lecture L1 ready\n", "watch:    " + f.URL + "/watch/L1\n", "playback: " + f.URL + "/hls/L1/v1/master.m3u8\n"} {
			if !strings.Contains(out, want) {
				t.Errorf("stdout lacks %q:\n%s", want, out)
			}
		}
		for _, want := range []string{"created lecture L1", "upload 100%  3.0/3.0 MiB", "transcoding  40%  ETA 0:03"} {
			if !strings.Contains(errOut, want) {
				t.Errorf("stderr lacks %q:\n%s", want, errOut)
			}
		}
		if m, _ := states.read(); len(m) != 0 {
			t.Errorf("state after a finished upload: %v", m)
		}
	})

	t.Run("resume", func(t *testing.T) {
		f := newFakeLectern(t)
		file, src := randomFile(t, 4<<20, "")
		st, _ := os.Stat(file)
		key := uploadKey(f.URL, file, st.Size(), st.ModTime())
		// An earlier run created the lecture and sent half the file, then died.
		f.lectures["L7"] = &lectureInfo{ID: "L7", Status: "awaiting_upload"}
		c := tusclient.New(http.Header{"Authorization": {"Bearer " + fakeToken}})
		c.StopAfter = 2 << 20
		u, err := c.Create(context.Background(), f.URL+"/api/v1/uploads/", st.Size(), map[string]string{"lecture": "L7", "filename": "talk.mp4"})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := c.Upload(context.Background(), u, bytes.NewReader(src), 0, st.Size(), nil); err != tusclient.ErrStopped {
			t.Fatal(err)
		}
		if err := states.put(key, uploadEntry{LectureID: "L7", UploadURL: u}); err != nil {
			t.Fatal(err)
		}
		before := f.patched.Load()
		// No --title or --course: the lecture exists.
		out, errOut, code := runUploadCmd(file, "--server", f.URL)
		if code != 0 || !strings.Contains(errOut, "resuming at 50%") || !strings.Contains(out, "lecture L7 queued") {
			t.Fatalf("exit %d\nstdout %s\nstderr %s", code, out, errOut)
		}
		if sent := f.patched.Load() - before; sent != 2<<20 {
			t.Errorf("resumed run sent %d bytes, want the missing %d", sent, 2<<20)
		}
		if f.stored(t) != sha256.Sum256(src) {
			t.Error("stored upload differs from the file")
		}
		if _, ok, _ := states.get(key); ok {
			t.Error("state entry left after the upload finished")
		}
	})

	t.Run("upload gone", func(t *testing.T) {
		f := newFakeLectern(t)
		file, src := randomFile(t, 1<<20, "")
		st, _ := os.Stat(file)
		key := uploadKey(f.URL, file, st.Size(), st.ModTime())
		f.lectures["L5"] = &lectureInfo{ID: "L5", Status: "awaiting_upload"}
		f.nextID = 5
		if err := states.put(key, uploadEntry{LectureID: "L5", UploadURL: f.URL + "/api/v1/uploads/expired"}); err != nil {
			t.Fatal(err)
		}
		out, errOut, code := runUploadCmd(file, "--server", f.URL, "--title", "Waves", "--course", "Physics")
		if code != 0 || !strings.Contains(errOut, "gone from the server") || !strings.Contains(out, "lecture L5 queued") {
			t.Fatalf("same lecture, new upload: exit %d\nstdout %s\nstderr %s", code, out, errOut)
		}
		if f.stored(t) != sha256.Sum256(src) {
			t.Error("stored upload differs from the file")
		}
		// The lecture is gone as well: a new one.
		if err := states.put(key, uploadEntry{LectureID: "L404", UploadURL: f.URL + "/api/v1/uploads/expired"}); err != nil {
			t.Fatal(err)
		}
		out, errOut, code = runUploadCmd(file, "--server", f.URL, "--title", "Waves", "--course", "Physics")
		if code != 0 || !strings.Contains(errOut, "lecture L404 no longer exists") || !strings.Contains(out, "lecture L6 queued") {
			t.Fatalf("new lecture: exit %d\nstdout %s\nstderr %s", code, out, errOut)
		}
	})

	t.Run("errors", func(t *testing.T) {
		f := newFakeLectern(t)
		good, _ := randomFile(t, 1000, "")
		bad, _ := randomFile(t, 1000, "BAD")
		down := httptest.NewServer(http.NotFoundHandler())
		down.Close()
		for _, tc := range []struct {
			name string
			args []string
			want string
		}{
			{"missing file", []string{"/no/such.mp4"}, "/no/such.mp4: no such file"},
			{"directory", []string{t.TempDir()}, "is not a regular file"},
			{"no title", []string{good, "--course", "C"}, "--title and --course are required"},
			{"bad token", []string{good, "--token", "wrong"}, "the server did not accept the token: check --token / LECTERN_TOKEN"},
			{"no token", []string{good, "--token", ""}, "pass --token or set LECTERN_TOKEN"},
			{"unreachable", []string{good, "--server", down.URL}, "cannot reach the Lectern server at " + down.URL},
			{"rejected file", []string{bad}, "the server rejected talk.mp4: not a video: no audio or video stream"},
			{"bad server URL", []string{good, "--server", "lectern.example.edu"}, "want a URL like"},
		} {
			t.Run(tc.name, func(t *testing.T) {
				args := append([]string{"--server", f.URL, "--title", "T", "--course", "C"}, tc.args...)
				if tc.name == "no title" {
					args = append([]string{"--server", f.URL}, tc.args...)
				}
				out, errOut, code := runUploadCmd(args...)
				if code != 1 || !strings.Contains(errOut, tc.want) || strings.Count(strings.TrimSpace(errOut), "\n") > 3 {
					t.Errorf("exit %d, want 1 and %q\nstdout %s\nstderr %s", code, tc.want, out, errOut)
				}
			})
		}
		if m, _ := states.read(); len(m) != 0 {
			t.Errorf("rejected or failed runs left state: %v", m)
		}
	})
}

// runUploadBin runs the lectern binary's upload command with env added to the environment.
func runUploadBin(t *testing.T, env []string, args ...string) (stdout, stderr string, code int) {
	t.Helper()
	cmd := exec.Command(lecternBin, append([]string{"upload"}, args...)...)
	cmd.Env = append(os.Environ(), env...)
	var o, e bytes.Buffer
	cmd.Stdout, cmd.Stderr = &o, &e
	err := cmd.Run()
	var exit *exec.ExitError
	switch {
	case err == nil:
	case errors.As(err, &exit):
		code = exit.ExitCode()
	default:
		t.Fatal(err)
	}
	return o.String(), e.String(), code
}

// storedSource is the sha256 of a lecture's uploaded video in serve's file storage (its captions sit
// next to it).
func storedSource(t *testing.T, data, lectureID string) [32]byte {
	t.Helper()
	var found []string
	root := filepath.Join(data, "objects", "sources", lectureID)
	_ = filepath.WalkDir(root, func(p string, d os.DirEntry, err error) error {
		if err == nil && d.Type().IsRegular() && !strings.HasPrefix(d.Name(), "captions-") {
			found = append(found, p)
		}
		return nil
	})
	if len(found) != 1 {
		t.Fatalf("want one stored source under %s, found %v", root, found)
	}
	b, err := os.ReadFile(found[0])
	if err != nil {
		t.Fatal(err)
	}
	return sha256.Sum256(b)
}

// TestUploadEndToEnd runs `lectern upload` against `lectern serve`: a clip with captions followed to
// ready with --wait, then an upload whose process stops half way (the test hook exits like a closed
// laptop) and a second run that resumes it and stores the file byte for byte.
func TestUploadEndToEnd(t *testing.T) {
	if testing.Short() {
		t.Skip("end-to-end: starts lectern and transcodes")
	}
	data := t.TempDir()
	token := addTeacher(t, sqliteDB(data), "Ms. Kim")
	s := startServe(t, data)
	env := []string{"LECTERN_SERVER=" + s.base, "LECTERN_TOKEN=" + token, "LECTERN_STATE_DIR=" + t.TempDir()}
	dir := t.TempDir()
	vtt := filepath.Join(dir, "ko.vtt")
	if err := os.WriteFile(vtt, []byte("WEBVTT\n\n00:00.000 --> 00:02.000\n안녕하세요\n"), 0o600); err != nil {
		t.Fatal(err)
	}

	t.Run("captions and wait", func(t *testing.T) {
		clip := filepath.Join(dir, "waves.mp4")
		if err := generateClip(context.Background(), "ffmpeg", clip, 4*time.Second); err != nil {
			t.Fatal(err)
		}
		start := time.Now()
		out, errOut, code := runUploadBin(t, env, clip, "--title", "Waves", "--course", "Physics",
			"--captions", vtt, "--captions-language", "ko", "--wait")
		if code != 0 {
			t.Fatalf("exit %d\nstdout %s\nstderr %s", code, out, errOut)
		}
		t.Logf("upload + transcode in %v\n%s%s", time.Since(start).Round(time.Millisecond), out, errOut)
		var id string
		if _, err := fmt.Sscanf(out, "lecture %s", &id); err != nil {
			t.Fatalf("no lecture id in %q", out)
		}
		if !strings.Contains(out, "lecture "+id+" ready\n") || !strings.Contains(out, "playback: "+s.base+"/hls/"+id+"/v1/master.m3u8") {
			t.Errorf("stdout:\n%s", out)
		}
		var lec struct {
			Status   string `json:"status"`
			Captions bool   `json:"captions"`
		}
		getJSON(t, s.base+"/api/v1/lectures/"+id, token, &lec)
		if lec.Status != "ready" || !lec.Captions {
			t.Errorf("lecture after upload --wait: %+v, want ready with captions", lec)
		}
		_, master := fetch(t, s.base+"/hls/"+id+"/v1/master.m3u8")
		if !bytes.Contains(master, []byte("TYPE=SUBTITLES")) || !bytes.Contains(master, []byte(`LANGUAGE="ko"`)) {
			t.Errorf("master has no Korean SUBTITLES rendition:\n%s", master)
		}
		if want := sha256.Sum256(mustRead(t, clip)); storedSource(t, data, id) != want {
			t.Error("stored source differs from the uploaded file")
		}
	})

	t.Run("interrupted and resumed", func(t *testing.T) {
		clip := filepath.Join(dir, "tides.mp4")
		if err := generateClip(context.Background(), "ffmpeg", clip, 6*time.Second); err != nil {
			t.Fatal(err)
		}
		src := mustRead(t, clip)
		half := len(src) / 2
		args := []string{clip, "--title", "Tides", "--course", "Physics", "--chunk-size", "16KiB"}
		out, errOut, code := runUploadBin(t, append(env, fmt.Sprint(stopAfterEnv, "=", half)), args...)
		if code != exitStopped {
			t.Fatalf("first run: exit %d, want %d (stopped)\nstdout %s\nstderr %s", code, exitStopped, out, errOut)
		}
		var id string
		if _, err := fmt.Sscanf(errOut, "created lecture %s", &id); err != nil {
			t.Fatalf("no lecture id in %q", errOut)
		}
		var lec struct {
			Status string `json:"status"`
			Upload *struct {
				Offset int64 `json:"offset"`
				Size   int64 `json:"size"`
			} `json:"upload"`
		}
		getJSON(t, s.base+"/api/v1/lectures/"+id, token, &lec)
		if lec.Status != "awaiting_upload" || lec.Upload == nil || lec.Upload.Offset != int64(half) || lec.Upload.Size != int64(len(src)) {
			t.Fatalf("lecture after the interrupted run: %+v (upload %+v), want %d of %d bytes", lec, lec.Upload, half, len(src))
		}

		out, errOut, code = runUploadBin(t, env, args...)
		if code != 0 {
			t.Fatalf("second run: exit %d\nstdout %s\nstderr %s", code, out, errOut)
		}
		if !strings.Contains(errOut, fmt.Sprintf("resuming at %d%%", half*100/len(src))) || strings.Contains(errOut, "created lecture") {
			t.Errorf("second run did not resume the upload:\n%s", errOut)
		}
		if !strings.HasPrefix(out, "lecture "+id+" ") {
			t.Errorf("second run reports another lecture:\n%s", out)
		}
		if storedSource(t, data, id) != sha256.Sum256(src) {
			t.Error("stored source differs from the uploaded file")
		}
		states, _ := os.ReadFile(filepath.Join(env[2][len("LECTERN_STATE_DIR="):], "uploads.json"))
		if strings.Contains(string(states), id) {
			t.Errorf("state file still holds the finished upload:\n%s", states)
		}
	})
}

func mustRead(t *testing.T, path string) []byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return b
}
