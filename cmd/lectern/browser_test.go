package main

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/cdproto/emulation"
	"github.com/chromedp/chromedp"

	"github.com/lectern/lectern/internal/testenv"
)

// chromium finds Debian's Chromium, or skips (fails under `make test`, which installs it).
func chromium(t *testing.T) string {
	t.Helper()
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	if testenv.Required() {
		t.Fatal("chromium not found: `make test` installs it (apt-get install chromium)")
	}
	t.Skip("chromium not installed")
	return ""
}

// TestPlayerInChromium: the student player plays a published slide lecture (with captions) with hls.js
// in real headless Chromium, every request going through the edge: it passes 8 s with no fatal hls.js
// error; the speed menu sets the playback rate; the quality menu lists every rung and a forced rung's
// fragments are the next ones loaded; CMCD (session id, next-object hint) is on the segment requests;
// j and l seek 10 s, the other keys do what they say; the chapters list and the seek-bar marks match the lecture's chapters and a click
// seeks to one; captions turn on; the position is saved and a reload resumes there, with the speed and
// captions chosen before; on a phone-sized screen nothing overflows sideways; a link that expires while
// the page is open gets its message; fatal errors are recovered, and repeated ones end in a message.
// The course page lists the lecture with poster, duration and
// chapter count. Screenshots go to testdata-out/.
func TestPlayerInChromium(t *testing.T) {
	if testing.Short() {
		t.Skip("end-to-end: starts lectern, transcodes and runs a browser")
	}
	browser := chromium(t)
	if _, err := os.Stat("../../internal/web/node_modules/hls.js/dist/hls.min.js"); err != nil {
		t.Fatal("hls.js is not installed: run `make web`")
	}
	data := t.TempDir()
	token := addTeacher(t, sqliteDB(data), "Ms. Lee")
	// Signed playback, as deployed: the edge refuses a bad or expired token with 403.
	s := startServe(t, data, "--assets-dir", "../../internal/web/node_modules", "--playback-keys", "k1:"+strings.Repeat("5e", 32))
	id := uploadSlides(t, s, token)
	var lec struct {
		ChapterCount int     `json:"chapter_count"`
		ChaptersURL  string  `json:"chapters_url"`
		Duration     float64 `json:"duration_seconds"`
		PosterURL    string  `json:"poster_url"`
	}
	getJSON(t, s.base+"/api/v1/lectures/"+id, token, &lec)
	if lec.ChapterCount < 3 || lec.PosterURL == "" {
		t.Fatalf("the slide lecture has %d chapters and poster %q; want >= 3 and a poster", lec.ChapterCount, lec.PosterURL)
	}

	ctx, console := newTab(t, browser)
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("browser console:\n%s", console())
		}
	})

	// The course page.
	if _, err := chromedp.Run(ctx, chromedp.Navigate(s.base+"/")); err != nil {
		t.Fatal(err)
	}
	card := text(t, ctx, ".card.lecture")
	if want := fmt.Sprintf("%d chapters", lec.ChapterCount); !strings.Contains(card, want) || !strings.Contains(card, "0:2") {
		t.Errorf("course page card %q: want %q and the duration", card, want)
	}
	if _, err := chromedp.Run(ctx, chromedp.PollFunction[bool](`function(){var i = document.querySelector('.card.lecture img'); return !!i && i.complete && i.naturalWidth > 0}`,
		chromedp.WithPollingTimeout(5*time.Second))); err != nil {
		t.Errorf("the course page's poster did not load: %v", err)
	}

	// Play, at 2x (the speed menu), muted so autoplay is allowed.
	if _, err := chromedp.Run(ctx, chromedp.Navigate(s.base+"/watch/"+id)); err != nil {
		t.Fatal(err)
	}
	js(t, ctx, `(function(){
		window.fatal = []; window.fragsAfterSwitch = null;
		var v = document.getElementById('video'); v.muted = true; v.play().catch(function(){}); return true})()`)
	playerPoll(t, ctx, `window.lecternPlayer.firstFrameMs() > 0`, 20*time.Second)
	ttff := time.Duration(jsFloat(t, ctx, `window.lecternPlayer.firstFrameMs()`) * float64(time.Millisecond))
	js(t, ctx, `(function(){
		var h = window.lecternHls;
		h.on(Hls.Events.ERROR, function(_, d){ if (d.fatal) window.fatal.push(d.details) });
		h.on(Hls.Events.FRAG_LOADED, function(_, d){ if (window.fragsAfterSwitch && d.frag.type === 'main') window.fragsAfterSwitch.push(d.frag.level) });
		var sp = document.getElementById('speed'); sp.value = '2'; sp.dispatchEvent(new Event('change')); return true})()`)
	if r := js(t, ctx, `document.getElementById('video').playbackRate`); r != "2" {
		t.Errorf("speed menu at 2x: playbackRate %s", r)
	}

	// Quality: Auto plus one entry per rung; forcing the lowest rung loads its fragments next.
	levels, _ := strconv.Atoi(js(t, ctx, `window.lecternHls.levels.length`))
	if opts := js(t, ctx, `document.getElementById('quality').options.length`); levels < 2 || opts != strconv.Itoa(levels+1) {
		t.Fatalf("%d levels, quality menu has %s entries (want levels+1, levels >= 2)", levels, opts)
	}
	low := js(t, ctx, `(function(){var ls = window.lecternHls.levels, lo = 0;
		ls.forEach(function(l, i){ if (l.bitrate < ls[lo].bitrate) lo = i }); return String(lo)})()`)
	js(t, ctx, `(function(){ window.fragsAfterSwitch = []; var q = document.getElementById('quality');
		q.value = '`+low+`'; q.dispatchEvent(new Event('change')); return true})()`)
	if auto := js(t, ctx, `window.lecternHls.autoLevelEnabled`); auto != "false" {
		t.Errorf("quality menu: a forced rung left automatic switching on")
	}
	// currentLevel reads back the rung at the playhead: it is the forced one once its fragments play.
	playerPoll(t, ctx, `window.fragsAfterSwitch.length > 0 && window.lecternHls.currentLevel === `+low, 15*time.Second)
	if first := js(t, ctx, `window.fragsAfterSwitch[0]`); first != low {
		t.Errorf("first fragment after forcing level %s is of level %s (all: %s)", low, first, js(t, ctx, `JSON.stringify(window.fragsAfterSwitch)`))
	}

	playerPoll(t, ctx, `document.getElementById('video').currentTime > 8`, 30*time.Second)
	played := js(t, ctx, `document.getElementById('video').currentTime.toFixed(1)`)

	// CMCD on segment requests: the session id and the next-object hint.
	cmcd := js(t, ctx, `(function(){var n = 0, nor = 0, sid = {};
		performance.getEntriesByType('resource').forEach(function(e){
			if (e.name.indexOf('.m3u8') >= 0 || e.name.indexOf('CMCD=') < 0) return;
			var c = decodeURIComponent(e.name.split('CMCD=')[1].split('&')[0]);
			var m = /sid="([^"]+)"/.exec(c); if (m) { n++; sid[m[1]] = 1 }
			if (/nor="/.test(c)) nor++;
		}); return n + ' ' + Object.keys(sid).length + ' ' + nor})()`)
	var withSid, sessions, withNor int
	fmt.Sscan(cmcd, &withSid, &sessions, &withNor)
	if withSid < 2 || sessions != 1 || withNor < 1 {
		t.Errorf("CMCD on segment requests: %d with a sid, %d sessions, %d with nor; want >= 2, 1, >= 1", withSid, sessions, withNor)
	}

	// Keyboard: l goes forward 10 s, j back 10 s (the page has focus, not a control).
	js(t, ctx, `document.activeElement && document.activeElement.blur(), true`)
	before := jsFloat(t, ctx, `document.getElementById('video').currentTime`)
	if _, err := chromedp.Run(ctx, chromedp.KeyEvent("l")); err != nil {
		t.Fatal(err)
	}
	fwd := jsFloat(t, ctx, `document.getElementById('video').currentTime`)
	if _, err := chromedp.Run(ctx, chromedp.KeyEvent("j")); err != nil {
		t.Fatal(err)
	}
	back := jsFloat(t, ctx, `document.getElementById('video').currentTime`)
	if fwd < before+9 || fwd > before+11 || back < fwd-11 || back > fwd-9 {
		t.Errorf("keys: at %.1f s, l -> %.1f s, j -> %.1f s; want +10 s and -10 s", before, fwd, back)
	}

	// Chapters: one button per chapter, one mark per chapter after the first; a click seeks.
	playerPoll(t, ctx, `!document.getElementById('chapters').hidden`, 10*time.Second)
	items := js(t, ctx, `document.querySelectorAll('#chapter-list button').length`)
	marks := js(t, ctx, `document.querySelectorAll('#marks .mark').length`)
	if items != strconv.Itoa(lec.ChapterCount) || marks != strconv.Itoa(lec.ChapterCount-1) {
		t.Errorf("chapters list %s buttons, %s marks; the lecture has %d chapters", items, marks, lec.ChapterCount)
	}
	// The page's chapter times are the ones the transcoder wrote.
	var starts []string
	_, vtt := fetch(t, s.base+lec.ChaptersURL)
	for _, line := range strings.Split(string(vtt), "\n") {
		if from, _, ok := strings.Cut(line, " --> "); ok {
			starts = append(starts, from)
		}
	}
	if got := js(t, ctx, `[].map.call(document.querySelectorAll('#chapter-list button'), function(b){
		var s = +b.dataset.start, ms = Math.round(s * 1000);
		return [Math.floor(ms / 3600000), Math.floor(ms / 60000) % 60, Math.floor(ms / 1000) % 60].map(function(n){ return String(n).padStart(2, '0') }).join(':') + '.' + String(ms % 1000).padStart(3, '0')
	}).join(' ')`); got != strings.Join(starts, " ") {
		t.Errorf("chapter starts on the page %q, in chapters.vtt %q", got, strings.Join(starts, " "))
	}
	// The parser on what other WebVTT writers produce: CRLF, no hours, cue settings, notes, a cue
	// without identifier, a broken timing line (skipped).
	parsed, err := chromedp.Run(ctx, chromedp.Evaluate[string](`import('/assets/watch/chapters.js').then(function(m){
		return JSON.stringify(m.parseChapters('WEBVTT\r\n\r\nNOTE made by hand\r\n\r\nintro.jpg\r\n00:00.000 --> 01:30.500 align:start\r\nIntro\r\n\r\n' +
			'1:01:02.250 --> 1:02:00.000\r\nProof, part 2\r\nand more\r\n\r\nx\r\n00:aa.000 --> 00:10.000\r\nBroken\r\n'))})`, chromedp.EvalAwaitPromise))
	if want := `[{"start":0,"end":90.5,"title":"Intro","thumb":"intro.jpg"},{"start":3662.25,"end":3720,"title":"Proof, part 2 and more","thumb":""}]`; err != nil || parsed != want {
		t.Errorf("parseChapters: %s %v\nwant %s", parsed, err, want)
	}
	third := jsFloat(t, ctx, `+document.querySelectorAll('#chapter-list button')[2].dataset.start`)
	js(t, ctx, `document.querySelectorAll('#chapter-list button')[2].click(), true`)
	if at := jsFloat(t, ctx, `document.getElementById('video').currentTime`); at < third-0.2 || at > third+1.5 {
		t.Errorf("clicked chapter 3 (starts %.1f s): currentTime %.1f", third, at)
	}

	// Captions.
	playerPoll(t, ctx, `!document.getElementById('cc').hidden`, 10*time.Second)
	js(t, ctx, `document.getElementById('cc').click(), true`)
	playerPoll(t, ctx, `window.lecternHls.subtitleTrack === 0 && [].some.call(document.getElementById('video').textTracks,
		function(tt){ return tt.mode === 'showing' && tt.cues && tt.cues.length > 0 })`, 10*time.Second)

	// The other keys, each checked by what it changes.
	js(t, ctx, `document.activeElement && document.activeElement.blur(), true`)
	for _, k := range []struct{ key, expr, want string }{
		{"c", `document.getElementById('cc').getAttribute('aria-pressed')`, "false"},
		{"c", `document.getElementById('cc').getAttribute('aria-pressed')`, "true"},
		{"<", `document.getElementById('video').playbackRate`, "1.75"},
		{">", `document.getElementById('video').playbackRate`, "2"},
		{"m", `document.getElementById('video').muted`, "false"},
		{"m", `document.getElementById('video').muted`, "true"},
		{"k", `document.getElementById('video').paused`, "true"},
		{" ", `document.getElementById('video').paused`, "false"},
	} {
		if _, err := chromedp.Run(ctx, chromedp.KeyEvent(k.key)); err != nil {
			t.Fatal(err)
		}
		if got := js(t, ctx, k.expr); got != k.want {
			t.Errorf("key %q: %s = %s, want %s", k.key, k.expr, got, k.want)
		}
	}

	if f := js(t, ctx, `window.fatal.join(',')`); f != "" {
		t.Errorf("fatal hls.js errors: %s", f)
	}
	if st := text(t, ctx, "#status"); st != "" && st != "Loading…" {
		t.Errorf("status %q while playing", st)
	}
	screenshot(t, ctx, "player.png")

	// Resume: the position is saved; a reload on a phone-sized screen starts there.
	js(t, ctx, `document.getElementById('video').pause(), true`)
	saved := jsFloat(t, ctx, `+localStorage.getItem('lectern.resume.`+id+`')`)
	if saved < 5 {
		t.Fatalf("saved position %.1f s, want > 5 s", saved)
	}
	if _, err := chromedp.Call(ctx, emulation.SetDeviceMetricsOverride,
		emulation.SetDeviceMetricsOverrideParams{Width: 375, Height: 700, DeviceScaleFactor: 2, Mobile: true}); err != nil {
		t.Fatal(err)
	}
	if _, err := chromedp.Run(ctx, chromedp.Navigate(s.base+"/watch/"+id)); err != nil {
		t.Fatal(err)
	}
	playerPoll(t, ctx, `!document.getElementById('resume').hidden && document.getElementById('video').currentTime >= `+fmt.Sprint(saved-1), 15*time.Second)
	// The speed and captions chosen before are the student's preference, kept too.
	playerPoll(t, ctx, `!document.getElementById('cc').hidden`, 10*time.Second)
	if pref := js(t, ctx, `document.getElementById('video').playbackRate + ' ' + document.getElementById('cc').getAttribute('aria-pressed')`); pref != "2 true" {
		t.Errorf("after the reload: playbackRate and captions %q, want \"2 true\"", pref)
	}
	if w := js(t, ctx, `document.documentElement.scrollWidth`); w != "375" {
		t.Errorf("phone-sized page is %s px wide, want 375 (no sideways scrolling)", w)
	}
	screenshot(t, ctx, "player-phone.png")

	// The link expires while the page is open: the edge answers 403 to the next fragment (the test
	// spoils the token of every request from now on), and the player says what to do, with no retries.
	js(t, ctx, `(function(){ var open = XMLHttpRequest.prototype.open;
		XMLHttpRequest.prototype.open = function(m, u) {
			arguments[1] = String(u).replace(/\/s\/[^\/]+\//, '/s/expired/'); return open.apply(this, arguments) };
		var v = document.getElementById('video'); v.currentTime = 0; v.play().catch(function(){}); return true})()`)
	if _, err := chromedp.Run(ctx, chromedp.PollFunction[bool](`function(){return document.getElementById('status').className === 'err'}`,
		chromedp.WithPollingTimeout(15*time.Second))); err != nil {
		t.Fatalf("no message after the link expired (status %q): %v", text(t, ctx, "#status"), err)
	}
	if st := text(t, ctx, "#status"); st != "This link has expired, reload the course page for a new one." {
		t.Errorf("expired link: status %q", st)
	}
	// Recovery, on a fresh page: a fatal media error is recovered with recoverMediaError and a fatal
	// network error with startLoad, and playback goes on; errors that keep coming without a fragment
	// in between end in a message rather than endless retries. The errors are raised on hls.js's own
	// event bus, so the player's handler and hls.js's recovery run as they would for real ones.
	if _, err := chromedp.Run(ctx, chromedp.Navigate(s.base+"/watch/"+id)); err != nil {
		t.Fatal(err)
	}
	playerPoll(t, ctx, `!!window.lecternHls`, 10*time.Second)
	js(t, ctx, `(function(){ var h = window.lecternHls, v = document.getElementById('video');
		window.calls = {recoverMediaError: 0, startLoad: 0};
		['recoverMediaError', 'startLoad'].forEach(function(m){ var f = h[m].bind(h);
			h[m] = function(){ window.calls[m]++; return f.apply(null, arguments) } });
		window.raise = function(type) { h.trigger(Hls.Events.ERROR, {type: type, fatal: true,
			details: type === Hls.ErrorTypes.MEDIA_ERROR ? Hls.ErrorDetails.BUFFER_APPEND_ERROR : Hls.ErrorDetails.FRAG_LOAD_ERROR}) };
		v.muted = true; v.play().catch(function(){}); return true})()`)
	playerPoll(t, ctx, `document.getElementById('video').currentTime > 1`, 15*time.Second)
	for _, kind := range []struct{ typ, call string }{{"MEDIA_ERROR", "recoverMediaError"}, {"NETWORK_ERROR", "startLoad"}} {
		at := jsFloat(t, ctx, `document.getElementById('video').currentTime`)
		js(t, ctx, `window.raise(Hls.ErrorTypes.`+kind.typ+`), true`)
		playerPoll(t, ctx, `window.calls.`+kind.call+` === 1 && document.getElementById('video').currentTime > `+fmt.Sprint(at+1), 15*time.Second)
	}
	js(t, ctx, `(function(){ for (var i = 0; i < 4; i++) window.raise(Hls.ErrorTypes.NETWORK_ERROR); return true })()`)
	if st := text(t, ctx, "#status"); !strings.Contains(st, "cannot be played right now") {
		t.Errorf("after 4 fatal network errors in a row: status %q", st)
	}

	if log := console(); strings.Contains(log, "exception: ") {
		t.Errorf("the page threw:\n%s", log)
	}
	t.Logf("first frame %v after the navigation started (cold edge cache); played to %s s with %d levels; resumed at %.1f s", ttff.Round(time.Millisecond), played, levels, saved)
}

// uploadSlides publishes a generated 24 s slide deck at 720p (four slides, a moving camera picture in
// a corner, a tone) with WebVTT captions, and returns its id once ready.
func uploadSlides(t *testing.T, s *stack, token string) string {
	t.Helper()
	dir := t.TempDir()
	deck := filepath.Join(dir, "deck.mp4")
	graph := "color=c=0xF4F4F0:s=1280x720:d=6[a];color=c=0x1F5AA6:s=1280x720:d=6[b];" +
		"color=c=0xF0E6C8:s=1280x720:d=6[c];color=c=0x303030:s=1280x720:d=6[d];[a][b][c][d]concat=n=4,fps=30[slides];" +
		"testsrc2=s=192x108:r=30:d=24[cam];[slides][cam]overlay=x=W-w-16:y=H-h-16:shortest=1,format=yuv420p"
	if out, err := exec.Command("ffmpeg", "-hide_banner", "-loglevel", "error", "-y", "-f", "lavfi", "-i", graph,
		"-f", "lavfi", "-i", "sine=frequency=440:sample_rate=48000:duration=24",
		"-c:v", "libx264", "-preset", "ultrafast", "-c:a", "aac", "-shortest", deck).CombinedOutput(); err != nil {
		t.Fatalf("ffmpeg: %v %s", err, out)
	}
	vtt := filepath.Join(dir, "en.vtt")
	if err := os.WriteFile(vtt, []byte("WEBVTT\n\n00:00.000 --> 00:24.000\nToday: waves.\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	env := []string{"LECTERN_SERVER=" + s.base, "LECTERN_TOKEN=" + token, "LECTERN_STATE_DIR=" + t.TempDir()}
	out, errOut, code := runUploadBin(t, env, deck, "--title", "Waves", "--course", "Physics",
		"--captions", vtt, "--captions-language", "en", "--wait")
	if code != 0 {
		t.Fatalf("upload exit %d\nstdout %s\nstderr %s", code, out, errOut)
	}
	var id string
	if _, err := fmt.Sscanf(out, "lecture %s", &id); err != nil {
		t.Fatalf("no lecture id in %q", out)
	}
	return id
}

// playerPoll waits for expr to hold, failing at once when the player shows an error message.
func playerPoll(t *testing.T, ctx context.Context, expr string, d time.Duration) {
	t.Helper()
	_, err := chromedp.Run(ctx, chromedp.PollFunction[bool]("function(){return ("+expr+") || document.getElementById('status').className === 'err'}",
		chromedp.WithPollingTimeout(d)))
	if err == nil && js(t, ctx, expr) != "true" {
		err = fmt.Errorf("the player shows an error")
	}
	if err != nil {
		t.Fatalf("%s never held (status %q, currentTime %s): %v", expr, text(t, ctx, "#status"),
			js(t, ctx, `document.getElementById('video').currentTime`), err)
	}
}

func jsFloat(t *testing.T, ctx context.Context, expr string) float64 {
	t.Helper()
	f, err := strconv.ParseFloat(js(t, ctx, expr), 64)
	if err != nil {
		t.Fatalf("%s: %v", expr, err)
	}
	return f
}

// waitReady polls the lecture until it is ready; failed or 3 minutes fail the test.
func waitReady(t *testing.T, base, token string, lec *apiLecture) {
	t.Helper()
	deadline := time.Now().Add(3 * time.Minute)
	for lec.Status != "ready" {
		if lec.Status == "failed" || time.Now().After(deadline) {
			t.Fatalf("lecture not ready: %+v", lec)
		}
		time.Sleep(300 * time.Millisecond)
		getJSON(t, base+"/api/v1/lectures/"+lec.ID, token, lec)
	}
}
