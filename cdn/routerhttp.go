package cdn

import (
	"encoding/json"
	"net/http"
	"net/netip"
	"strings"

	"github.com/lectern/lectern/internal/playtoken"
)

// routeAnswer is the JSON form of a routing decision, for apps that resolve the edge themselves.
type routeAnswer struct {
	Edge     string `json:"edge"`
	Region   string `json:"region"`
	URL      string `json:"url"`
	Fallback bool   `json:"fallback,omitempty"`
}

// ServeHTTP answers a playback URL (/s/{token}/hls/{lecture}/... or /hls/{lecture}/...) with a 302 to
// the same path on the student's edge, or its JSON form; see "Router" in the package documentation.
func (r *Router) ServeHTTP(w http.ResponseWriter, req *http.Request) {
	h := w.Header()
	h.Set("Cache-Control", "no-store")
	// The player page may come from another origin than the router (the ingest role's); the answer
	// holds nothing a cross-origin script should not read.
	h.Set("Access-Control-Allow-Origin", "*")
	switch req.Method {
	case http.MethodGet, http.MethodHead:
	default:
		h.Set("Allow", "GET, HEAD")
		routerText(w, http.StatusMethodNotAllowed, "method not allowed\n")
		return
	}
	p := req.URL.Path
	token, rest := "", p
	if strings.HasPrefix(p, signedPrefix) {
		var ok bool
		token, rest, ok = strings.Cut(p[len(signedPrefix):], "/")
		if !ok || token == "" {
			routerText(w, http.StatusNotFound, "not found: give a playback URL, /s/{token}/hls/{lecture}/... or /hls/{lecture}/...\n")
			return
		}
		rest = "/" + rest
	}
	lecture, _, _ := strings.Cut(strings.TrimPrefix(rest, "/hls/"), "/")
	if !strings.HasPrefix(rest, "/hls/") || !cleanPath(rest) || lecture == "" {
		routerText(w, http.StatusNotFound, "not found: give a playback URL, /s/{token}/hls/{lecture}/... or /hls/{lecture}/...\n")
		return
	}
	region := ""
	if token != "" && len(r.cfg.PlaybackKeys) > 0 {
		c, err := playtoken.Verify(r.cfg.PlaybackKeys, token, lecture, r.now())
		if err != nil {
			// One answer whatever the reason, as on the edge.
			r.stats.Denied.Add(1)
			routerText(w, http.StatusForbidden, "forbidden\n")
			return
		}
		region = c.Region
	}
	query, exclude, wantJSON := req.URL.RawQuery, "", false
	if query != "" {
		q := req.URL.Query()
		exclude, wantJSON = q.Get("failed"), q.Get("format") == "json"
		if q.Has("failed") || q.Has("format") {
			q.Del("failed")
			q.Del("format")
			query = q.Encode()
		}
	}
	if exclude != "" {
		r.report(exclude)
	}
	if !wantJSON {
		wantJSON = strings.Contains(req.Header.Get("Accept"), "application/json")
	}
	// A playlist is a student starting (or resuming) playback, a session for bounded load; the course
	// page's posters and the player's chapter and caption files are routed the same way but are not.
	session := strings.HasSuffix(rest, ".m3u8")
	d, err := r.route(lecture, region, r.clientAddr(req), exclude, session)
	if err != nil {
		h.Set("Retry-After", "5")
		routerText(w, http.StatusServiceUnavailable, "no edge is in service for this region now; try again shortly\n")
		return
	}
	target := d.Edge + req.URL.EscapedPath()
	if query != "" {
		target += "?" + query
	}
	if wantJSON {
		h.Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(routeAnswer{Edge: d.Edge, Region: d.Region, URL: target, Fallback: d.Fallback})
		return
	}
	h.Set("Location", target)
	w.WriteHeader(http.StatusFound)
}

func routerText(w http.ResponseWriter, status int, msg string) {
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(status)
	_, _ = w.Write([]byte(msg))
}

// clientAddr is the student's address: the connection's peer, or, when the peer is a trusted proxy,
// the rightmost X-Forwarded-For address that is not one (the ones left of it are the client's word).
func (r *Router) clientAddr(req *http.Request) netip.Addr {
	ap, err := netip.ParseAddrPort(req.RemoteAddr)
	if err != nil {
		return netip.Addr{}
	}
	a := ap.Addr().Unmap()
	if len(r.cfg.TrustForwardedFor) == 0 || !r.trusted(a) {
		return a
	}
	hops := strings.Split(strings.Join(req.Header.Values("X-Forwarded-For"), ","), ",")
	for i := len(hops) - 1; i >= 0; i-- {
		x, err := netip.ParseAddr(strings.TrimSpace(hops[i]))
		if err != nil {
			return a // a hop that is no address: the last trusted one is all that is known
		}
		x = x.Unmap()
		if !r.trusted(x) {
			return x
		}
		a = x
	}
	return a
}

func (r *Router) trusted(a netip.Addr) bool {
	for _, p := range r.cfg.TrustForwardedFor {
		if p.Contains(a) {
			return true
		}
	}
	return false
}
