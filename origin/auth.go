package origin

import (
	"crypto/sha256"
	"crypto/subtle"
	"net/http"
	"strings"

	"github.com/lectern/lectern/internal/playtoken"
)

// signedPrefix starts a student's playback URL: /s/{token}/hls/{lecture}/...
const signedPrefix = "/s/"

// serveSigned answers /s/{token}/hls/...: a student reaching the origin directly. The token must
// open the lecture the rest of the path names; every failure is the same 403.
func (s *Server) serveSigned(w http.ResponseWriter, r *http.Request) result {
	if len(s.playbackKeys) == 0 {
		return s.notFound(w, r)
	}
	token, rest, ok := strings.Cut(r.URL.Path[len(signedPrefix):], "/")
	if !ok {
		return s.forbid(w, r)
	}
	rest = "/" + rest
	lecture, ok := lectureOf(rest)
	if !ok {
		// Not an HLS path at all: nothing a token could open.
		return s.forbid(w, r)
	}
	if _, err := playtoken.Verify(s.playbackKeys, token, lecture, s.now()); err != nil {
		s.stats.TokensDenied.Add(1)
		return s.forbid(w, r)
	}
	return s.route(w, r, rest, true)
}

// lectureOf returns the lecture id of /hls/{lecture}/...
func lectureOf(p string) (string, bool) {
	rest, ok := strings.CutPrefix(p, hlsPrefix)
	if !ok {
		return "", false
	}
	lecture, _, ok := strings.Cut(rest, "/")
	return lecture, ok && isLectureID(lecture)
}

// edgeAllowed reports whether a plain request may be served: always when no edge secrets are set,
// otherwise only with one of them as a bearer credential. Probes and purges are routed before this.
func (s *Server) edgeAllowed(r *http.Request) bool {
	if len(s.edgeSecrets) == 0 {
		return true
	}
	scheme, secret, ok := strings.Cut(r.Header.Get("Authorization"), " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") {
		return false
	}
	// Hashed, so the comparison takes the same time whatever the lengths; every secret is compared,
	// so the time does not say which one matched either.
	got := sha256.Sum256([]byte(strings.TrimSpace(secret)))
	match := 0
	for _, want := range s.edgeSecrets {
		match |= subtle.ConstantTimeCompare(got[:], want[:])
	}
	return match == 1
}

// forbid is the one answer to a missing or bad credential or token: no detail, nothing cached, and
// CORS headers so a browser player can see the status.
func (s *Server) forbid(w http.ResponseWriter, r *http.Request) result {
	s.stats.Forbidden.Add(1)
	h := w.Header()
	setCORS(h)
	h.Set("Cache-Control", "no-store")
	return textResult(writeText(w, r, http.StatusForbidden, "forbidden\n"))
}

// tokenFree returns a request path for logs, without a playback token.
func tokenFree(p string) string {
	if !strings.HasPrefix(p, signedPrefix) {
		return p
	}
	if _, rest, ok := strings.Cut(p[len(signedPrefix):], "/"); ok {
		return signedPrefix + "…/" + rest
	}
	return signedPrefix + "…"
}
