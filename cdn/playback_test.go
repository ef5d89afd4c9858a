package cdn

import (
	"bytes"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/lectern/lectern/internal/playtoken"
)

func playbackKeys(t *testing.T) playtoken.Keys {
	t.Helper()
	keys, err := playtoken.ParseKeys("k1:" + strings.Repeat("5a", 32))
	if err != nil {
		t.Fatal(err)
	}
	return keys
}

func TestSignedPlayback(t *testing.T) {
	up := newUpstream(t, func(w http.ResponseWriter, r *http.Request) {
		serveObject(w, r, []byte("object "+r.URL.Path), "Cache-Control", "max-age=86400")
	})
	keys := playbackKeys(t)
	clk := newClock()
	var logs bytes.Buffer
	e, ts := newTestEdge(t, up.URL, clk, func(c *Config) {
		c.PlaybackKeys = keys
		c.Logger = slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	})
	now := clk.Now()
	tok := playtoken.Mint(keys, "lec1", now.Add(time.Hour), "")
	const master = "/hls/lec1/v1/master.m3u8"

	r := get(t, ts, "GET", "/s/"+tok+master)
	if r.StatusCode != 200 || r.cache() != "MISS" || string(r.body) != "object "+master {
		t.Fatalf("valid token: %d %s %q", r.StatusCode, r.cache(), r.body)
	}
	if got := up.last().URL.RequestURI(); got != master {
		t.Errorf("upstream was asked for %q, want %q (no token)", got, master)
	}
	// Another student's token (another expiry) shares the cached object.
	tok2 := playtoken.Mint(keys, "lec1", now.Add(2*time.Hour), "eu")
	if r := get(t, ts, "GET", "/s/"+tok2+master); r.StatusCode != 200 || r.cache() != "HIT" {
		t.Errorf("second token: %d %s, want a hit on the tokenless key", r.StatusCode, r.cache())
	}
	// Relative URIs in the playlist resolve under the same token.
	base, _ := url.Parse(ts.URL + "/s/" + tok + master)
	seg := base.ResolveReference(&url.URL{Path: "720p/seg1.m4s"})
	if r := get(t, ts, "GET", seg.Path); r.StatusCode != 200 || string(r.body) != "object /hls/lec1/v1/720p/seg1.m4s" {
		t.Errorf("segment by relative URI %s: %d %q", seg.Path, r.StatusCode, r.body)
	}
	if r := get(t, ts, "HEAD", "/s/"+tok+master); r.StatusCode != 200 {
		t.Errorf("HEAD with a token: %d", r.StatusCode)
	}

	raw := []byte(tok)
	raw[len(raw)/2] ^= 0x01
	tampered := string(raw)
	expired := playtoken.Mint(keys, "lec1", now.Add(-time.Second), "")
	other := playtoken.Mint(keys, "lec2", now.Add(time.Hour), "")
	otherKeys, _ := playtoken.ParseKeys("k1:" + strings.Repeat("a5", 32))
	forged := playtoken.Mint(otherKeys, "lec1", now.Add(time.Hour), "")
	fetches := up.total()
	for name, p := range map[string]string{
		"expired":               "/s/" + expired + master,
		"tampered":              "/s/" + tampered + master,
		"other lecture":         "/s/" + other + master,
		"other key":             "/s/" + forged + master,
		"not a token":           "/s/hello" + master,
		"empty token":           "/s/" + master,
		"no lecture":            "/s/" + tok + "/hls/",
		"not hls":               "/s/" + tok + "/lec1/v1/master.m3u8",
		"dot segments":          "/s/" + tok + "/hls/lec1/../lec2/v1/master.m3u8",
		"escaped slash":         "/s/" + tok + "/hls/lec1%2F..%2Flec2/v1/master.m3u8",
		"double slash":          "/s/" + tok + "/hls/lec1//v1/master.m3u8",
		"plain hls":             master,
		"plain hls, unclean":    "//hls/lec1/v1/master.m3u8",
		"plain hls, dotted":     "/x/../hls/lec1/v1/master.m3u8",
		"plain hls, escaped":    "/%68ls/lec1/v1/master.m3u8",
		"token for other, dots": "/s/" + other + "/hls/lec2/../lec1/v1/master.m3u8",
	} {
		r := get(t, ts, "GET", p)
		if r.StatusCode != 403 || string(r.body) != "forbidden\n" || r.Header.Get("Cache-Control") != "no-store" {
			t.Errorf("%s (%s): %d %q, want 403 forbidden", name, p, r.StatusCode, r.body)
		}
	}
	if n := up.total() - fetches; n != 0 {
		t.Errorf("refused requests reached the upstream: %d", n)
	}
	if r := get(t, ts, "POST", "/s/"+tok+master); r.StatusCode != 405 {
		t.Errorf("POST with a valid token: %d, want 405", r.StatusCode)
	}
	if e.Stats().PlaybackDenied.Load() != 16 {
		t.Errorf("PlaybackDenied = %d, want 16", e.Stats().PlaybackDenied.Load())
	}

	// The token expires while the object stays cached: the cache does not let it through.
	clk.Advance(time.Hour)
	if r := get(t, ts, "GET", "/s/"+tok+master); r.StatusCode != 403 {
		t.Errorf("token past its expiry on a cached object: %d", r.StatusCode)
	}
	if r := get(t, ts, "GET", "/s/"+tok2+master); r.StatusCode != 200 || r.cache() != "HIT" {
		t.Errorf("a token still valid: %d %s", r.StatusCode, r.cache())
	}
	for _, secret := range []string{tok, tok2, expired, tampered} {
		if strings.Contains(logs.String(), secret) {
			t.Fatalf("a token was logged:\n%s", logs.String())
		}
	}
	if !strings.Contains(logs.String(), "path=/hls/lec1/v1/master.m3u8") {
		t.Errorf("served requests should be logged by their tokenless path:\n%s", logs.String())
	}
}

func TestPlaybackWithoutKeys(t *testing.T) {
	up := newUpstream(t, func(w http.ResponseWriter, r *http.Request) {
		serveObject(w, r, []byte("object"), "Cache-Control", "max-age=600")
	})
	_, ts := newTestEdge(t, up.URL, nil, nil)
	if r := get(t, ts, "GET", "/hls/lec1/v1/master.m3u8"); r.StatusCode != 200 {
		t.Errorf("plain /hls/ without keys: %d", r.StatusCode)
	}
	tok := playtoken.Mint(playbackKeys(t), "lec1", time.Now().Add(time.Hour), "")
	if r := get(t, ts, "GET", "/s/"+tok+"/hls/lec1/v1/master.m3u8"); r.StatusCode != 404 {
		t.Errorf("/s/ without keys: %d, want 404", r.StatusCode)
	}
	if n := up.count("/s/" + tok + "/hls/lec1/v1/master.m3u8"); n != 0 {
		t.Error("a token was sent upstream")
	}
}

func (u *upstream) total() int {
	u.mu.Lock()
	defer u.mu.Unlock()
	return len(u.reqs)
}
