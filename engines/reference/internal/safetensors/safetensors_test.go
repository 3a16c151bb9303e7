package safetensors

import (
	"encoding/binary"
	"encoding/json"
	"math"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// rawTensor is one tensor to put in a hand-built file.
type rawTensor struct {
	name, dtype string
	shape       []int
	data        []byte
	offsets     []int64 // overrides the computed data_offsets when set
}

// build returns safetensors bytes for tensors, laid out in order.
func build(t *testing.T, tensors ...rawTensor) []byte {
	t.Helper()
	hdr := map[string]any{"__metadata__": map[string]string{"format": "pt"}}
	var data []byte
	for _, r := range tensors {
		off := r.offsets
		if off == nil {
			off = []int64{int64(len(data)), int64(len(data) + len(r.data))}
		}
		hdr[r.name] = map[string]any{"dtype": r.dtype, "shape": r.shape, "data_offsets": off}
		data = append(data, r.data...)
	}
	h, err := json.Marshal(hdr)
	require.NoError(t, err)
	out := binary.LittleEndian.AppendUint64(nil, uint64(len(h)))
	return append(append(out, h...), data...)
}

func write(t *testing.T, dir, name string, b []byte) string {
	t.Helper()
	p := filepath.Join(dir, name)
	require.NoError(t, os.WriteFile(p, b, 0o644))
	return p
}

func f32Bytes(v ...float32) []byte {
	var b []byte
	for _, x := range v {
		b = binary.LittleEndian.AppendUint32(b, math.Float32bits(x))
	}
	return b
}

func u16Bytes(v ...uint16) []byte {
	var b []byte
	for _, x := range v {
		b = binary.LittleEndian.AppendUint16(b, x)
	}
	return b
}

func TestFloat32Conversions(t *testing.T) {
	dir := t.TempDir()
	write(t, dir, SingleFile, build(t,
		rawTensor{name: "a.f32", dtype: "F32", shape: []int{2, 2}, data: f32Bytes(1, -2.5, 3e-3, 1e30)},
		// f16: 1, -2, 65504 (max), 2^-24 (smallest subnormal), -0
		rawTensor{name: "b.f16", dtype: "F16", shape: []int{5}, data: u16Bytes(0x3c00, 0xc000, 0x7bff, 0x0001, 0x8000)},
		// bf16: 1, -2, 3.140625, 1e38-ish (0x7e96 = 9.96e37)
		rawTensor{name: "c.bf16", dtype: "BF16", shape: []int{4}, data: u16Bytes(0x3f80, 0xc000, 0x4049, 0x7e96)},
		rawTensor{name: "d.scalar", dtype: "F32", shape: []int{}, data: f32Bytes(7)},
	))
	c, err := Open(dir)
	require.NoError(t, err)
	defer c.Close()
	assert.Equal(t, []string{"a.f32", "b.f16", "c.bf16", "d.scalar"}, c.Names())

	tests := []struct {
		name  string
		shape []int
		want  []float32
	}{
		{"a.f32", []int{2, 2}, []float32{1, -2.5, 3e-3, 1e30}},
		{"b.f16", []int{5}, []float32{1, -2, 65504, 5.9604645e-08, float32(math.Copysign(0, -1))}},
		{"c.bf16", nil, []float32{1, -2, 3.140625, math.Float32frombits(0x7e960000)}},
		{"d.scalar", []int{}, []float32{7}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := c.Float32(tt.name, tt.shape...)
			require.NoError(t, err)
			require.Len(t, got, len(tt.want))
			for i := range got {
				assert.Equal(t, math.Float32bits(tt.want[i]), math.Float32bits(got[i]), "Float32(%s)[%d] = %g, want %g", tt.name, i, got[i], tt.want[i])
			}
		})
	}
}

func TestHalfToFloat32(t *testing.T) {
	tests := []struct {
		name string
		h    uint16
		want float32
	}{
		{"one", 0x3c00, 1},
		{"minus two", 0xc000, -2},
		{"max", 0x7bff, 65504},
		{"smallest subnormal", 0x0001, 5.9604645e-08},
		{"largest subnormal", 0x03ff, 6.097555e-05},
		{"smallest normal", 0x0400, 6.1035156e-05},
		{"negative subnormal", 0x8200, -3.0517578e-05},
		{"plus inf", 0x7c00, float32(math.Inf(1))},
		{"minus inf", 0xfc00, float32(math.Inf(-1))},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			assert.Equal(t, tt.want, HalfToFloat32(tt.h), "HalfToFloat32(%#04x)", tt.h)
		})
	}
	t.Run("nan", func(t *testing.T) {
		v := HalfToFloat32(0x7e00)
		assert.True(t, v != v, "HalfToFloat32(0x7e00) = %g, want NaN", v)
	})
}

func TestOpenErrors(t *testing.T) {
	good := rawTensor{name: "w", dtype: "F32", shape: []int{2}, data: f32Bytes(1, 2)}
	tests := []struct {
		name    string
		files   map[string][]byte
		wantErr string
	}{
		{"empty dir", nil, "neither model.safetensors.index.json nor model.safetensors found"},
		{"short file", map[string][]byte{SingleFile: {1, 2, 3}}, "model.safetensors: read header length"},
		{"header past end", map[string][]byte{SingleFile: binary.LittleEndian.AppendUint64(nil, 1000)}, "header length 1000 exceeds the file"},
		{"bad json", map[string][]byte{SingleFile: append(binary.LittleEndian.AppendUint64(nil, 4), "{no}"...)}, "parse header"},
		{"unknown dtype", map[string][]byte{SingleFile: build(t, rawTensor{name: "w", dtype: "Q4", shape: []int{2}, data: f32Bytes(1, 2)})}, `tensor "w": unknown dtype "Q4"`},
		{"offsets outside data", map[string][]byte{SingleFile: build(t, rawTensor{name: "w", dtype: "F32", shape: []int{4}, data: f32Bytes(1, 2), offsets: []int64{0, 16}})}, `tensor "w": data_offsets [0, 16] outside the 8 data bytes`},
		{"shape and size disagree", map[string][]byte{SingleFile: build(t, rawTensor{name: "w", dtype: "F32", shape: []int{3}, data: f32Bytes(1, 2)})}, `tensor "w": shape [3] of F32 needs 12 bytes, data_offsets span 8`},
		{"one offset", map[string][]byte{SingleFile: build(t, rawTensor{name: "w", dtype: "F32", shape: []int{2}, data: f32Bytes(1, 2), offsets: []int64{0}})}, "data_offsets has 1 values, want 2"},
		{"index names missing shard", map[string][]byte{IndexFile: []byte(`{"weight_map":{"w":"model-00001-of-00002.safetensors"}}`)}, "model-00001-of-00002.safetensors: no such file"},
		{"index shard escapes dir", map[string][]byte{IndexFile: []byte(`{"weight_map":{"w":"../x.safetensors"}}`)}, `shard name "../x.safetensors" is not a plain file name`},
		{"index empty", map[string][]byte{IndexFile: []byte(`{"weight_map":{}}`)}, "empty weight_map"},
		{"index maps tensor absent from shard", map[string][]byte{
			IndexFile:       []byte(`{"weight_map":{"w":"a.safetensors","v":"a.safetensors"}}`),
			"a.safetensors": build(t, good),
		}, `tensor "v" is mapped to a.safetensors but that file does not contain it`},
		{"index maps tensor to wrong shard", map[string][]byte{
			IndexFile:       []byte(`{"weight_map":{"w":"a.safetensors","v":"a.safetensors","x":"b.safetensors"}}`),
			"a.safetensors": build(t, good),
			"b.safetensors": build(t, rawTensor{name: "v", dtype: "F32", shape: []int{1}, data: f32Bytes(1)}, rawTensor{name: "x", dtype: "F32", shape: []int{1}, data: f32Bytes(1)}),
		}, `tensor "v" is mapped to a.safetensors but found in b.safetensors`},
		{"tensor in two shards", map[string][]byte{
			IndexFile:       []byte(`{"weight_map":{"w":"a.safetensors","v":"b.safetensors"}}`),
			"a.safetensors": build(t, good),
			"b.safetensors": build(t, good, rawTensor{name: "v", dtype: "F32", shape: []int{1}, data: f32Bytes(1)}),
		}, `tensor "w" is also in`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			for name, b := range tt.files {
				write(t, dir, name, b)
			}
			c, err := Open(dir)
			if c != nil {
				c.Close()
			}
			require.Error(t, err, "Open(%s) = nil error", tt.name)
			assert.Contains(t, err.Error(), tt.wantErr)
		})
	}
}

func TestFloat32Errors(t *testing.T) {
	dir := t.TempDir()
	write(t, dir, SingleFile, build(t,
		rawTensor{name: "w", dtype: "F32", shape: []int{2, 3}, data: f32Bytes(1, 2, 3, 4, 5, 6)},
		rawTensor{name: "ids", dtype: "I64", shape: []int{1}, data: make([]byte, 8)},
	))
	c, err := Open(dir)
	require.NoError(t, err)
	defer c.Close()
	tests := []struct {
		name    string
		tensor  string
		shape   []int
		wantErr string
	}{
		{"missing tensor", "lm_head.weight", nil, `tensor "lm_head.weight": tensor not found`},
		{"shape mismatch", "w", []int{3, 2}, `model.safetensors: tensor "w": shape [2 3], want [3 2]`},
		{"rank mismatch", "w", []int{6}, `tensor "w": shape [2 3], want [6]`},
		{"integer dtype", "ids", nil, `tensor "ids": dtype I64 not supported (want F32, F16 or BF16)`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := c.Float32(tt.tensor, tt.shape...)
			require.Error(t, err, "Float32(%q, %v) = nil error", tt.tensor, tt.shape)
			assert.Contains(t, err.Error(), tt.wantErr)
		})
	}
	_, err = c.Float32("nope")
	assert.ErrorIs(t, err, ErrNotFound)
}

// TestFixtures reads the checkpoints written by the Python safetensors package
// (f32, f16, sharded) and by hand (bf16) in testdata.
func TestFixtures(t *testing.T) {
	tests := []struct {
		dir       string
		files     int
		wantDType string
		tensors   int
	}{
		{"gqa_untied_f32", 1, "F32", 21},
		{"mha_tied_bf16", 1, "BF16", 20},
		{"llama3_f16_sharded", 2, "F16", 21},
	}
	for _, tt := range tests {
		t.Run(tt.dir, func(t *testing.T) {
			c, err := Open(filepath.Join("..", "..", "testdata", tt.dir))
			require.NoError(t, err)
			defer c.Close()
			assert.Len(t, c.files, tt.files)
			assert.Len(t, c.Names(), tt.tensors)
			for _, n := range c.Names() {
				tn, _ := c.Tensor(n)
				assert.Equal(t, tt.wantDType, tn.DType, n)
				v, err := c.Float32(n, tn.Shape...)
				require.NoError(t, err)
				assert.Len(t, v, tn.Numel())
			}
		})
	}
}
