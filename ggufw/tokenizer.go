package ggufw

import (
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"strings"
)

// GGUF token types (gguf-py's TokenType, llama.cpp's llama_token_type).
const (
	tokNormal      int32 = 1
	tokUnknown     int32 = 2
	tokControl     int32 = 3
	tokUserDefined int32 = 4
	tokUnused      int32 = 5
	tokByte        int32 = 6
)

// vocabMeta builds the tokenizer.* metadata of an HF directory the way
// convert_hf_to_gguf.py's LlamaModel.set_vocab does: a SentencePiece
// tokenizer.model gives tokenizer.ggml.model "llama" (tokens, scores, token
// types); a byte-level BPE tokenizer.json gives "gpt2" (tokens, token types,
// merges, a pre-tokenizer name); a byte-fallback BPE tokenizer.json without
// tokenizer.model gives "llama". The vocabulary is padded to vocab_size with
// "[PAD<id>]" tokens as the converter pads it. A directory with no tokenizer
// llama.cpp can run (none, or e.g. the synthesized models' WordLevel
// vocabulary) gets tokenizer.ggml.model "none": llama.cpp then loads
// vocab_size dummy tokens and runs on token ids, which is all a benchmark
// needs; a warning says so.
func vocabMeta(dir string, c llamaConfig) (kvs []KV, warnings []string, err error) {
	tj, tjErr := readJSONMap(filepath.Join(dir, "tokenizer.json"))
	if tjErr != nil && !errors.Is(tjErr, os.ErrNotExist) {
		return nil, nil, tjErr
	}
	spm, spmErr := os.ReadFile(filepath.Join(dir, "tokenizer.model"))
	if spmErr != nil && !errors.Is(spmErr, os.ErrNotExist) {
		return nil, nil, spmErr
	}
	var (
		model  string
		tokens []string
		scores []float32
		types  []int32
		merges []string
		pre    string
	)
	model2 := func() map[string]any {
		if tj == nil {
			return nil
		}
		m, _ := tj["model"].(map[string]any)
		return m
	}()
	switch {
	case spm != nil:
		model, pre = "llama", "default"
		tokens, scores, types, err = sentencePiece(spm)
		if err != nil {
			return nil, nil, fmt.Errorf("tokenizer.model: %w", err)
		}
		if len(tokens) > c.VocabSize {
			return nil, nil, fmt.Errorf("tokenizer.model: %d pieces for vocab_size %d", len(tokens), c.VocabSize)
		}
		// Added tokens (tokenizer.json's added_tokens: the specials, chat
		// markers past the SentencePiece vocabulary) as the converter applies
		// added_tokens_decoder: control if special, else user-defined, score
		// -1000.
		for _, a := range addedTokens(tj) {
			if a.id >= c.VocabSize {
				continue
			}
			for len(tokens) <= a.id {
				tokens, scores, types = append(tokens, fmt.Sprintf("[PAD%d]", len(tokens))), append(scores, -1000), append(types, tokUnused)
			}
			typ, content := tokUserDefined, strings.ReplaceAll(a.content, "▁", " ")
			if a.special || looksSpecial(a.content) {
				typ, content = tokControl, a.content
			}
			tokens[a.id], scores[a.id], types[a.id] = content, -1000, typ
		}
	case model2 != nil && model2["type"] == "BPE":
		vocab, ok := model2["vocab"].(map[string]any)
		if !ok {
			return nil, nil, errors.New("tokenizer.json: model.vocab is not an object")
		}
		byteFallback, _ := model2["byte_fallback"].(bool)
		byID := map[int]string{}
		for s, v := range vocab {
			id, ok := v.(float64)
			if !ok || id < 0 || int(id) >= c.VocabSize {
				return nil, nil, fmt.Errorf("tokenizer.json: token %q: id %v outside vocab_size %d", s, v, c.VocabSize)
			}
			byID[int(id)] = s
		}
		added := map[int]addedToken{}
		for _, a := range addedTokens(tj) {
			if a.id < c.VocabSize {
				added[a.id] = a
			}
		}
		tokens, types = make([]string, c.VocabSize), make([]int32, c.VocabSize)
		for id := range c.VocabSize {
			a, isAdded := added[id]
			s, inVocab := byID[id]
			switch {
			case isAdded:
				tokens[id], types[id] = a.content, tokUserDefined
				if a.special || looksSpecial(a.content) {
					types[id] = tokControl
				}
			case inVocab:
				tokens[id], types[id] = s, tokNormal
				if byteFallback && isByteToken(s) {
					types[id] = tokByte
				}
			default:
				tokens[id], types[id] = fmt.Sprintf("[PAD%d]", id), tokUnused
			}
		}
		if byteFallback {
			// Llama-2 style SentencePiece BPE exported to tokenizer.json
			// (LlamaHfVocab): tokenizer.ggml.model "llama" ranks merges by
			// score, and the export orders the vocabulary by SentencePiece
			// score, so a score of -id keeps that order.
			model, pre = "llama", "default"
			scores = make([]float32, c.VocabSize)
			for id := range scores {
				scores[id] = -float32(id)
				if types[id] != tokNormal && types[id] != tokByte {
					scores[id] = -1000
				}
			}
		} else {
			model = "gpt2"
			merges, err = bpeMerges(model2["merges"])
			if err != nil {
				return nil, nil, fmt.Errorf("tokenizer.json: %w", err)
			}
			var w string
			pre, w = preTokenizer(tj["pre_tokenizer"])
			if w != "" {
				warnings = append(warnings, w)
			}
		}
	default:
		why := "no tokenizer.json or tokenizer.model"
		if model2 != nil {
			why = fmt.Sprintf("tokenizer.json model type %v has no llama.cpp tokenizer", model2["type"])
		}
		warnings = append(warnings, fmt.Sprintf("tokenizer: %s: wrote tokenizer.ggml.model \"none\" (llama.cpp runs token ids, cannot tokenize text)", why))
		return []KV{{"tokenizer.ggml.model", "none"}}, warnings, nil
	}
	for len(tokens) < c.VocabSize {
		tokens, types = append(tokens, fmt.Sprintf("[PAD%d]", len(tokens))), append(types, tokUnused)
		if scores != nil {
			scores = append(scores, -1000)
		}
	}
	kvs = []KV{{"tokenizer.ggml.model", model}, {"tokenizer.ggml.pre", pre}, {"tokenizer.ggml.tokens", tokens}, {"tokenizer.ggml.token_type", types}}
	if scores != nil {
		kvs = append(kvs, KV{"tokenizer.ggml.scores", scores})
	}
	if model == "gpt2" {
		kvs = append(kvs, KV{"tokenizer.ggml.merges", merges})
	}
	sp, err := specialVocab(dir, tj, tokens, c)
	if err != nil {
		return nil, nil, err
	}
	return append(kvs, sp...), warnings, nil
}

func readJSONMap(path string) (map[string]any, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		return nil, fmt.Errorf("%s: %w", filepath.Base(path), err)
	}
	return m, nil
}

type addedToken struct {
	id      int
	content string
	special bool
}

func addedTokens(tj map[string]any) []addedToken {
	list, _ := tj["added_tokens"].([]any)
	var out []addedToken
	for _, e := range list {
		m, _ := e.(map[string]any)
		id, ok := m["id"].(float64)
		content, ok2 := m["content"].(string)
		if !ok || !ok2 || id < 0 {
			continue
		}
		special, _ := m["special"].(bool)
		out = append(out, addedToken{int(id), content, special})
	}
	return out
}

// looksSpecial is convert_hf_to_gguf.py's does_token_look_special: added
// tokens some models forget to mark special.
func looksSpecial(s string) bool {
	switch s {
	case "<pad>", "<mask>", "<2mass>", "[@BOS@]":
		return true
	}
	return strings.HasPrefix(s, "<|") && strings.HasSuffix(s, "|>") ||
		strings.HasPrefix(s, "<｜") && strings.HasSuffix(s, "｜>") ||
		strings.HasPrefix(s, "<unused") && strings.HasSuffix(s, ">")
}

// isByteToken matches SentencePiece byte tokens, "<0x0A>".
func isByteToken(s string) bool {
	if len(s) != 6 || !strings.HasPrefix(s, "<0x") || s[5] != '>' {
		return false
	}
	for _, c := range s[3:5] {
		if !('0' <= c && c <= '9' || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F') {
			return false
		}
	}
	return true
}

// bpeMerges reads tokenizer.json's model.merges: "a b" strings, or [a, b]
// pairs as tokenizers >= 0.20 write them (joined with a space, as gguf-py's
// SpecialVocab joins them).
func bpeMerges(v any) ([]string, error) {
	list, _ := v.([]any)
	out := make([]string, 0, len(list))
	for i, e := range list {
		switch m := e.(type) {
		case string:
			out = append(out, m)
		case []any:
			if len(m) != 2 {
				return nil, fmt.Errorf("model.merges[%d]: want two strings, got %v", i, m)
			}
			a, ok1 := m[0].(string)
			b, ok2 := m[1].(string)
			if !ok1 || !ok2 {
				return nil, fmt.Errorf("model.merges[%d]: want two strings, got %v", i, m)
			}
			out = append(out, a+" "+b)
		default:
			return nil, fmt.Errorf("model.merges[%d]: want a string or a pair, got %v", i, e)
		}
	}
	return out, nil
}

// llama3Regex is the Split pattern of Llama 3's tokenizer.json.
const llama3Regex = `(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+`

// preTokenizer names the llama.cpp pre-tokenizer (tokenizer.ggml.pre) of a
// byte-level BPE tokenizer.json. convert_hf_to_gguf.py identifies it by
// hashing the tokenizer's output on a test text; without a tokenizer
// implementation this reads the pre-tokenizer's structure instead, for the
// ones the runner meets: GPT-2's byte-level regex ("gpt-2"), SmolLM's
// individual digits then byte level ("smollm"), Llama 3's split regex
// ("llama-bpe"). Anything else gets "default" and a warning.
func preTokenizer(v any) (name, warning string) {
	m, _ := v.(map[string]any)
	isByteLevel := func(x any, regex bool) bool {
		b, _ := x.(map[string]any)
		r, _ := b["use_regex"].(bool)
		if _, has := b["use_regex"]; !has {
			r = true // tokenizers' default
		}
		return b["type"] == "ByteLevel" && r == regex
	}
	if isByteLevel(m, true) {
		return "gpt-2", ""
	}
	if m["type"] == "Sequence" {
		seq, _ := m["pretokenizers"].([]any)
		if len(seq) == 2 {
			d, _ := seq[0].(map[string]any)
			if ind, _ := d["individual_digits"].(bool); d["type"] == "Digits" && ind && isByteLevel(seq[1], true) {
				return "smollm", ""
			}
			s, _ := seq[0].(map[string]any)
			pat, _ := s["pattern"].(map[string]any)
			if s["type"] == "Split" && pat["Regex"] == llama3Regex && isByteLevel(seq[1], false) {
				return "llama-bpe", ""
			}
		}
	}
	b, _ := json.Marshal(v)
	return "default", fmt.Sprintf("tokenizer: pre-tokenizer %s not recognized: wrote tokenizer.ggml.pre \"default\" (llama.cpp's text tokenization may differ; token ids are unaffected)", truncate(string(b), 200))
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "…"
}

// specialVocab is gguf-py's SpecialVocab: special token ids from
// tokenizer_config.json's token names (looked up in tokenizer.json's added
// tokens, then in the vocabulary), else config.json's ids; add_bos_token,
// add_eos_token and the chat template from tokenizer_config.json.
func specialVocab(dir string, tj map[string]any, tokens []string, c llamaConfig) ([]KV, error) {
	tc, err := readJSONMap(filepath.Join(dir, "tokenizer_config.json"))
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		return nil, err
	}
	idOf := map[string]int{}
	for id, s := range tokens {
		if _, dup := idOf[s]; !dup {
			idOf[s] = id
		}
	}
	for _, a := range addedTokens(tj) {
		idOf[a.content] = a.id
	}
	var kvs []KV
	for _, k := range []struct{ name, key string }{
		{"bos", "bos_token_id"}, {"eos", "eos_token_id"}, {"unk", "unknown_token_id"}, {"sep", "seperator_token_id"}, {"pad", "padding_token_id"},
	} {
		id := -1
		var name string
		switch v := tc[k.name+"_token"].(type) {
		case string:
			name = v
		case map[string]any:
			name, _ = v["content"].(string)
		}
		if i, ok := idOf[name]; ok && name != "" {
			id = i
		}
		if id < 0 {
			switch k.name {
			case "bos":
				id = c.BOS
			case "eos":
				if len(c.EOS) > 0 {
					id = c.EOS[0]
				}
			}
		}
		if id >= 0 && id < len(tokens) {
			kvs = append(kvs, KV{"tokenizer.ggml." + k.key, uint32(id)})
		}
	}
	for _, k := range []string{"add_bos_token", "add_eos_token"} {
		if b, ok := tc[k].(bool); ok {
			kvs = append(kvs, KV{"tokenizer.ggml." + k, b})
		}
	}
	if ct, ok := tc["chat_template"].(string); ok {
		kvs = append(kvs, KV{"tokenizer.chat_template", ct})
	}
	return kvs, nil
}

// sentencePiece reads the pieces of a SentencePiece ModelProto (field 1,
// repeated SentencePiece{1: piece, 2: score, 3: type}) with types mapped as
// convert_hf_to_gguf.py maps them (user-defined pieces count as normal).
func sentencePiece(b []byte) (tokens []string, scores []float32, types []int32, err error) {
	for len(b) > 0 {
		field, wire, n := protoTag(b)
		if n <= 0 {
			return nil, nil, nil, errors.New("malformed protobuf")
		}
		b = b[n:]
		val, rest, err := protoSkip(b, wire)
		if err != nil {
			return nil, nil, nil, err
		}
		b = rest
		if field != 1 || wire != 2 {
			continue
		}
		piece, score, typ := "", float32(0), int32(1)
		for m := val; len(m) > 0; {
			f, w, n := protoTag(m)
			if n <= 0 {
				return nil, nil, nil, errors.New("malformed piece")
			}
			m = m[n:]
			v, rest, err := protoSkip(m, w)
			if err != nil {
				return nil, nil, nil, err
			}
			switch {
			case f == 1 && w == 2:
				piece = string(v)
			case f == 2 && w == 5:
				score = math.Float32frombits(binary.LittleEndian.Uint32(v))
			case f == 3 && w == 0:
				x, _ := binary.Uvarint(v)
				typ = int32(x)
			}
			m = rest
		}
		switch typ {
		case 2, 3, 5, 6: // unknown, control, unused, byte
		default:
			typ = tokNormal
		}
		tokens, scores, types = append(tokens, piece), append(scores, score), append(types, typ)
	}
	if len(tokens) == 0 {
		return nil, nil, nil, errors.New("no pieces")
	}
	return tokens, scores, types, nil
}

func protoTag(b []byte) (field int, wire int, n int) {
	x, n := binary.Uvarint(b)
	return int(x >> 3), int(x & 7), n
}

// protoSkip returns the value bytes of a field of wire type wire at the
// start of b, and what follows it.
func protoSkip(b []byte, wire int) (val, rest []byte, err error) {
	switch wire {
	case 0:
		_, n := binary.Uvarint(b)
		if n <= 0 {
			return nil, nil, errors.New("malformed varint")
		}
		return b[:n], b[n:], nil
	case 1:
		if len(b) < 8 {
			return nil, nil, errors.New("truncated fixed64")
		}
		return b[:8], b[8:], nil
	case 2:
		l, n := binary.Uvarint(b)
		if n <= 0 || uint64(len(b)-n) < l {
			return nil, nil, errors.New("truncated length-delimited field")
		}
		return b[n : n+int(l)], b[n+int(l):], nil
	case 5:
		if len(b) < 4 {
			return nil, nil, errors.New("truncated fixed32")
		}
		return b[:4], b[4:], nil
	}
	return nil, nil, fmt.Errorf("wire type %d not supported", wire)
}
