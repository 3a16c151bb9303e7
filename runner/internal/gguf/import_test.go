package gguf

import (
	"encoding/binary"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/cuda-inference-benchmarks/cib/ggufw"
	"github.com/cuda-inference-benchmarks/cib/runner/internal/modelcfg"
	"github.com/cuda-inference-benchmarks/cib/runner/internal/tokenizer"
)

// TestImportMicro imports testdata/micro.gguf (testdata/make_fixtures.py: a
// 1-layer Llama whose Q/K gguf-py stored permuted as llama.cpp's converter
// does) and checks the config, the un-permuted Q/K against the original
// Hugging Face rows, and the tokenizer against Hugging Face tokenizers.
func TestImportMicro(t *testing.T) {
	out := filepath.Join(t.TempDir(), "micro")
	res, err := Import(t.Context(), Options{In: "testdata/micro.gguf", Out: out})
	if err != nil {
		t.Fatal(err)
	}
	cfg, err := modelcfg.Load(out)
	if err != nil {
		t.Fatal(err)
	}
	want := modelcfg.Config{
		ModelType: "llama", VocabSize: 262, HiddenSize: 32, IntermediateSize: 64, NumHiddenLayers: 1, NumAttentionHeads: 2,
		NumKeyValueHeads: 1, HeadDim: 16, MaxPositionEmbeddings: 64, RopeTheta: 10000, RMSNormEps: 1e-5,
		TieWordEmbeddings: true, TorchDType: "float32", BOSTokenID: 260, EOSTokenIDs: []int{260},
	}
	if !equalConfig(cfg, want) {
		t.Errorf("config = %+v, want %+v", cfg, want)
	}
	if res.Types["Q8_0"] != 1 || res.Types["F32"] != 10 {
		t.Errorf("Types = %v, want 1 Q8_0 and 10 F32", res.Types)
	}
	if got, err := cfg.Check(out); err != nil || got != modelcfg.F32 {
		t.Errorf("Check = %s, %v; want f32, nil", got, err)
	}

	hf := readF32(t, "testdata/micro_hf.f32")
	q, k := readTensor(t, out, "model.layers.0.self_attn.q_proj.weight"), readTensor(t, out, "model.layers.0.self_attn.k_proj.weight")
	if !slices.Equal(q, hf[:32*32]) {
		t.Errorf("q_proj is not the Hugging Face q_proj (first values %v, want %v)", q[:4], hf[:4])
	}
	if !slices.Equal(k, hf[32*32:]) {
		t.Errorf("k_proj is not the Hugging Face k_proj (first values %v, want %v)", k[:4], hf[32*32:32*32+4])
	}

	tok, err := tokenizer.Load(out)
	if err != nil {
		t.Fatal(err)
	}
	// Ids from Hugging Face tokenizers 0.23.3 on this tokenizer.json:
	// Tokenizer.from_file(".../tokenizer.json").encode(text).ids
	tests := []struct {
		text string
		ids  []int
	}{
		{"hello world", []int{258, 111, 259, 111, 114, 108, 100}},
		{"hell<|im_start|>he 12  ll\n", []int{258, 261, 256, 32, 49, 50, 32, 32, 257, 10}},
		{"it's   well", []int{105, 116, 39, 115, 32, 32, 259, 101, 257}},
	}
	for _, tc := range tests {
		ids, err := tok.Encode(tc.text)
		if err != nil || !slices.Equal(ids, tc.ids) {
			t.Errorf("Encode(%q) = %v, %v; want %v", tc.text, ids, err, tc.ids)
		}
		if s, err := tok.Decode(tc.ids); err != nil || s != tc.text {
			t.Errorf("Decode(%v) = %q, %v; want %q", tc.ids, s, err, tc.text)
		}
	}
}

func TestImportErrors(t *testing.T) {
	tests := []struct {
		name, in, want string
	}{
		{"not llama", "testdata/dequant.gguf", `architecture "test" not supported (want llama)`},
		{"not gguf", "testdata/micro_hf.f32", "not a GGUF file"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Import(t.Context(), Options{In: tc.in, Out: filepath.Join(t.TempDir(), "out")})
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("Import(%s) = %v, want an error containing %q", tc.in, err, tc.want)
			}
		})
	}
}

func TestUnpermute(t *testing.T) {
	// 2 heads of dim 4, 1 column: GGUF rows per head are (r0, r2, r1, r3).
	got := unpermute([]float32{0, 2, 1, 3, 4, 6, 5, 7}, 2, 1)
	if want := []float32{0, 1, 2, 3, 4, 5, 6, 7}; !slices.Equal(got, want) {
		t.Errorf("unpermute = %v, want %v", got, want)
	}
}

func TestToF16(t *testing.T) {
	tests := []struct {
		x    float32
		want uint16
	}{
		{1, 0x3c00}, {-2, 0xc000}, {65504, 0x7bff}, {1e6, 0x7c00}, {5.960464477539063e-08, 0x0001},
		{1 + 1.0/2048, 0x3c00}, {1 + 3.0/2048, 0x3c02}, {1e-9, 0},
	}
	for _, tc := range tests {
		if got := ggufw.FloatToHalf(tc.x); got != tc.want {
			t.Errorf("toF16(%g) = %#04x, want %#04x", tc.x, got, tc.want)
		}
	}
}

func equalConfig(a, b modelcfg.Config) bool {
	return a.ModelType == b.ModelType && a.VocabSize == b.VocabSize && a.HiddenSize == b.HiddenSize &&
		a.IntermediateSize == b.IntermediateSize && a.NumHiddenLayers == b.NumHiddenLayers &&
		a.NumAttentionHeads == b.NumAttentionHeads && a.NumKeyValueHeads == b.NumKeyValueHeads && a.HeadDim == b.HeadDim &&
		a.MaxPositionEmbeddings == b.MaxPositionEmbeddings && a.RopeTheta == b.RopeTheta && a.RMSNormEps == b.RMSNormEps &&
		a.TieWordEmbeddings == b.TieWordEmbeddings && a.TorchDType == b.TorchDType && a.BOSTokenID == b.BOSTokenID &&
		slices.Equal(a.EOSTokenIDs, b.EOSTokenIDs) && a.RopeScaling == nil && b.RopeScaling == nil
}

func readF32(t *testing.T, path string) []float32 {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	out := make([]float32, len(b)/4)
	for i := range out {
		out[i] = math.Float32frombits(binary.LittleEndian.Uint32(b[4*i:]))
	}
	return out
}

// readTensor reads one f32 tensor of dir/model.safetensors.
func readTensor(t *testing.T, dir, name string) []float32 {
	t.Helper()
	path := filepath.Join(dir, modelcfg.SingleFile)
	h, err := modelcfg.ReadFileHeader(path)
	if err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	for _, ti := range h.Tensors {
		if ti.Name == name {
			data := b[ti.Offset : ti.Offset+ti.Size]
			out := make([]float32, len(data)/4)
			for i := range out {
				out[i] = math.Float32frombits(binary.LittleEndian.Uint32(data[4*i:]))
			}
			return out
		}
	}
	t.Fatalf("%s: no tensor %s", path, name)
	return nil
}
