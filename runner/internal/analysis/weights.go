package analysis

import (
	"github.com/cuda-inference-benchmarks/cib/runner/internal/results"
)

// bytesPerWeight is the storage cost of one weight in each format an engine may
// report computing in (its loaded.dtype): the float types, and the GGUF block
// formats (block bytes / weights per block, ggml-common.h).
var bytesPerWeight = map[string]float64{
	"f32": 4, "f16": 2, "bf16": 2,
	"q8_0": 34.0 / 32, "q4_0": 18.0 / 32, "q4_1": 20.0 / 32, "q5_0": 22.0 / 32, "q5_1": 24.0 / 32,
	"q2_k": 84.0 / 256, "q3_k": 110.0 / 256, "q4_k": 144.0 / 256, "q5_k": 176.0 / 256, "q6_k": 210.0 / 256,
}

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
// reports computing in, e.g. about half for q8_0 against bf16. Norms, which
// GGUF files keep in f32, are rescaled too: they are ~0.01% of the bytes.
// An unknown format keeps the model's figure.
func engineWeightBytes(model int64, modelDType, label string, recs []results.Record) int64 {
	from, ok1 := bytesPerWeight[modelDType]
	to, ok2 := bytesPerWeight[engineDType(label, recs)]
	if !ok1 || !ok2 || from == to {
		return model
	}
	return int64(float64(model) / from * to)
}
