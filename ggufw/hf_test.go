package ggufw

import (
	"encoding/binary"
	"encoding/json"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"testing"
)

// hfSpec describes a small HF Llama directory for tests.
type hfSpec struct {
	vocab, hidden, inter, layers, heads, kvHeads, headDim int
	explicitHeadDim                                       bool
	tied                                                  bool
	rope                                                  string // "", "llama3", "linear"
	dtype                                                 string // "F32", "F16", "BF16"
	tokenizer                                             string // directory whose files are copied, "" for none
	seed                                                  uint64
	extra                                                 map[string][]int64 // extra tensors (F32, zeros)
	drop                                                  string             // a tensor to leave out
}

// microSpec is the fixture model: rows of 256 so that q4_k applies, GQA,
// an explicit head_dim, tied embeddings, llama3 rope scaling, a byte-level
// BPE tokenizer.
var microSpec = hfSpec{vocab: 262, hidden: 256, inter: 256, layers: 1, heads: 2, kvHeads: 1, headDim: 128, explicitHeadDim: true,
	tied: true, rope: "llama3", dtype: "BF16", tokenizer: "testdata/micro", seed: 7}

// rng is a small deterministic generator (SplitMix64), stable across Go
// versions, so fixtures can be regenerated bit for bit.
type rng struct{ s uint64 }

func (r *rng) next() uint64 {
	r.s += 0x9e3779b97f4a7c15
	z := r.s
	z = (z ^ z>>30) * 0xbf58476d1ce4e5b9
	z = (z ^ z>>27) * 0x94d049bb133111eb
	return z ^ z>>31
}

// uniform is in [-1, 1).
func (r *rng) uniform() float32 { return float32(r.next()>>40)/float32(1<<23) - 1 }

// writeHF writes an HF Llama directory and returns its tensors' values (as
// stored, widened to f32) by HF name.
func writeHF(t testing.TB, dir string, s hfSpec) map[string][]float32 {
	t.Helper()
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	cfg := map[string]any{
		"architectures": []string{"LlamaForCausalLM"}, "model_type": "llama", "vocab_size": s.vocab, "hidden_size": s.hidden,
		"intermediate_size": s.inter, "num_hidden_layers": s.layers, "num_attention_heads": s.heads,
		"num_key_value_heads": s.kvHeads, "max_position_embeddings": 256, "rope_theta": 500000.0, "rms_norm_eps": 1e-5,
		"tie_word_embeddings": s.tied, "bos_token_id": 260, "eos_token_id": []int{261},
		"torch_dtype": map[string]string{"F32": "float32", "F16": "float16", "BF16": "bfloat16"}[s.dtype],
	}
	if s.explicitHeadDim {
		cfg["head_dim"] = s.headDim
	}
	switch s.rope {
	case "llama3":
		cfg["rope_scaling"] = map[string]any{"rope_type": "llama3", "factor": 8.0, "low_freq_factor": 1.0, "high_freq_factor": 4.0,
			"original_max_position_embeddings": 64}
	case "linear":
		cfg["rope_scaling"] = map[string]any{"type": "linear", "factor": 2.0}
	}
	b, _ := json.MarshalIndent(cfg, "", "  ")
	if err := os.WriteFile(filepath.Join(dir, "config.json"), b, 0o644); err != nil {
		t.Fatal(err)
	}
	if s.tokenizer != "" {
		for _, f := range []string{"tokenizer.json", "tokenizer_config.json"} {
			b, err := os.ReadFile(filepath.Join(s.tokenizer, f))
			if err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(filepath.Join(dir, f), b, 0o644); err != nil {
				t.Fatal(err)
			}
		}
	}
	h, i := int64(s.hidden), int64(s.inter)
	q, kv := int64(s.heads*s.headDim), int64(s.kvHeads*s.headDim)
	type ten struct {
		name  string
		shape []int64
		norm  bool
	}
	ts := []ten{{"model.embed_tokens.weight", []int64{int64(s.vocab), h}, false}}
	for l := range s.layers {
		p := "model.layers." + strconv.Itoa(l) + "."
		ts = append(ts, ten{p + "input_layernorm.weight", []int64{h}, true}, ten{p + "self_attn.q_proj.weight", []int64{q, h}, false},
			ten{p + "self_attn.k_proj.weight", []int64{kv, h}, false}, ten{p + "self_attn.v_proj.weight", []int64{kv, h}, false},
			ten{p + "self_attn.o_proj.weight", []int64{h, q}, false}, ten{p + "post_attention_layernorm.weight", []int64{h}, true},
			ten{p + "mlp.gate_proj.weight", []int64{i, h}, false}, ten{p + "mlp.up_proj.weight", []int64{i, h}, false},
			ten{p + "mlp.down_proj.weight", []int64{h, i}, false})
	}
	ts = append(ts, ten{"model.norm.weight", []int64{h}, true})
	if !s.tied {
		ts = append(ts, ten{"lm_head.weight", []int64{int64(s.vocab), h}, false})
	}
	for _, name := range slices.Sorted(mapKeys(s.extra)) {
		ts = append(ts, ten{name, s.extra[name], true})
	}
	r := &rng{s.seed}
	vals := map[string][]float32{}
	header := map[string]any{"__metadata__": map[string]string{"format": "pt"}}
	var data []byte
	le := binary.LittleEndian
	for k, tn := range ts {
		if tn.name == s.drop {
			continue
		}
		n := int64(1)
		for _, d := range tn.shape {
			n *= d
		}
		v := make([]float32, n)
		start := len(data)
		for j := range v {
			x := r.uniform() * 0.05 * float32(1+k%3)
			if tn.norm {
				x = 1 + x
			}
			if j%97 == 5 {
				x *= 8 // outliers, as real weights have
			}
			switch s.dtype {
			case "F32":
				data = le.AppendUint32(data, math.Float32bits(x))
			case "F16":
				hb := FloatToHalf(x)
				x = HalfToFloat(hb)
				data = le.AppendUint16(data, hb)
			case "BF16":
				bb := FloatToBF16(x)
				x = math.Float32frombits(uint32(bb) << 16)
				data = le.AppendUint16(data, bb)
			}
			v[j] = x
		}
		vals[tn.name] = v
		header[tn.name] = map[string]any{"dtype": s.dtype, "shape": tn.shape, "data_offsets": []int{start, len(data)}}
	}
	hb, _ := json.Marshal(header)
	for len(hb)%8 != 0 {
		hb = append(hb, ' ')
	}
	out := le.AppendUint64(nil, uint64(len(hb)))
	out = append(append(out, hb...), data...)
	if err := os.WriteFile(filepath.Join(dir, "model.safetensors"), out, 0o644); err != nil {
		t.Fatal(err)
	}
	return vals
}

// fixtureName is the fixture file of a conversion to typ.
func fixtureName(typ Type) string { return fmt.Sprintf("micro-%s.gguf", typ) }
