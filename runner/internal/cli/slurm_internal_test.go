package cli

import (
	"testing"

	"github.com/stretchr/testify/assert"
)

// TestSlurmGPUs: a multi-card task runs on the cards Slurm allocated, as
// NVML numbers them: "all" where the job sees only its own cards (device
// cgroups), the node's indices where it sees every card of the node.
func TestSlurmGPUs(t *testing.T) {
	tests := []struct {
		name      string
		env       map[string]string
		nvml      int
		want, err string
	}{
		{name: "constrained job sees only its cards", env: map[string]string{"SLURM_JOB_GPUS": "4,5"}, nvml: 2, want: "all"},
		{name: "job sees the whole node", env: map[string]string{"SLURM_JOB_GPUS": "4,5"}, nvml: 8, want: "4,5"},
		{name: "NVML unknown", env: map[string]string{"SLURM_JOB_GPUS": "1"}, nvml: -1, want: "1"},
		{name: "step variable", env: map[string]string{"SLURM_STEP_GPUS": "3"}, nvml: 8, want: "3"},
		{name: "no gres", env: map[string]string{}, nvml: 8, err: "no GPU allocated"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := slurmGPUs(func(k string) string { return tt.env[k] }, tt.nvml)
			if tt.err != "" {
				assert.ErrorContains(t, err, tt.err)
				return
			}
			assert.NoError(t, err)
			assert.Equal(t, tt.want, got, "slurmGPUs(%v, %d)", tt.env, tt.nvml)
		})
	}
}
