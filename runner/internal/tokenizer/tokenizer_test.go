package tokenizer

import (
	"slices"
	"strings"
	"testing"
)

// testdata/micro/tokenizer.json is what `runner models import` writes for
// runner/internal/gguf/testdata/micro.gguf: 256 byte tokens, the merges
// "h e", "l l", "he ll", "Ġ w", and <|endoftext|>, <|im_start|> as added
// tokens, behind SmolLM's individual-digits pre-tokenizer.

func TestEncodeDecode(t *testing.T) {
	tok, err := Load("testdata/micro")
	if err != nil {
		t.Fatal(err)
	}
	// Ids from Hugging Face tokenizers 0.23.3:
	// Tokenizer.from_file("testdata/micro/tokenizer.json").encode(text).ids
	tests := []struct {
		name, text string
		ids        []int
	}{
		{"merges", "hello world", []int{258, 111, 259, 111, 114, 108, 100}},
		{"special and digits", "hell<|im_start|>he 12  ll\n", []int{258, 261, 256, 32, 49, 50, 32, 32, 257, 10}},
		{"contraction and spaces", "it's   well", []int{105, 116, 39, 115, 32, 32, 259, 101, 257}},
		{"empty", "", nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			ids, err := tok.Encode(tc.text)
			if err != nil || !slices.Equal(ids, tc.ids) {
				t.Errorf("Encode(%q) = %v, %v; want %v", tc.text, ids, err, tc.ids)
			}
			if s, err := tok.Decode(tc.ids); err != nil || s != tc.text {
				t.Errorf("Decode(%v) = %q, %v; want %q", tc.ids, s, err, tc.text)
			}
		})
	}
}

// TestGPT2Split pins the words of Hugging Face tokenizers 0.23.3:
// [w for w, _ in ByteLevel(add_prefix_space=False).pre_tokenize_str(s)].
func TestGPT2Split(t *testing.T) {
	tests := []struct {
		in   string
		want []string
	}{
		{"Hello world", []string{"Hello", " world"}},
		{"a  b", []string{"a", " ", " b"}},
		{"x \n\ny", []string{"x", " \n", "\n", "y"}},
		{"end  ", []string{"end", "  "}},
		{"I'll don't", []string{"I", "'ll", " don", "'t"}},
		{"f(n):", []string{"f", "(", "n", "):"}},
		{"héllo 42!", []string{"héllo", " 42", "!"}},
	}
	for _, tc := range tests {
		if got := gpt2Split(tc.in, nil); !slices.Equal(got, tc.want) {
			t.Errorf("gpt2Split(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
}

func TestErrors(t *testing.T) {
	if _, err := Parse([]byte(`{"model":{"type":"WordLevel"}}`)); err == nil || !strings.Contains(err.Error(), `model type "WordLevel" not supported`) {
		t.Errorf("Parse(WordLevel) = %v, want a not-supported error", err)
	}
	tok, err := Load("testdata/micro")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := tok.Decode([]int{9999}); err == nil || !strings.Contains(err.Error(), "id 9999 outside the vocabulary of 262") {
		t.Errorf("Decode([9999]) = %v, want an out-of-vocabulary error", err)
	}
	if s, _ := tok.Decode([]int{0xc3}); s != "\uFFFD" {
		t.Errorf("Decode(a lone UTF-8 lead byte) = %q, want U+FFFD", s)
	}
}
