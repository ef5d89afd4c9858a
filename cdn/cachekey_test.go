package cdn

import (
	"net/http"
	"net/url"
	"testing"
	"time"

	"github.com/lectern/lectern/internal/playtoken"
)

// CacheKey gives, for the signed URLs of different students (their own tokens and CMCD data), the one
// key the edge itself stores the object under; another object or another query is another key.
func TestCacheKeyIsTheEdgesKey(t *testing.T) {
	up := newUpstream(t, func(w http.ResponseWriter, r *http.Request) {
		serveObject(w, r, []byte("object "+r.URL.RequestURI()), "Cache-Control", "max-age=86400")
	})
	keys := playbackKeys(t)
	clk := newClock()
	e, ts := newTestEdge(t, up.URL, clk, func(c *Config) { c.PlaybackKeys = keys })
	const seg = "/hls/lec1/v1/720p/seg_00003.m4s"
	students := []string{
		"/s/" + playtoken.Mint(keys, "lec1", clk.Now().Add(time.Hour), "seoul") + seg + "?CMCD=bl%3D2000%2Csid%3D%22a%22",
		"/s/" + playtoken.Mint(keys, "lec1", clk.Now().Add(2*time.Hour), "busan-ulsan") + seg + "?CMCD=bl%3D100%2Cnor%3D%22seg_00004.m4s%22%2Csid%3D%22b%22",
		"/s/" + playtoken.Mint(keys, "lec1", clk.Now().Add(3*time.Hour), "") + seg,
	}
	for i, p := range students {
		if r := get(t, ts, "GET", p); r.StatusCode != 200 {
			t.Fatalf("student %d: %d", i, r.StatusCode)
		}
		u, err := url.ParseRequestURI(p)
		if err != nil {
			t.Fatal(err)
		}
		if got := CacheKey(u); got != seg {
			t.Errorf("student %d: CacheKey = %q, want %q", i, got, seg)
		}
	}
	if n := up.count(seg); n != 1 {
		t.Errorf("upstream asked %d times, want 1: the students share the key", n)
	}
	if _, ok := e.mem.get(seg); !ok {
		t.Errorf("the edge did not store %q", seg)
	}
	for _, tc := range []struct{ uri, want string }{
		{"/s/tok/hls/lec1/v1/720p/seg_00004.m4s?CMCD=bl%3D1", "/hls/lec1/v1/720p/seg_00004.m4s"},
		{"/s/tok/hls/lec2/v1/720p/seg_00003.m4s", "/hls/lec2/v1/720p/seg_00003.m4s"},
		{"/hls/lec1/v1/720p/seg_00003.m4s?b=2&CMCD=x&a=1", "/hls/lec1/v1/720p/seg_00003.m4s?b=2&a=1"},
		{"/hls/lec1/v1/a%20b/index.m3u8", "/hls/lec1/v1/a%20b/index.m3u8"},
		{"/s/tok/hls/lec1/v1/a%20b/index.m3u8", "/hls/lec1/v1/a%20b/index.m3u8"},
	} {
		u, err := url.ParseRequestURI(tc.uri)
		if err != nil {
			t.Fatal(err)
		}
		if got := CacheKey(u); got != tc.want {
			t.Errorf("CacheKey(%s) = %q, want %q", tc.uri, got, tc.want)
		}
	}
}

// PrefetchTargets is what the edge fetches after serving the playlist or a segment of it.
func TestPrefetchTargets(t *testing.T) {
	const pl = "/hls/p1/v1/720p/index.m3u8"
	body := mediaPlaylist(5, true)
	seg := func(i int) string { return "/hls/p1/v1/720p/seg_0000" + string(rune('0'+i)) + ".m4s" }
	for _, tc := range []struct {
		key  string
		n    int
		want []string
	}{
		{pl, 2, []string{seg(1), seg(2)}},
		{seg(1), 2, []string{seg(2), seg(3)}},
		{seg(4), 2, []string{seg(5)}},
		{seg(5), 2, nil},
		{seg(2), 0, nil},
		{"/hls/p1/v1/720p/init.mp4", 2, nil},
		{"/hls/p1/v1/480p/seg_00001.m4s", 2, nil},
	} {
		got := PrefetchTargets(pl, body, tc.key, tc.n)
		if len(got) != len(tc.want) {
			t.Errorf("%s n=%d: %v, want %v", tc.key, tc.n, got, tc.want)
			continue
		}
		for i := range got {
			if got[i] != tc.want[i] {
				t.Errorf("%s n=%d: %v, want %v", tc.key, tc.n, got, tc.want)
			}
		}
	}
}
