package cdn

import (
	"bytes"
	"net/http"
	"strings"
	"testing"
	"time"
)

func TestParseCacheControl(t *testing.T) {
	h := http.Header{}
	h.Add("Cache-Control", `Public, max-age=60, private="Set-Cookie, X-A"`)
	h.Add("Cache-Control", `s-maxage="30", max-age=5, no-cache`)
	d := parseCacheControl(h)
	want := directives{"public": "", "max-age": "60", "private": "Set-Cookie, X-A", "s-maxage": "30", "no-cache": ""}
	if len(d) != len(want) {
		t.Fatalf("got %v, want %v", d, want)
	}
	for k, v := range want {
		if d[k] != v {
			t.Errorf("%s = %q, want %q", k, d[k], v)
		}
	}
	for v, want := range map[string]time.Duration{"10": 10 * time.Second, "": 0, "-1": 0, "1.5": 0,
		"99999999999": maxDelta} {
		if got := parseDeltaSeconds(v); got != want {
			t.Errorf("parseDeltaSeconds(%q) = %v, want %v", v, got, want)
		}
	}
}

func TestDecide(t *testing.T) {
	now := time.Date(2025, 3, 1, 12, 0, 0, 0, time.UTC)
	date := now.Format(http.TimeFormat)
	tests := []struct {
		name     string
		status   int
		hdr      []string
		auth     bool
		store    bool
		share    bool
		lifetime time.Duration
	}{
		{"max-age", 200, []string{"Cache-Control", "max-age=60"}, false, true, true, time.Minute},
		{"s-maxage wins", 200, []string{"Cache-Control", "max-age=60, s-maxage=5"}, false, true, true, 5 * time.Second},
		{"expires", 200, []string{"Date", date, "Expires", now.Add(time.Hour).Format(http.TimeFormat)}, false, true, true, time.Hour},
		{"max-age over expires", 200, []string{"Cache-Control", "max-age=1", "Expires", now.Add(time.Hour).Format(http.TimeFormat)}, false, true, true, time.Second},
		{"bad expires", 200, []string{"Expires", "0"}, false, false, false, 0},
		{"no freshness", 200, nil, false, false, false, 0},
		{"max-age=0", 200, []string{"Cache-Control", "max-age=0"}, false, false, false, 0},
		{"bad max-age", 200, []string{"Cache-Control", "max-age=soon"}, false, false, false, 0},
		{"no-store", 200, []string{"Cache-Control", "max-age=60, no-store"}, false, false, false, 0},
		{"private", 200, []string{"Cache-Control", "private, max-age=60"}, false, false, false, 0},
		{"qualified private", 200, []string{"Cache-Control", `private="X", max-age=60`}, false, false, false, 0},
		{"no-cache", 200, []string{"Cache-Control", "no-cache, max-age=60"}, false, false, false, 0},
		{"set-cookie", 200, []string{"Cache-Control", "max-age=60", "Set-Cookie", "a=b"}, false, false, false, 0},
		{"vary star", 200, []string{"Cache-Control", "max-age=60", "Vary", "Accept, *"}, false, false, false, 0},
		{"vary field", 200, []string{"Cache-Control", "max-age=60", "Vary", "Accept-Encoding"}, false, true, true, time.Minute},
		{"auth", 200, []string{"Cache-Control", "max-age=60"}, true, false, false, 0},
		{"auth public", 200, []string{"Cache-Control", "public, max-age=60"}, true, true, true, time.Minute},
		{"auth s-maxage", 200, []string{"Cache-Control", "s-maxage=60"}, true, true, true, time.Minute},
		{"auth must-revalidate", 200, []string{"Cache-Control", "must-revalidate, max-age=60"}, true, true, true, time.Minute},
		{"404 stored", 404, []string{"Cache-Control", "max-age=10"}, false, true, true, 10 * time.Second},
		{"410 stored", 410, []string{"Cache-Control", "max-age=10"}, false, true, true, 10 * time.Second},
		{"301 stored", 301, []string{"Cache-Control", "max-age=600", "Location", "/x"}, false, true, true, 10 * time.Minute},
		{"302 stored", 302, []string{"Cache-Control", "max-age=5", "Location", "/x"}, false, true, true, 5 * time.Second},
		{"302 without freshness", 302, []string{"Location", "/x"}, false, false, false, 0},
		{"500 with freshness shared not stored", 500, []string{"Cache-Control", "max-age=60"}, false, false, true, 0},
		{"403 shared not stored", 403, []string{"Cache-Control", "max-age=60"}, false, false, true, 0},
		{"cdn max-age over cache-control", 200, []string{"Cache-Control", "public, max-age=5", "Cdn-Cache-Control", "max-age=60"}, false, true, true, time.Minute},
		{"cdn no-store", 200, []string{"Cache-Control", "max-age=60", "Cdn-Cache-Control", "no-store"}, false, false, false, 0},
		{"cdn overrides cc no-store", 200, []string{"Cache-Control", "no-store", "Cdn-Cache-Control", "max-age=600"}, false, true, true, 10 * time.Minute},
		{"cdn private", 200, []string{"Cache-Control", "public, max-age=60", "Cdn-Cache-Control", "private, max-age=60"}, false, false, false, 0},
		{"cdn no-cache", 200, []string{"Cache-Control", "max-age=60", "Cdn-Cache-Control", "no-cache, max-age=60"}, false, false, false, 0},
		{"cdn s-maxage", 200, []string{"Cdn-Cache-Control", "max-age=60, s-maxage=30"}, false, true, true, 30 * time.Second},
		{"cdn ignores expires", 200, []string{"Date", date, "Expires", now.Add(time.Hour).Format(http.TimeFormat), "Cdn-Cache-Control", "public"}, false, false, false, 0},
		{"cdn without cc or expires", 200, []string{"Cdn-Cache-Control", "max-age=60"}, false, true, true, time.Minute},
		{"cdn last duplicate wins", 200, []string{"Cdn-Cache-Control", "max-age=5, max-age=60"}, false, true, true, time.Minute},
		{"cdn lines combine", 200, []string{"Cdn-Cache-Control", "max-age=60", "Cdn-Cache-Control", "private"}, false, false, false, 0},
		{"cdn boolean false", 200, []string{"Cdn-Cache-Control", "no-store=?0, max-age=60"}, false, true, true, time.Minute},
		{"cdn none", 200, []string{"Cache-Control", "no-store", "Cdn-Cache-Control", "none"}, false, false, false, 0},
		{"cdn invalid falls back", 200, []string{"Cache-Control", "max-age=5", "Cdn-Cache-Control", "Max-Age=60"}, false, true, true, 5 * time.Second},
		{"cdn empty falls back", 200, []string{"Cache-Control", "max-age=5", "Cdn-Cache-Control", ""}, false, true, true, 5 * time.Second},
		{"cdn decimal is stale", 200, []string{"Cache-Control", "max-age=60", "Cdn-Cache-Control", "max-age=1.5"}, false, false, false, 0},
		{"cdn 302", 302, []string{"Cache-Control", "max-age=5", "Cdn-Cache-Control", "public, max-age=30, stale-while-revalidate=60", "Location", "v2/master.m3u8"}, false, true, true, 30 * time.Second},
		{"auth cdn public", 200, []string{"Cache-Control", "max-age=60", "Cdn-Cache-Control", "public, max-age=60"}, true, true, true, time.Minute},
		{"auth cdn not public", 200, []string{"Cache-Control", "public, max-age=60", "Cdn-Cache-Control", "max-age=60"}, true, false, false, 0},
		{"404 without freshness", 404, nil, false, false, false, 0},
		{"206 not shared", 206, []string{"Cache-Control", "max-age=60"}, false, false, false, time.Minute},
		{"503 shared", 503, nil, false, false, true, 0},
		{"503 no-store shared", 503, []string{"Cache-Control", "no-store"}, false, false, true, 0},
		{"503 private", 503, []string{"Cache-Control", "private"}, false, false, false, 0},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			h := http.Header{}
			for i := 0; i < len(tc.hdr); i += 2 {
				h.Add(tc.hdr[i], tc.hdr[i+1])
			}
			req, _ := http.NewRequest("GET", "http://edge/x", nil)
			if tc.auth {
				req.Header.Set("Authorization", "Bearer t")
			}
			d := decide(req, tc.status, h, now)
			if d.store != tc.store || d.share != tc.share || (tc.store && d.lifetime != tc.lifetime) {
				t.Errorf("store %v share %v lifetime %v (%s); want %v %v %v", d.store, d.share, d.lifetime, d.why,
					tc.store, tc.share, tc.lifetime)
			}
			if !d.store && d.why == "" {
				t.Error("not stored, but no reason given")
			}
		})
	}
}

func TestTargetedDirectives(t *testing.T) {
	for _, tc := range []struct {
		field string
		want  directives // nil: ignored (absent, empty or invalid)
	}{
		{"max-age=60", directives{"max-age": "60"}},
		{"  public,max-age=60 ,  stale-while-revalidate=30\t", directives{"public": "", "max-age": "60", "stale-while-revalidate": "30"}},
		{`private="set-cookie"`, directives{"private": "set-cookie"}},
		{`no-cache="a\"b"`, directives{"no-cache": `a"b`}},
		{"no-store=?1", directives{"no-store": ""}},
		{"no-store=?0", nil},
		{"max-age=60;foo=bar;baz", directives{"max-age": "60"}},
		{"no-cache=(a b);p", directives{"no-cache": ""}},
		{"x=:aGk=:, max-age=-5", directives{"x": "aGk=", "max-age": "-5"}},
		{"max-age=1.25", directives{"max-age": "1.25"}},
		{"x=tok/en:1", directives{"x": "tok/en:1"}},
		{"*ext=1", directives{"*ext": "1"}},
		{"", nil},
		{"   ", nil},
		{"Max-Age=60", nil},
		{"max-age=60,", nil},
		{",max-age=60", nil},
		{"max-age=60;", nil},
		{"max-age=60 public", nil},
		{"max-age==60", nil},
		{`private="unterminated`, nil},
		{`private="bad\escape"`, nil},
		{"max-age=1234567890123456", nil},
		{"max-age=1.2345", nil},
		{"max-age=1.", nil},
		{"x=?2", nil},
		{"x=:not base64!:", nil},
		{"x=(a", nil},
		{"max-age=60, private=\"x\"", directives{"max-age": "60", "private": "x"}},
	} {
		h := http.Header{}
		h.Set("CDN-Cache-Control", tc.field)
		got, ok := targetedDirectives(h)
		if ok != (tc.want != nil) || len(got) != len(tc.want) {
			t.Errorf("%q: %v (ok %v), want %v", tc.field, got, ok, tc.want)
			continue
		}
		for k, v := range tc.want {
			if g, present := got[k]; !present || g != v {
				t.Errorf("%q: %s = %q, want %q", tc.field, k, g, v)
			}
		}
	}
	if _, ok := targetedDirectives(http.Header{}); ok {
		t.Error("an absent field was used")
	}
}

func TestEndToEnd(t *testing.T) {
	h := http.Header{}
	for k, v := range map[string]string{"Connection": "X-A, x-b", "X-A": "1", "X-B": "2", "X-C": "3",
		"Keep-Alive": "5", "Te": "trailers", "Trailer": "X-T", "Transfer-Encoding": "chunked", "Upgrade": "h2c",
		"Proxy-Authorization": "x", "Proxy-Connection": "keep-alive"} {
		h.Set(k, v)
	}
	out := endToEnd(h)
	if len(out) != 1 || out.Get("X-C") != "3" {
		t.Errorf("endToEnd kept %v", out)
	}
	if h.Get("X-A") != "1" {
		t.Error("endToEnd modified its input")
	}
}

func TestJoinPath(t *testing.T) {
	for _, tc := range [][3]string{
		{"", "/a", "/a"}, {"/", "/a", "/a"}, {"/base", "/a", "/base/a"}, {"/base/", "/a", "/base/a"},
		{"/base", "a", "/base/a"},
	} {
		if got := joinPath(tc[0], tc[1]); got != tc[2] {
			t.Errorf("joinPath(%q, %q) = %q, want %q", tc[0], tc[1], got, tc[2])
		}
	}
}

func TestReadUpTo(t *testing.T) {
	data := bytes.Repeat([]byte("x"), 100)
	for _, tc := range []struct {
		declared, limit int64
		complete        bool
	}{
		{100, 100, true}, {-1, 100, true}, {-1, 99, false}, {-1, 1000, true},
	} {
		got, complete, err := readUpTo(bytes.NewReader(data), tc.declared, tc.limit)
		if err != nil || complete != tc.complete {
			t.Errorf("%+v: complete %v, err %v", tc, complete, err)
		}
		if complete && !bytes.Equal(got, data) {
			t.Errorf("%+v: %d bytes", tc, len(got))
		}
		if !complete && int64(len(got)) != tc.limit+1 {
			t.Errorf("%+v: prefix of %d bytes", tc, len(got))
		}
	}
	if _, _, err := readUpTo(strings.NewReader("short"), 100, 1000); err == nil {
		t.Error("a body shorter than its Content-Length was accepted")
	}
}
