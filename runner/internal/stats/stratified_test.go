package stats

import (
	"math"
	"testing"
)

// one turns launch medians into groups of one iteration each.
func one(xs ...float64) [][]float64 {
	gs := make([][]float64, len(xs))
	for i, x := range xs {
		gs[i] = []float64{x}
	}
	return gs
}

func TestCompareStrata(t *testing.T) {
	near := func(t *testing.T, what string, got, want, tol float64) {
		t.Helper()
		if math.Abs(got-want) > tol*math.Max(1, math.Abs(want)) {
			t.Errorf("%s = %.12g, want %.12g", what, got, want)
		}
	}
	t.Run("three cards agree", func(t *testing.T) {
		// SciPy 1.17.1 / statsmodels 0.15.0 on the logs of these launch medians:
		//   d = mean over cards of (mean log b − mean log a); u = var(ddof=1)/n per cell
		//   se = sqrt(Σu)/3, df = (Σu)²/Σ(u²/(n−1)), p = 2*scipy.stats.t.sf(|d/se|, df)
		//   → d 0.0644321193638942, se 0.0124955272292576, t 5.1564146259495,
		//     df 11.6774665297147, p 0.000260182897168541,
		//     ratio 1.06655317747924 [1.03782073711265, 1.09608108579122]
		//   anova_lm(ols('y ~ C(eng, Sum)*C(card, Sum)'), typ=3): interaction
		//     F(2, 13) = 0.982616, p 0.4004877 (Q = 2F)
		s := CompareStrata([]Stratum{
			{A: one(10.0, 10.4, 9.8), B: one(10.9, 11.3, 10.7)},
			{A: one(10.5, 10.2, 10.9, 10.6), B: one(11.0, 11.6, 11.2)},
			{A: one(9.9, 10.1, 10.3), B: one(10.2, 10.8, 10.6)},
		}, 0.05)
		if !s.HasTest || !s.HasQ || s.Cards != 3 {
			t.Fatalf("CompareStrata = %+v, want a test and a Q over 3 cards", s)
		}
		near(t, "Diff", s.Diff, 0.0644321193638942, 1e-12)
		near(t, "SE", s.SE, 0.0124955272292576, 1e-12)
		near(t, "T", s.T, 5.1564146259495, 1e-11)
		near(t, "DF", s.DF, 11.6774665297147, 1e-11)
		near(t, "P", s.P, 0.000260182897168541, 1e-7)
		near(t, "RatioLo", s.RatioLo, 1.03782073711265, 1e-7)
		near(t, "RatioHi", s.RatioHi, 1.09608108579122, 1e-7)
		near(t, "Q", s.Q, 2*0.982616, 1e-5)
		near(t, "QP", s.QP, 0.4004877, 1e-5)
		if s.QDF != 2 || s.QDF2 != 13 || s.Disagree {
			t.Errorf("Q df = (%d, %g), disagree %v; want (2, 13), false", s.QDF, s.QDF2, s.Disagree)
		}
	})
	t.Run("two cards disagree", func(t *testing.T) {
		// statsmodels 0.15.0, same model: interaction F(1, 8) = 27.097764, p 8.168486e-04.
		s := CompareStrata([]Stratum{
			{A: one(10.0, 10.4, 9.8), B: one(10.9, 11.3, 10.7)},
			{A: one(10.5, 10.2, 10.9), B: one(9.6, 9.9, 9.5)},
		}, 0.05)
		near(t, "Q", s.Q, 27.097764, 1e-6)
		near(t, "QP", s.QP, 8.168486e-04, 1e-5)
		if !s.Disagree {
			t.Errorf("Disagree = false, want true")
		}
	})
	t.Run("one card is Welch", func(t *testing.T) {
		// scipy.stats.ttest_ind(log b, log a, equal_var=False): t 3.6177012034149536,
		// p 0.022680534031483124, df 3.9712491428251173.
		s := CompareStrata([]Stratum{{A: one(10.0, 10.4, 9.8), B: one(10.9, 11.3, 10.7)}}, 0.05)
		near(t, "T", s.T, 3.6177012034149536, 1e-11)
		near(t, "DF", s.DF, 3.9712491428251173, 1e-11)
		near(t, "P", s.P, 0.022680534031483124, 1e-7)
		if s.HasQ {
			t.Errorf("HasQ = true with one card")
		}
	})
	t.Run("card with one launch is left out", func(t *testing.T) {
		s := CompareStrata([]Stratum{
			{A: one(10.0, 10.4, 9.8), B: one(10.9, 11.3, 10.7)},
			{A: one(10.5), B: one(9.6, 9.9)},
		}, 0.05)
		if s.Cards != 1 || len(s.Warnings) != 1 {
			t.Errorf("CompareStrata = cards %d, warnings %q; want 1 card and 1 warning", s.Cards, s.Warnings)
		}
	})
	t.Run("nothing", func(t *testing.T) {
		s := CompareStrata(nil, 0.05)
		if s.HasTest || s.P != 1 {
			t.Errorf("CompareStrata(nil) = %+v, want no test, p 1", s)
		}
	})
}
