package webhook

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"maps"
	"net"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/riverqueue/river"
	"github.com/riverqueue/river/rivertype"

	"github.com/lectern/lectern/internal/catalog"
)

const testSecret = "whsec_unit"

var quiet = slog.New(slog.DiscardHandler)

func testEvent() catalog.EventArgs {
	return catalog.EventArgs{
		ID: "evt_abc", Type: catalog.EventLectureReady, CreatedAt: time.Date(2025, 3, 1, 12, 0, 0, 123e6, time.UTC),
		Lecture: catalog.EventLecture{ID: "lec1", Title: "Limits", TeacherID: "t1", CourseID: "c1",
			Status: catalog.StatusReady, Version: 2, DurationSeconds: 61.5},
	}
}

func job(ev catalog.EventArgs, attempt int) *river.Job[catalog.EventArgs] {
	return &river.Job[catalog.EventArgs]{JobRow: &rivertype.JobRow{Attempt: attempt, MaxAttempts: catalog.EventMaxAttempts}, Args: ev}
}

func newWorker(t *testing.T, cfg Config) *Worker {
	t.Helper()
	if cfg.Secret == "" {
		cfg.Secret = testSecret
	}
	cfg.Logger = quiet
	w, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return w
}

// A delivery is a POST of the event as JSON with the documented headers, and its signature verifies.
func TestDeliveryRequest(t *testing.T) {
	type got struct {
		method, path string
		header       http.Header
		body         []byte
	}
	reqs := make(chan got, 1)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		reqs <- got{r.Method, r.URL.RequestURI(), r.Header.Clone(), b}
		w.WriteHeader(http.StatusNoContent)
	}))
	defer srv.Close()
	w := newWorker(t, Config{URL: srv.URL + "/hooks/lectern?token=abc"})
	ev := testEvent()
	if err := w.Work(context.Background(), job(ev, 1)); err != nil {
		t.Fatalf("Work = %v", err)
	}
	r := <-reqs
	if r.method != http.MethodPost || r.path != "/hooks/lectern?token=abc" {
		t.Errorf("request %s %s", r.method, r.path)
	}
	for k, want := range map[string]string{
		"Content-Type": "application/json", HeaderEvent: "lecture.ready", HeaderDelivery: "evt_abc", "User-Agent": "Lectern-Webhook/1",
	} {
		if v := r.header.Get(k); v != want {
			t.Errorf("%s = %q, want %q", k, v, want)
		}
	}
	if err := Verify(testSecret, r.header.Get(HeaderSignature), r.body, time.Minute); err != nil {
		t.Errorf("signature %q does not verify: %v", r.header.Get(HeaderSignature), err)
	}
	var payload map[string]any
	if err := json.Unmarshal(r.body, &payload); err != nil {
		t.Fatal(err)
	}
	lec, _ := payload["lecture"].(map[string]any)
	if payload["id"] != "evt_abc" || payload["type"] != "lecture.ready" || payload["created_at"] != "2025-03-01T12:00:00.123Z" ||
		lec["id"] != "lec1" || lec["status"] != "ready" || lec["version"] != 2.0 || lec["duration_seconds"] != 61.5 ||
		lec["title"] != "Limits" || lec["teacher_id"] != "t1" || lec["course_id"] != "c1" || lec["error"] != "" {
		t.Errorf("payload = %s", r.body)
	}
	if _, ok := lec["failed_version"]; ok {
		t.Errorf("lecture.ready payload has failed_version: %s", r.body)
	}
	if st := w.Stats().For(catalog.EventLectureReady); st.Delivered.Load() != 1 || st.AttemptErrors.Load() != 0 {
		t.Errorf("stats = delivered %d, errors %d", st.Delivered.Load(), st.AttemptErrors.Load())
	}
}

// Only 2xx delivers; everything else is an error (River retries it) that says what happened without
// repeating the URL's query, where receivers put tokens.
func TestDeliveryStatus(t *testing.T) {
	var redirected atomic.Bool
	mux := http.NewServeMux()
	mux.HandleFunc("/elsewhere", func(w http.ResponseWriter, r *http.Request) { redirected.Store(true) })
	mux.HandleFunc("/hook", func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.ReadAll(r.Body)
		code, _ := strconv.Atoi(r.URL.Query().Get("code"))
		if code >= 300 && code < 400 {
			http.Redirect(w, r, "/elsewhere", code)
			return
		}
		w.WriteHeader(code)
		_, _ = io.WriteString(w, "receiver says\nno "+strings.Repeat("x", 300))
	})
	srv := httptest.NewServer(mux)
	defer srv.Close()
	for _, code := range []int{200, 201, 202, 204, 301, 302, 307, 400, 401, 404, 408, 410, 429, 500, 502, 503} {
		w := newWorker(t, Config{URL: srv.URL + "/hook?secrettoken=hunter2&code=" + strconv.Itoa(code)})
		err := w.Work(context.Background(), job(testEvent(), 1))
		if code < 300 {
			if err != nil {
				t.Errorf("%d: Work = %v, want delivered", code, err)
			}
			continue
		}
		if err == nil {
			t.Errorf("%d: Work delivered, want an error", code)
			continue
		}
		msg := err.Error()
		if !strings.Contains(msg, strconv.Itoa(code)) || strings.Contains(msg, "hunter2") || strings.Contains(msg, "\n") || len(msg) > 400 {
			t.Errorf("%d: error %q: want the status, one line, no query", code, msg)
		}
		if code < 400 {
			continue
		}
		if !strings.Contains(msg, "receiver says no xxx") {
			t.Errorf("%d: error %q lacks the start of the body", code, msg)
		}
	}
	if redirected.Load() {
		t.Error("a redirect was followed")
	}
}

// A receiver that never answers costs one Timeout per attempt, and a refused connection fails at once.
func TestDeliveryTimeoutAndRefused(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() { // accept and say nothing
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			defer c.Close()
		}
	}()
	w := newWorker(t, Config{URL: "http://" + ln.Addr().String() + "/hook?k=hunter2", Timeout: 300 * time.Millisecond})
	start := time.Now()
	err = w.Work(context.Background(), job(testEvent(), 1))
	if d := time.Since(start); err == nil || d < 250*time.Millisecond || d > 3*time.Second {
		t.Errorf("silent receiver: Work = %v after %v, want a timeout after ~300ms", err, d)
	}
	if err != nil && strings.Contains(err.Error(), "hunter2") {
		t.Errorf("error %q repeats the query", err)
	}

	closed, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := closed.Addr().String()
	closed.Close()
	w = newWorker(t, Config{URL: "http://" + addr + "/hook?k=hunter2"})
	start = time.Now()
	err = w.Work(context.Background(), job(testEvent(), 1))
	if err == nil || time.Since(start) > 2*time.Second || strings.Contains(err.Error(), "hunter2") {
		t.Errorf("refused: Work = %v after %v", err, time.Since(start))
	}
}

// The last attempt's failure counts as giving up; earlier ones do not.
func TestGiveUpAndMetrics(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get(HeaderEvent) == catalog.EventLectureFailed {
			w.WriteHeader(http.StatusInternalServerError)
		}
	}))
	defer srv.Close()
	w := newWorker(t, Config{URL: srv.URL})
	failed := testEvent()
	failed.Type = catalog.EventLectureFailed
	for attempt := 1; attempt <= catalog.EventMaxAttempts; attempt++ {
		if err := w.Work(context.Background(), job(failed, attempt)); err == nil {
			t.Fatal("a 500 delivered")
		}
	}
	if err := w.Work(context.Background(), job(testEvent(), 1)); err != nil {
		t.Fatal(err)
	}
	other := testEvent()
	other.Type = "lecture.deleted"
	if err := w.Work(context.Background(), job(other, 1)); err != nil {
		t.Fatal(err)
	}
	st := w.Stats()
	if st.Failed.GaveUp.Load() != 1 || st.Failed.Attempts() != catalog.EventMaxAttempts || st.Ready.Attempts() != 1 || st.Other.Delivered.Load() != 1 {
		t.Errorf("stats: failed gave up %d, attempts %d; ready attempts %d; other delivered %d",
			st.Failed.GaveUp.Load(), st.Failed.Attempts(), st.Ready.Attempts(), st.Other.Delivered.Load())
	}
	want := map[string]float64{
		"lectern_webhook_attempts_total{event=lecture.failed,result=error}":       12,
		"lectern_webhook_attempts_total{event=lecture.failed,result=ok}":          0,
		"lectern_webhook_attempts_total{event=lecture.ready,result=error}":        0,
		"lectern_webhook_attempts_total{event=lecture.ready,result=ok}":           1,
		"lectern_webhook_attempts_total{event=other,result=error}":                0,
		"lectern_webhook_attempts_total{event=other,result=ok}":                   1,
		"lectern_webhook_deliveries_total{event=lecture.failed,result=delivered}": 0,
		"lectern_webhook_deliveries_total{event=lecture.failed,result=gave_up}":   1,
		"lectern_webhook_deliveries_total{event=lecture.ready,result=delivered}":  1,
		"lectern_webhook_deliveries_total{event=lecture.ready,result=gave_up}":    0,
		"lectern_webhook_deliveries_total{event=other,result=delivered}":          1,
		"lectern_webhook_deliveries_total{event=other,result=gave_up}":            0,
	}
	reg := prometheus.NewPedanticRegistry()
	reg.MustRegister(st.Collector())
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]float64{}
	for _, mf := range mfs {
		for _, m := range mf.GetMetric() {
			var labels []string
			for _, l := range m.GetLabel() {
				labels = append(labels, l.GetName()+"="+l.GetValue())
			}
			got[mf.GetName()+"{"+strings.Join(labels, ",")+"}"] = m.GetCounter().GetValue()
		}
	}
	if !maps.Equal(got, want) {
		t.Errorf("metrics = %v\nwant %v", got, want)
	}
}

func TestBackoff(t *testing.T) {
	w := newWorker(t, Config{URL: "http://example.test/", RetryBase: time.Second, RetryMax: time.Minute})
	for attempt := 1; attempt <= 40; attempt++ {
		nominal := min(time.Second<<min(attempt-1, 20), time.Minute)
		for range 50 {
			d := w.backoff(attempt)
			if d < nominal*3/4 || d > min(nominal*5/4, time.Minute) {
				t.Fatalf("backoff(%d) = %v, want within 25%% of %v and at most 1m", attempt, d, nominal)
			}
		}
	}
	// River asks NextRetry after a failed attempt; it must be in the future.
	if next := w.NextRetry(job(testEvent(), 1)); time.Until(next) < 700*time.Millisecond {
		t.Errorf("NextRetry after attempt 1 = in %v", time.Until(next))
	}
	// The defaults: 15 s, then doubling, capped at an hour.
	d := newWorker(t, Config{URL: "http://example.test/"})
	if b := d.backoff(1); b < 11*time.Second || b > 19*time.Second {
		t.Errorf("default first backoff %v", b)
	}
	if b := d.backoff(catalog.EventMaxAttempts); b > time.Hour || b < 45*time.Minute {
		t.Errorf("default last backoff %v", b)
	}
	if to := d.Timeout(job(testEvent(), 1)); to <= DefaultTimeout {
		t.Errorf("River timeout %v must exceed the HTTP timeout", to)
	}
}

func TestNewRejects(t *testing.T) {
	for _, cfg := range []Config{
		{URL: "https://example.test/hook"},               // no secret
		{URL: "", Secret: "s"},                           // no URL
		{URL: "ftp://example.test/hook", Secret: "s"},    // not http
		{URL: "http:///hook", Secret: "s"},               // no host
		{URL: "example.test/hook", Secret: "s"},          // no scheme
		{URL: "http://u:hunter2@[::1/hook", Secret: "s"}, // unparsable
	} {
		w, err := New(cfg)
		if err == nil {
			t.Errorf("New(%+v) = %v, want an error", cfg, w)
			continue
		}
		if strings.Contains(err.Error(), "hunter2") {
			t.Errorf("error %q leaks the password", err)
		}
	}
}
