package webhook_test

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/riverqueue/river"

	"github.com/lectern/lectern/internal/catalog"
	"github.com/lectern/lectern/internal/testenv"
	"github.com/lectern/lectern/internal/webhook"
)

// Deliveries go through the real queue (River on the catalog database) on both backends.
var backends = map[string]func(t *testing.T) string{
	"SQLite":   func(t *testing.T) string { return "sqlite://" + filepath.Join(t.TempDir(), "lectern.db") },
	"Postgres": func(t *testing.T) string { return testenv.PostgresURL(t) },
}

const secret = "whsec_delivery_test"

// openDelivering opens a catalog that records events and delivers them with a webhook worker, the way a
// role started with --webhook-url does (without the transcode queue).
func openDelivering(t *testing.T, dbURL string, cfg webhook.Config) (*catalog.Catalog, *webhook.Worker) {
	t.Helper()
	cfg.Secret = secret
	cfg.Logger = slog.New(slog.DiscardHandler)
	w, err := webhook.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	workers := river.NewWorkers()
	river.AddWorker(workers, w)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	c, err := catalog.Open(ctx, dbURL, catalog.Options{Logger: cfg.Logger, Events: true, Workers: workers,
		Queues: map[string]int{catalog.EventQueue: 2}, PollInterval: 20 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := c.Close(); err != nil {
			t.Error(err)
		}
	})
	if err := c.Start(ctx); err != nil {
		t.Fatal(err)
	}
	return c, w
}

// newLecture returns a lecture of a new teacher with v1 pending and leased by "w1".
func newLecture(t *testing.T, ctx context.Context, c *catalog.Catalog, teacher string) (catalog.Lecture, int) {
	t.Helper()
	tr, _, err := c.AddTeacher(ctx, teacher)
	if err != nil {
		t.Fatal(err)
	}
	l, err := c.CreateLecture(ctx, catalog.NewLecture{TeacherID: tr.ID, Title: "Lecture of " + teacher})
	if err != nil {
		t.Fatal(err)
	}
	v, err := c.EnqueueTranscode(ctx, l.ID, catalog.Source{Key: "sources/" + l.ID + "/1"})
	if err != nil {
		t.Fatal(err)
	}
	if err := c.MarkTranscoding(ctx, l.ID, v, "w1", time.Minute); err != nil {
		t.Fatal(err)
	}
	return l, v
}

type delivery struct {
	at     time.Time
	header http.Header
	body   []byte
}

// A receiver failing twice gets the same event three times, each signed over the same body, spaced by
// the worker's backoff, and the job then completes.
func TestRetriedUntilDelivered(t *testing.T) {
	for name, open := range backends {
		t.Run(name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			defer cancel()
			var mu sync.Mutex
			var got []delivery
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				b, _ := io.ReadAll(r.Body)
				mu.Lock()
				got = append(got, delivery{time.Now(), r.Header.Clone(), b})
				n := len(got)
				mu.Unlock()
				if n <= 2 {
					http.Error(w, "not yet", http.StatusInternalServerError)
				}
			}))
			defer srv.Close()
			const base = 100 * time.Millisecond
			c, w := openDelivering(t, open(t), webhook.Config{URL: srv.URL + "/hook", RetryBase: base})

			l, v := newLecture(t, ctx, c, "Ada")
			if err := c.PublishVersion(ctx, l.ID, v, "w1", catalog.Publication{DurationSeconds: 42}); err != nil {
				t.Fatal(err)
			}
			var jobs []catalog.EventJob
			for deadline := time.Now().Add(20 * time.Second); ; time.Sleep(20 * time.Millisecond) {
				var err error
				if jobs, err = c.EventJobs(ctx, l.ID); err != nil {
					t.Fatal(err)
				}
				if len(jobs) == 1 && jobs[0].State == "completed" {
					break
				}
				if time.Now().After(deadline) {
					t.Fatalf("event jobs = %+v, want one completed", jobs)
				}
			}
			mu.Lock()
			defer mu.Unlock()
			if len(got) != 3 {
				t.Fatalf("receiver got %d requests, want 3", len(got))
			}
			ev := jobs[0].Args
			for i, d := range got {
				if err := webhook.Verify(secret, d.header.Get(webhook.HeaderSignature), d.body, time.Minute); err != nil {
					t.Errorf("attempt %d: signature does not verify: %v", i+1, err)
				}
				if err := webhook.Verify("whsec_wrong", d.header.Get(webhook.HeaderSignature), d.body, time.Minute); err == nil {
					t.Errorf("attempt %d: verifies under the wrong secret", i+1)
				}
				if id := d.header.Get(webhook.HeaderDelivery); id != ev.ID || !strings.HasPrefix(id, "evt_") {
					t.Errorf("attempt %d: delivery id %q, want the event id %q on every attempt", i+1, id, ev.ID)
				}
				if e := d.header.Get(webhook.HeaderEvent); e != catalog.EventLectureReady {
					t.Errorf("attempt %d: event header %q", i+1, e)
				}
				if string(d.body) != string(got[0].body) {
					t.Errorf("attempt %d body differs:\n%s\n%s", i+1, d.body, got[0].body)
				}
				if i > 0 {
					// NextRetry's backoff (base doubled per attempt, at least 75% of it), not River's default.
					if gap, least := d.at.Sub(got[i-1].at), base<<(i-1)*3/4; gap < least {
						t.Errorf("attempt %d came %v after the previous one, want at least %v", i+1, gap, least)
					}
				}
			}
			var payload catalog.EventArgs
			if err := json.Unmarshal(got[0].body, &payload); err != nil {
				t.Fatal(err)
			}
			want := catalog.EventLecture{ID: l.ID, Title: l.Title, TeacherID: l.TeacherID, Status: catalog.StatusReady, Version: v, DurationSeconds: 42}
			if payload.Type != catalog.EventLectureReady || payload.ID != ev.ID || payload.Lecture != want {
				t.Errorf("payload = %+v, want lecture %+v", payload, want)
			}
			if j := jobs[0]; j.Attempt != 3 || len(j.Errors) != 2 || !strings.Contains(j.Errors[0], "500") {
				t.Errorf("job = %+v, want 3 attempts and two recorded 500s", j)
			}
			if st := w.Stats().For(catalog.EventLectureReady); st.Delivered.Load() != 1 || st.AttemptErrors.Load() != 2 || st.GaveUp.Load() != 0 {
				t.Errorf("stats: delivered %d, attempt errors %d, gave up %d", st.Delivered.Load(), st.AttemptErrors.Load(), st.GaveUp.Load())
			}
		})
	}
}

// A receiver that accepts connections and never answers ties up the webhook workers, and nothing else:
// publishing, failing and rejecting lectures take no longer than without webhooks.
func TestSilentReceiverDoesNotSlowTheCatalog(t *testing.T) {
	for name, open := range backends {
		t.Run(name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			defer cancel()
			ln, err := net.Listen("tcp", "127.0.0.1:0")
			if err != nil {
				t.Fatal(err)
			}
			accepted := make(chan net.Conn, 16)
			go func() {
				for {
					conn, err := ln.Accept()
					if err != nil {
						return
					}
					accepted <- conn // held open, never answered
				}
			}()
			defer func() {
				ln.Close()
				for len(accepted) > 0 {
					(<-accepted).Close()
				}
			}()
			c, _ := openDelivering(t, open(t), webhook.Config{URL: "http://" + ln.Addr().String() + "/hook", Timeout: time.Minute})

			// Two events occupy both delivery slots with requests that will not be answered.
			for _, name := range []string{"a", "b"} {
				l, v := newLecture(t, ctx, c, name)
				if err := c.PublishVersion(ctx, l.ID, v, "w1", catalog.Publication{}); err != nil {
					t.Fatal(err)
				}
			}
			for range 2 {
				select {
				case conn := <-accepted:
					defer conn.Close()
				case <-time.After(20 * time.Second):
					t.Fatal("the deliveries never connected")
				}
			}
			var slowest time.Duration
			timed := func(f func() error) {
				t.Helper()
				start := time.Now()
				if err := f(); err != nil {
					t.Fatal(err)
				}
				slowest = max(slowest, time.Since(start))
			}
			for _, name := range []string{"c", "d", "e"} {
				l, v := newLecture(t, ctx, c, name)
				timed(func() error { return c.PublishVersion(ctx, l.ID, v, "w1", catalog.Publication{}) })
				v2, err := c.EnqueueTranscode(ctx, l.ID, catalog.Source{Key: "k"})
				if err != nil {
					t.Fatal(err)
				}
				timed(func() error { return c.FailLecture(ctx, l.ID, v2, "broken") })
				timed(func() error { return c.RejectUpload(ctx, l.ID, "not media") })
			}
			// Loopback SQLite/PostgreSQL answer these in milliseconds; a publish that waited for the
			// receiver would take the whole minute of its Timeout.
			if slowest > time.Second {
				t.Errorf("slowest publish/fail/reject took %v while the receiver hung", slowest)
			}
			t.Logf("slowest publish/fail/reject while the receiver hung: %v", slowest)
			stopCtx, cancelStop := context.WithTimeout(ctx, 500*time.Millisecond)
			defer cancelStop()
			if err := c.Stop(stopCtx); err != nil {
				t.Error(err)
			}
		})
	}
}
