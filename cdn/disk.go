package cdn

import (
	"container/list"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/lectern/lectern/internal/purge"
)

// maxDiskWrites bounds the disk writes in flight. A fill never waits for the disk: beyond this many,
// the write is skipped (the object is still in memory, and is written again on its next fill).
const maxDiskWrites = 32

// diskTier is the byte-bounded level under the memory tier: one checksummed file per key (see
// diskfile.go), an in-memory index of the files for lookups, purges and least-recently-used
// eviction, rebuilt from the directory at start-up.
type diskTier struct {
	dir      string
	maxBytes int64
	stats    *Stats
	log      *slog.Logger
	purge    *purge.Generations

	mu      sync.Mutex
	index   map[string]*diskItem
	lru     *list.List // of *diskItem, most recently used at the front
	bytes   int64
	pending map[string]*diskWrite // the newest write of each key not yet renamed into place

	slots  chan struct{}
	writes sync.WaitGroup
}

type diskItem struct {
	key  string
	size int64
	elem *list.Element
}

// diskWrite is one entry on its way to disk; a newer write of its key, a removal or a purge
// replaces or drops it from diskTier.pending, and then it is discarded instead of renamed.
type diskWrite struct{}

func openDiskTier(dir string, maxBytes int64, stats *Stats, log *slog.Logger, p *purge.Generations) (*diskTier, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	d := &diskTier{
		dir: dir, maxBytes: maxBytes, stats: stats, log: log, purge: p,
		index: map[string]*diskItem{}, lru: list.New(), pending: map[string]*diskWrite{},
		slots: make(chan struct{}, maxDiskWrites),
	}
	if err := d.scan(); err != nil {
		return nil, err
	}
	return d, nil
}

// scan rebuilds the index: temp files left by a crash are deleted, and so is every file whose prefix
// and meta do not check out; the rest are ordered by modification time, which reads refresh.
func (d *diskTier) scan() error {
	type found struct {
		key   string
		size  int64
		mtime time.Time
	}
	var files []found
	err := filepath.WalkDir(d.dir, func(path string, de fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if de.IsDir() {
			return nil
		}
		name := de.Name()
		if strings.HasSuffix(name, ".tmp") {
			os.Remove(path)
			return nil
		}
		if !isDiskName(name) || filepath.Base(filepath.Dir(path)) != name[:2] {
			return nil // not ours; leave it alone
		}
		key, size, mtime, err := checkFile(path, name)
		if err != nil {
			d.log.Warn("edge disk tier: deleting unreadable entry", slog.String("file", path), slog.Any("err", err))
			d.stats.DiskCorrupt.Add(1)
			os.Remove(path)
			return nil
		}
		files = append(files, found{key, size, mtime})
		return nil
	})
	if err != nil {
		return fmt.Errorf("scanning %s: %w", d.dir, err)
	}
	slices.SortFunc(files, func(a, b found) int { return a.mtime.Compare(b.mtime) })
	d.mu.Lock()
	defer d.mu.Unlock()
	for _, f := range files {
		d.add(f.key, f.size)
	}
	d.evictLocked()
	return nil
}

func checkFile(path, name string) (key string, size int64, mtime time.Time, err error) {
	f, err := os.Open(path)
	if err != nil {
		return "", 0, time.Time{}, err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return "", 0, time.Time{}, err
	}
	key, err = readKey(f, fi.Size(), name)
	return key, fi.Size(), fi.ModTime(), err
}

func (d *diskTier) path(key string) string { return filepath.Join(d.dir, diskName(key)) }

// add puts a file in the index as the most recently used; d.mu is held.
func (d *diskTier) add(key string, size int64) {
	if old, ok := d.index[key]; ok {
		d.dropLocked(old)
	}
	it := &diskItem{key: key, size: size}
	it.elem = d.lru.PushFront(it)
	d.index[key] = it
	d.bytes += size
	d.stats.DiskBytes.Add(size)
	d.stats.DiskEntries.Add(1)
}

// dropLocked removes it from the index, not the file; d.mu is held.
func (d *diskTier) dropLocked(it *diskItem) {
	d.lru.Remove(it.elem)
	delete(d.index, it.key)
	d.bytes -= it.size
	d.stats.DiskBytes.Add(-it.size)
	d.stats.DiskEntries.Add(-1)
}

// removeLocked removes it from the index and its file; d.mu is held, so no write of the key can
// rename a new file into place meanwhile.
func (d *diskTier) removeLocked(it *diskItem) {
	d.dropLocked(it)
	if err := os.Remove(d.path(it.key)); err != nil && !errors.Is(err, fs.ErrNotExist) {
		d.log.Warn("edge disk tier: cannot delete entry", slog.String("key", it.key), slog.Any("err", err))
	}
}

func (d *diskTier) evictLocked() {
	for d.bytes > d.maxBytes && d.lru.Len() > 0 {
		d.removeLocked(d.lru.Back().Value.(*diskItem))
		d.stats.DiskEvictions.Add(1)
	}
}

// get reads key's file. A file that fails its checks is deleted and counted, and get reports a miss.
func (d *diskTier) get(key string) (*entry, bool) {
	d.mu.Lock()
	it, ok := d.index[key]
	if ok {
		d.lru.MoveToFront(it.elem)
	}
	d.mu.Unlock()
	if !ok {
		return nil, false
	}
	path := d.path(key)
	data, err := os.ReadFile(path)
	if err == nil {
		var ent *entry
		if ent, err = decodeEntry(key, data); err == nil {
			// Keeps the recency for the index rebuilt after a restart; failing is harmless.
			now := time.Now()
			os.Chtimes(path, now, now)
			return ent, true
		}
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.index[key] != it {
		return nil, false // replaced or removed meanwhile; the new file is not this one
	}
	if errors.Is(err, fs.ErrNotExist) {
		d.dropLocked(it)
		return nil, false
	}
	d.log.Warn("edge disk tier: deleting corrupt entry", slog.String("key", key), slog.Any("err", err))
	d.stats.DiskCorrupt.Add(1)
	d.removeLocked(it)
	return nil, false
}

// write stores ent under key in the background unless a purge runs after generation gen (or the
// key is removed, or written again) before the file is in place. The caller holds the purge read
// lock with the generation still gen, so a purge cannot slip in between its check and the
// registration here.
func (d *diskTier) write(key string, ent *entry, gen uint64) {
	if int64(len(ent.body))+diskPrefixLen+diskTrailerLen > d.maxBytes {
		return
	}
	select {
	case d.slots <- struct{}{}:
	default:
		d.stats.DiskWritesSkipped.Add(1)
		return
	}
	w := &diskWrite{}
	d.mu.Lock()
	d.pending[key] = w
	d.mu.Unlock()
	d.writes.Add(1)
	go func() {
		defer d.writes.Done()
		defer func() { <-d.slots }()
		if err := d.writeFile(key, ent, gen, w); err != nil {
			d.stats.DiskWriteErrors.Add(1)
			d.log.Warn("edge disk tier: write failed", slog.String("key", key), slog.Any("err", err))
		}
	}()
}

// writeFile writes a temp file in the entry's directory, syncs it, and renames it into place if w is
// still the key's newest write and no purge has run since gen.
func (d *diskTier) writeFile(key string, ent *entry, gen uint64, w *diskWrite) (err error) {
	head, trailer, err := encodeEntry(key, ent)
	if err != nil {
		d.forgetWrite(key, w)
		return err
	}
	final := d.path(key)
	if err := os.MkdirAll(filepath.Dir(final), 0o755); err != nil {
		d.forgetWrite(key, w)
		return err
	}
	f, err := os.CreateTemp(filepath.Dir(final), filepath.Base(final)+".*.tmp")
	if err != nil {
		d.forgetWrite(key, w)
		return err
	}
	tmp := f.Name()
	renamed := false
	defer func() {
		if !renamed {
			os.Remove(tmp)
		}
	}()
	for _, b := range [][]byte{head, ent.body, trailer} {
		if _, err = f.Write(b); err != nil {
			break
		}
	}
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		d.forgetWrite(key, w)
		return err
	}
	size := int64(len(head) + len(ent.body) + len(trailer))

	d.purge.Hold(func() {
		d.mu.Lock()
		defer d.mu.Unlock()
		if d.pending[key] != w {
			return // superseded, removed or purged
		}
		delete(d.pending, key)
		if d.purge.Current() != gen {
			return
		}
		if err = os.Rename(tmp, final); err != nil {
			return
		}
		renamed = true
		d.add(key, size)
		d.evictLocked()
	})
	return err
}

func (d *diskTier) forgetWrite(key string, w *diskWrite) {
	d.mu.Lock()
	if d.pending[key] == w {
		delete(d.pending, key)
	}
	d.mu.Unlock()
}

// remove deletes key's file and cancels its pending write.
func (d *diskTier) remove(key string) {
	d.mu.Lock()
	defer d.mu.Unlock()
	delete(d.pending, key)
	if it, ok := d.index[key]; ok {
		d.removeLocked(it)
	}
}

// removeMatching deletes the files of matching keys and cancels their pending writes, from the
// index alone (no walk of the directory). It returns the keys whose files it deleted.
func (d *diskTier) removeMatching(match func(string) bool) []string {
	d.mu.Lock()
	defer d.mu.Unlock()
	for key := range d.pending {
		if match(key) {
			delete(d.pending, key)
		}
	}
	var keys []string
	for key, it := range d.index {
		if match(key) {
			d.removeLocked(it)
			keys = append(keys, key)
		}
	}
	return keys
}

// wait blocks until the writes in flight are done.
func (d *diskTier) wait() { d.writes.Wait() }
