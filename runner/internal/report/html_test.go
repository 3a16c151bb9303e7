package report

import (
	"bytes"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/cuda-inference-benchmarks/cib/runner/internal/analysis"
	"github.com/cuda-inference-benchmarks/cib/runner/internal/stats"
)

func TestNiceTicks(t *testing.T) {
	for _, tc := range []struct{ lo, hi float64 }{{961.5, 1220}, {0.0123, 0.0456}, {5, 5}, {-3, 7}, {1e-6, 3e-6}} {
		ticks := niceTicks(tc.lo, tc.hi, 5)
		require.GreaterOrEqual(t, len(ticks), 2, "%v", tc)
		assert.LessOrEqual(t, ticks[0], tc.lo, "%v: first tick covers lo", tc)
		assert.GreaterOrEqual(t, ticks[len(ticks)-1], tc.hi, "%v: last tick covers hi", tc)
		assert.LessOrEqual(t, len(ticks), 12, "%v: about 5 ticks, not %v", tc, ticks)
		for i := 1; i < len(ticks); i++ {
			assert.Greater(t, ticks[i], ticks[i-1], "%v: increasing", tc)
		}
	}
	assert.Equal(t, []float64{900, 1000, 1100, 1200, 1300}, niceTicks(961.5, 1220, 5))
}

// TestHTMLEscapesAndSkipsEmpty: engine labels and errors are escaped, a
// metric nobody measured draws no chart, and the page is one document.
func TestHTMLEscapesAndSkipsEmpty(t *testing.T) {
	st := func(xs ...float64) analysis.Stat {
		return analysis.Stat{Summary: stats.Summary{N: len(xs), Median: xs[0]}, Samples: xs}
	}
	s := &analysis.Summary{
		Name:     "x<y",
		Baseline: "<b>",
		Engines:  []analysis.Engine{{Label: "<b>"}},
		Cases: []analysis.Case{{Name: "c", Results: []analysis.Result{{Engine: "<b>", Deterministic: true,
			Metrics: map[string]analysis.Stat{"decode_tps": st(10, 11, 12)}}}}},
		Failures: []analysis.Failure{{Engine: "<b>", Error: "stall <timeout>"}},
	}
	var b bytes.Buffer
	require.NoError(t, HTML(&b, s))
	out := b.String()
	assert.Equal(t, 1, strings.Count(out, "<b>"), "the only <b> is the baseline's bold tag; the label itself is escaped")
	assert.Contains(t, out, "<td>&lt;b&gt;</td>")
	assert.Contains(t, out, "stall &lt;timeout&gt;")
	assert.Equal(t, 1, strings.Count(out, "<svg"), "only decode tok/s has samples")
	assert.True(t, strings.HasSuffix(out, "</html>\n"))
}

// TestHeadlinesOneLaunch: with one launch per engine there is no launch-level
// test, and the verdict summary says so instead of "no significant difference".
func TestHeadlinesOneLaunch(t *testing.T) {
	s := &analysis.Summary{Baseline: "a", Cases: []analysis.Case{{Name: "c", Comparisons: []analysis.Comparison{
		{Engine: "b", Baseline: "a", Metric: "tpot_ms", Comparison: stats.Comparison{LaunchesA: 1, LaunchesB: 1, P: 1, PAdj: 1, Verdict: "~"}},
	}}}}
	hs := Headlines(s)
	require.Len(t, hs, 1)
	assert.Equal(t, "b vs a: no verdict — 1 vs 1 launches; a launch-level test needs at least 2 per engine", hs[0].Text)
}

// TestHeadlinesTooFewToDecide: a comparison whose ratio CI excludes 1 but
// whose launch-level test does not reject (few launches that vary, Holm over
// many comparisons) says the launches were too few, with the ratio; one whose
// CI holds 1 keeps "no significant difference".
func TestHeadlinesTooFewToDecide(t *testing.T) {
	undecided := stats.Comparison{LaunchesA: 3, LaunchesB: 3, HasTest: true, HasRatio: true, Ratio: 5.97, RatioLo: 5.19, RatioHi: 7.39, P: 0.004, PAdj: 0.087, Alpha: 0.05, Verdict: "~"}
	level := stats.Comparison{LaunchesA: 3, LaunchesB: 3, HasTest: true, HasRatio: true, Ratio: 1.01, RatioLo: 0.95, RatioHi: 1.08, P: 0.6, PAdj: 1, Alpha: 0.05, Verdict: "~"}
	s := &analysis.Summary{Baseline: "a", Cases: []analysis.Case{{Name: "c", Comparisons: []analysis.Comparison{
		{Engine: "b", Baseline: "a", Metric: "tpot_ms", Comparison: undecided},
		{Engine: "b", Baseline: "a", Metric: "ttft_ms", Comparison: level},
	}}}}
	hs := Headlines(s)
	require.Len(t, hs, 1)
	assert.Equal(t, "b vs a: not significant with 3 vs 3 launches, too few to decide: TPOT 5.97× [5.19–7.39×] (p = 0.087); no significant difference in TTFT", hs[0].Text)
	assert.Zero(t, hs[0].Better+hs[0].Worse, "an undecided comparison counts neither way")
	assert.Equal(t, "b vs a in TPOT: not significant with 3 vs 3 launches, too few to decide (ratio 5.97 [95% CI 5.19–7.39], launch-level p = 0.087 (Holm))",
		Verdict(s.Cases[0].Comparisons[0]))
	assert.Equal(t, "b vs a in TTFT: no significant difference (ratio 1.01 [95% CI 0.950–1.08], launch-level p = 1.000 (Holm))", Verdict(s.Cases[0].Comparisons[1]))
}
