package main

import (
	"context"
	"encoding/json"
	"math"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/lectern/lectern/internal/hls"
)

// planJSON is the part of `lectern plan --json` the tests read.
type planJSON struct {
	BitratePerStudent float64 `json:"bitrate_per_student_bps"`
	EdgesPerRegion    int     `json:"edges_per_region"`
	Edges             int     `json:"edges"`
	Bound             string  `json:"bound"`
	OriginEgress      float64 `json:"origin_egress_bps"`
	Storage           float64 `json:"storage_bytes"`
	Workers           int     `json:"transcode_workers"`
	Inputs            struct {
		SeparateAudio bool `json:"separate_audio"`
		Rungs         []struct {
			Name  string  `json:"name"`
			Rate  float64 `json:"rate_bps"`
			Share float64 `json:"share"`
		} `json:"rungs"`
	} `json:"inputs"`
	Fleet *struct {
		BitratePerStudent float64 `json:"bitrate_per_student_bps"`
	} `json:"fleet"`
	Lines []struct{ Name, Formula, Value string } `json:"lines"`
}

func runPlanJSON(t *testing.T, args ...string) planJSON {
	t.Helper()
	stdout, stderr, code := runLectern(t, t.TempDir(), append([]string{"plan", "--json"}, args...)...)
	if code != 0 {
		t.Fatalf("plan %v: exit %d\n%s", args, code, stderr)
	}
	var p planJSON
	if err := json.Unmarshal([]byte(stdout), &p); err != nil {
		t.Fatalf("--json output: %v\n%s", err, stdout)
	}
	return p
}

func approx(a, b float64) bool { return math.Abs(a-b) <= 1e-6*math.Max(1, math.Abs(b)) }

// TestPlanCommand: flags in, the plan out as JSON and as a table with its arithmetic.
func TestPlanCommand(t *testing.T) {
	// 24 000 students in 2 regions at (0.25 x 2 + 0.75 x 1) = 1.25 Mb/s: 15 Gb/s per region. Edges of
	// 10 Gb/s at 50% fill 5 Gb/s: 3 per region, x 1.2 headroom = 3.6, so 4 (8 in all). Origin: 2% of
	// 30 Gb/s = 600 Mb/s. Storage: 2 + 1 Mb/s = 3 Mb/s = 1.35 GB an hour, x 100 h a day x 10 days =
	// 1.35 TB. Workers: 30 h/h / 3 = 10, x 1.2 = 12. A fleet of 10 edges: 10 x 5 Gb/s / 1.2 / 24 000.
	args := []string{"--students", "24000", "--regions", "2", "--ladder", "hd:2Mb/s:25%,sd:1Mb/s:75%",
		"--nic", "10Gb/s", "--nic-usable", "50%", "--headroom", "20%", "--hit-ratio", "98%",
		"--upload-hours", "100", "--retention", "10", "--upload-rate", "30", "--transcode-speed", "3", "--edges", "10"}
	p := runPlanJSON(t, args...)
	if !approx(p.BitratePerStudent, 1.25e6) || p.EdgesPerRegion != 4 || p.Edges != 8 || p.Bound != "nic" ||
		!approx(p.OriginEgress, 600e6) || !approx(p.Storage, 1.35e12) || p.Workers != 12 {
		t.Errorf("plan = %+v", p)
	}
	if p.Fleet == nil || !approx(p.Fleet.BitratePerStudent, 10*5e9/1.2/24000) {
		t.Errorf("fleet = %+v", p.Fleet)
	}
	if p.Inputs.SeparateAudio {
		t.Error("no --audio, yet separate audio")
	}

	// The table shows the same figures with the numbers that made them.
	stdout, stderr, code := runLectern(t, t.TempDir(), append([]string{"plan"}, args...)...)
	if code != 0 {
		t.Fatalf("exit %d\n%s", code, stderr)
	}
	t.Logf("table:\n%s", stdout)
	for _, want := range []string{
		"25% × 2 Mb/s + 75% × 1 Mb/s = 1.25 Mb/s",
		"24 000 × 1.25 Mb/s = 30 Gb/s",
		"10 Gb/s × 50% = 5 Gb/s",
		"× (1 + headroom 20%)⌉, NIC-bound = 4",
		"2 × 15 Gb/s × 2% = 600 Mb/s",
		"⌈30 h/h / 3 × 1.2⌉ = 12",
	} {
		if !strings.Contains(stdout, want) {
			t.Errorf("table lacks %q", want)
		}
	}
	if n := strings.Count(stdout, "\n"); n != len(p.Lines) {
		t.Errorf("%d table lines, %d in the JSON", n, len(p.Lines))
	}

}

// TestPlanEnvironment: like every flag, --students can come from LECTERN_STUDENTS; the command line wins.
func TestPlanEnvironment(t *testing.T) {
	run := func(args ...string) planJSON {
		t.Helper()
		cmd := exec.Command(lecternBin, append([]string{"plan", "--json", "--ladder", "x:1Mb/s:100%"}, args...)...)
		cmd.Env = append(os.Environ(), "LECTERN_STUDENTS=4000", "LECTERN_NIC=1Gb/s", "LECTERN_NIC_USABLE=100%")
		out, err := cmd.Output()
		if err != nil {
			t.Fatalf("plan %v: %v", args, err)
		}
		var p planJSON
		if err := json.Unmarshal(out, &p); err != nil {
			t.Fatal(err)
		}
		return p
	}
	// 4000 x 1 Mb/s on 1 Gb/s edges: 4, x 1.25 = 5; 2000 students: 2, x 1.25 = 2.5, so 3.
	if p := run(); p.Edges != 5 {
		t.Errorf("from the environment: %d edges, want 5", p.Edges)
	}
	if p := run("--students", "2000"); p.Edges != 3 {
		t.Errorf("flag over environment: %d edges, want 3", p.Edges)
	}
}

// TestPlanMasterURL: the rung rates come from a published master fetched over HTTP, the shares from --mix.
func TestPlanMasterURL(t *testing.T) {
	master, err := hls.WriteMaster(hls.Master{
		IndependentSegments: true,
		Audio:               []hls.AudioRendition{{GroupID: "audio", Name: "Audio", URI: "audio/index.m3u8", Default: true}},
		Variants: []hls.Variant{
			{URI: "720p/index.m3u8", Bandwidth: 700000, AverageBandwidth: 345000, Codecs: "avc1.64001f,mp4a.40.2", Width: 1280, Height: 720, Audio: "audio"},
			{URI: "360p/index.m3u8", Bandwidth: 300000, AverageBandwidth: 181000, Codecs: "avc1.64001e,mp4a.40.2", Width: 640, Height: 360, Audio: "audio"},
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/tok/lec/v1/master.m3u8" {
			http.NotFound(w, r)
			return
		}
		w.Header().Set("Content-Type", "application/vnd.apple.mpegurl")
		_, _ = w.Write(master)
	}))
	defer srv.Close()

	// 0.4 x 345 + 0.6 x 181 = 138 + 108.6 = 246.6 kb/s; two requests (video + audio) every 6 s.
	p := runPlanJSON(t, "--students", "1000", "--master", srv.URL+"/tok/lec/v1/master.m3u8", "--mix", "720p:40%,360p:60%")
	if !approx(p.BitratePerStudent, 246600) || !p.Inputs.SeparateAudio || len(p.Inputs.Rungs) != 2 ||
		p.Inputs.Rungs[0].Name != "720p" || p.Inputs.Rungs[0].Rate != 345000 {
		t.Errorf("plan from master = %+v", p)
	}

	_, stderr, code := runLectern(t, t.TempDir(), "plan", "--students", "1000", "--master", srv.URL+"/missing.m3u8", "--mix", "720p:100%")
	if code != 1 || !strings.Contains(stderr, "--master") || !strings.Contains(stderr, "404") {
		t.Errorf("missing master: exit %d, %q", code, stderr)
	}
}

// TestPlanFromTranscodedMaster: a master the transcode pipeline wrote is read as it is published.
func TestPlanFromTranscodedMaster(t *testing.T) {
	if testing.Short() {
		t.Skip("runs ffmpeg")
	}
	work := t.TempDir()
	if err := generateClip(context.Background(), "ffmpeg", filepath.Join(work, "clip.mp4"), 4*time.Second); err != nil {
		t.Fatal(err)
	}
	if _, stderr, code := runLectern(t, work, "transcode", "--quiet", "--chapters=false", "clip.mp4", "out"); code != 0 {
		t.Fatalf("transcode: exit %d\n%s", code, stderr)
	}
	m := parseMasterFile(t, filepath.Join(work, "out", "master.m3u8"))
	rate := map[string]float64{}
	for _, v := range m.Variants {
		rate[strings.TrimSuffix(v.URI, "/index.m3u8")] = float64(v.AverageBandwidth)
	}
	if rate["720p"] == 0 || rate["240p"] == 0 {
		t.Fatalf("transcode wrote %v", rate)
	}
	p := runPlanJSON(t, "--students", "100", "--master", filepath.Join(work, "out", "master.m3u8"), "--mix", "720p:50%,240p:50%")
	if want := 0.5*rate["720p"] + 0.5*rate["240p"]; !approx(p.BitratePerStudent, want) {
		t.Errorf("bitrate %v, want %v from the master's AVERAGE-BANDWIDTH %v", p.BitratePerStudent, want, rate)
	}
	if !p.Inputs.SeparateAudio || len(p.Inputs.Rungs) != len(m.Variants) {
		t.Errorf("rungs %+v, separate audio %v", p.Inputs.Rungs, p.Inputs.SeparateAudio)
	}
}

// TestPlanBadInput: each mistake is one line that names the flag and shows what to write; exit 1.
func TestPlanBadInput(t *testing.T) {
	dir := t.TempDir()
	media := filepath.Join(dir, "index.m3u8")
	if err := os.WriteFile(media, []byte("#EXTM3U\n#EXT-X-TARGETDURATION:6\n#EXTINF:6.0,\nseg_00001.m4s\n#EXT-X-ENDLIST\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	ladder := []string{"--ladder", "720p:1.2Mb/s:100%"}
	cases := []struct {
		name     string
		args     []string
		mentions []string
	}{
		{"no students", ladder, []string{"--students", "e.g."}},
		{"students not a number", append([]string{"--students", "lots"}, ladder...), []string{"--students", `"lots"`, "whole number"}},
		{"no ladder", []string{"--students", "10"}, []string{"--ladder", "--master"}},
		{"both ladders", append([]string{"--students", "10", "--master", media, "--mix", "a:100%"}, ladder...), []string{"--ladder or --master"}},
		{"rung without share", []string{"--students", "10", "--ladder", "720p:1.2Mb/s"}, []string{"--ladder", "NAME:RATE:SHARE", "e.g."}},
		{"bad rate", []string{"--students", "10", "--ladder", "720p:fast:100%"}, []string{"--ladder", "e.g. 2.8Mb/s"}},
		{"shares short", []string{"--students", "10", "--ladder", "720p:1Mb/s:40%,480p:500kb/s:40%"}, []string{"--ladder", "80%", "100%"}},
		{"bad nic", append([]string{"--students", "10", "--nic", "10GB"}, ladder...), []string{"--nic", "10Gb/s"}},
		{"nic usable above 100%", append([]string{"--students", "10", "--nic-usable", "120%"}, ladder...), []string{"--nic-usable", "80%"}},
		{"hit ratio 100%", append([]string{"--students", "10", "--hit-ratio", "100%"}, ladder...), []string{"--hit-ratio", "below 100%"}},
		{"bad segment", append([]string{"--students", "10", "--segment", "soon"}, ladder...), []string{"--segment", "6s"}},
		{"audio above the rung", append([]string{"--students", "10", "--audio", "2Mb/s"}, ladder...), []string{"--audio"}},
		{"master without mix", []string{"--students", "10", "--master", media}, []string{"--mix", "e.g."}},
		{"mix without master", append([]string{"--students", "10", "--mix", "720p:100%"}, ladder...), []string{"--mix", "--master"}},
		{"master is a media playlist", []string{"--students", "10", "--master", media, "--mix", "720p:100%"}, []string{"--master", "master playlist"}},
		{"master missing", []string{"--students", "10", "--master", filepath.Join(dir, "none.m3u8"), "--mix", "720p:100%"}, []string{"--master", "no such file"}},
		{"stray argument", append([]string{"--students", "10", "seoul"}, ladder...), []string{`"seoul"`, "flag"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			stdout, stderr, code := runLectern(t, dir, append([]string{"plan"}, tc.args...)...)
			out := strings.TrimSpace(stderr)
			if code != 1 || stdout != "" {
				t.Fatalf("exit %d, want 1; stdout %q, stderr %q", code, stdout, out)
			}
			if n := strings.Count(out, "\n"); n != 0 {
				t.Errorf("want one line, got %d:\n%s", n+1, out)
			}
			if !strings.HasPrefix(out, "lectern plan: ") {
				t.Errorf("%q does not start with the command", out)
			}
			for _, m := range tc.mentions {
				if !strings.Contains(out, m) {
					t.Errorf("%q does not mention %q", out, m)
				}
			}
		})
	}
}
