package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/cuda-inference-benchmarks/cib/protocol"
)

// bin is the engine binary built once by TestMain.
var bin string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "reference-e2e")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	bin = filepath.Join(dir, "reference")
	out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput()
	if err != nil {
		fmt.Fprintf(os.Stderr, "build reference: %v\n%s", err, out)
		os.RemoveAll(dir)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// expected is testdata/<fixture>/expected.json, written by gen_reference.py.
type expected struct {
	Prompt []int `json:"prompt"`
	Tokens []int `json:"tokens"`
}

func fixture(t *testing.T, name string) (dir string, exp expected) {
	t.Helper()
	dir, err := filepath.Abs(filepath.Join("testdata", name))
	require.NoError(t, err)
	b, err := os.ReadFile(filepath.Join(dir, "expected.json"))
	require.NoError(t, err)
	require.NoError(t, json.Unmarshal(b, &exp))
	return dir, exp
}

// runEngine runs `reference run` with stdin and returns its events, exit code
// and stderr.
func runEngine(t *testing.T, stdin []byte) ([]protocol.Event, int, string) {
	t.Helper()
	cmd := exec.Command(bin, "run")
	cmd.Stdin = bytes.NewReader(stdin)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	code := 0
	if ee := (*exec.ExitError)(nil); errors.As(err, &ee) {
		code = ee.ExitCode()
	} else {
		require.NoError(t, err)
	}
	var events []protocol.Event
	d := protocol.NewDecoder(&stdout)
	for d.Scan() {
		events = append(events, d.Event())
	}
	require.NoError(t, d.Err(), "stdout is not a valid event stream; stderr:\n%s", stderr.String())
	return events, code, stderr.String()
}

func marshal(t *testing.T, req protocol.Request) []byte {
	t.Helper()
	b, err := json.Marshal(req)
	require.NoError(t, err)
	return b
}

func TestInfo(t *testing.T) {
	out, err := exec.Command(bin, "info").Output()
	require.NoError(t, err)
	var info protocol.Info
	require.NoError(t, json.Unmarshal(out, &info))
	assert.Equal(t, protocol.Version, info.Protocol)
	assert.Equal(t, "reference", info.Name)
	assert.Equal(t, "reference (pure Go)", info.Library)
	assert.Contains(t, info.LibraryVersion, "go1.")
	assert.Equal(t, []string{"cpu"}, info.Devices)
	assert.Equal(t, []string{"f32", "f16", "bf16"}, info.DTypes)
	assert.Equal(t, []string{"margins"}, slices.Sorted(maps.Keys(info.Options)))
	assert.Equal(t, maxBatch, info.Capabilities.MaxBatch)
	assert.True(t, info.Capabilities.StreamingTimestamps)
	assert.Contains(t, info.BestPractice, "fp32")
}

// TestRunMatchesNumpy runs the binary over each fixture and checks the event
// stream and that every batch row's greedy tokens are numpy's.
// TestMargins checks the margins option: one JSON line per Generate whose
// top-1 ids are the tokens generated and whose margins are top-1 minus top-2
// logits (non-negative; top-2 differs from top-1).
func TestMargins(t *testing.T) {
	dir, exp := fixture(t, "gqa_untied_f32")
	path := filepath.Join(t.TempDir(), "margins.jsonl")
	n := len(exp.Tokens)
	events, code, stderr := runEngine(t, marshal(t, protocol.Request{
		Protocol: protocol.Version, Model: dir, Device: "cpu", DType: "f32", Warmup: 1, Iterations: 1,
		Options: map[string]string{"margins": path},
		Cases:   []protocol.Case{{Name: "b2", PromptTokens: exp.Prompt, MaxNewTokens: n, BatchSize: 2, Greedy: true, IgnoreEOS: true}},
	}))
	require.Equal(t, 0, code, "stderr:\n%s", stderr)
	b, err := os.ReadFile(path)
	require.NoError(t, err)
	lines := strings.Split(strings.TrimSpace(string(b)), "\n")
	require.Len(t, lines, 2, "one line per Generate (warm-up and timed)")
	var top topTwo
	require.NoError(t, json.Unmarshal([]byte(lines[1]), &top))
	assert.Equal(t, "b2", top.Case)
	assert.Equal(t, events[2].Iteration.OutputTokens[0], top.Top1)
	assert.Equal(t, exp.Tokens, top.Top1)
	require.Len(t, top.Margin, n)
	for i := range top.Margin {
		assert.GreaterOrEqual(t, top.Margin[i], float32(0), "step %d", i)
		assert.NotEqual(t, top.Top1[i], top.Top2[i], "step %d", i)
	}
}

func TestRunMatchesNumpy(t *testing.T) {
	tests := []struct {
		fixture, dtype, weightsDType string
		threads                      int
	}{
		{"gqa_untied_f32", "f32", "F32", 1},
		{"mha_tied_bf16", "bf16", "BF16", 4},
		{"llama3_f16_sharded", "f16", "F16", 0},
	}
	for _, tt := range tests {
		t.Run(tt.fixture, func(t *testing.T) {
			dir, exp := fixture(t, tt.fixture)
			n := len(exp.Tokens)
			cases := []protocol.Case{
				{Name: "b1", PromptTokens: exp.Prompt, MaxNewTokens: n, BatchSize: 1, Greedy: true, IgnoreEOS: true},
				{Name: "b4", PromptTokens: exp.Prompt, MaxNewTokens: n, BatchSize: 4, Greedy: true, IgnoreEOS: true},
				{Name: "one token", PromptTokens: exp.Prompt, MaxNewTokens: 1, BatchSize: 2, Greedy: true, IgnoreEOS: true},
				{Name: "b1 again", PromptTokens: exp.Prompt, MaxNewTokens: n - 2, BatchSize: 1, Greedy: true, IgnoreEOS: true},
			}
			const warmup, iters = 1, 2
			events, code, stderr := runEngine(t, marshal(t, protocol.Request{
				Protocol: protocol.Version, Model: dir, Device: "cpu", DType: tt.dtype, Threads: tt.threads,
				Warmup: warmup, Iterations: iters, Cases: cases,
			}))
			require.Equal(t, 0, code, "exit code; stderr:\n%s", stderr)
			require.Len(t, events, 1+len(cases)*(warmup+iters)+1)

			require.Equal(t, protocol.EventLoaded, events[0].Type)
			l := events[0].Loaded
			assert.Equal(t, "f32", l.DType, "compute dtype")
			assert.Equal(t, tt.dtype, l.Settings["requested_dtype"])
			assert.Equal(t, tt.weightsDType, l.Settings["weights_dtype"])
			assert.Positive(t, l.WeightsToHostNs)
			assert.Zero(t, l.WeightsToDeviceNs)
			assert.Positive(t, l.Params)
			if tt.threads > 0 {
				assert.Equal(t, fmt.Sprint(tt.threads), l.Settings["threads"])
			}

			i := 1
			for ci, c := range cases {
				for _, warm := range []bool{true, false} {
					count := iters
					if warm {
						count = warmup
					}
					for idx := range count {
						ev := events[i]
						i++
						require.Equal(t, protocol.EventIteration, ev.Type)
						it := ev.Iteration
						assert.Equal(t, ci, it.Case)
						assert.Equal(t, idx, it.Index)
						assert.Equal(t, warm, it.Warmup)
						assert.Equal(t, len(exp.Prompt), it.PromptTokens)
						assert.Len(t, it.TokenNs, c.MaxNewTokens, "case %s: token_ns count", c.Name)
						require.Len(t, it.OutputTokens, c.BatchSize, "case %s: batch rows", c.Name)
						for r, row := range it.OutputTokens {
							assert.Equal(t, exp.Tokens[:c.MaxNewTokens], row, "case %s iteration %d row %d: tokens differ from numpy", c.Name, idx, r)
						}
						assert.Positive(t, it.PeakAllocBytes)
					}
				}
			}
			last := events[len(events)-1]
			require.Equal(t, protocol.EventDone, last.Type)
			assert.Equal(t, len(cases)*(warmup+iters), last.Done.Iterations)
		})
	}
}

func TestRunErrors(t *testing.T) {
	dir, exp := fixture(t, "gqa_untied_f32")
	good := func() protocol.Request {
		return protocol.Request{
			Protocol: protocol.Version, Model: dir, Device: "cpu", DType: "f32", Iterations: 1,
			Cases: []protocol.Case{{Name: "c", PromptTokens: exp.Prompt, MaxNewTokens: 4, BatchSize: 1, Greedy: true, IgnoreEOS: true}},
		}
	}
	with := func(edit func(r *protocol.Request)) []byte {
		r := good()
		edit(&r)
		return marshal(t, r)
	}
	tests := []struct {
		name     string
		stdin    []byte
		wantCode string
		wantExit int
		wantMsg  string
	}{
		{"not json", []byte("{"), protocol.CodeBadRequest, 2, "decode request"},
		{"unknown field", []byte(`{"protocol":1,"modle":"x"}`), protocol.CodeBadRequest, 2, `unknown field "modle"`},
		{"wrong protocol", with(func(r *protocol.Request) { r.Protocol = 99 }), protocol.CodeBadRequest, 2, "protocol: got 99"},
		{"no cases", with(func(r *protocol.Request) { r.Cases = nil }), protocol.CodeBadRequest, 2, "cases: none given"},
		{"cuda device", with(func(r *protocol.Request) { r.Device = "cuda:0" }), protocol.CodeUnsupported, 2, "device cuda:0"},
		{"unknown option", with(func(r *protocol.Request) { r.Options = map[string]string{"kernel": "naive"} }), protocol.CodeBadRequest, 2, `option "kernel"`},
		{"batch too large", with(func(r *protocol.Request) { r.Cases[0].BatchSize = maxBatch + 1 }), protocol.CodeUnsupported, 2, "batch_size 65 > max 64"},
		{"token outside vocab", with(func(r *protocol.Request) { r.Cases[0].PromptTokens = []int{1, 48} }), protocol.CodeBadRequest, 2, "prompt_tokens[1]=48 outside vocab_size 48"},
		{"too long for the model", with(func(r *protocol.Request) { r.Cases[0].MaxNewTokens = 128 }), protocol.CodeUnsupported, 2, "exceed max_position_embeddings 128"},
		{"missing model", with(func(r *protocol.Request) { r.Model = filepath.Join(t.TempDir(), "nope") }), protocol.CodeLoad, 1, "read config"},
		{"model without weights", with(func(r *protocol.Request) { r.Model = configOnly(t, dir) }), protocol.CodeLoad, 1, "neither model.safetensors.index.json nor model.safetensors found"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			events, code, stderr := runEngine(t, tt.stdin)
			assert.Equal(t, tt.wantExit, code, "exit code")
			require.Len(t, events, 1, "want only the error event")
			require.Equal(t, protocol.EventError, events[0].Type)
			assert.Equal(t, tt.wantCode, events[0].Error.Code)
			assert.Contains(t, events[0].Error.Message, tt.wantMsg)
			assert.True(t, strings.HasPrefix(stderr, "error: "), "stderr = %q, want the error", stderr)
		})
	}
}

// configOnly returns a model directory holding only dir's config.json.
func configOnly(t *testing.T, dir string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(dir, "config.json"))
	require.NoError(t, err)
	out := t.TempDir()
	require.NoError(t, os.WriteFile(filepath.Join(out, "config.json"), b, 0o644))
	return out
}

func TestUsage(t *testing.T) {
	for _, tt := range []struct {
		name string
		args []string
	}{{"no command", nil}, {"unknown command", []string{"serve"}}} {
		t.Run(tt.name, func(t *testing.T) {
			err := exec.Command(bin, tt.args...).Run()
			var ee *exec.ExitError
			require.ErrorAs(t, err, &ee)
			assert.Equal(t, 64, ee.ExitCode())
		})
	}
}
