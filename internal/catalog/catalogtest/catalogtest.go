// Package catalogtest is the conformance suite every catalog backend must pass. A backend's test only
// supplies a way to get a fresh, empty database URL:
//
//	func TestSQLite(t *testing.T) {
//		catalogtest.RunConformance(t, func(t *testing.T) string { return "sqlite://" + t.TempDir() + "/c.db" })
//	}
//
// # What it covers
//
// Teachers and their tokens (shown once, stored hashed), courses (get-or-create), the lecture lifecycle
// with versioned replacement and conflicts, list pagination, deletion, idempotent migrations, the
// transactional enqueue of River jobs (including rollback of both the status change and the job), and a
// job actually worked by a registered worker, with graceful and forced stops, and webhook events recorded
// with (and only with) the changes they report.
package catalogtest

import (
	"context"
	"log/slog"
	"slices"
	"testing"
	"time"

	"github.com/lectern/lectern/internal/catalog"
)

// RunConformance runs the whole suite. open must return the URL of a fresh, empty database each time it
// is called (each subtest gets its own).
func RunConformance(t *testing.T, open func(t *testing.T) string) {
	t.Run("Basics", func(t *testing.T) { testBasics(t, open) })
	t.Run("Teachers", func(t *testing.T) { testTeachers(t, open) })
	t.Run("Courses", func(t *testing.T) { testCourses(t, open) })
	t.Run("Lifecycle", func(t *testing.T) { testLifecycle(t, open) })
	t.Run("Conflicts", func(t *testing.T) { testConflicts(t, open) })
	t.Run("Pagination", func(t *testing.T) { testPagination(t, open) })
	t.Run("RenameDelete", func(t *testing.T) { testRenameDelete(t, open) })
	t.Run("MigrationsIdempotent", func(t *testing.T) { testMigrationsIdempotent(t, open) })
	t.Run("EnqueueIsTransactional", func(t *testing.T) { testEnqueueTransactional(t, open) })
	t.Run("JobIsWorked", func(t *testing.T) { testJobIsWorked(t, open) })
	t.Run("StopCancelsRunningJobs", func(t *testing.T) { testStopCancels(t, open) })
	t.Run("Concurrency", func(t *testing.T) { testConcurrency(t, open) })
	t.Run("SourceProfileAssets", func(t *testing.T) { testSourceProfileAssets(t, open) })
	t.Run("Retranscode", func(t *testing.T) { testRetranscode(t, open) })
	t.Run("WorkerLease", func(t *testing.T) { testWorkerLease(t, open) })
	t.Run("EventsOff", func(t *testing.T) { testEventsOff(t, open) })
	t.Run("EventsAreTransactional", func(t *testing.T) { testEventsTransactional(t, open) })
	t.Run("EventQueueAlone", func(t *testing.T) { testEventQueueAlone(t, open) })
}

// The worker id and lease of the single worker most tests play.
const (
	testWorker = "worker-1"
	testLease  = time.Minute
)

func quietLogger() *slog.Logger { return slog.New(slog.DiscardHandler) }

func openCatalog(t *testing.T, url string, opts catalog.Options) *catalog.Catalog {
	t.Helper()
	if opts.Logger == nil {
		opts.Logger = quietLogger()
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	c, err := catalog.Open(ctx, url, opts)
	if err != nil {
		t.Fatalf("Open(%s): %v", url, err)
	}
	t.Cleanup(func() {
		if err := c.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
	})
	return c
}

func ctxFor(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	t.Cleanup(cancel)
	return ctx
}

// must(f())(t) returns f's value or fails the test with f's error.
func must[T any](v T, err error) func(t *testing.T) T {
	return func(t *testing.T) T {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
		return v
	}
}

func check(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

// teacherAndLecture is the common fixture: one teacher, one course, one lecture.
func teacherAndLecture(t *testing.T, ctx context.Context, c *catalog.Catalog) (catalog.Teacher, catalog.Course, catalog.Lecture) {
	t.Helper()
	tr, _ := must2(c.AddTeacher(ctx, "Ada"))(t)
	co := must(c.EnsureCourse(ctx, tr.ID, "Analysis"))(t)
	l := must(c.CreateLecture(ctx, catalog.NewLecture{TeacherID: tr.ID, CourseID: co.ID, Title: "Limits", Description: "epsilon"}))(t)
	return tr, co, l
}

// must2 is must for AddTeacher.
func must2(tr catalog.Teacher, token string, err error) func(t *testing.T) (catalog.Teacher, string) {
	return func(t *testing.T) (catalog.Teacher, string) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
		return tr, token
	}
}

func ids(ls []catalog.Lecture) []string {
	out := make([]string, len(ls))
	for i, l := range ls {
		out[i] = l.ID
	}
	return out
}

func sameSet(a, b []string) bool {
	a, b = slices.Clone(a), slices.Clone(b)
	slices.Sort(a)
	slices.Sort(b)
	return slices.Equal(a, b)
}

func equalLecture(a, b catalog.Lecture) bool {
	return a.ID == b.ID && a.CourseID == b.CourseID && a.TeacherID == b.TeacherID && a.Title == b.Title &&
		a.Description == b.Description && a.Status == b.Status && a.Progress == b.Progress &&
		a.ETASeconds == b.ETASeconds && a.ErrorReason == b.ErrorReason && a.Version == b.Version &&
		a.PendingVersion == b.PendingVersion && a.SourceKey == b.SourceKey &&
		a.DurationSeconds == b.DurationSeconds && slices.Equal(a.Renditions, b.Renditions) &&
		a.CreatedAt.Equal(b.CreatedAt) && a.UpdatedAt.Equal(b.UpdatedAt)
}
