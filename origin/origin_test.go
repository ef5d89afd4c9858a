package origin

import (
	"bytes"
	"context"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/lectern/lectern/internal/objstore"
	"github.com/prometheus/client_golang/prometheus"
)

// countingStore counts storage calls, so tests can prove that a request never reached storage or
// that HEAD never opened a body.
type countingStore struct {
	Store
	gets, ranges, heads, pings atomic.Int64
}

func (c *countingStore) Get(ctx context.Context, key string) (io.ReadCloser, objstore.Attrs, error) {
	c.gets.Add(1)
	return c.Store.Get(ctx, key)
}

func (c *countingStore) GetRange(ctx context.Context, key string, off, n int64) (io.ReadCloser, objstore.Attrs, error) {
	c.ranges.Add(1)
	return c.Store.GetRange(ctx, key, off, n)
}

func (c *countingStore) Head(ctx context.Context, key string) (objstore.Attrs, error) {
	c.heads.Add(1)
	return c.Store.Head(ctx, key)
}

func (c *countingStore) Ping(ctx context.Context) error {
	c.pings.Add(1)
	return c.Store.Ping(ctx)
}

func (c *countingStore) total() int64 {
	return c.gets.Load() + c.ranges.Load() + c.heads.Load()
}

// downStore fails every call the way an unreachable S3 would.
type downStore struct{}

var errDown = errors.New("connection refused")

func (downStore) Get(context.Context, string) (io.ReadCloser, objstore.Attrs, error) {
	return nil, objstore.Attrs{}, errDown
}

func (downStore) GetRange(context.Context, string, int64, int64) (io.ReadCloser, objstore.Attrs, error) {
	return nil, objstore.Attrs{}, errDown
}
func (downStore) Head(context.Context, string) (objstore.Attrs, error) {
	return objstore.Attrs{}, errDown
}
func (downStore) Ping(context.Context) error { return errDown }

var segment = bytes.Repeat([]byte("0123456789"), 100) // 1000 bytes, position-identifiable

const playlist = "#EXTM3U\n#EXT-X-VERSION:7\n#EXTINF:4.0,\nseg_00001.m4s\n#EXT-X-ENDLIST\n"

// newTestOrigin returns an origin over a real file bucket holding a small published lecture.
func newTestOrigin(t *testing.T) (*httptest.Server, *Server, *countingStore) {
	t.Helper()
	ctx := context.Background()
	b, err := objstore.Open(ctx, "file://"+t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { b.Close() })
	put := func(key string, data []byte, ct string) {
		if err := b.PutBytes(ctx, key, data, objstore.PutOptions{ContentType: ct}); err != nil {
			t.Fatal(err)
		}
	}
	put("hls/abc123/v1/720p/index.m3u8", []byte(playlist), "")
	put("hls/abc123/v1/720p/seg_00001.m4s", segment, "")
	put("hls/abc123/v1/720p/init.mp4", []byte("ftypinit"), "")
	put("hls/abc123/v1/audio/init.mp4", []byte("ftypaudio"), "audio/mp4")
	put("hls/abc123/v1/subs/en.vtt", []byte("WEBVTT\n"), "")
	put("hls/abc123/v1/poster.jpg", []byte("\xff\xd8\xff"), "")
	put("hls/abc123/v1/empty.m4s", nil, "")

	cs := &countingStore{Store: b}
	srv := New(Config{Store: cs, Logger: slog.New(slog.DiscardHandler)})
	ts := httptest.NewServer(srv)
	t.Cleanup(ts.Close)
	return ts, srv, cs
}

func do(t *testing.T, ts *httptest.Server, method, path string, hdr map[string]string) (*http.Response, []byte) {
	t.Helper()
	req, err := http.NewRequest(method, ts.URL+path, nil)
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	resp, err := ts.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp, body
}

func TestGetHeaders(t *testing.T) {
	ts, _, _ := newTestOrigin(t)
	tests := []struct {
		path, ctype string
		body        []byte
	}{
		{"/hls/abc123/v1/720p/index.m3u8", "application/vnd.apple.mpegurl", []byte(playlist)},
		{"/hls/abc123/v1/720p/seg_00001.m4s", "video/iso.segment", segment},
		{"/hls/abc123/v1/720p/init.mp4", "video/mp4", []byte("ftypinit")},
		{"/hls/abc123/v1/audio/init.mp4", "audio/mp4", []byte("ftypaudio")},
		{"/hls/abc123/v1/subs/en.vtt", "text/vtt", []byte("WEBVTT\n")},
		{"/hls/abc123/v1/poster.jpg", "image/jpeg", []byte("\xff\xd8\xff")},
	}
	for _, tc := range tests {
		t.Run(tc.path, func(t *testing.T) {
			resp, body := do(t, ts, http.MethodGet, tc.path, nil)
			if resp.StatusCode != http.StatusOK {
				t.Fatalf("status %d", resp.StatusCode)
			}
			if !bytes.Equal(body, tc.body) {
				t.Errorf("body %q, want %q", body, tc.body)
			}
			want := map[string]string{
				"Content-Type":                  tc.ctype,
				"Cache-Control":                 "public, max-age=31536000, immutable",
				"Accept-Ranges":                 "bytes",
				"Access-Control-Allow-Origin":   "*",
				"Access-Control-Expose-Headers": "Content-Length, Content-Range, ETag, Age",
				"Content-Length":                itoa(int64(len(tc.body))),
			}
			for k, v := range want {
				if got := resp.Header.Get(k); got != v {
					t.Errorf("%s = %q, want %q", k, got, v)
				}
			}
			if et := resp.Header.Get("Etag"); len(et) < 3 || et[0] != '"' || et[len(et)-1] != '"' {
				t.Errorf("ETag %q is not a strong quoted tag", et)
			}
			if _, err := http.ParseTime(resp.Header.Get("Last-Modified")); err != nil {
				t.Errorf("Last-Modified: %v", err)
			}
		})
	}
}

func TestConditional(t *testing.T) {
	ts, _, _ := newTestOrigin(t)
	const path = "/hls/abc123/v1/720p/seg_00001.m4s"
	first, _ := do(t, ts, http.MethodGet, path, nil)
	etag, lastMod := first.Header.Get("Etag"), first.Header.Get("Last-Modified")
	lm, _ := http.ParseTime(lastMod)
	tests := []struct {
		name   string
		method string
		hdr    map[string]string
		want   int
	}{
		{"etag", "GET", map[string]string{"If-None-Match": etag}, 304},
		{"weak etag", "GET", map[string]string{"If-None-Match": "W/" + etag}, 304},
		{"etag list", "GET", map[string]string{"If-None-Match": `"nope", ` + etag}, 304},
		{"star", "GET", map[string]string{"If-None-Match": "*"}, 304},
		{"other etag", "GET", map[string]string{"If-None-Match": `"nope"`}, 200},
		{"ims equal", "GET", map[string]string{"If-Modified-Since": lastMod}, 304},
		{"ims later", "GET", map[string]string{"If-Modified-Since": lm.Add(time.Hour).Format(http.TimeFormat)}, 304},
		{"ims earlier", "GET", map[string]string{"If-Modified-Since": lm.Add(-time.Hour).Format(http.TimeFormat)}, 200},
		// If-None-Match wins over If-Modified-Since (RFC 9110 §13.2.2).
		{"inm beats ims", "GET", map[string]string{"If-None-Match": `"nope"`, "If-Modified-Since": lastMod}, 200},
		{"head etag", "HEAD", map[string]string{"If-None-Match": etag}, 304},
		{"if-match ok", "GET", map[string]string{"If-Match": etag}, 200},
		{"if-match fails", "GET", map[string]string{"If-Match": `"nope"`}, 412},
		{"ius fails", "GET", map[string]string{"If-Unmodified-Since": lm.Add(-time.Hour).Format(http.TimeFormat)}, 412},
		{"range and etag", "GET", map[string]string{"If-None-Match": etag, "Range": "bytes=0-9"}, 304},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			resp, body := do(t, ts, tc.method, path, tc.hdr)
			if resp.StatusCode != tc.want {
				t.Fatalf("status %d, want %d", resp.StatusCode, tc.want)
			}
			if tc.want == 304 {
				if len(body) != 0 {
					t.Errorf("304 with a body of %d bytes", len(body))
				}
				if resp.Header.Get("Etag") != etag || resp.Header.Get("Cache-Control") == "" {
					t.Errorf("304 lacks validators: %v", resp.Header)
				}
			}
		})
	}
}

func TestRange(t *testing.T) {
	ts, _, cs := newTestOrigin(t)
	const path = "/hls/abc123/v1/720p/seg_00001.m4s"
	first, _ := do(t, ts, http.MethodGet, path, nil)
	tests := []struct {
		name, rng, ifRange string
		want               int
		contentRange       string
		body               []byte
	}{
		{"first bytes", "bytes=0-99", "", 206, "bytes 0-99/1000", segment[:100]},
		{"open", "bytes=990-", "", 206, "bytes 990-999/1000", segment[990:]},
		{"suffix", "bytes=-5", "", 206, "bytes 995-999/1000", segment[995:]},
		{"suffix larger than object", "bytes=-5000", "", 206, "bytes 0-999/1000", segment},
		{"clamped end", "bytes=900-5000", "", 206, "bytes 900-999/1000", segment[900:]},
		{"unit case", " Bytes=1-2", "", 206, "bytes 1-2/1000", segment[1:3]},
		{"if-range etag", "bytes=0-9", first.Header.Get("Etag"), 206, "bytes 0-9/1000", segment[:10]},
		{"if-range date", "bytes=0-9", first.Header.Get("Last-Modified"), 206, "bytes 0-9/1000", segment[:10]},
		{"if-range stale", "bytes=0-9", `"old"`, 200, "", segment},
		{"past end", "bytes=1000-", "", 416, "bytes */1000", nil},
		{"far past end", "bytes=5000-6000", "", 416, "bytes */1000", nil},
		{"empty suffix", "bytes=-0", "", 416, "bytes */1000", nil},
		{"malformed", "bytes=abc", "", 200, "", segment},
		{"reversed", "bytes=5-1", "", 200, "", segment},
		{"multi", "bytes=0-1,5-6", "", 200, "", segment},
		{"other unit", "items=0-5", "", 200, "", segment},
		{"signed", "bytes=-1-5", "", 200, "", segment},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			hdr := map[string]string{"Range": tc.rng}
			if tc.ifRange != "" {
				hdr["If-Range"] = tc.ifRange
			}
			resp, body := do(t, ts, http.MethodGet, path, hdr)
			if resp.StatusCode != tc.want {
				t.Fatalf("status %d, want %d", resp.StatusCode, tc.want)
			}
			if got := resp.Header.Get("Content-Range"); got != tc.contentRange {
				t.Errorf("Content-Range %q, want %q", got, tc.contentRange)
			}
			if tc.body != nil && !bytes.Equal(body, tc.body) {
				t.Errorf("body of %d bytes, want %d", len(body), len(tc.body))
			}
		})
	}
	t.Run("empty object", func(t *testing.T) {
		resp, _ := do(t, ts, http.MethodGet, "/hls/abc123/v1/empty.m4s", map[string]string{"Range": "bytes=0-"})
		if resp.StatusCode != 416 || resp.Header.Get("Content-Range") != "bytes */0" {
			t.Fatalf("status %d, Content-Range %q", resp.StatusCode, resp.Header.Get("Content-Range"))
		}
	})
	t.Run("ranged read", func(t *testing.T) {
		before := cs.gets.Load()
		do(t, ts, http.MethodGet, path, map[string]string{"Range": "bytes=10-19"})
		if cs.gets.Load() != before {
			t.Error("a range request read the whole object")
		}
	})
}

func TestHead(t *testing.T) {
	ts, _, cs := newTestOrigin(t)
	resp, body := do(t, ts, http.MethodHead, "/hls/abc123/v1/720p/seg_00001.m4s", nil)
	if resp.StatusCode != 200 || len(body) != 0 {
		t.Fatalf("status %d, %d body bytes", resp.StatusCode, len(body))
	}
	if resp.ContentLength != int64(len(segment)) || resp.Header.Get("Etag") == "" {
		t.Errorf("Content-Length %d, ETag %q", resp.ContentLength, resp.Header.Get("Etag"))
	}
	if cs.gets.Load()+cs.ranges.Load() != 0 || cs.heads.Load() != 1 {
		t.Errorf("HEAD made %d reads and %d heads", cs.gets.Load()+cs.ranges.Load(), cs.heads.Load())
	}
	resp, _ = do(t, ts, http.MethodHead, "/hls/abc123/v1/missing.m4s", nil)
	if resp.StatusCode != 404 {
		t.Errorf("HEAD of a missing object: %d", resp.StatusCode)
	}
}

func TestMethods(t *testing.T) {
	ts, _, cs := newTestOrigin(t)
	const path = "/hls/abc123/v1/720p/index.m3u8"
	resp, _ := do(t, ts, http.MethodOptions, path, map[string]string{
		"Origin": "https://player.example", "Access-Control-Request-Method": "GET",
		"Access-Control-Request-Headers": "range",
	})
	if resp.StatusCode != http.StatusNoContent {
		t.Fatalf("preflight status %d", resp.StatusCode)
	}
	for k, v := range map[string]string{
		"Access-Control-Allow-Origin":  "*",
		"Access-Control-Allow-Methods": "GET, HEAD, OPTIONS",
		"Access-Control-Allow-Headers": "Range",
	} {
		if got := resp.Header.Get(k); got != v {
			t.Errorf("%s = %q, want %q", k, got, v)
		}
	}
	for _, m := range []string{http.MethodPost, http.MethodPut, http.MethodDelete, http.MethodPatch} {
		resp, _ := do(t, ts, m, path, nil)
		if resp.StatusCode != http.StatusMethodNotAllowed || resp.Header.Get("Allow") != "GET, HEAD, OPTIONS" {
			t.Errorf("%s: status %d, Allow %q", m, resp.StatusCode, resp.Header.Get("Allow"))
		}
	}
	if n := cs.total(); n != 0 {
		t.Errorf("OPTIONS and refused methods made %d storage calls", n)
	}
}

func TestBadPathsNeverReachStorage(t *testing.T) {
	ts, _, cs := newTestOrigin(t)
	paths := []string{
		"/",
		"/hls/",
		"/hls/abc123",
		"/hls/abc123/v1",
		"/hls/abc123/v1/",
		"/hls/ABC123/v1/720p/index.m3u8",
		"/hls/abc-123/v1/720p/index.m3u8",
		"/hls/abc123/v0/720p/index.m3u8",
		"/hls/abc123/v01/720p/index.m3u8",
		"/hls/abc123/1/720p/index.m3u8",
		"/hls/abc123/vx/720p/index.m3u8",
		"/hls/abc123/v1//index.m3u8",
		"/hls/abc123/v1/720p//index.m3u8",
		"/hls/abc123/v1/720p/",
		"/hls/abc123/v1/../v2/index.m3u8",
		"/hls/abc123/v1/720p/../../v2/x.m3u8",
		"/hls/abc123/v1/./index.m3u8",
		"/hls/abc123/v1/.hidden",
		"/hls/abc123/v1/720p/%2e%2e/x.m3u8",
		"/hls/abc123/v1/a%00b.m4s",
		"/hls/abc123/v1/a%5Cb.m4s",
		"/hls//v1/index.m3u8",
		"/hlsx/abc123/v1/index.m3u8",
		"/sources/abc123/upload",
	}
	for _, p := range paths {
		for _, m := range []string{http.MethodGet, http.MethodHead} {
			resp, _ := do(t, ts, m, p, nil)
			if resp.StatusCode != http.StatusNotFound {
				t.Errorf("%s %s: status %d, want 404", m, p, resp.StatusCode)
			}
			if cc := resp.Header.Get("Cache-Control"); cc != "public, max-age=10" {
				t.Errorf("%s %s: Cache-Control %q", m, p, cc)
			}
		}
	}
	if n := cs.total(); n != 0 {
		t.Errorf("bad paths made %d storage calls", n)
	}
}

func TestMissingObject(t *testing.T) {
	ts, srv, _ := newTestOrigin(t)
	resp, body := do(t, ts, http.MethodGet, "/hls/abc123/v9/master.m3u8", nil)
	if resp.StatusCode != 404 || resp.Header.Get("Cache-Control") != "public, max-age=10" || len(body) == 0 {
		t.Fatalf("status %d, Cache-Control %q, body %q", resp.StatusCode, resp.Header.Get("Cache-Control"), body)
	}
	if resp.Header.Get("Access-Control-Allow-Origin") != "*" {
		t.Error("404 without CORS: players cannot read the status")
	}
	if srv.Stats().StorageErrors.Load() != 0 {
		t.Error("a missing object counted as a storage error")
	}
}

func TestStorageDown(t *testing.T) {
	srv := New(Config{Store: downStore{}, Logger: slog.New(slog.DiscardHandler)})
	ts := httptest.NewServer(srv)
	defer ts.Close()
	for _, tc := range []struct {
		method string
		hdr    map[string]string
	}{
		{http.MethodGet, nil},
		{http.MethodHead, nil},
		{http.MethodGet, map[string]string{"Range": "bytes=0-9"}},
		{http.MethodGet, map[string]string{"Range": "bytes=-9"}},
	} {
		resp, _ := do(t, ts, tc.method, "/hls/abc123/v1/720p/seg_00001.m4s", tc.hdr)
		if resp.StatusCode != http.StatusServiceUnavailable || resp.Header.Get("Retry-After") != "2" {
			t.Errorf("%s %v: status %d, Retry-After %q", tc.method, tc.hdr, resp.StatusCode, resp.Header.Get("Retry-After"))
		}
		if cc := resp.Header.Get("Cache-Control"); cc != "no-store" {
			t.Errorf("503 Cache-Control %q: an outage must not be cached", cc)
		}
	}
	if got := srv.Stats().StorageErrors.Load(); got != 4 {
		t.Errorf("StorageErrors = %d, want 4", got)
	}
	resp, _ := do(t, ts, http.MethodGet, "/readyz", nil)
	if resp.StatusCode != http.StatusServiceUnavailable {
		t.Errorf("readyz with storage down: %d", resp.StatusCode)
	}
	resp, body := do(t, ts, http.MethodGet, "/healthz", nil)
	if resp.StatusCode != http.StatusOK || string(body) != "ok\n" {
		t.Errorf("healthz: %d %q", resp.StatusCode, body)
	}
}

func TestProbes(t *testing.T) {
	ts, _, cs := newTestOrigin(t)
	for _, p := range []string{"/healthz", "/readyz"} {
		resp, _ := do(t, ts, http.MethodGet, p, nil)
		if resp.StatusCode != http.StatusOK {
			t.Errorf("%s: %d", p, resp.StatusCode)
		}
	}
	if cs.pings.Load() != 1 {
		t.Errorf("readyz pinged storage %d times", cs.pings.Load())
	}
}

func TestStatsAndCollector(t *testing.T) {
	ts, srv, _ := newTestOrigin(t)
	do(t, ts, http.MethodGet, "/hls/abc123/v1/720p/seg_00001.m4s", nil)
	do(t, ts, http.MethodGet, "/hls/abc123/v1/720p/index.m3u8", nil)
	do(t, ts, http.MethodGet, "/hls/abc123/v1/720p/nope.m4s", nil)
	do(t, ts, http.MethodGet, "/healthz", nil)

	st := srv.Stats()
	if st.Requests(KindSegment, 2) != 1 || st.Requests(KindPlaylist, 2) != 1 || st.Requests(KindSegment, 4) != 1 {
		t.Errorf("requests: seg2xx=%d pl2xx=%d seg4xx=%d", st.Requests(KindSegment, 2),
			st.Requests(KindPlaylist, 2), st.Requests(KindSegment, 4))
	}
	if want := int64(len(segment) + len(playlist) + len("not found\n")); st.BytesOut.Load() != want {
		t.Errorf("BytesOut = %d, want %d", st.BytesOut.Load(), want)
	}

	reg := prometheus.NewPedanticRegistry()
	if err := reg.Register(srv.Collector()); err != nil {
		t.Fatal(err)
	}
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	found := map[string]bool{}
	for _, mf := range mfs {
		found[mf.GetName()] = true
		if mf.GetName() != "lectern_origin_requests_total" {
			continue
		}
		for _, m := range mf.Metric {
			labels := map[string]string{}
			for _, l := range m.Label {
				labels[l.GetName()] = l.GetValue()
			}
			if labels["kind"] == "segment" && labels["code"] == "2xx" && m.Counter.GetValue() != 1 {
				t.Errorf("segment 2xx = %v", m.Counter.GetValue())
			}
		}
	}
	for _, name := range []string{"lectern_origin_requests_total", "lectern_origin_bytes_out_total",
		"lectern_origin_storage_errors_total"} {
		if !found[name] {
			t.Errorf("metric %s missing", name)
		}
	}
}

func TestObjectKey(t *testing.T) {
	for p, want := range map[string]string{
		"/hls/abc123/v1/master.m3u8":               "hls/abc123/v1/master.m3u8",
		"/hls/7/v12/720p/seg_00001.m4s":            "hls/7/v12/720p/seg_00001.m4s",
		"/hls/abc/v1/thumbs/sprite-01.jpg":         "hls/abc/v1/thumbs/sprite-01.jpg",
		"/hls/abc/v1/a..b.m4s":                     "",
		"/hls/abc/v1/" + strings.Repeat("a", 1100): "",
		"/hls/abc/v1/720p/index.m3u8?x=1":          "",
		"/hls/abc/v1/" + strings.Repeat("a", 3):    "hls/abc/v1/aaa",
	} {
		got, ok := objectKey(p)
		if got != want || ok != (want != "") {
			t.Errorf("objectKey(%q) = %q, %v; want %q", p, got, ok, want)
		}
	}
}
