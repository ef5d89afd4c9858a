package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/lectern/lectern/internal/catalog"
	"github.com/lectern/lectern/internal/tusclient"
	"github.com/lectern/lectern/internal/webhook"
)

const testWebhookSecret = "whsec_e2e"

// hookReceiver is a webhook endpoint on loopback that records what it is sent.
type hookReceiver struct {
	*httptest.Server
	got chan hookDelivery
}

type hookDelivery struct {
	header http.Header
	body   []byte
	event  catalog.EventArgs
}

func newHookReceiver(t *testing.T) *hookReceiver {
	t.Helper()
	r := &hookReceiver{got: make(chan hookDelivery, 16)}
	r.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		b, _ := io.ReadAll(req.Body)
		d := hookDelivery{header: req.Header.Clone(), body: b}
		if err := json.Unmarshal(b, &d.event); err != nil {
			t.Errorf("webhook body is not an event: %v\n%s", err, b)
		}
		r.got <- d
	}))
	t.Cleanup(r.Close)
	return r
}

// next returns the next delivery, checking what every delivery must carry.
func (r *hookReceiver) next(t *testing.T, within time.Duration) hookDelivery {
	t.Helper()
	select {
	case d := <-r.got:
		if err := webhook.Verify(testWebhookSecret, d.header.Get(webhook.HeaderSignature), d.body, time.Minute); err != nil {
			t.Errorf("delivery signature %q: %v", d.header.Get(webhook.HeaderSignature), err)
		}
		if d.header.Get(webhook.HeaderEvent) != d.event.Type || d.header.Get(webhook.HeaderDelivery) != d.event.ID ||
			d.header.Get("Content-Type") != "application/json" {
			t.Errorf("delivery headers %v do not match the event %+v", d.header, d.event)
		}
		return d
	case <-time.After(within):
		t.Fatalf("no webhook delivery within %v", within)
		return hookDelivery{}
	}
}

// waitMetric waits for a line in base's /metrics: the worker counts a delivery once the receiver's
// answer is back, a moment after the receiver has seen the request.
func waitMetric(t *testing.T, base, line string) {
	t.Helper()
	var metrics []byte
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
		if _, metrics = fetch(t, base+"/metrics"); bytes.Contains(metrics, []byte(line)) {
			return
		}
	}
	t.Errorf("%s/metrics lacks %s", base, line)
}

// TestWebhookServe: `lectern serve --webhook-url` (secret from the environment) tells a receiver on
// loopback when an uploaded lecture is ready, signed, and counts the delivery in /metrics.
func TestWebhookServe(t *testing.T) {
	if testing.Short() {
		t.Skip("end-to-end: starts lectern and transcodes")
	}
	recv := newHookReceiver(t)
	data := t.TempDir()
	token := addTeacher(t, sqliteDB(data), "Ms. Webb")
	t.Setenv("LECTERN_WEBHOOK_SECRET", testWebhookSecret)
	s := startServe(t, data, "--webhook-url", recv.URL+"/hooks/lectern?key=abc")

	lec := uploadClip(t, s.base, token, "Hooks", 3)
	d := recv.next(t, 2*time.Minute)
	ev := d.event
	if ev.Type != catalog.EventLectureReady || ev.Lecture.ID != lec.ID || ev.Lecture.Status != catalog.StatusReady ||
		ev.Lecture.Version != 1 || ev.Lecture.Title != "Hooks" || ev.Lecture.DurationSeconds < 2.5 || ev.Lecture.DurationSeconds > 3.5 {
		t.Errorf("event = %+v, want lecture.ready for %s v1 of ~3 s", ev, lec.ID)
	}
	// The event is sent after the publish committed: the API already says ready.
	var got apiLecture
	getJSON(t, s.base+"/api/v1/lectures/"+lec.ID, token, &got)
	if got.Status != "ready" || got.Version != 1 {
		t.Errorf("lecture when its ready event arrived: %+v", got)
	}
	waitMetric(t, s.base, `lectern_webhook_deliveries_total{event="lecture.ready",result="delivered"} 1`)
	select {
	case extra := <-recv.got:
		t.Errorf("unexpected second delivery %+v", extra.event)
	case <-time.After(300 * time.Millisecond):
	}
}

// TestWebhookFlags: a webhook URL without a secret (or one that is not http) stops every role that takes
// it at start-up with one line naming the fix.
func TestWebhookFlags(t *testing.T) {
	db := "sqlite://" + filepath.Join(t.TempDir(), "lectern.db")
	env := []string{}
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "LECTERN_WEBHOOK_") {
			env = append(env, kv)
		}
	}
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"--webhook-url", "http://127.0.0.1:9/hook"}, "--webhook-url needs --webhook-secret (or LECTERN_WEBHOOK_SECRET)"},
		{[]string{"--webhook-url", "ftp://example.test/hook", "--webhook-secret", "s"}, `webhook URL "ftp://example.test/hook": want an http:// or https:// URL`},
	} {
		for _, role := range []string{"serve", "ingest", "worker"} {
			args := append([]string{role, "--listen", freeAddr(t), "--db", db, "--tmp", t.TempDir()}, tc.args...)
			if role == "serve" {
				args = append([]string{role, "--listen", freeAddr(t), "--origin-listen", freeAddr(t), "--data", t.TempDir()}, tc.args...)
			}
			err, msg, exited := runRefused(t, env, args...)
			if !exited {
				t.Errorf("lectern %s %v kept running", role, tc.args)
				continue
			}
			if err == nil || !strings.Contains(msg, tc.want) || strings.Count(msg, "\n") > 0 {
				t.Errorf("lectern %s %v: exit %v, stderr %q; want one line containing %q", role, tc.args, err, msg, tc.want)
			}
		}
	}
}

// TestWebhookIngestRejected: the ingest role alone, given a webhook, delivers lecture.failed for an upload
// that validation rejects (it works the webhooks queue and nothing else).
func TestWebhookIngestRejected(t *testing.T) {
	if testing.Short() {
		t.Skip("end-to-end: starts lectern")
	}
	recv := newHookReceiver(t)
	data := t.TempDir()
	db := sqliteDB(data)
	token := addTeacher(t, db, "Mr. Reed")
	t.Setenv("LECTERN_WEBHOOK_SECRET", testWebhookSecret)
	addr := freeAddr(t)
	startRole(t, addr, "ingest", "--listen", addr, "--db", db, "--storage", "file://"+filepath.Join(data, "objects"),
		"--tmp", t.TempDir(), "--webhook-url", recv.URL+"/hook")
	base := "http://" + addr

	req, _ := http.NewRequest("POST", base+"/api/v1/lectures", strings.NewReader(`{"title":"Notes","course":"Physics"}`))
	req.Header.Set("Authorization", "Bearer "+token)
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	var lec apiLecture
	err = json.NewDecoder(resp.Body).Decode(&lec)
	resp.Body.Close()
	if resp.StatusCode != 201 || err != nil || lec.ID == "" {
		t.Fatalf("create lecture: %d %v %+v", resp.StatusCode, err, lec)
	}

	notes := []byte(strings.Repeat("these are my lecture notes, not a video\n", 100))
	tc := tusclient.New(http.Header{"Authorization": {"Bearer " + token}})
	ctx := context.Background()
	up, err := tc.Create(ctx, base+"/api/v1/uploads/", int64(len(notes)), map[string]string{"lecture": lec.ID, "filename": "notes.mp4"})
	if err != nil {
		t.Fatal(err)
	}
	_, err = tc.Upload(ctx, up, bytes.NewReader(notes), 0, int64(len(notes)), nil)
	var te *tusclient.Error
	if !errors.As(err, &te) || te.Status != 422 {
		t.Fatalf("upload of a text file = %v, want a 422 refusal", err)
	}

	d := recv.next(t, 30*time.Second)
	ev := d.event
	if ev.Type != catalog.EventLectureFailed || ev.Lecture.ID != lec.ID || ev.Lecture.Status != catalog.StatusFailed ||
		ev.Lecture.Version != 0 || ev.Lecture.Error == "" || ev.Lecture.Error != te.Message {
		t.Errorf("event = %+v, want lecture.failed for %s with the reason the uploader got (%q)", ev, lec.ID, te.Message)
	}
	waitMetric(t, base, `lectern_webhook_deliveries_total{event="lecture.failed",result="delivered"} 1`)
}
