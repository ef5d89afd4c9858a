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

	"github.com/lectern/lectern/internal/loadtest"
	"github.com/lectern/lectern/internal/objstore"
)

// TestLoadtestAgainstRoutedStack: `lectern loadtest` as a process, 100 students watching a minute at 10x
// against the
// roles as separate processes on loopback (an origin on a file store holding a published lecture,
// two edges of one region in a peer group, the router), with signed playback. Every student joins
// through the router, plays to the end of its watch time with no error and no stall, the students'
// requests are the client requests the edges counted, and the edges kept more than 90% of them
// from the origin.
func TestLoadtestAgainstRoutedStack(t *testing.T) {
	if testing.Short() {
		t.Skip("end-to-end: starts the roles")
	}
	data := t.TempDir()
	store := "file://" + filepath.Join(data, "objects")
	// A lecture as the worker publishes it (synthetic media: nothing here decodes them).
	bucket, err := objstore.Open(context.Background(), store)
	if err != nil {
		t.Fatal(err)
	}
	const lecture = "lt1"
	// 6 s segments, as the worker cuts them (hls_time 6); a minute of lecture.
	for key, body := range loadtest.SyntheticLecture(lecture, []int{150000, 350000, 550000}, 6, 10) {
		if err := bucket.PutBytes(context.Background(), key, body, objstore.PutOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	bucket.Close()

	originAddr, routerAddr, e1, e2 := freeAddr(t), freeAddr(t), freeAddr(t), freeAddr(t)
	regions := filepath.Join(t.TempDir(), "regions.json")
	m := fmt.Sprintf(`{"default": "seoul", "regions": {
	  "seoul": {"edges": [{"url": "http://%s"}, {"url": "http://%s"}], "prefixes": ["127.0.0.0/8"]}}}`, e1, e2)
	if err := os.WriteFile(regions, []byte(m), 0o644); err != nil {
		t.Fatal(err)
	}
	keys := "LECTERN_PLAYBACK_KEYS=k1:" + strings.Repeat("5e", 32)
	env := []string{keys, "LECTERN_EDGE_SECRETS=" + strings.Repeat("e", 40),
		"LECTERN_ORIGIN_SECRET=" + strings.Repeat("e", 40), "LECTERN_PEER_SECRET=" + strings.Repeat("p", 40)}
	startRoleEnv(t, originAddr, env, "origin", "--listen", originAddr, "--storage", store)
	for _, a := range []string{e1, e2} {
		startRoleEnv(t, a, env, "edge", "--listen", a, "--upstream", "http://"+originAddr,
			"--regions", regions, "--region", "seoul", "--self", "http://"+a)
	}
	startRoleEnv(t, routerAddr, env, "router", "--listen", routerAddr, "--regions", regions, "--probe-interval", "200ms")
	deadline := time.Now().Add(10 * time.Second)
	for status(t, "http://"+routerAddr+"/readyz") != http.StatusOK {
		if time.Now().After(deadline) {
			t.Fatal("the router found no edge ready")
		}
		time.Sleep(100 * time.Millisecond)
	}

	out := filepath.Join(t.TempDir(), "report.json")
	cmd := exec.Command(lecternBin, "loadtest", "--target", "http://"+routerAddr, "--playlist", "/hls/"+lecture+"/v1/master.m3u8",
		"--students", "100", "--speed", "10", "--watch", "60s", "--ramp-window", "30s", "--regions", "seoul:1", "--seek", "0",
		"--origin-metrics", "http://"+originAddr+"/metrics", "--edge-metrics", "http://"+e1+"/metrics,http://"+e2+"/metrics",
		"--max-wall", "25s", "--json", out, "--fail", "--progress", "0")
	cmd.Env = append(os.Environ(), keys)
	started := time.Now()
	table, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("lectern loadtest: %v\n%s", err, table)
	}
	t.Logf("%s in %v:\n%s", cmd.Args[1], time.Since(started).Round(time.Millisecond), table)
	raw, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	// The field names are what bench/scale reads.
	var fields map[string]any
	if err := json.Unmarshal(raw, &fields); err != nil {
		t.Fatal(err)
	}
	for _, k := range []string{"students", "started", "finished", "failed", "unfinished", "startup_ms", "rebuffers", "rebuffer_seconds",
		"played_seconds", "rebuffer_ratio", "requests", "bytes", "errors", "error_total", "switches", "seeks", "rungs", "origin", "edges",
		"offload", "wall_seconds", "speed"} {
		if _, ok := fields[k]; !ok {
			t.Errorf("the JSON report has no %q", k)
		}
	}
	var rep loadtest.Report
	if err := json.Unmarshal(raw, &rep); err != nil {
		t.Fatal(err)
	}
	if rep.Students != 100 || rep.Finished != 100 || rep.Failed+rep.Unfinished != 0 || rep.ErrorTotal != 0 || rep.Rebuffers != 0 {
		t.Errorf("%d students: %d finished, %d failed, %d unfinished, errors %v, %d rebuffers", rep.Students, rep.Finished, rep.Failed, rep.Unfinished, rep.Errors, rep.Rebuffers)
	}
	// hls.js's default estimate (500 kb/s) starts them on 350k; their bandwidth moves them up.
	if rep.Switches < 100 || rep.Rungs["550000"] == 0 {
		t.Errorf("%d rung switches, segments by rung %v", rep.Switches, rep.Rungs)
	}
	if p := rep.StartupMS; !(p.P50 > 0 && p.P50 <= p.P95 && p.P95 <= p.P99 && p.P99 <= p.Max) {
		t.Errorf("startup percentiles %+v", p)
	}
	if rep.PlayedSeconds < 100*59.9 || rep.PlayedSeconds > 100*60.1 {
		t.Errorf("%.0f s played, want 100 x 60 s", rep.PlayedSeconds)
	}
	if rep.Edges == nil || rep.Origin == nil || rep.Offload == nil {
		t.Fatalf("no metrics in the report: %s", raw)
	}
	// Every student request reached an edge (the router only redirects): the edges' client requests
	// are the students' ones.
	if rep.Edges.Requests != rep.Requests || rep.Edges.Hits+rep.Edges.Misses < rep.Requests {
		t.Errorf("the students made %d requests; the edges counted %d client requests (%+v)", rep.Requests, rep.Edges.Requests, *rep.Edges)
	}
	if rep.Origin.Requests == 0 || rep.Offload.Requests <= 0.9 || rep.Offload.Bytes <= 0.9 {
		t.Errorf("origin %+v, offload %+v", *rep.Origin, *rep.Offload)
	}
}

// TestLoadtestFlagErrors: mistakes are refused with exit status 2 and a line saying what to fix,
// before any student starts; a target off this machine is one of them.
func TestLoadtestFlagErrors(t *testing.T) {
	ok := []string{"loadtest", "--target", "http://127.0.0.1:1", "--playlist", "/hls/a/v1/master.m3u8"}
	for _, tc := range []struct {
		args []string
		env  string
		want string
	}{
		{[]string{"loadtest", "--playlist", "/hls/a/v1/master.m3u8"}, "", "--target: give the router's base URL"},
		{[]string{"loadtest", "--target", "http://127.0.0.1:1"}, "", "--playlist: give a master playlist path"},
		{[]string{"loadtest", "--target", "http://10.1.2.3:8083", "--playlist", "/hls/a/v1/master.m3u8"}, "", "10.1.2.3 is not"},
		{[]string{"loadtest", "--target", "http://[2001:db8::1]:80", "--playlist", "/hls/a/v1/master.m3u8"}, "", "only loopback addresses"},
		{append(ok, "--edge-metrics", "http://192.0.2.7:8082/metrics"), "", "metrics URL http://192.0.2.7:8082/metrics: only loopback"},
		{append(ok, "--regions", "seoul:1"), "", "give --playback-keys too"},
		{append(ok, "--regions", "/etc/regions.json"), "LECTERN_PLAYBACK_KEYS=k1:" + strings.Repeat("5e", 32), "a region name is lowercase"},
		{append(ok, "--ramp", "sudden"), "", `--ramp "sudden"`},
		{append(ok, "--speed", "0"), "", "--speed, --bandwidth and --start-estimate must be positive"},
		{append(ok, "--seek", "2"), "", "--seek is a probability"},
		{append(ok, "extra"), "", `unexpected argument "extra"`},
		{[]string{"loadtest", "--playlist", "/x.m3u8", "--target", "http://127.0.0.1:1"}, "", "want /hls/{lecture}/.../master.m3u8"},
		{ok, "LECTERN_STUDENTS=many", "LECTERN_STUDENTS"},
	} {
		t.Run(strings.Join(tc.args[1:], " "), func(t *testing.T) {
			if k, v, found := strings.Cut(tc.env, "="); found {
				t.Setenv(k, v)
			}
			var stdout, stderr strings.Builder
			if code := run(context.Background(), tc.args, &stdout, &stderr); code != 2 || !strings.Contains(stderr.String(), tc.want) {
				t.Errorf("exit %d, stderr %q; want 2 and %q", code, stderr.String(), tc.want)
			}
		})
	}
	var stdout, stderr strings.Builder
	if code := run(context.Background(), []string{"loadtest", "-h"}, &stdout, &stderr); code != 0 || !strings.Contains(stderr.String(), "--ramp-window  [LECTERN_RAMP_WINDOW]") {
		t.Errorf("-h: exit %d\n%s", code, stderr.String())
	}
}
