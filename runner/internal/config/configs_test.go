package config_test

import (
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/cuda-inference-benchmarks/cib/runner/internal/config"
	"github.com/cuda-inference-benchmarks/cib/runner/internal/synth"
	"github.com/cuda-inference-benchmarks/cib/runner/internal/workload"
)

// TestCommittedConfigs keeps every config under configs/ valid, and its cases within its synthesized model's
// vocabulary and positions.
func TestCommittedConfigs(t *testing.T) {
	files, err := filepath.Glob("../../../configs/*.yaml")
	require.NoError(t, err)
	require.NotEmpty(t, files)
	for _, f := range files {
		if strings.HasPrefix(filepath.Base(f), "suite-") {
			continue // suite files (models: and workloads:), checked by the suite package
		}
		t.Run(filepath.Base(f), func(t *testing.T) {
			cfg, err := config.Load(f)
			require.NoError(t, err)
			if cfg.Synth != nil {
				shape, ok := synth.Shapes[cfg.Synth.Shape]
				require.True(t, ok, "synth shape %q", cfg.Synth.Shape)
				_, err := workload.Cases(cfg, shape)
				require.NoError(t, err)
			}
		})
	}
}
