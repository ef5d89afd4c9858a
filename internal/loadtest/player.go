package loadtest

import (
	"math"
	"time"
)

// estimator is hls.js's bandwidth estimate: two exponentially weighted moving averages of the
// measured throughput, weighted by download time, with half-lives of 3 s and 9 s (abrEwmaFastVoD,
// abrEwmaSlowVoD); the estimate is the lower of the two, or the default until a sample is in.
type estimator struct {
	fast, slow ewma
	def        float64
}

type ewma struct {
	alpha, estimate, weight float64
}

func newEstimator(def float64) *estimator {
	return &estimator{fast: newEWMA(3), slow: newEWMA(9), def: def}
}

func newEWMA(halfLife float64) ewma { return ewma{alpha: math.Exp(math.Log(0.5) / halfLife)} }

func (e *ewma) sample(weight, value float64) {
	a := math.Pow(e.alpha, weight)
	e.estimate = value*(1-a) + a*e.estimate
	e.weight += weight
}

func (e *ewma) get() float64 {
	// Corrects the bias towards the zero the average started from.
	return e.estimate / (1 - math.Pow(e.alpha, e.weight))
}

// sample adds a download of n bytes that took seconds (lecture time).
func (e *estimator) sample(seconds float64, n int64) {
	if n <= 0 {
		return
	}
	seconds = math.Max(seconds, 0.001)
	bps := float64(n) * 8 / seconds
	e.fast.sample(seconds, bps)
	e.slow.sample(seconds, bps)
}

// measured reports whether any sample is in.
func (e *estimator) measured() bool { return e.fast.weight >= 0.001 }

func (e *estimator) get() float64 {
	if !e.measured() {
		return e.def
	}
	return math.Min(e.fast.get(), e.slow.get())
}

// abrSafety is the share of the estimate a rung's peak bit rate may take.
const abrSafety = 0.8

// pickRung returns the index of the highest rung (bandwidths in ascending order) whose peak bit rate
// is at most abrSafety times the estimate, or the lowest rung when none is.
func pickRung(bandwidths []int, estimate float64) int {
	best := 0
	for i, b := range bandwidths {
		if float64(b) <= abrSafety*estimate {
			best = i
		}
	}
	return best
}

// playback is a player's clock: the playhead moves at Speed times wall time while media is buffered
// ahead of it, and stalls when it catches up with the buffered end. Positions and amounts are in
// lecture seconds.
type playback struct {
	speed             float64
	last              time.Time
	started           bool // the first media arrived: the playhead runs
	stalling, seeking bool
	// afterSeek holds from a seek until the second media arrival after it: playback resumed on the
	// part of one segment that follows the seek position, and the next one is on its way.
	afterSeek       bool
	head, end       float64 // playhead, end of the buffered range
	played, stalled float64
	rebuffers       int
	// seekRebuffers counts the rebuffers that began while afterSeek held (they are in rebuffers too).
	seekRebuffers int
}

// advance moves the clock to now.
func (p *playback) advance(now time.Time) {
	el := now.Sub(p.last).Seconds() * p.speed
	p.last = now
	if !p.started || p.seeking || el <= 0 {
		return
	}
	ahead := p.end - p.head
	if ahead >= el {
		p.head += el
		p.played += el
		return
	}
	p.head = p.end
	p.played += ahead
	p.stalled += el - ahead
	if !p.stalling {
		p.stalling = true
		p.rebuffers++
		if p.afterSeek {
			p.seekRebuffers++
		}
	}
}

// start begins playback at head with media buffered up to end.
func (p *playback) start(now time.Time, head, end float64) {
	p.started, p.last, p.head, p.end = true, now, head, end
}

// buffered extends the buffered range to end (media arrived).
func (p *playback) buffered(now time.Time, end float64) {
	p.advance(now)
	p.end = end
	if end > p.head {
		if !p.seeking {
			p.afterSeek = false
		}
		p.stalling, p.seeking = false, false
	}
}

// seek jumps to pos and flushes the buffer; the wait for media there is seeking, not a stall.
func (p *playback) seek(now time.Time, pos float64) {
	p.advance(now)
	p.head, p.end, p.seeking, p.stalling, p.afterSeek = pos, pos, true, false, true
}

// ahead is the buffered media in front of the playhead.
func (p *playback) ahead() float64 { return p.end - p.head }
