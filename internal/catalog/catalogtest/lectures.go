package catalogtest

import (
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/lectern/lectern/internal/catalog"
)

func testLifecycle(t *testing.T, open func(*testing.T) string) {
	ctx := ctxFor(t)
	c := openCatalog(t, open(t), catalog.Options{})
	tr, co, l := teacherAndLecture(t, ctx, c)

	if l.ID == "" || strings.Trim(l.ID, "abcdefghijklmnopqrstuvwxyz0123456789") != "" {
		t.Errorf("lecture id %q: want [a-z0-9]+", l.ID)
	}
	if l.Status != catalog.StatusAwaitingUpload || l.Version != 0 || l.PendingVersion != 0 || l.TeacherID != tr.ID ||
		l.CourseID != co.ID || l.Title != "Limits" || l.Description != "epsilon" || l.CreatedAt.IsZero() {
		t.Errorf("CreateLecture = %+v", l)
	}
	if got := must(c.GetLecture(ctx, l.ID))(t); !equalLecture(got, l) {
		t.Errorf("GetLecture = %+v, want %+v", got, l)
	}

	v := must(c.EnqueueTranscode(ctx, l.ID, catalog.Source{Key: "sources/" + l.ID + "/u1"}))(t)
	if v != 1 {
		t.Fatalf("first EnqueueTranscode = v%d, want v1", v)
	}
	got := must(c.GetLecture(ctx, l.ID))(t)
	if got.Status != catalog.StatusQueued || got.PendingVersion != 1 || got.Version != 0 || got.SourceKey != "sources/"+l.ID+"/u1" {
		t.Errorf("after enqueue: %+v", got)
	}

	check(t, c.MarkTranscoding(ctx, l.ID, 1, testWorker, testLease))
	check(t, c.MarkTranscoding(ctx, l.ID, 1, testWorker, testLease)) // a retried job marks again
	check(t, c.SetProgress(ctx, l.ID, 1, testWorker, 42.5, 17))
	got = must(c.GetLecture(ctx, l.ID))(t)
	if got.Status != catalog.StatusTranscoding || got.Progress != 42.5 || got.ETASeconds != 17 {
		t.Errorf("after progress: %+v", got)
	}
	check(t, c.SetProgress(ctx, l.ID, 1, testWorker, 250, -1)) // clamped
	if got := must(c.GetLecture(ctx, l.ID))(t); got.Progress != 100 || got.ETASeconds != 0 {
		t.Errorf("clamped progress: %v eta %v", got.Progress, got.ETASeconds)
	}

	renditions := []catalog.Rendition{
		{Name: "720p", Width: 1280, Height: 720, Bandwidth: 3_000_000, AverageBandwidth: 2_500_000, Codecs: "avc1.64001f,mp4a.40.2", FrameRate: 29.97},
		{Name: "360p", Width: 640, Height: 360, Bandwidth: 900_000, AverageBandwidth: 800_000, Codecs: "avc1.64001e,mp4a.40.2", FrameRate: 29.97},
	}
	check(t, c.PublishVersion(ctx, l.ID, 1, testWorker, catalog.Publication{DurationSeconds: 3600.5, Renditions: renditions}))
	got = must(c.GetLecture(ctx, l.ID))(t)
	if got.Status != catalog.StatusReady || got.Version != 1 || got.PendingVersion != 0 || got.Progress != 100 ||
		got.DurationSeconds != 3600.5 || !slices.Equal(got.Renditions, renditions) || !got.Playable() {
		t.Errorf("after publish: %+v", got)
	}

	// Replace: v2 is produced while v1 keeps playing.
	v = must(c.EnqueueTranscode(ctx, l.ID, catalog.Source{Key: "sources/" + l.ID + "/u2"}))(t)
	if v != 2 {
		t.Fatalf("replacement EnqueueTranscode = v%d, want v2", v)
	}
	got = must(c.GetLecture(ctx, l.ID))(t)
	if got.Status != catalog.StatusQueued || got.Version != 1 || got.PendingVersion != 2 || got.Progress != 0 ||
		got.SourceKey != "sources/"+l.ID+"/u2" || !slices.Equal(got.Renditions, renditions) {
		t.Errorf("after replacement enqueue: %+v", got)
	}

	// A failed replacement keeps v1 published.
	check(t, c.MarkTranscoding(ctx, l.ID, 2, testWorker, testLease))
	check(t, c.FailLecture(ctx, l.ID, 2, "ffmpeg: invalid data found when processing input"))
	got = must(c.GetLecture(ctx, l.ID))(t)
	if got.Status != catalog.StatusFailed || got.Version != 1 || got.PendingVersion != 0 ||
		got.ErrorReason != "ffmpeg: invalid data found when processing input" || got.DurationSeconds != 3600.5 {
		t.Errorf("after failed replacement: %+v", got)
	}

	// The next attempt gets a fresh version number (never v2 again) and clears the error.
	v = must(c.EnqueueTranscode(ctx, l.ID, catalog.Source{Key: "sources/" + l.ID + "/u3"}))(t)
	if v <= 2 {
		t.Fatalf("EnqueueTranscode after a failed v2 = v%d, want > 2", v)
	}
	got = must(c.GetLecture(ctx, l.ID))(t)
	if got.Status != catalog.StatusQueued || got.ErrorReason != "" || got.Version != 1 || got.PendingVersion != v {
		t.Errorf("after re-enqueue: %+v", got)
	}
	check(t, c.MarkTranscoding(ctx, l.ID, v, testWorker, testLease))
	check(t, c.PublishVersion(ctx, l.ID, v, testWorker, catalog.Publication{DurationSeconds: 10}))
	got = must(c.GetLecture(ctx, l.ID))(t)
	if got.Status != catalog.StatusReady || got.Version != v || len(got.Renditions) != 0 {
		t.Errorf("after publishing v%d: %+v", v, got)
	}
	if !got.UpdatedAt.After(l.CreatedAt) && !got.UpdatedAt.Equal(l.CreatedAt) {
		t.Errorf("UpdatedAt %v before CreatedAt %v", got.UpdatedAt, l.CreatedAt)
	}

	// A first transcode that fails leaves nothing playable.
	l2 := must(c.CreateLecture(ctx, catalog.NewLecture{TeacherID: tr.ID, Title: "No course"}))(t)
	if l2.CourseID != "" {
		t.Errorf("lecture without course has CourseID %q", l2.CourseID)
	}
	v = must(c.EnqueueTranscode(ctx, l2.ID, catalog.Source{Key: "k"}))(t)
	check(t, c.FailLecture(ctx, l2.ID, v, ""))
	got = must(c.GetLecture(ctx, l2.ID))(t)
	if got.Status != catalog.StatusFailed || got.Version != 0 || got.Playable() || got.ErrorReason == "" {
		t.Errorf("failed first transcode: %+v", got)
	}
}

func testConflicts(t *testing.T, open func(*testing.T) string) {
	ctx := ctxFor(t)
	c := openCatalog(t, open(t), catalog.Options{})
	_, co, l := teacherAndLecture(t, ctx, c)

	// Nothing pending yet.
	if err := c.MarkTranscoding(ctx, l.ID, 1, testWorker, testLease); !catalog.IsConflict(err) {
		t.Errorf("MarkTranscoding before enqueue = %v, want conflict", err)
	}
	if err := c.PublishVersion(ctx, l.ID, 1, testWorker, catalog.Publication{DurationSeconds: 1}); !catalog.IsConflict(err) {
		t.Errorf("PublishVersion before enqueue = %v, want conflict", err)
	}
	v1 := must(c.EnqueueTranscode(ctx, l.ID, catalog.Source{Key: "a"}))(t)
	v2 := must(c.EnqueueTranscode(ctx, l.ID, catalog.Source{Key: "b"}))(t) // superseded before v1 even started
	if v2 != v1+1 {
		t.Errorf("second enqueue = v%d, want v%d", v2, v1+1)
	}
	// The job for v1 finds itself stale at every step.
	if err := c.MarkTranscoding(ctx, l.ID, v1, testWorker, testLease); !catalog.IsConflict(err) {
		t.Errorf("MarkTranscoding(stale) = %v, want conflict", err)
	}
	if err := c.SetProgress(ctx, l.ID, v1, testWorker, 50, 1); !catalog.IsConflict(err) {
		t.Errorf("SetProgress(stale) = %v, want conflict", err)
	}
	if err := c.PublishVersion(ctx, l.ID, v1, testWorker, catalog.Publication{DurationSeconds: 1}); !catalog.IsConflict(err) {
		t.Errorf("PublishVersion(stale) = %v, want conflict", err)
	}
	if err := c.FailLecture(ctx, l.ID, v1, "x"); !catalog.IsConflict(err) {
		t.Errorf("FailLecture(stale) = %v, want conflict", err)
	}
	if err := c.PublishVersion(ctx, l.ID, v2+1, testWorker, catalog.Publication{DurationSeconds: 1}); !catalog.IsConflict(err) {
		t.Errorf("PublishVersion(future) = %v, want conflict", err)
	}
	got := must(c.GetLecture(ctx, l.ID))(t)
	if got.Status != catalog.StatusQueued || got.PendingVersion != v2 || got.SourceKey != "b" {
		t.Errorf("stale calls changed the lecture: %+v", got)
	}
	check(t, c.MarkTranscoding(ctx, l.ID, v2, testWorker, testLease))
	check(t, c.PublishVersion(ctx, l.ID, v2, testWorker, catalog.Publication{DurationSeconds: 1}))
	if err := c.PublishVersion(ctx, l.ID, v2, testWorker, catalog.Publication{DurationSeconds: 1}); !catalog.IsConflict(err) {
		t.Errorf("publishing twice = %v, want conflict", err)
	}

	// Version 0 is never a job's version.
	if err := c.MarkTranscoding(ctx, l.ID, 0, testWorker, testLease); !catalog.IsInvalid(err) {
		t.Errorf("MarkTranscoding(v0) = %v, want invalid", err)
	}

	// Unknown lecture: not found everywhere.
	const ghost = "nosuchlecture00"
	for name, err := range map[string]error{
		"MarkTranscoding": c.MarkTranscoding(ctx, ghost, 1, testWorker, testLease),
		"SetProgress":     c.SetProgress(ctx, ghost, 1, testWorker, 1, 1),
		"PublishVersion":  c.PublishVersion(ctx, ghost, 1, testWorker, catalog.Publication{DurationSeconds: 1}),
		"FailLecture":     c.FailLecture(ctx, ghost, 1, "x"),
		"RenameLecture":   c.RenameLecture(ctx, ghost, "x"),
		"DeleteLecture":   c.DeleteLecture(ctx, ghost),
	} {
		if !catalog.IsNotFound(err) {
			t.Errorf("%s(unknown lecture) = %v, want not found", name, err)
		}
	}
	if _, err := c.EnqueueTranscode(ctx, ghost, catalog.Source{Key: "k"}); !catalog.IsNotFound(err) {
		t.Errorf("EnqueueTranscode(unknown) = %v, want not found", err)
	}
	if _, err := c.GetLecture(ctx, ghost); !catalog.IsNotFound(err) {
		t.Errorf("GetLecture(unknown) = %v, want not found", err)
	}

	// Lectures must name an existing teacher, and a course of that teacher.
	other, _ := must2(c.AddTeacher(ctx, "Other"))(t)
	if _, err := c.CreateLecture(ctx, catalog.NewLecture{TeacherID: other.ID, CourseID: co.ID, Title: "x"}); !catalog.IsConflict(err) {
		t.Errorf("CreateLecture in another teacher's course = %v, want conflict", err)
	}
	if _, err := c.CreateLecture(ctx, catalog.NewLecture{TeacherID: "nosuchteacher00", Title: "x"}); !catalog.IsNotFound(err) {
		t.Errorf("CreateLecture(unknown teacher) = %v, want not found", err)
	}
	if _, err := c.CreateLecture(ctx, catalog.NewLecture{TeacherID: other.ID, CourseID: "nosuchcourse000", Title: "x"}); !catalog.IsNotFound(err) {
		t.Errorf("CreateLecture(unknown course) = %v, want not found", err)
	}
	if _, err := c.CreateLecture(ctx, catalog.NewLecture{TeacherID: other.ID, Title: " "}); !catalog.IsInvalid(err) {
		t.Errorf("CreateLecture(blank title) = %v, want invalid", err)
	}
	if _, err := c.EnqueueTranscode(ctx, l.ID, catalog.Source{Key: ""}); !catalog.IsInvalid(err) {
		t.Errorf("EnqueueTranscode(empty key) = %v, want invalid", err)
	}
}

func testPagination(t *testing.T, open func(*testing.T) string) {
	ctx := ctxFor(t)
	c := openCatalog(t, open(t), catalog.Options{})
	ada, _ := must2(c.AddTeacher(ctx, "Ada"))(t)
	bob, _ := must2(c.AddTeacher(ctx, "Bob"))(t)
	course := must(c.EnsureCourse(ctx, ada.ID, "C"))(t)

	var adas []string
	for i := range 7 {
		nl := catalog.NewLecture{TeacherID: ada.ID, Title: "L"}
		if i%2 == 0 {
			nl.CourseID = course.ID
		}
		adas = append(adas, must(c.CreateLecture(ctx, nl))(t).ID)
		if i == 3 {
			time.Sleep(3 * time.Millisecond) // make sure both equal and different timestamps occur
		}
	}
	must(c.CreateLecture(ctx, catalog.NewLecture{TeacherID: bob.ID, Title: "B"}))(t)

	if n := must(c.CountLectures(ctx))(t); n != 8 {
		t.Errorf("CountLectures = %d, want 8", n)
	}
	all := ids(must(c.ListLectures(ctx, catalog.ListFilter{TeacherID: ada.ID}))(t))
	if len(all) != 7 || !sameSet(all, adas) {
		t.Fatalf("ListLectures(ada) = %v, want %v in some order", all, adas)
	}
	// Page through with a cursor: pages concatenate to the unpaged list, in order.
	var paged []string
	after := ""
	for pages := 0; ; pages++ {
		if pages > 10 {
			t.Fatal("pagination does not end")
		}
		page := must(c.ListLectures(ctx, catalog.ListFilter{TeacherID: ada.ID, Limit: 3, After: after}))(t)
		if len(page) > 3 {
			t.Fatalf("page of %d > limit 3", len(page))
		}
		paged = append(paged, ids(page)...)
		if len(page) < 3 {
			break
		}
		after = page[len(page)-1].ID
	}
	if !slices.Equal(paged, all) {
		t.Errorf("paged = %v, want %v", paged, all)
	}
	lecs := must(c.ListLectures(ctx, catalog.ListFilter{}))(t)
	for i := 1; i < len(lecs); i++ {
		a, b := lecs[i-1], lecs[i]
		if a.CreatedAt.After(b.CreatedAt) || (a.CreatedAt.Equal(b.CreatedAt) && a.ID > b.ID) {
			t.Errorf("ListLectures not ordered by (created_at, id) at %d", i)
		}
	}
	if len(lecs) != 8 {
		t.Errorf("ListLectures(all) returned %d, want 8", len(lecs))
	}

	inCourse := must(c.ListLectures(ctx, catalog.ListFilter{CourseID: course.ID}))(t)
	if len(inCourse) != 4 {
		t.Errorf("ListLectures(course) returned %d, want 4", len(inCourse))
	}
	check(t, func() error { _, err := c.EnqueueTranscode(ctx, adas[1], catalog.Source{Key: "k"}); return err }())
	queued := must(c.ListLectures(ctx, catalog.ListFilter{Status: catalog.StatusQueued}))(t)
	if len(queued) != 1 || queued[0].ID != adas[1] {
		t.Errorf("ListLectures(queued) = %v", ids(queued))
	}
	if l := must(c.ListLectures(ctx, catalog.ListFilter{TeacherID: ada.ID, Status: catalog.StatusReady}))(t); len(l) != 0 {
		t.Errorf("ListLectures(ready) = %v", ids(l))
	}
	if _, err := c.ListLectures(ctx, catalog.ListFilter{After: "nosuchlecture00"}); !catalog.IsNotFound(err) {
		t.Errorf("ListLectures(unknown cursor) = %v, want not found", err)
	}
}

func testRenameDelete(t *testing.T, open func(*testing.T) string) {
	ctx := ctxFor(t)
	c := openCatalog(t, open(t), catalog.Options{})
	_, _, l := teacherAndLecture(t, ctx, c)
	check(t, c.RenameLecture(ctx, l.ID, "Continuity"))
	if got := must(c.GetLecture(ctx, l.ID))(t); got.Title != "Continuity" {
		t.Errorf("title after rename = %q", got.Title)
	}
	if err := c.RenameLecture(ctx, l.ID, ""); !catalog.IsInvalid(err) {
		t.Errorf("RenameLecture(blank) = %v, want invalid", err)
	}
	must(c.EnqueueTranscode(ctx, l.ID, catalog.Source{Key: "k"}))(t)
	check(t, c.DeleteLecture(ctx, l.ID))
	if _, err := c.GetLecture(ctx, l.ID); !catalog.IsNotFound(err) {
		t.Errorf("GetLecture after delete = %v, want not found", err)
	}
	if err := c.DeleteLecture(ctx, l.ID); !catalog.IsNotFound(err) {
		t.Errorf("DeleteLecture twice = %v, want not found", err)
	}
	// The job queued before the delete finds the lecture gone.
	if err := c.MarkTranscoding(ctx, l.ID, 1, testWorker, testLease); !catalog.IsNotFound(err) {
		t.Errorf("MarkTranscoding of a deleted lecture = %v, want not found", err)
	}
	if n := must(c.CountLectures(ctx))(t); n != 0 {
		t.Errorf("CountLectures after delete = %d", n)
	}
}
