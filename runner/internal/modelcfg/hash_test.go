package modelcfg

import (
	"context"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// hashDir builds the directory the pinned digests below were computed from.
func hashDir(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	require.NoError(t, os.WriteFile(filepath.Join(dir, "config.json"), []byte("{\"a\":1}\n"), 0o644))
	require.NoError(t, os.MkdirAll(filepath.Join(dir, "sub"), 0o755))
	require.NoError(t, os.WriteFile(filepath.Join(dir, "sub", "b.bin"), []byte("hello"), 0o644))
	require.NoError(t, os.MkdirAll(filepath.Join(dir, ".cache"), 0o755))
	require.NoError(t, os.WriteFile(filepath.Join(dir, ".cache", "x"), []byte("ignored"), 0o644))
	require.NoError(t, os.Symlink("sub/b.bin", filepath.Join(dir, "link.txt")))
	return dir
}

func TestHash(t *testing.T) {
	dir := hashDir(t)
	got, err := Hash(context.Background(), dir)
	require.NoError(t, err)
	// Pinned with coreutils in a copy of the directory:
	//   sha256sum config.json link.txt sub/b.bin | sha256sum
	want := Digest{
		Method: HashMethod,
		Sum:    "sha256:05d8d4815609ef78a7b9523ac67a620919270b2b144a46c00c0bc8b0d99d74dd",
		Bytes:  18,
		Files: []FileSum{
			{Path: "config.json", Size: 8, SHA256: "e346432021b04179518d9614f3560ccd71354a4ee101ddcb893d6959a9d6301c"},
			{Path: "link.txt", Size: 5, SHA256: "2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824"},
			{Path: "sub/b.bin", Size: 5, SHA256: "2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824"},
		},
	}
	assert.Equal(t, want, got)
}

func TestHashChanges(t *testing.T) {
	tests := []struct {
		name   string
		change func(dir string) error
		same   bool
	}{
		{name: "one byte", change: func(dir string) error {
			return os.WriteFile(filepath.Join(dir, "sub", "b.bin"), []byte("hellO"), 0o644)
		}},
		{name: "rename", change: func(dir string) error {
			return os.Rename(filepath.Join(dir, "config.json"), filepath.Join(dir, "config2.json"))
		}},
		{name: "new empty file", change: func(dir string) error {
			return os.WriteFile(filepath.Join(dir, "empty"), nil, 0o644)
		}},
		{name: "hidden file ignored", same: true, change: func(dir string) error {
			return os.WriteFile(filepath.Join(dir, ".lock"), []byte("x"), 0o644)
		}},
	}
	base, err := Hash(context.Background(), hashDir(t))
	require.NoError(t, err)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := hashDir(t)
			require.NoError(t, tt.change(dir))
			got, err := Hash(context.Background(), dir)
			require.NoError(t, err)
			if tt.same {
				assert.Equal(t, base.Sum, got.Sum)
			} else {
				assert.NotEqual(t, base.Sum, got.Sum)
			}
		})
	}
}

func TestHashErrors(t *testing.T) {
	_, err := Hash(context.Background(), filepath.Join(t.TempDir(), "nope"))
	assert.ErrorContains(t, err, "hash model")

	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	_, err = Hash(ctx, hashDir(t))
	assert.ErrorIs(t, err, context.Canceled)

	dir := hashDir(t)
	require.NoError(t, os.Symlink("missing", filepath.Join(dir, "dangling")))
	_, err = Hash(context.Background(), dir)
	assert.ErrorContains(t, err, "dangling")

	dir = hashDir(t)
	require.NoError(t, os.Symlink(".", filepath.Join(dir, "loop")))
	_, err = Hash(context.Background(), dir)
	assert.ErrorContains(t, err, "loop: symlinked directories are not followed")
}
