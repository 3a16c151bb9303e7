package synth

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strconv"

	"github.com/cuda-inference-benchmarks/cib/runner/internal/modelcfg"
)

// The synthetic tokenizer's special token ids, shared by every shape.
const (
	unkID = 0
	bosID = 1
	eosID = 2
)

// Token is the text of token id in the synthetic vocabulary: "<unk>", "<s>",
// "</s>" for ids 0-2, "<id>" for the rest (e.g. "<17>"). Text made of such
// tokens separated by whitespace encodes back to the same ids.
func Token(id int) string {
	switch id {
	case unkID:
		return "<unk>"
	case bosID:
		return "<s>"
	case eosID:
		return "</s>"
	}
	return "<" + strconv.Itoa(id) + ">"
}

// tokenizerJSON is a Hugging Face tokenizers file: a WordLevel model over
// Token(0..vocab-1), split on whitespace, with <s> prepended to every
// sequence as Llama tokenizers do.
func tokenizerJSON(vocab int) []byte {
	var b bytes.Buffer
	b.WriteString(`{
  "version": "1.0",
  "truncation": null,
  "padding": null,
  "added_tokens": [`)
	for i, id := range []int{unkID, bosID, eosID} {
		if i > 0 {
			b.WriteByte(',')
		}
		fmt.Fprintf(&b, "\n    {\"id\": %d, \"content\": %q, \"single_word\": false, \"lstrip\": false, \"rstrip\": false, \"normalized\": false, \"special\": true}", id, Token(id))
	}
	b.WriteString(`
  ],
  "normalizer": null,
  "pre_tokenizer": {"type": "WhitespaceSplit"},
  "post_processor": {
    "type": "TemplateProcessing",
    "single": [{"SpecialToken": {"id": "<s>", "type_id": 0}}, {"Sequence": {"id": "A", "type_id": 0}}],
    "pair": [{"SpecialToken": {"id": "<s>", "type_id": 0}}, {"Sequence": {"id": "A", "type_id": 0}}, {"SpecialToken": {"id": "<s>", "type_id": 1}}, {"Sequence": {"id": "B", "type_id": 1}}],
    "special_tokens": {"<s>": {"id": "<s>", "ids": [1], "tokens": ["<s>"]}}
  },
  "decoder": null,
  "model": {
    "type": "WordLevel",
    "vocab": {`)
	for id := range vocab {
		if id > 0 {
			b.WriteByte(',')
		}
		fmt.Fprintf(&b, "\n      %q: %d", Token(id), id)
	}
	b.WriteString("\n    },\n    \"unk_token\": \"<unk>\"\n  }\n}\n")
	return b.Bytes()
}

// tokenizerConfigJSON is tokenizer_config.json for transformers'
// PreTrainedTokenizerFast over tokenizer.json.
func tokenizerConfigJSON(c modelcfg.Config) []byte {
	added := map[string]any{}
	for _, id := range []int{unkID, bosID, eosID} {
		added[strconv.Itoa(id)] = map[string]any{
			"content": Token(id), "lstrip": false, "normalized": false, "rstrip": false, "single_word": false, "special": true,
		}
	}
	return mustJSON(map[string]any{
		"add_bos_token":                true,
		"add_eos_token":                false,
		"added_tokens_decoder":         added,
		"bos_token":                    Token(bosID),
		"clean_up_tokenization_spaces": false,
		"eos_token":                    Token(eosID),
		"model_max_length":             c.MaxPositionEmbeddings,
		"tokenizer_class":              "PreTrainedTokenizerFast",
		"unk_token":                    Token(unkID),
	})
}

func specialTokensMapJSON() []byte {
	return mustJSON(map[string]string{"bos_token": Token(bosID), "eos_token": Token(eosID), "unk_token": Token(unkID)})
}

func generationConfigJSON(c modelcfg.Config) []byte {
	return mustJSON(map[string]any{"bos_token_id": c.BOSTokenID, "eos_token_id": c.EOSTokenIDs[0], "do_sample": false})
}

// mustJSON encodes values built from maps, strings and numbers, which cannot
// fail; map keys come out sorted, so the bytes are deterministic.
func mustJSON(v any) []byte {
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		panic(err)
	}
	return append(b, '\n')
}
