package stats

import (
	"math"
	"math/rand/v2"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestTOSTPinned: TOST on log launch medians against statsmodels 0.15.0 (scipy 1.17.1),
// ttost_ind(log b, log a, -ln(1+m), ln(1+m), usevar="unequal")[0].
func TestTOSTPinned(t *testing.T) {
	for _, tt := range []struct {
		name string
		a, b []float64
		m, p float64
	}{
		{"close", []float64{1.227, 1.421, 1.449, 1.31}, []float64{1.25, 1.4, 1.43, 1.33, 1.29}, 0.02, 0.4013664983142849},
		{"close", []float64{1.227, 1.421, 1.449, 1.31}, []float64{1.25, 1.4, 1.43, 1.33, 1.29}, 0.05, 0.2044139472627601},
		{"close", []float64{1.227, 1.421, 1.449, 1.31}, []float64{1.25, 1.4, 1.43, 1.33, 1.29}, 0.1, 0.055109902982481605},
		{"apart", []float64{10.0, 10.2, 9.9, 10.1}, []float64{10.9, 11.1, 11.0, 10.8}, 0.02, 0.9998567622137644},
		{"apart", []float64{10.0, 10.2, 9.9, 10.1}, []float64{10.9, 11.1, 11.0, 10.8}, 0.05, 0.9972418781788763},
		{"apart", []float64{10.0, 10.2, 9.9, 10.1}, []float64{10.9, 11.1, 11.0, 10.8}, 0.1, 0.15821186111732163},
		{"aa-tight", []float64{5.0, 5.01, 4.99, 5.02, 5.0}, []float64{5.01, 5.0, 5.02, 4.99, 5.01}, 0.02, 4.431094617695744e-07},
		{"aa-tight", []float64{5.0, 5.01, 4.99, 5.02, 5.0}, []float64{5.01, 5.0, 5.02, 4.99, 5.01}, 0.05, 3.371667242514477e-10},
		{"aa-tight", []float64{5.0, 5.01, 4.99, 5.02, 5.0}, []float64{5.01, 5.0, 5.02, 4.99, 5.01}, 0.1, 1.5688557103874579e-12},
		{"two-each", []float64{18.7, 24.2}, []float64{19.1, 23.0}, 0.02, 0.48909997817368067},
		{"two-each", []float64{18.7, 24.2}, []float64{19.1, 23.0}, 0.05, 0.4261895919725418},
		{"two-each", []float64{18.7, 24.2}, []float64{19.1, 23.0}, 0.1, 0.3336342695768886},
	} {
		p, ok := TOST(logs(tt.a), logs(tt.b), math.Log1p(tt.m))
		require.True(t, ok)
		assert.InDelta(t, tt.p, p, 1e-9*math.Max(1, tt.p*1e3), "%s ±%g", tt.name, tt.m)
		if tt.p < 1e-6 {
			assert.InEpsilon(t, tt.p, p, 1e-6, "%s ±%g: relative", tt.name, tt.m)
		}
	}
	_, ok := TOST([]float64{1}, []float64{1, 2}, 0.1)
	assert.False(t, ok, "one value a side")
	_, ok = TOST([]float64{1, 2}, []float64{1, 2}, 0)
	assert.False(t, ok, "no margin")
	p, ok := TOST([]float64{1, 1}, []float64{1.01, 1.01}, 0.02)
	assert.True(t, ok)
	assert.Equal(t, 0.0, p, "no variance, inside the bounds")
}

// TestEquivalenceCalibration runs simulated launches with known truth through Compare: launch medians spread by a
// launch effect (ICC near 1, as on the H200), a few iterations each. At a true ratio on the margin's edge the test
// may call them equivalent at most alpha of the time (plus Monte Carlo slack); at a true ratio of 1 with launches
// enough for the spread it calls them equivalent nearly always; and far outside the margin, never.
func TestEquivalenceCalibration(t *testing.T) {
	const (
		sims   = 400
		margin = 0.03
		launch = 0.015 // launch-to-launch SD on the log scale
		iter   = 0.002 // within a launch
	)
	rng := rand.New(rand.NewPCG(21, 22))
	groups := func(k int, center float64) [][]float64 {
		out := make([][]float64, k)
		for i := range out {
			m := center * math.Exp(rng.NormFloat64()*launch)
			for range 3 {
				out[i] = append(out[i], m*math.Exp(rng.NormFloat64()*iter))
			}
		}
		return out
	}
	rate := func(truth float64, k int) float64 {
		n := 0
		for range sims {
			c := Compare(groups(k, 10), groups(k, 10*truth), CompareOptions{Resamples: 2000, Seed: 1, Margin: margin})
			require.NotNil(t, c.Equivalence)
			if c.Equivalence.Equivalent {
				n++
			}
		}
		return float64(n) / sims
	}
	// The edge: ratio 1+m (upper bound) and 1/(1+m) (lower bound). Binomial SD at 5% over 400 is 1.1%.
	up, down, power, far := rate(1+margin, 6), rate(1/(1+margin), 6), rate(1, 10), rate(1.10, 6)
	t.Logf("equivalent within ±%g: %.3f at the upper edge, %.3f at the lower, %.3f at 1 (10 launches), %.3f at 1.10", margin, up, down, power, far)
	assert.LessOrEqual(t, up, 0.05+0.03, "false equivalence at the upper edge")
	assert.LessOrEqual(t, down, 0.05+0.03, "false equivalence at the lower edge")
	assert.GreaterOrEqual(t, power, 0.95, "power at a true ratio of 1, 10 launches a side")
	assert.Equal(t, 0.0, far, "a 10% difference is never within ±3%")
}

// TestTOSTOneCard: a run over one card blocks nothing, so the card-blocked contrast's TOST (TOSTEstimate on
// CompareStrata's Diff, SE and DF) equals the plain Welch TOST pinned above.
func TestTOSTOneCard(t *testing.T) {
	a := [][]float64{{1.227}, {1.421}, {1.449}, {1.31}}
	b := [][]float64{{1.25}, {1.4}, {1.43}, {1.33}, {1.29}}
	st := CompareStrata([]Stratum{{A: a, B: b}}, 0.05)
	require.True(t, st.HasTest)
	assert.InDelta(t, 0.2044139472627601, TOSTEstimate(st.Diff, st.SE, st.DF, math.Log1p(0.05)), 1e-9, "statsmodels ttost_ind, as in TestTOSTPinned")
}
