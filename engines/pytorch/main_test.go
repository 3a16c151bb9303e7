package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/cuda-inference-benchmarks/cib/protocol"
	"github.com/cuda-inference-benchmarks/cib/protocol/enginetest"
)

// These tests run the real binary on the real Python worker (torch on CPU, fp32) against a tiny Llama. They
// need an interpreter with torch and transformers: $CIB_PYTHON, else the venv scripts/setup-torch.sh makes.
// Without one they skip, except under CI, where they fail.

var (
	binPath   string // the engine binary, built by TestMain
	python    string // interpreter with torch, "" when absent
	modelDir  string // tiny f32 model
	modelFrom string // what wrote modelDir
	setupErr  error  // why python/model are unusable
)

const vocab = 512 // the tiny shape's vocabulary

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "pytorch-test-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	code := func() int {
		defer os.RemoveAll(dir)
		binPath = filepath.Join(dir, "pytorch")
		if out, err := exec.Command("go", "build", "-o", binPath, ".").CombinedOutput(); err != nil {
			fmt.Fprintf(os.Stderr, "go build: %v\n%s", err, out)
			return 1
		}
		python, setupErr = enginetest.TorchPython("torch", "transformers", "safetensors")
		if setupErr == nil {
			modelDir = filepath.Join(dir, "tiny")
			modelFrom, setupErr = synthTiny(modelDir)
		}
		return m.Run()
	}()
	os.Exit(code)
}

// binDir is where the runner and the other engines are built (scripts/build-*.sh).
func binDir() string {
	if d := os.Getenv("CIB_BIN_DIR"); d != "" {
		return d
	}
	d, _ := filepath.Abs(filepath.Join("..", "..", "bin"))
	return d
}

// synthTiny writes the tiny model with the runner's synthesizer when bin/runner has it, else with
// bench/bench.py synth (same shape, different random values).
func synthTiny(out string) (string, error) {
	runner := filepath.Join(binDir(), "runner")
	if _, err := os.Stat(runner); err == nil {
		cmd := exec.Command(runner, "models", "synth", "--shape", "tiny", "--dtype", "f32", "--out", out)
		if b, err := cmd.CombinedOutput(); err == nil {
			return "runner models synth --shape tiny --dtype f32", nil
		} else {
			fmt.Fprintf(os.Stderr, "runner models synth failed (%v), using bench.py synth:\n%s\n", err, b)
			os.RemoveAll(out)
		}
	}
	if b, err := exec.Command(python, filepath.Join("bench", "bench.py"), "synth", "--out", out).CombinedOutput(); err != nil {
		return "", fmt.Errorf("bench.py synth: %v\n%s", err, b)
	}
	return "bench/bench.py synth", nil
}

func needTorch(t *testing.T) {
	t.Helper()
	if setupErr == nil {
		return
	}
	if os.Getenv("CI") != "" {
		t.Fatalf("pytorch engine test setup under CI: %v", setupErr)
	}
	t.Skipf("pytorch engine tests need torch: %v", setupErr)
}

// runBin runs the engine's "run" with env added to the test's environment
// (CPU torch on the tiny model can take minutes on 2 cores).
func runBin(t *testing.T, bin string, env []string, req any) enginetest.Result {
	t.Helper()
	return enginetest.RunEnv(t, bin, env, 8*time.Minute, req)
}

func pyEnv() []string { return []string{"CIB_PYTHON=" + python} }

func tinyRequest(opts map[string]string) protocol.Request {
	return protocol.Request{
		Protocol: protocol.Version, Model: modelDir, Device: "cpu", DType: "f32", Threads: 1,
		Options: opts, Warmup: 1, Iterations: 2,
		Cases: []protocol.Case{
			{Name: "b1", PromptTokens: []int{1, 17, 42, 300, 5, 99, 7, 256}, MaxNewTokens: 16, BatchSize: 1, Greedy: true, IgnoreEOS: true},
			{Name: "b2", PromptTokens: []int{1, 3, 4}, MaxNewTokens: 6, BatchSize: 2, Greedy: true, IgnoreEOS: true},
		},
	}
}

// checkRun asserts the event stream of a successful run and returns the tokens of the first timed
// iteration of each case.
func checkRun(t *testing.T, req protocol.Request, res enginetest.Result) [][][]int {
	t.Helper()
	require.Equal(t, 0, res.Code, "exit code; stderr:\n%s", res.Stderr)
	perCase := req.Warmup + req.Iterations
	require.Len(t, res.Events, 2+perCase*len(req.Cases), "events; stderr:\n%s", res.Stderr)
	require.Equal(t, protocol.EventLoaded, res.Events[0].Type)
	require.Equal(t, protocol.EventDone, res.Last().Type)
	assert.Equal(t, perCase*len(req.Cases), res.Last().Done.Iterations)
	out := make([][][]int, len(req.Cases))
	for i, ev := range res.Events[1 : len(res.Events)-1] {
		require.Equal(t, protocol.EventIteration, ev.Type)
		it := ev.Iteration
		c := req.Cases[it.Case]
		assert.Equal(t, i/perCase, it.Case)
		assert.Len(t, it.TokenNs, c.MaxNewTokens, "case %s token_ns", c.Name)
		require.Len(t, it.OutputTokens, c.BatchSize, "case %s rows", c.Name)
		for _, row := range it.OutputTokens {
			require.Len(t, row, c.MaxNewTokens)
			for _, id := range row {
				assert.True(t, id >= 0 && id < vocab, "token id %d outside the vocabulary", id)
			}
			assert.Equal(t, it.OutputTokens[0], row, "batch rows of one prompt must agree")
		}
		assert.Positive(t, it.TokenNs[0], "first token offset")
		if out[it.Case] == nil {
			out[it.Case] = it.OutputTokens
		} else {
			assert.Equal(t, out[it.Case], it.OutputTokens, "case %s: greedy tokens differ between iterations", c.Name)
		}
	}
	return out
}

func TestInfo(t *testing.T) {
	needTorch(t)
	cmd := exec.Command(binPath, "info")
	cmd.Env = append(os.Environ(), pyEnv()...)
	out, err := cmd.Output()
	require.NoError(t, err)
	var info protocol.Info
	require.NoError(t, json.Unmarshal(out, &info))
	assert.Equal(t, "pytorch", info.Name)
	assert.Equal(t, "torch", info.Library)
	assert.NotEmpty(t, info.LibraryVersion)
	for _, k := range []string{"torch", "transformers", "python", "cuda"} {
		assert.NotEmpty(t, info.Versions[k], "versions[%s]", k)
	}
	assert.Contains(t, info.Devices, "cpu")
	for _, k := range []string{"mode", "compile", "prefill", "cuda_graph", "lookahead", "wait", "tuning"} {
		assert.Contains(t, info.Options, k)
	}
	assert.True(t, info.Capabilities.StreamingTimestamps)
}

func TestUsage(t *testing.T) {
	var stdout, stderr bytes.Buffer
	code := run(context.Background(), nil, strings.NewReader(""), &stdout, &stderr, []string{"CIB_PYTHON=/nonexistent/python"})
	assert.Equal(t, 64, code)
	assert.Contains(t, stderr.String(), "usage: pytorch")
}

// TestParity runs every mode on the same request: greedy tokens must be identical across modes, and equal
// to the fp32 reference engine's when its binary is built.
func TestParity(t *testing.T) {
	needTorch(t)
	t.Logf("model: %s", modelFrom)
	tests := []struct {
		name string
		opts map[string]string
		mode string
	}{
		{name: "eager", opts: map[string]string{"mode": "eager"}, mode: "eager"},
		{name: "default is eager", opts: nil, mode: "eager"},
		{name: "compiled", opts: map[string]string{"mode": "compiled"}, mode: "compiled"},
		{name: "compiled aot_eager", opts: map[string]string{"mode": "compiled", "compile": "aot_eager", "prefill": "compiled", "lookahead": "1"}, mode: "compiled"},
		// FlexAttention in the decode step: the same tokens, in eager ops and traced as one graph (fullgraph).
		{name: "compiled flex", opts: map[string]string{"mode": "compiled", "attention": "flex"}, mode: "compiled"},
		{name: "compiled aot_eager flex", opts: map[string]string{"mode": "compiled", "compile": "aot_eager", "attention": "flex"}, mode: "compiled"},
		// The decode step's attention in plain ops (fp32 scores and softmax): the same tokens, eager and traced.
		{name: "compiled math attention", opts: map[string]string{"mode": "compiled", "attention": "math"}, mode: "compiled"},
		{name: "compiled aot_eager math attention", opts: map[string]string{"mode": "compiled", "compile": "aot_eager", "attention": "math"}, mode: "compiled"},
		// The gate/up projection as two matmuls over views of the fused weights: the same arithmetic, so the same tokens.
		{name: "compiled mlp split", opts: map[string]string{"mode": "compiled", "mlp": "split"}, mode: "compiled"},
		{name: "compiled aot_eager mlp split", opts: map[string]string{"mode": "compiled", "compile": "aot_eager", "mlp": "split"}, mode: "compiled"},
		// The additive mask once per step and one K/V write into a stacked cache: the same arithmetic, so the same tokens.
		{name: "compiled fusion more", opts: map[string]string{"mode": "compiled", "fusion": "more"}, mode: "compiled"},
		{name: "compiled aot_eager fusion more", opts: map[string]string{"mode": "compiled", "compile": "aot_eager", "fusion": "more", "prefill": "compiled"}, mode: "compiled"},
		// Prefill over the prompt's own keys, causal and unmasked: the same attention, so the same tokens (eager and traced).
		{name: "compiled prefill causal", opts: map[string]string{"mode": "compiled", "prefill_attention": "causal"}, mode: "compiled"},
		{name: "compiled aot_eager prefill causal", opts: map[string]string{"mode": "compiled", "compile": "aot_eager", "prefill": "compiled", "prefill_attention": "causal"}, mode: "compiled"},
		// deterministic=on (issue 23's diagnostic) changes which kernels run, never the tokens of a deterministic device.
		{name: "eager deterministic", opts: map[string]string{"mode": "eager", "deterministic": "on"}, mode: "eager"},
		{name: "compiled deterministic", opts: map[string]string{"mode": "compiled", "deterministic": "on"}, mode: "compiled"},
	}
	var want [][][]int
	var wantFrom string
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			req := tinyRequest(tt.opts)
			res := runBin(t, binPath, pyEnv(), req)
			got := checkRun(t, req, res)
			l := res.Events[0].Loaded
			assert.Equal(t, tt.mode, l.Settings["mode"])
			assert.Equal(t, "f32", l.DType)
			assert.Positive(t, l.ContextInitNs)
			assert.Positive(t, l.WeightsToHostNs)
			if tt.opts["deterministic"] == "on" {
				assert.Contains(t, l.Settings["deterministic"], "use_deterministic_algorithms(True")
				if tt.mode == "compiled" {
					assert.Contains(t, l.Settings["deterministic"], "_inductor.config.deterministic")
				}
			} else {
				assert.NotContains(t, l.Settings, "deterministic")
			}
			if tt.opts["fusion"] == "more" {
				assert.Contains(t, l.Settings["fusion"], "once per step")
			} else if tt.mode == "compiled" {
				assert.Contains(t, l.Settings["fusion"], "gpt-fast")
			}
			if tt.opts["prefill_attention"] == "causal" {
				assert.Contains(t, l.Settings["prefill_attention"], "is_causal=True")
			} else if tt.mode == "compiled" {
				assert.Contains(t, l.Settings["prefill_attention"], "masked")
			}
			switch tt.opts["attention"] {
			case "flex":
				assert.Contains(t, l.Settings["attention"], "FlexAttention")
			case "math":
				assert.Contains(t, l.Settings["attention"], "plain ops")
			}
			if tt.opts["mlp"] == "split" {
				assert.Contains(t, l.Settings["mlp"], "split")
			} else if tt.mode == "compiled" {
				assert.Contains(t, l.Settings["mlp"], "fused")
			}
			if tt.opts["compile"] == "aot_eager" {
				assert.Contains(t, l.Settings["compile_decode"], "aot_eager")
				if tt.opts["prefill"] == "compiled" {
					assert.Contains(t, l.Settings["prefill"], "aot_eager")
				}
			}
			if want == nil {
				want, wantFrom = got, tt.name
				return
			}
			assert.Equal(t, want, got, "tokens of %s vs %s", tt.name, wantFrom)
		})
	}
	t.Run("reference", func(t *testing.T) {
		ref := filepath.Join(binDir(), "reference")
		if _, err := os.Stat(ref); err != nil {
			if os.Getenv("CI") != "" {
				t.Fatalf("reference engine not built at %s", ref)
			}
			t.Skipf("reference engine not built at %s", ref)
		}
		require.NotNil(t, want, "no pytorch run succeeded")
		req := tinyRequest(nil)
		got := checkRun(t, req, runBin(t, ref, nil, req))
		assert.Equal(t, want, got, "tokens of the reference vs pytorch %s", wantFrom)
	})
}

func TestErrors(t *testing.T) {
	needTorch(t)
	tests := []struct {
		name     string
		env      []string
		mutate   func(*protocol.Request)
		code     int
		errCode  string
		contains string
	}{
		{name: "bad mode", mutate: func(r *protocol.Request) { r.Options = map[string]string{"mode": "fast"} },
			code: 2, errCode: protocol.CodeBadRequest, contains: "mode"},
		{name: "bad compile", mutate: func(r *protocol.Request) { r.Options = map[string]string{"mode": "compiled", "compile": "jit"} },
			code: 2, errCode: protocol.CodeBadRequest, contains: "compile"},
		{name: "bad wait", mutate: func(r *protocol.Request) { r.Options = map[string]string{"mode": "compiled", "wait": "yield"} },
			code: 2, errCode: protocol.CodeBadRequest, contains: "wait"},
		{name: "blocking wait on cpu", mutate: func(r *protocol.Request) { r.Options = map[string]string{"mode": "compiled", "wait": "block"} },
			code: 2, errCode: protocol.CodeUnsupported, contains: "wait=block needs a cuda device"},
		{name: "bad attention", mutate: func(r *protocol.Request) { r.Options = map[string]string{"mode": "compiled", "attention": "paged"} },
			code: 2, errCode: protocol.CodeBadRequest, contains: "attention"},
		{name: "bad mlp", mutate: func(r *protocol.Request) { r.Options = map[string]string{"mode": "compiled", "mlp": "interleaved"} },
			code: 2, errCode: protocol.CodeBadRequest, contains: "mlp"},
		{name: "bad fusion", mutate: func(r *protocol.Request) { r.Options = map[string]string{"mode": "compiled", "fusion": "all"} },
			code: 2, errCode: protocol.CodeBadRequest, contains: "option fusion='all': want one of gpt-fast, more"},
		{name: "fusion in eager mode", mutate: func(r *protocol.Request) { r.Options = map[string]string{"mode": "eager", "fusion": "more"} },
			code: 2, errCode: protocol.CodeBadRequest, contains: "option fusion applies to mode=compiled only"},
		{name: "attention in eager mode", mutate: func(r *protocol.Request) { r.Options = map[string]string{"mode": "eager", "attention": "flex"} },
			code: 2, errCode: protocol.CodeBadRequest, contains: "mode=compiled only"},
		{name: "bad tuning", mutate: func(r *protocol.Request) { r.Options = map[string]string{"mode": "compiled", "tuning": "never"} },
			code: 2, errCode: protocol.CodeBadRequest, contains: "tuning"},
		{name: "tuning in eager mode", mutate: func(r *protocol.Request) { r.Options = map[string]string{"mode": "eager", "tuning": "cached"} },
			code: 2, errCode: protocol.CodeBadRequest, contains: "tuning"},
		{name: "wait in eager mode", mutate: func(r *protocol.Request) { r.Options = map[string]string{"mode": "eager", "wait": "block"} },
			code: 2, errCode: protocol.CodeBadRequest, contains: "mode=compiled only"},
		{name: "bad refine", mutate: func(r *protocol.Request) { r.Options = map[string]string{"mode": "compiled", "refine": "always"} },
			code: 2, errCode: protocol.CodeBadRequest, contains: "option refine='always': want one of off, in-graph"},
		{name: "refine in eager mode", mutate: func(r *protocol.Request) { r.Options = map[string]string{"mode": "eager", "refine": "in-graph"} },
			code: 2, errCode: protocol.CodeBadRequest, contains: "option refine applies to mode=compiled only"},
		{name: "refine without a cuda graph", mutate: func(r *protocol.Request) { r.Options = map[string]string{"mode": "compiled", "refine": "in-graph"} },
			code: 2, errCode: protocol.CodeUnsupported, contains: "refine=in-graph times the decode step's CUDA graph"},
		{name: "bad deterministic", mutate: func(r *protocol.Request) { r.Options = map[string]string{"mode": "eager", "deterministic": "yes"} },
			code: 2, errCode: protocol.CodeBadRequest, contains: "deterministic"},
		{name: "unknown option", mutate: func(r *protocol.Request) { r.Options = map[string]string{"python": "python3"} },
			code: 2, errCode: protocol.CodeBadRequest, contains: "option \"python\""},
		{name: "token outside vocabulary", mutate: func(r *protocol.Request) { r.Cases[0].PromptTokens = []int{1, vocab + 88} },
			code: 2, errCode: protocol.CodeBadRequest, contains: "600"},
		{name: "cuda graph on cpu", mutate: func(r *protocol.Request) { r.Options = map[string]string{"mode": "compiled", "cuda_graph": "on"} },
			code: 2, errCode: protocol.CodeUnsupported, contains: "cuda"},
		{name: "missing model", mutate: func(r *protocol.Request) { r.Model = filepath.Join(t.TempDir(), "none") },
			code: 1, errCode: protocol.CodeLoad, contains: "config.json"},
		{name: "no interpreter", env: []string{"CIB_PYTHON=/nonexistent/python3"},
			code: 1, errCode: protocol.CodeLoad, contains: "start python worker"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			req := tinyRequest(map[string]string{"mode": "compiled"})
			if tt.mutate != nil {
				tt.mutate(&req)
			}
			env := pyEnv()
			if tt.env != nil {
				env = tt.env
			}
			res := runBin(t, binPath, env, req)
			assert.Equal(t, tt.code, res.Code, "exit code; stderr:\n%s", res.Stderr)
			ev := res.Last()
			require.Equal(t, protocol.EventError, ev.Type, "last event; stderr:\n%s", res.Stderr)
			assert.Equal(t, tt.errCode, ev.Error.Code)
			assert.Contains(t, ev.Error.Message, tt.contains)
		})
	}
}

// TestWorkerKilled kills the Python child mid-run: the engine must report it as an error event with the
// worker's exit status and stderr tail, and exit 1.
func TestWorkerKilled(t *testing.T) {
	needTorch(t)
	req := tinyRequest(map[string]string{"mode": "compiled"})
	req.Iterations = 1_000_000
	b, err := json.Marshal(req)
	require.NoError(t, err)
	cmd := exec.Command(binPath, "run")
	cmd.Env = append(os.Environ(), pyEnv()...)
	cmd.Stdin = bytes.NewReader(b)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	stdout, err := cmd.StdoutPipe()
	require.NoError(t, err)
	require.NoError(t, cmd.Start())
	defer cmd.Process.Kill()

	d := protocol.NewDecoder(stdout)
	var events []protocol.Event
	for d.Scan() {
		events = append(events, d.Event())
		if d.Event().Type == protocol.EventIteration {
			break
		}
	}
	require.NotEmpty(t, events, "stderr:\n%s", stderr.String())
	require.Equal(t, protocol.EventIteration, events[len(events)-1].Type, "stderr:\n%s", stderr.String())
	child := childPID(t, cmd.Process.Pid)
	require.NoError(t, syscall.Kill(child, syscall.SIGKILL))
	for d.Scan() {
		events = append(events, d.Event())
	}
	require.NoError(t, d.Err())
	err = cmd.Wait()
	var ee *exec.ExitError
	require.ErrorAs(t, err, &ee)
	assert.Equal(t, 1, ee.ExitCode())
	last := events[len(events)-1]
	require.Equal(t, protocol.EventError, last.Type)
	assert.Equal(t, protocol.CodeRuntime, last.Error.Code)
	assert.Contains(t, last.Error.Message, "python worker exited (signal: killed)")
	assert.Contains(t, last.Error.Message, "stderr tail")
}

// childPID finds the process whose parent is pid (the engine has exactly one child, the worker).
func childPID(t *testing.T, pid int) int {
	t.Helper()
	entries, err := os.ReadDir("/proc")
	require.NoError(t, err)
	for _, e := range entries {
		n, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		b, err := os.ReadFile(filepath.Join("/proc", e.Name(), "stat"))
		if err != nil {
			continue
		}
		// Fields after the parenthesised command: state ppid ...
		s := string(b)
		i := strings.LastIndexByte(s, ')')
		f := strings.Fields(s[i+1:])
		if len(f) > 1 && f[1] == strconv.Itoa(pid) {
			return n
		}
	}
	t.Fatalf("no child process of %d", pid)
	return 0
}

// TestPrepare: on cpu (and for eager anywhere) there is nothing to prepare, said in words.
// (On cuda, compiled mode compiles and tunes once before the first launch.)
func TestPrepare(t *testing.T) {
	needTorch(t)
	for _, opts := range []map[string]string{nil, {"mode": "compiled"}} {
		req := enginetest.CPURequest(modelDir, "f32", protocol.Case{Name: "p", PromptTokens: []int{1, 2, 3}, MaxNewTokens: 2, BatchSize: 1, Greedy: true, IgnoreEOS: true})
		req.Options = opts
		res := enginetest.RunEnv(t, binPath, pyEnv(), time.Minute, req, "prepare")
		require.Equal(t, 0, res.Code, "stderr: %s", res.Stderr)
		require.Len(t, res.Events, 1)
		p := res.Events[0].Prepared
		require.NotNil(t, p)
		assert.False(t, p.Ran, "%v", opts)
		assert.NotEmpty(t, p.Steps[protocol.PreparedNothing], "%v", opts)
	}
}

// TestBenchInductorKnob runs bench.py (the engine's own loop, for the adapter check and roofline experiments) with
// --inductor: the field is set and reported, and a misspelt field is an error rather than an experiment that
// silently measured the defaults.
func TestBenchInductorKnob(t *testing.T) {
	needTorch(t)
	script := filepath.Join("bench", "bench.py")
	run := func(args ...string) (string, error) {
		ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
		defer cancel()
		out, err := exec.CommandContext(ctx, python, append([]string{script, "run", "--dry", "--compile", "aot_eager"}, args...)...).CombinedOutput()
		return string(out), err
	}
	out, err := run("--inductor", "realize_opcount_threshold=0", "--inductor", "triton.cudagraphs=false")
	require.NoError(t, err, out)
	lines := strings.Split(strings.TrimSpace(out), "\n")
	var rep struct {
		Inductor map[string]any `json:"inductor"`
	}
	require.NoError(t, json.Unmarshal([]byte(lines[len(lines)-1]), &rep), out)
	assert.Equal(t, map[string]any{"realize_opcount_threshold": 0.0, "triton.cudagraphs": false}, rep.Inductor)

	out, err = run("--inductor", "realize_opcount_treshold=0")
	require.Error(t, err)
	assert.Contains(t, out, "torch._inductor.config has no realize_opcount_treshold")
}

// TestCompileSettings checks what each compile setting hands torch.compile on cuda (no GPU needed to build the
// options): inductor-realize is gpt-fast's settings plus Inductor writing multi-read pointwise results once.
func TestCompileSettings(t *testing.T) {
	needTorch(t)
	code := `import json, sys, torch; sys.path.insert(0, "../torchllama"); import llama
print(json.dumps({n: llama.compile_options(torch.device("cuda"), n) for n in ("inductor", "inductor-realize", "inductor-cublas")}))`
	out, err := exec.Command(python, "-c", code).CombinedOutput()
	require.NoError(t, err, string(out))
	lines := strings.Split(strings.TrimSpace(string(out)), "\n")
	var got map[string]struct {
		Options map[string]any `json:"options"`
	}
	require.NoError(t, json.Unmarshal([]byte(lines[len(lines)-1]), &got), string(out))
	assert.Equal(t, true, got["inductor"].Options["coordinate_descent_tuning"])
	assert.NotContains(t, got["inductor"].Options, "realize_acc_reads_threshold")
	assert.Equal(t, true, got["inductor-realize"].Options["coordinate_descent_tuning"])
	assert.Equal(t, 1.0, got["inductor-realize"].Options["realize_acc_reads_threshold"])
	assert.Equal(t, false, got["inductor-cublas"].Options["coordinate_descent_tuning"])
}

// TestCacheLengthPerCase: compiled mode sizes the static KV cache per request, as gpt-fast does, so a short case
// decodes over its own cache even when a longer case shares the launch (the suite's cells do: on the H200 a 2048-slot
// cache made TinyLlama's p128-n256 decode 1.4× slower than its own 384). Same tokens either way.
func TestCacheLengthPerCase(t *testing.T) {
	needTorch(t)
	short := tinyRequest(map[string]string{"mode": "compiled"})
	short.Cases = short.Cases[:1]
	both := short
	long := make([]int, 100)
	for i := range long {
		long[i] = (i*37 + 11) % 300
	}
	both.Cases = append([]protocol.Case{}, short.Cases[0],
		protocol.Case{Name: "long", PromptTokens: long, MaxNewTokens: 4, BatchSize: 1, Greedy: true, IgnoreEOS: true})
	resBoth := runBin(t, binPath, pyEnv(), both)
	gotBoth := checkRun(t, both, resBoth)
	kv := resBoth.Events[0].Loaded.Settings["kv_cache"]
	assert.Contains(t, kv, "batch 1: 64 positions")
	assert.Contains(t, kv, "batch 1: 128 positions")
	resShort := runBin(t, binPath, pyEnv(), short)
	gotShort := checkRun(t, short, resShort)
	assert.Contains(t, resShort.Events[0].Loaded.Settings["kv_cache"], "batch 1: 64 positions")
	assert.NotContains(t, resShort.Events[0].Loaded.Settings["kv_cache"], "128 positions")
	assert.Equal(t, gotShort[0], gotBoth[0], "the short case's tokens do not depend on the other case")
}
