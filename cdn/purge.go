package cdn

import (
	"context"
	"net/http"
	"time"

	"github.com/lectern/lectern/internal/purge"
)

// PurgePath is where an edge accepts purge requests (see [Config.PurgeSecret]).
const PurgePath = purge.Path

// store puts ent in the memory tier, and starts writing it to the disk tier, unless a purge has run
// since generation gen. The disk write checks the generation again when its file is ready.
func (e *Edge) store(key string, ent *entry, gen uint64) bool {
	return e.purge.Store(gen, func() bool {
		if !e.mem.set(key, ent) {
			return false
		}
		if e.disk != nil {
			e.disk.write(key, ent, gen)
		}
		return true
	})
}

// promote puts an entry read from the disk tier in the memory tier, unless a purge has run since
// generation gen (the purge may have deleted the file after it was read).
func (e *Edge) promote(key string, ent *entry, gen uint64) {
	e.purge.Store(gen, func() bool { return e.mem.set(key, ent) })
}

// forget removes key from every tier: its stored response is no longer valid.
func (e *Edge) forget(key string) {
	e.mem.remove(key)
	if e.disk != nil {
		e.disk.remove(key)
	}
}

// Purge removes cached objects from every tier and returns how many keys it removed (a key held in
// memory and on disk counts once). A prefix ending in "/"
// removes every key under it ("/hls/LECTURE/" is a whole lecture); any other value removes that exact
// path with any query string (the rule of package internal/purge). Keys are URL paths as requests
// spell them (escaped), without the playback token of /s/{token}/ URLs. Fills in flight for a purged
// key are detached: requests already waiting for them get their answer, later ones start a new fill,
// and nothing fetched before the purge is stored after it.
func (e *Edge) Purge(prefix string) int {
	match := purge.Matcher(prefix)
	var removed map[string]struct{}
	e.purge.Purge(func() {
		e.flights.mu.Lock()
		for key := range e.flights.m {
			if match(key) {
				delete(e.flights.m, key)
			}
		}
		e.flights.mu.Unlock()

		if e.peers != nil {
			e.peers.notePurge(match)
		}
		removed = e.mem.removeMatching(match)
		if e.disk != nil {
			// The disk tier's index, not a walk of its directory.
			for _, key := range e.disk.removeMatching(match) {
				removed[key] = struct{}{}
			}
		}
	})
	n := len(removed)
	e.stats.Purged.Add(int64(n))
	return n
}

// removeMatching removes every entry whose key matches and returns the keys it removed.
func (m *memoryTier) removeMatching(match func(string) bool) map[string]struct{} {
	removed := map[string]struct{}{}
	for key := range m.cache.Keys() {
		if match(key) {
			if _, ok := m.cache.Invalidate(key); ok {
				removed[key] = struct{}{}
			}
		}
	}
	return removed
}

// Purger tells caches to drop objects, for ingest when a lecture is deleted or replaced; see
// package internal/purge, which declares it.
type Purger = purge.Purger

// LocalPurger purges an edge running in the same process (lectern serve).
type LocalPurger struct{ Edge *Edge }

func (l LocalPurger) Purge(ctx context.Context, prefix string) error {
	return purge.Local(l.Edge.Purge).Purge(ctx, prefix)
}

// HTTPPurger purges remote edges through their POST /_lectern/purge endpoint.
type HTTPPurger struct {
	// Edges are the edges' base URLs, e.g. http://edge-1:8082.
	Edges []string
	// Secret is the edges' --purge-secret.
	Secret string
	// Client sends the requests. Default: http.DefaultClient.
	Client *http.Client
	// Timeout bounds each edge's request. Default: 10s.
	Timeout time.Duration
}

// Purge tells every edge at once; an edge that is down or refuses does not stop the others. The
// error joins one error per failed edge, each naming the edge. There is no retry: an edge that missed
// a purge still drops the objects when their freshness ends.
func (p HTTPPurger) Purge(ctx context.Context, prefix string) error {
	return purge.HTTPPurger{URLs: p.Edges, Secret: p.Secret, Role: "edge", Client: p.Client, Timeout: p.Timeout}.Purge(ctx, prefix)
}
