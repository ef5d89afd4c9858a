package purge

import "testing"

// A store under the generation it started with runs until a purge moves on; after that it is
// refused without running, and a fill starting after the purge stores again.
func TestGenerationsRefuseStoresFromBeforeAPurge(t *testing.T) {
	var g Generations
	gen := g.Current()
	ran := 0
	if !g.Store(gen, func() bool { ran++; return true }) || ran != 1 {
		t.Fatalf("store in the current generation: ran %d", ran)
	}
	if g.Store(gen, func() bool { return false }) {
		t.Fatal("Store reported true although store returned false")
	}
	swept := false
	g.Purge(func() { swept = true })
	if !swept {
		t.Fatal("Purge did not run its sweep")
	}
	if g.Store(gen, func() bool { ran++; return true }) || ran != 1 {
		t.Fatal("a fill from before the purge stored after it")
	}
	if !g.Store(g.Current(), func() bool { ran++; return true }) || ran != 2 {
		t.Fatal("a fill started after the purge could not store")
	}
}
