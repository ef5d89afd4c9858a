package ingest

import (
	"context"
	"time"

	"github.com/lectern/lectern/internal/catalog"
)

// Start runs the service's background work until ctx ends: it finishes uploads whose last byte
// arrived just before a crash, deletes abandoned uploads, and (on PostgreSQL) relays requests to
// release upload locks. It returns at once.
func (s *Service) Start(ctx context.Context) {
	go s.recover(ctx)
	go s.expireLoop(ctx)
	if s.tus.pgLocks != nil {
		go s.tus.pgLocks.listen(ctx)
	}
}

// recover finishes receiving uploads that are complete in the store: the process died between storing
// the last byte and queueing the lecture, and the client, seeing every byte acknowledged, will not
// send it again.
func (s *Service) recover(ctx context.Context) {
	ups, err := s.cfg.Catalog.ReceivingUploads(ctx, 10000)
	if err != nil {
		if ctx.Err() == nil {
			s.log.Warn("upload recovery: list uploads", "err", err)
		}
		return
	}
	for _, up := range ups {
		if ctx.Err() != nil {
			return
		}
		id := s.tus.storeID(up)
		info, err := s.tus.store.info(ctx, id)
		if err != nil || info.SizeIsDeferred || info.Offset != info.Size {
			continue // still receiving, or gone (expiry will clean it)
		}
		s.log.Info("finishing an upload completed before a restart", "upload", up.ID, "lecture", up.LectureID)
		if err := s.tus.finish(ctx, id); err != nil {
			s.log.Warn("upload recovery", "upload", up.ID, "err", err)
		}
	}
}

// ExpireUploads deletes uploads abandoned before now (no bytes for UploadTTL) and returns how many.
func (s *Service) ExpireUploads(ctx context.Context, now time.Time) (int, error) {
	n := 0
	for {
		ups, err := s.cfg.Catalog.ExpiredUploads(ctx, now, 100)
		if err != nil || len(ups) == 0 {
			return n, err
		}
		for _, up := range ups {
			// Mark first: a PATCH arriving now gets 410 instead of writing to bytes being deleted.
			if err := s.cfg.Catalog.EndUpload(ctx, up.ID, catalog.UploadExpired, "abandoned"); err != nil {
				if catalog.IsConflict(err) {
					continue
				}
				return n, err
			}
			if err := s.tus.store.discard(ctx, s.tus.storeID(up)); err != nil {
				s.log.Warn("delete expired upload", "upload", up.ID, "err", err)
			}
			s.stats.UploadsExpired.Add(1)
			n++
		}
	}
}

func (s *Service) expireLoop(ctx context.Context) {
	every := min(s.cfg.UploadTTL/10, 10*time.Minute)
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		if _, err := s.ExpireUploads(ctx, time.Now()); err != nil && ctx.Err() == nil {
			s.log.Warn("expire uploads", "err", err)
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}
