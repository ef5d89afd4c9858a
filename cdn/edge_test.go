package cdn

import (
	"bytes"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
)

func TestByteBound(t *testing.T) {
	const budget = 64 << 10
	body := bytes.Repeat([]byte{'x'}, 10<<10)
	up := newUpstream(t, func(w http.ResponseWriter, r *http.Request) {
		serveObject(w, r, body, "Cache-Control", "max-age=600", "Content-Type", "video/iso.segment")
	})
	e, ts := newTestEdge(t, up.URL, nil, func(c *Config) { c.MemoryBytes = budget })

	check := func(when string) {
		t.Helper()
		if w := e.mem.cache.WeightedSize(); w > budget {
			t.Fatalf("%s: weighted size %d above the budget of %d", when, w, budget)
		}
		e.mem.cache.CleanUp()
		st := e.Stats()
		if w := e.mem.cache.WeightedSize(); uint64(st.CacheBytes.Load()) != w || w > budget {
			t.Fatalf("%s: CacheBytes gauge %d, weighted size %d, budget %d", when, st.CacheBytes.Load(), w, budget)
		}
		if n := e.mem.cache.EstimatedSize(); int64(n) != st.CacheEntries.Load() {
			t.Fatalf("%s: CacheEntries gauge %d, cache holds %d", when, st.CacheEntries.Load(), n)
		}
	}
	for i := range 40 {
		if r := get(t, ts, "GET", fmt.Sprintf("/seg_%05d.m4s", i)); r.StatusCode != 200 || len(r.body) != len(body) {
			t.Fatalf("seg %d: %d, %d bytes", i, r.StatusCode, len(r.body))
		}
		check(fmt.Sprintf("after segment %d", i))
	}

	// Concurrent fills of many keys, with the bound sampled while they run.
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Go(func() {
			for i := range 25 {
				if _, err := fetch(ts, "GET", fmt.Sprintf("/c%d_%d.m4s", g, i)); err != nil {
					t.Error(err)
				}
			}
		})
	}
	stop := make(chan struct{})
	sampled := make(chan struct{})
	go func() {
		defer close(sampled)
		for {
			select {
			case <-stop:
				return
			default:
			}
			if w := e.mem.cache.WeightedSize(); w > budget {
				t.Errorf("weighted size %d above the budget of %d while filling", w, budget)
				return
			}
		}
	}()
	wg.Wait()
	close(stop)
	<-sampled
	check("after concurrent fills")
	if e.Stats().Evictions.Load() == 0 {
		t.Error("no evictions after filling several times the budget")
	}
}

func TestLargeObjectsStreamUncached(t *testing.T) {
	big := bytes.Repeat([]byte("0123456789"), 400) // 4000 bytes
	small := big[:500]
	up := newUpstream(t, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Cache-Control", "max-age=60")
		switch r.URL.Path {
		case "/big":
			serveObject(w, r, big)
		case "/chunked-big", "/chunked-small":
			b := big
			if r.URL.Path == "/chunked-small" {
				b = small
			}
			// Flushing before the end makes the length unknown: chunked encoding.
			w.Write(b[:100])
			w.(http.Flusher).Flush()
			w.Write(b[100:])
		}
	})
	e, ts := newTestEdge(t, up.URL, nil, func(c *Config) { c.MaxObjectBytes = 1024 })

	for _, path := range []string{"/big", "/chunked-big"} {
		for i := range 2 {
			r := get(t, ts, "GET", path)
			if r.StatusCode != 200 || !bytes.Equal(r.body, big) || r.cache() != "MISS" {
				t.Errorf("%s #%d: %d %s, %d bytes", path, i, r.StatusCode, r.cache(), len(r.body))
			}
		}
		if n := up.count(path); n != 2 {
			t.Errorf("%s: upstream saw %d requests, want 2 (never cached)", path, n)
		}
	}
	get(t, ts, "GET", "/chunked-small")
	if r := get(t, ts, "GET", "/chunked-small"); r.cache() != "HIT" || !bytes.Equal(r.body, small) {
		t.Errorf("small object of unknown length: %s, %d bytes", r.cache(), len(r.body))
	}
	if got := e.Stats().CacheEntries.Load(); got != 1 {
		t.Errorf("CacheEntries = %d, want 1", got)
	}

	// A Range on a large object is the client's business: its own request goes upstream.
	r := get(t, ts, "GET", "/big", "Range", "bytes=10-19")
	if r.StatusCode != 206 || !bytes.Equal(r.body, big[10:20]) || r.Header.Get("Content-Range") != "bytes 10-19/4000" {
		t.Errorf("range of a large object: %d %q %q", r.StatusCode, r.body, r.Header.Get("Content-Range"))
	}
	if got := up.last().Header.Get("Range"); got != "bytes=10-19" {
		t.Errorf("upstream saw Range %q", got)
	}
}

func TestHopByHopHeaders(t *testing.T) {
	up := newUpstream(t, func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		h.Set("Connection", "X-Hop")
		h.Set("X-Hop", "1")
		h.Set("Keep-Alive", "timeout=5")
		h.Set("Proxy-Authenticate", "Basic")
		h.Set("X-End", "1")
		h.Set("Via", "1.1 origin")
		serveObject(w, r, segment, "Cache-Control", "max-age=60")
	})
	_, ts := newTestEdge(t, up.URL, nil, nil)
	for _, want := range []string{"MISS", "HIT"} {
		r := get(t, ts, "GET", "/seg", "Connection", "X-Secret", "X-Secret", "s",
			"Proxy-Authorization", "Basic eA==", "X-Keep", "k")
		if r.cache() != want {
			t.Fatalf("X-Cache %s, want %s", r.cache(), want)
		}
		for _, name := range []string{"X-Hop", "Keep-Alive", "Proxy-Authenticate"} {
			if v := r.Header.Get(name); v != "" {
				t.Errorf("%s: response header %s = %q was forwarded", want, name, v)
			}
		}
		if r.Header.Get("X-End") != "1" {
			t.Errorf("%s: end-to-end header lost", want)
		}
		if via := strings.Join(r.Header.Values("Via"), ", "); via != "1.1 origin, 1.1 lectern-edge" {
			t.Errorf("%s: Via %q", want, via)
		}
	}
	req := up.last()
	for _, name := range []string{"X-Secret", "Proxy-Authorization"} {
		if v := req.Header.Get(name); v != "" {
			t.Errorf("request header %s = %q reached the upstream", name, v)
		}
	}
	if req.Header.Get("X-Keep") != "k" || !strings.Contains(req.Header.Get("Via"), "lectern-edge") ||
		req.Header.Get("X-Forwarded-For") == "" {
		t.Errorf("upstream request headers: %v", req.Header)
	}
}

func TestUnsafeMethodInvalidates(t *testing.T) {
	up := newUpstream(t, func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodPost {
			w.WriteHeader(http.StatusNoContent)
			return
		}
		serveObject(w, r, segment, "Cache-Control", "max-age=60")
	})
	e, ts := newTestEdge(t, up.URL, nil, nil)
	get(t, ts, "GET", "/x")
	if r := get(t, ts, "GET", "/x"); r.cache() != "HIT" {
		t.Fatalf("second GET: %s", r.cache())
	}
	if r := get(t, ts, "POST", "/x"); r.StatusCode != 204 || r.cache() != "BYPASS" {
		t.Fatalf("POST: %d %s", r.StatusCode, r.cache())
	}
	if r := get(t, ts, "GET", "/x"); r.cache() != "MISS" {
		t.Errorf("GET after POST: %s, want MISS", r.cache())
	}
	if e.Stats().Bypasses.Load() != 1 {
		t.Errorf("Bypasses = %d", e.Stats().Bypasses.Load())
	}
}

func TestUpstreamBasePath(t *testing.T) {
	up := newUpstream(t, func(w http.ResponseWriter, r *http.Request) {
		serveObject(w, r, []byte(r.URL.RequestURI()), "Cache-Control", "max-age=60")
	})
	_, ts := newTestEdge(t, up.URL+"/base/", nil, nil)
	if r := get(t, ts, "GET", "/hls/a%20b/x.m3u8?q=1"); string(r.body) != "/base/hls/a%20b/x.m3u8?q=1" {
		t.Errorf("upstream request URI %q", r.body)
	}
}

func TestNewEdgeValidation(t *testing.T) {
	for _, raw := range []string{"", "ftp://x", "/relative", "http://"} {
		var u *url.URL
		if raw != "" {
			u, _ = url.Parse(raw)
		}
		if _, err := NewEdge(Config{Upstream: u}); err == nil {
			t.Errorf("NewEdge accepted upstream %q", raw)
		}
	}
}

func TestStatsAndCollector(t *testing.T) {
	up := newUpstream(t, func(w http.ResponseWriter, r *http.Request) {
		serveObject(w, r, segment, "Cache-Control", "max-age=60")
	})
	e, ts := newTestEdge(t, up.URL, nil, nil)
	get(t, ts, "GET", "/a")
	get(t, ts, "GET", "/a")
	st := e.Stats()
	if st.Hits.Load() != 1 || st.Misses.Load() != 1 || st.UpstreamFetches.Load() != 1 ||
		st.BytesOut.Load() != 2*int64(len(segment)) || st.CacheEntries.Load() != 1 || st.CacheBytes.Load() <= 1000 {
		t.Errorf("stats: hits %d misses %d fetches %d bytes %d entries %d cache bytes %d", st.Hits.Load(),
			st.Misses.Load(), st.UpstreamFetches.Load(), st.BytesOut.Load(), st.CacheEntries.Load(), st.CacheBytes.Load())
	}
	reg := prometheus.NewPedanticRegistry()
	if err := reg.Register(e.Collector()); err != nil {
		t.Fatal(err)
	}
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	values := map[string]float64{}
	for _, mf := range mfs {
		for _, m := range mf.Metric {
			switch {
			case m.Counter != nil:
				values[mf.GetName()] = m.Counter.GetValue()
			case m.Histogram != nil:
				values[mf.GetName()] = float64(m.Histogram.GetSampleCount())
			default:
				values[mf.GetName()] = m.Gauge.GetValue()
			}
		}
	}
	if values["lectern_edge_hits_total"] != 1 || values["lectern_edge_cache_entries"] != 1 ||
		values["lectern_edge_upstream_seconds"] != 1 || values["lectern_edge_peer_seconds"] != 0 || len(values) != 41 {
		t.Errorf("metrics: %v", values)
	}
}

// A plain hit is written from the entry's prepared header (serveFull); a conditional one goes through
// http.ServeContent. Both must send the same fields, and serving must never edit what the entry
// shares between responses.
func TestFullHitHeaders(t *testing.T) {
	up := newUpstream(t, func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		h["Content-Type"] = nil // the upstream sends none; nobody may sniff one
		h.Set("Etag", `"v1"`)
		h.Set("Last-Modified", "Sat, 01 Mar 2025 11:00:00 GMT")
		h.Add("Via", "1.1 origin")
		h.Add("Cache-Status", "lectern-origin; hit")
		h.Set("Cache-Control", "max-age=600")
		h.Set("Content-Length", strconv.Itoa(len(segment)))
		w.Write(segment)
	})
	_, ts := newTestEdge(t, up.URL, newClock(), nil)
	if r := get(t, ts, "GET", "/seg"); r.cache() != "MISS" || !bytes.Equal(r.body, segment) {
		t.Fatalf("first request: %s, %d bytes", r.cache(), len(r.body))
	}
	plain := []response{get(t, ts, "GET", "/seg"), get(t, ts, "GET", "/seg")}
	viaServeContent := get(t, ts, "GET", "/seg", "If-None-Match", `"other"`)
	for i, r := range append(plain, viaServeContent) {
		if r.StatusCode != 200 || r.cache() != "HIT" || !bytes.Equal(r.body, segment) {
			t.Fatalf("response %d: %d %s, %d bytes", i, r.StatusCode, r.cache(), len(r.body))
		}
		if ct, ok := r.Header["Content-Type"]; ok {
			t.Errorf("response %d: Content-Type %q added", i, ct)
		}
		for name, want := range map[string]string{
			"Content-Length": strconv.Itoa(len(segment)),
			"Via":            "1.1 origin, 1.1 lectern-edge",
			"Cache-Status":   "lectern-origin; hit, lectern-edge; hit; ttl=600",
			"Accept-Ranges":  "bytes",
			"Etag":           `"v1"`,
			"Last-Modified":  "Sat, 01 Mar 2025 11:00:00 GMT",
			"Age":            "0",
		} {
			if got := strings.Join(r.Header.Values(name), ", "); got != want {
				t.Errorf("response %d: %s %q, want %q", i, name, got, want)
			}
		}
	}
	if up.count("/seg") != 1 {
		t.Errorf("upstream saw %d requests, want 1", up.count("/seg"))
	}
}
