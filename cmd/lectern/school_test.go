package main

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/lectern/lectern/internal/catalog"
)

// TestSchoolRegionRouting: a teacher registered at a school (`lectern teacher add --school`), ingest
// and the router given the same region map file, signed playback. The playback URL of the
// teacher's lecture carries the region that lists the school, and the router sends the student
// there although the student's address is in another region's network; an edit of the file that
// moves the school to another region reaches new URLs without a restart. `lectern teacher school`
// changes a teacher's school; the bad forms of both commands are refused.
func TestSchoolRegionRouting(t *testing.T) {
	if testing.Short() {
		t.Skip("runs the lectern binary")
	}
	seoul, busan := readyEdge(t), readyEdge(t)
	const school = "Busan Haeundae Middle School"
	file := filepath.Join(t.TempDir(), "regions.json")
	write := func(seoulSchools, busanSchools string) {
		t.Helper()
		data := fmt.Sprintf(`{"default": "seoul", "regions": {
		  "seoul": {"edges": [{"url": %q}], "prefixes": ["127.0.0.0/8"], "schools": [%s]},
		  "busan-ulsan": {"edges": [{"url": %q}], "prefixes": ["10.2.0.0/16"], "schools": [%s]}}}`,
			seoul.URL, seoulSchools, busan.URL, busanSchools)
		if err := os.WriteFile(file+".new", []byte(data), 0o644); err != nil {
			t.Fatal(err)
		}
		if err := os.Rename(file+".new", file); err != nil {
			t.Fatal(err)
		}
	}
	write(`"7010057"`, fmt.Sprintf("%q", school))

	data := t.TempDir()
	db := sqliteDB(data)
	out, err := exec.Command(lecternBin, "teacher", "add", "Mr. Kim", "--school", " "+school+" ", "--db", db).Output()
	if err != nil {
		t.Fatalf("teacher add --school: %v", err)
	}
	token := strings.TrimSpace(string(out))
	cat, err := catalog.Open(context.Background(), db, catalog.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer cat.Close()
	ctx := context.Background()
	tr, err := cat.TeacherByToken(ctx, token)
	if err != nil || tr.School != school {
		t.Fatalf("teacher add --school recorded %+v, %v", tr, err)
	}
	// A lecture published as the worker leaves one (no transcode needed: only its URLs are looked at).
	publish := func(title string) string {
		t.Helper()
		l, err := cat.CreateLecture(ctx, catalog.NewLecture{TeacherID: tr.ID, Title: title})
		if err != nil {
			t.Fatal(err)
		}
		v, err := cat.EnqueueTranscode(ctx, l.ID, catalog.Source{Key: "sources/" + l.ID})
		if err == nil {
			err = cat.MarkTranscoding(ctx, l.ID, v, "w1", time.Minute)
		}
		if err == nil {
			err = cat.PublishVersion(ctx, l.ID, v, "w1", catalog.Publication{DurationSeconds: 10})
		}
		if err != nil {
			t.Fatal(err)
		}
		return l.ID
	}
	first := publish("Tides")

	env := []string{"LECTERN_PLAYBACK_KEYS=k1:" + strings.Repeat("6f", 32)}
	ingestAddr, routerAddr := freeAddr(t), freeAddr(t)
	startRoleEnv(t, routerAddr, env, "router", "--listen", routerAddr, "--regions", file, "--probe-interval", "100ms")
	startRoleEnv(t, ingestAddr, env, "ingest", "--listen", ingestAddr, "--db", db, "--storage", "file://"+filepath.Join(data, "objects"),
		"--tmp", t.TempDir(), "--playback-base", "http://"+routerAddr, "--regions", file)
	playback := func(id string) string {
		t.Helper()
		r := do(t, "GET", "http://"+ingestAddr+"/api/v1/lectures/"+id, "Authorization", "Bearer "+token)
		var l struct {
			PlaybackURL string `json:"playback_url"`
		}
		if err := json.Unmarshal(r.body, &l); r.status != 200 || err != nil || l.PlaybackURL == "" {
			t.Fatalf("lecture %s: %d %s", id, r.status, r.body)
		}
		return l.PlaybackURL
	}
	routedTo := func(u string) string {
		t.Helper()
		r := do(t, "GET", u)
		if r.status != http.StatusFound {
			t.Fatalf("router on %s: %d %s", u, r.status, r.body)
		}
		return r.header.Get("Location")
	}
	u := playback(first)
	if loc := routedTo(u); !strings.HasPrefix(loc, busan.URL+"/s/") {
		t.Errorf("a student of %q on 127.0.0.1 (seoul's network) went to %q, want the busan-ulsan edge %s", school, loc, busan.URL)
	}

	// The school moves to seoul in the file: new URLs name seoul (ingest follows the file).
	write(fmt.Sprintf("%q", school), `"7010057"`)
	deadline := time.Now().Add(10 * time.Second)
	for loc := routedTo(playback(first)); !strings.HasPrefix(loc, seoul.URL+"/s/"); loc = routedTo(playback(first)) {
		if time.Now().After(deadline) {
			t.Fatalf("after moving the school to seoul the student still goes to %q", loc)
		}
		time.Sleep(100 * time.Millisecond)
	}

	// lectern teacher school: recorded (new URLs follow within a minute, checked in package ingest).
	run := func(args ...string) (string, error) {
		out, err := exec.Command(lecternBin, append([]string{"teacher"}, args...)...).CombinedOutput()
		return string(out), err
	}
	if out, err := run("school", tr.ID, "7010057", "--db", db); err != nil || !strings.Contains(out, `school "7010057"`) {
		t.Errorf("teacher school: %v %s", err, out)
	}
	if got, err := cat.GetTeacher(ctx, tr.ID); err != nil || got.School != "7010057" {
		t.Errorf("after teacher school: %+v %v", got, err)
	}
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"school", "nosuchteacher00", "x", "--db", db}, `no teacher with id "nosuchteacher00"`},
		{[]string{"school", tr.ID, "--db", db}, "usage: lectern teacher"},
		{[]string{"school", tr.ID, "a\tb", "--db", db}, "control characters"},
		{[]string{"add", "Ms. Y", "--school", strings.Repeat("s", 201), "--db", db}, "longer than 200"},
		{[]string{"add", "--db", db}, "usage: lectern teacher"},
		{[]string{"move", tr.ID}, "usage: lectern teacher"},
	} {
		if out, err := run(tc.args...); err == nil || !strings.Contains(out, tc.want) {
			t.Errorf("teacher %q: %v %s; want a failure saying %q", tc.args, err, out, tc.want)
		}
	}
	// --regions without signing has nowhere to put the region.
	cmd := exec.Command(lecternBin, "ingest", "--listen", freeAddr(t), "--db", db, "--regions", file)
	if out, err := cmd.CombinedOutput(); err == nil || !strings.Contains(string(out), "give --playback-keys too") {
		t.Errorf("ingest --regions without keys: %v %s", err, out)
	}
}
