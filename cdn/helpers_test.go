package cdn

import (
	"bytes"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"sync"
	"testing"
	"time"
)

// clock is a settable time source for Config.Now.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func newClock() *clock { return &clock{t: time.Date(2025, 3, 1, 12, 0, 0, 0, time.UTC)} }

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *clock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

// upstream is a test origin that records what reaches it.
type upstream struct {
	*httptest.Server
	mu   sync.Mutex
	reqs []*http.Request // clones, for header and method checks
}

func newUpstream(t *testing.T, h http.HandlerFunc) *upstream {
	t.Helper()
	u := &upstream{}
	u.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		u.mu.Lock()
		u.reqs = append(u.reqs, r.Clone(r.Context()))
		u.mu.Unlock()
		h(w, r)
	}))
	t.Cleanup(u.Close)
	return u
}

// count returns how many requests for path (with query, if any) reached the upstream.
func (u *upstream) count(path string) int {
	u.mu.Lock()
	defer u.mu.Unlock()
	n := 0
	for _, r := range u.reqs {
		if r.URL.RequestURI() == path {
			n++
		}
	}
	return n
}

func (u *upstream) last() *http.Request {
	u.mu.Lock()
	defer u.mu.Unlock()
	if len(u.reqs) == 0 {
		return nil
	}
	return u.reqs[len(u.reqs)-1]
}

func newTestEdge(t *testing.T, up string, clk *clock, mod func(*Config)) (*Edge, *httptest.Server) {
	t.Helper()
	u, err := url.Parse(up)
	if err != nil {
		t.Fatal(err)
	}
	cfg := Config{Upstream: u, Logger: slog.New(slog.DiscardHandler)}
	if clk != nil {
		cfg.Now = clk.Now
	}
	if mod != nil {
		mod(&cfg)
	}
	e, err := NewEdge(cfg)
	if err != nil {
		t.Fatal(err)
	}
	ts := httptest.NewServer(e)
	t.Cleanup(ts.Close)
	return e, ts
}

type response struct {
	*http.Response
	body []byte
}

func get(t *testing.T, ts *httptest.Server, method, path string, hdr ...string) response {
	t.Helper()
	r, err := fetch(ts, method, path, hdr...)
	if err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	return r
}

// fetch is get for goroutines other than the test's, which must not call t.Fatal.
func fetch(ts *httptest.Server, method, path string, hdr ...string) (response, error) {
	req, err := http.NewRequest(method, ts.URL+path, nil)
	if err != nil {
		return response{}, err
	}
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	// Redirects are responses under test here, never followed.
	client := *ts.Client()
	client.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	resp, err := client.Do(req)
	if err != nil {
		return response{}, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return response{}, err
	}
	return response{resp, body}, nil
}

func (r response) cache() string { return r.Header.Get("X-Cache") }

// serveObject answers like an origin would: fixed headers, then http.ServeContent (so Range and
// conditionals work upstream too).
func serveObject(w http.ResponseWriter, r *http.Request, body []byte, hdr ...string) {
	for i := 0; i+1 < len(hdr); i += 2 {
		w.Header().Add(hdr[i], hdr[i+1])
	}
	var mod time.Time
	if lm := w.Header().Get("Last-Modified"); lm != "" {
		mod, _ = http.ParseTime(lm)
	}
	http.ServeContent(w, r, "", mod, bytes.NewReader(body))
}
