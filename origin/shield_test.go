package origin

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/lectern/lectern/internal/objstore"
	"github.com/lectern/lectern/internal/testenv"
	"github.com/prometheus/client_golang/prometheus"
)

// gatedStore holds every Get until its gate opens and counts the calls, so a test can line up
// concurrent misses before storage answers. body, when set, wraps the returned reader.
type gatedStore struct {
	Store
	gate  chan struct{}
	gets  atomic.Int64
	body  func(io.ReadCloser) io.ReadCloser
	fails atomic.Bool // every call fails as an unreachable store would
}

var errUnreachable = errors.New("dial tcp 127.0.0.1:9: connect: connection refused")

func (g *gatedStore) Get(ctx context.Context, key string) (io.ReadCloser, objstore.Attrs, error) {
	g.gets.Add(1)
	if g.gate != nil {
		select {
		case <-g.gate:
		case <-ctx.Done():
			return nil, objstore.Attrs{}, ctx.Err()
		}
	}
	if g.fails.Load() {
		return nil, objstore.Attrs{}, errUnreachable
	}
	rc, attrs, err := g.Store.Get(ctx, key)
	if err == nil && g.body != nil {
		rc = g.body(rc)
	}
	return rc, attrs, err
}

func (g *gatedStore) Head(ctx context.Context, key string) (objstore.Attrs, error) {
	if g.fails.Load() {
		return objstore.Attrs{}, errUnreachable
	}
	return g.Store.Head(ctx, key)
}

func (g *gatedStore) List(ctx context.Context, prefix string) ([]objstore.Attrs, error) {
	if g.fails.Load() {
		return nil, errUnreachable
	}
	return g.Store.List(ctx, prefix)
}

// shieldBucket opens a file bucket, or with s3 a bucket on the test MinIO, holding objects.
func shieldBucket(t testing.TB, s3 bool, objects map[string][]byte) *objstore.Bucket {
	t.Helper()
	url := "file://" + t.TempDir()
	if s3 {
		url = testenv.S3URL(t)
	}
	return openBucket(t, url, objects)
}

func get(t *testing.T, client *http.Client, url string) (*http.Response, []byte) {
	t.Helper()
	resp, err := client.Get(url)
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

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(2 * time.Millisecond)
	}
}

// randomish returns n bytes whose every 8-byte block names its offset, so a misplaced byte shows.
func randomish(n int) []byte {
	var b bytes.Buffer
	for i := 0; b.Len() < n; i += 8 {
		fmt.Fprintf(&b, "%08x", i)
	}
	return b.Bytes()[:n]
}

// The thundering herd: 500 concurrent requests for one segment nobody has asked for yet make
// exactly one storage read, and every request gets the whole, correct object.
func TestThunderingHerdOneStorageRead(t *testing.T) {
	for _, s3 := range []bool{false, true} {
		t.Run(map[bool]string{false: "file", true: "minio"}[s3], func(t *testing.T) {
			const n = 500
			seg := randomish(400 << 10)
			key := "hls/herd1/v1/1080p/seg_00001.m4s"
			store := &gatedStore{Store: shieldBucket(t, s3, map[string][]byte{key: seg}), gate: make(chan struct{})}
			ts, srv := newOrigin(t, Config{Store: store})
			client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: n}}
			defer client.CloseIdleConnections()

			var wg sync.WaitGroup
			errs := make(chan error, n)
			for range n {
				wg.Go(func() {
					resp, err := client.Get(ts.URL + "/" + key)
					if err != nil {
						errs <- err
						return
					}
					defer resp.Body.Close()
					body, err := io.ReadAll(resp.Body)
					switch {
					case err != nil:
						errs <- err
					case resp.StatusCode != 200 || !bytes.Equal(body, seg):
						errs <- fmt.Errorf("status %d, %d bytes, equal=%v", resp.StatusCode, len(body), bytes.Equal(body, seg))
					}
				})
			}
			// Everyone is waiting on the one read before storage answers it.
			waitFor(t, "all requests to join the fill", func() bool { return srv.Stats().Collapsed.Load() == n-1 })
			readsBefore := srv.Stats().StorageReads.Load()
			close(store.gate)
			wg.Wait()
			close(errs)
			for err := range errs {
				t.Fatal(err)
			}
			if got := store.gets.Load(); got != 1 {
				t.Fatalf("storage Get called %d times for %d concurrent requests, want 1", got, n)
			}
			if got := srv.Stats().StorageReads.Load(); got != 1 || readsBefore != 0 {
				t.Fatalf("storage read counter went %d -> %d, want 0 -> 1", readsBefore, got)
			}
			// The object is now hot: the next request does not touch storage.
			if resp, body := get(t, client, ts.URL+"/"+key); resp.StatusCode != 200 || !bytes.Equal(body, seg) {
				t.Fatalf("after the herd: %d", resp.StatusCode)
			}
			if got := srv.Stats().StorageReads.Load(); got != 1 {
				t.Fatalf("a hot request read storage: %d reads", got)
			}
		})
	}
}

// stallingBody hands out the first chunk of the object, then stalls until released.
type stallingBody struct {
	io.ReadCloser
	first   int
	release chan struct{}
	sent    int
}

func (s *stallingBody) Read(p []byte) (int, error) {
	if s.sent >= s.first {
		<-s.release
	} else if len(p) > s.first-s.sent {
		p = p[:s.first-s.sent]
	}
	n, err := s.ReadCloser.Read(p)
	s.sent += n
	return n, err
}

// Waiters get the bytes as they arrive from storage, not when the whole object is in; and the first
// client leaving does not fail the others.
func TestCollapsedRequestsStreamAsBytesArrive(t *testing.T) {
	seg := randomish(300 << 10)
	key := "hls/stream1/v1/720p/seg_00001.m4s"
	release := make(chan struct{})
	store := &gatedStore{Store: shieldBucket(t, false, map[string][]byte{key: seg}),
		body: func(rc io.ReadCloser) io.ReadCloser {
			return &stallingBody{ReadCloser: rc, first: 100 << 10, release: release}
		}}
	ts, srv := newOrigin(t, Config{Store: store})

	// The leader's client gives up after the headers.
	ctx, cancel := context.WithCancel(context.Background())
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, ts.URL+"/"+key, nil)
	first, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	second, err := http.Get(ts.URL + "/" + key)
	if err != nil {
		t.Fatal(err)
	}
	defer second.Body.Close()
	if srv.Stats().Collapsed.Load() != 1 {
		t.Fatalf("second request did not join the first one's read: collapsed=%d", srv.Stats().Collapsed.Load())
	}
	// Both see the first 100 KiB while storage is still stalled.
	for i, resp := range []*http.Response{first, second} {
		buf := make([]byte, 100<<10)
		if _, err := io.ReadFull(resp.Body, buf); err != nil {
			t.Fatalf("client %d: first chunk while storage stalls: %v", i, err)
		}
		if !bytes.Equal(buf, seg[:len(buf)]) {
			t.Fatalf("client %d: wrong first chunk", i)
		}
	}
	cancel()
	first.Body.Close()
	close(release)
	rest, err := io.ReadAll(second.Body)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(rest, seg[100<<10:]) {
		t.Fatalf("second client got %d more bytes, want %d", len(rest), len(seg)-100<<10)
	}
	if store.gets.Load() != 1 {
		t.Fatalf("%d storage reads", store.gets.Load())
	}
}

// A missing object is remembered for the negative-cache lifetime: a burst of requests for a bad link
// costs one storage call, and a later publish shows up once the lifetime has passed.
func TestMissingObjectsAreRememberedBriefly(t *testing.T) {
	key := "hls/neg1/v1/720p/seg_00009.m4s"
	b := shieldBucket(t, false, nil)
	var now atomic.Int64
	now.Store(time.Date(2026, 11, 22, 9, 0, 0, 0, time.UTC).UnixNano())
	ts, srv := newOrigin(t, Config{Store: b, Now: func() time.Time { return time.Unix(0, now.Load()) }})
	for range 50 {
		resp, _ := get(t, http.DefaultClient, ts.URL+"/"+key)
		if resp.StatusCode != 404 || resp.Header.Get("Cache-Control") != "public, max-age=10" {
			t.Fatalf("status %d, Cache-Control %q", resp.StatusCode, resp.Header.Get("Cache-Control"))
		}
	}
	if got := srv.Stats().StorageReads.Load(); got != 1 {
		t.Fatalf("50 requests for a missing object made %d storage reads, want 1", got)
	}
	if err := b.PutBytes(context.Background(), key, []byte("late"), objstore.PutOptions{}); err != nil {
		t.Fatal(err)
	}
	now.Add(int64(negativeTTL + time.Second))
	if resp, body := get(t, http.DefaultClient, ts.URL+"/"+key); resp.StatusCode != 200 || string(body) != "late" {
		t.Fatalf("after the negative lifetime: %d %q", resp.StatusCode, body)
	}
}

// Purging a lecture drops what the origin holds for it, so a deleted lecture stops playing.
func TestPurgeDropsHotObjects(t *testing.T) {
	key := "hls/purge1/v1/720p/seg_00001.m4s"
	other := "hls/keep1/v1/720p/seg_00001.m4s"
	b := shieldBucket(t, false, map[string][]byte{key: []byte("purged"), other: []byte("kept")})
	ts, srv := newOrigin(t, Config{Store: b, PurgeSecret: "purge-secret-0123456789"})
	get(t, http.DefaultClient, ts.URL+"/"+key)
	get(t, http.DefaultClient, ts.URL+"/"+other)
	ctx := context.Background()
	b.Delete(ctx, key)
	b.Delete(ctx, other)
	if resp, _ := get(t, http.DefaultClient, ts.URL+"/"+key); resp.StatusCode != 200 {
		t.Fatalf("hot object not served from memory: %d", resp.StatusCode)
	}
	req, _ := http.NewRequest(http.MethodPost, ts.URL+"/_lectern/purge", strings.NewReader(`{"prefix": "/hls/purge1/"}`))
	req.Header.Set("Authorization", "Bearer purge-secret-0123456789")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || !strings.Contains(string(body), `"purged":1`) {
		t.Fatalf("purge: %d %s", resp.StatusCode, body)
	}
	if resp, _ := get(t, http.DefaultClient, ts.URL+"/"+key); resp.StatusCode != 404 {
		t.Fatalf("purged object still served: %d", resp.StatusCode)
	}
	if resp, body := get(t, http.DefaultClient, ts.URL+"/"+other); resp.StatusCode != 200 || string(body) != "kept" {
		t.Fatalf("another lecture was purged too: %d", resp.StatusCode)
	}
	if srv.Purge("/hls/keep1/v1/720p/seg_00001.m4s") != 1 {
		t.Fatal("exact-path purge removed nothing")
	}
}

// Beyond the storage slots a miss waits a short while in a bounded queue, then gets 503 with
// Retry-After; hot hits, health and metrics keep answering throughout.
func TestOverloadAnswers503AndKeepsServingHits(t *testing.T) {
	objs := map[string][]byte{}
	for i := range 4 {
		objs[fmt.Sprintf("hls/load1/v1/720p/seg_%05d.m4s", i)] = randomish(1000)
	}
	b := shieldBucket(t, false, objs)
	gate := make(chan struct{})
	store := &gatedStore{Store: b}
	ts, srv := newOrigin(t, Config{Store: store, MaxStorageReads: 1, MaxQueue: 1, QueueTimeout: 200 * time.Millisecond})
	url := func(i int) string { return fmt.Sprintf("%s/hls/load1/v1/720p/seg_%05d.m4s", ts.URL, i) }
	get(t, http.DefaultClient, url(0)) // hot from now on
	store.gate = gate                  // storage now stalls

	slow := make(chan int)
	go func() { // takes the only slot and holds it
		resp, err := http.Get(url(1))
		if err != nil {
			slow <- 0
			return
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		slow <- resp.StatusCode
	}()
	waitFor(t, "the slot to be taken", func() bool { return srv.limit.inFlight() == 1 })

	queued := make(chan *http.Response)
	go func() { // waits in the queue, then times out
		resp, err := http.Get(url(2))
		if err != nil {
			queued <- nil
			return
		}
		resp.Body.Close()
		queued <- resp
	}()
	waitFor(t, "a request to queue", func() bool { return srv.limit.waiting.Load() == 1 })
	// The queue is full: the next miss is turned away at once.
	start := time.Now()
	resp, _ := get(t, http.DefaultClient, url(3))
	if resp.StatusCode != 503 || resp.Header.Get("Retry-After") == "" || resp.Header.Get("Cache-Control") != "no-store" {
		t.Fatalf("queue full: %d Retry-After=%q Cache-Control=%q", resp.StatusCode, resp.Header.Get("Retry-After"), resp.Header.Get("Cache-Control"))
	}
	if time.Since(start) > 150*time.Millisecond {
		t.Fatalf("a request beyond the queue waited %v", time.Since(start))
	}
	// Hits, health and metrics are not behind the limit.
	if resp, _ := get(t, http.DefaultClient, url(0)); resp.StatusCode != 200 {
		t.Fatalf("hot hit during overload: %d", resp.StatusCode)
	}
	if resp, _ := get(t, http.DefaultClient, ts.URL+"/healthz"); resp.StatusCode != 200 {
		t.Fatalf("healthz during overload: %d", resp.StatusCode)
	}
	if r := <-queued; r == nil || r.StatusCode != 503 || r.Header.Get("Retry-After") == "" {
		t.Fatalf("queued request: %+v", r)
	}
	if srv.Stats().rejected[rejectQueueFull].Load() != 1 || srv.Stats().rejected[rejectQueueTimeout].Load() != 1 {
		t.Fatalf("rejections: full=%d timeout=%d", srv.Stats().rejected[rejectQueueFull].Load(), srv.Stats().rejected[rejectQueueTimeout].Load())
	}
	close(gate)
	if st := <-slow; st != 200 {
		t.Fatalf("the request holding the slot: %d", st)
	}
	// Recovered: misses are served again.
	if resp, _ := get(t, http.DefaultClient, url(3)); resp.StatusCode != 200 {
		t.Fatalf("after the overload: %d", resp.StatusCode)
	}
}

// Fills never buffer more than MaxFillBytes together: a fill that would is a 503, not memory growth.
func TestFillBudgetBoundsMemory(t *testing.T) {
	a, b := "hls/mem1/v1/720p/seg_00001.m4s", "hls/mem1/v1/720p/seg_00002.m4s"
	release := make(chan struct{})
	store := &gatedStore{Store: shieldBucket(t, false, map[string][]byte{a: randomish(1000), b: randomish(1000)}),
		body: func(rc io.ReadCloser) io.ReadCloser {
			return &stallingBody{ReadCloser: rc, first: 10, release: release}
		}}
	ts, srv := newOrigin(t, Config{Store: store, MaxHotObject: 1000, MaxFillBytes: 1500})
	first, err := http.Get(ts.URL + "/" + a)
	if err != nil {
		t.Fatal(err)
	}
	defer first.Body.Close()
	resp, _ := get(t, http.DefaultClient, ts.URL+"/"+b)
	if resp.StatusCode != 503 || resp.Header.Get("Retry-After") == "" {
		t.Fatalf("second fill over budget: %d", resp.StatusCode)
	}
	if srv.Stats().rejected[rejectMemory].Load() != 1 {
		t.Fatal("memory rejection not counted")
	}
	close(release)
	if body, _ := io.ReadAll(first.Body); len(body) != 1000 {
		t.Fatalf("first fill: %d bytes", len(body))
	}
	waitFor(t, "the budget to be returned", func() bool {
		srv.fillBudget.mu.Lock()
		defer srv.fillBudget.mu.Unlock()
		return srv.fillBudget.used == 0
	})
	if resp, _ := get(t, http.DefaultClient, ts.URL+"/"+b); resp.StatusCode != 200 {
		t.Fatalf("after the first fill ended: %d", resp.StatusCode)
	}
}

// Objects larger than MaxHotObject are streamed per request and never kept.
func TestLargeObjectsBypassTheHotCache(t *testing.T) {
	key := "hls/big1/v1/720p/seg_00001.m4s"
	data := randomish(5000)
	b := shieldBucket(t, false, map[string][]byte{key: data})
	ts, srv := newOrigin(t, Config{Store: b, MaxHotObject: 1000})
	for range 2 {
		if resp, body := get(t, http.DefaultClient, ts.URL+"/"+key); resp.StatusCode != 200 || !bytes.Equal(body, data) {
			t.Fatalf("large object: %d, %d bytes", resp.StatusCode, len(body))
		}
	}
	if srv.Stats().HotEntries.Load() != 0 || srv.Stats().HotHits.Load() != 0 {
		t.Fatalf("large object kept hot: entries=%d hits=%d", srv.Stats().HotEntries.Load(), srv.Stats().HotHits.Load())
	}
}

// With storage failing, misses get a fast 503 (the breaker stops calling storage after a few
// failures), hot objects are still served, and service comes back by itself.
func TestStorageFailureBreakerAndRecovery(t *testing.T) {
	hot := "hls/down1/v1/720p/seg_00001.m4s"
	objs := map[string][]byte{hot: []byte("hot")}
	for i := 2; i < 12; i++ {
		objs[fmt.Sprintf("hls/down1/v1/720p/seg_%05d.m4s", i)] = []byte("cold")
	}
	store := &gatedStore{Store: shieldBucket(t, false, objs)}
	ts, srv := newOrigin(t, Config{Store: store})
	get(t, http.DefaultClient, ts.URL+"/"+hot)
	store.fails.Store(true)
	for i := 2; i < 12; i++ {
		resp, _ := get(t, http.DefaultClient, fmt.Sprintf("%s/hls/down1/v1/720p/seg_%05d.m4s", ts.URL, i))
		if resp.StatusCode != 503 || resp.Header.Get("Retry-After") == "" || resp.Header.Get("Cache-Control") != "no-store" {
			t.Fatalf("miss with storage down: %d %v", resp.StatusCode, resp.Header)
		}
	}
	if got := store.gets.Load(); got > 1+breakerThreshold {
		t.Fatalf("storage called %d times for 10 misses while failing; the breaker should stop after %d", got-1, breakerThreshold)
	}
	if srv.Stats().rejected[rejectStorageDown].Load() == 0 {
		t.Fatal("breaker rejections not counted")
	}
	if resp, body := get(t, http.DefaultClient, ts.URL+"/"+hot); resp.StatusCode != 200 || string(body) != "hot" {
		t.Fatalf("hot object with storage down: %d", resp.StatusCode)
	}
	store.fails.Store(false)
	waitFor(t, "recovery", func() bool {
		resp, err := http.Get(ts.URL + "/hls/down1/v1/720p/seg_00005.m4s")
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == 200
	})
}

// Every metric the issue names is exported.
func TestCollectorExportsEveryMetric(t *testing.T) {
	key := "hls/met1/v1/720p/seg_00001.m4s"
	ts, srv := newOrigin(t, Config{Store: shieldBucket(t, false, map[string][]byte{key: []byte("x")})})
	get(t, http.DefaultClient, ts.URL+"/"+key)
	get(t, http.DefaultClient, ts.URL+"/"+key)
	reg := prometheus.NewPedanticRegistry()
	reg.MustRegister(srv.Collector())
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]bool{}
	for _, mf := range mfs {
		got[mf.GetName()] = true
	}
	for _, name := range []string{"requests_total", "bytes_out_total", "storage_seconds", "storage_reads_total",
		"storage_errors_total", "hot_hits_total", "hot_misses_total", "hot_bytes", "hot_entries", "collapsed_total",
		"inflight_reads", "rejected_total", "forbidden_total"} {
		if !got["lectern_origin_"+name] {
			t.Errorf("metric lectern_origin_%s missing", name)
		}
	}
	if srv.Stats().Responses(KindSegment, 200) != 2 || srv.Stats().HotHits.Load() != 1 {
		t.Fatalf("segment 200s=%d hot hits=%d", srv.Stats().Responses(KindSegment, 200), srv.Stats().HotHits.Load())
	}
}

// panickyStore panics on Get, as a buggy driver might.
type panickyStore struct{ Store }

func (panickyStore) Get(context.Context, string) (io.ReadCloser, objstore.Attrs, error) {
	panic("driver bug")
}

// A panic while reading storage for a fill fails that request with a 503; the process and its other
// requests go on.
func TestFillPanicIsContained(t *testing.T) {
	key := "hls/panic1/v1/720p/seg_00001.m4s"
	ts, srv := newOrigin(t, Config{Store: panickyStore{shieldBucket(t, false, map[string][]byte{key: []byte("x")})}, MaxStorageReads: 1})
	for range 3 { // with one slot, a leaked slot would make the second a queue timeout
		if resp, _ := get(t, http.DefaultClient, ts.URL+"/"+key); resp.StatusCode != 503 {
			t.Fatalf("fill that panicked: %d, want 503", resp.StatusCode)
		}
	}
	if resp, _ := get(t, http.DefaultClient, ts.URL+"/healthz"); resp.StatusCode != 200 {
		t.Fatalf("healthz after a panicking fill: %d", resp.StatusCode)
	}
	if n := srv.limit.inFlight(); n != 0 {
		t.Fatalf("%d storage slots still taken after the panics", n)
	}
	if srv.Stats().rejected[rejectQueueTimeout].Load() != 0 {
		t.Fatal("a request timed out waiting for a slot a panic had kept")
	}
}
