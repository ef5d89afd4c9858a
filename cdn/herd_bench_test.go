package cdn

import (
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"strconv"
	"sync"
	"testing"
	"time"
)

// Herd latency: herdClients clients ask one edge, over loopback, for the same new segment at the
// same moment, while the upstream takes herdFetch to send it (it dribbles the body). With fills
// that stream, every client should be done about when the upstream is: the target is a p99
// client latency at most the upstream fetch time plus 50 ms, from one upstream request.
//
//	go test -run '^$' -bench Herd -benchtime 5x ./cdn/     (or make bench-herd)
//
// Each iteration is one herd on a new key. Reported: fetch-ms (the upstream's time from the
// request to the last byte, mean), p50-ms, p99-ms and max-ms (client latency from sending the
// request to reading the last byte, over every client of every herd), p99-over-fetch-ms, and
// upstream-reqs/key (the most upstream requests any key got; must be 1).
const (
	herdClients = 400
	herdSize    = 400 << 10
	herdFetch   = 200 * time.Millisecond
	herdChunks  = 20
)

func BenchmarkHerd(b *testing.B) {
	body := make([]byte, herdSize)
	for i := range body {
		body[i] = byte(i)
	}
	var mu sync.Mutex
	fetches := map[string][]time.Duration{}
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		w.Header().Set("Cache-Control", "max-age=600")
		w.Header().Set("Content-Type", "video/iso.segment")
		w.Header().Set("Content-Length", strconv.Itoa(len(body)))
		w.WriteHeader(http.StatusOK)
		rc := http.NewResponseController(w)
		step := len(body) / herdChunks
		for i := range herdChunks {
			end := (i + 1) * step
			if i == herdChunks-1 {
				end = len(body)
			}
			w.Write(body[i*step : end])
			rc.Flush()
			if i < herdChunks-1 {
				time.Sleep(herdFetch / (herdChunks - 1))
			}
		}
		mu.Lock()
		fetches[r.URL.Path] = append(fetches[r.URL.Path], time.Since(start))
		mu.Unlock()
	}))
	defer up.Close()
	u, _ := url.Parse(up.URL)
	e, err := NewEdge(Config{Upstream: u, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		b.Fatal(err)
	}
	ts := httptest.NewServer(e)
	defer ts.Close()
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: herdClients, DisableCompression: true}}
	defer client.CloseIdleConnections()

	herd := func(path string) []time.Duration {
		lat := make([]time.Duration, herdClients)
		var ready, done sync.WaitGroup
		start := make(chan struct{})
		for i := range herdClients {
			ready.Add(1)
			done.Go(func() {
				ready.Done()
				<-start
				t0 := time.Now()
				resp, err := client.Get(ts.URL + path)
				if err != nil {
					b.Error(err)
					return
				}
				n, err := io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				lat[i] = time.Since(t0)
				if err != nil || resp.StatusCode != http.StatusOK || n != herdSize {
					b.Errorf("%s: %d, %d bytes, %v", path, resp.StatusCode, n, err)
				}
			})
		}
		ready.Wait()
		close(start)
		done.Wait()
		return lat
	}

	herd("/hls/herd/warmup.m4s") // opens the clients' connections, which later herds reuse
	var all []time.Duration
	b.ResetTimer()
	for i := range b.N {
		all = append(all, herd(fmt.Sprintf("/hls/herd/seg_%05d.m4s", i))...)
	}
	b.StopTimer()

	mu.Lock()
	defer mu.Unlock()
	var fetchSum time.Duration
	maxReqs, nFetch := 0, 0
	for path, ds := range fetches {
		if path == "/hls/herd/warmup.m4s" {
			continue
		}
		maxReqs = max(maxReqs, len(ds))
		for _, d := range ds {
			fetchSum += d
			nFetch++
		}
	}
	if nFetch == 0 {
		b.Fatal("no upstream fetch")
	}
	slices.Sort(all)
	pct := func(p float64) time.Duration { return all[min(len(all)-1, int(p*float64(len(all))))] }
	ms := func(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }
	fetch := fetchSum / time.Duration(nFetch)
	b.ReportMetric(ms(fetch), "fetch-ms")
	b.ReportMetric(ms(pct(0.50)), "p50-ms")
	b.ReportMetric(ms(pct(0.99)), "p99-ms")
	b.ReportMetric(ms(all[len(all)-1]), "max-ms")
	b.ReportMetric(ms(pct(0.99)-fetch), "p99-over-fetch-ms")
	b.ReportMetric(float64(maxReqs), "upstream-reqs/key")
}
