package analysis

import (
	"slices"

	"github.com/cuda-inference-benchmarks/cib/runner/internal/stats"
)

// DerivedFrom maps a compared metric that is a function of another to that
// metric: decode tok/s is batch / TPOT in every iteration, so a launch-level
// test of decode tok/s asks TPOT's question again (the same launches, the
// same log-scale difference up to the median of an even count). Holm's
// correction counts such a pair as one hypothesis; counting it twice would
// halve the power of every verdict for nothing.
var DerivedFrom = map[string]string{"decode_tps": "tpot_ms"}

// Hypotheses is the number of distinct hypotheses among Compared: what one
// engine-vs-baseline comparison of one case adds to Holm's family.
func Hypotheses() int {
	n := 0
	for _, k := range Compared {
		if base, ok := DerivedFrom[k]; !ok || !slices.Contains(Compared, base) {
			n++
		}
	}
	return n
}

// Keyed is one comparison with what identifies its hypothesis: the case, the
// engine compared (against the report's one baseline) and the metric.
type Keyed struct {
	Case, Engine, Metric string
	C                    *stats.Comparison
}

// AdjustHolm applies Holm's correction across cs, one hypothesis per case ×
// engine × independent metric: a derived metric's comparison (DerivedFrom)
// whose source metric is compared too takes the source's adjusted p (and so
// its verdict's significance) instead of entering the family itself. It
// returns the family size.
func AdjustHolm(cs []Keyed) int {
	type key struct{ c, e, m string }
	src := map[key]*stats.Comparison{}
	for _, k := range cs {
		if k.C != nil {
			src[key{k.Case, k.Engine, k.Metric}] = k.C
		}
	}
	var family []*stats.Comparison
	var derived []Keyed
	for _, k := range cs {
		if k.C == nil {
			continue
		}
		if base, ok := DerivedFrom[k.Metric]; ok && src[key{k.Case, k.Engine, base}] != nil {
			derived = append(derived, k)
			continue
		}
		family = append(family, k.C)
	}
	stats.AdjustHolm(family)
	for _, k := range derived {
		from := src[key{k.Case, k.Engine, DerivedFrom[k.Metric]}]
		k.C.SetPAdj(from.PAdj)
		if from.Equivalence != nil {
			k.C.SetEquivalencePAdj(from.Equivalence.PAdj)
		}
	}
	return len(family)
}
