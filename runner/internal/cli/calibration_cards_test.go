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
	"github.com/cuda-inference-benchmarks/cib/runner/internal/stats"
)

// Calibration of the verdict blocked by card: two cards, card 1 is 5% slower
// for every engine, launches at ICC 0.9 (total SD 2%) as in
// TestVerdictCalibration, through the real `runner report` path. The count
// uses the per-comparison rule (p < 0.05 and the CI excluding 1, before Holm,
// no verdict when the cards disagree) and, for comparison, the unblocked
// launch-level rule on launches pooled over cards (the verdict if the card
// were ignored). Measured with these seeds (250 comparisons each): A/A
// balanced 0.048 blocked vs 0.004 pooled; A/A unbalanced 0.052 vs 0.264; a
// true 5% shift 0.916 vs 0.712; "cards disagree" in 3–4% of A/A comparisons.
func TestBlockedCalibration(t *testing.T) {
	if testing.Short() {
		t.Skip("calibration runs ~30 reports")
	}
	const datasets, cases = 10, 25
	n := datasets * cases
	maxFP := float64(binomUpper(n, 0.05)) / float64(n)
	tests := []struct {
		name string
		// perCard[e][c] is engine e's launches on card c.
		perCard [2][2]int
		shift   float64
		seed    uint64
		check   func(t *testing.T, blocked, pooled float64)
	}{
		{
			// The balanced schedule of --gpus: the card moves both engines
			// alike; pooling is not biased, the blocked rule keeps its level.
			name: "A/A balanced 3+3 launches per engine", perCard: [2][2]int{{3, 3}, {3, 3}}, shift: 1, seed: 301,
			check: func(t *testing.T, blocked, pooled float64) {
				assert.LessOrEqual(t, blocked, maxFP, "blocked false-positive rate")
			},
		},
		{
			// Uneven launches per card (failed launches, a card taken away):
			// A ran mostly on the fast card, B on the slow one. Pooling reads
			// the card as an engine difference; blocking does not.
			name: "A/A unbalanced 6+2 vs 2+6", perCard: [2][2]int{{6, 2}, {2, 6}}, shift: 1, seed: 302,
			check: func(t *testing.T, blocked, pooled float64) {
				assert.LessOrEqual(t, blocked, maxFP, "blocked false-positive rate")
				assert.Greater(t, pooled, 0.15, "pooling over cards must be fooled by the slow card (else the check proves nothing)")
			},
		},
		{
			// Power for a true 5% shift, balanced: blocking takes the card
			// out of the noise, so it finds more than pooling does.
			name: "5% shift balanced 3+3", perCard: [2][2]int{{3, 3}, {3, 3}}, shift: 1.05, seed: 303,
			check: func(t *testing.T, blocked, pooled float64) {
				assert.GreaterOrEqual(t, blocked, 0.8, "blocked power")
				assert.GreaterOrEqual(t, blocked, pooled, "blocked power at least pooled power")
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			rng := rand.New(rand.NewPCG(tt.seed, 11))
			sig, pooled, disagree, total := 0, 0, 0, 0
			for d := range datasets {
				dir := filepath.Join(t.TempDir(), fmt.Sprintf("d%d", d))
				groups := writeCards(t, dir, rng, cases, tt.perCard, tt.shift)
				o := run(t, t.Context(), "report", dir)
				require.Equal(t, 0, o.code, "runner report %s: %s", dir, o.stderr)
				var s analysis.Summary
				require.NoError(t, results.ReadJSON(dir, results.SummaryFile, &s))
				for ci, cs := range s.Cases {
					for _, cm := range cs.Comparisons {
						if cm.Metric != "tpot_ms" {
							continue
						}
						require.Len(t, cm.Cards, 2, "per-card comparisons")
						require.NotNil(t, cm.Blocked)
						total++
						if cm.Verdict == analysis.CardsDisagree {
							disagree++
						}
						if cm.HasTest && cm.P < cm.Alpha && (cm.RatioLo > 1 || cm.RatioHi < 1) && !cm.Blocked.Disagree {
							sig++
						}
						p := stats.Compare(groups[ci][0], groups[ci][1], stats.CompareOptions{Resamples: 2000, Seed: 1})
						if p.HasTest && p.P < p.Alpha && (p.RatioLo > 1 || p.RatioHi < 1) {
							pooled++
						}
					}
				}
			}
			require.Equal(t, n, total)
			blocked, pooledRate := float64(sig)/float64(total), float64(pooled)/float64(total)
			t.Logf("%s: blocked significant %d/%d = %.3f, pooled over cards %.3f, cards disagree %d", tt.name, sig, total, blocked, pooledRate, disagree)
			tt.check(t, blocked, pooledRate)
		})
	}
}

// writeCards writes a two-card results directory: engines A and B, case by
// case TPOT 5 ms · exp(launch effect + iteration noise) × 1.05 on card 1
// (× shift for B), perCard[e][c] launches of engine e on card c. It returns,
// per case, each engine's groups of timed TPOTs in ms (one per launch).
func writeCards(t *testing.T, dir string, rng *rand.Rand, cases int, perCard [2][2]int, shift float64) [][2][][]float64 {
	t.Helper()
	const icc, iters = 0.9, 10
	sb, sw := calTotalSD*math.Sqrt(icc), calTotalSD*math.Sqrt(1-icc)
	req := protocol.Request{Device: "cuda:0", DType: "f32", Warmup: 0, Iterations: iters}
	for i := range cases {
		req.Cases = append(req.Cases, protocol.Case{Name: fmt.Sprintf("c%d", i), PromptTokens: []int{1, 2, 3, 4}, MaxNewTokens: calTokens, BatchSize: 1})
	}
	w, err := results.Create(dir)
	require.NoError(t, err)
	defer w.Close()
	groups := make([][2][][]float64, cases)
	order := 0
	for e, name := range []string{"A", "B"} {
		launch := 0
		for card := range 2 {
			for range perCard[e][card] {
				scale := 1.0
				if e == 1 {
					scale = shift
				}
				if card == 1 {
					scale *= 1.05
				}
				rec := results.Record{Engine: name, Spec: config.EngineSpec{Name: "reference"}, Launch: launch, Order: order, Status: results.StatusOK,
					StartedAt: time.Unix(1_800_000_000, 0).UTC(), ColdStartNs: 1e9, DurationNs: 2e9, Card: &results.Card{Index: card, UUID: fmt.Sprintf("GPU-%d", card)}}
				launch++
				order++
				for ci := range cases {
					le := sb * rng.NormFloat64()
					var g []float64
					for k := range iters {
						tpot := 5e6 * scale * math.Exp(le+sw*rng.NormFloat64())
						ttft := int64(20e6 * (1 + 0.01*rng.Float64()))
						raw := protocol.Iteration{Case: ci, Index: k, PromptTokens: 4, OutputTokens: [][]int{make([]int, calTokens)}}
						for tok := range calTokens {
							// TTFT varies a little: report.html's chart axis loops
							// on a range narrower than float64 resolution.
							raw.TokenNs = append(raw.TokenNs, ttft+int64(math.Round(float64(tok)*tpot)))
						}
						raw.EndNs = raw.TokenNs[calTokens-1] + 1000
						m := metrics.FromIteration(&raw)
						g = append(g, m.TPOTNs/1e6)
						rec.Iterations = append(rec.Iterations, results.Iteration{CaseName: req.Cases[ci].Name, ArrivedNs: 1e9, Raw: raw, Metrics: m})
					}
					groups[ci][e] = append(groups[ci][e], g)
				}
				require.NoError(t, w.Append(&rec))
			}
		}
	}
	require.NoError(t, results.WriteJSON(dir, results.EnvFile, envinfo.Env{CreatedAt: time.Unix(1_800_000_000, 0).UTC()}))
	require.NoError(t, results.WriteJSON(dir, "request.json", req))
	return groups
}
