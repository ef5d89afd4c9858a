package cdn

import (
	"context"
	"errors"
	"net/http"
	"net/url"
	"path"
	"slices"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/lectern/lectern/internal/hls"
)

// prefetcher fetches the segments a player will ask for next into the cache, so that a student
// playing a rendition finds each segment already there. It learns each rendition's segment list from
// the media playlists the edge serves (parsed by internal/hls), and when a playlist or a segment of it
// is served it fetches the next N segments through the edge's own fill path (collapsed with students'
// requests, stored like any response). A CMCD "nor" (next object request) hint is fetched too.
//
// Prefetch is the first work shed: it runs on at most maxPrefetches slots, and a prefetch that finds
// no free slot is dropped, never queued.
type prefetcher struct {
	e     *Edge
	n     int
	slots chan struct{}

	mu         sync.Mutex
	renditions map[string]*rendition // media playlists by their directory, e.g. /hls/L/v1/720p/
	parsed     map[string]*rendition // every playlist seen, by cache key (a master's is empty)

	// pending holds keys fetched by prefetch that no client has asked for yet.
	pending sync.Map
}

// rendition is what the edge knows of one media playlist: its segments' cache keys in order.
type rendition struct {
	src      *entry // the cached playlist it was parsed from; a new entry means parse again
	segments []string
	index    map[string]int
}

const (
	maxPrefetches = 4
	// maxRenditions bounds the memory for learned playlists; a lecture has a handful of them.
	maxRenditions = 4096
)

func newPrefetcher(e *Edge, n int) *prefetcher {
	return &prefetcher{e: e, n: n, slots: make(chan struct{}, maxPrefetches), renditions: map[string]*rendition{}, parsed: map[string]*rendition{}}
}

// served is called after a GET was answered with 200 for key (a cache key: escaped path and query).
// hint is the CMCD nor value of the request, if any.
func (p *prefetcher) served(key string, hint string) {
	if _, ok := p.pending.LoadAndDelete(key); ok {
		p.e.stats.PrefetchUsed.Add(1)
	}
	dir, name := path.Split(pathOf(key))
	switch {
	case strings.HasSuffix(name, ".m3u8"):
		if r := p.learn(dir, key); r != nil && len(r.segments) > 0 {
			p.fetchNext(r, -1)
		}
	default:
		p.mu.Lock()
		r := p.renditions[dir]
		p.mu.Unlock()
		if r != nil {
			if i, ok := r.index[key]; ok {
				p.fetchNext(r, i)
			}
		}
	}
	if hint != "" {
		if target, ok := resolveHint(key, hint); ok {
			p.fetch(target)
		}
	}
}

// learn parses the media playlist cached under key and remembers its segments for the segments'
// directory. A master playlist, or one not in the memory tier, teaches nothing. Every student fetches
// the playlists, so each cached copy is parsed once (a master's failure to parse too), not per request.
func (p *prefetcher) learn(dir, key string) *rendition {
	ent, ok := p.e.mem.get(key)
	if !ok || ent.status != http.StatusOK {
		return nil
	}
	p.mu.Lock()
	known := p.parsed[key]
	p.mu.Unlock()
	if known != nil && known.src == ent {
		return known
	}
	r := &rendition{src: ent}
	r.segments, r.index = mediaSegments(dir, ent.body)
	p.mu.Lock()
	if len(p.parsed) >= maxRenditions {
		// Drop them all: later requests teach what is still being played.
		clear(p.parsed)
		clear(p.renditions)
	}
	p.parsed[key] = r
	if len(r.segments) > 0 {
		p.renditions[dir] = r
	}
	p.mu.Unlock()
	return r
}

// evicted is told of every key the memory tier evicts for space.
func (p *prefetcher) evicted(key string) {
	if _, ok := p.pending.LoadAndDelete(key); ok {
		p.e.stats.PrefetchWasted.Add(1)
	}
}

// mediaSegments returns the cache keys of the segments a media playlist (body, in directory dir)
// lists, in order, and each one's position; nil when it lists none or does not parse.
func mediaSegments(dir string, body []byte) ([]string, map[string]int) {
	m, err := hls.ParseMedia(body)
	if err != nil {
		return nil, nil
	}
	var segs []string
	index := make(map[string]int, len(m.Segments))
	for _, s := range m.Segments {
		seg, ok := resolveRef(dir, s.URI)
		if !ok {
			continue
		}
		index[seg] = len(segs)
		segs = append(segs, seg)
	}
	return segs, index
}

// following returns the n segments after position i (-1: the first n).
func following(segments []string, i, n int) []string {
	return segments[min(i+1, len(segments)):min(i+1+n, len(segments))]
}

// fetchNext prefetches the n segments after position i (-1: from the first).
func (p *prefetcher) fetchNext(r *rendition, i int) {
	for _, key := range following(r.segments, i, p.n) {
		p.fetch(key)
	}
}

// PrefetchTargets returns the cache keys an edge with Config.Prefetch n fetches once it has served
// key to a client, given the media playlist (playlistKey, the cache key it was served under, and
// body) that lists key: the n segments after it, or the first n when key is the playlist itself. A
// key the playlist does not list gives none. This is the edge's own resolution, for models of the
// edge (`lectern simulate`); the edge learns playlists as it serves them.
func PrefetchTargets(playlistKey string, body []byte, key string, n int) []string {
	dir, _ := path.Split(pathOf(playlistKey))
	segs, index := mediaSegments(dir, body)
	i, ok := index[key]
	switch {
	case key == playlistKey:
		i = -1
	case !ok:
		return nil
	}
	return slices.Clone(following(segs, i, n))
}

// PrefetchSlots and PrefetchRenditions are the prefetcher's bounds: prefetches running at once on an
// edge (one that finds none free is dropped), and media playlists it remembers (past that it forgets
// them all and learns again from the playlists it serves next).
const (
	PrefetchSlots      = maxPrefetches
	PrefetchRenditions = maxRenditions
)

// fetch fills key unless it is cached already or no prefetch slot is free.
func (p *prefetcher) fetch(key string) {
	if ent, ok := p.e.mem.get(key); ok && ent.fresh(p.e.now()) {
		return
	}
	select {
	case p.slots <- struct{}{}:
	default:
		p.e.stats.PrefetchShed.Add(1)
		return
	}
	p.e.stats.Prefetches.Add(1)
	go func() {
		defer func() { <-p.slots }()
		u, err := url.ParseRequestURI(key)
		if err != nil {
			return
		}
		req, err := http.NewRequestWithContext(context.Background(), http.MethodGet, key, nil)
		if err != nil {
			return
		}
		req.URL = u
		req.RequestURI = key
		var w discardWriter
		if res := p.e.serveCacheable(&w, req, prioPrefetch); res.status == http.StatusOK {
			p.pending.Store(key, struct{}{})
		}
	}()
}

// discardWriter is the ResponseWriter of a prefetch: the fill stores the response, nobody reads it.
type discardWriter struct{ h http.Header }

func (d *discardWriter) Header() http.Header {
	if d.h == nil {
		d.h = http.Header{}
	}
	return d.h
}
func (d *discardWriter) Write(b []byte) (int, error) { return len(b), nil }
func (d *discardWriter) WriteHeader(int)             {}

// pathOf returns the path part of a cache key.
func pathOf(key string) string {
	p, _, _ := strings.Cut(key, "?")
	return p
}

// resolveRef resolves a playlist URI against the playlist's directory and returns it as a cache key.
// Only same-host relative references are prefetched: an absolute URL may point at another server.
func resolveRef(dir, ref string) (string, bool) {
	u, err := url.Parse(ref)
	if err != nil || u.Scheme != "" || u.Host != "" || u.Path == "" {
		return "", false
	}
	base := &url.URL{Path: dir}
	r := base.ResolveReference(u)
	key := r.EscapedPath()
	if r.RawQuery != "" {
		key += "?" + r.RawQuery
	}
	return key, strings.HasPrefix(key, "/")
}

// resolveHint resolves a CMCD nor value (a URL relative to the request) against key.
// The value is URL-encoded (CTA-5004 says so of "nor"; hls.js sends "..%2F..%2Fseg_00002.m4s"), so it
// is decoded before it is resolved.
func resolveHint(key, hint string) (string, bool) {
	ref, err := url.PathUnescape(hint)
	if err != nil {
		return "", false
	}
	dir, _ := path.Split(pathOf(key))
	return resolveRef(dir, ref)
}

// cmcdNextObject returns the CMCD "nor" key of a request (CTA-5004), "" when absent.
func cmcdNextObject(r *http.Request) string { return cmcdString(r, "CMCD-Request", "nor") }

// unquoteCMCD removes the quotes of a CMCD string value; escapes are \" and \\ only.
func unquoteCMCD(v string) (string, error) {
	if len(v) < 2 || v[0] != '"' || v[len(v)-1] != '"' {
		return "", errBadCMCD
	}
	v = v[1 : len(v)-1]
	var b strings.Builder
	for i := 0; i < len(v); i++ {
		if v[i] == '\\' && i+1 < len(v) {
			i++
		}
		b.WriteByte(v[i])
	}
	return b.String(), nil
}

var errBadCMCD = errors.New("cdn: malformed CMCD string")

// prefetchStats are the prefetcher's counters, part of Stats.
type prefetchStats struct {
	// Prefetches counts fills started by prefetch; PrefetchUsed those a client then asked for;
	// PrefetchWasted those evicted before anyone did; PrefetchShed prefetches dropped because every
	// prefetch slot was busy.
	Prefetches, PrefetchUsed, PrefetchWasted, PrefetchShed atomic.Int64
}
