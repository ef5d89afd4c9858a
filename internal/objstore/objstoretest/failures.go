package objstoretest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/lectern/lectern/internal/objstore"
)

func testInvalidKeys(t *testing.T, b *objstore.Bucket) {
	ctx := t.Context()
	bad := []string{
		"", "/abs", "..", "a/..", "a/../b", "a..b", `a\b`, "a\x00b", "a//b", "a/", "./a", "a/./b", "a\xffb",
		strings.Repeat("k", objstore.MaxKeyLen+1),
	}
	for i, key := range bad {
		t.Run(fmt.Sprint(i), func(t *testing.T) {
			check := func(op string, err error) {
				if !objstore.IsInvalidKey(err) {
					t.Errorf("%s(%q) err = %v, want IsInvalidKey", op, key, err)
				}
			}
			check("PutBytes", b.PutBytes(ctx, key, []byte("x"), objstore.PutOptions{}))
			_, _, err := b.Get(ctx, key)
			check("Get", err)
			_, _, err = b.GetRange(ctx, key, 0, 1)
			check("GetRange", err)
			_, err = b.Head(ctx, key)
			check("Head", err)
			check("Delete", b.Delete(ctx, key))
		})
	}
	for _, prefix := range []string{"/x", "a\x00", `a\`, "../", "a/../"} {
		if _, err := b.List(ctx, prefix); !objstore.IsInvalidKey(err) {
			t.Errorf("List(%q) err = %v, want IsInvalidKey", prefix, err)
		}
		if err := b.DeletePrefix(ctx, prefix); !objstore.IsInvalidKey(err) {
			t.Errorf("DeletePrefix(%q) err = %v, want IsInvalidKey", prefix, err)
		}
	}
	if got := mustList(t, b, ""); len(got) != 0 {
		t.Errorf("rejected keys left objects: %q", keys(got))
	}
}

func testUnusualKeys(t *testing.T, b *objstore.Bucket) {
	longest := strings.Repeat(strings.Repeat("k", 199)+"/", 5) + strings.Repeat("k", 24)
	if len(longest) != objstore.MaxKeyLen {
		t.Fatalf("test bug: key length %d", len(longest))
	}
	valid := []string{
		longest,
		"sp ace/ü-ñ/%41+&=?#;.txt",
		"a.b/.hidden/x.y",
		"trailing.dot.",
		"-dash/_under~tilde",
	}
	for _, key := range valid {
		mustPut(t, b, key, []byte(key), objstore.PutOptions{})
		got, a := mustGet(t, b, key)
		if string(got) != key || a.Key != key {
			t.Errorf("key %q: got body %q, attrs key %q", key, got, a.Key)
		}
	}
	want := slices.Sorted(slices.Values(valid))
	if got := keys(mustList(t, b, "")); !slices.Equal(got, want) {
		t.Errorf("List = %q\nwant %q", got, want)
	}
}

// testConcurrentPuts races writers of different lengths on one key while a reader checks that every
// read is one whole version whose attrs match its bytes.
func testConcurrentPuts(t *testing.T, b *objstore.Bucket) {
	ctx := t.Context()
	const writers, key = 8, "conc/obj"
	versions := make([][]byte, writers)
	for i := range versions {
		versions[i] = bytes.Repeat([]byte{byte('A' + i)}, 200_000+1111*i)
	}
	checkRead := func(allowMissing bool) {
		rc, a, err := b.Get(ctx, key)
		if err != nil {
			if !allowMissing || !objstore.IsNotFound(err) {
				t.Errorf("concurrent Get: %v", err)
			}
			return
		}
		got, err := io.ReadAll(rc)
		rc.Close()
		if err != nil {
			t.Errorf("concurrent read: %v", err)
			return
		}
		i := int(got[0] - 'A')
		if i < 0 || i >= writers || !bytes.Equal(got, versions[i]) {
			t.Errorf("read a mixed or partial object: %d bytes starting %q", len(got), got[:1])
			return
		}
		if a.Size != int64(len(got)) || a.ETag != md5hex(got) {
			t.Errorf("attrs %+v do not describe the %d bytes read (version %c)", a, len(got), 'A'+i)
		}
	}
	for round := range 3 {
		stop := make(chan struct{})
		var readers, puts sync.WaitGroup
		readers.Go(func() {
			for {
				select {
				case <-stop:
					return
				default:
					checkRead(round == 0)
				}
			}
		})
		for i := range writers {
			puts.Go(func() {
				v := versions[i]
				if err := b.Put(ctx, key, onlyReader{bytes.NewReader(v)}, int64(len(v)), objstore.PutOptions{}); err != nil {
					t.Errorf("concurrent Put %d: %v", i, err)
				}
			})
		}
		puts.Wait()
		close(stop)
		readers.Wait()
		checkRead(false)
	}
	if got := keys(mustList(t, b, "")); !slices.Equal(got, []string{key}) {
		t.Errorf("after concurrent puts List = %q", got)
	}
}

var errBroken = errors.New("objstoretest: reader broke")

// brokenReader serves data, then fails after failAt bytes.
type brokenReader struct {
	data   []byte
	failAt int
	off    int
}

func (r *brokenReader) Read(p []byte) (int, error) {
	if r.off >= r.failAt {
		return 0, errBroken
	}
	n := copy(p[:min(len(p), r.failAt-r.off)], r.data[r.off:])
	r.off += n
	return n, nil
}

func testFailingReader(t *testing.T, b *objstore.Bucket) {
	data := randBytes(18 << 20)
	tests := []struct {
		name     string
		size     int
		failAt   int
		known    bool
		existing bool
	}{
		{"known size", 3 << 20, 1 << 20, true, false},
		{"unknown size", 3 << 20, 1 << 20, false, false},
		{"first byte", 100, 0, true, false},
		{"unknown size after a whole multipart part", 18 << 20, 17 << 20, false, false},
		{"known size over existing", 3 << 20, 1 << 20, true, true},
		{"unknown size over existing", 3 << 20, 2 << 20, false, true},
	}
	for i, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			ctx := t.Context()
			key := fmt.Sprintf("fail/%d", i)
			old := []byte("the previous version")
			if tc.existing {
				mustPut(t, b, key, old, objstore.PutOptions{})
			}
			size := int64(tc.size)
			if !tc.known {
				size = -1
			}
			r := &brokenReader{data: data[:tc.size], failAt: tc.failAt}
			err := b.Put(ctx, key, r, size, objstore.PutOptions{})
			if err == nil {
				t.Fatalf("Put with a failing reader succeeded")
			}
			if !errors.Is(err, errBroken) {
				t.Errorf("Put err = %v, want it to wrap the reader's error", err)
			}
			checkUnchanged(t, b, key, tc.existing, old)
		})
	}
}

// cancellingReader cancels the context after cancelAt bytes and carries on serving data, so only the
// context can stop the Put.
type cancellingReader struct {
	data     []byte
	cancelAt int
	cancel   context.CancelFunc
	off      int
}

func (r *cancellingReader) Read(p []byte) (int, error) {
	if r.off >= r.cancelAt {
		r.cancel()
	}
	if r.off >= len(r.data) {
		return 0, io.EOF
	}
	n := copy(p[:min(len(p), 64<<10)], r.data[r.off:])
	r.off += n
	return n, nil
}

func testCancelledPut(t *testing.T, b *objstore.Bucket) {
	data := randBytes(4 << 20)
	tests := []struct {
		name     string
		cancelAt int
		known    bool
		existing bool
	}{
		{"before start, known size", 0, true, false},
		{"before start, unknown size", 0, false, false},
		{"midway, known size", 1 << 20, true, false},
		{"midway, unknown size", 1 << 20, false, false},
		{"midway over existing", 1 << 20, true, true},
	}
	for i, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			key := fmt.Sprintf("cancel/%d", i)
			old := []byte("the previous version")
			if tc.existing {
				mustPut(t, b, key, old, objstore.PutOptions{})
			}
			ctx, cancel := context.WithCancel(t.Context())
			defer cancel()
			if tc.cancelAt == 0 {
				cancel()
			}
			size := int64(len(data))
			if !tc.known {
				size = -1
			}
			r := &cancellingReader{data: data, cancelAt: tc.cancelAt, cancel: cancel}
			err := b.Put(ctx, key, r, size, objstore.PutOptions{})
			if err == nil {
				t.Fatalf("Put with a cancelled context succeeded")
			}
			if !errors.Is(err, context.Canceled) {
				t.Errorf("Put err = %v, want it to wrap context.Canceled", err)
			}
			checkUnchanged(t, b, key, tc.existing, old)
		})
	}
}

func testSizeMismatch(t *testing.T, b *objstore.Bucket) {
	tests := []struct {
		name     string
		size     int64
		data     []byte
		existing bool
	}{
		{"reader shorter", 10, []byte("12345"), false},
		{"reader longer", 5, []byte("1234567890"), false},
		{"reader empty", 3, nil, false},
		{"size zero, reader not", 0, []byte("x"), false},
		{"reader longer over existing", 5, []byte("1234567890"), true},
	}
	for i, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			key := fmt.Sprintf("size/%d", i)
			old := []byte("the previous version")
			if tc.existing {
				mustPut(t, b, key, old, objstore.PutOptions{})
			}
			err := b.Put(t.Context(), key, onlyReader{bytes.NewReader(tc.data)}, tc.size, objstore.PutOptions{})
			if err == nil {
				t.Fatalf("Put of %d bytes with size %d succeeded", len(tc.data), tc.size)
			}
			checkUnchanged(t, b, key, tc.existing, old)
		})
	}
}

// checkUnchanged asserts a failed Put left key as it was: absent, or holding old.
func checkUnchanged(t *testing.T, b *objstore.Bucket, key string, existing bool, old []byte) {
	t.Helper()
	if !existing {
		if a, err := b.Head(t.Context(), key); !objstore.IsNotFound(err) {
			t.Errorf("after the failed Put, Head = %+v, %v; want IsNotFound", a, err)
		}
		if got := mustList(t, b, key); len(got) != 0 {
			t.Errorf("after the failed Put, List shows %q", keys(got))
		}
		return
	}
	got, a := mustGet(t, b, key)
	if !bytes.Equal(got, old) || a.ETag != md5hex(old) {
		t.Errorf("after the failed Put the object is %q (attrs %+v), want the previous version", got, a)
	}
}
