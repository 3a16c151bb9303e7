package adapter_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/cuda-inference-benchmarks/cib/protocol"
	"github.com/cuda-inference-benchmarks/cib/runner/internal/adapter"
	"github.com/cuda-inference-benchmarks/cib/runner/internal/synth"
	"github.com/cuda-inference-benchmarks/cib/runner/internal/workload"
)

// TestParse reads each native tool's output (testdata: real CPU outputs, and
// burn-bench's format written by hand) into its timed and warm-up iterations.
func TestParse(t *testing.T) {
	tests := []struct {
		name, engine, file string
		warmups            int
		timed              []float64 // decode tok/s
		ttft               []float64 // ms; nil: the tool gives none
		firstIDs           []int     // of the first timed iteration; nil: the tool prints none
	}{
		{name: "candle-bench text lines", engine: "candle", file: "candle-bench.out", warmups: 2,
			timed: []float64{3367.53, 4090.44, 3804.56}, ttft: []float64{0.40, 0.34, 0.39}, firstIDs: []int{22, 97, 455, 497, 171, 137, 480, 288}},
		{name: "llamacpp-bench text lines with prefill", engine: "llamacpp", file: "llamacpp-bench.out", warmups: 2,
			timed: []float64{4018.40, 18183.90, 5529.74}, ttft: []float64{0.28, 0.46, 0.30}, firstIDs: []int{22, 97, 455, 497, 171, 137, 480, 288}},
		{name: "burn-bench JSON lines and summary", engine: "burn", file: "burn-bench.out", warmups: 1,
			timed: []float64{129.024, 129.370}, ttft: []float64{14.125, 13.875}, firstIDs: []int{22, 97, 455, 497, 171, 137, 480, 288}},
		{name: "bench.py --per-iter", engine: "pytorch", file: "bench-py.out", warmups: 2,
			timed: []float64{30.464, 23.71, 10.968}, ttft: []float64{68.971, 108.677, 5.248}},
		{name: "mistralrs native: mistral.rs's own decode rate", engine: "mistralrs", file: "mistralrs-native.out",
			timed: []float64{4428.571291876086, 6200.000138580802, 6200.000138580802}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			n, err := adapter.Lookup(tt.engine)
			require.NoError(t, err)
			out, err := os.ReadFile(filepath.Join("testdata", tt.file))
			require.NoError(t, err)
			its, err := n.Parse(out)
			require.NoError(t, err)
			var warm int
			var timed, ttft []float64
			var first []int
			for _, it := range its {
				if it.Warmup {
					warm++
					continue
				}
				if first == nil {
					first = it.FirstIDs
				}
				timed = append(timed, it.DecodeTokS)
				if it.TTFTMs > 0 {
					ttft = append(ttft, it.TTFTMs)
				}
			}
			require.Equal(t, tt.warmups, warm, "warm-up iterations")
			require.InDeltaSlice(t, tt.timed, timed, 1e-6, "Parse(%s) decode tok/s", tt.file)
			require.InDeltaSlice(t, tt.ttft, ttft, 1e-6, "Parse(%s) TTFT ms", tt.file)
			require.Equal(t, tt.ttft != nil, n.TTFT, "the registry's TTFT flag matches what the tool prints")
			require.Equal(t, tt.firstIDs, first, "first output ids")
		})
	}
	n, _ := adapter.Lookup("candle")
	its, err := n.Parse([]byte("bench: load: no such file\n"))
	require.NoError(t, err)
	require.Empty(t, its, "an error message is no iteration")
}

// TestCompare pins the verdict logic on made-up runs (no timing): the ratio
// is runner/native of geometric means of run medians; within means
// |ratio − 1| ≤ tolerance; resolved means the CI is on one side of the band's
// edges.
func TestCompare(t *testing.T) {
	flat := func(x float64, runs, n int) [][]float64 {
		g := make([][]float64, runs)
		for i := range g {
			for j := range n {
				g[i] = append(g[i], x*(1+0.001*float64(j-n/2)))
			}
		}
		return g
	}
	tests := []struct {
		name             string
		native, runner   [][]float64
		ratio            float64
		within, resolved bool
	}{
		{name: "2% slower, tight runs: within, resolved", native: flat(100, 3, 5), runner: flat(98, 3, 5), ratio: 0.98, within: true, resolved: true},
		{name: "10% slower: outside, resolved", native: flat(100, 3, 5), runner: flat(90, 3, 5), ratio: 0.90, within: false, resolved: true},
		{name: "equal medians, noisy runs: within, not resolved",
			native: [][]float64{{80, 81, 82}, {120, 121, 119}}, runner: [][]float64{{81, 80, 82}, {119, 120, 121}},
			ratio: 1, within: true, resolved: false},
		{name: "3.5% faster: outside", native: flat(100, 2, 5), runner: flat(103.5, 2, 5), ratio: 1.035, within: false, resolved: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			v := adapter.Compare(adapter.MetricDecode, tt.native, tt.runner, nil, 0.03)
			require.InDelta(t, tt.ratio, v.Ratio, 1e-3, "Compare ratio")
			require.Equal(t, tt.within, v.Within, "Within, ratio %.4f", v.Ratio)
			require.Equal(t, tt.resolved, v.Resolved, "Resolved, CI %.4f–%.4f", v.Lo, v.Hi)
			require.LessOrEqual(t, v.Lo, v.Ratio)
			require.GreaterOrEqual(t, v.Hi, v.Ratio)
			require.Equal(t, len(tt.native), v.NativeRuns)
			require.Contains(t, v.Line(), map[bool]string{true: "within ±3%", false: "OUTSIDE ±3%"}[tt.within])
		})
	}
	v := adapter.Compare(adapter.MetricDecode, nil, flat(100, 2, 3), nil, 0.03)
	require.False(t, v.Within)
	require.Contains(t, v.Line(), "no verdict")
}

// TestRoundsNeeded pins the planning figure of an unresolved check against an independent computation (SciPy
// 1.17.1: the smallest k with t.ppf(0.975, 2k−2)·sqrt((s²_native + s²_runner)/k) below the log distance from the
// ratio to the nearest band edge, s the sample SD of log run medians). The first case is burn's TinyLlama check on
// the H200 (results/h200-2026-12-02-s6/adapter-tinyllama, run medians as single iterations).
func TestRoundsNeeded(t *testing.T) {
	one := func(xs ...float64) [][]float64 {
		g := make([][]float64, len(xs))
		for i, x := range xs {
			g[i] = []float64{x}
		}
		return g
	}
	tests := []struct {
		name           string
		native, runner [][]float64
		want           int
	}{
		{"burn on the H200, ±20% between processes", one(38.42, 59.04), one(49.85, 40.72), 691},
		{"3.6% slower, ~3% spread", one(100, 104, 98), one(95, 99, 97), 124},
		{"0.9% faster, 10% spread", one(100, 110), one(100, 112), 101},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			v := adapter.Compare(adapter.MetricDecode, tt.native, tt.runner, nil, 0.03)
			require.False(t, v.Resolved, "CI %.4f–%.4f", v.Lo, v.Hi)
			require.Equal(t, tt.want, v.RoundsNeeded)
			require.Contains(t, v.Line(), fmt.Sprintf("(about %d per side at this run-to-run spread)", tt.want))
		})
	}
	// Resolved, or a side with one run: no figure.
	require.Zero(t, adapter.Compare(adapter.MetricDecode, one(100, 100.5, 99.5), one(98, 98.4, 97.6), nil, 0.03).RoundsNeeded)
	require.Zero(t, adapter.Compare(adapter.MetricDecode, one(100), one(90, 120), nil, 0.03).RoundsNeeded)
	// A ratio on the band's edge cannot be resolved by any number of rounds.
	edge := adapter.Compare(adapter.MetricDecode, one(100, 120), one(97, 116.4), nil, 0.03)
	require.Equal(t, 10000, edge.RoundsNeeded)
	require.Contains(t, edge.Line(), "not with this check")
}

func TestLookup(t *testing.T) {
	_, err := adapter.Lookup("reference")
	require.ErrorIs(t, err, adapter.ErrUnknownEngine)
	require.Contains(t, err.Error(), `engine "reference": no native tool registered`)
	require.Contains(t, err.Error(), "burn, candle, llamacpp, mistralrs, pytorch")
}

// TestCommand checks each tool's command line and the missing-tool errors.
func TestCommand(t *testing.T) {
	bin := t.TempDir()
	p := adapter.Params{BinDir: bin, Model: "/m", Device: "cuda:0", DType: "bf16", PromptLen: 128, NewTokens: 256, Warmup: 2,
		Iterations: 5, Seed: 1, Case: "p128-n256", Options: map[string]string{"attention": "padded"}, WorkDir: t.TempDir()}
	for _, e := range []string{"candle", "burn", "llamacpp", "mistralrs"} {
		n, _ := adapter.Lookup(e)
		_, err := n.Command(t.Context(), p)
		require.Error(t, err, e)
		require.Contains(t, err.Error(), "not found in "+bin, e)
		require.Contains(t, err.Error(), "scripts/build-", e)
	}
	n, _ := adapter.Lookup("pytorch")
	_, err := n.Command(t.Context(), p)
	require.ErrorContains(t, err, "bench.py not found")

	for _, name := range []string{"candle-bench", "burn-bench"} {
		require.NoError(t, os.WriteFile(filepath.Join(bin, name), []byte("#!/bin/sh\n"), 0o755))
	}
	n, _ = adapter.Lookup("burn")
	c, err := n.Command(t.Context(), p)
	require.NoError(t, err)
	require.Equal(t, "--model /m --device cuda:0 --dtype bf16 --prompt-len 128 --new 256 --warmup 2 --iters 5 --seed 1 --case p128-n256 --attention padded",
		strings.Join(c.Args, " "))
	require.Empty(t, c.Env)
	// autotune_level reaches burn-bench as the engine applies it: cubecl's level and that level's own store.
	p.Options = map[string]string{"attention": "padded", "autotune_level": "minimal"}
	c, err = n.Command(t.Context(), p)
	require.NoError(t, err)
	require.Equal(t, []string{"CUBECL_AUTOTUNE_LEVEL=minimal", "CUBECL_ENVIRONMENT=autotune-minimal"}, c.Env)
	require.True(t, strings.HasPrefix(c.String(), "CUBECL_AUTOTUNE_LEVEL=minimal CUBECL_ENVIRONMENT=autotune-minimal "+filepath.Join(bin, "burn-bench")+" --model /m"), c.String())
	p.Options = map[string]string{"attention": "padded"}
	p.Threads = 4
	n, _ = adapter.Lookup("candle")
	c, err = n.Command(t.Context(), p)
	require.NoError(t, err)
	require.Equal(t, "/m --device cuda:0 --dtype bf16 --prompt-len 128 --new 256 --warmup 2 --iters 5 --seed 1 --case p128-n256 --threads 4",
		strings.Join(c.Args, " "))

	script := filepath.Join(t.TempDir(), "bench.py")
	require.NoError(t, os.WriteFile(script, nil, 0o644))
	p.Getenv = func(k string) string {
		return map[string]string{"CIB_PYTORCH_BENCH": script, "CIB_PYTHON": "/venv/python"}[k]
	}
	n, _ = adapter.Lookup("pytorch")
	// The engine's loop options reach bench.py as its flags (sorted by option name); the defaults it runs anyway pass.
	p.Options = map[string]string{"mode": "compiled", "compile": "inductor-cublas", "tuning": "per-process", "attention": "flex",
		"cuda_graph": "on", "lookahead": "1", "wait": "spin", "prefill": "eager", "deterministic": "off"}
	c, err = n.Command(t.Context(), p)
	require.NoError(t, err)
	require.Equal(t, "/venv/python", c.Path)
	require.Equal(t, []string{script, "run"}, c.Args[:2])
	require.True(t, strings.HasSuffix(strings.Join(c.Args, " "), "--seed 1 --case p128-n256 --per-iter "+
		"--attention flex --compile inductor-cublas --cuda-graph on --lookahead 1 --tuning per-process"), strings.Join(c.Args, " "))
	// An option bench.py has no equivalent of would make the two sides run different loops.
	for _, o := range []map[string]string{{"wait": "block"}, {"prefill": "compiled"}, {"deterministic": "on"}, {"threads_per_op": "2"}} {
		_, err = n.Command(t.Context(), adapter.Params{BinDir: bin, Model: "/m", Options: o, Getenv: p.Getenv})
		require.ErrorContains(t, err, "bench.py has no equivalent", "%v", o)
	}
	p.Options = map[string]string{"mode": "eager"}
	_, err = n.Command(t.Context(), p)
	require.ErrorContains(t, err, "compiled mode's loop only")
}

// TestMistralrsRequest: `mistralrs native` gets the runner's prompt ids.
func TestMistralrsRequest(t *testing.T) {
	model := filepath.Join(t.TempDir(), "tiny")
	_, err := synth.Write(t.Context(), synth.Options{Shape: "tiny", Out: model, DType: "f32", Seed: 1})
	require.NoError(t, err)
	bin := t.TempDir()
	require.NoError(t, os.WriteFile(filepath.Join(bin, "mistralrs"), []byte("#!/bin/sh\n"), 0o755))
	n, _ := adapter.Lookup("mistralrs")
	c, err := n.Command(t.Context(), adapter.Params{BinDir: bin, Model: model, Device: "cpu", DType: "f32", PromptLen: 16,
		NewTokens: 8, Warmup: 1, Iterations: 2, Seed: 1, Case: "p16-n8"})
	require.NoError(t, err)
	require.Equal(t, []string{"native"}, c.Args)
	var req protocol.Request
	require.NoError(t, json.Unmarshal(c.Stdin, &req))
	require.Equal(t, workload.Prompt(1, "p16-n8", 16, 512), req.Cases[0].PromptTokens)
	require.Equal(t, 8, req.Cases[0].MaxNewTokens)
	require.Equal(t, 2, req.Iterations)
}

// TestRun drives the flow with a real native process (a shell script that
// prints candle-bench's lines) and a made-up runner side: the order of runs,
// the files, the summary, and a side with no successful run.
func TestRun(t *testing.T) {
	bin, dir := t.TempDir(), t.TempDir()
	fixture, err := filepath.Abs(filepath.Join("testdata", "candle-bench.out"))
	require.NoError(t, err)
	require.NoError(t, os.WriteFile(filepath.Join(bin, "candle-bench"),
		[]byte("#!/bin/sh\necho \"args: $*\" >&2\ncat '"+fixture+"'\n"), 0o755))
	n, _ := adapter.Lookup("candle")
	diverge := false
	launch := func(_ context.Context, round int, out string) ([]adapter.Iteration, error) {
		require.Equal(t, fmt.Sprintf("runner-r%d", round), filepath.Base(out))
		ids := []int{22, 97, 455, 497, 171, 137, 480, 288}
		if round == 2 && diverge {
			ids = []int{22, 97, 455, 1}
		}
		return []adapter.Iteration{{Warmup: true, DecodeTokS: 1}, {DecodeTokS: 3900, TTFTMs: 0.4, FirstIDs: ids}, {DecodeTokS: 3700, TTFTMs: 0.38, FirstIDs: ids}}, nil
	}
	o := adapter.Options{Params: adapter.Params{Engine: "candle", BinDir: bin, Model: "/m", Device: "cpu", DType: "f32", PromptLen: 16,
		NewTokens: 32, Warmup: 2, Iterations: 3, Seed: 1, Case: "p16-n32"}, Rounds: 2, Tolerance: 0.03, Dir: dir}
	// ABBA: round 1 runs the native tool before the runner launch, round 2 after it.
	var nativeBefore []bool
	s, err := adapter.Run(t.Context(), n, o, func(ctx context.Context, r int, out string) ([]adapter.Iteration, error) {
		_, err := os.Stat(filepath.Join(dir, fmt.Sprintf("native-r%d.out", r)))
		nativeBefore = append(nativeBefore, err == nil)
		return launch(ctx, r, out)
	})
	require.NoError(t, err)
	require.Equal(t, []bool{true, false}, nativeBefore, "native run before the runner launch, per round")
	require.Len(t, s.Runs, 4)
	require.Equal(t, []string{"native", "runner", "runner", "native"}, []string{s.Runs[0].Side, s.Runs[1].Side, s.Runs[2].Side, s.Runs[3].Side})
	require.Equal(t, []int{1, 1, 2, 2}, []int{s.Runs[0].Round, s.Runs[1].Round, s.Runs[2].Round, s.Runs[3].Round})
	require.Len(t, s.Runs[0].Iterations, 3, "warm-ups left out")
	require.Len(t, s.Runs[1].Iterations, 2)
	require.Len(t, s.Verdicts, 2, "decode and TTFT")
	// Native medians 3804.56 (both rounds: the same fixture), runner 3800: the ratio is 3800/3804.56.
	require.InDelta(t, 3800/3804.56, s.Verdicts[0].Ratio, 1e-6)
	require.True(t, s.Within)
	require.Equal(t, "first output ids [22 97 455 497 171 137 480 288] agree in all 10 timed iterations that print them (6 native)", s.Tokens)
	for _, f := range []string{"native-r1.out", "native-r1.err", "native-r2.out", adapter.SummaryFile, adapter.ReportFile} {
		require.FileExists(t, filepath.Join(dir, f))
	}
	errOut, _ := os.ReadFile(filepath.Join(dir, "native-r1.err"))
	require.Contains(t, string(errOut), "args: /m --device cpu --dtype f32 --prompt-len 16 --new 32")
	var back adapter.Summary
	b, _ := os.ReadFile(filepath.Join(dir, adapter.SummaryFile))
	require.NoError(t, json.Unmarshal(b, &back))
	require.Equal(t, "candle-bench", back.Tool)
	require.Equal(t, "p16-n32", back.Params.Case)
	report, _ := os.ReadFile(filepath.Join(dir, adapter.ReportFile))
	require.Contains(t, string(report), "hierarchical bootstrap")
	require.Contains(t, string(report), "| 2 | runner | 3800.00 |")

	// --native-spin: a third run per round, judged on its own lines, not gating.
	o.Dir, o.Spin = t.TempDir(), true
	s, err = adapter.Run(t.Context(), n, o, launch)
	require.NoError(t, err)
	var sides []string
	for _, r := range s.Runs {
		sides = append(sides, r.Side)
	}
	require.Equal(t, []string{"native", "native+spin", "runner", "runner", "native", "native+spin"}, sides)
	require.Len(t, s.SpinVerdicts, 2)
	require.Equal(t, 2, s.SpinVerdicts[0].NativeRuns)
	require.FileExists(t, filepath.Join(o.Dir, "native-spin-r2.out"))
	o.Spin = false

	// --prime: one runner launch before round 1, recorded, judged nowhere (here 30% slow, as a machine's first is).
	o.Dir, o.Prime = t.TempDir(), true
	s, err = adapter.Run(t.Context(), n, o, func(ctx context.Context, r int, out string) ([]adapter.Iteration, error) {
		if r == 0 {
			require.Equal(t, "prime", filepath.Base(out))
			return []adapter.Iteration{{DecodeTokS: 2660, TTFTMs: 0.9}}, nil
		}
		return launch(ctx, r, out)
	})
	require.NoError(t, err)
	require.Equal(t, adapter.SidePrime, s.Runs[0].Side)
	require.Equal(t, 0, s.Runs[0].Round)
	require.Len(t, s.Runs, 5)
	require.Equal(t, 2, s.Verdicts[0].RunnerRuns, "the rounds' launches only")
	require.InDelta(t, 3800/3804.56, s.Verdicts[0].Ratio, 1e-6, "the priming launch moves no verdict")
	o.Prime = false

	// A runner launch with other tokens: said, not judged.
	diverge = true
	o.Dir = t.TempDir()
	s, err = adapter.Run(t.Context(), n, o, launch)
	require.NoError(t, err)
	require.True(t, s.Within)
	require.Equal(t, "first output ids differ: runner [22 97 455 497 171 137 480 288], runner round 2 [22 97 455 1]", s.Tokens)
	diverge = false

	// A native tool that fails every time: the rounds go on, the error says which side.
	require.NoError(t, os.WriteFile(filepath.Join(bin, "candle-bench"), []byte("#!/bin/sh\necho 'bench: load: boom' >&2\nexit 1\n"), 0o755))
	dir2 := t.TempDir()
	o.Dir = dir2
	s, err = adapter.Run(t.Context(), n, o, launch)
	require.ErrorIs(t, err, adapter.ErrNoRuns)
	require.Contains(t, err.Error(), "native side")
	require.Contains(t, s.Runs[0].Error, "bench: load: boom")
	require.False(t, s.Within)
	require.FileExists(t, filepath.Join(dir2, adapter.ReportFile))
	report, _ = os.ReadFile(filepath.Join(dir2, adapter.ReportFile))
	require.Contains(t, string(report), "FAILED: candle-bench: exit status 1")
	require.False(t, errors.Is(err, context.Canceled))
}

// TestComparePaired: with MinPairs rounds or more the verdict is paired by round. The card drifts 30% over the
// check (the H200 candle check of 2026-12-02 rose from 129 to 172 tok/s on both sides) while each round's runner
// launch sits within 1% of its native run: the unpaired CI spans the drift, the paired one does not.
func TestComparePaired(t *testing.T) {
	native := []float64{130, 145, 160, 172}
	runner := []float64{131, 144.2, 161.1, 171.5}
	var gn, gr [][]float64
	var pairs []adapter.Pair
	for i := range native {
		gn = append(gn, []float64{native[i] * 0.999, native[i], native[i] * 1.001})
		gr = append(gr, []float64{runner[i] * 0.999, runner[i], runner[i] * 1.001})
		pairs = append(pairs, adapter.Pair{Round: i + 1, Native: native[i], Runner: runner[i]})
	}
	v := adapter.Compare(adapter.MetricDecode, gn, gr, pairs, 0.03)
	require.Equal(t, "paired", v.Method)
	require.NotNil(t, v.Paired)
	require.Equal(t, 4, v.Paired.N)
	require.True(t, v.Within)
	require.True(t, v.Resolved, "paired CI %.4f–%.4f", v.Lo, v.Hi)
	require.Less(t, v.Unpaired[1], 0.97, "the unpaired CI spans the drift")
	require.Contains(t, v.Line(), "paired by round over 4 rounds")

	// The H200 candle check itself (run medians per round, 2026-12-02): SciPy's t interval of the log ratios,
	// 0.9532–1.1348 (stats.TestPairedRatioScipy), unresolved, with a round count to plan by.
	h := []adapter.Pair{{1, 129.40, 136.43}, {2, 148.83, 159.18}, {3, 158.45, 171.36}, {4, 172.33, 165.34}}
	var hn, hr [][]float64
	for _, p := range h {
		hn, hr = append(hn, []float64{p.Native}), append(hr, []float64{p.Runner})
	}
	v = adapter.Compare(adapter.MetricDecode, hn, hr, h, 0.03)
	require.InDelta(t, 0.9532282258240896, v.Lo, 1e-9)
	require.InDelta(t, 1.1347679067134062, v.Hi, 1e-9)
	require.False(t, v.Within)
	require.False(t, v.Resolved)
	require.Greater(t, v.RoundsNeeded, 4)
	require.Contains(t, v.Line(), fmt.Sprintf("(about %d rounds at this round-to-round spread of the ratio)", v.RoundsNeeded))

	// Two rounds: the t interval would have one degree of freedom; the bootstrap decides, the pairs are kept.
	v = adapter.Compare(adapter.MetricDecode, gn[:2], gr[:2], pairs[:2], 0.03)
	require.Equal(t, "unpaired", v.Method)
	require.NotNil(t, v.Paired)
	require.Equal(t, v.Unpaired[0], v.Ratio)
}
