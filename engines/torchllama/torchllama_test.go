package torchllama

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"
)

// TestWrite: an engine gets the embedded files as they are; Sum changes with any of them.
func TestWrite(t *testing.T) {
	dir := t.TempDir()
	require.NoError(t, Write(dir))
	b, err := os.ReadFile(filepath.Join(dir, "llama.py"))
	require.NoError(t, err)
	require.Equal(t, Source(), b)
	require.Contains(t, string(b), "class Llama(nn.Module)")
	k, err := os.ReadFile(filepath.Join(dir, "kernels.py"))
	require.NoError(t, err)
	require.Contains(t, string(k), "def kernel_configs(")
	require.Equal(t, Sum(), Sum())
	require.NotEqual(t, [32]byte{}, Sum())
}
