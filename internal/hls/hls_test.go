package hls

import (
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

func sampleMaster() Master {
	return Master{
		IndependentSegments: true,
		Variants: []Variant{
			{URI: "720p/index.m3u8", Bandwidth: 2_500_000, AverageBandwidth: 1_800_000, Codecs: "avc1.64001f,mp4a.40.2",
				Width: 1280, Height: 720, FrameRate: 29.97, Audio: "aud"},
			{URI: "360p/index.m3u8", Bandwidth: 800_000, AverageBandwidth: 600_000, Codecs: "avc1.64001e,mp4a.40.2",
				Width: 640, Height: 360, FrameRate: 29.97, Audio: "aud"},
		},
		Audio: []AudioRendition{{GroupID: "aud", Name: "Audio", Language: "en", URI: "audio/index.m3u8", Default: true}},
	}
}

func TestWriteMasterRoundTrip(t *testing.T) {
	tests := []struct {
		name string
		m    Master
	}{
		{"video with audio group", sampleMaster()},
		{"video only", Master{Variants: []Variant{{URI: "a/index.m3u8", Bandwidth: 1000, Codecs: "avc1.640015", Width: 320, Height: 180, FrameRate: 25}}}},
		{"audio only variant", Master{Variants: []Variant{{URI: "audio/index.m3u8", Bandwidth: 140_000, AverageBandwidth: 130_000, Codecs: "mp4a.40.2"}}}},
		{"with captions", withCaptions()},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			data, err := WriteMaster(tt.m)
			if err != nil {
				t.Fatal(err)
			}
			got, err := ParseMaster(data)
			if err != nil {
				t.Fatalf("ParseMaster: %v\n%s", err, data)
			}
			if !reflect.DeepEqual(got, tt.m) {
				t.Errorf("round trip:\n got %+v\nwant %+v\n%s", got, tt.m, data)
			}
		})
	}
}

// TestWriteMasterText pins the grafov/m3u8 output details that players and validators care about.
func TestWriteMasterText(t *testing.T) {
	data, err := WriteMaster(sampleMaster())
	if err != nil {
		t.Fatal(err)
	}
	s := string(data)
	t.Logf("\n%s", s)
	lines := strings.Split(strings.TrimSpace(s), "\n")
	if lines[0] != "#EXTM3U" || lines[1] != "#EXT-X-VERSION:7" {
		t.Errorf("header = %q, want #EXTM3U then version 7", lines[:2])
	}
	for _, want := range []string{
		"#EXT-X-INDEPENDENT-SEGMENTS\n",
		`#EXT-X-MEDIA:TYPE=AUDIO,GROUP-ID="aud",NAME="Audio",DEFAULT=YES,AUTOSELECT=YES,LANGUAGE="en",URI="audio/index.m3u8"` + "\n",
		`#EXT-X-STREAM-INF:BANDWIDTH=2500000,AVERAGE-BANDWIDTH=1800000,CODECS="avc1.64001f,mp4a.40.2",RESOLUTION=1280x720,AUDIO="aud",FRAME-RATE=29.970` + "\n720p/index.m3u8\n",
	} {
		if !strings.Contains(s, want) {
			t.Errorf("missing %q", want)
		}
	}
	if strings.Contains(s, "PROGRAM-ID") {
		t.Error("PROGRAM-ID was removed in protocol version 6 and must not be written")
	}
	if n := strings.Count(s, "#EXT-X-MEDIA:"); n != 1 {
		t.Errorf("%d EXT-X-MEDIA tags, want 1 (shared by both variants)", n)
	}
	// The first variant is where players start: order must be kept as given.
	if strings.Index(s, "720p/") > strings.Index(s, "360p/") {
		t.Error("variant order not preserved")
	}
}

func TestWriteMasterRejects(t *testing.T) {
	m := sampleMaster
	tests := map[string]Master{
		"no variants":        {},
		"zero bandwidth":     func() Master { x := m(); x.Variants[0].Bandwidth = 0; return x }(),
		"missing uri":        func() Master { x := m(); x.Variants[1].URI = ""; return x }(),
		"unknown audio":      func() Master { x := m(); x.Variants[0].Audio = "other"; return x }(),
		"quote in codecs":    func() Master { x := m(); x.Variants[0].Codecs = `avc1",x`; return x }(),
		"newline in uri":     func() Master { x := m(); x.Variants[0].URI = "a\n#EXT-X-ENDLIST"; return x }(),
		"rendition no uri":   func() Master { x := m(); x.Audio[0].URI = ""; return x }(),
		"negative framerate": func() Master { x := m(); x.Variants[0].FrameRate = -1; return x }(),
	}
	for name, in := range tests {
		if _, err := WriteMaster(in); err == nil {
			t.Errorf("%s: no error", name)
		}
	}
}

func TestParseMediaFFmpegFMP4(t *testing.T) {
	data, err := os.ReadFile("testdata/ffmpeg51_fmp4_720p.m3u8")
	if err != nil {
		t.Fatal(err)
	}
	got, err := ParseMedia(data)
	if err != nil {
		t.Fatal(err)
	}
	want := Media{
		TargetDuration: 6,
		InitURI:        "init_0.mp4",
		Segments:       []Segment{{"seg_00000.m4s", 6}, {"seg_00001.m4s", 4}},
		Ended:          true,
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("got %+v\nwant %+v", got, want)
	}
	if got.Duration() != 10 {
		t.Errorf("Duration = %v", got.Duration())
	}
}

// TestParseMediaLiveFFmpeg parses what the installed ffmpeg writes right now, so an ffmpeg upgrade that
// changes the playlist shape shows up here.
func TestParseMediaLiveFFmpeg(t *testing.T) {
	if _, err := exec.LookPath("ffmpeg"); err != nil {
		t.Skip("ffmpeg not installed")
	}
	dir := t.TempDir()
	cmd := exec.Command("ffmpeg", "-hide_banner", "-nostdin", "-v", "error",
		"-f", "lavfi", "-i", "testsrc=size=160x90:rate=10:duration=5",
		"-c:v", "libx264", "-preset", "ultrafast", "-g", "10",
		"-f", "hls", "-hls_segment_type", "fmp4", "-hls_time", "2", "-hls_playlist_type", "vod",
		"-hls_fmp4_init_filename", "init.mp4", "-hls_segment_filename", filepath.Join(dir, "seg_%05d.m4s"),
		filepath.Join(dir, "index.m3u8"))
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("ffmpeg: %v\n%s", err, out)
	}
	data, err := os.ReadFile(filepath.Join(dir, "index.m3u8"))
	if err != nil {
		t.Fatal(err)
	}
	m, err := ParseMedia(data)
	if err != nil {
		t.Fatalf("%v\n%s", err, data)
	}
	if m.InitURI != "init.mp4" || !m.Ended || len(m.Segments) != 3 || m.TargetDuration != 2 {
		t.Errorf("unexpected %+v\n%s", m, data)
	}
	if d := m.Duration(); d < 4.9 || d > 5.1 {
		t.Errorf("duration %v, want 5", d)
	}
	for _, s := range m.Segments {
		if _, err := os.Stat(filepath.Join(dir, s.URI)); err != nil {
			t.Error(err)
		}
	}
}

// ffmpeg's AAC playlists have 6.016 s segments under TARGETDURATION:6 (legal: EXTINF rounds to 6).
// The library would report 7; ParseMedia must report what the playlist says.
func TestParseMediaTargetDurationAsWritten(t *testing.T) {
	data := "#EXTM3U\n#EXT-X-VERSION:7\n#EXT-X-TARGETDURATION:6\n#EXT-X-PLAYLIST-TYPE:VOD\n" +
		"#EXT-X-MAP:URI=\"init.mp4\"\n#EXTINF:6.016000,\nseg_00001.m4s\n#EXTINF:4.013146,\nseg_00002.m4s\n#EXT-X-ENDLIST\n"
	m, err := ParseMedia([]byte(data))
	if err != nil {
		t.Fatal(err)
	}
	if m.TargetDuration != 6 || m.Segments[0].Duration != 6.016 || m.InitURI != "init.mp4" {
		t.Errorf("got %+v", m)
	}
}

func TestParseFFmpegMaster(t *testing.T) {
	data, err := os.ReadFile("testdata/ffmpeg51_master.m3u8")
	if err != nil {
		t.Fatal(err)
	}
	m, err := ParseMaster(data)
	if err != nil {
		t.Fatal(err)
	}
	if len(m.Variants) != 3 || len(m.Audio) != 1 {
		t.Fatalf("got %d variants, %d audio renditions: %+v", len(m.Variants), len(m.Audio), m)
	}
	v := m.Variants[0]
	if v.Width != 1280 || v.Height != 720 || v.Codecs != "avc1.64001f,mp4a.40.2" || v.Audio != "group_aud" || v.Bandwidth != 3440800 {
		t.Errorf("variant 0 = %+v", v)
	}
	if a := m.Audio[0]; a.GroupID != "group_aud" || !a.Default || a.URI != "audio/index.m3u8" {
		t.Errorf("audio = %+v", a)
	}
}

func TestParseRejects(t *testing.T) {
	master, _ := WriteMaster(sampleMaster())
	media, _ := os.ReadFile("testdata/ffmpeg51_fmp4_720p.m3u8")
	garbage := map[string]string{
		"empty":       "",
		"whitespace":  " \n\n",
		"text":        "hello world\n",
		"html":        "<html><body>502 Bad Gateway</body></html>\n",
		"no EXTM3U":   "#EXT-X-TARGETDURATION:6\n#EXTINF:6,\nseg.m4s\n",
		"bad EXTINF":  "#EXTM3U\n#EXT-X-TARGETDURATION:6\n#EXTINF:six,\nseg.m4s\n",
		"binary":      "\x00\x00\x00\x18ftypiso5",
		"header only": "#EXTM3U\n",
	}
	for name, in := range garbage {
		if m, err := ParseMedia([]byte(in)); err == nil {
			t.Errorf("ParseMedia(%s) = %+v, want error", name, m)
		}
		if m, err := ParseMaster([]byte(in)); err == nil {
			t.Errorf("ParseMaster(%s) = %+v, want error", name, m)
		}
	}
	if _, err := ParseMedia(master); err == nil {
		t.Error("ParseMedia accepted a master playlist")
	}
	if _, err := ParseMaster(media); err == nil {
		t.Error("ParseMaster accepted a media playlist")
	}
}

func withCaptions() Master {
	m := sampleMaster()
	for i := range m.Variants {
		m.Variants[i].Subtitles = "subs"
	}
	m.Subtitles = []SubtitleRendition{{GroupID: "subs", Name: "Captions", Language: "ko", URI: "subs/index.m3u8"}}
	return m
}

func TestWriteMasterSubtitles(t *testing.T) {
	data, err := WriteMaster(withCaptions())
	if err != nil {
		t.Fatal(err)
	}
	s := string(data)
	for _, want := range []string{
		`#EXT-X-MEDIA:TYPE=SUBTITLES,GROUP-ID="subs",NAME="Captions",DEFAULT=NO,AUTOSELECT=YES,LANGUAGE="ko",URI="subs/index.m3u8"`,
		`SUBTITLES="subs"`,
	} {
		if !strings.Contains(s, want) {
			t.Errorf("missing %s in\n%s", want, s)
		}
	}
	if n := strings.Count(s, "TYPE=SUBTITLES"); n != 1 {
		t.Errorf("%d SUBTITLES renditions, want 1:\n%s", n, s)
	}
	bad := withCaptions()
	bad.Subtitles = nil
	if _, err := WriteMaster(bad); err == nil {
		t.Error("a SUBTITLES group without a rendition was accepted")
	}
	bad = withCaptions()
	bad.Subtitles[0].Name = `Cap"tions`
	if _, err := WriteMaster(bad); err == nil {
		t.Error("a quote in NAME was accepted")
	}
}

func TestWriteSingleFileMedia(t *testing.T) {
	data, err := WriteSingleFileMedia("captions.vtt", 125.4)
	if err != nil {
		t.Fatal(err)
	}
	m, err := ParseMedia(data)
	if err != nil {
		t.Fatalf("%v\n%s", err, data)
	}
	if !m.Ended || m.TargetDuration != 126 || len(m.Segments) != 1 || m.Segments[0].URI != "captions.vtt" || m.Segments[0].Duration != 125.4 {
		t.Errorf("parsed back %+v from\n%s", m, data)
	}
	if !strings.Contains(string(data), "#EXT-X-PLAYLIST-TYPE:VOD") {
		t.Errorf("not VOD:\n%s", data)
	}
	for _, bad := range []struct {
		uri string
		d   float64
	}{{"", 1}, {"a.vtt", 0}, {"a\n.vtt", 1}} {
		if _, err := WriteSingleFileMedia(bad.uri, bad.d); err == nil {
			t.Errorf("WriteSingleFileMedia(%q, %v) accepted", bad.uri, bad.d)
		}
	}
}
