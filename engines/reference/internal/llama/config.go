// Package llama is a pure-Go fp32 implementation of the Hugging Face Llama
// architecture: config parsing, weight loading and a greedy forward pass with a
// KV cache, written to be the numerical reference other engines are compared
// with. Every operation follows transformers' LlamaForCausalLM.
package llama

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
)

// Config is the subset of an HF Llama config.json this package uses.
type Config struct {
	ModelType             string       `json:"model_type"`
	VocabSize             int          `json:"vocab_size"`
	HiddenSize            int          `json:"hidden_size"`
	IntermediateSize      int          `json:"intermediate_size"`
	NumHiddenLayers       int          `json:"num_hidden_layers"`
	NumAttentionHeads     int          `json:"num_attention_heads"`
	NumKeyValueHeads      int          `json:"num_key_value_heads"`
	HeadDim               int          `json:"head_dim"`
	MaxPositionEmbeddings int          `json:"max_position_embeddings"`
	RopeTheta             float64      `json:"rope_theta"`
	RopeScaling           *RopeScaling `json:"rope_scaling"`
	RMSNormEps            float64      `json:"rms_norm_eps"`
	TieWordEmbeddings     bool         `json:"tie_word_embeddings"`
	HiddenAct             string       `json:"hidden_act"`
	AttentionBias         bool         `json:"attention_bias"`
	MLPBias               bool         `json:"mlp_bias"`
	TorchDType            string       `json:"torch_dtype"`
	// RopeParameters is the transformers 5 form of rope_theta + rope_scaling;
	// ParseConfig folds it into those two fields.
	RopeParameters *RopeParameters `json:"rope_parameters,omitempty"`
}

// RopeParameters is transformers 5's rope_parameters object.
type RopeParameters struct {
	RopeScaling
	RopeTheta float64 `json:"rope_theta"`
}

// RopeScaling is config.json's rope_scaling object. Only the "llama3" type
// (and "default", meaning none) is supported.
type RopeScaling struct {
	RopeType                      string  `json:"rope_type"`
	Type                          string  `json:"type"`
	Factor                        float64 `json:"factor"`
	LowFreqFactor                 float64 `json:"low_freq_factor"`
	HighFreqFactor                float64 `json:"high_freq_factor"`
	OriginalMaxPositionEmbeddings int     `json:"original_max_position_embeddings"`
}

// Kind returns the scaling type, preferring rope_type over the legacy type key.
func (r *RopeScaling) Kind() string {
	if r == nil {
		return "default"
	}
	if r.RopeType != "" {
		return r.RopeType
	}
	if r.Type != "" {
		return r.Type
	}
	return "default"
}

// ReadConfig reads and validates config.json at path, filling in the same
// defaults as transformers' LlamaConfig.
func ReadConfig(path string) (Config, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return Config{}, fmt.Errorf("read config: %w", err)
	}
	return ParseConfig(b)
}

// ParseConfig parses and validates a config.json document.
func ParseConfig(b []byte) (Config, error) {
	// Defaults of transformers' LlamaConfig for keys a config may omit.
	c := Config{
		MaxPositionEmbeddings: 2048,
		RopeTheta:             10000,
		RMSNormEps:            1e-6,
		HiddenAct:             "silu",
	}
	if err := json.Unmarshal(b, &c); err != nil {
		return Config{}, fmt.Errorf("parse config: %w", err)
	}
	if rp := c.RopeParameters; rp != nil {
		if rp.RopeTheta > 0 {
			c.RopeTheta = rp.RopeTheta
		}
		if c.RopeScaling == nil && rp.RopeScaling.Kind() != "default" {
			rs := rp.RopeScaling
			c.RopeScaling = &rs
		}
	}
	if c.NumKeyValueHeads == 0 {
		c.NumKeyValueHeads = c.NumAttentionHeads
	}
	if c.HeadDim == 0 && c.NumAttentionHeads > 0 {
		c.HeadDim = c.HiddenSize / c.NumAttentionHeads
	}
	if err := c.Validate(); err != nil {
		return Config{}, fmt.Errorf("config: %w", err)
	}
	return c, nil
}

// Validate checks that c describes a Llama model this package can run.
func (c *Config) Validate() error {
	var errs []error
	add := func(format string, a ...any) { errs = append(errs, fmt.Errorf(format, a...)) }
	if c.ModelType != "" && c.ModelType != "llama" {
		add("model_type %q: only llama is supported", c.ModelType)
	}
	for _, f := range []struct {
		name string
		v    int
	}{
		{"vocab_size", c.VocabSize}, {"hidden_size", c.HiddenSize}, {"intermediate_size", c.IntermediateSize},
		{"num_hidden_layers", c.NumHiddenLayers}, {"num_attention_heads", c.NumAttentionHeads},
		{"num_key_value_heads", c.NumKeyValueHeads}, {"head_dim", c.HeadDim},
		{"max_position_embeddings", c.MaxPositionEmbeddings},
	} {
		if f.v <= 0 {
			add("%s: %d, want > 0", f.name, f.v)
		}
	}
	if c.NumKeyValueHeads > 0 && c.NumAttentionHeads%c.NumKeyValueHeads != 0 {
		add("num_attention_heads %d is not a multiple of num_key_value_heads %d", c.NumAttentionHeads, c.NumKeyValueHeads)
	}
	if c.HeadDim%2 != 0 {
		add("head_dim %d is odd; rotary embedding needs it even", c.HeadDim)
	}
	if c.RopeTheta <= 0 {
		add("rope_theta: %g, want > 0", c.RopeTheta)
	}
	if c.RMSNormEps <= 0 {
		add("rms_norm_eps: %g, want > 0", c.RMSNormEps)
	}
	if c.HiddenAct != "silu" {
		add("hidden_act %q: only silu is supported", c.HiddenAct)
	}
	if c.AttentionBias || c.MLPBias {
		add("attention_bias/mlp_bias: biases are not supported")
	}
	switch k := c.RopeScaling.Kind(); k {
	case "default":
	case "llama3":
		r := c.RopeScaling
		if r.Factor <= 0 || r.LowFreqFactor <= 0 || r.HighFreqFactor <= r.LowFreqFactor || r.OriginalMaxPositionEmbeddings <= 0 {
			add("rope_scaling llama3: need factor > 0, 0 < low_freq_factor < high_freq_factor, original_max_position_embeddings > 0; got %+v", *r)
		}
	default:
		add("rope_scaling type %q: only llama3 is supported", k)
	}
	return errors.Join(errs...)
}

// Params returns the number of parameters of a model with this config.
func (c *Config) Params() int64 {
	h, q, kv, i := int64(c.HiddenSize), int64(c.NumAttentionHeads*c.HeadDim), int64(c.NumKeyValueHeads*c.HeadDim), int64(c.IntermediateSize)
	layer := h*q + 2*h*kv + q*h + 3*h*i + 2*h
	n := int64(c.VocabSize)*h + int64(c.NumHiddenLayers)*layer + h
	if !c.TieWordEmbeddings {
		n += int64(c.VocabSize) * h
	}
	return n
}
