package ggufw

import (
	"encoding/binary"
	"fmt"
	"math"
	"slices"
)

// Encode appends the encoding of x as type t to dst and returns it; len(x)
// must be a multiple of t's block size. Quantized types follow ggml's
// reference quantizers (ggml-quants.c, quantize_row_q8_0_ref and
// quantize_row_q4_K_ref) bit for bit, evaluated in float32 without fused
// multiply-adds.
func Encode(dst []byte, t Type, x []float32) ([]byte, error) {
	if _, err := t.RowBytes(len(x)); err != nil {
		return dst, err
	}
	le := binary.LittleEndian
	switch t {
	case F32:
		n := len(dst)
		dst = slices.Grow(dst, 4*len(x))[:n+4*len(x)]
		for i, v := range x {
			le.PutUint32(dst[n+4*i:], math.Float32bits(v))
		}
	case F16:
		n := len(dst)
		dst = slices.Grow(dst, 2*len(x))[:n+2*len(x)]
		for i, v := range x {
			le.PutUint16(dst[n+2*i:], FloatToHalf(v))
		}
	case BF16:
		n := len(dst)
		dst = slices.Grow(dst, 2*len(x))[:n+2*len(x)]
		for i, v := range x {
			le.PutUint16(dst[n+2*i:], FloatToBF16(v))
		}
	case Q8_0:
		for i := 0; i < len(x); i += 32 {
			dst = quantizeQ8_0(dst, x[i:i+32])
		}
	case Q4_K:
		for i := 0; i < len(x); i += 256 {
			dst = quantizeQ4K(dst, x[i:i+256])
		}
	default:
		return dst, fmt.Errorf("tensor type %s: no encoder", t)
	}
	return dst, nil
}

// FloatToHalf rounds x to IEEE half precision, to nearest even, as numpy's
// astype(float16) and ggml's GGML_FP32_TO_FP16 do (overflow gives ±Inf, NaN
// stays NaN).
func FloatToHalf(x float32) uint16 {
	b := math.Float32bits(x)
	sign := uint16(b>>16) & 0x8000
	exp := int(b>>23) & 0xff
	mant := b & 0x7fffff
	switch {
	case exp == 0xff:
		if mant != 0 {
			return sign | 0x7e00 // quiet NaN
		}
		return sign | 0x7c00
	case exp-127 > 15:
		return sign | 0x7c00
	}
	e := exp - 127 + 15
	if e >= 1 {
		// Normal: keep 10 mantissa bits, round to nearest even on the rest.
		h := uint32(e)<<10 | mant>>13
		rest := mant & 0x1fff
		if rest > 0x1000 || (rest == 0x1000 && h&1 == 1) {
			h++ // may carry into the exponent, up to Inf: correct
		}
		return sign | uint16(h)
	}
	// Subnormal or zero in half precision: value = m · 2^-24.
	if e < -10 {
		return sign // below half the smallest subnormal rounds to zero
	}
	m := mant | 0x800000    // implicit bit
	shift := uint32(14 - e) // 13 + (1 - e)
	h := m >> shift
	rest := m & (1<<shift - 1)
	half := uint32(1) << (shift - 1)
	if rest > half || (rest == half && h&1 == 1) {
		h++
	}
	return sign | uint16(h)
}

// HalfToFloat widens an IEEE half-precision value exactly.
func HalfToFloat(h uint16) float32 {
	sign := uint32(h>>15) << 31
	exp := uint32(h>>10) & 0x1f
	mant := uint32(h) & 0x3ff
	switch {
	case exp == 0x1f:
		return math.Float32frombits(sign | 0xff<<23 | mant<<13)
	case exp != 0:
		return math.Float32frombits(sign | (exp+127-15)<<23 | mant<<13)
	case mant == 0:
		return math.Float32frombits(sign)
	}
	v := float32(mant) * float32(1.0/(1<<24))
	return math.Float32frombits(sign | math.Float32bits(v))
}

// FloatToBF16 rounds x to bfloat16, to nearest even, with NaN made quiet, as
// gguf-py's and ggml's fp32→bf16 conversions do.
func FloatToBF16(x float32) uint16 {
	n := math.Float32bits(x)
	if n&0x7fffffff > 0x7f800000 {
		return uint16((n&0xffff0000 | 64<<16) >> 16)
	}
	return uint16((uint64(n) + uint64(0x7fff+(n>>16)&1)) >> 16)
}

// roundf is C's roundf: halves away from zero.
func roundf(x float32) float32 { return float32(math.Round(float64(x))) }

// quantizeQ8_0 is ggml's quantize_row_q8_0_ref for one block of 32.
func quantizeQ8_0(dst []byte, x []float32) []byte {
	var amax float32
	for _, v := range x {
		amax = max(amax, float32(math.Abs(float64(v))))
	}
	d := amax / 127
	var id float32
	if d != 0 {
		id = 1 / d
	}
	dst = binary.LittleEndian.AppendUint16(dst, FloatToHalf(d))
	for _, v := range x {
		dst = append(dst, byte(int8(roundf(v*id))))
	}
	return dst
}

// nearestInt is ggml's nearest_int: round to nearest, ties to even, via
// the 1.5·2^23 trick (valid for |x| <= 4194303).
func nearestInt(x float32) int {
	v := x + 12582912
	i := int32(math.Float32bits(v))
	return int(i&0x007fffff) - 0x00400000
}

// makeQKX2Quants is ggml's make_qkx2_quants for a sub-block of 32 values:
// the scale and (negated) min of an asymmetric nmax-level quantization of x
// that minimizes the weighted squared error over a small search of scales.
// Every product is rounded to float32 before it is added (the float32(...)
// conversions keep Go from fusing multiply-adds), so the result is the C
// code's bit for bit.
func makeQKX2Quants(nmax int, x, weights *[32]float32, L *[32]uint8, rmin, rdelta float32, nstep int) (scale, theMin float32) {
	mn, mx := x[0], x[0]
	sumW := weights[0]
	sumX := float32(sumW * x[0])
	for i := 1; i < 32; i++ {
		if x[i] < mn {
			mn = x[i]
		}
		if x[i] > mx {
			mx = x[i]
		}
		w := weights[i]
		sumW += w
		sumX += float32(w * x[i])
	}
	if mn > 0 {
		mn = 0
	}
	if mx == mn {
		*L = [32]uint8{}
		return 0, -mn
	}
	fnmax := float32(nmax)
	iscale := fnmax / (mx - mn)
	scale = 1 / iscale
	var bestError float32
	for i := range 32 {
		l := nearestInt(float32(iscale * (x[i] - mn)))
		L[i] = uint8(max(0, min(nmax, l)))
		diff := float32(float32(scale*float32(L[i]))+mn) - x[i]
		diff = float32(diff * diff)
		bestError += float32(weights[i] * diff)
	}
	if nstep < 1 {
		return scale, -mn
	}
	var Laux [32]uint8
	var fl [32]float32
	for is := 0; is <= nstep; is++ {
		// As in ggml, min (mn) is the best candidate's so far: a better
		// candidate moves the grid of the passes after it.
		iscale = float32(float32(rmin+float32(rdelta*float32(is)))+fnmax) / (mx - mn)
		var sumL, sumL2, sumXL float32
		for i := range 32 {
			l := nearestInt(float32(iscale * (x[i] - mn)))
			l = max(0, min(nmax, l))
			Laux[i] = uint8(l)
			f := float32(l)
			fl[i] = f
			wl := float32(weights[i] * f)
			sumL += wl
			sumL2 += float32(wl * f)
			sumXL += float32(wl * x[i])
		}
		D := float32(sumW*sumL2) - float32(sumL*sumL)
		if D > 0 {
			thisScale := (float32(sumW*sumXL) - float32(sumX*sumL)) / D
			thisMin := (float32(sumL2*sumX) - float32(sumL*sumXL)) / D
			if thisMin > 0 {
				thisMin = 0
				thisScale = sumXL / sumL2
			}
			var curError float32
			for i := range 32 {
				diff := float32(float32(thisScale*fl[i])+thisMin) - x[i]
				diff = float32(diff * diff)
				curError += float32(weights[i] * diff)
			}
			if curError < bestError {
				*L = Laux
				bestError = curError
				scale = thisScale
				mn = thisMin
			}
		}
	}
	return scale, -mn
}

// quantizeQ4K is ggml's quantize_row_q4_K_ref for one super-block of 256:
// eight sub-blocks of 32 with 6-bit scales and mins under f16 super-scales,
// 4-bit values.
func quantizeQ4K(dst []byte, x []float32) []byte {
	var L [8][32]uint8
	var weights [32]float32
	var mins, scales [8]float32
	var maxScale, maxMin float32
	for j := range 8 {
		xs := (*[32]float32)(x[32*j : 32*j+32])
		var sumX2 float32
		for _, v := range xs {
			sumX2 += float32(v * v)
		}
		avX := float32(math.Sqrt(float64(sumX2 / 32)))
		for l, v := range xs {
			weights[l] = avX + float32(math.Abs(float64(v)))
		}
		scales[j], mins[j] = makeQKX2Quants(15, xs, &weights, &L[j], -1, 0.1, 20)
		maxScale = max(maxScale, scales[j])
		maxMin = max(maxMin, mins[j])
	}
	var invScale, invMin float32
	if maxScale > 0 {
		invScale = 63 / maxScale
	}
	if maxMin > 0 {
		invMin = 63 / maxMin
	}
	var sc [12]uint8
	for j := range 8 {
		ls := min(63, uint8(nearestInt(float32(invScale*scales[j]))))
		lm := min(63, uint8(nearestInt(float32(invMin*mins[j]))))
		if j < 4 {
			sc[j] = ls
			sc[j+4] = lm
		} else {
			sc[j+4] = ls&0xf | (lm&0xf)<<4
			sc[j-4] |= (ls >> 4) << 6
			sc[j] |= (lm >> 4) << 6
		}
	}
	hd, hm := FloatToHalf(maxScale/63), FloatToHalf(maxMin/63)
	d0, m0 := HalfToFloat(hd), HalfToFloat(hm)
	for j := range 8 {
		s, m := scaleMinK4(j, &sc)
		d := float32(d0 * float32(s))
		if d == 0 {
			continue
		}
		dm := float32(m0 * float32(m))
		for ii := range 32 {
			l := nearestInt((x[32*j+ii] + dm) / d)
			L[j][ii] = uint8(max(0, min(15, l)))
		}
	}
	le := binary.LittleEndian
	dst = le.AppendUint16(dst, hd)
	dst = le.AppendUint16(dst, hm)
	dst = append(dst, sc[:]...)
	for j := 0; j < 8; j += 2 {
		for l := range 32 {
			dst = append(dst, L[j][l]|L[j+1][l]<<4)
		}
	}
	return dst
}

// scaleMinK4 is ggml's get_scale_min_k4: the 6-bit scale and min of
// sub-block j.
func scaleMinK4(j int, q *[12]uint8) (d, m uint8) {
	if j < 4 {
		return q[j] & 63, q[j+4] & 63
	}
	return q[j+4]&0xf | (q[j-4]>>6)<<4, q[j+4]>>4 | (q[j]>>6)<<4
}
