// Package rendezvous picks owners for keys among a set of nodes by rendezvous (highest random weight)
// hashing: every node scores every key, and the key belongs to the highest score. Anyone who knows
// the same node list computes the same owner with no coordination, and adding or removing a node moves
// only the keys that node gains or loses (about 1/n of them), which is what a regional peer group of
// edges needs: an edge that dies hands its keys to the next-ranked peers, and nothing else moves.
//
// Scores are 64-bit FNV-1a of the node name and the key, finished with a SplitMix64 mixer so nearby
// names and keys spread evenly. Weights are not supported: edges of one region are alike.
package rendezvous

import (
	"slices"
)

// FNV-1a, 64 bits.
const (
	fnvOffset = 14695981039346656037
	fnvPrime  = 1099511628211
)

// fnv folds s into the FNV-1a state h.
func fnv(h uint64, s string) uint64 {
	for i := 0; i < len(s); i++ {
		h ^= uint64(s[i])
		h *= fnvPrime
	}
	return h
}

// Score is node's weight for key: higher wins.
func Score(node, key string) uint64 {
	h := fnv(fnvOffset, node)
	// A separator byte keeps ("ab", "c") and ("a", "bc") apart.
	h ^= 0xff
	h *= fnvPrime
	return mix(fnv(h, key))
}

// Hash is the 64-bit FNV-1a of s finished with the same mixer as Score, for callers that build their
// own scores (the router's weighted ranking) from per-node seeds and per-key hashes.
func Hash(s string) uint64 { return mix(fnv(fnvOffset, s)) }

// Mix is SplitMix64's finalizer, for combining a node's seed with a key's hash.
func Mix(z uint64) uint64 { return mix(z) }

// mix is SplitMix64's finalizer: FNV alone leaves the high bits of similar inputs correlated.
func mix(z uint64) uint64 {
	z ^= z >> 30
	z *= 0xbf58476d1ce4e5b9
	z ^= z >> 27
	z *= 0x94d049bb133111eb
	z ^= z >> 31
	return z
}

// Owner returns the node that owns key, or "" when nodes is empty. Ties (practically impossible) go
// to the node that sorts first, so every caller agrees.
func Owner(nodes []string, key string) string {
	best, bestScore := "", uint64(0)
	for _, n := range nodes {
		s := Score(n, key)
		if best == "" || s > bestScore || (s == bestScore && n < best) {
			best, bestScore = n, s
		}
	}
	return best
}

// Rank returns nodes ordered by their score for key, owner first: the order in which to try them
// when the owner is unreachable. nodes is not modified.
func Rank(nodes []string, key string) []string {
	type scored struct {
		node  string
		score uint64
	}
	s := make([]scored, len(nodes))
	for i, n := range nodes {
		s[i] = scored{n, Score(n, key)}
	}
	slices.SortFunc(s, func(a, b scored) int {
		switch {
		case a.score > b.score:
			return -1
		case a.score < b.score:
			return 1
		case a.node < b.node:
			return -1
		case a.node > b.node:
			return 1
		}
		return 0
	})
	out := make([]string, len(s))
	for i, x := range s {
		out[i] = x.node
	}
	return out
}
