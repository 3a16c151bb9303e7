package analysis

import (
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/cuda-inference-benchmarks/cib/protocol"
	"github.com/cuda-inference-benchmarks/cib/runner/internal/results"
)

func TestEngineWeightBytes(t *testing.T) {
	rec := func(label, dtype string, status string) results.Record {
		return results.Record{Engine: label, Status: status, Loaded: &protocol.Loaded{DType: dtype}}
	}
	recs := []results.Record{
		rec("q8", "", results.StatusFailed), // a failed launch says nothing
		rec("q8", "q8_0", results.StatusOK),
		rec("q4k", "q4_k", results.StatusOK),
		rec("f16", "f16", results.StatusOK),
		rec("f32", "f32", results.StatusOK),
		rec("odd", "iq2_xs", results.StatusOK),
		{Engine: "old", Status: results.StatusOK}, // no loaded event recorded
	}
	const model = 15_010_000_000 // bf16 bytes: 7.505e9 weights
	for label, want := range map[string]int64{
		"q8":  7_974_062_500, // 34 bytes per 32 weights
		"q4k": 4_221_562_500, // 144 bytes per 256 weights
		"f16": model,
		"f32": 2 * model,
		"odd": model, // an unknown format keeps the model's figure
		"old": model,
	} {
		require.Equal(t, want, engineWeightBytes(model, "bf16", label, recs), label)
	}
	require.Equal(t, int64(model), engineWeightBytes(model, "", "q8", recs), "unknown model dtype: unchanged")
}
