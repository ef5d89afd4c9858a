package catalog

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/riverqueue/river"
)

// Errors returned by the catalog. Callers test them with IsNotFound, IsConflict and IsInvalid (or
// errors.Is); messages are wrapped with context, so never compare strings.
var (
	// ErrNotFound: the teacher, course, lecture or token does not exist.
	ErrNotFound = errors.New("catalog: not found")
	// ErrConflict: the change is not allowed in the current state, e.g. a stale version (a newer upload
	// replaced the one a job is working on) or a course that belongs to another teacher.
	ErrConflict = errors.New("catalog: conflict")
	// ErrInvalid: an argument is malformed (empty title, progress out of range, ...).
	ErrInvalid = errors.New("catalog: invalid argument")
)

// IsNotFound reports whether err means the thing asked for does not exist.
func IsNotFound(err error) bool { return errors.Is(err, ErrNotFound) }

// IsConflict reports whether err means the change clashes with the current state.
func IsConflict(err error) bool { return errors.Is(err, ErrConflict) }

// IsInvalid reports whether err means an argument was rejected before touching the database.
func IsInvalid(err error) bool { return errors.Is(err, ErrInvalid) }

// Defaults for Options.
const (
	DefaultMaxWorkers   = 1
	DefaultPollInterval = time.Second
	// DefaultRescueStuckJobsAfter is how long a job may run before River hands it to another attempt. The
	// worker lease (see MarkTranscoding) makes that safe for jobs that are only slow: the new attempt
	// finds the lease fresh and waits, so this bounds how long a killed worker's job sits, not how long
	// a lecture may take.
	DefaultRescueStuckJobsAfter = 10 * time.Minute
	// connectTimeout bounds Open's first contact with PostgreSQL so a wrong --db fails fast.
	connectTimeout = 5 * time.Second
	// hardStopTimeout bounds how long Stop and Close wait for cancelled jobs to return.
	hardStopTimeout = 30 * time.Second
)

// Options configure Open. The zero value is an insert-only catalog (it enqueues jobs but never works them).
type Options struct {
	// Logger receives River's and the catalog's logs. Nil means slog.Default().
	Logger *slog.Logger
	// Workers holds the River workers this process runs (normally one for TranscodeArgs). Nil makes an
	// insert-only client: the ingest role enqueues jobs but does not work them, and Start is a no-op.
	Workers *river.Workers
	// MaxWorkers is the number of transcode jobs worked at once by this process (default 1: one ffmpeg
	// pass already uses every core).
	MaxWorkers int
	// RescueStuckJobsAfter is how long a job may stay running before River presumes its worker died and
	// makes it available again (default 10m). A live worker keeps its job through the lease.
	RescueStuckJobsAfter time.Duration
	// PollInterval is how often idle workers look for new jobs (River's FetchPollInterval, default 1s).
	// SQLite has no LISTEN/NOTIFY, so on SQLite this is the pickup latency for jobs enqueued by another
	// process.
	PollInterval time.Duration
	// Queues are the queues this process works when Workers is set, each with how many of its jobs run
	// at once. Nil means {TranscodeQueue: MaxWorkers}: the worker role. A process that delivers webhooks
	// adds EventQueue (and a worker for EventArgs); the ingest role works EventQueue alone.
	Queues map[string]int
	// Events makes the changes webhooks report (PublishVersion, FailLecture, RejectUpload) insert an
	// EventArgs job in their own transaction. Off, no event is recorded and nothing is ever delivered.
	Events bool
}

func (o Options) withDefaults() Options {
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	if o.MaxWorkers <= 0 {
		o.MaxWorkers = DefaultMaxWorkers
	}
	if o.RescueStuckJobsAfter <= 0 {
		o.RescueStuckJobsAfter = DefaultRescueStuckJobsAfter
	}
	if o.PollInterval <= 0 {
		o.PollInterval = DefaultPollInterval
	}
	if o.Queues == nil {
		o.Queues = map[string]int{TranscodeQueue: o.MaxWorkers}
	}
	return o
}

// Catalog is the durable catalog and transcode queue. It is safe for concurrent use.
type Catalog struct {
	b      backend
	log    *slog.Logger
	works  bool // Options.Workers was set
	events bool // Options.Events: lifecycle changes insert webhook event jobs
	hooks  testHooks
	mu     sync.Mutex // guards the lifecycle below; held while starting and stopping
	state  clientState
	closed bool
}

type clientState int

const (
	clientIdle clientState = iota
	clientRunning
	clientStopped
)

// Open connects to the catalog database named by rawURL, applies River's and the catalog's migrations, and
// returns a Catalog whose queue client is ready to insert jobs (call Start to also work them).
//
// Accepted URLs:
//
//	sqlite:///abs/path/lectern.db   SQLite file (parent directory created)
//	sqlite://relative/path.db       SQLite file relative to the working directory
//	file:/abs/path.db, file:rel.db  SQLite, same as above
//	postgres://user@host:5432/db    PostgreSQL (also postgresql://); any libpq-style query options
//
// An unsupported scheme or an unreachable server returns a single-line error meant to be shown to the
// operator as is.
func Open(ctx context.Context, rawURL string, opts Options) (*Catalog, error) {
	opts = opts.withDefaults()
	scheme, _, ok := strings.Cut(rawURL, ":")
	if !ok || scheme == "" || strings.ContainsAny(scheme, "/\\ ") {
		return nil, fmt.Errorf("catalog: database URL %q has no scheme (want sqlite:///path/lectern.db or postgres://user@host/db)", redact(rawURL))
	}
	var b backend
	var err error
	switch strings.ToLower(scheme) {
	case "sqlite", "file":
		b, err = openSQLite(ctx, rawURL, opts)
	case "postgres", "postgresql":
		b, err = openPostgres(ctx, rawURL, opts)
	default:
		return nil, fmt.Errorf("catalog: unsupported database URL scheme %q (want sqlite://, file: or postgres://)", scheme)
	}
	if err != nil {
		return nil, err
	}
	return &Catalog{b: b, log: opts.Logger, works: opts.Workers != nil, events: opts.Events}, nil
}

// redact hides a password in a URL that is being echoed in an error.
func redact(rawURL string) string {
	if u, err := url.Parse(rawURL); err == nil {
		return u.Redacted()
	}
	return rawURL
}

// quieter logs River's routine INFO lines (job counts every few seconds, start and stop) at DEBUG, so a
// role's log at the default level says what happened to lectures, not what the queue's loop is doing.
func quieter(l *slog.Logger) *slog.Logger { return slog.New(demoteInfo{l.Handler()}) }

type demoteInfo struct{ slog.Handler }

func (d demoteInfo) Enabled(ctx context.Context, lvl slog.Level) bool {
	if lvl == slog.LevelInfo {
		lvl = slog.LevelDebug
	}
	return d.Handler.Enabled(ctx, lvl)
}

func (d demoteInfo) Handle(ctx context.Context, r slog.Record) error {
	if r.Level == slog.LevelInfo {
		r.Level = slog.LevelDebug
	}
	return d.Handler.Handle(ctx, r)
}

func (d demoteInfo) WithAttrs(as []slog.Attr) slog.Handler {
	return demoteInfo{d.Handler.WithAttrs(as)}
}
func (d demoteInfo) WithGroup(g string) slog.Handler { return demoteInfo{d.Handler.WithGroup(g)} }

// riverConfig is the River client configuration shared by both backends.
func riverConfig(opts Options) *river.Config {
	cfg := &river.Config{
		Logger: quieter(opts.Logger),
		// Workers size their own timeouts (river.Worker's Timeout; the transcode worker's grows with the
		// lecture); this default covers workers that do not, and River wants it within the rescue time.
		JobTimeout:           opts.RescueStuckJobsAfter,
		RescueStuckJobsAfter: opts.RescueStuckJobsAfter,
		FetchPollInterval:    opts.PollInterval,
		// TranscodeArgs.InsertOpts sets the same; this covers jobs inserted without it.
		MaxAttempts: transcodeMaxAttempts,
		// Jobs are for whichever process works their queue: the ingest role enqueues transcodes while
		// registering only the webhook worker, and any role may record events another one delivers.
		SkipUnknownJobCheck: true,
	}
	// River requires FetchCooldown <= FetchPollInterval; its default cooldown is 100ms.
	if opts.PollInterval < 100*time.Millisecond {
		cfg.FetchCooldown = opts.PollInterval
	}
	if opts.Workers != nil {
		cfg.Workers = opts.Workers
		cfg.Queues = make(map[string]river.QueueConfig, len(opts.Queues))
		for name, n := range opts.Queues {
			cfg.Queues[name] = river.QueueConfig{MaxWorkers: max(n, 1)}
		}
	}
	return cfg
}

// Backend names the database in use: "sqlite" or "postgres".
func (c *Catalog) Backend() string { return c.b.name() }

// Ping checks that the database answers (for readiness probes).
func (c *Catalog) Ping(ctx context.Context) error {
	if err := c.b.ping(ctx); err != nil {
		return fmt.Errorf("catalog: ping %s: %w", c.b.name(), err)
	}
	return nil
}

// Start makes this process work transcode jobs with Options.Workers until Stop or Close. It is a no-op
// for an insert-only catalog (nil Workers). ctx's values are kept but its cancellation is ignored: a
// signal context being cancelled must not cut running jobs short before Stop has given them their grace
// period.
func (c *Catalog) Start(ctx context.Context) error {
	if !c.works {
		return nil
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		return errors.New("catalog: Start after Close")
	}
	if c.state == clientRunning {
		return nil
	}
	if err := c.b.start(context.WithoutCancel(ctx)); err != nil {
		return fmt.Errorf("catalog: start job workers: %w", err)
	}
	c.state = clientRunning
	return nil
}

// Stop shuts the workers down gracefully: no new jobs are fetched and running jobs may finish until ctx
// is done. Jobs still running then get their contexts cancelled and are recorded as errored, so River
// retries them (on this or another worker) instead of leaving them stuck until the rescuer notices.
// Stop returns nil once every job has returned, or an error if even cancelled jobs did not return in time.
func (c *Catalog) Stop(ctx context.Context) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.state != clientRunning {
		return nil
	}
	err := c.b.stop(ctx)
	if err == nil {
		c.state = clientStopped
		return nil
	}
	c.log.WarnContext(ctx, "catalog: running jobs did not finish in time; cancelling them so they are retried", "err", err)
	hardCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), hardStopTimeout)
	defer cancel()
	if err := c.b.stopAndCancel(hardCtx); err != nil {
		return fmt.Errorf("catalog: stop job workers: cancelled jobs did not return: %w", err)
	}
	c.state = clientStopped
	return nil
}

// Close stops any running workers abruptly (see Stop) and closes the database. It is safe to call twice.
func (c *Catalog) Close() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		return nil
	}
	c.closed = true
	if c.state == clientRunning {
		ctx, cancel := context.WithTimeout(context.Background(), hardStopTimeout)
		err := c.b.stopAndCancel(ctx)
		cancel()
		if err != nil {
			c.log.Warn("catalog: stopping job workers on close", "err", err)
		}
		c.state = clientStopped
	}
	if err := c.b.close(); err != nil {
		return fmt.Errorf("catalog: close %s: %w", c.b.name(), err)
	}
	return nil
}
