package adapter

import (
	"fmt"
	"math"

	"github.com/cuda-inference-benchmarks/cib/runner/internal/stats"
)

// Metrics the check compares, by their JSON name.
const (
	MetricDecode = "decode_tok_s"
	MetricTTFT   = "ttft_ms"
)

// MetricLabel names a metric in reports.
func MetricLabel(m string) string {
	switch m {
	case MetricDecode:
		return "decode tok/s"
	case MetricTTFT:
		return "TTFT ms"
	}
	return m
}

// Verdict compares the runner's figure of one metric with the native tool's.
//
// Each run (a native process, a runner launch: both fresh processes) is a
// group of timed iterations. The figure of a side is the geometric mean of its
// run medians, and the CI of Ratio = runner / native is the hierarchical
// bootstrap of stats.Compare (resample runs, then iterations within them): on
// a GPU the run-to-run variance dominates, so a CI over pooled iterations
// would claim a precision the runs do not have. PooledRatio, the ratio of the
// pooled iterations' medians, is descriptive.
type Verdict struct {
	Metric string `json:"metric"`
	// Native and Runner are the sides' figures (unit of the metric).
	Native float64 `json:"native"`
	Runner float64 `json:"runner"`
	// Ratio is Runner/Native; Lo and Hi bound its 95% CI, by Method.
	Ratio  float64 `json:"ratio"`
	Lo     float64 `json:"ratio_lo"`
	Hi     float64 `json:"ratio_hi"`
	Method string  `json:"method"`
	// Unpaired is the hierarchical bootstrap's ratio and CI (Ratio's when Method is "unpaired"); Paired the
	// round-paired one (Ratio's when Method is "paired"), absent with fewer than two complete rounds.
	Unpaired [3]float64    `json:"unpaired"`
	Paired   *stats.Paired `json:"paired,omitempty"`
	// PooledRatio is the ratio of the pooled timed iterations' medians.
	PooledRatio float64 `json:"pooled_ratio"`
	// Runs and iterations per side.
	NativeRuns  int `json:"native_runs"`
	RunnerRuns  int `json:"runner_runs"`
	NativeIters int `json:"native_iterations"`
	RunnerIters int `json:"runner_iterations"`
	// Tolerance is the allowed |Ratio − 1| (0.03: ±3%).
	Tolerance float64 `json:"tolerance"`
	// Within is |Ratio − 1| ≤ Tolerance: the exit code rests on it.
	Within bool `json:"within"`
	// Resolved is true when the whole CI lies on one side of the tolerance
	// band's edges (inside it, or outside it): the runs were enough to tell.
	Resolved bool `json:"resolved"`
	// RoundsNeeded, when the CI crosses an edge of the band, estimates the runs per side after which it would
	// not (stats.RunsToResolve); 0 when resolved or when a side has fewer than two runs.
	RoundsNeeded int      `json:"rounds_needed,omitempty"`
	Warnings     []string `json:"warnings,omitempty"`
}

// MinPairs is the number of complete rounds from which the verdict is paired
// by round: with two, the t interval has one degree of freedom (t = 12.7)
// and says little; the bootstrap decides instead.
const MinPairs = 3

// Pair is one round's run medians of a metric, native and runner.
type Pair struct {
	Round          int
	Native, Runner float64
}

// Compare computes the verdict of one metric from the per-run timed
// iterations of each side and the rounds' pairs of run medians.
func Compare(metric string, native, runner [][]float64, pairs []Pair, tolerance float64) Verdict {
	v := Verdict{Metric: metric, Tolerance: tolerance, Method: "unpaired"}
	c := stats.Compare(nonEmpty(native), nonEmpty(runner), stats.CompareOptions{Seed: 1})
	v.NativeRuns, v.RunnerRuns, v.NativeIters, v.RunnerIters = c.LaunchesA, c.LaunchesB, c.NA, c.NB
	v.Native, v.Runner = c.EstimateA, c.EstimateB
	v.Warnings = c.Warnings
	if !c.HasRatio {
		v.Warnings = append(v.Warnings, "no ratio: a side has no timed iteration")
		return v
	}
	v.Ratio, v.Lo, v.Hi = c.Ratio, c.RatioLo, c.RatioHi
	v.Unpaired = [3]float64{c.Ratio, c.RatioLo, c.RatioHi}
	if c.MedianA > 0 {
		v.PooledRatio = c.MedianB / c.MedianA
	}
	var a, b []float64
	for _, p := range pairs {
		a, b = append(a, p.Native), append(b, p.Runner)
	}
	if p, ok := stats.PairedRatio(a, b, 0.95); ok {
		v.Paired = &p
		if p.N >= MinPairs {
			v.Method, v.Ratio, v.Lo, v.Hi = "paired", p.Ratio, p.Lo, p.Hi
		}
	}
	lo, hi := 1-tolerance, 1+tolerance
	v.Within = math.Abs(v.Ratio-1) <= tolerance+1e-12
	v.Resolved = (v.Lo >= lo && v.Hi <= hi) || v.Hi < lo || v.Lo > hi
	switch {
	case v.NativeRuns < 2 || v.RunnerRuns < 2:
		v.Warnings = append(v.Warnings, "one run on a side: the CI covers iterations only, not run-to-run variation")
	case v.Resolved:
	case v.Method == "paired":
		v.RoundsNeeded = stats.PairsToResolve(*v.Paired, lo, hi)
	default:
		v.RoundsNeeded = stats.RunsToResolve(native, runner, v.Ratio, lo, hi)
	}
	return v
}

func nonEmpty(groups [][]float64) [][]float64 {
	var out [][]float64
	for _, g := range groups {
		if len(g) > 0 {
			out = append(out, g)
		}
	}
	return out
}

// Line is the verdict in one line, e.g.
//
//	decode tok/s: runner 123.40 / native 125.00 = 0.9872 (95% CI 0.9801–0.9950, 2+2 runs) within ±3%
func (v Verdict) Line() string { return v.LineAs("runner", "native") }

// LineAs is Line with other names for the two sides: num is the runner side (the ratio's numerator), den the
// native side, e.g. LineAs("sampler 10ms", "sampler off") for the observer check.
func (v Verdict) LineAs(num, den string) string {
	if v.Ratio == 0 {
		return fmt.Sprintf("%s: no verdict (%s %d runs, %s %d runs)", MetricLabel(v.Metric), den, v.NativeRuns, num, v.RunnerRuns)
	}
	word := "within"
	if !v.Within {
		word = "OUTSIDE"
	}
	var s string
	if v.Method == "paired" {
		s = fmt.Sprintf("%s: %s / %s = %.4f (95%% CI %.4f–%.4f, paired by round over %d rounds; unpaired: %s %.2f / %s %.2f = %.4f, "+
			"CI %.4f–%.4f, %d+%d runs, hierarchical bootstrap; pooled iterations %.4f) %s ±%s",
			MetricLabel(v.Metric), num, den, v.Ratio, v.Lo, v.Hi, v.Paired.N, num, v.Runner, den, v.Native, v.Unpaired[0], v.Unpaired[1], v.Unpaired[2],
			v.NativeRuns, v.RunnerRuns, v.PooledRatio, word, pct(v.Tolerance))
	} else {
		s = fmt.Sprintf("%s: %s %.2f / %s %.2f = %.4f (95%% CI %.4f–%.4f, %d+%d runs, hierarchical bootstrap; pooled iterations %.4f) %s ±%s",
			MetricLabel(v.Metric), num, v.Runner, den, v.Native, v.Ratio, v.Lo, v.Hi, v.NativeRuns, v.RunnerRuns, v.PooledRatio, word, pct(v.Tolerance))
	}
	if !v.Resolved {
		s += "; the CI crosses ±" + pct(v.Tolerance) + ": more rounds to resolve"
		switch {
		case v.RoundsNeeded >= stats.MaxRunsToResolve:
			s += fmt.Sprintf(" (more than %d per side at this run-to-run spread: not with this check)", stats.MaxRunsToResolve)
		case v.RoundsNeeded > 0 && v.Method == "paired":
			s += fmt.Sprintf(" (about %d rounds at this round-to-round spread of the ratio)", v.RoundsNeeded)
		case v.RoundsNeeded > 0:
			s += fmt.Sprintf(" (about %d per side at this run-to-run spread)", v.RoundsNeeded)
		}
	}
	return s
}

func pct(f float64) string { return fmt.Sprintf("%g%%", math.Round(f*1000)/10) }
