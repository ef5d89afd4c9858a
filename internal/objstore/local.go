package objstore

import (
	"context"
	"crypto/md5"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"syscall"
)

// LocalDir returns a directory for name inside file storage's reserved area (created), on the same
// file system as the objects, so that Adopt can move files in by renaming them. ok is false for other
// drivers.
func (b *Bucket) LocalDir(name string) (dir string, ok bool, err error) {
	d, isFile := b.d.(*fileDriver)
	if !isFile {
		return "", false, nil
	}
	dir = filepath.Join(d.root, reservedDir, filepath.Base(name))
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", true, fmt.Errorf("objstore: create %s: %w", dir, err)
	}
	return dir, true, nil
}

// Adopt stores the local file at path under key and removes path: file storage syncs it and renames
// it into place when both are on one file system (no copy, no read: its ETag is then opaque, not the
// MD5 a Put gives), any other driver uploads it. On error path is left where it was.
func (b *Bucket) Adopt(ctx context.Context, key, path string, opts PutOptions) error {
	if err := ValidateKey(key); err != nil {
		return err
	}
	if opts.ContentType == "" {
		opts.ContentType = DefaultContentType
	}
	if d, ok := b.d.(*fileDriver); ok {
		err := d.adopt(ctx, key, path, opts)
		if !errors.Is(err, syscall.EXDEV) {
			if err != nil {
				return fmt.Errorf("adopt %s: %w", key, err)
			}
			return nil
		}
		// Another file system: fall through to a copy.
	}
	if err := b.PutFile(ctx, key, path, opts); err != nil {
		return err
	}
	return os.Remove(path)
}

func (d *fileDriver) adopt(ctx context.Context, key, path string, opts PutOptions) error {
	if err := checkFileKey(key); err != nil {
		return err
	}
	// The bytes must be on disk before anyone is told they are stored: the writer (tusd) never syncs.
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		return err
	}
	err = f.Sync()
	var fi os.FileInfo
	if err == nil {
		fi, err = f.Stat()
	}
	f.Close()
	if err != nil {
		return err
	}
	metaTmp, err := d.sidecarTempETag(adoptedETag(key, fi), fi, opts)
	if err != nil {
		return err
	}
	committed := false
	defer func() {
		if !committed {
			os.Remove(metaTmp)
		}
	}()
	if err := ctx.Err(); err != nil {
		return err
	}
	mu := d.lock(key)
	mu.Lock()
	defer mu.Unlock()
	metaPath, dataPath := d.metaPath(key), d.dataPath(key)
	if err := os.MkdirAll(filepath.Dir(dataPath), 0o755); err != nil {
		return err
	}
	// Try the rename first: EXDEV must leave the previous state untouched.
	if err := os.Rename(path, dataPath); err != nil {
		return err
	}
	if err := d.commit(key, metaTmp, metaPath); err != nil {
		// Put the file back so the caller still has it.
		_ = os.Rename(dataPath, path)
		return err
	}
	committed = true
	syncDir(filepath.Dir(dataPath))
	return nil
}

// S3Settings are the connection settings of an s3 bucket, for libraries that talk to it directly
// (tusd's s3store writes resumable uploads straight to the bucket).
type S3Settings struct {
	Bucket   string
	Endpoint string // host[:port]
	Region   string // "" when not configured
	Secure   bool
	// AccessKey, SecretKey and SessionToken are empty when the credentials come from IAM.
	AccessKey, SecretKey, SessionToken string
}

// S3 returns the bucket's S3 settings; ok is false for other drivers.
func (b *Bucket) S3() (s S3Settings, ok bool) {
	d, isS3 := b.d.(*s3Driver)
	if !isS3 {
		return S3Settings{}, false
	}
	c := d.cfg
	return S3Settings{Bucket: c.bucket, Endpoint: c.endpoint, Region: c.region, Secure: c.secure,
		AccessKey: c.accessKey, SecretKey: c.secretKey, SessionToken: c.sessionToken}, true
}

// adoptedETag is the ETag of an adopted file: opaque, in the "<hex>-<parts>" form S3 gives multipart
// objects, derived from the key, size, modification time and inode. Reading a 20 GiB upload once more
// only to hash it would double the cost of finishing it, and nothing compares a source's ETag with a
// digest of its bytes; the ETag still changes whenever the object does.
func adoptedETag(key string, fi os.FileInfo) string {
	var ino uint64
	if st, ok := fi.Sys().(*syscall.Stat_t); ok {
		ino = st.Ino
	}
	h := md5.Sum([]byte(fmt.Sprintf("%s\x00%d\x00%d\x00%d", key, fi.Size(), fi.ModTime().UnixNano(), ino)))
	return hex.EncodeToString(h[:]) + "-1"
}
