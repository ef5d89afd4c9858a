package main

import (
	"bufio"
	"bytes"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// startRole runs one `lectern ROLE` process and waits for its /healthz. The process is killed when
// the test ends, or earlier by calling kill.
func startRole(t *testing.T, addr string, args ...string) (kill func()) {
	t.Helper()
	return startRoleEnv(t, addr, nil, args...)
}

// startRoleEnv is startRole with extra LECTERN_* variables (secrets, as operators pass them).
func startRoleEnv(t *testing.T, addr string, env []string, args ...string) (kill func()) {
	t.Helper()
	cmd := exec.Command(lecternBin, args...)
	if env != nil {
		cmd.Env = append(os.Environ(), env...)
	}
	var stderr bytes.Buffer
	cmd.Stderr = &lockedWriter{w: &stderr}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	var once sync.Once
	kill = func() { once.Do(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() }) }
	t.Cleanup(kill)
	for i := 0; i < 150; i++ {
		if resp, err := http.Get("http://" + addr + "/healthz"); err == nil {
			resp.Body.Close()
			if resp.StatusCode == 200 {
				return kill
			}
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Fatalf("lectern %s did not answer /healthz:\n%s", args[0], stderr.String())
	return nil
}

// TestSampleAndSeparateRoles: `serve --sample` (what `make run` starts) publishes a playable sample
// lecture and prints where to watch it; then ingest, worker, origin and edge run as separate processes
// over the same data, each with its own /metrics, /healthz and /readyz.
func TestSampleAndSeparateRoles(t *testing.T) {
	if testing.Short() {
		t.Skip("end-to-end: starts lectern and transcodes")
	}
	data := t.TempDir()
	pub, org := freeAddr(t), freeAddr(t)
	cmd := exec.Command(lecternBin, "serve", "--sample", "--listen", pub, "--origin-listen", org, "--data", data)
	stdout, _ := cmd.StdoutPipe()
	var stderr bytes.Buffer
	cmd.Stderr = &lockedWriter{w: &stderr}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { _ = cmd.Process.Kill(); _ = cmd.Wait() }()

	var printed strings.Builder
	watchRE := regexp.MustCompile(`Sample lecture: (http://\S+/watch/([a-z0-9]+))`)
	tokenRE := regexp.MustCompile(`Demo teacher token .*: (lt_\S+)`)
	sc := bufio.NewScanner(stdout)
	for sc.Scan() {
		printed.WriteString(sc.Text() + "\n")
		if strings.HasPrefix(sc.Text(), "  Teachers:") {
			break
		}
	}
	go func() { _, _ = io.Copy(io.Discard, stdout) }()
	m, tm := watchRE.FindStringSubmatch(printed.String()), tokenRE.FindStringSubmatch(printed.String())
	if m == nil || tm == nil || !strings.Contains(printed.String(), "Students: http://"+pub+"/") {
		t.Fatalf("serve --sample printed no sample/student/teacher URLs:\n%s\n%s", printed.String(), stderr.String())
	}
	watchURL, id, token := m[1], m[2], tm[1]

	var lec apiLecture
	deadline := time.Now().Add(2 * time.Minute)
	for lec.Status != "ready" {
		if time.Now().After(deadline) || lec.Status == "failed" {
			t.Fatalf("sample lecture not ready: %+v\n%s", lec, tail(stderr.String(), 30))
		}
		time.Sleep(300 * time.Millisecond)
		if code := getJSON(t, "http://"+pub+"/api/v1/lectures/"+id, token, &lec); code != 200 {
			t.Fatalf("demo token cannot read the sample lecture: %d", code)
		}
	}
	_, page := fetch(t, watchURL)
	if !bytes.Contains(page, []byte(lec.PlaybackURL)) {
		t.Fatalf("watch page does not play %s", lec.PlaybackURL)
	}
	_, index := fetch(t, "http://"+pub+"/")
	if !bytes.Contains(index, []byte("/watch/"+id)) {
		t.Errorf("student index does not list the sample lecture")
	}

	// A second start on the same data dir does not add another sample.
	_ = cmd.Process.Kill()
	_ = cmd.Wait()
	again := startServe(t, data, "--sample")
	var list struct {
		Lectures []apiLecture `json:"lectures"`
	}
	getJSON(t, again.base+"/api/v1/lectures", token, &list)
	if len(list.Lectures) != 1 {
		t.Errorf("after a restart with --sample: %d lectures, want the 1 sample", len(list.Lectures))
	}
	_ = again.cmd.Process.Kill()

	// The same data dir through the roles as separate processes, as they run at scale: ingest takes a new
	// upload, a worker transcodes it, an origin serves the objects and an edge caches them.
	store, db := "file://"+filepath.Join(data, "objects"), sqliteDB(data)
	ingestAddr, workerAddr, originAddr, edgeAddr := freeAddr(t), freeAddr(t), freeAddr(t), freeAddr(t)
	startRole(t, ingestAddr, "ingest", "--listen", ingestAddr, "--db", db, "--storage", store, "--tmp", t.TempDir())
	startRole(t, workerAddr, "worker", "--listen", workerAddr, "--db", db, "--storage", store, "--tmp", t.TempDir())
	startRole(t, originAddr, "origin", "--listen", originAddr, "--storage", store)
	startRole(t, edgeAddr, "edge", "--listen", edgeAddr, "--upstream", "http://"+originAddr)

	second := uploadClip(t, "http://"+ingestAddr, token, "Separate", 6)
	waitReady(t, "http://"+ingestAddr, token, &second)
	for _, l := range []apiLecture{lec, second} {
		for i, want := range []string{"MISS", "HIT"} {
			resp, _ := fetch(t, "http://"+edgeAddr+l.PlaybackURL)
			if got := resp.Header.Get("X-Cache"); got != want {
				t.Errorf("%s via standalone edge, fetch %d: X-Cache %q, want %q", l.PlaybackURL, i+1, got, want)
			}
		}
	}
	for _, addr := range []string{ingestAddr, workerAddr, originAddr, edgeAddr} {
		_, metrics := fetch(t, "http://"+addr+"/metrics")
		if !bytes.Contains(metrics, []byte("lectern_")) || !bytes.Contains(metrics, []byte("go_goroutines")) {
			t.Errorf("%s/metrics lacks lectern_ or runtime metrics", addr)
		}
	}
	for _, addr := range []string{ingestAddr, workerAddr, originAddr} {
		resp, err := http.Get("http://" + addr + "/readyz")
		if err != nil || resp.StatusCode != 200 {
			t.Errorf("%s/readyz: %v %v", addr, resp, err)
		}
	}
}

// withSendBuffer fixes SO_SNDBUF on every accepted connection (Linux reports twice the size asked
// for, its bookkeeping overhead included), and hands net/http the *net.TCPConn itself.
func TestWithSendBuffer(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	wrapped := withSendBuffer(ln, 96<<10)
	if withSendBuffer(ln, 0) != ln {
		t.Error("0 should leave the listener alone")
	}
	go func() {
		if c, err := net.Dial("tcp", ln.Addr().String()); err == nil {
			defer c.Close()
			time.Sleep(time.Second)
		}
	}()
	c, err := wrapped.Accept()
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	tc, ok := c.(*net.TCPConn)
	if !ok {
		t.Fatalf("accepted %T, want *net.TCPConn", c)
	}
	raw, err := tc.SyscallConn()
	if err != nil {
		t.Fatal(err)
	}
	var size int
	var serr error
	if err := raw.Control(func(fd uintptr) { size, serr = syscall.GetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_SNDBUF) }); err != nil || serr != nil {
		t.Fatal(err, serr)
	}
	if size != 2*96<<10 {
		t.Errorf("SO_SNDBUF %d, want %d", size, 2*96<<10)
	}
}
