package report

import (
	"slices"
	"testing"

	"github.com/cuda-inference-benchmarks/cib/runner/internal/analysis"
)

// TestCaseNotesText checks the greedy-output sentence of the parity notes:
// every engine with decoded text, the baseline included, and none without.
func TestCaseNotesText(t *testing.T) {
	s := &analysis.Summary{Baseline: "reference"}
	c := analysis.Case{
		Results: []analysis.Result{{Engine: "reference", Text: `Paris, "France".`}, {Engine: "candle", Text: "Paris."}, {Engine: "burn"}},
		Parity:  []analysis.Parity{{Engine: "candle", Baseline: "reference", Matched: 3, Total: 64, Agree: 0.5}},
	}
	want := `Greedy output, first line as the model's tokenizer decodes it: reference "Paris, \"France\"."; candle "Paris.".`
	if got := caseNotes(s, c); !slices.Contains(got, want) {
		t.Errorf("caseNotes = %q, want it to contain %q", got, want)
	}
	c.Results = []analysis.Result{{Engine: "reference"}, {Engine: "candle"}}
	for _, n := range caseNotes(s, c) {
		if len(n) > 14 && n[:14] == "Greedy output," {
			t.Errorf("caseNotes without text = %q, want no greedy-output sentence", n)
		}
	}
}
