package analysis

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/cuda-inference-benchmarks/cib/runner/internal/stats"
)

// TestAdjustHolmCountsDecodeOnce: decode tok/s is batch / TPOT, one
// hypothesis with TPOT's: Holm's family holds TPOT, TTFT and E2E of each
// engine (6 here, not 8), and decode tok/s takes TPOT's adjusted p. The
// adjusted values are HolmAdjust's over the six raw p's (HolmAdjust itself is
// pinned to statsmodels in the stats package).
func TestAdjustHolmCountsDecodeOnce(t *testing.T) {
	raw := map[string]float64{"b/tpot_ms": 0.004, "b/decode_tps": 0.0041, "b/ttft_ms": 0.3, "b/e2e_ms": 0.01,
		"c/tpot_ms": 0.02, "c/decode_tps": 0.019, "c/ttft_ms": 0.5, "c/e2e_ms": 0.03}
	var ks []Keyed
	for _, e := range []string{"b", "c"} {
		for _, m := range Compared {
			c := &stats.Comparison{HasTest: true, HasRatio: true, Ratio: 2, RatioLo: 1.5, RatioHi: 2.5, Alpha: 0.05, P: raw[e+"/"+m], PAdj: raw[e+"/"+m]}
			ks = append(ks, Keyed{Case: "p128-n256", Engine: e, Metric: m, C: c})
		}
	}
	require.Equal(t, 6, AdjustHolm(ks))
	want := stats.HolmAdjust([]float64{0.004, 0.3, 0.01, 0.02, 0.5, 0.03}) // b: tpot ttft e2e, c: tpot ttft e2e
	got := map[string]float64{}
	for _, k := range ks {
		got[k.Engine+"/"+k.Metric] = k.C.PAdj
	}
	assert.InDelta(t, want[0], got["b/tpot_ms"], 1e-12)
	assert.InDelta(t, want[0], got["b/decode_tps"], 1e-12, "decode tok/s shares TPOT's test")
	assert.InDelta(t, want[2], got["b/e2e_ms"], 1e-12)
	assert.InDelta(t, want[3], got["c/tpot_ms"], 1e-12)
	assert.InDelta(t, want[3], got["c/decode_tps"], 1e-12)
	for _, k := range ks {
		assert.Equal(t, k.C.PAdj < 0.05, k.C.Significant, "%s/%s: significance follows the adjusted p", k.Engine, k.Metric)
	}
	assert.Equal(t, 3, Hypotheses(), "TPOT (with decode tok/s), TTFT, E2E")

	// Without TPOT in the family, decode tok/s is its own hypothesis.
	lone := []Keyed{{Case: "x", Engine: "b", Metric: "decode_tps", C: &stats.Comparison{HasTest: true, P: 0.01, PAdj: 0.01}},
		{Case: "x", Engine: "b", Metric: "ttft_ms", C: &stats.Comparison{HasTest: true, P: 0.02, PAdj: 0.02}}}
	require.Equal(t, 2, AdjustHolm(lone))
	assert.InDelta(t, 0.02, lone[0].C.PAdj, 1e-12)
}
