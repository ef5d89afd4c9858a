package main

import (
	"bytes"
	"io"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// TestEdgeCollapseFlag: with the default --collapse, concurrent misses of one segment make one
// upstream request; with --collapse=false each makes its own. Every student gets the whole body.
func TestEdgeCollapseFlag(t *testing.T) {
	if testing.Short() {
		t.Skip("runs the lectern binary")
	}
	body := bytes.Repeat([]byte("segment!"), 8<<10)
	const n = 8
	waiters := regexp.MustCompile(`(?m)^lectern_edge_collapsed_waiters_total (\d+)$`)
	for _, tc := range []struct {
		flag     string
		upstream int64
	}{{"--collapse", 1}, {"--collapse=false", n}} {
		t.Run(tc.flag, func(t *testing.T) {
			var fetches atomic.Int64
			release := make(chan struct{})
			up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				fetches.Add(1)
				select { // held until every student's request is upstream or waiting on a fetch
				case <-release:
				case <-r.Context().Done():
					return
				}
				w.Header().Set("Cache-Control", "max-age=3600")
				w.Write(body)
			}))
			t.Cleanup(up.Close)
			addr := freeAddr(t)
			startRole(t, addr, "edge", "--listen", addr, "--upstream", up.URL, tc.flag)
			const path = "/hls/lec1/v1/720p/seg_00001.m4s"

			var wg sync.WaitGroup
			bodies := make([][]byte, n)
			for i := range n {
				wg.Go(func() { // not do(), which may t.Fatal: this is not the test's goroutine
					resp, err := http.Get("http://" + addr + path)
					if err != nil {
						t.Errorf("student %d: %v", i, err)
						return
					}
					defer resp.Body.Close()
					if bodies[i], err = io.ReadAll(resp.Body); err != nil || resp.StatusCode != 200 {
						t.Errorf("student %d: %d, %v", i, resp.StatusCode, err)
					}
				})
			}
			for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(20 * time.Millisecond) {
				var waiting int64
				if m := waiters.FindSubmatch(do(t, "GET", "http://"+addr+"/metrics").body); m != nil {
					waiting, _ = strconv.ParseInt(string(m[1]), 10, 64)
				}
				if fetches.Load()+waiting == n {
					break
				}
				if time.Now().After(deadline) {
					t.Fatalf("after 10 s: %d upstream requests and %d waiters for %d students", fetches.Load(), waiting, n)
				}
			}
			close(release)
			wg.Wait()
			for i, b := range bodies {
				if !bytes.Equal(b, body) {
					t.Errorf("student %d: %d bytes, want the segment's %d", i, len(b), len(body))
				}
			}
			if got := fetches.Load(); got != tc.upstream {
				t.Errorf("%s: %d upstream requests for %d concurrent misses, want %d", tc.flag, got, n, tc.upstream)
			}
		})
	}
}
