package modelcfg

import (
	"bytes"
	"encoding/binary"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// st builds a safetensors file from a header JSON and a data length.
func st(header string, data int) []byte {
	var b bytes.Buffer
	binary.Write(&b, binary.LittleEndian, uint64(len(header)))
	b.WriteString(header)
	b.Write(make([]byte, data))
	return b.Bytes()
}

func TestReadHeader(t *testing.T) {
	hdr := `{"b":{"dtype":"F32","shape":[2],"data_offsets":[4,12]},"__metadata__":{"format":"pt"},"a":{"dtype":"BF16","shape":[2],"data_offsets":[0,4]}}  `
	h, err := ReadHeader(bytes.NewReader(st(hdr, 12)))
	require.NoError(t, err)
	start := int64(8 + len(hdr))
	assert.Equal(t, Header{
		DataStart: start,
		Metadata:  map[string]string{"format": "pt"},
		Tensors: []TensorInfo{
			{Name: "a", DType: "BF16", Shape: []int64{2}, Offset: start, Size: 4},
			{Name: "b", DType: "F32", Shape: []int64{2}, Offset: start + 4, Size: 8},
		},
	}, h)
	assert.Equal(t, start+12, h.DataEnd())
}

func TestReadHeaderErrors(t *testing.T) {
	tests := []struct {
		name   string
		file   []byte
		errMsg string
	}{
		{name: "short", file: []byte{1, 2}, errMsg: "read header length"},
		{name: "huge", file: []byte{0, 0, 0, 0, 0, 0, 0, 1}, errMsg: "exceeds"},
		{name: "truncated", file: st(`{"a":`, 0)[:10], errMsg: "read 5-byte header"},
		{name: "not json", file: st(`{"a":`, 0), errMsg: "header:"},
		{name: "unknown dtype", file: st(`{"a":{"dtype":"Q4","shape":[2],"data_offsets":[0,4]}}`, 4), errMsg: `tensor a: unknown dtype "Q4"`},
		{name: "size mismatch", file: st(`{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,4]}}`, 4), errMsg: "tensor a: data_offsets [0, 4] hold 4 bytes, shape [2] of F32 needs 8"},
		{name: "gap", file: st(`{"a":{"dtype":"F32","shape":[1],"data_offsets":[4,8]}}`, 8), errMsg: "tensor a starts at data offset 4, want 0"},
		{name: "overlap", file: st(`{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},"b":{"dtype":"F32","shape":[1],"data_offsets":[4,8]}}`, 8), errMsg: "starts at data offset 4, want 8"},
		{name: "unknown field", file: st(`{"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4],"x":1}}`, 4), errMsg: "tensor a"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := ReadHeader(bytes.NewReader(tt.file))
			assert.ErrorContains(t, err, tt.errMsg)
		})
	}
}
