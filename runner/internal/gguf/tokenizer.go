package gguf

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/cuda-inference-benchmarks/cib/runner/internal/modelcfg"
)

// GGUF token types (llama.cpp's llama_token_type).
const (
	tokenControl     = 3
	tokenUserDefined = 4
)

// preTokenizers are the Hugging Face pre-tokenizers of the GGUF
// tokenizer.ggml.pre values handled: GPT-2's byte-level regex, after
// single-digit splitting for SmolLM (llama.cpp's LLAMA_VOCAB_PRE_TYPE_SMOLLM:
// "\p{N}" then the GPT-2 regex).
var preTokenizers = map[string]any{
	"gpt2":    byteLevel(),
	"default": byteLevel(),
	"smollm": map[string]any{"type": "Sequence", "pretokenizers": []any{
		map[string]any{"type": "Digits", "individual_digits": true}, byteLevel(),
	}},
}

func byteLevel() map[string]any {
	return map[string]any{"type": "ByteLevel", "add_prefix_space": false, "trim_offsets": true, "use_regex": true}
}

// tokenizerFiles builds tokenizer.json (Hugging Face tokenizers: a BPE model
// with the GGUF's vocabulary and merges, byte-level pre-tokenizer and
// decoder, control and user-defined tokens as added tokens),
// tokenizer_config.json (with the chat template), special_tokens_map.json
// and generation_config.json from the tokenizer.ggml.* metadata.
func (g *File) tokenizerFiles(cfg modelcfg.Config) (map[string][]byte, error) {
	model, _ := g.String("tokenizer.ggml.model")
	if model != "gpt2" {
		return nil, fmt.Errorf("tokenizer.ggml.model %q not supported (want gpt2, byte-level BPE)", model)
	}
	pre, _ := g.String("tokenizer.ggml.pre")
	if pre == "" {
		pre = "default"
	}
	preTok, ok := preTokenizers[pre]
	if !ok {
		return nil, fmt.Errorf("tokenizer.ggml.pre %q not supported (want gpt2 or smollm)", pre)
	}
	tokens, ok := g.Strings("tokenizer.ggml.tokens")
	if !ok || len(tokens) == 0 {
		return nil, errors.New("tokenizer.ggml.tokens missing")
	}
	merges, _ := g.Strings("tokenizer.ggml.merges")
	types, _ := g.Metadata["tokenizer.ggml.token_type"].([]int64)
	if types != nil && len(types) != len(tokens) {
		return nil, fmt.Errorf("tokenizer.ggml.token_type has %d entries for %d tokens", len(types), len(tokens))
	}
	vocab := make(map[string]int, len(tokens))
	var added []map[string]any
	for id, s := range tokens {
		if _, dup := vocab[s]; !dup {
			vocab[s] = id
		}
		if types != nil && (types[id] == tokenControl || types[id] == tokenUserDefined) {
			added = append(added, map[string]any{
				"id": id, "content": s, "single_word": false, "lstrip": false, "rstrip": false,
				"normalized": types[id] == tokenUserDefined, "special": types[id] == tokenControl,
			})
		}
	}
	name := func(key string) any {
		if v, ok := g.Uint(key); ok && int(v) < len(tokens) {
			return tokens[v]
		}
		return nil
	}
	addBOS, _ := g.Metadata["tokenizer.ggml.add_bos_token"].(bool)
	var post any = map[string]any{"type": "ByteLevel", "add_prefix_space": true, "trim_offsets": false, "use_regex": true}
	if bos := name("tokenizer.ggml.bos_token_id"); addBOS && bos != nil {
		id, _ := g.Uint("tokenizer.ggml.bos_token_id")
		post = map[string]any{
			"type":           "TemplateProcessing",
			"single":         []any{map[string]any{"SpecialToken": map[string]any{"id": bos, "type_id": 0}}, map[string]any{"Sequence": map[string]any{"id": "A", "type_id": 0}}},
			"pair":           []any{map[string]any{"SpecialToken": map[string]any{"id": bos, "type_id": 0}}, map[string]any{"Sequence": map[string]any{"id": "A", "type_id": 0}}, map[string]any{"SpecialToken": map[string]any{"id": bos, "type_id": 1}}, map[string]any{"Sequence": map[string]any{"id": "B", "type_id": 1}}},
			"special_tokens": map[string]any{bos.(string): map[string]any{"id": bos, "ids": []uint64{id}, "tokens": []any{bos}}},
		}
	}
	if merges == nil {
		merges = []string{}
	}
	if added == nil {
		added = []map[string]any{}
	}
	tok := map[string]any{
		"version": "1.0", "truncation": nil, "padding": nil, "added_tokens": added, "normalizer": nil,
		"pre_tokenizer": preTok, "post_processor": post,
		"decoder": map[string]any{"type": "ByteLevel", "add_prefix_space": true, "trim_offsets": true, "use_regex": true},
		"model": map[string]any{
			"type": "BPE", "dropout": nil, "unk_token": nil, "continuing_subword_prefix": nil, "end_of_word_suffix": nil,
			"fuse_unk": false, "byte_fallback": false, "ignore_merges": false, "vocab": vocab, "merges": merges,
		},
	}
	special := map[string]any{}
	for key, field := range map[string]string{"bos": "bos_token", "eos": "eos_token", "unknown": "unk_token", "padding": "pad_token"} {
		if v := name("tokenizer.ggml." + key + "_token_id"); v != nil {
			special[field] = v
		}
	}
	tcfg := map[string]any{
		"add_bos_token": addBOS, "add_eos_token": false, "clean_up_tokenization_spaces": false,
		"model_max_length": cfg.MaxPositionEmbeddings, "tokenizer_class": "GPT2Tokenizer",
	}
	for k, v := range special {
		tcfg[k] = v
	}
	if ct, ok := g.String("tokenizer.chat_template"); ok {
		tcfg["chat_template"] = ct
	}
	gen := map[string]any{"do_sample": false}
	if cfg.BOSTokenID >= 0 {
		gen["bos_token_id"] = cfg.BOSTokenID
	}
	if len(cfg.EOSTokenIDs) > 0 {
		gen["eos_token_id"] = cfg.EOSTokenIDs[0]
	}
	out := map[string][]byte{}
	for file, v := range map[string]any{"tokenizer.json": tok, "tokenizer_config.json": tcfg, "special_tokens_map.json": special, "generation_config.json": gen} {
		var b bytes.Buffer
		enc := json.NewEncoder(&b)
		enc.SetEscapeHTML(false) // "<|im_start|>", not "\u003c|im_start|\u003e"
		enc.SetIndent("", "  ")
		if err := enc.Encode(v); err != nil {
			return nil, err
		}
		out[file] = b.Bytes()
	}
	return out, nil
}
