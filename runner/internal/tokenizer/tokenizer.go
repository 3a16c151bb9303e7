// Package tokenizer encodes text to token ids and decodes ids back to text
// for the Hugging Face tokenizer.json files of byte-level BPE models (GPT-2
// style, as SmolLM2 and the GGUF "gpt2" tokenizers use): the runner needs
// real prompts for real-weight parity and readable text in its reports.
// Other tokenizer kinds are refused with an error; callers then show ids.
package tokenizer

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"unicode"
	"unicode/utf8"
)

// File is the tokenizer file's name inside a model directory.
const File = "tokenizer.json"

// Tokenizer is a byte-level BPE tokenizer.
type Tokenizer struct {
	vocab   map[string]int
	tokens  []string         // id → token (byte-level string or special content)
	ranks   map[string]int   // "a b" → merge rank
	added   map[int]bool     // ids of added tokens, decoded verbatim
	special []string         // added token contents, longest first, matched before BPE
	digits  bool             // a Digits(individual_digits) pre-tokenizer runs first
	cache   map[string][]int // word → ids
	byteOf  map[rune]byte    // byte-level unicode → byte
	charOf  [256]rune        // byte → byte-level unicode
}

// Load reads dir/tokenizer.json.
func Load(dir string) (*Tokenizer, error) {
	b, err := os.ReadFile(filepath.Join(dir, File))
	if err != nil {
		return nil, fmt.Errorf("read tokenizer: %w", err)
	}
	t, err := Parse(b)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", filepath.Join(dir, File), err)
	}
	return t, nil
}

type component struct {
	Type             string      `json:"type"`
	IndividualDigits bool        `json:"individual_digits"`
	AddPrefixSpace   bool        `json:"add_prefix_space"`
	UseRegex         *bool       `json:"use_regex"`
	Pretokenizers    []component `json:"pretokenizers"`
}

type fileJSON struct {
	AddedTokens []struct {
		ID      int    `json:"id"`
		Content string `json:"content"`
	} `json:"added_tokens"`
	Normalizer   json.RawMessage `json:"normalizer"`
	PreTokenizer *component      `json:"pre_tokenizer"`
	Decoder      *component      `json:"decoder"`
	Model        struct {
		Type         string            `json:"type"`
		Vocab        map[string]int    `json:"vocab"`
		Merges       []json.RawMessage `json:"merges"`
		ByteFallback bool              `json:"byte_fallback"`
	} `json:"model"`
}

// Parse reads a tokenizer.json. It accepts BPE models with a ByteLevel
// pre-tokenizer (alone, or after Digits with individual_digits) and a
// ByteLevel decoder, without normalizer: what GPT-2-style tokenizers use.
func Parse(data []byte) (*Tokenizer, error) {
	var f fileJSON
	if err := json.Unmarshal(data, &f); err != nil {
		return nil, fmt.Errorf("not a tokenizer.json: %w", err)
	}
	if f.Model.Type != "BPE" {
		return nil, fmt.Errorf("model type %q not supported (want BPE)", f.Model.Type)
	}
	if n := strings.TrimSpace(string(f.Normalizer)); n != "" && n != "null" {
		return nil, errors.New("normalizers not supported (byte-level BPE has none)")
	}
	t := &Tokenizer{vocab: f.Model.Vocab, ranks: map[string]int{}, added: map[int]bool{}, cache: map[string][]int{}, byteOf: map[rune]byte{}}
	pre := f.PreTokenizer
	if pre != nil && pre.Type == "Sequence" && len(pre.Pretokenizers) == 2 && pre.Pretokenizers[0].Type == "Digits" && pre.Pretokenizers[0].IndividualDigits {
		t.digits, pre = true, &pre.Pretokenizers[1]
	}
	if pre == nil || pre.Type != "ByteLevel" || pre.AddPrefixSpace || (pre.UseRegex != nil && !*pre.UseRegex) {
		return nil, errors.New("pre-tokenizer not supported (want ByteLevel with the GPT-2 regex and no prefix space, optionally after individual Digits)")
	}
	if f.Decoder == nil || f.Decoder.Type != "ByteLevel" {
		return nil, errors.New("decoder not supported (want ByteLevel)")
	}
	for i, m := range f.Model.Merges {
		var s string
		var pair []string
		switch {
		case json.Unmarshal(m, &s) == nil:
		case json.Unmarshal(m, &pair) == nil && len(pair) == 2:
			s = pair[0] + " " + pair[1]
		default:
			return nil, fmt.Errorf("merge %d: want \"a b\" or [a, b], got %s", i, m)
		}
		if _, ok := t.ranks[s]; !ok {
			t.ranks[s] = i
		}
	}
	n := 0
	for _, id := range t.vocab {
		n = max(n, id+1)
	}
	for _, a := range f.AddedTokens {
		n = max(n, a.ID+1)
	}
	t.tokens = make([]string, n)
	for s, id := range t.vocab {
		if id < 0 {
			return nil, fmt.Errorf("token %q has negative id %d", s, id)
		}
		t.tokens[id] = s
	}
	for _, a := range f.AddedTokens {
		t.tokens[a.ID], t.added[a.ID] = a.Content, true
		t.special = append(t.special, a.Content)
		if t.vocab[a.Content] != a.ID {
			t.vocab[a.Content] = a.ID
		}
	}
	sort.SliceStable(t.special, func(i, j int) bool { return len(t.special[i]) > len(t.special[j]) })
	for b, r := range byteChars() {
		t.charOf[b], t.byteOf[r] = r, byte(b)
	}
	return t, nil
}

// byteChars is GPT-2's bytes_to_unicode: printable bytes map to themselves,
// the others to code points from 256 up, so every byte is a visible rune.
func byteChars() [256]rune {
	var out [256]rune
	n := 0
	for b := range 256 {
		if b >= '!' && b <= '~' || b >= 0xa1 && b <= 0xac || b >= 0xae && b <= 0xff {
			out[b] = rune(b)
		} else {
			out[b] = rune(256 + n)
			n++
		}
	}
	return out
}

// VocabSize is the number of ids, added tokens included.
func (t *Tokenizer) VocabSize() int { return len(t.tokens) }

// ID returns the id of a token (an added token's content, or a byte-level
// vocabulary string).
func (t *Tokenizer) ID(token string) (int, bool) {
	id, ok := t.vocab[token]
	return id, ok
}

// Encode returns the ids of text: added tokens (such as "<|im_start|>")
// wherever their content appears, byte-level BPE in between. No BOS or EOS is
// added.
func (t *Tokenizer) Encode(text string) ([]int, error) {
	var out []int
	for len(text) > 0 {
		at, tok := len(text), ""
		for _, s := range t.special {
			if i := strings.Index(text, s); i >= 0 && (i < at || i == at && len(s) > len(tok)) {
				at, tok = i, s
			}
		}
		for _, w := range t.words(text[:at]) {
			ids, err := t.bpe(w)
			if err != nil {
				return nil, err
			}
			out = append(out, ids...)
		}
		if tok == "" {
			break
		}
		out = append(out, t.vocab[tok])
		text = text[at+len(tok):]
	}
	return out, nil
}

// words splits text as the pre-tokenizer does: each digit alone when digits
// is set, then GPT-2's regex
// 's|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+
// (hand-written: Go's regexp has no lookahead).
func (t *Tokenizer) words(text string) []string {
	if !t.digits {
		return gpt2Split(text, nil)
	}
	var out []string
	start := 0
	for i, r := range text {
		if unicode.IsNumber(r) {
			out = gpt2Split(text[start:i], out)
			n := utf8.RuneLen(r)
			out = append(out, text[i:i+n])
			start = i + n
		}
	}
	return gpt2Split(text[start:], out)
}

func isOther(r rune) bool { return !unicode.IsSpace(r) && !unicode.IsLetter(r) && !unicode.IsNumber(r) }

func gpt2Split(s string, out []string) []string {
	rs := []rune(s)
	run := func(i int, f func(rune) bool) int {
		for i < len(rs) && f(rs[i]) {
			i++
		}
		return i
	}
	for i := 0; i < len(rs); {
		r := rs[i]
		j := i
		if r == '\'' && i+1 < len(rs) {
			switch n := rs[i+1]; {
			case n == 's' || n == 't' || n == 'm' || n == 'd':
				j = i + 2
			case i+2 < len(rs) && (n == 'r' && rs[i+2] == 'e' || n == 'v' && rs[i+2] == 'e' || n == 'l' && rs[i+2] == 'l'):
				j = i + 3
			}
		}
		if j == i {
			k := i
			if r == ' ' && i+1 < len(rs) && !unicode.IsSpace(rs[i+1]) {
				k = i + 1 // " ?" before a letter, number or other run
			}
			switch c := rs[k]; {
			case unicode.IsLetter(c):
				j = run(k, unicode.IsLetter)
			case unicode.IsNumber(c):
				j = run(k, unicode.IsNumber)
			case isOther(c):
				j = run(k, isOther)
			default: // whitespace: \s+(?!\S), else \s+
				j = run(i, unicode.IsSpace)
				if j < len(rs) && j-i > 1 {
					j--
				}
			}
		}
		out = append(out, string(rs[i:j]))
		i = j
	}
	return out
}

// bpe encodes one pre-tokenized word.
func (t *Tokenizer) bpe(word string) ([]int, error) {
	if ids, ok := t.cache[word]; ok {
		return ids, nil
	}
	var syms []string
	for _, b := range []byte(word) {
		syms = append(syms, string(t.charOf[b]))
	}
	for len(syms) > 1 {
		best, at := -1, -1
		for i := 0; i+1 < len(syms); i++ {
			if r, ok := t.ranks[syms[i]+" "+syms[i+1]]; ok && (best < 0 || r < best) {
				best, at = r, i
			}
		}
		if at < 0 {
			break
		}
		a, b := syms[at], syms[at+1]
		// Merge every occurrence of the pair, left to right, as HF does.
		next := make([]string, 0, len(syms)-1)
		for i := 0; i < len(syms); i++ {
			if i+1 < len(syms) && syms[i] == a && syms[i+1] == b {
				next = append(next, a+b)
				i++
				continue
			}
			next = append(next, syms[i])
		}
		syms = next
	}
	ids := make([]int, len(syms))
	for i, s := range syms {
		id, ok := t.vocab[s]
		if !ok {
			return nil, fmt.Errorf("encode %q: %q is not in the vocabulary", word, s)
		}
		ids[i] = id
	}
	t.cache[word] = ids
	return ids, nil
}

// Decode returns the text of ids: added tokens verbatim, the others' bytes
// joined, invalid UTF-8 replaced by U+FFFD. An id outside the vocabulary is an
// error.
func (t *Tokenizer) Decode(ids []int) (string, error) {
	var b strings.Builder
	var pending []byte
	flush := func() {
		b.WriteString(strings.ToValidUTF8(string(pending), "\uFFFD"))
		pending = pending[:0]
	}
	for _, id := range ids {
		if id < 0 || id >= len(t.tokens) || t.tokens[id] == "" {
			return "", fmt.Errorf("decode: id %d outside the vocabulary of %d", id, len(t.tokens))
		}
		if t.added[id] {
			flush()
			b.WriteString(t.tokens[id])
			continue
		}
		for _, r := range t.tokens[id] {
			c, ok := t.byteOf[r]
			if !ok {
				return "", fmt.Errorf("decode: token %d (%q) is not byte-level", id, t.tokens[id])
			}
			pending = append(pending, c)
		}
	}
	flush()
	return b.String(), nil
}
