package cdn

import (
	"net/http"
	"strconv"
	"strings"
	"time"
)

// directives are parsed Cache-Control directives: lower-cased names to unquoted values ("" when a
// directive has no value).
type directives map[string]string

// parseCacheControl merges every Cache-Control field line, as RFC 9110 §5.3 says repeated lines mean
// one comma-separated list. Commas inside quoted values (private="a, b") do not split directives.
func parseCacheControl(h http.Header) directives {
	d := directives{}
	for _, line := range h.Values("Cache-Control") {
		for len(line) > 0 {
			var item string
			item, line = nextListItem(line)
			if item == "" {
				continue
			}
			name, value, _ := strings.Cut(item, "=")
			name = strings.ToLower(strings.TrimSpace(name))
			value = strings.TrimSpace(value)
			if len(value) >= 2 && value[0] == '"' && value[len(value)-1] == '"' {
				value = value[1 : len(value)-1]
			}
			if _, dup := d[name]; !dup { // the first occurrence wins, which is the cautious reading
				d[name] = value
			}
		}
	}
	return d
}

// nextListItem splits the first element off a comma-separated header list, honouring quotes.
func nextListItem(s string) (item, rest string) {
	inQuote := false
	for i := 0; i < len(s); i++ {
		switch s[i] {
		case '"':
			inQuote = !inQuote
		case '\\':
			if inQuote {
				i++
			}
		case ',':
			if !inQuote {
				return strings.TrimSpace(s[:i]), s[i+1:]
			}
		}
	}
	return strings.TrimSpace(s), ""
}

func (d directives) has(name string) bool {
	_, ok := d[name]
	return ok
}

// seconds reads a delta-seconds directive. A malformed value counts as zero (stale) rather than as
// absent: RFC 9111 §4.2.1 asks caches to treat an invalid freshness value as already stale.
func (d directives) seconds(name string) (time.Duration, bool) {
	v, ok := d[name]
	if !ok {
		return 0, false
	}
	return parseDeltaSeconds(v), true
}

// maxDelta is 2^31 seconds, the value RFC 9111 §1.2.2 says to use for anything larger.
const maxDelta = time.Duration(1<<31) * time.Second

func parseDeltaSeconds(v string) time.Duration {
	if v == "" {
		return 0
	}
	for i := 0; i < len(v); i++ {
		if v[i] < '0' || v[i] > '9' {
			return 0
		}
	}
	n, err := strconv.ParseInt(v, 10, 64)
	if err != nil || n >= 1<<31 {
		return maxDelta
	}
	return time.Duration(n) * time.Second
}

// responseDirectives returns the cache directives the edge follows for a response: those of
// CDN-Cache-Control when it has a valid one, which then replaces Cache-Control and Expires entirely
// (RFC 9213 §2.2), else those of Cache-Control. targeted says which.
func responseDirectives(h http.Header) (cc directives, targeted bool) {
	if d, ok := targetedDirectives(h); ok {
		return d, true
	}
	return parseCacheControl(h), false
}

// freshnessLifetime returns the explicit freshness lifetime of a response (RFC 9111 §4.2.1) and
// whether there is one. A shared cache takes s-maxage over max-age over Expires; directives from a
// targeted field ignore Expires.
func freshnessLifetime(cc directives, targeted bool, h http.Header, responseTime time.Time) (time.Duration, bool) {
	if s, ok := cc.seconds("s-maxage"); ok {
		return s, true
	}
	if s, ok := cc.seconds("max-age"); ok {
		return s, true
	}
	exp := h.Get("Expires")
	if exp == "" || targeted {
		return 0, false
	}
	expires, err := http.ParseTime(exp)
	if err != nil {
		return 0, true // "Expires: 0" and friends mean already expired
	}
	date := responseTime
	if d, err := http.ParseTime(h.Get("Date")); err == nil {
		date = d
	}
	return max(expires.Sub(date), 0), true
}

// heuristicFraction and heuristicCap shape heuristic freshness: a tenth of the time since the last
// modification, as RFC 9111 §4.2.2 suggests, and never more than a day, so that an object unchanged
// for years is still checked daily.
const (
	heuristicFraction = 10
	heuristicCap      = 24 * time.Hour
)

// heuristicLifetime returns the freshness lifetime a response without explicit freshness gets by
// heuristic (RFC 9111 §4.2.2), and whether it gets one: only for a status that is heuristically
// cacheable (RFC 9110 §15.1) and with a Last-Modified no later than its Date (the response time when
// Date is missing or unparsable). The caller has already checked that there is no explicit freshness
// (an invalid Expires counts as explicit, and already stale).
func heuristicLifetime(status int, h http.Header, responseTime time.Time) (time.Duration, bool) {
	if !heuristicStatus(status) {
		return 0, false
	}
	lm, err := http.ParseTime(h.Get("Last-Modified"))
	if err != nil {
		return 0, false
	}
	date := responseTime
	if d, err := http.ParseTime(h.Get("Date")); err == nil {
		date = d
	}
	if !lm.Before(date) {
		return 0, false
	}
	return min(date.Sub(lm)/heuristicFraction, heuristicCap), true
}

// heuristicStatus reports the statuses RFC 9110 §15.1 calls heuristically cacheable. 206 is one of
// them, though the edge never stores it (storableStatus).
func heuristicStatus(status int) bool {
	switch status {
	case http.StatusOK, http.StatusNonAuthoritativeInfo, http.StatusNoContent, http.StatusPartialContent,
		http.StatusMultipleChoices, http.StatusMovedPermanently, http.StatusPermanentRedirect, http.StatusNotFound,
		http.StatusMethodNotAllowed, http.StatusGone, http.StatusRequestURITooLong, http.StatusNotImplemented:
		return true
	}
	return false
}

// staleRules say whether and how long a stored response may be served stale (RFC 5861).
type staleRules struct {
	whileRevalidate time.Duration // stale-while-revalidate
	ifError         time.Duration // stale-if-error
	// forbidden: must-revalidate, proxy-revalidate or s-maxage (which carries proxy-revalidate's
	// meaning for a shared cache, RFC 9111 §5.2.2.10) rule out serving it stale at all, whatever
	// the two above say (RFC 9111 §4.2.4).
	forbidden bool
}

// staleRulesOf reads the stale rules of a response from the directives that govern it
// (CDN-Cache-Control when valid, else Cache-Control).
func staleRulesOf(h http.Header) staleRules {
	cc, _ := responseDirectives(h)
	var r staleRules
	r.whileRevalidate, _ = cc.seconds("stale-while-revalidate")
	r.ifError, _ = cc.seconds("stale-if-error")
	r.forbidden = cc.has("must-revalidate") || cc.has("proxy-revalidate") || cc.has("s-maxage")
	return r
}

// errorStatus reports the upstream statuses RFC 5861 §4 counts as errors for stale-if-error.
func errorStatus(status int) bool {
	switch status {
	case http.StatusInternalServerError, http.StatusBadGateway, http.StatusServiceUnavailable,
		http.StatusGatewayTimeout:
		return true
	}
	return false
}

// decision is what may be done with an upstream response to a GET.
type decision struct {
	store    bool          // keep it in the cache
	share    bool          // hand it to the waiters of a collapsed fill
	lifetime time.Duration // freshness lifetime, explicit or heuristic; meaningful when store is true
	why      string        // reason it is not stored, for debug logs
}

// decide applies the storage rules of the package documentation to a response with status and
// header, received at responseTime for req.
func decide(req *http.Request, status int, h http.Header, responseTime time.Time) decision {
	cc, targeted := responseDirectives(h)
	lifetime, explicit := freshnessLifetime(cc, targeted, h, responseTime)
	var why string
	// private: a qualified private="field" would allow storing the rest; treating it as plain private
	// is the conservative reading until something needs more.
	switch {
	case cc.has("no-store"):
		why = "no-store"
	case cc.has("private"):
		why = "private"
	case len(h.Values("Set-Cookie")) > 0:
		why = "set-cookie"
	case varyStar(h):
		why = "vary *"
	case req.Header.Get("Authorization") != "" && !cc.has("public") && !cc.has("s-maxage") && !cc.has("must-revalidate"):
		why = "authorization"
	case cc.has("no-cache"):
		// Storing would be allowed, but every use would need a revalidation; not worth it yet.
		why = "no-cache"
	case !explicit:
		if lifetime, explicit = heuristicLifetime(status, h, responseTime); !explicit {
			why = "no explicit freshness"
		}
	case lifetime <= 0:
		why = "already stale"
	}
	reusable := why == ""
	d := decision{lifetime: lifetime, why: why}
	d.store = reusable && storableStatus(status)
	if reusable && !d.store {
		d.why = "status " + strconv.Itoa(status)
	}
	// A 304 or 206 answers a conditional or ranged request; fills send neither, so such a response
	// fits no waiter. An upstream 5xx is shared so that a failing upstream fails waiters fast instead
	// of receiving one request per waiter; no-store does not prevent that (the origin marks its 503s
	// no-store), since the response lives only as long as the fill and is never kept.
	d.share = reusable && status != http.StatusNotModified && status != http.StatusPartialContent ||
		status >= 500 && !cc.has("private") && len(h.Values("Set-Cookie")) == 0
	return d
}

// storableStatus reports the statuses the edge stores (given explicit or heuristic freshness, which
// it always requires). RFC 9111 §3 lets a cache store any final status that carries explicit
// freshness; these are the ones a GET can usefully get again: the heuristically cacheable statuses of
// RFC 9110 §15.1 except 206 and 501 (200, 203, 204, 300, 301, 308, 404, 405, 410, 414) and the temporary
// redirects 302 and 307, which the origin uses for a lecture's unversioned entry point. 206 and 304
// answer one client's Range or conditional and are never stored; neither is a 5xx, which is what
// stale-if-error answers with a stored response instead.
func storableStatus(status int) bool {
	switch status {
	case http.StatusPartialContent, http.StatusNotImplemented:
		return false
	case http.StatusFound, http.StatusTemporaryRedirect:
		return true
	}
	return heuristicStatus(status)
}

func varyStar(h http.Header) bool {
	for _, f := range varyFields(h) {
		if f == "*" {
			return true
		}
	}
	return false
}

// varyFields returns the canonical header names a response varies on.
func varyFields(h http.Header) []string {
	var out []string
	for _, line := range h.Values("Vary") {
		for _, f := range strings.Split(line, ",") {
			if f = strings.TrimSpace(f); f != "" {
				out = append(out, http.CanonicalHeaderKey(f))
			}
		}
	}
	return out
}

// parseAge reads an Age header; anything but a non-negative integer is ignored.
func parseAge(h http.Header) time.Duration {
	v := h.Get("Age")
	if v == "" {
		return 0
	}
	return parseDeltaSeconds(strings.TrimSpace(v))
}
