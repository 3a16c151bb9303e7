package stats

import (
	"encoding/json"
	"math"
	"math/rand/v2"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// Pinned values below come from Python 3 with numpy 2.4.6, scipy 1.17.1 and
// statsmodels 0.15.0, after `import numpy as np, scipy.stats as st`. Every
// percentile is NumPy's default (linear, Hyndman & Fan type 7).

// near reports whether got is within a relative (or, near 0, absolute)
// tolerance tol of want.
func near(got, want, tol float64) bool {
	return math.Abs(got-want) <= tol*math.Max(1, math.Abs(want))
}

// hasWarning reports whether some warning contains sub.
func hasWarning(ws []string, sub string) bool {
	for _, w := range ws {
		if strings.Contains(w, sub) {
			return true
		}
	}
	return false
}

var (
	// x has one extreme high outlier.
	sampleX = []float64{12.1, 11.8, 12.5, 13.0, 12.2, 11.9, 12.7, 12.4, 30.0, 12.0, 12.3}
	// y has an even length and one extreme high outlier.
	sampleY = []float64{5.0, 1.0, 4.0, 2.0, 3.0, 100.0, 6.0, 7.0, 8.0, 9.0}
)

func TestSummarizePinned(t *testing.T) {
	type want struct {
		mean, stddev, min, max, p25, median, p75, p90, p99, mad, lo, hi float64
		outliers                                                        Outliers
	}
	tests := []struct {
		name string
		xs   []float64
		want want
	}{
		{
			name: "x odd n=11",
			xs:   sampleX,
			// x = np.array([12.1, 11.8, 12.5, 13.0, 12.2, 11.9, 12.7, 12.4, 30.0, 12.0, 12.3])
			// x.mean(), x.std(ddof=1), x.min(), x.max()
			//   -> 13.9 5.35144840206836 11.8 30.0
			// np.percentile(x, [25, 50, 75, 90, 99])
			//   -> 12.05 12.3 12.6 13.0 28.300000000000004
			// st.median_abs_deviation(x) -> 0.3000000000000007
			// st.quantile_test(x, q=np.median(x), p=0.5).confidence_interval(0.95) -> (11.9, 13.0)
			// q1, q3 = np.percentile(x, [25, 75]); iqr = q3 - q1
			// (x < q1-3*iqr).sum(), ((x >= q1-3*iqr) & (x < q1-1.5*iqr)).sum(),
			// ((x > q3+1.5*iqr) & (x <= q3+3*iqr)).sum(), (x > q3+3*iqr).sum() -> 0 0 0 1
			// m = np.median(x); (0.6745*abs(x-m)/np.median(abs(x-m)) > 3.5).sum() -> 1
			want: want{
				mean: 13.9, stddev: 5.35144840206836, min: 11.8, max: 30.0,
				p25: 12.05, median: 12.3, p75: 12.6, p90: 13.0, p99: 28.300000000000004,
				mad: 0.3000000000000007, lo: 11.9, hi: 13.0,
				outliers: Outliers{HighExtreme: 1, MAD: 1},
			},
		},
		{
			name: "y even n=10",
			xs:   sampleY,
			// y = np.array([5.0, 1.0, 4.0, 2.0, 3.0, 100.0, 6.0, 7.0, 8.0, 9.0])
			// y.mean(), y.std(ddof=1) -> 14.5 30.152390728873666
			// np.percentile(y, [25, 50, 75, 90, 99])
			//   -> 3.25 5.5 7.75 18.099999999999966 91.81000000000002
			// st.median_abs_deviation(y) -> 2.5
			// st.quantile_test(y, q=np.median(y), p=0.5).confidence_interval(0.95) -> (2.0, 9.0)
			// Tukey counts as for x -> 0 0 0 1; MAD rule as for x -> 1
			want: want{
				mean: 14.5, stddev: 30.152390728873666, min: 1, max: 100,
				p25: 3.25, median: 5.5, p75: 7.75, p90: 18.099999999999966, p99: 91.81000000000002,
				mad: 2.5, lo: 2, hi: 9,
				outliers: Outliers{HighExtreme: 1, MAD: 1},
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := Summarize(tt.xs)
			w := tt.want
			checks := []struct {
				field     string
				got, want float64
			}{
				{"Mean", s.Mean, w.mean}, {"Stddev", s.Stddev, w.stddev},
				{"Min", s.Min, w.min}, {"Max", s.Max, w.max},
				{"P25", s.P25, w.p25}, {"Median", s.Median, w.median}, {"P50", s.P50, w.median},
				{"P75", s.P75, w.p75}, {"P90", s.P90, w.p90}, {"P99", s.P99, w.p99},
				{"MAD", s.MAD, w.mad}, {"MedianLo", s.MedianLo, w.lo}, {"MedianHi", s.MedianHi, w.hi},
				{"CIHalfWidthRel", s.CIHalfWidthRel, (w.hi - w.lo) / 2 / w.median},
			}
			for _, c := range checks {
				if !near(c.got, c.want, 1e-12) {
					t.Errorf("Summarize(%s).%s = %v, want %v", tt.name, c.field, c.got, c.want)
				}
			}
			assert.Equal(t, len(tt.xs), s.N, "Summarize(%s).N", tt.name)
			assert.True(t, s.HasCI, "Summarize(%s).HasCI", tt.name)
			assert.Equal(t, w.outliers, s.Outliers, "Summarize(%s).Outliers", tt.name)
			assert.True(t, hasWarning(s.Warnings, "1 beyond 3 IQR)"), "Summarize(%s).Warnings = %q, want an extreme outlier warning", tt.name, s.Warnings)
		})
	}
}

func TestSummarizeEdgeCases(t *testing.T) {
	tests := []struct {
		name      string
		xs        []float64
		n         int
		nonFinite int
		median    float64
		hasCI     bool
		warning   string // substring of some warning; "" for none expected
	}{
		{name: "nil", xs: nil, warning: "no samples"},
		{name: "empty", xs: []float64{}, warning: "no samples"},
		{name: "n=1", xs: []float64{4.2}, n: 1, median: 4.2, warning: "n=1 < 6: median CI not available"},
		{name: "n=3", xs: []float64{3, 1, 2}, n: 3, median: 2, warning: "n=3 < 6: median CI not available"},
		{name: "n=5", xs: []float64{3, 1, 2, 5, 4}, n: 5, median: 3, warning: "n=5 < 6"},
		{name: "n=6", xs: []float64{3, 1, 2, 5, 4, 6}, n: 6, median: 3.5, hasCI: true},
		{name: "all equal", xs: []float64{7, 7, 7, 7, 7, 7, 7, 7}, n: 8, median: 7, hasCI: true},
		{name: "all zero", xs: []float64{0, 0, 0, 0, 0, 0, 0}, n: 7, hasCI: true},
		{name: "zero median with spread", xs: []float64{-2, -1, 0, 0, 0, 1, 2}, n: 7, hasCI: true, warning: "median is 0"},
		{name: "only NaN", xs: []float64{math.NaN(), math.NaN()}, nonFinite: 2, warning: "2 non-finite values"},
		{
			name: "NaN and Inf excluded",
			xs:   []float64{1, math.NaN(), 2, math.Inf(1), 3, math.Inf(-1), 4, 5, 6},
			n:    6, nonFinite: 3, median: 3.5, hasCI: true, warning: "3 non-finite values (NaN/Inf) excluded",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := Summarize(tt.xs)
			assert.Equal(t, tt.n, s.N, "Summarize(%v).N", tt.xs)
			assert.Equal(t, tt.nonFinite, s.NonFinite, "Summarize(%v).NonFinite", tt.xs)
			assert.Equal(t, tt.hasCI, s.HasCI, "Summarize(%v).HasCI", tt.xs)
			if s.Median != tt.median {
				t.Errorf("Summarize(%v).Median = %v, want %v", tt.xs, s.Median, tt.median)
			}
			if tt.warning != "" && !hasWarning(s.Warnings, tt.warning) {
				t.Errorf("Summarize(%v).Warnings = %q, want one containing %q", tt.xs, s.Warnings, tt.warning)
			}
			if tt.warning == "" && len(s.Warnings) > 0 {
				t.Errorf("Summarize(%v).Warnings = %q, want none", tt.xs, s.Warnings)
			}
			_, err := json.Marshal(s)
			require.NoError(t, err, "json.Marshal(Summarize(%v))", tt.xs)
		})
	}
}

func TestMedianCIRanks(t *testing.T) {
	// For each n: bd = st.binom(n, 0.5)
	//   lo, hi = int(bd.ppf(0.025)), int(bd.isf(0.025)) + 1   (1-based ranks, as quantile_test's CI)
	// and independently l = max(k for k in range(1, n+1) if st.binom.cdf(k-1, n, 0.5) <= 0.025), u = n-l+1.
	// Both give the same ranks:
	tests := []struct {
		n      int
		conf   float64
		lo, hi int
		ok     bool
	}{
		{n: 5, conf: 0.95},
		{n: 6, conf: 0.95, lo: 1, hi: 6, ok: true},
		{n: 7, conf: 0.95, lo: 1, hi: 7, ok: true},
		{n: 8, conf: 0.95, lo: 1, hi: 8, ok: true},
		{n: 10, conf: 0.95, lo: 2, hi: 9, ok: true},
		{n: 20, conf: 0.95, lo: 6, hi: 15, ok: true},
		{n: 50, conf: 0.95, lo: 18, hi: 33, ok: true},
		{n: 100, conf: 0.95, lo: 40, hi: 61, ok: true},
		{n: 1000, conf: 0.95, lo: 469, hi: 532, ok: true},
		{n: 10001, conf: 0.95, lo: 4902, hi: 5100, ok: true},
		// n=30; bd = st.binom(n, .5); a2 = (1-conf)/2; int(bd.ppf(a2)), int(bd.isf(a2))+1
		{n: 30, conf: 0.90, lo: 11, hi: 20, ok: true},
		{n: 30, conf: 0.99, lo: 8, hi: 23, ok: true},
		{n: 0, conf: 0.95},
		{n: 100, conf: 1},
		{n: 100, conf: 0},
		{n: 100, conf: math.NaN()},
	}
	for _, tt := range tests {
		lo, hi, ok := MedianCIRanks(tt.n, tt.conf)
		if lo != tt.lo || hi != tt.hi || ok != tt.ok {
			t.Errorf("MedianCIRanks(%d, %v) = %d, %d, %v, want %d, %d, %v", tt.n, tt.conf, lo, hi, ok, tt.lo, tt.hi, tt.ok)
		}
	}
}

func TestMedianCI(t *testing.T) {
	tests := []struct {
		name   string
		xs     []float64
		conf   float64
		lo, hi float64
		ok     bool
	}{
		// st.quantile_test(x, q=np.median(x), p=0.5).confidence_interval(0.95) -> (11.9, 13.0)
		{name: "x", xs: sampleX, conf: 0.95, lo: 11.9, hi: 13.0, ok: true},
		// same for y -> (2.0, 9.0)
		{name: "y", xs: sampleY, conf: 0.95, lo: 2, hi: 9, ok: true},
		// NaN is ignored, leaving sampleY.
		{name: "y with NaN", xs: append([]float64{math.NaN()}, sampleY...), conf: 0.95, lo: 2, hi: 9, ok: true},
		{name: "too few", xs: []float64{1, 2, 3, 4, 5}, conf: 0.95},
		{name: "bad conf", xs: sampleY, conf: 1.5},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			lo, hi, ok := MedianCI(tt.xs, tt.conf)
			if lo != tt.lo || hi != tt.hi || ok != tt.ok {
				t.Errorf("MedianCI(%s, %v) = %v, %v, %v, want %v, %v, %v", tt.name, tt.conf, lo, hi, ok, tt.lo, tt.hi, tt.ok)
			}
		})
	}
}

func TestOutlierClasses(t *testing.T) {
	// Counts pinned with numpy, for each extra:
	// d = np.array(list(range(20)) + extra, float); q1, q3 = np.percentile(d, [25, 75]); iqr = q3 - q1
	// m = np.median(d); mad = np.median(abs(d - m))
	// ((d < q1-3*iqr).sum(), ((d >= q1-3*iqr) & (d < q1-1.5*iqr)).sum(),
	//  ((d > q3+1.5*iqr) & (d <= q3+3*iqr)).sum(), (d > q3+3*iqr).sum(), (0.6745*abs(d-m)/mad > 3.5).sum())
	// -> [] 0 0 0 0 0; [-12] 0 1 0 0 0; [35] 0 0 1 0 0; [-60] 1 0 0 0 1; [80, 90] 0 0 0 2 2
	base := make([]float64, 20)
	for i := range base {
		base[i] = float64(i)
	}
	tests := []struct {
		name  string
		extra []float64
		want  Outliers
	}{
		{name: "none", want: Outliers{}},
		{name: "low mild", extra: []float64{-12}, want: Outliers{LowMild: 1}},
		{name: "high mild", extra: []float64{35}, want: Outliers{HighMild: 1}},
		{name: "low extreme", extra: []float64{-60}, want: Outliers{LowExtreme: 1, MAD: 1}},
		{name: "high extreme", extra: []float64{80, 90}, want: Outliers{HighExtreme: 2, MAD: 2}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			xs := append(append([]float64{}, base...), tt.extra...)
			s := Summarize(xs)
			if s.Outliers != tt.want {
				t.Errorf("Summarize(0..19 + %v).Outliers = %+v, want %+v", tt.extra, s.Outliers, tt.want)
			}
		})
	}
}

func TestBimodalWarning(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	normal := func(n int, mu, sd float64) []float64 {
		out := make([]float64, n)
		for i := range out {
			out[i] = mu + sd*rng.NormFloat64()
		}
		return out
	}
	exp := make([]float64, 2000)
	for i := range exp {
		exp[i] = 10 + rng.ExpFloat64()
	}
	lognormal := make([]float64, 2000)
	for i := range lognormal {
		lognormal[i] = math.Exp(2 + 0.5*rng.NormFloat64())
	}
	uniform := make([]float64, 2000)
	for i := range uniform {
		uniform[i] = rng.Float64()
	}
	// Timer quantisation: three distinct values only.
	quantised := make([]float64, 2000)
	for i := range quantised {
		quantised[i] = float64(10 + rng.IntN(3))
	}
	tests := []struct {
		name string
		xs   []float64
		want bool
	}{
		{name: "normal", xs: normal(2000, 10, 1), want: false},
		{name: "exponential", xs: exp, want: false},
		{name: "lognormal", xs: lognormal, want: false},
		{name: "uniform", xs: uniform, want: false},
		{name: "quantised", xs: quantised, want: false},
		{name: "close normals 2 sd apart", xs: append(normal(1000, 10, 1), normal(1000, 12, 1)...), want: false},
		{name: "normals 6 sd apart 50/50", xs: append(normal(1000, 10, 1), normal(1000, 16, 1)...), want: true},
		{name: "normals 8 sd apart 80/20", xs: append(normal(1600, 10, 1), normal(400, 18, 1)...), want: true},
		{name: "two clusters small n", xs: append(normal(15, 10, 0.1), normal(15, 20, 0.1)...), want: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := Summarize(tt.xs)
			if got := hasWarning(s.Warnings, "bimodal?"); got != tt.want {
				t.Errorf("Summarize(%s) bimodal warning = %v, want %v (warnings %q)", tt.name, got, tt.want, s.Warnings)
			}
		})
	}
}
