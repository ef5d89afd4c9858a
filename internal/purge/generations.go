package purge

import (
	"sync"
	"sync/atomic"
)

// Generations orders purges against fills, for any cache that stores what it fetched (the edge's
// tiers, the origin's hot cache). A fill reads Current before it looks anything up and stores its
// result through Store with that generation; Store checks and stores while purges are held off, and
// Purge moves to a new generation and sweeps with stores held off. So a fill that stored before a
// purge is swept by it, and one that would store after it sees the new generation and does not: a
// purged object is never served from the cache again. A purge may also keep unrelated fills running
// at that moment from being stored; they are fetched again later.
type Generations struct {
	mu  sync.RWMutex
	gen atomic.Uint64
}

// Current is the generation a fill starting now must store under.
func (g *Generations) Current() uint64 { return g.gen.Load() }

// Store runs store unless a purge has run since generation gen, and reports what store returned
// (false when it did not run).
func (g *Generations) Store(gen uint64, store func() bool) bool {
	g.mu.RLock()
	defer g.mu.RUnlock()
	if g.gen.Load() != gen {
		return false
	}
	return store()
}

// Hold runs fn with purges held off, for a store whose own checks must come before the generation's
// (fn compares gen with Current itself).
func (g *Generations) Hold(fn func()) {
	g.mu.RLock()
	defer g.mu.RUnlock()
	fn()
}

// Purge moves to a new generation and runs sweep while no store can happen.
func (g *Generations) Purge(sweep func()) {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.gen.Add(1)
	sweep()
}
