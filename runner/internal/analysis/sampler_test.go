package analysis

import (
	"encoding/json"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/cuda-inference-benchmarks/cib/runner/internal/results"
	"github.com/cuda-inference-benchmarks/cib/runner/internal/telemetry"
)

// TestSamplerWarning: an engine whose launches spent (median) more than
// SamplerBusyWarn % inside NVML gets a warning naming the share; at the
// default interval's few percent, none.
func TestSamplerWarning(t *testing.T) {
	recs := func(busy ...float64) []results.Record {
		var out []results.Record
		for i, b := range busy {
			raw, err := json.Marshal(telemetry.Summary{SamplerBusyPct: b})
			require.NoError(t, err)
			out = append(out, results.Record{Engine: "mistralrs", Launch: i, Status: results.StatusOK, Telemetry: raw})
		}
		return out
	}
	e := engineSummary("mistralrs", "bf16", recs(44.7, 38.4, 45.0))
	require.NotNil(t, e.GPU)
	assert.InDelta(t, 44.7, e.GPU.SamplerBusyPct, 1e-9)
	require.Len(t, e.Warnings, 1)
	assert.Contains(t, e.Warnings[0], "the NVML sampler spent 45% of each launch inside NVML (median)")
	assert.Contains(t, e.Warnings[0], "--telemetry-interval")

	e = engineSummary("mistralrs", "bf16", recs(4.9, 5.6, 30))
	assert.InDelta(t, 5.6, e.GPU.SamplerBusyPct, 1e-9)
	assert.Empty(t, e.Warnings, "a median of 5.6% is no reason to warn")

	assert.Empty(t, engineSummary("cpu", "f32", []results.Record{{Engine: "cpu", Status: results.StatusOK}}).Warnings, "no telemetry, no warning")
}
