package cli_test

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/cuda-inference-benchmarks/cib/runner/internal/adapter"
	"github.com/cuda-inference-benchmarks/cib/runner/internal/cli"
	"github.com/cuda-inference-benchmarks/cib/runner/internal/testbin"
)

// TestAdapterUsage: the errors a user meets before anything runs.
func TestAdapterUsage(t *testing.T) {
	bin := testbin.Dir(t)
	model := testbin.TinyModel(t)
	// candle's engine binary present (a copy of the reference engine), its native tool not.
	half := t.TempDir()
	ref, err := os.ReadFile(filepath.Join(bin, "reference"))
	require.NoError(t, err)
	require.NoError(t, os.WriteFile(filepath.Join(half, "candle"), ref, 0o755))
	tests := []struct {
		name string
		args []string
		want string
	}{
		{name: "no engine", args: []string{"adapter", "--model", model}, want: "want one ENGINE"},
		{name: "engine without a native tool", args: []string{"adapter", "reference", "--model", model, "--bin-dir", bin},
			want: `engine "reference": no native tool registered for the adapter check (engines with one: burn, candle, llamacpp, mistralrs, pytorch)`},
		{name: "engine binary missing", args: []string{"adapter", "candle", "--model", model, "--bin-dir", t.TempDir()}, want: `engine "candle" not found`},
		{name: "native tool missing", args: []string{"adapter", "candle", "--model", model, "--bin-dir", half},
			want: "native tool candle-bench not found in " + half + " (build it: scripts/build-candle.sh"},
		{name: "model without config.json", args: []string{"adapter", "candle", "--model", t.TempDir(), "--bin-dir", half},
			want: "runner models synth"},
		{name: "bad tolerance", args: []string{"adapter", "candle", "--model", model, "--tolerance", "3"}, want: "--tolerance 3"},
		{name: "bad metric", args: []string{"adapter", "candle", "--model", model, "--metrics", "tpot"}, want: `--metrics "tpot"`},
	}
	if nodes, _ := filepath.Glob("/dev/nvidia[0-9]*"); len(nodes) == 0 {
		// Every tool present (shell stand-ins that must never run): the device is what is wrong.
		full := t.TempDir()
		require.NoError(t, os.WriteFile(filepath.Join(full, "candle"), ref, 0o755))
		require.NoError(t, os.WriteFile(filepath.Join(full, "candle-bench"), []byte("#!/bin/sh\nexit 99\n"), 0o755))
		tests = append(tests, struct {
			name string
			args []string
			want string
		}{name: "cuda without a GPU", args: []string{"adapter", "candle", "--model", model, "--bin-dir", full}, want: "device cuda:0: no NVIDIA GPU on this machine"})
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			out := t.TempDir()
			o := run(t, t.Context(), append(tt.args, "--out", out)...)
			require.Equal(t, cli.ExitUsage, o.code, "stderr: %s", o.stderr)
			require.Contains(t, o.stderr, tt.want)
			ents, _ := os.ReadDir(out)
			require.Empty(t, ents, "nothing written before the check can run")
		})
	}
}

// TestAdapterEngines runs the whole check with real processes on CPU for each
// engine whose native tool is built here: mistralrs (`mistralrs native`, in
// scripts/test.sh's cibtest build) and pytorch (bench.py, with the torch venv)
// in CI; candle-bench and llamacpp-bench where their release builds are in
// bin/. No timing is asserted (a loaded CI machine decides nothing about ±3%):
// the flow, the files, the parsed iterations and the exit code's meaning.
func TestAdapterEngines(t *testing.T) {
	root, err := filepath.Abs(filepath.Join("..", "..", ".."))
	require.NoError(t, err)
	find := func(name string) string {
		for _, d := range []string{"bin", filepath.Join("bin", "cibtest")} {
			p := filepath.Join(root, d, name)
			if st, err := os.Stat(p); err == nil && st.Mode()&0o111 != 0 {
				return p
			}
		}
		return ""
	}
	python := torchPython()
	model := testbin.TinyModel(t)
	tests := []struct {
		name    string
		bins    []string
		inCI    bool // scripts/test.sh builds it
		args    []string
		rounds  int
		hasTTFT bool
	}{
		{name: "mistralrs", bins: []string{"mistralrs"}, inCI: true, rounds: 2},
		{name: "pytorch:compile=none", bins: []string{"pytorch"}, inCI: true, rounds: 1, hasTTFT: true,
			args: []string{"--new-tokens", "8", "--warmup", "1", "--iterations", "2"}},
		{name: "candle", bins: []string{"candle", "candle-bench"}, rounds: 2, hasTTFT: true, args: []string{"--threads", "1"}},
		{name: "llamacpp", bins: []string{"llamacpp", "llamacpp-bench"}, rounds: 2, hasTTFT: true, args: []string{"--threads", "1"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			bin := t.TempDir()
			for _, b := range tt.bins {
				p := find(b)
				if p == "" {
					why := b + " is not built in bin/ or bin/cibtest/"
					if tt.inCI && os.Getenv("CI") != "" {
						t.Fatal("CI: " + why)
					}
					t.Skip(why)
				}
				require.NoError(t, os.Symlink(p, filepath.Join(bin, b)))
			}
			env := []string{"PATH=" + os.Getenv("PATH"), "HOME=" + os.Getenv("HOME"), "CIB_CACHE=" + t.TempDir()}
			if strings.HasPrefix(tt.name, "pytorch") {
				if python == "" {
					if os.Getenv("CI") != "" {
						t.Fatal("CI: no torch interpreter (CIB_PYTHON unset, no setup-torch.sh venv)")
					}
					t.Skip("no torch interpreter: run scripts/setup-torch.sh or set CIB_PYTHON")
				}
				env = append(env, "CIB_PYTHON="+python, "CIB_PYTORCH_BENCH="+filepath.Join(root, "engines", "pytorch", "bench", "bench.py"))
			}
			out := t.TempDir()
			args := append([]string{"runner", "adapter", tt.name, "--model", model, "--bin-dir", bin, "--out", out,
				"--device", "cpu", "--dtype", "f32", "--prompt-len", "16", "--new-tokens", "32", "--warmup", "1", "--iterations", "3",
				"--rounds", strconv.Itoa(tt.rounds)}, tt.args...)
			var so, se bytes.Buffer
			code := cli.Run(t.Context(), args, strings.NewReader(""), &so, &se, env)
			require.Contains(t, []int{cli.ExitOK, cli.ExitOutsideTolerance}, code, "exit code: within or outside tolerance, nothing else\nstdout: %s\nstderr: %s", so.String(), se.String())
			engine, _, _ := strings.Cut(tt.name, ":")
			require.Contains(t, so.String(), "adapter "+engine+" decode tok/s: runner ")
			require.Equal(t, tt.hasTTFT, strings.Contains(so.String(), "TTFT ms: runner "), "a TTFT verdict where the tool prints TTFT")
			if tt.hasTTFT { // the tools that print TTFT print the first output ids too: same weights, prompt ids and greedy loop
				require.Regexp(t, `adapter `+engine+` tokens: first output ids \[[0-9 ]+\] agree in all`, so.String())
			}
			for r := 1; r <= tt.rounds; r++ {
				require.Contains(t, se.String(), "round "+strconv.Itoa(r)+" native: median decode")
				require.Contains(t, se.String(), "round "+strconv.Itoa(r)+" runner: median decode")
			}

			ents, err := os.ReadDir(out)
			require.NoError(t, err)
			require.Len(t, ents, 1)
			require.True(t, strings.HasSuffix(ents[0].Name(), "-adapter-"+engine), ents[0].Name())
			dir := filepath.Join(out, ents[0].Name())
			for _, f := range []string{adapter.SummaryFile, adapter.ReportFile, "runner.yaml", "native-r1.out", "native-r1.err", "runner-r1.log"} {
				require.FileExists(t, filepath.Join(dir, f))
			}
			runs, _ := filepath.Glob(filepath.Join(dir, "runner-r1", "*", "runs.jsonl"))
			require.Len(t, runs, 1, "the runner launch's own results directory")
			var s adapter.Summary
			b, err := os.ReadFile(filepath.Join(dir, adapter.SummaryFile))
			require.NoError(t, err)
			require.NoError(t, json.Unmarshal(b, &s))
			require.Len(t, s.Runs, 2*tt.rounds+1, "the priming launch and the rounds")
			require.Equal(t, adapter.SidePrime, s.Runs[0].Side)
			s.Runs = s.Runs[1:]
			iters := 3
			if strings.HasPrefix(tt.name, "pytorch") {
				iters = 2
			}
			for _, r := range s.Runs {
				require.Empty(t, r.Error, "%s round %d", r.Side, r.Round)
				require.Len(t, r.Iterations, iters, "%s round %d: timed iterations, warm-ups left out", r.Side, r.Round)
			}
			require.Equal(t, code == cli.ExitOK, s.Within, "exit code and summary agree")
			report, _ := os.ReadFile(filepath.Join(dir, adapter.ReportFile))
			require.Contains(t, string(report), "# Adapter overhead: "+engine)
		})
	}
}

// torchPython is $CIB_PYTHON or the setup-torch.sh venv's interpreter, ""
// when neither exists.
func torchPython() string {
	if p := os.Getenv("CIB_PYTHON"); p != "" {
		return p
	}
	cache := os.Getenv("CIB_CACHE")
	if cache == "" {
		home, _ := os.UserHomeDir()
		cache = filepath.Join(home, ".cache", "cib")
	}
	p := filepath.Join(cache, "torch-venv", "bin", "python")
	if _, err := os.Stat(p); err != nil {
		return ""
	}
	return p
}
