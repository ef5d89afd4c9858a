package transcode

import (
	"context"
	"fmt"
	"os"
	"path"
	"path/filepath"
	"strings"
	"sync/atomic"

	"golang.org/x/sync/errgroup"

	"github.com/lectern/lectern/internal/objstore"
)

// cacheControl is sent with every object: everything under v{n}/ is immutable by construction, a
// replacement upload becomes v{n+1}.
const cacheControl = "public, max-age=31536000, immutable"

// VersionPrefix is where version n of a lecture lives in object storage.
func VersionPrefix(lectureID string, version int) string {
	return fmt.Sprintf("hls/%s/v%d/", lectureID, version)
}

// ObjectOptions returns the content type and caching of an object by its name in the version tree
// (e.g. "720p/seg_00001.m4s", "audio/init.mp4"): what every publisher of HLS objects must store.
func ObjectOptions(name string) objstore.PutOptions {
	ct := "application/octet-stream"
	switch path.Ext(name) {
	case ".m3u8":
		ct = "application/vnd.apple.mpegurl"
	case ".m4s":
		ct = "video/iso.segment"
	case ".mp4":
		ct = "video/mp4"
		if strings.HasPrefix(name, audioName) {
			ct = "audio/mp4"
		}
	case ".vtt":
		ct = "text/vtt; charset=utf-8"
	case ".jpg":
		ct = "image/jpeg"
	}
	return objstore.PutOptions{ContentType: ct, CacheControl: cacheControl}
}

// audioName is the directory-name prefix of audio renditions ("audio", "audio-48k").
const audioName = "audio"

// PublishStage orders uploads so that nothing refers to an object that is not stored yet: media
// (init sections, segments), then media playlists, then the master. A player (or a cache) that finds
// the master early finds everything it points to.
func PublishStage(name string) int {
	switch {
	case name == MasterName:
		return 2
	case strings.HasSuffix(name, ".m3u8"):
		return 1
	default:
		return 0
	}
}

// publish uploads objects (paths relative to outDir) under prefix, stage by stage, up to concurrency at
// a time within a stage. It returns the bytes uploaded. On error nothing is published as far as
// readers know: the catalog still points at the previous version, and a retry overwrites the partial
// upload of this one.
func publish(ctx context.Context, store Store, prefix, outDir string, objects []string, concurrency int) (int64, error) {
	var stages [3][]string
	for _, o := range objects {
		s := PublishStage(o)
		stages[s] = append(stages[s], o)
	}
	var uploaded atomic.Int64
	for _, stage := range stages {
		g, gctx := errgroup.WithContext(ctx)
		g.SetLimit(concurrency)
		for _, name := range stage {
			g.Go(func() error {
				file := filepath.Join(outDir, filepath.FromSlash(name))
				if err := store.PutFile(gctx, path.Join(prefix, name), file, ObjectOptions(name)); err != nil {
					return fmt.Errorf("transcode: upload %s: %w", name, err)
				}
				if n, err := fileSize(file); err == nil {
					uploaded.Add(n)
				}
				return nil
			})
		}
		if err := g.Wait(); err != nil {
			return uploaded.Load(), err
		}
	}
	return uploaded.Load(), nil
}

func fileSize(name string) (int64, error) {
	fi, err := os.Stat(name)
	if err != nil {
		return 0, err
	}
	return fi.Size(), nil
}
