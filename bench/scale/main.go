// Command scale is the proof that the CDN tier carries a class start of 10 000 students on this
// machine (issue 8): `lectern loadtest` against 2 regions x 2 edges, an origin and MinIO on loopback,
// once with every mechanism on and once with each of request collapsing, the regional peer group and
// prefetch switched off, to show what each contributes. bench/scale.sh builds lectern and puthls,
// makes and transcodes the lecture, and runs it.
//
// The stack is what a deployment runs, each role its own process on 127.0.0.1 from -port on: MinIO
// (one bucket, kept across runs), `lectern origin --storage s3://...` with signed playback and edge
// secrets, four `lectern edge` processes in two regions of a region map file (each edge's peer group
// is its region's two edges; --regions FILE --region R --self URL), and `lectern router --regions
// FILE`. The lecture (-hls, a `lectern transcode` output directory) is published with bench/puthls
// under -lectures lecture ids, as the transcoder stores a version. Each run starts origin, edges and
// router afresh (empty caches; MinIO stays), runs `lectern loadtest` with the students' signed tokens
// split over the two regions, reads every role's /metrics, and stops them again.
package main

import (
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/lectern/lectern/bench/internal/harness"
)

var (
	bin      = flag.String("lectern", "", "lectern binary (required)")
	puthls   = flag.String("puthls", "", "bench/puthls binary (required)")
	minioBin = flag.String("minio", "", "MinIO server binary (required)")
	hlsDir   = flag.String("hls", "", "the transcoded lecture: a `lectern transcode` output directory (required)")
	lectures = flag.Int("lectures", 4, "lecture ids the lecture is published under; students pick one by Zipf popularity")
	students = flag.Int("students", 10000, "virtual students per run")
	speed    = flag.Float64("speed", 0.25, "loadtest --speed: lecture time runs this many times faster than wall time")
	watch    = flag.Duration("watch", 90*time.Second, "loadtest --watch: lecture time each student plays")
	ramp     = flag.Duration("ramp-window", 30*time.Second, "loadtest --ramp-window of the class-start ramp, in lecture time")
	extra    = flag.String("loadtest-args", "", "more loadtest flags, space-separated (e.g. --bandwidth 6 --bandwidth-sigma 0.5)")
	runList  = flag.String("runs", "all,nocollapse,nopeers,noprefetch", "runs, in order: all, nocollapse, nopeers, noprefetch, alloff")
	port     = flag.Int("port", 18400, "first of the 7 loopback ports used (MinIO, origin, 4 edges, router)")
	maxWall  = flag.Duration("max-wall", 8*time.Minute, "loadtest --max-wall: the longest one run may take")
	md       = flag.String("md", "", "also write the Markdown section to this file")
	command  = flag.String("command", "bash bench/scale.sh", "the command shown in the Markdown section")
	version  = flag.String("version", "", "lectern version shown in the Markdown section")
	clipNote = flag.String("clip", "", "what the lecture is, for the Markdown section")
	deadline = flag.Duration("timeout", 60*time.Minute, "give up (and clean up) after this long")
	keep     = flag.Bool("keep", false, "keep the work directory (logs, loadtest reports) and print where it is")
)

const section = "## 10 000 virtual students on 2 regions x 2 edges"

// Secrets of the bench stack, as operators pass them (environment variables).
var secretEnv = []string{
	"LECTERN_PLAYBACK_KEYS=k1:" + strings.Repeat("5c", 32),
	"LECTERN_EDGE_SECRETS=" + strings.Repeat("e", 40),
	"LECTERN_ORIGIN_SECRET=" + strings.Repeat("e", 40),
	"LECTERN_PEER_SECRET=" + strings.Repeat("p", 40),
	"LECTERN_LOG_LEVEL=warn",
}

const (
	minioUser, minioPassword = "lectern", "lectern-secret-key"
	bucket                   = "lectures"
)

var (
	procs   = &harness.Procs{} // Dir is set once the work directory exists
	workDir string             // removed at the end unless -keep
)

func main() {
	flag.Parse()
	if *bin == "" || *puthls == "" || *minioBin == "" || *hlsDir == "" || *lectures < 1 || *students < 1 {
		flag.Usage()
		os.Exit(2)
	}
	harness.Main(*deadline, procs, func() {
		if !*keep && workDir != "" {
			os.RemoveAll(workDir)
		}
	}, logf, run)
}

func logf(format string, args ...any) { fmt.Fprintf(os.Stderr, "scale: "+format+"\n", args...) }

// ablation is one run's setting of the edges.
type ablation struct {
	name, label string
	edgeArgs    []string
	peers       bool // edges in their region's peer group (--regions); else each edge alone
}

var ablations = []ablation{
	{"all", "all on", nil, true},
	{"nocollapse", "collapsing off", []string{"--collapse=false"}, true},
	{"nopeers", "peer group off", nil, false},
	{"noprefetch", "prefetch off", []string{"--prefetch", "0"}, true},
	{"alloff", "all off", []string{"--collapse=false", "--prefetch", "0"}, false},
}

// stack is the bench's processes and where they listen (host:port).
type stack struct {
	work, regions, storage string
	minio, origin, router  string
	edges                  [2][2]string // by region, then edge
	regionNames            [2]string
	playlists              []string // /hls/{id}/v1/master.m3u8
}

func run(ctx context.Context) error {
	var abl []ablation
	for name := range strings.SplitSeq(*runList, ",") {
		i := slicesIndex(ablations, strings.TrimSpace(name))
		if i < 0 {
			return fmt.Errorf("-runs: unknown run %q (all, nocollapse, nopeers, noprefetch, alloff)", name)
		}
		abl = append(abl, ablations[i])
	}
	if _, err := os.Stat(filepath.Join(*hlsDir, "master.m3u8")); err != nil {
		return fmt.Errorf("-hls: %w", err)
	}
	work, err := os.MkdirTemp("", "lectern-scale-")
	if err != nil {
		return err
	}
	workDir, procs.Dir = work, work
	if *keep {
		logf("work directory: %s", work)
	}
	addr := func(i int) string { return fmt.Sprintf("127.0.0.1:%d", *port+i) }
	for i := range 7 {
		if c, err := net.DialTimeout("tcp", addr(i), 200*time.Millisecond); err == nil {
			c.Close()
			return fmt.Errorf("%s is in use (another benchmark running?)", addr(i))
		}
	}
	s := &stack{work: work, regions: filepath.Join(work, "regions.json"), minio: addr(0), origin: addr(1), router: addr(6),
		edges: [2][2]string{{addr(2), addr(3)}, {addr(4), addr(5)}}, regionNames: [2]string{"north", "south"}}
	s.storage = fmt.Sprintf("s3://%s?endpoint=%s&access_key=%s&secret_key=%s&secure=false&region=us-east-1",
		bucket, s.minio, minioUser, minioPassword)
	if err := s.writeRegionMap(); err != nil {
		return err
	}
	if err := s.startMinIO(); err != nil {
		return err
	}
	if err := s.publish(ctx); err != nil {
		return err
	}

	r := report{students: *students, loadBefore: harness.LoadAvg(), ladder: ladder(*hlsDir), objects: countObjects(*hlsDir)}
	for _, a := range abl {
		logf("run %q (%s): %d students", a.name, a.label, *students)
		res, err := s.runOnce(ctx, a)
		if err != nil {
			return fmt.Errorf("run %s: %w", a.name, err)
		}
		logf("  %s", res.summary())
		r.runs = append(r.runs, res)
	}
	r.loadAfter = harness.LoadAvg()
	text := r.markdown(s)
	fmt.Print(text)
	if *md != "" {
		return os.WriteFile(*md, []byte(text), 0o644)
	}
	return nil
}

func slicesIndex(as []ablation, name string) int {
	for i, a := range as {
		if a.name == name {
			return i
		}
	}
	return -1
}

// writeRegionMap writes the two regions, each the other's neighbour, with their two edges.
func (s *stack) writeRegionMap() error {
	type edge struct {
		URL string `json:"url"`
	}
	type region struct {
		Edges      []edge   `json:"edges"`
		Neighbours []string `json:"neighbours"`
	}
	m := struct {
		Default string            `json:"default"`
		Regions map[string]region `json:"regions"`
	}{Default: s.regionNames[0], Regions: map[string]region{}}
	for i, name := range s.regionNames {
		m.Regions[name] = region{Edges: []edge{{"http://" + s.edges[i][0]}, {"http://" + s.edges[i][1]}},
			Neighbours: []string{s.regionNames[1-i]}}
	}
	b, err := json.MarshalIndent(m, "", "  ")
	if err != nil {
		return err
	}
	return os.WriteFile(s.regions, b, 0o644)
}

func (s *stack) startMinIO() error {
	data := filepath.Join(s.work, "minio")
	if err := os.Mkdir(data, 0o755); err != nil {
		return err
	}
	env := []string{"MINIO_ROOT_USER=" + minioUser, "MINIO_ROOT_PASSWORD=" + minioPassword, "MINIO_BROWSER=off",
		"MINIO_PROMETHEUS_AUTH_TYPE=public"}
	logf("starting MinIO on %s", s.minio)
	_, err := procs.Start("minio", "http://"+s.minio+"/minio/health/live", env, *minioBin,
		"server", "--quiet", "--address", s.minio, data)
	return err
}

// publish stores the lecture under each lecture id with bench/puthls, as a transcode would.
func (s *stack) publish(ctx context.Context) error {
	logf("publishing %s under %d lecture ids", *hlsDir, *lectures)
	for i := range *lectures {
		id := fmt.Sprintf("benchscalelect%c%c", 'a'+i/26, 'a'+i%26) // 16 characters of [a-z2-7]
		prefix := "hls/" + id + "/v1"
		cmd := exec.CommandContext(ctx, *puthls, "-storage", s.storage+"&create=true", "-prefix", prefix, *hlsDir)
		cmd.Stdout = io.Discard
		var stderr bytes.Buffer
		cmd.Stderr = &stderr
		if err := cmd.Run(); err != nil {
			return fmt.Errorf("puthls %s: %w\n%s", prefix, err, stderr.String())
		}
		s.playlists = append(s.playlists, "/"+prefix+"/master.m3u8")
	}
	return nil
}

// running are the roles of one run.
type running struct {
	origin, router *harness.Proc
	edges          []*harness.Proc
}

func (rn running) stop() {
	all := append([]*harness.Proc{rn.router}, rn.edges...)
	for _, p := range append(all, rn.origin) {
		if p != nil {
			p.Stop()
			procs.Forget(p)
		}
	}
}

// startRoles starts origin, the four edges with a's settings, and the router, each fresh.
func (s *stack) startRoles(a ablation) (running, error) {
	var rn running
	var err error
	rn.origin, err = procs.Start(a.name+"-origin", "http://"+s.origin+"/readyz", secretEnv, *bin, "origin",
		"--listen", s.origin, "--storage", s.storage)
	if err != nil {
		return rn, err
	}
	for i, region := range s.regionNames {
		for j, e := range s.edges[i] {
			args := []string{"edge", "--listen", e, "--upstream", "http://" + s.origin}
			if a.peers {
				args = append(args, "--regions", s.regions, "--region", region, "--self", "http://"+e)
			}
			p, err := procs.Start(fmt.Sprintf("%s-edge-%s-%d", a.name, region, j+1), "http://"+e+"/readyz", secretEnv, *bin,
				append(args, a.edgeArgs...)...)
			if err != nil {
				return rn, err
			}
			rn.edges = append(rn.edges, p)
		}
	}
	rn.router, err = procs.Start(a.name+"-router", "http://"+s.router+"/readyz", secretEnv, *bin, "router",
		"--listen", s.router, "--regions", s.regions, "--probe-interval", "500ms")
	if err != nil {
		return rn, err
	}
	// The router probes every 500 ms: after two intervals every edge it knows has answered a probe.
	time.Sleep(1200 * time.Millisecond)
	return rn, nil
}

func (s *stack) edgeURLs() []string {
	var out []string
	for _, r := range s.edges {
		for _, e := range r {
			out = append(out, "http://"+e)
		}
	}
	return out
}

// runOnce runs the students against a fresh stack set up as a says.
func (s *stack) runOnce(ctx context.Context, a ablation) (result, error) {
	res := result{ablation: a}
	rn, err := s.startRoles(a)
	defer rn.stop()
	if err != nil {
		return res, err
	}
	minioBefore := s.minioRequests()
	var metricURLs []string
	for _, e := range s.edgeURLs() {
		metricURLs = append(metricURLs, e+"/metrics")
	}
	jsonPath := filepath.Join(s.work, a.name+"-loadtest.json")
	args := []string{"loadtest", "--target", "http://" + s.router, "--playlist", strings.Join(s.playlists, ","),
		"--regions", s.regionNames[0] + ":1," + s.regionNames[1] + ":1",
		"--students", strconv.Itoa(*students), "--ramp", "class-start", "--ramp-window", ramp.String(),
		"--speed", strconv.FormatFloat(*speed, 'f', -1, 64), "--watch", watch.String(),
		"--origin-metrics", "http://" + s.origin + "/metrics", "--edge-metrics", strings.Join(metricURLs, ","),
		"--max-wall", maxWall.String(), "--json", jsonPath, "--seed", "1"}
	args = append(args, strings.Fields(*extra)...)
	res.command = "lectern " + strings.Join(args, " ")
	logFile, err := os.Create(filepath.Join(s.work, a.name+"-loadtest.log"))
	if err != nil {
		return res, err
	}
	defer logFile.Close()
	cmd := exec.CommandContext(ctx, *bin, args...)
	cmd.Env = append(os.Environ(), secretEnv...)
	cmd.Stdout, cmd.Stderr = logFile, logFile
	// Roles' CPU time from here on: what the run cost, start-up left out.
	before := cpuOf(rn)
	began := time.Now()
	stopSampling := res.sampleMachine()
	runErr := cmd.Run()
	stopSampling()
	res.elapsed = time.Since(began)
	if cmd.ProcessState != nil {
		res.cpu.loadtest = cmd.ProcessState.UserTime() + cmd.ProcessState.SystemTime()
	}
	after := cpuOf(rn)
	res.cpu.origin, res.cpu.edges, res.cpu.router = after.origin-before.origin, after.edges-before.edges, after.router-before.router
	if runErr != nil {
		// --fail is not given, so an error is the loadtest's own failure, not the students'.
		return res, fmt.Errorf("loadtest: %w\n%s", runErr, harness.TailFile(logFile.Name()))
	}
	b, err := os.ReadFile(jsonPath)
	if err != nil {
		return res, err
	}
	if err := json.Unmarshal(b, &res.lt); err != nil {
		return res, fmt.Errorf("loadtest report %s: %w", jsonPath, err)
	}
	if res.lt.Origin == nil || res.lt.Edges == nil {
		return res, fmt.Errorf("loadtest report %s: no origin or edge counters (were --origin-metrics and --edge-metrics given?)", jsonPath)
	}
	for _, p := range rn.edges {
		if p.Exited() {
			return res, fmt.Errorf("%s died during the run:\n%s", p.Name, harness.TailFile(filepath.Join(s.work, p.Name+".log")))
		}
	}
	res.originMetrics = scrape("http://" + s.origin + "/metrics")
	for _, e := range s.edgeURLs() {
		res.edgeMetrics = res.edgeMetrics.add(scrape(e + "/metrics"))
	}
	res.minioRequests = -1
	if after := s.minioRequests(); minioBefore >= 0 && after >= 0 {
		res.minioRequests = after - minioBefore
	}
	return res, nil
}

// sampleMachine measures how busy the machine's processors are from now until the returned function
// is called: on the whole (busyMean) and over the busiest 5 s (busyPeak), as shares of all cores.
func (res *result) sampleMachine() (stop func()) {
	done, finished := make(chan struct{}), make(chan struct{})
	b0, t0 := harness.CPUTimes()
	go func() {
		defer close(finished)
		tick := time.NewTicker(5 * time.Second)
		defer tick.Stop()
		pb, pt := b0, t0
		for {
			select {
			case <-done:
				return
			case <-tick.C:
			}
			b, t := harness.CPUTimes()
			if t > pt {
				res.busyPeak = max(res.busyPeak, float64(b-pb)/float64(t-pt))
			}
			pb, pt = b, t
		}
	}()
	return func() {
		close(done)
		<-finished
		if b, t := harness.CPUTimes(); t > t0 {
			res.busyMean = float64(b-b0) / float64(t-t0)
		}
	}
}

// cpuTimes is processor time by role.
type cpuTimes struct{ loadtest, origin, edges, router time.Duration }

func cpuOf(rn running) cpuTimes {
	var c cpuTimes
	c.origin, c.router = rn.origin.CPU(), rn.router.CPU()
	for _, e := range rn.edges {
		c.edges += e.CPU()
	}
	return c
}

// minioRequests is MinIO's count of S3 requests so far, or -1 when its metrics cannot be read. MinIO
// updates its cluster metrics lazily; the count is read after the run's roles have settled.
func (s *stack) minioRequests() float64 {
	m := scrape("http://" + s.minio + "/minio/v2/metrics/node")
	if m == nil {
		return -1
	}
	return m.sum("minio_s3_requests_total")
}

// metrics are the samples of a Prometheus text exposition, summed by metric name over their labels.
type metrics map[string]float64

func scrape(url string) metrics {
	c := http.Client{Timeout: 5 * time.Second}
	resp, err := c.Get(url)
	if err != nil {
		return nil
	}
	defer resp.Body.Close()
	if resp.StatusCode != 200 {
		return nil
	}
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return nil
	}
	return parseMetrics(b)
}

// parseMetrics reads the text format: "name{labels} value" lines, comments skipped. Samples of one
// name are summed; for labelled counters of one name that is their total. A label "name=..." is kept
// too, as name{label=value}, for the few per-label figures the report shows.
func parseMetrics(b []byte) metrics {
	m := metrics{}
	for line := range strings.SplitSeq(string(b), "\n") {
		if line == "" || line[0] == '#' {
			continue
		}
		i := strings.LastIndexByte(line, ' ')
		if i < 0 {
			continue
		}
		v, err := strconv.ParseFloat(line[i+1:], 64)
		if err != nil {
			continue
		}
		series := line[:i]
		name, labels, _ := strings.Cut(series, "{")
		m[name] += v
		if labels != "" {
			m[series] += v
		}
	}
	return m
}

func (m metrics) sum(name string) float64 { return m[name] }

func (m metrics) add(o metrics) metrics {
	if m == nil {
		m = metrics{}
	}
	for k, v := range o {
		m[k] += v
	}
	return m
}
