package main

import (
	"bytes"
	"context"
	"encoding/base64"
	"io"
	"net/http"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/lectern/lectern/internal/objstore"
	"github.com/lectern/lectern/internal/playtoken"
)

// TestOriginEdgeCredential runs `lectern origin` with signed playback and `lectern edge` in front of
// it as separate processes over a small published lecture (no transcode): the origin refuses plain
// /hls/ without an edge credential, accepts each of its --edge-secrets (rotation), and the edge,
// holding one as --origin-secret, serves a student's signed URL end to end while an edge without it
// cannot.
func TestOriginEdgeCredential(t *testing.T) {
	if testing.Short() {
		t.Skip("runs the lectern binary")
	}
	ctx := context.Background()
	data := t.TempDir()
	store := "file://" + data + "/objects"
	bucket, err := objstore.Open(ctx, store)
	if err != nil {
		t.Fatal(err)
	}
	master := []byte("#EXTM3U\n#EXT-X-STREAM-INF:BANDWIDTH=800000,RESOLUTION=1280x720\n720p/index.m3u8\n")
	media := []byte("#EXTM3U\n#EXT-X-VERSION:7\n#EXT-X-TARGETDURATION:4\n#EXT-X-MAP:URI=\"init.mp4\"\n#EXTINF:4.0,\nseg_00001.m4s\n#EXT-X-ENDLIST\n")
	seg := bytes.Repeat([]byte("segment!"), 4096)
	for key, b := range map[string][]byte{
		"hls/lec1/v1/master.m3u8": master, "hls/lec1/v1/720p/index.m3u8": media, "hls/lec1/v1/720p/seg_00001.m4s": seg,
	} {
		if err := bucket.PutBytes(ctx, key, b, objstore.PutOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	bucket.Close()

	rawKey := bytes.Repeat([]byte{9}, 32)
	keyList := "k1:" + base64.StdEncoding.EncodeToString(rawKey)
	keys, err := playtoken.ParseKeys(keyList)
	if err != nil {
		t.Fatal(err)
	}
	const oldSecret, newSecret = "old-edge-secret-0123456789", "new-edge-secret-abcdefghijklmnop"
	originAddr, edgeAddr, bareEdgeAddr := freeAddr(t), freeAddr(t), freeAddr(t)
	startRoleEnv(t, originAddr, []string{"LECTERN_EDGE_SECRETS=" + oldSecret + ", " + newSecret},
		"origin", "--listen", originAddr, "--storage", store, "--playback-keys", keyList,
		"--purge-secret", "purge-s3cret", "--hot-memory", "16MiB", "--max-storage-reads", "8", "--queue-timeout", "500ms")
	startRoleEnv(t, edgeAddr, []string{"LECTERN_ORIGIN_SECRET=" + newSecret},
		"edge", "--listen", edgeAddr, "--upstream", "http://"+originAddr, "--playback-keys", keyList,
		"--prefetch", "0") // the test reads MISS then HIT per object; prefetch would fill some first
	startRole(t, bareEdgeAddr, "edge", "--listen", bareEdgeAddr, "--upstream", "http://"+originAddr, "--playback-keys", keyList)

	org := "http://" + originAddr
	plain := "/hls/lec1/v1/master.m3u8"
	for _, tc := range []struct {
		name, authz string
		status      int
	}{
		{"no credential", "", 403},
		{"a guess", "Bearer guess-guess-guess-guess", 403},
		{"the new edge secret", "Bearer " + newSecret, 200},
		{"the old edge secret, while rotating", "Bearer " + oldSecret, 200},
	} {
		r := do(t, "GET", org+plain, "Authorization", tc.authz)
		if r.status != tc.status {
			t.Errorf("origin %s with %s: %d, want %d", plain, tc.name, r.status, tc.status)
		}
		if tc.status == 200 && !bytes.Equal(r.body, master) {
			t.Errorf("origin %s with %s: body %q", plain, tc.name, r.body)
		}
	}
	for _, p := range []string{"/healthz", "/readyz", "/metrics"} {
		if r := do(t, "GET", org+p); r.status != 200 {
			t.Errorf("origin %s without a credential: %d, want 200", p, r.status)
		}
	}

	tok := playtoken.Mint(keys, "lec1", time.Now().Add(time.Hour), "")
	edge := "http://" + edgeAddr + "/s/" + tok
	r := do(t, "GET", edge+"/hls/lec1/master.m3u8")
	if r.status != 302 || r.header.Get("Location") != "v1/master.m3u8" {
		t.Fatalf("edge entry point: %d Location %q, want 302 v1/master.m3u8", r.status, r.header.Get("Location"))
	}
	for path, want := range map[string][]byte{
		"/hls/lec1/v1/master.m3u8": master, "/hls/lec1/v1/720p/index.m3u8": media, "/hls/lec1/v1/720p/seg_00001.m4s": seg,
	} {
		for i, cache := range []string{"MISS", "HIT"} {
			r := do(t, "GET", edge+path)
			if r.status != 200 || !bytes.Equal(r.body, want) || r.header.Get("X-Cache") != cache {
				t.Errorf("edge signed %s, request %d: %d %s, %d bytes; want 200 %s", path, i, r.status, r.header.Get("X-Cache"), len(r.body), cache)
			}
		}
	}
	if r := do(t, "GET", "http://"+edgeAddr+plain); r.status != 403 {
		t.Errorf("edge plain %s: %d, want 403", plain, r.status)
	}
	if r := do(t, "GET", "http://"+bareEdgeAddr+"/s/"+tok+plain); r.status != 403 {
		t.Errorf("an edge without --origin-secret got %d from the keyed origin, want 403", r.status)
	}

	// The origin takes the edges' purge protocol.
	r = do(t, "POST", org+"/_lectern/purge", "Authorization", "Bearer purge-s3cret", "body", `{"prefix":"/hls/lec1/"}`)
	if r.status != 200 || !strings.HasPrefix(string(r.body), `{"purged":`) {
		t.Errorf("origin purge: %d %q", r.status, r.body)
	}
}

// Bad origin credential settings stop the role at start-up with one line naming the flag.
func TestOriginCredentialFlagErrors(t *testing.T) {
	if testing.Short() {
		t.Skip("runs the lectern binary")
	}
	keys := "k1:" + strings.Repeat("ab", 32)
	for _, tc := range []struct {
		args     []string
		mentions string
	}{
		{[]string{"origin", "--listen", "127.0.0.1:0", "--playback-keys", keys}, "--edge-secrets"},
		{[]string{"origin", "--listen", "127.0.0.1:0", "--playback-keys", keys, "--edge-secrets", "short"}, "--edge-secrets"},
		{[]string{"origin", "--listen", "127.0.0.1:0", "--edge-secrets", "good-secret-0123456789,with space 0123456789"}, "--edge-secrets"},
		{[]string{"origin", "--listen", "127.0.0.1:0", "--max-storage-reads", "0"}, "--max-storage-reads"},
		{[]string{"edge", "--listen", "127.0.0.1:0", "--upstream", "http://127.0.0.1:1", "--origin-secret", "two words"}, "--origin-secret"},
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

type reply struct {
	status int
	header http.Header
	body   []byte
}

// do sends one request without following redirects; kv are header name/value pairs, and "body".
func do(t *testing.T, method, url string, kv ...string) reply {
	t.Helper()
	var body io.Reader
	hdr := http.Header{}
	for i := 0; i+1 < len(kv); i += 2 {
		switch {
		case kv[i] == "body":
			body = strings.NewReader(kv[i+1])
		case kv[i+1] != "":
			hdr.Set(kv[i], kv[i+1])
		}
	}
	req, err := http.NewRequest(method, url, body)
	if err != nil {
		t.Fatal(err)
	}
	req.Header = hdr
	client := &http.Client{Timeout: 10 * time.Second,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	resp, err := client.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, url, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return reply{resp.StatusCode, resp.Header, b}
}

// The origin turns an s3:// URL without attempts= into one with two tries per request, and leaves
// everything else as it was given.
func TestOriginStorageFailsFast(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"s3://media?endpoint=127.0.0.1:9000&secure=false", "s3://media?attempts=2&endpoint=127.0.0.1%3A9000&secure=false"},
		{"s3://media?endpoint=minio:9000&attempts=5", "s3://media?endpoint=minio:9000&attempts=5"},
		{"file:///data/objects", "file:///data/objects"},
		{"./data/objects", "./data/objects"},
	} {
		if got := failFast(tc.in); got != tc.want {
			t.Errorf("failFast(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
}
