package main

import (
	"bytes"
	"encoding/base64"
	"net/http"
	"os/exec"
	"regexp"
	"strings"
	"testing"
)

// TestSignedPlaybackAndPurgeAcrossRoles runs the roles as separate processes with signed playback and
// purging on: ingest mints playback URLs that both edges accept (and a real HLS client plays through
// the relative URIs), the edges fetch from the keyed origin with their credential, plain /hls/ is
// refused, and deleting the lecture purges the origin, then both edges.
func TestSignedPlaybackAndPurgeAcrossRoles(t *testing.T) {
	if testing.Short() {
		t.Skip("end-to-end: starts lectern roles and transcodes")
	}
	data := t.TempDir()
	db, store := sqliteDB(data), "file://"+data+"/objects"
	keys := "k1:" + base64.StdEncoding.EncodeToString(bytes.Repeat([]byte{7}, 32))
	const secret = "purge-s3cret"
	ingestAddr, workerAddr, originAddr, edge1, edge2 := freeAddr(t), freeAddr(t), freeAddr(t), freeAddr(t), freeAddr(t)

	const edgeSecret = "edge-to-origin-0123456789abcdef"
	startRoleEnv(t, originAddr, []string{"LECTERN_EDGE_SECRETS=" + edgeSecret}, "origin", "--listen", originAddr,
		"--storage", store, "--playback-keys", keys, "--purge-secret", secret)
	for _, addr := range []string{edge1, edge2} {
		startRoleEnv(t, addr, []string{"LECTERN_ORIGIN_SECRET=" + edgeSecret}, "edge", "--listen", addr,
			"--upstream", "http://"+originAddr, "--playback-keys", keys, "--purge-secret", secret)
	}
	// Teacher first: the worker and ingest create the catalog on start as well.
	token := addTeacher(t, db, "signed")
	startRole(t, workerAddr, "worker", "--listen", workerAddr, "--db", db, "--storage", store, "--tmp", t.TempDir())
	startRole(t, ingestAddr, "ingest", "--listen", ingestAddr, "--db", db, "--storage", store, "--tmp", t.TempDir(),
		"--playback-base", "http://"+edge1, "--playback-keys", keys, "--playback-ttl", "1h",
		"--purge-edges", "http://"+edge1+",http://"+edge2, "--purge-origins", "http://"+originAddr, "--purge-secret", secret)

	lec := uploadClip(t, "http://"+ingestAddr, token, "Signed", 3)
	waitReady(t, "http://"+ingestAddr, token, &lec)
	m := regexp.MustCompile(`^http://` + regexp.QuoteMeta(edge1) + `/s/([A-Za-z0-9_-]+)(/hls/` + lec.ID + `/v1/master\.m3u8)$`).FindStringSubmatch(lec.PlaybackURL)
	if m == nil {
		t.Fatalf("playback_url %q is not a signed URL on the edge", lec.PlaybackURL)
	}
	tok, master := m[1], m[2]

	// ffprobe follows the master's relative URIs to media playlists and segments, all under /s/{token}/.
	out, err := exec.Command("ffprobe", "-v", "error", "-show_entries", "stream=codec_type", "-of", "csv=p=0", lec.PlaybackURL).CombinedOutput()
	if err != nil || !strings.Contains(string(out), "video") {
		t.Fatalf("ffprobe through the signed URL: %v\n%s", err, out)
	}
	for i, want := range []string{"HIT", "MISS"} {
		edge := []string{edge1, edge2}[i]
		resp, _ := fetch(t, "http://"+edge+"/s/"+tok+master)
		if got := resp.Header.Get("X-Cache"); got != want {
			t.Errorf("%s: X-Cache %q, want %q", edge, got, want)
		}
		if code := status(t, "http://"+edge+master); code != 403 {
			t.Errorf("plain %s on %s: %d, want 403", master, edge, code)
		}
	}

	req, _ := http.NewRequest("DELETE", "http://"+ingestAddr+"/api/v1/lectures/"+lec.ID, nil)
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil || resp.StatusCode != 204 {
		t.Fatalf("DELETE lecture: %v %v", resp, err)
	}
	resp.Body.Close()
	for _, edge := range []string{edge1, edge2} {
		_, metrics := fetch(t, "http://"+edge+"/metrics")
		if !regexp.MustCompile(`(?m)^lectern_edge_purged_total [1-9]`).Match(metrics) {
			t.Errorf("%s purged nothing after the delete", edge)
		}
		if code := status(t, "http://"+edge+"/s/"+tok+master); code == 200 {
			t.Errorf("%s still serves the deleted lecture", edge)
		}
	}
	// The origin was purged before the edges: its hot cache no longer has the lecture either.
	if code := status(t, "http://"+originAddr+"/s/"+tok+master); code == 200 {
		t.Error("the origin still serves the deleted lecture")
	}
}

// TestServeSignedPlaybackAndPurge: serve with --playback-keys mints URLs its own edge accepts, refuses
// plain /hls/ at the edge and at the origin, and a delete purges the in-process edge.
func TestServeSignedPlaybackAndPurge(t *testing.T) {
	if testing.Short() {
		t.Skip("end-to-end: starts lectern and transcodes")
	}
	keys := "new:" + strings.Repeat("ab", 32) + ",old:" + strings.Repeat("cd", 32)
	s := startServe(t, t.TempDir(), "--playback-keys", keys, "--purge-secret", "s3cret")
	token := addTeacher(t, sqliteDB(s.data), "signed")
	lec := uploadClip(t, s.base, token, "Signed", 3)
	waitReady(t, s.base, token, &lec)
	signed, plain := lec.PlaybackURL, "/hls/"+lec.ID+"/v1/master.m3u8"
	if !strings.HasPrefix(signed, "/s/") || !strings.HasSuffix(signed, plain) {
		t.Fatalf("playback_url %q is not signed", signed)
	}
	if resp, _ := fetch(t, s.base+signed); resp.Header.Get("X-Cache") != "MISS" {
		t.Errorf("signed URL: X-Cache %q", resp.Header.Get("X-Cache"))
	}
	if code := status(t, s.base+plain); code != 403 {
		t.Errorf("plain %s: %d, want 403", plain, code)
	}
	// The origin's own listener is no way around the tokens: only the in-process edge holds the
	// credential serve made for this run.
	if code := status(t, s.originBase+plain); code != 403 {
		t.Errorf("plain %s on serve's origin listener: %d, want 403", plain, code)
	}
	if code := status(t, s.originBase+signed); code != 200 {
		t.Errorf("signed URL on serve's origin listener: %d, want 200", code)
	}
	if strings.Contains(s.stderr.String(), strings.Split(signed, "/")[2]) {
		t.Error("serve logged a playback token")
	}
	req, _ := http.NewRequest("DELETE", s.base+"/api/v1/lectures/"+lec.ID, nil)
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil || resp.StatusCode != 204 {
		t.Fatalf("DELETE lecture: %v %v", resp, err)
	}
	resp.Body.Close()
	if _, metrics := fetch(t, s.base+"/metrics"); !regexp.MustCompile(`(?m)^lectern_edge_purged_total [1-9]`).Match(metrics) {
		t.Error("the in-process edge purged nothing after the delete")
	}
	if code := status(t, s.base+signed); code == 200 {
		t.Error("the deleted lecture is still served")
	}
	// The purge endpoint is on serve's public listener for other ingest instances.
	req, _ = http.NewRequest("POST", s.base+"/_lectern/purge", strings.NewReader(`{"prefix":"/hls/x/"}`))
	req.Header.Set("Authorization", "Bearer s3cret")
	if resp, err := http.DefaultClient.Do(req); err != nil || resp.StatusCode != 200 {
		t.Errorf("POST /_lectern/purge on serve: %v %v", resp, err)
	} else {
		resp.Body.Close()
	}
}

func status(t *testing.T, url string) int {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	return resp.StatusCode
}

// Bad signing or purge settings stop a role at start-up with one line naming the flag.
func TestEdgeFlagErrors(t *testing.T) {
	if testing.Short() {
		t.Skip("runs the lectern binary")
	}
	for _, tc := range []struct {
		args     []string
		mentions string
	}{
		{[]string{"edge", "--upstream", "http://127.0.0.1:1", "--listen", "127.0.0.1:0", "--playback-keys", "k1:short"}, "--playback-keys"},
		{[]string{"edge", "--upstream", "http://127.0.0.1:1", "--listen", "127.0.0.1:0", "--disk-dir", "/dev/null/x"}, "--disk-dir"},
		{[]string{"edge", "--upstream", "http://127.0.0.1:1", "--listen", "127.0.0.1:0", "--disk-dir", "d", "--disk-size", "0"}, "--disk-size"},
		{[]string{"edge", "--upstream", "http://127.0.0.1:1", "--listen", "127.0.0.1:0", "--peers", "http://a:1,http://b:1", "--self", "http://c:1"}, "--self"},
		{[]string{"edge", "--upstream", "http://127.0.0.1:1", "--listen", "127.0.0.1:0", "--peers", "http://a:1,b:1", "--self", "http://a:1"}, "--peers"},
		{[]string{"edge", "--upstream", "http://127.0.0.1:1", "--listen", "127.0.0.1:0", "--peers", "http://a:1", "--self", "http://a:1",
			"--playback-keys", "k1:" + strings.Repeat("5a", 32)}, "--peer-secret"},
		{[]string{"edge", "--upstream", "http://127.0.0.1:1", "--listen", "127.0.0.1:0", "--max-fills", "0"}, "--max-fills"},
		{[]string{"edge", "--upstream", "http://127.0.0.1:1", "--listen", "127.0.0.1:0", "--wait-timeout", "0s"}, "--wait-timeout"},
		{[]string{"edge", "--upstream", "http://127.0.0.1:1", "--listen", "127.0.0.1:0", "--peer-dial-timeout", "-1s"}, "--peer-dial-timeout"},
		{[]string{"edge", "--upstream", "http://127.0.0.1:1", "--listen", "127.0.0.1:0", "--send-buffer", "1GiB"}, "--send-buffer"},
		{[]string{"edge", "--upstream", "http://127.0.0.1:1", "--listen", "127.0.0.1:0", "--max-requests", "-1"}, "--max-requests"},
		{[]string{"ingest", "--listen", "127.0.0.1:0", "--playback-keys", "nocolon"}, "--playback-keys"},
		{[]string{"ingest", "--listen", "127.0.0.1:0", "--purge-edges", "http://127.0.0.1:1"}, "--purge-secret"},
		{[]string{"ingest", "--listen", "127.0.0.1:0", "--purge-edges", "edge-1:8082", "--purge-secret", "x"}, "--purge-edges"},
	} {
		err, out, exited := runRefused(t, nil, tc.args...)
		if !exited {
			t.Errorf("lectern %v started instead of refusing", tc.args)
			continue
		}
		if ee, ok := err.(*exec.ExitError); !ok || ee.ExitCode() != 1 || strings.Count(out, "\n") != 0 || !strings.Contains(out, tc.mentions) {
			t.Errorf("lectern %v: exit %v, stderr %q; want status 1 and one line naming %s", tc.args, err, out, tc.mentions)
		}
	}
}
