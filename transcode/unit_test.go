package transcode

import (
	"math"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/lectern/lectern/internal/probe"
)

func lectureProfile(t *testing.T) Profile {
	t.Helper()
	p, ok := FindProfile(DefaultProfiles(), "")
	if !ok || p.Name != "lecture" {
		t.Fatalf("default profile = %+v", p)
	}
	return p
}

// TestNewPlan is the ladder selection table: which rungs, sizes and frame rate each kind of source gets.
func TestNewPlan(t *testing.T) {
	lecture := lectureProfile(t)
	motion, _ := FindProfile(DefaultProfiles(), "motion")
	video := func(w, h int, fps float64) probe.Result {
		return probe.Result{HasVideo: true, HasAudio: true, Width: w, Height: h, FrameRate: fps, NominalFrameRate: fps, DurationSeconds: 600}
	}
	rotated := video(1920, 1080, 30)
	rotated.Rotation = 90
	tests := []struct {
		name     string
		info     probe.Result
		prof     Profile
		rungs    []string // name:height
		portrait bool
		fps      float64
		audio    []string
	}{
		{"4K", video(3840, 2160, 30), lecture, []string{"1080p:1080", "720p:720", "480p:480", "360p:360", "240p:240"}, false, 30, []string{"audio"}},
		{"1080p", video(1920, 1080, 30), lecture, []string{"1080p:1080", "720p:720", "480p:480", "360p:360", "240p:240"}, false, 30, []string{"audio"}},
		{"720p", video(1280, 720, 25), lecture, []string{"720p:720", "480p:480", "360p:360", "240p:240"}, false, 25, []string{"audio"}},
		{"portrait 1080x1920", video(1080, 1920, 30), lecture, []string{"1080p:1080", "720p:720", "480p:480", "360p:360", "240p:240"}, true, 30, []string{"audio"}},
		{"phone rotated 90", rotated, lecture, []string{"1080p:1080", "720p:720", "480p:480", "360p:360", "240p:240"}, true, 30, []string{"audio"}},
		{"480p", video(854, 480, 29.97), lecture, []string{"480p:480", "360p:360", "240p:240"}, false, 30000.0 / 1001, []string{"audio"}},
		{"screen recording 1280x700", video(1280, 700, 30), lecture, []string{"700p:700", "480p:480", "360p:360", "240p:240"}, false, 30, []string{"audio"}},
		{"tiny 320x180", video(320, 180, 30), lecture, []string{"180p:180"}, false, 30, []string{"audio"}},
		{"60 fps lecture halves", video(1920, 1080, 60), lecture, []string{"1080p:1080", "720p:720", "480p:480", "360p:360", "240p:240"}, false, 30, []string{"audio"}},
		{"60 fps motion keeps", video(1920, 1080, 60), motion, []string{"1080p:1080", "720p:720", "480p:480", "360p:360", "240p:240"}, false, 60, []string{"audio"}},
		{"audio only", probe.Result{HasAudio: true, DurationSeconds: 600}, lecture, nil, false, 0, []string{"audio", "audio-48k"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := newPlan(tt.info, tt.prof, true)
			var got []string
			for _, r := range p.rungs {
				got = append(got, r.Name+":"+itoa(r.Height))
			}
			if !slices.Equal(got, tt.rungs) {
				t.Errorf("rungs %v, want %v", got, tt.rungs)
			}
			var audio []string
			for _, a := range p.audio {
				audio = append(audio, a.Name)
			}
			if !slices.Equal(audio, tt.audio) {
				t.Errorf("audio %v, want %v", audio, tt.audio)
			}
			if p.portrait != tt.portrait || math.Abs(p.frameRate-tt.fps) > 0.001 {
				t.Errorf("portrait %v fps %v, want %v %v", p.portrait, p.frameRate, tt.portrait, tt.fps)
			}
			if tt.info.HasVideo != p.chapters || (p.posterAt < 0) {
				t.Errorf("chapters %v, poster at %v", p.chapters, p.posterAt)
			}
			if tt.info.HasVideo && p.posterHeight != min(720, p.rungs[0].Height) {
				t.Errorf("poster height %d", p.posterHeight)
			}
		})
	}
	// Rate settings come from the profile table.
	if r := newPlan(video(1920, 1080, 30), motion, false).rungs[0]; r.CRF != 21 || r.MaxrateKbps != 6000 {
		t.Errorf("motion 1080p = %+v", r)
	}
}

func TestPlanLadder(t *testing.T) {
	ladder := []Rung{
		{Name: "720p", Height: 720, CRF: 23, MaxrateKbps: 2500, BufsizeKbps: 5000},
		{Name: "360p", Height: 360, CRF: 26, MaxrateKbps: 700, BufsizeKbps: 1400},
	}
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

func TestValidateProfiles(t *testing.T) {
	if err := validateProfiles(DefaultProfiles()); err != nil {
		t.Fatal(err)
	}
	rung := Rung{Name: "x", Height: 360, CRF: 23, MaxrateKbps: 1, BufsizeKbps: 1}
	good := func() Profile {
		return Profile{Name: "lecture", Preset: "veryfast", MaxFrameRate: 30, Rungs: []Rung{rung}, Audio: []AudioRung{{Name: "audio", Kbps: 96}}}
	}
	bad := map[string]func(p *Profile){
		"no rungs":         func(p *Profile) { p.Rungs = nil },
		"no audio":         func(p *Profile) { p.Audio = nil },
		"reserved name":    func(p *Profile) { p.Rungs[0].Name = "thumbs" },
		"slash":            func(p *Profile) { p.Rungs[0].Name = "a/b" },
		"rung as audio":    func(p *Profile) { p.Rungs[0].Name = "audio" },
		"crf":              func(p *Profile) { p.Rungs[0].CRF = 60 },
		"maxrate":          func(p *Profile) { p.Rungs[0].MaxrateKbps = 0 },
		"preset":           func(p *Profile) { p.Preset = "warp" },
		"fps":              func(p *Profile) { p.MaxFrameRate = 0 },
		"audio kbps":       func(p *Profile) { p.Audio[0].Kbps = 4 },
		"audio prefix":     func(p *Profile) { p.Audio[0].Name = "sound" },
		"video as audio":   func(p *Profile) { p.Rungs[0].Name = "audio-hd" },
		"bad profile name": func(p *Profile) { p.Name = "Lecture" },
		// Params reach ffmpeg as one argument: nothing that could become another option or a path.
		"x264 params shape":  func(p *Profile) { p.X264Params = "subme=1 -y /etc/passwd" },
		"x264 params empty":  func(p *Profile) { p.X264Params = "subme=" },
		"x264 params colons": func(p *Profile) { p.X264Params = "subme=1::bframes=1" },
		"aac coder":          func(p *Profile) { p.AACCoder = "anmr" },
	}
	for name, mutate := range bad {
		p := good()
		p.Rungs = slices.Clone(p.Rungs)
		p.Audio = slices.Clone(p.Audio)
		mutate(&p)
		if err := validateProfiles([]Profile{p}); err == nil {
			t.Errorf("%s: no error", name)
		}
	}
	if err := validateProfiles([]Profile{{Name: "motion", Preset: "veryfast", MaxFrameRate: 30, Rungs: []Rung{rung}, Audio: []AudioRung{{Name: "audio", Kbps: 96}}}}); err == nil {
		t.Error("a table without the default profile was accepted")
	}
	if _, ok := FindProfile(DefaultProfiles(), "nope"); ok {
		t.Error("FindProfile found an unknown profile")
	}
}

func TestFFmpegArgs(t *testing.T) {
	lecture := lectureProfile(t)
	info := probe.Result{HasVideo: true, HasAudio: true, Width: 1280, Height: 720, FrameRate: 30000.0 / 1001, DurationSeconds: 60}
	got := strings.Join(ffmpegArgs("/tmp/src", newPlan(info, lecture, true)), " ")
	t.Logf("ffmpeg %s", got)
	for _, want := range []string{
		"-nostats -progress pipe:1 -filter_complex_threads",
		"-progress pipe:1 -filter_complex_threads 1 -i /tmp/src",
		// One conversion to 8-bit 4:2:0, then a cascade: each rung scaled from the one above it; the
		// 720p rung of a 720p source is the decoded picture itself.
		"-filter_complex [0:v:0]fps=29.97002997002997,format=yuv420p,split=3[ladder][chapters][still]" +
			";[ladder]split=2[v0][c0];[c0]scale=w=-2:h=480:flags=bicubic,split=2[v1][c1]" +
			";[c1]scale=w=-2:h=360:flags=bicubic,split=2[v2][c2];[c2]scale=w=-2:h=240:flags=bicubic[v3];",
		";[chapters]fps=2,scale=w=320:h=-2,select='eq(n,0)+gt(scene,0.12)',metadata=print:file=scenes.txt,format=yuvj420p[thumbs]",
		";[still]select='isnan(prev_selected_t)*gte(t,3.000)',scale=w=-2:h=720,format=yuvj420p[poster]",
		"-map [v0] -map [v1] -map [v2] -map [v3] -map 0:a:0",
		"-c:v libx264 -profile:v high -preset veryfast -x264-params subme=1:rc-lookahead=5:bframes=1:b-adapt=0 ",
		"-force_key_frames expr:gte(t,n_forced*2) -sc_threshold 0 -g 60 -keyint_min 60",
		"-crf:v:0 23 -maxrate:v:0 1500k -bufsize:v:0 3000k -crf:v:1 24 -maxrate:v:1 800k -bufsize:v:1 1600k",
		"-c:a aac -profile:a aac_low -aac_coder fast -ac 2 -ar 48000 -b:a:0 96k",
		"-f hls -hls_segment_type fmp4 -hls_time 6 -hls_playlist_type vod -hls_flags independent_segments",
		"-var_stream_map v:0,agroup:audio,name:720p v:1,agroup:audio,name:480p v:2,agroup:audio,name:360p v:3,agroup:audio,name:240p a:0,agroup:audio,name:audio %v/index.m3u8",
		"%v/index.m3u8 -map [thumbs] -c:v mjpeg -q:v 5 -fps_mode passthrough -f image2 -start_number 1 thumbs/%04d.jpg -map [poster] -c:v mjpeg -q:v 3 -f image2 -update 1 poster.jpg",
	} {
		if !strings.Contains(got, want) {
			t.Errorf("missing %q", want)
		}
	}
	if strings.Contains(got, "master_pl_name") || strings.Contains(got, "bwdif") {
		t.Error("ffmpeg's master playlist must not be requested; no deinterlacing of progressive input")
	}

	portraitInfo := info
	portraitInfo.Rotation = 90
	portrait := strings.Join(ffmpegArgs("s", newPlan(portraitInfo, lecture, false)), " ")
	if !strings.Contains(portrait, "format=yuv420p,split=2[ladder][still];[ladder]split=2[v0][c0];[c0]scale=w=480:h=-2:flags=bicubic,") ||
		strings.Contains(portrait, "[thumbs]") {
		t.Errorf("portrait without chapters: %s", portrait)
	}
	interlaced := info
	interlaced.Interlaced = true
	if a := strings.Join(ffmpegArgs("s", newPlan(interlaced, lecture, false)), " "); !strings.Contains(a, "[0:v:0]bwdif=mode=send_frame:deint=interlaced,fps=") {
		t.Errorf("interlaced: %s", a)
	}
	videoOnly := info
	videoOnly.HasAudio = false
	if a := strings.Join(ffmpegArgs("s", newPlan(videoOnly, lecture, false)), " "); strings.Contains(a, "agroup") || strings.Contains(a, "-c:a") {
		t.Errorf("video only: %s", a)
	}
	audioOnly := strings.Join(ffmpegArgs("s", newPlan(probe.Result{HasAudio: true, DurationSeconds: 60}, lecture, true)), " ")
	for _, want := range []string{
		"-filter_complex [0:a:0]atrim=end=120,aformat=channel_layouts=mono,showwavespic",
		"-map 0:a:0 -map 0:a:0 -c:a aac -profile:a aac_low -aac_coder fast -ac 2 -ar 48000 -b:a:0 96k -b:a:1 48k",
		"-var_stream_map a:0,name:audio a:1,name:audio-48k %v/index.m3u8 -map [poster]",
	} {
		if !strings.Contains(audioOnly, want) {
			t.Errorf("audio only: missing %q in %s", want, audioOnly)
		}
	}
	if strings.Contains(audioOnly, "-c:v libx264") {
		t.Errorf("audio only encodes video: %s", audioOnly)
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
		o := ObjectOptions(name)
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

// TestLadderCascade: which rungs are scaled, from what, and with which scaler.
func TestLadderCascade(t *testing.T) {
	lecture := lectureProfile(t)
	tests := []struct {
		name   string
		w, h   int
		scaler string
		want   string // the ladder part of the graph
	}{
		{"1080p source, zscale", 1920, 1080, ScalerZscale,
			";[ladder]split=2[v0][c0];[c0]zscale=w=-2:h=720:f=bicubic,split=2[v1][c1];[c1]zscale=w=-2:h=480:f=bicubic,split=2[v2][c2]" +
				";[c2]zscale=w=-2:h=360:f=bicubic,split=2[v3][c3];[c3]zscale=w=-2:h=240:f=bicubic[v4]"},
		{"4K source: the top rung is scaled too", 3840, 2160, ScalerSwscale,
			";[ladder]scale=w=-2:h=1080:flags=bicubic,split=2[v0][c0];[c0]scale=w=-2:h=720:flags=bicubic,split=2[v1][c1];"},
		// 721 lines: the rung is 720 (even), so the source must be scaled; so must an odd width.
		{"odd height", 1282, 721, ScalerSwscale, ";[ladder]scale=w=-2:h=720:flags=bicubic,split=2[v0][c0];"},
		{"odd width", 1281, 720, ScalerSwscale, ";[ladder]scale=w=-2:h=720:flags=bicubic,split=2[v0][c0];"},
		{"one rung, as it is", 320, 180, ScalerZscale, ";[ladder]null[v0];"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := newPlan(probe.Result{HasVideo: true, Width: tt.w, Height: tt.h, FrameRate: 30, DurationSeconds: 60}, lecture, true)
			p.scaler = tt.scaler
			graph, _ := filterGraph(p)
			if !strings.Contains(graph, tt.want) {
				t.Errorf("graph\n%s\nlacks\n%s", graph, tt.want)
			}
		})
	}
}
