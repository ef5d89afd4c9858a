package origin

import (
	"bytes"
	"net/http"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/lectern/lectern/internal/testenv"
)

// TestStorageOutage stops a real MinIO under a running origin: misses become 503s that no cache
// keeps, objects already hot go on being served, the origin reports itself unready but alive, and
// once MinIO is back the same origin serves misses again.
func TestStorageOutage(t *testing.T) {
	if testing.Short() {
		t.Skip("starts and stops a MinIO server")
	}
	m := testenv.StartMinIO(t)
	// attempts=2: the origin's store gives up on a refused connection after one retry instead of
	// minio-go's ten, so the first misses of an outage are quick 503s rather than multi-second waits.
	b := openStore(t, m.URL(testenv.RandomName("lectern-"))+"&attempts=2")
	ts, srv := newOrigin(t, Config{Store: b, ReadyTimeout: time.Second})

	const (
		hotPath  = "/hls/abc/v1/720p/seg_00001.m4s" // fetched before the outage
		missPath = "/hls/abc/v2/720p/seg_00001.m4s" // never fetched before the outage
	)
	for range 2 {
		if resp, body := do(t, ts, http.MethodGet, hotPath, nil); resp.StatusCode != http.StatusOK || !bytes.Equal(body, segment) {
			t.Fatalf("before the outage: %d, %d bytes", resp.StatusCode, len(body))
		}
	}
	if srv.Stats().HotHits.Load() == 0 {
		t.Fatal("the second fetch was not a hot-cache hit")
	}
	if resp, _ := do(t, ts, http.MethodGet, "/readyz", nil); resp.StatusCode != http.StatusOK {
		t.Fatalf("readyz before the outage: %d", resp.StatusCode)
	}

	m.Stop()

	start := time.Now()
	resp, _ := do(t, ts, http.MethodGet, missPath, nil)
	t.Logf("first miss with MinIO stopped answered %d after %s", resp.StatusCode, time.Since(start).Round(time.Millisecond))
	if resp.StatusCode != http.StatusServiceUnavailable {
		t.Fatalf("miss with MinIO stopped: %d, want 503", resp.StatusCode)
	}
	if took := time.Since(start); took > 2*time.Second {
		t.Errorf("the first miss of the outage took %s to fail; with attempts=2 it should not wait for retries", took)
	}
	if ra := resp.Header.Get("Retry-After"); !positiveInt(ra) {
		t.Errorf("Retry-After %q", ra)
	}
	if cc := resp.Header.Get("Cache-Control"); cc != "no-store" {
		t.Errorf("503 Cache-Control %q, want no-store", cc)
	}
	// More misses, at once as a class would send them, stay 503s.
	var wg sync.WaitGroup
	codes := make([]int, 8)
	for i := range codes {
		wg.Go(func() {
			resp, err := ts.Client().Get(ts.URL + "/hls/abc/v2/720p/seg_0001" + strconv.Itoa(i) + ".m4s")
			if err != nil {
				return
			}
			resp.Body.Close()
			codes[i] = resp.StatusCode
		})
	}
	wg.Wait()
	for i, c := range codes {
		if c != http.StatusServiceUnavailable {
			t.Errorf("concurrent miss %d with MinIO stopped: %d, want 503", i, c)
		}
	}
	start = time.Now()
	resp, _ = do(t, ts, http.MethodGet, missPath, nil)
	t.Logf("a miss after %d failures answered %d after %s", len(codes)+1, resp.StatusCode, time.Since(start).Round(time.Millisecond))
	if resp.StatusCode != http.StatusServiceUnavailable {
		t.Errorf("miss with MinIO stopped: %d, want 503", resp.StatusCode)
	}

	resp, body := do(t, ts, http.MethodGet, hotPath, nil)
	if resp.StatusCode != http.StatusOK || !bytes.Equal(body, segment) {
		t.Errorf("hot object with MinIO stopped: %d, %d bytes", resp.StatusCode, len(body))
	}
	resp, body = do(t, ts, http.MethodGet, hotPath, map[string]string{"Range": "bytes=100-199"})
	if resp.StatusCode != http.StatusPartialContent || !bytes.Equal(body, segment[100:200]) {
		t.Errorf("range of a hot object with MinIO stopped: %d, %d bytes", resp.StatusCode, len(body))
	}
	if resp, _ := do(t, ts, http.MethodGet, "/healthz", nil); resp.StatusCode != http.StatusOK {
		t.Errorf("healthz with MinIO stopped: %d", resp.StatusCode)
	}
	if resp, _ := do(t, ts, http.MethodGet, "/readyz", nil); resp.StatusCode != http.StatusServiceUnavailable {
		t.Errorf("readyz with MinIO stopped: %d, want 503", resp.StatusCode)
	}

	m.Start()

	start = time.Now()
	for {
		resp, body := do(t, ts, http.MethodGet, missPath, nil)
		if resp.StatusCode == http.StatusOK {
			if !bytes.Equal(body, segment) {
				t.Fatalf("after the outage: %d bytes", len(body))
			}
			break
		}
		if time.Since(start) > 10*time.Second {
			t.Fatalf("still %d %s after MinIO came back", resp.StatusCode, time.Since(start).Round(time.Millisecond))
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Logf("miss served again %s after MinIO came back", time.Since(start).Round(time.Millisecond))
	if resp, _ := do(t, ts, http.MethodGet, "/readyz", nil); resp.StatusCode != http.StatusOK {
		t.Errorf("readyz after the outage: %d", resp.StatusCode)
	}
}
