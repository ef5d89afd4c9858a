package main

import (
	"bytes"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// TestBadUploads: each bad upload gets a clear 4xx with a message and leaves no lecture and no object.
func TestBadUploads(t *testing.T) {
	if testing.Short() {
		t.Skip("end-to-end: starts lectern")
	}
	data := t.TempDir()
	token := addTeacher(t, sqliteDB(data), "Mr. Park")
	s := startServe(t, data)

	cases := []struct {
		name, token, title string
		body               []byte
		status             int
		code, mentions     string
	}{
		{"zero-byte file", token, "Empty", nil, 400, "empty_upload", "empty"},
		{"text file named .mp4", token, "Notes", []byte(strings.Repeat("these are my lecture notes, not a video\n", 50)), 422, "invalid_media", "not a video"},
		{"no token", "", "Anonymous", []byte("whatever"), 401, "unauthorized", "Authorization: Bearer"},
		{"wrong token", "lt_not-a-real-token", "Forged", []byte("whatever"), 401, "unauthorized", "unknown API token"},
		{"no title", token, "", []byte("x"), 400, "missing_title", "title"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			resp, body := upload(t, s.base, tc.token, tc.title, bytes.NewReader(tc.body))
			if resp.StatusCode != tc.status {
				t.Fatalf("status %d, want %d: %s", resp.StatusCode, tc.status, body)
			}
			var e apiError
			if err := json.Unmarshal(body, &e); err != nil {
				t.Fatalf("error body is not the JSON error shape: %s", body)
			}
			if e.Error.Code != tc.code || !strings.Contains(e.Error.Message, tc.mentions) {
				t.Fatalf("error = %+v, want code %q and a message mentioning %q", e.Error, tc.code, tc.mentions)
			}
		})
	}

	var list struct {
		Lectures []apiLecture `json:"lectures"`
	}
	if code := getJSON(t, s.base+"/api/v1/lectures", token, &list); code != 200 {
		t.Fatalf("list lectures: %d", code)
	}
	if len(list.Lectures) != 0 {
		t.Errorf("bad uploads left lectures behind: %+v", list.Lectures)
	}
	var objects []string
	_ = filepath.Walk(filepath.Join(data, "objects"), func(p string, info os.FileInfo, err error) error {
		if err == nil && !info.IsDir() {
			objects = append(objects, p)
		}
		return nil
	})
	if len(objects) != 0 {
		t.Errorf("bad uploads left files in storage: %v", objects)
	}
	tmp, _ := os.ReadDir(filepath.Join(data, "tmp"))
	if len(tmp) != 0 {
		t.Errorf("bad uploads left spool files: %d", len(tmp))
	}

	// A lecture id that is not the teacher's, or does not exist: 404 in the JSON shape.
	var e apiError
	if code := getJSON(t, s.base+"/api/v1/lectures/nosuchlecture", token, &e); code != 404 || e.Error.Code != "not_found" {
		t.Errorf("missing lecture: %d %+v", code, e)
	}
}

// TestStartupErrors: a missing ffmpeg, an unreachable database and a bad storage URL each stop start-up
// with one clear line saying what to fix.
func TestStartupErrors(t *testing.T) {
	if testing.Short() {
		t.Skip("runs the lectern binary")
	}
	cases := []struct {
		name     string
		args     []string
		mentions []string
	}{
		{"missing ffmpeg", []string{"--ffmpeg", "/nonexistent/ffmpeg"}, []string{"ffmpeg", "install"}},
		{"unreachable database", []string{"--db", "postgres://lectern@127.0.0.1:1/lectern?sslmode=disable"}, []string{"database", "--db"}},
		{"bad storage URL", []string{"--storage", "ftp://example/bucket"}, []string{"storage", "--storage"}},
		{"bad db scheme", []string{"--db", "mysql://x/y"}, []string{"--db"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			args := append([]string{"serve", "--listen", freeAddr(t), "--origin-listen", freeAddr(t), "--data", t.TempDir()}, tc.args...)
			cmd := exec.Command(lecternBin, args...)
			var stderr bytes.Buffer
			cmd.Stderr = &stderr
			err := cmd.Run()
			if ee, ok := err.(*exec.ExitError); !ok || ee.ExitCode() != 1 {
				t.Fatalf("exit = %v, want status 1; stderr:\n%s", err, stderr.String())
			}
			out := strings.TrimSpace(stderr.String())
			if n := strings.Count(out, "\n"); n != 0 {
				t.Errorf("want one line, got %d:\n%s", n+1, out)
			}
			for _, m := range tc.mentions {
				if !strings.Contains(out, m) {
					t.Errorf("message %q does not mention %q", out, m)
				}
			}
		})
	}
}
