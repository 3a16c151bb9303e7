package stats

import (
	"fmt"
	"math"
	"slices"
)

// The launch is the experimental unit. On a GPU, launching the same engine
// again (a fresh process, a fresh CUDA context, another memory layout, other
// kernels chosen by autotuning) moves its figures more than iterating again
// inside one launch does, so iterations of one launch are not independent
// samples of the engine. Everything here summarises each launch by the median
// of its timed iterations and treats those launch medians as the sample
// (Kalibera & Jones, "Rigorous Benchmarking in Reasonable Time", ISMM 2013).

// LaunchEstimate summarises groups (one per launch, each the timed iterations
// of that launch) at the launch level.
type LaunchEstimate struct {
	// Launches is the number of non-empty launches.
	Launches int `json:"launches"`
	// Mean is the geometric mean over launches of each launch's median (the
	// arithmetic mean when a median is not positive; Geometric says which):
	// the engine's figure when launches are the unit. Timings and rates are
	// positive and compared as ratios, so the log scale is their natural one:
	// ratios of geometric means are what the launch-level test tests, and
	// their CIs stay positive.
	Mean      float64 `json:"mean"`
	Geometric bool    `json:"geometric"`
	// Lo and Hi bound a Student-t 95% confidence interval of Mean over
	// launch medians (n-1 degrees of freedom, on the log scale when
	// Geometric); both 0 when HasCI is false (fewer than 2 launches).
	Lo    float64 `json:"lo"`
	Hi    float64 `json:"hi"`
	HasCI bool    `json:"has_ci"`
	// RelHalfWidth is (Hi-Lo)/2/|Mean|, 0 when not defined.
	RelHalfWidth float64 `json:"rel_half_width"`
	// Medians are the launch medians, in launch order.
	Medians []float64 `json:"medians"`
}

// EstimateLaunches returns the launch-level estimate of groups. NaN and ±Inf
// values and empty groups are skipped.
func EstimateLaunches(groups [][]float64) LaunchEstimate {
	meds := launchMedians(groups)
	e := LaunchEstimate{Launches: len(meds), Medians: meds}
	if e.Launches == 0 {
		e.Medians = []float64{}
		return e
	}
	e.Geometric = allPositive(meds)
	back := func(x float64) float64 { return x }
	xs := meds
	if e.Geometric {
		xs, back = logs(meds), math.Exp
	}
	m, sd := meanSD(xs)
	if !isFinite(back(m)) {
		return e // overflow: no estimate
	}
	e.Mean = back(m)
	if k := len(meds); k >= 2 {
		h := StudentTQuantile(1-(1-DefaultConfidence)/2, float64(k-1)) * sd / math.Sqrt(float64(k))
		if lo, hi := back(m-h), back(m+h); isFinite(lo) && isFinite(hi) {
			e.Lo, e.Hi, e.HasCI = lo, hi, true
			if rel, ok := relHalfWidth(lo, hi, e.Mean); ok {
				e.RelHalfWidth = rel
			}
		}
	}
	return e
}

func isFinite(x float64) bool { return !math.IsNaN(x) && !math.IsInf(x, 0) }

func allPositive(xs []float64) bool {
	return !slices.ContainsFunc(xs, func(x float64) bool { return !(x > 0) })
}

// launchMedians returns the median of each non-empty group's finite values.
func launchMedians(groups [][]float64) []float64 {
	out := make([]float64, 0, len(groups))
	for _, g := range groups {
		s, _ := sortedFinite(g)
		if len(s) > 0 {
			out = append(out, quantile(s, 0.5))
		}
	}
	return out
}

// meanSD returns the mean and sample standard deviation (n-1) of xs,
// computed around the first value for precision; sd is 0 for n < 2.
func meanSD(xs []float64) (mean, sd float64) {
	n := len(xs)
	if n == 0 {
		return 0, 0
	}
	shift := xs[0]
	s := 0.0
	for _, x := range xs {
		s += x - shift
	}
	d := s / float64(n)
	if n < 2 {
		return shift + d, 0
	}
	ss := 0.0
	for _, x := range xs {
		e := x - shift - d
		ss += e * e
	}
	return shift + d, math.Sqrt(ss / float64(n-1))
}

// Welch is the result of Welch's unequal-variance t-test.
type Welch struct {
	T  float64 `json:"t"`
	DF float64 `json:"df"`
	// P is two-sided, as scipy.stats.ttest_ind(b, a, equal_var=False).
	P float64 `json:"p"`
	// Diff is mean(b) - mean(a); Lo and Hi bound its (1-alpha) Welch
	// confidence interval; SE is its standard error (0 with both variances 0).
	Diff, Lo, Hi, SE float64
}

// WelchT runs Welch's t-test of b against a at level alpha. ok is false when
// either sample has fewer than 2 values. With both variances 0 the test is
// degenerate: p is 1 for equal means and 0 otherwise.
func WelchT(a, b []float64, alpha float64) (w Welch, ok bool) {
	na, nb := float64(len(a)), float64(len(b))
	if na < 2 || nb < 2 {
		return w, false
	}
	ma, sa := meanSD(a)
	mb, sb := meanSD(b)
	va, vb := sa*sa/na, sb*sb/nb
	w.Diff = mb - ma
	se2 := va + vb
	if !(se2 > 0) {
		w.P = 1
		if w.Diff != 0 {
			w.P = 0
			w.T = math.Copysign(math.MaxFloat64, w.Diff)
		}
		w.DF = na + nb - 2
		w.Lo, w.Hi = w.Diff, w.Diff
		return w, true
	}
	se := math.Sqrt(se2)
	w.SE = se
	w.T = w.Diff / se
	w.DF = se2 * se2 / (va*va/(na-1) + vb*vb/(nb-1))
	w.P = StudentTSF2(math.Abs(w.T), w.DF)
	h := StudentTQuantile(1-alpha/2, w.DF) * se
	w.Lo, w.Hi = w.Diff-h, w.Diff+h
	return w, true
}

// StudentTSF2 returns the two-sided tail probability P(|T| > t) of Student's
// t distribution with df degrees of freedom, t >= 0.
func StudentTSF2(t, df float64) float64 {
	if math.IsNaN(t) {
		return 1
	}
	if math.IsInf(t, 0) {
		return 0
	}
	return regIncBeta(df/2, 0.5, df/(df+t*t))
}

// StudentTQuantile returns the q-quantile (0 < q < 1) of Student's t
// distribution with df > 0 degrees of freedom, by bisection on StudentTSF2.
func StudentTQuantile(q, df float64) float64 {
	if q == 0.5 {
		return 0
	}
	if q < 0.5 {
		return -StudentTQuantile(1-q, df)
	}
	target := 2 * (1 - q) // two-sided tail beyond the quantile
	lo, hi := 0.0, 1.0
	for StudentTSF2(hi, df) > target {
		hi *= 2
		if hi > 1e12 {
			return hi
		}
	}
	for range 200 {
		mid := (lo + hi) / 2
		if StudentTSF2(mid, df) > target {
			lo = mid
		} else {
			hi = mid
		}
		if hi-lo <= 1e-12*hi {
			break
		}
	}
	return (lo + hi) / 2
}

// hierBoot draws hierarchical bootstrap replicates of the launch-level
// estimate: resample launches with replacement, then iterations within each
// resampled launch (its median drawn by bootMedian), and average the launch
// medians (geometrically when geometric).
type hierBoot struct {
	launches  []bootMedian
	geometric bool
}

func newHierBoot(groups [][]float64, boot func(s []float64) bootMedian) hierBoot {
	var h hierBoot
	for _, g := range groups {
		s, _ := sortedFinite(g)
		if len(s) > 0 {
			h.launches = append(h.launches, boot(s))
		}
	}
	return h
}

func (h hierBoot) next() float64 {
	k := len(h.launches)
	rng := h.launches[0].rng
	sum := 0.0
	for range k {
		m := h.launches[rng.IntN(k)].next()
		if h.geometric {
			if !(m > 0) {
				return 0
			}
			m = math.Log(m)
		}
		sum += m
	}
	if h.geometric {
		return math.Exp(sum / float64(k))
	}
	return sum / float64(k)
}

// LaunchDesign is a repetition plan for the next run of one engine and case
// (Kalibera & Jones §4): how many iterations per launch and how many launches
// reach a target precision at the least cost.
type LaunchDesign struct {
	// Iterations is the optimal number of timed iterations per launch,
	// sqrt(launch cost / iteration cost · within var / between var), at
	// least 1 and at most MaxIterations.
	Iterations int `json:"iterations"`
	// Launches is the fewest launches (at least 2) whose launch-level 95%
	// CI half-width is expected within TargetRel of the mean.
	Launches int `json:"launches"`
	// TargetRel is the precision the plan is for (e.g. 0.02 for ±2%).
	TargetRel float64 `json:"target_rel"`
	// LaunchCostS and IterationCostS are the measured costs behind it, in s:
	// spawn to loaded plus warm-up, and one timed iteration.
	LaunchCostS    float64 `json:"launch_cost_s"`
	IterationCostS float64 `json:"iteration_cost_s"`
	// EstimatedS is the time the plan takes for this engine and case.
	EstimatedS float64 `json:"estimated_s"`
	// Capped is true when Launches hit MaxLaunches before the target.
	Capped bool   `json:"capped,omitempty"`
	Note   string `json:"note,omitempty"`
}

// Limits of PlanLaunches.
const (
	MaxIterations = 1000
	MaxLaunches   = 1000
)

// PlanLaunches plans the next run from the variance components v (in the
// metric's squared unit), the metric's mean, the cost of a launch and of an
// iteration (s) and the target relative CI half-width. ok is false when v
// lacks a between-launch estimate, the mean is not positive or a cost is
// missing.
func PlanLaunches(v Variance, mean, launchCostS, iterCostS, targetRel float64) (d LaunchDesign, ok bool) {
	if v.Launches < 2 || !(mean > 0) || !(launchCostS > 0) || !(iterCostS > 0) || !(targetRel > 0) {
		return d, false
	}
	d.TargetRel, d.LaunchCostS, d.IterationCostS = targetRel, launchCostS, iterCostS
	sb, sw := v.BetweenLaunch, v.WithinLaunch
	switch {
	case sb <= 0 && sw <= 0:
		d.Iterations, d.Launches = 1, 2
		d.Note = "no variance measured: any design reaches the target"
	case sb <= 0:
		// Launches do not differ: only the total number of iterations
		// matters, so use few launches (at least 3, to keep a launch-level
		// check with a usable t quantile) and as many iterations as the
		// target needs.
		d.Launches, d.Iterations, d.Capped = MaxLaunches, MaxIterations, true
	search:
		for k := 3; k <= MaxLaunches; k++ {
			for n := 1; n <= MaxIterations; n *= 2 {
				if halfWidth(k, sb, sw, n) <= targetRel*mean {
					for n > 1 && halfWidth(k, sb, sw, n-1) <= targetRel*mean {
						n--
					}
					d.Launches, d.Iterations, d.Capped = k, n, false
					break search
				}
			}
		}
		d.Note = "launches do not differ measurably: iterations are the cheaper way to precision"
	default:
		n := math.Round(math.Sqrt(launchCostS / iterCostS * sw / sb))
		d.Iterations = int(min(max(n, 1), MaxIterations))
		d.Launches, d.Capped = MaxLaunches, true
		for k := 2; k <= MaxLaunches; k++ {
			if halfWidth(k, sb, sw, d.Iterations) <= targetRel*mean {
				d.Launches, d.Capped = k, false
				break
			}
		}
	}
	d.EstimatedS = float64(d.Launches) * (launchCostS + float64(d.Iterations)*iterCostS)
	return d, true
}

// halfWidth is the expected 95% t-interval half-width of the launch-level mean
// of k launches with n iterations each, for variance components sb (between)
// and sw (within). A launch median of n values has about π/2 times the
// variance of their mean (normal data).
func halfWidth(k int, sb, sw float64, n int) float64 {
	v := (sb + math.Pi/2*sw/float64(n)) / float64(k)
	return StudentTQuantile(1-(1-DefaultConfidence)/2, float64(k-1)) * math.Sqrt(v)
}

// MinDetectable returns the smallest difference between two engines, in
// units of the launch-to-launch standard deviation of launch medians, that a
// two-sided launch-level test at level alpha detects with 80% power when
// each engine has k launches (normal approximation with Student-t
// quantiles, 2k-2 degrees of freedom). It is +Inf for k < 2: no launch-level
// test exists.
func MinDetectable(k int, alpha float64) float64 {
	if k < 2 {
		return math.Inf(1)
	}
	df := float64(2*k - 2)
	return (StudentTQuantile(1-alpha/2, df) + StudentTQuantile(0.8, df)) * math.Sqrt(2/float64(k))
}

// LaunchesFor returns the fewest launches per engine (at most MaxLaunches)
// for which MinDetectable(k, alpha) <= sigmas.
func LaunchesFor(sigmas, alpha float64) int {
	for k := 2; k <= MaxLaunches; k++ {
		if MinDetectable(k, alpha) <= sigmas {
			return k
		}
	}
	return MaxLaunches
}

// DesignAdvice says, before a run, what its launches per engine allow: a
// warning when no launch-level test is possible or only a large difference
// can be detected, naming the launches a useful verdict needs; "" when the
// design is adequate. family is the number of comparisons Holm's correction
// will cover (at least 1).
func DesignAdvice(launches, family int, alpha float64) string {
	family = max(family, 1)
	a := alpha / float64(family) // Holm's first step
	const goal = 2.0             // launch SDs: a difference as large as two launches' typical spread
	need := LaunchesFor(goal, a)
	if launches < 2 {
		return fmt.Sprintf("%d launch per engine: no launch-level test is possible, so no difference can be called significant; use at least %d launches per engine (detects a difference of %.0f launch-to-launch SDs at 80%% power over %d comparison(s))", launches, need, goal, family)
	}
	if mde := MinDetectable(launches, a); mde > goal {
		return fmt.Sprintf("%d launches per engine: only differences of about %.1f launch-to-launch SDs or more can be called significant (80%% power, Holm over %d comparison(s)); %d launches per engine would detect %.0f SDs", launches, mde, family, need, goal)
	}
	return ""
}

// compareLaunches fills c's launch-level fields from groups ga (baseline) and
// gb: the Welch test on launch medians (on the log scale when all are
// positive, so the test is about the ratio), and the hierarchical bootstrap
// CI of the ratio of launch-level means.
func (c *Comparison) compareLaunches(ga, gb [][]float64, opts CompareOptions) {
	ea, eb := EstimateLaunches(ga), EstimateLaunches(gb)
	c.LaunchesA, c.LaunchesB = ea.Launches, eb.Launches
	c.EstimateA, c.EstimateB = ea.Mean, eb.Mean
	if ea.Launches == 0 || eb.Launches == 0 {
		return
	}
	la, lb := ea.Medians, eb.Medians
	geometric := ea.Geometric && eb.Geometric
	if geometric {
		la, lb = logs(la), logs(lb)
	} else {
		c.Warnings = append(c.Warnings, "launch medians not all positive: launch-level test and estimates on the raw scale")
		if ea.Geometric || eb.Geometric { // one side geometric: make both arithmetic
			c.EstimateA, _ = meanSD(ea.Medians)
			c.EstimateB, _ = meanSD(eb.Medians)
		}
	}
	if w, ok := WelchT(la, lb, c.Alpha); ok {
		c.T, c.DF, c.P = w.T, w.DF, w.P
		c.HasTest = true
		if opts.Margin > 0 && geometric {
			p := TOSTEstimate(w.Diff, w.SE, w.DF, math.Log1p(opts.Margin))
			c.Equivalence = &Equivalence{Margin: opts.Margin, P: p, PAdj: p}
			c.Equivalence.decide(c.Alpha)
		}
	} else {
		c.Warnings = append(c.Warnings, fmt.Sprintf("%d vs %d launches: a launch-level test needs at least 2 launches per engine; nothing can be called significant", ea.Launches, eb.Launches))
	}
	if min(ea.Launches, eb.Launches) < smallLaunches && c.HasTest {
		c.Warnings = append(c.Warnings, fmt.Sprintf("%d vs %d launches: the bootstrap ratio CI is narrower than its nominal level below %d launches per engine (the launch-level test keeps its level)", ea.Launches, eb.Launches, smallLaunches))
	}
	c.bootstrapLaunchRatio(ga, gb, geometric, opts)
}

// smallLaunches is the fewest launches per engine at which the hierarchical
// bootstrap CI is close to its nominal coverage (calibration test).
const smallLaunches = 5

func logs(xs []float64) []float64 {
	out := make([]float64, len(xs))
	for i, x := range xs {
		out[i] = math.Log(x)
	}
	return out
}

// MaxRunsToResolve caps RunsToResolve: beyond it the answer is "not with this many runs".
const MaxRunsToResolve = 10000

// RunsToResolve estimates how many runs (launches) per side would make the 95% CI of the ratio B/A stop crossing
// the band edge (lo or hi, ratios) nearest the observed ratio, at the run-to-run spread seen so far: the smallest k
// with t(0.975, 2k−2) · sqrt((s²_A + s²_B) / k) < d, where s is each side's sample SD of log launch medians and d the
// log distance from the ratio to that edge (a t interval on the difference of mean log medians, k runs a side; the
// hierarchical bootstrap CI is of the same width to first order). A rough planning figure from few runs; 0 when a
// side has fewer than 2 runs or a median is not positive, MaxRunsToResolve when the ratio sits on an edge.
func RunsToResolve(ga, gb [][]float64, ratio, lo, hi float64) int {
	ma, mb := launchMedians(ga), launchMedians(gb)
	if len(ma) < 2 || len(mb) < 2 || !allPositive(ma) || !allPositive(mb) || !(ratio > 0) {
		return 0
	}
	_, sa := meanSD(logs(ma))
	_, sb := meanSD(logs(mb))
	v := sa*sa + sb*sb
	d := math.Min(math.Abs(math.Log(ratio)-math.Log(lo)), math.Abs(math.Log(ratio)-math.Log(hi)))
	if d == 0 {
		return MaxRunsToResolve
	}
	// t(0.975, df) > z(0.975) for every df, so no k below z²·v/d² can satisfy the condition: start there.
	const z = 1.959963984540054
	start := max(2, int(z*z*v/(d*d)))
	for k := start; k <= MaxRunsToResolve; k++ {
		if StudentTQuantile(0.975, float64(2*k-2))*math.Sqrt(v/float64(k)) < d {
			return k
		}
	}
	return MaxRunsToResolve
}
