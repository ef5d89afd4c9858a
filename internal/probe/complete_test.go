package probe

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// TestCheckComplete cuts real files in half: an MP4 with its index first and a Matroska file still
// probe as the full length; CheckComplete must find the hole, and pass the intact originals.
func TestCheckComplete(t *testing.T) {
	if _, err := exec.LookPath("ffmpeg"); err != nil {
		t.Skip("needs ffmpeg")
	}
	dir := t.TempDir()
	ctx := context.Background()
	for _, c := range []struct{ name, ext string }{{"faststart mp4", ".mp4"}, {"matroska", ".mkv"}} {
		t.Run(c.name, func(t *testing.T) {
			full := filepath.Join(dir, "full"+c.ext)
			out, err := exec.Command("ffmpeg", "-v", "error", "-y", "-f", "lavfi", "-i", "testsrc=size=320x240:rate=25",
				"-f", "lavfi", "-i", "sine", "-t", "12", "-c:v", "libx264", "-preset", "ultrafast", "-g", "50",
				"-c:a", "aac", "-movflags", "+faststart", full).CombinedOutput()
			if err != nil {
				t.Fatalf("ffmpeg: %v: %s", err, out)
			}
			data, err := os.ReadFile(full)
			if err != nil {
				t.Fatal(err)
			}
			cut := filepath.Join(dir, "cut"+c.ext)
			if err := os.WriteFile(cut, data[:len(data)/2], 0o644); err != nil {
				t.Fatal(err)
			}
			r, err := Probe(ctx, "ffprobe", full)
			if err != nil {
				t.Fatal(err)
			}
			if err := CheckComplete(ctx, "ffprobe", full, r); err != nil {
				t.Fatalf("intact file reported incomplete: %v", err)
			}
			rc, err := Probe(ctx, "ffprobe", cut)
			if err != nil {
				t.Fatalf("the cut file should still probe (that is the point): %v", err)
			}
			err = CheckComplete(ctx, "ffprobe", cut, rc)
			if !IsInvalidMedia(err) || !strings.Contains(Reason(err), "incomplete") {
				t.Fatalf("cut file: err = %v, want an invalid-media error saying the file is incomplete", err)
			}
		})
	}
}
