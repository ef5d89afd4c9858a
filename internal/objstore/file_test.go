package objstore_test

import (
	"bytes"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/lectern/lectern/internal/objstore"
	"github.com/lectern/lectern/internal/objstore/objstoretest"
)

func TestFileConformance(t *testing.T) {
	objstoretest.RunConformance(t, func(t *testing.T) *objstore.Bucket {
		b, root := openFile(t)
		// Runs after the suite's own checks and Close: whatever a test did, the tree must be clean.
		t.Cleanup(func() { checkTree(t, root) })
		return b
	})
}

func openFile(t *testing.T) (*objstore.Bucket, string) {
	t.Helper()
	root := filepath.Join(t.TempDir(), "objects")
	b, err := objstore.Open(t.Context(), "file://"+root)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	return b, root
}

// checkTree asserts the invariants of the file layout: no temp files, every object has its sidecar and
// every sidecar its object, no empty directories left by deletes.
func checkTree(t *testing.T, root string) {
	t.Helper()
	tmp := filepath.Join(root, ".objstore", "tmp")
	if entries, err := os.ReadDir(tmp); err != nil || len(entries) != 0 {
		t.Errorf("temp dir %s: %d entries left (%v)", tmp, len(entries), err)
	}
	meta := filepath.Join(root, ".objstore", "meta")
	walk := func(dir string, skip string, visit func(rel string)) {
		err := filepath.WalkDir(dir, func(p string, de fs.DirEntry, err error) error {
			if err != nil {
				return err
			}
			if p == skip {
				return fs.SkipDir
			}
			if de.IsDir() {
				if entries, _ := os.ReadDir(p); len(entries) == 0 && p != dir && p != tmp {
					t.Errorf("empty directory left behind: %s", p)
				}
				return nil
			}
			rel, _ := filepath.Rel(dir, p)
			visit(rel)
			return nil
		})
		if err != nil {
			t.Errorf("walk %s: %v", dir, err)
		}
	}
	walk(root, filepath.Join(root, ".objstore"), func(rel string) {
		if _, err := os.Stat(filepath.Join(meta, rel)); err != nil {
			t.Errorf("object %s has no sidecar: %v", rel, err)
		}
	})
	walk(meta, "", func(rel string) {
		if _, err := os.Stat(filepath.Join(root, rel)); err != nil {
			t.Errorf("sidecar %s has no object: %v", rel, err)
		}
	})
}

func TestFileLayout(t *testing.T) {
	b, root := openFile(t)
	ctx := t.Context()
	if err := b.PutBytes(ctx, "hls/1/v1/master.m3u8", []byte("#EXTM3U\n"), objstore.PutOptions{}); err != nil {
		t.Fatal(err)
	}
	got, err := os.ReadFile(filepath.Join(root, "hls", "1", "v1", "master.m3u8"))
	if err != nil || string(got) != "#EXTM3U\n" {
		t.Errorf("object file = %q, %v; want the bytes put, at root/<key>", got, err)
	}
	for _, key := range []string{".objstore", ".objstore/meta/hls/1/v1/master.m3u8", ".objstore/tmp/x"} {
		if err := b.PutBytes(ctx, key, []byte("x"), objstore.PutOptions{}); !objstore.IsInvalidKey(err) {
			t.Errorf("Put(%q) err = %v, want IsInvalidKey (reserved)", key, err)
		}
		if _, err := b.Head(ctx, key); !objstore.IsInvalidKey(err) {
			t.Errorf("Head(%q) err = %v, want IsInvalidKey (reserved)", key, err)
		}
	}
	// A key that merely starts like the reserved directory is an ordinary key.
	if err := b.PutBytes(ctx, ".objstorex/y", []byte("y"), objstore.PutOptions{}); err != nil {
		t.Errorf("Put(.objstorex/y): %v", err)
	}
	for _, prefix := range []string{"", ".", ".objstore"} {
		objs, err := b.List(ctx, prefix)
		if err != nil {
			t.Fatal(err)
		}
		for _, o := range objs {
			if strings.HasPrefix(o.Key, ".objstore/") {
				t.Errorf("List(%q) shows internal file %s", prefix, o.Key)
			}
		}
	}
	checkTree(t, root)
}

func TestFileKeyConflicts(t *testing.T) {
	b, root := openFile(t)
	ctx := t.Context()
	put := func(key, body string) error { return b.PutBytes(ctx, key, []byte(body), objstore.PutOptions{}) }
	if err := put("a", "object a"); err != nil {
		t.Fatal(err)
	}
	if err := put("a/b", "under a"); !objstore.IsInvalidKey(err) {
		t.Errorf("Put(a/b) over object a: err = %v, want IsInvalidKey", err)
	}
	if err := put("x/y", "object x/y"); err != nil {
		t.Fatal(err)
	}
	if err := put("x", "prefix x"); !objstore.IsInvalidKey(err) {
		t.Errorf("Put(x) over prefix x/: err = %v, want IsInvalidKey", err)
	}
	for key, want := range map[string]string{"a": "object a", "x/y": "object x/y"} {
		rc, _, err := b.Get(ctx, key)
		if err != nil {
			t.Fatalf("Get(%s): %v", key, err)
		}
		got, _ := io.ReadAll(rc)
		rc.Close()
		if string(got) != want {
			t.Errorf("%s = %q after conflicting put, want %q", key, got, want)
		}
	}
	checkTree(t, root)
}

func TestFileWithoutSidecar(t *testing.T) {
	b, root := openFile(t)
	ctx := t.Context()
	// Files dropped into the tree by hand are objects with derived metadata.
	if err := os.MkdirAll(filepath.Join(root, "dropped"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(root, "dropped", "f.bin"), []byte("by hand"), 0o644); err != nil {
		t.Fatal(err)
	}
	a, err := b.Head(ctx, "dropped/f.bin")
	if err != nil {
		t.Fatal(err)
	}
	if a.Size != 7 || a.ETag == "" || a.ContentType != objstore.DefaultContentType {
		t.Errorf("Head of a file without sidecar = %+v", a)
	}
	// A sidecar that describes another version of the bytes must not be believed.
	if err := b.PutBytes(ctx, "k", []byte("version one"), objstore.PutOptions{ContentType: "text/plain"}); err != nil {
		t.Fatal(err)
	}
	before, _ := b.Head(ctx, "k")
	time.Sleep(10 * time.Millisecond) // a different mtime even on coarse clocks
	if err := os.WriteFile(filepath.Join(root, "k"), []byte("edited by hand"), 0o644); err != nil {
		t.Fatal(err)
	}
	after, err := b.Head(ctx, "k")
	if err != nil {
		t.Fatal(err)
	}
	if after.ETag == before.ETag || after.Size != 14 {
		t.Errorf("stale sidecar believed: before %+v, after %+v", before, after)
	}
}

func TestFileRangeReaders(t *testing.T) {
	b, _ := openFile(t)
	ctx := t.Context()
	data := bytes.Repeat([]byte("0123456789"), 1000)
	if err := b.PutBytes(ctx, "r", data, objstore.PutOptions{}); err != nil {
		t.Fatal(err)
	}
	// A whole read is the *os.File itself and a range offers WriteTo: both let io.Copy to a socket use
	// sendfile on the origin's hot path.
	rc, _, err := b.Get(ctx, "r")
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := rc.(*os.File); !ok {
		t.Errorf("Get body is %T, want *os.File", rc)
	}
	rc.Close()
	rc, _, err = b.GetRange(ctx, "r", 5, 20)
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	wt, ok := rc.(io.WriterTo)
	if !ok {
		t.Fatalf("GetRange body %T has no WriteTo", rc)
	}
	var buf bytes.Buffer
	if _, err := wt.WriteTo(&buf); err != nil || !bytes.Equal(buf.Bytes(), data[5:25]) {
		t.Errorf("WriteTo = %q, %v; want %q", buf.Bytes(), err, data[5:25])
	}
}

func TestFileOpen(t *testing.T) {
	ctx := t.Context()
	dir := t.TempDir()

	t.Run("creates missing root", func(t *testing.T) {
		root := filepath.Join(dir, "a", "b", "c")
		b, err := objstore.Open(ctx, "file://"+root)
		if err != nil {
			t.Fatal(err)
		}
		if fi, err := os.Stat(root); err != nil || !fi.IsDir() {
			t.Errorf("root not created: %v", err)
		}
		if want := "file://" + filepath.ToSlash(root); b.String() != want {
			t.Errorf("String() = %q, want %q", b.String(), want)
		}
	})
	t.Run("bare path", func(t *testing.T) {
		t.Chdir(dir)
		b, err := objstore.Open(ctx, "rel/objects")
		if err != nil {
			t.Fatal(err)
		}
		if err := b.PutBytes(ctx, "k", []byte("v"), objstore.PutOptions{}); err != nil {
			t.Fatal(err)
		}
		if _, err := os.Stat(filepath.Join(dir, "rel", "objects", "k")); err != nil {
			t.Errorf("bare relative path not resolved against the working directory: %v", err)
		}
	})
	t.Run("root is a file", func(t *testing.T) {
		f := filepath.Join(dir, "plainfile")
		if err := os.WriteFile(f, nil, 0o644); err != nil {
			t.Fatal(err)
		}
		_, err := objstore.Open(ctx, "file://"+f)
		if err == nil || !strings.Contains(err.Error(), "cannot create storage directory") {
			t.Errorf("Open on a regular file: err = %v", err)
		}
	})
	t.Run("stale temp files removed", func(t *testing.T) {
		root := filepath.Join(dir, "stale")
		if _, err := objstore.Open(ctx, root); err != nil {
			t.Fatal(err)
		}
		tmp := filepath.Join(root, ".objstore", "tmp")
		old, young := filepath.Join(tmp, "data-old"), filepath.Join(tmp, "data-young")
		for _, p := range []string{old, young} {
			if err := os.WriteFile(p, []byte("partial"), 0o600); err != nil {
				t.Fatal(err)
			}
		}
		long := time.Now().Add(-48 * time.Hour)
		if err := os.Chtimes(old, long, long); err != nil {
			t.Fatal(err)
		}
		if _, err := objstore.Open(ctx, root); err != nil {
			t.Fatal(err)
		}
		entries, _ := os.ReadDir(tmp)
		var names []string
		for _, e := range entries {
			names = append(names, e.Name())
		}
		if !slices.Equal(names, []string{"data-young"}) {
			t.Errorf("temp dir after Open = %v, want only the young upload kept", names)
		}
	})
}
