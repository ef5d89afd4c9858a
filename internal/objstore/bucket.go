package objstore

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"unicode/utf8"
)

// MaxKeyLen is the longest key accepted, in bytes (S3's limit).
const MaxKeyLen = 1024

// Bucket is the portable view of one bucket. It is safe for concurrent use.
type Bucket struct {
	d Driver
}

// NewBucket wraps a driver. Open is the usual way to get a Bucket; NewBucket is for custom drivers.
func NewBucket(d Driver) *Bucket { return &Bucket{d: d} }

// Put stores the bytes of r under key, replacing any existing object; see Driver.Put for the atomicity
// guarantee. size is the exact length or -1 when unknown; a reader that yields a different number of
// bytes than a known size makes Put fail and store nothing.
func (b *Bucket) Put(ctx context.Context, key string, r io.Reader, size int64, opts PutOptions) error {
	if err := ValidateKey(key); err != nil {
		return err
	}
	if size < -1 {
		return fmt.Errorf("put %s: size %d: must be >= 0, or -1 when unknown", key, size)
	}
	if opts.ContentType == "" {
		opts.ContentType = DefaultContentType
	}
	// Drivers stop reading once the context ends, even ones that would finish the copy first.
	r = ctxReader{ctx: ctx, r: r}
	if size >= 0 {
		// A size that lies would let S3 store a truncated object; both drivers must refuse it the same way.
		er := &exactReader{r: r, left: size}
		if size == 0 {
			// minio-go never reads the body of an empty object, so check for stray bytes here.
			if _, err := er.Read(nil); err != io.EOF {
				return fmt.Errorf("put %s: %w", key, err)
			}
		}
		r = er
	}
	if err := b.d.Put(ctx, key, r, size, opts); err != nil {
		return fmt.Errorf("put %s: %w", key, err)
	}
	return nil
}

// PutFile stores the file at path under key.
func (b *Bucket) PutFile(ctx context.Context, key, path string, opts PutOptions) error {
	f, err := os.Open(path)
	if err != nil {
		return fmt.Errorf("put %s: %w", key, err)
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return fmt.Errorf("put %s: %w", key, err)
	}
	if !fi.Mode().IsRegular() {
		return fmt.Errorf("put %s: %s is not a regular file", key, path)
	}
	return b.Put(ctx, key, f, fi.Size(), opts)
}

// PutBytes stores data under key.
func (b *Bucket) PutBytes(ctx context.Context, key string, data []byte, opts PutOptions) error {
	return b.Put(ctx, key, bytes.NewReader(data), int64(len(data)), opts)
}

// Get opens the whole object. The caller closes the body.
func (b *Bucket) Get(ctx context.Context, key string) (io.ReadCloser, Attrs, error) {
	return b.GetRange(ctx, key, 0, -1)
}

// GetRange opens length bytes of the object starting at offset (length -1: to the end; a range running
// past the end is clamped). offset == size gives an empty body; offset > size, a negative offset or a
// length below -1 give an error for which IsInvalidRange is true. Attrs describe the whole object.
func (b *Bucket) GetRange(ctx context.Context, key string, offset, length int64) (io.ReadCloser, Attrs, error) {
	if err := ValidateKey(key); err != nil {
		return nil, Attrs{}, err
	}
	if offset < 0 || length < -1 {
		return nil, Attrs{}, fmt.Errorf("get %s: offset %d length %d: %w", key, offset, length, ErrInvalidRange)
	}
	rc, a, err := b.d.Get(ctx, key, offset, length)
	if err != nil {
		return nil, Attrs{}, fmt.Errorf("get %s: %w", key, err)
	}
	return rc, a, nil
}

// Head returns the object's attributes; a missing object gives an error for which IsNotFound is true.
func (b *Bucket) Head(ctx context.Context, key string) (Attrs, error) {
	if err := ValidateKey(key); err != nil {
		return Attrs{}, err
	}
	a, err := b.d.Head(ctx, key)
	if err != nil {
		return Attrs{}, fmt.Errorf("head %s: %w", key, err)
	}
	return a, nil
}

// Delete removes the object; deleting a missing object succeeds.
func (b *Bucket) Delete(ctx context.Context, key string) error {
	if err := ValidateKey(key); err != nil {
		return err
	}
	if err := b.d.Delete(ctx, key); err != nil {
		return fmt.Errorf("delete %s: %w", key, err)
	}
	return nil
}

// DeletePrefix deletes every object List(prefix) returns. The prefix must not be empty: wiping a whole
// bucket is never what a caller of this package means. It stops at the first error; objects already
// deleted stay deleted, so calling it again finishes the job.
func (b *Bucket) DeletePrefix(ctx context.Context, prefix string) error {
	if prefix == "" {
		return fmt.Errorf("delete prefix: empty prefix would delete the whole bucket: %w", ErrInvalidKey)
	}
	objs, err := b.List(ctx, prefix)
	if err != nil {
		return err
	}
	for _, o := range objs {
		if err := b.Delete(ctx, o.Key); err != nil {
			return err
		}
	}
	return nil
}

// List returns the objects whose keys start with prefix (a plain string prefix: "a/b" matches "a/b/c"
// and "a/bc"), recursively, sorted by key. An empty prefix lists everything.
func (b *Bucket) List(ctx context.Context, prefix string) ([]Attrs, error) {
	if err := validatePrefix(prefix); err != nil {
		return nil, err
	}
	objs, err := b.d.List(ctx, prefix)
	if err != nil {
		return nil, fmt.Errorf("list %q: %w", prefix, err)
	}
	return objs, nil
}

// Ping returns nil when the storage is reachable.
func (b *Bucket) Ping(ctx context.Context) error {
	if err := b.d.Ping(ctx); err != nil {
		return fmt.Errorf("ping %s: %w", b, err)
	}
	return nil
}

// Close releases the driver's resources.
func (b *Bucket) Close() error { return b.d.Close() }

// String describes the bucket as a URL without credentials, for logs.
func (b *Bucket) String() string {
	if s, ok := b.d.(fmt.Stringer); ok {
		return s.String()
	}
	return fmt.Sprintf("objstore(%T)", b.d)
}

// ValidateKey returns an error wrapping ErrInvalidKey when key breaks the rules in the package
// documentation.
func ValidateKey(key string) error {
	why := ""
	switch {
	case key == "":
		why = "empty"
	case len(key) > MaxKeyLen:
		why = fmt.Sprintf("longer than %d bytes", MaxKeyLen)
	case strings.HasPrefix(key, "/"):
		why = `starts with "/"`
	case strings.HasSuffix(key, "/"):
		why = `ends with "/"`
	default:
		why = badChars(key)
		if why == "" {
			for seg := range strings.SplitSeq(key, "/") {
				if seg == "" || seg == "." {
					why = `has an empty or "." segment`
					break
				}
			}
		}
	}
	if why != "" {
		return fmt.Errorf("key %q %s: %w", key, why, ErrInvalidKey)
	}
	return nil
}

// validatePrefix applies the character rules of keys to a List prefix, which may be empty or end in "/".
func validatePrefix(prefix string) error {
	why := badChars(prefix)
	if why == "" && strings.HasPrefix(prefix, "/") {
		why = `starts with "/"`
	}
	if why == "" && len(prefix) > MaxKeyLen {
		why = fmt.Sprintf("longer than %d bytes", MaxKeyLen)
	}
	if why != "" {
		return fmt.Errorf("prefix %q %s: %w", prefix, why, ErrInvalidKey)
	}
	return nil
}

func badChars(s string) string {
	switch {
	case strings.Contains(s, ".."):
		return `contains ".."`
	case strings.ContainsRune(s, '\\'):
		return "contains a backslash"
	case strings.ContainsRune(s, 0):
		return "contains NUL"
	case !utf8.ValidString(s):
		return "is not valid UTF-8" // S3 refuses such names
	}
	return ""
}

// errSizeMismatch is returned through the driver when a reader disagrees with the size given to Put.
var errSizeMismatch = errors.New("objstore: reader length differs from the size given")

// exactReader passes through exactly left bytes and fails if the source ends early or has more. The
// check for "more" happens on the read that delivers the last byte, so even a driver that stops reading
// at the known size (minio-go does) sees the error.
type exactReader struct {
	r    io.Reader
	left int64
}

func (e *exactReader) Read(p []byte) (int, error) {
	if e.left <= 0 {
		return e.probe(0)
	}
	if int64(len(p)) > e.left {
		p = p[:e.left]
	}
	n, err := e.r.Read(p)
	e.left -= int64(n)
	switch {
	case e.left == 0 && (err == nil || err == io.EOF):
		return e.probe(n)
	case err == io.EOF:
		return n, fmt.Errorf("%w: %d bytes short", errSizeMismatch, e.left)
	}
	return n, err
}

func (e *exactReader) probe(n int) (int, error) {
	var one [1]byte
	for range 100 {
		m, err := e.r.Read(one[:])
		if m > 0 {
			return n, fmt.Errorf("%w: reader has more bytes", errSizeMismatch)
		}
		if err == io.EOF {
			return n, io.EOF
		}
		if err != nil {
			return n, err
		}
	}
	return n, io.ErrNoProgress
}

type ctxReader struct {
	ctx context.Context
	r   io.Reader
}

func (c ctxReader) Read(p []byte) (int, error) {
	if err := c.ctx.Err(); err != nil {
		return 0, err
	}
	return c.r.Read(p)
}
