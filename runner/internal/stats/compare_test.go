package stats

import (
	"encoding/json"
	"math"
	"math/rand/v2"
	"slices"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// seq returns f(i) for i = from..to.
func seq(from, to int, f func(i int) float64) []float64 {
	out := make([]float64, 0, to-from+1)
	for i := from; i <= to; i++ {
		out = append(out, f(i))
	}
	return out
}

func TestMannWhitneyU(t *testing.T) {
	tests := []struct {
		name  string
		a, b  []float64
		u, p  float64
		cliff float64 // Cliff's delta of b against a
	}{
		{
			// Small, no ties: exact.
			// a = [1.1, 2.3, 3.5, 4.2, 5.9]; b = [2.8, 6.1, 7.4, 8.0, 9.3, 10.5]
			// st.mannwhitneyu(a, b, alternative='two-sided', method='auto') -> U=3.0, p=0.030303030303030304
			// np.sign(np.subtract.outer(b, a)).mean() -> 0.8
			name: "exact 5 vs 6",
			a:    []float64{1.1, 2.3, 3.5, 4.2, 5.9}, b: []float64{2.8, 6.1, 7.4, 8.0, 9.3, 10.5},
			u: 3, p: 0.030303030303030304, cliff: 0.8,
		},
		{
			// Small with ties: SciPy's auto picks the asymptotic method.
			// st.mannwhitneyu([1,2,2,3,4], [2,3,5,6,6,7]) -> U=4.5, p=0.06414661873440437
			// np.sign(np.subtract.outer([2,3,5,6,6,7], [1,2,2,3,4])).mean() -> 0.7
			name: "small with ties",
			a:    []float64{1, 2, 2, 3, 4}, b: []float64{2, 3, 5, 6, 6, 7},
			u: 4.5, p: 0.06414661873440437, cliff: 0.7,
		},
		{
			// Exact with one small and one large sample.
			// st.mannwhitneyu([10.7, 20.3, 30.1], np.arange(1, 41)*1.0 + 0.5) -> U=58.0, p=0.9464387002674013
			// (method='asymptotic' would give 0.9429921094610122)
			// np.sign(np.subtract.outer(np.arange(1, 41) + 0.5, [10.7, 20.3, 30.1])).mean() -> 0.03333333333333333
			name: "exact 3 vs 40",
			a:    []float64{10.7, 20.3, 30.1}, b: seq(1, 40, func(i int) float64 { return float64(i) + 0.5 }),
			u: 58, p: 0.9464387002674013, cliff: 0.03333333333333333,
		},
		{
			// Exact, most extreme ordering at n=8 vs 8.
			// st.mannwhitneyu([1,2,3,4,5,6,7,8.5], [8.25,9,10,11,12,13,14,15]) -> U=1.0, p=0.0003108003108003108
			// (method='asymptotic' would give 0.0013593755271592322)
			// np.sign(np.subtract.outer([8.25,9,10,11,12,13,14,15], [1,2,3,4,5,6,7,8.5])).mean() -> 0.96875
			name: "exact 8 vs 8",
			a:    []float64{1, 2, 3, 4, 5, 6, 7, 8.5}, b: []float64{8.25, 9, 10, 11, 12, 13, 14, 15},
			u: 1, p: 0.0003108003108003108, cliff: 0.96875,
		},
		{
			// st.mannwhitneyu([1,2,3], [4,5,6]) -> U=0.0, p=0.1
			name: "exact fully separated 3 vs 3",
			a:    []float64{1, 2, 3}, b: []float64{4, 5, 6},
			u: 0, p: 0.1, cliff: 1,
		},
		{
			// st.mannwhitneyu([0.5], np.arange(1, 2001)*1.0) -> U=0.0, p=0.0009995002498750624
			name: "exact 1 vs 2000",
			a:    []float64{0.5}, b: seq(1, 2000, func(i int) float64 { return float64(i) }),
			u: 0, p: 0.0009995002498750624, cliff: 1,
		},
		{
			// Large, no ties: asymptotic with continuity correction.
			// a = np.sin(np.arange(1, 31))*10 + 100; b = np.cos(np.arange(1, 26))*10 + 103
			// st.mannwhitneyu(a, b) -> U=278.0, p=0.10285915532294171
			// np.sign(np.subtract.outer(b, a)).mean() -> 0.25866666666666666
			name: "large without ties",
			a:    seq(1, 30, func(i int) float64 { return math.Sin(float64(i))*10 + 100 }),
			b:    seq(1, 25, func(i int) float64 { return math.Cos(float64(i))*10 + 103 }),
			u:    278, p: 0.10285915532294171, cliff: 0.25866666666666666,
		},
		{
			// Large with ties: tie-corrected variance.
			// a = ((np.arange(1, 31)*7) % 13).astype(float); b = ((np.arange(1, 26)*5) % 11 + 2).astype(float)
			// st.mannwhitneyu(a, b) -> U=295.5, p=0.18034274029758512
			// np.sign(np.subtract.outer(b, a)).mean() -> 0.212
			name: "large with ties",
			a:    seq(1, 30, func(i int) float64 { return float64((i * 7) % 13) }),
			b:    seq(1, 25, func(i int) float64 { return float64((i*5)%11 + 2) }),
			u:    295.5, p: 0.18034274029758512, cliff: 0.212,
		},
		{
			// st.mannwhitneyu([5.0]*10, [5.0]*12) -> U=60.0, p=1.0
			name: "all equal",
			a:    slices.Repeat([]float64{5}, 10), b: slices.Repeat([]float64{5}, 12),
			u: 60, p: 1, cliff: 0,
		},
		{name: "empty a", a: nil, b: []float64{1, 2}, u: 0, p: 1, cliff: 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			u, p := MannWhitneyU(tt.a, tt.b)
			if u != tt.u {
				t.Errorf("MannWhitneyU(%s).u = %v, want %v", tt.name, u, tt.u)
			}
			if !near(p, tt.p, 1e-10) {
				t.Errorf("MannWhitneyU(%s).p = %v, want %v", tt.name, p, tt.p)
			}
			// The test is symmetric.
			if _, p2 := MannWhitneyU(tt.b, tt.a); !near(p2, tt.p, 1e-10) {
				t.Errorf("MannWhitneyU(%s swapped).p = %v, want %v", tt.name, p2, tt.p)
			}
			if d := CliffsDelta(tt.a, tt.b); !near(d, tt.cliff, 1e-12) {
				t.Errorf("CliffsDelta(%s) = %v, want %v", tt.name, d, tt.cliff)
			}
		})
	}
}

func TestMagnitude(t *testing.T) {
	tests := []struct {
		d    float64
		want string
	}{
		{0, "negligible"}, {0.146, "negligible"}, {-0.146, "negligible"},
		{0.147, "small"}, {-0.2, "small"}, {0.329, "small"},
		{0.33, "medium"}, {-0.473, "medium"},
		{0.474, "large"}, {-1, "large"},
	}
	for _, tt := range tests {
		if got := Magnitude(tt.d); got != tt.want {
			t.Errorf("Magnitude(%v) = %q, want %q", tt.d, got, tt.want)
		}
	}
}

func TestVerdict(t *testing.T) {
	tests := []struct {
		ratio float64
		want  string
	}{
		{1.123, "+12.3%"}, {0.959, "-4.1%"}, {1.01, "+1.0%"}, {0.9958, "-0.42%"}, {1.0003, "+0.03%"}, {2.5, "+150.0%"},
	}
	for _, tt := range tests {
		if got := verdict(tt.ratio); got != tt.want {
			t.Errorf("verdict(%v) = %q, want %q", tt.ratio, got, tt.want)
		}
	}
}

func TestHolmAdjust(t *testing.T) {
	tests := []struct {
		name string
		ps   []float64
		want []float64
	}{
		{
			// from statsmodels.stats.multitest import multipletests
			// multipletests([0.01, 0.04, 0.03, 0.005, 0.2, 0.04], method='holm')[1]
			//   -> [0.05, 0.12, 0.12, 0.03, 0.2, 0.12]
			name: "six with ties",
			ps:   []float64{0.01, 0.04, 0.03, 0.005, 0.2, 0.04},
			want: []float64{0.05, 0.12, 0.12, 0.03, 0.2, 0.12},
		},
		{
			// multipletests([0.5, 0.9, 0.01], method='holm')[1] -> [1.0, 1.0, 0.03]
			name: "capped at 1",
			ps:   []float64{0.5, 0.9, 0.01},
			want: []float64{1, 1, 0.03},
		},
		{name: "one", ps: []float64{0.04}, want: []float64{0.04}},
		{name: "empty", ps: []float64{}, want: []float64{}},
		{name: "NaN counts as 1", ps: []float64{math.NaN(), 0.01}, want: []float64{1, 0.02}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := HolmAdjust(tt.ps)
			require.Len(t, got, len(tt.want), "HolmAdjust(%v)", tt.ps)
			for i := range got {
				if !near(got[i], tt.want[i], 1e-12) {
					t.Errorf("HolmAdjust(%v) = %v, want %v", tt.ps, got, tt.want)
					break
				}
			}
		})
	}
}

func TestAdjustHolm(t *testing.T) {
	// Two clear shifts and one null pair; the family of three is corrected.
	rng := rand.New(rand.NewPCG(3, 4))
	sample := func(mu float64) [][]float64 { return twoLevel(rng, 6, 10, mu, 1, 1) }
	base := sample(100)
	strong := Compare(base, sample(105), CompareOptions{Seed: 1})
	null := Compare(base, sample(100), CompareOptions{Seed: 1})
	// Borderline: significant alone at 0.05, not after tripling.
	border := Comparison{P: 0.03, PAdj: 0.03, Alpha: 0.05, HasTest: true, HasRatio: true, Ratio: 1.02, RatioLo: 1.01, RatioHi: 1.03}
	border.decide()
	require.True(t, border.Significant, "borderline comparison significant before Holm")
	require.True(t, strong.Significant, "Compare(strong shift) = %+v, want significant", strong)

	cs := []*Comparison{&strong, nil, &null, &border}
	AdjustHolm(cs)
	want := HolmAdjust([]float64{strong.P, null.P, border.P})
	for i, c := range []*Comparison{&strong, &null, &border} {
		if c.PAdj != want[i] {
			t.Errorf("AdjustHolm: comparison %d PAdj = %v, want %v", i, c.PAdj, want[i])
		}
	}
	assert.True(t, strong.Significant, "AdjustHolm: strong shift significant")
	assert.Regexp(t, `^\+\d+\.\d%$`, strong.Verdict, "AdjustHolm: strong shift verdict")
	assert.False(t, border.Significant, "AdjustHolm: borderline (p=0.03 of 3) significant")
	assert.Equal(t, "~", border.Verdict, "AdjustHolm: borderline verdict")
}

func TestCompare(t *testing.T) {
	rng := rand.New(rand.NewPCG(5, 6))
	// Launches differ by 2%, iterations by 1% around a median.
	launches := func(k int, median float64) [][]float64 {
		gs := twoLevel(rng, k, 10, 0, 0.02, 0.01)
		for _, g := range gs {
			for i := range g {
				g[i] = median * math.Exp(g[i])
			}
		}
		return gs
	}
	a := launches(8, 10)
	one := func(xs ...float64) [][]float64 {
		gs := make([][]float64, len(xs))
		for i, x := range xs {
			gs[i] = []float64{x}
		}
		return gs
	}
	tests := []struct {
		name        string
		a, b        [][]float64
		significant bool
		hasRatio    bool
		verdict     string // "" to skip
		warning     string // substring of some warning; "" to skip
		check       func(t *testing.T, c Comparison)
	}{
		{
			name: "same distribution", a: a, b: launches(8, 10), hasRatio: true, verdict: "~",
			check: func(t *testing.T, c Comparison) {
				assert.True(t, c.RatioLo <= 1 && 1 <= c.RatioHi, "Compare(same).Ratio CI = [%v, %v], want it to contain 1", c.RatioLo, c.RatioHi)
				assert.Equal(t, 8, c.LaunchesA)
				assert.Equal(t, 80, c.NA)
			},
		},
		{
			name: "10% slower", a: a, b: launches(8, 11), significant: true, hasRatio: true,
			check: func(t *testing.T, c Comparison) {
				assert.InDelta(t, 1.1, c.Ratio, 0.03, "Compare(10%% slower).Ratio")
				assert.True(t, c.RatioLo > 1 && c.RatioLo < c.Ratio && c.Ratio < c.RatioHi, "Compare(10%% slower).Ratio CI = [%v, %v] around %v", c.RatioLo, c.RatioHi, c.Ratio)
				assert.Equal(t, "large", c.Magnitude, "Compare(10%% slower).Magnitude")
				assert.Regexp(t, `^\+\d+\.\d%$`, c.Verdict, "Compare(10%% slower).Verdict")
				assert.Greater(t, c.T, 0.0, "Compare(10%% slower).T")
			},
		},
		{
			name: "5% faster", a: a, b: launches(8, 9.5), significant: true, hasRatio: true,
			check: func(t *testing.T, c Comparison) {
				assert.Regexp(t, `^-\d+\.\d%$`, c.Verdict, "Compare(5%% faster).Verdict")
				assert.True(t, c.CliffsDelta < 0, "Compare(5%% faster).CliffsDelta = %v, want < 0", c.CliffsDelta)
			},
		},
		{
			// The pooled test calls this 2-launch difference significant; the
			// launch-level test cannot, with one launch per side.
			name: "one launch each", a: [][]float64{seq(1, 50, func(i int) float64 { return 10 + 0.001*float64(i) })},
			b: [][]float64{seq(1, 50, func(i int) float64 { return 10.5 + 0.001*float64(i) })}, hasRatio: true, verdict: "~",
			warning: "needs at least 2 launches per engine",
			check: func(t *testing.T, c Comparison) {
				assert.Less(t, c.PooledP, 1e-6, "Compare(one launch each).PooledP")
				assert.False(t, c.HasTest)
				assert.Equal(t, 1.0, c.P)
			},
		},
		{
			name: "identical constant", a: [][]float64{{3, 3}, {3, 3}}, b: [][]float64{{3, 3}, {3, 3, 3}},
			hasRatio: true, verdict: "~",
			check: func(t *testing.T, c Comparison) {
				assert.Equal(t, []float64{1, 1, 1, 1}, []float64{c.Ratio, c.RatioLo, c.RatioHi, c.P}, "Compare(constant) ratio, CI, p")
			},
		},
		{name: "empty a", a: nil, b: a, verdict: "~", warning: "nothing to compare"},
		{name: "empty b", a: a, b: [][]float64{{math.NaN()}}, verdict: "~", warning: "B: 1 non-finite"},
		{name: "zero estimate a", a: one(0, 0, 0), b: one(5, 6, 7), verdict: "~", warning: "estimate of A is 0: ratio undefined"},
		{
			name: "zero estimate in some resamples", a: one(0, 1, 1, 1, 1), b: one(1, 1, 1, 1, 1), hasRatio: true,
			warning: "raw scale",
		},
		{name: "3 vs 3 launches", a: one(1, 1.1, 0.9), b: one(3, 3.1, 2.9), significant: true, hasRatio: true, warning: "narrower than its nominal level"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := Compare(tt.a, tt.b, CompareOptions{Seed: 42})
			assert.Equal(t, tt.significant, c.Significant, "Compare(%s).Significant (%+v)", tt.name, c)
			assert.Equal(t, tt.hasRatio, c.HasRatio, "Compare(%s).HasRatio (%+v)", tt.name, c)
			assert.Equal(t, c.P, c.PAdj, "Compare(%s).PAdj before AdjustHolm", tt.name)
			if tt.verdict != "" {
				assert.Equal(t, tt.verdict, c.Verdict, "Compare(%s).Verdict", tt.name)
			}
			if tt.warning != "" && !hasWarning(c.Warnings, tt.warning) {
				t.Errorf("Compare(%s).Warnings = %q, want one containing %q", tt.name, c.Warnings, tt.warning)
			}
			if tt.check != nil {
				tt.check(t, c)
			}
			_, err := json.Marshal(c)
			require.NoError(t, err, "json.Marshal(Compare(%s))", tt.name)
		})
	}
}

// TestCompareLaunchLevelP pins the launch-level p-value: Welch's test on the
// logs of the launch medians, as scipy.stats.ttest_ind(np.log([3, 3.3, 2.8]),
// np.log([1, 1.2, 0.9]), equal_var=False) = t 10.18455..., p 0.000596...
func TestCompareLaunchLevelP(t *testing.T) {
	a := [][]float64{{0.5, 1, 7}, {1.2}, {0.9, 0.9}}
	b := [][]float64{{3}, {3.3, 3.3}, {2.7, 2.8, 2.9}}
	c := Compare(a, b, CompareOptions{Seed: 1})
	w, ok := WelchT(logs([]float64{1, 1.2, 0.9}), logs([]float64{3, 3.3, 2.8}), 0.05)
	require.True(t, ok)
	assert.Equal(t, w.P, c.P, "Compare.P is Welch on log launch medians")
	assert.Equal(t, w.T, c.T)
	assert.InDelta(t, math.Cbrt(3*3.3*2.8)/math.Cbrt(1*1.2*0.9), c.Ratio, 1e-12, "Compare.Ratio of geometric means of launch medians")
	assert.InDelta(t, math.Exp(w.Diff), c.Ratio, 1e-12, "Compare.Ratio is the ratio the test is about")
}

func TestCompareDeterministic(t *testing.T) {
	rng := rand.New(rand.NewPCG(7, 8))
	a := twoLevel(rng, 5, 30, 20, 0.5, 1)
	b := twoLevel(rng, 5, 30, 20.3, 0.5, 1)
	c1 := Compare(a, b, CompareOptions{Seed: 9})
	c2 := Compare(a, b, CompareOptions{Seed: 9})
	assert.Equal(t, c1, c2, "Compare(a, b, seed 9) twice")
	c3 := Compare(a, b, CompareOptions{Seed: 10})
	assert.NotEqual(t, [2]float64{c1.RatioLo, c1.RatioHi}, [2]float64{c3.RatioLo, c3.RatioHi}, "Compare CI with seeds 9 and 10")
	assert.Equal(t, c1.P, c3.P, "Compare p-value does not depend on the seed")
}

// TestCompareCoverage checks the hierarchical bootstrap CI of the ratio over
// many null pairs with 8 launches per side: with A and B from one two-level
// distribution the 95% CI should contain 1 in roughly 95% of pairs (the
// percentile bootstrap is a little liberal at few launches, so the band is
// wide), and the launch-level test rejects at about its level.
func TestCompareCoverage(t *testing.T) {
	rng := rand.New(rand.NewPCG(11, 12))
	const pairs = 300
	covered, rejected := 0, 0
	for i := range pairs {
		a := twoLevel(rng, 8, 10, 5, 0.2, 0.1)
		b := twoLevel(rng, 8, 10, 5, 0.2, 0.1)
		c := Compare(a, b, CompareOptions{Seed: uint64(i), Resamples: 2000})
		if c.RatioLo <= 1 && 1 <= c.RatioHi {
			covered++
		}
		if c.P < 0.05 {
			rejected++
		}
	}
	if covered < 255 {
		t.Errorf("Compare over %d null pairs: ratio CI contains 1 in %d, want >= 255", pairs, covered)
	}
	if rejected > 25 {
		t.Errorf("Compare over %d null pairs: p < 0.05 in %d, want <= 25", pairs, rejected)
	}
}

// TestBootMedianDistribution checks the shortcut bootstrap against the exact
// bootstrap distribution of the median.
func TestBootMedianDistribution(t *testing.T) {
	tests := []struct {
		name string
		s    []float64
		want map[float64]float64 // median value -> probability
	}{
		{
			// Odd n: P(median* = x_(j)) = P(Bin(7, j/7) >= 4) - P(Bin(7, (j-1)/7) >= 4):
			// [st.binom.sf(3, 7, j/7) - st.binom.sf(3, 7, (j-1)/7) for j in range(1, 8)]
			name: "n=7",
			s:    []float64{1, 2, 3, 4, 5, 6, 7},
			want: map[float64]float64{
				1: 0.010150046809941922, 2: 0.09812359524639269, 3: 0.2386262769521445, 4: 0.3062001619830416,
				5: 0.23862627695214467, 6: 0.09812359524639269, 7: 0.010150046809941915,
			},
		},
		{
			// Even n, by enumerating all 6**6 resamples:
			// s = np.array([1., 2, 4, 8, 16, 32]); idx = np.array(list(itertools.product(range(6), repeat=6)))
			// collections.Counter(np.median(s[idx], axis=1).tolist()), each count / 6**6
			name: "n=6",
			s:    []float64{1, 2, 4, 8, 16, 32},
			want: map[float64]float64{
				1: 0.0087019890260631, 1.5: 0.02614883401920439, 2: 0.06528635116598079, 2.5: 0.01586076817558299,
				3: 0.11102537722908093, 4: 0.11672668038408779, 4.5: 0.008144718792866941, 5: 0.05701303155006859,
				6: 0.15474965706447188, 8: 0.11672668038408779, 8.5: 0.0030006858710562414, 9: 0.02100480109739369,
				10: 0.05701303155006859, 12: 0.11102537722908093, 16: 0.06528635116598079, 16.5: 0.0004286694101508916,
				17: 0.0030006858710562414, 18: 0.008144718792866941, 20: 0.01586076817558299, 24: 0.02614883401920439,
				32: 0.0087019890260631,
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			const draws = 400000
			b := bootMedian{tt.s, rand.New(rand.NewPCG(13, 14))}
			counts := map[float64]int{}
			for range draws {
				counts[b.next()]++
			}
			for v, c := range counts {
				if _, ok := tt.want[v]; !ok {
					t.Errorf("bootMedian(%v) drew %v (%d times), which no resample has as median", tt.s, v, c)
				}
			}
			for v, p := range tt.want {
				got := float64(counts[v]) / draws
				// 5 standard errors of a frequency over 400k draws.
				if tol := 5 * math.Sqrt(p*(1-p)/draws); math.Abs(got-p) > tol {
					t.Errorf("bootMedian(%v): P(median = %v) = %v, want %v ± %.4f", tt.s, v, got, p, tol)
				}
			}
		})
	}
}

func BenchmarkCompare10k(b *testing.B) {
	rng := rand.New(rand.NewPCG(15, 16))
	x := twoLevel(rng, 100, 100, 20, 1, 1)
	y := twoLevel(rng, 100, 100, 20.1, 1, 1)
	for b.Loop() {
		Compare(x, y, CompareOptions{})
	}
}

func BenchmarkSummarize10k(b *testing.B) {
	rng := rand.New(rand.NewPCG(17, 18))
	x := seq(1, 10000, func(int) float64 { return 20 + rng.ExpFloat64() })
	for b.Loop() {
		Summarize(x)
	}
}
