// Package webhook delivers lecture events (lecture.ready, lecture.failed) to the one URL a deployment
// configures, signed with HMAC-SHA256 and retried with backoff.
//
// # Delivery
//
// The catalog records each event as a River job in the transaction of the change it reports (see
// catalog.EventArgs). Worker is the River worker for those jobs: every process started with a webhook URL
// registers it on the "webhooks" queue. One attempt is one POST of the event as JSON, bounded by
// Config.Timeout; a 2xx answer delivers the event. Anything else (another status, a redirect, a network
// error, a timeout) fails the attempt, and River schedules the next one after Worker.NextRetry: 15 s
// doubling each time with ±25% jitter, capped at an hour, for catalog.EventMaxAttempts attempts in all
// (about four hours). Nothing waits for a delivery: uploads and transcodes only insert the job.
//
// 4xx answers are retried like 5xx. For a webhook they almost always mean a receiver being deployed or
// misconfigured (404 route missing, 401 wrong secret) that someone fixes within the retry window, and a
// retry costs one small request. Redirects are not followed: Go would turn the POST into a GET.
//
// # Signature
//
// Each attempt carries Lectern-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256(secret, "<t>.<body>")>,
// signed afresh at send time over the exact body bytes. Receivers check it with Verify (or the few lines
// in docs/webhooks.md) and deduplicate retries by Lectern-Delivery, the event id.
package webhook

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"net/url"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/riverqueue/river"

	"github.com/lectern/lectern/internal/catalog"
)

// Defaults for Config.
const (
	DefaultTimeout   = 10 * time.Second
	DefaultRetryBase = 15 * time.Second
	DefaultRetryMax  = time.Hour
)

// Config configures New.
type Config struct {
	// URL receives every event as a POST. Required: http or https with a host.
	URL string
	// Secret keys the HMAC signature. Required.
	Secret string
	// Timeout bounds one attempt, from connecting to reading the status (default 10s).
	Timeout time.Duration
	// RetryBase is the wait after the first failed attempt; it doubles after each one (default 15s).
	RetryBase time.Duration
	// RetryMax caps the wait between attempts (default 1h).
	RetryMax time.Duration
	// Client sends the requests. Nil means a client with Timeout that does not follow redirects.
	Client *http.Client
	// Logger receives one line per failed attempt and per event given up. Nil means slog.Default().
	Logger *slog.Logger
}

// Worker delivers catalog.EventArgs jobs. Register it with river.AddWorker in catalog.Options.Workers
// and work catalog.EventQueue.
type Worker struct {
	river.WorkerDefaults[catalog.EventArgs]
	cfg   Config
	where string // the URL without query or user info, for logs and errors
	stats Stats
}

// New checks cfg and returns a Worker. A missing secret or a URL that is not http(s) is an error meant to
// be shown to the operator as is.
func New(cfg Config) (*Worker, error) {
	u, err := url.Parse(cfg.URL)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("webhook URL %q: want an http:// or https:// URL with a host", redactURL(cfg.URL))
	}
	if cfg.Secret == "" {
		return nil, errors.New("webhook: a secret is required to sign events")
	}
	if cfg.Timeout <= 0 {
		cfg.Timeout = DefaultTimeout
	}
	if cfg.RetryBase <= 0 {
		cfg.RetryBase = DefaultRetryBase
	}
	if cfg.RetryMax <= 0 {
		cfg.RetryMax = DefaultRetryMax
	}
	if cfg.Client == nil {
		cfg.Client = &http.Client{
			Timeout:       cfg.Timeout,
			CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
		}
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	return &Worker{cfg: cfg, where: redactURL(cfg.URL)}, nil
}

// redactURL drops user info, query and fragment: tokens live there.
func redactURL(raw string) string {
	u, err := url.Parse(raw)
	if err != nil {
		return "(unparsable URL)"
	}
	return (&url.URL{Scheme: u.Scheme, Host: u.Host, Path: u.Path}).String()
}

// Stats returns the worker's counters.
func (w *Worker) Stats() *Stats { return &w.stats }

// Timeout is River's bound on one attempt: the HTTP timeout plus time to record the result.
func (w *Worker) Timeout(*river.Job[catalog.EventArgs]) time.Duration {
	return w.cfg.Timeout + 5*time.Second
}

// NextRetry is when the attempt after a failed job.Attempt runs: RetryBase doubled per failed attempt,
// ±25% jitter so the events of an outage do not all come back at once, capped at RetryMax.
func (w *Worker) NextRetry(job *river.Job[catalog.EventArgs]) time.Time {
	return time.Now().Add(w.backoff(job.Attempt))
}

func (w *Worker) backoff(attempt int) time.Duration {
	d := w.cfg.RetryBase
	for i := 1; i < attempt && d < w.cfg.RetryMax; i++ {
		d *= 2
	}
	d = time.Duration(float64(d) * (0.75 + 0.5*rand.Float64()))
	return min(d, w.cfg.RetryMax)
}

// Work makes one delivery attempt. An error makes River retry after NextRetry, up to the job's
// MaxAttempts.
func (w *Worker) Work(ctx context.Context, job *river.Job[catalog.EventArgs]) error {
	ev := job.Args
	st := w.stats.For(ev.Type)
	err := w.deliver(ctx, ev)
	if err == nil {
		st.Delivered.Add(1)
		return nil
	}
	st.AttemptErrors.Add(1)
	log := w.cfg.Logger.With("event", ev.Type, "delivery", ev.ID, "lecture", ev.Lecture.ID, "attempt", job.Attempt, "err", err)
	if job.Attempt >= job.MaxAttempts {
		st.GaveUp.Add(1)
		log.ErrorContext(ctx, "webhook: giving up on the event", "attempts", job.Attempt)
	} else {
		log.WarnContext(ctx, "webhook: delivery failed; will retry", "max_attempts", job.MaxAttempts)
	}
	return err
}

// deliver POSTs the event once.
func (w *Worker) deliver(ctx context.Context, ev catalog.EventArgs) error {
	body, err := json.Marshal(ev)
	if err != nil {
		return river.JobCancel(fmt.Errorf("webhook: encode event: %w", err)) // retrying cannot help
	}
	ctx, cancel := context.WithTimeout(ctx, w.cfg.Timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, w.cfg.URL, bytes.NewReader(body))
	if err != nil {
		return fmt.Errorf("webhook: request to %s: %w", w.where, err)
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", "Lectern-Webhook/1")
	req.Header.Set(HeaderEvent, ev.Type)
	req.Header.Set(HeaderDelivery, ev.ID)
	req.Header.Set(HeaderSignature, Sign(w.cfg.Secret, time.Now(), body))
	resp, err := w.cfg.Client.Do(req)
	if err != nil {
		// url.Error repeats the full URL, query included; say where without it.
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err
		}
		return fmt.Errorf("webhook: POST %s: %w", w.where, err)
	}
	defer resp.Body.Close()
	snippet, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
	// Drain a little more so the connection can be reused; a receiver sending megabytes gets cut off.
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	if resp.StatusCode >= 200 && resp.StatusCode < 300 {
		return nil
	}
	msg := fmt.Sprintf("webhook: POST %s: %s", w.where, resp.Status)
	if s := oneLine(snippet, 200); s != "" {
		msg += ": " + s
	}
	return errors.New(msg)
}

// oneLine makes a response body fit in a log line and River's error list.
func oneLine(b []byte, n int) string {
	s := strings.Join(strings.Fields(strings.ToValidUTF8(string(b), "?")), " ")
	if len(s) > n {
		s = s[:n]
		for !utf8.ValidString(s) {
			s = s[:len(s)-1]
		}
		s += "..."
	}
	return s
}
