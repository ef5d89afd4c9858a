package objstore

import (
	"context"
	"crypto/md5"
	"encoding/hex"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestAdoptRenamesIntoFileStorage: a file in the storage's own reserved area becomes an object without
// a copy (its inode moves), with an opaque multipart-style ETag; the original path is gone.
func TestAdoptRenamesIntoFileStorage(t *testing.T) {
	ctx := context.Background()
	b, err := Open(ctx, "file://"+t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	dir, ok, err := b.LocalDir("uploads")
	if err != nil || !ok {
		t.Fatalf("LocalDir: %v %v", ok, err)
	}
	src := filepath.Join(dir, "u1")
	data := []byte("a finished upload")
	if err := os.WriteFile(src, data, 0o644); err != nil {
		t.Fatal(err)
	}
	before, _ := os.Stat(src)
	if err := b.Adopt(ctx, "sources/l1/u1", src, PutOptions{}); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(src); !os.IsNotExist(err) {
		t.Fatalf("source path still there after Adopt (%v)", err)
	}
	rc, attrs, err := b.Get(ctx, "sources/l1/u1")
	if err != nil {
		t.Fatal(err)
	}
	got, _ := io.ReadAll(rc)
	rc.Close()
	sum := md5.Sum(data)
	if string(got) != string(data) || attrs.Size != int64(len(data)) ||
		!strings.HasSuffix(attrs.ETag, "-1") || attrs.ETag == hex.EncodeToString(sum[:]) {
		t.Fatalf("adopted object: %q etag %s size %d", got, attrs.ETag, attrs.Size)
	}
	after, _ := os.Stat(b.d.(*fileDriver).dataPath("sources/l1/u1"))
	if !os.SameFile(before, after) {
		t.Fatal("Adopt copied the file instead of renaming it")
	}
	if _, _, err := (&Bucket{d: b.d}).LocalDir("x"); err != nil {
		t.Fatal(err)
	}
	if err := b.Adopt(ctx, "sources/l1/u2", filepath.Join(dir, "missing"), PutOptions{}); err == nil {
		t.Fatal("Adopt of a missing file succeeded")
	}
}
