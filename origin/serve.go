package origin

import (
	"io"
	"net/http"
	"strconv"
	"time"

	"github.com/lectern/lectern/internal/objstore"
)

// Cache-Control of every versioned object: a year is the conventional "forever", and immutable stops
// browsers revalidating on reload. A student's signed request gets the same lifetime but private: a
// shared cache that does not know tokens must not go on serving a token URL after the token expires.
var (
	immutableCC = []string{"public, max-age=31536000, immutable"}
	privateCC   = []string{"private, max-age=31536000, immutable"}
)

// serveObject answers GET or HEAD for a versioned object: from the hot cache when it is there,
// otherwise a whole-object GET joins (or starts) the one storage read for the key, and HEAD and
// ranged requests read storage themselves.
func (s *Server) serveObject(w http.ResponseWriter, r *http.Request, key string, private bool) result {
	cc := immutableCC
	if private {
		cc = privateCC
	}
	if o, ok := s.hot.get(key, s.now()); ok {
		s.stats.HotHits.Add(1)
		var res result
		if o.missing {
			res = s.notFound(w, r)
		} else {
			res = serveHot(w, r, o, cc)
		}
		res.label = "hit"
		return res
	}
	s.stats.HotMisses.Add(1)
	if r.Method == http.MethodHead || r.Header.Get("Range") != "" {
		res := s.serveDirect(w, r, key, cc)
		res.label = "miss"
		return res
	}
	label := "miss"
	f, leader := s.flights.join(key)
	if leader {
		go s.runFill(f, s.purge.Current())
	} else {
		s.stats.Collapsed.Add(1)
		label = "collapsed"
	}
	res := s.serveFill(w, r, f, cc)
	res.label = label
	return res
}

// serveHot answers from a whole object in memory.
func serveHot(w http.ResponseWriter, r *http.Request, o *object, cc []string) result {
	h := w.Header()
	o.setHeaders(h, cc)
	if status := checkPreconditions(r, o.attrs); status != 0 {
		return result{status: writePreconditionResult(w, r, status)}
	}
	if r.Method == http.MethodHead {
		h["Content-Length"] = o.length
		w.WriteHeader(http.StatusOK)
		return result{status: http.StatusOK}
	}
	if rh := r.Header.Get("Range"); rh != "" {
		if spec, ok := parseRange(rh); ok && ifRangeMatches(r.Header.Get("If-Range"), o.attrs) {
			off, n, ok := spec.resolve(o.attrs.Size)
			if !ok {
				return rangeNotSatisfiable(w, r, o.attrs.Size)
			}
			h.Set("Content-Range", contentRange(off, n, o.attrs.Size))
			h.Set("Content-Length", itoa(n))
			w.WriteHeader(http.StatusPartialContent)
			written, _ := w.Write(o.body[off : off+n])
			return result{status: http.StatusPartialContent, bytes: int64(written)}
		}
	}
	h["Content-Length"] = o.length
	w.WriteHeader(http.StatusOK)
	n, _ := w.Write(o.body)
	return result{status: http.StatusOK, bytes: int64(n)}
}

// serveDirect answers from storage for this request alone (HEAD, ranges, objects too big to keep
// hot). It holds one storage slot until its body is sent.
func (s *Server) serveDirect(w http.ResponseWriter, r *http.Request, key string, cc []string) result {
	release, err := s.admit(r.Context())
	if err != nil {
		return s.storageFailed(w, r, key, err)
	}
	defer release()
	if r.Method == http.MethodHead {
		return s.directHead(w, r, key, cc)
	}
	return s.directGet(w, r, key, cc)
}

// directHead answers HEAD from the object's attributes alone; storage never opens the body. A Range
// on a HEAD is ignored (RFC 9110 lets a server do so), and the full-size headers are returned.
func (s *Server) directHead(w http.ResponseWriter, r *http.Request, key string, cc []string) result {
	attrs, err := s.head(r.Context(), key)
	if err != nil {
		return s.storageFailed(w, r, key, err)
	}
	setObjectHeaders(w.Header(), key, attrs, cc)
	if status := checkPreconditions(r, attrs); status != 0 {
		return result{status: writePreconditionResult(w, r, status)}
	}
	w.Header().Set("Content-Length", itoa(attrs.Size))
	w.WriteHeader(http.StatusOK)
	return result{status: http.StatusOK}
}

// directGet reads the object, or just the requested range, with one storage call in the common
// cases: the attributes that conditional requests need come back with the body.
func (s *Server) directGet(w http.ResponseWriter, r *http.Request, key string, cc []string) result {
	ctx := r.Context()
	spec, ranged := parseRange(r.Header.Get("Range"))

	var (
		body  io.ReadCloser
		attrs objstore.Attrs
		err   error
	)
	switch {
	case !ranged:
		body, attrs, err = s.get(ctx, key)
	case spec.suffix:
		// The start of a suffix range depends on the size, so the size comes first.
		attrs, err = s.head(ctx, key)
	default:
		body, attrs, err = s.getRange(ctx, key, spec.start, spec.length())
		if objstore.IsInvalidRange(err) {
			// Past the end: the 416 needs the size, which the failed read did not return.
			attrs, err = s.head(ctx, key)
		}
	}
	if err != nil {
		return s.storageFailed(w, r, key, err)
	}
	// body changes below; the closure closes whichever is current.
	defer func() {
		if body != nil {
			body.Close()
		}
	}()

	setObjectHeaders(w.Header(), key, attrs, cc)
	if status := checkPreconditions(r, attrs); status != 0 {
		return result{status: writePreconditionResult(w, r, status)}
	}

	if ranged && !ifRangeMatches(r.Header.Get("If-Range"), attrs) {
		// The client's copy is outdated, so a part of the current object would corrupt it: send it all.
		ranged = false
		if body != nil {
			body.Close()
			body = nil
		}
		body, attrs, err = s.get(ctx, key)
		if err != nil {
			return s.storageFailed(w, r, key, err)
		}
		setObjectHeaders(w.Header(), key, attrs, cc)
	}

	if !ranged {
		w.Header().Set("Content-Length", itoa(attrs.Size))
		w.WriteHeader(http.StatusOK)
		return result{status: http.StatusOK, bytes: s.copyBody(w, r, key, body)}
	}

	off, n, ok := spec.resolve(attrs.Size)
	if !ok {
		return rangeNotSatisfiable(w, r, attrs.Size)
	}
	if body == nil {
		body, _, err = s.getRange(ctx, key, off, n)
		if err != nil {
			return s.storageFailed(w, r, key, err)
		}
	}
	h := w.Header()
	h.Set("Content-Range", contentRange(off, n, attrs.Size))
	h.Set("Content-Length", itoa(n))
	w.WriteHeader(http.StatusPartialContent)
	return result{status: http.StatusPartialContent, bytes: s.copyBody(w, r, key, body)}
}

func contentRange(off, n, size int64) string {
	return "bytes " + itoa(off) + "-" + itoa(off+n-1) + "/" + itoa(size)
}

func rangeNotSatisfiable(w http.ResponseWriter, r *http.Request, size int64) result {
	w.Header().Set("Content-Range", "bytes */"+itoa(size))
	// The 416 is about this request's Range, not the object: no Cache-Control from the object.
	w.Header().Set("Cache-Control", "no-store")
	return textResult(writeText(w, r, http.StatusRequestedRangeNotSatisfiable, "range not satisfiable\n"))
}

// copyBody streams the body to the client. io.Copy lets the ResponseWriter use sendfile when storage
// hands out a file; nothing is buffered beyond io.Copy's own buffer.
func (s *Server) copyBody(w http.ResponseWriter, r *http.Request, key string, body io.Reader) int64 {
	n, err := io.Copy(w, body)
	if err != nil && r.Context().Err() == nil {
		// Headers are gone already; the short body tells the client something broke.
		s.storageFailure(key, err)
	}
	return n
}

func setObjectHeaders(h http.Header, key string, attrs objstore.Attrs, cc []string) {
	h.Set("Content-Type", contentType(key, attrs.ContentType))
	h["Cache-Control"] = cc
	h["Accept-Ranges"] = acceptRanges
	if attrs.ETag != "" {
		h.Set("Etag", `"`+attrs.ETag+`"`)
	} else {
		h.Del("Etag")
	}
	if !attrs.ModTime.IsZero() {
		h.Set("Last-Modified", attrs.ModTime.UTC().Format(http.TimeFormat))
	} else {
		h.Del("Last-Modified")
	}
}

// writePreconditionResult writes a 304 or a 412 after setObjectHeaders.
func writePreconditionResult(w http.ResponseWriter, r *http.Request, status int) int {
	h := w.Header()
	if status == http.StatusNotModified {
		// RFC 9110 §15.4.5: a 304 carries the validators and caching headers, not representation
		// metadata, and Last-Modified adds nothing when there is an ETag.
		h.Del("Content-Type")
		h.Del("Content-Length")
		if h.Get("Etag") != "" {
			h.Del("Last-Modified")
		}
		w.WriteHeader(status)
		return status
	}
	st, _ := writeText(w, r, status, "precondition failed\n")
	return st
}

// checkPreconditions evaluates the conditional headers in the order of RFC 9110 §13.2.2 and returns
// 304, 412 or 0 (serve normally).
func checkPreconditions(r *http.Request, attrs objstore.Attrs) int {
	h := r.Header
	if h["If-Match"] == nil && h["If-None-Match"] == nil && h["If-Modified-Since"] == nil && h["If-Unmodified-Since"] == nil {
		return 0 // the common case, without building the quoted tag
	}
	etag := ""
	if attrs.ETag != "" {
		etag = `"` + attrs.ETag + `"`
	}
	mod := attrs.ModTime.Truncate(time.Second)

	if im := r.Header.Get("If-Match"); im != "" {
		if !etagListMatches(im, etag, true) {
			return http.StatusPreconditionFailed
		}
	} else if ius, ok := parseHTTPDate(r.Header.Get("If-Unmodified-Since")); ok && !mod.IsZero() && mod.After(ius) {
		return http.StatusPreconditionFailed
	}

	if inm := r.Header.Get("If-None-Match"); inm != "" {
		if etagListMatches(inm, etag, false) {
			return http.StatusNotModified
		}
	} else if ims, ok := parseHTTPDate(r.Header.Get("If-Modified-Since")); ok && !mod.IsZero() && !mod.After(ims) {
		return http.StatusNotModified
	}
	return 0
}

// etagListMatches reports whether a comma-separated If-Match / If-None-Match value matches etag, with
// strong comparison (If-Match) or weak comparison (If-None-Match). "*" matches any existing object.
func etagListMatches(list, etag string, strong bool) bool {
	for len(list) > 0 {
		var tag string
		tag, list = nextETag(list)
		if tag == "*" {
			return true
		}
		if etag == "" || tag == "" {
			continue
		}
		if strong {
			if tag == etag && tag[0] == '"' {
				return true
			}
			continue
		}
		if trimWeak(tag) == trimWeak(etag) {
			return true
		}
	}
	return false
}

// nextETag splits the first entity tag off a list. Commas inside quotes belong to the tag.
func nextETag(list string) (tag, rest string) {
	i := 0
	for i < len(list) && (list[i] == ' ' || list[i] == '\t' || list[i] == ',') {
		i++
	}
	list = list[i:]
	inQuote := false
	for j := 0; j < len(list); j++ {
		switch list[j] {
		case '"':
			inQuote = !inQuote
		case ',':
			if !inQuote {
				return trimSpace(list[:j]), list[j+1:]
			}
		}
	}
	return trimSpace(list), ""
}

func trimWeak(tag string) string {
	if len(tag) > 2 && tag[0] == 'W' && tag[1] == '/' {
		return tag[2:]
	}
	return tag
}

// ifRangeMatches reports whether a Range may be honoured: no If-Range, or one naming the current
// object by strong ETag or by its exact Last-Modified date.
func ifRangeMatches(ifRange string, attrs objstore.Attrs) bool {
	ifRange = trimSpace(ifRange)
	if ifRange == "" {
		return true
	}
	if ifRange[0] == '"' || len(ifRange) > 1 && ifRange[:2] == "W/" {
		return attrs.ETag != "" && ifRange == `"`+attrs.ETag+`"`
	}
	t, ok := parseHTTPDate(ifRange)
	return ok && !attrs.ModTime.IsZero() && attrs.ModTime.Truncate(time.Second).Equal(t)
}

func parseHTTPDate(v string) (time.Time, bool) {
	if v == "" {
		return time.Time{}, false
	}
	t, err := http.ParseTime(v)
	return t, err == nil
}

func trimSpace(s string) string {
	for len(s) > 0 && (s[0] == ' ' || s[0] == '\t') {
		s = s[1:]
	}
	for len(s) > 0 && (s[len(s)-1] == ' ' || s[len(s)-1] == '\t') {
		s = s[:len(s)-1]
	}
	return s
}

func itoa(n int64) string { return strconv.FormatInt(n, 10) }
