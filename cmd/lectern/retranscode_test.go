package main

import (
	"slices"
	"strings"
	"testing"
	"time"
)

// TestRetranscode: `lectern retranscode` makes v2 of a published lecture from its stored source with
// another profile; v1 keeps playing (and stays listed for students) until v2 is published, and both
// versions' objects stay where they were.
func TestRetranscode(t *testing.T) {
	if testing.Short() {
		t.Skip("end-to-end: starts lectern and transcodes")
	}
	data := t.TempDir()
	db := sqliteDB(data)
	token := addTeacher(t, db, "Ms. Lim")
	s := startServe(t, data)
	lec := uploadClip(t, s.base, token, "Optics", 8)
	waitReady(t, s.base, token, &lec)
	v1URL := lec.PlaybackURL

	stdout, stderr, code := runLectern(t, data, "retranscode", "--db", db, lec.ID, "--profile", "motion")
	if code != 0 || stdout != lec.ID+": v2 queued\n" {
		t.Fatalf("retranscode: exit %d, stdout %q, stderr %q", code, stdout, stderr)
	}
	getJSON(t, s.base+"/api/v1/lectures/"+lec.ID, token, &lec)
	if lec.Version != 1 || lec.PlaybackURL != v1URL || lec.Status == "ready" {
		t.Errorf("while v2 is made: %+v, want v1 playing and a new version on its way", lec)
	}
	if resp, _ := fetch(t, s.base+v1URL); resp.StatusCode != 200 {
		t.Errorf("v1 master while v2 is made: %d", resp.StatusCode)
	}
	if _, page := fetch(t, s.base+"/"); !strings.Contains(string(page), "Optics") {
		t.Error("the student index dropped the lecture while its next version is made")
	}

	deadline := time.Now().Add(3 * time.Minute)
	for lec.Version != 2 || lec.Status != "ready" {
		if lec.Status == "failed" || time.Now().After(deadline) {
			t.Fatalf("v2 not published: %+v", lec)
		}
		time.Sleep(300 * time.Millisecond)
		getJSON(t, s.base+"/api/v1/lectures/"+lec.ID, token, &lec)
	}
	if !strings.HasSuffix(lec.PlaybackURL, "/v2/master.m3u8") {
		t.Errorf("playback URL %q, want v2", lec.PlaybackURL)
	}
	resp, body := fetch(t, s.base+lec.PlaybackURL)
	if resp.StatusCode != 200 || !strings.Contains(string(body), "#EXT-X-STREAM-INF") {
		t.Errorf("v2 master: %d\n%s", resp.StatusCode, body)
	}
	names := storedVersions(t, data, lec.ID)
	if !slices.Equal(names, []string{"v1", "v2"}) {
		t.Errorf("versions in storage %v, want v1 and v2", names)
	}

	// Mistakes name the lecture and what is wrong; the others are still queued.
	for _, tt := range []struct {
		args []string
		code int
		want string
	}{
		{[]string{"nosuchlecture00"}, 1, "nosuchlecture00: no such lecture"},
		{[]string{"--profile", "sport", lec.ID}, 1, `unknown profile "sport" (choose one of lecture, motion)`},
		{nil, 2, "name at least one LECTURE_ID"},
	} {
		_, stderr, code := runLectern(t, data, append([]string{"retranscode", "--db", db}, tt.args...)...)
		if code != tt.code || !strings.Contains(stderr, tt.want) {
			t.Errorf("retranscode %v: exit %d, stderr %q; want %d and %q", tt.args, code, stderr, tt.code, tt.want)
		}
	}
}
