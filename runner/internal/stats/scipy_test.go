package stats

import (
	"encoding/json"
	"os"
	"testing"

	"github.com/stretchr/testify/require"
)

// TestScipyCases checks 100 random sample pairs (small and large, with and
// without ties) against SciPy; testdata/scipy_cases.py generates them.
func TestScipyCases(t *testing.T) {
	raw, err := os.ReadFile("testdata/scipy_cases.json")
	require.NoError(t, err)
	var data struct {
		Cases []struct {
			A            []float64   `json:"a"`
			B            []float64   `json:"b"`
			UB           float64     `json:"u_b"`
			P            float64     `json:"p"`
			CliffsDelta  float64     `json:"cliffs_delta"`
			PercentilesA []float64   `json:"percentiles_a"`
			MeanA        float64     `json:"mean_a"`
			StddevA      float64     `json:"stddev_a"`
			MedianCIA    *[2]float64 `json:"median_ci_a"`
		} `json:"cases"`
		Holm []float64 `json:"holm"`
	}
	require.NoError(t, json.Unmarshal(raw, &data))
	require.Len(t, data.Cases, 100)

	ps := make([]float64, len(data.Cases))
	for i, c := range data.Cases {
		u, p := MannWhitneyU(c.B, c.A)
		if u != c.UB || !relNear(p, c.P, 1e-9) {
			t.Errorf("case %d: MannWhitneyU(b, a) = %v, %v, want %v, %v", i, u, p, c.UB, c.P)
		}
		ps[i] = p
		if d := CliffsDelta(c.A, c.B); !near(d, c.CliffsDelta, 1e-12) {
			t.Errorf("case %d: CliffsDelta(a, b) = %v, want %v", i, d, c.CliffsDelta)
		}
		s := Summarize(c.A)
		got := []float64{s.P25, s.P50, s.P75, s.P90, s.P99}
		for j := range got {
			if !near(got[j], c.PercentilesA[j], 1e-12) {
				t.Errorf("case %d: Summarize(a) percentiles = %v, want %v", i, got, c.PercentilesA)
				break
			}
		}
		if !near(s.Mean, c.MeanA, 1e-12) || !near(s.Stddev, c.StddevA, 1e-10) {
			t.Errorf("case %d: Summarize(a) mean, stddev = %v, %v, want %v, %v", i, s.Mean, s.Stddev, c.MeanA, c.StddevA)
		}
		lo, hi, ok := MedianCI(c.A, 0.95)
		switch {
		case c.MedianCIA == nil && ok:
			t.Errorf("case %d: MedianCI(a, 0.95) = %v, %v, true, want not ok (n=%d)", i, lo, hi, len(c.A))
		case c.MedianCIA != nil && (!ok || lo != c.MedianCIA[0] || hi != c.MedianCIA[1]):
			t.Errorf("case %d: MedianCI(a, 0.95) = %v, %v, %v, want %v, %v, true", i, lo, hi, ok, c.MedianCIA[0], c.MedianCIA[1])
		}
	}
	holm := HolmAdjust(ps)
	for i := range holm {
		if !relNear(holm[i], data.Holm[i], 1e-9) {
			t.Errorf("HolmAdjust(case p-values)[%d] = %v, want %v", i, holm[i], data.Holm[i])
		}
	}
}
