package loadtest

import (
	"strings"
	"testing"
)

func TestWriteTable(t *testing.T) {
	r := &Report{Students: 10, Started: 9, Finished: 8, Failed: 1, Unfinished: 1,
		StartupMS: Percentiles{P50: 12, P95: 40, P99: 55, Max: 61}, Rebuffers: 2, RebuffersAfterSeek: 1, RebufferSeconds: 1.5, PlayedSeconds: 600,
		Requests: 1234, Bytes: 3 << 20, Errors: map[string]int64{"503": 3, "timeout": 1, "404": 2}, ErrorTotal: 6,
		Rungs:  map[string]int64{"800000": 5, "3000000": 7, "200000": 1},
		Origin: &OriginCounters{Requests: 12, Bytes: 1 << 20}, Offload: &Offload{Requests: 0.990276, Bytes: 0.666667},
		WallSeconds: 12.3456, Speed: 10}
	var b strings.Builder
	if err := r.WriteTable(&b); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{
		"10 (started 9, finished 8, failed 1, unfinished 1)",
		"p50 12 ms  p95 40 ms  p99 55 ms  max 61 ms",
		"2 (1 right after a seek), 1.5 s stalled over 600.0 s played",
		"1234, 3.0 MiB",
		"6 (404: 2, 503: 3, timeout: 1)",
		"200000: 1, 800000: 5, 3000000: 7",
		"12 requests, 1.0 MiB",
		"99.0276% of requests, 66.6667% of bytes",
		"12.346s at 10x",
	} {
		if !strings.Contains(b.String(), want) {
			t.Errorf("no %q in\n%s", want, b.String())
		}
	}
}
