package main

import (
	"bytes"
	"fmt"
	"strings"
	"testing"

	"github.com/lectern/lectern/internal/rendezvous"
)

// TestEdgePeerFlags: two `lectern edge --peers A,B --self X` processes form a peer group: a segment
// asked of the edge that does not own it comes from the owner, and the upstream serves it once.
func TestEdgePeerFlags(t *testing.T) {
	if testing.Short() {
		t.Skip("runs the lectern binary")
	}
	body := bytes.Repeat([]byte("segment!"), 2048)
	up, fetches := countingUpstream(t, body)
	addrs := []string{freeAddr(t), freeAddr(t)}
	peers := []string{"http://" + addrs[0], "http://" + addrs[1]}
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
