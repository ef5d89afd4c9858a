package cdn

import (
	"net/http"
	"net/url"
	"path"
	"strings"

	"github.com/lectern/lectern/internal/playtoken"
)

// signedPrefix starts playback URLs that carry a token: /s/{token}/hls/{lecture}/...
const signedPrefix = "/s/"

// playback applies signed playback (see the package documentation) to r. It returns the request to
// serve, which for a signed URL is r with the token removed from its path, or nil once it has answered
// the client itself with res.
func (e *Edge) playback(w http.ResponseWriter, r *http.Request) (*http.Request, result) {
	p := r.URL.Path
	if strings.HasPrefix(p, signedPrefix) {
		if len(e.playbackKeys) == 0 {
			return nil, writeText(w, r, http.StatusNotFound, "not found\n", "")
		}
		out, ok := e.verifySigned(r)
		if !ok {
			return nil, e.forbid(w, r)
		}
		switch out.Method {
		case http.MethodGet, http.MethodHead, http.MethodOptions:
			return out, result{}
		}
		w.Header().Set("Allow", "GET, HEAD, OPTIONS")
		return nil, writeText(w, r, http.StatusMethodNotAllowed, "method not allowed\n", "")
	}
	// Cleaned, so that //hls/, /./hls/ or /x/../hls/ cannot reach an upstream that normalizes them.
	// A peer of the group that presented the peer secret asks for the tokenless path its own client
	// was verified for.
	if len(e.playbackKeys) > 0 && isHLS(path.Clean(p)) && !e.trustedPeer(r) {
		return nil, e.forbid(w, r)
	}
	return r, result{}
}

func isHLS(p string) bool { return p == "/hls" || strings.HasPrefix(p, "/hls/") }

// verifySigned checks the token of /s/{token}/hls/{lecture}/... and returns the request for
// /hls/{lecture}/... The path must be clean: the token was issued for one lecture, and dot segments
// or doubled slashes could point the rest of the path elsewhere once an upstream resolves them.
func (e *Edge) verifySigned(r *http.Request) (*http.Request, bool) {
	token, rest, ok := splitSigned(r.URL.Path)
	if !ok {
		return nil, false
	}
	if !isHLS(rest) || !cleanPath(rest) {
		return nil, false
	}
	lecture, _, _ := strings.Cut(rest[len("/hls/"):], "/")
	if lecture == "" {
		return nil, false
	}
	if _, err := playtoken.Verify(e.playbackKeys, token, lecture, e.now()); err != nil {
		return nil, false
	}
	// The token is in the URL alphabet, so it is spelled the same escaped; rewrite the escaped
	// path too, which keeps any escaping in the rest of it intact.
	escaped := r.URL.EscapedPath()
	if !strings.HasPrefix(escaped, signedPrefix+token+"/") {
		return nil, false
	}
	out := r.Clone(r.Context())
	u := *r.URL
	u.Path, u.RawPath = rest, ""
	if rawRest := escaped[len(signedPrefix)+len(token):]; rawRest != rest {
		u.RawPath = rawRest
	}
	out.URL = &u
	out.RequestURI = u.RequestURI()
	return out, true
}

// splitSigned splits a signed playback path /s/{token}/rest into the token and /rest.
func splitSigned(p string) (token, rest string, ok bool) {
	if !strings.HasPrefix(p, signedPrefix) {
		return "", "", false
	}
	token, rest, ok = strings.Cut(p[len(signedPrefix):], "/")
	if !ok || token == "" {
		return "", "", false
	}
	return token, "/" + rest, true
}

// cleanPath reports whether p has no empty, "." or ".." segments (a trailing slash is allowed).
func cleanPath(p string) bool {
	c := path.Clean(p)
	return c == p || c+"/" == p
}

// forbid answers a playback request that has no valid token: one plain 403 whatever the reason, so a
// prober learns nothing. Tokens are never logged.
func (e *Edge) forbid(w http.ResponseWriter, r *http.Request) result {
	e.stats.PlaybackDenied.Add(1)
	w.Header().Set("Cache-Control", "no-store")
	return writeText(w, r, http.StatusForbidden, "forbidden\n", "")
}

// tokenFree returns a request path for logs, without a playback token.
func tokenFree(u *url.URL) string {
	if strings.HasPrefix(u.Path, signedPrefix) {
		return signedPrefix + "…"
	}
	return u.Path
}
