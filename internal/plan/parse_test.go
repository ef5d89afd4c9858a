package plan

import (
	"os"
	"strings"
	"testing"
)

func TestParseRate(t *testing.T) {
	good := map[string]float64{
		"2.8Mb/s": 2.8e6, "448kb/s": 448e3, "10Gb/s": 10e9, "10 Gbps": 10e9, "1Tb/s": 1e12,
		"2800000": 2.8e6, "96 Kbps": 96e3, "500b/s": 500,
	}
	for s, want := range good {
		got, err := ParseRate(s)
		if err != nil || !near(got, want) {
			t.Errorf("ParseRate(%q) = %v, %v; want %v", s, got, err, want)
		}
	}
	for _, s := range []string{"", "fast", "-1Mb/s", "0", "2.8MB", "Mb/s", "Inf"} {
		if _, err := ParseRate(s); err == nil || !strings.Contains(err.Error(), "e.g.") {
			t.Errorf("ParseRate(%q) = %v, want an error with an example", s, err)
		}
	}
}

func TestParseFraction(t *testing.T) {
	good := map[string]float64{"40%": 0.4, "0.4": 0.4, "99.5%": 0.995, "0": 0, "100%": 1, " 25 % ": 0.25}
	for s, want := range good {
		got, err := ParseFraction(s)
		if err != nil || !near(got, want) {
			t.Errorf("ParseFraction(%q) = %v, %v; want %v", s, got, err, want)
		}
	}
	for _, s := range []string{"", "half", "120%", "-5%", "1.5", "NaN"} {
		if _, err := ParseFraction(s); err == nil {
			t.Errorf("ParseFraction(%q) accepted", s)
		}
	}
}

func TestParseLadder(t *testing.T) {
	rungs, err := ParseLadder("1080p:2.1Mb/s:10%, 720p:1.2Mb/s:40%,480p:700kb/s:0.5")
	if err != nil {
		t.Fatal(err)
	}
	want := []Rung{{"1080p", 2.1e6, 0.1}, {"720p", 1.2e6, 0.4}, {"480p", 700e3, 0.5}}
	if len(rungs) != len(want) {
		t.Fatalf("rungs = %+v", rungs)
	}
	for i, r := range rungs {
		if r.Name != want[i].Name || !near(r.Rate, want[i].Rate) || !near(r.Share, want[i].Share) {
			t.Errorf("rung %d = %+v, want %+v", i, r, want[i])
		}
	}
	// Shares written with rounding still add up.
	if _, err := ParseLadder("a:1Mb/s:33.3%,b:1Mb/s:33.3%,c:1Mb/s:33.3%"); err != nil {
		t.Errorf("33.3%% three times: %v", err)
	}
	bad := map[string]string{
		"720p:1.2Mb/s":                   "NAME:RATE:SHARE",
		"720p:fast:40%":                  "bit rate",
		"720p:1.2Mb/s:lots":              "fraction",
		"720p:1.2Mb/s:40%":               "100%",
		"a:1Mb/s:50%,a:2Mb/s:50%":        "twice",
		":1Mb/s:100%":                    "NAME:RATE:SHARE",
		"a:1Mb/s:60%,b:1Mb/s:60%":        "120%",
		"a:1Mb/s:100%,,b:1Mb/s:0%":       "NAME:RATE:SHARE",
		"1080p:2.1Mb/s:10%;720p:1Mb/s:9": "NAME:RATE:SHARE",
	}
	for s, mentions := range bad {
		_, err := ParseLadder(s)
		if err == nil || !strings.Contains(err.Error(), mentions) {
			t.Errorf("ParseLadder(%q) = %v, want an error mentioning %q", s, err, mentions)
		}
	}
}

// lectureMaster is a master as the transcode worker writes it (hls.WriteMaster: version 7, one shared
// audio rendition, AVERAGE-BANDWIDTH measured on the segments, audio included), with the average
// rates of the benchmark lecture (docs/benchmarks.md: video + 98 kb/s audio).
const lectureMaster = `#EXTM3U
#EXT-X-VERSION:7
#EXT-X-INDEPENDENT-SEGMENTS
#EXT-X-MEDIA:TYPE=AUDIO,GROUP-ID="audio",NAME="Audio",DEFAULT=YES,AUTOSELECT=YES,URI="audio/index.m3u8"
#EXT-X-STREAM-INF:BANDWIDTH=1190000,AVERAGE-BANDWIDTH=546000,CODECS="avc1.640028,mp4a.40.2",RESOLUTION=1920x1080,AUDIO="audio",FRAME-RATE=30.000
1080p/index.m3u8
#EXT-X-STREAM-INF:BANDWIDTH=700000,AVERAGE-BANDWIDTH=345000,CODECS="avc1.64001f,mp4a.40.2",RESOLUTION=1280x720,AUDIO="audio",FRAME-RATE=30.000
720p/index.m3u8
#EXT-X-STREAM-INF:BANDWIDTH=420000,AVERAGE-BANDWIDTH=232000,CODECS="avc1.64001e,mp4a.40.2",RESOLUTION=854x480,AUDIO="audio",FRAME-RATE=30.000
480p/index.m3u8
`

func TestLadderFromMaster(t *testing.T) {
	ml, err := LadderFromMaster([]byte(lectureMaster), map[string]float64{"1080p": 0.2, "720p": 0.5, "480p": 0.3})
	if err != nil {
		t.Fatal(err)
	}
	want := []Rung{{"1080p", 546e3, 0.2}, {"720p", 345e3, 0.5}, {"480p", 232e3, 0.3}}
	for i, r := range ml.Rungs {
		if r != want[i] {
			t.Errorf("rung %d = %+v, want %+v", i, r, want[i])
		}
	}
	if !ml.SeparateAudio || ml.Peak {
		t.Errorf("separate audio %v, peak %v; want true, false", ml.SeparateAudio, ml.Peak)
	}

	// A rung the mix leaves out gets no students; the others must still make 100%.
	ml, err = LadderFromMaster([]byte(lectureMaster), map[string]float64{"720p": 1})
	if err != nil || ml.Rungs[0].Share != 0 || ml.Rungs[1].Share != 1 {
		t.Errorf("720p only: %+v, %v", ml, err)
	}

	for _, tc := range []struct {
		mix      map[string]float64
		mentions string
	}{
		{map[string]float64{"4k": 1}, "1080p, 720p, 480p"},
		{map[string]float64{"720p": 0.5}, "100%"},
	} {
		if _, err := LadderFromMaster([]byte(lectureMaster), tc.mix); err == nil || !strings.Contains(err.Error(), tc.mentions) {
			t.Errorf("mix %v: err %v, want one mentioning %q", tc.mix, err, tc.mentions)
		}
	}
	// A media playlist is not a master.
	media := "#EXTM3U\n#EXT-X-VERSION:7\n#EXT-X-TARGETDURATION:6\n#EXTINF:6.0,\nseg_00001.m4s\n#EXT-X-ENDLIST\n"
	if _, err := LadderFromMaster([]byte(media), map[string]float64{"x": 1}); err == nil || !strings.Contains(err.Error(), "master") {
		t.Errorf("media playlist: %v", err)
	}
}

// TestLadderFromFFmpegMaster: ffmpeg's own master (no AVERAGE-BANDWIDTH, an audio-only variant) gives
// its peak rates and says so.
func TestLadderFromFFmpegMaster(t *testing.T) {
	data, err := os.ReadFile("../hls/testdata/ffmpeg51_master.m3u8")
	if err != nil {
		t.Fatal(err)
	}
	ml, err := LadderFromMaster(data, map[string]float64{"720p": 0.25, "360p": 0.75})
	if err != nil {
		t.Fatal(err)
	}
	if !ml.Peak || !ml.SeparateAudio || len(ml.Rungs) != 3 {
		t.Fatalf("ladder %+v", ml)
	}
	if ml.Rungs[0] != (Rung{"720p", 3440800, 0.25}) || ml.Rungs[1] != (Rung{"360p", 1020800, 0.75}) || ml.Rungs[2] != (Rung{"audio", 140800, 0}) {
		t.Errorf("rungs %+v", ml.Rungs)
	}
}
