package cdn

import (
	"net/http"
	"strings"
)

// cmcdParam is the query argument that carries Common Media Client Data (CTA-5004 §2.2, the query
// form): one per request, describing the player's state (buffer, throughput, session id). It changes
// with every request, so it must not split the cache key, and the upstream has no use for it.
const cmcdParam = "CMCD"

// withoutCMCD returns r with every CMCD= argument removed from its query, the other arguments kept in
// their order and spelling, or r itself when there is none. CMCD sent as request headers
// (CMCD-Request, CMCD-Object, CMCD-Status, CMCD-Session) is left alone: headers are not part of the
// cache key.
func withoutCMCD(r *http.Request) *http.Request {
	q := r.URL.RawQuery
	stripped := stripCMCD(q)
	if stripped == q {
		return r
	}
	out := r.Clone(r.Context())
	u := *r.URL
	u.RawQuery = stripped
	u.ForceQuery = false
	out.URL = &u
	out.RequestURI = u.RequestURI()
	return out
}

// stripCMCD returns the raw query q without its CMCD= arguments, the others kept in their order and
// spelling.
func stripCMCD(q string) string {
	if !strings.Contains(q, cmcdParam) {
		return q
	}
	kept := make([]string, 0, strings.Count(q, "&")+1)
	for _, arg := range strings.Split(q, "&") {
		name, _, _ := strings.Cut(arg, "=")
		if name == cmcdParam {
			continue
		}
		kept = append(kept, arg)
	}
	return strings.Join(kept, "&")
}
