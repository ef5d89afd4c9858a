// Package objstore stores immutable objects (lecture sources, HLS playlists and segments) in a bucket that
// is chosen by URL, so the same code runs on a laptop directory and on MinIO or AWS S3.
//
// # Buckets and drivers
//
// Callers use *Bucket. It validates keys and arguments once, then calls a small Driver that a backend
// implements. Open picks the driver from the URL scheme:
//
//	file:///var/lib/lectern/objects        a directory (a bare path works too); the default
//	s3://bucket?endpoint=host:port&...     any S3-compatible store, through minio-go
//
// # Keys
//
// A key is a slash-separated name such as "hls/42/v1/720p/seg_00001.m4s": not empty, at most 1024 bytes,
// valid UTF-8, no leading or trailing "/", no empty or "." segments, no ".." anywhere, no backslash, no
// NUL. The rules are stricter than S3's so that every key maps to exactly one file path and back.
//
// # Error contract
//
// Errors for a missing object satisfy IsNotFound, bad keys IsInvalidKey, unsatisfiable ranges
// IsInvalidRange. Drivers translate their backend's codes into these sentinels; nobody matches messages.
//
// # Conformance
//
// Package objstoretest holds the one conformance suite every driver must pass.
package objstore

import (
	"context"
	"errors"
	"io"
	"time"
)

// ErrNotFound is wrapped by every error that reports a missing object (or a missing S3 bucket).
var ErrNotFound = errors.New("objstore: object not found")

// ErrInvalidKey is wrapped by errors for keys that break the rules in the package documentation.
var ErrInvalidKey = errors.New("objstore: invalid key")

// ErrInvalidRange is wrapped by errors for a read that starts beyond the end of the object, or with a
// negative offset or length.
var ErrInvalidRange = errors.New("objstore: invalid range")

// IsNotFound reports whether err says the object does not exist.
func IsNotFound(err error) bool { return errors.Is(err, ErrNotFound) }

// IsInvalidKey reports whether err says a key was rejected before reaching storage.
func IsInvalidKey(err error) bool { return errors.Is(err, ErrInvalidKey) }

// IsInvalidRange reports whether err says the requested byte range cannot be satisfied.
func IsInvalidRange(err error) bool { return errors.Is(err, ErrInvalidRange) }

// DefaultContentType is what an object put without a content type reports, on every driver (it is what
// S3 answers for such objects).
const DefaultContentType = "application/octet-stream"

// Attrs describe a whole object.
type Attrs struct {
	Key  string
	Size int64
	// ETag is the bare hex form (no quotes). For a single-part put it is the MD5 of the content; S3
	// multipart uploads (unknown size, or large objects) have an opaque "<hex>-<parts>" form instead.
	ETag         string
	ModTime      time.Time
	ContentType  string // empty in List results: S3 listings do not carry it
	CacheControl string // empty in List results, as above
}

// PutOptions are stored with an object and returned by Head and Get.
type PutOptions struct {
	ContentType  string // DefaultContentType when empty
	CacheControl string
}

// Driver is what a storage backend implements. Bucket has already validated keys, offsets and lengths
// when a method is called, and ContentType is never empty.
type Driver interface {
	// Put stores the bytes of r under key, replacing any existing object. size is the exact length, or -1
	// when unknown. The object becomes visible all at once when Put succeeds; when r fails, ctx is
	// cancelled or anything else goes wrong, Put returns an error and the previous state (an older
	// version, or nothing) stays visible, with nothing left half-written.
	Put(ctx context.Context, key string, r io.Reader, size int64, opts PutOptions) error

	// Get returns the bytes [offset, offset+length) of the object, clamped to its end; length -1 reads
	// to the end. The Attrs describe the whole object (Size is the full size). offset == size yields an
	// empty body; offset > size returns an error for which IsInvalidRange is true. A missing object
	// returns an error for which IsNotFound is true, from Get itself rather than from the first Read.
	Get(ctx context.Context, key string, offset, length int64) (io.ReadCloser, Attrs, error)

	// Head returns the attributes of the object; missing -> IsNotFound.
	Head(ctx context.Context, key string) (Attrs, error)

	// Delete removes the object. A missing key is not an error.
	Delete(ctx context.Context, key string) error

	// List returns every object whose key starts with prefix (a plain string prefix, as in S3: "a/b"
	// matches "a/b/c" and "a/bc"), recursively, sorted by key. ContentType and CacheControl are empty.
	List(ctx context.Context, prefix string) ([]Attrs, error)

	// Ping returns nil when the storage is reachable and usable (readiness and start-up checks).
	Ping(ctx context.Context) error

	// Close releases resources; the driver must not be used afterwards.
	Close() error
}
