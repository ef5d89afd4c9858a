package ingest

import (
	"context"
	"io"
	"os"
	"path/filepath"

	"github.com/tus/tusd/v2/pkg/filestore"
	tusd "github.com/tus/tusd/v2/pkg/handler"
)

// writebackStore is tusd's filestore with the kernel's writeback started while a PATCH is still
// arriving. The upload is synced before it is accepted (objstore.Adopt); without this the whole file's
// dirty pages would wait for that one fsync after the last byte, and the teacher with them.
type writebackStore struct{ filestore.FileStore }

func (s writebackStore) useIn(c *tusd.StoreComposer) {
	c.UseCore(s)
	c.UseTerminater(s)
}

func (s writebackStore) NewUpload(ctx context.Context, info tusd.FileInfo) (tusd.Upload, error) {
	u, err := s.FileStore.NewUpload(ctx, info)
	if err != nil {
		return nil, err
	}
	return s.wrap(ctx, u)
}

func (s writebackStore) GetUpload(ctx context.Context, id string) (tusd.Upload, error) {
	u, err := s.FileStore.GetUpload(ctx, id)
	if err != nil {
		return nil, err
	}
	return s.wrap(ctx, u)
}

func (s writebackStore) wrap(ctx context.Context, u tusd.Upload) (tusd.Upload, error) {
	info, err := u.GetInfo(ctx)
	if err != nil {
		return nil, err
	}
	return writebackUpload{Upload: u, path: filepath.Join(s.Path, filepath.FromSlash(info.ID))}, nil
}

func (s writebackStore) AsTerminatableUpload(u tusd.Upload) tusd.TerminatableUpload {
	return s.FileStore.AsTerminatableUpload(u.(writebackUpload).Upload)
}

type writebackUpload struct {
	tusd.Upload
	path string
}

// writebackEvery is how many bytes arrive between two writeback requests.
const writebackEvery = 8 << 20

func (u writebackUpload) WriteChunk(ctx context.Context, offset int64, src io.Reader) (int64, error) {
	f, err := os.Open(u.path)
	if err != nil {
		return u.Upload.WriteChunk(ctx, offset, src)
	}
	defer f.Close()
	r := &writebackReader{r: src, f: f, start: offset}
	n, err := u.Upload.WriteChunk(ctx, offset, r)
	startWriteback(f, offset, n)
	return n, err
}

// writebackReader asks for writeback of what the store has written so far, every writebackEvery bytes
// read: the store writes each buffer it read before reading the next, so everything but the last
// buffer (at most 1 MiB behind) is in the file.
type writebackReader struct {
	r           io.Reader
	f           *os.File
	start, read int64
	last        int64
}

func (w *writebackReader) Read(p []byte) (int, error) {
	n, err := w.r.Read(p)
	w.read += int64(n)
	if done := w.read - 1<<20; done-w.last >= writebackEvery {
		startWriteback(w.f, w.start+w.last, done-w.last)
		w.last = done
	}
	return n, err
}
