package origin

import (
	"strings"
	"testing"

	"github.com/lectern/lectern/internal/objstore"
)

// FuzzParseRange checks the Range parser against the rules it must keep for any header and object
// size: a parsed range resolves inside the object or not at all, an explicit range that resolves
// keeps its start, and the resolved range spelled back as a header resolves to itself.
// Seeds: testdata/fuzz/FuzzParseRange.
func FuzzParseRange(f *testing.F) {
	f.Add("bytes=0-99", int64(1000))
	f.Add("bytes=-500", int64(100))
	f.Fuzz(func(t *testing.T, header string, size int64) {
		spec, ok := parseRange(header)
		if !ok {
			return
		}
		if strings.Count(header, ",") > 0 {
			t.Fatalf("%q: a multi-range header was parsed as one range", header)
		}
		if size < 0 {
			return // sizes come from storage and are never negative
		}
		off, n, ok := spec.resolve(size)
		if !ok {
			if !spec.suffix && spec.start < size {
				t.Fatalf("%q on %d bytes: start inside the object but unsatisfiable", header, size)
			}
			return
		}
		if off < 0 || n < 1 || off+n > size || off+n < off {
			t.Fatalf("%q on %d bytes: resolved to off=%d n=%d, outside the object", header, size, off, n)
		}
		if !spec.suffix && off != spec.start {
			t.Fatalf("%q: start %d became %d", header, spec.start, off)
		}
		again, ok := parseRange("bytes=" + itoa(off) + "-" + itoa(off+n-1))
		if !ok {
			t.Fatalf("%q: the resolved range does not parse back", header)
		}
		if o2, n2, ok := again.resolve(size); !ok || o2 != off || n2 != n {
			t.Fatalf("%q: resolved range %d+%d resolves to %d+%d (%v)", header, off, n, o2, n2, ok)
		}
	})
}

// FuzzObjectKey checks that whatever URL path is accepted names a key under hls/ that storage itself
// accepts and that has no dot segments: the path check is the only thing between a request and the
// bucket. Seeds: testdata/fuzz/FuzzObjectKey.
func FuzzObjectKey(f *testing.F) {
	f.Add("/hls/abc123/v1/720p/seg_00001.m4s")
	f.Add("/hls/abc/v1/../../sources/abc/x")
	f.Fuzz(func(t *testing.T, p string) {
		key, ok := objectKey(p)
		if !ok {
			return
		}
		if !strings.HasPrefix(key, "hls/") || "/"+key != p {
			t.Fatalf("%q: key %q is not the path under hls/", p, key)
		}
		if err := objstore.ValidateKey(key); err != nil {
			t.Fatalf("%q: accepted, but storage refuses key %q: %v", p, key, err)
		}
		for _, seg := range strings.Split(key, "/") {
			if seg == "" || seg == "." || seg == ".." || strings.ContainsAny(seg, "\\\x00%") {
				t.Fatalf("%q: key %q has segment %q", p, key, seg)
			}
		}
		if _, ok := lectureOf(p); !ok {
			t.Fatalf("%q: an object path without a lecture", p)
		}
	})
}
