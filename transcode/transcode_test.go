package transcode

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/lectern/lectern/internal/hls"
)

func TestTranscode720p(t *testing.T) {
	needFFmpeg(t)
	src := makeClip(t, clip{width: 1280, height: 720, seconds: 10, video: true, audio: true})
	out := t.TempDir()

	var pcts []float64
	start := time.Now()
	res, err := Transcode(context.Background(), Config{}, Input{Source: src}, out, func(p, eta float64) {
		pcts = append(pcts, p)
		if eta < 0 {
			t.Errorf("negative eta %v", eta)
		}
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("transcoded 10 s of 1280x720 in %v; %d objects, %d bytes", time.Since(start).Round(time.Millisecond), len(res.Objects), res.Bytes)

	// Progress: non-decreasing, ending at 100.
	if len(pcts) < 2 || pcts[len(pcts)-1] != 100 || !slices.IsSorted(pcts) {
		t.Errorf("progress = %v, want increasing, ending at 100", pcts)
	}

	// Renditions as planned, measured from the output.
	if len(res.Renditions) != 4 {
		t.Fatalf("renditions = %+v", res.Renditions)
	}
	wantSize := map[string][2]int{"720p": {1280, 720}, "480p": {854, 480}, "360p": {640, 360}, "240p": {426, 240}}
	for _, r := range res.Renditions {
		if ws := wantSize[r.Name]; r.Width != ws[0] || r.Height != ws[1] {
			t.Errorf("%s: %dx%d, want %dx%d", r.Name, r.Width, r.Height, ws[0], ws[1])
		}
		if r.FrameRate != 30 {
			t.Errorf("%s: frame rate %v", r.Name, r.FrameRate)
		}
	}
	if res.Audio == nil || res.Audio.Codecs != "mp4a.40.2" {
		t.Fatalf("audio = %+v", res.Audio)
	}
	if res.DurationSeconds < 9.9 || res.DurationSeconds > 10.2 {
		t.Errorf("duration %v", res.DurationSeconds)
	}

	// Objects: all exist, master last, playlists after every segment.
	if res.Objects[len(res.Objects)-1] != MasterName {
		t.Errorf("master is not last: %v", res.Objects)
	}
	seenPlaylist := false
	for _, o := range res.Objects {
		if _, err := os.Stat(filepath.Join(out, o)); err != nil {
			t.Error(err)
		}
		if strings.HasSuffix(o, ".m3u8") {
			seenPlaylist = true
		} else if seenPlaylist {
			t.Errorf("%s listed after a playlist", o)
		}
	}

	// Every rung: a complete playlist with init.mp4, 6 s segments, key frames at the same times.
	var firstPTS [][]string
	var durations [][]float64
	for _, name := range []string{"720p", "480p", "360p", "240p", "audio"} {
		data, err := os.ReadFile(filepath.Join(out, name, "index.m3u8"))
		if err != nil {
			t.Fatal(err)
		}
		m, err := hls.ParseMedia(data)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if m.InitURI != "init.mp4" || !m.Ended || m.TargetDuration != 6 {
			t.Errorf("%s: %+v", name, m)
		}
		if len(m.Segments) != 2 || m.Segments[0].URI != "seg_00001.m4s" || m.Segments[1].URI != "seg_00002.m4s" {
			t.Fatalf("%s: segments %+v", name, m.Segments)
		}
		if d := m.Segments[0].Duration; d < 5.9 || d > 6.1 {
			t.Errorf("%s: first segment %v s, want 6", name, d)
		}
		if name == "audio" {
			continue
		}
		var ds []float64
		var pts []string
		for _, s := range m.Segments {
			ds = append(ds, s.Duration)
			pk := segmentPackets(t, filepath.Join(out, name, "init.mp4"), filepath.Join(out, name, s.URI))
			if len(pk) == 0 || !strings.HasPrefix(pk[0].Flags, "K") {
				t.Errorf("%s/%s does not start with a key frame: %+v", name, s.URI, pk[:min(len(pk), 1)])
				continue
			}
			pts = append(pts, pk[0].PTSTime)
			// A key frame every 2 s: at 30 fps, packets 0, 60, 120 of the segment.
			for i, p := range pk {
				if key := strings.HasPrefix(p.Flags, "K"); key != (i%60 == 0) {
					t.Errorf("%s/%s packet %d key=%v", name, s.URI, i, key)
					break
				}
			}
		}
		durations = append(durations, ds)
		firstPTS = append(firstPTS, pts)
	}
	for i := 1; i < len(durations); i++ {
		if !slices.Equal(durations[0], durations[i]) || !slices.Equal(firstPTS[0], firstPTS[i]) {
			t.Errorf("rungs not aligned: durations %v, first pts %v", durations, firstPTS)
		}
	}

	// The master, as a player reads it.
	data, err := os.ReadFile(filepath.Join(out, MasterName))
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("master.m3u8:\n%s", data)
	m, err := hls.ParseMaster(data)
	if err != nil {
		t.Fatal(err)
	}
	if len(m.Audio) != 1 || m.Audio[0].URI != "audio/index.m3u8" || !m.Audio[0].Default || !m.IndependentSegments {
		t.Errorf("master audio = %+v", m)
	}
	for i, v := range m.Variants {
		r := res.Renditions[i]
		if v.URI != r.Name+"/index.m3u8" || v.Width != r.Width || v.Height != r.Height || v.Audio != "audio" {
			t.Errorf("variant %d = %+v", i, v)
		}
		if !strings.HasPrefix(v.Codecs, "avc1.64") || !strings.HasSuffix(v.Codecs, ",mp4a.40.2") {
			t.Errorf("variant %d codecs %q", i, v.Codecs)
		}
		if v.Bandwidth < v.AverageBandwidth || v.AverageBandwidth <= res.Audio.AverageBandwidth {
			t.Errorf("variant %d bandwidth %d average %d", i, v.Bandwidth, v.AverageBandwidth)
		}
	}
	for i := 1; i < len(m.Variants); i++ {
		if m.Variants[i-1].Bandwidth <= m.Variants[i].Bandwidth {
			t.Errorf("%s should need more bandwidth than %s", m.Variants[i-1].URI, m.Variants[i].URI)
		}
	}
	// avc1.PPCCLL must agree with what ffprobe reads from the stream: High (0x64), level 3.1 (0x1f)
	// for 720p30 and 3.0 (0x1e) for 360p30 are what x264 picks.
	if got := m.Variants[0].Codecs; got != "avc1.64001f,mp4a.40.2" {
		t.Errorf("720p codecs %q", got)
	}

	// ffprobe (ffmpeg's HLS demuxer) accepts our master and finds video and audio.
	types := probeStreams(t, filepath.Join(out, MasterName))
	if !slices.Contains(types, "video") || !slices.Contains(types, "audio") {
		t.Errorf("ffprobe master streams = %v", types)
	}
}

func TestTranscodeShapes(t *testing.T) {
	needFFmpeg(t)
	tests := []struct {
		name      string
		clip      clip
		wantRungs []string
		wantSize  [][2]int
		wantAudio bool
		codecs    string // of the first variant
	}{
		{"no upscaling for 640x360", clip{width: 640, height: 360, seconds: 3, video: true, audio: true},
			[]string{"360p", "240p"}, [][2]int{{640, 360}, {426, 240}}, true, ""},
		{"smaller than every rung", clip{width: 320, height: 180, seconds: 3, video: true, audio: true},
			[]string{"180p"}, [][2]int{{320, 180}}, true, ""},
		// A phone held upright: 640x360 coded, rotated to 360x640. The short side picks the rung.
		{"portrait", clip{width: 640, height: 360, seconds: 3, video: true, audio: true, rotate: 90},
			[]string{"360p", "240p"}, [][2]int{{360, 640}, {240, 426}}, true, ""},
		{"video only", clip{width: 640, height: 360, seconds: 3, video: true},
			[]string{"360p", "240p"}, [][2]int{{640, 360}, {426, 240}}, false, ""},
		// A podcast: the audio ladder, best first.
		{"audio only", clip{seconds: 3, audio: true},
			[]string{"audio", "audio-48k"}, [][2]int{{0, 0}, {0, 0}}, false, "mp4a.40.2"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			src := makeClip(t, tt.clip)
			out := t.TempDir()
			res, err := Transcode(context.Background(), Config{}, Input{Source: src}, out, nil)
			if err != nil {
				t.Fatal(err)
			}
			var names []string
			for i, r := range res.Renditions {
				names = append(names, r.Name)
				if i < len(tt.wantSize) && (r.Width != tt.wantSize[i][0] || r.Height != tt.wantSize[i][1]) {
					t.Errorf("%s: %dx%d, want %v", r.Name, r.Width, r.Height, tt.wantSize[i])
				}
			}
			if !slices.Equal(names, tt.wantRungs) {
				t.Errorf("rungs %v, want %v", names, tt.wantRungs)
			}
			if (res.Audio != nil) != tt.wantAudio {
				t.Errorf("audio rendition = %+v, want %v", res.Audio, tt.wantAudio)
			}
			data, err := os.ReadFile(filepath.Join(out, MasterName))
			if err != nil {
				t.Fatal(err)
			}
			m, err := hls.ParseMaster(data)
			if err != nil {
				t.Fatal(err)
			}
			if tt.wantAudio != (len(m.Audio) == 1) {
				t.Errorf("master audio group = %+v\n%s", m.Audio, data)
			}
			if !tt.wantAudio && (m.Variants[0].Audio != "" || strings.Contains(string(data), "EXT-X-MEDIA")) {
				t.Errorf("unexpected audio group:\n%s", data)
			}
			if tt.clip.video && !tt.clip.audio && strings.Contains(m.Variants[0].Codecs, "mp4a") {
				t.Errorf("video-only codecs %q", m.Variants[0].Codecs)
			}
			if tt.codecs != "" && m.Variants[0].Codecs != tt.codecs {
				t.Errorf("codecs %q, want %q", m.Variants[0].Codecs, tt.codecs)
			}
			if _, err := os.Stat(filepath.Join(out, "audio")); tt.wantAudio != (err == nil) && tt.clip.video {
				t.Errorf("audio dir exists=%v", err == nil)
			}
			types := probeStreams(t, filepath.Join(out, MasterName))
			if slices.Contains(types, "video") != tt.clip.video || slices.Contains(types, "audio") != tt.clip.audio {
				t.Errorf("ffprobe master streams = %v", types)
			}
		})
	}
}

func TestTranscodeRejects(t *testing.T) {
	needFFmpeg(t)
	text := filepath.Join(t.TempDir(), "slides.txt")
	if err := os.WriteFile(text, []byte("not a video\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	long := makeClip(t, clip{width: 160, height: 90, seconds: 3, video: true})
	tests := []struct {
		name   string
		src    string
		cfg    Config
		reason string
	}{
		{"text file", text, Config{}, "not a video or audio file (ffprobe could not read it)"},
		{"too long", long, Config{MaxDuration: 2 * time.Second}, "the recording is 3s long; the limit is 2s"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Transcode(context.Background(), tt.cfg, Input{Source: tt.src}, t.TempDir(), nil)
			if !IsRejected(err) {
				t.Fatalf("err = %v, want rejected", err)
			}
			if Reason(err) != tt.reason {
				t.Errorf("reason %q, want %q", Reason(err), tt.reason)
			}
		})
	}
}

func TestTranscodeCancel(t *testing.T) {
	needFFmpeg(t)
	src := makeClip(t, clip{width: 1280, height: 720, seconds: 10, video: true, audio: true})
	ctx, cancel := context.WithCancel(context.Background())
	_, err := Transcode(ctx, Config{}, Input{Source: src}, t.TempDir(), func(p, _ float64) {
		if p > 0 {
			cancel()
		}
	})
	if !errors.Is(err, context.Canceled) || IsRejected(err) {
		t.Fatalf("err = %v, want context.Canceled and not rejected", err)
	}
}

func TestRunFFmpegErrorCarriesStderr(t *testing.T) {
	needFFmpeg(t)
	err := runFFmpeg(context.Background(), "ffmpeg", t.TempDir(),
		[]string{"-hide_banner", "-nostdin", "-loglevel", "error", "-i", "/nonexistent/lecture.mp4", "-f", "null", "-"}, 1, nil)
	t.Log(err)
	if err == nil || !strings.Contains(err.Error(), "/nonexistent/lecture.mp4: No such file or directory") {
		t.Errorf("err = %v, want ffmpeg's own message", err)
	}
	if IsRejected(err) {
		t.Error("an ffmpeg failure is not a verdict on the source")
	}
}
