package cdn

import (
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"
)

// sid returns the CMCD header naming session id.
func sid(id string) []string { return []string{"CMCD-Session", `sid="` + id + `"`} }

// Under load the edge sheds prefetch first, then new sessions' first requests, and keeps serving the
// sessions already playing until the hard bound; a shed request gets 503 with Retry-After, and
// nothing of it is kept.
func TestPriorityShedding(t *testing.T) {
	release := make(chan struct{})
	arrived := make(chan string, 64)
	up := newUpstream(t, func(w http.ResponseWriter, r *http.Request) {
		if strings.HasPrefix(r.URL.Path, "/hold/") {
			arrived <- r.URL.Path
			<-release
		}
		serveObject(w, r, segment, "Cache-Control", "max-age=600")
	})
	// Fills: prefetch up to 2, new sessions up to 3, playing up to 4. Requests: 4, 6 and 8.
	e, ts := newTestEdge(t, up.URL, newClock(), func(c *Config) { c.MaxRequests, c.MaxFills = 8, 4 })
	// Cleanups run last-in first-out: the held upstream handlers are let go before the servers close
	// (which waits for them), also when the test fails half-way.
	var once sync.Once
	unblock := func() { once.Do(func() { close(release) }) }
	t.Cleanup(unblock)
	reached := func() {
		t.Helper()
		select {
		case <-arrived:
		case <-time.After(5 * time.Second):
			t.Fatal("a held request never reached the upstream")
		}
	}

	// Warm: one cached object, and session "p" is admitted (so it plays from now on).
	if r := get(t, ts, "GET", "/cached.m4s", sid("p")...); r.StatusCode != 200 {
		t.Fatalf("warm-up: %d", r.StatusCode)
	}

	var wg sync.WaitGroup
	results := make(chan response, 64)
	hold := func(path string, hdr ...string) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			r, err := fetch(ts, "GET", path, hdr...)
			if err != nil {
				t.Errorf("%s: %v", path, err)
				return
			}
			results <- r
		}()
	}
	waitFor := func(what string, cond func() bool) {
		t.Helper()
		for deadline := time.Now().Add(5 * time.Second); !cond(); time.Sleep(2 * time.Millisecond) {
			if time.Now().After(deadline) {
				t.Fatalf("timed out waiting for %s", what)
			}
		}
	}
	// Three playing misses hold three fill slots.
	for _, p := range []string{"/hold/1.m4s", "/hold/2.m4s", "/hold/3.m4s"} {
		hold(p, sid("p")...)
		reached()
	}
	st := e.Stats()

	// Prefetch is shed at half the fills.
	e.prefetch = newPrefetcher(e, 1)
	e.prefetch.fetch("/prefetched.m4s")
	waitFor("the prefetch to be shed", func() bool { return st.Shed[prioPrefetch].Load() == 1 })
	if up.count("/prefetched.m4s") != 0 {
		t.Error("a shed prefetch reached the upstream")
	}

	// A new session's first request is refused at three quarters of the fills...
	r := get(t, ts, "GET", "/new.m4s", sid("n")...)
	if r.StatusCode != 503 || r.Header.Get("Retry-After") != "2" || r.Header.Get("Cache-Control") != "no-store" ||
		r.Header.Get("Access-Control-Allow-Origin") != "*" {
		t.Fatalf("new session at 3/4 fills: %d, Retry-After %q, Cache-Control %q", r.StatusCode,
			r.Header.Get("Retry-After"), r.Header.Get("Cache-Control"))
	}
	// ...and so is a master playlist without CMCD, which starts a session.
	if r := get(t, ts, "GET", "/hls/l/v1/master.m3u8"); r.StatusCode != 503 {
		t.Fatalf("master playlist at 3/4 fills: %d", r.StatusCode)
	}
	// A playing session still gets the last fill slot, and hits.
	hold("/hold/4.m4s", sid("p")...)
	reached()
	if r := get(t, ts, "GET", "/cached.m4s", sid("p")...); r.StatusCode != 200 || r.cache() != "HIT" {
		t.Fatalf("playing hit under load: %d %s", r.StatusCode, r.cache())
	}
	// The fills are all taken: a playing miss is refused too, with a shorter Retry-After...
	if r := get(t, ts, "GET", "/other.m4s", sid("p")...); r.StatusCode != 503 || r.Header.Get("Retry-After") != "1" {
		t.Fatalf("playing miss with every fill slot taken: %d, Retry-After %q", r.StatusCode, r.Header.Get("Retry-After"))
	}
	// ...but joining a fill in progress costs the upstream nothing and is never refused: two waiters
	// bring the requests in flight to 6.
	hold("/hold/1.m4s", sid("p")...)
	hold("/hold/2.m4s", sid("p")...)
	waitFor("two collapsed waiters", func() bool { return st.CollapsedWaiters.Load() == 2 })

	// Requests: 6 in flight. A new session's hit is refused now; a playing one is still served.
	if r := get(t, ts, "GET", "/cached.m4s", sid("n2")...); r.StatusCode != 503 {
		t.Fatalf("new session's hit at 3/4 of MaxRequests: %d", r.StatusCode)
	}
	if r := get(t, ts, "GET", "/cached.m4s", sid("p")...); r.StatusCode != 200 {
		t.Fatalf("playing hit at 3/4 of MaxRequests: %d", r.StatusCode)
	}
	if got := [3]int64{st.Shed[0].Load(), st.Shed[1].Load(), st.Shed[2].Load()}; got != [3]int64{1, 3, 1} {
		t.Errorf("shed by priority (prefetch, new, playing) = %v, want [1 3 1]", got)
	}

	unblock()
	wg.Wait()
	close(results)
	for r := range results {
		if r.StatusCode != 200 || len(r.body) != len(segment) {
			t.Errorf("held request: %d, %d bytes", r.StatusCode, len(r.body))
		}
	}
	if n := up.count("/hold/1.m4s"); n != 1 {
		t.Errorf("upstream saw /hold/1.m4s %d times, want 1", n)
	}
	// Load gone, the refused session starts, and from then on counts as playing.
	if r := get(t, ts, "GET", "/new.m4s", sid("n")...); r.StatusCode != 200 || up.count("/new.m4s") != 1 {
		t.Fatalf("new session after the load: %d, upstream %d", r.StatusCode, up.count("/new.m4s"))
	}
	if p, _ := e.shed.classify(mustRequest(t, "/any.m4s", sid("n")...)); p != prioPlaying {
		t.Errorf("an admitted session is %d, want playing", p)
	}
	if st.RequestsInFlight.Load() != 0 || st.FillsInFlight.Load() != 0 {
		t.Errorf("in flight after the load: %d requests, %d fills", st.RequestsInFlight.Load(), st.FillsInFlight.Load())
	}
}

func mustRequest(t *testing.T, target string, hdr ...string) *http.Request {
	t.Helper()
	r, err := http.NewRequest("GET", target, nil)
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i+1 < len(hdr); i += 2 {
		r.Header.Set(hdr[i], hdr[i+1])
	}
	return r
}

func TestClassify(t *testing.T) {
	s, err := newShedder(0, 0, &Stats{})
	if err != nil {
		t.Fatal(err)
	}
	s.sessions.Set("known", struct{}{})
	for _, c := range []struct {
		target string
		hdr    []string
		want   priority
	}{
		{"/hls/l/v1/master.m3u8", nil, prioNew},
		{"/hls/l/v1/720p/index.m3u8", nil, prioPlaying},
		{"/hls/l/v1/720p/seg_00001.m4s", nil, prioPlaying},
		{"/hls/l/v1/720p/seg_00001.m4s", sid("fresh"), prioNew},
		{"/hls/l/v1/master.m3u8", sid("known"), prioPlaying},
		{`/hls/l/v1/720p/index.m3u8?CMCD=sid%3D%22known%22`, nil, prioPlaying},
		{`/hls/l/v1/720p/index.m3u8?CMCD=bl%3D300%2Csid%3D%22other%22`, nil, prioNew},
		{"/hls/l/v1/720p/index.m3u8", []string{"CMCD-Session", "sid=unquoted"}, prioPlaying},
	} {
		if got, _ := s.classify(mustRequest(t, c.target, c.hdr...)); got != c.want {
			t.Errorf("%s %v: priority %d, want %d", c.target, c.hdr, got, c.want)
		}
	}
}
