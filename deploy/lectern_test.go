package deploy

import (
	"bufio"
	"bytes"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/lectern/lectern/cdn"
)

// lecternBin is the lectern binary built from this tree by TestMain: the flags, environment variables
// and defaults the deployment files use are read from its `lectern ROLE -h`, never written down here.
var lecternBin string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "lectern-deploy-test")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	lecternBin = filepath.Join(dir, "lectern")
	build := exec.Command("go", "build", "-o", lecternBin, "../cmd/lectern")
	build.Env = append(os.Environ(), "CGO_ENABLED=0") // as deploy/Dockerfile builds it
	if out, err := build.CombinedOutput(); err != nil {
		fmt.Fprintf(os.Stderr, "go build ../cmd/lectern: %v\n%s", err, out)
		os.RemoveAll(dir)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// flagInfo is one flag of a role as `lectern ROLE -h` prints it.
type flagInfo struct {
	env    string // LECTERN_...
	def    string // default value ("" if none)
	isBool bool
}

// role is a lectern subcommand and its flags.
type role struct {
	name  string
	flags map[string]flagInfo
	envs  map[string]string // LECTERN_* name -> flag name
}

var (
	rolesMu sync.Mutex
	roles   = map[string]*role{}
)

var (
	flagLine    = regexp.MustCompile(`^  --([a-z0-9][a-z0-9-]*)  \[(LECTERN_[A-Z0-9_]+)\]$`)
	defaultText = regexp.MustCompile(`\(default "(.*)"\)$`)
)

// lecternRole runs `lectern NAME -h` and reads the role's flags from its usage; an error if NAME is
// not a lectern command with flags.
func lecternRole(name string) (*role, error) {
	rolesMu.Lock()
	defer rolesMu.Unlock()
	if r, ok := roles[name]; ok {
		return r, nil
	}
	var out bytes.Buffer
	cmd := exec.Command(lecternBin, name, "-h")
	cmd.Stdout, cmd.Stderr = &out, &out
	err := cmd.Run()
	if !strings.HasPrefix(out.String(), "usage: lectern "+name+" ") {
		return nil, fmt.Errorf("%q is not a lectern role (lectern %s -h: %v: %.200s)", name, name, err, out.String())
	}
	r := &role{name: name, flags: map[string]flagInfo{}, envs: map[string]string{}}
	sc := bufio.NewScanner(&out)
	var last string
	for sc.Scan() {
		line := sc.Text()
		if m := flagLine.FindStringSubmatch(line); m != nil {
			last = m[1]
			r.flags[last] = flagInfo{env: m[2]}
			r.envs[m[2]] = last
			continue
		}
		if last != "" && strings.HasPrefix(line, "        ") {
			fi := r.flags[last]
			if m := defaultText.FindStringSubmatch(line); m != nil {
				fi.def = m[1]
				fi.isBool = m[1] == "false" || m[1] == "true"
			}
			r.flags[last] = fi
			last = ""
		}
	}
	if len(r.flags) == 0 {
		return nil, fmt.Errorf("lectern %s -h lists no flags:\n%s", name, out.String())
	}
	roles[name] = r
	return r, nil
}

// otherEnv are the environment variables a role reads that are not LECTERN_<FLAG>: the S3 keys
// (read with an s3:// --storage), the Go runtime's memory limit, and POD_NAME, which the Kubernetes
// edges set from the downward API to build their --self.
var otherEnv = map[string]func(r *role) bool{
	"AWS_ACCESS_KEY_ID":     hasStorage,
	"AWS_SECRET_ACCESS_KEY": hasStorage,
	"AWS_SESSION_TOKEN":     hasStorage,
	"GOMEMLIMIT":            func(*role) bool { return true },
	"POD_NAME":              func(*role) bool { return true },
}

func hasStorage(r *role) bool { _, ok := r.flags["storage"]; return ok }

// container is one lectern process of a deployment file, whatever the file's format.
type container struct {
	where string            // for messages: file and object
	args  []string          // role, then flags
	env   map[string]string // variables given, with their values resolved (secrets, config maps)
}

// config is a container's effective configuration: the role and every flag's value as lectern would
// take it (command line, then environment, then default).
type config struct {
	c    container
	role *role
	vals map[string]string
	set  map[string]bool // given on the command line or in the environment
}

// checkContainer checks that c runs a real role with real flags and environment variables, and
// returns its effective configuration (nil when the role itself is wrong).
func checkContainer(t *testing.T, c container) *config {
	t.Helper()
	if len(c.args) == 0 {
		t.Errorf("%s: no command: the first argument must be a lectern role", c.where)
		return nil
	}
	r, err := lecternRole(c.args[0])
	if err != nil {
		t.Errorf("%s: %v", c.where, err)
		return nil
	}
	cfg := &config{c: c, role: r, vals: map[string]string{}, set: map[string]bool{}}
	for name, fi := range r.flags {
		cfg.vals[name] = fi.def
	}
	for name, v := range c.env {
		if flag, ok := r.envs[name]; ok {
			cfg.vals[flag], cfg.set[flag] = v, true
			continue
		}
		if ok, known := otherEnv[name]; known && ok(r) {
			continue
		}
		if strings.HasPrefix(name, "LECTERN_") {
			t.Errorf("%s: environment variable %s is no flag of lectern %s (its flags' variables: %s)", c.where, name, r.name, strings.Join(sortedKeys(r.envs), " "))
		} else {
			t.Errorf("%s: environment variable %s is not read by lectern %s", c.where, name, r.name)
		}
	}
	args := c.args[1:]
	for i := 0; i < len(args); i++ {
		a := args[i]
		if !strings.HasPrefix(a, "-") {
			t.Errorf("%s: argument %q: lectern %s takes flags only", c.where, a, r.name)
			continue
		}
		name, val, hasVal := strings.Cut(strings.TrimLeft(a, "-"), "=")
		fi, ok := r.flags[name]
		if !ok {
			t.Errorf("%s: flag --%s is no flag of lectern %s", c.where, name, r.name)
			continue
		}
		if !hasVal {
			if fi.isBool {
				val = "true"
			} else if i+1 < len(args) {
				i++
				val = args[i]
			} else {
				t.Errorf("%s: flag --%s has no value", c.where, name)
			}
		}
		cfg.vals[name], cfg.set[name] = val, true
	}
	return cfg
}

// listenPort is the port of the role's --listen address.
func (cfg *config) listenPort(t *testing.T) int {
	t.Helper()
	addr := cfg.vals["listen"]
	_, p, err := net.SplitHostPort(addr)
	n, err2 := strconv.Atoi(p)
	if err != nil || err2 != nil {
		t.Errorf("%s: --listen %q is not HOST:PORT", cfg.c.where, addr)
		return -1
	}
	return n
}

// checkRegionMap parses a region map file the way lectern reads it.
func checkRegionMap(t *testing.T, where string, data []byte) *cdn.RegionMap {
	t.Helper()
	m, err := cdn.ParseRegionMap(data)
	if err != nil {
		t.Errorf("%s: region map: %v", where, err)
		return nil
	}
	return m
}

// regionEdges returns the edge URLs a region map lists for region, nil if the region is missing.
func regionEdges(m *cdn.RegionMap, region string) []string {
	for _, r := range m.Regions {
		if r.Name == region {
			urls := []string{}
			for _, e := range r.Edges {
				urls = append(urls, e.URL)
			}
			return urls
		}
	}
	return nil
}

// checkSecretsAgree checks that the roles agree on their shared secrets: one set of playback keys,
// an edge's origin secret among the origins' edge secrets, one peer secret and one purge secret.
func checkSecretsAgree(t *testing.T, cfgs []*config) {
	t.Helper()
	same := func(flag string, roles ...string) {
		var first *config
		for _, c := range cfgs {
			if !contains(roles, c.role.name) {
				continue
			}
			if c.vals[flag] == "" {
				t.Errorf("%s: lectern %s has no --%s (%s)", c.c.where, c.role.name, flag, c.role.flags[flag].env)
				continue
			}
			if first == nil {
				first = c
			} else if c.vals[flag] != first.vals[flag] {
				t.Errorf("%s: --%s differs from %s's", c.c.where, flag, first.c.where)
			}
		}
	}
	same("playback-keys", "ingest", "origin", "edge", "router")
	same("purge-secret", "ingest", "origin", "edge")
	same("peer-secret", "edge")
	for _, e := range cfgs {
		if e.role.name != "edge" {
			continue
		}
		for _, o := range cfgs {
			if o.role.name == "origin" && !contains(strings.Split(o.vals["edge-secrets"], ","), e.vals["origin-secret"]) {
				t.Errorf("%s: --origin-secret is not among %s's --edge-secrets", e.c.where, o.c.where)
			}
		}
	}
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}
