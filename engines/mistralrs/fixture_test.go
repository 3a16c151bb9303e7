package main

import (
	"encoding/binary"
	"encoding/json"
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"sort"
	"strconv"
)

// tinyShape is the runner's `tiny` synth shape (HELPERS.md), used when the
// runner binary is not built: the same config, a WordLevel tokenizer over
// "<id>" tokens like the synth's, f32 weights uniform on ±0.02·√3.
var tinyShape = struct {
	vocab, hidden, inter, layers, heads, kvHeads, maxPos int
}{512, 64, 176, 2, 4, 2, 1024}

func writeTinyFixture(dir string, seed uint64) error {
	s := tinyShape
	headDim := s.hidden / s.heads
	type tensor struct {
		name  string
		shape []int
		norm  bool
	}
	ts := []tensor{{"model.embed_tokens.weight", []int{s.vocab, s.hidden}, false}}
	for i := range s.layers {
		p := fmt.Sprintf("model.layers.%d.", i)
		ts = append(ts,
			tensor{p + "input_layernorm.weight", []int{s.hidden}, true},
			tensor{p + "post_attention_layernorm.weight", []int{s.hidden}, true},
			tensor{p + "self_attn.q_proj.weight", []int{s.heads * headDim, s.hidden}, false},
			tensor{p + "self_attn.k_proj.weight", []int{s.kvHeads * headDim, s.hidden}, false},
			tensor{p + "self_attn.v_proj.weight", []int{s.kvHeads * headDim, s.hidden}, false},
			tensor{p + "self_attn.o_proj.weight", []int{s.hidden, s.heads * headDim}, false},
			tensor{p + "mlp.gate_proj.weight", []int{s.inter, s.hidden}, false},
			tensor{p + "mlp.up_proj.weight", []int{s.inter, s.hidden}, false},
			tensor{p + "mlp.down_proj.weight", []int{s.hidden, s.inter}, false},
		)
	}
	ts = append(ts, tensor{"model.norm.weight", []int{s.hidden}, true}, tensor{"lm_head.weight", []int{s.vocab, s.hidden}, false})
	sort.Slice(ts, func(i, j int) bool { return ts[i].name < ts[j].name })

	rng := rand.New(rand.NewPCG(seed, 0x6d69737472616c))
	a := 0.02 * math.Sqrt(3)
	header := map[string]any{}
	var data []byte
	for _, t := range ts {
		n := 1
		for _, d := range t.shape {
			n *= d
		}
		start := len(data)
		for range n {
			v := float32(1)
			if !t.norm {
				v = float32((rng.Float64()*2 - 1) * a)
			}
			data = binary.LittleEndian.AppendUint32(data, math.Float32bits(v))
		}
		header[t.name] = map[string]any{"dtype": "F32", "shape": t.shape, "data_offsets": []int{start, len(data)}}
	}
	hb, err := json.Marshal(header)
	if err != nil {
		return err
	}
	for len(hb)%8 != 0 {
		hb = append(hb, ' ')
	}
	st := binary.LittleEndian.AppendUint64(nil, uint64(len(hb)))
	st = append(append(st, hb...), data...)

	cfg := map[string]any{
		"architectures": []string{"LlamaForCausalLM"}, "model_type": "llama", "hidden_act": "silu",
		"vocab_size": s.vocab, "hidden_size": s.hidden, "intermediate_size": s.inter,
		"num_hidden_layers": s.layers, "num_attention_heads": s.heads, "num_key_value_heads": s.kvHeads,
		"head_dim": headDim, "max_position_embeddings": s.maxPos, "rope_theta": 10000.0, "rms_norm_eps": 1e-5,
		"tie_word_embeddings": false, "bos_token_id": 1, "eos_token_id": 2, "torch_dtype": "float32",
		"attention_bias": false, "mlp_bias": false, "rope_scaling": nil,
	}
	cb, err := json.MarshalIndent(cfg, "", "  ")
	if err != nil {
		return err
	}
	vocab := map[string]int{}
	tok := func(id int) string {
		switch id {
		case 0:
			return "<unk>"
		case 1:
			return "<s>"
		case 2:
			return "</s>"
		}
		return "<" + strconv.Itoa(id) + ">"
	}
	for id := range s.vocab {
		vocab[tok(id)] = id
	}
	var added []map[string]any
	for id := range 3 {
		added = append(added, map[string]any{"id": id, "content": tok(id), "single_word": false, "lstrip": false, "rstrip": false, "normalized": false, "special": true})
	}
	tk := map[string]any{
		"version": "1.0", "truncation": nil, "padding": nil, "added_tokens": added, "normalizer": nil,
		"pre_tokenizer": map[string]any{"type": "WhitespaceSplit"}, "post_processor": nil, "decoder": nil,
		"model": map[string]any{"type": "WordLevel", "vocab": vocab, "unk_token": "<unk>"},
	}
	tb, err := json.Marshal(tk)
	if err != nil {
		return err
	}
	tc, _ := json.Marshal(map[string]any{"bos_token": "<s>", "eos_token": "</s>", "unk_token": "<unk>", "tokenizer_class": "PreTrainedTokenizerFast", "model_max_length": s.maxPos})
	gc, _ := json.Marshal(map[string]any{"bos_token_id": 1, "eos_token_id": 2, "do_sample": false})
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	for name, b := range map[string][]byte{
		"model.safetensors": st, "config.json": cb, "tokenizer.json": tb,
		"tokenizer_config.json": tc, "generation_config.json": gc,
	} {
		if err := os.WriteFile(filepath.Join(dir, name), b, 0o644); err != nil {
			return fmt.Errorf("write %s: %w", name, err)
		}
	}
	return nil
}
