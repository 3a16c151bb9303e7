package torchllama

import (
	"crypto/sha256"
	"fmt"
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
	// Sum is over what Write wrote: name and SHA-256 of each file, in name order.
	h := sha256.New()
	for _, n := range []string{"kernels.py", "llama.py"} {
		b, err := os.ReadFile(filepath.Join(dir, n))
		require.NoError(t, err)
		fmt.Fprintf(h, "%s %x\n", n, sha256.Sum256(b))
	}
	sum := Sum()
	require.Equal(t, h.Sum(nil), sum[:])
}
