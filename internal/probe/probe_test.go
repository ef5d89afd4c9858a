package probe

import (
	"context"
	"math"
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

// av is the ordinary case: a 320x240 25 fps H.264 video with stereo AAC.
var avArgs = []string{
	"-f", "lavfi", "-i", "testsrc=size=320x240:rate=25:duration=1",
	"-f", "lavfi", "-i", "sine=frequency=440:duration=1",
	"-c:v", "libx264", "-preset", "ultrafast", "-pix_fmt", "yuv420p", "-c:a", "aac", "-ac", "2", "-shortest",
}

// video returns ffmpeg arguments for a one-second 160x120 H.264 clip of the given rate, with extra
// encoder arguments.
func video(rate string, extra ...string) []string {
	return append([]string{"-f", "lavfi", "-i", "testsrc=size=160x120:duration=1:rate=" + rate,
		"-c:v", "libx264", "-preset", "ultrafast"}, extra...)
}

func TestProbeValidMedia(t *testing.T) {
	needTools(t)
	small := Result{HasVideo: true, Width: 160, Height: 120, FrameRate: 25, NominalFrameRate: 25,
		VideoCodec: "h264", PixelFormat: "yuv420p", BitDepth: 8}
	tests := []struct {
		name string
		// make writes the clip into a temporary directory and returns its path.
		make     func(t *testing.T) string
		want     Result
		duration float64 // seconds
		display  [2]int  // DisplaySize
	}{
		{
			name: "video+audio",
			make: func(t *testing.T) string { return ffmpeg(t, "av.mp4", avArgs...) },
			want: Result{HasVideo: true, HasAudio: true, Width: 320, Height: 240, FrameRate: 25, NominalFrameRate: 25,
				VideoCodec: "h264", PixelFormat: "yuv420p", BitDepth: 8,
				AudioCodec: "aac", AudioChannels: 2, AudioChannelLayout: "stereo", AudioSampleRate: 44100},
			duration: 1, display: [2]int{320, 240},
		},
		{
			name: "rotated 90",
			make: func(t *testing.T) string {
				return ffmpeg(t, "rot.mp4", "-i", ffmpeg(t, "av.mp4", avArgs...), "-c", "copy", "-metadata:s:v:0", "rotate=90")
			},
			want: Result{HasVideo: true, HasAudio: true, Width: 320, Height: 240, FrameRate: 25, NominalFrameRate: 25,
				VideoCodec: "h264", PixelFormat: "yuv420p", BitDepth: 8,
				AudioCodec: "aac", AudioChannels: 2, AudioChannelLayout: "stereo", AudioSampleRate: 44100, Rotation: 90},
			duration: 1, display: [2]int{240, 320},
		},
		{
			name: "portrait",
			make: func(t *testing.T) string {
				return ffmpeg(t, "portrait.mp4", "-f", "lavfi", "-i", "testsrc=size=360x640:rate=30:duration=1",
					"-c:v", "libx264", "-preset", "ultrafast", "-pix_fmt", "yuv420p")
			},
			want: Result{HasVideo: true, Width: 360, Height: 640, FrameRate: 30, NominalFrameRate: 30,
				VideoCodec: "h264", PixelFormat: "yuv420p", BitDepth: 8},
			duration: 1, display: [2]int{360, 640},
		},
		{
			name: "audio only",
			make: func(t *testing.T) string {
				return ffmpeg(t, "a.m4a", "-f", "lavfi", "-i", "sine=frequency=440:duration=1:sample_rate=48000", "-c:a", "aac")
			},
			want:     Result{HasAudio: true, AudioCodec: "aac", AudioChannels: 1, AudioChannelLayout: "mono", AudioSampleRate: 48000},
			duration: 1,
		},
		{
			name: "mp3 with cover art is audio only",
			make: func(t *testing.T) string {
				cover := ffmpeg(t, "cover.png", "-f", "lavfi", "-i", "testsrc=size=64x64", "-frames:v", "1")
				return ffmpeg(t, "cover.mp3", "-f", "lavfi", "-i", "sine=frequency=440:duration=1", "-i", cover,
					"-map", "0:a", "-map", "1:v", "-c:a", "libmp3lame", "-c:v", "png", "-disposition:v", "attached_pic")
			},
			want:     Result{HasAudio: true, AudioCodec: "mp3", AudioChannels: 1, AudioChannelLayout: "mono", AudioSampleRate: 44100},
			duration: 1,
		},
		{
			name: "5.1 audio",
			make: func(t *testing.T) string {
				return ffmpeg(t, "51.m4a", "-f", "lavfi", "-i", "sine=frequency=440:duration=1",
					"-af", "pan=5.1|FL=c0|FR=c0|FC=c0|LFE=c0|BL=c0|BR=c0", "-c:a", "aac")
			},
			want:     Result{HasAudio: true, AudioCodec: "aac", AudioChannels: 6, AudioChannelLayout: "5.1", AudioSampleRate: 44100},
			duration: 1,
		},
		{
			name: "10-bit 4:4:4",
			make: func(t *testing.T) string {
				return ffmpeg(t, "hi10.mp4", video("25", "-profile:v", "high444", "-pix_fmt", "yuv444p10le")...)
			},
			want:     with(small, func(r *Result) { r.PixelFormat, r.BitDepth = "yuv444p10le", 10 }),
			duration: 1, display: [2]int{160, 120},
		},
		{
			name:     "full-range webcam format",
			make:     func(t *testing.T) string { return ffmpeg(t, "j.mp4", video("25", "-pix_fmt", "yuvj420p")...) },
			want:     with(small, func(r *Result) { r.PixelFormat = "yuvj420p" }),
			duration: 1, display: [2]int{160, 120},
		},
		{
			name: "interlaced",
			make: func(t *testing.T) string {
				return ffmpeg(t, "il.mp4", video("25", "-pix_fmt", "yuv420p", "-flags", "+ilme+ildct", "-top", "1")...)
			},
			want:     with(small, func(r *Result) { r.Interlaced = true }),
			duration: 1, display: [2]int{160, 120},
		},
		{
			// Frames 10-25 of 60 dropped and the gap kept, as a phone does under load: 44 frames in 2 s.
			// r_frame_rate stays 30/1 (the first frames are regular), avg_frame_rate is 22/1.
			name: "variable frame rate",
			make: func(t *testing.T) string {
				return ffmpeg(t, "vfr.mp4", "-f", "lavfi", "-i", "testsrc=size=160x120:rate=30:duration=2",
					"-vf", "select='not(between(n,10,25))'", "-fps_mode", "vfr",
					"-c:v", "libx264", "-preset", "ultrafast", "-pix_fmt", "yuv420p")
			},
			want: with(small, func(r *Result) {
				r.FrameRate, r.NominalFrameRate, r.VariableFrameRate = 22, 30, true
			}),
			duration: 2, display: [2]int{160, 120},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got, err := Probe(context.Background(), ffprobePath, tt.make(t))
			if err != nil {
				t.Fatal(err)
			}
			if math.Abs(got.DurationSeconds-tt.duration) > 0.1 {
				t.Errorf("duration = %v, want ~%v", got.DurationSeconds, tt.duration)
			}
			if got.FormatName == "" {
				t.Error("empty FormatName")
			}
			if w, h := got.DisplaySize(); [2]int{w, h} != tt.display {
				t.Errorf("DisplaySize = %dx%d, want %dx%d", w, h, tt.display[0], tt.display[1])
			}
			got.DurationSeconds, got.StartSeconds, got.FormatName = 0, 0, ""
			if got != tt.want {
				t.Errorf("got  %+v\nwant %+v", got, tt.want)
			}
		})
	}
}

func with(r Result, f func(*Result)) Result {
	f(&r)
	return r
}

func TestProbeInvalidMedia(t *testing.T) {
	needTools(t)
	// ffmpeg writes the moov atom (the MP4's index) last unless told +faststart, so the first half of
	// such a file is what an interrupted upload leaves behind.
	cut := ffmpeg(t, "cut.mp4", avArgs...)
	st, err := os.Stat(cut)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.Truncate(cut, st.Size()/2); err != nil {
		t.Fatal(err)
	}
	image := ffmpeg(t, "still.png", "-f", "lavfi", "-i", "testsrc=size=64x64", "-frames:v", "1")

	tests := []struct {
		name   string
		file   string
		reason string
		detail string // part of Error() after the reason
	}{
		{"text", writeFile(t, "notes.txt", []byte("Lecture notes, week 1\n")), reasonUnreadable, "Invalid data found"},
		{"empty", writeFile(t, "empty.mp4", nil), reasonEmpty, ""},
		{"truncated mp4", cut, reasonTruncated, "moov atom not found"},
		{"mp4 header only", writeFile(t, "head.mp4", []byte("\x00\x00\x00\x18ftypmp42\x00\x00\x00\x00mp42isom")), reasonTruncated, "moov atom not found"},
		{"subtitles only", writeFile(t, "subs.srt", []byte("1\n00:00:01,000 --> 00:00:02,000\nhello\n")), reasonNoStreams, ""},
		{"still image", image, reasonNoDuration, ""},
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
			if !strings.HasPrefix(err.Error(), tt.reason) || !strings.Contains(err.Error(), tt.detail) {
				t.Errorf("Error() = %q, want prefix %q and detail %q", err, tt.reason, tt.detail)
			}
		})
	}
}

// An MP4 whose index comes first (faststart, as phones and editors write it) and whose media data is
// cut off still probes: the index promises the full duration and ffprobe reads no further. Only
// decoding runs short, which is why the transcoder checks its output against DurationSeconds and
// reports the shortfall with Truncated.
func TestProbeFaststartCutStillProbes(t *testing.T) {
	needTools(t)
	f := ffmpeg(t, "fs.mp4", append(avArgs, "-movflags", "+faststart")...)
	st, err := os.Stat(f)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.Truncate(f, st.Size()/2); err != nil {
		t.Fatal(err)
	}
	r, err := Probe(context.Background(), ffprobePath, f)
	if err != nil {
		t.Fatalf("Probe: %v", err)
	}
	if !r.HasVideo || !r.HasAudio || math.Abs(r.DurationSeconds-1) > 0.1 {
		t.Errorf("got %+v, want video+audio of ~1 s", r)
	}
}

func TestTruncated(t *testing.T) {
	err := Truncated(62.4, 600)
	want := "the file is incomplete: only 1m2s of 10m could be read; please upload it again"
	if !IsInvalidMedia(err) || Reason(err) != want || err.Error() != want {
		t.Errorf("err = %v (invalid media %v), want %q", err, IsInvalidMedia(err), want)
	}
	if got := Reason(Truncated(0.3, 7322)); got != "the file is incomplete: only 0s of 2h2m2s could be read; please upload it again" {
		t.Errorf("Reason = %q", got)
	}
}

// TestTruncationSigns runs the classifier on ffprobe 5.1's stderr for files cut at various points.
func TestTruncationSigns(t *testing.T) {
	for _, tt := range []struct {
		name, stderr string
		want         bool
	}{
		{"mp4 cut before moov", "[mov,mp4,m4a,3gp,3g2,mj2 @ 0x55cd85f811c0] moov atom not found\nc.mp4: Invalid data found when processing input\n", true},
		{"mp4 cut early in moov", "[mov,mp4,m4a,3gp,3g2,mj2 @ 0x56251d86c1c0] error reading header\nc.mp4: End of file\n", true},
		{"mp4 cut late in moov", "[mov,mp4,m4a,3gp,3g2,mj2 @ 0x56315755f1c0] stream 1, contradictionary STSC and STCO\n" +
			"[mov,mp4,m4a,3gp,3g2,mj2 @ 0x56315755f1c0] error reading header\nc.mp4: Invalid data found when processing input\n", true},
		{"webm cut in header", "[matroska,webm @ 0x55b4dbc581c0] File ended prematurely at pos. 100 (0x64)\n    Last message repeated 1 times\nc.webm: Input/output error\n", true},
		{"text", "notes.txt: Invalid data found when processing input\n", false},
		{"wav cut in header", "c.wav: Invalid data found when processing input\n", false},
		{"nothing", "", false},
	} {
		if got := truncated(tt.stderr); got != tt.want {
			t.Errorf("%s: truncated = %v, want %v", tt.name, got, tt.want)
		}
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

func TestFormatDuration(t *testing.T) {
	for in, want := range map[float64]string{21600: "6h", 25920: "7h12m", 2703.4: "45m3s", 600: "10m", 3: "3s"} {
		if got := FormatDuration(in); got != want {
			t.Errorf("FormatDuration(%v) = %q, want %q", in, got, want)
		}
	}
}
