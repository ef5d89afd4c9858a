package plan

import (
	"math"
	"strings"
	"testing"
)

// base is a small deployment whose figures are easy to work out by hand; cases change what they test.
func base() Inputs {
	return Inputs{
		Students: 1000, Regions: 1,
		Rungs: []Rung{{Name: "only", Rate: 1e6, Share: 1}},
		NIC:   1e9, NICUsable: 1, EdgeCores: 1, CoreRequests: 1000,
		HitRatio: 0.9, SegmentSeconds: 2, Headroom: 0, RetentionDays: 1,
	}
}

func near(got, want float64) bool {
	return math.Abs(got-want) <= 1e-9*math.Max(1, math.Abs(want))
}

// TestCompute: every expected figure below was worked out by hand from the inputs, in the comment
// beside it, not with the package's formulas.
func TestCompute(t *testing.T) {
	type want struct {
		bitrate, egress, edgesNIC, edgesCPU float64
		bound                               string
		perRegion, edges                    int
		originEgress, originRPS             float64
		segmentBytes                        float64
		storagePerDay, storage              float64
		workers                             int
	}
	cases := []struct {
		name string
		in   func(*Inputs)
		want want
	}{
		{
			// 1000 x 1 Mb/s = 1 Gb/s = one 1 Gb/s edge; 1000 students / 2 s = 500 req/s against 1000/s;
			// 10% of 1 Gb/s and of 500 req/s reach the origin; a 2 s segment of 1 Mb/s is 250 kB.
			name: "one region, NIC-bound",
			in:   func(*Inputs) {},
			want: want{bitrate: 1e6, egress: 1e9, edgesNIC: 1, edgesCPU: 0.5, bound: "nic", perRegion: 1, edges: 1,
				originEgress: 1e8, originRPS: 50, segmentBytes: 250e3},
		},
		{
			// Half at 500 kb/s, half at 1.5 Mb/s: 1 Mb/s each, 12 Gb/s in all, 4 Gb/s per region against
			// 5 Gb/s usable (0.8 edge). Video + audio every 4 s: 0.5 req/s each, 4000 students per
			// region = 2000 req/s against 2 cores x 500 = 1000: 2 edges, x 1.5 headroom = 3 per region.
			// Origin: 1% of 12 Gb/s = 120 Mb/s, 1% of 6000 req/s = 60. Storage: 0.5 + 1.5 Mb/s minus
			// the audio counted twice (0.1) = 1.9 Mb/s = 855 MB an hour, x 10 hours = 8.55 GB a day,
			// x 30 days = 256.5 GB. Workers: 10 h/h / 2.5 = 4, x 1.5 = 6.
			name: "three regions, CPU-bound, storage and workers",
			in: func(in *Inputs) {
				in.Students, in.Regions = 12000, 3
				in.Rungs = []Rung{{"low", 500e3, 0.5}, {"high", 1.5e6, 0.5}}
				in.AudioRate, in.SeparateAudio = 100e3, true
				in.NIC, in.NICUsable = 10e9, 0.5
				in.EdgeCores, in.CoreRequests = 2, 500
				in.HitRatio, in.SegmentSeconds, in.Headroom = 0.99, 4, 0.5
				in.UploadHoursPerDay, in.RetentionDays = 10, 30
				in.UploadRate, in.TranscodeSpeed = 10, 2.5
			},
			want: want{bitrate: 1e6, egress: 12e9, edgesNIC: 0.8, edgesCPU: 2, bound: "cpu", perRegion: 3, edges: 9,
				originEgress: 120e6, originRPS: 60, segmentBytes: 250e3,
				storagePerDay: 8.55e9, storage: 256.5e9, workers: 6},
		},
		{
			// Exactly 4 edges of need with 25% headroom is 5 edges, not 6.
			name: "headroom on an exact count",
			in:   func(in *Inputs) { in.Students, in.Headroom = 4000, 0.25 },
			want: want{bitrate: 1e6, egress: 4e9, edgesNIC: 4, edgesCPU: 2, bound: "nic", perRegion: 5, edges: 5,
				originEgress: 4e8, originRPS: 200, segmentBytes: 250e3},
		},
		{
			// 1001 students need 1.001 edges: a second edge. The source (7 Mb/s) is stored beside the
			// 1 Mb/s rung: 8 Mb/s = 3.6 GB an hour, 2 hours a day, kept a day.
			name: "a little over one edge, source kept",
			in: func(in *Inputs) {
				in.Students, in.SourceRate, in.UploadHoursPerDay = 1001, 7e6, 2
			},
			want: want{bitrate: 1e6, egress: 1.001e9, edgesNIC: 1.001, edgesCPU: 0.5005, bound: "nic", perRegion: 2, edges: 2,
				originEgress: 1.001e8, originRPS: 50.05, segmentBytes: 250e3, storagePerDay: 7.2e9, storage: 7.2e9},
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			in := base()
			tc.in(&in)
			r, err := Compute(in)
			if err != nil {
				t.Fatal(err)
			}
			w := tc.want
			checks := []struct {
				name      string
				got, want float64
			}{
				{"bitrate", r.BitratePerStudent, w.bitrate},
				{"egress", r.TotalEgress, w.egress},
				{"edges NIC", r.EdgesNIC, w.edgesNIC},
				{"edges CPU", r.EdgesCPU, w.edgesCPU},
				{"origin egress", r.OriginEgress, w.originEgress},
				{"origin requests", r.OriginRequests, w.originRPS},
				{"segment bytes", r.SegmentBytes, w.segmentBytes},
				{"storage per day", r.StoragePerDay, w.storagePerDay},
				{"storage", r.Storage, w.storage},
			}
			for _, c := range checks {
				if !near(c.got, c.want) {
					t.Errorf("%s = %v, want %v", c.name, c.got, c.want)
				}
			}
			if r.Bound != w.bound || r.EdgesPerRegion != w.perRegion || r.TotalEdges != w.edges || r.Workers != w.workers {
				t.Errorf("bound %s, %d per region, %d edges, %d workers; want %s, %d, %d, %d",
					r.Bound, r.EdgesPerRegion, r.TotalEdges, r.Workers, w.bound, w.perRegion, w.edges, w.workers)
			}
		})
	}
}

// TestFleet: what a given number of edges supports.
func TestFleet(t *testing.T) {
	// 10 edges x 1 Gb/s / 1.25 = 8 Gb/s for 1000 students: 8 Mb/s each. Requests: 10 x 1000 / 1.25 =
	// 8000/s against 1000 x 0.5 = 500/s.
	in := base()
	in.Edges, in.Headroom = 10, 0.25
	r, err := Compute(in)
	if err != nil {
		t.Fatal(err)
	}
	if r.Fleet == nil || !near(r.Fleet.Egress, 8e9) || !near(r.Fleet.BitratePerStudent, 8e6) || !near(r.Fleet.Requests, 8000) || !r.Fleet.RequestsEnough {
		t.Errorf("fleet = %+v", r.Fleet)
	}
	// The plan needs 1 edge here (1000 x 1 Mb/s on one 1 Gb/s edge, 1.25 rounds up to 2): 8 spare.
	if !hasLine(r, "fleet against the plan", "8 spare") {
		t.Errorf("fleet against the plan: %+v", r.Lines)
	}
	// 1 edge of 1 core at 100 hits/s cannot take 1000 students at 0.5 req/s.
	in.Edges, in.CoreRequests, in.Headroom = 1, 100, 0
	r, err = Compute(in)
	if err != nil {
		t.Fatal(err)
	}
	if r.Fleet.RequestsEnough || !near(r.Fleet.Requests, 100) {
		t.Errorf("fleet = %+v, want 100 req/s, not enough", r.Fleet)
	}
	// 500 req/s on 100 per edge needs 5 edges: the one edge is 4 short.
	if !hasLine(r, "fleet against the plan", "4 short") {
		t.Errorf("fleet against the plan: %+v", r.Lines)
	}
	if !hasLine(r, "fleet requests", "NOT enough") {
		t.Errorf("the table does not say the fleet is short: %+v", r.Lines)
	}
	in.Edges = 0
	if r, _ := Compute(in); r.Fleet != nil {
		t.Errorf("no --edges, fleet %+v", r.Fleet)
	}
}

func hasLine(r Result, name, value string) bool {
	for _, l := range r.Lines {
		if l.Name == name && strings.Contains(l.Value, value) {
			return true
		}
	}
	return false
}

// TestLinesShowArithmetic: each line's formula carries the numbers it was computed from.
func TestLinesShowArithmetic(t *testing.T) {
	in := base()
	in.Students, in.Regions = 3000000, 12
	in.Rungs = []Rung{{"720p", 345e3, 0.4}, {"480p", 232e3, 0.6}}
	in.NIC, in.NICUsable = 10e9, 0.8
	r, err := Compute(in)
	if err != nil {
		t.Fatal(err)
	}
	want := map[string][]string{
		// 0.4 x 345 + 0.6 x 232 = 138 + 139.2 = 277.2 kb/s
		"bitrate per student": {"40% × 345 kb/s", "60% × 232 kb/s", "277 kb/s"},
		// 3 000 000 x 277.2 kb/s = 831.6 Gb/s
		"total egress":           {"3 000 000 × 277 kb/s", "832 Gb/s"},
		"usable egress per edge": {"10 Gb/s × 80%", "8 Gb/s"},
	}
	for name, parts := range want {
		var line string
		for _, l := range r.Lines {
			if l.Name == name {
				line = l.Formula + " = " + l.Value
			}
		}
		for _, p := range parts {
			if !strings.Contains(line, p) {
				t.Errorf("%s: %q does not show %q", name, line, p)
			}
		}
	}
}

func TestValidate(t *testing.T) {
	cases := []struct {
		name     string
		in       func(*Inputs)
		mentions string
	}{
		{"no students", func(in *Inputs) { in.Students = 0 }, "--students"},
		{"no regions", func(in *Inputs) { in.Regions = 0 }, "--regions"},
		{"no ladder", func(in *Inputs) { in.Rungs = nil }, "--ladder"},
		{"shares short of 100%", func(in *Inputs) { in.Rungs = []Rung{{"a", 1e6, 0.5}} }, "100%"},
		{"audio above a rung", func(in *Inputs) { in.AudioRate = 2e6 }, "--audio"},
		{"hit ratio 100%", func(in *Inputs) { in.HitRatio = 1 }, "--hit-ratio"},
		{"no cores", func(in *Inputs) { in.EdgeCores = 0 }, "--edge-cores"},
		{"upload rate without speed", func(in *Inputs) { in.UploadRate, in.TranscodeSpeed = 5, 0 }, "--transcode-speed"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			in := base()
			tc.in(&in)
			_, err := Compute(in)
			if err == nil || !strings.Contains(err.Error(), tc.mentions) {
				t.Fatalf("err = %v, want one mentioning %q", err, tc.mentions)
			}
		})
	}
}

func TestFormat(t *testing.T) {
	cases := []struct{ got, want string }{
		{Rate(296.4e3), "296 kb/s"},
		{Rate(8e9), "8 Gb/s"},
		{Rate(1.19e12), "1.19 Tb/s"},
		{Rate(999), "999 b/s"},
		{Bytes(2.72e9), "2.72 GB"},
		{Bytes(111e3), "111 kB"},
		{Percent(0.995), "99.5%"},
		{Percent(0.01), "1%"},
		{Count(3000000), "3 000 000"},
		{Count(83333.33), "83 333"},
		{Count(12), "12"},
		{Num(1.0875), "1.09"},
		{Num(0.3333), "0.333"},
	}
	for _, c := range cases {
		if c.got != c.want {
			t.Errorf("got %q, want %q", c.got, c.want)
		}
	}
}
