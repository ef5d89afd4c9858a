// Package harness runs the processes of a loopback benchmark (bench/ttff, bench/scale): each role its
// own process with its output in a log file, waited for until it is healthy, dying with the benchmark,
// and stopped in reverse order at the end, on a signal or when the benchmark runs out of time. It also
// describes the machine for the reports.
package harness

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

// Procs are the processes a benchmark started, with their logs in Dir.
type Procs struct {
	Dir string

	mu   sync.Mutex
	list []*Proc
}

// Proc is one started process.
type Proc struct {
	Name string
	cmd  *exec.Cmd
	done chan struct{}
}

// Start runs path with args and env (added to this process's environment), its output in
// Dir/NAME.log, dying with this process (Pdeathsig), and waits up to 30 s for health, a URL, to
// answer 200.
func (ps *Procs) Start(name, health string, env []string, path string, args ...string) (*Proc, error) {
	logPath := filepath.Join(ps.Dir, name+".log")
	logFile, err := os.OpenFile(logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return nil, err
	}
	defer logFile.Close()
	cmd := exec.Command(path, args...)
	cmd.Env = append(os.Environ(), env...)
	cmd.Stdout, cmd.Stderr = logFile, logFile
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start %s: %w", name, err)
	}
	p := &Proc{Name: name, cmd: cmd, done: make(chan struct{})}
	go func() { _ = cmd.Wait(); close(p.done) }()
	ps.mu.Lock()
	ps.list = append(ps.list, p)
	ps.mu.Unlock()
	until := time.Now().Add(30 * time.Second)
	for time.Now().Before(until) {
		if Status(health) == 200 {
			return p, nil
		}
		select {
		case <-p.done:
			return nil, fmt.Errorf("%s exited at start:\n%s", name, TailFile(logPath))
		case <-time.After(50 * time.Millisecond):
		}
	}
	p.Stop()
	return nil, fmt.Errorf("%s: %s did not answer 200 within 30 s:\n%s", name, health, TailFile(logPath))
}

// Stop sends SIGTERM, then SIGKILL after 5 s, and waits for the exit.
func (p *Proc) Stop() {
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.done:
	case <-time.After(5 * time.Second):
		_ = p.cmd.Process.Kill()
		<-p.done
	}
}

// Exited reports whether the process has ended.
func (p *Proc) Exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// CPU returns the processor time (user and system) the running process has used so far, from
// /proc; 0 when it cannot be read.
func (p *Proc) CPU() time.Duration { return PidCPU(p.cmd.Process.Pid) }

// PidCPU returns the processor time (user and system) process pid has used so far, from
// /proc/PID/stat; 0 when it cannot be read.
func PidCPU(pid int) time.Duration {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0
	}
	// The command name, in parentheses, may hold spaces: the fields that follow start after the last ')'.
	i := strings.LastIndexByte(string(b), ')')
	if i < 0 {
		return 0
	}
	f := strings.Fields(string(b[i+1:]))
	if len(f) < 13 {
		return 0
	}
	// Fields 14 and 15 of stat (utime, stime), in clock ticks: 100 per second on Linux.
	utime, _ := strconv.ParseInt(f[11], 10, 64)
	stime, _ := strconv.ParseInt(f[12], 10, 64)
	return time.Duration(utime+stime) * (time.Second / 100)
}

// StopAll stops every process still running, the last started first.
func (ps *Procs) StopAll() {
	ps.mu.Lock()
	list := ps.list
	ps.list = nil
	ps.mu.Unlock()
	for i := len(list) - 1; i >= 0; i-- {
		list[i].Stop()
	}
}

// Forget drops p from the processes StopAll stops, once the caller has stopped it.
func (ps *Procs) Forget(p *Proc) {
	ps.mu.Lock()
	defer ps.mu.Unlock()
	for i, q := range ps.list {
		if q == p {
			ps.list = append(ps.list[:i], ps.list[i+1:]...)
			return
		}
	}
}

// Main runs run with a context that ends on SIGINT, SIGTERM or after deadline; then, or when run
// returns, it stops procs and calls cleanup (removing the work directory, say), and exits 1 on an
// error or an interruption. logf reports what happened.
func Main(deadline time.Duration, procs *Procs, cleanup func(), logf func(string, ...any), run func(context.Context) error) {
	ctx, cancel := context.WithCancel(context.Background())
	sigs := make(chan os.Signal, 1)
	signal.Notify(sigs, os.Interrupt, syscall.SIGTERM)
	finished := make(chan struct{})
	go func() {
		select {
		case s := <-sigs:
			logf("%v: stopping", s)
		case <-time.After(deadline):
			logf("timeout %v: stopping", deadline)
		case <-finished:
			return
		}
		cancel()
		procs.StopAll()
		cleanup()
		os.Exit(1)
	}()
	err := run(ctx)
	close(finished)
	cancel()
	procs.StopAll()
	cleanup()
	if err != nil {
		logf("%v", err)
		os.Exit(1)
	}
}

// Status GETs url and returns the status code, 0 when there was no answer within 2 s.
func Status(url string) int {
	c := http.Client{Timeout: 2 * time.Second}
	resp, err := c.Get(url)
	if err != nil {
		return 0
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp.StatusCode
}

// TailFile returns the last 30 lines of a file, for error messages.
func TailFile(path string) string {
	b, _ := os.ReadFile(path)
	lines := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	return strings.Join(lines[max(0, len(lines)-30):], "\n")
}
