package cdn

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
)

// via is this hop's Via entry (RFC 9110 §7.6.3).
const via = "1.1 lectern-edge"

// X-Cache values; see the package documentation.
const (
	cacheHit         = "HIT"
	cacheMiss        = "MISS"
	cacheRevalidated = "REVALIDATED"
	cacheBypass      = "BYPASS"
	cacheStale       = "STALE"
)

// isHopByHop reports whether a canonical header name describes one connection and so must not be
// forwarded (RFC 9110 §7.6.1). Proxy-* headers (Proxy-Authorization, Proxy-Connection, ...) belong
// to the hop as well.
func isHopByHop(name string) bool {
	switch name {
	case "Connection", "Keep-Alive", "Te", "Trailer", "Transfer-Encoding", "Upgrade":
		return true
	}
	return strings.HasPrefix(name, "Proxy-")
}

// endToEnd returns a copy of h without hop-by-hop headers, including those that Connection names.
func endToEnd(h http.Header) http.Header {
	out := h.Clone()
	if out == nil {
		return http.Header{}
	}
	for _, line := range h.Values("Connection") {
		for _, name := range strings.Split(line, ",") {
			if name = strings.TrimSpace(name); name != "" {
				out.Del(name)
			}
		}
	}
	for name := range out {
		if isHopByHop(name) {
			delete(out, name)
		}
	}
	return out
}

// clientSpecific lists request headers that make a response fit only the request that sent them.
// Fills drop them, since the edge always fetches the whole, unconditional object.
func clientSpecific() []string {
	return []string{"Range", "If-Range", "If-None-Match", "If-Modified-Since", "If-Match", "If-Unmodified-Since"}
}

func hasClientSpecific(h http.Header) bool {
	for _, name := range clientSpecific() {
		if h.Get(name) != "" {
			return true
		}
	}
	return false
}

// upstreamRequest builds the request to send upstream for r: same method, path and query under the
// upstream's base URL, end-to-end headers, our Via, the client's address and the edge's own
// credential (Config.OriginSecret) when it has one.
func (e *Edge) upstreamRequest(ctx context.Context, r *http.Request, method string, body io.Reader) (*http.Request, error) {
	target := e.upstream.Scheme + "://" + e.upstream.Host + joinPath(e.upstream.EscapedPath(), r.URL.EscapedPath())
	if r.URL.RawQuery != "" {
		target += "?" + r.URL.RawQuery
	}
	out, err := http.NewRequestWithContext(ctx, method, target, body)
	if err != nil {
		return nil, err
	}
	out.Header = endToEnd(r.Header)
	out.Header.Del(peerHeader) // for this edge's peers only; an upstream edge must not skip its own group
	if e.originAuth != "" {
		// The client's own Authorization (a guess, or a token meant for someone else) must never
		// reach the upstream in place of the edge's credential. The request r keeps it, so the cache
		// rules still see what the client sent.
		out.Header.Set("Authorization", e.originAuth)
	}
	out.Header.Add("Via", via)
	if ip, _, err := net.SplitHostPort(r.RemoteAddr); err == nil {
		out.Header.Add("X-Forwarded-For", ip)
	}
	if body != nil {
		out.ContentLength = r.ContentLength
	}
	return out, nil
}

func joinPath(base, p string) string {
	switch {
	case base == "" || base == "/":
		return p
	case strings.HasSuffix(base, "/") && strings.HasPrefix(p, "/"):
		return base + p[1:]
	case !strings.HasSuffix(base, "/") && !strings.HasPrefix(p, "/"):
		return base + "/" + p
	default:
		return base + p
	}
}

// passThrough forwards r as it is and streams the answer back, with no cache involvement.
func (e *Edge) passThrough(w http.ResponseWriter, r *http.Request, label string, cs cacheStatus) result {
	var body io.Reader
	if r.ContentLength != 0 {
		body = r.Body
	}
	req, err := e.upstreamRequest(r.Context(), r, r.Method, body)
	if err != nil {
		return e.badGateway(w, r, label, err)
	}
	resp, err := e.upstreamDo(req)
	if err != nil {
		if r.Context().Err() == nil {
			e.stats.UpstreamErrors.Add(1)
		}
		return e.badGateway(w, r, label, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode >= 500 {
		e.stats.UpstreamErrors.Add(1)
	}
	cs.fwdStatus = resp.StatusCode
	if isUnsafe(r.Method) && resp.StatusCode >= 200 && resp.StatusCode < 400 {
		// RFC 9111 §4.4: a successful unsafe request may have changed the resource, and the ones its
		// Location and Content-Location name. Forgotten before the client hears back, so its next
		// GET cannot be answered from an old copy.
		e.forget(cacheKey(r.URL))
		for _, name := range []string{"Location", "Content-Location"} {
			if key, ok := sameOriginKey(r, resp.Header.Get(name)); ok {
				e.forget(key)
			}
		}
	}
	return e.writeStream(w, r, resp, nil, label, cs)
}

// sameOriginKey returns the cache key of ref, a URI reference in an answer to r, when it has the
// origin (scheme, host and port) of r's target URI: RFC 9111 §4.4 forbids invalidating another
// origin's resources on the word of this one. A relative reference is resolved against r's URL.
func sameOriginKey(r *http.Request, ref string) (string, bool) {
	if ref == "" {
		return "", false
	}
	u, err := url.Parse(ref)
	if err != nil {
		return "", false
	}
	scheme := "http"
	if r.TLS != nil {
		scheme = "https"
	}
	target := &url.URL{Scheme: scheme, Host: r.Host, Path: r.URL.Path, RawPath: r.URL.RawPath, RawQuery: r.URL.RawQuery}
	u = target.ResolveReference(u)
	if !strings.EqualFold(u.Scheme, scheme) || !strings.EqualFold(u.Host, r.Host) {
		return "", false
	}
	return cacheKey(u), true
}

// writeStream copies an upstream response to the client as it arrives, after prefix (bytes already
// read while deciding whether to cache it).
func (e *Edge) writeStream(w http.ResponseWriter, r *http.Request, resp *http.Response, prefix []byte, label string,
	cs cacheStatus) result {
	h := w.Header()
	for k, vs := range endToEnd(resp.Header) {
		h[k] = vs
	}
	h.Del("Content-Length")
	if resp.ContentLength >= 0 {
		h.Set("Content-Length", strconv.FormatInt(resp.ContentLength, 10))
	}
	h.Add("Via", via)
	h.Set("X-Cache", label)
	h.Add("Cache-Status", cs.member(0))
	w.WriteHeader(resp.StatusCode)
	res := result{status: resp.StatusCode, label: label}
	if r.Method == http.MethodHead {
		return res
	}
	n, err := w.Write(prefix)
	res.bytes = int64(n)
	body := &readErr{r: resp.Body}
	if err == nil {
		var m int64
		m, err = io.Copy(w, body)
		res.bytes += m
	}
	if err != nil && r.Context().Err() == nil {
		e.log.Warn("edge stream interrupted", slog.String("path", r.URL.Path), slog.Int64("bytes", res.bytes),
			slog.Any("err", err))
	}
	// Headers are out: the connection is dropped, which tells the client, even when the response has
	// no Content-Length (a clean end of the chunked body would look complete).
	res.abort = body.err != nil
	return res
}

// readErr remembers the error of its reader other than io.EOF, so a copy's read failure can be told
// from its write failure.
type readErr struct {
	r   io.Reader
	err error
}

func (b *readErr) Read(p []byte) (int, error) {
	n, err := b.r.Read(p)
	if err != nil && err != io.EOF {
		b.err = err
	}
	return n, err
}

var (
	// errFillTimeout marks a fill that Config.FillTimeout cut short.
	errFillTimeout = errors.New("cdn: upstream did not answer within the fill timeout")
	// errMustRevalidate marks a fill that could not revalidate a stale entry which must not be
	// served stale (must-revalidate, proxy-revalidate, s-maxage).
	errMustRevalidate = errors.New("cdn: the stale entry must be revalidated and the upstream failed")
)

// gatewayStatus is the status of the edge's answer to a failed upstream exchange: 504 Gateway
// Timeout when the upstream did not answer in time (RFC 9110 §15.6.5) or when a stored response
// must be revalidated and could not be (RFC 9111 §5.2.2.2 asks a disconnected cache for 504 there),
// else 502 Bad Gateway: the upstream could not be reached or its answer was broken (§15.6.3).
func gatewayStatus(err error) int {
	var ne net.Error
	if errors.Is(err, errFillTimeout) || errors.Is(err, errMustRevalidate) || errors.As(err, &ne) && ne.Timeout() {
		return http.StatusGatewayTimeout
	}
	return http.StatusBadGateway
}

// badGateway answers a failed upstream exchange with 502 or 504 (gatewayStatus). A cancelled client
// gets nothing: it is gone. The answer is the edge's own, not an upstream's or a stored one, so it
// has no Cache-Status (RFC 9211 §2).
func (e *Edge) badGateway(w http.ResponseWriter, r *http.Request, label string, err error) result {
	if r.Context().Err() != nil {
		return result{status: statusClientClosed, label: label}
	}
	e.log.Warn("edge upstream failed", slog.String("path", r.URL.Path), slog.Any("err", err))
	h := w.Header()
	h.Set("Cache-Control", "no-store")
	h.Set("Via", via)
	h.Set("X-Cache", label)
	status, text := gatewayStatus(err), "bad gateway: upstream unavailable\n"
	if status == http.StatusGatewayTimeout {
		text = "gateway timeout: upstream unavailable\n"
	}
	return writeText(w, r, status, text, label)
}

// notCached answers a request with only-if-cached that no stored response can satisfy: 504, without
// asking the upstream (RFC 9111 §5.2.1.7). Like badGateway's, the answer is the edge's own.
func (e *Edge) notCached(w http.ResponseWriter, r *http.Request) result {
	h := w.Header()
	h.Set("Cache-Control", "no-store")
	h.Set("Via", via)
	h.Set("X-Cache", cacheMiss)
	return writeText(w, r, http.StatusGatewayTimeout, "gateway timeout: not cached (only-if-cached)\n", cacheMiss)
}

// statusClientClosed is nginx's 499: the client went away before an answer. Only logs see it.
const statusClientClosed = 499

func writeText(w http.ResponseWriter, r *http.Request, status int, body, label string) result {
	h := w.Header()
	h.Set("Content-Type", "text/plain; charset=utf-8")
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Content-Length", strconv.Itoa(len(body)))
	// Players load from another origin than their page: without this a browser hides the status
	// (503 shed, 502, 504, 403) from the player, which then sees only a network error.
	h.Set("Access-Control-Allow-Origin", "*")
	w.WriteHeader(status)
	if r.Method == http.MethodHead {
		return result{status: status, label: label}
	}
	n, _ := io.WriteString(w, body)
	return result{status: status, bytes: int64(n), label: label}
}
