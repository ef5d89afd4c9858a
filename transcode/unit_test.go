package transcode

import (
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"
)

func TestPlanLadder(t *testing.T) {
	ladder := DefaultLadder()
	tests := []struct {
		srcHeight int
		want      []string // name:height
	}{
		{1080, []string{"720p:720", "360p:360"}},
		{720, []string{"720p:720", "360p:360"}},
		{700, []string{"700p:700", "360p:360"}}, // much taller than 360: keep the source height
		{481, []string{"480p:480", "360p:360"}}, // odd height rounds down to even
		{400, []string{"360p:360"}},             // close to 360: no near-duplicate rung
		{360, []string{"360p:360"}},
		{240, []string{"240p:240"}},
		{1, []string{"2p:2"}},
	}
	for _, tt := range tests {
		var got []string
		for _, r := range planLadder(ladder, tt.srcHeight) {
			got = append(got, r.Name+":"+itoa(r.Height))
		}
		if !slices.Equal(got, tt.want) {
			t.Errorf("planLadder(%d) = %v, want %v", tt.srcHeight, got, tt.want)
		}
	}
	// The source-height rung takes the rate settings of the rung it replaces.
	if r := planLadder(ladder, 700)[0]; r.MaxrateKbps != 2500 || r.CRF != 23 {
		t.Errorf("700p rung = %+v, want 720p's settings", r)
	}
	if r := planLadder(ladder, 240)[0]; r.MaxrateKbps != 700 {
		t.Errorf("240p rung = %+v, want 360p's settings", r)
	}
	// Given order does not matter; output is tallest first, input untouched.
	rev := []Rung{ladder[1], ladder[0]}
	if got := planLadder(rev, 1080); got[0].Name != "720p" || rev[0].Name != "360p" {
		t.Errorf("planLadder reordered input or output: %v / %v", got, rev)
	}
}

func itoa(i int) string { return strconv.Itoa(i) }

func TestValidateLadder(t *testing.T) {
	if err := validateLadder(DefaultLadder()); err != nil {
		t.Fatal(err)
	}
	bad := map[string][]Rung{
		"empty":     nil,
		"audio":     {{Name: "audio", Height: 360, CRF: 23, MaxrateKbps: 1, BufsizeKbps: 1}},
		"slash":     {{Name: "a/b", Height: 360, CRF: 23, MaxrateKbps: 1, BufsizeKbps: 1}},
		"duplicate": {{Name: "x", Height: 360, CRF: 23, MaxrateKbps: 1, BufsizeKbps: 1}, {Name: "x", Height: 240, CRF: 23, MaxrateKbps: 1, BufsizeKbps: 1}},
		"crf":       {{Name: "x", Height: 360, CRF: 60, MaxrateKbps: 1, BufsizeKbps: 1}},
		"maxrate":   {{Name: "x", Height: 360, CRF: 23, BufsizeKbps: 1}},
	}
	for name, l := range bad {
		if err := validateLadder(l); err == nil {
			t.Errorf("%s: no error", name)
		}
	}
}

func TestFFmpegArgs(t *testing.T) {
	p := plan{rungs: DefaultLadder(), hasVideo: true, hasAudio: true, frameRate: 30000.0 / 1001}
	got := strings.Join(ffmpegArgs("/tmp/src", p), " ")
	t.Logf("ffmpeg %s", got)
	for _, want := range []string{
		"-nostats -progress pipe:1 -i /tmp/src",
		"-filter_complex [0:v:0]split=2[s0][s1];[s0]scale=w=-2:h=720,format=yuv420p[v0];[s1]scale=w=-2:h=360,format=yuv420p[v1]",
		"-map [v0] -map [v1] -map 0:a:0",
		"-c:v libx264 -profile:v high -preset veryfast",
		"-force_key_frames expr:gte(t,n_forced*2) -sc_threshold 0 -g 60 -keyint_min 60",
		"-crf:v:0 23 -maxrate:v:0 2500k -bufsize:v:0 5000k -crf:v:1 26 -maxrate:v:1 700k -bufsize:v:1 1400k",
		"-c:a aac -profile:a aac_low -b:a 128k -ac 2 -ar 48000",
		"-f hls -hls_segment_type fmp4 -hls_time 6 -hls_playlist_type vod -hls_flags independent_segments",
		"-var_stream_map v:0,agroup:audio,name:720p v:1,agroup:audio,name:360p a:0,agroup:audio,name:audio %v/index.m3u8",
	} {
		if !strings.Contains(got, want) {
			t.Errorf("missing %q", want)
		}
	}
	if strings.Contains(got, "master_pl_name") {
		t.Error("ffmpeg's master playlist must not be requested")
	}

	portrait := strings.Join(ffmpegArgs("s", plan{rungs: DefaultLadder()[1:], hasVideo: true, portrait: true}), " ")
	if !strings.Contains(portrait, "[s0]scale=w=360:h=-2,format=yuv420p[v0]") {
		t.Errorf("portrait: %s", portrait)
	}
	videoOnly := strings.Join(ffmpegArgs("s", plan{rungs: DefaultLadder()[:1], hasVideo: true}), " ")
	if strings.Contains(videoOnly, "agroup") || strings.Contains(videoOnly, "-c:a") || strings.Contains(videoOnly, "-g ") {
		t.Errorf("video only (unknown frame rate): %s", videoOnly)
	}
	audioOnly := strings.Join(ffmpegArgs("s", plan{hasAudio: true}), " ")
	if strings.Contains(audioOnly, "-c:v") || !strings.Contains(audioOnly, "-var_stream_map a:0,name:audio ") {
		t.Errorf("audio only: %s", audioOnly)
	}
}

func TestReadProgress(t *testing.T) {
	stream := `frame=0
out_time_us=N/A
progress=continue
frame=50
out_time_us=2000000
progress=continue
out_time_us=1900000
progress=continue
out_time_us=5000000
speed=2.1x
progress=continue
out_time_us=10026667
progress=end
`
	var pcts, etas []float64
	start := time.Unix(0, 0)
	now := func() time.Time { return start.Add(2 * time.Second) }
	readProgress(strings.NewReader(stream), 10, start, now, func(p, e float64) {
		pcts = append(pcts, p)
		etas = append(etas, e)
	})
	if want := []float64{20, 20, 50, 100}; !slices.Equal(pcts, want) {
		t.Errorf("percent = %v, want %v", pcts, want)
	}
	if want := []float64{8, 8, 2, 0}; !slices.Equal(etas, want) {
		t.Errorf("eta = %v, want %v", etas, want)
	}
}

func TestTailBuffer(t *testing.T) {
	tb := newTailBuffer(3)
	for _, s := range []string{"one\ntwo\n", "\n", "three\r\nfo", "ur\nfive"} {
		if _, err := tb.Write([]byte(s)); err != nil {
			t.Fatal(err)
		}
	}
	if got, want := tb.String(), "three\nfour\nfive"; got != want {
		t.Errorf("tail = %q, want %q", got, want)
	}
}

func TestBitrates(t *testing.T) {
	seg := func(kbit float64, d float64) segmentSize {
		return segmentSize{bytes: int64(kbit * 1000 / 8), duration: d}
	}
	tests := []struct {
		name      string
		segs      []segmentSize
		peak, avg int
	}{
		{"steady", []segmentSize{seg(6000, 6), seg(6000, 6)}, 1000_000, 1000_000},
		// A busy segment sets the peak.
		{"busy middle", []segmentSize{seg(6000, 6), seg(18000, 6), seg(600, 1)}, 3000_000, 1_892_308},
		// The short tail alone (4 Mbit/s) is no window: it is measured with its neighbour.
		{"tiny tail joins neighbour", []segmentSize{seg(6000, 6), seg(2000, 0.5)}, 1_230_770, 1_230_770},
		{"shorter than half a target", []segmentSize{seg(1000, 2)}, 500_000, 500_000},
		{"empty", nil, 0, 0},
	}
	for _, tt := range tests {
		peak, avg := bitrates(tt.segs, 6)
		if peak != tt.peak || avg != tt.avg {
			t.Errorf("%s: peak %d avg %d, want %d %d", tt.name, peak, avg, tt.peak, tt.avg)
		}
	}
}

func TestReadInitSegmentRejectsGarbage(t *testing.T) {
	for name, data := range map[string][]byte{
		"empty":     nil,
		"text":      []byte("#EXTM3U\n"),
		"truncated": {0, 0, 0, 100, 'm', 'o', 'o', 'v', 0, 0},
		"no stsd":   {0, 0, 0, 8, 'm', 'o', 'o', 'v'},
	} {
		if info, err := readInitSegment(data); err == nil {
			t.Errorf("%s: got %+v, want error", name, info)
		}
	}
}

func TestDescriptorLength(t *testing.T) {
	// Lengths may use 1-4 bytes; ffmpeg writes the 4-byte 0x80 0x80 0x80 form.
	body := []byte{1, 2, 3}
	for _, enc := range [][]byte{{3}, {0x80, 0x80, 0x80, 3}} {
		d := append(append([]byte{0x05}, enc...), body...)
		tag, got, rest, err := descriptor(append(d, 9))
		if err != nil || tag != 5 || !slices.Equal(got, body) || !slices.Equal(rest, []byte{9}) {
			t.Errorf("descriptor(% x) = %d % x % x %v", d, tag, got, rest, err)
		}
	}
	if _, _, _, err := descriptor([]byte{5, 0x80, 0x80, 0x80, 0x80, 1}); err == nil {
		t.Error("5-byte length accepted")
	}
}

func TestPutOptions(t *testing.T) {
	for name, want := range map[string]string{
		"master.m3u8":         "application/vnd.apple.mpegurl",
		"720p/index.m3u8":     "application/vnd.apple.mpegurl",
		"720p/init.mp4":       "video/mp4",
		"audio/init.mp4":      "audio/mp4",
		"720p/seg_00001.m4s":  "video/iso.segment",
		"audio/seg_00001.m4s": "video/iso.segment",
	} {
		o := putOptions(name)
		if o.ContentType != want || o.CacheControl != "public, max-age=31536000, immutable" {
			t.Errorf("%s: %+v", name, o)
		}
	}
}

func TestRenameInitRefusesSurprises(t *testing.T) {
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "init_0.mp4"), []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := renameInit(dir, []byte("#EXTM3U\n"), "init_0.mp4"); err == nil {
		t.Error("renamed without an EXT-X-MAP tag")
	}
	if _, err := renameInit(dir, []byte(`#EXT-X-MAP:URI="../x.mp4"`), "../x.mp4"); err == nil {
		t.Error("accepted a path outside the rendition directory")
	}
	out, err := renameInit(dir, []byte("#EXTM3U\n#EXT-X-MAP:URI=\"init_0.mp4\"\n#EXTINF:6,\nseg_00001.m4s\n"), "init_0.mp4")
	if err != nil || !strings.Contains(string(out), `#EXT-X-MAP:URI="init.mp4"`) {
		t.Errorf("renameInit = %q, %v", out, err)
	}
	if _, err := os.Stat(filepath.Join(dir, "init.mp4")); err != nil {
		t.Error(err)
	}
}

func TestRoundDuration(t *testing.T) {
	for in, want := range map[float64]string{21600: "6h", 25920: "7h12m", 2703.4: "45m3s", 3: "3s"} {
		if got := roundDuration(in); got != want {
			t.Errorf("roundDuration(%v) = %q, want %q", in, got, want)
		}
	}
}
