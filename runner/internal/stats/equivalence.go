package stats

import "math"

// Equivalence is an equivalence test of B against A on the launch level: two one-sided Welch t-tests (TOST,
// Schuirmann 1987) on the log launch medians against the bounds ±ln(1+Margin), so "equivalent" means the ratio B/A
// lies within [1/(1+Margin), 1+Margin] — e.g. ±2% — with the test's confidence. It answers the question a
// non-significant difference does not: is the difference small enough to ignore, or were there too few launches to
// tell?
type Equivalence struct {
	// Margin is the relative margin, e.g. 0.02 for ±2%.
	Margin float64 `json:"margin"`
	// P is the TOST p-value: the larger of the two one-sided p-values, as statsmodels
	// ttost_ind(log b, log a, -ln(1+Margin), ln(1+Margin), usevar="unequal").
	P float64 `json:"p"`
	// PAdj is P after Holm's correction across the report's equivalence hypotheses (AdjustHolm); equal to P until then.
	PAdj float64 `json:"p_adj"`
	// Equivalent is PAdj < the comparison's Alpha.
	Equivalent bool `json:"equivalent"`
}

// TOST returns the p-value of the two one-sided Welch t-tests that mean(b) − mean(a) lies in (−delta, delta): the
// larger of P(T ≥ (d+delta)/se) and P(T ≤ (d−delta)/se) for Welch's T with Welch–Satterthwaite df. ok is false below
// 2 values a side or for delta ≤ 0. With both variances 0 the test is degenerate: p is 0 inside the bounds, else 1.
func TOST(a, b []float64, delta float64) (p float64, ok bool) {
	if !(delta > 0) {
		return 1, false
	}
	w, ok := WelchT(a, b, DefaultAlpha)
	if !ok {
		return 1, false
	}
	return TOSTEstimate(w.Diff, w.SE, w.DF, delta), true
}

// TOSTEstimate is the TOST p-value for an estimate d of the difference with standard error se on df degrees of
// freedom (a t statistic), against (−delta, delta): the Welch test above, or the card-blocked contrast of a run over
// several cards (Stratified). se = 0 gives 0 inside the bounds, else 1.
func TOSTEstimate(d, se, df, delta float64) float64 {
	if !(se > 0) {
		if math.Abs(d) < delta {
			return 0
		}
		return 1
	}
	pLower := tUpper((d+delta)/se, df) // H0: d ≤ −delta
	pUpper := tUpper((delta-d)/se, df) // H0: d ≥ delta
	return math.Max(pLower, pUpper)
}

// tUpper is P(T ≥ t) for Student's t with df degrees of freedom.
func tUpper(t, df float64) float64 {
	half := StudentTSF2(math.Abs(t), df) / 2
	if t >= 0 {
		return half
	}
	return 1 - half
}

func (e *Equivalence) decide(alpha float64) { e.Equivalent = e.PAdj < alpha }
