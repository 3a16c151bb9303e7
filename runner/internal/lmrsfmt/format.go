// Package lmrsfmt writes the lmrs engine's model file (engines/lmrs): a
// 256-byte header, then every tensor at a 64-byte aligned offset, f32 or
// group-wise quantized (q8_0, q4_0) as lm.rs does, with a format version and a
// CRC-32. The spec is engines/lmrs/README.md ("File format"); the Rust reader
// is engines/lmrs/bridge/src/format.rs. Conversion streams one tensor at a
// time and is deterministic: the same checkpoint gives the same bytes, equal
// to what the engine builds in memory from the HF directory.
package lmrsfmt

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math"
)

// File layout constants, equal to the Rust reader's.
const (
	// Magic starts every file.
	Magic = "CIBLMRS\x00"
	// Version is the format version written.
	Version = 1
	// HeaderLen is the header's size in bytes.
	HeaderLen = 256
	// Align is the alignment of every tensor and of the scales within one, in bytes.
	Align = 64
	// CRCAt is the header offset of the CRC-32 (IEEE) of header[:CRCAt] followed by the payload.
	CRCAt = 248
	// FileName is the model file inside a converted directory.
	FileName = "model.lmrs"
)

// Quant is how weight matrices are stored.
type Quant uint32

// The quantizations, by their header codes.
const (
	F32  Quant = 0
	Q8_0 Quant = 1
	Q4_0 Quant = 2
)

// ParseQuant parses "f32", "q8_0" or "q4_0".
func ParseQuant(s string) (Quant, error) {
	switch s {
	case "f32":
		return F32, nil
	case "q8_0":
		return Q8_0, nil
	case "q4_0":
		return Q4_0, nil
	}
	return 0, fmt.Errorf("quant %q: want f32, q8_0 or q4_0", s)
}

func (q Quant) String() string {
	switch q {
	case F32:
		return "f32"
	case Q8_0:
		return "q8_0"
	case Q4_0:
		return "q4_0"
	}
	return fmt.Sprintf("quant(%d)", uint32(q))
}

// Llama3Rope is rope_scaling of type llama3.
type Llama3Rope struct {
	Factor, LowFreqFactor, HighFreqFactor float64
	OriginalMaxPositionEmbeddings         uint32
}

// Header is the model's shape, numerics and storage.
type Header struct {
	Quant Quant
	// GroupSize is the number of values per quantization group along a row, 0 for f32.
	GroupSize                                                   uint32
	Vocab, Dim, Hidden, Layers, Heads, KVHeads, HeadDim, MaxSeq uint32
	Tied                                                        bool
	RopeTheta, RMSEps                                           float64
	// Rope is nil for plain RoPE.
	Rope *Llama3Rope
	// PayloadBytes is the file size minus HeaderLen.
	PayloadBytes uint64
}

// Encode returns the header bytes with a zero checksum.
func (h *Header) Encode() []byte {
	b := make([]byte, HeaderLen)
	copy(b, Magic)
	le := binary.LittleEndian
	tied := uint32(0)
	if h.Tied {
		tied = 1
	}
	var r Llama3Rope
	ropeType := uint32(0)
	if h.Rope != nil {
		r, ropeType = *h.Rope, 1
	}
	for _, f := range []struct {
		at int
		v  uint32
	}{
		{8, Version}, {12, uint32(h.Quant)}, {16, h.GroupSize}, {20, h.Vocab}, {24, h.Dim}, {28, h.Hidden},
		{32, h.Layers}, {36, h.Heads}, {40, h.KVHeads}, {44, h.HeadDim}, {48, h.MaxSeq}, {52, tied},
		{72, ropeType}, {76, r.OriginalMaxPositionEmbeddings},
	} {
		le.PutUint32(b[f.at:], f.v)
	}
	for _, f := range []struct {
		at int
		v  float64
	}{{56, h.RopeTheta}, {64, h.RMSEps}, {80, r.Factor}, {88, r.LowFreqFactor}, {96, r.HighFreqFactor}} {
		le.PutUint64(b[f.at:], math.Float64bits(f.v))
	}
	le.PutUint64(b[104:], h.PayloadBytes)
	return b
}

// RowLengths are the matrices' row widths, which a group must divide.
func (h *Header) RowLengths() []uint32 {
	return []uint32{h.Dim, h.Hidden, h.Heads * h.HeadDim}
}

// CheckGroupSize accepts a positive multiple of 16 that divides every row length.
func CheckGroupSize(gs uint32, rows []uint32) error {
	if gs == 0 || gs%16 != 0 {
		return fmt.Errorf("group size %d: want a positive multiple of 16", gs)
	}
	for _, r := range rows {
		if r%gs != 0 {
			return fmt.Errorf("group size %d does not divide the row length %d", gs, r)
		}
	}
	return nil
}

// DefaultGroupSize is 64 (lm.rs's default) when it divides every row, else 32 or 16.
func DefaultGroupSize(rows []uint32) (uint32, error) {
	for _, g := range []uint32{64, 32, 16} {
		if CheckGroupSize(g, rows) == nil {
			return g, nil
		}
	}
	return 0, fmt.Errorf("no group size of 64, 32 or 16 divides the row lengths %v", rows)
}

// Slot is where one tensor lies in the file. For quantized matrices Data holds
// the packed values and Scales the f32 scales; otherwise Scales == Data.
type Slot struct {
	Name              string
	Rows, Cols        int
	Matrix            bool
	Data, Scales, End int
}

func align(n int) int { return (n + Align - 1) / Align * Align }

// Layout lists every tensor's slot in file order, with its checkpoint name.
func (h *Header) Layout() []Slot {
	at := HeaderLen
	d, hid := int(h.Dim), int(h.Hidden)
	qd, kvd := int(h.Heads*h.HeadDim), int(h.KVHeads*h.HeadDim)
	var out []Slot
	vec := func(name string, n int) {
		data := align(at)
		at = data + 4*n
		out = append(out, Slot{Name: name, Rows: 1, Cols: n, Data: data, Scales: data, End: at})
	}
	mat := func(name string, rows, cols int) {
		data := align(at)
		n := rows * cols
		s := Slot{Name: name, Rows: rows, Cols: cols, Matrix: true, Data: data, Scales: data}
		switch h.Quant {
		case F32:
			s.End = data + 4*n
		case Q8_0:
			s.Scales = align(data + n)
			s.End = s.Scales + 4*n/int(h.GroupSize)
		case Q4_0:
			s.Scales = align(data + n/2)
			s.End = s.Scales + 4*n/int(h.GroupSize)
		}
		at = s.End
		out = append(out, s)
	}
	mat("model.embed_tokens.weight", int(h.Vocab), d)
	for i := range int(h.Layers) {
		p := fmt.Sprintf("model.layers.%d.", i)
		vec(p+"input_layernorm.weight", d)
		mat(p+"self_attn.q_proj.weight", qd, d)
		mat(p+"self_attn.k_proj.weight", kvd, d)
		mat(p+"self_attn.v_proj.weight", kvd, d)
		mat(p+"self_attn.o_proj.weight", d, qd)
		vec(p+"post_attention_layernorm.weight", d)
		mat(p+"mlp.gate_proj.weight", hid, d)
		mat(p+"mlp.up_proj.weight", hid, d)
		mat(p+"mlp.down_proj.weight", d, hid)
	}
	vec("model.norm.weight", d)
	if !h.Tied {
		mat("lm_head.weight", int(h.Vocab), d)
	}
	return out
}

// QuantizeQ8 writes q = round(x/d), d = max|x|/127, per group of gs (q = 0 for
// an all-zero group): the same f32 steps as the Rust quantize_q8.
func QuantizeQ8(x []float32, gs int, q []int8, s []float32) {
	for g := 0; g*gs < len(x); g++ {
		xg := x[g*gs : (g+1)*gs]
		var amax float32
		for _, v := range xg {
			if a := abs32(v); a > amax {
				amax = a
			}
		}
		d := amax / 127
		s[g] = d
		for i, v := range xg {
			if d == 0 {
				q[g*gs+i] = 0
			} else {
				q[g*gs+i] = int8(math.Round(float64(v / d)))
			}
		}
	}
}

// QuantizeQ4 writes llama.cpp's Q4_0 values, d = m/−8 with m the group's value
// of largest magnitude (the first on ties), q = clamp(round(x/d)+8, 0, 15);
// byte j of a group holds q[j] (low nibble) and q[j+gs/2] (high nibble).
func QuantizeQ4(x []float32, gs int, q []byte, s []float32) {
	half := gs / 2
	for g := 0; g*gs < len(x); g++ {
		xg := x[g*gs : (g+1)*gs]
		var m float32
		for _, v := range xg {
			if abs32(v) > abs32(m) {
				m = v
			}
		}
		d := m / -8
		s[g] = d
		nib := func(v float32) byte {
			if d == 0 {
				return 8
			}
			return byte(min(max(float32(math.Round(float64(v/d)))+8, 0), 15))
		}
		for j := range half {
			q[g*half+j] = nib(xg[j]) | nib(xg[j+half])<<4
		}
	}
}

func abs32(v float32) float32 { return math.Float32frombits(math.Float32bits(v) &^ (1 << 31)) }

// ErrNotLmrs is returned by ReadHeader for a file of another format.
var ErrNotLmrs = errors.New("not an lmrs file")

// ReadHeader decodes the fields of an encoded header (no validation beyond the
// magic and version): for tests and `runner models convert` reports.
func ReadHeader(b []byte) (Header, error) {
	if len(b) < HeaderLen || string(b[:8]) != Magic {
		return Header{}, ErrNotLmrs
	}
	le := binary.LittleEndian
	if v := le.Uint32(b[8:]); v != Version {
		return Header{}, fmt.Errorf("lmrs format version %d, want %d", v, Version)
	}
	u := func(at int) uint32 { return le.Uint32(b[at:]) }
	f := func(at int) float64 { return math.Float64frombits(le.Uint64(b[at:])) }
	h := Header{Quant: Quant(u(12)), GroupSize: u(16), Vocab: u(20), Dim: u(24), Hidden: u(28), Layers: u(32),
		Heads: u(36), KVHeads: u(40), HeadDim: u(44), MaxSeq: u(48), Tied: u(52) != 0, RopeTheta: f(56), RMSEps: f(64),
		PayloadBytes: le.Uint64(b[104:])}
	if u(72) == 1 {
		h.Rope = &Llama3Rope{Factor: f(80), LowFreqFactor: f(88), HighFreqFactor: f(96), OriginalMaxPositionEmbeddings: u(76)}
	}
	return h, nil
}
