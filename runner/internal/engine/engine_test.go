package engine

import (
	"errors"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"
)

func TestFind(t *testing.T) {
	bin := t.TempDir()
	path := t.TempDir()
	require.NoError(t, os.WriteFile(filepath.Join(bin, "reference"), []byte("#!/bin/sh\n"), 0o755))
	require.NoError(t, os.WriteFile(filepath.Join(bin, "candle"), []byte("not executable"), 0o644))
	require.NoError(t, os.WriteFile(filepath.Join(path, "cib-burn"), []byte("#!/bin/sh\n"), 0o755))

	got, err := Find("reference", bin, path)
	require.NoError(t, err)
	require.Equal(t, filepath.Join(bin, "reference"), got)

	got, err = Find("burn", bin, path)
	require.NoError(t, err)
	require.Equal(t, filepath.Join(path, "cib-burn"), got, "falls back to PATH (cib-NAME)")

	_, err = Find("candle", bin, path)
	var nf *NotFoundError
	require.True(t, errors.As(err, &nf), "a non-executable file is not an engine: %v", err)
	require.ErrorContains(t, err, "scripts/build-candle.sh")

	_, err = Find("vllm", bin, path)
	require.ErrorContains(t, err, "unknown engine; known engines: burn, candle")

	_, err = Find("../x", bin, path)
	require.ErrorContains(t, err, "must be a plain name")

	names, err := List(bin)
	require.NoError(t, err)
	require.Equal(t, []string{"reference"}, names)

	t.Chdir(bin)
	got, err = Find("reference", ".", path)
	require.NoError(t, err)
	require.Equal(t, filepath.Join(bin, "reference"), got, "a relative bin dir gives an absolute path")
}
