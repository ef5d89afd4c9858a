package main

import (
	"bytes"
	"context"
	"crypto/sha256"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/cdproto/emulation"
	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/chromedp"
)

// TestTeacherPageInChromium drives /teach in headless Chromium like a teacher: sign in (a bad token is
// refused), upload a clip with captions over tus, watch the bar reach 100%, the transcode reach ready and
// the preview play; then start a bigger upload on a throttled connection, reload the page halfway, pick
// the same file again and check the upload continued the same lecture instead of starting over (and once
// more from the unfinished list, as in a browser that did not start it); a file that is not media gets
// the server's reason on the page; the list renames, attaches captions, replaces and deletes; signing out
// forgets the token. The page must not throw.
// Screenshots go to testdata-out/ (gitignored).
func TestTeacherPageInChromium(t *testing.T) {
	if testing.Short() {
		t.Skip("end-to-end: starts lectern, uploads, transcodes and runs a browser")
	}
	browser := chromium(t)
	for _, f := range []string{"hls.js/dist/hls.min.js", "tus-js-client/dist/tus.min.js"} {
		if _, err := os.Stat("../../internal/web/node_modules/" + f); err != nil {
			t.Fatalf("%s is not installed: run `make web`", f)
		}
	}
	data := t.TempDir()
	token := addTeacher(t, sqliteDB(data), "Ms. Lee")
	s := startServe(t, data, "--assets-dir", "../../internal/web/node_modules")

	dir := t.TempDir()
	clip := filepath.Join(dir, "photosynthesis.mp4")
	if err := generateClip(context.Background(), "ffmpeg", clip, 3*time.Second); err != nil {
		t.Fatal(err)
	}
	vtt := filepath.Join(dir, "captions.vtt")
	if err := os.WriteFile(vtt, []byte("WEBVTT\n\n00:00.000 --> 00:02.000\nLight in, sugar out.\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	// Noise does not compress: a few seconds make a file big enough to reload in the middle of.
	big := filepath.Join(dir, "field-trip.mp4")
	if out, err := exec.Command("ffmpeg", "-hide_banner", "-loglevel", "error", "-y",
		"-f", "lavfi", "-i", "testsrc2=size=640x360:rate=25:duration=2", "-vf", "noise=alls=60:allf=t",
		"-c:v", "libx264", "-preset", "ultrafast", "-qp", "8", "-pix_fmt", "yuv420p", big).CombinedOutput(); err != nil {
		t.Fatalf("ffmpeg: %v %s", err, out)
	}

	ctx, console := newTab(t, browser)
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("browser console:\n%s", console())
		}
	})
	t.Run("UploadToReady", func(t *testing.T) { teachUploadToReady(t, ctx, s, token, clip, vtt) })
	t.Run("ResumeAfterReload", func(t *testing.T) { teachResumeAfterReload(t, ctx, s, token, big, clip) })
	junk := filepath.Join(dir, "notes.mp4")
	if err := os.WriteFile(junk, bytes.Repeat([]byte("not a video, just notes\n"), 20000), 0o644); err != nil {
		t.Fatal(err)
	}
	t.Run("Rejected", func(t *testing.T) { teachRejected(t, ctx, s, token, junk) })
	t.Run("ManageLectures", func(t *testing.T) { teachManage(t, ctx, s, token, clip, vtt) })
	if log := console(); strings.Contains(log, "exception: ") {
		t.Errorf("the page threw:\n%s", log)
	}
}

func teachUploadToReady(t *testing.T, ctx context.Context, s *stack, token, clip, vtt string) {
	err := chromedp.Do(ctx,
		chromedp.Navigate(s.base+"/teach"),
		chromedp.WaitVisible(chromedp.CSS("#token")),
		chromedp.SendKeys(chromedp.CSS("#token"), "not-a-token"),
		chromedp.Click(chromedp.CSS("#signin-form button")),
	)
	if err != nil {
		t.Fatalf("open /teach: %v", err)
	}
	if got := waitText(t, ctx, "#signin-msg", "Sign-in failed"); !strings.Contains(got, "unknown API token") {
		t.Errorf("bad token message %q does not say why", got)
	}
	err = chromedp.Do(ctx,
		chromedp.SendKeys(chromedp.CSS("#token"), token),
		chromedp.Click(chromedp.CSS("#signin-form button")),
	)
	if err != nil {
		t.Fatal(err)
	}
	waitText(t, ctx, "#me", "Ms. Lee")
	if err := chromedp.Do(ctx, chromedp.Reload()); err != nil {
		t.Fatal(err)
	}
	waitText(t, ctx, "#me", "Ms. Lee") // remembered

	err = chromedp.Do(ctx,
		chromedp.SendKeys(chromedp.CSS("#title"), "Photosynthesis"),
		chromedp.SendKeys(chromedp.CSS("#course"), "Biology"),
		chromedp.SendKeys(chromedp.CSS("#description"), "Where plants get their sugar."),
		chromedp.SetUploadFiles(chromedp.CSS("#captions"), []string{vtt}),
		chromedp.SetUploadFiles(chromedp.CSS("#file"), []string{clip}),
		chromedp.Click(chromedp.CSS("#start")),
	)
	if err != nil {
		t.Fatal(err)
	}
	pollJS(t, ctx, `document.getElementById('bar').value === 100`, 30*time.Second, "#msg")
	if pct := text(t, ctx, "#pct"); !strings.HasPrefix(pct, "100% ·") {
		t.Errorf("progress text %q, want 100%%", pct)
	}
	waitText(t, ctx, "#msg", "Upload complete")
	if hidden, err := chromedp.Run(ctx, chromedp.Evaluate[bool](`document.getElementById('pause').hidden`)); err != nil || !hidden {
		t.Errorf("Pause is still offered after the upload finished (%v)", err)
	}
	waitText(t, ctx, "#job-status", "Ready")
	// The preview plays the published HLS through hls.js.
	if _, err := chromedp.Run(ctx, chromedp.Evaluate[bool](`(function(){var v=document.getElementById('preview'); v.muted=true; v.play(); return !v.hidden})()`)); err != nil {
		t.Fatal(err)
	}
	pollJS(t, ctx, `document.getElementById('preview').currentTime > 1`, 30*time.Second, "#job-status")
	waitText(t, ctx, "#lectures li .status", "Ready")
	screenshot(t, ctx, "teach-ready.png")

	var list struct{ Lectures []apiLecture }
	getJSON(t, s.base+"/api/v1/lectures", token, &list)
	if len(list.Lectures) != 1 || list.Lectures[0].Status != "ready" {
		t.Fatalf("lectures after the upload: %+v", list.Lectures)
	}
	var full struct {
		Title    string `json:"title"`
		Captions bool   `json:"captions"`
	}
	getJSON(t, s.base+"/api/v1/lectures/"+list.Lectures[0].ID, token, &full)
	if full.Title != "Photosynthesis" || !full.Captions {
		t.Errorf("lecture %+v: want the title typed and the captions attached", full)
	}
}

func teachResumeAfterReload(t *testing.T, ctx context.Context, s *stack, token, big, wrong string) {
	// 1 MiB per PATCH on a 2 MB/s link: the reload lands in the middle of the upload, mid-request.
	received := receivedBytes(t, s)
	openSignedIn(t, ctx, s.base+"/teach?chunk=1048576", token)
	throttle(t, ctx, 2e6)
	err := chromedp.Do(ctx,
		chromedp.SendKeys(chromedp.CSS("#title"), "Field trip"),
		chromedp.SendKeys(chromedp.CSS("#course"), "Biology"),
		chromedp.SetUploadFiles(chromedp.CSS("#file"), []string{big}),
		chromedp.Click(chromedp.CSS("#start")),
	)
	if err != nil {
		t.Fatal(err)
	}
	// Pause stops the bytes; Resume carries on from the server's offset.
	pollJS(t, ctx, `document.getElementById('bar').value >= 5`, 30*time.Second, "#msg")
	if err := chromedp.Do(ctx, chromedp.Click(chromedp.CSS("#pause"))); err != nil {
		t.Fatal(err)
	}
	waitText(t, ctx, "#msg", "Paused at")
	paused := barValue(t, ctx)
	time.Sleep(time.Second)
	if v := barValue(t, ctx); v != paused {
		t.Errorf("paused at %.1f%%, a second later %.1f%%", paused, v)
	}
	if err := chromedp.Do(ctx, chromedp.Click(chromedp.CSS("#resume"))); err != nil {
		t.Fatal(err)
	}
	pollJS(t, ctx, `document.getElementById('bar').value >= 25`, 30*time.Second, "#msg")
	if err := chromedp.Do(ctx, chromedp.Reload()); err != nil {
		t.Fatal(err)
	}
	waitText(t, ctx, "#me", "Ms. Lee")

	type upload struct {
		Offset int64 `json:"offset"`
		Size   int64 `json:"size"`
	}
	type lecture struct {
		apiLecture
		Title  string  `json:"title"`
		Upload *upload `json:"upload"`
	}
	var list struct{ Lectures []lecture }
	getJSON(t, s.base+"/api/v1/lectures", token, &list)
	var trip lecture
	for _, l := range list.Lectures {
		if l.Title == "Field trip" {
			getJSON(t, s.base+"/api/v1/lectures/"+l.ID, token, &trip) // the list leaves uploads out
		}
	}
	if trip.Upload == nil || trip.Upload.Offset <= 0 || trip.Upload.Offset >= trip.Upload.Size {
		t.Fatalf("after the reload the lecture should hold part of the file: %+v in %+v", trip, list.Lectures)
	}
	stopped := trip.Upload.Offset
	waitText(t, ctx, "#unfinished li", "Field trip")

	// Picking the same file again finds this browser's record of the upload and continues it.
	if err := chromedp.Do(ctx, chromedp.SetUploadFiles(chromedp.CSS("#file"), []string{big})); err != nil {
		t.Fatal(err)
	}
	waitText(t, ctx, "#mode-text", "partly uploaded for “Field trip”")
	if err := chromedp.Do(ctx, chromedp.Click(chromedp.CSS("#start"))); err != nil {
		t.Fatal(err)
	}
	if m := waitText(t, ctx, "#msg", "Continuing"); !strings.Contains(m, "Field trip") {
		t.Errorf("resume message %q", m)
	}

	// Stopped again, in a browser without that record (as on another computer): the unfinished list
	// continues from the server's upload URL, once given a file of the right size.
	pollJS(t, ctx, `document.getElementById('bar').value >= 50`, 30*time.Second, "#msg")
	err = chromedp.Do(ctx,
		chromedp.Reload(),
		chromedp.Func(func(ctx context.Context, tg *chromedp.Target) error {
			_, err := chromedp.Evaluate[bool](`Object.keys(localStorage).filter(function(k){return k.indexOf('tus::')===0}).map(function(k){localStorage.removeItem(k)}) && true`)(ctx, tg)
			return err
		}),
		chromedp.Reload(),
	)
	if err != nil {
		t.Fatal(err)
	}
	throttle(t, ctx, -1)
	waitText(t, ctx, "#unfinished li", "Field trip")
	if err := chromedp.Do(ctx, chromedp.SetUploadFiles(chromedp.CSS("#unfinished li input[type=file]"), []string{wrong})); err != nil {
		t.Fatal(err)
	}
	waitText(t, ctx, "#msg", "pick the same file")
	if err := chromedp.Do(ctx, chromedp.SetUploadFiles(chromedp.CSS("#unfinished li input[type=file]"), []string{big})); err != nil {
		t.Fatal(err)
	}
	waitText(t, ctx, "#msg", "Continuing “Field trip”")
	pollJS(t, ctx, `document.getElementById('bar').value === 100`, 30*time.Second, "#msg")
	waitText(t, ctx, "#msg", "Upload complete")
	if err := chromedp.Do(ctx, chromedp.EmulateViewport(390, 844, chromedp.EmulateMobile)); err != nil {
		t.Fatal(err)
	}
	screenshot(t, ctx, "teach-resumed-phone.png")

	getJSON(t, s.base+"/api/v1/lectures", token, &list)
	n := 0
	for _, l := range list.Lectures {
		if l.Title == "Field trip" {
			n++
			if l.ID != trip.ID || l.Status == "failed" || l.Status == "awaiting_upload" {
				t.Errorf("resumed lecture %+v, want %s queued or further", l, trip.ID)
			}
		}
	}
	if n != 1 {
		t.Fatalf("want one lecture for the resumed upload, got %d in %+v", n, list.Lectures)
	}
	// The stored source is the file, byte for byte: the resumed part joined the first at the right offset.
	want, _ := os.ReadFile(big)
	sources, _ := filepath.Glob(filepath.Join(s.data, "objects", "sources", trip.ID, "*"))
	if len(sources) != 1 {
		t.Fatalf("stored sources of %s: %v", trip.ID, sources)
	}
	got, _ := os.ReadFile(sources[0])
	if sha256.Sum256(got) != sha256.Sum256(want) {
		t.Fatalf("stored source (%d bytes) differs from the file (%d bytes)", len(got), len(want))
	}
	// Every byte crossed the wire once: neither Resume nor a reload started the file over.
	if sent := receivedBytes(t, s) - received; sent < int64(len(want)) || sent > int64(len(want))+2<<20 {
		t.Errorf("the server read %d bytes for a %d-byte file", sent, len(want))
	}
	t.Logf("reloaded at %d of %d bytes; the upload continued from there", stopped, len(want))
}

// teachManage: a dropped file is picked up; the list renames a lecture, attaches captions (a new
// version), replaces the video (the page follows the new version to ready) and deletes after a confirm.
func teachManage(t *testing.T, ctx context.Context, s *stack, token, clip, vtt string) {
	if err := chromedp.Do(ctx, chromedp.EmulateReset()); err != nil {
		t.Fatal(err)
	}
	openSignedIn(t, ctx, s.base+"/teach", token)
	// Drag and drop: the zone takes the file as the picker would.
	js(t, ctx, `(function(){var dt=new DataTransfer(); dt.items.add(new File(['x'], 'Cell_division-week3.mp4', {type:'video/mp4'}));
		document.getElementById('drop').dispatchEvent(new DragEvent('drop', {dataTransfer: dt, bubbles: true, cancelable: true})); return true})()`)
	waitText(t, ctx, "#picked", "Cell_division-week3.mp4")
	if v := js(t, ctx, `document.getElementById('title').value`); v != "Cell division week3" {
		t.Errorf("title from the dropped file's name: %q", v)
	}
	js(t, ctx, `document.getElementById('mode-cancel').click() || true`) // back to an empty form

	type detail struct {
		apiLecture
		Title        string `json:"title"`
		CaptionsLang string `json:"captions_language"`
	}
	var list struct{ Lectures []detail }
	getJSON(t, s.base+"/api/v1/lectures", token, &list)
	var id string
	for _, l := range list.Lectures {
		if l.Title == "Photosynthesis" && l.Status == "ready" {
			id = l.ID
		}
	}
	if id == "" {
		t.Fatalf("no ready lecture to manage in %+v", list.Lectures)
	}
	row := fmt.Sprintf(`#lectures li[data-id=%q]`, id)
	var l detail

	clickButton(t, ctx, row, "Rename")
	err := chromedp.Do(ctx,
		chromedp.SetValue(chromedp.CSS(row+" .editor input"), "Photosynthesis, revised"),
		chromedp.Click(chromedp.CSS(row+" .editor button[type=submit]")),
	)
	if err != nil {
		t.Fatal(err)
	}
	waitText(t, ctx, row+" .title", "Photosynthesis, revised")
	if getJSON(t, s.base+"/api/v1/lectures/"+id, token, &l); l.Title != "Photosynthesis, revised" {
		t.Errorf("renamed on the page, the API says %q", l.Title)
	}

	clickButton(t, ctx, row, "Captions")
	err = chromedp.Do(ctx,
		chromedp.SetUploadFiles(chromedp.CSS(row+" .editor input[type=file]"), []string{vtt}),
		chromedp.SetValue(chromedp.CSS(row+" .editor input:not([type=file])"), "de"),
		chromedp.Click(chromedp.CSS(row+" .editor button[type=submit]")),
	)
	if err != nil {
		t.Fatal(err)
	}
	pollJS(t, ctx, `!document.querySelector('`+row+` .editor form')`, 20*time.Second, row+" .editor")
	if getJSON(t, s.base+"/api/v1/lectures/"+id, token, &l); l.CaptionsLang != "de" {
		t.Errorf("captions attached on the page, the API says language %q", l.CaptionsLang)
	}
	waitReady(t, s.base, token, &l.apiLecture)

	clickButton(t, ctx, row, "Replace video")
	waitText(t, ctx, "#mode-text", "New video for “Photosynthesis, revised”")
	// With reduced motion the form is in place at once (a moving #start is what the click would miss).
	if top := js(t, ctx, `String(Math.round(document.getElementById('upload').getBoundingClientRect().top))`); top != "0" {
		t.Errorf("after Replace video the upload section's top is at %spx, want 0 (scrolled to at once)", top)
	}
	before := l.Version
	err = chromedp.Do(ctx,
		chromedp.SetUploadFiles(chromedp.CSS("#file"), []string{clip}),
		chromedp.Click(chromedp.CSS("#start")),
	)
	if err != nil {
		t.Fatal(err)
	}
	waitText(t, ctx, "#msg", "Upload complete")
	waitText(t, ctx, "#job-status", "Ready")
	if getJSON(t, s.base+"/api/v1/lectures/"+id, token, &l); l.Version <= before || l.Status != "ready" {
		t.Errorf("after the replacement: version %d (was %d), status %s", l.Version, before, l.Status)
	}

	js(t, ctx, `(window.confirm = function (m) { window.lecternConfirm = m; return true }) && true`)
	clickButton(t, ctx, row, "Delete")
	pollJS(t, ctx, `!document.querySelector('`+row+`')`, 20*time.Second, "#list-msg")
	if m := js(t, ctx, `window.lecternConfirm || ''`); !strings.Contains(m, "Photosynthesis, revised") {
		t.Errorf("delete asked %q", m)
	}
	var gone apiError
	if code := getJSON(t, s.base+"/api/v1/lectures/"+id, token, &gone); code != 404 {
		t.Errorf("deleted on the page, the API answers %d %+v", code, gone)
	}

	// Signing out forgets the token and the list.
	if err := chromedp.Do(ctx, chromedp.Click(chromedp.CSS("#signout")), chromedp.WaitVisible(chromedp.CSS("#token"))); err != nil {
		t.Fatal(err)
	}
	if v := js(t, ctx, `String(localStorage.getItem('lectern.token')) + ' ' + document.querySelectorAll('#lectures li').length`); v != "null 0" {
		t.Errorf("after signing out: token and rows %q", v)
	}
}

// js evaluates expr in the page; a non-string result is formatted.
func js(t *testing.T, ctx context.Context, expr string) string {
	t.Helper()
	v, err := chromedp.Run(ctx, chromedp.Evaluate[any](expr))
	if err != nil {
		t.Fatalf("%s: %v", expr, err)
	}
	if s, ok := v.(string); ok {
		return s
	}
	return fmt.Sprint(v)
}

// clickButton waits up to 10 s for the button labelled label inside scope and clicks it.
func clickButton(t *testing.T, ctx context.Context, scope, label string) {
	t.Helper()
	find := fmt.Sprintf(`[].find.call(document.querySelectorAll(%q), function(b){return b.textContent===%q})`, scope+" button", label)
	if _, err := chromedp.Run(ctx, chromedp.PollFunction[bool]("function(){return !!"+find+"}", chromedp.WithPollingTimeout(10*time.Second))); err != nil {
		t.Fatalf("no %q button in %s (it has: %s): %v", label, scope, text(t, ctx, scope), err)
	}
	js(t, ctx, find+".click() || true")
}

// teachRejected: a file that is not media is refused after its last byte, and the page shows the
// server's reason.
func teachRejected(t *testing.T, ctx context.Context, s *stack, token, junk string) {
	if err := chromedp.Do(ctx, chromedp.EmulateReset()); err != nil {
		t.Fatal(err)
	}
	openSignedIn(t, ctx, s.base+"/teach", token)
	err := chromedp.Do(ctx,
		chromedp.SendKeys(chromedp.CSS("#title"), "Not a video"),
		chromedp.SendKeys(chromedp.CSS("#course"), "Biology"),
		chromedp.SetUploadFiles(chromedp.CSS("#file"), []string{junk}),
		chromedp.Click(chromedp.CSS("#start")),
	)
	if err != nil {
		t.Fatal(err)
	}
	m := waitText(t, ctx, "#msg", "The file was rejected: ")
	var list struct{ Lectures []apiLecture }
	getJSON(t, s.base+"/api/v1/lectures", token, &list)
	for _, l := range list.Lectures {
		if l.Status == "failed" {
			if l.Error == "" || !strings.Contains(m, l.Error) {
				t.Errorf("the page says %q, the lecture's error is %q", m, l.Error)
			}
			return
		}
	}
	t.Errorf("no failed lecture after the rejected upload: %+v", list.Lectures)
}

// openSignedIn opens url with token already remembered by the page, as after an earlier sign-in.
func openSignedIn(t *testing.T, ctx context.Context, url, token string) {
	t.Helper()
	err := chromedp.Do(ctx,
		chromedp.Navigate(url),
		chromedp.Func(func(ctx context.Context, tg *chromedp.Target) error {
			_, err := chromedp.Evaluate[bool](fmt.Sprintf(`localStorage.setItem('lectern.token', %q) || true`, token))(ctx, tg)
			return err
		}),
		chromedp.Reload(),
	)
	if err != nil {
		t.Fatal(err)
	}
	waitText(t, ctx, "#me", "Ms. Lee")
}

// receivedBytes is the server's count of upload bytes read from clients.
func receivedBytes(t *testing.T, s *stack) int64 {
	t.Helper()
	_, body := fetch(t, s.base+"/metrics")
	for _, line := range strings.Split(string(body), "\n") {
		if v, ok := strings.CutPrefix(line, "lectern_ingest_received_bytes_total "); ok {
			var n float64
			if _, err := fmt.Sscan(v, &n); err != nil {
				t.Fatalf("metrics line %q: %v", line, err)
			}
			return int64(n)
		}
	}
	t.Fatal("no lectern_ingest_received_bytes_total in /metrics")
	return 0
}

func barValue(t *testing.T, ctx context.Context) float64 {
	t.Helper()
	v, err := chromedp.Run(ctx, chromedp.Evaluate[float64](`document.getElementById('bar').value`))
	if err != nil {
		t.Fatal(err)
	}
	return v
}

// newTab starts Chromium (the flags TestPlayerInChromium uses) and returns its tab with a 90 s budget,
// and a func returning what the page wrote to the console.
func newTab(t *testing.T, browser string) (context.Context, func() string) {
	t.Helper()
	opts := []chromedp.ExecAllocatorOption{
		chromedp.ExecPath(browser), chromedp.Headless, chromedp.NoSandbox, chromedp.DisableGPU,
		chromedp.NoFirstRun, chromedp.NoDefaultBrowserCheck, chromedp.UserDataDir(t.TempDir()),
		chromedp.Flag("disable-quic", true), chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true), chromedp.Flag("disable-sync", true),
		chromedp.Flag("autoplay-policy", "no-user-gesture-required"),
		chromedp.WindowSize(1100, 1400),
	}
	actx, cancelA := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, cancelT := chromedp.NewContext(actx)
	ctx, cancelD := context.WithTimeout(ctx, 90*time.Second)
	t.Cleanup(func() { cancelD(); cancelT(); cancelA() })
	var mu sync.Mutex
	var log bytes.Buffer
	if err := chromedp.Do(ctx); err != nil { // start the browser so the console can be subscribed to
		t.Fatalf("start Chromium: %v", err)
	}
	// The pages scroll smoothly to the form they open. A click sent while the page still moves lands
	// where the button was, so the tab asks for reduced motion, as some readers' systems do.
	reduced := emulation.SetEmulatedMediaParams{Features: []*emulation.MediaFeature{{Name: "prefers-reduced-motion", Value: "reduce"}}}
	if _, err := chromedp.Call(ctx, emulation.SetEmulatedMedia, reduced); err != nil {
		t.Fatalf("emulate reduced motion: %v", err)
	}
	msgs := chromedp.Console(ctx)
	go func() {
		for m, err := range msgs {
			if err != nil {
				return
			}
			mu.Lock()
			fmt.Fprintf(&log, "%s: %s\n", m.Type, m.Text)
			mu.Unlock()
		}
	}()
	return ctx, func() string { mu.Lock(); defer mu.Unlock(); return log.String() }
}

// throttle limits the tab's upload speed (bytes/s); -1 lifts the limit.
func throttle(t *testing.T, ctx context.Context, upload float64) {
	t.Helper()
	if _, err := chromedp.Call(ctx, network.Enable, network.EnableParams{}); err != nil {
		t.Fatal(err)
	}
	_, err := chromedp.Call(ctx, network.EmulateNetworkConditionsByRule, network.EmulateNetworkConditionsByRuleParams{
		MatchedNetworkConditions: []*network.Conditions{{DownloadThroughput: -1, UploadThroughput: upload}},
	})
	if err != nil {
		t.Fatalf("throttle the upload: %v", err)
	}
}

func text(t *testing.T, ctx context.Context, sel string) string {
	t.Helper()
	s, err := chromedp.Run(ctx, chromedp.Evaluate[string](fmt.Sprintf(`(function(){var e=document.querySelector(%q); return e ? e.textContent : ''})()`, sel)))
	if err != nil {
		t.Fatalf("read %s: %v", sel, err)
	}
	return s
}

// waitText waits up to 60 s for the first element matching sel to contain want, and returns its text.
func waitText(t *testing.T, ctx context.Context, sel, want string) string {
	t.Helper()
	js := fmt.Sprintf(`function(){var e=document.querySelector(%q); return !!e && e.textContent.indexOf(%q) >= 0}`, sel, want)
	if _, err := chromedp.Run(ctx, chromedp.PollFunction[bool](js, chromedp.WithPollingTimeout(60*time.Second))); err != nil {
		t.Fatalf("%s never showed %q (it shows %q; #msg %q): %v", sel, want, text(t, ctx, sel), text(t, ctx, "#msg"), err)
	}
	return text(t, ctx, sel)
}

// pollJS waits for expr to be true, and fails at once when the page reports an error in #msg; on failure
// it reports the text of explain.
func pollJS(t *testing.T, ctx context.Context, expr string, d time.Duration, explain string) {
	t.Helper()
	js := "function(){return (" + expr + ") || document.getElementById('msg').className === 'err'}"
	_, err := chromedp.Run(ctx, chromedp.PollFunction[bool](js, chromedp.WithPollingTimeout(d)))
	if err == nil {
		var ok bool
		ok, err = chromedp.Run(ctx, chromedp.Evaluate[bool](expr))
		if err == nil && !ok {
			err = fmt.Errorf("the page reports an error")
		}
	}
	if err != nil {
		t.Fatalf("%s never held (%s says %q): %v", expr, explain, text(t, ctx, explain), err)
	}
}

// screenshot saves the viewport to testdata-out/NAME, kept after the test to look at.
func screenshot(t *testing.T, ctx context.Context, name string) {
	t.Helper()
	png, err := chromedp.Run(ctx, chromedp.FullScreenshot(100))
	if err != nil {
		t.Errorf("screenshot: %v", err)
		return
	}
	if err := os.MkdirAll("testdata-out", 0o755); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join("testdata-out", name)
	if err := os.WriteFile(path, png, 0o644); err != nil {
		t.Fatal(err)
	}
	t.Logf("screenshot: cmd/lectern/%s", path)
}
