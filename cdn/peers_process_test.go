package cdn

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"testing"
	"time"
)

// helperEdgeEnv tells a re-run of the test binary to be one edge of a peer group (see
// TestHelperEdgeProcess); its value is a JSON helperEdge.
const helperEdgeEnv = "LECTERN_TEST_HELPER_EDGE"

type helperEdge struct {
	Upstream string
	Peers    []string
	Self     string
}

// TestHelperEdgeProcess is not a test: started by TestPeerGroupProcesses as a child process, as
// groupcache's tests do, it serves one edge on the listener passed as file descriptor 3 until its
// stdin closes (the parent is done or gone) or it is killed.
func TestHelperEdgeProcess(t *testing.T) {
	spec := os.Getenv(helperEdgeEnv)
	if spec == "" {
		t.Skip("a child edge for TestPeerGroupProcesses")
	}
	var h helperEdge
	if err := json.Unmarshal([]byte(spec), &h); err != nil {
		fmt.Fprintln(os.Stderr, "helper edge:", err)
		os.Exit(2)
	}
	ln, err := net.FileListener(os.NewFile(3, "listener"))
	if err != nil {
		fmt.Fprintln(os.Stderr, "helper edge:", err)
		os.Exit(2)
	}
	up, _ := url.Parse(h.Upstream)
	e, err := NewEdge(Config{Upstream: up, Peers: h.Peers, Self: h.Self, Logger: slog.New(slog.DiscardHandler),
		PeerTimeout: 10 * time.Second, PeerDialTimeout: 2 * time.Second}) // generous: a loaded machine must not fail a slow peer
	if err != nil {
		fmt.Fprintln(os.Stderr, "helper edge:", err)
		os.Exit(2)
	}
	go func() {
		io.Copy(io.Discard, os.Stdin)
		os.Exit(0)
	}()
	mux := http.NewServeMux()
	mux.Handle("/", e)
	mux.HandleFunc("/_test/peers-marked-down", func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprint(w, e.Stats().PeersMarkedDown.Load())
	})
	fmt.Fprintln(os.Stderr, "helper edge:", (&http.Server{Handler: mux}).Serve(ln))
	os.Exit(1)
}

// TestPeerGroupProcesses runs a region of 4 edges as separate processes in front of an origin in
// this one: 400 clients over the 4 asking for one new segment make the origin serve it once, and
// killing its owner (SIGKILL) while clients keep asking for new segments costs no client an error.
func TestPeerGroupProcesses(t *testing.T) {
	origin := slowOrigin(t, 150*time.Millisecond)
	const n = 4
	var (
		lns   []net.Listener
		urls  []string
		procs []*exec.Cmd
	)
	for range n {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		lns = append(lns, ln)
		urls = append(urls, "http://"+ln.Addr().String())
	}
	for i, ln := range lns {
		f, err := ln.(*net.TCPListener).File()
		if err != nil {
			t.Fatal(err)
		}
		spec, _ := json.Marshal(helperEdge{Upstream: origin.URL, Peers: urls, Self: urls[i]})
		cmd := exec.Command(os.Args[0], "-test.run=^TestHelperEdgeProcess$", "-test.count=1")
		cmd.Env = append(os.Environ(), helperEdgeEnv+"="+string(spec))
		cmd.ExtraFiles = []*os.File{f}
		var stderr bytes.Buffer
		cmd.Stderr = &stderr
		stdin, err := cmd.StdinPipe()
		if err != nil {
			t.Fatal(err)
		}
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		f.Close()
		ln.Close() // the child holds its own copy
		procs = append(procs, cmd)
		t.Cleanup(func() {
			stdin.Close()
			cmd.Process.Kill()
			cmd.Wait()
			if t.Failed() && stderr.Len() > 0 {
				t.Logf("edge %d stderr:\n%s", i, stderr.String())
			}
		})
	}
	client := herdClient()
	for _, u := range urls {
		waitForT(t, 10*time.Second, u+" to be up", func() bool {
			resp, err := client.Get(u + "/healthz")
			if err != nil {
				return false
			}
			resp.Body.Close()
			return resp.StatusCode == http.StatusOK
		})
	}

	const first = "/hls/proc/v1/seg0.ts"
	checkHerd(t, "herd over 4 processes", herd(client, urls, 400, first))
	if c := origin.count(first); c != 1 {
		t.Errorf("origin saw %d requests for one segment asked of 4 edge processes by 400 clients, want 1", c)
	}

	// Clients keep asking the other three for new segments, each owned by the victim, while it is
	// killed during one of them.
	victim := 0
	survivors := urls[1:]
	segs := make([]string, 6)
	for i := range segs {
		segs[i] = peerKey(urls, urls[victim], fmt.Sprintf("/hls/proc%d/", i))
	}
	killed := make(chan struct{})
	go func() {
		defer close(killed)
		waitForT(t, 10*time.Second, "the owner's fill", func() bool { return origin.count(segs[2]) > 0 })
		procs[victim].Process.Kill()
		procs[victim].Wait()
	}()
	for i, seg := range segs {
		if i == 3 {
			<-killed
		}
		checkHerd(t, seg, herd(client, survivors, 300, seg))
		if c := origin.count(seg); i != 2 && c != 1 {
			t.Errorf("%s: origin saw %d requests, want 1 (the owner %s, then its stand-in)", seg, c,
				map[bool]string{true: "alive", false: "dead"}[i < 2])
		}
	}
	down := 0
	for _, u := range survivors {
		resp, err := client.Get(u + "/_test/peers-marked-down")
		if err != nil {
			t.Fatal(err)
		}
		var n int
		fmt.Fscan(resp.Body, &n)
		resp.Body.Close()
		down += n
	}
	if down == 0 {
		t.Error("no surviving edge marked the killed owner down")
	}
}

// waitForT polls cond for up to d; unlike waitFor it may run on any goroutine (it reports with
// t.Error and returns).
func waitForT(t *testing.T, d time.Duration, what string, cond func() bool) {
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Errorf("timed out waiting for %s", what)
			return
		}
		time.Sleep(5 * time.Millisecond)
	}
}
