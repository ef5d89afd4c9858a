package cdn

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"
)

// An owner that takes no connection costs PeerDialTimeout, not PeerTimeout: the request is answered
// by the next in rank (here the upstream) soon after, and the owner is then skipped.
func TestPeerDialTimeout(t *testing.T) {
	const dialTimeout = 200 * time.Millisecond
	for _, tc := range []struct {
		name   string
		peer   func(t *testing.T) string
		client func(t *testing.T) *http.Client
	}{
		{"blackholed listener", func(t *testing.T) string { return "http://" + blackholeAddr(t) }, nil},
		{"dial that hangs in the caller's client", func(*testing.T) string { return "http://hangs.invalid" },
			func(t *testing.T) *http.Client {
				done := make(chan struct{})
				t.Cleanup(func() { close(done) })
				tr := http.DefaultTransport.(*http.Transport).Clone()
				tr.DialContext = func(ctx context.Context, network, addr string) (net.Conn, error) {
					if addr == "hangs.invalid:80" {
						select {
						case <-ctx.Done():
							return nil, ctx.Err()
						case <-done:
							return nil, errors.New("test over")
						}
					}
					return (&net.Dialer{}).DialContext(ctx, network, addr)
				}
				return &http.Client{Transport: tr}
			}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			origin := slowOrigin(t, 0)
			dead := tc.peer(t)
			self := "http://self.invalid"
			peers := []string{self, dead}
			logs := make(logCapture, 100)
			u, _ := url.Parse(origin.URL)
			cfg := Config{Upstream: u, Logger: slog.New(logs), Peers: peers, Self: self,
				PeerTimeout: 20 * time.Second, PeerDialTimeout: dialTimeout}
			if tc.client != nil {
				cfg.Client = tc.client(t)
			}
			e, err := NewEdge(cfg)
			if err != nil {
				t.Fatal(err)
			}
			ts := httptest.NewServer(e)
			defer ts.Close()

			path := peerKey(peers, dead, "/hls/dead/")
			start := time.Now()
			r := get(t, ts, "GET", path)
			took := time.Since(start)
			if r.StatusCode != 200 || !bytes.Equal(r.body, peerSegment(path)) {
				t.Errorf("%d, want the origin's 200", r.StatusCode)
			}
			// The margin is generous for a loaded machine, and far below the 20s PeerTimeout.
			if took < dialTimeout || took > dialTimeout+3*time.Second {
				t.Errorf("took %v with a %v PeerDialTimeout", took, dialTimeout)
			}
			if l := waitLogs(t, logs, "edge peer failed", 1)[0]; !strings.Contains(l, "no connection within 200ms (PeerDialTimeout)") {
				t.Errorf("logged %q; want the dial timeout named", l)
			}
			s := e.Stats()
			if s.PeerFetches.Load() != 1 || s.PeerErrors.Load() != 1 || s.PeersMarkedDown.Load() != 1 || origin.count(path) != 1 {
				t.Errorf("peer fetches %d, errors %d, marked down %d, origin %d; want 1 each",
					s.PeerFetches.Load(), s.PeerErrors.Load(), s.PeersMarkedDown.Load(), origin.count(path))
			}
			// Marked down, the owner is not tried again for the next key.
			path2 := peerKey(peers, dead, "/hls/dead2/")
			if r := get(t, ts, "GET", path2); r.StatusCode != 200 || s.PeerFetches.Load() != 1 {
				t.Errorf("second key: %d, %d peer fetches; want 200 from the origin without asking the dead peer",
					r.StatusCode, s.PeerFetches.Load())
			}
		})
	}
}

// The dial timeout ends with the connection: a connected peer that takes longer than it to answer is
// waited for (up to PeerTimeout), on a new connection and on a reused one.
func TestPeerSlowerThanDialTimeout(t *testing.T) {
	const delay = 300 * time.Millisecond
	origin := slowOrigin(t, 0)
	slow := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		time.Sleep(delay)
		serveObject(w, r, peerSegment(r.URL.Path), "Cache-Control", "max-age=60")
	}))
	defer slow.Close()
	self := "http://self.invalid"
	peers := []string{self, slow.URL}
	e, ts := newTestEdge(t, origin.URL, nil, func(c *Config) {
		c.Peers, c.Self, c.PeerDialTimeout, c.PeerTimeout = peers, self, 50*time.Millisecond, 20*time.Second
	})
	for _, prefix := range []string{"/hls/fresh-conn/", "/hls/reused-conn/"} {
		path := peerKey(peers, slow.URL, prefix)
		r := get(t, ts, "GET", path)
		if cs := r.Header.Values("Cache-Status"); r.StatusCode != 200 || !bytes.Equal(r.body, peerSegment(path)) ||
			len(cs) != 1 || !strings.HasSuffix(cs[0], "detail=peer") {
			t.Errorf("%s: %d %q; want the peer's answer", path, r.StatusCode, cs)
		}
	}
	if s := e.Stats(); s.PeerErrors.Load() != 0 || s.PeerFetches.Load() != 2 {
		t.Errorf("%d peer errors in %d fetches; want none in 2", s.PeerErrors.Load(), s.PeerFetches.Load())
	}
}

// logCapture is a slog handler that sends each record, as "message key=value ...", to a channel.
type logCapture chan string

func (c logCapture) Enabled(context.Context, slog.Level) bool { return true }
func (c logCapture) WithAttrs([]slog.Attr) slog.Handler       { return c }
func (c logCapture) WithGroup(string) slog.Handler            { return c }

func (c logCapture) Handle(_ context.Context, r slog.Record) error {
	var b strings.Builder
	b.WriteString(r.Message)
	r.Attrs(func(a slog.Attr) bool {
		fmt.Fprintf(&b, " %s=%v", a.Key, a.Value)
		return true
	})
	select {
	case c <- b.String():
	default: // a test that stopped reading must not stall the edges
	}
	return nil
}

// waitLogs waits for n log lines containing want, and returns them.
func waitLogs(t *testing.T, logs logCapture, want string, n int) []string {
	t.Helper()
	var got []string
	timeout := time.After(10 * time.Second)
	for len(got) < n {
		select {
		case l := <-logs:
			if strings.Contains(l, want) {
				got = append(got, l)
			}
		case <-timeout:
			t.Fatalf("saw %d of %d log lines with %q", len(got), n, want)
		}
	}
	return got
}
