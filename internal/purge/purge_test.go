package purge

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"
)

func TestMatcher(t *testing.T) {
	keys := []string{"/hls/a/v1/master.m3u8", "/hls/a/v2/x?q=1", "/hls/ab/v1/x", "/hls/b/seg.ts",
		"/hls/b/seg.ts?q=2", "/hls/b/seg.ts2", "/hls/b/seg.ts/x"}
	for _, tc := range []struct {
		target string
		want   []string
	}{
		{"/hls/a/", []string{"/hls/a/v1/master.m3u8", "/hls/a/v2/x?q=1"}},
		{"/hls/", keys},
		{"/hls/b/seg.ts", []string{"/hls/b/seg.ts", "/hls/b/seg.ts?q=2"}},
		{"/hls/a", nil}, // a path, not a prefix: only the key "/hls/a" itself
		{"/nothing/", nil},
	} {
		match := Matcher(tc.target)
		var got []string
		for _, k := range keys {
			if match(k) {
				got = append(got, k)
			}
		}
		if strings.Join(got, " ") != strings.Join(tc.want, " ") {
			t.Errorf("Matcher(%q) matched %v, want %v", tc.target, got, tc.want)
		}
	}
}

func TestRequestTarget(t *testing.T) {
	for _, tc := range []struct {
		req  Request
		want string // "" for an error
	}{
		{Request{Prefix: "/hls/a/"}, "/hls/a/"},
		{Request{Path: "/hls/a/v1/x"}, "/hls/a/v1/x"},
		{Request{}, ""},
		{Request{Prefix: "/hls/a/", Path: "/hls/a/x"}, ""},
		{Request{Prefix: "hls/a/"}, ""},
		{Request{Prefix: "/hls/a"}, ""},
		{Request{Path: "/hls/a/"}, ""},
		{Request{Path: "hls/a"}, ""},
	} {
		got, err := tc.req.Target()
		if got != tc.want || (err == nil) != (tc.want != "") {
			t.Errorf("%+v: %q, %v; want %q", tc.req, got, err, tc.want)
		}
	}
	for _, target := range []string{"/hls/a/", "/hls/a/v1/x", "/"} {
		if got, err := RequestFor(target).Target(); got != target || err != nil {
			t.Errorf("RequestFor(%q).Target() = %q, %v", target, got, err)
		}
	}
}

// recorder is a purge function that remembers its targets and answers a fixed count.
type recorder struct {
	mu      sync.Mutex
	targets []string
}

func (r *recorder) purge(target string) int {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.targets = append(r.targets, target)
	return len(r.targets)
}

func (r *recorder) got() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]string(nil), r.targets...)
}

func serve(t *testing.T, secret, name string) (*httptest.Server, *recorder) {
	t.Helper()
	rec := &recorder{}
	mux := http.NewServeMux()
	mux.Handle(Path, Handler(secret, slog.New(slog.DiscardHandler), name, rec.purge))
	ts := httptest.NewServer(mux)
	t.Cleanup(ts.Close)
	return ts, rec
}

func do(t *testing.T, method, url, authz, body string) (*http.Response, string) {
	t.Helper()
	req, err := http.NewRequest(method, url, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if authz != "" {
		req.Header.Set("Authorization", authz)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp, string(b)
}

func TestHandler(t *testing.T) {
	off, offRec := serve(t, "", "edge")
	if resp, _ := do(t, "POST", off.URL+Path, "Bearer x", `{"prefix":"/hls/"}`); resp.StatusCode != 404 {
		t.Errorf("no secret configured: %d, want 404", resp.StatusCode)
	}
	if len(offRec.got()) != 0 {
		t.Error("an endpoint without a secret purged")
	}

	ts, rec := serve(t, "s3cret", "origin")
	for _, tc := range []struct {
		name, method, authz, body string
		status                    int
		want                      string // body substring
	}{
		{"no auth", "POST", "", `{"prefix":"/hls/a/"}`, 401, "unauthorized"},
		{"wrong secret", "POST", "Bearer s3cre", `{"prefix":"/hls/a/"}`, 401, ""},
		{"longer secret", "POST", "Bearer s3cret!", `{"prefix":"/hls/a/"}`, 401, ""},
		{"basic", "POST", "Basic s3cret", `{"prefix":"/hls/a/"}`, 401, ""},
		{"no scheme", "POST", "s3cret", `{"prefix":"/hls/a/"}`, 401, ""},
		{"get", "GET", "Bearer s3cret", "", 405, ""},
		{"not json", "POST", "Bearer s3cret", `prefix=/hls/a/`, 400, `want JSON {"prefix": "/hls/ID/"}`},
		{"unknown field", "POST", "Bearer s3cret", `{"prefx":"/hls/a/"}`, 400, "want JSON"},
		{"relative", "POST", "Bearer s3cret", `{"prefix":"hls/a/"}`, 400, `"prefix" must start and end with "/"`},
		{"prefix without slash", "POST", "Bearer s3cret", `{"prefix":"/hls/a"}`, 400, "must start and end"},
		{"path with slash", "POST", "Bearer s3cret", `{"path":"/hls/a/"}`, 400, `use "prefix" for a folder`},
		{"both", "POST", "Bearer s3cret", `{"prefix":"/hls/a/","path":"/hls/a/x"}`, 400, "exactly one"},
		{"empty", "POST", "Bearer s3cret", `{}`, 400, "exactly one"},
		{"path", "POST", "bearer s3cret", `{"path":"/hls/a/v1/seg.m4s"}`, 200, `{"purged":1}`},
		{"prefix", "POST", "Bearer  s3cret ", `{"prefix":"/hls/a/"}`, 200, `{"purged":2}`},
	} {
		resp, body := do(t, tc.method, ts.URL+Path, tc.authz, tc.body)
		if resp.StatusCode != tc.status || !strings.Contains(body, tc.want) {
			t.Errorf("%s: %d %q, want %d with %q", tc.name, resp.StatusCode, body, tc.status, tc.want)
		}
		if cc := resp.Header.Get("Cache-Control"); cc != "no-store" {
			t.Errorf("%s: Cache-Control %q", tc.name, cc)
		}
		switch resp.StatusCode {
		case 401:
			if got := resp.Header.Get("WWW-Authenticate"); got != `Bearer realm="lectern-origin"` {
				t.Errorf("%s: WWW-Authenticate %q", tc.name, got)
			}
		case 405:
			if got := resp.Header.Get("Allow"); got != "POST" {
				t.Errorf("%s: Allow %q", tc.name, got)
			}
		case 200:
			if got := resp.Header.Get("Content-Type"); got != "application/json" {
				t.Errorf("%s: Content-Type %q", tc.name, got)
			}
		}
	}
	if got := rec.got(); strings.Join(got, " ") != "/hls/a/v1/seg.m4s /hls/a/" {
		t.Errorf("purged %v", got)
	}
}

func TestHTTPPurger(t *testing.T) {
	a, aRec := serve(t, "s3cret", "edge")
	b, bRec := serve(t, "s3cret", "origin")
	dead, _ := serve(t, "s3cret", "edge")
	dead.Close()

	p := HTTPPurger{URLs: []string{a.URL, dead.URL + "/", b.URL + "/"}, Secret: "s3cret", Role: "cache", Timeout: 5 * time.Second}
	err := p.Purge(context.Background(), "/hls/x/")
	if err == nil || !strings.Contains(err.Error(), "on cache "+dead.URL) {
		t.Fatalf("one server down: %v, want an error naming cache %s", err, dead.URL)
	}
	if strings.Contains(err.Error(), a.URL+":") || strings.Contains(err.Error(), b.URL+"/:") {
		t.Errorf("error names servers that purged: %v", err)
	}
	if got := aRec.got(); len(got) != 1 || got[0] != "/hls/x/" {
		t.Errorf("first server purged %v", got)
	}
	if got := bRec.got(); len(got) != 1 || got[0] != "/hls/x/" {
		t.Errorf("server given with a trailing slash purged %v", got)
	}
	if err := (HTTPPurger{URLs: []string{a.URL}, Secret: "s3cret"}).Purge(context.Background(), "/hls/x/v1/seg"); err != nil {
		t.Errorf("path purge: %v", err)
	}
	if got := aRec.got(); len(got) != 2 || got[1] != "/hls/x/v1/seg" {
		t.Errorf("path purge sent %v", got)
	}

	err = HTTPPurger{URLs: []string{a.URL}, Secret: "wrong"}.Purge(context.Background(), "/hls/x/")
	if err == nil || !strings.Contains(err.Error(), "HTTP 401: unauthorized") || !strings.Contains(err.Error(), "on server "+a.URL) {
		t.Errorf("wrong secret: %v, want an HTTP 401 error naming the server", err)
	}
	if err := (HTTPPurger{URLs: []string{a.URL}, Secret: "s3cret"}).Purge(context.Background(), "hls/x/"); err == nil {
		t.Error("a relative target was sent")
	}
	if n := len(aRec.got()); n != 2 {
		t.Errorf("refused purges reached the server: %d purges", n)
	}
}

// A server that accepts the connection but never answers must not hold up the others past Timeout.
func TestHTTPPurgerTimeout(t *testing.T) {
	hang := make(chan struct{})
	slow := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { <-hang }))
	t.Cleanup(slow.Close)
	t.Cleanup(func() { close(hang) })
	live, rec := serve(t, "s", "edge")

	start := time.Now()
	err := HTTPPurger{URLs: []string{slow.URL, live.URL}, Secret: "s", Timeout: 200 * time.Millisecond}.Purge(context.Background(), "/hls/a/")
	if err == nil || !strings.Contains(err.Error(), slow.URL) {
		t.Errorf("hung server: %v", err)
	}
	if took := time.Since(start); took > 3*time.Second {
		t.Errorf("Purge took %v with a 200ms timeout", took)
	}
	if len(rec.got()) != 1 {
		t.Error("the live server was not purged")
	}
}

func TestLocalAndMulti(t *testing.T) {
	var first, second recorder
	failing := HTTPPurger{URLs: []string{"http://127.0.0.1:1"}, Secret: "s", Timeout: time.Second}
	m := Multi{Local(first.purge), failing, Local(second.purge)}
	err := m.Purge(context.Background(), "/hls/a/")
	if err == nil || !strings.Contains(err.Error(), "127.0.0.1:1") {
		t.Errorf("Multi with a failing member: %v", err)
	}
	if len(first.got()) != 1 || len(second.got()) != 1 {
		t.Errorf("a failing member stopped the others: %v, %v", first.got(), second.got())
	}
	var order []string
	in := func(name string) Local {
		return func(string) int { order = append(order, name); return 0 }
	}
	if err := (Multi{in("origin"), Local(first.purge), in("edge"), Local(second.purge)}).Purge(context.Background(), "/hls/b/x"); err != nil {
		t.Errorf("Multi: %v", err)
	}
	if strings.Join(order, " ") != "origin edge" {
		t.Errorf("Multi told them in the order %v, want the order given", order)
	}
	if got := second.got(); len(got) != 2 || got[1] != "/hls/b/x" {
		t.Errorf("second purger got %v", got)
	}
	err = Local(first.purge).Purge(context.Background(), "hls/a/")
	if err == nil || errors.Is(err, context.Canceled) {
		t.Errorf("relative target: %v", err)
	}
	if len(first.got()) != 2 {
		t.Error("a relative target was purged")
	}
}
