package cdn

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"sync"
	"time"
)

// flight is one fill in progress that other requests for the same key wait on.
type flight struct {
	done chan struct{}
	// Set before done is closed, read after; the channel orders them.
	ent   *entry // the response, when waiters may use it
	label string
	cs    cacheStatus
	err   error // the fill failed; waiters fail too
}

// flightGroup collapses concurrent fills of a key. It is singleflight with two differences that
// matter here: the leader runs the fill on its own goroutine (so it can stream an uncacheable
// response to its client), and the result says whether waiters may share it.
type flightGroup struct {
	mu sync.Mutex
	m  map[string]*flight
}

// join returns the flight for key and whether the caller leads it (and must finish it).
func (g *flightGroup) join(key string) (*flight, bool) {
	g.mu.Lock()
	defer g.mu.Unlock()
	if f, ok := g.m[key]; ok {
		return f, false
	}
	f := &flight{done: make(chan struct{})}
	g.m[key] = f
	return f, true
}

func (g *flightGroup) finish(key string, f *flight, ent *entry, label string, cs cacheStatus, err error) {
	f.ent, f.label, f.cs, f.err = ent, label, cs, err
	g.mu.Lock()
	if g.m[key] == f { // a purge may have detached f, and a newer flight taken its place
		delete(g.m, key)
	}
	g.mu.Unlock()
	close(f.done)
}

var (
	errFillAborted = errors.New("cdn: fill aborted")
	// errOverloaded ends a flight whose leader was shed before it reached the upstream.
	errOverloaded = errors.New("cdn: edge overloaded")
)

// wait answers a request that joined another request's fill; fwd is why it could not be answered
// from the cache.
func (e *Edge) wait(w http.ResponseWriter, r *http.Request, f *flight, fwd string) result {
	e.stats.CollapsedWaiters.Add(1)
	select {
	case <-f.done:
	case <-r.Context().Done():
		return result{status: statusClientClosed, label: cacheMiss}
	}
	switch {
	case errors.Is(f.err, errOverloaded):
		return e.overloaded(w, r, prioPlaying)
	case f.err != nil:
		return e.badGateway(w, r, cacheMiss, f.err)
	case f.ent != nil && f.ent.varyMatches(r):
		cs := f.cs
		cs.fwd, cs.collapsed = fwd, 1
		return e.serveEntry(w, r, f.ent, f.label, cs)
	default:
		// Not fit to share (uncacheable, oversized, another variant): this request goes on its own.
		return e.passThrough(w, r, cacheBypass, cacheStatus{fwd: fwd, collapsed: -1})
	}
}

// fillOutcome is a fill's result: a complete response, or an open one that only the leader may
// stream.
type fillOutcome struct {
	ent   *entry
	share bool
	label string
	cs    cacheStatus // without fwd, which the caller knows

	resp   *http.Response // open; streamed to the leader's client alone
	prefix []byte         // body bytes already read from resp
	retry  bool           // resp is unusable for the client's Range/conditionals: resend its request
}

// lead performs a fill for r, publishes its result to f's waiters (f is nil when nobody may wait),
// and answers r. gen is the purge generation read before stale was looked up, fwd why r could not be
// answered from the cache.
func (e *Edge) lead(w http.ResponseWriter, r *http.Request, key string, stale *entry, f *flight, gen uint64,
	fwd string) result {
	// Detached from r, so that the leader's client leaving does not fail every waiter; bounded by
	// FillTimeout instead while anyone else may depend on it.
	ctx, cancel := context.WithCancel(context.WithoutCancel(r.Context()))
	defer cancel()
	timer := time.AfterFunc(e.fillTimeout, cancel)
	defer timer.Stop()

	finished := f == nil
	defer func() {
		if !finished { // a panic in the fill must not leave waiters hanging
			e.flights.finish(key, f, nil, "", cacheStatus{}, errFillAborted)
		}
	}()
	out, err := e.fill(ctx, r, key, stale, gen)
	if err != nil && ctx.Err() != nil {
		// Nothing but the FillTimeout timer cancels ctx this early: the answer (the leader's and
		// its waiters') is then 504, not 502.
		err = fmt.Errorf("%w: %w", errFillTimeout, err)
	}
	if !finished {
		var shared *entry
		if err == nil && out.share {
			shared = out.ent
		}
		e.flights.finish(key, f, shared, out.label, out.cs, err)
		finished = true
	}
	out.cs.fwd = fwd

	switch {
	case err != nil:
		return e.badGateway(w, r, cacheMiss, err)
	case out.ent != nil:
		return e.serveEntry(w, r, out.ent, out.label, out.cs)
	}
	// From here on only this client depends on the response: stop the fill deadline and end the
	// upstream exchange when the client leaves.
	timer.Stop()
	if out.retry {
		out.resp.Body.Close()
		return e.passThrough(w, r, cacheBypass, cacheStatus{fwd: fwd})
	}
	defer out.resp.Body.Close()
	stop := context.AfterFunc(r.Context(), cancel)
	defer stop()
	out.cs.fwdStatus = out.resp.StatusCode
	return e.writeStream(w, r, out.resp, out.prefix, cacheMiss, out.cs)
}

// fill fetches the whole object for key from upstream (revalidating stale when there is one) and
// updates the memory tier, unless a purge has run since generation gen.
func (e *Edge) fill(ctx context.Context, r *http.Request, key string, stale *entry, gen uint64) (fillOutcome, error) {
	req, err := e.upstreamRequest(ctx, r, http.MethodGet, nil)
	if err != nil {
		return fillOutcome{}, err
	}
	for _, name := range clientSpecific() {
		req.Header.Del(name)
	}
	if stale != nil {
		if et := stale.etag(); et != "" {
			req.Header.Set("If-None-Match", et)
		}
		if lm := stale.header.Get("Last-Modified"); lm != "" {
			req.Header.Set("If-Modified-Since", lm)
		}
	}

	requestTime := e.now()
	resp, fromPeer, err := e.send(ctx, r, req, key)
	if err != nil {
		e.stats.UpstreamErrors.Add(1)
		if stale != nil && stale.ifError(e.now()) {
			e.log.Warn("edge upstream failed; serving stale", slog.String("key", key), slog.Any("err", err))
			return e.staleOnError(stale, 0), nil
		}
		if stale != nil && stale.stale.forbidden {
			err = fmt.Errorf("%w: %w", errMustRevalidate, err)
		}
		return fillOutcome{}, err
	}
	responseTime := e.now()
	if resp.StatusCode >= 500 {
		e.stats.UpstreamErrors.Add(1)
	}
	if stale != nil && errorStatus(resp.StatusCode) && stale.ifError(responseTime) {
		io.Copy(io.Discard, io.LimitReader(resp.Body, 4<<10))
		resp.Body.Close()
		return e.staleOnError(stale, resp.StatusCode), nil
	}

	if stale != nil && resp.StatusCode == http.StatusNotModified {
		io.Copy(io.Discard, io.LimitReader(resp.Body, 4<<10)) // lets the connection be reused
		resp.Body.Close()
		out := e.refresh(r, key, stale, resp.Header, requestTime, responseTime, gen)
		out.cs.detail = peerDetail(fromPeer)
		return out, nil
	}

	d := decide(r, resp.StatusCode, resp.Header, responseTime)
	if stale != nil && resp.StatusCode < 500 {
		// Whatever the upstream sent instead of a 304 supersedes the stored copy, even when it will
		// not be stored itself. After a 5xx the copy stays, for a later retry (and stale-if-error).
		e.forget(key)
	}
	if resp.ContentLength > e.maxObject {
		return fillOutcome{resp: resp, retry: hasClientSpecific(r.Header), cs: cacheStatus{detail: peerDetail(fromPeer)}}, nil
	}
	body, complete, err := readUpTo(resp.Body, resp.ContentLength, e.maxObject)
	if err != nil {
		resp.Body.Close()
		e.stats.UpstreamErrors.Add(1)
		return fillOutcome{}, err
	}
	if !complete {
		return fillOutcome{resp: resp, prefix: body, cs: cacheStatus{detail: peerDetail(fromPeer)}}, nil
	}
	resp.Body.Close()

	ent := newEntry(key, resp.StatusCode, resp.Header, body, r, requestTime, responseTime, d.lifetime)
	stored := d.store && e.store(key, ent, gen)
	if d.store && !stored {
		d.share = false
	}
	if !d.store && d.why != "" {
		e.log.Debug("edge response not cached", slog.String("key", key), slog.String("why", d.why))
	}
	cs := cacheStatus{fwdStatus: resp.StatusCode, stored: stored, ttl: stored, detail: peerDetail(fromPeer)}
	return fillOutcome{ent: ent, share: d.share, label: cacheMiss, cs: cs}, nil
}

// peerDetail is the Cache-Status detail of a response a peer of the group answered.
func peerDetail(fromPeer bool) string {
	if fromPeer {
		return "peer"
	}
	return ""
}

// staleOnError is the outcome of a fill whose upstream failed while stale-if-error still covers the
// stale entry: the entry, unchanged, for the leader and its waiters. status is the upstream's answer,
// 0 when there was none.
func (e *Edge) staleOnError(stale *entry, status int) fillOutcome {
	e.stats.StaleIfError.Add(1)
	cs := cacheStatus{fwdStatus: status, ttl: true, detail: "stale-if-error"}
	return fillOutcome{ent: stale, share: true, label: cacheStale, cs: cs}
}

// revalidateInBackground starts a fill that revalidates stale, an entry being served under
// stale-while-revalidate, unless a fill for key is already running (it will refresh the entry
// too). The fill leads a flight like any other, so requests that cannot use the stale entry (another
// variant) wait for it instead of fetching again.
func (e *Edge) revalidateInBackground(r *http.Request, key string, stale *entry, gen uint64) {
	f, leader := e.flights.join(key)
	if !leader {
		return
	}
	// The client's request ends as soon as it has the stale entry; the fill must outlive it.
	req := r.Clone(context.WithoutCancel(r.Context()))
	go func() {
		ctx, cancel := context.WithTimeout(req.Context(), e.fillTimeout)
		defer cancel()
		finished := false
		defer func() {
			if p := recover(); p != nil {
				// No handler around this goroutine: a panic would end the process.
				e.log.Error("edge background revalidation panicked", slog.String("key", key), slog.Any("panic", p))
			}
			if !finished {
				e.flights.finish(key, f, nil, "", cacheStatus{}, errFillAborted)
			}
		}()
		out, err := e.fill(ctx, req, key, stale, gen)
		var shared *entry
		if err == nil && out.share {
			shared = out.ent
		}
		e.flights.finish(key, f, shared, out.label, out.cs, err)
		finished = true
		switch {
		case err != nil:
			e.log.Warn("edge background revalidation failed", slog.String("key", key), slog.Any("err", err))
		case out.resp != nil:
			out.resp.Body.Close() // too big to store, and nobody to stream it to
		}
	}()
}

// refresh applies a 304 to a stale entry.
func (e *Edge) refresh(r *http.Request, key string, stale *entry, h http.Header,
	requestTime, responseTime time.Time, gen uint64) fillOutcome {
	e.stats.Revalidations.Add(1)
	merged := stale.refreshed(key, h, requestTime, responseTime)
	d := decide(r, stale.status, merged.header, responseTime)
	merged.lifetime = d.lifetime // merged is not published yet
	stored := d.store && e.store(key, merged, gen)
	if !stored {
		// The 304 validated the body for this request, but the new headers forbid keeping it.
		e.forget(key)
		d.share = false
	}
	cs := cacheStatus{fwdStatus: http.StatusNotModified, stored: stored, ttl: stored}
	return fillOutcome{ent: merged, share: d.share, label: cacheRevalidated, cs: cs}
}

// readUpTo reads a body of declared length n (-1 when unknown) as long as it is at most limit bytes.
// complete is false when the body turned out longer; the bytes read so far are returned to be sent on.
func readUpTo(body io.Reader, n, limit int64) (data []byte, complete bool, err error) {
	if n >= 0 {
		data = make([]byte, n)
		if _, err := io.ReadFull(body, data); err != nil {
			return nil, false, err
		}
		return data, true, nil
	}
	var buf bytes.Buffer
	read, err := buf.ReadFrom(io.LimitReader(body, limit+1))
	if err != nil {
		return nil, false, err
	}
	if read > limit {
		return buf.Bytes(), false, nil
	}
	// Growth left spare capacity that the weigher would not see; keep exactly the body.
	return bytes.Clone(buf.Bytes()), true, nil
}
