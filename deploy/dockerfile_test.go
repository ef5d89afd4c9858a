package deploy

import (
	"encoding/json"
	"os"
	"path"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// dockerStage is one stage of deploy/Dockerfile: its base, name and instructions (continuation lines
// joined, comments dropped).
type dockerStage struct {
	from, name string
	instrs     [][2]string // keyword (upper case), rest
}

func (s *dockerStage) all(keyword string) []string {
	var out []string
	for _, in := range s.instrs {
		if in[0] == keyword {
			out = append(out, in[1])
		}
	}
	return out
}

// env returns the value an ENV of the stage gives name ("" if none). Only the KEY=VALUE form.
func (s *dockerStage) env(name string) string {
	v := ""
	for _, e := range s.all("ENV") {
		for _, kv := range strings.Fields(e) {
			if k, val, ok := strings.Cut(kv, "="); ok && k == name {
				v = val
			}
		}
	}
	return v
}

func parseDockerfile(t *testing.T) map[string]*dockerStage {
	t.Helper()
	data, err := os.ReadFile("Dockerfile")
	if err != nil {
		t.Fatal(err)
	}
	stages := map[string]*dockerStage{}
	var cur *dockerStage
	var line string
	for _, l := range strings.Split(string(data), "\n") {
		if strings.HasPrefix(strings.TrimSpace(l), "#") {
			continue
		}
		if strings.HasSuffix(l, "\\") {
			line += strings.TrimSuffix(l, "\\") + " "
			continue
		}
		line += l
		kw, rest, _ := strings.Cut(strings.TrimSpace(line), " ")
		line = ""
		kw, rest = strings.ToUpper(kw), strings.TrimSpace(rest)
		switch {
		case kw == "":
		case kw == "FROM":
			f := strings.Fields(rest)
			if len(f) != 3 || !strings.EqualFold(f[1], "AS") {
				t.Errorf("Dockerfile: FROM %s: name every stage (FROM IMAGE AS NAME)", rest)
				continue
			}
			cur = &dockerStage{from: f[0], name: f[2]}
			stages[cur.name] = cur
		case cur == nil:
			if kw != "ARG" {
				t.Errorf("Dockerfile: %s before the first FROM", kw)
			}
		default:
			cur.instrs = append(cur.instrs, [2]string{kw, rest})
		}
	}
	return stages
}

// dockerfileAssets returns the directory the image that runs ingest carries the pages' npm bundles in
// and the bundles' file names, checking that it carries them and points LECTERN_ASSETS_DIR there.
func dockerfileAssets(t *testing.T, stages map[string]*dockerStage) (string, []string) {
	t.Helper()
	web := stages["web"]
	if web == nil {
		t.Fatal("Dockerfile: no web stage")
	}
	var names []string
	for _, run := range web.all("RUN") {
		if !strings.Contains(run, "npm ci") {
			continue
		}
		m := regexp.MustCompile(`\bcp ((?:node_modules/\S+ )+)/out/`).FindStringSubmatch(run)
		if m == nil {
			t.Fatalf("Dockerfile: the web stage's npm ci copies no bundles to /out/: %s", run)
		}
		for _, src := range strings.Fields(m[1]) {
			names = append(names, path.Base(src))
			// With `make web` run (make test does), the path must be where npm ci puts the bundle.
			if _, err := os.Stat(filepath.Join("..", "internal", "web", src)); err != nil && dirExists(filepath.Join("..", "internal", "web", "node_modules")) {
				t.Errorf("Dockerfile: web stage copies %s, which npm ci does not install: %v", src, err)
			}
		}
	}
	if len(names) == 0 {
		t.Fatal("Dockerfile: the web stage runs no npm ci")
	}
	dir := ""
	for target, roles := range targetRoles {
		if !contains(roles, "ingest") {
			continue
		}
		s := stages[target]
		if s == nil {
			t.Errorf("Dockerfile: no stage %s", target)
			continue
		}
		to := ""
		for _, c := range s.all("COPY") {
			if f := strings.Fields(c); len(f) == 3 && f[0] == "--from=web" {
				to = strings.TrimSuffix(f[2], "/")
			}
		}
		if env := s.env("LECTERN_ASSETS_DIR"); to == "" || env != to {
			t.Errorf("Dockerfile stage %s: bundles copied to %q, LECTERN_ASSETS_DIR %q: want both the same directory", target, to, env)
		}
		dir = to
	}
	return dir, names
}

func dirExists(p string) bool {
	fi, err := os.Stat(p)
	return err == nil && fi.IsDir()
}

func TestDockerfile(t *testing.T) {
	stages := parseDockerfile(t)
	dockerfileAssets(t, stages)
	build := stages["build"]
	if build == nil {
		t.Fatal("Dockerfile: no build stage")
	}
	built := false
	for _, run := range build.all("RUN") {
		if strings.Contains(run, "go build") && strings.Contains(run, "./cmd/lectern") {
			built = true
			if !strings.Contains(run, "CGO_ENABLED=0") {
				t.Errorf("Dockerfile: go build without CGO_ENABLED=0: the binary would not be static")
			}
			if !strings.Contains(run, "-o /out/lectern") {
				t.Errorf("Dockerfile: go build does not write /out/lectern")
			}
		}
	}
	if !built {
		t.Error("Dockerfile: the build stage does not build ./cmd/lectern")
	}
	// The last stage is what `docker build` builds without --target: the small runtime image.
	var last string
	data, _ := os.ReadFile("Dockerfile")
	for _, m := range regexp.MustCompile(`(?mi)^FROM\s+\S+\s+AS\s+(\S+)`).FindAllStringSubmatch(string(data), -1) {
		last = m[1]
	}
	if last != "runtime" {
		t.Errorf("Dockerfile: the last stage is %q, want runtime (the default target)", last)
	}
	for _, target := range []string{"runtime", "worker"} {
		s := stages[target]
		if s == nil {
			continue
		}
		if !contains(s.all("COPY"), "--from=build /out/lectern /usr/local/bin/lectern") {
			t.Errorf("Dockerfile stage %s: does not copy the built lectern to /usr/local/bin/lectern", target)
		}
		var entry []string
		if e := s.all("ENTRYPOINT"); len(e) != 1 || json.Unmarshal([]byte(e[0]), &entry) != nil || len(entry) != 1 || entry[0] != "/usr/local/bin/lectern" {
			t.Errorf("Dockerfile stage %s: ENTRYPOINT %v, want [\"/usr/local/bin/lectern\"] (exec form)", target, e)
		}
		if u := s.all("USER"); len(u) == 0 || strings.HasPrefix(u[len(u)-1], "0") || strings.HasPrefix(u[len(u)-1], "root") {
			t.Errorf("Dockerfile stage %s: USER %v, want a non-root user", target, u)
		}
		// An ENV LECTERN_* must be a flag of a role the image runs.
		for _, e := range s.all("ENV") {
			for _, kv := range strings.Fields(e) {
				k, _, _ := strings.Cut(kv, "=")
				if !strings.HasPrefix(k, "LECTERN_") {
					continue
				}
				found := false
				for _, r := range targetRoles[target] {
					if rl, err := lecternRole(r); err == nil && rl.envs[k] != "" {
						found = true
					}
				}
				if !found {
					t.Errorf("Dockerfile stage %s: ENV %s is no flag of %v", target, k, targetRoles[target])
				}
			}
		}
	}
	worker := stages["worker"]
	if worker != nil {
		apt := strings.Join(worker.all("RUN"), " ")
		if !regexp.MustCompile(`apt-get install .*\bffmpeg\b`).MatchString(apt) {
			t.Error("Dockerfile stage worker: does not install ffmpeg (workers run it, ingest runs ffprobe)")
		}
	}
	// The build context leaves out what builds and tests leave behind, but not what the stages copy.
	ignore, err := os.ReadFile("../.dockerignore")
	if err != nil {
		t.Fatalf(".dockerignore: %v", err)
	}
	for _, need := range []string{"go.mod", "go.sum", "cmd", "internal", "internal/web/package.json", "internal/web/package-lock.json"} {
		for _, pat := range strings.Fields(string(ignore)) {
			if strings.HasPrefix(pat, "#") {
				continue
			}
			if ok, _ := filepath.Match(strings.TrimSuffix(pat, "/"), need); ok {
				t.Errorf(".dockerignore: %s leaves out %s, which the build needs", pat, need)
			}
		}
	}
	if !strings.Contains(string(ignore), "node_modules") {
		t.Error(".dockerignore: node_modules would be sent to the build (the web stage installs its own)")
	}
}
