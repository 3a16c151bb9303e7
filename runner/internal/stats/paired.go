package stats

import "math"

// Paired is the ratio B/A estimated from paired observations (a_i, b_i): runs
// of two sides made next to each other in one block (a round of an
// alternating check), so a drift that moves both sides of a block alike
// cancels. Ratio is the geometric mean of b_i/a_i and [Lo, Hi] its CI, the
// one-sample Student t interval of the log ratios (SciPy:
// ttest_1samp(log(b/a), 0).confidence_interval), back-transformed.
type Paired struct {
	N          int     `json:"pairs"`
	Ratio      float64 `json:"ratio"`
	Lo         float64 `json:"ratio_lo"`
	Hi         float64 `json:"ratio_hi"`
	SDLog      float64 `json:"sd_log"`
	Confidence float64 `json:"confidence"`
}

// PairedRatio computes Paired at confidence conf (e.g. 0.95) from a and b of
// equal length; ok is false with fewer than two pairs, unequal lengths, or a
// value that is not positive and finite.
func PairedRatio(a, b []float64, conf float64) (p Paired, ok bool) {
	if len(a) != len(b) || len(a) < 2 || !(conf > 0 && conf < 1) {
		return p, false
	}
	d := make([]float64, len(a))
	for i := range a {
		if !(a[i] > 0) || !(b[i] > 0) || !isFinite(a[i]) || !isFinite(b[i]) {
			return p, false
		}
		d[i] = math.Log(b[i] / a[i])
	}
	m, sd := meanSD(d)
	n := float64(len(d))
	h := StudentTQuantile(1-(1-conf)/2, n-1) * sd / math.Sqrt(n)
	return Paired{N: len(d), Ratio: math.Exp(m), Lo: math.Exp(m - h), Hi: math.Exp(m + h), SDLog: sd, Confidence: conf}, true
}

// PairsToResolve estimates how many pairs would make the CI of p stop crossing the band edge (lo or hi, ratios)
// nearest its ratio, at the spread of log ratios seen so far: the smallest n with t(1−α/2, n−1) · sd / √n < d, d the
// log distance from the ratio to that edge. A planning figure; 0 when p has fewer than two pairs,
// MaxRunsToResolve when the ratio sits on an edge or no n up to it would do.
func PairsToResolve(p Paired, lo, hi float64) int {
	if p.N < 2 || !(p.Ratio > 0) {
		return 0
	}
	m := math.Log(p.Ratio) // the mean log ratio
	d := math.Min(math.Abs(m-math.Log(lo)), math.Abs(m-math.Log(hi)))
	if d == 0 {
		return MaxRunsToResolve
	}
	if p.SDLog == 0 {
		return p.N
	}
	q := 1 - (1-p.Confidence)/2
	start := 2
	if q == 0.975 { // t(0.975, df) > z(0.975) for every df: no n below z²·sd²/d² can do
		const z = 1.959963984540054
		start = max(2, int(z*z*p.SDLog*p.SDLog/(d*d)))
	}
	for n := start; n <= MaxRunsToResolve; n++ {
		if StudentTQuantile(q, float64(n-1))*p.SDLog/math.Sqrt(float64(n)) < d {
			return n
		}
	}
	return MaxRunsToResolve
}
