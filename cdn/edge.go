package cdn

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/lectern/lectern/internal/playtoken"
	"github.com/lectern/lectern/internal/purge"
)

// Config configures an Edge. Zero values take the documented defaults.
type Config struct {
	// Upstream is the base URL requests are forwarded to (the origin or a parent edge); the request
	// path is appended to its path. Required, http or https.
	Upstream *url.URL
	// MemoryBytes bounds the memory tier, counting bodies, headers and per-entry overhead.
	// Default: 256 MiB.
	MemoryBytes int64
	// MaxObjectBytes is the largest body that is cached; larger responses are streamed through.
	// Default: 32 MiB. Capped at MemoryBytes.
	MaxObjectBytes int64
	// Client sends upstream requests. The default pools connections, does not follow redirects (they
	// are the client's to follow) and does not ask for compression on its own (Accept-Encoding is the
	// client's, so Vary stays meaningful). A caller-supplied client is used as is.
	Client *http.Client
	// Logger receives a debug line per request and warnings for upstream failures.
	// Default: slog.Default().
	Logger *slog.Logger
	// Now is the clock for ages and freshness; tests move it. Default: time.Now.
	Now func() time.Time
	// FillTimeout bounds one fill (upstream headers and a cacheable body), which runs detached from
	// the client that started it. Default: 30s.
	FillTimeout time.Duration
	// MaxWaiters bounds the requests that may wait on one fill (per key) besides the one that started
	// it; a request beyond that is answered 503 with Retry-After: 1 at once. Default: 10000.
	MaxWaiters int
	// WaitTimeout bounds how long a request waits on another request's fill for the response to
	// begin (its headers, or the whole response when it cannot be streamed); past it the request is
	// answered 504 and the fill goes on. Default: 5s.
	WaitTimeout time.Duration
	// ReadyTimeout bounds the upstream probe behind /readyz. Default: 2s.
	ReadyTimeout time.Duration
	// PurgeSecret turns on POST /_lectern/purge for callers that send it as a bearer token. Empty: the
	// endpoint answers 404, and only Edge.Purge (in process) purges.
	PurgeSecret string
	// PlaybackKeys turns on signed playback: /s/{token}/hls/... is verified and served as /hls/...,
	// and plain /hls/... is refused. Empty: the edge is a plain shared cache and /s/... is 404.
	PlaybackKeys playtoken.Keys
	// OriginSecret is this edge's own credential: when set, every request it sends upstream (fills,
	// revalidations, pass-through, the readiness probe) carries Authorization: Bearer OriginSecret in
	// place of whatever the client sent. The origin's --edge-secrets must list it. Caching decisions
	// still look at the client's own request headers.
	OriginSecret string
	// DiskDir turns on the disk tier under the memory tier: responses stored in memory are also
	// written here, one file per key, and survive a restart (see the package documentation). The
	// directory is the edge's alone. Empty: no disk tier.
	DiskDir string
	// DiskBytes bounds the disk tier's files; the least recently used go first. Default: 10 GiB.
	DiskBytes int64
	// Prefetch is how many following segments of a rendition are fetched into the cache when one of
	// its media playlists or segments is served (see the package documentation). 0: no prefetch.
	Prefetch int
	// Peers lists the base URLs of the edges of this edge's region, this one included, for the
	// regional peer group (see the package documentation): each cache key is owned by one of them,
	// chosen by rendezvous hashing over these strings, and a miss asks the owner before the
	// upstream. Every edge of the region must be given the same list. Empty: no peer group.
	Peers []string
	// Self is this edge's own entry in Peers, spelled the same. Required with Peers.
	Self string
	// PeerSecret is the bearer token edges of the group present to each other. A keyed edge
	// (PlaybackKeys) serves plain /hls/ paths to a peer that presents it, and needs one to be in a
	// group. Set, an edge honours the peer marker only from edges that present it.
	PeerSecret string
	// DrainingPeers lists the edges of Peers being taken out of service: they own no keys (theirs go
	// to the next-ranked peers, as if they had left) but still ask the owners for their own misses.
	// Self may be one of them. Edge.SetPeers replaces Peers and DrainingPeers while the edge runs.
	DrainingPeers []string
	// PeerTimeout bounds the wait for a peer's response headers, counted from the start of the
	// request (getting a connection included), before the next peer is tried. Default: 2s.
	PeerTimeout time.Duration
	// PeerDialTimeout bounds getting a connection to a peer (connecting, and the TLS handshake for
	// https), so that a dead or unreachable peer is skipped quickly. Default: 250ms.
	PeerDialTimeout time.Duration
	// PeerDownFor is how long a peer that failed is skipped. Default: 5s.
	PeerDownFor time.Duration
	// MaxRequests bounds the client GET and HEAD requests answered at once, and MaxFills the
	// upstream fills (misses) in progress. Under them, work is shed by priority (see the package
	// documentation): prefetch beyond half of either, first requests of new sessions beyond three
	// quarters, everything beyond the bound; a shed request gets 503 with Retry-After. Defaults:
	// 20000 and 512.
	MaxRequests, MaxFills int
	// NoCollapse turns request collapsing off: every miss makes its own upstream fill, and no request
	// waits on another's (MaxWaiters and WaitTimeout then play no part). The peer group, prefetch and
	// caching are unchanged, and a stale entry is still revalidated in the background once. A switch
	// for benchmarks and diagnosis, to see what collapsing saves; a deployment leaves it off.
	NoCollapse bool
}

const (
	defaultMemoryBytes    = 256 << 20
	defaultMaxObjectBytes = 32 << 20
	defaultDiskBytes      = 10 << 30
	defaultMaxWaiters     = 10000
	defaultWaitTimeout    = 5 * time.Second
)

// Edge is the caching reverse proxy; it is an http.Handler.
type Edge struct {
	upstream     *url.URL
	client       *http.Client
	log          *slog.Logger
	now          func() time.Time
	maxObject    int64
	fillTimeout  time.Duration
	waitTimeout  time.Duration
	readyTimeout time.Duration
	noCollapse   bool

	purgeHandler http.Handler // POST /_lectern/purge
	playbackKeys playtoken.Keys
	originAuth   string // "Bearer " + Config.OriginSecret, or ""; never logged
	peers        *peerGroup
	peerAuth     string // "Bearer " + Config.PeerSecret, or ""; never logged

	mem  *memoryTier
	disk *diskTier // nil without Config.DiskDir
	// prefetch is nil without Config.Prefetch.
	prefetch *prefetcher
	shed     *shedder
	flights  flightGroup
	purge    purge.Generations
	stats    Stats
}

// NewEdge validates cfg, fills in defaults and returns an Edge.
func NewEdge(cfg Config) (*Edge, error) {
	if cfg.Upstream == nil || (cfg.Upstream.Scheme != "http" && cfg.Upstream.Scheme != "https") || cfg.Upstream.Host == "" {
		return nil, errors.New("cdn: Config.Upstream must be an absolute http or https URL")
	}
	for name, sec := range map[string]string{"OriginSecret": cfg.OriginSecret, "PeerSecret": cfg.PeerSecret} {
		for _, c := range []byte(sec) {
			if c <= ' ' || c >= 0x7f {
				// It goes into a header as is; say so here rather than fail every request.
				return nil, fmt.Errorf("cdn: Config.%s must be printable ASCII without spaces", name)
			}
		}
	}
	peers, err := newPeerGroup(cfg)
	if err != nil {
		return nil, err
	}
	if cfg.MemoryBytes <= 0 {
		cfg.MemoryBytes = defaultMemoryBytes
	}
	if cfg.MaxObjectBytes <= 0 {
		cfg.MaxObjectBytes = defaultMaxObjectBytes
	}
	// An entry's weight is a uint32 in otter, and an object bigger than the whole tier could never stay.
	cfg.MaxObjectBytes = min(cfg.MaxObjectBytes, cfg.MemoryBytes, 1<<31)
	if cfg.Client == nil {
		cfg.Client = defaultClient()
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.FillTimeout <= 0 {
		cfg.FillTimeout = 30 * time.Second
	}
	if cfg.MaxWaiters <= 0 {
		cfg.MaxWaiters = defaultMaxWaiters
	}
	if cfg.WaitTimeout <= 0 {
		cfg.WaitTimeout = defaultWaitTimeout
	}
	if cfg.ReadyTimeout <= 0 {
		cfg.ReadyTimeout = 2 * time.Second
	}
	e := &Edge{
		upstream:     cfg.Upstream,
		client:       cfg.Client,
		log:          cfg.Logger,
		now:          cfg.Now,
		maxObject:    cfg.MaxObjectBytes,
		fillTimeout:  cfg.FillTimeout,
		waitTimeout:  cfg.WaitTimeout,
		readyTimeout: cfg.ReadyTimeout,
		noCollapse:   cfg.NoCollapse,
		playbackKeys: cfg.PlaybackKeys,
		flights:      flightGroup{m: map[string]*flight{}, max: cfg.MaxWaiters},
		peers:        peers,
	}
	if cfg.OriginSecret != "" {
		e.originAuth = "Bearer " + cfg.OriginSecret
	}
	if cfg.PeerSecret != "" {
		e.peerAuth = "Bearer " + cfg.PeerSecret
	}
	if e.shed, err = newShedder(cfg.MaxRequests, cfg.MaxFills, &e.stats); err != nil {
		return nil, fmt.Errorf("cdn: shedder: %w", err)
	}
	e.purgeHandler = purge.Handler(cfg.PurgeSecret, cfg.Logger, "edge", e.Purge)
	var onEvict func(string)
	if cfg.Prefetch > 0 {
		e.prefetch = newPrefetcher(e, cfg.Prefetch)
		onEvict = e.prefetch.evicted
	}
	mem, err := newMemoryTier(cfg.MemoryBytes, &e.stats, onEvict)
	if err != nil {
		return nil, fmt.Errorf("cdn: memory tier: %w", err)
	}
	e.mem = mem
	if cfg.DiskDir != "" {
		if cfg.DiskBytes <= 0 {
			cfg.DiskBytes = defaultDiskBytes
		}
		d, err := openDiskTier(cfg.DiskDir, cfg.DiskBytes, &e.stats, cfg.Logger, &e.purge)
		if err != nil {
			return nil, fmt.Errorf("cdn: disk tier: %w", err)
		}
		e.disk = d
	}
	return e, nil
}

// Close waits for the disk writes in flight, so that another Edge may open the same Config.DiskDir.
// The Edge must not serve requests after Close.
func (e *Edge) Close() error {
	if e.disk != nil {
		e.disk.wait()
	}
	return nil
}

func defaultClient() *http.Client {
	t := http.DefaultTransport.(*http.Transport).Clone()
	// An edge talks to one upstream with many concurrent requests; the default of 2 idle connections
	// per host would reopen connections constantly.
	t.MaxIdleConns = 256
	t.MaxIdleConnsPerHost = 128
	t.DisableCompression = true
	t.ResponseHeaderTimeout = 15 * time.Second
	return &http.Client{
		Transport:     t,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
}

// Stats returns the live counters.
func (e *Edge) Stats() *Stats { return &e.stats }

// Collector returns a Prometheus collector over Stats, for the caller to register where it wants.
func (e *Edge) Collector() prometheus.Collector { return newCollector(&e.stats) }

// result describes what a request got, for counters and logs.
type result struct {
	status int
	bytes  int64
	label  string
	// abort: the response was cut short after its headers went out (the upstream failed mid-body),
	// and the connection must be dropped so that the client cannot take it for complete.
	abort bool
}

func (e *Edge) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	switch r.URL.Path {
	case "/healthz":
		writeText(w, r, http.StatusOK, "ok\n", "")
		return
	case "/readyz":
		e.serveReady(w, r)
		return
	case PurgePath:
		e.purgeHandler.ServeHTTP(w, r)
		return
	}

	start := time.Now()
	r = e.admitPeer(r)
	served, res := e.playback(w, r)
	if served == nil {
		e.log.LogAttrs(r.Context(), slog.LevelDebug, "edge request refused", slog.String("method", r.Method),
			slog.String("path", tokenFree(r.URL)), slog.Int("status", res.status))
		return
	}
	r = withoutCMCD(served)
	switch r.Method {
	case http.MethodGet, http.MethodHead:
		// Another edge's request is that edge's client's miss: it plays.
		prio, sid := prioPlaying, ""
		if r.Header.Get(peerHeader) == "" {
			prio, sid = e.shed.classify(served)
		}
		if !e.shed.admit(prio, sid) {
			res = e.overloaded(w, r, prio)
			break
		}
		res = e.admitted(w, r, prio)
		// A peer's request is another edge's miss: that edge prefetches for its own client.
		if e.prefetch != nil && r.Method == http.MethodGet && res.status == http.StatusOK && r.Header.Get(peerHeader) == "" {
			e.prefetch.served(cacheKey(r.URL), cmcdNextObject(served))
		}
	case http.MethodConnect:
		// A reverse proxy has no business tunnelling.
		w.Header().Set("Allow", "GET, HEAD, OPTIONS, POST, PUT, DELETE, PATCH")
		res = writeText(w, r, http.StatusMethodNotAllowed, "method not allowed\n", cacheBypass)
	default:
		e.stats.Bypasses.Add(1)
		// A successful unsafe method invalidates the stored response inside passThrough.
		res = e.passThrough(w, r, cacheBypass, cacheStatus{fwd: fwdMethod})
	}
	e.stats.BytesOut.Add(res.bytes)
	if e.log.Enabled(r.Context(), slog.LevelDebug) { // the attributes cost allocations on every hit
		e.log.LogAttrs(r.Context(), slog.LevelDebug, "edge request",
			slog.String("method", r.Method), slog.String("path", tokenFree(r.URL)), slog.Int("status", res.status),
			slog.String("cache", res.label), slog.Int64("bytes", res.bytes), slog.Duration("took", time.Since(start)))
	}
	if res.abort {
		// The headers are out and the body is cut short: dropping the connection tells the client.
		panic(http.ErrAbortHandler)
	}
}

// admitted serves a GET or HEAD that the shedder admitted, and tells it when the request is over,
// panic or not, so that the count of requests in flight stays true.
func (e *Edge) admitted(w http.ResponseWriter, r *http.Request, prio priority) result {
	defer e.shed.done()
	return e.serveCacheable(w, r, prio)
}

// isUnsafe reports whether a method may change the resource it targets: every method but the safe
// ones of RFC 9110 §9.2.1, since RFC 9111 §4.4 counts methods whose safety is unknown as unsafe.
func isUnsafe(method string) bool {
	switch method {
	case http.MethodGet, http.MethodHead, http.MethodOptions, http.MethodTrace:
		return false
	}
	return true
}

// cacheKey is the URL path and query, as sent once the playback token and CMCD data are gone (both
// are removed from the request before it gets here, so the upstream never sees them either).
func cacheKey(u *url.URL) string {
	if u.RawQuery == "" {
		return u.EscapedPath()
	}
	return u.EscapedPath() + "?" + u.RawQuery
}

// CacheKey returns the key under which an edge caches a playback request for u (a request URI:
// path and query): the /s/{token} prefix of a signed URL and every CMCD= query argument removed, as
// the edge removes them before the cache is consulted. The token is not verified here. Every
// student's request for one object therefore has one key, whatever their token and player state;
// models of the edge use it (`lectern simulate`).
func CacheKey(u *url.URL) string {
	v := *u
	if _, rest, ok := splitSigned(v.EscapedPath()); ok {
		// The token is in the URL alphabet, so the escaped path splits where the path does.
		p, err := url.PathUnescape(rest)
		if err != nil {
			p = rest
		}
		v.Path, v.RawPath = p, rest
	}
	v.RawQuery = stripCMCD(v.RawQuery)
	return cacheKey(&v)
}

// serveCacheable answers GET and HEAD: from a fresh entry, or through a (collapsed) fill.
func (e *Edge) serveCacheable(w http.ResponseWriter, r *http.Request, prio priority) result {
	key := cacheKey(r.URL)
	// Read before the lookup: a purge after this point keeps whatever this request fetches or
	// revalidates out of the cache.
	gen := e.purge.Current()
	ent, ok := e.mem.get(key)
	fromDisk := false
	if !ok && e.disk != nil {
		if ent, ok = e.disk.get(key); ok {
			fromDisk = true
			e.promote(key, ent, gen)
		}
	}
	fwd := fwdURIMiss
	if ok && !ent.varyMatches(r) {
		ent, ok = nil, false
		fwd = fwdVaryMiss
	}
	now := e.now()
	if ok && ent.fresh(now) {
		e.stats.Hits.Add(1)
		if fromDisk {
			res := e.serveEntry(w, r, ent, cacheHit, cacheStatus{hit: true, ttl: true, detail: "disk"})
			e.countTiers(tierDisk, res.bytes)
			return res
		}
		res := e.serveEntry(w, r, ent, cacheHit, cacheStatus{hit: true, ttl: true})
		e.countTiers(tierMemory, res.bytes)
		return res
	}
	if ok && ent.whileRevalidating(now) && r.Header.Get("Authorization") == "" {
		// A request with Authorization may not lead a shared fill, so it takes the ordinary path.
		e.stats.StaleWhileRevalidate.Add(1)
		e.revalidateInBackground(r, key, ent, gen)
		return e.serveEntry(w, r, ent, cacheStale, cacheStatus{hit: true, ttl: true, detail: "stale-while-revalidate"})
	}
	if ok {
		fwd = fwdStale
	}
	e.stats.Misses.Add(1)
	res := e.serveMiss(w, r, key, ent, gen, fwd, prio)
	e.countTiers(tierNone, res.bytes)
	return res
}

// Where a request's fresh entry was found, for the per-tier counters.
const (
	tierNone = iota
	tierMemory
	tierDisk
)

func (e *Edge) countTiers(found int, bytes int64) {
	s := &e.stats
	switch found {
	case tierMemory:
		s.MemoryHits.Add(1)
		s.MemoryHitBytes.Add(bytes)
		return
	case tierDisk:
		s.DiskHits.Add(1)
		s.DiskHitBytes.Add(bytes)
	default:
		if e.disk != nil {
			s.DiskMisses.Add(1)
			s.DiskMissBytes.Add(bytes)
		}
	}
	s.MemoryMisses.Add(1)
	s.MemoryMissBytes.Add(bytes)
}

// serveMiss answers a GET or HEAD that found no usable entry (stale is the stale one, if any): HEAD
// goes upstream as is, GET through a fill, collapsed unless the request has Authorization or
// collapsing is off (Config.NoCollapse).
func (e *Edge) serveMiss(w http.ResponseWriter, r *http.Request, key string, ent *entry, gen uint64, fwd string, prio priority) result {
	// Request directives are advisory (RFC 9111 §5.2.1); the package documentation says which are
	// honoured. Those that ask for more upstream traffic than a fresh entry needs are not.
	noStore := false
	if len(r.Header["Cache-Control"]) > 0 {
		cc := parseCacheControl(r.Header)
		if cc.has("only-if-cached") {
			// RFC 9111 §5.2.1.7: no stored response fits, so 504 instead of going upstream.
			return e.notCached(w, r)
		}
		// RFC 9111 §5.2.1.5: nothing of this exchange may be stored, so it is no fill (which would
		// store the answer and hand it to waiters): the request goes upstream as it is.
		noStore = cc.has("no-store")
	}
	// A HEAD without an entry goes upstream as it is: fetching a whole body to answer it would waste
	// the upstream's bandwidth. A HEAD on a stale entry revalidates it like a GET instead, so that the
	// entry is updated or replaced rather than left behind what the HEAD saw (RFC 9111 §4.3.5); a 304
	// costs no body.
	fill := !noStore && (r.Method == http.MethodGet || ent != nil)
	if fill && r.Header.Get("Authorization") == "" && !e.noCollapse {
		fl, leader, ok := e.flights.join(key, r.Header.Get(peerHeader) != "")
		if ok && fl == nil {
			// A peer's request, while this edge's own fill of key waits on a peer (perhaps the one
			// asking): it fetches on its own, from the upstream.
			if !e.shed.startFill(prio) {
				return e.overloaded(w, r, prio)
			}
			return e.lead(w, r, key, ent, newFlight(key), gen, fwd)
		}
		if !ok {
			e.stats.CollapseRefused.Add(1)
			return e.refuseWaiter(w, r, http.StatusServiceUnavailable, "service unavailable: too many requests waiting\n",
				cacheStatus{fwd: fwd, collapsed: -1, detail: "too-many-waiters"})
		}
		if !leader {
			return e.wait(w, r, fl, fwd) // joining a fill costs the upstream nothing: never shed
		}
		if !e.shed.startFill(prio) {
			e.flights.remove(fl)
			fl.fail(errOverloaded)
			return e.overloaded(w, r, prio)
		}
		return e.lead(w, r, key, ent, fl, gen, fwd) // which gives the fill slot back when the fill ends
	}
	if !e.shed.startFill(prio) {
		return e.overloaded(w, r, prio)
	}
	if !fill {
		defer e.shed.endFill()
		return e.passThrough(w, r, cacheMiss, cacheStatus{fwd: fwd})
	}
	// With Authorization the response may be for this client only, so nobody may wait on it; without
	// collapsing nobody waits on anyone. Either way the flight is the request's own, in no group.
	return e.lead(w, r, key, ent, newFlight(key), gen, fwd)
}

// serveEntry writes a complete response held in memory. A 200 goes through http.ServeContent, which
// answers the client's own conditionals and Range from the stored validators and body.
func (e *Edge) serveEntry(w http.ResponseWriter, r *http.Request, ent *entry, label string, cs cacheStatus) result {
	if ent.status == http.StatusOK && wholeAndUnconditional(r) {
		return e.serveFull(w, r, ent, label, cs)
	}
	h := w.Header()
	for k, vs := range ent.header {
		// Cloned, because Add below and ServeContent edit these slices and entries are shared.
		h[k] = slices.Clone(vs)
	}
	age := ent.age(e.now())
	if label != cacheMiss || age > 0 {
		h.Set("Age", strconv.FormatInt(int64(age/time.Second), 10))
	}
	h.Add("Via", via)
	h.Set("X-Cache", label)
	h.Add("Cache-Status", cs.member(ent.lifetime-age))

	if ent.status != http.StatusOK {
		h.Set("Content-Length", strconv.Itoa(len(ent.body)))
		w.WriteHeader(ent.status)
		res := result{status: ent.status, label: label}
		if r.Method != http.MethodHead && bodyAllowed(ent.status) {
			n, _ := w.Write(ent.body)
			res.bytes = int64(n)
		}
		return res
	}
	if _, ok := ent.header["Content-Type"]; !ok {
		// ServeContent would sniff a type; an upstream that sent none gets none added.
		h["Content-Type"] = nil
	}
	if rg := r.Header.Get("Range"); rg != "" && !strings.HasPrefix(rg, "bytes=") {
		// RFC 9110 §14.2: a Range in a unit the server does not know is ignored, and the whole
		// object sent; ServeContent would refuse it with 416.
		r = r.Clone(r.Context())
		r.Header.Del("Range")
	}
	cw := &countingWriter{ResponseWriter: w}
	http.ServeContent(cw, r, "", ent.lastModified, bytes.NewReader(ent.body))
	return result{status: cw.statusCode(), bytes: cw.n, label: label}
}

// wholeAndUnconditional reports whether r asks for a whole representation with no preconditions:
// the common case of a hit, which needs none of http.ServeContent's work.
func wholeAndUnconditional(r *http.Request) bool {
	h := r.Header
	for _, name := range [...]string{"Range", "If-Match", "If-None-Match", "If-Modified-Since", "If-Unmodified-Since"} {
		if _, ok := h[name]; ok {
			return false
		}
	}
	return true
}

// serveFull writes a 200 entry whole: its prepared header plus the per-response fields, then the
// body in a single Write (http.ServeContent would copy it through a 32 KiB buffer, one syscall per
// chunk).
func (e *Edge) serveFull(w http.ResponseWriter, r *http.Request, ent *entry, label string, cs cacheStatus) result {
	e.setFullHeader(w.Header(), ent, label, cs)
	w.WriteHeader(http.StatusOK)
	res := result{status: http.StatusOK, label: label}
	if r.Method != http.MethodHead {
		n, _ := w.Write(ent.body)
		res.bytes = int64(n)
	}
	return res
}

// setFullHeader puts on h the header of ent served whole: its prepared fields and this response's
// Age, X-Cache and Cache-Status.
func (e *Edge) setFullHeader(h http.Header, ent *entry, label string, cs cacheStatus) {
	for k, vs := range ent.full {
		h[k] = vs
	}
	age := ent.age(e.now())
	if label != cacheMiss || age > 0 {
		h["Age"] = []string{strconv.FormatInt(int64(age/time.Second), 10)}
	}
	h["X-Cache"] = []string{label}
	// Appended after the upstream's members (RFC 9211 §2); the shared slice has no spare capacity.
	h["Cache-Status"] = append(ent.full["Cache-Status"], cs.member(ent.lifetime-age))
}

func bodyAllowed(status int) bool {
	return status >= 200 && status != http.StatusNoContent && status != http.StatusNotModified
}

// countingWriter counts the body bytes and remembers the status ServeContent chose.
type countingWriter struct {
	http.ResponseWriter
	status int
	n      int64
}

func (c *countingWriter) WriteHeader(status int) {
	if c.status == 0 {
		c.status = status
	}
	c.ResponseWriter.WriteHeader(status)
}

func (c *countingWriter) Write(p []byte) (int, error) {
	if c.status == 0 {
		c.status = http.StatusOK
	}
	n, err := c.ResponseWriter.Write(p)
	c.n += int64(n)
	return n, err
}

func (c *countingWriter) statusCode() int {
	if c.status == 0 {
		return http.StatusOK
	}
	return c.status
}

// Unwrap lets http.ResponseController reach the real writer.
func (c *countingWriter) Unwrap() http.ResponseWriter { return c.ResponseWriter }

// serveReady reports whether the upstream answers its own /healthz.
func (e *Edge) serveReady(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Cache-Control", "no-store")
	ctx, cancel := context.WithTimeout(r.Context(), e.readyTimeout)
	defer cancel()
	target := e.upstream.Scheme + "://" + e.upstream.Host + joinPath(e.upstream.EscapedPath(), "/healthz")
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, target, nil)
	if err != nil {
		writeText(w, r, http.StatusServiceUnavailable, "upstream unreachable\n", "")
		return
	}
	if e.originAuth != "" {
		req.Header.Set("Authorization", e.originAuth)
	}
	resp, err := e.client.Do(req)
	if err != nil {
		e.log.Warn("edge not ready: upstream unreachable", slog.Any("err", err))
		writeText(w, r, http.StatusServiceUnavailable, "upstream unreachable\n", "")
		return
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		writeText(w, r, http.StatusServiceUnavailable, "upstream not healthy\n", "")
		return
	}
	writeText(w, r, http.StatusOK, "ready\n", "")
}
