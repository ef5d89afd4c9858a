package cdn

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"time"
)

var (
	errFillAborted = errors.New("cdn: fill aborted")
	// errOverloaded ends a flight whose leader was shed before it reached the upstream.
	errOverloaded = errors.New("cdn: edge overloaded")
)

// fillChunk is the most read from upstream before the requests streaming a fill are woken.
const fillChunk = 64 << 10

// fillOutcome is what a fill got from upstream: a complete response, a shareable one whose body is
// yet to be read into the flight (head), or an open one that only the leader may stream.
type fillOutcome struct {
	ent   *entry
	share bool
	label string
	cs    cacheStatus // without fwd, which the caller knows

	head  *fillHead // with resp: stream its body to every request on the flight
	store bool      // with head: keep the response once its body is complete

	resp   *http.Response // open; with head, the pump reads it, otherwise the leader's client alone gets it
	prefix []byte         // body bytes already read from resp
	retry  bool           // resp is unusable for the client's Range/conditionals: resend its request
}

// lead performs a fill for r, publishes its result to f's waiters, and answers r. f is a flight of
// r's own, in no group, when nobody may wait. gen is the purge generation read before stale was
// looked up, fwd why r could not be answered from the cache. The caller has taken a fill slot
// (shedder.startFill), which the fill gives back when it ends, after r is answered if the body is
// still being read for others.
func (e *Edge) lead(w http.ResponseWriter, r *http.Request, key string, stale *entry, f *flight, gen uint64,
	fwd string) result {
	// Detached from r, so that the leader's client leaving does not fail every waiter; bounded by
	// FillTimeout instead while anyone else may depend on it.
	ctx, cancel := context.WithCancelCause(context.WithValue(context.WithoutCancel(r.Context()), flightKey{}, f))
	timer := time.AfterFunc(e.fillTimeout, func() { cancel(errFillTimeout) })
	pumping := false
	defer func() {
		if !pumping { // otherwise the pump owns the fill's context and slot
			timer.Stop()
			cancel(nil)
			e.shed.endFill()
		}
	}()
	published := false
	defer func() {
		if !published { // a panic in the fill must not leave waiters hanging
			e.flights.remove(f)
			f.fail(errFillAborted)
		}
	}()
	out, err := e.fill(ctx, r, key, stale, gen)
	err = fillError(ctx, err)
	pumping = e.publish(f, out, err)
	published = true
	out.cs.fwd = fwd

	switch {
	case err != nil:
		return e.badGateway(w, r, cacheMiss, err)
	case pumping:
		go e.pump(ctx, cancel, timer, f, out, gen, e.shed.endFill)
		return e.follow(w, r, f, fwd, false)
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
	stop := context.AfterFunc(r.Context(), func() { cancel(nil) })
	defer stop()
	out.cs.fwdStatus = out.resp.StatusCode
	return e.writeStream(w, r, out.resp, out.prefix, cacheMiss, out.cs)
}

// publish tells f's waiters what a fill got, and reports whether its body is still to be read into
// the flight: the caller must then run pump.
func (e *Edge) publish(f *flight, out fillOutcome, err error) bool {
	if err == nil && out.head != nil {
		f.start(out.head)
		return true
	}
	e.flights.remove(f)
	switch {
	case err != nil:
		f.fail(err)
	case out.ent != nil && out.share:
		f.complete(out.ent, out.label, out.cs)
	default:
		f.leave()
	}
	return false
}

// pump reads the body of a streamed fill into its flight, then stores the complete response unless
// a purge has run since generation gen. It owns the fill's context (cancel, and the timer that
// bounds it by FillTimeout) and the response; release, when not nil, is called at the end.
func (e *Edge) pump(ctx context.Context, cancel context.CancelCauseFunc, timer *time.Timer, f *flight, out fillOutcome,
	gen uint64, release func()) {
	if release != nil {
		defer release()
	}
	defer cancel(nil)
	defer timer.Stop()
	defer out.resp.Body.Close()
	defer func() {
		// Outside any handler, a panic would end the process and leave the flight's requests waiting;
		// it fails this one fill instead.
		if v := recover(); v != nil {
			e.log.Error("edge fill panicked", slog.String("key", f.key), slog.Any("panic", v))
			e.flights.remove(f)
			f.fail(fmt.Errorf("cdn: fill of %s panicked: %v", f.key, v))
		}
	}()
	size := int(out.head.length)
	buf := make([]byte, 0, size)
	var err error
	for len(buf) < size {
		var n int
		n, err = out.resp.Body.Read(buf[len(buf):min(len(buf)+fillChunk, size)])
		if n > 0 {
			buf = buf[:len(buf)+n]
			if len(buf) < size {
				// The last bytes are published with the stored entry, so a client that has the whole
				// body finds it in the cache.
				f.grow(buf)
			}
		}
		if err != nil {
			break
		}
	}
	if len(buf) < size {
		if err == nil || err == io.EOF {
			err = io.ErrUnexpectedEOF
		}
		err = fillError(ctx, fmt.Errorf("cdn: body cut short after %d of %d bytes: %w", len(buf), size, err))
		e.stats.UpstreamErrors.Add(1)
		e.log.Warn("edge fill failed mid-body", slog.String("key", f.key), slog.Any("err", err))
		e.flights.remove(f)
		f.fail(err)
		return
	}
	ent := out.head.meta.withBody(f.key, buf) // meta is shared with the requests streaming it
	cs := out.head.cs
	cs.stored = out.store && e.store(f.key, ent, gen)
	cs.ttl = cs.stored
	e.flights.remove(f)
	f.finish(buf, ent, cs)
}

// otherStrongValidator reports whether a 304's ETag is strong and not the stored one.
func otherStrongValidator(stored, notModified string) bool {
	return notModified != "" && !strings.HasPrefix(notModified, "W/") && notModified != stored
}

// fillError names the cause of a fill's error when its context ended it: errFillTimeout when it ran
// past FillTimeout.
func fillError(ctx context.Context, err error) error {
	if err != nil && errors.Is(context.Cause(ctx), errFillTimeout) && !errors.Is(err, errFillTimeout) {
		return fmt.Errorf("%w: %w", errFillTimeout, err)
	}
	return err
}

// fill fetches key from upstream (revalidating stale when there is one) up to the response headers,
// or the whole body when it cannot be streamed, and updates the memory tier with what is complete,
// unless a purge has run since generation gen.
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
		if otherStrongValidator(stale.etag(), resp.Header.Get("Etag")) {
			// RFC 9111 §4.3.4: a 304 naming another representation by its strong validator updates
			// nothing stored, and the stored body is not what the upstream holds: fetch it whole.
			e.log.Warn("edge upstream answered 304 for another representation; refetching",
				slog.String("key", key), slog.String("stored", stale.etag()), slog.String("304", resp.Header.Get("Etag")))
			e.forget(key)
			return e.fill(ctx, r, key, nil, gen)
		}
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
	if !d.store && d.why != "" {
		e.log.Debug("edge response not cached", slog.String("key", key), slog.String("why", d.why))
	}
	if resp.ContentLength > e.maxObject {
		return fillOutcome{resp: resp, retry: hasClientSpecific(r.Header), cs: cacheStatus{detail: peerDetail(fromPeer)}}, nil
	}
	if resp.ContentLength >= 0 && d.share {
		// The length is known and fits: everyone on the flight streams the body as it arrives.
		meta := newEntry(key, resp.StatusCode, resp.Header, nil, r, requestTime, responseTime, d.lifetime)
		cs := cacheStatus{fwdStatus: resp.StatusCode, stored: d.store, ttl: d.store, detail: peerDetail(fromPeer)}
		return fillOutcome{head: &fillHead{meta: meta, length: resp.ContentLength, cs: cs}, store: d.store, resp: resp}, nil
	}
	if resp.ContentLength >= 0 && !hasClientSpecific(r.Header) {
		// Not for sharing: the leader's client alone gets it, as it arrives.
		return fillOutcome{resp: resp, cs: cacheStatus{detail: peerDetail(fromPeer)}}, nil
	}
	// A body of unknown length is read whole before anyone is answered, since only its end tells
	// whether it fits the cache; so is an unshared one that the leader's Range or conditionals need.
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
	f, ok := e.flights.begin(key)
	if !ok {
		return
	}
	// The client's request ends as soon as it has the stale entry; the fill must outlive it.
	req := r.Clone(context.WithoutCancel(r.Context()))
	go func() {
		ctx, cancel := context.WithCancelCause(context.WithValue(req.Context(), flightKey{}, f))
		timer := time.AfterFunc(e.fillTimeout, func() { cancel(errFillTimeout) })
		pumping, published := false, false
		defer func() {
			if p := recover(); p != nil {
				// No handler around this goroutine: a panic would end the process.
				e.log.Error("edge background revalidation panicked", slog.String("key", key), slog.Any("panic", p))
			}
			if !published {
				e.flights.remove(f)
				f.fail(errFillAborted)
			}
			if !pumping {
				timer.Stop()
				cancel(nil)
			}
		}()
		out, err := e.fill(ctx, req, key, stale, gen)
		err = fillError(ctx, err)
		pumping = e.publish(f, out, err)
		published = true
		switch {
		case err != nil:
			e.log.Warn("edge background revalidation failed", slog.String("key", key), slog.Any("err", err))
		case pumping:
			e.pump(ctx, cancel, timer, f, out, gen, nil)
		case out.resp != nil:
			out.resp.Body.Close() // not for sharing, and nobody to stream it to
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
