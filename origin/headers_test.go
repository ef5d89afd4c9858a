package origin

import (
	"bytes"
	"mime"
	"net/http"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/lectern/lectern/internal/objstore"
)

const (
	segPath        = "/hls/abc/v1/720p/seg_00001.m4s"
	wantImmutable  = "public, max-age=31536000, immutable"
	wantNotFoundCC = "public, max-age=10"
	wantEntryCC    = "public, max-age=5, stale-while-revalidate=30"
	wantEntryCDNCC = "public, max-age=30, stale-while-revalidate=60"
)

// headerAbsent marks a header that must not be in the response.
const headerAbsent = "<absent>"

// headerCase is one request and what the response must be. Besides the fields, every response is
// checked for the rules that hold everywhere under /hls/: CORS, no Vary, and for versioned objects
// the immutable policy, a strong ETag and Last-Modified (see checkCommon).
type headerCase struct {
	name   string
	method string // default GET
	path   string // default segPath
	// hdr values may use $etag and $lastmod, the validators a plain GET of path returned just before,
	// and $earlier / $later, an hour either side of $lastmod.
	hdr map[string]string

	status int
	ctype  string            // media type of Content-Type, parameters aside
	body   []byte            // exact body when non-nil
	empty  bool              // no body at all (HEAD, 204, 304)
	want   map[string]string // exact header values, or headerAbsent
	has    map[string][]string
	check  func(t *testing.T, h http.Header)
}

var headerCases = []headerCase{
	// Content-Type per kind, with the types the worker stores.
	{name: "master playlist", path: "/hls/abc/v1/master.m3u8", status: 200, ctype: "application/vnd.apple.mpegurl", body: masterOf("v1")},
	{name: "media playlist", path: "/hls/abc/v1/720p/index.m3u8", status: 200, ctype: "application/vnd.apple.mpegurl", body: playlist},
	{name: "init section", path: "/hls/abc/v1/720p/init.mp4", status: 200, ctype: "video/mp4", body: initSec},
	{name: "segment", status: 200, ctype: "video/iso.segment", body: segment,
		want: map[string]string{"Content-Length": "1000", "Content-Range": headerAbsent}},
	{name: "subtitles", path: "/hls/abc/v1/subs/en.vtt", status: 200, ctype: "text/vtt", body: vtt},
	{name: "poster", path: "/hls/abc/v1/poster.jpg", status: 200, ctype: "image/jpeg", body: poster},
	{name: "newer version", path: "/hls/abc/v2/master.m3u8", status: 200, body: masterOf("v2")},

	// Conditional requests, with the validators of the 200 just before.
	{name: "If-None-Match after 200", hdr: map[string]string{"If-None-Match": "$etag"}, status: 304, empty: true},
	{name: "If-None-Match weak form", hdr: map[string]string{"If-None-Match": "W/$etag"}, status: 304, empty: true},
	{name: "If-None-Match list", hdr: map[string]string{"If-None-Match": `"nope", $etag`}, status: 304, empty: true},
	{name: "If-None-Match star", hdr: map[string]string{"If-None-Match": "*"}, status: 304, empty: true},
	{name: "If-None-Match other", hdr: map[string]string{"If-None-Match": `"nope"`}, status: 200, body: segment},
	{name: "If-None-Match playlist", path: "/hls/abc/v1/master.m3u8", hdr: map[string]string{"If-None-Match": "$etag"},
		status: 304, empty: true},
	{name: "If-Modified-Since equal", hdr: map[string]string{"If-Modified-Since": "$lastmod"}, status: 304, empty: true},
	{name: "If-Modified-Since later", hdr: map[string]string{"If-Modified-Since": "$later"}, status: 304, empty: true},
	{name: "If-Modified-Since earlier", hdr: map[string]string{"If-Modified-Since": "$earlier"}, status: 200, body: segment},
	{name: "If-None-Match beats If-Modified-Since", status: 200, body: segment,
		hdr: map[string]string{"If-None-Match": `"nope"`, "If-Modified-Since": "$lastmod"}},
	{name: "HEAD If-None-Match", method: "HEAD", hdr: map[string]string{"If-None-Match": "$etag"}, status: 304, empty: true},
	{name: "If-None-Match beats Range", hdr: map[string]string{"If-None-Match": "$etag", "Range": "bytes=0-9"},
		status: 304, empty: true},
	{name: "If-Match", hdr: map[string]string{"If-Match": "$etag"}, status: 200, body: segment},
	{name: "If-Match fails", hdr: map[string]string{"If-Match": `"nope"`}, status: 412},
	{name: "If-Unmodified-Since fails", hdr: map[string]string{"If-Unmodified-Since": "$earlier"}, status: 412},

	// Single ranges.
	{name: "range first bytes", hdr: rng("bytes=0-99"), status: 206, body: segment[:100], ctype: "video/iso.segment",
		want: map[string]string{"Content-Range": "bytes 0-99/1000", "Content-Length": "100"}},
	{name: "range middle", hdr: rng("bytes=500-509"), status: 206, body: segment[500:510],
		want: map[string]string{"Content-Range": "bytes 500-509/1000"}},
	{name: "range last byte", hdr: rng("bytes=999-999"), status: 206, body: segment[999:],
		want: map[string]string{"Content-Range": "bytes 999-999/1000"}},
	{name: "range suffix", hdr: rng("bytes=-100"), status: 206, body: segment[900:],
		want: map[string]string{"Content-Range": "bytes 900-999/1000"}},
	{name: "range suffix longer than object", hdr: rng("bytes=-5000"), status: 206, body: segment,
		want: map[string]string{"Content-Range": "bytes 0-999/1000"}},
	{name: "range open", hdr: rng("bytes=990-"), status: 206, body: segment[990:],
		want: map[string]string{"Content-Range": "bytes 990-999/1000"}},
	{name: "range end past object", hdr: rng("bytes=900-5000"), status: 206, body: segment[900:],
		want: map[string]string{"Content-Range": "bytes 900-999/1000"}},
	{name: "range unit case and space", hdr: rng(" Bytes=1-2"), status: 206, body: segment[1:3],
		want: map[string]string{"Content-Range": "bytes 1-2/1000"}},
	{name: "range on a playlist", path: "/hls/abc/v1/master.m3u8", hdr: rng("bytes=0-6"), status: 206,
		body: []byte("#EXTM3U"), ctype: "application/vnd.apple.mpegurl"},
	{name: "If-Range etag", hdr: map[string]string{"Range": "bytes=0-9", "If-Range": "$etag"}, status: 206, body: segment[:10],
		want: map[string]string{"Content-Range": "bytes 0-9/1000"}},
	{name: "If-Range date", hdr: map[string]string{"Range": "bytes=0-9", "If-Range": "$lastmod"}, status: 206, body: segment[:10]},
	{name: "If-Range mismatch", hdr: map[string]string{"Range": "bytes=0-9", "If-Range": `"old"`}, status: 200, body: segment,
		want: map[string]string{"Content-Range": headerAbsent}},
	{name: "If-Range weak etag", hdr: map[string]string{"Range": "bytes=0-9", "If-Range": "W/$etag"}, status: 200, body: segment},
	{name: "If-Range old date", hdr: map[string]string{"Range": "bytes=0-9", "If-Range": "$earlier"}, status: 200, body: segment},
	{name: "unsatisfiable at size", hdr: rng("bytes=1000-"), status: 416, want: map[string]string{"Content-Range": "bytes */1000"}},
	{name: "unsatisfiable far", hdr: rng("bytes=5000-6000"), status: 416, want: map[string]string{"Content-Range": "bytes */1000"}},
	{name: "unsatisfiable empty suffix", hdr: rng("bytes=-0"), status: 416, want: map[string]string{"Content-Range": "bytes */1000"}},
	{name: "unsatisfiable empty object", path: "/hls/abc/v1/720p/empty.m4s", hdr: rng("bytes=0-"), status: 416,
		want: map[string]string{"Content-Range": "bytes */0"}},
	{name: "malformed range", hdr: rng("bytes=abc"), status: 200, body: segment, want: map[string]string{"Content-Range": headerAbsent}},
	{name: "malformed reversed", hdr: rng("bytes=5-1"), status: 200, body: segment, want: map[string]string{"Content-Range": headerAbsent}},
	{name: "malformed signed", hdr: rng("bytes=-1-5"), status: 200, body: segment},
	{name: "malformed no dash", hdr: rng("bytes=5"), status: 200, body: segment},
	{name: "malformed overflow", hdr: rng("bytes=99999999999999999999-"), status: 200, body: segment},
	{name: "multi-range", hdr: rng("bytes=0-1,5-6"), status: 200, body: segment,
		want: map[string]string{"Content-Range": headerAbsent, "Content-Type": "video/iso.segment"}},
	{name: "other unit", hdr: rng("items=0-5"), status: 200, body: segment},

	// HEAD (TestHeadMatchesGet compares every header with GET's).
	{name: "HEAD", method: "HEAD", status: 200, empty: true, ctype: "video/iso.segment",
		want: map[string]string{"Content-Length": "1000"}},
	{name: "HEAD missing", method: "HEAD", path: "/hls/abc/v1/720p/seg_99999.m4s", status: 404, empty: true},

	// CORS for browser players.
	{name: "CORS on GET", hdr: map[string]string{"Origin": "https://player.example"}, status: 200, body: segment,
		has: map[string][]string{"Access-Control-Expose-Headers": {"Content-Range", "ETag", "Content-Length"}}},
	{name: "CORS on 404", path: "/hls/abc/v1/720p/seg_99999.m4s", hdr: map[string]string{"Origin": "https://player.example"},
		status: 404, has: map[string][]string{"Access-Control-Expose-Headers": {"Content-Range", "ETag"}}},
	{name: "preflight", method: "OPTIONS", status: 204, empty: true,
		hdr: map[string]string{"Origin": "https://player.example", "Access-Control-Request-Method": "GET",
			"Access-Control-Request-Headers": "range"},
		has:   map[string][]string{"Access-Control-Allow-Methods": {"GET", "HEAD", "OPTIONS"}, "Access-Control-Allow-Headers": {"Range"}},
		check: maxAge},
	{name: "preflight entry point", method: "OPTIONS", path: "/hls/abc/master.m3u8", status: 204, empty: true,
		hdr: map[string]string{"Origin": "https://player.example", "Access-Control-Request-Method": "GET"},
		has: map[string][]string{"Access-Control-Allow-Methods": {"GET", "HEAD"}}, check: maxAge},

	// Errors.
	{name: "404 missing object", path: "/hls/abc/v1/720p/seg_99999.m4s", status: 404},
	{name: "404 missing version", path: "/hls/abc/v7/master.m3u8", status: 404},
	{name: "404 unknown lecture", path: "/hls/zzz/v1/master.m3u8", status: 404},
	{name: "405 POST", method: "POST", status: 405, has: map[string][]string{"Allow": {"GET", "HEAD", "OPTIONS"}}},
	{name: "405 PUT", method: "PUT", status: 405, has: map[string][]string{"Allow": {"GET", "HEAD", "OPTIONS"}}},
	{name: "405 DELETE", method: "DELETE", status: 405, has: map[string][]string{"Allow": {"GET", "HEAD", "OPTIONS"}}},
	{name: "405 POST entry point", method: "POST", path: "/hls/abc/master.m3u8", status: 405,
		has: map[string][]string{"Allow": {"GET", "HEAD", "OPTIONS"}}},

	// The unversioned entry point: a short-lived redirect to the newest published version.
	{name: "entry point", path: "/hls/abc/master.m3u8", status: 302,
		want: map[string]string{"Location": "v2/master.m3u8", "Cache-Control": wantEntryCC, "CDN-Cache-Control": wantEntryCDNCC}},
	{name: "entry point HEAD", method: "HEAD", path: "/hls/abc/master.m3u8", status: 302, empty: true,
		want: map[string]string{"Location": "v2/master.m3u8", "Cache-Control": wantEntryCC, "CDN-Cache-Control": wantEntryCDNCC}},
	{name: "entry point numeric order", path: "/hls/num/master.m3u8", status: 302,
		want: map[string]string{"Location": "v10/master.m3u8"}},
	{name: "entry point skips a version without master", path: "/hls/partial/master.m3u8", status: 302,
		want: map[string]string{"Location": "v1/master.m3u8"}},
	{name: "entry point unknown lecture", path: "/hls/zzz/master.m3u8", status: 404},
}

func rng(v string) map[string]string { return map[string]string{"Range": v} }

func maxAge(t *testing.T, h http.Header) {
	t.Helper()
	if v := h.Get("Access-Control-Max-Age"); !positiveInt(v) {
		t.Errorf("Access-Control-Max-Age %q: preflights would repeat for every segment", v)
	}
}

func positiveInt(s string) bool {
	n, err := strconv.Atoi(s)
	return err == nil && n > 0
}

// TestHeaders runs headerCases against file storage and MinIO, each through an origin with its hot
// cache and one without (every request a storage read).
func TestHeaders(t *testing.T) {
	eachStore(t, func(t *testing.T, b *objstore.Bucket) {
		for _, mode := range []struct {
			name string
			hot  int64
		}{{"hot", 0}, {"nohot", -1}} {
			t.Run(mode.name, func(t *testing.T) {
				ts, _ := newOrigin(t, Config{Store: b, HotBytes: mode.hot})
				for _, tc := range headerCases {
					t.Run(tc.name, func(t *testing.T) { runHeaderCase(t, ts.URL, tc) })
				}
			})
		}
	})
}

var versioned = regexp.MustCompile(`^/hls/[a-z0-9]+/v[1-9][0-9]*/`)

func runHeaderCase(t *testing.T, base string, tc headerCase) {
	if tc.method == "" {
		tc.method = http.MethodGet
	}
	if tc.path == "" {
		tc.path = segPath
	}
	var etag, lastMod string
	if needsValidators(tc) {
		resp, body := fetch(t, base, http.MethodGet, tc.path, nil)
		if resp.StatusCode != http.StatusOK || len(body) == 0 {
			t.Fatalf("plain GET before: status %d", resp.StatusCode)
		}
		etag, lastMod = resp.Header.Get("Etag"), resp.Header.Get("Last-Modified")
	}
	hdr := map[string]string{}
	for k, v := range tc.hdr {
		hdr[k] = expand(t, v, etag, lastMod)
	}
	resp, body := fetch(t, base, tc.method, tc.path, hdr)
	if resp.StatusCode != tc.status {
		t.Fatalf("status %d, want %d (body %.80q)", resp.StatusCode, tc.status, body)
	}
	h := resp.Header
	checkCommon(t, tc, h, body)
	if tc.empty && len(body) != 0 {
		t.Errorf("%d body bytes, want none", len(body))
	}
	if tc.body != nil && !bytes.Equal(body, tc.body) {
		t.Errorf("body %.60q (%d bytes), want %.60q (%d bytes)", body, len(body), tc.body, len(tc.body))
	}
	if tc.ctype != "" {
		checkMediaType(t, h.Get("Content-Type"), tc.ctype)
	}
	for k, v := range tc.want {
		got, ok := h[http.CanonicalHeaderKey(k)]
		switch {
		case v == headerAbsent && ok:
			t.Errorf("%s: %q, want none", k, got)
		case v != headerAbsent && h.Get(k) != v:
			t.Errorf("%s: %q, want %q", k, h.Get(k), v)
		}
	}
	for k, items := range tc.has {
		for _, item := range items {
			if !listHas(h.Values(k), item) {
				t.Errorf("%s: %q lacks %s", k, h.Values(k), item)
			}
		}
	}
	if tc.status == http.StatusNotModified {
		if got := h.Get("Etag"); got != etag {
			t.Errorf("304 ETag %q, the 200 had %q", got, etag)
		}
	}
	if tc.check != nil {
		tc.check(t, h)
	}
}

// checkCommon checks what every /hls/ response must have.
func checkCommon(t *testing.T, tc headerCase, h http.Header, body []byte) {
	t.Helper()
	if v, ok := h["Vary"]; ok {
		t.Errorf("Vary %q: nothing the origin answers varies by request header", v)
	}
	if got := h.Get("Access-Control-Allow-Origin"); got != "*" {
		t.Errorf("Access-Control-Allow-Origin %q, want *", got)
	}
	if tc.method == http.MethodGet && (tc.status == 200 || tc.status == 206) {
		if cl := h.Get("Content-Length"); cl != strconv.Itoa(len(body)) {
			t.Errorf("Content-Length %q for %d body bytes", cl, len(body))
		}
	}
	switch {
	case tc.status == http.StatusNotFound:
		if cc := h.Get("Cache-Control"); cc != wantNotFoundCC {
			t.Errorf("404 Cache-Control %q, want %q", cc, wantNotFoundCC)
		}
	case versioned.MatchString(tc.path) && (tc.status == 200 || tc.status == 206 || tc.status == 304):
		if cc := h.Get("Cache-Control"); cc != wantImmutable {
			t.Errorf("Cache-Control %q, want %q", cc, wantImmutable)
		}
		if et := h.Get("Etag"); len(et) < 3 || et[0] != '"' || et[len(et)-1] != '"' {
			t.Errorf("ETag %q is not a strong entity tag", et)
		}
		if tc.status == 304 {
			return
		}
		if ar := h.Get("Accept-Ranges"); ar != "bytes" {
			t.Errorf("Accept-Ranges %q", ar)
		}
		lm, err := http.ParseTime(h.Get("Last-Modified"))
		if err != nil {
			t.Errorf("Last-Modified %q: %v", h.Get("Last-Modified"), err)
		} else if now := time.Now(); lm.After(now.Add(time.Minute)) || lm.Before(now.Add(-time.Hour)) {
			t.Errorf("Last-Modified %v is not when the object was stored", lm)
		}
	}
}

func needsValidators(tc headerCase) bool {
	if tc.status == http.StatusNotModified {
		return true
	}
	for _, v := range tc.hdr {
		if strings.Contains(v, "$") {
			return true
		}
	}
	return false
}

func expand(t *testing.T, v, etag, lastMod string) string {
	if !strings.Contains(v, "$") {
		return v
	}
	lm, err := http.ParseTime(lastMod)
	if err != nil {
		t.Fatalf("the 200 before had Last-Modified %q: %v", lastMod, err)
	}
	return strings.NewReplacer(
		"$etag", etag,
		"$lastmod", lastMod,
		"$earlier", lm.Add(-time.Hour).Format(http.TimeFormat),
		"$later", lm.Add(time.Hour).Format(http.TimeFormat),
	).Replace(v)
}

func checkMediaType(t *testing.T, ct, want string) {
	t.Helper()
	mt, params, err := mime.ParseMediaType(ct)
	if err != nil || mt != want {
		t.Errorf("Content-Type %q, want %s", ct, want)
		return
	}
	if cs, ok := params["charset"]; ok && !strings.EqualFold(cs, "utf-8") {
		t.Errorf("Content-Type %q: charset is not UTF-8", ct)
	}
}

// listHas reports whether a comma-separated header holds item, case-insensitively.
func listHas(values []string, item string) bool {
	for _, v := range values {
		for e := range strings.SplitSeq(v, ",") {
			if strings.EqualFold(strings.TrimSpace(e), item) {
				return true
			}
		}
	}
	return false
}

// TestHeadMatchesGet: HEAD answers with exactly GET's headers (Date aside) and no body.
func TestHeadMatchesGet(t *testing.T) {
	eachStore(t, func(t *testing.T, b *objstore.Bucket) {
		ts, _ := newOrigin(t, Config{Store: b})
		for _, p := range []string{segPath, "/hls/abc/v1/master.m3u8", "/hls/abc/v1/subs/en.vtt",
			"/hls/abc/v1/poster.jpg", "/hls/abc/v1/720p/seg_99999.m4s", "/hls/abc/master.m3u8", "/hls/zzz/master.m3u8"} {
			get, _ := do(t, ts, http.MethodGet, p, nil)
			head, body := do(t, ts, http.MethodHead, p, nil)
			if head.StatusCode != get.StatusCode || len(body) != 0 {
				t.Errorf("%s: HEAD %d with %d body bytes, GET %d", p, head.StatusCode, len(body), get.StatusCode)
			}
			keys := map[string]bool{}
			for k := range get.Header {
				keys[k] = true
			}
			for k := range head.Header {
				keys[k] = true
			}
			for k := range keys {
				if k == "Date" {
					continue
				}
				if g, h := get.Header.Values(k), head.Header.Values(k); !slices.Equal(g, h) {
					t.Errorf("%s: %s: GET %q, HEAD %q", p, k, g, h)
				}
			}
		}
	})
}

// TestEntryPointLeadsToNewest follows the entry point's relative Location as a player does.
func TestEntryPointLeadsToNewest(t *testing.T) {
	eachStore(t, func(t *testing.T, b *objstore.Bucket) {
		ts, _ := newOrigin(t, Config{Store: b})
		resp, _ := do(t, ts, http.MethodGet, "/hls/abc/master.m3u8", nil)
		if resp.StatusCode != http.StatusFound {
			t.Fatalf("status %d", resp.StatusCode)
		}
		loc, err := resp.Request.URL.Parse(resp.Header.Get("Location"))
		if err != nil {
			t.Fatal(err)
		}
		if loc.Path != "/hls/abc/v2/master.m3u8" {
			t.Fatalf("Location resolves to %s", loc.Path)
		}
		resp, body := do(t, ts, http.MethodGet, loc.Path, nil)
		if resp.StatusCode != http.StatusOK || !bytes.Equal(body, masterOf("v2")) {
			t.Fatalf("newest master: %d %q", resp.StatusCode, body)
		}
	})
}
