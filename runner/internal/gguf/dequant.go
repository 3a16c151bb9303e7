package gguf

import (
	"encoding/binary"
	"fmt"
	"math"
	"strings"

	"github.com/cuda-inference-benchmarks/cib/ggufw"
)

// Type is a ggml tensor type (ggml.h's enum ggml_type, gguf-py's
// GGMLQuantizationType).
type Type uint32

// The tensor types Dequantize handles, with ggml's numbering.
const (
	F32  Type = 0
	F16  Type = 1
	Q4_0 Type = 2
	Q4_1 Type = 3
	Q5_0 Type = 6
	Q5_1 Type = 7
	Q8_0 Type = 8
	Q2_K Type = 10
	Q3_K Type = 11
	Q4_K Type = 12
	Q5_K Type = 13
	Q6_K Type = 14
	BF16 Type = 30
)

// layout is a type's block: values per block and bytes per block.
type layout struct {
	name          string
	values, bytes int
	dequant       func(block []byte, out []float32)
}

// qkK is the super-block size of the k-quants (ggml's QK_K).
const qkK = 256

var layouts = map[Type]layout{
	F32:  {"F32", 1, 4, func(b []byte, o []float32) { o[0] = math.Float32frombits(binary.LittleEndian.Uint32(b)) }},
	F16:  {"F16", 1, 2, func(b []byte, o []float32) { o[0] = f16(b) }},
	BF16: {"BF16", 1, 2, func(b []byte, o []float32) { o[0] = math.Float32frombits(uint32(binary.LittleEndian.Uint16(b)) << 16) }},
	Q4_0: {"Q4_0", 32, 18, q4_0},
	Q4_1: {"Q4_1", 32, 20, q4_1},
	Q5_0: {"Q5_0", 32, 22, q5_0},
	Q5_1: {"Q5_1", 32, 24, q5_1},
	Q8_0: {"Q8_0", 32, 34, q8_0},
	Q2_K: {"Q2_K", qkK, 84, q2K},
	Q3_K: {"Q3_K", qkK, 110, q3K},
	Q4_K: {"Q4_K", qkK, 144, q4K},
	Q5_K: {"Q5_K", qkK, 176, q5K},
	Q6_K: {"Q6_K", qkK, 210, q6K},
}

// otherNames names the ggml types Dequantize does not handle, for errors.
var otherNames = map[Type]string{
	9: "Q8_1", 15: "Q8_K", 16: "IQ2_XXS", 17: "IQ2_XS", 18: "IQ3_XXS", 19: "IQ1_S", 20: "IQ4_NL",
	21: "IQ3_S", 22: "IQ2_S", 23: "IQ4_XS", 24: "I8", 25: "I16", 26: "I32", 27: "I64", 28: "F64",
	29: "IQ1_M", 34: "TQ1_0", 35: "TQ2_0", 39: "MXFP4",
}

// String is ggml's name for the type ("Q4_K").
func (t Type) String() string {
	if l, ok := layouts[t]; ok {
		return l.name
	}
	if n, ok := otherNames[t]; ok {
		return n
	}
	return fmt.Sprintf("type %d", uint32(t))
}

// BytesPerValue is the storage cost of one value in the format named name
// (ggml's type name in any case, "q8_0", "BF16": block bytes / values per
// block, 34/32 for Q8_0); false for a name Dequantize does not handle.
func BytesPerValue(name string) (float64, bool) {
	for _, l := range layouts {
		if strings.EqualFold(l.name, name) {
			return float64(l.bytes) / float64(l.values), true
		}
	}
	return 0, false
}

// Supported says whether Dequantize handles t.
func (t Type) Supported() bool { _, ok := layouts[t]; return ok }

// Bytes is the storage size of n values of type t.
func (t Type) Bytes(n int64) (int64, error) {
	l, ok := layouts[t]
	if !ok {
		return 0, fmt.Errorf("tensor type %s not supported (want one of F32, F16, BF16, Q4_0, Q4_1, Q5_0, Q5_1, Q8_0, Q2_K, Q3_K, Q4_K, Q5_K, Q6_K)", t)
	}
	if n%int64(l.values) != 0 {
		return 0, fmt.Errorf("%d values is not a whole number of %s blocks of %d", n, l.name, l.values)
	}
	return n / int64(l.values) * int64(l.bytes), nil
}

// Dequantize decodes raw, whole blocks of type t, into dst (one float32 per
// value). The arithmetic follows ggml's dequantize_row_* in float32, in the
// same order, so values match ggml and gguf-py's numpy dequantization.
func Dequantize(t Type, raw []byte, dst []float32) error {
	size, err := t.Bytes(int64(len(dst)))
	if err != nil {
		return err
	}
	if int64(len(raw)) != size {
		return fmt.Errorf("%s: %d bytes for %d values, want %d", t, len(raw), len(dst), size)
	}
	l := layouts[t]
	for i, j := 0, 0; j < len(dst); i, j = i+l.bytes, j+l.values {
		l.dequant(raw[i:i+l.bytes], dst[j:j+l.values])
	}
	return nil
}

// f16 decodes the IEEE half at b[0:2].
func f16(b []byte) float32 { return ggufw.HalfToFloat(binary.LittleEndian.Uint16(b)) }

// Explicit float32 conversions below keep Go from fusing a*b+c into one
// rounding (it may on arm64), so that every platform rounds as ggml does.

func q4_0(b []byte, y []float32) {
	d := f16(b)
	qs := b[2:18]
	for j := range 16 {
		y[j] = float32(int(qs[j]&0xf)-8) * d
		y[j+16] = float32(int(qs[j]>>4)-8) * d
	}
}

func q4_1(b []byte, y []float32) {
	d, m := f16(b), f16(b[2:])
	qs := b[4:20]
	for j := range 16 {
		y[j] = float32(float32(qs[j]&0xf)*d) + m
		y[j+16] = float32(float32(qs[j]>>4)*d) + m
	}
}

func q5_0(b []byte, y []float32) {
	d := f16(b)
	qh := binary.LittleEndian.Uint32(b[2:6])
	qs := b[6:22]
	for j := range 16 {
		h0 := byte((qh>>j)<<4) & 0x10
		h1 := byte(qh>>(j+12)) & 0x10
		y[j] = float32(int(qs[j]&0xf|h0)-16) * d
		y[j+16] = float32(int(qs[j]>>4|h1)-16) * d
	}
}

func q5_1(b []byte, y []float32) {
	d, m := f16(b), f16(b[2:])
	qh := binary.LittleEndian.Uint32(b[4:8])
	qs := b[8:24]
	for j := range 16 {
		h0 := byte((qh>>j)<<4) & 0x10
		h1 := byte(qh>>(j+12)) & 0x10
		y[j] = float32(float32(qs[j]&0xf|h0)*d) + m
		y[j+16] = float32(float32(qs[j]>>4|h1)*d) + m
	}
}

func q8_0(b []byte, y []float32) {
	d := f16(b)
	for j := range 32 {
		y[j] = float32(int8(b[2+j])) * d
	}
}

func q2K(b []byte, y []float32) {
	scales, qs := b[0:16], b[16:80]
	d, dmin := f16(b[80:]), f16(b[82:])
	is := 0
	for n := 0; n < qkK; n += 128 {
		q := qs[n/4:]
		shift := uint(0)
		for range 4 {
			for half := 0; half < 2; half++ {
				sc := scales[is]
				is++
				dl, ml := d*float32(sc&0xf), dmin*float32(sc>>4)
				for l := range 16 {
					y[0] = float32(dl*float32((q[l+16*half]>>shift)&3)) - ml
					y = y[1:]
				}
			}
			shift += 2
		}
	}
}

func q3K(b []byte, y []float32) {
	hm, qs, raw := b[0:32], b[32:96], b[96:108]
	dAll := f16(b[108:])
	var aux [4]uint32
	for i := range 3 {
		aux[i] = binary.LittleEndian.Uint32(raw[4*i:])
	}
	const kmask1, kmask2 = 0x03030303, 0x0f0f0f0f
	tmp := aux[2]
	aux[2] = ((aux[0] >> 4) & kmask2) | (((tmp >> 4) & kmask1) << 4)
	aux[3] = ((aux[1] >> 4) & kmask2) | (((tmp >> 6) & kmask1) << 4)
	aux[0] = (aux[0] & kmask2) | (((tmp >> 0) & kmask1) << 4)
	aux[1] = (aux[1] & kmask2) | (((tmp >> 2) & kmask1) << 4)
	var scales [16]int8
	for i := range 16 {
		scales[i] = int8(aux[i/4] >> (8 * (i % 4)))
	}
	is, m := 0, byte(1)
	for n := 0; n < qkK; n += 128 {
		q := qs[n/4:]
		shift := uint(0)
		for range 4 {
			for half := 0; half < 2; half++ {
				dl := dAll * float32(int(scales[is])-32)
				is++
				for l := range 16 {
					k := l + 16*half
					v := int((q[k] >> shift) & 3)
					if hm[k]&m == 0 {
						v -= 4
					}
					y[0] = dl * float32(v)
					y = y[1:]
				}
			}
			shift += 2
			m <<= 1
		}
	}
}

// scaleMinK4 unpacks the 6-bit scale and min j of a Q4_K/Q5_K super-block.
func scaleMinK4(j int, q []byte) (byte, byte) {
	if j < 4 {
		return q[j] & 63, q[j+4] & 63
	}
	return q[j+4]&0xf | (q[j-4]>>6)<<4, q[j+4]>>4 | (q[j]>>6)<<4
}

func q4K(b []byte, y []float32) {
	d, dmin := f16(b), f16(b[2:])
	scales, q := b[4:16], b[16:144]
	is := 0
	for j := 0; j < qkK; j += 64 {
		sc, m := scaleMinK4(is, scales)
		d1, m1 := d*float32(sc), dmin*float32(m)
		sc, m = scaleMinK4(is+1, scales)
		d2, m2 := d*float32(sc), dmin*float32(m)
		for l := range 32 {
			y[l] = float32(d1*float32(q[l]&0xf)) - m1
			y[l+32] = float32(d2*float32(q[l]>>4)) - m2
		}
		y, q, is = y[64:], q[32:], is+2
	}
}

func q5K(b []byte, y []float32) {
	d, dmin := f16(b), f16(b[2:])
	scales, qh, ql := b[4:16], b[16:48], b[48:176]
	is := 0
	u1, u2 := byte(1), byte(2)
	for j := 0; j < qkK; j += 64 {
		sc, m := scaleMinK4(is, scales)
		d1, m1 := d*float32(sc), dmin*float32(m)
		sc, m = scaleMinK4(is+1, scales)
		d2, m2 := d*float32(sc), dmin*float32(m)
		for l := range 32 {
			h1, h2 := byte(0), byte(0)
			if qh[l]&u1 != 0 {
				h1 = 16
			}
			if qh[l]&u2 != 0 {
				h2 = 16
			}
			y[l] = float32(d1*float32(ql[l]&0xf+h1)) - m1
			y[l+32] = float32(d2*float32(ql[l]>>4+h2)) - m2
		}
		y, ql, is = y[64:], ql[32:], is+2
		u1, u2 = u1<<2, u2<<2
	}
}

func q6K(b []byte, y []float32) {
	ql, qh, sc := b[0:128], b[128:192], b[192:208]
	d := f16(b[208:])
	for n := 0; n < qkK; n += 128 {
		for l := range 32 {
			is := l / 16
			q1 := int(ql[l]&0xf|(qh[l]&3)<<4) - 32
			q2 := int(ql[l+32]&0xf|((qh[l]>>2)&3)<<4) - 32
			q3 := int(ql[l]>>4|((qh[l]>>4)&3)<<4) - 32
			q4 := int(ql[l+32]>>4|((qh[l]>>6)&3)<<4) - 32
			y[l] = d * float32(int8(sc[is])) * float32(q1)
			y[l+32] = d * float32(int8(sc[is+2])) * float32(q2)
			y[l+64] = d * float32(int8(sc[is+4])) * float32(q3)
			y[l+96] = d * float32(int8(sc[is+6])) * float32(q4)
		}
		y, ql, qh, sc = y[128:], ql[64:], qh[32:], sc[8:]
	}
}
