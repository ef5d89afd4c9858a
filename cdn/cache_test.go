package cdn

import (
	"bytes"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"
)

var segment = bytes.Repeat([]byte("abcdefghij"), 100) // 1000 bytes

func TestHitMissAndAge(t *testing.T) {
	up := newUpstream(t, func(w http.ResponseWriter, r *http.Request) {
		age := "0"
		if r.URL.Path == "/aged" {
			age = "5"
		}
		serveObject(w, r, segment, "Cache-Control", "public, max-age=60", "Etag", `"s1"`, "Age", age,
			"Content-Type", "video/iso.segment")
	})
	clk := newClock()
	_, ts := newTestEdge(t, up.URL, clk, nil)

	first := get(t, ts, "GET", "/seg.m4s")
	if first.StatusCode != 200 || first.cache() != "MISS" || !bytes.Equal(first.body, segment) {
		t.Fatalf("first: %d %s, %d bytes", first.StatusCode, first.cache(), len(first.body))
	}
	if !strings.Contains(first.Header.Get("Via"), "1.1 lectern-edge") {
		t.Errorf("Via = %q", first.Header.Get("Via"))
	}
	clk.Advance(7 * time.Second)
	second := get(t, ts, "GET", "/seg.m4s")
	if second.cache() != "HIT" || !bytes.Equal(second.body, segment) {
		t.Fatalf("second: %s, %d bytes", second.cache(), len(second.body))
	}
	if got := second.Header.Get("Age"); got != "7" {
		t.Errorf("Age = %q, want 7", got)
	}
	for k, v := range map[string]string{"Content-Type": "video/iso.segment", "Etag": `"s1"`,
		"Cache-Control": "public, max-age=60", "Content-Length": "1000"} {
		if got := second.Header.Get(k); got != v {
			t.Errorf("HIT %s = %q, want %q", k, got, v)
		}
	}
	if n := up.count("/seg.m4s"); n != 1 {
		t.Errorf("upstream saw %d requests, want 1", n)
	}
	// The query is part of the key.
	if r := get(t, ts, "GET", "/seg.m4s?x=1"); r.cache() != "MISS" {
		t.Errorf("other query: %s", r.cache())
	}

	// The upstream's Age counts: 5 when it arrived, 15 ten seconds later.
	get(t, ts, "GET", "/aged")
	clk.Advance(10 * time.Second)
	if r := get(t, ts, "GET", "/aged"); r.cache() != "HIT" || r.Header.Get("Age") != "15" {
		t.Errorf("aged: %s, Age %q, want HIT 15", r.cache(), r.Header.Get("Age"))
	}
}

func TestFreshness(t *testing.T) {
	clk := newClock()
	up := newUpstream(t, func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/max-age":
			serveObject(w, r, segment, "Cache-Control", "max-age=1")
		case "/s-maxage":
			serveObject(w, r, segment, "Cache-Control", "max-age=1, s-maxage=60")
		case "/expires":
			w.Header().Set("Date", clk.Now().Format(http.TimeFormat))
			serveObject(w, r, segment, "Expires", clk.Now().Add(60*time.Second).Format(http.TimeFormat))
		case "/expires-invalid":
			serveObject(w, r, segment, "Expires", "0")
		}
	})
	_, ts := newTestEdge(t, up.URL, clk, nil)
	tests := []struct {
		path    string
		advance time.Duration
		want    string // X-Cache of the second request
	}{
		{"/max-age", 0, "HIT"},
		{"/max-age", time.Second, "MISS"}, // age 1s is not younger than max-age=1
		{"/s-maxage", 10 * time.Second, "HIT"},
		{"/expires", 30 * time.Second, "HIT"},
		{"/expires", 60 * time.Second, "MISS"},
		{"/expires-invalid", 0, "MISS"},
	}
	for i, tc := range tests {
		path := tc.path + "?case=" + string(rune('a'+i))
		if r := get(t, ts, "GET", path); r.cache() != "MISS" {
			t.Fatalf("%s first: %s", path, r.cache())
		}
		clk.Advance(tc.advance)
		if r := get(t, ts, "GET", path); r.cache() != tc.want {
			t.Errorf("%s after %v: %s, want %s", tc.path, tc.advance, r.cache(), tc.want)
		}
	}
}

// TestNotStored checks which responses are stored: each path is requested twice and the upstream
// sees one request when the first was stored.
func TestNotStored(t *testing.T) {
	up := newUpstream(t, func(w http.ResponseWriter, r *http.Request) {
		status := 200
		var hdr []string
		switch r.URL.Path {
		case "/no-store":
			hdr = []string{"Cache-Control", "max-age=60, no-store"}
		case "/private":
			hdr = []string{"Cache-Control", "private, max-age=60"}
		case "/no-cache":
			hdr = []string{"Cache-Control", "no-cache, max-age=60"}
		case "/cookie":
			hdr = []string{"Cache-Control", "max-age=60", "Set-Cookie", "s=1"}
		case "/vary-star":
			hdr = []string{"Cache-Control", "max-age=60", "Vary", "*"}
		case "/no-freshness":
			hdr = []string{"Etag", `"n1"`} // a validator, but no Last-Modified to base a heuristic on
		case "/max-age-0":
			hdr = []string{"Cache-Control", "max-age=0"}
		case "/not-found":
			status = 404
			hdr = []string{"Cache-Control", "public, max-age=10"}
		case "/not-found-no-freshness":
			status = 404
		case "/found-no-freshness":
			status = 302
			hdr = []string{"Location", "/elsewhere"}
		case "/partial":
			status = 206
			hdr = []string{"Cache-Control", "max-age=60", "Content-Range", "bytes 0-999/2000"}
		case "/server-error":
			status = 500
			hdr = []string{"Cache-Control", "max-age=60"}
		case "/auth", "/auth-public":
			hdr = []string{"Cache-Control", "max-age=60"}
			if r.URL.Path == "/auth-public" {
				hdr = []string{"Cache-Control", "public, max-age=60"}
			}
		}
		for i := 0; i < len(hdr); i += 2 {
			w.Header().Add(hdr[i], hdr[i+1])
		}
		w.WriteHeader(status)
		w.Write(segment)
	})
	_, ts := newTestEdge(t, up.URL, nil, nil)
	tests := []struct {
		path   string
		hdr    []string
		stored bool
		status int
	}{
		{"/no-store", nil, false, 200},
		{"/private", nil, false, 200},
		{"/no-cache", nil, false, 200},
		{"/cookie", nil, false, 200},
		{"/vary-star", nil, false, 200},
		{"/no-freshness", nil, false, 200},
		{"/max-age-0", nil, false, 200},
		{"/not-found", nil, true, 404},
		{"/not-found-no-freshness", nil, false, 404},
		{"/found-no-freshness", nil, false, 302},
		{"/partial", nil, false, 206},
		{"/server-error", nil, false, 500},
		{"/auth", []string{"Authorization", "Bearer x"}, false, 200},
		{"/auth-public", []string{"Authorization", "Bearer x"}, true, 200},
	}
	for _, tc := range tests {
		t.Run(tc.path, func(t *testing.T) {
			for i := 0; i < 2; i++ {
				r := get(t, ts, "GET", tc.path, tc.hdr...)
				if r.StatusCode != tc.status || !bytes.Equal(r.body, segment) {
					t.Fatalf("request %d: status %d, %d bytes", i, r.StatusCode, len(r.body))
				}
			}
			want := 2
			if tc.stored {
				want = 1
			}
			if n := up.count(tc.path); n != want {
				t.Errorf("upstream saw %d requests, want %d", n, want)
			}
		})
	}
	if r := get(t, ts, "GET", "/cookie"); r.Header.Get("Set-Cookie") != "s=1" {
		t.Errorf("Set-Cookie not passed to the client: %v", r.Header)
	}
}

func TestConditionalAndRangeFromCache(t *testing.T) {
	const lastMod = "Mon, 02 Jan 2006 15:04:05 GMT"
	up := newUpstream(t, func(w http.ResponseWriter, r *http.Request) {
		serveObject(w, r, segment, "Cache-Control", "max-age=60", "Etag", `"s1"`, "Last-Modified", lastMod)
	})
	_, ts := newTestEdge(t, up.URL, nil, nil)

	// A first request with a Range is a miss; the fill fetches the whole object regardless.
	r := get(t, ts, "GET", "/seg", "Range", "bytes=10-19")
	if r.StatusCode != 206 || !bytes.Equal(r.body, segment[10:20]) {
		t.Fatalf("ranged miss: %d %q", r.StatusCode, r.body)
	}
	if got := up.last().Header.Get("Range"); got != "" {
		t.Errorf("fill forwarded Range %q", got)
	}
	tests := []struct {
		name         string
		hdr          []string
		status       int
		body         []byte
		contentRange string
	}{
		{"etag", []string{"If-None-Match", `"s1"`}, 304, nil, ""},
		{"other etag", []string{"If-None-Match", `"s0"`}, 200, segment, ""},
		{"ims", []string{"If-Modified-Since", lastMod}, 304, nil, ""},
		{"range", []string{"Range", "bytes=100-199"}, 206, segment[100:200], "bytes 100-199/1000"},
		{"suffix", []string{"Range", "bytes=-10"}, 206, segment[990:], "bytes 990-999/1000"},
		{"unsatisfiable", []string{"Range", "bytes=5000-"}, 416, nil, "bytes */1000"},
		{"if-range ok", []string{"Range", "bytes=0-9", "If-Range", `"s1"`}, 206, segment[:10], "bytes 0-9/1000"},
		{"if-range stale", []string{"Range", "bytes=0-9", "If-Range", `"s0"`}, 200, segment, ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r := get(t, ts, "GET", "/seg", tc.hdr...)
			if r.StatusCode != tc.status || r.cache() != "HIT" {
				t.Fatalf("status %d %s, want %d HIT", r.StatusCode, r.cache(), tc.status)
			}
			if tc.body != nil && !bytes.Equal(r.body, tc.body) {
				t.Errorf("body %q", r.body)
			}
			if got := r.Header.Get("Content-Range"); got != tc.contentRange {
				t.Errorf("Content-Range %q, want %q", got, tc.contentRange)
			}
		})
	}
	if n := up.count("/seg"); n != 1 {
		t.Errorf("upstream saw %d requests, want 1", n)
	}
}

func TestHead(t *testing.T) {
	up := newUpstream(t, func(w http.ResponseWriter, r *http.Request) {
		serveObject(w, r, segment, "Cache-Control", "max-age=60", "Etag", `"s1"`)
	})
	_, ts := newTestEdge(t, up.URL, nil, nil)

	// A HEAD miss goes upstream as HEAD and stores nothing.
	r := get(t, ts, "HEAD", "/a")
	if r.StatusCode != 200 || len(r.body) != 0 || r.ContentLength != 1000 || r.cache() != "MISS" {
		t.Fatalf("HEAD miss: %d, %d body bytes, length %d, %s", r.StatusCode, len(r.body), r.ContentLength, r.cache())
	}
	if m := up.last().Method; m != "HEAD" {
		t.Errorf("upstream got %s for a HEAD miss", m)
	}
	if r := get(t, ts, "GET", "/a"); r.cache() != "MISS" {
		t.Errorf("GET after HEAD miss: %s, want MISS", r.cache())
	}
	// Now a HEAD is answered from the stored GET.
	r = get(t, ts, "HEAD", "/a")
	if r.cache() != "HIT" || len(r.body) != 0 || r.ContentLength != 1000 || r.Header.Get("Etag") != `"s1"` {
		t.Errorf("HEAD hit: %s, %d body bytes, length %d", r.cache(), len(r.body), r.ContentLength)
	}
	if n := up.count("/a"); n != 2 {
		t.Errorf("upstream saw %d requests, want 2", n)
	}
}

func TestRevalidation(t *testing.T) {
	clk := newClock()
	etag := `"v1"`
	body := []byte("version one")
	var mu sync.Mutex
	up := newUpstream(t, func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		et, b := etag, body
		mu.Unlock()
		serveObject(w, r, b, "Cache-Control", "max-age=1", "Etag", et, "X-Generation", et)
	})
	e, ts := newTestEdge(t, up.URL, clk, nil)

	get(t, ts, "GET", "/p.m3u8")
	clk.Advance(2 * time.Second)
	r := get(t, ts, "GET", "/p.m3u8")
	if r.cache() != "REVALIDATED" || string(r.body) != "version one" || r.StatusCode != 200 {
		t.Fatalf("stale request: %d %s %q", r.StatusCode, r.cache(), r.body)
	}
	if got := up.last().Header.Get("If-None-Match"); got != `"v1"` {
		t.Errorf("revalidation sent If-None-Match %q", got)
	}
	if r.Header.Get("Age") != "0" {
		t.Errorf("Age after revalidation %q, want 0", r.Header.Get("Age"))
	}
	if r := get(t, ts, "GET", "/p.m3u8"); r.cache() != "HIT" {
		t.Errorf("after a 304 the entry is fresh again: %s", r.cache())
	}
	if e.Stats().Revalidations.Load() != 1 {
		t.Errorf("Revalidations = %d", e.Stats().Revalidations.Load())
	}

	// A changed object answers the revalidation with 200, which replaces the entry.
	mu.Lock()
	etag, body = `"v2"`, []byte("version two")
	mu.Unlock()
	clk.Advance(2 * time.Second)
	r = get(t, ts, "GET", "/p.m3u8")
	if r.cache() != "MISS" || string(r.body) != "version two" || r.Header.Get("Etag") != `"v2"` {
		t.Fatalf("changed object: %s %q %s", r.cache(), r.body, r.Header.Get("Etag"))
	}
	if r := get(t, ts, "GET", "/p.m3u8"); r.cache() != "HIT" || string(r.body) != "version two" {
		t.Errorf("replaced entry: %s %q", r.cache(), r.body)
	}
	if n := up.count("/p.m3u8"); n != 3 {
		t.Errorf("upstream saw %d requests, want 3", n)
	}
	// Replacements keep the gauges exact.
	e.mem.cache.CleanUp()
	if st := e.Stats(); st.CacheEntries.Load() != 1 || uint64(st.CacheBytes.Load()) != e.mem.cache.WeightedSize() {
		t.Errorf("gauges after replacements: %d entries, %d bytes; cache weighs %d", st.CacheEntries.Load(),
			st.CacheBytes.Load(), e.mem.cache.WeightedSize())
	}
}

func TestVary(t *testing.T) {
	up := newUpstream(t, func(w http.ResponseWriter, r *http.Request) {
		serveObject(w, r, []byte("lang="+r.Header.Get("Accept-Language")), "Cache-Control", "max-age=60",
			"Vary", "Accept-Language")
	})
	_, ts := newTestEdge(t, up.URL, nil, nil)
	for i, tc := range []struct{ lang, cache, body string }{
		{"en", "MISS", "lang=en"},
		{"en", "HIT", "lang=en"},
		{"fr", "MISS", "lang=fr"},
		{"fr", "HIT", "lang=fr"},
	} {
		r := get(t, ts, "GET", "/subs.vtt", "Accept-Language", tc.lang)
		if r.cache() != tc.cache || string(r.body) != tc.body {
			t.Errorf("request %d (%s): %s %q, want %s %q", i, tc.lang, r.cache(), r.body, tc.cache, tc.body)
		}
	}
}
