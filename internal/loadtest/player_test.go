package loadtest

import (
	"math"
	"net/url"
	"testing"
	"time"
)

func TestEstimator(t *testing.T) {
	e := newEstimator(5e5)
	if e.get() != 5e5 || e.measured() {
		t.Fatalf("before any sample: %v (measured %v), want the default", e.get(), e.measured())
	}
	// One sample: the bias-corrected averages are the sample itself.
	e.sample(2, 1e6/8*2) // 1 Mb/s for 2 s
	if got := e.get(); math.Abs(got-1e6) > 1 {
		t.Fatalf("after one 1 Mb/s sample: %v", got)
	}
	// A faster sample raises the fast average more than the slow one; the estimate is the lower.
	e.sample(2, 4e6/8*2)
	fast, slow := e.fast.get(), e.slow.get()
	if !(fast > slow && e.get() == slow && slow > 1e6 && fast < 4e6) {
		t.Fatalf("fast %v slow %v estimate %v", fast, slow, e.get())
	}
	// A drop shows at once, through the fast average.
	e.sample(2, 2e5/8*2)
	if e.get() != e.fast.get() || e.get() > 2e6 {
		t.Fatalf("after a slow sample: fast %v slow %v estimate %v", e.fast.get(), e.slow.get(), e.get())
	}
}

func near(a, b float64) bool { return math.Abs(a-b) < 1e-9 }

func TestPickRung(t *testing.T) {
	bws := []int{200000, 800000, 3000000}
	for _, tc := range []struct {
		estimate float64
		want     int
	}{{0, 0}, {5e5, 0}, {999999, 0}, {1e6, 1}, {3.7e6, 1}, {3.75e6, 2}, {1e9, 2}} {
		if got := pickRung(bws, tc.estimate); got != tc.want {
			t.Errorf("estimate %v: rung %d, want %d", tc.estimate, got, tc.want)
		}
	}
}

func TestPlaybackClock(t *testing.T) {
	t0 := time.Unix(1000, 0)
	at := func(ms int) time.Time { return t0.Add(time.Duration(ms) * time.Millisecond) }
	p := playback{speed: 10, last: t0}
	p.advance(at(500)) // not started: nothing plays or stalls
	p.start(at(500), 0, 4)
	p.advance(at(800)) // 3 s of lecture played
	if !near(p.head, 3) || !near(p.played, 3) || p.rebuffers != 0 {
		t.Fatalf("after 300 ms at 10x: %+v", p)
	}
	p.advance(at(1000)) // 1 s left, 2 s elapsed: a stall of 1 s
	if !near(p.played, 4) || !near(p.stalled, 1) || p.rebuffers != 1 || !p.stalling {
		t.Fatalf("ran dry: %+v", p)
	}
	p.advance(at(1100)) // the same stall goes on
	if !near(p.stalled, 2) || p.rebuffers != 1 {
		t.Fatalf("still dry: %+v", p)
	}
	p.buffered(at(1100), 10)
	p.advance(at(1200))
	if !near(p.played, 5) || p.rebuffers != 1 || p.stalling {
		t.Fatalf("resumed: %+v", p)
	}
	p.seek(at(1200), 50)
	p.advance(at(2000)) // waiting for media after a seek is not a stall
	if !near(p.stalled, 2) || p.rebuffers != 1 || !near(p.played, 5) {
		t.Fatalf("seeking: %+v", p)
	}
	p.buffered(at(2000), 52) // the seek landed 4 s into a 6 s segment: 2 s to play
	p.advance(at(2100))
	if !near(p.head, 51) || !near(p.played, 6) || p.seekRebuffers != 0 {
		t.Fatalf("after the seek: %+v", p)
	}
	p.advance(at(2300)) // the next segment is late: a rebuffer right after the seek
	if p.rebuffers != 2 || p.seekRebuffers != 1 || !near(p.stalled, 3) {
		t.Fatalf("dry after the seek: %+v", p)
	}
	p.buffered(at(2300), 58)
	p.advance(at(3000)) // 6 s buffered, 7 s elapsed: an ordinary rebuffer, the seek is behind
	if p.rebuffers != 3 || p.seekRebuffers != 1 {
		t.Fatalf("later stall: %+v", p)
	}
}

func TestRelative(t *testing.T) {
	u := func(s string) *url.URL { v, _ := url.Parse(s); return v }
	for _, tc := range []struct{ from, to, want string }{
		{"http://e/s/T/hls/L/v1/720p/seg_00001.m4s", "http://e/s/T/hls/L/v1/720p/seg_00002.m4s", "seg_00002.m4s"},
		{"http://e/hls/L/v1/720p/seg_00001.m4s", "http://e/hls/L/v1/360p/seg_00002.m4s", "..%2F360p%2Fseg_00002.m4s"},
		{"http://e/hls/L/v1/master.m3u8", "http://e/hls/L/v1/720p/index.m3u8", "720p%2Findex.m3u8"},
	} {
		got := relative(u(tc.from), u(tc.to))
		if got != tc.want {
			t.Errorf("relative(%s, %s) = %q, want %q", tc.from, tc.to, got, tc.want)
		}
		// What an edge does with it: unescape and resolve against the request.
		ref, _ := url.PathUnescape(got)
		if r := u(tc.from).ResolveReference(u(ref)).String(); r != tc.to {
			t.Errorf("%q resolves to %s, want %s", got, r, tc.to)
		}
	}
}

func TestCMCDEncoding(t *testing.T) {
	c := cmcd{ot: "v", br: 800, tb: 3000, d: 2000, bl: 12345, mtp: 4321, nor: "seg_00002.m4s", startup: true}
	got := c.encode("sid-1", `L"1`)
	want := `bl=12300,br=800,cid="L\"1",d=2000,mtp=4300,nor="seg_00002.m4s",ot=v,sf=h,sid="sid-1",st=v,su,tb=3000`
	if got != want {
		t.Errorf("got  %s\nwant %s", got, want)
	}
	if got := (cmcd{ot: "m"}).encode("s", "L"); got != `cid="L",ot=m,sf=h,sid="s",st=v` {
		t.Errorf("playlist: %s", got)
	}
}

func TestArrivals(t *testing.T) {
	const n = 1000
	w := 30 * time.Second
	share := func(ts []time.Duration, before time.Duration) float64 {
		k := 0
		for _, t := range ts {
			if t < before {
				k++
			}
		}
		return float64(k) / float64(len(ts))
	}
	cs := arrivals(RampClassStart, w, n)
	lin := arrivals(RampLinear, w, n)
	inst := arrivals(RampInstant, w, n)
	for i := range n {
		if cs[i] < 0 || cs[i] >= w || lin[i] < 0 || lin[i] >= w || inst[i] != 0 {
			t.Fatalf("student %d joins at %v (class-start), %v (linear), %v (instant): outside the window", i, cs[i], lin[i], inst[i])
		}
		if i > 0 && (cs[i] < cs[i-1] || lin[i] < lin[i-1]) {
			t.Fatalf("arrivals not in order at %d", i)
		}
	}
	// Class start is front-loaded: most join in the first fifth (mean window/5: 1 - 1/e of them).
	if s := share(cs, w/5); s < 0.6 || s > 0.66 {
		t.Errorf("class-start: %.3f joined in the first 6 s, want about 0.63", s)
	}
	if s := share(cs, w/2); s < 0.9 {
		t.Errorf("class-start: %.3f joined in the first half", s)
	}
	if s := share(lin, w/5); math.Abs(s-0.2) > 0.01 {
		t.Errorf("linear: %.3f joined in the first fifth, want 0.2", s)
	}
	if last := cs[n-1]; last < w*9/10 {
		t.Errorf("class-start: the last student joins at %v, want near the end of the window", last)
	}
}

func TestPercentiles(t *testing.T) {
	var v []float64
	for i := 100; i >= 1; i-- {
		v = append(v, float64(i))
	}
	if got := percentiles(v); got != (Percentiles{P50: 50, P95: 95, P99: 99, Max: 100}) {
		t.Errorf("1..100: %+v", got)
	}
	if got := percentiles([]float64{7}); got != (Percentiles{7, 7, 7, 7}) {
		t.Errorf("one value: %+v", got)
	}
	if got := percentiles(nil); got != (Percentiles{}) {
		t.Errorf("none: %+v", got)
	}
}

func TestParseRegions(t *testing.T) {
	got, err := ParseRegions(" seoul:3, busan-ulsan ,jeju:0.5")
	if err != nil || len(got) != 3 || got[0] != (Weighted{"seoul", 3}) || got[1] != (Weighted{"busan-ulsan", 1}) || got[2] != (Weighted{"jeju", 0.5}) {
		t.Errorf("%v %v", got, err)
	}
	for _, bad := range []string{"seoul:0", "seoul:x", ":3", "/etc/regions.json", "Seoul:1", "-a:1"} {
		if _, err := ParseRegions(bad); err == nil {
			t.Errorf("%q accepted", bad)
		}
	}
}
