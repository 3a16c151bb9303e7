package modelcfg

import (
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// TestCachedHash: a second hash of an unchanged directory comes from the
// cache and equals the full hash; any change the check can see (content with
// a new mtime, content in a sampled piece with the old mtime restored, a new
// file, a resized file) is a miss that hashes again and gives the new digest.
func TestCachedHash(t *testing.T) {
	dir := t.TempDir()
	cache := filepath.Join(t.TempDir(), "sub", HashCacheFile)
	big := make([]byte, 1<<20)
	for i := range big {
		big[i] = byte(i * 7)
	}
	weights := filepath.Join(dir, "model.safetensors")
	require.NoError(t, os.WriteFile(weights, big, 0o644))
	require.NoError(t, os.WriteFile(filepath.Join(dir, "config.json"), []byte(`{"a":1}`), 0o644))
	old := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	require.NoError(t, os.Chtimes(weights, old, old))

	check := func(name string, wantHit bool) Digest {
		t.Helper()
		full, err := Hash(t.Context(), dir)
		require.NoError(t, err)
		d, hit, err := CachedHash(t.Context(), dir, cache)
		require.NoError(t, err)
		require.Equal(t, wantHit, hit, "%s: CachedHash hit = %v, want %v", name, hit, wantHit)
		require.Equal(t, full.Sum, d.Sum, "%s: cached digest differs from the full hash", name)
		return d
	}
	first := check("first", false)
	require.FileExists(t, cache)
	require.Equal(t, first.Sum, check("unchanged", true).Sum)

	// New content with a new modification time.
	big[10] ^= 0xff
	require.NoError(t, os.WriteFile(weights, big, 0o644))
	second := check("rewritten", false)
	require.NotEqual(t, first.Sum, second.Sum)
	check("rewritten, again", true)

	// New content in the middle of the file, the old mtime put back: the
	// sampled check sees it.
	st, err := os.Stat(weights)
	require.NoError(t, err)
	big[len(big)/2] ^= 0xff
	require.NoError(t, os.WriteFile(weights, big, 0o644))
	require.NoError(t, os.Chtimes(weights, st.ModTime(), st.ModTime()))
	third := check("same mtime, sampled byte changed", false)
	require.NotEqual(t, second.Sum, third.Sum)

	require.NoError(t, os.WriteFile(filepath.Join(dir, "tokenizer.json"), []byte(`{}`), 0o644))
	check("new file", false)
	require.NoError(t, os.WriteFile(filepath.Join(dir, "config.json"), []byte(`{"a":12}`), 0o644))
	check("resized file", false)

	// A broken cache file is a miss, not an error; an empty path is no cache.
	require.NoError(t, os.WriteFile(cache, []byte("{not json"), 0o644))
	check("broken cache", false)
	check("after the broken cache was rewritten", true)
	_, hit, err := CachedHash(t.Context(), dir, "")
	require.NoError(t, err)
	require.False(t, hit)

	// RememberHash makes a digest computed elsewhere a hit.
	other := filepath.Join(t.TempDir(), "m")
	require.NoError(t, os.MkdirAll(other, 0o755))
	require.NoError(t, os.WriteFile(filepath.Join(other, "config.json"), []byte(`{}`), 0o644))
	d, err := Hash(t.Context(), other)
	require.NoError(t, err)
	RememberHash(other, cache, d)
	got, hit, err := CachedHash(t.Context(), other, cache)
	require.NoError(t, err)
	require.True(t, hit)
	require.Equal(t, d.Sum, got.Sum)
}
