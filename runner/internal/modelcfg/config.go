// Package modelcfg reads the config.json of a Hugging Face Llama-family model
// directory and derives what the runner needs from it: parameter counts, the
// weight bytes one decoded token reads (for rooflines), the tensor list a
// checkpoint must hold, and a content hash of the whole directory.
package modelcfg

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"strconv"
)

// ConfigFile is the name of the model configuration inside a model directory.
const ConfigFile = "config.json"

// Config is the subset of a Hugging Face LlamaConfig that decides a model's
// shape and numerics. Parse fills the defaults LlamaConfig applies, so every
// field is meaningful after a successful Parse.
type Config struct {
	// ModelType is config.json's model_type; "llama" when absent.
	ModelType string
	// VocabSize is the number of token ids.
	VocabSize int
	// HiddenSize is the residual stream width.
	HiddenSize int
	// IntermediateSize is the MLP width.
	IntermediateSize int
	// NumHiddenLayers is the number of decoder layers.
	NumHiddenLayers int
	// NumAttentionHeads is the number of query heads.
	NumAttentionHeads int
	// NumKeyValueHeads is the number of key/value heads (grouped-query
	// attention); equal to NumAttentionHeads when config.json omits it.
	NumKeyValueHeads int
	// HeadDim is the width of one attention head; HiddenSize /
	// NumAttentionHeads when config.json omits it.
	HeadDim int
	// MaxPositionEmbeddings is the longest sequence the model was configured
	// for, in tokens.
	MaxPositionEmbeddings int
	// RopeTheta is the rotary embedding base.
	RopeTheta float64
	// RopeScaling is the rotary scaling rule, nil for plain RoPE.
	RopeScaling *RopeScaling
	// RMSNormEps is the epsilon inside every RMSNorm.
	RMSNormEps float64
	// TieWordEmbeddings says lm_head shares model.embed_tokens.weight, so the
	// checkpoint has no lm_head.weight.
	TieWordEmbeddings bool
	// TorchDType is the checkpoint dtype as config.json names it ("bfloat16",
	// "float16", "float32"), empty when absent.
	TorchDType string
	// BOSTokenID is the beginning-of-sequence token id, -1 when absent.
	BOSTokenID int
	// EOSTokenIDs are the end-of-sequence token ids (config.json may give one
	// id or a list), empty when absent.
	EOSTokenIDs []int
}

// RopeScaling is config.json's rope_scaling object.
type RopeScaling struct {
	// Type is "llama3" or "linear" (rope_type, or the older key type).
	Type string
	// Factor scales positions (linear) or long wavelengths (llama3).
	Factor float64
	// LowFreqFactor and HighFreqFactor bound the llama3 interpolation band.
	LowFreqFactor  float64
	HighFreqFactor float64
	// OriginalMaxPositionEmbeddings is the llama3 pre-training context length.
	OriginalMaxPositionEmbeddings int
}

// Load reads and parses dir/config.json.
func Load(dir string) (Config, error) {
	path := filepath.Join(dir, ConfigFile)
	data, err := os.ReadFile(path)
	if err != nil {
		return Config{}, fmt.Errorf("read model config: %w", err)
	}
	return Parse(path, data)
}

// Parse parses the contents of a config.json; name (usually its path) prefixes
// every error, together with the offending field.
func Parse(name string, data []byte) (Config, error) {
	var raw map[string]json.RawMessage
	if err := json.Unmarshal(data, &raw); err != nil {
		return Config{}, fmt.Errorf("%s: not a JSON object: %w", name, err)
	}
	f := fields{name: name, raw: raw}
	c := Config{
		ModelType:             f.str("model_type", "llama"),
		VocabSize:             f.posInt("vocab_size", 0),
		HiddenSize:            f.posInt("hidden_size", 0),
		IntermediateSize:      f.posInt("intermediate_size", 0),
		NumHiddenLayers:       f.posInt("num_hidden_layers", 0),
		NumAttentionHeads:     f.posInt("num_attention_heads", 0),
		MaxPositionEmbeddings: f.posInt("max_position_embeddings", 2048),
		RopeTheta:             f.posFloat("rope_theta", 10000),
		RMSNormEps:            f.posFloat("rms_norm_eps", 1e-6),
		TieWordEmbeddings:     f.boolean("tie_word_embeddings", false),
		TorchDType:            f.str("torch_dtype", ""),
		BOSTokenID:            f.optInt("bos_token_id", -1),
		EOSTokenIDs:           f.intList("eos_token_id"),
	}
	if c.TorchDType == "" {
		// transformers 5 writes "dtype" where 4.x wrote "torch_dtype".
		c.TorchDType = f.str("dtype", "")
	}
	c.NumKeyValueHeads = f.posInt("num_key_value_heads", c.NumAttentionHeads)
	if _, ok := raw["head_dim"]; ok {
		c.HeadDim = f.posInt("head_dim", 0)
	} else if c.NumAttentionHeads > 0 {
		if c.HiddenSize%c.NumAttentionHeads != 0 {
			f.fail("head_dim", "absent and hidden_size %d is not a multiple of num_attention_heads %d", c.HiddenSize, c.NumAttentionHeads)
		}
		c.HeadDim = c.HiddenSize / c.NumAttentionHeads
	}
	c.RopeScaling = f.ropeScaling("rope_scaling")
	if rp := f.get("rope_parameters"); rp != nil {
		// transformers 5 folds rope_theta and the scaling rule into
		// rope_parameters; the legacy keys win when both are present.
		var sub map[string]json.RawMessage
		if err := json.Unmarshal(rp, &sub); err != nil {
			f.fail("rope_parameters", "want an object or null, got %s", rp)
		} else {
			pf := fields{name: name + ": rope_parameters", raw: sub}
			if f.get("rope_theta") == nil {
				c.RopeTheta = pf.posFloat("rope_theta", c.RopeTheta)
			}
			if f.get("rope_scaling") == nil {
				c.RopeScaling = f.ropeScaling("rope_parameters")
			}
			if pf.err != nil && f.err == nil {
				f.err = pf.err
			}
		}
	}
	if f.err != nil {
		return Config{}, f.err
	}
	switch c.ModelType {
	case "llama":
	default:
		return Config{}, fmt.Errorf("%s: model_type: %q is not a Llama model (want \"llama\")", name, c.ModelType)
	}
	if c.NumAttentionHeads%c.NumKeyValueHeads != 0 {
		return Config{}, fmt.Errorf("%s: num_key_value_heads: %d does not divide num_attention_heads %d", name, c.NumKeyValueHeads, c.NumAttentionHeads)
	}
	if _, err := ParseDType(c.TorchDType); c.TorchDType != "" && err != nil {
		return Config{}, fmt.Errorf("%s: torch_dtype: %w", name, err)
	}
	return c, nil
}

// fields decodes config.json fields one at a time so that an error names the
// field; the first error sticks.
type fields struct {
	name string
	raw  map[string]json.RawMessage
	err  error
}

func (f *fields) fail(key, format string, args ...any) {
	if f.err == nil {
		f.err = fmt.Errorf("%s: %s: %s", f.name, key, fmt.Sprintf(format, args...))
	}
}

// get returns the raw value of key, or nil when it is absent or null.
func (f *fields) get(key string) json.RawMessage {
	v, ok := f.raw[key]
	if !ok || bytes.Equal(bytes.TrimSpace(v), []byte("null")) {
		return nil
	}
	return v
}

func (f *fields) str(key, def string) string {
	v := f.get(key)
	if v == nil {
		return def
	}
	var s string
	if err := json.Unmarshal(v, &s); err != nil {
		f.fail(key, "want a string, got %s", v)
		return def
	}
	return s
}

func (f *fields) boolean(key string, def bool) bool {
	v := f.get(key)
	if v == nil {
		return def
	}
	var b bool
	if err := json.Unmarshal(v, &b); err != nil {
		f.fail(key, "want true or false, got %s", v)
		return def
	}
	return b
}

// integer decodes an integral JSON number (5632 or 5632.0, not 5.5 or "5632").
func integer(v json.RawMessage) (int, error) {
	var x float64
	if err := json.Unmarshal(v, &x); err != nil {
		return 0, errors.New("not a number")
	}
	if x != math.Trunc(x) || math.Abs(x) > 1<<53 {
		return 0, errors.New("not an integer")
	}
	return int(x), nil
}

func (f *fields) posInt(key string, def int) int {
	v := f.get(key)
	if v == nil {
		if def <= 0 {
			f.fail(key, "missing")
		}
		return def
	}
	n, err := integer(v)
	if err != nil || n <= 0 {
		f.fail(key, "want a positive integer, got %s", v)
		return def
	}
	return n
}

func (f *fields) optInt(key string, def int) int {
	v := f.get(key)
	if v == nil {
		return def
	}
	n, err := integer(v)
	if err != nil || n < 0 {
		f.fail(key, "want a token id (integer >= 0), got %s", v)
		return def
	}
	return n
}

func (f *fields) intList(key string) []int {
	v := f.get(key)
	if v == nil {
		return nil
	}
	if n, err := integer(v); err == nil && n >= 0 {
		return []int{n}
	}
	var list []json.RawMessage
	if err := json.Unmarshal(v, &list); err != nil {
		f.fail(key, "want a token id or a list of them, got %s", v)
		return nil
	}
	ids := make([]int, 0, len(list))
	for i, e := range list {
		n, err := integer(e)
		if err != nil || n < 0 {
			f.fail(key, "element %d: want a token id (integer >= 0), got %s", i, e)
			return nil
		}
		ids = append(ids, n)
	}
	return ids
}

func (f *fields) posFloat(key string, def float64) float64 {
	v := f.get(key)
	if v == nil {
		return def
	}
	var x float64
	if err := json.Unmarshal(v, &x); err != nil || !(x > 0) || math.IsInf(x, 0) {
		f.fail(key, "want a positive number, got %s", v)
		return def
	}
	return x
}

func (f *fields) ropeScaling(key string) *RopeScaling {
	v := f.get(key)
	if v == nil {
		return nil
	}
	var raw map[string]json.RawMessage
	if err := json.Unmarshal(v, &raw); err != nil {
		f.fail(key, "want an object or null, got %s", v)
		return nil
	}
	sub := fields{name: f.name + ": " + key, raw: raw}
	typ := sub.str("rope_type", "")
	if typ == "" {
		typ = sub.str("type", "")
	}
	rs := &RopeScaling{Type: typ}
	switch typ {
	case "default":
		// transformers 5 writes {"rope_type": "default", "rope_theta": …}: plain RoPE.
		rs = nil
	case "linear":
		rs.Factor = sub.posFloat("factor", 0)
		if _, ok := raw["factor"]; !ok {
			sub.fail("factor", "missing")
		}
	case "llama3":
		for _, k := range []string{"factor", "low_freq_factor", "high_freq_factor", "original_max_position_embeddings"} {
			if sub.get(k) == nil {
				sub.fail(k, "missing")
			}
		}
		rs.Factor = sub.posFloat("factor", 0)
		rs.LowFreqFactor = sub.posFloat("low_freq_factor", 0)
		rs.HighFreqFactor = sub.posFloat("high_freq_factor", 0)
		rs.OriginalMaxPositionEmbeddings = sub.posInt("original_max_position_embeddings", 0)
		if sub.err == nil && rs.HighFreqFactor <= rs.LowFreqFactor {
			sub.fail("high_freq_factor", "%g must exceed low_freq_factor %g", rs.HighFreqFactor, rs.LowFreqFactor)
		}
	case "":
		sub.fail("rope_type", "missing")
	default:
		sub.fail("rope_type", "unsupported %q (want llama3, linear or default)", typ)
	}
	if sub.err != nil && f.err == nil {
		f.err = sub.err
	}
	return rs
}

// hfConfig is config.json as transformers' LlamaConfig writes it, in its key
// order.
type hfConfig struct {
	Architectures         []string       `json:"architectures"`
	AttentionBias         bool           `json:"attention_bias"`
	AttentionDropout      float64        `json:"attention_dropout"`
	BOSTokenID            *int           `json:"bos_token_id"`
	EOSTokenID            any            `json:"eos_token_id"`
	HeadDim               int            `json:"head_dim"`
	HiddenAct             string         `json:"hidden_act"`
	HiddenSize            int            `json:"hidden_size"`
	InitializerRange      float64        `json:"initializer_range"`
	IntermediateSize      int            `json:"intermediate_size"`
	MaxPositionEmbeddings int            `json:"max_position_embeddings"`
	MLPBias               bool           `json:"mlp_bias"`
	ModelType             string         `json:"model_type"`
	NumAttentionHeads     int            `json:"num_attention_heads"`
	NumHiddenLayers       int            `json:"num_hidden_layers"`
	NumKeyValueHeads      int            `json:"num_key_value_heads"`
	PretrainingTP         int            `json:"pretraining_tp"`
	RMSNormEps            float64        `json:"rms_norm_eps"`
	RopeScaling           map[string]any `json:"rope_scaling"`
	RopeTheta             float64        `json:"rope_theta"`
	TieWordEmbeddings     bool           `json:"tie_word_embeddings"`
	TorchDType            string         `json:"torch_dtype,omitempty"`
	UseCache              bool           `json:"use_cache"`
	VocabSize             int            `json:"vocab_size"`
}

// MarshalJSON writes c as a Hugging Face LlamaForCausalLM config.json that
// transformers loads and Parse reads back to c.
func (c Config) MarshalJSON() ([]byte, error) {
	h := hfConfig{
		Architectures:         []string{"LlamaForCausalLM"},
		HeadDim:               c.HeadDim,
		HiddenAct:             "silu",
		HiddenSize:            c.HiddenSize,
		InitializerRange:      0.02,
		IntermediateSize:      c.IntermediateSize,
		MaxPositionEmbeddings: c.MaxPositionEmbeddings,
		ModelType:             "llama",
		NumAttentionHeads:     c.NumAttentionHeads,
		NumHiddenLayers:       c.NumHiddenLayers,
		NumKeyValueHeads:      c.NumKeyValueHeads,
		PretrainingTP:         1,
		RMSNormEps:            c.RMSNormEps,
		RopeTheta:             c.RopeTheta,
		TieWordEmbeddings:     c.TieWordEmbeddings,
		TorchDType:            c.TorchDType,
		UseCache:              true,
		VocabSize:             c.VocabSize,
	}
	if c.BOSTokenID >= 0 {
		id := c.BOSTokenID
		h.BOSTokenID = &id
	}
	switch len(c.EOSTokenIDs) {
	case 0:
	case 1:
		h.EOSTokenID = c.EOSTokenIDs[0]
	default:
		h.EOSTokenID = c.EOSTokenIDs
	}
	if rs := c.RopeScaling; rs != nil {
		h.RopeScaling = map[string]any{"rope_type": rs.Type, "factor": rs.Factor}
		if rs.Type == "llama3" {
			h.RopeScaling["low_freq_factor"] = rs.LowFreqFactor
			h.RopeScaling["high_freq_factor"] = rs.HighFreqFactor
			h.RopeScaling["original_max_position_embeddings"] = rs.OriginalMaxPositionEmbeddings
		}
	}
	return json.MarshalIndent(h, "", "  ")
}

// Tensor names one weight tensor of a Llama checkpoint and its shape, rows
// first as in PyTorch (a Linear's weight is [out, in]).
type Tensor struct {
	Name  string
	Shape []int64
}

// Elements is the number of values in t.
func (t Tensor) Elements() int64 {
	n := int64(1)
	for _, d := range t.Shape {
		n *= d
	}
	return n
}

// Tensors lists every tensor a checkpoint of c holds, with Hugging Face names,
// in forward order: embeddings, each layer, final norm, then lm_head unless
// the embeddings are tied.
func (c Config) Tensors() []Tensor {
	h, i := int64(c.HiddenSize), int64(c.IntermediateSize)
	q, kv := int64(c.NumAttentionHeads*c.HeadDim), int64(c.NumKeyValueHeads*c.HeadDim)
	ts := make([]Tensor, 0, 3+9*c.NumHiddenLayers)
	ts = append(ts, Tensor{"model.embed_tokens.weight", []int64{int64(c.VocabSize), h}})
	for l := range c.NumHiddenLayers {
		p := "model.layers." + strconv.Itoa(l) + "."
		ts = append(ts,
			Tensor{p + "input_layernorm.weight", []int64{h}},
			Tensor{p + "self_attn.q_proj.weight", []int64{q, h}},
			Tensor{p + "self_attn.k_proj.weight", []int64{kv, h}},
			Tensor{p + "self_attn.v_proj.weight", []int64{kv, h}},
			Tensor{p + "self_attn.o_proj.weight", []int64{h, q}},
			Tensor{p + "post_attention_layernorm.weight", []int64{h}},
			Tensor{p + "mlp.gate_proj.weight", []int64{i, h}},
			Tensor{p + "mlp.up_proj.weight", []int64{i, h}},
			Tensor{p + "mlp.down_proj.weight", []int64{h, i}},
		)
	}
	ts = append(ts, Tensor{"model.norm.weight", []int64{h}})
	if !c.TieWordEmbeddings {
		ts = append(ts, Tensor{"lm_head.weight", []int64{int64(c.VocabSize), h}})
	}
	return ts
}

// Params is the number of parameters a checkpoint of c stores (a tied lm_head
// is counted once, as part of the embeddings).
func (c Config) Params() int64 {
	var n int64
	for _, t := range c.Tensors() {
		n += t.Elements()
	}
	return n
}

// WeightBytesPerToken is the number of weight bytes one decoded token reads
// at batch 1 when every weight is stored in dtypeBytes bytes: every layer
// weight, the final norm, the whole lm_head (counted even when tied to the
// embeddings, since the output projection reads all of it) and one embedding
// row. It is the numerator of the decode roofline.
func (c Config) WeightBytesPerToken(dtypeBytes int) int64 {
	h, v := int64(c.HiddenSize), int64(c.VocabSize)
	n := c.Params() - v*h // drop the embedding table…
	if c.TieWordEmbeddings {
		n += v * h // …but keep the lm_head it doubles as
	}
	n += h // one embedding row
	return n * int64(dtypeBytes)
}
