package main

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"time"

	"github.com/lectern/lectern/cdn"
	"github.com/lectern/lectern/ingest"
	"github.com/lectern/lectern/internal/catalog"
	"github.com/lectern/lectern/internal/probe"
	"github.com/lectern/lectern/internal/purge"
	"github.com/lectern/lectern/origin"
	"github.com/lectern/lectern/transcode"
)

// serveFlags are the all-in-one settings; the defaults make `lectern serve` work with nothing else running.
type serveFlags struct {
	listen, originListen, data, db, storage string
	edgeDiskDir                             string
	edgePrefetch                            int
	ffmpeg, ffprobe, assets, publicURL      string
	logLevel                                string
	grace                                   time.Duration
	jobs                                    jobFlags
	edgeMemory, hotMemory, maxUpload        byteSize
	edgeDiskSize                            byteSize
	sample                                  bool
	webhooks                                webhookFlags
	uploads                                 uploadFlags
	playback                                playbackFlags
	purge                                   purgeFlags
}

func runServe(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	var f serveFlags
	f.edgeMemory, f.hotMemory, f.maxUpload, f.edgeDiskSize = 256<<20, 256<<20, 20<<30, 10<<30
	fs := newFlags("serve", "serve [flags]", stderr)
	fs.StringVar(&f.listen, "listen", "127.0.0.1:8080", "public address: pages, API, uploads, and the edge at /hls/")
	fs.StringVar(&f.originListen, "origin-listen", "127.0.0.1:8081", "address of the origin the edge pulls from")
	fs.StringVar(&f.data, "data", "./data", "data directory (SQLite catalog and objects unless --db/--storage say otherwise)")
	fs.StringVar(&f.db, "db", "", "catalog database URL: sqlite:///path.db or postgres://... (default sqlite in --data)")
	fs.StringVar(&f.storage, "storage", "", "object storage URL: file:///dir or s3://bucket?endpoint=... (default file:// in --data)")
	fs.StringVar(&f.ffmpeg, "ffmpeg", "ffmpeg", "ffmpeg binary")
	fs.StringVar(&f.ffprobe, "ffprobe", "ffprobe", "ffprobe binary")
	fs.StringVar(&f.assets, "assets-dir", "internal/web/node_modules", "node_modules of `make web`, or a directory holding hls.min.js and tus.min.js")
	fs.StringVar(&f.publicURL, "public-url", "", "URL students and teachers use to reach --listen (default http://LISTEN)")
	fs.StringVar(&f.logLevel, "log-level", "info", "debug, info, warn or error")
	f.jobs.register(fs)
	f.webhooks.register(fs)
	fs.Var(&f.edgeMemory, "edge-memory", "edge memory cache size")
	fs.StringVar(&f.edgeDiskDir, "edge-disk-dir", "", "directory of the edge's disk cache under its memory cache, kept across restarts. Empty: memory only")
	fs.Var(&f.edgeDiskSize, "edge-disk-size", "edge disk cache size, with --edge-disk-dir")
	fs.IntVar(&f.edgePrefetch, "edge-prefetch", 2, "the edge fetches this many following segments of a rendition being played (0: off)")
	fs.Var(&f.hotMemory, "hot-memory", "origin's in-memory cache of the newest segments and playlists (0: none)")
	fs.Var(&f.maxUpload, "max-upload", "largest accepted upload")
	f.uploads.register(fs, false)
	f.playback.register(fs, true)
	f.purge.register(fs, false)
	fs.DurationVar(&f.grace, "shutdown-grace", defaultGrace, "on SIGTERM, how long requests and transcodes may finish before they are cancelled (jobs are released for retry)")
	fs.BoolVar(&f.sample, "sample", false, "with an empty catalog, generate a short sample lecture with ffmpeg and publish it")
	log, err := parseRole(fs, args, &f.logLevel, stderr)
	if err != nil {
		return err
	}
	if err := probe.CheckTools(f.ffmpeg, f.ffprobe); err != nil {
		return err
	}
	wh, err := f.webhooks.worker(log.With("role", "webhook"))
	if err != nil {
		return err
	}
	playbackKeys, err := f.playback.parse()
	if err != nil {
		return err
	}
	data, err := filepath.Abs(f.data)
	if err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Join(data, "tmp"), 0o755); err != nil {
		return fmt.Errorf("data directory %s: %v (fix --data)", data, err)
	}
	if f.db == "" {
		f.db = "sqlite://" + filepath.Join(data, "lectern.db")
	}
	if f.storage == "" {
		f.storage = "file://" + filepath.Join(data, "objects")
	}
	if f.publicURL == "" {
		f.publicURL = "http://" + f.listen
	}

	store, err := openStore(ctx, f.storage)
	if err != nil {
		return err
	}
	defer store.Close()

	cfg := transcode.Config{
		FFmpeg: f.ffmpeg, FFprobe: f.ffprobe, TempDir: filepath.Join(data, "tmp"),
		Store: store, Logger: log.With("role", "worker"),
	}
	opts := catalog.Options{Logger: log.With("role", "queue")}
	f.jobs.apply(&cfg, &opts)
	addWebhooks(&opts, wh, true)
	cat, worker, err := openWorkerCatalog(ctx, f.db, cfg, opts)
	if err != nil {
		return err
	}
	defer cat.Close()

	originLn, err := listen("origin-listen", f.originListen)
	if err != nil {
		return err
	}
	publicLn, err := listen("listen", f.listen)
	if err != nil {
		originLn.Close()
		return err
	}
	publicLn = withSendBuffer(publicLn, defaultSendBuffer) // students' segments come from here
	// With signed playback the origin serves plain /hls/ only to edges, so its listener is no way
	// around the tokens; the in-process edge gets a credential made for this run.
	var edgeSecrets []string
	if len(playbackKeys) > 0 {
		sec, err := newEdgeSecret()
		if err != nil {
			return err
		}
		edgeSecrets = []string{sec}
	}
	org, err := origin.New(origin.Config{Store: store, Logger: log.With("role", "origin"), HotBytes: hotBytes(f.hotMemory),
		PlaybackKeys: playbackKeys, EdgeSecrets: edgeSecrets})
	if err != nil {
		return err
	}
	upstream := &url.URL{Scheme: "http", Host: originLn.Addr().String()}
	cfgEdge := cdn.Config{Upstream: upstream, MemoryBytes: int64(f.edgeMemory), Logger: log.With("role", "edge"),
		PlaybackKeys: playbackKeys, DiskDir: f.edgeDiskDir, DiskBytes: int64(f.edgeDiskSize), Prefetch: max(f.edgePrefetch, 0)}
	if len(edgeSecrets) > 0 {
		cfgEdge.OriginSecret = edgeSecrets[0]
	}
	if f.edgeDiskDir != "" && f.edgeDiskSize <= 0 {
		return fmt.Errorf("--edge-disk-size %d: must be positive", f.edgeDiskSize)
	}
	edge, err := cdn.NewEdge(cfgEdge)
	if err != nil {
		if f.edgeDiskDir != "" {
			// The other settings are checked above; what can fail here is the disk tier.
			return fmt.Errorf("--edge-disk-dir %s: %w", f.edgeDiskDir, err)
		}
		return err
	}
	defer edge.Close() // lets the last disk writes finish
	// A purge, from ingest or from another ingest over HTTP, empties both caches, the origin's hot
	// cache first: an edge purged first could refill from the origin before it is purged.
	purgeBoth := func(target string) int {
		n := org.Purge(target)
		return n + edge.Purge(target)
	}
	locks, err := cat.Locks(0) // PostgreSQL only; nil means lock files
	if err != nil {
		return err
	}
	if locks != nil {
		defer locks.Close()
	}
	ing, err := ingest.New(ingest.Config{
		Locks:   locks,
		Catalog: cat, Store: store, FFprobe: f.ffprobe, TempDir: filepath.Join(data, "tmp"),
		MaxUploadBytes: int64(f.maxUpload), AssetsDir: f.assets, Logger: log.With("role", "ingest"),
		UploadDir: f.uploads.dir, UploadTTL: f.uploads.ttl, MaxDuration: f.jobs.maxDuration,
		PlaybackKeys: playbackKeys, PlaybackTTL: f.playback.ttl, Purger: purge.Multi{purge.Local(org.Purge), cdn.LocalPurger{Edge: edge}},
	})
	if err != nil {
		return err
	}
	ing.Start(ctx)

	reg := newRegistry(org.Collector(), edge.Collector(), worker.Stats().Collector(), ing.Collector())
	registerWebhook(reg, wh)
	originMux := http.NewServeMux()
	originMux.Handle("/metrics", metricsHandler(reg))
	originMux.Handle("/", org)
	mux := http.NewServeMux()
	// Students' requests take the edge path, exactly as they would on a CDN node.
	mux.Handle("/hls/", edge)
	mux.Handle("/s/", edge)
	mux.Handle(purge.Path, purge.Handler(f.purge.secret, log.With("role", "edge"), "edge", purgeBoth))
	mux.Handle("/metrics", metricsHandler(reg))
	mux.HandleFunc("/healthz", healthz)
	mux.Handle("/readyz", readyz(map[string]func(context.Context) error{"catalog": cat.Ping, "storage": store.Ping}))
	mux.Handle("/", ing.Handler())

	if err := cat.Start(ctx); err != nil {
		return fmt.Errorf("start transcode queue: %w", err)
	}
	// The queue drains while the HTTP servers drain, so shutdown takes one grace period, not two.
	queueCtx, stopQueue := context.WithCancel(ctx)
	queueDone := make(chan struct{})
	go func() {
		defer close(queueDone)
		<-queueCtx.Done()
		sctx, cancel := context.WithTimeout(context.Background(), f.grace)
		defer cancel()
		if err := cat.Stop(sctx); err != nil {
			log.Warn("stop queue", "err", err)
		}
	}()

	if f.sample {
		if err := publishSample(ctx, log, cat, ing, f.ffmpeg, data, stdout, f.publicURL); err != nil {
			log.Warn("sample lecture not created", "err", err)
		}
	}
	fmt.Fprintf(stdout, "Lectern is running.\n  Students: %s/\n  Teachers: %s/teach\n  Metrics:  %s/metrics\n", f.publicURL, f.publicURL, f.publicURL)

	err = serveUntilDone(ctx, log, f.grace,
		newServer("public", publicLn, mux, log),
		newServer("origin", originLn, originMux, log))
	stopQueue()
	<-queueDone
	log.Info("stopped")
	return err
}

// publishSample makes a newcomer's first `make run` playable at once: with an empty catalog it creates a
// demo teacher (token saved in the data dir), generates a short clip with ffmpeg and ingests it through
// the same path as an upload.
func publishSample(ctx context.Context, log *slog.Logger, cat *catalog.Catalog, ing *ingest.Service, ffmpeg, data string, stdout io.Writer, publicURL string) error {
	n, err := cat.CountLectures(ctx)
	if err != nil || n > 0 {
		return err
	}
	teacher, token, err := cat.AddTeacher(ctx, "demo")
	if err != nil {
		return err
	}
	tokenFile := filepath.Join(data, "demo-teacher.token")
	if err := os.WriteFile(tokenFile, []byte(token+"\n"), 0o600); err != nil {
		return err
	}
	clip := filepath.Join(data, "tmp", "sample.mp4")
	defer os.Remove(clip)
	if err := generateClip(ctx, ffmpeg, clip, 20*time.Second); err != nil {
		return err
	}
	src, err := os.Open(clip)
	if err != nil {
		return err
	}
	defer src.Close()
	l, err := ing.Ingest(ctx, teacher, ingest.Meta{Title: "Sample lecture", Course: "Getting started"}, src)
	if err != nil {
		return err
	}
	log.Info("sample lecture queued", "lecture", l.ID)
	fmt.Fprintf(stdout, "Sample lecture: %s/watch/%s (ready in a few seconds)\nDemo teacher token (saved in %s): %s\n", publicURL, l.ID, tokenFile, token)
	return nil
}

// generateClip writes a test lecture: moving test pattern with a tone, 720p, H.264/AAC.
func generateClip(ctx context.Context, ffmpeg, out string, d time.Duration) error {
	secs := fmt.Sprintf("%.0f", d.Seconds())
	cmd := exec.CommandContext(ctx, ffmpeg, "-hide_banner", "-loglevel", "error", "-y",
		"-f", "lavfi", "-i", "testsrc2=size=1280x720:rate=30:duration="+secs,
		"-f", "lavfi", "-i", "sine=frequency=440:sample_rate=48000:duration="+secs,
		"-c:v", "libx264", "-preset", "veryfast", "-pix_fmt", "yuv420p", "-c:a", "aac", "-shortest", out)
	if b, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("generate sample with ffmpeg: %v: %s", err, b)
	}
	return nil
}

// newEdgeSecret returns a random credential for serve's in-process edge to present to its origin.
func newEdgeSecret() (string, error) {
	b := make([]byte, 32)
	if _, err := rand.Read(b); err != nil {
		return "", fmt.Errorf("edge secret: %w", err)
	}
	return base64.RawURLEncoding.EncodeToString(b), nil
}

func usageErr(err error) error {
	if errors.Is(err, flag.ErrHelp) {
		return err
	}
	return errUsage
}
