package probe

import (
	"math"
	"testing"
)

const (
	ntsc24 = 24000.0 / 1001
	ntsc30 = 30000.0 / 1001
	ntsc60 = 60000.0 / 1001
)

func TestVariableFrameRate(t *testing.T) {
	for _, tt := range []struct {
		avg, nominal float64
		want         bool
	}{
		{25, 25, false},
		{ntsc30, 30, false}, // 0.1% apart: a constant-rate NTSC file with a rounded r_frame_rate
		{29.5, 30, false},   // 1.7%: within tolerance (a short clip's last frame moves the average)
		{22, 30, true},      // frames dropped
		{27.3, 30, true},    // a phone in dim light
		{0, 30, false},      // average unknown, nominal plausible
		{0, 1000, true},     // Matroska clock
		{0, 90000, true},    // MPEG-TS clock
		{1000, 1000, true},  // clock reported as both
		{0, 0, false},       // nothing known
		{240, 240, false},   // slow motion is still a frame rate
	} {
		if got := variableFrameRate(tt.avg, tt.nominal); got != tt.want {
			t.Errorf("variableFrameRate(%v, %v) = %v, want %v", tt.avg, tt.nominal, got, tt.want)
		}
	}
}

func TestOutputFrameRate(t *testing.T) {
	for _, tt := range []struct {
		name         string
		avg, nominal float64 // Result.FrameRate and Result.NominalFrameRate
		max, want    float64
	}{
		{"constant 25", 25, 25, 0, 25},
		{"NTSC kept exact", ntsc30, ntsc30, 0, ntsc30},
		{"23.976 snaps", 23.976, 24, 0, ntsc24},
		{"29.99 snaps to the nearer 30", 29.99, 30, 0, 30},
		{"29.96 snaps to 29.97", 29.96, 30, 0, ntsc30},
		{"1.7% off is not snapped", 29.5, 30, 0, 29.5},
		{"screen recording at 15", 15, 15, 0, 15},
		// Frames dropped or exposure stretched: the camera's own rate, gaps repeated.
		{"dropped frames keep the nominal rate", 22, 30, 0, 30},
		{"dim light keeps the nominal rate", 27.3, 30, 0, 30},
		// A nominal rate that is only a timestamp granularity (no common rate) says nothing.
		{"uncommon nominal: the average", 29.9, 120.5, 0, ntsc30},
		{"more frames than nominal: the average", 50, 25, 0, 50},
		{"nominal when average unknown", 0, 25, 0, 25},
		{"nominal when average is a clock", 1000, 30, 0, 30},
		{"nothing known", 0, 0, 0, 30},
		{"only a clock", 0, 90000, 0, 30},
		{"nothing known, low cap", 0, 0, 24, 24},
		{"under the cap", 25, 25, 30, 25},
		{"at the cap", 30, 30, 30, 30},
		{"NTSC under a 30 cap", ntsc30, ntsc30, 30, ntsc30},
		{"59.94 halved", ntsc60, ntsc60, 30, ntsc30},
		{"59.94 measured halved", 59.94, 60, 30, ntsc30},
		{"60 halved", 60, 60, 30, 30},
		{"50 halved", 50, 50, 30, 25},
		{"48 halved", 48, 48, 30, 24},
		{"120 quartered", 120, 120, 30, 30},
		{"100 quartered", 100, 100, 30, 25},
		{"240 divided by 8", 240, 240, 30, 30},
		{"40 capped: half is no common rate", 40, 40, 30, 30},
		{"31 capped", 31, 31, 30, 30},
		{"60 under a 60 cap", 60, 60, 60, 60},
		{"60 with a 50 cap", 60, 60, 50, 30},
	} {
		r := Result{HasVideo: true, FrameRate: tt.avg, NominalFrameRate: tt.nominal}
		if got := r.OutputFrameRate(tt.max); math.Abs(got-tt.want) > 1e-9 {
			t.Errorf("%s: OutputFrameRate(%v) of avg %v nominal %v = %v, want %v", tt.name, tt.max, tt.avg, tt.nominal, got, tt.want)
		}
	}
}
