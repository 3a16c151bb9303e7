package report

import (
	"encoding/json"
	"fmt"

	"github.com/cuda-inference-benchmarks/cib/runner/internal/analysis"
)

// gpuField reads one top-level field of the telemetry package's device record,
// which the report does not need to know the type of.
func gpuField(s *analysis.Summary, key string) string {
	if len(s.Env.GPU) == 0 {
		return ""
	}
	var m map[string]any
	if err := json.Unmarshal(s.Env.GPU, &m); err != nil {
		return ""
	}
	v, ok := m[key]
	if !ok || v == nil {
		return ""
	}
	return fmt.Sprint(v)
}
