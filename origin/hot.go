package origin

import (
	"net/http"
	"time"

	"github.com/lectern/lectern/internal/objstore"
	"github.com/maypok86/otter/v2"
)

// object is what the hot cache holds for a key: a whole object with its response headers worked out
// once, a remembered miss, or an entry point's redirect. It is never modified once built, so readers
// need no lock and the header slices can be handed to every response as they are.
type object struct {
	attrs objstore.Attrs
	body  []byte

	missing  bool      // a 404, remembered until expires
	location string    // an entry point: where it redirects, until expires
	expires  time.Time // zero: kept until evicted or purged (immutable objects)

	// Header values, shared by every response served from this object.
	contentType, etag, lastModified, length []string

	weight uint32
}

// objectOverhead approximates the memory an entry costs beyond its body (struct, header strings,
// otter's node, the key), so that many small entries cannot overrun the budget.
const objectOverhead = 384

func newObject(key string, attrs objstore.Attrs, body []byte) *object {
	o := &object{attrs: attrs, body: body}
	o.contentType = []string{contentType(key, attrs.ContentType)}
	if attrs.ETag != "" {
		o.etag = []string{`"` + attrs.ETag + `"`}
	}
	if !attrs.ModTime.IsZero() {
		o.lastModified = []string{attrs.ModTime.UTC().Format(http.TimeFormat)}
	}
	o.length = []string{itoa(attrs.Size)}
	o.weight = weight(key, len(body))
	return o
}

func missingObject(key string, until time.Time) *object {
	return &object{missing: true, expires: until, weight: weight(key, 0)}
}

func redirectObject(key, location string, until time.Time) *object {
	return &object{location: location, expires: until, weight: weight(key, len(location))}
}

func weight(key string, n int) uint32 {
	return uint32(min(int64(n)+int64(len(key))+objectOverhead, 1<<32-1))
}

// setHeaders writes the object's representation headers; immutableCC is the Cache-Control to send.
func (o *object) setHeaders(h http.Header, cacheControl []string) {
	h["Content-Type"] = o.contentType
	h["Cache-Control"] = cacheControl
	h["Accept-Ranges"] = acceptRanges
	if o.etag != nil {
		h["Etag"] = o.etag
	}
	if o.lastModified != nil {
		h["Last-Modified"] = o.lastModified
	}
}

var acceptRanges = []string{"bytes"}

// hotCache is the origin's byte-bounded memory of recent objects: W-TinyLFU (otter) keeps what many
// edges ask for (the newest segments and playlists of the lectures playing now) over one-off reads.
type hotCache struct {
	c     *otter.Cache[string, *object]
	max   int64
	stats *Stats
}

func newHotCache(maxBytes int64, stats *Stats) (*hotCache, error) {
	c, err := otter.New(&otter.Options[string, *object]{
		MaximumWeight: uint64(maxBytes),
		Weigher:       func(_ string, o *object) uint32 { return o.weight },
		// Atomic, so the gauges move with the cache; a replacement reports the old value too.
		OnAtomicDeletion: func(ev otter.DeletionEvent[string, *object]) {
			stats.HotBytes.Add(-int64(ev.Value.weight))
			stats.HotEntries.Add(-1)
			if ev.WasEvicted() {
				stats.HotEvictions.Add(1)
			}
		},
	})
	if err != nil {
		return nil, err
	}
	return &hotCache{c: c, max: maxBytes, stats: stats}, nil
}

// get returns the live entry for key; an expired one is dropped and reported absent.
func (h *hotCache) get(key string, now time.Time) (*object, bool) {
	if h == nil {
		return nil, false
	}
	o, ok := h.c.GetIfPresent(key)
	if !ok {
		return nil, false
	}
	if !o.expires.IsZero() && !now.Before(o.expires) {
		h.c.Invalidate(key)
		return nil, false
	}
	return o, true
}

// set stores o unless it is heavier than the whole budget.
func (h *hotCache) set(key string, o *object) {
	if h == nil || int64(o.weight) > h.max {
		return
	}
	// The gauges go up before the insert so that a racing eviction never drives them below the truth.
	h.stats.HotBytes.Add(int64(o.weight))
	h.stats.HotEntries.Add(1)
	h.c.Set(key, o)
}

func (h *hotCache) removeMatching(match func(string) bool) int {
	n := 0
	for key := range h.c.Keys() {
		if match(key) {
			if _, ok := h.c.Invalidate(key); ok {
				n++
			}
		}
	}
	return n
}

// remember stores o unless a purge ran since generation gen.
func (s *Server) remember(key string, o *object, gen uint64) {
	s.purge.Store(gen, func() bool { s.hot.set(key, o); return true })
}
