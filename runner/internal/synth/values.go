package synth

import (
	"encoding/binary"
	"hash/fnv"
	"math"
	"math/bits"

	"github.com/cuda-inference-benchmarks/cib/runner/internal/modelcfg"
)

// Weight values. Every matrix (embeddings, projections, lm_head) is uniform on
// [-a, a] with a = 0.02·√3, so its standard deviation is 0.02 like a trained
// Llama's initialiser; every RMSNorm weight is 1.0. Activations then stay near
// unit scale and bf16 logits stay finite (|logit| ≲ 0.02·√hidden·few).
//
// Each value is rounded to bf16 and values under f16's smallest normal
// (2^-14) are flushed to zero, so every value is exact in f32, f16 and bf16:
// the f32, f16 and bf16 checkpoints of one seed hold the same numbers and
// differ only in encoding. That lets an fp32 reference run on the f32
// checkpoint check a bf16 engine on the bf16 one.
const weightStd = 0.02

// The value stream is counter-based: value j of a tensor is lane j%4 (16 bits
// each, low lane first) of word j/4, and word w is wyrand's output for state
// key + (w+1)·wyP0 (the 128-bit product of the state and state^wyP1, high
// half xor low half), with key derived from the seed and the tensor name by
// splitmix64. Any chunk can be generated alone, so goroutines fill chunks in
// parallel and the bytes do not depend on chunking. wyrand costs one 64×64
// multiply per 4 values: about 2 GB/s of bf16 a core.
const (
	golden = 0x9e3779b97f4a7c15
	wyP0   = 0xa0761d6478bd642f
	wyP1   = 0xe7037ed1a0b428db
)

// wy is wyrand's output for state s.
func wy(s uint64) uint64 {
	hi, lo := bits.Mul64(s, s^wyP1)
	return hi ^ lo
}

func mix64(z uint64) uint64 {
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9
	z = (z ^ (z >> 27)) * 0x94d049bb133111eb
	return z ^ (z >> 31)
}

// tensorKey is the stream key of the named tensor under seed.
func tensorKey(seed uint64, name string) uint64 {
	h := fnv.New64a()
	h.Write([]byte(name))
	return mix64(h.Sum64() ^ mix64(seed+golden))
}

// Tables map 16 random bits (bit 15 the sign, bits 0-14 the magnitude) to the
// encoded weight in bf16 and f16.
var bf16Table, f16Table = tables()

func tables() (bf, f [1 << 16]uint16) {
	a := weightStd * math.Sqrt(3)
	for r := range 1 << 15 {
		x := float32((float64(r) + 0.5) / (1 << 15) * a)
		b := toBF16(x)
		if fromBF16(b) < 1.0/(1<<14) {
			b = 0
		}
		bf[r], f[r] = b, toF16(fromBF16(b))
		if b != 0 {
			bf[r|1<<15], f[r|1<<15] = b|1<<15, f[r]|1<<15
		}
	}
	return bf, f
}

// toBF16 rounds a finite float32 to bf16, to nearest, ties to even.
func toBF16(x float32) uint16 {
	u := math.Float32bits(x)
	u += 0x7fff + (u>>16)&1
	return uint16(u >> 16)
}

func fromBF16(b uint16) float32 { return math.Float32frombits(uint32(b) << 16) }

// toF16 converts a float32 that is exact in f16 (a normal f16 or zero, as the
// tables hold) to its f16 bits.
func toF16(x float32) uint16 {
	u := math.Float32bits(x)
	sign := uint16(u>>16) & 0x8000
	if u&0x7fffffff == 0 {
		return sign
	}
	exp := int(u>>23&0xff) - 127 + 15
	if exp <= 0 || exp >= 31 || u&0x1fff != 0 {
		panic("synth: value not exact in f16")
	}
	return sign | uint16(exp)<<10 | uint16(u>>13&0x3ff)
}

// fillRandom writes values [first, first+n) of the stream key into buf in
// dtype d; first must be a multiple of 4.
func fillRandom(buf []byte, d modelcfg.DType, key uint64, first, n int64) {
	st := key + uint64(first/4)*wyP0 // state before word first/4
	switch d {
	case modelcfg.BF16, modelcfg.F16:
		t := &bf16Table
		if d == modelcfg.F16 {
			t = &f16Table
		}
		i := 0
		for ; int64(i+4) <= n; i += 4 {
			st += wyP0
			r := wy(st)
			v := uint64(t[uint16(r)]) | uint64(t[uint16(r>>16)])<<16 | uint64(t[uint16(r>>32)])<<32 | uint64(t[uint16(r>>48)])<<48
			binary.LittleEndian.PutUint64(buf[2*i:], v)
		}
		if int64(i) < n {
			r := wy(st + wyP0)
			for lane := 0; int64(i) < n; i, lane = i+1, lane+1 {
				binary.LittleEndian.PutUint16(buf[2*i:], t[uint16(r>>(16*lane))])
			}
		}
	case modelcfg.F32:
		t := &bf16Table
		i := 0
		for ; int64(i+4) <= n; i += 4 {
			st += wyP0
			r := wy(st)
			binary.LittleEndian.PutUint64(buf[4*i:], uint64(t[uint16(r)])<<16|uint64(t[uint16(r>>16)])<<48)
			binary.LittleEndian.PutUint64(buf[4*i+8:], uint64(t[uint16(r>>32)])<<16|uint64(t[uint16(r>>48)])<<48)
		}
		if int64(i) < n {
			r := wy(st + wyP0)
			for lane := 0; int64(i) < n; i, lane = i+1, lane+1 {
				binary.LittleEndian.PutUint32(buf[4*i:], uint32(t[uint16(r>>(16*lane))])<<16)
			}
		}
	default:
		panic("synth: unknown dtype " + string(d))
	}
}

// one is 1.0 in each dtype.
var one = map[modelcfg.DType][]byte{
	modelcfg.F32:  {0x00, 0x00, 0x80, 0x3f},
	modelcfg.F16:  {0x00, 0x3c},
	modelcfg.BF16: {0x80, 0x3f},
}

// fillOnes writes n ones in dtype d into buf.
func fillOnes(buf []byte, d modelcfg.DType, n int64) {
	o := one[d]
	for i := range n {
		copy(buf[int(i)*len(o):], o)
	}
}
