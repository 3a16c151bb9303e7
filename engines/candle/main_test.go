package main

import (
	"encoding/json"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/cuda-inference-benchmarks/cib/protocol"
	"github.com/cuda-inference-benchmarks/cib/protocol/enginetest"
)

func TestMain(m *testing.M) { os.Exit(enginetest.Main(m)) }

// These tests drive the real binary on a tiny model on the CPU. The binary
// needs the Rust static library (scripts/build-candle.sh); without it they
// skip, unless CI is set, where a missing library is a failure.

// candleBin is this package built against the CPU bridge library.
func candleBin(t *testing.T) string {
	return enginetest.Binary(t, "candle", "bridge/lib/libcib_candle.a", "scripts/build-candle.sh")
}

func request(model, dtype string, cases ...protocol.Case) protocol.Request {
	return enginetest.CPURequest(model, dtype, cases...)
}

func promptCase(name string, n, newTokens, batch int) protocol.Case {
	ids := make([]int, n)
	for i := range ids {
		ids[i] = (7 + 31*i) % 512
	}
	return protocol.Case{Name: name, PromptTokens: ids, MaxNewTokens: newTokens, BatchSize: batch, Greedy: true, IgnoreEOS: true}
}

func TestInfo(t *testing.T) {
	binary := candleBin(t)
	out, err := exec.Command(binary, "info").Output()
	require.NoError(t, err)
	var info protocol.Info
	require.NoError(t, json.Unmarshal(out, &info))
	assert.Equal(t, protocol.Version, info.Protocol)
	assert.Equal(t, "candle", info.Name)
	assert.Equal(t, "candle-core", info.Library)
	assert.Regexp(t, `^0\.\d+\.\d+$`, info.LibraryVersion)
	assert.Equal(t, []string{"cpu"}, info.Devices, "CPU build")
	assert.Equal(t, []string{"f32", "f16", "bf16"}, info.DTypes)
	assert.True(t, info.Capabilities.StreamingTimestamps)
	assert.False(t, info.Capabilities.AllocatorStats, "candle has no allocator statistics")
	assert.Equal(t, maxBatch, info.Capabilities.MaxBatch)
	assert.Contains(t, info.Versions, "rustc")
}

func TestRunTiny(t *testing.T) {
	binary, tinyDir := candleBin(t), enginetest.TinyModel(t)
	cases := []protocol.Case{promptCase("short", 5, 8, 1), promptCase("batch2", 12, 4, 2)}
	res := enginetest.Run(t, binary, request(tinyDir, "f32", cases...))
	require.Equal(t, 0, res.Code, "stderr: %s", res.Stderr)

	require.NotEmpty(t, res.Events)
	loaded := res.Events[0]
	require.Equal(t, protocol.EventLoaded, loaded.Type)
	assert.Equal(t, "f32", loaded.Loaded.DType)
	assert.Equal(t, "cpu", loaded.Loaded.DeviceName)
	assert.Positive(t, loaded.Loaded.WeightsToDeviceNs)
	// tiny: embed 512x64 + lm_head 64x512 + norm 64 + 2 layers of
	// (q 64x64, k 32x64, v 32x64, o 64x64, gate/up/down 3x64x176, 2 norms of 64).
	assert.Equal(t, int64(2*512*64+64+2*(64*64*2+32*64*2+3*64*176+2*64)), loaded.Loaded.Params)

	var its []*protocol.Iteration
	for _, ev := range res.Events[1 : len(res.Events)-1] {
		require.Equal(t, protocol.EventIteration, ev.Type)
		its = append(its, ev.Iteration)
	}
	last := res.Events[len(res.Events)-1]
	require.Equal(t, protocol.EventDone, last.Type)
	require.Len(t, its, 6, "(1 warm-up + 2 timed) x 2 cases")
	assert.Equal(t, 6, last.Done.Iterations)

	first := map[int][][]int{}
	for _, it := range its {
		c := cases[it.Case]
		require.Len(t, it.OutputTokens, c.BatchSize)
		for r, row := range it.OutputTokens {
			require.Len(t, row, c.MaxNewTokens, "case %s row %d", c.Name, r)
			for _, id := range row {
				assert.True(t, id >= 0 && id < 512, "token %d outside the vocabulary", id)
			}
			assert.Equal(t, it.OutputTokens[0], row, "batch rows share a prompt, so greedy tokens match")
		}
		assert.Equal(t, len(c.PromptTokens), it.PromptTokens)
		assert.Positive(t, it.TokenNs[0])
		if prev, ok := first[it.Case]; ok {
			assert.Equal(t, prev, it.OutputTokens, "greedy decoding is deterministic across iterations")
		} else {
			first[it.Case] = it.OutputTokens
		}
	}
}

func TestRunErrors(t *testing.T) {
	binary, tinyDir := candleBin(t), enginetest.TinyModel(t)
	ok := promptCase("p", 4, 3, 1)
	tests := []struct {
		name     string
		req      func() any
		wantExit int
		wantCode string
	}{
		{"protocol version", func() any { r := request(tinyDir, "f32", ok); r.Protocol = 99; return r }, 2, protocol.CodeBadRequest},
		{"unknown field", func() any { return map[string]any{"protocol": 1, "bogus": true} }, 2, protocol.CodeBadRequest},
		{"unknown option", func() any {
			r := request(tinyDir, "f32", ok)
			r.Options = map[string]string{"fast": "yes"}
			return r
		}, 2, protocol.CodeBadRequest},
		{"token outside vocabulary", func() any {
			return request(tinyDir, "f32", protocol.Case{Name: "big", PromptTokens: []int{1, 512}, MaxNewTokens: 2, BatchSize: 1, Greedy: true, IgnoreEOS: true})
		}, 2, protocol.CodeBadRequest},
		{"longer than max_position_embeddings", func() any { return request(tinyDir, "f32", promptCase("long", 1000, 30, 1)) }, 2, protocol.CodeBadRequest},
		{"batch over the limit", func() any { return request(tinyDir, "f32", promptCase("b", 4, 2, maxBatch+1)) }, 2, protocol.CodeUnsupported},
		{"cuda on a CPU build", func() any { r := request(tinyDir, "f32", ok); r.Device = "cuda:0"; return r }, 2, protocol.CodeUnsupported},
		{"missing model dir", func() any { return request(filepath.Join(t.TempDir(), "no-such-model"), "f32", ok) }, 1, protocol.CodeLoad},
		{"model dir without weights", func() any {
			dir := filepath.Join(t.TempDir(), "config-only")
			require.NoError(t, os.MkdirAll(dir, 0o755))
			copyFile(t, filepath.Join(tinyDir, "config.json"), filepath.Join(dir, "config.json"))
			return request(dir, "f32", ok)
		}, 1, protocol.CodeLoad},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			res := enginetest.Run(t, binary, tc.req())
			assert.Equal(t, tc.wantExit, res.Code, "stderr: %s", res.Stderr)
			require.NotEmpty(t, res.Events)
			last := res.Events[len(res.Events)-1]
			require.Equal(t, protocol.EventError, last.Type, "stderr: %s", res.Stderr)
			assert.Equal(t, tc.wantCode, last.Error.Code, "message: %s", last.Error.Message)
		})
	}
}

func copyFile(t *testing.T, from, to string) {
	t.Helper()
	in, err := os.Open(from)
	require.NoError(t, err)
	defer in.Close()
	out, err := os.Create(to)
	require.NoError(t, err)
	_, err = io.Copy(out, in)
	require.NoError(t, err)
	require.NoError(t, out.Close())
}

// TestParityWithReference compares greedy tokens with the pure-Go fp32
// reference engine on the same tiny f32 model.
func TestParityWithReference(t *testing.T) {
	binary, tinyDir := candleBin(t), enginetest.TinyModel(t)
	ref := enginetest.Reference(t)

	cases := []protocol.Case{promptCase("p5", 5, 24, 1), promptCase("p40", 40, 24, 1)}
	req := request(tinyDir, "f32", cases...)
	req.Warmup, req.Iterations = 0, 1
	got := enginetest.Run(t, binary, req)
	want := enginetest.Run(t, ref, req)
	require.Equal(t, 0, got.Code, "candle stderr: %s", got.Stderr)
	require.Equal(t, 0, want.Code, "reference stderr: %s", want.Stderr)
	assert.Equal(t, enginetest.Tokens(want.Events), enginetest.Tokens(got.Events), "candle vs reference greedy tokens")
}
