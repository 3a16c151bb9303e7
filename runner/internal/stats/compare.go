package stats

import (
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
)

// Defaults of CompareOptions.
const (
	DefaultAlpha     = 0.05
	DefaultResamples = 10000
	// minResamples is the fewest bootstrap resamples Compare will use.
	minResamples = 2000
)

// CompareOptions tunes Compare. The zero value means the defaults.
type CompareOptions struct {
	// Alpha is the significance level (default 0.05); the ratio CI has
	// level 1-Alpha.
	Alpha float64
	// Resamples is the number of bootstrap resamples (default 10000,
	// at least 2000).
	Resamples int
	// Seed makes the bootstrap deterministic; equal seeds give equal CIs.
	Seed uint64
	// Margin, when > 0, adds an equivalence test within ±Margin (relative, e.g. 0.02) on the launch level.
	Margin float64
}

func (o CompareOptions) withDefaults() CompareOptions {
	if !(o.Alpha > 0 && o.Alpha < 1) {
		o.Alpha = DefaultAlpha
	}
	if o.Resamples <= 0 {
		o.Resamples = DefaultResamples
	}
	if o.Resamples < minResamples {
		o.Resamples = minResamples
	}
	return o
}

// Comparison of B against A, where A is the baseline. The launch is the
// unit: each launch (one engine process) is summarised by the median of its
// timed iterations, and the verdict rests on those launch medians. Pooled
// iteration figures (NA, NB, MedianA, MedianB, U, PooledP, CliffsDelta) are
// descriptive only: iterations of one launch are not independent samples.
type Comparison struct {
	// LaunchesA and LaunchesB count the non-empty launches; EstimateA and
	// EstimateB are the launch-level estimates: geometric means of launch
	// medians (LaunchEstimate).
	LaunchesA int     `json:"launches_a"`
	LaunchesB int     `json:"launches_b"`
	EstimateA float64 `json:"estimate_a"`
	EstimateB float64 `json:"estimate_b"`

	// Ratio is EstimateB/EstimateA; RatioLo and RatioHi bound its
	// hierarchical bootstrap percentile CI of level 1-Alpha (per side:
	// resample launches, then iterations within each resampled launch).
	// All three are 0 when HasRatio is false.
	Ratio   float64 `json:"ratio"`
	RatioLo float64 `json:"ratio_lo"`
	RatioHi float64 `json:"ratio_hi"`
	// HasRatio is false when a side has no launch or EstimateA is 0.
	HasRatio bool `json:"has_ratio"`

	// T, DF and P are Welch's t-test on the launch medians (their logs when
	// all are positive), two-sided, as scipy.stats.ttest_ind(log b, log a,
	// equal_var=False). HasTest is false with fewer than 2 launches on a
	// side; P is then 1.
	T       float64 `json:"t"`
	DF      float64 `json:"df"`
	P       float64 `json:"p"`
	HasTest bool    `json:"has_test"`
	// PAdj is P after Holm's correction across the family (AdjustHolm);
	// equal to P until then.
	PAdj float64 `json:"p_adj"`

	// NA and NB count the pooled timed iterations and MedianA, MedianB are
	// their medians (descriptive).
	NA      int     `json:"n_a"`
	NB      int     `json:"n_b"`
	MedianA float64 `json:"median_a"`
	MedianB float64 `json:"median_b"`
	// U is the Mann-Whitney U statistic of B over pooled iterations (pairs
	// with b > a, ties 1/2) and PooledP its two-sided p-value, as
	// scipy.stats.mannwhitneyu(b, a, method='auto'): descriptive only, it
	// treats iterations as independent and is overconfident when launches
	// differ.
	U       float64 `json:"u"`
	PooledP float64 `json:"pooled_p"`
	// CliffsDelta is P(b > a) - P(b < a) over pooled iterations; Magnitude
	// names its size (negligible/small/medium/large, Romano et al.).
	CliffsDelta float64 `json:"cliffs_delta"`
	Magnitude   string  `json:"magnitude"`

	// Alpha is the significance level the verdict uses.
	Alpha float64 `json:"alpha"`
	// Significant is HasTest, PAdj < Alpha and the ratio CI excluding 1.
	Significant bool `json:"significant"`
	// Verdict is "~" when not significant, else the change of B against A,
	// e.g. "+12.3%", "-4.1%" or, below 1%, "-0.42%".
	Verdict  string   `json:"verdict"`
	Warnings []string `json:"warnings,omitempty"`
	// Equivalence is the equivalence test within CompareOptions.Margin; nil without a margin, without a launch-level
	// test, or on the raw scale (a launch median not positive).
	Equivalence *Equivalence `json:"equivalence,omitempty"`
}

// Compare compares B against baseline A, each given as groups of timed
// iteration values, one group per launch. NaN and ±Inf values are excluded
// with a warning. It never panics; a comparison that cannot be made (no
// launch on a side, a zero baseline) is "~" with a warning.
func Compare(ga, gb [][]float64, opts CompareOptions) Comparison {
	opts = opts.withDefaults()
	c := Comparison{Alpha: opts.Alpha, P: 1, PAdj: 1, PooledP: 1, Verdict: "~", Magnitude: Magnitude(0)}
	sa, da := sortedFinite(slices.Concat(ga...))
	sb, db := sortedFinite(slices.Concat(gb...))
	c.NA, c.NB = len(sa), len(sb)
	if da > 0 {
		c.Warnings = append(c.Warnings, fmt.Sprintf("A: %d non-finite values (NaN/Inf) excluded", da))
	}
	if db > 0 {
		c.Warnings = append(c.Warnings, fmt.Sprintf("B: %d non-finite values (NaN/Inf) excluded", db))
	}
	if c.NA == 0 || c.NB == 0 {
		c.Warnings = append(c.Warnings, fmt.Sprintf("n_A=%d, n_B=%d: nothing to compare", c.NA, c.NB))
		return c
	}
	c.MedianA, c.MedianB = quantile(sa, 0.5), quantile(sb, 0.5)
	r := rankSum(sb, sa)
	c.U = r.u1
	c.PooledP = r.p()
	c.CliffsDelta = r.cliffs()
	c.Magnitude = Magnitude(c.CliffsDelta)

	c.compareLaunches(ga, gb, opts)
	c.PAdj = c.P
	c.decide()
	return c
}

// bootstrapLaunchRatio sets the ratio of launch-level means and its
// hierarchical bootstrap percentile CI.
func (c *Comparison) bootstrapLaunchRatio(ga, gb [][]float64, geometric bool, opts CompareOptions) {
	if c.EstimateA == 0 {
		c.Warnings = append(c.Warnings, "launch-level estimate of A is 0: ratio undefined")
		return
	}
	ratio := c.EstimateB / c.EstimateA
	if math.IsInf(ratio, 0) || math.IsNaN(ratio) {
		c.Warnings = append(c.Warnings, "ratio of estimates overflows")
		return
	}
	rng := rand.New(rand.NewPCG(opts.Seed, opts.Seed^0x9e3779b97f4a7c15))
	boot := func(s []float64) bootMedian { return bootMedian{s, rng} }
	ba, bb := newHierBoot(ga, boot), newHierBoot(gb, boot)
	ba.geometric, bb.geometric = geometric, geometric
	rs := make([]float64, 0, opts.Resamples)
	zero := 0
	for range opts.Resamples {
		ma, mb := ba.next(), bb.next()
		q := mb / ma
		if ma == 0 || math.IsInf(q, 0) || math.IsNaN(q) {
			zero++
			continue
		}
		rs = append(rs, q)
	}
	if len(rs) < opts.Resamples/2 {
		c.Warnings = append(c.Warnings, fmt.Sprintf("estimate of A is 0 in %d of %d bootstrap resamples: ratio CI not available", zero, opts.Resamples))
		return
	}
	if zero > 0 {
		c.Warnings = append(c.Warnings, fmt.Sprintf("estimate of A is 0 in %d of %d bootstrap resamples: ratio CI uses the rest", zero, opts.Resamples))
	}
	slices.Sort(rs)
	c.Ratio = ratio
	c.RatioLo = math.Min(quantile(rs, c.Alpha/2), ratio)
	c.RatioHi = math.Max(quantile(rs, 1-c.Alpha/2), ratio)
	c.HasRatio = true
}

// decide sets Significant and Verdict from PAdj and the ratio CI.
func (c *Comparison) decide() {
	c.Significant = c.HasTest && c.HasRatio && c.PAdj < c.Alpha && (c.RatioLo > 1 || c.RatioHi < 1)
	c.Verdict = "~"
	if c.Significant {
		c.Verdict = verdict(c.Ratio)
	}
}

// verdict formats the change a ratio of medians means: one decimal from
// ±1% up ("+12.3%"), two below ("-0.42%"), so small significant changes do
// not print as "+0.0%".
func verdict(ratio float64) string {
	pct := 100 * (ratio - 1)
	if math.Abs(pct) < 1 {
		return fmt.Sprintf("%+.2f%%", pct)
	}
	return fmt.Sprintf("%+.1f%%", pct)
}

// HolmAdjust returns Holm-Bonferroni adjusted p-values for the family ps, in
// the same order (as statsmodels multipletests(method='holm')). NaN counts
// as 1.
func HolmAdjust(ps []float64) []float64 {
	m := len(ps)
	adj := make([]float64, m)
	order := make([]int, m)
	for i := range order {
		order[i] = i
	}
	p := func(i int) float64 {
		if math.IsNaN(ps[i]) {
			return 1
		}
		return math.Min(1, math.Max(0, ps[i]))
	}
	slices.SortStableFunc(order, func(i, j int) int {
		switch pi, pj := p(i), p(j); {
		case pi < pj:
			return -1
		case pi > pj:
			return 1
		}
		return 0
	})
	running := 0.0
	for rank, i := range order {
		v := math.Min(1, float64(m-rank)*p(i))
		running = math.Max(running, v)
		adj[i] = running
	}
	return adj
}

// SetPAdj sets the adjusted p-value from outside a family (a comparison that
// shares another's hypothesis takes that one's) and recomputes Significant
// and Verdict.
func (c *Comparison) SetPAdj(p float64) {
	c.PAdj = p
	c.decide()
}

// SetEquivalencePAdj sets the equivalence test's adjusted p-value and decision (a derived metric takes its source's).
func (c *Comparison) SetEquivalencePAdj(p float64) {
	if c.Equivalence != nil {
		c.Equivalence.PAdj = p
		c.Equivalence.decide(c.Alpha)
	}
}

// AdjustHolm applies Holm's correction across the family cs in place: it
// sets each PAdj from P and recomputes Significant and Verdict. Nil entries
// are skipped and not counted in the family.
func AdjustHolm(cs []*Comparison) {
	var ps []float64
	var live []*Comparison
	for _, c := range cs {
		if c != nil {
			ps = append(ps, c.P)
			live = append(live, c)
		}
	}
	for i, p := range HolmAdjust(ps) {
		live[i].PAdj = p
		live[i].decide()
	}
	// The equivalence hypotheses are a family of their own, corrected the same way.
	var eps []float64
	var equiv []*Comparison
	for _, c := range live {
		if c.Equivalence != nil {
			eps = append(eps, c.Equivalence.P)
			equiv = append(equiv, c)
		}
	}
	for i, p := range HolmAdjust(eps) {
		equiv[i].SetEquivalencePAdj(p)
	}
}
