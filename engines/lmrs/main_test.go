package main

import (
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/cuda-inference-benchmarks/cib/protocol"
	"github.com/cuda-inference-benchmarks/cib/protocol/enginetest"
)

func TestMain(m *testing.M) {
	d, err := os.MkdirTemp("", "cib-lmrs-test-")
	if err != nil {
		panic(err)
	}
	convRoot = d
	code := enginetest.Main(m)
	os.RemoveAll(d)
	os.Exit(code)
}

// These tests drive the real binary on a tiny model on the CPU. The binary
// needs the Rust static library (scripts/build-lmrs.sh); without it they
// skip, unless CI is set, where a missing library is a failure.

func lmrsBin(t *testing.T) string {
	return enginetest.Binary(t, "lmrs", "bridge/lib/libcib_lmrs.a", "scripts/build-lmrs.sh")
}

func request(model string, quant string, cases ...protocol.Case) protocol.Request {
	r := enginetest.CPURequest(model, "f32", cases...)
	if quant != "" {
		r.Options = map[string]string{"quant": quant}
	}
	return r
}

func promptCase(name string, n, newTokens, batch int) protocol.Case {
	ids := make([]int, n)
	for i := range ids {
		ids[i] = (7 + 31*i) % 512
	}
	return protocol.Case{Name: name, PromptTokens: ids, MaxNewTokens: newTokens, BatchSize: batch, Greedy: true, IgnoreEOS: true}
}

var (
	convRoot  string // converted models, shared by the tests, removed by TestMain
	convMu    sync.Mutex
	converted = map[string]string{}
)

// convert writes the tiny model as an lmrs directory with `runner models
// convert` (bin/runner when built, else go run) once per quantization.
func convert(t *testing.T, tiny, quant string) string {
	t.Helper()
	convMu.Lock()
	defer convMu.Unlock()
	if d, ok := converted[quant]; ok {
		return d
	}
	root, err := enginetest.RepoRoot()
	require.NoError(t, err)
	out := filepath.Join(convRoot, "tiny-"+quant)
	args := []string{"models", "convert", "--to", "lmrs", "--quant", quant, "--model", tiny, "--out", out}
	cmd := exec.Command(filepath.Join(root, "bin", "runner"), args...)
	if _, err := os.Stat(cmd.Path); err != nil {
		cmd = exec.Command("go", append([]string{"run", "./runner"}, args...)...)
	}
	cmd.Dir = root
	b, err := cmd.CombinedOutput()
	require.NoError(t, err, "runner models convert: %s", b)
	converted[quant] = out
	return out
}

func TestInfo(t *testing.T) {
	out, err := exec.Command(lmrsBin(t), "info").Output()
	require.NoError(t, err)
	var info protocol.Info
	require.NoError(t, json.Unmarshal(out, &info))
	assert.Equal(t, protocol.Version, info.Protocol)
	assert.Equal(t, "lmrs", info.Name)
	assert.Contains(t, info.Library, "written here")
	assert.Regexp(t, `^cib_lmrs \d+\.\d+\.\d+ \(format v1\)$`, info.LibraryVersion)
	assert.Equal(t, []string{"cpu"}, info.Devices)
	assert.Contains(t, info.Options, "quant")
	assert.Equal(t, maxBatch, info.Capabilities.MaxBatch)
	assert.Contains(t, info.Versions, "isa")
}

func TestRunTiny(t *testing.T) {
	binary, tinyDir := lmrsBin(t), enginetest.TinyModel(t)
	cases := []protocol.Case{promptCase("short", 5, 8, 1), promptCase("batch2", 12, 4, 2)}
	for _, src := range []struct{ name, model, quant, source string }{
		{"hf f32", tinyDir, "", "converted in memory"},
		{"hf q8_0", tinyDir, "q8_0", "converted in memory"},
		{"file q4_0", convert(t, tinyDir, "q4_0"), "", "lmrs file"},
	} {
		t.Run(src.name, func(t *testing.T) {
			res := enginetest.Run(t, binary, request(src.model, src.quant, cases...))
			require.Equal(t, 0, res.Code, "stderr: %s", res.Stderr)
			loaded := res.Events[0]
			require.Equal(t, protocol.EventLoaded, loaded.Type)
			assert.Equal(t, "f32", loaded.Loaded.DType)
			assert.Contains(t, loaded.Loaded.Settings["source"], src.source)
			if src.source == "lmrs file" {
				assert.Zero(t, loaded.Loaded.CompileNs, "no conversion at load")
			} else {
				assert.Positive(t, loaded.Loaded.CompileNs, "the in-memory conversion is reported")
			}
			assert.Equal(t, int64(2*512*64+64+2*(64*64*2+32*64*2+3*64*176+2*64)), loaded.Loaded.Params)
			its := enginetest.Tokens(res.Events)
			require.Len(t, its, 6, "(1 warm-up + 2 timed) x 2 cases")
			for _, it := range res.Events[1 : len(res.Events)-1] {
				for _, row := range it.Iteration.OutputTokens {
					assert.Equal(t, it.Iteration.OutputTokens[0], row, "batch rows share a prompt")
				}
			}
		})
	}
}

// TestConvertedEqualsInMemory checks that the file the runner writes and the
// image the engine builds from the HF directory are the same bytes (same
// CRC) and decode the same tokens.
func TestConvertedEqualsInMemory(t *testing.T) {
	binary, tinyDir := lmrsBin(t), enginetest.TinyModel(t)
	for _, q := range []string{"f32", "q8_0", "q4_0"} {
		t.Run(q, func(t *testing.T) {
			req := request(tinyDir, q, promptCase("p", 9, 12, 1))
			req.Warmup, req.Iterations = 0, 1
			mem := enginetest.Run(t, binary, req)
			req = request(convert(t, tinyDir, q), "", promptCase("p", 9, 12, 1))
			req.Warmup, req.Iterations = 0, 1
			file := enginetest.Run(t, binary, req)
			require.Equal(t, 0, mem.Code, "stderr: %s", mem.Stderr)
			require.Equal(t, 0, file.Code, "stderr: %s", file.Stderr)
			assert.Equal(t, mem.Events[0].Loaded.Settings["checksum"], file.Events[0].Loaded.Settings["checksum"])
			assert.Equal(t, enginetest.Tokens(mem.Events), enginetest.Tokens(file.Events))
		})
	}
}

// TestGoldenFile loads the Go writer's golden file (runner/internal/lmrsfmt)
// through the binary: the Rust reader accepts what the Go writer wrote.
func TestGoldenFile(t *testing.T) {
	root, err := enginetest.RepoRoot()
	require.NoError(t, err)
	golden := filepath.Join(root, "runner/internal/lmrsfmt/testdata/mini-q8_0.lmrs")
	req := request(golden, "", protocol.Case{Name: "g", PromptTokens: []int{1, 2, 3}, MaxNewTokens: 4, BatchSize: 1, Greedy: true, IgnoreEOS: true})
	req.Warmup, req.Iterations = 0, 1
	res := enginetest.Run(t, lmrsBin(t), req)
	require.Equal(t, 0, res.Code, "stderr: %s", res.Stderr)
	assert.Equal(t, "32", res.Events[0].Loaded.Settings["group_size"])
	assert.Equal(t, "q8_0", res.Events[0].Loaded.Settings["weights"])
}

func TestRunErrors(t *testing.T) {
	binary, tinyDir := lmrsBin(t), enginetest.TinyModel(t)
	q8 := convert(t, tinyDir, "q8_0")
	ok := promptCase("p", 4, 3, 1)
	damaged := func(edit func(b []byte) []byte) func() any {
		return func() any {
			b, err := os.ReadFile(filepath.Join(q8, "model.lmrs"))
			require.NoError(t, err)
			p := filepath.Join(t.TempDir(), "model.lmrs")
			require.NoError(t, os.WriteFile(p, edit(b), 0o644))
			return request(p, "", ok)
		}
	}
	tests := []struct {
		name     string
		req      func() any
		wantExit int
		wantCode string
		wantMsg  string
	}{
		{"unknown option", func() any { r := request(tinyDir, "", ok); r.Options = map[string]string{"fast": "yes"}; return r }, 2, protocol.CodeBadRequest, "option"},
		{"bad quant", func() any { return request(tinyDir, "q3_k", ok) }, 2, protocol.CodeBadRequest, "want f32, q8_0 or q4_0"},
		{"quant differs from the file", func() any { return request(q8, "q4_0", ok) }, 2, protocol.CodeBadRequest, "holds q8_0 weights"},
		{"token outside vocabulary", func() any {
			return request(tinyDir, "", protocol.Case{Name: "big", PromptTokens: []int{1, 512}, MaxNewTokens: 2, BatchSize: 1, Greedy: true, IgnoreEOS: true})
		}, 2, protocol.CodeBadRequest, "outside the vocabulary"},
		{"longer than max_position_embeddings", func() any { return request(tinyDir, "", promptCase("long", 1000, 30, 1)) }, 2, protocol.CodeBadRequest, "max_position_embeddings"},
		{"batch over the limit", func() any { return request(tinyDir, "", promptCase("b", 4, 2, maxBatch+1)) }, 2, protocol.CodeUnsupported, ""},
		{"cuda", func() any { r := request(tinyDir, "", ok); r.Device = "cuda:0"; return r }, 2, protocol.CodeUnsupported, "supports [cpu]"},
		{"missing model", func() any { return request(filepath.Join(t.TempDir(), "none"), "", ok) }, 1, protocol.CodeLoad, "no such file"},
		{"upstream lm.rs file", damaged(func(b []byte) []byte { return append([]byte("lmrs\x01\x00\x00\x00"), b[8:]...) }), 1, protocol.CodeLoad, "upstream lm.rs export"},
		{"foreign file", damaged(func(b []byte) []byte { return []byte("GGUF not ours") }), 1, protocol.CodeLoad, "bad magic"},
		{"newer format version", damaged(func(b []byte) []byte { b[8] = 2; return b }), 1, protocol.CodeLoad, "format version 2"},
		{"corrupted payload", damaged(func(b []byte) []byte { b[len(b)-3] ^= 0x40; return b }), 1, protocol.CodeLoad, "checksum mismatch"},
		{"truncated", damaged(func(b []byte) []byte { return b[:len(b)-100] }), 1, protocol.CodeLoad, "truncated"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			res := enginetest.Run(t, binary, tc.req())
			assert.Equal(t, tc.wantExit, res.Code, "stderr: %s", res.Stderr)
			last := res.Last()
			require.Equal(t, protocol.EventError, last.Type, "stderr: %s", res.Stderr)
			assert.Equal(t, tc.wantCode, last.Error.Code, "message: %s", last.Error.Message)
			assert.Contains(t, last.Error.Message, tc.wantMsg)
		})
	}
}

// TestParityWithReference compares f32 greedy tokens with the pure-Go fp32
// reference engine, and reports (does not assert) how often q8_0 and q4_0
// agree with f32.
func TestParityWithReference(t *testing.T) {
	binary, tinyDir := lmrsBin(t), enginetest.TinyModel(t)
	ref := enginetest.Reference(t)
	cases := []protocol.Case{promptCase("p5", 5, 24, 1), promptCase("p40", 40, 24, 1), promptCase("p90", 90, 24, 2)}
	req := request(tinyDir, "", cases...)
	req.Warmup, req.Iterations = 0, 1
	want := enginetest.Run(t, ref, req)
	require.Equal(t, 0, want.Code, "reference stderr: %s", want.Stderr)
	for _, threads := range []int{1, 2} {
		req.Threads = threads
		got := enginetest.Run(t, binary, req)
		require.Equal(t, 0, got.Code, "lmrs stderr: %s", got.Stderr)
		assert.Equal(t, enginetest.Tokens(want.Events), enginetest.Tokens(got.Events), "lmrs f32 (threads %d) vs reference greedy tokens", threads)
	}
	wantToks := enginetest.Tokens(want.Events)
	for _, q := range []string{"q8_0", "q4_0"} {
		qreq := request(tinyDir, q, cases...)
		qreq.Warmup, qreq.Iterations = 0, 1
		got := enginetest.Run(t, binary, qreq)
		require.Equal(t, 0, got.Code, "lmrs %s stderr: %s", q, got.Stderr)
		toks := enginetest.Tokens(got.Events)
		same, total, prefix := 0, 0, 0
		for c := range wantToks {
			w, g := wantToks[c], toks[c]
			diverged := false
			for i := range w {
				total++
				if w[i] == g[i] {
					same++
				}
				if !diverged && w[i] == g[i] {
					prefix++
				} else {
					diverged = true
				}
			}
		}
		t.Logf("%s vs f32 on the tiny model: %d/%d greedy tokens equal position by position, %d before the first divergence (reported, not asserted)", q, same, total, prefix)
	}
}
