package main

import (
	"bytes"
	"fmt"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/lectern/lectern/internal/rendezvous"
)

// twoEdges is what the peer tests share: a segment, an upstream that serves it and counts fetches,
// and two free addresses with their peer URLs.
func twoEdges(t *testing.T) (body []byte, up *httptest.Server, fetches *atomic.Int64, addrs, peers []string) {
	t.Helper()
	body = bytes.Repeat([]byte("segment!"), 2048)
	up, fetches = countingUpstream(t, body)
	addrs = []string{freeAddr(t), freeAddr(t)}
	peers = []string{"http://" + addrs[0], "http://" + addrs[1]}
	return body, up, fetches, addrs, peers
}

// TestEdgePeerFlags: two `lectern edge --peers A,B --self X` processes form a peer group: a segment
// asked of the edge that does not own it comes from the owner, and the upstream serves it once.
func TestEdgePeerFlags(t *testing.T) {
	if testing.Short() {
		t.Skip("runs the lectern binary")
	}
	body, up, fetches, addrs, peers := twoEdges(t)
	for i, addr := range addrs {
		startRole(t, addr, "edge", "--listen", addr, "--upstream", up.URL, "--peers", strings.Join(peers, ","), "--self", peers[i])
	}
	var path string
	for i := 0; ; i++ {
		if path = fmt.Sprintf("/hls/lec1/v1/720p/seg_%05d.m4s", i); rendezvous.Owner(peers, path) == peers[0] {
			break
		}
	}
	r := do(t, "GET", peers[1]+path)
	cs := r.header.Values("Cache-Status") // the owner's member, then the non-owner's
	if r.status != 200 || !bytes.Equal(r.body, body) || len(cs) != 2 || !strings.HasSuffix(cs[1], "detail=peer") {
		t.Errorf("from the non-owner: %d %q, %d bytes; want the owner's copy", r.status, cs, len(r.body))
	}
	if r := do(t, "GET", peers[0]+path); r.status != 200 || r.header.Get("X-Cache") != "HIT" {
		t.Errorf("from the owner: %d %s, want a hit", r.status, r.header.Get("X-Cache"))
	}
	if n := fetches.Load(); n != 1 {
		t.Errorf("upstream fetches: %d, want 1", n)
	}
}

// TestEdgeRegionsFlag: two `lectern edge --regions FILE --region seoul --self X` processes take
// their peer group from the region map, and follow an edit of the file without a restart: once the
// owner of some keys is drained, the other edge owns them, and the drained edge asks it for them.
func TestEdgeRegionsFlag(t *testing.T) {
	if testing.Short() {
		t.Skip("runs the lectern binary")
	}
	body, up, fetches, addrs, peers := twoEdges(t)
	file := filepath.Join(t.TempDir(), "regions.json")
	writeRegions := func(drain0 bool) {
		t.Helper()
		data := fmt.Sprintf(`{"default": "seoul", "regions": {"seoul": {"edges": [{"url": %q, "drain": %t}, {"url": %q}]}}}`,
			peers[0], drain0, peers[1])
		if err := os.WriteFile(file+".new", []byte(data), 0o644); err != nil {
			t.Fatal(err)
		}
		if err := os.Rename(file+".new", file); err != nil {
			t.Fatal(err)
		}
	}
	writeRegions(false)
	for i, addr := range addrs {
		startRole(t, addr, "edge", "--listen", addr, "--upstream", up.URL, "--regions", file, "--region", "seoul", "--self", peers[i])
	}
	// ownedBy0 returns the n-th path that edge 0 owns while it is in service.
	ownedBy0 := func(n int) string {
		for i := 0; ; i++ {
			p := fmt.Sprintf("/hls/lec1/v1/720p/seg_%05d.m4s", i)
			if rendezvous.Owner(peers, p) == peers[0] {
				if n == 0 {
					return p
				}
				n--
			}
		}
	}
	members := func(r reply) []string { return r.header.Values("Cache-Status") }
	n := 0
	if r := do(t, "GET", peers[1]+ownedBy0(n)); r.status != 200 || len(members(r)) != 2 || !bytes.Equal(r.body, body) {
		t.Fatalf("before the edit: %d %q; want edge 0's copy", r.status, members(r))
	}

	writeRegions(true)
	// Edge 1 fetches edge 0's keys itself once it has read the edit (within about a second).
	deadline := time.Now().Add(15 * time.Second)
	for {
		n++
		r := do(t, "GET", peers[1]+ownedBy0(n))
		if r.status == 200 && len(members(r)) == 1 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("edge 1 still asks the drained edge 0: %d %q", r.status, members(r))
		}
		time.Sleep(100 * time.Millisecond)
	}
	// The drained edge asks edge 1 for a key it used to own (once it too has read the edit), and the
	// upstream serves it once, to edge 1.
	deadline = time.Now().Add(15 * time.Second)
	for {
		n++
		before := fetches.Load()
		r := do(t, "GET", peers[0]+ownedBy0(n))
		if cs := members(r); r.status == 200 && len(cs) == 2 && strings.HasSuffix(cs[1], "detail=peer") {
			if f := fetches.Load() - before; f != 1 {
				t.Errorf("upstream fetches for one key: %d, want 1", f)
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the drained edge 0 does not ask edge 1: %d %q", r.status, members(r))
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// Wrong peer flags are refused with the flag named and what to give instead.
func TestPeerFlagsErrors(t *testing.T) {
	dir := t.TempDir()
	good := filepath.Join(dir, "regions.json")
	bad := filepath.Join(dir, "bad.json")
	for path, data := range map[string]string{
		good: `{"default": "seoul", "regions": {"seoul": {"edges": [{"url": "http://a:1"}, {"url": "http://b:1", "drain": true}]}, "busan-ulsan": {}}}`,
		bad:  `{"default": "seoul", "regions": {"seoul": {"edges": [{"url": "a:1"}]}}}`,
	} {
		if err := os.WriteFile(path, []byte(data), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	for _, tc := range []struct {
		f     peerFlags
		keyed bool
		want  string
	}{
		{peerFlags{regions: good, peers: "http://a:1", self: "http://a:1"}, false, "--peers and --regions both name this edge's peers: give one"},
		{peerFlags{regions: good, self: "http://a:1"}, false, "--regions needs --region, this edge's region in " + good + ": one of seoul, busan-ulsan"},
		{peerFlags{regions: good, region: "daegu", self: "http://a:1"}, false, `--region "daegu": ` + good + " has no such region; its regions are seoul, busan-ulsan"},
		{peerFlags{regions: good, region: "seoul"}, false, "--self is required with --regions: this edge's URL as region seoul lists it"},
		{peerFlags{regions: good, region: "seoul", self: "http://c:1"}, false, `--self: "http://c:1" is not an edge of region seoul; its edges are "http://a:1", "http://b:1"`},
		{peerFlags{regions: good, region: "busan-ulsan", self: "http://a:1"}, false, `--self: "http://a:1" is not an edge of region busan-ulsan, which has none`},
		{peerFlags{regions: good, region: "seoul", self: "http://a:1"}, true, "--peer-secret is required with --peers or --regions and --playback-keys"},
		{peerFlags{regions: bad, region: "seoul", self: "a:1"}, false, "--regions: region map " + bad + ":\nregions.seoul.edges[0].url: \"a:1\": give an absolute http:// or https:// URL"},
		{peerFlags{regions: filepath.Join(dir, "none.json"), region: "seoul", self: "http://a:1"}, false, "--regions: region map: open " + dir},
		{peerFlags{region: "seoul", self: "http://a:1"}, false, "--region is for --regions: give the region map file too"},
		{peerFlags{self: "http://a:1"}, false, "--self is for a peer group: give --peers (or --regions) too"},
		{peerFlags{peers: "http://a:1", self: "http://a:1", secret: "two words"}, false, "--peer-secret must be printable ASCII"},
	} {
		if _, err := tc.f.parse(tc.keyed); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%+v: %v, want %q", tc.f, err, tc.want)
		}
	}
	f := peerFlags{regions: good, region: "seoul", self: "http://b:1"}
	s, err := f.parse(false)
	if err != nil || strings.Join(s.peers, ",") != "http://a:1,http://b:1" || strings.Join(s.draining, ",") != "http://b:1" || s.regionMap == nil {
		t.Errorf("%+v, %v", s, err)
	}
}
