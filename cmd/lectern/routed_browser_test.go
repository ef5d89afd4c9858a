package main

import (
	"fmt"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/chromedp"
)

// seen is one response the browser received, as the DevTools protocol reports it (cross-origin
// headers included, which the page's scripts cannot read).
type seen struct {
	url, cacheStatus, location string
	status                     int64
	at                         time.Time
}

// TestRoutedPlayerInChromium: the whole stack as separate processes on loopback (ingest, worker,
// origin, two regions of two edges each following one region map file, and the router), with signed
// playback and ingest's --playback-base naming the router. A student on 127.0.0.1 (seoul's prefix; the default region is
// busan-ulsan) opens the player in headless Chromium: the multivariant playlist is a 302 from the
// router to a seoul edge, and every playlist and segment after it comes from that edge (its
// Cache-Status member), hls.js having resolved them against the redirected URL. Playback passes 8 s
// with no fatal error and a forced rung loads that rung's segments from the edge. Then the edge is
// killed (SIGKILL) while playing: the player asks the router again with failed={edge}, the router
// sends it to the region's other edge, and playback goes on past what was buffered at the kill with
// at most one stall; the router counts the report and leaves the dead edge out. Last, seoul's other
// edge is killed too, and the player goes on from an edge of the neighbour region, busan-ulsan.
func TestRoutedPlayerInChromium(t *testing.T) {
	if testing.Short() {
		t.Skip("end-to-end: starts the roles, transcodes and runs a browser")
	}
	started := time.Now()
	browser := chromium(t)
	if _, err := os.Stat("../../internal/web/node_modules/hls.js/dist/hls.min.js"); err != nil {
		t.Fatal("hls.js is not installed: run `make web`")
	}
	data := t.TempDir()
	store, db := "file://"+filepath.Join(data, "objects"), sqliteDB(data)
	token := addTeacher(t, db, "Ms. Lee")
	ingestAddr, workerAddr, originAddr, routerAddr := freeAddr(t), freeAddr(t), freeAddr(t), freeAddr(t)
	edges := map[string][]string{"seoul": {freeAddr(t), freeAddr(t)}, "busan-ulsan": {freeAddr(t), freeAddr(t)}}
	regions := filepath.Join(t.TempDir(), "regions.json")
	m := fmt.Sprintf(`{"default": "busan-ulsan", "regions": {
	  "seoul": {"edges": [{"url": "http://%s"}, {"url": "http://%s"}], "prefixes": ["127.0.0.0/8"], "neighbours": ["busan-ulsan"]},
	  "busan-ulsan": {"edges": [{"url": "http://%s"}, {"url": "http://%s"}], "prefixes": ["10.2.0.0/16"], "neighbours": ["seoul"]}}}`,
		edges["seoul"][0], edges["seoul"][1], edges["busan-ulsan"][0], edges["busan-ulsan"][1])
	if err := os.WriteFile(regions, []byte(m), 0o644); err != nil {
		t.Fatal(err)
	}
	routerBase := "http://" + routerAddr
	// Signed playback, as deployed: ingest mints, the router reads the token (its region claim) and the
	// edges verify it; the secrets go in the environment, as operators pass them.
	env := []string{"LECTERN_PLAYBACK_KEYS=k1:" + strings.Repeat("5e", 32), "LECTERN_EDGE_SECRETS=" + strings.Repeat("e", 40),
		"LECTERN_ORIGIN_SECRET=" + strings.Repeat("e", 40), "LECTERN_PEER_SECRET=" + strings.Repeat("p", 40)}
	startRoleEnv(t, originAddr, env, "origin", "--listen", originAddr, "--storage", store)
	startRoleEnv(t, workerAddr, env, "worker", "--listen", workerAddr, "--db", db, "--storage", store, "--tmp", t.TempDir())
	startRoleEnv(t, ingestAddr, env, "ingest", "--listen", ingestAddr, "--db", db, "--storage", store, "--tmp", t.TempDir(),
		"--assets-dir", "../../internal/web/node_modules", "--playback-base", routerBase)
	kills := map[string]func(){}
	for region, addrs := range edges {
		for _, a := range addrs {
			kills["http://"+a] = startRoleEnv(t, a, env, "edge", "--listen", a, "--upstream", "http://"+originAddr,
				"--regions", regions, "--region", region, "--self", "http://"+a)
		}
	}
	startRoleEnv(t, routerAddr, env, "router", "--listen", routerAddr, "--regions", regions, "--probe-interval", "500ms")

	lec := uploadClip(t, "http://"+ingestAddr, token, "Routed", 36)
	waitReady(t, "http://"+ingestAddr, token, &lec)
	if !strings.HasPrefix(lec.PlaybackURL, routerBase+"/s/") {
		t.Fatalf("playback URL %q does not go through the router %s", lec.PlaybackURL, routerBase)
	}
	stackReady := time.Since(started)

	ctx, console := newTab(t, browser)
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("browser console:\n%s", console())
			if v, err := chromedp.Run(ctx, chromedp.Evaluate[string](`JSON.stringify([window.lecternRoute, window.errors])`)); err == nil {
				t.Logf("route and hls.js errors: %s", v)
			}
		}
	})
	var mu sync.Mutex
	var responses []seen
	if err := chromedp.Listen(ctx, func(ev any) {
		mu.Lock()
		defer mu.Unlock()
		switch e := ev.(type) {
		case *network.EventRequestWillBeSent:
			if r := e.RedirectResponse; r != nil {
				loc, _ := r.Headers["Location"].(string)
				if loc == "" {
					loc, _ = r.Headers["location"].(string)
				}
				responses = append(responses, seen{url: r.URL, status: r.Status, location: loc, at: time.Now()})
			}
		case *network.EventResponseReceived:
			cs, _ := e.Response.Headers["Cache-Status"].(string)
			if cs == "" {
				cs, _ = e.Response.Headers["cache-status"].(string)
			}
			responses = append(responses, seen{url: e.Response.URL, status: e.Response.Status, cacheStatus: cs, at: time.Now()})
		}
	}); err != nil {
		t.Fatal(err)
	}
	if _, err := chromedp.Call(ctx, network.Enable, network.EnableParams{}); err != nil {
		t.Fatal(err)
	}
	snapshot := func() []seen { mu.Lock(); defer mu.Unlock(); return append([]seen(nil), responses...) }

	if _, err := chromedp.Run(ctx, chromedp.Navigate("http://"+ingestAddr+"/watch/"+lec.ID)); err != nil {
		t.Fatal(err)
	}
	// A student with little buffered (hls.js keeps 30 s ahead by default; here at most about two
	// segments), so that the edge is still needed when it dies.
	js(t, ctx, `(function(){
		window.fatal = []; window.fragsAfterSwitch = null;
		var h = window.lecternHls; h.config.maxBufferLength = 6; h.config.maxMaxBufferLength = 6;
		window.errors = [];
		h.on(Hls.Events.ERROR, function(_, d){ if (d.fatal) window.fatal.push(d.details);
			window.errors.push([d.details, d.fatal, d.response && d.response.code, d.networkDetails && d.networkDetails.lecternEdge, d.frag && d.frag.url || d.url, performance.now() | 0].join(' ')) });
		h.on(Hls.Events.FRAG_LOADED, function(_, d){ if (window.fragsAfterSwitch && d.frag.type === 'main') window.fragsAfterSwitch.push(d.frag.level) });
		var v = document.getElementById('video'); v.muted = true; v.play().catch(function(){}); return true})()`)
	playerPoll(t, ctx, `window.lecternPlayer.firstFrameMs() > 0`, 20*time.Second)
	ttff := time.Duration(jsFloat(t, ctx, `window.lecternPlayer.firstFrameMs()`) * float64(time.Millisecond))

	// The router's decision: the 302 of the playback URL, to a seoul edge.
	var edge string
	for _, r := range snapshot() {
		// hls.js adds the CMCD argument to the playback URL; the router keeps it.
		if before, _, _ := strings.Cut(r.url, "?"); before == lec.PlaybackURL && r.status == http.StatusFound {
			loc, _, _ := strings.Cut(r.location, "?")
			edge = strings.TrimSuffix(loc, strings.TrimPrefix(lec.PlaybackURL, routerBase))
		}
	}
	if edge != "http://"+edges["seoul"][0] && edge != "http://"+edges["seoul"][1] {
		t.Fatalf("the router sent the student to %q, want one of seoul's edges %v (responses: %v)", edge, edges["seoul"], snapshot())
	}
	other := "http://" + edges["seoul"][0]
	if other == edge {
		other = "http://" + edges["seoul"][1]
	}

	// Force the lowest rung: its segments are the next ones loaded, from the routed edge.
	low := js(t, ctx, `(function(){var ls = window.lecternHls.levels, lo = 0;
		ls.forEach(function(l, i){ if (l.bitrate < ls[lo].bitrate) lo = i }); return String(lo)})()`)
	lowDir := js(t, ctx, `(function(){var u = new URL(window.lecternHls.levels[`+low+`].url[0]); return u.pathname.slice(0, u.pathname.lastIndexOf('/') + 1)})()`)
	switched := time.Now()
	js(t, ctx, `(function(){ window.fragsAfterSwitch = []; var q = document.getElementById('quality');
		q.value = '`+low+`'; q.dispatchEvent(new Event('change')); return true})()`)
	playerPoll(t, ctx, `window.fragsAfterSwitch.length > 0 && window.lecternHls.currentLevel === `+low, 20*time.Second)
	if first := js(t, ctx, `window.fragsAfterSwitch[0]`); first != low {
		t.Errorf("first fragment after forcing level %s is of level %s", low, first)
	}
	playerPoll(t, ctx, `document.getElementById('video').currentTime > 8`, 30*time.Second)

	// Every playlist and segment came from the routed edge, with its Cache-Status member; none from
	// another edge, the router or ingest.
	var lowSegs, edgeObjects int
	for _, r := range snapshot() {
		u, err := url.Parse(r.url)
		// hls.js's requests (CMCD on each); the poster, chapters and thumbnails are the page's own,
		// each routed on its own.
		if err != nil || !strings.Contains(u.Path, "/hls/") || !u.Query().Has("CMCD") || r.status == http.StatusFound {
			continue
		}
		if !strings.HasPrefix(r.url, edge+"/s/") {
			t.Errorf("%s (%d) did not come from the routed edge %s", r.url, r.status, edge)
			continue
		}
		edgeObjects++
		if r.status != 200 || !strings.HasPrefix(r.cacheStatus, "lectern-edge") && !strings.Contains(r.cacheStatus, ", lectern-edge") {
			t.Errorf("%s: %d, Cache-Status %q; want 200 with the edge's member", r.url, r.status, r.cacheStatus)
		}
		if strings.HasPrefix(u.Path, lowDir) && strings.HasSuffix(u.Path, ".m4s") && r.at.After(switched) {
			lowSegs++
		}
	}
	if edgeObjects < 4 || lowSegs == 0 {
		t.Errorf("%d objects from the routed edge, %d segments of the forced rung (%s) after the switch; want >= 4 and >= 1", edgeObjects, lowSegs, lowDir)
	}

	// The edge dies while the student plays.
	js(t, ctx, `(function(){ var v = document.getElementById('video'); window.waits = 0;
		v.addEventListener('waiting', function(){ window.waits++ }); return true})()`)
	killAt := jsFloat(t, ctx, `document.getElementById('video').currentTime`)
	bufferedEnd := jsFloat(t, ctx, `(function(){var b = document.getElementById('video').buffered; return b.length ? b.end(b.length - 1) : 0})()`)
	kills[edge]()
	killed := time.Now()
	past := max(killAt+4, bufferedEnd+2)
	playerPoll(t, ctx, fmt.Sprintf(`document.getElementById('video').currentTime > %.1f`, past), 40*time.Second)
	recovered := time.Since(killed)
	waits := js(t, ctx, `window.waits`)
	if waits != "0" && waits != "1" {
		t.Errorf("%s stalls after the edge was killed, want at most 1", waits)
	}
	if r := js(t, ctx, `JSON.stringify(window.lecternRoute || null)`); !strings.Contains(r, `"edge":"`+other+`"`) || !strings.Contains(r, `"failed":"`+edge+`"`) {
		t.Errorf("the player's re-route %s; want from %s to %s; hls.js errors:\n%s", r, edge, other, js(t, ctx, `window.errors.join('\n')`))
	}
	var fromOther int
	var moved time.Duration // from the kill to the first answer of the other edge
	for _, r := range snapshot() {
		if r.at.After(killed) && strings.HasPrefix(r.url, other+"/s/") && r.status == 200 && strings.Contains(r.cacheStatus, "lectern-edge") {
			if fromOther == 0 {
				moved = r.at.Sub(killed)
			}
			fromOther++
		}
	}
	if fromOther == 0 {
		t.Errorf("no segment from %s (seoul's other edge) after the kill", other)
	}
	if f := js(t, ctx, `window.fatal.join(',')`); f != "" {
		t.Errorf("fatal hls.js errors: %s", f)
	}
	// The router counted the player's report and sends nobody to the dead edge.
	_, metrics := fetch(t, routerBase+"/metrics")
	// One report, or a few when requests failing together raced; never one per failed request.
	var reports int
	for _, l := range strings.Split(string(metrics), "\n") {
		if v, ok := strings.CutPrefix(l, "lectern_router_failure_reports_total "); ok {
			fmt.Sscan(v, &reports)
		}
	}
	if reports < 1 || reports > 2 {
		t.Errorf("router /metrics: %d failure reports, want 1 (or 2)", reports)
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		r := do(t, "GET", lec.PlaybackURL+"?format=json")
		if strings.Contains(string(r.body), `"edge":"`+other+`"`) {
			break
		}
		if time.Now().After(deadline) {
			t.Errorf("router after the kill: %d %s; want %s", r.status, r.body, other)
			break
		}
		time.Sleep(100 * time.Millisecond)
	}

	// Then seoul's other edge dies too: the router sends the player to the neighbour region's edges.
	js(t, ctx, `window.waits = 0, true`)
	killAt2 := jsFloat(t, ctx, `document.getElementById('video').currentTime`)
	bufferedEnd2 := jsFloat(t, ctx, `(function(){var b = document.getElementById('video').buffered; return b.length ? b.end(b.length - 1) : 0})()`)
	duration := jsFloat(t, ctx, `document.getElementById('video').duration`)
	kills[other]()
	past2 := min(max(killAt2+4, bufferedEnd2+2), duration-0.5)
	playerPoll(t, ctx, fmt.Sprintf(`document.getElementById('video').currentTime > %.1f || document.getElementById('video').ended`, past2), 40*time.Second)
	waits2 := js(t, ctx, `window.waits`)
	if waits2 != "0" && waits2 != "1" {
		t.Errorf("%s stalls after seoul's second edge was killed, want at most 1", waits2)
	}
	r2 := js(t, ctx, `JSON.stringify(window.lecternRoute || null)`)
	if !strings.Contains(r2, `"failed":"`+other+`"`) || !strings.Contains(r2, `"edge":"http://`+edges["busan-ulsan"][0]+`"`) &&
		!strings.Contains(r2, `"edge":"http://`+edges["busan-ulsan"][1]+`"`) {
		t.Errorf("after seoul's second edge died, the player's re-route %s; want from %s to a busan-ulsan edge %v", r2, other, edges["busan-ulsan"])
	}
	if f := js(t, ctx, `window.fatal.join(',')`); f != "" {
		t.Errorf("fatal hls.js errors: %s", f)
	}
	screenshot(t, ctx, "player-routed.png")
	if log := console(); strings.Contains(log, "exception: ") {
		t.Errorf("the page threw:\n%s", log)
	}
	t.Logf("stack up and lecture ready in %v; first frame %v after navigation (cold edge); edge %s killed at %.1f s (buffered to %.1f s), first answer from %s %v after the kill, played past %.1f s %v after the kill with %s stalls; %d failure report(s); then %s killed at %.1f s (buffered to %.1f s): played past %.1f s with %s stalls, route %s; whole test %v",
		stackReady.Round(time.Millisecond), ttff.Round(time.Millisecond), edge, killAt, bufferedEnd, other, moved.Round(time.Millisecond),
		past, recovered.Round(time.Millisecond), waits, reports, other, killAt2, bufferedEnd2, past2, waits2, r2, time.Since(started).Round(time.Millisecond))
}
