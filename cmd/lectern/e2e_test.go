package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/lectern/lectern/internal/hls"
	"github.com/lectern/lectern/internal/testenv"
)

// The end-to-end tests run the real binary: built once here, started on free loopback ports with a temp
// data dir, driven over HTTP like a teacher and a student would.

var lecternBin string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "lectern-e2e-")
	if err != nil {
		panic(err)
	}
	lecternBin = filepath.Join(dir, "lectern")
	out, err := exec.Command("go", "build", "-o", lecternBin, ".").CombinedOutput()
	if err != nil {
		fmt.Fprintf(os.Stderr, "build lectern: %v\n%s", err, out)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

func freeAddr(t *testing.T) string {
	t.Helper()
	// Below the ephemeral range: a port from listening on :0 was once taken as the local end of
	// another test's connection before serve could bind it ("address already in use").
	return testenv.FreeAddr(t)
}

type stack struct {
	base, originBase, data string
	cmd                    *exec.Cmd
	stderr                 *bytes.Buffer
	exited                 chan error
}

// startServe starts `lectern serve` and waits until /readyz answers.
func startServe(t *testing.T, data string, extra ...string) *stack {
	t.Helper()
	pub, org := freeAddr(t), freeAddr(t)
	args := append([]string{"serve", "--listen", pub, "--origin-listen", org, "--data", data, "--log-level", "debug"}, extra...)
	cmd := exec.Command(lecternBin, args...)
	s := &stack{base: "http://" + pub, originBase: "http://" + org, data: data, cmd: cmd, stderr: &bytes.Buffer{}, exited: make(chan error, 1)}
	cmd.Stdout = io.Discard
	cmd.Stderr = &lockedWriter{w: s.stderr}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { s.exited <- cmd.Wait() }()
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		if t.Failed() {
			t.Logf("serve log:\n%s", tail(s.stderr.String(), 60))
		}
	})
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		if resp, err := http.Get(s.base + "/readyz"); err == nil {
			resp.Body.Close()
			if resp.StatusCode == 200 {
				return s
			}
		}
		select {
		case err := <-s.exited:
			t.Fatalf("serve exited early: %v\n%s", err, s.stderr.String())
		case <-time.After(100 * time.Millisecond):
		}
	}
	t.Fatalf("serve not ready after 30s\n%s", s.stderr.String())
	return nil
}

// runRefused runs lectern with args (env nil: the test's environment) where it should refuse to start,
// and returns its exit error and trimmed stderr. exited is false when it was still running after 20 s
// (it is killed then).
func runRefused(t *testing.T, env []string, args ...string) (err error, stderr string, exited bool) {
	t.Helper()
	cmd := exec.Command(lecternBin, args...)
	cmd.Dir = t.TempDir()
	cmd.Env = env
	var buf bytes.Buffer
	cmd.Stderr = &buf
	done := make(chan error, 1)
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { done <- cmd.Wait() }()
	select {
	case err = <-done:
		return err, strings.TrimSpace(buf.String()), true
	case <-time.After(20 * time.Second):
		_ = cmd.Process.Kill()
		<-done
		return nil, strings.TrimSpace(buf.String()), false
	}
}

type lockedWriter struct{ w *bytes.Buffer }

func (l *lockedWriter) Write(p []byte) (int, error) { return l.w.Write(p) } // exec copies from one goroutine

func tail(s string, n int) string {
	lines := strings.Split(s, "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

// sqliteDB is the catalog `serve --data DATA` uses by default.
func sqliteDB(data string) string { return "sqlite://" + filepath.Join(data, "lectern.db") }

func addTeacher(t *testing.T, db, name string) string {
	t.Helper()
	out, err := exec.Command(lecternBin, "teacher", "add", name, "--db", db).Output()
	if err != nil {
		t.Fatalf("teacher add: %v", err)
	}
	return strings.TrimSpace(string(out))
}

// uploadClip generates a test clip of the given length and uploads it; anything but 201 fails the test.
func uploadClip(t *testing.T, base, token, title string, seconds int) apiLecture {
	t.Helper()
	clip := filepath.Join(t.TempDir(), "clip.mp4")
	if err := generateClip(context.Background(), "ffmpeg", clip, time.Duration(seconds)*time.Second); err != nil {
		t.Fatal(err)
	}
	f, err := os.Open(clip)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	resp, body := upload(t, base, token, title, f)
	if resp.StatusCode != 201 {
		t.Fatalf("upload: %d %s", resp.StatusCode, body)
	}
	var lec apiLecture
	if err := json.Unmarshal(body, &lec); err != nil || lec.ID == "" {
		t.Fatalf("upload response %s: %v", body, err)
	}
	return lec
}

type apiLecture struct {
	ID          string  `json:"id"`
	Status      string  `json:"status"`
	Error       string  `json:"error"`
	Version     int     `json:"version"`
	Progress    float64 `json:"progress"`
	PlaybackURL string  `json:"playback_url"`
}

type apiError struct {
	Error struct {
		Code    string `json:"code"`
		Message string `json:"message"`
	} `json:"error"`
}

func upload(t *testing.T, base, token, title string, body io.Reader) (*http.Response, []byte) {
	t.Helper()
	req, _ := http.NewRequest("POST", base+"/api/v1/lectures?course=Physics&title="+title, body)
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	req.Header.Set("Content-Type", "video/mp4")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp, b
}

func getJSON(t *testing.T, url, token string, v any) int {
	t.Helper()
	req, _ := http.NewRequest("GET", url, nil)
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if err := json.NewDecoder(resp.Body).Decode(v); err != nil {
		t.Fatalf("GET %s: decode: %v", url, err)
	}
	return resp.StatusCode
}

func fetch(t *testing.T, url string) (*http.Response, []byte) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != 200 {
		t.Fatalf("GET %s: %d %s", url, resp.StatusCode, b)
	}
	return resp, b
}

// TestEndToEnd: a teacher uploads a 10 s clip, the worker transcodes it, and a student fetches every
// object through the edge; ffprobe (a real HLS client) reads the stream from the edge URL.
// It runs on the embedded default (SQLite, local disk) and on the parts used at scale (PostgreSQL, MinIO).
func TestEndToEnd(t *testing.T) {
	if testing.Short() {
		t.Skip("end-to-end: starts lectern and transcodes")
	}
	t.Run("sqlite+file", func(t *testing.T) {
		data := t.TempDir()
		endToEnd(t, data, sqliteDB(data))
	})
	t.Run("postgres+minio", func(t *testing.T) {
		db := testenv.PostgresURL(t)
		endToEnd(t, t.TempDir(), db, "--db", db, "--storage", testenv.S3URL(t))
	})
}

func endToEnd(t *testing.T, data, db string, args ...string) {
	token := addTeacher(t, db, "Ms. Kim")
	s := startServe(t, data, args...)
	lec := uploadClip(t, s.base, token, "Waves", 10)
	if lec.Status != "queued" && lec.Status != "transcoding" {
		t.Fatalf("status after upload = %q, want queued", lec.Status)
	}
	waitReady(t, s.base, token, &lec)
	wantPath := "/hls/" + lec.ID + "/v1/master.m3u8"
	if lec.Version != 1 || lec.PlaybackURL != wantPath {
		t.Fatalf("ready lecture: version %d playback %q, want 1 and %q", lec.Version, lec.PlaybackURL, wantPath)
	}

	// Every object, through the edge.
	masterURL := s.base + lec.PlaybackURL
	resp, body := fetch(t, masterURL)
	if ct := resp.Header.Get("Content-Type"); ct != "application/vnd.apple.mpegurl" {
		t.Errorf("master Content-Type = %q", ct)
	}
	if cc := resp.Header.Get("Cache-Control"); !strings.Contains(cc, "immutable") {
		t.Errorf("master Cache-Control = %q, want immutable", cc)
	}
	master, err := hls.ParseMaster(body)
	if err != nil {
		t.Fatalf("parse master: %v\n%s", err, body)
	}
	if len(master.Variants) == 0 {
		t.Fatalf("master has no variants:\n%s", body)
	}
	dir := s.base + "/hls/" + lec.ID + "/v1/"
	playlists := []string{}
	for _, v := range master.Variants {
		playlists = append(playlists, v.URI)
	}
	for _, a := range master.Audio {
		if a.URI != "" {
			playlists = append(playlists, a.URI)
		}
	}
	var segments, total int
	for _, p := range playlists {
		_, b := fetch(t, dir+p)
		media, err := hls.ParseMedia(b)
		if err != nil {
			t.Fatalf("parse %s: %v", p, err)
		}
		if !media.Ended || len(media.Segments) == 0 || media.InitURI == "" {
			t.Fatalf("%s: want a complete fMP4 VOD playlist, got %+v", p, media)
		}
		pdir := dir + p[:strings.LastIndex(p, "/")+1]
		_, init := fetch(t, pdir+media.InitURI)
		total += len(init)
		var secs float64
		for _, seg := range media.Segments {
			r, b := fetch(t, pdir+seg.URI)
			if r.Header.Get("Via") == "" {
				t.Errorf("%s: no Via header: the request did not pass the edge", seg.URI)
			}
			total += len(b)
			secs += seg.Duration
			segments++
		}
		if secs < 9 || secs > 11 {
			t.Errorf("%s: playlist covers %.1f s, want ~10", p, secs)
		}
	}
	t.Logf("fetched %d playlists, %d segments, %d bytes through the edge", len(playlists), segments, total)

	// A second fetch of the master is a cache hit at the edge.
	resp, _ = fetch(t, masterURL)
	if xc := resp.Header.Get("X-Cache"); xc != "HIT" {
		t.Errorf("second master fetch X-Cache = %q, want HIT", xc)
	}

	// A real HLS client reads the stream from the edge.
	out, err := exec.Command("ffprobe", "-v", "error", "-show_entries", "stream=codec_type,codec_name,width,height",
		"-of", "json", masterURL).CombinedOutput()
	if err != nil {
		t.Fatalf("ffprobe %s: %v\n%s", masterURL, err, out)
	}
	var probed struct {
		Streams []struct {
			CodecType string `json:"codec_type"`
			CodecName string `json:"codec_name"`
			Height    int    `json:"height"`
		} `json:"streams"`
	}
	if err := json.Unmarshal(out, &probed); err != nil {
		t.Fatalf("ffprobe output: %v\n%s", err, out)
	}
	var video, audio bool
	for _, st := range probed.Streams {
		video = video || (st.CodecType == "video" && st.CodecName == "h264" && st.Height > 0)
		audio = audio || (st.CodecType == "audio" && st.CodecName == "aac")
	}
	if !video || !audio {
		t.Fatalf("ffprobe via the edge: want h264 video and aac audio, got %s", out)
	}

	// The student page plays the same versioned URL.
	_, page := fetch(t, s.base+"/watch/"+lec.ID)
	if !bytes.Contains(page, []byte(lec.PlaybackURL)) || !bytes.Contains(page, []byte("/assets/hls.min.js")) {
		t.Errorf("watch page does not load hls.js with %s", lec.PlaybackURL)
	}

	// Metrics and health on both listeners.
	_, metrics := fetch(t, s.base+"/metrics")
	for _, m := range []string{"lectern_ingest_uploads_total", "lectern_edge_", "lectern_origin_"} {
		if !bytes.Contains(metrics, []byte(m)) {
			t.Errorf("/metrics lacks %s", m)
		}
	}
	fetch(t, s.originBase+"/healthz")
	fetch(t, s.base+"/healthz")

	// Graceful shutdown on SIGTERM.
	_ = s.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case err := <-s.exited:
		if err != nil {
			t.Errorf("serve exited with %v after SIGTERM", err)
		}
	case <-time.After(40 * time.Second):
		t.Error("serve did not stop within 40 s of SIGTERM")
	}
}

// storedVersions lists the version directories (v1, v2, ...) of a lecture in serve's file storage.
func storedVersions(t *testing.T, data, lectureID string) []string {
	t.Helper()
	entries, err := os.ReadDir(filepath.Join(data, "objects", "hls", lectureID))
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range entries {
		names = append(names, e.Name())
	}
	return names
}
