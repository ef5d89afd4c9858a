package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"os"
	"runtime/debug"
	"strings"
	"time"

	"github.com/lectern/lectern/cdn"
	"github.com/lectern/lectern/ingest"
	"github.com/lectern/lectern/internal/catalog"
	"github.com/lectern/lectern/internal/probe"
	"github.com/lectern/lectern/origin"
	"github.com/lectern/lectern/transcode"
)

func runIngest(ctx context.Context, args []string, _, stderr io.Writer) error {
	fs := newFlags("ingest", "ingest [flags]", stderr)
	listenAddr := fs.String("listen", ":8080", "address for the API, uploads and pages")
	db := fs.String("db", "sqlite://./data/lectern.db", "catalog database URL (postgres://... at scale)")
	storage := fs.String("storage", "file://./data/objects", "object storage URL")
	ffprobe := fs.String("ffprobe", "ffprobe", "ffprobe binary (validates uploads)")
	tmp := fs.String("tmp", os.TempDir(), "directory for uploads being validated")
	playback := fs.String("playback-base", "", "URL prefix of the edge or router for /hls/ playback URLs (empty: same host)")
	assets := fs.String("assets-dir", "internal/web/node_modules", "node_modules of `make web`, or a directory holding hls.min.js and tus.min.js")
	logLevel := fs.String("log-level", "info", "debug, info, warn or error")
	var whf webhookFlags
	whf.register(fs)
	maxUpload := byteSize(20 << 30)
	fs.Var(&maxUpload, "max-upload", "largest accepted upload")
	var uf uploadFlags
	uf.register(fs, true)
	var pbf playbackFlags
	pbf.register(fs, true)
	var pf purgeFlags
	pf.register(fs, true)
	regions := fs.String("regions", "", "region map file shared with the router and edges: the region whose \"schools\" list a lecture's teacher's school goes into its signed playback URLs, for the router; followed as it is edited. Needs --playback-keys. Empty: URLs carry no region")
	log, err := parseRole(fs, args, logLevel, stderr)
	if err != nil {
		return err
	}
	playbackKeys, err := pbf.parse()
	if err != nil {
		return err
	}
	schoolRegion, err := followSchools(ctx, *regions, len(playbackKeys) > 0, log)
	if err != nil {
		return err
	}
	purger, err := pf.purger()
	if err != nil {
		return err
	}
	if err := probe.CheckFFprobe(*ffprobe); err != nil {
		return err
	}
	wh, err := whf.worker(log.With("role", "webhook"))
	if err != nil {
		return err
	}
	store, err := openStore(ctx, *storage)
	if err != nil {
		return err
	}
	defer store.Close()
	// Without a webhook the catalog only inserts jobs; with one it also delivers events (no transcodes).
	catOpts := catalog.Options{Logger: log}
	addWebhooks(&catOpts, wh, false)
	cat, err := openCatalog(ctx, *db, catOpts)
	if err != nil {
		return err
	}
	defer cat.Close()
	if err := cat.Start(ctx); err != nil {
		return fmt.Errorf("start webhook delivery: %w", err)
	}
	defer stopQueue(cat, log, defaultGrace)
	ln, err := listen("listen", *listenAddr)
	if err != nil {
		return err
	}
	locks, err := cat.Locks(0) // nil on SQLite: lock files are right for one machine
	if err != nil {
		return err
	}
	if locks != nil {
		defer locks.Close()
	}
	ing, err := ingest.New(ingest.Config{Catalog: cat, Store: store, FFprobe: *ffprobe, TempDir: *tmp,
		MaxUploadBytes: int64(maxUpload), PlaybackBase: *playback, AssetsDir: *assets, Logger: log,
		UploadDir: uf.dir, UploadTTL: uf.ttl, MaxDuration: uf.maxDuration, Locks: locks,
		PlaybackKeys: playbackKeys, PlaybackTTL: pbf.ttl, Purger: purger, SchoolRegion: schoolRegion})
	if err != nil {
		return err
	}
	ing.Start(ctx)
	reg := newRegistry(ing.Collector())
	registerWebhook(reg, wh)
	mux := http.NewServeMux()
	mux.Handle("/metrics", metricsHandler(reg))
	mux.HandleFunc("/healthz", healthz)
	mux.Handle("/readyz", readyz(map[string]func(context.Context) error{"catalog": cat.Ping, "storage": store.Ping}))
	mux.Handle("/", ing.Handler())
	return serveUntilDone(ctx, log, defaultGrace, newServer("ingest", ln, mux, log))
}

func runWorker(ctx context.Context, args []string, _, stderr io.Writer) error {
	fs := newFlags("worker", "worker [flags]", stderr)
	listenAddr := fs.String("listen", ":9090", "address for /metrics, /healthz and /readyz")
	db := fs.String("db", "sqlite://./data/lectern.db", "catalog database URL (the queue lives there too)")
	storage := fs.String("storage", "file://./data/objects", "object storage URL")
	ffmpeg := fs.String("ffmpeg", "ffmpeg", "ffmpeg binary")
	ffprobe := fs.String("ffprobe", "ffprobe", "ffprobe binary")
	tmp := fs.String("tmp", os.TempDir(), "scratch directory for transcodes")
	var jf jobFlags
	jf.register(fs)
	var whf webhookFlags
	whf.register(fs)
	grace := fs.Duration("shutdown-grace", defaultGrace, "on SIGTERM, how long running transcodes may finish before they are cancelled and released for retry")
	logLevel := fs.String("log-level", "info", "debug, info, warn or error")
	log, err := parseRole(fs, args, logLevel, stderr)
	if err != nil {
		return err
	}
	if err := probe.CheckTools(*ffmpeg, *ffprobe); err != nil {
		return err
	}
	wh, err := whf.worker(log.With("role", "webhook"))
	if err != nil {
		return err
	}
	store, err := openStore(ctx, *storage)
	if err != nil {
		return err
	}
	defer store.Close()
	cfg := transcode.Config{FFmpeg: *ffmpeg, FFprobe: *ffprobe, TempDir: *tmp, Store: store, Logger: log}
	opts := catalog.Options{Logger: log}
	jf.apply(&cfg, &opts)
	addWebhooks(&opts, wh, true)
	cat, w, err := openWorkerCatalog(ctx, *db, cfg, opts)
	if err != nil {
		return err
	}
	defer cat.Close()
	ln, err := listen("listen", *listenAddr)
	if err != nil {
		return err
	}
	if err := cat.Start(ctx); err != nil {
		return fmt.Errorf("start transcode queue: %w", err)
	}
	mux := http.NewServeMux()
	reg := newRegistry(w.Stats().Collector())
	registerWebhook(reg, wh)
	mux.Handle("/metrics", metricsHandler(reg))
	mux.HandleFunc("/healthz", healthz)
	mux.Handle("/readyz", readyz(map[string]func(context.Context) error{"catalog": cat.Ping, "storage": store.Ping}))
	err = serveUntilDone(ctx, log, *grace, newServer("worker", ln, mux, log))
	// Running jobs get the grace period to finish; the rest are cancelled and released for retry.
	sctx, cancel := context.WithTimeout(context.Background(), *grace)
	defer cancel()
	if serr := cat.Stop(sctx); serr != nil {
		log.Warn("stop queue", "err", serr)
	}
	return err
}

func runOrigin(ctx context.Context, args []string, _, stderr io.Writer) error {
	fs := newFlags("origin", "origin [flags]", stderr)
	listenAddr := fs.String("listen", ":8081", "address to serve /hls/ from")
	storage := fs.String("storage", "file://./data/objects", "object storage URL (an s3:// URL without attempts= gets attempts=2: an outage answers 503 quickly)")
	logLevel := fs.String("log-level", "info", "debug, info, warn or error")
	edgeSecrets := fs.String("edge-secrets", "", "bearer secrets edges present (their --origin-secret): SECRET[,SECRET...], each >= 16 bytes; list old and new while rotating (prefer the environment variable). Needed with --playback-keys. Empty: plain /hls/ is open")
	hotMemory := byteSize(256 << 20)
	fs.Var(&hotMemory, "hot-memory", "in-memory cache of the newest segments and playlists (0: none)")
	maxReads := fs.Int("max-storage-reads", 64, "concurrent storage reads; beyond them requests queue briefly, then get 503")
	queueTimeout := fs.Duration("queue-timeout", time.Second, "longest wait for a storage read slot before a 503 with Retry-After")
	var pbf playbackFlags
	pbf.register(fs, false)
	var pf purgeFlags
	pf.register(fs, false)
	log, err := parseRole(fs, args, logLevel, stderr)
	if err != nil {
		return err
	}
	playbackKeys, err := pbf.parse()
	if err != nil {
		return err
	}
	secrets, err := parseEdgeSecrets(*edgeSecrets)
	if err != nil {
		return err
	}
	if *maxReads <= 0 || *queueTimeout <= 0 {
		return fmt.Errorf("--max-storage-reads %d, --queue-timeout %v: both must be positive", *maxReads, *queueTimeout)
	}
	if len(playbackKeys) > 0 && len(secrets) == 0 {
		// origin.New says the same; saying it before storage is opened keeps a typo from waiting on S3.
		return errors.New("--playback-keys needs --edge-secrets (or LECTERN_EDGE_SECRETS): edges fetch the unsigned /hls/ paths with one")
	}
	store, err := openStore(ctx, failFast(*storage))
	if err != nil {
		return err
	}
	defer store.Close()
	org, err := origin.New(origin.Config{Store: store, Logger: log, HotBytes: hotBytes(hotMemory),
		MaxStorageReads: *maxReads, QueueTimeout: *queueTimeout,
		PlaybackKeys: playbackKeys, EdgeSecrets: secrets, PurgeSecret: pf.secret})
	if err != nil {
		return err
	}
	ln, err := listen("listen", *listenAddr)
	if err != nil {
		return err
	}
	mux := http.NewServeMux()
	mux.Handle("/metrics", metricsHandler(newRegistry(org.Collector())))
	mux.Handle("/", org)
	return serveUntilDone(ctx, log, defaultGrace, newServer("origin", ln, mux, log))
}

// hotBytes maps --hot-memory to origin.Config.HotBytes, where 0 means the default and a negative
// value no hot cache.
func hotBytes(b byteSize) int64 {
	if b == 0 {
		return -1
	}
	return int64(b)
}

func runEdge(ctx context.Context, args []string, _, stderr io.Writer) error {
	fs := newFlags("edge", "edge --upstream URL [flags]", stderr)
	listenAddr := fs.String("listen", ":8082", "address students (or child edges) connect to")
	upstream := fs.String("upstream", "", "origin or parent edge URL, e.g. http://origin:8081 (required)")
	logLevel := fs.String("log-level", "info", "debug, info, warn or error")
	memory := byteSize(256 << 20)
	fs.Var(&memory, "memory", "memory cache size")
	originSecret := fs.String("origin-secret", "", "bearer secret this edge presents to its upstream on every request; one of the origin's --edge-secrets (prefer the environment variable)")
	diskDir := fs.String("disk-dir", "", "directory of the disk cache under the memory cache, kept across restarts (this edge's alone). Empty: memory only")
	diskSize := byteSize(10 << 30)
	fs.Var(&diskSize, "disk-size", "disk cache size, with --disk-dir")
	prefetch := fs.Int("prefetch", 2, "when a media playlist or segment is served, fetch this many following segments of the rendition into the cache (0: off)")
	maxRequests := fs.Int("max-requests", 20000, "client requests answered at once; beyond half prefetch stops, beyond three quarters new sessions get 503, beyond it everyone does")
	maxFills := fs.Int("max-fills", 512, "upstream fetches (misses) at once, shed by the same priorities as --max-requests")
	maxWaiters := fs.Int("max-waiters", 10000, "requests that may wait on one upstream fetch of a key; beyond it they get 503")
	waitTimeout := fs.Duration("wait-timeout", 5*time.Second, "how long a request waits on another request's upstream fetch for the response to start; then 504")
	collapse := fs.Bool("collapse", true, "collapse concurrent misses of an object into one upstream fetch that the others wait on; false (every miss fetches on its own) is a switch for benchmarks and diagnosis, not for production")
	sendBuffer := byteSize(defaultSendBuffer)
	fs.Var(&sendBuffer, "send-buffer", "kernel send buffer per client connection (0: the kernel's autotuning)")
	var peerf peerFlags
	peerf.register(fs)
	var pbf playbackFlags
	pbf.register(fs, false)
	var pf purgeFlags
	pf.register(fs, false)
	log, err := parseRole(fs, args, logLevel, stderr)
	if err != nil {
		return err
	}
	playbackKeys, err := pbf.parse()
	if err != nil {
		return err
	}
	if err := checkSecret(*originSecret); err != nil {
		return fmt.Errorf("--origin-secret %v", err)
	}
	u, err := url.Parse(*upstream)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return fmt.Errorf("--upstream %q: give the origin's URL, e.g. http://127.0.0.1:8081", *upstream)
	}
	if *diskDir != "" && diskSize <= 0 {
		return fmt.Errorf("--disk-size %d: must be positive", diskSize)
	}
	if *prefetch < 0 {
		return fmt.Errorf("--prefetch %d: give a number of segments, 0 for none", *prefetch)
	}
	if sendBuffer < 0 || sendBuffer > 64<<20 {
		return fmt.Errorf("--send-buffer %d: give a size up to 64MiB, 0 for the kernel's autotuning", sendBuffer)
	}
	if *maxWaiters <= 0 || *waitTimeout <= 0 {
		return fmt.Errorf("--max-waiters %d, --wait-timeout %v: both must be positive", *maxWaiters, *waitTimeout)
	}
	if *maxRequests <= 0 || *maxFills <= 0 {
		return fmt.Errorf("--max-requests %d, --max-fills %d: both must be positive", *maxRequests, *maxFills)
	}
	peers, err := peerf.parse(len(playbackKeys) > 0)
	if err != nil {
		return err
	}
	setEdgeMemoryLimit(int64(memory), log)
	edge, err := cdn.NewEdge(cdn.Config{Upstream: u, MemoryBytes: int64(memory), Logger: log,
		MaxRequests: *maxRequests, MaxFills: *maxFills, MaxWaiters: *maxWaiters, WaitTimeout: *waitTimeout,
		PurgeSecret: pf.secret, PlaybackKeys: playbackKeys, OriginSecret: *originSecret,
		DiskDir: *diskDir, DiskBytes: int64(diskSize), Prefetch: *prefetch,
		Peers: peers.peers, DrainingPeers: peers.draining, Self: peerf.self, PeerSecret: peerf.secret,
		PeerTimeout: peerf.timeout, PeerDialTimeout: peerf.dialTimeout, NoCollapse: !*collapse})
	if err != nil {
		if *diskDir != "" {
			// The other settings are checked above; what can fail here is the disk tier.
			return fmt.Errorf("--disk-dir %s: %w", *diskDir, err)
		}
		return err
	}
	defer edge.Close() // lets the last disk writes finish
	if peers.regionMap != nil {
		follow, stop := context.WithCancel(ctx)
		defer stop()
		go edge.FollowRegionMap(follow, peerf.regions, peerf.region, peers.regionMap, time.Second)
	}
	ln, err := listen("listen", *listenAddr)
	if err != nil {
		return err
	}
	ln = withSendBuffer(ln, int(sendBuffer))
	mux := http.NewServeMux()
	mux.Handle("/metrics", metricsHandler(newRegistry(edge.Collector())))
	mux.Handle("/", edge)
	return serveUntilDone(ctx, log, defaultGrace, newServer("edge", ln, mux, log))
}

const teacherUsage = `usage: lectern teacher add NAME [--school SCHOOL] [--db URL]
       lectern teacher school ID SCHOOL [--db URL]   (the school whose region serves the teacher's students; "" for none)
       lectern teacher revoke ID [--db URL]          (the token stops working; lectures stay)`

func runTeacher(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 || (args[0] != "add" && args[0] != "revoke" && args[0] != "school") {
		fmt.Fprintln(stderr, teacherUsage)
		return errUsage
	}
	verb := args[0]
	line := "teacher " + verb
	for _, l := range strings.Split(teacherUsage, "\n") {
		if _, after, ok := strings.Cut(l, "lectern "+line+" "); ok {
			line += " " + after
		}
	}
	fs := newFlags("teacher "+verb, line, stderr)
	db := fs.String("db", "sqlite://./data/lectern.db", "catalog database URL")
	var school *string
	if verb == "add" {
		school = fs.String("school", "", "the school the teacher teaches at, spelled as the region map's \"schools\" list it")
	}
	// Accept the positional arguments before or after the flags.
	rest := args[1:]
	var pos []string
	for len(rest) > 0 && (rest[0] == "" || rest[0][0] != '-') && len(pos) < 2 {
		pos, rest = append(pos, rest[0]), rest[1:]
	}
	if err := parse(fs, rest); err != nil {
		return usageErr(err)
	}
	pos = append(pos, fs.Args()...)
	want := 1
	if verb == "school" {
		want = 2
	}
	if len(pos) != want || pos[0] == "" {
		fmt.Fprintln(stderr, teacherUsage)
		return errUsage
	}
	name := pos[0]
	cat, err := openCatalog(ctx, *db, catalog.Options{})
	if err != nil {
		return err
	}
	defer cat.Close()
	if verb == "school" {
		if err := cat.SetTeacherSchool(ctx, name, pos[1]); err != nil {
			if catalog.IsNotFound(err) {
				return fmt.Errorf("no teacher with id %q", name)
			}
			return err
		}
		fmt.Fprintf(stderr, "teacher %s: school %q; new playback URLs of their lectures name its region within a minute\n", name, strings.TrimSpace(pos[1]))
		return nil
	}
	if verb == "revoke" {
		if err := cat.RevokeTeacher(ctx, name); err != nil {
			if catalog.IsNotFound(err) {
				return fmt.Errorf("no teacher with id %q", name)
			}
			return err
		}
		fmt.Fprintf(stderr, "teacher %s revoked: their token no longer works; their lectures stay published\n", name)
		return nil
	}
	t, token, err := cat.AddSchoolTeacher(ctx, name, *school)
	if err != nil {
		return err
	}
	at := ""
	if t.School != "" {
		at = fmt.Sprintf(" at %q", t.School)
	}
	fmt.Fprintf(stderr, "teacher %q%s created (id %s); the token is shown once, keep it:\n", t.Name, at, t.ID)
	fmt.Fprintln(stdout, token)
	return nil
}

// uploadFlags configure resumable uploads (ingest and serve).
type uploadFlags struct {
	dir              string
	ttl, maxDuration time.Duration
}

// register adds the flags; withMaxDuration false when the role already has --max-duration (serve
// shares its worker's).
func (u *uploadFlags) register(fs *flag.FlagSet, withMaxDuration bool) {
	fs.StringVar(&u.dir, "upload-dir", "", "directory for resumable uploads in progress with file storage (empty: inside the storage directory, so finished uploads are renamed, not copied)")
	fs.DurationVar(&u.ttl, "upload-ttl", 72*time.Hour, "an upload that receives nothing for this long is abandoned and deleted")
	if withMaxDuration {
		fs.DurationVar(&u.maxDuration, "max-duration", 6*time.Hour, "longest accepted lecture (negative: no limit)")
	}
}

// setEdgeMemoryLimit gives the Go runtime a soft memory limit just above what the edge is meant to
// hold: the memory tier's bytes plus an eighth for what fills and responses have in flight, plus the
// program itself. Without it the heap may grow to twice the live cache before a collection (GOGC
// 100). A GOMEMLIMIT set in the environment wins.
func setEdgeMemoryLimit(tier int64, log *slog.Logger) {
	if os.Getenv("GOMEMLIMIT") != "" {
		return
	}
	limit := tier + tier/8 + 64<<20
	debug.SetMemoryLimit(limit)
	log.Debug("edge memory limit", slog.Int64("bytes", limit))
}
