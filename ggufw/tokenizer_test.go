package ggufw

import (
	"encoding/binary"
	"math"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

// spmProto encodes a SentencePiece ModelProto with the given pieces
// (piece, score, type) by hand: field 1 = SentencePiece{1: piece, 2: score,
// 3: type}, plus a trainer_spec field (2) the reader must skip.
func spmProto(pieces []struct {
	s   string
	sc  float32
	typ int
}) []byte {
	var out []byte
	out = append(out, 2<<3|2, 2, 8, 1) // trainer_spec {1: 1}
	for _, p := range pieces {
		var m []byte
		m = append(m, 1<<3|2)
		m = binary.AppendUvarint(m, uint64(len(p.s)))
		m = append(m, p.s...)
		m = append(m, 2<<3|5)
		m = binary.LittleEndian.AppendUint32(m, math.Float32bits(p.sc))
		if p.typ != 1 {
			m = append(m, 3<<3|0)
			m = binary.AppendUvarint(m, uint64(p.typ))
		}
		out = append(out, 1<<3|2)
		out = binary.AppendUvarint(out, uint64(len(m)))
		out = append(out, m...)
	}
	return out
}

func TestVocabMeta(t *testing.T) {
	cfg := llamaConfig{VocabSize: 8, BOS: 1, EOS: []int{2}}
	bpe := func(pre, extra string) string {
		return `{"added_tokens": [{"id": 6, "content": "<|end|>", "special": true}, {"id": 5, "content": "<tool>", "special": false}],
			"pre_tokenizer": ` + pre + `, "model": {"type": "BPE", ` + extra + ` "vocab": {"a": 0, "b": 1, "c": 2, "ab": 3, "<0x0A>": 4},
			"merges": [["a", "b"]]}}`
	}
	tests := []struct {
		name    string
		files   map[string]string
		want    map[string]any
		warning string
	}{
		{
			name: "sentencepiece",
			files: map[string]string{"tokenizer.model": string(spmProto([]struct {
				s   string
				sc  float32
				typ int
			}{{"<unk>", 0, 2}, {"<s>", 0, 3}, {"</s>", 0, 3}, {"<0x0A>", 0, 6}, {"▁a", -1.5, 1}, {"x", -2, 4}})),
				"tokenizer_config.json": `{"add_bos_token": true, "bos_token": "<s>", "eos_token": "</s>", "unk_token": "<unk>"}`,
				"tokenizer.json":        `{"added_tokens": [{"id": 0, "content": "<unk>", "special": true}, {"id": 7, "content": "<|im_end|>", "special": false}], "model": {"type": "BPE", "vocab": {}}}`},
			want: map[string]any{
				"tokenizer.ggml.model": "llama", "tokenizer.ggml.pre": "default",
				"tokenizer.ggml.tokens":       []string{"<unk>", "<s>", "</s>", "<0x0A>", "▁a", "x", "[PAD6]", "<|im_end|>"},
				"tokenizer.ggml.scores":       []float32{-1000, 0, 0, 0, -1.5, -2, -1000, -1000},
				"tokenizer.ggml.token_type":   []int32{3, 3, 3, 6, 1, 1, 5, 3},
				"tokenizer.ggml.bos_token_id": uint32(1), "tokenizer.ggml.eos_token_id": uint32(2), "tokenizer.ggml.unknown_token_id": uint32(0),
				"tokenizer.ggml.add_bos_token": true,
			},
		},
		{
			name:  "gpt2 smollm",
			files: map[string]string{"tokenizer.json": bpe(`{"type": "Sequence", "pretokenizers": [{"type": "Digits", "individual_digits": true}, {"type": "ByteLevel", "add_prefix_space": false, "use_regex": true}]}`, "")},
			want: map[string]any{
				"tokenizer.ggml.model": "gpt2", "tokenizer.ggml.pre": "smollm",
				"tokenizer.ggml.tokens":       []string{"a", "b", "c", "ab", "<0x0A>", "<tool>", "<|end|>", "[PAD7]"},
				"tokenizer.ggml.token_type":   []int32{1, 1, 1, 1, 1, 4, 3, 5},
				"tokenizer.ggml.merges":       []string{"a b"},
				"tokenizer.ggml.bos_token_id": uint32(1), "tokenizer.ggml.eos_token_id": uint32(2),
			},
		},
		{
			name:  "gpt2 llama3",
			files: map[string]string{"tokenizer.json": bpe(`{"type": "Sequence", "pretokenizers": [{"type": "Split", "pattern": {"Regex": "`+strings.ReplaceAll(strings.ReplaceAll(llama3Regex, `\`, `\\`), `"`, `\"`)+`"}, "behavior": "Isolated"}, {"type": "ByteLevel", "use_regex": false}]}`, "")},
			want:  map[string]any{"tokenizer.ggml.model": "gpt2", "tokenizer.ggml.pre": "llama-bpe"},
		},
		{
			name:  "gpt2 plain",
			files: map[string]string{"tokenizer.json": bpe(`{"type": "ByteLevel", "add_prefix_space": false, "trim_offsets": true}`, "")},
			want:  map[string]any{"tokenizer.ggml.model": "gpt2", "tokenizer.ggml.pre": "gpt-2"},
		},
		{
			name:    "gpt2 unknown pre-tokenizer",
			files:   map[string]string{"tokenizer.json": bpe(`{"type": "Whitespace"}`, "")},
			want:    map[string]any{"tokenizer.ggml.model": "gpt2", "tokenizer.ggml.pre": "default"},
			warning: `pre-tokenizer {"type":"Whitespace"} not recognized: wrote tokenizer.ggml.pre "default"`,
		},
		{
			name:  "byte-fallback BPE",
			files: map[string]string{"tokenizer.json": bpe(`null`, `"byte_fallback": true,`)},
			want: map[string]any{
				"tokenizer.ggml.model": "llama", "tokenizer.ggml.pre": "default",
				"tokenizer.ggml.token_type": []int32{1, 1, 1, 1, 6, 4, 3, 5},
				"tokenizer.ggml.scores":     []float32{0, -1, -2, -3, -4, -1000, -1000, -1000},
			},
		},
		{
			name:    "word level",
			files:   map[string]string{"tokenizer.json": `{"model": {"type": "WordLevel", "vocab": {"a": 0}}}`},
			want:    map[string]any{"tokenizer.ggml.model": "none"},
			warning: `tokenizer.json model type WordLevel has no llama.cpp tokenizer: wrote tokenizer.ggml.model "none"`,
		},
		{
			name:    "no tokenizer",
			want:    map[string]any{"tokenizer.ggml.model": "none"},
			warning: `no tokenizer.json or tokenizer.model: wrote tokenizer.ggml.model "none"`,
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			for f, s := range tc.files {
				if err := os.WriteFile(filepath.Join(dir, f), []byte(s), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			kvs, warnings, err := vocabMeta(dir, cfg)
			if err != nil {
				t.Fatal(err)
			}
			got := map[string]any{}
			for _, kv := range kvs {
				got[kv.Key] = kv.Value
			}
			for k, v := range tc.want {
				if !reflect.DeepEqual(got[k], v) {
					t.Errorf("vocabMeta %s = %#v, want %#v", k, got[k], v)
				}
			}
			if tc.warning == "" && len(warnings) > 0 || tc.warning != "" && (len(warnings) != 1 || !strings.Contains(warnings[0], tc.warning)) {
				t.Errorf("vocabMeta warnings = %q, want %q", warnings, tc.warning)
			}
		})
	}
}
