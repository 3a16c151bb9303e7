package stats

import (
	"math"
	"slices"
)

// exactMWUMaxSmall is the largest size of the smaller sample for which, with
// no ties, MannWhitneyU uses the exact null distribution (SciPy's 'auto').
// exactMWUMaxCells caps n1·n2 for it (SciPy has no cap), bounding memory at
// 8·exactMWUMaxCells bytes; above it the normal approximation is accurate.
const (
	exactMWUMaxSmall = 8
	exactMWUMaxCells = 1 << 22
)

// MannWhitneyU runs a two-sided Mann-Whitney U test of a against b and
// returns U of a (the number of pairs with a > b, ties counting 1/2) and the
// p-value. It matches scipy.stats.mannwhitneyu(a, b, method='auto'): the
// exact null distribution when either sample has at most 8 values and there
// are no ties (and n1·n2 <= 2^22, where SciPy has no limit), otherwise the normal approximation with tie correction and
// continuity correction. NaN and ±Inf values are ignored; with an empty
// sample p is 1.
func MannWhitneyU(a, b []float64) (u, p float64) {
	a, _ = finite(a)
	b, _ = finite(b)
	r := rankSum(a, b)
	return r.u1, r.p()
}

// mwu holds what the rank sums give about two samples.
type mwu struct {
	n1, n2  int
	u1      float64 // U of the first sample
	tieTerm float64 // sum over tie groups of t^3 - t
	ties    bool
}

// rankSum ranks a and b together with mid-ranks for ties.
func rankSum(a, b []float64) mwu {
	r := mwu{n1: len(a), n2: len(b)}
	if r.n1 == 0 || r.n2 == 0 {
		return r
	}
	type obs struct {
		v     float64
		first bool
	}
	all := make([]obs, 0, r.n1+r.n2)
	for _, x := range a {
		all = append(all, obs{x, true})
	}
	for _, x := range b {
		all = append(all, obs{x, false})
	}
	slices.SortFunc(all, func(x, y obs) int {
		switch {
		case x.v < y.v:
			return -1
		case x.v > y.v:
			return 1
		}
		return 0
	})
	r1 := 0.0
	for i := 0; i < len(all); {
		j := i + 1
		for j < len(all) && all[j].v == all[i].v {
			j++
		}
		t := float64(j - i)
		mid := float64(i+j+1) / 2 // mean of 1-based ranks i+1..j
		for k := i; k < j; k++ {
			if all[k].first {
				r1 += mid
			}
		}
		if t > 1 {
			r.ties = true
			r.tieTerm += t*t*t - t
		}
		i = j
	}
	n1 := float64(r.n1)
	r.u1 = r1 - n1*(n1+1)/2
	return r
}

// p returns the two-sided p-value as scipy.stats.mannwhitneyu(method='auto').
func (r mwu) p() float64 {
	if r.n1 == 0 || r.n2 == 0 {
		return 1
	}
	n1, n2 := float64(r.n1), float64(r.n2)
	u := math.Max(r.u1, n1*n2-r.u1)
	var p float64
	if min(r.n1, r.n2) <= exactMWUMaxSmall && r.n1*r.n2 <= exactMWUMaxCells && !r.ties {
		p = 2 * mwuExactSF(r.n1, r.n2, int(math.Round(u)))
	} else {
		n := n1 + n2
		s := math.Sqrt(n1 * n2 / 12 * ((n + 1) - r.tieTerm/(n*(n-1))))
		z := (u - n1*n2/2 - 0.5) / s // continuity correction
		if math.IsNaN(z) {
			return 1
		}
		p = math.Erfc(z / math.Sqrt2) // 2 * P(Z > z)
	}
	return math.Min(1, math.Max(0, p))
}

// mwuExactSF returns P(U >= u) under the null for sample sizes n1, n2, from
// the frequencies of U: the coefficients of the Gaussian binomial
// [n1+n2 choose n1]_q, built one factor (1-q^(n2+i))/(1-q^i) at a time.
func mwuExactSF(n1, n2, u int) float64 {
	if n1 > n2 {
		n1, n2 = n2, n1
	}
	m := n1 * n2
	if u <= 0 {
		return 1
	}
	if u > m {
		return 0
	}
	c := make([]float64, m+1)
	c[0] = 1
	for i := 1; i <= n1; i++ {
		// Divide by (1 - q^i): running sums with stride i.
		for k := i; k <= m; k++ {
			c[k] += c[k-i]
		}
		// Multiply by (1 - q^(n2+i)).
		for k, s := m, n2+i; k >= s; k-- {
			c[k] -= c[k-s]
		}
	}
	total := 0.0
	for _, v := range c {
		total += v
	}
	// By symmetry P(U >= u) = P(U <= m-u); sum the smaller tail.
	tail := 0.0
	if u > m-u {
		for k := 0; k <= m-u; k++ {
			tail += c[k]
		}
	} else {
		for k := m; k >= u; k-- {
			tail += c[k]
		}
	}
	return tail / total
}

// CliffsDelta returns Cliff's delta of b against a: P(b > a) - P(b < a) over
// all pairs, in [-1, 1]; positive when b tends to be larger. NaN and ±Inf
// values are ignored; it is 0 when a sample is empty.
func CliffsDelta(a, b []float64) float64 {
	a, _ = finite(a)
	b, _ = finite(b)
	r := rankSum(b, a)
	return r.cliffs()
}

// cliffs returns Cliff's delta of the first sample against the second.
func (r mwu) cliffs() float64 {
	if r.n1 == 0 || r.n2 == 0 {
		return 0
	}
	// (2U - n1·n2)/(n1·n2): U is a multiple of 1/2, so the numerator is
	// exact and δ is exactly antisymmetric; 2U/(n1·n2) - 1 is not, and put
	// +0.33 and -0.33 on different sides of a magnitude threshold.
	nn := float64(r.n1) * float64(r.n2)
	return (2*r.u1 - nn) / nn
}

// Magnitude names the size of Cliff's delta d with the thresholds of Romano
// et al. (2006): |d| < 0.147 negligible, < 0.33 small, < 0.474 medium,
// otherwise large.
func Magnitude(d float64) string {
	switch d = math.Abs(d); {
	case d < 0.147:
		return "negligible"
	case d < 0.33:
		return "small"
	case d < 0.474:
		return "medium"
	}
	return "large"
}
