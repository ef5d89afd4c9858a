package tusclient

import (
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"os"
	"path"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/tus/tusd/v2/pkg/filelocker"
	"github.com/tus/tusd/v2/pkg/filestore"
	"github.com/tus/tusd/v2/pkg/handler"
	"golang.org/x/exp/slog" // the logger type tusd v2.9.0 takes
)

// The tests run against the real tusd handler (the one Lectern's ingest mounts) with its file store, on a
// loopback httptest server. A middleware in front of it checks the Authorization header, counts requests
// and the PATCH body bytes that reached tusd, and injects failures.

const token = "Bearer s3cret"

type server struct {
	URL, dir string
	mu       sync.Mutex
	log      []string     // "METHOD status" per request that reached the middleware
	received atomic.Int64 // PATCH body bytes handed to tusd
	// inject, when set, may answer a request itself (returning true) instead of tusd.
	inject func(w http.ResponseWriter, r *http.Request, tusd http.Handler) bool
}

func newServer(t *testing.T, configure func(*handler.Config)) *server {
	t.Helper()
	s := &server{dir: t.TempDir()}
	composer := handler.NewStoreComposer()
	filestore.New(s.dir).UseIn(composer)
	locker := filelocker.New(s.dir)
	locker.AcquirerPollInterval, locker.HolderPollInterval = 20*time.Millisecond, 20*time.Millisecond // defaults 2 s, 5 s
	locker.UseIn(composer)
	cfg := handler.Config{
		BasePath:      "/files/",
		StoreComposer: composer,
		Logger:        slog.New(slog.NewTextHandler(io.Discard, nil)),
	}
	if configure != nil {
		configure(&cfg)
	}
	h, err := handler.NewHandler(cfg)
	if err != nil {
		t.Fatal(err)
	}
	tusd := http.StripPrefix("/files/", h)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Authorization") != token {
			s.record(r.Method, 401)
			http.Error(w, `{"error":{"code":"unauthorized","message":"no token"}}`, 401)
			return
		}
		if s.inject != nil && s.inject(w, r, tusd) {
			s.record(r.Method, -1)
			return
		}
		if r.Method == http.MethodPatch {
			r.Body = countingBody{r.Body, &s.received}
		}
		rec := &statusWriter{ResponseWriter: w, status: 200}
		tusd.ServeHTTP(rec, r)
		s.record(r.Method, rec.status)
	}))
	t.Cleanup(srv.Close)
	s.URL = srv.URL + "/files/"
	return s
}

func (s *server) record(method string, status int) {
	s.mu.Lock()
	s.log = append(s.log, fmt.Sprintf("%s %d", method, status))
	s.mu.Unlock()
}

func (s *server) requests() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]string(nil), s.log...)
}

func (s *server) count(prefix string) int {
	n := 0
	for _, l := range s.requests() {
		if strings.HasPrefix(l, prefix) {
			n++
		}
	}
	return n
}

// stored returns the sha256 of the bytes tusd's file store holds for an upload URL.
func (s *server) stored(t *testing.T, uploadURL string) [32]byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(s.dir, path.Base(uploadURL)))
	if err != nil {
		t.Fatal(err)
	}
	return sha256.Sum256(b)
}

type statusWriter struct {
	http.ResponseWriter
	status int
}

func (w *statusWriter) WriteHeader(code int)        { w.status = code; w.ResponseWriter.WriteHeader(code) }
func (w *statusWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter } // tusd's read deadlines

type countingBody struct {
	io.ReadCloser
	n *atomic.Int64
}

func (c countingBody) Read(p []byte) (int, error) {
	n, err := c.ReadCloser.Read(p)
	c.n.Add(int64(n))
	return n, err
}

// countingReaderAt counts the bytes the client read from the source.
type countingReaderAt struct {
	r io.ReaderAt
	n atomic.Int64
}

func (c *countingReaderAt) ReadAt(p []byte, off int64) (int, error) {
	n, err := c.r.ReadAt(p, off)
	c.n.Add(int64(n))
	return n, err
}

func source(size int) []byte {
	b := make([]byte, size)
	rng := rand.NewChaCha8([32]byte{1, 2, 3})
	_, _ = rng.Read(b)
	return b
}

func testClient(chunk int64) *Client {
	return &Client{
		Header:    http.Header{"Authorization": {token}},
		ChunkSize: chunk,
		Backoff:   10 * time.Millisecond,
	}
}

func create(t *testing.T, c *Client, s *server, size int) string {
	t.Helper()
	u, err := c.Create(context.Background(), s.URL, int64(size), map[string]string{"lecture": "L1", "filename": "talk.mp4"})
	if err != nil {
		t.Fatal(err)
	}
	return u
}

func TestUpload(t *testing.T) {
	const size = 5<<20 + 123
	for _, tc := range []struct {
		name    string
		chunk   int64
		patches int
	}{
		{"one PATCH", 0, 1},
		{"1 MiB chunks", 1 << 20, 6},
		{"chunk larger than the file", 64 << 20, 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := newServer(t, nil)
			src := source(size)
			c := testClient(tc.chunk)
			u := create(t, c, s, size)
			var last int64
			monotonic := true
			off, err := c.Upload(context.Background(), u, bytes.NewReader(src), 0, size, func(sent, total int64) {
				monotonic = monotonic && sent >= last && total == size
				last = sent
			})
			if err != nil || off != size {
				t.Fatalf("Upload = %d, %v; want %d, nil", off, err, size)
			}
			if !monotonic || last != size {
				t.Errorf("progress not monotonic up to %d (last %d)", size, last)
			}
			if got := s.count("PATCH 204"); got != tc.patches {
				t.Errorf("%d PATCHes, want %d (log %v)", got, tc.patches, s.requests())
			}
			if s.stored(t, u) != sha256.Sum256(src) {
				t.Error("stored file differs from the source")
			}
			if got, length, err := c.Offset(context.Background(), u); err != nil || got != size || length != size {
				t.Errorf("Offset = %d, %d, %v; want %d, %d", got, length, err, size, size)
			}
		})
	}
}

// TestResumeAfterCancel interrupts an upload at ~50% by cancelling from the progress callback (the
// connection dies mid-PATCH), then resumes from the offset HEAD reports: only the missing bytes travel.
func TestResumeAfterCancel(t *testing.T) {
	const size = 8 << 20
	s := newServer(t, nil)
	src := source(size)
	c := testClient(0) // one PATCH: the cancel falls in the middle of a request
	u := create(t, c, s, size)

	ctx, cancel := context.WithCancel(context.Background())
	_, err := c.Upload(ctx, u, bytes.NewReader(src), 0, size, func(sent, _ int64) {
		if sent >= size/2 {
			cancel()
		}
	})
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("interrupted Upload: %v, want context.Canceled", err)
	}
	// tusd saves what it received once it notices the closed connection; wait for its lock to go.
	var off int64
	deadline := time.Now().Add(5 * time.Second)
	for {
		off, _, err = c.Offset(context.Background(), u)
		if err != nil {
			t.Fatal(err)
		}
		if off > 0 || time.Now().After(deadline) {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	if off <= 0 || off >= size {
		t.Fatalf("offset after the interruption = %d, want between 0 and %d", off, size)
	}
	t.Logf("interrupted at %d of %d bytes (%.0f%%)", off, size, 100*float64(off)/size)

	before := s.received.Load()
	r := &countingReaderAt{r: bytes.NewReader(src)}
	var first int64 = -1
	end, err := c.Upload(context.Background(), u, r, off, size, func(sent, _ int64) {
		if first < 0 {
			first = sent
		}
	})
	if err != nil || end != size {
		t.Fatalf("resumed Upload = %d, %v", end, err)
	}
	if first != off {
		t.Errorf("resumed progress started at %d, want %d", first, off)
	}
	if got := r.n.Load(); got != size-off {
		t.Errorf("resume read %d bytes of the source, want %d", got, size-off)
	}
	if got := s.received.Load() - before; got != size-off {
		t.Errorf("server received %d bytes on resume, want %d", got, size-off)
	}
	if s.stored(t, u) != sha256.Sum256(src) {
		t.Error("stored file differs from the source")
	}
}

// TestStopAfter: the StopAfter hook ends the upload at exactly that byte, and a second Upload sends the rest.
func TestStopAfter(t *testing.T) {
	const size = 3<<20 + 17
	s := newServer(t, nil)
	src := source(size)
	c := testClient(1 << 20)
	c.StopAfter = size / 2
	u := create(t, c, s, size)
	off, err := c.Upload(context.Background(), u, bytes.NewReader(src), 0, size, nil)
	if !errors.Is(err, ErrStopped) || off != size/2 {
		t.Fatalf("Upload = %d, %v; want %d, ErrStopped", off, err, size/2)
	}
	if got, _, err := c.Offset(context.Background(), u); err != nil || got != size/2 {
		t.Fatalf("server offset = %d, %v; want %d", got, err, size/2)
	}
	c.StopAfter = 0
	r := &countingReaderAt{r: bytes.NewReader(src)}
	if off, err = c.Upload(context.Background(), u, r, off, size, nil); err != nil || off != size {
		t.Fatalf("second Upload = %d, %v", off, err)
	}
	if got := r.n.Load(); got != size-size/2 {
		t.Errorf("second Upload read %d bytes, want %d", got, size-size/2)
	}
	if s.stored(t, u) != sha256.Sum256(src) {
		t.Error("stored file differs from the source")
	}
}

// TestDroppedConnection: the first PATCH's connection is closed by the server after part of the body was
// stored; the client notices, asks HEAD where the server stands and finishes on its own.
func TestDroppedConnection(t *testing.T) {
	const size, cut = 4 << 20, 1<<20 + 5
	s := newServer(t, nil)
	var dropped atomic.Bool
	s.inject = func(w http.ResponseWriter, r *http.Request, tusd http.Handler) bool {
		if r.Method != http.MethodPatch || dropped.Swap(true) {
			return false
		}
		// tusd stores the first `cut` bytes of the body; then the connection dies without an answer.
		part := make([]byte, cut)
		if _, err := io.ReadFull(r.Body, part); err != nil {
			t.Errorf("read the first PATCH: %v", err)
		}
		r2 := r.Clone(r.Context())
		r2.Body = io.NopCloser(bytes.NewReader(part))
		r2.ContentLength = cut
		r2.Header.Set("Content-Length", fmt.Sprint(cut))
		tusd.ServeHTTP(httptest.NewRecorder(), r2)
		conn, _, err := w.(http.Hijacker).Hijack()
		if err != nil {
			t.Errorf("hijack: %v", err)
			return true
		}
		conn.Close()
		return true
	}
	src := source(size)
	c := testClient(0)
	u := create(t, c, s, size)
	off, err := c.Upload(context.Background(), u, bytes.NewReader(src), 0, size, nil)
	if err != nil || off != size {
		t.Fatalf("Upload = %d, %v; want %d, nil", off, err, size)
	}
	if !dropped.Load() {
		t.Fatal("no PATCH was dropped")
	}
	if s.count("HEAD 200") < 1 || s.count("PATCH 204") != 1 {
		t.Errorf("want a HEAD and one successful PATCH after the drop, log %v", s.requests())
	}
	if s.received.Load() != size-cut {
		t.Errorf("the PATCH after the drop carried %d bytes, want %d", s.received.Load(), size-cut)
	}
	if s.stored(t, u) != sha256.Sum256(src) {
		t.Error("stored file differs from the source")
	}
}

// TestConflictResync: a client that believes the server has nothing gets 409 and continues from HEAD's offset.
func TestConflictResync(t *testing.T) {
	const size = 2 << 20
	s := newServer(t, nil)
	src := source(size)
	c := testClient(0)
	c.StopAfter = size / 4
	u := create(t, c, s, size)
	if _, err := c.Upload(context.Background(), u, bytes.NewReader(src), 0, size, nil); !errors.Is(err, ErrStopped) {
		t.Fatal(err)
	}
	c.StopAfter = 0
	c.Backoff = time.Hour // a 409 must not wait
	off, err := c.Upload(context.Background(), u, bytes.NewReader(src), 0, size, nil)
	if err != nil || off != size {
		t.Fatalf("Upload from a stale offset = %d, %v", off, err)
	}
	if s.count("PATCH 409") != 1 {
		t.Errorf("want one 409, log %v", s.requests())
	}
	if s.stored(t, u) != sha256.Sum256(src) {
		t.Error("stored file differs from the source")
	}
}

func TestGone(t *testing.T) {
	s := newServer(t, nil)
	c := testClient(0)
	ctx := context.Background()

	if _, _, err := c.Offset(ctx, s.URL+"no-such-upload"); !errors.Is(err, ErrGone) {
		t.Errorf("HEAD of an unknown upload: %v, want ErrGone", err)
	}

	u := create(t, c, s, 100)
	req, _ := c.newRequest(ctx, http.MethodDelete, u, nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil || resp.StatusCode != 204 {
		t.Fatalf("terminate: %v %v", resp, err)
	}
	resp.Body.Close()
	if _, _, err := c.Offset(ctx, u); !errors.Is(err, ErrGone) {
		t.Errorf("HEAD of a terminated upload: %v, want ErrGone", err)
	}
	if _, err := c.Upload(ctx, u, bytes.NewReader(make([]byte, 100)), 0, 100, nil); !errors.Is(err, ErrGone) {
		t.Errorf("PATCH of a terminated upload: %v, want ErrGone", err)
	}

	// 410 (expired) is gone too; a 404 from the creation endpoint is not.
	s.inject = func(w http.ResponseWriter, r *http.Request, _ http.Handler) bool {
		w.WriteHeader(map[string]int{"HEAD": 410, "POST": 404}[r.Method])
		return true
	}
	if _, _, err := c.Offset(ctx, u); !errors.Is(err, ErrGone) {
		t.Errorf("HEAD answered 410: %v, want ErrGone", err)
	}
	if _, err := c.Create(ctx, s.URL, 10, nil); err == nil || errors.Is(err, ErrGone) {
		t.Errorf("creation answered 404: %v, want an error that is not ErrGone", err)
	}
}

// TestServerMessage: a refusal's message reaches the caller, from Lectern's JSON error body or tusd's text.
func TestServerMessage(t *testing.T) {
	const rejected = `{"error":{"code":"invalid_media","message":"not a video: no audio or video stream"}}`
	s := newServer(t, func(cfg *handler.Config) {
		cfg.MaxSize = 1000
		cfg.PreFinishResponseCallback = func(handler.HookEvent) (handler.HTTPResponse, error) {
			return handler.HTTPResponse{}, handler.Error{HTTPResponse: handler.HTTPResponse{
				StatusCode: 422, Body: rejected, Header: handler.HTTPHeader{"Content-Type": "application/json"},
			}}
		}
	})
	c := testClient(0)
	ctx := context.Background()
	u := create(t, c, s, 10)
	_, err := c.Upload(ctx, u, bytes.NewReader(make([]byte, 10)), 0, 10, nil)
	var e *Error
	if !errors.As(err, &e) || e.Status != 422 || e.Code != "invalid_media" || e.Message != "not a video: no audio or video stream" {
		t.Fatalf("final PATCH refused: %#v (%v)", e, err)
	}
	if s.count("PATCH") != 1 {
		t.Errorf("a 422 was retried: %v", s.requests())
	}

	_, err = c.Create(ctx, s.URL, 5000, nil)
	if !errors.As(err, &e) || e.Status != 413 || e.Code != "ERR_MAX_SIZE_EXCEEDED" || !strings.Contains(e.Message, "maximum size") {
		t.Errorf("over the size limit: %#v (%v)", e, err)
	}

	c.Header = nil
	_, err = c.Create(ctx, s.URL, 10, nil)
	if !errors.As(err, &e) || e.Status != 401 || e.Message != "no token" {
		t.Errorf("without the Authorization header: %#v (%v)", e, err)
	}
}

// TestRetry: 5xx and 423 answers are retried with backoff, a bounded number of times.
func TestRetry(t *testing.T) {
	const size = 1000
	src := source(size)
	t.Run("recovers", func(t *testing.T) {
		s := newServer(t, nil)
		var n atomic.Int32
		s.inject = func(w http.ResponseWriter, r *http.Request, _ http.Handler) bool {
			if r.Method != http.MethodPatch || n.Add(1) > 2 {
				return false
			}
			w.WriteHeader([]int{503, 423}[n.Load()-1])
			return true
		}
		c := testClient(0)
		u := create(t, c, s, size)
		if off, err := c.Upload(context.Background(), u, bytes.NewReader(src), 0, size, nil); err != nil || off != size {
			t.Fatalf("Upload = %d, %v", off, err)
		}
		if s.count("HEAD 200") != 2 || s.stored(t, u) != sha256.Sum256(src) {
			t.Errorf("want two HEADs and the file, log %v", s.requests())
		}
	})
	t.Run("gives up", func(t *testing.T) {
		s := newServer(t, nil)
		s.inject = func(w http.ResponseWriter, r *http.Request, _ http.Handler) bool {
			if r.Method != http.MethodPatch {
				return false
			}
			http.Error(w, `{"error":{"code":"internal","message":"disk full"}}`, 500)
			return true
		}
		c := testClient(0)
		c.Retries = 3
		u := create(t, c, s, size)
		_, err := c.Upload(context.Background(), u, bytes.NewReader(src), 0, size, nil)
		if err == nil || !strings.Contains(err.Error(), "disk full") {
			t.Fatalf("Upload = %v, want the server's last message", err)
		}
		if got := s.count("PATCH"); got != 4 {
			t.Errorf("%d PATCHes, want 1 + 3 retries", got)
		}
	})
	t.Run("cancelled during backoff", func(t *testing.T) {
		s := newServer(t, nil)
		s.inject = func(w http.ResponseWriter, r *http.Request, _ http.Handler) bool {
			if r.Method == http.MethodPatch {
				w.WriteHeader(502)
				return true
			}
			return false
		}
		c := testClient(0)
		c.Backoff = time.Hour
		u := create(t, c, s, size)
		ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
		defer cancel()
		start := time.Now()
		if _, err := c.Upload(ctx, u, bytes.NewReader(src), 0, size, nil); !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("Upload = %v, want the context's error", err)
		}
		if time.Since(start) > 5*time.Second {
			t.Errorf("Upload took %v to notice the cancelled context", time.Since(start))
		}
	})
}

func TestCreate(t *testing.T) {
	s := newServer(t, nil)
	var gotMeta, gotAuth string
	s.inject = func(w http.ResponseWriter, r *http.Request, _ http.Handler) bool {
		if r.Method != http.MethodPost {
			return false
		}
		gotMeta, gotAuth = r.Header.Get("Upload-Metadata"), r.Header.Get("Authorization")
		w.Header().Set("Location", "/api/v1/uploads/L1/abc") // relative, with a slash in the id
		w.WriteHeader(201)
		return true
	}
	c := testClient(0)
	u, err := c.Create(context.Background(), s.URL, 10, map[string]string{"lecture": "L1", "filename": "a b.mp4"})
	if err != nil {
		t.Fatal(err)
	}
	if want := strings.TrimSuffix(s.URL, "/files/") + "/api/v1/uploads/L1/abc"; u != want {
		t.Errorf("upload URL = %q, want %q", u, want)
	}
	if want := "filename YSBiLm1wNA==,lecture TDE="; gotMeta != want || gotAuth != token {
		t.Errorf("Upload-Metadata %q Authorization %q, want %q %q", gotMeta, gotAuth, want, token)
	}
}

func TestEmptyFile(t *testing.T) {
	s := newServer(t, nil)
	c := testClient(0)
	u := create(t, c, s, 0)
	if off, err := c.Upload(context.Background(), u, bytes.NewReader(nil), 0, 0, nil); err != nil || off != 0 {
		t.Fatalf("Upload of 0 bytes = %d, %v", off, err)
	}
}
