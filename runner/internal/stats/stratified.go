package stats

import (
	"fmt"
	"math"
)

// Stratum is one block of a blocked comparison (a GPU card): the launches of
// baseline A and of B that ran on it, each a group of timed iterations.
type Stratum struct {
	A, B [][]float64
}

// Stratified is a comparison of B against A made within strata (cards) and
// combined over them. Each launch is its median; on the log scale of those
// medians, d_c = mean(log B) − mean(log A) on card c.
//
// The combined effect is the equally weighted mean of the d_c (the design
// gives every engine the same launches on every card, so equal weights are
// the block design's own estimator) with variance (1/C²) Σ_c (s²_Ac/n_Ac +
// s²_Bc/n_Bc), tested with Student's t on Welch–Satterthwaite degrees of
// freedom: Welch's test of a linear contrast among group means (Welch 1947;
// Satterthwaite 1946; e.g. Kirk, Experimental Design, 4th ed., §4.2). With one
// card it is exactly the unblocked Welch test of Compare.
//
// Homogeneity over cards is Cochran's Q = Σ w_c (d_c − d̄_w)² with w_c =
// 1/(s²_p (1/n_Ac + 1/n_Bc)), s²_p the within-cell variance pooled over every
// card and engine (Cochran 1954, "The combination of estimates from different
// experiments"). With the variance pooled, Q/(C−1) is F(C−1, N−2C) under
// homogeneity: the engine × card interaction F test of a two-way ANOVA on log
// launch medians. A per-card variance from 2–3 launches would make the usual
// χ²(C−1) reference of Q call cards different far too often.
type Stratified struct {
	// Cards counts the strata with at least 2 launches on each side; only
	// they enter the test.
	Cards int `json:"cards"`
	// Diff is the combined log ratio, SE its standard error, T = Diff/SE on
	// DF degrees of freedom, P two-sided. Ratio = exp(Diff); RatioLo and
	// RatioHi bound its (1−alpha) t interval. HasTest is false when the
	// combination cannot be made (launch medians not positive, fewer than
	// 2 launches per side on every card).
	Diff    float64 `json:"diff"`
	SE      float64 `json:"se"`
	T       float64 `json:"t"`
	DF      float64 `json:"df"`
	P       float64 `json:"p"`
	Ratio   float64 `json:"ratio"`
	RatioLo float64 `json:"ratio_lo"`
	RatioHi float64 `json:"ratio_hi"`
	HasTest bool    `json:"has_test"`
	// Q is Cochran's Q over cards with QDF = C−1; QP is P(F(C−1, QDF2) >
	// Q/QDF). HasQ is false with fewer than 2 cards or no residual df.
	Q    float64 `json:"q"`
	QDF  int     `json:"q_df"`
	QDF2 float64 `json:"q_df2"`
	QP   float64 `json:"q_p"`
	HasQ bool    `json:"has_q"`
	// Disagree is HasQ and QP < alpha: the cards do not agree on the
	// effect, so no combined verdict is given.
	Disagree bool     `json:"disagree"`
	Warnings []string `json:"warnings,omitempty"`
}

// CompareStrata combines per-stratum comparisons of B against A (see
// Stratified) at level alpha (0 means DefaultAlpha).
func CompareStrata(strata []Stratum, alpha float64) Stratified {
	if !(alpha > 0 && alpha < 1) {
		alpha = DefaultAlpha
	}
	s := Stratified{P: 1, QP: 1}
	type cell struct {
		n      float64
		mean   float64
		v      float64 // sample variance
		hasVar bool
	}
	type card struct{ a, b cell }
	var cards []card
	for i, st := range strata {
		ma, mb := launchMedians(st.A), launchMedians(st.B)
		if !allPositive(ma) || !allPositive(mb) {
			s.Warnings = append(s.Warnings, fmt.Sprintf("card %d: launch medians not all positive: no combined test", i))
			return s
		}
		if len(ma) < 2 || len(mb) < 2 {
			if len(ma)+len(mb) > 0 {
				s.Warnings = append(s.Warnings, fmt.Sprintf("card %d: %d vs %d launches, left out of the combined test (needs 2 per engine)", i, len(ma), len(mb)))
			}
			continue
		}
		mk := func(xs []float64) cell {
			m, sd := meanSD(logs(xs))
			return cell{n: float64(len(xs)), mean: m, v: sd * sd, hasVar: true}
		}
		cards = append(cards, card{mk(ma), mk(mb)})
	}
	s.Cards = len(cards)
	if s.Cards == 0 {
		s.Warnings = append(s.Warnings, "no card with 2 launches per engine: no combined test")
		return s
	}
	C := float64(s.Cards)
	var diff, varSum, dfDen, ssWithin, dfWithin float64
	for _, c := range cards {
		diff += (c.b.mean - c.a.mean) / C
		for _, x := range []cell{c.a, c.b} {
			u := x.v / x.n
			varSum += u
			dfDen += u * u / (x.n - 1)
			ssWithin += (x.n - 1) * x.v
			dfWithin += x.n - 1
		}
	}
	s.Diff = diff
	s.SE = math.Sqrt(varSum) / C
	s.Ratio = math.Exp(diff)
	s.HasTest = true
	if varSum == 0 {
		// Degenerate, as WelchT: every launch identical within its cell.
		s.DF = dfWithin
		if diff != 0 {
			s.P, s.T = 0, math.Copysign(math.Inf(1), diff)
		}
		s.RatioLo, s.RatioHi = s.Ratio, s.Ratio
	} else {
		s.DF = varSum * varSum / dfDen
		s.T = diff / s.SE
		s.P = StudentTSF2(s.T, s.DF)
		h := StudentTQuantile(1-alpha/2, s.DF) * s.SE
		s.RatioLo, s.RatioHi = math.Exp(diff-h), math.Exp(diff+h)
	}
	if s.Cards >= 2 && dfWithin > 0 {
		sp2 := ssWithin / dfWithin
		var sw, swd float64
		ws := make([]float64, len(cards))
		for i, c := range cards {
			ws[i] = 1 / (sp2 * (1/c.a.n + 1/c.b.n))
			sw += ws[i]
			swd += ws[i] * (c.b.mean - c.a.mean)
		}
		if sp2 > 0 && !math.IsInf(sw, 0) {
			dw := swd / sw
			for i, c := range cards {
				e := c.b.mean - c.a.mean - dw
				s.Q += ws[i] * e * e
			}
			s.QDF, s.QDF2, s.HasQ = s.Cards-1, dfWithin, true
			s.QP = fSF(s.Q/float64(s.QDF), float64(s.QDF), dfWithin)
			s.Disagree = s.QP < alpha
		}
	}
	return s
}
