package loadtest

import (
	"context"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"
)

// hit is one request a fake server received.
type hit struct {
	path string
	cmcd map[string]string
	at   time.Time
}

// fakeCDN serves a synthetic lecture from memory over loopback HTTP and records every request.
// hook, when set, sees each request first and may answer it (returning true).
type fakeCDN struct {
	objects map[string][]byte
	hook    func(w http.ResponseWriter, r *http.Request) bool
	srv     *httptest.Server

	mu   sync.Mutex
	hits []hit
}

const lecture = "L1"

var masterPath = "/hls/" + lecture + "/v1/master.m3u8"

func newFakeCDN(t *testing.T, peaks []int, segSeconds float64, segments int, hook func(http.ResponseWriter, *http.Request) bool) *fakeCDN {
	t.Helper()
	f := &fakeCDN{objects: map[string][]byte{}, hook: hook}
	for k, v := range SyntheticLecture(lecture, peaks, segSeconds, segments) {
		f.objects["/"+k] = v
	}
	f.srv = httptest.NewServer(f)
	t.Cleanup(f.srv.Close)
	return f
}

func (f *fakeCDN) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	f.mu.Lock()
	f.hits = append(f.hits, hit{path: r.URL.Path, cmcd: parseCMCD(r.URL.Query().Get("CMCD")), at: time.Now()})
	f.mu.Unlock()
	if f.hook != nil && f.hook(w, r) {
		return
	}
	body, ok := f.objects[r.URL.Path]
	if !ok {
		http.NotFound(w, r)
		return
	}
	w.Write(body)
}

func (f *fakeCDN) requests() []hit {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]hit(nil), f.hits...)
}

// parseCMCD reads a CMCD payload as an edge does: bare keys are "true", strings unquoted.
func parseCMCD(s string) map[string]string {
	out := map[string]string{}
	if s == "" {
		return out
	}
	for item := range strings.SplitSeq(s, ",") {
		k, v, ok := strings.Cut(item, "=")
		if !ok {
			out[k] = "true"
			continue
		}
		if len(v) >= 2 && v[0] == '"' {
			v = strings.NewReplacer(`\"`, `"`, `\\`, `\`).Replace(v[1 : len(v)-1])
		}
		out[k] = v
	}
	return out
}

// testConfig is one student at a fixed bandwidth, accelerated, against target.
func testConfig(target string) Config {
	u, _ := url.Parse(target)
	return Config{Target: u, Playlists: []string{masterPath}, Students: 1, Ramp: RampInstant, Speed: 20,
		Watch: 20 * time.Second, Bandwidth: 4e6, MaxWall: 20 * time.Second, Timeout: 5 * time.Second}
}

func run(t *testing.T, cfg Config) *Report {
	t.Helper()
	rep, err := Run(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	return rep
}
