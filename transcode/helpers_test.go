package transcode

import (
	"bytes"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"testing"

	"github.com/lectern/lectern/internal/probe"
)

// needFFmpeg skips tests that need the real tools when they are missing.
func needFFmpeg(t *testing.T) {
	t.Helper()
	if err := probe.CheckTools("ffmpeg", "ffprobe"); err != nil {
		t.Skip(err)
	}
}

// clip describes a generated test source.
type clip struct {
	width, height int
	seconds       int
	fps           int
	video, audio  bool
	rotate        int // display rotation tag, as a phone writes it
}

// makeClip encodes a synthetic source with ffmpeg (testsrc2 picture, sine tone) as fast as possible.
func makeClip(t *testing.T, c clip) string {
	t.Helper()
	if c.fps == 0 {
		c.fps = 30
	}
	out := filepath.Join(t.TempDir(), "source.mp4")
	d := strconv.Itoa(c.seconds)
	args := []string{"-hide_banner", "-nostdin", "-v", "error", "-y"}
	if c.video {
		args = append(args, "-f", "lavfi", "-i",
			"testsrc2=size="+strconv.Itoa(c.width)+"x"+strconv.Itoa(c.height)+":rate="+strconv.Itoa(c.fps)+":duration="+d)
	}
	if c.audio {
		args = append(args, "-f", "lavfi", "-i", "sine=frequency=440:sample_rate=44100:duration="+d)
	}
	if c.video {
		args = append(args, "-c:v", "libx264", "-preset", "ultrafast", "-pix_fmt", "yuv420p")
	}
	if c.audio {
		args = append(args, "-c:a", "aac")
	}
	args = append(args, out)
	if b, err := exec.Command("ffmpeg", args...).CombinedOutput(); err != nil {
		t.Fatalf("make clip: %v\n%s", err, b)
	}
	if c.rotate != 0 {
		// The rotate tag only survives a stream copy in ffmpeg 5.1.
		rotated := filepath.Join(filepath.Dir(out), "rotated.mp4")
		b, err := exec.Command("ffmpeg", "-hide_banner", "-nostdin", "-v", "error", "-y", "-i", out, "-c", "copy",
			"-metadata:s:v:0", "rotate="+strconv.Itoa(c.rotate), rotated).CombinedOutput()
		if err != nil {
			t.Fatalf("rotate clip: %v\n%s", err, b)
		}
		out = rotated
	}
	return out
}

// packet is one packet as ffprobe reports it.
type packet struct {
	PTSTime string `json:"pts_time"`
	Flags   string `json:"flags"`
}

// segmentPackets returns the video packets of one fMP4 segment, read by ffprobe after its init section
// (a segment alone has no moov).
func segmentPackets(t *testing.T, initPath, segPath string) []packet {
	t.Helper()
	initData, err := os.ReadFile(initPath)
	if err != nil {
		t.Fatal(err)
	}
	seg, err := os.ReadFile(segPath)
	if err != nil {
		t.Fatal(err)
	}
	joined := filepath.Join(t.TempDir(), "joined.mp4")
	if err := os.WriteFile(joined, append(initData, seg...), 0o644); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command("ffprobe", "-v", "error", "-select_streams", "v:0", "-show_entries", "packet=pts_time,flags",
		"-print_format", "json", joined).Output()
	if err != nil {
		t.Fatalf("ffprobe %s: %v", segPath, err)
	}
	var res struct{ Packets []packet }
	if err := json.Unmarshal(out, &res); err != nil {
		t.Fatal(err)
	}
	return res.Packets
}

// probeStreams lists the codec types ffprobe finds through a playlist (or any input).
func probeStreams(t *testing.T, input string) []string {
	t.Helper()
	cmd := exec.Command("ffprobe", "-v", "error", "-show_entries", "stream=codec_type,width,height", "-print_format", "json", input)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("ffprobe %s: %v\n%s", input, err, stderr.String())
	}
	if stderr.Len() > 0 {
		t.Errorf("ffprobe %s complained:\n%s", input, stderr.String())
	}
	var res struct {
		Streams []struct {
			CodecType string `json:"codec_type"`
		}
	}
	if err := json.Unmarshal(out, &res); err != nil {
		t.Fatal(err)
	}
	var types []string
	for _, s := range res.Streams {
		types = append(types, s.CodecType)
	}
	return types
}
