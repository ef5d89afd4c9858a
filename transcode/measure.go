package transcode

import (
	"math"
)

// segmentSize is one segment as measured on disk.
type segmentSize struct {
	bytes    int64
	duration float64 // seconds, from EXTINF
}

// bitrates returns the peak and average bit rates (bits per second) of a rendition's segments.
//
// The peak follows RFC 8216 §4.3.4.2: "the largest of the bit rates computed for each contiguous set of
// segments whose total duration is between 0.5 and 1.5 times the target duration". Measuring each
// segment alone would overstate a short last segment; measuring the whole file would hide a busy
// minute, and a player trusting BANDWIDTH would then stall on it.
func bitrates(segs []segmentSize, targetDuration float64) (peak, average int) {
	var totalBytes int64
	var totalDur float64
	for _, s := range segs {
		totalBytes += s.bytes
		totalDur += s.duration
	}
	if totalDur <= 0 {
		return 0, 0
	}
	avg := float64(totalBytes) * 8 / totalDur
	lo, hi := 0.5*targetDuration, 1.5*targetDuration
	best := 0.0
	for i := range segs {
		var b int64
		var d float64
		for j := i; j < len(segs); j++ {
			b += segs[j].bytes
			d += segs[j].duration
			if d > hi {
				break
			}
			if d >= lo {
				best = math.Max(best, float64(b)*8/d)
			}
		}
	}
	if best == 0 {
		// No window qualifies: the whole rendition is shorter than half a target duration, or segments
		// are longer than 1.5x. The busiest single segment is then the honest peak.
		for _, s := range segs {
			if s.duration > 0 {
				best = math.Max(best, float64(s.bytes)*8/s.duration)
			}
		}
	}
	return int(math.Ceil(best)), int(math.Ceil(avg))
}
