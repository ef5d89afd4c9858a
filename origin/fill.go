package origin

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"sync"

	"github.com/lectern/lectern/internal/objstore"
)

// fill is one storage read that every concurrent request for the key shares. Its buffer grows as the
// bytes arrive and each request streams from it at its own pace, so a waiter starts sending as soon as
// the first chunk is in, not when the whole object is.
type fill struct {
	key string

	mu     sync.Mutex
	wake   chan struct{} // closed (and replaced) whenever the state below changes
	ready  bool          // attrs are known, or the fill failed or is too big
	attrs  objstore.Attrs
	buf    []byte // the bytes read so far; never written below len(buf)
	done   bool   // buf holds the whole object
	err    error
	tooBig bool // the object is larger than MaxHotObject: every request reads storage itself
}

func newFill(key string) *fill { return &fill{key: key, wake: make(chan struct{})} }

func (f *fill) notify() {
	close(f.wake)
	f.wake = make(chan struct{})
}

func (f *fill) start(attrs objstore.Attrs, buf []byte) {
	f.mu.Lock()
	f.attrs, f.buf, f.ready = attrs, buf, true
	f.notify()
	f.mu.Unlock()
}

func (f *fill) grow(buf []byte) {
	f.mu.Lock()
	f.buf = buf
	f.notify()
	f.mu.Unlock()
}

func (f *fill) finish(err error) {
	f.mu.Lock()
	f.ready = true
	if err != nil {
		f.err = err
	} else {
		f.done = true
	}
	f.notify()
	f.mu.Unlock()
}

func (f *fill) setTooBig() {
	f.mu.Lock()
	f.ready, f.tooBig = true, true
	f.notify()
	f.mu.Unlock()
}

// waitReady blocks until the object's attributes are known (or the fill ended without them).
func (f *fill) waitReady(ctx context.Context) (attrs objstore.Attrs, tooBig bool, err error) {
	for {
		f.mu.Lock()
		ready, wake := f.ready, f.wake
		attrs, tooBig, err = f.attrs, f.tooBig, f.err
		f.mu.Unlock()
		if ready {
			return attrs, tooBig, err
		}
		select {
		case <-wake:
		case <-ctx.Done():
			return attrs, false, ctx.Err()
		}
	}
}

// from returns the bytes at and after off read so far, whether that is all of them, the fill's error,
// and a channel closed when there is more to say.
func (f *fill) from(off int) (data []byte, done bool, err error, wake <-chan struct{}) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.buf[off:], f.done, f.err, f.wake
}

// flightGroup holds the fills in progress, by storage key.
type flightGroup struct {
	mu sync.Mutex
	m  map[string]*fill
}

// join returns the fill for key and whether the caller must start it.
func (g *flightGroup) join(key string) (*fill, bool) {
	g.mu.Lock()
	defer g.mu.Unlock()
	if f, ok := g.m[key]; ok {
		return f, false
	}
	f := newFill(key)
	g.m[key] = f
	return f, true
}

func (g *flightGroup) remove(f *fill) {
	g.mu.Lock()
	if g.m[f.key] == f { // a purge may have detached f and a newer fill taken its place
		delete(g.m, f.key)
	}
	g.mu.Unlock()
}

// detach forgets the fills whose keys match, so later requests start new ones. Requests already
// streaming from a detached fill finish it.
func (g *flightGroup) detach(match func(string) bool) {
	g.mu.Lock()
	for key := range g.m {
		if match(key) {
			delete(g.m, key)
		}
	}
	g.mu.Unlock()
}

// fillChunk is how much is read from storage before waiting requests are woken.
const fillChunk = 64 << 10

var errShortBody = errors.New("origin: storage returned fewer bytes than the object's size")

// runFill reads key from storage into f, detached from any one client (the first one leaving must not
// fail the others) and bounded by StorageTimeout, then keeps the object hot unless a purge ran since
// generation gen.
func (s *Server) runFill(f *fill, gen uint64) {
	defer s.flights.remove(f)
	defer func() {
		// Outside any handler, a panic (a storage driver's bug) would take the whole process down and
		// leave the waiters hanging; it fails this one fill instead.
		if v := recover(); v != nil {
			s.log.Error("origin fill panicked", slog.String("key", f.key), slog.Any("panic", v))
			f.finish(fmt.Errorf("origin: fill of %s panicked: %v", f.key, v))
		}
	}()
	ctx, cancel := context.WithTimeout(context.Background(), s.storageTTL)
	defer cancel()

	body, attrs, release, err := s.storageGet(ctx, f.key)
	if err != nil {
		if objstore.IsNotFound(err) {
			s.remember(f.key, missingObject(f.key, s.now().Add(negativeTTL)), gen)
		}
		f.finish(err)
		return
	}
	defer release()
	defer body.Close()
	size := attrs.Size
	if size < 0 || size > s.maxHotObject {
		f.setTooBig()
		return
	}
	if !s.fillBudget.take(size) {
		s.stats.rejected[rejectMemory].Add(1)
		f.finish(&overloadError{rejectMemory})
		return
	}
	defer s.fillBudget.give(size)

	buf := make([]byte, 0, size)
	f.start(attrs, buf)
	for len(buf) < int(size) {
		end := min(len(buf)+fillChunk, int(size))
		n, err := body.Read(buf[len(buf):end])
		if n > 0 {
			buf = buf[:len(buf)+n]
			f.grow(buf)
		}
		if err == io.EOF {
			break
		}
		if err != nil {
			s.storageFailure(f.key, err)
			f.finish(err)
			return
		}
	}
	if len(buf) != int(size) {
		err := fmt.Errorf("%w (%d of %d)", errShortBody, len(buf), size)
		s.storageFailure(f.key, err)
		f.finish(err)
		return
	}
	s.remember(f.key, newObject(f.key, attrs, buf), gen)
	f.finish(nil)
}

// serveFill answers a GET from a fill in progress (or just finished).
func (s *Server) serveFill(w http.ResponseWriter, r *http.Request, f *fill, cc []string) result {
	attrs, tooBig, err := f.waitReady(r.Context())
	if err != nil {
		return s.storageFailed(w, r, f.key, err)
	}
	if tooBig {
		return s.serveDirect(w, r, f.key, cc)
	}
	h := w.Header()
	setObjectHeaders(h, f.key, attrs, cc)
	if status := checkPreconditions(r, attrs); status != 0 {
		return result{status: writePreconditionResult(w, r, status)}
	}
	h.Set("Content-Length", itoa(attrs.Size))
	w.WriteHeader(http.StatusOK)

	rc := http.NewResponseController(w)
	var sent int64
	for {
		data, done, err, wake := f.from(int(sent))
		if len(data) > 0 {
			n, werr := w.Write(data)
			sent += int64(n)
			if werr != nil {
				return result{status: http.StatusOK, bytes: sent}
			}
			continue
		}
		if done {
			return result{status: http.StatusOK, bytes: sent}
		}
		if err != nil {
			// The headers are gone: a body shorter than its Content-Length makes net/http close the
			// connection, which is how the client learns the object is incomplete.
			return result{status: http.StatusOK, bytes: sent}
		}
		// Everything read so far is sent; push it out before waiting for more.
		_ = rc.Flush()
		select {
		case <-wake:
		case <-r.Context().Done():
			return result{status: statusClientClosed, bytes: sent}
		}
	}
}
