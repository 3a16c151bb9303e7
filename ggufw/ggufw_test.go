package ggufw

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"flag"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

var fixtures = flag.String("fixtures", "", "write the fixture HF directory and its GGUF conversions to this directory (for testdata/make_fixtures.py) and skip the checks")

var allTypes = []Type{F32, F16, BF16, Q8_0, Q4_K}

// TestWriterBytes pins the encoding of a small file byte by byte against
// gguf.h's layout.
func TestWriterBytes(t *testing.T) {
	var buf bytes.Buffer
	w, err := NewWriter(&buf, []KV{{"general.architecture", "llama"}, {"a.u8", uint8(7)}, {"a.arr", []int32{-1, 2}}, {"a.empty", []string{}}},
		[]Tensor{{"x", []uint64{3}, F32}, {"y", []uint64{2}, F16}})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := w.Write([]byte{1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13}); err != nil {
		t.Fatal(err)
	}
	if _, err := w.Write([]byte{14, 15, 16}); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	var e enc
	e.b = append(e.b, "GGUF"...)
	e.u32(3)
	e.u64(2) // tensors
	e.u64(5) // metadata: general.alignment added
	e.str("general.architecture")
	e.u32(typeString)
	e.str("llama")
	e.str("general.alignment")
	e.u32(typeUint32)
	e.u32(32)
	e.str("a.u8")
	e.u32(typeUint8)
	e.b = append(e.b, 7)
	e.str("a.arr")
	e.u32(typeArray)
	e.u32(typeInt32)
	e.u64(2)
	e.u32(0xffffffff)
	e.u32(2)
	e.str("a.empty")
	e.u32(typeArray)
	e.u32(typeString)
	e.u64(0)
	e.str("x")
	e.u32(1)
	e.u64(3)
	e.u32(uint32(F32))
	e.u64(0)
	e.str("y")
	e.u32(1)
	e.u64(2)
	e.u32(uint32(F16))
	e.u64(32) // 12 bytes of x padded to 32
	for len(e.b)%32 != 0 {
		e.b = append(e.b, 0)
	}
	e.b = append(e.b, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12)
	e.b = append(e.b, make([]byte, 20)...)
	e.b = append(e.b, 13, 14, 15, 16)
	e.b = append(e.b, make([]byte, 28)...)
	if !bytes.Equal(buf.Bytes(), e.b) {
		t.Errorf("file =\n%x\nwant\n%x", buf.Bytes(), e.b)
	}
}

func TestWriterErrors(t *testing.T) {
	tests := []struct {
		name    string
		meta    []KV
		tensors []Tensor
		data    int
		want    string
	}{
		{"duplicate key", []KV{{"a", "x"}, {"a", "y"}}, nil, 0, `metadata key "a": empty or duplicate`},
		{"bad value", []KV{{"a", struct{}{}}}, nil, 0, "metadata a: value of type struct {}"},
		{"alignment", []KV{{"general.alignment", uint32(64)}}, nil, 0, "general.alignment"},
		{"duplicate tensor", nil, []Tensor{{"t", []uint64{1}, F32}, {"t", []uint64{1}, F32}}, 0, `tensor "t": duplicate name`},
		{"block", nil, []Tensor{{"t", []uint64{33, 2}, Q8_0}}, 0, `tensor "t": tensor type q8_0: row of 33 values is not a multiple of the block size 32`},
		{"short", nil, []Tensor{{"t", []uint64{4}, F32}}, 15, `gguf: tensor "t" is missing 1 of 16 bytes`},
		{"long", nil, []Tensor{{"t", []uint64{4}, F32}}, 17, "gguf: data past the last tensor"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			w, err := NewWriter(&bytes.Buffer{}, tc.meta, tc.tensors)
			if err == nil {
				_, err = w.Write(make([]byte, tc.data))
				if err == nil {
					err = w.Close()
				}
			}
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error = %v, want %q", err, tc.want)
			}
		})
	}
}

// TestHalf checks FloatToHalf against HalfToFloat on every half value and
// on every midpoint between neighbours (ties go to the even one), and a few
// edges.
func TestHalf(t *testing.T) {
	for h := range uint32(0x7c00) {
		for _, s := range []uint16{0, 0x8000} {
			x := uint16(h) | s
			if got := FloatToHalf(HalfToFloat(x)); got != x {
				t.Fatalf("FloatToHalf(HalfToFloat(%#04x)) = %#04x", x, got)
			}
			if h == 0x7bff {
				continue
			}
			lo, hi := float64(HalfToFloat(x)), float64(HalfToFloat(x+1))
			mid := float32((lo + hi) / 2) // exact in f32
			want := x
			if x&1 == 1 {
				want = x + 1
			}
			if got := FloatToHalf(mid); got != want {
				t.Fatalf("FloatToHalf(midpoint of %#04x and next) = %#04x, want %#04x", x, got, want)
			}
		}
	}
	for _, c := range []struct {
		x    float32
		want uint16
	}{
		{65504, 0x7bff}, {65519, 0x7bff}, {65520, 0x7c00}, {float32(math.Inf(-1)), 0xfc00}, {1e-8, 0}, {2.9802322e-08, 0}, // 2^-25: tie to 0
		{2.9802326e-08, 1}, {float32(math.NaN()), 0x7e00},
	} {
		if got := FloatToHalf(c.x); got != c.want {
			t.Errorf("FloatToHalf(%g) = %#04x, want %#04x", c.x, got, c.want)
		}
	}
	for _, c := range []struct {
		x    uint32
		want uint16
	}{
		{0x3f800000, 0x3f80}, {0x3f808000, 0x3f80}, {0x3f818000, 0x3f82}, {0x3f808001, 0x3f81}, {0x7f7fffff, 0x7f80}, {0x7f800001, 0x7fc0},
	} {
		if got := FloatToBF16(math.Float32frombits(c.x)); got != c.want {
			t.Errorf("FloatToBF16(%#08x) = %#04x, want %#04x", c.x, got, c.want)
		}
	}
}

// TestQuantVectors compares the quantizers with testdata/make_fixtures.py's
// vectors: q8_0 from gguf-py's quantize (bit-exact with ggml's reference),
// q4_k from ggml's quantize_row_q4_K_ref compiled from its C source
// (testdata/q4k_ref.c).
func TestQuantVectors(t *testing.T) {
	in := readF32File(t, "testdata/quant_in.f32")
	for _, c := range []struct {
		typ  Type
		file string
	}{{Q8_0, "testdata/quant_q8_0.bin"}, {Q4_K, "testdata/quant_q4_k.bin"}} {
		want, err := os.ReadFile(c.file)
		if err != nil {
			t.Fatal(err)
		}
		got, err := Encode(nil, c.typ, in)
		if err != nil {
			t.Fatal(err)
		}
		if len(got) != len(want) {
			t.Fatalf("Encode(%s) wrote %d bytes, want %d", c.typ, len(got), len(want))
		}
		bs := c.typ.blockBytes()
		for b := 0; b < len(got); b += bs {
			if !bytes.Equal(got[b:b+bs], want[b:b+bs]) {
				t.Errorf("Encode(%s) block %d = %x, want %x", c.typ, b/bs, got[b:b+bs], want[b:b+bs])
			}
		}
	}
}

func readF32File(t *testing.T, path string) []float32 {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	v := make([]float32, len(b)/4)
	for i := range v {
		v[i] = math.Float32frombits(binary.LittleEndian.Uint32(b[4*i:]))
	}
	return v
}

// TestConvertDeterministic converts the same directory twice (with
// different parallelism) and wants the same bytes; a conversion that fails
// leaves nothing behind.
func TestConvertDeterministic(t *testing.T) {
	dir := t.TempDir()
	hf := filepath.Join(dir, "hf")
	writeHF(t, hf, microSpec)
	for _, typ := range allTypes {
		a, b := filepath.Join(dir, "a.gguf"), filepath.Join(dir, "b.gguf")
		if _, err := ConvertHF(context.Background(), hf, a, typ, Options{}); err != nil {
			t.Fatal(err)
		}
		ab, _ := os.ReadFile(a)
		bb := convertWithProcs(t, hf, b, typ, 1)
		if !bytes.Equal(ab, bb) {
			t.Errorf("%s: two conversions differ", typ)
		}
	}
	ents, _ := os.ReadDir(dir)
	if len(ents) != 3 {
		t.Errorf("directory holds %d entries, want hf, a.gguf, b.gguf (no temporary files)", len(ents))
	}
}

func convertWithProcs(t *testing.T, hf, out string, typ Type, procs int) []byte {
	t.Helper()
	old := encodeWorkers
	encodeWorkers = func() int { return procs }
	defer func() { encodeWorkers = old }()
	if _, err := ConvertHF(context.Background(), hf, out, typ, Options{}); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestConvertErrors(t *testing.T) {
	dir := t.TempDir()
	spec := hfSpec{vocab: 40, hidden: 32, inter: 64, layers: 1, heads: 2, kvHeads: 2, headDim: 16, dtype: "F32", seed: 1}
	mk := func(name string, edit func(s *hfSpec)) string {
		s := spec
		edit(&s)
		d := filepath.Join(dir, name)
		writeHF(t, d, s)
		return d
	}
	good := mk("good", func(*hfSpec) {})
	notLlama := mk("mistral", func(*hfSpec) {})
	b, _ := os.ReadFile(filepath.Join(notLlama, "config.json"))
	os.WriteFile(filepath.Join(notLlama, "config.json"), bytes.Replace(b, []byte(`"llama"`), []byte(`"mistral"`), 1), 0o644)
	tests := []struct {
		name, dir string
		typ       Type
		want      string
	}{
		{"missing dir", filepath.Join(dir, "nope"), F16, "no such file or directory"},
		{"not llama", notLlama, F16, `model_type: "mistral" is not a Llama model`},
		{"missing tensor", mk("drop", func(s *hfSpec) { s.drop = "model.layers.0.mlp.up_proj.weight" }), F16, "tensor model.layers.0.mlp.up_proj.weight: not in the checkpoint"},
		{"extra tensor", mk("extra", func(s *hfSpec) { s.extra = map[string][]int64{"model.layers.0.self_attn.q_proj.bias": {32}} }), F16, "tensor model.layers.0.self_attn.q_proj.bias: not part of a Llama"},
		{"unsupported type", good, Type(2), "tensor type type(2): want f32, f16, bf16, q8_0 or q4_k"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			out := filepath.Join(dir, tc.name+".gguf")
			_, err := ConvertHF(context.Background(), tc.dir, out, tc.typ, Options{})
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("ConvertHF(%s) error = %v, want %q", tc.name, err, tc.want)
			}
			if _, err := os.Stat(out); !os.IsNotExist(err) {
				t.Errorf("ConvertHF(%s) left %s", tc.name, out)
			}
		})
	}
	// A shape that disagrees with config.json.
	bad := mk("shape", func(*hfSpec) {})
	b, _ = os.ReadFile(filepath.Join(bad, "config.json"))
	os.WriteFile(filepath.Join(bad, "config.json"), bytes.Replace(b, []byte(`"intermediate_size": 64`), []byte(`"intermediate_size": 48`), 1), 0o644)
	if _, err := ConvertHF(context.Background(), bad, filepath.Join(dir, "s.gguf"), F16, Options{}); err == nil ||
		!strings.Contains(err.Error(), "tensor model.layers.0.mlp.gate_proj.weight: shape [64 32], config.json implies [48 32]") {
		t.Errorf("ConvertHF(shape) error = %v", err)
	}
	// Cancelled.
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := ConvertHF(ctx, good, filepath.Join(dir, "c.gguf"), F16, Options{}); err == nil || !strings.Contains(err.Error(), "context canceled") {
		t.Errorf("ConvertHF(cancelled) error = %v", err)
	}
}

// TestGGUFPy checks what gguf-py (PyPI gguf 0.19.0, an independent reader)
// saw in this package's conversions of the fixture model, as
// testdata/make_fixtures.py pinned it in testdata/gguf_py.json: the files
// must still be the bytes gguf-py read (same sha256), its metadata must be
// the llama.cpp keys and values intended here, and every tensor it
// dequantized must match the checkpoint (Q/K permuted, rope_freqs from the
// llama3 formula) within the type's rounding.
func TestGGUFPy(t *testing.T) {
	dir := *fixtures
	if dir == "" {
		dir = t.TempDir()
	}
	hf := filepath.Join(dir, "hf")
	writeHF(t, hf, microSpec)
	files := map[Type][]byte{}
	for _, typ := range allTypes {
		files[typ] = convertWithProcs(t, hf, filepath.Join(dir, fixtureName(typ)), typ, 3)
	}
	if *fixtures != "" {
		t.Skipf("wrote fixtures to %s", dir)
	}
	b, err := os.ReadFile("testdata/gguf_py.json")
	if err != nil {
		t.Fatal(err)
	}
	var pinned map[string]struct {
		SHA256   string                     `json:"sha256"`
		Metadata map[string]json.RawMessage `json:"metadata"`
		Tensors  []struct {
			Name   string   `json:"name"`
			Shape  []uint64 `json:"shape"`
			Type   string   `json:"type"`
			MaxErr float64  `json:"max_abs_err"`
			RelRMS float64  `json:"rel_rms_err"`
		} `json:"tensors"`
	}
	if err := json.Unmarshal(b, &pinned); err != nil {
		t.Fatal(err)
	}
	wantMeta := map[string]string{
		"general.architecture": `["STRING","llama"]`, "general.alignment": `["UINT32",32]`, "general.quantization_version": `["UINT32",2]`,
		"general.type": `["STRING","model"]`, "general.name": `["STRING","hf"]`,
		"llama.block_count": `["UINT32",1]`, "llama.context_length": `["UINT32",256]`, "llama.embedding_length": `["UINT32",256]`,
		"llama.feed_forward_length": `["UINT32",256]`, "llama.attention.head_count": `["UINT32",2]`,
		"llama.attention.head_count_kv": `["UINT32",1]`, "llama.rope.freq_base": `["FLOAT32",500000.0]`,
		"llama.attention.layer_norm_rms_epsilon": `["FLOAT32",9.999999747378752e-06]`, "llama.vocab_size": `["UINT32",262]`,
		"llama.rope.dimension_count": `["UINT32",128]`, "llama.attention.key_length": `["UINT32",128]`,
		"llama.attention.value_length": `["UINT32",128]`,
		"tokenizer.ggml.model":         `["STRING","gpt2"]`, "tokenizer.ggml.pre": `["STRING","smollm"]`,
		"tokenizer.ggml.merges":       `["ARRAY[STRING]",["h e","l l","he ll","Ġ w"]]`,
		"tokenizer.ggml.bos_token_id": `["UINT32",260]`, "tokenizer.ggml.eos_token_id": `["UINT32",261]`,
		"tokenizer.ggml.add_bos_token": `["BOOL",false]`, "tokenizer.ggml.add_eos_token": `["BOOL",false]`,
		"tokenizer.chat_template": `["STRING","{% for m in messages %}<|im_start|>{{ m['content'] }}{% endfor %}"]`,
	}
	for _, typ := range allTypes {
		p, ok := pinned[fixtureName(typ)]
		if !ok {
			t.Fatalf("gguf_py.json has no %s", fixtureName(typ))
		}
		sum := sha256.Sum256(files[typ])
		if got := hex.EncodeToString(sum[:]); got != p.SHA256 {
			t.Errorf("%s: sha256 %s, gguf-py read %s (rerun testdata/make_fixtures.py if the change is intended)", fixtureName(typ), got, p.SHA256)
		}
		want := map[string]string{"general.file_type": `["UINT32",` + itoa(FileType(typ)) + `]`}
		for k, v := range wantMeta {
			want[k] = v
		}
		for k, v := range want {
			if got := compactJSON(p.Metadata[k]); got != v {
				t.Errorf("%s: gguf-py read %s = %s, want %s", fixtureName(typ), k, got, v)
			}
		}
		var tokens []any
		json.Unmarshal(p.Metadata["tokenizer.ggml.tokens"], &tokens)
		if len(tokens) != 2 || len(tokens[1].([]any)) != 262 || tokens[1].([]any)[260] != "<|endoftext|>" || tokens[1].([]any)[32] != "Ġ" {
			t.Errorf("%s: tokenizer.ggml.tokens as gguf-py read them: %.200v", fixtureName(typ), tokens)
		}
		if len(p.Metadata) != len(want)+2 {
			t.Errorf("%s: gguf-py read %d metadata keys, want %d", fixtureName(typ), len(p.Metadata), len(want)+2)
		}
		wantTensors := []string{"rope_freqs.weight", "token_embd.weight", "blk.0.attn_norm.weight", "blk.0.attn_q.weight", "blk.0.attn_k.weight",
			"blk.0.attn_v.weight", "blk.0.attn_output.weight", "blk.0.ffn_norm.weight", "blk.0.ffn_gate.weight", "blk.0.ffn_up.weight",
			"blk.0.ffn_down.weight", "output_norm.weight"}
		if len(p.Tensors) != len(wantTensors) {
			t.Fatalf("%s: gguf-py read %d tensors, want %d", fixtureName(typ), len(p.Tensors), len(wantTensors))
		}
		for i, ts := range p.Tensors {
			if ts.Name != wantTensors[i] {
				t.Errorf("%s: tensor %d is %s, want %s", fixtureName(typ), i, ts.Name, wantTensors[i])
			}
			oneD := len(ts.Shape) == 1
			wantType, maxRel := strings.ToUpper(typ.String()), 0.0
			switch {
			case oneD:
				wantType = "F32"
			case typ == F16:
				maxRel = 1.0 / 2048
			case typ == Q8_0:
				maxRel = 0.01
			case typ == Q4_K:
				maxRel = 0.12
			}
			if ts.Type != wantType {
				t.Errorf("%s: %s is %s, want %s", fixtureName(typ), ts.Name, ts.Type, wantType)
			}
			if oneD && ts.Name == "rope_freqs.weight" {
				if ts.MaxErr > 1e-6 {
					t.Errorf("%s: rope_freqs differs from the llama3 formula by %g", fixtureName(typ), ts.MaxErr)
				}
				continue
			}
			if ts.RelRMS > maxRel || (maxRel == 0 && ts.MaxErr != 0) {
				t.Errorf("%s: %s dequantized by gguf-py: relative RMS error %g, max %g; want <= %g", fixtureName(typ), ts.Name, ts.RelRMS, ts.MaxErr, maxRel)
			}
		}
	}
}

func itoa(v uint32) string { b, _ := json.Marshal(v); return string(b) }

func compactJSON(b json.RawMessage) string {
	var buf bytes.Buffer
	if err := json.Compact(&buf, b); err != nil {
		return string(b)
	}
	return buf.String()
}

// TestConvertNoSpace: a conversion whose file would not fit in the target's
// free space is refused before anything is written, with both sizes in the
// error; with room, or when the space is unknown, it converts.
func TestConvertNoSpace(t *testing.T) {
	dir := t.TempDir()
	hf := filepath.Join(dir, "hf")
	writeHF(t, hf, microSpec)
	old := freeSpace
	defer func() { freeSpace = old }()
	out := filepath.Join(dir, "m.gguf")
	freeSpace = func(string) (int64, bool) { return 1 << 20, true }
	_, err := ConvertHF(context.Background(), hf, out, F16, Options{})
	if err == nil || !strings.Contains(err.Error(), "0.00 GB free, the f16 file needs 0.07 GB") {
		t.Fatalf("err = %v, want the free and needed sizes", err)
	}
	if ents, _ := os.ReadDir(dir); len(ents) != 1 {
		t.Errorf("directory holds %d entries, want hf/ alone (nothing written)", len(ents))
	}
	freeSpace = func(string) (int64, bool) { return 1 << 30, true }
	st, err := ConvertHF(context.Background(), hf, out, F16, Options{})
	if err != nil {
		t.Fatal(err)
	}
	// The check's estimate: the tensor data, which the file holds, and a header within the slack.
	cfg, err := loadConfig(hf)
	if err != nil {
		t.Fatal(err)
	}
	ckpt, err := checkpoint(hf)
	if err != nil {
		t.Fatal(err)
	}
	plans, _, err := planTensors(cfg, ckpt, F16)
	if err != nil {
		t.Fatal(err)
	}
	var tensors []Tensor
	for _, p := range plans {
		tensors = append(tensors, p.Tensor)
	}
	data, err := dataBytes(tensors)
	if err != nil {
		t.Fatal(err)
	}
	if st.Bytes < data || st.Bytes > data+headerSlack {
		t.Errorf("file %d bytes, tensor data %d: the header is not within the check's %d bytes of slack", st.Bytes, data, headerSlack)
	}
	freeSpace = func(string) (int64, bool) { return 0, false } // unknown: unchecked
	if _, err := ConvertHF(context.Background(), hf, filepath.Join(dir, "n.gguf"), Q8_0, Options{}); err != nil {
		t.Fatal(err)
	}
}
