package llama

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/cuda-inference-benchmarks/cib/engines/reference/internal/safetensors"
)

const base = `"vocab_size":32,"hidden_size":16,"intermediate_size":24,"num_hidden_layers":1,"num_attention_heads":4`

func TestParseConfig(t *testing.T) {
	tests := []struct {
		name  string
		json  string
		check func(t *testing.T, c Config)
	}{
		{"transformers defaults", `{` + base + `}`, func(t *testing.T, c Config) {
			assert.Equal(t, 4, c.NumKeyValueHeads, "num_key_value_heads defaults to num_attention_heads")
			assert.Equal(t, 4, c.HeadDim, "head_dim defaults to hidden_size/num_attention_heads")
			assert.Equal(t, 10000.0, c.RopeTheta)
			assert.Equal(t, 1e-6, c.RMSNormEps)
			assert.Equal(t, 2048, c.MaxPositionEmbeddings)
			assert.False(t, c.TieWordEmbeddings)
			assert.Equal(t, "default", c.RopeScaling.Kind())
		}},
		{"explicit head_dim and null rope_scaling", `{` + base + `,"head_dim":8,"num_key_value_heads":2,"rope_scaling":null}`, func(t *testing.T, c Config) {
			assert.Equal(t, 8, c.HeadDim)
			assert.Equal(t, 2, c.NumKeyValueHeads)
		}},
		{"legacy type key", `{` + base + `,"rope_scaling":{"type":"llama3","factor":8,"low_freq_factor":1,"high_freq_factor":4,"original_max_position_embeddings":8192}}`, func(t *testing.T, c Config) {
			assert.Equal(t, "llama3", c.RopeScaling.Kind())
		}},
		{"transformers 5 rope_parameters", `{` + base + `,"rope_parameters":{"rope_type":"llama3","rope_theta":500000,"factor":32,"low_freq_factor":1,"high_freq_factor":4,"original_max_position_embeddings":8192}}`, func(t *testing.T, c Config) {
			assert.Equal(t, 500000.0, c.RopeTheta)
			require.Equal(t, "llama3", c.RopeScaling.Kind())
			assert.Equal(t, 32.0, c.RopeScaling.Factor)
			assert.Equal(t, 8192, c.RopeScaling.OriginalMaxPositionEmbeddings)
		}},
		{"rope_parameters default type", `{` + base + `,"rope_parameters":{"rope_type":"default","rope_theta":500}}`, func(t *testing.T, c Config) {
			assert.Equal(t, 500.0, c.RopeTheta)
			assert.Nil(t, c.RopeScaling)
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := ParseConfig([]byte(tt.json))
			require.NoError(t, err)
			tt.check(t, c)
		})
	}
}

func TestParseConfigErrors(t *testing.T) {
	tests := []struct {
		name    string
		json    string
		wantErr string
	}{
		{"not json", `{`, "parse config"},
		{"other model type", `{` + base + `,"model_type":"mistral"}`, `model_type "mistral": only llama is supported`},
		{"missing sizes", `{"num_attention_heads":4}`, "vocab_size: 0, want > 0"},
		{"kv heads do not divide", `{` + base + `,"num_key_value_heads":3}`, "num_attention_heads 4 is not a multiple of num_key_value_heads 3"},
		{"odd head_dim", `{` + base + `,"head_dim":5}`, "head_dim 5 is odd"},
		{"unsupported rope scaling", `{` + base + `,"rope_scaling":{"rope_type":"yarn","factor":4}}`, `rope_scaling type "yarn": only llama3 is supported`},
		{"incomplete llama3 scaling", `{` + base + `,"rope_scaling":{"rope_type":"llama3","factor":8}}`, "rope_scaling llama3: need"},
		{"biases", `{` + base + `,"attention_bias":true}`, "biases are not supported"},
		{"activation", `{` + base + `,"hidden_act":"gelu"}`, `hidden_act "gelu": only silu is supported`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := ParseConfig([]byte(tt.json))
			require.Error(t, err, "ParseConfig(%s) = nil error", tt.json)
			assert.Contains(t, err.Error(), tt.wantErr)
		})
	}
}

func TestParams(t *testing.T) {
	// gqa_untied_f32: embed 48·16 + lm_head 48·16 + norm 16 + 2 layers ×
	// (q 16·16 + k 8·16 + v 8·16 + o 16·16 + 3·16·32 + 2·16) = 1536 + 16 + 2·2336.
	c, err := ReadConfig(filepath.Join(fixtureDir("gqa_untied_f32"), "config.json"))
	require.NoError(t, err)
	assert.Equal(t, int64(6224), c.Params())
	m, _ := loadFixture(t, "gqa_untied_f32", 1)
	assert.Equal(t, c.Params()*4, m.Weights().Bytes())
}

// TestLoadWeightsErrors pairs fixture checkpoints with configs that do not
// match them.
func TestLoadWeightsErrors(t *testing.T) {
	tests := []struct {
		name    string
		fixture string
		edit    func(c *Config)
		wantErr string
	}{
		{"hidden size mismatch", "gqa_untied_f32", func(c *Config) { c.HiddenSize = 32; c.HeadDim = 8 },
			`tensor "model.embed_tokens.weight": shape [48 16], want [48 32]`},
		{"kv heads mismatch", "gqa_untied_f32", func(c *Config) { c.NumKeyValueHeads = 4 },
			`tensor "model.layers.0.self_attn.k_proj.weight": shape [8 16], want [16 16]`},
		{"untied config on tied checkpoint", "mha_tied_bf16", func(c *Config) { c.TieWordEmbeddings = false },
			`tensor "lm_head.weight": tensor not found`},
		{"more layers than stored", "llama3_f16_sharded", func(c *Config) { c.NumHiddenLayers = 3 },
			`tensor "model.layers.2.input_layernorm.weight": tensor not found`},
		{"fewer layers than stored", "gqa_untied_f32", func(c *Config) { c.NumHiddenLayers = 1 },
			"checkpoint has tensors for layers beyond num_hidden_layers=1"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := fixtureDir(tt.fixture)
			cfg, err := ReadConfig(filepath.Join(dir, "config.json"))
			require.NoError(t, err)
			tt.edit(&cfg)
			ckpt, err := safetensors.Open(dir)
			require.NoError(t, err)
			defer ckpt.Close()
			_, _, err = LoadWeights(ckpt, cfg)
			require.Error(t, err)
			assert.Contains(t, err.Error(), tt.wantErr)
		})
	}
}

func TestLoadWeightsDTypes(t *testing.T) {
	for _, tt := range []struct{ fixture, want string }{
		{"gqa_untied_f32", "F32"}, {"mha_tied_bf16", "BF16"}, {"llama3_f16_sharded", "F16"},
	} {
		t.Run(tt.fixture, func(t *testing.T) {
			dir := fixtureDir(tt.fixture)
			cfg, err := ReadConfig(filepath.Join(dir, "config.json"))
			require.NoError(t, err)
			ckpt, err := safetensors.Open(dir)
			require.NoError(t, err)
			defer ckpt.Close()
			w, dtypes, err := LoadWeights(ckpt, cfg)
			require.NoError(t, err)
			assert.Equal(t, []string{tt.want}, dtypes)
			if cfg.TieWordEmbeddings {
				assert.Same(t, &w.Embed[0], &w.LMHead[0], "tied lm_head must alias the embeddings")
			}
		})
	}
}

func TestReadConfigMissing(t *testing.T) {
	_, err := ReadConfig(filepath.Join(t.TempDir(), "config.json"))
	require.Error(t, err)
	assert.ErrorIs(t, err, os.ErrNotExist)
}
