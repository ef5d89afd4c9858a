package transcode

import (
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// genClip runs ffmpeg with args and the output file name last, in a temporary directory, and returns
// the output's path.
func genClip(t *testing.T, name string, args ...string) string {
	t.Helper()
	out := filepath.Join(t.TempDir(), name)
	args = append(append([]string{"-hide_banner", "-nostdin", "-v", "error", "-y"}, args...), out)
	if b, err := exec.Command("ffmpeg", args...).CombinedOutput(); err != nil {
		t.Fatalf("ffmpeg %v: %v\n%s", args, err, b)
	}
	return out
}

// streamInfo is what ffprobe says of one stream of a rendition.
type streamInfo struct {
	CodecType  string `json:"codec_type"`
	Profile    string `json:"profile"`
	PixFmt     string `json:"pix_fmt"`
	FieldOrder string `json:"field_order"`
	Channels   int    `json:"channels"`
	Layout     string `json:"channel_layout"`
	Width      int    `json:"width"`
	Height     int    `json:"height"`
	FrameRate  string `json:"r_frame_rate"`
	AvgRate    string `json:"avg_frame_rate"`
	Packets    string `json:"nb_read_packets"`
}

// renditionStream probes rendition name of an output tree: its init section and every segment joined,
// as a player would append them, with the packets counted.
func renditionStream(t *testing.T, out, name string) streamInfo {
	t.Helper()
	dir := filepath.Join(out, name)
	joined, err := os.ReadFile(filepath.Join(dir, "init.mp4"))
	if err != nil {
		t.Fatal(err)
	}
	segs, err := filepath.Glob(filepath.Join(dir, "seg_*.m4s"))
	if err != nil || len(segs) == 0 {
		t.Fatalf("%s: no segments (%v)", name, err)
	}
	for _, s := range segs { // Glob sorts; the names are zero-padded
		b, err := os.ReadFile(s)
		if err != nil {
			t.Fatal(err)
		}
		joined = append(joined, b...)
	}
	f := filepath.Join(t.TempDir(), name+".mp4")
	if err := os.WriteFile(f, joined, 0o644); err != nil {
		t.Fatal(err)
	}
	b, err := exec.Command("ffprobe", "-v", "error", "-count_packets", "-show_streams", "-print_format", "json", f).Output()
	if err != nil {
		t.Fatalf("ffprobe %s: %v", name, err)
	}
	var res struct{ Streams []streamInfo }
	if err := json.Unmarshal(b, &res); err != nil || len(res.Streams) != 1 {
		t.Fatalf("ffprobe %s: %v %s", name, err, b)
	}
	return res.Streams[0]
}

// TestTranscodeSourceKinds: the sources ffprobe tells apart (internal/probe) each come out as the
// player-safe ladder: 8-bit 4:2:0 H.264 High, progressive, constant frame rate, stereo AAC.
func TestTranscodeSourceKinds(t *testing.T) {
	needFFmpeg(t)
	const secs = "4"
	picture := func(size, rate string) []string {
		return []string{"-f", "lavfi", "-i", "testsrc2=size=" + size + ":rate=" + rate + ":duration=" + secs}
	}
	tone := []string{"-f", "lavfi", "-i", "sine=frequency=440:sample_rate=48000:duration=" + secs}
	x264 := []string{"-c:v", "libx264", "-preset", "ultrafast"}
	tests := []struct {
		name  string
		args  []string
		check func(t *testing.T, out string, res Result)
	}{
		{
			name: "5.1 audio is downmixed to stereo",
			args: append(append(append(picture("320x180", "30"), tone...), x264...),
				"-pix_fmt", "yuv420p", "-af", "pan=5.1|FL=c0|FR=c0|FC=c0|LFE=c0|BL=c0|BR=c0", "-c:a", "aac"),
			check: func(t *testing.T, out string, res Result) {
				if res.Source.AudioChannels != 6 {
					t.Fatalf("source probed with %d channels, want 6", res.Source.AudioChannels)
				}
				if a := renditionStream(t, out, "audio"); a.Channels != 2 || a.Layout != "stereo" {
					t.Errorf("audio rendition %d channels (%s), want stereo", a.Channels, a.Layout)
				}
			},
		},
		{
			name: "10-bit 4:4:4 becomes 8-bit 4:2:0 High",
			args: append(append(picture("320x180", "30"), x264...), "-profile:v", "high444", "-pix_fmt", "yuv444p10le"),
			check: func(t *testing.T, out string, res Result) {
				v := renditionStream(t, out, "180p")
				if v.PixFmt != "yuv420p" || v.Profile != "High" {
					t.Errorf("180p is %s %s, want yuv420p High", v.PixFmt, v.Profile)
				}
				if !strings.HasPrefix(res.Renditions[0].Codecs, "avc1.64") {
					t.Errorf("codecs %q", res.Renditions[0].Codecs)
				}
			},
		},
		{
			name: "full-range webcam picture",
			args: append(append(picture("320x180", "30"), x264...), "-pix_fmt", "yuvj420p"),
			check: func(t *testing.T, out string, res Result) {
				if v := renditionStream(t, out, "180p"); v.PixFmt != "yuv420p" {
					t.Errorf("180p pixel format %s, want yuv420p", v.PixFmt)
				}
			},
		},
		{
			name: "interlaced is deinterlaced",
			args: append(append(picture("320x180", "25"), x264...), "-pix_fmt", "yuv420p", "-flags", "+ilme+ildct", "-top", "1"),
			check: func(t *testing.T, out string, res Result) {
				if !res.Source.Interlaced {
					t.Fatal("source not probed as interlaced")
				}
				// bwdif in send_frame mode: one progressive frame per interlaced frame.
				v := renditionStream(t, out, "180p")
				if (v.FieldOrder != "progressive" && v.FieldOrder != "") || v.Packets != "100" || v.FrameRate != "25/1" {
					t.Errorf("180p: field order %q, %s frames at %s; want 100 progressive at 25/1", v.FieldOrder, v.Packets, v.FrameRate)
				}
			},
		},
		{
			// Frames 10-40 dropped with their time kept, as a phone does under load.
			name: "variable frame rate becomes constant",
			args: append(append(picture("320x180", "30"), x264...),
				"-vf", "select='not(between(n,10,40))'", "-fps_mode", "vfr", "-pix_fmt", "yuv420p"),
			check: func(t *testing.T, out string, res Result) {
				if !res.Source.VariableFrameRate {
					t.Fatalf("source not probed as VFR: %+v", res.Source)
				}
				v := renditionStream(t, out, "180p")
				if res.Renditions[0].FrameRate != 30 || v.FrameRate != "30/1" || v.AvgRate != "30/1" {
					t.Errorf("output rate %v (%s, average %s), want a constant 30", res.Renditions[0].FrameRate, v.FrameRate, v.AvgRate)
				}
				if v.Packets != "120" {
					t.Errorf("%s frames in 4 s, want 120 (gaps filled)", v.Packets)
				}
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			src := genClip(t, "source.mp4", tt.args...)
			out := t.TempDir()
			res, err := Transcode(context.Background(), Config{}, Input{Source: src}, out, nil)
			if err != nil {
				t.Fatal(err)
			}
			if res.Renditions[0].Name != "180p" && res.Source.HasVideo {
				t.Errorf("renditions %+v", res.Renditions)
			}
			tt.check(t, out, res)
		})
	}
}

// TestTranscodeRejectsBadSources: what can never become a lecture is rejected (no retry) with a reason
// a teacher can act on.
func TestTranscodeRejectsBadSources(t *testing.T) {
	needFFmpeg(t)
	av := []string{"-f", "lavfi", "-i", "testsrc2=size=320x180:rate=30:duration=10", "-f", "lavfi", "-i",
		"sine=duration=10", "-c:v", "libx264", "-preset", "ultrafast", "-pix_fmt", "yuv420p", "-c:a", "aac"}
	cut := func(t *testing.T, path string) string {
		st, err := os.Stat(path)
		if err != nil {
			t.Fatal(err)
		}
		if err := os.Truncate(path, st.Size()/2); err != nil {
			t.Fatal(err)
		}
		return path
	}
	empty := filepath.Join(t.TempDir(), "empty.mp4")
	if err := os.WriteFile(empty, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name   string
		src    func(t *testing.T) string
		reason string // prefix
	}{
		{"empty file", func(*testing.T) string { return empty }, "the file is empty"},
		{"still image (zero duration)", func(t *testing.T) string {
			return genClip(t, "slide.png", "-f", "lavfi", "-i", "testsrc2=size=320x180", "-frames:v", "1")
		}, "zero duration"},
		{"upload cut off before the index", func(t *testing.T) string { return cut(t, genClip(t, "a.mp4", av...)) },
			"the file is incomplete (the upload was probably cut off)"},
		// The index is at the front and promises 10 s; only half of the media data is there.
		{"upload cut off after the index", func(t *testing.T) string {
			return cut(t, genClip(t, "fs.mp4", append(av, "-movflags", "+faststart")...))
		}, "the file is incomplete: only "},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Transcode(context.Background(), Config{}, Input{Source: tt.src(t)}, t.TempDir(), nil)
			if !IsRejected(err) {
				t.Fatalf("err = %v, want rejected", err)
			}
			if !strings.HasPrefix(Reason(err), tt.reason) {
				t.Errorf("reason %q, want %q...", Reason(err), tt.reason)
			}
		})
	}
}

// TestDetectScaler: zscale when ffmpeg lists it, swscale when it does not, an error when ffmpeg fails.
func TestDetectScaler(t *testing.T) {
	needFFmpeg(t)
	dir := t.TempDir()
	script := func(name, body string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte("#!/bin/sh\n"+body+"\n"), 0o755); err != nil {
			t.Fatal(err)
		}
		return p
	}
	plain := script("ffmpeg-plain", `echo " ..C scale             V->V       Scale the input video size"`)
	broken := script("ffmpeg-broken", "exit 3")
	for _, tt := range []struct {
		ffmpeg, want string
		fails        bool
	}{
		{plain, ScalerSwscale, false},
		{broken, "", true},
	} {
		got, err := DetectScaler(context.Background(), tt.ffmpeg)
		if got != tt.want || (err != nil) != tt.fails {
			t.Errorf("DetectScaler(%s) = %q, %v", filepath.Base(tt.ffmpeg), got, err)
		}
	}
	// This machine's ffmpeg (Debian's) is built with libzimg.
	out, _ := exec.Command("ffmpeg", "-hide_banner", "-filters").Output()
	want := ScalerSwscale
	if strings.Contains(string(out), " zscale ") {
		want = ScalerZscale
	}
	if got, err := DetectScaler(context.Background(), "ffmpeg"); got != want || err != nil {
		t.Errorf("DetectScaler(ffmpeg) = %q, %v; want %q", got, err, want)
	}
}
