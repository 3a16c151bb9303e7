package stats

import (
	"encoding/json"
	"math"
	"math/rand/v2"
	"os"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// twoLevel draws k launches of n iterations: launch effects ~ N(0, sb²),
// iteration noise ~ N(0, sw²), around mu.
func twoLevel(rng *rand.Rand, k, n int, mu, sb, sw float64) [][]float64 {
	gs := make([][]float64, k)
	for i := range gs {
		l := mu + sb*rng.NormFloat64()
		gs[i] = seq(1, n, func(int) float64 { return l + sw*rng.NormFloat64() })
	}
	return gs
}

// TestWelchScipy checks WelchT and StudentTQuantile against SciPy;
// testdata/welch_cases.py generates the cases.
func TestWelchScipy(t *testing.T) {
	raw, err := os.ReadFile("testdata/welch_cases.json")
	require.NoError(t, err)
	var data struct {
		Cases []struct {
			A, B             []float64
			T, DF, P, Lo, Hi float64
		} `json:"cases"`
		Quantiles []struct{ Q, DF, X float64 } `json:"quantiles"`
	}
	require.NoError(t, json.Unmarshal(raw, &data))
	require.Len(t, data.Cases, 60)
	for i, c := range data.Cases {
		w, ok := WelchT(c.A, c.B, 0.05)
		require.True(t, ok, "case %d: WelchT ok", i)
		if !relNear(w.T, c.T, 1e-9) || !relNear(w.DF, c.DF, 1e-9) || !relNear(w.P, c.P, 1e-8) {
			t.Errorf("case %d: WelchT(a, b) = t %v df %v p %v, want %v %v %v", i, w.T, w.DF, w.P, c.T, c.DF, c.P)
		}
		if !near(w.Lo, c.Lo, 1e-9) || !near(w.Hi, c.Hi, 1e-9) {
			t.Errorf("case %d: WelchT(a, b) CI = [%v, %v], want [%v, %v]", i, w.Lo, w.Hi, c.Lo, c.Hi)
		}
	}
	for _, q := range data.Quantiles {
		if got := StudentTQuantile(q.Q, q.DF); !relNear(got, q.X, 1e-9) {
			t.Errorf("StudentTQuantile(%v, %v) = %v, want %v", q.Q, q.DF, got, q.X)
		}
		if got := StudentTQuantile(1-q.Q, q.DF); !relNear(got, -q.X, 1e-9) {
			t.Errorf("StudentTQuantile(%v, %v) = %v, want %v", 1-q.Q, q.DF, got, -q.X)
		}
	}
}

func TestWelchEdgeCases(t *testing.T) {
	tests := []struct {
		name  string
		a, b  []float64
		ok    bool
		wantP float64
	}{
		{name: "one launch", a: []float64{1}, b: []float64{1, 2}},
		{name: "constant equal", a: []float64{2, 2}, b: []float64{2, 2, 2}, ok: true, wantP: 1},
		{name: "constant different", a: []float64{2, 2}, b: []float64{3, 3}, ok: true, wantP: 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			w, ok := WelchT(tt.a, tt.b, 0.05)
			assert.Equal(t, tt.ok, ok, "WelchT(%v, %v) ok", tt.a, tt.b)
			if ok {
				assert.Equal(t, tt.wantP, w.P, "WelchT(%v, %v).P", tt.a, tt.b)
				_, err := json.Marshal(w)
				require.NoError(t, err)
			}
		})
	}
}

func TestEstimateLaunches(t *testing.T) {
	// Launch medians 10, 12, 14. On the log scale (scipy):
	//   x = np.log([10, 12, 14]); m, s = x.mean(), x.std(ddof=1)
	//   h = scipy.stats.t.ppf(0.975, 2) * s / np.sqrt(3)
	//   np.exp([m, m - h, m + h]) -> [11.88784..., 7.82330..., 18.06409...]
	gs := [][]float64{{9, 10, 11}, {12, 12, 100}, {14, math.NaN(), 13, 15}, {}}
	e := EstimateLaunches(gs)
	assert.Equal(t, 3, e.Launches, "EstimateLaunches: launches")
	assert.Equal(t, []float64{10, 12, 14}, e.Medians, "EstimateLaunches: medians")
	assert.True(t, e.Geometric)
	assert.InDelta(t, 11.887843905526262, e.Mean, 1e-9)
	assert.True(t, e.HasCI)
	assert.InDelta(t, 7.823301891821457, e.Lo, 1e-9)
	assert.InDelta(t, 18.064090415569392, e.Hi, 1e-9)
	assert.InDelta(t, (e.Hi-e.Lo)/2/e.Mean, e.RelHalfWidth, 1e-12)
	// A non-positive median: the arithmetic mean and a t-interval around it,
	// t(0.975, 2) = 4.302652729749462.
	ar := EstimateLaunches([][]float64{{-1}, {1}, {3}})
	assert.False(t, ar.Geometric)
	assert.InDelta(t, 1, ar.Mean, 1e-12)
	assert.InDelta(t, 1-4.302652729749462*2/math.Sqrt(3), ar.Lo, 1e-9)
	one := EstimateLaunches([][]float64{{1, 2, 3}})
	assert.False(t, one.HasCI, "EstimateLaunches(one launch).HasCI")
	assert.InDelta(t, 2.0, one.Mean, 1e-12)
	none := EstimateLaunches(nil)
	assert.Equal(t, 0, none.Launches)
	_, err := json.Marshal(none)
	require.NoError(t, err)
}

// TestCliffsThresholds checks that Cliff's delta and its magnitude do not
// depend on the sign at the exact thresholds: samples of 40 and 50 with
// U = 2000·(1±d)/2 give d exactly.
func TestCliffsThresholds(t *testing.T) {
	b := seq(0, 49, func(i int) float64 { return float64(i) })
	withU := func(u int) []float64 { // 40 values, u pairs above b
		a := make([]float64, 40)
		for i := range a {
			k := u / 40
			if i < u%40 {
				k++
			}
			a[i] = float64(k) - 0.5 // above exactly k values of b
		}
		return a
	}
	for _, tt := range []struct {
		d    float64
		want string
	}{{0.147, "small"}, {0.33, "medium"}, {0.474, "large"}} {
		for _, sign := range []float64{1, -1} {
			d := sign * tt.d
			u := int(math.Round(2000 * (1 + d) / 2))
			got := CliffsDelta(b, withU(u)) // δ of the second sample against the first
			if got != d {
				t.Errorf("CliffsDelta with U=%d of 40×50 = %v, want exactly %v", u, got, d)
			}
			if m := Magnitude(got); m != tt.want {
				t.Errorf("Magnitude(%v) = %q, want %q", got, m, tt.want)
			}
		}
	}
}

func TestPlanLaunches(t *testing.T) {
	tests := []struct {
		name          string
		v             Variance
		launchCost    float64
		ok            bool
		iters, launch int
		note          string
	}{
		// n* = sqrt(10/0.1 · 1/4) = 5; half-width for k launches:
		// t(0.975,k-1)·sqrt((4 + π/2·1/5)/k) <= 0.02·100 = 2 → k = 8
		// (k=7: 2.447·sqrt(4.314/7) = 1.921... checked below by the loop).
		{name: "launch dominated", v: Variance{Launches: 3, BetweenLaunch: 4, WithinLaunch: 1}, launchCost: 10, ok: true, iters: 5},
		{name: "no launch effect", v: Variance{Launches: 3, BetweenLaunch: 0, WithinLaunch: 100}, launchCost: 10, ok: true, launch: 3, note: "iterations are the cheaper"},
		{name: "one launch", v: Variance{Launches: 1, WithinLaunch: 1}, launchCost: 10},
		{name: "no cost", v: Variance{Launches: 3, BetweenLaunch: 1, WithinLaunch: 1}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d, ok := PlanLaunches(tt.v, 100, tt.launchCost, 0.1, 0.02)
			require.Equal(t, tt.ok, ok, "PlanLaunches(%+v) ok", tt.v)
			if !ok {
				return
			}
			if tt.iters > 0 {
				assert.Equal(t, tt.iters, d.Iterations, "PlanLaunches(%s).Iterations", tt.name)
			}
			if tt.launch > 0 {
				assert.Equal(t, tt.launch, d.Launches, "PlanLaunches(%s).Launches", tt.name)
			}
			if tt.note != "" {
				assert.Contains(t, d.Note, tt.note)
			}
			// The plan meets the target, and one launch fewer does not.
			assert.LessOrEqual(t, halfWidth(d.Launches, tt.v.BetweenLaunch, tt.v.WithinLaunch, d.Iterations), 2.0)
			if tt.v.BetweenLaunch > 0 && d.Launches > 2 {
				assert.Greater(t, halfWidth(d.Launches-1, tt.v.BetweenLaunch, tt.v.WithinLaunch, d.Iterations), 2.0)
			}
			assert.InDelta(t, float64(d.Launches)*(tt.launchCost+float64(d.Iterations)*0.1), d.EstimatedS, 1e-9)
		})
	}
}

func TestMinDetectable(t *testing.T) {
	assert.True(t, math.IsInf(MinDetectable(1, 0.05), 1), "MinDetectable(1 launch)")
	prev := math.Inf(1)
	for k := 2; k <= 20; k++ {
		m := MinDetectable(k, 0.05)
		assert.Less(t, m, prev, "MinDetectable(%d) decreases with launches", k)
		prev = m
	}
	// (t(0.975, 8) + t(0.8, 8))·sqrt(2/5) = (2.306004135204166 + 0.8888895177670202)·sqrt(0.4)
	assert.InDelta(t, (2.306004135204166+0.8888895177670202)*math.Sqrt(0.4), MinDetectable(5, 0.05), 1e-6)
	k := LaunchesFor(2, 0.05)
	assert.LessOrEqual(t, MinDetectable(k, 0.05), 2.0)
	assert.Greater(t, MinDetectable(k-1, 0.05), 2.0)
	assert.Contains(t, DesignAdvice(1, 4, 0.05), "no launch-level test is possible")
	assert.Contains(t, DesignAdvice(3, 4, 0.05), "launches per engine would detect")
	assert.Equal(t, "", DesignAdvice(20, 1, 0.05))
}
