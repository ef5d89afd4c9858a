package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/riverqueue/river"
	"golang.org/x/sync/errgroup"

	"github.com/lectern/lectern/internal/catalog"
	"github.com/lectern/lectern/internal/objstore"
	"github.com/lectern/lectern/transcode"
)

// defaultGrace bounds how long in-flight requests and jobs get to finish after SIGINT/SIGTERM
// (--shutdown-grace); Kubernetes' default termination grace is 30 s.
const defaultGrace = 25 * time.Second

func newLogger(level string, w io.Writer) (*slog.Logger, error) {
	var l slog.Level
	if err := l.UnmarshalText([]byte(level)); err != nil {
		return nil, fmt.Errorf("--log-level %q: use debug, info, warn or error", level)
	}
	return slog.New(slog.NewTextHandler(w, &slog.HandlerOptions{Level: l})), nil
}

// parseRole parses a role's flags (with the environment) and builds its logger.
func parseRole(fs *flag.FlagSet, args []string, logLevel *string, stderr io.Writer) (*slog.Logger, error) {
	if err := parse(fs, args); err != nil {
		return nil, usageErr(err)
	}
	return newLogger(*logLevel, stderr)
}

// newRegistry returns a per-process registry (no global state) with the Go runtime and process collectors.
func newRegistry(cs ...prometheus.Collector) *prometheus.Registry {
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	reg.MustRegister(cs...)
	return reg
}

func metricsHandler(reg *prometheus.Registry) http.Handler {
	return promhttp.HandlerFor(reg, promhttp.HandlerOpts{Registry: reg})
}

// listen binds an address up front so a taken port stops start-up with one clear line.
func listen(flagName, addr string) (net.Listener, error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("cannot listen on %s: %v (choose another --%s)", addr, errors.Unwrap(err), flagName)
	}
	return ln, nil
}

// defaultSendBuffer is the edge's --send-buffer (see withSendBuffer).
const defaultSendBuffer = 128 << 10

// sendBufferListener sets the kernel send buffer of every connection it accepts (SO_SNDBUF, which
// also turns off the kernel's autotuning of it for that socket).
type sendBufferListener struct {
	net.Listener
	bytes int
}

// withSendBuffer returns ln with a fixed send buffer of n bytes per connection; ln itself for n <= 0.
// A cache that writes whole objects from memory sends them faster with a modest fixed buffer than
// with an autotuned one that swallows a whole segment per write: measured on loopback, a 1.9 MB
// segment went from 1366 to 2456 responses/s with 128 KiB (docs/benchmarks.md).
func withSendBuffer(ln net.Listener, n int) net.Listener {
	if n <= 0 {
		return ln
	}
	return sendBufferListener{ln, n}
}

func (l sendBufferListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	if tc, ok := c.(*net.TCPConn); ok {
		// The connection still works with the kernel's default buffer if this fails.
		_ = tc.SetWriteBuffer(l.bytes)
	}
	return c, nil // the *net.TCPConn itself, so net/http keeps its sendfile path
}

type server struct {
	name string
	ln   net.Listener
	srv  *http.Server
}

func newServer(name string, ln net.Listener, h http.Handler, log *slog.Logger) server {
	return server{name: name, ln: ln, srv: &http.Server{
		Handler:           h,
		ReadHeaderTimeout: 10 * time.Second,
		IdleTimeout:       2 * time.Minute,
		ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelWarn),
	}}
}

// serveUntilDone runs the servers until ctx is cancelled, then shuts them down gracefully: listeners close
// at once, in-flight requests get grace to finish. The first server error stops all of them.
func serveUntilDone(ctx context.Context, log *slog.Logger, grace time.Duration, servers ...server) error {
	g, gctx := errgroup.WithContext(ctx)
	for _, s := range servers {
		g.Go(func() error {
			log.Info("listening", "server", s.name, "addr", "http://"+s.ln.Addr().String())
			if err := s.srv.Serve(s.ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
				return fmt.Errorf("%s server: %w", s.name, err)
			}
			return nil
		})
	}
	g.Go(func() error {
		<-gctx.Done()
		sctx, cancel := context.WithTimeout(context.Background(), grace)
		defer cancel()
		for _, s := range servers {
			if err := s.srv.Shutdown(sctx); err != nil {
				log.Warn("shutdown", "server", s.name, "err", err)
			}
		}
		return nil
	})
	return g.Wait()
}

func openStore(ctx context.Context, rawURL string) (*objstore.Bucket, error) {
	octx, cancel := context.WithTimeout(ctx, 15*time.Second)
	defer cancel()
	b, err := objstore.Open(octx, rawURL)
	if err != nil {
		return nil, fmt.Errorf("storage %s: %w (fix --storage)", redactURL(rawURL), err)
	}
	return b, nil
}

// failFast gives an s3:// URL without attempts= two tries per request: a role that answers requests
// (the origin) should turn a storage outage into a quick 503 rather than wait out the S3 client's ten
// tries. Other URLs, and URLs that say attempts=, are returned as they are.
func failFast(rawURL string) string {
	u, err := url.Parse(rawURL)
	if err != nil || u.Scheme != "s3" || u.Query().Has("attempts") {
		return rawURL
	}
	q := u.Query()
	q.Set("attempts", "2")
	u.RawQuery = q.Encode()
	return u.String()
}

func openCatalog(ctx context.Context, rawURL string, opts catalog.Options) (*catalog.Catalog, error) {
	octx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	c, err := catalog.Open(octx, rawURL, opts)
	if err != nil {
		return nil, fmt.Errorf("database %s: %w (fix --db)", redactURL(rawURL), err)
	}
	return c, nil
}

// openWorkerCatalog opens the catalog with a transcode worker registered on its queue. The worker reports
// to the catalog while the catalog's River client needs the worker, so the worker is given a lateCatalog
// that is set right after Open, before Start lets any job run.
func openWorkerCatalog(ctx context.Context, rawURL string, cfg transcode.Config, opts catalog.Options) (*catalog.Catalog, *transcode.Worker, error) {
	// A worker killed mid-job (SIGKILL, OOM) never removed its scratch directory.
	if n, err := transcode.SweepTempDirs(cfg.TempDir); err != nil {
		return nil, nil, err
	} else if n > 0 && cfg.Logger != nil {
		cfg.Logger.Info("removed scratch directories of dead transcodes", "dir", cfg.TempDir, "count", n)
	}
	late := &lateCatalog{}
	cfg.Catalog = late
	w := transcode.NewWorker(cfg)
	// Profiles, tools, and the scaler this ffmpeg offers: found once here, not once per job.
	if err := w.Check(); err != nil {
		return nil, nil, err
	}
	if opts.Workers == nil { // addWebhooks may have made it
		opts.Workers = river.NewWorkers()
	}
	river.AddWorker(opts.Workers, w)
	cat, err := openCatalog(ctx, rawURL, opts)
	if err != nil {
		return nil, nil, err
	}
	late.Catalog = cat
	return cat, w, nil
}

// lateCatalog lets the transcode worker be registered before the catalog it reports to is open.
type lateCatalog struct{ *catalog.Catalog }

// redactURL hides passwords and secret keys before a URL reaches a log line or an error.
func redactURL(s string) string {
	for _, k := range []string{"secret_key=", "password="} {
		if i := strings.Index(s, k); i >= 0 {
			j := strings.IndexByte(s[i:], '&')
			if j < 0 {
				s = s[:i+len(k)] + "xxxxx"
			} else {
				s = s[:i+len(k)] + "xxxxx" + s[i+j:]
			}
		}
	}
	if at := strings.Index(s, "@"); at > 0 {
		if sch := strings.Index(s, "://"); sch >= 0 && sch < at {
			if colon := strings.Index(s[sch+3:at], ":"); colon >= 0 {
				s = s[:sch+3+colon+1] + "xxxxx" + s[at:]
			}
		}
	}
	return s
}

// healthz answers "alive" for every role.
func healthz(w http.ResponseWriter, _ *http.Request) {
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	_, _ = io.WriteString(w, "ok\n")
}

// readyz answers 200 when every check passes within a short deadline, else 503 naming the failing part.
func readyz(checks map[string]func(context.Context) error) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		ctx, cancel := context.WithTimeout(r.Context(), 3*time.Second)
		defer cancel()
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		w.Header().Set("Cache-Control", "no-store")
		var failed []string
		for name, check := range checks {
			if err := check(ctx); err != nil {
				failed = append(failed, name+": "+err.Error())
			}
		}
		if len(failed) > 0 {
			w.WriteHeader(http.StatusServiceUnavailable)
			_, _ = io.WriteString(w, "not ready\n"+strings.Join(failed, "\n")+"\n")
			return
		}
		_, _ = io.WriteString(w, "ready\n")
	}
}

// jobFlags are the transcode-queue settings shared by serve and worker.
type jobFlags struct {
	workers     int
	lease       time.Duration
	rescueAfter time.Duration
	maxDuration time.Duration
	noChapters  bool
}

func (j *jobFlags) register(fs *flag.FlagSet) {
	fs.IntVar(&j.workers, "workers", 1, "concurrent transcode jobs (one ffmpeg pass already uses every core)")
	fs.DurationVar(&j.lease, "lease", 2*time.Minute, "a transcode whose worker has been silent this long is taken over by another worker")
	fs.DurationVar(&j.rescueAfter, "rescue-after", catalog.DefaultRescueStuckJobsAfter, "how long a job may run before the queue offers it to another worker (a live worker keeps it through its lease)")
	fs.DurationVar(&j.maxDuration, "max-duration", 6*time.Hour, "reject lectures longer than this")
	fs.BoolVar(&j.noChapters, "no-chapters", false, "do not detect slide chapters")
}

// apply puts the flags into the worker's and the queue's configuration.
func (j *jobFlags) apply(cfg *transcode.Config, opts *catalog.Options) {
	cfg.LeaseTTL, cfg.MaxDuration, cfg.NoChapters = j.lease, j.maxDuration, j.noChapters
	opts.MaxWorkers, opts.RescueStuckJobsAfter = j.workers, j.rescueAfter
}
