package cdn

import (
	"bytes"
	"context"
	"log/slog"
	"net/http/httptest"
	"testing"

	"github.com/lectern/lectern/internal/objstore"
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
	org := origin.New(origin.Config{Store: bucket, Logger: slog.New(slog.DiscardHandler)})
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
		served += org.Stats().Requests(k, 2)
	}
	if served != 2 {
		t.Errorf("origin served %d requests, want 2", served)
	}
	// A missing object is a 404 from the origin, passed through and not stored.
	if r := get(t, edge, "GET", "/hls/lec1/v1/720p/seg_99999.m4s"); r.StatusCode != 404 {
		t.Errorf("missing object: %d", r.StatusCode)
	}
	if r := get(t, edge, "GET", "/readyz"); r.StatusCode != 200 {
		t.Errorf("edge readyz with a healthy origin: %d", r.StatusCode)
	}
}
