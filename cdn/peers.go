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
	timeout     time.Duration // for a peer's response headers
	dialTimeout time.Duration // for a connection to a peer
	downFor     time.Duration
	log         *slog.Logger
	errSlow     error // a peer's headers did not arrive within timeout
	errNoConn   error // no connection to a peer within dialTimeout

	// members is replaced whole by SetPeers, never modified: a fill ranks the peers of the one
	// membership it loaded, however many edits arrive meanwhile.
	members atomic.Pointer[peerMembers]
	swap    sync.Mutex // one SetPeers at a time, so that none publishes a view built on an older one

	mu     sync.Mutex
	purges []recentPurge // oldest first
}

// peerMembers is one version of the group's membership.
type peerMembers struct {
	all      []string // Config.Peers
	draining []string // Config.DrainingPeers
	owners   []string // all without draining: the names keys are ranked over
	byName   map[string]*peer
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
		switch {
		case cfg.Self != "":
			return nil, errors.New("cdn: Config.Self is set without Config.Peers")
		case len(cfg.DrainingPeers) > 0:
			return nil, errors.New("cdn: Config.DrainingPeers is set without Config.Peers")
		}
		return nil, nil
	}
	if len(cfg.PlaybackKeys) > 0 && cfg.PeerSecret == "" {
		// Peers ask for plain /hls/ paths, which a keyed edge refuses to anyone without it.
		return nil, errors.New("cdn: an edge with PlaybackKeys in a peer group needs Config.PeerSecret")
	}
	g := &peerGroup{self: cfg.Self, timeout: cfg.PeerTimeout, dialTimeout: cfg.PeerDialTimeout,
		downFor: cfg.PeerDownFor, log: cfg.Logger}
	if g.log == nil {
		g.log = slog.Default() // as NewEdge's
	}
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
	m, err := g.newMembers(cfg.Peers, cfg.DrainingPeers, nil)
	if err != nil {
		return nil, fmt.Errorf("cdn: Config.Peers: %w", err)
	}
	g.members.Store(m)
	return g, nil
}

// newMembers checks a membership and builds it, keeping the peers of old that stay (and with them
// their down marks).
func (g *peerGroup) newMembers(all, draining []string, old *peerMembers) (*peerMembers, error) {
	m := &peerMembers{all: slices.Clone(all), draining: slices.Clone(draining), byName: map[string]*peer{}}
	seen := map[string]bool{}
	for _, name := range all {
		if err := checkBaseURL(name); err != nil {
			return nil, err
		}
		if seen[name] {
			return nil, fmt.Errorf("%q is listed twice", name)
		}
		seen[name] = true
	}
	if !seen[g.self] {
		return nil, fmt.Errorf("this edge, Config.Self %q, must be one of them, spelled the same", g.self)
	}
	for _, name := range draining {
		if !seen[name] {
			return nil, fmt.Errorf("draining peer %q is not one of them", name)
		}
	}
	for _, name := range all {
		if slices.Contains(draining, name) {
			continue
		}
		m.owners = append(m.owners, name)
		if old != nil && old.byName[name] != nil {
			m.byName[name] = old.byName[name]
			continue
		}
		u, _ := url.Parse(name) // checked above
		m.byName[name] = &peer{name: name, base: u}
	}
	return m, nil
}

// SetPeers replaces the edge's peer group, Config.Peers and Config.DrainingPeers, while it serves:
// requests under way finish with the membership they started with, later ones rank keys over the
// new one. Config.Self must stay among the peers. A peer that stays keeps its down mark. It fails,
// and changes nothing, when the edge has no peer group or the lists are not valid.
func (e *Edge) SetPeers(peers, draining []string) error {
	g := e.peers
	if g == nil {
		return errors.New("cdn: SetPeers on an edge without a peer group (Config.Peers)")
	}
	g.swap.Lock()
	defer g.swap.Unlock()
	old := g.members.Load()
	m, err := g.newMembers(peers, draining, old)
	if err != nil {
		return fmt.Errorf("cdn: SetPeers: %w", err)
	}
	g.members.Store(m)
	added, removed := listDiff(old.all, m.all)
	drained, undrained := listDiff(old.draining, m.draining)
	if len(added)+len(removed)+len(drained)+len(undrained) > 0 {
		g.log.Info("edge peer group changed", slog.Int("peers", len(m.all)), slog.Int("owners", len(m.owners)),
			slog.Any("added", added), slog.Any("removed", removed),
			slog.Any("draining", drained), slog.Any("back_in_service", undrained))
	}
	return nil
}

// listDiff returns what b has that a has not, and what a has that b has not.
func listDiff(a, b []string) (added, removed []string) {
	for _, x := range b {
		if !slices.Contains(a, x) {
			added = append(added, x)
		}
	}
	for _, x := range a {
		if !slices.Contains(b, x) {
			removed = append(removed, x)
		}
	}
	return added, removed
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
	resp, err = e.upstreamDo(req)
	return resp, false, err
}

// upstreamDo sends req to the upstream, counted and timed to the response headers.
func (e *Edge) upstreamDo(req *http.Request) (*http.Response, error) {
	e.stats.UpstreamFetches.Add(1)
	start := time.Now()
	resp, err := e.client.Do(req)
	e.stats.UpstreamSeconds.Observe(time.Since(start))
	return resp, err
}

func (e *Edge) fromPeers(ctx context.Context, r, req *http.Request, key string) *http.Response {
	f, _ := ctx.Value(flightKey{}).(*flight)
	if f != nil {
		defer f.askingPeer.Store(false)
	}
	m := e.peers.members.Load()
	for _, name := range rendezvous.Rank(m.owners, key) {
		if name == e.peers.self {
			// This edge owns the key, or every peer ranked above it is down: it fetches itself.
			// A draining edge is not among the owners and asks them all first.
			return nil
		}
		p := m.byName[name]
		if time.Now().UnixNano() < p.downUntil.Load() {
			continue
		}
		if f != nil {
			f.askingPeer.Store(true) // before the request leaves; see flight.askingPeer
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
	e.stats.PeerSeconds.Observe(time.Since(sent))
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
