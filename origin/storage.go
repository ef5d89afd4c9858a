package origin

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"time"

	"github.com/lectern/lectern/internal/objstore"
)

// storageOp names a storage call in the latency histogram.
type storageOp int

const (
	opGet storageOp = iota
	opRange
	opHead
	opList
	numOps
)

func (o storageOp) String() string {
	return [...]string{"get", "range", "head", "list"}[o]
}

// admit takes a storage slot for a request, or says why not: the breaker is open, or the slots and
// the queue are full.
func (s *Server) admit(ctx context.Context) (func(), error) {
	if !s.breaker.allow(time.Now()) {
		s.stats.rejected[rejectStorageDown].Add(1)
		return nil, errStorageDown
	}
	release, err := s.limit.acquire(ctx)
	if err != nil {
		var ol *overloadError
		if errors.As(err, &ol) {
			s.stats.rejected[ol.reason].Add(1)
		}
		return nil, err
	}
	return release, nil
}

// observe accounts for one storage call: the read counter, the latency histogram, the breaker and
// the error counter.
func (s *Server) observe(op storageOp, start time.Time, err error) {
	now := time.Now()
	s.stats.StorageReads.Add(1)
	s.stats.latency[op].Observe(now.Sub(start))
	s.breaker.record(err, now)
	if err != nil && !objstore.IsNotFound(err) && !objstore.IsInvalidRange(err) && !errors.Is(err, context.Canceled) {
		s.stats.StorageErrors.Add(1)
	}
}

// storageFailure notes a failure that happened after the call returned (while reading a body).
func (s *Server) storageFailure(key string, err error) {
	s.stats.StorageErrors.Add(1)
	s.breaker.record(err, time.Now())
	s.log.Warn("origin storage read failed", slog.String("key", key), slog.Any("err", err))
}

// storageGet takes a slot and opens key. On success the caller must close the body and then call
// release.
func (s *Server) storageGet(ctx context.Context, key string) (io.ReadCloser, objstore.Attrs, func(), error) {
	release, err := s.admit(ctx)
	if err != nil {
		return nil, objstore.Attrs{}, nil, err
	}
	opened := false
	defer func() {
		if !opened { // a failed or panicking call gives the slot back
			release()
		}
	}()
	body, attrs, err := s.get(ctx, key)
	if err != nil {
		return nil, attrs, nil, err
	}
	opened = true
	return body, attrs, release, nil
}

func (s *Server) get(ctx context.Context, key string) (io.ReadCloser, objstore.Attrs, error) {
	start := time.Now()
	body, attrs, err := s.store.Get(ctx, key)
	s.observe(opGet, start, err)
	return body, attrs, err
}

func (s *Server) getRange(ctx context.Context, key string, off, n int64) (io.ReadCloser, objstore.Attrs, error) {
	start := time.Now()
	body, attrs, err := s.store.GetRange(ctx, key, off, n)
	s.observe(opRange, start, err)
	return body, attrs, err
}

func (s *Server) head(ctx context.Context, key string) (objstore.Attrs, error) {
	start := time.Now()
	attrs, err := s.store.Head(ctx, key)
	s.observe(opHead, start, err)
	return attrs, err
}

func (s *Server) list(ctx context.Context, prefix string) ([]objstore.Attrs, error) {
	start := time.Now()
	objs, err := s.store.List(ctx, prefix)
	s.observe(opList, start, err)
	return objs, err
}
