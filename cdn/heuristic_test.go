package cdn

import (
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"
)

// TestHeuristicFreshness checks RFC 9111 §4.2.2: a response with Last-Modified and no explicit
// freshness is fresh for a tenth of Date minus Last-Modified, at most a day, for heuristically
// cacheable statuses only.
func TestHeuristicFreshness(t *testing.T) {
	clk := newClock()
	type reply struct {
		status   int
		modified time.Duration // Last-Modified this long before Date; 0: none
		hdr      []string
	}
	replies := map[string]reply{}
	up := newUpstream(t, func(w http.ResponseWriter, r *http.Request) {
		rp := replies[r.URL.Path]
		h := w.Header()
		h.Set("Date", clk.Now().Format(http.TimeFormat))
		if rp.modified != 0 {
			h.Set("Last-Modified", clk.Now().Add(-rp.modified).Format(http.TimeFormat))
		}
		for i := 0; i+1 < len(rp.hdr); i += 2 {
			h.Set(rp.hdr[i], rp.hdr[i+1])
		}
		w.WriteHeader(rp.status)
		if rp.status != http.StatusNoContent {
			w.Write(segment)
		}
	})
	_, ts := newTestEdge(t, up.URL, clk, nil)
	tests := []struct {
		name     string
		reply    reply
		advance  time.Duration
		want     string // X-Cache of the second request
		wantTTL  int    // ttl in the first response's Cache-Status; 0: not stored
		wantAge  string // Age of the second response, when it is a hit
		upstream int    // requests the upstream saw for the two
	}{
		{"200 within 10%", reply{200, 1000 * time.Second, nil}, 99 * time.Second, "HIT", 100, "99", 1},
		{"200 past 10%", reply{200, 1000 * time.Second, nil}, 100 * time.Second, "MISS", 100, "", 2},
		{"capped at a day", reply{200, 365 * 24 * time.Hour, nil}, 24*time.Hour - time.Second, "HIT", 86400, "86399", 1},
		{"cap passed", reply{200, 365 * 24 * time.Hour, nil}, 24 * time.Hour, "MISS", 86400, "", 2},
		{"upstream Age counts", reply{200, 1000 * time.Second, []string{"Age", "90"}}, 9 * time.Second, "HIT", 10, "99", 1},
		{"upstream Age past it", reply{200, 1000 * time.Second, []string{"Age", "90"}}, 10 * time.Second, "MISS", 10, "", 2},
		{"404", reply{404, 1000 * time.Second, nil}, 50 * time.Second, "HIT", 100, "50", 1},
		{"410", reply{410, 1000 * time.Second, nil}, 50 * time.Second, "HIT", 100, "50", 1},
		{"301", reply{301, 1000 * time.Second, []string{"Location", "/x"}}, 50 * time.Second, "HIT", 100, "50", 1},
		{"204", reply{204, 1000 * time.Second, nil}, 50 * time.Second, "HIT", 100, "50", 1},
		{"302 is not heuristic", reply{302, 1000 * time.Second, []string{"Location", "/x"}}, 0, "MISS", 0, "", 2},
		{"501 is not stored", reply{501, 1000 * time.Second, nil}, 0, "MISS", 0, "", 2},
		{"no Last-Modified", reply{200, 0, nil}, 0, "MISS", 0, "", 2},
		{"Last-Modified after Date", reply{200, -10 * time.Second, nil}, 0, "MISS", 0, "", 2},
		{"explicit max-age wins", reply{200, 1000 * time.Second, []string{"Cache-Control", "max-age=5"}}, 6 * time.Second, "MISS", 5, "", 2},
		{"explicit Expires wins", reply{200, 1000 * time.Second, []string{"Expires", "0"}}, 0, "MISS", 0, "", 2},
		{"no-cache", reply{200, 1000 * time.Second, []string{"Cache-Control", "no-cache"}}, 0, "MISS", 0, "", 2},
		{"CDN-Cache-Control is explicit", reply{200, 1000 * time.Second, []string{"CDN-Cache-Control", "max-age=5"}}, 6 * time.Second, "MISS", 5, "", 2},
		{"CDN-Cache-Control without freshness", reply{200, 1000 * time.Second, []string{"CDN-Cache-Control", "public", "Cache-Control", "max-age=5"}}, 50 * time.Second, "HIT", 100, "50", 1},
	}
	for i, tc := range tests {
		path := "/h" + strconv.Itoa(i)
		replies[path] = tc.reply
	}
	for i, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			path := "/h" + strconv.Itoa(i)
			first := get(t, ts, "GET", path)
			if first.StatusCode != tc.reply.status || first.cache() != "MISS" {
				t.Fatalf("first: %d %s", first.StatusCode, first.cache())
			}
			cs := first.Header.Get("Cache-Status")
			if stored := strings.HasSuffix(cs, "; stored; ttl="+strconv.Itoa(tc.wantTTL)); stored != (tc.wantTTL != 0) ||
				tc.wantTTL == 0 && strings.Contains(cs, "stored") {
				t.Errorf("first: Cache-Status %q, want ttl=%d when stored", cs, tc.wantTTL)
			}
			clk.Advance(tc.advance)
			second := get(t, ts, "GET", path)
			if second.cache() != tc.want {
				t.Errorf("after %v: %s, want %s", tc.advance, second.cache(), tc.want)
			}
			if tc.wantAge != "" && second.Header.Get("Age") != tc.wantAge {
				t.Errorf("Age %q, want %s", second.Header.Get("Age"), tc.wantAge)
			}
			if n := up.count(path); n != tc.upstream {
				t.Errorf("upstream saw %d requests, want %d", n, tc.upstream)
			}
		})
	}
}
