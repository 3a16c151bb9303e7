package analysis

import (
	"github.com/cuda-inference-benchmarks/cib/runner/internal/gguf"
	"github.com/cuda-inference-benchmarks/cib/runner/internal/results"
)

// engineDType is the dtype label's successful launches report computing in
// (the first one's), "" when none says.
func engineDType(label string, recs []results.Record) string {
	for _, r := range recs {
		if r.Engine == label && r.Status == results.StatusOK && r.Loaded != nil && r.Loaded.DType != "" {
			return r.Loaded.DType
		}
	}
	return ""
}

// engineWeightBytes is the weight bytes one decode step of label reads: the
// model's figure (at the requested dtype) rescaled to the format the engine
// reports computing in (gguf.BytesPerValue: the float types and ggml's block
// formats), e.g. about half for q8_0 against bf16. Norms, which
// GGUF files keep in f32, are rescaled too: they are ~0.01% of the bytes.
// An unknown format keeps the model's figure.
func engineWeightBytes(model int64, modelDType, label string, recs []results.Record) int64 {
	from, ok1 := gguf.BytesPerValue(modelDType)
	to, ok2 := gguf.BytesPerValue(engineDType(label, recs))
	if !ok1 || !ok2 || from == to {
		return model
	}
	return int64(float64(model) / from * to)
}
