package transcode

import (
	"context"
	"fmt"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

func TestReadSceneTimes(t *testing.T) {
	// As ffmpeg 5.1's metadata=print writes it: a frame line, then the frame's lavfi values.
	data := "frame:0    pts:0       pts_time:0\nlavfi.scene_score=0.000000\n" +
		"frame:1    pts:6000    pts_time:6.5\nlavfi.scene_score=0.913000\n" +
		"frame:2    pts:12000   pts_time:12\nlavfi.scene_score=0.402000\n"
	got, err := readSceneTimes([]byte(data))
	if err != nil || !slices.Equal(got, []float64{0, 6.5, 12}) {
		t.Errorf("readSceneTimes = %v, %v", got, err)
	}
	if _, err := readSceneTimes([]byte("frame:0 pts:0 pts_time:nan\n")); err == nil {
		t.Error("NaN time accepted")
	}
}

func TestShapeChapters(t *testing.T) {
	thumbs := func(n int) []string {
		var out []string
		for i := range n {
			out = append(out, fmt.Sprintf("t%d", i+1))
		}
		return out
	}
	tests := []struct {
		name     string
		times    []float64
		duration float64
		want     []Chapter
	}{
		{"slides", []float64{0, 15, 30}, 45,
			[]Chapter{{0, 15, "t1"}, {15, 30, "t2"}, {30, 45, "t3"}}},
		// A build 2 s into a slide merges into it and the finished slide's picture wins.
		{"build merged, later picture kept", []float64{0, 15, 17, 30}, 45,
			[]Chapter{{0, 15, "t1"}, {15, 30, "t3"}, {30, 45, "t4"}}},
		{"end card in the last seconds ignored", []float64{0, 15, 42}, 45,
			[]Chapter{{0, 15, "t1"}, {15, 45, "t2"}}},
		{"first change late: chapter 1 still starts at 0", []float64{3.5, 20}, 40,
			[]Chapter{{0, 20, "t1"}, {20, 40, "t2"}}},
		{"nothing detected", nil, 40, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := shapeChapters(tt.times, thumbs(len(tt.times)), tt.duration)
			if !slices.Equal(got, tt.want) {
				t.Errorf("got  %v\nwant %v", got, tt.want)
			}
		})
	}
	// A film cut every second: the minimum length doubles until at most maxChapters remain.
	var times []float64
	for i := range 3000 {
		times = append(times, float64(i))
	}
	got := shapeChapters(times, thumbs(len(times)), 3000)
	if len(got) > maxChapters || len(got) < maxChapters/2 || got[0].Start != 0 || got[len(got)-1].End != 3000 {
		t.Errorf("%d chapters for 3000 cuts, first %+v last %+v", len(got), got[0], got[len(got)-1])
	}
	for i := 1; i < len(got); i++ {
		if got[i].Start != got[i-1].End {
			t.Fatalf("gap or overlap at %d: %+v %+v", i, got[i-1], got[i])
		}
	}
}

func TestChaptersVTT(t *testing.T) {
	got := string(chaptersVTT([]Chapter{{0, 15.25, "thumbs/0001.jpg"}, {15.25, 3725.5, "thumbs/0003.jpg"}}))
	want := "WEBVTT\n\nthumbs/0001.jpg\n00:00:00.000 --> 00:00:15.250\nSlide 1\n\n" +
		"thumbs/0003.jpg\n00:00:15.250 --> 01:02:05.500\nSlide 2\n"
	if got != want {
		t.Errorf("got\n%s\nwant\n%s", got, want)
	}
}

// TestSlideChapters: a generated slide deck (four plain slides of 6 s, a bullet "built" 2 s into the
// third, a small moving camera picture throughout) gets one chapter per slide at the slide changes,
// the built slide's finished picture as its thumbnail, and a poster.
func TestSlideChapters(t *testing.T) {
	needFFmpeg(t)
	graph := "color=c=0xF4F4F0:s=640x360:d=6[a];color=c=0x1F5AA6:s=640x360:d=6[b];" +
		"color=c=0xF0E6C8:s=640x360:d=6,drawbox=x=40:y=60:w=560:h=200:color=0x8E44AD:t=fill:enable='gte(t,2)'[c];" +
		"color=c=0x303030:s=640x360:d=6[d];[a][b][c][d]concat=n=4,fps=30[slides];" +
		"testsrc2=s=96x54:r=30:d=24[cam];[slides][cam]overlay=x=W-w-8:y=H-h-8:shortest=1,format=yuv420p"
	src := genClip(t, "deck.mp4", "-f", "lavfi", "-i", graph, "-c:v", "libx264", "-preset", "ultrafast")
	out := t.TempDir()
	res, err := Transcode(context.Background(), Config{}, Input{Source: src}, out, nil)
	if err != nil {
		t.Fatal(err)
	}
	var starts []float64
	for _, c := range res.Chapters {
		starts = append(starts, c.Start)
	}
	want := []float64{0, 6, 12, 18}
	if len(starts) != len(want) {
		t.Fatalf("chapters %+v, want starts %v", res.Chapters, want)
	}
	for i := range want {
		// Detection looks twice a second.
		if math.Abs(starts[i]-want[i]) > 1.0/chapterFPS+0.01 {
			t.Errorf("chapter %d starts at %v, want %v", i+1, starts[i], want[i])
		}
	}
	// The build at 14 s was seen (a later thumbnail than the slide's first) but made no chapter.
	if n := thumbIndex(t, res.Chapters[2].Thumb); n <= thumbIndex(t, res.Chapters[1].Thumb)+1 {
		t.Errorf("built slide's thumbnail %s, want the one after the build", res.Chapters[2].Thumb)
	}
	vtt, err := os.ReadFile(filepath.Join(out, ChaptersName))
	if err != nil || !strings.HasPrefix(string(vtt), "WEBVTT\n") || strings.Count(string(vtt), " --> ") != 4 {
		t.Errorf("chapters.vtt: %v\n%s", err, vtt)
	}
	// Exactly the chapters' thumbnails are kept and published, each a 320-pixel-wide JPEG.
	left, _ := filepath.Glob(filepath.Join(out, thumbsDir, "*.jpg"))
	if len(left) != 4 {
		t.Errorf("thumbnails left: %v", left)
	}
	for _, c := range res.Chapters {
		if !slices.Contains(res.Objects, c.Thumb) {
			t.Errorf("%s not published", c.Thumb)
		}
		if w, h := jpegSize(t, filepath.Join(out, c.Thumb)); w != 320 || h != 180 {
			t.Errorf("%s is %dx%d, want 320x180", c.Thumb, w, h)
		}
	}
	if _, err := os.Stat(filepath.Join(out, scenesFile)); !os.IsNotExist(err) {
		t.Errorf("%s left in the output: %v", scenesFile, err)
	}
	if res.Poster != PosterName || !slices.Contains(res.Objects, PosterName) {
		t.Errorf("poster %q, objects %v", res.Poster, res.Objects)
	}
	if w, h := jpegSize(t, filepath.Join(out, PosterName)); w != 640 || h != 360 {
		t.Errorf("poster %dx%d, want the 360p source size", w, h)
	}
}

func thumbIndex(t *testing.T, thumb string) int {
	t.Helper()
	var n int
	if _, err := fmt.Sscanf(filepath.Base(thumb), "%04d.jpg", &n); err != nil {
		t.Fatalf("thumbnail name %q: %v", thumb, err)
	}
	return n
}

// jpegSize asks ffprobe for an image's size (and so that it decodes).
func jpegSize(t *testing.T, path string) (int, int) {
	t.Helper()
	out, err := exec.Command("ffprobe", "-v", "error", "-show_entries", "stream=codec_name,width,height",
		"-of", "csv=p=0", path).Output()
	if err != nil {
		t.Fatalf("ffprobe %s: %v", path, err)
	}
	var w, h int
	if _, err := fmt.Sscanf(strings.TrimSpace(string(out)), "mjpeg,%d,%d", &w, &h); err != nil {
		t.Fatalf("%s: %q is not a JPEG's size: %v", path, out, err)
	}
	return w, h
}
