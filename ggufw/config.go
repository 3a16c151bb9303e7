package ggufw

import (
	"encoding/json"
	"fmt"
	"math"
	"os"
	"path/filepath"
)

// llamaConfig is the part of a Hugging Face LlamaConfig (config.json) the
// GGUF metadata needs, with LlamaConfig's defaults filled in. It accepts what
// the runner's modelcfg accepts: model_type llama, grouped-query attention,
// an explicit head_dim, rope_scaling llama3 or linear (or transformers 5's
// rope_parameters), tied embeddings.
type llamaConfig struct {
	VocabSize, HiddenSize, IntermediateSize, Layers, Heads, KVHeads, HeadDim int
	// HasHeadDim says config.json names head_dim (convert_hf_to_gguf.py then
	// writes attention.key_length and value_length).
	HasHeadDim bool
	MaxPos     int
	RopeTheta  float64
	RMSEps     float64
	Tied       bool
	Rope       *ropeScaling
	BOS        int
	EOS        []int
}

type ropeScaling struct {
	Type                                  string
	Factor, LowFreqFactor, HighFreqFactor float64
	OriginalMaxPos                        int
}

// loadConfig reads dir/config.json.
func loadConfig(dir string) (llamaConfig, error) {
	path := filepath.Join(dir, "config.json")
	data, err := os.ReadFile(path)
	if err != nil {
		return llamaConfig{}, fmt.Errorf("read model config: %w", err)
	}
	return parseConfig(path, data)
}

type cfgFields struct {
	name string
	raw  map[string]json.RawMessage
	err  error
}

func (f *cfgFields) fail(key, format string, args ...any) {
	if f.err == nil {
		f.err = fmt.Errorf("%s: %s: %s", f.name, key, fmt.Sprintf(format, args...))
	}
}

func (f *cfgFields) get(key string) json.RawMessage {
	v, ok := f.raw[key]
	if !ok || string(v) == "null" {
		return nil
	}
	return v
}

func (f *cfgFields) str(key, def string) string {
	v := f.get(key)
	if v == nil {
		return def
	}
	var s string
	if err := json.Unmarshal(v, &s); err != nil {
		f.fail(key, "want a string, got %s", v)
	}
	return s
}

func (f *cfgFields) num(key string) (float64, bool) {
	v := f.get(key)
	if v == nil {
		return 0, false
	}
	var x float64
	if err := json.Unmarshal(v, &x); err != nil {
		f.fail(key, "want a number, got %s", v)
		return 0, false
	}
	return x, true
}

// posInt reads a positive integer; def <= 0 makes the key required.
func (f *cfgFields) posInt(key string, def int) int {
	x, ok := f.num(key)
	if !ok {
		if def <= 0 && f.err == nil {
			f.fail(key, "missing")
		}
		return def
	}
	if x != math.Trunc(x) || x <= 0 || x > 1<<40 {
		f.fail(key, "want a positive integer, got %v", x)
		return def
	}
	return int(x)
}

func (f *cfgFields) posFloat(key string, def float64) float64 {
	x, ok := f.num(key)
	if !ok {
		return def
	}
	if !(x > 0) || math.IsInf(x, 0) {
		f.fail(key, "want a positive number, got %v", x)
		return def
	}
	return x
}

func (f *cfgFields) ids(key string) []int {
	v := f.get(key)
	if v == nil {
		return nil
	}
	var one float64
	if json.Unmarshal(v, &one) == nil {
		if one < 0 || one != math.Trunc(one) {
			f.fail(key, "want a token id, got %s", v)
			return nil
		}
		return []int{int(one)}
	}
	var list []float64
	if err := json.Unmarshal(v, &list); err != nil {
		f.fail(key, "want a token id or a list of them, got %s", v)
		return nil
	}
	out := make([]int, len(list))
	for i, x := range list {
		if x < 0 || x != math.Trunc(x) {
			f.fail(key, "element %d: want a token id, got %v", i, x)
			return nil
		}
		out[i] = int(x)
	}
	return out
}

func parseConfig(name string, data []byte) (llamaConfig, error) {
	var raw map[string]json.RawMessage
	if err := json.Unmarshal(data, &raw); err != nil {
		return llamaConfig{}, fmt.Errorf("%s: not a JSON object: %w", name, err)
	}
	f := &cfgFields{name: name, raw: raw}
	if mt := f.str("model_type", "llama"); mt != "llama" && f.err == nil {
		return llamaConfig{}, fmt.Errorf("%s: model_type: %q is not a Llama model (want \"llama\")", name, mt)
	}
	c := llamaConfig{
		VocabSize:        f.posInt("vocab_size", 0),
		HiddenSize:       f.posInt("hidden_size", 0),
		IntermediateSize: f.posInt("intermediate_size", 0),
		Layers:           f.posInt("num_hidden_layers", 0),
		Heads:            f.posInt("num_attention_heads", 0),
		MaxPos:           f.posInt("max_position_embeddings", 2048),
		RopeTheta:        f.posFloat("rope_theta", 10000),
		RMSEps:           f.posFloat("rms_norm_eps", 1e-6),
		BOS:              -1,
	}
	c.KVHeads = f.posInt("num_key_value_heads", c.Heads)
	if v := f.get("tie_word_embeddings"); v != nil {
		if err := json.Unmarshal(v, &c.Tied); err != nil {
			f.fail("tie_word_embeddings", "want true or false, got %s", v)
		}
	}
	if b := f.ids("bos_token_id"); len(b) > 0 {
		c.BOS = b[0]
	}
	c.EOS = f.ids("eos_token_id")
	if f.get("head_dim") != nil {
		c.HeadDim = f.posInt("head_dim", 0)
		c.HasHeadDim = true
	} else if c.Heads > 0 {
		if c.HiddenSize%c.Heads != 0 {
			f.fail("head_dim", "absent and hidden_size %d is not a multiple of num_attention_heads %d", c.HiddenSize, c.Heads)
		}
		c.HeadDim = c.HiddenSize / c.Heads
	}
	c.Rope = f.rope("rope_scaling")
	if rp := f.get("rope_parameters"); rp != nil {
		// transformers 5 folds rope_theta and the scaling rule into
		// rope_parameters; the legacy keys win when both are present.
		var sub map[string]json.RawMessage
		if err := json.Unmarshal(rp, &sub); err != nil {
			f.fail("rope_parameters", "want an object or null, got %s", rp)
		} else {
			pf := &cfgFields{name: name + ": rope_parameters", raw: sub}
			if f.get("rope_theta") == nil {
				c.RopeTheta = pf.posFloat("rope_theta", c.RopeTheta)
			}
			if f.get("rope_scaling") == nil {
				c.Rope = f.rope("rope_parameters")
			}
			if pf.err != nil && f.err == nil {
				f.err = pf.err
			}
		}
	}
	if f.err != nil {
		return llamaConfig{}, f.err
	}
	if c.Heads%c.KVHeads != 0 {
		return llamaConfig{}, fmt.Errorf("%s: num_key_value_heads: %d does not divide num_attention_heads %d", name, c.KVHeads, c.Heads)
	}
	if c.HeadDim%2 != 0 {
		return llamaConfig{}, fmt.Errorf("%s: head_dim: %d is odd (rotary embeddings rotate pairs)", name, c.HeadDim)
	}
	return c, nil
}

func (f *cfgFields) rope(key string) *ropeScaling {
	v := f.get(key)
	if v == nil {
		return nil
	}
	var raw map[string]json.RawMessage
	if err := json.Unmarshal(v, &raw); err != nil {
		f.fail(key, "want an object or null, got %s", v)
		return nil
	}
	sub := &cfgFields{name: f.name + ": " + key, raw: raw}
	typ := sub.str("rope_type", "")
	if typ == "" {
		typ = sub.str("type", "")
	}
	r := &ropeScaling{Type: typ}
	switch typ {
	case "default":
		r = nil
	case "linear":
		r.Factor = sub.posFloat("factor", 0)
		if sub.get("factor") == nil {
			sub.fail("factor", "missing")
		}
	case "llama3":
		for _, k := range []string{"factor", "low_freq_factor", "high_freq_factor", "original_max_position_embeddings"} {
			if sub.get(k) == nil {
				sub.fail(k, "missing")
			}
		}
		r.Factor = sub.posFloat("factor", 0)
		r.LowFreqFactor = sub.posFloat("low_freq_factor", 0)
		r.HighFreqFactor = sub.posFloat("high_freq_factor", 0)
		r.OriginalMaxPos = sub.posInt("original_max_position_embeddings", 0)
		if sub.err == nil && r.HighFreqFactor <= r.LowFreqFactor {
			sub.fail("high_freq_factor", "%g must exceed low_freq_factor %g", r.HighFreqFactor, r.LowFreqFactor)
		}
	case "":
		sub.fail("rope_type", "missing")
	default:
		sub.fail("rope_type", "unsupported %q (want llama3, linear or default)", typ)
	}
	if sub.err != nil && f.err == nil {
		f.err = sub.err
	}
	return r
}
