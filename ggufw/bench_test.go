package ggufw

import "testing"

// BenchmarkEncode measures the encoders on 1 Mi values (b.SetBytes counts
// input f32 bytes).
func BenchmarkEncode(b *testing.B) {
	r := &rng{1}
	x := make([]float32, 1<<20)
	for i := range x {
		x[i] = r.uniform() * 0.05
	}
	for _, typ := range allTypes {
		b.Run(typ.String(), func(b *testing.B) {
			b.SetBytes(int64(4 * len(x)))
			var out []byte
			for b.Loop() {
				out, _ = Encode(out[:0], typ, x)
			}
		})
	}
}
