package report

import (
	"slices"
	"strings"
	"testing"

	"github.com/cuda-inference-benchmarks/cib/protocol"
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

// TestSharedTuningAndPreparedLines: engines that say their launches replay one tuning are named with what they
// replay, and the line says what their CIs do not cover; the prepared line says made, cached or failed; neither
// line appears when no engine reports anything.
func TestSharedTuningAndPreparedLines(t *testing.T) {
	s := &analysis.Summary{Engines: []analysis.Engine{{Label: "a"}, {Label: "b", SharedTuning: "the export's tuning"}}}
	got := sharedTuningLine(s)
	for _, want := range []string{"Launches that replay one tuning: b (the export's tuning).", "not the spread between tunings"} {
		if !strings.Contains(got, want) {
			t.Errorf("sharedTuningLine = %q, want it to contain %q", got, want)
		}
	}
	if strings.Contains(got, "a (") {
		t.Errorf("sharedTuningLine names an engine that said nothing: %q", got)
	}
	if strings.Contains(got, "not replayed whole") {
		t.Errorf("sharedTuningLine doubts a tuning no launch contradicted: %q", got)
	}
	// The claim checked against the launches' own kernel configurations: one kernel settled differently.
	s.Cases = []analysis.Case{{Name: "p", Results: []analysis.Result{{Engine: "b", Determinism: &analysis.Determinism{
		KernelConfigs: &analysis.KernelConfigs{Launches: 2, Kernels: 24, Distinct: 2, Differ: []string{"triton_red_fused_mm_16"}}}}}}}
	if got := sharedTuningLine(s); !strings.Contains(got, "b (the export's tuning) — yet its launches settled on different configurations for 1 of 24 tuned kernels") {
		t.Errorf("sharedTuningLine = %q, want the contradicted claim said", got)
	}
	s.Cases = nil
	s.Prepared = []analysis.Prepared{
		{Engine: "b", WallS: 259.5, Ran: true, Steps: map[string]string{"package_b1": "exported", "weights": "one file"}},
		{Engine: "c", WallS: 0.2},
		{Engine: "d", WallS: 1, Error: "disk full"},
		{Engine: "e", WallS: 0, Steps: map[string]string{protocol.PreparedNothing: "no store on cpu"}},
	}
	got = preparedLine(s)
	for _, want := range []string{"b made it in 259.5 s — package_b1: exported; weights: one file", "c found it cached (0.2 s)",
		"d failed after 1.0 s (disk full)", "e had nothing to prepare (no store on cpu)"} {
		if !strings.Contains(got, want) {
			t.Errorf("preparedLine = %q, want it to contain %q", got, want)
		}
	}
	empty := &analysis.Summary{Engines: []analysis.Engine{{Label: "a"}}}
	if l := sharedTuningLine(empty) + preparedLine(empty); l != "" {
		t.Errorf("lines without reports = %q, want none", l)
	}
}
