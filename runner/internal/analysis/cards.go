package analysis

import (
	"fmt"
	"math"
	"slices"

	"github.com/cuda-inference-benchmarks/cib/runner/internal/results"
	"github.com/cuda-inference-benchmarks/cib/runner/internal/stats"
)

// cardsOf lists the cards of a multi-GPU run's records by index (nil for a
// one-device run).
func cardsOf(recs []results.Record) []results.Card {
	var out []results.Card
	for _, r := range recs {
		if r.Card == nil || slices.ContainsFunc(out, func(c results.Card) bool { return c.Index == r.Card.Index }) {
			continue
		}
		out = append(out, results.Card{Index: r.Card.Index, UUID: r.Card.UUID})
	}
	slices.SortFunc(out, func(a, b results.Card) int { return a.Index - b.Index })
	return out
}

// metricGroups collects one metric of a variant's successful launches on
// case ci, one group per launch, of the launches keep accepts.
func metricGroups(label, key string, ci int, recs []results.Record, keep func(*results.Record) bool) [][]float64 {
	var m Metric
	for _, x := range Metrics {
		if x.Key == key {
			m = x
		}
	}
	var groups [][]float64
	for i := range recs {
		r := &recs[i]
		if r.Engine != label || r.Status != results.StatusOK || !keep(r) {
			continue
		}
		var g []float64
		for _, it := range r.Iterations {
			if it.Raw.Warmup || it.Raw.Case != ci {
				continue
			}
			if v, ok := m.f(it.Metrics); ok {
				g = append(g, v)
			}
		}
		if len(g) > 0 {
			groups = append(groups, g)
		}
	}
	return groups
}

// blockByCard makes c a comparison blocked by card: one comparison per card,
// and the launch-level test and ratio CI of c replaced by their combination
// over cards (stats.CompareStrata). The card is a blocking factor: a card
// that is slower for every engine moves both sides on it alike and drops
// out of the within-card log ratios.
func blockByCard(c *Comparison, cards []results.Card, ci int, recs []results.Record, margin float64) {
	var strata []stats.Stratum
	for _, card := range cards {
		on := func(r *results.Record) bool { return r.Card != nil && r.Card.Index == card.Index }
		ga, gb := metricGroups(c.Baseline, c.Metric, ci, recs, on), metricGroups(c.Engine, c.Metric, ci, recs, on)
		strata = append(strata, stats.Stratum{A: ga, B: gb})
		if len(ga) == 0 && len(gb) == 0 {
			continue
		}
		cc := stats.Compare(ga, gb, stats.CompareOptions{Alpha: 0.05, Resamples: 2000, Seed: 1})
		c.Cards = append(c.Cards, CardComparison{Card: card.Index, UUID: card.UUID, Comparison: cc})
	}
	st := stats.CompareStrata(strata, c.Alpha)
	c.Blocked = &st
	// The equivalence test, like the difference test, is on the card-blocked contrast (none where the cards disagree).
	c.Equivalence = nil
	if margin > 0 && st.HasTest && !st.Disagree {
		p := stats.TOSTEstimate(st.Diff, st.SE, st.DF, math.Log1p(margin))
		c.Equivalence = &stats.Equivalence{Margin: margin, P: p}
		c.SetEquivalencePAdj(p)
	}
	c.T, c.DF, c.P, c.PAdj, c.HasTest = st.T, st.DF, st.P, st.P, st.HasTest
	c.Ratio, c.RatioLo, c.RatioHi, c.HasRatio = st.Ratio, st.RatioLo, st.RatioHi, st.HasTest && !math.IsNaN(st.Ratio)
	if !st.HasTest {
		c.Ratio, c.RatioLo, c.RatioHi = 0, 0, 0
	}
	// The pooled comparison's caveats are about a test no longer made.
	c.Warnings = append([]string(nil), st.Warnings...)
	if st.Disagree {
		c.Warnings = append(c.Warnings, fmt.Sprintf("cards disagree on the effect (Cochran's Q = %.2f, F(%d, %.0f) p = %.3g): no combined verdict; see each card", st.Q, st.QDF, st.QDF2, st.QP))
	}
	c.Significant = c.HasTest && c.HasRatio && c.PAdj < c.Alpha && (c.RatioLo > 1 || c.RatioHi < 1)
	c.Verdict = "~"
}
