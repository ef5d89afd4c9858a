package loadtest

import (
	"math"
	"math/rand/v2"
	"time"
)

// classStartMeans is how many exponential means fit in the window of a class-start ramp.
const classStartMeans = 5

// arrivals returns when each of n students joins, in lecture time from the start of the run. The
// times are the quantiles (i+0.5)/n of the ramp's distribution, in order: the shape is exact at any
// n and the same from run to run, with no draw to vary it.
func arrivals(r Ramp, window time.Duration, n int) []time.Duration {
	out := make([]time.Duration, n)
	w := window.Seconds()
	for i := range out {
		q := (float64(i) + 0.5) / float64(n)
		var t float64
		switch r {
		case RampLinear:
			t = q * w
		case RampClassStart:
			// Inverse CDF of an exponential of mean w/classStartMeans truncated to [0, w).
			mean := w / classStartMeans
			t = -mean * math.Log(1-q*(1-math.Exp(-classStartMeans)))
		}
		out[i] = time.Duration(t * float64(time.Second))
	}
	return out
}

// picker draws an index with probability proportional to its weight.
type picker struct{ cum []float64 }

func newPicker(weights []float64) picker {
	p := picker{cum: make([]float64, len(weights))}
	var sum float64
	for i, w := range weights {
		sum += w
		p.cum[i] = sum
	}
	return p
}

func (p picker) pick(rng *rand.Rand) int {
	if len(p.cum) == 0 {
		return -1
	}
	x := rng.Float64() * p.cum[len(p.cum)-1]
	for i, c := range p.cum {
		if x < c {
			return i
		}
	}
	return len(p.cum) - 1
}

// zipfWeights are 1/rank^s for ranks 1..n.
func zipfWeights(n int, s float64) []float64 {
	w := make([]float64, n)
	for i := range w {
		w[i] = math.Pow(float64(i+1), -s)
	}
	return w
}

// logNormal draws from a log-normal law of the given median and sigma.
func logNormal(rng *rand.Rand, median, sigma float64) float64 {
	return median * math.Exp(sigma*rng.NormFloat64())
}

// studentRand is student i's own random stream: adding students or changing the order in which they
// run leaves every other student's draws as they were.
func studentRand(seed uint64, i int) *rand.Rand {
	return rand.New(rand.NewPCG(seed, uint64(i)))
}
