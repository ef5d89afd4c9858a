package plan

import (
	"errors"
	"fmt"
	"math"
	"path"
	"strconv"
	"strings"

	"github.com/lectern/lectern/internal/hls"
)

// rateUnits are the bit-rate suffixes ParseRate accepts, longest first so "Mb/s" is not read as "b/s".
var rateUnits = []struct {
	suffix string
	mult   float64
}{
	{"Tb/s", 1e12}, {"Gb/s", 1e9}, {"Mb/s", 1e6}, {"kb/s", 1e3}, {"Kb/s", 1e3},
	{"Tbps", 1e12}, {"Gbps", 1e9}, {"Mbps", 1e6}, {"kbps", 1e3}, {"Kbps", 1e3},
	{"b/s", 1}, {"bps", 1},
}

// ParseRate reads a bit rate such as "2.8Mb/s", "448kb/s", "10Gbps" or "2800000" (bits per second).
// Rates are decimal (1 Mb/s = 10^6 b/s), as network links and HLS BANDWIDTH are.
func ParseRate(s string) (float64, error) {
	t := strings.TrimSpace(s)
	mult := 1.0
	for _, u := range rateUnits {
		if rest, ok := strings.CutSuffix(t, u.suffix); ok {
			t, mult = strings.TrimSpace(rest), u.mult
			break
		}
	}
	v, err := strconv.ParseFloat(t, 64)
	if err != nil || !(v > 0) || math.IsInf(v, 0) {
		return 0, fmt.Errorf("%q is not a bit rate (write e.g. 2.8Mb/s, 448kb/s or 10Gb/s)", s)
	}
	return v * mult, nil
}

// ParseFraction reads a share or ratio written as a percentage ("40%", "99.5%") or a fraction ("0.4")
// between 0 and 1 inclusive.
func ParseFraction(s string) (float64, error) {
	t := strings.TrimSpace(s)
	div := 1.0
	if rest, ok := strings.CutSuffix(t, "%"); ok {
		t, div = strings.TrimSpace(rest), 100
	}
	v, err := strconv.ParseFloat(t, 64)
	if err != nil || math.IsNaN(v) {
		return 0, fmt.Errorf("%q is not a fraction (write e.g. 40%% or 0.4)", s)
	}
	v /= div
	if v < 0 || v > 1 {
		return 0, fmt.Errorf("%q is outside 0-100%%", s)
	}
	return v, nil
}

// ParseLadder reads a ladder written as "NAME:RATE:SHARE,...", e.g.
// "1080p:546kb/s:10%,720p:345kb/s:40%,480p:232kb/s:50%". RATE is what one student watching that rung
// downloads on average (video plus audio); SHARE is the part of the students watching it. The shares
// must add up to 100%.
func ParseLadder(s string) ([]Rung, error) {
	var rungs []Rung
	for _, item := range strings.Split(s, ",") {
		item = strings.TrimSpace(item)
		parts := strings.Split(item, ":")
		if len(parts) != 3 || strings.TrimSpace(parts[0]) == "" {
			return nil, fmt.Errorf("rung %q: write NAME:RATE:SHARE, e.g. 720p:1.2Mb/s:40%%", item)
		}
		rate, err := ParseRate(parts[1])
		if err != nil {
			return nil, fmt.Errorf("rung %q: rate %w", item, err)
		}
		share, err := ParseFraction(parts[2])
		if err != nil {
			return nil, fmt.Errorf("rung %q: share %w", item, err)
		}
		rungs = append(rungs, Rung{Name: strings.TrimSpace(parts[0]), Rate: rate, Share: share})
	}
	if err := checkRungs(rungs); err != nil {
		return nil, err
	}
	return rungs, nil
}

// ParseMix reads the shares of students per rung, "NAME:SHARE,...", e.g. "1080p:10%,720p:40%,480p:50%".
func ParseMix(s string) (map[string]float64, error) {
	mix := make(map[string]float64)
	for _, item := range strings.Split(s, ",") {
		item = strings.TrimSpace(item)
		name, share, ok := strings.Cut(item, ":")
		name = strings.TrimSpace(name)
		if !ok || name == "" {
			return nil, fmt.Errorf("%q: write NAME:SHARE, e.g. 720p:40%%", item)
		}
		if _, dup := mix[name]; dup {
			return nil, fmt.Errorf("rung %q named twice", name)
		}
		v, err := ParseFraction(share)
		if err != nil {
			return nil, fmt.Errorf("rung %s: share %w", name, err)
		}
		mix[name] = v
	}
	return mix, nil
}

// MasterLadder is the ladder read from a published master playlist.
type MasterLadder struct {
	Rungs []Rung
	// SeparateAudio is true when the variants play with an EXT-X-MEDIA audio rendition (Lectern's
	// video lectures): a player then fetches two segments (video and audio) per segment duration.
	SeparateAudio bool
	// Peak is true when at least one rate is the variant's BANDWIDTH (peak) because it has no
	// AVERAGE-BANDWIDTH.
	Peak bool
}

// LadderFromMaster takes the rung rates from a master playlist's variants (AVERAGE-BANDWIDTH, or
// BANDWIDTH where a variant has none) and the shares from mix, keyed by rung name: the first directory
// of the variant's URI ("720p/index.m3u8" is "720p"), or the URI without its extension. Every name in
// mix must be a variant; variants mix does not name get no students.
func LadderFromMaster(data []byte, mix map[string]float64) (MasterLadder, error) {
	m, err := hls.ParseMaster(data)
	if err != nil {
		return MasterLadder{}, err
	}
	var out MasterLadder
	rates := make(map[string]float64)
	var names []string
	for _, v := range m.Variants {
		name := variantName(v.URI)
		rate := float64(v.AverageBandwidth)
		if rate <= 0 {
			rate, out.Peak = float64(v.Bandwidth), true
		}
		if _, dup := rates[name]; dup {
			return MasterLadder{}, fmt.Errorf("two variants are named %q", name)
		}
		rates[name] = rate
		names = append(names, name)
		if v.Audio != "" {
			for _, a := range m.Audio {
				if a.GroupID == v.Audio && a.URI != "" {
					out.SeparateAudio = true
				}
			}
		}
	}
	for name := range mix {
		if _, ok := rates[name]; !ok {
			return MasterLadder{}, fmt.Errorf("rung %q is not in the master playlist (its rungs: %s)", name, strings.Join(names, ", "))
		}
	}
	for _, name := range names {
		out.Rungs = append(out.Rungs, Rung{Name: name, Rate: rates[name], Share: mix[name]})
	}
	if err := checkRungs(out.Rungs); err != nil {
		return MasterLadder{}, err
	}
	return out, nil
}

func variantName(uri string) string {
	uri, _, _ = strings.Cut(uri, "?")
	if dir := path.Dir(uri); dir != "." && dir != "/" {
		return path.Base(dir)
	}
	return strings.TrimSuffix(path.Base(uri), path.Ext(uri))
}

// shareTolerance allows shares written with rounding ("33.3%" three times).
const shareTolerance = 0.005

func checkRungs(rungs []Rung) error {
	if len(rungs) == 0 {
		return errors.New("no rungs")
	}
	seen := make(map[string]bool)
	var sum float64
	for _, r := range rungs {
		if seen[r.Name] {
			return fmt.Errorf("rung %q named twice", r.Name)
		}
		seen[r.Name] = true
		sum += r.Share
	}
	if math.Abs(sum-1) > shareTolerance {
		return fmt.Errorf("the shares add up to %.4g%%, not 100%%", sum*100)
	}
	return nil
}
