package deploy

import (
	"encoding/json"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"sigs.k8s.io/yaml"
)

// composeService is the part of the Compose specification docker-compose.yml uses; decoding is
// strict, so a misspelt or unexpected key fails the test.
type composeService struct {
	Image string `json:"image"`
	Build *struct {
		Context    string `json:"context"`
		Dockerfile string `json:"dockerfile"`
		Target     string `json:"target"`
	} `json:"build"`
	Command     []string          `json:"command"`
	Environment map[string]string `json:"environment"`
	Ports       []string          `json:"ports"`
	Volumes     []string          `json:"volumes"`
	DependsOn   map[string]struct {
		Condition string `json:"condition"`
	} `json:"depends_on"`
	Healthcheck *struct {
		Test     []string `json:"test"`
		Interval string   `json:"interval"`
		Timeout  string   `json:"timeout"`
		Retries  int      `json:"retries"`
	} `json:"healthcheck"`
	Restart string `json:"restart"`
}

type composeFile struct {
	Name     string                    `json:"name"`
	Services map[string]composeService `json:"services"`
	Volumes  map[string]*struct{}      `json:"volumes"`
}

// loadCompose reads a Compose file: the top level strictly except x- extension keys (where the
// file keeps its anchors), then the services strictly, with ${VAR:-default} interpolated to the
// default as `docker compose up` would with nothing set.
func loadCompose(t *testing.T, file string) *composeFile {
	t.Helper()
	data, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	j, err := yaml.YAMLToJSON(data)
	if err != nil {
		t.Fatalf("%s: %v", file, err)
	}
	var top map[string]json.RawMessage
	if err := json.Unmarshal(j, &top); err != nil {
		t.Fatalf("%s: %v", file, err)
	}
	rest := map[string]json.RawMessage{}
	for k, v := range top {
		if !strings.HasPrefix(k, "x-") {
			rest[k] = v
		}
	}
	j, _ = json.Marshal(rest)
	var cf composeFile
	if err := strictJSON(j, &cf); err != nil {
		t.Fatalf("%s: %v", file, err)
	}
	for name, s := range cf.Services {
		for k, v := range s.Environment {
			s.Environment[k] = interpolate(t, fmt.Sprintf("%s service %s env %s", file, name, k), v)
		}
	}
	return &cf
}

var composeVar = regexp.MustCompile(`\$\{([A-Za-z_][A-Za-z0-9_]*)(:?-([^}]*))?\}`)

// interpolate expands ${VAR:-default} and ${VAR-default} to the default; ${VAR} without one, and a $
// left over (an expression this test does not read), are errors.
func interpolate(t *testing.T, where, v string) string {
	out := composeVar.ReplaceAllStringFunc(v, func(ref string) string {
		m := composeVar.FindStringSubmatch(ref)
		if m[2] == "" {
			t.Errorf("%s: ${%s} has no default: `docker compose up` would not run as shipped", where, m[1])
		}
		return m[3]
	})
	if strings.Contains(out, "$") {
		t.Errorf("%s: %q: an interpolation this test cannot read", where, v)
	}
	return out
}

// dockerfileStages returns the stage names of deploy/Dockerfile (FROM ... AS name).
func dockerfileStages(t *testing.T) map[string]bool {
	data, err := os.ReadFile("Dockerfile")
	if err != nil {
		t.Fatal(err)
	}
	stages := map[string]bool{}
	for _, m := range regexp.MustCompile(`(?mi)^FROM\s+\S+\s+AS\s+(\S+)\s*$`).FindAllStringSubmatch(string(data), -1) {
		stages[m[1]] = true
	}
	return stages
}

// composeLectern is a lectern service of the Compose file.
type composeLectern struct {
	name  string
	s     composeService
	cfg   *config
	ports map[int]int // container port -> host port
	// binds are the host files and directories mounted: container path -> host path (relative to deploy/).
	binds map[string]string
	// named are the named volumes mounted: container path -> volume.
	named map[string]string
}

// targetRoles are the roles each image of deploy/Dockerfile can run (ingest needs ffprobe, the
// worker ffmpeg: only the worker target has them).
var targetRoles = map[string][]string{
	"runtime": {"origin", "edge", "router"},
	"worker":  {"ingest", "worker"},
}

func TestCompose(t *testing.T) {
	cf := loadCompose(t, "docker-compose.yml")
	stages := dockerfileStages(t)
	for _, want := range []string{"runtime", "worker"} {
		if !stages[want] {
			t.Errorf("Dockerfile: no stage %q", want)
		}
	}
	lecterns := map[string]*composeLectern{}
	var cfgs []*config
	for name, s := range cf.Services {
		where := "docker-compose.yml service " + name
		for dep := range s.DependsOn {
			if _, ok := cf.Services[dep]; !ok {
				t.Errorf("%s: depends_on %s, which is no service", where, dep)
			}
		}
		cl := &composeLectern{name: name, s: s, ports: map[int]int{}, binds: map[string]string{}, named: map[string]string{}}
		for _, p := range s.Ports {
			parts := strings.Split(p, ":")
			host, err1 := strconv.Atoi(parts[0])
			cont, err2 := strconv.Atoi(parts[len(parts)-1])
			if len(parts) != 2 || err1 != nil || err2 != nil {
				t.Errorf("%s: port %q: want HOST:CONTAINER", where, p)
				continue
			}
			cl.ports[cont] = host
		}
		for _, v := range s.Volumes {
			parts := strings.Split(v, ":")
			if len(parts) < 2 || len(parts) > 3 || (len(parts) == 3 && parts[2] != "ro" && parts[2] != "rw") {
				t.Errorf("%s: volume %q: want SOURCE:TARGET[:ro]", where, v)
				continue
			}
			if strings.HasPrefix(parts[0], ".") {
				if _, err := os.Stat(parts[0]); err != nil {
					t.Errorf("%s: bind mount %q: %v", where, v, err)
				}
				cl.binds[parts[1]] = parts[0]
			} else {
				if _, ok := cf.Volumes[parts[0]]; !ok {
					t.Errorf("%s: volume %q is not declared under volumes:", where, parts[0])
				}
				cl.named[parts[1]] = parts[0]
			}
		}
		if s.Build == nil || s.Build.Dockerfile != "deploy/Dockerfile" {
			if strings.HasPrefix(s.Image, "lectern") {
				t.Errorf("%s: image %s but no build of deploy/Dockerfile", where, s.Image)
			}
			continue // not lectern
		}
		if s.Build.Context != ".." {
			t.Errorf("%s: build context %q, want .. (the repository root)", where, s.Build.Context)
		}
		cfg := checkContainer(t, container{where: where, args: s.Command, env: s.Environment})
		if cfg == nil {
			continue
		}
		cl.cfg = cfg
		if !stages[s.Build.Target] || !contains(targetRoles[s.Build.Target], cfg.role.name) {
			t.Errorf("%s: lectern %s built for target %q (want one of %v)", where, cfg.role.name, s.Build.Target, targetRoles)
		}
		listen := cfg.listenPort(t)
		for cont := range cl.ports {
			if cont != listen {
				t.Errorf("%s: publishes container port %d, but lectern %s listens on %d", where, cont, cfg.role.name, listen)
			}
		}
		if f := cfg.vals["regions"]; f != "" {
			host, ok := cl.binds[f]
			if !ok {
				t.Errorf("%s: --regions %s is not a mounted file", where, f)
			} else if data, err := os.ReadFile(host); err != nil {
				t.Errorf("%s: %v", where, err)
			} else {
				checkRegionMap(t, where+" "+host, data)
			}
		}
		if d := cfg.vals["disk-dir"]; d != "" && cl.named[d] == "" {
			t.Errorf("%s: --disk-dir %s is not a named volume: the cache would not outlive the container", where, d)
		}
		lecterns[name] = cl
		cfgs = append(cfgs, cfg)
	}
	count := map[string]int{}
	for _, l := range lecterns {
		count[l.cfg.role.name]++
	}
	for role, want := range map[string]int{"ingest": 1, "worker": 2, "origin": 1, "edge": 4, "router": 1} {
		if count[role] != want {
			t.Errorf("docker-compose.yml runs %d lectern %s, want %d", count[role], role, want)
		}
	}
	for _, need := range []string{"minio", "postgres", "prometheus", "grafana"} {
		if _, ok := cf.Services[need]; !ok {
			t.Errorf("docker-compose.yml: no %s service", need)
		}
	}
	checkSecretsAgree(t, cfgs)
	checkComposeURLs(t, cf, lecterns)
	checkComposeEdges(t, lecterns)
	checkPrometheus(t, cf, lecterns)
	checkGrafana(t, cf)
}

// resolveCompose finds the service a URL of the Compose network names and checks the port against
// what it listens on: a lectern service's --listen, or the listed port of the others.
func resolveCompose(cf *composeFile, lecterns map[string]*composeLectern, hostport string) (string, error) {
	host, port, err := net.SplitHostPort(hostport)
	if err != nil {
		return "", fmt.Errorf("%q: want HOST:PORT", hostport)
	}
	if _, ok := cf.Services[host]; !ok {
		return "", fmt.Errorf("%s: no service %s", hostport, host)
	}
	l, ok := lecterns[host]
	if !ok {
		return host, nil
	}
	_, lp, _ := net.SplitHostPort(l.cfg.vals["listen"])
	if lp != port {
		return "", fmt.Errorf("%s: lectern %s listens on %s", hostport, l.cfg.role.name, l.cfg.vals["listen"])
	}
	return host, nil
}

func checkComposeURLs(t *testing.T, cf *composeFile, lecterns map[string]*composeLectern) {
	for _, l := range lecterns {
		for flag, role := range map[string]string{"upstream": "origin", "purge-origins": "origin", "purge-edges": "edge"} {
			v := l.cfg.vals[flag]
			if v == "" {
				continue
			}
			for _, raw := range strings.Split(v, ",") {
				host, err := resolveCompose(cf, lecterns, strings.TrimPrefix(raw, "http://"))
				if err != nil {
					t.Errorf("%s: --%s %v", l.cfg.c.where, flag, err)
				} else if to := lecterns[host]; to == nil || to.cfg.role.name != role {
					t.Errorf("%s: --%s %s is not a lectern %s", l.cfg.c.where, flag, raw, role)
				}
			}
		}
		// The catalog and the storage endpoint are services of the file.
		if db := l.cfg.vals["db"]; strings.HasPrefix(db, "postgres://") {
			at := strings.LastIndex(db, "@")
			hostport, _, _ := strings.Cut(db[at+1:], "/")
			if _, err := resolveCompose(cf, lecterns, hostport); err != nil {
				t.Errorf("%s: --db: %v", l.cfg.c.where, err)
			}
		}
		if st := l.cfg.vals["storage"]; strings.HasPrefix(st, "s3://") {
			m := regexp.MustCompile(`[?&]endpoint=([^&]+)`).FindStringSubmatch(st)
			if m == nil {
				t.Errorf("%s: --storage %s has no endpoint", l.cfg.c.where, st)
			} else if _, err := resolveCompose(cf, lecterns, m[1]); err != nil {
				t.Errorf("%s: --storage: %v", l.cfg.c.where, err)
			}
		}
	}
	// Every edge is purged when a lecture is deleted.
	for _, l := range lecterns {
		if l.cfg.role.name != "ingest" {
			continue
		}
		for _, e := range lecterns {
			if e.cfg.role.name == "edge" && !contains(strings.Split(l.cfg.vals["purge-edges"], ","), "http://"+e.name+":"+strconv.Itoa(e.cfg.listenPort(t))) {
				t.Errorf("%s: --purge-edges does not list %s", l.cfg.c.where, e.name)
			}
		}
	}
}

// checkComposeEdges checks every edge against the region map it follows: its --self is its URL in
// its --region, reachable in the Compose network and, published on the same port, from the host.
func checkComposeEdges(t *testing.T, lecterns map[string]*composeLectern) {
	listed := 0
	for _, l := range lecterns {
		if l.cfg.role.name != "edge" {
			continue
		}
		where := l.cfg.c.where
		data, err := os.ReadFile(l.binds[l.cfg.vals["regions"]])
		if err != nil {
			t.Errorf("%s: --regions: %v", where, err)
			continue
		}
		m := checkRegionMap(t, where, data)
		if m == nil {
			continue
		}
		listed = 0
		for _, r := range m.Regions {
			listed += len(r.Edges)
		}
		port := l.cfg.listenPort(t)
		want := fmt.Sprintf("http://%s:%d", l.name, port)
		if l.cfg.vals["self"] != want {
			t.Errorf("%s: --self %q, want %s", where, l.cfg.vals["self"], want)
		}
		if !contains(regionEdges(m, l.cfg.vals["region"]), want) {
			t.Errorf("%s: %s is not an edge of region %q in the region map", where, want, l.cfg.vals["region"])
		}
		if l.ports[port] != port {
			t.Errorf("%s: publish %d:%d so that its region map URL works from the host too", where, port, port)
		}
	}
	edges := 0
	for _, l := range lecterns {
		if l.cfg.role.name == "edge" {
			edges++
		}
	}
	if listed != edges {
		t.Errorf("the region map lists %d edges, docker-compose.yml runs %d", listed, edges)
	}
}

// prometheusConfig is the part of Prometheus's configuration file prometheus.yml uses.
type prometheusConfig struct {
	Global struct {
		ScrapeInterval     string `json:"scrape_interval"`
		EvaluationInterval string `json:"evaluation_interval"`
	} `json:"global"`
	ScrapeConfigs []struct {
		JobName       string `json:"job_name"`
		MetricsPath   string `json:"metrics_path"`
		StaticConfigs []struct {
			Targets []string          `json:"targets"`
			Labels  map[string]string `json:"labels"`
		} `json:"static_configs"`
	} `json:"scrape_configs"`
}

func checkPrometheus(t *testing.T, cf *composeFile, lecterns map[string]*composeLectern) {
	const file = "prometheus/prometheus.yml"
	data, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	var pc prometheusConfig
	if err := strictYAML(data, &pc); err != nil {
		t.Fatalf("%s: %v", file, err)
	}
	if !mounts(cf.Services["prometheus"], "./"+file, "/etc/prometheus/prometheus.yml") {
		t.Errorf("docker-compose.yml: prometheus does not mount ./%s at /etc/prometheus/prometheus.yml", file)
	}
	scraped := map[string]int{}
	for _, sc := range pc.ScrapeConfigs {
		if sc.MetricsPath != "" && sc.MetricsPath != "/metrics" {
			t.Errorf("%s job %s: metrics_path %s, lectern serves /metrics", file, sc.JobName, sc.MetricsPath)
		}
		for _, st := range sc.StaticConfigs {
			for _, target := range st.Targets {
				host, err := resolveCompose(cf, lecterns, target)
				if err != nil {
					t.Errorf("%s job %s: target %v", file, sc.JobName, err)
					continue
				}
				if lecterns[host] == nil {
					t.Errorf("%s job %s: target %s is not a lectern service", file, sc.JobName, target)
				}
				scraped[host]++
			}
		}
	}
	for name := range lecterns {
		if scraped[name] != 1 {
			t.Errorf("%s: lectern service %s is scraped %d times, want once", file, name, scraped[name])
		}
	}
}

// mounts says whether a service bind-mounts host path src at dst.
func mounts(s composeService, src, dst string) bool {
	for _, v := range s.Volumes {
		parts := strings.Split(v, ":")
		if len(parts) >= 2 && filepath.Clean(parts[0]) == filepath.Clean(src) && parts[1] == dst {
			return true
		}
	}
	return false
}

// Grafana provisioning files, the parts used.
type grafanaDatasources struct {
	APIVersion  int `json:"apiVersion"`
	Datasources []struct {
		Name      string `json:"name"`
		UID       string `json:"uid"`
		Type      string `json:"type"`
		Access    string `json:"access"`
		URL       string `json:"url"`
		IsDefault bool   `json:"isDefault"`
		Editable  bool   `json:"editable"`
	} `json:"datasources"`
}

type grafanaProviders struct {
	APIVersion int `json:"apiVersion"`
	Providers  []struct {
		Name                  string `json:"name"`
		Folder                string `json:"folder"`
		Type                  string `json:"type"`
		DisableDeletion       bool   `json:"disableDeletion"`
		AllowUIUpdates        bool   `json:"allowUiUpdates"`
		UpdateIntervalSeconds int    `json:"updateIntervalSeconds"`
		Options               struct {
			Path string `json:"path"`
		} `json:"options"`
	} `json:"providers"`
}

type grafanaRef struct {
	Type string `json:"type"`
	UID  string `json:"uid"`
}

type grafanaDashboard struct {
	UID           string   `json:"uid"`
	Title         string   `json:"title"`
	Tags          []string `json:"tags"`
	Timezone      string   `json:"timezone"`
	SchemaVersion int      `json:"schemaVersion"`
	Version       int      `json:"version"`
	Refresh       string   `json:"refresh"`
	Editable      bool     `json:"editable"`
	Time          struct {
		From string `json:"from"`
		To   string `json:"to"`
	} `json:"time"`
	Panels []struct {
		ID          int        `json:"id"`
		Type        string     `json:"type"`
		Title       string     `json:"title"`
		Description string     `json:"description"`
		Datasource  grafanaRef `json:"datasource"`
		GridPos     struct {
			X int `json:"x"`
			Y int `json:"y"`
			W int `json:"w"`
			H int `json:"h"`
		} `json:"gridPos"`
		FieldConfig struct {
			Defaults struct {
				Unit string `json:"unit"`
			} `json:"defaults"`
			Overrides []struct{} `json:"overrides"`
		} `json:"fieldConfig"`
		Targets []struct {
			RefID        string     `json:"refId"`
			Datasource   grafanaRef `json:"datasource"`
			Expr         string     `json:"expr"`
			LegendFormat string     `json:"legendFormat"`
		} `json:"targets"`
	} `json:"panels"`
}

const dashboardFile = "grafana/dashboards/lectern.json"

func loadDashboard(t *testing.T) *grafanaDashboard {
	t.Helper()
	data, err := os.ReadFile(dashboardFile)
	if err != nil {
		t.Fatal(err)
	}
	var d grafanaDashboard
	if err := strictJSON(data, &d); err != nil {
		t.Fatalf("%s: %v", dashboardFile, err)
	}
	return &d
}

func checkGrafana(t *testing.T, cf *composeFile) {
	g, ok := cf.Services["grafana"]
	if !ok {
		return
	}
	const provisioning = "/etc/grafana/provisioning"
	if !mounts(g, "./grafana/provisioning", provisioning) {
		t.Fatalf("docker-compose.yml: grafana does not mount ./grafana/provisioning at %s", provisioning)
	}
	var ds grafanaDatasources
	data, err := os.ReadFile("grafana/provisioning/datasources/prometheus.yml")
	if err == nil {
		err = strictYAML(data, &ds)
	}
	if err != nil || len(ds.Datasources) != 1 {
		t.Fatalf("grafana datasource: %v (%d datasources, want 1)", err, len(ds.Datasources))
	}
	src := ds.Datasources[0]
	if src.Type != "prometheus" || !strings.HasPrefix(src.URL, "http://") {
		t.Errorf("grafana datasource: type %q url %q, want prometheus at http://", src.Type, src.URL)
	} else if host, err := resolveCompose(cf, nil, strings.TrimPrefix(src.URL, "http://")); err != nil || host != "prometheus" {
		t.Errorf("grafana datasource url %s: %v (want the prometheus service)", src.URL, err)
	}
	var pv grafanaProviders
	data, err = os.ReadFile("grafana/provisioning/dashboards/lectern.yml")
	if err == nil {
		err = strictYAML(data, &pv)
	}
	if err != nil || len(pv.Providers) != 1 {
		t.Fatalf("grafana dashboard provider: %v (%d providers, want 1)", err, len(pv.Providers))
	}
	if !mounts(g, "./"+filepath.Dir(dashboardFile), pv.Providers[0].Options.Path) {
		t.Errorf("docker-compose.yml: grafana does not mount ./%s at the provider's path %s", filepath.Dir(dashboardFile), pv.Providers[0].Options.Path)
	}
	d := loadDashboard(t)
	if d.UID == "" || len(d.Panels) == 0 {
		t.Fatalf("%s: no uid or no panels", dashboardFile)
	}
	ids := map[int]bool{}
	for _, p := range d.Panels {
		if ids[p.ID] {
			t.Errorf("%s: panel id %d twice", dashboardFile, p.ID)
		}
		ids[p.ID] = true
		if p.Datasource.UID != src.UID {
			t.Errorf("%s panel %q: datasource %q, want the provisioned %q", dashboardFile, p.Title, p.Datasource.UID, src.UID)
		}
		for _, tg := range p.Targets {
			if tg.Datasource.UID != src.UID {
				t.Errorf("%s panel %q query %s: datasource %q, want %q", dashboardFile, p.Title, tg.RefID, tg.Datasource.UID, src.UID)
			}
		}
	}
}
