package cdn

import (
	"bytes"
	"context"
	"log/slog"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/lectern/lectern/internal/objstore"
	"github.com/lectern/lectern/internal/playtoken"
	"github.com/lectern/lectern/origin"
)

// TestEdgeInFrontOfOrigin runs the real chain: file storage, the origin package, this edge.
func TestEdgeInFrontOfOrigin(t *testing.T) {
	ctx := context.Background()
	bucket, err := objstore.Open(ctx, "file://"+t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { bucket.Close() })
	playlist := []byte("#EXTM3U\n#EXT-X-VERSION:7\n#EXT-X-MAP:URI=\"init.mp4\"\n#EXTINF:4.0,\nseg_00001.m4s\n#EXT-X-ENDLIST\n")
	seg := bytes.Repeat([]byte{0, 1, 2, 3, 4, 5, 6, 7}, 64<<10) // 512 KiB
	for key, data := range map[string][]byte{
		"hls/lec1/v1/720p/index.m3u8":    playlist,
		"hls/lec1/v1/720p/seg_00001.m4s": seg,
	} {
		if err := bucket.PutBytes(ctx, key, data, objstore.PutOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	org, err := origin.New(origin.Config{Store: bucket, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	orgServer := httptest.NewServer(org)
	t.Cleanup(orgServer.Close)
	_, edge := newTestEdge(t, orgServer.URL, nil, nil)

	for _, tc := range []struct {
		path, ctype string
		body        []byte
	}{
		{"/hls/lec1/v1/720p/index.m3u8", "application/vnd.apple.mpegurl", playlist},
		{"/hls/lec1/v1/720p/seg_00001.m4s", "video/iso.segment", seg},
	} {
		first := get(t, edge, "GET", tc.path)
		second := get(t, edge, "GET", tc.path)
		if first.StatusCode != 200 || first.cache() != "MISS" || second.cache() != "HIT" {
			t.Fatalf("%s: %d %s then %s, want 200 MISS then HIT", tc.path, first.StatusCode, first.cache(), second.cache())
		}
		if !bytes.Equal(first.body, tc.body) || !bytes.Equal(second.body, tc.body) {
			t.Errorf("%s: bodies differ from storage (%d and %d bytes, want %d)", tc.path,
				len(first.body), len(second.body), len(tc.body))
		}
		for _, r := range []response{first, second} {
			if r.Header.Get("Content-Type") != tc.ctype || r.Header.Get("Etag") == "" ||
				r.Header.Get("Cache-Control") != "public, max-age=31536000, immutable" ||
				r.Header.Get("Access-Control-Allow-Origin") != "*" {
				t.Errorf("%s %s: headers %v", tc.path, r.cache(), r.Header)
			}
		}
		if second.Header.Get("Age") == "" {
			t.Errorf("%s: HIT without Age", tc.path)
		}
		// A player's Range is answered from the cached object.
		part := get(t, edge, "GET", tc.path, "Range", "bytes=8-15")
		if part.StatusCode != 206 || part.cache() != "HIT" || !bytes.Equal(part.body, tc.body[8:16]) {
			t.Errorf("%s range: %d %s", tc.path, part.StatusCode, part.cache())
		}
	}
	// Two objects, two origin requests: everything else came from the edge.
	var served int64
	for k := origin.Kind(0); k <= origin.KindOther; k++ {
		served += org.Stats().Responses(k, 200)
	}
	if served != 2 {
		t.Errorf("origin served %d requests, want 2", served)
	}
	// A missing object is a 404 from the origin, which marks it fresh for a few seconds: the edge
	// keeps it too, so a bad link does not reach the origin on every request.
	for i, want := range []string{"MISS", "HIT"} {
		if r := get(t, edge, "GET", "/hls/lec1/v1/720p/seg_99999.m4s"); r.StatusCode != 404 || r.cache() != want {
			t.Errorf("missing object, request %d: %d %s, want 404 %s", i, r.StatusCode, r.cache(), want)
		}
	}
	if r := get(t, edge, "GET", "/readyz"); r.StatusCode != 200 {
		t.Errorf("edge readyz with a healthy origin: %d", r.StatusCode)
	}
}

// TestSignedEdgeInFrontOfKeyedOrigin runs signed playback through the real chain: the origin refuses
// plain /hls/ without an edge credential, and the edge, which verifies the student's token and
// presents its own credential, serves the entry point's redirect and the objects.
func TestSignedEdgeInFrontOfKeyedOrigin(t *testing.T) {
	ctx := context.Background()
	bucket, err := objstore.Open(ctx, "file://"+t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { bucket.Close() })
	playlist := []byte("#EXTM3U\n#EXT-X-STREAM-INF:BANDWIDTH=800000\n720p/index.m3u8\n")
	if err := bucket.PutBytes(ctx, "hls/lec1/v1/master.m3u8", playlist, objstore.PutOptions{}); err != nil {
		t.Fatal(err)
	}
	keys := playbackKeys(t)
	org, err := origin.New(origin.Config{Store: bucket, Logger: slog.New(slog.DiscardHandler),
		PlaybackKeys: keys, EdgeSecrets: []string{"old-edge-secret-0123456789", originSecret}})
	if err != nil {
		t.Fatal(err)
	}
	orgServer := httptest.NewServer(org)
	t.Cleanup(orgServer.Close)
	_, edge := newTestEdge(t, orgServer.URL, nil, func(c *Config) {
		c.PlaybackKeys = keys
		c.OriginSecret = originSecret
	})
	_, wrong := newTestEdge(t, orgServer.URL, nil, func(c *Config) {
		c.PlaybackKeys = keys
		c.OriginSecret = "not-the-origin-secret-0123456789"
	})

	if r := get(t, orgServer, "GET", "/hls/lec1/v1/master.m3u8"); r.StatusCode != 403 {
		t.Errorf("origin, plain /hls/ without a credential: %d, want 403", r.StatusCode)
	}
	tok := playtoken.Mint(keys, "lec1", time.Now().Add(time.Hour), "")
	entry := "/s/" + tok + "/hls/lec1/master.m3u8"
	for i, want := range []string{"MISS", "HIT"} {
		r := get(t, edge, "GET", entry)
		if r.StatusCode != 302 || r.Header.Get("Location") != "v1/master.m3u8" || r.cache() != want {
			t.Fatalf("entry point %d: %d %s Location %q, want 302 %s v1/master.m3u8", i, r.StatusCode, r.cache(),
				r.Header.Get("Location"), want)
		}
	}
	r := get(t, edge, "GET", "/s/"+tok+"/hls/lec1/v1/master.m3u8")
	if r.StatusCode != 200 || !bytes.Equal(r.body, playlist) {
		t.Errorf("signed master through the edge: %d %q", r.StatusCode, r.body)
	}
	if r := get(t, wrong, "GET", "/s/"+tok+"/hls/lec1/v1/master.m3u8"); r.StatusCode != 403 {
		t.Errorf("edge with a credential the origin does not list: %d, want 403", r.StatusCode)
	}
}
