package cli_test

import (
	"context"
	"encoding/binary"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/cuda-inference-benchmarks/cib/runner/internal/gguf"
	"github.com/cuda-inference-benchmarks/cib/runner/internal/modelcfg"
)

func TestModelsConvertLmrs(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	tiny := filepath.Join(dir, "tiny")
	require.Equal(t, 0, run(t, ctx, "models", "synth", "--shape", "tiny", "--dtype", "bf16", "--out", tiny).code)
	out := filepath.Join(dir, "tiny-q4")
	o := run(t, ctx, "models", "convert", "--to", "lmrs", "--quant", "q4_0", "--model", tiny, "--out", out)
	require.Equal(t, 0, o.code, "stderr: %s", o.stderr)
	assert.Contains(t, o.stdout, "lmrs v1 q4_0, group size 16")
	for _, f := range []string{"model.lmrs", "config.json"} {
		_, err := os.Stat(filepath.Join(out, f))
		assert.NoError(t, err)
	}
	o = run(t, ctx, "models", "convert", "--to", "onnx", "--model", tiny, "--out", out)
	assert.Equal(t, 2, o.code, "unknown target is a usage error; stderr: %s", o.stderr)
	o = run(t, ctx, "models", "convert", "--to", "lmrs", "--quant", "q3", "--model", tiny, "--out", out)
	assert.Equal(t, 2, o.code, "stderr: %s", o.stderr)
}

// TestModelsConvertGGUF converts a synthesized model to GGUF at every type
// and reads it back with the runner's own GGUF reader (tested against
// gguf-py): llama.cpp's metadata, tensor names and shapes, and every tensor
// dequantizing to the checkpoint's values (q_proj/k_proj rows in llama.cpp's
// rotary order) within the type's rounding.
func TestModelsConvertGGUF(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	tiny := filepath.Join(dir, "tiny")
	require.Equal(t, 0, run(t, ctx, "models", "synth", "--shape", "tiny", "--dtype", "f32", "--out", tiny).code)
	cfg, err := modelcfg.Load(tiny)
	require.NoError(t, err)
	src := readCheckpoint(t, tiny)

	for _, typ := range []string{"f32", "f16", "bf16", "q8_0", "q4_k"} {
		t.Run(typ, func(t *testing.T) {
			out := filepath.Join(dir, "tiny-"+typ+".gguf")
			o := run(t, ctx, "models", "convert", "--to", "gguf", "--type", typ, "--model", tiny, "--out", out)
			require.Equal(t, 0, o.code, "stderr: %s", o.stderr)
			assert.Contains(t, o.stdout, "gguf v3 "+typ)
			assert.Contains(t, o.stderr, `tokenizer.ggml.model "none"`, "the synthetic WordLevel vocabulary has no llama.cpp tokenizer")

			g, err := gguf.Open(out)
			require.NoError(t, err)
			defer g.Close()
			for key, want := range map[string]any{
				"general.architecture": "llama", "llama.block_count": uint64(2), "llama.context_length": uint64(1024),
				"llama.embedding_length": uint64(64), "llama.feed_forward_length": uint64(176),
				"llama.attention.head_count": uint64(4), "llama.attention.head_count_kv": uint64(2),
				"llama.rope.dimension_count": uint64(16), "llama.vocab_size": uint64(512), "llama.rope.freq_base": float64(10000),
				"general.alignment": uint64(32), "tokenizer.ggml.model": "none",
			} {
				assert.Equal(t, want, g.Metadata[key], "metadata %s", key)
			}
			eps, _ := g.Float("llama.attention.layer_norm_rms_epsilon")
			assert.InDelta(t, 1e-5, eps, 1e-12)
			require.Len(t, g.Tensors, len(cfg.Tensors()))

			for _, ti := range g.Tensors {
				hf, ok := gguf.HFName(ti.Name)
				require.True(t, ok, "tensor %s has no HF name", ti.Name)
				want, ok := src[hf]
				require.True(t, ok, "tensor %s (%s) not in the checkpoint", ti.Name, hf)
				if len(want.shape) == 2 {
					assert.Equal(t, []int64{want.shape[0], want.shape[1]}, ti.Shape(), ti.Name)
				}
				vals := want.values
				switch {
				case hf == "model.layers.0.self_attn.q_proj.weight" || hf == "model.layers.1.self_attn.q_proj.weight":
					vals = permute(vals, cfg.NumAttentionHeads, int(want.shape[1]))
				case hf == "model.layers.0.self_attn.k_proj.weight" || hf == "model.layers.1.self_attn.k_proj.weight":
					vals = permute(vals, cfg.NumKeyValueHeads, int(want.shape[1]))
				}
				got := make([]float32, ti.Elements())
				require.NoError(t, g.ReadFloat32(ti, got), ti.Name)
				if len(want.shape) == 1 {
					assert.Equal(t, gguf.F32, ti.Type, "%s: 1-D tensors stay f32", ti.Name)
				}
				checkClose(t, ti.Name, ti.Type, got, vals)
			}
		})
	}

	// Deterministic: the same input gives the same bytes.
	again := filepath.Join(dir, "again.gguf")
	require.Equal(t, 0, run(t, ctx, "models", "convert", "--to", "gguf", "--type", "q8_0", "--model", tiny, "--out", again).code)
	a, err := os.ReadFile(again)
	require.NoError(t, err)
	b, err := os.ReadFile(filepath.Join(dir, "tiny-q8_0.gguf"))
	require.NoError(t, err)
	assert.True(t, string(a) == string(b), "two conversions differ")

	// Bad input gives a clear error.
	llamaless := filepath.Join(dir, "gpt2")
	require.NoError(t, os.MkdirAll(llamaless, 0o755))
	require.NoError(t, os.WriteFile(filepath.Join(llamaless, "config.json"), []byte(`{"model_type": "gpt2", "vocab_size": 8, "hidden_size": 8, "intermediate_size": 8, "num_hidden_layers": 1, "num_attention_heads": 1}`), 0o644))
	for _, c := range []struct {
		name string
		args []string
		code int
		msg  string
	}{
		{"missing dir", []string{"--type", "f16", "--model", filepath.Join(dir, "nope"), "--out", filepath.Join(dir, "x.gguf")}, 1, "no such file or directory"},
		{"unsupported type", []string{"--type", "q5_k", "--model", tiny, "--out", filepath.Join(dir, "x.gguf")}, 2, `--type: tensor type "q5_k": want f32, f16, bf16, q8_0 or q4_k`},
		{"not llama", []string{"--type", "f16", "--model", llamaless, "--out", filepath.Join(dir, "x.gguf")}, 1, `model_type: "gpt2" is not a Llama model`},
		{"exists", []string{"--type", "f16", "--model", tiny, "--out", again}, 1, "exists (pass --overwrite to replace it)"},
		{"lmrs flag", []string{"--quant", "q4_0", "--model", tiny, "--out", filepath.Join(dir, "x.gguf")}, 2, "--quant is for --to lmrs"},
	} {
		t.Run(c.name, func(t *testing.T) {
			o := run(t, ctx, append([]string{"models", "convert", "--to", "gguf"}, c.args...)...)
			assert.Equal(t, c.code, o.code, "stderr: %s", o.stderr)
			assert.Contains(t, o.stderr, c.msg)
		})
	}
	_, err = os.Stat(filepath.Join(dir, "x.gguf"))
	assert.True(t, os.IsNotExist(err), "a failed conversion leaves no file")
	o := run(t, ctx, "models", "convert", "--to", "gguf", "--type", "f16", "--overwrite", "--model", tiny, "--out", again)
	assert.Equal(t, 0, o.code, "stderr: %s", o.stderr)
}

type hfTensor struct {
	shape  []int64
	values []float32
}

func readCheckpoint(t *testing.T, dir string) map[string]hfTensor {
	t.Helper()
	ts, err := modelcfg.Checkpoint(dir)
	require.NoError(t, err)
	out := map[string]hfTensor{}
	for _, ti := range ts {
		require.Equal(t, "F32", ti.DType)
		f, err := os.Open(filepath.Join(dir, ti.File))
		require.NoError(t, err)
		raw := make([]byte, ti.Size)
		_, err = f.ReadAt(raw, ti.Offset)
		f.Close()
		require.NoError(t, err)
		v := make([]float32, ti.Size/4)
		for i := range v {
			v[i] = math.Float32frombits(binary.LittleEndian.Uint32(raw[4*i:]))
		}
		out[ti.Name] = hfTensor{ti.Shape, v}
	}
	return out
}

// permute is convert_hf_to_gguf.py's LlamaModel.permute, written from its
// numpy: w.reshape(heads, 2, rows/heads/2, cols).swapaxes(1, 2).
func permute(w []float32, heads, cols int) []float32 {
	rows := len(w) / cols
	half := rows / heads / 2
	out := make([]float32, 0, len(w))
	for h := range heads {
		for i := range half {
			for j := range 2 {
				r := (h*2+j)*half + i
				out = append(out, w[r*cols:(r+1)*cols]...)
			}
		}
	}
	return out
}

// checkClose compares a dequantized tensor with its source: f32 exactly,
// f16/bf16 within half a unit in the last place, q8_0 within a quantization
// step of each 32-block (plus the f16 rounding of the scale), q4_k by relative RMS error.
func checkClose(t *testing.T, name string, typ gguf.Type, got, want []float32) {
	t.Helper()
	require.Len(t, got, len(want), name)
	switch typ {
	case gguf.F32:
		for i := range got {
			if got[i] != want[i] {
				t.Fatalf("%s[%d] = %v, want %v", name, i, got[i], want[i])
			}
		}
	case gguf.F16, gguf.BF16:
		rel := map[gguf.Type]float64{gguf.F16: 1.0 / 2048, gguf.BF16: 1.0 / 256}[typ]
		for i := range got {
			if d := math.Abs(float64(got[i] - want[i])); d > rel*math.Abs(float64(want[i]))+1e-7 {
				t.Fatalf("%s[%d] = %v, want %v (%s)", name, i, got[i], want[i], typ)
			}
		}
	case gguf.Q8_0:
		for b := 0; b < len(want); b += 32 {
			var amax float64
			for _, v := range want[b : b+32] {
				amax = max(amax, math.Abs(float64(v)))
			}
			for i := b; i < b+32; i++ {
				if d := math.Abs(float64(got[i] - want[i])); d > amax/127*0.6+1e-7 {
					t.Fatalf("%s[%d] = %v, want %v (q8_0 step %g)", name, i, got[i], want[i], amax/127)
				}
			}
		}
	default:
		var se, ss float64
		for i := range got {
			d := float64(got[i] - want[i])
			se += d * d
			ss += float64(want[i]) * float64(want[i])
		}
		if r := math.Sqrt(se / ss); r > 0.12 {
			t.Fatalf("%s: relative RMS error %.3f (%s), want <= 0.12", name, r, typ)
		}
	}
}

// TestModelsConvertGGUFSmolLM2 round-trips real weights: the SmolLM2 GGUF
// (scripts/fetch-smollm2.sh, in $CIB_SMOLLM2_GGUF) imported to an f32 HF
// directory and converted back to GGUF f32 must hold exactly the original's
// dequantized tensors (Q/K permuted back to llama.cpp's layout) and the same
// llama.* and tokenizer metadata.
func TestModelsConvertGGUFSmolLM2(t *testing.T) {
	orig := os.Getenv("CIB_SMOLLM2_GGUF")
	if orig == "" {
		t.Skip("CIB_SMOLLM2_GGUF not set (scripts/fetch-smollm2.sh prints the path)")
	}
	ctx := context.Background()
	dir := t.TempDir()
	hf, out := filepath.Join(dir, "hf"), filepath.Join(dir, "smollm2-f32.gguf")
	o := run(t, ctx, "models", "import", "--in", orig, "--out", hf, "--dtype", "f32")
	require.Equal(t, 0, o.code, "stderr: %s", o.stderr)
	o = run(t, ctx, "models", "convert", "--to", "gguf", "--type", "f32", "--model", hf, "--out", out)
	require.Equal(t, 0, o.code, "stderr: %s", o.stderr)
	assert.NotContains(t, o.stderr, "warning")

	a, err := gguf.Open(orig)
	require.NoError(t, err)
	defer a.Close()
	b, err := gguf.Open(out)
	require.NoError(t, err)
	defer b.Close()
	for k, v := range a.Metadata {
		if strings.HasPrefix(k, "general.") || k == "tokenizer.ggml.add_space_prefix" {
			continue // provenance, and a key llama.cpp ignores for gpt2 vocabularies
		}
		assert.Equal(t, v, b.Metadata[k], "metadata %s", k)
	}
	require.Len(t, b.Tensors, len(a.Tensors))
	for _, ta := range a.Tensors {
		tb, ok := b.Tensor(ta.Name)
		require.True(t, ok, "tensor %s missing", ta.Name)
		assert.Equal(t, ta.Dims, tb.Dims, ta.Name)
		assert.Equal(t, gguf.F32, tb.Type, ta.Name)
		va, vb := make([]float32, ta.Elements()), make([]float32, tb.Elements())
		require.NoError(t, a.ReadFloat32(ta, va))
		require.NoError(t, b.ReadFloat32(tb, vb))
		for i := range va {
			if va[i] != vb[i] {
				t.Fatalf("%s[%d] = %v, the original dequantizes to %v", ta.Name, i, vb[i], va[i])
			}
		}
	}
}
