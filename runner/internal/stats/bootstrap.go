package stats

import (
	"math"
	"math/rand/v2"
)

// bootMedian draws medians of bootstrap resamples of sorted, non-empty s
// without building the resamples. A resample of size n draws n indices
// uniformly from 1..n; its k-th smallest index is ceil(n·U(k)) where U(k) is
// the k-th order statistic of n uniform(0,1) variables, and U(k) ~ Beta(k,
// n-k+1). Given U(k), U(k+1) is the minimum of n-k uniforms on (U(k), 1).
// So each bootstrap median costs one Beta variate (plus one uniform for even
// n) instead of n draws and a selection, and has exactly the distribution of
// the median of an ordinary resample.
type bootMedian struct {
	s   []float64
	rng *rand.Rand
}

// next returns the median of one bootstrap resample.
func (b bootMedian) next() float64 {
	n := len(b.s)
	if n == 1 {
		return b.s[0]
	}
	nf := float64(n)
	if n%2 == 1 {
		k := (n + 1) / 2
		u := betaVariate(b.rng, float64(k), float64(n-k+1))
		return b.s[index(u, n)]
	}
	k := n / 2
	u1 := betaVariate(b.rng, float64(k), float64(n-k+1))
	// Minimum of n-k uniforms on (u1, 1): u1 + (1-u1)(1 - V^(1/(n-k))).
	v := 1 - b.rng.Float64() // (0, 1]
	u2 := u1 + (1-u1)*(-math.Expm1(math.Log(v)/(nf-float64(k))))
	return b.s[index(u1, n)]/2 + b.s[index(u2, n)]/2
}

// index maps a uniform order statistic u to a 0-based index into n sorted
// values: ceil(n·u) - 1, clamped.
func index(u float64, n int) int {
	i := int(math.Ceil(u*float64(n))) - 1
	if i < 0 {
		return 0
	}
	if i >= n {
		return n - 1
	}
	return i
}

// betaVariate draws from Beta(a, b), a, b >= 1, as X/(X+Y) of two Gamma
// variates.
func betaVariate(rng *rand.Rand, a, b float64) float64 {
	x := gammaVariate(rng, a)
	y := gammaVariate(rng, b)
	return x / (x + y)
}

// gammaVariate draws from Gamma(shape, 1) for shape >= 1 with Marsaglia and
// Tsang's method (ACM TOMS 26(3), 2000).
func gammaVariate(rng *rand.Rand, shape float64) float64 {
	d := shape - 1.0/3
	c := 1 / math.Sqrt(9*d)
	for {
		var x, v float64
		for {
			x = rng.NormFloat64()
			v = 1 + c*x
			if v > 0 {
				break
			}
		}
		v = v * v * v
		u := rng.Float64()
		if u < 1-0.0331*x*x*x*x {
			return d * v
		}
		if u > 0 && math.Log(u) < 0.5*x*x+d*(1-v+math.Log(v)) {
			return d * v
		}
	}
}
