package config

import (
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

// TestCommittedConfigs keeps every config under configs/ valid.
func TestCommittedConfigs(t *testing.T) {
	files, err := filepath.Glob("../../../configs/*.yaml")
	require.NoError(t, err)
	require.NotEmpty(t, files)
	for _, f := range files {
		if strings.HasPrefix(filepath.Base(f), "suite-") {
			continue // suite files (models: and workloads:), checked by the suite package
		}
		t.Run(filepath.Base(f), func(t *testing.T) {
			_, err := Load(f)
			require.NoError(t, err)
		})
	}
}
