package cli_test

import (
	"fmt"
	"math"
	"math/rand/v2"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/cuda-inference-benchmarks/cib/protocol"
	"github.com/cuda-inference-benchmarks/cib/runner/internal/analysis"
	"github.com/cuda-inference-benchmarks/cib/runner/internal/config"
	"github.com/cuda-inference-benchmarks/cib/runner/internal/envinfo"
	"github.com/cuda-inference-benchmarks/cib/runner/internal/metrics"
	"github.com/cuda-inference-benchmarks/cib/runner/internal/results"
)

// Calibration of the verdict: results with a known two-level structure
// (launch effects and iteration noise on the log scale, total SD 2%) go
// through the real `runner report` path — runs.jsonl on disk, analysis,
// summary.json — and the test counts how often TPOT comparisons come out
// significant. Each dataset holds calCases independent cases, so the count
// uses the per-comparison rule (launch-level p < 0.05 and the ratio CI
// excluding 1) before Holm's correction, which only lowers it.
const (
	calCases    = 25
	calDatasets = 16 // per condition: 400 comparisons
	calTotalSD  = 0.02
	calTokens   = 8
)

type calCondition struct {
	icc                float64
	launches, iters    int
	shift              float64 // B's TPOT = A's × shift
	maxRate, minRate   float64 // bounds on the significant fraction
	pooledAbove        float64 // the pooled-iteration test must exceed this (0: unchecked)
	datasets, cases    int
	seed               uint64
	name               string
	significantAtLeast string
}

// binomUpper returns the smallest k with P(X >= k) <= 0.001 for X ~
// Binomial(n, p): the tolerance for a rate that is really p.
func binomUpper(n int, p float64) int {
	lg := func(x int) float64 { v, _ := math.Lgamma(float64(x) + 1); return v }
	tail := 0.0
	for k := n; k >= 0; k-- {
		tail += math.Exp(lg(n) - lg(k) - lg(n-k) + float64(k)*math.Log(p) + float64(n-k)*math.Log1p(-p))
		if tail > 0.001 {
			return k + 1
		}
	}
	return 0
}

func TestVerdictCalibration(t *testing.T) {
	if testing.Short() {
		t.Skip("calibration runs ~130 reports")
	}
	var conds []calCondition
	for i, icc := range []float64{0, 0.5, 0.9, 0.99} {
		for j, k := range []int{3, 6} {
			c := calCondition{icc: icc, launches: k, iters: 10, shift: 1, datasets: calDatasets, cases: calCases, seed: uint64(100 + 10*i + j)}
			c.name = fmt.Sprintf("A/A ICC %.2f %dx%d", icc, k, c.iters)
			n := c.datasets * c.cases
			c.maxRate = float64(binomUpper(n, 0.05)) / float64(n)
			if icc >= 0.9 {
				// What the pooled-iteration test (the verdict before the
				// launch became the unit) does on the same data.
				c.pooledAbove = 0.3
			}
			conds = append(conds, c)
		}
	}
	// Power for a true 5% shift at ICC 0.9 (launch SD 1.9%): measured
	// 0.57 (3×10) and 1.00 (6×10) with these seeds; the bounds leave room for
	// other seeds.
	conds = append(conds,
		calCondition{name: "5% shift ICC 0.90 3x10", icc: 0.9, launches: 3, iters: 10, shift: 1.05, minRate: 0.45, datasets: 4, cases: calCases, seed: 201},
		calCondition{name: "5% shift ICC 0.90 6x10", icc: 0.9, launches: 6, iters: 10, shift: 1.05, minRate: 0.95, datasets: 4, cases: calCases, seed: 202},
	)
	for _, c := range conds {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			rng := rand.New(rand.NewPCG(c.seed, 7))
			sig, pooled, total := 0, 0, 0
			for d := range c.datasets {
				dir := filepath.Join(t.TempDir(), fmt.Sprintf("d%d", d))
				writeTwoLevel(t, dir, rng, c)
				o := run(t, t.Context(), "report", dir)
				require.Equal(t, 0, o.code, "runner report %s: %s", dir, o.stderr)
				var s analysis.Summary
				require.NoError(t, results.ReadJSON(dir, results.SummaryFile, &s))
				for _, cs := range s.Cases {
					for _, cm := range cs.Comparisons {
						if cm.Metric != "tpot_ms" {
							continue
						}
						total++
						if cm.HasTest && cm.P < cm.Alpha && (cm.RatioLo > 1 || cm.RatioHi < 1) {
							sig++
						}
						if cm.PooledP < cm.Alpha {
							pooled++
						}
					}
				}
			}
			require.Equal(t, c.datasets*c.cases, total, "TPOT comparisons")
			rate, pooledRate := float64(sig)/float64(total), float64(pooled)/float64(total)
			t.Logf("%s: significant %d/%d = %.3f (pooled-iteration test %.3f)", c.name, sig, total, rate, pooledRate)
			if c.maxRate > 0 {
				assert.LessOrEqual(t, rate, c.maxRate, "%s: false-positive rate %.3f above 5%% + binomial tolerance", c.name, rate)
			}
			if c.minRate > 0 {
				assert.GreaterOrEqual(t, rate, c.minRate, "%s: power %.3f", c.name, rate)
			}
			if c.pooledAbove > 0 {
				assert.Greater(t, pooledRate, c.pooledAbove, "%s: the simulated launch effect must fool a pooled test (else the check proves nothing)", c.name)
			}
		})
	}
}

// writeTwoLevel writes a results directory (runs.jsonl, environment.json,
// request.json) with engines A and B, c.launches launches each, interleaved,
// every case with c.iters timed iterations whose TPOT is
// 5 ms · exp(launch effect + iteration noise) (× c.shift for B).
func writeTwoLevel(t *testing.T, dir string, rng *rand.Rand, c calCondition) {
	t.Helper()
	sb, sw := calTotalSD*math.Sqrt(c.icc), calTotalSD*math.Sqrt(1-c.icc)
	req := protocol.Request{Device: "cpu", DType: "f32", Warmup: 1, Iterations: c.iters}
	for i := range c.cases {
		req.Cases = append(req.Cases, protocol.Case{Name: fmt.Sprintf("c%d", i), PromptTokens: []int{1, 2, 3, 4}, MaxNewTokens: calTokens, BatchSize: 1})
	}
	w, err := results.Create(dir)
	require.NoError(t, err)
	defer w.Close()
	order := 0
	for l := range c.launches {
		for _, e := range []string{"A", "B"} {
			scale := 1.0
			if e == "B" {
				scale = c.shift
			}
			rec := results.Record{Engine: e, Spec: config.EngineSpec{Name: "reference"}, Launch: l, Order: order, Status: results.StatusOK,
				StartedAt: time.Unix(1_800_000_000, 0).UTC(), ColdStartNs: 1e9, DurationNs: 2e9}
			order++
			for ci := range c.cases {
				launchEffect := sb * rng.NormFloat64()
				ttft := int64(20e6)
				for k := -1; k < c.iters; k++ { // k = -1: the warm-up iteration
					tpot := 5e6 * scale * math.Exp(launchEffect+sw*rng.NormFloat64())
					raw := protocol.Iteration{Case: ci, Index: max(k, 0), Warmup: k < 0, PromptTokens: 4,
						OutputTokens: [][]int{make([]int, calTokens)}}
					for tok := range calTokens {
						raw.TokenNs = append(raw.TokenNs, ttft+int64(math.Round(float64(tok)*tpot)))
					}
					raw.EndNs = raw.TokenNs[calTokens-1] + 1000
					rec.Iterations = append(rec.Iterations, results.Iteration{CaseName: req.Cases[ci].Name, ArrivedNs: 1e9,
						Raw: raw, Metrics: metrics.FromIteration(&raw)})
				}
			}
			require.NoError(t, w.Append(&rec))
		}
	}
	require.NoError(t, results.WriteJSON(dir, results.EnvFile, envinfo.Env{CreatedAt: time.Unix(1_800_000_000, 0).UTC()}))
	require.NoError(t, results.WriteJSON(dir, "request.json", req))
}
