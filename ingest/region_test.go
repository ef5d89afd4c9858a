package ingest

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/lectern/lectern/internal/catalog"
	"github.com/lectern/lectern/internal/playtoken"
)

// TestPlaybackRegionFromSchool: the signed playback URLs of a lecture carry the region that serves
// its teacher's school, on the watch page, the course page's posters and the API alike; a teacher
// of no school, or of a school no region lists, gets tokens without a region (the router then goes
// by the student's network). A school recorded later reaches new URLs once the remembered one expires.
func TestPlaybackRegionFromSchool(t *testing.T) {
	ctx := context.Background()
	keys, err := playtoken.ParseKeys("k1:" + strings.Repeat("cd", 32))
	if err != nil {
		t.Fatal(err)
	}
	cat, store, _ := openStores(t)
	regions := map[string]string{"Busan Haeundae Middle School": "busan-ulsan", "7010057": "seoul"}
	lectures := map[string]string{} // teacher's school -> lecture id
	var tokens []string
	for _, school := range []string{"Busan Haeundae Middle School", "7010057", "", "Daegu Science High School"} {
		tr, token, err := cat.AddSchoolTeacher(ctx, "Teacher of "+school, school)
		if err != nil {
			t.Fatal(err)
		}
		tokens = append(tokens, token)
		l, err := cat.CreateLecture(ctx, catalog.NewLecture{TeacherID: tr.ID, Title: "A lecture"})
		if err != nil {
			t.Fatal(err)
		}
		v, err := cat.EnqueueTranscode(ctx, l.ID, catalog.Source{Key: "sources/" + l.ID})
		if err != nil {
			t.Fatal(err)
		}
		if err := cat.MarkTranscoding(ctx, l.ID, v, "w1", time.Minute); err != nil {
			t.Fatal(err)
		}
		if err := cat.PublishVersion(ctx, l.ID, v, "w1", catalog.Publication{DurationSeconds: 10, Assets: catalog.Assets{Poster: "poster.jpg"}}); err != nil {
			t.Fatal(err)
		}
		lectures[school] = l.ID
	}
	svc, err := New(Config{Catalog: cat, Store: store, TempDir: t.TempDir(), PlaybackBase: "https://router.example",
		PlaybackKeys: keys, SchoolRegion: func(school string) string { return regions[school] }})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(svc.Handler())
	t.Cleanup(srv.Close)
	get := func(path, bearer string) string {
		t.Helper()
		req, _ := http.NewRequest("GET", srv.URL+path, nil)
		if bearer != "" {
			req.Header.Set("Authorization", "Bearer "+bearer)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		if resp.StatusCode != 200 {
			t.Fatalf("%s: %d %s", path, resp.StatusCode, b)
		}
		return string(b)
	}
	signed := regexp.MustCompile(`https://router\.example/s/([^/"]+)/hls/([a-z2-7]+)/v1/`)
	// regionsIn verifies every signed URL of body and returns the region of each, by lecture.
	regionsIn := func(what, body string) map[string]string {
		t.Helper()
		out := map[string]string{}
		for _, m := range signed.FindAllStringSubmatch(body, -1) {
			c, err := playtoken.Verify(keys, m[1], m[2], time.Now())
			if err != nil {
				t.Fatalf("%s: token of %s: %v", what, m[2], err)
			}
			out[m[2]] = c.Region
		}
		return out
	}
	want := func(school string) string { return regions[school] }

	for school, id := range lectures {
		got := regionsIn("watch page", get("/watch/"+id, ""))
		if r, ok := got[id]; !ok || r != want(school) {
			t.Errorf("watch page of the lecture of a teacher at %q: region %q (found %v), want %q", school, r, ok, want(school))
		}
	}
	all := regionsIn("course page", get("/", ""))
	for school, id := range lectures {
		if r, ok := all[id]; !ok || r != want(school) {
			t.Errorf("course page poster of %q's lecture: region %q (found %v), want %q", school, r, ok, want(school))
		}
	}
	api := regionsIn("API", get("/api/v1/lectures", tokens[0]))
	if r := api[lectures["Busan Haeundae Middle School"]]; len(api) != 1 || r != "busan-ulsan" {
		t.Errorf("API list: regions %v, want busan-ulsan for the one lecture", api)
	}

	// A school recorded for the teacher of none: remembered as none for a while, then used.
	id := lectures[""]
	l, err := cat.GetLecture(ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	if err := cat.SetTeacherSchool(ctx, l.TeacherID, "7010057"); err != nil {
		t.Fatal(err)
	}
	if r := regionsIn("watch page", get("/watch/"+id, ""))[id]; r != "" {
		t.Errorf("right after the school was set: region %q, want the remembered none", r)
	}
	svc.schools.mu.Lock()
	k := svc.schools.byID[l.TeacherID]
	k.until = time.Now().Add(-time.Second)
	svc.schools.byID[l.TeacherID] = k
	svc.schools.mu.Unlock()
	if r := regionsIn("watch page", get("/watch/"+id, ""))[id]; r != "seoul" {
		t.Errorf("once the remembered school expired: region %q, want seoul", r)
	}
}
