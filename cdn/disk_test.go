package cdn

import (
	"bytes"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// objectBody is what the disk tests' upstream serves for path: distinct per path (and per version),
// so that a response served from another key's file or an old version is caught.
func objectBody(path string, version int64) []byte {
	return bytes.Repeat([]byte(fmt.Sprintf("%s@v%d;", path, version)), 64)
}

// diskUpstream serves objectBody for every path, fresh for an hour; bumping version changes every body.
func diskUpstream(t *testing.T) (*upstream, *atomic.Int64) {
	var version atomic.Int64
	up := newUpstream(t, func(w http.ResponseWriter, r *http.Request) {
		serveObject(w, r, objectBody(r.URL.Path, version.Load()), "Cache-Control", "max-age=3600", "Content-Type", "video/mp4")
	})
	return up, &version
}

// diskEdge starts an edge with a disk tier in dir; its writes are flushed when the test ends.
func diskEdge(t *testing.T, upURL, dir string, clk *clock, mod func(*Config)) (*Edge, string) {
	t.Helper()
	e, ts := newTestEdge(t, upURL, clk, func(c *Config) {
		c.DiskDir = dir
		if mod != nil {
			mod(c)
		}
	})
	t.Cleanup(func() { e.Close() })
	return e, ts.URL
}

func getURL(t *testing.T, base, path string) response {
	t.Helper()
	resp, err := http.Get(base + path)
	if err != nil {
		t.Fatalf("GET %s: %v", path, err)
	}
	defer resp.Body.Close()
	var buf bytes.Buffer
	if _, err := buf.ReadFrom(resp.Body); err != nil {
		t.Fatalf("GET %s: %v", path, err)
	}
	return response{resp, buf.Bytes()}
}

// expect checks that path answers 200 with want and the given X-Cache.
func expect(t *testing.T, base, path string, want []byte, cache string) response {
	t.Helper()
	r := getURL(t, base, path)
	if r.StatusCode != 200 || !bytes.Equal(r.body, want) || r.cache() != cache {
		t.Fatalf("GET %s: %d %s, body %.40q; want 200 %s %.40q", path, r.StatusCode, r.cache(), r.body, cache, want)
	}
	return r
}

func diskFile(dir, key string) string { return filepath.Join(dir, diskName(key)) }

// TestDiskRestartServesHits: a new edge on a warm disk tier answers from it with no upstream
// request, says so in Cache-Status, promotes to memory, and its counters add up.
func TestDiskRestartServesHits(t *testing.T) {
	up, _ := diskUpstream(t)
	dir, clk := t.TempDir(), newClock()
	paths := []string{"/hls/a/v1/seg_1.m4s", "/hls/a/v1/index.m3u8?x=1"}
	first, base := diskEdge(t, up.URL, dir, clk, nil)
	for _, p := range paths {
		expect(t, base, p, objectBody(strings.Split(p, "?")[0], 0), "MISS")
	}
	first.Close()
	if n := first.Stats().DiskEntries.Load(); n != 2 {
		t.Fatalf("disk entries after two fills: %d", n)
	}
	// A write a crash interrupted leaves a temp file, which start-up deletes.
	leftover := diskFile(dir, paths[0]) + ".123.tmp"
	if err := os.WriteFile(leftover, []byte("half"), 0o644); err != nil {
		t.Fatal(err)
	}

	up.mu.Lock()
	before := len(up.reqs)
	up.mu.Unlock()
	clk.Advance(time.Minute)
	second, base := diskEdge(t, up.URL, dir, clk, nil)
	if _, err := os.Stat(leftover); err == nil {
		t.Error("start-up kept a temp file")
	}
	for _, p := range paths {
		r := expect(t, base, p, objectBody(strings.Split(p, "?")[0], 0), "HIT")
		if cs := r.Header.Get("Cache-Status"); !strings.HasPrefix(cs, "lectern-edge; hit; ttl=3540") || !strings.HasSuffix(cs, "; detail=disk") {
			t.Errorf("disk hit %s: Cache-Status %q", p, cs)
		}
		if age := r.Header.Get("Age"); age != "60" {
			t.Errorf("disk hit %s: Age %q, want 60 (the age survives the restart)", p, age)
		}
		// The stored header comes back whole; nothing is sniffed or lost.
		if r.Header.Get("Content-Type") != "video/mp4" || r.Header.Get("Cache-Control") != "max-age=3600" ||
			r.Header.Get("Via") != "1.1 lectern-edge" || r.Header.Get("Content-Length") != strconv.Itoa(len(r.body)) {
			t.Errorf("disk hit %s: header %v", p, r.Header)
		}
		r = expect(t, base, p, objectBody(strings.Split(p, "?")[0], 0), "HIT")
		if cs := r.Header.Get("Cache-Status"); strings.Contains(cs, "disk") {
			t.Errorf("second hit %s should come from memory: Cache-Status %q", p, cs)
		}
	}
	up.mu.Lock()
	after := len(up.reqs)
	up.mu.Unlock()
	if n := after - before; n != 0 {
		t.Errorf("the restarted edge sent %d upstream requests, want 0", n)
	}
	st := second.Stats()
	size, bodies := int64(0), int64(0)
	for _, p := range paths {
		bodies += int64(len(objectBody(strings.Split(p, "?")[0], 0)))
		fi, err := os.Stat(diskFile(dir, p))
		if err != nil {
			t.Fatal(err)
		}
		size += fi.Size()
	}
	if st.DiskHits.Load() != 2 || st.MemoryHits.Load() != 2 || st.MemoryMisses.Load() != 2 || st.DiskMisses.Load() != 0 ||
		st.DiskHitBytes.Load() != bodies || st.DiskEntries.Load() != 2 ||
		st.DiskBytes.Load() != size || st.DiskCorrupt.Load() != 0 {
		t.Errorf("stats: disk hits %d (%d bytes), memory hits %d misses %d, disk misses %d, entries %d, bytes %d (files %d), corrupt %d",
			st.DiskHits.Load(), st.DiskHitBytes.Load(), st.MemoryHits.Load(), st.MemoryMisses.Load(), st.DiskMisses.Load(),
			st.DiskEntries.Load(), st.DiskBytes.Load(), size, st.DiskCorrupt.Load())
	}
}

// TestDiskCorruptEntries: a truncated file, a flipped byte and another key's file under a key's name
// are detected, deleted, counted and refetched, never served, whether the damage predates start-up
// or happens while the edge runs.
func TestDiskCorruptEntries(t *testing.T) {
	const a, b = "/hls/a/seg_1.m4s", "/hls/a/seg_2.m4s"
	damages := map[string]func(t *testing.T, dir string){
		"truncated": func(t *testing.T, dir string) {
			fi, err := os.Stat(diskFile(dir, a))
			if err != nil {
				t.Fatal(err)
			}
			if err := os.Truncate(diskFile(dir, a), fi.Size()-10); err != nil {
				t.Fatal(err)
			}
		},
		"flipped byte": func(t *testing.T, dir string) {
			data, err := os.ReadFile(diskFile(dir, a))
			if err != nil {
				t.Fatal(err)
			}
			data[len(data)-100] ^= 0x01 // in the body: the prefix and meta still check out
			if err := os.WriteFile(diskFile(dir, a), data, 0o644); err != nil {
				t.Fatal(err)
			}
		},
		"another key's file": func(t *testing.T, dir string) {
			if err := os.Rename(diskFile(dir, b), diskFile(dir, a)); err != nil {
				t.Fatal(err)
			}
		},
	}
	for name, damage := range damages {
		for _, when := range []string{"before start-up", "while running"} {
			t.Run(name+" "+when, func(t *testing.T) {
				up, version := diskUpstream(t)
				dir := t.TempDir()
				first, base := diskEdge(t, up.URL, dir, nil, nil)
				expect(t, base, a, objectBody(a, 0), "MISS")
				expect(t, base, b, objectBody(b, 0), "MISS")
				first.Close()
				// Refetches get a new version, so a body served from the damaged file would show.
				version.Store(1)
				if when == "before start-up" {
					damage(t, dir)
				}
				second, base := diskEdge(t, up.URL, dir, nil, nil)
				if when == "while running" {
					damage(t, dir)
				}
				before := up.count(a)
				r := expect(t, base, a, objectBody(a, 1), "MISS")
				if cs := r.Header.Get("Cache-Status"); !strings.Contains(cs, "fwd=uri-miss") {
					t.Errorf("refetch: Cache-Status %q", cs)
				}
				if up.count(a) != before+1 {
					t.Errorf("%s was not refetched", a)
				}
				if n := second.Stats().DiskCorrupt.Load(); n != 1 {
					t.Errorf("corrupt entries counted: %d, want 1", n)
				}
				second.Close()
				// The refetched object replaced the damaged file.
				data, err := os.ReadFile(diskFile(dir, a))
				if err != nil {
					t.Fatal(err)
				}
				if _, err := decodeEntry(a, data); err != nil {
					t.Errorf("after the refetch the file is still bad: %v", err)
				}
			})
		}
	}
}

// TestDiskByteBound: the disk tier stays within DiskBytes, evicting the least recently used files,
// at run time and when a restart finds more than the bound.
func TestDiskByteBound(t *testing.T) {
	up, _ := diskUpstream(t)
	dir := t.TempDir()
	path := func(i int) string { return fmt.Sprintf("/hls/b/seg_%02d.m4s", i) }
	// Files are a little over the body's size; the bound holds three.
	fileSize := int64(len(objectBody(path(0), 0)) + 400)
	bound := 3*fileSize + fileSize/2
	first, base := diskEdge(t, up.URL, dir, nil, func(c *Config) { c.DiskBytes = bound })
	for i := range 3 {
		expect(t, base, path(i), objectBody(path(i), 0), "MISS")
	}
	first.Close()

	second, base := diskEdge(t, up.URL, dir, nil, func(c *Config) { c.DiskBytes = bound })
	if n := second.Stats().DiskEntries.Load(); n != 3 {
		t.Fatalf("restart found %d entries, want 3", n)
	}
	expect(t, base, path(0), objectBody(path(0), 0), "HIT") // read from disk: now the most recent
	for i := 3; i < 8; i++ {
		if i == 7 {
			// File times can be as coarse as a clock tick; the restart below orders files by them.
			time.Sleep(20 * time.Millisecond)
		}
		expect(t, base, path(i), objectBody(path(i), 0), "MISS")
		second.disk.wait()
	}
	second.Close()
	st := second.Stats()
	var total int64
	files := 0
	filepath.Walk(dir, func(_ string, fi os.FileInfo, _ error) error {
		if fi != nil && !fi.IsDir() {
			total += fi.Size()
			files++
		}
		return nil
	})
	if total > bound || st.DiskBytes.Load() != total || st.DiskEntries.Load() != int64(files) || st.DiskEvictions.Load() == 0 {
		t.Errorf("files %d of %d bytes (bound %d); gauges %d entries %d bytes; evictions %d", files, total, bound,
			st.DiskEntries.Load(), st.DiskBytes.Load(), st.DiskEvictions.Load())
	}
	if _, err := os.Stat(diskFile(dir, path(7))); err != nil {
		t.Error("the newest file was evicted")
	}

	// A smaller bound on restart evicts down to it.
	third, _ := diskEdge(t, up.URL, dir, nil, func(c *Config) { c.DiskBytes = fileSize + fileSize/2 })
	if n := third.Stats().DiskEntries.Load(); n != 1 {
		t.Errorf("restart with a one-file bound kept %d entries", n)
	}
	if _, err := os.Stat(diskFile(dir, path(7))); err != nil {
		t.Error("the restart kept another file than the most recent one")
	}
}

// TestDiskPurge: a purge deletes the disk files of its keys (counted once with their memory
// entries), and a purged object is never served again, by this edge or after a restart; a write
// that was under way when the purge ran is dropped.
func TestDiskPurge(t *testing.T) {
	up, version := diskUpstream(t)
	dir := t.TempDir()
	keys := []string{"/hls/a/1.m4s", "/hls/a/2.m4s", "/hls/b/1.m4s"}
	first, base := diskEdge(t, up.URL, dir, nil, nil)
	for _, k := range keys {
		expect(t, base, k, objectBody(k, 0), "MISS")
	}
	first.disk.wait()
	version.Store(1)
	if n := first.Purge("/hls/a/"); n != 2 {
		t.Errorf("Purge(/hls/a/) = %d, want 2", n)
	}
	for _, k := range keys[:2] {
		if _, err := os.Stat(diskFile(dir, k)); err == nil {
			t.Errorf("%s is still on disk after the purge", k)
		}
	}
	if st := first.Stats(); st.DiskEntries.Load() != 1 {
		t.Errorf("disk entries after the purge: %d", st.DiskEntries.Load())
	}
	expect(t, base, keys[0], objectBody(keys[0], 1), "MISS")
	first.Close()

	second, base := diskEdge(t, up.URL, dir, nil, nil)
	expect(t, base, keys[0], objectBody(keys[0], 1), "HIT") // refetched after the purge, so kept
	expect(t, base, keys[1], objectBody(keys[1], 1), "MISS")
	expect(t, base, keys[2], objectBody(keys[2], 0), "HIT") // not purged

	// A write that started before a purge must not land after it.
	ent := newEntry(keys[2], 200, http.Header{"Cache-Control": {"max-age=3600"}}, []byte("old"),
		plainRequest(), time.Now(), time.Now(), time.Hour)
	gen := second.purge.Current()
	second.purge.Hold(func() { second.disk.write("/hls/b/2.m4s", ent, gen) })
	second.Purge("/hls/b/")
	second.Close()
	if _, err := os.Stat(diskFile(dir, "/hls/b/2.m4s")); err == nil {
		t.Error("a write under way during the purge landed on disk")
	}
	third, base := diskEdge(t, up.URL, dir, nil, nil)
	expect(t, base, keys[2], objectBody(keys[2], 1), "MISS")
	if n := third.Stats().DiskCorrupt.Load(); n != 0 {
		t.Errorf("corrupt entries: %d", n)
	}
}

func plainRequest() *http.Request {
	r, _ := http.NewRequest("GET", "http://edge/", nil)
	return r
}

// TestDiskConcurrentReaders: readers served mostly from disk (the memory tier holds a few entries)
// while purges force refills that rewrite the files never see a wrong, partial or corrupt body.
func TestDiskConcurrentReaders(t *testing.T) {
	up, _ := diskUpstream(t)
	dir := t.TempDir()
	e, base := diskEdge(t, up.URL, dir, nil, func(c *Config) { c.MemoryBytes = 8 << 10 })
	path := func(i int) string { return fmt.Sprintf("/hls/c/seg_%d.m4s", i) }
	stop := make(chan struct{})
	var purges sync.WaitGroup
	purges.Add(1)
	go func() {
		defer purges.Done()
		for i := 0; ; i++ {
			select {
			case <-stop:
				return
			case <-time.After(2 * time.Millisecond):
				e.Purge(path(i % 16))
			}
		}
	}()
	var wg sync.WaitGroup
	errs := make(chan error, 16)
	for g := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 60 {
				p := path((g*7 + i) % 16)
				resp, err := http.Get(base + p)
				if err != nil {
					errs <- err
					return
				}
				var buf bytes.Buffer
				buf.ReadFrom(resp.Body)
				resp.Body.Close()
				if resp.StatusCode != 200 || !bytes.Equal(buf.Bytes(), objectBody(p, 0)) {
					errs <- fmt.Errorf("GET %s: %d, %d bytes %.30q", p, resp.StatusCode, buf.Len(), buf.Bytes())
					return
				}
			}
		}()
	}
	wg.Wait()
	close(stop)
	purges.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	st := e.Stats()
	if st.DiskCorrupt.Load() != 0 || st.DiskHits.Load() == 0 {
		t.Errorf("corrupt %d, disk hits %d (the test wants reads from disk)", st.DiskCorrupt.Load(), st.DiskHits.Load())
	}
}

// TestDiskInvalidation: a successful unsafe request deletes the stored response from disk as well
// as from memory, so a restart does not bring it back.
func TestDiskInvalidation(t *testing.T) {
	up, version := diskUpstream(t)
	dir := t.TempDir()
	const p = "/hls/d/master.m3u8"
	first, base := diskEdge(t, up.URL, dir, nil, nil)
	expect(t, base, p, objectBody(p, 0), "MISS")
	first.disk.wait()
	resp, err := http.Post(base+p, "text/plain", strings.NewReader("x"))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("POST: %d", resp.StatusCode)
	}
	if _, err := os.Stat(diskFile(dir, p)); err == nil {
		t.Error("the file survived a POST to its URL")
	}
	first.Close()
	version.Store(1)
	_, base = diskEdge(t, up.URL, dir, nil, nil)
	expect(t, base, p, objectBody(p, 1), "MISS")
}
