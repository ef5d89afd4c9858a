package catalogtest

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/riverqueue/river"

	"github.com/lectern/lectern/internal/catalog"
)

// testEventsOff: a catalog opened without Options.Events records no events, and RejectUpload still works.
func testEventsOff(t *testing.T, open func(*testing.T) string) {
	ctx := ctxFor(t)
	c := openCatalog(t, open(t), catalog.Options{})
	_, _, l := teacherAndLecture(t, ctx, c)
	v := must(c.EnqueueTranscode(ctx, l.ID, catalog.Source{Key: "k"}))(t)
	check(t, c.MarkTranscoding(ctx, l.ID, v, testWorker, testLease))
	check(t, c.PublishVersion(ctx, l.ID, v, testWorker, catalog.Publication{DurationSeconds: 3}))
	v2 := must(c.EnqueueTranscode(ctx, l.ID, catalog.Source{Key: "k2"}))(t)
	check(t, c.FailLecture(ctx, l.ID, v2, "broken"))
	check(t, c.RejectUpload(ctx, l.ID, "not a video"))
	if got := must(c.GetLecture(ctx, l.ID))(t); got.Status != catalog.StatusFailed || got.ErrorReason != "not a video" || got.Version != v {
		t.Errorf("after RejectUpload: %+v", got)
	}
	if evs := must(c.EventJobs(ctx, l.ID))(t); len(evs) != 0 {
		t.Errorf("catalog without Events recorded %+v", evs)
	}
	if s := must(c.QueueStats(ctx))(t); s["available"] != 2 {
		t.Errorf("QueueStats = %v, want only the two transcode jobs", s)
	}
}

// testEventsTransactional: with Options.Events every publish, final failure and rejected upload records
// exactly one event carrying the lecture as committed, and a change that is rolled back or refused
// records none.
func testEventsTransactional(t *testing.T, open func(*testing.T) string) {
	ctx := ctxFor(t)
	c := openCatalog(t, open(t), catalog.Options{Events: true})
	tr, co, l := teacherAndLecture(t, ctx, c)
	events := func(id string) []catalog.EventJob { t.Helper(); return must(c.EventJobs(ctx, id))(t) }
	boom := errors.New("forced failure inside the event transaction")
	failNext := func() { catalog.SetEventHookForTesting(c, func(context.Context) error { return boom }) }
	defer catalog.SetEventHookForTesting(c, nil)

	// Publishing v1 records lecture.ready.
	v1 := must(c.EnqueueTranscode(ctx, l.ID, catalog.Source{Key: "k1"}))(t)
	if evs := events(l.ID); len(evs) != 0 {
		t.Fatalf("enqueue recorded events %+v", evs)
	}
	check(t, c.MarkTranscoding(ctx, l.ID, v1, testWorker, testLease))
	check(t, c.SetProgress(ctx, l.ID, v1, testWorker, 40, 3))
	before := time.Now().Add(-time.Second)
	check(t, c.PublishVersion(ctx, l.ID, v1, testWorker, catalog.Publication{DurationSeconds: 12.5}))
	evs := events(l.ID)
	if len(evs) != 1 {
		t.Fatalf("events after publish = %+v, want one", evs)
	}
	ready := evs[0]
	wantLecture := catalog.EventLecture{ID: l.ID, Title: "Limits", TeacherID: tr.ID, CourseID: co.ID,
		Status: catalog.StatusReady, Version: v1, DurationSeconds: 12.5}
	if ready.Args.Type != catalog.EventLectureReady || ready.Args.Lecture != wantLecture ||
		!strings.HasPrefix(ready.Args.ID, "evt_") || ready.Args.CreatedAt.Before(before) ||
		ready.Args.CreatedAt.After(time.Now().Add(time.Second)) {
		t.Errorf("ready event = %+v, want type %s, lecture %+v", ready.Args, catalog.EventLectureReady, wantLecture)
	}
	if ready.State != "available" || ready.MaxAttempts != catalog.EventMaxAttempts {
		t.Errorf("ready event job = %+v, want available with %d attempts", ready, catalog.EventMaxAttempts)
	}

	// A refused publish (stale version) and a rolled-back one record nothing.
	v2 := must(c.EnqueueTranscode(ctx, l.ID, catalog.Source{Key: "k2"}))(t)
	check(t, c.MarkTranscoding(ctx, l.ID, v2, testWorker, testLease))
	if err := c.PublishVersion(ctx, l.ID, v1, testWorker, catalog.Publication{}); !catalog.IsConflict(err) {
		t.Fatalf("stale publish = %v, want conflict", err)
	}
	if err := c.PublishVersion(ctx, l.ID, v2, "someone-else", catalog.Publication{}); !catalog.IsConflict(err) {
		t.Fatalf("publish without the lease = %v, want conflict", err)
	}
	mid := must(c.GetLecture(ctx, l.ID))(t)
	failNext()
	if err := c.PublishVersion(ctx, l.ID, v2, testWorker, catalog.Publication{DurationSeconds: 13}); !errors.Is(err, boom) {
		t.Fatalf("publish with failing hook = %v, want the forced error", err)
	}
	catalog.SetEventHookForTesting(c, nil)
	if got := must(c.GetLecture(ctx, l.ID))(t); !equalLecture(got, mid) {
		t.Errorf("rolled-back publish changed the lecture:\n got %+v\nwant %+v", got, mid)
	}
	if evs := events(l.ID); len(evs) != 1 {
		t.Fatalf("refused and rolled-back publishes left events %+v", evs)
	}
	check(t, c.PublishVersion(ctx, l.ID, v2, testWorker, catalog.Publication{DurationSeconds: 13}))
	evs = events(l.ID)
	if len(evs) != 2 || evs[1].Args.Lecture.Version != v2 || evs[1].Args.Lecture.DurationSeconds != 13 ||
		evs[1].Args.ID == ready.Args.ID {
		t.Fatalf("events after the second publish = %+v", evs)
	}

	// A final transcode failure records lecture.failed naming the failed version; v2 still plays.
	v3 := must(c.EnqueueTranscode(ctx, l.ID, catalog.Source{Key: "k3"}))(t)
	mid = must(c.GetLecture(ctx, l.ID))(t)
	failNext()
	if err := c.FailLecture(ctx, l.ID, v3, "x"); !errors.Is(err, boom) {
		t.Fatalf("fail with failing hook = %v, want the forced error", err)
	}
	catalog.SetEventHookForTesting(c, nil)
	if got := must(c.GetLecture(ctx, l.ID))(t); !equalLecture(got, mid) {
		t.Errorf("rolled-back FailLecture changed the lecture:\n got %+v\nwant %+v", got, mid)
	}
	check(t, c.FailLecture(ctx, l.ID, v3, "  ffmpeg exploded \n"))
	if err := c.FailLecture(ctx, l.ID, v3, "again"); !catalog.IsConflict(err) {
		t.Fatalf("second FailLecture of v3 = %v, want conflict", err)
	}
	evs = events(l.ID)
	if len(evs) != 3 {
		t.Fatalf("events after the failure = %+v, want three", evs)
	}
	wantFailed := catalog.EventLecture{ID: l.ID, Title: "Limits", TeacherID: tr.ID, CourseID: co.ID,
		Status: catalog.StatusFailed, Version: v2, FailedVersion: v3, Error: "ffmpeg exploded", DurationSeconds: 13}
	if f := evs[2].Args; f.Type != catalog.EventLectureFailed || f.Lecture != wantFailed {
		t.Errorf("failed event = %+v, want lecture %+v", f, wantFailed)
	}

	// A rejected upload: status failed with the reason, the published version kept, lecture.failed.
	l2 := must(c.CreateLecture(ctx, catalog.NewLecture{TeacherID: tr.ID, Title: "Series"}))(t)
	mid = must(c.GetLecture(ctx, l2.ID))(t)
	failNext()
	if err := c.RejectUpload(ctx, l2.ID, "not media"); !errors.Is(err, boom) {
		t.Fatalf("RejectUpload with failing hook = %v, want the forced error", err)
	}
	catalog.SetEventHookForTesting(c, nil)
	if got := must(c.GetLecture(ctx, l2.ID))(t); !equalLecture(got, mid) {
		t.Errorf("rolled-back RejectUpload changed the lecture:\n got %+v\nwant %+v", got, mid)
	}
	if evs := events(l2.ID); len(evs) != 0 {
		t.Fatalf("rolled-back RejectUpload left events %+v", evs)
	}
	check(t, c.RejectUpload(ctx, l2.ID, "the file is not audio or video"))
	got := must(c.GetLecture(ctx, l2.ID))(t)
	if got.Status != catalog.StatusFailed || got.ErrorReason != "the file is not audio or video" || got.Version != 0 {
		t.Errorf("after RejectUpload: %+v", got)
	}
	evs = events(l2.ID)
	wantRejected := catalog.EventLecture{ID: l2.ID, Title: "Series", TeacherID: tr.ID,
		Status: catalog.StatusFailed, Error: "the file is not audio or video"}
	if len(evs) != 1 || evs[0].Args.Type != catalog.EventLectureFailed || evs[0].Args.Lecture != wantRejected {
		t.Errorf("events after RejectUpload = %+v, want one lecture.failed with %+v", evs, wantRejected)
	}

	check(t, c.RejectUpload(ctx, l.ID, ""))
	got = must(c.GetLecture(ctx, l.ID))(t)
	if got.Status != catalog.StatusFailed || got.ErrorReason == "" || got.Version != v2 {
		t.Errorf("RejectUpload of a published lecture: %+v, want failed with a reason and v%d kept", got, v2)
	}
	if evs := events(l.ID); len(evs) != 4 || evs[3].Args.Lecture.Version != v2 || evs[3].Args.Lecture.Error != got.ErrorReason {
		t.Errorf("events after rejecting a replacement = %+v", evs)
	}

	if err := c.RejectUpload(ctx, "nosuchlecture", "x"); !catalog.IsNotFound(err) {
		t.Errorf("RejectUpload of a missing lecture = %v, want not found", err)
	}
	if evs := events("nosuchlecture"); len(evs) != 0 {
		t.Errorf("RejectUpload of a missing lecture recorded %+v", evs)
	}
}

// eventRecorder stands in for the webhook worker.
type eventRecorder struct {
	river.WorkerDefaults[catalog.EventArgs]
	seen chan catalog.EventArgs
}

func (w *eventRecorder) Work(_ context.Context, job *river.Job[catalog.EventArgs]) error {
	w.seen <- job.Args
	return nil
}

// testEventQueueAlone: a process that works only the events queue (the ingest role delivering webhooks)
// delivers events and leaves transcode jobs for the workers.
func testEventQueueAlone(t *testing.T, open func(*testing.T) string) {
	ctx := ctxFor(t)
	w := &eventRecorder{seen: make(chan catalog.EventArgs, 4)}
	workers := river.NewWorkers()
	river.AddWorker(workers, w)
	c := openCatalog(t, open(t), catalog.Options{Events: true, Workers: workers, PollInterval: 50 * time.Millisecond,
		Queues: map[string]int{catalog.EventQueue: 2}})
	_, _, l := teacherAndLecture(t, ctx, c)
	check(t, c.Start(ctx))
	v := must(c.EnqueueTranscode(ctx, l.ID, catalog.Source{Key: "k"}))(t)
	check(t, c.MarkTranscoding(ctx, l.ID, v, testWorker, testLease))
	check(t, c.PublishVersion(ctx, l.ID, v, testWorker, catalog.Publication{DurationSeconds: 1}))
	select {
	case ev := <-w.seen:
		if ev.Type != catalog.EventLectureReady || ev.Lecture.ID != l.ID {
			t.Errorf("worked event %+v", ev)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("the event was not worked within 20s")
	}
	deadline := time.Now().Add(10 * time.Second)
	for evs := must(c.EventJobs(ctx, l.ID))(t); len(evs) != 1 || evs[0].State != "completed"; evs = must(c.EventJobs(ctx, l.ID))(t) {
		if time.Now().After(deadline) {
			t.Fatalf("event jobs = %+v, want one completed", evs)
		}
		time.Sleep(50 * time.Millisecond)
	}
	// Nothing here works the transcode queue: its job (already published by hand) was never fetched.
	if jobs := must(c.TranscodeJobs(ctx, l.ID))(t); len(jobs) != 1 || jobs[0].State != "available" || jobs[0].Attempt != 0 {
		t.Errorf("transcode jobs = %+v, want one untouched", jobs)
	}
	stopCtx, cancel := context.WithTimeout(ctx, 20*time.Second)
	defer cancel()
	check(t, c.Stop(stopCtx))
}
