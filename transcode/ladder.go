package transcode

import (
	"errors"
	"fmt"
	"regexp"
	"slices"
)

// Rung is one video rendition of the ladder. The ladder is data: a later, lecture-aware ladder changes
// the table (or computes it), not the ffmpeg plumbing.
type Rung struct {
	// Name is the rendition's directory and its name in the catalog, e.g. "720p". Letters, digits, "_"
	// and "-" only; "audio" is reserved for the audio rendition.
	Name string
	// Height of the output picture in pixels (even): its short side, so portrait sources get the same
	// pixel budget as landscape ones. The other side follows the source's aspect ratio.
	Height int
	// CRF is x264's constant rate factor: the quality target (lower is better, 18-28 is sensible).
	CRF int
	// MaxrateKbps and BufsizeKbps cap the CRF encode (x264 VBV), so a busy scene cannot exceed what the
	// rendition's viewers can download. Static slides stay far below the cap.
	MaxrateKbps, BufsizeKbps int
}

// DefaultLadder returns the thin first ladder: 720p and 360p, tuned for lectures (slides and a
// talking head compress well, so the caps are modest). It is a function so nobody can change the
// default for everyone by mutating a package variable.
func DefaultLadder() []Rung {
	return []Rung{
		{Name: "720p", Height: 720, CRF: 23, MaxrateKbps: 2500, BufsizeKbps: 5000},
		{Name: "360p", Height: 360, CRF: 26, MaxrateKbps: 700, BufsizeKbps: 1400},
	}
}

// audioName is the directory of the shared audio rendition; no rung may use it.
const audioName = "audio"

var rungName = regexp.MustCompile(`^[A-Za-z0-9_-]{1,32}$`)

func validateLadder(ladder []Rung) error {
	if len(ladder) == 0 {
		return errors.New("transcode: empty ladder")
	}
	seen := make(map[string]bool)
	for _, r := range ladder {
		switch {
		case !rungName.MatchString(r.Name) || r.Name == audioName:
			return fmt.Errorf("transcode: rung name %q: want 1-32 of [A-Za-z0-9_-], not %q", r.Name, audioName)
		case seen[r.Name]:
			return fmt.Errorf("transcode: rung name %q used twice", r.Name)
		case r.Height < 2:
			return fmt.Errorf("transcode: rung %s: height %d", r.Name, r.Height)
		case r.CRF < 0 || r.CRF > 51:
			return fmt.Errorf("transcode: rung %s: CRF %d outside 0-51", r.Name, r.CRF)
		case r.MaxrateKbps <= 0 || r.BufsizeKbps <= 0:
			return fmt.Errorf("transcode: rung %s: maxrate and bufsize must be positive", r.Name)
		}
		seen[r.Name] = true
	}
	return nil
}

// planLadder picks the rungs to encode for a source whose upright picture's short side is srcHeight
// pixels, tallest first (the master lists them in this order).
//
// Rungs taller than the source are dropped: upscaling costs bytes and adds no detail. Two cases keep
// the source's own height as a rung, with the rate settings of the nearest dropped rung above it:
//   - the source is shorter than every rung (one rung at the source height), and
//   - the source is much taller (>= 1.25x) than the tallest rung kept, e.g. a 1280x700 screen recording
//     with a 720p/360p ladder would otherwise be published at 360p only.
func planLadder(ladder []Rung, srcHeight int) []Rung {
	sorted := slices.Clone(ladder)
	slices.SortStableFunc(sorted, func(a, b Rung) int { return b.Height - a.Height })
	h := srcHeight &^ 1 // libx264 with 4:2:0 needs even dimensions
	if h < 2 {
		h = 2
	}
	var kept []Rung
	var above *Rung // the shortest rung taller than the source
	for i := range sorted {
		if sorted[i].Height <= h {
			kept = append(kept, sorted[i])
		} else {
			above = &sorted[i]
		}
	}
	if above != nil && (len(kept) == 0 || h*4 >= kept[0].Height*5) {
		own := *above
		own.Height = h
		own.Name = fmt.Sprintf("%dp", h)
		if slices.ContainsFunc(kept, func(r Rung) bool { return r.Name == own.Name }) {
			own.Name += "-src"
		}
		kept = append([]Rung{own}, kept...)
	}
	return kept
}
