package deploy

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"
)

// freeAddr returns a loopback address with a port nothing listens on just now.
func freeAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// startRole runs `lectern ROLE --listen ADDR ARGS...` with the environment variables env until the
// test ends and waits for its /metrics.
func startRole(t *testing.T, role string, env map[string]string, args ...string) string {
	t.Helper()
	addr := freeAddr(t)
	cmd := exec.Command(lecternBin, append([]string{role, "--listen", addr}, args...)...)
	cmd.Env = cleanEnv()
	for k, v := range env {
		cmd.Env = append(cmd.Env, k+"="+v)
	}
	log, err := os.Create(filepath.Join(t.TempDir(), role+".log"))
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stdout, cmd.Stderr = log, log
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan struct{}) // closed when the process has exited; waitErr is then set
	var waitErr error
	go func() { waitErr = cmd.Wait(); close(exited) }()
	t.Cleanup(func() {
		_ = cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-exited:
		case <-time.After(10 * time.Second):
			_ = cmd.Process.Kill()
			<-exited
		}
	})
	deadline := time.Now().Add(20 * time.Second)
	for {
		select {
		case <-exited:
			out, _ := os.ReadFile(log.Name())
			t.Fatalf("lectern %s exited: %v\n%s", role, waitErr, out)
		default:
		}
		if resp, err := http.Get("http://" + addr + "/metrics"); err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return addr
			}
		}
		if time.Now().After(deadline) {
			out, _ := os.ReadFile(log.Name())
			t.Fatalf("lectern %s: no /metrics on %s after 20s\n%s", role, addr, out)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// composeSecrets returns, by role, the secret variables the first Compose service of that role is
// given (the peer secret only matters with peers, which the roles started here do not have).
func composeSecrets(t *testing.T) map[string]map[string]string {
	t.Helper()
	cf := loadCompose(t, "docker-compose.yml")
	out := map[string]map[string]string{}
	for _, name := range sortedKeys(cf.Services) {
		s := cf.Services[name]
		if len(s.Command) == 0 || out[s.Command[0]] != nil {
			continue
		}
		env := map[string]string{}
		for _, k := range secretVars {
			if v, ok := s.Environment[k]; ok {
				env[k] = v
			}
		}
		out[s.Command[0]] = env
	}
	return out
}

// secretVars are the variables the roles check the form of at start-up.
var secretVars = []string{"LECTERN_PLAYBACK_KEYS", "LECTERN_EDGE_SECRETS", "LECTERN_ORIGIN_SECRET", "LECTERN_PURGE_SECRET"}

// k8sSecrets returns, by role, the secret variables the manifests give the role's container.
func k8sSecrets(t *testing.T) map[string]map[string]string {
	t.Helper()
	o := loadK8s(t, k8sDir)
	out := map[string]map[string]string{}
	for _, w := range o.workloads() {
		for i := range w.pod.Spec.Containers {
			c := &w.pod.Spec.Containers[i]
			if len(c.Args) == 0 || out[c.Args[0]] != nil {
				continue
			}
			all := o.containerEnv(t, w.name, c)
			env := map[string]string{}
			for _, k := range secretVars {
				if v, ok := all[k]; ok {
					env[k] = v
				}
			}
			out[c.Args[0]] = env
		}
	}
	return out
}

// cleanEnv is the test's environment without LECTERN_* variables, which would configure the roles.
func cleanEnv() []string {
	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "LECTERN_") {
			env = append(env, kv)
		}
	}
	return env
}

var sampleName = regexp.MustCompile(`^([a-zA-Z_:][a-zA-Z0-9_:]*)[{ ]`)

// scrape returns the names of the samples a /metrics serves.
func scrape(t *testing.T, addr string) map[string]bool {
	t.Helper()
	resp, err := http.Get("http://" + addr + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	names := map[string]bool{}
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		if m := sampleName.FindStringSubmatch(sc.Text()); m != nil {
			names[m[1]] = true
		}
	}
	return names
}

// TestRolesServeWhatDeploymentsUse starts every role the deployments run, on loopback with local
// storage, and checks what the deployment files take from them: /healthz and /readyz answer on the
// --listen port the probes and Services use, and every metric the Grafana dashboard queries is one a
// role exports.
func TestRolesServeWhatDeploymentsUse(t *testing.T) {
	if testing.Short() {
		t.Skip("starts lectern roles")
	}
	if _, err := exec.LookPath("ffprobe"); err != nil {
		// Ingest will not start without it; `make test` installs it.
		if os.Getenv("LECTERN_TEST_REQUIRE_SERVICES") == "1" {
			t.Fatal("ffprobe not found")
		}
		t.Skip("ffprobe not found (ingest checks it at start-up)")
	}
	dir := t.TempDir()
	// The page bundles laid out as the worker image carries them (ingest runs on it).
	assets := filepath.Join(dir, "web")
	if err := os.MkdirAll(assets, 0o755); err != nil {
		t.Fatal(err)
	}
	_, bundles := dockerfileAssets(t, parseDockerfile(t))
	for _, b := range bundles {
		if err := os.WriteFile(filepath.Join(assets, b), []byte("// "+b), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	db := "sqlite://" + filepath.Join(dir, "lectern.db")
	storage := "file://" + filepath.Join(dir, "objects")
	addrs := map[string]string{}
	// Each role gets the secrets docker-compose.yml gives it, so that lectern checks their form (key
	// ids, encodings, lengths) as it would in the containers; the region map is the Compose one.
	secrets := composeSecrets(t)
	addrs["origin"] = startRole(t, "origin", secrets["origin"], "--storage", storage)
	addrs["edge"] = startRole(t, "edge", secrets["edge"], "--upstream", "http://"+addrs["origin"])
	addrs["router"] = startRole(t, "router", secrets["router"], "--regions", "regions.json", "--probe-interval", "1h")
	addrs["ingest"] = startRole(t, "ingest", secrets["ingest"], "--regions", "regions.json", "--db", db, "--storage", storage, "--assets-dir", assets, "--tmp", dir)
	addrs["worker"] = startRole(t, "worker", secrets["worker"], "--db", db, "--storage", storage, "--tmp", dir)
	// The Kubernetes Secret's example values must be of a form lectern takes too: an origin and an
	// edge start with what the manifests give them.
	k8sEnv := k8sSecrets(t)
	k8sOrigin := startRole(t, "origin", k8sEnv["origin"], "--storage", storage)
	startRole(t, "edge", k8sEnv["edge"], "--upstream", "http://"+k8sOrigin)

	exported := map[string]bool{}
	for role, addr := range addrs {
		for _, p := range []string{"/healthz", "/readyz"} {
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			req, _ := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+addr+p, nil)
			resp, err := http.DefaultClient.Do(req)
			cancel()
			if err != nil {
				t.Errorf("lectern %s %s: %v", role, p, err)
				continue
			}
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			// /readyz may say 503 (the router's edges are not up here); it must exist.
			if resp.StatusCode != http.StatusOK && !(p == "/readyz" && resp.StatusCode == http.StatusServiceUnavailable) {
				t.Errorf("lectern %s %s: %d %s", role, p, resp.StatusCode, body)
			}
		}
		for name := range scrape(t, addr) {
			exported[name] = true
		}
	}

	// Every bundle the teacher page loads is one the image carries, and ingest serves it from there.
	resp, err := http.Get("http://" + addrs["ingest"] + "/teach")
	if err != nil {
		t.Fatal(err)
	}
	page, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	loaded := regexp.MustCompile(`src="/assets/([^/"]+)"`).FindAllStringSubmatch(string(page), -1)
	if len(loaded) == 0 {
		t.Errorf("ingest /teach loads no /assets/ bundle: %.300s", page)
	}
	for _, m := range loaded {
		if !contains(bundles, m[1]) {
			t.Errorf("the teacher page loads /assets/%s, which deploy/Dockerfile does not put in the image", m[1])
		}
	}
	for _, b := range bundles {
		resp, err := http.Get("http://" + addrs["ingest"] + "/assets/" + b)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK || string(body) != "// "+b {
			t.Errorf("ingest --assets-dir laid out as the image: /assets/%s answered %d %.100q", b, resp.StatusCode, body)
		}
	}

	d := loadDashboard(t)
	metricRef := regexp.MustCompile(`\blectern_[a-zA-Z0-9_:]*`)
	for _, p := range d.Panels {
		if len(p.Targets) == 0 {
			t.Errorf("%s panel %q: no queries", dashboardFile, p.Title)
		}
		for _, tg := range p.Targets {
			refs := metricRef.FindAllString(tg.Expr, -1)
			if len(refs) == 0 {
				t.Errorf("%s panel %q query %s queries no lectern metric: %s", dashboardFile, p.Title, tg.RefID, tg.Expr)
			}
			for _, m := range refs {
				if !exported[m] {
					t.Errorf("%s panel %q query %s: %s is exported by no lectern role", dashboardFile, p.Title, tg.RefID, m)
				}
			}
		}
	}
	if t.Failed() {
		t.Log(fmt.Sprintf("lectern metrics exported: %d names", len(exported)))
	}
}
