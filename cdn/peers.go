package cdn

import (
	"bytes"
	"context"
	"crypto/subtle"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math"
	"net/http"
	"net/http/httptrace"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/lectern/lectern/internal/rendezvous"
)

// peerHeader marks a request one edge of a peer group sends another. The receiving edge answers it
// from its cache or its own upstream, never from a third peer, so a request crosses at most one
// peer hop and cannot loop.
const peerHeader = "Lectern-Peer"

const (
	defaultPeerTimeout     = 2 * time.Second
	defaultPeerDialTimeout = 250 * time.Millisecond
	defaultPeerDownFor     = 5 * time.Second
)

// peer is one other edge of the region.
type peer struct {
	name      string // as in Config.Peers: the name that is ranked
	base      *url.URL
	downUntil atomic.Int64 // unix nanoseconds; skipped until then
}

// peerGroup is the regional peer group: who the edges are and which one this is.
type peerGroup struct {
	self        string
	names       []string
	byName      map[string]*peer
	timeout     time.Duration // for a peer's response headers
	dialTimeout time.Duration // for a connection to a peer
	downFor     time.Duration
	errSlow     error // a peer's headers did not arrive within timeout
	errNoConn   error // no connection to a peer within dialTimeout

	mu     sync.Mutex
	purges []recentPurge // oldest first
}

// recentPurge is a purge this edge ran, remembered so that a peer not purged yet cannot hand back
// what it removed.
type recentPurge struct {
	match func(key string) bool
	at    time.Time
}

// Purges are remembered this long, and at most this many: enough to cover the moments in which a
// purge reaches the edges of a region one after another.
const (
	purgeMemory    = 10 * time.Minute
	maxPurgeMemory = 1024
)

// notePurge records a purge that matches keys with match.
func (g *peerGroup) notePurge(match func(string) bool) {
	now := time.Now()
	g.mu.Lock()
	defer g.mu.Unlock()
	drop := 0
	for drop < len(g.purges) && (now.Sub(g.purges[drop].at) > purgeMemory || len(g.purges)-drop >= maxPurgeMemory) {
		drop++
	}
	g.purges = append(g.purges[drop:], recentPurge{match: match, at: now})
}

// purgedSince reports whether key was purged here within age (plus a second, since Age counts whole
// seconds): a peer's answer that old may be the very object the purge removed, fetched before the
// purge reached the peer.
func (g *peerGroup) purgedSince(key string, age time.Duration) bool {
	now := time.Now()
	g.mu.Lock()
	defer g.mu.Unlock()
	for i := len(g.purges) - 1; i >= 0; i-- {
		p := g.purges[i]
		if now.Sub(p.at) > age+time.Second {
			return false // older purges are older still
		}
		if p.match(key) {
			return true
		}
	}
	return false
}

// errPeerBehindPurge is a peer's answer that may predate a purge this edge ran. The peer is not
// at fault (the purge has not reached it yet): the upstream is asked instead.
var errPeerBehindPurge = errors.New("cdn: peer's copy may predate a purge here")

func newPeerGroup(cfg Config) (*peerGroup, error) {
	if len(cfg.Peers) == 0 {
		if cfg.Self != "" {
			return nil, errors.New("cdn: Config.Self is set without Config.Peers")
		}
		return nil, nil
	}
	g := &peerGroup{self: cfg.Self, byName: map[string]*peer{}, timeout: cfg.PeerTimeout,
		dialTimeout: cfg.PeerDialTimeout, downFor: cfg.PeerDownFor}
	if g.timeout <= 0 {
		g.timeout = defaultPeerTimeout
	}
	if g.dialTimeout <= 0 {
		g.dialTimeout = defaultPeerDialTimeout
	}
	if g.downFor <= 0 {
		g.downFor = defaultPeerDownFor
	}
	g.errSlow = fmt.Errorf("no response headers within %v (PeerTimeout)", g.timeout)
	g.errNoConn = fmt.Errorf("no connection within %v (PeerDialTimeout)", g.dialTimeout)
	for _, name := range cfg.Peers {
		u, err := url.Parse(name)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.RawQuery != "" {
			return nil, fmt.Errorf("cdn: Config.Peers: %q is not an absolute http or https base URL", name)
		}
		if _, dup := g.byName[name]; dup {
			return nil, fmt.Errorf("cdn: Config.Peers lists %q twice", name)
		}
		g.byName[name] = &peer{name: name, base: u}
		g.names = append(g.names, name)
	}
	if !slices.Contains(g.names, cfg.Self) {
		return nil, fmt.Errorf("cdn: Config.Self %q must be one of Config.Peers, spelled the same", cfg.Self)
	}
	if len(cfg.PlaybackKeys) > 0 && cfg.PeerSecret == "" {
		// Peers ask for plain /hls/ paths, which a keyed edge refuses to anyone without it.
		return nil, errors.New("cdn: an edge with PlaybackKeys in a peer group needs Config.PeerSecret")
	}
	return g, nil
}

// admitPeer recognizes a request from a peer. With a peer secret, only a request that carries it as
// its bearer token keeps the peer marker, and its Authorization (the secret, not a client's) is
// removed so that the cache treats it like any anonymous client: it collapses with them and is
// stored. Without a secret the marker is taken at its word; all it does is keep the request from
// being sent to another peer.
func (e *Edge) admitPeer(r *http.Request) *http.Request {
	if _, ok := r.Header[peerHeader]; !ok {
		return r
	}
	out := r.Clone(r.Context())
	if e.peerAuth == "" {
		return out
	}
	if subtle.ConstantTimeCompare([]byte(r.Header.Get("Authorization")), []byte(e.peerAuth)) == 1 {
		out.Header.Del("Authorization")
	} else {
		out.Header.Del(peerHeader)
	}
	return out
}

// trustedPeer reports whether r came from a peer that proved it knows the peer secret (see
// admitPeer); such a request may use plain /hls/ paths on a keyed edge.
func (e *Edge) trustedPeer(r *http.Request) bool {
	return e.peerAuth != "" && r.Header.Get(peerHeader) != ""
}

// send sends a fill's request req (built for the upstream from the client's request r): first to
// the key's owner in the peer group, then to the next-ranked peers, and upstream when this edge
// ranks before every peer that is up, or when they all fail. A request from a peer, or one with the
// client's own Authorization (its answer may be for that client alone), goes straight upstream.
// fromPeer says where the answer came from.
func (e *Edge) send(ctx context.Context, r, req *http.Request, key string) (resp *http.Response, fromPeer bool, err error) {
	if e.peers != nil && r.Header.Get(peerHeader) == "" && r.Header.Get("Authorization") == "" {
		if resp := e.fromPeers(ctx, r, req, key); resp != nil {
			return resp, true, nil
		}
	}
	e.stats.UpstreamFetches.Add(1)
	resp, err = e.client.Do(req)
	return resp, false, err
}

func (e *Edge) fromPeers(ctx context.Context, r, req *http.Request, key string) *http.Response {
	for _, name := range rendezvous.Rank(e.peers.names, key) {
		if name == e.peers.self {
			// This edge owns the key, or every peer ranked above it is down: it fetches itself.
			return nil
		}
		p := e.peers.byName[name]
		if time.Now().UnixNano() < p.downUntil.Load() {
			continue
		}
		resp, err := e.askPeer(ctx, p, r, req, key)
		if err == nil {
			return resp
		}
		if ctx.Err() != nil || errors.Is(err, errPeerBehindPurge) {
			return nil // the peer is not to blame: the fill itself ran out of time, or a purge is under way
		}
		e.stats.PeerErrors.Add(1)
		if p.markDown(e.peers.downFor) {
			e.stats.PeersMarkedDown.Add(1)
		}
		e.log.Warn("edge peer failed; trying the next", slog.String("peer", p.name), slog.String("key", key),
			slog.Any("err", err))
	}
	return nil
}

// markDown has the peer skipped for d and reports whether it was up until now.
func (p *peer) markDown(d time.Duration) bool {
	now := time.Now().UnixNano()
	until := now + int64(d)
	for {
		old := p.downUntil.Load()
		if old >= until {
			return false
		}
		if p.downUntil.CompareAndSwap(old, until) {
			return old <= now
		}
	}
}

// askPeer sends req to peer p as a peer request for r's path and query. An error means the peer
// failed (unreachable, too slow to answer, a broken body, or an error of its own making) and the
// next one should be tried. A body that fits the cache is read here, so that a peer dying mid-body
// is still a peer failure rather than the client's.
func (e *Edge) askPeer(ctx context.Context, p *peer, r, req *http.Request, key string) (*http.Response, error) {
	ctx, cancelCause := context.WithCancelCause(ctx)
	cancel := func() { cancelCause(nil) }
	// Two deadlines: one for the response headers, from now, and a shorter one for each connection
	// the transport waits for (from GetConn to GotConn; a retry on a fresh connection waits again),
	// so that a dead peer costs PeerDialTimeout, not PeerTimeout. The transport keeps dialing in the
	// background after the request gives up, which costs nothing here.
	headers := time.AfterFunc(e.peers.timeout, func() { cancelCause(e.peers.errSlow) })
	dial := time.AfterFunc(math.MaxInt64, func() { cancelCause(e.peers.errNoConn) })
	ctx = httptrace.WithClientTrace(ctx, &httptrace.ClientTrace{
		GetConn:      func(string) { dial.Reset(e.peers.dialTimeout) },
		GotConn:      func(httptrace.GotConnInfo) { dial.Stop() },
		WroteHeaders: func() { dial.Stop() },
	})
	out := req.Clone(ctx)
	target := p.base.Scheme + "://" + p.base.Host + joinPath(p.base.EscapedPath(), r.URL.EscapedPath())
	if r.URL.RawQuery != "" {
		target += "?" + r.URL.RawQuery
	}
	u, err := url.Parse(target)
	if err != nil {
		cancel()
		return nil, err
	}
	out.URL, out.Host = u, u.Host
	out.Header.Set(peerHeader, "1")
	if e.peerAuth != "" {
		out.Header.Set("Authorization", e.peerAuth)
	} else {
		out.Header.Del("Authorization") // the origin credential is not the peers' business
	}
	e.stats.PeerFetches.Add(1)
	sent := time.Now()
	resp, err := e.client.Do(out)
	headers.Stop()
	dial.Stop()
	if err != nil {
		if cause := context.Cause(ctx); (cause == e.peers.errSlow || cause == e.peers.errNoConn) && !errors.Is(err, cause) {
			err = fmt.Errorf("%w: %v", cause, err)
		}
		cancel()
		return nil, err
	}
	if e.peers.purgedSince(key, parseAge(resp.Header)+time.Since(sent)) {
		resp.Body.Close()
		cancel()
		return nil, errPeerBehindPurge
	}
	if !peerAnswered(resp) {
		io.Copy(io.Discard, io.LimitReader(resp.Body, 4<<10))
		resp.Body.Close()
		cancel()
		return nil, fmt.Errorf("peer answered %d itself", resp.StatusCode)
	}
	if resp.ContentLength > e.maxObject {
		resp.Body = &cancelOnClose{ReadCloser: resp.Body, cancel: cancel}
		return resp, nil
	}
	body, complete, err := readUpTo(resp.Body, resp.ContentLength, e.maxObject)
	if err != nil {
		resp.Body.Close()
		cancel()
		return nil, fmt.Errorf("peer body: %w", err)
	}
	if !complete {
		resp.Body = &cancelOnClose{ReadCloser: struct {
			io.Reader
			io.Closer
		}{io.MultiReader(bytes.NewReader(body), resp.Body), resp.Body}, cancel: cancel}
		return resp, nil
	}
	resp.Body.Close()
	cancel()
	resp.Body = io.NopCloser(bytes.NewReader(body))
	resp.ContentLength = int64(len(body))
	return resp, nil
}

type cancelOnClose struct {
	io.ReadCloser
	cancel context.CancelFunc
}

func (c *cancelOnClose) Close() error {
	err := c.ReadCloser.Close()
	c.cancel()
	return err
}

// peerAnswered reports whether a peer's response is an answer about the object, from its cache or
// its upstream, rather than an error of the peer's own (its 502 for an unreachable upstream, a 403
// for a wrong peer secret, an overloaded 503). A peer marks what it answers from the cache or the
// upstream with its own Cache-Status member, last in the field; its own errors carry none. A 5xx
// counts as the upstream's only when that member says the upstream answered it (fwd-status), so an
// origin outage is not blamed on the peers, nor retried on each of them.
func peerAnswered(resp *http.Response) bool {
	if resp.StatusCode < 400 {
		return true
	}
	vs := resp.Header.Values("Cache-Status")
	if len(vs) == 0 {
		return false
	}
	last := vs[len(vs)-1]
	if i := strings.LastIndexByte(last, ','); i >= 0 {
		last = last[i+1:]
	}
	params := strings.Split(last, ";")
	if strings.TrimSpace(params[0]) != cacheStatusName {
		return false
	}
	if resp.StatusCode < 500 {
		return true
	}
	want := "fwd-status=" + strconv.Itoa(resp.StatusCode)
	for _, p := range params[1:] {
		if strings.TrimSpace(p) == want {
			return true
		}
	}
	return false
}
