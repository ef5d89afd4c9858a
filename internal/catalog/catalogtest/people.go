package catalogtest

import (
	"crypto/sha256"
	"encoding/hex"
	"slices"
	"strings"
	"testing"

	"github.com/lectern/lectern/internal/catalog"
)

func testBasics(t *testing.T, open func(*testing.T) string) {
	ctx := ctxFor(t)
	c := openCatalog(t, open(t), catalog.Options{})
	if b := c.Backend(); b != "sqlite" && b != "postgres" {
		t.Errorf("Backend() = %q", b)
	}
	check(t, c.Ping(ctx))
	if n := must(c.CountLectures(ctx))(t); n != 0 {
		t.Errorf("CountLectures on an empty catalog = %d", n)
	}
	stats := must(c.QueueStats(ctx))(t)
	for _, s := range []string{"available", "running", "retryable", "completed", "discarded"} {
		if v, ok := stats[s]; !ok || v != 0 {
			t.Errorf("QueueStats[%q] = %d, %v; want 0, true", s, v, ok)
		}
	}
	// Without workers Start and Stop are no-ops.
	check(t, c.Start(ctx))
	check(t, c.Stop(ctx))
}

func testTeachers(t *testing.T, open func(*testing.T) string) {
	ctx := ctxFor(t)
	c := openCatalog(t, open(t), catalog.Options{})
	tr, token := must2(c.AddTeacher(ctx, "  Grace Hopper "))(t)
	if tr.ID == "" || tr.Name != "Grace Hopper" || tr.CreatedAt.IsZero() {
		t.Errorf("AddTeacher = %+v", tr)
	}
	if !strings.HasPrefix(token, catalog.TokenPrefix) || len(token) < len(catalog.TokenPrefix)+40 {
		t.Errorf("token %q: want %s + >= 40 chars", token, catalog.TokenPrefix)
	}
	got := must(c.TeacherByToken(ctx, token))(t)
	if got != tr {
		t.Errorf("TeacherByToken = %+v, want %+v", got, tr)
	}
	if got := must(c.GetTeacher(ctx, tr.ID))(t); got != tr {
		t.Errorf("GetTeacher = %+v, want %+v", got, tr)
	}
	tr2, token2 := must2(c.AddTeacher(ctx, "Grace Hopper"))(t) // same name, different teacher
	if tr2.ID == tr.ID || token2 == token {
		t.Error("two teachers share an id or a token")
	}

	for _, bad := range []string{"", "lt_", token + "x", token[:len(token)-1], "Bearer " + token, strings.ToUpper(token)} {
		if _, err := c.TeacherByToken(ctx, bad); !catalog.IsNotFound(err) {
			t.Errorf("TeacherByToken(%q) = %v, want not found", bad, err)
		}
	}
	if _, err := c.GetTeacher(ctx, "nosuchteacher00"); !catalog.IsNotFound(err) {
		t.Errorf("GetTeacher(unknown) = %v, want not found", err)
	}
	if _, _, err := c.AddTeacher(ctx, "  "); !catalog.IsInvalid(err) {
		t.Errorf("AddTeacher(blank) = %v, want invalid", err)
	}

	// Schools: given at creation or later, read back by both lookups, trimmed and checked.
	kim, kimToken := must2(c.AddSchoolTeacher(ctx, "Mr. Kim", " Busan Haeundae Middle School "))(t)
	if kim.School != "Busan Haeundae Middle School" {
		t.Errorf("AddSchoolTeacher school = %q", kim.School)
	}
	if got := must(c.TeacherByToken(ctx, kimToken))(t); got != kim {
		t.Errorf("TeacherByToken = %+v, want %+v", got, kim)
	}
	check(t, c.SetTeacherSchool(ctx, tr.ID, "7010057"))
	if got := must(c.GetTeacher(ctx, tr.ID))(t); got.School != "7010057" || got.Name != tr.Name {
		t.Errorf("after SetTeacherSchool: %+v", got)
	}
	check(t, c.SetTeacherSchool(ctx, tr.ID, ""))
	if got := must(c.GetTeacher(ctx, tr.ID))(t); got.School != "" {
		t.Errorf("after clearing the school: %q", got.School)
	}
	if err := c.SetTeacherSchool(ctx, "nosuchteacher00", "x"); !catalog.IsNotFound(err) {
		t.Errorf("SetTeacherSchool(unknown) = %v, want not found", err)
	}
	for _, bad := range []string{strings.Repeat("s", 201), "line\nbreak"} {
		if err := c.SetTeacherSchool(ctx, tr.ID, bad); !catalog.IsInvalid(err) {
			t.Errorf("SetTeacherSchool(%.20q) = %v, want invalid", bad, err)
		}
		if _, _, err := c.AddSchoolTeacher(ctx, "X", bad); !catalog.IsInvalid(err) {
			t.Errorf("AddSchoolTeacher(%.20q) = %v, want invalid", bad, err)
		}
	}

	// Only the hash is stored: no column of the teachers table holds the token.
	rows := must(catalog.QueryStringsForTesting(ctx, c, `SELECT id || '|' || name || '|' || token_hash FROM teachers`))(t)
	if len(rows) != 3 {
		t.Fatalf("teachers table has %d rows, want 3", len(rows))
	}
	sum := sha256.Sum256([]byte(token))
	wantHash := hex.EncodeToString(sum[:])
	var sawHash bool
	for _, r := range rows {
		secret := strings.TrimPrefix(token, catalog.TokenPrefix)
		if strings.Contains(r, secret) || strings.Contains(r, strings.TrimPrefix(token2, catalog.TokenPrefix)) {
			t.Errorf("a raw token is stored in the teachers table: %q", r)
		}
		sawHash = sawHash || strings.HasSuffix(r, "|"+wantHash)
	}
	if !sawHash {
		t.Errorf("no row stores SHA-256(token) = %s: %q", wantHash, rows)
	}
}

func testCourses(t *testing.T, open func(*testing.T) string) {
	ctx := ctxFor(t)
	c := openCatalog(t, open(t), catalog.Options{})
	ada, _ := must2(c.AddTeacher(ctx, "Ada"))(t)
	bob, _ := must2(c.AddTeacher(ctx, "Bob"))(t)

	a1 := must(c.EnsureCourse(ctx, ada.ID, "Calculus"))(t)
	if a1.ID == "" || a1.TeacherID != ada.ID || a1.Title != "Calculus" || a1.CreatedAt.IsZero() {
		t.Errorf("EnsureCourse = %+v", a1)
	}
	if again := must(c.EnsureCourse(ctx, ada.ID, " Calculus "))(t); again != a1 {
		t.Errorf("EnsureCourse again = %+v, want the same course %+v", again, a1)
	}
	a2 := must(c.EnsureCourse(ctx, ada.ID, "Algebra"))(t)
	b1 := must(c.EnsureCourse(ctx, bob.ID, "Calculus"))(t)
	if a2.ID == a1.ID || b1.ID == a1.ID {
		t.Error("different (teacher, title) pairs share a course")
	}
	if got := must(c.GetCourse(ctx, a2.ID))(t); got != a2 {
		t.Errorf("GetCourse = %+v, want %+v", got, a2)
	}
	list := must(c.ListCourses(ctx, ada.ID))(t)
	if len(list) != 2 || !slices.Contains(list, a1) || !slices.Contains(list, a2) {
		t.Errorf("ListCourses(ada) = %+v", list)
	}
	if list := must(c.ListCourses(ctx, "nosuchteacher00"))(t); len(list) != 0 {
		t.Errorf("ListCourses(unknown) = %+v", list)
	}
	if _, err := c.GetCourse(ctx, "nosuchcourse000"); !catalog.IsNotFound(err) {
		t.Errorf("GetCourse(unknown) = %v, want not found", err)
	}
	if _, err := c.EnsureCourse(ctx, "nosuchteacher00", "X"); !catalog.IsNotFound(err) {
		t.Errorf("EnsureCourse(unknown teacher) = %v, want not found", err)
	}
	if _, err := c.EnsureCourse(ctx, ada.ID, ""); !catalog.IsInvalid(err) {
		t.Errorf("EnsureCourse(blank title) = %v, want invalid", err)
	}
}

func testMigrationsIdempotent(t *testing.T, open func(*testing.T) string) {
	ctx := ctxFor(t)
	url := open(t)
	first, err := catalog.Open(ctx, url, catalog.Options{Logger: quietLogger()})
	check(t, err)
	tr, token := must2(first.AddTeacher(ctx, "Ada"))(t)
	// Open again while the first is still open (two processes on one database), then after closing it.
	second := openCatalog(t, url, catalog.Options{})
	if got := must(second.TeacherByToken(ctx, token))(t); got != tr {
		t.Errorf("second Open sees %+v, want %+v", got, tr)
	}
	check(t, first.Close())
	check(t, first.Close()) // Close twice is fine
	third := openCatalog(t, url, catalog.Options{})
	if got := must(third.TeacherByToken(ctx, token))(t); got != tr {
		t.Errorf("third Open sees %+v, want %+v", got, tr)
	}
	versions := must(catalog.QueryStringsForTesting(ctx, third, `SELECT name FROM lectern_migrations ORDER BY version`))(t)
	if len(versions) == 0 || len(versions) != len(slices.Compact(slices.Clone(versions))) {
		t.Errorf("lectern_migrations = %q: want each migration recorded once", versions)
	}
}
