package catalogtest

import (
	"testing"
	"time"

	"github.com/lectern/lectern/internal/catalog"
)

// testSourceProfileAssets: what a teacher chose at upload (profile, captions) reaches the job, and what
// the worker published (assets) reaches readers.
func testSourceProfileAssets(t *testing.T, open func(*testing.T) string) {
	ctx := ctxFor(t)
	c := openCatalog(t, open(t), catalog.Options{})
	tr, _ := must2(c.AddTeacher(ctx, "Ms. Han"))(t)
	l := must(c.CreateLecture(ctx, catalog.NewLecture{TeacherID: tr.ID, Title: "Gym", Profile: "motion"}))(t)
	if l.Profile != "motion" {
		t.Errorf("created lecture profile %q, want motion", l.Profile)
	}
	plain := must(c.CreateLecture(ctx, catalog.NewLecture{TeacherID: tr.ID, Title: "Maths"}))(t)
	if got := must(c.GetLecture(ctx, plain.ID))(t); got.Profile != catalog.DefaultProfile {
		t.Errorf("default profile %q, want %q", got.Profile, catalog.DefaultProfile)
	}
	for _, bad := range []string{"Motion", "mo tion", "-x", "a/b", "abcdefghijklmnopqrstuvwxyz0123456789"} {
		if _, err := c.CreateLecture(ctx, catalog.NewLecture{TeacherID: tr.ID, Title: "x", Profile: bad}); !catalog.IsInvalid(err) {
			t.Errorf("CreateLecture(profile %q) = %v, want invalid", bad, err)
		}
	}

	src := catalog.Source{Key: "sources/a/1", CaptionsKey: "sources/a/1.vtt", CaptionsLanguage: "ko-KR", Seconds: 3600.5}
	v := must(c.EnqueueTranscode(ctx, l.ID, src))(t)
	jobs := must(c.TranscodeJobs(ctx, l.ID))(t)
	want := catalog.TranscodeArgs{LectureID: l.ID, Version: v, SourceKey: src.Key, Profile: "motion",
		CaptionsKey: src.CaptionsKey, CaptionsLanguage: "ko-KR", SourceSeconds: 3600.5}
	if len(jobs) != 1 || jobs[0].Args != want {
		t.Fatalf("job args = %+v, want %+v", jobs, want)
	}
	got := must(c.GetLecture(ctx, l.ID))(t)
	if got.CaptionsKey != src.CaptionsKey || got.CaptionsLanguage != "ko-KR" || got.SourceSeconds != 3600.5 {
		t.Errorf("lecture after enqueue = %+v", got)
	}
	for _, bad := range []catalog.Source{
		{Key: "k", CaptionsLanguage: "not a tag"},
		{Key: "k", Seconds: -1},
	} {
		if _, err := c.EnqueueTranscode(ctx, l.ID, bad); !catalog.IsInvalid(err) {
			t.Errorf("EnqueueTranscode(%+v) = %v, want invalid", bad, err)
		}
	}

	assets := catalog.Assets{Poster: "poster.jpg", Chapters: "chapters.vtt", ChapterCount: 8, Captions: "subs/index.m3u8", Profile: "motion"}
	check(t, c.MarkTranscoding(ctx, l.ID, v, testWorker, testLease))
	check(t, c.PublishVersion(ctx, l.ID, v, testWorker, catalog.Publication{DurationSeconds: 3600, Assets: assets}))
	if got := must(c.GetLecture(ctx, l.ID))(t); got.Assets != assets || got.Status != catalog.StatusReady {
		t.Errorf("published lecture = %+v, want assets %+v", got, assets)
	}
}

// testRetranscode: a new ladder or profile for an existing lecture is v{n+1} from the stored source,
// while v{n} keeps playing.
func testRetranscode(t *testing.T, open func(*testing.T) string) {
	ctx := ctxFor(t)
	c := openCatalog(t, open(t), catalog.Options{})
	_, _, l := teacherAndLecture(t, ctx, c)
	if _, err := c.Retranscode(ctx, l.ID, ""); !catalog.IsConflict(err) {
		t.Errorf("Retranscode before any upload = %v, want conflict", err)
	}
	if _, err := c.Retranscode(ctx, "no-such-lecture", ""); !catalog.IsNotFound(err) {
		t.Errorf("Retranscode(unknown) = %v, want not found", err)
	}
	src := catalog.Source{Key: "sources/x/1", CaptionsKey: "sources/x/1.vtt", Seconds: 60}
	v1 := must(c.EnqueueTranscode(ctx, l.ID, src))(t)
	check(t, c.MarkTranscoding(ctx, l.ID, v1, testWorker, testLease))
	check(t, c.PublishVersion(ctx, l.ID, v1, testWorker, catalog.Publication{DurationSeconds: 60}))

	if ls := must(c.ListLectures(ctx, catalog.ListFilter{Published: true}))(t); len(ls) != 1 {
		t.Errorf("published lectures = %+v, want the one", ls)
	}
	if _, err := c.Retranscode(ctx, l.ID, "Not A Profile"); !catalog.IsInvalid(err) {
		t.Errorf("Retranscode(bad profile) = %v, want invalid", err)
	}
	v2 := must(c.Retranscode(ctx, l.ID, "motion"))(t)
	if v2 != v1+1 {
		t.Fatalf("Retranscode = v%d, want v%d", v2, v1+1)
	}
	got := must(c.GetLecture(ctx, l.ID))(t)
	if got.Version != v1 || got.PendingVersion != v2 || got.Status != catalog.StatusQueued || got.Profile != "motion" {
		t.Errorf("after Retranscode: %+v, want v%d playing, v%d queued, profile motion", got, v1, v2)
	}
	// Students still find it: v1 plays while v2 is made.
	if ls := must(c.ListLectures(ctx, catalog.ListFilter{Published: true}))(t); len(ls) != 1 || ls[0].ID != l.ID {
		t.Errorf("published lectures while v2 is queued = %+v, want the lecture", ls)
	}
	jobs := must(c.TranscodeJobs(ctx, l.ID))(t)
	want := catalog.TranscodeArgs{LectureID: l.ID, Version: v2, SourceKey: src.Key, Profile: "motion",
		CaptionsKey: src.CaptionsKey, SourceSeconds: 60}
	if len(jobs) != 2 || jobs[1].Args != want {
		t.Errorf("jobs = %+v, want the second with %+v", jobs, want)
	}
	// "" keeps the profile.
	v3 := must(c.Retranscode(ctx, l.ID, ""))(t)
	if got := must(c.TranscodeJobs(ctx, l.ID))(t); len(got) != 3 || got[2].Args.Profile != "motion" || got[2].Args.Version != v3 {
		t.Errorf("Retranscode(\"\") jobs = %+v, want profile motion kept", got)
	}
}

// testWorkerLease: one attempt at a time works a version; a dead attempt's lease is taken over.
func testWorkerLease(t *testing.T, open func(*testing.T) string) {
	ctx := ctxFor(t)
	c := openCatalog(t, open(t), catalog.Options{})
	_, _, l := teacherAndLecture(t, ctx, c)
	v := must(c.EnqueueTranscode(ctx, l.ID, catalog.Source{Key: "k"}))(t)

	if err := c.MarkTranscoding(ctx, l.ID, v, "", testLease); !catalog.IsInvalid(err) {
		t.Errorf("MarkTranscoding without a worker id = %v, want invalid", err)
	}
	check(t, c.MarkTranscoding(ctx, l.ID, v, "a", time.Minute))
	check(t, c.MarkTranscoding(ctx, l.ID, v, "a", time.Minute)) // the holder may mark again
	// A second attempt while "a" is alive waits.
	if err := c.MarkTranscoding(ctx, l.ID, v, "b", time.Minute); !catalog.IsBusy(err) {
		t.Fatalf("MarkTranscoding by a second worker = %v, want busy", err)
	}
	// Only the holder reports progress and publishes.
	if err := c.SetProgress(ctx, l.ID, v, "b", 10, 1); !catalog.IsConflict(err) {
		t.Errorf("SetProgress by a non-holder = %v, want conflict", err)
	}
	if err := c.PublishVersion(ctx, l.ID, v, "b", catalog.Publication{DurationSeconds: 1}); !catalog.IsConflict(err) {
		t.Errorf("PublishVersion by a non-holder = %v, want conflict", err)
	}
	check(t, c.SetProgress(ctx, l.ID, v, "a", 10, 1))

	// "a" goes silent: once its heartbeat is older than b's lease TTL, b takes over and a is out.
	time.Sleep(30 * time.Millisecond)
	check(t, c.MarkTranscoding(ctx, l.ID, v, "b", 10*time.Millisecond))
	if err := c.SetProgress(ctx, l.ID, v, "a", 20, 1); !catalog.IsConflict(err) {
		t.Errorf("SetProgress by the worker that lost the lease = %v, want conflict", err)
	}
	if err := c.PublishVersion(ctx, l.ID, v, "a", catalog.Publication{DurationSeconds: 1}); !catalog.IsConflict(err) {
		t.Errorf("PublishVersion by the worker that lost the lease = %v, want conflict", err)
	}
	check(t, c.PublishVersion(ctx, l.ID, v, "b", catalog.Publication{DurationSeconds: 1}))
	if got := must(c.GetLecture(ctx, l.ID))(t); got.Version != v || got.Status != catalog.StatusReady {
		t.Errorf("after publish: %+v", got)
	}
	// A replacement starts with no lease held.
	v2 := must(c.EnqueueTranscode(ctx, l.ID, catalog.Source{Key: "k2"}))(t)
	check(t, c.MarkTranscoding(ctx, l.ID, v2, "c", time.Hour))
	// FailLecture needs no lease (ingest fails lectures too).
	check(t, c.FailLecture(ctx, l.ID, v2, "bad"))
}
