package cdn

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strings"
	"testing"
)

// benchRegionMap is the default map's twelve regions with edges edges in all, spread over them
// (the first regions get one more when they do not divide evenly), and a /16 of clients each.
func benchRegionMap(b testing.TB, edges int) *RegionMap {
	b.Helper()
	def, err := ParseRegionMap(DefaultRegionMapJSON())
	if err != nil {
		b.Fatal(err)
	}
	var regs []string
	n := 0
	for i, r := range def.Regions {
		var es []string
		for k := 0; k < edges/len(def.Regions)+btoi(i < edges%len(def.Regions)); k++ {
			es = append(es, fmt.Sprintf(`{"url": "http://10.%d.0.%d:8082", "weight": %d}`, i, k+1, 1+n%3))
			n++
		}
		regs = append(regs, fmt.Sprintf(`%q: {"edges": [%s], "prefixes": ["10.%d.0.0/16"], "neighbours": [%q]}`,
			r.Name, strings.Join(es, ", "), 100+i, def.Regions[(i+1)%len(def.Regions)].Name))
	}
	m, err := ParseRegionMap([]byte(`{"default": "seoul", "regions": {` + strings.Join(regs, ", ") + `}}`))
	if err != nil {
		b.Fatal(err)
	}
	return m
}

func btoi(b bool) int {
	if b {
		return 1
	}
	return 0
}

// BenchmarkRouterDecision is one routing decision (region by address, weighted rendezvous hashing
// with bounded load over the region's edges) with 186 edges in the twelve regions, and with all 186
// in one region (the worst case: every decision scores all of them).
func BenchmarkRouterDecision(b *testing.B) {
	for _, tc := range []struct {
		name string
		m    func() *RegionMap
	}{
		{"186-edges-12-regions", func() *RegionMap { return benchRegionMap(b, 186) }},
		{"186-edges-1-region", func() *RegionMap { return benchOneRegion(b, 186) }},
	} {
		b.Run(tc.name, func(b *testing.B) {
			r, err := NewRouter(RouterConfig{Map: tc.m(), ProbeInterval: -1})
			if err != nil {
				b.Fatal(err)
			}
			lectures := make([]string, 1000)
			for i := range lectures {
				lectures[i] = fmt.Sprintf("lec-%06d", i)
			}
			b.ReportAllocs()
			b.ResetTimer()
			for i := 0; b.Loop(); i++ {
				addr := netip.AddrFrom4([4]byte{10, byte(100 + i%12), byte(i >> 8), byte(i)})
				if _, err := r.Route(lectures[i%len(lectures)], "", addr, ""); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "decisions/s")
		})
	}
}

// BenchmarkRouterHTTP is a whole request through the router's handler (parsing the URL, the client
// address, the decision and the 302), without the network, with 186 edges in twelve regions.
func BenchmarkRouterHTTP(b *testing.B) {
	r, err := NewRouter(RouterConfig{Map: benchRegionMap(b, 186), ProbeInterval: -1})
	if err != nil {
		b.Fatal(err)
	}
	reqs := make([]*http.Request, 1000)
	for i := range reqs {
		reqs[i] = httptest.NewRequest("GET", fmt.Sprintf("/hls/lec-%06d/v1/master.m3u8", i), nil)
		reqs[i].RemoteAddr = fmt.Sprintf("10.%d.%d.%d:40000", 100+i%12, i>>8, i&255)
	}
	w := &nullWriter{h: http.Header{}}
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; b.Loop(); i++ {
		clear(w.h)
		r.ServeHTTP(w, reqs[i%len(reqs)])
		if w.status != http.StatusFound {
			b.Fatalf("status %d", w.status)
		}
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "decisions/s")
}

func benchOneRegion(b testing.TB, edges int) *RegionMap {
	b.Helper()
	var es []string
	for k := 0; k < edges; k++ {
		es = append(es, fmt.Sprintf(`{"url": "http://10.0.%d.%d:8082", "weight": %d}`, k/250, k%250+1, 1+k%3))
	}
	m, err := ParseRegionMap([]byte(`{"default": "seoul", "regions": {"seoul": {"edges": [` + strings.Join(es, ", ") + `]}}}`))
	if err != nil {
		b.Fatal(err)
	}
	return m
}

type nullWriter struct {
	h      http.Header
	status int
}

func (w *nullWriter) Header() http.Header         { return w.h }
func (w *nullWriter) Write(p []byte) (int, error) { return len(p), nil }
func (w *nullWriter) WriteHeader(s int)           { w.status = s }
