package cdn

import (
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/maypok86/otter/v2"
)

// entry is one complete upstream response. It is immutable once built: a revalidation makes a new
// entry that shares the body, so readers never need a lock.
type entry struct {
	status int
	// header holds the end-to-end response headers without Age and Content-Length, which are
	// computed when the entry is served.
	header       http.Header
	body         []byte
	lastModified time.Time // zero when absent or unparsable

	responseTime time.Time     // when the response arrived, on the edge's clock
	initialAge   time.Duration // upstream Age plus the request's round trip (RFC 9111 §4.2.3)
	lifetime     time.Duration
	stale        staleRules

	// vary lists the request headers the response varies on, and varyValues what the request that
	// fetched it sent for each; a request is served from this entry only when its values match.
	vary       []string
	varyValues []string

	weight uint32
	// full is the header of a 200 served whole from this entry, less the per-response fields (Age,
	// X-Cache, Cache-Status): built once per entry so that a hit copies slices instead of cloning
	// them. Every slice has len == cap, so an Add on the response header reallocates rather than
	// writing into the shared array; nothing may modify them in place.
	full http.Header
}

// entryOverhead approximates the memory an entry costs beyond its body and headers (the struct,
// otter's node, the key), so that many tiny entries cannot overrun the byte budget.
const entryOverhead = 256

func newEntry(key string, status int, upstream http.Header, body []byte, req *http.Request,
	requestTime, responseTime time.Time, lifetime time.Duration) *entry {
	h := endToEnd(upstream)
	h.Del("Age")
	h.Del("Content-Length")
	e := &entry{
		status:       status,
		header:       h,
		body:         body,
		responseTime: responseTime,
		initialAge:   parseAge(upstream) + max(responseTime.Sub(requestTime), 0),
		lifetime:     lifetime,
		vary:         varyFields(h),
		stale:        staleRulesOf(h),
	}
	for _, f := range e.vary {
		e.varyValues = append(e.varyValues, strings.Join(req.Header.Values(f), ","))
	}
	e.lastModified, _ = http.ParseTime(h.Get("Last-Modified"))
	e.weight = weigh(key, h, body)
	e.full = fullHeader(h, len(body))
	return e
}

// fullHeader builds entry.full from an entry's stored header and body length.
func fullHeader(stored http.Header, n int) http.Header {
	f := make(http.Header, len(stored)+4)
	for k, vs := range stored {
		f[k] = slices.Clip(slices.Clone(vs))
	}
	if _, ok := f["Content-Type"]; !ok {
		// Present but empty: net/http would sniff a type otherwise, and an upstream that sent none
		// gets none added.
		f["Content-Type"] = nil
	}
	f["Content-Length"] = []string{strconv.Itoa(n)}
	f["Via"] = slices.Clip(append(slices.Clone(stored["Via"]), via))
	f["Accept-Ranges"] = []string{"bytes"}
	return f
}

func weigh(key string, h http.Header, body []byte) uint32 {
	n := int64(len(body)) + int64(len(key)) + entryOverhead
	for k, vs := range h {
		for _, v := range vs {
			n += int64(len(k) + len(v) + 4)
		}
	}
	return uint32(min(n, 1<<32-1))
}

// age is the entry's current age (RFC 9111 §4.2.3).
func (e *entry) age(now time.Time) time.Duration {
	return e.initialAge + max(now.Sub(e.responseTime), 0)
}

func (e *entry) fresh(now time.Time) bool { return e.lifetime > e.age(now) }

// servableStale reports whether e, stale at now, may still be served for up to window past its
// freshness (the window of stale-while-revalidate or stale-if-error).
func (e *entry) servableStale(now time.Time, window time.Duration) bool {
	return !e.stale.forbidden && window > 0 && e.age(now) < e.lifetime+window
}

func (e *entry) whileRevalidating(now time.Time) bool {
	return e.servableStale(now, e.stale.whileRevalidate)
}

func (e *entry) ifError(now time.Time) bool { return e.servableStale(now, e.stale.ifError) }

func (e *entry) etag() string { return e.header.Get("Etag") }

// varyMatches reports whether req selects this entry's variant.
func (e *entry) varyMatches(req *http.Request) bool {
	for i, f := range e.vary {
		if strings.Join(req.Header.Values(f), ",") != e.varyValues[i] {
			return false
		}
	}
	return true
}

// refreshed returns a copy of e updated by a 304 (RFC 9111 §4.3.4): the 304's headers replace the
// stored ones, except Content-Length which describes the 304 itself, and the age restarts. The caller
// sets the lifetime, which depends on the merged headers.
func (e *entry) refreshed(key string, notModified http.Header, requestTime, responseTime time.Time) *entry {
	h := e.header.Clone()
	for k, vs := range endToEnd(notModified) {
		switch k {
		case "Content-Length", "Age":
			continue
		}
		h[k] = vs
	}
	n := *e
	n.header = h
	n.responseTime = responseTime
	n.initialAge = parseAge(notModified) + max(responseTime.Sub(requestTime), 0)
	n.lastModified, _ = http.ParseTime(h.Get("Last-Modified"))
	n.stale = staleRulesOf(h)
	n.weight = weigh(key, h, e.body)
	n.full = fullHeader(h, len(e.body))
	return &n
}

// withBody returns a copy of e, an entry built before its body was read (newEntry with a nil body),
// that holds body.
func (e *entry) withBody(key string, body []byte) *entry {
	n := *e
	n.body = body
	n.weight = weigh(key, n.header, body)
	n.full = fullHeader(n.header, len(body))
	return &n
}

// memoryTier is the byte-bounded in-memory level of the cache. The disk tier (disk.go) sits under
// it with the same get/remove shape; its writes are asynchronous, so it has write instead of set.
type memoryTier struct {
	cache    *otter.Cache[string, *entry]
	maxBytes int64
	stats    *Stats
}

// newMemoryTier builds the tier. onEvict, when not nil, is told of every key evicted for space.
func newMemoryTier(maxBytes int64, stats *Stats, onEvict func(key string)) (*memoryTier, error) {
	c, err := otter.New(&otter.Options[string, *entry]{
		MaximumWeight: uint64(maxBytes),
		Weigher:       func(_ string, e *entry) uint32 { return e.weight },
		// Atomic, so the gauges move together with the cache; a replacement reports the old value
		// here too, which keeps them exact.
		OnAtomicDeletion: func(ev otter.DeletionEvent[string, *entry]) {
			stats.CacheBytes.Add(-int64(ev.Value.weight))
			stats.CacheEntries.Add(-1)
			if ev.WasEvicted() {
				stats.Evictions.Add(1)
				if onEvict != nil {
					onEvict(ev.Key)
				}
			}
		},
	})
	if err != nil {
		return nil, err
	}
	return &memoryTier{cache: c, maxBytes: maxBytes, stats: stats}, nil
}

func (m *memoryTier) get(key string) (*entry, bool) { return m.cache.GetIfPresent(key) }

// set stores e and reports whether it was accepted. An entry heavier than the whole budget is
// refused outright rather than inserted and immediately evicted.
func (m *memoryTier) set(key string, e *entry) bool {
	if int64(e.weight) > m.maxBytes {
		return false
	}
	// The gauges go up before the insert so that an eviction racing with it never drives them below
	// the truth.
	m.stats.CacheBytes.Add(int64(e.weight))
	m.stats.CacheEntries.Add(1)
	m.cache.Set(key, e)
	return true
}

func (m *memoryTier) remove(key string) { m.cache.Invalidate(key) }
