package cdn

import (
	"context"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

// WatchRegionMap applies each new good content once, and reports a bad or missing file once, not
// at every read.
func TestWatchRegionMap(t *testing.T) {
	file := filepath.Join(t.TempDir(), "regions.json")
	writeRegionMap(t, file, "", regionEdge("http://a:1", false))
	cur, err := LoadRegionMap(file)
	if err != nil {
		t.Fatal(err)
	}
	logs := make(logCapture, 1000)
	applied := make(chan *RegionMap, 10)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	watching := make(chan struct{})
	var edits RegionMapEdits
	go func() {
		defer close(watching)
		WatchRegionMap(ctx, file, cur, 2*time.Millisecond, slog.New(logs), &edits, func(m *RegionMap) error {
			applied <- m
			return nil
		})
	}()
	var wg sync.WaitGroup

	var (
		mu    sync.Mutex
		lines []string
	)
	wg.Go(func() {
		for l := range logs {
			mu.Lock()
			lines = append(lines, l)
			mu.Unlock()
		}
	})
	count := func(what string) int {
		mu.Lock()
		defer mu.Unlock()
		n := 0
		for _, l := range lines {
			n += strings.Count(l, what)
		}
		return n
	}
	waitCount := func(what string) {
		t.Helper()
		for deadline := time.Now().Add(10 * time.Second); count(what) == 0; time.Sleep(time.Millisecond) {
			if time.Now().After(deadline) {
				t.Fatalf("no log line with %q", what)
			}
		}
		time.Sleep(50 * time.Millisecond) // 25 more reads of the same file
	}

	writeRegionMap(t, file, `"nowhere"`, regionEdge("http://a:1", false))
	waitCount("region map edit refused")
	os.Remove(file)
	waitCount("region map unreadable")
	writeRegionMap(t, file, "", regionEdge("http://a:1", false), regionEdge("http://b:1", true))
	select {
	case m := <-applied:
		if e := m.Region("seoul").Edges; len(e) != 2 || !e[1].Drain {
			t.Errorf("applied %+v", e)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the good edit was not applied")
	}
	time.Sleep(50 * time.Millisecond)
	cancel()
	<-watching
	close(logs) // the watcher has returned: nothing logs any more
	wg.Wait()
	if r, u := count("region map edit refused"), count("region map unreadable"); r != 1 || u != 1 || len(applied) != 0 {
		t.Errorf("%d refused, %d unreadable, %d more applied; want 1, 1, 0", r, u, len(applied))
	}
	if a, r := edits.Applied.Load(), edits.Refused.Load(); a != 1 || r != 1 {
		t.Errorf("edits counted: %d applied, %d refused; want 1 and 1", a, r)
	}
}
