package testenv

import (
	"context"
	"errors"
	"fmt"
	"go/build"
	"math/rand/v2"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// Credentials of every private MinIO; the same as scripts/test-services.sh gives the shared one.
const (
	minioUser     = "lectern"
	minioPassword = "lectern-secret-key"
)

// minioStartTimeout bounds how long a private MinIO may take to answer its health check.
const minioStartTimeout = 30 * time.Second

// MinIO is a MinIO server process of one test's own, for tests that stop storage under a running
// service (the shared server of scripts/test-services.sh must stay up for every other test). It
// listens on a loopback port and keeps its data in a temporary directory; Stop and Start keep both, so
// the objects and the address survive a restart and clients need not be told anything.
type MinIO struct {
	t    testing.TB
	bin  string
	dir  string // data directory
	logf string // server output, shown when it fails to start
	addr string // 127.0.0.1:PORT

	mu     sync.Mutex
	cmd    *exec.Cmd  // nil while stopped
	exited chan error // the running process's Wait result
}

// StartMinIO starts a private MinIO server and stops it when the test ends. The binary is $MINIO_BIN,
// `minio` on PATH, or $GOPATH/bin/minio (where `make deps-test` installs it). Without one the test is
// skipped, or fails under LECTERN_TEST_REQUIRE_SERVICES=1.
func StartMinIO(t testing.TB) *MinIO {
	t.Helper()
	bin, err := minioBinary()
	if err != nil {
		msg := "no MinIO server binary for a private MinIO (" + err.Error() + "): run `make deps-test`"
		if Required() {
			t.Fatal(msg)
		}
		t.Skip(msg)
	}
	port, err := freePort()
	if err != nil {
		t.Fatalf("private MinIO: %v", err)
	}
	work := t.TempDir()
	m := &MinIO{
		t:    t,
		bin:  bin,
		dir:  filepath.Join(work, "data"),
		logf: filepath.Join(work, "minio.log"),
		addr: net.JoinHostPort("127.0.0.1", strconv.Itoa(port)),
	}
	if err := os.Mkdir(m.dir, 0o755); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { m.kill() })
	m.Start()
	return m
}

func minioBinary() (string, error) {
	if p := os.Getenv("MINIO_BIN"); p != "" {
		return exec.LookPath(p)
	}
	if p, err := exec.LookPath("minio"); err == nil {
		return p, nil
	}
	p := filepath.Join(build.Default.GOPATH, "bin", "minio")
	if _, err := exec.LookPath(p); err != nil {
		return "", fmt.Errorf("not on PATH nor at %s", p)
	}
	return p, nil
}

// FreeAddr returns a 127.0.0.1:port for a server a test starts in another process: see freePort.
func FreeAddr(t testing.TB) string {
	t.Helper()
	p, err := freePort()
	if err != nil {
		t.Fatal(err)
	}
	return net.JoinHostPort("127.0.0.1", strconv.Itoa(p))
}

// freePort returns a loopback port that nothing listened on a moment ago, below the kernel's
// ephemeral range: a port in that range (what listening on port 0 gives) can become the local end of
// some other test's connection before the server binds it, and the bind then fails. Servers stopped
// and started again on their port (StartMinIO) need this for the same reason.
func freePort() (int, error) {
	lo := 32768
	if b, err := os.ReadFile("/proc/sys/net/ipv4/ip_local_port_range"); err == nil {
		if f := strings.Fields(string(b)); len(f) == 2 {
			if n, err := strconv.Atoi(f[0]); err == nil && n > 11000 {
				lo = n
			}
		}
	}
	for range 100 {
		p := 10000 + rand.IntN(lo-10000)
		l, err := net.Listen("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(p)))
		if err != nil {
			continue
		}
		l.Close()
		return p, nil
	}
	return 0, errors.New("testenv: no free loopback port below the ephemeral range")
}

// Addr returns the server's host:port.
func (m *MinIO) Addr() string { return m.addr }

// URL returns an objstore URL for bucket on this server; the bucket is created on open.
func (m *MinIO) URL(bucket string) string {
	q := url.Values{}
	q.Set("endpoint", m.addr)
	q.Set("access_key", minioUser)
	q.Set("secret_key", minioPassword)
	q.Set("secure", "false")
	q.Set("region", "us-east-1")
	q.Set("create", "true")
	return (&url.URL{Scheme: "s3", Host: bucket, RawQuery: q.Encode()}).String()
}

// Start starts the server (again) on the same address and data directory and returns once it answers
// its liveness check. Starting a running server is a test bug and fails the test.
func (m *MinIO) Start() {
	m.t.Helper()
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.cmd != nil {
		m.t.Fatal("private MinIO: Start while running")
	}
	logFile, err := os.OpenFile(m.logf, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		m.t.Fatal(err)
	}
	defer logFile.Close() // the child has its own descriptor
	cmd := exec.Command(m.bin, "server", "--quiet", "--address", m.addr, m.dir)
	cmd.Env = append(os.Environ(),
		"MINIO_ROOT_USER="+minioUser, "MINIO_ROOT_PASSWORD="+minioPassword, "MINIO_BROWSER=off")
	cmd.Stdout, cmd.Stderr = logFile, logFile
	dieWithParent(cmd)
	if err := cmd.Start(); err != nil {
		m.t.Fatalf("private MinIO: start %s: %v", m.bin, err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	if err := waitLive(m.addr, exited); err != nil {
		_ = cmd.Process.Kill()
		out, _ := os.ReadFile(m.logf)
		m.t.Fatalf("private MinIO on %s: %v; its log:\n%s", m.addr, err, out)
	}
	m.cmd, m.exited = cmd, exited
}

// Stop kills the server, as a crash or a network partition would look to clients, and returns once the
// process has exited and the port is closed.
func (m *MinIO) Stop() {
	m.t.Helper()
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.cmd == nil {
		m.t.Fatal("private MinIO: Stop while stopped")
	}
	m.stopLocked()
}

func (m *MinIO) kill() {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.cmd != nil {
		m.stopLocked()
	}
}

func (m *MinIO) stopLocked() {
	_ = m.cmd.Process.Kill()
	<-m.exited
	m.cmd, m.exited = nil, nil
}

// waitLive polls MinIO's liveness endpoint until it answers 200, the process exits, or the start-up
// time runs out.
func waitLive(addr string, exited <-chan error) error {
	ctx, cancel := context.WithTimeout(context.Background(), minioStartTimeout)
	defer cancel()
	client := &http.Client{Timeout: time.Second}
	for {
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+addr+"/minio/health/live", nil)
		if resp, err := client.Do(req); err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
		}
		select {
		case err := <-exited:
			if err == nil {
				err = errors.New("exited")
			}
			return fmt.Errorf("server stopped during start-up: %w", err)
		case <-ctx.Done():
			return fmt.Errorf("not live within %s", minioStartTimeout)
		case <-time.After(50 * time.Millisecond):
		}
	}
}
