package main

import (
	"context"
	"os"
	"os/exec"
	"testing"
	"time"

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

// TestPlayerInChromium: the student page plays a published lecture with hls.js in real headless Chromium,
// every request going through the edge.
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
	s := startServe(t, data, "--assets-dir", "../../internal/web/node_modules")
	lec := uploadClip(t, s.base, token, "Browser", 10)
	waitReady(t, s.base, token, &lec)

	opts := []chromedp.ExecAllocatorOption{
		chromedp.ExecPath(browser), chromedp.Headless, chromedp.NoSandbox, chromedp.DisableGPU,
		chromedp.NoFirstRun, chromedp.NoDefaultBrowserCheck, chromedp.UserDataDir(t.TempDir()),
		chromedp.Flag("disable-quic", true), chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true), chromedp.Flag("disable-sync", true),
		chromedp.Flag("autoplay-policy", "no-user-gesture-required"),
	}
	actx, cancel := chromedp.NewExecAllocator(context.Background(), opts...)
	defer cancel()
	ctx, cancel := chromedp.NewContext(actx)
	defer cancel()
	ctx, cancel = context.WithTimeout(ctx, 90*time.Second)
	defer cancel()

	err := chromedp.Do(ctx,
		chromedp.Navigate(s.base+"/watch/"+lec.ID),
		chromedp.WaitReady("#video"),
		func(ctx context.Context, tg *chromedp.Target) (chromedp.Void, error) {
			_, err := chromedp.Evaluate[bool](`(function(){var v=document.getElementById('video'); v.muted=true; v.play(); return true})()`)(ctx, tg)
			return chromedp.Void{}, err
		},
	)
	if err != nil {
		t.Fatalf("open the player in Chromium: %v", err)
	}
	if _, err := chromedp.Run(ctx, chromedp.PollFunction[bool](`function(){return document.getElementById('video').currentTime > 4}`,
		chromedp.WithPollingTimeout(60*time.Second))); err != nil {
		status, _ := chromedp.Run(ctx, chromedp.Evaluate[string](`document.getElementById('status').textContent`))
		t.Fatalf("playback did not pass 4 s in Chromium: %v (page says %q)", err, status)
	}
	played, err := chromedp.Run(ctx, chromedp.Evaluate[float64](`document.getElementById('video').currentTime`))
	if err != nil {
		t.Fatal(err)
	}
	levels, _ := chromedp.Run(ctx, chromedp.Evaluate[int](`window.lecternHls ? window.lecternHls.levels.length : 0`))
	status, _ := chromedp.Run(ctx, chromedp.Evaluate[string](`document.getElementById('status').textContent`))
	if levels < 1 || status != "" {
		t.Fatalf("hls.js levels %d, status %q", levels, status)
	}
	t.Logf("played %.1f s in Chromium with hls.js, %d levels", played, levels)
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
