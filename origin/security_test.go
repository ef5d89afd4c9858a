package origin

import (
	"bufio"
	"bytes"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/lectern/lectern/internal/objstore"
	"github.com/lectern/lectern/internal/playtoken"
)

// rawRequest writes a request line and headers to the server byte for byte, so paths reach the
// origin exactly as an attacker spells them (Go's client would clean or refuse some of them).
func rawRequest(t *testing.T, ts *httptest.Server, method, target string, hdr map[string]string) (*http.Response, []byte) {
	t.Helper()
	conn, err := net.Dial("tcp", ts.Listener.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(20 * time.Second))
	var b strings.Builder
	b.WriteString(method + " " + target + " HTTP/1.1\r\nHost: origin.test\r\nConnection: close\r\n")
	for k, v := range hdr {
		b.WriteString(k + ": " + v + "\r\n")
	}
	b.WriteString("\r\n")
	if _, err := io.WriteString(conn, b.String()); err != nil {
		t.Fatal(err)
	}
	resp, err := http.ReadResponse(bufio.NewReader(conn), &http.Request{Method: method})
	if err != nil {
		t.Fatalf("%s %q: %v", method, target, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp, body
}

// hostilePaths must all be a plain 404: not a 400 from a confused parser, not a 500, not a 503 from a
// storage that was handed a key it refuses, and never another object's bytes.
var hostilePaths = []string{
	// dot segments, plain and encoded
	"/hls/../sources/abc/up1",
	"/hls/abc/../../sources/abc/up1",
	"/hls/abc/v1/../../sources/abc/up1",
	"/hls/abc/v1/../../../sources/abc/up1",
	"/hls/abc/v1/720p/../../../../sources/abc/up1",
	"/hls/abc/v1/../v2/master.m3u8",
	"/hls/abc/v1/./master.m3u8",
	"/hls/abc/v1/%2e%2e/%2e%2e/sources/abc/up1",
	"/hls/abc/v1/%2E%2E/%2E%2E/sources/abc/up1",
	"/hls/abc/v1/.%2e/.%2e/sources/abc/up1",
	"/hls/abc/v1/%2e%2e%2f%2e%2e%2fsources%2fabc%2fup1",
	"/hls/abc/v1/720p%2f..%2f..%2f..%2fsources%2fabc%2fup1",
	"/hls/abc%2fv1%2fmaster.m3u8",
	// double and triple encoding
	"/hls/abc/v1/%252e%252e/%252e%252e/sources/abc/up1",
	"/hls/abc/v1/%252e%252e%252f%252e%252e%252fsources%252fabc%252fup1",
	"/hls/abc/v1/%25252e%25252e/sources/abc/up1",
	// backslashes, raw and encoded
	`/hls/abc/v1/..\..\sources\abc\up1`,
	`/hls/abc/v1\..\..\sources\abc\up1`,
	"/hls/abc/v1/%5c..%5c..%5csources%5cabc%5cup1",
	"/hls/abc/v1/..%5c..%5csources/abc/up1",
	// absolute keys
	"//etc/passwd",
	"/hls//etc/passwd",
	"/hls/abc/v1//etc/passwd",
	"/hls/abc/v1/%2fetc%2fpasswd",
	"/hls/%2fetc%2fpasswd",
	"/hls/abc/v1/C:%5cWindows%5cwin.ini",
	// NUL bytes
	"/hls/abc/v1/master.m3u8%00",
	"/hls/abc/v1/master.m3u8%00.jpg",
	"/hls/abc/v1/%00",
	"/hls/abc%00/v1/master.m3u8",
	"/hls/abc/master.m3u8%00",
	// overlong and odd
	"/hls/abc/v1/" + strings.Repeat("a", 1100) + ".m4s",
	"/hls/abc/v1/" + strings.Repeat("a/", 600) + "x.m4s",
	"/hls/" + strings.Repeat("a", 2000) + "/v1/master.m3u8",
	"/hls/" + strings.Repeat("a", 2000) + "/master.m3u8",
	"/hls/abc/v1/%c0%ae%c0%ae/%c0%ae%c0%ae/sources/abc/up1",
	"/hls/abc/v1/..;/..;/sources/abc/up1",
	"/hls/abc/v1/master.m3u8/",
	"/hls/abc/v1/master.m3u8/..",
	// outside /hls/
	"/sources/abc/up1",
	"/hlsx/abc/v1/master.m3u8",
	"/s/x/../../sources/abc/up1",
	"/hls/abc/v1/sources/abc/up1",
	// unknown lecture
	"/hls/zzz/v1/master.m3u8",
	"/hls/zzz/master.m3u8",
	"/hls/ABC/v1/master.m3u8",
	"/hls/abc/v0/master.m3u8",
	"/hls/abc/v01/master.m3u8",
}

func TestHostilePaths(t *testing.T) {
	eachStore(t, func(t *testing.T, b *objstore.Bucket) {
		rs := &recordingStore{Store: b}
		ts, _ := newOrigin(t, Config{Store: rs})
		for _, p := range hostilePaths {
			for _, method := range []string{http.MethodGet, http.MethodHead} {
				name := p
				if len(name) > 80 {
					name = name[:80] + "..."
				}
				resp, body := rawRequest(t, ts, method, p, nil)
				if resp.StatusCode != http.StatusNotFound {
					t.Errorf("%s %s: status %d, want 404", method, name, resp.StatusCode)
				}
				if bytes.Contains(body, sourceBytes) || bytes.Contains(body, []byte("#EXTM3U")) {
					t.Errorf("%s %s: the body is an object's: %.60q", method, name, body)
				}
				// Absolute-form request targets carry the same path.
				if method == http.MethodGet {
					resp, _ := rawRequest(t, ts, method, "http://origin.test"+p, nil)
					if resp.StatusCode != http.StatusNotFound {
						t.Errorf("GET absolute-form %s: status %d, want 404", name, resp.StatusCode)
					}
				}
			}
		}
		checkKeys(t, rs.seen())
	})
}

// checkKeys fails for any key that is not a clean key under hls/.
func checkKeys(t *testing.T, keys []string) {
	t.Helper()
	for _, k := range keys {
		clean := strings.HasPrefix(k, "hls/") && !strings.ContainsAny(k, "\\\x00%") && !strings.Contains(k, "//")
		for seg := range strings.SplitSeq(k, "/") {
			clean = clean && seg != "." && seg != ".."
		}
		if !clean || len(k) > 1024 {
			t.Errorf("storage was asked for %.100q", k)
		}
	}
}

var (
	testKeys    = playtoken.Keys{{ID: "k1", Secret: []byte("0123456789abcdef0123456789abcdef")}}
	edgeSecrets = []string{"edge-secret-one-0123456789", "edge-secret-two-0123456789"}
)

// notServed accepts either 403 or 404: a valid token on a path that names no object.
const notServed = -1

// lockedBuffer is a log sink the server's handlers write to concurrently.
type lockedBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *lockedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// flip changes the character at i to another one of the URL alphabet.
func flip(tok string, i int) string {
	c := byte('A')
	if tok[i] == 'A' {
		c = 'B'
	}
	return tok[:i] + string(c) + tok[i+1:]
}

func TestSignedPlayback(t *testing.T) {
	eachStore(t, func(t *testing.T, b *objstore.Bucket) {
		logs := &lockedBuffer{}
		logger := slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
		rs := &recordingStore{Store: b}
		ts, _ := newOrigin(t, Config{Store: rs, Logger: logger, PlaybackKeys: testKeys, EdgeSecrets: edgeSecrets})

		now := time.Now()
		valid := playtoken.Mint(testKeys, "abc", now.Add(time.Hour), "")
		otherKey := playtoken.Keys{{ID: "k9", Secret: testKeys[0].Secret}}
		wrongSecret := playtoken.Keys{{ID: "k1", Secret: []byte("fedcba9876543210fedcba9876543210")}}
		tokens := map[string]string{
			"bad":            "not-a-token",
			"expired":        playtoken.Mint(testKeys, "abc", now.Add(-time.Minute), ""),
			"other lecture":  playtoken.Mint(testKeys, "zzz", now.Add(time.Hour), ""),
			"tampered body":  flip(valid, 6),
			"tampered mac":   flip(valid, len(valid)-4),
			"unknown key id": playtoken.Mint(otherKey, "abc", now.Add(time.Hour), ""),
			"wrong secret":   playtoken.Mint(wrongSecret, "abc", now.Add(time.Hour), ""),
			"truncated":      valid[:len(valid)-2],
		}

		type tc struct {
			name, path, auth string
			status           int
			cc               string
			body             []byte
		}
		cases := []tc{
			{"valid token", "/s/" + valid + segPath, "", 200, "private, max-age=31536000, immutable", segment},
			{"valid token playlist", "/s/" + valid + "/hls/abc/v1/720p/index.m3u8", "", 200, "", playlist},
			{"valid token missing object", "/s/" + valid + "/hls/abc/v1/720p/seg_99999.m4s", "", 404, "", nil},
			{"valid token other lecture's path", "/s/" + valid + "/hls/zzz/v1/master.m3u8", "", 403, "", nil},
			{"valid token traversal", "/s/" + valid + "/hls/abc/v1/../../sources/abc/up1", "", notServed, "", nil},
			{"valid token encoded traversal", "/s/" + valid + "/hls/abc/v1/%2e%2e/%2e%2e/sources/abc/up1", "", notServed, "", nil},
			{"valid token backslashes", "/s/" + valid + `/hls/abc/v1/..\..\sources\abc\up1`, "", notServed, "", nil},
			{"valid token double slash", "/s/" + valid + "//hls/abc/v1/master.m3u8", "", notServed, "", nil},
			{"empty token", "/s/" + segPath, "", 403, "", nil},
			{"no token segment", "/s" + segPath, "", 403, "", nil},
			{"plain without credential", segPath, "", 403, "", nil},
			{"plain entry point without credential", "/hls/abc/master.m3u8", "", 403, "", nil},
			{"plain with edge secret", segPath, "Bearer " + edgeSecrets[0], 200, wantImmutable, segment},
			{"plain with rotated edge secret", segPath, "Bearer " + edgeSecrets[1], 200, wantImmutable, segment},
			{"plain with lower-case bearer", segPath, "bearer " + edgeSecrets[0], 200, wantImmutable, segment},
			{"plain with wrong secret", segPath, "Bearer edge-secret-one-012345678X", 403, "", nil},
			{"plain with secret prefix", segPath, "Bearer " + edgeSecrets[0][:16], 403, "", nil},
			{"plain with basic auth", segPath, "Basic " + edgeSecrets[0], 403, "", nil},
			{"plain with token as bearer", segPath, "Bearer " + valid, 403, "", nil},
			{"plain missing object with edge secret", "/hls/abc/v1/720p/seg_99999.m4s", "Bearer " + edgeSecrets[0], 404, "", nil},
		}
		for name, tok := range tokens {
			cases = append(cases,
				tc{name, "/s/" + tok + segPath, "", 403, "", nil},
				tc{name + " entry point", "/s/" + tok + "/hls/abc/master.m3u8", "", 403, "", nil})
		}
		for _, c := range cases {
			for _, method := range []string{http.MethodGet, http.MethodHead} {
				hdr := map[string]string{}
				if c.auth != "" {
					hdr["Authorization"] = c.auth
				}
				resp, body := rawRequest(t, ts, method, c.path, hdr)
				if c.status == notServed && (resp.StatusCode == 403 || resp.StatusCode == 404) {
					continue
				}
				if resp.StatusCode != c.status {
					t.Errorf("%s %s: status %d, want %d", method, c.name, resp.StatusCode, c.status)
					continue
				}
				if c.cc != "" && resp.Header.Get("Cache-Control") != c.cc {
					t.Errorf("%s %s: Cache-Control %q, want %q", method, c.name, resp.Header.Get("Cache-Control"), c.cc)
				}
				if method == http.MethodGet && c.body != nil && !bytes.Equal(body, c.body) {
					t.Errorf("%s: body %.40q", c.name, body)
				}
				if c.status == http.StatusForbidden {
					checkForbidden(t, method+" "+c.name, resp, body)
				}
			}
		}

		// The token's relative redirect keeps the student inside /s/{token}/.
		resp, _ := rawRequest(t, ts, http.MethodGet, "/s/"+valid+"/hls/abc/master.m3u8", nil)
		if resp.StatusCode != http.StatusFound || resp.Header.Get("Location") != "v2/master.m3u8" {
			t.Errorf("signed entry point: %d, Location %q", resp.StatusCode, resp.Header.Get("Location"))
		}
		if cc := resp.Header.Get("Cache-Control"); strings.Contains(cc, "public") {
			t.Errorf("signed entry point Cache-Control %q: a shared cache would keep a token's answer", cc)
		}
		// Probes never need credentials.
		for _, p := range []string{"/healthz", "/readyz"} {
			if resp, _ := rawRequest(t, ts, http.MethodGet, p, nil); resp.StatusCode != http.StatusOK {
				t.Errorf("%s without credentials: %d", p, resp.StatusCode)
			}
		}
		checkKeys(t, rs.seen())

		ts.Close() // waits for the handlers, and so for their log lines
		out := logs.String()
		if !strings.Contains(out, "/hls/abc/") {
			t.Fatalf("no request was logged at debug level; the check below would prove nothing:\n%s", out)
		}
		for name, tok := range tokens {
			if strings.Contains(out, tok) {
				t.Errorf("the %s token is in the log", name)
			}
		}
		if strings.Contains(out, valid) {
			t.Error("the valid token is in the log")
		}
		for _, s := range edgeSecrets {
			if strings.Contains(out, s) || strings.Contains(out, s[:16]) {
				t.Error("an edge secret is in the log")
			}
		}
	})
}

// checkForbidden: a 403 says nothing about why.
func checkForbidden(t *testing.T, name string, resp *http.Response, body []byte) {
	t.Helper()
	if resp.Request.Method != http.MethodHead && string(body) != "forbidden\n" {
		t.Errorf("%s: 403 body %q, want %q", name, body, "forbidden\n")
	}
	if cc := resp.Header.Get("Cache-Control"); cc != "no-store" {
		t.Errorf("%s: 403 Cache-Control %q, want no-store", name, cc)
	}
	for k, vs := range resp.Header {
		for _, v := range vs {
			lv := strings.ToLower(v)
			for _, word := range []string{"expire", "signature", "key", "lecture", "token", "mac"} {
				if strings.Contains(lv, word) {
					t.Errorf("%s: header %s: %q says why", name, k, v)
				}
			}
		}
	}
}
