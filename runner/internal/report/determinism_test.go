package report

import (
	"testing"

	"github.com/cuda-inference-benchmarks/cib/runner/internal/analysis"
)

func TestDeterminismLines(t *testing.T) {
	const (
		id = analysis.Identical
		df = analysis.Differ
		na = analysis.NotApplicable
	)
	div := func(lo, hi, n, of int) *analysis.Divergence {
		return &analysis.Divergence{Min: lo, Max: hi, Differ: n, Compared: of}
	}
	tests := []struct {
		name string
		r    analysis.Result
		want []string
	}{
		{
			name: "all identical: nothing",
			r: analysis.Result{Engine: "e", Deterministic: true, Determinism: &analysis.Determinism{WithinLaunch: id, BetweenLaunches: id, BatchRows: id,
				Launches: 3, Iterations: 21, Warmups: 6, Rows: 8, Tokens: 128, Distinct: 1, Outputs: 168}},
		},
		{
			name: "nothing to compare: nothing",
			r: analysis.Result{Engine: "e", Deterministic: true, Determinism: &analysis.Determinism{WithinLaunch: na, BetweenLaunches: na, BatchRows: na,
				Launches: 1, Iterations: 1, Rows: 1, Tokens: 6, Distinct: 1, Outputs: 1}},
		},
		{
			// pytorch compiled, TinyLlama p128-n256, on the H200.
			name: "fixed per launch, launches differ",
			r: analysis.Result{Engine: "pytorch:mode=compiled", Determinism: &analysis.Determinism{WithinLaunch: id, BetweenLaunches: df, BatchRows: na,
				FirstDivergence: analysis.Divergences{BetweenLaunches: div(94, 103, 3, 3)},
				Launches:        3, Iterations: 21, Warmups: 6, Rows: 1, Tokens: 256, Distinct: 3, Outputs: 21}},
			want: []string{"pytorch:mode=compiled: greedy outputs identical within every launch (21 iterations in 3 launches, warm-ups included) " +
				"but differ between launches (3 distinct outputs of 21; the first 94–103 of 256 tokens agree) — so no state carried between " +
				"iterations changes the output; it suggests kernels chosen per process (compilation, autotuning or library heuristics), " +
				"not nondeterminism inside a process"},
		},
		{
			name: "fixed per launch, batch rows alike, no warm-up",
			r: analysis.Result{Engine: "c", Determinism: &analysis.Determinism{WithinLaunch: id, BetweenLaunches: df, BatchRows: id,
				FirstDivergence: analysis.Divergences{BetweenLaunches: div(16, 16, 1, 1)},
				Launches:        2, Iterations: 2, Rows: 8, Tokens: 128, Distinct: 2, Outputs: 16}},
			want: []string{"c: greedy outputs identical within every launch (2 iterations in 2 launches, all 8 rows of each batch alike) " +
				"but differ between launches (2 distinct outputs of 16; the first 16 of 128 tokens agree) — so no state carried between " +
				"iterations changes the output; it suggests kernels chosen per process (compilation, autotuning or library heuristics), " +
				"not nondeterminism inside a process"},
		},
		{
			// pytorch eager, TinyLlama p128-n256, on the H200.
			name: "iterations differ, batch 1",
			r: analysis.Result{Engine: "pytorch:mode=eager", Determinism: &analysis.Determinism{WithinLaunch: df, BetweenLaunches: df, BatchRows: na,
				FirstDivergence: analysis.Divergences{WithinLaunch: div(146, 203, 18, 18), BetweenLaunches: div(146, 160, 3, 3)},
				Launches:        3, Iterations: 21, Warmups: 6, Rows: 1, Tokens: 256, Distinct: 21, Outputs: 21}},
			want: []string{"pytorch:mode=eager: greedy outputs differ between iterations of one launch (18 of 18 against their launch's " +
				"first timed iteration; 21 distinct outputs of 21; the first 146–203 of 256 tokens agree) — state carried between " +
				"iterations or run-to-run nondeterministic kernels; the token ids cannot tell which (the rows of a batched case, one " +
				"prompt each, can show nondeterminism inside one step)"},
		},
		{
			name: "iterations differ, batch rows alike",
			r: analysis.Result{Engine: "e", Determinism: &analysis.Determinism{WithinLaunch: df, BetweenLaunches: id, BatchRows: id,
				FirstDivergence: analysis.Divergences{WithinLaunch: div(3, 3, 1, 4)},
				Launches:        2, Iterations: 6, Rows: 4, Tokens: 6, Distinct: 2, Outputs: 24}},
			want: []string{"e: greedy outputs differ between iterations of one launch (1 of 4 against their launch's first timed " +
				"iteration; 2 distinct outputs of 24; the first 3 of 6 tokens agree), all 4 rows of each batch alike — state carried " +
				"between iterations or run-to-run nondeterministic kernels; the token ids cannot tell which"},
		},
		{
			// pytorch eager, TinyLlama b8-p128-n128, on the H200.
			name: "iterations and batch rows differ",
			r: analysis.Result{Engine: "pytorch:mode=eager", Determinism: &analysis.Determinism{WithinLaunch: df, BetweenLaunches: df, BatchRows: df,
				FirstDivergence: analysis.Divergences{WithinLaunch: div(15, 84, 18, 18), BetweenLaunches: div(20, 61, 3, 3), BatchRows: div(12, 122, 147, 147)},
				Launches:        3, Iterations: 21, Warmups: 6, Rows: 8, Tokens: 128, Distinct: 127, Outputs: 168}},
			want: []string{"pytorch:mode=eager: greedy outputs differ between iterations of one launch (18 of 18 against their launch's " +
				"first timed iteration; 127 distinct outputs of 168; the first 15–84 of 128 tokens agree) and between rows of one batch, " +
				"every row the same prompt (147 of 147 rows against row 0; the first 12–122 of 128 tokens agree) — rows of one batch run " +
				"one prompt in one step, so state carried between iterations does not explain this; it suggests run-to-run " +
				"nondeterministic kernels"},
		},
		{
			name: "batch rows differ, iterations repeat",
			r: analysis.Result{Engine: "e", Determinism: &analysis.Determinism{WithinLaunch: id, BetweenLaunches: id, BatchRows: df,
				FirstDivergence: analysis.Divergences{BatchRows: div(5, 5, 4, 4)},
				Launches:        2, Iterations: 4, Rows: 2, Tokens: 6, Distinct: 2, Outputs: 8}},
			want: []string{"e: greedy outputs identical within every launch (4 iterations in 2 launches), and rows of one batch differ, " +
				"every row the same prompt (4 of 4 rows against row 0; the first 5 of 6 tokens agree) — rows of one batch run one prompt " +
				"in one step while every iteration repeats row 0: this suggests batch-position-dependent numerics (arithmetic that " +
				"depends on a row's place in the batch)"},
		},
		{
			name: "one iteration per launch, launches differ",
			r: analysis.Result{Engine: "e", Determinism: &analysis.Determinism{WithinLaunch: na, BetweenLaunches: df, BatchRows: na,
				FirstDivergence: analysis.Divergences{BetweenLaunches: div(2, 2, 1, 1)},
				Launches:        2, Iterations: 2, Rows: 1, Tokens: 6, Distinct: 2, Outputs: 2}},
			want: []string{"e: greedy outputs differ between launches (one iteration each; 2 distinct outputs of 2; the first 2 of 6 " +
				"tokens agree) — with one iteration per launch the token ids cannot tell kernels chosen per process from state or " +
				"nondeterministic kernels"},
		},
		{
			name: "launches differ, kernel configurations reported",
			r: analysis.Result{Engine: "pytorch:mode=compiled", Determinism: &analysis.Determinism{WithinLaunch: id, BetweenLaunches: df, BatchRows: na,
				FirstDivergence: analysis.Divergences{BetweenLaunches: div(40, 40, 1, 1)},
				Launches:        2, Iterations: 4, Rows: 1, Tokens: 64, Distinct: 2, Outputs: 4,
				KernelConfigs: &analysis.KernelConfigs{Launches: 2, Kernels: 30, Distinct: 2, Differ: []string{"a", "b", "c", "d", "e", "f"}}}},
			want: []string{"pytorch:mode=compiled: greedy outputs identical within every launch (4 iterations in 2 launches) but differ " +
				"between launches (2 distinct outputs of 4; the first 40 of 64 tokens agree) — so no state carried between iterations " +
				"changes the output; it suggests kernels chosen per process (compilation, autotuning or library heuristics), not " +
				"nondeterminism inside a process; the launches settled on different configurations for 6 of 30 tuned kernels " +
				"(`a`, `b`, `c`, `d` and 2 more): kernels tuned per process, shown"},
		},
		{
			name: "launches differ, the same kernel configurations",
			r: analysis.Result{Engine: "e", Determinism: &analysis.Determinism{WithinLaunch: id, BetweenLaunches: df, BatchRows: na,
				FirstDivergence: analysis.Divergences{BetweenLaunches: div(40, 40, 1, 1)},
				Launches:        2, Iterations: 4, Rows: 1, Tokens: 64, Distinct: 2, Outputs: 4,
				KernelConfigs: &analysis.KernelConfigs{Launches: 2, Kernels: 30, Distinct: 1}}},
			want: []string{"e: greedy outputs identical within every launch (4 iterations in 2 launches) but differ between launches " +
				"(2 distinct outputs of 4; the first 40 of 64 tokens agree) — so no state carried between iterations changes the output; " +
				"it suggests kernels chosen per process (compilation, autotuning or library heuristics), not nondeterminism inside a " +
				"process; every launch settled on the same configuration for all 30 tuned kernels, so their tuning does not explain a " +
				"difference between launches"},
		},
		{
			name: "a summary from before the breakdown",
			r:    analysis.Result{Engine: "old"},
			want: []string{"old: greedy outputs differ between iterations or launches (this summary does not say which; `runner report` re-analyses it)"},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got := determinismLines(analysis.Case{Results: []analysis.Result{tc.r}})
			if len(got) != len(tc.want) {
				t.Fatalf("determinismLines() = %q, want %q", got, tc.want)
			}
			for i := range got {
				if got[i] != tc.want[i] {
					t.Errorf("determinismLines()[%d] =\n%s\nwant\n%s", i, got[i], tc.want[i])
				}
			}
		})
	}
}

func TestCodeMarkdown(t *testing.T) {
	tests := []struct{ name, in, want string }{
		{"pairs", "a `--x` b `y`", "a <code>--x</code> b <code>y</code>"},
		{"none", "plain", "plain"},
		{"unpaired", "a ` b", "a ` b"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := codeMarkdown(tc.in); got != tc.want {
				t.Errorf("codeMarkdown(%q) = %q, want %q", tc.in, got, tc.want)
			}
		})
	}
}
