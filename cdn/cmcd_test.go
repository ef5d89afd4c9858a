package cdn

import (
	"net/http"
	"testing"
)

func TestCMCDStrippedFromKeyAndUpstream(t *testing.T) {
	up := newUpstream(t, func(w http.ResponseWriter, r *http.Request) {
		serveObject(w, r, segment, "Cache-Control", "max-age=60")
	})
	_, ts := newTestEdge(t, up.URL, nil, nil)
	const cmcd = "CMCD=bl%3D21300%2Cbr%3D3200%2Cbs%2Cd%3D4004%2Cmtp%3D25400%2Cot%3Dv%2Csid%3D%226e2fb550%22"
	tests := []struct {
		name     string
		path     string
		hdr      []string
		cache    string // X-Cache
		upstream string // request URI the upstream saw, when it saw one
	}{
		{"first", "/seg1.m4s?" + cmcd, nil, "MISS", "/seg1.m4s"},
		{"other cmcd", "/seg1.m4s?CMCD=bl%3D100%2Csid%3D%22x%22", nil, "HIT", ""},
		{"no cmcd", "/seg1.m4s", nil, "HIT", ""},
		{"empty cmcd", "/seg1.m4s?CMCD=", nil, "HIT", ""},
		{"cmcd headers", "/seg1.m4s", []string{"CMCD-Request", "bl=21300", "CMCD-Session", `sid="7"`}, "HIT", ""},
		{"rest kept in order", "/seg2.m4s?b=2&" + cmcd + "&a=1", nil, "MISS", "/seg2.m4s?b=2&a=1"},
		{"same rest", "/seg2.m4s?b=2&a=1&CMCD=bl%3D1", nil, "HIT", ""},
		{"rest reordered is another key", "/seg2.m4s?a=1&b=2", nil, "MISS", "/seg2.m4s?a=1&b=2"},
		{"lower case is not CMCD", "/seg3.m4s?cmcd=x", nil, "MISS", "/seg3.m4s?cmcd=x"},
		{"prefix is not CMCD", "/seg3.m4s?CMCDX=1", nil, "MISS", "/seg3.m4s?CMCDX=1"},
	}
	for _, tc := range tests {
		before := up.total()
		r := get(t, ts, "GET", tc.path, tc.hdr...)
		if r.StatusCode != 200 || r.cache() != tc.cache {
			t.Errorf("%s: %d %s, want 200 %s", tc.name, r.StatusCode, r.cache(), tc.cache)
			continue
		}
		if tc.upstream == "" {
			continue
		}
		if n := up.total(); n != before+1 {
			t.Errorf("%s: upstream saw %d requests, want 1", tc.name, up.total()-before)
			continue
		}
		if got := up.last().URL.RequestURI(); got != tc.upstream {
			t.Errorf("%s: upstream saw %q, want %q", tc.name, got, tc.upstream)
		}
	}
}
