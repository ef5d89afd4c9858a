package latency

import (
	"testing"
	"time"
)

func TestHistogram(t *testing.T) {
	var h Histogram
	for _, d := range []time.Duration{100 * time.Microsecond, 500 * time.Microsecond, 3 * time.Millisecond, 20 * time.Second} {
		h.Observe(d)
	}
	buckets, n, sum := h.Snapshot()
	if n != 4 {
		t.Errorf("count %d, want 4", n)
	}
	if want := 20.0036; sum < want-1e-9 || sum > want+1e-9 {
		t.Errorf("sum %v, want %v", sum, want)
	}
	// Cumulative: the bound 0.0005 includes 0.0005 itself; 20 s is above every bound.
	for ub, want := range map[float64]uint64{0.0005: 2, 0.001: 2, 0.005: 3, 10: 3} {
		if buckets[ub] != want {
			t.Errorf("bucket le=%v: %d, want %d", ub, buckets[ub], want)
		}
	}
}
