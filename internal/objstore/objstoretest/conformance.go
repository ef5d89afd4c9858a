// Package objstoretest is the one conformance suite every objstore driver must pass. It checks the
// contract written on objstore.Driver through *objstore.Bucket, so a driver's test is a few lines:
//
//	func TestConformance(t *testing.T) {
//		objstoretest.RunConformance(t, func(t *testing.T) *objstore.Bucket { ... a fresh, empty bucket ... })
//	}
//
// # Contracts it pins down
//
//   - Reads: offset == size gives an empty body, offset > size IsInvalidRange, ranges past the end are
//     clamped, Attrs always describe the whole object.
//   - List: plain string prefix as in S3 ("a/b" matches "a/bc"), recursive, sorted by key.
//   - Writes are all or nothing: a failing reader, a cancelled context or a size that lies leave the
//     previous state; concurrent writers of one key leave exactly one complete version.
package objstoretest

import (
	"bytes"
	"crypto/md5"
	"encoding/hex"
	"io"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/lectern/lectern/internal/objstore"
)

// RunConformance runs the suite. open must return a fresh, empty bucket for each call; it is called from
// parallel subtests and may register cleanups on the t it is given. The suite closes the bucket.
func RunConformance(t *testing.T, open func(t *testing.T) *objstore.Bucket) {
	tests := []struct {
		name string
		fn   func(t *testing.T, b *objstore.Bucket)
	}{
		{"RoundTrip", testRoundTrip},
		{"Overwrite", testOverwrite},
		{"Attrs", testAttrs},
		{"Ranges", testRanges},
		{"EmptyObjectRanges", testEmptyObjectRanges},
		{"NotFound", testNotFound},
		{"Delete", testDelete},
		{"List", testList},
		{"DeletePrefix", testDeletePrefix},
		{"InvalidKeys", testInvalidKeys},
		{"UnusualKeys", testUnusualKeys},
		{"PutFile", testPutFile},
		{"ConcurrentPutsOneKey", testConcurrentPuts},
		{"FailingReaderLeavesNothing", testFailingReader},
		{"CancelledPutLeavesNothing", testCancelledPut},
		{"SizeMismatchLeavesNothing", testSizeMismatch},
		{"Ping", testPing},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			b := open(t)
			t.Cleanup(func() {
				if err := b.Close(); err != nil {
					t.Errorf("Close: %v", err)
				}
			})
			tc.fn(t, b)
		})
	}
}

func testRoundTrip(t *testing.T, b *objstore.Bucket) {
	for _, size := range []int{0, 1, 5<<20 + 3} {
		for _, known := range []bool{true, false} {
			name := sizeName(size) + map[bool]string{true: "/known-size", false: "/unknown-size"}[known]
			t.Run(name, func(t *testing.T) {
				ctx := t.Context()
				data := randBytes(size)
				key := "rt/" + strings.ReplaceAll(name, "/", "-")
				n := int64(len(data))
				if !known {
					n = -1
				}
				if err := b.Put(ctx, key, onlyReader{bytes.NewReader(data)}, n, objstore.PutOptions{}); err != nil {
					t.Fatalf("Put: %v", err)
				}
				got, a := mustGet(t, b, key)
				if !bytes.Equal(got, data) {
					t.Fatalf("Get returned %d bytes that differ from the %d put", len(got), len(data))
				}
				if a.Size != int64(size) || a.Key != key {
					t.Errorf("Get attrs = %+v, want key %q size %d", a, key, size)
				}
				h := mustHead(t, b, key)
				if h.Size != int64(size) {
					t.Errorf("Head size = %d, want %d", h.Size, size)
				}
				if known && h.ETag != md5hex(data) {
					t.Errorf("ETag = %q, want MD5 %q for a single-part put", h.ETag, md5hex(data))
				}
				if h.ETag == "" || strings.Contains(h.ETag, `"`) {
					t.Errorf("ETag = %q, want bare non-empty value", h.ETag)
				}
			})
		}
	}
}

func testOverwrite(t *testing.T, b *objstore.Bucket) {
	ctx := t.Context()
	mustPut(t, b, "ow/k", []byte("first version, longer"), objstore.PutOptions{ContentType: "text/plain"})
	v2 := []byte("v2")
	mustPut(t, b, "ow/k", v2, objstore.PutOptions{ContentType: "video/mp4"})
	got, a := mustGet(t, b, "ow/k")
	if !bytes.Equal(got, v2) {
		t.Fatalf("after overwrite Get = %q, want %q", got, v2)
	}
	if a.Size != 2 || a.ETag != md5hex(v2) || a.ContentType != "video/mp4" {
		t.Errorf("attrs after overwrite = %+v", a)
	}
	objs, err := b.List(ctx, "ow/")
	if err != nil || len(objs) != 1 {
		t.Errorf("List after overwrite = %v, %v; want one object", keys(objs), err)
	}
}

func testAttrs(t *testing.T, b *objstore.Bucket) {
	ctx := t.Context()
	data := []byte("#EXTM3U\n#EXT-X-VERSION:7\n")
	opts := objstore.PutOptions{
		ContentType:  "application/vnd.apple.mpegurl",
		CacheControl: "public, max-age=31536000, immutable",
	}
	// S3 keeps Last-Modified to the second; allow that plus a little clock noise.
	before := time.Now().Add(-2 * time.Second)
	mustPut(t, b, "attrs/master.m3u8", data, opts)
	after := time.Now().Add(2 * time.Second)

	h := mustHead(t, b, "attrs/master.m3u8")
	want := objstore.Attrs{Key: "attrs/master.m3u8", Size: int64(len(data)), ETag: md5hex(data),
		ContentType: opts.ContentType, CacheControl: opts.CacheControl}
	if h.Key != want.Key || h.Size != want.Size || h.ETag != want.ETag ||
		h.ContentType != want.ContentType || h.CacheControl != want.CacheControl {
		t.Errorf("Head = %+v\nwant %+v", h, want)
	}
	if h.ModTime.Before(before) || h.ModTime.After(after) {
		t.Errorf("ModTime %v not between %v and %v", h.ModTime, before, after)
	}
	_, g := mustGet(t, b, "attrs/master.m3u8")
	if g.Key != h.Key || g.Size != h.Size || g.ETag != h.ETag || g.ContentType != h.ContentType ||
		g.CacheControl != h.CacheControl || !g.ModTime.Equal(h.ModTime) {
		t.Errorf("Get attrs %+v differ from Head %+v", g, h)
	}

	mustPut(t, b, "attrs/plain", []byte("x"), objstore.PutOptions{})
	if h := mustHead(t, b, "attrs/plain"); h.ContentType != objstore.DefaultContentType || h.CacheControl != "" {
		t.Errorf("no options: ContentType %q CacheControl %q, want %q and empty",
			h.ContentType, h.CacheControl, objstore.DefaultContentType)
	}
	if err := b.Put(ctx, "attrs/neg", bytes.NewReader(nil), -2, objstore.PutOptions{}); err == nil {
		t.Errorf("Put with size -2 succeeded")
	}
}

func testRanges(t *testing.T, b *objstore.Bucket) {
	data := randBytes(1000)
	mustPut(t, b, "rng/obj", data, objstore.PutOptions{})
	tests := []struct {
		name           string
		offset, length int64
		want           []byte // nil with invalid
		invalid        bool
	}{
		{"whole", 0, -1, data, false},
		{"first byte", 0, 1, data[:1], false},
		{"middle", 100, 50, data[100:150], false},
		{"to end", 900, -1, data[900:], false},
		{"last byte", 999, 1, data[999:], false},
		{"past end is clamped", 990, 100, data[990:], false},
		{"huge length", 0, math.MaxInt64, data, false},
		{"huge length from middle", 500, math.MaxInt64, data[500:], false},
		{"zero length", 10, 0, []byte{}, false},
		{"offset == size", 1000, -1, []byte{}, false},
		{"offset == size with length", 1000, 10, []byte{}, false},
		{"offset > size", 1001, -1, nil, true},
		{"offset far beyond", 5000, 5, nil, true},
		{"negative offset", -1, -1, nil, true},
		{"length below -1", 0, -2, nil, true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			rc, a, err := b.GetRange(t.Context(), "rng/obj", tc.offset, tc.length)
			if tc.invalid {
				if err == nil {
					rc.Close()
				}
				if !objstore.IsInvalidRange(err) {
					t.Fatalf("GetRange(%d, %d) err = %v, want IsInvalidRange", tc.offset, tc.length, err)
				}
				return
			}
			if err != nil {
				t.Fatalf("GetRange(%d, %d): %v", tc.offset, tc.length, err)
			}
			got := readClose(t, rc)
			if !bytes.Equal(got, tc.want) {
				t.Errorf("GetRange(%d, %d) = %d bytes, want %d (content differs: %v)",
					tc.offset, tc.length, len(got), len(tc.want), !bytes.Equal(got, tc.want))
			}
			if a.Size != 1000 || a.ETag != md5hex(data) {
				t.Errorf("attrs = %+v, want whole-object size 1000 and ETag %s", a, md5hex(data))
			}
		})
	}
}

func testEmptyObjectRanges(t *testing.T, b *objstore.Bucket) {
	mustPut(t, b, "empty", nil, objstore.PutOptions{})
	for _, r := range [][2]int64{{0, -1}, {0, 0}, {0, 10}} {
		rc, a, err := b.GetRange(t.Context(), "empty", r[0], r[1])
		if err != nil {
			t.Errorf("GetRange%v on empty object: %v", r, err)
			continue
		}
		if got := readClose(t, rc); len(got) != 0 || a.Size != 0 {
			t.Errorf("GetRange%v on empty object = %d bytes, size %d", r, len(got), a.Size)
		}
	}
	if _, _, err := b.GetRange(t.Context(), "empty", 1, -1); !objstore.IsInvalidRange(err) {
		t.Errorf("GetRange(1, -1) on empty object err = %v, want IsInvalidRange", err)
	}
}

func testNotFound(t *testing.T, b *objstore.Bucket) {
	ctx := t.Context()
	mustPut(t, b, "nf/obj", []byte("x"), objstore.PutOptions{})
	mustPut(t, b, "nf/dir/x", []byte("x"), objstore.PutOptions{})
	// "nf/obj/child" lies under an object and "nf/dir" is only a prefix: neither is an object.
	for _, key := range []string{"missing", "nf/missing", "nf/obj/child", "nf/dir", "nf/ob"} {
		if _, _, err := b.Get(ctx, key); !objstore.IsNotFound(err) {
			t.Errorf("Get(%q) err = %v, want IsNotFound", key, err)
		}
		if _, _, err := b.GetRange(ctx, key, 5, 10); !objstore.IsNotFound(err) {
			t.Errorf("GetRange(%q) err = %v, want IsNotFound", key, err)
		}
		if _, err := b.Head(ctx, key); !objstore.IsNotFound(err) {
			t.Errorf("Head(%q) err = %v, want IsNotFound", key, err)
		}
	}
}

func testDelete(t *testing.T, b *objstore.Bucket) {
	ctx := t.Context()
	mustPut(t, b, "del/a/b/obj", []byte("x"), objstore.PutOptions{})
	mustPut(t, b, "del/dir/keep", []byte("y"), objstore.PutOptions{})
	for i := range 2 { // the second delete finds nothing, which is not an error
		if err := b.Delete(ctx, "del/a/b/obj"); err != nil {
			t.Fatalf("Delete #%d: %v", i+1, err)
		}
	}
	if _, err := b.Head(ctx, "del/a/b/obj"); !objstore.IsNotFound(err) {
		t.Errorf("Head after Delete err = %v, want IsNotFound", err)
	}
	if err := b.Delete(ctx, "del/never/existed"); err != nil {
		t.Errorf("Delete of a missing key: %v", err)
	}
	if err := b.Delete(ctx, "del/dir"); err != nil { // a prefix, not an object
		t.Errorf("Delete of a prefix: %v", err)
	}
	mustHead(t, b, "del/dir/keep")
	if got := mustList(t, b, "del/"); !slices.Equal(keys(got), []string{"del/dir/keep"}) {
		t.Errorf("List after deletes = %v", keys(got))
	}
}

func testList(t *testing.T, b *objstore.Bucket) {
	all := []string{"l/a-z", "l/a/b/1", "l/a/b/2", "l/a/bc", "l/a/bd/x", "l/b", "lz"}
	contents := map[string][]byte{}
	for i, k := range slices.Backward(all) { // put out of order; List must sort
		contents[k] = bytes.Repeat([]byte{'a' + byte(i)}, 10+i)
		mustPut(t, b, k, contents[k], objstore.PutOptions{ContentType: "text/plain"})
	}
	tests := []struct {
		prefix string
		want   []string
	}{
		{"", all},
		{"l", all},
		{"l/", all[:6]},
		{"l/a", all[:5]}, // "l/a-z" sorts before "l/a/...": '-' < '/'
		{"l/a/b", []string{"l/a/b/1", "l/a/b/2", "l/a/bc", "l/a/bd/x"}},
		{"l/a/b/", []string{"l/a/b/1", "l/a/b/2"}},
		{"l/a/b/1", []string{"l/a/b/1"}},
		{"l/a/bd/x/", nil},
		{"nothing", nil},
		{"nothing/", nil},
	}
	for _, tc := range tests {
		got := mustList(t, b, tc.prefix)
		if !slices.Equal(keys(got), tc.want) {
			t.Errorf("List(%q) = %q\nwant %q", tc.prefix, keys(got), tc.want)
			continue
		}
		for _, a := range got {
			c := contents[a.Key]
			if a.Size != int64(len(c)) || a.ETag != md5hex(c) || a.ModTime.IsZero() {
				t.Errorf("List(%q) entry %+v: want size %d ETag %s and a ModTime", tc.prefix, a, len(c), md5hex(c))
			}
		}
	}
}

func testDeletePrefix(t *testing.T, b *objstore.Bucket) {
	ctx := t.Context()
	for _, k := range []string{"dp/a/1", "dp/a/2/3", "dp/ab", "dp/b"} {
		mustPut(t, b, k, []byte(k), objstore.PutOptions{})
	}
	steps := []struct {
		prefix string
		left   []string
	}{
		{"dp/a/", []string{"dp/ab", "dp/b"}},
		{"dp/none/", []string{"dp/ab", "dp/b"}},
		{"dp/a", []string{"dp/b"}},
	}
	for _, s := range steps {
		if err := b.DeletePrefix(ctx, s.prefix); err != nil {
			t.Fatalf("DeletePrefix(%q): %v", s.prefix, err)
		}
		if got := keys(mustList(t, b, "dp/")); !slices.Equal(got, s.left) {
			t.Errorf("after DeletePrefix(%q): %q, want %q", s.prefix, got, s.left)
		}
	}
	if err := b.DeletePrefix(ctx, ""); !objstore.IsInvalidKey(err) {
		t.Errorf("DeletePrefix(\"\") err = %v, want IsInvalidKey", err)
	}
	mustHead(t, b, "dp/b")
}

func testPutFile(t *testing.T, b *objstore.Bucket) {
	ctx := t.Context()
	data := randBytes(300_000)
	path := filepath.Join(t.TempDir(), "seg.m4s")
	if err := os.WriteFile(path, data, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := b.PutFile(ctx, "pf/seg.m4s", path, objstore.PutOptions{ContentType: "video/iso.segment"}); err != nil {
		t.Fatalf("PutFile: %v", err)
	}
	got, a := mustGet(t, b, "pf/seg.m4s")
	if !bytes.Equal(got, data) || a.ContentType != "video/iso.segment" || a.ETag != md5hex(data) {
		t.Errorf("after PutFile: %d bytes, attrs %+v", len(got), a)
	}
	if err := b.PutFile(ctx, "pf/missing", filepath.Join(t.TempDir(), "nope"), objstore.PutOptions{}); err == nil {
		t.Errorf("PutFile of a missing file succeeded")
	}
	if _, err := b.Head(ctx, "pf/missing"); !objstore.IsNotFound(err) {
		t.Errorf("Head after failed PutFile err = %v, want IsNotFound", err)
	}
}

func testPing(t *testing.T, b *objstore.Bucket) {
	if err := b.Ping(t.Context()); err != nil {
		t.Errorf("Ping: %v", err)
	}
	if b.String() == "" {
		t.Errorf("String() is empty")
	}
}

// --- helpers -----------------------------------------------------------------------------------------

// onlyReader hides io.Seeker/io.ReaderAt/io.WriterTo so drivers take their streaming path.
type onlyReader struct{ r io.Reader }

func (o onlyReader) Read(p []byte) (int, error) { return o.r.Read(p) }

func mustPut(t *testing.T, b *objstore.Bucket, key string, data []byte, opts objstore.PutOptions) {
	t.Helper()
	if err := b.PutBytes(t.Context(), key, data, opts); err != nil {
		t.Fatalf("PutBytes(%q): %v", key, err)
	}
}

func mustGet(t *testing.T, b *objstore.Bucket, key string) ([]byte, objstore.Attrs) {
	t.Helper()
	rc, a, err := b.Get(t.Context(), key)
	if err != nil {
		t.Fatalf("Get(%q): %v", key, err)
	}
	return readClose(t, rc), a
}

func mustHead(t *testing.T, b *objstore.Bucket, key string) objstore.Attrs {
	t.Helper()
	a, err := b.Head(t.Context(), key)
	if err != nil {
		t.Fatalf("Head(%q): %v", key, err)
	}
	return a
}

func mustList(t *testing.T, b *objstore.Bucket, prefix string) []objstore.Attrs {
	t.Helper()
	objs, err := b.List(t.Context(), prefix)
	if err != nil {
		t.Fatalf("List(%q): %v", prefix, err)
	}
	if !slices.IsSortedFunc(objs, func(x, y objstore.Attrs) int { return strings.Compare(x.Key, y.Key) }) {
		t.Errorf("List(%q) not sorted: %q", prefix, keys(objs))
	}
	return objs
}

func readClose(t *testing.T, rc io.ReadCloser) []byte {
	t.Helper()
	got, err := io.ReadAll(rc)
	if cerr := rc.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		t.Fatalf("reading body: %v", err)
	}
	return got
}

func keys(objs []objstore.Attrs) []string {
	var out []string
	for _, o := range objs {
		out = append(out, o.Key)
	}
	return out
}

func md5hex(b []byte) string {
	s := md5.Sum(b)
	return hex.EncodeToString(s[:])
}

func randBytes(n int) []byte {
	b := make([]byte, n)
	_, _ = rand.NewChaCha8([32]byte{byte(n), byte(n >> 8), byte(n >> 16)}).Read(b)
	return b
}

func sizeName(n int) string {
	if n >= 1<<20 {
		return "~" + strconv.Itoa(n>>20) + "MiB"
	}
	return strconv.Itoa(n) + "B"
}
