package synth

import (
	"crypto/sha256"
	"testing"

	"github.com/cuda-inference-benchmarks/cib/runner/internal/modelcfg"
)

// BenchmarkFill measures value generation for one 4 MiB chunk on one core;
// b.SetBytes makes `go test -bench` print the rate in MB/s.
func BenchmarkFill(b *testing.B) {
	for _, d := range []modelcfg.DType{modelcfg.BF16, modelcfg.F16, modelcfg.F32} {
		b.Run(string(d), func(b *testing.B) {
			buf := make([]byte, chunkBytes)
			n := int64(chunkBytes / d.Size())
			b.SetBytes(chunkBytes)
			for b.Loop() {
				fillRandom(buf, d, 42, 0, n)
			}
		})
	}
}

// BenchmarkSHA256 is the per-core hashing rate Write pays for each file.
func BenchmarkSHA256(b *testing.B) {
	buf := make([]byte, chunkBytes)
	h := sha256.New()
	b.SetBytes(chunkBytes)
	for b.Loop() {
		h.Write(buf)
	}
}
