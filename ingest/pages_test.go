package ingest

import (
	"io"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/gin-gonic/gin"
)

// TestNPMAssets: the bundles are found whether --assets-dir names node_modules, a flat directory they were
// copied into, or hls.js's dist directory (the flag's old meaning); a missing one says how to install it.
func TestNPMAssets(t *testing.T) {
	root := t.TempDir()
	write := func(path, body string) {
		t.Helper()
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	nm := filepath.Join(root, "node_modules")
	write(filepath.Join(nm, "hls.js", "dist", "hls.min.js"), "hls")
	write(filepath.Join(nm, "tus-js-client", "dist", "tus.min.js"), "tus")
	flat := filepath.Join(root, "flat")
	write(filepath.Join(flat, "hls.min.js"), "hls-flat")
	write(filepath.Join(flat, "tus.min.js"), "tus-flat")
	hlsOnly := filepath.Join(root, "hlsonly")
	write(filepath.Join(hlsOnly, "hls.min.js"), "hls-only")

	for _, tc := range []struct {
		dir, asset string
		code       int
		body       string
	}{
		{nm, "hls.min.js", 200, "hls"},
		{nm, "tus.min.js", 200, "tus"},
		{flat, "hls.min.js", 200, "hls-flat"},
		{flat, "tus.min.js", 200, "tus-flat"},
		{filepath.Join(nm, "hls.js", "dist"), "hls.min.js", 200, "hls"},
		{filepath.Join(nm, "hls.js", "dist"), "tus.min.js", 200, "tus"},
		{hlsOnly, "tus.min.js", 404, "make web"},
		{hlsOnly, "teach/upload.js", 200, "tus.Upload"}, // the page's own script is embedded, not from npm
		{hlsOnly, "teach/main.js", 200, "import"},
		{hlsOnly, "teach/nope.js", 404, "not found"},
	} {
		s := &Service{cfg: Config{AssetsDir: tc.dir}} // the asset routes need nothing else
		r := gin.New()
		s.mountPages(r)
		w := httptest.NewRecorder()
		r.ServeHTTP(w, httptest.NewRequest("GET", "/assets/"+tc.asset, nil))
		body, _ := io.ReadAll(w.Body)
		if w.Code != tc.code || !strings.Contains(string(body), tc.body) {
			t.Errorf("%s from %s: %d %.80q, want %d with %q", tc.asset, tc.dir, w.Code, body, tc.code, tc.body)
		}
	}
}
