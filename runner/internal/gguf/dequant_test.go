package gguf

import (
	"math"
	"strings"
	"testing"

	"github.com/cuda-inference-benchmarks/cib/ggufw"
)

// TestDequantize checks every supported type against gguf-py's numpy
// dequantization of the same blocks (testdata/make_fixtures.py writes each
// tensor next to "<name>.want", gguf-py's values as F32).
func TestDequantize(t *testing.T) {
	g, err := Open("testdata/dequant.gguf")
	if err != nil {
		t.Fatal(err)
	}
	defer g.Close()
	seen := map[Type]bool{}
	for _, ti := range g.Tensors {
		if strings.HasSuffix(ti.Name, ".want") {
			continue
		}
		t.Run(ti.Name, func(t *testing.T) {
			want, ok := g.Tensor(ti.Name + ".want")
			if !ok {
				t.Fatalf("no %s.want", ti.Name)
			}
			if ti.Type.String() != ti.Name {
				t.Errorf("Type(%d).String() = %s, want %s", uint32(ti.Type), ti.Type, ti.Name)
			}
			seen[ti.Type] = true
			got, exp := make([]float32, ti.Elements()), make([]float32, want.Elements())
			if err := g.ReadFloat32(ti, got); err != nil {
				t.Fatal(err)
			}
			if err := g.ReadFloat32(want, exp); err != nil {
				t.Fatal(err)
			}
			bad := 0
			for i := range got {
				// gguf-py computes in float32 numpy, in ggml's order: equal
				// up to an ulp where numpy reassociates.
				if d := math.Abs(float64(got[i] - exp[i])); d > 1e-6*math.Max(1, math.Abs(float64(exp[i]))) {
					if bad++; bad <= 5 {
						t.Errorf("Dequantize(%s)[%d] = %g, want %g", ti.Type, i, got[i], exp[i])
					}
				}
			}
		})
	}
	for ty := range layouts {
		if ty != F32 && !seen[ty] {
			t.Errorf("type %s has no fixture in testdata/dequant.gguf", ty)
		}
	}
}

func TestDequantizeErrors(t *testing.T) {
	tests := []struct {
		name string
		typ  Type
		raw  int
		n    int
		want string
	}{
		{"unsupported type", 16, 66, 256, "tensor type IQ2_XXS not supported"},
		{"partial block", Q4_0, 18, 31, "not a whole number of Q4_0 blocks"},
		{"short data", Q8_0, 33, 32, "33 bytes for 32 values, want 34"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			err := Dequantize(tc.typ, make([]byte, tc.raw), make([]float32, tc.n))
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("Dequantize(%s, %d bytes, %d) = %v, want an error containing %q", tc.typ, tc.raw, tc.n, err, tc.want)
			}
		})
	}
}

func TestHalfToFloat(t *testing.T) {
	tests := []struct {
		h    uint16
		want float32
	}{
		{0x3c00, 1}, {0xc000, -2}, {0x0001, 5.960464477539063e-08}, {0x7bff, 65504}, {0x8000, float32(math.Copysign(0, -1))},
	}
	for _, tc := range tests {
		if got := ggufw.HalfToFloat(tc.h); got != tc.want || math.Signbit(float64(got)) != math.Signbit(float64(tc.want)) {
			t.Errorf("ggufw.HalfToFloat(%#04x) = %g, want %g", tc.h, got, tc.want)
		}
	}
}
