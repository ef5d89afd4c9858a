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
	"sync"
	"testing"
	"time"

	"github.com/lectern/lectern/internal/objstore"
	"github.com/lectern/lectern/internal/testenv"
	"github.com/lectern/lectern/transcode"
	"github.com/prometheus/client_golang/prometheus"
)

// The test lecture: what the worker publishes for lecture "abc", twice (v1 and v2, so the entry point
// has a choice), plus lectures that test how the newest version is picked, and an uploaded source the
// origin must never serve.
var (
	segment     = bytes.Repeat([]byte("0123456789"), 100) // 1000 bytes; every offset is recognisable
	initSec     = []byte("\x00\x00\x00\x18ftypiso6\x00\x00\x00\x00iso6mp41")
	vtt         = []byte("WEBVTT\n\n00:00.000 --> 00:04.000\nHello\n")
	poster      = []byte("\xff\xd8\xff\xe0\x00\x10JFIF\x00")
	sourceBytes = []byte("SECRET-SOURCE-BYTES: the teacher's upload, never served")
	playlist    = []byte("#EXTM3U\n#EXT-X-VERSION:7\n#EXT-X-TARGETDURATION:4\n#EXT-X-MAP:URI=\"init.mp4\"\n" +
		"#EXTINF:4.0,\nseg_00001.m4s\n#EXT-X-ENDLIST\n")
)

func masterOf(v string) []byte {
	return []byte("#EXTM3U\n#EXT-X-VERSION:7\n## " + v + "\n#EXT-X-STREAM-INF:BANDWIDTH=1500000,RESOLUTION=1280x720\n720p/index.m3u8\n")
}

// testObjects maps storage keys to their bytes.
var testObjects = map[string][]byte{
	"hls/abc/v1/master.m3u8":            masterOf("v1"),
	"hls/abc/v1/720p/index.m3u8":        playlist,
	"hls/abc/v1/720p/init.mp4":          initSec,
	"hls/abc/v1/720p/seg_00001.m4s":     segment,
	"hls/abc/v1/720p/empty.m4s":         {},
	"hls/abc/v1/subs/en.vtt":            vtt,
	"hls/abc/v1/poster.jpg":             poster,
	"hls/abc/v2/master.m3u8":            masterOf("v2"),
	"hls/abc/v2/720p/index.m3u8":        playlist,
	"hls/abc/v2/720p/seg_00001.m4s":     segment,
	"hls/num/v9/master.m3u8":            masterOf("v9"),
	"hls/num/v10/master.m3u8":           masterOf("v10"), // numerically newest, "v9" sorts after it as text
	"hls/partial/v1/master.m3u8":        masterOf("v1"),
	"hls/partial/v2/720p/seg_00001.m4s": segment, // v2 still publishing: no master yet
	"sources/abc/up1":                   sourceBytes,
}

// workerPutOptions returns what the worker stores with key (transcode.ObjectOptions of the name
// inside the version), so the tests see the content types players will see.
func workerPutOptions(key string) objstore.PutOptions {
	parts := strings.SplitN(key, "/", 4) // hls, lecture, version, name
	return transcode.ObjectOptions(parts[len(parts)-1])
}

// eachStore runs f against a fresh file bucket and a fresh bucket on the test MinIO, both holding
// testObjects.
func eachStore(t *testing.T, f func(t *testing.T, b *objstore.Bucket)) {
	for _, st := range []struct {
		name string
		url  func(testing.TB) string
	}{
		{"file", func(t testing.TB) string { return "file://" + t.TempDir() }},
		{"minio", testenv.S3URL},
	} {
		t.Run(st.name, func(t *testing.T) {
			f(t, openStore(t, st.url(t)))
		})
	}
}

func openStore(t testing.TB, url string) *objstore.Bucket {
	t.Helper()
	return openBucket(t, url, testObjects)
}

// openBucket opens url and stores objects in it with the worker's content types.
func openBucket(t testing.TB, url string, objects map[string][]byte) *objstore.Bucket {
	t.Helper()
	ctx := context.Background()
	b, err := objstore.Open(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { b.Close() })
	for key, data := range objects {
		if err := b.PutBytes(ctx, key, data, workerPutOptions(key)); err != nil {
			t.Fatalf("put %s: %v", key, err)
		}
	}
	return b
}

// newOrigin serves cfg over real HTTP. A nil Logger discards.
func newOrigin(t *testing.T, cfg Config) (*httptest.Server, *Server) {
	t.Helper()
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	srv, err := New(cfg)
	if err != nil {
		t.Fatalf("origin.New: %v", err)
	}
	ts := httptest.NewServer(srv)
	t.Cleanup(ts.Close)
	return ts, srv
}

// do sends one request to ts without following redirects and returns the response with its body read.
func do(t *testing.T, ts *httptest.Server, method, path string, hdr map[string]string) (*http.Response, []byte) {
	t.Helper()
	return fetch(t, ts.URL, method, path, hdr)
}

// fetch is do for a base URL rather than a test server.
func fetch(t *testing.T, base, method, path string, hdr map[string]string) (*http.Response, []byte) {
	t.Helper()
	req, err := http.NewRequest(method, base+path, nil)
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	return send(t, req)
}

// send makes one request without following redirects and reads the body.
func send(t *testing.T, req *http.Request) (*http.Response, []byte) {
	t.Helper()
	client := &http.Client{
		Timeout:       20 * time.Second,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
	resp, err := client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var buf bytes.Buffer
	if _, err := buf.ReadFrom(resp.Body); err != nil {
		t.Fatal(err)
	}
	return resp, buf.Bytes()
}

// recordingStore records every key (and List prefix) that reached storage.
type recordingStore struct {
	Store
	mu   sync.Mutex
	keys []string
}

func (r *recordingStore) record(key string) {
	r.mu.Lock()
	r.keys = append(r.keys, key)
	r.mu.Unlock()
}

// seen returns the keys recorded since the last call.
func (r *recordingStore) seen() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	keys := r.keys
	r.keys = nil
	return keys
}

func (r *recordingStore) Get(ctx context.Context, key string) (io.ReadCloser, objstore.Attrs, error) {
	r.record(key)
	return r.Store.Get(ctx, key)
}

func (r *recordingStore) GetRange(ctx context.Context, key string, off, n int64) (io.ReadCloser, objstore.Attrs, error) {
	r.record(key)
	return r.Store.GetRange(ctx, key, off, n)
}

func (r *recordingStore) Head(ctx context.Context, key string) (objstore.Attrs, error) {
	r.record(key)
	return r.Store.Head(ctx, key)
}

func (r *recordingStore) List(ctx context.Context, prefix string) ([]objstore.Attrs, error) {
	r.record(prefix)
	return r.Store.List(ctx, prefix)
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

func (downStore) List(context.Context, string) ([]objstore.Attrs, error) { return nil, errDown }

func (downStore) Ping(context.Context) error { return errDown }

func TestNewRefusesBadConfig(t *testing.T) {
	b := openStore(t, "file://"+t.TempDir())
	for _, tc := range []struct {
		name string
		cfg  Config
	}{
		{"no store", Config{}},
		{"keys without edge secrets", Config{Store: b, PlaybackKeys: testKeys}},
		{"short edge secret", Config{Store: b, EdgeSecrets: []string{"short"}}},
	} {
		if _, err := New(tc.cfg); err == nil {
			t.Errorf("%s: New accepted it", tc.name)
		}
	}
}

func TestStorageDown(t *testing.T) {
	ts, srv := newOrigin(t, Config{Store: downStore{}})
	for _, tc := range []struct {
		method, path string
		hdr          map[string]string
	}{
		{http.MethodGet, "/hls/abc/v1/720p/seg_00001.m4s", nil},
		{http.MethodHead, "/hls/abc/v1/720p/seg_00002.m4s", nil},
		{http.MethodGet, "/hls/abc/v1/720p/seg_00003.m4s", map[string]string{"Range": "bytes=0-9"}},
		{http.MethodGet, "/hls/abc/v1/720p/seg_00004.m4s", map[string]string{"Range": "bytes=-9"}},
		{http.MethodGet, "/hls/abc/master.m3u8", nil},
	} {
		resp, _ := do(t, ts, tc.method, tc.path, tc.hdr)
		if resp.StatusCode != http.StatusServiceUnavailable || !positiveInt(resp.Header.Get("Retry-After")) {
			t.Errorf("%s %s %v: status %d, Retry-After %q", tc.method, tc.path, tc.hdr, resp.StatusCode,
				resp.Header.Get("Retry-After"))
		}
		if cc := resp.Header.Get("Cache-Control"); cc != "no-store" {
			t.Errorf("%s %s: 503 Cache-Control %q: an outage must not be cached", tc.method, tc.path, cc)
		}
	}
	if srv.Stats().StorageErrors.Load() == 0 {
		t.Error("no storage error counted")
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

func TestMissingIsNotAStorageError(t *testing.T) {
	ts, srv := newOrigin(t, Config{Store: openStore(t, "file://"+t.TempDir())})
	for _, p := range []string{"/hls/abc/v9/master.m3u8", "/hls/zzz/master.m3u8", "/hls/abc/v1/720p/nope.m4s"} {
		if resp, _ := do(t, ts, http.MethodGet, p, nil); resp.StatusCode != http.StatusNotFound {
			t.Errorf("%s: %d", p, resp.StatusCode)
		}
	}
	if n := srv.Stats().StorageErrors.Load(); n != 0 {
		t.Errorf("missing objects counted %d storage errors", n)
	}
}

func TestProbes(t *testing.T) {
	ts, _ := newOrigin(t, Config{Store: openStore(t, "file://"+t.TempDir())})
	for _, p := range []string{"/healthz", "/readyz"} {
		resp, _ := do(t, ts, http.MethodGet, p, nil)
		if resp.StatusCode != http.StatusOK {
			t.Errorf("%s: %d", p, resp.StatusCode)
		}
		if cc := resp.Header.Get("Cache-Control"); cc != "no-store" {
			t.Errorf("%s: Cache-Control %q", p, cc)
		}
	}
}

func TestStatsAndCollector(t *testing.T) {
	ts, srv := newOrigin(t, Config{Store: openStore(t, "file://"+t.TempDir())})
	do(t, ts, http.MethodGet, "/hls/abc/v1/720p/seg_00001.m4s", nil)
	do(t, ts, http.MethodGet, "/hls/abc/v1/720p/index.m3u8", nil)
	do(t, ts, http.MethodGet, "/hls/abc/v1/720p/nope.m4s", nil)
	do(t, ts, http.MethodGet, "/hls/abc/master.m3u8", nil)
	do(t, ts, http.MethodGet, "/healthz", nil)

	st := srv.Stats()
	if st.Responses(KindSegment, 200) != 1 || st.Responses(KindPlaylist, 200) != 1 || st.Responses(KindSegment, 404) != 1 {
		t.Errorf("responses: seg200=%d pl200=%d seg404=%d", st.Responses(KindSegment, 200),
			st.Responses(KindPlaylist, 200), st.Responses(KindSegment, 404))
	}
	if st.BytesOut.Load() < int64(len(segment)+len(playlist)) {
		t.Errorf("BytesOut = %d, want at least %d", st.BytesOut.Load(), len(segment)+len(playlist))
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
	}
	// The unlabelled metrics of the contract, and the labelled ones this traffic produced.
	for _, name := range []string{
		"lectern_origin_requests_total", "lectern_origin_bytes_out_total", "lectern_origin_storage_seconds",
		"lectern_origin_storage_reads_total", "lectern_origin_storage_errors_total",
		"lectern_origin_hot_hits_total", "lectern_origin_hot_misses_total", "lectern_origin_hot_bytes",
		"lectern_origin_hot_entries", "lectern_origin_collapsed_total", "lectern_origin_inflight_reads",
	} {
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
