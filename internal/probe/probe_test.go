package probe

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

const (
	ffmpegPath  = "ffmpeg"
	ffprobePath = "ffprobe"
)

func needTools(t *testing.T) {
	t.Helper()
	if err := CheckTools(ffmpegPath, ffprobePath); err != nil {
		t.Skip(err)
	}
}

// ffmpeg runs ffmpeg with args and the output file last, returning the output path.
func ffmpeg(t *testing.T, out string, args ...string) string {
	t.Helper()
	out = filepath.Join(t.TempDir(), out)
	args = append([]string{"-hide_banner", "-nostdin", "-v", "error", "-y"}, args...)
	args = append(args, out)
	if b, err := exec.Command(ffmpegPath, args...).CombinedOutput(); err != nil {
		t.Fatalf("ffmpeg %v: %v\n%s", args, err, b)
	}
	return out
}

func writeFile(t *testing.T, name string, data []byte) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(p, data, 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestProbeValidMedia(t *testing.T) {
	needTools(t)
	av := ffmpeg(t, "av.mp4",
		"-f", "lavfi", "-i", "testsrc=size=320x240:rate=25:duration=2",
		"-f", "lavfi", "-i", "sine=frequency=440:duration=2",
		"-c:v", "libx264", "-preset", "ultrafast", "-pix_fmt", "yuv420p", "-c:a", "aac", "-ac", "2", "-shortest")
	audio := ffmpeg(t, "a.m4a", "-f", "lavfi", "-i", "sine=frequency=440:duration=2", "-c:a", "aac")
	cover := ffmpeg(t, "cover.png", "-f", "lavfi", "-i", "testsrc=size=64x64", "-frames:v", "1")
	mp3 := ffmpeg(t, "cover.mp3", "-f", "lavfi", "-i", "sine=frequency=440:duration=2", "-i", cover,
		"-map", "0:a", "-map", "1:v", "-c:a", "libmp3lame", "-c:v", "png", "-disposition:v", "attached_pic")
	rotated := ffmpeg(t, "rot.mp4", "-i", av, "-c", "copy", "-metadata:s:v:0", "rotate=90")

	tests := []struct {
		name string
		file string
		want Result
	}{
		{"video+audio", av, Result{HasVideo: true, HasAudio: true, Width: 320, Height: 240, FrameRate: 25,
			VideoCodec: "h264", AudioCodec: "aac", AudioChannels: 2}},
		{"audio only", audio, Result{HasAudio: true, AudioCodec: "aac", AudioChannels: 1}},
		{"mp3 with cover art is audio only", mp3, Result{HasAudio: true, AudioCodec: "mp3", AudioChannels: 1}},
		{"rotated", rotated, Result{HasVideo: true, HasAudio: true, Width: 320, Height: 240, FrameRate: 25,
			VideoCodec: "h264", AudioCodec: "aac", AudioChannels: 2, Rotation: 90}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := Probe(context.Background(), ffprobePath, tt.file)
			if err != nil {
				t.Fatal(err)
			}
			if got.DurationSeconds < 1.9 || got.DurationSeconds > 2.2 {
				t.Errorf("duration = %v, want ~2", got.DurationSeconds)
			}
			if got.FormatName == "" {
				t.Error("empty FormatName")
			}
			got.DurationSeconds, got.FormatName = 0, ""
			if got != tt.want {
				t.Errorf("got  %+v\nwant %+v", got, tt.want)
			}
		})
	}
	r, _ := Probe(context.Background(), ffprobePath, rotated)
	if w, h := r.DisplaySize(); w != 240 || h != 320 {
		t.Errorf("rotated DisplaySize = %dx%d, want 240x320", w, h)
	}
}

func TestProbeInvalidMedia(t *testing.T) {
	needTools(t)
	av := ffmpeg(t, "av.mp4",
		"-f", "lavfi", "-i", "testsrc=size=320x240:rate=25:duration=2",
		"-f", "lavfi", "-i", "sine=frequency=440:duration=2",
		"-c:v", "libx264", "-preset", "ultrafast", "-c:a", "aac", "-shortest")
	whole, err := os.ReadFile(av)
	if err != nil {
		t.Fatal(err)
	}
	image := ffmpeg(t, "still.png", "-f", "lavfi", "-i", "testsrc=size=64x64", "-frames:v", "1")

	tests := []struct {
		name   string
		file   string
		reason string
	}{
		{"text", writeFile(t, "notes.txt", []byte("Lecture notes, week 1\n")), reasonUnreadable},
		{"empty", writeFile(t, "empty.mp4", nil), reasonEmpty},
		// ffmpeg writes the moov atom last, so the first half of an mp4 is an interrupted upload.
		{"truncated mp4", writeFile(t, "half.mp4", whole[:len(whole)/2]), reasonUnreadable},
		{"subtitles only", writeFile(t, "subs.srt", []byte("1\n00:00:01,000 --> 00:00:02,000\nhello\n")), reasonNoStreams},
		{"still image", image, reasonNoDuration},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Probe(context.Background(), ffprobePath, tt.file)
			if !IsInvalidMedia(err) {
				t.Fatalf("err = %v, want invalid media", err)
			}
			if Reason(err) != tt.reason {
				t.Errorf("Reason = %q, want %q", Reason(err), tt.reason)
			}
			if !strings.HasPrefix(err.Error(), tt.reason) {
				t.Errorf("Error() = %q, want prefix %q", err, tt.reason)
			}
		})
	}
}

func TestProbeOperationalErrors(t *testing.T) {
	needTools(t)
	f := writeFile(t, "x.mp4", []byte("x"))
	if _, err := Probe(context.Background(), "/nonexistent/ffprobe", f); err == nil || IsInvalidMedia(err) {
		t.Errorf("missing ffprobe: err = %v, want operational error", err)
	}
	if _, err := Probe(context.Background(), ffprobePath, filepath.Join(t.TempDir(), "missing")); err == nil || IsInvalidMedia(err) {
		t.Errorf("missing file: err = %v, want operational error", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := Probe(ctx, ffprobePath, f); err == nil || IsInvalidMedia(err) {
		t.Errorf("cancelled: err = %v, want operational error", err)
	}
}

func TestCheckTools(t *testing.T) {
	needTools(t)
	err := CheckTools("/nonexistent/ffmpeg", ffprobePath)
	want := "ffmpeg not found: install it (apt-get install ffmpeg) or set --ffmpeg"
	if err == nil || err.Error() != want {
		t.Errorf("err = %v, want %q", err, want)
	}
	err = CheckTools(ffmpegPath, "no-such-ffprobe-binary")
	if err == nil || !strings.Contains(err.Error(), "ffprobe not found") {
		t.Errorf("err = %v, want ffprobe not found", err)
	}
}

func TestParseRateAndRotation(t *testing.T) {
	for in, want := range map[string]float64{"30000/1001": 30000.0 / 1001, "25/1": 25, "0/0": 0, "N/A": 0, "": 0} {
		if got := parseRate(in); got != want {
			t.Errorf("parseRate(%q) = %v, want %v", in, got, want)
		}
	}
	f := func(v float64) []sideData { return []sideData{{Rotation: &v}} }
	cases := []struct {
		tag  string
		side []sideData
		want int
	}{
		{"", nil, 0},
		{"90", nil, 90},
		{"-90", nil, 270},
		{"", f(-90), 270},
		{"", f(180), 180},
		{"90", f(-180), 180},
	}
	for _, c := range cases {
		if got := rotation(c.tag, c.side); got != c.want {
			t.Errorf("rotation(%q, %v) = %d, want %d", c.tag, c.side, got, c.want)
		}
	}
}
