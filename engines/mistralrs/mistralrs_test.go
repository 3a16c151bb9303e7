package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/cuda-inference-benchmarks/cib/protocol"
	"github.com/cuda-inference-benchmarks/cib/protocol/enginetest"
)

func TestMain(m *testing.M) { os.Exit(enginetest.Main(m)) }

// These tests drive the real engine binary on a tiny model on the CPU. They
// need the bridge's static library (scripts/build-mistralrs.sh); without it
// they skip, unless CI is set, where a missing library is a failure.

// engineBin is this package built against the CPU bridge library.
func engineBin(t *testing.T) string {
	return enginetest.Binary(t, "mistralrs", "bridge/lib/libcib_mistralrs.a", "scripts/build-mistralrs.sh")
}

// tinyVocab and tinyMaxPos are the runner's tiny synth shape's vocabulary and context.
const tinyVocab, tinyMaxPos = 512, 1024

func tinyRequest(model string, cases ...protocol.Case) protocol.Request {
	return enginetest.CPURequest(model, "f32", cases...)
}

var tinyCase = enginetest.GreedyCase

func TestInfo(t *testing.T) {
	bin := engineBin(t)
	out, err := exec.Command(bin, "info").Output()
	require.NoError(t, err)
	var info protocol.Info
	require.NoError(t, json.Unmarshal(out, &info))
	assert.Equal(t, protocol.Version, info.Protocol)
	assert.Equal(t, "mistralrs", info.Name)
	assert.Equal(t, "mistral.rs", info.Library)
	assert.Equal(t, "0.8.1", info.LibraryVersion)
	assert.Equal(t, "0.10.2", info.Versions["candle-core"])
	assert.Contains(t, info.Devices, "cpu")
	assert.ElementsMatch(t, []string{"f32", "f16", "bf16"}, info.DTypes)
	assert.Contains(t, info.Options, optPagedAttention)
	assert.Equal(t, 1, info.Capabilities.MaxBatch)
	assert.True(t, info.Capabilities.StreamingTimestamps)
	assert.NotEmpty(t, info.BestPractice)
}

func TestRunTinyExactCounts(t *testing.T) {
	bin := engineBin(t)
	model := enginetest.TinyModel(t)
	cases := []protocol.Case{
		tinyCase("one-token", []int{1, 17, 42}, 1),
		tinyCase("seventeen", []int{1, 5, 6, 7, 8, 9, 10, 11, 12}, 17),
		tinyCase("single-prompt-token", []int{1}, 40),
	}
	req := tinyRequest(model, cases...)
	res := enginetest.Run(t, bin, req, "run")
	require.Equal(t, 0, res.Code, "stderr:\n%s", res.Stderr)

	require.NotEmpty(t, res.Events)
	require.Equal(t, protocol.EventLoaded, res.Events[0].Type)
	loaded := res.Events[0].Loaded
	assert.Equal(t, "f32", loaded.DType)
	assert.Positive(t, loaded.WeightsToHostNs)
	assert.Equal(t, "off", loaded.Settings["paged_attention"])
	assert.Equal(t, "off", loaded.Settings["prefix_cache"])
	last := res.Events[len(res.Events)-1]
	require.Equal(t, protocol.EventDone, last.Type, "stderr:\n%s", res.Stderr)
	assert.Equal(t, len(cases)*(req.Warmup+req.Iterations), last.Done.Iterations)

	tokens := map[int][]int{}
	for _, ev := range res.Events[1 : len(res.Events)-1] {
		require.Equal(t, protocol.EventIteration, ev.Type)
		it := ev.Iteration
		c := cases[it.Case]
		t.Run(c.Name, func(t *testing.T) {
			require.Len(t, it.TokenNs, c.MaxNewTokens)
			require.Len(t, it.OutputTokens, 1)
			require.Len(t, it.OutputTokens[0], c.MaxNewTokens)
			assert.Equal(t, len(c.PromptTokens), it.PromptTokens)
			prev := int64(0)
			for i, ns := range it.TokenNs {
				assert.GreaterOrEqual(t, ns, prev, "token_ns[%d] goes back in time", i)
				prev = ns
			}
			assert.GreaterOrEqual(t, it.EndNs, prev)
			for i, id := range it.OutputTokens[0] {
				assert.True(t, id >= 0 && id < tinyVocab, "output_tokens[%d] = %d outside the vocabulary", i, id)
			}
			if want, ok := tokens[it.Case]; ok {
				assert.Equal(t, want, it.OutputTokens[0], "greedy output differs between iterations")
			} else {
				tokens[it.Case] = it.OutputTokens[0]
			}
		})
	}
	// A prompt extended by its own greedy continuation continues the same way:
	// the ids the adapter reports are the ones mistral.rs fed back.
	seq := tokens[2]
	require.Len(t, seq, 40)
	follow := tinyRequest(model, tinyCase("follow", append([]int{1}, seq[:20]...), 20))
	follow.Warmup, follow.Iterations = 0, 1
	res = enginetest.Run(t, bin, follow, "run")
	require.Equal(t, 0, res.Code, "stderr:\n%s", res.Stderr)
	assert.Equal(t, seq[20:], res.Events[1].Iteration.OutputTokens[0])
}

func TestGreedyParityWithReference(t *testing.T) {
	bin := engineBin(t)
	ref := enginetest.Reference(t)
	model := enginetest.TinyModel(t)
	req := tinyRequest(model,
		tinyCase("short", []int{1, 100, 200, 300}, 24),
		tinyCase("long", []int{1, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18, 19, 20, 21, 22, 23, 24, 25, 26, 27, 28, 29, 30, 31, 32, 33}, 24),
	)
	req.Warmup, req.Iterations = 0, 1
	got := enginetest.Run(t, bin, req, "run")
	require.Equal(t, 0, got.Code, "stderr:\n%s", got.Stderr)
	want := enginetest.Run(t, ref, req, "run")
	require.Equal(t, 0, want.Code, "reference stderr:\n%s", want.Stderr)
	require.Equal(t, len(want.Events), len(got.Events))
	for i, ev := range got.Events {
		if ev.Type != protocol.EventIteration {
			continue
		}
		assert.Equal(t, want.Events[i].Iteration.OutputTokens, ev.Iteration.OutputTokens,
			"case %s: mistral.rs f32 greedy tokens differ from the reference", req.Cases[ev.Iteration.Case].Name)
	}
}

func TestBadRequests(t *testing.T) {
	bin := engineBin(t)
	model := enginetest.TinyModel(t)
	tests := []struct {
		name     string
		edit     func(r *protocol.Request)
		wantCode string
		wantExit int
	}{
		{name: "token outside vocabulary", edit: func(r *protocol.Request) { r.Cases[0].PromptTokens = []int{1, tinyVocab} }, wantCode: protocol.CodeBadRequest, wantExit: 2},
		{name: "unknown option", edit: func(r *protocol.Request) { r.Options = map[string]string{"flash_attn": "on"} }, wantCode: protocol.CodeBadRequest, wantExit: 2},
		{name: "bad option value", edit: func(r *protocol.Request) { r.Options = map[string]string{optPagedAttention: "yes"} }, wantCode: protocol.CodeBadRequest, wantExit: 2},
		{name: "paged attention on cpu", edit: func(r *protocol.Request) { r.Options = map[string]string{optPagedAttention: "on"} }, wantCode: protocol.CodeUnsupported, wantExit: 2},
		{name: "not greedy", edit: func(r *protocol.Request) { r.Cases[0].Greedy = false }, wantCode: protocol.CodeUnsupported, wantExit: 2},
		{name: "longer than the model", edit: func(r *protocol.Request) { r.Cases[0].MaxNewTokens = tinyMaxPos }, wantCode: protocol.CodeBadRequest, wantExit: 2},
		{name: "no iterations", edit: func(r *protocol.Request) { r.Iterations = 0 }, wantCode: protocol.CodeBadRequest, wantExit: 2},
		{name: "missing model", edit: func(r *protocol.Request) { r.Model = filepath.Join(t.TempDir(), "nope") }, wantCode: protocol.CodeLoad, wantExit: 1},
	}
	if runtime.GOOS == "linux" && !strings.Contains(bin, "cuda") {
		tests = append(tests, struct {
			name     string
			edit     func(r *protocol.Request)
			wantCode string
			wantExit int
		}{name: "cuda on a cpu build", edit: func(r *protocol.Request) { r.Device = "cuda:0" }, wantCode: protocol.CodeUnsupported, wantExit: 2})
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			req := tinyRequest(model, tinyCase("c", []int{1, 2, 3}, 4))
			tt.edit(&req)
			res := enginetest.Run(t, bin, req, "run")
			assert.Equal(t, tt.wantExit, res.Code, "stderr:\n%s", res.Stderr)
			require.NotEmpty(t, res.Events)
			last := res.Events[len(res.Events)-1]
			require.Equal(t, protocol.EventError, last.Type)
			assert.Equal(t, tt.wantCode, last.Error.Code, "message: %s", last.Error.Message)
			assert.NotEmpty(t, last.Error.Message)
		})
	}
}

func TestNativeOverheadCheck(t *testing.T) {
	bin := engineBin(t)
	model := enginetest.TinyModel(t)
	req := tinyRequest(model, tinyCase("native", []int{1, 10, 20, 30}, 32))
	b, err := json.Marshal(req)
	require.NoError(t, err)
	cmd := exec.Command(bin, "native")
	cmd.Stdin = bytes.NewReader(b)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err = cmd.Run()
	var ee *exec.ExitError
	if err != nil && !(errors.As(err, &ee) && ee.ExitCode() == 1) {
		t.Fatalf("native: %v\n%s", err, stderr.String())
	}
	var iters int
	var sum *nativeSummary
	for _, line := range strings.Split(strings.TrimSpace(stdout.String()), "\n") {
		var probe map[string]json.RawMessage
		require.NoError(t, json.Unmarshal([]byte(line), &probe), "line %q", line)
		if raw, ok := probe["summary"]; ok {
			sum = &nativeSummary{}
			require.NoError(t, json.Unmarshal(raw, sum))
			continue
		}
		var it nativeIter
		require.NoError(t, json.Unmarshal([]byte(line), &it))
		assert.True(t, it.SameTokens, "streamed and non-streamed requests generated different tokens")
		assert.Positive(t, it.AdapterE2ENs)
		iters++
	}
	assert.Equal(t, req.Iterations, iters)
	require.NotNil(t, sum, "no summary line; stderr:\n%s", stderr.String())
	assert.Equal(t, "native", sum.Case)
	assert.Equal(t, 32, sum.N)
	assert.True(t, sum.TokensMatchStreamPaths)
	assert.Positive(t, sum.AdapterDecodeTokS)
	assert.Contains(t, stderr.String(), "native native: adapter decode")
}
