package objstore

import (
	"context"
	"crypto/md5"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"hash/fnv"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"time"
)

// The file driver keeps object "a/b/c" in the file root/a/b/c, so the tree can be inspected, backed up
// or served by other tools as it is. Everything else lives under one reserved directory that List never
// enters and keys may not name:
//
//	root/.objstore/meta/a/b/c   JSON sidecar: etag, content type, cache control
//	root/.objstore/tmp/...      uploads in progress (same file system as root, so rename is atomic)
//
// The sidecar has exactly the object's relative path (no suffix) so the meta tree can hold a sidecar
// for every object the data tree can hold: with a ".json" suffix, objects "a" and "a.json/x" would need
// "a.json" to be both a sidecar file and a directory.
//
// One process owns a root. Writers of the same key are serialised only at commit (the two renames), by
// per-key locks; readers take the same lock so they see an object and its sidecar from one version.
// The sidecar also records the data file's size and mtime, so a sidecar left stale by a crash between
// the renames, or by hand edits, is detected and ignored instead of reporting another version's ETag.
const (
	reservedDir  = ".objstore"
	lockStripes  = 64
	staleTempAge = 24 * time.Hour // older temp files are crash leftovers; younger ones may be slow uploads
)

type fileDriver struct {
	root    string
	metaDir string
	tmpDir  string
	locks   [lockStripes]sync.RWMutex
}

type sidecar struct {
	ETag         string `json:"etag"`
	ContentType  string `json:"content_type"`
	CacheControl string `json:"cache_control,omitempty"`
	Size         int64  `json:"size"`
	ModTimeNanos int64  `json:"mtime_ns"`
}

func newFileDriver(root string) (*fileDriver, error) {
	d := &fileDriver{
		root:    root,
		metaDir: filepath.Join(root, reservedDir, "meta"),
		tmpDir:  filepath.Join(root, reservedDir, "tmp"),
	}
	for _, dir := range []string{root, d.metaDir, d.tmpDir} {
		if err := os.MkdirAll(dir, 0o755); err != nil {
			return nil, fmt.Errorf("objstore: cannot create storage directory %s: %w", dir, err)
		}
	}
	probe, err := os.CreateTemp(d.tmpDir, "probe-*")
	if err != nil {
		return nil, fmt.Errorf("objstore: storage directory %s is not writable: %w", root, err)
	}
	probe.Close()
	os.Remove(probe.Name())
	d.removeStaleTemps()
	return d, nil
}

func (d *fileDriver) String() string { return "file://" + filepath.ToSlash(d.root) }

func (d *fileDriver) Put(ctx context.Context, key string, r io.Reader, size int64, opts PutOptions) error {
	if err := checkFileKey(key); err != nil {
		return err
	}
	data, err := os.CreateTemp(d.tmpDir, "data-*")
	if err != nil {
		return err
	}
	committed := false
	defer func() {
		data.Close() // a second Close only returns an error, which nobody needs
		if !committed {
			os.Remove(data.Name())
		}
	}()
	h := md5.New()
	n, err := io.Copy(io.MultiWriter(data, h), r)
	if err != nil {
		return err
	}
	if size >= 0 && n != size {
		return fmt.Errorf("%w: got %d bytes, want %d", errSizeMismatch, n, size)
	}
	if err := syncClose(data); err != nil {
		return err
	}
	fi, err := os.Stat(data.Name())
	if err != nil {
		return err
	}
	metaTmp, err := d.sidecarTemp(h.Sum(nil), fi, opts)
	if err != nil {
		return err
	}
	defer func() {
		if !committed {
			os.Remove(metaTmp)
		}
	}()
	// The last moment a cancelled Put can still leave nothing behind.
	if err := ctx.Err(); err != nil {
		return err
	}

	mu := d.lock(key)
	mu.Lock()
	defer mu.Unlock()
	metaPath, dataPath := d.metaPath(key), d.dataPath(key)
	if err := d.commit(key, metaTmp, metaPath); err != nil {
		return err
	}
	if err := d.commit(key, data.Name(), dataPath); err != nil {
		// The old version (if any) must not keep a sidecar that describes the new one; without it, it
		// reports derived defaults.
		os.Remove(metaPath)
		prune(filepath.Dir(metaPath), d.metaDir)
		return err
	}
	committed = true
	syncDir(filepath.Dir(dataPath))
	return nil
}

func (d *fileDriver) Get(ctx context.Context, key string, offset, length int64) (io.ReadCloser, Attrs, error) {
	if err := checkFileKey(key); err != nil {
		return nil, Attrs{}, err
	}
	if err := ctx.Err(); err != nil {
		return nil, Attrs{}, err
	}
	mu := d.lock(key)
	mu.RLock()
	f, err := os.Open(d.dataPath(key))
	if err != nil {
		mu.RUnlock()
		return nil, Attrs{}, fileErr(err)
	}
	var a Attrs
	fi, err := f.Stat()
	if err == nil {
		a, err = d.attrs(key, fi)
	}
	mu.RUnlock()
	if err != nil {
		f.Close()
		return nil, Attrs{}, err
	}
	if offset > a.Size {
		f.Close()
		return nil, Attrs{}, fmt.Errorf("offset %d beyond size %d: %w", offset, a.Size, ErrInvalidRange)
	}
	if offset > 0 {
		if _, err := f.Seek(offset, io.SeekStart); err != nil {
			f.Close()
			return nil, Attrs{}, err
		}
	}
	if length < 0 {
		// The *os.File itself, so io.Copy to a socket can use sendfile.
		return f, a, nil
	}
	return &fileRange{LimitedReader: io.LimitedReader{R: f, N: length}, f: f}, a, nil
}

// fileRange is a bounded read of an open file.
type fileRange struct {
	io.LimitedReader
	f *os.File
}

func (r *fileRange) Close() error { return r.f.Close() }

// WriteTo gives io.Copy the *io.LimitedReader over the *os.File, a pair net.TCPConn.ReadFrom turns into
// sendfile; wrapped in fileRange it would be copied through user space.
func (r *fileRange) WriteTo(w io.Writer) (int64, error) { return io.Copy(w, &r.LimitedReader) }

func (d *fileDriver) Head(ctx context.Context, key string) (Attrs, error) {
	if err := checkFileKey(key); err != nil {
		return Attrs{}, err
	}
	if err := ctx.Err(); err != nil {
		return Attrs{}, err
	}
	mu := d.lock(key)
	mu.RLock()
	defer mu.RUnlock()
	fi, err := os.Stat(d.dataPath(key))
	if err != nil {
		return Attrs{}, fileErr(err)
	}
	return d.attrs(key, fi)
}

func (d *fileDriver) Delete(ctx context.Context, key string) error {
	if err := checkFileKey(key); err != nil {
		return err
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	dataPath, metaPath := d.dataPath(key), d.metaPath(key)
	mu := d.lock(key)
	mu.Lock()
	fi, err := os.Lstat(dataPath)
	if err != nil && !isNotExist(err) {
		mu.Unlock()
		return err
	}
	if err == nil && fi.IsDir() {
		// A prefix of other objects, not an object: nothing to delete.
		mu.Unlock()
		return nil
	}
	// Data first: once it is gone the object is gone, and an orphaned sidecar is harmless.
	if err := os.Remove(dataPath); err != nil && !isNotExist(err) {
		mu.Unlock()
		return err
	}
	if err := os.Remove(metaPath); err != nil && !isNotExist(err) {
		mu.Unlock()
		return err
	}
	mu.Unlock()
	prune(filepath.Dir(dataPath), d.root)
	prune(filepath.Dir(metaPath), d.metaDir)
	return nil
}

func (d *fileDriver) List(ctx context.Context, prefix string) ([]Attrs, error) {
	// Walk only below the directory part of the prefix; the rest is a plain string match.
	start := d.root
	if i := strings.LastIndex(prefix, "/"); i >= 0 {
		start = filepath.Join(d.root, filepath.FromSlash(prefix[:i]))
	}
	out := []Attrs{}
	err := filepath.WalkDir(start, func(p string, de fs.DirEntry, err error) error {
		if err != nil {
			if isNotExist(err) { // no such prefix, or removed by a concurrent Delete
				return nil
			}
			return err
		}
		if err := ctx.Err(); err != nil {
			return err
		}
		if p == d.root {
			return nil
		}
		rel, err := filepath.Rel(d.root, p)
		if err != nil {
			return err
		}
		key := filepath.ToSlash(rel)
		if de.IsDir() {
			if key == reservedDir ||
				!strings.HasPrefix(key+"/", prefix) && !strings.HasPrefix(prefix, key+"/") {
				return fs.SkipDir
			}
			return nil
		}
		if !de.Type().IsRegular() || !strings.HasPrefix(key, prefix) {
			return nil
		}
		fi, err := de.Info()
		if err != nil {
			if isNotExist(err) {
				return nil
			}
			return err
		}
		a, err := d.attrs(key, fi)
		if err != nil {
			return err
		}
		a.ContentType, a.CacheControl = "", ""
		out = append(out, a)
		return nil
	})
	if err != nil {
		return nil, err
	}
	// WalkDir's per-directory order is not key order ("a-z" sorts before "a/b").
	slices.SortFunc(out, func(x, y Attrs) int { return strings.Compare(x.Key, y.Key) })
	return out, nil
}

func (d *fileDriver) Ping(ctx context.Context) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	fi, err := os.Stat(d.tmpDir)
	if err != nil {
		return err
	}
	if !fi.IsDir() {
		return fmt.Errorf("%s is not a directory", d.tmpDir)
	}
	return nil
}

func (d *fileDriver) Close() error { return nil }

// attrs combines a data file's stat with its sidecar, falling back to derived values when the sidecar
// is missing or describes another version.
func (d *fileDriver) attrs(key string, fi fs.FileInfo) (Attrs, error) {
	if !fi.Mode().IsRegular() {
		// A directory is a prefix of other objects, not an object.
		return Attrs{}, ErrNotFound
	}
	a := Attrs{Key: key, Size: fi.Size(), ModTime: fi.ModTime(), ContentType: DefaultContentType}
	raw, err := os.ReadFile(d.metaPath(key))
	var s sidecar
	if err == nil && json.Unmarshal(raw, &s) == nil &&
		s.Size == fi.Size() && s.ModTimeNanos == fi.ModTime().UnixNano() {
		a.ETag, a.ContentType, a.CacheControl = s.ETag, s.ContentType, s.CacheControl
		return a, nil
	}
	if err != nil && !isNotExist(err) {
		return Attrs{}, err
	}
	// Unique per version without reading the whole file; shaped like a multipart ETag, which callers
	// already treat as opaque.
	a.ETag = fmt.Sprintf("%x-%x", fi.ModTime().UnixNano(), fi.Size())
	return a, nil
}

// commit renames a finished temp file into place, creating parent directories. A concurrent Delete may
// prune a parent directory between MkdirAll and Rename; that is retried.
func (d *fileDriver) commit(key, src, dst string) error {
	for attempt := 0; ; attempt++ {
		err := os.MkdirAll(filepath.Dir(dst), 0o755)
		if err == nil {
			err = os.Rename(src, dst)
		}
		if err == nil {
			return nil
		}
		if fi, serr := os.Lstat(dst); serr == nil && fi.IsDir() {
			return fmt.Errorf("key %q is also a prefix of other objects; file storage cannot hold both: %w",
				key, ErrInvalidKey)
		}
		if errors.Is(err, syscall.ENOTDIR) {
			return fmt.Errorf("a leading part of key %q is an object; file storage cannot hold both: %w",
				key, ErrInvalidKey)
		}
		if !errors.Is(err, fs.ErrNotExist) || attempt == 5 {
			return err
		}
	}
}

// sidecarTemp writes the sidecar of a data file with MD5 sum and stat fi to a temp file, for commit.
func (d *fileDriver) sidecarTemp(sum []byte, fi fs.FileInfo, opts PutOptions) (string, error) {
	return d.sidecarTempETag(hex.EncodeToString(sum), fi, opts)
}

func (d *fileDriver) sidecarTempETag(etag string, fi fs.FileInfo, opts PutOptions) (string, error) {
	meta, err := json.Marshal(sidecar{
		ETag:         etag,
		ContentType:  opts.ContentType,
		CacheControl: opts.CacheControl,
		Size:         fi.Size(),
		ModTimeNanos: fi.ModTime().UnixNano(),
	})
	if err != nil {
		return "", err
	}
	return d.writeTemp(meta)
}

func (d *fileDriver) writeTemp(b []byte) (string, error) {
	f, err := os.CreateTemp(d.tmpDir, "meta-*")
	if err != nil {
		return "", err
	}
	if _, err := f.Write(b); err != nil {
		f.Close()
		os.Remove(f.Name())
		return "", err
	}
	if err := syncClose(f); err != nil {
		os.Remove(f.Name())
		return "", err
	}
	return f.Name(), nil
}

func (d *fileDriver) removeStaleTemps() {
	entries, err := os.ReadDir(d.tmpDir)
	if err != nil {
		return
	}
	for _, e := range entries {
		if fi, err := e.Info(); err == nil && time.Since(fi.ModTime()) > staleTempAge {
			os.Remove(filepath.Join(d.tmpDir, e.Name()))
		}
	}
}

func (d *fileDriver) dataPath(key string) string {
	return filepath.Join(d.root, filepath.FromSlash(key))
}
func (d *fileDriver) metaPath(key string) string {
	return filepath.Join(d.metaDir, filepath.FromSlash(key))
}

func (d *fileDriver) lock(key string) *sync.RWMutex {
	h := fnv.New32a()
	h.Write([]byte(key))
	return &d.locks[h.Sum32()%lockStripes]
}

func checkFileKey(key string) error {
	if key == reservedDir || strings.HasPrefix(key, reservedDir+"/") {
		return fmt.Errorf("key %q: %s/ is reserved by the file driver: %w", key, reservedDir, ErrInvalidKey)
	}
	return nil
}

// syncClose makes the file's bytes durable before it is renamed into place: without it a crash can
// leave a visible object with no content.
func syncClose(f *os.File) error {
	if err := f.Chmod(0o644); err != nil { // CreateTemp makes 0600; other tools may serve the tree
		f.Close()
		return err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

// syncDir makes a rename durable. Best effort: not every platform can open a directory for syncing.
func syncDir(dir string) {
	if f, err := os.Open(dir); err == nil {
		f.Sync()
		f.Close()
	}
}

// prune removes empty directories from dir up to, not including, stop. Removing a non-empty directory
// fails, which ends the walk.
func prune(dir, stop string) {
	for dir != stop && strings.HasPrefix(dir, stop+string(filepath.Separator)) {
		if os.Remove(dir) != nil {
			return
		}
		dir = filepath.Dir(dir)
	}
}

// isNotExist also counts ENOTDIR: "a/b" when "a" is a file does not exist either.
func isNotExist(err error) bool {
	return errors.Is(err, fs.ErrNotExist) || errors.Is(err, syscall.ENOTDIR)
}

func fileErr(err error) error {
	if isNotExist(err) {
		return ErrNotFound
	}
	return err
}
