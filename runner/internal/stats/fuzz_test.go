package stats

import (
	"encoding/binary"
	"encoding/json"
	"math"
	"testing"
)

// floats decodes data as little-endian float64s (a trailing partial value is
// dropped), so the fuzzer can reach NaN, ±Inf, subnormals and huge values.
func floats(data []byte) []float64 {
	xs := make([]float64, 0, len(data)/8)
	for len(data) >= 8 {
		xs = append(xs, math.Float64frombits(binary.LittleEndian.Uint64(data)))
		data = data[8:]
	}
	return xs
}

func encode(xs ...float64) []byte {
	b := make([]byte, 0, 8*len(xs))
	for _, x := range xs {
		b = binary.LittleEndian.AppendUint64(b, math.Float64bits(x))
	}
	return b
}

func fuzzSeeds(f *testing.F) {
	f.Add(encode())
	f.Add(encode(1))
	f.Add(encode(0, 0, 0, 0, 0, 0, 0))
	f.Add(encode(math.NaN(), math.Inf(1), math.Inf(-1), 1, 2))
	f.Add(encode(math.MaxFloat64, -math.MaxFloat64, math.MaxFloat64, 1, 2, 3, 4))
	f.Add(encode(5e-324, 0, -5e-324, 1e-300, 1e300, 7, 8))
	f.Add(encode(sampleX...))
}

// checkJSON fails when v does not encode, i.e. holds NaN or Inf.
func checkJSON(t *testing.T, what string, v any) {
	t.Helper()
	if _, err := json.Marshal(v); err != nil {
		t.Fatalf("json.Marshal(%s) = %v, want no error (%+v)", what, err, v)
	}
}

func FuzzSummarize(f *testing.F) {
	fuzzSeeds(f)
	f.Fuzz(func(t *testing.T, data []byte) {
		xs := floats(data)
		s := Summarize(xs)
		checkJSON(t, "Summarize", s)
		if s.N+s.NonFinite != len(xs) {
			t.Fatalf("Summarize(%v): N %d + NonFinite %d != %d", xs, s.N, s.NonFinite, len(xs))
		}
		if s.N > 0 && !(s.Min <= s.Median && s.Median <= s.Max) {
			t.Fatalf("Summarize(%v): median %v outside [%v, %v]", xs, s.Median, s.Min, s.Max)
		}
		if s.HasCI && !(s.MedianLo <= s.Median && s.Median <= s.MedianHi) {
			t.Fatalf("Summarize(%v): median %v outside its CI [%v, %v]", xs, s.Median, s.MedianLo, s.MedianHi)
		}
		LaunchVariance([][]float64{xs, xs[len(xs)/2:]})
		checkJSON(t, "LaunchVariance", LaunchVariance([][]float64{xs[:len(xs)/2], xs[len(xs)/2:]}))
	})
}

func FuzzCompare(f *testing.F) {
	fuzzSeeds(f)
	f.Fuzz(func(t *testing.T, data []byte) {
		xs := floats(data)
		// Split unevenly so both halves vary independently.
		k := len(xs) / 3
		a, b := chunks(xs[:k], 2), chunks(xs[k:], 3)
		c := Compare(a, b, CompareOptions{Seed: 1, Resamples: 2000})
		checkJSON(t, "Compare", c)
		if !(c.P >= 0 && c.P <= 1) {
			t.Fatalf("Compare(%v, %v).P = %v, want in [0, 1]", a, b, c.P)
		}
		if c.HasRatio && !(c.RatioLo <= c.Ratio && c.Ratio <= c.RatioHi) {
			t.Fatalf("Compare(%v, %v) ratio CI = [%v, %v]", a, b, c.RatioLo, c.RatioHi)
		}
		cs := []*Comparison{&c, nil}
		AdjustHolm(cs)
		if c.PAdj != c.P {
			t.Fatalf("AdjustHolm of one: PAdj = %v, want P %v", c.PAdj, c.P)
		}
	})
}

// chunks splits xs into launches of n values (the last may be shorter).
func chunks(xs []float64, n int) [][]float64 {
	var gs [][]float64
	for len(xs) > n {
		gs = append(gs, xs[:n])
		xs = xs[n:]
	}
	return append(gs, xs)
}

func FuzzEstimateLaunches(f *testing.F) {
	fuzzSeeds(f)
	f.Fuzz(func(t *testing.T, data []byte) {
		xs := floats(data)
		e := EstimateLaunches(chunks(xs, 3))
		checkJSON(t, "EstimateLaunches", e)
		if e.HasCI && !(e.Lo <= e.Mean && e.Mean <= e.Hi) {
			t.Fatalf("EstimateLaunches(%v): mean %v outside [%v, %v]", xs, e.Mean, e.Lo, e.Hi)
		}
	})
}
