package analysis

import (
	"compress/gzip"
	"encoding/json"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/cuda-inference-benchmarks/cib/protocol"
	"github.com/cuda-inference-benchmarks/cib/runner/internal/envinfo"
	"github.com/cuda-inference-benchmarks/cib/runner/internal/results"
)

// launch is one synthetic launch of engine "e" on case 0: its iterations'
// output rows, the first warm warm-up ones.
func launch(n, warm int, status string, its ...[][]int) results.Record {
	r := results.Record{Engine: "e", Launch: n, Status: status}
	for k, rows := range its {
		raw := protocol.Iteration{Case: 0, Index: k, Warmup: k < warm, OutputTokens: rows}
		if k >= warm {
			raw.Index = k - warm
		}
		r.Iterations = append(r.Iterations, results.Iteration{Raw: raw})
	}
	return r
}

func rows(rs ...[]int) [][]int { return rs }

func TestDeterminism(t *testing.T) {
	a := []int{1, 2, 3, 4, 5, 6}
	b := []int{1, 2, 3, 9, 5, 6} // parts from a at 3
	c := []int{1, 9, 3, 4, 5, 6} // parts from a at 1
	d := []int{1, 2, 3, 4, 5, 9} // parts from a at 5
	ok := results.StatusOK
	tests := []struct {
		name                   string
		recs                   []results.Record
		within, between, brows string
		wantDiv                Divergences
		consistent             bool
		distinct               int
	}{
		{
			name: "all identical",
			recs: []results.Record{
				launch(0, 1, ok, rows(a, a), rows(a, a), rows(a, a)),
				launch(1, 1, ok, rows(a, a), rows(a, a), rows(a, a)),
			},
			within: Identical, between: Identical, brows: Identical, consistent: true, distinct: 1,
		},
		{
			// pytorch compiled on the H200: each process fixed, processes differ.
			name: "fixed per launch, launches differ",
			recs: []results.Record{
				launch(0, 1, ok, rows(a), rows(a), rows(a)),
				launch(1, 1, ok, rows(b), rows(b), rows(b)),
				launch(2, 1, ok, rows(c), rows(c), rows(c)),
			},
			within: Identical, between: Differ, brows: NotApplicable,
			wantDiv:  Divergences{BetweenLaunches: &Divergence{Min: 1, Max: 3, Differ: 3, Compared: 3}},
			distinct: 3,
		},
		{
			name: "iterations of one launch differ",
			recs: []results.Record{
				launch(0, 1, ok, rows(b), rows(a), rows(d)),
				launch(1, 0, ok, rows(a), rows(a)),
			},
			within: Differ, between: Identical, brows: NotApplicable,
			// launch 0: warm-up b vs a (3), d vs a (5); launch 1: a vs a.
			wantDiv:  Divergences{WithinLaunch: &Divergence{Min: 3, Max: 5, Differ: 2, Compared: 3}},
			distinct: 3,
		},
		{
			// pytorch eager, batch 8, on the H200.
			name: "iterations and batch rows differ",
			recs: []results.Record{
				launch(0, 0, ok, rows(a, b, a), rows(c, c, d)),
				launch(1, 0, ok, rows(d, d, d), rows(d, d, d)),
			},
			within: Differ, between: Differ, brows: Differ,
			wantDiv: Divergences{
				WithinLaunch:    &Divergence{Min: 1, Max: 1, Differ: 1, Compared: 2},
				BetweenLaunches: &Divergence{Min: 5, Max: 5, Differ: 1, Compared: 1},
				// a vs b (3), a vs a, c vs c, c vs d (1), d vs d ×4.
				BatchRows: &Divergence{Min: 1, Max: 3, Differ: 2, Compared: 8},
			},
			distinct: 4,
		},
		{
			name: "batch rows differ, iterations repeat",
			recs: []results.Record{
				launch(0, 0, ok, rows(a, d), rows(a, d)),
				launch(1, 0, ok, rows(a, d), rows(a, d)),
			},
			within: Identical, between: Identical, brows: Differ,
			wantDiv:  Divergences{BatchRows: &Divergence{Min: 5, Max: 5, Differ: 4, Compared: 4}},
			distinct: 2,
		},
		{
			name:   "one launch, one iteration: nothing to compare",
			recs:   []results.Record{launch(0, 0, ok, rows(a))},
			within: NotApplicable, between: NotApplicable, brows: NotApplicable, consistent: true, distinct: 1,
		},
		{
			name: "a failed launch and a warm-up-only launch are left out",
			recs: []results.Record{
				launch(0, 0, ok, rows(a), rows(a)),
				launch(1, 0, results.StatusFailed, rows(b)),
				launch(2, 1, ok, rows(c)),
			},
			within: Identical, between: NotApplicable, brows: NotApplicable, consistent: true, distinct: 1,
		},
		{
			name: "a shorter output that agrees as far as it goes parts at its length",
			recs: []results.Record{
				launch(0, 0, ok, rows(a), rows(a[:4])),
			},
			within: Differ, between: NotApplicable, brows: NotApplicable,
			wantDiv:  Divergences{WithinLaunch: &Divergence{Min: 4, Max: 4, Differ: 1, Compared: 1}},
			distinct: 2,
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got := determinism("e", 0, tc.recs)
			require.NotNil(t, got)
			assert.Equal(t, tc.within, got.WithinLaunch, "within launch")
			assert.Equal(t, tc.between, got.BetweenLaunches, "between launches")
			assert.Equal(t, tc.brows, got.BatchRows, "batch rows")
			assert.Equal(t, tc.wantDiv, got.FirstDivergence)
			assert.Equal(t, tc.consistent, got.Consistent())
			assert.Equal(t, tc.distinct, got.Distinct, "distinct outputs")
		})
	}
}

func TestDeterminismNone(t *testing.T) {
	other := launch(0, 0, results.StatusOK, rows([]int{1}))
	other.Engine = "f"
	if got := determinism("e", 0, []results.Record{other}); got != nil {
		t.Errorf("determinism(no launch of e) = %+v, want nil", got)
	}
	if got := determinism("f", 1, []results.Record{other}); got != nil {
		t.Errorf("determinism(case 1, none run) = %+v, want nil", got)
	}
}

// readFixture reads a trimmed runs.jsonl.gz of testdata (testdata/README.md
// says where each came from).
func readFixture(t *testing.T, name string) []results.Record {
	t.Helper()
	f, err := os.Open(filepath.Join("testdata", name))
	require.NoError(t, err)
	defer f.Close()
	z, err := gzip.NewReader(f)
	require.NoError(t, err)
	recs, warnings, err := results.DecodeRuns(z)
	require.NoError(t, err)
	require.Empty(t, warnings)
	return recs
}

// TestDeterminismH200 classifies the real H200 runs of pytorch on TinyLlama
// (results/h200-2026-12-02/suite-resume-pytorch-tinyllama): compiled is
// bit-identical within every launch (warm-ups included) and differs between
// launches; eager differs between the iterations of one launch and, with a
// batch of 8 copies of one prompt, between the rows of one batch.
func TestDeterminismH200(t *testing.T) {
	const compiled, eager = "pytorch:mode=compiled", "pytorch:mode=eager"
	tests := []struct {
		file      string
		name      string
		prompt    int
		maxNew    int
		batch     int
		engine    string
		want      Determinism
		distinctN int
	}{
		{
			file: "h200-tinyllama-p128-n256.runs.jsonl.gz", name: "p128-n256", prompt: 128, maxNew: 256, batch: 1, engine: compiled,
			want: Determinism{WithinLaunch: Identical, BetweenLaunches: Differ, BatchRows: NotApplicable,
				FirstDivergence: Divergences{BetweenLaunches: &Divergence{Min: 94, Max: 103, Differ: 3, Compared: 3}},
				Launches:        3, Iterations: 21, Warmups: 6, Rows: 1, Tokens: 256, Distinct: 3, Outputs: 21},
		},
		{
			file: "h200-tinyllama-p128-n256.runs.jsonl.gz", name: "p128-n256", prompt: 128, maxNew: 256, batch: 1, engine: eager,
			want: Determinism{WithinLaunch: Differ, BetweenLaunches: Differ, BatchRows: NotApplicable,
				FirstDivergence: Divergences{
					WithinLaunch:    &Divergence{Min: 146, Max: 203, Differ: 18, Compared: 18},
					BetweenLaunches: &Divergence{Min: 146, Max: 160, Differ: 3, Compared: 3},
				},
				Launches: 3, Iterations: 21, Warmups: 6, Rows: 1, Tokens: 256, Distinct: 21, Outputs: 21},
		},
		{
			file: "h200-tinyllama-b8-p128-n128.runs.jsonl.gz", name: "b8-p128-n128", prompt: 128, maxNew: 128, batch: 8, engine: compiled,
			want: Determinism{WithinLaunch: Identical, BetweenLaunches: Differ, BatchRows: Identical,
				FirstDivergence: Divergences{BetweenLaunches: &Divergence{Min: 16, Max: 21, Differ: 3, Compared: 3}},
				Launches:        3, Iterations: 21, Warmups: 6, Rows: 8, Tokens: 128, Distinct: 3, Outputs: 168},
		},
		{
			file: "h200-tinyllama-b8-p128-n128.runs.jsonl.gz", name: "b8-p128-n128", prompt: 128, maxNew: 128, batch: 8, engine: eager,
			want: Determinism{WithinLaunch: Differ, BetweenLaunches: Differ, BatchRows: Differ,
				FirstDivergence: Divergences{
					WithinLaunch:    &Divergence{Min: 15, Max: 84, Differ: 18, Compared: 18},
					BetweenLaunches: &Divergence{Min: 20, Max: 61, Differ: 3, Compared: 3},
					BatchRows:       &Divergence{Min: 12, Max: 122, Differ: 147, Compared: 147},
				},
				Launches: 3, Iterations: 21, Warmups: 6, Rows: 8, Tokens: 128, Distinct: 127, Outputs: 168},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name+"/"+tc.engine, func(t *testing.T) {
			recs := readFixture(t, tc.file)
			req := RequestInfo{Device: "cuda:0", DType: "bf16", Warmup: 2, Iterations: 5,
				Cases: []protocol.Case{{Name: tc.name, PromptTokens: make([]int, tc.prompt), MaxNewTokens: tc.maxNew, BatchSize: tc.batch}}}
			s, err := Build("h200", envinfo.Env{}, req, nil, "", recs, Options{})
			require.NoError(t, err)
			r := s.Cases[0].Result(tc.engine)
			require.NotNil(t, r)
			require.NotNil(t, r.Determinism)
			assert.Equal(t, tc.want, *r.Determinism)
			assert.False(t, r.Deterministic, "deterministic stays false for readers of the old field")
		})
	}
}

func TestKernelConfigs(t *testing.T) {
	ok := results.StatusOK
	a := []int{1, 2, 3}
	withConfigs := func(r results.Record, settings map[string]string) results.Record {
		r.Loaded = &protocol.Loaded{Settings: settings}
		return r
	}
	cfg := func(kv ...string) map[string]string {
		m := map[string]string{}
		for i := 0; i < len(kv); i += 2 {
			m[kv[i]] = kv[i+1]
		}
		b, err := json.Marshal(m)
		require.NoError(t, err)
		return map[string]string{KernelConfigsSetting: string(b)}
	}
	recs := []results.Record{
		withConfigs(launch(0, 0, ok, rows(a)), cfg("mm_1", "XBLOCK=1,R0_BLOCK=2048,num_warps=8", "add_2", "XBLOCK=512,num_warps=4", "mm_3", "XBLOCK=2")),
		withConfigs(launch(1, 0, ok, rows(a)), cfg("mm_1", "XBLOCK=1,R0_BLOCK=1024,num_warps=8", "add_2", "XBLOCK=512,num_warps=4", "mm_3", "XBLOCK=2")),
		withConfigs(launch(2, 0, ok, rows(a)), cfg("mm_1", "XBLOCK=1,R0_BLOCK=2048,num_warps=8", "add_2", "XBLOCK=512,num_warps=4")), // mm_3 missing
		withConfigs(launch(3, 0, ok, rows(a)), map[string]string{KernelConfigsSetting: "not json"}),
		withConfigs(launch(4, 0, results.StatusFailed, rows(a)), cfg("other", "x")), // failed launches do not count
		launch(5, 0, ok, rows(a)), // no loaded event recorded
	}
	k := determinism("e", 0, recs).KernelConfigs
	require.NotNil(t, k)
	assert.Equal(t, KernelConfigs{Launches: 3, Kernels: 3, Distinct: 3, Differ: []string{"mm_1", "mm_3"}, Unreadable: 1}, *k)

	same := []results.Record{
		withConfigs(launch(0, 0, ok, rows(a)), cfg("mm_1", "A", "add_2", "B")),
		withConfigs(launch(1, 0, ok, rows(a)), cfg("add_2", "B", "mm_1", "A")),
	}
	assert.Equal(t, KernelConfigs{Launches: 2, Kernels: 2, Distinct: 1}, *determinism("e", 0, same).KernelConfigs)
	assert.Nil(t, determinism("e", 0, []results.Record{launch(0, 0, ok, rows(a))}).KernelConfigs, "no engine report: nil")
}
