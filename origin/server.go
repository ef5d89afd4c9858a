package origin

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"time"

	"github.com/lectern/lectern/internal/objstore"
	"github.com/lectern/lectern/internal/playtoken"
	"github.com/lectern/lectern/internal/purge"
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
	// List returns the objects whose keys start with prefix, recursively.
	List(ctx context.Context, prefix string) ([]objstore.Attrs, error)
	// Ping returns nil while storage is usable.
	Ping(ctx context.Context) error
}

// Config configures a Server. Zero values take the defaults given per field.
type Config struct {
	// Store holds the published objects. Required.
	Store Store
	// Logger receives a debug line per request and warnings for storage failures. Default: slog.Default().
	Logger *slog.Logger
	// ReadyTimeout bounds the storage Ping behind /readyz. Default: 2s.
	ReadyTimeout time.Duration

	// HotBytes is the byte budget of the in-memory hot cache. Default: 256 MiB. Negative: no hot cache
	// (requests are still collapsed).
	HotBytes int64
	// MaxHotObject is the largest object kept hot or shared by collapsed requests; larger ones are
	// streamed from storage per request. Default: 8 MiB.
	MaxHotObject int64

	// MaxStorageReads bounds concurrent storage calls. Default: 64.
	MaxStorageReads int
	// MaxQueue bounds the requests waiting for a storage slot; beyond it a miss is a 503 at once.
	// Default: 4 × MaxStorageReads.
	MaxQueue int
	// QueueTimeout is the longest wait for a storage slot before a 503. Default: 1s.
	QueueTimeout time.Duration
	// MaxFillBytes bounds the bytes buffered by fills in progress. Default: 512 MiB.
	MaxFillBytes int64
	// StorageTimeout bounds one storage read, from the call to the last byte. Default: 30s.
	StorageTimeout time.Duration

	// PlaybackKeys, when set, turn on signed playback: /s/{token}/hls/... is verified here, and plain
	// /hls/ requests need an edge credential (EdgeSecrets must be set too).
	PlaybackKeys playtoken.Keys
	// EdgeSecrets are the bearer secrets edges present (Authorization: Bearer SECRET) on plain /hls/
	// requests. Several may be valid at once, for rotation. Empty: plain /hls/ is open (unless
	// PlaybackKeys are set, which is a configuration error without them).
	EdgeSecrets []string
	// PurgeSecret enables POST /_lectern/purge with Authorization: Bearer PurgeSecret.
	PurgeSecret string

	// Now is the clock for token expiry and negative caching. Default: time.Now.
	Now func() time.Time
}

// MinEdgeSecretBytes is the shortest edge secret New accepts.
const MinEdgeSecretBytes = 16

// Server is the origin's http.Handler.
type Server struct {
	store        Store
	log          *slog.Logger
	readyTimeout time.Duration
	now          func() time.Time

	hot          *hotCache
	maxHotObject int64
	flights      flightGroup
	entries      entryGroup
	limit        *limiter
	fillBudget   *budget
	storageTTL   time.Duration
	breaker      breaker
	purge        purge.Generations
	purgeHandler http.Handler

	playbackKeys playtoken.Keys
	edgeSecrets  [][sha256.Size]byte

	stats Stats
}

// New returns a Server, or an error naming the setting to fix.
func New(cfg Config) (*Server, error) {
	if cfg.Store == nil {
		return nil, errors.New("origin: Config.Store is nil")
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	def := func(v *time.Duration, d time.Duration) {
		if *v <= 0 {
			*v = d
		}
	}
	def(&cfg.ReadyTimeout, 2*time.Second)
	def(&cfg.QueueTimeout, time.Second)
	def(&cfg.StorageTimeout, 30*time.Second)
	if cfg.HotBytes == 0 {
		cfg.HotBytes = 256 << 20
	}
	if cfg.MaxHotObject <= 0 {
		cfg.MaxHotObject = 8 << 20
	}
	if cfg.MaxStorageReads <= 0 {
		cfg.MaxStorageReads = 64
	}
	if cfg.MaxQueue <= 0 {
		cfg.MaxQueue = 4 * cfg.MaxStorageReads
	}
	if cfg.MaxFillBytes <= 0 {
		cfg.MaxFillBytes = 512 << 20
	}
	if cfg.MaxFillBytes < cfg.MaxHotObject {
		return nil, fmt.Errorf("origin: fill budget %d bytes is smaller than the largest hot object (%d bytes)", cfg.MaxFillBytes, cfg.MaxHotObject)
	}
	if len(cfg.PlaybackKeys) > 0 && len(cfg.EdgeSecrets) == 0 {
		return nil, errors.New("origin: signed playback needs edge secrets: edges fetch the unsigned /hls/ paths with one (--edge-secrets)")
	}
	s := &Server{
		store:        cfg.Store,
		log:          cfg.Logger,
		readyTimeout: cfg.ReadyTimeout,
		now:          cfg.Now,
		maxHotObject: cfg.MaxHotObject,
		storageTTL:   cfg.StorageTimeout,
		playbackKeys: cfg.PlaybackKeys,
	}
	for i, sec := range cfg.EdgeSecrets {
		if len(sec) < MinEdgeSecretBytes {
			return nil, fmt.Errorf("origin: edge secret %d is %d bytes, want at least %d (e.g. openssl rand -base64 32)", i+1, len(sec), MinEdgeSecretBytes)
		}
		s.edgeSecrets = append(s.edgeSecrets, sha256.Sum256([]byte(sec)))
	}
	if cfg.HotBytes > 0 {
		h, err := newHotCache(cfg.HotBytes, &s.stats)
		if err != nil {
			return nil, fmt.Errorf("origin: hot cache: %w", err)
		}
		s.hot = h
	}
	s.flights.m = map[string]*fill{}
	s.limit = newLimiter(cfg.MaxStorageReads, cfg.MaxQueue, cfg.QueueTimeout)
	s.fillBudget = &budget{max: cfg.MaxFillBytes}
	s.purgeHandler = purge.Handler(cfg.PurgeSecret, s.log, "origin", s.Purge)
	return s, nil
}

// Stats returns the live counters.
func (s *Server) Stats() *Stats { return &s.stats }

// Collector returns a Prometheus collector over Stats, for the caller to register where it wants.
func (s *Server) Collector() prometheus.Collector { return newCollector(s) }

// ServeHTTP routes by hand rather than through http.ServeMux: the mux redirects unclean paths (with
// "..") instead of refusing them, and answers 405 without the CORS headers players need.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	switch r.URL.Path {
	case "/healthz":
		w.Header().Set("Cache-Control", "no-store")
		writeText(w, r, http.StatusOK, "ok\n")
		return
	case "/readyz":
		s.serveReady(w, r)
		return
	case purge.Path:
		s.purgeHandler.ServeHTTP(w, r)
		return
	}

	start := time.Now()
	p := r.URL.Path
	kind := kindOf(p)
	var res result
	switch {
	case r.URL.RawPath != "":
		// The path was percent-encoded where nothing needed it (%2f, %61...). Every valid path is
		// spelled in characters that need no escaping, so this names no object; refusing it keeps one
		// spelling per object, and so one cache entry per object at every cache on the way.
		res = s.notFound(w, r)
	case strings.HasPrefix(p, signedPrefix):
		res = s.serveSigned(w, r)
	case !s.edgeAllowed(r):
		res = s.forbid(w, r)
	default:
		res = s.route(w, r, p, false)
	}
	s.stats.countRequest(kind, res.status)
	s.stats.BytesOut.Add(res.bytes)
	s.log.LogAttrs(r.Context(), slog.LevelDebug, "origin request",
		slog.String("method", r.Method), slog.String("path", tokenFree(p)),
		slog.Int("status", res.status), slog.Int64("bytes", res.bytes), slog.String("hot", res.label),
		slog.Duration("took", time.Since(start)))
}

// result is what a request was answered with, for counters and the log line.
type result struct {
	status int
	bytes  int64
	label  string // hot cache: "hit", "miss", "collapsed", or "" when the cache was not involved
}

// route answers an object or entry-point path (already authorised). private marks a request that
// came with a student's token: its answer must not be kept by shared caches.
func (s *Server) route(w http.ResponseWriter, r *http.Request, p string, private bool) result {
	setCORS(w.Header())
	if r.Method == http.MethodOptions {
		return preflight(w)
	}
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		w.Header().Set("Allow", allowedMethods)
		return textResult(writeText(w, r, http.StatusMethodNotAllowed, "method not allowed\n"))
	}
	if lecture, ok := entryPoint(p); ok {
		return s.serveEntry(w, r, lecture, private)
	}
	key, ok := objectKey(p)
	if !ok {
		return s.notFound(w, r)
	}
	return s.serveObject(w, r, key, private)
}

func (s *Server) serveReady(w http.ResponseWriter, r *http.Request) {
	ctx, cancel := context.WithTimeout(r.Context(), s.readyTimeout)
	defer cancel()
	w.Header().Set("Cache-Control", "no-store")
	if err := s.store.Ping(ctx); err != nil {
		s.log.Warn("origin not ready: storage ping failed", slog.Any("err", err))
		writeText(w, r, http.StatusServiceUnavailable, "storage unavailable\n")
		return
	}
	writeText(w, r, http.StatusOK, "ready\n")
}

const allowedMethods = "GET, HEAD, OPTIONS"

func setCORS(h http.Header) {
	h["Access-Control-Allow-Origin"] = corsOrigin
	h["Access-Control-Expose-Headers"] = corsExpose
}

var (
	corsOrigin = []string{"*"}
	corsExpose = []string{"Content-Length, Content-Range, ETag, Age"}
)

// preflight answers a CORS preflight locally.
func preflight(w http.ResponseWriter) result {
	h := w.Header()
	h.Set("Allow", allowedMethods)
	h.Set("Access-Control-Allow-Methods", allowedMethods)
	h.Set("Access-Control-Allow-Headers", "Range")
	// Preflights repeat for every segment otherwise; a day is what browsers cap it to anyway.
	h.Set("Access-Control-Max-Age", "86400")
	w.WriteHeader(http.StatusNoContent)
	return result{status: http.StatusNoContent}
}

// negativeTTL is how long a 404 may be kept, by the edges (Cache-Control) and by the origin itself:
// long enough to absorb a burst of requests for a missing key, short enough that an object published
// a moment later shows up quickly.
const negativeTTL = 10 * time.Second

var negativeCacheControl = "public, max-age=" + itoa(int64(negativeTTL/time.Second))

func (s *Server) notFound(w http.ResponseWriter, r *http.Request) result {
	setCORS(w.Header())
	w.Header().Set("Cache-Control", negativeCacheControl)
	return textResult(writeText(w, r, http.StatusNotFound, "not found\n"))
}

// Retry-After values: an overloaded origin frees a slot within a second; storage that failed gets a
// little longer.
const (
	retryOverload = "1"
	retryStorage  = "2"
)

// unavailable answers 503 with Retry-After; caches must not keep it.
func (s *Server) unavailable(w http.ResponseWriter, r *http.Request, retryAfter, msg string) result {
	h := w.Header()
	setCORS(h)
	h.Set("Retry-After", retryAfter)
	h.Set("Cache-Control", "no-store")
	return textResult(writeText(w, r, http.StatusServiceUnavailable, msg))
}

// storageFailed turns a storage (or shield) error into a response: not-found is a 404, overload a
// 503 with a short Retry-After, a cancelled request gets nothing (the client is gone), anything else
// is a 503 that caches must not keep.
func (s *Server) storageFailed(w http.ResponseWriter, r *http.Request, key string, err error) result {
	var ol *overloadError
	switch {
	case objstore.IsNotFound(err):
		return s.notFound(w, r)
	case errors.As(err, &ol):
		return s.unavailable(w, r, retryOverload, "overloaded, retry shortly\n")
	case errors.Is(err, errStorageDown):
		return s.unavailable(w, r, retryStorage, "storage unavailable\n")
	case r.Context().Err() != nil:
		s.log.Debug("origin request cancelled", slog.String("key", key), slog.Any("err", err))
		// 499 is nginx's "client closed request": only logs and counters ever see it.
		return result{status: statusClientClosed}
	}
	s.log.Warn("origin storage error", slog.String("key", key), slog.Any("err", err))
	return s.unavailable(w, r, retryStorage, "storage unavailable\n")
}

const statusClientClosed = 499

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

func textResult(status int, n int64) result { return result{status: status, bytes: n} }

// Purge drops hot objects, remembered misses and entry points under prefix (ending in "/"), or the
// one object named (not ending in "/"), and returns how many entries it removed. Prefixes are URL
// paths ("/hls/LECTURE/"). Fills in flight for matching keys are detached, so nothing read before
// the purge is kept after it.
func (s *Server) Purge(prefix string) int {
	urlMatch := purge.Matcher(prefix)
	// Hot keys are storage keys: the URL path without its leading slash.
	match := func(key string) bool { return urlMatch("/" + key) }
	n := 0
	s.purge.Purge(func() {
		s.flights.detach(match)
		if s.hot != nil {
			n = s.hot.removeMatching(match)
		}
	})
	return n
}
