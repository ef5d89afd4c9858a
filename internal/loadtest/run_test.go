package loadtest

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"path"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/lectern/lectern/internal/playtoken"
)

var ladder = []int{200000, 800000, 3000000}

// TestABRFollowsBandwidth: a student starts on the rung the default estimate allows, then moves to
// the highest rung its measured bandwidth allows, and stays there; each rung's playlist is fetched
// once.
func TestABRFollowsBandwidth(t *testing.T) {
	for _, tc := range []struct {
		bandwidth float64
		rungs     map[string]int64
		switches  int64
	}{
		{3e5, map[string]int64{"200000": 10}, 0},
		{2e6, map[string]int64{"200000": 1, "800000": 9}, 1},
		{2e7, map[string]int64{"200000": 1, "3000000": 9}, 1},
	} {
		t.Run(fmt.Sprint(tc.bandwidth), func(t *testing.T) {
			cdn := newFakeCDN(t, ladder, 2, 10, nil)
			cfg := testConfig(cdn.srv.URL)
			cfg.Bandwidth, cfg.Speed = tc.bandwidth, 10
			rep := run(t, cfg)
			if rep.Finished != 1 || rep.ErrorTotal != 0 || rep.Switches != tc.switches || fmt.Sprint(rep.Rungs) != fmt.Sprint(tc.rungs) {
				t.Fatalf("bandwidth %v: finished %d, errors %v, switches %d, rungs %v; want rungs %v, %d switches",
					tc.bandwidth, rep.Finished, rep.Errors, rep.Switches, rep.Rungs, tc.rungs, tc.switches)
			}
			// The server saw the same: the first video segment on the lowest rung, the others on
			// the chosen one, and each playlist once.
			playlists := map[string]int{}
			var video []string
			for _, h := range cdn.requests() {
				if strings.HasSuffix(h.path, ".m3u8") {
					playlists[h.path]++
				}
				if h.cmcd["ot"] == "v" {
					video = append(video, path.Base(path.Dir(h.path)))
				}
			}
			for p, n := range playlists {
				if n != 1 {
					t.Errorf("%s fetched %d times", p, n)
				}
			}
			if len(video) != 10 || video[0] != "200k" {
				t.Errorf("video segments by rung, in order: %v", video)
			}
		})
	}
}

// TestPacing: a download takes as long as the student's bandwidth times the speed-up says, and no
// less; without the limit the same body comes at loopback speed.
func TestPacing(t *testing.T) {
	body := make([]byte, 400_000)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.Write(body) }))
	defer srv.Close()
	cfg, err := testConfig(srv.URL).withDefaults()
	if err != nil {
		t.Fatal(err)
	}
	cfg.Speed = 2
	client, tr := newClient(1)
	defer tr.CloseIdleConnections()
	r := &runner{cfg: cfg, client: client}
	u, _ := url.Parse(srv.URL + "/x")
	for _, tc := range []struct {
		bandwidth, min, max float64
	}{
		{8e6, 0.2 * 0.98, 0.2 * 1.5}, // 3.2 Mbit at 16 Mb/s of wall time: 200 ms
		{4e6, 0.4 * 0.98, 0.4 * 1.5},
		{1e12, 0, 0.05},
	} {
		s := r.newStudent(0)
		s.bandwidth = tc.bandwidth
		f, err := s.fetch(context.Background(), u, cmcd{ot: "v"}, false)
		if err != nil || f.n != int64(len(body)) {
			t.Fatalf("fetch: %v, %d bytes", err, f.n)
		}
		if f.took < tc.min || f.took > tc.max {
			t.Errorf("bandwidth %v at 2x: %d bytes in %.3f s (%.1f Mb/s), want %.3f to %.3f s",
				tc.bandwidth, f.n, f.took, float64(f.n)*8/f.took/1e6, tc.min, tc.max)
		}
	}
}

// TestSlowServerRebuffers: segments that take longer to come than they last stall playback, each
// stall counted once and its length in lecture time; a server fast enough causes none.
func TestSlowServerRebuffers(t *testing.T) {
	for _, tc := range []struct {
		delay            time.Duration
		minStalls        int64
		minRatio, maxRat float64
	}{
		// At 20x a 2 s segment plays in 100 ms: 150 ms per segment stalls about 1 s in 3.
		{150 * time.Millisecond, 5, 0.15, 0.5},
		{10 * time.Millisecond, 0, 0, 0},
	} {
		cdn := newFakeCDN(t, ladder[:1], 2, 10, func(w http.ResponseWriter, r *http.Request) bool {
			if strings.HasSuffix(r.URL.Path, ".m4s") && !strings.Contains(r.URL.Path, "/audio/") {
				time.Sleep(tc.delay)
			}
			return false
		})
		rep := run(t, testConfig(cdn.srv.URL))
		if rep.Finished != 1 || rep.ErrorTotal != 0 || rep.Rebuffers < tc.minStalls || (tc.minStalls == 0 && rep.Rebuffers != 0) ||
			rep.RebufferRatio < tc.minRatio || rep.RebufferRatio > tc.maxRat {
			t.Errorf("segments %v late: finished %d, errors %d, %d rebuffers, %.2f s stalled over %.2f s played (ratio %.3f)",
				tc.delay, rep.Finished, rep.ErrorTotal, rep.Rebuffers, rep.RebufferSeconds, rep.PlayedSeconds, rep.RebufferRatio)
		}
		if rep.PlayedSeconds < 19.9 || rep.PlayedSeconds > 20.1 {
			t.Errorf("played %.2f s of a 20 s lecture", rep.PlayedSeconds)
		}
		if tc.minStalls > 0 && f6(rep.RebufferSeconds) != f6(rep.RebufferRatio*(rep.PlayedSeconds+rep.RebufferSeconds)) {
			t.Errorf("ratio %.4f is not stalled/(played+stalled) of %.2f and %.2f", rep.RebufferRatio, rep.RebufferSeconds, rep.PlayedSeconds)
		}
	}
}

func f6(v float64) string { return fmt.Sprintf("%.6f", v) }

// TestErrorsAndRetries: failed attempts are counted by status or transport error; 5xx, timeouts
// and dropped connections are tried 3 times, 4xx once; a request that fails for good stops the
// student, who counts as failed.
func TestErrorsAndRetries(t *testing.T) {
	const bad = "/seg_00003.m4s"
	type counter struct {
		mu sync.Mutex
		n  int
	}
	for _, tc := range []struct {
		name     string
		answer   func(w http.ResponseWriter, r *http.Request, try int) bool
		errors   map[string]int64
		finished int
	}{
		{"503 twice", func(w http.ResponseWriter, r *http.Request, try int) bool {
			if try <= 2 {
				http.Error(w, "busy", http.StatusServiceUnavailable)
				return true
			}
			return false
		}, map[string]int64{"503": 2}, 1},
		{"503 always", func(w http.ResponseWriter, r *http.Request, _ int) bool {
			http.Error(w, "busy", http.StatusServiceUnavailable)
			return true
		}, map[string]int64{"503": 3}, 0},
		{"404", func(w http.ResponseWriter, r *http.Request, _ int) bool { http.NotFound(w, r); return true },
			map[string]int64{"404": 1}, 0},
		{"hang", func(w http.ResponseWriter, r *http.Request, _ int) bool { <-r.Context().Done(); return true },
			map[string]int64{"timeout": 3}, 0},
		{"drop", func(w http.ResponseWriter, r *http.Request, _ int) bool {
			w.Header().Set("Content-Length", "100000")
			w.Write([]byte("partial"))
			w.(http.Flusher).Flush() // the body is cut short, not the headers
			panic(http.ErrAbortHandler)
		}, map[string]int64{"eof": 3}, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var c counter
			cdn := newFakeCDN(t, ladder[:1], 2, 10, func(w http.ResponseWriter, r *http.Request) bool {
				if !strings.HasSuffix(r.URL.Path, "200k"+bad) {
					return false
				}
				c.mu.Lock()
				c.n++
				try := c.n
				c.mu.Unlock()
				return tc.answer(w, r, try)
			})
			cfg := testConfig(cdn.srv.URL)
			cfg.Timeout = 200 * time.Millisecond
			rep := run(t, cfg)
			var total int64
			for _, n := range tc.errors {
				total += n
			}
			if fmt.Sprint(rep.Errors) != fmt.Sprint(tc.errors) || rep.ErrorTotal != total || rep.Finished != tc.finished ||
				rep.Failed != 1-tc.finished || rep.Unfinished != 0 {
				t.Errorf("errors %v (total %d), finished %d, failed %d, unfinished %d; want %v and finished %d",
					rep.Errors, rep.ErrorTotal, rep.Finished, rep.Failed, rep.Unfinished, tc.errors, tc.finished)
			}
			if got := int64(len(cdn.requests())); rep.Requests != got {
				t.Errorf("counted %d requests, the server answered %d", rep.Requests, got)
			}
		})
	}
}

// TestCMCD: every request carries the student's session id and the content id; each segment's nor
// names the segment the student asks for next on that track.
func TestCMCD(t *testing.T) {
	cdn := newFakeCDN(t, ladder[:1], 2, 8, nil)
	cfg := testConfig(cdn.srv.URL)
	cfg.Students = 3
	rep := run(t, cfg)
	if rep.Finished != 3 {
		t.Fatalf("finished %d of 3", rep.Finished)
	}
	bySid := map[string][]hit{}
	for _, h := range cdn.requests() {
		if h.cmcd["sid"] == "" || h.cmcd["cid"] != lecture || h.cmcd["sf"] != "h" || h.cmcd["st"] != "v" {
			t.Fatalf("%s: CMCD %v", h.path, h.cmcd)
		}
		bySid[h.cmcd["sid"]] = append(bySid[h.cmcd["sid"]], h)
	}
	if len(bySid) != 3 {
		t.Fatalf("%d session ids, want one per student", len(bySid))
	}
	for sid, hits := range bySid {
		if hits[0].path != masterPath || hits[0].cmcd["ot"] != "m" || hits[0].cmcd["su"] != "true" {
			t.Errorf("%s: first request %s %v, want the master with su", sid, hits[0].path, hits[0].cmcd)
		}
		kinds := map[string]int{}
		for i, h := range hits {
			kinds[h.cmcd["ot"]]++
			if h.cmcd["ot"] == "v" && h.cmcd["br"] != "200" {
				t.Errorf("%s: br %q on %s", sid, h.cmcd["br"], h.path)
			}
			nor := h.cmcd["nor"]
			if h.cmcd["ot"] != "v" && h.cmcd["ot"] != "a" {
				if nor != "" {
					t.Errorf("%s: nor %q on %s", sid, nor, h.path)
				}
				continue
			}
			// The next request of the same type.
			var next string
			for _, later := range hits[i+1:] {
				if later.cmcd["ot"] == h.cmcd["ot"] {
					next = later.path
					break
				}
			}
			ref, err := url.PathUnescape(nor)
			resolved := (&url.URL{Path: h.path}).ResolveReference(&url.URL{Path: ref}).Path
			if next == "" && nor != "" || next != "" && (err != nil || resolved != next) {
				t.Errorf("%s: %s has nor %q (%s); the next %s request is %q", sid, h.path, nor, resolved, h.cmcd["ot"], next)
			}
		}
		// master, video and audio playlists; two inits; 8 segments of each track.
		if kinds["m"] != 3 || kinds["i"] != 2 || kinds["v"] != 8 || kinds["a"] != 8 {
			t.Errorf("%s: requests by object type %v", sid, kinds)
		}
	}
}

// TestRouterRedirect: the master goes through the router, whose 302 names the edge; every later
// request goes straight to the edge (URLs resolved against the redirected one), and the router's
// request carries CMCD too.
func TestRouterRedirect(t *testing.T) {
	cdn := newFakeCDN(t, ladder[:1], 2, 5, nil)
	var routed []string
	var mu sync.Mutex
	router := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		routed = append(routed, r.URL.RequestURI())
		mu.Unlock()
		http.Redirect(w, r, cdn.srv.URL+r.URL.RequestURI(), http.StatusFound)
	}))
	defer router.Close()
	cfg := testConfig(router.URL)
	cfg.Students = 2
	rep := run(t, cfg)
	if rep.Finished != 2 || rep.ErrorTotal != 0 {
		t.Fatalf("finished %d, errors %v", rep.Finished, rep.Errors)
	}
	if len(routed) != 2 || !strings.HasPrefix(routed[0], masterPath+"?CMCD=") {
		t.Errorf("the router saw %v, want each student's master once, with CMCD", routed)
	}
	if got := int64(len(cdn.requests())); got != rep.Requests {
		t.Errorf("the edge answered %d requests, the students counted %d", got, rep.Requests)
	}
}

// TestLoopbackOnly: targets, metrics URLs and redirects off this machine are refused before any
// connection is made.
func TestLoopbackOnly(t *testing.T) {
	ctx := context.Background()
	for host, ok := range map[string]bool{
		"127.0.0.1:8083": true, "127.9.9.9": true, "[::1]:80": true, "localhost:8080": true,
		"10.1.2.3:80": false, "192.0.2.1": false, "[2001:db8::1]:80": false, "[::ffff:10.0.0.1]:80": false, "": false,
	} {
		err := CheckLoopback(ctx, host)
		if (err == nil) != ok || err != nil && !errors.Is(err, ErrNotLoopback) {
			t.Errorf("CheckLoopback(%q) = %v", host, err)
		}
	}
	for _, cfg := range []Config{
		testConfig("http://192.0.2.1:8083"),
		func() Config {
			c := testConfig("http://127.0.0.1:1")
			c.EdgeMetrics = []string{"http://10.0.0.5:8082/metrics"}
			return c
		}(),
	} {
		if _, err := Run(ctx, cfg); !errors.Is(err, ErrNotLoopback) {
			t.Errorf("Run against %s (metrics %v): %v, want ErrNotLoopback", cfg.Target, cfg.EdgeMetrics, err)
		}
	}
	// A router on loopback that sends students elsewhere: the redirect is never followed.
	router := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, "http://192.0.2.1:9"+r.URL.RequestURI(), http.StatusFound)
	}))
	defer router.Close()
	rep := run(t, testConfig(router.URL))
	if rep.Failed != 1 || rep.Errors["not-loopback"] != 3 {
		t.Errorf("redirected off loopback: failed %d, errors %v", rep.Failed, rep.Errors)
	}
}

// TestMaxWallStopsEverything: students stuck on requests that never end, and students not yet
// joined, are all stopped at MaxWall, counted as unfinished (not as errors), and leave no goroutine.
func TestMaxWallStopsEverything(t *testing.T) {
	cdn := newFakeCDN(t, ladder[:1], 2, 10, func(w http.ResponseWriter, r *http.Request) bool {
		if strings.HasSuffix(r.URL.Path, ".m4s") {
			<-r.Context().Done()
			return true
		}
		return false
	})
	base := runtime.NumGoroutine()
	cfg := testConfig(cdn.srv.URL)
	cfg.Students, cfg.Ramp, cfg.RampWindow, cfg.Speed, cfg.MaxWall = 40, RampLinear, 2*time.Second, 1, 500*time.Millisecond
	start := time.Now()
	rep := run(t, cfg)
	took := time.Since(start)
	if took > 2*time.Second || rep.Unfinished != 40 || rep.Finished+rep.Failed != 0 || rep.ErrorTotal != 0 ||
		rep.Started < 5 || rep.Started > 15 {
		t.Errorf("after %v: started %d, unfinished %d, finished %d, failed %d, errors %v; want about 10 started, all 40 unfinished, no errors, within ~0.5 s",
			took, rep.Started, rep.Unfinished, rep.Finished, rep.Failed, rep.Errors)
	}
	deadline := time.Now().Add(3 * time.Second)
	for runtime.NumGoroutine() > base && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	if n := runtime.NumGoroutine(); n > base {
		buf := make([]byte, 1<<16)
		t.Errorf("%d goroutines after the run, %d before:\n%s", n, base, buf[:runtime.Stack(buf, true)])
	}
}

// TestSignedPlaylistsRegions: with keys, each student's URL carries a token for its lecture and
// region; lectures follow the Zipf popularity and regions their weights.
func TestSignedPlaylistsRegions(t *testing.T) {
	keys, err := playtoken.ParseKeys("k1:" + strings.Repeat("ab", 32))
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	lectures, regions := map[string]int{}, map[string]int{}
	var cdn *fakeCDN
	cdn = newFakeCDN(t, ladder[:1], 2, 1, func(w http.ResponseWriter, r *http.Request) bool {
		rest, ok := strings.CutPrefix(r.URL.Path, "/s/")
		token, p, _ := strings.Cut(rest, "/")
		c, err := playtoken.Verify(keys, token, lectureOf("/"+p), time.Now())
		if !ok || err != nil {
			http.Error(w, "forbidden", http.StatusForbidden)
			return true
		}
		if strings.HasSuffix(p, "master.m3u8") {
			mu.Lock()
			lectures[c.Lecture]++
			regions[c.Region]++
			mu.Unlock()
		}
		w.Write(cdn.objects["/"+p])
		return true
	})
	for k, v := range SyntheticLecture("L2", ladder[:1], 2, 1) {
		cdn.objects["/"+k] = v
	}
	cfg := testConfig(cdn.srv.URL)
	cfg.Keys, cfg.Students, cfg.Speed, cfg.Watch, cfg.Zipf = keys, 300, 50, 2*time.Second, 1
	cfg.Playlists = []string{masterPath, "/hls/L2/v1/master.m3u8"}
	cfg.Regions = []Weighted{{"seoul", 3}, {"busan", 1}}
	rep := run(t, cfg)
	if rep.Finished != 300 || rep.ErrorTotal != 0 {
		t.Fatalf("finished %d, errors %v", rep.Finished, rep.Errors)
	}
	// Zipf s=1 over two: 2/3 and 1/3. Regions 3:1.
	if n := lectures["L1"]; n < 170 || n > 230 || lectures["L1"]+lectures["L2"] != 300 {
		t.Errorf("lectures %v, want about 200 and 100", lectures)
	}
	if n := regions["seoul"]; n < 195 || n > 255 || regions["seoul"]+regions["busan"] != 300 {
		t.Errorf("regions %v, want about 225 and 75", regions)
	}
}

// TestSeeks: a seek flushes the buffer and jumps; the wait for media there is not a rebuffer.
func TestSeeks(t *testing.T) {
	cdn := newFakeCDN(t, ladder[:1], 2, 30, nil)
	cfg := testConfig(cdn.srv.URL)
	cfg.Seek, cfg.Watch = 0.3, 40*time.Second
	rep := run(t, cfg)
	// A seek near the end may end the lecture before the watch time is played.
	if rep.Finished != 1 || rep.Seeks == 0 || rep.Rebuffers != 0 || rep.PlayedSeconds <= 0 || rep.PlayedSeconds > 40.1 {
		t.Fatalf("finished %d, %d seeks, %d rebuffers, %.1f s played", rep.Finished, rep.Seeks, rep.Rebuffers, rep.PlayedSeconds)
	}
	var jumps int
	last := -1
	for _, h := range cdn.requests() {
		var i int
		if _, err := fmt.Sscanf(path.Base(h.path), "seg_%05d.m4s", &i); err != nil || h.cmcd["ot"] != "v" {
			continue
		}
		if last >= 0 && i != last+1 {
			jumps++
		}
		last = i
	}
	if jumps == 0 || int64(jumps) > rep.Seeks {
		t.Errorf("%d jumps in the segment sequence for %d seeks", jumps, rep.Seeks)
	}
}
