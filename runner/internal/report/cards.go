package report

import (
	"fmt"

	"github.com/cuda-inference-benchmarks/cib/runner/internal/analysis"
)

// cardLines describe a multi-GPU run's comparisons card by card: the ratio
// on each card with its launch-level p (not Holm-corrected) and, per
// comparison, the homogeneity test behind the combined verdict.
func cardLines(c analysis.Case) []string {
	var out []string
	for _, cm := range c.Comparisons {
		if cm.Blocked == nil {
			continue
		}
		l := fmt.Sprintf("%s vs %s, %s:", cm.Engine, cm.Baseline, cm.Metric)
		for _, cc := range cm.Cards {
			if cc.HasRatio {
				l += fmt.Sprintf(" GPU %d %.3f× [%.3f–%.3f] p %.3g;", cc.Card, cc.Ratio, cc.RatioLo, cc.RatioHi, cc.P)
			} else {
				l += fmt.Sprintf(" GPU %d n/a;", cc.Card)
			}
		}
		if b := cm.Blocked; b.HasQ {
			agree := "cards agree"
			if b.Disagree {
				agree = "**cards disagree**: no combined verdict"
			}
			l += fmt.Sprintf(" Cochran's Q %.2f, F(%d, %.0f) p %.3g: %s", b.Q, b.QDF, b.QDF2, b.QP, agree)
		}
		out = append(out, l)
	}
	return out
}
