package torchllama

import (
	"crypto/sha256"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"
)

// TestWrite: what an engine writes is the embedded model code, and Sum is its hash (the libtorch package key).
func TestWrite(t *testing.T) {
	dir := t.TempDir()
	require.NoError(t, Write(dir))
	b, err := os.ReadFile(filepath.Join(dir, "llama.py"))
	require.NoError(t, err)
	require.Equal(t, Source(), b)
	require.Contains(t, string(b), "class Llama(nn.Module)")
	require.Equal(t, sha256.Sum256(b), Sum())
}
