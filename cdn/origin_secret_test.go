package cdn

import (
	"bytes"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"
)

const originSecret = "edge-to-origin-secret-0123456789"

// syncBuffer collects log output from the edge's goroutines.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// Every request the edge sends upstream carries its own credential, never the client's, while the
// cache still decides on the client's request: the credential neither makes responses uncacheable
// nor stops collapsing.
func TestOriginSecretOnEveryUpstreamRequest(t *testing.T) {
	up := newUpstream(t, func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/healthz":
			w.Write([]byte("ok\n"))
		case "/seg":
			serveObject(w, r, segment, "Cache-Control", "max-age=1", "Etag", `"s1"`)
		case "/post":
			w.WriteHeader(http.StatusNoContent)
		case "/collapse":
			time.Sleep(100 * time.Millisecond) // long enough for the others to join
			serveObject(w, r, segment, "Cache-Control", "max-age=60")
		default:
			// Cacheable for a client without Authorization only (no public, no s-maxage).
			serveObject(w, r, segment, "Cache-Control", "max-age=60")
		}
	})
	logs := &syncBuffer{}
	clk := newClock()
	e, ts := newTestEdge(t, up.URL, clk, func(c *Config) {
		c.OriginSecret = originSecret
		c.Logger = slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	})
	want := "Bearer " + originSecret
	check := func(what string, r *http.Request) {
		t.Helper()
		if r == nil {
			t.Fatalf("%s: nothing reached the upstream", what)
		}
		if got := r.Header.Values("Authorization"); len(got) != 1 || got[0] != want {
			t.Errorf("%s: upstream got Authorization %q, want the edge's credential", what, got)
		}
	}

	if r := get(t, ts, "GET", "/seg"); r.cache() != "MISS" {
		t.Fatalf("fill: %s", r.cache())
	}
	check("fill", up.last())
	clk.Advance(2 * time.Second)
	if r := get(t, ts, "GET", "/seg"); r.cache() != "REVALIDATED" {
		t.Fatalf("revalidation: %s", r.cache())
	}
	check("revalidation", up.last())
	if up.last().Header.Get("If-None-Match") != `"s1"` {
		t.Errorf("revalidation sent If-None-Match %q", up.last().Header.Get("If-None-Match"))
	}
	get(t, ts, "HEAD", "/head")
	check("HEAD pass-through", up.last())
	if r := get(t, ts, "POST", "/post", "Authorization", "Bearer guess"); r.StatusCode != 204 {
		t.Fatalf("POST: %d", r.StatusCode)
	}
	check("POST pass-through with the client's Authorization", up.last())
	if r := get(t, ts, "GET", "/readyz"); r.StatusCode != 200 {
		t.Fatalf("readyz: %d", r.StatusCode)
	}
	check("readiness probe", up.last())

	// A client guessing a credential: the edge's replaces it upstream, and since the client sent
	// Authorization, a response that is not public is not stored for it.
	if r := get(t, ts, "GET", "/private-ish", "Authorization", "Bearer guess"); r.cache() != "MISS" {
		t.Fatalf("client with Authorization: %s", r.cache())
	}
	check("fill for a client with Authorization", up.last())
	get(t, ts, "GET", "/private-ish", "Authorization", "Bearer guess")
	if n := up.count("/private-ish"); n != 2 {
		t.Errorf("a response to a client with Authorization was stored (%d upstream requests, want 2)", n)
	}

	// The client without Authorization gets a stored response although the upstream request had one.
	get(t, ts, "GET", "/plain")
	if r := get(t, ts, "GET", "/plain"); r.cache() != "HIT" {
		t.Errorf("the edge's credential made the response uncacheable: %s", r.cache())
	}

	// And concurrent misses still collapse into one upstream request.
	for i, r := range concurrently(t, ts, 10, "/collapse") {
		if r.StatusCode != 200 || !bytes.Equal(r.body, segment) {
			t.Errorf("collapsed response %d: %d, %d bytes", i, r.StatusCode, len(r.body))
		}
	}
	if n := up.count("/collapse"); n != 1 {
		t.Errorf("10 concurrent misses made %d upstream requests, want 1", n)
	}
	if e.Stats().CollapsedWaiters.Load() == 0 {
		t.Error("no request waited on another's fill")
	}

	up.Close() // upstream failures are logged; the secret must not be
	get(t, ts, "GET", "/down")
	get(t, ts, "GET", "/readyz")
	if out := logs.String(); strings.Contains(out, originSecret) || !strings.Contains(out, "edge upstream failed") {
		t.Errorf("logs (secret must be absent, failure present):\n%s", out)
	}
}

func TestOriginSecretValidation(t *testing.T) {
	u, _ := url.Parse("http://127.0.0.1:1")
	for _, bad := range []string{"two words", "line\nbreak", "tab\tx", "caf\xc3\xa9"} {
		if _, err := NewEdge(Config{Upstream: u, OriginSecret: bad}); err == nil {
			t.Errorf("NewEdge accepted OriginSecret %q", bad)
		}
	}
	if _, err := NewEdge(Config{Upstream: u, OriginSecret: originSecret}); err != nil {
		t.Errorf("NewEdge refused a good secret: %v", err)
	}
}

// Without OriginSecret the edge is a plain proxy: the client's Authorization goes upstream as sent.
func TestNoOriginSecretForwardsClientAuthorization(t *testing.T) {
	up := newUpstream(t, func(w http.ResponseWriter, r *http.Request) {
		serveObject(w, r, segment, "Cache-Control", "max-age=60")
	})
	_, ts := newTestEdge(t, up.URL, nil, nil)
	get(t, ts, "GET", "/x", "Authorization", "Bearer client")
	if got := up.last().Header.Get("Authorization"); got != "Bearer client" {
		t.Errorf("upstream got Authorization %q", got)
	}
}
