package origin

import (
	"log/slog"
	"net/http"
	"net/http/httptest"
	"testing"
)

// discardWriter is a ResponseWriter that keeps nothing, so the benchmark measures the handler alone.
type discardWriter struct{ h http.Header }

func (d *discardWriter) Header() http.Header         { return d.h }
func (d *discardWriter) Write(p []byte) (int, error) { return len(p), nil }
func (d *discardWriter) WriteHeader(int)             {}

// BenchmarkHotHit is the handler's own cost per hot-cache hit (no network): what the origin adds on
// top of net/http when serving a segment from memory. The comparison with nginx is bench/origin-hit.sh.
func BenchmarkHotHit(b *testing.B) {
	key := "hls/bench1/v1/1080p/seg_00001.m4s"
	store := shieldBucket(b, false, map[string][]byte{key: randomish(400 << 10)})
	srv, err := New(Config{Store: store, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		b.Fatal(err)
	}
	warm := httptest.NewRecorder()
	srv.ServeHTTP(warm, httptest.NewRequest(http.MethodGet, "/"+key, nil))
	if warm.Code != 200 {
		b.Fatalf("warm-up: %d", warm.Code)
	}
	req := httptest.NewRequest(http.MethodGet, "/"+key, nil)
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		w := &discardWriter{h: make(http.Header, 8)}
		srv.ServeHTTP(w, req)
	}
	if srv.Stats().HotHits.Load() < int64(b.N) {
		b.Fatalf("not hot hits: %d of %d", srv.Stats().HotHits.Load(), b.N)
	}
}
