package cli

import (
	"testing"

	"github.com/stretchr/testify/assert"

	"github.com/cuda-inference-benchmarks/cib/runner/internal/analysis"
	"github.com/cuda-inference-benchmarks/cib/runner/internal/envinfo"
)

// TestEnvDiffCPUPower: compare names a change in how the host's CPUs idle or
// clock (host-bound engines move with it), and nothing when both agree.
func TestEnvDiffCPUPower(t *testing.T) {
	a := &analysis.Summary{Env: envinfo.Env{Host: "h", CPUPower: envinfo.CPUPower{IdleDriver: "haltpoll", LoadAvg1: 0.1}}}
	b := &analysis.Summary{Env: envinfo.Env{Host: "h", CPUPower: envinfo.CPUPower{IdleDriver: "intel_idle", FreqGovernor: "powersave", LoadAvg1: 3}}}
	assert.Equal(t, []string{
		`cpuidle driver: "haltpoll" → "intel_idle"`,
		`cpufreq governor: "" → "powersave"`,
	}, envDiff(a, b))
	assert.Empty(t, envDiff(a, a), "the load average alone is not an environment change")
}
