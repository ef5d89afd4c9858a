package origin

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"time"

	"github.com/lectern/lectern/internal/objstore"
	"github.com/prometheus/client_golang/prometheus"
)

// Store is the part of object storage the origin reads. *objstore.Bucket satisfies it.
type Store interface {
	// Get returns the whole object. A missing object is an error for which objstore.IsNotFound is true.
	Get(ctx context.Context, key string) (io.ReadCloser, objstore.Attrs, error)
	// GetRange returns length bytes from offset (-1: to the end), clamped to the end of the object;
	// Attrs.Size is the full size. An offset past the end may fail with objstore.IsInvalidRange.
	GetRange(ctx context.Context, key string, offset, length int64) (io.ReadCloser, objstore.Attrs, error)
	// Head returns the attributes without reading the body.
	Head(ctx context.Context, key string) (objstore.Attrs, error)
	// Ping returns nil while storage is usable.
	Ping(ctx context.Context) error
}

// Config configures a Server.
type Config struct {
	// Store holds the published objects. Required.
	Store Store
	// Logger receives a debug line per request and warnings for storage failures. Default: slog.Default().
	Logger *slog.Logger
	// ReadyTimeout bounds the storage Ping behind /readyz. Default: 2s.
	ReadyTimeout time.Duration
}

// Server is the origin's http.Handler.
type Server struct {
	store        Store
	log          *slog.Logger
	readyTimeout time.Duration
	stats        Stats
}

// New returns a Server. It panics when cfg.Store is nil: that is a wiring bug, not a runtime condition.
func New(cfg Config) *Server {
	if cfg.Store == nil {
		panic("origin: Config.Store is nil")
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.ReadyTimeout <= 0 {
		cfg.ReadyTimeout = 2 * time.Second
	}
	return &Server{store: cfg.Store, log: cfg.Logger, readyTimeout: cfg.ReadyTimeout}
}

// Stats returns the live counters.
func (s *Server) Stats() *Stats { return &s.stats }

// Collector returns a Prometheus collector over Stats, for the caller to register where it wants.
func (s *Server) Collector() prometheus.Collector { return newCollector(&s.stats) }

// ServeHTTP routes by hand rather than through http.ServeMux: the mux redirects unclean paths (with
// "..") instead of refusing them, and answers 405 without the CORS headers players need.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	switch r.URL.Path {
	case "/healthz":
		writeText(w, r, http.StatusOK, "ok\n")
		return
	case "/readyz":
		s.serveReady(w, r)
		return
	}

	start := time.Now()
	kind := kindOf(r.URL.Path)
	var status int
	var n int64
	if key, ok := objectKey(r.URL.Path); ok {
		status, n = s.serveHLS(w, r, key)
	} else {
		status, n = s.notFound(w, r)
	}
	s.stats.countRequest(kind, status)
	s.stats.BytesOut.Add(n)
	s.log.LogAttrs(r.Context(), slog.LevelDebug, "origin request",
		slog.String("method", r.Method), slog.String("path", r.URL.Path),
		slog.Int("status", status), slog.Int64("bytes", n), slog.Duration("took", time.Since(start)))
}

func (s *Server) serveReady(w http.ResponseWriter, r *http.Request) {
	ctx, cancel := context.WithTimeout(r.Context(), s.readyTimeout)
	defer cancel()
	if err := s.store.Ping(ctx); err != nil {
		s.log.Warn("origin not ready: storage ping failed", slog.Any("err", err))
		w.Header().Set("Cache-Control", "no-store")
		writeText(w, r, http.StatusServiceUnavailable, "storage unavailable\n")
		return
	}
	w.Header().Set("Cache-Control", "no-store")
	writeText(w, r, http.StatusOK, "ready\n")
}

// serveHLS answers one valid object path and returns the status and body bytes written.
func (s *Server) serveHLS(w http.ResponseWriter, r *http.Request, key string) (int, int64) {
	setCORS(w.Header())
	switch r.Method {
	case http.MethodGet:
		return s.serveGet(w, r, key)
	case http.MethodHead:
		return s.serveHead(w, r, key)
	case http.MethodOptions:
		h := w.Header()
		h.Set("Allow", allowedMethods)
		h.Set("Access-Control-Allow-Methods", allowedMethods)
		h.Set("Access-Control-Allow-Headers", "Range")
		// Preflights repeat for every segment otherwise; a day is what browsers cap it to anyway.
		h.Set("Access-Control-Max-Age", "86400")
		w.WriteHeader(http.StatusNoContent)
		return http.StatusNoContent, 0
	default:
		w.Header().Set("Allow", allowedMethods)
		return writeText(w, r, http.StatusMethodNotAllowed, "method not allowed\n")
	}
}

const allowedMethods = "GET, HEAD, OPTIONS"

func setCORS(h http.Header) {
	h.Set("Access-Control-Allow-Origin", "*")
	h.Set("Access-Control-Expose-Headers", "Content-Length, Content-Range, ETag, Age")
}

// notFound answers with a short negative-cache lifetime: long enough to absorb a burst of requests for
// a missing key at the edges, short enough that an object published a moment later shows up quickly.
func (s *Server) notFound(w http.ResponseWriter, r *http.Request) (int, int64) {
	setCORS(w.Header())
	w.Header().Set("Cache-Control", "public, max-age=10")
	return writeText(w, r, http.StatusNotFound, "not found\n")
}

// storageFailed turns a storage error into a response: not-found is a 404, a cancelled request gets
// nothing (the client is gone), anything else is a 503 that caches must not keep.
func (s *Server) storageFailed(w http.ResponseWriter, r *http.Request, key string, err error) (int, int64) {
	if objstore.IsNotFound(err) {
		return s.notFound(w, r)
	}
	if r.Context().Err() != nil {
		s.log.Debug("origin request cancelled", slog.String("key", key), slog.Any("err", err))
		// 499 is nginx's "client closed request": only logs and counters ever see it.
		return 499, 0
	}
	s.stats.StorageErrors.Add(1)
	s.log.Warn("origin storage error", slog.String("key", key), slog.Any("err", err))
	h := w.Header()
	h.Set("Retry-After", "2")
	h.Set("Cache-Control", "no-store")
	return writeText(w, r, http.StatusServiceUnavailable, "storage unavailable\n")
}

// writeText writes a short plain-text response; HEAD gets the headers only.
func writeText(w http.ResponseWriter, r *http.Request, status int, body string) (int, int64) {
	h := w.Header()
	h.Set("Content-Type", "text/plain; charset=utf-8")
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Content-Length", itoa(int64(len(body))))
	w.WriteHeader(status)
	if r.Method == http.MethodHead {
		return status, 0
	}
	n, _ := io.WriteString(w, body)
	return status, int64(n)
}
