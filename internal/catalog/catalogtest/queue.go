package catalogtest

import (
	"context"
	"errors"
	"slices"
	"testing"
	"time"

	"github.com/riverqueue/river"

	"github.com/lectern/lectern/internal/catalog"
)

func testEnqueueTransactional(t *testing.T, open func(*testing.T) string) {
	ctx := ctxFor(t)
	c := openCatalog(t, open(t), catalog.Options{})
	_, _, l := teacherAndLecture(t, ctx, c)

	v := must(c.EnqueueTranscode(ctx, l.ID, catalog.Source{Key: "sources/" + l.ID + "/u1"}))(t)
	jobs := must(c.TranscodeJobs(ctx, l.ID))(t)
	if len(jobs) != 1 {
		t.Fatalf("TranscodeJobs after enqueue = %+v, want one job", jobs)
	}
	want := catalog.TranscodeArgs{LectureID: l.ID, Version: v, SourceKey: "sources/" + l.ID + "/u1", Profile: catalog.DefaultProfile}
	if j := jobs[0]; j.Args != want || j.State != "available" || j.MaxAttempts != 5 || j.ID == 0 {
		t.Errorf("job = %+v, want args %+v, available, 5 attempts", j, want)
	}
	if s := must(c.QueueStats(ctx))(t); s["available"] != 1 {
		t.Errorf("QueueStats = %v, want available 1", s)
	}
	before := must(c.GetLecture(ctx, l.ID))(t)

	// A failure after the status update and the job insert rolls both back.
	boom := errors.New("forced failure inside the enqueue transaction")
	var hookRan bool
	catalog.SetEnqueueHookForTesting(c, func(context.Context) error { hookRan = true; return boom })
	_, err := c.EnqueueTranscode(ctx, l.ID, catalog.Source{Key: "sources/" + l.ID + "/u2"})
	catalog.SetEnqueueHookForTesting(c, nil)
	if !hookRan || !errors.Is(err, boom) {
		t.Fatalf("EnqueueTranscode with failing hook = %v (hook ran: %v), want the forced error", err, hookRan)
	}
	after := must(c.GetLecture(ctx, l.ID))(t)
	if !equalLecture(after, before) {
		t.Errorf("rolled-back enqueue changed the lecture:\n got %+v\nwant %+v", after, before)
	}
	if jobs := must(c.TranscodeJobs(ctx, l.ID))(t); len(jobs) != 1 || jobs[0].Args != want {
		t.Errorf("rolled-back enqueue left jobs %+v, want only the first", jobs)
	}
	if s := must(c.QueueStats(ctx))(t); s["available"] != 1 {
		t.Errorf("QueueStats after rollback = %v, want available 1", s)
	}

	// Starting from another status too: the failed lecture stays failed, with no job.
	l2 := must(c.CreateLecture(ctx, catalog.NewLecture{TeacherID: l.TeacherID, Title: "two"}))(t)
	catalog.SetEnqueueHookForTesting(c, func(context.Context) error { return boom })
	_, err = c.EnqueueTranscode(ctx, l2.ID, catalog.Source{Key: "k"})
	catalog.SetEnqueueHookForTesting(c, nil)
	if !errors.Is(err, boom) {
		t.Fatalf("EnqueueTranscode with failing hook = %v", err)
	}
	if got := must(c.GetLecture(ctx, l2.ID))(t); got.Status != catalog.StatusAwaitingUpload || got.PendingVersion != 0 || got.SourceKey != "" {
		t.Errorf("rolled-back enqueue changed the lecture: %+v", got)
	}
	if jobs := must(c.TranscodeJobs(ctx, l2.ID))(t); len(jobs) != 0 {
		t.Errorf("rolled-back enqueue left jobs %+v", jobs)
	}
	// And the catalog still works after the rollback (the connection was released).
	v2 := must(c.EnqueueTranscode(ctx, l2.ID, catalog.Source{Key: "k"}))(t)
	if jobs := must(c.TranscodeJobs(ctx, l2.ID))(t); len(jobs) != 1 || jobs[0].Args.Version != v2 {
		t.Errorf("jobs after a successful enqueue = %+v", jobs)
	}
}

// recordingWorker works transcode jobs the way the real worker does, against the catalog under test.
type recordingWorker struct {
	river.WorkerDefaults[catalog.TranscodeArgs]
	cat  func() *catalog.Catalog
	seen chan catalog.TranscodeArgs
}

func (w *recordingWorker) Work(ctx context.Context, job *river.Job[catalog.TranscodeArgs]) error {
	a := job.Args
	c := w.cat()
	err := c.MarkTranscoding(ctx, a.LectureID, a.Version, testWorker, testLease)
	if err == nil {
		err = c.SetProgress(ctx, a.LectureID, a.Version, testWorker, 50, 1)
	}
	if err == nil {
		err = c.PublishVersion(ctx, a.LectureID, a.Version, testWorker, catalog.Publication{DurationSeconds: 12, Renditions: []catalog.Rendition{{Name: "360p", Width: 640, Height: 360}}})
	}
	if catalog.IsConflict(err) || catalog.IsNotFound(err) {
		return river.JobCancel(err) // superseded or deleted: retrying cannot help
	}
	if err != nil {
		return err
	}
	w.seen <- a
	return nil
}

func testJobIsWorked(t *testing.T, open func(*testing.T) string) {
	ctx := ctxFor(t)
	var c *catalog.Catalog
	w := &recordingWorker{cat: func() *catalog.Catalog { return c }, seen: make(chan catalog.TranscodeArgs, 4)}
	workers := river.NewWorkers()
	river.AddWorker(workers, w)
	c = openCatalog(t, open(t), catalog.Options{Workers: workers, PollInterval: 100 * time.Millisecond, MaxWorkers: 2})
	_, _, l := teacherAndLecture(t, ctx, c)

	check(t, c.Start(ctx))
	check(t, c.Start(ctx)) // starting twice is harmless
	v := must(c.EnqueueTranscode(ctx, l.ID, catalog.Source{Key: "sources/x"}))(t)
	select {
	case got := <-w.seen:
		want := catalog.TranscodeArgs{LectureID: l.ID, Version: v, SourceKey: "sources/x", Profile: catalog.DefaultProfile}
		if got != want {
			t.Errorf("worker got %+v, want %+v", got, want)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("the job was not worked within 20s")
	}
	got := must(c.GetLecture(ctx, l.ID))(t)
	if got.Status != catalog.StatusReady || got.Version != v {
		t.Errorf("after the job: %+v", got)
	}
	stopCtx, cancel := context.WithTimeout(ctx, 20*time.Second)
	defer cancel()
	check(t, c.Stop(stopCtx))
	check(t, c.Stop(stopCtx)) // stopping twice is harmless
	waitJobState(t, ctx, c, l.ID, "completed")
}

// blockingWorker runs until its context is cancelled, like an ffmpeg pass that outlives a shutdown.
type blockingWorker struct {
	river.WorkerDefaults[catalog.TranscodeArgs]
	started, returned chan struct{}
}

func (w *blockingWorker) Work(ctx context.Context, _ *river.Job[catalog.TranscodeArgs]) error {
	w.started <- struct{}{}
	<-ctx.Done()
	w.returned <- struct{}{}
	return ctx.Err()
}

func testStopCancels(t *testing.T, open func(*testing.T) string) {
	ctx := ctxFor(t)
	w := &blockingWorker{started: make(chan struct{}, 1), returned: make(chan struct{}, 1)}
	workers := river.NewWorkers()
	river.AddWorker(workers, w)
	c := openCatalog(t, open(t), catalog.Options{Workers: workers, PollInterval: 100 * time.Millisecond})
	_, _, l := teacherAndLecture(t, ctx, c)
	startCtx, cancelStart := context.WithCancel(ctx)
	check(t, c.Start(startCtx))
	must(c.EnqueueTranscode(ctx, l.ID, catalog.Source{Key: "k"}))(t)
	select {
	case <-w.started:
	case <-time.After(20 * time.Second):
		t.Fatal("the job did not start within 20s")
	}
	// Cancelling Start's context (a signal arriving) must not cut the job short: only Stop does.
	cancelStart()
	select {
	case <-w.returned:
		t.Fatal("cancelling Start's context cancelled the running job")
	case <-time.After(200 * time.Millisecond):
	}
	if s := must(c.QueueStats(ctx))(t); s["running"] != 1 {
		t.Errorf("QueueStats while working = %v, want running 1", s)
	}
	stopCtx, cancel := context.WithTimeout(ctx, 300*time.Millisecond)
	defer cancel()
	start := time.Now()
	check(t, c.Stop(stopCtx)) // graceful period runs out, then the job is cancelled
	if d := time.Since(start); d > 15*time.Second {
		t.Errorf("Stop took %v", d)
	}
	// Released for retry (with the cancellation recorded) rather than left running for the rescuer.
	// River makes a job whose retry is due within a few seconds available at once, else retryable.
	jobs := waitJobState(t, ctx, c, l.ID, "retryable", "available")
	if j := jobs[0]; j.Attempt != 1 || len(j.Errors) != 1 {
		t.Errorf("cancelled job = %+v, want attempt 1 with one error", j)
	}
}

// testConcurrency hammers one catalog from many goroutines while workers run jobs: on SQLite everything
// shares ONE connection, so a transaction that queried outside itself would deadlock here.
func testConcurrency(t *testing.T, open func(*testing.T) string) {
	ctx := ctxFor(t)
	var c *catalog.Catalog
	w := &recordingWorker{cat: func() *catalog.Catalog { return c }, seen: make(chan catalog.TranscodeArgs, 100)}
	workers := river.NewWorkers()
	river.AddWorker(workers, w)
	c = openCatalog(t, open(t), catalog.Options{Workers: workers, PollInterval: 50 * time.Millisecond, MaxWorkers: 4})
	tr, _ := must2(c.AddTeacher(ctx, "Ada"))(t)
	check(t, c.Start(ctx))
	defer func() {
		stopCtx, cancel := context.WithTimeout(ctx, 20*time.Second)
		defer cancel()
		check(t, c.Stop(stopCtx))
	}()

	const n = 12
	errs := make(chan error, n)
	courses := make(chan string, n)
	for i := range n {
		go func() {
			errs <- func() error {
				co, err := c.EnsureCourse(ctx, tr.ID, "Shared")
				if err != nil {
					return err
				}
				courses <- co.ID
				l, err := c.CreateLecture(ctx, catalog.NewLecture{TeacherID: tr.ID, CourseID: co.ID, Title: "L"})
				if err != nil {
					return err
				}
				if _, err := c.EnqueueTranscode(ctx, l.ID, catalog.Source{Key: "k"}); err != nil {
					return err
				}
				if i%3 == 0 { // a replacement racing the first job
					if _, err := c.EnqueueTranscode(ctx, l.ID, catalog.Source{Key: "k2"}); err != nil {
						return err
					}
				}
				if _, err := c.ListLectures(ctx, catalog.ListFilter{TeacherID: tr.ID, Limit: 5}); err != nil {
					return err
				}
				_, err = c.QueueStats(ctx)
				return err
			}()
		}()
	}
	for range n {
		select {
		case err := <-errs:
			if err != nil {
				t.Error(err)
			}
		case <-time.After(30 * time.Second):
			t.Fatal("concurrent calls did not finish within 30s (deadlock?)")
		}
	}
	close(courses)
	var first string
	for id := range courses {
		if first == "" {
			first = id
		}
		if id != first {
			t.Errorf("concurrent EnsureCourse returned two courses: %s and %s", first, id)
		}
	}
	// Every lecture ends up published at its latest version; superseded jobs gave up with a conflict.
	deadline := time.Now().Add(30 * time.Second)
	for {
		lecs := must(c.ListLectures(ctx, catalog.ListFilter{TeacherID: tr.ID}))(t)
		ready := 0
		for _, l := range lecs {
			if l.Status == catalog.StatusReady && l.PendingVersion == 0 {
				ready++
			}
		}
		if len(lecs) == n && ready == n {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d of %d lectures ready after 30s", ready, len(lecs))
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// waitJobState waits until the lecture has exactly one job, in one of the states.
func waitJobState(t *testing.T, ctx context.Context, c *catalog.Catalog, lectureID string, states ...string) []catalog.Job {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		jobs := must(c.TranscodeJobs(ctx, lectureID))(t)
		if len(jobs) == 1 && slices.Contains(states, jobs[0].State) {
			return jobs
		}
		if time.Now().After(deadline) {
			t.Fatalf("jobs of %s = %+v, want one in state %q", lectureID, jobs, states)
		}
		time.Sleep(50 * time.Millisecond)
	}
}
