package transcode

import (
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

// niceOf reads a thread's nice value (field 19 of /proc/PID/task/TID/stat, after the command name).
func niceOf(t *testing.T, pid int, tid string) int {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("/proc", strconv.Itoa(pid), "task", tid, "stat"))
	if err != nil {
		return -100 // ended meanwhile
	}
	s := string(b)
	fields := strings.Fields(s[strings.LastIndexByte(s, ')')+2:]) // fields from 3 (state) on
	n, err := strconv.Atoi(fields[16])
	if err != nil {
		t.Fatalf("stat %q: %v", s, err)
	}
	return n
}

// TestFavourMainThread: while an x264 encode runs, every ffmpeg thread but the main one is niced,
// including threads started after the first look; the main thread keeps its priority.
func TestFavourMainThread(t *testing.T) {
	needFFmpeg(t)
	cmd := exec.Command("ffmpeg", "-hide_banner", "-nostdin", "-v", "error", "-re",
		"-f", "lavfi", "-i", "testsrc2=size=640x360:rate=30:duration=20",
		"-c:v", "libx264", "-preset", "veryfast", "-threads", "3", "-f", "null", "-")
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { _ = cmd.Process.Kill(); _ = cmd.Wait() }()
	pid := cmd.Process.Pid
	stop := favourMainThread(pid)
	time.Sleep(2 * time.Second) // -re: still encoding, every thread started
	tasks, err := os.ReadDir(filepath.Join("/proc", strconv.Itoa(pid), "task"))
	if err != nil {
		t.Fatal(err)
	}
	if len(tasks) < 3 {
		t.Fatalf("only %d threads: not the multi-threaded encode this test needs", len(tasks))
	}
	for _, e := range tasks {
		got, want := niceOf(t, pid, e.Name()), helperNice
		if e.Name() == strconv.Itoa(pid) {
			want = 0
		}
		if got != want && got != -100 {
			t.Errorf("thread %s (main %d): nice %d, want %d", e.Name(), pid, got, want)
		}
	}
	done := make(chan struct{})
	go func() { stop(); close(done) }()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("stop did not return")
	}
	// After the process is gone the watcher ends by itself; stop still returns.
	_ = cmd.Process.Kill()
	_ = cmd.Wait()
	favourMainThread(pid)()
}
