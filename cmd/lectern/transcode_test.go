package main

import (
	"bytes"
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/lectern/lectern/internal/hls"
)

// parseMasterFile reads and parses the multivariant playlist at path.
func parseMasterFile(t *testing.T, path string) hls.Master {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	m, err := hls.ParseMaster(data)
	if err != nil {
		t.Fatal(err)
	}
	return m
}

// runLectern runs the built binary and returns its stdout, stderr and exit code.
func runLectern(t *testing.T, dir string, args ...string) (string, string, int) {
	t.Helper()
	cmd := exec.Command(lecternBin, args...)
	cmd.Dir = dir
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	var exit *exec.ExitError
	switch {
	case err == nil:
		return stdout.String(), stderr.String(), 0
	case errors.As(err, &exit):
		return stdout.String(), stderr.String(), exit.ExitCode()
	default:
		t.Fatal(err)
		return "", "", 0
	}
}

// TestTranscodeTool: `lectern transcode` runs the worker's pipeline on a local file and prints the
// ladder it chose with the measured rates; --print-ffmpeg prints the one ffmpeg line it runs, which
// reproduces the same tree on its own (the benchmark's "bare ffmpeg" run); bad input is one clear line.
func TestTranscodeTool(t *testing.T) {
	if testing.Short() {
		t.Skip("runs ffmpeg")
	}
	work := t.TempDir()
	src := filepath.Join(work, "lecture.mp4")
	if err := generateClip(context.Background(), "ffmpeg", src, 8*time.Second); err != nil {
		t.Fatal(err)
	}

	// Flags after the positional arguments, as people type them.
	stdout, stderr, code := runLectern(t, work, "transcode", "lecture.mp4", "out", "--profile", "motion", "--quiet")
	if code != 0 {
		t.Fatalf("exit %d\n%s", code, stderr)
	}
	t.Logf("stdout:\n%s", stdout)
	m := parseMasterFile(t, filepath.Join(work, "out", "master.m3u8"))
	if !strings.HasPrefix(stdout, "profile motion, 8.0 s of media in ") || !strings.Contains(stdout, "peak kb/s") {
		t.Errorf("summary missing:\n%s", stdout)
	}
	// One row per variant, with the master's own numbers (kb/s rounded down).
	for _, v := range m.Variants {
		name := strings.TrimSuffix(v.URI, "/index.m3u8")
		row := ""
		for _, l := range strings.Split(stdout, "\n") {
			if f := strings.Fields(l); len(f) > 0 && f[0] == name {
				row = l
			}
		}
		f := strings.Fields(row)
		if len(f) < 8 || f[5] != strconv.Itoa(v.Bandwidth/1000) || f[6] != strconv.Itoa(v.AverageBandwidth/1000) || f[len(f)-1] != v.Codecs {
			t.Errorf("row for %s = %q, want peak %d avg %d codecs %s", name, row, v.Bandwidth/1000, v.AverageBandwidth/1000, v.Codecs)
		}
	}
	if len(m.Variants) != 4 { // a 720p source: 720p, 480p, 360p and 240p
		t.Errorf("%d variants, want 4", len(m.Variants))
	}

	// The printed line, run by a shell in a fresh directory, writes the same renditions.
	line, stderr, code := runLectern(t, work, "transcode", "--print-ffmpeg", "--profile", "motion", "lecture.mp4", "bare")
	if code != 0 || strings.Count(strings.TrimSpace(line), "\n") != 0 || !strings.HasPrefix(line, "ffmpeg ") {
		t.Fatalf("--print-ffmpeg: exit %d, %q\n%s", code, line, stderr)
	}
	sh := exec.Command("bash", "-c", line)
	sh.Dir = filepath.Join(work, "bare")
	if out, err := sh.CombinedOutput(); err != nil {
		t.Fatalf("printed line failed: %v\n%s", err, out)
	}
	for _, v := range m.Variants {
		if _, err := os.Stat(filepath.Join(work, "bare", v.URI)); err != nil {
			t.Errorf("bare ffmpeg did not write %s: %v", v.URI, err)
		}
	}

	// Mistakes: one line saying what is wrong, exit 1; a usage error exits 2.
	if err := os.WriteFile(filepath.Join(work, "notes.txt"), []byte("week 1\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct {
		args []string
		code int
		want string
	}{
		{[]string{"notes.txt", "o1"}, 1, "lectern transcode: cannot transcode: not a video or audio file"},
		{[]string{"--profile", "sport", "lecture.mp4", "o2"}, 1, `cannot transcode: unknown profile "sport" (choose one of lecture, motion)`},
		{[]string{"lecture.mp4"}, 2, "lectern transcode: needs INPUT and OUTDIR"},
	} {
		_, stderr, code := runLectern(t, work, append([]string{"transcode", "--quiet"}, tt.args...)...)
		if code != tt.code || !strings.Contains(stderr, tt.want) {
			t.Errorf("transcode %v: exit %d, stderr %q; want %d and %q", tt.args, code, stderr, tt.code, tt.want)
		}
	}
}
