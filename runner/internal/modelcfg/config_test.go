package modelcfg

import (
	"encoding/json"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// The testdata configs reproduce the config.json files published with
// TinyLlama/TinyLlama-1.1B-Chat-v1.0, meta-llama/Meta-Llama-3-8B and
// meta-llama/Llama-3.2-1B.

func TestLoad(t *testing.T) {
	tests := []struct {
		name string
		file string
		want Config
	}{
		{
			name: "tinyllama",
			file: "tinyllama-1.1b.json",
			want: Config{
				ModelType: "llama", VocabSize: 32000, HiddenSize: 2048, IntermediateSize: 5632, NumHiddenLayers: 22,
				NumAttentionHeads: 32, NumKeyValueHeads: 4, HeadDim: 64, MaxPositionEmbeddings: 2048, RopeTheta: 10000,
				RMSNormEps: 1e-5, TorchDType: "bfloat16", BOSTokenID: 1, EOSTokenIDs: []int{2},
			},
		},
		{
			name: "llama-3-8b",
			file: "llama-3-8b.json",
			want: Config{
				ModelType: "llama", VocabSize: 128256, HiddenSize: 4096, IntermediateSize: 14336, NumHiddenLayers: 32,
				NumAttentionHeads: 32, NumKeyValueHeads: 8, HeadDim: 128, MaxPositionEmbeddings: 8192, RopeTheta: 500000,
				RMSNormEps: 1e-5, TorchDType: "bfloat16", BOSTokenID: 128000, EOSTokenIDs: []int{128001},
			},
		},
		{
			name: "llama-3.2-1b: llama3 rope scaling, tied, eos list, explicit head_dim",
			file: "llama-3.2-1b.json",
			want: Config{
				ModelType: "llama", VocabSize: 128256, HiddenSize: 2048, IntermediateSize: 8192, NumHiddenLayers: 16,
				NumAttentionHeads: 32, NumKeyValueHeads: 8, HeadDim: 64, MaxPositionEmbeddings: 131072, RopeTheta: 500000,
				RopeScaling: &RopeScaling{Type: "llama3", Factor: 32, LowFreqFactor: 1, HighFreqFactor: 4, OriginalMaxPositionEmbeddings: 8192},
				RMSNormEps:  1e-5, TieWordEmbeddings: true, TorchDType: "bfloat16", BOSTokenID: 128000, EOSTokenIDs: []int{128001, 128008, 128009},
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			data, err := os.ReadFile(filepath.Join("testdata", tt.file))
			require.NoError(t, err)
			require.NoError(t, os.WriteFile(filepath.Join(dir, ConfigFile), data, 0o644))
			got, err := Load(dir)
			require.NoError(t, err)
			assert.Equal(t, tt.want, got, "Load(%s)", tt.file)
		})
	}
}

func TestLoadMissing(t *testing.T) {
	_, err := Load(t.TempDir())
	require.Error(t, err)
	assert.Contains(t, err.Error(), "config.json")
}

func TestParseDefaults(t *testing.T) {
	got, err := Parse("c.json", []byte(`{"vocab_size": 100, "hidden_size": 64, "intermediate_size": 128,
		"num_hidden_layers": 2, "num_attention_heads": 4, "dtype": "float16", "rope_scaling": {"rope_type": "default"}}`))
	require.NoError(t, err)
	want := Config{
		ModelType: "llama", VocabSize: 100, HiddenSize: 64, IntermediateSize: 128, NumHiddenLayers: 2,
		NumAttentionHeads: 4, NumKeyValueHeads: 4, HeadDim: 16, MaxPositionEmbeddings: 2048, RopeTheta: 10000,
		RMSNormEps: 1e-6, TorchDType: "float16", BOSTokenID: -1,
	}
	assert.Equal(t, want, got)
}

// TestParseRopeParameters reads configs as transformers 5 writes them, with
// rope_theta and the scaling rule inside rope_parameters.
func TestParseRopeParameters(t *testing.T) {
	const dims = `"vocab_size": 100, "hidden_size": 64, "intermediate_size": 128, "num_hidden_layers": 2, "num_attention_heads": 4`
	tests := []struct {
		name    string
		extra   string
		theta   float64
		scaling *RopeScaling
	}{
		{name: "default", extra: `"rope_parameters": {"rope_theta": 500000.0, "rope_type": "default"}`, theta: 500000},
		{name: "llama3", extra: `"rope_parameters": {"rope_theta": 500000.0, "rope_type": "llama3", "factor": 32.0, "low_freq_factor": 1.0, "high_freq_factor": 4.0, "original_max_position_embeddings": 8192}`,
			theta: 500000, scaling: &RopeScaling{Type: "llama3", Factor: 32, LowFreqFactor: 1, HighFreqFactor: 4, OriginalMaxPositionEmbeddings: 8192}},
		{name: "legacy keys win", extra: `"rope_theta": 1000.0, "rope_scaling": {"type": "linear", "factor": 2}, "rope_parameters": {"rope_theta": 500000.0, "rope_type": "default"}`,
			theta: 1000, scaling: &RopeScaling{Type: "linear", Factor: 2}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := Parse("c.json", []byte("{"+dims+", "+tt.extra+"}"))
			require.NoError(t, err)
			assert.Equal(t, tt.theta, c.RopeTheta)
			assert.Equal(t, tt.scaling, c.RopeScaling)
		})
	}
	_, err := Parse("c.json", []byte("{"+dims+`, "rope_parameters": {"rope_theta": "big", "rope_type": "default"}}`))
	assert.ErrorContains(t, err, `c.json: rope_parameters: rope_theta: want a positive number, got "big"`)
	_, err = Parse("c.json", []byte("{"+dims+`, "rope_parameters": {"rope_theta": 10000, "rope_type": "yarn"}}`))
	assert.ErrorContains(t, err, `c.json: rope_parameters: rope_type: unsupported "yarn"`)
}

func TestParseErrors(t *testing.T) {
	base := map[string]any{
		"vocab_size": 100, "hidden_size": 64, "intermediate_size": 128, "num_hidden_layers": 2,
		"num_attention_heads": 4, "num_key_value_heads": 2,
	}
	tests := []struct {
		name   string
		set    map[string]any // nil value deletes the key
		raw    string         // replaces the whole file when set
		errMsg string
	}{
		{name: "not json", raw: `{"hidden_size": 64,`, errMsg: "m.json: not a JSON object"},
		{name: "array", raw: `[1]`, errMsg: "m.json: not a JSON object"},
		{name: "missing hidden_size", set: map[string]any{"hidden_size": nil}, errMsg: "m.json: hidden_size: missing"},
		{name: "null vocab_size", set: map[string]any{"vocab_size": nil}, errMsg: "m.json: vocab_size: missing"},
		{name: "string", set: map[string]any{"hidden_size": "64"}, errMsg: `m.json: hidden_size: want a positive integer, got "64"`},
		{name: "fraction", set: map[string]any{"intermediate_size": 5.5}, errMsg: "m.json: intermediate_size: want a positive integer, got 5.5"},
		{name: "zero layers", set: map[string]any{"num_hidden_layers": 0}, errMsg: "m.json: num_hidden_layers: want a positive integer, got 0"},
		{name: "negative theta", set: map[string]any{"rope_theta": -1}, errMsg: "m.json: rope_theta: want a positive number, got -1"},
		{name: "bool as string", set: map[string]any{"tie_word_embeddings": "yes"}, errMsg: `m.json: tie_word_embeddings: want true or false, got "yes"`},
		{name: "kv heads do not divide", set: map[string]any{"num_key_value_heads": 3}, errMsg: "m.json: num_key_value_heads: 3 does not divide num_attention_heads 4"},
		{name: "head_dim not derivable", set: map[string]any{"num_attention_heads": 6, "num_key_value_heads": 6}, errMsg: "m.json: head_dim: absent and hidden_size 64 is not a multiple of num_attention_heads 6"},
		{name: "not llama", set: map[string]any{"model_type": "qwen2"}, errMsg: `m.json: model_type: "qwen2" is not a Llama model`},
		{name: "bad dtype", set: map[string]any{"torch_dtype": "int8"}, errMsg: `m.json: torch_dtype: unknown dtype "int8"`},
		{name: "bad eos", set: map[string]any{"eos_token_id": []any{2, "x"}}, errMsg: `m.json: eos_token_id: element 1: want a token id (integer >= 0), got "x"`},
		{name: "bad bos", set: map[string]any{"bos_token_id": -1}, errMsg: "m.json: bos_token_id: want a token id (integer >= 0), got -1"},
		{name: "rope_scaling not object", set: map[string]any{"rope_scaling": 2}, errMsg: "m.json: rope_scaling: want an object or null, got 2"},
		{name: "rope_scaling unknown type", set: map[string]any{"rope_scaling": map[string]any{"rope_type": "yarn", "factor": 4}}, errMsg: `m.json: rope_scaling: rope_type: unsupported "yarn"`},
		{name: "rope_scaling no type", set: map[string]any{"rope_scaling": map[string]any{"factor": 4}}, errMsg: "m.json: rope_scaling: rope_type: missing"},
		{name: "llama3 missing factor", set: map[string]any{"rope_scaling": map[string]any{"rope_type": "llama3", "low_freq_factor": 1, "high_freq_factor": 4, "original_max_position_embeddings": 8192}}, errMsg: "m.json: rope_scaling: factor: missing"},
		{name: "llama3 inverted band", set: map[string]any{"rope_scaling": map[string]any{"type": "llama3", "factor": 8, "low_freq_factor": 4, "high_freq_factor": 1, "original_max_position_embeddings": 8192}}, errMsg: "m.json: rope_scaling: high_freq_factor: 1 must exceed low_freq_factor 4"},
		{name: "linear missing factor", set: map[string]any{"rope_scaling": map[string]any{"type": "linear"}}, errMsg: "m.json: rope_scaling: factor: missing"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			data := []byte(tt.raw)
			if tt.raw == "" {
				m := map[string]any{}
				for k, v := range base {
					m[k] = v
				}
				for k, v := range tt.set {
					if v == nil {
						delete(m, k)
					} else {
						m[k] = v
					}
				}
				var err error
				data, err = json.Marshal(m)
				require.NoError(t, err)
			}
			_, err := Parse("m.json", data)
			require.Error(t, err, "Parse(%s)", data)
			assert.Contains(t, err.Error(), tt.errMsg)
		})
	}
}

func load(t *testing.T, file string) Config {
	t.Helper()
	data, err := os.ReadFile(filepath.Join("testdata", file))
	require.NoError(t, err)
	c, err := Parse(file, data)
	require.NoError(t, err)
	return c
}

func TestParams(t *testing.T) {
	tests := []struct {
		file string
		want int64
	}{
		// Parameter counts of the published checkpoints (sum of their
		// safetensors tensor sizes).
		{"tinyllama-1.1b.json", 1_100_048_384},
		{"llama-3-8b.json", 8_030_261_248},
		{"llama-3.2-1b.json", 1_235_814_400},
	}
	for _, tt := range tests {
		t.Run(tt.file, func(t *testing.T) {
			assert.Equal(t, tt.want, load(t, tt.file).Params(), "Params()")
		})
	}
}

func TestWeightBytesPerToken(t *testing.T) {
	tests := []struct {
		file  string
		bytes int
		want  int64
	}{
		// DESIGN.md and GPU.md: Llama-3-8B bf16 reads 15.01 GB per token,
		// TinyLlama-1.1B bf16 2.07 GB.
		{"llama-3-8b.json", 2, 15_009_857_536},
		{"llama-3-8b.json", 4, 30_019_715_072},
		{"tinyllama-1.1b.json", 2, 2_069_028_864},
		// Tied: the lm_head (= the 262,668,288-value embedding table) is read
		// whole although the checkpoint stores it once.
		{"llama-3.2-1b.json", 2, 2_471_632_896},
	}
	for _, tt := range tests {
		t.Run(tt.file, func(t *testing.T) {
			assert.Equal(t, tt.want, load(t, tt.file).WeightBytesPerToken(tt.bytes), "WeightBytesPerToken(%d)", tt.bytes)
		})
	}
	assert.InDelta(t, 15.01, float64(load(t, "llama-3-8b.json").WeightBytesPerToken(2))/1e9, 0.005)
	assert.InDelta(t, 2.07, float64(load(t, "tinyllama-1.1b.json").WeightBytesPerToken(2))/1e9, 0.005)
}

func TestTensors(t *testing.T) {
	c := load(t, "llama-3.2-1b.json")
	ts := c.Tensors()
	require.Len(t, ts, 2+9*16, "tied: no lm_head")
	assert.Equal(t, Tensor{"model.embed_tokens.weight", []int64{128256, 2048}}, ts[0])
	assert.Equal(t, Tensor{"model.layers.0.self_attn.k_proj.weight", []int64{512, 2048}}, ts[3])
	assert.Equal(t, Tensor{"model.layers.15.mlp.down_proj.weight", []int64{2048, 8192}}, ts[len(ts)-2])
	assert.Equal(t, Tensor{"model.norm.weight", []int64{2048}}, ts[len(ts)-1])
	u := load(t, "llama-3-8b.json").Tensors()
	assert.Equal(t, Tensor{"lm_head.weight", []int64{128256, 4096}}, u[len(u)-1])
}

func TestMarshalRoundTrip(t *testing.T) {
	for _, file := range []string{"tinyllama-1.1b.json", "llama-3-8b.json", "llama-3.2-1b.json"} {
		t.Run(file, func(t *testing.T) {
			c := load(t, file)
			data, err := json.Marshal(c)
			require.NoError(t, err)
			back, err := Parse("out.json", data)
			require.NoError(t, err)
			assert.Equal(t, c, back)
		})
	}
}

func TestParseDType(t *testing.T) {
	tests := []struct {
		in   string
		want DType
		size int
	}{
		{"bf16", BF16, 2}, {"bfloat16", BF16, 2}, {"BF16", BF16, 2},
		{"f16", F16, 2}, {"float16", F16, 2},
		{"f32", F32, 4}, {"float32", F32, 4},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			got, err := ParseDType(tt.in)
			require.NoError(t, err)
			assert.Equal(t, tt.want, got)
			assert.Equal(t, tt.size, got.Size())
			back, err := ParseDType(got.Torch())
			require.NoError(t, err)
			assert.Equal(t, got, back)
		})
	}
	_, err := ParseDType("fp8")
	assert.EqualError(t, err, `unknown dtype "fp8" (want f32, f16 or bf16)`)
}
