package loadtest

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/lectern/lectern/internal/playtoken"
)

// Ramp is how students join over the ramp window.
type Ramp string

const (
	// RampClassStart: everyone joins within the window, front-loaded like a class starting at 09:00:
	// arrival times follow an exponential distribution of mean window/5 truncated to the window, so
	// about 63% of the students join in the first fifth of it and all of them by its end.
	RampClassStart Ramp = "class-start"
	// RampLinear spreads the joins evenly over the window.
	RampLinear Ramp = "linear"
	// RampInstant starts every student at once.
	RampInstant Ramp = "instant"
)

// Weighted is a region and its share of the students.
type Weighted struct {
	Name   string
	Weight float64
}

// Config is one load test. Zero fields take the defaults listed; Target and Playlists are required.
type Config struct {
	// Target is the base URL of the router (or of one edge). Only loopback hosts are accepted.
	Target *url.URL
	// Playlists are master playlist paths such as /hls/{lecture}/v1/master.m3u8. The first is the most
	// popular: students pick one with probability proportional to 1/rank^Zipf.
	Playlists []string
	// Zipf is the exponent of the popularity law; 0 is uniform.
	Zipf float64
	// Keys, when set, sign every student's playback URL (/s/{token}/hls/...) with a token for the
	// lecture of its playlist, valid for TokenTTL (default 6h), carrying the student's region.
	Keys     playtoken.Keys
	TokenTTL time.Duration
	// Regions assigns students to regions by weight (only meaningful with Keys: the region travels in
	// the token). Empty: no region.
	Regions []Weighted

	// Students is how many virtual students run (default 100).
	Students int
	// Ramp and RampWindow (lecture time, default 30s) shape the joins.
	Ramp       Ramp
	RampWindow time.Duration
	// Speed accelerates playback: every lecture-time quantity (ramp window, watch time, buffer, segment
	// pacing) is divided by Speed in wall time, and bandwidth multiplied by it, so that the players'
	// decisions are the same as at 1x. Default 1.
	Speed float64
	// Watch is the lecture time each student plays (default 2m); a student stops earlier at the end of
	// the lecture.
	Watch time.Duration
	// Bandwidth is the median of the students' bandwidths in bit/s (default 8 Mb/s); each student draws
	// one from a log-normal law of sigma BandwidthSigma (0: every student has the median).
	Bandwidth      float64
	BandwidthSigma float64
	// StartEstimate is the bandwidth estimate (bit/s) before the first measurement: hls.js's
	// abrEwmaDefaultEstimate, 500 kb/s, by default.
	StartEstimate float64
	// MaxBuffer is how far ahead of the playhead a student fetches (lecture time; hls.js's
	// maxBufferLength, default 30s).
	MaxBuffer time.Duration
	// Seek is the probability, per segment, that a student jumps to a random position.
	Seek float64
	// Timeout bounds the wait for response headers of one attempt, and a body that stops arriving
	// (wall time, default 10s, hls.js's maxTimeToFirstByteMs).
	Timeout time.Duration
	// MaxWall bounds the whole run (default 10m): students still running then are stopped and counted
	// as unfinished.
	MaxWall time.Duration
	// Seed makes the random draws (bandwidths, playlists, regions, seeks) repeatable.
	Seed uint64

	// OriginMetrics and EdgeMetrics are /metrics URLs scraped before and after the run.
	OriginMetrics, EdgeMetrics []string

	// Progress, when set, is called about every ProgressEvery (default 5s wall) with the run so far.
	Progress      func(Progress)
	ProgressEvery time.Duration
}

// Progress is a snapshot of a running test.
type Progress struct {
	Elapsed                               time.Duration
	Started, Active, Finished, Failed     int
	Requests, Errors, Rebuffers, Switches int64
}

// Validate returns the error Run would return for cfg's fields (not the one for a target that is not
// on loopback).
func (c Config) Validate() error {
	_, err := c.withDefaults()
	return err
}

// withDefaults fills zero fields and checks the others.
func (c Config) withDefaults() (Config, error) {
	if c.Target == nil || c.Target.Host == "" || (c.Target.Scheme != "http" && c.Target.Scheme != "https") {
		return c, errors.New("target: give the http(s) base URL of the router or an edge")
	}
	if len(c.Playlists) == 0 {
		return c, errors.New("playlist: give at least one master playlist path, e.g. /hls/{lecture}/v1/master.m3u8")
	}
	for _, p := range c.Playlists {
		if lectureOf(p) == "" {
			return c, fmt.Errorf("playlist %q: want /hls/{lecture}/.../master.m3u8", p)
		}
	}
	def := func(d *time.Duration, v time.Duration) {
		if *d == 0 {
			*d = v
		}
	}
	deff := func(f *float64, v float64) {
		if *f == 0 {
			*f = v
		}
	}
	if c.Students == 0 {
		c.Students = 100
	}
	if c.Ramp == "" {
		c.Ramp = RampClassStart
	}
	def(&c.RampWindow, 30*time.Second)
	def(&c.TokenTTL, 6*time.Hour)
	def(&c.Watch, 2*time.Minute)
	def(&c.MaxBuffer, 30*time.Second)
	def(&c.Timeout, 10*time.Second)
	def(&c.MaxWall, 10*time.Minute)
	def(&c.ProgressEvery, 5*time.Second)
	deff(&c.Speed, 1)
	deff(&c.Bandwidth, 8e6)
	deff(&c.StartEstimate, 5e5)
	switch {
	case c.Students < 0:
		return c, fmt.Errorf("students %d: give a positive number", c.Students)
	case c.Ramp != RampClassStart && c.Ramp != RampLinear && c.Ramp != RampInstant:
		return c, fmt.Errorf("ramp %q: give class-start, linear or instant", c.Ramp)
	case c.Speed < 0 || c.Bandwidth < 0 || c.BandwidthSigma < 0 || c.StartEstimate < 0 || c.Zipf < 0:
		return c, errors.New("speed, bandwidth, bandwidth sigma, start estimate and zipf must not be negative")
	case c.Seek < 0 || c.Seek > 1:
		return c, fmt.Errorf("seek %v: give a probability between 0 and 1", c.Seek)
	case c.RampWindow < 0 || c.Watch < 0 || c.MaxBuffer < 0 || c.Timeout < 0 || c.MaxWall < 0 || c.TokenTTL < 0:
		return c, errors.New("durations must be positive")
	}
	return c, nil
}

// lectureOf returns the lecture id of a /hls/{lecture}/... path, "" when p has another shape.
func lectureOf(p string) string {
	rest, ok := strings.CutPrefix(p, "/hls/")
	if !ok {
		return ""
	}
	id, _, ok := strings.Cut(rest, "/")
	if !ok {
		return ""
	}
	return id
}

// ParseRegions reads "name:weight,name:weight"; a name without a weight weighs 1. Names are the
// region map's (DNS labels).
func ParseRegions(s string) ([]Weighted, error) {
	var out []Weighted
	for item := range strings.SplitSeq(s, ",") {
		item = strings.TrimSpace(item)
		if item == "" {
			continue
		}
		name, w, hasWeight := strings.Cut(item, ":")
		weight := 1.0
		if hasWeight {
			var err error
			if weight, err = strconv.ParseFloat(strings.TrimSpace(w), 64); err != nil || !(weight > 0) {
				return nil, fmt.Errorf("region %q: the weight must be a positive number", item)
			}
		}
		if name = strings.TrimSpace(name); !dnsLabel(name) {
			return nil, fmt.Errorf("region %q: a region name is lowercase letters, digits and inner hyphens, at most 63, like busan-ulsan (as in the region map)", name)
		}
		out = append(out, Weighted{Name: name, Weight: weight})
	}
	return out, nil
}

func dnsLabel(s string) bool {
	if s == "" || len(s) > 63 || s[0] == '-' || s[len(s)-1] == '-' {
		return false
	}
	for _, c := range s {
		if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-') {
			return false
		}
	}
	return true
}

// ErrNotLoopback is returned for a URL whose host is not on this machine.
var ErrNotLoopback = errors.New("only loopback addresses (127.0.0.0/8, ::1) may be load tested")

// CheckLoopback returns an error wrapping ErrNotLoopback unless every address host resolves to is
// a loopback address (127.0.0.0/8 or ::1). host may carry a port.
func CheckLoopback(ctx context.Context, host string) error {
	if h, _, err := net.SplitHostPort(host); err == nil {
		host = h
	}
	host = strings.Trim(host, "[]")
	if host == "" {
		return fmt.Errorf("%w: empty host", ErrNotLoopback)
	}
	var addrs []netip.Addr
	if a, err := netip.ParseAddr(host); err == nil {
		addrs = []netip.Addr{a}
	} else {
		ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		defer cancel()
		if addrs, err = net.DefaultResolver.LookupNetIP(ctx, "ip", host); err != nil {
			return fmt.Errorf("%w: %s does not resolve: %v", ErrNotLoopback, host, err)
		}
	}
	for _, a := range addrs {
		if !a.Unmap().IsLoopback() {
			if a.String() == host {
				return fmt.Errorf("%w: %s is not", ErrNotLoopback, host)
			}
			return fmt.Errorf("%w: %s resolves to %s", ErrNotLoopback, host, a)
		}
	}
	return nil
}
