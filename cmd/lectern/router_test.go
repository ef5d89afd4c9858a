package main

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestRouterRole: `lectern router --regions FILE` sends a student to an edge of their region (by the
// X-Forwarded-For of a trusted proxy) with a 302, follows an edit of the file that drains that edge
// and adds another without a restart, and shows its decisions in /metrics.
func TestRouterRole(t *testing.T) {
	if testing.Short() {
		t.Skip("runs the lectern binary")
	}
	a, b, c := readyEdge(t), readyEdge(t), readyEdge(t)
	file := filepath.Join(t.TempDir(), "regions.json")
	write := func(seoulEdges string) {
		t.Helper()
		data := fmt.Sprintf(`{"default": "seoul", "regions": {
		  "seoul": {"edges": [%s], "prefixes": ["10.1.0.0/16"], "neighbours": ["busan-ulsan"]},
		  "busan-ulsan": {"edges": [{"url": %q}], "prefixes": ["10.2.0.0/16"]}}}`, seoulEdges, c.URL)
		if err := os.WriteFile(file+".new", []byte(data), 0o644); err != nil {
			t.Fatal(err)
		}
		if err := os.Rename(file+".new", file); err != nil {
			t.Fatal(err)
		}
	}
	write(fmt.Sprintf(`{"url": %q}`, a.URL))
	addr := freeAddr(t)
	startRole(t, addr, "router", "--listen", addr, "--regions", file, "--trust-forwarded-for", "127.0.0.1", "--probe-interval", "100ms")
	base := "http://" + addr
	const path = "/hls/lec1/v1/master.m3u8"
	route := func(xff string) reply {
		t.Helper()
		return do(t, "GET", base+path, "X-Forwarded-For", xff)
	}
	if r := route("10.1.0.9"); r.status != http.StatusFound || r.header.Get("Location") != a.URL+path {
		t.Fatalf("seoul student: %d Location %q, want 302 to %s", r.status, r.header.Get("Location"), a.URL+path)
	}
	if r := route("10.2.0.9"); r.header.Get("Location") != c.URL+path {
		t.Errorf("busan-ulsan student: Location %q, want %s", r.header.Get("Location"), c.URL+path)
	}
	_, metrics := fetch(t, base+"/metrics")
	for _, want := range []string{
		fmt.Sprintf(`lectern_router_decisions_total{edge=%q,region="seoul"} 1`, a.URL),
		fmt.Sprintf(`lectern_router_decisions_total{edge=%q,region="busan-ulsan"} 1`, c.URL),
		`lectern_router_unhealthy_edges{region="seoul"} 0`,
	} {
		if !strings.Contains(string(metrics), want) {
			t.Errorf("/metrics lacks %s", want)
		}
	}
	write(fmt.Sprintf(`{"url": %q, "drain": true}, {"url": %q}`, a.URL, b.URL))
	deadline := time.Now().Add(10 * time.Second)
	for route("10.1.0.9").header.Get("Location") != b.URL+path {
		if time.Now().After(deadline) {
			t.Fatalf("the edit was not followed: Location %q", route("10.1.0.9").header.Get("Location"))
		}
		time.Sleep(20 * time.Millisecond)
	}
	for range 5 {
		if loc := route("10.1.0.9").header.Get("Location"); loc != b.URL+path {
			t.Errorf("after the drain: Location %q, want %s", loc, b.URL+path)
		}
	}
	if r := do(t, "GET", base+"/readyz"); r.status != 200 {
		t.Errorf("/readyz %d %s", r.status, r.body)
	}
	if r := do(t, "GET", base+"/nothing"); r.status != http.StatusNotFound {
		t.Errorf("/nothing: %d", r.status)
	}
}

// readyEdge is an edge as the router sees it: a server whose /readyz answers 200.
func readyEdge(t *testing.T) *httptest.Server {
	s := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/readyz" {
			http.NotFound(w, r)
		}
	}))
	t.Cleanup(s.Close)
	return s
}

// TestRouterFlagErrors: bad router flags stop start-up with one line naming the flag.
func TestRouterFlagErrors(t *testing.T) {
	if testing.Short() {
		t.Skip("runs the lectern binary")
	}
	bad := filepath.Join(t.TempDir(), "bad.json")
	if err := os.WriteFile(bad, []byte(`{"default": "nowhere", "regions": {"seoul": {}}}`), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		args    []string
		mention string
	}{
		{[]string{"--trust-forwarded-for", "10.0.0.0/33"}, "--trust-forwarded-for"},
		{[]string{"--load-factor", "0.5"}, "--load-factor"},
		{[]string{"--probe-interval", "0s"}, "--probe-interval"},
		{[]string{"--regions", bad}, "nowhere"},
		{[]string{"--regions", filepath.Join(t.TempDir(), "missing.json")}, "--regions"},
	} {
		err, stderr, exited := runRefused(t, nil, append([]string{"router", "--listen", freeAddr(t)}, tc.args...)...)
		if !exited || err == nil || !strings.Contains(stderr, tc.mention) {
			t.Errorf("%v: exited %t, err %v, stderr %q; want a refusal naming %s", tc.args, exited, err, stderr, tc.mention)
		}
	}
}
