package cdn

import (
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"
)

// mediaPlaylist is a VOD media playlist of n 4 s segments seg_00001.m4s..., with an init section
// when init is set.
func mediaPlaylist(n int, init bool) []byte {
	var pl strings.Builder
	pl.WriteString("#EXTM3U\n#EXT-X-VERSION:7\n#EXT-X-TARGETDURATION:4\n")
	if init {
		pl.WriteString("#EXT-X-MAP:URI=\"init.mp4\"\n")
	}
	for i := 1; i <= n; i++ {
		fmt.Fprintf(&pl, "#EXTINF:4.0,\nseg_%05d.m4s\n", i)
	}
	pl.WriteString("#EXT-X-ENDLIST\n")
	return []byte(pl.String())
}

// prefetchUpstream serves a media playlist of n segments under /hls/p1/v1/720p/, and counts requests.
func prefetchUpstream(t *testing.T, n int) *upstream {
	pl := mediaPlaylist(n, true)
	return newUpstream(t, func(w http.ResponseWriter, r *http.Request) {
		cc := []string{"Cache-Control", "public, max-age=31536000, immutable"}
		switch {
		case strings.HasSuffix(r.URL.Path, "index.m3u8"):
			serveObject(w, r, pl, cc...)
		case strings.HasSuffix(r.URL.Path, ".m4s"), strings.HasSuffix(r.URL.Path, ".mp4"):
			time.Sleep(5 * time.Millisecond) // an origin round trip
			serveObject(w, r, []byte("media "+r.URL.Path), cc...)
		default:
			http.NotFound(w, r)
		}
	})
}

// waitIdle waits until no prefetch is running.
func waitIdle(t *testing.T, e *Edge) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for len(e.prefetch.slots) > 0 {
		if time.Now().After(deadline) {
			t.Fatal("prefetches did not finish")
		}
		time.Sleep(time.Millisecond)
	}
}

// A student playing a rendition in order finds every segment from the second on already cached: the
// playlist prefetches the first ones and each segment the next ones.
func TestPrefetchPlayingStudentHitsFromSecondSegment(t *testing.T) {
	up := prefetchUpstream(t, 12)
	e, ts := newTestEdge(t, up.URL, nil, func(c *Config) { c.Prefetch = 2 })
	if r := get(t, ts, "GET", "/hls/p1/v1/720p/index.m3u8"); r.StatusCode != 200 {
		t.Fatalf("playlist: %d", r.StatusCode)
	}
	for i := 1; i <= 12; i++ {
		waitIdle(t, e) // playback pace: a segment lasts seconds, prefetch takes milliseconds
		r := get(t, ts, "GET", fmt.Sprintf("/hls/p1/v1/720p/seg_%05d.m4s", i))
		if r.StatusCode != 200 || string(r.body) != fmt.Sprintf("media /hls/p1/v1/720p/seg_%05d.m4s", i) {
			t.Fatalf("segment %d: %d %q", i, r.StatusCode, r.body)
		}
		if i >= 2 && r.cache() != cacheHit {
			t.Fatalf("segment %d: X-Cache %s, want HIT (prefetched)", i, r.cache())
		}
	}
	for i := 1; i <= 12; i++ {
		if n := up.count(fmt.Sprintf("/hls/p1/v1/720p/seg_%05d.m4s", i)); n != 1 {
			t.Fatalf("segment %d fetched %d times upstream, want 1", i, n)
		}
	}
	st := e.Stats()
	if st.Prefetches.Load() != 12 || st.PrefetchUsed.Load() != 12 {
		t.Fatalf("prefetches %d, used %d; want 12 and 12", st.Prefetches.Load(), st.PrefetchUsed.Load())
	}
}

// Without Config.Prefetch nothing is fetched ahead.
func TestPrefetchOff(t *testing.T) {
	up := prefetchUpstream(t, 4)
	_, ts := newTestEdge(t, up.URL, nil, nil)
	get(t, ts, "GET", "/hls/p1/v1/720p/index.m3u8")
	get(t, ts, "GET", "/hls/p1/v1/720p/seg_00001.m4s")
	time.Sleep(50 * time.Millisecond)
	if n := up.count("/hls/p1/v1/720p/seg_00002.m4s"); n != 0 {
		t.Fatalf("segment 2 fetched %d times with prefetch off", n)
	}
}

// A CMCD nor hint is fetched, whether it comes as a query argument or a header; the hint does not
// change the cache key of the request carrying it.
func TestPrefetchFollowsCMCDNextObject(t *testing.T) {
	up := prefetchUpstream(t, 4)
	e, ts := newTestEdge(t, up.URL, nil, func(c *Config) { c.Prefetch = 1 })
	get(t, ts, "GET", `/hls/p1/v1/720p/init.mp4?CMCD=bl%3D2000%2Cnor%3D%22seg_00003.m4s%22`)
	get(t, ts, "GET", "/hls/p1/v1/720p/seg_00001.m4s", "CMCD-Request", `bl=2000,nor="seg_00004.m4s"`)
	// URL-encoded, as the spec has it and hls.js sends it, and relative through parent directories.
	get(t, ts, "GET", "/hls/p1/v1/720p/seg_00001.m4s", "CMCD-Request", `nor="..%2F..%2F..%2Fp1%2Fv1%2F720p%2Fseg_00002.m4s"`)
	waitIdle(t, e)
	for _, seg := range []string{"seg_00002.m4s", "seg_00003.m4s", "seg_00004.m4s"} {
		if n := up.count("/hls/p1/v1/720p/" + seg); n != 1 {
			t.Fatalf("%s (a nor hint) fetched %d times, want 1", seg, n)
		}
	}
	if r := get(t, ts, "GET", "/hls/p1/v1/720p/init.mp4"); r.cache() != cacheHit {
		t.Fatalf("init without CMCD: %s, want the entry the CMCD request stored", r.cache())
	}
}

// Prefetch is shed, not queued: with every slot busy further prefetches are dropped and counted.
func TestPrefetchIsShedWhenBusy(t *testing.T) {
	release := make(chan struct{})
	up := newUpstream(t, func(w http.ResponseWriter, r *http.Request) {
		if strings.HasSuffix(r.URL.Path, ".m3u8") {
			serveObject(w, r, mediaPlaylist(20, false), "Cache-Control", "max-age=60")
			return
		}
		select { // the request's end too: a test failing early must not hang on it
		case <-release:
		case <-r.Context().Done():
			return
		}
		serveObject(w, r, []byte("x"), "Cache-Control", "max-age=60")
	})
	e, ts := newTestEdge(t, up.URL, nil, func(c *Config) { c.Prefetch = 10 })
	get(t, ts, "GET", "/hls/p1/v1/720p/index.m3u8")
	if st := e.Stats(); st.Prefetches.Load() != maxPrefetches || st.PrefetchShed.Load() != 10-maxPrefetches {
		t.Fatalf("started %d, shed %d; want %d and %d", st.Prefetches.Load(), st.PrefetchShed.Load(), maxPrefetches, 10-maxPrefetches)
	}
	close(release)
	waitIdle(t, e)
}

// Prefetched objects evicted before any client asked for them are counted as wasted.
func TestPrefetchWastedIsCounted(t *testing.T) {
	big := strings.Repeat("x", 4000)
	up := newUpstream(t, func(w http.ResponseWriter, r *http.Request) {
		if strings.HasSuffix(r.URL.Path, ".m3u8") {
			serveObject(w, r, mediaPlaylist(30, false), "Cache-Control", "max-age=60")
			return
		}
		serveObject(w, r, []byte(big), "Cache-Control", "max-age=60")
	})
	// Room for about five segments; every segment request prefetches the next four.
	e, ts := newTestEdge(t, up.URL, nil, func(c *Config) { c.Prefetch = 4; c.MemoryBytes = 24 << 10 })
	get(t, ts, "GET", "/hls/p1/v1/720p/index.m3u8")
	for i := 1; i <= 30; i += 6 { // a student skipping ahead: most prefetched segments are never asked for
		waitIdle(t, e)
		get(t, ts, "GET", fmt.Sprintf("/hls/p1/v1/720p/seg_%05d.m4s", i))
	}
	waitIdle(t, e)
	deadline := time.Now().Add(5 * time.Second)
	for e.Stats().PrefetchWasted.Load() == 0 {
		if time.Now().After(deadline) {
			t.Fatalf("no prefetch counted wasted: prefetches %d, used %d, evictions %d",
				e.Stats().Prefetches.Load(), e.Stats().PrefetchUsed.Load(), e.Stats().Evictions.Load())
		}
		get(t, ts, "GET", fmt.Sprintf("/hls/p1/v1/720p/seg_%05d.m4s", 30)) // churn so otter runs its maintenance
		time.Sleep(time.Millisecond)
	}
}
