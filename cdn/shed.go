package cdn

import (
	"net/http"
	"strings"
	"sync/atomic"
	"time"

	"github.com/maypok86/otter/v2"
)

// priority orders the work an edge sheds when it is overloaded, lowest first (see the package
// documentation, "Overload").
type priority int8

const (
	// prioPrefetch is a fill nobody asked for yet.
	prioPrefetch priority = iota
	// prioNew is the first request of a session this edge has not served yet: turning it away costs
	// a student a delayed start, not a stall.
	prioNew
	// prioPlaying is every other request: playlists and next segments of sessions already playing.
	prioPlaying
)

// Load levels, as fractions of Config.MaxRequests and Config.MaxFills, up to which each priority is
// admitted: prefetch stops at half load, new sessions at three quarters, and the last quarter is kept
// for sessions already playing.
const (
	prefetchShare = 0.5
	newShare      = 0.75
)

const (
	defaultMaxRequests = 20000
	defaultMaxFills    = 512
	// How long a session id is remembered after its last request: longer than any gap between a
	// player's requests (a segment's duration, or a pause), short enough to bound the table.
	sessionMemory = 2 * time.Minute
	maxSessions   = 1 << 20
)

// shedder admits requests and upstream fills by priority. Requests in flight and fills in flight are
// counted with atomics; nothing here takes a lock on the hit path.
type shedder struct {
	maxRequests, maxFills int64
	requests, fills       *atomic.Int64 // in Stats, where they are exported
	// sessions holds the CMCD session ids (sid) admitted recently.
	sessions *otter.Cache[string, struct{}]
}

func newShedder(maxRequests, maxFills int, stats *Stats) (*shedder, error) {
	if maxRequests <= 0 {
		maxRequests = defaultMaxRequests
	}
	if maxFills <= 0 {
		maxFills = defaultMaxFills
	}
	sessions, err := otter.New(&otter.Options[string, struct{}]{
		MaximumSize:      maxSessions,
		ExpiryCalculator: otter.ExpiryAccessing[string, struct{}](sessionMemory),
	})
	if err != nil {
		return nil, err
	}
	return &shedder{maxRequests: int64(maxRequests), maxFills: int64(maxFills), sessions: sessions,
		requests: &stats.RequestsInFlight, fills: &stats.FillsInFlight}, nil
}

// limit is the share of max that priority p may use.
func limit(max int64, p priority) int64 {
	switch p {
	case prioPrefetch:
		return int64(float64(max) * prefetchShare)
	case prioNew:
		return int64(float64(max) * newShare)
	}
	return max
}

// classify returns the priority of a client request. A session is known by its CMCD session id
// (CTA-5004 "sid"); its first request is new, later ones are playing. A request without a session
// id is new when it is for a multivariant (master) playlist, which a player fetches once, at start,
// and playing otherwise. raw is the request as the client sent it (CMCD is stripped later).
func (s *shedder) classify(raw *http.Request) (priority, string) {
	sid := cmcdString(raw, "CMCD-Session", "sid")
	if sid != "" {
		if _, ok := s.sessions.GetIfPresent(sid); ok {
			return prioPlaying, sid
		}
		return prioNew, sid
	}
	if isMasterPlaylist(raw.URL.Path) {
		return prioNew, ""
	}
	return prioPlaying, ""
}

// isMasterPlaylist reports whether p names a multivariant playlist in Lectern's layout
// (.../master.m3u8); other servers' players still fall back to "playing" for every request.
func isMasterPlaylist(p string) bool { return strings.HasSuffix(p, "/master.m3u8") }

// admit counts a client request in flight at priority p, or refuses it. The caller must call done
// once when admit said yes.
func (s *shedder) admit(p priority, sid string) bool {
	n := s.requests.Add(1)
	if n > limit(s.maxRequests, p) {
		s.requests.Add(-1)
		return false
	}
	if sid != "" && p == prioNew {
		// Admitted once, the session is playing: its next requests are protected.
		s.sessions.Set(sid, struct{}{})
	}
	return true
}

func (s *shedder) done() { s.requests.Add(-1) }

// startFill takes an upstream fill slot at priority p, or refuses; endFill gives it back.
func (s *shedder) startFill(p priority) bool {
	n := s.fills.Add(1)
	if n > limit(s.maxFills, p) || (p == prioPrefetch && s.requests.Load() > limit(s.maxRequests, p)) {
		s.fills.Add(-1)
		return false
	}
	return true
}

func (s *shedder) endFill() { s.fills.Add(-1) }

// cmcdString returns the string value of CMCD key name, from the CMCD query argument or else the
// CMCD header named header (CTA-5004 spreads the keys over four headers), unquoted: nor="next.m4s".
// "" when absent or malformed.
func cmcdString(r *http.Request, header, name string) string {
	data := r.Header.Get(header)
	if strings.Contains(r.URL.RawQuery, cmcdParam) {
		if q := r.URL.Query().Get(cmcdParam); q != "" {
			data = q
		}
	}
	for item := range strings.SplitSeq(data, ",") {
		key, value, ok := strings.Cut(strings.TrimSpace(item), "=")
		if !ok || key != name {
			continue
		}
		if v, err := unquoteCMCD(value); err == nil {
			return v
		}
	}
	return ""
}

// overloaded answers a request the edge turned away: 503, never stored, with a hint of when to come
// back. New sessions are told to wait longer than sessions already playing.
func (e *Edge) overloaded(w http.ResponseWriter, r *http.Request, p priority) result {
	e.stats.Shed[p].Add(1)
	h := w.Header()
	h.Set("Cache-Control", "no-store")
	if p == prioPlaying {
		h.Set("Retry-After", "1")
	} else {
		h.Set("Retry-After", "2")
	}
	return writeText(w, r, http.StatusServiceUnavailable, "edge overloaded: retry after the Retry-After seconds\n", "")
}
