package main

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

// TestSIGKILLMidTranscode: a worker killed with SIGKILL in the middle of a transcode leaves a running job,
// a lease and a scratch directory. The next start sweeps the directory, River's rescuer hands the job
// back, the new attempt takes over the dead worker's lease, and the lecture becomes ready once, as v1,
// with nothing of a second or partial version in storage.
func TestSIGKILLMidTranscode(t *testing.T) {
	if testing.Short() {
		t.Skip("end-to-end: starts lectern and transcodes")
	}
	data := t.TempDir()
	token := addTeacher(t, sqliteDB(data), "Ms. Yoon")
	// Short rescue and lease so the test takes seconds, not the production minutes.
	fast := []string{"--rescue-after", "3s", "--lease", "2s"}
	s := startServe(t, data, fast...)
	lec := uploadClip(t, s.base, token, "Crash-course", 60)
	deadline := time.Now().Add(time.Minute)
	for lec.Status != "transcoding" || lec.Progress <= 0 {
		if lec.Status == "ready" || time.Now().After(deadline) {
			t.Fatalf("never caught the lecture transcoding: %+v", lec)
		}
		time.Sleep(50 * time.Millisecond)
		getJSON(t, s.base+"/api/v1/lectures/"+lec.ID, token, &lec)
	}
	if err := s.cmd.Process.Kill(); err != nil { // SIGKILL: no deferred cleanup runs
		t.Fatal(err)
	}
	<-s.exited
	scratch := filepath.Join(data, "tmp")
	if left := scratchDirs(t, scratch); len(left) != 1 {
		t.Fatalf("scratch dirs after SIGKILL = %v, want the killed job's one", left)
	}

	killed := time.Now()
	again := startServe(t, data, fast...)
	if left := scratchDirs(t, scratch); len(left) != 0 {
		t.Errorf("scratch dirs of the dead worker not swept at start: %v", left)
	}
	waitReady(t, again.base, token, &lec)
	t.Logf("ready %.1fs after the restart", time.Since(killed).Seconds())
	if lec.Version != 1 || lec.Status != "ready" {
		t.Fatalf("after recovery: %+v, want v1 ready", lec)
	}
	names := storedVersions(t, data, lec.ID)
	if !slices.Equal(names, []string{"v1"}) {
		t.Errorf("versions in storage = %v, want only v1", names)
	}
	// The published master plays through the edge, whole.
	resp, body := fetch(t, again.base+lec.PlaybackURL)
	if resp.StatusCode != 200 || !strings.Contains(string(body), "#EXT-X-STREAM-INF") {
		t.Errorf("master after recovery: %d\n%s", resp.StatusCode, body)
	}
	// Stays ready: no second attempt publishes again later.
	time.Sleep(4 * time.Second)
	getJSON(t, again.base+"/api/v1/lectures/"+lec.ID, token, &lec)
	if lec.Version != 1 || lec.Status != "ready" {
		t.Errorf("later: %+v", lec)
	}
}

func scratchDirs(t *testing.T, dir string) []string {
	t.Helper()
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, e := range entries {
		if strings.HasPrefix(e.Name(), "lectern-transcode-") {
			out = append(out, e.Name())
		}
	}
	return out
}
