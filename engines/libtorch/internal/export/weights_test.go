package export

import (
	"encoding/binary"
	"os"
	"path/filepath"
	"strconv"
	"testing"

	"github.com/stretchr/testify/require"
)

// writeST writes a safetensors file: the header JSON (padded to 8 bytes, as safetensors does) and data bytes.
func writeST(t *testing.T, header string, data int) string {
	t.Helper()
	for len(header)%8 != 0 {
		header += " "
	}
	b := binary.LittleEndian.AppendUint64(nil, uint64(len(header)))
	b = append(b, header...)
	b = append(b, make([]byte, data)...)
	p := filepath.Join(t.TempDir(), "w.safetensors")
	require.NoError(t, os.WriteFile(p, b, 0o644))
	return p
}

// TestWeightsIndex: one line per tensor in file order, offsets from the file's start (8 + header length +
// data_offsets[0]); a file that is not safetensors, or a tensor whose bytes do not fit its shape, is an error.
func TestWeightsIndex(t *testing.T) {
	h := `{"__metadata__":{"format":"pt"},"m.norm":{"dtype":"F32","shape":[4],"data_offsets":[12,28]},` +
		`"m.embed":{"dtype":"BF16","shape":[2,3],"data_offsets":[0,12]}}`
	p := writeST(t, h, 28)
	idx, err := WeightsIndex(p)
	require.NoError(t, err)
	base := 8 + (len(h)+7)/8*8
	require.Equal(t, "m.embed\tBF16\t"+itoa(base)+"\t12\t2,3\nm.norm\tF32\t"+itoa(base+12)+"\t16\t4\n", idx)

	_, err = WeightsIndex(writeST(t, `{"x":{"dtype":"F32","shape":[4],"data_offsets":[0,8]}}`, 8))
	require.ErrorContains(t, err, "tensor x: offsets")
	_, err = WeightsIndex(writeST(t, `{"x":{"dtype":"F32","shape":[4],"data_offsets":[0,16]}}`, 8))
	require.ErrorContains(t, err, "tensor x: offsets", "past the end of the file")
	_, err = WeightsIndex(writeST(t, `{"x":{"dtype":"C64","shape":[1],"data_offsets":[0,8]}}`, 8))
	require.ErrorContains(t, err, `dtype "C64"`)
	junk := filepath.Join(t.TempDir(), "junk")
	require.NoError(t, os.WriteFile(junk, []byte("PK\x03\x04 a zip, as torch.save writes"), 0o644))
	_, err = WeightsIndex(junk)
	require.ErrorContains(t, err, "not safetensors")
	_, err = WeightsIndex(filepath.Join(t.TempDir(), "none"))
	require.ErrorContains(t, err, "weights file")
}

func itoa(n int) string { return strconv.Itoa(n) }
