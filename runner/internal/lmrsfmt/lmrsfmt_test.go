package lmrsfmt

import (
	"bytes"
	"context"
	"encoding/binary"
	"encoding/json"
	"flag"
	"hash/crc32"
	"math"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/cuda-inference-benchmarks/cib/ggufw"
	"github.com/cuda-inference-benchmarks/cib/runner/internal/modelcfg"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata")

// miniConfig is a one-layer GQA Llama with Llama-3 RoPE scaling and untied
// embeddings: every header field has a non-default value.
const miniConfig = `{"model_type":"llama","vocab_size":32,"hidden_size":32,"intermediate_size":64,"num_hidden_layers":1,
"num_attention_heads":2,"num_key_value_heads":1,"max_position_embeddings":128,"rope_theta":500000,"rms_norm_eps":1e-5,
"tie_word_embeddings":false,"rope_scaling":{"rope_type":"llama3","factor":8,"low_freq_factor":1,"high_freq_factor":4,
"original_max_position_embeddings":64},"torch_dtype":"float32"}`

// value is element i of the k-th tensor in file order; engines/lmrs/bridge's
// golden test computes the same numbers.
func value(k, i int) float32 { return float32((i*7+k*3)%19-9) / 8 }

// writeMini writes the mini checkpoint as one F32 safetensors file.
func writeMini(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	require.NoError(t, os.WriteFile(filepath.Join(dir, "config.json"), []byte(miniConfig), 0o644))
	cfg, err := modelcfg.Load(dir)
	require.NoError(t, err)
	h, err := NewHeader(cfg, F32, 0)
	require.NoError(t, err)
	header := map[string]any{}
	var data []byte
	for k, s := range h.Layout() {
		shape := []int{s.Cols}
		if s.Matrix {
			shape = []int{s.Rows, s.Cols}
		}
		begin := len(data)
		for i := range s.Rows * s.Cols {
			data = binary.LittleEndian.AppendUint32(data, math.Float32bits(value(k, i)))
		}
		header[s.Name] = map[string]any{"dtype": "F32", "shape": shape, "data_offsets": []int{begin, len(data)}}
	}
	hj, err := json.Marshal(header)
	require.NoError(t, err)
	var f bytes.Buffer
	binary.Write(&f, binary.LittleEndian, uint64(len(hj)))
	f.Write(hj)
	f.Write(data)
	require.NoError(t, os.WriteFile(filepath.Join(dir, "model.safetensors"), f.Bytes(), 0o644))
	return dir
}

func TestConvertGolden(t *testing.T) {
	in := writeMini(t)
	for _, q := range []Quant{Q8_0, Q4_0} {
		t.Run(q.String(), func(t *testing.T) {
			out := filepath.Join(t.TempDir(), "out")
			res, err := Convert(context.Background(), Options{In: in, Out: out, Quant: q})
			require.NoError(t, err)
			assert.Equal(t, uint32(32), res.Header.GroupSize, "64 does not divide the row length 32, so the default falls back to 32")
			got, err := os.ReadFile(res.Path)
			require.NoError(t, err)
			assert.Equal(t, res.Bytes, int64(len(got)))
			assert.Equal(t, crc32.ChecksumIEEE(append(got[:CRCAt:CRCAt], got[HeaderLen:]...)), binary.LittleEndian.Uint32(got[CRCAt:]))
			golden := filepath.Join("testdata", "mini-"+q.String()+".lmrs")
			if *update {
				require.NoError(t, os.WriteFile(golden, got, 0o644))
			}
			want, err := os.ReadFile(golden)
			require.NoError(t, err)
			assert.True(t, bytes.Equal(want, got), "Convert(mini, %s) differs from %s (run go test -update)", q, golden)
			rh, err := ReadHeader(got)
			require.NoError(t, err)
			assert.Equal(t, res.Header, rh)
			for _, name := range []string{"config.json"} {
				_, err := os.Stat(filepath.Join(out, name))
				assert.NoError(t, err, "converted directory keeps %s", name)
			}
		})
	}
}

func TestConvertDeterministic(t *testing.T) {
	in := writeMini(t)
	var sums []uint32
	for range 2 {
		res, err := Convert(context.Background(), Options{In: in, Out: filepath.Join(t.TempDir(), "o"), Quant: Q8_0})
		require.NoError(t, err)
		sums = append(sums, res.CRC)
	}
	assert.Equal(t, sums[0], sums[1])
}

func TestConvertErrors(t *testing.T) {
	in := writeMini(t)
	tests := []struct {
		name    string
		o       Options
		wantErr string
	}{
		{"group size not a multiple of 16", Options{Quant: Q8_0, GroupSize: 24}, "want a positive multiple of 16"},
		{"group size does not divide", Options{Quant: Q8_0, GroupSize: 64}, "does not divide the row length 32"},
		{"group size for f32", Options{Quant: F32, GroupSize: 16}, "given for f32 weights"},
		{"missing model", Options{In: filepath.Join(t.TempDir(), "none"), Quant: F32}, "read model config"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if tc.o.In == "" {
				tc.o.In = in
			}
			tc.o.Out = filepath.Join(t.TempDir(), "out")
			_, err := Convert(context.Background(), tc.o)
			require.Error(t, err)
			assert.Contains(t, err.Error(), tc.wantErr)
		})
	}
	out := filepath.Join(t.TempDir(), "exists")
	require.NoError(t, os.MkdirAll(out, 0o755))
	_, err := Convert(context.Background(), Options{In: in, Out: out, Quant: F32})
	require.ErrorContains(t, err, "pass --overwrite")
}

func TestQuantize(t *testing.T) {
	x := []float32{0.5, -1, 0.25, 0, 2, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0}
	q8, s8 := make([]int8, 16), make([]float32, 1)
	QuantizeQ8(x, 16, q8, s8)
	assert.Equal(t, float32(2)/127, s8[0])
	assert.Equal(t, []int8{32, -64, 16, 0, 127}, q8[:5], "round(x·127/2), half away from zero")
	q4, s4 := make([]byte, 8), make([]float32, 1)
	QuantizeQ4(x, 16, q4, s4)
	assert.Equal(t, float32(-0.25), s4[0], "d = m/−8 with m = 2")
	// x[0] = 0.5 → −2+8 = 6 (low nibble), x[8] = 0 → 8 (high nibble).
	assert.Equal(t, byte(6|8<<4), q4[0])
	// x[4] = 2 → −8+8 = 0.
	assert.Equal(t, byte(0|8<<4), q4[4])
}

func TestF16(t *testing.T) {
	for _, tc := range []struct {
		h    uint16
		want float32
	}{{0x3c00, 1}, {0xc000, -2}, {0x0001, 1.0 / (1 << 24)}, {0x7bff, 65504}, {0x0000, 0}, {0x3555, 0.333251953125}} {
		assert.Equal(t, tc.want, ggufw.HalfToFloat(tc.h), "HalfToFloat(%#04x)", tc.h)
	}
	assert.True(t, math.IsInf(float64(ggufw.HalfToFloat(0x7c00)), 1))
}
