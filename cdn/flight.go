package cdn

import (
	"errors"
	"net/http"
	"strconv"
	"sync"
	"sync/atomic"
	"time"
)

// flight is one fill in progress, which every concurrent GET of its key joins. When the upstream's
// headers show a response that may be shared and whose length is known, they are published at once
// and the body is read into buf by a goroutine of its own (pump); every request on the flight, the
// leader's included, then streams from buf at its own pace as the bytes arrive.
type flight struct {
	key     string
	waiters int // requests that joined besides the leader; guarded by flightGroup.mu
	// askingPeer is true while the fill waits on a peer of the group. A peer's request does not
	// join the flight then: while two edges disagree about a key's owner (a membership edit reaching
	// them one after the other), each could otherwise wait on the other's fill. Each edge sets it
	// before its own request leaves, so of two such requests at least the second finds it set.
	askingPeer atomic.Bool

	mu   sync.Mutex
	wake chan struct{} // closed and replaced whenever the state below changes
	head *fillHead     // the response's headers, once it is being streamed to everyone
	buf  []byte        // the body read so far; never written below len(buf)
	done bool          // the fill is over; ent, err or alone says how
	// ent is the complete response to share, label and cs how it was produced (cs without fwd and
	// collapsed, which are each request's own).
	ent   *entry
	label string
	cs    cacheStatus
	err   error // the fill failed: nothing was cached
	alone bool  // the response is not for sharing: every waiter asks upstream on its own
}

// fillHead is a response being streamed through a flight.
type fillHead struct {
	meta   *entry // the response without its body: status, headers, freshness, Vary
	length int64  // the body's length, from Content-Length
	cs     cacheStatus
}

func newFlight(key string) *flight { return &flight{key: key, wake: make(chan struct{})} }

// flightKey carries a fill's flight in its context, for the peer code to mark (askingPeer).
type flightKey struct{}

// notify wakes everyone waiting on f; f.mu is held.
func (f *flight) notify() {
	close(f.wake)
	f.wake = make(chan struct{})
}

func (f *flight) start(head *fillHead) {
	f.mu.Lock()
	f.head = head
	f.notify()
	f.mu.Unlock()
}

func (f *flight) grow(buf []byte) {
	f.mu.Lock()
	f.buf = buf
	f.notify()
	f.mu.Unlock()
}

func (f *flight) complete(ent *entry, label string, cs cacheStatus) {
	f.mu.Lock()
	f.done, f.ent, f.label, f.cs = true, ent, label, cs
	f.notify()
	f.mu.Unlock()
}

// finish publishes the last of a streamed body together with the complete response.
func (f *flight) finish(buf []byte, ent *entry, cs cacheStatus) {
	f.mu.Lock()
	f.buf, f.done, f.ent, f.label, f.cs = buf, true, ent, cacheMiss, cs
	f.notify()
	f.mu.Unlock()
}

func (f *flight) fail(err error) {
	f.mu.Lock()
	f.done, f.err = true, err
	f.notify()
	f.mu.Unlock()
}

func (f *flight) leave() {
	f.mu.Lock()
	f.done, f.alone = true, true
	f.notify()
	f.mu.Unlock()
}

// flightState is a snapshot of a flight, with the channel that is closed when it changes.
type flightState struct {
	head  *fillHead
	done  bool
	ent   *entry
	label string
	cs    cacheStatus
	err   error
	alone bool
	wake  <-chan struct{}
}

func (f *flight) state() flightState {
	f.mu.Lock()
	defer f.mu.Unlock()
	return flightState{head: f.head, done: f.done, ent: f.ent, label: f.label, cs: f.cs, err: f.err, alone: f.alone, wake: f.wake}
}

// from returns the body bytes at and after off read so far, whether the body is complete, the fill's
// error, and a channel closed when there is more to say.
func (f *flight) from(off int) (data []byte, complete bool, err error, wake <-chan struct{}) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.buf[off:], f.done && f.err == nil, f.err, f.wake
}

// flightGroup holds the fills in progress by cache key, each with at most max waiters.
type flightGroup struct {
	mu  sync.Mutex
	m   map[string]*flight
	max int
}

// join returns the flight for key and whether the caller leads it (and must see it finished). ok is
// false when the flight already has its maximum of waiters: the caller must not wait.
//
// fromPeer says the caller is a peer's request: it gets no flight (nil, not leader, ok) when the
// running one is waiting on a peer, and must fetch on its own.
func (g *flightGroup) join(key string, fromPeer bool) (f *flight, leader, ok bool) {
	g.mu.Lock()
	defer g.mu.Unlock()
	if f, found := g.m[key]; found {
		switch {
		case fromPeer && f.askingPeer.Load():
			return nil, false, true
		case f.waiters >= g.max:
			return nil, false, false
		}
		f.waiters++
		return f, false, true
	}
	f = newFlight(key)
	g.m[key] = f
	return f, true, true
}

// begin returns a new flight for key, which the caller leads, unless one is running already.
func (g *flightGroup) begin(key string) (*flight, bool) {
	g.mu.Lock()
	defer g.mu.Unlock()
	if _, found := g.m[key]; found {
		return nil, false
	}
	f := newFlight(key)
	g.m[key] = f
	return f, true
}

// quit ends a waiter's membership of f, which join granted.
func (g *flightGroup) quit(f *flight) {
	g.mu.Lock()
	f.waiters--
	g.mu.Unlock()
}

// remove forgets f, so that later requests for its key start a new fill. Called before f's outcome is
// published, so that no request joins a flight that has already failed.
func (g *flightGroup) remove(f *flight) {
	g.mu.Lock()
	if g.m[f.key] == f { // a purge may have detached f, and a newer flight taken its place
		delete(g.m, f.key)
	}
	g.mu.Unlock()
}

// wait answers a request that joined another request's fill; fwd is why it could not be answered
// from the cache.
func (e *Edge) wait(w http.ResponseWriter, r *http.Request, f *flight, fwd string) result {
	e.stats.CollapsedWaiters.Add(1)
	defer e.flights.quit(f)
	return e.follow(w, r, f, fwd, true)
}

// follow answers r from flight f: it waits until the fill's response is known (a waiter at most
// Config.WaitTimeout), then streams the body as it arrives or serves the complete response. The
// leader calls it once its fill has published what it got.
func (e *Edge) follow(w http.ResponseWriter, r *http.Request, f *flight, fwd string, waiter bool) result {
	var timeout <-chan time.Time
	if waiter {
		t := time.NewTimer(e.waitTimeout)
		defer t.Stop()
		timeout = t.C
	}
	s := f.state()
	for s.head == nil && !s.done {
		select {
		case <-s.wake:
		case <-r.Context().Done():
			return result{status: statusClientClosed, label: cacheMiss}
		case <-timeout:
			e.stats.CollapseTimeouts.Add(1)
			return e.refuseWaiter(w, r, http.StatusGatewayTimeout, "gateway timeout: upstream response too slow\n",
				cacheStatus{fwd: fwd, collapsed: -1, detail: "wait-timeout"})
		}
		s = f.state()
	}
	cs := cacheStatus{fwd: fwd}
	if waiter {
		cs.collapsed = 1
	}
	if s.alone {
		// Not fit to share (uncacheable, oversized): this request goes on its own.
		return e.passThrough(w, r, cacheBypass, cacheStatus{fwd: fwd, collapsed: -1})
	}
	if errors.Is(s.err, errOverloaded) {
		return e.overloaded(w, r, prioPlaying)
	}
	if s.err != nil {
		// Nothing has been written to this client yet, so it can still be told plainly (502, or 504
		// for a timeout).
		return e.badGateway(w, r, cacheMiss, s.err)
	}
	meta := s.ent
	if meta == nil {
		meta = s.head.meta
	}
	if !meta.varyMatches(r) {
		// Another variant: a waiter goes on its own (the leader's request always matches).
		return e.passThrough(w, r, cacheBypass, cacheStatus{fwd: fwd, collapsed: -1})
	}
	if !s.done && hasClientSpecific(r.Header) {
		// Its Range or conditionals are answered by http.ServeContent from the complete object.
		for !s.done {
			select {
			case <-s.wake:
			case <-r.Context().Done():
				return result{status: statusClientClosed, label: cacheMiss}
			}
			s = f.state()
		}
		if s.err != nil {
			return e.badGateway(w, r, cacheMiss, s.err)
		}
	}
	if s.done {
		s.cs.fwd, s.cs.collapsed = cs.fwd, cs.collapsed
		return e.serveEntry(w, r, s.ent, s.label, s.cs)
	}
	hc := s.head.cs
	hc.fwd, hc.collapsed = cs.fwd, cs.collapsed
	return e.stream(w, r, f, s.head, hc)
}

// stream writes the response of f as its body arrives. Should the fill fail after the headers went
// out, the result asks for the connection to be aborted, so that the client sees a truncated
// response rather than a short one that looks complete.
func (e *Edge) stream(w http.ResponseWriter, r *http.Request, f *flight, head *fillHead, cs cacheStatus) result {
	// The header a hit on the finished entry will have, with the length the upstream announced (meta
	// has no body yet).
	h := w.Header()
	e.setFullHeader(h, head.meta, cacheMiss, cs)
	h["Content-Length"] = []string{strconv.FormatInt(head.length, 10)}
	if head.meta.status != http.StatusOK {
		delete(h, "Accept-Ranges") // ranges are only served from a 200
	}
	w.WriteHeader(head.meta.status)
	res := result{status: head.meta.status, label: cacheMiss}
	if r.Method == http.MethodHead {
		return res
	}

	rc := http.NewResponseController(w)
	for {
		data, complete, err, wake := f.from(int(res.bytes))
		if len(data) > 0 {
			n, werr := w.Write(data)
			res.bytes += int64(n)
			if werr != nil {
				return res // the client is gone
			}
			continue
		}
		if complete {
			return res
		}
		if err != nil {
			res.abort = true
			return res
		}
		// Everything read so far is written: push it out before waiting for more.
		_ = rc.Flush()
		select {
		case <-wake:
		case <-r.Context().Done():
			res.status = statusClientClosed
			return res
		}
	}
}

// refuseWaiter answers a request that may not wait for a fill (too many waiters, or too long a
// wait). Unlike the edge's other answers of its own, it carries a Cache-Status member saying so.
func (e *Edge) refuseWaiter(w http.ResponseWriter, r *http.Request, status int, body string, cs cacheStatus) result {
	h := w.Header()
	h.Set("Cache-Control", "no-store")
	h.Set("Retry-After", "1")
	h.Set("Via", via)
	h.Set("X-Cache", cacheMiss)
	h.Set("Cache-Status", cs.member(0))
	return writeText(w, r, status, body, cacheMiss)
}
