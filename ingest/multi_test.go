package ingest

import (
	"crypto/sha256"
	"io"
	"net/http"
	"strconv"
	"testing"
	"time"

	"github.com/lectern/lectern/internal/catalog"
	"github.com/lectern/lectern/internal/testenv"
)

// TestTusTwoInstancesOnPostgres: two ingest instances behind one load balancer, sharing a PostgreSQL
// catalog and a MinIO bucket. An upload started on one continues on the other. While instance A holds
// an upload's lock for a PATCH whose client went silent, a PATCH on instance B asks A (through
// PostgreSQL NOTIFY) to let go instead of waiting out the lock timeout, and the upload ends
// byte-identical.
func TestTusTwoInstancesOnPostgres(t *testing.T) {
	clip := testClip(t)
	o := tusOpts{dbURL: testenv.PostgresURL(t), storeURL: testenv.S3URL(t)}
	a := newTusFixture(t, o)
	locks, err := a.cat.Locks(4)
	if err != nil || locks == nil {
		t.Fatalf("Locks on PostgreSQL: %v %v", locks, err)
	}
	t.Cleanup(locks.Close)
	// B is a second service on the same catalog and bucket; both use PostgreSQL locks.
	a.cfg.Locks = locks
	a.start()
	b := &tusFixture{t: t, cat: a.cat, store: a.store, tokA: a.tokA, tokB: a.tokB, idA: a.idA, cfg: a.cfg}
	b.start()

	id := a.lecture("Shared")
	url := a.create(a.tokA, id, int64(len(clip)))
	path := url[len(a.srv.URL):]
	third := len(clip) / 3
	if resp, body := b.patch(b.tokA, b.srv.URL+path, 0, clip[:third]); resp.StatusCode != 204 {
		t.Fatalf("PATCH on B: %d %s", resp.StatusCode, body)
	}
	if code, off := a.offset(a.tokA, url); code != 200 || off != int64(third) {
		t.Fatalf("HEAD on A: %d offset %d, want %d", code, off, third)
	}

	// A PATCH on A that sends a few bytes and then goes silent, holding the lock.
	pr, pw := io.Pipe()
	req, _ := http.NewRequest("PATCH", url, pr)
	req.Header.Set("Authorization", "Bearer "+a.tokA)
	req.Header.Set("Tus-Resumable", "1.0.0")
	req.Header.Set("Upload-Offset", strconv.Itoa(third))
	req.Header.Set("Content-Type", "application/offset+octet-stream")
	req.ContentLength = int64(len(clip) - third)
	stuck := make(chan int, 1)
	go func() {
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			stuck <- 0
			return
		}
		resp.Body.Close()
		stuck <- resp.StatusCode
	}()
	if _, err := pw.Write(clip[third : third+1000]); err != nil {
		t.Fatal(err)
	}
	time.Sleep(300 * time.Millisecond) // A now holds the lock, waiting for more bytes

	start := time.Now()
	var off int64
	for {
		_, off = b.offset(b.tokA, b.srv.URL+path)
		resp, body := b.patch(b.tokA, b.srv.URL+path, off, clip[off:])
		if resp.StatusCode == 204 {
			break
		}
		if resp.StatusCode != 409 && resp.StatusCode != 423 || time.Since(start) > 15*time.Second {
			t.Fatalf("PATCH on B while A holds the lock: %d %s", resp.StatusCode, body)
		}
	}
	if took := time.Since(start); took > 10*time.Second {
		t.Fatalf("B waited %v for A's lock; the release request did not reach A", took)
	}
	pw.CloseWithError(io.ErrUnexpectedEOF)
	select {
	case <-stuck:
	case <-time.After(10 * time.Second):
		t.Fatal("A's stalled PATCH never ended")
	}
	if l := a.getLecture(id); l.Status != catalog.StatusQueued {
		t.Fatalf("lecture %q, want queued", l.Status)
	}
	if a.sourceSum(id) != sha256.Sum256(clip) {
		t.Fatal("source differs after the hand-over between instances")
	}
}
