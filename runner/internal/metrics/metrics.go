// Package metrics derives every reported metric from an engine's raw
// per-token timestamps. The definitions live here once, and Definitions is
// printed under every report table.
package metrics

import (
	"github.com/cuda-inference-benchmarks/cib/protocol"
)

// Iteration holds the metrics of one generation. Times are in ns.
type Iteration struct {
	// TTFTNs = first output token − iteration start (includes prefill).
	TTFTNs int64 `json:"ttft_ns"`
	// E2ENs = last output token − iteration start.
	E2ENs int64 `json:"e2e_ns"`
	// TPOTNs = (E2E − TTFT) / (N_out − 1); 0 when N_out = 1.
	TPOTNs float64 `json:"tpot_ns"`
	// DecodeTPS = (N_out − 1) / (E2E − TTFT) × batch, in tokens/s.
	DecodeTPS float64 `json:"decode_tps"`
	// PrefillTPS = prompt tokens × batch / TTFT, in tokens/s.
	PrefillTPS float64 `json:"prefill_tps"`
	// ITLNs are the gaps between consecutive tokens.
	ITLNs []int64 `json:"itl_ns,omitempty"`
	// Outputs is N_out, tokens per sequence.
	Outputs int `json:"outputs"`
	// Batch is the number of sequences.
	Batch int `json:"batch"`
	// Prompt is the prompt length per sequence.
	Prompt int `json:"prompt"`
}

// FromIteration computes the metrics of one iteration event.
func FromIteration(it *protocol.Iteration) Iteration {
	n := len(it.TokenNs)
	m := Iteration{Outputs: n, Batch: len(it.OutputTokens), Prompt: it.PromptTokens}
	if n == 0 {
		return m
	}
	m.TTFTNs = it.TokenNs[0]
	m.E2ENs = it.TokenNs[n-1]
	if m.TTFTNs > 0 {
		m.PrefillTPS = float64(it.PromptTokens*m.Batch) / (float64(m.TTFTNs) / 1e9)
	}
	if n > 1 {
		dec := float64(m.E2ENs - m.TTFTNs)
		m.TPOTNs = dec / float64(n-1)
		if dec > 0 {
			m.DecodeTPS = float64(n-1) / (dec / 1e9) * float64(m.Batch)
		}
		m.ITLNs = make([]int64, n-1)
		for i := 1; i < n; i++ {
			m.ITLNs[i-1] = it.TokenNs[i] - it.TokenNs[i-1]
		}
	}
	return m
}

// Definitions are printed under every report table.
var Definitions = []string{
	"TTFT = first output token time − iteration start (includes prefill).",
	"E2E = last output token time − iteration start.",
	"TPOT = (E2E − TTFT) / (N_out − 1) (= vLLM TPOT = AIPerf ITL mean); ITL = each gap between consecutive tokens.",
	"Decode tok/s = (N_out − 1) / (E2E − TTFT) × batch; prefill tok/s = prompt tokens × batch / TTFT.",
	"Cold start = process spawn → `loaded` event, measured by the runner; the engine's breakdown is in summary.json.",
	"Host CPU = CPU time of the engine's process tree from `loaded` to `done` (warm-ups and prefill included), per generation step and as cores busy; an engine that waits for each token by spinning (CUDA's default event wait) counts the wait too — pytorch compiled and libtorch offer wait=block to count only their loop's work.",
	"All times come from the engine's raw per-token host timestamps (monotonic clock, token id already on the host).",
	"The launch (one engine process) is the unit: each launch is summarised by the median of its timed iterations; an engine's figure is the geometric mean of its launch medians with a Student-t 95% CI over launches (log scale).",
	"A vs B = ratio of those figures with a hierarchical bootstrap 95% CI (resample launches, then iterations within them), and Welch's t-test on log launch medians (Holm-adjusted over the report's hypotheses; decode tok/s = batch / TPOT shares TPOT's test and counts once); significant = p < 0.05 and the CI excludes 1, else \"~\" — \"too few to decide\" when the CI excludes 1 but the test does not reject. Cliff's δ and the pooled-iteration figures are descriptive.",
	"Variance components: one-way random-effects ANOVA of TPOT over launches (ICC = between-launch share); the recommended design minimises launches × (launch cost) + iterations × (iteration cost) for a ±2% CI (Kalibera & Jones, ISMM 2013).",
}
