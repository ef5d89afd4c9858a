// Command ttff measures the student player's time to first frame in headless Chromium over loopback,
// with the edge's cache cold and warm (issue 7: < 1 s cold, < 300 ms warm, median of 5), and the same
// lecture from nginx serving the published HLS files to a bare hls.js page, as a lower bound for what
// the browser and hls.js cost. bench/ttff.sh builds lectern, makes the lecture and runs it.
//
// The stack is what a deployment runs, each role its own process on 127.0.0.1: ingest (with
// --playback-base naming the router, signed playback keys), worker, origin, one edge (memory tier only)
// in a one-region map, and the router. The lecture is uploaded as a teacher does (POST
// /api/v1/lectures) and transcoded by the worker. Then, for each of -runs rounds:
//
//   - cold: the edge process is restarted (its cache is in memory: empty), the origin stays up as in
//     production; a fresh Chromium with a fresh profile (no browser cache) opens /watch/{id} on ingest,
//     the page a student opens, which plays through the router's 302 to the edge;
//   - warm: the same with the edge kept (it served the cold run just before);
//   - anchor: a fresh Chromium opens a static page from nginx that plays the same master playlist, read
//     from the file store's directory, with the same hls.js and no other script.
//
// Every page is "pressed play" at DOMContentLoaded (muted, autoplay allowed), and the figure is
// performance.now() at the video's first 'playing' event: ms since the navigation started
// (window.lecternPlayer.firstFrameMs() on the student player, the same on the anchor page). Resource
// Timing gives the breakdown: when the HTML page, hls.js, the multivariant playlist, the first media
// playlist and the first segment had arrived. Before the rounds, one "first view" run plays the lecture
// right after it is published (edge and origin both cold).
package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"time"

	"github.com/chromedp/cdproto/page"
	"github.com/chromedp/chromedp"

	"github.com/lectern/lectern/bench/internal/harness"
)

var (
	bin      = flag.String("lectern", "", "lectern binary (required)")
	assets   = flag.String("assets", "internal/web/node_modules", "node_modules holding hls.js (ingest's --assets-dir)")
	clip     = flag.String("clip", "", "the lecture to upload, an MP4 (required)")
	browser  = flag.String("chromium", "", "Chromium binary (default: chromium, chromium-browser or google-chrome on PATH)")
	runs     = flag.Int("runs", 5, "rounds (cold, warm and anchor runs each)")
	anchor   = flag.Bool("nginx", true, "run the nginx anchor")
	port     = flag.Int("port", 18300, "first of the 6 loopback ports used (ingest, worker, origin, edge, router, nginx)")
	md       = flag.String("md", "", "also write the Markdown section to this file")
	command  = flag.String("command", "bash bench/ttff.sh", "the command shown in the Markdown section")
	version  = flag.String("version", "", "lectern version shown in the Markdown section")
	deadline = flag.Duration("timeout", 20*time.Minute, "give up (and clean up) after this long")
	keep     = flag.Bool("keep", false, "keep the work directory (logs, store) and print where it is")
	trace    = flag.Bool("trace", false, "print every resource each run loaded (path, start, end, bytes)")
)

const section = "## Time to first frame"

func main() {
	flag.Parse()
	if *bin == "" || *clip == "" {
		flag.Usage()
		os.Exit(2)
	}
	harness.Main(*deadline, procs, func() {
		if !*keep && workDir != "" {
			os.RemoveAll(workDir)
		}
	}, logf, run)
}

func logf(format string, args ...any) { fmt.Fprintf(os.Stderr, "ttff: "+format+"\n", args...) }

var (
	procs   = &harness.Procs{} // Dir is set once the work directory exists
	workDir string             // removed at the end unless -keep
)

// --- the stack ----------------------------------------------------------------------------------

type lecture struct {
	ID          string `json:"id"`
	Status      string `json:"status"`
	Error       string `json:"error"`
	PlaybackURL string `json:"playback_url"`
}

type stack struct {
	work, store, regions         string
	ingest, origin, edge, router string // host:port
	nginxA                       string
	env                          []string
	edgeProc                     *harness.Proc
	lec                          lecture
	masterPath                   string // /hls/{id}/v{n}/master.m3u8
}

func run(ctx context.Context) error {
	if *browser == "" {
		for _, name := range []string{"chromium", "chromium-browser", "google-chrome"} {
			if p, err := exec.LookPath(name); err == nil {
				*browser = p
				break
			}
		}
		if *browser == "" {
			return errors.New("no Chromium on PATH (apt-get install chromium)")
		}
	}
	hlsJS := filepath.Join(*assets, "hls.js", "dist", "hls.min.js")
	if _, err := os.Stat(hlsJS); err != nil {
		return fmt.Errorf("hls.js is not installed (%v): run `make web`", err)
	}
	work, err := os.MkdirTemp("", "lectern-ttff-")
	if err != nil {
		return err
	}
	workDir = work
	procs.Dir = work
	if *keep {
		logf("work directory: %s", work)
	} else {
		defer os.RemoveAll(work)
	}
	if err := os.Chmod(work, 0o755); err != nil { // nginx's worker reads the store
		return err
	}
	addr := func(i int) string { return fmt.Sprintf("127.0.0.1:%d", *port+i) }
	for i := range 6 {
		if c, err := net.DialTimeout("tcp", addr(i), 200*time.Millisecond); err == nil {
			c.Close()
			return fmt.Errorf("%s is in use (another benchmark running?)", addr(i))
		}
	}
	s := &stack{work: work, store: filepath.Join(work, "objects"), regions: filepath.Join(work, "regions.json"),
		ingest: addr(0), origin: addr(2), edge: addr(3), router: addr(4), nginxA: addr(5)}
	worker, origin := addr(1), s.origin
	db := "sqlite://" + filepath.Join(work, "lectern.db")
	store := "file://" + s.store
	m := fmt.Sprintf(`{"default": "local", "regions": {"local": {"edges": [{"url": "http://%s"}], "prefixes": ["127.0.0.0/8"]}}}`, s.edge)
	if err := os.WriteFile(s.regions, []byte(m), 0o644); err != nil {
		return err
	}
	// Signed playback, as deployed: ingest mints, the router reads the token and the edge verifies it.
	s.env = []string{"LECTERN_PLAYBACK_KEYS=k1:" + strings.Repeat("5e", 32), "LECTERN_EDGE_SECRETS=" + strings.Repeat("e", 40),
		"LECTERN_ORIGIN_SECRET=" + strings.Repeat("e", 40), "LECTERN_PEER_SECRET=" + strings.Repeat("p", 40), "LECTERN_LOG_LEVEL=warn"}
	for _, dir := range []string{"tmp-ingest", "tmp-worker"} {
		if err := os.Mkdir(filepath.Join(work, dir), 0o755); err != nil {
			return err
		}
	}
	out, err := exec.CommandContext(ctx, *bin, "teacher", "add", "Bench", "--db", db).Output()
	if err != nil {
		return fmt.Errorf("teacher add: %w", err)
	}
	token := strings.TrimSpace(string(out))

	logf("starting origin, worker, ingest, edge and router on %s..%d", addr(0), *port+4)
	if _, err := procs.Start("origin", "http://"+origin+"/healthz", s.env, *bin, "origin", "--listen", origin, "--storage", store); err != nil {
		return err
	}
	if _, err := procs.Start("worker", "http://"+worker+"/healthz", s.env, *bin, "worker", "--listen", worker, "--db", db,
		"--storage", store, "--tmp", filepath.Join(work, "tmp-worker")); err != nil {
		return err
	}
	if _, err := procs.Start("ingest", "http://"+s.ingest+"/healthz", s.env, *bin, "ingest", "--listen", s.ingest, "--db", db,
		"--storage", store, "--tmp", filepath.Join(work, "tmp-ingest"), "--assets-dir", *assets, "--playback-base", "http://"+s.router); err != nil {
		return err
	}
	if err := s.startEdge(); err != nil {
		return err
	}
	if _, err := procs.Start("router", "http://"+s.router+"/readyz", s.env, *bin, "router", "--listen", s.router,
		"--regions", s.regions, "--probe-interval", "500ms"); err != nil {
		return err
	}

	logf("uploading %s and waiting for the transcode", *clip)
	uploaded := time.Now()
	if err := s.upload(ctx, token); err != nil {
		return err
	}
	readyIn := time.Since(uploaded)
	i := strings.Index(s.lec.PlaybackURL, "/hls/")
	if i < 0 || !strings.HasPrefix(s.lec.PlaybackURL, "http://"+s.router+"/s/") {
		return fmt.Errorf("playback URL %q is not a signed router URL", s.lec.PlaybackURL)
	}
	s.masterPath = s.lec.PlaybackURL[i:]
	logf("lecture %s ready in %v; playback URL %s", s.lec.ID, readyIn.Round(time.Second), s.lec.PlaybackURL)

	if *anchor {
		if err := s.startNginx(hlsJS); err != nil {
			return err
		}
	}

	watch := "http://" + s.ingest + "/watch/" + s.lec.ID
	r := results{readyIn: readyIn, loadBefore: harness.LoadAvg()}
	logf("first view (edge and origin cold)")
	if r.first, err = measure(ctx, work, watch); err != nil {
		return fmt.Errorf("first view: %w", err)
	}
	logf("  %s", r.first)
	for n := 1; n <= *runs; n++ {
		if err := s.restartEdge(); err != nil {
			return err
		}
		c, err := measure(ctx, work, watch)
		if err != nil {
			return fmt.Errorf("cold run %d: %w", n, err)
		}
		logf("round %d cold:   %s", n, c)
		w, err := measure(ctx, work, watch)
		if err != nil {
			return fmt.Errorf("warm run %d: %w", n, err)
		}
		logf("round %d warm:   %s", n, w)
		r.cold, r.warm = append(r.cold, c), append(r.warm, w)
		if *anchor {
			a, err := measure(ctx, work, "http://"+s.nginxA+"/ttff.html")
			if err != nil {
				return fmt.Errorf("anchor run %d: %w", n, err)
			}
			logf("round %d anchor: %s", n, a)
			r.anchor = append(r.anchor, a)
		}
	}
	text := r.report(s)
	fmt.Print(text)
	if *md != "" {
		return os.WriteFile(*md, []byte(text), 0o644)
	}
	return nil
}

func (s *stack) startEdge() error {
	p, err := procs.Start("edge", "http://"+s.edge+"/readyz", s.env, *bin, "edge", "--listen", s.edge,
		"--upstream", "http://"+s.origin,
		"--regions", s.regions, "--region", "local", "--self", "http://"+s.edge)
	s.edgeProc = p
	return err
}

// restartEdge stops the edge and starts a new one on the same port (its memory cache starts empty),
// then waits until the router has probed it back into service.
func (s *stack) restartEdge() error {
	s.edgeProc.Stop()
	procs.Forget(s.edgeProc)
	if err := s.startEdge(); err != nil {
		return err
	}
	// The router probes every 500 ms and takes an edge out after 2 failed probes: two intervals after
	// the edge answers, the router's view is current.
	time.Sleep(1200 * time.Millisecond)
	return nil
}

func (s *stack) upload(ctx context.Context, token string) error {
	f, err := os.Open(*clip)
	if err != nil {
		return err
	}
	defer f.Close()
	req, _ := http.NewRequestWithContext(ctx, "POST", "http://"+s.ingest+"/api/v1/lectures?course=Physics&title=Waves", f)
	req.Header.Set("Authorization", "Bearer "+token)
	req.Header.Set("Content-Type", "video/mp4")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 201 {
		return fmt.Errorf("upload: %d %s", resp.StatusCode, body)
	}
	if err := json.Unmarshal(body, &s.lec); err != nil {
		return fmt.Errorf("upload response %s: %w", body, err)
	}
	until := time.Now().Add(10 * time.Minute)
	for s.lec.Status != "ready" {
		if s.lec.Status == "failed" || time.Now().After(until) {
			return fmt.Errorf("lecture not ready: %+v", s.lec)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(500 * time.Millisecond):
		}
		req, _ := http.NewRequestWithContext(ctx, "GET", "http://"+s.ingest+"/api/v1/lectures/"+s.lec.ID, nil)
		req.Header.Set("Authorization", "Bearer "+token)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			return err
		}
		err = json.NewDecoder(resp.Body).Decode(&s.lec)
		resp.Body.Close()
		if err != nil {
			return err
		}
	}
	return nil
}

// anchorPage plays the master playlist with hls.js's defaults and records the first 'playing' the
// way the student player does, under the same name.
const anchorPage = `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>nginx static files + bare hls.js page</title></head>
<body>
<video id="video" playsinline preload="auto" style="width: 960px"></video>
<script src="/hls.min.js"></script>
<script>
var firstFrameMs = 0, video = document.getElementById('video');
video.addEventListener('playing', function () { if (!firstFrameMs) firstFrameMs = performance.now(); });
var hls = new Hls();
hls.loadSource(%q);
hls.attachMedia(video);
window.lecternPlayer = { firstFrameMs: function () { return firstFrameMs; } };
</script>
</body></html>
`

// startNginx serves the file store's directory (ROOT/hls/{id}/v{n}/...) and the anchor page with the
// same hls.min.js, from one nginx process: no master, so that it dies with this program (Pdeathsig)
// rather than leave an orphaned worker on the port.
func (s *stack) startNginx(hlsJS string) error {
	www := filepath.Join(s.work, "www")
	if err := os.MkdirAll(filepath.Join(s.work, "nginx"), 0o755); err != nil {
		return err
	}
	if err := os.MkdirAll(www, 0o755); err != nil {
		return err
	}
	js, err := os.ReadFile(hlsJS)
	if err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(www, "hls.min.js"), js, 0o644); err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(www, "ttff.html"), fmt.Appendf(nil, anchorPage, s.masterPath), 0o644); err != nil {
		return err
	}
	// The store's files are the transcoder's; make sure nginx's worker can read them.
	if err := filepath.Walk(s.store, func(p string, info os.FileInfo, err error) error {
		if err != nil {
			return err
		}
		mode := os.FileMode(0o644)
		if info.IsDir() {
			mode = 0o755
		}
		return os.Chmod(p, mode)
	}); err != nil {
		return err
	}
	user := ""
	if os.Geteuid() == 0 {
		user = "user root;"
	}
	conf := fmt.Sprintf(`%s
daemon off;
master_process off;
pid %[2]s/nginx/nginx.pid;
error_log %[2]s/nginx/error.log warn;
events { worker_connections 1024; }
http {
  include /etc/nginx/mime.types;
  types { application/vnd.apple.mpegurl m3u8; video/iso.segment m4s; video/mp4 mp4; text/vtt vtt; }
  default_type application/octet-stream;
  access_log off;
  sendfile on;
  tcp_nopush on;
  client_body_temp_path %[2]s/nginx/body;
  proxy_temp_path %[2]s/nginx/proxy;
  fastcgi_temp_path %[2]s/nginx/fastcgi;
  uwsgi_temp_path %[2]s/nginx/uwsgi;
  scgi_temp_path %[2]s/nginx/scgi;
  server {
    listen %[3]s;
    root %[4]s;
    location /hls/ { root %[5]s; }
  }
}
`, user, s.work, s.nginxA, www, s.store)
	confPath := filepath.Join(s.work, "nginx", "nginx.conf")
	if err := os.WriteFile(confPath, []byte(conf), 0o644); err != nil {
		return err
	}
	_, err = procs.Start("nginx", "http://"+s.nginxA+s.masterPath, nil, "nginx", "-c", confPath, "-p", filepath.Join(s.work, "nginx"))
	return err
}

// --- the browser ----------------------------------------------------------------------------------

// sample is one page load: ms since the navigation started.
type sample struct {
	TTFF        float64 `json:"ttff"`
	Page        float64 `json:"page"`        // the HTML page's responseEnd
	HlsJS       float64 `json:"hlsjs"`       // hls.min.js's responseEnd
	MasterStart float64 `json:"masterStart"` // hls.js asked for the multivariant playlist
	Master      float64 `json:"master"`      // ... and had it (the router's 302 and the edge's answer)
	Media       float64 `json:"media"`       // the first media playlists (video and audio) had both arrived
	Seg         float64 `json:"seg"`         // the first media segments (video and audio, .m4s) had both arrived
	SegName     string  `json:"segName"`     // the first video segment
	Height      int     `json:"height"`      // videoHeight at the first frame
	Requests    int     `json:"requests"`
	Events      struct {
		Pressed  float64 `json:"pressed"`        // play() at DOMContentLoaded
		Metadata float64 `json:"loadedmetadata"` // the init segments were appended
		Data     float64 `json:"loadeddata"`     // the first picture is decoded
		CanPlay  float64 `json:"canplay"`
	} `json:"events"`
	Trace []any `json:"trace"` // every resource: path, start, end, transfer size
}

func (s sample) String() string {
	t := fmt.Sprintf("first frame %4.0f ms (page %.0f, play() %.0f, hls.js %.0f, master %.0f-%.0f, media playlist %.0f, first segment %.0f %s, metadata %.0f, loadeddata %.0f, canplay %.0f; %dp, %d requests)",
		s.TTFF, s.Page, s.Events.Pressed, s.HlsJS, s.MasterStart, s.Master, s.Media, s.Seg, s.SegName, s.Events.Metadata, s.Events.Data, s.Events.CanPlay, s.Height, s.Requests)
	if *trace {
		for _, r := range s.Trace {
			t += fmt.Sprintf("\n    %v", r)
		}
	}
	return t
}

// The player is "pressed" at DOMContentLoaded, muted, as a student clicking Play at once (the flag
// --autoplay-policy=no-user-gesture-required lets a script start it).
// It also notes when the video element reached each stage, for the breakdown.
const pressPlay = `window.ttffEvents = {};
document.addEventListener('DOMContentLoaded', function () {
  var v = document.querySelector('video'); if (!v) return;
  ['loadedmetadata', 'loadeddata', 'canplay', 'playing'].forEach(function (e) {
    v.addEventListener(e, function () { if (!window.ttffEvents[e]) window.ttffEvents[e] = performance.now(); });
  });
  window.ttffEvents.pressed = performance.now();
  v.muted = true; v.play().catch(function () {});
});`

const collect = `(function () {
  var rs = performance.getEntriesByType('resource'), nav = performance.getEntriesByType('navigation')[0];
  function path(n) { try { return new URL(n).pathname; } catch (e) { return n; } }
  function first(re) { for (var i = 0; i < rs.length; i++) if (re.test(path(rs[i].name))) return rs[i]; return null; }
  function end(e) { return e ? e.responseEnd : -1; }
  var master = first(/\/master\.m3u8$/), hjs = first(/\/hls(\.min)?\.js$/);
  var media = first(/\/hls\/.*\/(?!audio\/)[^\/]+\/(?!master\.)[^\/]+\.m3u8$/), amedia = first(/\/audio\/[^\/]+\.m3u8$/);
  var seg = first(/\/hls\/.*\/(?!audio\/)[^\/]+\/[^\/]+\.m4s$/), aseg = first(/\/audio\/[^\/]+\.m4s$/);
  // Without an audio rendition (or before its first request) the video's figure stands.
  function both(v, a) { return v && a ? Math.max(v.responseEnd, a.responseEnd) : end(v); }
  return JSON.stringify({ttff: window.lecternPlayer.firstFrameMs(), page: nav ? nav.responseEnd : -1,
    hlsjs: end(hjs), masterStart: master ? master.startTime : -1, master: end(master), media: both(media, amedia),
    seg: both(seg, aseg), segName: seg ? path(seg.name).split('/').slice(-2).join('/') : '',
    height: document.querySelector('video').videoHeight, requests: rs.length, events: window.ttffEvents,
    trace: rs.map(function (e) { return [path(e.name).split('/').slice(-2).join('/'), Math.round(e.startTime), Math.round(e.responseEnd), e.transferSize]; })});
})()`

// measure opens url in a fresh headless Chromium (fresh profile: no browser cache) and returns the
// time to first frame and its breakdown.
func measure(parent context.Context, work, url string) (sample, error) {
	profile, err := os.MkdirTemp(work, "chromium-")
	if err != nil {
		return sample{}, err
	}
	defer os.RemoveAll(profile)
	opts := []chromedp.ExecAllocatorOption{
		chromedp.ExecPath(*browser), chromedp.Headless, chromedp.NoSandbox, chromedp.DisableGPU,
		chromedp.NoFirstRun, chromedp.NoDefaultBrowserCheck, chromedp.UserDataDir(profile),
		chromedp.Flag("disable-quic", true), chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true), chromedp.Flag("disable-sync", true),
		chromedp.Flag("autoplay-policy", "no-user-gesture-required"),
		chromedp.WindowSize(1280, 900),
	}
	actx, cancelA := chromedp.NewExecAllocator(parent, opts...)
	defer cancelA()
	ctx, cancelT := chromedp.NewContext(actx)
	defer cancelT()
	ctx, cancelD := context.WithTimeout(ctx, 60*time.Second)
	defer cancelD()
	if err := chromedp.Do(ctx); err != nil { // the browser starts before the clock does
		return sample{}, fmt.Errorf("start Chromium: %w", err)
	}
	if _, err := chromedp.Call(ctx, page.AddScriptToEvaluateOnNewDocument, page.AddScriptToEvaluateOnNewDocumentParams{Source: pressPlay}); err != nil {
		return sample{}, err
	}
	if _, err := chromedp.Run(ctx, chromedp.Navigate(url)); err != nil {
		return sample{}, fmt.Errorf("open %s: %w", url, err)
	}
	cond := `function(){ var s = document.getElementById('status');
	  return window.lecternPlayer && window.lecternPlayer.firstFrameMs() > 0 || !!s && s.className === 'err' }`
	if _, err := chromedp.Run(ctx, chromedp.PollFunction[bool](cond, chromedp.WithPollingTimeout(30*time.Second))); err != nil {
		return sample{}, fmt.Errorf("no first frame within 30 s at %s: %w", url, err)
	}
	v, err := chromedp.Run(ctx, chromedp.Evaluate[string](collect))
	if err != nil {
		return sample{}, err
	}
	var smp sample
	if err := json.Unmarshal([]byte(v), &smp); err != nil {
		return sample{}, fmt.Errorf("%s: %w", v, err)
	}
	if smp.TTFF <= 0 {
		st, _ := chromedp.Run(ctx, chromedp.Evaluate[string](`(document.getElementById('status') || {}).textContent || ''`))
		return sample{}, fmt.Errorf("the player failed at %s: %q", url, st)
	}
	return smp, nil
}

// --- the report -----------------------------------------------------------------------------------

type results struct {
	readyIn            time.Duration
	loadBefore         string // /proc/loadavg before the first run
	first              sample
	cold, warm, anchor []sample
}

func median(xs []float64) float64 {
	s := slices.Clone(xs)
	slices.Sort(s)
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}

func field(ss []sample, f func(sample) float64) []float64 {
	out := make([]float64, len(ss))
	for i, s := range ss {
		out[i] = f(s)
	}
	return out
}

func ms(x float64) string {
	if x < 0 {
		return "-"
	}
	return fmt.Sprintf("%.0f", x)
}

func (r results) report(s *stack) string {
	var b bytes.Buffer
	ttff := func(x sample) float64 { return x.TTFF }
	row := func(name string, ss []sample, target string, limit float64) {
		xs := field(ss, ttff)
		met := "yes"
		if limit == 0 {
			met = "-"
		} else if median(xs) >= limit {
			met = "**no**"
		}
		fmt.Fprintf(&b, "| %s | %s | %s | %s | %s | %s | %s |\n", name, ms(median(xs)), ms(slices.Min(xs)), ms(slices.Max(xs)),
			joinMs(xs), target, met)
	}
	breakdown := func(name string, ss []sample) {
		m := func(f func(sample) float64) string { return ms(median(field(ss, f))) }
		fmt.Fprintf(&b, "| %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s |\n", name,
			m(func(x sample) float64 { return x.Page }), m(func(x sample) float64 { return x.HlsJS }),
			m(func(x sample) float64 { return x.Events.Pressed }),
			m(func(x sample) float64 { return x.MasterStart }), m(func(x sample) float64 { return x.Master }),
			m(func(x sample) float64 { return x.Media }), m(func(x sample) float64 { return x.Seg }),
			m(func(x sample) float64 { return x.Events.Metadata }), m(func(x sample) float64 { return x.Events.Data }), m(ttff))
	}
	fmt.Fprintf(&b, "%s\n\n", section)
	fmt.Fprintf(&b, "%s, lectern `%s`, %s, hls.js %s, %s; %d cores (%s), %s; load average %s before the first run, %s after the last.\n",
		time.Now().UTC().Format("2006-01-02"), orDash(*version), chromiumVersion(), hlsVersion(), nginxVersion(), runtime.NumCPU(),
		harness.CPUModel(), harness.MemTotal(), r.loadBefore, harness.LoadAvg())
	fmt.Fprintf(&b, "Command: `%s` (or `make bench-ttff`).\n\n", *command)
	fmt.Fprintf(&b, `Each role of lectern is its own process on 127.0.0.1: ingest (`+"`--playback-base`"+` the router, signed
playback), worker, origin (file store), one edge (memory tier only, defaults otherwise) in a one-region map,
and `+"`lectern router --regions`"+`. The lecture: %s, uploaded through the API and transcoded by the worker
(ready %.0f s after the upload began). Each run starts a fresh headless Chromium with a fresh profile (no
browser cache), opens the student page `+"`/watch/{id}`"+` on ingest and presses play at DOMContentLoaded
(muted); the figure is `+"`window.lecternPlayer.firstFrameMs()`"+`, performance.now() at the video's first
'playing' event, i.e. ms since the navigation started. Cold: the edge process restarted just before (an
empty cache; the origin stays up, as in production). Warm: the edge kept, right after a cold run played
the same start. The anchor, "nginx static files + bare hls.js page": nginx (one process) serving the file
store's directory (the same published HLS files) and a static page that plays the master playlist with
the same hls.min.js, defaults, nothing else: a lower bound for what the browser and hls.js cost. The
three kinds of run alternate, %d rounds.

`, clipNote(), r.readyIn.Seconds(), len(r.cold))
	b.WriteString("Time to first frame, ms since the navigation started:\n\n")
	b.WriteString("| run | median | min | max | all runs | target | met |\n|---|---|---|---|---|---|---|\n")
	row("Lectern, cold edge", r.cold, "< 1000", 1000)
	row("Lectern, warm edge", r.warm, "< 300", 300)
	if len(r.anchor) > 0 {
		row("nginx static files + bare hls.js page", r.anchor, "-", 0)
	}
	fmt.Fprintf(&b, "| Lectern, first view after publishing (edge and origin cold, 1 run) | %s | | | | | |\n\n", ms(r.first.TTFF))
	// What the student waits for after pressing play, leaving out the page and hls.js loading.
	sincePlay := func(x sample) float64 { return x.TTFF - x.Events.Pressed }
	b.WriteString("The same runs counted from play() (pressed at DOMContentLoaded) to the first frame, ms:\n\n")
	b.WriteString("| run | median | min | max | all runs |\n|---|---|---|---|---|\n")
	for _, k := range []struct {
		name string
		ss   []sample
	}{{"Lectern, cold edge", r.cold}, {"Lectern, warm edge", r.warm}, {"nginx static files + bare hls.js page", r.anchor}} {
		if len(k.ss) == 0 {
			continue
		}
		xs := field(k.ss, sincePlay)
		fmt.Fprintf(&b, "| %s | %s | %s | %s | %s |\n", k.name, ms(median(xs)), ms(slices.Min(xs)), ms(slices.Max(xs)), joinMs(xs))
	}
	b.WriteString("\n")
	b.WriteString(`Where the time goes, medians in ms since the navigation started. From Resource Timing, when each had
arrived: the HTML page, hls.min.js, the multivariant playlist ("master asked": when hls.js sent the
request, which for Lectern the router answers with a 302 to the edge), the first media playlists and the
first segments (video and audio, both). From the video element's events: play() pressed (at
DOMContentLoaded), loadedmetadata (the init segments are in the Media Source buffers), loadeddata (the
first picture is decoded) and 'playing' (the first frame):

| run | HTML page | hls.min.js | play() | master asked | master | media playlists | first segments | metadata | first picture | first frame |
|---|---|---|---|---|---|---|---|---|---|---|
`)
	breakdown("Lectern, cold edge", r.cold)
	breakdown("Lectern, warm edge", r.warm)
	if len(r.anchor) > 0 {
		breakdown("nginx + bare hls.js", r.anchor)
	}
	breakdown("Lectern, first view", []sample{r.first})
	fmt.Fprintf(&b, "\nFirst segment loaded: `%s` (cold), `%s` (warm)", r.cold[0].SegName, r.warm[0].SegName)
	if len(r.anchor) > 0 {
		fmt.Fprintf(&b, ", `%s` (anchor)", r.anchor[0].SegName)
	}
	fmt.Fprintf(&b, ";\nthe picture at the first frame was %dp (cold), %dp (warm): hls.js starts at the first level listed in\n"+
		"the multivariant playlist unless told otherwise (its startLevel).\n\n", r.cold[0].Height, r.warm[0].Height)
	b.WriteString(r.reading())
	return b.String()
}

// reading states what the medians say; a person adds why.
func (r results) reading() string {
	med := func(ss []sample, f func(sample) float64) float64 { return median(field(ss, f)) }
	tt := func(x sample) float64 { return x.TTFF }
	c, w := med(r.cold, tt), med(r.warm, tt)
	verdict := func(x, limit float64) string {
		if x < limit {
			return "met"
		}
		return "missed"
	}
	// Three stages of each run, medians of the runs' own differences: until hls.js asks for the
	// multivariant playlist (the page, hls.js and the player), until the first segments are in (the
	// router, the edge, the origin), and from there to the first frame (Media Source and the decoder).
	stages := func(ss []sample) string {
		a := med(ss, func(x sample) float64 { return x.MasterStart })
		b := med(ss, func(x sample) float64 { return x.Seg - x.MasterStart })
		c := med(ss, func(x sample) float64 { return x.TTFF - x.Seg })
		return fmt.Sprintf("%.0f + %.0f + %.0f ms", a, b, c)
	}
	var b strings.Builder
	fmt.Fprintf(&b, "Reading: the cold-edge median is %.0f ms (target < 1000 ms: %s) and the warm-edge median %.0f ms (target < 300 ms: %s).",
		c, verdict(c, 1000), w, verdict(w, 300))
	if len(r.anchor) > 0 {
		a := med(r.anchor, tt)
		fmt.Fprintf(&b, " nginx with a bare hls.js page: %.0f ms; Lectern minus that: warm %+.0f ms, cold %+.0f ms.", a, w-a, c-a)
	}
	fmt.Fprintf(&b, " In stages (until hls.js asks for the multivariant playlist + until the first video and audio segments are in + from there to the first frame):"+
		" cold %s, warm %s", stages(r.cold), stages(r.warm))
	if len(r.anchor) > 0 {
		fmt.Fprintf(&b, ", anchor %s", stages(r.anchor))
	}
	b.WriteString(".\n")
	return b.String()
}

func joinMs(xs []float64) string {
	out := make([]string, len(xs))
	for i, x := range xs {
		out[i] = ms(x)
	}
	return strings.Join(out, ", ")
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

func clipNote() string {
	out, err := exec.Command("ffprobe", "-v", "error", "-show_entries", "format=duration:stream=codec_type,width,height",
		"-of", "json", *clip).Output()
	if err != nil {
		return filepath.Base(*clip)
	}
	var p struct {
		Streams []struct {
			Type          string `json:"codec_type"`
			Width, Height int
		} `json:"streams"`
		Format struct {
			Duration string `json:"duration"`
		} `json:"format"`
	}
	_ = json.Unmarshal(out, &p)
	size, audio := "", ""
	for _, st := range p.Streams {
		if st.Type == "video" {
			size = fmt.Sprintf("%dx%d", st.Width, st.Height)
		}
		if st.Type == "audio" {
			audio = " with audio"
		}
	}
	var d float64
	fmt.Sscan(p.Format.Duration, &d)
	return fmt.Sprintf("%.0f s of %s%s\nfrom `bench/gen-lecture.sh` (slides, a camera inset, speech)", d, size, audio)
}

func chromiumVersion() string {
	out, err := exec.Command(*browser, "--version").Output()
	if err != nil {
		return "Chromium ?"
	}
	return strings.TrimSpace(string(out))
}

func hlsVersion() string {
	b, err := os.ReadFile(filepath.Join(*assets, "hls.js", "package.json"))
	if err != nil {
		return "?"
	}
	var p struct{ Version string }
	_ = json.Unmarshal(b, &p)
	return p.Version
}

func nginxVersion() string {
	out, err := exec.Command("nginx", "-v").CombinedOutput()
	if err != nil {
		return "no nginx"
	}
	_, v, _ := strings.Cut(strings.TrimSpace(string(out)), ": ")
	return v
}
