package origin

import (
	"strconv"
	"strings"
)

// byteRange is one parsed "bytes=" range. Multi-range requests are not supported: players never send
// them, and answering with the whole object is always allowed.
type byteRange struct {
	start, end int64 // end is -1 for an open range ("500-")
	suffix     bool  // "-500": the last end bytes; start is unused
}

// parseRange parses a Range header holding exactly one byte range. ok is false for no header, a
// malformed one, another unit, or several ranges: all of which are answered with the full object.
func parseRange(h string) (byteRange, bool) {
	h = trimSpace(h)
	if len(h) < 6 || !strings.EqualFold(h[:6], "bytes=") {
		return byteRange{}, false
	}
	spec := trimSpace(h[6:])
	if strings.Contains(spec, ",") {
		return byteRange{}, false
	}
	first, last, found := strings.Cut(spec, "-")
	if !found {
		return byteRange{}, false
	}
	first, last = trimSpace(first), trimSpace(last)
	if first == "" {
		n, ok := parseDigits(last)
		if !ok {
			return byteRange{}, false
		}
		return byteRange{end: n, suffix: true}, true
	}
	start, ok := parseDigits(first)
	if !ok {
		return byteRange{}, false
	}
	if last == "" {
		return byteRange{start: start, end: -1}, true
	}
	end, ok := parseDigits(last)
	if !ok || end < start {
		return byteRange{}, false
	}
	return byteRange{start: start, end: end}, true
}

// parseDigits accepts only ASCII digits: strconv alone would also take a sign.
func parseDigits(s string) (int64, bool) {
	if s == "" {
		return 0, false
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return 0, false
		}
	}
	n, err := strconv.ParseInt(s, 10, 64)
	return n, err == nil
}

// length is the byte count to ask storage for before the size is known; -1 means to the end.
func (b byteRange) length() int64 {
	if b.end < 0 {
		return -1
	}
	return b.end - b.start + 1
}

// resolve maps the range onto an object of size bytes. ok is false when the range is unsatisfiable
// (RFC 9110 §14.1.1: a start at or past the end, or an empty suffix).
func (b byteRange) resolve(size int64) (off, n int64, ok bool) {
	if b.suffix {
		if b.end == 0 || size == 0 {
			return 0, 0, false
		}
		n = min(b.end, size)
		return size - n, n, true
	}
	if b.start >= size {
		return 0, 0, false
	}
	end := b.end
	if end < 0 || end >= size {
		end = size - 1
	}
	return b.start, end - b.start + 1, true
}
