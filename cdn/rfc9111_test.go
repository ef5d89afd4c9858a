package cdn

import (
	"bytes"
	"cmp"
	"context"
	"fmt"
	"io"
	"mime"
	"mime/multipart"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/lectern/lectern/internal/testenv"
)

// This file checks the edge against HTTP caching one rule at a time: RFC 9111 (the shared cache),
// RFC 5861 (stale-while-revalidate, stale-if-error) and RFC 9213 (CDN-Cache-Control), plus what the
// edge does when its upstream is down. Each case is a scripted origin (a real HTTP server on
// loopback) and a fresh edge in front of it, and a sequence of client requests: before each, the
// clock may move and the origin may change its answer or go down; after each, the answer and what
// reached the origin are checked.

// rfcStart is the time every case starts at, on the clock the edge and the origin share.
var rfcStart = newClock().Now()

// at formats the HTTP date d after rfcStart (before it when d is negative).
func at(d time.Duration) string { return rfcStart.Add(d).Format(http.TimeFormat) }

// Expected Cache-Status values, for brevity.
func hit(ttl int) string { return fmt.Sprintf("lectern-edge; hit; ttl=%d", ttl) }

func stored(fwd string, status, ttl int) string {
	return fmt.Sprintf("lectern-edge; fwd=%s; fwd-status=%d; stored; ttl=%d", fwd, status, ttl)
}

func notStored(fwd string, status int) string {
	return fmt.Sprintf("lectern-edge; fwd=%s; fwd-status=%d", fwd, status)
}

// rfcReply is what the scripted origin answers.
type rfcReply struct {
	status int // 0: 200
	// hdr holds name, value pairs; "{edge}" in a value becomes the edge's base URL, "{edgehost}"
	// its host and port.
	hdr  []string
	body string
	// echo names a request header whose value the origin appends to the body, after a space, so
	// that the variants of a Vary case differ.
	echo string
}

// The edge's own error answers.
const (
	badGatewayBody     = "bad gateway: upstream unavailable\n"
	gatewayTimeoutBody = "gateway timeout: upstream unavailable\n"
	notCachedBody      = "gateway timeout: not cached (only-if-cached)\n"
)

// overloaded is an origin answer that stale-if-error stands in for.
var overloaded = rfcReply{status: 503, hdr: []string{"Cache-Control", "no-store"}, body: "overloaded"}

// Origin states a step can switch to.
const (
	originUp      = "up"
	originRefuses = "down" // its listener is closed: connection refused
	originHangs   = "hang" // it accepts requests and never answers them
)

type rfcStep struct {
	// Before the request.
	advance time.Duration // moves the clock
	set     *rfcReply     // the origin's answer to GET and HEAD from this step on
	other   *rfcReply     // its answer to every other method from this step on
	origin  string        // originUp, originRefuses or originHangs; "": unchanged
	// hold keeps this step's origin requests waiting until the answer to the client has been
	// checked: an answer that depended on them would time out.
	hold bool

	// The request.
	method string   // "": GET
	path   string   // "": /o
	hdr    []string // header name, value pairs

	// What reached the origin: how many requests this step caused and, of the last one, its
	// method ("": GET) and the listed headers ("" for absent).
	up       int
	upMethod string
	upHdr    map[string]string
	// background: the step's origin request is made after the answer (a stale-while-revalidate
	// revalidation); the step ends once it has refreshed the entry.
	background bool

	// The answer.
	status int
	body   string
	cache  string            // X-Cache
	cs     string            // Cache-Status, every field line joined by ", "; "" for absent
	age    string            // "" for absent
	hdrs   map[string]string // further headers ("" for absent)
	// within bounds the time the answer takes (0: unchecked), and notBefore from below.
	within, notBefore time.Duration
	// check replaces the comparison of the body, for answers with parts that vary (multipart).
	check func(t *testing.T, resp *http.Response, body []byte)
}

type rfcCase struct {
	name  string
	reply rfcReply // the origin's first answer to GET and HEAD
	other rfcReply // its first answer to other methods; the zero value is 200 with no body
	cfg   func(*Config)
	steps []rfcStep
}

func TestRFC9111(t *testing.T) {
	for _, tc := range rfcCases() {
		t.Run(tc.name, func(t *testing.T) { runRFCCase(t, tc) })
	}
}

// TestRFC9111HangingOriginFailsWaiters checks that the requests collapsed onto a fill that times
// out all get the 504 together, from one origin request (two at most: on a loaded machine a late
// request may find the first fill over and lead its own).
func TestRFC9111HangingOriginFailsWaiters(t *testing.T) {
	clk := newClock()
	o := newRFCOrigin(t, clk, rfcReply{hdr: []string{"Cache-Control", "max-age=60"}, body: "v1"}, rfcReply{})
	o.prepare(rfcStep{origin: originHangs})
	const timeout = 300 * time.Millisecond
	e, ts := newTestEdge(t, "http://"+o.addr, clk, func(c *Config) { c.FillTimeout = timeout })
	const n = 5
	start := time.Now()
	for i, r := range concurrently(t, ts, n, "/o") {
		if r.StatusCode != http.StatusGatewayTimeout || string(r.body) != gatewayTimeoutBody {
			t.Errorf("response %d: %d %q", i, r.StatusCode, r.body)
		}
	}
	if took := time.Since(start); took < timeout || took > timeout+1200*time.Millisecond {
		t.Errorf("answered after %v with a fill timeout of %v", took, timeout)
	}
	if got, waiters := o.count(), e.Stats().CollapsedWaiters.Load(); got+int(waiters) != n || got > 2 {
		// Requests arriving after the fill ended lead one of their own; on a loaded machine a
		// second fill is possible, more would mean no collapsing.
		t.Errorf("the origin saw %d requests and %d waited, for %d requests", got, waiters, n)
	}
}

func runRFCCase(t *testing.T, tc rfcCase) {
	clk := newClock()
	o := newRFCOrigin(t, clk, tc.reply, tc.other)
	e, ts := newTestEdge(t, "http://"+o.addr, clk, tc.cfg)
	o.setEdge(ts.URL)
	client := *ts.Client()
	client.Timeout = 10 * time.Second // an answer that waits for a held origin fails the step
	client.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }

	for i, s := range tc.steps {
		method, path := cmp.Or(s.method, http.MethodGet), cmp.Or(s.path, "/o")
		name := fmt.Sprintf("step %d (%s %s)", i+1, method, path)
		clk.Advance(s.advance)
		release := o.prepare(s)
		before := o.count()

		req, err := http.NewRequest(method, ts.URL+path, nil)
		if err != nil {
			t.Fatal(err)
		}
		for j := 0; j+1 < len(s.hdr); j += 2 {
			req.Header.Add(s.hdr[j], s.hdr[j+1])
		}
		start := time.Now()
		resp, err := client.Do(req)
		if err != nil {
			release()
			t.Fatalf("%s: %v", name, err)
		}
		body, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		took := time.Since(start)
		if err != nil {
			release()
			t.Fatalf("%s: reading the body: %v", name, err)
		}
		s.checkAnswer(t, name, resp, body, took)
		release()
		// A fill may still be reading its body after the client has its answer (a HEAD that led a
		// streamed fill gets the headers alone): the next step must find it stored, not join it.
		waitFor(t, name+": fills to end", func() bool {
			e.flights.mu.Lock()
			defer e.flights.mu.Unlock()
			return len(e.flights.m) == 0
		})

		if s.background {
			waitFor(t, name+": the background revalidation", func() bool { return o.count() >= before+s.up })
			waitFor(t, name+": the refreshed entry", func() bool {
				ent, ok := e.mem.get(path)
				return ok && ent.fresh(clk.Now())
			})
		}
		if n := o.count() - before; n != s.up {
			t.Errorf("%s: the origin saw %d requests, want %d", name, n, s.up)
		} else if s.up > 0 {
			last := o.last()
			if want := cmp.Or(s.upMethod, http.MethodGet); last.Method != want {
				t.Errorf("%s: the origin saw %s, want %s", name, last.Method, want)
			}
			for k, want := range s.upHdr {
				if got := strings.Join(last.Header.Values(k), ", "); got != want {
					t.Errorf("%s: the origin saw %s %q, want %q", name, k, got, want)
				}
			}
		}
	}
}

func (s rfcStep) checkAnswer(t *testing.T, name string, resp *http.Response, body []byte, took time.Duration) {
	t.Helper()
	if resp.StatusCode != s.status {
		t.Errorf("%s: status %d, want %d", name, resp.StatusCode, s.status)
	}
	if s.check != nil {
		s.check(t, resp, body)
	} else if string(body) != s.body {
		t.Errorf("%s: body %q, want %q", name, body, s.body)
	}
	if got := resp.Header.Get("X-Cache"); got != s.cache {
		t.Errorf("%s: X-Cache %q, want %q", name, got, s.cache)
	}
	if got := strings.Join(resp.Header.Values("Cache-Status"), ", "); got != s.cs {
		t.Errorf("%s: Cache-Status %q\n\twant %q", name, got, s.cs)
	}
	if got := strings.Join(resp.Header.Values("Age"), ", "); got != s.age {
		t.Errorf("%s: Age %q, want %q", name, got, s.age)
	}
	for k, want := range s.hdrs {
		if got := strings.Join(resp.Header.Values(k), ", "); got != want {
			t.Errorf("%s: %s %q, want %q", name, k, got, want)
		}
	}
	if s.within > 0 && took > s.within {
		t.Errorf("%s: answered after %v, want within %v", name, took, s.within)
	}
	if took < s.notBefore {
		t.Errorf("%s: answered after %v, want no sooner than %v", name, took, s.notBefore)
	}
}

// rfcOrigin is the scripted origin of one case. It can be stopped (connection refused) and started
// again on the same address, which testenv.FreeAddr picks below the ephemeral port range so that no
// other connection takes it meanwhile.
type rfcOrigin struct {
	t    *testing.T
	clk  *clock
	addr string

	mu      sync.Mutex
	edge    string
	get     rfcReply
	other   rfcReply
	hanging bool
	held    chan struct{} // when not nil, requests wait for it to close
	seen    []*http.Request
	srv     *http.Server // nil while refusing
}

func newRFCOrigin(t *testing.T, clk *clock, get, other rfcReply) *rfcOrigin {
	o := &rfcOrigin{t: t, clk: clk, addr: testenv.FreeAddr(t), get: get, other: other}
	o.start()
	t.Cleanup(o.stop)
	return o
}

func (o *rfcOrigin) start() {
	ln, err := net.Listen("tcp", o.addr)
	if err != nil {
		o.t.Fatalf("origin: listening on %s: %v", o.addr, err)
	}
	srv := &http.Server{Handler: o}
	o.mu.Lock()
	o.srv = srv
	o.mu.Unlock()
	go srv.Serve(ln)
}

// stop closes the listener and every connection; a hanging request's context ends with it.
func (o *rfcOrigin) stop() {
	o.mu.Lock()
	srv := o.srv
	o.srv = nil
	o.mu.Unlock()
	if srv != nil {
		srv.Close()
	}
}

func (o *rfcOrigin) setEdge(u string) {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.edge = u
}

// prepare applies a step's changes to the origin and returns what ends its hold.
func (o *rfcOrigin) prepare(s rfcStep) (release func()) {
	switch s.origin {
	case originRefuses:
		o.stop()
	case originUp, originHangs:
		o.mu.Lock()
		down := o.srv == nil
		o.hanging = s.origin == originHangs
		o.mu.Unlock()
		if down {
			o.start()
		}
	}
	o.mu.Lock()
	defer o.mu.Unlock()
	if s.set != nil {
		o.get = *s.set
	}
	if s.other != nil {
		o.other = *s.other
	}
	if !s.hold {
		return func() {}
	}
	held := make(chan struct{})
	o.held = held
	return func() {
		o.mu.Lock()
		o.held = nil
		o.mu.Unlock()
		close(held)
	}
}

func (o *rfcOrigin) count() int {
	o.mu.Lock()
	defer o.mu.Unlock()
	return len(o.seen)
}

func (o *rfcOrigin) last() *http.Request {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.seen[len(o.seen)-1]
}

func (o *rfcOrigin) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	o.mu.Lock()
	o.seen = append(o.seen, r.Clone(context.Background()))
	rep := o.get
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		rep = o.other
	}
	hanging, held, edge := o.hanging, o.held, o.edge
	o.mu.Unlock()
	if hanging {
		<-r.Context().Done() // the edge gave up
		return
	}
	if held != nil {
		select {
		case <-held:
		case <-r.Context().Done():
			return
		}
	}

	h := w.Header()
	for i := 0; i+1 < len(rep.hdr); i += 2 {
		h.Add(rep.hdr[i], strings.NewReplacer("{edge}", edge, "{edgehost}", strings.TrimPrefix(edge, "http://")).Replace(rep.hdr[i+1]))
	}
	if h.Get("Date") == "" {
		h.Set("Date", o.clk.Now().Format(http.TimeFormat))
	}
	status := cmp.Or(rep.status, http.StatusOK)
	if status == http.StatusOK && (r.Method == http.MethodGet || r.Method == http.MethodHead) && notModified(r, h) {
		w.WriteHeader(http.StatusNotModified) // with every header of the 200, as a real origin's 304
		return
	}
	body := rep.body
	if rep.echo != "" {
		body += " " + r.Header.Get(rep.echo)
	}
	if bodyAllowed(status) {
		h.Set("Content-Length", strconv.Itoa(len(body)))
	}
	w.WriteHeader(status)
	if bodyAllowed(status) {
		io.WriteString(w, body)
	}
}

// notModified evaluates the request's If-None-Match, or else its If-Modified-Since, against the
// validators in h (RFC 9110 §13.2.2).
func notModified(r *http.Request, h http.Header) bool {
	if inm := r.Header.Get("If-None-Match"); inm != "" {
		et := h.Get("Etag")
		return et != "" && (inm == "*" || inm == et)
	}
	ims, err := http.ParseTime(r.Header.Get("If-Modified-Since"))
	if err != nil {
		return false
	}
	lm, err := http.ParseTime(h.Get("Last-Modified"))
	return err == nil && !lm.After(ims)
}

func rfcCases() []rfcCase {
	const sec = time.Second
	etag := []string{"Etag", `"v1"`}
	withEtag := func(hdr ...string) []string { return append(append([]string{}, etag...), hdr...) }
	cases := []rfcCase{
		// Freshness (RFC 9111 §4.2.1): s-maxage, else max-age, else Expires minus Date.
		{
			name:  "max-age: fresh while younger, then revalidated",
			reply: rfcReply{hdr: withEtag("Cache-Control", "max-age=60"), body: "v1"},
			steps: []rfcStep{
				{up: 1, status: 200, body: "v1", cache: "MISS", cs: stored(fwdURIMiss, 200, 60)},
				{advance: 59 * sec, status: 200, body: "v1", cache: "HIT", cs: hit(1), age: "59"},
				{advance: sec, up: 1, upHdr: map[string]string{"If-None-Match": `"v1"`}, status: 200, body: "v1",
					cache: "REVALIDATED", cs: stored(fwdStale, 304, 60), age: "0"},
			},
		},
		{
			name:  "s-maxage wins over max-age",
			reply: rfcReply{hdr: withEtag("Cache-Control", "max-age=5, s-maxage=60"), body: "v1"},
			steps: []rfcStep{
				{up: 1, status: 200, body: "v1", cache: "MISS", cs: stored(fwdURIMiss, 200, 60)},
				{advance: 30 * sec, status: 200, body: "v1", cache: "HIT", cs: hit(30), age: "30"},
				{advance: 30 * sec, up: 1, status: 200, body: "v1", cache: "REVALIDATED", cs: stored(fwdStale, 304, 60), age: "0"},
			},
		},
		{
			name:  "max-age wins over Expires",
			reply: rfcReply{hdr: withEtag("Cache-Control", "max-age=10", "Expires", at(time.Hour)), body: "v1"},
			steps: []rfcStep{
				{up: 1, status: 200, body: "v1", cache: "MISS", cs: stored(fwdURIMiss, 200, 10)},
				{advance: 10 * sec, up: 1, status: 200, body: "v1", cache: "REVALIDATED", cs: stored(fwdStale, 304, 10), age: "0"},
			},
		},
		{
			// The origin's clock is an hour behind: Expires counts from its Date, not from the edge's
			// clock, and Date does not age the response either.
			name:  "Expires counts from Date",
			reply: rfcReply{hdr: withEtag("Date", at(-time.Hour), "Expires", at(-time.Hour+60*sec)), body: "v1"},
			steps: []rfcStep{
				{up: 1, status: 200, body: "v1", cache: "MISS", cs: stored(fwdURIMiss, 200, 60)},
				{advance: 59 * sec, status: 200, body: "v1", cache: "HIT", cs: hit(1), age: "59"},
				{advance: sec, up: 1, status: 200, body: "v1", cache: "REVALIDATED", cs: stored(fwdStale, 304, 60), age: "0"},
			},
		},
		{
			name:  "Expires not after Date: stale at once, not stored",
			reply: rfcReply{hdr: withEtag("Expires", at(0)), body: "v1"},
			steps: []rfcStep{
				{up: 1, status: 200, body: "v1", cache: "MISS", cs: notStored(fwdURIMiss, 200)},
				{up: 1, upHdr: map[string]string{"If-None-Match": ""}, status: 200, body: "v1", cache: "MISS",
					cs: notStored(fwdURIMiss, 200)},
			},
		},
		{
			// An invalid Expires is explicit freshness, already stale (RFC 9111 §5.3): no heuristic
			// from Last-Modified either.
			name:  "invalid Expires: stale, not stored",
			reply: rfcReply{hdr: []string{"Expires", "0", "Last-Modified", at(-1000 * sec)}, body: "v1"},
			steps: []rfcStep{
				{up: 1, status: 200, body: "v1", cache: "MISS", cs: notStored(fwdURIMiss, 200)},
				{set: &rfcReply{hdr: []string{"Expires", "next week", "Last-Modified", at(-1000 * sec)}, body: "v1"},
					up: 1, status: 200, body: "v1", cache: "MISS", cs: notStored(fwdURIMiss, 200)},
				{up: 1, status: 200, body: "v1", cache: "MISS", cs: notStored(fwdURIMiss, 200)},
			},
		},
		{
			name:  "invalid max-age: stale, not stored, no heuristic",
			reply: rfcReply{hdr: []string{"Cache-Control", "max-age=soon", "Last-Modified", at(-1000 * sec)}, body: "v1"},
			steps: []rfcStep{
				{up: 1, status: 200, body: "v1", cache: "MISS", cs: notStored(fwdURIMiss, 200)},
				{up: 1, status: 200, body: "v1", cache: "MISS", cs: notStored(fwdURIMiss, 200)},
			},
		},

		{
			// Field lines combine into one list (RFC 9110 §5.3); of duplicate directives the first
			// counts (RFC 9111 §4.2.1 allows that or treating the response as stale).
			name:  "Cache-Control over several lines, duplicates",
			reply: rfcReply{hdr: withEtag("Cache-Control", "max-age=60, max-age=5", "Cache-Control", "public"), body: "v1"},
			steps: []rfcStep{
				{up: 1, status: 200, body: "v1", cache: "MISS", cs: stored(fwdURIMiss, 200, 60),
					hdrs: map[string]string{"Cache-Control": "max-age=60, max-age=5, public"}},
				{set: &rfcReply{hdr: withEtag("Cache-Control", "max-age=60", "Cache-Control", "private"), body: "v1"},
					advance: 60 * sec, up: 1, status: 200, body: "v1", cache: "REVALIDATED", cs: notStored(fwdStale, 304), age: "0"},
				{up: 1, status: 200, body: "v1", cache: "MISS", cs: notStored(fwdURIMiss, 200)},
			},
		},

		// Heuristic freshness (RFC 9111 §4.2.2): a tenth of Date minus Last-Modified. The statuses
		// it applies to are cases of their own below.
		{
			name:  "heuristic from Last-Modified, revalidated with If-Modified-Since",
			reply: rfcReply{hdr: []string{"Last-Modified", at(-1000 * sec)}, body: "v1"},
			steps: []rfcStep{
				{up: 1, status: 200, body: "v1", cache: "MISS", cs: stored(fwdURIMiss, 200, 100)},
				{advance: 99 * sec, status: 200, body: "v1", cache: "HIT", cs: hit(1), age: "99"},
				// The 304's Date is 100 s later: a tenth of 1100 s.
				{advance: sec, up: 1, upHdr: map[string]string{"If-Modified-Since": at(-1000 * sec), "If-None-Match": ""},
					status: 200, body: "v1", cache: "REVALIDATED", cs: stored(fwdStale, 304, 110), age: "0"},
			},
		},
		{
			name:  "heuristic capped at a day",
			reply: rfcReply{hdr: []string{"Last-Modified", at(-365 * 24 * time.Hour)}, body: "v1"},
			steps: []rfcStep{
				{up: 1, status: 200, body: "v1", cache: "MISS", cs: stored(fwdURIMiss, 200, 86400)},
				{advance: 86399 * sec, status: 200, body: "v1", cache: "HIT", cs: hit(1), age: "86399"},
				{advance: sec, up: 1, status: 200, body: "v1", cache: "REVALIDATED", cs: stored(fwdStale, 304, 86400), age: "0"},
			},
		},
		{
			name:  "heuristic: the upstream's Age counts",
			reply: rfcReply{hdr: []string{"Last-Modified", at(-1000 * sec), "Age", "90"}, body: "v1"},
			steps: []rfcStep{
				{up: 1, status: 200, body: "v1", cache: "MISS", cs: stored(fwdURIMiss, 200, 10), age: "90"},
				{advance: 9 * sec, status: 200, body: "v1", cache: "HIT", cs: hit(1), age: "99"},
				// A tenth of 1010 s, less the 304's Age.
				{advance: sec, up: 1, status: 200, body: "v1", cache: "REVALIDATED", cs: stored(fwdStale, 304, 11), age: "90"},
			},
		},
		{
			name:  "explicit freshness wins over the heuristic",
			reply: rfcReply{hdr: []string{"Last-Modified", at(-1000 * sec), "Cache-Control", "max-age=5"}, body: "v1"},
			steps: []rfcStep{
				{up: 1, status: 200, body: "v1", cache: "MISS", cs: stored(fwdURIMiss, 200, 5)},
				{set: &rfcReply{hdr: []string{"Last-Modified", at(-1000 * sec), "CDN-Cache-Control", "max-age=7"}, body: "v1"},
					advance: 5 * sec, up: 1, status: 200, body: "v1", cache: "REVALIDATED", cs: stored(fwdStale, 304, 7), age: "0"},
			},
		},
		{
			// CDN-Cache-Control governs, and says nothing of freshness: the heuristic applies, and
			// Cache-Control's max-age does not.
			name:  "heuristic under a CDN-Cache-Control without freshness",
			reply: rfcReply{hdr: []string{"Last-Modified", at(-1000 * sec), "CDN-Cache-Control", "public", "Cache-Control", "max-age=5"}, body: "v1"},
			steps: []rfcStep{
				{up: 1, status: 200, body: "v1", cache: "MISS", cs: stored(fwdURIMiss, 200, 100)},
				{advance: 50 * sec, status: 200, body: "v1", cache: "HIT", cs: hit(50), age: "50"},
			},
		},
		{
			name:  "no heuristic without Last-Modified",
			reply: rfcReply{hdr: etag, body: "v1"},
			steps: []rfcStep{
				{up: 1, status: 200, body: "v1", cache: "MISS", cs: notStored(fwdURIMiss, 200)},
				{up: 1, upHdr: map[string]string{"If-None-Match": ""}, status: 200, body: "v1", cache: "MISS",
					cs: notStored(fwdURIMiss, 200)},
			},
		},
		{
			name:  "no heuristic when Last-Modified is after Date",
			reply: rfcReply{hdr: []string{"Last-Modified", at(10 * sec)}, body: "v1"},
			steps: []rfcStep{
				{up: 1, status: 200, body: "v1", cache: "MISS", cs: notStored(fwdURIMiss, 200)},
				{up: 1, status: 200, body: "v1", cache: "MISS", cs: notStored(fwdURIMiss, 200)},
			},
		},

		// no-store (RFC 9111 §5.2.2.5).
		{
			name:  "no-store response: never stored",
			reply: rfcReply{hdr: withEtag("Cache-Control", "max-age=60, no-store"), body: "v1"},
			steps: []rfcStep{
				{up: 1, status: 200, body: "v1", cache: "MISS", cs: notStored(fwdURIMiss, 200),
					hdrs: map[string]string{"Cache-Control": "max-age=60, no-store"}},
				{up: 1, upHdr: map[string]string{"If-None-Match": ""}, status: 200, body: "v1", cache: "MISS",
					cs: notStored(fwdURIMiss, 200)},
			},
		},

		{
			name:  "max-age=0: stale at once, not stored",
			reply: rfcReply{hdr: withEtag("Cache-Control", "max-age=0"), body: "v1"},
			steps: []rfcStep{
				{up: 1, status: 200, body: "v1", cache: "MISS", cs: notStored(fwdURIMiss, 200)},
				{up: 1, upHdr: map[string]string{"If-None-Match": ""}, status: 200, body: "v1", cache: "MISS",
					cs: notStored(fwdURIMiss, 200)},
			},
		},
		{
			// The edge's own rule: a cookie is one client's.
			name:  "Set-Cookie: not stored, passed on",
			reply: rfcReply{hdr: withEtag("Cache-Control", "max-age=60", "Set-Cookie", "s=1"), body: "v1"},
			steps: []rfcStep{
				{up: 1, status: 200, body: "v1", cache: "MISS", cs: notStored(fwdURIMiss, 200), hdrs: map[string]string{"Set-Cookie": "s=1"}},
				{up: 1, status: 200, body: "v1", cache: "MISS", cs: notStored(fwdURIMiss, 200), hdrs: map[string]string{"Set-Cookie": "s=1"}},
			},
		},
		{
			// RFC 9111 §5.2.1.5: nothing of the exchange is stored, but a stored response may answer.
			name:  "no-store request: its answer is not stored",
			reply: rfcReply{hdr: withEtag("Cache-Control", "max-age=60"), body: "v1"},
			steps: []rfcStep{
				{hdr: []string{"Cache-Control", "no-store"}, up: 1, status: 200, body: "v1", cache: "MISS", cs: notStored(fwdURIMiss, 200)},
				{hdr: []string{"Cache-Control", "no-store"}, up: 1, status: 200, body: "v1", cache: "MISS", cs: notStored(fwdURIMiss, 200)},
				{up: 1, status: 200, body: "v1", cache: "MISS", cs: stored(fwdURIMiss, 200, 60)},
				{hdr: []string{"Cache-Control", "no-store"}, status: 200, body: "v1", cache: "HIT", cs: hit(60), age: "0"},
				// Stale: the request goes upstream as the client sent it, and the stale entry stays.
				{advance: 60 * sec, hdr: []string{"Cache-Control", "no-store"}, up: 1, upHdr: map[string]string{"If-None-Match": ""},
					status: 200, body: "v1", cache: "MISS", cs: notStored(fwdStale, 200)},
				{up: 1, upHdr: map[string]string{"If-None-Match": `"v1"`}, status: 200, body: "v1", cache: "REVALIDATED",
					cs: stored(fwdStale, 304, 60), age: "0"},
			},
		},

		// private (RFC 9111 §5.2.2.7). The qualified form is handled as the plain one, as the RFC
		// notes most caches do: the whole response stays out of the shared cache.
		{
			name:  "private: not stored; public: stored",
			reply: rfcReply{hdr: withEtag("Cache-Control", "private, max-age=60", "X-User", "alice"), body: "v1"},
			steps: []rfcStep{
				{up: 1, status: 200, body: "v1", cache: "MISS", cs: notStored(fwdURIMiss, 200),
					hdrs: map[string]string{"Cache-Control": "private, max-age=60", "X-User": "alice"}},
				{up: 1, status: 200, body: "v1", cache: "MISS", cs: notStored(fwdURIMiss, 200)},
				{set: &rfcReply{hdr: withEtag("Cache-Control", "public, max-age=60"), body: "v1"},
					up: 1, status: 200, body: "v1", cache: "MISS", cs: stored(fwdURIMiss, 200, 60)},
				{status: 200, body: "v1", cache: "HIT", cs: hit(60), age: "0"},
			},
		},
		{
			name:  "private with field names: not stored",
			reply: rfcReply{hdr: withEtag("Cache-Control", `private="X-User", max-age=60`, "X-User", "alice"), body: "v1"},
			steps: []rfcStep{
				{up: 1, status: 200, body: "v1", cache: "MISS", cs: notStored(fwdURIMiss, 200),
					hdrs: map[string]string{"X-User": "alice"}},
				{up: 1, status: 200, body: "v1", cache: "MISS", cs: notStored(fwdURIMiss, 200),
					hdrs: map[string]string{"X-User": "alice"}},
			},
		},

		// no-cache (RFC 9111 §5.2.2.4): a stored copy could only be used after a revalidation; the
		// edge does not store it at all, so every request reaches the origin, unconditionally.
		{
			name:  "no-cache response: every request reaches the origin",
			reply: rfcReply{hdr: withEtag("Cache-Control", "no-cache, max-age=60", "Last-Modified", at(-1000*sec)), body: "v1"},
			steps: []rfcStep{
				{up: 1, status: 200, body: "v1", cache: "MISS", cs: notStored(fwdURIMiss, 200)},
				{up: 1, upHdr: map[string]string{"If-None-Match": ""}, status: 200, body: "v1", cache: "MISS",
					cs: notStored(fwdURIMiss, 200)},
			},
		},
		{
			name:  "no-cache with field names: handled as no-cache",
			reply: rfcReply{hdr: withEtag("Cache-Control", `no-cache="X-Debug", max-age=60`, "X-Debug", "1"), body: "v1"},
			steps: []rfcStep{
				{up: 1, status: 200, body: "v1", cache: "MISS", cs: notStored(fwdURIMiss, 200),
					hdrs: map[string]string{"X-Debug": "1"}},
				{up: 1, status: 200, body: "v1", cache: "MISS", cs: notStored(fwdURIMiss, 200)},
			},
		},

		// Request directives are advisory (RFC 9111 §5.2.1). Those that would send requests to the
		// origin in spite of a fresh entry are not honoured: a reload in one browser must not become
		// origin traffic for a region. max-stale is not honoured either.
		{
			name:  "request no-cache, max-age=0, min-fresh, Pragma: the fresh entry answers",
			reply: rfcReply{hdr: withEtag("Cache-Control", "max-age=60"), body: "v1"},
			steps: []rfcStep{
				{up: 1, status: 200, body: "v1", cache: "MISS", cs: stored(fwdURIMiss, 200, 60)},
				{hdr: []string{"Cache-Control", "no-cache"}, status: 200, body: "v1", cache: "HIT", cs: hit(60), age: "0"},
				{hdr: []string{"Cache-Control", "max-age=0"}, status: 200, body: "v1", cache: "HIT", cs: hit(60), age: "0"},
				{advance: 30 * sec, hdr: []string{"Cache-Control", "min-fresh=60"}, status: 200, body: "v1", cache: "HIT",
					cs: hit(30), age: "30"},
				{hdr: []string{"Pragma", "no-cache"}, status: 200, body: "v1", cache: "HIT", cs: hit(30), age: "30"},
				{advance: 40 * sec, hdr: []string{"Cache-Control", "max-stale=3600"}, up: 1, status: 200, body: "v1",
					cache: "REVALIDATED", cs: stored(fwdStale, 304, 60), age: "0"},
			},
		},

		{
			// RFC 9111 §5.2.1.7: a stored response that may be served, or 504.
			name:  "request only-if-cached: never the origin",
			reply: rfcReply{hdr: withEtag("Cache-Control", "max-age=10, stale-while-revalidate=20"), body: "v1"},
			steps: []rfcStep{
				{hdr: []string{"Cache-Control", "only-if-cached"}, status: 504, body: notCachedBody, cache: "MISS",
					hdrs: map[string]string{"Cache-Control": "no-store"}},
				{method: "HEAD", hdr: []string{"Cache-Control", "max-stale, only-if-cached"}, status: 504, cache: "MISS"},
				{up: 1, status: 200, body: "v1", cache: "MISS", cs: stored(fwdURIMiss, 200, 10)},
				{hdr: []string{"Cache-Control", "only-if-cached"}, status: 200, body: "v1", cache: "HIT", cs: hit(10), age: "0"},
				// Stale, but stale-while-revalidate lets the entry answer (the edge revalidates it
				// for everyone else).
				{advance: 15 * sec, hdr: []string{"Cache-Control", "only-if-cached"}, hold: true, background: true, up: 1,
					status: 200, body: "v1", cache: "STALE", cs: "lectern-edge; hit; ttl=-5; detail=stale-while-revalidate", age: "15"},
				{advance: 40 * sec, hdr: []string{"Cache-Control", "only-if-cached"}, status: 504, body: notCachedBody, cache: "MISS"},
				{up: 1, status: 200, body: "v1", cache: "REVALIDATED", cs: stored(fwdStale, 304, 10), age: "0"},
			},
		},

		// must-revalidate (RFC 9111 §5.2.2.2), proxy-revalidate (§5.2.2.8) and s-maxage, which
		// carries proxy-revalidate's meaning for a shared cache (§5.2.2.10): a stale entry is never
		// served stale, whatever stale-while-revalidate and stale-if-error say.
		{
			name: "must-revalidate: no stale serving",
			reply: rfcReply{hdr: withEtag("Cache-Control",
				"max-age=10, must-revalidate, stale-while-revalidate=60, stale-if-error=60"), body: "v1"},
			steps: []rfcStep{
				{up: 1, status: 200, body: "v1", cache: "MISS", cs: stored(fwdURIMiss, 200, 10)},
				{advance: 5 * sec, status: 200, body: "v1", cache: "HIT", cs: hit(5), age: "5"},
				{advance: 10 * sec, up: 1, upHdr: map[string]string{"If-None-Match": `"v1"`}, status: 200, body: "v1",
					cache: "REVALIDATED", cs: stored(fwdStale, 304, 10), age: "0"},
				{advance: 15 * sec, set: &overloaded, up: 1, status: 503, body: "overloaded", cache: "MISS",
					cs: notStored(fwdStale, 503)},
				// Unreachable: the edge's own error, 504 as RFC 9111 §5.2.2.2 asks.
				{origin: originRefuses, status: 504, body: gatewayTimeoutBody, cache: "MISS", within: time.Second,
					hdrs: map[string]string{"Cache-Control": "no-store"}},
				{origin: originUp, set: &rfcReply{hdr: withEtag("Cache-Control", "max-age=10, must-revalidate"), body: "v1"},
					up: 1, status: 200, body: "v1", cache: "REVALIDATED", cs: stored(fwdStale, 304, 10), age: "0"},
			},
		},
		{
			name:  "s-maxage: no stale serving",
			reply: rfcReply{hdr: withEtag("Cache-Control", "s-maxage=10, stale-while-revalidate=60, stale-if-error=60"), body: "v1"},
			steps: []rfcStep{
				{up: 1, status: 200, body: "v1", cache: "MISS", cs: stored(fwdURIMiss, 200, 10)},
				{advance: 15 * sec, up: 1, status: 200, body: "v1", cache: "REVALIDATED", cs: stored(fwdStale, 304, 10), age: "0"},
				{advance: 15 * sec, origin: originRefuses, status: 504, body: gatewayTimeoutBody, cache: "MISS", within: time.Second},
			},
		},
		{
			name:  "proxy-revalidate: no stale serving",
			reply: rfcReply{hdr: withEtag("Cache-Control", "max-age=10, proxy-revalidate, stale-if-error=60"), body: "v1"},
			steps: []rfcStep{
				{up: 1, status: 200, body: "v1", cache: "MISS", cs: stored(fwdURIMiss, 200, 10)},
				{advance: 15 * sec, set: &overloaded, up: 1, status: 503, body: "overloaded", cache: "MISS",
					cs: notStored(fwdStale, 503)},
				{origin: originRefuses, status: 504, body: gatewayTimeoutBody, cache: "MISS", within: time.Second},
			},
		},

		// Vary (RFC 9111 §4.1): one variant per key is kept.
		{
			name:  "Vary: same values hit, other values miss",
			reply: rfcReply{hdr: withEtag("Cache-Control", "max-age=60", "Vary", "Accept-Language"), body: "v1", echo: "Accept-Language"},
			steps: []rfcStep{
				{hdr: []string{"Accept-Language", "en"}, up: 1, status: 200, body: "v1 en", cache: "MISS",
					cs: stored(fwdURIMiss, 200, 60), hdrs: map[string]string{"Vary": "Accept-Language"}},
				{hdr: []string{"Accept-Language", "en"}, status: 200, body: "v1 en", cache: "HIT", cs: hit(60), age: "0",
					hdrs: map[string]string{"Vary": "Accept-Language"}},
				{hdr: []string{"Accept-Language", "fr"}, up: 1, upHdr: map[string]string{"Accept-Language": "fr"},
					status: 200, body: "v1 fr", cache: "MISS", cs: stored(fwdVaryMiss, 200, 60)},
				{hdr: []string{"Accept-Language", "fr"}, status: 200, body: "v1 fr", cache: "HIT", cs: hit(60), age: "0"},
				// Absent is a value too.
				{up: 1, status: 200, body: "v1 ", cache: "MISS", cs: stored(fwdVaryMiss, 200, 60)},
				{status: 200, body: "v1 ", cache: "HIT", cs: hit(60), age: "0"},
			},
		},
		{
			name:  "Vary on two fields: both must match",
			reply: rfcReply{hdr: withEtag("Cache-Control", "max-age=60", "Vary", "accept-encoding, X-Variant"), body: "v1"},
			steps: []rfcStep{
				{hdr: []string{"Accept-Encoding", "gzip", "X-Variant", "a"}, up: 1, status: 200, body: "v1", cache: "MISS",
					cs: stored(fwdURIMiss, 200, 60)},
				{hdr: []string{"Accept-Encoding", "gzip", "X-Variant", "a"}, status: 200, body: "v1", cache: "HIT", cs: hit(60), age: "0"},
				{hdr: []string{"Accept-Encoding", "gzip", "X-Variant", "b"}, up: 1, status: 200, body: "v1", cache: "MISS",
					cs: stored(fwdVaryMiss, 200, 60)},
			},
		},
		{
			name:  "Vary: * is never stored",
			reply: rfcReply{hdr: withEtag("Cache-Control", "max-age=60", "Vary", "*"), body: "v1"},
			steps: []rfcStep{
				{up: 1, status: 200, body: "v1", cache: "MISS", cs: notStored(fwdURIMiss, 200)},
				{up: 1, status: 200, body: "v1", cache: "MISS", cs: notStored(fwdURIMiss, 200)},
			},
		},

		// Authorization (RFC 9111 §3.5).
		{
			name:  "Authorization: not stored without public, s-maxage or must-revalidate",
			reply: rfcReply{hdr: withEtag("Cache-Control", "max-age=60"), body: "v1"},
			steps: []rfcStep{
				{hdr: []string{"Authorization", "Bearer a"}, up: 1, upHdr: map[string]string{"Authorization": "Bearer a"},
					status: 200, body: "v1", cache: "MISS", cs: notStored(fwdURIMiss, 200)},
				{hdr: []string{"Authorization", "Bearer a"}, up: 1, status: 200, body: "v1", cache: "MISS",
					cs: notStored(fwdURIMiss, 200)},
				{up: 1, status: 200, body: "v1", cache: "MISS", cs: stored(fwdURIMiss, 200, 60)},
			},
		},

		// Age (RFC 9111 §4.2.3, §5.1): the upstream's Age counts, and every answer from the cache
		// says its age.
		{
			name:  "Age: the upstream's counts and is passed on",
			reply: rfcReply{hdr: withEtag("Cache-Control", "max-age=60", "Age", "50"), body: "v1"},
			steps: []rfcStep{
				{up: 1, status: 200, body: "v1", cache: "MISS", cs: stored(fwdURIMiss, 200, 10), age: "50"},
				{advance: 9 * sec, status: 200, body: "v1", cache: "HIT", cs: hit(1), age: "59"},
				// The 304 says Age: 50 again (a parent cache's copy).
				{advance: sec, up: 1, status: 200, body: "v1", cache: "REVALIDATED", cs: stored(fwdStale, 304, 10), age: "50"},
			},
		},
		{
			name:  "Age beyond the lifetime: stale on arrival",
			reply: rfcReply{hdr: withEtag("Cache-Control", "max-age=60", "Age", "70"), body: "v1"},
			steps: []rfcStep{
				{up: 1, status: 200, body: "v1", cache: "MISS", cs: stored(fwdURIMiss, 200, -10), age: "70"},
				{up: 1, upHdr: map[string]string{"If-None-Match": `"v1"`}, status: 200, body: "v1", cache: "REVALIDATED",
					cs: stored(fwdStale, 304, -10), age: "70"},
			},
		},
		{
			name:  "invalid Age: ignored",
			reply: rfcReply{hdr: withEtag("Cache-Control", "max-age=60", "Age", "old"), body: "v1"},
			steps: []rfcStep{
				{up: 1, status: 200, body: "v1", cache: "MISS", cs: stored(fwdURIMiss, 200, 60)},
				{advance: 10 * sec, status: 200, body: "v1", cache: "HIT", cs: hit(50), age: "10"},
			},
		},

		// Revalidation (RFC 9111 §4.3): the stale entry's validators go upstream; a 304's headers
		// replace the stored ones (§3.2) and the stored body stays; a 200 replaces the entry.
		{
			name:  "If-None-Match: a 304 updates the headers and keeps the body",
			reply: rfcReply{hdr: withEtag("Cache-Control", "max-age=10", "X-Version", "1"), body: "v1"},
			steps: []rfcStep{
				{up: 1, status: 200, body: "v1", cache: "MISS", cs: stored(fwdURIMiss, 200, 10),
					hdrs: map[string]string{"X-Version": "1"}},
				// Same validator, so a 304, with new headers; the new body never reaches the edge.
				{advance: 10 * sec, set: &rfcReply{hdr: withEtag("Cache-Control", "max-age=20", "X-Version", "2", "X-Added", "yes"),
					body: "not sent"}, up: 1, upHdr: map[string]string{"If-None-Match": `"v1"`, "If-Modified-Since": ""},
					status: 200, body: "v1", cache: "REVALIDATED", cs: stored(fwdStale, 304, 20), age: "0",
					hdrs: map[string]string{"X-Version": "2", "X-Added": "yes", "Cache-Control": "max-age=20", "Etag": `"v1"`}},
				{advance: 19 * sec, status: 200, body: "v1", cache: "HIT", cs: hit(1), age: "19",
					hdrs: map[string]string{"X-Version": "2", "X-Added": "yes"}},
				// A new validator: the origin sends the whole new object, which replaces the entry.
				{advance: sec, set: &rfcReply{hdr: []string{"Etag", `"v2"`, "Cache-Control", "max-age=20"}, body: "v2"},
					up: 1, upHdr: map[string]string{"If-None-Match": `"v1"`}, status: 200, body: "v2", cache: "MISS",
					cs: stored(fwdStale, 200, 20), hdrs: map[string]string{"X-Version": "", "Etag": `"v2"`}},
				{status: 200, body: "v2", cache: "HIT", cs: hit(20), age: "0"},
			},
		},
		{
			name:  "If-Modified-Since: revalidation without an Etag",
			reply: rfcReply{hdr: []string{"Cache-Control", "max-age=10", "Last-Modified", at(-time.Hour)}, body: "v1"},
			steps: []rfcStep{
				{up: 1, status: 200, body: "v1", cache: "MISS", cs: stored(fwdURIMiss, 200, 10)},
				{advance: 10 * sec, up: 1, upHdr: map[string]string{"If-Modified-Since": at(-time.Hour), "If-None-Match": ""},
					status: 200, body: "v1", cache: "REVALIDATED", cs: stored(fwdStale, 304, 10), age: "0"},
				{advance: 10 * sec, set: &rfcReply{hdr: []string{"Cache-Control", "max-age=10", "Last-Modified", at(15 * sec)}, body: "v2"},
					up: 1, upHdr: map[string]string{"If-Modified-Since": at(-time.Hour)}, status: 200, body: "v2", cache: "MISS",
					cs: stored(fwdStale, 200, 10)},
			},
		},
		{
			name:  "a 304 that forbids storing: used once, then forgotten",
			reply: rfcReply{hdr: withEtag("Cache-Control", "max-age=10"), body: "v1"},
			steps: []rfcStep{
				{up: 1, status: 200, body: "v1", cache: "MISS", cs: stored(fwdURIMiss, 200, 10)},
				{advance: 10 * sec, set: &rfcReply{hdr: withEtag("Cache-Control", "no-store"), body: "v1, uncacheable"},
					up: 1, status: 200, body: "v1", cache: "REVALIDATED", cs: notStored(fwdStale, 304), age: "0"},
				{up: 1, upHdr: map[string]string{"If-None-Match": ""}, status: 200, body: "v1, uncacheable", cache: "MISS",
					cs: notStored(fwdURIMiss, 200)},
			},
		},

		// A client's own conditionals are answered from the stored object (RFC 9111 §4.3.2) and never
		// forwarded by a fill, which fetches the whole object.
		{
			name:  "client conditionals: answered from the stored object",
			reply: rfcReply{hdr: withEtag("Cache-Control", "max-age=60", "Last-Modified", at(-time.Hour)), body: "v1"},
			steps: []rfcStep{
				{hdr: []string{"If-None-Match", `"v1"`}, up: 1, upHdr: map[string]string{"If-None-Match": "", "If-Modified-Since": ""},
					status: 304, cache: "MISS", cs: stored(fwdURIMiss, 200, 60), hdrs: map[string]string{"Etag": `"v1"`}},
				{hdr: []string{"If-None-Match", `"v1"`}, status: 304, cache: "HIT", cs: hit(60), age: "0",
					hdrs: map[string]string{"Etag": `"v1"`}},
				{hdr: []string{"If-None-Match", `"v0", "v1"`}, status: 304, cache: "HIT", cs: hit(60), age: "0"},
				{hdr: []string{"If-None-Match", `"v0"`}, status: 200, body: "v1", cache: "HIT", cs: hit(60), age: "0"},
				{hdr: []string{"If-Modified-Since", at(-time.Hour)}, status: 304, cache: "HIT", cs: hit(60), age: "0"},
				{hdr: []string{"If-Modified-Since", at(-2 * time.Hour)}, status: 200, body: "v1", cache: "HIT", cs: hit(60), age: "0"},
				// If-None-Match takes precedence over If-Modified-Since.
				{hdr: []string{"If-None-Match", `"v0"`, "If-Modified-Since", at(-time.Hour)}, status: 200, body: "v1",
					cache: "HIT", cs: hit(60), age: "0"},
			},
		},

		// HEAD (RFC 9111 §4.3.5, RFC 9110 §9.3.2).
		{
			name:  "HEAD: answered from the stored GET",
			reply: rfcReply{hdr: withEtag("Cache-Control", "max-age=60"), body: "0123456789"},
			steps: []rfcStep{
				{up: 1, status: 200, body: "0123456789", cache: "MISS", cs: stored(fwdURIMiss, 200, 60)},
				{method: "HEAD", status: 200, body: "", cache: "HIT", cs: hit(60), age: "0",
					hdrs: map[string]string{"Content-Length": "10", "Etag": `"v1"`}},
			},
		},
		{
			name:  "HEAD miss: forwarded as HEAD, nothing stored",
			reply: rfcReply{hdr: withEtag("Cache-Control", "max-age=60"), body: "0123456789"},
			steps: []rfcStep{
				{method: "HEAD", up: 1, upMethod: "HEAD", status: 200, body: "", cache: "MISS", cs: notStored(fwdURIMiss, 200),
					hdrs: map[string]string{"Content-Length": "10"}},
				{up: 1, status: 200, body: "0123456789", cache: "MISS", cs: stored(fwdURIMiss, 200, 60)},
				{method: "HEAD", status: 200, body: "", cache: "HIT", cs: hit(60), age: "0",
					hdrs: map[string]string{"Content-Length": "10", "Etag": `"v1"`}},
			},
		},

		{
			name:  "HEAD on a stale entry: revalidated with a conditional GET",
			reply: rfcReply{hdr: withEtag("Cache-Control", "max-age=10"), body: "0123456789"},
			steps: []rfcStep{
				{up: 1, status: 200, body: "0123456789", cache: "MISS", cs: stored(fwdURIMiss, 200, 10)},
				{advance: 10 * sec, method: "HEAD", up: 1, upMethod: "GET", upHdr: map[string]string{"If-None-Match": `"v1"`},
					status: 200, body: "", cache: "REVALIDATED", cs: stored(fwdStale, 304, 10), age: "0",
					hdrs: map[string]string{"Content-Length": "10"}},
				{status: 200, body: "0123456789", cache: "HIT", cs: hit(10), age: "0"},
				// Changed: the HEAD fetches the new object, which the next GET finds.
				{advance: 10 * sec, set: &rfcReply{hdr: []string{"Etag", `"v2"`, "Cache-Control", "max-age=10"}, body: "abcdefghijklmnop"},
					method: "HEAD", up: 1, upMethod: "GET", status: 200, body: "", cache: "MISS", cs: stored(fwdStale, 200, 10),
					hdrs: map[string]string{"Content-Length": "16", "Etag": `"v2"`}},
				{status: 200, body: "abcdefghijklmnop", cache: "HIT", cs: hit(10), age: "0"},
			},
		},

		// Ranges (RFC 9110 §14) answered from a stored whole object; fills never forward Range.
		{
			name:  "ranges from the stored object",
			reply: rfcReply{hdr: []string{"Cache-Control", "max-age=60", "Etag", `"r1"`}, body: "0123456789"},
			steps: []rfcStep{
				{hdr: []string{"Range", "bytes=2-4"}, up: 1, upHdr: map[string]string{"Range": ""}, status: 206, body: "234",
					cache: "MISS", cs: stored(fwdURIMiss, 200, 60), hdrs: map[string]string{"Content-Range": "bytes 2-4/10"}},
				{hdr: []string{"Range", "bytes=-3"}, status: 206, body: "789", cache: "HIT", cs: hit(60), age: "0",
					hdrs: map[string]string{"Content-Range": "bytes 7-9/10"}},
				{hdr: []string{"Range", "bytes=7-"}, status: 206, body: "789", cache: "HIT", cs: hit(60), age: "0",
					hdrs: map[string]string{"Content-Range": "bytes 7-9/10"}},
				{hdr: []string{"Range", "bytes=10-"}, status: 416, cache: "HIT", cs: hit(60), age: "0",
					hdrs: map[string]string{"Content-Range": "bytes */10"}, check: anyBody},
				{hdr: []string{"Range", "bytes=0-1,8-9"}, status: 206, cache: "HIT", cs: hit(60), age: "0",
					check: multipartRanges("01", "bytes 0-1/10", "89", "bytes 8-9/10")},
				// Malformed: refused, as RFC 9110 §14.2 allows.
				{hdr: []string{"Range", "bytes=x-y"}, status: 416, cache: "HIT", cs: hit(60), age: "0",
					check: anyBody},
				// A unit the edge does not know: the Range is ignored (RFC 9110 §14.2).
				{hdr: []string{"Range", "items=0-1"}, status: 200, body: "0123456789", cache: "HIT", cs: hit(60), age: "0",
					hdrs: map[string]string{"Content-Range": ""}},
				// Ranges adding up to more than the object: ignored, the whole object is sent.
				{hdr: []string{"Range", "bytes=0-9,0-9"}, status: 200, body: "0123456789", cache: "HIT", cs: hit(60), age: "0",
					hdrs: map[string]string{"Content-Range": ""}},
				{hdr: []string{"Range", "bytes=0-1", "If-Range", `"r1"`}, status: 206, body: "01", cache: "HIT", cs: hit(60), age: "0",
					hdrs: map[string]string{"Content-Range": "bytes 0-1/10"}},
				{hdr: []string{"Range", "bytes=0-1", "If-Range", `"r0"`}, status: 200, body: "0123456789", cache: "HIT", cs: hit(60), age: "0",
					hdrs: map[string]string{"Content-Range": ""}},
				{method: "HEAD", hdr: []string{"Range", "bytes=0-1"}, status: 206, body: "", cache: "HIT", cs: hit(60), age: "0",
					hdrs: map[string]string{"Content-Length": "2", "Content-Range": "bytes 0-1/10"}},
			},
		},

		// CDN-Cache-Control (RFC 9213): it governs the edge, Cache-Control is passed on unchanged.
		{
			name:  "CDN-Cache-Control over Cache-Control",
			reply: rfcReply{hdr: withEtag("Cache-Control", "max-age=5", "CDN-Cache-Control", "max-age=60"), body: "v1"},
			steps: []rfcStep{
				{up: 1, status: 200, body: "v1", cache: "MISS", cs: stored(fwdURIMiss, 200, 60),
					hdrs: map[string]string{"Cache-Control": "max-age=5", "Cdn-Cache-Control": "max-age=60"}},
				{advance: 30 * sec, status: 200, body: "v1", cache: "HIT", cs: hit(30), age: "30",
					hdrs: map[string]string{"Cache-Control": "max-age=5", "Cdn-Cache-Control": "max-age=60"}},
			},
		},
		{
			name:  "CDN-Cache-Control no-store over Cache-Control max-age",
			reply: rfcReply{hdr: withEtag("Cache-Control", "max-age=60", "CDN-Cache-Control", "no-store"), body: "v1"},
			steps: []rfcStep{
				{up: 1, status: 200, body: "v1", cache: "MISS", cs: notStored(fwdURIMiss, 200)},
				{up: 1, status: 200, body: "v1", cache: "MISS", cs: notStored(fwdURIMiss, 200),
					hdrs: map[string]string{"Cache-Control": "max-age=60"}},
			},
		},
		{
			name:  "CDN-Cache-Control max-age over Cache-Control no-store",
			reply: rfcReply{hdr: withEtag("Cache-Control", "no-store", "CDN-Cache-Control", "max-age=60"), body: "v1"},
			steps: []rfcStep{
				{up: 1, status: 200, body: "v1", cache: "MISS", cs: stored(fwdURIMiss, 200, 60)},
				{status: 200, body: "v1", cache: "HIT", cs: hit(60), age: "0", hdrs: map[string]string{"Cache-Control": "no-store"}},
			},
		},
		{
			name:  "invalid CDN-Cache-Control: Cache-Control governs",
			reply: rfcReply{hdr: withEtag("Cache-Control", "max-age=5", "CDN-Cache-Control", "Max-Age=60"), body: "v1"},
			steps: []rfcStep{
				{up: 1, status: 200, body: "v1", cache: "MISS", cs: stored(fwdURIMiss, 200, 5)},
				{advance: 5 * sec, up: 1, status: 200, body: "v1", cache: "REVALIDATED", cs: stored(fwdStale, 304, 5), age: "0"},
			},
		},
		{
			name:  "CDN-Cache-Control governs the stale directives too",
			reply: rfcReply{hdr: withEtag("Cache-Control", "max-age=10, stale-if-error=60", "CDN-Cache-Control", "max-age=10"), body: "v1"},
			steps: []rfcStep{
				{up: 1, status: 200, body: "v1", cache: "MISS", cs: stored(fwdURIMiss, 200, 10)},
				{advance: 20 * sec, set: &overloaded, up: 1, status: 503, body: "overloaded", cache: "MISS",
					cs: notStored(fwdStale, 503)},
			},
		},

		// stale-while-revalidate (RFC 5861 §3).
		{
			name:  "stale-while-revalidate: served at once, revalidated behind",
			reply: rfcReply{hdr: withEtag("Cache-Control", "max-age=10, stale-while-revalidate=30"), body: "v1"},
			steps: []rfcStep{
				{up: 1, status: 200, body: "v1", cache: "MISS", cs: stored(fwdURIMiss, 200, 10)},
				{advance: 15 * sec, hold: true, background: true, up: 1, upHdr: map[string]string{"If-None-Match": `"v1"`},
					status: 200, body: "v1", cache: "STALE", cs: "lectern-edge; hit; ttl=-5; detail=stale-while-revalidate", age: "15"},
				{status: 200, body: "v1", cache: "HIT", cs: hit(10), age: "0"},
				// Past the window: revalidated before the answer.
				{advance: 40 * sec, up: 1, status: 200, body: "v1", cache: "REVALIDATED", cs: stored(fwdStale, 304, 10), age: "0"},
			},
		},

		// stale-if-error (RFC 5861 §4), and the upstream down with a stale entry.
		{
			name:  "stale-if-error: the stale entry stands in for a 5xx or a dead origin",
			reply: rfcReply{hdr: withEtag("Cache-Control", "max-age=10, stale-if-error=60"), body: "v1"},
			cfg:   func(c *Config) { c.FillTimeout = 300 * time.Millisecond },
			steps: []rfcStep{
				{up: 1, status: 200, body: "v1", cache: "MISS", cs: stored(fwdURIMiss, 200, 10)},
				{advance: 20 * sec, set: &overloaded, up: 1, status: 200, body: "v1", cache: "STALE", age: "20",
					cs: "lectern-edge; fwd=stale; fwd-status=503; ttl=-10; detail=stale-if-error"},
				{set: &rfcReply{status: 500, body: "broken"}, up: 1, status: 200, body: "v1", cache: "STALE", age: "20",
					cs: "lectern-edge; fwd=stale; fwd-status=500; ttl=-10; detail=stale-if-error"},
				{origin: originRefuses, status: 200, body: "v1", cache: "STALE", age: "20", within: time.Second,
					cs: "lectern-edge; fwd=stale; ttl=-10; detail=stale-if-error"},
				{origin: originHangs, up: 1, status: 200, body: "v1", cache: "STALE", age: "20",
					notBefore: 300 * time.Millisecond, within: 1500 * time.Millisecond,
					cs: "lectern-edge; fwd=stale; ttl=-10; detail=stale-if-error"},
				// Past the window (age 70 >= 10 + 60): the error goes through.
				{advance: 50 * sec, origin: originUp, set: &overloaded, up: 1, status: 503, body: "overloaded", cache: "MISS",
					cs: notStored(fwdStale, 503)},
				{origin: originRefuses, status: 502, body: badGatewayBody, cache: "MISS", within: time.Second,
					hdrs: map[string]string{"Cache-Control": "no-store"}},
				{origin: originHangs, up: 1, status: 504, body: gatewayTimeoutBody, cache: "MISS",
					notBefore: 300 * time.Millisecond, within: 1500 * time.Millisecond,
					hdrs: map[string]string{"Cache-Control": "no-store"}},
				// The entry stayed through all of it.
				{origin: originUp, set: &rfcReply{hdr: withEtag("Cache-Control", "max-age=10, stale-if-error=60"), body: "v1"},
					up: 1, upHdr: map[string]string{"If-None-Match": `"v1"`}, status: 200, body: "v1", cache: "REVALIDATED",
					cs: stored(fwdStale, 304, 10), age: "0"},
				// A 404 is no error: it replaces the entry.
				{advance: 20 * sec, set: &rfcReply{status: 404, hdr: []string{"Cache-Control", "max-age=60"}, body: "gone"},
					up: 1, status: 404, body: "gone", cache: "MISS", cs: stored(fwdStale, 404, 60)},
			},
		},

		// The upstream down with nothing stored: the edge's own error, at once, never stored.
		{
			name:  "origin refusing connections: 502 at once, nothing stored",
			reply: rfcReply{hdr: withEtag("Cache-Control", "max-age=60"), body: "v1"},
			steps: []rfcStep{
				{origin: originRefuses, status: 502, body: badGatewayBody, cache: "MISS", within: time.Second,
					hdrs: map[string]string{"Cache-Control": "no-store"}},
				{status: 502, body: badGatewayBody, cache: "MISS", within: time.Second},
				{method: "HEAD", status: 502, body: "", cache: "MISS", within: time.Second},
				{method: "POST", status: 502, body: badGatewayBody, cache: "BYPASS", within: time.Second},
				{origin: originUp, up: 1, status: 200, body: "v1", cache: "MISS", cs: stored(fwdURIMiss, 200, 60)},
			},
		},
		{
			name:  "origin hanging: 504 after the fill timeout, nothing stored",
			reply: rfcReply{hdr: withEtag("Cache-Control", "max-age=60"), body: "v1"},
			cfg:   func(c *Config) { c.FillTimeout = 300 * time.Millisecond },
			steps: []rfcStep{
				{origin: originHangs, up: 1, status: 504, body: gatewayTimeoutBody, cache: "MISS",
					notBefore: 300 * time.Millisecond, within: 1500 * time.Millisecond,
					hdrs: map[string]string{"Cache-Control": "no-store"}},
				{origin: originUp, up: 1, status: 200, body: "v1", cache: "MISS", cs: stored(fwdURIMiss, 200, 60)},
			},
		},
	}
	for _, cc := range []string{"public, max-age=60", "s-maxage=60", "max-age=60, must-revalidate"} {
		auth := []string{"Authorization", "Bearer a"}
		cases = append(cases, rfcCase{
			name:  "Authorization: stored with " + cc,
			reply: rfcReply{hdr: withEtag("Cache-Control", cc), body: "v1"},
			steps: []rfcStep{
				{hdr: auth, up: 1, status: 200, body: "v1", cache: "MISS", cs: stored(fwdURIMiss, 200, 60)},
				{hdr: auth, status: 200, body: "v1", cache: "HIT", cs: hit(60), age: "0"},
				{status: 200, body: "v1", cache: "HIT", cs: hit(60), age: "0"},
			},
		})
	}
	cases = append(cases, rfcInvalidationCases()...)
	return append(cases, rfcStatusCases()...)
}

// rfcInvalidationCases check RFC 9111 §4.4: a non-error answer (2xx, 3xx) to an unsafe method,
// or to one whose safety is unknown (PROPPATCH here), invalidates the target URI; an error answer
// or a safe method does not.
func rfcInvalidationCases() []rfcCase {
	reply := rfcReply{hdr: []string{"Cache-Control", "max-age=60"}, body: "v1"}
	first := rfcStep{up: 1, status: 200, body: "v1", cache: "MISS", cs: stored(fwdURIMiss, 200, 60)}
	hitStep := rfcStep{status: 200, body: "v1", cache: "HIT", cs: hit(60), age: "0"}
	missAgain := rfcStep{up: 1, status: 200, body: "v1", cache: "MISS", cs: stored(fwdURIMiss, 200, 60)}
	forward := func(method string, rep rfcReply) rfcStep {
		status := cmp.Or(rep.status, 200)
		return rfcStep{method: method, other: &rep, up: 1, upMethod: method, status: status, body: rep.body,
			cache: "BYPASS", cs: notStored(fwdMethod, status)}
	}
	var cases []rfcCase
	for _, m := range []struct {
		method  string
		success rfcReply
	}{
		{"POST", rfcReply{body: "posted"}},
		{"POST", rfcReply{status: 303, hdr: []string{"Location", "/o?done"}, body: "see other"}},
		{"PUT", rfcReply{status: 201}},
		{"DELETE", rfcReply{status: 204}},
		{"PATCH", rfcReply{body: "patched"}},
		{"PROPPATCH", rfcReply{status: 207, body: "<multistatus/>"}},
	} {
		cases = append(cases, rfcCase{
			name:  fmt.Sprintf("%s answered %d invalidates; 404 and 500 do not", m.method, cmp.Or(m.success.status, 200)),
			reply: reply,
			steps: []rfcStep{
				first,
				forward(m.method, rfcReply{status: 500, body: "broken"}), hitStep,
				forward(m.method, rfcReply{status: 404, body: "no such thing"}), hitStep,
				forward(m.method, m.success), missAgain, hitStep,
			},
		})
	}
	get := func(path, cache string) rfcStep {
		if cache == "HIT" {
			return rfcStep{path: path, status: 200, body: "v1", cache: "HIT", cs: hit(60), age: "0"}
		}
		return rfcStep{path: path, up: 1, status: 200, body: "v1", cache: "MISS", cs: stored(fwdURIMiss, 200, 60)}
	}
	post := func(rep rfcReply) rfcStep {
		s := forward("POST", rep)
		s.path = "/dir/o"
		return s
	}
	cases = append(cases, rfcCase{
		name:  "Location and Content-Location: invalidated when same-origin",
		reply: reply,
		steps: []rfcStep{
			get("/a", "MISS"), get("/b", "MISS"), get("/c", "MISS"), get("/d", "MISS"), get("/e", "MISS"), get("/e?x=1", "MISS"),
			post(rfcReply{status: 201, hdr: []string{"Location", "/a", "Content-Location", "../b"}}),
			get("/a", "MISS"), get("/b", "MISS"), get("/c", "HIT"),
			post(rfcReply{status: 201, hdr: []string{"Location", "{edge}/c"}}),
			get("/c", "MISS"),
			// Another origin, or this host under another scheme: not ours to invalidate.
			post(rfcReply{status: 201, hdr: []string{"Location", "http://elsewhere.example/d", "Content-Location", "//elsewhere.example/e"}}),
			post(rfcReply{status: 201, hdr: []string{"Location", "https://{edgehost}/d"}}),
			get("/d", "HIT"), get("/e", "HIT"),
			// An error answer invalidates nothing.
			post(rfcReply{status: 500, hdr: []string{"Location", "/d", "Content-Location", "/e"}, body: "broken"}),
			get("/d", "HIT"), get("/e", "HIT"),
			post(rfcReply{status: 200, hdr: []string{"Content-Location", "/e?x=1"}}),
			get("/e", "HIT"), get("/e?x=1", "MISS"),
		},
	})
	for _, method := range []string{"OPTIONS", "TRACE"} {
		cases = append(cases, rfcCase{
			name:  method + " does not invalidate",
			reply: reply,
			steps: []rfcStep{first, forward(method, rfcReply{body: "ok"}), hitStep},
		})
	}
	return cases
}

// rfcStatusCases check which statuses are stored (RFC 9111 §3, RFC 9110 §15.1): the heuristically
// cacheable ones even without explicit freshness, 302 and 307 only with it, 206 and 5xx never.
func rfcStatusCases() []rfcCase {
	var cases []rfcCase
	lastModified := []string{"Last-Modified", at(-1000 * time.Second)}
	for _, status := range []int{200, 203, 204, 300, 301, 308, 404, 405, 410, 414} {
		body := "x"
		if !bodyAllowed(status) {
			body = ""
		}
		cases = append(cases, rfcCase{
			name:  fmt.Sprintf("status %d: heuristically cacheable", status),
			reply: rfcReply{status: status, hdr: lastModified, body: body},
			steps: []rfcStep{
				{up: 1, status: status, body: body, cache: "MISS", cs: stored(fwdURIMiss, status, 100)},
				{advance: 99 * time.Second, status: status, body: body, cache: "HIT", cs: hit(1), age: "99"},
				// Explicit freshness.
				{advance: time.Second, set: &rfcReply{status: status, hdr: []string{"Cache-Control", "max-age=60"}, body: body},
					up: 1, status: status, body: body, cache: "MISS", cs: stored(fwdStale, status, 60)},
				{status: status, body: body, cache: "HIT", cs: hit(60), age: "0"},
				// Neither: not stored (and the stale entry it replaces is gone).
				{advance: time.Minute, set: &rfcReply{status: status, body: body},
					up: 1, status: status, body: body, cache: "MISS", cs: notStored(fwdStale, status)},
				{up: 1, status: status, body: body, cache: "MISS", cs: notStored(fwdURIMiss, status)},
			},
		})
	}
	for _, status := range []int{302, 307} {
		location := []string{"Location", "/elsewhere"}
		cases = append(cases, rfcCase{
			name:  fmt.Sprintf("status %d: stored with explicit freshness only", status),
			reply: rfcReply{status: status, hdr: append(location, lastModified...), body: "moved"},
			steps: []rfcStep{
				{up: 1, status: status, body: "moved", cache: "MISS", cs: notStored(fwdURIMiss, status),
					hdrs: map[string]string{"Location": "/elsewhere"}},
				{up: 1, status: status, body: "moved", cache: "MISS", cs: notStored(fwdURIMiss, status)},
				{set: &rfcReply{status: status, hdr: append(location, "Cache-Control", "max-age=60"), body: "moved"},
					up: 1, status: status, body: "moved", cache: "MISS", cs: stored(fwdURIMiss, status, 60)},
				{status: status, body: "moved", cache: "HIT", cs: hit(60), age: "0", hdrs: map[string]string{"Location": "/elsewhere"}},
			},
		})
	}
	for _, status := range []int{206, 500, 501, 502, 503} {
		hdr := append([]string{"Cache-Control", "max-age=60"}, lastModified...)
		if status == 206 {
			hdr = append(hdr, "Content-Range", "bytes 0-1/10")
		}
		// 206 and 501 are heuristically cacheable, and none of them is stored with or without
		// explicit freshness.
		cases = append(cases, rfcCase{
			name:  fmt.Sprintf("status %d: never stored", status),
			reply: rfcReply{status: status, hdr: hdr, body: "x"},
			steps: []rfcStep{
				{up: 1, status: status, body: "x", cache: "MISS", cs: notStored(fwdURIMiss, status)},
				{up: 1, status: status, body: "x", cache: "MISS", cs: notStored(fwdURIMiss, status)},
				{set: &rfcReply{status: status, hdr: hdr[2:], body: "x"},
					up: 1, status: status, body: "x", cache: "MISS", cs: notStored(fwdURIMiss, status)},
				{up: 1, status: status, body: "x", cache: "MISS", cs: notStored(fwdURIMiss, status)},
			},
		})
	}
	return cases
}

// anyBody leaves the body unchecked: http.ServeContent words its 416 answers.
func anyBody(*testing.T, *http.Response, []byte) {}

// multipartRanges checks a multipart/byteranges body: each part's data and Content-Range, in
// order, as pairs.
func multipartRanges(pairs ...string) func(t *testing.T, resp *http.Response, body []byte) {
	return func(t *testing.T, resp *http.Response, body []byte) {
		t.Helper()
		ct := resp.Header.Get("Content-Type")
		_, params, err := mime.ParseMediaType(ct)
		if err != nil || !strings.HasPrefix(ct, "multipart/byteranges;") {
			t.Fatalf("Content-Type %q: %v", ct, err)
		}
		mr := multipart.NewReader(bytes.NewReader(body), params["boundary"])
		for i := 0; i+1 < len(pairs); i += 2 {
			p, err := mr.NextPart()
			if err != nil {
				t.Fatalf("part %d: %v", i/2, err)
			}
			data, _ := io.ReadAll(p)
			if string(data) != pairs[i] || p.Header.Get("Content-Range") != pairs[i+1] {
				t.Errorf("part %d: %q, Content-Range %q; want %q, %q", i/2, data, p.Header.Get("Content-Range"),
					pairs[i], pairs[i+1])
			}
		}
		if _, err := mr.NextPart(); err != io.EOF {
			t.Errorf("more parts than %d: %v", len(pairs)/2, err)
		}
	}
}
