package probe

import "math"

// Frame rates a camera, screen recorder or editor produces, and the only ones worth encoding at.
var commonRates = []float64{24000.0 / 1001, 24, 25, 30000.0 / 1001, 30, 50, 60000.0 / 1001, 60}

const (
	// maxPlausibleRate is above any real capture rate (phones shoot slow motion at 240). A larger
	// "rate" is the timestamp clock (90000 for MPEG-TS, 1000 for Matroska/WebM) that ffprobe fell back
	// to because the frames came at no regular interval.
	maxPlausibleRate = 240
	// vfrTolerance is how far the average rate may stray from the nominal one in a constant-rate file:
	// a short clip's last frame, or an edit list, moves the average a little.
	vfrTolerance = 0.02
	// snapTolerance is how close a rate must be to a common rate to be taken for it.
	snapTolerance = 0.01
	// defaultRate is what to encode at when the source says nothing usable.
	defaultRate = 30
)

// variableFrameRate guesses from the two rates ffprobe reports whether frames come at irregular
// intervals. ffprobe has no flag for it; avg is frames/duration from the container's index (0 when
// unknown) and nominal is r_frame_rate, the lowest rate that represents the first timestamps exactly.
//
//   - avg and nominal differ by more than 2%: the stream says 30 fps but delivers 27 frames a
//     second, as phones do when they stretch exposure in dim light or drop frames under load.
//   - avg is unknown and nominal is implausible (above maxPlausibleRate): ffprobe fell back to the
//     timestamp clock, as for browser-recorded WebM (r_frame_rate 1000/1) or MPEG-TS (90000/1).
//   - avg itself is implausible, for the same reason.
//
// Blind spots: jitter that averages out to the nominal rate, and containers whose average comes
// from a declared rate rather than from counting frames (Matroska, MPEG-TS written by ffmpeg report
// avg = nominal). Encoding at a constant OutputFrameRate handles those too; the flag is for logs and
// for choosing a frame-accurate rather than a cheap path.
func variableFrameRate(avg, nominal float64) bool {
	switch {
	case avg > maxPlausibleRate:
		return true
	case avg > 0 && nominal > 0:
		return math.Abs(avg-nominal) > vfrTolerance*nominal
	case avg == 0:
		return nominal > maxPlausibleRate
	}
	return false
}

// OutputFrameRate returns the constant frame rate an encoder should produce for this source.
//
// That is the nominal rate when it is a common one and the source delivers clearly fewer frames a
// second (more than 2% fewer, see variableFrameRate): a phone that drops frames under load or stretches exposure in dim light (30 nominal, 22 or
// 27 on average) was recording at 30, and encoding at 30 keeps the motion of its regular stretches
// smooth and the rate one players know; the missing frames are repeated, which costs x264 almost
// nothing. Otherwise it is the average rate (the nominal one when the average is unknown or
// implausible), snapped to the nearest common rate when within 1%, so that 29.96 becomes 30000/1001.
//
// When max > 0 the result is at most max. A rate that is a whole multiple of a common rate at or below
// max is divided (59.94 becomes 29.97, 60 and 120 become 30, 50 becomes 25 for max 30), so that
// every n-th frame is kept and motion stays even; any other rate is capped at max. A source without a
// usable rate (audio only, a timestamp clock in place of a rate) gives 30, or max if lower.
func (r Result) OutputFrameRate(max float64) float64 {
	rate := float64(defaultRate)
	avgOK := r.FrameRate > 0 && r.FrameRate <= maxPlausibleRate
	switch nominal := snapRate(r.NominalFrameRate); {
	case avgOK && isCommon(nominal) && r.FrameRate < nominal*(1-vfrTolerance):
		rate = nominal
	case avgOK:
		rate = r.FrameRate
	case r.NominalFrameRate > 0 && r.NominalFrameRate <= maxPlausibleRate:
		rate = r.NominalFrameRate
	}
	rate = snapRate(rate)
	if max <= 0 || rate <= max {
		return rate
	}
	// Smallest divisor that brings the rate to max or below; 8 takes 240 to 30.
	for n := 2; n <= 8; n++ {
		if d := rate / float64(n); d <= max {
			if s := snapRate(d); isCommon(s) && s <= max {
				return s
			}
			break
		}
	}
	return max
}

// snapRate returns the common rate nearest to rate when it is within snapTolerance, else rate.
func snapRate(rate float64) float64 {
	best, bestDiff := rate, math.Inf(1)
	for _, c := range commonRates {
		if diff := math.Abs(rate - c); diff <= snapTolerance*c && diff < bestDiff {
			best, bestDiff = c, diff
		}
	}
	return best
}

func isCommon(rate float64) bool {
	for _, c := range commonRates {
		if rate == c {
			return true
		}
	}
	return false
}
