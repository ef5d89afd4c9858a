package transcode

import (
	"errors"
	"fmt"
	"regexp"
	"slices"
	"strings"
)

// Profile is a complete encoding recipe: the video ladder, the audio renditions and the encoder
// settings shared by every rung. The profiles are data (DefaultProfiles is the one table); the ffmpeg
// plumbing reads them and has no numbers of its own.
type Profile struct {
	// Name is what teachers pick ("lecture", "motion"); letters, digits and "-".
	Name string
	// Description is shown where a teacher picks a profile.
	Description string
	// Rungs are the video renditions, any order; planLadder keeps those the source can fill.
	Rungs []Rung
	// Audio are the AAC-LC stereo renditions, best first. A video lecture gets Audio[0] as its one shared
	// audio rendition; an audio-only lecture (a podcast) gets every entry as a variant.
	Audio []AudioRung
	// MaxFrameRate caps the output frame rate; faster sources are halved (60 -> 30). Slides and a talking
	// head gain nothing from 60 fps, sport and lab demonstrations do.
	MaxFrameRate float64
	// Preset is the x264 speed preset of every rung.
	Preset string
	// X264Params refines the preset for this kind of content ("key=value:key=value", x264's own option
	// names); "" keeps the preset as it is.
	X264Params string
	// AACCoder is the coder of ffmpeg's native AAC encoder: "" (its default, "twoloop") or "fast".
	AACCoder string
}

// Rung is one video rendition of a ladder.
type Rung struct {
	// Name is the rendition's directory and its name in the catalog, e.g. "720p". Letters, digits, "_"
	// and "-" only; names of audio renditions are reserved.
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

// AudioRung is one AAC-LC stereo rendition.
type AudioRung struct {
	// Name is the rendition's directory ("audio" for the first).
	Name string
	Kbps int
}

// DefaultProfileName is used when a lecture names no profile.
const DefaultProfileName = "lecture"

// DefaultProfiles returns the profile table. It is a function so nobody can change the defaults for
// everyone by mutating a package variable.
//
// Why these numbers: a lecture is mostly still slides and a speaking person, which x264 at a capped CRF
// encodes in a small fraction of a fixed ladder's bits (a static slide costs almost nothing after its
// first key frame). The caps only bind on busy scenes (a video clip shown in class); they sit at about
// half of the usual fixed ladder (5000/2800/1400/800 kb/s) because lecture content never needs the top
// of it. The motion profile is for sport, lab demonstrations and screen recordings with scrolling: a
// lower CRF, caps above the fixed ladder's, and up to 60 fps. The 240p rung is for poor connections
// (a phone on a weak signal still gets pictures, not buffering).
//
// The lecture profile also trades a little compression for speed where lecture content does not
// need it (measured on the 1080p rung of bench/gen-lecture.sh, 40 s, against plain veryfast): x264's
// sub-pixel refinement at its cheapest (subme=1), a 5-frame lookahead for macroblock-tree rate
// control instead of 10, and one B-frame instead of three cost 17% less CPU for 4% more bytes and an
// SSIM 0.0002 lower; with one B-frame there is nothing for adaptive B-frame placement to decide, so
// b-adapt=0 skips that lookahead work (same bytes). Its speech goes through the "fast" AAC coder: the
// default two-loop search took 3.6 CPU seconds for 2 minutes, all of it on ffmpeg's one thread that
// also feeds every encoder, and a lecture's voice does not need it. Motion keeps the full preset and
// coder.
func DefaultProfiles() []Profile {
	return []Profile{
		{
			Name:         "lecture",
			Description:  "slides, whiteboard and a speaking person (smallest files)",
			MaxFrameRate: 30,
			Preset:       "veryfast",
			X264Params:   "subme=1:rc-lookahead=5:bframes=1:b-adapt=0",
			AACCoder:     "fast",
			Rungs: []Rung{
				{Name: "1080p", Height: 1080, CRF: 23, MaxrateKbps: 2500, BufsizeKbps: 5000},
				{Name: "720p", Height: 720, CRF: 23, MaxrateKbps: 1500, BufsizeKbps: 3000},
				{Name: "480p", Height: 480, CRF: 24, MaxrateKbps: 800, BufsizeKbps: 1600},
				{Name: "360p", Height: 360, CRF: 25, MaxrateKbps: 500, BufsizeKbps: 1000},
				{Name: "240p", Height: 240, CRF: 27, MaxrateKbps: 250, BufsizeKbps: 500},
			},
			Audio: []AudioRung{{Name: "audio", Kbps: 96}, {Name: "audio-48k", Kbps: 48}},
		},
		{
			Name:         "motion",
			Description:  "sport, experiments, fast screen recordings (more bits, up to 60 fps)",
			MaxFrameRate: 60,
			Preset:       "veryfast",
			Rungs: []Rung{
				{Name: "1080p", Height: 1080, CRF: 21, MaxrateKbps: 6000, BufsizeKbps: 12000},
				{Name: "720p", Height: 720, CRF: 22, MaxrateKbps: 3500, BufsizeKbps: 7000},
				{Name: "480p", Height: 480, CRF: 23, MaxrateKbps: 1700, BufsizeKbps: 3400},
				{Name: "360p", Height: 360, CRF: 24, MaxrateKbps: 1000, BufsizeKbps: 2000},
				{Name: "240p", Height: 240, CRF: 26, MaxrateKbps: 500, BufsizeKbps: 1000},
			},
			Audio: []AudioRung{{Name: "audio", Kbps: 128}, {Name: "audio-64k", Kbps: 64}},
		},
	}
}

// FindProfile returns the profile called name ("" = DefaultProfileName) from profiles.
func FindProfile(profiles []Profile, name string) (Profile, bool) {
	if name == "" {
		name = DefaultProfileName
	}
	for _, p := range profiles {
		if p.Name == name {
			return p, true
		}
	}
	return Profile{}, false
}

// ProfileNames lists the names of profiles, in table order.
func ProfileNames(profiles []Profile) []string {
	names := make([]string, len(profiles))
	for i, p := range profiles {
		names[i] = p.Name
	}
	return names
}

var (
	rungName    = regexp.MustCompile(`^[A-Za-z0-9_-]{1,32}$`)
	profileName = regexp.MustCompile(`^[a-z0-9][a-z0-9-]{0,31}$`)
	presets     = []string{"ultrafast", "superfast", "veryfast", "faster", "fast", "medium", "slow", "slower", "veryslow"}
	x264Params  = regexp.MustCompile(`^[a-z0-9-]+=[A-Za-z0-9.,+-]+(:[a-z0-9-]+=[A-Za-z0-9.,+-]+)*$`)
	aacCoders   = []string{"", "twoloop", "fast"}
)

// reservedNames are output names that are not renditions.
var reservedNames = []string{"subs", "thumbs"}

func validateProfiles(profiles []Profile) error {
	if len(profiles) == 0 {
		return errors.New("transcode: no profiles")
	}
	seen := make(map[string]bool)
	for _, p := range profiles {
		if !profileName.MatchString(p.Name) || seen[p.Name] {
			return fmt.Errorf("transcode: profile name %q: want 1-32 of [a-z0-9-], unique", p.Name)
		}
		seen[p.Name] = true
		if err := validateProfile(p); err != nil {
			return fmt.Errorf("transcode: profile %s: %w", p.Name, err)
		}
	}
	if _, ok := FindProfile(profiles, DefaultProfileName); !ok {
		return fmt.Errorf("transcode: no %q profile (the default)", DefaultProfileName)
	}
	return nil
}

func validateProfile(p Profile) error {
	if len(p.Rungs) == 0 {
		return errors.New("no video rungs")
	}
	if len(p.Audio) == 0 {
		return errors.New("no audio renditions")
	}
	if !slices.Contains(presets, p.Preset) {
		return fmt.Errorf("x264 preset %q: want one of %v", p.Preset, presets)
	}
	if p.X264Params != "" && !x264Params.MatchString(p.X264Params) {
		return fmt.Errorf("x264 params %q: want key=value pairs separated by \":\"", p.X264Params)
	}
	if !slices.Contains(aacCoders, p.AACCoder) {
		return fmt.Errorf("AAC coder %q: want one of %q", p.AACCoder, aacCoders)
	}
	if !(p.MaxFrameRate >= 1 && p.MaxFrameRate <= 120) {
		return fmt.Errorf("max frame rate %v outside 1-120", p.MaxFrameRate)
	}
	seen := make(map[string]bool)
	name := func(n string) error {
		switch {
		case !rungName.MatchString(n) || slices.Contains(reservedNames, n):
			return fmt.Errorf("rendition name %q: want 1-32 of [A-Za-z0-9_-], not %v", n, reservedNames)
		case seen[n]:
			return fmt.Errorf("rendition name %q used twice", n)
		}
		seen[n] = true
		return nil
	}
	// Content types follow the directory name (publish.go): audio renditions are "audio...", video not.
	for _, a := range p.Audio {
		if err := name(a.Name); err != nil {
			return err
		}
		if !strings.HasPrefix(a.Name, audioName) {
			return fmt.Errorf("audio rendition %q: the name must start with %q", a.Name, audioName)
		}
		if a.Kbps < 16 || a.Kbps > 512 {
			return fmt.Errorf("audio %s: %d kb/s outside 16-512", a.Name, a.Kbps)
		}
	}
	for _, r := range p.Rungs {
		if err := name(r.Name); err != nil {
			return err
		}
		if strings.HasPrefix(r.Name, audioName) {
			return fmt.Errorf("video rung %q: names starting with %q are for audio", r.Name, audioName)
		}
		switch {
		case r.Height < 2:
			return fmt.Errorf("rung %s: height %d", r.Name, r.Height)
		case r.CRF < 0 || r.CRF > 51:
			return fmt.Errorf("rung %s: CRF %d outside 0-51", r.Name, r.CRF)
		case r.MaxrateKbps <= 0 || r.BufsizeKbps <= 0:
			return fmt.Errorf("rung %s: maxrate and bufsize must be positive", r.Name)
		}
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
