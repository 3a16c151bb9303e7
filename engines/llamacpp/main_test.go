package main

import (
	"bufio"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/cuda-inference-benchmarks/cib/engines/llamacpp/internal/bridge"
	"github.com/cuda-inference-benchmarks/cib/protocol"
	"github.com/cuda-inference-benchmarks/cib/protocol/enginetest"
)

func TestMain(m *testing.M) { os.Exit(enginetest.Main(m)) }

// These tests drive the real binary on the CPU: the tiny synthesized model
// (converted to GGUF by the engine), the reference engine for parity, and
// SmolLM2-135M-Instruct's real Q4_1 GGUF. The binary needs llama.cpp's static
// libraries (scripts/build-llamacpp.sh); without them the tests skip, unless
// CI is set, where their absence is a failure.

// llamacppBin is this package built against the CPU libraries.
func llamacppBin(t *testing.T) string {
	return enginetest.Binary(t, "llamacpp", "lib/cpu/lib/libllama.a", "scripts/build-llamacpp.sh")
}

// cacheEnv points the engine's GGUF cache at a directory of this test.
func cacheEnv(t *testing.T) (string, []string) {
	d := t.TempDir()
	return filepath.Join(d, "gguf"), []string{"CIB_CACHE=" + d}
}

func run(t *testing.T, bin string, env []string, req any) enginetest.Result {
	t.Helper()
	return enginetest.RunEnv(t, bin, env, enginetest.RunTimeout, req)
}

func iterations(t *testing.T, res enginetest.Result) []*protocol.Iteration {
	t.Helper()
	require.Equal(t, 0, res.Code, "stderr: %s", res.Stderr)
	require.GreaterOrEqual(t, len(res.Events), 2)
	require.Equal(t, protocol.EventLoaded, res.Events[0].Type)
	require.Equal(t, protocol.EventDone, res.Last().Type)
	var its []*protocol.Iteration
	for _, ev := range res.Events[1 : len(res.Events)-1] {
		require.Equal(t, protocol.EventIteration, ev.Type)
		its = append(its, ev.Iteration)
	}
	return its
}

func TestInfo(t *testing.T) {
	out, err := exec.Command(llamacppBin(t), "info").Output()
	require.NoError(t, err)
	var info protocol.Info
	require.NoError(t, json.Unmarshal(out, &info))
	assert.Equal(t, protocol.Version, info.Protocol)
	assert.Equal(t, "llamacpp", info.Name)
	assert.Equal(t, "llama.cpp", info.Library)
	assert.Regexp(t, `^\d+\.\d+\.\d+(-dev)? \(vendored by llama-cpp-sys-2 0\.1\.161`, info.LibraryVersion)
	assert.Equal(t, []string{"cpu"}, info.Devices, "CPU build")
	assert.Equal(t, []string{"f32", "f16", "bf16"}, info.DTypes)
	assert.Equal(t, maxBatch, info.Capabilities.MaxBatch)
	assert.True(t, info.Capabilities.StreamingTimestamps)
	for _, k := range []string{"n_threads", "flash_attn", "n_ubatch", "type_k", "type_v", "type"} {
		assert.Contains(t, info.Options, k)
	}
	assert.Equal(t, "unknown", info.Versions["ggml_commit"], "the crate carries no git tree")
	assert.Contains(t, info.Versions["ggml_devices"], "CPU (")
	assert.NotContains(t, info.Versions["ggml_devices"], "CUDA")
	assert.Contains(t, info.Versions["ggml_backends"], "CPU")
	assert.Contains(t, info.Versions["system_info"], "AVX2 = 1", "the portable x86-64-v3 build")
	assert.Equal(t, "no", info.Versions["gpu_offload"])
}

func promptCase(name string, n, newTokens, batch int) protocol.Case {
	return protocol.Case{Name: name, PromptTokens: enginetest.Prompt(n, 512, 31), MaxNewTokens: newTokens, BatchSize: batch, Greedy: true, IgnoreEOS: true}
}

// TestRunTiny runs the tiny model from its HF directory: the first launch
// converts it to GGUF (reported as compile_ns), the second finds it cached.
func TestRunTiny(t *testing.T) {
	bin, tiny := llamacppBin(t), enginetest.TinyModel(t)
	cache, env := cacheEnv(t)
	cases := []protocol.Case{promptCase("short", 5, 8, 1), promptCase("batch3", 12, 6, 3)}
	req := enginetest.CPURequest(tiny, "f32", cases...)

	var first [][]int
	for launch, want := range []string{"converted", "cache"} {
		res := run(t, bin, env, req)
		its := iterations(t, res)
		l := res.Events[0].Loaded
		assert.Equal(t, "f32", l.DType)
		assert.Equal(t, "cpu", l.DeviceName)
		assert.Positive(t, l.WeightsToHostNs)
		assert.Zero(t, l.WeightsToDeviceNs)
		assert.Equal(t, want, l.Settings["gguf_source"], "launch %d", launch)
		if want == "converted" {
			assert.Positive(t, l.CompileNs, "the conversion is compile_ns")
		} else {
			assert.Zero(t, l.CompileNs)
		}
		assert.Equal(t, filepath.Dir(l.Settings["gguf"]), cache)
		// tiny: embed 512x64 + lm_head 64x512 + norm 64 + 2 layers of
		// (q 64x64, k 32x64, v 32x64, o 64x64, gate/up/down 3x64x176, 2 norms of 64).
		assert.Equal(t, int64(2*512*64+64+2*(64*64*2+32*64*2+3*64*176+2*64)), l.Params)
		assert.Equal(t, "2", l.Settings["n_threads"])
		assert.Equal(t, "3", l.Settings["n_seq_max"], "the largest batch")
		assert.Equal(t, "auto", l.Settings["flash_attn"])
		assert.Equal(t, "f16", l.Settings["type_k"])
		assert.Equal(t, "0", l.Settings["n_gpu_layers"])

		require.Len(t, its, 6, "(1 warm-up + 2 timed) x 2 cases")
		assert.Equal(t, 6, res.Last().Done.Iterations)
		var got [][]int
		for _, it := range its {
			c := cases[it.Case]
			require.Len(t, it.OutputTokens, c.BatchSize)
			require.Len(t, it.TokenNs, c.MaxNewTokens)
			assert.Positive(t, it.TokenNs[0])
			for r, row := range it.OutputTokens {
				require.Len(t, row, c.MaxNewTokens, "case %s row %d", c.Name, r)
				assert.Equal(t, it.OutputTokens[0], row, "batch rows share a prompt, so greedy tokens match")
			}
			got = append(got, it.OutputTokens[0])
		}
		assert.Equal(t, got[1], got[2], "greedy decoding is deterministic across iterations")
		assert.Equal(t, got[4], got[5])
		if first == nil {
			first = got
		} else {
			assert.Equal(t, first, got, "the cached GGUF gives the converted one's tokens")
		}
	}
}

// TestOptions checks that the options reach llama.cpp and that Settings
// report them as in effect.
func TestOptions(t *testing.T) {
	bin, tiny := llamacppBin(t), enginetest.TinyModel(t)
	_, env := cacheEnv(t)
	req := enginetest.CPURequest(tiny, "f32", promptCase("p", 9, 5, 1))
	base := enginetest.Tokens(run(t, bin, env, req).Events)
	req.Options = map[string]string{"n_threads": "1", "flash_attn": "on", "n_ubatch": "4", "type_k": "f32", "type_v": "f32", "type": "f16"}
	res := run(t, bin, env, req)
	its := iterations(t, res)
	s := res.Events[0].Loaded.Settings
	assert.Equal(t, "1", s["n_threads"])
	assert.Equal(t, "enabled", s["flash_attn"])
	assert.Equal(t, "enabled", s["flash_attn_resolved"])
	assert.Equal(t, "4", s["n_ubatch"], "a prompt of 9 runs in ubatches of 4 inside one llama_decode")
	assert.Equal(t, "f32", s["type_k"])
	assert.Equal(t, "f32", s["type_v"])
	assert.Equal(t, "f16", res.Events[0].Loaded.DType, "option type converts the weights to f16")
	assert.Equal(t, "f32", s["requested_dtype"])
	require.Len(t, its, 3)
	assert.Len(t, its[0].OutputTokens[0], 5)
	t.Logf("f32 default: %v; f16 weights, flash attention, n_ubatch 4, f32 cache: %v", base[0], its[0].OutputTokens[0])
}

// TestParityReference compares f32 greedy tokens with the reference engine's
// on the tiny model: identical, or the first divergence is at a near-tie of
// the reference's logits (top-2 margin under nearTie).
func TestParityReference(t *testing.T) {
	bin, tiny := llamacppBin(t), enginetest.TinyModel(t)
	_, env := cacheEnv(t)
	var cases []protocol.Case
	for i, n := range []int{1, 7, 33} {
		c := protocol.Case{Name: fmt.Sprintf("p%d", n), PromptTokens: enginetest.Prompt(n, 512, 17+2*i), MaxNewTokens: 48, BatchSize: 1, Greedy: true, IgnoreEOS: true}
		cases = append(cases, c)
	}
	margins := filepath.Join(t.TempDir(), "margins.jsonl")
	refReq := enginetest.CPURequest(tiny, "f32", cases...)
	refReq.Warmup, refReq.Iterations = 0, 1
	refReq.Options = map[string]string{"margins": margins}
	ref := enginetest.Tokens(run(t, enginetest.Reference(t), nil, refReq).Events)
	top := readMargins(t, margins)

	req := enginetest.CPURequest(tiny, "f32", cases...)
	req.Warmup, req.Iterations = 0, 1
	got := enginetest.Tokens(run(t, bin, env, req).Events)
	require.Len(t, got, len(cases))
	for i, c := range cases {
		k := firstDiff(ref[i], got[i])
		if k < 0 {
			t.Logf("%s: identical to the reference (%d tokens)", c.Name, len(got[i]))
			continue
		}
		m := top[c.Name]
		require.Less(t, k, len(m.Margin))
		if got[i][k] == m.Top2[k] && m.Margin[k] < nearTie {
			t.Logf("%s: near-tie at token %d: llama.cpp picks %d, the reference's second choice, where the reference picks %d by a top-2 margin of %.3g logits (< %g); identical before it",
				c.Name, k, got[i][k], ref[i][k], m.Margin[k], nearTie)
			continue
		}
		t.Errorf("%s: token %d = %d, want the reference's %d (reference top-2: %d, %d, margin %.3g)\n got: %v\nwant: %v",
			c.Name, k, got[i][k], ref[i][k], m.Top1[k], m.Top2[k], m.Margin[k], got[i], ref[i])
	}
}

// nearTie is the largest reference top-2 logit margin at which llama.cpp may
// pick the reference's second choice: its f32 kernels sum in other orders
// (SIMD blocks, and the f16 KV cache rounds K and V to f16), which moves the
// tiny model's logits by far less than this.
const nearTie = 5e-3

func firstDiff(a, b []int) int {
	for i := range a {
		if i >= len(b) || a[i] != b[i] {
			return i
		}
	}
	if len(b) != len(a) {
		return len(a)
	}
	return -1
}

type topTwo struct {
	Case   string    `json:"case"`
	Top1   []int     `json:"top1"`
	Top2   []int     `json:"top2"`
	Margin []float32 `json:"margin"`
}

func readMargins(t *testing.T, path string) map[string]topTwo {
	t.Helper()
	f, err := os.Open(path)
	require.NoError(t, err)
	defer f.Close()
	out := map[string]topTwo{}
	sc := bufio.NewScanner(f)
	sc.Buffer(nil, 1<<24)
	for sc.Scan() {
		var m topTwo
		require.NoError(t, json.Unmarshal(sc.Bytes(), &m))
		out[m.Case] = m
	}
	require.NoError(t, sc.Err())
	return out
}

func TestRunErrors(t *testing.T) {
	bin, tiny := llamacppBin(t), enginetest.TinyModel(t)
	_, env := cacheEnv(t)
	ok := promptCase("p", 4, 3, 1)
	dir := t.TempDir()
	badGGUF := filepath.Join(dir, "bad.gguf")
	require.NoError(t, os.WriteFile(badGGUF, []byte("GGUF but not really a model file"), 0o644))
	configOnly := filepath.Join(dir, "config-only")
	require.NoError(t, os.MkdirAll(configOnly, 0o755))
	cfg, err := os.ReadFile(filepath.Join(tiny, "config.json"))
	require.NoError(t, err)
	require.NoError(t, os.WriteFile(filepath.Join(configOnly, "config.json"), cfg, 0o644))
	// The tiny model with its f32 tensors labelled I32 (same size): a dtype
	// the converter does not take.
	i32Model := filepath.Join(dir, "i32")
	require.NoError(t, os.MkdirAll(i32Model, 0o755))
	require.NoError(t, os.WriteFile(filepath.Join(i32Model, "config.json"), cfg, 0o644))
	st, err := os.ReadFile(filepath.Join(tiny, "model.safetensors"))
	require.NoError(t, err)
	n := binary.LittleEndian.Uint64(st[:8])
	hdr := strings.ReplaceAll(string(st[8:8+n]), `"F32"`, `"I32"`)
	require.NoError(t, os.WriteFile(filepath.Join(i32Model, "model.safetensors"), append(append(st[:8:8], hdr...), st[8+n:]...), 0o644))
	notGGUF := filepath.Join(dir, "weights.bin")
	require.NoError(t, os.WriteFile(notGGUF, []byte("x"), 0o644))

	with := func(f func(r *protocol.Request)) func() any {
		return func() any { r := enginetest.CPURequest(tiny, "f32", ok); f(&r); return r }
	}
	tests := []struct {
		name     string
		req      func() any
		wantExit int
		wantCode string
		wantMsg  string
	}{
		{"protocol version", with(func(r *protocol.Request) { r.Protocol = 99 }), 2, protocol.CodeBadRequest, ""},
		{"unknown field", func() any { return map[string]any{"protocol": 1, "bogus": true} }, 2, protocol.CodeBadRequest, ""},
		{"unknown option", with(func(r *protocol.Request) { r.Options = map[string]string{"fast": "yes"} }), 2, protocol.CodeBadRequest, ""},
		{"bad flash_attn", with(func(r *protocol.Request) { r.Options = map[string]string{"flash_attn": "maybe"} }), 2, protocol.CodeBadRequest, "flash_attn"},
		{"bad n_threads", with(func(r *protocol.Request) { r.Options = map[string]string{"n_threads": "-1"} }), 2, protocol.CodeBadRequest, "n_threads"},
		{"bad cache type", with(func(r *protocol.Request) { r.Options = map[string]string{"type_k": "q3_k"} }), 2, protocol.CodeBadRequest, "type_k"},
		{"unsupported weight type", with(func(r *protocol.Request) { r.Options = map[string]string{"type": "q2_k"} }), 2, protocol.CodeBadRequest, "weight type"},
		{"unsupported request dtype", with(func(r *protocol.Request) { r.DType = "f64" }), 2, protocol.CodeBadRequest, "f64"},
		{"unsupported weight dtype", with(func(r *protocol.Request) { r.Model = i32Model }), 1, protocol.CodeLoad, "I32"},
		{"quantized V cache without flash attention", with(func(r *protocol.Request) {
			r.Options = map[string]string{"type_v": "q8_0", "flash_attn": "off"}
		}), 2, protocol.CodeUnsupported, "llama_init_from_model"},
		{"token outside vocabulary", with(func(r *protocol.Request) {
			r.Cases = []protocol.Case{{Name: "big", PromptTokens: []int{1, 512}, MaxNewTokens: 2, BatchSize: 1, Greedy: true, IgnoreEOS: true}}
		}), 2, protocol.CodeBadRequest, "outside the vocabulary"},
		{"longer than the training context", with(func(r *protocol.Request) { r.Cases = []protocol.Case{promptCase("long", 1000, 30, 1)} }), 2, protocol.CodeBadRequest, "trained for"},
		{"batch over the limit", with(func(r *protocol.Request) { r.Cases = []protocol.Case{promptCase("b", 4, 2, maxBatch+1)} }), 2, protocol.CodeUnsupported, ""},
		{"cuda on a CPU build", with(func(r *protocol.Request) { r.Device = "cuda:0" }), 2, protocol.CodeUnsupported, ""},
		{"missing model", with(func(r *protocol.Request) { r.Model = filepath.Join(dir, "no-such-model") }), 1, protocol.CodeLoad, "no such file"},
		{"HF directory without weights", with(func(r *protocol.Request) { r.Model = configOnly }), 1, protocol.CodeLoad, "safetensors"},
		{"file that is not a GGUF", with(func(r *protocol.Request) { r.Model = notGGUF }), 1, protocol.CodeLoad, "not a .gguf"},
		{"bad GGUF", with(func(r *protocol.Request) { r.Model = badGGUF }), 1, protocol.CodeLoad, "llama_model_load_from_file"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			res := run(t, bin, env, tc.req())
			assert.Equal(t, tc.wantExit, res.Code, "stderr: %s", res.Stderr)
			require.NotEmpty(t, res.Events)
			last := res.Last()
			require.Equal(t, protocol.EventError, last.Type, "stderr: %s", res.Stderr)
			assert.Equal(t, tc.wantCode, last.Error.Code, "message: %s", last.Error.Message)
			assert.Contains(t, last.Error.Message, tc.wantMsg)
			t.Logf("%s: %s", last.Error.Code, last.Error.Message)
		})
	}
}

func TestGGUFCommand(t *testing.T) {
	bin, tiny := llamacppBin(t), enginetest.TinyModel(t)
	cache, env := cacheEnv(t)
	var paths []string
	for range 2 {
		cmd := exec.Command(bin, "gguf", tiny, "--type", "f16")
		cmd.Env = append(os.Environ(), env...)
		out, err := cmd.Output()
		require.NoError(t, err)
		paths = append(paths, strings.TrimSpace(string(out)))
	}
	assert.Equal(t, paths[0], paths[1], "the second call finds the first's file")
	assert.Equal(t, cache, filepath.Dir(paths[0]))
	assert.True(t, strings.HasSuffix(paths[0], "-f16.gguf"), paths[0])
	b, err := os.ReadFile(paths[0])
	require.NoError(t, err)
	assert.Equal(t, "GGUF", string(b[:4]))
	cmd := exec.Command(bin, "gguf")
	assert.Error(t, cmd.Run(), "no model: usage")
}

// smolLM2Prompts are two of runner/internal/gguf/testdata/smollm2_prompts.json's
// prompts with the ids Hugging Face tokenizers gives them.
var smolLM2Prompts = []struct {
	name, text string
	ids        []int32
}{
	{"plain", "The Eiffel Tower is located in the city of", []int32{504, 414, 46682, 18669, 314, 3807, 281, 260, 2240, 282}},
	{"chat", "<|im_start|>system\nYou are a helpful AI assistant named SmolLM, trained by Hugging Face<|im_end|>\n<|im_start|>user\nWhat is the capital of France?<|im_end|>\n<|im_start|>assistant\n",
		[]int32{1, 9690, 198, 2683, 359, 253, 5356, 5646, 11173, 3365, 3511, 308, 34519, 28, 7018, 411, 407, 19712, 8182, 2, 198, 1, 4093, 198, 1780, 314, 260, 3575, 282, 4649, 47, 2, 198, 1, 520, 9531, 198}},
}

// TestSmolLM2 runs real weights, SmolLM2-135M-Instruct as a Q4_1 GGUF
// (scripts/fetch-smollm2.sh; $CIB_SMOLLM2_GGUF), given as the .gguf path: the
// greedy text must be English that answers the prompt (it names Paris) and
// the same in every iteration and in a launch with another thread count.
// llama.cpp's own tokenizer (the GGUF's vocabulary) encodes the prompts to
// the ids HF tokenizers gives and decodes the output.
func TestSmolLM2(t *testing.T) {
	if testing.Short() {
		t.Skip("real weights: not in -short")
	}
	gguf := smolLM2(t)
	bin := llamacppBin(t)
	tok, _, err := bridge.Load(bridge.Params{Path: gguf, Device: -1, Threads: 1, FlashAttn: bridge.FlashAttnAuto, TypeK: -1, TypeV: -1, CtxSeq: 8, Seqs: 1, Prompt: 1})
	require.NoError(t, err)
	defer tok.Close()

	var cases []protocol.Case
	for _, p := range smolLM2Prompts {
		require.Equal(t, p.ids, tok.Tokenize(p.text, false), "llama.cpp's tokenizer on %s", p.name)
		ids := make([]int, len(p.ids))
		for i, id := range p.ids {
			ids[i] = int(id)
		}
		cases = append(cases, enginetest.GreedyCase(p.name, ids, 24))
	}
	var first [][]int
	for _, threads := range []int{2, 1} {
		req := enginetest.CPURequest(gguf, "f32", cases...)
		req.Threads, req.Warmup, req.Iterations = threads, 0, 2
		res := run(t, bin, nil, req)
		its := iterations(t, res)
		l := res.Events[0].Loaded
		assert.Equal(t, "q4_1", l.DType)
		assert.Equal(t, "file", l.Settings["gguf_source"])
		require.Len(t, its, 2*len(cases))
		got := enginetest.Tokens(res.Events)
		for i := range cases {
			assert.Equal(t, got[2*i], got[2*i+1], "iterations agree")
		}
		if first == nil {
			first = got
			continue
		}
		assert.Equal(t, first, got, "threads 1 gives the tokens of threads 2")
	}
	for i, p := range smolLM2Prompts {
		text := tok.Detokenize(first[2*i])
		t.Logf("%s: %q → %q", p.name, p.text, text)
		if p.name != "plain" {
			// Q4_1 × Q8_1 dot products move this 37-token chat prompt off the
			// f32 answer (The capital of France is Paris.): the same weights
			// as an f32 GGUF give the reference engine's tokens
			// (TestSmolLM2F32Parity). Only stability is asserted here.
			continue
		}
		assert.Contains(t, text, "Paris", "%s: the answer names Paris", p.name)
		assert.True(t, english(text), "%s: %q is not plain English text", p.name, text)
	}
}

// english reports whether s reads as English prose: mostly letters, spaces
// and punctuation, several common function words, no word repeated over and
// over.
func english(s string) bool {
	letters := 0
	for _, r := range s {
		if r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || strings.ContainsRune(" .,'\n-:;!?()\"", r) {
			letters++
		}
	}
	words := strings.Fields(strings.ToLower(s))
	common, count := 0, map[string]int{}
	for _, w := range words {
		w = strings.Trim(w, ".,;:!?\"'()")
		count[w]++
		switch w {
		case "the", "is", "a", "of", "and", "in", "it", "to", "was", "as", "its", "for", "by", "with", "on", "capital", "city":
			common++
		}
	}
	for _, n := range count {
		if n > len(words)/3+1 {
			return false
		}
	}
	return len(words) >= 10 && common >= 3 && float64(letters) >= 0.95*float64(len([]rune(s)))
}

// smolLM2 returns the GGUF's path: $CIB_SMOLLM2_GGUF, else what
// scripts/fetch-smollm2.sh fetches (or finds cached); skipped when neither
// works (no network, no pip), failed under CI.
func smolLM2(t *testing.T) string {
	t.Helper()
	if p := os.Getenv("CIB_SMOLLM2_GGUF"); p != "" {
		if _, err := os.Stat(p); err != nil {
			t.Fatalf("CIB_SMOLLM2_GGUF: %v", err)
		}
		return p
	}
	root, err := enginetest.RepoRoot()
	require.NoError(t, err)
	out, err := exec.Command(filepath.Join(root, "scripts", "fetch-smollm2.sh")).Output()
	if err != nil {
		if os.Getenv("CI") != "" {
			t.Fatalf("CI: scripts/fetch-smollm2.sh: %v", err)
		}
		t.Skipf("SmolLM2 GGUF unavailable (scripts/fetch-smollm2.sh failed, CIB_SMOLLM2_GGUF unset): %v", err)
	}
	return strings.TrimSpace(string(out))
}

// TestSmolLM2F32Parity runs SmolLM2's weights dequantized to f32 (`runner
// models import`, as runner/internal/gguf's parity test does), given as the HF
// directory, so the engine converts them back into an f32 GGUF: llama.cpp's
// greedy tokens must equal the reference engine's on the plain and chat
// prompts, or diverge first where the reference's top-2 margin is a near-tie.
// This is where the Q4_1 file's chat answer (TestSmolLM2) is told apart from
// an adapter bug: with the same f32 weights the answers agree.
func TestSmolLM2F32Parity(t *testing.T) {
	if testing.Short() {
		t.Skip("real weights: not in -short")
	}
	gguf := smolLM2(t)
	bin := llamacppBin(t)
	root, err := enginetest.RepoRoot()
	require.NoError(t, err)
	dir := filepath.Join(t.TempDir(), "smollm2-f32")
	args := []string{"models", "import", "--in", gguf, "--out", dir, "--dtype", "f32"}
	cmd := exec.Command(filepath.Join(root, "bin", "runner"), args...)
	if _, err := os.Stat(cmd.Path); err != nil {
		cmd = exec.Command("go", append([]string{"run", "./runner"}, args...)...)
	}
	cmd.Dir = root
	out, err := cmd.CombinedOutput()
	require.NoError(t, err, "runner models import: %s", out)

	var cases []protocol.Case
	for _, p := range smolLM2Prompts {
		ids := make([]int, len(p.ids))
		for i, id := range p.ids {
			ids[i] = int(id)
		}
		cases = append(cases, enginetest.GreedyCase(p.name, ids, 16))
	}
	margins := filepath.Join(t.TempDir(), "margins.jsonl")
	refReq := enginetest.CPURequest(dir, "f32", cases...)
	refReq.Warmup, refReq.Iterations = 0, 1
	refReq.Options = map[string]string{"margins": margins}
	ref := enginetest.Tokens(run(t, enginetest.Reference(t), nil, refReq).Events)
	top := readMargins(t, margins)

	_, env := cacheEnv(t)
	req := enginetest.CPURequest(dir, "f32", cases...)
	req.Warmup, req.Iterations = 0, 1
	res := run(t, bin, env, req)
	got := enginetest.Tokens(res.Events)
	l := res.Events[0].Loaded
	assert.Equal(t, "f32", l.DType)
	assert.Equal(t, "converted", l.Settings["gguf_source"])
	t.Logf("converted to an f32 GGUF in %.1f s", float64(l.CompileNs)/1e9)
	require.Len(t, got, len(cases))
	for i, c := range cases {
		k := firstDiff(ref[i], got[i])
		if k < 0 {
			t.Logf("%s: identical to the reference (%d tokens): %v", c.Name, len(got[i]), got[i])
			continue
		}
		m := top[c.Name]
		if got[i][k] == m.Top2[k] && m.Margin[k] < nearTie {
			t.Logf("%s: near-tie at token %d (reference top-2 margin %.3g)", c.Name, k, m.Margin[k])
			continue
		}
		t.Errorf("%s: token %d = %d, want the reference's %d (margin %.3g)\n got: %v\nwant: %v", c.Name, k, got[i][k], ref[i][k], m.Margin[k], got[i], ref[i])
	}
}

// TestPrepare: `llamacpp prepare` converts the HF directory into the GGUF cache once (ran, then cached), and the
// launch after it loads the cached file with no conversion in its cold start.
func TestPrepare(t *testing.T) {
	bin, tiny := llamacppBin(t), enginetest.TinyModel(t)
	cache, env := cacheEnv(t)
	req := enginetest.CPURequest(tiny, "f32", promptCase("p", 5, 4, 1))
	req.Options = map[string]string{"type": "f16"}
	for i, wantRan := range []bool{true, false} {
		res := enginetest.RunEnv(t, bin, env, enginetest.RunTimeout, req, "prepare")
		require.Equal(t, 0, res.Code, "stderr: %s", res.Stderr)
		require.Len(t, res.Events, 1)
		require.Equal(t, protocol.EventPrepared, res.Events[0].Type)
		p := res.Events[0].Prepared
		assert.Equal(t, wantRan, p.Ran, "prepare %d", i)
		assert.Contains(t, p.Steps["gguf_f16"], cache, "prepare %d: %v", i, p.Steps)
		assert.Positive(t, p.TotalNs)
	}
	res := run(t, bin, env, req)
	iterations(t, res)
	l := res.Events[0].Loaded
	assert.Equal(t, "cache", l.Settings["gguf_source"])
	assert.Zero(t, l.CompileNs, "prepared: no conversion in the launch")
	// A bad option is refused as run refuses it.
	req.Options = map[string]string{"type": "q2_x"}
	res = enginetest.RunEnv(t, bin, env, enginetest.RunTimeout, req, "prepare")
	assert.Equal(t, 2, res.Code, "stderr: %s", res.Stderr)
	require.NotEmpty(t, res.Events)
	assert.Equal(t, protocol.EventError, res.Last().Type)
}
