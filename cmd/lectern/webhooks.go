package main

import (
	"context"
	"errors"
	"flag"
	"log/slog"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/riverqueue/river"

	"github.com/lectern/lectern/internal/catalog"
	"github.com/lectern/lectern/internal/webhook"
)

// webhookWorkers is how many deliveries one process makes at once. Deliveries are small POSTs; two keep
// one slow receiver from holding up the next event without hammering it.
const webhookWorkers = 2

// webhookFlags are the webhook settings of the roles that record events (ingest: rejected uploads;
// worker: published and failed transcodes; serve: both). Every process given a URL also delivers.
type webhookFlags struct{ url, secret string }

func (f *webhookFlags) register(fs *flag.FlagSet) {
	fs.StringVar(&f.url, "webhook-url", "", "POST lecture.ready and lecture.failed events to this URL (give every ingest and worker the same)")
	fs.StringVar(&f.secret, "webhook-secret", "", "key of the HMAC-SHA256 Lectern-Signature on every event (required with --webhook-url; prefer the environment variable)")
}

// worker returns the webhook worker, or nil when no URL is set. A URL without a secret is refused: unsigned
// events could be forged by anyone who finds the receiver.
func (f *webhookFlags) worker(log *slog.Logger) (*webhook.Worker, error) {
	if f.url == "" {
		return nil, nil
	}
	if f.secret == "" {
		return nil, errors.New("--webhook-url needs --webhook-secret (or LECTERN_WEBHOOK_SECRET): events are signed so receivers can trust them")
	}
	return webhook.New(webhook.Config{URL: f.url, Secret: f.secret, Logger: log})
}

// addWebhooks makes the catalog record events and this process deliver them, next to the transcode
// queue when transcodes is set. A nil w (no --webhook-url) changes nothing.
func addWebhooks(opts *catalog.Options, w *webhook.Worker, transcodes bool) {
	if w == nil {
		return
	}
	opts.Events = true
	if opts.Workers == nil {
		opts.Workers = river.NewWorkers()
	}
	river.AddWorker(opts.Workers, w)
	if opts.Queues == nil {
		opts.Queues = map[string]int{}
		if transcodes {
			opts.Queues[catalog.TranscodeQueue] = max(opts.MaxWorkers, catalog.DefaultMaxWorkers)
		}
	}
	opts.Queues[catalog.EventQueue] = webhookWorkers
}

// registerWebhook adds the delivery counters to a role's /metrics (nothing without a webhook).
func registerWebhook(reg *prometheus.Registry, w *webhook.Worker) {
	if w != nil {
		reg.MustRegister(w.Stats().Collector())
	}
}

// stopQueue lets running deliveries or transcodes finish within grace, then releases the rest for retry.
func stopQueue(cat *catalog.Catalog, log *slog.Logger, grace time.Duration) {
	ctx, cancel := context.WithTimeout(context.Background(), grace)
	defer cancel()
	if err := cat.Stop(ctx); err != nil {
		log.Warn("stop queue", "err", err)
	}
}
